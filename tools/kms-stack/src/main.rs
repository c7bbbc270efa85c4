//! `kms-stack`: runs the whole system on one machine with embedded SQLite,
//! every service its own gRPC server on loopback. Ctrl-C stops it cleanly.

use clap::Parser;

/// mimalloc instead of glibc's malloc: the hot path allocates many small,
/// short-lived objects; interleaved A/B runs gave 13-19 % less server CPU per
/// Encrypt (docs/ARCHITECTURE.md, "The hot path").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "Run the KMS with VPC endpoints: all five services on loopback"
)]
struct Cli {
    #[command(flatten)]
    config: kms_stack::StackConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = kms_telemetry::init("kms-stack")?;
    let cli = Cli::parse();
    let mut stack = kms_stack::start(cli.config).await?;
    println!("KMS endpoint: http://{}", stack.endpoint);
    println!("DNS resolver: {} (udp and tcp)", stack.dns);
    println!("KMS TLS endpoint: https://{}", stack.tls_endpoint);
    println!("CA certificate: {}", stack.tls.ca_cert.display());
    // The backends' gRPC ports (mutual TLS only, internal CA in this folder).
    println!(
        "internal gRPC (mutual TLS, {}): registry {} authz {} keystore {} audit {}",
        stack.internal_tls_dir.display(),
        stack.registry,
        stack.authz,
        stack.keystore,
        stack.audit
    );
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("shutting down");
            stack.shutdown().await
        }
        e = stack.wait_failure() => Err(e),
    }
}
