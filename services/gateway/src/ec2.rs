//! The EC2 Query API for the VPC model: VPCs, subnets, VPC endpoints for KMS
//! and their network interfaces, served by the registry.
//!
//! The caller's account (from SigV4, through authz) owns what it creates and
//! sees only its own resources; the region is the gateway's. Each call is
//! recorded by audit as a CloudTrail event of `ec2.amazonaws.com` before the
//! answer leaves (fail closed, as for KMS).
//!
//! As EC2 does: VpcEndpointType defaults to `Gateway` (which KMS does not
//! offer, so `InvalidParameter`), PrivateDnsEnabled defaults to true for an
//! interface endpoint (so the VPC needs both DNS attributes), `DryRun=true`
//! answers `DryRunOperation` (HTTP 412) once the parameters are present.
//! Pagination: `MaxResults` / `NextToken` on DescribeVpcs, DescribeSubnets,
//! DescribeVpcEndpoints and DescribeNetworkInterfaces (pages in id order; the
//! token names the last id returned). Without them every result comes in
//! one answer, in the registry's order.
//! Not modelled: tags (TagSpecification.N is ignored), other EC2 actions
//! (`UnsupportedOperation`).

use crate::State;
use crate::query::{Params, Xml, error_response, xml_response};
use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use kms_proto::common::v1::RequestContext;
use kms_proto::error::AwsError;
use kms_proto::registry::v1 as pb;
use serde_json::{Map, Value, json};

/// The actions this endpoint serves.
pub const SUPPORTED: &[&str] = &[
    "CreateVpc",
    "DescribeVpcs",
    "DeleteVpc",
    "ModifyVpcAttribute",
    "DescribeVpcAttribute",
    "CreateSubnet",
    "DescribeSubnets",
    "DeleteSubnet",
    "DescribeVpcEndpointServices",
    "CreateVpcEndpoint",
    "ModifyVpcEndpoint",
    "DescribeVpcEndpoints",
    "DeleteVpcEndpoints",
    "DescribeNetworkInterfaces",
];

/// Serve one EC2 request: `query` is the URI's query string, `body` the form.
/// Always answers in EC2's format (errors included).
pub async fn call(
    state: &State,
    ctx: RequestContext,
    query: Option<&str>,
    body: &[u8],
) -> Result<Response<Full<Bytes>>, AwsError> {
    let (params, action) = Params::from_request(query, body);
    let outcome = match action.as_str() {
        "" => Err(AwsError::new(
            "MissingAction",
            "The request must contain the parameter Action",
        )),
        a if !SUPPORTED.contains(&a) => Err(AwsError::new(
            "UnsupportedOperation",
            format!(
                "The action {a} is not supported by this endpoint; it serves the VPC and VPC endpoint actions of the EC2 API."
            ),
        )),
        a => execute(state, &ctx, a, &params).await.map_err(ec2_error),
    };
    if !action.is_empty()
        && let Err(e) = record(state, &ctx, &action, &params, &outcome).await
    {
        return Ok(error_response(&ec2_error(e), &ctx.request_id));
    }
    Ok(match outcome {
        Ok(body) => xml_response(body),
        Err(e) => error_response(&e, &ctx.request_id),
    })
}

/// Failures of the backends as EC2 names them.
fn ec2_error(e: AwsError) -> AwsError {
    match e.code.as_str() {
        "DependencyTimeoutException" => AwsError::new(
            "Unavailable",
            "The service is unavailable. Please try again shortly.",
        ),
        "KMSInternalException" => AwsError::new(
            "InternalError",
            "An internal error has occurred. Please try again later.",
        ),
        _ => e,
    }
}

fn owner(ctx: &RequestContext) -> Result<String, AwsError> {
    ctx.caller
        .as_ref()
        .map(|c| c.account_id.clone())
        .ok_or_else(AwsError::internal)
}

