//! The key store's domain logic: KMS keys, their lifecycle, cryptographic operations,
//! aliases, tags and key policies, with AWS's semantics and messages.
//!
//! Every key (with its unwrapped material) and every alias is mirrored in memory, so
//! the cryptographic hot path (Encrypt, Decrypt, GenerateDataKey, ReEncrypt) never
//! reads the database. Writes are serialized by one async mutex: under it a write
//! reads the current state from the cache, commits to the database, then publishes
//! the new state to the cache. Callers must let a started write run to completion
//! (the gRPC layer runs writes on their own task) so the cache never falls behind a
//! commit.
//!
//! Every operation is decided by authz before it acts: the key is resolved (in any
//! account: cross-account use is for the key policy to allow), then one `Authorize`
//! call per key touched carries the key's policy and the request's KMS condition
//! keys. A write asks under the write lock, so the policy it was decided on is the
//! policy in force when it commits.

mod aliases;
mod crypto_ops;
mod data_key_pair;
pub mod grants;
mod import;
mod key_agreement;
mod keys;
mod multi_region;
mod rotation;
mod sign_ops;
mod tags;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::asymmetric::PrivateKey;
use crate::authz::{Authorizer, Question, requested_alias};
use crate::crypto::{AeadKey, RootKey};
use crate::error::{Error, Result};
use crate::model::{
    AliasRecord, Caller, KEY_SPEC_SYMMETRIC_DEFAULT, KeyRecord, KeyRef, KeyState, alias_arn,
    key_arn,
};
use crate::store::{Store, StoreError};

pub use crypto_ops::ReEncryptInput;
pub use import::ImportInput;
pub use keys::CreateKeyInput;
pub use multi_region::ReplicateInput;

/// A page of a List* operation; `next_marker` is set when the list is truncated.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_marker: Option<String>,
}

/// A key as the hot path sees it: metadata and unwrapped materials.
pub struct CachedKey {
    pub record: KeyRecord,
    materials: Arc<Materials>,
    /// The private (or HMAC) key of a non-symmetric key; symmetric keys have none.
    private: Option<Arc<PrivateKey>>,
}

/// The unwrapped materials of one key, by material id (a handful at most).
struct Materials(Vec<(u32, Arc<AeadKey>)>);

impl Materials {
    fn get(&self, material_id: u32) -> Option<&AeadKey> {
        self.0
            .iter()
            .find(|(id, _)| *id == material_id)
            .map(|(_, k)| k.as_ref())
    }
}

impl CachedKey {
    fn current_material(&self) -> Result<&AeadKey> {
        self.materials
            .get(self.record.current_material_id)
            .ok_or_else(|| {
                Error::Storage(StoreError::corrupt(format!(
                    "key {} has no current material",
                    self.record.id
                )))
            })
    }

    /// A copy of this key with new metadata and the same materials.
    fn with_record(&self, record: KeyRecord) -> CachedKey {
        CachedKey {
            record,
            materials: Arc::clone(&self.materials),
            private: self.private.clone(),
        }
    }
}

pub struct KeyService<S> {
    store: S,
    root: RootKey,
    authz: Arc<dyn Authorizer>,
    keys: RwLock<HashMap<String, Arc<CachedKey>>>,
    aliases: RwLock<Aliases>,
    /// Every grant, by key ARN (the authorization hot path reads no database).
    grants: RwLock<grants::GrantIndex>,
    writes: tokio::sync::Mutex<()>,
}

/// Every alias by [`alias_slot`], and the alias names of each key (the
/// `kms:ResourceAliases` condition key, without a scan on the hot path).
#[derive(Default)]
struct Aliases {
    by_slot: HashMap<String, AliasRecord>,
    by_key: HashMap<String, Vec<String>>,
}

impl Aliases {
    fn get(&self, slot: &str) -> Option<&AliasRecord> {
        self.by_slot.get(slot)
    }

    fn insert(&mut self, alias: AliasRecord) {
        let slot = alias_slot(&alias.account_id, &alias.region, &alias.alias_name);
        if let Some(old) = self.by_slot.remove(&slot) {
            self.unindex(&old);
        }
        self.by_key
            .entry(alias.target_key_id.clone())
            .or_default()
            .push(alias.alias_name.clone());
        self.by_slot.insert(slot, alias);
    }

