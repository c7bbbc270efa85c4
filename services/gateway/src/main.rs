//! `kms-gateway`: the AWS API endpoint (KMS and CloudTrail JSON 1.1) in front
//! of the registry, authz, keystore and audit gRPC services, which it calls over
//! mutual TLS as the `gateway` role (`--internal-tls-dir`).

use clap::Parser;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Address of the public endpoint.
    #[arg(long, env = "KMS_GATEWAY_LISTEN", default_value = "127.0.0.1:4566")]
    listen: std::net::SocketAddr,
    /// Address of the public HTTPS endpoint (served only with `--tls-cert` and
    /// `--tls-key`); endpoint interfaces get HTTPS on the same port.
    #[arg(long, env = "KMS_GATEWAY_TLS_LISTEN", default_value = "127.0.0.1:4443")]
    tls_listen: std::net::SocketAddr,
    #[command(flatten)]
    config: kms_gateway::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = kms_telemetry::init("kms-gateway")?;
    let cli = Cli::parse();
    // Secure by default: the backends are called over mutual TLS unless the
    // operator opted out.
    cli.config.internal_tls.check()?;
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    let tls_listener = match cli.config.tls_cert {
        Some(_) => Some(tokio::net::TcpListener::bind(cli.tls_listen).await?),
        None => None,
    };
    kms_gateway::run_with_tls(listener, tls_listener, cli.config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
