//! `kms-audit validate-logs`: the aws CLI's `cloudtrail validate-logs` over the log dir.
//!
//! Same traversal as the CLI's `DigestTraverser`: start at the newest digest file of the
//! account and region, validate it (gzip + JSON, required fields, its recorded location,
//! the signing key by fingerprint, the SHA256withRSA signature over CloudTrail's string to
//! sign, with the signature read from the `<digest>.meta` sidecar that stands for the S3
//! metadata), check the SHA-256 of every log file it lists, then follow
//! `previousDigestS3Object`; a missing or invalid digest is reported and the walk goes on
//! with the next older digest found in the folder. Messages are the CLI's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::logfiles::{self, DigestMeta};
use crate::signing;

/// What to validate.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    pub log_dir: PathBuf,
    pub account: String,
    pub region: String,
    /// The bucket name digests record (`digestS3Bucket`).
    pub bucket: String,
    /// Trusted public keys (PKCS #1 or X.509 DER), e.g. from ListPublicKeys.
    pub public_keys: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Digest,
    Log,
}

/// One checked file: `valid`, or `INVALID: <reason>` as the CLI words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: Kind,
    /// `s3://<bucket>/<key>`.
    pub location: String,
    /// None when valid, else the CLI's reason (`not found`, `hash value doesn't match`, ...).
    pub invalid: Option<String>,
}

impl Item {
    /// The CLI's status line, e.g. `Log file\ts3://b/k\tINVALID: not found`.
    pub fn line(&self) -> String {
        let what = match self.kind {
            Kind::Digest => "Digest file",
            Kind::Log => "Log file",
        };
        match &self.invalid {
            None => format!("{what}\t{}\tvalid", self.location),
            Some(reason) => format!("{what}\t{}\tINVALID: {reason}", self.location),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Report {
    pub items: Vec<Item>,
}

impl Report {
    fn count(&self, kind: Kind, valid: bool) -> usize {
        self.items
            .iter()
            .filter(|i| i.kind == kind && i.invalid.is_none() == valid)
            .count()
    }

    pub fn valid_digests(&self) -> usize {
        self.count(Kind::Digest, true)
    }
    pub fn invalid_digests(&self) -> usize {
        self.count(Kind::Digest, false)
    }
    pub fn valid_logs(&self) -> usize {
        self.count(Kind::Log, true)
    }
    pub fn invalid_logs(&self) -> usize {
        self.count(Kind::Log, false)
    }

    /// True when nothing is invalid (the CLI's exit status 0).
    pub fn is_valid(&self) -> bool {
        self.invalid_digests() == 0 && self.invalid_logs() == 0
    }

    /// The item whose location ends with `key`, if checked.
    pub fn find(&self, key: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.location.ends_with(key))
    }

    /// The CLI's summary.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        if self.items.iter().all(|i| i.kind != Kind::Digest) {
            out.push_str("No digests found\n");
            return out;
        }
        for (valid, invalid, name) in [
            (self.valid_digests(), self.invalid_digests(), "digest"),
            (self.valid_logs(), self.invalid_logs(), "log"),
        ] {
            let total = valid + invalid;
            if total > 0 {
                out.push_str(&format!("\n{valid}/{total} {name} files valid"));
                if invalid > 0 {
                    out.push_str(&format!(", {invalid}/{total} {name} files INVALID"));
                }
            }
        }
        out.push('\n');
        out
    }
}

/// The 16 characters of a digest key's end time (the CLI's `key[-24:-8]`).
fn key_date(key: &str) -> &str {
    let n = key.len();
    if n < 24 { "" } else { &key[n - 24..n - 8] }
}

/// Digest keys of the account and region in the folder, in S3 listing order.
fn list_digest_keys(opts: &ValidateOptions) -> Vec<String> {
    let base = logfiles::digest_dir(&opts.log_dir, &opts.account, &opts.region);
    let prefix = format!("{}_CloudTrail-Digest_{}_", opts.account, opts.region);
    let suffix = format!("_{}_", opts.region);
    let mut keys = Vec::new();
    let mut stack = vec![base];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let matches = name.starts_with(&prefix)
                && name.ends_with(".json.gz")
                && name.len() >= 24
                && name[..name.len() - 24].ends_with(&suffix);
            if matches && let Ok(rel) = path.strip_prefix(&opts.log_dir) {
                let key: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                keys.push(key.join("/"));
            }
        }
    }
    keys.sort();
    keys
}

/// Pop keys until one older than `before` (the CLI's `_get_last_digest`).
fn next_before(keys: &mut Vec<String>, before: &str) -> Option<String> {
    let date = key_date(before).to_owned();
    while let Some(k) = keys.pop() {
        if key_date(&k) < date.as_str() {
            return Some(k);
        }
    }
    None
}

enum DigestError {
    NotFound,
    Invalid(String),
}

fn key_path(log_dir: &Path, key: &str) -> PathBuf {
    key.split('/').fold(log_dir.to_path_buf(), |p, c| p.join(c))
}

const REQUIRED: [&str; 6] = [
    "digestPublicKeyFingerprint",
    "digestS3Bucket",
    "digestS3Object",
    "previousDigestSignature",
    "digestEndTime",
    "digestStartTime",
];

