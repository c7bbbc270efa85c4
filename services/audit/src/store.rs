//! Persistence of events: the `Store` trait and its SQLite implementation.
//!
//! Events are appended through a connection of their own, used synchronously by the
//! group-commit writer's thread (no hand-off to another thread per statement); a pool with a
//! single connection does the rest of the writing (delivery bookkeeping, in `BEGIN
//! IMMEDIATE` transactions, so the two writers queue on SQLite's lock); a separate pool
//! reads, so lookups never wait behind a commit (WAL mode).

use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::Error;
use crate::lookup::{Attribute, Lookup, StoredEvent};
use crate::records::{EventCopy, Resource};

/// What audit needs from its database.
pub trait Store: Clone + Send + Sync + 'static {
    /// Store every copy in ONE transaction, committed durably before returning.
    /// A copy whose (account, event id) is already stored is skipped.
    /// Returns how many rows were new.
    fn append_batch(
        &self,
        copies: &[&EventCopy],
    ) -> impl Future<Output = Result<u64, Error>> + Send;
    /// One page of a lookup, newest first: at most `lookup.max_results + 1` events (the
    /// extra one tells the caller that a next page exists).
    fn lookup(
        &self,
        lookup: &Lookup,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, Error>> + Send;
}

#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// The connection events are appended through (the group-commit writer's).
    events: Arc<Mutex<rusqlite::Connection>>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/audit");

impl SqliteStore {
    /// Open (creating if missing) the database and run the embedded migrations.
    pub async fn connect(database_url: &str) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(database_url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await?;
        let path = options.get_filename().to_owned();
        let events = tokio::task::spawn_blocking(move || open_events_connection(&path)).await??;
        Ok(Self {
            writer,
            reader,
            events: Arc::new(Mutex::new(events)),
        })
    }

