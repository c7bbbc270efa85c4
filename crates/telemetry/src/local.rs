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
//!
//! A server may also register typed handles: its service implementation as the
//! trait object of the generated server trait (`Arc<dyn KeyStore>`). A client on
//! the hot path asks its [`Transport`] for one ([`Transport::local`]) and calls
//! the trait method with the message itself ([`Local::call`]): no protobuf
//! encoding or decoding, no gRPC framing, no routing, the same `Status` (with its
//! metadata), the same server span and the same deadline. Handlers read nothing
//! else of the request (no metadata, no peer address), so both paths are one
//! contract; calls without a typed handle take the encoded path.

use std::any::Any;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::body::Body;
use tonic::codegen::Service;
use tonic::service::Routes;
use tonic::transport::Channel;
use tracing::Instrument;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

static ENABLED: AtomicBool = AtomicBool::new(false);
/// Looked up on every in-process call (four per cryptographic request); the keys are
/// this process's own listener addresses, so a fast hash needs no protection from
/// chosen collisions.
type Servers = HashMap<SocketAddr, Entry, foldhash::fast::RandomState>;
static SERVERS: LazyLock<RwLock<Servers>> = LazyLock::new(Default::default);

/// What a server registered: its routes, and its typed handles.
#[derive(Clone)]
struct Entry {
    routes: Routes,
    typed: Handles,
}

/// A server's typed handles for in-process callers (see the module's docs).
#[derive(Clone, Default)]
pub struct Handles(Vec<Arc<dyn Any + Send + Sync>>);

impl Handles {
    /// No typed handle: callers use the encoded path.
    pub fn none() -> Self {
        Self::default()
    }

    /// Add `service` as the trait object callers ask for (`Arc<dyn KeyStore>`).
    pub fn with<S: ?Sized + Send + Sync + 'static>(mut self, service: Arc<S>) -> Self {
        self.0.push(Arc::new(service));
        self
    }

    fn find<S: ?Sized + Send + Sync + 'static>(&self) -> Option<Arc<S>> {
        self.0
            .iter()
            .find_map(|h| h.downcast_ref::<Arc<S>>())
            .cloned()
    }
}

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

fn servers_mut() -> std::sync::RwLockWriteGuard<'static, Servers> {
    SERVERS.write().unwrap_or_else(|e| e.into_inner())
}

/// Make `routes` reachable in-process at `addr` (the address its listener is
/// bound to), with its typed handles, when [`enable`] was called; otherwise a no-op.
pub fn register(addr: SocketAddr, routes: &Routes, typed: &Handles) -> Registration {
    if !ENABLED.load(Ordering::Acquire) {
        return Registration(None);
    }
    servers_mut().insert(
        addr,
        Entry {
            routes: routes.clone(),
            typed: typed.clone(),
        },
    );
    Registration(Some(addr))
}

/// Serve `routes` on `listener` until `shutdown`, as every service does: the
/// server span of each request ([`crate::server_span`]), TCP_NODELAY on accepted
/// connections (Nagle and delayed ACKs would hold small replies back by ~40 ms),
/// and, while it serves, a [`register`]ed entry for in-process callers (`typed`:
/// its typed handles), dropped
/// before this returns so that what the caller drains next is no longer reachable.
///
/// With `tls` every connection is mutual TLS and every call is checked against
/// the allowlist of the server's role ([`crate::tls`]); the listening socket
/// is closed before this returns. Without it, plaintext h2c (tests, and
/// binaries whose operator opted out).
pub async fn serve(
    listener: tokio::net::TcpListener,
    routes: Routes,
    typed: Handles,
    tls: Option<&crate::tls::InternalTls>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let registration = listener
        .local_addr()
        .map(|addr| register(addr, &routes, &typed))
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
        .map(|e| e.routes.clone())
}

fn lookup_typed<S: ?Sized + Send + Sync + 'static>(addr: SocketAddr) -> Option<Arc<S>> {
    SERVERS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&addr)
        .and_then(|e| e.typed.find::<S>())
}

/// A typed handle of a server in this process, with the caller's deadline.
pub struct Local<S: ?Sized> {
    service: Arc<S>,
    deadline: Duration,
}

