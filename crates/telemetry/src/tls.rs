//! Mutual TLS on every internal gRPC hop.
//!
//! Only the gateway may say who a caller is: the backends trust the
//! `RequestContext` it sends. So a backend port must not be an attack surface:
//! every hop between two processes is TLS 1.3 (rustls on aws-lc-rs) with a
//! certificate on both ends, issued by a CA used for internal traffic only
//! (`kms-stack` and `kms-tls-init` make it; it is not the public endpoint's CA).
//!
//! - A certificate's *role* is its one DNS name, `<role>.internal.kms`
//!   ([`Role::server_name`]); a process presents its role's certificate both as
//!   a server and as a client (extended key usages serverAuth and clientAuth).
//! - A client verifies the server's certificate against the internal CA and the
//!   role it means to reach, whatever address it dials (compose dials container
//!   names).
//! - A server completes a handshake only with a client certificate from the
//!   internal CA that names a role; anything else (no certificate, another CA,
//!   no role) ends in a handshake failure. Then every call is checked against
//!   the server's allowlist ([`permits`]): a role that may not call the server
//!   gets `PERMISSION_DENIED` on every call except `grpc.health.v1`, which any
//!   internal role may ask (container health checks use the `ops` role).
//!
//! A folder holds one process's files: `ca.pem` (the internal CA), and
//! `<role>.pem` (the certificate, leaf first) and `<role>.key` of each role the
//! process acts as ([`InternalTls::load`]); the `ops` role's files are only
//! needed by health probes. Calls between services of one process
//! ([`crate::local`]) cross no socket and need no TLS.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::transport::{Channel, Endpoint, Uri};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Longest a peer may take to finish a handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The DNS suffix of role names.
pub const ROLE_DOMAIN: &str = "internal.kms";

/// Who a certificate speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Gateway,
    Authz,
    Keystore,
    Audit,
    Registry,
    /// Health probes and operator tools: `grpc.health.v1` on every server,
    /// and audit's `ListPublicKeys` (public keys).
    Ops,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Gateway,
        Role::Authz,
        Role::Keystore,
        Role::Audit,
        Role::Registry,
        Role::Ops,
    ];

    /// `gateway`, `authz`, ...: the file names of its certificate and key.
    pub fn name(self) -> &'static str {
        match self {
            Role::Gateway => "gateway",
            Role::Authz => "authz",
            Role::Keystore => "keystore",
            Role::Audit => "audit",
            Role::Registry => "registry",
            Role::Ops => "ops",
        }
    }

    /// The one DNS name of the role's certificate, e.g. `keystore.internal.kms`:
    /// what a client verifies the server against.
    pub fn server_name(self) -> String {
        format!("{}.{ROLE_DOMAIN}", self.name())
    }

    /// The roles that may call this server's services (besides health checks):
    /// the call graph of the system. The gateway calls every backend; the
    /// keystore calls authz (`Authorize`); nothing calls the gateway over gRPC.
    pub fn callers(self) -> &'static [Role] {
        match self {
            Role::Keystore | Role::Audit | Role::Registry => &[Role::Gateway],
            Role::Authz => &[Role::Gateway, Role::Keystore],
            Role::Gateway | Role::Ops => &[],
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| format!("unknown role {s:?}"))
    }
}

/// Whether a caller of `caller`'s role may call `path` (`/package.Service/Method`)
/// on the server of role `server`.
pub fn permits(server: Role, caller: Role, path: &str) -> bool {
    if path.starts_with("/grpc.health.v1.Health/") {
        return true;
    }
    if caller == Role::Ops {
        return server == Role::Audit && path == "/kms.audit.v1.Audit/ListPublicKeys";
    }
    server.callers().contains(&caller)
}

/// Why internal TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("no certificate in {}", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} does not hold a usable CA certificate", path.display())]
    BadCa {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("the {role} certificate and key do not fit together")]
    KeyMismatch {
        role: Role,
        #[source]
        source: rustls::Error,
    },
    #[error("the {role} certificate does not name {}", role.server_name())]
    WrongRole { role: Role },
    #[error("the TLS 1.3 configuration was refused")]
    Protocol(#[source] rustls::Error),
    #[error("building the client certificate verifier")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    #[error(
        "no internal TLS: set --internal-tls-dir (KMS_INTERNAL_TLS_DIR) to the folder of this \
         service's certificate, or opt out with KMS_INTERNAL_TLS=plaintext"
    )]
    NotConfigured,
    #[error("--internal-tls-dir and KMS_INTERNAL_TLS=plaintext contradict each other")]
    Contradictory,
}

