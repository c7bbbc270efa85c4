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
