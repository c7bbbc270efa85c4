//! The local launcher: all five services as separate gRPC servers on loopback,
//! each with its own SQLite database under the data dir, and the gateway on the
//! public endpoint. Used by the `kms-stack` binary and by the end-to-end tests.
//!
//! The gateway also listens on every VPC endpoint interface address (same
//! port as the public endpoint), and the registry serves DNS: the public
//! resolver on the public endpoint's IP, one resolver per VPC on its CIDR's
//! base + 2, all on `--dns-port`. With VPC CIDRs in 127.0.0.0/8 all of these
//! are real loopback addresses, so no Docker or root is needed.
//!
//! HTTPS: the stack makes its own CA on first start (`tls`) and the gateway
//! serves HTTPS on `--tls-listen` and on every interface address (same port).
//!
//! Internal gRPC: the services call each other in-process (no socket), and
//! their loopback ports serve mutual TLS only, with certificates of an
//! internal CA made on first start under `<data-dir>/internal-tls/`
//! (`tls::ensure_internal`, `kms_telemetry::tls`).

pub mod tls;

/// Whom a backend's port serves ([`Stack::internal_channel`]).
pub use kms_telemetry::tls::Role as InternalRole;

use anyhow::Context;
use kms_telemetry::tls::{InternalTls, InternalTlsConfig, Role};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, clap::Args)]
pub struct StackConfig {
    /// Folder of the services' SQLite databases and the dev root key.
    #[arg(long, env = "KMS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Public endpoint (KMS and CloudTrail APIs).
    #[arg(long, env = "KMS_LISTEN", default_value = "127.0.0.1:4566")]
    pub listen: SocketAddr,
    /// Public HTTPS endpoint (default: the public endpoint's IP, port 4443; port 0
    /// when the public endpoint's port is 0). Endpoint interfaces serve HTTPS on
    /// the same port. The certificate is issued by the stack's CA
    /// (`<data-dir>/tls/ca.pem`).
    #[arg(long, env = "KMS_TLS_LISTEN")]
    pub tls_listen: Option<SocketAddr>,
    /// Region served.
    #[arg(long, env = "KMS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// More Regions served by the same endpoint (comma-separated; the Region of a
    /// request is its SigV4 credential scope).
    #[arg(long, env = "KMS_ADDITIONAL_REGIONS", value_delimiter = ',')]
    pub additional_regions: Vec<String>,
    /// UDP/TCP port of the registry's DNS resolvers (0: any free port).
    #[arg(long, env = "KMS_DNS_PORT", default_value_t = 5353)]
    pub dns_port: u16,
    /// Let the gateway bind endpoint interface addresses, and the registry VPC
    /// resolver addresses, outside 127.0.0.0/8.
    #[arg(long, env = "KMS_ALLOW_NON_LOOPBACK_INTERFACES")]
    pub allow_non_loopback_interfaces: bool,
    /// JSON file of the accounts to create on a fresh data dir (default: the two
    /// documentation accounts 111122223333 and 444455556666).
    #[arg(long, env = "KMS_BOOTSTRAP_FILE")]
    pub bootstrap_file: Option<PathBuf>,
    /// Multiplier of AWS KMS's default request quotas, enforced by the gateway
    /// per account and Region. The local stack defaults to 0 (no default
    /// quota: test suites and tools here call without retries); 1 is AWS's
    /// defaults, as the `kms-gateway` binary applies them.
    #[arg(long, env = "KMS_QUOTA_SCALE", default_value_t = 0.0)]
    pub quota_scale: f64,
    /// A request quota, `<class>=<requests per second>` (repeatable; the
    /// environment variable takes a comma-separated list), applied whatever
    /// `--quota-scale` is; see `kms-gateway --help`.
    #[arg(
        long = "quota",
        env = "KMS_QUOTAS",
        value_delimiter = ',',
        value_parser = kms_gateway::throttle::parse_override
    )]
    pub quotas: Vec<kms_gateway::throttle::QuotaOverride>,
}

impl StackConfig {
    /// A stack on `data_dir` serving `listen`, with DNS on a free port (so
    /// that several stacks can run side by side, e.g. in tests).
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen,
            tls_listen: None,
            region: "us-east-1".into(),
            additional_regions: Vec::new(),
            dns_port: 0,
            allow_non_loopback_interfaces: false,
            bootstrap_file: None,
            quota_scale: 0.0,
            quotas: Vec::new(),
        }
    }
}

