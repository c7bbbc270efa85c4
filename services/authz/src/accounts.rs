//! Accounts, their access keys, and how new ones are named and generated.

use std::path::Path;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::Error;

/// A secret access key. No `Debug`/`Display`: it must never reach a log.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalType {
    Root,
    IamUser,
    /// Temporary credentials of an STS AssumeRole session.
    AssumedRole,
}

impl PrincipalType {
    /// The CloudTrail `userIdentity.type` spelling, also the stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Root => "Root",
            Self::IamUser => "IAMUser",
            Self::AssumedRole => "AssumedRole",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Root" => Some(Self::Root),
            "IAMUser" => Some(Self::IamUser),
            "AssumedRole" => Some(Self::AssumedRole),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Inactive,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Inactive => "Inactive",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Active" => Some(Self::Active),
            "Inactive" => Some(Self::Inactive),
            _ => None,
        }
    }
}

/// An access key and the principal it signs for.
#[derive(Debug, Clone)]
pub struct AccessKey {
    pub access_key_id: String,
    pub account_id: String,
    pub secret: Secret,
    pub principal_arn: String,
    /// CloudTrail `userIdentity.principalId` (the account id for root).
    pub principal_id: String,
    pub principal_type: PrincipalType,
    /// IAM user name; empty for root.
    pub user_name: String,
    pub status: KeyStatus,
    pub created_ms: i64,
    /// Set for temporary credentials (AssumeRole sessions).
    pub session: Option<SessionInfo>,
}

/// What temporary credentials carry besides the key pair.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Hex SHA-256 of the session token (the token itself is not kept).
    pub token_sha256: String,
    pub role_arn: String,
    pub session_name: String,
    /// Unix milliseconds after which the credentials are expired.
    pub expires_ms: i64,
}

impl AccessKey {
    /// The root access key of `account_id`.
    pub fn root(account_id: &str, access_key_id: String, secret: Secret, created_ms: i64) -> Self {
        Self {
            access_key_id,
            account_id: account_id.to_owned(),
            secret,
            principal_arn: format!("arn:aws:iam::{account_id}:root"),
            principal_id: account_id.to_owned(),
            principal_type: PrincipalType::Root,
            user_name: String::new(),
            status: KeyStatus::Active,
            created_ms,
            session: None,
        }
    }
}

/// An account to create, with its root access key.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub account_id: String,
    pub root_key: AccessKey,
}

/// An account as listings show it (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    pub account_id: String,
    pub root_access_key_id: String,
}

/// What a caller asked for in CreateAccount (or a bootstrap entry); empty means generate.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    #[serde(default)]
    pub account_id: String,
    #[serde(default)]
    pub access_key_id: String,
    #[serde(default)]
    pub secret_access_key: String,
}

impl AccountSpec {
    /// Validate the given parts and generate the missing ones.
    pub fn build(self, now_ms: i64) -> Result<NewAccount, Error> {
        let account_id = if self.account_id.is_empty() {
            generate_account_id()
        } else {
            validate_account_id(&self.account_id)?;
            self.account_id
        };
        let (access_key_id, secret) = match (
            self.access_key_id.is_empty(),
            self.secret_access_key.is_empty(),
        ) {
            (true, true) => (generate_access_key_id(), generate_secret()),
            (false, false) => {
                validate_access_key_id(&self.access_key_id)?;
                validate_secret(&self.secret_access_key)?;
                (self.access_key_id, Secret::new(self.secret_access_key))
            }
            _ => {
                return Err(Error::Validation(
                    "accessKeyId and secretAccessKey must be given together or not at all".into(),
                ));
            }
        };
        Ok(NewAccount {
            root_key: AccessKey::root(&account_id, access_key_id, secret, now_ms),
            account_id,
        })
    }
}

fn constraint(value: &str, field: &str, rule: &str) -> Error {
    Error::Validation(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {rule}"
    ))
}

pub fn validate_account_id(id: &str) -> Result<(), Error> {
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(constraint(
            id,
            "accountId",
            "Member must satisfy regular expression pattern: ^\\d{12}$",
        ))
    }
}

fn validate_access_key_id(id: &str) -> Result<(), Error> {
    if (16..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(constraint(
            id,
            "accessKeyId",
            "Member must satisfy regular expression pattern: ^[A-Z0-9]{16,128}$",
        ))
    }
}

fn validate_secret(secret: &str) -> Result<(), Error> {
    // The value itself is never echoed back.
    if (16..=128).contains(&secret.len()) && secret.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(Error::Validation(
            "1 validation error detected: Value at 'secretAccessKey' failed to satisfy constraint: Member must be 16 to 128 printable ASCII characters".into(),
        ))
    }
}

