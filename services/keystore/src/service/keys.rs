//! Key lifecycle (CreateKey, DescribeKey, ListKeys, Enable/Disable, deletion), key
//! policies, ResolveKey, and the deletion of keys whose waiting period is over.

use std::collections::HashSet;

use super::{
    KeyService, Page, decode_marker, page_limit, paginate, require_not_pending_deletion, write,
};
use crate::asymmetric::{
    KEY_USAGE_GENERATE_VERIFY_MAC, KEY_USAGE_KEY_AGREEMENT, KEY_USAGE_SIGN_VERIFY, PrivateKey,
    SpecKind, spec_kind,
};
use crate::authz::Question;
use crate::crypto::AeadKey;
use crate::error::{Error, Result};
use crate::model::{
    Caller, DEFAULT_POLICY_NAME, KEY_SPEC_SYMMETRIC_DEFAULT, KEY_USAGE_ENCRYPT_DECRYPT, KeyRecord,
    KeyState, MaterialRecord, ORIGIN_AWS_KMS, ORIGIN_EXTERNAL, Tag, default_key_policy, key_arn,
    now_ms,
};
use crate::service::tags::{MAX_TAGS_PER_KEY, validate_tags};
use crate::service::{CachedKey, Materials};
use crate::store::Store;

const KEY_SPECS: &[&str] = &[
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "SYMMETRIC_DEFAULT",
    "HMAC_224",
    "HMAC_256",
    "HMAC_384",
    "HMAC_512",
    "SM2",
    "ML_DSA_44",
    "ML_DSA_65",
    "ML_DSA_87",
    "ECC_NIST_EDWARDS25519",
];
const KEY_USAGES: &[&str] = &[
    "SIGN_VERIFY",
    "ENCRYPT_DECRYPT",
    "GENERATE_VERIFY_MAC",
    "KEY_AGREEMENT",
];
const ORIGINS: &[&str] = &["AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"];

const MAX_DESCRIPTION_LEN: usize = 8192;
const MAX_POLICY_CHARS: usize = 131_072;
/// KMS's quota on the size of a key policy.
const MAX_POLICY_BYTES: usize = 32_768;
pub(super) const DEFAULT_PENDING_WINDOW_DAYS: i32 = 30;
pub(super) const DAY_MS: i64 = 86_400_000;

/// CreateKey parameters.
#[derive(Debug, Default)]
pub struct CreateKeyInput {
    pub policy: Option<String>,
    pub description: Option<String>,
    pub key_usage: Option<String>,
    pub customer_master_key_spec: Option<String>,
    pub key_spec: Option<String>,
    pub origin: Option<String>,
    pub custom_key_store_id: Option<String>,
    pub multi_region: Option<bool>,
    pub xks_key_id: Option<String>,
    pub tags: Vec<Tag>,
    pub bypass_policy_lockout_safety_check: bool,
}