/// A running stack. Dropping it does not stop it; call `shutdown`.
pub struct Stack {
    /// The public endpoint's address.
    pub endpoint: SocketAddr,
    /// The public HTTPS endpoint's address.
    pub tls_endpoint: SocketAddr,
    /// The stack's TLS files (`ca_cert` is what clients trust).
    pub tls: tls::TlsFiles,
    /// The internal CA and every role's certificate (`ca.pem`, `<role>.pem`,
    /// `<role>.key`): the backends' ports accept mutual TLS only.
    pub internal_tls_dir: PathBuf,
    /// gRPC addresses: registry, authz, keystore, audit.
    pub registry: SocketAddr,
    pub authz: SocketAddr,
    pub keystore: SocketAddr,
    pub audit: SocketAddr,
    /// The public DNS resolver (UDP and TCP); VPC resolvers use the same port.
    pub dns: SocketAddr,
    registry_api: kms_registry::Registry,
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
}

fn sqlite_url(dir: &std::path::Path, service: &str) -> String {
    format!("sqlite://{}", dir.join(format!("{service}.db")).display())
}

async fn loopback() -> anyhow::Result<(TcpListener, SocketAddr)> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let a = l.local_addr()?;
    Ok((l, a))
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// Start every service, wait until each reports SERVING, then serve the
/// public endpoint.
pub async fn start(config: StackConfig) -> anyhow::Result<Stack> {
    let dir = config.data_dir.clone();
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating data dir {}", dir.display()))?;
    let (stop, rx) = watch::channel(false);
    // One process: the services call each other in-process (same gRPC contract,
    // no socket); they still serve their loopback ports for other clients.
    kms_telemetry::local::enable();
    let mut tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)> = Vec::new();
    let internal_tls_dir = tls::ensure_internal(&dir.join("internal-tls"))
        .context("preparing the internal gRPC certificates")?;
    let internal = InternalTlsConfig::dir(&internal_tls_dir);
    let ops = InternalTls::load(&internal_tls_dir, Role::Ops)?;

    let (l, registry) = loopback().await?;
    let cfg = kms_registry::Config::new(sqlite_url(&dir, "registry"));
    let cfg = kms_registry::Config {
        dns_port: config.dns_port,
        dns_public_ip: Some(config.listen.ip()),
        dns_allow_non_loopback: config.allow_non_loopback_interfaces,
        region: config.region.clone(),
        internal_tls: internal.clone(),
        ..cfg
    };
    let registry_tls = InternalTls::load(&internal_tls_dir, Role::Registry)?;
    // Opened here rather than in `kms_registry::run` so that the launcher
    // (and the tests through `Stack::registry_api`) can act on the library.
    let registry_api = kms_registry::Registry::open(&cfg).await?;
    let (dns_udp, dns_tcp) = kms_registry::dns::bind_public(config.listen.ip(), config.dns_port)
        .await
        .with_context(|| {
            format!(
                "binding the public dns resolver on port {}",
                config.dns_port
            )
        })?;
    let dns = dns_udp.local_addr()?;
    let reg = registry_api.clone();
    let stop_rx = rx.clone();
    let allow_non_loopback = config.allow_non_loopback_interfaces;
    tasks.push((
        "registry",
        tokio::spawn(async move {
            let dns = tokio::spawn(kms_registry::dns::serve(
                reg.clone(),
                dns_udp,
                dns_tcp,
                allow_non_loopback,
                stopped(stop_rx.clone()),
            ));
            let served =
                kms_registry::serve_with_tls(l, reg.clone(), Some(registry_tls), stopped(stop_rx))
                    .await;
            let dns = dns.await;
            reg.store().close().await;
            served?;
            dns??;
            Ok(())
        }),
    ));

    let (l, authz) = loopback().await?;
    let mut cfg = kms_authz::Config::new(sqlite_url(&dir, "authz"));
    cfg.bootstrap_file = config.bootstrap_file.clone();
    cfg.internal_tls = internal.clone();
    tasks.push((
        "authz",
        tokio::spawn(kms_authz::run(l, cfg, stopped(rx.clone()))),
    ));

    let (l, keystore) = loopback().await?;
    let mut cfg = kms_keystore::Config::dev(sqlite_url(&dir, "keystore"), dir.join("root.key"))
        .with_authz_url(format!("http://{authz}"));
    cfg.internal_tls = internal.clone();
    tasks.push((
        "keystore",
        tokio::spawn(kms_keystore::run(l, cfg, stopped(rx.clone()))),
    ));

    let (l, audit) = loopback().await?;
    let mut cfg = kms_audit::Config::new(sqlite_url(&dir, "audit"));
    cfg.log_dir = Some(dir.join("cloudtrail"));
    cfg.region = config.region.clone();
    cfg.internal_tls = internal.clone();
    tasks.push((
        "audit",
        tokio::spawn(kms_audit::run(l, cfg, stopped(rx.clone()))),
    ));

    for (name, addr) in [
        ("registry", registry),
        ("authz", authz),
        ("keystore", keystore),
        ("audit", audit),
    ] {
        wait_serving(name, addr, &ops, &tasks).await?;
    }

    let public = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding the public endpoint {}", config.listen))?;
    let endpoint = public.local_addr()?;
    let tls_listen = config.tls_listen.unwrap_or_else(|| {
        let port = if config.listen.port() == 0 { 0 } else { 4443 };
        SocketAddr::new(config.listen.ip(), port)
    });
    let tls_files = tls::ensure(&dir, &config.region, &[config.listen.ip(), tls_listen.ip()])
        .context("preparing the stack's TLS certificates")?;
    let public_tls = TcpListener::bind(tls_listen)
        .await
        .with_context(|| format!("binding the public TLS endpoint {tls_listen}"))?;
    let tls_endpoint = public_tls.local_addr()?;
    let url = |a: SocketAddr| format!("http://{a}");
    let mut cfg = kms_gateway::Config::new(
        &config.region,
        &url(authz),
        &url(keystore),
        &url(audit),
        &url(registry),
    );
    cfg.allow_non_loopback_interfaces = config.allow_non_loopback_interfaces;
    cfg.additional_regions = config.additional_regions.clone();
    cfg.tls_cert = Some(tls_files.server_cert.clone());
    cfg.tls_key = Some(tls_files.server_key.clone());
    cfg.quota_scale = config.quota_scale;
    cfg.quotas = config.quotas.clone();
    cfg.internal_tls = internal;
    tasks.push((
        "gateway",
        tokio::spawn(kms_gateway::run_with_tls(
            public,
            Some(public_tls),
            cfg,
            stopped(rx.clone()),
        )),
    ));
    tracing::info!(%endpoint, %tls_endpoint, %dns, data_dir = %dir.display(), "kms stack serving");
    Ok(Stack {
        endpoint,
        tls_endpoint,
        tls: tls_files,
        internal_tls_dir,
        registry,
        authz,
        keystore,
        audit,
        dns,
        registry_api,
        stop,
        tasks,
    })
}

