//! One trace per API call across the five services (OpenTelemetry, W3C trace
//! context on every gRPC hop, OTLP/gRPC export).
//!
//! The services run as separate processes (their real binaries), each
//! exporting to an OTLP receiver of this test's own on 127.0.0.1. The test
//! drives calls that are allowed, denied and failed, and for each finds the
//! gateway's `api.request` span by the request id of the response, then checks
//! the trace: that span is the root, every other span of the trace has its
//! parent in the trace, and the expected services appear with the expected
//! parents (keystore under the gateway, authz's Authorize under the keystore,
//! audit's Append under the gateway, the registry under the gateway for EC2).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_kms::operation::RequestId;
use aws_sdk_kms::primitives::Blob;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4::SigningParams;
use aws_smithy_runtime_api::client::identity::Identity;
use kms_chaos::{ACCOUNT_A, Cluster};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent: Vec<u8>,
    attrs: HashMap<String, String>,
}

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut out = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(any_to_string)
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    let attrs = s
                        .attributes
                        .iter()
                        .map(|kv| {
                            (
                                kv.key.clone(),
                                kv.value.as_ref().map(any_to_string).unwrap_or_default(),
                            )
                        })
                        .collect();
                    out.push(Span {
                        service: service.clone(),
                        name: s.name,
                        trace_id: s.trace_id,
                        span_id: s.span_id,
                        parent: s.parent_span_id,
                        attrs,
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn any_to_string(v: &opentelemetry_proto::tonic::common::v1::AnyValue) -> String {
    match &v.value {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

async fn start_collector() -> (SocketAddr, Collector) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let collector = Collector::default();
    let svc = TraceServiceServer::new(collector.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    (addr, collector)
}

/// The spans of the trace whose gateway span has `request_id`, once every
/// expected `(service, span name)` has been exported (an empty name: any span of
/// that service), or the deadline passed. By name, not by service: one service
/// may export the spans of a call in different batches.
async fn trace_of(collector: &Collector, request_id: &str, expected: &[(&str, &str)]) -> Vec<Span> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let spans = collector.0.lock().unwrap().clone();
        let root = spans.iter().find(|s| {
            s.service == "kms-gateway"
                && s.attrs.get("aws.request_id").map(String::as_str) == Some(request_id)
        });
        if let Some(root) = root {
            let trace: Vec<Span> = spans
                .iter()
                .filter(|s| s.trace_id == root.trace_id)
                .cloned()
                .collect();
            if expected.iter().all(|(svc, name)| {
                trace
                    .iter()
                    .any(|s| s.service == *svc && (name.is_empty() || s.name == *name))
            }) || Instant::now() > deadline
            {
                return trace;
            }
        } else if Instant::now() > deadline {
            panic!("no gateway span for request {request_id}; spans: {spans:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The trace is one tree: a single root (the gateway's `api.request`), every
/// other span's parent inside the trace.
fn assert_connected(trace: &[Span], request_id: &str) -> Span {
    let roots: Vec<&Span> = trace.iter().filter(|s| s.parent.is_empty()).collect();
    assert_eq!(roots.len(), 1, "one root for {request_id}: {trace:#?}");
    let root = roots[0].clone();
    assert_eq!(root.service, "kms-gateway");
    for s in trace {
        if !s.parent.is_empty() {
            assert!(
                trace.iter().any(|p| p.span_id == s.parent),
                "span {} of {} has its parent outside the trace: {trace:#?}",
                s.name,
                s.service
            );
        }
    }
    root
}

/// The span of `service` named `name` whose parent is `parent`.
fn child<'a>(trace: &'a [Span], parent: &Span, service: &str, name: &str) -> &'a Span {
    trace
        .iter()
        .find(|s| s.service == service && s.name == name && s.parent == parent.span_id)
        .unwrap_or_else(|| {
            panic!(
                "no {service} span {name} under {} {}: {trace:#?}",
                parent.service, parent.name
            )
        })
}

fn kms_client(endpoint: SocketAddr, (_, akid, secret): (&str, &str, &str)) -> aws_sdk_kms::Client {
    let conf = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new("us-east-1"))
        .endpoint_url(format!("http://{endpoint}"))
        .credentials_provider(Credentials::new(akid, secret, None, None, "tracing"))
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

/// A signed EC2 Query call (CreateVpc), returning the response's request id.
async fn ec2_create_vpc(endpoint: SocketAddr, cidr: &str) -> String {
    let (_, akid, secret) = ACCOUNT_A;
    let identity: Identity = Credentials::new(akid, secret, None, None, "tracing").into();
    let body = format!(
        "Action=CreateVpc&Version=2016-11-15&CidrBlock={}",
        cidr.replace('/', "%2F")
    );
    let host = endpoint.to_string();
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let params = SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("ec2")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "POST",
        format!("http://{host}/"),
        [("host", host.as_str()), ("content-type", content_type)].into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut request = format!(
        "POST / HTTP/1.1\r\nhost: {host}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in instructions.headers() {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let mut stream = tokio::net::TcpStream::connect(endpoint).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-amzn-requestid")
                .then(|| v.trim().to_owned())
        })
        .expect("x-amzn-RequestId")
}

#[tokio::test]
async fn one_connected_trace_per_call_across_the_services() {
    let _serial = kms_chaos::serial().await;
    let (collector_addr, collector) = start_collector().await;
    let otlp = format!("http://{collector_addr}");
    let mut cluster = Cluster::start_with_env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str()),
        // Export every 200 ms instead of every 5 s.
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ])
    .await
    .unwrap();
    let endpoint = cluster.endpoint();
    let kms = kms_client(endpoint, ACCOUNT_A);

    // Allowed: CreateKey and Encrypt.
    let created = kms.create_key().send().await.unwrap();
    let key = created.key_metadata().unwrap().key_id().to_owned();
    let encrypted = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"traced".to_vec()))
        .send()
        .await
        .unwrap();
    let encrypt_id = encrypted.request_id().unwrap().to_owned();

    // Denied: another account has no access to the key (AccessDeniedException).
    let other = kms_client(endpoint, kms_chaos::ACCOUNT_B);
    let arn = created.key_metadata().unwrap().arn().unwrap().to_owned();
    let denied = other
        .encrypt()
        .key_id(&arn)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    let denied_id = denied.request_id().unwrap().to_owned();
    assert_eq!(
        denied
            .as_service_error()
            .and_then(|e| aws_sdk_kms::error::ProvideErrorMetadata::code(e)),
        Some("AccessDeniedException")
    );

    // Failed: a ciphertext that is not one (InvalidCiphertextException).
    let failed = kms
        .decrypt()
        .ciphertext_blob(Blob::new(vec![7u8; 64]))
        .send()
        .await
        .unwrap_err();
    let failed_id = failed.request_id().unwrap().to_owned();

    // EC2 through the registry.
    let ec2_id = ec2_create_vpc(endpoint, "127.77.0.0/16").await;

    // Encrypt: gateway -> authz (Authenticate), gateway -> keystore (Encrypt)
    // -> authz (Authorize), gateway -> audit (Append).
    let trace = trace_of(
        &collector,
        &encrypt_id,
        &[
            ("kms-gateway", "kms.Encrypt"),
            ("kms-authz", "kms.authz.v1.Authz/Authenticate"),
            ("kms-keystore", "kms.keystore.v1.KeyStore/Encrypt"),
            ("kms-authz", "kms.authz.v1.Authz/Authorize"),
            ("kms-authz", "authorize"),
            ("kms-audit", "kms.audit.v1.Audit/Append"),
        ],
    )
    .await;
    let root = assert_connected(&trace, &encrypt_id);
    assert_eq!(root.name, "kms.Encrypt");
    assert_eq!(root.attrs["aws.operation"], "Encrypt");
    assert_eq!(root.attrs["aws.account"], "111122223333");
    assert_eq!(root.attrs["kms.key_id"], key);
    child(
        &trace,
        &root,
        "kms-authz",
        "kms.authz.v1.Authz/Authenticate",
    );
    let ks = child(
        &trace,
        &root,
        "kms-keystore",
        "kms.keystore.v1.KeyStore/Encrypt",
    );
    let authorize = child(&trace, ks, "kms-authz", "kms.authz.v1.Authz/Authorize");
    // The decision is on authz's own span of the handler, under the RPC's.
    let decision = child(&trace, authorize, "kms-authz", "authorize");
    assert_eq!(decision.attrs["kms.decision"], "allowed");
    assert_eq!(decision.attrs["kms.action"], "kms:Encrypt");
    child(&trace, &root, "kms-audit", "kms.audit.v1.Audit/Append");
    // Never a secret on a span.
    for s in &trace {
        for (k, v) in &s.attrs {
            assert!(
                !v.contains("traced"),
                "plaintext on span {}: {k}={v}",
                s.name
            );
            assert!(
                !v.contains("wJalrXUtnFEMI"),
                "secret key on span {}",
                s.name
            );
        }
    }

    // Denied: the decision says so; no plaintext, the error code on the root.
    let trace = trace_of(
        &collector,
        &denied_id,
        &[
            ("kms-keystore", "kms.keystore.v1.KeyStore/Encrypt"),
            ("kms-authz", "kms.authz.v1.Authz/Authorize"),
            ("kms-authz", "authorize"),
        ],
    )
    .await;
    let root = assert_connected(&trace, &denied_id);
    assert_eq!(root.attrs["aws.error_code"], "AccessDeniedException");
    assert_eq!(root.attrs["aws.account"], "444455556666");
    let ks = child(
        &trace,
        &root,
        "kms-keystore",
        "kms.keystore.v1.KeyStore/Encrypt",
    );
    let authorize = child(&trace, ks, "kms-authz", "kms.authz.v1.Authz/Authorize");
    // The decision is on authz's own span of the handler, under the RPC's.
    let decision = child(&trace, authorize, "kms-authz", "authorize");
    assert_eq!(decision.attrs["kms.decision"], "implicitDeny");

    // Failed: the error code on the root span.
    let trace = trace_of(
        &collector,
        &failed_id,
        &[("kms-keystore", "kms.keystore.v1.KeyStore/Decrypt")],
    )
    .await;
    let root = assert_connected(&trace, &failed_id);
    assert_eq!(root.attrs["aws.error_code"], "InvalidCiphertextException");
    child(
        &trace,
        &root,
        "kms-keystore",
        "kms.keystore.v1.KeyStore/Decrypt",
    );

    // EC2: the registry's span under the gateway's.
    let trace = trace_of(
        &collector,
        &ec2_id,
        &[("kms-registry", ""), ("kms-audit", "")],
    )
    .await;
    let root = assert_connected(&trace, &ec2_id);
    assert_eq!(root.name, "ec2.CreateVpc");
    assert!(
        trace
            .iter()
            .any(|s| s.service == "kms-registry" && s.parent == root.span_id),
        "{trace:#?}"
    );

    cluster.kill_all();
}
