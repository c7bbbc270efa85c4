//! The registry's domain: VPCs, subnets, endpoints and the in-memory table of
//! endpoint network interfaces the gateway asks about on every connection.
//!
//! Writes go to the store first and then to the table, under one write lock,
//! so the table always equals the committed state. The table lives in a
//! `tokio::sync::watch` channel: `ResolveListener` reads the current value,
//! `WatchInterfaces` follows its changes.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{Mutex, watch};

use crate::cidr::Ipv4Cidr;
use crate::error::RegistryError;
use crate::model::{
    DEFAULT_ENDPOINT_POLICY, Endpoint, EndpointSubnet, NetworkInterface, NewEndpoint, Subnet, Vpc,
};
use crate::store::{SqliteStore, Store};

pub(crate) mod ec2;

/// Smallest and largest prefix EC2 allows for VPC and subnet blocks.
const MIN_PREFIX: u8 = 16;
const MAX_PREFIX: u8 = 28;

/// What a listener address belongs to: an endpoint and one of its interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub endpoint: Arc<Endpoint>,
    pub interface: NetworkInterface,
}

/// A consistent view of every endpoint network interface.
#[derive(Debug, Clone, Default)]
pub struct InterfaceTable {
    /// Increases with every change (seeded from the clock at start, so it
    /// also increases across restarts).
    pub generation: u64,
    by_ip: HashMap<IpAddr, Listener>,
    /// Every interface, in creation order.
    interfaces: Vec<NetworkInterface>,
}

impl InterfaceTable {
    fn build(generation: u64, endpoints: Vec<Endpoint>, interfaces: Vec<NetworkInterface>) -> Self {
        let endpoints: HashMap<String, Arc<Endpoint>> = endpoints
            .into_iter()
            .map(|e| (e.vpce_id.clone(), Arc::new(e)))
            .collect();
        let mut by_ip = HashMap::with_capacity(interfaces.len());
        for eni in &interfaces {
            let (Some(endpoint), Ok(ip)) = (
                endpoints.get(&eni.vpce_id),
                eni.private_ip.parse::<IpAddr>(),
            ) else {
                tracing::error!(eni_id = %eni.eni_id, "interface without endpoint or address, skipped");
                continue;
            };
            by_ip.insert(
                ip,
                Listener {
                    endpoint: endpoint.clone(),
                    interface: eni.clone(),
                },
            );
        }
        Self {
            generation,
            by_ip,
            interfaces,
        }
    }

    /// Every interface, in creation order.
    pub fn interfaces(&self) -> &[NetworkInterface] {
        &self.interfaces
    }

    /// Every endpoint that has at least one interface, each once.
    pub fn endpoints(&self) -> Vec<Arc<Endpoint>> {
        let mut seen = std::collections::HashSet::new();
        self.by_ip
            .values()
            .filter(|l| seen.insert(l.endpoint.vpce_id.clone()))
            .map(|l| l.endpoint.clone())
            .collect()
    }

    /// The endpoint interface whose private IP is `ip`, if any.
    pub fn get(&self, ip: IpAddr) -> Option<&Listener> {
        self.by_ip.get(&canonical_ip(ip))
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        self.by_ip.contains_key(&IpAddr::V4(ip))
    }
}

/// An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 peer) is the IPv4 address.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Parse the `local_addr` of ResolveListener: `ip:port`, `[v6]:port`, or a bare IP.
pub fn parse_listener_addr(s: &str) -> Result<IpAddr, RegistryError> {
    s.parse::<SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| s.parse::<IpAddr>())
        .map_err(|_| {
            RegistryError::invalid_value("localAddr", s, "This is not a valid socket address.")
        })
}

/// The registry. Cheap to clone; every clone shares the store and the table.
pub struct Registry<S = SqliteStore> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for Registry<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<S> {
    store: S,
    region: String,
    /// Serializes writes: validation reads, the store write and the table update.
    writes: Mutex<()>,
    table: watch::Sender<Arc<InterfaceTable>>,
    /// Bumped after every committed write (VPCs, subnets, endpoints): the DNS
    /// server rebuilds its zones when it changes.
    revision: watch::Sender<u64>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `prefix-` followed by 17 lowercase hex digits, as EC2 names resources.
fn new_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &hex[..17])
}

