"""Smoke test of `docker-compose up`: the five services as separate containers.

Run by scripts/compose-smoke.sh once the containers are healthy. Drives the
gateway's published port (loopback only) with boto3: create a key, encrypt,
decrypt, and find the calls in CloudTrail LookupEvents (which crosses the
gateway, authz, keystore and audit containers).

Then the seed's scenario on real private networks: two VPCs (the compose
networks vpc-a and vpc-b), an interface endpoint in each (private DNS on in
vpc-a, off in vpc-b), and a client container inside each VPC (`kms-demo`, the
AWS SDK for Rust) that finds KMS by DNS through its VPC's resolver: in vpc-a
the ordinary name `kms.us-east-1.amazonaws.com`, in vpc-b the endpoint-specific
name. CloudTrail must show each call with its endpoint's id and the client's
private address.
"""
import ipaddress
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlparse

import boto3
from botocore.config import Config

endpoint = os.environ.get("KMS_ENDPOINT", "http://127.0.0.1:4566")
host = urlparse(endpoint).hostname
assert host == "localhost" or host.startswith("127."), f"refusing non-loopback endpoint {endpoint}"

session = dict(
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
    aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    config=Config(retries={"max_attempts": 1, "mode": "standard"}),
)
kms = boto3.client("kms", **session)
trail = boto3.client("cloudtrail", **session)

# The gateway may accept connections a moment before its backends' channels are up.
for attempt in range(30):
    try:
        key = kms.create_key(Description="compose smoke")["KeyMetadata"]
        break
    except Exception as e:  # noqa: BLE001 - report the last failure below
        last = e
        time.sleep(1)
else:
    sys.exit(f"create_key never succeeded: {last}")

assert key["KeyState"] == "Enabled", key
blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"through compose",
                   EncryptionContext={"via": "compose"})["CiphertextBlob"]
out = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"via": "compose"})
assert out["Plaintext"] == b"through compose", out
assert out["KeyId"] == key["Arn"], out

events = trail.lookup_events(LookupAttributes=[
    {"AttributeKey": "ResourceName", "AttributeValue": key["Arn"]}])["Events"]
names = sorted(e["EventName"] for e in events)
assert names == ["CreateKey", "Decrypt", "Encrypt"], names

# --- VPCs as real networks -------------------------------------------------
ec2 = boto3.client("ec2", **session)
compose = os.environ.get("COMPOSE", "docker-compose").split()
project = os.environ["COMPOSE_PROJECT"]


def make_vpc(cidr, private_dns):
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr,
                               AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    ep = ec2.create_vpc_endpoint(VpcEndpointType="Interface", VpcId=vpc,
                                 ServiceName="com.amazonaws.us-east-1.kms",
                                 SubnetIds=[subnet], PrivateDnsEnabled=private_dns)["VpcEndpoint"]
    eni = ec2.describe_network_interfaces(
        NetworkInterfaceIds=ep["NetworkInterfaceIds"])["NetworkInterfaces"][0]
    return ep, eni["PrivateIpAddress"]


def run_demo(service, cidr, endpoint_url=None):
    """Run the client container until the endpoint answers (the registry's
    resolver and the gateway's listener follow registry writes asynchronously)."""
    extra = ["-e", f"KMS_DEMO_ENDPOINT_URL={endpoint_url}"] if endpoint_url else []
    for attempt in range(30):
        out = subprocess.run(
            compose + ["-p", project, "--profile", "demo", "run", "--rm", "-T"] + extra + [service],
            capture_output=True, text=True, timeout=120)
        lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
        if out.returncode == 0 and lines:
            return json.loads(lines[-1])
        last = out.stdout[-800:] + out.stderr[-800:]
        time.sleep(1)
    sys.exit(f"{service} never reached KMS: {last}")


def trail_event(request_id, name):
    for attempt in range(10):
        for e in trail.lookup_events(LookupAttributes=[
                {"AttributeKey": "EventName", "AttributeValue": name}])["Events"]:
            record = json.loads(e["CloudTrailEvent"])
            if record["requestID"] == request_id:
                return record
        time.sleep(0.5)
    sys.exit(f"no CloudTrail record with requestID {request_id}")


