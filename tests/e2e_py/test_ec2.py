"""The EC2 Query API of the VPC model with boto3 and the aws CLI: VPCs,
subnets, VPC attributes, endpoint services, interface endpoints for KMS and
their network interfaces, with EC2's XML responses and error codes.

Networking rule: every VPC here has a 127.x CIDR (127.100.0.0/16 to
127.129.0.0/16, one per test), so endpoint interfaces get loopback addresses.
"""

from __future__ import annotations

import ipaddress
import json
import re

import pytest

from e2e_support import ACCOUNT_A, by_request_id, client_error, event_json, raw_post, wait_for_events

REGION = "us-east-1"
KMS_SERVICE = f"com.amazonaws.{REGION}.kms"
FIPS_SERVICE = f"com.amazonaws.{REGION}.kms-fips"
# The seed document's default endpoint policy, byte for byte as EC2 returns it.
DEFAULT_POLICY = (
    '{\n  "Statement": [\n    {\n      "Action": "*", \n      "Effect": "Allow", \n'
    '      "Principal": "*", \n      "Resource": "*"\n    }\n  ]\n}'
)
# The CIDRs of this module's VPCs: 127.100.0.0/16 .. 127.129.0.0/16.
TEST_CIDR_PREFIXES = tuple(f"127.{n}." for n in range(100, 130))
DNS_NAME_RE = re.compile(r"^(vpce-[0-9a-f]{17})-([a-z0-9]{8})(-us-east-1[a-f])?\.kms\.us-east-1\.vpce\.amazonaws\.com$")


@pytest.fixture(scope="module")
def ec2(stack):
    """Account a's EC2 client; what the module leaves behind is deleted at its
    end (the session stack is shared with the other test modules)."""
    client = stack.client("ec2", "a")
    yield client
    cleanup(client)


def cleanup(ec2) -> None:
    ours = [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v["CidrBlock"].startswith(TEST_CIDR_PREFIXES)]
    if not ours:
        return
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": ours}])["VpcEndpoints"]
    if endpoints:
        ec2.delete_vpc_endpoints(VpcEndpointIds=[e["VpcEndpointId"] for e in endpoints])
    for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": ours}])["Subnets"]:
        ec2.delete_subnet(SubnetId=s["SubnetId"])
    for vpc_id in ours:
        ec2.delete_vpc(VpcId=vpc_id)
    left = [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v["CidrBlock"].startswith(TEST_CIDR_PREFIXES)]
    assert left == [], left


@pytest.fixture(scope="module")
def ec2_b(stack):
    return stack.client("ec2", "b")


def make_vpc(ec2, n: int, *, dns: bool = False, zones: str = "a") -> tuple[dict, list[dict]]:
    """VPC 127.n.0.0/16 with one /24 subnet per zone letter (127.n.1.0/24 in
    the first...); both DNS attributes on when `dns`."""
    vpc = ec2.create_vpc(CidrBlock=f"127.{n}.0.0/16")["Vpc"]
    subnets = [
        ec2.create_subnet(
            VpcId=vpc["VpcId"], CidrBlock=f"127.{n}.{i + 1}.0/24", AvailabilityZone=f"{REGION}{z}"
        )["Subnet"]
        for i, z in enumerate(zones)
    ]
    if dns:
        ec2.modify_vpc_attribute(VpcId=vpc["VpcId"], EnableDnsHostnames={"Value": True})
    return vpc, subnets


def make_endpoint(ec2, vpc: dict, subnets: list[dict], **kwargs) -> dict:
    kwargs.setdefault("PrivateDnsEnabled", False)
    return ec2.create_vpc_endpoint(
        VpcEndpointType="Interface",
        VpcId=vpc["VpcId"],
        ServiceName=KMS_SERVICE,
        SubnetIds=[s["SubnetId"] for s in subnets],
        **kwargs,
    )["VpcEndpoint"]


def describe_endpoint(ec2, vpce_id: str) -> dict:
    return ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce_id])["VpcEndpoints"][0]


# -- VPCs and subnets ----------------------------------------------------------


