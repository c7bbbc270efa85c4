"""The backends' gRPC ports are no attack surface (internal mutual TLS).

The session's `kms-stack` prints its backends' ports and the folder of the
internal CA (`internal gRPC (mutual TLS, <dir>): registry .. keystore ..`).
Someone who reaches the keystore's port tries what used to work: a gRPC
GenerateRandom in the name of account 111122223333's root, framed by hand
(HTTP/2 and protobuf, no gRPC library):

- over plaintext TCP (h2c) the port does not speak HTTP/2 at all: the reply is
  a TLS alert or nothing, never an HTTP/2 frame;
- over TLS without a client certificate (python `ssl`, trusting the internal
  CA) the handshake is refused and nothing comes back;
- with the certificate of the registry's role, the connection is served but
  the call is denied: no random bytes;
- with the gateway's certificate the same bytes get 16 random bytes (so the
  framing is right and the refusals above are the server's doing).

Everything here is 127.0.0.1.
"""

from __future__ import annotations

import re
import socket
import ssl
import struct
import time
from pathlib import Path

import pytest

INTERNAL_RE = re.compile(
    r"internal gRPC \(mutual TLS, (.+?)\): registry (\S+) authz (\S+) keystore (\S+) audit (\S+)"
)

PATH = "/kms.keystore.v1.KeyStore/GenerateRandom"
AUTHORITY = "keystore.internal.kms"
ACCOUNT = "111122223333"


# -- the stack's backends ------------------------------------------------------
@pytest.fixture(scope="module")
def internal(stack):
    """(internal TLS dir, {service: (host, port)}) from the stack's output."""
    deadline = time.monotonic() + 30
    while True:
        m = INTERNAL_RE.search(Path(stack.log_path).read_text("utf-8", "replace"))
        if m:
            break
        assert time.monotonic() < deadline, "kms-stack did not print its internal gRPC ports"
        time.sleep(0.1)
    addrs = {}
    for name, addr in zip(("registry", "authz", "keystore", "audit"), m.groups()[1:]):
        host, port = addr.rsplit(":", 1)
        assert host == "127.0.0.1", addr
        addrs[name] = (host, int(port))
    return Path(m.group(1)), addrs


# -- protobuf and HTTP/2, by hand ------------------------------------------------
def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number: int, value) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(number << 3 | 2) + varint(len(value)) + value


def generate_random_request() -> bytes:
    """GenerateRandomRequest{number_of_bytes: 16, context: root of ACCOUNT}."""
    caller = (
        field(1, ACCOUNT)
        + field(2, f"arn:aws:iam::{ACCOUNT}:root")
        + field(3, ACCOUNT)
        + field(4, "Root")
    )
    context = field(1, "internal-mtls-e2e") + field(2, caller) + field(3, "127.0.0.1") + field(7, "us-east-1")
    return field(1, 16) + field(100, context)


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def literal(index: int, value: str) -> bytes:
    """HPACK literal without indexing, name from the static table (index < 15)."""
    assert index < 15 and len(value) < 127
    return bytes([index, len(value)]) + value.encode()


def grpc_call() -> bytes:
    """Connection preface, SETTINGS, and one unary call on stream 1."""
    headers = (
        b"\x83"  # :method POST
        + b"\x86"  # :scheme http
        + literal(4, PATH)  # :path
        + literal(1, AUTHORITY)  # :authority
        + b"\x0f\x10" + bytes([16]) + b"application/grpc"  # content-type (static 31)
        + b"\x00\x02te\x08trailers"
    )
    message = generate_random_request()
    body = b"\x00" + struct.pack(">I", len(message)) + message
    return (
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        + frame(0x4, 0, 0, b"")  # SETTINGS
        + frame(0x1, 0x4, 1, headers)  # HEADERS, END_HEADERS
        + frame(0x0, 0x1, 1, body)  # DATA, END_STREAM
    )