/// Whether internal gRPC is mutually authenticated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Mutual TLS with the certificates of `--internal-tls-dir` (required).
    #[default]
    Mtls,
    /// No TLS at all: anyone who reaches a backend port can call it as any
    /// caller. Development only.
    Plaintext,
}

/// Internal TLS settings of a service binary (flattened into each service's
/// config). Libraries treat a missing folder as plaintext (tests spawn servers
/// in-process); binaries call [`InternalTlsConfig::check`] first, which refuses
/// that unless the operator opted out.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InternalTlsConfig {
    /// Folder of the internal TLS files: `ca.pem` (the internal CA) and this
    /// service's `<role>.pem` and `<role>.key` (e.g. `keystore.pem`).
    #[arg(long = "internal-tls-dir", env = "KMS_INTERNAL_TLS_DIR")]
    pub dir: Option<PathBuf>,
    /// `mtls` (default: `--internal-tls-dir` is required) or `plaintext` (no
    /// TLS between services; development only, logged as a warning).
    #[arg(
        long = "internal-tls",
        env = "KMS_INTERNAL_TLS",
        value_enum,
        default_value_t = Mode::Mtls
    )]
    pub mode: Mode,
}

impl InternalTlsConfig {
    /// Mutual TLS with the files of `dir`.
    pub fn dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Some(dir.into()),
            mode: Mode::Mtls,
        }
    }

    /// What a binary checks before starting: a folder, or an explicit opt-out
    /// (then warned about).
    pub fn check(&self) -> Result<(), TlsError> {
        match (&self.dir, self.mode) {
            (Some(_), Mode::Mtls) => Ok(()),
            (None, Mode::Mtls) => Err(TlsError::NotConfigured),
            (Some(_), Mode::Plaintext) => Err(TlsError::Contradictory),
            (None, Mode::Plaintext) => {
                tracing::warn!(
                    "KMS_INTERNAL_TLS=plaintext: internal gRPC is neither encrypted nor \
                     authenticated; anyone who reaches a service port can call it as any caller"
                );
                Ok(())
            }
        }
    }

    /// The files of `role`, or `None` without a folder (plaintext).
    pub fn load(&self, role: Role) -> Result<Option<InternalTls>, TlsError> {
        self.dir
            .as_deref()
            .map(|d| InternalTls::load(d, role))
            .transpose()
    }
}