def test_create_describe_delete_vpc(ec2, ec2_b):
    vpc = ec2.create_vpc(CidrBlock="127.100.0.0/16")["Vpc"]
    assert re.match(r"^vpc-[0-9a-f]{17}$", vpc["VpcId"])
    assert vpc["CidrBlock"] == "127.100.0.0/16"
    assert vpc["OwnerId"] == ACCOUNT_A.account_id
    assert vpc["State"] == "available"
    assert vpc["IsDefault"] is False
    assert vpc["CidrBlockAssociationSet"][0]["CidrBlock"] == "127.100.0.0/16"
    assert vpc["CidrBlockAssociationSet"][0]["CidrBlockState"] == {"State": "associated"}

    assert ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"] == [vpc]
    by_cidr = ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["127.100.0.0/16"]}])["Vpcs"]
    assert [v["VpcId"] for v in by_cidr] == [vpc["VpcId"]]
    # Another account does not see it.
    with client_error("InvalidVpcID.NotFound"):
        ec2_b.describe_vpcs(VpcIds=[vpc["VpcId"]])
    assert vpc["VpcId"] not in [v["VpcId"] for v in ec2_b.describe_vpcs()["Vpcs"]]

    ec2.delete_vpc(VpcId=vpc["VpcId"])
    with client_error("InvalidVpcID.NotFound") as err:
        ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])
    assert err["error"].response["Error"]["Message"] == f"The vpc ID '{vpc['VpcId']}' does not exist"


def test_create_vpc_refuses_bad_blocks(ec2):
    with client_error("InvalidVpc.Range"):
        ec2.create_vpc(CidrBlock="127.0.0.0/8")
    with client_error("InvalidParameterValue"):
        ec2.create_vpc(CidrBlock="127.101.0.1/16")


def test_vpc_dns_attributes(ec2):
    vpc, _ = make_vpc(ec2, 102, zones="")
    vpc_id = vpc["VpcId"]
    support = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsSupport")
    assert support["VpcId"] == vpc_id
    assert support["EnableDnsSupport"] == {"Value": True}
    hostnames = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames")
    assert hostnames["EnableDnsHostnames"] == {"Value": False}

    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames")["EnableDnsHostnames"] == {
        "Value": True
    }
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": False})
    assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsSupport")["EnableDnsSupport"] == {
        "Value": False
    }
    # EC2 changes one attribute per request.
    with client_error("InvalidParameterCombination"):
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True}, EnableDnsHostnames={"Value": True})
    with client_error("InvalidVpcID.NotFound"):
        ec2.modify_vpc_attribute(VpcId="vpc-0123456789abcdef0", EnableDnsSupport={"Value": True})


def test_subnets(ec2):
    vpc, [a, b] = make_vpc(ec2, 103, zones="ab")
    assert re.match(r"^subnet-[0-9a-f]{17}$", a["SubnetId"])
    assert a["VpcId"] == vpc["VpcId"]
    assert a["CidrBlock"] == "127.103.1.0/24"
    assert a["AvailabilityZone"] == "us-east-1a"
    assert b["AvailabilityZone"] == "us-east-1b"
    assert b["AvailabilityZoneId"] == "use1-az2"
    assert a["AvailableIpAddressCount"] == 251
    assert a["State"] == "available"
    assert a["OwnerId"] == ACCOUNT_A.account_id
    assert a["SubnetArn"] == f"arn:aws:ec2:{REGION}:{ACCOUNT_A.account_id}:subnet/{a['SubnetId']}"

    got = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    assert [s["SubnetId"] for s in got] == [a["SubnetId"], b["SubnetId"]]
    assert ec2.describe_subnets(SubnetIds=[b["SubnetId"]])["Subnets"] == [b]

    with client_error("InvalidSubnet.Range"):
        ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="127.104.1.0/24")
    with client_error("InvalidSubnet.Conflict"):
        ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="127.103.1.128/25")
    with client_error("InvalidVpcID.NotFound"):
        ec2.create_subnet(VpcId="vpc-0123456789abcdef0", CidrBlock="127.103.9.0/24")

    ec2.delete_subnet(SubnetId=b["SubnetId"])
    with client_error("InvalidSubnetID.NotFound"):
        ec2.describe_subnets(SubnetIds=[b["SubnetId"]])


