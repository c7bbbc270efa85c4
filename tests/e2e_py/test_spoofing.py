"""Endpoint identity cannot be spoofed (issue 9): whatever a request says, the
VPC endpoint it came through (vpcEndpointId, aws:SourceVpce / aws:SourceVpc,
the endpoint policy), its source address (aws:SourceIp / aws:VpcSourceIp,
sourceIPAddress) and aws:SecureTransport are those of the listener that
accepted the TCP connection (its local address) and of the peer address.

Two interface endpoints of KMS, A in VPC 127.181.0.0/16 (default policy:
allow everything) and B in VPC 127.182.0.0/16 (its policy denies
kms:Encrypt), next to the public endpoint. Keys whose policy denies
kms:Encrypt unless one network condition holds make each identity element
observable: a spoofing attempt that worked would be allowed.

- Host naming B's DNS name, the public name or B's address, and an
  absolute-form request target naming B, sent to A's listener: A's identity.
- TLS SNI (and Host) naming B while connecting to A's address: A's identity.
- X-Forwarded-For, Forwarded, X-Real-IP and friends, X-Amz-Source-Vpce-like
  headers, the gateway's own gRPC metadata names (x-kms-*, x-aws-error-code),
  trace context, a request id: signed and unsigned, nothing changes (the
  condition keys, sourceIPAddress, vpcEndpointId, the request id, tlsDetails,
  and an endpoint-policy "marker" does not suppress the CloudTrail record).
- Replay: the same bytes through A (allowed), B (B's endpoint policy denies)
  and the public endpoint (no endpoint id); every record names the endpoint
  that accepted it.
- Duplicate Host lines: 400, nothing executed. TE+CL in both orders and
  obfuscated Transfer-Encoding: refused or framed so that nothing is
  smuggled.
- URI path normalization (SigV4 as every service but S3): `//` and `/./`
  are the service root, signed over `/`.

Every address is in 127.0.0.0/8: clients bind source addresses in it to play
a workload of VPC A (127.181.1.77) and two public clients.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from unittest import mock
from urllib.parse import urlsplit

import pytest

from e2e_support import (
    ACCOUNT_A,
    JSON_1_1,
    KMS_TARGET,
    REGION,
    UUID_RE,
    RawResponse,
    b64,
    lookup_events,
    sign_headers,
)
from test_request_smuggling import exchange, key_ids, raw_request
from test_tls import ca, event_of, tls_endpoint  # noqa: F401 - fixtures
from test_vpc_endpoint_policy import eventually_denied, kms_via, recorded, wait_serving

KMS_HOST = f"kms.{REGION}.amazonaws.com"
VPC_A_CIDR, SUBNET_A_CIDR = "127.181.0.0/16", "127.181.1.0/24"
VPC_B_CIDR, SUBNET_B_CIDR = "127.182.0.0/16", "127.182.1.0/24"
# A workload of VPC A (an address of its subnet), and two clients of the public endpoint.
WORKLOAD_IN_A = "127.181.1.77"
TRUSTED_PUBLIC_IP = "127.0.0.77"
ATTACKER_IP = "127.0.0.66"
SPOOFED_REQUEST_ID = "00000000-0000-4000-8000-000000000000"
ENDPOINT_DENY = "with an explicit deny in a VPC endpoint policy"
KEY_POLICY_DENY = "with an explicit deny in a resource-based policy"
# B's endpoint policy: everything but kms:Encrypt.
B_POLICY = {
    "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*"},
    ]
}


@dataclass(frozen=True)
class Listener:
    """Where a client connects: an endpoint interface, or the public endpoint."""

    name: str
    ip: str
    port: int
    tls_port: int
    vpce_id: str | None = None
    vpc_id: str | None = None
    dns: str | None = None

    @property
    def netloc(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.netloc}"


@dataclass(frozen=True)
class Net:
    a: Listener
    b: Listener
    public: Listener


@pytest.fixture(scope="module")
def net(stack, tls_endpoint):  # noqa: F811 - the fixture imported above
    ec2 = stack.client("ec2", "a")
    tls_port = urlsplit(tls_endpoint).port
    made: list[tuple[str, str, str]] = []

    def endpoint(name: str, vpc_cidr: str, subnet_cidr: str, policy: dict | None) -> Listener:
        vpc = ec2.create_vpc(CidrBlock=vpc_cidr)["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=subnet_cidr, AvailabilityZone=f"{REGION}a")["Subnet"][
            "SubnetId"
        ]
        kwargs = {"PolicyDocument": json.dumps(policy)} if policy else {}
        e = ec2.create_vpc_endpoint(
            VpcEndpointType="Interface",
            VpcId=vpc,
            ServiceName=f"com.amazonaws.{REGION}.kms",
            SubnetIds=[subnet],
            PrivateDnsEnabled=False,
            **kwargs,
        )["VpcEndpoint"]
        made.append((e["VpcEndpointId"], subnet, vpc))
        eni = ec2.describe_network_interfaces(NetworkInterfaceIds=e["NetworkInterfaceIds"])["NetworkInterfaces"][0]
        ip = eni["PrivateIpAddress"]
        assert ipaddress.ip_address(ip) in ipaddress.ip_network(subnet_cidr), ip
        dns = e["DnsEntries"][0]["DnsName"]
        assert dns.startswith(e["VpcEndpointId"] + "-") and dns.endswith(f".kms.{REGION}.vpce.amazonaws.com"), dns
        listener = Listener(name, ip, stack.port, tls_port, e["VpcEndpointId"], vpc, dns)
        wait_serving(kms_via(stack, listener.url))
        return listener

    try:
        a = endpoint("A", VPC_A_CIDR, SUBNET_A_CIDR, None)
        b = endpoint("B", VPC_B_CIDR, SUBNET_B_CIDR, B_POLICY)
        public = Listener("public", stack.host, stack.port, tls_port)
        # B's policy is in force (the gateway learns policies from the registry's stream).
        probe = stack.client("kms", "a").create_key(Description="spoofing: B's policy probe")["KeyMetadata"]
        eventually_denied(lambda: kms_via(stack, b.url).encrypt(KeyId=probe["KeyId"], Plaintext=b"x"))
        yield Net(a, b, public)
    finally:
        for vpce_id, subnet, vpc in made:
            ec2.delete_vpc_endpoints(VpcEndpointIds=[vpce_id])
            ec2.delete_subnet(SubnetId=subnet)
            ec2.delete_vpc(VpcId=vpc)


# -- keys whose policy makes one identity element observable --------------------------


def guarded_key(kms, what: str, condition: dict, actions=("kms:Encrypt",)) -> dict:
    """A key of account a whose policy denies `actions` to everyone when
    `condition` holds (each one below says "not from the expected origin") and
    allows the account everything else."""
    key = kms.create_key(Description=f"spoofing: {what}")["KeyMetadata"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Root",
                "Effect": "Allow",
                "Principal": {"AWS": ACCOUNT_A.root_arn},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "Guard",
                "Effect": "Deny",
                "Principal": "*",
                "Action": list(actions),
                "Resource": "*",
                "Condition": condition,
            },
        ],
    }
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(policy))
    return key


@pytest.fixture(scope="module")
def keys(stack, net):
    kms = stack.client("kms", "a")
    return {
        "vpce": guarded_key(
            kms,
            "only through endpoint A",
            {"StringNotEquals": {"aws:SourceVpce": net.a.vpce_id}},
            ("kms:Encrypt", "kms:DescribeKey"),
        ),
        "vpc": guarded_key(kms, "only from VPC A", {"StringNotEquals": {"aws:SourceVpc": net.a.vpc_id}}),
        "vpc_ip": guarded_key(
            kms, "only from A's workload", {"NotIpAddress": {"aws:VpcSourceIp": f"{WORKLOAD_IN_A}/32"}}
        ),
        "ip": guarded_key(
            kms, "only from one public IP", {"NotIpAddress": {"aws:SourceIp": f"{TRUSTED_PUBLIC_IP}/32"}}
        ),
        "tls": guarded_key(kms, "only over TLS", {"Bool": {"aws:SecureTransport": "false"}}),
        "open": kms.create_key(Description="spoofing: default key policy")["KeyMetadata"],
    }


# -- raw signed requests ----------------------------------------------------------------------


def request_bytes(
    op: str,
    params: dict,
    *,
    host: str,
    signed_extra: list[tuple[str, str]] = (),
    unsigned_extra: list[tuple[str, str]] = (),
    target: str = "/",
) -> bytes:
    """A complete HTTP/1.1 request, SigV4-signed (botocore) over `host` and
    `signed_extra`; `unsigned_extra` lines are added after signing."""
    body = json.dumps(params).encode()
    headers = {"Content-Type": JSON_1_1, "X-Amz-Target": KMS_TARGET + op, "Host": host}
    headers.update(dict(signed_extra))
    # The URL only gives the path: the Host header above is what is signed.
    signed = sign_headers("http://127.0.0.1", body, headers)
    lines = [f"POST {target} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in signed.items() if k.lower() != "content-length"]
    lines += [f"{k}: {v}" for k, v in unsigned_extra]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def tls_context(ca_path: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_path)


def send(
    to: Listener,
    data: bytes,
    *,
    source: str = "127.0.0.1",
    tls: ssl.SSLContext | None = None,
    sni: str | None = None,
) -> RawResponse:
    """Send one request on a new connection from `source` (an address of
    127/8) to the listener, plain or TLS with `sni`; read one response."""
    assert ipaddress.ip_address(to.ip).is_loopback, to
    assert ipaddress.ip_address(source).is_loopback, source
    port = to.tls_port if tls else to.port
    sock = socket.create_connection((to.ip, port), timeout=30, source_address=(source, 0))
    try:
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname=sni)
        sock.sendall(data)
        resp = http.client.HTTPResponse(sock, method="POST")
        resp.begin()
        body = resp.read()
        return RawResponse(resp.status, resp.headers, body)
    finally:
        sock.close()


def encrypt_params(key: dict) -> dict:
    return {"KeyId": key["KeyId"], "Plaintext": b64(b"spoofing")}


def request_id(resp: RawResponse) -> str:
    rid = resp.header("x-amzn-RequestId")
    assert rid and UUID_RE.match(rid), rid
    assert rid != SPOOFED_REQUEST_ID
    return rid


def assert_ok(resp: RawResponse, what: str) -> str:
    assert resp.status == 200, f"{what}: {resp.status} {resp.body[:400]!r}"
    return request_id(resp)


def assert_denied(resp: RawResponse, key: dict, op: str, why: str, what: str) -> str:
    assert (resp.status, resp.error_code) == (400, "AccessDeniedException"), (
        f"{what}: {resp.status} {resp.body[:400]!r}"
    )
    message = resp.json["message"]
    assert message == (
        f"User: {ACCOUNT_A.root_arn} is not authorized to perform: kms:{op} on resource: {key['Arn']} {why}"
    ), f"{what}: {message}"
    return request_id(resp)


def assert_record(
    cloudtrail,
    key: dict,
    rid: str,
    *,
    via: Listener,
    source_ip: str,
    error: str | None = None,
    tls: bool = False,
) -> dict:
    """The call's CloudTrail record names the accepting endpoint and the peer."""
    record = event_of(cloudtrail, key["Arn"], rid)
    assert record["requestID"] == rid
    assert record.get("vpcEndpointId") == via.vpce_id, (via.name, record.get("vpcEndpointId"))
    assert record["sourceIPAddress"] == source_ip, record["sourceIPAddress"]
    assert record.get("errorCode") == error, record.get("errorCode")
    assert ("tlsDetails" in record) == tls, record.get("tlsDetails")
    return record