    fn remove(&mut self, slot: &str) {
        if let Some(old) = self.by_slot.remove(slot) {
            self.unindex(&old);
        }
    }

    fn unindex(&mut self, alias: &AliasRecord) {
        if let Some(names) = self.by_key.get_mut(&alias.target_key_id) {
            names.retain(|n| *n != alias.alias_name);
            if names.is_empty() {
                self.by_key.remove(&alias.target_key_id);
            }
        }
    }

    /// Drops the aliases of the given keys (by row id).
    fn remove_keys(&mut self, gone: &std::collections::HashSet<&str>) {
        self.by_slot.retain(|_, a| {
            !gone.contains(crate::model::row_id(&a.target_key_id, &a.region).as_str())
        });
        let remaining: std::collections::HashSet<String> = self
            .by_slot
            .values()
            .map(|a| a.target_key_id.clone())
            .collect();
        self.by_key.retain(|id, _| remaining.contains(id));
    }

    fn names_of(&self, key_id: &str) -> Vec<String> {
        self.by_key.get(key_id).cloned().unwrap_or_default()
    }
}

fn alias_slot(account_id: &str, region: &str, alias_name: &str) -> String {
    // `|` appears in none of the three parts.
    format!("{account_id}|{region}|{alias_name}")
}

impl<S: Store> KeyService<S> {
    /// Loads every key and alias from the store, unwrapping key material with `root`.
    /// Fails if any material does not unwrap (most likely: the wrong root key).
    /// `authz` decides every operation.
    pub async fn load(store: S, root: RootKey, authz: Arc<dyn Authorizer>) -> Result<Self> {
        let stored = store.load_keys().await?;
        let mut keys = HashMap::with_capacity(stored.len());
        for key in stored {
            let mut materials = Vec::with_capacity(key.materials.len());
            let mut private = None;
            for m in &key.materials {
                if key.record.key_spec == KEY_SPEC_SYMMETRIC_DEFAULT {
                    let unwrapped =
                        root.unwrap_material(&key.record.arn, m.material_id, &m.wrapped)?;
                    materials.push((m.material_id, Arc::new(unwrapped)));
                } else {
                    let secret = root.unwrap_secret(
                        &key.record.arn,
                        m.material_id,
                        &key.record.key_spec,
                        &m.wrapped,
                    )?;
                    private = Some(Arc::new(PrivateKey::from_secret(
                        &key.record.key_spec,
                        &key.record.key_usage,
                        &secret,
                    )?));
                }
            }
            keys.insert(
                key.record.row_id(),
                Arc::new(CachedKey {
                    record: key.record,
                    materials: Arc::new(Materials(materials)),
                    private,
                }),
            );
        }
        let mut aliases = Aliases::default();
        for a in store.load_aliases().await? {
            aliases.insert(a);
        }
        let grant_index = grants::GrantIndex::load(store.load_grants().await?)?;
        Ok(Self {
            store,
            root,
            authz,
            keys: RwLock::new(keys),
            aliases: RwLock::new(aliases),
            grants: RwLock::new(grant_index),
            writes: tokio::sync::Mutex::new(()),
        })
    }

    /// Waits for the write in progress (writes run on their own tasks), then closes
    /// the store; later writes fail.
    pub async fn shutdown(&self) {
        let _writes = self.writes.lock().await;
        self.store.close().await;
    }

    pub fn key_count(&self) -> usize {
        read(&self.keys).len()
    }

    /// A key by its row id ([`crate::model::row_id`]; the key id for keys that are
    /// not multi-Region).
    fn key_by_id(&self, row_id: &str) -> Option<Arc<CachedKey>> {
        read(&self.keys).get(row_id).cloned()
    }

    /// Key `id` in `region`.
    fn key_in_region(&self, id: &str, region: &str) -> Option<Arc<CachedKey>> {
        // The row id is the key id itself unless the key is multi-Region: no copy of the
        // id per request for the common case.
        if id.starts_with("mrk-") {
            self.key_by_id(&crate::model::row_id(id, region))
        } else {
            self.key_by_id(id)
        }
    }