def test_deleting_what_is_in_use_is_a_dependency_violation(ec2):
    vpc, [subnet] = make_vpc(ec2, 105)
    endpoint = make_endpoint(ec2, vpc, [subnet])
    with client_error("DependencyViolation") as err:
        ec2.delete_vpc(VpcId=vpc["VpcId"])
    assert err["error"].response["Error"]["Message"] == (
        f"The vpc '{vpc['VpcId']}' has dependencies and cannot be deleted."
    )
    with client_error("DependencyViolation"):
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])

    assert ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])["Unsuccessful"] == []
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=vpc["VpcId"])


# -- endpoint services and endpoints ------------------------------------------------


def test_describe_vpc_endpoint_services(ec2):
    resp = ec2.describe_vpc_endpoint_services()
    assert KMS_SERVICE in resp["ServiceNames"]
    assert FIPS_SERVICE in resp["ServiceNames"]
    kms = next(d for d in resp["ServiceDetails"] if d["ServiceName"] == KMS_SERVICE)
    assert kms["ServiceType"] == [{"ServiceType": "Interface"}]
    assert kms["Owner"] == "amazon"
    assert kms["PrivateDnsName"] == f"kms.{REGION}.amazonaws.com"
    assert kms["BaseEndpointDnsNames"] == [f"kms.{REGION}.vpce.amazonaws.com"]
    assert kms["VpcEndpointPolicySupported"] is True
    assert kms["AcceptanceRequired"] is False
    assert f"{REGION}a" in kms["AvailabilityZones"]
    assert re.match(r"^vpce-svc-[0-9a-f]{17}$", kms["ServiceId"])
    fips = next(d for d in resp["ServiceDetails"] if d["ServiceName"] == FIPS_SERVICE)
    assert fips["AvailabilityZones"] == []

    only = ec2.describe_vpc_endpoint_services(ServiceNames=[KMS_SERVICE])
    assert only["ServiceNames"] == [KMS_SERVICE]
    with client_error("InvalidServiceName"):
        ec2.describe_vpc_endpoint_services(ServiceNames=[f"com.amazonaws.{REGION}.s3"])