impl<S: Store> KeyService<S> {
    pub async fn create_key(&self, caller: &Caller, input: CreateKeyInput) -> Result<KeyRecord> {
        let description = input.description.unwrap_or_default();
        validate_description(&description)?;
        if input.key_spec.is_some() && input.customer_master_key_spec.is_some() {
            return Err(Error::Validation(
                "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated."
                    .into(),
            ));
        }
        let (spec_field, spec) = match (&input.key_spec, &input.customer_master_key_spec) {
            (Some(s), _) => ("keySpec", s.as_str()),
            (None, Some(s)) => ("customerMasterKeySpec", s.as_str()),
            (None, None) => ("keySpec", KEY_SPEC_SYMMETRIC_DEFAULT),
        };
        check_enum(spec_field, spec, KEY_SPECS)?;
        let usage = input
            .key_usage
            .as_deref()
            .unwrap_or(KEY_USAGE_ENCRYPT_DECRYPT);
        check_enum("keyUsage", usage, KEY_USAGES)?;
        let origin = input.origin.as_deref().unwrap_or(ORIGIN_AWS_KMS);
        check_enum("origin", origin, ORIGINS)?;
        if input.custom_key_store_id.is_some() {
            return Err(Error::CustomKeyStoreNotFound);
        }
        check_spec_and_usage(spec, usage, input.key_usage.is_some())?;
        let multi_region = input.multi_region == Some(true);
        match origin {
            ORIGIN_AWS_KMS => {}
            ORIGIN_EXTERNAL if multi_region => {
                return Err(Error::Unsupported(
                    "Multi-Region keys with imported key material (origin EXTERNAL) are not supported yet by this KMS."
                        .into(),
                ));
            }
            // Symmetric, asymmetric (the private key as DER PKCS#8) and HMAC keys.
            ORIGIN_EXTERNAL => {}
            _ => {
                return Err(Error::Unsupported(format!(
                    "Origin {origin} is not supported yet: this KMS creates keys with AWS_KMS or EXTERNAL origin."
                )));
            }
        }
        if input.xks_key_id.is_some() {
            return Err(Error::Unsupported(
                "XksKeyId is valid only for keys in an external key store, which this KMS does not support yet."
                    .into(),
            ));
        }
        if let Some(p) = &input.policy {
            validate_policy(p)?;
        }
        validate_tags(&input.tags)?;
        let distinct: HashSet<&str> = input.tags.iter().map(|t| t.key.as_str()).collect();
        if distinct.len() > MAX_TAGS_PER_KEY as usize {
            return Err(too_many_tags());
        }

        let id = if multi_region {
            format!("mrk-{}", uuid::Uuid::new_v4().simple())
        } else {
            uuid::Uuid::new_v4().to_string()
        };
        let external = origin == ORIGIN_EXTERNAL;
        let arn = key_arn(&caller.region, &caller.account_id, &id);
        let bypass = input.bypass_policy_lockout_safety_check;
        let question = || {
            Question::default()
                .key("kms:KeySpec", spec)
                .key("kms:KeyUsage", usage)
                .key("kms:KeyOrigin", origin)
                .key("kms:BypassPolicyLockoutSafetyCheck", bypass.to_string())
        };
        self.authorize_account(caller, "CreateKey", question())
            .await?;
        let policy = match input.policy {
            Some(p) => {
                let q = question().key("kms:CallerAccount", caller.account_id.as_str());
                self.lockout_safety_check(caller, &arn, &caller.account_id, &p, bypass, q)
                    .await?;
                p
            }
            None => default_key_policy(&caller.account_id),
        };
        let material_id = 1;
        let (materials, private, wrapped) = if external {
            // The material comes with ImportKeyMaterial.
            (Vec::new(), None, Vec::new())
        } else if spec == KEY_SPEC_SYMMETRIC_DEFAULT {
            let (material, raw) = AeadKey::generate()?;
            let wrapped = self.root.wrap_material(&arn, material_id, &raw)?;
            drop(raw);
            (
                vec![(material_id, std::sync::Arc::new(material))],
                None,
                wrapped,
            )
        } else {
            // RSA key generation takes a while: off the async workers.
            let (spec_owned, usage_owned) = (spec.to_owned(), usage.to_owned());
            let (private, secret) = tokio::task::spawn_blocking(move || {
                PrivateKey::generate(&spec_owned, &usage_owned)
            })
            .await
            .map_err(|_| Error::Crypto(crate::crypto::CryptoError::Random))??;
            let wrapped = self.root.wrap_secret(&arn, material_id, spec, &secret)?;
            drop(secret);
            (Vec::new(), Some(std::sync::Arc::new(private)), wrapped)
        };
        let now = now_ms();
        let record = KeyRecord {
            id: id.clone(),
            account_id: caller.account_id.clone(),
            region: caller.region.clone(),
            arn,
            description,
            key_usage: usage.into(),
            key_spec: spec.into(),
            origin: origin.into(),
            state: if external {
                KeyState::PendingImport
            } else {
                KeyState::Enabled
            },
            creation_date_ms: now,
            deletion_date_ms: None,
            pending_window_days: None,
            policy,
            multi_region,
            current_material_id: material_id,
            version: 1,
            rotation_period_days: None,
            next_rotation_ms: None,
            expiration_model: None,
            valid_to_ms: None,
            import_fingerprint: None,
            primary_region: multi_region.then(|| caller.region.clone()),
        };
        let stored: Vec<MaterialRecord> = if external {
            Vec::new()
        } else {
            vec![MaterialRecord {
                key_id: record.row_id(),
                material_id,
                wrapped,
                created_ms: now,
                rotation_type: None,
            }]
        };

        let _writes = self.writes.lock().await;
        self.store
            .insert_key_with(&record, &stored, &input.tags)
            .await?;
        self.publish_key(CachedKey {
            record: record.clone(),
            materials: std::sync::Arc::new(Materials(materials)),
            private,
        });
        tracing::info!(key_id = %record.id, account_id = %record.account_id, "key created");
        Ok(record)
    }

