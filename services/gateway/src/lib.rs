//! The gateway: the AWS wire protocols in front of the gRPC services.
//!
//! It owns no state. For each connection it asks the registry which VPC
//! endpoint, if any, owns the local address the connection arrived on (the
//! network path decides; no header can claim an endpoint). Besides the public
//! listener it keeps one listener per VPC endpoint network interface, following
//! the registry (`listeners`). For each request it
//! frames SigV4 and lets authz verify it, validates the body against the
//! botocore model, calls the keystore (KMS) or audit (CloudTrail), records the
//! call with audit before answering, and renders AWS's responses and errors.

pub mod audit;
pub mod clients;
pub mod cloudtrail;
pub mod ec2;
pub mod http;
pub mod iam;
pub mod kms;
pub mod listeners;
pub mod metrics;
pub mod model;
pub mod query;
pub mod sigv4;
pub mod sts;
pub mod throttle;
pub mod tls;

use clients::Clients;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Gateway configuration (flags and `KMS_GATEWAY_*` environment variables).
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Region this endpoint serves (`kms.<region>.amazonaws.com`).
    #[arg(long, env = "KMS_GATEWAY_REGION", default_value = "us-east-1")]
    pub region: String,
    /// More Regions served by the same endpoint (comma-separated): a request whose
    /// SigV4 credential scope names one of them acts in that Region (multi-Region
    /// keys replicate between the Regions of one stack).
    #[arg(long, env = "KMS_GATEWAY_ADDITIONAL_REGIONS", value_delimiter = ',')]
    pub additional_regions: Vec<String>,
    /// gRPC URL of the authz service.
    #[arg(
        long,
        env = "KMS_GATEWAY_AUTHZ_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub authz_url: String,
    /// gRPC URL of the keystore service.
    #[arg(
        long,
        env = "KMS_GATEWAY_KEYSTORE_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    pub keystore_url: String,
    /// gRPC URL of the audit service.
    #[arg(
        long,
        env = "KMS_GATEWAY_AUDIT_URL",
        default_value = "http://127.0.0.1:50054"
    )]
    pub audit_url: String,
    /// gRPC URL of the registry service.
    #[arg(
        long,
        env = "KMS_GATEWAY_REGISTRY_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub registry_url: String,
    /// Largest request body accepted (bytes); larger ones get HTTP 413.
    #[arg(long, env = "KMS_GATEWAY_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// HTTP/2 connections kept to each backend service.
    #[arg(long, env = "KMS_GATEWAY_GRPC_CONNECTIONS", default_value_t = 4)]
    pub grpc_connections: usize,
    /// Bind endpoint interface addresses outside 127.0.0.0/8 (compose, real
    /// networks). Off: only loopback interface addresses are bound.
    #[arg(long, env = "KMS_GATEWAY_ALLOW_NON_LOOPBACK_INTERFACES")]
    pub allow_non_loopback_interfaces: bool,
    /// PEM certificate chain (leaf first) of the HTTPS listeners. With
    /// `--tls-key`, the gateway also serves HTTPS on the TLS listener and on
    /// every endpoint interface address (same TLS port).
    #[arg(long, env = "KMS_GATEWAY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "KMS_GATEWAY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Multiplier of AWS KMS's default request quotas (per account and Region;
    /// `throttle`). 0: no default quota (`--quota` entries still apply).
    #[arg(long, env = "KMS_QUOTA_SCALE", default_value_t = 1.0)]
    pub quota_scale: f64,
    /// A request quota, `<class>=<requests per second>` (repeatable; the
    /// environment variable takes a comma-separated list): `symmetric`, `rsa`,
    /// `ecc`, `ml-dsa`, `GenerateDataKeyPair/<KeyPairSpec>` or a management
    /// operation (`CreateKey`). Absolute (not scaled); 0 lifts the quota.
    #[arg(
        long = "quota",
        env = "KMS_QUOTAS",
        value_delimiter = ',',
        value_parser = throttle::parse_override
    )]
    pub quotas: Vec<throttle::QuotaOverride>,
    /// Mutual TLS of the calls to the backends (the `gateway` role).
    #[command(flatten)]
    pub internal_tls: kms_telemetry::tls::InternalTlsConfig,
}

impl Config {
    /// A configuration pointing at the four backends.
    pub fn new(region: &str, authz: &str, keystore: &str, audit: &str, registry: &str) -> Self {
        Self {
            region: region.into(),
            additional_regions: Vec::new(),
            authz_url: authz.into(),
            keystore_url: keystore.into(),
            audit_url: audit.into(),
            registry_url: registry.into(),
            max_body_bytes: 1 << 20,
            grpc_connections: 4,
            allow_non_loopback_interfaces: false,
            tls_cert: None,
            tls_key: None,
            quota_scale: 1.0,
            quotas: Vec::new(),
            internal_tls: Default::default(),
        }
    }
}

/// What the network path says about a connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The peer's IP address as text (the records' `sourceIPAddress`,
    /// `aws:SourceIp`), formatted once per connection.
    pub peer_ip: String,
    pub local: SocketAddr,
    pub endpoint: Option<kms_proto::registry::v1::Endpoint>,
    /// The negotiated TLS session (`None`: plain HTTP).
    pub tls: Option<tls::TlsSession>,
}