def test_create_interface_endpoint(ec2):
    vpc, [a, b] = make_vpc(ec2, 106, dns=True, zones="ab")
    endpoint = ec2.create_vpc_endpoint(
        VpcEndpointType="Interface",
        VpcId=vpc["VpcId"],
        ServiceName=KMS_SERVICE,
        SubnetIds=[a["SubnetId"], b["SubnetId"]],
        SecurityGroupIds=["sg-0123456789abcdef0"],
        PrivateDnsEnabled=True,
        ClientToken="token-106",
    )
    assert endpoint["ClientToken"] == "token-106"
    e = endpoint["VpcEndpoint"]
    vpce_id = e["VpcEndpointId"]
    assert re.match(r"^vpce-[0-9a-f]{17}$", vpce_id)
    assert e["VpcEndpointType"] == "Interface"
    assert e["VpcId"] == vpc["VpcId"]
    assert e["ServiceName"] == KMS_SERVICE
    assert e["State"] == "available"
    assert e["PolicyDocument"] == DEFAULT_POLICY
    assert e["SubnetIds"] == [a["SubnetId"], b["SubnetId"]]
    assert e["Groups"] == [{"GroupId": "sg-0123456789abcdef0"}]
    assert e["PrivateDnsEnabled"] is True
    assert e["RequesterManaged"] is False
    assert e["OwnerId"] == ACCOUNT_A.account_id
    assert len(e["NetworkInterfaceIds"]) == 2
    assert e["CreationTimestamp"].year >= 2024

    names = [d["DnsName"] for d in e["DnsEntries"]]
    assert len(names) == 4
    regional, zonal_a, zonal_b, private = names
    m = DNS_NAME_RE.match(regional)
    assert m and m.group(1) == vpce_id and m.group(3) is None, regional
    suffix = m.group(2)
    assert zonal_a == f"{vpce_id}-{suffix}-us-east-1a.kms.us-east-1.vpce.amazonaws.com"
    assert zonal_b == f"{vpce_id}-{suffix}-us-east-1b.kms.us-east-1.vpce.amazonaws.com"
    assert private == f"kms.{REGION}.amazonaws.com"
    assert all(d["HostedZoneId"] for d in e["DnsEntries"])

    # The describe view is the same, and the names are stable.
    assert describe_endpoint(ec2, vpce_id) == e

    enis = ec2.describe_network_interfaces(NetworkInterfaceIds=e["NetworkInterfaceIds"])["NetworkInterfaces"]
    assert len(enis) == 2
    for eni, subnet in zip(enis, [a, b]):
        assert eni["SubnetId"] == subnet["SubnetId"]
        assert eni["VpcId"] == vpc["VpcId"]
        assert eni["AvailabilityZone"] == subnet["AvailabilityZone"]
        assert eni["Description"] == f"VPC Endpoint Interface {vpce_id}"
        assert eni["InterfaceType"] == "vpc_endpoint"
        assert eni["RequesterManaged"] is True
        assert eni["Status"] == "in-use"
        assert eni["OwnerId"] == ACCOUNT_A.account_id
        ip = ipaddress.ip_address(eni["PrivateIpAddress"])
        assert ip.is_loopback
        assert ip in ipaddress.ip_network(subnet["CidrBlock"])
        assert eni["PrivateIpAddresses"][0]["PrivateIpAddress"] == eni["PrivateIpAddress"]
        assert eni["PrivateIpAddresses"][0]["Primary"] is True
        assert eni["Groups"] == [{"GroupId": "sg-0123456789abcdef0"}]
    by_vpc = ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    assert sorted(n["NetworkInterfaceId"] for n in by_vpc["NetworkInterfaces"]) == sorted(e["NetworkInterfaceIds"])
    # One address of each subnet is now in use.
    assert ec2.describe_subnets(SubnetIds=[a["SubnetId"]])["Subnets"][0]["AvailableIpAddressCount"] == 250


def test_private_dns_needs_both_vpc_dns_attributes(ec2):
    vpc, [subnet] = make_vpc(ec2, 107)
    # Private DNS is EC2's default for AWS services; the VPC lacks enableDnsHostnames.
    with client_error("InvalidParameter") as err:
        ec2.create_vpc_endpoint(
            VpcEndpointType="Interface", VpcId=vpc["VpcId"], ServiceName=KMS_SERVICE, SubnetIds=[subnet["SubnetId"]]
        )
    assert err["error"].response["Error"]["Message"] == (
        "Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC attributes "
        f"set to true for {vpc['VpcId']}"
    )
    endpoint = make_endpoint(ec2, vpc, [subnet], PrivateDnsEnabled=False)
    assert endpoint["PrivateDnsEnabled"] is False
    assert f"kms.{REGION}.amazonaws.com" not in [d["DnsName"] for d in endpoint["DnsEntries"]]
    with client_error("InvalidParameter"):
        ec2.modify_vpc_endpoint(VpcEndpointId=endpoint["VpcEndpointId"], PrivateDnsEnabled=True)
    ec2.modify_vpc_attribute(VpcId=vpc["VpcId"], EnableDnsHostnames={"Value": True})
    ec2.modify_vpc_endpoint(VpcEndpointId=endpoint["VpcEndpointId"], PrivateDnsEnabled=True)
    e = describe_endpoint(ec2, endpoint["VpcEndpointId"])
    assert e["PrivateDnsEnabled"] is True
    assert e["DnsEntries"][-1]["DnsName"] == f"kms.{REGION}.amazonaws.com"


