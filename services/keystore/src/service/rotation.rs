//! Rotation of symmetric encryption keys: EnableKeyRotation, DisableKeyRotation,
//! GetKeyRotationStatus, RotateKeyOnDemand, ListKeyRotations, and the automatic
//! rotation of keys whose period is over ([`KeyService::rotate_due`]).
//!
//! A rotation adds a material to the key and makes it current: new ciphertexts are
//! sealed with it, older blobs keep naming (and opening with) the material that
//! sealed them.

use std::sync::Arc;

use super::{
    CachedKey, KeyService, Materials, Page, decode_marker, page_limit, paginate,
    require_not_pending_deletion,
};
use crate::crypto::{self, AeadKey};
use crate::error::{Error, Result};
use crate::model::{
    Caller, KEY_SPEC_SYMMETRIC_DEFAULT, KeyRecord, KeyState, MaterialRecord, ORIGIN_AWS_KMS, now_ms,
};
use crate::store::{MaterialInfo, Store};

pub const DEFAULT_ROTATION_PERIOD_DAYS: i32 = 365;
const MIN_ROTATION_PERIOD_DAYS: i32 = 90;
const MAX_ROTATION_PERIOD_DAYS: i32 = 2560;
/// KMS's quota of on-demand rotations per key.
const MAX_ON_DEMAND_ROTATIONS: usize = 25;
const DAY_MS: i64 = 86_400_000;

pub const ROTATION_AUTOMATIC: &str = "AUTOMATIC";
pub const ROTATION_ON_DEMAND: &str = "ON_DEMAND";

/// GetKeyRotationStatus.
pub struct RotationStatus {
    pub record: KeyRecord,
    pub enabled: bool,
}

/// One entry of ListKeyRotations.
pub struct RotationEntry {
    pub key_id: String,
    pub material_public_id: String,
    pub current: bool,
    pub info: MaterialInfo,
}

