//! VPC endpoint networking and DNS, end to end: the gateway serves on every
//! endpoint interface address (created through the registry library), the
//! network path alone decides the endpoint, deleting an endpoint closes its
//! listener and keep-alive connections, and the registry's DNS answers depend
//! on the resolver address a query arrived on. Only 127.x addresses are used.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4::SigningParams;
use aws_smithy_runtime_api::client::identity::Identity;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use kms_e2e::{ACCOUNT_A, Stack, start_stack};
use kms_proto::audit::v1::LookupEventsRequest;
use kms_proto::audit::v1::audit_client::AuditClient;
use kms_registry::{EndpointSubnet, NewEndpoint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

const KMS_SERVICE: &str = "com.amazonaws.us-east-1.kms";

/// A VPC (`cidr`, a /16 in 127/8) with one /24 subnet per zone letter, and a
/// KMS endpoint in all of them. Returns (vpc id, endpoint, interface IPs).
async fn vpc_with_endpoint(
    stack: &Stack,
    second_octet: u8,
    zones: &[char],
    private_dns: bool,
) -> (String, kms_registry::Endpoint, Vec<Ipv4Addr>) {
    let reg = stack.registry_api();
    let account = ACCOUNT_A.0;
    let vpc = reg
        .create_vpc(account, &format!("127.{second_octet}.0.0/16"))
        .await
        .unwrap();
    if private_dns {
        reg.modify_vpc_dns(account, &vpc.vpc_id, Some(true), Some(true))
            .await
            .unwrap();
    }
    let mut subnets = Vec::new();
    for (i, z) in zones.iter().enumerate() {
        let subnet = reg
            .create_subnet(
                account,
                &vpc.vpc_id,
                &format!("127.{second_octet}.{}.0/24", i + 1),
                &format!("us-east-1{z}"),
            )
            .await
            .unwrap();
        subnets.push(EndpointSubnet::new(subnet.subnet_id));
    }
    let (endpoint, interfaces) = reg
        .create_endpoint(NewEndpoint {
            owner_account_id: account.into(),
            vpc_id: vpc.vpc_id.clone(),
            service_name: KMS_SERVICE.into(),
            policy_document: None,
            private_dns_enabled: private_dns,
            subnets,
        })
        .await
        .unwrap();
    let ips = interfaces
        .iter()
        .map(|i| i.private_ip.parse().unwrap())
        .collect();
    (vpc.vpc_id, endpoint, ips)
}

/// Connect from `source` (a loopback address) to `addr`, retrying while the
/// gateway has not bound the listener yet.
async fn connect_from(source: Ipv4Addr, addr: SocketAddr) -> TcpStream {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(IpAddr::V4(source), 0)).unwrap();
        match socket.connect(addr).await {
            Ok(s) => return s,
            Err(e) if tokio::time::Instant::now() > deadline => {
                panic!("cannot connect to {addr}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

struct Reply {
    status: u16,
    request_id: String,
    body: serde_json::Value,
}

/// One signed KMS call over an open HTTP/1.1 keep-alive connection. `host`
/// is what the Host header says (signed, so authentication succeeds whatever
/// it names); `extra` are unsigned headers the client adds.
async fn call(
    stream: &mut TcpStream,
    host: &str,
    extra: &[(&str, &str)],
    operation: &str,
    body: &str,
) -> std::io::Result<Reply> {
    let (_, akid, secret) = ACCOUNT_A;
    let identity: Identity = Credentials::new(akid, secret, None, None, "e2e").into();
    let target = format!("TrentService.{operation}");
    let content_type = "application/x-amz-json-1.1";
    let params = SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("kms")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signed_headers = [
        ("host", host),
        ("content-type", content_type),
        ("x-amz-target", target.as_str()),
    ];
    let signable = SignableRequest::new(
        "POST",
        format!("http://{host}/"),
        signed_headers.into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut request = format!(
        "POST / HTTP/1.1\r\nhost: {host}\r\ncontent-type: {content_type}\r\nx-amz-target: {target}\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in instructions.headers() {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await?;
    read_response(stream).await
}

async fn read_response(stream: &mut TcpStream) -> std::io::Result<Reply> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    let length: usize = header("content-length").parse().unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = serde_json::from_slice(&buf[head_end..head_end + length])
        .unwrap_or(serde_json::Value::Null);
    Ok(Reply {
        status,
        request_id: header("x-amzn-requestid"),
        body,
    })
}

/// The CloudTrail record of `request_id` in account A's trail.
async fn audit_record(stack: &Stack, request_id: &str) -> serde_json::Value {
    let mut audit = AuditClient::new(
        stack
            .internal_channel(kms_stack::InternalRole::Audit)
            .unwrap(),
    );
    let events = audit
        .lookup_events(LookupEventsRequest {
            account_id: ACCOUNT_A.0.into(),
            max_results: 50,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    events
        .iter()
        .map(|e| serde_json::from_str::<serde_json::Value>(&e.cloudtrail_event).unwrap())
        .find(|e| e["requestID"] == request_id)
        .unwrap_or_else(|| panic!("no audit record for request {request_id}"))
}

#[tokio::test]
async fn requests_through_an_interface_are_attributed_by_the_network_path_only() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(dir.path()).await.unwrap();
    let port = stack.endpoint.port();
    let (vpc_id, endpoint, ips) = vpc_with_endpoint(&stack, 71, &['a'], false).await;
    let (_, other, _) = vpc_with_endpoint(&stack, 72, &['a'], false).await;
    let eni = SocketAddr::new(IpAddr::V4(ips[0]), port);

    // Through the interface, with headers that claim another endpoint and
    // another source: identity follows the socket.
    let source = Ipv4Addr::new(127, 0, 0, 9);
    let mut stream = connect_from(source, eni).await;
    let spoof_host = format!(
        "{}-{}.kms.us-east-1.vpce.amazonaws.com",
        other.vpce_id, other.dns_suffix
    );
    let reply = call(
        &mut stream,
        &spoof_host,
        &[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-real-ip", "203.0.113.7"),
            ("forwarded", "for=203.0.113.7"),
            ("x-amz-source-vpce", &other.vpce_id),
        ],
        "CreateKey",
        "{}",
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let record = audit_record(&stack, &reply.request_id).await;
    assert_eq!(record["vpcEndpointId"], endpoint.vpce_id.as_str());
    assert_eq!(record["sourceIPAddress"], source.to_string());
    assert_ne!(endpoint.vpc_id, "");
    assert_eq!(endpoint.vpc_id, vpc_id);

    // A second request on the same keep-alive connection: same identity.
    let reply = call(&mut stream, &spoof_host, &[], "ListKeys", "{}")
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let record = audit_record(&stack, &reply.request_id).await;
    assert_eq!(record["vpcEndpointId"], endpoint.vpce_id.as_str());

    // The public endpoint, with a Host header naming the endpoint: no
    // endpoint, whatever the client says.
    let mut public = connect_from(Ipv4Addr::new(127, 0, 0, 1), stack.endpoint).await;
    let reply = call(
        &mut public,
        &spoof_host,
        &[("x-forwarded-for", &ips[0].to_string())],
        "ListKeys",
        "{}",
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let record = audit_record(&stack, &reply.request_id).await;
    assert!(record.get("vpcEndpointId").is_none(), "{record}");
    assert_eq!(record["sourceIPAddress"], "127.0.0.1");

    stack.shutdown().await.unwrap();
}

#[tokio::test]
async fn deleting_an_endpoint_closes_its_listener_and_keep_alive_connections() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(dir.path()).await.unwrap();
    let port = stack.endpoint.port();
    let (_, endpoint, ips) = vpc_with_endpoint(&stack, 73, &['a', 'b'], false).await;
    let (_, kept, kept_ips) = vpc_with_endpoint(&stack, 74, &['a'], false).await;

    let mut streams = Vec::new();
    for ip in &ips {
        let mut s = connect_from(Ipv4Addr::LOCALHOST, SocketAddr::new(IpAddr::V4(*ip), port)).await;
        let reply = call(&mut s, "kms.us-east-1.amazonaws.com", &[], "ListKeys", "{}")
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        streams.push(s);
    }
    let mut kept_stream = connect_from(
        Ipv4Addr::LOCALHOST,
        SocketAddr::new(IpAddr::V4(kept_ips[0]), port),
    )
    .await;

    assert!(
        stack
            .registry_api()
            .delete_endpoint(&endpoint.vpce_id)
            .await
            .unwrap()
    );

    // The open keep-alive connections are closed by the gateway.
    for s in &mut streams {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("keep-alive connection of a deleted endpoint stayed open");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    // And nothing listens there any more.
    for ip in &ips {
        let addr = SocketAddr::new(IpAddr::V4(*ip), port);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).await.is_ok() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{addr} still accepts connections"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Other endpoints and their connections are untouched.
    let reply = call(
        &mut kept_stream,
        "kms.us-east-1.amazonaws.com",
        &[],
        "CreateKey",
        "{}",
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let record = audit_record(&stack, &reply.request_id).await;
    assert_eq!(record["vpcEndpointId"], kept.vpce_id.as_str());

    stack.shutdown().await.unwrap();
}

/// Ask `server` (over UDP, from `source`) for the A records of `name`.
async fn dig(source: Ipv4Addr, server: SocketAddr, name: &str) -> (ResponseCode, Vec<Ipv4Addr>) {
    let socket = UdpSocket::bind(SocketAddr::new(IpAddr::V4(source), 0))
        .await
        .unwrap();
    let mut query = Message::query();
    query.metadata.id = 4242;
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    socket
        .send_to(&query.to_vec().unwrap(), server)
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .expect("no dns answer")
        .unwrap();
    answers(&buf[..n])
}

/// The same over TCP (two-byte length prefix).
async fn dig_tcp(server: SocketAddr, name: &str) -> (ResponseCode, Vec<Ipv4Addr>) {
    let mut stream = TcpStream::connect(server).await.unwrap();
    let mut query = Message::query();
    query.metadata.id = 4343;
    query.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let bytes = query.to_vec().unwrap();
    stream
        .write_all(&(bytes.len() as u16).to_be_bytes())
        .await
        .unwrap();
    stream.write_all(&bytes).await.unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut buf).await.unwrap();
    answers(&buf)
}

fn answers(bytes: &[u8]) -> (ResponseCode, Vec<Ipv4Addr>) {
    let message = Message::from_vec(bytes).unwrap();
    let mut ips: Vec<Ipv4Addr> = message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    ips.sort();
    (message.metadata.response_code, ips)
}

/// Ask until the answer is `expected` (resolvers follow registry changes
/// asynchronously), for at most 10 s.
async fn eventually(source: Ipv4Addr, server: SocketAddr, name: &str, expected: &[Ipv4Addr]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = tokio::time::timeout(Duration::from_secs(1), dig(source, server, name)).await;
        if let Ok((ResponseCode::NoError, ips)) = &got
            && ips == expected
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} via {server}: {got:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn dns_answers_follow_the_resolver_address_the_query_arrived_on() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(dir.path()).await.unwrap();
    let dns_port = stack.dns.port();
    let public_ip = Ipv4Addr::new(127, 0, 0, 1);
    let kms = "kms.us-east-1.amazonaws.com";

    // VPC 75: private DNS endpoint in two zones. VPC 76: DNS on, no endpoint.
    let (_, endpoint, mut ips) = vpc_with_endpoint(&stack, 75, &['a', 'b'], true).await;
    ips.sort();
    let reg = stack.registry_api();
    let plain = reg.create_vpc(ACCOUNT_A.0, "127.76.0.0/16").await.unwrap();
    reg.modify_vpc_dns(ACCOUNT_A.0, &plain.vpc_id, Some(true), Some(true))
        .await
        .unwrap();
    let resolver_75 = SocketAddr::from(([127, 75, 0, 2], dns_port));
    let resolver_76 = SocketAddr::from(([127, 76, 0, 2], dns_port));
    let local = Ipv4Addr::LOCALHOST;

    // The VPC with the private DNS endpoint gets the interfaces...
    eventually(local, resolver_75, kms, &ips).await;
    // ...over TCP as well...
    assert_eq!(
        dig_tcp(resolver_75, kms).await,
        (ResponseCode::NoError, ips.clone())
    );
    // ...the other VPC and the public resolver get the public endpoint.
    eventually(local, resolver_76, kms, &[public_ip]).await;
    assert_eq!(
        dig(local, stack.dns, kms).await,
        (ResponseCode::NoError, vec![public_ip])
    );

    // Spoofing: a query from an address inside VPC 75 to the public resolver
    // (or VPC 76's) is still answered as that resolver's, not as VPC 75's.
    let inside = Ipv4Addr::new(127, 75, 1, 200);
    assert_eq!(
        dig(inside, stack.dns, kms).await,
        (ResponseCode::NoError, vec![public_ip])
    );
    assert_eq!(
        dig(inside, resolver_76, kms).await,
        (ResponseCode::NoError, vec![public_ip])
    );

    // Endpoint-specific names resolve through any resolver; per-AZ names to
    // that zone's interface.
    let base = format!("{}-{}", endpoint.vpce_id, endpoint.dns_suffix);
    let specific = format!("{base}.kms.us-east-1.vpce.amazonaws.com");
    assert_eq!(
        dig(local, stack.dns, &specific).await,
        (ResponseCode::NoError, ips.clone())
    );
    assert_eq!(
        dig(local, resolver_76, &specific).await,
        (ResponseCode::NoError, ips.clone())
    );
    let zone_a = format!("{base}-us-east-1a.kms.us-east-1.vpce.amazonaws.com");
    let (code, a) = dig(local, stack.dns, &zone_a).await;
    assert_eq!(code, ResponseCode::NoError);
    assert_eq!(a.len(), 1);
    assert!(ips.contains(&a[0]));
    assert_eq!(a[0].octets()[2], 1, "zone a is the first subnet");

    // Names of ours that do not exist, and names that are not ours.
    let (code, none) = dig(
        local,
        stack.dns,
        "vpce-0-nope.kms.us-east-1.vpce.amazonaws.com",
    )
    .await;
    assert_eq!((code, none), (ResponseCode::NXDomain, vec![]));
    assert_eq!(
        dig(local, stack.dns, "example.com").await.0,
        ResponseCode::Refused
    );

    // Turning DNS hostnames off makes kms.<region> public again in VPC 75;
    // deleting the endpoint removes its names.
    let vpc_75 = endpoint.vpc_id.clone();
    reg.modify_vpc_dns(ACCOUNT_A.0, &vpc_75, None, Some(false))
        .await
        .unwrap();
    eventually(local, resolver_75, kms, &[public_ip]).await;
    reg.delete_endpoint(&endpoint.vpce_id).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while dig(local, stack.dns, &specific).await.0 != ResponseCode::NXDomain {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{specific} still resolves"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    stack.shutdown().await.unwrap();
}