def test_only_interface_endpoints_for_kms(ec2):
    vpc, [subnet] = make_vpc(ec2, 108)
    # EC2's default endpoint type is Gateway, which KMS does not offer.
    with client_error("InvalidParameter") as err:
        ec2.create_vpc_endpoint(VpcId=vpc["VpcId"], ServiceName=KMS_SERVICE, SubnetIds=[subnet["SubnetId"]])
    assert err["error"].response["Error"]["Message"] == (
        "Endpoint type (Gateway) does not match available service types ([Interface])."
    )
    # kms-fips exists but no zone offers an interface endpoint for it.
    with client_error("InvalidParameter") as err:
        ec2.create_vpc_endpoint(
            VpcEndpointType="Interface",
            VpcId=vpc["VpcId"],
            ServiceName=FIPS_SERVICE,
            SubnetIds=[subnet["SubnetId"]],
            PrivateDnsEnabled=False,
        )
    assert "does not support the availability zone of the subnet" in err["error"].response["Error"]["Message"]
    with client_error("InvalidServiceName"):
        ec2.create_vpc_endpoint(
            VpcEndpointType="Interface", VpcId=vpc["VpcId"], ServiceName=f"com.amazonaws.{REGION}.s3"
        )
    with client_error("MalformedPolicyDocument"):
        make_endpoint(ec2, vpc, [subnet], PolicyDocument="not json")


def test_modify_vpc_endpoint(ec2):
    vpc, [a, b] = make_vpc(ec2, 109, zones="ab")
    endpoint = make_endpoint(ec2, vpc, [a])
    vpce_id = endpoint["VpcEndpointId"]
    policy = json.dumps(
        {
            "Statement": [
                {
                    "Sid": "Allow decrypt and view permission",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A.account_id}:root"},
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:ListAliases", "kms:ListKeys"],
                    "Resource": "*",
                }
            ]
        }
    )
    assert ec2.modify_vpc_endpoint(VpcEndpointId=vpce_id, PolicyDocument=policy)["Return"] is True
    assert describe_endpoint(ec2, vpce_id)["PolicyDocument"] == policy

    ec2.modify_vpc_endpoint(VpcEndpointId=vpce_id, ResetPolicy=True)
    assert describe_endpoint(ec2, vpce_id)["PolicyDocument"] == DEFAULT_POLICY

    ec2.modify_vpc_endpoint(VpcEndpointId=vpce_id, AddSubnetIds=[b["SubnetId"]], RemoveSubnetIds=[a["SubnetId"]])
    e = describe_endpoint(ec2, vpce_id)
    assert e["SubnetIds"] == [b["SubnetId"]]
    assert len(e["NetworkInterfaceIds"]) == 1
    assert e["NetworkInterfaceIds"][0] not in endpoint["NetworkInterfaceIds"]
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=e["NetworkInterfaceIds"])["NetworkInterfaces"][0]
    assert ipaddress.ip_address(eni["PrivateIpAddress"]) in ipaddress.ip_network("127.109.2.0/24")
    # The DNS name keeps its suffix; the zonal name follows the subnets.
    assert e["DnsEntries"][0]["DnsName"] == endpoint["DnsEntries"][0]["DnsName"]
    assert e["DnsEntries"][1]["DnsName"].endswith("-us-east-1b.kms.us-east-1.vpce.amazonaws.com")
    # The removed subnet is free again.
    ec2.delete_subnet(SubnetId=a["SubnetId"])

    with client_error("InvalidVpcEndpointId.NotFound"):
        ec2.modify_vpc_endpoint(VpcEndpointId="vpce-0123456789abcdef0", ResetPolicy=True)


