//! `kms-gateway`: the AWS API endpoint (KMS and CloudTrail JSON 1.1) in front
//! of the registry, authz, keystore and audit gRPC services.

use clap::Parser;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Address of the public endpoint.
    #[arg(long, env = "KMS_GATEWAY_LISTEN", default_value = "127.0.0.1:4566")]
    listen: std::net::SocketAddr,
    #[command(flatten)]
    config: kms_gateway::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    kms_gateway::run(listener, cli.config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
