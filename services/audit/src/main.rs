//! The standalone audit server: `kms-audit --listen 127.0.0.1:50054`, and
//! `kms-audit validate-logs --log-dir DIR --account ACCT --region R --public-key-der FILE`.
//! The server speaks mutual TLS as the `audit` role (`--internal-tls-dir`; caller:
//! the gateway); `validate-logs --audit-url` calls it as the `ops` role.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kms-audit",
    about = "CloudTrail-style audit records: group-committed appends, LookupEvents, log files with signed digests"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to serve gRPC on.
    #[arg(long, env = "KMS_AUDIT_LISTEN", default_value = "127.0.0.1:50054")]
    listen: SocketAddr,
    #[command(flatten)]
    config: kms_audit::Config,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the log files and digest files of an account and region, like
    /// `aws cloudtrail validate-logs`; exits 1 if any file is invalid.
    ValidateLogs {
        /// The log dir (the bucket's folder).
        #[arg(long = "log-dir")]
        log_dir: PathBuf,
        #[arg(long)]
        account: String,
        #[arg(long, default_value = "us-east-1")]
        region: String,
        /// The bucket name the digests record.
        #[arg(long, default_value = "kms-cloudtrail-logs")]
        bucket: String,
        /// A trusted public key (DER, as ListPublicKeys returns it); repeatable.
        #[arg(long = "public-key-der", required_unless_present = "audit_url")]
        public_key_der: Vec<PathBuf>,
        /// Or take the public keys from a running audit service's ListPublicKeys,
        /// e.g. `http://127.0.0.1:50054` (over mutual TLS as the `ops` role with
        /// `--internal-tls-dir` / `KMS_INTERNAL_TLS_DIR`, given before the subcommand).
        #[arg(long = "audit-url")]
        audit_url: Option<String>,
        /// Also print the valid files.
        #[arg(long)]
        verbose: bool,
    },
}

async fn validate(
    log_dir: PathBuf,
    account: String,
    region: String,
    bucket: String,
    key_files: Vec<PathBuf>,
    audit: Option<(String, kms_telemetry::tls::InternalTlsConfig)>,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    let mut public_keys = Vec::new();
    for f in key_files {
        public_keys.push(std::fs::read(&f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?);
    }
    if let Some((url, internal_tls)) = audit {
        use kms_proto::audit::v1::{ListPublicKeysRequest, audit_client::AuditClient};
        let keys = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            let endpoint = tonic::transport::Endpoint::from_shared(url)?;
            // The `ops` role may read the public keys over mutual TLS.
            let channel = match internal_tls.load(kms_telemetry::tls::Role::Ops)? {
                Some(tls) => {
                    tls.connect(&endpoint, kms_telemetry::tls::Role::Audit)
                        .await?
                }
                None => endpoint.connect().await?,
            };
            let mut client = AuditClient::new(channel);
            anyhow::Ok(
                client
                    .list_public_keys(ListPublicKeysRequest::default())
                    .await?
                    .into_inner(),
            )
        })
        .await
        .map_err(|_| anyhow::anyhow!("ListPublicKeys timed out"))??;
        public_keys.extend(keys.public_key_list.into_iter().map(|k| k.value));
    }
    println!(
        "Validating log files of account {account} in {region} under {}\n",
        log_dir.display()
    );
    let report = kms_audit::validate::validate_logs(&kms_audit::validate::ValidateOptions {
        log_dir,
        account,
        region,
        bucket,
        public_keys,
    });
    for item in &report.items {
        if item.invalid.is_some() {
            eprintln!("{}\n", item.line());
        } else if verbose {
            println!("{}", item.line());
        }
    }
    print!("{}", report.summary());
    Ok(if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if let Some(Command::ValidateLogs {
        log_dir,
        account,
        region,
        bucket,
        public_key_der,
        audit_url,
        verbose,
    }) = cli.command
    {
        return validate(
            log_dir,
            account,
            region,
            bucket,
            public_key_der,
            audit_url.map(|url| (url, cli.config.internal_tls)),
            verbose,
        )
        .await;
    }
    let _telemetry = kms_telemetry::init("kms-audit")?;
    // Secure by default: mutual TLS unless the operator opted out.
    cli.config.internal_tls.check()?;
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    kms_audit::run(listener, cli.config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
