"""Fixtures of the Python end-to-end suite.

- `stack`: one `kms-stack` for the whole session on a fresh temporary data dir.
- `kms`, `kms_b`, `cloudtrail`, `cloudtrail_b`: boto3 clients of accounts
  111122223333 (a) and 444455556666 (b) bound to it; `client` builds others.
- `aws`: the aws CLI bound to it.
- `make_key`: creates a KMS key in account a and returns its KeyMetadata.
- `start_stack(data_dir)` (from e2e_support) starts another stack, e.g. for
  the restart test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e_support import (  # noqa: E402
    AwsCli,
    Stack,
    isolate_aws_env,
    start_stack,
)

# Before any boto3 session exists: never read ~/.aws or ambient credentials.
isolate_aws_env()

__all__ = ["start_stack"]


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    base = tmp_path_factory.mktemp("kms-session")
    s = Stack(base / "data", base / "kms-stack.log")
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def endpoint(stack) -> str:
    return stack.endpoint


@pytest.fixture(scope="session")
def client(stack):
    """client(service, account="a", access_key=None, secret_key=None, region=...)"""
    return stack.client


@pytest.fixture(scope="session")
def kms(stack):
    return stack.client("kms", "a")


@pytest.fixture(scope="session")
def kms_b(stack):
    return stack.client("kms", "b")


@pytest.fixture(scope="session")
def cloudtrail(stack):
    return stack.client("cloudtrail", "a")


@pytest.fixture(scope="session")
def cloudtrail_b(stack):
    return stack.client("cloudtrail", "b")


@pytest.fixture(scope="session")
def aws(stack, tmp_path_factory) -> AwsCli:
    return AwsCli(stack.endpoint, tmp_path_factory.mktemp("aws-cli"))


@pytest.fixture
def make_key(kms, request):
    """make_key(**create_key_kwargs) -> KeyMetadata of a new key of account a."""

    def make(**kwargs):
        kwargs.setdefault("Description", f"e2e {request.node.name}"[:8192])
        return kms.create_key(**kwargs)["KeyMetadata"]

    return make


@pytest.fixture
def key(make_key):
    """A fresh enabled symmetric key of account a (KeyMetadata)."""
    return make_key()
