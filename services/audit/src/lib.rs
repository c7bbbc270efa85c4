//! audit: CloudTrail for this KMS.
//!
//! Every KMS call appends one record (`Append`); the record is stored once per recipient
//! account, with that account's `recipientAccountId`, and `Append` answers only after the
//! commit. Concurrent appends share one transaction (group commit, see `writer`).
//! `LookupEvents` serves an account's events with CloudTrail's filters and pagination.
//! With a log dir, committed events are also delivered as CloudTrail log files with signed,
//! chained digest files (`delivery`, formats in `logfiles`), checked by `validate`
//! (`kms-audit validate-logs`); `ListPublicKeys` serves the signing public keys.

pub mod config;
pub mod delivery;
pub mod error;
pub mod grpc;
pub mod logfiles;
pub mod lookup;
pub mod records;
pub mod signing;
pub mod store;
pub mod validate;
pub mod writer;

use std::future::Future;
use std::time::Duration;

use kms_proto::audit::v1::audit_server::AuditServer;
use tokio::net::TcpListener;

pub use config::Config;

use crate::delivery::Delivery;
use crate::grpc::AuditService;
use crate::store::SqliteStore;
use crate::writer::Appender;

/// How long shutdown waits for queued appends to commit.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve audit on `listener` until `shutdown` completes, then let queued appends commit.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tls = config.internal_tls.load(kms_telemetry::tls::Role::Audit)?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_not_serving::<AuditServer<AuditService<SqliteStore>>>()
        .await;

    let store = SqliteStore::connect(&config.database_url).await?;
    let (appender, writer) = Appender::spawn(store.clone(), config.batch_max);
    let delivery = Delivery::open(store.clone(), &config).await?;
    let (stop_delivery, delivery_stopped) = tokio::sync::oneshot::channel();
    let deliverer = delivery.clone().map(|d| {
        let interval = Duration::from_secs_f64(config.delivery_interval_secs.max(0.001));
        d.spawn(interval, delivery_stopped)
    });
    let service = AuditService::new(store.clone(), appender).with_delivery(delivery);
    health
        .set_serving::<AuditServer<AuditService<SqliteStore>>>()
        .await;
    tracing::info!(addr = ?listener.local_addr().ok(), batch_max = config.batch_max, "audit serving");

    let service = std::sync::Arc::new(service);
    let typed = kms_telemetry::local::Handles::none()
        .with(service.clone() as std::sync::Arc<dyn kms_proto::audit::v1::audit_server::Audit>);
    let routes =
        tonic::service::Routes::new(health_service).add_service(AuditServer::from_arc(service));
    // Also reachable in-process while it serves (the one-process stack).
    let served = kms_telemetry::local::serve(listener, routes, typed, tls.as_ref(), shutdown).await;
    // The server and with it every Appender handle is gone: the writer finishes what is
    // queued and stops.
    if tokio::time::timeout(DRAIN_TIMEOUT, writer).await.is_err() {
        tracing::warn!("audit writer did not drain in time");
    }
    // Every committed record goes to the log files (and a digest) before stopping.
    let _ = stop_delivery.send(());
    if let Some(d) = deliverer
        && tokio::time::timeout(DRAIN_TIMEOUT, d).await.is_err()
    {
        tracing::warn!("audit log delivery did not finish in time");
    }
    store.close().await;
    served?;
    Ok(())
}
