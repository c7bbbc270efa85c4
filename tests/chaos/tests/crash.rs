//! Crash tests: SIGKILL of one service process at random moments under load,
//! restart, and invariants checked through the AWS SDK for Rust and the
//! services' databases. Iteration counts come from `KMS_CHAOS_*` variables
//! (docs/RELIABILITY.md); the defaults keep the whole file within CI's budget.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kms::Client;
use aws_sdk_kms::operation::RequestId;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::KeyState;
use kms_chaos::{Cluster, Failure, Rng, Svc, iterations, serial, summary};

/// How long a call may keep failing after the killed service is back.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);

/// A call that started after the service was reaped and ended before its
/// restart began ran entirely while the service was down.
#[derive(Clone, Copy)]
struct DownWindow {
    from: Instant,
    to: Instant,
}

fn inside(windows: &[DownWindow], start: Instant, end: Instant) -> bool {
    windows.iter().any(|w| start >= w.from && end <= w.to)
}

/// Kill `svc` `cycles` times at random moments, restart it, and wait until a
/// call succeeds end to end. Returns the down windows and the recovery times
/// (kill to first successful call).
async fn kill_cycles(
    cluster: &mut Cluster,
    svc: Svc,
    cycles: usize,
    rng: &mut Rng,
    pause_ms: (u64, u64),
    down_ms: (u64, u64),
) -> (Vec<DownWindow>, Vec<Duration>, Vec<Duration>) {
    let mut windows = Vec::new();
    let mut recover = Vec::new();
    let mut restart = Vec::new();
    for _ in 0..cycles {
        tokio::time::sleep(Duration::from_millis(rng.range(pause_ms.0, pause_ms.1))).await;
        let killed_at = Instant::now();
        cluster.kill(svc);
        let from = Instant::now();
        tokio::time::sleep(Duration::from_millis(rng.range(down_ms.0, down_ms.1))).await;
        let to = Instant::now();
        windows.push(DownWindow { from, to });
        restart.push(
            cluster
                .restart(svc)
                .await
                .unwrap_or_else(|e| panic!("restarting {}: {e:#}", svc.name())),
        );
        cluster
            .wait_end_to_end(RECOVERY_DEADLINE)
            .await
            .unwrap_or_else(|e| panic!("no recovery after killing {}: {e:#}", svc.name()));
        recover.push(killed_at.elapsed());
    }
    (windows, recover, restart)
}

fn plaintext(rng: &mut Rng) -> Vec<u8> {
    let n = rng.range(1, 128) as usize;
    rng.bytes(n)
}

#[derive(Default)]
struct Acked {
    /// Descriptions of every CreateKey sent (acknowledged or not).
    began: HashSet<String>,
    /// Acknowledged CreateKey: key id -> description.
    keys: HashMap<String, String>,
    key_ids: Vec<String>,
    /// Acknowledged Encrypt: (key id, plaintext, ciphertext).
    ciphertexts: Vec<(String, Vec<u8>, Blob)>,
    /// Request ids of every acknowledged call (each must have one audit record).
    request_ids: Vec<String>,
    violations: Vec<String>,
}

