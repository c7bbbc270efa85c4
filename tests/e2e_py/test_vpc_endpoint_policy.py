"""The seed document's claims about VPC endpoint policies and endpoint
conditions, through real endpoint networking: boto3 clients whose endpoint URL
is an endpoint network interface's private IP (a 127.x address of the VPC's
subnet), next to clients of the public endpoint.

- The default endpoint policy allows everything the key policy allows.
- A restrictive endpoint policy denies what it does not allow, with AWS's
  message, on connections that were already open when it changed; such
  requests (allowed otherwise) are not recorded in CloudTrail.
- The aws:PrincipalAccount endpoint policy keeps other accounts out.
- A key policy with aws:sourceVpce allows use only through that endpoint.
- CloudTrail records of endpoint requests carry vpcEndpointId.
"""

from __future__ import annotations

import json
import time

import pytest

from e2e_support import ACCOUNT_A, ACCOUNT_B, by_request_id, client_error, lookup_events

REGION = "us-east-1"
KMS_SERVICE = f"com.amazonaws.{REGION}.kms"
CIDR_PREFIX = "127.140."


@pytest.fixture(scope="module")
def ec2(stack):
    client = stack.client("ec2", "a")
    yield client
    ours = [v["VpcId"] for v in client.describe_vpcs()["Vpcs"] if v["CidrBlock"].startswith(CIDR_PREFIX)]
    if ours:
        eps = client.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": ours}])["VpcEndpoints"]
        if eps:
            client.delete_vpc_endpoints(VpcEndpointIds=[e["VpcEndpointId"] for e in eps])
        for s in client.describe_subnets(Filters=[{"Name": "vpc-id", "Values": ours}])["Subnets"]:
            client.delete_subnet(SubnetId=s["SubnetId"])
        for vpc_id in ours:
            client.delete_vpc(VpcId=vpc_id)


@pytest.fixture(scope="module")
def vpce(ec2, stack):
    """An interface endpoint for KMS in VPC 127.140.0.0/16, and its interface URL."""
    vpc = ec2.create_vpc(CidrBlock="127.140.0.0/16")["Vpc"]
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="127.140.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]
    endpoint = ec2.create_vpc_endpoint(
        VpcEndpointType="Interface",
        VpcId=vpc["VpcId"],
        ServiceName=KMS_SERVICE,
        SubnetIds=[subnet["SubnetId"]],
        PrivateDnsEnabled=False,
    )["VpcEndpoint"]
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=endpoint["NetworkInterfaceIds"])["NetworkInterfaces"][0]
    ip = eni["PrivateIpAddress"]
    assert ip.startswith(CIDR_PREFIX), ip
    return {"id": endpoint["VpcEndpointId"], "vpc": vpc["VpcId"], "url": f"http://{ip}:{stack.port}"}


def kms_via(stack, url: str, account: str = "a"):
    import boto3

    from e2e_support import ACCOUNTS, retry_config

    acct = ACCOUNTS[account]
    return boto3.client(
        "kms",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=acct.access_key,
        aws_secret_access_key=acct.secret_key,
        config=retry_config(),
    )


def wait_serving(client) -> None:
    """The gateway binds an interface a moment after the endpoint exists."""
    for _ in range(50):
        try:
            client.list_keys(Limit=1)
            return
        except Exception:  # noqa: BLE001 - connection refused until bound
            time.sleep(0.1)
    client.list_keys(Limit=1)


def set_policy(ec2, vpce_id: str, policy: dict | None) -> None:
    if policy is None:
        ec2.modify_vpc_endpoint(VpcEndpointId=vpce_id, ResetPolicy=True)
    else:
        ec2.modify_vpc_endpoint(VpcEndpointId=vpce_id, PolicyDocument=json.dumps(policy))


def eventually_denied(call):
    """The registry pushes endpoint policy changes to the gateway asynchronously:
    retry `call` until it is denied (at most 10 s) and return the ClientError."""
    from botocore.exceptions import ClientError

    deadline = time.monotonic() + 10
    while True:
        try:
            call()
        except ClientError as e:
            assert e.response["Error"]["Code"] == "AccessDeniedException", e.response
            return e
        assert time.monotonic() < deadline, "the endpoint policy change never took effect"
        time.sleep(0.1)


def eventually_allowed(call):
    """Retry `call` until it succeeds (at most 10 s)."""
    from botocore.exceptions import ClientError

    deadline = time.monotonic() + 10
    while True:
        try:
            return call()
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def recorded(cloudtrail, request_id: str, key_arn: str) -> bool:
    events = lookup_events(cloudtrail, ("ResourceName", key_arn))
    assert events, "the key's other calls are recorded"
    return by_request_id(events, request_id) is not None


def test_default_policy_allows_and_records_the_endpoint(stack, vpce, kms, cloudtrail, make_key):
    via = kms_via(stack, vpce["url"])
    wait_serving(via)
    key = make_key()
    out = via.encrypt(KeyId=key["KeyId"], Plaintext=b"through the endpoint")
    rid = out["ResponseMetadata"]["RequestId"]
    assert kms.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"] == b"through the endpoint"
    event = by_request_id(lookup_events(cloudtrail, ("ResourceName", key["Arn"])), rid)
    assert event is not None
    record = json.loads(event["CloudTrailEvent"])
    assert record["vpcEndpointId"] == vpce["id"]


