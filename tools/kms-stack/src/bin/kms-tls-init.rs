//! `kms-tls-init --data-dir DIR [--region R] [--internal-dir D] [--export-internal E]`:
//! make the stack's own CA and the gateway's server certificate under `DIR/tls/`,
//! and the internal gRPC CA with one certificate per role under `D` (default
//! `DIR/internal-tls`), as `kms-stack` does on its first start, unless they are
//! there already, and exit. With `--export-internal E`, each role's files (the
//! internal CA certificate, its certificate and key, and the `ops` probe's)
//! are also copied to `E/<role>/`: compose mounts one volume per role there,
//! so that a container holds its own key only and never the internal CA's.

use std::path::PathBuf;

use clap::Parser;
use kms_telemetry::tls::Role;

#[derive(Parser)]
#[command(
    version,
    about = "Create the stack's CAs and certificates (public endpoint and internal gRPC), then exit"
)]
struct Cli {
    /// Where `tls/ca.pem`, `tls/server.pem` and `tls/server.key` go.
    #[arg(long, env = "KMS_DATA_DIR")]
    data_dir: PathBuf,
    /// Region whose KMS hostname the certificate names.
    #[arg(long, env = "KMS_REGION", default_value = "us-east-1")]
    region: String,
    /// Folder of the internal CA (`ca.pem`, `ca.key`) and of every role's
    /// certificate (default: `<data-dir>/internal-tls`).
    #[arg(long, env = "KMS_INTERNAL_CA_DIR")]
    internal_dir: Option<PathBuf>,
    /// Copy each role's files to `<export-internal>/<role>/` (gateway, authz,
    /// keystore, audit, registry) for the services to mount.
    #[arg(long, env = "KMS_INTERNAL_TLS_EXPORT")]
    export_internal: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let files = kms_stack::tls::ensure(&cli.data_dir, &cli.region, &[])?;
    println!("CA certificate: {}", files.ca_cert.display());
    println!("server certificate: {}", files.server_cert.display());
    let internal = cli
        .internal_dir
        .unwrap_or_else(|| cli.data_dir.join("internal-tls"));
    kms_stack::tls::ensure_internal(&internal)?;
    println!(
        "internal CA certificate: {}",
        internal.join("ca.pem").display()
    );
    if let Some(export) = cli.export_internal {
        for role in Role::ALL.into_iter().filter(|r| *r != Role::Ops) {
            let out = export.join(role.name());
            kms_stack::tls::export_internal(&internal, role, &out)?;
            println!("internal {role} files: {}", out.display());
        }
    }
    Ok(())
}