/// Poll grpc.health.v1 until the service is SERVING (or its task failed),
/// over its port (mutual TLS, as the `ops` role), as any other process would.
async fn wait_serving(
    name: &'static str,
    addr: SocketAddr,
    ops: &InternalTls,
    tasks: &[(&'static str, JoinHandle<anyhow::Result<()>>)],
) -> anyhow::Result<()> {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((_, t)) = tasks.iter().find(|(n, _)| *n == name)
            && t.is_finished()
        {
            anyhow::bail!("{name} stopped during startup");
        }
        let server: Role = name.parse().map_err(anyhow::Error::msg)?;
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(Duration::from_secs(2));
        if let Ok(channel) = ops.connect(&endpoint, server).await
            && let Ok(resp) = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
            && resp.into_inner().status == ServingStatus::Serving as i32
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("{name} did not become healthy within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Stack {
    /// A channel to a backend's port over mutual TLS as the gateway's role
    /// (the one caller every backend serves), for tests that call a backend
    /// directly. Connected on first use.
    pub fn internal_channel(&self, server: Role) -> anyhow::Result<tonic::transport::Channel> {
        let addr = match server {
            Role::Registry => self.registry,
            Role::Authz => self.authz,
            Role::Keystore => self.keystore,
            Role::Audit => self.audit,
            Role::Gateway | Role::Ops => anyhow::bail!("{server} serves no gRPC"),
        };
        let gateway = InternalTls::load(&self.internal_tls_dir, Role::Gateway)?;
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(Duration::from_secs(2));
        Ok(gateway.connect_lazy(&endpoint, server))
    }

    /// The registry's library API (VPCs, subnets, endpoints), shared with the
    /// running registry service: changes are seen by the gateway and the DNS.
    pub fn registry_api(&self) -> &kms_registry::Registry {
        &self.registry_api
    }

    /// Stop every service (the gateway drains open connections) and report the
    /// first failure.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let mut first_err = None;
        for (name, task) in self.tasks.into_iter().rev() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e.context(format!("{name} failed")));
                }
                Err(e) => {
                    first_err.get_or_insert(anyhow::anyhow!("{name} panicked: {e}"));
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Wait until any service stops by itself (a failure) and return its error.
    pub async fn wait_failure(&mut self) -> anyhow::Error {
        loop {
            for (name, task) in &self.tasks {
                if task.is_finished() {
                    return anyhow::anyhow!("{name} stopped unexpectedly");
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
