//! audit over gRPC: group-committed appends and CloudTrail LookupEvents.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use kms_audit::Config;
use kms_proto::audit::v1::audit_client::AuditClient;
use kms_proto::audit::v1::{
    AppendRequest, AuditRecord, Event, LookupEventsRequest, LookupEventsResponse, Resource,
};
use kms_proto::error::AwsError;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

const A: &str = "111122223333";
const B: &str = "444455556666";
const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

struct TestApp {
    addr: SocketAddr,
    client: AuditClient<Channel>,
    dir: Arc<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    async fn stop(mut self) -> Arc<TempDir> {
        let _ = self.shutdown.take().unwrap().send(());
        self.server.take().unwrap().await.unwrap().unwrap();
        self.dir.clone()
    }

    async fn append(&mut self, records: Vec<AuditRecord>) -> u64 {
        self.client
            .append(AppendRequest { records })
            .await
            .unwrap()
            .into_inner()
            .committed
    }

    async fn lookup(&mut self, req: LookupEventsRequest) -> LookupEventsResponse {
        self.client.lookup_events(req).await.unwrap().into_inner()
    }

    /// Every event of the lookup, following next tokens.
    async fn lookup_all(&mut self, mut req: LookupEventsRequest) -> Vec<Event> {
        let mut all = Vec::new();
        loop {
            let page = self.lookup(req.clone()).await;
            all.extend(page.events);
            if page.next_token.is_empty() {
                return all;
            }
            req.next_token = page.next_token;
        }
    }

    async fn ids(&mut self, req: LookupEventsRequest) -> Vec<String> {
        self.lookup_all(req)
            .await
            .into_iter()
            .map(|e| e.event_id)
            .collect()
    }
}

async fn spawn_at(dir: Arc<TempDir>, batch_max: usize) -> TestApp {
    let mut config = Config::new(format!(
        "sqlite://{}",
        dir.path().join("audit.db").display()
    ));
    config.batch_max = batch_max;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(kms_audit::run(listener, config, async {
        let _ = rx.await;
    }));
    let client = AuditClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    TestApp {
        addr,
        client,
        dir,
        shutdown: Some(tx),
        server: Some(server),
    }
}

async fn spawn_app() -> TestApp {
    spawn_at(Arc::new(TempDir::new().unwrap()), 512).await
}

fn record(id: &str, time_ms: i64, recipients: &[&str]) -> AuditRecord {
    AuditRecord {
        event_id: id.into(),
        event_time_ms: time_ms,
        event_name: "Encrypt".into(),
        event_source: "kms.amazonaws.com".into(),
        read_only: false,
        username: "root".into(),
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        resources: vec![Resource {
            resource_type: "AWS::KMS::Key".into(),
            resource_name: format!(
                "arn:aws:kms:us-east-1:{A}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
            ),
        }],
        recipient_account_ids: recipients.iter().map(|s| s.to_string()).collect(),
        cloudtrail_event: format!(
            r#"{{"eventVersion":"1.08","eventID":"{id}","eventName":"Encrypt"}}"#
        ),
        request_id: format!("req-{id}"),
    }
}

fn lookup(account: &str) -> LookupEventsRequest {
    LookupEventsRequest {
        account_id: account.into(),
        ..Default::default()
    }
}

fn by(account: &str, key: &str, value: &str) -> LookupEventsRequest {
    LookupEventsRequest {
        account_id: account.into(),
        attribute_key: key.into(),
        attribute_value: value.into(),
        ..Default::default()
    }
}

fn aws_error(r: Result<impl std::fmt::Debug, tonic::Status>) -> AwsError {
    AwsError::from_status(&r.expect_err("call should fail"))
}

#[tokio::test]
async fn health_reports_serving_after_migrations() {
    let app = spawn_app().await;
    let channel = Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let resp = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "kms.audit.v1.Audit".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        resp.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
}

#[tokio::test]
async fn two_hundred_concurrent_appends_are_all_committed() {
    let mut app = spawn_app().await;
    let calls: Vec<_> = (0..200)
        .map(|i| {
            let mut client = app.client.clone();
            tokio::spawn(async move {
                client
                    .append(AppendRequest {
                        records: vec![record(&format!("c{i:03}"), T0 + i, &[A])],
                    })
                    .await
                    .map(|r| r.into_inner().committed)
            })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap(), 1);
    }
    let ids = app.ids(lookup(A)).await;
    assert_eq!(ids.len(), 200);
    let expected: Vec<String> = (0..200).rev().map(|i| format!("c{i:03}")).collect();
    assert_eq!(ids, expected, "newest first");
}

