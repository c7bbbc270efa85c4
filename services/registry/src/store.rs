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

    /// Delete a VPC (the caller checked it has no subnets or endpoints).
    fn delete_vpc(&self, vpc_id: &str) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Whether the VPC still has subnets or endpoints.
    fn vpc_has_dependencies(
        &self,
        vpc_id: &str,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;
    /// Delete a subnet (the caller checked no endpoint uses it).
    fn delete_subnet(
        &self,
        subnet_id: &str,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Whether an endpoint (interface) is placed in the subnet.
    fn subnet_in_use(
        &self,
        subnet_id: &str,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;

    /// Insert an endpoint with its subnets, interfaces and security groups, atomically.
    fn insert_endpoint(
        &self,
        endpoint: &Endpoint,
        interfaces: &[NetworkInterface],
        security_group_ids: &[String],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Whether another endpoint (not `except_vpce_id`) of the service in the
    /// VPC has private DNS enabled.
    fn private_dns_endpoint_exists(
        &self,
        vpc_id: &str,
        service_name: &str,
        except_vpce_id: &str,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;
    fn get_endpoint(
        &self,
        vpce_id: &str,
    ) -> impl Future<Output = Result<Option<Endpoint>, sqlx::Error>> + Send;
    /// Update an endpoint's policy and private DNS flag, add interfaces (one
    /// per new subnet), remove the interfaces of `remove_subnet_ids`, and
    /// change its security groups, atomically.
    fn update_endpoint(
        &self,
        endpoint: &Endpoint,
        add_interfaces: &[NetworkInterface],
        remove_subnet_ids: &[String],
        add_security_group_ids: &[String],
        remove_security_group_ids: &[String],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Every (vpce_id, security group id), in insertion order.
    fn list_endpoint_security_groups(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, String)>, sqlx::Error>> + Send;
    fn list_endpoints(&self) -> impl Future<Output = Result<Vec<Endpoint>, sqlx::Error>> + Send;
    /// Delete an endpoint with its subnets and interfaces; false if it did not exist.
    fn delete_endpoint(
        &self,
        vpce_id: &str,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;
    /// Every VPC of every account, oldest first (the DNS server's resolvers).
    fn list_all_vpcs(&self) -> impl Future<Output = Result<Vec<Vpc>, sqlx::Error>> + Send;
    /// Every subnet of every account, oldest first (per-AZ DNS names).
    fn list_all_subnets(&self) -> impl Future<Output = Result<Vec<Subnet>, sqlx::Error>> + Send;
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

    async fn delete_vpc(&self, vpc_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM vpcs WHERE vpc_id = ?")
            .bind(vpc_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn vpc_has_dependencies(&self, vpc_id: &str) -> Result<bool, sqlx::Error> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM subnets WHERE vpc_id = ?1 UNION ALL \
             SELECT 1 FROM vpc_endpoints WHERE vpc_id = ?1 LIMIT 1",
        )
        .bind(vpc_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn delete_subnet(&self, subnet_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM subnets WHERE subnet_id = ?")
            .bind(subnet_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn subnet_in_use(&self, subnet_id: &str) -> Result<bool, sqlx::Error> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM network_interfaces WHERE subnet_id = ?1 UNION ALL \
             SELECT 1 FROM endpoint_subnets WHERE subnet_id = ?1 LIMIT 1",
        )
        .bind(subnet_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn get_endpoint(&self, vpce_id: &str) -> Result<Option<Endpoint>, sqlx::Error> {
        sqlx::query_as::<_, Endpoint>(
            "SELECT vpce_id, vpc_id, owner_account_id, service_name, policy_document, private_dns_enabled, \
             state, created, dns_suffix FROM vpc_endpoints WHERE vpce_id = ?",
        )
        .bind(vpce_id)
        .fetch_optional(&self.pool)
        .await
    }

    async fn update_endpoint(
        &self,
        endpoint: &Endpoint,
        add_interfaces: &[NetworkInterface],
        remove_subnet_ids: &[String],
        add_security_group_ids: &[String],
        remove_security_group_ids: &[String],
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE vpc_endpoints SET policy_document = ?, private_dns_enabled = ? WHERE vpce_id = ?",
        )
        .bind(&endpoint.policy_document)
        .bind(endpoint.private_dns_enabled)
        .bind(&endpoint.vpce_id)
        .execute(&mut *tx)
        .await?;
        for subnet_id in remove_subnet_ids {
            sqlx::query("DELETE FROM network_interfaces WHERE vpce_id = ? AND subnet_id = ?")
                .bind(&endpoint.vpce_id)
                .bind(subnet_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM endpoint_subnets WHERE vpce_id = ? AND subnet_id = ?")
                .bind(&endpoint.vpce_id)
                .bind(subnet_id)
                .execute(&mut *tx)
                .await?;
        }
        insert_interfaces(&mut tx, add_interfaces).await?;
        for group_id in remove_security_group_ids {
            sqlx::query("DELETE FROM endpoint_security_groups WHERE vpce_id = ? AND group_id = ?")
                .bind(&endpoint.vpce_id)
                .bind(group_id)
                .execute(&mut *tx)
                .await?;
        }
        insert_security_groups(&mut tx, &endpoint.vpce_id, add_security_group_ids).await?;
        tx.commit().await
    }

    async fn list_endpoint_security_groups(&self) -> Result<Vec<(String, String)>, sqlx::Error> {
        sqlx::query_as("SELECT vpce_id, group_id FROM endpoint_security_groups ORDER BY rowid")
            .fetch_all(&self.pool)
            .await
    }

    async fn insert_endpoint(
        &self,
        endpoint: &Endpoint,
        interfaces: &[NetworkInterface],
        security_group_ids: &[String],
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO vpc_endpoints (vpce_id, vpc_id, owner_account_id, service_name, policy_document, \
             private_dns_enabled, state, created, dns_suffix) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&endpoint.vpce_id)
        .bind(&endpoint.vpc_id)
        .bind(&endpoint.owner_account_id)
        .bind(&endpoint.service_name)
        .bind(&endpoint.policy_document)
        .bind(endpoint.private_dns_enabled)
        .bind(&endpoint.state)
        .bind(endpoint.created)
        .bind(&endpoint.dns_suffix)
        .execute(&mut *tx)
        .await?;
        insert_interfaces(&mut tx, interfaces).await?;
        insert_security_groups(&mut tx, &endpoint.vpce_id, security_group_ids).await?;
        tx.commit().await
    }

    async fn private_dns_endpoint_exists(
        &self,
        vpc_id: &str,
        service_name: &str,
        except_vpce_id: &str,
    ) -> Result<bool, sqlx::Error> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM vpc_endpoints WHERE vpc_id = ? AND service_name = ? AND private_dns_enabled = 1 \
             AND vpce_id <> ? LIMIT 1",
        )
        .bind(vpc_id)
        .bind(service_name)
        .bind(except_vpce_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn list_endpoints(&self) -> Result<Vec<Endpoint>, sqlx::Error> {
        sqlx::query_as::<_, Endpoint>(
            "SELECT vpce_id, vpc_id, owner_account_id, service_name, policy_document, private_dns_enabled, \
             state, created, dns_suffix FROM vpc_endpoints ORDER BY rowid",
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

    async fn delete_endpoint(&self, vpce_id: &str) -> Result<bool, sqlx::Error> {
        // endpoint_subnets and network_interfaces go with it (ON DELETE CASCADE).
        let done = sqlx::query("DELETE FROM vpc_endpoints WHERE vpce_id = ?")
            .bind(vpce_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_all_vpcs(&self) -> Result<Vec<Vpc>, sqlx::Error> {
        sqlx::query_as::<_, Vpc>(
            "SELECT vpc_id, owner_account_id, cidr_block, enable_dns_support, enable_dns_hostnames, state \
             FROM vpcs ORDER BY rowid",
        )
        .fetch_all(&self.pool)
        .await
    }

    async fn list_all_subnets(&self) -> Result<Vec<Subnet>, sqlx::Error> {
        sqlx::query_as::<_, Subnet>(
            "SELECT subnet_id, vpc_id, cidr_block, availability_zone, owner_account_id \
             FROM subnets ORDER BY rowid",
        )
        .fetch_all(&self.pool)
        .await
    }
}

type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

async fn insert_interfaces(
    tx: &mut Tx,
    interfaces: &[NetworkInterface],
) -> Result<(), sqlx::Error> {
    for eni in interfaces {
        sqlx::query("INSERT INTO endpoint_subnets (vpce_id, subnet_id) VALUES (?, ?)")
            .bind(&eni.vpce_id)
            .bind(&eni.subnet_id)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO network_interfaces (eni_id, vpce_id, subnet_id, private_ip) VALUES (?, ?, ?, ?)",
        )
        .bind(&eni.eni_id)
        .bind(&eni.vpce_id)
        .bind(&eni.subnet_id)
        .bind(&eni.private_ip)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn insert_security_groups(
    tx: &mut Tx,
    vpce_id: &str,
    group_ids: &[String],
) -> Result<(), sqlx::Error> {
    for group_id in group_ids {
        sqlx::query(
            "INSERT OR IGNORE INTO endpoint_security_groups (vpce_id, group_id) VALUES (?, ?)",
        )
        .bind(vpce_id)
        .bind(group_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
