"""EC2 pagination (MaxResults / NextToken) on DescribeVpcs, DescribeSubnets,
DescribeVpcEndpoints and DescribeNetworkInterfaces, with boto3's own
paginators and by hand; EC2's errors for a bad MaxResults, MaxResults with
explicit ids, and a bad token.

Every address here is in 127.0.0.0/8 (VPCs 127.170.0.0/16 .. 127.176.0.0/16).
"""

from __future__ import annotations

import pytest

from e2e_support import ACCOUNTS, client_error, retry_config

REGION = "us-east-1"
CIDRS = [f"127.{n}.0.0/16" for n in range(170, 177)]


@pytest.fixture(scope="module")
def vpcs(stack):
    ec2 = stack.client("ec2", "a")
    made = []
    for n, cidr in zip(range(170, 177), CIDRS):
        vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]
        subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=f"127.{n}.1.0/24", AvailabilityZone=f"{REGION}a")[
            "Subnet"
        ]
        made.append({"vpc": vpc["VpcId"], "subnet": subnet["SubnetId"]})
    endpoints = []
    for m in made[:2]:
        e = ec2.create_vpc_endpoint(
            VpcEndpointType="Interface",
            VpcId=m["vpc"],
            ServiceName=f"com.amazonaws.{REGION}.kms",
            SubnetIds=[m["subnet"]],
            PrivateDnsEnabled=False,
        )["VpcEndpoint"]
        endpoints.append(e["VpcEndpointId"])
    yield {"ec2": ec2, "made": made, "endpoints": endpoints}
    ec2.delete_vpc_endpoints(VpcEndpointIds=endpoints)
    for m in made:
        ec2.delete_subnet(SubnetId=m["subnet"])
        ec2.delete_vpc(VpcId=m["vpc"])


def pages(ec2, op: str, key: str, **kwargs) -> list[list[str]]:
    """Page by hand: the ids of every page, following NextToken."""
    out = []
    token = None
    while True:
        args = dict(kwargs)
        if token:
            args["NextToken"] = token
        resp = getattr(ec2, op)(**args)
        out.append(resp[key])
        token = resp.get("NextToken")
        if not token:
            return out


def test_vpcs_and_subnets_page_through_everything_once(vpcs):
    ec2 = vpcs["ec2"]
    by_cidr = [{"Name": "cidr", "Values": CIDRS}]
    got = pages(ec2, "describe_vpcs", "Vpcs", Filters=by_cidr, MaxResults=5)
    assert [len(p) for p in got] == [5, 2]
    ids = [v["VpcId"] for p in got for v in p]
    assert sorted(ids) == sorted(m["vpc"] for m in vpcs["made"])
    # No MaxResults: everything in one answer, no token.
    one = ec2.describe_vpcs(Filters=by_cidr)
    assert len(one["Vpcs"]) == 7 and "NextToken" not in one
    # boto3's paginator follows the tokens the same way.
    vpc_ids = [m["vpc"] for m in vpcs["made"]]
    paginator = ec2.get_paginator("describe_subnets")
    subnet_pages = list(
        paginator.paginate(Filters=[{"Name": "vpc-id", "Values": vpc_ids}], PaginationConfig={"PageSize": 5})
    )
    assert [len(p["Subnets"]) for p in subnet_pages] == [5, 2]
    assert sorted(s["SubnetId"] for p in subnet_pages for s in p["Subnets"]) == sorted(
        m["subnet"] for m in vpcs["made"]
    )


def test_endpoints_and_interfaces_page(vpcs):
    ec2 = vpcs["ec2"]
    vpc_ids = [m["vpc"] for m in vpcs["made"][:2]]
    got = pages(ec2, "describe_vpc_endpoints", "VpcEndpoints",
                Filters=[{"Name": "vpc-id", "Values": vpc_ids}], MaxResults=1)
    assert [len(p) for p in got] == [1, 1]
    assert sorted(e["VpcEndpointId"] for p in got for e in p) == sorted(vpcs["endpoints"])
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": vpc_ids}], MaxResults=5)
    assert len(enis["NetworkInterfaces"]) == 2 and "NextToken" not in enis


def test_pagination_errors(stack, vpcs):
    import boto3
    from botocore.config import Config

    acct = ACCOUNTS["a"]
    # botocore checks the model's MaxResults range itself: let the server answer.
    ec2 = boto3.client(
        "ec2",
        endpoint_url=stack.endpoint,
        region_name=REGION,
        aws_access_key_id=acct.access_key,
        aws_secret_access_key=acct.secret_key,
        config=retry_config().merge(Config(parameter_validation=False)),
    )
    with client_error("InvalidParameterValue"):
        ec2.describe_vpcs(MaxResults=4)
    with client_error("InvalidParameterValue"):
        ec2.describe_subnets(MaxResults=1001)
    with client_error("InvalidParameterCombination"):
        ec2.describe_vpcs(VpcIds=[vpcs["made"][0]["vpc"]], MaxResults=5)
    with client_error("InvalidPaginationToken"):
        ec2.describe_vpcs(MaxResults=5, NextToken="not a token")