#[tokio::test]
async fn small_batches_still_commit_everything() {
    let mut app = spawn_at(Arc::new(TempDir::new().unwrap()), 3).await;
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let mut client = app.client.clone();
            tokio::spawn(async move {
                client
                    .append(AppendRequest {
                        records: vec![
                            record(&format!("s{i}a"), T0 + i, &[A]),
                            record(&format!("s{i}b"), T0 + i, &[A, B]),
                        ],
                    })
                    .await
            })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    assert_eq!(app.ids(lookup(A)).await.len(), 100);
    assert_eq!(app.ids(lookup(B)).await.len(), 50);
}

#[tokio::test]
async fn retried_append_is_idempotent() {
    let mut app = spawn_app().await;
    let r = record("dup", T0, &[A, B]);
    assert_eq!(app.append(vec![r.clone()]).await, 1);
    assert_eq!(app.append(vec![r.clone(), r.clone()]).await, 2);
    assert_eq!(app.ids(lookup(A)).await, vec!["dup"]);
    assert_eq!(app.ids(lookup(B)).await, vec!["dup"]);
}

#[tokio::test]
async fn accounts_see_only_their_copies_with_their_recipient_id() {
    let mut app = spawn_app().await;
    app.append(vec![
        record("shared", T0, &[A, B]),
        record("a-only", T0 + 1, &[A]),
        record("b-only", T0 + 2, &[B]),
    ])
    .await;
    assert_eq!(app.ids(lookup(A)).await, vec!["a-only", "shared"]);
    assert_eq!(app.ids(lookup(B)).await, vec!["b-only", "shared"]);
    assert!(app.ids(lookup("999999999999")).await.is_empty());

    for account in [A, B] {
        let events = app.lookup_all(by(account, "EventId", "shared")).await;
        assert_eq!(events.len(), 1);
        let json: serde_json::Value = serde_json::from_str(&events[0].cloudtrail_event).unwrap();
        assert_eq!(json["recipientAccountId"], account);
        assert_eq!(json["eventID"], "shared");
        assert_eq!(json["eventVersion"], "1.08");
        // The sender's field order is kept; the recipient comes last.
        assert!(
            events[0]
                .cloudtrail_event
                .starts_with(r#"{"eventVersion":"1.08","eventID":"shared""#)
        );
    }
    // A's lookup by B's event id finds nothing.
    assert!(app.ids(by(A, "EventId", "b-only")).await.is_empty());
}

#[tokio::test]
async fn event_fields_round_trip() {
    let mut app = spawn_app().await;
    let mut r = record("full", T0, &[A]);
    r.read_only = true;
    r.event_name = "DescribeKey".into();
    r.resources.push(Resource {
        resource_type: "AWS::KMS::Alias".into(),
        resource_name: "alias/app".into(),
    });
    app.append(vec![r.clone()]).await;
    let events = app.lookup_all(lookup(A)).await;
    let e = &events[0];
    assert_eq!(e.event_id, "full");
    assert_eq!(e.event_name, "DescribeKey");
    assert!(e.read_only);
    assert_eq!(e.access_key_id, r.access_key_id);
    assert_eq!(e.event_time_ms, T0);
    assert_eq!(e.event_source, "kms.amazonaws.com");
    assert_eq!(e.username, "root");
    assert_eq!(e.resources, r.resources);
}

#[tokio::test]
async fn every_lookup_attribute_filters() {
    let mut app = spawn_app().await;
    let mut one = record("one", T0, &[A]);
    one.event_name = "GenerateDataKey".into();
    one.read_only = false;
    one.username = "alice".into();
    one.access_key_id = "AKIAALICEALICEALICE0".into();
    one.event_source = "kms.amazonaws.com".into();
    one.resources = vec![Resource {
        resource_type: "AWS::KMS::Key".into(),
        resource_name: "arn:aws:kms:us-east-1:111122223333:key/one".into(),
    }];
    let mut two = record("two", T0 + 1, &[A]);
    two.event_name = "ListKeys".into();
    two.read_only = true;
    two.username = "bob".into();
    two.access_key_id = "AKIABOBBOBBOBBOBBOB0".into();
    two.event_source = "cloudtrail.amazonaws.com".into();
    two.resources = vec![
        Resource {
            resource_type: "AWS::KMS::Alias".into(),
            resource_name: "alias/two".into(),
        },
        Resource {
            resource_type: "AWS::KMS::Key".into(),
            resource_name: "arn:aws:kms:us-east-1:111122223333:key/two".into(),
        },
    ];
    app.append(vec![one, two]).await;

    let cases: &[(&str, &str, &[&str])] = &[
        ("EventId", "one", &["one"]),
        ("EventId", "nope", &[]),
        ("EventName", "ListKeys", &["two"]),
        ("ReadOnly", "true", &["two"]),
        ("ReadOnly", "false", &["one"]),
        ("Username", "alice", &["one"]),
        ("ResourceType", "AWS::KMS::Alias", &["two"]),
        ("ResourceType", "AWS::KMS::Key", &["two", "one"]),
        ("ResourceName", "alias/two", &["two"]),
        (
            "ResourceName",
            "arn:aws:kms:us-east-1:111122223333:key/one",
            &["one"],
        ),
        ("EventSource", "kms.amazonaws.com", &["one"]),
        ("AccessKeyId", "AKIABOBBOBBOBBOBBOB0", &["two"]),
        ("", "", &["two", "one"]),
    ];
    for (key, value, expected) in cases {
        assert_eq!(&app.ids(by(A, key, value)).await, expected, "{key}={value}");
    }
    // Filters never cross accounts.
    assert!(app.ids(by(B, "EventId", "one")).await.is_empty());
}

#[tokio::test]
async fn invalid_lookups_are_refused_with_cloudtrail_exceptions() {
    let mut app = spawn_app().await;
    let e = aws_error(app.client.lookup_events(by(A, "Region", "us-east-1")).await);
    assert_eq!(e.code, "InvalidLookupAttributesException");
    let e = aws_error(app.client.lookup_events(by(A, "ReadOnly", "maybe")).await);
    assert_eq!(e.code, "InvalidLookupAttributesException");
    let e = aws_error(
        app.client
            .lookup_events(LookupEventsRequest {
                start_time_ms: Some(T0 + 1),
                end_time_ms: Some(T0),
                ..lookup(A)
            })
            .await,
    );
    assert_eq!(e.code, "InvalidTimeRangeException");
    let e = aws_error(
        app.client
            .lookup_events(LookupEventsRequest {
                max_results: 51,
                ..lookup(A)
            })
            .await,
    );
    assert_eq!(e.code, "InvalidMaxResultsException");
    let e = aws_error(
        app.client
            .lookup_events(LookupEventsRequest {
                next_token: "garbage".into(),
                ..lookup(A)
            })
            .await,
    );
    assert_eq!(e.code, "InvalidNextTokenException");
    let e = aws_error(app.client.lookup_events(lookup("")).await);
    assert_eq!(e.code, "ValidationException");
}

#[tokio::test]
async fn time_range_is_inclusive() {
    let mut app = spawn_app().await;
    app.append(
        (0..5)
            .map(|i| record(&format!("t{i}"), T0 + i * 1000, &[A]))
            .collect(),
    )
    .await;
    let range = |start: Option<i64>, end: Option<i64>| LookupEventsRequest {
        start_time_ms: start,
        end_time_ms: end,
        ..lookup(A)
    };
    assert_eq!(
        app.ids(range(Some(T0 + 1000), Some(T0 + 3000))).await,
        vec!["t3", "t2", "t1"]
    );
    assert_eq!(
        app.ids(range(Some(T0 + 1001), Some(T0 + 2999))).await,
        vec!["t2"]
    );
    assert_eq!(
        app.ids(range(Some(T0 + 3000), None)).await,
        vec!["t4", "t3"]
    );
    assert_eq!(app.ids(range(None, Some(T0))).await, vec!["t0"]);
    assert_eq!(
        app.ids(range(Some(T0 + 2000), Some(T0 + 2000))).await,
        vec!["t2"]
    );
    assert!(app.ids(range(Some(T0 + 5000), None)).await.is_empty());
}

#[tokio::test]
async fn pagination_walks_newest_to_oldest_with_bound_tokens() {
    let mut app = spawn_app().await;
    // Two events share a timestamp: arrival order breaks the tie, newest first.
    let mut records: Vec<AuditRecord> = (0..6)
        .map(|i| record(&format!("p{i}"), T0 + i, &[A]))
        .collect();
    records.push(record("p5b", T0 + 5, &[A]));
    app.append(records).await;

    let first = app
        .lookup(LookupEventsRequest {
            max_results: 3,
            ..lookup(A)
        })
        .await;
    let ids: Vec<&str> = first.events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, vec!["p5b", "p5", "p4"]);
    assert!(!first.next_token.is_empty());

    let second = app
        .lookup(LookupEventsRequest {
            max_results: 3,
            next_token: first.next_token.clone(),
            ..lookup(A)
        })
        .await;
    let ids: Vec<&str> = second.events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, vec!["p3", "p2", "p1"]);

    let third = app
        .lookup(LookupEventsRequest {
            max_results: 3,
            next_token: second.next_token.clone(),
            ..lookup(A)
        })
        .await;
    let ids: Vec<&str> = third.events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, vec!["p0"]);
    assert!(third.next_token.is_empty());

    // An exact multiple of the page size ends without a dangling token.
    let all = app
        .lookup(LookupEventsRequest {
            max_results: 7,
            ..lookup(A)
        })
        .await;
    assert_eq!(all.events.len(), 7);
    assert!(all.next_token.is_empty());

    // A token only continues the query it came from.
    let e = aws_error(
        app.client
            .lookup_events(LookupEventsRequest {
                next_token: first.next_token.clone(),
                ..by(A, "EventName", "Encrypt")
            })
            .await,
    );
    assert_eq!(e.code, "InvalidNextTokenException");
    let e = aws_error(
        app.client
            .lookup_events(LookupEventsRequest {
                next_token: first.next_token,
                ..lookup(B)
            })
            .await,
    );
    assert_eq!(e.code, "InvalidNextTokenException");
}

