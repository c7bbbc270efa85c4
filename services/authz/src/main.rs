//! The standalone authz server: `kms-authz --listen 127.0.0.1:50052`.

use std::net::SocketAddr;

use clap::Parser;
use tracing_subscriber::EnvFilter;

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
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    kms_authz::run(listener, cli.config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
