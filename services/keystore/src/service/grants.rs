//! KMS grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant, and
//! grant tokens.
//!
//! Grants live in the `grants` table and, for the hot path, in memory by key ARN
//! ([`GrantIndex`]): every authorization question about a key carries the grants of that
//! key whose grantee is the caller (its ARN, or its role's ARN for a session), and authz
//! decides with them (`services/authz/src/grants.rs`). Ours are immediately consistent: a
//! grant is usable as soon as CreateGrant returns, with or without its grant token.
//!
//! Grant ids are 64 hex digits, as AWS's; grant tokens are opaque base64url strings that
//! name the grant (a version byte, the grant id's 32 bytes and 32 random bytes).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kms_proto::authz::v1 as authz_pb;
use serde::{Deserialize, Serialize};

use super::{
    CachedKey, KeyService, Page, decode_marker, page_limit, paginate, read,
    require_not_pending_deletion, write,
};
use crate::authz::Question;
use crate::error::{Error, Result};
use crate::model::{Caller, KEY_SPEC_SYMMETRIC_DEFAULT, KEY_USAGE_ENCRYPT_DECRYPT, now_ms};
use crate::store::{GrantRow, Store, StoreError};

/// AWS's quota: grants per KMS key.
pub const MAX_GRANTS_PER_KEY: usize = 50_000;
/// GrantTokens: up to 10 per request.
pub const MAX_GRANT_TOKENS: usize = 10;
/// Pairs per constraint, and characters per constraint value (AWS's limits).
const MAX_CONSTRAINT_PAIRS: usize = 8;
const MAX_CONSTRAINT_VALUE_CHARS: usize = 384;

const TOKEN_VERSION: u8 = 1;
const TOKEN_BYTES: usize = 1 + 32 + 32;

/// Operations that every key usage accepts in a grant.
const COMMON_OPERATIONS: &[&str] = &["CreateGrant", "RetireGrant", "DescribeKey"];

/// Operations whose requests carry an encryption context (constraints apply to them).
const CONTEXT_OPERATIONS: &[&str] = &[
    "Encrypt",
    "Decrypt",
    "ReEncryptFrom",
    "ReEncryptTo",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
];

/// GrantConstraints, as stored (JSON) and answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Constraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_equals: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_subset: Option<BTreeMap<String, String>>,
}

impl Constraints {
    fn is_empty(&self) -> bool {
        self.encryption_context_equals.is_none() && self.encryption_context_subset.is_none()
    }
}

/// One grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub grant_id: String,
    pub key_arn: String,
    pub grant_token: String,
    pub name: Option<String>,
    pub creation_date_ms: i64,
    pub grantee_principal: String,
    pub retiring_principal: Option<String>,
    /// `arn:aws:iam::<key account>:root`.
    pub issuing_account: String,
    pub operations: Vec<String>,
    pub constraints: Option<Constraints>,
}

impl Grant {
    fn to_row(&self) -> std::result::Result<GrantRow, StoreError> {
        let json = |e: serde_json::Error| StoreError::corrupt(format!("grant json: {e}"));
        Ok(GrantRow {
            grant_id: self.grant_id.clone(),
            key_arn: self.key_arn.clone(),
            grant_token: self.grant_token.clone(),
            name: self.name.clone(),
            creation_date: self.creation_date_ms,
            grantee_principal: self.grantee_principal.clone(),
            retiring_principal: self.retiring_principal.clone(),
            issuing_account: self.issuing_account.clone(),
            operations: serde_json::to_string(&self.operations).map_err(json)?,
            constraints: self
                .constraints
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(json)?,
        })
    }

