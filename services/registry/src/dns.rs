//! The registry's authoritative DNS server (hickory-server), over UDP and TCP.
//!
//! Names served:
//! - `vpce-<id>-<suffix>.kms.<region>.vpce.amazonaws.com`: every interface IP
//!   of the endpoint; `vpce-<id>-<suffix>-<az>.kms.<region>.vpce.amazonaws.com`:
//!   the interface in that availability zone. Any resolver answers them.
//! - `kms.<region>.amazonaws.com`: through the resolver of a VPC that has both
//!   DNS attributes on and a KMS endpoint with private DNS enabled, that
//!   endpoint's interface IPs; otherwise the public endpoint's IP.
//!
//! Which VPC asked is decided only by the address the query arrived on (the
//! network path decides): each resolver is its own socket pair bound to its
//! own address, never a wildcard. A VPC's resolver listens on the base address
//! of its CIDR + 2 (as AWS's does), the public resolver on the public
//! endpoint's IP, all on one port. Resolvers follow the VPCs: the server
//! rebuilds its zones and binds or closes resolvers after every registry write.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

use crate::cidr::Ipv4Cidr;
use crate::model::Endpoint;
use crate::registry::Registry;
use crate::store::Store;

/// TTL of every answer (AWS's endpoint records use 60 s).
const TTL: u32 = 60;
/// A TCP connection that sends no query for this long is closed.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often binding a VPC resolver that failed is retried.
const BIND_RETRY: Duration = Duration::from_secs(2);

/// Whether a VPC resolver may be bound on `ip`: loopback only (127.0.0.0/8,
/// the local stack) unless non-loopback addresses are allowed (compose).
pub fn may_bind(ip: Ipv4Addr, allow_non_loopback: bool) -> bool {
    allow_non_loopback || ip.is_loopback()
}

/// Who a resolver answers for: decided by the address it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resolver {
    Public,
    Vpc(String),
}

/// Everything the DNS server answers, rebuilt after every registry write.
#[derive(Debug, Default)]
struct Zones {
    /// `kms.<region>.amazonaws.com`
    kms_name: String,
    /// `<region>.vpce.amazonaws.com`: the zone of the endpoint-specific names.
    vpce_zone: String,
    public_ip: Option<Ipv4Addr>,
    /// Endpoint-specific and per-AZ names (lowercase, no trailing dot).
    names: HashMap<String, Vec<Ipv4Addr>>,
    /// VPCs whose `kms.<region>.amazonaws.com` is private: the interface IPs.
    private: HashMap<String, Vec<Ipv4Addr>>,
    /// VPCs that have a resolver (DNS support on): vpc id -> resolver address.
    resolvers: BTreeMap<String, Ipv4Addr>,
    serial: u32,
}

/// What a query gets.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// Not a name of ours: REFUSED (an authoritative-only server).
    Refused,
    /// In our zones but no such name: NXDOMAIN with the SOA.
    NxDomain,
    /// The name exists but has no records of that type: NOERROR, no answers, the SOA.
    NoData,
    Addresses(Vec<Ipv4Addr>),
}

impl Zones {
    fn answer(&self, resolver: &Resolver, qname: &str, qtype: RecordType) -> Answer {
        let name = qname.trim_end_matches('.').to_ascii_lowercase();
        let addresses = if name == self.kms_name {
            let private = match resolver {
                Resolver::Vpc(vpc_id) => self.private.get(vpc_id),
                Resolver::Public => None,
            };
            match (private, self.public_ip) {
                (Some(ips), _) => ips.clone(),
                (None, Some(ip)) => vec![ip],
                (None, None) => Vec::new(),
            }
        } else if let Some(ips) = self.names.get(&name) {
            ips.clone()
        } else if name == self.vpce_zone || name.ends_with(&format!(".{}", self.vpce_zone)) {
            return Answer::NxDomain;
        } else {
            return Answer::Refused;
        };
        match qtype {
            RecordType::A | RecordType::ANY if !addresses.is_empty() => {
                Answer::Addresses(addresses)
            }
            _ => Answer::NoData,
        }
    }

