//! HTTPS on the public TLS listener and on every endpoint interface address
//! (the TLS port), against a real registry. Certificates come from a CA made
//! here with rcgen; clients verify them like an SDK does. Unauthenticated
//! requests are answered before any backend call, so only the registry runs.
//! Only 127.x addresses are used.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kms_registry::{EndpointSubnet, NewEndpoint, Registry};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;

const ACCOUNT: &str = "111122223333";
const HOST: &str = "kms.us-east-1.amazonaws.com";

async fn until(rx: oneshot::Receiver<()>) {
    let _ = rx.await;
}

/// A CA and a server certificate it signed; the PEM files are written to `dir`.
fn make_certs(
    dir: &std::path::Path,
) -> (
    CertificateDer<'static>,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(DnType::CommonName, "test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec![
        HOST.to_string(),
        "*.kms.us-east-1.vpce.amazonaws.com".to_string(),
        "127.0.0.1".to_string(),
    ])
    .unwrap();
    leaf.use_authority_key_identifier_extension = true;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    std::fs::write(&cert, format!("{}{}", leaf_cert.pem(), ca_cert.pem())).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    (ca_cert.der().clone(), cert, key)
}

fn client(ca: Option<&CertificateDer<'static>>, tls12_only: bool) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        roots.add(ca.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

const REQUEST: &str = "POST / HTTP/1.1\r\nhost: kms.us-east-1.amazonaws.com\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-target: TrentService.ListKeys\r\ncontent-length: 2\r\n\r\n{}";

/// An unauthenticated request over TLS to `addr` with SNI `name`: the HTTP
/// status line and body, or `Err` with why no answer came.
async fn probe_tls(
    connector: &TlsConnector,
    addr: SocketAddr,
    name: &str,
) -> Result<(u16, String), String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let server_name = ServerName::try_from(name.to_string()).unwrap();
    let mut tls = tokio::time::timeout(Duration::from_secs(5), connector.connect(server_name, tcp))
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map_err(|e| format!("handshake: {e}"))?;
    tls.write_all(REQUEST.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut chunk))
            .await
            .map_err(|_| "read timed out".to_string())?
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if String::from_utf8_lossy(&buf).contains("Missing Authentication Token") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {text:?}"))?;
    Ok((status, text))
}

/// Probe over TLS until it answers 400 (unauthenticated), for at most 10 s.
async fn eventually_served(connector: &TlsConnector, addr: SocketAddr, name: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match probe_tls(connector, addr, name).await {
            Ok((400, body)) => return body,
            other => assert!(tokio::time::Instant::now() < deadline, "{addr}: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn https_on_the_public_listener_and_on_every_interface() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certs(dir.path());
    let url = format!("sqlite://{}", dir.path().join("registry.db").display());
    let registry = Registry::open(&kms_registry::Config::new(url))
        .await
        .unwrap();
    let registry_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let registry_addr = registry_listener.local_addr().unwrap();
    let (stop_registry, rx) = oneshot::channel();
    let registry_task = tokio::spawn(kms_registry::serve(
        registry_listener,
        registry.clone(),
        until(rx),
    ));

    let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_addr = public.local_addr().unwrap();
    let public_tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_addr = public_tls.local_addr().unwrap();
    let unused = "http://127.0.0.1:9";
    let mut config = kms_gateway::Config::new(
        "us-east-1",
        unused,
        unused,
        unused,
        &format!("http://{registry_addr}"),
    );
    config.tls_cert = Some(cert);
    config.tls_key = Some(key);
    let (stop_gateway, rx) = oneshot::channel();
    let gateway = tokio::spawn(kms_gateway::run_with_tls(
        public,
        Some(public_tls),
        config,
        until(rx),
    ));

    let trusted = client(Some(&ca), false);
    // The public TLS listener: the KMS hostname and 127.0.0.1 both verify;
    // the answer is AWS's (unauthenticated) error, so HTTP is served inside.
    let body = eventually_served(&trusted, tls_addr, HOST).await;
    assert!(
        body.contains("MissingAuthenticationTokenException"),
        "{body}"
    );
    assert_eq!(
        probe_tls(&trusted, tls_addr, "127.0.0.1").await.unwrap().0,
        400
    );
    // TLS 1.2 is offered too.
    assert_eq!(
        probe_tls(&client(Some(&ca), true), tls_addr, HOST)
            .await
            .unwrap()
            .0,
        400
    );
    // A client that does not trust the CA gets no session.
    let err = probe_tls(&client(None, false), tls_addr, HOST)
        .await
        .unwrap_err();
    assert!(err.starts_with("handshake"), "{err}");
    // Plain HTTP on the TLS port is not served as HTTP.
    let mut plain = TcpStream::connect(tls_addr).await.unwrap();
    plain.write_all(REQUEST.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), plain.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert!(!String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/"));

    // An endpoint appears: its interface serves HTTPS on the TLS port (and
    // plain HTTP on the public port), with the endpoint-specific name too.
    let vpc = registry.create_vpc(ACCOUNT, "127.82.0.0/16").await.unwrap();
    let subnet = registry
        .create_subnet(ACCOUNT, &vpc.vpc_id, "127.82.1.0/24", "us-east-1a")
        .await
        .unwrap();
    let (endpoint, interfaces) = registry
        .create_endpoint(NewEndpoint {
            owner_account_id: ACCOUNT.into(),
            vpc_id: vpc.vpc_id.clone(),
            service_name: "com.amazonaws.us-east-1.kms".into(),
            policy_document: None,
            private_dns_enabled: false,
            subnets: vec![EndpointSubnet::new(subnet.subnet_id)],
        })
        .await
        .unwrap();
    let ip = &interfaces[0].private_ip;
    let eni_tls: SocketAddr = format!("{ip}:{}", tls_addr.port()).parse().unwrap();
    let eni_http: SocketAddr = format!("{ip}:{}", public_addr.port()).parse().unwrap();
    let body = eventually_served(&trusted, eni_tls, HOST).await;
    assert!(
        body.contains("MissingAuthenticationTokenException"),
        "{body}"
    );
    let vpce_name = format!(
        "{}-abcdefgh.kms.us-east-1.vpce.amazonaws.com",
        endpoint.vpce_id
    );
    assert_eq!(
        probe_tls(&trusted, eni_tls, &vpce_name).await.unwrap().0,
        400
    );
    assert!(TcpStream::connect(eni_http).await.is_ok());
    // A name the certificate does not carry is refused by the client.
    assert!(probe_tls(&trusted, eni_tls, "example.com").await.is_err());

    // The endpoint is deleted: both of its listeners close.
    assert!(registry.delete_endpoint(&endpoint.vpce_id).await.unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(eni_tls).await.is_ok() || TcpStream::connect(eni_http).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{eni_tls} or {eni_http} still listening"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The public TLS listener is unaffected.
    assert_eq!(probe_tls(&trusted, tls_addr, HOST).await.unwrap().0, 400);

    stop_gateway.send(()).unwrap();
    gateway.await.unwrap().unwrap();
    stop_registry.send(()).unwrap();
    registry_task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_tls_listener_without_a_certificate_is_refused() {
    let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let unused = "http://127.0.0.1:9";
    let config = kms_gateway::Config::new("us-east-1", unused, unused, unused, unused);
    let err = kms_gateway::run_with_tls(public, Some(tls), config, async {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--tls-cert"), "{err}");
}