    pub async fn describe_key(&self, caller: &Caller, key_id: &str) -> Result<KeyRecord> {
        let key = self
            .resolve_authorized(caller, key_id, "keyId", "DescribeKey", true)
            .await?;
        Ok(key.record.clone())
    }

    /// (key id, key ARN) of the caller's keys.
    pub async fn list_keys(
        &self,
        caller: &Caller,
        limit: Option<i32>,
        marker: Option<&str>,
    ) -> Result<Page<(String, String)>> {
        let limit = page_limit(limit, 100, 1000)?;
        let after = decode_marker(marker)?;
        self.authorize_account(caller, "ListKeys", Question::default())
            .await?;
        let rows = self
            .store
            .list_keys(
                &caller.account_id,
                &caller.region,
                after.as_deref(),
                limit + 1,
            )
            .await?;
        Ok(paginate(rows, limit, |(id, _)| id))
    }

    pub async fn enable_key(&self, caller: &Caller, key_id: &str) -> Result<()> {
        self.update_key(caller, key_id, "EnableKey", None, |r| {
            require_not_pending(r)?;
            require_not_pending_import(r)?;
            r.state = KeyState::Enabled;
            Ok(())
        })
        .await
        .map(drop)
    }

    pub async fn disable_key(&self, caller: &Caller, key_id: &str) -> Result<()> {
        self.update_key(caller, key_id, "DisableKey", None, |r| {
            require_not_pending(r)?;
            require_not_pending_import(r)?;
            r.state = KeyState::Disabled;
            Ok(())
        })
        .await
        .map(drop)
    }

    pub async fn schedule_key_deletion(
        &self,
        caller: &Caller,
        key_id: &str,
        pending_window_in_days: Option<i32>,
    ) -> Result<KeyRecord> {
        let days = pending_window_in_days.unwrap_or(DEFAULT_PENDING_WINDOW_DAYS);
        if !(1..=365).contains(&days) {
            let bound = if days < 1 {
                "greater than or equal to 1"
            } else {
                "less than or equal to 365"
            };
            return Err(Error::Validation(format!(
                "1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value {bound}"
            )));
        }
        if !(7..=30).contains(&days) {
            return Err(Error::Validation(format!(
                "PendingWindowInDays should be between 7 and 30, but it is {days}"
            )));
        }
        self.update_key(caller, key_id, "ScheduleKeyDeletion", None, |r| {
            require_not_pending(r)?;
            // A multi-Region primary key outlives its replicas: its waiting period
            // begins when the last of them is deleted (see `purge_expired_at`).
            if self.has_replicas(r) {
                r.state = KeyState::PendingReplicaDeletion;
                r.deletion_date_ms = None;
            } else {
                r.state = KeyState::PendingDeletion;
                r.deletion_date_ms = Some(now_ms() + i64::from(days) * DAY_MS);
            }
            r.pending_window_days = Some(days);
            Ok(())
        })
        .await
    }

    /// Returns the key ARN.
    pub async fn cancel_key_deletion(&self, caller: &Caller, key_id: &str) -> Result<String> {
        let record = self
            .update_key(caller, key_id, "CancelKeyDeletion", None, |r| {
                if !r.state.is_pending_deletion() {
                    return Err(Error::InvalidState(format!(
                        "{} is not pending deletion.",
                        r.arn
                    )));
                }
                // As AWS: a key whose deletion is canceled comes back disabled, or
                // pending import when it has no imported material.
                r.state = if r.origin == ORIGIN_EXTERNAL && r.expiration_model.is_none() {
                    KeyState::PendingImport
                } else {
                    KeyState::Disabled
                };
                r.deletion_date_ms = None;
                r.pending_window_days = None;
                Ok(())
            })
            .await?;
        Ok(record.arn)
    }

    pub async fn update_key_description(
        &self,
        caller: &Caller,
        key_id: &str,
        description: String,
    ) -> Result<()> {
        validate_description(&description)?;
        self.update_key(caller, key_id, "UpdateKeyDescription", None, move |r| {
            require_not_pending(r)?;
            r.description = description;
            Ok(())
        })
        .await
        .map(drop)
    }