impl<S: ?Sized> Local<S> {
    /// Call `method` (the gRPC method's name, for the span) as `f` does with the
    /// service: inside the server span, within the deadline. A call past the
    /// deadline fails as the encoded path does (`CANCELLED`, "Timeout expired").
    pub async fn call<'a, T, F, Fut>(
        &'a self,
        service: &str,
        method: &str,
        f: F,
    ) -> Result<T, tonic::Status>
    where
        F: FnOnce(&'a S) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>> + 'a,
    {
        let span = crate::rpc_server_span(service, method);
        match tokio::time::timeout(self.deadline, f(&self.service).instrument(span)).await {
            Ok(r) => r.map(tonic::Response::into_inner),
            Err(_) => Err(tonic::Status::cancelled(
                tonic::TimeoutExpired(()).to_string(),
            )),
        }
    }
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

impl Transport {
    /// The typed handle `S` of the server this transport reaches, when that
    /// server lives in this process and registered one.
    pub fn local<S: ?Sized + Send + Sync + 'static>(&self) -> Option<Local<S>> {
        let service = lookup_typed::<S>(self.addr?)?;
        Some(Local {
            service,
            deadline: self.deadline,
        })
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

    /// In-process calls enabled, and a loopback port with no listener behind it
    /// (its address and URL).
    fn unused_loopback() -> (SocketAddr, String) {
        enable();
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        (addr, format!("http://{addr}"))
    }

    /// A registered server answers with no listener at all; once its registration
    /// is dropped the same client goes over TCP (nothing listens: it fails).
    #[tokio::test]
    async fn a_registered_server_is_called_in_process_until_it_unregisters() {
        let (addr, url) = unused_loopback();
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        let registration = register(addr, &Routes::new(health), &Handles::none());
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

    #[tonic::async_trait]
    trait Echo: Send + Sync + 'static {
        async fn echo(
            &self,
            r: tonic::Request<String>,
        ) -> Result<tonic::Response<String>, tonic::Status>;
    }

    struct Server;

    #[tonic::async_trait]
    impl Echo for Server {
        async fn echo(
            &self,
            r: tonic::Request<String>,
        ) -> Result<tonic::Response<String>, tonic::Status> {
            let msg = r.into_inner();
            match msg.as_str() {
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok(tonic::Response::new(msg))
                }
                "fail" => {
                    let mut s = tonic::Status::permission_denied("no");
                    s.metadata_mut().insert("x-why", "policy".parse().unwrap());
                    Err(s)
                }
                _ => Ok(tonic::Response::new(format!("echo {msg}"))),
            }
        }
    }

    #[tonic::async_trait]
    trait Other: Send + Sync + 'static {}

    /// A typed handle is found by its trait, answers with the message itself (a
    /// failure keeps its status and metadata), is bounded by the caller's deadline,
    /// and is gone once the server unregisters.
    #[tokio::test]
    async fn typed_handles_answer_in_process_until_the_server_unregisters() {
        let (addr, url) = unused_loopback();
        let channel = tonic::transport::Endpoint::from_shared(url.clone())
            .unwrap()
            .connect_lazy();
        let transport = Transport::new(&url, channel, Duration::from_millis(300));
        assert!(
            transport.local::<dyn Echo>().is_none(),
            "nothing registered yet"
        );

        let (_, health) = tonic_health::server::health_reporter();
        let typed = Handles::none().with(Arc::new(Server) as Arc<dyn Echo>);
        let registration = register(addr, &Routes::new(health), &typed);
        assert!(
            transport.local::<dyn Other>().is_none(),
            "no handle of that trait"
        );
        let echo = transport.local::<dyn Echo>().expect("registered");
        let answer = echo
            .call("test.Echo", "Echo", |e| {
                e.echo(tonic::Request::new("hi".into()))
            })
            .await
            .unwrap();
        assert_eq!(answer, "echo hi");
        let err = echo
            .call("test.Echo", "Echo", |e| {
                e.echo(tonic::Request::new("fail".into()))
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        assert_eq!(err.metadata().get("x-why").unwrap(), "policy");
        let started = std::time::Instant::now();
        let err = echo
            .call("test.Echo", "Echo", |e| {
                e.echo(tonic::Request::new("slow".into()))
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Cancelled, "{err}");
        assert_eq!(err.message(), "Timeout expired");
        assert!(started.elapsed() < Duration::from_secs(2));

        drop(registration);
        assert!(transport.local::<dyn Echo>().is_none(), "unregistered");
    }
}
