"""Request quotas (issue 9): a stack of its own with low quotas, driven by boto3
with retries disabled.

The stack runs with `KMS_QUOTA_SCALE=0` (no default quota) and
`KMS_QUOTAS=symmetric=20,CreateKey=3,ListAliases=1`, the environment form of
`kms-stack --quota-scale 0 --quota symmetric=20 --quota CreateKey=3 ...`.
"""

from __future__ import annotations

import email.utils
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from e2e_support import (
    KMS_TARGET,
    Stack,
    by_request_id,
    event_json,
    raw_post,
    wait_for_events,
)

SYMMETRIC_QUOTA = 20
CREATE_KEY_QUOTA = 3
THROTTLED_MESSAGE = "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."


@pytest.fixture(scope="module")
def throttled(tmp_path_factory) -> Stack:
    base = tmp_path_factory.mktemp("kms-throttled")
    s = Stack(base / "data", base / "kms-stack.log")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KMS_QUOTA_SCALE", "0")
        mp.setenv("KMS_QUOTAS", f"symmetric={SYMMETRIC_QUOTA},CreateKey={CREATE_KEY_QUOTA},ListAliases=1")
        s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def kms_a(throttled):
    return throttled.client("kms", "a")


@pytest.fixture(scope="module")
def kms_b(throttled):
    return throttled.client("kms", "b")


@pytest.fixture(scope="module")
def keys(kms_a, kms_b):
    a = kms_a.create_key(Description="throttling a")["KeyMetadata"]["KeyId"]
    b = kms_b.create_key(Description="throttling b")["KeyMetadata"]["KeyId"]
    # Start every test with full buckets.
    time.sleep(1.1)
    return {"a": a, "b": b}


def refill():
    """Long enough for every bucket of the stack to be full again."""
    time.sleep(1.2)


def call(fn):
    """(True, response) or (False, ClientError response)."""
    try:
        return True, fn()
    except ClientError as e:
        return False, e.response


def hammer(fn, n: int, threads: int = 12):
    """Run `fn` n times from `threads` threads; returns the outcomes and the seconds taken."""
    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(lambda _: call(fn), range(n)))
    return outcomes, time.monotonic() - started


def assert_throttled(resp: dict) -> None:
    meta = resp["ResponseMetadata"]
    assert resp["Error"]["Code"] == "ThrottlingException", resp["Error"]
    assert resp["Error"]["Message"] == THROTTLED_MESSAGE
    assert meta["HTTPStatusCode"] == 400
    date = meta["HTTPHeaders"].get("date")
    assert date, meta["HTTPHeaders"]
    assert email.utils.parsedate_to_datetime(date).tzinfo is not None
    assert meta["RequestId"]


def test_encrypt_over_the_symmetric_quota_is_throttled_then_recovers(throttled, kms_a, kms_b, keys):
    ct = throttled.client("cloudtrail", "a")
    outcomes, elapsed = hammer(lambda: kms_a.encrypt(KeyId=keys["a"], Plaintext=b"x" * 32), 60)
    ok = [r for good, r in outcomes if good]
    throttled_calls = [r for good, r in outcomes if not good]
    for r in throttled_calls:
        assert_throttled(r)
    # The burst (one second's quota) plus what refilled while the calls ran.
    assert SYMMETRIC_QUOTA <= len(ok) <= SYMMETRIC_QUOTA + SYMMETRIC_QUOTA * elapsed + 1, (len(ok), elapsed)
    assert throttled_calls, f"60 calls in {elapsed:.2f} s against {SYMMETRIC_QUOTA}/s"

    # Another account's buckets are its own: not throttled by a's load.
    for _ in range(5):
        kms_b.encrypt(KeyId=keys["b"], Plaintext=b"b")

    # A second later a's bucket has refilled.
    refill()
    for _ in range(5):
        kms_a.encrypt(KeyId=keys["a"], Plaintext=b"again")

    # Successful calls are recorded; throttled ones are not (nothing ran).
    succeeded = ok[-1]["ResponseMetadata"]["RequestId"]
    events = wait_for_events(
        ct, ("EventName", "Encrypt"), lambda evs: by_request_id(evs, succeeded) is not None, timeout=15
    )
    assert by_request_id(events, succeeded) is not None
    recorded = {event_json(e).get("requestID") for e in events}
    throttled_ids = {r["ResponseMetadata"]["RequestId"] for r in throttled_calls}
    assert not throttled_ids & recorded, "a throttled call has a CloudTrail record"
    assert not [e for e in events if event_json(e).get("errorCode") == "ThrottlingException"]


def test_management_quota_is_independent_of_the_cryptographic_one(kms_a, keys):
    refill()
    # CreateKey: 3 per second.
    created, elapsed = hammer(lambda: kms_a.create_key(Description="throttling create"), 12)
    ok = [r for good, r in created if good]
    throttled_calls = [r for good, r in created if not good]
    assert CREATE_KEY_QUOTA <= len(ok) <= CREATE_KEY_QUOTA + CREATE_KEY_QUOTA * elapsed + 1, (len(ok), elapsed)
    assert throttled_calls, f"12 CreateKey calls in {elapsed:.2f} s against 3/s"
    for r in throttled_calls:
        assert_throttled(r)

    # The symmetric quota was untouched by CreateKey throttling.
    for _ in range(5):
        kms_a.encrypt(KeyId=keys["a"], Plaintext=b"independent")

    # Exhaust the symmetric quota: operations with their own quota (none for
    # DescribeKey here) still answer.
    outcomes, _ = hammer(lambda: kms_a.generate_data_key(KeyId=keys["a"], KeySpec="AES_256"), 50)
    assert any(not good for good, _ in outcomes)
    kms_a.describe_key(KeyId=keys["a"])
    kms_a.list_keys(Limit=1)

    refill()
    kms_a.create_key(Description="throttling after refill")
    kms_a.encrypt(KeyId=keys["a"], Plaintext=b"after refill")


def test_throttling_response_is_the_kms_json_error(throttled, keys):
    refill()
    first = raw_post(throttled.endpoint, {}, target=KMS_TARGET + "ListAliases")
    assert first.status == 200, first.body
    second = raw_post(throttled.endpoint, {}, target=KMS_TARGET + "ListAliases")
    assert second.status == 400, second.body
    assert second.json == {"__type": "ThrottlingException", "message": THROTTLED_MESSAGE}
    assert second.header("Content-Type") == "application/x-amz-json-1.1"
    assert second.header("Date")
    assert second.header("x-amzn-RequestId")
    # Another account is not affected.
    other = raw_post(throttled.endpoint, {}, target=KMS_TARGET + "ListAliases", account="b")
    assert other.status == 200, other.body