fn filters(params: &Params) -> Vec<pb::Filter> {
    params
        .filters()
        .into_iter()
        .map(|(name, values)| pb::Filter { name, values })
        .collect()
}

/// One page of a Describe result. `ids_param` is the name of the action's
/// id list (which EC2 does not combine with `MaxResults`), `min` the
/// smallest `MaxResults` the model allows (0: no lower bound; above 1000,
/// 1000 items are returned). Returns the page and the next token.
fn paginate<T>(
    mut items: Vec<T>,
    id: impl Fn(&T) -> &str,
    p: &Params,
    ids_param: &str,
    ids_given: bool,
    min: i64,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let max = match p.get("MaxResults") {
        None => None,
        Some(raw) => {
            let n: i64 = raw.parse().map_err(|_| {
                AwsError::new(
                    "InvalidParameterValue",
                    format!("Invalid value '{raw}' for maxResults"),
                )
            })?;
            if ids_given {
                return Err(AwsError::new(
                    "InvalidParameterCombination",
                    format!(
                        "The parameter {ids_param} cannot be used with the parameter maxResults"
                    ),
                ));
            }
            if n < min || (min > 0 && n > 1000) || n < 1 {
                return Err(AwsError::new(
                    "InvalidParameterValue",
                    format!(
                        "Value ( {n} ) for parameter maxResults is invalid. Expecting a value between {} and 1000.",
                        min.max(1)
                    ),
                ));
            }
            Some(n.min(1000) as usize)
        }
    };
    let token = p.get("NextToken").filter(|t| !t.is_empty());
    if max.is_none() && token.is_none() {
        return Ok((items, None));
    }
    items.sort_by(|a, b| id(a).cmp(id(b)));
    if let Some(token) = token {
        let after = b64
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|s| s.contains('-') && s.len() <= 64)
            .ok_or_else(|| {
                AwsError::new(
                    "InvalidPaginationToken",
                    format!("Invalid pagination token: {token}"),
                )
            })?;
        items.retain(|i| id(i) > after.as_str());
    }
    let Some(max) = max else {
        return Ok((items, None));
    };
    if items.len() <= max {
        return Ok((items, None));
    }
    items.truncate(max);
    let next = items.last().map(|i| b64.encode(id(i)));
    Ok((items, next))
}

fn status(s: tonic::Status) -> AwsError {
    AwsError::from_status(&s)
}

/// `Request would have succeeded, but DryRun flag is set.` (HTTP 412).
fn dry_run(params: &Params) -> Result<(), AwsError> {
    if params.bool("DryRun")? == Some(true) {
        return Err(AwsError::new(
            "DryRunOperation",
            "Request would have succeeded, but DryRun flag is set.",
        ));
    }
    Ok(())
}

fn iso8601_ms(ms: i64) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

