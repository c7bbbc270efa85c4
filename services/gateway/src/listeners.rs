//! The listeners: the public one and one per VPC endpoint network interface.
//!
//! The gateway follows the registry's `WatchInterfaces` stream and keeps one
//! TCP listener on `<interface private IP>:<public port>` per interface,
//! serving the full API exactly like the public listener. A connection's
//! endpoint comes only from the local address it arrived on (`ResolveListener`
//! on accept); nothing the client sends changes it.
//!
//! With TLS configured, every interface address also gets a TLS listener on
//! the TLS port (the public TLS listener's), bound and closed together with its
//! plain one; TLS decides nothing about the endpoint either.
//!
//! Each listener has a close signal. It stops the accept loop and every open
//! connection of that listener: an in-flight request is answered, then the
//! connection is closed (so keep-alive connections of a deleted endpoint stop
//! being served). Shutdown closes every listener the same way.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use kms_proto::registry::v1::registry_client::RegistryClient;
use kms_proto::registry::v1::{InterfaceSnapshot, WatchInterfacesRequest};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::{ConnInfo, State};

/// First and largest pause before resubscribing to a broken interface stream.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Held by every connection task; `run` waits until all are dropped.
pub(crate) type DrainGuard = watch::Receiver<()>;

/// Resolves once the signal is true (or its sender is gone).
async fn closed(signal: &mut watch::Receiver<bool>) {
    let _ = signal.wait_for(|c| *c).await;
}

/// Accept connections on `listener` until `close` turns true; each connection
/// is served until it ends or `close` turns true (then drained gracefully).
/// `tls`: the listener serves HTTPS. `expected_vpce` is the endpoint an
/// interface listener belongs to (`None` for the public listener).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    tls: Option<TlsAcceptor>,
    expected_vpce: Option<Arc<str>>,
    mut close: watch::Receiver<bool>,
    drain: DrainGuard,
) {
    let addr = listener.local_addr().ok();
    loop {
        let (stream, peer) = tokio::select! {
            _ = closed(&mut close) => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    // e.g. out of descriptors: do not spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        tokio::spawn(serve_connection(
            state.clone(),
            stream,
            tls.clone(),
            peer,
            expected_vpce.clone(),
            close.clone(),
            drain.clone(),
        ));
    }
    tracing::debug!(?addr, "listener closed");
}

async fn serve_connection(
    state: Arc<State>,
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    peer: SocketAddr,
    expected_vpce: Option<Arc<str>>,
    mut close: watch::Receiver<bool>,
    _drain: DrainGuard,
) {
    let _ = stream.set_nodelay(true);
    // The network path: the address the connection arrived on, nothing else.
    let Ok(local) = stream.local_addr() else {
        return;
    };
    // Fail closed: a connection whose path cannot be established is not served.
    let endpoint = match state.clients.resolve_listener(local).await {
        Ok(e) => e,
        Err(e) if expected_vpce.is_none() && public_without_registry(&state, local) => {
            tracing::warn!(error = %e, %local, "registry could not resolve listener; serving the public listener's connection as the public endpoint (no interface has its address)");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, %local, "registry could not resolve listener; closing");
            return;
        }
    };
    // An interface listener outlives its endpoint by the time the registry's
    // snapshot takes to arrive: in that window the registry may already say
    // "public" (or name a new endpoint) for this address. Such a connection is
    // not served at all rather than served under another identity.
    if let Some(expected) = &expected_vpce
        && endpoint.as_ref().map(|e| e.vpce_id.as_str()) != Some(&**expected)
    {
        tracing::info!(%local, vpce_id = %expected, "connection on a listener whose endpoint is gone; closing");
        return;
    }
    let mut conn = ConnInfo {
        peer,
        peer_ip: peer.ip().to_string(),
        local,
        endpoint,
        tls: None,
    };
    let Some(acceptor) = tls else {
        serve_http(state, Arc::new(conn), stream, close).await;
        return;
    };
    let handshake = tokio::select! {
        _ = closed(&mut close) => return,
        r = tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => r,
    };
    let stream = match handshake {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, %peer, %local, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, %local, "TLS handshake timed out");
            return;
        }
    };
    conn.tls = Some(crate::tls::TlsSession::of(stream.get_ref().1));
    serve_http(state, Arc::new(conn), stream, close).await;
}