    fn from_row(r: GrantRow) -> std::result::Result<Self, StoreError> {
        let bad = |_| StoreError::corrupt(format!("grant {} has bad JSON", r.grant_id));
        let operations = serde_json::from_str(&r.operations).map_err(bad)?;
        let constraints = r
            .constraints
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(bad)?;
        Ok(Grant {
            grant_id: r.grant_id,
            key_arn: r.key_arn,
            grant_token: r.grant_token,
            name: r.name,
            creation_date_ms: r.creation_date,
            grantee_principal: r.grantee_principal,
            retiring_principal: r.retiring_principal,
            issuing_account: r.issuing_account,
            operations,
            constraints,
        })
    }

    /// The grant as authz sees it.
    pub fn to_authz(&self) -> authz_pb::Grant {
        let c = self.constraints.clone().unwrap_or_default();
        authz_pb::Grant {
            grant_id: self.grant_id.clone(),
            grantee_principal: self.grantee_principal.clone(),
            operations: self.operations.clone(),
            has_encryption_context_equals: c.encryption_context_equals.is_some(),
            encryption_context_equals: c
                .encryption_context_equals
                .unwrap_or_default()
                .into_iter()
                .collect(),
            has_encryption_context_subset: c.encryption_context_subset.is_some(),
            encryption_context_subset: c
                .encryption_context_subset
                .unwrap_or_default()
                .into_iter()
                .collect(),
        }
    }

    /// CreateGrant's idempotency: the same name and parameters.
    fn same_request(&self, other: &Grant) -> bool {
        let mut a = self.operations.clone();
        let mut b = other.operations.clone();
        a.sort();
        b.sort();
        self.name == other.name
            && self.grantee_principal == other.grantee_principal
            && self.retiring_principal == other.retiring_principal
            && a == b
            && self.constraints == other.constraints
    }
}

/// Every grant in memory: by key ARN (ordered by grant id), by id and by token.
#[derive(Default)]
pub struct GrantIndex {
    by_key: HashMap<String, Vec<Arc<Grant>>>,
    by_id: HashMap<String, Arc<Grant>>,
    by_token: HashMap<String, String>,
}

impl GrantIndex {
    pub fn load(rows: Vec<GrantRow>) -> std::result::Result<Self, StoreError> {
        let mut index = GrantIndex::default();
        for row in rows {
            index.insert(Grant::from_row(row)?);
        }
        Ok(index)
    }

    fn insert(&mut self, grant: Grant) {
        let grant = Arc::new(grant);
        let list = self.by_key.entry(grant.key_arn.clone()).or_default();
        let at = list.partition_point(|g| g.grant_id < grant.grant_id);
        list.insert(at, Arc::clone(&grant));
        self.by_token
            .insert(grant.grant_token.clone(), grant.grant_id.clone());
        self.by_id.insert(grant.grant_id.clone(), grant);
    }

    fn remove(&mut self, grant_id: &str) {
        if let Some(g) = self.by_id.remove(grant_id) {
            self.by_token.remove(&g.grant_token);
            if let Some(list) = self.by_key.get_mut(&g.key_arn) {
                list.retain(|x| x.grant_id != grant_id);
                if list.is_empty() {
                    self.by_key.remove(&g.key_arn);
                }
            }
        }
    }

    fn of_key(&self, key_arn: &str) -> &[Arc<Grant>] {
        self.by_key.get(key_arn).map(Vec::as_slice).unwrap_or(&[])
    }

    fn by_token(&self, token: &str) -> Option<Arc<Grant>> {
        self.by_token
            .get(token)
            .and_then(|id| self.by_id.get(id))
            .cloned()
    }
}

/// CreateGrant's parameters.
#[derive(Debug, Default, Clone)]
pub struct CreateGrantInput {
    pub key_id: String,
    pub grantee_principal: String,
    pub retiring_principal: Option<String>,
    pub operations: Vec<String>,
    pub constraints: Option<Constraints>,
    pub grant_tokens: Vec<String>,
    pub name: Option<String>,
}