fn load_and_validate(
    opts: &ValidateOptions,
    keys: &HashMap<String, Vec<u8>>,
    key: &str,
) -> Result<Value, DigestError> {
    let path = key_path(&opts.log_dir, key);
    let raw = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(DigestError::NotFound),
        Err(e) => return Err(DigestError::Invalid(e.to_string())),
    };
    let invalid_format = || DigestError::Invalid("invalid format".into());
    let content = logfiles::gunzip(&raw).map_err(|_| invalid_format())?;
    let digest: Value = serde_json::from_slice(&content).map_err(|_| invalid_format())?;
    let mut meta_path = path.into_os_string();
    meta_path.push(logfiles::META_SUFFIX);
    let meta: DigestMeta = std::fs::read(PathBuf::from(meta_path))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| DigestError::Invalid("signature verification failed".into()))?;
    let obj = digest.as_object().ok_or_else(invalid_format)?;
    if REQUIRED.iter().any(|k| !obj.contains_key(*k)) {
        return Err(invalid_format());
    }
    let s = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or_default();
    if s("digestS3Bucket") != opts.bucket || s("digestS3Object") != key {
        return Err(DigestError::Invalid(
            "has been moved from its original location".into(),
        ));
    }
    let fingerprint = s("digestPublicKeyFingerprint");
    let Some(public_der) = keys.get(fingerprint) else {
        return Err(DigestError::Invalid(format!(
            "public key not found in region {} for fingerprint {fingerprint}",
            opts.region
        )));
    };
    let to_sign = logfiles::string_to_sign(
        s("digestEndTime"),
        s("digestS3Bucket"),
        s("digestS3Object"),
        &content,
        obj.get("previousDigestSignature").and_then(Value::as_str),
    );
    if meta.signature_algorithm != logfiles::SIGNATURE_ALGORITHM
        || !signing::verify(public_der, to_sign.as_bytes(), &meta.signature)
    {
        return Err(DigestError::Invalid("signature verification failed".into()));
    }
    Ok(digest)
}

fn check_log(opts: &ValidateOptions, log: &Value) -> Item {
    let bucket = log.get("s3Bucket").and_then(Value::as_str).unwrap_or("");
    let key = log.get("s3Object").and_then(Value::as_str).unwrap_or("");
    let expected = log.get("hashValue").and_then(Value::as_str).unwrap_or("");
    let invalid = if bucket != opts.bucket || key.is_empty() || key.contains("..") {
        Some("not found".to_owned())
    } else {
        match std::fs::read(key_path(&opts.log_dir, key)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("not found".into()),
            Err(_) => Some("invalid format".into()),
            Ok(raw) => match logfiles::gunzip(&raw) {
                Err(_) => Some("invalid format".into()),
                Ok(data) if logfiles::sha256_hex(&data) != expected => {
                    Some("hash value doesn't match".into())
                }
                Ok(_) => None,
            },
        }
    };
    Item {
        kind: Kind::Log,
        location: format!("s3://{bucket}/{key}"),
        invalid,
    }
}

/// Walk the digest chain of `opts.account` / `opts.region` and check every file.
pub fn validate_logs(opts: &ValidateOptions) -> Report {
    let keys: HashMap<String, Vec<u8>> = opts
        .public_keys
        .iter()
        .map(|der| (signing::fingerprint(der), der.clone()))
        .collect();
    let mut report = Report::default();
    let mut digests = list_digest_keys(opts);
    let mut next = digests.pop();
    while let Some(key) = next {
        let location = format!("s3://{}/{key}", opts.bucket);
        match load_and_validate(opts, &keys, &key) {
            Ok(digest) => {
                report.items.push(Item {
                    kind: Kind::Digest,
                    location,
                    invalid: None,
                });
                if let Some(logs) = digest.get("logFiles").and_then(Value::as_array) {
                    for log in logs {
                        report.items.push(check_log(opts, log));
                    }
                }
                next = match (
                    digest.get("previousDigestS3Bucket").and_then(Value::as_str),
                    digest.get("previousDigestS3Object").and_then(Value::as_str),
                ) {
                    (Some(_), Some(prev)) => Some(prev.to_owned()),
                    // A gap: go on with the next older digest in the folder.
                    _ => next_before(&mut digests, &key),
                };
            }
            Err(e) => {
                let reason = match e {
                    DigestError::NotFound => "not found".to_owned(),
                    DigestError::Invalid(r) => r,
                };
                report.items.push(Item {
                    kind: Kind::Digest,
                    location,
                    invalid: Some(reason),
                });
                next = next_before(&mut digests, &key);
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_before_skips_newer_keys() {
        let mut keys = vec![
            "a_20200101T000000Z.json.gz".to_owned(),
            "a_20200101T010000Z.json.gz".to_owned(),
            "a_20200101T020000Z.json.gz".to_owned(),
        ];
        assert_eq!(
            next_before(&mut keys, "a_20200101T020000Z.json.gz").as_deref(),
            Some("a_20200101T010000Z.json.gz")
        );
        assert_eq!(key_date("a_20200101T020000Z.json.gz"), "20200101T020000Z");
        assert_eq!(next_before(&mut keys, "a_20200101T000000Z.json.gz"), None);
    }
}