/// Whether a connection that arrived on the public listener at `local` is the
/// public endpoint's although the registry cannot be asked: the latest
/// interface snapshot is known and no interface has that address (so the
/// registry would say "public"). Without a snapshot (e.g. a wildcard public
/// listener, where the gateway does not follow them) it fails closed.
fn public_without_registry(state: &State, local: SocketAddr) -> bool {
    state
        .interface_ips
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|ips| !ips.contains(&local.ip()))
}

/// Serve HTTP/1.1 or HTTP/2 on an established connection (plain or TLS)
/// until it ends or `close` turns true.
async fn serve_http<I>(
    state: Arc<State>,
    conn: Arc<ConnInfo>,
    io: I,
    mut close: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        crate::http::handle(state.clone(), conn.clone(), req)
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with error");
            }
            return;
        }
        _ = closed(&mut close) => {}
    }
    // Answer what is in flight, then close (HTTP/1: no more keep-alive
    // requests; HTTP/2: GOAWAY).
    connection.as_mut().graceful_shutdown();
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "connection ended with error while closing");
    }
}

/// How long before binding the addresses that could not be bound is retried.
const BIND_RETRY: Duration = Duration::from_secs(1);

/// The ports of the endpoint interface listeners: the public endpoint's, and
/// the TLS listener's with its acceptor when TLS is on.
#[derive(Clone)]
pub(crate) struct Ports {
    pub http: u16,
    pub tls: Option<(TlsAcceptor, u16)>,
}