#[tokio::test]
async fn invalid_records_are_refused_whole() {
    let mut app = spawn_app().await;
    let mut bad_json = record("bad", T0, &[A]);
    bad_json.cloudtrail_event = "not json".into();
    let e = aws_error(
        app.client
            .append(AppendRequest {
                records: vec![record("good", T0, &[A]), bad_json],
            })
            .await,
    );
    assert_eq!(e.code, "ValidationException");
    let e = aws_error(
        app.client
            .append(AppendRequest {
                records: vec![record("nobody", T0, &[])],
            })
            .await,
    );
    assert_eq!(e.code, "ValidationException");
    // The in-process marker that skips the event's parse does not cross the network.
    let mut bad_json = record("marked", T0, &[A]);
    bad_json.cloudtrail_event = "{\"a\":}".into();
    let mut request = tonic::Request::new(AppendRequest {
        records: vec![bad_json],
    });
    request
        .extensions_mut()
        .insert(kms_proto::audit::SerializedEvents);
    let e = aws_error(app.client.append(request).await);
    assert_eq!(e.code, "ValidationException");
    assert!(app.ids(lookup(A)).await.is_empty());
    assert_eq!(app.append(vec![]).await, 0);
}

#[tokio::test]
async fn events_survive_a_restart() {
    let mut app = spawn_app().await;
    app.append(
        (0..10)
            .map(|i| record(&format!("r{i}"), T0 + i, &[A, B]))
            .collect(),
    )
    .await;
    let dir = app.stop().await;

    let mut app = spawn_at(dir, 512).await;
    let ids = app.ids(lookup(B)).await;
    assert_eq!(ids.len(), 10);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 10);
    // Appending after the restart still deduplicates against what was stored before.
    app.append(vec![record("r0", T0, &[A])]).await;
    assert_eq!(app.ids(lookup(A)).await.len(), 10);
    app.stop().await;
}