    fn publish_key(&self, key: CachedKey) -> Arc<CachedKey> {
        let key = Arc::new(key);
        write(&self.keys).insert(key.record.row_id(), Arc::clone(&key));
        key
    }

    fn alias(&self, account_id: &str, region: &str, alias_name: &str) -> Option<AliasRecord> {
        read(&self.aliases)
            .get(&alias_slot(account_id, region, alias_name))
            .cloned()
    }

    fn put_alias(&self, alias: AliasRecord) {
        write(&self.aliases).insert(alias);
    }

    fn drop_alias(&self, alias: &AliasRecord) {
        write(&self.aliases).remove(&alias_slot(
            &alias.account_id,
            &alias.region,
            &alias.alias_name,
        ));
    }

    fn alias_target(&self, account_id: &str, region: &str, alias_name: &str) -> Option<String> {
        read(&self.aliases)
            .get(&alias_slot(account_id, region, alias_name))
            .map(|a| a.target_key_id.clone())
    }

    /// Resolves a key identifier: a key id or alias name in the caller's account, a
    /// key or alias ARN in the account it names (whether the caller may use a key of
    /// another account is for its key policy to say). The region must be the caller's.
    fn resolve(
        &self,
        caller: &Caller,
        input: &str,
        field: &str,
        accept_aliases: bool,
    ) -> Result<Arc<CachedKey>> {
        let key_ref = KeyRef::parse(input, field)?;
        if !accept_aliases && key_ref.is_alias() {
            return Err(Error::NotFound(format!("Invalid keyId '{input}'")));
        }
        let (account_id, region) = scope_of(&key_ref, caller);
        if region != caller.region {
            return Err(Error::NotFound(format!("Invalid arn {region}")));
        }
        self.lookup(key_ref, account_id, region)
    }

    /// [`KeyService::resolve`] then [`KeyService::authorize_key`] for `op`.
    async fn resolve_authorized(
        &self,
        caller: &Caller,
        input: &str,
        field: &str,
        op: &str,
        accept_aliases: bool,
    ) -> Result<Arc<CachedKey>> {
        let key = self.resolve(caller, input, field, accept_aliases)?;
        let question = self.key_question(caller, op, &key, Some(input));
        self.authorize_key(caller, &key, question).await?;
        Ok(key)
    }

    /// The question about `op` on `key`, with the key's condition keys
    /// (`kms:KeySpec`, `kms:KeyUsage`, `kms:KeyOrigin`, `kms:CallerAccount`,
    /// `kms:ResourceAliases`, and `kms:RequestAlias` when `key_id` named an alias).
    fn key_question(
        &self,
        caller: &Caller,
        op: &str,
        key: &CachedKey,
        key_id: Option<&str>,
    ) -> Question {
        let r = &key.record;
        let mut q = Question::new(op, &r.arn, &r.account_id)
            .key("kms:KeySpec", r.key_spec.as_str())
            .key("kms:KeyUsage", r.key_usage.as_str())
            .key("kms:KeyOrigin", r.origin.as_str())
            .key("kms:CallerAccount", caller.account_id.as_str());
        q.key_policy = r.policy.clone();
        let aliases = read(&self.aliases).names_of(&r.id);
        if !aliases.is_empty() {
            q = q.multi("kms:ResourceAliases", aliases);
        }
        if let Some(alias) = key_id.and_then(requested_alias) {
            q = q.key("kms:RequestAlias", alias);
        }
        q
    }