/// The random label of an endpoint's DNS names: 8 lowercase hex digits.
fn new_dns_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// Whether `id` looks like an EC2 id of this kind (8 or 17 hex digits).
fn well_formed_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| {
            (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

fn validate_owner(owner_account_id: &str) -> Result<(), RegistryError> {
    if owner_account_id.len() == 12 && owner_account_id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(RegistryError::invalid_value(
            "ownerAccountId",
            owner_account_id,
            "The account id must be 12 digits.",
        ))
    }
}

fn parse_cidr(cidr_block: &str) -> Result<Ipv4Cidr, RegistryError> {
    cidr_block.parse().map_err(|_| {
        RegistryError::invalid_value("cidrBlock", cidr_block, "This is not a valid CIDR block.")
    })
}

impl Registry<SqliteStore> {
    /// Open the configured database (running migrations) and load the interface table.
    pub async fn open(config: &crate::Config) -> Result<Self, RegistryError> {
        let store = SqliteStore::connect(&config.database_url).await?;
        Self::new(store, config.region.clone()).await
    }
}

impl<S: Store> Registry<S> {
    /// A registry over `store` for `region`; loads the interface table.
    pub async fn new(store: S, region: impl Into<String>) -> Result<Self, RegistryError> {
        let table = InterfaceTable::build(
            now_ms().max(1) as u64,
            store.list_endpoints().await?,
            store.list_interfaces().await?,
        );
        let (table, _) = watch::channel(Arc::new(table));
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                region: region.into(),
                writes: Mutex::new(()),
                table,
                revision: watch::channel(0).0,
            }),
        })
    }

    pub fn store(&self) -> &S {
        &self.inner.store
    }

    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// The endpoint and interface listening on `ip`, or `None` (the public endpoint).
    /// Served from memory: asked once per accepted connection.
    pub fn resolve_listener(&self, ip: IpAddr) -> Option<Listener> {
        self.inner.table.borrow().get(ip).cloned()
    }

    /// The current interface table.
    pub fn interfaces(&self) -> Arc<InterfaceTable> {
        self.inner.table.borrow().clone()
    }

    /// Follow the interface table: the receiver holds the current table and
    /// is notified of every new one.
    pub fn subscribe(&self) -> watch::Receiver<Arc<InterfaceTable>> {
        self.inner.table.subscribe()
    }

    /// Follow every committed write: the value increases after each one.
    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.inner.revision.subscribe()
    }

    fn changed(&self) {
        self.inner.revision.send_modify(|r| *r += 1);
    }

    /// Every VPC of every account (the DNS server's view).
    pub async fn all_vpcs(&self) -> Result<Vec<Vpc>, RegistryError> {
        Ok(self.inner.store.list_all_vpcs().await?)
    }

    /// Every subnet of every account (the DNS server's view).
    pub async fn all_subnets(&self) -> Result<Vec<Subnet>, RegistryError> {
        Ok(self.inner.store.list_all_subnets().await?)
    }

    /// Every endpoint of every account.
    pub async fn all_endpoints(&self) -> Result<Vec<Endpoint>, RegistryError> {
        Ok(self.inner.store.list_endpoints().await?)
    }

    /// Delete an endpoint and its interfaces (what DeleteVpcEndpoints will
    /// call); watchers get a snapshot without them. False if it did not exist.
    #[tracing::instrument(skip_all, fields(vpce_id = %vpce_id))]
    pub async fn delete_endpoint(&self, vpce_id: &str) -> Result<bool, RegistryError> {
        let _w = self.inner.writes.lock().await;
        let deleted = self.inner.store.delete_endpoint(vpce_id).await?;
        if deleted {
            self.reload_table().await?;
            tracing::info!("vpc endpoint deleted");
        }
        Ok(deleted)
    }

    /// CreateVpc.
    #[tracing::instrument(skip_all, fields(owner = %owner_account_id))]
    pub async fn create_vpc(
        &self,
        owner_account_id: &str,
        cidr_block: &str,
    ) -> Result<Vpc, RegistryError> {
        validate_owner(owner_account_id)?;
        let cidr = parse_cidr(cidr_block)?;
        if !(MIN_PREFIX..=MAX_PREFIX).contains(&cidr.prefix()) {
            return Err(RegistryError::VpcRange(cidr_block.to_owned()));
        }
        let vpc = Vpc {
            vpc_id: new_id("vpc"),
            owner_account_id: owner_account_id.to_owned(),
            cidr_block: cidr.to_string(),
            enable_dns_support: true,
            enable_dns_hostnames: false,
            state: "available".to_owned(),
        };
        let _w = self.inner.writes.lock().await;
        self.inner.store.insert_vpc(&vpc).await?;
        self.changed();
        tracing::info!(vpc_id = %vpc.vpc_id, cidr = %vpc.cidr_block, "vpc created");
        Ok(vpc)
    }

    /// A VPC of `owner_account_id` (another account's VPC does not exist for it).
    async fn owned_vpc(&self, owner_account_id: &str, vpc_id: &str) -> Result<Vpc, RegistryError> {
        if !well_formed_id(vpc_id, "vpc") {
            return Err(RegistryError::VpcIdMalformed(vpc_id.to_owned()));
        }
        match self.inner.store.get_vpc(vpc_id).await? {
            Some(vpc) if vpc.owner_account_id == owner_account_id => Ok(vpc),
            _ => Err(RegistryError::VpcNotFound(vpc_id.to_owned())),
        }
    }

    /// DescribeVpcs: every VPC of the account, or exactly those named (each must exist).
    #[tracing::instrument(skip_all, fields(owner = %owner_account_id))]
    pub async fn describe_vpcs(
        &self,
        owner_account_id: &str,
        vpc_ids: &[String],
    ) -> Result<Vec<Vpc>, RegistryError> {
        validate_owner(owner_account_id)?;
        if let Some(bad) = vpc_ids.iter().find(|id| !well_formed_id(id, "vpc")) {
            return Err(RegistryError::VpcIdMalformed(bad.clone()));
        }
        let all = self.inner.store.list_vpcs(owner_account_id).await?;
        if vpc_ids.is_empty() {
            return Ok(all);
        }
        if let Some(missing) = vpc_ids
            .iter()
            .find(|id| !all.iter().any(|v| &v.vpc_id == *id))
        {
            return Err(RegistryError::VpcNotFound(missing.clone()));
        }
        Ok(all
            .into_iter()
            .filter(|v| vpc_ids.contains(&v.vpc_id))
            .collect())
    }

    /// Set the VPC's DNS attributes (the later ModifyVpcAttribute); `None` keeps a value.
    #[tracing::instrument(skip_all, fields(owner = %owner_account_id, vpc_id = %vpc_id))]
    pub async fn modify_vpc_dns(
        &self,
        owner_account_id: &str,
        vpc_id: &str,
        enable_dns_support: Option<bool>,
        enable_dns_hostnames: Option<bool>,
    ) -> Result<Vpc, RegistryError> {
        let _w = self.inner.writes.lock().await;
        let mut vpc = self.owned_vpc(owner_account_id, vpc_id).await?;
        vpc.enable_dns_support = enable_dns_support.unwrap_or(vpc.enable_dns_support);
        vpc.enable_dns_hostnames = enable_dns_hostnames.unwrap_or(vpc.enable_dns_hostnames);
        self.inner
            .store
            .set_vpc_dns_attributes(vpc_id, vpc.enable_dns_support, vpc.enable_dns_hostnames)
            .await?;
        self.changed();
        Ok(vpc)
    }

    fn validate_zone(&self, availability_zone: &str) -> Result<String, RegistryError> {
        let region = &self.inner.region;
        if availability_zone.is_empty() {
            return Ok(format!("{region}a"));
        }
        let ok = availability_zone
            .strip_prefix(region.as_str())
            .is_some_and(|z| matches!(z, "a" | "b" | "c" | "d" | "e" | "f"));
        if ok {
            Ok(availability_zone.to_owned())
        } else {
            let zones: Vec<String> = ["a", "b", "c", "d", "e", "f"]
                .iter()
                .map(|z| format!("{region}{z}"))
                .collect();
            Err(RegistryError::invalid_value(
                "availabilityZone",
                availability_zone,
                format!(
                    "Subnets can currently only be created in the following availability zones: {}.",
                    zones.join(", ")
                ),
            ))
        }
    }

    /// CreateSubnet: the block must lie within the VPC's and overlap no other subnet.
    #[tracing::instrument(skip_all, fields(owner = %owner_account_id, vpc_id = %vpc_id))]
    pub async fn create_subnet(
        &self,
        owner_account_id: &str,
        vpc_id: &str,
        cidr_block: &str,
        availability_zone: &str,
    ) -> Result<Subnet, RegistryError> {
        validate_owner(owner_account_id)?;
        let cidr = parse_cidr(cidr_block)?;
        let availability_zone = self.validate_zone(availability_zone)?;
        let _w = self.inner.writes.lock().await;
        let vpc = self.owned_vpc(owner_account_id, vpc_id).await?;
        let vpc_cidr = parse_cidr(&vpc.cidr_block)?;
        if !(MIN_PREFIX..=MAX_PREFIX).contains(&cidr.prefix()) || !vpc_cidr.contains(&cidr) {
            return Err(RegistryError::SubnetRange(cidr_block.to_owned()));
        }
        for other in self.inner.store.subnets_of_vpc(vpc_id).await? {
            if parse_cidr(&other.cidr_block)?.overlaps(&cidr) {
                return Err(RegistryError::SubnetConflict(cidr_block.to_owned()));
            }
        }
        let subnet = Subnet {
            subnet_id: new_id("subnet"),
            vpc_id: vpc_id.to_owned(),
            cidr_block: cidr.to_string(),
            availability_zone,
            owner_account_id: owner_account_id.to_owned(),
            available_ip_address_count: 0,
        };
        self.inner.store.insert_subnet(&subnet).await?;
        self.changed();
        tracing::info!(subnet_id = %subnet.subnet_id, cidr = %subnet.cidr_block, "subnet created");
        let mut subnet = subnet;
        self.count_free_addresses(&mut subnet);
        Ok(subnet)
    }

    /// DescribeSubnets: every subnet of the account, or exactly those named.
    #[tracing::instrument(skip_all, fields(owner = %owner_account_id))]
    pub async fn describe_subnets(
        &self,
        owner_account_id: &str,
        subnet_ids: &[String],
    ) -> Result<Vec<Subnet>, RegistryError> {
        validate_owner(owner_account_id)?;
        if let Some(bad) = subnet_ids.iter().find(|id| !well_formed_id(id, "subnet")) {
            return Err(RegistryError::SubnetIdMalformed(bad.clone()));
        }
        let mut all = self.inner.store.list_subnets(owner_account_id).await?;
        for subnet in &mut all {
            self.count_free_addresses(subnet);
        }
        if subnet_ids.is_empty() {
            return Ok(all);
        }
        if let Some(missing) = subnet_ids
            .iter()
            .find(|id| !all.iter().any(|s| &s.subnet_id == *id))
        {
            return Err(RegistryError::SubnetNotFound(missing.clone()));
        }
        Ok(all
            .into_iter()
            .filter(|s| subnet_ids.contains(&s.subnet_id))
            .collect())
    }

    /// Rebuild the table from the store and publish it with the next generation.
    /// Called with the write lock held.
    async fn reload_table(&self) -> Result<(), RegistryError> {
        let endpoints = self.inner.store.list_endpoints().await?;
        let interfaces = self.inner.store.list_interfaces().await?;
        let generation = self.inner.table.borrow().generation + 1;
        self.inner
            .table
            .send_replace(Arc::new(InterfaceTable::build(
                generation, endpoints, interfaces,
            )));
        self.changed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_ec2_ids() {
        let id = new_id("vpce");
        assert_eq!(id.len(), "vpce-".len() + 17);
        assert!(well_formed_id(&id, "vpce"));
        assert!(well_formed_id("vpc-1a2b3c4d", "vpc"));
        assert!(!well_formed_id("vpc-1a2b3c4", "vpc"));
        assert!(!well_formed_id("subnet-1a2b3c4d", "vpc"));
        assert!(!well_formed_id("vpc-1a2b3c4g", "vpc"));
    }

    #[test]
    fn listener_addresses_parse_with_or_without_port() {
        assert_eq!(
            parse_listener_addr("10.0.1.4:443").unwrap(),
            IpAddr::from([10, 0, 1, 4])
        );
        assert_eq!(
            parse_listener_addr("10.0.1.4").unwrap(),
            IpAddr::from([10, 0, 1, 4])
        );
        assert_eq!(
            parse_listener_addr("[::1]:443").unwrap(),
            "::1".parse::<IpAddr>().unwrap()
        );
        assert!(parse_listener_addr("nope:443").is_err());
        assert_eq!(
            canonical_ip("::ffff:10.0.1.4".parse().unwrap()),
            IpAddr::from([10, 0, 1, 4])
        );
    }
}
