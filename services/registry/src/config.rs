//! Configuration of the registry service (flags and `KMS_REGISTRY_*` variables).

/// Registry configuration. Tests build it with [`Config::new`], never from the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// SQLite database URL, e.g. `sqlite:///var/lib/kms/registry.db`.
    #[arg(
        long = "database-url",
        env = "KMS_REGISTRY_DATABASE_URL",
        default_value = "sqlite://registry.db"
    )]
    pub database_url: String,

    /// UDP/TCP port of the authoritative DNS server (every resolver uses it).
    #[arg(
        long = "dns-port",
        env = "KMS_REGISTRY_DNS_PORT",
        default_value_t = 5353
    )]
    pub dns_port: u16,

    /// The public endpoint's IP: the public resolver listens on it, and
    /// `kms.<region>.amazonaws.com` answers it outside private DNS. Unset: no DNS server.
    #[arg(long = "dns-public-ip", env = "KMS_REGISTRY_DNS_PUBLIC_IP")]
    pub dns_public_ip: Option<std::net::IpAddr>,

    /// What `kms.<region>.amazonaws.com` answers outside private DNS when the
    /// public endpoint is not on the resolver's address (compose: the
    /// gateway's address). Unset: the public resolver's own address.
    #[arg(
        long = "dns-public-endpoint-ip",
        env = "KMS_REGISTRY_DNS_PUBLIC_ENDPOINT_IP"
    )]
    pub dns_public_endpoint_ip: Option<std::net::Ipv4Addr>,

    /// Bind VPC resolvers outside 127.0.0.0/8 (compose, real networks).
    #[arg(
        long = "dns-allow-non-loopback",
        env = "KMS_REGISTRY_DNS_ALLOW_NON_LOOPBACK"
    )]
    pub dns_allow_non_loopback: bool,

    /// The region this registry models: it names the KMS endpoint service
    /// (`com.amazonaws.<region>.kms`) and the availability zones (`<region>a`..).
    #[arg(
        long = "region",
        env = "KMS_REGISTRY_REGION",
        default_value = "us-east-1"
    )]
    pub region: String,
    /// Mutual TLS of the gRPC server (and of its clients of other services).
    #[command(flatten)]
    pub internal_tls: kms_telemetry::tls::InternalTlsConfig,
}

impl Config {
    /// A configuration with the given database and every other setting at its default.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            dns_port: 5353,
            dns_public_ip: None,
            dns_public_endpoint_ip: None,
            dns_allow_non_loopback: false,
            region: "us-east-1".to_owned(),
            internal_tls: Default::default(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new("sqlite://registry.db")
    }
}