    /// Asks authz about an operation on `key` (authz also refuses operations that do
    /// not work across accounts on another account's key).
    ///
    /// This, [`KeyService::authorize`] and [`KeyService::decide`] are plain functions
    /// that build authz's request before anything awaits, so the future a caller awaits
    /// holds authz's boxed answer and not the question. As `async fn`s, each level kept
    /// its own copy of the question in its state, and a call copied those states whole
    /// as it built them (the keystore's Encrypt future was 4.7 KB).
    fn authorize_key(
        &self,
        caller: &Caller,
        key: &CachedKey,
        mut question: Question,
    ) -> impl Future<Output = Result<()>> + Send + use<'_, S> {
        // The key's grants for this caller take part (see `grants.rs`).
        question.grants = self.grants_for_caller(caller, &key.record.arn);
        self.authorize(caller, question)
    }

    /// Asks authz; a deny is AccessDeniedException with authz's message, and no
    /// answer at all fails the call.
    fn authorize(
        &self,
        caller: &Caller,
        question: Question,
    ) -> impl Future<Output = Result<()>> + Send + use<'_, S> {
        let decision = self.decide(caller, question, true);
        async move {
            let decision = decision.await?;
            if decision.allowed {
                Ok(())
            } else if decision.denied_by_endpoint_policy {
                Err(Error::AccessDeniedByEndpointPolicy(decision.reason))
            } else {
                Err(Error::AccessDenied(decision.reason))
            }
        }
    }

    fn decide(
        &self,
        caller: &Caller,
        question: Question,
        with_endpoint_policy: bool,
    ) -> impl Future<Output = Result<kms_proto::authz::v1::Decision>> + Send + use<'_, S> {
        let endpoint_policy = if with_endpoint_policy {
            caller.context.endpoint_policy.clone()
        } else {
            String::new()
        };
        let request = kms_proto::authz::v1::AuthorizeRequest {
            context: Some(authz_context(&caller.context)),
            action: question.action,
            resource_arn: question.resource_arn,
            resource_account: question.resource_account,
            key_policy: question.key_policy,
            condition_keys: question.condition_keys,
            endpoint_policy,
            // IAM users and roles come with the identity issue; root principals need none.
            identity_policies: Vec::new(),
            multi_valued_condition_keys: question.multi_valued,
            grants: question.grants,
            grant_tokens: Vec::new(),
            new_grant: question.new_grant,
        };
        let answer = self.authz.authorize(request);
        async move { answer.await.map_err(Error::Authz) }
    }

    /// The policy lockout safety check of CreateKey and PutKeyPolicy: the caller must
    /// still be allowed `kms:PutKeyPolicy` on the key (`key_arn`) under `new_policy`.
    /// The endpoint policy plays no part (as in authz's `lockout_safety_check`).
    /// authz is asked even when `bypass` skips the check: a policy its engine cannot
    /// evaluate is refused (MalformedPolicyDocumentException with its message) rather
    /// than stored, which would leave the key unusable.
    async fn lockout_safety_check(
        &self,
        caller: &Caller,
        key_arn: &str,
        key_account: &str,
        new_policy: &str,
        bypass: bool,
        mut question: Question,
    ) -> Result<()> {
        question.action = "kms:PutKeyPolicy".to_owned();
        question.resource_arn = key_arn.to_owned();
        question.resource_account = key_account.to_owned();
        question.key_policy = new_policy.to_owned();
        let decision = self.decide(caller, question, false).await?;
        if decision.allowed || bypass {
            Ok(())
        } else {
            Err(Error::MalformedPolicy(LOCKOUT_MESSAGE.to_owned()))
        }
    }

    /// Asks authz about an operation without a key resource (`*`): identity
    /// policies decide.
    async fn authorize_account(&self, caller: &Caller, op: &str, mut q: Question) -> Result<()> {
        q.action = format!("kms:{op}");
        q.resource_arn = "*".to_owned();
        q.resource_account = caller.account_id.clone();
        q.condition_keys
            .insert("kms:CallerAccount".to_owned(), caller.account_id.clone());
        self.authorize(caller, q).await
    }

    fn lookup(
        &self,
        key_ref: KeyRef<'_>,
        account_id: &str,
        region: &str,
    ) -> Result<Arc<CachedKey>> {
        let target;
        let id = match key_ref {
            KeyRef::Id(id) | KeyRef::KeyArn { id, .. } => id,
            KeyRef::AliasName(name) | KeyRef::AliasArn { name, .. } => {
                target = self.alias_target(account_id, region, name).ok_or_else(|| {
                    Error::NotFound(format!(
                        "Alias {} is not found.",
                        alias_arn(region, account_id, name)
                    ))
                })?;
                target.as_str()
            }
        };
        match self.key_in_region(id, region) {
            Some(key) if key.record.account_id == account_id && key.record.region == region => {
                Ok(key)
            }
            _ => Err(Error::NotFound(format!(
                "Key '{}' does not exist",
                key_arn(region, account_id, id)
            ))),
        }
    }
}