/// The caller's ARNs a grant can name: its own and, for a session, its role's.
fn caller_arns(caller: &Caller) -> (&str, Option<&str>) {
    match &caller.context.caller {
        Some(c) => (
            c.arn.as_str(),
            (!c.role_arn.is_empty()).then_some(c.role_arn.as_str()),
        ),
        None => ("", None),
    }
}

fn is_caller(caller: &Caller, principal: &str) -> bool {
    let (arn, role) = caller_arns(caller);
    (!arn.is_empty() && arn == principal) || role == Some(principal)
}

/// Validates GrantTokens (every operation that accepts them): at most 10, each one a
/// token this KMS issued. A token names its grant; ours are usable at once anyway.
pub fn check_grant_tokens(tokens: &[String]) -> Result<()> {
    if tokens.len() > MAX_GRANT_TOKENS {
        return Err(Error::Validation(format!(
            "1 validation error detected: Value '{tokens:?}' at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to {MAX_GRANT_TOKENS}"
        )));
    }
    for t in tokens {
        parse_token(t)?;
    }
    Ok(())
}

fn invalid_token() -> Error {
    Error::InvalidGrantToken("Invalid grant token.".to_owned())
}

/// The grant id a well-formed token names.
fn parse_token(token: &str) -> Result<String> {
    let bytes = b64url_decode(token).ok_or_else(invalid_token)?;
    if bytes.len() != TOKEN_BYTES || bytes[0] != TOKEN_VERSION {
        return Err(invalid_token());
    }
    Ok(hex::encode(&bytes[1..33]))
}

fn new_grant_id_and_token() -> Result<(String, String)> {
    let mut bytes = [0u8; TOKEN_BYTES];
    bytes[0] = TOKEN_VERSION;
    aws_lc_rs::rand::fill(&mut bytes[1..])
        .map_err(|_| Error::Crypto(crate::crypto::CryptoError::Random))?;
    Ok((hex::encode(&bytes[1..33]), b64url_encode(&bytes)))
}

fn check_grant_id(grant_id: &str) -> Result<()> {
    if grant_id.len() == 64 && grant_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(Error::InvalidGrantId("Invalid grant ID.".to_owned()))
    }
}

fn grant_not_found(grant_id: &str) -> Error {
    Error::NotFound(format!("Grant ID {grant_id} not found"))
}

/// An IAM principal ARN a grant may name (account, user, role, assumed role, federated
/// user), or a service principal.
fn valid_principal(p: &str) -> bool {
    if p.ends_with(".amazonaws.com") && !p.contains(':') && !p.contains('/') {
        return true;
    }
    let Some(rest) = p.strip_prefix("arn:") else {
        return false;
    };
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    let [partition, service, region, account, resource] = parts[..] else {
        return false;
    };
    !partition.is_empty()
        && (service == "iam" || service == "sts")
        && region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && (resource == "root"
            || ["user/", "role/", "assumed-role/", "federated-user/"]
                .iter()
                .any(|pre| resource.len() > pre.len() && resource.starts_with(pre)))
}

/// The grant operations a key accepts, by its usage and spec.
fn operations_for(key: &CachedKey) -> Vec<&'static str> {
    let r = &key.record;
    let mut ops: Vec<&'static str> = COMMON_OPERATIONS.to_vec();
    match r.key_usage.as_str() {
        KEY_USAGE_ENCRYPT_DECRYPT if r.key_spec == KEY_SPEC_SYMMETRIC_DEFAULT => {
            ops.extend(CONTEXT_OPERATIONS)
        }
        KEY_USAGE_ENCRYPT_DECRYPT => ops.extend([
            "Encrypt",
            "Decrypt",
            "ReEncryptFrom",
            "ReEncryptTo",
            "GetPublicKey",
        ]),
        "SIGN_VERIFY" => ops.extend(["Sign", "Verify", "GetPublicKey"]),
        "GENERATE_VERIFY_MAC" => ops.extend(["GenerateMac", "VerifyMac"]),
        "KEY_AGREEMENT" => ops.extend(["DeriveSharedSecret", "GetPublicKey"]),
        _ => {}
    }
    ops
}