def test_endpoint_policy_limits_operations_on_open_connections(stack, ec2, vpce, kms, cloudtrail, make_key):
    via = kms_via(stack, vpce["url"])
    wait_serving(via)
    key = make_key()
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p")["CiphertextBlob"]
    # The same client (keep-alive connection) before and after the change.
    via.encrypt(KeyId=key["KeyId"], Plaintext=b"allowed by the default policy")
    set_policy(ec2, vpce["id"], {
        "Statement": [{
            "Sid": "Allow decrypt and view permission",
            "Principal": {"AWS": ACCOUNT_A.root_arn},
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:ListAliases", "kms:ListKeys"],
            "Resource": key["Arn"],
        }]
    })
    try:
        denied = eventually_denied(lambda: via.encrypt(KeyId=key["KeyId"], Plaintext=b"x"))
        assert denied.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        msg = denied.response["Error"]["Message"]
        assert msg.startswith(f"User: {ACCOUNT_A.root_arn} is not authorized to perform: kms:Encrypt on resource: {key['Arn']}"), msg
        assert "VPC endpoint policy" in msg, msg
        assert via.decrypt(CiphertextBlob=blob)["Plaintext"] == b"p"
        assert via.describe_key(KeyId=key["Arn"])["KeyMetadata"]["KeyId"] == key["KeyId"]
        rid = denied.response["ResponseMetadata"]["RequestId"]
        # Denied only by the endpoint policy: not recorded.
        assert not recorded(cloudtrail, rid, key["Arn"])
        # The public endpoint is not behind the endpoint policy.
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"public")
    finally:
        set_policy(ec2, vpce["id"], None)
    eventually_allowed(lambda: via.encrypt(KeyId=key["KeyId"], Plaintext=b"allowed again after ResetPolicy"))


def test_principal_account_endpoint_policy_keeps_other_accounts_out(stack, ec2, vpce, kms, make_key):
    key = make_key()
    # The key policy lets account B use the key...
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
             "Principal": {"AWS": ACCOUNT_A.root_arn}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "Account B may encrypt", "Effect": "Allow",
             "Principal": {"AWS": ACCOUNT_B.root_arn}, "Action": "kms:Encrypt", "Resource": "*"},
        ],
    }))
    kms_via(stack, stack.endpoint, "b").encrypt(KeyId=key["Arn"], Plaintext=b"public: allowed")
    # ...but the seed's aws:PrincipalAccount policy on the endpoint keeps B out of it.
    set_policy(ec2, vpce["id"], {
        "Statement": [
            {"Principal": "*", "Action": "*", "Effect": "Allow", "Resource": "*"},
            {"Sid": "Access for a specific account", "Principal": {"AWS": "*"}, "Action": "kms:*",
             "Effect": "Deny", "Resource": f"arn:aws:kms:*:{ACCOUNT_A.account_id}:key/*",
             "Condition": {"StringNotEquals": {"aws:PrincipalAccount": ACCOUNT_A.account_id}}},
        ]
    })
    try:
        via_b = kms_via(stack, vpce["url"], "b")
        denied = eventually_denied(lambda: via_b.encrypt(KeyId=key["Arn"], Plaintext=b"x"))
        assert "explicit deny in a VPC endpoint policy" in denied.response["Error"]["Message"]
        kms_via(stack, vpce["url"], "a").encrypt(KeyId=key["Arn"], Plaintext=b"own account: allowed")
    finally:
        set_policy(ec2, vpce["id"], None)
    eventually_allowed(lambda: kms_via(stack, vpce["url"], "b").encrypt(KeyId=key["Arn"], Plaintext=b"allowed again"))


def test_key_policy_source_vpce_condition(stack, vpce, kms, make_key):
    """The seed's example-key-1 (its placeholders filled in): encryption only
    through the named VPC endpoint."""
    key = make_key()
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps({
        "Id": "example-key-1",
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Enable IAM user permissions", "Effect": "Allow",
             "Principal": {"AWS": [ACCOUNT_A.account_id]}, "Action": ["kms:*"], "Resource": "*"},
            {"Sid": "Restrict usage to my VPC endpoint", "Effect": "Deny", "Principal": "*",
             "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
             "Resource": "*",
             "Condition": {"StringNotEquals": {"aws:sourceVpce": vpce["id"]}}},
        ],
    }))
    with client_error("AccessDeniedException") as denied:
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"public")
    assert "explicit deny in a resource-based policy" in denied["error"].response["Error"]["Message"]
    via = kms_via(stack, vpce["url"])
    wait_serving(via)
    blob = via.encrypt(KeyId=key["KeyId"], Plaintext=b"through my endpoint")["CiphertextBlob"]
    assert via.decrypt(CiphertextBlob=blob)["Plaintext"] == b"through my endpoint"
    # Management calls are not restricted by that statement.
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