def assert_not_recorded(cloudtrail, key: dict, rid: str) -> None:
    """Denied by an endpoint policy alone: no record (AWS's rule). The key's
    other calls are recorded, so the lookup itself works."""
    assert not recorded(cloudtrail, rid, key["Arn"]), rid


# -- Host, absolute-form target, SNI ------------------------------------------------------------


def test_host_naming_another_endpoint_does_not_change_the_endpoint(net, keys, cloudtrail):
    vpce_key = keys["vpce"]
    a, b, public = net.a, net.b, net.public
    # To A's listener, naming B (its DNS name, its address), the public name, or B in an
    # absolute-form request target: A's identity, so A's key allows it and the record names A.
    for host, target in [
        (b.dns, "/"),
        (b.netloc, "/"),
        (KMS_HOST, "/"),
        (a.netloc, f"http://{b.dns}/"),
        (b.dns, f"http://{b.dns}:{b.port}/"),
    ]:
        what = f"to A, Host {host}, target {target}"
        resp = send(a, request_bytes("Encrypt", encrypt_params(vpce_key), host=host, target=target))
        rid = assert_ok(resp, what)
        assert_record(cloudtrail, vpce_key, rid, via=a, source_ip="127.0.0.1")
    # To B's listener naming A: B's endpoint policy decides (denies Encrypt; not recorded).
    open_key = keys["open"]
    for host in [a.dns, a.netloc]:
        resp = send(b, request_bytes("Encrypt", encrypt_params(open_key), host=host))
        rid = assert_denied(resp, open_key, "Encrypt", ENDPOINT_DENY, f"to B, Host {host}")
        assert_not_recorded(cloudtrail, open_key, rid)
    # ...and the same request through A is allowed (B's denial is B's, not the key's).
    assert_ok(send(a, request_bytes("Encrypt", encrypt_params(open_key), host=a.netloc)), "control through A")
    # To the public listener naming A: no endpoint, A's key refuses it; the record has no endpoint.
    resp = send(public, request_bytes("Encrypt", encrypt_params(vpce_key), host=a.dns))
    rid = assert_denied(resp, vpce_key, "Encrypt", KEY_POLICY_DENY, "public, Host A")
    assert_record(cloudtrail, vpce_key, rid, via=public, source_ip="127.0.0.1", error="AccessDeniedException")