fn check_constraints(c: &Constraints) -> Result<()> {
    for (field, map) in [
        (
            "constraints.encryptionContextEquals",
            &c.encryption_context_equals,
        ),
        (
            "constraints.encryptionContextSubset",
            &c.encryption_context_subset,
        ),
    ] {
        let Some(map) = map else { continue };
        if map.len() > MAX_CONSTRAINT_PAIRS {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have at most {MAX_CONSTRAINT_PAIRS} entries"
            )));
        }
        if map
            .values()
            .any(|v| v.chars().count() > MAX_CONSTRAINT_VALUE_CHARS)
        {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value at '{field}' failed to satisfy constraint: Map value must have length less than or equal to {MAX_CONSTRAINT_VALUE_CHARS}"
            )));
        }
    }
    Ok(())
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":/_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Validation(format!(
            "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
        )))
    }
}

impl<S: Store> KeyService<S> {
    /// The key's grants that name the caller as grantee, for authz (see
    /// [`KeyService::authorize_key`]).
    pub(super) fn grants_for_caller(&self, caller: &Caller, key_arn: &str) -> Vec<authz_pb::Grant> {
        let index = read(&self.grants);
        let grants = index.of_key(key_arn);
        if grants.is_empty() {
            return Vec::new();
        }
        grants
            .iter()
            .filter(|g| is_caller(caller, &g.grantee_principal))
            .map(|g| g.to_authz())
            .collect()
    }

    /// CreateGrant: returns (grant id, grant token).
    pub async fn create_grant(
        &self,
        caller: &Caller,
        input: CreateGrantInput,
    ) -> Result<(String, String)> {
        check_grant_tokens(&input.grant_tokens)?;
        if input.operations.is_empty() {
            return Err(Error::Validation(
                "1 validation error detected: Value '[]' at 'operations' failed to satisfy constraint: Member must have length greater than or equal to 1"
                    .to_owned(),
            ));
        }
        for (field, p) in [
            ("granteePrincipal", Some(&input.grantee_principal)),
            ("retiringPrincipal", input.retiring_principal.as_ref()),
        ] {
            if let Some(p) = p
                && !valid_principal(p)
            {
                return Err(Error::Validation(format!(
                    "1 validation error detected: Value '{p}' at '{field}' failed to satisfy constraint: Member must be a valid principal ARN"
                )));
            }
        }
        if let Some(name) = &input.name {
            check_name(name)?;
        }
        let mut operations: Vec<String> = Vec::with_capacity(input.operations.len());
        for op in input.operations {
            if !operations.contains(&op) {
                operations.push(op);
            }
        }
        let constraints = input.constraints.filter(|c| !c.is_empty());
        if let Some(c) = &constraints {
            check_constraints(c)?;
        }

        let _writes = self.writes.lock().await;
        let key = self.resolve(caller, &input.key_id, "keyId", false)?;
        let allowed = operations_for(&key);
        let invalid: Vec<&str> = operations
            .iter()
            .map(String::as_str)
            .filter(|o| !allowed.contains(o))
            .collect();
        if !invalid.is_empty() {
            return Err(Error::Validation(format!(
                "Grant operations [{}] are not valid for a KMS key with KeyUsage {} and KeySpec {}.",
                invalid.join(", "),
                key.record.key_usage,
                key.record.key_spec
            )));
        }
        if constraints.is_some()
            && !(key.record.key_usage == KEY_USAGE_ENCRYPT_DECRYPT
                && key.record.key_spec == KEY_SPEC_SYMMETRIC_DEFAULT)
        {
            return Err(Error::Validation(
                "Encryption context grant constraints are supported only for symmetric encryption KMS keys."
                    .to_owned(),
            ));
        }
        let (grant_id, grant_token) = new_grant_id_and_token()?;
        let grant = Grant {
            grant_id,
            key_arn: key.record.arn.clone(),
            grant_token,
            name: input.name,
            creation_date_ms: now_ms(),
            grantee_principal: input.grantee_principal,
            retiring_principal: input.retiring_principal,
            issuing_account: format!("arn:aws:iam::{}:root", key.record.account_id),
            operations,
            constraints,
        };

        let mut q = self
            .key_question(caller, "CreateGrant", &key, Some(&input.key_id))
            .multi("kms:GrantOperations", grant.operations.clone())
            .key("kms:GranteePrincipal", grant.grantee_principal.as_str())
            .key("kms:GrantIsForAWSResource", "false");
        if let Some(r) = &grant.retiring_principal {
            q = q.key("kms:RetiringPrincipal", r.as_str());
        }
        if let Some(c) = &grant.constraints {
            let mut types = Vec::new();
            if c.encryption_context_equals.is_some() {
                types.push("EncryptionContextEquals".to_owned());
            }
            if c.encryption_context_subset.is_some() {
                types.push("EncryptionContextSubset".to_owned());
            }
            q = q.multi("kms:GrantConstraintType", types);
        }
        q.new_grant = Some(grant.to_authz());
        self.authorize_key(caller, &key, q).await?;
        require_not_pending_deletion(&key)?;

        // AWS's idempotency: a named grant with the same parameters is the same grant.
        let existing = {
            let index = read(&self.grants);
            let grants = index.of_key(&key.record.arn);
            if grant.name.is_some()
                && let Some(same) = grants.iter().find(|g| g.same_request(&grant))
            {
                Some((same.grant_id.clone(), same.grant_token.clone()))
            } else if grants.len() >= MAX_GRANTS_PER_KEY {
                return Err(Error::LimitExceeded(format!(
                    "The request was rejected because the number of grants for KMS key {} exceeds the limit of {MAX_GRANTS_PER_KEY}.",
                    key.record.arn
                )));
            } else {
                None
            }
        };
        if let Some(found) = existing {
            return Ok(found);
        }
        self.store.insert_grant(&grant.to_row()?).await?;
        let out = (grant.grant_id.clone(), grant.grant_token.clone());
        write(&self.grants).insert(grant);
        Ok(out)
    }

