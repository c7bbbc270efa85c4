"""No leak of file descriptors or threads: after hundreds of calls, each on a connection of
its own, failed ones (bad signatures, unknown keys) among them, the stack's open file
descriptors and threads come back to where they were once the connections close."""

from __future__ import annotations

import os
import time

import pytest
from botocore.exceptions import ClientError

from e2e_support import Stack


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def threads(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def settle(pid: int, ceiling: int, count=fds, timeout: float = 10.0) -> int:
    """Wait until `count(pid)` is at most `ceiling` (connections close asynchronously)."""
    deadline = time.monotonic() + timeout
    n = count(pid)
    while n > ceiling and time.monotonic() < deadline:
        time.sleep(0.2)
        n = count(pid)
    return n


@pytest.fixture
def own_stack(tmp_path):
    s = Stack(tmp_path / "data", tmp_path / "kms-stack.log")
    s.start()
    yield s
    s.stop()


def test_connections_and_failures_leak_no_fds_or_threads(own_stack):
    pid = own_stack.proc.pid
    kms = own_stack.client("kms", "a")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.encrypt(KeyId=key_id, Plaintext=b"warm up")
    base_fds = settle(pid, 0, timeout=1.0)
    base_threads = threads(pid)

    for i in range(40):
        # A new client each time: a new TCP connection per call.
        c = own_stack.client("kms", "a")
        blob = c.encrypt(KeyId=key_id, Plaintext=b"x" * (i % 64 + 1))["CiphertextBlob"]
        assert c.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x" * (i % 64 + 1)
        with pytest.raises(ClientError) as e:
            c.describe_key(KeyId="alias/does-not-exist")
        assert e.value.response["Error"]["Code"] == "NotFoundException"
        bad = own_stack.client("kms", "a", secret_key="wrong-secret-key-for-this-test")
        with pytest.raises(ClientError) as e:
            bad.list_keys()
        assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
        c.close()
        bad.close()

    print(f"fds {base_fds} -> {fds(pid)}, threads {base_threads} -> {threads(pid)}")
    # Slack for a few pooled connections the services keep between them.
    after = settle(pid, base_fds + 8)
    assert after <= base_fds + 8, f"fds: {base_fds} before, {after} after 160 calls"
    after_threads = settle(pid, base_threads + 2, count=threads)
    assert after_threads <= base_threads + 2, f"threads: {base_threads} before, {after_threads} after"