impl<S: Store> KeyService<S> {
    pub async fn enable_key_rotation(
        &self,
        caller: &Caller,
        key_id: &str,
        period_days: Option<i32>,
    ) -> Result<()> {
        let days = period_days.unwrap_or(DEFAULT_ROTATION_PERIOD_DAYS);
        if days < MIN_ROTATION_PERIOD_DAYS {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value '{days}' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value greater than or equal to {MIN_ROTATION_PERIOD_DAYS}"
            )));
        }
        if days > MAX_ROTATION_PERIOD_DAYS {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value '{days}' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value less than or equal to {MAX_ROTATION_PERIOD_DAYS}"
            )));
        }
        self.update_key_with(
            caller,
            key_id,
            "EnableKeyRotation",
            None,
            |q| q.key("kms:RotationPeriodInDays", days.to_string()),
            |r| {
                require_rotatable(r)?;
                require_enabled_record(r)?;
                r.rotation_period_days = Some(days);
                r.next_rotation_ms = Some(now_ms() + i64::from(days) * DAY_MS);
                Ok(())
            },
        )
        .await
        .map(drop)
    }

    pub async fn disable_key_rotation(&self, caller: &Caller, key_id: &str) -> Result<()> {
        self.update_key(caller, key_id, "DisableKeyRotation", None, |r| {
            require_rotatable(r)?;
            require_enabled_record(r)?;
            r.rotation_period_days = None;
            r.next_rotation_ms = None;
            Ok(())
        })
        .await
        .map(drop)
    }

    pub async fn get_key_rotation_status(
        &self,
        caller: &Caller,
        key_id: &str,
    ) -> Result<RotationStatus> {
        let key = self
            .resolve_authorized(caller, key_id, "keyId", "GetKeyRotationStatus", false)
            .await?;
        let mut record = key.record.clone();
        // A multi-Region replica rotates with its primary: it shows the primary's
        // schedule.
        if let Some(primary_region) = record.primary_region.clone()
            && primary_region != record.region
        {
            if let Some(primary) = self.key_in_region(&record.id, &primary_region) {
                record.rotation_period_days = primary.record.rotation_period_days;
                record.next_rotation_ms = primary.record.next_rotation_ms;
            }
            record.primary_region = Some(record.region.clone());
        }
        require_rotatable(&record)?;
        // A key pending deletion reads as not rotating (the setting comes back if
        // the deletion is canceled).
        let enabled = record.rotation_period_days.is_some() && !record.state.is_pending_deletion();
        Ok(RotationStatus { record, enabled })
    }

    /// Returns the key id.
    pub async fn rotate_key_on_demand(&self, caller: &Caller, key_id: &str) -> Result<String> {
        let _writes = self.writes.lock().await;
        let key = self.resolve(caller, key_id, "keyId", false)?;
        let question = self.key_question(caller, "RotateKeyOnDemand", &key, None);
        self.authorize_key(caller, &key, question).await?;
        require_not_pending_deletion(&key)?;
        require_rotatable(&key.record)?;
        require_enabled_record(&key.record)?;
        let on_demand = self
            .store
            .list_materials(&key.record.row_id())
            .await?
            .iter()
            .filter(|m| m.rotation_type.as_deref() == Some(ROTATION_ON_DEMAND))
            .count();
        if on_demand >= MAX_ON_DEMAND_ROTATIONS {
            return Err(Error::LimitExceeded(format!(
                "The request was rejected because a quota was exceeded: a KMS key can be rotated on demand at most {MAX_ON_DEMAND_ROTATIONS} times."
            )));
        }
        self.rotate(&key, ROTATION_ON_DEMAND, None).await?;
        Ok(key.record.id.clone())
    }

    pub async fn list_key_rotations(
        &self,
        caller: &Caller,
        key_id: &str,
        include_key_material: Option<&str>,
        limit: Option<i32>,
        marker: Option<&str>,
    ) -> Result<Page<(String, RotationEntry)>> {
        let include_all = match include_key_material {
            None | Some("ROTATIONS_ONLY") => false,
            Some("ALL_KEY_MATERIAL") => true,
            Some(other) => {
                return Err(Error::Validation(format!(
                    "1 validation error detected: Value '{other}' at 'includeKeyMaterial' failed to satisfy constraint: Member must satisfy enum value set: [ALL_KEY_MATERIAL, ROTATIONS_ONLY]"
                )));
            }
        };
        let limit = page_limit(limit, 100, 1000)?;
        let after = decode_marker(marker)?;
        let key = self
            .resolve_authorized(caller, key_id, "keyId", "ListKeyRotations", false)
            .await?;
        require_rotatable(&key.record)?;
        let r = &key.record;
        let entries = self
            .store
            .list_materials(&r.row_id())
            .await?
            .into_iter()
            .filter(|m| include_all || m.rotation_type.is_some())
            // Zero-padded so that the marker's string order is the id order.
            .map(|m| (format!("{:010}", m.material_id), m))
            .filter(|(sort, _)| after.as_ref().is_none_or(|a| sort > a))
            .map(|(sort, m)| {
                (
                    sort,
                    RotationEntry {
                        key_id: r.id.clone(),
                        material_public_id: crypto::material_public_id(&r.id, m.material_id),
                        current: m.material_id == r.current_material_id,
                        info: m,
                    },
                )
            })
            .take(limit as usize + 1)
            .collect();
        Ok(paginate(entries, limit, |(sort, _)| sort))
    }

    /// Rotates every enabled key whose automatic rotation is due; returns how many.
    pub async fn rotate_due(&self) -> Result<usize> {
        let now = now_ms();
        let due: Vec<String> = super::read(&self.keys)
            .values()
            .filter(|k| {
                k.record.state == KeyState::Enabled
                    && k.record.next_rotation_ms.is_some_and(|t| t <= now)
            })
            .map(|k| k.record.row_id())
            .collect();
        let mut rotated = 0;
        for id in due {
            let _writes = self.writes.lock().await;
            // Re-read under the lock: the key may have changed meanwhile.
            let Some(key) = self.key_by_id(&id) else {
                continue;
            };
            let r = &key.record;
            let Some(days) = r.rotation_period_days else {
                continue;
            };
            if r.state != KeyState::Enabled || r.next_rotation_ms.is_none_or(|t| t > now) {
                continue;
            }
            self.rotate(
                &key,
                ROTATION_AUTOMATIC,
                Some(now + i64::from(days) * DAY_MS),
            )
            .await?;
            rotated += 1;
        }
        Ok(rotated)
    }

    /// Adds a fresh material to `key` and makes it current (under the write lock).
    /// `next_rotation_ms` replaces the due date of an automatic rotation.
    async fn rotate(
        &self,
        key: &CachedKey,
        rotation_type: &str,
        next_rotation_ms: Option<i64>,
    ) -> Result<()> {
        let material_id = key
            .materials
            .0
            .iter()
            .map(|(id, _)| *id)
            .max()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or(Error::Crypto(crypto::CryptoError::KeyLength))?;
        let (material, raw) = AeadKey::generate()?;
        let wrapped = self
            .root
            .wrap_material(&key.record.arn, material_id, &raw)?;
        let now = now_ms();
        let mut record = key.record.clone();
        record.current_material_id = material_id;
        record.version += 1;
        if next_rotation_ms.is_some() {
            record.next_rotation_ms = next_rotation_ms;
        }
        let stored = MaterialRecord {
            key_id: record.row_id(),
            material_id,
            wrapped,
            created_ms: now,
            rotation_type: Some(rotation_type.to_owned()),
        };
        self.store.add_material(&record, &stored).await?;
        let mut materials: Vec<(u32, Arc<AeadKey>)> = key
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
        tracing::info!(key_id = %key.record.id, material_id, rotation_type, "key rotated");
        // Multi-Region keys share their material: every replica gets it too.
        if key.record.multi_region {
            self.propagate_material(&key.record, material_id, &raw, rotation_type)
                .await?;
        }
        drop(raw);
        Ok(())
    }
}

/// Only symmetric encryption keys with KMS-made material rotate.
fn require_rotatable(r: &KeyRecord) -> Result<()> {
    if r.key_spec != KEY_SPEC_SYMMETRIC_DEFAULT || r.origin != ORIGIN_AWS_KMS {
        return Err(Error::Unsupported(format!(
            "{} is not a symmetric encryption KMS key with AWS_KMS origin: key rotation is not supported on it.",
            r.arn
        )));
    }
    if r.multi_region && r.primary_region.as_deref() != Some(r.region.as_str()) {
        return Err(Error::Unsupported(format!(
            "{} is a multi-Region replica key: rotation is managed on its primary key.",
            r.arn
        )));
    }
    Ok(())
}

fn require_enabled_record(r: &KeyRecord) -> Result<()> {
    match r.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(Error::Disabled(format!("{} is disabled.", r.arn))),
        KeyState::PendingDeletion | KeyState::PendingReplicaDeletion => {
            Err(super::pending_deletion(r))
        }
        KeyState::PendingImport => Err(super::pending_import(r)),
    }
}
