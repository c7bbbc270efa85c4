//! Command-line and environment configuration of the audit service.

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
}

impl Config {
    /// A configuration with defaults for everything but the database.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            batch_max: 512,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new("sqlite://kms-audit.db")
    }
}
