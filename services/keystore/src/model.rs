//! The key store's domain records, the caller of a request, and key identifiers as
//! callers write them (key id, key ARN, alias name, alias ARN).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Error;

pub const KEY_USAGE_ENCRYPT_DECRYPT: &str = "ENCRYPT_DECRYPT";
pub const KEY_SPEC_SYMMETRIC_DEFAULT: &str = "SYMMETRIC_DEFAULT";
pub const ORIGIN_AWS_KMS: &str = "AWS_KMS";
pub const ORIGIN_EXTERNAL: &str = "EXTERNAL";
pub const KEY_MANAGER_CUSTOMER: &str = "CUSTOMER";
pub const ALGORITHM_SYMMETRIC_DEFAULT: &str = "SYMMETRIC_DEFAULT";
pub const DEFAULT_POLICY_NAME: &str = "default";

/// Who is calling, and where: established by the gateway, never by the client.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account_id: String,
    /// Region of the endpoint the call arrived on.
    pub region: String,
    /// The request context as the gateway sent it: authz decides on it.
    pub context: kms_proto::common::v1::RequestContext,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
    /// A multi-Region primary key scheduled for deletion while it still has replica
    /// keys: its waiting period begins when the last replica is deleted.
    PendingReplicaDeletion,
    /// A key with origin EXTERNAL whose material is not (or no longer) imported.
    PendingImport,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
            KeyState::PendingDeletion => "PendingDeletion",
            KeyState::PendingReplicaDeletion => "PendingReplicaDeletion",
            KeyState::PendingImport => "PendingImport",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Enabled" => Some(KeyState::Enabled),
            "Disabled" => Some(KeyState::Disabled),
            "PendingDeletion" => Some(KeyState::PendingDeletion),
            "PendingReplicaDeletion" => Some(KeyState::PendingReplicaDeletion),
            "PendingImport" => Some(KeyState::PendingImport),
            _ => None,
        }
    }

    /// Scheduled for deletion: PendingDeletion, or PendingReplicaDeletion (which AWS
    /// treats alike in every operation but the start of the waiting period).
    pub fn is_pending_deletion(self) -> bool {
        matches!(
            self,
            KeyState::PendingDeletion | KeyState::PendingReplicaDeletion
        )
    }
}

/// A KMS key's metadata and policy (everything but its material).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    pub id: String,
    pub account_id: String,
    pub region: String,
    pub arn: String,
    pub description: String,
    pub key_usage: String,
    pub key_spec: String,
    pub origin: String,
    pub state: KeyState,
    pub creation_date_ms: i64,
    pub deletion_date_ms: Option<i64>,
    pub pending_window_days: Option<i32>,
    pub policy: String,
    pub multi_region: bool,
    pub current_material_id: u32,
    /// Bumped on every change (authz caches policies by it).
    pub version: i64,
    /// Automatic rotation period; `None` when automatic rotation is off.
    pub rotation_period_days: Option<i32>,
    /// When the next automatic rotation is due.
    pub next_rotation_ms: Option<i64>,
    /// Imported key material: KEY_MATERIAL_EXPIRES or KEY_MATERIAL_DOES_NOT_EXPIRE.
    pub expiration_model: Option<String>,
    /// Imported key material that expires: when.
    pub valid_to_ms: Option<i64>,
    /// SHA-256 over the key ARN and the imported material (only the same material
    /// may be imported again).
    pub import_fingerprint: Option<Vec<u8>>,
    /// Multi-Region keys: the Region of the primary key.
    pub primary_region: Option<String>,
}

impl KeyRecord {
    pub fn enabled(&self) -> bool {
        self.state == KeyState::Enabled
    }

    /// The key's row in the database and slot in the cache (see [`row_id`]).
    pub fn row_id(&self) -> String {
        row_id(&self.id, &self.region)
    }
}

/// The database row id (and cache slot) of key `id` in `region`: the key id, except
/// for multi-Region keys, whose primary and replicas share the key id:
/// `<key id>|<region>`.
pub fn row_id(id: &str, region: &str) -> String {
    if id.starts_with("mrk-") {
        format!("{id}|{region}")
    } else {
        id.to_owned()
    }
}

/// The key id of a row id.
pub fn key_id_of_row(row_id: &str) -> &str {
    row_id.split('|').next().unwrap_or(row_id)
}

