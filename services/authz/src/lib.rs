//! authz: the only holder of secret access keys.
//!
//! The gateway asks it to verify each request's SigV4 signature (`Authenticate`, returning
//! the caller) and to decide whether the caller may perform the action (`Authorize`).
//! It also keeps the accounts and their root access keys (`CreateAccount`, `ListAccounts`),
//! bootstrapping a fresh database from a file or with the two AWS documentation examples.

pub mod accounts;
pub mod authorize;
pub mod clock;
pub mod config;
pub mod error;
pub mod grants;
pub mod grpc;
pub mod iam;
pub mod policy;
pub mod sigv4;
pub mod simulate;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kms_proto::authz::v1::authz_server::AuthzServer;
use tokio::net::TcpListener;

pub use clock::{Clock, FixedClock, SystemClock};
pub use config::Config;

use crate::grpc::AuthzService;
use crate::sigv4::Authenticator;
use crate::store::{SqliteStore, Store};

/// Serve authz on `listener` until `shutdown` completes, with the system clock.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with_clock(listener, config, Arc::new(SystemClock), shutdown).await
}

/// [`run`] with an injected clock (signature time checks and creation times use it).
pub async fn run_with_clock(
    listener: TcpListener,
    config: Config,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tls = config.internal_tls.load(kms_telemetry::tls::Role::Authz)?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_not_serving::<AuthzServer<AuthzService<SqliteStore>>>()
        .await;

    let store = Arc::new(SqliteStore::connect(&config.database_url).await?);
    bootstrap(store.as_ref(), &config, clock.as_ref()).await?;

    let authenticator = Arc::new(Authenticator::new(
        store.clone(),
        clock.clone(),
        Duration::from_secs(config.max_clock_skew_secs),
    ));
    let iam = Arc::new(iam::Iam::new(store.pool.clone(), clock.clone()));
    let service = AuthzService::new(store, iam, authenticator, clock);
    health
        .set_serving::<AuthzServer<AuthzService<SqliteStore>>>()
        .await;
    tracing::info!(addr = ?listener.local_addr().ok(), "authz serving");

    let service = Arc::new(service);
    let typed = kms_telemetry::local::Handles::none()
        .with(service.clone() as Arc<dyn kms_proto::authz::v1::authz_server::Authz>);
    let routes =
        tonic::service::Routes::new(health_service).add_service(AuthzServer::from_arc(service));
    // Also reachable in-process while it serves (the one-process stack).
    kms_telemetry::local::serve(listener, routes, typed, tls.as_ref(), shutdown).await?;
    Ok(())
}

async fn bootstrap(store: &impl Store, config: &Config, clock: &dyn Clock) -> anyhow::Result<()> {
    let now_ms = (clock.now().unix_timestamp_nanos() / 1_000_000) as i64;
    let accounts = match &config.bootstrap_file {
        Some(path) => accounts::read_bootstrap(path, now_ms)?,
        None => accounts::default_accounts(now_ms),
    };
    if store.bootstrap(&accounts).await? {
        for a in &accounts {
            tracing::info!(
                account_id = %a.account_id,
                access_key_id = %a.root_key.access_key_id,
                "bootstrapped account"
            );
        }
    }
    Ok(())
}