def test_sni_naming_another_endpoint_does_not_change_the_endpoint(net, keys, ca, cloudtrail):  # noqa: F811
    ctx = tls_context(ca)
    vpce_key, open_key = keys["vpce"], keys["open"]
    a, b, public = net.a, net.b, net.public
    # A's address, SNI (and Host) naming B or the public name: the certificate verifies for
    # both names, and the connection is still A's.
    for sni in [b.dns, KMS_HOST]:
        resp = send(a, request_bytes("Encrypt", encrypt_params(vpce_key), host=sni), tls=ctx, sni=sni)
        rid = assert_ok(resp, f"TLS to A, SNI {sni}")
        record = assert_record(cloudtrail, vpce_key, rid, via=a, source_ip="127.0.0.1", tls=True)
        # The Host the client sent is recorded as sent; it decided nothing.
        assert record["tlsDetails"]["clientProvidedHostHeader"] == sni
    # A's address, SNI naming B but Host naming A: still A.
    resp = send(a, request_bytes("Encrypt", encrypt_params(vpce_key), host=a.dns), tls=ctx, sni=b.dns)
    assert_record(cloudtrail, vpce_key, assert_ok(resp, "SNI B, Host A"), via=a, source_ip="127.0.0.1", tls=True)
    # B's address, SNI naming A: B's endpoint policy.
    resp = send(b, request_bytes("Encrypt", encrypt_params(open_key), host=a.dns), tls=ctx, sni=a.dns)
    rid = assert_denied(resp, open_key, "Encrypt", ENDPOINT_DENY, "TLS to B, SNI A")
    assert_not_recorded(cloudtrail, open_key, rid)
    # The public TLS listener, SNI naming A: no endpoint.
    resp = send(public, request_bytes("Encrypt", encrypt_params(vpce_key), host=a.dns), tls=ctx, sni=a.dns)
    rid = assert_denied(resp, vpce_key, "Encrypt", KEY_POLICY_DENY, "public TLS, SNI A")
    assert_record(cloudtrail, vpce_key, rid, via=public, source_ip="127.0.0.1", error="AccessDeniedException", tls=True)


