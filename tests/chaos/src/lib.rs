//! Crash-test harness: the five services as separate processes (their real
//! binaries, `kms-registry`, `kms-authz`, `kms-keystore`, `kms-audit`,
//! `kms-gateway`) on 127.0.0.1 ports chosen at run time, each with its own
//! database in one temporary data dir; any of them can be SIGKILLed and
//! restarted on the same port and data. Clients are the AWS SDK for Rust.
//! The services talk to each other over mutual TLS, with the internal
//! certificates made once per cluster under `<data dir>/internal-tls/`.
//!
//! The binaries are taken from the target dir this test runs from
//! (`target/<profile>/`), after a `cargo build` of them (a no-op when they are
//! fresh), so the tests never run stale services. `KMS_CHAOS_BIN_DIR` points
//! at prebuilt binaries instead (no build).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_credential_types::Credentials;
use aws_sdk_kms::Client;
use aws_sdk_kms::config::{BehaviorVersion, Region};

/// The documentation account 111122223333's root key pair, bootstrapped by
/// authz on a fresh database.
pub const ACCOUNT_A: (&str, &str, &str) = (
    "111122223333",
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
);

/// The documentation account 444455556666's root key pair (also bootstrapped).
pub const ACCOUNT_B: (&str, &str, &str) = (
    "444455556666",
    "AKIAI44QH8DHBEXAMPLE",
    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
);

/// How long a (re)started service may take to report SERVING. Generous: the
/// machine running the tests may be busy.
pub const START_DEADLINE: Duration = Duration::from_secs(60);

