//! The EC2 operations on the registry: deleting VPCs and subnets, the VPC
//! attributes, endpoint services, creating, modifying, describing and deleting
//! endpoints, and the endpoint network interfaces, with EC2's checks and
//! error codes. Every change to the interfaces publishes a new table (and so a
//! `WatchInterfaces` snapshot) once the store committed it.
//!
//! Decisions where AWS gives no single answer:
//! - `com.amazonaws.<region>.kms-fips` is listed by DescribeVpcEndpointServices
//!   but with no availability zone: this deployment serves no FIPS endpoint.
//!   CreateVpcEndpoint for it fails as EC2 fails for a service a subnet's zone
//!   does not offer: `InvalidParameter`, "The VPC endpoint service <name> does
//!   not support the availability zone of the subnet: <subnet>." (without
//!   subnets: "... is not available in any availability zone.").
//! - Security groups are accepted (well-formed `sg-` ids), stored and shown;
//!   no traffic is filtered by them.
//! - DeleteVpc refuses a VPC with subnets or endpoints, DeleteSubnet a subnet
//!   an endpoint is placed in (`DependencyViolation`, EC2's messages).

use std::collections::HashSet;

use super::*;
use crate::filter::{self, Filter};
use crate::model::{service_dns_name, vpce_zone};

/// The KMS services of a region an endpoint can be created for.
fn kms_services(region: &str) -> [String; 2] {
    [
        format!("com.amazonaws.{region}.kms"),
        format!("com.amazonaws.{region}.kms-fips"),
    ]
}

/// The availability zones this registry models.
const ZONE_LETTERS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

/// AWS's zone id of a zone name: `us-east-1a` -> `use1-az1`, `ap-northeast-1c` -> `apne1-az3`.
pub fn availability_zone_id(region: &str, availability_zone: &str) -> String {
    let mut parts = region.split('-');
    let (Some(geo), Some(direction), Some(number)) = (parts.next(), parts.next(), parts.next())
    else {
        return String::new();
    };
    let direction = match direction {
        "northeast" => "ne",
        "southeast" => "se",
        "northwest" => "nw",
        "southwest" => "sw",
        "central" => "c",
        other => &other[..other.len().min(1)],
    };
    let letter = availability_zone
        .strip_prefix(region)
        .and_then(|l| ZONE_LETTERS.iter().position(|z| *z == l))
        .map_or(0, |i| i + 1);
    format!("{geo}{direction}{number}-az{letter}")
}

/// The Route 53 zone id of `*.vpce.amazonaws.com` names in a region (AWS's
/// published values where known).
fn vpce_hosted_zone_id(region: &str) -> &'static str {
    match region {
        "us-east-2" => "ZC8PG0KIFKBRI",
        "us-west-1" => "Z12I86A8N7VCZO",
        "us-west-2" => "Z1YSA3EXCYUU9Z",
        "eu-west-1" => "Z38GZ743OKFT7T",
        "eu-central-1" => "Z273ZU8SZ5RJPC",
        _ => "Z7HUB22UULQXV",
    }
}

/// The private hosted zone EC2 manages for a VPC's private DNS names: stable
/// per VPC.
fn private_hosted_zone_id(vpc_id: &str) -> String {
    let hex = vpc_id.trim_start_matches("vpc-").to_ascii_uppercase();
    format!("Z0{hex}")
}

/// A stable `vpce-svc-` id per service name (FNV-1a, 17 hex digits).
fn service_id(service_name: &str) -> String {
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in service_name.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000000001000000000000000000013b);
    }
    format!("vpce-svc-{:017x}", h & ((1u128 << 68) - 1))
}

fn well_formed_group_id(id: &str) -> bool {
    well_formed_id(id, "sg")
}

/// One DNS name of an endpoint, as DescribeVpcEndpoints lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsEntry {
    pub dns_name: String,
    pub hosted_zone_id: String,
}

/// The EC2 view of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcEndpointView {
    pub endpoint: Endpoint,
    pub subnet_ids: Vec<String>,
    pub network_interface_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    /// The endpoint-specific name, one name per zone, then the private DNS
    /// name when private DNS is on.
    pub dns_entries: Vec<DnsEntry>,
}

/// The EC2 view of an endpoint network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceView {
    pub interface: NetworkInterface,
    pub vpc_id: String,
    pub availability_zone: String,
    pub owner_account_id: String,
    pub security_group_ids: Vec<String>,
}