    /// The single-connection pool that writes (shared with the group-commit writer).
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// The pool that reads committed data.
    pub fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// The appending connection: WAL (already set on the file), every commit durable
/// (synchronous=FULL is per connection), waiting for the delivery writer's lock.
fn open_events_connection(path: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

/// One row per statement: executed in a loop on the writer's own connection, a
/// single-row INSERT costs a bind and a step, and, writing one row, needs no statement
/// journal (a multi-row INSERT inside a transaction copies every page it touches into
/// one, to be able to undo just that statement).
const INSERT_SQL: &str = "INSERT INTO events (account_id, event_id, event_time_ms, event_name, \
     event_source, read_only, username, access_key_id, resources, request_id, cloudtrail_event) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, event_id) DO NOTHING";

/// The lookup statement with one filter clause on parameter ?7.
/// ?1 account, ?2..?3 time range, ?4..?5 cursor (time, seq), ?6 limit.
macro_rules! lookup_sql {
    ($filter:literal) => {
        concat!(
            "SELECT seq, event_id, event_time_ms, event_name, event_source, read_only, username, \
             access_key_id, resources, cloudtrail_event FROM events e \
             WHERE account_id = ?1 AND event_time_ms >= ?2 AND event_time_ms <= ?3 \
             AND (event_time_ms < ?4 OR (event_time_ms = ?4 AND seq < ?5)) ",
            $filter,
            " ORDER BY event_time_ms DESC, seq DESC LIMIT ?6"
        )
    };
}

enum FilterValue<'a> {
    None,
    Text(&'a str),
    Int(i64),
}

#[derive(sqlx::FromRow)]
struct EventRow {
    seq: i64,
    event_id: String,
    event_time_ms: i64,
    event_name: String,
    event_source: String,
    read_only: bool,
    username: String,
    access_key_id: String,
    resources: String,
    cloudtrail_event: String,
}

impl TryFrom<EventRow> for StoredEvent {
    type Error = Error;

    fn try_from(r: EventRow) -> Result<Self, Error> {
        let resources: Vec<Resource> = serde_json::from_str(&r.resources)
            .map_err(|e| Error::Corrupt(format!("resources of event seq {}: {e}", r.seq)))?;
        Ok(StoredEvent {
            seq: r.seq,
            event_id: r.event_id,
            event_time_ms: r.event_time_ms,
            event_name: r.event_name,
            event_source: r.event_source,
            read_only: r.read_only,
            username: r.username,
            access_key_id: r.access_key_id,
            resources,
            cloudtrail_event: r.cloudtrail_event,
        })
    }
}

impl Store for SqliteStore {
    /// Runs synchronously on the caller's thread (the writer's own, see
    /// [`crate::writer`]): one IMMEDIATE transaction, one INSERT per row, one
    /// durable commit; rolled back (dropped) on any error.
    async fn append_batch(&self, copies: &[&EventCopy]) -> Result<u64, Error> {
        let resources = copies
            .iter()
            .map(|c| {
                serde_json::to_string(&c.resources)
                    .map_err(|e| Error::Corrupt(format!("resources of event {}: {e}", c.event_id)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut conn = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut inserted = 0;
        {
            // Prepared once and kept in the connection's cache.
            let mut stmt = tx.prepare_cached(INSERT_SQL)?;
            for (c, resources) in copies.iter().zip(&resources) {
                stmt.raw_bind_parameter(1, c.account_id.as_str())?;
                stmt.raw_bind_parameter(2, c.event_id.as_str())?;
                stmt.raw_bind_parameter(3, c.event_time_ms)?;
                stmt.raw_bind_parameter(4, c.event_name.as_str())?;
                stmt.raw_bind_parameter(5, c.event_source.as_str())?;
                stmt.raw_bind_parameter(6, c.read_only)?;
                stmt.raw_bind_parameter(7, c.username.as_str())?;
                stmt.raw_bind_parameter(8, c.access_key_id.as_str())?;
                stmt.raw_bind_parameter(9, resources.as_str())?;
                stmt.raw_bind_parameter(10, c.request_id.as_str())?;
                stmt.raw_bind_parameter(11, c.cloudtrail_event.as_str())?;
                inserted += stmt.raw_execute()? as u64;
            }
        }
        tx.commit()?;
        Ok(inserted)
    }

    async fn lookup(&self, lookup: &Lookup) -> Result<Vec<StoredEvent>, Error> {
        use Attribute as A;
        let (sql, value): (&'static str, FilterValue<'_>) = match &lookup.filter {
            None => (lookup_sql!(""), FilterValue::None),
            Some(A::EventId(v)) => (lookup_sql!("AND event_id = ?7"), FilterValue::Text(v)),
            Some(A::EventName(v)) => (lookup_sql!("AND event_name = ?7"), FilterValue::Text(v)),
            Some(A::ReadOnly(v)) => (
                lookup_sql!("AND read_only = ?7"),
                FilterValue::Int(i64::from(*v)),
            ),
            Some(A::Username(v)) => (lookup_sql!("AND username = ?7"), FilterValue::Text(v)),
            Some(A::ResourceType(v)) => (
                lookup_sql!(
                    "AND EXISTS (SELECT 1 FROM json_each(e.resources) r WHERE r.value ->> '$.type' = ?7)"
                ),
                FilterValue::Text(v),
            ),
            Some(A::ResourceName(v)) => (
                lookup_sql!(
                    "AND EXISTS (SELECT 1 FROM json_each(e.resources) r WHERE r.value ->> '$.name' = ?7)"
                ),
                FilterValue::Text(v),
            ),
            Some(A::EventSource(v)) => (lookup_sql!("AND event_source = ?7"), FilterValue::Text(v)),
            Some(A::AccessKeyId(v)) => {
                (lookup_sql!("AND access_key_id = ?7"), FilterValue::Text(v))
            }
        };
        let (cursor_time, cursor_seq) = lookup
            .after
            .map(|c| (c.event_time_ms, c.seq))
            .unwrap_or((i64::MAX, i64::MAX));
        let query = sqlx::query_as::<_, EventRow>(sql)
            .bind(&lookup.account_id)
            .bind(lookup.start_ms.unwrap_or(i64::MIN))
            .bind(lookup.end_ms.unwrap_or(i64::MAX))
            .bind(cursor_time)
            .bind(cursor_seq)
            .bind(i64::from(lookup.max_results) + 1);
        let query = match value {
            FilterValue::None => query,
            FilterValue::Text(v) => query.bind(v),
            FilterValue::Int(v) => query.bind(v),
        };
        let rows = query.fetch_all(&self.reader).await?;
        rows.into_iter().map(StoredEvent::try_from).collect()
    }
}