/// Issue 5/9, test 1: keystore SIGKILL under concurrent CreateKey and Encrypt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystore_kill9_under_create_key_and_encrypt() {
    let _serial = serial().await;
    let cycles = iterations("KEYSTORE_CYCLES", 20);
    let workers = iterations("WORKERS", 4);
    let mut rng = Rng::from_env("keystore_kill9");
    let mut cluster = Cluster::start().await.expect("cluster");
    let state = Arc::new(Mutex::new(Acked::default()));
    let stop = Arc::new(AtomicBool::new(false));

    let mut tasks = Vec::new();
    for w in 0..workers {
        let kms = cluster.client();
        let state = state.clone();
        let stop = stop.clone();
        let mut rng = rng.fork();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let have_keys = !state.lock().unwrap().key_ids.is_empty();
                let failure = if !have_keys || rng.range(0, 100) < 35 {
                    let description = format!("chaos-{w}-{n}");
                    state.lock().unwrap().began.insert(description.clone());
                    match kms.create_key().description(&description).send().await {
                        Ok(out) => {
                            let id = out.key_metadata().unwrap().key_id().to_string();
                            let mut s = state.lock().unwrap();
                            s.keys.insert(id.clone(), description);
                            s.key_ids.push(id);
                            s.request_ids.extend(out.request_id().map(str::to_owned));
                            None
                        }
                        Err(e) => Some(Failure::of(&e)),
                    }
                } else {
                    let key = {
                        let s = state.lock().unwrap();
                        s.key_ids[rng.range(0, s.key_ids.len() as u64) as usize].clone()
                    };
                    let pt = plaintext(&mut rng);
                    match kms
                        .encrypt()
                        .key_id(&key)
                        .plaintext(Blob::new(pt.clone()))
                        .send()
                        .await
                    {
                        Ok(out) => {
                            let blob = out.ciphertext_blob().unwrap().clone();
                            let mut s = state.lock().unwrap();
                            s.ciphertexts.push((key, pt, blob));
                            s.request_ids.extend(out.request_id().map(str::to_owned));
                            None
                        }
                        Err(e) => Some(Failure::of(&e)),
                    }
                };
                if let Some(f) = failure {
                    if !f.is_dependency_failure() {
                        state.lock().unwrap().violations.push(format!(
                            "unexpected failure while the keystore restarts: {f:?}"
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }

    let (_, recover, restart) = kill_cycles(
        &mut cluster,
        Svc::Keystore,
        cycles,
        &mut rng,
        (100, 700),
        (0, 150),
    )
    .await;
    // Let the load run on the recovered keystore for a moment, then stop it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    // One more crash with nothing in flight, so the checks below read what the
    // database kept, not what a long-lived process held in memory.
    cluster.kill(Svc::Keystore);
    cluster.restart(Svc::Keystore).await.unwrap();
    cluster.wait_end_to_end(RECOVERY_DEADLINE).await.unwrap();

    let s = std::mem::take(&mut *state.lock().unwrap());
    assert!(s.violations.is_empty(), "{:#?}", s.violations);
    assert!(
        !s.keys.is_empty() && !s.ciphertexts.is_empty(),
        "no load got through"
    );
    let kms = cluster.client();

    // Every acknowledged key exists, enabled, with its description.
    for (id, description) in &s.keys {
        let meta = kms
            .describe_key()
            .key_id(id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("acknowledged key {id} lost: {e:?}"));
        let meta = meta.key_metadata().unwrap();
        assert_eq!(meta.key_state(), Some(&KeyState::Enabled), "{id}");
        assert_eq!(meta.description(), Some(description.as_str()), "{id}");
    }
    // Every visible key is one whose creation began, complete and usable.
    let mut listed = Vec::new();
    let mut marker = None;
    loop {
        let page = kms
            .list_keys()
            .set_marker(marker.clone())
            .limit(1000)
            .send()
            .await
            .unwrap();
        listed.extend(page.keys().iter().map(|k| k.key_id().unwrap().to_string()));
        marker = page.next_marker().map(str::to_string);
        if !page.truncated() {
            break;
        }
    }
    let listed_set: HashSet<&String> = listed.iter().collect();
    for id in s.keys.keys() {
        assert!(listed_set.contains(id), "acknowledged key {id} not listed");
    }
    let mut unacked_visible = 0;
    for id in &listed {
        let meta = kms.describe_key().key_id(id).send().await.unwrap();
        let meta = meta.key_metadata().unwrap();
        let description = meta.description().unwrap_or_default();
        assert!(
            s.began.contains(description),
            "key {id} ({description:?}) was never requested"
        );
        assert_eq!(meta.key_state(), Some(&KeyState::Enabled), "{id}");
        if !s.keys.contains_key(id) {
            unacked_visible += 1;
            // Created but not acknowledged: it must be whole (material included).
            let enc = kms
                .encrypt()
                .key_id(id)
                .plaintext(Blob::new(b"probe".to_vec()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("visible key {id} unusable: {e:?}"));
            let dec = kms
                .decrypt()
                .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
                .send()
                .await
                .unwrap();
            assert_eq!(dec.plaintext().unwrap().as_ref(), b"probe");
        }
    }
    // Every acknowledged ciphertext decrypts to its plaintext under its key.
    let arns: HashMap<String, String> = HashMap::from_iter(s.keys.keys().map(|id| {
        (
            id.clone(),
            format!("arn:aws:kms:us-east-1:111122223333:key/{id}"),
        )
    }));
    for chunk in s.ciphertexts.chunks(16) {
        let checks = chunk.iter().cloned().map(|(key, pt, blob)| {
            let kms = kms.clone();
            async move {
                let dec = kms
                    .decrypt()
                    .ciphertext_blob(blob.clone())
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("acknowledged ciphertext of {key} lost: {e:?}"));
                (key, pt, dec)
            }
        });
        for (key, pt, dec) in futures_join_all(checks).await {
            assert_eq!(dec.plaintext().unwrap().as_ref(), pt.as_slice());
            assert_eq!(dec.key_id(), arns.get(&key).map(String::as_str));
        }
    }

    // The database: intact, WAL, and every connection the store opened runs
    // synchronous=FULL (the keystore logs what its pooled connection reports).
    cluster.kill_all();
    let db = cluster.open_db(Svc::Keystore).await.unwrap();
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    db.close().await;
    let log = std::fs::read_to_string(cluster.log_path(Svc::Keystore)).unwrap();
    let opened: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("keystore database opened"))
        .collect();
    assert!(
        opened.len() > cycles,
        "one 'database opened' line per start expected, got {}",
        opened.len()
    );
    for l in &opened {
        assert!(
            l.contains("journal_mode=wal") && l.contains("synchronous=2"),
            "{l}"
        );
    }
    // Issue 5: every acknowledged call has exactly one audit record.
    assert_eq!(
        s.request_ids.len(),
        s.keys.len() + s.ciphertexts.len(),
        "every acknowledged call has a request id"
    );
    assert_one_record_each(&cluster, &s.request_ids).await;
    eprintln!(
        "[keystore_kill9] {cycles} kills; {} keys acknowledged ({unacked_visible} more created unacknowledged), {} ciphertexts verified; restart {}; kill->first successful call {}",
        s.keys.len(),
        s.ciphertexts.len(),
        summary(&restart),
        summary(&recover)
    );
    cluster.keep_if_asked();
}

/// Run futures concurrently (no extra dependency for `join_all`).
async fn futures_join_all<F>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Enabled,
    Disabled,
    PendingDeletion,
}

impl Life {
    fn of(s: &KeyState) -> Option<Life> {
        match s {
            KeyState::Enabled => Some(Life::Enabled),
            KeyState::Disabled => Some(Life::Disabled),
            KeyState::PendingDeletion => Some(Life::PendingDeletion),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Change {
    Disable,
    Enable,
    Schedule,
    Cancel,
}

impl Change {
    fn target(self) -> Life {
        match self {
            Change::Disable | Change::Cancel => Life::Disabled,
            Change::Enable => Life::Enabled,
            Change::Schedule => Life::PendingDeletion,
        }
    }
}

struct Tracked {
    id: String,
    state: Life,
    /// The DeletionDate (epoch seconds) of the current PendingDeletion.
    deletion: Option<i64>,
}

/// DescribeKey until it answers (the keystore may be restarting).
async fn describe_until_ok(kms: &Client, id: &str) -> (Life, Option<i64>) {
    let t = Instant::now();
    loop {
        match kms.describe_key().key_id(id).send().await {
            Ok(out) => {
                let m = out.key_metadata().unwrap();
                let life = Life::of(m.key_state().unwrap())
                    .unwrap_or_else(|| panic!("{id}: illegal state {:?}", m.key_state()));
                return (life, m.deletion_date().map(|d| d.secs()));
            }
            Err(e) => {
                let f = Failure::of(&e);
                assert!(f.is_dependency_failure(), "DescribeKey {id}: {f:?}");
                assert!(t.elapsed() < RECOVERY_DEADLINE, "DescribeKey {id}: {f:?}");
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }
}

/// Encrypt under a key the client believes Disabled or PendingDeletion must
/// never succeed.
async fn assert_no_encrypt(kms: &Client, k: &Tracked) {
    if k.state == Life::Enabled {
        return;
    }
    match kms
        .encrypt()
        .key_id(&k.id)
        .plaintext(Blob::new(b"must not".to_vec()))
        .send()
        .await
    {
        Ok(_) => panic!("Encrypt succeeded under {} in state {:?}", k.id, k.state),
        Err(e) => {
            let f = Failure::of(&e);
            let expected = match k.state {
                Life::Disabled => "DisabledException",
                _ => "KMSInvalidStateException",
            };
            assert!(
                f == Failure::Service(expected.into()) || f.is_dependency_failure(),
                "Encrypt under {} in state {:?}: {f:?}",
                k.id,
                k.state
            );
        }
    }
}

/// Issue 5/9, test 2: SIGKILL of the keystore during DisableKey, EnableKey,
/// ScheduleKeyDeletion and CancelKeyDeletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystore_kill9_during_key_lifecycle_changes() {
    let _serial = serial().await;
    let cycles = iterations("LIFECYCLE_CYCLES", 15);
    let workers = iterations("WORKERS", 4);
    let mut rng = Rng::from_env("lifecycle_kill9");
    let mut cluster = Cluster::start().await.expect("cluster");
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let kms = cluster.client();
        let stop = stop.clone();
        let mut rng = rng.fork();
        // Each worker owns its keys: it is the only writer of their state, so
        // it knows the last acknowledged change of each.
        let mut keys = Vec::new();
        for _ in 0..2 {
            let out = kms.create_key().send().await.unwrap();
            keys.push(Tracked {
                id: out.key_metadata().unwrap().key_id().to_string(),
                state: Life::Enabled,
                deletion: None,
            });
        }
        tasks.push(tokio::spawn(async move {
            let (mut acked, mut unknown) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let i = rng.range(0, keys.len() as u64) as usize;
                let k = &mut keys[i];
                let change = match (k.state, rng.range(0, 2)) {
                    (Life::Enabled, 0) => Change::Disable,
                    (Life::Disabled, 0) => Change::Enable,
                    (Life::PendingDeletion, _) => Change::Cancel,
                    _ => Change::Schedule,
                };
                let result = match change {
                    Change::Disable => kms
                        .disable_key()
                        .key_id(&k.id)
                        .send()
                        .await
                        .map(|_| None)
                        .map_err(|e| Failure::of(&e)),
                    Change::Enable => kms
                        .enable_key()
                        .key_id(&k.id)
                        .send()
                        .await
                        .map(|_| None)
                        .map_err(|e| Failure::of(&e)),
                    Change::Cancel => kms
                        .cancel_key_deletion()
                        .key_id(&k.id)
                        .send()
                        .await
                        .map(|_| None)
                        .map_err(|e| Failure::of(&e)),
                    Change::Schedule => kms
                        .schedule_key_deletion()
                        .key_id(&k.id)
                        .pending_window_in_days(7)
                        .send()
                        .await
                        .map(|o| {
                            assert_eq!(o.key_state(), Some(&KeyState::PendingDeletion));
                            o.deletion_date().map(|d| d.secs())
                        })
                        .map_err(|e| Failure::of(&e)),
                };
                match result {
                    Ok(deletion) => {
                        acked += 1;
                        k.state = change.target();
                        k.deletion = match change {
                            Change::Schedule => {
                                Some(deletion.expect("ScheduleKeyDeletion returns DeletionDate"))
                            }
                            _ => None,
                        };
                    }
                    Err(f) => {
                        unknown += 1;
                        assert!(
                            f.is_dependency_failure(),
                            "{change:?} on {} ({:?}): {f:?}",
                            k.id,
                            k.state
                        );
                        // The outcome is unknown: what is persisted must be the
                        // last acknowledged state or this change's.
                        let (now, deletion) = describe_until_ok(&kms, &k.id).await;
                        assert!(
                            now == k.state || now == change.target(),
                            "{}: state {now:?} after {change:?} failed, last acknowledged {:?}",
                            k.id,
                            k.state
                        );
                        if now != k.state {
                            k.state = now;
                            k.deletion = deletion;
                        }
                    }
                }
                // What the store says now matches the model, DeletionDate included.
                let (now, deletion) = describe_until_ok(&kms, &k.id).await;
                assert_eq!(now, k.state, "{}: persisted state", k.id);
                if now == Life::PendingDeletion {
                    assert_eq!(deletion, k.deletion, "{}: DeletionDate changed", k.id);
                    assert!(deletion.is_some());
                }
                assert_no_encrypt(&kms, k).await;
            }
            (keys, acked, unknown)
        }));
    }

    let (_, recover, _) = kill_cycles(
        &mut cluster,
        Svc::Keystore,
        cycles,
        &mut rng,
        (100, 600),
        (0, 150),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let (mut acked, mut unknown) = (0, 0);
    for t in tasks {
        let (keys, a, u) = t.await.expect("worker (an invariant failed)");
        all.extend(keys);
        acked += a;
        unknown += u;
    }
    // After a last crash and restart, every key is exactly as last acknowledged.
    cluster.kill(Svc::Keystore);
    cluster.restart(Svc::Keystore).await.unwrap();
    cluster.wait_end_to_end(RECOVERY_DEADLINE).await.unwrap();
    let kms = cluster.client();
    let mut pending = 0;
    for k in &all {
        let (now, deletion) = describe_until_ok(&kms, &k.id).await;
        assert_eq!(now, k.state, "{}", k.id);
        if now == Life::PendingDeletion {
            pending += 1;
            assert_eq!(deletion, k.deletion, "{}: DeletionDate after restart", k.id);
            let err = kms
                .encrypt()
                .key_id(&k.id)
                .plaintext(Blob::new(b"x".to_vec()))
                .send()
                .await
                .expect_err("a key pending deletion must not encrypt");
            assert_eq!(
                Failure::of(&err),
                Failure::Service("KMSInvalidStateException".into())
            );
        }
    }
    assert!(acked > 0, "no lifecycle change was acknowledged");
    eprintln!(
        "[lifecycle_kill9] {cycles} kills; {acked} changes acknowledged, {unknown} with unknown outcome (resolved); {pending} keys end PendingDeletion; kill->first successful call {}",
        summary(&recover)
    );
    cluster.keep_if_asked();
}

#[derive(Default)]
struct Calls {
    /// Successful calls: (start, end, request id).
    ok: Vec<(Instant, Instant, String)>,
    /// Failed calls: (start, end, failure).
    failed: Vec<(Instant, Instant, Failure)>,
}

/// Encrypt workers on one key until `stop`, without SDK retries.
fn encrypt_load(
    cluster: &Cluster,
    key: &str,
    workers: usize,
    rng: &mut Rng,
    stop: Arc<AtomicBool>,
) -> (Arc<Mutex<Calls>>, Vec<tokio::task::JoinHandle<()>>) {
    let calls = Arc::new(Mutex::new(Calls::default()));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let kms = cluster.client();
        let (calls, stop, key) = (calls.clone(), stop.clone(), key.to_string());
        let mut rng = rng.fork();
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let r = kms
                    .encrypt()
                    .key_id(&key)
                    .plaintext(Blob::new(plaintext(&mut rng)))
                    .send()
                    .await;
                let end = Instant::now();
                match r {
                    Ok(out) => {
                        assert!(out.ciphertext_blob().is_some());
                        let id = out.request_id().expect("x-amzn-RequestId").to_string();
                        calls.lock().unwrap().ok.push((start, end, id));
                    }
                    Err(e) => {
                        calls
                            .lock()
                            .unwrap()
                            .failed
                            .push((start, end, Failure::of(&e)));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }));
    }
    (calls, tasks)
}

/// Every acknowledged request id has exactly one audit record.
async fn assert_one_record_each(cluster: &Cluster, acked: &[String]) -> usize {
    let records = cluster.audit_records_by_request_id().await.unwrap();
    let mut missing = Vec::new();
    let mut duplicated = Vec::new();
    for id in acked {
        match records.get(id) {
            None => missing.push(id.clone()),
            Some(1) => {}
            Some(n) => duplicated.push((id.clone(), *n)),
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged calls without an audit record, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(duplicated.is_empty(), "duplicated records: {duplicated:?}");
    let unique: HashSet<&String> = acked.iter().collect();
    assert_eq!(unique.len(), acked.len(), "request ids are unique");
    records.values().map(|n| *n as usize).sum()
}

/// Issue 5/9, test 3: audit SIGKILL under Encrypt load; fail closed, recover,
/// and exactly one record per acknowledged call. Also measures the audit
/// service's committed records per second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_kill9_under_encrypt_load() {
    let _serial = serial().await;
    let cycles = iterations("AUDIT_CYCLES", 10);
    let workers = iterations("AUDIT_WORKERS", 16);
    let measure = iterations("MEASURE_SECS", 3) as u64;
    let mut rng = Rng::from_env("audit_kill9");
    let mut cluster = Cluster::start().await.expect("cluster");
    let kms = cluster.client();
    let key = kms.create_key().send().await.unwrap();
    let key = key.key_metadata().unwrap().key_id().to_string();

    // Throughput first, without kills: committed audit rows per second.
    let stop = Arc::new(AtomicBool::new(false));
    let before: usize = cluster
        .audit_records_by_request_id()
        .await
        .unwrap()
        .values()
        .map(|n| *n as usize)
        .sum();
    let t = Instant::now();
    let (calls, tasks) = encrypt_load(&cluster, &key, workers, &mut rng, stop.clone());
    tokio::time::sleep(Duration::from_secs(measure)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = t.elapsed().as_secs_f64();
    let after: usize = cluster
        .audit_records_by_request_id()
        .await
        .unwrap()
        .values()
        .map(|n| *n as usize)
        .sum();
    let steady = std::mem::take(&mut *calls.lock().unwrap());
    // Nothing is killed yet: a failure can only be an overloaded machine
    // (a dependency deadline), never a client error.
    for (_, _, f) in &steady.failed {
        assert!(f.is_dependency_failure(), "{f:?}");
    }
    eprintln!(
        "[audit_kill9] steady load, {workers} clients: {:.0} Encrypt/s acknowledged ({} failed), {:.0} audit records/s committed",
        steady.ok.len() as f64 / elapsed,
        steady.failed.len(),
        (after - before) as f64 / elapsed
    );

    // Now the crashes.
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, tasks) = encrypt_load(&cluster, &key, workers, &mut rng, stop.clone());
    let (windows, recover, restart) = kill_cycles(
        &mut cluster,
        Svc::Audit,
        cycles,
        &mut rng,
        (150, 700),
        (50, 400),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let calls = std::mem::take(&mut *calls.lock().unwrap());
    // Fail closed: every failure is AWS's dependency error, and no call that
    // ran entirely while audit was down succeeded.
    for (_, _, f) in &calls.failed {
        assert!(
            matches!(f, Failure::Service(c) if c == "DependencyTimeoutException" || c == "KMSInternalException"),
            "{f:?}"
        );
    }
    let during: Vec<_> = calls
        .ok
        .iter()
        .filter(|(s, e, _)| inside(&windows, *s, *e))
        .collect();
    assert!(
        during.is_empty(),
        "calls succeeded while audit was down: {during:?}"
    );
    let failed_inside = calls
        .failed
        .iter()
        .filter(|(s, e, _)| inside(&windows, *s, *e))
        .count();
    // The clients recovered by themselves (same clients, same connections pool).
    let last_up = windows.last().map(|w| w.to).unwrap_or_else(Instant::now);
    assert!(
        calls.ok.iter().any(|(s, _, _)| *s > last_up),
        "no client call succeeded after the last restart"
    );
    let mut acked: Vec<String> = steady.ok.into_iter().map(|c| c.2).collect();
    acked.extend(calls.ok.iter().map(|c| c.2.clone()));
    let total = assert_one_record_each(&cluster, &acked).await;
    eprintln!(
        "[audit_kill9] {cycles} kills: {} Encrypt acknowledged, {} failed closed ({failed_inside} entirely inside a down window), {total} audit rows; restart {}; kill->first successful call {}",
        calls.ok.len(),
        calls.failed.len(),
        summary(&restart),
        summary(&recover)
    );
    cluster.keep_if_asked();
}

/// Issue 5/9, test 4: gateway SIGKILL mid-load; clients retry (SDK retries,
/// then their own), and every acknowledged call has exactly one record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_kill9_with_client_retries() {
    let _serial = serial().await;
    let cycles = iterations("GATEWAY_CYCLES", 10);
    let workers = iterations("WORKERS", 4);
    let mut rng = Rng::from_env("gateway_kill9");
    let mut cluster = Cluster::start().await.expect("cluster");
    let key = cluster.client().create_key().send().await.unwrap();
    let key = key.key_metadata().unwrap().key_id().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    type Done = Vec<(String, Vec<u8>, Blob)>;
    let mut tasks: Vec<tokio::task::JoinHandle<(Done, u64)>> = Vec::new();
    for _ in 0..workers {
        let kms = cluster.retrying_client(4);
        let (stop, key) = (stop.clone(), key.clone());
        let mut rng = rng.fork();
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            let mut retried = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let pt = plaintext(&mut rng);
                let t = Instant::now();
                loop {
                    match kms
                        .encrypt()
                        .key_id(&key)
                        .plaintext(Blob::new(pt.clone()))
                        .send()
                        .await
                    {
                        Ok(out) => {
                            let id = out.request_id().expect("x-amzn-RequestId").to_string();
                            done.push((id, pt, out.ciphertext_blob().unwrap().clone()));
                            break;
                        }
                        Err(e) => {
                            let f = Failure::of(&e);
                            assert!(f.is_dependency_failure(), "{f:?}");
                            assert!(
                                t.elapsed() < RECOVERY_DEADLINE,
                                "no success in {RECOVERY_DEADLINE:?}: {f:?}"
                            );
                            retried += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            }
            (done, retried)
        }));
    }
    let (_, recover, restart) = kill_cycles(
        &mut cluster,
        Svc::Gateway,
        cycles,
        &mut rng,
        (100, 600),
        (0, 200),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut done = Vec::new();
    let mut retried = 0;
    for t in tasks {
        let (d, r) = t.await.expect("worker (an invariant failed)");
        done.extend(d);
        retried += r;
    }
    let acked: Vec<String> = done.iter().map(|d| d.0.clone()).collect();
    let total = assert_one_record_each(&cluster, &acked).await;
    // What was acknowledged is real: the ciphertexts decrypt.
    let kms = cluster.client();
    for (_, pt, blob) in done.iter().step_by(7) {
        let dec = kms
            .decrypt()
            .ciphertext_blob(blob.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(dec.plaintext().unwrap().as_ref(), pt.as_slice());
    }
    eprintln!(
        "[gateway_kill9] {cycles} kills: {} Encrypt acknowledged after {retried} failed attempts retried, {total} audit rows; restart {}; kill->first successful call {}",
        done.len(),
        summary(&restart),
        summary(&recover)
    );
    cluster.keep_if_asked();
}

/// Issue 5/9, test 5a: authz SIGKILL: never an allow while it is down (every
/// call fails with AWS's error), and recovery after restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authz_kill9_never_allows() {
    let _serial = serial().await;
    let cycles = iterations("AUTHZ_CYCLES", 5);
    let workers = iterations("WORKERS", 4);
    let mut rng = Rng::from_env("authz_kill9");
    let mut cluster = Cluster::start().await.expect("cluster");
    let kms = cluster.client();
    let key = kms.create_key().send().await.unwrap();
    let key = key.key_metadata().unwrap().key_id().to_string();
    let blob = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"secret".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();

    // While authz is down, every kind of call fails with a dependency error
    // and changes nothing.
    let keys_before = kms.list_keys().send().await.unwrap().keys().len();
    cluster.kill(Svc::Authz);
    let fresh = cluster.client();
    for kms in [&kms, &fresh] {
        let f = |e: &dyn std::fmt::Debug| format!("{e:?}");
        let results: Vec<(&str, Result<(), Failure>)> = vec![
            (
                "Encrypt",
                kms.encrypt()
                    .key_id(&key)
                    .plaintext(Blob::new(b"x".to_vec()))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| Failure::of(&e)),
            ),
            (
                "Decrypt",
                kms.decrypt()
                    .ciphertext_blob(blob.clone())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| Failure::of(&e)),
            ),
            (
                "CreateKey",
                kms.create_key()
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| Failure::of(&e)),
            ),
            (
                "DescribeKey",
                kms.describe_key()
                    .key_id(&key)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| Failure::of(&e)),
            ),
            (
                "DisableKey",
                kms.disable_key()
                    .key_id(&key)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| Failure::of(&e)),
            ),
            (
                "ListKeys",
                kms.list_keys()
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| Failure::of(&e)),
            ),
        ];
        for (op, r) in results {
            match r {
                Ok(()) => panic!("{op} succeeded while authz was down"),
                Err(failure) => assert!(
                    matches!(&failure, Failure::Service(c) if c == "DependencyTimeoutException" || c == "KMSInternalException"),
                    "{op} while authz was down: {}",
                    f(&failure)
                ),
            }
        }
    }
    let t = Instant::now();
    cluster.restart(Svc::Authz).await.unwrap();
    cluster.wait_end_to_end(RECOVERY_DEADLINE).await.unwrap();
    eprintln!(
        "[authz_kill9] restart to first successful call: {:.3} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        kms.list_keys().send().await.unwrap().keys().len(),
        keys_before,
        "a key was created while authz was down"
    );
    let d = kms.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(
        d.key_metadata().unwrap().key_state(),
        Some(&KeyState::Enabled),
        "DisableKey acted while authz was down"
    );

    // Under load with random kills: no success entirely inside a down window.
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, tasks) = encrypt_load(&cluster, &key, workers, &mut rng, stop.clone());
    let (windows, recover, _) = kill_cycles(
        &mut cluster,
        Svc::Authz,
        cycles,
        &mut rng,
        (100, 500),
        (100, 400),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let calls = std::mem::take(&mut *calls.lock().unwrap());
    let during: Vec<_> = calls
        .ok
        .iter()
        .filter(|(s, e, _)| inside(&windows, *s, *e))
        .collect();
    assert!(
        during.is_empty(),
        "allowed while authz was down: {during:?}"
    );
    for (_, _, f) in &calls.failed {
        assert!(
            matches!(f, Failure::Service(c) if c == "DependencyTimeoutException" || c == "KMSInternalException"),
            "{f:?}"
        );
    }
    let last_up = windows.last().map(|w| w.to).unwrap_or_else(Instant::now);
    assert!(
        calls.ok.iter().any(|(s, _, _)| *s > last_up),
        "no client call succeeded after the last restart"
    );
    let acked: Vec<String> = calls.ok.iter().map(|c| c.2.clone()).collect();
    assert_one_record_each(&cluster, &acked).await;
    eprintln!(
        "[authz_kill9] {cycles} kills under load: {} ok, {} failed closed; kill->first successful call {}",
        calls.ok.len(),
        calls.failed.len(),
        summary(&recover)
    );
    cluster.keep_if_asked();
}