async fn execute(
    state: &State,
    ctx: &RequestContext,
    action: &str,
    p: &Params,
) -> Result<String, AwsError> {
    let owner = owner(ctx)?;
    let mut registry = state.clients.registry();
    let mut x = Xml::response(action, &ctx.request_id);
    match action {
        "CreateVpc" => {
            let cidr_block = p.required("CidrBlock")?.to_owned();
            dry_run(p)?;
            let vpc = registry
                .create_vpc(pb::CreateVpcRequest {
                    owner_account_id: owner,
                    cidr_block,
                })
                .await
                .map_err(status)?
                .into_inner();
            x.open("vpc");
            vpc_xml(&mut x, &vpc);
            x.close("vpc");
        }
        "DescribeVpcs" => {
            dry_run(p)?;
            let vpc_ids = p.list("VpcId");
            let ids_given = !vpc_ids.is_empty();
            let vpcs = registry
                .describe_vpcs(pb::DescribeVpcsRequest {
                    owner_account_id: owner,
                    vpc_ids,
                    filters: filters(p),
                })
                .await
                .map_err(status)?
                .into_inner()
                .vpcs;
            let (vpcs, next) = paginate(vpcs, |v| &v.vpc_id, p, "vpcIds", ids_given, 5)?;
            x.items("vpcSet", &vpcs, vpc_xml);
            if let Some(t) = next {
                x.text("nextToken", &t);
            }
        }
        "DeleteVpc" => {
            let vpc_id = p.required("VpcId")?.to_owned();
            dry_run(p)?;
            registry
                .delete_vpc(pb::DeleteVpcRequest {
                    owner_account_id: owner,
                    vpc_id,
                })
                .await
                .map_err(status)?;
            x.bool("return", true);
        }
        "ModifyVpcAttribute" => {
            let vpc_id = p.required("VpcId")?.to_owned();
            let enable_dns_support = p.bool("EnableDnsSupport.Value")?;
            let enable_dns_hostnames = p.bool("EnableDnsHostnames.Value")?;
            dry_run(p)?;
            registry
                .modify_vpc_attribute(pb::ModifyVpcAttributeRequest {
                    owner_account_id: owner,
                    vpc_id,
                    enable_dns_support,
                    enable_dns_hostnames,
                })
                .await
                .map_err(status)?;
            x.bool("return", true);
        }
        "DescribeVpcAttribute" => {
            let vpc_id = p.required("VpcId")?.to_owned();
            let attribute = p.required("Attribute")?.to_owned();
            if !matches!(
                attribute.as_str(),
                "enableDnsSupport" | "enableDnsHostnames" | "enableNetworkAddressUsageMetrics"
            ) {
                return Err(AwsError::new(
                    "InvalidParameterValue",
                    format!(
                        "Value ({attribute}) for parameter attribute is invalid. Unknown attribute."
                    ),
                ));
            }
            dry_run(p)?;
            let vpc = registry
                .describe_vpcs(pb::DescribeVpcsRequest {
                    owner_account_id: owner,
                    vpc_ids: vec![vpc_id],
                    filters: Vec::new(),
                })
                .await
                .map_err(status)?
                .into_inner()
                .vpcs
                .into_iter()
                .next()
                .ok_or_else(AwsError::internal)?;
            let value = match attribute.as_str() {
                "enableDnsSupport" => vpc.enable_dns_support,
                "enableDnsHostnames" => vpc.enable_dns_hostnames,
                _ => false,
            };
            x.text("vpcId", &vpc.vpc_id);
            x.open(&attribute).bool("value", value).close(&attribute);
        }
        "CreateSubnet" => {
            let vpc_id = p.required("VpcId")?.to_owned();
            let cidr_block = p.required("CidrBlock")?.to_owned();
            dry_run(p)?;
            let subnet = registry
                .create_subnet(pb::CreateSubnetRequest {
                    owner_account_id: owner,
                    vpc_id,
                    cidr_block,
                    availability_zone: p.get("AvailabilityZone").unwrap_or_default().to_owned(),
                })
                .await
                .map_err(status)?
                .into_inner();
            x.open("subnet");
            subnet_xml(&mut x, &subnet, &ctx.region);
            x.close("subnet");
        }
        "DescribeSubnets" => {
            dry_run(p)?;
            let subnet_ids = p.list("SubnetId");
            let ids_given = !subnet_ids.is_empty();
            let subnets = registry
                .describe_subnets(pb::DescribeSubnetsRequest {
                    owner_account_id: owner,
                    subnet_ids,
                    filters: filters(p),
                })
                .await
                .map_err(status)?
                .into_inner()
                .subnets;
            let (subnets, next) =
                paginate(subnets, |s| &s.subnet_id, p, "subnetIds", ids_given, 5)?;
            x.items("subnetSet", &subnets, |x, s| subnet_xml(x, s, &ctx.region));
            if let Some(t) = next {
                x.text("nextToken", &t);
            }
        }
        "DeleteSubnet" => {
            let subnet_id = p.required("SubnetId")?.to_owned();
            dry_run(p)?;
            registry
                .delete_subnet(pb::DeleteSubnetRequest {
                    owner_account_id: owner,
                    subnet_id,
                })
                .await
                .map_err(status)?;
            x.bool("return", true);
        }
        "DescribeVpcEndpointServices" => {
            dry_run(p)?;
            let services = registry
                .describe_vpc_endpoint_services(pb::DescribeVpcEndpointServicesRequest {
                    owner_account_id: owner,
                    service_names: p.list("ServiceName"),
                    filters: filters(p),
                })
                .await
                .map_err(status)?
                .into_inner()
                .services;
            x.strings("serviceNameSet", services.iter().map(|s| &s.service_name));
            x.items("serviceDetailSet", &services, service_xml);
        }
        "CreateVpcEndpoint" => {
            let vpc_id = p.required("VpcId")?.to_owned();
            let service_name = p.required("ServiceName")?.to_owned();
            let private_dns_enabled = p.bool("PrivateDnsEnabled")?;
            let subnet_configurations = p
                .structs("SubnetConfiguration")
                .into_iter()
                .map(|s| pb::SubnetConfiguration {
                    subnet_id: s.get("SubnetId").cloned().unwrap_or_default(),
                    ipv4: s.get("Ipv4").cloned().unwrap_or_default(),
                })
                .collect();
            dry_run(p)?;
            let endpoint = registry
                .create_vpc_endpoint(pb::CreateVpcEndpointRequest {
                    owner_account_id: owner,
                    vpc_id,
                    service_name,
                    // EC2's default endpoint type is Gateway, which KMS does not offer.
                    vpc_endpoint_type: p.get("VpcEndpointType").unwrap_or("Gateway").to_owned(),
                    policy_document: p.get("PolicyDocument").map(str::to_owned),
                    private_dns_enabled,
                    subnet_ids: p.list("SubnetId"),
                    security_group_ids: p.list("SecurityGroupId"),
                    subnet_configurations,
                })
                .await
                .map_err(status)?
                .into_inner();
            x.open("vpcEndpoint");
            endpoint_xml(&mut x, &endpoint);
            x.close("vpcEndpoint");
            if let Some(token) = p.get("ClientToken") {
                x.text("clientToken", token);
            }
        }
        "ModifyVpcEndpoint" => {
            let vpc_endpoint_id = p.required("VpcEndpointId")?.to_owned();
            let reset_policy = p.bool("ResetPolicy")?.unwrap_or(false);
            let private_dns_enabled = p.bool("PrivateDnsEnabled")?;
            dry_run(p)?;
            registry
                .modify_vpc_endpoint(pb::ModifyVpcEndpointRequest {
                    owner_account_id: owner,
                    vpc_endpoint_id,
                    policy_document: p.get("PolicyDocument").map(str::to_owned),
                    reset_policy,
                    private_dns_enabled,
                    add_subnet_ids: p.list("AddSubnetId"),
                    remove_subnet_ids: p.list("RemoveSubnetId"),
                    add_security_group_ids: p.list("AddSecurityGroupId"),
                    remove_security_group_ids: p.list("RemoveSecurityGroupId"),
                })
                .await
                .map_err(status)?;
            x.bool("return", true);
        }
        "DescribeVpcEndpoints" => {
            dry_run(p)?;
            let vpc_endpoint_ids = p.list("VpcEndpointId");
            let ids_given = !vpc_endpoint_ids.is_empty();
            let endpoints = registry
                .describe_vpc_endpoints(pb::DescribeVpcEndpointsRequest {
                    owner_account_id: owner,
                    vpc_endpoint_ids,
                    filters: filters(p),
                })
                .await
                .map_err(status)?
                .into_inner()
                .vpc_endpoints;
            let (endpoints, next) = paginate(
                endpoints,
                |e| e.endpoint.as_ref().map_or("", |e| e.vpce_id.as_str()),
                p,
                "vpcEndpointIds",
                ids_given,
                0,
            )?;
            x.items("vpcEndpointSet", &endpoints, endpoint_xml);
            if let Some(t) = next {
                x.text("nextToken", &t);
            }
        }
        "DeleteVpcEndpoints" => {
            let ids = p.list("VpcEndpointId");
            if ids.is_empty() {
                return Err(AwsError::new(
                    "MissingParameter",
                    "The request must contain the parameter VpcEndpointId",
                ));
            }
            dry_run(p)?;
            let unsuccessful = registry
                .delete_vpc_endpoints(pb::DeleteVpcEndpointsRequest {
                    owner_account_id: owner,
                    vpc_endpoint_ids: ids,
                })
                .await
                .map_err(status)?
                .into_inner()
                .unsuccessful;
            x.items("unsuccessful", &unsuccessful, |x, u| {
                x.open("error")
                    .text("code", &u.code)
                    .text("message", &u.message)
                    .close("error")
                    .text("resourceId", &u.resource_id);
            });
        }
        "DescribeNetworkInterfaces" => {
            dry_run(p)?;
            let network_interface_ids = p.list("NetworkInterfaceId");
            let ids_given = !network_interface_ids.is_empty();
            let interfaces = registry
                .describe_network_interfaces(pb::DescribeNetworkInterfacesRequest {
                    owner_account_id: owner,
                    network_interface_ids,
                    filters: filters(p),
                })
                .await
                .map_err(status)?
                .into_inner()
                .network_interfaces;
            let (interfaces, next) = paginate(
                interfaces,
                |n| n.interface.as_ref().map_or("", |i| i.eni_id.as_str()),
                p,
                "networkInterfaceIds",
                ids_given,
                5,
            )?;
            x.items("networkInterfaceSet", &interfaces, interface_xml);
            if let Some(t) = next {
                x.text("nextToken", &t);
            }
        }
        other => {
            return Err(AwsError::new(
                "UnsupportedOperation",
                format!("The action {other} is not supported by this endpoint."),
            ));
        }
    }
    Ok(x.finish())
}