/// One role's certificate, ready to serve and to call.
#[derive(Clone)]
pub struct InternalTls {
    role: Role,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

impl fmt::Debug for InternalTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InternalTls")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |source| TlsError::Read {
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The trust anchors of `ca.pem`.
pub fn read_roots(path: &Path) -> Result<Arc<rustls::RootCertStore>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert).map_err(|source| TlsError::BadCa {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(Arc::new(roots))
}

/// The role a peer certificate names, if any.
fn role_of(cert: &CertificateDer<'_>) -> Option<Role> {
    let cert = webpki::EndEntityCert::try_from(cert).ok()?;
    Role::ALL.into_iter().find(|r| {
        ServerName::try_from(r.server_name())
            .is_ok_and(|name| cert.verify_is_valid_for_subject_name(&name).is_ok())
    })
}

impl InternalTls {
    /// `dir/ca.pem`, `dir/<role>.pem` and `dir/<role>.key`.
    pub fn load(dir: &Path, role: Role) -> Result<Self, TlsError> {
        let roots = read_roots(&dir.join("ca.pem"))?;
        let cert_path = dir.join(format!("{}.pem", role.name()));
        let chain = read_certs(&cert_path)?;
        if role_of(&chain[0]) != Some(role) {
            return Err(TlsError::WrongRole { role });
        }
        let key_path = dir.join(format!("{}.key", role.name()));
        // The error never contains key material.
        let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|source| TlsError::Read {
            path: key_path.clone(),
            source,
        })?;
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
                .build()
                .map_err(TlsError::Verifier)?;
        let mismatch = |source| TlsError::KeyMismatch { role, source };
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(TlsError::Protocol)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(mismatch)?;
        server.alpn_protocols = vec![b"h2".to_vec()];
        let client = client_config(roots, Some((chain, key)))?;
        Ok(Self {
            role,
            server: Arc::new(server),
            client,
        })
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// A channel to the server of role `server` at `endpoint`'s URL, connected
    /// on first use (as `Endpoint::connect_lazy`), over mutual TLS. The
    /// endpoint's connect timeout covers the handshake.
    pub fn connect_lazy(&self, endpoint: &Endpoint, server: Role) -> Channel {
        endpoint.connect_with_connector_lazy(Connector::new(self.client.clone(), server))
    }

    /// [`InternalTls::connect_lazy`], connecting now.
    pub async fn connect(
        &self,
        endpoint: &Endpoint,
        server: Role,
    ) -> Result<Channel, tonic::transport::Error> {
        endpoint
            .connect_with_connector(Connector::new(self.client.clone(), server))
            .await
    }
}

/// A client configuration trusting the internal CA `roots`, presenting
/// `identity` when given. TLS 1.3, ALPN `h2`.
pub fn client_config(
    roots: Arc<rustls::RootCertStore>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Protocol)?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((chain, key)) => {
            let role = role_of(&chain[0]).unwrap_or(Role::Ops);
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|source| TlsError::KeyMismatch { role, source })?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// A channel over TLS with any client configuration (tests use it to try
/// certificates the servers must refuse).
pub fn connect_lazy_with(
    endpoint: &Endpoint,
    config: Arc<rustls::ClientConfig>,
    server: Role,
) -> Channel {
    endpoint.connect_with_connector_lazy(Connector::new(config, server))
}

/// A lazily connected channel: mutual TLS when `tls` is given, plaintext otherwise.
pub fn channel(endpoint: &Endpoint, tls: Option<&InternalTls>, server: Role) -> Channel {
    match tls {
        Some(tls) => tls.connect_lazy(endpoint, server),
        None => endpoint.connect_lazy(),
    }
}

/// Dials TCP (TCP_NODELAY) to the URI's host and port, then TLS, verifying
/// the server as `server_name` whatever the host.
#[derive(Clone)]
struct Connector {
    config: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
}

impl Connector {
    fn new(config: Arc<rustls::ClientConfig>, server: Role) -> Self {
        let server_name =
            ServerName::try_from(server.server_name()).expect("role names are valid DNS names");
        Self {
            config,
            server_name,
        }
    }
}

impl Service<Uri> for Connector {
    type Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let name = self.server_name.clone();
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or("no host in the URL")?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().unwrap_or(80);
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let tls = connector.connect(name, tcp).await?;
            Ok(TokioIo::new(tls))
        })
    }
}

/// What a server knows about an accepted internal connection (a request
/// extension).
#[derive(Debug, Clone)]
pub struct Peer {
    pub role: Role,
    pub addr: SocketAddr,
}

/// An accepted, handshaken connection.
pub struct TlsConn {
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    peer: Peer,
}

impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = Peer;
    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The accepted connections of `listener` that completed a mutual handshake
/// naming a role, as a stream for `serve_with_incoming`. Handshakes run
/// concurrently (a slow peer holds up nobody). The accept task ends when the
/// stream is dropped; `AcceptTask` aborts it and waits, so that the listening
/// socket is closed when serving ends.
pub(crate) fn incoming(
    listener: TcpListener,
    tls: &InternalTls,
) -> (
    tokio_stream::wrappers::ReceiverStream<Result<TlsConn, io::Error>>,
    AcceptTask,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
    let server = tls.role;
    let task = tokio::spawn(async move {
        loop {
            let (tcp, addr) = tokio::select! {
                () = tx.closed() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: do not spin.
                        tracing::warn!(error = %e, "internal accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::info!(%addr, %server, error = %e, "internal tls handshake refused");
                        return;
                    }
                    Err(_) => {
                        tracing::info!(%addr, %server, "internal tls handshake timed out");
                        return;
                    }
                };
                let role = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(role_of);
                let Some(role) = role else {
                    tracing::info!(%addr, %server, "internal client certificate names no role; closed");
                    return;
                };
                let _ = tx
                    .send(Ok(TlsConn {
                        stream,
                        peer: Peer { role, addr },
                    }))
                    .await;
            });
        }
    });
    (
        tokio_stream::wrappers::ReceiverStream::new(rx),
        AcceptTask(task),
    )
}

