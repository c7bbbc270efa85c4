"""HTTPS with the stack's own CA (`<data-dir>/tls/ca.pem`), on the public TLS
endpoint and on VPC endpoint interfaces, with official clients that verify the
certificate (boto3 `verify=`, aws CLI `--ca-bundle`):

- the public HTTPS endpoint serves KMS; a client that does not trust the CA
  gets no session;
- `aws:SecureTransport` is true over HTTPS and false over HTTP (a key policy
  denying plain HTTP);
- CloudTrail records of HTTPS calls carry `tlsDetails` (version, the cipher
  suite the client's OpenSSL negotiated, the Host it sent), HTTP calls none;
- private DNS for real: `kms.us-east-1.amazonaws.com` resolved through the
  VPC's resolver (dnspython, patched into `socket.getaddrinfo`) and reached
  over HTTPS with no endpoint override but the port; the call arrives through
  the endpoint (vpcEndpointId, the endpoint policy applies). Same with the
  aws CLI.

Every address here is in 127.0.0.0/8 (VPC 127.160.0.0/16).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import dns.message
import dns.query
import dns.rdatatype
import pytest

from e2e_support import (
    ACCOUNTS,
    KMS_TARGET,
    JSON_1_1,
    by_request_id,
    client_error,
    isolate_aws_env,
    lookup_events,
    retry_config,
    sign_headers,
)

REGION = "us-east-1"
KMS_HOST = f"kms.{REGION}.amazonaws.com"
CIDR = "127.160.0.0/16"
VPC_RESOLVER = "127.160.0.2"
TLS_RE = re.compile(r"KMS TLS endpoint: (https://\S+)")
CA_RE = re.compile(r"CA certificate: (\S+)")


def _from_log(stack, pattern: re.Pattern) -> str:
    deadline = time.monotonic() + 10
    while True:
        m = pattern.search(stack.log_path.read_text("utf-8", "replace"))
        if m:
            return m.group(1)
        assert time.monotonic() < deadline, f"kms-stack printed no {pattern.pattern!r} line"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def tls_endpoint(stack) -> str:
    url = _from_log(stack, TLS_RE).rstrip("/")
    host = urlsplit(url).hostname
    assert host == "127.0.0.1", url
    return url


@pytest.fixture(scope="module")
def ca(stack) -> str:
    path = _from_log(stack, CA_RE)
    assert Path(path) == stack.data_dir / "tls" / "ca.pem"
    return path


def kms_client(endpoint: str, verify, account: str = "a"):
    import boto3

    acct = ACCOUNTS[account]
    return boto3.client(
        "kms",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=acct.access_key,
        aws_secret_access_key=acct.secret_key,
        verify=verify,
        config=retry_config(),
    )


def event_of(cloudtrail, key_arn: str, request_id: str) -> dict:
    deadline = time.monotonic() + 10
    while True:
        e = by_request_id(lookup_events(cloudtrail, ("ResourceName", key_arn)), request_id)
        if e is not None:
            return json.loads(e["CloudTrailEvent"])
        assert time.monotonic() < deadline, f"no CloudTrail event for request {request_id}"
        time.sleep(0.2)


# -- the CA and the public HTTPS endpoint --------------------------------------


def test_ca_files_are_made_once_and_keys_are_private(stack, ca):
    tls_dir = stack.data_dir / "tls"
    assert sorted(p.name for p in tls_dir.iterdir()) == ["ca.key", "ca.pem", "server.key", "server.pem"]
    for key in ("ca.key", "server.key"):
        assert stat.S_IMODE((tls_dir / key).stat().st_mode) == 0o600, key
    assert Path(ca).read_text().startswith("-----BEGIN CERTIFICATE-----")
    log = stack.log_path.read_text("utf-8", "replace")
    assert "PRIVATE KEY" not in log
    # The server certificate verifies against ca.pem for the KMS hostname.
    ctx = ssl.create_default_context(cafile=ca)
    cert = ssl._ssl._test_decode_cert(str(tls_dir / "server.pem"))  # noqa: SLF001 - reads the first cert
    names = {v for k, v in cert["subjectAltName"]}
    assert {KMS_HOST, f"*.kms.{REGION}.vpce.amazonaws.com", "localhost", "127.0.0.1"} <= names, names
    assert ctx.verify_mode == ssl.CERT_REQUIRED


def test_public_https_endpoint_serves_kms(tls_endpoint, ca, kms):
    tls = kms_client(tls_endpoint, ca)
    key = tls.create_key(Description="over https")["KeyMetadata"]
    out = tls.encrypt(KeyId=key["KeyId"], Plaintext=b"over https")
    # Same service behind both listeners.
    assert kms.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"] == b"over https"


def test_a_client_that_does_not_trust_the_ca_gets_no_session(tls_endpoint):
    from botocore.exceptions import SSLError

    # verify=True: botocore's default bundle, which does not hold the stack's CA.
    with pytest.raises(SSLError) as e:
        kms_client(tls_endpoint, True).list_keys()
    assert "CERTIFICATE_VERIFY_FAILED" in str(e.value)


def test_aws_ca_bundle_is_honoured(tls_endpoint, ca):
    """`AWS_CA_BUNDLE`, as the README says, for clients built without verify=."""
    with mock.patch.dict(os.environ, {"AWS_CA_BUNDLE": ca}):
        import boto3

        acct = ACCOUNTS["a"]
        session = boto3.session.Session(
            aws_access_key_id=acct.access_key, aws_secret_access_key=acct.secret_key, region_name=REGION
        )
        client = session.client("kms", endpoint_url=tls_endpoint, config=retry_config())
        assert "Keys" in client.list_keys(Limit=1)


# -- aws:SecureTransport ---------------------------------------------------------


def test_secure_transport_condition_denies_plain_http_only(tls_endpoint, ca, kms, make_key):
    key = make_key()
    root = f"arn:aws:iam::{ACCOUNTS['a'].account_id}:root"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"},
            {
                "Sid": "DenyPlainHttp",
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["kms:Encrypt", "kms:Decrypt"],
                "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(policy))
    with client_error("AccessDeniedException"):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"in the clear")
    tls = kms_client(tls_endpoint, ca)
    out = tls.encrypt(KeyId=key["KeyId"], Plaintext=b"protected")
    assert tls.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"] == b"protected"
    with client_error("AccessDeniedException"):
        kms.decrypt(CiphertextBlob=out["CiphertextBlob"])


# -- tlsDetails ----------------------------------------------------------------------


def https_encrypt(endpoint: str, ca: str, key_id: str, max_version: ssl.TLSVersion | None):
    """A signed Encrypt over http.client + ssl; returns (request id, TLS
    version, cipher name) as the client's OpenSSL saw them."""
    body = json.dumps({"KeyId": key_id, "Plaintext": "aGVsbG8="}).encode()
    headers = sign_headers(endpoint, body, {"Content-Type": JSON_1_1, "X-Amz-Target": KMS_TARGET + "Encrypt"})
    ctx = ssl.create_default_context(cafile=ca)
    if max_version is not None:
        ctx.maximum_version = max_version
    parts = urlsplit(endpoint)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=ctx, timeout=30)
    try:
        conn.request("POST", "/", body=body, headers=headers)
        cipher, version, _ = conn.sock.cipher()
        resp = conn.getresponse()
        data = resp.read()
        assert resp.status == 200, data
        return resp.headers["x-amzn-RequestId"], version, cipher
    finally:
        conn.close()