/// The part of the request context authz reads (the caller and the network path, see
/// its `AccessRequest`): the endpoint policy travels in its own field (left empty where
/// the endpoint policy must play no part, so it must not ride along in the context
/// either), and the user agent and TLS details are for CloudTrail only. Copying and
/// encoding them on every authorization was a good part of the question's size.
fn authz_context(
    context: &kms_proto::common::v1::RequestContext,
) -> kms_proto::common::v1::RequestContext {
    kms_proto::common::v1::RequestContext {
        request_id: context.request_id.clone(),
        caller: context.caller.clone(),
        source_ip: context.source_ip.clone(),
        user_agent: String::new(),
        vpce_id: context.vpce_id.clone(),
        vpc_id: context.vpc_id.clone(),
        region: context.region.clone(),
        secure_transport: context.secure_transport,
        time_ms: context.time_ms,
        endpoint_policy: String::new(),
        tls: None,
    }
}

fn scope_of<'a>(key_ref: &KeyRef<'a>, caller: &'a Caller) -> (&'a str, &'a str) {
    match *key_ref {
        KeyRef::Id(_) | KeyRef::AliasName(_) => (&caller.account_id, &caller.region),
        KeyRef::KeyArn {
            account_id, region, ..
        }
        | KeyRef::AliasArn {
            account_id, region, ..
        } => (account_id, region),
    }
}

/// KMS's message when the key policy cannot help: an operation that does not work
/// across accounts, on a key of another account (`action` is `kms:<Op>`).
/// KMS's refusal of a key policy that would lock its author out.
pub const LOCKOUT_MESSAGE: &str =
    "The new key policy will not allow you to update the key policy in the future.";

/// For cryptographic operations: only Enabled keys.
fn require_enabled(key: &CachedKey) -> Result<()> {
    match key.record.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(Error::Disabled(format!("{} is disabled.", key.record.arn))),
        KeyState::PendingDeletion | KeyState::PendingReplicaDeletion => {
            Err(pending_deletion(&key.record))
        }
        KeyState::PendingImport => Err(pending_import(&key.record)),
    }
}

/// For management operations that AWS refuses on keys pending deletion.
fn require_not_pending_deletion(key: &CachedKey) -> Result<()> {
    if key.record.state.is_pending_deletion() {
        return Err(pending_deletion(&key.record));
    }
    Ok(())
}

/// KMSInvalidStateException for a key scheduled for deletion (either state).
fn pending_deletion(record: &KeyRecord) -> Error {
    let what = if record.state == KeyState::PendingReplicaDeletion {
        "pending replica deletion"
    } else {
        "pending deletion"
    };
    Error::InvalidState(format!("{} is {what}.", record.arn))
}

fn pending_import(record: &KeyRecord) -> Error {
    Error::InvalidState(format!("{} is pending import.", record.arn))
}

/// Validates a List* Limit: 1..=1000 per the API model, then capped at `max` (KMS
/// "might return fewer").
fn page_limit(limit: Option<i32>, default: u32, max: u32) -> Result<u32> {
    match limit {
        None => Ok(default),
        Some(l) if l < 1 => Err(Error::Validation(format!(
            "1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
        ))),
        Some(l) if l > 1000 => Err(Error::Validation(format!(
            "1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000"
        ))),
        Some(l) => Ok((l as u32).min(max)),
    }
}

/// Markers are opaque to clients: the hex encoding of the last item's sort key.
fn decode_marker(marker: Option<&str>) -> Result<Option<String>> {
    match marker {
        None => Ok(None),
        Some(m) => {
            let bytes = hex::decode(m).map_err(|_| Error::InvalidMarker)?;
            let s = String::from_utf8(bytes).map_err(|_| Error::InvalidMarker)?;
            if s.is_empty() {
                return Err(Error::InvalidMarker);
            }
            Ok(Some(s))
        }
    }
}

