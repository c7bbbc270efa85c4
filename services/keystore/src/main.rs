//! `kms-keystore`: runs the key store alone as a gRPC server (default 127.0.0.1:50053).
//! Configuration by flags or `KMS_KEYSTORE_*` variables; see `kms-keystore --help`.
//! gRPC is mutual TLS as the `keystore` role (`--internal-tls-dir`, caller: the
//! gateway); its calls to authz too.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "kms-keystore",
    version,
    about = "KMS key store: every key operation, the only owner of key material"
)]
struct Cli {
    /// Address to serve gRPC on.
    #[arg(long, env = "KMS_KEYSTORE_LISTEN", default_value = "127.0.0.1:50053")]
    listen: SocketAddr,

    #[command(flatten)]
    config: kms_keystore::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = kms_telemetry::init("kms-keystore")?;
    let cli = Cli::parse();
    // Secure by default: mutual TLS unless the operator opted out.
    cli.config.internal_tls.check()?;
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "kms-keystore listening");
    kms_keystore::run(listener, cli.config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
