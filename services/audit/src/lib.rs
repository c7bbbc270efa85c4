//! audit: CloudTrail for this KMS.
//!
//! Every KMS call appends one record (`Append`); the record is stored once per recipient
//! account, with that account's `recipientAccountId`, and `Append` answers only after the
//! commit. Concurrent appends share one transaction (group commit, see `writer`).
//! `LookupEvents` serves an account's events with CloudTrail's filters and pagination.

pub mod config;
pub mod error;
pub mod grpc;
pub mod lookup;
pub mod records;
pub mod store;
pub mod writer;

use std::future::Future;
use std::time::Duration;

use kms_proto::audit::v1::audit_server::AuditServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

pub use config::Config;

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
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_not_serving::<AuditServer<AuditService<SqliteStore>>>()
        .await;

    let store = SqliteStore::connect(&config.database_url).await?;
    let (appender, writer) = Appender::spawn(store.clone(), config.batch_max);
    let service = AuditService::new(store.clone(), appender);
    health
        .set_serving::<AuditServer<AuditService<SqliteStore>>>()
        .await;
    tracing::info!(addr = ?listener.local_addr().ok(), batch_max = config.batch_max, "audit serving");

    let served = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(AuditServer::new(service))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await;
    // The server and with it every Appender handle is gone: the writer finishes what is
    // queued and stops.
    if tokio::time::timeout(DRAIN_TIMEOUT, writer).await.is_err() {
        tracing::warn!("audit writer did not drain in time");
    }
    store.close().await;
    served?;
    Ok(())
}