// -- log files and digests ----------------------------------------------------------------

use kms_audit::validate::{Kind, ValidateOptions, validate_logs};
use kms_proto::audit::v1::{FlushRequest, FlushResponse, ListPublicKeysRequest};
use std::path::{Path, PathBuf};

const BUCKET: &str = "kms-cloudtrail-logs";

/// An audit with a log dir (`<dir>/cloudtrail`); deliveries only on Flush and shutdown.
async fn spawn_logs(dir: Arc<TempDir>) -> TestApp {
    let mut config = Config::new(format!(
        "sqlite://{}",
        dir.path().join("audit.db").display()
    ));
    config.log_dir = Some(dir.path().join("cloudtrail"));
    config.delivery_interval_secs = 3600.0;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(kms_audit::run(listener, config, async {
        let _ = rx.await;
    }));
    let client = AuditClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    TestApp {
        addr,
        client,
        dir,
        shutdown: Some(tx),
        server: Some(server),
    }
}

fn log_dir(dir: &TempDir) -> PathBuf {
    dir.path().join("cloudtrail")
}

/// A record as the gateway sends it, with its region.
fn regional(id: &str, time_ms: i64, recipients: &[&str], region: &str) -> AuditRecord {
    let mut r = record(id, time_ms, recipients);
    r.cloudtrail_event = format!(
        r#"{{"eventVersion":"1.08","eventID":"{id}","eventName":"Encrypt","awsRegion":"{region}"}}"#
    );
    r
}