    pub async fn get_key_policy(
        &self,
        caller: &Caller,
        key_id: &str,
        policy_name: Option<&str>,
    ) -> Result<String> {
        validate_policy_name(policy_name)?;
        let key = self
            .resolve_authorized(caller, key_id, "keyId", "GetKeyPolicy", false)
            .await?;
        if policy_name.is_some_and(|n| n != DEFAULT_POLICY_NAME) {
            return Err(Error::NotFound("No such policy exists".into()));
        }
        Ok(key.record.policy.clone())
    }

    pub async fn put_key_policy(
        &self,
        caller: &Caller,
        key_id: &str,
        policy_name: Option<&str>,
        policy: String,
        bypass_lockout_check: bool,
    ) -> Result<()> {
        validate_policy_name(policy_name)?;
        validate_policy(&policy)?;
        if policy_name.is_some_and(|n| n != DEFAULT_POLICY_NAME) {
            // Resolve first so an unknown key still reads as NotFound.
            self.resolve(caller, key_id, "keyId", false)?;
            return Err(Error::Unsupported(
                "The only valid policy name is default.".into(),
            ));
        }
        self.update_key(
            caller,
            key_id,
            "PutKeyPolicy",
            Some(PolicyChange {
                bypass: bypass_lockout_check,
                new_policy: &policy,
            }),
            |r| {
                r.policy = policy.clone();
                Ok(())
            },
        )
        .await
        .map(drop)
    }

    pub async fn list_key_policies(
        &self,
        caller: &Caller,
        key_id: &str,
        limit: Option<i32>,
        marker: Option<&str>,
    ) -> Result<Page<String>> {
        let limit = page_limit(limit, 100, 1000)?;
        let after = decode_marker(marker)?;
        self.resolve_authorized(caller, key_id, "keyId", "ListKeyPolicies", false)
            .await?;
        let names = match after {
            Some(a) if a.as_str() >= DEFAULT_POLICY_NAME => Vec::new(),
            _ => vec![DEFAULT_POLICY_NAME.to_owned()],
        };
        Ok(paginate(names, limit, |n| n))
    }

    /// A key's owner, state and policy, from any identifier, in any account (authz
    /// decides who may use it).
    pub fn resolve_key(&self, caller: &Caller, key_id: &str) -> Result<KeyRecord> {
        Ok(self.resolve(caller, key_id, "keyId", true)?.record.clone())
    }

    /// Deletes the keys whose waiting period has ended, with their material, aliases
    /// and tags. Returns how many keys were deleted.
    pub async fn purge_expired(&self) -> Result<usize> {
        self.purge_expired_at(now_ms()).await
    }

    /// [`KeyService::purge_expired`] as of `now` (ms since the epoch): the sweeper
    /// passes the wall clock, tests a time past a waiting period. Then multi-Region
    /// primary keys pending replica deletion that have no replica left begin their
    /// waiting period (as of `now`).
    pub async fn purge_expired_at(&self, now: i64) -> Result<usize> {
        let _writes = self.writes.lock().await;
        let deleted = self.store.purge_expired(now).await?;
        if !deleted.is_empty() {
            let gone: HashSet<&str> = deleted.iter().map(String::as_str).collect();
            write(&self.keys).retain(|id, _| !gone.contains(id.as_str()));
            write(&self.aliases).remove_keys(&gone);
            for id in &deleted {
                tracing::info!(key_id = %id, "key deleted after its waiting period");
            }
        }
        // Checked on every sweep, not only after a replica was purged, so a primary
        // key left behind by a crash between the two commits still moves on.
        self.start_primary_deletions(now).await?;
        Ok(deleted.len())
    }

    /// Read-modify-write of a key's metadata under the write lock: the operation is
    /// authorized (on the policy in force, which cannot change meanwhile), then
    /// `change` sees the current record and may refuse; the version is bumped, the row
    /// committed and the cache updated. Key-only identifiers (no aliases).
    pub(super) async fn update_key(
        &self,
        caller: &Caller,
        key_id: &str,
        op: &str,
        policy_change: Option<PolicyChange<'_>>,
        change: impl FnOnce(&mut KeyRecord) -> Result<()>,
    ) -> Result<KeyRecord> {
        self.update_key_with(caller, key_id, op, policy_change, |q| q, change)
            .await
    }

