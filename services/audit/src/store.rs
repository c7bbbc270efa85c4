//! Persistence of events: the `Store` trait and its SQLite implementation.
//!
//! Events are appended through a connection of their own, used synchronously by the
//! group-commit writer's thread (no hand-off to another thread per statement); a pool with a
//! single connection does the rest of the writing (delivery bookkeeping, in `BEGIN
//! IMMEDIATE` transactions, so the two writers queue on SQLite's lock); a separate pool
//! reads, so lookups never wait behind a commit (WAL mode). Checkpoints of the WAL are
//! kept off the commits (see [`Events`]).

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
    /// Housekeeping the writer runs after it answered a batch's callers (on its thread),
    /// e.g. a checkpoint that should not delay those answers.
    fn after_batch(&self) {}
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
    events: Arc<Mutex<Events>>,
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
        let events = tokio::task::spawn_blocking(move || Events::open(&path)).await??;
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

/// WAL frames at which a background checkpoint starts copying the WAL.
const BACKGROUND_CHECKPOINT_FRAMES: i32 = 800;
/// WAL frames at which the writer checkpoints what is left, after answering (SQLite's
/// own automatic checkpoint threshold).
const CHECKPOINT_FRAMES: i32 = 1000;

thread_local! {
    /// Frames in the WAL after the last commit on this thread (set by the WAL hook,
    /// which SQLite calls on the committing thread).
    static WAL_FRAMES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

fn record_wal_frames(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.set(frames);
    Ok(())
}

/// The appending connection: WAL (already set on the file), every commit durable
/// (synchronous=FULL is per connection), waiting for the delivery writer's lock; and the
/// checkpoints of what it appends.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL frames:
/// under load, every ~80th group commit copied the WAL into the database file and synced
/// both (a few ms) before its callers got their answers, and every call queued behind it
/// waited too. Here a WAL hook replaces it: at [`BACKGROUND_CHECKPOINT_FRAMES`] a thread
/// with a connection of its own starts a PASSIVE checkpoint, which copies the frames
/// committed so far without blocking the appends; at [`CHECKPOINT_FRAMES`] the writer, once
/// it has answered the batch, checkpoints what is left (the frames appended meanwhile),
/// after which the next commit starts the WAL over from the beginning of its file (which
/// only a complete checkpoint allows). The WAL stays as bounded as before; the stall is
/// the remainder's copy, outside any call's answer.
struct Events {
    conn: rusqlite::Connection,
    /// Asks the checkpoint thread for a checkpoint; `None` for a database not in WAL mode.
    background: Option<std::sync::mpsc::SyncSender<()>>,
    /// A background checkpoint was asked for since the WAL last started over.
    asked: bool,
    /// The WAL reached [`CHECKPOINT_FRAMES`]: the writer checkpoints after answering.
    due: bool,
    /// WAL frames after the last commit.
    frames: i32,
}

impl Events {
    fn open(path: &std::path::Path) -> anyhow::Result<Self> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(16);
        let background = if mode.eq_ignore_ascii_case("wal") {
            // Replaces the automatic checkpoint on this connection.
            conn.wal_hook(Some(record_wal_frames));
            let checkpointer = rusqlite::Connection::open(path)?;
            checkpointer.busy_timeout(Duration::from_secs(5))?;
            checkpointer.pragma_update(None, "synchronous", "FULL")?;
            let (ask, asked) = std::sync::mpsc::sync_channel::<()>(1);
            std::thread::Builder::new()
                .name("audit-checkpoint".into())
                .spawn(move || {
                    // Ends when the store (the sender) is gone.
                    while asked.recv().is_ok() {
                        if let Err(e) = checkpoint(&checkpointer) {
                            tracing::warn!(error = %e, "background WAL checkpoint failed");
                        }
                    }
                })?;
            Some(ask)
        } else {
            None
        };
        Ok(Self {
            conn,
            background,
            asked: false,
            due: false,
            frames: 0,
        })
    }

    /// After a commit: the WAL's size decides which checkpoint is due.
    fn committed(&mut self) {
        if self.background.is_none() {
            return;
        }
        let frames = WAL_FRAMES.get();
        if frames < self.frames {
            // The WAL started over.
            self.asked = false;
        }
        self.frames = frames;
        if frames >= BACKGROUND_CHECKPOINT_FRAMES
            && !self.asked
            && let Some(ask) = &self.background
        {
            // Full: a checkpoint is already asked for.
            let _ = ask.try_send(());
            self.asked = true;
        }
        self.due = frames >= CHECKPOINT_FRAMES;
    }
}

