//! `kms-keystore`: the key store of the KMS clone. It performs every KMS key operation
//! (`kms.keystore.v1.KeyStore`) and is the only service that ever holds key material.
//!
//! How it fits together:
//! - `grpc` turns contract messages into calls on `service::KeyService`, which holds
//!   every key (metadata and unwrapped material) and alias in memory, so Encrypt,
//!   Decrypt and GenerateDataKey never read the database.
//! - `store` persists keys, wrapped material, aliases and tags in SQLite; the service
//!   writes there first and updates its memory after the commit.
//! - `crypto` (aws-lc-rs) does AES-256-GCM and wraps key material under the root key;
//!   `blob` is the ciphertext format (docs/CIPHERTEXT.md).
//! - `asymmetric` (aws-lc-rs) holds the private keys of RSA and ECC keys and the keys
//!   of HMAC keys (wrapped under the root key at rest like symmetric material): Sign,
//!   Verify, RSAES-OAEP, GenerateMac, VerifyMac.
//! - `policy` checks the structure of key policy documents before they are stored.
//! - The gateway authenticates callers and puts the caller, the region and the network
//!   path in every request's `context`; identifiers are resolved in that account and
//!   region (or in the account a key ARN names), and `authz` asks the authz service's
//!   `Authorize` whether the caller may act on the key, before anything happens.

mod asymmetric;
mod authz;
mod blob;
mod config;
mod crypto;
mod error;
mod grpc;
mod model;
mod policy;
mod service;
mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kms_proto::keystore::v1::key_store_server::KeyStoreServer;
use tokio::net::TcpListener;

pub use config::{Config, RootKeyError};
pub use error::DENIED_BY_ENDPOINT_POLICY;

use crate::grpc::KeyStoreGrpc;
use crate::service::KeyService;
use crate::store::{SqliteStore, Store};

/// How often keys whose waiting period has ended are deleted, and keys whose
/// automatic rotation is due are rotated.
const DELETION_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Opens the database, applies its migrations, loads every key, then serves the
/// `KeyStore` contract and `grpc.health.v1` on `listener` until `shutdown` completes
/// (in-flight calls are drained).
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let root = config.root_key().context("cannot obtain the root key")?;
    let tls = config
        .internal_tls
        .load(kms_telemetry::tls::Role::Keystore)
        .context("cannot load the internal TLS files")?;
    let authorizer = authz::GrpcAuthorizer::new(&config.authz_url, tls.as_ref())
        .with_context(|| format!("invalid authz URL {}", config.authz_url))?;
    let store = SqliteStore::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", config.database_url))?;
    let service = match KeyService::load(store.clone(), root, Arc::new(authorizer)).await {
        Ok(service) => Arc::new(service),
        Err(e) => {
            store.close().await;
            return Err(anyhow::Error::new(e).context(
                "cannot load the keys (is this the root key the database was created with?)",
            ));
        }
    };
    tracing::info!(keys = service.key_count(), "key store loaded");

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<KeyStoreServer<KeyStoreGrpc<SqliteStore>>>()
        .await;

    let sweeper = {
        let service = Arc::clone(&service);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(DELETION_SWEEP_INTERVAL);
            loop {
                tick.tick().await;
                if let Err(e) = service.purge_expired().await {
                    tracing::warn!(error = %e, "deleting expired keys failed; will retry");
                }
                if let Err(e) = service.rotate_due().await {
                    tracing::warn!(error = %e, "automatic key rotation failed; will retry");
                }
                if let Err(e) = service.expire_imported_material().await {
                    tracing::warn!(error = %e, "expiring imported key material failed; will retry");
                }
            }
        })
    };

    let grpc = Arc::new(KeyStoreGrpc::new(Arc::clone(&service)));
    let typed = kms_telemetry::local::Handles::none()
        .with(grpc.clone() as Arc<dyn kms_proto::keystore::v1::key_store_server::KeyStore>);
    let routes =
        tonic::service::Routes::new(health_service).add_service(KeyStoreServer::from_arc(grpc));
    // Also reachable in-process while it serves (the one-process stack).
    let served = kms_telemetry::local::serve(listener, routes, typed, tls.as_ref(), shutdown).await;

    sweeper.abort();
    let _ = sweeper.await;
    service.shutdown().await;
    tracing::info!("key store stopped");
    served.context("the gRPC server failed")
}