def test_describe_vpc_endpoints_filters(ec2, ec2_b):
    vpc, [subnet] = make_vpc(ec2, 110)
    other, _ = make_vpc(ec2, 111, zones="")
    one = make_endpoint(ec2, vpc, [subnet])
    two = make_endpoint(ec2, other, [])

    def ids(**kwargs):
        return [e["VpcEndpointId"] for e in ec2.describe_vpc_endpoints(**kwargs)["VpcEndpoints"]]

    assert ids(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}]) == [one["VpcEndpointId"]]
    assert ids(Filters=[{"Name": "vpc-endpoint-id", "Values": [two["VpcEndpointId"]]}]) == [two["VpcEndpointId"]]
    both = ids(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"], other["VpcId"]]}])
    assert both == [one["VpcEndpointId"], two["VpcEndpointId"]]
    assert ids(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc["VpcId"], other["VpcId"]]},
            {"Name": "service-name", "Values": [KMS_SERVICE]},
            {"Name": "vpc-endpoint-state", "Values": ["available"]},
            {"Name": "vpc-endpoint-type", "Values": ["Interface"]},
        ]
    ) == both
    assert ids(Filters=[{"Name": "vpc-endpoint-type", "Values": ["Gateway"]}]) == []
    assert one["VpcEndpointId"] in ids()
    assert one["VpcEndpointId"] not in [e["VpcEndpointId"] for e in ec2_b.describe_vpc_endpoints()["VpcEndpoints"]]

    with client_error("InvalidVpcEndpointId.NotFound"):
        ec2.describe_vpc_endpoints(VpcEndpointIds=["vpce-0123456789abcdef0"])
    with client_error("InvalidVpcEndpointId.NotFound"):
        ec2_b.describe_vpc_endpoints(VpcEndpointIds=[one["VpcEndpointId"]])
    with client_error("InvalidParameterValue"):
        ec2.describe_vpc_endpoints(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])


def test_delete_vpc_endpoints_reports_unknown_ids(ec2):
    vpc, [subnet] = make_vpc(ec2, 112)
    endpoint = make_endpoint(ec2, vpc, [subnet])
    unknown = "vpce-0123456789abcdef0"
    resp = ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"], unknown])
    assert resp["Unsuccessful"] == [
        {
            "Error": {
                "Code": "InvalidVpcEndpoint.NotFound",
                "Message": f"The Vpc Endpoint Id '{unknown}' does not exist",
            },
            "ResourceId": unknown,
        }
    ]
    with client_error("InvalidVpcEndpointId.NotFound"):
        ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])
    # Its interfaces are gone.
    with client_error("InvalidNetworkInterfaceID.NotFound"):
        ec2.describe_network_interfaces(NetworkInterfaceIds=endpoint["NetworkInterfaceIds"])


# -- protocol ------------------------------------------------------------------


FORM = "application/x-www-form-urlencoded; charset=utf-8"


def test_raw_query_protocol_answers_ec2_xml(endpoint):
    ok = raw_post(endpoint, "Action=DescribeVpcs&Version=2016-11-15", target=None, service="ec2", content_type=FORM)
    assert ok.status == 200, ok.body
    body = ok.body.decode()
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert '<DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">' in body
    assert f"<requestId>{ok.header('x-amzn-requestid')}</requestId>" in body
    assert "<vpcSet>" in body

    err = raw_post(
        endpoint,
        "Action=DescribeVpcs&Version=2016-11-15&VpcId.1=vpc-0123456789abcdef0",
        target=None,
        service="ec2",
        content_type=FORM,
    )
    assert err.status == 400
    assert err.body.decode().endswith(
        "<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code>"
        "<Message>The vpc ID &apos;vpc-0123456789abcdef0&apos; does not exist</Message></Error></Errors>"
        f"<RequestID>{err.header('x-amzn-requestid')}</RequestID></Response>"
    )
    missing = raw_post(endpoint, "Version=2016-11-15", target=None, service="ec2", content_type=FORM)
    assert missing.status == 400
    assert "<Code>MissingAction</Code>" in missing.body.decode()


def test_dry_run_and_unsupported_actions(ec2):
    with client_error("DryRunOperation", 412):
        ec2.describe_vpcs(DryRun=True)
    with client_error("UnsupportedOperation"):
        ec2.describe_instances()
    with client_error("MissingParameter"):
        ec2.describe_vpc_attribute(VpcId="vpc-0123456789abcdef0", Attribute="")


def test_ec2_calls_are_audited(ec2, cloudtrail):
    resp = ec2.create_vpc(CidrBlock="127.113.0.0/16")
    request_id = resp["ResponseMetadata"]["RequestId"]
    events = wait_for_events(
        cloudtrail,
        ("EventSource", "ec2.amazonaws.com"),
        lambda evs: by_request_id(evs, request_id) is not None,
    )
    event = by_request_id(events, request_id)
    assert event is not None
    assert event["EventName"] == "CreateVpc"
    record = event_json(event)
    assert record["eventSource"] == "ec2.amazonaws.com"
    assert record["eventName"] == "CreateVpc"
    assert record["awsRegion"] == REGION
    assert record["requestParameters"]["cidrBlock"] == "127.113.0.0/16"
    assert record["userIdentity"]["accountId"] == ACCOUNT_A.account_id
    assert record["readOnly"] is False