@pytest.mark.parametrize("max_version", [None, ssl.TLSVersion.TLSv1_2], ids=["tls1.3", "tls1.2"])
def test_tls_details_record_what_was_negotiated(tls_endpoint, ca, make_key, cloudtrail, max_version):
    key = make_key()
    request_id, version, cipher = https_encrypt(tls_endpoint, ca, key["KeyId"], max_version)
    assert version == ("TLSv1.2" if max_version else "TLSv1.3")
    event = event_of(cloudtrail, key["Arn"], request_id)
    assert event["tlsDetails"] == {
        "tlsVersion": version,
        "cipherSuite": cipher,
        "clientProvidedHostHeader": urlsplit(tls_endpoint).netloc,
    }


def test_tls_details_only_over_tls(tls_endpoint, ca, kms, make_key, cloudtrail):
    key = make_key()
    plain = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["ResponseMetadata"]["RequestId"]
    tls = kms_client(tls_endpoint, ca).encrypt(KeyId=key["KeyId"], Plaintext=b"x")["ResponseMetadata"]["RequestId"]
    assert "tlsDetails" not in event_of(cloudtrail, key["Arn"], plain)
    details = event_of(cloudtrail, key["Arn"], tls)["tlsDetails"]
    assert details["tlsVersion"] == "TLSv1.3"
    assert details["cipherSuite"].startswith("TLS_"), details