impl InterfaceView {
    pub fn description(&self) -> String {
        format!("VPC Endpoint Interface {}", self.interface.vpce_id)
    }

    /// A stable locally administered MAC address derived from the interface id.
    pub fn mac_address(&self) -> String {
        let hex = self.interface.eni_id.trim_start_matches("eni-");
        let bytes: Vec<&str> = (0..5)
            .map(|i| hex.get(i * 2..i * 2 + 2).unwrap_or("00"))
            .collect();
        format!("02:{}", bytes.join(":"))
    }
}

/// A service endpoints can be created for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointService {
    pub service_name: String,
    pub service_id: String,
    pub service_type: String,
    pub availability_zones: Vec<String>,
    pub availability_zone_ids: Vec<String>,
    pub base_endpoint_dns_names: Vec<String>,
    pub private_dns_name: String,
}

/// What ModifyVpcEndpoint changes (`None` / empty: unchanged).
#[derive(Debug, Clone, Default)]
pub struct EndpointChanges {
    pub policy_document: Option<String>,
    pub reset_policy: bool,
    pub private_dns_enabled: Option<bool>,
    pub add_subnet_ids: Vec<String>,
    pub remove_subnet_ids: Vec<String>,
    pub add_security_group_ids: Vec<String>,
    pub remove_security_group_ids: Vec<String>,
}

/// An id DeleteVpcEndpoints could not delete, with EC2's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsuccessful {
    pub resource_id: String,
    pub code: String,
    pub message: String,
}

fn validate_policy(doc: String) -> Result<String, RegistryError> {
    match serde_json::from_str::<serde_json::Value>(&doc) {
        Ok(serde_json::Value::Object(_)) => Ok(doc),
        _ => Err(RegistryError::InvalidPolicyDocument),
    }
}

impl<S: Store> Registry<S> {
    /// Fill a subnet's free address count from the interface table.
    pub(crate) fn count_free_addresses(&self, subnet: &mut Subnet) {
        let total = parse_cidr(&subnet.cidr_block)
            .map(|c| c.assignable().count())
            .unwrap_or(0);
        let used = self
            .interfaces()
            .interfaces()
            .iter()
            .filter(|i| i.subnet_id == subnet.subnet_id)
            .count();
        subnet.available_ip_address_count = total.saturating_sub(used) as u32;
    }

    /// DeleteVpc: only a VPC without subnets and endpoints.
    #[tracing::instrument(skip_all, fields(owner = %owner_account_id, vpc_id = %vpc_id))]
    pub async fn delete_vpc(
        &self,
        owner_account_id: &str,
        vpc_id: &str,
    ) -> Result<(), RegistryError> {
        validate_owner(owner_account_id)?;
        let _w = self.inner.writes.lock().await;
        self.owned_vpc(owner_account_id, vpc_id).await?;
        if self.inner.store.vpc_has_dependencies(vpc_id).await? {
            return Err(RegistryError::DependencyViolation(format!(
                "The vpc '{vpc_id}' has dependencies and cannot be deleted."
            )));
        }
        self.inner.store.delete_vpc(vpc_id).await?;
        self.changed();
        tracing::info!("vpc deleted");
        Ok(())
    }

    /// ModifyVpcAttribute: one DNS attribute per request, as EC2 requires.
    pub async fn modify_vpc_attribute(
        &self,
        owner_account_id: &str,
        vpc_id: &str,
        enable_dns_support: Option<bool>,
        enable_dns_hostnames: Option<bool>,
    ) -> Result<Vpc, RegistryError> {
        validate_owner(owner_account_id)?;
        match (enable_dns_support, enable_dns_hostnames) {
            (Some(_), Some(_)) => Err(RegistryError::InvalidParameterCombination(
                "Only one attribute can be modified at a time".to_owned(),
            )),
            (None, None) => Err(RegistryError::InvalidParameterCombination(
                "No attributes specified.".to_owned(),
            )),
            _ => {
                self.modify_vpc_dns(
                    owner_account_id,
                    vpc_id,
                    enable_dns_support,
                    enable_dns_hostnames,
                )
                .await
            }
        }
    }

