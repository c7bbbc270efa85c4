//! The gateway's endpoint listeners against a real registry (the other
//! backends are not needed: unauthenticated requests are answered before any
//! backend call). Only 127.x addresses are used.

use std::net::SocketAddr;
use std::time::Duration;

use kms_registry::{EndpointSubnet, NewEndpoint, Registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const ACCOUNT: &str = "111122223333";

async fn until(rx: oneshot::Receiver<()>) {
    let _ = rx.await;
}

/// Serve `registry` on `listener` until the returned sender fires.
fn serve_registry(
    registry: &Registry,
    listener: TcpListener,
) -> (oneshot::Sender<()>, JoinHandle<anyhow::Result<()>>) {
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(kms_registry::serve(listener, registry.clone(), until(rx)));
    (tx, task)
}

/// An unauthenticated request on a fresh connection: `Some(status)` when the
/// gateway served it, `None` when it closed the connection without answering.
async fn probe(addr: SocketAddr) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request = "POST / HTTP/1.1\r\nhost: kms.us-east-1.amazonaws.com\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-target: TrentService.ListKeys\r\ncontent-length: 2\r\n\r\n{}";
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split(' ').nth(1)?.parse().ok()
}

/// Probe until `expected`, for at most 10 s.
async fn eventually(addr: SocketAddr, expected: Option<u16>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = probe(addr).await;
        if got == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr}: {got:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn listeners_follow_the_registry_and_fail_closed_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("registry.db").display());
    let registry = Registry::open(&kms_registry::Config::new(url))
        .await
        .unwrap();
    let registry_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let registry_addr = registry_listener.local_addr().unwrap();
    let (stop_registry, registry_task) = serve_registry(&registry, registry_listener);

    let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_addr = public.local_addr().unwrap();
    // authz, keystore and audit are never reached by these requests.
    let unused = "http://127.0.0.1:9";
    let config = kms_gateway::Config::new(
        "us-east-1",
        unused,
        unused,
        unused,
        &format!("http://{registry_addr}"),
    );
    let (stop_gateway, rx) = oneshot::channel();
    let gateway = tokio::spawn(kms_gateway::run(public, config, until(rx)));

    // An endpoint appears: the gateway serves its interface on the public port.
    let vpc = registry.create_vpc(ACCOUNT, "127.81.0.0/16").await.unwrap();
    let subnet = registry
        .create_subnet(ACCOUNT, &vpc.vpc_id, "127.81.1.0/24", "us-east-1a")
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
    let eni: SocketAddr = format!("{}:{}", interfaces[0].private_ip, public_addr.port())
        .parse()
        .unwrap();
    eventually(eni, Some(400)).await;
    assert_eq!(probe(public_addr).await, Some(400));

    // The registry goes away: the listener stays, but no connection is
    // served on it (fail closed); the public endpoint keeps serving, since
    // no interface of the last snapshot has its address.
    stop_registry.send(()).unwrap();
    registry_task.await.unwrap().unwrap();
    eventually(eni, None).await;
    assert!(TcpStream::connect(eni).await.is_ok(), "listener was closed");
    assert_eq!(probe(public_addr).await, Some(400));

    // It comes back on the same address: the gateway resubscribes and
    // serves again.
    let registry_listener = TcpListener::bind(registry_addr).await.unwrap();
    let (stop_registry, registry_task) = serve_registry(&registry, registry_listener);
    eventually(eni, Some(400)).await;

    // The endpoint is deleted: its listener closes.
    assert!(registry.delete_endpoint(&endpoint.vpce_id).await.unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(eni).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{eni} still listening"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(probe(public_addr).await, Some(400));

    stop_gateway.send(()).unwrap();
    gateway.await.unwrap().unwrap();
    stop_registry.send(()).unwrap();
    registry_task.await.unwrap().unwrap();
}

#[test]
fn non_loopback_interfaces_are_not_bound_without_the_flag() {
    use kms_gateway::listeners::may_bind;
    assert!(!may_bind("10.0.1.4".parse().unwrap(), false));
    assert!(may_bind("10.0.1.4".parse().unwrap(), true));
    assert!(may_bind("127.81.1.4".parse().unwrap(), false));
}
