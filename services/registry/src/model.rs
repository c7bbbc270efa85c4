//! The registry's domain types: the rows of its tables, as EC2 describes them.

/// A VPC (`vpc-` + 17 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Vpc {
    pub vpc_id: String,
    pub owner_account_id: String,
    /// Canonical IPv4 CIDR block.
    pub cidr_block: String,
    pub enable_dns_support: bool,
    pub enable_dns_hostnames: bool,
    pub state: String,
}

/// A subnet of a VPC (`subnet-` + 17 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Subnet {
    pub subnet_id: String,
    pub vpc_id: String,
    pub cidr_block: String,
    pub availability_zone: String,
    pub owner_account_id: String,
    /// Assignable addresses not used by an interface (filled by the registry).
    #[sqlx(skip)]
    pub available_ip_address_count: u32,
}

/// An interface VPC endpoint for the KMS service (`vpce-` + 17 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Endpoint {
    pub vpce_id: String,
    pub vpc_id: String,
    pub owner_account_id: String,
    pub service_name: String,
    /// The endpoint policy (AWS's default full-access policy when none was given).
    pub policy_document: String,
    pub private_dns_enabled: bool,
    pub state: String,
    /// Creation time, unix milliseconds.
    pub created: i64,
    /// The random label part of the endpoint's DNS names
    /// (`vpce-<id>-<suffix>.kms.<region>.vpce.amazonaws.com`), 8 lowercase hex digits.
    pub dns_suffix: String,
}

/// The DNS zone of endpoint-specific names of a service: `kms.<region>.vpce.amazonaws.com`.
pub fn vpce_zone(service_name: &str, region: &str) -> String {
    format!(
        "{}.{region}.vpce.amazonaws.com",
        service_label(service_name)
    )
}

/// `kms` of `com.amazonaws.us-east-1.kms`, `kms-fips` of `...kms-fips`.
pub fn service_label(service_name: &str) -> &str {
    service_name.rsplit('.').next().unwrap_or(service_name)
}

/// The public (and private DNS) name of a service: `kms.<region>.amazonaws.com`.
pub fn service_dns_name(service_name: &str, region: &str) -> String {
    format!("{}.{region}.amazonaws.com", service_label(service_name))
}

impl Endpoint {
    /// `vpce-<id>-<suffix>.kms.<region>.vpce.amazonaws.com`: resolves to every interface.
    pub fn dns_name(&self, region: &str) -> String {
        format!(
            "{}-{}.{}",
            self.vpce_id,
            self.dns_suffix,
            vpce_zone(&self.service_name, region)
        )
    }

    /// `vpce-<id>-<suffix>-<az>.kms.<region>.vpce.amazonaws.com`: the interface in one zone.
    pub fn zonal_dns_name(&self, region: &str, availability_zone: &str) -> String {
        format!(
            "{}-{}-{availability_zone}.{}",
            self.vpce_id,
            self.dns_suffix,
            vpce_zone(&self.service_name, region)
        )
    }
}

/// A requester-managed network interface of an endpoint (`eni-` + 17 hex digits):
/// one per endpoint subnet; the gateway listens on its private IP.
#[derive(Debug, Clone, PartialEq, Eq, Hash, sqlx::FromRow)]
pub struct NetworkInterface {
    pub eni_id: String,
    pub vpce_id: String,
    pub subnet_id: String,
    pub private_ip: String,
}

/// What `Registry::create_endpoint` needs (the later CreateVpcEndpoint RPC).
#[derive(Debug, Clone, Default)]
pub struct NewEndpoint {
    pub owner_account_id: String,
    pub vpc_id: String,
    /// `com.amazonaws.<region>.kms` or `com.amazonaws.<region>.kms-fips`.
    pub service_name: String,
    /// `None` attaches AWS's default full-access policy.
    pub policy_document: Option<String>,
    pub private_dns_enabled: bool,
    /// At most one subnet per availability zone.
    pub subnets: Vec<EndpointSubnet>,
}

/// One subnet of a new endpoint, with the private IPv4 address to give its
/// interface (`None`: the lowest free assignable address of the subnet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSubnet {
    pub subnet_id: String,
    pub ipv4: Option<std::net::Ipv4Addr>,
}

impl EndpointSubnet {
    pub fn new(subnet_id: impl Into<String>) -> Self {
        Self {
            subnet_id: subnet_id.into(),
            ipv4: None,
        }
    }
}

/// The policy AWS attaches to an endpoint created without one, byte for byte
/// as DescribeVpcEndpoints returns it.
pub const DEFAULT_ENDPOINT_POLICY: &str = "{\n  \"Statement\": [\n    {\n      \"Action\": \"*\", \n      \"Effect\": \"Allow\", \n      \"Principal\": \"*\", \n      \"Resource\": \"*\"\n    }\n  ]\n}";
