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
        };
        self.inner.store.insert_subnet(&subnet).await?;
        tracing::info!(subnet_id = %subnet.subnet_id, cidr = %subnet.cidr_block, "subnet created");
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
        let all = self.inner.store.list_subnets(owner_account_id).await?;
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

    /// Create an interface endpoint for KMS with one network interface per
    /// subnet (what CreateVpcEndpoint will call). The interfaces join the
    /// table, and watchers get a new snapshot, once the store committed.
    #[tracing::instrument(skip_all, fields(owner = %new.owner_account_id, vpc_id = %new.vpc_id))]
    pub async fn create_endpoint(
        &self,
        new: NewEndpoint,
    ) -> Result<(Endpoint, Vec<NetworkInterface>), RegistryError> {
        validate_owner(&new.owner_account_id)?;
        let region = &self.inner.region;
        if new.service_name != format!("com.amazonaws.{region}.kms")
            && new.service_name != format!("com.amazonaws.{region}.kms-fips")
        {
            return Err(RegistryError::ServiceNotFound(new.service_name));
        }
        let policy_document = match new.policy_document {
            None => DEFAULT_ENDPOINT_POLICY.to_owned(),
            Some(doc) => match serde_json::from_str::<serde_json::Value>(&doc) {
                Ok(serde_json::Value::Object(_)) => doc,
                _ => return Err(RegistryError::InvalidPolicyDocument),
            },
        };

        let _w = self.inner.writes.lock().await;
        let vpc = self.owned_vpc(&new.owner_account_id, &new.vpc_id).await?;
        if new.private_dns_enabled {
            if !(vpc.enable_dns_support && vpc.enable_dns_hostnames) {
                return Err(RegistryError::InvalidParameter(format!(
                    "Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC attributes set to true for {}",
                    vpc.vpc_id
                )));
            }
            if self
                .inner
                .store
                .private_dns_endpoint_exists(&vpc.vpc_id, &new.service_name)
                .await?
            {
                return Err(RegistryError::InvalidParameter(format!(
                    "private-dns-enabled cannot be set because there is already a conflicting DNS domain for kms.{region}.amazonaws.com in the VPC {}",
                    vpc.vpc_id
                )));
            }
        }

        let vpce_id = new_id("vpce");
        let table = self.interfaces();
        let mut zones = Vec::new();
        let mut interfaces: Vec<NetworkInterface> = Vec::with_capacity(new.subnets.len());
        for EndpointSubnet { subnet_id, ipv4 } in &new.subnets {
            if !well_formed_id(subnet_id, "subnet") {
                return Err(RegistryError::SubnetIdMalformed(subnet_id.clone()));
            }
            let subnet = match self.inner.store.get_subnet(subnet_id).await? {
                Some(s) if s.owner_account_id == new.owner_account_id => s,
                _ => return Err(RegistryError::SubnetNotFound(subnet_id.clone())),
            };
            if subnet.vpc_id != vpc.vpc_id {
                return Err(RegistryError::InvalidParameter(format!(
                    "The subnet ID '{subnet_id}' does not belong to the VPC '{}'",
                    vpc.vpc_id
                )));
            }
            if zones.contains(&subnet.availability_zone) {
                return Err(RegistryError::DuplicateSubnetsInSameZone(subnet_id.clone()));
            }
            zones.push(subnet.availability_zone.clone());
            let cidr = parse_cidr(&subnet.cidr_block)?;
            let taken = |ip: Ipv4Addr| {
                table.contains(ip) || interfaces.iter().any(|e| e.private_ip == ip.to_string())
            };
            let ip = match ipv4 {
                Some(ip) => {
                    if !cidr.is_assignable(*ip) {
                        return Err(RegistryError::invalid_value(
                            "ipv4",
                            ip.to_string(),
                            format!(
                                "The address is not an assignable address of subnet {subnet_id}."
                            ),
                        ));
                    }
                    if taken(*ip) {
                        return Err(RegistryError::AddressInUse(ip.to_string()));
                    }
                    *ip
                }
                None => cidr
                    .assignable()
                    .find(|ip| !taken(*ip))
                    .ok_or_else(|| RegistryError::SubnetFull(subnet_id.clone()))?,
            };
            interfaces.push(NetworkInterface {
                eni_id: new_id("eni"),
                vpce_id: vpce_id.clone(),
                subnet_id: subnet_id.clone(),
                private_ip: ip.to_string(),
            });
        }

        let endpoint = Endpoint {
            vpce_id,
            vpc_id: vpc.vpc_id,
            owner_account_id: new.owner_account_id,
            service_name: new.service_name,
            policy_document,
            private_dns_enabled: new.private_dns_enabled,
            state: "available".to_owned(),
            created: now_ms(),
        };
        self.inner
            .store
            .insert_endpoint(&endpoint, &interfaces)
            .await
            .map_err(|e| match e.as_database_error() {
                Some(d) if d.is_unique_violation() => RegistryError::AddressInUse(
                    interfaces
                        .iter()
                        .map(|i| i.private_ip.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                _ => RegistryError::Store(e),
            })?;
        self.reload_table().await?;
        tracing::info!(vpce_id = %endpoint.vpce_id, interfaces = interfaces.len(), "vpc endpoint created");
        Ok((endpoint, interfaces))
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