    /// DescribeVpcs with EC2's filters.
    pub async fn describe_vpcs_filtered(
        &self,
        owner_account_id: &str,
        vpc_ids: &[String],
        filters: &[Filter],
    ) -> Result<Vec<Vpc>, RegistryError> {
        let vpcs = self.describe_vpcs(owner_account_id, vpc_ids).await?;
        filter::apply(
            vpcs,
            filters,
            &[
                "vpc-id",
                "cidr",
                "cidr-block",
                "cidr-block-association.cidr-block",
                "state",
                "owner-id",
                "is-default",
            ],
            |v, name| match name {
                "vpc-id" => vec![v.vpc_id.clone()],
                "cidr" | "cidr-block" | "cidr-block-association.cidr-block" => {
                    vec![v.cidr_block.clone()]
                }
                "state" => vec![v.state.clone()],
                "owner-id" => vec![v.owner_account_id.clone()],
                _ => vec!["false".to_owned()],
            },
        )
    }

    /// DeleteSubnet: only a subnet no endpoint is placed in.
    #[tracing::instrument(skip_all, fields(owner = %owner_account_id, subnet_id = %subnet_id))]
    pub async fn delete_subnet(
        &self,
        owner_account_id: &str,
        subnet_id: &str,
    ) -> Result<(), RegistryError> {
        validate_owner(owner_account_id)?;
        if !well_formed_id(subnet_id, "subnet") {
            return Err(RegistryError::SubnetIdMalformed(subnet_id.to_owned()));
        }
        let _w = self.inner.writes.lock().await;
        match self.inner.store.get_subnet(subnet_id).await? {
            Some(s) if s.owner_account_id == owner_account_id => {}
            _ => return Err(RegistryError::SubnetNotFound(subnet_id.to_owned())),
        }
        if self.inner.store.subnet_in_use(subnet_id).await? {
            return Err(RegistryError::DependencyViolation(format!(
                "The subnet '{subnet_id}' has dependencies and cannot be deleted."
            )));
        }
        self.inner.store.delete_subnet(subnet_id).await?;
        self.changed();
        tracing::info!("subnet deleted");
        Ok(())
    }

    /// DescribeSubnets with EC2's filters.
    pub async fn describe_subnets_filtered(
        &self,
        owner_account_id: &str,
        subnet_ids: &[String],
        filters: &[Filter],
    ) -> Result<Vec<Subnet>, RegistryError> {
        let subnets = self.describe_subnets(owner_account_id, subnet_ids).await?;
        let region = self.region().to_owned();
        filter::apply(
            subnets,
            filters,
            &[
                "subnet-id",
                "vpc-id",
                "cidr",
                "cidr-block",
                "cidr-block-association.cidr-block",
                "availability-zone",
                "availability-zone-id",
                "state",
                "owner-id",
                "default-for-az",
            ],
            |s, name| match name {
                "subnet-id" => vec![s.subnet_id.clone()],
                "vpc-id" => vec![s.vpc_id.clone()],
                "cidr" | "cidr-block" | "cidr-block-association.cidr-block" => {
                    vec![s.cidr_block.clone()]
                }
                "availability-zone" => vec![s.availability_zone.clone()],
                "availability-zone-id" => {
                    vec![availability_zone_id(&region, &s.availability_zone)]
                }
                "state" => vec!["available".to_owned()],
                "owner-id" => vec![s.owner_account_id.clone()],
                _ => vec!["false".to_owned()],
            },
        )
    }

    /// The endpoint services of this region: KMS, and KMS-FIPS, which no
    /// zone offers here (an interface endpoint for it cannot be created).
    pub fn endpoint_services(&self) -> Vec<EndpointService> {
        let region = self.region();
        let [kms, fips] = kms_services(region);
        let zones: Vec<String> = ZONE_LETTERS
            .iter()
            .map(|z| format!("{region}{z}"))
            .collect();
        let service = |name: String, zones: Vec<String>| EndpointService {
            service_id: service_id(&name),
            service_type: "Interface".to_owned(),
            availability_zone_ids: zones
                .iter()
                .map(|z| availability_zone_id(region, z))
                .collect(),
            availability_zones: zones,
            base_endpoint_dns_names: vec![vpce_zone(&name, region)],
            private_dns_name: service_dns_name(&name, region),
            service_name: name,
        };
        vec![service(kms, zones), service(fips, Vec::new())]
    }

    /// Whether some zone offers an interface endpoint of the service.
    fn offered_anywhere(&self, service_name: &str) -> bool {
        self.endpoint_services()
            .iter()
            .any(|s| s.service_name == service_name && !s.availability_zones.is_empty())
    }