ep_a, ip_a = make_vpc("172.30.10.0/24", private_dns=True)
ep_b, ip_b = make_vpc("172.30.20.0/24", private_dns=False)
# The registry's first interface address of a subnet is its base + 4: where
# docker-compose.yml put the gateway on each VPC network.
assert (ip_a, ip_b) == ("172.30.10.4", "172.30.20.4"), (ip_a, ip_b)

# vpc-a: no endpoint URL at all: the SDK's https://kms.us-east-1.amazonaws.com,
# resolved by the VPC's resolver (private DNS), over TLS with the stack's CA.
demo_a = run_demo("demo-a", "172.30.10.0/24")
assert demo_a["resolved"] == [ip_a], demo_a
assert demo_a["roundTrip"] is True, demo_a
rec = trail_event(demo_a["encryptRequestId"], "Encrypt")
assert rec["vpcEndpointId"] == ep_a["VpcEndpointId"], rec
assert ipaddress.ip_address(rec["sourceIPAddress"]) in ipaddress.ip_network("172.30.10.0/24"), rec
assert rec["tlsDetails"]["clientProvidedHostHeader"] == "kms.us-east-1.amazonaws.com", rec
assert rec["tlsDetails"]["tlsVersion"] in ("TLSv1.2", "TLSv1.3"), rec

# vpc-b: no private DNS, so the endpoint-specific name.
name_b = ep_b["DnsEntries"][0]["DnsName"]
assert name_b.startswith(ep_b["VpcEndpointId"] + "-"), ep_b["DnsEntries"]
demo_b = run_demo("demo-b", "172.30.20.0/24", f"https://{name_b}")
assert demo_b["resolved"] == [ip_b], demo_b
rec = trail_event(demo_b["encryptRequestId"], "Encrypt")
assert rec["vpcEndpointId"] == ep_b["VpcEndpointId"], rec
assert ipaddress.ip_address(rec["sourceIPAddress"]) in ipaddress.ip_network("172.30.20.0/24"), rec


# --- Tracing: one trace per call across the services ----------------------
traces_port = os.environ.get("KMS_TRACES_PORT", "16686")


def trace_of(request_id, services, until=lambda spans: True):
    """The trace whose gateway span has this request id, once `services` all
    reported their spans (they export every 500 ms) and `until(spans)` holds: a
    service exports its spans of one trace in separate batches when they end
    in different export periods (authz: Authenticate, then Authorize)."""
    url = f"http://127.0.0.1:{traces_port}/api/traces?request_id={request_id}"
    spans = []
    for attempt in range(60):
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                spans = json.load(r)["spans"]
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
        if services <= {s["service"] for s in spans} and until(spans):
            return spans
        time.sleep(0.5)
    sys.exit(f"trace of {request_id}: services {services} not all there, or incomplete: {spans}")


def tree_checks(spans, request_id):
    roots = [s for s in spans if not s["parentSpanId"]]
    assert len(roots) == 1, spans
    ids = {s["spanId"] for s in spans}
    assert all(not s["parentSpanId"] or s["parentSpanId"] in ids for s in spans), spans
    root = roots[0]
    assert root["service"] == "kms-gateway" and root["attributes"]["aws.request_id"] == request_id, root
    return root


def child(spans, parent, service, name):
    for s in spans:
        if s["service"] == service and s["name"] == name and s["parentSpanId"] == parent["spanId"]:
            return s
    sys.exit(f"no {service} {name} under {parent['name']}: {spans}")


# The Encrypt demo-a made through vpc-a's endpoint.
spans = trace_of(demo_a["encryptRequestId"], {"kms-gateway", "kms-authz", "kms-keystore", "kms-audit"},
                 until=lambda spans: any("kms.decision" in s["attributes"] for s in spans))
root = tree_checks(spans, demo_a["encryptRequestId"])
assert root["name"] == "kms.Encrypt", root
assert root["attributes"]["aws.vpce_id"] == ep_a["VpcEndpointId"], root
ks = child(spans, root, "kms-keystore", "kms.keystore.v1.KeyStore/Encrypt")
authorize = child(spans, ks, "kms-authz", "kms.authz.v1.Authz/Authorize")
decision = child(spans, authorize, "kms-authz", "authorize")
assert decision["attributes"]["kms.decision"] == "allowed", decision
child(spans, root, "kms-audit", "kms.audit.v1.Audit/Append")

