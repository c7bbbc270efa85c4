//! Partition tests (issue 9, faults): a dependency of the gateway down for a
//! long time (SIGKILL), hung (SIGSTOP: the process and its TCP connections
//! stay, but nothing answers) or black-holed (its port accepts connections and
//! never answers), under load; and VPC endpoints deleted or replaced while
//! clients hold connections to their listeners, with the gateway itself hung
//! while the registry changes.
//!
//! Pass criteria, each asserted and printed with its figures (`[test] ...`):
//! never a success that should not be (fail closed, no plaintext or ciphertext
//! in a failure's body), every call within its hop's deadline plus a margin,
//! the services' file descriptors and threads back near their baseline after
//! recovery, recovery by itself within a bound, exactly one audit record per
//! acknowledged call and none duplicated, and no call attributed to an
//! endpoint it did not come through. Durations and worker counts come from
//! `KMS_CHAOS_*` variables; the defaults keep the file within CI's budget
//! (about 2 minutes).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_kms::Client;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::operation::RequestId;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4::SigningParams;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use kms_chaos::{ACCOUNT_A, Cluster, Failure, Rng, Svc, iterations, serial, summary};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The gateway's deadline for authz and registry calls
/// (services/gateway/src/clients.rs `CONTROL_DEADLINE`; the keystore's
/// `AUTHZ_DEADLINE` is the same).
const CONTROL_DEADLINE: Duration = Duration::from_secs(2);
/// The gateway's deadline for keystore and audit calls (`DATA_DEADLINE`).
const DATA_DEADLINE: Duration = Duration::from_secs(5);
/// What a call may take beyond the deadline of the hop that hangs: the rest of
/// the call on a machine whose 2 cores are busy with other builds.
const MARGIN: Duration = Duration::from_secs(3);
/// How long after a dependency is back every client must have succeeded again
/// by itself (no restart of anything else, same clients).
const RECOVERY_BOUND: Duration = Duration::from_secs(10);
/// Open file descriptors and threads a service may have after recovery
/// beyond its baseline under the same load.
const FD_SLACK: usize = 20;
const THREAD_SLACK: usize = 8;

// ---------------------------------------------------------------------------
// Processes: signals and /proc figures.

fn signal(cluster: &Cluster, s: Svc, sig: &str) {
    let pid = cluster
        .pid(s)
        .unwrap_or_else(|| panic!("{} is not running", s.name()));
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{sig} {pid} ({})", s.name());
}

/// The state letter of `/proc/<pid>/stat` ('T': stopped).
fn proc_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name is in parentheses and may contain spaces.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .unwrap_or('?')
}

/// SIGSTOP and wait until the kernel reports the process stopped.
async fn pause(cluster: &Cluster, s: Svc) {
    signal(cluster, s, "STOP");
    let pid = cluster.pid(s).unwrap();
    let t = Instant::now();
    while proc_state(pid) != 'T' {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{} not stopped",
            s.name()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn resume(cluster: &Cluster, s: Svc) {
    signal(cluster, s, "CONT");
}

/// (open file descriptors, threads) of a process.
fn figures(pid: u32) -> (usize, usize) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    let threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (fds, threads)
}

/// Open file descriptors and threads of the services' processes.
#[derive(Clone)]
struct Figures(Vec<(Svc, usize, usize)>);

impl Figures {
    /// Of every running service but `except` (one that is restarted in
    /// between is another process).
    fn take(cluster: &Cluster, except: Option<Svc>) -> Self {
        Self(
            Svc::ALL
                .into_iter()
                .filter(|s| Some(*s) != except)
                .filter_map(|s| {
                    let (fds, threads) = figures(cluster.pid(s)?);
                    Some((s, fds, threads))
                })
                .collect(),
        )
    }

    fn get(&self, s: Svc) -> Option<(usize, usize)> {
        self.0
            .iter()
            .find(|(x, _, _)| *x == s)
            .map(|(_, f, t)| (*f, *t))
    }

    /// The larger of each figure.
    fn max(&self, other: &Self) -> Self {
        Self(
            self.0
                .iter()
                .map(|(s, f, t)| {
                    let (of, ot) = other.get(*s).unwrap_or((0, 0));
                    (*s, (*f).max(of), (*t).max(ot))
                })
                .collect(),
        )
    }

    /// No leak: every process is within `FD_SLACK` descriptors and
    /// `THREAD_SLACK` threads of its baseline.
    fn assert_near(&self, baseline: &Self) {
        for (s, f, t) in &self.0 {
            let Some((bf, bt)) = baseline.get(*s) else {
                continue;
            };
            assert!(
                *f <= bf + FD_SLACK && *t <= bt + THREAD_SLACK,
                "{}: {f} fds / {t} threads after recovery vs {bf} / {bt} before (all: {self} vs {baseline})",
                s.name()
            );
        }
    }
}

impl std::fmt::Display for Figures {
    /// `gateway 33/3 ...`: fds/threads per process.
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(s, f, t)| format!("{} {f}/{t}", s.name()))
            .collect();
        write!(out, "[{}]", parts.join(" "))
    }
}

// ---------------------------------------------------------------------------
// Raw signed HTTP/1.1: one request at a time on a connection the test owns
// (keep-alive, or one fresh connection per call), so the test knows exactly
// which connection a request travelled on.

