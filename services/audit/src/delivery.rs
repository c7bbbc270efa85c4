//! Log file and digest file delivery, as CloudTrail does it into S3, into the log dir.
//!
//! - Log files: a background task (every `delivery_interval_secs`, on `Flush`, and once more
//!   on shutdown) reads the committed events after the delivery cursor in `seq` order and
//!   writes one gzip `{"Records":[...]}` file per account and region. The files and the new
//!   cursor are committed in one transaction BEFORE the files are written; a recorded file
//!   without a hash is (re)generated from its event range at the next run, so a crash or a
//!   restart neither loses nor duplicates a record.
//! - Digests: per account and region, hourly (`digest_interval_secs`; 0 = after each
//!   delivery with log files, and on `Flush{digest: true}` / shutdown), a digest file lists
//!   the log files delivered since the previous digest with their SHA-256, names the previous
//!   digest (its key, hash and signature: the chain) and is signed SHA256withRSA over
//!   CloudTrail's string to sign (see `logfiles::string_to_sign`). The digest content and
//!   signature are committed before the file is written, and rewritten if the write was lost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tokio::sync::{Mutex, oneshot};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::error::Error;
use crate::logfiles::{self, Digest, DigestLogFile, DigestMeta};
use crate::signing::DigestSigner;
use crate::store::SqliteStore;

/// Most events read per delivery step (a run loops until caught up).
const MAX_EVENTS_PER_STEP: i64 = 10_000;

/// What one flush wrote (keys under the log dir).
#[derive(Debug, Default, Clone)]
pub struct Flushed {
    pub log_files: Vec<String>,
    pub digest_files: Vec<String>,
}

/// A signing public key as ListPublicKeys returns it.
#[derive(Debug, Clone)]
pub struct PublicKeyInfo {
    pub der: Vec<u8>,
    pub fingerprint: String,
    pub valid_from_ms: i64,
    pub valid_to_ms: Option<i64>,
}