/// The listeners of one endpoint interface address (plain, and TLS when on).
struct Active {
    eni_id: String,
    close: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Active {
    async fn close(self) {
        let _ = self.close.send(true);
        // The sockets are released once the accept loops end.
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Follow the registry's interface snapshots, binding `<ip>:<port>` for every
/// interface and closing the listeners of interfaces gone, until `stop`.
/// While the registry is unreachable the existing listeners stay (each
/// connection still asks `ResolveListener`, which then fails closed, except
/// on the public listener for an address that no interface of the latest
/// snapshot has).
pub(crate) async fn follow_interfaces(
    state: Arc<State>,
    ports: Ports,
    mut stop: watch::Receiver<bool>,
    drain: DrainGuard,
) {
    let mut active: HashMap<IpAddr, Active> = HashMap::new();
    let mut backoff = BACKOFF_START;
    // A channel of its own, without the unary deadline: the stream is long-lived.
    let channel = match tonic::transport::Endpoint::from_shared(state.config.registry_url.clone()) {
        Ok(e) => state.clients.channel(
            &e.connect_timeout(Duration::from_secs(2))
                .http2_keep_alive_interval(Duration::from_secs(30)),
            kms_telemetry::tls::Role::Registry,
        ),
        Err(e) => {
            tracing::error!(error = %e, "invalid registry url; no endpoint listeners");
            return;
        }
    };
    'outer: loop {
        let mut client = RegistryClient::new(channel.clone());
        let subscribed = tokio::select! {
            _ = closed(&mut stop) => break,
            r = client.watch_interfaces(WatchInterfacesRequest {}) => r,
        };
        match subscribed {
            Ok(response) => {
                let mut stream = response.into_inner();
                // The last snapshot, while some of its addresses could not be bound.
                let mut unbound: Option<InterfaceSnapshot> = None;
                loop {
                    let message = tokio::select! {
                        _ = closed(&mut stop) => break 'outer,
                        m = stream.message() => m,
                        () = tokio::time::sleep(BIND_RETRY), if unbound.is_some() => {
                            if let Some(snapshot) = unbound.take() {
                                unbound = apply(&state, &ports, &mut active, snapshot, &drain, true).await;
                            }
                            continue;
                        }
                    };
                    match message {
                        Ok(Some(snapshot)) => {
                            backoff = BACKOFF_START;
                            let table = snapshot
                                .endpoints
                                .iter()
                                .map(|e| (e.vpce_id.clone(), e.clone()))
                                .collect();
                            *state.endpoints.write().unwrap_or_else(|e| e.into_inner()) =
                                Some(Arc::new(table));
                            let ips = snapshot
                                .interfaces
                                .iter()
                                .filter_map(|i| i.private_ip.parse().ok())
                                .collect();
                            *state
                                .interface_ips
                                .write()
                                .unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(ips));
                            unbound =
                                apply(&state, &ports, &mut active, snapshot, &drain, false).await;
                        }
                        Ok(None) => {
                            tracing::warn!("interface stream ended; resubscribing");
                            break;
                        }
                        Err(status) => {
                            tracing::warn!(error = %status, "interface stream failed; resubscribing");
                            break;
                        }
                    }
                }
            }
            Err(status) => {
                tracing::warn!(error = %status, "cannot watch interfaces; retrying");
            }
        }
        tokio::select! {
            _ = closed(&mut stop) => break,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
    for (_, a) in active.drain() {
        a.close().await;
    }
}

/// Whether the gateway may bind `ip` for an endpoint interface.
pub fn may_bind(ip: IpAddr, allow_non_loopback: bool) -> bool {
    allow_non_loopback || ip.is_loopback()
}

/// Bind and close listeners to match `snapshot`. Returns the snapshot back
/// when some address could not be bound (to be retried).
async fn apply(
    state: &Arc<State>,
    ports: &Ports,
    active: &mut HashMap<IpAddr, Active>,
    snapshot: InterfaceSnapshot,
    drain: &DrainGuard,
    retrying: bool,
) -> Option<InterfaceSnapshot> {
    let mut wanted: HashMap<IpAddr, (String, String)> = HashMap::new();
    for eni in &snapshot.interfaces {
        match eni.private_ip.parse::<IpAddr>() {
            Ok(ip) => {
                wanted.insert(ip, (eni.eni_id.clone(), eni.vpce_id.clone()));
            }
            Err(_) => {
                tracing::warn!(eni_id = %eni.eni_id, ip = %eni.private_ip, "interface address unparsable");
            }
        }
    }
    // Close first: an address that moved to another interface gets a fresh
    // listener (and its old connections, of the old endpoint, are closed).
    let gone: Vec<IpAddr> = active
        .iter()
        .filter(|(ip, a)| wanted.get(*ip).map(|(eni, _)| eni) != Some(&a.eni_id))
        .map(|(ip, _)| *ip)
        .collect();
    for ip in gone {
        if let Some(a) = active.remove(&ip) {
            tracing::info!(%ip, eni_id = %a.eni_id, "closing endpoint listener");
            // Wait for the sockets to be released so that a new interface on
            // the same address can bind them.
            a.close().await;
        }
    }
    let mut retry = false;
    for (ip, (eni_id, vpce_id)) in wanted {
        if active.contains_key(&ip) {
            continue;
        }
        if !may_bind(ip, state.config.allow_non_loopback_interfaces) {
            if retrying {
                continue;
            }
            tracing::warn!(%ip, %eni_id, "not binding a non-loopback interface address (see --allow-non-loopback-interfaces)");
            continue;
        }
        // The plain listener and the TLS one (when on): both or neither.
        let mut wanted_ports = vec![(ports.http, None)];
        if let Some((acceptor, port)) = &ports.tls {
            wanted_ports.push((*port, Some(acceptor.clone())));
        }
        let mut bound = Vec::new();
        for (port, tls) in wanted_ports {
            let addr = SocketAddr::new(ip, port);
            match TcpListener::bind(addr).await {
                Ok(l) => bound.push((addr, l, tls)),
                Err(e) => {
                    if retrying {
                        tracing::debug!(%addr, %eni_id, error = %e, "cannot bind endpoint listener; retrying");
                    } else {
                        tracing::warn!(%addr, %eni_id, error = %e, "cannot bind endpoint listener; retrying");
                    }
                    retry = true;
                    bound.clear();
                    break;
                }
            }
        }
        if bound.is_empty() {
            continue;
        }
        let vpce_id: Arc<str> = vpce_id.into();
        let (close, closed) = watch::channel(false);
        let mut tasks = Vec::new();
        for (addr, listener, tls) in bound {
            tracing::info!(%addr, tls = tls.is_some(), %eni_id, %vpce_id, generation = snapshot.generation, "endpoint listener serving");
            tasks.push(tokio::spawn(accept_loop(
                listener,
                state.clone(),
                tls,
                Some(vpce_id.clone()),
                closed.clone(),
                drain.clone(),
            )));
        }
        active.insert(
            ip,
            Active {
                eni_id,
                close,
                tasks,
            },
        );
    }
    retry.then_some(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_without_the_flag() {
        assert!(may_bind("127.10.1.4".parse().unwrap(), false));
        assert!(!may_bind("10.0.1.4".parse().unwrap(), false));
        assert!(may_bind("10.0.1.4".parse().unwrap(), true));
    }
}