/// SigV4 headers for a POST of `body` to `host` with `headers`.
fn sign_post(
    service: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<(String, String)> {
    let (_, akid, secret) = ACCOUNT_A;
    let identity: Identity = Credentials::new(akid, secret, None, None, "partition").into();
    let params = SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let mut all = vec![("host", host)];
    all.extend_from_slice(headers);
    let signable = SignableRequest::new(
        "POST",
        format!("http://{host}/"),
        all.into_iter(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

struct RawResponse {
    status: u16,
    request_id: String,
    body: String,
}

impl RawResponse {
    /// The AWS error code of a JSON or XML error body.
    fn error_code(&self) -> String {
        if let Some(v) = serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["__type"].as_str().map(str::to_owned))
        {
            return v.rsplit('#').next().unwrap_or_default().to_owned();
        }
        xml_values(&self.body, "Code")
            .into_iter()
            .next()
            .unwrap_or_default()
    }
}

/// One HTTP/1.1 connection to the gateway.
struct Raw {
    stream: TcpStream,
    host: String,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        assert!(addr.ip().is_loopback(), "tests talk to loopback only");
        let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .map_err(|_| std::io::Error::other("connect timed out"))??;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            host: addr.to_string(),
        })
    }

    /// Write a signed request (without reading the response).
    async fn send(
        &mut self,
        service: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<()> {
        let signed = sign_post(service, &self.host, headers, body);
        let mut req = format!(
            "POST / HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n",
            self.host,
            body.len()
        );
        for (k, v) in headers
            .iter()
            .copied()
            .chain(signed.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes).await
    }

    /// Read one response; `Err` when the connection ends (closed, reset) or
    /// nothing comes within `within`.
    async fn receive(&mut self, within: Duration) -> std::io::Result<RawResponse> {
        tokio::time::timeout(within, self.receive_inner())
            .await
            .map_err(|_| std::io::Error::other("no response in time"))?
    }

    async fn receive_inner(&mut self) -> std::io::Result<RawResponse> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| std::io::Error::other("no content-length"))?;
        while buf.len() < head_end + length {
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok(RawResponse {
            status,
            request_id: header("x-amzn-requestid").unwrap_or_default(),
            body: String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned(),
        })
    }

    async fn send_kms(&mut self, op: Op, key: &str) -> std::io::Result<()> {
        let (target, body) = match op {
            Op::Encrypt => (
                "TrentService.Encrypt",
                serde_json::json!({ "KeyId": key, "Plaintext": "c2VjcmV0LXBheWxvYWQ=" }),
            ),
            Op::GenerateDataKey => (
                "TrentService.GenerateDataKey",
                serde_json::json!({ "KeyId": key, "KeySpec": "AES_256" }),
            ),
        };
        self.send(
            "kms",
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", target),
            ],
            body.to_string().as_bytes(),
        )
        .await
    }
}

/// A KMS call on a fresh connection (so the gateway resolves its endpoint).
async fn raw_kms_call(addr: SocketAddr, op: Op, key: &str) -> Outcome {
    let r = async {
        let mut c = Raw::connect(addr).await?;
        c.send_kms(op, key).await?;
        c.receive(Duration::from_secs(30)).await
    }
    .await;
    outcome_of_raw(r)
}

fn outcome_of_raw(r: std::io::Result<RawResponse>) -> Outcome {
    match r {
        Ok(resp) if resp.status == 200 => {
            let v: serde_json::Value = serde_json::from_str(&resp.body).unwrap_or_default();
            assert!(
                v["CiphertextBlob"].is_string(),
                "a 200 without CiphertextBlob: {}",
                resp.body
            );
            Outcome::Ok(resp.request_id)
        }
        Ok(resp) => Outcome::Failed {
            failure: Failure::Service(resp.error_code()),
            leaked: leaks(&resp.body),
            request_id: Some(resp.request_id),
        },
        Err(e) => Outcome::Failed {
            failure: Failure::Transport(e.to_string()),
            leaked: false,
            request_id: None,
        },
    }
}

/// Whether an error body carries what only a success may (key material or a
/// ciphertext).
fn leaks(body: &str) -> bool {
    body.contains("Plaintext") || body.contains("CiphertextBlob")
}

// ---------------------------------------------------------------------------
// EC2 through the gateway (Query protocol, signed for `ec2`).

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text of every `<tag>...</tag>` (no attributes, no nesting of `tag`).
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].to_owned());
        rest = &after[j + close.len()..];
    }
    out
}

/// A signed EC2 call on a fresh connection to `addr`; panics unless HTTP 200.
async fn ec2(addr: SocketAddr, action: &str, params: &[(&str, &str)]) -> String {
    let mut body = format!("Action={action}&Version=2016-11-15");
    for (k, v) in params {
        body.push_str(&format!("&{k}={}", form_encode(v)));
    }
    let mut c = Raw::connect(addr).await.expect("connect to the gateway");
    c.send(
        "ec2",
        &[(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        body.as_bytes(),
    )
    .await
    .unwrap();
    let resp = c.receive(Duration::from_secs(30)).await.unwrap();
    assert_eq!(resp.status, 200, "EC2 {action}: {}", resp.body);
    resp.body
}

fn first(xml: &str, tag: &str) -> String {
    xml_values(xml, tag)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
}

/// A VPC 127.`octet`.0.0/16 with one subnet 127.`octet`.1.0/24, through the
/// gateway's EC2 API. Returns the subnet id.
async fn ec2_vpc_and_subnet(cluster: &Cluster, octet: u8) -> String {
    let gw = cluster.endpoint();
    let vpc = ec2(
        gw,
        "CreateVpc",
        &[("CidrBlock", &format!("127.{octet}.0.0/16"))],
    )
    .await;
    let vpc_id = first(&vpc, "vpcId");
    let subnet = ec2(
        gw,
        "CreateSubnet",
        &[
            ("VpcId", &vpc_id),
            ("CidrBlock", &format!("127.{octet}.1.0/24")),
            ("AvailabilityZone", "us-east-1a"),
        ],
    )
    .await;
    first(&subnet, "subnetId")
}

/// A KMS interface endpoint in `subnet_id` through the gateway's EC2 API.
/// Returns (vpce id, interface address with the gateway's port).
async fn ec2_endpoint(cluster: &Cluster, subnet_id: &str) -> (String, SocketAddr) {
    let gw = cluster.endpoint();
    let subnets = ec2(gw, "DescribeSubnets", &[("SubnetId.1", subnet_id)]).await;
    let vpc_id = first(&subnets, "vpcId");
    let created = ec2(
        gw,
        "CreateVpcEndpoint",
        &[
            ("VpcId", &vpc_id),
            ("ServiceName", "com.amazonaws.us-east-1.kms"),
            ("VpcEndpointType", "Interface"),
            ("SubnetId.1", subnet_id),
            ("PrivateDnsEnabled", "false"),
        ],
    )
    .await;
    let vpce = first(&created, "vpcEndpointId");
    let eni = first(&first(&created, "networkInterfaceIdSet"), "item");
    let enis = ec2(
        gw,
        "DescribeNetworkInterfaces",
        &[("NetworkInterfaceId.1", &eni)],
    )
    .await;
    let ip = first(&enis, "privateIpAddress");
    (vpce, format!("{ip}:{}", gw.port()).parse().unwrap())
}

// ---------------------------------------------------------------------------
// Load and its record.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Encrypt,
    GenerateDataKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Via {
    Public,
    Endpoint,
}

#[derive(Debug, Clone)]
enum Outcome {
    /// Succeeded, with its `x-amzn-RequestId`.
    Ok(String),
    /// Failed; `leaked`: the error's body carried Plaintext or CiphertextBlob;
    /// `request_id`: the gateway's, when it answered.
    Failed {
        failure: Failure,
        leaked: bool,
        request_id: Option<String>,
    },
}

#[derive(Debug, Clone)]
struct Call {
    worker: usize,
    via: Via,
    start: Instant,
    end: Instant,
    outcome: Outcome,
}

impl Call {
    fn latency(&self) -> Duration {
        self.end - self.start
    }

    fn ok(&self) -> Option<&str> {
        self.outcome.ok()
    }

    /// The request id of a failed call the gateway answered.
    fn failed_request_id(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Failed {
                request_id: Some(id),
                ..
            } => Some(id),
            _ => None,
        }
    }

    fn failure(&self) -> Option<(&Failure, bool)> {
        self.outcome.failure()
    }
}

impl Outcome {
    fn ok(&self) -> Option<&str> {
        match self {
            Outcome::Ok(id) => Some(id),
            Outcome::Failed { .. } => None,
        }
    }

    fn failure(&self) -> Option<(&Failure, bool)> {
        match self {
            Outcome::Ok(_) => None,
            Outcome::Failed {
                failure, leaked, ..
            } => Some((failure, *leaked)),
        }
    }
}

fn failed<E>(e: &SdkError<E, HttpResponse>) -> Outcome
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let body = e
        .raw_response()
        .and_then(|r| r.body().bytes())
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    Outcome::Failed {
        failure: Failure::of(e),
        leaked: leaks(&body),
        request_id: e.request_id().map(str::to_owned),
    }
}

