//! IAM identities (users, roles, their access keys and inline policies) and STS sessions.
//!
//! The gateway's IAM and STS Query APIs call these through the authz contract; the gateway
//! authorizes IAM calls first (`Authorize` with `iam:<Action>`). `Authorize` itself takes the
//! identity side from here: a user's inline policies, or for an assumed-role session the
//! role's, cached in memory and invalidated by every write that changes them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::digest;
use kms_proto::authz::v1 as pb;
use sqlx::SqlitePool;

use crate::accounts::{
    AccessKey, KeyStatus, PrincipalType, Secret, SessionInfo, generate_access_key_id, generate_id,
    generate_secret, generate_session_token,
};
use crate::authorize::{AccessRequest, Authorizer, CallerInfo, Origin};
use crate::clock::Clock;
use crate::error::Error;
use crate::policy::{Policy, PolicyKind};

/// The most access keys a user (or the root) may have, as IAM's quota.
const ACCESS_KEYS_PER_USER: i64 = 2;

fn no_such(message: String) -> Error {
    Error::Iam("NoSuchEntity", message)
}

fn validation(value: &str, field: &str, rule: &str) -> Error {
    Error::Iam(
        "ValidationError",
        format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {rule}"
        ),
    )
}

/// IAM's `[\w+=,.@-]+` names of users, roles and session names, with their length bounds.
fn check_name(value: &str, field: &str, min: usize, max: usize) -> Result<(), Error> {
    if value.len() < min {
        return Err(validation(
            value,
            field,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if value.len() > max {
        return Err(validation(
            value,
            field,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    {
        return Err(validation(
            value,
            field,
            "Member must satisfy regular expression pattern: [\\w+=,.@-]+",
        ));
    }
    Ok(())
}

fn check_policy_name(value: &str) -> Result<(), Error> {
    check_name(value, "policyName", 1, 128)
}

fn check_path(path: &str) -> Result<String, Error> {
    if path.is_empty() {
        return Ok("/".into());
    }
    if path.len() > 512
        || !path.starts_with('/')
        || !path.ends_with('/')
        || !path.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c))
    {
        return Err(validation(
            path,
            "path",
            "Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)",
        ));
    }
    Ok(path.to_owned())
}

fn malformed(e: crate::policy::PolicyError) -> Error {
    Error::Iam("MalformedPolicyDocument", e.message)
}

/// A role trust policy as the engine reads it: trust policies have no `Resource` (IAM
/// refuses one), so every statement gets `"Resource": "*"` (the role itself).
pub fn trust_policy_text(doc: &str) -> Result<String, Error> {
    let mut value: serde_json::Value = serde_json::from_str(doc).map_err(|e| {
        Error::Iam(
            "MalformedPolicyDocument",
            format!("This policy contains invalid Json: {e}"),
        )
    })?;
    let statements: Vec<&mut serde_json::Value> = match value.get_mut("Statement") {
        Some(serde_json::Value::Array(a)) => a.iter_mut().collect(),
        Some(v @ serde_json::Value::Object(_)) => vec![v],
        _ => Vec::new(),
    };
    for st in statements {
        if let Some(obj) = st.as_object_mut() {
            if obj.contains_key("Resource") || obj.contains_key("NotResource") {
                return Err(Error::Iam(
                    "MalformedPolicyDocument",
                    "Has prohibited field Resource".into(),
                ));
            }
            obj.insert("Resource".into(), serde_json::Value::String("*".into()));
        }
    }
    let text = value.to_string();
    Policy::parse_as(&text, PolicyKind::EndpointPolicy).map_err(malformed)?;
    Ok(text)
}

fn kind_of(s: &str) -> Result<&'static str, Error> {
    kind(s)
}

fn kind(s: &str) -> Result<&'static str, Error> {
    match s {
        "user" => Ok("user"),
        "role" => Ok("role"),
        other => Err(Error::Validation(format!(
            "principal_kind must be user or role, not {other:?}"
        ))),
    }
}

pub fn user_arn(account: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:user{path}{name}")
}

pub fn role_arn(account: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role{path}{name}")
}

fn sha256_hex(s: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, s.as_bytes()).as_ref())
}

/// Compare two equal-length hex digests without an early exit.
pub fn digest_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether `token` is the one a session was issued with.
pub fn token_matches(session: &SessionInfo, token: &str) -> bool {
    !token.is_empty() && digest_eq(&sha256_hex(token), &session.token_sha256)
}

#[derive(sqlx::FromRow)]
struct UserRow {
    account_id: String,
    user_name: String,
    user_id: String,
    path: String,
    created_ms: i64,
}

impl From<UserRow> for pb::IamUser {
    fn from(r: UserRow) -> Self {
        Self {
            arn: user_arn(&r.account_id, &r.path, &r.user_name),
            account_id: r.account_id,
            user_name: r.user_name,
            user_id: r.user_id,
            path: r.path,
            create_date_ms: r.created_ms,
            tags: Vec::new(),
        }
    }
}

#[derive(sqlx::FromRow)]
struct RoleRow {
    account_id: String,
    role_name: String,
    role_id: String,
    path: String,
    assume_role_policy: String,
    description: String,
    max_session_duration: i64,
    created_ms: i64,
}

impl From<RoleRow> for pb::IamRole {
    fn from(r: RoleRow) -> Self {
        Self {
            arn: role_arn(&r.account_id, &r.path, &r.role_name),
            account_id: r.account_id,
            role_name: r.role_name,
            role_id: r.role_id,
            path: r.path,
            assume_role_policy_document: r.assume_role_policy,
            description: r.description,
            max_session_duration: r.max_session_duration as i32,
            create_date_ms: r.created_ms,
            tags: Vec::new(),
        }
    }
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    access_key_id: String,
    account_id: String,
    secret: String,
    token_sha256: String,
    role_arn: String,
    role_id: String,
    session_name: String,
    expires_ms: i64,
    created_ms: i64,
}

/// The session credentials with this access key id, as an [`AccessKey`].
pub async fn session_key(
    pool: &SqlitePool,
    access_key_id: &str,
) -> Result<Option<AccessKey>, Error> {
    if !access_key_id.starts_with("ASIA") {
        return Ok(None);
    }
    let row: Option<SessionRow> = sqlx::query_as(
        "SELECT access_key_id, account_id, secret, token_sha256, role_arn, role_id, session_name, \
         expires_ms, created_ms FROM sts_sessions WHERE access_key_id = ?",
    )
    .bind(access_key_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| {
        let role_name = r.role_arn.rsplit('/').next().unwrap_or_default().to_owned();
        AccessKey {
            principal_arn: format!(
                "arn:aws:sts::{}:assumed-role/{role_name}/{}",
                r.account_id, r.session_name
            ),
            principal_id: format!("{}:{}", r.role_id, r.session_name),
            access_key_id: r.access_key_id,
            account_id: r.account_id,
            secret: Secret::new(r.secret),
            principal_type: PrincipalType::AssumedRole,
            user_name: String::new(),
            status: KeyStatus::Active,
            created_ms: r.created_ms,
            session: Some(SessionInfo {
                token_sha256: r.token_sha256,
                role_arn: r.role_arn,
                session_name: r.session_name,
                expires_ms: r.expires_ms,
            }),
        }
    }))
}

