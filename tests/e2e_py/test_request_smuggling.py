"""Request smuggling (CL.TE): a request with both Content-Length and Transfer-Encoding: chunked
whose chunk carries a complete, validly signed CreateKey. A server that framed the body by
Content-Length would read the chunk as a second request and create the key; the gateway frames
it by Transfer-Encoding, so the smuggled CreateKey never runs. A control sends the same bytes
as a request of their own: they do create the key."""

from __future__ import annotations

import json
import socket
import uuid
from urllib.parse import urlsplit

from e2e_support import JSON_1_1, assert_loopback_endpoint, sign_headers


def raw_request(endpoint: str, body: bytes, target: str) -> bytes:
    headers = sign_headers(endpoint, body, {"Content-Type": JSON_1_1, "X-Amz-Target": target})
    host = urlsplit(endpoint).netloc
    lines = ["POST / HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def exchange(endpoint: str, data: bytes) -> bytes:
    """Send `data` on one connection; read until the server closes it or is quiet for 2 s
    (no half-close: the server would drop the connection at end of input)."""
    assert_loopback_endpoint(endpoint)
    parts = urlsplit(endpoint)
    with socket.create_connection((parts.hostname, parts.port), timeout=2) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except socket.timeout:
            pass
    return out


def key_ids(kms) -> set[str]:
    return {k["KeyId"] for page in kms.get_paginator("list_keys").paginate() for k in page["Keys"]}


def test_a_cl_te_smuggled_request_never_runs(endpoint, kms):
    description = f"smuggled-{uuid.uuid4()}"
    before = key_ids(kms)
    smuggled = raw_request(endpoint, json.dumps({"Description": description}).encode(), "TrentService.CreateKey")
    chunk_line = f"{len(smuggled):x}\r\n".encode()
    chunked = chunk_line + smuggled + b"\r\n0\r\n\r\n"
    # Signed over the body as Transfer-Encoding frames it (the smuggled bytes).
    outer_headers = sign_headers(endpoint, smuggled, {"Content-Type": JSON_1_1, "X-Amz-Target": "TrentService.ListKeys"})
    host = urlsplit(endpoint).netloc
    head = [
        "POST / HTTP/1.1",
        f"Host: {host}",
        # What a Content-Length framer would use: just the chunk-size line.
        f"Content-Length: {len(chunk_line)}",
        "Transfer-Encoding: chunked",
    ]
    head += [f"{k}: {v}" for k, v in outer_headers.items() if k.lower() not in ("host", "content-length")]
    reply = exchange(endpoint, ("\r\n".join(head) + "\r\n\r\n").encode() + chunked)

    # Framed by Transfer-Encoding (RFC 9112 §6.3): one request whose body is the smuggled
    # bytes, no ListKeys JSON, so exactly one response, a 400.
    assert reply.count(b"HTTP/1.1 ") == 1, reply[:500]
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:500]

    # The smuggled CreateKey did not run: no new key in the account (the suite runs
    # one test at a time).
    assert key_ids(kms) == before

    # Control: the same bytes sent as a request of their own do create the key,
    # so the check above could fail.
    alone = exchange(endpoint, smuggled)
    assert alone.startswith(b"HTTP/1.1 200"), alone[:500]
    created = json.loads(alone.split(b"\r\n\r\n", 1)[1])["KeyMetadata"]
    assert created["Description"] == description
    assert key_ids(kms) == before | {created["KeyId"]}