# A minimal HTTP/2 client (RFC 9113 frames, HPACK literals without indexing), enough to
# send one request with an :authority of the test's choosing (no h2 package is needed).
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_DATA, H2_HEADERS, H2_RST_STREAM, H2_SETTINGS, H2_GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x7
H2_END_STREAM, H2_ACK, H2_END_HEADERS = 0x1, 0x1, 0x4
# HPACK static table entries for :status (RFC 7541 appendix A).
H2_STATIC_STATUS = {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}


def h2_frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def hpack_int(n: int, prefix_bits: int = 7) -> bytes:
    limit = (1 << prefix_bits) - 1
    if n < limit:
        return bytes([n])
    out, n = [limit], n - limit
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(out + [n])


def hpack_literal(name: str, value: str) -> bytes:
    """Literal header field without indexing, new name (RFC 7541 section 6.2.2)."""
    n, v = name.lower().encode(), value.encode()
    return b"\x00" + hpack_int(len(n)) + n + hpack_int(len(v)) + v


def h2_post(
    to: Listener, authority: str, op: str, params: dict, *, tls: ssl.SSLContext | None = None, sni: str | None = None
) -> tuple[int, dict]:
    """One signed KMS call over HTTP/2 (prior knowledge on the plain port, ALPN h2 on
    the TLS port) whose :authority is `authority`; returns (status, JSON body)."""
    body = json.dumps(params).encode()
    signed = sign_headers(
        "http://127.0.0.1", body, {"Content-Type": JSON_1_1, "X-Amz-Target": KMS_TARGET + op, "Host": authority}
    )
    fields = [(":method", "POST"), (":scheme", "https" if tls else "http"), (":path", "/"), (":authority", authority)]
    fields += [(k, v) for k, v in signed.items() if k.lower() not in ("host", "content-length")]
    fields.append(("content-length", str(len(body))))
    assert ipaddress.ip_address(to.ip).is_loopback, to
    port = to.tls_port if tls else to.port
    sock = socket.create_connection((to.ip, port), timeout=30, source_address=("127.0.0.1", 0))
    try:
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname=sni)
            assert sock.selected_alpn_protocol() == "h2", sock.selected_alpn_protocol()
        sock.sendall(
            H2_PREFACE
            + h2_frame(H2_SETTINGS, 0, 0)
            + h2_frame(H2_HEADERS, H2_END_HEADERS, 1, b"".join(hpack_literal(k, v) for k, v in fields))
            + h2_frame(H2_DATA, H2_END_STREAM, 1, body)
        )
        reader = sock.makefile("rb")
        status, data = None, b""
        while True:
            head = reader.read(9)
            assert len(head) == 9, f"connection closed; status {status}, data {data!r}"
            length, kind, flags = int.from_bytes(head[:3], "big"), head[3], head[4]
            stream = int.from_bytes(head[5:], "big") & 0x7FFFFFFF
            payload = reader.read(length)
            if kind == H2_SETTINGS and not flags & H2_ACK:
                sock.sendall(h2_frame(H2_SETTINGS, H2_ACK, 0))
            elif kind in (H2_GOAWAY, H2_RST_STREAM):
                raise AssertionError(f"HTTP/2 frame {kind} {payload!r}")
            elif kind == H2_HEADERS and stream == 1:
                assert payload[0] & 0x80, f"status not from the static table: {payload[:16]!r}"
                status = H2_STATIC_STATUS[payload[0] & 0x7F]
            elif kind == H2_DATA and stream == 1:
                data += payload
            if stream == 1 and kind in (H2_HEADERS, H2_DATA) and flags & H2_END_STREAM:
                return status, json.loads(data) if data else {}
    finally:
        sock.close()


def record_with_context(cloudtrail, key: dict, marker: str) -> dict:
    """The Encrypt record whose encryption context carries `marker` (an HTTP/2
    response's request id header is HPACK-compressed; the context is not)."""
    deadline = time.monotonic() + 10
    while True:
        for e in lookup_events(cloudtrail, ("ResourceName", key["Arn"])):
            record = json.loads(e["CloudTrailEvent"])
            if (record.get("requestParameters") or {}).get("encryptionContext", {}).get("marker") == marker:
                return record
        assert time.monotonic() < deadline, f"no record with marker {marker}"
        time.sleep(0.2)