type CacheKey = (String, &'static str, String);

/// The identity cache's key: IAM names are unique regardless of case.
fn cache_key(account: &str, kind: &'static str, name: &str) -> CacheKey {
    (account.to_owned(), kind, name.to_lowercase())
}

/// What `Authorize` needs about an identity: its policy documents (inline, then the default
/// versions of its attached managed policies) and its tags.
#[derive(Debug, Default)]
pub struct IdentityData {
    pub documents: Vec<String>,
    pub tags: Vec<(String, String)>,
}

impl IdentityData {
    /// The principal tags as request condition keys (`aws:PrincipalTag/<key>`).
    pub fn tag_condition_keys(&self) -> Vec<(String, Vec<String>)> {
        self.tags
            .iter()
            .map(|(k, v)| (format!("aws:PrincipalTag/{k}"), vec![v.clone()]))
            .collect()
    }
}

/// Whether a request condition key is a principal tag (only authz may set those).
pub fn is_principal_tag_key(key: &str) -> bool {
    key.len() > 17 && key[..17].eq_ignore_ascii_case("aws:PrincipalTag/")
}

/// Whose policies apply to `caller`: a user's, or for an assumed-role session its
/// role's (kind and name); `None` for roots and the rest, which have none.
fn identity_of(caller: &CallerInfo) -> Option<(&'static str, &str)> {
    match caller.principal_type.as_str() {
        "IAMUser" if !caller.user_name.is_empty() => Some(("user", &caller.user_name)),
        "AssumedRole" if !caller.role_arn.is_empty() => Some((
            "role",
            caller.role_arn.rsplit('/').next().unwrap_or_default(),
        )),
        _ => None,
    }
}

/// No policies, no tags: one shared value, not an allocation per request.
fn no_identity_data() -> Arc<IdentityData> {
    static NONE: std::sync::LazyLock<Arc<IdentityData>> =
        std::sync::LazyLock::new(|| Arc::new(IdentityData::default()));
    Arc::clone(&NONE)
}

/// IAM and STS state of authz.
pub struct Iam {
    pool: SqlitePool,
    clock: Arc<dyn Clock>,
    /// Identity policy documents and tags by (account, kind, lowercase name).
    cache: RwLock<HashMap<CacheKey, Arc<IdentityData>>>,
}

impl Iam {
    pub fn new(pool: SqlitePool, clock: Arc<dyn Clock>) -> Self {
        Self {
            pool,
            clock,
            cache: RwLock::new(HashMap::new()),
        }
    }

    fn now_ms(&self) -> i64 {
        (self.clock.now().unix_timestamp_nanos() / 1_000_000) as i64
    }

    fn invalidate(&self, account: &str, kind: &'static str, name: &str) {
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&cache_key(account, kind, name));
    }

    /// Forget every cached identity (a managed policy's default version changed).
    fn invalidate_all(&self) {
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The inline and attached managed policies and the tags of a user or role (empty when
    /// it has none or does not exist).
    pub async fn identity_data(
        &self,
        account: &str,
        kind: &'static str,
        name: &str,
    ) -> Result<Arc<IdentityData>, Error> {
        if let Some(d) = self.cached_identity_data(account, kind, name) {
            return Ok(d);
        }
        // Boxed: the database reads' futures are several KB, and kept inline they would
        // make every authorization's future (allocated and copied per call) that large
        // although the cache answers nearly always.
        Box::pin(self.load_identity_data(account, kind, name)).await
    }

    fn cached_identity_data(
        &self,
        account: &str,
        kind: &'static str,
        name: &str,
    ) -> Option<Arc<IdentityData>> {
        self.cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&cache_key(account, kind, name))
            .cloned()
    }

    /// The cache miss of [`Self::identity_data`]: read, then cache.
    async fn load_identity_data(
        &self,
        account: &str,
        kind: &'static str,
        name: &str,
    ) -> Result<Arc<IdentityData>, Error> {
        let documents = self
            .named_policies(account, kind, name)
            .await?
            .into_iter()
            .map(|p| p.document)
            .collect();
        let tags = self.tags_of(account, kind, name).await?;
        let data = Arc::new(IdentityData { documents, tags });
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cache_key(account, kind, name), data.clone());
        Ok(data)
    }

    /// The identity-based policies and tags of a caller: a user's, or for an assumed-role
    /// session its role's. Roots and unknown kinds have none.
    pub async fn identity_policies(&self, caller: &CallerInfo) -> Result<Arc<IdentityData>, Error> {
        match identity_of(caller) {
            Some((kind, name)) => self.identity_data(&caller.account_id, kind, name).await,
            None => Ok(no_identity_data()),
        }
    }

    /// [`Self::identity_policies`] when no database read is needed; `None` on a cache miss.
    pub fn cached_identity_policies(&self, caller: &CallerInfo) -> Option<Arc<IdentityData>> {
        match identity_of(caller) {
            Some((kind, name)) => self.cached_identity_data(&caller.account_id, kind, name),
            None => Some(no_identity_data()),
        }
    }

    async fn user_row(&self, account: &str, name: &str) -> Result<UserRow, Error> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT account_id, user_name, user_id, path, created_ms FROM iam_users \
             WHERE account_id = ? AND user_name = ?",
        )
        .bind(account)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or_else(|| no_such(format!("The user with name {name} cannot be found.")))
    }

    async fn role_row(&self, account: &str, name: &str) -> Result<Option<RoleRow>, Error> {
        Ok(sqlx::query_as(
            "SELECT account_id, role_name, role_id, path, assume_role_policy, description, \
             max_session_duration, created_ms FROM iam_roles WHERE account_id = ? AND role_name = ?",
        )
        .bind(account)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn role_required(&self, account: &str, name: &str) -> Result<RoleRow, Error> {
        self.role_row(account, name)
            .await?
            .ok_or_else(|| no_such(format!("The role with name {name} cannot be found.")))
    }

    pub async fn create_user(&self, r: pb::IamUserRequest) -> Result<pb::IamUser, Error> {
        check_name(&r.user_name, "userName", 1, 64)?;
        let path = check_path(&r.path)?;
        let taken: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM iam_users WHERE account_id = ? AND user_name = ?")
                .bind(&r.account_id)
                .bind(&r.user_name)
                .fetch_optional(&self.pool)
                .await?;
        if taken.is_some() {
            return Err(Error::Iam(
                "EntityAlreadyExists",
                format!("User with name {} already exists.", r.user_name),
            ));
        }
        let row = UserRow {
            account_id: r.account_id,
            user_name: r.user_name,
            user_id: generate_id("AIDA", 17),
            path,
            created_ms: self.now_ms(),
        };
        sqlx::query(
            "INSERT INTO iam_users (account_id, user_name, user_id, path, created_ms) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&row.account_id)
        .bind(&row.user_name)
        .bind(&row.user_id)
        .bind(&row.path)
        .bind(row.created_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(ref d) if d.is_unique_violation() => Error::Iam(
                "EntityAlreadyExists",
                format!("User with name {} already exists.", row.user_name),
            ),
            e => e.into(),
        })?;
        // A stale cache entry of a former user of that name must not survive.
        self.invalidate(&row.account_id, "user", &row.user_name);
        Ok(row.into())
    }

    pub async fn get_user(&self, r: pb::IamUserRequest) -> Result<pb::IamUser, Error> {
        let row = self.user_row(&r.account_id, &r.user_name).await?;
        let tags = self.tags_pb(&r.account_id, "user", &row.user_name).await?;
        let mut user = pb::IamUser::from(row);
        user.tags = tags;
        Ok(user)
    }

    pub async fn list_users(&self, r: pb::ListIamUsersRequest) -> Result<Vec<pb::IamUser>, Error> {
        let prefix = if r.path_prefix.is_empty() {
            "/".to_owned()
        } else {
            r.path_prefix
        };
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT account_id, user_name, user_id, path, created_ms FROM iam_users \
             WHERE account_id = ? ORDER BY user_name COLLATE NOCASE",
        )
        .bind(&r.account_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter(|u| u.path.starts_with(&prefix))
            .map(Into::into)
            .collect())
    }

    pub async fn delete_user(&self, r: pb::IamUserRequest) -> Result<(), Error> {
        let user = self.user_row(&r.account_id, &r.user_name).await?;
        let keys: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM access_keys WHERE account_id = ? AND principal_type = 'IAMUser' \
             AND user_name = ?",
        )
        .bind(&r.account_id)
        .bind(&user.user_name)
        .fetch_one(&self.pool)
        .await?;
        if keys > 0 {
            return Err(Error::Iam(
                "DeleteConflict",
                "Cannot delete entity, must delete access keys first.".into(),
            ));
        }
        self.conflict_if_policies(&r.account_id, "user", &user.user_name)
            .await?;
        sqlx::query("DELETE FROM iam_users WHERE account_id = ? AND user_name = ?")
            .bind(&r.account_id)
            .bind(&user.user_name)
            .execute(&self.pool)
            .await?;
        self.delete_tags(&r.account_id, "user", &user.user_name)
            .await?;
        self.invalidate(&r.account_id, "user", &user.user_name);
        Ok(())
    }

    async fn conflict_if_policies(
        &self,
        account: &str,
        kind: &str,
        name: &str,
    ) -> Result<(), Error> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM iam_inline_policies WHERE account_id = ? AND principal_kind = ? \
             AND principal_name = ?",
        )
        .bind(account)
        .bind(kind)
        .bind(name)
        .fetch_one(&self.pool)
        .await?;
        if n > 0 {
            return Err(Error::Iam(
                "DeleteConflict",
                "Cannot delete entity, must delete policies first.".into(),
            ));
        }
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM iam_policy_attachments WHERE account_id = ? \
             AND principal_kind = ? AND principal_name = ?",
        )
        .bind(account)
        .bind(kind)
        .bind(name)
        .fetch_one(&self.pool)
        .await?;
        if n > 0 {
            return Err(Error::Iam(
                "DeleteConflict",
                "Cannot delete entity, must detach all policies first.".into(),
            ));
        }
        Ok(())
    }

    /// Keys of a user, or of the account root when `user_name` is empty.
    async fn keys_of(&self, account: &str, user_name: &str) -> Result<Vec<AccessKey>, Error> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT access_key_id FROM access_keys WHERE account_id = ? AND principal_type = ? \
             AND user_name = ? ORDER BY created_ms, access_key_id",
        )
        .bind(account)
        .bind(if user_name.is_empty() {
            "Root"
        } else {
            "IAMUser"
        })
        .bind(user_name)
        .fetch_all(&self.pool)
        .await?;
        let mut keys = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(k) = self.access_key(&id).await? {
                keys.push(k);
            }
        }
        Ok(keys)
    }

    async fn access_key(&self, id: &str) -> Result<Option<AccessKey>, Error> {
        use crate::store::Store;
        crate::store::SqliteStore {
            pool: self.pool.clone(),
        }
        .access_key(id)
        .await
    }

    /// The user name as stored (its case), or empty for the root.
    async fn owner_name(&self, account: &str, user_name: &str) -> Result<String, Error> {
        if user_name.is_empty() {
            return Ok(String::new());
        }
        Ok(self.user_row(account, user_name).await?.user_name)
    }

    /// Create an access key; the new key is returned with its secret.
    pub async fn create_access_key(&self, r: pb::IamUserRequest) -> Result<AccessKey, Error> {
        let now = self.now_ms();
        let key = if r.user_name.is_empty() {
            AccessKey::root(
                &r.account_id,
                generate_access_key_id(),
                generate_secret(),
                now,
            )
        } else {
            let user = self.user_row(&r.account_id, &r.user_name).await?;
            AccessKey {
                access_key_id: generate_access_key_id(),
                principal_arn: user_arn(&user.account_id, &user.path, &user.user_name),
                principal_id: user.user_id,
                account_id: user.account_id,
                secret: generate_secret(),
                principal_type: PrincipalType::IamUser,
                user_name: user.user_name,
                status: KeyStatus::Active,
                created_ms: now,
                session: None,
            }
        };
        if self.keys_of(&key.account_id, &key.user_name).await?.len() as i64 >= ACCESS_KEYS_PER_USER
        {
            return Err(Error::Iam(
                "LimitExceeded",
                format!("Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}"),
            ));
        }
        sqlx::query(
            "INSERT INTO access_keys (access_key_id, account_id, secret, principal_arn, principal_id, \
             principal_type, user_name, status, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.access_key_id)
        .bind(&key.account_id)
        .bind(key.secret.expose())
        .bind(&key.principal_arn)
        .bind(&key.principal_id)
        .bind(key.principal_type.as_str())
        .bind(&key.user_name)
        .bind(key.status.as_str())
        .bind(key.created_ms)
        .execute(&self.pool)
        .await?;
        Ok(key)
    }

    pub async fn list_access_keys(&self, r: pb::IamUserRequest) -> Result<Vec<AccessKey>, Error> {
        let owner = self.owner_name(&r.account_id, &r.user_name).await?;
        self.keys_of(&r.account_id, &owner).await
    }

    async fn owned_key(&self, r: &pb::IamAccessKeyRequest) -> Result<AccessKey, Error> {
        let owner = self.owner_name(&r.account_id, &r.user_name).await?;
        self.keys_of(&r.account_id, &owner)
            .await?
            .into_iter()
            .find(|k| k.access_key_id == r.access_key_id)
            .ok_or_else(|| {
                no_such(format!(
                    "The Access Key with id {} cannot be found.",
                    r.access_key_id
                ))
            })
    }

    /// Set a key's status; returns the key as it now is.
    pub async fn update_access_key(&self, r: pb::IamAccessKeyRequest) -> Result<AccessKey, Error> {
        let status = KeyStatus::parse(&r.status).ok_or_else(|| {
            validation(
                &r.status,
                "status",
                "Member must satisfy enum value set: [Active, Inactive]",
            )
        })?;
        let mut key = self.owned_key(&r).await?;
        sqlx::query("UPDATE access_keys SET status = ? WHERE access_key_id = ?")
            .bind(status.as_str())
            .bind(&key.access_key_id)
            .execute(&self.pool)
            .await?;
        key.status = status;
        Ok(key)
    }

    pub async fn delete_access_key(&self, r: pb::IamAccessKeyRequest) -> Result<(), Error> {
        let key = self.owned_key(&r).await?;
        sqlx::query("DELETE FROM access_keys WHERE access_key_id = ?")
            .bind(&key.access_key_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn create_role(&self, r: pb::CreateIamRoleRequest) -> Result<pb::IamRole, Error> {
        check_name(&r.role_name, "roleName", 1, 64)?;
        let path = check_path(&r.path)?;
        let max = match r.max_session_duration {
            0 => 3600,
            n if !(3600..=43200).contains(&n) => {
                return Err(validation(
                    &n.to_string(),
                    "maxSessionDuration",
                    if n < 3600 {
                        "Member must have value greater than or equal to 3600"
                    } else {
                        "Member must have value less than or equal to 43200"
                    },
                ));
            }
            n => n,
        };
        if r.assume_role_policy_document.is_empty() {
            return Err(validation(
                "",
                "assumeRolePolicyDocument",
                "Member must have length greater than or equal to 1",
            ));
        }
        // The strict grammar first (trailing commas, duplicate keys), then the trust rules.
        if let Err(e) = Policy::parse(&r.assume_role_policy_document)
            && !e.message.contains("Resource or NotResource")
        {
            return Err(malformed(e));
        }
        trust_policy_text(&r.assume_role_policy_document)?;
        if self.role_row(&r.account_id, &r.role_name).await?.is_some() {
            return Err(Error::Iam(
                "EntityAlreadyExists",
                format!("Role with name {} already exists.", r.role_name),
            ));
        }
        let row = RoleRow {
            account_id: r.account_id,
            role_name: r.role_name,
            role_id: generate_id("AROA", 17),
            path,
            assume_role_policy: r.assume_role_policy_document,
            description: r.description,
            max_session_duration: i64::from(max),
            created_ms: self.now_ms(),
        };
        sqlx::query(
            "INSERT INTO iam_roles (account_id, role_name, role_id, path, assume_role_policy, \
             description, max_session_duration, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&row.account_id)
        .bind(&row.role_name)
        .bind(&row.role_id)
        .bind(&row.path)
        .bind(&row.assume_role_policy)
        .bind(&row.description)
        .bind(row.max_session_duration)
        .bind(row.created_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(ref d) if d.is_unique_violation() => Error::Iam(
                "EntityAlreadyExists",
                format!("Role with name {} already exists.", row.role_name),
            ),
            e => e.into(),
        })?;
        self.invalidate(&row.account_id, "role", &row.role_name);
        Ok(row.into())
    }

    pub async fn get_role(&self, r: pb::IamRoleRequest) -> Result<pb::IamRole, Error> {
        let row = self.role_required(&r.account_id, &r.role_name).await?;
        let tags = self.tags_pb(&r.account_id, "role", &row.role_name).await?;
        let mut role = pb::IamRole::from(row);
        role.tags = tags;
        Ok(role)
    }

    pub async fn delete_role(&self, r: pb::IamRoleRequest) -> Result<(), Error> {
        let role = self.role_required(&r.account_id, &r.role_name).await?;
        self.conflict_if_policies(&r.account_id, "role", &role.role_name)
            .await?;
        sqlx::query("DELETE FROM iam_roles WHERE account_id = ? AND role_name = ?")
            .bind(&r.account_id)
            .bind(&role.role_name)
            .execute(&self.pool)
            .await?;
        self.delete_tags(&r.account_id, "role", &role.role_name)
            .await?;
        self.invalidate(&r.account_id, "role", &role.role_name);
        Ok(())
    }

    /// The stored name of the user or role an inline policy belongs to.
    async fn holder(&self, account: &str, kind: &str, name: &str) -> Result<String, Error> {
        match kind {
            "user" => Ok(self.user_row(account, name).await?.user_name),
            _ => Ok(self.role_required(account, name).await?.role_name),
        }
    }

    pub async fn put_inline_policy(&self, r: pb::InlinePolicy) -> Result<(), Error> {
        let k = kind(&r.principal_kind)?;
        check_policy_name(&r.policy_name)?;
        let name = self.holder(&r.account_id, k, &r.principal_name).await?;
        if r.policy_document.is_empty() {
            return Err(validation(
                "",
                "policyDocument",
                "Member must have length greater than or equal to 1",
            ));
        }
        Policy::parse_as(&r.policy_document, PolicyKind::Identity).map_err(malformed)?;
        sqlx::query(
            "INSERT INTO iam_inline_policies (account_id, principal_kind, principal_name, policy_name, document) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, principal_kind, principal_name, policy_name) \
             DO UPDATE SET document = excluded.document",
        )
        .bind(&r.account_id)
        .bind(k)
        .bind(&name)
        .bind(&r.policy_name)
        .bind(&r.policy_document)
        .execute(&self.pool)
        .await?;
        self.invalidate(&r.account_id, k, &name);
        Ok(())
    }

    pub async fn get_inline_policy(
        &self,
        r: pb::InlinePolicyRequest,
    ) -> Result<pb::InlinePolicy, Error> {
        let k = kind(&r.principal_kind)?;
        let name = self.holder(&r.account_id, k, &r.principal_name).await?;
        let doc: Option<String> = sqlx::query_scalar(
            "SELECT document FROM iam_inline_policies WHERE account_id = ? AND principal_kind = ? \
             AND principal_name = ? AND policy_name = ?",
        )
        .bind(&r.account_id)
        .bind(k)
        .bind(&name)
        .bind(&r.policy_name)
        .fetch_optional(&self.pool)
        .await?;
        let doc = doc.ok_or_else(|| {
            no_such(format!(
                "The {k} policy with name {} cannot be found.",
                r.policy_name
            ))
        })?;
        Ok(pb::InlinePolicy {
            account_id: r.account_id,
            principal_kind: k.into(),
            principal_name: name,
            policy_name: r.policy_name,
            policy_document: doc,
        })
    }

    pub async fn delete_inline_policy(&self, r: pb::InlinePolicyRequest) -> Result<(), Error> {
        let k = kind(&r.principal_kind)?;
        let name = self.holder(&r.account_id, k, &r.principal_name).await?;
        let done = sqlx::query(
            "DELETE FROM iam_inline_policies WHERE account_id = ? AND principal_kind = ? \
             AND principal_name = ? AND policy_name = ?",
        )
        .bind(&r.account_id)
        .bind(k)
        .bind(&name)
        .bind(&r.policy_name)
        .execute(&self.pool)
        .await?;
        self.invalidate(&r.account_id, k, &name);
        if done.rows_affected() == 0 {
            return Err(no_such(format!(
                "The {k} policy with name {} cannot be found.",
                r.policy_name
            )));
        }
        Ok(())
    }

    pub async fn list_inline_policies(
        &self,
        r: pb::InlinePolicyRequest,
    ) -> Result<Vec<String>, Error> {
        let k = kind(&r.principal_kind)?;
        let name = self.holder(&r.account_id, k, &r.principal_name).await?;
        Ok(sqlx::query_scalar(
            "SELECT policy_name FROM iam_inline_policies WHERE account_id = ? AND principal_kind = ? \
             AND principal_name = ? ORDER BY policy_name",
        )
        .bind(&r.account_id)
        .bind(k)
        .bind(&name)
        .fetch_all(&self.pool)
        .await?)
    }

    /// STS AssumeRole: the trust policy (resource side) and the caller's identity policies
    /// decide, as AWS evaluates a resource-based policy; roots may not assume roles.
    pub async fn assume_role(
        &self,
        caller: CallerInfo,
        origin: Origin,
        authorizer: &Authorizer,
        r: &pb::AssumeRoleRequest,
    ) -> Result<(AccessKey, Secret), Error> {
        let name = &r.role_session_name;
        check_name(name, "roleSessionName", 2, 64)?;
        let duration = match r.duration_seconds {
            0 => 3600,
            n if n < 900 => {
                return Err(validation(
                    &n.to_string(),
                    "durationSeconds",
                    "Member must have value greater than or equal to 900",
                ));
            }
            n if n > 43200 => {
                return Err(validation(
                    &n.to_string(),
                    "durationSeconds",
                    "Member must have value less than or equal to 43200",
                ));
            }
            n => n,
        };
        if r.role_arn.len() < 20 {
            return Err(validation(
                &r.role_arn,
                "roleArn",
                "Member must have length greater than or equal to 20",
            ));
        }
        let caller_arn = caller.arn.clone();
        let denied = || {
            Error::Iam(
                "AccessDenied",
                format!(
                    "User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {}",
                    r.role_arn
                ),
            )
        };
        if caller.principal_type == "Root" {
            return Err(Error::Iam(
                "AccessDenied",
                "Roles may not be assumed by root accounts.".into(),
            ));
        }
        let parts: Vec<&str> = r.role_arn.splitn(6, ':').collect();
        let (role_account, resource) = match parts.as_slice() {
            ["arn", "aws", "iam", "", account, resource] => (*account, *resource),
            _ => {
                return Err(Error::Iam(
                    "ValidationError",
                    format!("{} is invalid", r.role_arn),
                ));
            }
        };
        let Some(role_name) = resource
            .strip_prefix("role/")
            .map(|p| p.rsplit('/').next().unwrap_or_default())
        else {
            return Err(Error::Iam(
                "ValidationError",
                format!("{} is invalid", r.role_arn),
            ));
        };
        let Some(role) = self.role_row(role_account, role_name).await? else {
            return Err(denied());
        };
        let arn = role_arn(&role.account_id, &role.path, &role.role_name);
        if arn != r.role_arn {
            return Err(denied());
        }
        let identity = self.identity_policies(&caller).await?;
        let chained = caller.principal_type == "AssumedRole";
        let request = AccessRequest {
            caller: Some(caller),
            origin,
            action: "sts:AssumeRole".into(),
            resource_arn: arn.clone(),
            resource_account: role.account_id.clone(),
            key_policy: trust_policy_text(&role.assume_role_policy)?,
            identity_policies: identity.documents.clone(),
            endpoint_policy: String::new(),
            condition_keys: identity.tag_condition_keys(),
        };
        let d = authorizer.decide(&request, self.clock.now())?;
        if !d.allowed {
            return Err(denied());
        }
        if i64::from(duration) > role.max_session_duration {
            return Err(Error::Iam(
                "ValidationError",
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
                    .into(),
            ));
        }
        if chained && duration > 3600 {
            return Err(Error::Iam(
                "ValidationError",
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
                    .into(),
            ));
        }
        let now = self.now_ms();
        let token = generate_session_token();
        let key = AccessKey {
            access_key_id: generate_id("ASIA", 16),
            account_id: role.account_id.clone(),
            secret: generate_secret(),
            principal_arn: format!(
                "arn:aws:sts::{}:assumed-role/{}/{name}",
                role.account_id, role.role_name
            ),
            principal_id: format!("{}:{name}", role.role_id),
            principal_type: PrincipalType::AssumedRole,
            user_name: String::new(),
            status: KeyStatus::Active,
            created_ms: now,
            session: Some(SessionInfo {
                token_sha256: sha256_hex(token.expose()),
                role_arn: arn,
                session_name: name.clone(),
                expires_ms: now + i64::from(duration) * 1000,
            }),
        };
        let s = key
            .session
            .as_ref()
            .ok_or_else(|| Error::Corrupt("session".into()))?;
        sqlx::query(
            "INSERT INTO sts_sessions (access_key_id, account_id, secret, token_sha256, role_arn, \
             role_id, session_name, expires_ms, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.access_key_id)
        .bind(&key.account_id)
        .bind(key.secret.expose())
        .bind(&s.token_sha256)
        .bind(&s.role_arn)
        .bind(&role.role_id)
        .bind(&s.session_name)
        .bind(s.expires_ms)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok((key, token))
    }
}

/// The most managed policies attached to one user or role (IAM's default quota).
const ATTACHED_POLICIES_PER_PRINCIPAL: i64 = 10;
/// The most versions a managed policy keeps.
const VERSIONS_PER_POLICY: i64 = 5;
/// Managed policy documents may have this many characters, whitespace excluded.
const MANAGED_POLICY_MAX_CHARS: usize = 6144;
/// The most tags a user or role may have.
const TAGS_PER_PRINCIPAL: usize = 50;

pub fn policy_arn(account: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:policy{path}{name}")
}

/// One policy of an identity, as the simulator reports it.
#[derive(Debug, Clone)]
pub struct NamedPolicy {
    /// IAM's SourcePolicyId: the inline policy's or managed policy's name.
    pub id: String,
    /// IAM's SourcePolicyType: `user`, `role` or `user-managed`.
    pub source_type: &'static str,
    pub document: String,
}

/// IAM's MalformedPolicyDocument for a document the engine refuses.
fn malformed_managed(e: crate::policy::PolicyError) -> Error {
    let m = &e.message;
    let message = if m.contains("invalid Json") {
        "This policy contains invalid Json".to_owned()
    } else if m.contains("must not have Principal") {
        "Policy document should not specify a principal.".to_owned()
    } else if m.contains("missing the Statement")
        || m.contains("must be an object")
        || m.contains("must be a JSON object")
    {
        "Syntax errors in policy.".to_owned()
    } else {
        e.message
    };
    Error::Iam("MalformedPolicyDocument", message)
}

fn check_managed_document(doc: &str) -> Result<(), Error> {
    if doc.is_empty() {
        return Err(validation(
            "",
            "policyDocument",
            "Member must have length greater than or equal to 1",
        ));
    }
    if doc.chars().filter(|c| !c.is_whitespace()).count() > MANAGED_POLICY_MAX_CHARS {
        return Err(Error::Iam(
            "LimitExceeded",
            format!("Cannot exceed quota for PolicySize: {MANAGED_POLICY_MAX_CHARS}"),
        ));
    }
    Policy::parse_as(doc, PolicyKind::Identity).map_err(malformed_managed)?;
    Ok(())
}

fn tag_char_ok(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

fn check_tags(tags: &[pb::IamTag]) -> Result<(), Error> {
    for (i, t) in tags.iter().enumerate() {
        let field = format!("tags.{}.member.key", i + 1);
        let len = t.key.chars().count();
        if len < 1 {
            return Err(validation(
                &t.key,
                &field,
                "Member must have length greater than or equal to 1",
            ));
        }
        if len > 128 {
            return Err(validation(
                &t.key,
                &field,
                "Member must have length less than or equal to 128",
            ));
        }
        if !t.key.chars().all(tag_char_ok) {
            return Err(validation(
                &t.key,
                &field,
                "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+",
            ));
        }
        let field = format!("tags.{}.member.value", i + 1);
        if t.value.chars().count() > 256 {
            return Err(validation(
                &t.value,
                &field,
                "Member must have length less than or equal to 256",
            ));
        }
        if !t.value.chars().all(tag_char_ok) {
            return Err(validation(
                &t.value,
                &field,
                "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*",
            ));
        }
        if t.key.len() >= 4 && t.key[..4].eq_ignore_ascii_case("aws:") {
            return Err(Error::Iam(
                "InvalidInput",
                "Tag keys starting with 'aws:' are reserved for internal AWS use".into(),
            ));
        }
    }
    let mut keys: Vec<String> = tags.iter().map(|t| t.key.to_lowercase()).collect();
    keys.sort();
    keys.dedup();
    if keys.len() != tags.len() {
        return Err(Error::Iam(
            "InvalidInput",
            "Duplicate tag keys found. Please note that Tag keys are case insensitive.".into(),
        ));
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct PolicyRow {
    account_id: String,
    policy_name: String,
    policy_id: String,
    path: String,
    description: String,
    default_version: String,
    next_version: i64,
    created_ms: i64,
    updated_ms: i64,
    attachment_count: i64,
}

impl From<PolicyRow> for pb::ManagedPolicy {
    fn from(r: PolicyRow) -> Self {
        Self {
            arn: policy_arn(&r.account_id, &r.path, &r.policy_name),
            policy_name: r.policy_name,
            policy_id: r.policy_id,
            path: r.path,
            default_version_id: r.default_version,
            attachment_count: r.attachment_count as i32,
            description: r.description,
            create_date_ms: r.created_ms,
            update_date_ms: r.updated_ms,
        }
    }
}

const POLICY_COLUMNS: &str = "p.account_id, p.policy_name, p.policy_id, p.path, p.description, \
     p.default_version, p.next_version, p.created_ms, p.updated_ms, \
     (SELECT COUNT(*) FROM iam_policy_attachments a WHERE a.account_id = p.account_id \
       AND a.policy_name = p.policy_name) AS attachment_count";

#[derive(sqlx::FromRow)]
struct VersionRow {
    version_id: String,
    document: String,
    created_ms: i64,
}

impl Iam {
    /// Every policy of a user or role: its inline policies (by name), then the default
    /// versions of its attached managed policies (by name).
    pub async fn named_policies(
        &self,
        account: &str,
        kind: &'static str,
        name: &str,
    ) -> Result<Vec<NamedPolicy>, Error> {
        let inline: Vec<(String, String)> = sqlx::query_as(
            "SELECT policy_name, document FROM iam_inline_policies WHERE account_id = ? \
             AND principal_kind = ? AND principal_name = ? ORDER BY policy_name",
        )
        .bind(account)
        .bind(kind)
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        let managed: Vec<(String, String)> = sqlx::query_as(
            "SELECT p.policy_name, v.document FROM iam_policy_attachments a \
             JOIN iam_policies p ON p.account_id = a.account_id AND p.policy_name = a.policy_name \
             JOIN iam_policy_versions v ON v.account_id = p.account_id \
               AND v.policy_name = p.policy_name AND v.version_id = p.default_version \
             WHERE a.account_id = ? AND a.principal_kind = ? AND a.principal_name = ? \
             ORDER BY p.policy_name",
        )
        .bind(account)
        .bind(kind)
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<NamedPolicy> = inline
            .into_iter()
            .map(|(id, document)| NamedPolicy {
                id,
                source_type: kind,
                document,
            })
            .collect();
        out.extend(managed.into_iter().map(|(id, document)| NamedPolicy {
            id,
            source_type: "user-managed",
            document,
        }));
        Ok(out)
    }

    async fn tags_of(
        &self,
        account: &str,
        kind: &str,
        name: &str,
    ) -> Result<Vec<(String, String)>, Error> {
        Ok(sqlx::query_as(
            "SELECT tag_key, tag_value FROM iam_tags WHERE account_id = ? AND principal_kind = ? \
             AND principal_name = ? ORDER BY position, tag_key",
        )
        .bind(account)
        .bind(kind)
        .bind(name)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn tags_pb(
        &self,
        account: &str,
        kind: &str,
        name: &str,
    ) -> Result<Vec<pb::IamTag>, Error> {
        Ok(self
            .tags_of(account, kind, name)
            .await?
            .into_iter()
            .map(|(key, value)| pb::IamTag { key, value })
            .collect())
    }

    async fn delete_tags(
        &self,
        account: &str,
        kind: &'static str,
        name: &str,
    ) -> Result<(), Error> {
        sqlx::query(
            "DELETE FROM iam_tags WHERE account_id = ? AND principal_kind = ? AND principal_name = ?",
        )
        .bind(account)
        .bind(kind)
        .bind(name)
        .execute(&self.pool)
        .await?;
        self.invalidate(account, kind, name);
        Ok(())
    }

    /// The user or role named by a tag / attachment request, as stored.
    async fn principal(
        &self,
        account: &str,
        kind: &str,
        name: &str,
    ) -> Result<(&'static str, String), Error> {
        let k = kind_of(kind)?;
        Ok((k, self.holder(account, k, name).await?))
    }

    pub async fn tag_principal(&self, r: pb::TagPrincipalRequest) -> Result<(), Error> {
        let (k, name) = self
            .principal(&r.account_id, &r.principal_kind, &r.principal_name)
            .await?;
        check_tags(&r.tags)?;
        let existing = self.tags_of(&r.account_id, k, &name).await?;
        let new_keys = r
            .tags
            .iter()
            .filter(|t| {
                !existing.iter().any(|(e, _)| {
                    e.eq_ignore_ascii_case(&t.key) || e.to_lowercase() == t.key.to_lowercase()
                })
            })
            .count();
        if existing.len() + new_keys > TAGS_PER_PRINCIPAL {
            let quota = if k == "user" {
                "TagsPerUser"
            } else {
                "TagsPerRole"
            };
            return Err(Error::Iam(
                "LimitExceeded",
                format!("Cannot exceed quota for {quota}: {TAGS_PER_PRINCIPAL}"),
            ));
        }
        let mut tx = self.pool.begin().await?;
        let mut position: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(position), 0) FROM iam_tags WHERE account_id = ? \
             AND principal_kind = ? AND principal_name = ?",
        )
        .bind(&r.account_id)
        .bind(k)
        .bind(&name)
        .fetch_one(&mut *tx)
        .await?;
        for t in &r.tags {
            position += 1;
            sqlx::query(
                "INSERT INTO iam_tags (account_id, principal_kind, principal_name, tag_key, tag_value, position) \
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, principal_kind, principal_name, tag_key) \
                 DO UPDATE SET tag_value = excluded.tag_value",
            )
            .bind(&r.account_id)
            .bind(k)
            .bind(&name)
            .bind(&t.key)
            .bind(&t.value)
            .bind(position)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.invalidate(&r.account_id, k, &name);
        Ok(())
    }

    pub async fn untag_principal(&self, r: pb::UntagPrincipalRequest) -> Result<(), Error> {
        let (k, name) = self
            .principal(&r.account_id, &r.principal_kind, &r.principal_name)
            .await?;
        for (i, key) in r.tag_keys.iter().enumerate() {
            if key.is_empty() || key.chars().count() > 128 {
                return Err(validation(
                    key,
                    &format!("tagKeys.{}.member", i + 1),
                    if key.is_empty() {
                        "Member must have length greater than or equal to 1"
                    } else {
                        "Member must have length less than or equal to 128"
                    },
                ));
            }
        }
        for key in &r.tag_keys {
            sqlx::query(
                "DELETE FROM iam_tags WHERE account_id = ? AND principal_kind = ? \
                 AND principal_name = ? AND tag_key = ?",
            )
            .bind(&r.account_id)
            .bind(k)
            .bind(&name)
            .bind(key)
            .execute(&self.pool)
            .await?;
        }
        self.invalidate(&r.account_id, k, &name);
        Ok(())
    }

    pub async fn list_principal_tags(
        &self,
        r: pb::PrincipalTagsRequest,
    ) -> Result<Vec<pb::IamTag>, Error> {
        let (k, name) = self
            .principal(&r.account_id, &r.principal_kind, &r.principal_name)
            .await?;
        self.tags_pb(&r.account_id, k, &name).await
    }

    /// The stored row of a managed policy of `account` named by its ARN.
    async fn policy_by_arn(
        &self,
        account: &str,
        arn: &str,
        not_found: impl Fn(&str) -> String,
    ) -> Result<PolicyRow, Error> {
        if arn.len() < 20 {
            return Err(validation(
                arn,
                "policyArn",
                "Member must have length greater than or equal to 20",
            ));
        }
        let prefix = format!("arn:aws:iam::{account}:policy/");
        let Some(rest) = arn.strip_prefix(&prefix) else {
            if arn.starts_with("arn:aws:iam::") {
                return Err(no_such(not_found(arn)));
            }
            return Err(Error::Iam(
                "InvalidInput",
                format!("ARN {arn} is not valid."),
            ));
        };
        let name = rest.rsplit('/').next().unwrap_or_default();
        let path = format!("/{}", &rest[..rest.len() - name.len()]);
        let sql = format!(
            "SELECT {POLICY_COLUMNS} FROM iam_policies p WHERE p.account_id = ? AND p.policy_name = ?"
        );
        let row: Option<PolicyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(account)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) if r.path == path && r.policy_name == name => Ok(r),
            _ => Err(no_such(not_found(arn))),
        }
    }

    async fn policy_required(&self, account: &str, arn: &str) -> Result<PolicyRow, Error> {
        self.policy_by_arn(account, arn, |a| format!("Policy {a} was not found."))
            .await
    }

    pub async fn create_policy(
        &self,
        r: pb::CreateManagedPolicyRequest,
    ) -> Result<pb::ManagedPolicy, Error> {
        check_name(&r.policy_name, "policyName", 1, 128)?;
        let path = check_path(&r.path)?;
        if r.description.chars().count() > 1000 {
            return Err(validation(
                &r.description,
                "description",
                "Member must have length less than or equal to 1000",
            ));
        }
        check_managed_document(&r.policy_document)?;
        let taken: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM iam_policies WHERE account_id = ? AND policy_name = ?",
        )
        .bind(&r.account_id)
        .bind(&r.policy_name)
        .fetch_optional(&self.pool)
        .await?;
        let exists = || {
            Error::Iam(
                "EntityAlreadyExists",
                format!(
                    "A policy called {} already exists. Duplicate names are not allowed.",
                    r.policy_name
                ),
            )
        };
        if taken.is_some() {
            return Err(exists());
        }
        let now = self.now_ms();
        let row = PolicyRow {
            account_id: r.account_id.clone(),
            policy_name: r.policy_name.clone(),
            policy_id: generate_id("ANPA", 17),
            path,
            description: r.description.clone(),
            default_version: "v1".into(),
            next_version: 2,
            created_ms: now,
            updated_ms: now,
            attachment_count: 0,
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO iam_policies (account_id, policy_name, policy_id, path, description, \
             default_version, next_version, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&row.account_id)
        .bind(&row.policy_name)
        .bind(&row.policy_id)
        .bind(&row.path)
        .bind(&row.description)
        .bind(&row.default_version)
        .bind(row.next_version)
        .bind(row.created_ms)
        .bind(row.updated_ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(ref d) if d.is_unique_violation() => exists(),
            e => e.into(),
        })?;
        sqlx::query(
            "INSERT INTO iam_policy_versions (account_id, policy_name, version_id, document, created_ms) \
             VALUES (?, ?, 'v1', ?, ?)",
        )
        .bind(&row.account_id)
        .bind(&row.policy_name)
        .bind(&r.policy_document)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.into())
    }

    pub async fn get_policy(
        &self,
        r: pb::ManagedPolicyRequest,
    ) -> Result<pb::ManagedPolicy, Error> {
        Ok(self
            .policy_required(&r.account_id, &r.policy_arn)
            .await?
            .into())
    }

    pub async fn delete_policy(&self, r: pb::ManagedPolicyRequest) -> Result<(), Error> {
        let row = self.policy_required(&r.account_id, &r.policy_arn).await?;
        if row.attachment_count > 0 {
            return Err(Error::Iam(
                "DeleteConflict",
                "Cannot delete a policy attached to entities.".into(),
            ));
        }
        let versions: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM iam_policy_versions WHERE account_id = ? AND policy_name = ?",
        )
        .bind(&row.account_id)
        .bind(&row.policy_name)
        .fetch_one(&self.pool)
        .await?;
        if versions > 1 {
            return Err(Error::Iam(
                "DeleteConflict",
                "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.".into(),
            ));
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM iam_policy_versions WHERE account_id = ? AND policy_name = ?")
            .bind(&row.account_id)
            .bind(&row.policy_name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM iam_policies WHERE account_id = ? AND policy_name = ?")
            .bind(&row.account_id)
            .bind(&row.policy_name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.invalidate_all();
        Ok(())
    }

    pub async fn list_policies(
        &self,
        r: pb::ListManagedPoliciesRequest,
    ) -> Result<Vec<pb::ManagedPolicy>, Error> {
        match r.scope.as_str() {
            "" | "All" | "Local" => {}
            "AWS" => return Ok(Vec::new()),
            other => {
                return Err(validation(
                    other,
                    "scope",
                    "Member must satisfy enum value set: [All, AWS, Local]",
                ));
            }
        }
        let prefix = if r.path_prefix.is_empty() {
            "/".to_owned()
        } else {
            r.path_prefix
        };
        let sql = format!(
            "SELECT {POLICY_COLUMNS} FROM iam_policies p WHERE p.account_id = ? \
             ORDER BY p.policy_name COLLATE NOCASE"
        );
        let rows: Vec<PolicyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&r.account_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .filter(|p| p.path.starts_with(&prefix))
            .filter(|p| !r.only_attached || p.attachment_count > 0)
            .map(Into::into)
            .collect())
    }

    fn check_version_id(v: &str) -> Result<(), Error> {
        let ok = v.strip_prefix('v').is_some_and(|n| {
            let digits: String = n.chars().take_while(char::is_ascii_digit).collect();
            !digits.is_empty() && !digits.starts_with('0')
        });
        if ok {
            Ok(())
        } else {
            Err(validation(
                v,
                "versionId",
                "Member must satisfy regular expression pattern: v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?",
            ))
        }
    }

    pub async fn create_policy_version(
        &self,
        r: pb::CreatePolicyVersionRequest,
    ) -> Result<pb::PolicyVersion, Error> {
        let row = self.policy_required(&r.account_id, &r.policy_arn).await?;
        check_managed_document(&r.policy_document)?;
        let versions: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM iam_policy_versions WHERE account_id = ? AND policy_name = ?",
        )
        .bind(&row.account_id)
        .bind(&row.policy_name)
        .fetch_one(&self.pool)
        .await?;
        if versions >= VERSIONS_PER_POLICY {
            return Err(Error::Iam(
                "LimitExceeded",
                format!(
                    "A managed policy can have up to {VERSIONS_PER_POLICY} versions. Before you create a new version, you must delete an existing version."
                ),
            ));
        }
        let now = self.now_ms();
        let version_id = format!("v{}", row.next_version);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO iam_policy_versions (account_id, policy_name, version_id, document, created_ms) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&row.account_id)
        .bind(&row.policy_name)
        .bind(&version_id)
        .bind(&r.policy_document)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE iam_policies SET next_version = next_version + 1, updated_ms = ?, \
             default_version = CASE WHEN ? THEN ? ELSE default_version END \
             WHERE account_id = ? AND policy_name = ?",
        )
        .bind(now)
        .bind(r.set_as_default)
        .bind(&version_id)
        .bind(&row.account_id)
        .bind(&row.policy_name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if r.set_as_default {
            self.invalidate_all();
        }
        Ok(pb::PolicyVersion {
            document: r.policy_document,
            version_id,
            is_default_version: r.set_as_default,
            create_date_ms: now,
        })
    }

    async fn versions(&self, row: &PolicyRow) -> Result<Vec<pb::PolicyVersion>, Error> {
        let rows: Vec<VersionRow> = sqlx::query_as(
            "SELECT version_id, document, created_ms FROM iam_policy_versions \
             WHERE account_id = ? AND policy_name = ? ORDER BY created_ms DESC, version_id DESC",
        )
        .bind(&row.account_id)
        .bind(&row.policy_name)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|v| pb::PolicyVersion {
                is_default_version: v.version_id == row.default_version,
                version_id: v.version_id,
                document: v.document,
                create_date_ms: v.created_ms,
            })
            .collect())
    }

    pub async fn get_policy_version(
        &self,
        r: pb::PolicyVersionRequest,
    ) -> Result<pb::PolicyVersion, Error> {
        Self::check_version_id(&r.version_id)?;
        let row = self.policy_required(&r.account_id, &r.policy_arn).await?;
        self.versions(&row)
            .await?
            .into_iter()
            .find(|v| v.version_id == r.version_id)
            .ok_or_else(|| {
                no_such(format!(
                    "Policy {} version {} does not exist or is not attachable.",
                    r.policy_arn, r.version_id
                ))
            })
    }

    pub async fn list_policy_versions(
        &self,
        r: pb::ManagedPolicyRequest,
    ) -> Result<Vec<pb::PolicyVersion>, Error> {
        let row = self.policy_required(&r.account_id, &r.policy_arn).await?;
        Ok(self
            .versions(&row)
            .await?
            .into_iter()
            .map(|mut v| {
                v.document.clear();
                v
            })
            .collect())
    }

    pub async fn delete_policy_version(&self, r: pb::PolicyVersionRequest) -> Result<(), Error> {
        Self::check_version_id(&r.version_id)?;
        let row = self.policy_required(&r.account_id, &r.policy_arn).await?;
        if row.default_version == r.version_id {
            return Err(Error::Iam(
                "DeleteConflict",
                "Cannot delete the default version of a policy.".into(),
            ));
        }
        let done = sqlx::query(
            "DELETE FROM iam_policy_versions WHERE account_id = ? AND policy_name = ? AND version_id = ?",
        )
        .bind(&row.account_id)
        .bind(&row.policy_name)
        .bind(&r.version_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(no_such(format!(
                "Policy {} version {} does not exist.",
                r.policy_arn, r.version_id
            )));
        }
        Ok(())
    }

    pub async fn set_default_policy_version(
        &self,
        r: pb::PolicyVersionRequest,
    ) -> Result<(), Error> {
        Self::check_version_id(&r.version_id)?;
        let row = self.policy_required(&r.account_id, &r.policy_arn).await?;
        if !self
            .versions(&row)
            .await?
            .iter()
            .any(|v| v.version_id == r.version_id)
        {
            return Err(no_such(format!(
                "Policy {} version {} does not exist.",
                r.policy_arn, r.version_id
            )));
        }
        sqlx::query(
            "UPDATE iam_policies SET default_version = ?, updated_ms = ? WHERE account_id = ? AND policy_name = ?",
        )
        .bind(&r.version_id)
        .bind(self.now_ms())
        .bind(&row.account_id)
        .bind(&row.policy_name)
        .execute(&self.pool)
        .await?;
        self.invalidate_all();
        Ok(())
    }

    pub async fn attach_policy(&self, r: pb::PolicyAttachmentRequest) -> Result<(), Error> {
        let (k, name) = self
            .principal(&r.account_id, &r.principal_kind, &r.principal_name)
            .await?;
        let row = self
            .policy_by_arn(&r.account_id, &r.policy_arn, |a| {
                format!("Policy {a} does not exist or is not attachable.")
            })
            .await?;
        let attached: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM iam_policy_attachments WHERE account_id = ? AND principal_kind = ? \
             AND principal_name = ? AND policy_name <> ?",
        )
        .bind(&r.account_id)
        .bind(k)
        .bind(&name)
        .bind(&row.policy_name)
        .fetch_one(&self.pool)
        .await?;
        if attached >= ATTACHED_POLICIES_PER_PRINCIPAL {
            let quota = if k == "user" {
                "PoliciesPerUser"
            } else {
                "PoliciesPerRole"
            };
            return Err(Error::Iam(
                "LimitExceeded",
                format!("Cannot exceed quota for {quota}: {ATTACHED_POLICIES_PER_PRINCIPAL}"),
            ));
        }
        sqlx::query(
            "INSERT INTO iam_policy_attachments (account_id, principal_kind, principal_name, policy_name, attached_ms) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(&r.account_id)
        .bind(k)
        .bind(&name)
        .bind(&row.policy_name)
        .bind(self.now_ms())
        .execute(&self.pool)
        .await?;
        self.invalidate(&r.account_id, k, &name);
        Ok(())
    }

    pub async fn detach_policy(&self, r: pb::PolicyAttachmentRequest) -> Result<(), Error> {
        let (k, name) = self
            .principal(&r.account_id, &r.principal_kind, &r.principal_name)
            .await?;
        let row = self.policy_required(&r.account_id, &r.policy_arn).await?;
        let done = sqlx::query(
            "DELETE FROM iam_policy_attachments WHERE account_id = ? AND principal_kind = ? \
             AND principal_name = ? AND policy_name = ?",
        )
        .bind(&r.account_id)
        .bind(k)
        .bind(&name)
        .bind(&row.policy_name)
        .execute(&self.pool)
        .await?;
        self.invalidate(&r.account_id, k, &name);
        if done.rows_affected() == 0 {
            return Err(no_such(format!("Policy {} was not found.", r.policy_arn)));
        }
        Ok(())
    }

    pub async fn list_attached_policies(
        &self,
        r: pb::PolicyAttachmentRequest,
    ) -> Result<Vec<pb::AttachedPolicy>, Error> {
        let (k, name) = self
            .principal(&r.account_id, &r.principal_kind, &r.principal_name)
            .await?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT p.policy_name, p.path FROM iam_policy_attachments a JOIN iam_policies p \
             ON p.account_id = a.account_id AND p.policy_name = a.policy_name \
             WHERE a.account_id = ? AND a.principal_kind = ? AND a.principal_name = ? \
             ORDER BY p.policy_name COLLATE NOCASE",
        )
        .bind(&r.account_id)
        .bind(k)
        .bind(&name)
        .fetch_all(&self.pool)
        .await?;
        let prefix = if r.path_prefix.is_empty() {
            "/"
        } else {
            r.path_prefix.as_str()
        };
        Ok(rows
            .into_iter()
            .filter(|(_, path)| path.starts_with(prefix))
            .map(|(policy_name, path)| pb::AttachedPolicy {
                policy_arn: policy_arn(&r.account_id, &path, &policy_name),
                policy_name,
            })
            .collect())
    }

    /// A user or role of `account` named by its ARN: (kind, stored name, path, id).
    pub async fn principal_by_arn(
        &self,
        account: &str,
        arn: &str,
    ) -> Result<(&'static str, String, String, String), Error> {
        let prefix = format!("arn:aws:iam::{account}:");
        let rest = arn.strip_prefix(&prefix).ok_or_else(|| {
            Error::Iam(
                "InvalidInput",
                format!("Invalid ARN: Could not be parsed! arn: {arn}"),
            )
        })?;
        let name = rest.rsplit('/').next().unwrap_or_default();
        if rest.starts_with("user/") {
            let u = self.user_row(account, name).await?;
            if user_arn(&u.account_id, &u.path, &u.user_name) != arn {
                return Err(no_such(format!(
                    "The user with name {name} cannot be found."
                )));
            }
            Ok(("user", u.user_name, u.path, u.user_id))
        } else if rest.starts_with("role/") {
            let r = self.role_required(account, name).await?;
            if role_arn(&r.account_id, &r.path, &r.role_name) != arn {
                return Err(no_such(format!(
                    "The role with name {name} cannot be found."
                )));
            }
            Ok(("role", r.role_name, r.path, r.role_id))
        } else if rest.starts_with("group/") {
            Err(no_such(format!(
                "The group with name {name} cannot be found."
            )))
        } else {
            Err(Error::Iam(
                "InvalidInput",
                format!("Invalid ARN: Could not be parsed! arn: {arn}"),
            ))
        }
    }

    pub fn clock_now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert!(check_name("Alice_1+=,.@-", "userName", 1, 64).is_ok());
        assert!(check_name("no spaces", "userName", 1, 64).is_err());
        assert!(check_name("", "userName", 1, 64).is_err());
        assert_eq!(check_path("").unwrap(), "/");
        assert!(check_path("/a/b/").is_ok());
        assert!(check_path("a/").is_err());
        assert_eq!(
            user_arn("111122223333", "/", "Bob"),
            "arn:aws:iam::111122223333:user/Bob"
        );
        assert_eq!(
            role_arn("111122223333", "/x/", "R"),
            "arn:aws:iam::111122223333:role/x/R"
        );
    }

    #[test]
    fn tokens_are_compared_by_digest() {
        let s = SessionInfo {
            token_sha256: sha256_hex("tok"),
            role_arn: String::new(),
            session_name: String::new(),
            expires_ms: 0,
        };
        assert!(token_matches(&s, "tok"));
        assert!(!token_matches(&s, "tok2"));
        assert!(!token_matches(&s, ""));
    }
}