/// One PASSIVE checkpoint: copies the committed frames no reader still needs from the WAL,
/// without waiting for anyone. A failure leaves the frames in the WAL (nothing is lost);
/// the next checkpoint copies them.
fn checkpoint(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
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

/// The batch's rows, inside the caller's transaction.
fn insert_rows(conn: &rusqlite::Connection, copies: &[&EventCopy]) -> rusqlite::Result<u64> {
    // Prepared once and kept in the connection's cache.
    let mut stmt = conn.prepare_cached(INSERT_SQL)?;
    let mut inserted = 0;
    for c in copies {
        stmt.raw_bind_parameter(1, c.account_id.as_str())?;
        stmt.raw_bind_parameter(2, c.event_id.as_str())?;
        stmt.raw_bind_parameter(3, c.event_time_ms)?;
        stmt.raw_bind_parameter(4, c.event_name.as_str())?;
        stmt.raw_bind_parameter(5, c.event_source.as_str())?;
        stmt.raw_bind_parameter(6, c.read_only)?;
        stmt.raw_bind_parameter(7, c.username.as_str())?;
        stmt.raw_bind_parameter(8, c.access_key_id.as_str())?;
        stmt.raw_bind_parameter(9, c.resources_json.as_str())?;
        stmt.raw_bind_parameter(10, c.request_id.as_str())?;
        stmt.raw_bind_parameter(11, c.cloudtrail_event.as_str())?;
        inserted += stmt.raw_execute()? as u64;
    }
    Ok(inserted)
}

/// The lookup statement for a filter, and the filter's value (parameter ?7).
fn lookup_statement(filter: Option<&Attribute>) -> (&'static str, FilterValue<'_>) {
    use Attribute as A;
    match filter {
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
        Some(A::AccessKeyId(v)) => (lookup_sql!("AND access_key_id = ?7"), FilterValue::Text(v)),
    }
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
    /// durable commit; rolled back on any error. `BEGIN` and `COMMIT` are prepared
    /// once too (rusqlite's `Transaction` prepares both on every batch).
    async fn append_batch(&self, copies: &[&EventCopy]) -> Result<u64, Error> {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let conn = &events.conn;
        conn.prepare_cached("BEGIN IMMEDIATE")?.raw_execute()?;
        let written = insert_rows(conn, copies).and_then(|inserted| {
            conn.prepare_cached("COMMIT")?.raw_execute()?;
            Ok(inserted)
        });
        if written.is_err() && !conn.is_autocommit() {
            // Nothing of the batch stays (SQLite may have rolled back already).
            if let Err(e) = conn.execute_batch("ROLLBACK") {
                tracing::warn!(error = %e, "audit batch rollback failed");
            }
        }
        let inserted = written?;
        events.committed();
        Ok(inserted)
    }

    /// The checkpoint of what the background one left, when the WAL is large enough.
    fn after_batch(&self) {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        if !events.due {
            return;
        }
        events.due = false;
        if let Err(e) = checkpoint(&events.conn) {
            // The next commit past the threshold tries again.
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }

    async fn lookup(&self, lookup: &Lookup) -> Result<Vec<StoredEvent>, Error> {
        let (sql, value) = lookup_statement(lookup.filter.as_ref());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(i: usize) -> EventCopy {
        EventCopy {
            // About the size of a real Encrypt record.
            cloudtrail_event: format!(
                "{{\"eventID\":\"event-{i:08}\",\"pad\":\"{}\"}}",
                "x".repeat(900)
            ),
            ..EventCopy::numbered(i)
        }
    }

    async fn append(store: &SqliteStore, from: usize, n: usize) {
        let batch: Vec<EventCopy> = (from..from + n).map(copy).collect();
        let refs: Vec<&EventCopy> = batch.iter().collect();
        assert_eq!(store.append_batch(&refs).await.unwrap(), n as u64);
    }

    /// A store on a new database in a directory of its own (kept while the test runs).
    async fn fresh_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let store = SqliteStore::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        (dir, store)
    }

    fn frames(store: &SqliteStore) -> i32 {
        store.events.lock().unwrap().frames
    }

    #[tokio::test]
    async fn checkpoints_run_beside_the_appends_and_the_wal_starts_over() {
        let (dir, store) = fresh_store().await;
        let db = dir.path().join("audit.db");
        let db_bytes = || std::fs::metadata(&db).unwrap().len();
        let before = db_bytes();
        // Past the background threshold, short of the writer's: only the checkpoint
        // thread copies pages into the database file.
        let mut next = 0;
        while frames(&store) < BACKGROUND_CHECKPOINT_FRAMES + 20 {
            append(&store, next, 8).await;
            next += 8;
        }
        assert!(frames(&store) < CHECKPOINT_FRAMES);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while db_bytes() <= before {
            assert!(
                std::time::Instant::now() < deadline,
                "no background checkpoint"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // Through the writer's threshold, with its checkpoint after each batch as the
        // writer runs it: the WAL starts over instead of growing (SQLite's automatic
        // checkpoint is off on this connection).
        let mut restarted = false;
        for _ in 0..400 {
            let before = frames(&store);
            append(&store, next, 8).await;
            next += 8;
            store.after_batch();
            restarted |= frames(&store) < before;
        }
        assert!(restarted, "the WAL never started over");
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let wal_bytes = std::fs::metadata(&wal).unwrap().len();
        assert!(
            wal_bytes <= (CHECKPOINT_FRAMES as u64 + 64) * 4120,
            "WAL of {wal_bytes} bytes"
        );
        // Every row is there, read through another connection.
        let other = rusqlite::Connection::open(&db).unwrap();
        let n: i64 = other
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n as usize, next);
        store.close().await;
    }

    /// LookupEvents' index is ascending (appends go to its right edge), and every
    /// lookup statement but the event id's (unique index) searches it for the account
    /// and time range and reads it backwards for the newest-first order, without a sort.
    #[tokio::test]
    async fn lookups_search_the_ascending_index_without_sorting() {
        let (_dir, store) = fresh_store().await;
        append(&store, 0, 50).await;
        let columns: Vec<(String, bool)> = sqlx::query_as(
            "SELECT name, desc FROM pragma_index_xinfo('events_by_account_time') WHERE key = 1",
        )
        .fetch_all(store.reader())
        .await
        .unwrap();
        let columns: Vec<(&str, bool)> = columns.iter().map(|(n, d)| (n.as_str(), *d)).collect();
        assert_eq!(
            columns,
            [
                ("account_id", false),
                ("event_time_ms", false),
                ("seq", false)
            ]
        );
        let text = |v: &str| Attribute::EventId(v.to_owned());
        let filters = [
            None,
            Some(text("e")),
            Some(Attribute::EventName("Encrypt".into())),
            Some(Attribute::ReadOnly(true)),
            Some(Attribute::Username("root".into())),
            Some(Attribute::ResourceType("AWS::KMS::Key".into())),
            Some(Attribute::ResourceName("arn".into())),
            Some(Attribute::EventSource("kms.amazonaws.com".into())),
            Some(Attribute::AccessKeyId("AKIA".into())),
        ];
        for filter in &filters {
            let (sql, value) = lookup_statement(filter.as_ref());
            let query = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(format!(
                "EXPLAIN QUERY PLAN {sql}"
            )))
            .bind("111122223333")
            .bind(0i64)
            .bind(i64::MAX)
            .bind(i64::MAX)
            .bind(i64::MAX)
            .bind(50i64);
            let query = match value {
                FilterValue::None => query,
                FilterValue::Text(v) => query.bind(v),
                FilterValue::Int(v) => query.bind(v),
            };
            let plan: Vec<String> = query
                .fetch_all(store.reader())
                .await
                .unwrap()
                .into_iter()
                .map(|(_, _, _, detail)| detail)
                .collect();
            // An event id names at most one row: its unique index finds it.
            let search = match filter {
                Some(Attribute::EventId(_)) => {
                    "SEARCH e USING INDEX sqlite_autoindex_events_1 (account_id=? AND event_id=?)"
                }
                _ => {
                    "SEARCH e USING INDEX events_by_account_time (account_id=? AND event_time_ms>? AND event_time_ms<?)"
                }
            };
            assert!(plan.iter().any(|d| d == search), "{filter:?}: {plan:?}");
            assert!(
                !plan.iter().any(|d| d.contains("TEMP B-TREE")),
                "{filter:?}: {plan:?}"
            );
        }
    }

    /// A batch that fails part-way leaves none of its rows, and the connection is out
    /// of the transaction for the next batch.
    #[tokio::test]
    async fn a_failed_batch_leaves_nothing_and_the_next_one_commits() {
        let (_dir, store) = fresh_store().await;
        store
            .events
            .lock()
            .unwrap()
            .conn
            .execute_batch(
                "CREATE TEMP TRIGGER refuse BEFORE INSERT ON main.events \
                 WHEN NEW.event_id = 'event-00000001' BEGIN SELECT RAISE(ABORT, 'injected'); END",
            )
            .unwrap();
        let batch: Vec<EventCopy> = (0..3).map(copy).collect();
        let refs: Vec<&EventCopy> = batch.iter().collect();
        let err = store.append_batch(&refs).await.unwrap_err();
        assert!(format!("{err:?}").contains("injected"), "{err:?}");
        let count = || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events")
                .fetch_one(store.reader())
                .await
                .unwrap()
        };
        assert_eq!(count().await, 0);
        assert!(store.events.lock().unwrap().conn.is_autocommit());
        append(&store, 10, 4).await;
        assert_eq!(count().await, 4);
    }
}