    /// ListGrants: the key's grants, ordered by grant id, optionally filtered.
    pub async fn list_grants(
        &self,
        caller: &Caller,
        key_id: &str,
        limit: Option<i32>,
        marker: Option<&str>,
        grant_id: Option<&str>,
        grantee_principal: Option<&str>,
    ) -> Result<Page<Arc<Grant>>> {
        let limit = page_limit(limit, 50, 100)?;
        let after = decode_marker(marker)?;
        if let Some(id) = grant_id {
            check_grant_id(id)?;
        }
        let key = self
            .resolve_authorized(caller, key_id, "keyId", "ListGrants", false)
            .await?;
        let index = read(&self.grants);
        let items: Vec<Arc<Grant>> = index
            .of_key(&key.record.arn)
            .iter()
            .filter(|g| after.as_deref().is_none_or(|a| g.grant_id.as_str() > a))
            .filter(|g| grant_id.is_none_or(|id| g.grant_id == id))
            .filter(|g| grantee_principal.is_none_or(|p| g.grantee_principal == p))
            .take(limit as usize + 1)
            .cloned()
            .collect();
        Ok(paginate(items, limit, |g| g.grant_id.as_str()))
    }

    /// ListRetirableGrants: every grant (on keys of any account) whose retiring
    /// principal is `retiring_principal`. Identity policies decide (no key resource).
    pub async fn list_retirable_grants(
        &self,
        caller: &Caller,
        retiring_principal: &str,
        limit: Option<i32>,
        marker: Option<&str>,
    ) -> Result<Page<Arc<Grant>>> {
        let limit = page_limit(limit, 50, 100)?;
        let after = decode_marker(marker)?;
        if !valid_principal(retiring_principal) {
            return Err(Error::InvalidArn(format!(
                "Invalid principal '{retiring_principal}'"
            )));
        }
        self.authorize_account(caller, "ListRetirableGrants", Question::default())
            .await?;
        let mut items: Vec<Arc<Grant>> = {
            let index = read(&self.grants);
            index
                .by_id
                .values()
                .filter(|g| g.retiring_principal.as_deref() == Some(retiring_principal))
                .filter(|g| after.as_deref().is_none_or(|a| g.grant_id.as_str() > a))
                .cloned()
                .collect()
        };
        // Grants of keys purged since the start are not shown.
        let keys: std::collections::HashSet<String> = read(&self.keys)
            .values()
            .map(|k| k.record.arn.clone())
            .collect();
        items.retain(|g| keys.contains(&g.key_arn));
        items.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
        items.truncate(limit as usize + 1);
        Ok(paginate(items, limit, |g| g.grant_id.as_str()))
    }

