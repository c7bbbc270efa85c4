//! The registry's DNS server on its own: resolvers follow the VPCs (created,
//! DNS support turned off and on, deleted), answers are authoritative over
//! UDP and TCP, and EDNS queries get EDNS answers. Only 127.x addresses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use kms_registry::{Config, EndpointSubnet, NewEndpoint, Registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const ACCOUNT: &str = "111122223333";

struct Dns {
    registry: Registry,
    public: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn spawn_dns() -> Dns {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("registry.db").display());
    let registry = Registry::open(&Config::new(url)).await.unwrap();
    let (udp, tcp) = kms_registry::dns::bind_public(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
        .await
        .unwrap();
    let public = udp.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(kms_registry::dns::serve(
        registry.clone(),
        udp,
        tcp,
        false,
        async move {
            let _ = rx.await;
        },
    ));
    Dns {
        registry,
        public,
        stop,
        task,
        _dir: dir,
    }
}

fn query(name: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 7;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

/// A UDP exchange; `None` when nothing answers within 500 ms.
async fn udp(server: SocketAddr, bytes: &[u8]) -> Option<Message> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, server).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_millis(500), socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(Message::from_vec(&buf[..n]).unwrap())
}

async fn tcp(server: SocketAddr, bytes: &[u8]) -> Message {
    let mut s = TcpStream::connect(server).await.unwrap();
    s.write_all(&(bytes.len() as u16).to_be_bytes())
        .await
        .unwrap();
    s.write_all(bytes).await.unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

fn addresses(m: &Message) -> Vec<Ipv4Addr> {
    let mut v: Vec<Ipv4Addr> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

/// Wait until the resolver at `server` answers (`true`) or stops answering.
async fn wait_answering(server: SocketAddr, answering: bool) {
    let q = query("kms.us-east-1.amazonaws.com", RecordType::A, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while udp(server, &q).await.is_some() != answering {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{server} answering should be {answering}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until `server` answers `name` with exactly `expected`: zones are rebuilt
/// just after each committed registry write, not within it.
async fn wait_for_addresses(server: SocketAddr, name: &str, expected: &[Ipv4Addr]) {
    let q = query(name, RecordType::A, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = udp(server, &q).await.map(|m| addresses(&m));
        if got.as_deref() == Some(expected) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{server} should answer {name} with {expected:?}, answers {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn vpc_resolvers_follow_the_vpcs() {
    let dns = spawn_dns().await;
    let reg = &dns.registry;
    let vpc = reg.create_vpc(ACCOUNT, "127.91.0.0/16").await.unwrap();
    let resolver = SocketAddr::from(([127, 91, 0, 2], dns.public.port()));
    wait_answering(resolver, true).await;

    // enableDnsSupport off: AWS's resolver does not answer in that VPC.
    reg.modify_vpc_dns(ACCOUNT, &vpc.vpc_id, Some(false), None)
        .await
        .unwrap();
    wait_answering(resolver, false).await;
    reg.modify_vpc_dns(ACCOUNT, &vpc.vpc_id, Some(true), None)
        .await
        .unwrap();
    wait_answering(resolver, true).await;

    reg.delete_vpc(ACCOUNT, &vpc.vpc_id).await.unwrap();
    wait_answering(resolver, false).await;

    // A VPC outside 127/8 gets no resolver here (and breaks nothing).
    reg.create_vpc(ACCOUNT, "10.91.0.0/16").await.unwrap();
    let q = query("kms.us-east-1.amazonaws.com", RecordType::A, false);
    let public = udp(dns.public, &q).await.unwrap();
    assert_eq!(addresses(&public), [Ipv4Addr::LOCALHOST]);

    dns.stop.send(()).unwrap();
    dns.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn answers_are_authoritative_over_udp_and_tcp() {
    let dns = spawn_dns().await;
    let reg = &dns.registry;
    let vpc = reg.create_vpc(ACCOUNT, "127.92.0.0/16").await.unwrap();
    reg.modify_vpc_dns(ACCOUNT, &vpc.vpc_id, None, Some(true))
        .await
        .unwrap();
    let subnet = reg
        .create_subnet(ACCOUNT, &vpc.vpc_id, "127.92.1.0/24", "us-east-1b")
        .await
        .unwrap();
    let (endpoint, interfaces) = reg
        .create_endpoint(NewEndpoint {
            owner_account_id: ACCOUNT.into(),
            vpc_id: vpc.vpc_id.clone(),
            service_name: "com.amazonaws.us-east-1.kms".into(),
            policy_document: None,
            private_dns_enabled: true,
            subnets: vec![EndpointSubnet::new(subnet.subnet_id)],
        })
        .await
        .unwrap();
    let eni: Ipv4Addr = interfaces[0].private_ip.parse().unwrap();
    let resolver = SocketAddr::from(([127, 92, 0, 2], dns.public.port()));
    wait_for_addresses(resolver, "kms.us-east-1.amazonaws.com", &[eni]).await;

    let kms = query("kms.us-east-1.amazonaws.com", RecordType::A, true);
    let m = udp(resolver, &kms).await.unwrap();
    assert!(m.metadata.authoritative);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&m), [eni]);
    assert!(m.edns.is_some(), "an EDNS query gets an EDNS answer");
    let m = tcp(resolver, &kms).await;
    assert_eq!(addresses(&m), [eni]);
    // The public resolver, over TCP too.
    assert_eq!(
        addresses(&tcp(dns.public, &kms).await),
        [Ipv4Addr::LOCALHOST]
    );

    // The names of the endpoint, as DescribeVpcEndpoints spells them.
    let name = kms_registry::dns::endpoint_dns_name(&endpoint, "us-east-1", None);
    let per_az = kms_registry::dns::endpoint_dns_name(&endpoint, "us-east-1", Some("us-east-1b"));
    for n in [&name, &per_az] {
        let m = udp(dns.public, &query(n, RecordType::A, false))
            .await
            .unwrap();
        assert_eq!(addresses(&m), [eni], "{n}");
    }
    // No IPv6 here: NODATA with the zone's SOA.
    let m = udp(dns.public, &query(&name, RecordType::AAAA, false))
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert!(
        m.authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA)
    );

    dns.stop.send(()).unwrap();
    dns.task.await.unwrap().unwrap();
}