fn vpc_xml(x: &mut Xml, v: &pb::Vpc) {
    let association = format!("vpc-cidr-assoc-{}", v.vpc_id.trim_start_matches("vpc-"));
    x.text("vpcId", &v.vpc_id)
        .text("ownerId", &v.owner_account_id)
        .text("state", &v.state)
        .text("cidrBlock", &v.cidr_block)
        .items("cidrBlockAssociationSet", [()], |x, ()| {
            x.text("associationId", &association)
                .text("cidrBlock", &v.cidr_block)
                .open("cidrBlockState")
                .text("state", "associated")
                .close("cidrBlockState");
        })
        .text("dhcpOptionsId", "default")
        .text("instanceTenancy", "default")
        .bool("isDefault", false)
        .open("tagSet")
        .close("tagSet");
}

fn subnet_xml(x: &mut Xml, s: &pb::Subnet, region: &str) {
    x.text("subnetId", &s.subnet_id)
        .text(
            "subnetArn",
            &format!(
                "arn:aws:ec2:{region}:{}:subnet/{}",
                s.owner_account_id, s.subnet_id
            ),
        )
        .text("state", "available")
        .text("vpcId", &s.vpc_id)
        .text("ownerId", &s.owner_account_id)
        .text("cidrBlock", &s.cidr_block)
        .text(
            "availableIpAddressCount",
            &s.available_ip_address_count.to_string(),
        )
        .text("availabilityZone", &s.availability_zone)
        .text("availabilityZoneId", &s.availability_zone_id)
        .bool("defaultForAz", false)
        .bool("mapPublicIpOnLaunch", false)
        .bool("assignIpv6AddressOnCreation", false)
        .open("ipv6CidrBlockAssociationSet")
        .close("ipv6CidrBlockAssociationSet")
        .open("tagSet")
        .close("tagSet");
}

