//! Command-line and environment configuration of the authz service.

use std::path::PathBuf;

/// Settings of one authz instance. Every flag also reads `KMS_AUTHZ_*`.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// SQLite database URL, e.g. `sqlite:///var/lib/kms/authz.db`.
    #[arg(
        long = "database-url",
        env = "KMS_AUTHZ_DATABASE_URL",
        default_value = "sqlite://kms-authz.db"
    )]
    pub database_url: String,

    /// JSON file with the accounts to create on a fresh database:
    /// `{"accounts":[{"account_id":..,"access_key_id":..,"secret_access_key":..}]}`.
    /// Without it a fresh database gets the two documented example accounts.
    #[arg(long = "bootstrap-file", env = "KMS_AUTHZ_BOOTSTRAP_FILE")]
    pub bootstrap_file: Option<PathBuf>,

    /// How far X-Amz-Date may be from this server's clock, in seconds.
    #[arg(
        long = "max-clock-skew-secs",
        env = "KMS_AUTHZ_MAX_CLOCK_SKEW_SECS",
        default_value_t = 300
    )]
    pub max_clock_skew_secs: u64,
    /// Mutual TLS of the gRPC server (and of its clients of other services).
    #[command(flatten)]
    pub internal_tls: kms_telemetry::tls::InternalTlsConfig,
}

impl Config {
    /// A configuration with defaults for everything but the database.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            bootstrap_file: None,
            max_clock_skew_secs: 300,
            internal_tls: Default::default(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new("sqlite://kms-authz.db")
    }
}