impl TestApp {
    async fn flush(&mut self, digest: bool) -> FlushResponse {
        self.client
            .flush(FlushRequest { digest })
            .await
            .unwrap()
            .into_inner()
    }

    async fn public_keys(&mut self) -> Vec<Vec<u8>> {
        self.client
            .list_public_keys(ListPublicKeysRequest::default())
            .await
            .unwrap()
            .into_inner()
            .public_key_list
            .into_iter()
            .map(|k| k.value)
            .collect()
    }
}

fn read_gz_json(path: &Path) -> serde_json::Value {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&kms_audit::logfiles::gunzip(&raw).unwrap()).unwrap()
}

/// Every log file under the log dir for `account`, as (key, records).
fn log_files(dir: &Path, account: &str) -> Vec<(String, Vec<serde_json::Value>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("AWSLogs").join(account).join("CloudTrail")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".json.gz") {
                let key = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                let records = read_gz_json(&p)["Records"].as_array().unwrap().clone();
                out.push((key, records));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn options(dir: &Path, account: &str, keys: Vec<Vec<u8>>) -> ValidateOptions {
    ValidateOptions {
        log_dir: dir.to_path_buf(),
        account: account.into(),
        region: "us-east-1".into(),
        bucket: BUCKET.into(),
        public_keys: keys,
    }
}

#[tokio::test]
async fn flush_delivers_log_files_and_signed_chained_digests() {
    let mut app = spawn_logs(Arc::new(TempDir::new().unwrap())).await;
    app.append(vec![
        regional("e1", T0, &[A], "us-east-1"),
        regional("e2", T0 + 1000, &[A, B], "us-east-1"),
        regional("e3", T0 + 2000, &[A], "eu-west-1"),
    ])
    .await;
    let first = app.flush(false).await;
    assert!(first.digest_files.is_empty());
    let mut keys = first.log_files.clone();
    keys.sort();
    assert_eq!(keys.len(), 3, "{keys:?}");
    let dir = log_dir(&app.dir);
    for k in &keys {
        assert!(dir.join(k).is_file(), "{k}");
    }
    let a_east = keys
        .iter()
        .find(|k| k.starts_with(&format!("AWSLogs/{A}/CloudTrail/us-east-1/")))
        .unwrap();
    let name = a_east.rsplit('/').next().unwrap();
    assert!(
        name.starts_with(&format!("{A}_CloudTrail_us-east-1_")),
        "{name}"
    );
    assert!(name.ends_with(".json.gz"));
    let doc = read_gz_json(&dir.join(a_east));
    let records = doc["Records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["eventID"], "e1");
    assert_eq!(records[1]["recipientAccountId"], A);
    let b_files = log_files(&dir, B);
    assert_eq!(b_files.len(), 1);
    assert_eq!(b_files[0].1[0]["recipientAccountId"], B);
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("AWSLogs/{A}/CloudTrail/eu-west-1/")))
    );

    // Nothing new: nothing delivered twice.
    assert!(app.flush(false).await.log_files.is_empty());

    // Digests: one per account and region with undigested logs, first of their chains.
    let d1 = app.flush(true).await.digest_files;
    assert_eq!(d1.len(), 3, "{d1:?}");
    let a_digest = d1
        .iter()
        .find(|k| k.starts_with(&format!("AWSLogs/{A}/CloudTrail-Digest/us-east-1/")))
        .unwrap()
        .clone();
    let digest = read_gz_json(&dir.join(&a_digest));
    assert_eq!(digest["awsAccountId"], A);
    assert_eq!(digest["digestS3Bucket"], BUCKET);
    assert_eq!(digest["digestS3Object"], a_digest.as_str());
    assert_eq!(digest["digestSignatureAlgorithm"], "SHA256withRSA");
    assert!(digest["previousDigestSignature"].is_null());
    assert!(digest["previousDigestS3Object"].is_null());
    assert_eq!(digest["logFiles"].as_array().unwrap().len(), 1);
    assert_eq!(digest["logFiles"][0]["s3Object"], a_east.as_str());
    assert_eq!(digest["logFiles"][0]["hashAlgorithm"], "SHA-256");
    assert_eq!(digest["oldestEventTime"], "2026-01-01T00:00:00Z");
    assert_eq!(digest["newestEventTime"], "2026-01-01T00:00:01Z");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{a_digest}.meta"))).unwrap())
            .unwrap();
    assert_eq!(meta["signature-algorithm"], "SHA256withRSA");

    // The signing key, as ListPublicKeys publishes it.
    let resp = app
        .client
        .list_public_keys(ListPublicKeysRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.public_key_list.len(), 1);
    let k = &resp.public_key_list[0];
    assert_eq!(
        digest["digestPublicKeyFingerprint"],
        kms_audit::signing::fingerprint(&k.value).as_str()
    );
    assert_eq!(k.fingerprint, kms_audit::signing::fingerprint(&k.value));
    assert!(k.validity_end_time_ms.is_none());
    let bad_range = app
        .client
        .list_public_keys(ListPublicKeysRequest {
            start_time_ms: Some(T0 + 1),
            end_time_ms: Some(T0),
        })
        .await;
    assert_eq!(aws_error(bad_range).code, "InvalidTimeRangeException");

    // A second digest chains to the first.
    app.append(vec![regional("e4", T0 + 3000, &[A], "us-east-1")])
        .await;
    let second = app.flush(true).await;
    assert_eq!(second.log_files.len(), 1);
    assert_eq!(second.digest_files.len(), 1);
    let d2 = read_gz_json(&dir.join(&second.digest_files[0]));
    assert_eq!(d2["previousDigestS3Object"], a_digest.as_str());
    assert_eq!(d2["previousDigestS3Bucket"], BUCKET);
    assert_eq!(d2["previousDigestHashAlgorithm"], "SHA-256");
    assert_eq!(d2["previousDigestSignature"], meta["signature"]);
    assert_eq!(d2["digestStartTime"], digest["digestEndTime"]);
    let raw = kms_audit::logfiles::gunzip(&std::fs::read(dir.join(&a_digest)).unwrap()).unwrap();
    assert_eq!(
        d2["previousDigestHashValue"],
        kms_audit::logfiles::sha256_hex(&raw).as_str()
    );

    let keys = app.public_keys().await;
    let report = validate_logs(&options(&dir, A, keys.clone()));
    assert!(report.is_valid(), "{:?}", report.items);
    assert_eq!((report.valid_digests(), report.valid_logs()), (2, 2));
    // Without the right key, nothing verifies.
    let report = validate_logs(&options(&dir, A, vec![]));
    assert_eq!(report.invalid_digests(), 2);
    // Our command, with the keys from the running service (run off the runtime thread,
    // which must keep serving the command's ListPublicKeys call).
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kms-audit"));
    cmd.args(["validate-logs", "--verbose", "--account", A, "--log-dir"])
        .arg(&dir)
        .arg("--audit-url")
        .arg(format!("http://{}", app.addr));
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::task::spawn_blocking(move || cmd.output()),
    )
    .await
    .expect("validate-logs finished")
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("Digest file\ts3://{BUCKET}/{a_digest}\tvalid")),
        "{stdout}"
    );
    assert!(stdout.contains("2/2 digest files valid"), "{stdout}");
    assert!(stdout.contains("2/2 log files valid"), "{stdout}");
    app.stop().await;
}

