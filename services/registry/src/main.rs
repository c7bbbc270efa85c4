//! `kms-registry`: the registry service as a standalone binary (default port 50051),
//! gRPC over mutual TLS as the `registry` role (`--internal-tls-dir`; caller: gateway).

use std::net::SocketAddr;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "kms-registry",
    about = "VPCs, subnets, VPC endpoints and their network interfaces"
)]
struct Cli {
    /// Address of the gRPC listener.
    #[arg(long, env = "KMS_REGISTRY_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    #[command(flatten)]
    config: kms_registry::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = kms_telemetry::init("kms-registry")?;
    // Secure by default: mutual TLS unless the operator opted out.
    cli.config.internal_tls.check()?;
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    kms_registry::run(listener, cli.config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