# -- the aws CLI -----------------------------------------------------------------


def test_cli_creates_an_endpoint_and_shows_its_policy_as_the_seed_does(aws, tmp_path):
    vpc_id = aws.json("ec2", "create-vpc", "--cidr-block", "127.114.0.0/16")["Vpc"]["VpcId"]
    aws.run("ec2", "modify-vpc-attribute", "--vpc-id", vpc_id, "--enable-dns-hostnames", '{"Value": true}')
    subnet_id = aws.json(
        "ec2", "create-subnet", "--vpc-id", vpc_id, "--cidr-block", "127.114.1.0/24", "--availability-zone", "us-east-1a"
    )["Subnet"]["SubnetId"]
    endpoint = aws.json(
        "ec2",
        "create-vpc-endpoint",
        "--vpc-endpoint-type", "Interface",
        "--vpc-id", vpc_id,
        "--service-name", KMS_SERVICE,
        "--subnet-ids", subnet_id,
        "--private-dns-enabled",
    )["VpcEndpoint"]
    vpce_id = endpoint["VpcEndpointId"]
    assert endpoint["PrivateDnsEnabled"] is True

    # The seed's command, verbatim: the default policy.
    out = aws.run(
        "ec2", "describe-vpc-endpoints",
        "--query", f"VpcEndpoints[?VpcEndpointId==`{vpce_id}`].[PolicyDocument]",
        "--output", "text",
    ).stdout
    assert out.rstrip("\n") == DEFAULT_POLICY
    assert json.loads(out) == json.loads(DEFAULT_POLICY)

    policy = {
        "Statement": [
            {
                "Sid": "Access for a specific account",
                "Principal": {"AWS": "*"},
                "Action": "kms:*",
                "Effect": "Deny",
                "Resource": f"arn:aws:kms:*:{ACCOUNT_A.account_id}:key/*",
                "Condition": {"StringNotEquals": {"aws:PrincipalAccount": ACCOUNT_A.account_id}},
            }
        ]
    }
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(policy, indent=2))
    ok = aws.json("ec2", "modify-vpc-endpoint", "--vpc-endpoint-id", vpce_id, "--policy-document", f"file://{policy_file}")
    assert ok == {"Return": True}
    out = aws.text("ec2", "describe-vpc-endpoints", "--query", f"VpcEndpoints[?VpcEndpointId==`{vpce_id}`].[PolicyDocument]")
    assert json.loads(out) == policy

    names = aws.text("ec2", "describe-vpc-endpoints", "--vpc-endpoint-ids", vpce_id, "--query", "VpcEndpoints[0].DnsEntries[].DnsName").split()
    assert DNS_NAME_RE.match(names[0])
    assert names[-1] == f"kms.{REGION}.amazonaws.com"
    ips = aws.text(
        "ec2", "describe-network-interfaces",
        "--filters", f"Name=description,Values=VPC Endpoint Interface {vpce_id}",
        "--query", "NetworkInterfaces[].PrivateIpAddress",
    ).split()
    assert len(ips) == 1 and ipaddress.ip_address(ips[0]) in ipaddress.ip_network("127.114.1.0/24")

    # Errors come back as EC2's codes through the CLI too.
    failed = aws.run("ec2", "delete-vpc", "--vpc-id", vpc_id, check=False)
    assert failed.returncode != 0
    assert "DependencyViolation" in failed.stderr

    deleted = aws.json("ec2", "delete-vpc-endpoints", "--vpc-endpoint-ids", vpce_id)
    assert deleted == {"Unsuccessful": []}
    aws.run("ec2", "delete-subnet", "--subnet-id", subnet_id)
    aws.run("ec2", "delete-vpc", "--vpc-id", vpc_id)
