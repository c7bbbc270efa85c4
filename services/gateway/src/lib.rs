//! The gateway: the AWS wire protocols in front of the gRPC services.
//!
//! It owns no state. For each connection it asks the registry which VPC
//! endpoint, if any, owns the local address the connection arrived on (the
//! network path decides; no header can claim an endpoint). For each request it
//! frames SigV4 and lets authz verify it, validates the body against the
//! botocore model, calls the keystore (KMS) or audit (CloudTrail), records the
//! call with audit before answering, and renders AWS's responses and errors.

pub mod audit;
pub mod clients;
pub mod cloudtrail;
pub mod http;
pub mod kms;
pub mod model;
pub mod sigv4;

use clients::Clients;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Gateway configuration (flags and `KMS_GATEWAY_*` environment variables).
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Region this endpoint serves (`kms.<region>.amazonaws.com`).
    #[arg(long, env = "KMS_GATEWAY_REGION", default_value = "us-east-1")]
    pub region: String,
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
}

impl Config {
    /// A configuration pointing at the four backends.
    pub fn new(region: &str, authz: &str, keystore: &str, audit: &str, registry: &str) -> Self {
        Self {
            region: region.into(),
            authz_url: authz.into(),
            keystore_url: keystore.into(),
            audit_url: audit.into(),
            registry_url: registry.into(),
            max_body_bytes: 1 << 20,
            grpc_connections: 4,
        }
    }
}

/// What the network path says about a connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub endpoint: Option<kms_proto::registry::v1::Endpoint>,
}

/// Everything a request handler needs, shared by all connections.
pub struct State {
    pub config: Config,
    pub clients: Clients,
    pub kms_model: model::Model,
    pub cloudtrail_model: model::Model,
}

/// Serve the AWS APIs on `listener` until `shutdown` resolves, then drain.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let clients = Clients::connect(&config)?;
    let state = Arc::new(State {
        config,
        clients,
        kms_model: model::kms(),
        cloudtrail_model: model::cloudtrail(),
    });
    tracing::info!(addr = %listener.local_addr()?, "gateway listening");
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let local = match stream.local_addr() {
            Ok(a) => a,
            Err(_) => continue,
        };
        let state = state.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // Fail closed: a connection whose path cannot be established is not served.
            let endpoint = match state.clients.resolve_listener(local).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, %local, "registry could not resolve listener; closing");
                    return;
                }
            };
            let conn = Arc::new(ConnInfo {
                peer,
                local,
                endpoint,
            });
            let svc = hyper::service::service_fn(move |req| {
                http::handle(state.clone(), conn.clone(), req)
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let fut = builder.serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = watcher.watch(fut.into_owned()).await {
                tracing::debug!(error = %e, "connection ended with error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {
            tracing::warn!("gateway shutdown timed out waiting for connections");
        }
    }
    Ok(())
}