/// One key material of a key, wrapped under the root key.
#[derive(Clone)]
pub struct MaterialRecord {
    pub key_id: String,
    pub material_id: u32,
    pub wrapped: Vec<u8>,
    pub created_ms: i64,
    /// `AUTOMATIC` or `ON_DEMAND` for materials made by a rotation; `None` for the
    /// key's original material.
    pub rotation_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRecord {
    pub account_id: String,
    pub region: String,
    /// Including the `alias/` prefix.
    pub alias_name: String,
    pub target_key_id: String,
    pub creation_date_ms: i64,
    pub last_updated_ms: i64,
}

impl AliasRecord {
    pub fn arn(&self) -> String {
        alias_arn(&self.region, &self.account_id, &self.alias_name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

pub fn key_arn(region: &str, account_id: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{region}:{account_id}:key/{key_id}")
}

pub fn alias_arn(region: &str, account_id: &str, alias_name: &str) -> String {
    format!("arn:aws:kms:{region}:{account_id}:{alias_name}")
}

/// AWS's default key policy for keys created through the API.
pub fn default_key_policy(account_id: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Id":"key-default-1","Statement":[{{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account_id}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#
    )
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Milliseconds to the seconds-since-epoch double of the KMS JSON API.
pub fn ms_to_epoch_seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// A key identifier as a caller wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRef<'a> {
    Id(&'a str),
    KeyArn {
        account_id: &'a str,
        region: &'a str,
        id: &'a str,
    },
    /// `alias/...`
    AliasName(&'a str),
    AliasArn {
        account_id: &'a str,
        region: &'a str,
        /// `alias/...`
        name: &'a str,
    },
}

impl<'a> KeyRef<'a> {
    /// Parses a KeyId parameter; `field` names it in validation messages.
    pub fn parse(input: &'a str, field: &str) -> Result<Self, Error> {
        if input.is_empty() {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
            )));
        }
        if input.len() > 2048 {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to 2048"
            )));
        }
        let invalid = || Error::NotFound(format!("Invalid keyId '{input}'"));
        if let Some(rest) = input.strip_prefix("arn:") {
            let mut parts = rest.splitn(5, ':');
            let (Some(partition), Some(service), Some(region), Some(account_id), Some(resource)) = (
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
            ) else {
                return Err(invalid());
            };
            if partition.is_empty()
                || service != "kms"
                || region.is_empty()
                || !is_account_id(account_id)
            {
                return Err(invalid());
            }
            if let Some(id) = resource.strip_prefix("key/") {
                if !is_key_id(id) {
                    return Err(invalid());
                }
                return Ok(KeyRef::KeyArn {
                    account_id,
                    region,
                    id,
                });
            }
            if resource.len() > "alias/".len() && resource.starts_with("alias/") {
                return Ok(KeyRef::AliasArn {
                    account_id,
                    region,
                    name: resource,
                });
            }
            return Err(invalid());
        }
        if input.starts_with("alias/") {
            return Ok(KeyRef::AliasName(input));
        }
        if is_key_id(input) {
            return Ok(KeyRef::Id(input));
        }
        Err(invalid())
    }

    pub fn is_alias(&self) -> bool {
        matches!(self, KeyRef::AliasName(_) | KeyRef::AliasArn { .. })
    }
}

/// A key id: a UUID (`1234abcd-12ab-34cd-56ef-1234567890ab`) or a multi-Region key id
/// (`mrk-` and 32 hex digits).
pub fn is_key_id(s: &str) -> bool {
    if let Some(hex_part) = s.strip_prefix("mrk-") {
        return hex_part.len() == 32 && hex_part.bytes().all(|b| b.is_ascii_hexdigit());
    }
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn parses_every_identifier_form() {
        assert_eq!(KeyRef::parse(ID, "keyId").unwrap(), KeyRef::Id(ID));
        assert_eq!(
            KeyRef::parse(
                &format!("arn:aws:kms:us-east-2:111122223333:key/{ID}"),
                "keyId"
            )
            .unwrap(),
            KeyRef::KeyArn {
                account_id: "111122223333",
                region: "us-east-2",
                id: ID
            }
        );
        assert_eq!(
            KeyRef::parse("alias/Example", "keyId").unwrap(),
            KeyRef::AliasName("alias/Example")
        );
        assert_eq!(
            KeyRef::parse("arn:aws:kms:us-east-2:111122223333:alias/Ex/ample", "keyId").unwrap(),
            KeyRef::AliasArn {
                account_id: "111122223333",
                region: "us-east-2",
                name: "alias/Ex/ample"
            }
        );
        assert!(KeyRef::parse("mrk-1234abcd12ab34cd56ef1234567890ab", "keyId").is_ok());
    }

    #[test]
    fn rejects_malformed_identifiers() {
        for bad in [
            "fake-key-id",
            "134f2428cec14b25a1ae9048164dba47",
            "arn:aws:kms:us-east-1:111122223333:key/not-a-uuid",
            "arn:aws:s3:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-1:1111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-1:111122223333:alias/",
            "arn:aws:kms:us-east-1:111122223333",
        ] {
            let err = KeyRef::parse(bad, "keyId").unwrap_err();
            assert!(
                matches!(err, Error::NotFound(ref m) if m == &format!("Invalid keyId '{bad}'")),
                "{bad}"
            );
        }
        assert!(matches!(
            KeyRef::parse("", "keyId"),
            Err(Error::Validation(_))
        ));
    }

    #[test]
    fn default_policy_is_json() {
        let p: serde_json::Value =
            serde_json::from_str(&default_key_policy("111122223333")).unwrap();
        assert_eq!(
            p["Statement"][0]["Principal"]["AWS"],
            "arn:aws:iam::111122223333:root"
        );
        assert_eq!(p["Id"], "key-default-1");
    }
}