/// The accept loop of [`incoming`].
pub(crate) struct AcceptTask(tokio::task::JoinHandle<()>);

impl AcceptTask {
    /// Stop accepting and close the listening socket.
    pub(crate) async fn stop(self) {
        self.0.abort();
        let _ = self.0.await;
    }
}

/// Checks every call against [`permits`] for the server of role `server`. A
/// request without a [`Peer`] did not come through [`incoming`] (plaintext
/// serving) and passes.
#[derive(Clone)]
pub(crate) struct Guard<S> {
    inner: S,
    server: Option<Role>,
}

#[derive(Clone)]
pub(crate) struct GuardLayer(pub(crate) Option<Role>);

impl<S> tower::Layer<S> for GuardLayer {
    type Service = Guard<S>;
    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            server: self.0,
        }
    }
}

impl<S> Service<http::Request<Body>> for Guard<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        if let Some(server) = self.server {
            // A TLS server without the caller's verified role (which the handshake
            // always provides) refuses rather than guesses.
            let peer = req.extensions().get::<Peer>();
            if !peer.is_some_and(|p| permits(server, p.role, req.uri().path())) {
                let caller = peer.map_or("unknown".to_string(), |p| p.role.to_string());
                tracing::warn!(
                    %caller,
                    addr = ?peer.map(|p| p.addr),
                    %server,
                    path = req.uri().path(),
                    "internal call refused: role not allowed"
                );
                let status = tonic::Status::permission_denied(format!(
                    "the {caller} role may not call {}",
                    req.uri().path()
                ));
                return Box::pin(std::future::ready(Ok(status.into_http())));
            }
        }
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowlists_follow_the_call_graph() {
        let encrypt = "/kms.keystore.v1.KeyStore/Encrypt";
        assert!(permits(Role::Keystore, Role::Gateway, encrypt));
        for r in [
            Role::Registry,
            Role::Authz,
            Role::Audit,
            Role::Keystore,
            Role::Ops,
        ] {
            assert!(!permits(Role::Keystore, r, encrypt), "{r}");
        }
        let authorize = "/kms.authz.v1.Authz/Authorize";
        assert!(permits(Role::Authz, Role::Keystore, authorize));
        assert!(permits(Role::Authz, Role::Gateway, authorize));
        assert!(!permits(Role::Authz, Role::Registry, authorize));
        assert!(!permits(
            Role::Audit,
            Role::Keystore,
            "/kms.audit.v1.Audit/Append"
        ));
        assert!(!permits(
            Role::Audit,
            Role::Ops,
            "/kms.audit.v1.Audit/Append"
        ));
        assert!(permits(
            Role::Audit,
            Role::Ops,
            "/kms.audit.v1.Audit/ListPublicKeys"
        ));
        for server in Role::ALL {
            assert!(permits(server, Role::Ops, "/grpc.health.v1.Health/Check"));
        }
        assert_eq!("keystore".parse::<Role>(), Ok(Role::Keystore));
        assert_eq!(Role::Keystore.server_name(), "keystore.internal.kms");
    }

    #[test]
    fn binaries_need_a_folder_or_an_explicit_opt_out() {
        let none = InternalTlsConfig::default();
        assert!(matches!(none.check(), Err(TlsError::NotConfigured)));
        let plain = InternalTlsConfig {
            dir: None,
            mode: Mode::Plaintext,
        };
        assert!(plain.check().is_ok());
        assert!(InternalTlsConfig::dir("/x").check().is_ok());
        let both = InternalTlsConfig {
            mode: Mode::Plaintext,
            ..InternalTlsConfig::dir("/x")
        };
        assert!(matches!(both.check(), Err(TlsError::Contradictory)));
        assert!(none.load(Role::Keystore).unwrap().is_none());
    }
}
