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

/// IAM and STS state of authz.
pub struct Iam {
    pool: SqlitePool,
    clock: Arc<dyn Clock>,
    /// Inline policy documents by (account, kind, lowercase name).
    cache: RwLock<HashMap<CacheKey, Arc<Vec<String>>>>,
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
            .remove(&(account.to_owned(), kind, name.to_lowercase()));
    }

    /// The inline policies of a user or role (empty when it has none or does not exist).
    pub async fn inline_documents(
        &self,
        account: &str,
        kind: &'static str,
        name: &str,
    ) -> Result<Arc<Vec<String>>, Error> {
        let key = (account.to_owned(), kind, name.to_lowercase());
        if let Some(d) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(d.clone());
        }
        let docs: Vec<String> = sqlx::query_scalar(
            "SELECT document FROM iam_inline_policies WHERE account_id = ? AND principal_kind = ? \
             AND principal_name = ? ORDER BY policy_name",
        )
        .bind(account)
        .bind(kind)
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        let docs = Arc::new(docs);
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, docs.clone());
        Ok(docs)
    }

    /// The identity-based policies of a caller: a user's inline policies, or for an
    /// assumed-role session its role's. Roots and unknown kinds have none.
    pub async fn identity_policies(&self, caller: &CallerInfo) -> Result<Arc<Vec<String>>, Error> {
        match caller.principal_type.as_str() {
            "IAMUser" if !caller.user_name.is_empty() => {
                self.inline_documents(&caller.account_id, "user", &caller.user_name)
                    .await
            }
            "AssumedRole" if !caller.role_arn.is_empty() => {
                let name = caller.role_arn.rsplit('/').next().unwrap_or_default();
                self.inline_documents(&caller.account_id, "role", name)
                    .await
            }
            _ => Ok(Arc::new(Vec::new())),
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
        Ok(self.user_row(&r.account_id, &r.user_name).await?.into())
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
        Ok(self
            .role_required(&r.account_id, &r.role_name)
            .await?
            .into())
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
            identity_policies: identity.as_ref().clone(),
            endpoint_policy: String::new(),
            condition_keys: Vec::new(),
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