fn service_xml(x: &mut Xml, s: &pb::EndpointService) {
    x.text("serviceName", &s.service_name)
        .text("serviceId", &s.service_id)
        .items("serviceType", [()], |x, ()| {
            x.text("serviceType", &s.service_type);
        })
        .text(
            "serviceRegion",
            s.service_name.split('.').nth(2).unwrap_or_default(),
        )
        .strings("availabilityZoneIdSet", &s.availability_zone_ids)
        .strings("availabilityZoneSet", &s.availability_zones)
        .text("owner", &s.owner)
        .strings("baseEndpointDnsNameSet", &s.base_endpoint_dns_names)
        .text("privateDnsName", &s.private_dns_name)
        .items("privateDnsNameSet", [()], |x, ()| {
            x.text("privateDnsName", &s.private_dns_name);
        })
        .bool(
            "vpcEndpointPolicySupported",
            s.vpc_endpoint_policy_supported,
        )
        .bool("acceptanceRequired", s.acceptance_required)
        .bool("managesVpcEndpoints", s.manages_vpc_endpoints)
        .open("tagSet")
        .close("tagSet")
        .text(
            "privateDnsNameVerificationState",
            &s.private_dns_name_verification_state,
        )
        .strings("supportedIpAddressTypeSet", &["ipv4".to_owned()]);
}

