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

mod aliases;
mod crypto_ops;
mod keys;
mod tags;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::crypto::{AeadKey, RootKey};
use crate::error::{Error, Result};
use crate::model::{AliasRecord, Caller, KeyRecord, KeyRef, KeyState, alias_arn, key_arn};
use crate::store::{Store, StoreError};

pub use crypto_ops::ReEncryptInput;
pub use keys::CreateKeyInput;

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
}

/// The unwrapped materials of one key, by material id (a handful at most).
struct Materials(Vec<(u32, AeadKey)>);

impl Materials {
    fn get(&self, material_id: u32) -> Option<&AeadKey> {
        self.0
            .iter()
            .find(|(id, _)| *id == material_id)
            .map(|(_, k)| k)
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
        }
    }
}

pub struct KeyService<S> {
    store: S,
    root: RootKey,
    keys: RwLock<HashMap<String, Arc<CachedKey>>>,
    /// By [`alias_slot`].
    aliases: RwLock<HashMap<String, AliasRecord>>,
    writes: tokio::sync::Mutex<()>,
}

fn alias_slot(account_id: &str, region: &str, alias_name: &str) -> String {
    // `|` appears in none of the three parts.
    format!("{account_id}|{region}|{alias_name}")
}

impl<S: Store> KeyService<S> {
    /// Loads every key and alias from the store, unwrapping key material with `root`.
    /// Fails if any material does not unwrap (most likely: the wrong root key).
    pub async fn load(store: S, root: RootKey) -> Result<Self> {
        let stored = store.load_keys().await?;
        let mut keys = HashMap::with_capacity(stored.len());
        for key in stored {
            let mut materials = Vec::with_capacity(key.materials.len());
            for m in &key.materials {
                let unwrapped = root.unwrap_material(&key.record.arn, m.material_id, &m.wrapped)?;
                materials.push((m.material_id, unwrapped));
            }
            keys.insert(
                key.record.id.clone(),
                Arc::new(CachedKey {
                    record: key.record,
                    materials: Arc::new(Materials(materials)),
                }),
            );
        }
        let aliases = store
            .load_aliases()
            .await?
            .into_iter()
            .map(|a| (alias_slot(&a.account_id, &a.region, &a.alias_name), a))
            .collect();
        Ok(Self {
            store,
            root,
            keys: RwLock::new(keys),
            aliases: RwLock::new(aliases),
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

    fn key_by_id(&self, id: &str) -> Option<Arc<CachedKey>> {
        read(&self.keys).get(id).cloned()
    }

    fn publish_key(&self, key: CachedKey) -> Arc<CachedKey> {
        let key = Arc::new(key);
        write(&self.keys).insert(key.record.id.clone(), Arc::clone(&key));
        key
    }

    fn alias(&self, account_id: &str, region: &str, alias_name: &str) -> Option<AliasRecord> {
        read(&self.aliases)
            .get(&alias_slot(account_id, region, alias_name))
            .cloned()
    }

    fn alias_target(&self, account_id: &str, region: &str, alias_name: &str) -> Option<String> {
        read(&self.aliases)
            .get(&alias_slot(account_id, region, alias_name))
            .map(|a| a.target_key_id.clone())
    }

    /// Resolves a key identifier in the caller's account and region.
    ///
    /// `op` is the KMS action (without `kms:`) for AccessDenied messages. Until the
    /// authorization service decides, a key is usable only by principals of its own
    /// account: naming another account's key or alias is denied.
    fn resolve(
        &self,
        caller: &Caller,
        input: &str,
        field: &str,
        op: &str,
        accept_aliases: bool,
    ) -> Result<Arc<CachedKey>> {
        let key_ref = KeyRef::parse(input, field)?;
        if !accept_aliases && key_ref.is_alias() {
            return Err(Error::NotFound(format!("Invalid keyId '{input}'")));
        }
        let (account_id, region) = scope_of(&key_ref, caller);
        if account_id != caller.account_id {
            return Err(access_denied(caller, op, input));
        }
        if region != caller.region {
            return Err(Error::NotFound(format!("Invalid arn {region}")));
        }
        self.lookup(key_ref, account_id, region)
    }

    /// Resolves a key identifier in any account (for authz's ResolveKey).
    fn resolve_any_account(&self, caller: &Caller, input: &str) -> Result<Arc<CachedKey>> {
        let key_ref = KeyRef::parse(input, "keyId")?;
        let (account_id, region) = scope_of(&key_ref, caller);
        if region != caller.region {
            return Err(Error::NotFound(format!("Invalid arn {region}")));
        }
        self.lookup(key_ref, account_id, region)
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
        match self.key_by_id(id) {
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

fn access_denied(caller: &Caller, op: &str, resource: &str) -> Error {
    Error::AccessDenied(format!(
        "User: {} is not authorized to perform: kms:{op} on resource: {resource} because no resource-based policy allows the kms:{op} action",
        caller.arn
    ))
}

/// For cryptographic operations: only Enabled keys.
fn require_enabled(key: &CachedKey) -> Result<()> {
    match key.record.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(Error::Disabled(format!("{} is disabled.", key.record.arn))),
        KeyState::PendingDeletion => Err(pending_deletion(&key.record)),
    }
}

/// For management operations that AWS refuses on keys pending deletion.
fn require_not_pending_deletion(key: &CachedKey) -> Result<()> {
    if key.record.state == KeyState::PendingDeletion {
        return Err(pending_deletion(&key.record));
    }
    Ok(())
}

fn pending_deletion(record: &KeyRecord) -> Error {
    Error::InvalidState(format!("{} is pending deletion.", record.arn))
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
            arn: "arn:aws:iam::111122223333:root".into(),
            region: "us-east-1".into(),
        }
    }

    async fn service() -> (KeyService<SqliteStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ks.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        let (root, _) = RootKey::generate().unwrap();
        (KeyService::load(store, root).await.unwrap(), dir)
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
            svc.describe_key(&c, &doomed.id),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            svc.describe_key(&c, "alias/doomed"),
            Err(Error::NotFound(_))
        ));
        assert_eq!(svc.describe_key(&c, "alias/kept").unwrap().id, kept.id);
        let listed = svc.list_keys(&c, None, None).await.unwrap();
        assert_eq!(listed.items.len(), 1);
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
                    .unwrap()
                    .ciphertext_blob;
            }
            let enc = start.elapsed() / n;
            let start = std::time::Instant::now();
            for _ in 0..n {
                svc.decrypt(&c, &blob, &context, None, None, false).unwrap();
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