/// `n` characters drawn uniformly from `alphabet` (rejection sampling, no modulo bias).
fn random_chars(alphabet: &[u8], n: usize) -> Zeroizing<String> {
    let rng = SystemRandom::new();
    let limit = 256 - 256 % alphabet.len();
    let mut out = Zeroizing::new(String::with_capacity(n));
    let mut buf = Zeroizing::new([0u8; 64]);
    while out.len() < n {
        rng.fill(&mut buf[..])
            .expect("system random generator failed");
        for &b in buf.iter() {
            if (b as usize) < limit && out.len() < n {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

pub fn generate_account_id() -> String {
    random_chars(b"0123456789", 12).to_string()
}

pub fn generate_access_key_id() -> String {
    format!(
        "AKIA{}",
        random_chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 16).as_str()
    )
}

/// `prefix` followed by `n` characters of IAM's unique-id alphabet (`AIDA...`, `AROA...`).
pub fn generate_id(prefix: &str, n: usize) -> String {
    format!(
        "{prefix}{}",
        random_chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", n).as_str()
    )
}

/// An STS session token: long, opaque, base64 alphabet.
pub fn generate_session_token() -> Secret {
    let chars = random_chars(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        356,
    );
    Secret::new(format!("IQoJb3JpZ2luX2Vj{}", chars.as_str()))
}

pub fn generate_secret() -> Secret {
    let chars = random_chars(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        40,
    );
    Secret::new(chars.to_string())
}

/// The accounts a fresh database starts with.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BootstrapFile {
    accounts: Vec<BootstrapAccount>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BootstrapAccount {
    account_id: String,
    access_key_id: String,
    secret_access_key: String,
}

impl std::fmt::Debug for BootstrapAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapAccount")
            .field("account_id", &self.account_id)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The two example accounts of the AWS documentation, used when no bootstrap file is given.
pub fn default_accounts(now_ms: i64) -> Vec<NewAccount> {
    [
        (
            "111122223333",
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        (
            "444455556666",
            "AKIAI44QH8DHBEXAMPLE",
            "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
        ),
    ]
    .into_iter()
    .map(|(account, key, secret)| NewAccount {
        account_id: account.to_owned(),
        root_key: AccessKey::root(
            account,
            key.to_owned(),
            Secret::new(secret.to_owned()),
            now_ms,
        ),
    })
    .collect()
}

/// Parse and validate a bootstrap file. Errors never quote secrets.
pub fn parse_bootstrap(text: &str, now_ms: i64) -> Result<Vec<NewAccount>, Error> {
    let file: BootstrapFile = serde_json::from_str(text).map_err(|e| {
        // serde_json errors carry positions, not values.
        Error::Validation(format!("bootstrap file is not valid: {e}"))
    })?;
    let mut accounts = Vec::with_capacity(file.accounts.len());
    for a in file.accounts {
        let spec = AccountSpec {
            account_id: a.account_id,
            access_key_id: a.access_key_id,
            secret_access_key: a.secret_access_key,
        };
        if spec.account_id.is_empty()
            || spec.access_key_id.is_empty()
            || spec.secret_access_key.is_empty()
        {
            return Err(Error::Validation(
                "bootstrap accounts need account_id, access_key_id and secret_access_key".into(),
            ));
        }
        accounts.push(spec.build(now_ms)?);
    }
    let mut ids: Vec<&str> = accounts.iter().map(|a| a.account_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut keys: Vec<&str> = accounts
        .iter()
        .map(|a| a.root_key.access_key_id.as_str())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    if ids.len() != accounts.len() || keys.len() != accounts.len() {
        return Err(Error::Validation(
            "bootstrap file repeats an account id or an access key id".into(),
        ));
    }
    Ok(accounts)
}

pub fn read_bootstrap(path: &Path, now_ms: i64) -> anyhow::Result<Vec<NewAccount>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading bootstrap file {}: {e}", path.display()))?;
    parse_bootstrap(&text, now_ms).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_aws_shapes() {
        let a = generate_account_id();
        assert!(validate_account_id(&a).is_ok(), "{a}");
        let k = generate_access_key_id();
        assert_eq!(k.len(), 20);
        assert!(k.starts_with("AKIA"));
        assert!(
            k.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
        let s = generate_secret();
        assert_eq!(s.expose().len(), 40);
        assert_ne!(generate_secret().expose(), s.expose());
    }

    #[test]
    fn secret_is_redacted_in_debug() {
        let key = AccessKey::root(
            "111122223333",
            "AKIAEXAMPLE0000000000".into(),
            Secret::new("topsecretvalue123".into()),
            0,
        );
        assert!(!format!("{key:?}").contains("topsecret"));
    }

    #[test]
    fn spec_validation() {
        assert!(
            AccountSpec {
                account_id: "12345".into(),
                ..Default::default()
            }
            .build(0)
            .is_err()
        );
        assert!(
            AccountSpec {
                access_key_id: "AKIAAAAAAAAAAAAAAAAA".into(),
                ..Default::default()
            }
            .build(0)
            .is_err()
        );
        let a = AccountSpec {
            account_id: "000000000001".into(),
            ..Default::default()
        }
        .build(0)
        .unwrap();
        assert_eq!(a.root_key.principal_arn, "arn:aws:iam::000000000001:root");
        assert_eq!(a.root_key.principal_id, "000000000001");
    }

    #[test]
    fn bootstrap_parsing() {
        let ok = r#"{"accounts":[{"account_id":"123456789012","access_key_id":"AKIATESTTESTTEST0001","secret_access_key":"abcdefghijklmnopqrstuvwxyz0123456789ABCD"}]}"#;
        let accts = parse_bootstrap(ok, 0).unwrap();
        assert_eq!(accts.len(), 1);
        assert_eq!(accts[0].root_key.access_key_id, "AKIATESTTESTTEST0001");
        let dup = r#"{"accounts":[
            {"account_id":"123456789012","access_key_id":"AKIATESTTESTTEST0001","secret_access_key":"abcdefghijklmnopqrstuvwxyz0123456789ABCD"},
            {"account_id":"123456789013","access_key_id":"AKIATESTTESTTEST0001","secret_access_key":"abcdefghijklmnopqrstuvwxyz0123456789ABCD"}]}"#;
        assert!(parse_bootstrap(dup, 0).is_err());
        let err = parse_bootstrap(r#"{"accounts":[{"account_id":"123456789012","access_key_id":"AKIATESTTESTTEST0001","secret_access_key":"s3cr3t-value-should-not-leak"}]"#, 0).unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"));
    }
}
