//! Typed gRPC clients of the backends, each with a deadline on every call.
//!
//! Several HTTP/2 connections per backend, used round-robin: one connection
//! serializes on its own framing, a few spread the load over the runtime.
//! Every request carries the caller's trace context (`traceparent`). A backend
//! living in this process (the one-process stack) is called in-process
//! (`kms_telemetry::local`); one in another process over mutual TLS as the
//! `gateway` role (`kms_telemetry::tls`), verified as the backend's role.

use kms_proto::audit::v1::audit_client::AuditClient;
use kms_proto::audit::v1::audit_server::Audit;
use kms_proto::authz::v1::authz_client::AuthzClient;
use kms_proto::authz::v1::authz_server::Authz;
use kms_proto::error::AwsError;
use kms_proto::keystore::v1::key_store_client::KeyStoreClient;
use kms_proto::keystore::v1::key_store_server::KeyStore;
use kms_proto::registry::v1::{ResolveListenerRequest, registry_client::RegistryClient};
use kms_telemetry::local::{Local, Transport};
use kms_telemetry::tls::{InternalTls, Role};
use kms_telemetry::{Traced, traced};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Deadline for authz and registry calls.
const CONTROL_DEADLINE: Duration = Duration::from_secs(2);
/// Deadline for keystore and audit calls.
const DATA_DEADLINE: Duration = Duration::from_secs(5);

struct Pool {
    channels: Vec<Transport>,
    next: AtomicUsize,
}

impl Pool {
    fn new(
        url: &str,
        n: usize,
        deadline: Duration,
        tls: Option<&InternalTls>,
        server: Role,
    ) -> anyhow::Result<Self> {
        let channels = (0..n.max(1))
            .map(|_| {
                let endpoint = Endpoint::from_shared(url.to_string())?
                    .timeout(deadline)
                    .connect_timeout(Duration::from_secs(2))
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(30));
                let channel = kms_telemetry::tls::channel(&endpoint, tls, server);
                Ok(Transport::new(url, channel, deadline))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            channels,
            next: AtomicUsize::new(0),
        })
    }

    fn get(&self) -> Transport {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.channels.len();
        self.channels[i].clone()
    }

    /// The backend's typed handle when it lives in this process (every channel
    /// names the same address).
    fn local<S: ?Sized + Send + Sync + 'static>(&self) -> Option<Local<S>> {
        self.channels[0].local::<S>()
    }
}

/// One call of a hot-path backend method: the typed in-process call when the
/// backend lives in this process (`$local`: `authz_local`, `keystore_local`,
/// `audit_local`), the gRPC client (`$client`) otherwise; the response message,
/// or the backend's `Status`. `$rpc` names the method for the server span.
/// `$req` is the request message, or a `tonic::Request` of it carrying extensions
/// for the in-process server (the network path does not send extensions).
macro_rules! backend_call {
    ($clients:expr, $local:ident, $client:ident, $service:literal, $rpc:expr, $method:ident, $req:expr) => {{
        let request = $req;
        match $clients.$local() {
            Some(backend) => {
                backend
                    .call($service, $rpc, |b| {
                        b.$method(tonic::IntoRequest::into_request(request))
                    })
                    .await
            }
            // Boxed: a tonic client call's future is several KB, and kept inline it
            // would make every caller's future (and so every request's) that large
            // even when the typed in-process path serves the call.
            None => Box::pin($clients.$client().$method(request))
                .await
                .map(tonic::Response::into_inner),
        }
    }};
}
pub(crate) use backend_call;

pub struct Clients {
    authz: Pool,
    keystore: Pool,
    audit: Pool,
    registry: Pool,
    /// The gateway's internal certificate (`None`: plaintext).
    tls: Option<InternalTls>,
}

impl Clients {
    pub fn connect(config: &crate::Config) -> anyhow::Result<Self> {
        let n = config.grpc_connections;
        let tls = config.internal_tls.load(Role::Gateway)?;
        let t = tls.as_ref();
        Ok(Self {
            authz: Pool::new(&config.authz_url, n, CONTROL_DEADLINE, t, Role::Authz)?,
            keystore: Pool::new(&config.keystore_url, n, DATA_DEADLINE, t, Role::Keystore)?,
            audit: Pool::new(&config.audit_url, n, DATA_DEADLINE, t, Role::Audit)?,
            registry: Pool::new(&config.registry_url, 1, CONTROL_DEADLINE, t, Role::Registry)?,
            tls,
        })
    }

    /// A channel of its own to `endpoint` (e.g. a long-lived stream without the
    /// unary deadline), with the same transport security as the pools.
    pub fn channel(&self, endpoint: &Endpoint, server: Role) -> Channel {
        kms_telemetry::tls::channel(endpoint, self.tls.as_ref(), server)
    }

    pub fn authz(&self) -> AuthzClient<Traced> {
        AuthzClient::new(traced(self.authz.get()))
    }

    /// authz's typed handle when it runs in this process (the hot path's typed
    /// in-process call, `kms_telemetry::local`); `None`: use [`Self::authz`].
    pub fn authz_local(&self) -> Option<Local<dyn Authz>> {
        self.authz.local()
    }

    /// The keystore's typed handle when it runs in this process.
    pub fn keystore_local(&self) -> Option<Local<dyn KeyStore>> {
        self.keystore.local()
    }

    /// audit's typed handle when it runs in this process.
    pub fn audit_local(&self) -> Option<Local<dyn Audit>> {
        self.audit.local()
    }

    pub fn keystore(&self) -> KeyStoreClient<Traced> {
        KeyStoreClient::new(traced(self.keystore.get()))
    }

    pub fn audit(&self) -> AuditClient<Traced> {
        AuditClient::new(traced(self.audit.get()))
    }

    /// The registry (the EC2 model: VPCs, subnets, endpoints).
    pub fn registry(&self) -> RegistryClient<Traced> {
        RegistryClient::new(traced(self.registry.get()))
    }

    /// Which endpoint owns the local address a connection arrived on.
    pub async fn resolve_listener(
        &self,
        local: SocketAddr,
    ) -> Result<Option<kms_proto::registry::v1::Endpoint>, AwsError> {
        let resp = self
            .registry()
            .resolve_listener(ResolveListenerRequest {
                local_addr: local.to_string(),
            })
            .await
            .map_err(|s| AwsError::from_status(&s))?;
        Ok(resp.into_inner().endpoint)
    }
}
