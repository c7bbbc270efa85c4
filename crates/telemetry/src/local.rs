//! The in-process gRPC transport.
//!
//! When the five services share one process (`kms-stack`), a call from one to
//! another need not cross a socket: the client hands the encoded gRPC request
//! straight to the server's routes. The contract does not change: the same
//! protobuf messages, gRPC framing, status codes and metadata (the trace
//! context included), the same server span and the same client deadline; only
//! the TCP connection and the HTTP/2 framing are gone (and with them most of the
//! cost of a hop: syscalls, HPACK, flow control, cross-thread wake-ups).
//!
//! Like grpc-java's in-process transport, servers register under their address
//! and clients look the address up on every call. Registration is off unless the
//! process calls [`enable`] (the one-process stack does; the separate service
//! binaries of a compose deployment do not, so they always talk over the
//! network). A server is unregistered when its [`Registration`] is dropped (when
//! it stops serving), so a call never reaches a stopped server: it goes over TCP
//! instead and fails there as it would between processes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::body::Body;
use tonic::codegen::Service;
use tonic::service::Routes;
use tonic::transport::Channel;
use tracing::Instrument;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

static ENABLED: AtomicBool = AtomicBool::new(false);
static SERVERS: LazyLock<RwLock<HashMap<SocketAddr, Routes>>> = LazyLock::new(Default::default);

/// Let servers of this process register for in-process calls.
pub fn enable() {
    ENABLED.store(true, Ordering::Release);
}

/// A server's entry in the directory; dropping it removes the entry.
#[must_use = "the server is unregistered when this is dropped"]
pub struct Registration(Option<SocketAddr>);

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(addr) = self.0 {
            servers_mut().remove(&addr);
        }
    }
}

fn servers_mut() -> std::sync::RwLockWriteGuard<'static, HashMap<SocketAddr, Routes>> {
    SERVERS.write().unwrap_or_else(|e| e.into_inner())
}

/// Make `routes` reachable in-process at `addr` (the address its listener is
/// bound to), when [`enable`] was called; otherwise a no-op.
pub fn register(addr: SocketAddr, routes: &Routes) -> Registration {
    if !ENABLED.load(Ordering::Acquire) {
        return Registration(None);
    }
    servers_mut().insert(addr, routes.clone());
    Registration(Some(addr))
}

/// Serve `routes` on `listener` until `shutdown`, as every service does: the
/// server span of each request ([`crate::server_span`]), TCP_NODELAY on accepted
/// connections (Nagle and delayed ACKs would hold small replies back by ~40 ms),
/// and, while it serves, a [`register`]ed entry for in-process callers, dropped
/// before this returns so that what the caller drains next is no longer reachable.
///
/// With `tls` every connection is mutual TLS and every call is checked against
/// the allowlist of the server's role ([`crate::tls`]); the listening socket
/// is closed before this returns. Without it, plaintext h2c (tests, and
/// binaries whose operator opted out).
pub async fn serve(
    listener: tokio::net::TcpListener,
    routes: Routes,
    tls: Option<&crate::tls::InternalTls>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let registration = listener
        .local_addr()
        .map(|addr| register(addr, &routes))
        .ok();
    let router = tonic::transport::Server::builder()
        .trace_fn(crate::server_span)
        .layer(crate::tls::GuardLayer(tls.map(|t| t.role())))
        .add_routes(routes);
    let served = match tls {
        None => {
            router
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                    shutdown,
                )
                .await
        }
        Some(tls) => {
            let (incoming, accepting) = crate::tls::incoming(listener, tls);
            let served = router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await;
            accepting.stop().await;
            served
        }
    };
    drop(registration);
    served
}

fn lookup(addr: SocketAddr) -> Option<Routes> {
    SERVERS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&addr)
        .cloned()
}

/// A client's transport to one server: in-process when the server lives in this
/// process and is registered, over the channel otherwise.
#[derive(Clone)]
pub struct Transport {
    channel: Channel,
    /// The server's socket address, when the URL names one (a host name never
    /// matches a local server).
    addr: Option<SocketAddr>,
    deadline: Duration,
    /// The local server chosen by `poll_ready` for the next `call`.
    ready_local: Option<Routes>,
}

impl Transport {
    /// `channel` must have been made for `url` with `deadline` as its timeout;
    /// in-process calls get the same deadline.
    pub fn new(url: &str, channel: Channel, deadline: Duration) -> Self {
        let addr = url
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.authority().and_then(|a| a.as_str().parse().ok()));
        Self {
            channel,
            addr,
            deadline,
            ready_local: None,
        }
    }
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Body>, BoxError>> + Send + 'static>>;

impl Service<http::Request<Body>> for Transport {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.ready_local.is_none()
            && let Some(routes) = self.addr.and_then(lookup)
        {
            self.ready_local = Some(routes);
        }
        match &mut self.ready_local {
            Some(routes) => Service::<http::Request<Body>>::poll_ready(routes, cx)
                .map_err(|e: Infallible| match e {}),
            None => self.channel.poll_ready(cx).map_err(Into::into),
        }
    }

    fn call(&mut self, req: http::Request<Body>) -> ResponseFuture {
        match self.ready_local.take() {
            Some(mut routes) => {
                let span = crate::server_span(&req);
                let deadline = self.deadline;
                let served = routes.call(req).instrument(span);
                Box::pin(async move {
                    match tokio::time::timeout(deadline, served).await {
                        Ok(Ok(resp)) => Ok(resp),
                        Ok(Err(e)) => match e {},
                        Err(_) => Err(Box::new(tonic::TimeoutExpired(())) as BoxError),
                    }
                })
            }
            None => {
                // The channel's own timeout starts once it has a connection; a call
                // that waits for a new one (a hung peer never finishes the TLS
                // handshake) would wait as long as the outage. The deadline covers
                // the whole call, as in-process.
                let fut = self.channel.call(req);
                let deadline = self.deadline;
                Box::pin(async move {
                    match tokio::time::timeout(deadline, fut).await {
                        Ok(r) => r.map_err(Into::into),
                        Err(_) => Err(Box::new(tonic::TimeoutExpired(())) as BoxError),
                    }
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

    #[tokio::test]
    async fn urls_with_a_socket_address_can_be_local_host_names_cannot() {
        let ch = Channel::from_static("http://127.0.0.1:1").connect_lazy();
        let t = Transport::new("http://127.0.0.1:5001", ch.clone(), Duration::from_secs(1));
        assert_eq!(t.addr, Some("127.0.0.1:5001".parse().unwrap()));
        let t = Transport::new("http://authz:50051", ch, Duration::from_secs(1));
        assert_eq!(t.addr, None);
    }

    /// A registered server answers with no listener at all; once its registration
    /// is dropped the same client goes over TCP (nothing listens: it fails).
    #[tokio::test]
    async fn a_registered_server_is_called_in_process_until_it_unregisters() {
        enable();
        // A loopback port with no listener behind it.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let url = format!("http://{addr}");
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        let registration = register(addr, &Routes::new(health));
        let channel = tonic::transport::Endpoint::from_shared(url.clone())
            .unwrap()
            .connect_lazy();
        let mut client = HealthClient::new(crate::traced(Transport::new(
            &url,
            channel,
            Duration::from_secs(2),
        )));
        let check = || HealthCheckRequest {
            service: String::new(),
        };
        let status = client.check(check()).await.unwrap().into_inner().status;
        assert_eq!(status, ServingStatus::Serving as i32);
        drop(registration);
        let err = client.check(check()).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
    }
}