    /// DescribeVpcEndpointServices: every service, or exactly those named.
    pub fn describe_vpc_endpoint_services(
        &self,
        service_names: &[String],
        filters: &[Filter],
    ) -> Result<Vec<EndpointService>, RegistryError> {
        let all = self.endpoint_services();
        if let Some(missing) = service_names
            .iter()
            .find(|n| !all.iter().any(|s| &s.service_name == *n))
        {
            return Err(RegistryError::ServiceNotFound(missing.clone()));
        }
        let named: Vec<EndpointService> = all
            .into_iter()
            .filter(|s| service_names.is_empty() || service_names.contains(&s.service_name))
            .collect();
        filter::apply(
            named,
            filters,
            &["service-name", "service-type", "owner"],
            |s, name| match name {
                "service-name" => vec![s.service_name.clone()],
                "service-type" => vec![s.service_type.clone()],
                _ => vec!["amazon".to_owned()],
            },
        )
    }

    /// Private DNS needs both DNS attributes of the VPC and no other
    /// private-DNS endpoint of the service in it.
    async fn check_private_dns(
        &self,
        vpc: &Vpc,
        service_name: &str,
        except_vpce_id: &str,
    ) -> Result<(), RegistryError> {
        if !(vpc.enable_dns_support && vpc.enable_dns_hostnames) {
            return Err(RegistryError::InvalidParameter(format!(
                "Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC attributes set to true for {}",
                vpc.vpc_id
            )));
        }
        if self
            .inner
            .store
            .private_dns_endpoint_exists(&vpc.vpc_id, service_name, except_vpce_id)
            .await?
        {
            return Err(RegistryError::InvalidParameter(format!(
                "private-dns-enabled cannot be set because there is already a conflicting DNS domain for {} in the VPC {}",
                service_dns_name(service_name, self.region()),
                vpc.vpc_id
            )));
        }
        Ok(())
    }