def test_http2_authority_naming_another_endpoint_does_not_change_the_endpoint(net, keys, ca, cloudtrail):  # noqa: F811
    a, b, public = net.a, net.b, net.public
    vpce_key, open_key = keys["vpce"], keys["open"]
    tls = tls_context(ca)
    tls.set_alpn_protocols(["h2"])
    for what, kwargs in [("h2c", {}), ("h2", {"tls": tls, "sni": b.dns})]:
        # A's address, :authority naming B: A's identity.
        marker = str(uuid.uuid4())
        status, body = h2_post(
            a, b.dns, "Encrypt", {**encrypt_params(vpce_key), "EncryptionContext": {"marker": marker}}, **kwargs
        )
        assert status == 200, (what, body)
        record = record_with_context(cloudtrail, vpce_key, marker)
        assert record.get("vpcEndpointId") == a.vpce_id and record["sourceIPAddress"] == "127.0.0.1", record
        assert ("tlsDetails" in record) == bool(kwargs)
        # B's address, :authority naming A: B's endpoint policy.
        b_kwargs = {**kwargs, "sni": a.dns} if kwargs else {}
        status, body = h2_post(b, a.dns, "Encrypt", encrypt_params(open_key), **b_kwargs)
        assert (status, body.get("__type")) == (400, "AccessDeniedException"), (what, body)
        assert body["message"].endswith(ENDPOINT_DENY), body
        # The public address, :authority naming A: no endpoint.
        status, body = h2_post(public, a.dns, "Encrypt", encrypt_params(vpce_key), **kwargs)
        assert (status, body.get("__type")) == (400, "AccessDeniedException"), (what, body)
        assert body["message"].endswith(KEY_POLICY_DENY), body


def test_proxy_protocol_preamble_is_not_an_origin(net, keys, kms):
    """A PROXY protocol header (v1 text, v2 binary) claiming A's workload as the
    source: the gateway speaks no PROXY protocol, so it is not a request at all."""
    a = net.a
    description = f"behind a PROXY header {uuid.uuid4()}"
    request = request_bytes("CreateKey", {"Description": description}, host=a.netloc)
    v1 = f"PROXY TCP4 {WORKLOAD_IN_A} {a.ip} 40000 {a.port}\r\n".encode()
    addresses = socket.inet_aton(WORKLOAD_IN_A) + socket.inet_aton(a.ip)
    addresses += (40000).to_bytes(2, "big") + a.port.to_bytes(2, "big")
    v2 = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + len(addresses).to_bytes(2, "big") + addresses
    before = key_ids(kms)
    for preamble in (v1, v2):
        reply = exchange(a.url, preamble + request)
        assert reply == b"" or reply.startswith(b"HTTP/1.1 400 "), reply[:300]
        assert reply.count(b"HTTP/1.1 ") <= 1, reply[:600]
    assert key_ids(kms) == before


# -- headers claiming another origin ------------------------------------------------------------


