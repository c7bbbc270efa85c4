//! The `kms.registry.v1.Registry` contract, mapped onto the domain.

use std::pin::Pin;

use kms_proto::registry::v1 as pb;
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::model::{Endpoint, NetworkInterface, Subnet, Vpc};
use crate::registry::{InterfaceTable, Registry, parse_listener_addr};
use crate::store::Store;

/// The gRPC face of a [`Registry`].
pub struct RegistryService<S> {
    registry: Registry<S>,
    /// Turns true when the server shuts down, ending the watch streams so that
    /// graceful shutdown does not wait on them forever.
    stopping: watch::Receiver<bool>,
}

impl<S> RegistryService<S> {
    pub fn new(registry: Registry<S>, stopping: watch::Receiver<bool>) -> Self {
        Self { registry, stopping }
    }
}

impl From<Vpc> for pb::Vpc {
    fn from(v: Vpc) -> Self {
        Self {
            vpc_id: v.vpc_id,
            owner_account_id: v.owner_account_id,
            cidr_block: v.cidr_block,
            enable_dns_support: v.enable_dns_support,
            enable_dns_hostnames: v.enable_dns_hostnames,
            state: v.state,
        }
    }
}

impl From<Subnet> for pb::Subnet {
    fn from(s: Subnet) -> Self {
        Self {
            subnet_id: s.subnet_id,
            vpc_id: s.vpc_id,
            cidr_block: s.cidr_block,
            availability_zone: s.availability_zone,
            owner_account_id: s.owner_account_id,
        }
    }
}

impl From<&Endpoint> for pb::Endpoint {
    fn from(e: &Endpoint) -> Self {
        Self {
            vpce_id: e.vpce_id.clone(),
            vpc_id: e.vpc_id.clone(),
            owner_account_id: e.owner_account_id.clone(),
            service_name: e.service_name.clone(),
            policy_document: e.policy_document.clone(),
            private_dns_enabled: e.private_dns_enabled,
            state: e.state.clone(),
        }
    }
}

impl From<&NetworkInterface> for pb::NetworkInterface {
    fn from(i: &NetworkInterface) -> Self {
        Self {
            eni_id: i.eni_id.clone(),
            vpce_id: i.vpce_id.clone(),
            subnet_id: i.subnet_id.clone(),
            private_ip: i.private_ip.clone(),
        }
    }
}

impl From<&InterfaceTable> for pb::InterfaceSnapshot {
    fn from(t: &InterfaceTable) -> Self {
        Self {
            interfaces: t.interfaces().iter().map(Into::into).collect(),
            generation: t.generation,
        }
    }
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<pb::InterfaceSnapshot, Status>> + Send>>;

#[tonic::async_trait]
impl<S: Store> pb::registry_server::Registry for RegistryService<S> {
    async fn resolve_listener(
        &self,
        request: Request<pb::ResolveListenerRequest>,
    ) -> Result<Response<pb::ResolveListenerResponse>, Status> {
        let ip = parse_listener_addr(&request.get_ref().local_addr)?;
        let response = match self.registry.resolve_listener(ip) {
            Some(l) => pb::ResolveListenerResponse {
                endpoint: Some(l.endpoint.as_ref().into()),
                interface: Some((&l.interface).into()),
            },
            None => pb::ResolveListenerResponse::default(),
        };
        Ok(Response::new(response))
    }

    type WatchInterfacesStream = SnapshotStream;

    async fn watch_interfaces(
        &self,
        _request: Request<pb::WatchInterfacesRequest>,
    ) -> Result<Response<Self::WatchInterfacesStream>, Status> {
        let mut tables = self.registry.subscribe();
        let mut stopping = self.stopping.clone();
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            loop {
                let snapshot = pb::InterfaceSnapshot::from(tables.borrow_and_update().as_ref());
                if tx.send(Ok(snapshot)).await.is_err() {
                    return;
                }
                tokio::select! {
                    changed = tables.changed() => if changed.is_err() { return },
                    _ = stopping.wait_for(|s| *s) => return,
                    () = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn create_vpc(
        &self,
        request: Request<pb::CreateVpcRequest>,
    ) -> Result<Response<pb::Vpc>, Status> {
        let r = request.into_inner();
        let vpc = self
            .registry
            .create_vpc(&r.owner_account_id, &r.cidr_block)
            .await?;
        Ok(Response::new(vpc.into()))
    }

    async fn describe_vpcs(
        &self,
        request: Request<pb::DescribeVpcsRequest>,
    ) -> Result<Response<pb::DescribeVpcsResponse>, Status> {
        let r = request.into_inner();
        let vpcs = self
            .registry
            .describe_vpcs(&r.owner_account_id, &r.vpc_ids)
            .await?;
        Ok(Response::new(pb::DescribeVpcsResponse {
            vpcs: vpcs.into_iter().map(Into::into).collect(),
        }))
    }

    async fn create_subnet(
        &self,
        request: Request<pb::CreateSubnetRequest>,
    ) -> Result<Response<pb::Subnet>, Status> {
        let r = request.into_inner();
        let subnet = self
            .registry
            .create_subnet(
                &r.owner_account_id,
                &r.vpc_id,
                &r.cidr_block,
                &r.availability_zone,
            )
            .await?;
        Ok(Response::new(subnet.into()))
    }

    async fn describe_subnets(
        &self,
        request: Request<pb::DescribeSubnetsRequest>,
    ) -> Result<Response<pb::DescribeSubnetsResponse>, Status> {
        let r = request.into_inner();
        let subnets = self
            .registry
            .describe_subnets(&r.owner_account_id, &r.subnet_ids)
            .await?;
        Ok(Response::new(pb::DescribeSubnetsResponse {
            subnets: subnets.into_iter().map(Into::into).collect(),
        }))
    }
}
