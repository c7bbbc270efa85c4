//! Persistence of the registry: the [`Store`] trait the domain uses, and its
//! SQLite implementation (sqlx runtime queries, migrations embedded).

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::model::{Endpoint, NetworkInterface, Subnet, Vpc};

/// The registry's storage. Writes are serialized by the caller (the domain
/// layer holds one write lock), so implementations need no conflict handling
/// beyond their constraints.
pub trait Store: Send + Sync + 'static {
    fn insert_vpc(&self, vpc: &Vpc) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    fn get_vpc(
        &self,
        vpc_id: &str,
    ) -> impl Future<Output = Result<Option<Vpc>, sqlx::Error>> + Send;
    /// Every VPC of an account, oldest first.
    fn list_vpcs(
        &self,
        owner_account_id: &str,
    ) -> impl Future<Output = Result<Vec<Vpc>, sqlx::Error>> + Send;
    fn set_vpc_dns_attributes(
        &self,
        vpc_id: &str,
        enable_dns_support: bool,
        enable_dns_hostnames: bool,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    fn insert_subnet(
        &self,
        subnet: &Subnet,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    fn get_subnet(
        &self,
        subnet_id: &str,
    ) -> impl Future<Output = Result<Option<Subnet>, sqlx::Error>> + Send;
    /// Every subnet of an account, oldest first.
    fn list_subnets(
        &self,
        owner_account_id: &str,
    ) -> impl Future<Output = Result<Vec<Subnet>, sqlx::Error>> + Send;
    fn subnets_of_vpc(
        &self,
        vpc_id: &str,
    ) -> impl Future<Output = Result<Vec<Subnet>, sqlx::Error>> + Send;

    /// Insert an endpoint with its subnets and interfaces, atomically.
    fn insert_endpoint(
        &self,
        endpoint: &Endpoint,
        interfaces: &[NetworkInterface],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    fn private_dns_endpoint_exists(
        &self,
        vpc_id: &str,
        service_name: &str,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;
    fn list_endpoints(&self) -> impl Future<Output = Result<Vec<Endpoint>, sqlx::Error>> + Send;
    fn list_interfaces(
        &self,
    ) -> impl Future<Output = Result<Vec<NetworkInterface>, sqlx::Error>> + Send;
}

/// The SQLite store (WAL, synchronous=FULL, foreign keys on).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Open (creating if missing) the database at `url` and run the migrations.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../../migrations/registry")
            .run(&pool)
            .await?;
        Ok(Self { pool })
    }

    /// Close the pool (checkpoints the WAL); further calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl Store for SqliteStore {
    async fn insert_vpc(&self, vpc: &Vpc) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO vpcs (vpc_id, owner_account_id, cidr_block, enable_dns_support, enable_dns_hostnames, state) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&vpc.vpc_id)
        .bind(&vpc.owner_account_id)
        .bind(&vpc.cidr_block)
        .bind(vpc.enable_dns_support)
        .bind(vpc.enable_dns_hostnames)
        .bind(&vpc.state)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_vpc(&self, vpc_id: &str) -> Result<Option<Vpc>, sqlx::Error> {
        sqlx::query_as::<_, Vpc>(
            "SELECT vpc_id, owner_account_id, cidr_block, enable_dns_support, enable_dns_hostnames, state \
             FROM vpcs WHERE vpc_id = ?",
        )
        .bind(vpc_id)
        .fetch_optional(&self.pool)
        .await
    }

    async fn list_vpcs(&self, owner_account_id: &str) -> Result<Vec<Vpc>, sqlx::Error> {
        sqlx::query_as::<_, Vpc>(
            "SELECT vpc_id, owner_account_id, cidr_block, enable_dns_support, enable_dns_hostnames, state \
             FROM vpcs WHERE owner_account_id = ? ORDER BY rowid",
        )
        .bind(owner_account_id)
        .fetch_all(&self.pool)
        .await
    }

    async fn set_vpc_dns_attributes(
        &self,
        vpc_id: &str,
        enable_dns_support: bool,
        enable_dns_hostnames: bool,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE vpcs SET enable_dns_support = ?, enable_dns_hostnames = ? WHERE vpc_id = ?",
        )
        .bind(enable_dns_support)
        .bind(enable_dns_hostnames)
        .bind(vpc_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn insert_subnet(&self, subnet: &Subnet) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO subnets (subnet_id, vpc_id, cidr_block, availability_zone, owner_account_id) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&subnet.subnet_id)
        .bind(&subnet.vpc_id)
        .bind(&subnet.cidr_block)
        .bind(&subnet.availability_zone)
        .bind(&subnet.owner_account_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_subnet(&self, subnet_id: &str) -> Result<Option<Subnet>, sqlx::Error> {
        sqlx::query_as::<_, Subnet>(
            "SELECT subnet_id, vpc_id, cidr_block, availability_zone, owner_account_id \
             FROM subnets WHERE subnet_id = ?",
        )
        .bind(subnet_id)
        .fetch_optional(&self.pool)
        .await
    }

    async fn list_subnets(&self, owner_account_id: &str) -> Result<Vec<Subnet>, sqlx::Error> {
        sqlx::query_as::<_, Subnet>(
            "SELECT subnet_id, vpc_id, cidr_block, availability_zone, owner_account_id \
             FROM subnets WHERE owner_account_id = ? ORDER BY rowid",
        )
        .bind(owner_account_id)
        .fetch_all(&self.pool)
        .await
    }

    async fn subnets_of_vpc(&self, vpc_id: &str) -> Result<Vec<Subnet>, sqlx::Error> {
        sqlx::query_as::<_, Subnet>(
            "SELECT subnet_id, vpc_id, cidr_block, availability_zone, owner_account_id \
             FROM subnets WHERE vpc_id = ? ORDER BY rowid",
        )
        .bind(vpc_id)
        .fetch_all(&self.pool)
        .await
    }

    async fn insert_endpoint(
        &self,
        endpoint: &Endpoint,
        interfaces: &[NetworkInterface],
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO vpc_endpoints (vpce_id, vpc_id, owner_account_id, service_name, policy_document, \
             private_dns_enabled, state, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&endpoint.vpce_id)
        .bind(&endpoint.vpc_id)
        .bind(&endpoint.owner_account_id)
        .bind(&endpoint.service_name)
        .bind(&endpoint.policy_document)
        .bind(endpoint.private_dns_enabled)
        .bind(&endpoint.state)
        .bind(endpoint.created)
        .execute(&mut *tx)
        .await?;
        for eni in interfaces {
            sqlx::query("INSERT INTO endpoint_subnets (vpce_id, subnet_id) VALUES (?, ?)")
                .bind(&eni.vpce_id)
                .bind(&eni.subnet_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO network_interfaces (eni_id, vpce_id, subnet_id, private_ip) VALUES (?, ?, ?, ?)",
            )
            .bind(&eni.eni_id)
            .bind(&eni.vpce_id)
            .bind(&eni.subnet_id)
            .bind(&eni.private_ip)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    async fn private_dns_endpoint_exists(
        &self,
        vpc_id: &str,
        service_name: &str,
    ) -> Result<bool, sqlx::Error> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM vpc_endpoints WHERE vpc_id = ? AND service_name = ? AND private_dns_enabled = 1 LIMIT 1",
        )
        .bind(vpc_id)
        .bind(service_name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn list_endpoints(&self) -> Result<Vec<Endpoint>, sqlx::Error> {
        sqlx::query_as::<_, Endpoint>(
            "SELECT vpce_id, vpc_id, owner_account_id, service_name, policy_document, private_dns_enabled, \
             state, created FROM vpc_endpoints ORDER BY rowid",
        )
        .fetch_all(&self.pool)
        .await
    }

    async fn list_interfaces(&self) -> Result<Vec<NetworkInterface>, sqlx::Error> {
        sqlx::query_as::<_, NetworkInterface>(
            "SELECT eni_id, vpce_id, subnet_id, private_ip FROM network_interfaces ORDER BY rowid",
        )
        .fetch_all(&self.pool)
        .await
    }
}
