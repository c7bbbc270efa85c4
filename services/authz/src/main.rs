//! The standalone authz server: `kms-authz --listen 127.0.0.1:50052
//! --internal-tls-dir DIR` (mutual TLS as the `authz` role; callers: gateway, keystore).

use std::net::SocketAddr;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "kms-authz",
    about = "SigV4 verification, accounts and authorization decisions"
)]
struct Cli {
    /// Address to serve gRPC on.
    #[arg(long, env = "KMS_AUTHZ_LISTEN", default_value = "127.0.0.1:50052")]
    listen: SocketAddr,
    #[command(flatten)]
    config: kms_authz::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = kms_telemetry::init("kms-authz")?;
    // Secure by default: mutual TLS unless the operator opted out.
    cli.config.internal_tls.check()?;
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    kms_authz::run(listener, cli.config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
