//! Configuration of the key store (flags, or `KMS_KEYSTORE_*` environment variables)
//! and where its root key comes from.
//!
//! The root key wraps every KMS key's material at rest. It is given inline
//! (`KMS_KEYSTORE_ROOT_KEY`, 64 hex digits) or as a file holding the same. In
//! development mode a missing key file is created with a fresh random key (mode 0600);
//! otherwise the service refuses to start without a root key.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::crypto::RootKey;

#[derive(Clone, clap::Args)]
pub struct Config {
    /// SQLite database URL, for example `sqlite:///var/lib/kms/keystore.db`.
    #[arg(
        long,
        env = "KMS_KEYSTORE_DATABASE_URL",
        default_value = "sqlite://keystore.db"
    )]
    pub database_url: String,

    /// File holding the root key as 64 hex digits. With --dev it is created if missing.
    #[arg(long, env = "KMS_KEYSTORE_ROOT_KEY_FILE")]
    pub root_key_file: Option<PathBuf>,

    /// The root key itself, 64 hex digits (32 bytes). Prefer --root-key-file.
    #[arg(long, env = "KMS_KEYSTORE_ROOT_KEY", hide_env_values = true)]
    pub root_key: Option<String>,

    /// Development mode: generate a root key into --root-key-file on first start.
    #[arg(long, env = "KMS_KEYSTORE_DEV")]
    pub dev: bool,

    /// gRPC URL of the authz service, which decides every operation (fail closed:
    /// while it cannot be reached, every call fails).
    #[arg(
        long,
        env = "KMS_KEYSTORE_AUTHZ_URL",
        default_value = DEFAULT_AUTHZ_URL
    )]
    pub authz_url: String,
    /// Mutual TLS of the gRPC server (and of its clients of other services).
    #[command(flatten)]
    pub internal_tls: kms_telemetry::tls::InternalTlsConfig,
}

/// authz's default standalone address.
pub const DEFAULT_AUTHZ_URL: &str = "http://127.0.0.1:50052";

impl Config {
    /// Development configuration: the database at `database_url`, the root key in
    /// `root_key_file`, generated on first start.
    pub fn dev(database_url: impl Into<String>, root_key_file: impl Into<PathBuf>) -> Self {
        Self {
            database_url: database_url.into(),
            root_key_file: Some(root_key_file.into()),
            root_key: None,
            dev: true,
            authz_url: DEFAULT_AUTHZ_URL.to_owned(),
            internal_tls: Default::default(),
        }
    }

    /// The same configuration with authz at `url` (e.g. `http://127.0.0.1:50052`).
    pub fn with_authz_url(self, url: impl Into<String>) -> Self {
        Self {
            authz_url: url.into(),
            ..self
        }
    }

    /// Production configuration with the root key in an existing file.
    pub fn with_root_key_file(
        database_url: impl Into<String>,
        root_key_file: impl Into<PathBuf>,
    ) -> Self {
        Self {
            dev: false,
            ..Self::dev(database_url, root_key_file)
        }
    }