#[tokio::test]
async fn restarts_neither_lose_nor_duplicate_records() {
    let mut app = spawn_logs(Arc::new(TempDir::new().unwrap())).await;
    app.append(
        (0..20)
            .map(|i| regional(&format!("a{i}"), T0 + i, &[A], "us-east-1"))
            .collect(),
    )
    .await;
    app.flush(true).await;
    app.append(
        (20..30)
            .map(|i| regional(&format!("a{i}"), T0 + i, &[A], "us-east-1"))
            .collect(),
    )
    .await;
    // Shutdown delivers what is left, with a digest.
    let dir = app.stop().await;
    let mut app = spawn_logs(dir).await;
    app.append(
        (30..40)
            .map(|i| regional(&format!("a{i}"), T0 + i, &[A], "us-east-1"))
            .collect(),
    )
    .await;
    // A retried append of an already delivered event is not delivered again.
    app.append(vec![regional("a0", T0, &[A], "us-east-1")])
        .await;
    let keys = app.public_keys().await;
    assert_eq!(keys.len(), 1, "the signing key survives restarts");
    let dir = app.stop().await;

    let logs = log_dir(&dir);
    let mut ids: Vec<String> = log_files(&logs, A)
        .into_iter()
        .flat_map(|(_, r)| r)
        .map(|r| r["eventID"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (0..40).map(|i| format!("a{i}")).collect();
    expected.sort();
    assert_eq!(ids, expected);
    let report = validate_logs(&options(&logs, A, keys));
    assert!(report.is_valid(), "{:?}", report.items);
    assert_eq!(report.valid_digests(), 3);
    assert_eq!(report.valid_logs(), 3);
}

/// Build a chain of `n` digests for A, one log file each; returns (log dir, digest keys, log keys, public keys).
async fn chain(n: usize) -> (Arc<TempDir>, Vec<String>, Vec<String>, Vec<Vec<u8>>) {
    let mut app = spawn_logs(Arc::new(TempDir::new().unwrap())).await;
    let (mut digests, mut logs) = (Vec::new(), Vec::new());
    for i in 0..n {
        app.append(vec![regional(
            &format!("c{i}"),
            T0 + i as i64,
            &[A],
            "us-east-1",
        )])
        .await;
        let f = app.flush(true).await;
        assert_eq!((f.log_files.len(), f.digest_files.len()), (1, 1));
        logs.push(f.log_files[0].clone());
        digests.push(f.digest_files[0].clone());
    }
    let keys = app.public_keys().await;
    (app.stop().await, digests, logs, keys)
}

fn reason<'a>(report: &'a kms_audit::validate::Report, key: &str) -> Option<&'a str> {
    report
        .find(key)
        .unwrap_or_else(|| panic!("{key} not reported: {:?}", report.items))
        .invalid
        .as_deref()
}