# -- private DNS over HTTPS ---------------------------------------------------------


def resolve(server: str, port: int, name: str) -> list[str]:
    assert server.startswith("127."), server
    q = dns.message.make_query(name, dns.rdatatype.A)
    r = dns.query.udp(q, server, port=port, timeout=2)
    return sorted(rr.address for rrset in r.answer for rr in rrset if rr.rdtype == dns.rdatatype.A)


# The same resolution for a child process (the aws CLI): AWS names through the
# VPC's resolver, everything else as usual.
GETADDRINFO_PATCH = """
import os, socket, sys
import dns.message, dns.query, dns.rdatatype
_server, _port = os.environ["KMS_TEST_RESOLVER"], int(os.environ["KMS_TEST_DNS_PORT"])
_orig = socket.getaddrinfo
def _gai(host, port, family=0, type=0, proto=0, flags=0):
    if isinstance(host, str) and host.endswith(".amazonaws.com"):
        r = dns.query.udp(dns.message.make_query(host, dns.rdatatype.A), _server, port=_port, timeout=2)
        ips = [rr.address for rrset in r.answer for rr in rrset if rr.rdtype == dns.rdatatype.A]
        if not ips:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        assert all(ip.startswith("127.") for ip in ips), ips
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, int(port))) for ip in ips]
    return _orig(host, port, family, type, proto, flags)
socket.getaddrinfo = _gai
"""


@pytest.fixture(scope="module")
def private_endpoint(stack):
    ec2 = stack.client("ec2", "a")
    vpc = ec2.create_vpc(CidrBlock=CIDR)["Vpc"]
    ec2.modify_vpc_attribute(VpcId=vpc["VpcId"], EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="127.160.1.0/24", AvailabilityZone=f"{REGION}a")[
        "Subnet"
    ]
    # Everything but DescribeKey: shows that the endpoint policy applies.
    policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["kms:CreateKey", "kms:Encrypt", "kms:Decrypt", "kms:ListKeys"],
                "Resource": "*",
            }
        ]
    }
    endpoint = ec2.create_vpc_endpoint(
        VpcEndpointType="Interface",
        VpcId=vpc["VpcId"],
        ServiceName=f"com.amazonaws.{REGION}.kms",
        SubnetIds=[subnet["SubnetId"]],
        PrivateDnsEnabled=True,
        PolicyDocument=json.dumps(policy),
    )["VpcEndpoint"]
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=endpoint["NetworkInterfaceIds"])["NetworkInterfaces"][0]
    ip = eni["PrivateIpAddress"]
    assert ip.startswith("127.160.1."), ip
    # Zones follow registry writes asynchronously.
    deadline = time.monotonic() + 10
    while True:
        try:
            got = resolve(VPC_RESOLVER, stack.dns_port, KMS_HOST)
        except Exception as e:  # noqa: BLE001 - resolver not bound yet
            got = repr(e)
        if got == [ip]:
            break
        assert time.monotonic() < deadline, f"{KMS_HOST} via {VPC_RESOLVER}: {got}"
        time.sleep(0.1)
    yield {"id": endpoint["VpcEndpointId"], "ip": ip}
    ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=vpc["VpcId"])


