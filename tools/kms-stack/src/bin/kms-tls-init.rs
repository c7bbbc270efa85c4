//! `kms-tls-init --data-dir DIR [--region R]`: make the stack's own CA and the
//! gateway's server certificate under `DIR/tls/` (as `kms-stack` does on its
//! first start), unless they are there already, and exit. Compose runs it once
//! into a volume that the gateway (cert and key) and clients (CA) mount.

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
#[command(
    version,
    about = "Create the stack's CA and server certificate, then exit"
)]
struct Cli {
    /// Where `tls/ca.pem`, `tls/server.pem` and `tls/server.key` go.
    #[arg(long, env = "KMS_DATA_DIR")]
    data_dir: PathBuf,
    /// Region whose KMS hostname the certificate names.
    #[arg(long, env = "KMS_REGION", default_value = "us-east-1")]
    region: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let files = kms_stack::tls::ensure(&cli.data_dir, &cli.region, &[])?;
    println!("CA certificate: {}", files.ca_cert.display());
    println!("server certificate: {}", files.server_cert.display());
    Ok(())
}
