//! Persistence of accounts and access keys: the `Store` trait and its SQLite implementation.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::accounts::{AccessKey, AccountSummary, KeyStatus, NewAccount, PrincipalType, Secret};
use crate::error::Error;

/// What authz needs from its database.
pub trait Store: Send + Sync + 'static {
    /// The access key with this id, active or not.
    fn access_key(
        &self,
        access_key_id: &str,
    ) -> impl Future<Output = Result<Option<AccessKey>, Error>> + Send;
    /// Create an account and its root key atomically.
    /// `AlreadyExists` when the account id or access key id is taken.
    fn create_account(
        &self,
        account: &NewAccount,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Every account with its (first) root access key id, by account id.
    fn list_accounts(&self) -> impl Future<Output = Result<Vec<AccountSummary>, Error>> + Send;
    /// Create `accounts` in one transaction if, and only if, there are no accounts yet.
    /// Returns whether it created them.
    fn bootstrap(
        &self,
        accounts: &[NewAccount],
    ) -> impl Future<Output = Result<bool, Error>> + Send;
}

#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/authz");

impl SqliteStore {
    /// Open (creating if missing) the database and run the embedded migrations.
    pub async fn connect(database_url: &str) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(database_url)?
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
        Ok(Self { pool })
    }
}

#[derive(sqlx::FromRow)]
struct AccessKeyRow {
    access_key_id: String,
    account_id: String,
    secret: String,
    principal_arn: String,
    principal_id: String,
    principal_type: String,
    user_name: String,
    status: String,
    created_ms: i64,
}

impl TryFrom<AccessKeyRow> for AccessKey {
    type Error = Error;

    fn try_from(r: AccessKeyRow) -> Result<Self, Error> {
        let principal_type = PrincipalType::parse(&r.principal_type)
            .ok_or_else(|| Error::Corrupt(format!("principal_type {:?}", r.principal_type)))?;
        let status = KeyStatus::parse(&r.status)
            .ok_or_else(|| Error::Corrupt(format!("status {:?}", r.status)))?;
        Ok(AccessKey {
            access_key_id: r.access_key_id,
            account_id: r.account_id,
            secret: Secret::new(r.secret),
            principal_arn: r.principal_arn,
            principal_id: r.principal_id,
            principal_type,
            user_name: r.user_name,
            status,
            created_ms: r.created_ms,
            session: None,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    account_id: String,
    root_access_key_id: Option<String>,
}

async fn insert_account(
    tx: &mut sqlx::SqliteConnection,
    account: &NewAccount,
) -> Result<(), Error> {
    let taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM accounts WHERE account_id = ?")
        .bind(&account.account_id)
        .fetch_optional(&mut *tx)
        .await?;
    if taken.is_some() {
        return Err(Error::AlreadyExists(format!(
            "An account with ID {} already exists.",
            account.account_id
        )));
    }
    let key = &account.root_key;
    let taken: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM access_keys WHERE access_key_id = ?")
            .bind(&key.access_key_id)
            .fetch_optional(&mut *tx)
            .await?;
    if taken.is_some() {
        return Err(Error::AlreadyExists(format!(
            "Access key {} already exists.",
            key.access_key_id
        )));
    }
    sqlx::query("INSERT INTO accounts (account_id, created_ms) VALUES (?, ?)")
        .bind(&account.account_id)
        .bind(key.created_ms)
        .execute(&mut *tx)
        .await?;
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
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl Store for SqliteStore {
    async fn access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>, Error> {
        let row: Option<AccessKeyRow> = sqlx::query_as(
            "SELECT access_key_id, account_id, secret, principal_arn, principal_id, principal_type, \
             user_name, status, created_ms FROM access_keys WHERE access_key_id = ?",
        )
        .bind(access_key_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => AccessKey::try_from(r).map(Some),
            None => crate::iam::session_key(&self.pool, access_key_id).await,
        }
    }

    async fn create_account(&self, account: &NewAccount) -> Result<(), Error> {
        // BEGIN IMMEDIATE would be nicer; the checks plus the primary keys keep it correct either way.
        let mut tx = self.pool.begin().await?;
        insert_account(&mut tx, account).await?;
        tx.commit().await.map_err(|e| match e {
            sqlx::Error::Database(ref d) if d.is_unique_violation() => Error::AlreadyExists(
                format!("An account with ID {} already exists.", account.account_id),
            ),
            e => e.into(),
        })?;
        Ok(())
    }

    async fn list_accounts(&self) -> Result<Vec<AccountSummary>, Error> {
        let rows: Vec<AccountRow> = sqlx::query_as(
            "SELECT a.account_id, (SELECT k.access_key_id FROM access_keys k \
               WHERE k.account_id = a.account_id AND k.principal_type = 'Root' \
               ORDER BY k.created_ms, k.access_key_id LIMIT 1) AS root_access_key_id \
             FROM accounts a ORDER BY a.account_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| AccountSummary {
                account_id: r.account_id,
                root_access_key_id: r.root_access_key_id.unwrap_or_default(),
            })
            .collect())
    }

    async fn bootstrap(&self, accounts: &[NewAccount]) -> Result<bool, Error> {
        let mut tx = self.pool.begin().await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
            .fetch_one(&mut *tx)
            .await?;
        if count > 0 {
            return Ok(false);
        }
        for account in accounts {
            insert_account(&mut tx, account).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