    /// RetireGrant, by GrantToken or by KeyId and GrantId. Allowed to the retiring
    /// principal, to the grantee when the grant has the RetireGrant operation, to the
    /// key's account, and to principals the key's policies allow kms:RetireGrant.
    pub async fn retire_grant(
        &self,
        caller: &Caller,
        grant_token: Option<&str>,
        key_id: Option<&str>,
        grant_id: Option<&str>,
    ) -> Result<()> {
        let _writes = self.writes.lock().await;
        let grant = match (grant_token, key_id, grant_id) {
            (Some(token), _, _) => {
                let named = parse_token(token)?;
                if let Some(id) = grant_id {
                    check_grant_id(id)?;
                }
                let grant = read(&self.grants)
                    .by_token(token)
                    .ok_or_else(|| grant_not_found(&named))?;
                if grant_id.is_some_and(|id| id != grant.grant_id) {
                    return Err(grant_not_found(grant_id.unwrap_or_default()));
                }
                grant
            }
            (None, Some(key_id), Some(grant_id)) => {
                check_grant_id(grant_id)?;
                let key = self.resolve(caller, key_id, "keyId", false)?;
                read(&self.grants)
                    .by_id
                    .get(grant_id)
                    .filter(|g| g.key_arn == key.record.arn)
                    .cloned()
                    .ok_or_else(|| grant_not_found(grant_id))?
            }
            _ => {
                return Err(Error::Validation(
                    "Either GrantToken or both KeyId and GrantId must be specified.".to_owned(),
                ));
            }
        };
        let key_account_root = is_caller(caller, &grant.issuing_account);
        let retiring = grant
            .retiring_principal
            .as_deref()
            .is_some_and(|p| is_caller(caller, p));
        // The grantee through this grant only (another grant's RetireGrant does not count).
        let grantee = is_caller(caller, &grant.grantee_principal)
            && grant.operations.iter().any(|o| o == "RetireGrant");
        if !(key_account_root || retiring || grantee) {
            // Principals the key's policies allow kms:RetireGrant.
            let key = self
                .key_of_grant(&grant)
                .ok_or_else(|| grant_not_found(&grant.grant_id))?;
            let q = self.key_question(caller, "RetireGrant", &key, key_id);
            self.authorize(caller, q).await?;
        }
        self.store.delete_grant(&grant.grant_id).await?;
        write(&self.grants).remove(&grant.grant_id);
        Ok(())
    }

    fn key_of_grant(&self, grant: &Grant) -> Option<Arc<CachedKey>> {
        read(&self.keys)
            .values()
            .find(|k| k.record.arn == grant.key_arn)
            .cloned()
    }

