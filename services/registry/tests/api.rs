//! Integration tests of the registry's gRPC contract: each test starts the
//! service on 127.0.0.1:0 with a fresh SQLite database in a temporary folder.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use kms_proto::registry::v1 as pb;
use kms_proto::registry::v1::registry_client::RegistryClient;
use kms_registry::{Config, EndpointSubnet, NewEndpoint, Registry};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Status};

const ALICE: &str = "111122223333";
const BOB: &str = "444455556666";
const KMS: &str = "com.amazonaws.us-east-1.kms";

struct TestApp {
    addr: SocketAddr,
    client: RegistryClient<Channel>,
    /// The same registry the server serves, for what has no RPC yet.
    registry: Registry,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    dir: TempDir,
}

impl TestApp {
    /// Stop the server and wait for it; returns the database folder.
    async fn stop(mut self) -> TempDir {
        drop(self.client);
        let _ = self.stop.take().unwrap().send(());
        let server = self.server.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("server did not stop")
            .unwrap()
            .unwrap();
        self.registry.store().close().await;
        self.dir
    }
}

fn config(dir: &TempDir) -> Config {
    Config::new(format!(
        "sqlite://{}",
        dir.path().join("registry.db").display()
    ))
}

async fn connect(addr: SocketAddr) -> RegistryClient<Channel> {
    RegistryClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

async fn spawn_app() -> TestApp {
    spawn_app_in(TempDir::new().unwrap()).await
}

async fn spawn_app_in(dir: TempDir) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let registry = Registry::open(&config(&dir)).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(kms_registry::serve(listener, registry.clone(), async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        client: connect(addr).await,
        registry,
        stop: Some(stop),
        server: Some(server),
        dir,
    }
}

fn aws_code(status: &Status) -> &str {
    status
        .metadata()
        .get(kms_proto::error::ERROR_CODE_KEY)
        .expect("x-aws-error-code")
        .to_str()
        .unwrap()
}

async fn create_vpc(app: &mut TestApp, owner: &str, cidr: &str) -> Result<pb::Vpc, Status> {
    app.client
        .create_vpc(pb::CreateVpcRequest {
            owner_account_id: owner.into(),
            cidr_block: cidr.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn create_subnet(
    app: &mut TestApp,
    owner: &str,
    vpc_id: &str,
    cidr: &str,
    az: &str,
) -> Result<pb::Subnet, Status> {
    app.client
        .create_subnet(pb::CreateSubnetRequest {
            owner_account_id: owner.into(),
            vpc_id: vpc_id.into(),
            cidr_block: cidr.into(),
            availability_zone: az.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn describe_vpcs(
    app: &mut TestApp,
    owner: &str,
    ids: &[&str],
) -> Result<Vec<pb::Vpc>, Status> {
    app.client
        .describe_vpcs(pb::DescribeVpcsRequest {
            owner_account_id: owner.into(),
            vpc_ids: ids.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().vpcs)
}

async fn describe_subnets(
    app: &mut TestApp,
    owner: &str,
    ids: &[&str],
) -> Result<Vec<pb::Subnet>, Status> {
    app.client
        .describe_subnets(pb::DescribeSubnetsRequest {
            owner_account_id: owner.into(),
            subnet_ids: ids.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().subnets)
}

async fn resolve(app: &mut TestApp, local_addr: &str) -> pb::ResolveListenerResponse {
    app.client
        .resolve_listener(pb::ResolveListenerRequest {
            local_addr: local_addr.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn is_ec2_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == 17
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A VPC with DNS hostnames on, a subnet in `us-east-1a`, and an endpoint in it.
async fn vpc_with_endpoint(
    app: &mut TestApp,
    ip: Option<Ipv4Addr>,
) -> (pb::Vpc, pb::Subnet, String, String) {
    let vpc = create_vpc(app, ALICE, "10.0.0.0/16").await.unwrap();
    let subnet = create_subnet(app, ALICE, &vpc.vpc_id, "10.0.1.0/24", "us-east-1a")
        .await
        .unwrap();
    app.registry
        .modify_vpc_dns(ALICE, &vpc.vpc_id, None, Some(true))
        .await
        .unwrap();
    let (endpoint, interfaces) = app
        .registry
        .create_endpoint(NewEndpoint {
            owner_account_id: ALICE.into(),
            vpc_id: vpc.vpc_id.clone(),
            service_name: KMS.into(),
            policy_document: None,
            private_dns_enabled: true,
            subnets: vec![EndpointSubnet {
                subnet_id: subnet.subnet_id.clone(),
                ipv4: ip,
            }],
        })
        .await
        .unwrap();
    assert_eq!(interfaces.len(), 1);
    let ip = interfaces[0].private_ip.clone();
    (vpc, subnet, endpoint.vpce_id, ip)
}

#[tokio::test]
async fn health_is_serving() {
    let app = spawn_app().await;
    let channel = Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "kms.registry.v1.Registry".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    app.stop().await;
}

#[tokio::test]
async fn create_vpc_then_describe_it() {
    let mut app = spawn_app().await;
    let vpc = create_vpc(&mut app, ALICE, "10.0.0.0/16").await.unwrap();
    assert!(is_ec2_id(&vpc.vpc_id, "vpc-"), "{}", vpc.vpc_id);
    assert_eq!(vpc.owner_account_id, ALICE);
    assert_eq!(vpc.cidr_block, "10.0.0.0/16");
    assert!(vpc.enable_dns_support);
    assert!(!vpc.enable_dns_hostnames);
    assert_eq!(vpc.state, "available");
    let other = create_vpc(&mut app, ALICE, "172.16.0.0/28").await.unwrap();
    create_vpc(&mut app, BOB, "10.0.0.0/16").await.unwrap();

    let all = describe_vpcs(&mut app, ALICE, &[]).await.unwrap();
    assert_eq!(all, vec![vpc.clone(), other.clone()]);
    let one = describe_vpcs(&mut app, ALICE, &[&other.vpc_id])
        .await
        .unwrap();
    assert_eq!(one, vec![other]);
    assert_eq!(describe_vpcs(&mut app, BOB, &[]).await.unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn create_vpc_refuses_blocks_outside_16_to_28() {
    let mut app = spawn_app().await;
    for cidr in ["10.0.0.0/8", "10.0.0.0/15", "10.0.0.0/29", "10.0.0.0/32"] {
        let e = create_vpc(&mut app, ALICE, cidr).await.unwrap_err();
        assert_eq!(aws_code(&e), "InvalidVpc.Range", "{cidr}");
        assert_eq!(e.message(), format!("The CIDR '{cidr}' is invalid."));
    }
    assert!(
        describe_vpcs(&mut app, ALICE, &[])
            .await
            .unwrap()
            .is_empty()
    );
    app.stop().await;
}

#[tokio::test]
async fn create_vpc_refuses_malformed_blocks() {
    let mut app = spawn_app().await;
    for cidr in [
        "10.0.0.0/33",
        "10.0.0.0",
        "not-a-cidr",
        "10.0.0.1/16",
        "256.0.0.0/16",
        "",
        "fd00::/56",
    ] {
        let e = create_vpc(&mut app, ALICE, cidr).await.unwrap_err();
        assert_eq!(aws_code(&e), "InvalidParameterValue", "{cidr}");
        assert_eq!(e.code(), Code::InvalidArgument);
        assert_eq!(
            e.message(),
            format!(
                "Value ({cidr}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
            )
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn describe_vpcs_refuses_unknown_and_foreign_ids() {
    let mut app = spawn_app().await;
    let bobs = create_vpc(&mut app, BOB, "10.0.0.0/16").await.unwrap();
    let e = describe_vpcs(&mut app, ALICE, &["vpc-0123456789abcdef0"])
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidVpcID.NotFound");
    assert_eq!(
        e.message(),
        "The vpc ID 'vpc-0123456789abcdef0' does not exist"
    );
    // Another account's VPC does not exist for this one.
    let e = describe_vpcs(&mut app, ALICE, &[&bobs.vpc_id])
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidVpcID.NotFound");
    let e = describe_vpcs(&mut app, ALICE, &["vpc-nope"])
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidVpcID.Malformed");
    app.stop().await;
}

#[tokio::test]
async fn create_subnet_then_describe_it() {
    let mut app = spawn_app().await;
    let vpc = create_vpc(&mut app, ALICE, "10.0.0.0/16").await.unwrap();
    let a = create_subnet(&mut app, ALICE, &vpc.vpc_id, "10.0.1.0/24", "us-east-1a")
        .await
        .unwrap();
    assert!(is_ec2_id(&a.subnet_id, "subnet-"), "{}", a.subnet_id);
    assert_eq!(a.vpc_id, vpc.vpc_id);
    assert_eq!(a.cidr_block, "10.0.1.0/24");
    assert_eq!(a.availability_zone, "us-east-1a");
    assert_eq!(a.owner_account_id, ALICE);
    let b = create_subnet(&mut app, ALICE, &vpc.vpc_id, "10.0.2.0/28", "us-east-1b")
        .await
        .unwrap();
    // Without a zone, one is chosen.
    let c = create_subnet(&mut app, ALICE, &vpc.vpc_id, "10.0.3.0/24", "")
        .await
        .unwrap();
    assert_eq!(c.availability_zone, "us-east-1a");

    assert_eq!(
        describe_subnets(&mut app, ALICE, &[]).await.unwrap(),
        vec![a.clone(), b.clone(), c]
    );
    assert_eq!(
        describe_subnets(&mut app, ALICE, &[&b.subnet_id])
            .await
            .unwrap(),
        vec![b]
    );
    assert!(
        describe_subnets(&mut app, BOB, &[])
            .await
            .unwrap()
            .is_empty()
    );
    app.stop().await;
}

#[tokio::test]
async fn create_subnet_refuses_blocks_outside_the_vpc() {
    let mut app = spawn_app().await;
    let vpc = create_vpc(&mut app, ALICE, "10.0.0.0/16").await.unwrap();
    for cidr in [
        "10.1.0.0/24",
        "10.0.0.0/15",
        "10.0.1.0/29",
        "192.168.0.0/24",
    ] {
        let e = create_subnet(&mut app, ALICE, &vpc.vpc_id, cidr, "us-east-1a")
            .await
            .unwrap_err();
        assert_eq!(aws_code(&e), "InvalidSubnet.Range", "{cidr}");
        assert_eq!(e.message(), format!("The CIDR '{cidr}' is invalid."));
    }
    let e = create_subnet(&mut app, ALICE, &vpc.vpc_id, "10.0.1.0/99", "us-east-1a")
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidParameterValue");
    let e = create_subnet(&mut app, ALICE, &vpc.vpc_id, "10.0.1.0/24", "eu-west-1a")
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidParameterValue");
    assert!(
        describe_subnets(&mut app, ALICE, &[])
            .await
            .unwrap()
            .is_empty()
    );
    app.stop().await;
}

#[tokio::test]
async fn create_subnet_refuses_overlapping_blocks() {
    let mut app = spawn_app().await;
    let vpc = create_vpc(&mut app, ALICE, "10.0.0.0/16").await.unwrap();
    create_subnet(&mut app, ALICE, &vpc.vpc_id, "10.0.1.0/24", "us-east-1a")
        .await
        .unwrap();
    for cidr in ["10.0.1.0/24", "10.0.1.128/25", "10.0.0.0/23", "10.0.0.0/16"] {
        let e = create_subnet(&mut app, ALICE, &vpc.vpc_id, cidr, "us-east-1b")
            .await
            .unwrap_err();
        assert_eq!(aws_code(&e), "InvalidSubnet.Conflict", "{cidr}");
        assert_eq!(
            e.message(),
            format!("The CIDR '{cidr}' conflicts with another subnet")
        );
    }
    // The same block in another VPC is fine.
    let other = create_vpc(&mut app, ALICE, "10.0.0.0/16").await.unwrap();
    create_subnet(&mut app, ALICE, &other.vpc_id, "10.0.1.0/24", "us-east-1a")
        .await
        .unwrap();
    app.stop().await;
}

#[tokio::test]
async fn create_subnet_refuses_unknown_vpcs() {
    let mut app = spawn_app().await;
    let e = create_subnet(
        &mut app,
        ALICE,
        "vpc-0123456789abcdef0",
        "10.0.1.0/24",
        "us-east-1a",
    )
    .await
    .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidVpcID.NotFound");
    assert_eq!(
        e.message(),
        "The vpc ID 'vpc-0123456789abcdef0' does not exist"
    );
    let bobs = create_vpc(&mut app, BOB, "10.0.0.0/16").await.unwrap();
    let e = create_subnet(&mut app, ALICE, &bobs.vpc_id, "10.0.1.0/24", "us-east-1a")
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidVpcID.NotFound");
    app.stop().await;
}

#[tokio::test]
async fn describe_subnets_refuses_unknown_ids() {
    let mut app = spawn_app().await;
    let e = describe_subnets(&mut app, ALICE, &["subnet-0123456789abcdef0"])
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidSubnetID.NotFound");
    assert_eq!(
        e.message(),
        "The subnet ID 'subnet-0123456789abcdef0' does not exist"
    );
    app.stop().await;
}

#[tokio::test]
async fn resolve_listener_is_empty_for_the_public_endpoint() {
    let mut app = spawn_app().await;
    let r = resolve(&mut app, "127.0.0.1:4566").await;
    assert!(r.endpoint.is_none());
    assert!(r.interface.is_none());
    let e = app
        .client
        .resolve_listener(pb::ResolveListenerRequest {
            local_addr: "not an address".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidParameterValue");
    app.stop().await;
}

#[tokio::test]
async fn resolve_listener_finds_an_endpoint_interface() {
    let mut app = spawn_app().await;
    let (vpc, subnet, vpce_id, ip) = vpc_with_endpoint(&mut app, None).await;
    // EC2 reserves the first four addresses of a subnet.
    assert_eq!(ip, "10.0.1.4");

    for local_addr in ["10.0.1.4:443", "10.0.1.4:4566", "[::ffff:10.0.1.4]:443"] {
        let r = resolve(&mut app, local_addr).await;
        let endpoint = r.endpoint.expect("endpoint");
        let interface = r.interface.expect("interface");
        assert_eq!(endpoint.vpce_id, vpce_id);
        assert!(is_ec2_id(&endpoint.vpce_id, "vpce-"));
        assert_eq!(endpoint.vpc_id, vpc.vpc_id);
        assert_eq!(endpoint.owner_account_id, ALICE);
        assert_eq!(endpoint.service_name, KMS);
        assert_eq!(
            endpoint.policy_document,
            kms_registry::DEFAULT_ENDPOINT_POLICY
        );
        assert!(endpoint.private_dns_enabled);
        assert_eq!(endpoint.state, "available");
        assert!(is_ec2_id(&interface.eni_id, "eni-"));
        assert_eq!(interface.vpce_id, vpce_id);
        assert_eq!(interface.subnet_id, subnet.subnet_id);
        assert_eq!(interface.private_ip, "10.0.1.4");
    }
    assert!(resolve(&mut app, "10.0.1.5:443").await.endpoint.is_none());
    assert_eq!(
        app.registry
            .resolve_listener(IpAddr::from([10, 0, 1, 4]))
            .map(|l| l.endpoint.vpce_id.clone()),
        Some(vpce_id)
    );
    app.stop().await;
}

#[tokio::test]
async fn create_endpoint_refuses_what_ec2_refuses() {
    let mut app = spawn_app().await;
    let (vpc, subnet, _, ip) = vpc_with_endpoint(&mut app, Some(Ipv4Addr::new(10, 0, 1, 10))).await;
    assert_eq!(ip, "10.0.1.10");
    let b = create_subnet(&mut app, ALICE, &vpc.vpc_id, "10.0.2.0/24", "us-east-1a")
        .await
        .unwrap();
    let new = |subnets: Vec<EndpointSubnet>| NewEndpoint {
        owner_account_id: ALICE.into(),
        vpc_id: vpc.vpc_id.clone(),
        service_name: KMS.into(),
        policy_document: None,
        private_dns_enabled: false,
        subnets,
    };
    let code = |r: Result<_, kms_registry::RegistryError>| r.map(|_| ()).unwrap_err().code();

    let bad_service = NewEndpoint {
        service_name: "com.amazonaws.us-east-1.s3".into(),
        ..new(vec![])
    };
    assert_eq!(
        code(app.registry.create_endpoint(bad_service).await),
        "InvalidServiceName"
    );
    let same_zone = new(vec![
        EndpointSubnet::new(subnet.subnet_id.clone()),
        EndpointSubnet::new(b.subnet_id.clone()),
    ]);
    assert_eq!(
        code(app.registry.create_endpoint(same_zone).await),
        "DuplicateSubnetsInSameZone"
    );
    let in_use = new(vec![EndpointSubnet {
        subnet_id: subnet.subnet_id.clone(),
        ipv4: Some(Ipv4Addr::new(10, 0, 1, 10)),
    }]);
    assert_eq!(
        code(app.registry.create_endpoint(in_use).await),
        "InvalidIPAddress.InUse"
    );
    let reserved = new(vec![EndpointSubnet {
        subnet_id: subnet.subnet_id.clone(),
        ipv4: Some(Ipv4Addr::new(10, 0, 1, 1)),
    }]);
    assert_eq!(
        code(app.registry.create_endpoint(reserved).await),
        "InvalidParameterValue"
    );
    // A second private-DNS endpoint for KMS in the same VPC conflicts.
    let dns = NewEndpoint {
        private_dns_enabled: true,
        ..new(vec![EndpointSubnet::new(b.subnet_id.clone())])
    };
    assert_eq!(
        code(app.registry.create_endpoint(dns).await),
        "InvalidParameter"
    );
    let bad_policy = NewEndpoint {
        policy_document: Some("{not json".into()),
        ..new(vec![])
    };
    assert_eq!(
        code(app.registry.create_endpoint(bad_policy).await),
        "MalformedPolicyDocument"
    );

    // Private DNS needs both DNS attributes of the VPC.
    let plain = create_vpc(&mut app, ALICE, "10.1.0.0/16").await.unwrap();
    let dns = NewEndpoint {
        vpc_id: plain.vpc_id.clone(),
        private_dns_enabled: true,
        ..new(vec![])
    };
    assert_eq!(
        code(app.registry.create_endpoint(dns).await),
        "InvalidParameter"
    );

    // Automatic addresses skip the one taken.
    let (_, enis) = app
        .registry
        .create_endpoint(new(vec![EndpointSubnet::new(subnet.subnet_id.clone())]))
        .await
        .unwrap();
    assert_eq!(enis[0].private_ip, "10.0.1.4");
    assert_eq!(app.registry.interfaces().interfaces().len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn watch_interfaces_sends_a_snapshot_then_every_change() {
    let mut app = spawn_app().await;
    let mut stream = app
        .client
        .watch_interfaces(pb::WatchInterfacesRequest {})
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().expect("first snapshot");
    assert!(first.interfaces.is_empty());
    assert!(first.generation > 0);

    let (_, _, vpce_id, ip) = vpc_with_endpoint(&mut app, None).await;
    let next = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("no snapshot after a change")
        .unwrap()
        .expect("stream ended");
    assert!(next.generation > first.generation);
    assert_eq!(next.interfaces.len(), 1);
    assert_eq!(next.interfaces[0].vpce_id, vpce_id);
    assert_eq!(next.interfaces[0].private_ip, ip);

    // A new watcher starts from the current snapshot.
    let mut late = app
        .client
        .watch_interfaces(pb::WatchInterfacesRequest {})
        .await
        .unwrap()
        .into_inner();
    let current = late.message().await.unwrap().unwrap();
    assert_eq!(current, next);

    // Shutting down ends the streams instead of hanging on them.
    drop(late);
    app.stop().await;
    let end = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("stream still open after shutdown");
    assert!(!matches!(end, Ok(Some(_))));
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = TempDir::new().unwrap();
    // First life through `run`, as the binary does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(kms_registry::run(listener, config(&dir), async {
        let _ = stopped.await;
    }));
    let mut client = connect(addr).await;
    let vpc = client
        .create_vpc(pb::CreateVpcRequest {
            owner_account_id: ALICE.into(),
            cidr_block: "10.0.0.0/16".into(),
        })
        .await
        .unwrap()
        .into_inner();
    drop(client);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server did not stop")
        .unwrap()
        .unwrap();

    // Second life: the VPC is there; add a subnet and an endpoint.
    let mut app = spawn_app_in(dir).await;
    assert_eq!(
        describe_vpcs(&mut app, ALICE, &[]).await.unwrap(),
        vec![vpc.clone()]
    );
    let subnet = create_subnet(&mut app, ALICE, &vpc.vpc_id, "10.0.1.0/24", "us-east-1b")
        .await
        .unwrap();
    let (endpoint, _) = app
        .registry
        .create_endpoint(NewEndpoint {
            owner_account_id: ALICE.into(),
            vpc_id: vpc.vpc_id.clone(),
            service_name: KMS.into(),
            subnets: vec![EndpointSubnet::new(subnet.subnet_id.clone())],
            ..NewEndpoint::default()
        })
        .await
        .unwrap();
    let generation = app.registry.interfaces().generation;
    let dir = app.stop().await;

    // Third life: everything, including the in-memory interface table, is back.
    let mut app = spawn_app_in(dir).await;
    assert_eq!(
        describe_subnets(&mut app, ALICE, &[]).await.unwrap(),
        // One address of the subnet is now the endpoint's.
        vec![pb::Subnet {
            available_ip_address_count: subnet.available_ip_address_count - 1,
            ..subnet
        }]
    );
    let r = resolve(&mut app, "10.0.1.4:443").await;
    assert_eq!(r.endpoint.unwrap().vpce_id, endpoint.vpce_id);
    let snapshot = app
        .client
        .watch_interfaces(pb::WatchInterfacesRequest {})
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snapshot.interfaces.len(), 1);
    assert!(snapshot.generation >= generation);
    app.stop().await;
}

// ---------------------------------------------------------------------------
// The EC2 operations (VPCs and subnets deleted, attributes, endpoint services,
// endpoints, interfaces). Loopback CIDRs only: interface IPs are 127.x.

/// A VPC on 127.`n`.0.0/16 with a subnet 127.`n`.1.0/24 in us-east-1a; both
/// DNS attributes on when `dns`.
async fn loopback_vpc(app: &mut TestApp, owner: &str, n: u8, dns: bool) -> (pb::Vpc, pb::Subnet) {
    let vpc = create_vpc(app, owner, &format!("127.{n}.0.0/16"))
        .await
        .unwrap();
    let subnet = create_subnet(
        app,
        owner,
        &vpc.vpc_id,
        &format!("127.{n}.1.0/24"),
        "us-east-1a",
    )
    .await
    .unwrap();
    if dns {
        modify_attribute(app, owner, &vpc.vpc_id, None, Some(true))
            .await
            .unwrap();
    }
    (vpc, subnet)
}

async fn modify_attribute(
    app: &mut TestApp,
    owner: &str,
    vpc_id: &str,
    support: Option<bool>,
    hostnames: Option<bool>,
) -> Result<pb::Vpc, Status> {
    app.client
        .modify_vpc_attribute(pb::ModifyVpcAttributeRequest {
            owner_account_id: owner.into(),
            vpc_id: vpc_id.into(),
            enable_dns_support: support,
            enable_dns_hostnames: hostnames,
        })
        .await
        .map(|r| r.into_inner())
}

async fn create_endpoint_rpc(
    app: &mut TestApp,
    req: pb::CreateVpcEndpointRequest,
) -> Result<pb::VpcEndpoint, Status> {
    app.client
        .create_vpc_endpoint(req)
        .await
        .map(|r| r.into_inner())
}

fn endpoint_request(owner: &str, vpc_id: &str, subnets: &[&str]) -> pb::CreateVpcEndpointRequest {
    pb::CreateVpcEndpointRequest {
        owner_account_id: owner.into(),
        vpc_id: vpc_id.into(),
        service_name: KMS.into(),
        vpc_endpoint_type: "Interface".into(),
        subnet_ids: subnets.iter().map(|s| s.to_string()).collect(),
        private_dns_enabled: Some(false),
        ..Default::default()
    }
}

async fn describe_endpoints(
    app: &mut TestApp,
    owner: &str,
    ids: &[&str],
    filters: Vec<pb::Filter>,
) -> Result<Vec<pb::VpcEndpoint>, Status> {
    app.client
        .describe_vpc_endpoints(pb::DescribeVpcEndpointsRequest {
            owner_account_id: owner.into(),
            vpc_endpoint_ids: ids.iter().map(|s| s.to_string()).collect(),
            filters,
        })
        .await
        .map(|r| r.into_inner().vpc_endpoints)
}

fn filter(name: &str, values: &[&str]) -> pb::Filter {
    pb::Filter {
        name: name.into(),
        values: values.iter().map(|s| s.to_string()).collect(),
    }
}

/// The next snapshot of a watch stream, within 5 s.
async fn next_snapshot(
    stream: &mut tonic::Streaming<pb::InterfaceSnapshot>,
) -> pb::InterfaceSnapshot {
    tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("no snapshot after a change")
        .unwrap()
        .expect("stream ended")
}

fn is_suffix(s: &str) -> bool {
    s.len() == 8
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

#[tokio::test]
async fn delete_vpc_and_subnet_refuse_while_in_use() {
    let mut app = spawn_app().await;
    let (vpc, subnet) = loopback_vpc(&mut app, ALICE, 10, false).await;
    let e = app
        .client
        .delete_vpc(pb::DeleteVpcRequest {
            owner_account_id: ALICE.into(),
            vpc_id: vpc.vpc_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "DependencyViolation");
    assert_eq!(
        e.message(),
        format!(
            "The vpc '{}' has dependencies and cannot be deleted.",
            vpc.vpc_id
        )
    );
    let endpoint = create_endpoint_rpc(
        &mut app,
        endpoint_request(ALICE, &vpc.vpc_id, &[&subnet.subnet_id]),
    )
    .await
    .unwrap();
    let e = app
        .client
        .delete_subnet(pb::DeleteSubnetRequest {
            owner_account_id: ALICE.into(),
            subnet_id: subnet.subnet_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "DependencyViolation");
    assert_eq!(
        e.message(),
        format!(
            "The subnet '{}' has dependencies and cannot be deleted.",
            subnet.subnet_id
        )
    );
    // Another account cannot see, hence cannot delete, them.
    let e = app
        .client
        .delete_subnet(pb::DeleteSubnetRequest {
            owner_account_id: BOB.into(),
            subnet_id: subnet.subnet_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidSubnetID.NotFound");

    let vpce_id = endpoint.endpoint.unwrap().vpce_id;
    let unsuccessful = app
        .client
        .delete_vpc_endpoints(pb::DeleteVpcEndpointsRequest {
            owner_account_id: ALICE.into(),
            vpc_endpoint_ids: vec![vpce_id],
        })
        .await
        .unwrap()
        .into_inner()
        .unsuccessful;
    assert!(unsuccessful.is_empty());
    app.client
        .delete_subnet(pb::DeleteSubnetRequest {
            owner_account_id: ALICE.into(),
            subnet_id: subnet.subnet_id.clone(),
        })
        .await
        .unwrap();
    assert!(
        describe_subnets(&mut app, ALICE, &[])
            .await
            .unwrap()
            .is_empty()
    );
    app.client
        .delete_vpc(pb::DeleteVpcRequest {
            owner_account_id: ALICE.into(),
            vpc_id: vpc.vpc_id.clone(),
        })
        .await
        .unwrap();
    let e = describe_vpcs(&mut app, ALICE, &[&vpc.vpc_id])
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidVpcID.NotFound");
    let e = app
        .client
        .delete_vpc(pb::DeleteVpcRequest {
            owner_account_id: ALICE.into(),
            vpc_id: vpc.vpc_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidVpcID.NotFound");
    app.stop().await;
}

#[tokio::test]
async fn modify_vpc_attribute_changes_one_attribute_at_a_time() {
    let mut app = spawn_app().await;
    let (vpc, _) = loopback_vpc(&mut app, ALICE, 11, false).await;
    let v = modify_attribute(&mut app, ALICE, &vpc.vpc_id, None, Some(true))
        .await
        .unwrap();
    assert!(v.enable_dns_support && v.enable_dns_hostnames);
    let v = modify_attribute(&mut app, ALICE, &vpc.vpc_id, Some(false), None)
        .await
        .unwrap();
    assert!(!v.enable_dns_support && v.enable_dns_hostnames);
    let e = modify_attribute(&mut app, ALICE, &vpc.vpc_id, Some(true), Some(true))
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidParameterCombination");
    let e = modify_attribute(&mut app, BOB, &vpc.vpc_id, Some(true), None)
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidVpcID.NotFound");
    let described = describe_vpcs(&mut app, ALICE, &[&vpc.vpc_id])
        .await
        .unwrap();
    assert!(!described[0].enable_dns_support);
    assert!(described[0].enable_dns_hostnames);
    app.stop().await;
}

#[tokio::test]
async fn describe_vpcs_and_subnets_apply_filters() {
    let mut app = spawn_app().await;
    let (a, sa) = loopback_vpc(&mut app, ALICE, 12, false).await;
    let (b, sb) = loopback_vpc(&mut app, ALICE, 13, false).await;
    let vpcs = app
        .client
        .describe_vpcs(pb::DescribeVpcsRequest {
            owner_account_id: ALICE.into(),
            filters: vec![filter("cidr", &["127.13.0.0/16", "10.0.0.0/16"])],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .vpcs;
    assert_eq!(vpcs, vec![b.clone()]);
    let subnets = app
        .client
        .describe_subnets(pb::DescribeSubnetsRequest {
            owner_account_id: ALICE.into(),
            filters: vec![
                filter("vpc-id", &[&a.vpc_id]),
                filter("availability-zone", &["us-east-1?"]),
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subnets;
    assert_eq!(subnets.len(), 1);
    assert_eq!(subnets[0].subnet_id, sa.subnet_id);
    assert_eq!(subnets[0].availability_zone_id, "use1-az1");
    // A /24 has 256 - 5 assignable addresses.
    assert_eq!(subnets[0].available_ip_address_count, 251);
    assert_ne!(sa.subnet_id, sb.subnet_id);
    let e = app
        .client
        .describe_subnets(pb::DescribeSubnetsRequest {
            owner_account_id: ALICE.into(),
            filters: vec![filter("colour", &["blue"])],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidParameterValue");
    assert_eq!(e.message(), "The filter 'colour' is invalid");
    app.stop().await;
}

#[tokio::test]
async fn endpoint_services_list_kms_and_kms_fips() {
    let mut app = spawn_app().await;
    let services = app
        .client
        .describe_vpc_endpoint_services(pb::DescribeVpcEndpointServicesRequest {
            owner_account_id: ALICE.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .services;
    let names: Vec<&str> = services.iter().map(|s| s.service_name.as_str()).collect();
    assert_eq!(names, [KMS, "com.amazonaws.us-east-1.kms-fips"]);
    let kms = &services[0];
    assert_eq!(kms.service_type, "Interface");
    assert_eq!(kms.owner, "amazon");
    assert_eq!(kms.private_dns_name, "kms.us-east-1.amazonaws.com");
    assert_eq!(
        kms.base_endpoint_dns_names,
        ["kms.us-east-1.vpce.amazonaws.com"]
    );
    assert_eq!(kms.availability_zones.len(), 6);
    assert!(kms.vpc_endpoint_policy_supported);
    assert!(kms.service_id.starts_with("vpce-svc-"));
    // No zone offers the FIPS service here: no interface endpoint for it.
    assert!(services[1].availability_zones.is_empty());
    assert_eq!(
        services[1].private_dns_name,
        "kms-fips.us-east-1.amazonaws.com"
    );

    let only = app
        .client
        .describe_vpc_endpoint_services(pb::DescribeVpcEndpointServicesRequest {
            owner_account_id: ALICE.into(),
            filters: vec![filter("service-name", &["*.kms"])],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .services;
    assert_eq!(only.len(), 1);
    let e = app
        .client
        .describe_vpc_endpoint_services(pb::DescribeVpcEndpointServicesRequest {
            owner_account_id: ALICE.into(),
            service_names: vec!["com.amazonaws.us-east-1.s3".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidServiceName");
    app.stop().await;
}

#[tokio::test]
async fn create_vpc_endpoint_makes_interfaces_and_dns_names() {
    let mut app = spawn_app().await;
    let mut watch = app
        .client
        .watch_interfaces(pb::WatchInterfacesRequest {})
        .await
        .unwrap()
        .into_inner();
    let first = next_snapshot(&mut watch).await;
    assert!(first.interfaces.is_empty());

    let (vpc, a) = loopback_vpc(&mut app, ALICE, 20, true).await;
    let b = create_subnet(&mut app, ALICE, &vpc.vpc_id, "127.20.2.0/24", "us-east-1b")
        .await
        .unwrap();
    let mut req = endpoint_request(ALICE, &vpc.vpc_id, &[&a.subnet_id, &b.subnet_id]);
    req.private_dns_enabled = None; // EC2's default: on.
    req.security_group_ids = vec!["sg-0123456789abcdef0".into(), "sg-12345678".into()];
    let v = create_endpoint_rpc(&mut app, req).await.unwrap();
    let e = v.endpoint.clone().unwrap();
    assert!(is_ec2_id(&e.vpce_id, "vpce-"));
    assert_eq!(e.policy_document, kms_registry::DEFAULT_ENDPOINT_POLICY);
    assert!(e.private_dns_enabled);
    assert_eq!(e.state, "available");
    assert_eq!(v.vpc_endpoint_type, "Interface");
    assert_eq!(v.subnet_ids, [a.subnet_id.clone(), b.subnet_id.clone()]);
    assert_eq!(v.network_interface_ids.len(), 2);
    assert_eq!(
        v.security_group_ids,
        ["sg-0123456789abcdef0", "sg-12345678"]
    );
    assert!(v.creation_time_ms > 0);
    assert!(is_suffix(&v.dns_suffix), "{}", v.dns_suffix);
    let names: Vec<&str> = v.dns_entries.iter().map(|d| d.dns_name.as_str()).collect();
    let base = format!("{}-{}", e.vpce_id, v.dns_suffix);
    assert_eq!(
        names,
        [
            format!("{base}.kms.us-east-1.vpce.amazonaws.com"),
            format!("{base}-us-east-1a.kms.us-east-1.vpce.amazonaws.com"),
            format!("{base}-us-east-1b.kms.us-east-1.vpce.amazonaws.com"),
            "kms.us-east-1.amazonaws.com".to_owned(),
        ]
    );
    assert_eq!(v.dns_entries[0].hosted_zone_id, "Z7HUB22UULQXV");

    // Watchers see both interfaces, with loopback addresses from the subnets.
    let snap = next_snapshot(&mut watch).await;
    let ips: Vec<&str> = snap
        .interfaces
        .iter()
        .map(|i| i.private_ip.as_str())
        .collect();
    assert_eq!(ips, ["127.20.1.4", "127.20.2.4"]);
    assert_eq!(
        resolve(&mut app, "127.20.2.4:443")
            .await
            .endpoint
            .unwrap()
            .vpce_id,
        e.vpce_id
    );
    // The subnet's free addresses went down by one.
    let sa = describe_subnets(&mut app, ALICE, &[&a.subnet_id])
        .await
        .unwrap();
    assert_eq!(sa[0].available_ip_address_count, 250);
    app.stop().await;
}

#[tokio::test]
async fn create_vpc_endpoint_refuses_what_ec2_refuses() {
    let mut app = spawn_app().await;
    let (plain, subnet) = loopback_vpc(&mut app, ALICE, 21, false).await;
    // Private DNS (EC2's default) needs both DNS attributes.
    let mut req = endpoint_request(ALICE, &plain.vpc_id, &[&subnet.subnet_id]);
    req.private_dns_enabled = None;
    let e = create_endpoint_rpc(&mut app, req).await.unwrap_err();
    assert_eq!(aws_code(&e), "InvalidParameter");
    assert_eq!(
        e.message(),
        format!(
            "Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC attributes set to true for {}",
            plain.vpc_id
        )
    );
    // The FIPS service exists but no zone offers an interface endpoint for it.
    let mut req = endpoint_request(ALICE, &plain.vpc_id, &[&subnet.subnet_id]);
    req.service_name = "com.amazonaws.us-east-1.kms-fips".into();
    let e = create_endpoint_rpc(&mut app, req).await.unwrap_err();
    assert_eq!(aws_code(&e), "InvalidParameter");
    assert_eq!(
        e.message(),
        format!(
            "The VPC endpoint service com.amazonaws.us-east-1.kms-fips does not support the availability zone of the subnet: {}.",
            subnet.subnet_id
        )
    );
    let mut req = endpoint_request(ALICE, &plain.vpc_id, &[]);
    req.service_name = "com.amazonaws.us-east-1.kms-fips".into();
    let e = create_endpoint_rpc(&mut app, req).await.unwrap_err();
    assert_eq!(aws_code(&e), "InvalidParameter");
    assert_eq!(
        e.message(),
        "The VPC endpoint service com.amazonaws.us-east-1.kms-fips is not available in any availability zone."
    );
    let mut req = endpoint_request(ALICE, &plain.vpc_id, &[&subnet.subnet_id]);
    req.vpc_endpoint_type = "Gateway".into();
    let e = create_endpoint_rpc(&mut app, req).await.unwrap_err();
    assert_eq!(aws_code(&e), "InvalidParameter");
    assert_eq!(
        e.message(),
        "Endpoint type (Gateway) does not match available service types ([Interface])."
    );
    let mut req = endpoint_request(ALICE, &plain.vpc_id, &[&subnet.subnet_id]);
    req.security_group_ids = vec!["default".into()];
    let e = create_endpoint_rpc(&mut app, req).await.unwrap_err();
    assert_eq!(aws_code(&e), "InvalidGroupId.Malformed");
    let mut req = endpoint_request(ALICE, &plain.vpc_id, &[&subnet.subnet_id]);
    req.policy_document = Some("[1, 2]".into());
    let e = create_endpoint_rpc(&mut app, req).await.unwrap_err();
    assert_eq!(aws_code(&e), "MalformedPolicyDocument");
    let e = create_endpoint_rpc(&mut app, endpoint_request(BOB, &plain.vpc_id, &[]))
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidVpcID.NotFound");
    // An explicit address must be assignable and free.
    let mut req = endpoint_request(ALICE, &plain.vpc_id, &[]);
    req.subnet_configurations = vec![pb::SubnetConfiguration {
        subnet_id: subnet.subnet_id.clone(),
        ipv4: "127.21.1.77".into(),
    }];
    let v = create_endpoint_rpc(&mut app, req.clone()).await.unwrap();
    assert_eq!(v.subnet_ids, [subnet.subnet_id.as_str()]);
    let e = create_endpoint_rpc(&mut app, req).await.unwrap_err();
    assert_eq!(aws_code(&e), "InvalidIPAddress.InUse");
    assert!(
        app.registry
            .resolve_listener(IpAddr::from([127, 21, 1, 77]))
            .is_some()
    );
    app.stop().await;
}

#[tokio::test]
async fn modify_vpc_endpoint_changes_policy_dns_and_subnets() {
    let mut app = spawn_app().await;
    let (vpc, a) = loopback_vpc(&mut app, ALICE, 22, true).await;
    let b = create_subnet(&mut app, ALICE, &vpc.vpc_id, "127.22.2.0/24", "us-east-1b")
        .await
        .unwrap();
    let v = create_endpoint_rpc(
        &mut app,
        endpoint_request(ALICE, &vpc.vpc_id, &[&a.subnet_id]),
    )
    .await
    .unwrap();
    let vpce_id = v.endpoint.clone().unwrap().vpce_id;
    let mut watch = app
        .client
        .watch_interfaces(pb::WatchInterfacesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_snapshot(&mut watch).await.interfaces.len(), 1);

    let modify = |changes: pb::ModifyVpcEndpointRequest| pb::ModifyVpcEndpointRequest {
        owner_account_id: ALICE.into(),
        vpc_endpoint_id: vpce_id.clone(),
        ..changes
    };
    let policy =
        r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*"}]}"#;
    let m = app
        .client
        .modify_vpc_endpoint(modify(pb::ModifyVpcEndpointRequest {
            policy_document: Some(policy.into()),
            add_subnet_ids: vec![b.subnet_id.clone()],
            remove_subnet_ids: vec![a.subnet_id.clone()],
            private_dns_enabled: Some(true),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let e = m.endpoint.clone().unwrap();
    assert_eq!(e.policy_document, policy);
    assert!(e.private_dns_enabled);
    assert_eq!(m.subnet_ids, [b.subnet_id.as_str()]);
    // The DNS names keep their suffix.
    assert_eq!(m.dns_suffix, v.dns_suffix);
    let snap = next_snapshot(&mut watch).await;
    let ips: Vec<&str> = snap
        .interfaces
        .iter()
        .map(|i| i.private_ip.as_str())
        .collect();
    assert_eq!(ips, ["127.22.2.4"]);
    assert!(resolve(&mut app, "127.22.1.4:443").await.endpoint.is_none());
    // The policy the gateway sees on a connection is the new one.
    let seen = resolve(&mut app, "127.22.2.4:443").await.endpoint.unwrap();
    assert_eq!(seen.policy_document, policy);

    let m = app
        .client
        .modify_vpc_endpoint(modify(pb::ModifyVpcEndpointRequest {
            reset_policy: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        m.endpoint.unwrap().policy_document,
        kms_registry::DEFAULT_ENDPOINT_POLICY
    );
    let e = app
        .client
        .modify_vpc_endpoint(modify(pb::ModifyVpcEndpointRequest {
            remove_subnet_ids: vec![a.subnet_id.clone()],
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidParameter");
    // A second private-DNS endpoint for KMS in the VPC conflicts.
    let other = create_endpoint_rpc(&mut app, endpoint_request(ALICE, &vpc.vpc_id, &[]))
        .await
        .unwrap();
    let e = app
        .client
        .modify_vpc_endpoint(pb::ModifyVpcEndpointRequest {
            owner_account_id: ALICE.into(),
            vpc_endpoint_id: other.endpoint.unwrap().vpce_id,
            private_dns_enabled: Some(true),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidParameter");
    let e = app
        .client
        .modify_vpc_endpoint(pb::ModifyVpcEndpointRequest {
            owner_account_id: BOB.into(),
            vpc_endpoint_id: vpce_id.clone(),
            reset_policy: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidVpcEndpointId.NotFound");
    app.stop().await;
}

#[tokio::test]
async fn describe_vpc_endpoints_by_id_and_filter() {
    let mut app = spawn_app().await;
    let (vpc, a) = loopback_vpc(&mut app, ALICE, 23, false).await;
    let (other_vpc, _) = loopback_vpc(&mut app, ALICE, 24, false).await;
    let one = create_endpoint_rpc(
        &mut app,
        endpoint_request(ALICE, &vpc.vpc_id, &[&a.subnet_id]),
    )
    .await
    .unwrap();
    let two = create_endpoint_rpc(&mut app, endpoint_request(ALICE, &other_vpc.vpc_id, &[]))
        .await
        .unwrap();
    let one_id = one.endpoint.clone().unwrap().vpce_id;
    let two_id = two.endpoint.clone().unwrap().vpce_id;

    let all = describe_endpoints(&mut app, ALICE, &[], vec![])
        .await
        .unwrap();
    assert_eq!(all, vec![one.clone(), two.clone()]);
    assert_eq!(
        describe_endpoints(&mut app, ALICE, &[&two_id], vec![])
            .await
            .unwrap(),
        vec![two.clone()]
    );
    for (f, want) in [
        (filter("vpc-id", &[&vpc.vpc_id]), vec![one.clone()]),
        (filter("vpc-endpoint-id", &[&two_id]), vec![two.clone()]),
        (
            filter("service-name", &[KMS]),
            vec![one.clone(), two.clone()],
        ),
        (
            filter("vpc-endpoint-state", &["available"]),
            vec![one.clone(), two.clone()],
        ),
        (filter("vpc-endpoint-type", &["Gateway"]), vec![]),
    ] {
        assert_eq!(
            describe_endpoints(&mut app, ALICE, &[], vec![f.clone()])
                .await
                .unwrap(),
            want,
            "{f:?}"
        );
    }
    assert!(
        describe_endpoints(&mut app, BOB, &[], vec![])
            .await
            .unwrap()
            .is_empty()
    );
    let e = describe_endpoints(&mut app, BOB, &[&one_id], vec![])
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidVpcEndpointId.NotFound");
    assert_eq!(
        e.message(),
        format!("The Vpc Endpoint Id '{one_id}' does not exist")
    );
    let e = describe_endpoints(&mut app, ALICE, &["vpce-nope"], vec![])
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidVpcEndpointId.Malformed");
    let e = describe_endpoints(&mut app, ALICE, &[], vec![filter("tag:Name", &["x"])])
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidParameterValue");
    app.stop().await;
}

#[tokio::test]
async fn delete_vpc_endpoints_reports_unknown_ids_and_drops_interfaces() {
    let mut app = spawn_app().await;
    let (vpc, a) = loopback_vpc(&mut app, ALICE, 25, false).await;
    let v = create_endpoint_rpc(
        &mut app,
        endpoint_request(ALICE, &vpc.vpc_id, &[&a.subnet_id]),
    )
    .await
    .unwrap();
    let vpce_id = v.endpoint.unwrap().vpce_id;
    let mut watch = app
        .client
        .watch_interfaces(pb::WatchInterfacesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_snapshot(&mut watch).await.interfaces.len(), 1);

    // Bob cannot delete Alice's endpoint.
    let unsuccessful = app
        .client
        .delete_vpc_endpoints(pb::DeleteVpcEndpointsRequest {
            owner_account_id: BOB.into(),
            vpc_endpoint_ids: vec![vpce_id.clone()],
        })
        .await
        .unwrap()
        .into_inner()
        .unsuccessful;
    assert_eq!(unsuccessful.len(), 1);
    assert_eq!(unsuccessful[0].code, "InvalidVpcEndpoint.NotFound");

    let unknown = "vpce-0123456789abcdef0";
    let unsuccessful = app
        .client
        .delete_vpc_endpoints(pb::DeleteVpcEndpointsRequest {
            owner_account_id: ALICE.into(),
            vpc_endpoint_ids: vec![vpce_id.clone(), unknown.into()],
        })
        .await
        .unwrap()
        .into_inner()
        .unsuccessful;
    assert_eq!(
        unsuccessful,
        vec![pb::UnsuccessfulItem {
            resource_id: unknown.into(),
            code: "InvalidVpcEndpoint.NotFound".into(),
            message: format!("The Vpc Endpoint Id '{unknown}' does not exist"),
        }]
    );
    let snap = next_snapshot(&mut watch).await;
    assert!(snap.interfaces.is_empty());
    assert!(resolve(&mut app, "127.25.1.4:443").await.endpoint.is_none());
    assert!(
        describe_endpoints(&mut app, ALICE, &[], vec![])
            .await
            .unwrap()
            .is_empty()
    );
    app.stop().await;
}

#[tokio::test]
async fn describe_network_interfaces_shows_endpoint_interfaces() {
    let mut app = spawn_app().await;
    let (vpc, a) = loopback_vpc(&mut app, ALICE, 26, false).await;
    let mut req = endpoint_request(ALICE, &vpc.vpc_id, &[&a.subnet_id]);
    req.security_group_ids = vec!["sg-12345678".into()];
    let v = create_endpoint_rpc(&mut app, req).await.unwrap();
    let vpce_id = v.endpoint.unwrap().vpce_id;
    let describe =
        |ids: Vec<String>, filters: Vec<pb::Filter>| pb::DescribeNetworkInterfacesRequest {
            owner_account_id: ALICE.into(),
            network_interface_ids: ids,
            filters,
        };
    let enis = app
        .client
        .describe_network_interfaces(describe(vec![], vec![]))
        .await
        .unwrap()
        .into_inner()
        .network_interfaces;
    assert_eq!(enis.len(), 1);
    let n = &enis[0];
    let i = n.interface.clone().unwrap();
    assert_eq!(vec![i.eni_id.clone()], v.network_interface_ids);
    assert_eq!(i.private_ip, "127.26.1.4");
    assert_eq!(i.subnet_id, a.subnet_id);
    assert_eq!(i.vpce_id, vpce_id);
    assert_eq!(n.vpc_id, vpc.vpc_id);
    assert_eq!(n.availability_zone, "us-east-1a");
    assert_eq!(n.owner_account_id, ALICE);
    assert_eq!(n.description, format!("VPC Endpoint Interface {vpce_id}"));
    assert_eq!(n.interface_type, "vpc_endpoint");
    assert_eq!(n.status, "in-use");
    assert_eq!(n.security_group_ids, ["sg-12345678"]);
    assert_eq!(n.private_dns_name, "ip-127-26-1-4.ec2.internal");
    assert!(n.mac_address.starts_with("02:"));

    let by_ip = app
        .client
        .describe_network_interfaces(describe(
            vec![],
            vec![filter("addresses.private-ip-address", &["127.26.1.4"])],
        ))
        .await
        .unwrap()
        .into_inner()
        .network_interfaces;
    assert_eq!(by_ip.len(), 1);
    let none = app
        .client
        .describe_network_interfaces(describe(
            vec![],
            vec![filter("vpc-id", &["vpc-0123456789abcdef0"])],
        ))
        .await
        .unwrap()
        .into_inner()
        .network_interfaces;
    assert!(none.is_empty());
    let e = app
        .client
        .describe_network_interfaces(describe(vec!["eni-0123456789abcdef0".into()], vec![]))
        .await
        .unwrap_err();
    assert_eq!(aws_code(&e), "InvalidNetworkInterfaceID.NotFound");
    let bobs = app
        .client
        .describe_network_interfaces(pb::DescribeNetworkInterfacesRequest {
            owner_account_id: BOB.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .network_interfaces;
    assert!(bobs.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn endpoint_dns_suffix_and_security_groups_survive_a_restart() {
    let mut app = spawn_app().await;
    let (vpc, a) = loopback_vpc(&mut app, ALICE, 27, false).await;
    let mut req = endpoint_request(ALICE, &vpc.vpc_id, &[&a.subnet_id]);
    req.security_group_ids = vec!["sg-12345678".into()];
    let before = create_endpoint_rpc(&mut app, req).await.unwrap();
    let dir = app.stop().await;
    let mut app = spawn_app_in(dir).await;
    let after = describe_endpoints(&mut app, ALICE, &[], vec![])
        .await
        .unwrap();
    assert_eq!(after, vec![before]);
    app.stop().await;
}
