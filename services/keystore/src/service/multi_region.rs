//! Multi-Region keys: ReplicateKey, UpdatePrimaryRegion, and the
//! MultiRegionConfiguration that DescribeKey shows.
//!
//! A multi-Region key (`mrk-` id) exists once per Region of its set, each copy its
//! own row (`<id>|<region>`, see [`crate::model::row_id`]) with the same key id and
//! the same key material (same material ids, each wrapped under its own ARN), so a
//! ciphertext of any copy decrypts with any other. Rotation of the primary adds the
//! new material to every replica ([`KeyService::propagate_material`]). Policies,
//! descriptions, tags, aliases and key states are per Region, as in AWS.
//!
//! A primary key scheduled for deletion while it has replicas is
//! `PendingReplicaDeletion`: unusable, not replicable, its primary Region fixed, and
//! with no deletion date until its last replica is deleted (purged, not merely
//! scheduled); then it is `PendingDeletion` and its waiting period begins
//! ([`KeyService::start_primary_deletions`], run by the sweeper).
//!
//! The Region of a request is its SigV4 credential scope (the gateway's context);
//! one stack serves every Region, so a replica is a row of the same store.

use std::collections::HashSet;
use std::sync::Arc;

use super::{CachedKey, KeyService, Materials};
use crate::asymmetric::PrivateKey;
use crate::authz::Question;
use crate::crypto::AeadKey;
use crate::error::{Error, Result};
use crate::model::{
    Caller, KEY_SPEC_SYMMETRIC_DEFAULT, KeyRecord, KeyState, MaterialRecord, Tag,
    default_key_policy, key_arn, now_ms,
};
use crate::service::tags::{MAX_TAGS_PER_KEY, validate_tags};
use crate::store::Store;

pub const MULTI_REGION_PRIMARY: &str = "PRIMARY";
pub const MULTI_REGION_REPLICA: &str = "REPLICA";

/// KeyMetadata.MultiRegionConfiguration, as (type, primary (ARN, Region),
/// replicas (ARN, Region)).
pub struct MultiRegionView {
    pub key_type: &'static str,
    pub primary: (String, String),
    pub replicas: Vec<(String, String)>,
}

/// ReplicateKey parameters.
pub struct ReplicateInput {
    pub key_id: String,
    pub replica_region: String,
    pub policy: Option<String>,
    pub bypass_policy_lockout_safety_check: bool,
    pub description: Option<String>,
    pub tags: Vec<Tag>,
}