def test_sdk_with_private_dns_over_https_goes_through_the_endpoint(
    stack, tls_endpoint, ca, private_endpoint, cloudtrail
):
    tls_port = urlsplit(tls_endpoint).port
    resolved: list[tuple[str, str]] = []
    original = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if isinstance(host, str) and host.endswith(".amazonaws.com"):
            ips = resolve(VPC_RESOLVER, stack.dns_port, host)
            resolved.append((host, ",".join(ips)))
            if not ips:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, int(port))) for ip in ips]
        return original(host, port, family, type, proto, flags)

    url = f"https://{KMS_HOST}:{tls_port}"
    with mock.patch("socket.getaddrinfo", getaddrinfo):
        via = kms_client(url, ca)
        deadline = time.monotonic() + 10
        while True:
            try:
                key = via.create_key(Description="private dns over https")["KeyMetadata"]
                break
            except Exception:  # noqa: BLE001 - the interface listener binds asynchronously
                assert time.monotonic() < deadline
                time.sleep(0.1)
        out = via.encrypt(KeyId=key["KeyId"], Plaintext=b"resolved privately")
        assert via.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"] == b"resolved privately"
        # The endpoint policy allows no DescribeKey.
        with client_error("AccessDeniedException") as denied:
            via.describe_key(KeyId=key["KeyId"])
        assert "VPC endpoint policy" in denied["error"].response["Error"]["Message"]
    assert resolved and all(r == (KMS_HOST, private_endpoint["ip"]) for r in resolved), resolved
    # The public HTTPS endpoint, same key: no endpoint policy there.
    assert kms_client(tls_endpoint, ca).describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Arn"] == key["Arn"]
    event = event_of(cloudtrail, key["Arn"], out["ResponseMetadata"]["RequestId"])
    assert event["vpcEndpointId"] == private_endpoint["id"]
    assert event["tlsDetails"]["clientProvidedHostHeader"] == f"{KMS_HOST}:{tls_port}"
    assert event["tlsDetails"]["tlsVersion"] == "TLSv1.3"


def test_aws_cli_with_private_dns_and_ca_bundle(stack, tls_endpoint, ca, private_endpoint, kms, cloudtrail, tmp_path):
    tls_port = urlsplit(tls_endpoint).port
    key = kms.create_key(Description="cli over private dns")["KeyMetadata"]
    acct = ACCOUNTS["a"]
    env = isolate_aws_env(dict(os.environ))
    env.update(
        AWS_ACCESS_KEY_ID=acct.access_key,
        AWS_SECRET_ACCESS_KEY=acct.secret_key,
        AWS_DEFAULT_REGION=REGION,
        AWS_MAX_ATTEMPTS="1",
        AWS_PAGER="",
        KMS_TEST_RESOLVER=VPC_RESOLVER,
        KMS_TEST_DNS_PORT=str(stack.dns_port),
    )
    script = GETADDRINFO_PATCH + "from awscli.clidriver import main\nsys.exit(main())\n"

    def aws(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                "-c",
                script,
                "--endpoint-url",
                f"https://{KMS_HOST}:{tls_port}",
                "--ca-bundle",
                ca,
                "--output",
                "json",
                *args,
            ],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=90,
        )

    proc = aws("kms", "encrypt", "--key-id", key["KeyId"], "--plaintext", "aGVsbG8=",
               "--encryption-context", "purpose=cli-over-private-dns")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["KeyId"] == key["Arn"]
    denied = aws("kms", "describe-key", "--key-id", key["KeyId"])
    assert denied.returncode != 0
    assert "AccessDeniedException" in denied.stderr and "VPC endpoint policy" in denied.stderr, denied.stderr
    # Without the CA bundle the CLI refuses the certificate.
    env_no_ca = dict(env)
    untrusted = subprocess.run(
        [sys.executable, "-c", script, "--endpoint-url", f"https://{KMS_HOST}:{tls_port}", "kms", "list-keys"],
        cwd=tmp_path, env=env_no_ca, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90,
    )
    assert untrusted.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr, untrusted.stderr

    deadline = time.monotonic() + 10
    while True:
        events = [
            json.loads(e["CloudTrailEvent"])
            for e in lookup_events(cloudtrail, ("ResourceName", key["Arn"]))
        ]
        cli = [
            e for e in events
            if e["eventName"] == "Encrypt"
            and (e.get("requestParameters") or {}).get("encryptionContext") == {"purpose": "cli-over-private-dns"}
        ]
        if cli:
            break
        assert time.monotonic() < deadline, events
        time.sleep(0.2)
    [event] = cli
    assert event["vpcEndpointId"] == private_endpoint["id"]
    assert event["tlsDetails"]["clientProvidedHostHeader"] == f"{KMS_HOST}:{tls_port}"
    assert "aws-cli/" in event["userAgent"]
