//! Persistence of the key store: the [`Store`] trait the service is written against,
//! and its SQLite implementation ([`SqliteStore`], sqlx runtime queries).
//!
//! Every change that touches more than one row runs in one transaction. Key material
//! only ever reaches this module wrapped under the root key.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::model::{AliasRecord, KeyRecord, KeyState, MaterialRecord, Tag, key_id_of_row, row_id};

/// A storage failure (the service reports it as KMSInternalException).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StoreError(Box<dyn std::error::Error + Send + Sync>);

impl StoreError {
    /// Data in the database that the code cannot have written.
    pub(crate) fn corrupt(what: String) -> Self {
        StoreError(what.into())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError(Box::new(e))
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError(Box::new(e))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A key with all its (wrapped) materials.
pub struct StoredKey {
    pub record: KeyRecord,
    pub materials: Vec<MaterialRecord>,
}

/// What the key store needs from its database.
pub trait Store: Send + Sync + 'static {
    /// Every key with its materials (to fill the in-memory cache at start).
    fn load_keys(&self) -> impl Future<Output = StoreResult<Vec<StoredKey>>> + Send;
    /// Every alias of every account and region.
    fn load_aliases(&self) -> impl Future<Output = StoreResult<Vec<AliasRecord>>> + Send;

    /// A new key, its first material and its tags, atomically.
    #[cfg_attr(not(test), allow(dead_code))]
    fn insert_key(
        &self,
        key: &KeyRecord,
        material: &MaterialRecord,
        tags: &[Tag],
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// A new key with any number of materials (none: a key awaiting imported
    /// material; several: a multi-Region replica) and its tags, atomically.
    fn insert_key_with(
        &self,
        key: &KeyRecord,
        materials: &[MaterialRecord],
        tags: &[Tag],
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Replaces every material of a key and rewrites its row, atomically (import and
    /// deletion of imported key material).
    fn replace_materials(
        &self,
        key: &KeyRecord,
        materials: &[MaterialRecord],
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Rewrites the mutable columns of an existing key.
    fn update_key(&self, key: &KeyRecord) -> impl Future<Output = StoreResult<()>> + Send;
    /// A rotation: a new material and the key's new row (its current material),
    /// atomically.
    fn add_material(
        &self,
        key: &KeyRecord,
        material: &MaterialRecord,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The wrapped materials of a key (by row id), oldest first.
    fn key_materials(
        &self,
        row_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<MaterialRecord>>> + Send;
    /// The materials of a key, oldest first.
    fn list_materials(
        &self,
        key_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<MaterialInfo>>> + Send;
    /// Keys of an account and region ordered by id, starting after `after`.
    fn list_keys(
        &self,
        account_id: &str,
        region: &str,
        after: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<(String, String)>>> + Send;
    /// Deletes keys whose deletion date has passed, with their materials, aliases and
    /// tags; returns the deleted key ids.
    fn purge_expired(&self, now_ms: i64) -> impl Future<Output = StoreResult<Vec<String>>> + Send;

    fn insert_alias(&self, alias: &AliasRecord) -> impl Future<Output = StoreResult<()>> + Send;
    /// Points an existing alias at another key (target and last-updated date).
    fn update_alias(&self, alias: &AliasRecord) -> impl Future<Output = StoreResult<()>> + Send;
    fn delete_alias(
        &self,
        account_id: &str,
        region: &str,
        alias_name: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Aliases of an account and region (optionally of one key) ordered by name,
    /// starting after `after`.
    fn list_aliases(
        &self,
        account_id: &str,
        region: &str,
        target_key_id: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<AliasRecord>>> + Send;

    /// Adds or overwrites tags; refuses (returns false, changing nothing) when the key
    /// would end up with more than `max_tags` tags.
    fn put_tags(
        &self,
        key_id: &str,
        tags: &[Tag],
        max_tags: u32,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    fn delete_tags(
        &self,
        key_id: &str,
        tag_keys: &[String],
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Tags of a key ordered by tag key, starting after `after`.
    fn list_tags(
        &self,
        key_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<Tag>>> + Send;

    /// Every grant, after dropping those of keys that no longer exist.
    fn load_grants(&self) -> impl Future<Output = StoreResult<Vec<GrantRow>>> + Send;
    fn insert_grant(&self, grant: &GrantRow) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes a grant; false when there was none.
    fn delete_grant(&self, grant_id: &str) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Waits for in-flight queries and closes the database.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// The SQLite implementation.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/keystore");

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` and applies the migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        // The durability settings as a pooled connection reports them (every pooled
        // connection is opened with the same options); the crash tests read this line.
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await?;
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&pool)
            .await?;
        tracing::info!(
            journal_mode = %journal,
            synchronous,
            "keystore database opened (synchronous: 2 = FULL)"
        );
        Ok(Self { pool })
    }
}

/// A grant as stored (see `migrations/keystore/0003_grants.sql`): operations and
/// constraints are JSON texts.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GrantRow {
    pub grant_id: String,
    pub key_arn: String,
    pub grant_token: String,
    pub name: Option<String>,
    pub creation_date: i64,
    pub grantee_principal: String,
    pub retiring_principal: Option<String>,
    pub issuing_account: String,
    pub operations: String,
    pub constraints: Option<String>,
}

/// A material's public facts (no key bytes), for ListKeyRotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterialInfo {
    pub material_id: u32,
    pub created_ms: i64,
    pub rotation_type: Option<String>,
}

async fn insert_material(
    conn: &mut sqlx::SqliteConnection,
    material: &MaterialRecord,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO key_materials (key_id, material_id, wrapped, created, rotation_type) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&material.key_id)
    .bind(material.material_id)
    .bind(&material.wrapped)
    .bind(material.created_ms)
    .bind(&material.rotation_type)
    .execute(conn)
    .await?;
    Ok(())
}

async fn update_key_row(conn: &mut sqlx::SqliteConnection, key: &KeyRecord) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE keys SET description = ?, state = ?, enabled = ?, deletion_date = ?, \
         pending_window_days = ?, policy = ?, current_material_id = ?, version = ?, \
         rotation_period_days = ?, next_rotation_date = ?, expiration_model = ?, valid_to = ?, \
         import_fingerprint = ?, primary_region = ? WHERE id = ?",
    )
    .bind(&key.description)
    .bind(key.state.as_str())
    .bind(key.enabled())
    .bind(key.deletion_date_ms)
    .bind(key.pending_window_days)
    .bind(&key.policy)
    .bind(key.current_material_id)
    .bind(key.version)
    .bind(key.rotation_period_days)
    .bind(key.next_rotation_ms)
    .bind(&key.expiration_model)
    .bind(key.valid_to_ms)
    .bind(&key.import_fingerprint)
    .bind(&key.primary_region)
    .bind(key.row_id())
    .execute(conn)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::corrupt(format!("key {} vanished", key.id)));
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    account_id: String,
    region: String,
    arn: String,
    description: String,
    key_usage: String,
    key_spec: String,
    origin: String,
    state: String,
    creation_date: i64,
    deletion_date: Option<i64>,
    pending_window_days: Option<i64>,
    policy: String,
    multi_region: bool,
    current_material_id: i64,
    version: i64,
    rotation_period_days: Option<i64>,
    next_rotation_date: Option<i64>,
    expiration_model: Option<String>,
    valid_to: Option<i64>,
    import_fingerprint: Option<Vec<u8>>,
    primary_region: Option<String>,
}

impl TryFrom<KeyRow> for KeyRecord {
    type Error = StoreError;

    fn try_from(r: KeyRow) -> StoreResult<Self> {
        let state = KeyState::parse(&r.state)
            .ok_or_else(|| StoreError::corrupt(format!("key {} has unknown state", r.id)))?;
        let current_material_id = u32::try_from(r.current_material_id)
            .map_err(|_| StoreError::corrupt(format!("key {} has a bad material id", r.id)))?;
        let pending_window_days = r
            .pending_window_days
            .map(i32::try_from)
            .transpose()
            .map_err(|_| StoreError::corrupt(format!("key {} has a bad window", r.id)))?;
        let rotation_period_days = r
            .rotation_period_days
            .map(i32::try_from)
            .transpose()
            .map_err(|_| StoreError::corrupt(format!("key {} has a bad period", r.id)))?;
        Ok(KeyRecord {
            id: key_id_of_row(&r.id).to_owned(),
            account_id: r.account_id,
            region: r.region,
            arn: r.arn,
            description: r.description,
            key_usage: r.key_usage,
            key_spec: r.key_spec,
            origin: r.origin,
            state,
            creation_date_ms: r.creation_date,
            deletion_date_ms: r.deletion_date,
            pending_window_days,
            policy: r.policy,
            multi_region: r.multi_region,
            current_material_id,
            version: r.version,
            rotation_period_days,
            next_rotation_ms: r.next_rotation_date,
            expiration_model: r.expiration_model,
            valid_to_ms: r.valid_to,
            import_fingerprint: r.import_fingerprint,
            primary_region: r.primary_region,
        })
    }
}

#[derive(sqlx::FromRow)]
struct MaterialRow {
    key_id: String,
    material_id: i64,
    wrapped: Vec<u8>,
    created: i64,
    rotation_type: Option<String>,
}

#[derive(sqlx::FromRow)]
struct AliasRow {
    account_id: String,
    region: String,
    alias_name: String,
    target_key_id: String,
    creation_date: i64,
    last_updated: i64,
}

impl From<AliasRow> for AliasRecord {
    fn from(r: AliasRow) -> Self {
        AliasRecord {
            account_id: r.account_id,
            region: r.region,
            alias_name: r.alias_name,
            target_key_id: key_id_of_row(&r.target_key_id).to_owned(),
            creation_date_ms: r.creation_date,
            last_updated_ms: r.last_updated,
        }
    }
}

const LOAD_KEYS: &str = "SELECT id, account_id, region, arn, description, key_usage, key_spec, origin, state, \
     creation_date, deletion_date, pending_window_days, policy, multi_region, current_material_id, version, \
     rotation_period_days, next_rotation_date, expiration_model, valid_to, import_fingerprint, primary_region \
     FROM keys ORDER BY id";

impl Store for SqliteStore {
    async fn load_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows: Vec<KeyRow> = sqlx::query_as(LOAD_KEYS).fetch_all(&self.pool).await?;
        let materials: Vec<MaterialRow> = sqlx::query_as(
            "SELECT key_id, material_id, wrapped, created, rotation_type FROM key_materials ORDER BY key_id, material_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut keys = rows
            .into_iter()
            .map(|r| {
                Ok(StoredKey {
                    record: KeyRecord::try_from(r)?,
                    materials: Vec::new(),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        // Both lists are ordered by key id: merge them.
        let mut i = 0;
        for m in materials {
            while i < keys.len() && keys[i].record.row_id() < m.key_id {
                i += 1;
            }
            let key = keys
                .get_mut(i)
                .filter(|k| k.record.row_id() == m.key_id)
                .ok_or_else(|| {
                    StoreError::corrupt(format!("material of unknown key {}", m.key_id))
                })?;
            key.materials.push(MaterialRecord {
                material_id: u32::try_from(m.material_id).map_err(|_| {
                    StoreError::corrupt(format!("key {} has a bad material id", m.key_id))
                })?,
                key_id: m.key_id,
                wrapped: m.wrapped,
                created_ms: m.created,
                rotation_type: m.rotation_type,
            });
        }
        Ok(keys)
    }

    async fn load_aliases(&self) -> StoreResult<Vec<AliasRecord>> {
        let rows: Vec<AliasRow> = sqlx::query_as(
            "SELECT account_id, region, alias_name, target_key_id, creation_date, last_updated FROM aliases",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(AliasRecord::from).collect())
    }

    async fn insert_key(
        &self,
        key: &KeyRecord,
        material: &MaterialRecord,
        tags: &[Tag],
    ) -> StoreResult<()> {
        self.insert_key_with(key, std::slice::from_ref(material), tags)
            .await
    }

    async fn insert_key_with(
        &self,
        key: &KeyRecord,
        materials: &[MaterialRecord],
        tags: &[Tag],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO keys (id, account_id, region, arn, description, key_usage, key_spec, origin, state, \
             enabled, creation_date, deletion_date, pending_window_days, policy, multi_region, \
             current_material_id, version, rotation_period_days, next_rotation_date, \
             expiration_model, valid_to, import_fingerprint, primary_region) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(key.row_id())
        .bind(&key.account_id)
        .bind(&key.region)
        .bind(&key.arn)
        .bind(&key.description)
        .bind(&key.key_usage)
        .bind(&key.key_spec)
        .bind(&key.origin)
        .bind(key.state.as_str())
        .bind(key.enabled())
        .bind(key.creation_date_ms)
        .bind(key.deletion_date_ms)
        .bind(key.pending_window_days)
        .bind(&key.policy)
        .bind(key.multi_region)
        .bind(key.current_material_id)
        .bind(key.version)
        .bind(key.rotation_period_days)
        .bind(key.next_rotation_ms)
        .bind(&key.expiration_model)
        .bind(key.valid_to_ms)
        .bind(&key.import_fingerprint)
        .bind(&key.primary_region)
        .execute(&mut *tx)
        .await?;
        for material in materials {
            insert_material(&mut tx, material).await?;
        }
        for tag in tags {
            sqlx::query(
                "INSERT INTO tags (key_id, tag_key, tag_value) VALUES (?, ?, ?) \
                 ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
            )
            .bind(key.row_id())
            .bind(&tag.key)
            .bind(&tag.value)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn replace_materials(
        &self,
        key: &KeyRecord,
        materials: &[MaterialRecord],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM key_materials WHERE key_id = ?")
            .bind(key.row_id())
            .execute(&mut *tx)
            .await?;
        for material in materials {
            insert_material(&mut tx, material).await?;
        }
        update_key_row(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_key(&self, key: &KeyRecord) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        update_key_row(&mut conn, key).await
    }

    async fn add_material(&self, key: &KeyRecord, material: &MaterialRecord) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        insert_material(&mut tx, material).await?;
        update_key_row(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn key_materials(&self, row_id: &str) -> StoreResult<Vec<MaterialRecord>> {
        let rows: Vec<MaterialRow> = sqlx::query_as(
            "SELECT key_id, material_id, wrapped, created, rotation_type FROM key_materials \
             WHERE key_id = ? ORDER BY material_id",
        )
        .bind(row_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|m| {
                Ok(MaterialRecord {
                    material_id: u32::try_from(m.material_id).map_err(|_| {
                        StoreError::corrupt(format!("key {} has a bad material id", m.key_id))
                    })?,
                    key_id: m.key_id,
                    wrapped: m.wrapped,
                    created_ms: m.created,
                    rotation_type: m.rotation_type,
                })
            })
            .collect()
    }

    async fn list_materials(&self, key_id: &str) -> StoreResult<Vec<MaterialInfo>> {
        let rows = sqlx::query(
            "SELECT material_id, created, rotation_type FROM key_materials WHERE key_id = ? ORDER BY material_id",
        )
        .bind(key_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MaterialInfo {
                    material_id: u32::try_from(r.try_get::<i64, _>("material_id")?).map_err(
                        |_| StoreError::corrupt(format!("key {key_id} has a bad material id")),
                    )?,
                    created_ms: r.try_get("created")?,
                    rotation_type: r.try_get("rotation_type")?,
                })
            })
            .collect()
    }

    async fn list_keys(
        &self,
        account_id: &str,
        region: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT id, arn FROM keys WHERE account_id = ? AND region = ? AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(account_id)
        .bind(region)
        .bind(after.map(|a| row_id(a, region)).unwrap_or_default())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                Ok((key_id_of_row(&id).to_owned(), r.try_get("arn")?))
            })
            .collect()
    }

    async fn purge_expired(&self, now_ms: i64) -> StoreResult<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT id FROM keys WHERE state = 'PendingDeletion' AND deletion_date <= ? ORDER BY id",
        )
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await?;
        let ids = rows
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<Result<Vec<_>, _>>()?;
        for id in &ids {
            // Materials, aliases and tags go with the key (ON DELETE CASCADE).
            sqlx::query("DELETE FROM keys WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn insert_alias(&self, alias: &AliasRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO aliases (account_id, region, alias_name, target_key_id, creation_date, last_updated) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&alias.account_id)
        .bind(&alias.region)
        .bind(&alias.alias_name)
        .bind(row_id(&alias.target_key_id, &alias.region))
        .bind(alias.creation_date_ms)
        .bind(alias.last_updated_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn update_alias(&self, alias: &AliasRecord) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE aliases SET target_key_id = ?, last_updated = ? \
             WHERE account_id = ? AND region = ? AND alias_name = ?",
        )
        .bind(row_id(&alias.target_key_id, &alias.region))
        .bind(alias.last_updated_ms)
        .bind(&alias.account_id)
        .bind(&alias.region)
        .bind(&alias.alias_name)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::corrupt(format!(
                "alias {} vanished",
                alias.alias_name
            )));
        }
        Ok(())
    }

    async fn delete_alias(
        &self,
        account_id: &str,
        region: &str,
        alias_name: &str,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM aliases WHERE account_id = ? AND region = ? AND alias_name = ?")
            .bind(account_id)
            .bind(region)
            .bind(alias_name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn list_aliases(
        &self,
        account_id: &str,
        region: &str,
        target_key_id: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<AliasRecord>> {
        let rows: Vec<AliasRow> = sqlx::query_as(
            "SELECT account_id, region, alias_name, target_key_id, creation_date, last_updated FROM aliases \
             WHERE account_id = ? AND region = ? AND (? IS NULL OR target_key_id = ?) AND alias_name > ? \
             ORDER BY alias_name LIMIT ?",
        )
        .bind(account_id)
        .bind(region)
        .bind(target_key_id.map(|t| row_id(t, region)))
        .bind(target_key_id.map(|t| row_id(t, region)))
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(AliasRecord::from).collect())
    }

    async fn put_tags(&self, key_id: &str, tags: &[Tag], max_tags: u32) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        for tag in tags {
            sqlx::query(
                "INSERT INTO tags (key_id, tag_key, tag_value) VALUES (?, ?, ?) \
                 ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
            )
            .bind(key_id)
            .bind(&tag.key)
            .bind(&tag.value)
            .execute(&mut *tx)
            .await?;
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tags WHERE key_id = ?")
            .bind(key_id)
            .fetch_one(&mut *tx)
            .await?;
        if count > i64::from(max_tags) {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_tags(&self, key_id: &str, tag_keys: &[String]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for tag_key in tag_keys {
            sqlx::query("DELETE FROM tags WHERE key_id = ? AND tag_key = ?")
                .bind(key_id)
                .bind(tag_key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_tags(
        &self,
        key_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Tag>> {
        let rows = sqlx::query(
            "SELECT tag_key, tag_value FROM tags WHERE key_id = ? AND tag_key > ? ORDER BY tag_key LIMIT ?",
        )
        .bind(key_id)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Tag {
                    key: r.try_get("tag_key")?,
                    value: r.try_get("tag_value")?,
                })
            })
            .collect()
    }

    async fn load_grants(&self) -> StoreResult<Vec<GrantRow>> {
        sqlx::query("DELETE FROM grants WHERE key_arn NOT IN (SELECT arn FROM keys)")
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_as(
            "SELECT grant_id, key_arn, grant_token, name, creation_date, grantee_principal, \
             retiring_principal, issuing_account, operations, constraints FROM grants \
             ORDER BY key_arn, grant_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn insert_grant(&self, g: &GrantRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO grants (grant_id, key_arn, grant_token, name, creation_date, grantee_principal, \
             retiring_principal, issuing_account, operations, constraints) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&g.grant_id)
        .bind(&g.key_arn)
        .bind(&g.grant_token)
        .bind(&g.name)
        .bind(g.creation_date)
        .bind(&g.grantee_principal)
        .bind(&g.retiring_principal)
        .bind(&g.issuing_account)
        .bind(&g.operations)
        .bind(&g.constraints)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_grant(&self, grant_id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM grants WHERE grant_id = ?")
            .bind(grant_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{key_arn, now_ms};

    async fn store() -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ks.db").display());
        (SqliteStore::connect(&url).await.unwrap(), dir)
    }

    fn key(id: &str, state: KeyState, deletion: Option<i64>) -> KeyRecord {
        KeyRecord {
            id: id.into(),
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            arn: key_arn("us-east-1", "111122223333", id),
            description: "d".into(),
            key_usage: "ENCRYPT_DECRYPT".into(),
            key_spec: "SYMMETRIC_DEFAULT".into(),
            origin: "AWS_KMS".into(),
            state,
            creation_date_ms: 1,
            deletion_date_ms: deletion,
            pending_window_days: deletion.map(|_| 7),
            policy: "{}".into(),
            multi_region: false,
            current_material_id: 1,
            version: 1,
            rotation_period_days: None,
            next_rotation_ms: None,
            expiration_model: None,
            valid_to_ms: None,
            import_fingerprint: None,
            primary_region: None,
        }
    }

    fn material(id: &str) -> MaterialRecord {
        MaterialRecord {
            key_id: id.into(),
            material_id: 1,
            wrapped: vec![1, 2, 3],
            created_ms: 1,
            rotation_type: None,
        }
    }

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    const A: &str = "00000000-0000-0000-0000-00000000000a";
    const B: &str = "00000000-0000-0000-0000-00000000000b";

    #[tokio::test]
    async fn keys_round_trip_and_update() {
        let (s, _dir) = store().await;
        let mut k = key(A, KeyState::Enabled, None);
        s.insert_key(&k, &material(A), &[tag("t", "v")])
            .await
            .unwrap();
        s.insert_key(&key(B, KeyState::Enabled, None), &material(B), &[])
            .await
            .unwrap();
        let loaded = s.load_keys().await.unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].record, k);
        assert_eq!(loaded[0].materials.len(), 1);
        assert_eq!(loaded[0].materials[0].wrapped, vec![1, 2, 3]);

        k.state = KeyState::Disabled;
        k.description = "new".into();
        k.version = 2;
        s.update_key(&k).await.unwrap();
        let loaded = s.load_keys().await.unwrap();
        assert_eq!(loaded[0].record, k);

        let page = s
            .list_keys("111122223333", "us-east-1", None, 1)
            .await
            .unwrap();
        assert_eq!(page, vec![(A.to_string(), k.arn.clone())]);
        let page = s
            .list_keys("111122223333", "us-east-1", Some(A), 5)
            .await
            .unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].0, B);
        assert!(
            s.list_keys("999999999999", "us-east-1", None, 5)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn tags_respect_the_limit_atomically() {
        let (s, _dir) = store().await;
        s.insert_key(&key(A, KeyState::Enabled, None), &material(A), &[])
            .await
            .unwrap();
        assert!(
            s.put_tags(A, &[tag("a", "1"), tag("b", "2")], 2)
                .await
                .unwrap()
        );
        assert!(s.put_tags(A, &[tag("a", "3")], 2).await.unwrap());
        assert!(
            !s.put_tags(A, &[tag("c", "1"), tag("b", "9")], 2)
                .await
                .unwrap()
        );
        let tags = s.list_tags(A, None, 10).await.unwrap();
        assert_eq!(tags, vec![tag("a", "3"), tag("b", "2")]);
        assert_eq!(
            s.list_tags(A, Some("a"), 10).await.unwrap(),
            vec![tag("b", "2")]
        );
        s.delete_tags(A, &["a".into(), "zz".into()]).await.unwrap();
        assert_eq!(s.list_tags(A, None, 10).await.unwrap(), vec![tag("b", "2")]);
    }

    #[tokio::test]
    async fn aliases_and_purge() {
        let (s, _dir) = store().await;
        let now = now_ms();
        s.insert_key(
            &key(A, KeyState::PendingDeletion, Some(now - 1)),
            &material(A),
            &[tag("x", "y")],
        )
        .await
        .unwrap();
        s.insert_key(
            &key(B, KeyState::PendingDeletion, Some(now + 60_000)),
            &material(B),
            &[],
        )
        .await
        .unwrap();
        let mut alias = AliasRecord {
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            alias_name: "alias/one".into(),
            target_key_id: A.into(),
            creation_date_ms: 1,
            last_updated_ms: 1,
        };
        s.insert_alias(&alias).await.unwrap();
        assert!(s.insert_alias(&alias).await.is_err());
        alias.target_key_id = B.into();
        alias.last_updated_ms = 2;
        s.update_alias(&alias).await.unwrap();
        assert_eq!(s.load_aliases().await.unwrap(), vec![alias.clone()]);
        let by_b = s
            .list_aliases("111122223333", "us-east-1", Some(B), None, 10)
            .await
            .unwrap();
        assert_eq!(by_b.len(), 1);
        assert!(
            s.list_aliases("111122223333", "us-east-1", Some(A), None, 10)
                .await
                .unwrap()
                .is_empty()
        );
        alias.target_key_id = A.into();
        s.update_alias(&alias).await.unwrap();

        assert_eq!(s.purge_expired(now).await.unwrap(), vec![A.to_string()]);
        let keys = s.load_keys().await.unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].record.id, B);
        assert!(s.load_aliases().await.unwrap().is_empty());
        assert!(s.list_tags(A, None, 10).await.unwrap().is_empty());

        s.delete_alias("111122223333", "us-east-1", "alias/none")
            .await
            .unwrap();
    }
}