def spoofing_headers(*, ip: str, vpce_id: str, vpc_id: str, host: str) -> list[tuple[str, str]]:
    """Every header a gateway might take an origin from: proxies' client address and
    scheme headers, AWS-looking endpoint headers, the names of the gateway's own gRPC
    metadata (`x-aws-error-code`, `x-kms-denied-by-endpoint-policy`) and RequestContext
    fields, trace context carrying data, and a request id."""
    trace_id = uuid.uuid4().hex
    return [
        ("X-Forwarded-For", f"{ip}, {ip}"),
        ("X-Real-IP", ip),
        ("Forwarded", f'for="{ip}";proto=https;host={host};by={ip}'),
        ("True-Client-IP", ip),
        ("X-Client-IP", ip),
        ("Client-IP", ip),
        ("X-Originating-IP", ip),
        ("X-Cluster-Client-IP", ip),
        ("X-Remote-Addr", ip),
        ("CF-Connecting-IP", ip),
        ("Fastly-Client-IP", ip),
        ("X-Forwarded-Host", host),
        ("X-Original-Host", host),
        ("X-Host", host),
        ("X-Forwarded-Server", host),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Scheme", "https"),
        ("X-Forwarded-Port", "443"),
        ("X-Forwarded-Ssl", "on"),
        ("Front-End-Https", "on"),
        ("X-Url-Scheme", "https"),
        ("Via", f"1.1 {host}"),
        ("X-Amz-Source-Vpce", vpce_id),
        ("X-Amz-Source-Vpc", vpc_id),
        ("X-Amz-Vpce-Id", vpce_id),
        ("X-Amzn-Vpce-Id", vpce_id),
        ("X-Amzn-Vpce-Config", "1"),
        ("X-Amzn-Vpc-Id", vpc_id),
        ("X-Amz-Source-Ip", ip),
        ("X-Amz-Vpc-Source-Ip", ip),
        ("X-Amzn-Source-Ip", ip),
        ("X-Amz-Secure-Transport", "true"),
        ("X-Amzn-Tls-Version", "TLSv1.3"),
        ("X-Amzn-Tls-Cipher-Suite", "TLS_AES_128_GCM_SHA256"),
        ("X-Kms-Source-Ip", ip),
        ("X-Kms-Vpce-Id", vpce_id),
        ("X-Kms-Vpc-Id", vpc_id),
        ("X-Kms-Secure-Transport", "true"),
        ("X-Kms-Endpoint-Policy", json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*"}]})),
        ("X-Kms-Request-Context", json.dumps({"source_ip": ip, "vpce_id": vpce_id, "secure_transport": True})),
        ("X-Kms-Denied-By-Endpoint-Policy", "true"),
        ("X-Aws-Error-Code", "AccessDeniedException"),
        ("X-Amzn-RequestId", SPOOFED_REQUEST_ID),
        ("X-Amz-Request-Id", SPOOFED_REQUEST_ID),
        ("Traceparent", f"00-{trace_id}-{trace_id[:16]}-01"),
        ("Tracestate", f"kms=vpce:{vpce_id}"),
        ("Baggage", f"aws.vpce_id={vpce_id},aws.source_ip={ip},vpc_id={vpc_id}"),
        ("X-Amzn-Trace-Id", f"Root=1-{trace_id[:8]}-{trace_id[8:32]};VpceId={vpce_id}"),
    ]


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_origin_headers_change_nothing(stack, net, keys, cloudtrail, signed):
    """Each key allows kms:Encrypt only under one network condition; the request
    fails that condition and claims, in every header above, to meet it. Denied by
    the key policy each time, and recorded with the real origin."""
    a, public = net.a, net.public
    claims = spoofing_headers(ip=WORKLOAD_IN_A, vpce_id=a.vpce_id, vpc_id=a.vpc_id, host=a.dns)
    claims_public_ip = spoofing_headers(ip=TRUSTED_PUBLIC_IP, vpce_id=a.vpce_id, vpc_id=a.vpc_id, host=a.dns)
    cases = [
        # (key, listener, source address, claims, request target)
        ("vpce", public, ATTACKER_IP, claims, "/"),
        ("vpc", public, ATTACKER_IP, claims, "/"),
        # Through A itself, from the wrong address of the VPC.
        ("vpc_ip", a, ATTACKER_IP, claims, "/"),
        ("ip", public, ATTACKER_IP, claims_public_ip, "/"),
        ("tls", public, ATTACKER_IP, claims, "/"),
        # An https absolute-form target over plain HTTP is no TLS either.
        ("tls", public, ATTACKER_IP, claims, f"https://{KMS_HOST}/"),
    ]
    for name, via, source, headers, target in cases:
        key = keys[name]
        extra = {"signed_extra": headers} if signed else {"unsigned_extra": headers}
        data = request_bytes("Encrypt", encrypt_params(key), host=via.netloc, target=target, **extra)
        signed_headers = data.lower().split(b"signedheaders=", 1)[1].split(b",", 1)[0]
        assert (b"x-forwarded-for" in signed_headers) == signed, signed_headers
        resp = send(via, data, source=source)
        what = f"{name} through {via.name} ({'signed' if signed else 'unsigned'} claims)"
        rid = assert_denied(resp, key, "Encrypt", KEY_POLICY_DENY, what)
        # The x-kms-denied-by-endpoint-policy claim did not suppress the record either.
        assert_record(cloudtrail, key, rid, via=via, source_ip=source, error="AccessDeniedException")
    # Through B claiming A (DescribeKey: B's endpoint policy allows it, A's key does not).
    key = keys["vpce"]
    extra = {"signed_extra": claims} if signed else {"unsigned_extra": claims}
    data = request_bytes("DescribeKey", {"KeyId": key["KeyId"]}, host=net.b.netloc, **extra)
    resp = send(net.b, data, source=ATTACKER_IP)
    rid = assert_denied(resp, key, "DescribeKey", KEY_POLICY_DENY, "DescribeKey through B claiming A")
    assert_record(cloudtrail, key, rid, via=net.b, source_ip=ATTACKER_IP, error="AccessDeniedException")


def test_each_guarded_key_allows_its_real_origin(stack, net, keys, ca, cloudtrail):  # noqa: F811
    """Controls: every condition above can hold, when the network path meets it,
    so the denials above are the conditions' doing."""
    a, public = net.a, net.public
    for name, via, source in [
        ("vpce", a, ATTACKER_IP),
        ("vpc", a, ATTACKER_IP),
        ("vpc_ip", a, WORKLOAD_IN_A),
        ("ip", public, TRUSTED_PUBLIC_IP),
    ]:
        key = keys[name]
        rid = assert_ok(send(via, request_bytes("Encrypt", encrypt_params(key), host=via.netloc), source=source), name)
        assert_record(cloudtrail, key, rid, via=via, source_ip=source)
    key = keys["vpce"]
    rid = assert_ok(send(a, request_bytes("DescribeKey", {"KeyId": key["KeyId"]}, host=a.netloc)), "DescribeKey via A")
    assert_record(cloudtrail, key, rid, via=a, source_ip="127.0.0.1")
    key = keys["tls"]
    resp = send(public, request_bytes("Encrypt", encrypt_params(key), host=KMS_HOST), tls=tls_context(ca), sni=KMS_HOST)
    assert_record(cloudtrail, key, assert_ok(resp, "tls"), via=public, source_ip="127.0.0.1", tls=True)


# -- replay through another endpoint ------------------------------------------------------------


def test_replay_through_another_endpoint_is_that_endpoints_request(net, keys, cloudtrail):
    a, b, public = net.a, net.b, net.public
    # Encrypt under a key with the default policy, signed for A and sent there: allowed.
    key = keys["open"]
    data = request_bytes("Encrypt", encrypt_params(key), host=a.netloc)
    assert_record(cloudtrail, key, assert_ok(send(a, data), "through A"), via=a, source_ip="127.0.0.1")
    # The same bytes through B: B's endpoint policy denies (such a denial is not recorded).
    rid = assert_denied(send(b, data), key, "Encrypt", ENDPOINT_DENY, "replayed through B")
    assert_not_recorded(cloudtrail, key, rid)
    # Through the public endpoint: allowed, recorded without an endpoint.
    rid = assert_ok(send(public, data), "replayed publicly")
    assert_record(cloudtrail, key, rid, via=public, source_ip="127.0.0.1")

    # Under the key only endpoint A may use: A allows; through B the key policy sees B
    # (aws:SourceVpce) and denies, recorded with B; publicly it sees no endpoint.
    key = keys["vpce"]
    data = request_bytes("Encrypt", encrypt_params(key), host=a.netloc)
    assert_record(cloudtrail, key, assert_ok(send(a, data), "through A"), via=a, source_ip="127.0.0.1")
    rid = assert_denied(send(b, data), key, "Encrypt", KEY_POLICY_DENY, "replayed through B")
    assert_record(cloudtrail, key, rid, via=b, source_ip="127.0.0.1", error="AccessDeniedException")
    rid = assert_denied(send(public, data), key, "Encrypt", KEY_POLICY_DENY, "replayed publicly")
    assert_record(cloudtrail, key, rid, via=public, source_ip="127.0.0.1", error="AccessDeniedException")

    # A call every path allows, replayed on each: each record names the endpoint that
    # accepted it, from whichever address sent it.
    key = keys["open"]
    data = request_bytes("DescribeKey", {"KeyId": key["KeyId"]}, host=a.netloc)
    for via, source in [(a, "127.0.0.1"), (b, ATTACKER_IP), (public, TRUSTED_PUBLIC_IP), (a, WORKLOAD_IN_A)]:
        resp = send(via, data, source=source)
        rid = assert_ok(resp, f"DescribeKey via {via.name}")
        assert resp.json["KeyMetadata"]["KeyId"] == key["KeyId"]
        assert_record(cloudtrail, key, rid, via=via, source_ip=source)


# -- framing: Host lines, Transfer-Encoding / Content-Length ----------------------------------


def test_duplicate_host_lines_are_refused_and_nothing_runs(stack, net, kms):
    before = key_ids(kms)
    a, b = net.a, net.b
    sent = []
    for first, second in [(a.netloc, b.dns), (a.netloc, a.netloc), (KMS_HOST, a.netloc)]:
        description = f"duplicate host {uuid.uuid4()}"
        sent.append(description)
        # Signed over both lines as SigV4 joins them ("host:first,second"): the signature
        # verifies, so only the framing rule stops it.
        data = request_bytes("CreateKey", {"Description": description}, host=f"{first},{second}")
        data = data.replace(f"Host: {first},{second}\r\n".encode(), f"Host: {first}\r\nHost: {second}\r\n".encode())
        assert data.count(b"\r\nHost: ") == 2
        for via in (a, net.public):
            reply = exchange(via.url, data)
            assert reply.startswith(b"HTTP/1.1 400 "), reply[:300]
            assert reply.count(b"HTTP/1.1 ") == 1, reply[:600]
    # An HTTP/1.1 request without Host is refused the same way.
    data = request_bytes("CreateKey", {"Description": "no host"}, host="")
    data = data.replace(b"\r\nHost: \r\n", b"\r\n")
    assert b"Host:" not in data
    assert exchange(a.url, data).startswith(b"HTTP/1.1 400 ")
    assert key_ids(kms) == before
    # Control: one Host line, the same request runs.
    description = f"single host {uuid.uuid4()}"
    resp = send(a, request_bytes("CreateKey", {"Description": description}, host=a.netloc))
    assert resp.status == 200 and resp.json["KeyMetadata"]["Description"] == description, resp.body[:300]


# Transfer-Encoding lines, each with a Content-Length that disagrees with it.
TRANSFER_ENCODINGS = {
    "chunked, CL after": ["Transfer-Encoding: chunked"],
    "xchunked": ["Transfer-Encoding: xchunked"],
    "leading space": ["Transfer-Encoding:  chunked"],
    "tab": ["Transfer-Encoding:\tchunked"],
    "space before colon": ["Transfer-Encoding : chunked"],
    "upper case": ["Transfer-Encoding: CHUNKED"],
    "two lines, chunked first": ["Transfer-Encoding: chunked", "Transfer-Encoding: identity"],
    "two lines, chunked last": ["Transfer-Encoding: identity", "Transfer-Encoding: chunked"],
    "list, chunked first": ["Transfer-Encoding: chunked, identity"],
    "list, chunked last": ["Transfer-Encoding: identity, chunked"],
    "obs-fold": ["Transfer-Encoding:", " chunked"],
    "folded into another header": ["X-Padding: x", " Transfer-Encoding: chunked"],
    "parameter": ["Transfer-Encoding: chunked;x=1"],
    "quoted": ['Transfer-Encoding: "chunked"'],
    "vertical tab": ["Transfer-Encoding:\x0bchunked"],
}


@pytest.mark.parametrize("placement", ["cl-frames-smuggled", "te-frames-smuggled"])
@pytest.mark.parametrize("te", list(TRANSFER_ENCODINGS), ids=list(TRANSFER_ENCODINGS))
def test_transfer_encoding_and_content_length_smuggle_nothing(stack, kms, te, placement):
    """A signed CreateKey placed where one framing (Content-Length, or chunked)
    would read it as a second request on the connection. Whatever the gateway
    makes of the Transfer-Encoding line(s), at most one response comes back and
    the smuggled CreateKey never runs. The CL.TE case with a plain `chunked` and
    Content-Length first is test_request_smuggling's."""
    endpoint = stack.endpoint
    description = f"smuggled {te} {placement} {uuid.uuid4()}"
    smuggled = raw_request(endpoint, json.dumps({"Description": description}).encode(), "TrentService.CreateKey")
    if placement == "cl-frames-smuggled":
        # By Content-Length the body is the chunk-size line; the chunk is a request.
        chunk_line = f"{len(smuggled):x}\r\n".encode()
        body, content_length, signed_body = chunk_line + smuggled + b"\r\n0\r\n\r\n", len(chunk_line), smuggled
    else:
        # Chunked, the body ends at the last chunk; what follows is a request.
        body, signed_body = b"0\r\n\r\n" + smuggled, b""
        content_length = len(body)
    headers = sign_headers(endpoint, signed_body, {"Content-Type": JSON_1_1, "X-Amz-Target": KMS_TARGET + "ListKeys"})
    head = ["POST / HTTP/1.1", f"Host: {urlsplit(endpoint).netloc}"]
    head += TRANSFER_ENCODINGS[te] + [f"Content-Length: {content_length}"]
    head += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
    before = key_ids(kms)
    reply = exchange(endpoint, ("\r\n".join(head) + "\r\n\r\n").encode() + body)
    assert reply.count(b"HTTP/1.1 ") == 1, reply[:800]
    status = int(reply.split(b" ", 2)[1])
    assert status in (200, 400), reply[:300]
    # Answered or refused, the connection is closed after it (RFC 9112 section 6.1).
    assert b"\r\nconnection: close\r\n" in reply.split(b"\r\n\r\n", 1)[0].lower() + b"\r\n", reply[:300]
    assert key_ids(kms) == before, f"{te} / {placement}: the smuggled CreateKey ran"


def test_duplicate_content_length_smuggles_nothing(stack, kms):
    endpoint = stack.endpoint
    description = f"smuggled by content-length {uuid.uuid4()}"
    smuggled = raw_request(endpoint, json.dumps({"Description": description}).encode(), "TrentService.CreateKey")
    outer = b"{}"
    headers = sign_headers(endpoint, outer, {"Content-Type": JSON_1_1, "X-Amz-Target": KMS_TARGET + "ListKeys"})
    netloc = urlsplit(endpoint).netloc
    rest = [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
    before = key_ids(kms)
    for lengths in (
        [f"Content-Length: {len(outer)}", f"Content-Length: {len(outer) + len(smuggled)}"],
        [f"Content-Length: {len(outer) + len(smuggled)}", f"Content-Length: {len(outer)}"],
        [f"Content-Length: {len(outer)}, {len(outer) + len(smuggled)}"],
        [f"Content-Length: +{len(outer)}"],
    ):
        head = ["POST / HTTP/1.1", f"Host: {netloc}", *lengths, *rest]
        reply = exchange(endpoint, ("\r\n".join(head) + "\r\n\r\n").encode() + outer + smuggled)
        assert reply.startswith(b"HTTP/1.1 400 "), (lengths, reply[:300])
        assert reply.count(b"HTTP/1.1 ") == 1, (lengths, reply[:600])
    assert key_ids(kms) == before


# -- URI path normalization --------------------------------------------------------------------


def sign_for_path(body: bytes, headers: dict, path: str, *, normalize: bool) -> dict:
    """botocore's signature of a POST to `path` (ending in `/`): over the normalized
    path as botocore signs for every service but S3, or over the path as sent."""
    from urllib.parse import quote

    from botocore.auth import SigV4Auth

    assert path.endswith("/"), path
    url = "http://127.0.0.1" + path[:-1]  # sign_headers appends the final "/"
    if normalize:
        return sign_headers(url, body, headers)
    with mock.patch.object(SigV4Auth, "_normalize_url_path", lambda self, p: quote(p, safe="/~")):
        return sign_headers(url, body, headers)


@pytest.mark.parametrize("path", ["//", "/./", "/x/../", "/./x//../"])
def test_dot_segments_and_repeated_slashes_are_the_service_root(stack, kms, path):
    """botocore signs the normalized path (`/`) and sends the path as given; the
    gateway normalizes as AWS does for every service but S3, and does not route
    on the path: these are KMS's `POST /`. Signed over the raw path (S3's rule),
    the same request is refused."""
    netloc = urlsplit(stack.endpoint).netloc
    body = json.dumps({"Limit": 1}).encode()
    base = {"Content-Type": JSON_1_1, "X-Amz-Target": KMS_TARGET + "ListKeys", "Host": netloc}
    for signed, expect in [
        (sign_for_path(body, dict(base), path, normalize=True), 200),
        (sign_for_path(body, dict(base), path, normalize=False), 400),
    ]:
        head = [f"POST {path} HTTP/1.1", *[f"{k}: {v}" for k, v in signed.items() if k.lower() != "content-length"]]
        head.append(f"Content-Length: {len(body)}")
        host, port = netloc.rsplit(":", 1)
        resp = send(Listener("public", host, int(port), 0), ("\r\n".join(head) + "\r\n\r\n").encode() + body)
        assert resp.status == expect, (path, resp.body[:300])
        if expect == 200:
            assert "Keys" in resp.json
        else:
            assert resp.error_code == "InvalidSignatureException", resp.body[:300]
