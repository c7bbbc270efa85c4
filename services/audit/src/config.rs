//! Command-line and environment configuration of the audit service.

use std::path::PathBuf;

/// Settings of one audit instance. Every flag also reads `KMS_AUDIT_*`.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// SQLite database URL, e.g. `sqlite:///var/lib/kms/audit.db`.
    #[arg(
        long = "database-url",
        env = "KMS_AUDIT_DATABASE_URL",
        default_value = "sqlite://kms-audit.db"
    )]
    pub database_url: String,

    /// Most event rows written by one group-commit transaction (a single larger Append
    /// still commits in one transaction).
    #[arg(long = "batch-max", env = "KMS_AUDIT_BATCH_MAX", default_value_t = 512)]
    pub batch_max: usize,

    /// Folder that plays the S3 bucket: log files go to
    /// `<log-dir>/AWSLogs/<account>/CloudTrail/<region>/...` and digest files to
    /// `<log-dir>/AWSLogs/<account>/CloudTrail-Digest/<region>/...`. No log files without it.
    #[arg(long = "log-dir", env = "KMS_AUDIT_LOG_DIR")]
    pub log_dir: Option<PathBuf>,

    /// Seconds between two deliveries of log files (fractions allowed).
    #[arg(
        long = "delivery-interval-secs",
        env = "KMS_AUDIT_DELIVERY_INTERVAL_SECS",
        default_value_t = 300.0
    )]
    pub delivery_interval_secs: f64,

    /// Seconds between two digest files of an account and region (CloudTrail: one hour);
    /// 0 writes a digest after every delivery that produced log files.
    #[arg(
        long = "digest-interval-secs",
        env = "KMS_AUDIT_DIGEST_INTERVAL_SECS",
        default_value_t = 3600.0
    )]
    pub digest_interval_secs: f64,

    /// The bucket name that log files and digests name (`s3Bucket`, `digestS3Bucket`):
    /// the log dir stands for it.
    #[arg(
        long = "log-bucket",
        env = "KMS_AUDIT_LOG_BUCKET",
        default_value = "kms-cloudtrail-logs"
    )]
    pub log_bucket: String,

    /// Trail name in digest file names.
    #[arg(
        long = "trail-name",
        env = "KMS_AUDIT_TRAIL_NAME",
        default_value = "management-events"
    )]
    pub trail_name: String,

    /// Region of records that carry no `awsRegion`.
    #[arg(long = "region", env = "KMS_AUDIT_REGION", default_value = "us-east-1")]
    pub region: String,

    /// PKCS #8 file of the RSA-2048 digest signing key, created (mode 0600) on first start.
    /// Default: `cloudtrail-digest-signing-key.p8` next to the log dir.
    #[arg(long = "digest-key-file", env = "KMS_AUDIT_DIGEST_KEY_FILE")]
    pub digest_key_file: Option<PathBuf>,
    /// Mutual TLS of the gRPC server (and of its clients of other services).
    #[command(flatten)]
    pub internal_tls: kms_telemetry::tls::InternalTlsConfig,
}

impl Config {
    /// A configuration with defaults for everything but the database.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            batch_max: 512,
            log_dir: None,
            delivery_interval_secs: 300.0,
            digest_interval_secs: 3600.0,
            log_bucket: "kms-cloudtrail-logs".into(),
            trail_name: "management-events".into(),
            region: "us-east-1".into(),
            digest_key_file: None,
            internal_tls: Default::default(),
        }
    }

    /// Where the signing key lives (only meaningful with a log dir).
    pub fn digest_key_path(&self) -> Option<PathBuf> {
        if let Some(p) = &self.digest_key_file {
            return Some(p.clone());
        }
        let dir = self.log_dir.as_ref()?;
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(dir.as_path());
        Some(parent.join("cloudtrail-digest-signing-key.p8"))
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new("sqlite://kms-audit.db")
    }
}
