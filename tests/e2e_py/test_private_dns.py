"""Private DNS, as the seed document describes it, with a DNS client
(dnspython) against the registry's resolvers: with private DNS enabled (and
both VPC DNS attributes on), the standard KMS hostname resolves to the VPC
endpoint's interfaces through that VPC's resolver (its CIDR base + 2), and to
the public endpoint everywhere else; the endpoint-specific DNS names of
DescribeVpcEndpoints resolve to the interfaces through any resolver. A client
that connects to what the name resolved to is served through the endpoint.

Every address here is in 127.0.0.0/8 (VPC 127.150.0.0/16).
"""

from __future__ import annotations

import json
import time

import dns.message
import dns.query
import dns.rdatatype
import pytest

from e2e_support import by_request_id, lookup_events

REGION = "us-east-1"
KMS_HOST = f"kms.{REGION}.amazonaws.com"
CIDR = "127.150.0.0/16"


def resolve(server: str, port: int, name: str) -> list[str]:
    assert server.startswith("127."), server
    q = dns.message.make_query(name, dns.rdatatype.A)
    r = dns.query.udp(q, server, port=port, timeout=2)
    return sorted(rr.address for rrset in r.answer for rr in rrset if rr.rdtype == dns.rdatatype.A)


def eventually(server: str, port: int, name: str, expected: list[str]) -> None:
    """Zones follow registry writes asynchronously: ask until the answer is `expected`."""
    deadline = time.monotonic() + 10
    while True:
        try:
            got = resolve(server, port, name)
        except Exception as e:  # noqa: BLE001 - resolver not bound yet
            got = repr(e)
        if got == expected:
            return
        assert time.monotonic() < deadline, f"{name} via {server}:{port}: {got}, expected {expected}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def private_endpoint(stack):
    ec2 = stack.client("ec2", "a")
    vpc = ec2.create_vpc(CidrBlock=CIDR)["Vpc"]
    ec2.modify_vpc_attribute(VpcId=vpc["VpcId"], EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="127.150.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]
    endpoint = ec2.create_vpc_endpoint(
        VpcEndpointType="Interface",
        VpcId=vpc["VpcId"],
        ServiceName=f"com.amazonaws.{REGION}.kms",
        SubnetIds=[subnet["SubnetId"]],
        PrivateDnsEnabled=True,
    )["VpcEndpoint"]
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=endpoint["NetworkInterfaceIds"])["NetworkInterfaces"][0]
    yield {"endpoint": endpoint, "ip": eni["PrivateIpAddress"], "vpc": vpc["VpcId"]}
    ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=vpc["VpcId"])


def test_kms_hostname_resolves_to_the_endpoint_only_inside_the_vpc(stack, private_endpoint):
    port = stack.dns_port
    ip = private_endpoint["ip"]
    assert ip.startswith("127.150.1."), ip
    # The VPC's resolver: CIDR base + 2.
    eventually("127.150.0.2", port, KMS_HOST, [ip])
    # The public resolver answers with the public endpoint.
    assert resolve(stack.host, port, KMS_HOST) == [stack.host]


def test_endpoint_specific_names_resolve_everywhere(stack, private_endpoint):
    port = stack.dns_port
    ip = private_endpoint["ip"]
    names = [e["DnsName"] for e in private_endpoint["endpoint"]["DnsEntries"]]
    specific = [n for n in names if n.startswith("vpce-")]
    assert specific, names
    for name in specific:
        eventually(stack.host, port, name, [ip])
        assert resolve("127.150.0.2", port, name) == [ip]


def test_a_client_using_the_resolved_name_goes_through_the_endpoint(stack, private_endpoint, cloudtrail):
    """What the SDKs do with private DNS: resolve kms.<region>.amazonaws.com in
    the VPC and connect there (plain HTTP here: TLS is not served yet)."""
    port = stack.dns_port
    eventually("127.150.0.2", port, KMS_HOST, [private_endpoint["ip"]])
    [address] = resolve("127.150.0.2", port, KMS_HOST)
    import boto3

    from e2e_support import ACCOUNTS, retry_config

    acct = ACCOUNTS["a"]
    via = boto3.client(
        "kms",
        endpoint_url=f"http://{address}:{stack.port}",
        region_name=REGION,
        aws_access_key_id=acct.access_key,
        aws_secret_access_key=acct.secret_key,
        config=retry_config(),
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            key = via.create_key(Description="private dns")["KeyMetadata"]
            break
        except Exception:  # noqa: BLE001 - the interface listener binds asynchronously
            assert time.monotonic() < deadline
            time.sleep(0.1)
    out = via.encrypt(KeyId=key["KeyId"], Plaintext=b"resolved privately")
    event = by_request_id(lookup_events(cloudtrail, ("ResourceName", key["Arn"])), out["ResponseMetadata"]["RequestId"])
    assert event is not None
    assert json.loads(event["CloudTrailEvent"])["vpcEndpointId"] == private_endpoint["endpoint"]["VpcEndpointId"]