/// Builds a page from up to `limit + 1` fetched items.
fn paginate<T>(mut items: Vec<T>, limit: u32, sort_key: impl Fn(&T) -> &str) -> Page<T> {
    let limit = limit as usize;
    let next_marker = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| hex::encode(sort_key(last)))
    } else {
        None
    };
    Page { items, next_marker }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // The maps stay consistent even if a writer panicked: every write is a single
    // insert or remove.
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::now_ms;
    use crate::store::SqliteStore;

    fn caller() -> Caller {
        Caller {
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            context: Default::default(),
        }
    }

    async fn service() -> (KeyService<SqliteStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ks.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        let (root, _) = RootKey::generate().unwrap();
        let authz = Arc::new(crate::authz::testing::AllowAll);
        (KeyService::load(store, root, authz).await.unwrap(), dir)
    }

    /// Allows everything and keeps every question it was asked.
    #[derive(Default)]
    struct Recording(std::sync::Mutex<Vec<kms_proto::authz::v1::AuthorizeRequest>>);

    #[tonic::async_trait]
    impl Authorizer for Recording {
        async fn authorize(
            &self,
            request: kms_proto::authz::v1::AuthorizeRequest,
        ) -> std::result::Result<kms_proto::authz::v1::Decision, kms_proto::error::AwsError>
        {
            self.0.lock().unwrap().push(request);
            Ok(kms_proto::authz::v1::Decision {
                allowed: true,
                eval_decision: "allowed".into(),
                ..Default::default()
            })
        }
    }

    /// A cryptographic call's future holds authz's boxed answer, not a copy of the question
    /// per level of `async fn` (the keystore's Encrypt was 4.7 KB in a release build so).
    #[tokio::test]
    async fn a_cryptographic_call_future_stays_small() {
        let (svc, _dir) = service().await;
        let c = caller();
        let key = svc.create_key(&c, CreateKeyInput::default()).await.unwrap();
        let context = HashMap::new();
        let encrypt = svc.encrypt(&c, &key.id, b"x", &context, None, false);
        let size = std::mem::size_of_val(&encrypt);
        assert!(size < 1024, "an Encrypt future is {size} bytes");
        assert!(!encrypt.await.unwrap().ciphertext_blob.is_empty());
    }

    #[tokio::test]
    async fn authz_gets_the_caller_and_network_path_and_the_endpoint_policy_once() {
        use kms_proto::common::v1::{Caller as PbCaller, RequestContext, TlsDetails};
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ks.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        let (root, _) = RootKey::generate().unwrap();
        let recording = Arc::new(Recording::default());
        let svc = KeyService::load(store, root, recording.clone())
            .await
            .unwrap();
        let endpoint_policy =
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#;
        let context = RequestContext {
            request_id: "req-1".into(),
            caller: Some(PbCaller {
                account_id: "111122223333".into(),
                arn: "arn:aws:iam::111122223333:user/Alice".into(),
                principal_id: "AIDAEXAMPLE".into(),
                principal_type: "IAMUser".into(),
                user_name: "Alice".into(),
                access_key_id: "AKIAEXAMPLE".into(),
                role_arn: String::new(),
                session_name: String::new(),
            }),
            source_ip: "10.0.1.25".into(),
            user_agent: "aws-cli/2".into(),
            vpce_id: "vpce-1234abcdf5678c90a".into(),
            vpc_id: "vpc-12345678".into(),
            region: "us-east-1".into(),
            secure_transport: true,
            time_ms: 1_767_312_000_000,
            endpoint_policy: endpoint_policy.into(),
            tls: Some(TlsDetails {
                tls_version: "TLSv1.3".into(),
                ..Default::default()
            }),
        };
        let c = Caller {
            context: context.clone(),
            ..caller()
        };
        let key = svc.create_key(&c, CreateKeyInput::default()).await.unwrap();
        svc.encrypt(&c, &key.id, b"x", &HashMap::new(), None, false)
            .await
            .unwrap();
        {
            let asked = recording.0.lock().unwrap();
            let encrypt = asked
                .iter()
                .find(|r| r.action == "kms:Encrypt")
                .expect("Encrypt was authorized");
            assert_eq!(encrypt.endpoint_policy, endpoint_policy);
            assert_eq!(encrypt.key_policy, key.policy);
            let sent = encrypt.context.as_ref().unwrap();
            assert_eq!(sent.caller, context.caller);
            assert_eq!(sent.request_id, context.request_id);
            assert_eq!(sent.source_ip, context.source_ip);
            assert_eq!(sent.vpce_id, context.vpce_id);
            assert_eq!(sent.vpc_id, context.vpc_id);
            assert_eq!(sent.region, context.region);
            assert!(sent.secure_transport);
            assert_eq!(sent.time_ms, context.time_ms);
            // What authz never reads stays behind (the endpoint policy has its own field).
            assert!(sent.endpoint_policy.is_empty());
            assert!(sent.user_agent.is_empty());
            assert!(sent.tls.is_none());
        }
        // The lockout check of PutKeyPolicy leaves the endpoint policy out altogether
        // (the authorization of the call itself, also `kms:PutKeyPolicy`, has it).
        svc.put_key_policy(&c, &key.id, None, key.policy.clone(), false)
            .await
            .unwrap();
        let asked = recording.0.lock().unwrap();
        let puts: Vec<_> = asked
            .iter()
            .filter(|r| r.action == "kms:PutKeyPolicy")
            .collect();
        assert_eq!(puts.len(), 2, "the call and its lockout check");
        assert!(
            puts.iter().any(|r| r.endpoint_policy.is_empty()),
            "the lockout check"
        );
        assert!(puts.iter().any(|r| r.endpoint_policy == endpoint_policy));
        for r in puts {
            assert!(r.context.as_ref().unwrap().endpoint_policy.is_empty());
        }
    }

    #[tokio::test]
    async fn purging_expired_keys_updates_memory_too() {
        let (svc, _dir) = service().await;
        let c = caller();
        let doomed = svc.create_key(&c, CreateKeyInput::default()).await.unwrap();
        let kept = svc.create_key(&c, CreateKeyInput::default()).await.unwrap();
        svc.create_alias(&c, "alias/doomed", &doomed.id)
            .await
            .unwrap();
        svc.create_alias(&c, "alias/kept", &kept.id).await.unwrap();
        let scheduled = svc
            .schedule_key_deletion(&c, &doomed.id, Some(7))
            .await
            .unwrap();
        assert_eq!(svc.purge_expired().await.unwrap(), 0);

        // Let the waiting period end (behind the cache's back, as time would).
        let expired = KeyRecord {
            deletion_date_ms: Some(now_ms() - 1),
            ..scheduled
        };
        svc.store.update_key(&expired).await.unwrap();
        assert_eq!(svc.purge_expired().await.unwrap(), 1);

        assert_eq!(svc.key_count(), 1);
        assert!(matches!(
            svc.describe_key(&c, &doomed.id).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            svc.describe_key(&c, "alias/doomed").await,
            Err(Error::NotFound(_))
        ));
        assert_eq!(
            svc.describe_key(&c, "alias/kept").await.unwrap().id,
            kept.id
        );
        let listed = svc.list_keys(&c, None, None).await.unwrap();
        assert_eq!(listed.items.len(), 1);
    }

    #[tokio::test]
    async fn due_keys_are_rotated_by_the_scheduler() {
        let (svc, _dir) = service().await;
        let c = caller();
        let key = svc.create_key(&c, CreateKeyInput::default()).await.unwrap();
        let other = svc.create_key(&c, CreateKeyInput::default()).await.unwrap();
        let blob = svc
            .encrypt(&c, &key.id, b"old", &HashMap::new(), None, false)
            .await
            .unwrap()
            .ciphertext_blob;
        svc.enable_key_rotation(&c, &key.id, Some(90))
            .await
            .unwrap();
        svc.enable_key_rotation(&c, &other.id, None).await.unwrap();
        assert_eq!(svc.rotate_due().await.unwrap(), 0);

        // Let the period end (behind the cache's back, as time would).
        let cached = svc.key_by_id(&key.id).unwrap();
        let due = KeyRecord {
            next_rotation_ms: Some(now_ms() - 1),
            ..cached.record.clone()
        };
        svc.store.update_key(&due).await.unwrap();
        svc.publish_key(cached.with_record(due));
        assert_eq!(svc.rotate_due().await.unwrap(), 1);
        assert_eq!(svc.rotate_due().await.unwrap(), 0);

        let rotated = svc.describe_key(&c, &key.id).await.unwrap();
        assert_eq!(rotated.current_material_id, 2);
        let next = rotated.next_rotation_ms.unwrap();
        assert!(
            next > now_ms() + 89 * 86_400_000,
            "the next rotation is a period away"
        );
        assert_eq!(
            svc.describe_key(&c, &other.id)
                .await
                .unwrap()
                .current_material_id,
            1
        );
        let listed = svc
            .list_key_rotations(&c, &key.id, None, None, None)
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 1);
        assert_eq!(
            listed.items[0].1.info.rotation_type.as_deref(),
            Some("AUTOMATIC")
        );
        let opened = svc
            .decrypt(&c, &blob, &HashMap::new(), None, None, false)
            .await
            .unwrap();
        assert_eq!(opened.plaintext.as_slice(), b"old");
        // What was committed is what a restart loads.
        let stored = svc.store.load_keys().await.unwrap();
        let row = stored.iter().find(|k| k.record.id == key.id).unwrap();
        assert_eq!(row.record, rotated);
        assert_eq!(row.materials.len(), 2);
    }

    /// Keystore CPU per Encrypt/Decrypt without gRPC. Run with
    /// `cargo test --release -p kms-keystore -- --ignored --nocapture hot_path`.
    #[tokio::test]
    #[ignore = "timing; run in release"]
    async fn hot_path_cost() {
        let (svc, _dir) = service().await;
        let c = caller();
        let key = svc.create_key(&c, CreateKeyInput::default()).await.unwrap();
        svc.create_alias(&c, "alias/bench", &key.id).await.unwrap();
        let context: HashMap<String, String> = [("purpose".to_owned(), "bench".to_owned())].into();
        let plaintext = [7u8; 64];
        let n = 200_000;
        for id in [key.id.as_str(), key.arn.as_str(), "alias/bench"] {
            let start = std::time::Instant::now();
            let mut blob = Vec::new();
            for _ in 0..n {
                blob = svc
                    .encrypt(&c, id, &plaintext, &context, None, false)
                    .await
                    .unwrap()
                    .ciphertext_blob;
            }
            let enc = start.elapsed() / n;
            let start = std::time::Instant::now();
            for _ in 0..n {
                svc.decrypt(&c, &blob, &context, None, None, false)
                    .await
                    .unwrap();
            }
            let dec = start.elapsed() / n;
            println!(
                "key id form {id:.20}: encrypt {enc:?}/op, decrypt {dec:?}/op (64-byte plaintext)"
            );
        }
    }

    #[test]
    fn limits_are_validated_then_capped() {
        assert_eq!(page_limit(None, 50, 100).unwrap(), 50);
        assert_eq!(page_limit(Some(7), 50, 100).unwrap(), 7);
        assert_eq!(page_limit(Some(1000), 50, 100).unwrap(), 100);
        assert!(matches!(
            page_limit(Some(0), 50, 100),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            page_limit(Some(1001), 50, 100),
            Err(Error::Validation(_))
        ));
    }

    #[test]
    fn markers_round_trip_and_reject_garbage() {
        let page = paginate(vec!["a", "b", "c"], 2, |s| s);
        assert_eq!(page.items, vec!["a", "b"]);
        let marker = page.next_marker.unwrap();
        assert_eq!(decode_marker(Some(&marker)).unwrap().as_deref(), Some("b"));
        assert!(paginate(vec!["a"], 2, |s| s).next_marker.is_none());
        assert!(matches!(
            decode_marker(Some("zz")),
            Err(Error::InvalidMarker)
        ));
        assert!(matches!(decode_marker(Some("")), Err(Error::InvalidMarker)));
        assert!(matches!(
            decode_marker(Some("ff")),
            Err(Error::InvalidMarker)
        ));
    }
}