    /// [`KeyService::update_key`] with extra condition keys (`conditions`) in the
    /// question authz decides.
    pub(super) async fn update_key_with(
        &self,
        caller: &Caller,
        key_id: &str,
        op: &str,
        policy_change: Option<PolicyChange<'_>>,
        conditions: impl FnOnce(Question) -> Question,
        change: impl FnOnce(&mut KeyRecord) -> Result<()>,
    ) -> Result<KeyRecord> {
        let _writes = self.writes.lock().await;
        let key = self.resolve(caller, key_id, "keyId", false)?;
        let mut question = conditions(self.key_question(caller, op, &key, None));
        if let Some(p) = &policy_change {
            question = question.key("kms:BypassPolicyLockoutSafetyCheck", p.bypass.to_string());
        }
        self.authorize_key(caller, &key, question).await?;
        if let Some(p) = policy_change {
            let question = self.key_question(caller, "PutKeyPolicy", &key, None);
            self.lockout_safety_check(
                caller,
                &key.record.arn,
                &key.record.account_id,
                p.new_policy,
                p.bypass,
                question,
            )
            .await?;
        }
        let mut record = key.record.clone();
        change(&mut record)?;
        if record == key.record {
            return Ok(record);
        }
        record.version += 1;
        self.store.update_key(&record).await?;
        self.publish_key(key.with_record(record.clone()));
        tracing::info!(key_id = %record.id, op, state = record.state.as_str(), "key updated");
        Ok(record)
    }

    /// For tag operations: the key, authorized for `op`, must not be pending deletion.
    pub(super) async fn resolve_for_change(
        &self,
        caller: &Caller,
        key_id: &str,
        field: &str,
        op: &str,
    ) -> Result<std::sync::Arc<CachedKey>> {
        let key = self
            .resolve_authorized(caller, key_id, field, op, false)
            .await?;
        require_not_pending_deletion(&key)?;
        Ok(key)
    }
}

/// PutKeyPolicy's extras: the bypass flag (a condition key) and the new policy to
/// run the lockout safety check on.
pub(super) struct PolicyChange<'a> {
    bypass: bool,
    new_policy: &'a str,
}

fn require_not_pending(record: &KeyRecord) -> Result<()> {
    if record.state.is_pending_deletion() {
        return Err(super::pending_deletion(record));
    }
    Ok(())
}

/// EnableKey / DisableKey: a key awaiting its imported material has no state to
/// toggle.
fn require_not_pending_import(record: &KeyRecord) -> Result<()> {
    if record.state == KeyState::PendingImport {
        return Err(super::pending_import(record));
    }
    Ok(())
}

pub(super) fn too_many_tags() -> Error {
    Error::LimitExceeded(format!(
        "The request was rejected because a quota was exceeded: a KMS key can have at most {MAX_TAGS_PER_KEY} tags."
    ))
}

/// AWS's allowed (KeySpec, KeyUsage) pairs; pairs AWS allows but this KMS does not
/// create yet are UnsupportedOperationException.
fn check_spec_and_usage(spec: &str, usage: &str, usage_given: bool) -> Result<()> {
    let allowed: &[&str] = match spec {
        KEY_SPEC_SYMMETRIC_DEFAULT => &[KEY_USAGE_ENCRYPT_DECRYPT],
        "RSA_2048" | "RSA_3072" | "RSA_4096" => &[KEY_USAGE_ENCRYPT_DECRYPT, KEY_USAGE_SIGN_VERIFY],
        "ECC_NIST_P256" | "ECC_NIST_P384" | "ECC_NIST_P521" => {
            &[KEY_USAGE_SIGN_VERIFY, "KEY_AGREEMENT"]
        }
        "ECC_SECG_P256K1" | "ML_DSA_44" | "ML_DSA_65" | "ML_DSA_87" | "ECC_NIST_EDWARDS25519" => {
            &[KEY_USAGE_SIGN_VERIFY]
        }
        "HMAC_224" | "HMAC_256" | "HMAC_384" | "HMAC_512" => &[KEY_USAGE_GENERATE_VERIFY_MAC],
        "SM2" => &[
            KEY_USAGE_ENCRYPT_DECRYPT,
            KEY_USAGE_SIGN_VERIFY,
            "KEY_AGREEMENT",
        ],
        _ => &[],
    };
    if !allowed.contains(&usage) {
        if !usage_given && spec != KEY_SPEC_SYMMETRIC_DEFAULT {
            return Err(Error::Validation(format!(
                "You must specify a KeyUsage value for a KMS key with KeySpec {spec}. Valid values: {}.",
                allowed.join(", ")
            )));
        }
        return Err(Error::Validation(format!(
            "KeyUsage {usage} is not compatible with KeySpec {spec}. Valid KeyUsage values for {spec}: {}.",
            allowed.join(", ")
        )));
    }
    let supported = match spec_kind(spec) {
        SpecKind::Symmetric | SpecKind::Hmac(..) => true,
        SpecKind::Rsa(_) => true,
        SpecKind::Ec(_) => usage == KEY_USAGE_SIGN_VERIFY || usage == KEY_USAGE_KEY_AGREEMENT,
        SpecKind::Unsupported => false,
    };
    if !supported {
        return Err(Error::Unsupported(format!(
            "KeySpec {spec} with KeyUsage {usage} is not supported yet by this KMS; see the README's status table."
        )));
    }
    Ok(())
}