fn endpoint_xml(x: &mut Xml, v: &pb::VpcEndpoint) {
    let e = v.endpoint.clone().unwrap_or_default();
    x.text("vpcEndpointId", &e.vpce_id)
        .text("vpcEndpointType", &v.vpc_endpoint_type)
        .text("vpcId", &e.vpc_id)
        .text("serviceName", &e.service_name)
        .text("state", &e.state)
        .text("policyDocument", &e.policy_document)
        .open("routeTableIdSet")
        .close("routeTableIdSet")
        .strings("subnetIdSet", &v.subnet_ids)
        .items("groupSet", &v.security_group_ids, |x, g| {
            x.text("groupId", g);
        })
        .text("ipAddressType", "ipv4")
        .open("dnsOptions")
        .text("dnsRecordIpType", "ipv4")
        .close("dnsOptions")
        .bool("privateDnsEnabled", e.private_dns_enabled)
        .bool("requesterManaged", false)
        .strings("networkInterfaceIdSet", &v.network_interface_ids)
        .items("dnsEntrySet", &v.dns_entries, |x, d| {
            x.text("dnsName", &d.dns_name)
                .text("hostedZoneId", &d.hosted_zone_id);
        })
        .text("creationTimestamp", &iso8601_ms(v.creation_time_ms))
        .open("tagSet")
        .close("tagSet")
        .text("ownerId", &e.owner_account_id);
}

fn interface_xml(x: &mut Xml, n: &pb::NetworkInterfaceDetail) {
    let i = n.interface.clone().unwrap_or_default();
    x.text("networkInterfaceId", &i.eni_id)
        .text("subnetId", &i.subnet_id)
        .text("vpcId", &n.vpc_id)
        .text("availabilityZone", &n.availability_zone)
        .text("availabilityZoneId", &n.availability_zone_id)
        .text("description", &n.description)
        .text("ownerId", &n.owner_account_id)
        .bool("requesterManaged", true)
        .text("status", &n.status)
        .text("macAddress", &n.mac_address)
        .text("privateIpAddress", &i.private_ip)
        .text("privateDnsName", &n.private_dns_name)
        .bool("sourceDestCheck", true)
        .items("groupSet", &n.security_group_ids, |x, g| {
            x.text("groupId", g);
        })
        .items("privateIpAddressesSet", [()], |x, ()| {
            x.text("privateIpAddress", &i.private_ip)
                .text("privateDnsName", &n.private_dns_name)
                .bool("primary", true);
        })
        .open("ipv6AddressesSet")
        .close("ipv6AddressesSet")
        .text("interfaceType", &n.interface_type)
        .open("tagSet")
        .close("tagSet");
}