def exchange(sock, timeout: float = 5.0):
    """Send the call; read frames until stream 1 ends, the peer closes or
    refuses, or `timeout`. Returns (raw bytes received, frames, error)."""
    sock.settimeout(timeout)
    raw = b""
    frames = []
    error = None
    try:
        sock.sendall(grpc_call())
        deadline = time.monotonic() + timeout
        buf = b""
        done = False
        while not done and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
            buf += chunk
            while len(buf) >= 9:
                length = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + length:
                    break
                kind, flags = buf[3], buf[4]
                stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                payload = buf[9 : 9 + length]
                buf = buf[9 + length :]
                frames.append((kind, flags, stream, payload))
                if kind == 0x4 and not flags & 0x1:
                    sock.sendall(frame(0x4, 0x1, 0, b""))  # SETTINGS ACK
                if stream == 1 and flags & 0x1 and kind in (0x0, 0x1):
                    done = True  # END_STREAM: the call is over
                if kind == 0x7:  # GOAWAY
                    done = True
    except (ssl.SSLError, ConnectionError, socket.timeout, OSError) as e:
        error = e
    return raw, frames, error


def random_bytes(frames) -> bytes | None:
    """The plaintext of a GenerateRandomResponse in the DATA of stream 1."""
    data = b"".join(p for kind, _, stream, p in frames if kind == 0x0 and stream == 1)
    if len(data) < 5:
        return None
    message = data[5:]
    if message[:2] != b"\x0a\x10" or len(message) != 18:
        return None
    return message[2:]


def tls_context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(ca))
    ctx.check_hostname = True
    ctx.set_alpn_protocols(["h2"])
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def call_over_tls(addr, ctx: ssl.SSLContext):
    raw_sock = socket.create_connection(addr, timeout=5)
    try:
        try:
            sock = ctx.wrap_socket(raw_sock, server_hostname=AUTHORITY)
        except (ssl.SSLError, ConnectionError, OSError) as e:
            return b"", [], e
        with sock:
            return exchange(sock)
    finally:
        raw_sock.close()


# -- the tests ---------------------------------------------------------------
def test_plaintext_h2c_gets_no_http2_at_all(internal):
    _, addrs = internal
    with socket.create_connection(addrs["keystore"], timeout=5) as sock:
        raw, frames, error = exchange(sock)
    assert random_bytes(frames) is None
    # An HTTP/2 server's first frame is SETTINGS (type 4, stream 0); a TLS
    # server answers garbage with an alert record (0x15) or just closes.
    assert raw == b"" or raw[0] == 0x15, (raw[:32], error)


def test_tls_without_a_client_certificate_is_refused(internal):
    tls_dir, addrs = internal
    raw, frames, error = call_over_tls(addrs["keystore"], tls_context(tls_dir / "ca.pem"))
    assert random_bytes(frames) is None
    assert raw == b"", raw[:64]
    # TLS 1.3: the client's side of the handshake ends before the server
    # checks the certificate; its refusal arrives as an alert on the first read.
    assert error is not None
    assert "certificate" in str(error).lower() or isinstance(error, (ConnectionError, ssl.SSLEOFError)), error


def test_an_internal_role_the_keystore_does_not_serve_is_denied(internal):
    tls_dir, addrs = internal
    ctx = tls_context(tls_dir / "ca.pem", tls_dir / "registry.pem", tls_dir / "registry.key")
    raw, frames, error = call_over_tls(addrs["keystore"], ctx)
    # Served (HTTP/2 frames came back) but no answer: grpc-status only.
    assert frames, (raw[:64], error)
    assert random_bytes(frames) is None
    assert not any(kind == 0x0 and stream == 1 and p for kind, _, stream, p in frames)


def test_the_gateway_role_gets_an_answer(internal):
    """The control: the same bytes with the gateway's certificate work."""
    tls_dir, addrs = internal
    ctx = tls_context(tls_dir / "ca.pem", tls_dir / "gateway.pem", tls_dir / "gateway.key")
    raw, frames, error = call_over_tls(addrs["keystore"], ctx)
    got = random_bytes(frames)
    assert got is not None and len(got) == 16, (frames, error)


def test_the_internal_ca_is_not_the_public_one(stack, internal):
    tls_dir, _ = internal
    public_ca = Path(stack.data_dir) / "tls" / "ca.pem"
    assert public_ca.read_bytes() != (tls_dir / "ca.pem").read_bytes()
    assert (tls_dir / "ca.key").stat().st_mode & 0o077 == 0
    assert (tls_dir / "gateway.key").stat().st_mode & 0o077 == 0