/// The iteration count for a test: `KMS_CHAOS_<name>` or the CI default.
pub fn iterations(name: &str, default: usize) -> usize {
    std::env::var(format!("KMS_CHAOS_{name}"))
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One lock for the whole test binary: every test runs five processes, and
/// running two clusters side by side on two busy cores only adds noise.
/// (A tokio mutex: no poisoning when a test fails, and it works across the
/// tests' runtimes.)
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// A small deterministic PRNG (xorshift64*), seeded from `KMS_CHAOS_SEED` or
/// the clock; the seed is printed so a failing run can be replayed.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn from_env(test: &str) -> Self {
        let seed = std::env::var("KMS_CHAOS_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0x9e37_79b9)
            });
        eprintln!("[{test}] KMS_CHAOS_SEED={seed}");
        Self(seed | 1)
    }

    pub fn fork(&mut self) -> Self {
        Self(self.next_u64() | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..hi` (hi > lo).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// The services, in start order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Svc {
    Registry,
    Authz,
    Keystore,
    Audit,
    Gateway,
}

impl Svc {
    pub const ALL: [Svc; 5] = [
        Svc::Registry,
        Svc::Authz,
        Svc::Keystore,
        Svc::Audit,
        Svc::Gateway,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Svc::Registry => "registry",
            Svc::Authz => "authz",
            Svc::Keystore => "keystore",
            Svc::Audit => "audit",
            Svc::Gateway => "gateway",
        }
    }

    fn binary(self) -> String {
        format!("kms-{}", self.name())
    }
}

/// Where the service binaries are, built fresh once per test process.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| match std::env::var_os("KMS_CHAOS_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let dir = profile_dir();
            build_binaries(&dir);
            dir
        }
    })
}

/// `target/<profile>`: the test executable is `target/<profile>/deps/<name>-<hash>`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test executable has a parent dir");
    deps.parent()
        .expect("deps dir has a parent (the profile dir)")
        .to_path_buf()
}

/// `cargo build` of the five service binaries into the profile dir this test
/// was built in (a no-op when they are up to date).
fn build_binaries(profile_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = profile_dir
        .parent()
        .expect("profile dir has a parent (the target dir)");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("build")
        .arg("--bins")
        .env("CARGO_TARGET_DIR", target_dir);
    for s in Svc::ALL {
        cmd.arg("-p").arg(s.binary());
    }
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.arg("--profile").arg(other);
        }
    }
    let started = Instant::now();
    let out = cmd.output().expect("running cargo build for the services");
    assert!(
        out.status.success(),
        "cargo build of the service binaries failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "service binaries ready in {} ({:.1} s)",
        profile_dir.display(),
        started.elapsed().as_secs_f64()
    );
}

/// A free port on 127.0.0.1 (bound, read and released; each service keeps its
/// port across restarts).
fn free_port() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

struct Proc {
    addr: SocketAddr,
    child: Option<Child>,
    starts: u32,
}

/// Five service processes on one data dir.
pub struct Cluster {
    dir: tempfile::TempDir,
    procs: HashMap<Svc, Proc>,
    /// Extra environment of every service process (e.g. the OTLP endpoint).
    env: Vec<(String, String)>,
}

impl Cluster {
    /// Start all five (each backend SERVING before the next starts, the
    /// gateway last), then wait until a signed call succeeds end to end.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_env(&[]).await
    }

    /// [`Cluster::start`], with extra environment for every service process.
    pub async fn start_with_env(env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let bins = bin_dir();
        for s in Svc::ALL {
            let b = bins.join(s.binary());
            anyhow::ensure!(b.is_file(), "{} is missing", b.display());
        }
        let dir = tempfile::Builder::new().prefix("kms-chaos-").tempdir()?;
        let mut procs = HashMap::new();
        for s in Svc::ALL {
            procs.insert(
                s,
                Proc {
                    addr: free_port()?,
                    child: None,
                    starts: 0,
                },
            );
        }
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        kms_stack::tls::ensure_internal(&dir.path().join("internal-tls"))?;
        let mut c = Self { dir, procs, env };
        for s in Svc::ALL {
            c.start_one(s).await?;
        }
        c.wait_end_to_end(START_DEADLINE).await?;
        Ok(c)
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn addr(&self, s: Svc) -> SocketAddr {
        self.procs[&s].addr
    }

    /// The public KMS endpoint.
    pub fn endpoint(&self) -> SocketAddr {
        self.addr(Svc::Gateway)
    }

    pub fn db_path(&self, s: Svc) -> PathBuf {
        self.dir.path().join(format!("{}.db", s.name()))
    }

    /// The internal CA (`ca.pem`) and every role's certificate and key.
    pub fn internal_tls_dir(&self) -> PathBuf {
        self.dir.path().join("internal-tls")
    }

    /// A channel to a backend over mutual TLS as the gateway's role (the one
    /// caller every backend serves), e.g. to drive the registry's API.
    pub fn internal_channel(&self, s: Svc) -> anyhow::Result<tonic::transport::Channel> {
        use kms_telemetry::tls::{InternalTls, Role};
        let server: Role = s.name().parse().map_err(anyhow::Error::msg)?;
        let gateway = InternalTls::load(&self.internal_tls_dir(), Role::Gateway)?;
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr(s)))?
            .connect_timeout(Duration::from_secs(2));
        Ok(gateway.connect_lazy(&endpoint, server))
    }

    pub fn log_path(&self, s: Svc) -> PathBuf {
        self.dir.path().join(format!("{}.log", s.name()))
    }

    fn args(&self, s: Svc) -> Vec<String> {
        let url = |x: Svc| format!("http://{}", self.addr(x));
        let db = format!("sqlite://{}", self.db_path(s).display());
        let mut a = vec![
            "--listen".to_string(),
            self.addr(s).to_string(),
            "--internal-tls-dir".into(),
            self.internal_tls_dir().display().to_string(),
        ];
        match s {
            Svc::Registry | Svc::Authz | Svc::Audit => {
                a.extend(["--database-url".into(), db]);
            }
            Svc::Keystore => a.extend([
                "--database-url".into(),
                db,
                "--dev".into(),
                "--root-key-file".into(),
                self.dir.path().join("root.key").display().to_string(),
                "--authz-url".into(),
                url(Svc::Authz),
            ]),
            Svc::Gateway => a.extend([
                "--authz-url".into(),
                url(Svc::Authz),
                "--keystore-url".into(),
                url(Svc::Keystore),
                "--audit-url".into(),
                url(Svc::Audit),
                "--registry-url".into(),
                url(Svc::Registry),
                // The campaigns call without SDK retries, far above AWS's
                // CreateKey quota (5/s): no request quotas here.
                "--quota-scale".into(),
                "0".into(),
            ]),
        }
        a
    }

    fn spawn(&mut self, s: Svc) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(s))?;
        let bin = bin_dir().join(s.binary());
        let mut cmd = Command::new(&bin);
        cmd.args(self.args(s))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info");
        // Only the flags above (and the cluster's own environment) configure
        // the service: nothing KMS_* or OTEL_* leaks in from the test's shell.
        for (k, _) in std::env::vars_os() {
            let name = k.to_string_lossy();
            if name.starts_with("KMS_") || name.starts_with("OTEL_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let p = self.procs.get_mut(&s).expect("known service");
        p.child = Some(child);
        p.starts += 1;
        Ok(())
    }

    async fn start_one(&mut self, s: Svc) -> anyhow::Result<()> {
        self.spawn(s)?;
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(child) = self.procs.get_mut(&s).and_then(|p| p.child.as_mut())
                && let Some(status) = child.try_wait()?
            {
                // Typically the port was still held by the killed instance: retry.
                if Instant::now() > deadline {
                    bail!(
                        "{} exited during startup: {status}\n{}",
                        s.name(),
                        self.log_tail(s)
                    );
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                self.spawn(s)?;
                continue;
            }
            let ready = match s {
                Svc::Gateway => tokio::net::TcpStream::connect(self.addr(s)).await.is_ok(),
                _ => grpc_serving(self.addr(s), s, &self.internal_tls_dir()).await,
            };
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not serving within {:?}\n{}",
                    s.name(),
                    START_DEADLINE,
                    self.log_tail(s)
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGKILL a service and reap it.
    pub fn kill(&mut self, s: Svc) {
        if let Some(mut child) = self.procs.get_mut(&s).and_then(|p| p.child.take()) {
            let _ = child.kill(); // SIGKILL on Unix
            let _ = child.wait();
        }
    }

    /// Start a killed service again on its port and data; returns how long it
    /// took to report SERVING (the gateway: to accept connections).
    pub async fn restart(&mut self, s: Svc) -> anyhow::Result<Duration> {
        let t = Instant::now();
        self.start_one(s).await?;
        Ok(t.elapsed())
    }

    pub fn is_running(&self, s: Svc) -> bool {
        self.procs[&s].child.is_some()
    }

    /// Until a signed ListKeys through the gateway succeeds.
    pub async fn wait_end_to_end(&self, within: Duration) -> anyhow::Result<Duration> {
        let t = Instant::now();
        let kms = self.client_with(fresh_config(self.endpoint(), 0));
        loop {
            let err = match kms.list_keys().send().await {
                Ok(_) => return Ok(t.elapsed()),
                Err(e) => format!("{}", aws_sdk_kms::error::DisplayErrorContext(&e)),
            };
            if t.elapsed() > within {
                bail!("no successful call within {within:?}: {err}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// An SDK client of account A at the public endpoint, without SDK retries.
    pub fn client(&self) -> Client {
        self.client_with(fresh_config(self.endpoint(), 0))
    }

    /// An SDK client with the SDK's standard retries (`attempts` in total).
    pub fn retrying_client(&self, attempts: u32) -> Client {
        self.client_with(fresh_config(self.endpoint(), attempts))
    }

    /// An SDK client (no SDK retries) at another address of the gateway, e.g.
    /// a VPC endpoint's interface.
    pub fn client_at(&self, addr: SocketAddr) -> Client {
        self.client_with(fresh_config(addr, 0))
    }

    fn client_with(&self, conf: aws_sdk_kms::Config) -> Client {
        Client::from_conf(conf)
    }

    /// The last lines of a service's log.
    pub fn log_tail(&self, s: Svc) -> String {
        let text = std::fs::read_to_string(self.log_path(s)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// A read-only view of a service's SQLite database (the service may be
    /// running: WAL readers do not block its writer).
    pub async fn open_db(&self, s: Svc) -> anyhow::Result<sqlx::SqlitePool> {
        use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
        let opts = SqliteConnectOptions::new()
            .filename(self.db_path(s))
            .read_only(true);
        Ok(SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await?)
    }

    /// Audit records by request id (`requestID` of the CloudTrail record).
    pub async fn audit_records_by_request_id(&self) -> anyhow::Result<HashMap<String, i64>> {
        let db = self.open_db(Svc::Audit).await?;
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT request_id, COUNT(*) FROM events GROUP BY request_id")
                .fetch_all(&db)
                .await?;
        db.close().await;
        Ok(rows.into_iter().collect())
    }

    /// Stop every service with SIGKILL (what a crash looks like; the tests
    /// check the databases afterwards).
    pub fn kill_all(&mut self) {
        for s in Svc::ALL.into_iter().rev() {
            self.kill(s);
        }
    }

    /// Keep the data dir and logs (for a failing campaign): `KMS_CHAOS_KEEP=1`.
    pub fn keep_if_asked(self) {
        if std::env::var_os("KMS_CHAOS_KEEP").is_some() {
            let mut me = self;
            me.kill_all();
            let dir = std::mem::replace(&mut me.dir, tempfile::tempdir().expect("tempdir"));
            eprintln!("kept data dir {}", dir.keep().display());
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// grpc.health.v1 over mutual TLS, as the `ops` role.
async fn grpc_serving(addr: SocketAddr, s: Svc, tls_dir: &Path) -> bool {
    use kms_telemetry::tls::{InternalTls, Role};
    let Ok(ep) = tonic::transport::Endpoint::from_shared(format!("http://{addr}")) else {
        return false;
    };
    let ep = ep
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2));
    let (Ok(ops), Ok(server)) = (InternalTls::load(tls_dir, Role::Ops), s.name().parse()) else {
        return false;
    };
    let Ok(channel) = ops.connect(&ep, server).await else {
        return false;
    };
    kms_telemetry::serving(channel).await
}

fn fresh_config(endpoint: SocketAddr, attempts: u32) -> aws_sdk_kms::Config {
    use aws_sdk_kms::config::retry::RetryConfig;
    use aws_sdk_kms::config::timeout::TimeoutConfig;
    assert!(endpoint.ip().is_loopback(), "tests talk to loopback only");
    let (_, akid, secret) = ACCOUNT_A;
    let retry = if attempts <= 1 {
        RetryConfig::disabled()
    } else {
        RetryConfig::standard()
            .with_max_attempts(attempts)
            .with_initial_backoff(Duration::from_millis(50))
            .with_max_backoff(Duration::from_millis(500))
    };
    aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{endpoint}"))
        .credentials_provider(Credentials::new(akid, secret, None, None, "chaos"))
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        )
        .build()
}

/// How a call ended: the AWS exception name of a service error, or a
/// description of a failure below it (connection refused or reset, timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Service(String),
    Transport(String),
}

impl Failure {
    pub fn of<E, R>(err: &aws_sdk_kms::error::SdkError<E, R>) -> Self
    where
        E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match err.as_service_error() {
            Some(e) => Failure::Service(e.code().unwrap_or("<no code>").to_string()),
            None => Failure::Transport(format!("{}", aws_sdk_kms::error::DisplayErrorContext(err))),
        }
    }

    /// A failure that says "the system could not do it now" (fail closed),
    /// never "done" nor a client error.
    pub fn is_dependency_failure(&self) -> bool {
        match self {
            Failure::Service(c) => c == "DependencyTimeoutException" || c == "KMSInternalException",
            Failure::Transport(_) => true,
        }
    }
}

/// Latency figures of a list of durations (seconds): (min, median, max).
pub fn summary(d: &[Duration]) -> String {
    if d.is_empty() {
        return "n/a".into();
    }
    let mut v: Vec<f64> = d.iter().map(|d| d.as_secs_f64()).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    format!(
        "min {:.3} s, median {:.3} s, max {:.3} s over {}",
        v[0],
        v[v.len() / 2],
        v[v.len() - 1],
        v.len()
    )
}

impl Cluster {
    /// The process id of a running service (to signal it, e.g. SIGSTOP, or to
    /// read its `/proc/<pid>` figures); `None` while it is killed.
    pub fn pid(&self, s: Svc) -> Option<u32> {
        self.procs[&s].child.as_ref().map(Child::id)
    }
}

/// The registry's gRPC client, as the gateway role (tests drive the EC2 model
/// directly through it).
pub type Registry =
    kms_proto::registry::v1::registry_client::RegistryClient<tonic::transport::Channel>;

impl Cluster {
    /// A registry client over mutual TLS as the gateway role.
    pub fn registry(&self) -> anyhow::Result<Registry> {
        Ok(Registry::new(self.internal_channel(Svc::Registry)?))
    }
}

/// A KMS interface endpoint (no private DNS) in `subnet_id` of `vpc_id`, made at
/// the registry for account A. Returns (vpce id, interface IP).
pub async fn create_endpoint_at_registry(
    reg: &mut Registry,
    vpc_id: &str,
    subnet_id: &str,
) -> (String, String) {
    use kms_proto::registry::v1::{CreateVpcEndpointRequest, DescribeNetworkInterfacesRequest};
    let account = ACCOUNT_A.0.to_string();
    let created = reg
        .create_vpc_endpoint(CreateVpcEndpointRequest {
            owner_account_id: account.clone(),
            vpc_id: vpc_id.to_owned(),
            service_name: "com.amazonaws.us-east-1.kms".into(),
            vpc_endpoint_type: "Interface".into(),
            private_dns_enabled: Some(false),
            subnet_ids: vec![subnet_id.to_owned()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let enis = reg
        .describe_network_interfaces(DescribeNetworkInterfacesRequest {
            owner_account_id: account,
            network_interface_ids: created.network_interface_ids.clone(),
            filters: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let ip = enis.network_interfaces[0]
        .interface
        .as_ref()
        .unwrap()
        .private_ip
        .clone();
    (created.endpoint.unwrap().vpce_id, ip)
}