    /// RevokeGrant: kms:RevokeGrant on the key (key policy and IAM).
    pub async fn revoke_grant(&self, caller: &Caller, key_id: &str, grant_id: &str) -> Result<()> {
        check_grant_id(grant_id)?;
        let _writes = self.writes.lock().await;
        let key = self
            .resolve_authorized(caller, key_id, "keyId", "RevokeGrant", false)
            .await?;
        let found = read(&self.grants)
            .by_id
            .get(grant_id)
            .is_some_and(|g| g.key_arn == key.record.arn);
        if !found {
            return Err(grant_not_found(grant_id));
        }
        self.store.delete_grant(grant_id).await?;
        write(&self.grants).remove(grant_id);
        Ok(())
    }
}

/// The contract's GrantConstraints (an empty map is no constraint).
pub fn constraints_from_pb(c: kms_proto::keystore::v1::GrantConstraints) -> Constraints {
    Constraints {
        encryption_context_equals: (!c.encryption_context_equals.is_empty())
            .then(|| c.encryption_context_equals.into_iter().collect()),
        encryption_context_subset: (!c.encryption_context_subset.is_empty())
            .then(|| c.encryption_context_subset.into_iter().collect()),
    }
}

/// A grant as ListGrants and ListRetirableGrants answer it.
pub fn entry(g: &Grant) -> kms_proto::keystore::v1::GrantListEntry {
    kms_proto::keystore::v1::GrantListEntry {
        key_id: g.key_arn.clone(),
        grant_id: g.grant_id.clone(),
        name: g.name.clone(),
        creation_date: crate::model::ms_to_epoch_seconds(g.creation_date_ms),
        grantee_principal: g.grantee_principal.clone(),
        retiring_principal: g.retiring_principal.clone(),
        issuing_account: g.issuing_account.clone(),
        operations: g.operations.clone(),
        constraints: g
            .constraints
            .as_ref()
            .map(|c| kms_proto::keystore::v1::GrantConstraints {
                encryption_context_subset: c
                    .encryption_context_subset
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                encryption_context_equals: c
                    .encryption_context_equals
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            }),
    }
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64URL[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.as_bytes().chunks(4) {
        let mut n: u32 = 0;
        for (i, &c) in chunk.iter().enumerate() {
            let v = B64URL.iter().position(|&x| x == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        let bytes = chunk.len() - 1;
        for i in 0..bytes {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_name_their_grant() {
        let (id, token) = new_grant_id_and_token().unwrap();
        assert_eq!(id.len(), 64);
        assert!(check_grant_id(&id).is_ok());
        assert_eq!(parse_token(&token).unwrap(), id);
        assert!(check_grant_tokens(std::slice::from_ref(&token)).is_ok());
        for bad in ["", "x", "not a token", &token[..token.len() - 2], "AAAA"] {
            assert!(
                matches!(parse_token(bad), Err(Error::InvalidGrantToken(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            check_grant_id("abc"),
            Err(Error::InvalidGrantId(_))
        ));
    }

    #[test]
    fn base64url_matches_the_alphabet() {
        assert_eq!(b64url_encode(b"Man"), "TWFu");
        assert_eq!(b64url_encode(b"Ma"), "TWE");
        assert_eq!(b64url_encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(b64url_decode("TWE").unwrap(), b"Ma");
        assert_eq!(b64url_decode("-_8").unwrap(), vec![0xfb, 0xff]);
        assert!(b64url_decode("T").is_none());
        assert!(b64url_decode("T*E").is_none());
    }

    #[test]
    fn principals_are_arns_or_service_principals() {
        for ok in [
            "arn:aws:iam::111122223333:root",
            "arn:aws:iam::111122223333:user/Alice",
            "arn:aws:iam::111122223333:role/App",
            "arn:aws:sts::111122223333:assumed-role/App/s1",
            "lambda.amazonaws.com",
        ] {
            assert!(valid_principal(ok), "{ok}");
        }
        for bad in [
            "Alice",
            "arn:aws:iam::1111:user/Alice",
            "arn:aws:kms:us-east-1:111122223333:key/x",
            "arn:aws:iam::111122223333:user/",
        ] {
            assert!(!valid_principal(bad), "{bad}");
        }
    }
}