/// Everything a request handler needs, shared by all connections.
pub struct State {
    pub config: Config,
    pub clients: Clients,
    pub kms_model: model::Model,
    pub cloudtrail_model: model::Model,
    /// The endpoints of the registry's latest interface snapshot, by vpce id;
    /// `None` until one arrived (or when the gateway does not follow them).
    pub endpoints:
        std::sync::RwLock<Option<Arc<HashMap<String, kms_proto::registry::v1::Endpoint>>>>,
    /// The interface addresses of the registry's latest snapshot; `None` until
    /// one arrived. While the registry is unreachable, a connection on the
    /// public listener whose address no interface has is still the public
    /// endpoint's (`listeners::serve_connection`).
    pub interface_ips: std::sync::RwLock<Option<Arc<std::collections::HashSet<std::net::IpAddr>>>>,
    /// The request quotas and every account's token buckets.
    pub throttle: throttle::Throttle,
}

impl State {
    /// The current state of the endpoint a connection belongs to: the latest
    /// snapshot's entry (so policy changes apply to open connections), or the
    /// connection's own view when the gateway does not follow snapshots.
    /// `Err` when the latest snapshot no longer has the endpoint (fail closed).
    pub fn current_endpoint(
        &self,
        conn: &ConnInfo,
    ) -> Result<Option<kms_proto::registry::v1::Endpoint>, kms_proto::error::AwsError> {
        let Some(known) = &conn.endpoint else {
            return Ok(None);
        };
        let table = self
            .endpoints
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match table {
            None => Ok(Some(known.clone())),
            Some(t) => match t.get(&known.vpce_id) {
                Some(e) => Ok(Some(e.clone())),
                None => Err(kms_proto::error::AwsError::new(
                    "DependencyTimeoutException",
                    "The VPC endpoint this connection came through no longer exists.",
                )),
            },
        }
    }
}

/// How long shutdown waits for open connections to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve the AWS APIs on `listener` (the public endpoint) and on every VPC
/// endpoint interface address (same port), until `shutdown` resolves; then
/// drain. Plain HTTP only; see [`run_with_tls`].
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with_tls(listener, None, config, shutdown).await
}

/// [`run`], plus HTTPS on `tls_listener` and on every VPC endpoint interface
/// address (on `tls_listener`'s port), with `config.tls_cert` / `tls_key`.
/// Both or neither: a TLS listener without a certificate (or the reverse) is
/// an error.
pub async fn run_with_tls(
    listener: TcpListener,
    tls_listener: Option<TcpListener>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tls = match (&tls_listener, &config.tls_cert, &config.tls_key) {
        (Some(_), Some(cert), Some(key)) => Some(tokio_rustls::TlsAcceptor::from(
            tls::server_config(cert, key)?,
        )),
        (None, None, None) => None,
        (Some(_), _, _) => anyhow::bail!("a TLS listener needs --tls-cert and --tls-key"),
        (None, _, _) => anyhow::bail!("--tls-cert and --tls-key need a TLS listener"),
    };
    let throttle =
        throttle::Throttle::new(config.quota_scale, &config.quotas).map_err(anyhow::Error::msg)?;
    let clients = Clients::connect(&config)?;
    let state = Arc::new(State {
        throttle,
        config,
        clients,
        kms_model: model::kms(),
        endpoints: std::sync::RwLock::new(None),
        interface_ips: std::sync::RwLock::new(None),
        cloudtrail_model: model::cloudtrail(),
    });
    let public = listener.local_addr()?;
    tracing::info!(addr = %public, "gateway listening");
    let (stop_tx, stop) = watch::channel(false);
    let (drain_tx, drain) = watch::channel(());
    let public_task = tokio::spawn(listeners::accept_loop(
        listener,
        state.clone(),
        None,
        None,
        stop.clone(),
        drain.clone(),
    ));
    let mut tls_port = None;
    let tls_task = match (tls_listener, &tls) {
        (Some(l), Some(acceptor)) => {
            let addr = l.local_addr()?;
            tracing::info!(%addr, "gateway listening (TLS)");
            tls_port = Some(addr.port());
            Some(tokio::spawn(listeners::accept_loop(
                l,
                state.clone(),
                Some(acceptor.clone()),
                None,
                stop.clone(),
                drain.clone(),
            )))
        }
        _ => None,
    };
    // A wildcard public listener already receives every local address's
    // connections (and ResolveListener still tells them apart by their local
    // address); binding interface addresses on its port would only fail.
    let endpoints_task = if public.ip().is_unspecified() {
        tracing::info!("public listener on a wildcard address: no separate endpoint listeners");
        None
    } else {
        let ports = listeners::Ports {
            http: public.port(),
            tls: tls.zip(tls_port),
        };
        Some(tokio::spawn(listeners::follow_interfaces(
            state,
            ports,
            stop,
            drain.clone(),
        )))
    };
    // From here on only the listeners' tasks and their connections hold it.
    drop(drain);
    shutdown.await;
    let _ = stop_tx.send(true);
    let _ = public_task.await;
    if let Some(task) = tls_task {
        let _ = task.await;
    }
    if let Some(task) = endpoints_task {
        let _ = task.await;
    }
    tokio::select! {
        () = drain_tx.closed() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("gateway shutdown timed out waiting for connections");
        }
    }
    Ok(())
}
