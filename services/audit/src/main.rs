//! The standalone audit server: `kms-audit --listen 127.0.0.1:50054`.

use std::net::SocketAddr;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "kms-audit",
    about = "CloudTrail-style audit records: group-committed appends and LookupEvents"
)]
struct Cli {
    /// Address to serve gRPC on.
    #[arg(long, env = "KMS_AUDIT_LISTEN", default_value = "127.0.0.1:50054")]
    listen: SocketAddr,
    #[command(flatten)]
    config: kms_audit::Config,
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
    kms_audit::run(listener, cli.config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