    /// The SOA of the zone `qname` falls in.
    fn soa(&self, qname: &str) -> Option<Record> {
        let name = qname.trim_end_matches('.').to_ascii_lowercase();
        let zone = if name == self.kms_name {
            &self.kms_name
        } else {
            &self.vpce_zone
        };
        let zone = Name::from_ascii(format!("{zone}.")).ok()?;
        let mname = Name::from_ascii("ns.kms.local.").ok()?;
        let rname = Name::from_ascii("hostmaster.kms.local.").ok()?;
        Some(Record::from_rdata(
            zone,
            TTL,
            RData::SOA(SOA::new(
                mname,
                rname,
                self.serial,
                7200,
                900,
                1_209_600,
                TTL,
            )),
        ))
    }
}

/// The service label of an endpoint's names: `kms` (or `kms-fips`).
fn endpoint_service(endpoint: &Endpoint) -> &str {
    endpoint.service_name.rsplit('.').next().unwrap_or("kms")
}

/// An endpoint's DNS name, as DescribeVpcEndpoints' DnsEntries and this
/// server spell it: `vpce-<id>-<suffix>.kms.<region>.vpce.amazonaws.com`, or
/// with `-<az>` after the suffix for the per-AZ name.
pub fn endpoint_dns_name(endpoint: &Endpoint, region: &str, az: Option<&str>) -> String {
    let zone = az.map(|az| format!("-{az}")).unwrap_or_default();
    format!(
        "{}-{}{zone}.{}.{region}.vpce.amazonaws.com",
        endpoint.vpce_id,
        endpoint.dns_suffix,
        endpoint_service(endpoint)
    )
}

/// The address of a VPC's resolver: the base of its CIDR + 2.
pub fn resolver_address(cidr: &Ipv4Cidr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(cidr.network()).wrapping_add(2))
}

async fn build_zones<S: Store>(
    registry: &Registry<S>,
    public_ip: Option<Ipv4Addr>,
    serial: u32,
) -> Result<Zones, crate::RegistryError> {
    let region = registry.region().to_owned();
    let vpcs = registry.all_vpcs().await?;
    let subnets = registry.all_subnets().await?;
    let endpoints = registry.all_endpoints().await?;
    let table = registry.interfaces();
    let zone_of: HashMap<&str, &str> = subnets
        .iter()
        .map(|s| (s.subnet_id.as_str(), s.availability_zone.as_str()))
        .collect();
    let vpce_zone = format!("{region}.vpce.amazonaws.com");
    let mut zones = Zones {
        kms_name: format!("kms.{region}.amazonaws.com"),
        vpce_zone: vpce_zone.clone(),
        public_ip,
        serial,
        ..Zones::default()
    };
    for vpc in &vpcs {
        if vpc.enable_dns_support
            && let Ok(cidr) = vpc.cidr_block.parse::<Ipv4Cidr>()
        {
            zones
                .resolvers
                .insert(vpc.vpc_id.clone(), resolver_address(&cidr));
        }
    }
    for endpoint in &endpoints {
        let ips: Vec<(Ipv4Addr, &str)> = table
            .interfaces()
            .iter()
            .filter(|i| i.vpce_id == endpoint.vpce_id)
            .filter_map(|i| {
                let ip = i.private_ip.parse::<Ipv4Addr>().ok()?;
                Some((ip, zone_of.get(i.subnet_id.as_str()).copied().unwrap_or("")))
            })
            .collect();
        if ips.is_empty() {
            continue;
        }
        let service = endpoint_service(endpoint);
        zones.names.insert(
            endpoint_dns_name(endpoint, &region, None),
            ips.iter().map(|(ip, _)| *ip).collect(),
        );
        for (ip, az) in &ips {
            if !az.is_empty() {
                zones
                    .names
                    .entry(endpoint_dns_name(endpoint, &region, Some(az)))
                    .or_default()
                    .push(*ip);
            }
        }
        let vpc_dns_on = vpcs
            .iter()
            .any(|v| v.vpc_id == endpoint.vpc_id && v.enable_dns_support && v.enable_dns_hostnames);
        if endpoint.private_dns_enabled && vpc_dns_on && service == "kms" {
            zones.private.insert(
                endpoint.vpc_id.clone(),
                ips.iter().map(|(ip, _)| *ip).collect(),
            );
        }
    }
    Ok(zones)
}

/// One resolver: answers from the current zones as `resolver`.
struct Handler {
    resolver: Resolver,
    zones: watch::Receiver<Arc<Zones>>,
}