async fn sdk_call(kms: &Client, op: Op, key: &str, rng: &mut Rng) -> Outcome {
    match op {
        Op::Encrypt => match kms
            .encrypt()
            .key_id(key)
            .plaintext(Blob::new(rng.bytes(32)))
            .send()
            .await
        {
            Ok(out) => {
                assert!(out.ciphertext_blob().is_some());
                Outcome::Ok(out.request_id().expect("x-amzn-RequestId").to_owned())
            }
            Err(e) => failed(&e),
        },
        Op::GenerateDataKey => match kms
            .generate_data_key()
            .key_id(key)
            .key_spec(DataKeySpec::Aes256)
            .send()
            .await
        {
            Ok(out) => {
                assert_eq!(out.plaintext().map(|p| p.as_ref().len()), Some(32));
                assert!(out.ciphertext_blob().is_some());
                Outcome::Ok(out.request_id().expect("x-amzn-RequestId").to_owned())
            }
            Err(e) => failed(&e),
        },
    }
}

/// Who sends the load: SDK clients (one pooled keep-alive client each) and
/// raw probes (a fresh connection per call), at the public endpoint or at an
/// endpoint's interface.
enum Sender {
    Sdk(Client, Via),
    Fresh(SocketAddr, Via),
}

struct Load {
    calls: Arc<Mutex<Vec<Call>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    workers: usize,
}