#[tokio::test]
async fn validate_logs_reports_deleted_edited_and_reordered_files() {
    let (dir, digests, logs, keys) = chain(5).await;
    let root = log_dir(&dir);
    let opts = options(&root, A, keys.clone());
    let report = validate_logs(&opts);
    assert!(report.is_valid(), "{:?}", report.items);
    assert_eq!((report.valid_digests(), report.valid_logs()), (5, 5));
    let path = |k: &str| root.join(k);

    // A deleted log file.
    let saved = std::fs::read(path(&logs[0])).unwrap();
    std::fs::remove_file(path(&logs[0])).unwrap();
    let r = validate_logs(&opts);
    assert_eq!(reason(&r, &logs[0]), Some("not found"));
    assert_eq!(r.invalid_logs(), 1);
    assert_eq!(r.invalid_digests(), 0);
    assert_eq!(
        r.find(&logs[0]).unwrap().line(),
        format!("Log file\ts3://{BUCKET}/{}\tINVALID: not found", logs[0])
    );
    std::fs::write(path(&logs[0]), &saved).unwrap();

    // An edited log file (valid gzip, one record changed).
    let saved = std::fs::read(path(&logs[1])).unwrap();
    let text = String::from_utf8(kms_audit::logfiles::gunzip(&saved).unwrap()).unwrap();
    let edited = text.replace("Encrypt", "Decrypt");
    assert_ne!(text, edited);
    std::fs::write(
        path(&logs[1]),
        kms_audit::logfiles::gzip(edited.as_bytes()).unwrap(),
    )
    .unwrap();
    let r = validate_logs(&opts);
    assert_eq!(reason(&r, &logs[1]), Some("hash value doesn't match"));
    assert_eq!((r.invalid_logs(), r.invalid_digests()), (1, 0));
    // And our command says so, with a failing exit status.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kms-audit"))
        .args([
            "validate-logs",
            "--account",
            A,
            "--region",
            "us-east-1",
            "--log-dir",
        ])
        .arg(&root)
        .arg("--public-key-der")
        .arg({
            let f = dir.path().join("key.der");
            std::fs::write(&f, &keys[0]).unwrap();
            f
        })
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "Log file\ts3://{BUCKET}/{}\tINVALID: hash value doesn't match",
            logs[1]
        )),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("5/5 digest files valid"), "{stdout}");
    assert!(
        stdout.contains("4/5 log files valid, 1/5 log files INVALID"),
        "{stdout}"
    );
    std::fs::write(path(&logs[1]), &saved).unwrap();

    // An edited digest: its signature no longer verifies.
    let saved = std::fs::read(path(&digests[2])).unwrap();
    let text = String::from_utf8(kms_audit::logfiles::gunzip(&saved).unwrap()).unwrap();
    let edited = text.replace(&logs[2], &logs[1]);
    std::fs::write(
        path(&digests[2]),
        kms_audit::logfiles::gzip(edited.as_bytes()).unwrap(),
    )
    .unwrap();
    let r = validate_logs(&opts);
    assert_eq!(
        reason(&r, &digests[2]),
        Some("signature verification failed")
    );
    assert_eq!(r.invalid_digests(), 1);
    std::fs::write(path(&digests[2]), &saved).unwrap();

    // A removed digest (in the middle of the chain).
    let saved = std::fs::read(path(&digests[2])).unwrap();
    std::fs::remove_file(path(&digests[2])).unwrap();
    let r = validate_logs(&opts);
    assert_eq!(reason(&r, &digests[2]), Some("not found"));
    assert_eq!(r.invalid_digests(), 1);
    // The walk goes on with the older digests.
    assert_eq!(reason(&r, &digests[1]), None);
    assert_eq!(reason(&r, &digests[0]), None);
    std::fs::write(path(&digests[2]), &saved).unwrap();

    // Two digests swapped (files and their signatures): both have moved.
    let (p3, p4) = (path(&digests[3]), path(&digests[4]));
    let meta = |p: &Path| PathBuf::from(format!("{}.meta", p.display()));
    let tmp = root.join("swap");
    std::fs::rename(&p3, &tmp).unwrap();
    std::fs::rename(&p4, &p3).unwrap();
    std::fs::rename(&tmp, &p4).unwrap();
    std::fs::rename(meta(&p3), &tmp).unwrap();
    std::fs::rename(meta(&p4), meta(&p3)).unwrap();
    std::fs::rename(&tmp, meta(&p4)).unwrap();
    let r = validate_logs(&opts);
    for d in &digests[3..] {
        assert_eq!(
            reason(&r, d),
            Some("has been moved from its original location")
        );
    }
    assert!(!r.is_valid());
    assert_eq!(
        r.items
            .iter()
            .filter(|i| i.kind == Kind::Digest && i.invalid.is_none())
            .count(),
        3
    );
    std::fs::rename(&p3, &tmp).unwrap();
    std::fs::rename(&p4, &p3).unwrap();
    std::fs::rename(&tmp, &p4).unwrap();
    std::fs::rename(meta(&p3), &tmp).unwrap();
    std::fs::rename(meta(&p4), meta(&p3)).unwrap();
    std::fs::rename(&tmp, meta(&p4)).unwrap();

    // Everything restored: valid again.
    let r = validate_logs(&opts);
    assert!(r.is_valid(), "{:?}", r.items);
    assert_eq!((r.valid_digests(), r.valid_logs()), (5, 5));
}

#[tokio::test]
async fn without_a_log_dir_flush_is_unsupported_and_no_keys_are_listed() {
    let mut app = spawn_app().await;
    let e = aws_error(app.client.flush(FlushRequest { digest: true }).await);
    assert_eq!(e.code, "UnsupportedOperationException");
    assert!(app.public_keys().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn background_delivery_runs_on_its_interval() {
    let dir = Arc::new(TempDir::new().unwrap());
    let mut config = Config::new(format!(
        "sqlite://{}",
        dir.path().join("audit.db").display()
    ));
    config.log_dir = Some(dir.path().join("cloudtrail"));
    config.delivery_interval_secs = 0.05;
    config.digest_interval_secs = 0.0;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(kms_audit::run(listener, config, async {
        let _ = rx.await;
    }));
    let mut client = AuditClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    client
        .append(AppendRequest {
            records: vec![regional("bg1", T0, &[A], "us-east-1")],
        })
        .await
        .unwrap();
    let root = log_dir(&dir);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let files = log_files(&root, A);
        let digests =
            std::fs::read_dir(root.join(format!("AWSLogs/{A}/CloudTrail-Digest"))).is_ok();
        if files.len() == 1 && digests {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no delivery");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}
