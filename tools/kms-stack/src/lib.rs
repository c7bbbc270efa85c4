//! The local launcher: all five services as separate gRPC servers on loopback,
//! each with its own SQLite database under the data dir, and the gateway on the
//! public endpoint. Used by the `kms-stack` binary and by the end-to-end tests.

use anyhow::Context;
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
    /// Region served.
    #[arg(long, env = "KMS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Port of the registry's DNS server (served from the VPC endpoints issue on).
    #[arg(long, env = "KMS_DNS_PORT", default_value_t = 5353)]
    pub dns_port: u16,
    /// JSON file of the accounts to create on a fresh data dir (default: the two
    /// documentation accounts 111122223333 and 444455556666).
    #[arg(long, env = "KMS_BOOTSTRAP_FILE")]
    pub bootstrap_file: Option<PathBuf>,
}

impl StackConfig {
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen,
            region: "us-east-1".into(),
            dns_port: 5353,
            bootstrap_file: None,
        }
    }
}

/// A running stack. Dropping it does not stop it; call `shutdown`.
pub struct Stack {
    /// The public endpoint's address.
    pub endpoint: SocketAddr,
    /// gRPC addresses: registry, authz, keystore, audit.
    pub registry: SocketAddr,
    pub authz: SocketAddr,
    pub keystore: SocketAddr,
    pub audit: SocketAddr,
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
    let mut tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)> = Vec::new();

    let (l, registry) = loopback().await?;
    let cfg = kms_registry::Config::new(sqlite_url(&dir, "registry"));
    let cfg = kms_registry::Config {
        dns_port: config.dns_port,
        region: config.region.clone(),
        ..cfg
    };
    tasks.push((
        "registry",
        tokio::spawn(kms_registry::run(l, cfg, stopped(rx.clone()))),
    ));

    let (l, authz) = loopback().await?;
    let mut cfg = kms_authz::Config::new(sqlite_url(&dir, "authz"));
    cfg.bootstrap_file = config.bootstrap_file.clone();
    tasks.push((
        "authz",
        tokio::spawn(kms_authz::run(l, cfg, stopped(rx.clone()))),
    ));

    let (l, keystore) = loopback().await?;
    let cfg = kms_keystore::Config::dev(sqlite_url(&dir, "keystore"), dir.join("root.key"));
    tasks.push((
        "keystore",
        tokio::spawn(kms_keystore::run(l, cfg, stopped(rx.clone()))),
    ));

    let (l, audit) = loopback().await?;
    let cfg = kms_audit::Config::new(sqlite_url(&dir, "audit"));
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
        wait_serving(name, addr, &tasks).await?;
    }

    let public = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding the public endpoint {}", config.listen))?;
    let endpoint = public.local_addr()?;
    let url = |a: SocketAddr| format!("http://{a}");
    let cfg = kms_gateway::Config::new(
        &config.region,
        &url(authz),
        &url(keystore),
        &url(audit),
        &url(registry),
    );
    tasks.push((
        "gateway",
        tokio::spawn(kms_gateway::run(public, cfg, stopped(rx.clone()))),
    ));
    tracing::info!(%endpoint, data_dir = %dir.display(), "kms stack serving");
    Ok(Stack {
        endpoint,
        registry,
        authz,
        keystore,
        audit,
        stop,
        tasks,
    })
}

/// Poll grpc.health.v1 until the service is SERVING (or its task failed).
async fn wait_serving(
    name: &'static str,
    addr: SocketAddr,
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
        if let Ok(channel) = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .connect()
            .await
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