#[tonic::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let zones = self.zones.borrow().clone();
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = false;
        let mut answers = Vec::new();
        let mut soa = Vec::new();
        let edns = request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().max(512));
            e.set_version(0);
            e
        });
        if request.metadata.message_type != MessageType::Query
            || request.metadata.op_code != OpCode::Query
        {
            metadata.response_code = ResponseCode::NotImp;
        } else {
            match request.request_info() {
                Err(_) => metadata.response_code = ResponseCode::FormErr,
                Ok(info) => {
                    let query = info.query;
                    let qname = query.name().to_string();
                    let answer = zones.answer(&self.resolver, &qname, query.query_type());
                    tracing::debug!(resolver = ?self.resolver, name = %qname, qtype = %query.query_type(), ?answer, "dns query");
                    match answer {
                        Answer::Refused => metadata.response_code = ResponseCode::Refused,
                        Answer::NxDomain => {
                            metadata.authoritative = true;
                            metadata.response_code = ResponseCode::NXDomain;
                            soa.extend(zones.soa(&qname));
                        }
                        Answer::NoData => {
                            metadata.authoritative = true;
                            soa.extend(zones.soa(&qname));
                        }
                        Answer::Addresses(ips) => {
                            metadata.authoritative = true;
                            let owner = query.original().name().clone();
                            answers.extend(
                                ips.into_iter().map(|ip| {
                                    Record::from_rdata(owner.clone(), TTL, RData::A(A(ip)))
                                }),
                            );
                        }
                    }
                }
            }
        }
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(e) = &edns {
            builder.edns(e);
        }
        let response = builder.build(metadata, answers.iter(), [], soa.iter(), []);
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(error = %e, "dns response could not be sent");
                let mut failed = Metadata::response_from_request(&request.metadata);
                failed.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata: failed,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

fn start_resolver(
    resolver: Resolver,
    zones: watch::Receiver<Arc<Zones>>,
    udp: UdpSocket,
    tcp: TcpListener,
) -> Server<Handler> {
    let mut server = Server::new(Handler { resolver, zones });
    server.register_socket(udp);
    server.register_listener(tcp, TCP_TIMEOUT, 32);
    server
}

/// Bind a resolver's UDP socket and TCP listener on `addr`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let udp = UdpSocket::bind(addr).await?;
    let tcp = TcpListener::bind(udp.local_addr()?).await?;
    Ok((udp, tcp))
}