# The decrypt failure demo-a provoked.
spans = trace_of(demo_a["failedDecryptRequestId"], {"kms-gateway", "kms-keystore"})
root = tree_checks(spans, demo_a["failedDecryptRequestId"])
assert root["attributes"]["aws.error_code"] == "InvalidCiphertextException", root

# An EC2 call: the registry's part of the trace.
vpc_call = ec2.describe_vpcs()
spans = trace_of(vpc_call["ResponseMetadata"]["RequestId"], {"kms-gateway", "kms-registry"})
root = tree_checks(spans, vpc_call["ResponseMetadata"]["RequestId"])
assert any(s["service"] == "kms-registry" and s["parentSpanId"] == root["spanId"] for s in spans), spans

# An endpoint-policy deny: vpc-a's endpoint now refuses Encrypt.
ec2.modify_vpc_endpoint(VpcEndpointId=ep_a["VpcEndpointId"], PolicyDocument=json.dumps({
    "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*"},
    ]}))
for attempt in range(30):
    out = subprocess.run(
        compose + ["-p", project, "--profile", "demo", "run", "--rm", "-T", "demo-a"],
        capture_output=True, text=True, timeout=120)
    calls = [json.loads(l) for l in out.stderr.splitlines() if l.startswith('{"call"')]
    denied = [c for c in calls if c["call"] == "Encrypt" and c["error"] == "AccessDeniedException"]
    if out.returncode != 0 and denied:
        break
    time.sleep(1)
else:
    sys.exit(f"the endpoint policy never denied Encrypt: {out.stdout[-500:]} {out.stderr[-800:]}")
denied_id = denied[0]["requestId"]
spans = trace_of(denied_id, {"kms-gateway", "kms-authz", "kms-keystore"},
                 until=lambda spans: any("kms.decision" in s["attributes"] for s in spans))
root = tree_checks(spans, denied_id)
assert root["attributes"]["aws.error_code"] == "AccessDeniedException", root
decisions = [s for s in spans if "kms.decision" in s["attributes"]]
assert [d["attributes"]["kms.decision"] for d in decisions] == ["endpointPolicyDeny"], decisions
# AWS does not record requests denied only by the endpoint policy.
time.sleep(1)
recorded = [e for e in trail.lookup_events(LookupAttributes=[
    {"AttributeKey": "EventName", "AttributeValue": "Encrypt"}])["Events"]
    if json.loads(e["CloudTrailEvent"])["requestID"] == denied_id]
assert recorded == [], recorded


# --- The stateless gateway scales: two replicas share the backends ----------
subprocess.run(compose + ["-p", project, "--profile", "scale", "up", "-d", "--no-build",
                          "--scale", "gateway-replica=2", "gateway-replica"],
               check=True, capture_output=True, timeout=300)
ids = subprocess.run(compose + ["-p", project, "--profile", "scale", "ps", "-q", "gateway-replica"],
                     check=True, capture_output=True, text=True).stdout.split()
assert len(ids) == 2, ids
backend = ipaddress.ip_network("172.30.66.0/24")
replica_ips = []
for cid in ids:
    ip = subprocess.run(["docker", "inspect", "-f",
                         "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", cid],
                        check=True, capture_output=True, text=True).stdout.strip()
    # Only the project's own network, never anything else.
    assert ipaddress.ip_address(ip) in backend, ip
    replica_ips.append(ip)
for ip in replica_ips:
    replica = boto3.client("kms", **{**session, "endpoint_url": f"http://{ip}:4566"})
    for attempt in range(60):
        try:
            out = replica.encrypt(KeyId=key["KeyId"], Plaintext=b"through a replica")
            break
        except Exception as e:  # noqa: BLE001 - the replica may still be starting
            last = e
            time.sleep(1)
    else:
        sys.exit(f"replica {ip} never served: {last}")
    assert kms.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"] == b"through a replica"
    rid = out["ResponseMetadata"]["RequestId"]
    rec = trail_event(rid, "Encrypt")
    assert rec["requestParameters"]["keyId"] == key["KeyId"], rec

print("compose smoke: 6 passed, 0 failed")