    /// One interface per subnet: the subnet must be the owner's, in the VPC,
    /// in a zone the endpoint has no subnet in yet (`zones`), and have a free
    /// address. Called with the write lock held.
    async fn allocate_interfaces(
        &self,
        owner_account_id: &str,
        vpc_id: &str,
        service_name: &str,
        vpce_id: &str,
        subnets: &[EndpointSubnet],
        mut zones: Vec<String>,
    ) -> Result<Vec<NetworkInterface>, RegistryError> {
        let table = self.interfaces();
        let offered = self
            .endpoint_services()
            .into_iter()
            .find(|s| s.service_name == service_name)
            .map(|s| s.availability_zones)
            .unwrap_or_default();
        let mut interfaces: Vec<NetworkInterface> = Vec::with_capacity(subnets.len());
        for EndpointSubnet { subnet_id, ipv4 } in subnets {
            if !well_formed_id(subnet_id, "subnet") {
                return Err(RegistryError::SubnetIdMalformed(subnet_id.clone()));
            }
            let subnet = match self.inner.store.get_subnet(subnet_id).await? {
                Some(s) if s.owner_account_id == owner_account_id => s,
                _ => return Err(RegistryError::SubnetNotFound(subnet_id.clone())),
            };
            if subnet.vpc_id != vpc_id {
                return Err(RegistryError::InvalidParameter(format!(
                    "The subnet ID '{subnet_id}' does not belong to the VPC '{vpc_id}'"
                )));
            }
            if !offered.contains(&subnet.availability_zone) {
                return Err(RegistryError::InvalidParameter(format!(
                    "The VPC endpoint service {service_name} does not support the availability zone of the subnet: {subnet_id}."
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
                vpce_id: vpce_id.to_owned(),
                subnet_id: subnet_id.clone(),
                private_ip: ip.to_string(),
            });
        }
        Ok(interfaces)
    }

    /// Create an interface endpoint with one network interface per subnet.
    /// The interfaces join the table, and watchers get a new snapshot, once
    /// the store committed.
    pub async fn create_endpoint(
        &self,
        new: NewEndpoint,
    ) -> Result<(Endpoint, Vec<NetworkInterface>), RegistryError> {
        let view = self.create_vpc_endpoint(new, Vec::new()).await?;
        let interfaces = self
            .interfaces()
            .interfaces()
            .iter()
            .filter(|i| i.vpce_id == view.endpoint.vpce_id)
            .cloned()
            .collect();
        Ok((view.endpoint, interfaces))
    }

    /// CreateVpcEndpoint (type Interface), with its security groups.
    #[tracing::instrument(skip_all, fields(owner = %new.owner_account_id, vpc_id = %new.vpc_id))]
    pub async fn create_vpc_endpoint(
        &self,
        new: NewEndpoint,
        security_group_ids: Vec<String>,
    ) -> Result<VpcEndpointView, RegistryError> {
        validate_owner(&new.owner_account_id)?;
        if !kms_services(self.region()).contains(&new.service_name) {
            return Err(RegistryError::ServiceNotFound(new.service_name));
        }
        let policy_document = match new.policy_document {
            None => DEFAULT_ENDPOINT_POLICY.to_owned(),
            Some(doc) => validate_policy(doc)?,
        };
        if let Some(bad) = security_group_ids.iter().find(|g| !well_formed_group_id(g)) {
            return Err(RegistryError::SecurityGroupIdMalformed(bad.clone()));
        }

        let _w = self.inner.writes.lock().await;
        let vpc = self.owned_vpc(&new.owner_account_id, &new.vpc_id).await?;
        if new.subnets.is_empty() && !self.offered_anywhere(&new.service_name) {
            return Err(RegistryError::InvalidParameter(format!(
                "The VPC endpoint service {} is not available in any availability zone.",
                new.service_name
            )));
        }
        if new.private_dns_enabled {
            self.check_private_dns(&vpc, &new.service_name, "").await?;
        }
        let vpce_id = new_id("vpce");
        let interfaces = self
            .allocate_interfaces(
                &new.owner_account_id,
                &vpc.vpc_id,
                &new.service_name,
                &vpce_id,
                &new.subnets,
                Vec::new(),
            )
            .await?;
        let endpoint = Endpoint {
            vpce_id,
            vpc_id: vpc.vpc_id,
            owner_account_id: new.owner_account_id,
            service_name: new.service_name,
            policy_document,
            private_dns_enabled: new.private_dns_enabled,
            state: "available".to_owned(),
            created: now_ms(),
            dns_suffix: new_dns_suffix(),
        };
        let mut groups: Vec<String> = Vec::new();
        for g in security_group_ids {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        self.inner
            .store
            .insert_endpoint(&endpoint, &interfaces, &groups)
            .await
            .map_err(|e| address_conflict(e, &interfaces))?;
        self.reload_table().await?;
        tracing::info!(vpce_id = %endpoint.vpce_id, interfaces = interfaces.len(), "vpc endpoint created");
        self.view_of(&endpoint.vpce_id).await
    }

    /// An endpoint of `owner_account_id` (another account's does not exist for it).
    async fn owned_endpoint(
        &self,
        owner_account_id: &str,
        vpce_id: &str,
    ) -> Result<Endpoint, RegistryError> {
        if !well_formed_id(vpce_id, "vpce") {
            return Err(RegistryError::VpcEndpointIdMalformed(vpce_id.to_owned()));
        }
        match self.inner.store.get_endpoint(vpce_id).await? {
            Some(e) if e.owner_account_id == owner_account_id => Ok(e),
            _ => Err(RegistryError::VpcEndpointNotFound(vpce_id.to_owned())),
        }
    }

    /// ModifyVpcEndpoint: policy (or back to the default), private DNS,
    /// subnets (each added subnet gets an interface, each removed one loses
    /// it) and security groups.
    #[tracing::instrument(skip_all, fields(owner = %owner_account_id, vpce_id = %vpce_id))]
    pub async fn modify_vpc_endpoint(
        &self,
        owner_account_id: &str,
        vpce_id: &str,
        changes: EndpointChanges,
    ) -> Result<VpcEndpointView, RegistryError> {
        validate_owner(owner_account_id)?;
        if changes.reset_policy && changes.policy_document.is_some() {
            return Err(RegistryError::InvalidParameterCombination(
                "The parameter PolicyDocument cannot be used with the parameter ResetPolicy"
                    .to_owned(),
            ));
        }
        let policy_document = changes.policy_document.map(validate_policy).transpose()?;
        for g in changes
            .add_security_group_ids
            .iter()
            .chain(&changes.remove_security_group_ids)
        {
            if !well_formed_group_id(g) {
                return Err(RegistryError::SecurityGroupIdMalformed(g.clone()));
            }
        }
        let _w = self.inner.writes.lock().await;
        let mut endpoint = self.owned_endpoint(owner_account_id, vpce_id).await?;
        let vpc = self.owned_vpc(owner_account_id, &endpoint.vpc_id).await?;
        if let Some(doc) = policy_document {
            endpoint.policy_document = doc;
        } else if changes.reset_policy {
            endpoint.policy_document = DEFAULT_ENDPOINT_POLICY.to_owned();
        }
        if let Some(on) = changes.private_dns_enabled {
            if on && !endpoint.private_dns_enabled {
                self.check_private_dns(&vpc, &endpoint.service_name, &endpoint.vpce_id)
                    .await?;
            }
            endpoint.private_dns_enabled = on;
        }

        let table = self.interfaces();
        let current: Vec<&NetworkInterface> = table
            .interfaces()
            .iter()
            .filter(|i| i.vpce_id == endpoint.vpce_id)
            .collect();
        for s in &changes.remove_subnet_ids {
            if !well_formed_id(s, "subnet") {
                return Err(RegistryError::SubnetIdMalformed(s.clone()));
            }
            if !current.iter().any(|i| &i.subnet_id == s) {
                return Err(RegistryError::InvalidParameter(format!(
                    "The subnet ID '{s}' is not associated with the VPC endpoint '{}'",
                    endpoint.vpce_id
                )));
            }
        }
        let mut zones = Vec::new();
        for i in current
            .iter()
            .filter(|i| !changes.remove_subnet_ids.contains(&i.subnet_id))
        {
            if let Some(s) = self.inner.store.get_subnet(&i.subnet_id).await? {
                zones.push(s.availability_zone);
            }
        }
        let add: Vec<EndpointSubnet> = changes
            .add_subnet_ids
            .iter()
            .filter(|s| !current.iter().any(|i| &i.subnet_id == *s))
            .map(|s| EndpointSubnet::new(s.clone()))
            .collect();
        let added = self
            .allocate_interfaces(
                owner_account_id,
                &vpc.vpc_id,
                &endpoint.service_name,
                &endpoint.vpce_id,
                &add,
                zones,
            )
            .await?;
        self.inner
            .store
            .update_endpoint(
                &endpoint,
                &added,
                &changes.remove_subnet_ids,
                &changes.add_security_group_ids,
                &changes.remove_security_group_ids,
            )
            .await
            .map_err(|e| address_conflict(e, &added))?;
        self.reload_table().await?;
        tracing::info!(
            added = added.len(),
            removed = changes.remove_subnet_ids.len(),
            "vpc endpoint modified"
        );
        self.view_of(&endpoint.vpce_id).await
    }

    /// The EC2 views of every endpoint of an account.
    async fn views(&self, owner_account_id: &str) -> Result<Vec<VpcEndpointView>, RegistryError> {
        let region = self.region().to_owned();
        let endpoints: Vec<Endpoint> = self
            .inner
            .store
            .list_endpoints()
            .await?
            .into_iter()
            .filter(|e| e.owner_account_id == owner_account_id)
            .collect();
        let subnets = self.inner.store.list_subnets(owner_account_id).await?;
        let groups = self.inner.store.list_endpoint_security_groups().await?;
        let table = self.interfaces();
        Ok(endpoints
            .into_iter()
            .map(|endpoint| {
                let enis: Vec<&NetworkInterface> = table
                    .interfaces()
                    .iter()
                    .filter(|i| i.vpce_id == endpoint.vpce_id)
                    .collect();
                let zone_of = |subnet_id: &str| {
                    subnets
                        .iter()
                        .find(|s| s.subnet_id == subnet_id)
                        .map(|s| s.availability_zone.clone())
                        .unwrap_or_default()
                };
                let mut zones: Vec<String> = enis.iter().map(|i| zone_of(&i.subnet_id)).collect();
                zones.sort();
                zones.dedup();
                let zone_id = vpce_hosted_zone_id(&region);
                let mut dns_entries = vec![DnsEntry {
                    dns_name: endpoint.dns_name(&region),
                    hosted_zone_id: zone_id.to_owned(),
                }];
                dns_entries.extend(zones.iter().map(|z| DnsEntry {
                    dns_name: endpoint.zonal_dns_name(&region, z),
                    hosted_zone_id: zone_id.to_owned(),
                }));
                if endpoint.private_dns_enabled {
                    dns_entries.push(DnsEntry {
                        dns_name: service_dns_name(&endpoint.service_name, &region),
                        hosted_zone_id: private_hosted_zone_id(&endpoint.vpc_id),
                    });
                }
                VpcEndpointView {
                    subnet_ids: enis.iter().map(|i| i.subnet_id.clone()).collect(),
                    network_interface_ids: enis.iter().map(|i| i.eni_id.clone()).collect(),
                    security_group_ids: groups
                        .iter()
                        .filter(|(v, _)| *v == endpoint.vpce_id)
                        .map(|(_, g)| g.clone())
                        .collect(),
                    dns_entries,
                    endpoint,
                }
            })
            .collect())
    }

    async fn view_of(&self, vpce_id: &str) -> Result<VpcEndpointView, RegistryError> {
        let endpoint = self
            .inner
            .store
            .get_endpoint(vpce_id)
            .await?
            .ok_or_else(|| RegistryError::VpcEndpointNotFound(vpce_id.to_owned()))?;
        self.views(&endpoint.owner_account_id)
            .await?
            .into_iter()
            .find(|v| v.endpoint.vpce_id == vpce_id)
            .ok_or_else(|| RegistryError::VpcEndpointNotFound(vpce_id.to_owned()))
    }

    /// DescribeVpcEndpoints: every endpoint of the account, or exactly those
    /// named (each must exist), with EC2's filters.
    pub async fn describe_vpc_endpoints(
        &self,
        owner_account_id: &str,
        vpce_ids: &[String],
        filters: &[Filter],
    ) -> Result<Vec<VpcEndpointView>, RegistryError> {
        validate_owner(owner_account_id)?;
        if let Some(bad) = vpce_ids.iter().find(|id| !well_formed_id(id, "vpce")) {
            return Err(RegistryError::VpcEndpointIdMalformed(bad.clone()));
        }
        let all = self.views(owner_account_id).await?;
        if let Some(missing) = vpce_ids
            .iter()
            .find(|id| !all.iter().any(|v| &v.endpoint.vpce_id == *id))
        {
            return Err(RegistryError::VpcEndpointNotFound(missing.clone()));
        }
        let named: Vec<VpcEndpointView> = all
            .into_iter()
            .filter(|v| vpce_ids.is_empty() || vpce_ids.contains(&v.endpoint.vpce_id))
            .collect();
        filter::apply(
            named,
            filters,
            &[
                "vpc-id",
                "service-name",
                "vpc-endpoint-id",
                "vpc-endpoint-state",
                "vpc-endpoint-type",
                "ip-address-type",
            ],
            |v, name| match name {
                "vpc-id" => vec![v.endpoint.vpc_id.clone()],
                "service-name" => vec![v.endpoint.service_name.clone()],
                "vpc-endpoint-id" => vec![v.endpoint.vpce_id.clone()],
                "vpc-endpoint-state" => vec![v.endpoint.state.clone()],
                "vpc-endpoint-type" => vec!["Interface".to_owned()],
                _ => vec!["ipv4".to_owned()],
            },
        )
    }

    /// DeleteVpcEndpoints: deletes what it can; the others come back as
    /// unsuccessful items. Watchers get one snapshot without the interfaces.
    #[tracing::instrument(skip_all, fields(owner = %owner_account_id))]
    pub async fn delete_vpc_endpoints(
        &self,
        owner_account_id: &str,
        vpce_ids: &[String],
    ) -> Result<Vec<Unsuccessful>, RegistryError> {
        validate_owner(owner_account_id)?;
        let _w = self.inner.writes.lock().await;
        let mut unsuccessful = Vec::new();
        let mut deleted = 0;
        let mut seen = HashSet::new();
        for id in vpce_ids {
            if !seen.insert(id.clone()) {
                continue;
            }
            match self.owned_endpoint(owner_account_id, id).await {
                Ok(_) => {
                    self.inner.store.delete_endpoint(id).await?;
                    deleted += 1;
                    tracing::info!(vpce_id = %id, "vpc endpoint deleted");
                }
                Err(RegistryError::Store(e)) => return Err(RegistryError::Store(e)),
                Err(e) => unsuccessful.push(Unsuccessful {
                    resource_id: id.clone(),
                    code: match e {
                        RegistryError::VpcEndpointNotFound(_) => {
                            "InvalidVpcEndpoint.NotFound".to_owned()
                        }
                        _ => e.code().to_owned(),
                    },
                    message: e.to_string(),
                }),
            }
        }
        if deleted > 0 {
            self.reload_table().await?;
        }
        Ok(unsuccessful)
    }

    /// DescribeNetworkInterfaces: the endpoint interfaces of the account.
    pub async fn describe_network_interfaces(
        &self,
        owner_account_id: &str,
        eni_ids: &[String],
        filters: &[Filter],
    ) -> Result<Vec<InterfaceView>, RegistryError> {
        validate_owner(owner_account_id)?;
        if let Some(bad) = eni_ids.iter().find(|id| !well_formed_id(id, "eni")) {
            return Err(RegistryError::NetworkInterfaceIdMalformed(bad.clone()));
        }
        let subnets = self.inner.store.list_subnets(owner_account_id).await?;
        let groups = self.inner.store.list_endpoint_security_groups().await?;
        let table = self.interfaces();
        let all: Vec<InterfaceView> = table
            .interfaces()
            .iter()
            .filter_map(|i| {
                let subnet = subnets.iter().find(|s| s.subnet_id == i.subnet_id)?;
                Some(InterfaceView {
                    interface: i.clone(),
                    vpc_id: subnet.vpc_id.clone(),
                    availability_zone: subnet.availability_zone.clone(),
                    owner_account_id: subnet.owner_account_id.clone(),
                    security_group_ids: groups
                        .iter()
                        .filter(|(v, _)| *v == i.vpce_id)
                        .map(|(_, g)| g.clone())
                        .collect(),
                })
            })
            .collect();
        if let Some(missing) = eni_ids
            .iter()
            .find(|id| !all.iter().any(|v| &v.interface.eni_id == *id))
        {
            return Err(RegistryError::NetworkInterfaceNotFound(missing.clone()));
        }
        let named: Vec<InterfaceView> = all
            .into_iter()
            .filter(|v| eni_ids.is_empty() || eni_ids.contains(&v.interface.eni_id))
            .collect();
        let region = self.region().to_owned();
        filter::apply(
            named,
            filters,
            &[
                "network-interface-id",
                "subnet-id",
                "vpc-id",
                "availability-zone",
                "availability-zone-id",
                "private-ip-address",
                "addresses.private-ip-address",
                "interface-type",
                "description",
                "status",
                "owner-id",
                "requester-managed",
                "vpc-endpoint-id",
                "group-id",
            ],
            |v, name| match name {
                "network-interface-id" => vec![v.interface.eni_id.clone()],
                "subnet-id" => vec![v.interface.subnet_id.clone()],
                "vpc-id" => vec![v.vpc_id.clone()],
                "availability-zone" => vec![v.availability_zone.clone()],
                "availability-zone-id" => vec![availability_zone_id(&region, &v.availability_zone)],
                "private-ip-address" | "addresses.private-ip-address" => {
                    vec![v.interface.private_ip.clone()]
                }
                "interface-type" => vec!["vpc_endpoint".to_owned()],
                "description" => vec![v.description()],
                "status" => vec!["in-use".to_owned()],
                "owner-id" => vec![v.owner_account_id.clone()],
                "requester-managed" => vec!["true".to_owned()],
                "vpc-endpoint-id" => vec![v.interface.vpce_id.clone()],
                _ => v.security_group_ids.clone(),
            },
        )
    }
}

/// A unique-address violation at insert time is EC2's InvalidIPAddress.InUse.
fn address_conflict(e: sqlx::Error, interfaces: &[NetworkInterface]) -> RegistryError {
    match e.as_database_error() {
        Some(d) if d.is_unique_violation() => RegistryError::AddressInUse(
            interfaces
                .iter()
                .map(|i| i.private_ip.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        _ => RegistryError::Store(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_ids_follow_aws_naming() {
        assert_eq!(availability_zone_id("us-east-1", "us-east-1a"), "use1-az1");
        assert_eq!(availability_zone_id("us-west-2", "us-west-2c"), "usw2-az3");
        assert_eq!(
            availability_zone_id("ap-northeast-1", "ap-northeast-1d"),
            "apne1-az4"
        );
        assert_eq!(
            availability_zone_id("eu-central-1", "eu-central-1b"),
            "euc1-az2"
        );
    }
}
