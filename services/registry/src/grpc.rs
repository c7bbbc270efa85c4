//! The `kms.registry.v1.Registry` contract, mapped onto the domain.

use std::pin::Pin;

use kms_proto::registry::v1 as pb;
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::error::RegistryError;
use crate::filter::Filter;
use crate::model::{Endpoint, EndpointSubnet, NetworkInterface, NewEndpoint, Subnet, Vpc};
use crate::registry::ec2::{
    EndpointChanges, EndpointService, InterfaceView, VpcEndpointView, availability_zone_id,
};
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

impl<S: Store> RegistryService<S> {
    fn subnet(&self, s: Subnet) -> pb::Subnet {
        pb::Subnet {
            availability_zone_id: availability_zone_id(
                self.registry.region(),
                &s.availability_zone,
            ),
            subnet_id: s.subnet_id,
            vpc_id: s.vpc_id,
            cidr_block: s.cidr_block,
            availability_zone: s.availability_zone,
            owner_account_id: s.owner_account_id,
            available_ip_address_count: s.available_ip_address_count,
        }
    }

    fn interface(&self, v: InterfaceView) -> pb::NetworkInterfaceDetail {
        let region = self.registry.region();
        let ip = v.interface.private_ip.replace('.', "-");
        let private_dns_name = if region == "us-east-1" {
            format!("ip-{ip}.ec2.internal")
        } else {
            format!("ip-{ip}.{region}.compute.internal")
        };
        pb::NetworkInterfaceDetail {
            description: v.description(),
            mac_address: v.mac_address(),
            interface_type: "vpc_endpoint".into(),
            status: "in-use".into(),
            private_dns_name,
            availability_zone_id: availability_zone_id(region, &v.availability_zone),
            interface: Some((&v.interface).into()),
            vpc_id: v.vpc_id,
            availability_zone: v.availability_zone,
            owner_account_id: v.owner_account_id,
            security_group_ids: v.security_group_ids,
        }
    }
}

fn filters(f: Vec<pb::Filter>) -> Vec<Filter> {
    f.into_iter()
        .map(|f| Filter {
            name: f.name,
            values: f.values,
        })
        .collect()
}

impl From<VpcEndpointView> for pb::VpcEndpoint {
    fn from(v: VpcEndpointView) -> Self {
        Self {
            endpoint: Some((&v.endpoint).into()),
            vpc_endpoint_type: "Interface".into(),
            subnet_ids: v.subnet_ids,
            network_interface_ids: v.network_interface_ids,
            security_group_ids: v.security_group_ids,
            dns_entries: v
                .dns_entries
                .into_iter()
                .map(|d| pb::DnsEntry {
                    dns_name: d.dns_name,
                    hosted_zone_id: d.hosted_zone_id,
                })
                .collect(),
            creation_time_ms: v.endpoint.created,
            dns_suffix: v.endpoint.dns_suffix,
        }
    }
}

impl From<EndpointService> for pb::EndpointService {
    fn from(s: EndpointService) -> Self {
        Self {
            service_name: s.service_name,
            service_id: s.service_id,
            service_type: s.service_type,
            owner: "amazon".into(),
            availability_zones: s.availability_zones,
            availability_zone_ids: s.availability_zone_ids,
            base_endpoint_dns_names: s.base_endpoint_dns_names,
            private_dns_name: s.private_dns_name,
            vpc_endpoint_policy_supported: true,
            acceptance_required: false,
            manages_vpc_endpoints: false,
            private_dns_name_verification_state: "verified".into(),
        }
    }
}