fn check_enum(field: &str, value: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(Error::Validation(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
        allowed.join(", ")
    )))
}

pub(super) fn validate_description(description: &str) -> Result<()> {
    if description.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(crate::error::validation(
            "description",
            "Member must have length less than or equal to 8192",
        ));
    }
    Ok(())
}

fn validate_policy_name(name: Option<&str>) -> Result<()> {
    if let Some(n) = name
        && (n.is_empty()
            || n.len() > 128
            || !n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'))
    {
        return Err(Error::Validation(format!(
            "1 validation error detected: Value '{n}' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w]+"
        )));
    }
    Ok(())
}

/// A key policy must be within the API's length constraint and KMS's size quota, of
/// the characters KMS allows (tab, newline, carriage return, U+0020..U+00FF), and a
/// well-formed policy document ([`crate::policy`]).
pub(super) fn validate_policy(policy: &str) -> Result<()> {
    if policy.is_empty() {
        return Err(crate::error::validation(
            "policy",
            "Member must have length greater than or equal to 1",
        ));
    }
    if policy.chars().count() > MAX_POLICY_CHARS {
        return Err(crate::error::validation(
            "policy",
            "Member must have length less than or equal to 131072",
        ));
    }
    if policy.len() > MAX_POLICY_BYTES {
        return Err(Error::LimitExceeded(format!(
            "The request was rejected because a quota was exceeded: a key policy cannot exceed {MAX_POLICY_BYTES} bytes."
        )));
    }
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}');
    if !policy.chars().all(allowed) {
        return Err(Error::MalformedPolicy(
            "A key policy can contain only tab, line feed, carriage return and the characters U+0020 through U+00FF."
                .into(),
        ));
    }
    Ok(crate::policy::check_key_policy(policy)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_must_be_well_formed_documents_of_allowed_characters() {
        assert!(validate_policy(&default_key_policy("111122223333")).is_ok());
        for bad in [
            "not json",
            "[1]",
            "{}",
            r#"{"Version":"2012-10-17","Statement":"nope"}"#,
            "{\"Statement\":[],\"a\":\"\u{263a}\"}",
        ] {
            assert!(
                matches!(validate_policy(bad), Err(Error::MalformedPolicy(_))),
                "{bad}"
            );
        }
        assert!(matches!(validate_policy(""), Err(Error::Validation(_))));
        // Over the size quota is LimitExceededException, as PutKeyPolicy documents.
        let huge = format!(
            "{{\"Statement\":[],\"Id\":\"{}\"}}",
            "x".repeat(MAX_POLICY_BYTES)
        );
        assert!(matches!(
            validate_policy(&huge),
            Err(Error::LimitExceeded(_))
        ));
    }

    #[test]
    fn enum_values_are_checked() {
        assert!(check_enum("keySpec", "SYMMETRIC_DEFAULT", KEY_SPECS).is_ok());
        let err = check_enum("keySpec", "AES", KEY_SPECS).unwrap_err();
        assert!(err.to_string().contains("Value 'AES' at 'keySpec'"));
    }

    #[test]
    fn policy_names_follow_the_model_pattern() {
        assert!(validate_policy_name(None).is_ok());
        assert!(validate_policy_name(Some("default")).is_ok());
        assert!(validate_policy_name(Some("bad-name")).is_err());
    }
}