pub struct Delivery {
    store: SqliteStore,
    log_dir: PathBuf,
    bucket: String,
    trail: String,
    default_region: String,
    digest_interval_ms: i64,
    signer: Arc<DigestSigner>,
    /// One delivery at a time (background, Flush, shutdown).
    lock: Mutex<()>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn io_err(what: &str, e: impl std::fmt::Display) -> Error {
    let msg = format!("{what}: {e}");
    tracing::error!(error = %msg, "audit delivery failed");
    Error::Delivery(msg)
}

#[derive(serde::Deserialize)]
struct RegionOnly {
    #[serde(rename = "awsRegion")]
    aws_region: Option<String>,
}

fn is_region_name(r: &str) -> bool {
    !r.is_empty()
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The region whose log files carry the event.
fn event_region(event: &str, default: &str) -> String {
    match leading_region(event) {
        Some(region) => region.to_owned(),
        None => parsed_region(event, default),
    }
}

/// The region by parsing the whole event.
fn parsed_region(event: &str, default: &str) -> String {
    serde_json::from_str::<RegionOnly>(event)
        .ok()
        .and_then(|r| r.aws_region)
        .filter(|r| is_region_name(r))
        .unwrap_or_else(|| default.to_owned())
}

/// The region without parsing the event (a parse was a third of delivery's CPU), when the
/// answer is certainly the parse's: the gateway writes `awsRegion` first, and a stored event
/// is a valid JSON object (appends are checked), so if it starts with that member holding a
/// region name, and nothing after it could name the member again (its name unescaped, or a
/// backslash, needed to escape it), the parse would find that value and only that one.
fn leading_region(event: &str) -> Option<&str> {
    let (region, rest) = event.strip_prefix(r#"{"awsRegion":""#)?.split_once('"')?;
    (is_region_name(region) && !rest.contains('\\') && !rest.contains(r#""awsRegion""#))
        .then_some(region)
}

/// Writes `{"Records":[e1,e2,...]}` from the stored event texts (already JSON objects).
fn write_log_content(events: &[String], out: &mut impl std::io::Write) -> std::io::Result<()> {
    out.write_all(b"{\"Records\":[")?;
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(e.as_bytes())?;
    }
    out.write_all(b"]}")
}

async fn write_file(path: PathBuf, data: Vec<u8>) -> Result<(), Error> {
    tokio::task::spawn_blocking(move || logfiles::write_durably(&path, &data))
        .await
        .map_err(|e| io_err("writing a file", e))?
        .map_err(|e| io_err("writing a file", e))
}

struct Group {
    events: Vec<String>,
    oldest: i64,
    newest: i64,
}

/// Events by (account, region), and each account's last `seq`.
type Grouped = (BTreeMap<(String, String), Group>, BTreeMap<String, i64>);

/// [`Grouped`] from rows of (seq, account, event time, event) in `seq` order.
fn group_events(rows: Vec<(i64, String, i64, String)>, default_region: &str) -> Grouped {
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    let mut account_last: BTreeMap<String, i64> = BTreeMap::new();
    for (seq, account, time_ms, event) in rows {
        let region = event_region(&event, default_region);
        account_last.insert(account.clone(), seq);
        let g = groups.entry((account, region)).or_insert(Group {
            events: Vec::new(),
            oldest: time_ms,
            newest: time_ms,
        });
        g.oldest = g.oldest.min(time_ms);
        g.newest = g.newest.max(time_ms);
        g.events.push(event);
    }
    (groups, account_last)
}

impl Delivery {
    /// Open delivery for `config` (None without a log dir): load or create the signing key,
    /// publish its public key, and finish what a previous run left half done.
    pub async fn open(store: SqliteStore, config: &Config) -> anyhow::Result<Option<Arc<Self>>> {
        let (Some(log_dir), Some(key_path)) = (config.log_dir.clone(), config.digest_key_path())
        else {
            return Ok(None);
        };
        std::fs::create_dir_all(&log_dir)?;
        let signer = tokio::task::spawn_blocking(move || DigestSigner::load_or_generate(&key_path))
            .await??;
        let now = now_ms();
        let mut tx = store.writer().begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO digest_public_keys (fingerprint, public_der, valid_from_ms) VALUES (?, ?, ?) \
             ON CONFLICT (fingerprint) DO UPDATE SET valid_to_ms = NULL",
        )
        .bind(signer.fingerprint())
        .bind(signer.public_der())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE digest_public_keys SET valid_to_ms = ? WHERE fingerprint != ? AND valid_to_ms IS NULL",
        )
        .bind(now)
        .bind(signer.fingerprint())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let delivery = Arc::new(Self {
            store,
            log_dir,
            bucket: config.log_bucket.clone(),
            trail: config.trail_name.clone(),
            default_region: config.region.clone(),
            digest_interval_ms: (config.digest_interval_secs.max(0.0) * 1000.0) as i64,
            signer: Arc::new(signer),
            lock: Mutex::new(()),
        });
        {
            let _guard = delivery.lock.lock().await;
            delivery.recover().await?;
        }
        tracing::info!(log_dir = %delivery.log_dir.display(), fingerprint = delivery.signer.fingerprint(), "audit log file delivery on");
        Ok(Some(delivery))
    }

    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Run deliveries every `interval` until `stop` fires; then deliver and digest once more.
    pub fn spawn(
        self: Arc<Self>,
        interval: Duration,
        stop: oneshot::Receiver<()>,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut stop = stop;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {
                        if let Err(e) = self.flush(false).await {
                            tracing::error!(error = %e, "scheduled log delivery failed");
                        }
                    }
                    _ = &mut stop => break,
                }
            }
            if let Err(e) = self.flush(true).await {
                tracing::error!(error = %e, "log delivery at shutdown failed");
            }
        })
    }

    /// Deliver every committed event; with `force_digest`, also digest every account and
    /// region with undigested log files (otherwise only those whose digest is due).
    pub async fn flush(&self, force_digest: bool) -> Result<Flushed, Error> {
        let _guard = self.lock.lock().await;
        self.recover().await?;
        let log_files = self.deliver().await?;
        let digest_files = self.digest(force_digest).await?;
        Ok(Flushed {
            log_files,
            digest_files,
        })
    }

    /// Public keys valid at some time within [start, end].
    pub async fn public_keys(
        &self,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
    ) -> Result<Vec<PublicKeyInfo>, Error> {
        let rows = sqlx::query(
            "SELECT fingerprint, public_der, valid_from_ms, valid_to_ms FROM digest_public_keys \
             WHERE valid_from_ms <= ? AND (valid_to_ms IS NULL OR valid_to_ms >= ?) ORDER BY valid_from_ms",
        )
        .bind(end_ms.unwrap_or(i64::MAX))
        .bind(start_ms.unwrap_or(i64::MIN))
        .fetch_all(self.store.reader())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(PublicKeyInfo {
                    fingerprint: r.try_get(0)?,
                    der: r.try_get(1)?,
                    valid_from_ms: r.try_get(2)?,
                    valid_to_ms: r.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Error::from)
    }

    /// Write recorded log files without a hash and digests not marked written.
    async fn recover(&self) -> Result<(), Error> {
        let pending = sqlx::query(
            "SELECT account_id, region, s3_object, seq_from, seq_to FROM log_files WHERE hash_value IS NULL ORDER BY id",
        )
        .fetch_all(self.store.writer())
        .await?;
        for r in pending {
            let account: String = r.try_get(0)?;
            let region: String = r.try_get(1)?;
            let key: String = r.try_get(2)?;
            let (from, to): (i64, i64) = (r.try_get(3)?, r.try_get(4)?);
            let events: Vec<String> = sqlx::query_scalar(
                "SELECT cloudtrail_event FROM events WHERE account_id = ? AND seq > ? AND seq <= ? ORDER BY seq",
            )
            .bind(&account)
            .bind(from)
            .bind(to)
            .fetch_all(self.store.writer())
            .await?
            .into_iter()
            .filter(|e: &String| event_region(e, &self.default_region) == region)
            .collect();
            tracing::info!(key, "rewriting a log file recorded but not written");
            self.write_log_file(&key, events).await?;
        }
        let digests = sqlx::query(
            "SELECT s3_object, content, signature FROM digests WHERE written = 0 ORDER BY id",
        )
        .fetch_all(self.store.writer())
        .await?;
        for r in digests {
            let key: String = r.try_get(0)?;
            let content: String = r.try_get(1)?;
            let signature: String = r.try_get(2)?;
            tracing::info!(key, "rewriting a digest recorded but not written");
            self.write_digest_file(&key, content.into_bytes(), signature)
                .await?;
        }
        Ok(())
    }

    async fn write_log_file(&self, key: &str, events: Vec<String>) -> Result<String, Error> {
        let path = self.log_dir.join(key);
        // A file of up to MAX_EVENTS_PER_STEP events (~10 MB of JSON) takes milliseconds
        // to build, hash and compress: on the blocking pool, not on a runtime worker,
        // where every call queued behind it would wait.
        let hash = tokio::task::spawn_blocking(move || {
            let mut file = logfiles::HashingGzip::new();
            write_log_content(&events, &mut file).map_err(|e| io_err("gzip", e))?;
            drop(events);
            let (hash, gz) = file.finish().map_err(|e| io_err("gzip", e))?;
            logfiles::write_durably(&path, &gz).map_err(|e| io_err("writing a file", e))?;
            Ok::<_, Error>(hash)
        })
        .await
        .map_err(|e| io_err("writing a log file", e))??;
        sqlx::query("UPDATE log_files SET hash_value = ? WHERE s3_object = ?")
            .bind(&hash)
            .bind(key)
            .execute(self.store.writer())
            .await?;
        Ok(hash)
    }

    async fn write_digest_file(
        &self,
        key: &str,
        content: Vec<u8>,
        signature: String,
    ) -> Result<(), Error> {
        let gz = logfiles::gzip(&content).map_err(|e| io_err("gzip", e))?;
        let meta = serde_json::to_vec(&DigestMeta {
            signature,
            signature_algorithm: logfiles::SIGNATURE_ALGORITHM.into(),
        })
        .map_err(|e| io_err("digest metadata", e))?;
        let path = self.log_dir.join(key);
        let mut meta_path = path.clone().into_os_string();
        meta_path.push(logfiles::META_SUFFIX);
        // Metadata first: a digest file never exists without its signature.
        write_file(PathBuf::from(meta_path), meta).await?;
        write_file(path, gz).await?;
        sqlx::query("UPDATE digests SET written = 1 WHERE s3_object = ?")
            .bind(key)
            .execute(self.store.writer())
            .await?;
        Ok(())
    }

    /// Deliver the events after the cursor; returns the keys of the log files written.
    async fn deliver(&self) -> Result<Vec<String>, Error> {
        let mut written = Vec::new();
        loop {
            let cursor: i64 =
                sqlx::query_scalar("SELECT last_seq FROM delivery_cursor WHERE id = 1")
                    .fetch_optional(self.store.writer())
                    .await?
                    .unwrap_or(0);
            let rows = sqlx::query(
                "SELECT seq, account_id, event_time_ms, cloudtrail_event FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            )
            .bind(cursor)
            .bind(MAX_EVENTS_PER_STEP)
            .fetch_all(self.store.reader())
            .await?;
            let Some(last) = rows.last() else {
                return Ok(written);
            };
            let to: i64 = last.try_get(0)?;
            let full = rows.len() as i64 == MAX_EVENTS_PER_STEP;
            let rows = rows
                .into_iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            // Reading every event's region parses its JSON: milliseconds for a full step,
            // on the blocking pool rather than on a runtime worker.
            let default_region = self.default_region.clone();
            let (groups, account_last) =
                tokio::task::spawn_blocking(move || group_events(rows, &default_region))
                    .await
                    .map_err(|e| io_err("grouping events", e))?;
            let delivered = now_ms();
            let mut keys = Vec::with_capacity(groups.len());
            let mut tx = self.store.writer().begin_with("BEGIN IMMEDIATE").await?;
            for ((account, region), g) in &groups {
                let unique =
                    &logfiles::sha256_hex(format!("{account}/{region}/{cursor}/{to}").as_bytes())
                        [..16];
                let key = logfiles::log_file_key(account, region, delivered, unique);
                sqlx::query(
                    "INSERT INTO log_files (account_id, region, s3_object, seq_from, seq_to, oldest_event_ms, \
                     newest_event_ms, delivered_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(account)
                .bind(region)
                .bind(&key)
                .bind(cursor)
                .bind(to)
                .bind(g.oldest)
                .bind(g.newest)
                .bind(delivered)
                .execute(&mut *tx)
                .await?;
                keys.push(key);
            }
            for (account, seq) in &account_last {
                sqlx::query(
                    "INSERT INTO delivery_cursors (account_id, last_seq) VALUES (?, ?) \
                     ON CONFLICT (account_id) DO UPDATE SET last_seq = excluded.last_seq",
                )
                .bind(account)
                .bind(seq)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "INSERT INTO delivery_cursor (id, last_seq) VALUES (1, ?) \
                 ON CONFLICT (id) DO UPDATE SET last_seq = excluded.last_seq",
            )
            .bind(to)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            for (key, g) in keys.into_iter().zip(groups.into_values()) {
                self.write_log_file(&key, g.events).await?;
                written.push(key);
            }
            if !full {
                return Ok(written);
            }
        }
    }

    /// Write the digests that are due (or, with `force`, of every chain with undigested logs).
    async fn digest(&self, force: bool) -> Result<Vec<String>, Error> {
        let chains = sqlx::query(
            "SELECT account_id, region FROM log_files WHERE digest_object IS NULL AND hash_value IS NOT NULL \
             UNION SELECT account_id, region FROM digests ORDER BY 1, 2",
        )
        .fetch_all(self.store.writer())
        .await?;
        let mut written = Vec::new();
        for c in chains {
            let account: String = c.try_get(0)?;
            let region: String = c.try_get(1)?;
            if let Some(key) = self.digest_chain(&account, &region, force).await? {
                written.push(key);
            }
        }
        Ok(written)
    }

    async fn digest_chain(
        &self,
        account: &str,
        region: &str,
        force: bool,
    ) -> Result<Option<String>, Error> {
        let prev = sqlx::query(
            "SELECT s3_object, end_ms, hash_value, signature FROM digests \
             WHERE account_id = ? AND region = ? ORDER BY end_ms DESC LIMIT 1",
        )
        .bind(account)
        .bind(region)
        .fetch_optional(self.store.writer())
        .await?
        .map(|r| -> Result<(String, i64, String, String), sqlx::Error> {
            Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))
        })
        .transpose()?;
        let logs = sqlx::query(
            "SELECT s3_object, hash_value, oldest_event_ms, newest_event_ms, delivered_ms FROM log_files \
             WHERE account_id = ? AND region = ? AND digest_object IS NULL AND hash_value IS NOT NULL ORDER BY id",
        )
        .bind(account)
        .bind(region)
        .fetch_all(self.store.writer())
        .await?;
        let mut entries = Vec::with_capacity(logs.len());
        let mut first_delivered = i64::MAX;
        let (mut oldest, mut newest) = (i64::MAX, i64::MIN);
        for r in &logs {
            let key: String = r.try_get(0)?;
            let hash: String = r.try_get(1)?;
            let (o, n, d): (i64, i64, i64) = (r.try_get(2)?, r.try_get(3)?, r.try_get(4)?);
            first_delivered = first_delivered.min(d);
            oldest = oldest.min(o);
            newest = newest.max(n);
            entries.push(DigestLogFile {
                s3_bucket: self.bucket.clone(),
                s3_object: key,
                hash_value: hash,
                hash_algorithm: logfiles::HASH_ALGORITHM.into(),
                newest_event_time: logfiles::iso_time(n),
                oldest_event_time: logfiles::iso_time(o),
            });
        }
        let now = now_ms();
        let due = if force || self.digest_interval_ms == 0 {
            !entries.is_empty()
        } else {
            let since = prev.as_ref().map(|p| p.1).unwrap_or(first_delivered);
            since != i64::MAX && now - since >= self.digest_interval_ms
        };
        if !due {
            return Ok(None);
        }
        // Digest keys have second resolution: never two digests of a chain in one second.
        let mut end_ms = now - now.rem_euclid(1000);
        if let Some(p) = &prev {
            end_ms = end_ms.max(p.1 + 1000);
        }
        if end_ms > now {
            tokio::time::sleep(Duration::from_millis((end_ms - now) as u64)).await;
        }
        let start_ms = match &prev {
            Some(p) => p.1,
            None => (first_delivered - first_delivered.rem_euclid(1000)).min(end_ms),
        };
        let key = logfiles::digest_key(account, region, &self.trail, end_ms);
        let digest = Digest {
            aws_account_id: account.to_owned(),
            digest_start_time: logfiles::iso_time(start_ms),
            digest_end_time: logfiles::iso_time(end_ms),
            digest_s3_bucket: self.bucket.clone(),
            digest_s3_object: key.clone(),
            digest_public_key_fingerprint: self.signer.fingerprint().to_owned(),
            digest_signature_algorithm: logfiles::SIGNATURE_ALGORITHM.into(),
            newest_event_time: (!entries.is_empty()).then(|| logfiles::iso_time(newest)),
            oldest_event_time: (!entries.is_empty()).then(|| logfiles::iso_time(oldest)),
            previous_digest_s3_bucket: prev.as_ref().map(|_| self.bucket.clone()),
            previous_digest_s3_object: prev.as_ref().map(|p| p.0.clone()),
            previous_digest_hash_value: prev.as_ref().map(|p| p.2.clone()),
            previous_digest_hash_algorithm: prev
                .as_ref()
                .map(|_| logfiles::HASH_ALGORITHM.to_owned()),
            previous_digest_signature: prev.as_ref().map(|p| p.3.clone()),
            log_files: entries,
        };
        let content = serde_json::to_vec(&digest).map_err(|e| io_err("digest json", e))?;
        let to_sign = logfiles::string_to_sign(
            &digest.digest_end_time,
            &digest.digest_s3_bucket,
            &digest.digest_s3_object,
            &content,
            digest.previous_digest_signature.as_deref(),
        );
        let signature = self
            .signer
            .sign(to_sign.as_bytes())
            .map_err(|e| io_err("signing", e))?;
        let text = String::from_utf8(content.clone()).map_err(|e| io_err("digest json", e))?;
        let mut tx = self.store.writer().begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO digests (account_id, region, s3_object, end_ms, content, hash_value, signature) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(account)
        .bind(region)
        .bind(&key)
        .bind(end_ms)
        .bind(&text)
        .bind(logfiles::sha256_hex(&content))
        .bind(&signature)
        .execute(&mut *tx)
        .await?;
        for l in &digest.log_files {
            sqlx::query("UPDATE log_files SET digest_object = ? WHERE s3_object = ?")
                .bind(&key)
                .bind(&l.s3_object)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.write_digest_file(&key, content, signature).await?;
        Ok(Some(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_of_an_event() {
        assert_eq!(
            event_region(r#"{"awsRegion":"eu-west-1"}"#, "us-east-1"),
            "eu-west-1"
        );
        assert_eq!(event_region(r#"{"a":1}"#, "us-east-1"), "us-east-1");
        assert_eq!(
            event_region(r#"{"awsRegion":"../x"}"#, "us-east-1"),
            "us-east-1"
        );
        // Without a parse only when the parse would say the same.
        for (event, fast) in [
            (r#"{"awsRegion":"eu-west-1","eventName":"Encrypt"}"#, true),
            (r#"{"awsRegion":"eu-west-1"}"#, true),
            (r#"{ "awsRegion":"eu-west-1"}"#, false),
            (r#"{"eventName":"Encrypt","awsRegion":"eu-west-1"}"#, false),
            (
                r#"{"awsRegion":"eu-west-1","awsRegion":"us-west-2"}"#,
                false,
            ),
            (
                r#"{"awsRegion":"eu-west-1","aws\u0052egion":"us-west-2"}"#,
                false,
            ),
            (r#"{"awsRegion":"eu-west-1","userAgent":"a\"b"}"#, false),
            (r#"{"awsRegion":"EU","eventName":"Encrypt"}"#, false),
            (r#"{"awsRegion":"","eventName":"Encrypt"}"#, false),
        ] {
            assert_eq!(leading_region(event).is_some(), fast, "{event}");
            assert_eq!(
                event_region(event, "us-east-1"),
                parsed_region(event, "us-east-1"),
                "{event}"
            );
        }
        assert_eq!(
            event_region(r#"{"awsRegion":"eu-west-1","awsRegion":"us-west-2"}"#, "x"),
            "x"
        );
        let content = |events: &[String]| {
            let mut out = Vec::new();
            write_log_content(events, &mut out).unwrap();
            out
        };
        assert_eq!(
            content(&["{\"a\":1}".into(), "{}".into()]),
            b"{\"Records\":[{\"a\":1},{}]}"
        );
        assert_eq!(content(&[]), b"{\"Records\":[]}");
        // Hashed and compressed in one pass: the same hash and text as from the whole.
        let events = vec!["{\"a\":1}".to_string(), "{\"b\":[2,3]}".to_string()];
        let mut file = logfiles::HashingGzip::new();
        write_log_content(&events, &mut file).unwrap();
        let (hash, gz) = file.finish().unwrap();
        assert_eq!(hash, logfiles::sha256_hex(&content(&events)));
        assert_eq!(logfiles::gunzip(&gz).unwrap(), content(&events));
    }
}