impl Load {
    /// Encrypt and GenerateDataKey (half each, at random) from every sender
    /// until stopped; a failed call pauses its worker `backoff`.
    fn start(senders: Vec<Sender>, key: &str, rng: &mut Rng, backoff: Duration) -> Self {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let workers = senders.len();
        let tasks = senders
            .into_iter()
            .enumerate()
            .map(|(worker, sender)| {
                let (calls, stop, key) = (calls.clone(), stop.clone(), key.to_owned());
                let mut rng = rng.fork();
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let op = if rng.range(0, 2) == 0 {
                            Op::Encrypt
                        } else {
                            Op::GenerateDataKey
                        };
                        let start = Instant::now();
                        let (outcome, via) = match &sender {
                            Sender::Sdk(kms, via) => {
                                (sdk_call(kms, op, &key, &mut rng).await, *via)
                            }
                            Sender::Fresh(addr, via) => (raw_kms_call(*addr, op, &key).await, *via),
                        };
                        let end = Instant::now();
                        let is_err = matches!(outcome, Outcome::Failed { .. });
                        calls.lock().unwrap().push(Call {
                            worker,
                            via,
                            start,
                            end,
                            outcome,
                        });
                        if is_err {
                            tokio::time::sleep(backoff).await;
                        }
                    }
                })
            })
            .collect();
        Self {
            calls,
            stop,
            tasks,
            workers,
        }
    }

    fn snapshot(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Until every worker has had a call succeed that started at or after
    /// `since`; returns how long that took from `since` (the slowest worker).
    async fn wait_all_recovered(&self, since: Instant, within: Duration) -> Duration {
        loop {
            let calls = self.snapshot();
            let mut recovered: HashMap<usize, Instant> = HashMap::new();
            for c in calls
                .iter()
                .filter(|c| c.start >= since && c.ok().is_some())
            {
                let e = recovered.entry(c.worker).or_insert(c.end);
                *e = (*e).min(c.end);
            }
            if recovered.len() == self.workers {
                return recovered.values().map(|t| *t - since).max().unwrap();
            }
            let missing: Vec<usize> = (0..self.workers)
                .filter(|w| !recovered.contains_key(w))
                .collect();
            assert!(
                since.elapsed() < within,
                "workers {missing:?} did not recover within {within:?}; their last calls: {:?}",
                calls
                    .iter()
                    .rev()
                    .filter(|c| missing.contains(&c.worker))
                    .take(4)
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(self) -> Vec<Call> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("load worker (an assertion failed)");
        }
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

/// One audit record: its `vpcEndpointId` and `errorCode` ("" for none).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    vpce: String,
    error: String,
}

type Records = HashMap<String, Vec<Rec>>;

/// Every audit record, by request id.
async fn audit_records(cluster: &Cluster) -> Records {
    let db = cluster.open_db(Svc::Audit).await.unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT request_id, cloudtrail_event FROM events")
            .fetch_all(&db)
            .await
            .unwrap();
    db.close().await;
    let mut out: Records = HashMap::new();
    for (id, json) in rows {
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        out.entry(id).or_default().push(Rec {
            vpce: text("vpcEndpointId"),
            error: text("errorCode"),
        });
    }
    out
}

/// The `vpcEndpointId` of each record of `request_id`.
fn endpoints(records: &Records, request_id: &str) -> Vec<String> {
    records
        .get(request_id)
        .map(|r| r.iter().map(|r| r.vpce.clone()).collect())
        .unwrap_or_default()
}

/// Every acknowledged call has exactly one record, and no request id has two.
/// Returns the records.
async fn assert_one_record_each(cluster: &Cluster, calls: &[Call]) -> Records {
    let records = audit_records(cluster).await;
    let acked: Vec<&str> = calls.iter().filter_map(Call::ok).collect();
    let unique: HashSet<&str> = acked.iter().copied().collect();
    assert_eq!(unique.len(), acked.len(), "request ids are unique");
    let missing: Vec<&&str> = acked
        .iter()
        .filter(|id| !records.contains_key(**id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged calls without an audit record, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let duplicated: Vec<(&String, usize)> = records
        .iter()
        .filter(|(_, r)| r.len() > 1)
        .map(|(id, r)| (id, r.len()))
        .collect();
    assert!(duplicated.is_empty(), "duplicated records: {duplicated:?}");
    records
}

/// Successful calls are recorded with the endpoint they came through: none
/// for the public endpoint, `vpce` for the interface.
fn assert_attribution(records: &Records, calls: &[Call], vpce: &str) -> usize {
    let mut n = 0;
    for c in calls {
        if let Some(id) = c.ok() {
            let want = match c.via {
                Via::Public => "",
                Via::Endpoint => vpce,
            };
            assert_eq!(
                endpoints(records, id),
                vec![want.to_owned()],
                "call {id} through {:?} recorded with the wrong endpoint",
                c.via
            );
            n += 1;
        }
    }
    n
}

/// How many failed calls have a record all the same (a record that became
/// durable after the gateway gave up on it: allowed, the client saw a
/// failure and a retry is a new request).
fn records_of_failed(records: &Records, calls: &[Call]) -> (usize, usize) {
    let recorded: Vec<&Vec<Rec>> = calls
        .iter()
        .filter_map(Call::failed_request_id)
        .filter_map(|id| records.get(id))
        .collect();
    let as_success = recorded
        .iter()
        .filter(|r| r.iter().any(|r| r.error.is_empty()))
        .count();
    (recorded.len(), as_success)
}

/// Successes that should not be while a dependency was down from `from` to
/// `to`: a call begun during the outage that ended before it was over, or
/// any call that ended later than `GRACE` into it (a call already past the
/// dependency when it went down may still finish).
fn successes_while_down(calls: &[Call], from: Instant, to: Instant) -> Vec<&Call> {
    const GRACE: Duration = Duration::from_secs(1);
    calls
        .iter()
        .filter(|c| c.ok().is_some())
        .filter(|c| c.end > from && c.end <= to && (c.start >= from || c.end >= from + GRACE))
        .collect()
}

async fn new_key(cluster: &Cluster) -> String {
    let out = cluster
        .client()
        .create_key()
        .send()
        .await
        .expect("CreateKey");
    out.key_metadata().unwrap().key_id().to_owned()
}

/// A KMS call through `addr` on fresh connections until one succeeds (e.g.
/// the listener of a new endpoint is not bound yet); returns its request id.
async fn raw_until_ok(addr: SocketAddr, key: &str, within: Duration) -> String {
    let t = Instant::now();
    loop {
        match raw_kms_call(addr, Op::Encrypt, key).await {
            Outcome::Ok(id) => return id,
            Outcome::Failed { failure, .. } => {
                assert!(
                    t.elapsed() < within,
                    "no success through {addr}: {failure:?}"
                );
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 1. Audit down for a minute under load.

/// Audit down for `KMS_CHAOS_AUDIT_DOWN_SECS` (60) under Encrypt and
/// GenerateDataKey load: SIGKILLed then restarted, or with
/// `KMS_CHAOS_AUDIT_DOWN_MODE=stop`, SIGSTOPped then SIGCONTed (hung: every
/// append waits for its deadline). No call succeeds while it is down, each
/// fails closed within the audit hop's deadline (AWS's dependency error, no
/// plaintext, no ciphertext), the same clients recover by themselves within
/// `RECOVERY_BOUND`, every acknowledged call has exactly one record and no
/// request id has two, and the gateway's descriptors and threads are back to
/// their baseline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_down_for_a_minute() {
    let _serial = serial().await;
    let t_test = Instant::now();
    let down = Duration::from_secs(iterations("AUDIT_DOWN_SECS", 60) as u64);
    let workers = iterations("AUDIT_DOWN_WORKERS", 4);
    let hang = std::env::var("KMS_CHAOS_AUDIT_DOWN_MODE").is_ok_and(|m| m == "stop");
    let mut rng = Rng::from_env("audit_down");
    let mut cluster = Cluster::start().await.expect("cluster");
    let key = new_key(&cluster).await;

    let mut senders: Vec<Sender> = (0..workers)
        .map(|_| Sender::Sdk(cluster.client(), Via::Public))
        .collect();
    senders.push(Sender::Fresh(cluster.endpoint(), Via::Public));
    let senders_n = senders.len();
    let load = Load::start(senders, &key, &mut rng, Duration::from_millis(50));
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Audit itself is a new process after a restart: compare the others.
    let except = (!hang).then_some(Svc::Audit);
    let baseline = Figures::take(&cluster, except);

    if hang {
        pause(&cluster, Svc::Audit).await;
    } else {
        cluster.kill(Svc::Audit);
    }
    let from = Instant::now();
    let mut peak = baseline.clone();
    while from.elapsed() < down {
        tokio::time::sleep(Duration::from_millis(500)).await;
        peak = peak.max(&Figures::take(&cluster, except));
    }
    let to = Instant::now();
    let restart = if hang {
        resume(&cluster, Svc::Audit);
        Duration::ZERO
    } else {
        cluster.restart(Svc::Audit).await.expect("audit restart")
    };
    let recovered = load.wait_all_recovered(to, RECOVERY_BOUND).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = Figures::take(&cluster, except);
    let calls = load.finish().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = Figures::take(&cluster, except);

    // While audit was down: attempts kept coming from every client, none
    // succeeded, each failed closed within the audit hop's deadline.
    let succeeded = successes_while_down(&calls, from, to);
    assert!(
        succeeded.is_empty(),
        "{} calls succeeded while audit was down, e.g. {:?}",
        succeeded.len(),
        succeeded.first()
    );
    let during: Vec<&Call> = calls
        .iter()
        .filter(|c| c.end > from && c.start < to)
        .collect();
    for w in 0..senders_n {
        let n = during.iter().filter(|c| c.worker == w).count();
        assert!(
            n >= 2,
            "worker {w} attempted only {n} calls during the outage"
        );
    }
    for c in &calls {
        if let Some((f, leaked)) = c.failure() {
            assert!(
                matches!(f, Failure::Service(code) if code == "DependencyTimeoutException" || code == "KMSInternalException"),
                "not a dependency failure: {f:?}"
            );
            assert!(
                !leaked,
                "a failure's body carried key material or a ciphertext: {c:?}"
            );
        }
    }
    let failed_latencies: Vec<Duration> = during
        .iter()
        .filter(|c| c.ok().is_none())
        .map(|c| c.latency())
        .collect();
    let slowest = calls.iter().map(Call::latency).max().unwrap_or_default();
    assert!(
        slowest <= DATA_DEADLINE + MARGIN,
        "a call took {slowest:?} (audit hop deadline {DATA_DEADLINE:?} + {MARGIN:?})"
    );
    assert!(recovered < RECOVERY_BOUND, "recovery took {recovered:?}");
    // Every acknowledged call has exactly one record; no duplicates at all.
    let records = assert_one_record_each(&cluster, &calls).await;
    let acked = calls.iter().filter(|c| c.ok().is_some()).count();
    let failed = calls.len() - acked;
    let (failed_recorded, failed_recorded_ok) = records_of_failed(&records, &calls);
    // Nothing leaked: same descriptors and threads under the same load.
    after.assert_near(&baseline);
    eprintln!(
        "[audit_down] audit {} for {:.1} s, {senders_n} clients: {} calls in flight or begun during the outage, {} failed closed (latency {}), none succeeded; {} {:.3} s; every client succeeded again within {:.3} s; {acked} acknowledged, {failed} failed in all ({failed_recorded} of the failed have a record anyway, {failed_recorded_ok} of those without errorCode); {} audit records, one per acknowledged call, no duplicates; fds/threads baseline {baseline}, peak during outage {peak}, after recovery {after}, idle {idle}; test {:.1} s",
        if hang { "SIGSTOPped" } else { "SIGKILLed" },
        (to - from).as_secs_f64(),
        during.len(),
        failed_latencies.len(),
        summary(&failed_latencies),
        if hang {
            "SIGCONT"
        } else {
            "restart to SERVING"
        },
        restart.as_secs_f64(),
        recovered.as_secs_f64(),
        records.len(),
        t_test.elapsed().as_secs_f64()
    );
    cluster.keep_if_asked();
}

// ---------------------------------------------------------------------------
// 2. A hung dependency (SIGSTOP) under load.

/// SIGSTOP `svc` for `KMS_CHAOS_STOP_SECS` (8) under load from pooled SDK
/// clients and fresh-connection probes, at the public endpoint and at a VPC
/// endpoint's interface; then SIGCONT.
async fn sigstop_campaign(svc: Svc) {
    let name = format!("sigstop_{}", svc.name());
    let t_test = Instant::now();
    let stop_for = Duration::from_secs(iterations("STOP_SECS", 8) as u64);
    let mut rng = Rng::from_env(&name);
    let cluster = Cluster::start().await.expect("cluster");
    let key = new_key(&cluster).await;
    let octet = rng.range(100, 250) as u8;
    let subnet = ec2_vpc_and_subnet(&cluster, octet).await;
    let (vpce, interface) = ec2_endpoint(&cluster, &subnet).await;
    raw_until_ok(interface, &key, Duration::from_secs(30)).await;

    let mut senders = vec![
        Sender::Sdk(cluster.client(), Via::Public),
        Sender::Sdk(cluster.client(), Via::Public),
        Sender::Sdk(cluster.client_at(interface), Via::Endpoint),
        Sender::Sdk(cluster.client_at(interface), Via::Endpoint),
        Sender::Fresh(interface, Via::Endpoint),
    ];
    // Fresh-connection probes at the public endpoint: each new connection
    // asks the registry which endpoint it belongs to.
    for _ in 0..iterations("STOP_FRESH_PROBES", 1) {
        senders.push(Sender::Fresh(cluster.endpoint(), Via::Public));
    }
    let workers = senders.len();
    let load = Load::start(senders, &key, &mut rng, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let baseline = Figures::take(&cluster, None);

    pause(&cluster, svc).await;
    let from = Instant::now();
    let mut peak = baseline.clone();
    while from.elapsed() < stop_for {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak = peak.max(&Figures::take(&cluster, None));
    }
    let to = Instant::now();
    resume(&cluster, svc);
    let recovered = load.wait_all_recovered(to, RECOVERY_BOUND).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = Figures::take(&cluster, None);
    let calls = load.finish().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = Figures::take(&cluster, None);

    // The calls the stop touched: in flight at SIGSTOP, or begun before SIGCONT.
    let during: Vec<&Call> = calls
        .iter()
        .filter(|c| c.end > from && c.start < to)
        .collect();
    let ok_during = |via: Via| {
        during
            .iter()
            .filter(|c| c.via == via && c.ok().is_some())
            .count()
    };
    let failed_during = |via: Via| {
        during
            .iter()
            .filter(|c| c.via == via && c.ok().is_none())
            .count()
    };
    match svc {
        // With the registry hung, the public endpoint keeps serving (a new
        // connection waits for the registry's deadline, then is the public
        // endpoint's), and the interface serves only connections whose
        // endpoint is known (checked below by attribution).
        Svc::Registry => {
            assert_eq!(
                failed_during(Via::Public),
                0,
                "the public endpoint failed while the registry hung: {:?}",
                during
                    .iter()
                    .find(|c| c.via == Via::Public && c.ok().is_none())
            );
            assert!(ok_during(Via::Public) > 0, "no public call during the stop");
        }
        // Fail closed: with authz, the keystore or audit hung, no call
        // succeeds that began during the stop and ended before SIGCONT, nor
        // any that ended later than `GRACE` into it (a call that was past
        // the hung service at SIGSTOP may still finish); and every worker saw
        // the failure.
        _ => {
            let ok = successes_while_down(&calls, from, to);
            assert!(
                ok.is_empty(),
                "{} calls succeeded while {} hung, e.g. {:?}",
                ok.len(),
                svc.name(),
                ok.first()
            );
            let failed_workers: HashSet<usize> = during
                .iter()
                .filter(|c| c.ok().is_none())
                .map(|c| c.worker)
                .collect();
            assert_eq!(
                failed_workers.len(),
                workers,
                "not every worker was refused while {} hung",
                svc.name()
            );
        }
    }
    for c in &calls {
        if let Some((f, leaked)) = c.failure() {
            assert!(f.is_dependency_failure(), "not a dependency failure: {c:?}");
            assert!(
                !leaked,
                "a failure's body carried key material or a ciphertext: {c:?}"
            );
            // A failure on a connection the gateway closed (transport) is
            // only the interface's fail-closed answer while the registry
            // cannot resolve a new connection.
            if let Failure::Transport(_) = f {
                assert!(
                    svc == Svc::Registry && c.via == Via::Endpoint,
                    "transport failure: {c:?}"
                );
            }
        }
    }
    // Every hop has a deadline: no call waited on the hung service longer
    // than its hop's deadline (plus the rest of the call).
    let deadline = match svc {
        Svc::Authz | Svc::Registry => CONTROL_DEADLINE,
        _ => DATA_DEADLINE,
    };
    let latencies: Vec<Duration> = calls.iter().map(Call::latency).collect();
    let slowest = calls.iter().max_by_key(|c| c.latency()).unwrap();
    assert!(
        slowest.latency() <= deadline + MARGIN,
        "a call took {:?} with {} hung (deadline {deadline:?} + {MARGIN:?}): {slowest:?}",
        slowest.latency(),
        svc.name()
    );
    assert!(recovered < RECOVERY_BOUND, "recovery took {recovered:?}");
    let records = assert_one_record_each(&cluster, &calls).await;
    let attributed = assert_attribution(&records, &calls, &vpce);
    let failed_recorded = records_of_failed(&records, &calls);
    after.assert_near(&baseline);
    let failed_latencies: Vec<Duration> = during
        .iter()
        .filter(|c| c.ok().is_none())
        .map(|c| c.latency())
        .collect();
    eprintln!(
        "[{name}] stopped {:.1} s; calls in flight or begun during the stop: public {} ok / {} failed, endpoint {} ok / {} failed; failed-call latency {}; all calls {}; every worker succeeded again {:.3} s after SIGCONT; {} calls, {attributed} acknowledged and attributed correctly, one record each ({} failed calls have a record anyway, {} of them without errorCode); fds/threads baseline {baseline}, peak {peak}, after {after}, idle {idle}; test {:.1} s",
        (to - from).as_secs_f64(),
        ok_during(Via::Public),
        failed_during(Via::Public),
        ok_during(Via::Endpoint),
        failed_during(Via::Endpoint),
        summary(&failed_latencies),
        summary(&latencies),
        recovered.as_secs_f64(),
        calls.len(),
        failed_recorded.0,
        failed_recorded.1,
        t_test.elapsed().as_secs_f64()
    );
    cluster.keep_if_asked();
}

/// authz hung: never an allow, each call refused within authz's deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authz_sigstop_never_allows() {
    let _serial = serial().await;
    sigstop_campaign(Svc::Authz).await;
}

/// registry hung: the public endpoint serves, interface connections are
/// served with their own endpoint's identity or refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_sigstop_keeps_identity() {
    let _serial = serial().await;
    sigstop_campaign(Svc::Registry).await;
}

/// keystore hung: fail closed within the keystore's deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystore_sigstop_fails_closed() {
    let _serial = serial().await;
    sigstop_campaign(Svc::Keystore).await;
}

/// audit hung: fail closed within audit's deadline, no plaintext returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_sigstop_fails_closed() {
    let _serial = serial().await;
    sigstop_campaign(Svc::Audit).await;
}

// ---------------------------------------------------------------------------
// 2b. A partition that accepts connections and never answers.

/// A listener on `addr` that accepts every connection and holds it open
/// without reading or writing: a peer behind a partition (or a hung process
/// whose connections must be made anew: TLS handshakes never finish).
async fn black_hole(addr: SocketAddr) -> tokio::task::JoinHandle<()> {
    let t = Instant::now();
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) => {
                assert!(t.elapsed() < Duration::from_secs(10), "binding {addr}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    })
}

/// Each backend in turn SIGKILLed and its port taken by a black hole for
/// `KMS_CHAOS_HOLE_SECS` (6) under load with new connections: the gateway's
/// (and the keystore's) connections to it must be made anew and never
/// complete. Every call still ends within its hop's deadline plus the margin,
/// fails closed (or, for the registry, is served with the right identity),
/// and everything recovers once the service is back.
///
/// This found a bug, fixed in `kms_telemetry::local::Transport`: a hop's
/// deadline (the channel's `Endpoint::timeout`) started only once the channel
/// had a connection, so a call that needed a new one waited behind the
/// channel's connection attempts, each bounded only by the 2 s connect timeout
/// (the TLS handshake never finishes): with the registry black-holed, a new
/// connection's `ResolveListener` took the whole outage (6 s; 18 s with 9
/// concurrent new connections after a 70 s SIGSTOP). The transport now bounds
/// the whole call by the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_holed_dependency_calls_stay_within_deadline() {
    let _serial = serial().await;
    let t_test = Instant::now();
    let hole_for = Duration::from_secs(iterations("HOLE_SECS", 6) as u64);
    let mut rng = Rng::from_env("black_hole");
    let mut cluster = Cluster::start().await.expect("cluster");
    let key = new_key(&cluster).await;
    let octet = rng.range(100, 250) as u8;
    let subnet = ec2_vpc_and_subnet(&cluster, octet).await;
    let (vpce, interface) = ec2_endpoint(&cluster, &subnet).await;
    raw_until_ok(interface, &key, Duration::from_secs(30)).await;
    let mut report = Vec::new();
    let mut late = Vec::new();
    for svc in [Svc::Registry, Svc::Authz, Svc::Keystore, Svc::Audit] {
        let mut senders = vec![
            Sender::Sdk(cluster.client(), Via::Public),
            Sender::Sdk(cluster.client_at(interface), Via::Endpoint),
            Sender::Fresh(interface, Via::Endpoint),
        ];
        for _ in 0..iterations("HOLE_FRESH_PROBES", 4) {
            senders.push(Sender::Fresh(cluster.endpoint(), Via::Public));
        }
        let load = Load::start(senders, &key, &mut rng, Duration::from_millis(20));
        tokio::time::sleep(Duration::from_millis(500)).await;
        cluster.kill(svc);
        let hole = black_hole(cluster.addr(svc)).await;
        let from = Instant::now();
        tokio::time::sleep(hole_for).await;
        hole.abort();
        let _ = hole.await;
        let to = Instant::now();
        cluster.restart(svc).await.expect("restart");
        let recovered = load.wait_all_recovered(to, RECOVERY_BOUND).await;
        let calls = load.finish().await;
        let deadline = match svc {
            Svc::Authz | Svc::Registry => CONTROL_DEADLINE,
            _ => DATA_DEADLINE,
        };
        if svc != Svc::Registry {
            let ok = successes_while_down(&calls, from, to);
            assert!(
                ok.is_empty(),
                "succeeded with {} unreachable: {ok:?}",
                svc.name()
            );
        }
        for c in &calls {
            if let Some((f, leaked)) = c.failure() {
                assert!(f.is_dependency_failure(), "{c:?}");
                assert!(!leaked, "{c:?}");
            }
        }
        let records = assert_one_record_each(&cluster, &calls).await;
        assert_attribution(&records, &calls, &vpce);
        let latencies: Vec<Duration> = calls.iter().map(Call::latency).collect();
        report.push(format!(
            "{}: calls {}, recovered {:.3} s",
            svc.name(),
            summary(&latencies),
            recovered.as_secs_f64()
        ));
        let slowest = calls.iter().max_by_key(|c| c.latency()).unwrap();
        if slowest.latency() > deadline + MARGIN {
            late.push(format!(
                "a call took {:?} with {} black-holed (deadline {deadline:?} + {MARGIN:?}): {slowest:?}",
                slowest.latency(),
                svc.name()
            ));
        }
    }
    eprintln!(
        "[black_hole] each backend black-holed {:.1} s: {}; test {:.1} s",
        hole_for.as_secs_f64(),
        report.join("; "),
        t_test.elapsed().as_secs_f64()
    );
    assert!(late.is_empty(), "{late:#?}");
    cluster.keep_if_asked();
}

// ---------------------------------------------------------------------------
// 3. Stale endpoint entries.

/// The registry's gRPC API, for changes made while the gateway is hung (over
/// the internal mutual TLS, as the gateway: the harness's channel).
fn registry_client(cluster: &Cluster) -> kms_chaos::Registry {
    cluster.registry().expect("registry channel")
}

/// Replace endpoint `old` by a new one in `subnet_id`, at the registry
/// directly. Returns the new (vpce id, interface IP).
async fn replace_at_registry(cluster: &Cluster, old: &str, subnet_id: &str) -> (String, String) {
    use kms_proto::registry::v1::{DeleteVpcEndpointsRequest, DescribeSubnetsRequest};
    let account = ACCOUNT_A.0.to_owned();
    let mut reg = registry_client(cluster);
    let unsuccessful = reg
        .delete_vpc_endpoints(DeleteVpcEndpointsRequest {
            owner_account_id: account.clone(),
            vpc_endpoint_ids: vec![old.to_owned()],
        })
        .await
        .unwrap()
        .into_inner()
        .unsuccessful;
    assert!(unsuccessful.is_empty(), "{unsuccessful:?}");
    let subnets = reg
        .describe_subnets(DescribeSubnetsRequest {
            owner_account_id: account.clone(),
            subnet_ids: vec![subnet_id.to_owned()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let vpc_id = subnets.subnets[0].vpc_id.clone();
    kms_chaos::create_endpoint_at_registry(&mut reg, &vpc_id, subnet_id).await
}

/// One request and its response on a connection the test holds.
async fn on_held(conn: &mut Raw, key: &str) -> Outcome {
    let r = async {
        conn.send_kms(Op::Encrypt, key).await?;
        conn.receive(Duration::from_secs(30)).await
    }
    .await;
    outcome_of_raw(r)
}

/// The endpoint a successful outcome was recorded with.
fn endpoint_of(records: &Records, o: &Outcome) -> Option<String> {
    match o {
        Outcome::Ok(id) => {
            let r = endpoints(records, id);
            assert_eq!(r.len(), 1, "{id}: {r:?}");
            Some(r[0].clone())
        }
        Outcome::Failed { .. } => None,
    }
}

/// The life of one endpoint on the shared address, as the test saw it.
struct Generation {
    vpce: String,
    /// When its creation was asked for.
    created: Instant,
    /// When the gateway could know it was gone: the deletion's answer, or the
    /// gateway's SIGCONT for the one deleted while the gateway was hung.
    gone: Option<Instant>,
}

/// VPC endpoints deleted while a client holds a keep-alive connection to the
/// listener, each followed by a new endpoint on the same (reused) address,
/// `KMS_CHAOS_STALE_CYCLES` (3) times; then the last one replaced while the
/// gateway is hung (SIGSTOP: it cannot see the registry's snapshots) with
/// requests waiting in its sockets. Load through the address runs throughout.
/// No request is ever recorded with an endpoint other than the one that
/// owned the address when it was sent (a load call's endpoint must have been
/// asked for before the call began, and not yet be known gone); nothing is
/// served on a held connection of a deleted endpoint; while no endpoint has
/// the address nothing is served; each new endpoint's requests carry its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_endpoint_never_attributed_to_another() {
    let _serial = serial().await;
    let t_test = Instant::now();
    let cycles = iterations("STALE_CYCLES", 3);
    let mut rng = Rng::from_env("stale_endpoint");
    let cluster = Cluster::start().await.expect("cluster");
    let gw = cluster.endpoint();
    let key = new_key(&cluster).await;
    let octet = rng.range(100, 250) as u8;
    let subnet = ec2_vpc_and_subnet(&cluster, octet).await;
    let created = Instant::now();
    let (vpce, addr) = ec2_endpoint(&cluster, &subnet).await;
    let mut generations = vec![Generation {
        vpce,
        created,
        gone: None,
    }];
    // (request id, the endpoint it must be recorded with).
    let mut expected: Vec<(String, String)> = vec![(
        raw_until_ok(addr, &key, Duration::from_secs(30)).await,
        generations[0].vpce.clone(),
    )];
    let load = Load::start(
        vec![
            Sender::Sdk(cluster.client_at(addr), Via::Endpoint),
            Sender::Fresh(addr, Via::Endpoint),
        ],
        &key,
        &mut rng,
        Duration::from_millis(20),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = Figures::take(&cluster, None);

    // Phases 1 and 2, `cycles` times: DeleteVpcEndpoints through the gateway
    // while a client holds a connection, then a new endpoint in the subnet.
    let mut refused_after = Vec::new();
    let mut back_after = Vec::new();
    let mut held_outcomes = Vec::new();
    let mut empty_windows = Vec::new();
    for _ in 0..cycles {
        let current = generations.last().unwrap().vpce.clone();
        let mut held = Raw::connect(addr).await.unwrap();
        let before = on_held(&mut held, &key).await;
        let id = before.ok().expect("held connection served").to_owned();
        expected.push((id, current.clone()));
        let deleted = ec2(gw, "DeleteVpcEndpoints", &[("VpcEndpointId.1", &current)]).await;
        let t_deleted = Instant::now();
        generations.last_mut().unwrap().gone = Some(t_deleted);
        assert!(
            xml_values(&deleted, "resourceId").is_empty(),
            "deletion unsuccessful: {deleted}"
        );
        let after_delete = on_held(&mut held, &key).await;
        assert!(
            after_delete.ok().is_none(),
            "served on the held connection of deleted {current}: {after_delete:?}"
        );
        held_outcomes.push(after_delete);
        // The listener goes away: new connections are refused.
        loop {
            if Raw::connect(addr).await.is_err() {
                refused_after.push(t_deleted.elapsed());
                break;
            }
            assert!(
                t_deleted.elapsed() < RECOVERY_BOUND,
                "the deleted endpoint's listener still accepts connections"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // No endpoint has the address for a moment, under load.
        let empty_from = Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t_create = Instant::now();
        empty_windows.push((empty_from, t_create));
        let (vpce, new_addr) = ec2_endpoint(&cluster, &subnet).await;
        assert_eq!(
            new_addr, addr,
            "the registry reuses the freed interface address"
        );
        assert!(generations.iter().all(|g| g.vpce != vpce));
        generations.push(Generation {
            vpce: vpce.clone(),
            created: t_create,
            gone: None,
        });
        expected.push((
            raw_until_ok(addr, &key, Duration::from_secs(30)).await,
            vpce,
        ));
        back_after.push(load.wait_all_recovered(t_create, RECOVERY_BOUND).await);
        // The held connection is gone for good.
        let later = on_held(&mut held, &key).await;
        assert!(later.ok().is_none(), "{later:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Phase 3: the gateway hangs; requests wait in its sockets (a held
    // connection, and a new one in the listener's backlog) while the endpoint
    // is replaced at the registry; another new connection after that.
    let current = generations.last().unwrap().vpce.clone();
    let mut held = Raw::connect(addr).await.unwrap();
    let id = on_held(&mut held, &key)
        .await
        .ok()
        .expect("held connection served")
        .to_owned();
    expected.push((id, current.clone()));
    pause(&cluster, Svc::Gateway).await;
    held.send_kms(Op::Encrypt, &key).await.unwrap();
    let mut early = Raw::connect(addr).await.unwrap();
    early.send_kms(Op::Encrypt, &key).await.unwrap();
    let t_replace = Instant::now();
    let (replacement, ip) = replace_at_registry(&cluster, &current, &subnet).await;
    assert_eq!(
        ip,
        addr.ip().to_string(),
        "the replacement reuses the address"
    );
    let mut late = Raw::connect(addr).await.unwrap();
    late.send_kms(Op::Encrypt, &key).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t_gateway_back = Instant::now();
    resume(&cluster, Svc::Gateway);
    generations.last_mut().unwrap().gone = Some(t_gateway_back);
    generations.push(Generation {
        vpce: replacement.clone(),
        created: t_replace,
        gone: None,
    });
    let within = Duration::from_secs(30);
    let held_r = outcome_of_raw(held.receive(within).await);
    let early_r = outcome_of_raw(early.receive(within).await);
    let late_r = outcome_of_raw(late.receive(within).await);
    expected.push((
        raw_until_ok(addr, &key, Duration::from_secs(30)).await,
        replacement.clone(),
    ));
    let hung_back = load
        .wait_all_recovered(t_gateway_back, RECOVERY_BOUND)
        .await;
    let held_later = on_held(&mut held, &key).await;
    assert!(
        held_later.ok().is_none(),
        "served on the held connection of a replaced endpoint: {held_later:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = Figures::take(&cluster, None);
    let calls = load.finish().await;

    let records = assert_one_record_each(&cluster, &calls).await;
    for (id, vpce) in &expected {
        assert_eq!(&endpoints(&records, id), &vec![vpce.clone()], "{id}");
    }
    // Sent while `current` owned the address: that one or refused.
    for (what, o) in [("held", &held_r), ("early", &early_r)] {
        let e = endpoint_of(&records, o);
        assert!(
            e.is_none() || e.as_deref() == Some(&*current),
            "{what} connection's request (sent while {current} existed) recorded with {e:?}"
        );
    }
    // Sent after `current` was deleted, on a connection its listener
    // accepted: never `current` (deleted), nor any earlier one.
    let late_e = endpoint_of(&records, &late_r);
    assert!(
        late_e.is_none() || late_e.as_deref() == Some(&*replacement),
        "late connection recorded with {late_e:?}"
    );
    // The load: each success is recorded with an endpoint that existed, as
    // far as the gateway could know, when the call began.
    let mut by_generation = vec![0usize; generations.len()];
    let mut last_start_before_gone: Option<Duration> = None;
    for c in &calls {
        let Some(id) = c.ok() else { continue };
        let e = endpoints(&records, id).remove(0);
        let (i, g) = generations
            .iter()
            .enumerate()
            .find(|(_, g)| g.vpce == e)
            .unwrap_or_else(|| panic!("call {id} recorded with unknown endpoint {e:?}"));
        by_generation[i] += 1;
        assert!(
            c.start >= g.created && g.gone.is_none_or(|gone| c.start < gone),
            "call {id} recorded with {e} began outside its lifetime ({:?} after creation was asked, gone {:?} before the call)",
            c.start.checked_duration_since(g.created),
            g.gone.and_then(|gone| c.start.checked_duration_since(gone))
        );
        if let Some(gone) = g.gone {
            let margin = gone - c.start;
            last_start_before_gone = Some(last_start_before_gone.map_or(margin, |m| m.min(margin)));
        }
    }
    let empty: Vec<&Call> = calls
        .iter()
        .filter(|c| {
            empty_windows
                .iter()
                .any(|(from, to)| c.start >= *from && c.end <= *to)
        })
        .collect();
    assert!(
        empty.iter().all(|c| c.ok().is_none()),
        "a call succeeded while no endpoint had the address"
    );
    after.assert_near(&baseline);
    let show = |o: &Outcome| match endpoint_of(&records, o) {
        Some(e) => format!("served as {e}"),
        None => format!("refused ({:?})", o.failure().map(|f| f.0)),
    };
    eprintln!(
        "[stale_endpoint] address {addr} held by {} endpoints in turn; {cycles} deletions through EC2 with a held connection: held request after the deletion {}; listener refusing {}; load served by the new endpoint {}; gateway hung {:.3} s while {current} was replaced by {replacement}: held connection {}, early new connection {}, late new connection {}; load back {:.3} s after SIGCONT; load successes per endpoint {by_generation:?} over {} calls (closest start before its endpoint was gone: {:?}; {} calls while no endpoint had the address, all refused); fds/threads {baseline} -> {after}; test {:.1} s",
        generations.len(),
        {
            let mut kinds: Vec<String> = held_outcomes.iter().map(&show).collect();
            kinds.sort();
            kinds.dedup();
            format!("always refused: {}", kinds.join(" or "))
        },
        summary(&refused_after),
        summary(&back_after),
        (t_gateway_back - t_replace).as_secs_f64(),
        show(&held_r),
        show(&early_r),
        show(&late_r),
        hung_back.as_secs_f64(),
        calls.len(),
        last_start_before_gone,
        empty.len(),
        t_test.elapsed().as_secs_f64()
    );
    cluster.keep_if_asked();
}