/// Bind the public resolver on `ip:port`; port 0 picks a free port for UDP
/// and TCP alike (retrying when the UDP port is taken for TCP).
pub async fn bind_public(ip: IpAddr, port: u16) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..if port == 0 { 20 } else { 1 } {
        match bind(SocketAddr::new(ip, port)).await {
            Ok(pair) => return Ok(pair),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no port")))
}

/// Serve DNS: the public resolver on the given sockets, and one resolver per
/// VPC (with DNS support) on its CIDR's base + 2, on the same port, until
/// `shutdown` completes. VPC resolvers outside 127.0.0.0/8 are bound only
/// with `allow_non_loopback`.
pub async fn serve<S: Store>(
    registry: Registry<S>,
    public_udp: UdpSocket,
    public_tcp: TcpListener,
    allow_non_loopback: bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_answering(
        registry,
        public_udp,
        public_tcp,
        None,
        allow_non_loopback,
        shutdown,
    )
    .await
}

/// [`serve`], with `kms.<region>.amazonaws.com` outside private DNS answering
/// `public_answer` instead of the public resolver's own address (compose: the
/// resolver runs in the registry's container, the public endpoint in the
/// gateway's).
pub async fn serve_answering<S: Store>(
    registry: Registry<S>,
    public_udp: UdpSocket,
    public_tcp: TcpListener,
    public_answer: Option<Ipv4Addr>,
    allow_non_loopback: bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let public = public_udp.local_addr()?;
    let port = public.port();
    let public_ip = public_answer.or(match public.ip() {
        IpAddr::V4(ip) if !ip.is_unspecified() => Some(ip),
        _ => None,
    });
    let mut changes = registry.subscribe_changes();
    changes.borrow_and_update();
    let mut serial = 1u32;
    let (zones_tx, zones) =
        watch::channel(Arc::new(build_zones(&registry, public_ip, serial).await?));
    let mut servers = vec![start_resolver(
        Resolver::Public,
        zones.clone(),
        public_udp,
        public_tcp,
    )];
    tracing::info!(%public, "dns serving");
    let mut vpc_servers: HashMap<String, (Ipv4Addr, Server<Handler>)> = HashMap::new();
    // Resolvers that could not be bound (warned once, retried).
    let mut unbound: HashSet<String> = HashSet::new();
    tokio::pin!(shutdown);
    loop {
        // Bind resolvers of new VPCs, close those of VPCs gone (or without DNS support).
        let wanted = zones_tx.borrow().resolvers.clone();
        let gone: Vec<String> = vpc_servers
            .iter()
            .filter(|(id, (ip, _))| wanted.get(*id) != Some(ip))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            if let Some((ip, mut server)) = vpc_servers.remove(&id) {
                tracing::info!(vpc_id = %id, %ip, "closing vpc resolver");
                let _ = server.shutdown_gracefully().await;
            }
        }
        for (id, ip) in &wanted {
            if vpc_servers.contains_key(id) {
                continue;
            }
            if !may_bind(*ip, allow_non_loopback) {
                if unbound.insert(id.clone()) {
                    tracing::warn!(vpc_id = %id, %ip, "not binding a non-loopback resolver address");
                }
                continue;
            }
            let addr = SocketAddr::new(IpAddr::V4(*ip), port);
            match bind(addr).await {
                Ok((udp, tcp)) => {
                    unbound.remove(id);
                    tracing::info!(vpc_id = %id, %addr, "vpc resolver serving");
                    let server = start_resolver(Resolver::Vpc(id.clone()), zones.clone(), udp, tcp);
                    vpc_servers.insert(id.clone(), (*ip, server));
                }
                Err(e) => {
                    if unbound.insert(id.clone()) {
                        tracing::warn!(vpc_id = %id, %addr, error = %e, "cannot bind vpc resolver; retrying");
                    }
                }
            }
        }
        unbound.retain(|id| wanted.contains_key(id));
        let retry = !unbound.is_empty() && allow_non_loopback;
        tokio::select! {
            () = &mut shutdown => break,
            changed = changes.changed() => if changed.is_err() { break },
            () = tokio::time::sleep(BIND_RETRY), if retry => continue,
        }
        changes.borrow_and_update();
        serial = serial.wrapping_add(1);
        match build_zones(&registry, public_ip, serial).await {
            Ok(z) => {
                zones_tx.send_replace(Arc::new(z));
            }
            Err(e) => tracing::warn!(error = %e, "dns zones not rebuilt"),
        }
    }
    for (_, (_, mut server)) in vpc_servers.drain() {
        let _ = server.shutdown_gracefully().await;
    }
    for server in &mut servers {
        let _ = server.shutdown_gracefully().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones() -> Zones {
        let mut z = Zones {
            kms_name: "kms.us-east-1.amazonaws.com".into(),
            vpce_zone: "us-east-1.vpce.amazonaws.com".into(),
            public_ip: Some(Ipv4Addr::new(127, 0, 0, 1)),
            ..Zones::default()
        };
        z.names.insert(
            "vpce-1-abc.kms.us-east-1.vpce.amazonaws.com".into(),
            vec![Ipv4Addr::new(127, 10, 0, 4)],
        );
        z.private
            .insert("vpc-a".into(), vec![Ipv4Addr::new(127, 10, 0, 4)]);
        z
    }

    #[test]
    fn the_resolver_decides_the_kms_name() {
        let z = zones();
        let vpc = Resolver::Vpc("vpc-a".into());
        let other = Resolver::Vpc("vpc-b".into());
        let name = "KMS.us-east-1.amazonaws.com.";
        assert_eq!(
            z.answer(&vpc, name, RecordType::A),
            Answer::Addresses(vec![Ipv4Addr::new(127, 10, 0, 4)])
        );
        for r in [other, Resolver::Public] {
            assert_eq!(
                z.answer(&r, name, RecordType::A),
                Answer::Addresses(vec![Ipv4Addr::new(127, 0, 0, 1)])
            );
        }
        assert_eq!(z.answer(&vpc, name, RecordType::AAAA), Answer::NoData);
        assert_eq!(
            z.answer(
                &Resolver::Public,
                "vpce-2-x.kms.us-east-1.vpce.amazonaws.com",
                RecordType::A
            ),
            Answer::NxDomain
        );
        assert_eq!(
            z.answer(&Resolver::Public, "example.com", RecordType::A),
            Answer::Refused
        );
    }

    #[test]
    fn resolver_is_base_plus_two() {
        let cidr: Ipv4Cidr = "127.10.0.0/16".parse().unwrap();
        assert_eq!(resolver_address(&cidr), Ipv4Addr::new(127, 10, 0, 2));
    }
}
