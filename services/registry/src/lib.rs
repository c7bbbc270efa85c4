//! Registry service: the EC2-side model of VPCs, subnets, VPC endpoints and
//! their network interfaces, served over gRPC (`kms.registry.v1.Registry`).
//!
//! The gateway asks it, once per accepted connection, which endpoint owns the
//! local address the connection arrived on (`ResolveListener`, answered from
//! memory), and follows `WatchInterfaces` to bind one listener per endpoint
//! network interface. It also serves the authoritative DNS of the endpoints
//! (`dns`), when `Config::dns_public_ip` is set.

mod cidr;
mod config;
pub mod dns;
mod error;
mod filter;
mod grpc;
mod model;
mod registry;
mod store;

use std::future::Future;

use kms_proto::registry::v1::registry_server::RegistryServer;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use cidr::Ipv4Cidr;
pub use config::Config;
pub use error::RegistryError;
pub use filter::Filter;
pub use grpc::RegistryService;
pub use model::{
    DEFAULT_ENDPOINT_POLICY, Endpoint, EndpointSubnet, NetworkInterface, NewEndpoint, Subnet, Vpc,
};
pub use registry::ec2::{
    DnsEntry, EndpointChanges, EndpointService, InterfaceView, Unsuccessful, VpcEndpointView,
    availability_zone_id,
};
pub use registry::{InterfaceTable, Listener, Registry};
pub use store::{SqliteStore, Store};

/// Open the database (running migrations), load the interface table, and
/// serve gRPC on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let registry = Registry::open(&config).await?;
    let (stop_tx, stop) = watch::channel(false);
    let dns = match config.dns_public_ip {
        Some(ip) => {
            let (udp, tcp) = dns::bind_public(ip, config.dns_port).await?;
            let mut stop = stop.clone();
            Some(tokio::spawn(dns::serve_answering(
                registry.clone(),
                udp,
                tcp,
                config.dns_public_endpoint_ip,
                config.dns_allow_non_loopback,
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
            )))
        }
        None => None,
    };
    let tls = config
        .internal_tls
        .load(kms_telemetry::tls::Role::Registry)?;
    let result = serve_with_tls(listener, registry.clone(), tls, async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    })
    .await;
    if let Some(dns) = dns {
        match dns.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "dns server failed"),
            Err(e) => tracing::warn!(error = %e, "dns server panicked"),
            Ok(Ok(())) => {}
        }
    }
    registry.store().close().await;
    result
}

/// Serve an already opened registry on `listener` until `shutdown` completes.
/// Tests and the launcher keep a clone of `registry` to act through the
/// library API (e.g. `create_endpoint` before CreateVpcEndpoint exists).
pub async fn serve<S: Store>(
    listener: TcpListener,
    registry: Registry<S>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with_tls(listener, registry, None, shutdown).await
}

/// [`serve`], over mutual TLS when `tls` is given (`kms_telemetry::tls`).
pub async fn serve_with_tls<S: Store>(
    listener: TcpListener,
    registry: Registry<S>,
    tls: Option<kms_telemetry::tls::InternalTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    // The store is open and migrated by now.
    health
        .set_serving::<RegistryServer<RegistryService<S>>>()
        .await;

    let (stopping_tx, stopping) = watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        tracing::info!("registry shutting down");
        // Ends the WatchInterfaces streams, which would otherwise hold the
        // graceful shutdown open.
        let _ = stopping_tx.send(true);
    };

    tracing::info!(addr = ?listener.local_addr().ok(), "registry serving");
    let routes = tonic::service::Routes::new(health_service).add_service(RegistryServer::new(
        RegistryService::new(registry, stopping),
    ));
    // Also reachable in-process while it serves (the one-process stack).
    kms_telemetry::local::serve(
        listener,
        routes,
        kms_telemetry::local::Handles::none(),
        tls.as_ref(),
        shutdown,
    )
    .await?;
    Ok(())
}
