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
        vec![subnet]
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