/// A CreateVpcEndpoint subnet configuration's address.
fn ipv4(subnet_id: &str, s: &str) -> Result<Option<std::net::Ipv4Addr>, RegistryError> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| {
        RegistryError::invalid_value(
            "ipv4",
            s,
            format!("The address is not an assignable address of subnet {subnet_id}."),
        )
    })
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
            endpoints: t.endpoints().iter().map(|e| e.as_ref().into()).collect(),
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

    async fn delete_vpc(
        &self,
        request: Request<pb::DeleteVpcRequest>,
    ) -> Result<Response<pb::DeleteVpcResponse>, Status> {
        let r = request.into_inner();
        self.registry
            .delete_vpc(&r.owner_account_id, &r.vpc_id)
            .await?;
        Ok(Response::new(pb::DeleteVpcResponse {}))
    }

    async fn modify_vpc_attribute(
        &self,
        request: Request<pb::ModifyVpcAttributeRequest>,
    ) -> Result<Response<pb::Vpc>, Status> {
        let r = request.into_inner();
        let vpc = self
            .registry
            .modify_vpc_attribute(
                &r.owner_account_id,
                &r.vpc_id,
                r.enable_dns_support,
                r.enable_dns_hostnames,
            )
            .await?;
        Ok(Response::new(vpc.into()))
    }

    async fn delete_subnet(
        &self,
        request: Request<pb::DeleteSubnetRequest>,
    ) -> Result<Response<pb::DeleteSubnetResponse>, Status> {
        let r = request.into_inner();
        self.registry
            .delete_subnet(&r.owner_account_id, &r.subnet_id)
            .await?;
        Ok(Response::new(pb::DeleteSubnetResponse {}))
    }

    async fn describe_vpc_endpoint_services(
        &self,
        request: Request<pb::DescribeVpcEndpointServicesRequest>,
    ) -> Result<Response<pb::DescribeVpcEndpointServicesResponse>, Status> {
        let r = request.into_inner();
        let services = self
            .registry
            .describe_vpc_endpoint_services(&r.service_names, &filters(r.filters))?;
        Ok(Response::new(pb::DescribeVpcEndpointServicesResponse {
            services: services.into_iter().map(Into::into).collect(),
        }))
    }

    async fn create_vpc_endpoint(
        &self,
        request: Request<pb::CreateVpcEndpointRequest>,
    ) -> Result<Response<pb::VpcEndpoint>, Status> {
        let r = request.into_inner();
        if !matches!(r.vpc_endpoint_type.as_str(), "" | "Interface") {
            return Err(RegistryError::InvalidParameter(format!(
                "Endpoint type ({}) does not match available service types ([Interface]).",
                r.vpc_endpoint_type
            ))
            .into());
        }
        let mut subnets: Vec<EndpointSubnet> = Vec::new();
        for c in &r.subnet_configurations {
            subnets.push(EndpointSubnet {
                subnet_id: c.subnet_id.clone(),
                ipv4: ipv4(&c.subnet_id, &c.ipv4)?,
            });
        }
        for id in r.subnet_ids {
            if !subnets.iter().any(|s| s.subnet_id == id) {
                subnets.push(EndpointSubnet::new(id));
            }
        }
        let new = NewEndpoint {
            owner_account_id: r.owner_account_id,
            vpc_id: r.vpc_id,
            service_name: r.service_name,
            policy_document: r.policy_document,
            // EC2 turns private DNS on by default for AWS services.
            private_dns_enabled: r.private_dns_enabled.unwrap_or(true),
            subnets,
        };
        let view = self
            .registry
            .create_vpc_endpoint(new, r.security_group_ids)
            .await?;
        Ok(Response::new(view.into()))
    }

    async fn modify_vpc_endpoint(
        &self,
        request: Request<pb::ModifyVpcEndpointRequest>,
    ) -> Result<Response<pb::VpcEndpoint>, Status> {
        let r = request.into_inner();
        let changes = EndpointChanges {
            policy_document: r.policy_document,
            reset_policy: r.reset_policy,
            private_dns_enabled: r.private_dns_enabled,
            add_subnet_ids: r.add_subnet_ids,
            remove_subnet_ids: r.remove_subnet_ids,
            add_security_group_ids: r.add_security_group_ids,
            remove_security_group_ids: r.remove_security_group_ids,
        };
        let view = self
            .registry
            .modify_vpc_endpoint(&r.owner_account_id, &r.vpc_endpoint_id, changes)
            .await?;
        Ok(Response::new(view.into()))
    }

    async fn describe_vpc_endpoints(
        &self,
        request: Request<pb::DescribeVpcEndpointsRequest>,
    ) -> Result<Response<pb::DescribeVpcEndpointsResponse>, Status> {
        let r = request.into_inner();
        let views = self
            .registry
            .describe_vpc_endpoints(
                &r.owner_account_id,
                &r.vpc_endpoint_ids,
                &filters(r.filters),
            )
            .await?;
        Ok(Response::new(pb::DescribeVpcEndpointsResponse {
            vpc_endpoints: views.into_iter().map(Into::into).collect(),
        }))
    }

    async fn delete_vpc_endpoints(
        &self,
        request: Request<pb::DeleteVpcEndpointsRequest>,
    ) -> Result<Response<pb::DeleteVpcEndpointsResponse>, Status> {
        let r = request.into_inner();
        let unsuccessful = self
            .registry
            .delete_vpc_endpoints(&r.owner_account_id, &r.vpc_endpoint_ids)
            .await?;
        Ok(Response::new(pb::DeleteVpcEndpointsResponse {
            unsuccessful: unsuccessful
                .into_iter()
                .map(|u| pb::UnsuccessfulItem {
                    resource_id: u.resource_id,
                    code: u.code,
                    message: u.message,
                })
                .collect(),
        }))
    }

    async fn describe_network_interfaces(
        &self,
        request: Request<pb::DescribeNetworkInterfacesRequest>,
    ) -> Result<Response<pb::DescribeNetworkInterfacesResponse>, Status> {
        let r = request.into_inner();
        let views = self
            .registry
            .describe_network_interfaces(
                &r.owner_account_id,
                &r.network_interface_ids,
                &filters(r.filters),
            )
            .await?;
        Ok(Response::new(pb::DescribeNetworkInterfacesResponse {
            network_interfaces: views.into_iter().map(|v| self.interface(v)).collect(),
        }))
    }

    async fn describe_vpcs(
        &self,
        request: Request<pb::DescribeVpcsRequest>,
    ) -> Result<Response<pb::DescribeVpcsResponse>, Status> {
        let r = request.into_inner();
        let vpcs = self
            .registry
            .describe_vpcs_filtered(&r.owner_account_id, &r.vpc_ids, &filters(r.filters))
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
        Ok(Response::new(self.subnet(subnet)))
    }

    async fn describe_subnets(
        &self,
        request: Request<pb::DescribeSubnetsRequest>,
    ) -> Result<Response<pb::DescribeSubnetsResponse>, Status> {
        let r = request.into_inner();
        let subnets = self
            .registry
            .describe_subnets_filtered(&r.owner_account_id, &r.subnet_ids, &filters(r.filters))
            .await?;
        Ok(Response::new(pb::DescribeSubnetsResponse {
            subnets: subnets.into_iter().map(|s| self.subnet(s)).collect(),
        }))
    }
}