/// `SubnetId.1` -> `subnetId.1`: CloudTrail's EC2 records use the wire names
/// with a lowercase first letter.
fn audit_name(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Build the CloudTrail record of an EC2 call and append it; fails closed.
async fn record(
    state: &State,
    ctx: &RequestContext,
    action: &str,
    params: &Params,
    outcome: &Result<String, AwsError>,
) -> Result<(), AwsError> {
    let read_only = action.starts_with("Describe");
    let mut request = Map::new();
    for (k, v) in params.iter() {
        request.insert(audit_name(k), json!(v));
    }
    let response = match outcome {
        Ok(_) if !read_only => json!({ "requestId": ctx.request_id }),
        _ => Value::Null,
    };
    crate::audit::append(
        state,
        ctx,
        crate::audit::Event {
            source: "ec2.amazonaws.com",
            name: action,
            region: &ctx.region,
            read_only,
            error: outcome.as_ref().err(),
            request_parameters: Value::Object(request),
            response_elements: response,
            key_arns: &[],
            other_recipients: &[],
            with_vpc_endpoint: true,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_audit_names() {
        assert_eq!(iso8601_ms(1_516_081_617_123), "2018-01-16T05:46:57.123Z");
        assert_eq!(
            crate::audit::iso8601(1_516_081_617_123),
            "2018-01-16T05:46:57Z"
        );
        assert_eq!(audit_name("SubnetId.1"), "subnetId.1");
    }

    #[test]
    fn endpoints_render_with_the_model_location_names() {
        let v = pb::VpcEndpoint {
            endpoint: Some(pb::Endpoint {
                vpce_id: "vpce-0123456789abcdef0".into(),
                vpc_id: "vpc-0123456789abcdef0".into(),
                owner_account_id: "111122223333".into(),
                service_name: "com.amazonaws.us-east-1.kms".into(),
                policy_document: "{\"Statement\": []}".into(),
                private_dns_enabled: true,
                state: "available".into(),
            }),
            vpc_endpoint_type: "Interface".into(),
            subnet_ids: vec!["subnet-1".into()],
            network_interface_ids: vec!["eni-1".into()],
            security_group_ids: vec!["sg-12345678".into()],
            dns_entries: vec![pb::DnsEntry {
                dns_name: "vpce-0123456789abcdef0-abcd1234.kms.us-east-1.vpce.amazonaws.com".into(),
                hosted_zone_id: "Z7HUB22UULQXV".into(),
            }],
            creation_time_ms: 0,
            dns_suffix: "abcd1234".into(),
        };
        let mut x = Xml::response("DescribeVpcEndpoints", "r");
        x.items("vpcEndpointSet", [&v], endpoint_xml);
        let doc = x.finish();
        for part in [
            "<vpcEndpointSet><item><vpcEndpointId>vpce-0123456789abcdef0</vpcEndpointId>",
            "<policyDocument>{&quot;Statement&quot;: []}</policyDocument>",
            "<subnetIdSet><item>subnet-1</item></subnetIdSet>",
            "<groupSet><item><groupId>sg-12345678</groupId></item></groupSet>",
            "<networkInterfaceIdSet><item>eni-1</item></networkInterfaceIdSet>",
            "<dnsEntrySet><item><dnsName>vpce-0123456789abcdef0-abcd1234.kms.us-east-1.vpce.amazonaws.com</dnsName><hostedZoneId>Z7HUB22UULQXV</hostedZoneId></item></dnsEntrySet>",
            "<creationTimestamp>1970-01-01T00:00:00.000Z</creationTimestamp>",
            "<privateDnsEnabled>true</privateDnsEnabled>",
        ] {
            assert!(doc.contains(part), "{part} not in {doc}");
        }
    }
}