/// A VPC in 127.`octet`.0.0/16 with one subnet and a KMS interface endpoint,
/// made through the registry's gRPC API. Returns (vpce id, interface IP).
async fn endpoint_in_new_vpc(cluster: &Cluster, octet: u8) -> (String, String) {
    use kms_proto::registry::v1::{CreateSubnetRequest, CreateVpcRequest};
    let account = kms_chaos::ACCOUNT_A.0.to_string();
    let mut reg = cluster.registry().unwrap();
    let vpc = reg
        .create_vpc(CreateVpcRequest {
            owner_account_id: account.clone(),
            cidr_block: format!("127.{octet}.0.0/16"),
        })
        .await
        .unwrap()
        .into_inner();
    let subnet = reg
        .create_subnet(CreateSubnetRequest {
            owner_account_id: account.clone(),
            vpc_id: vpc.vpc_id.clone(),
            cidr_block: format!("127.{octet}.1.0/24"),
            availability_zone: "us-east-1a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    kms_chaos::create_endpoint_at_registry(&mut reg, &vpc.vpc_id, &subnet.subnet_id).await
}

/// The `vpcEndpointId` of the audit record of `request_id` ("" for none).
async fn recorded_endpoint(cluster: &Cluster, request_id: &str) -> Vec<String> {
    let db = cluster.open_db(Svc::Audit).await.unwrap();
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT cloudtrail_event FROM events WHERE request_id = ?")
            .bind(request_id)
            .fetch_all(&db)
            .await
            .unwrap();
    db.close().await;
    rows.iter()
        .map(|(json,)| {
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            v["vpcEndpointId"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

/// Encrypt through `kms` until it succeeds (the listener may not be bound yet).
async fn encrypt_until_ok(kms: &Client, key: &str) -> String {
    let t = Instant::now();
    loop {
        match kms
            .encrypt()
            .key_id(key)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await
        {
            Ok(out) => return out.request_id().unwrap().to_string(),
            Err(e) => {
                assert!(t.elapsed() < RECOVERY_DEADLINE, "{:?}", Failure::of(&e));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Issue 5/9, test 5b: registry SIGKILL: the public endpoint keeps serving
/// (new connections included), and no call is attributed to the wrong
/// endpoint: through the public endpoint never to a VPC endpoint, through an
/// endpoint's interface never to none or another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_kill9_public_endpoint_keeps_serving() {
    let _serial = serial().await;
    let cycles = iterations("REGISTRY_CYCLES", 3);
    let mut rng = Rng::from_env("registry_kill9");
    let mut cluster = Cluster::start().await.expect("cluster");
    let octet = rng.range(100, 250) as u8;
    let (vpce, ip) = endpoint_in_new_vpc(&cluster, octet).await;
    let port = cluster.endpoint().port();
    let via_endpoint = |c: &Cluster| c.client_at(format!("{ip}:{port}").parse().unwrap());
    let key = cluster.client().create_key().send().await.unwrap();
    let key = key.key_metadata().unwrap().key_id().to_string();
    let id = encrypt_until_ok(&via_endpoint(&cluster), &key).await;
    assert_eq!(recorded_endpoint(&cluster, &id).await, vec![vpce.clone()]);
    let id = encrypt_until_ok(&cluster.client(), &key).await;
    assert_eq!(recorded_endpoint(&cluster, &id).await, vec![String::new()]);

    let (mut public_ok, mut endpoint_ok, mut endpoint_refused) = (0, 0, 0);
    let mut recover = Vec::new();
    for _ in 0..cycles {
        cluster.kill(Svc::Registry);
        // Fresh clients: new connections while the registry is down.
        for _ in 0..5 {
            let out = cluster
                .client()
                .encrypt()
                .key_id(&key)
                .plaintext(Blob::new(b"public".to_vec()))
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!("public endpoint refused a new connection while the registry was down: {:?}", Failure::of(&e))
                });
            let id = out.request_id().unwrap().to_string();
            assert_eq!(
                recorded_endpoint(&cluster, &id).await,
                vec![String::new()],
                "public call attributed to an endpoint"
            );
            public_ok += 1;
            match via_endpoint(&cluster)
                .encrypt()
                .key_id(&key)
                .plaintext(Blob::new(b"vpce".to_vec()))
                .send()
                .await
            {
                Ok(out) => {
                    let id = out.request_id().unwrap().to_string();
                    assert_eq!(
                        recorded_endpoint(&cluster, &id).await,
                        vec![vpce.clone()],
                        "endpoint call attributed elsewhere"
                    );
                    endpoint_ok += 1;
                }
                Err(e) => {
                    assert!(
                        Failure::of(&e).is_dependency_failure(),
                        "{:?}",
                        Failure::of(&e)
                    );
                    endpoint_refused += 1;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.range(0, 300))).await;
        let t = Instant::now();
        cluster.restart(Svc::Registry).await.unwrap();
        let id = encrypt_until_ok(&via_endpoint(&cluster), &key).await;
        recover.push(t.elapsed());
        assert_eq!(recorded_endpoint(&cluster, &id).await, vec![vpce.clone()]);
    }
    eprintln!(
        "[registry_kill9] {cycles} kills: {public_ok} new public connections served, endpoint calls while down: {endpoint_ok} served (correctly attributed), {endpoint_refused} refused (fail closed); restart->endpoint call ok {}",
        summary(&recover)
    );
    cluster.keep_if_asked();
}