fn valid_region(region: &str) -> bool {
    // ^([a-z]+-){2,3}\d+$
    let parts: Vec<&str> = region.split('-').collect();
    (3..=4).contains(&parts.len())
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn not_multi_region(r: &KeyRecord, op: &str) -> Error {
    Error::Unsupported(format!(
        "{} is not a multi-Region key: {op} works only on multi-Region keys.",
        r.arn
    ))
}

impl<S: Store> KeyService<S> {
    /// Every copy of multi-Region key `id` in `account_id`, any Region.
    fn copies(&self, account_id: &str, id: &str) -> Vec<Arc<CachedKey>> {
        let prefix = format!("{id}|");
        let mut v: Vec<Arc<CachedKey>> = super::read(&self.keys)
            .iter()
            .filter(|(row, k)| row.starts_with(&prefix) && k.record.account_id == account_id)
            .map(|(_, k)| Arc::clone(k))
            .collect();
        v.sort_by(|a, b| a.record.region.cmp(&b.record.region));
        v
    }

    /// Whether `r` is a multi-Region primary key with at least one replica key.
    pub(super) fn has_replicas(&self, r: &KeyRecord) -> bool {
        r.multi_region
            && r.primary_region.as_deref() == Some(r.region.as_str())
            && self
                .copies(&r.account_id, &r.id)
                .iter()
                .any(|k| k.record.region != r.region)
    }

    /// Under the write lock: every primary key pending replica deletion whose
    /// replicas are all deleted becomes PendingDeletion, its waiting period
    /// (the window ScheduleKeyDeletion recorded) starting at `now`.
    pub(super) async fn start_primary_deletions(&self, now: i64) -> Result<()> {
        let waiting: Vec<Arc<CachedKey>> = super::read(&self.keys)
            .values()
            .filter(|k| k.record.state == KeyState::PendingReplicaDeletion)
            .map(Arc::clone)
            .collect();
        for key in waiting {
            if self.has_replicas(&key.record) {
                continue;
            }
            let mut record = key.record.clone();
            let days = record
                .pending_window_days
                .unwrap_or(super::keys::DEFAULT_PENDING_WINDOW_DAYS);
            record.state = KeyState::PendingDeletion;
            record.deletion_date_ms = Some(now + i64::from(days) * super::keys::DAY_MS);
            record.version += 1;
            self.store.update_key(&record).await?;
            tracing::info!(key_id = %record.id, region = %record.region, "last replica deleted: primary key pending deletion");
            self.publish_key(key.with_record(record));
        }
        Ok(())
    }

    /// The MultiRegionConfiguration of a multi-Region key.
    pub fn multi_region_view(&self, r: &KeyRecord) -> Option<MultiRegionView> {
        if !r.multi_region {
            return None;
        }
        let primary_region = r.primary_region.clone().unwrap_or_else(|| r.region.clone());
        let copies = self.copies(&r.account_id, &r.id);
        let replicas = copies
            .iter()
            .filter(|k| k.record.region != primary_region)
            .map(|k| (k.record.arn.clone(), k.record.region.clone()))
            .collect();
        Some(MultiRegionView {
            key_type: if r.region == primary_region {
                MULTI_REGION_PRIMARY
            } else {
                MULTI_REGION_REPLICA
            },
            primary: (
                key_arn(&primary_region, &r.account_id, &r.id),
                primary_region,
            ),
            replicas,
        })
    }

    /// ReplicateKey: returns the replica's record, policy and tags.
    pub async fn replicate_key(
        &self,
        caller: &Caller,
        input: ReplicateInput,
    ) -> Result<(KeyRecord, String, Vec<Tag>)> {
        if !valid_region(&input.replica_region) {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value '{}' at 'replicaRegion' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([a-z]+-){{2,3}}\\d+$",
                input.replica_region
            )));
        }
        let description = input.description.clone().unwrap_or_default();
        super::keys::validate_description(&description)?;
        if let Some(p) = &input.policy {
            super::keys::validate_policy(p)?;
        }
        validate_tags(&input.tags)?;
        let distinct: HashSet<&str> = input.tags.iter().map(|t| t.key.as_str()).collect();
        if distinct.len() > MAX_TAGS_PER_KEY as usize {
            return Err(super::keys::too_many_tags());
        }

        let _writes = self.writes.lock().await;
        let primary = self.resolve(caller, &input.key_id, "keyId", false)?;
        let question = self
            .key_question(caller, "ReplicateKey", &primary, None)
            .key("kms:ReplicaRegion", input.replica_region.as_str());
        self.authorize_key(caller, &primary, question).await?;
        let p = &primary.record;
        if !p.multi_region {
            return Err(not_multi_region(p, "ReplicateKey"));
        }
        if p.primary_region.as_deref() != Some(p.region.as_str()) {
            return Err(Error::Unsupported(format!(
                "{} is a replica key: only the primary key of a multi-Region key can be replicated.",
                p.arn
            )));
        }
        if p.state.is_pending_deletion() {
            return Err(super::pending_deletion(p));
        }
        if input.replica_region == p.region {
            return Err(Error::Validation(format!(
                "The replica Region {} is the Region of the primary key.",
                input.replica_region
            )));
        }
        let arn = key_arn(&input.replica_region, &p.account_id, &p.id);
        if self.key_in_region(&p.id, &input.replica_region).is_some() {
            return Err(Error::AlreadyExists(format!(
                "Multi-Region key {arn} already exists."
            )));
        }
        let bypass = input.bypass_policy_lockout_safety_check;
        let policy = match input.policy {
            Some(policy) => {
                let q = Question::default()
                    .key("kms:KeySpec", p.key_spec.as_str())
                    .key("kms:KeyUsage", p.key_usage.as_str())
                    .key("kms:KeyOrigin", p.origin.as_str())
                    .key("kms:CallerAccount", caller.account_id.as_str())
                    .key("kms:BypassPolicyLockoutSafetyCheck", bypass.to_string());
                self.lockout_safety_check(caller, &arn, &p.account_id, &policy, bypass, q)
                    .await?;
                policy
            }
            None => default_key_policy(&p.account_id),
        };
        let now = now_ms();
        let record = KeyRecord {
            id: p.id.clone(),
            account_id: p.account_id.clone(),
            region: input.replica_region.clone(),
            arn: arn.clone(),
            description,
            key_usage: p.key_usage.clone(),
            key_spec: p.key_spec.clone(),
            origin: p.origin.clone(),
            state: if p.state == KeyState::Disabled {
                KeyState::Disabled
            } else {
                KeyState::Enabled
            },
            creation_date_ms: now,
            deletion_date_ms: None,
            pending_window_days: None,
            policy: policy.clone(),
            multi_region: true,
            current_material_id: p.current_material_id,
            version: 1,
            rotation_period_days: None,
            next_rotation_ms: None,
            expiration_model: None,
            valid_to_ms: None,
            import_fingerprint: None,
            primary_region: p.primary_region.clone(),
        };
        // The same materials, wrapped for the replica's ARN.
        let stored = self.store.key_materials(&p.row_id()).await?;
        let mut materials = Vec::with_capacity(stored.len());
        let mut aead = Vec::new();
        let mut private = None;
        for m in stored {
            let wrapped = if p.key_spec == KEY_SPEC_SYMMETRIC_DEFAULT {
                let wrapped = self
                    .root
                    .rewrap_material(&p.arn, &arn, m.material_id, &m.wrapped)?;
                let unwrapped: AeadKey =
                    self.root.unwrap_material(&arn, m.material_id, &wrapped)?;
                aead.push((m.material_id, Arc::new(unwrapped)));
                wrapped
            } else {
                let secret =
                    self.root
                        .unwrap_secret(&p.arn, m.material_id, &p.key_spec, &m.wrapped)?;
                private = Some(Arc::new(PrivateKey::from_secret(
                    &p.key_spec,
                    &p.key_usage,
                    &secret,
                )?));
                self.root
                    .wrap_secret(&arn, m.material_id, &p.key_spec, &secret)?
            };
            materials.push(MaterialRecord {
                key_id: record.row_id(),
                material_id: m.material_id,
                wrapped,
                created_ms: m.created_ms,
                rotation_type: m.rotation_type,
            });
        }
        self.store
            .insert_key_with(&record, &materials, &input.tags)
            .await?;
        self.publish_key(CachedKey {
            record: record.clone(),
            materials: Arc::new(Materials(aead)),
            private,
        });
        tracing::info!(key_id = %record.id, region = %record.region, "multi-Region key replicated");
        Ok((record, policy, input.tags))
    }

    pub async fn update_primary_region(
        &self,
        caller: &Caller,
        key_id: &str,
        primary_region: &str,
    ) -> Result<()> {
        if !valid_region(primary_region) {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value '{primary_region}' at 'primaryRegion' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([a-z]+-){{2,3}}\\d+$"
            )));
        }
        let _writes = self.writes.lock().await;
        let key = self.resolve(caller, key_id, "keyId", false)?;
        let question = self
            .key_question(caller, "UpdatePrimaryRegion", &key, None)
            .key("kms:PrimaryRegion", primary_region);
        self.authorize_key(caller, &key, question).await?;
        let r = &key.record;
        if !r.multi_region {
            return Err(not_multi_region(r, "UpdatePrimaryRegion"));
        }
        if r.primary_region.as_deref() != Some(r.region.as_str()) {
            return Err(Error::Unsupported(format!(
                "{} is a replica key: call UpdatePrimaryRegion in the Region of the primary key.",
                r.arn
            )));
        }
        if r.state.is_pending_deletion() {
            return Err(super::pending_deletion(r));
        }
        if primary_region == r.region {
            return Ok(());
        }
        let Some(new_primary) = self.key_in_region(&r.id, primary_region) else {
            return Err(Error::NotFound(format!(
                "Key '{}' does not exist",
                key_arn(primary_region, &r.account_id, &r.id)
            )));
        };
        if new_primary.record.state.is_pending_deletion() {
            return Err(super::pending_deletion(&new_primary.record));
        }
        for copy in self.copies(&r.account_id, &r.id) {
            let mut record = copy.record.clone();
            record.primary_region = Some(primary_region.to_owned());
            // The rotation schedule is a property of the primary key.
            if copy.record.region == primary_region {
                record.rotation_period_days = r.rotation_period_days;
                record.next_rotation_ms = r.next_rotation_ms;
            } else {
                record.rotation_period_days = None;
                record.next_rotation_ms = None;
            }
            record.version += 1;
            self.store.update_key(&record).await?;
            self.publish_key(copy.with_record(record));
        }
        tracing::info!(key_id = %r.id, primary_region, "primary Region updated");
        Ok(())
    }

    /// After a rotation of a multi-Region primary key (under the write lock): the
    /// new material `raw` (id `material_id`) becomes current in every replica too.
    pub(super) async fn propagate_material(
        &self,
        primary: &KeyRecord,
        material_id: u32,
        raw: &[u8; crate::crypto::KEY_LEN],
        rotation_type: &str,
    ) -> Result<()> {
        for copy in self.copies(&primary.account_id, &primary.id) {
            if copy.record.region == primary.region {
                continue;
            }
            let wrapped = self
                .root
                .wrap_material(&copy.record.arn, material_id, raw)?;
            let material = AeadKey::from_bytes(raw)?;
            let mut record = copy.record.clone();
            record.current_material_id = material_id;
            record.version += 1;
            let stored = MaterialRecord {
                key_id: record.row_id(),
                material_id,
                wrapped,
                created_ms: now_ms(),
                rotation_type: Some(rotation_type.to_owned()),
            };
            self.store.add_material(&record, &stored).await?;
            let mut materials: Vec<(u32, Arc<AeadKey>)> = copy
                .materials
                .0
                .iter()
                .map(|(id, k)| (*id, Arc::clone(k)))
                .collect();
            materials.push((material_id, Arc::new(material)));
            self.publish_key(CachedKey {
                record,
                materials: Arc::new(Materials(materials)),
                private: None,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::crypto::RootKey;
    use crate::service::CreateKeyInput;
    use crate::service::keys::DAY_MS;
    use crate::store::SqliteStore;

    /// CreateKey input of a multi-Region symmetric key.
    fn mrk() -> CreateKeyInput {
        CreateKeyInput {
            multi_region: Some(true),
            ..Default::default()
        }
    }

    fn caller(region: &str) -> Caller {
        Caller {
            account_id: "111122223333".into(),
            region: region.into(),
            context: Default::default(),
        }
    }

    #[tokio::test]
    async fn replicas_share_material_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ks.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        let (root, hex_key) = RootKey::generate().unwrap();
        let authz: Arc<dyn crate::authz::Authorizer> = Arc::new(crate::authz::testing::AllowAll);
        let svc = KeyService::load(store.clone(), root, Arc::clone(&authz))
            .await
            .unwrap();
        let (east, west) = (caller("us-east-1"), caller("us-west-2"));
        let key = svc.create_key(&east, mrk()).await.unwrap();
        assert!(key.id.starts_with("mrk-") && key.id.len() == 36);
        let empty = HashMap::new();
        let blob = svc
            .encrypt(&east, &key.id, b"east", &empty, None, false)
            .await
            .unwrap()
            .ciphertext_blob;
        let input = || ReplicateInput {
            key_id: key.id.clone(),
            replica_region: "us-west-2".into(),
            policy: None,
            bypass_policy_lockout_safety_check: false,
            description: None,
            tags: Vec::new(),
        };
        let (replica, _, _) = svc.replicate_key(&east, input()).await.unwrap();
        assert_eq!(replica.id, key.id);
        assert_eq!(replica.region, "us-west-2");
        assert!(matches!(
            svc.replicate_key(&east, input()).await,
            Err(Error::AlreadyExists(_))
        ));
        let opened = svc
            .decrypt(&west, &blob, &empty, None, None, false)
            .await
            .unwrap();
        assert_eq!(opened.plaintext.as_slice(), b"east");
        svc.rotate_key_on_demand(&east, &key.id).await.unwrap();
        let rotated = svc
            .encrypt(&east, &key.id, b"rotated", &empty, None, false)
            .await
            .unwrap()
            .ciphertext_blob;
        let view = svc.multi_region_view(&replica).unwrap();
        assert_eq!(view.key_type, MULTI_REGION_REPLICA);
        assert_eq!(view.primary.1, "us-east-1");
        assert_eq!(
            view.replicas,
            vec![(replica.arn.clone(), "us-west-2".into())]
        );
        svc.shutdown().await;

        // A restart loads both copies (row ids `<id>|<region>`) with every material.
        let store = SqliteStore::connect(&url).await.unwrap();
        let svc = KeyService::load(store, RootKey::from_hex(&hex_key).unwrap(), authz)
            .await
            .unwrap();
        for blob in [&blob, &rotated] {
            svc.decrypt(&west, blob, &empty, None, None, false)
                .await
                .unwrap();
            svc.decrypt(&east, blob, &empty, None, None, false)
                .await
                .unwrap();
        }
        let listed = svc.list_keys(&west, None, None).await.unwrap();
        assert_eq!(listed.items, vec![(key.id.clone(), replica.arn.clone())]);
        assert_eq!(
            svc.describe_key(&west, &key.id)
                .await
                .unwrap()
                .current_material_id,
            2
        );
    }

    fn replicate_to(id: &str, region: &str) -> ReplicateInput {
        ReplicateInput {
            key_id: id.to_owned(),
            replica_region: region.into(),
            policy: None,
            bypass_policy_lockout_safety_check: false,
            description: None,
            tags: Vec::new(),
        }
    }

    fn invalid_state(r: Result<impl Sized>, what: &str) {
        match r {
            Err(Error::InvalidState(m)) => assert!(m.ends_with(&format!(" is {what}.")), "{m}"),
            Err(e) => panic!("expected KMSInvalidStateException, got {e}"),
            Ok(_) => panic!("expected KMSInvalidStateException"),
        }
    }

    /// ScheduleKeyDeletion of a primary key with replicas: PendingReplicaDeletion
    /// (no deletion date) until the last replica is purged, then PendingDeletion with
    /// the waiting period starting at that purge.
    #[tokio::test]
    async fn primary_key_waits_for_its_replicas_to_be_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ks.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        let (root, hex_key) = RootKey::generate().unwrap();
        let authz: Arc<dyn crate::authz::Authorizer> = Arc::new(crate::authz::testing::AllowAll);
        let svc = KeyService::load(store, root, Arc::clone(&authz))
            .await
            .unwrap();
        let (east, west, eu) = (
            caller("us-east-1"),
            caller("us-west-2"),
            caller("eu-west-1"),
        );
        let key = svc.create_key(&east, mrk()).await.unwrap();
        let empty = HashMap::new();
        let blob = svc
            .encrypt(&east, &key.id, b"east", &empty, None, false)
            .await
            .unwrap()
            .ciphertext_blob;
        svc.replicate_key(&east, replicate_to(&key.id, "us-west-2"))
            .await
            .unwrap();
        svc.replicate_key(&east, replicate_to(&key.id, "eu-west-1"))
            .await
            .unwrap();

        let scheduled = svc
            .schedule_key_deletion(&east, &key.id, Some(7))
            .await
            .unwrap();
        assert_eq!(scheduled.state, KeyState::PendingReplicaDeletion);
        assert_eq!(scheduled.deletion_date_ms, None);
        assert_eq!(scheduled.pending_window_days, Some(7));
        // Unusable, not replicable, its primary Region fixed, not schedulable again.
        invalid_state(
            svc.encrypt(&east, &key.id, b"x", &empty, None, false).await,
            "pending replica deletion",
        );
        invalid_state(
            svc.decrypt(&east, &blob, &empty, None, None, false).await,
            "pending replica deletion",
        );
        invalid_state(
            svc.replicate_key(&east, replicate_to(&key.id, "ap-southeast-2"))
                .await,
            "pending replica deletion",
        );
        invalid_state(
            svc.update_primary_region(&east, &key.id, "us-west-2").await,
            "pending replica deletion",
        );
        invalid_state(
            svc.schedule_key_deletion(&east, &key.id, None).await,
            "pending replica deletion",
        );
        // The replicas are untouched.
        svc.decrypt(&west, &blob, &empty, None, None, false)
            .await
            .unwrap();

        // CancelKeyDeletion: back to Disabled, as from PendingDeletion.
        svc.cancel_key_deletion(&east, &key.id).await.unwrap();
        let canceled = svc.describe_key(&east, &key.id).await.unwrap();
        assert_eq!(canceled.state, KeyState::Disabled);
        assert_eq!(canceled.pending_window_days, None);
        svc.schedule_key_deletion(&east, &key.id, Some(7))
            .await
            .unwrap();

        // The state survives a restart.
        svc.shutdown().await;
        let store = SqliteStore::connect(&url).await.unwrap();
        let svc = KeyService::load(store, RootKey::from_hex(&hex_key).unwrap(), authz)
            .await
            .unwrap();
        let primary = svc.describe_key(&east, &key.id).await.unwrap();
        assert_eq!(primary.state, KeyState::PendingReplicaDeletion);
        assert_eq!(primary.pending_window_days, Some(7));

        let t0 = now_ms();
        let replica_west = svc
            .schedule_key_deletion(&west, &key.id, Some(7))
            .await
            .unwrap();
        assert_eq!(replica_west.state, KeyState::PendingDeletion);
        svc.schedule_key_deletion(&eu, &key.id, Some(10))
            .await
            .unwrap();
        // Scheduled is not deleted: the primary still waits.
        assert_eq!(svc.purge_expired_at(t0 + DAY_MS).await.unwrap(), 0);
        assert_eq!(
            svc.describe_key(&east, &key.id).await.unwrap().state,
            KeyState::PendingReplicaDeletion
        );
        // One replica purged, one left.
        assert_eq!(svc.purge_expired_at(t0 + 8 * DAY_MS).await.unwrap(), 1);
        let primary = svc.describe_key(&east, &key.id).await.unwrap();
        assert_eq!(primary.state, KeyState::PendingReplicaDeletion);
        assert_eq!(primary.deletion_date_ms, None);
        assert_eq!(
            svc.multi_region_view(&primary).unwrap().replicas,
            vec![(
                key_arn("eu-west-1", &primary.account_id, &key.id),
                "eu-west-1".into()
            )]
        );
        // The last replica purged: the primary's waiting period begins then.
        let t1 = t0 + 11 * DAY_MS;
        assert_eq!(svc.purge_expired_at(t1).await.unwrap(), 1);
        let primary = svc.describe_key(&east, &key.id).await.unwrap();
        assert_eq!(primary.state, KeyState::PendingDeletion);
        assert_eq!(primary.deletion_date_ms, Some(t1 + 7 * DAY_MS));
        assert!(svc.multi_region_view(&primary).unwrap().replicas.is_empty());
        invalid_state(
            svc.encrypt(&east, &key.id, b"x", &empty, None, false).await,
            "pending deletion",
        );
        assert_eq!(svc.purge_expired_at(t1 + 7 * DAY_MS - 1).await.unwrap(), 0);
        assert_eq!(svc.purge_expired_at(t1 + 7 * DAY_MS).await.unwrap(), 1);
        assert!(matches!(
            svc.describe_key(&east, &key.id).await,
            Err(Error::NotFound(_))
        ));
    }

    /// Without replicas, a multi-Region primary key (and a replica key) goes straight
    /// to PendingDeletion.
    #[tokio::test]
    async fn keys_without_replicas_are_pending_deletion_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ks.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        let (root, _) = RootKey::generate().unwrap();
        let authz: Arc<dyn crate::authz::Authorizer> = Arc::new(crate::authz::testing::AllowAll);
        let svc = KeyService::load(store, root, authz).await.unwrap();
        let (east, west) = (caller("us-east-1"), caller("us-west-2"));
        let lone = svc.create_key(&east, mrk()).await.unwrap();
        let r = svc
            .schedule_key_deletion(&east, &lone.id, None)
            .await
            .unwrap();
        assert_eq!(r.state, KeyState::PendingDeletion);
        assert!(r.deletion_date_ms.is_some());
        assert_eq!(r.pending_window_days, Some(30));

        let key = svc.create_key(&east, mrk()).await.unwrap();
        svc.replicate_key(&east, replicate_to(&key.id, "us-west-2"))
            .await
            .unwrap();
        let r = svc
            .schedule_key_deletion(&west, &key.id, Some(7))
            .await
            .unwrap();
        assert_eq!(r.state, KeyState::PendingDeletion);
        assert!(r.deletion_date_ms.is_some());
        assert_eq!(
            svc.describe_key(&east, &key.id).await.unwrap().state,
            KeyState::Enabled
        );
    }

    #[test]
    fn regions_follow_the_model_pattern() {
        for ok in ["us-east-1", "us-west-2", "us-gov-west-1", "ap-southeast-3"] {
            assert!(valid_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us",
            "us-east",
            "US-east-1",
            "us-east-1a",
            "us--1",
            "a-b-c-d-1",
        ] {
            assert!(!valid_region(bad), "{bad}");
        }
    }
}