    /// Reads (or, in dev mode, creates) the root key.
    pub(crate) fn root_key(&self) -> Result<RootKey, RootKeyError> {
        match (&self.root_key, &self.root_key_file) {
            (Some(_), Some(_)) => Err(RootKeyError::Both),
            (Some(inline), None) => RootKey::from_hex(inline).map_err(|_| RootKeyError::Malformed),
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(text) => {
                    let text = Zeroizing::new(text);
                    warn_if_exposed(path);
                    RootKey::from_hex(&text).map_err(|_| RootKeyError::Malformed)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.dev => {
                    generate_key_file(path)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err(RootKeyError::NoFile { path: path.clone() })
                }
                Err(source) => Err(RootKeyError::Read {
                    path: path.clone(),
                    source,
                }),
            },
            (None, None) if self.dev => Err(RootKeyError::DevWithoutFile),
            (None, None) => Err(RootKeyError::Missing),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &self.database_url)
            .field("root_key_file", &self.root_key_file)
            .field("root_key", &self.root_key.as_ref().map(|_| "<redacted>"))
            .field("dev", &self.dev)
            .field("authz_url", &self.authz_url)
            .field("internal_tls", &self.internal_tls)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RootKeyError {
    #[error(
        "give the root key either inline (--root-key, KMS_KEYSTORE_ROOT_KEY) or as a file (--root-key-file), not both"
    )]
    Both,
    #[error(
        "no root key: set --root-key-file or KMS_KEYSTORE_ROOT_KEY (or --dev with --root-key-file for a generated development key)"
    )]
    Missing,
    #[error("--dev needs --root-key-file to keep the generated root key")]
    DevWithoutFile,
    #[error("the root key must be 64 hex digits (32 bytes)")]
    Malformed,
    #[error("root key file {} does not exist (start with --dev to generate one)", path.display())]
    NoFile { path: PathBuf },
    #[error("cannot read root key file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write root key file {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the random generator failed")]
    Random,
}

fn generate_key_file(path: &Path) -> Result<RootKey, RootKeyError> {
    let write_err = |source| RootKeyError::Write {
        path: path.to_owned(),
        source,
    };
    let (key, hex_key) = RootKey::generate().map_err(|_| RootKeyError::Random)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(write_err)?;
    let line = Zeroizing::new(format!("{}\n", hex_key.as_str()));
    file.write_all(line.as_bytes()).map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    tracing::warn!(
        path = %path.display(),
        "DEVELOPMENT MODE: generated a new random root key and wrote it to this file. \
         Every key's material is wrapped under it: losing the file loses all keys, and \
         anyone who reads it can unwrap them. Do not use --dev in production."
    );
    Ok(key)
}

fn warn_if_exposed(path: &Path) {
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "root key file is readable by group or others; restrict it to mode 0600"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn dev_mode_generates_then_reuses_a_private_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("root.key");
        let config = Config::dev("sqlite://x.db", &path);
        config.root_key().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        config.root_key().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn without_dev_a_root_key_is_required() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        let config = Config::with_root_key_file("sqlite://x.db", &path);
        assert!(matches!(
            config.root_key(),
            Err(RootKeyError::NoFile { .. })
        ));
        assert!(!path.exists());

        let none = Config {
            root_key_file: None,
            ..config.clone()
        };
        assert!(matches!(none.root_key(), Err(RootKeyError::Missing)));
        let dev_no_file = Config {
            dev: true,
            ..none.clone()
        };
        assert!(matches!(
            dev_no_file.root_key(),
            Err(RootKeyError::DevWithoutFile)
        ));

        let inline = Config {
            root_key: Some("ab".repeat(32)),
            ..none.clone()
        };
        assert!(inline.root_key().is_ok());
        let short = Config {
            root_key: Some("ab".into()),
            ..none
        };
        assert!(matches!(short.root_key(), Err(RootKeyError::Malformed)));
        let both = Config {
            root_key: Some("ab".repeat(32)),
            ..config
        };
        assert!(matches!(both.root_key(), Err(RootKeyError::Both)));
    }

    #[test]
    fn flags_parse_and_debug_redacts_the_key() {
        let cli = Cli::try_parse_from([
            "kms-keystore",
            "--database-url",
            "sqlite:///tmp/k.db",
            "--root-key",
            "00112233",
            "--dev",
        ])
        .unwrap();
        assert_eq!(cli.config.database_url, "sqlite:///tmp/k.db");
        assert!(cli.config.dev);
        assert_eq!(cli.config.authz_url, "http://127.0.0.1:50052");
        let debug = format!("{:?}", cli.config);
        assert!(!debug.contains("00112233"));
        assert!(debug.contains("<redacted>"));
        let cli =
            Cli::try_parse_from(["kms-keystore", "--authz-url", "http://authz:50052"]).unwrap();
        assert_eq!(cli.config.authz_url, "http://authz:50052");
    }
}
