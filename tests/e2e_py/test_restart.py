"""Durability: a stack stopped with Ctrl-C (SIGINT) and started again on the
same data dir still has its keys, aliases, tags, policies and audit events."""

from __future__ import annotations

import json

import pytest

from e2e_support import by_request_id, event_json, lookup_events, start_stack, unique, wait_for_events


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def test_state_survives_restart(data_dir, tmp_path):
    first = start_stack(data_dir, tmp_path / "first.log")
    try:
        kms = first.client("kms", "a")
        ct = first.client("cloudtrail", "a")
        md = kms.create_key(Description="survives restart", Tags=[{"TagKey": "k", "TagValue": "v"}])["KeyMetadata"]
        alias = unique("alias/e2e-restart")
        kms.create_alias(AliasName=alias, TargetKeyId=md["KeyId"])
        policy = json.loads(kms.get_key_policy(KeyId=md["KeyId"], PolicyName="default")["Policy"])
        enc = kms.encrypt(KeyId=alias, Plaintext=b"durable", EncryptionContext={"c": "1"})
        blob = enc["CiphertextBlob"]
        encrypt_rid = enc["ResponseMetadata"]["RequestId"]
        disabled = kms.create_key(Description="disabled before restart")["KeyMetadata"]
        kms.disable_key(KeyId=disabled["KeyId"])
        pending = kms.create_key(Description="pending before restart")["KeyMetadata"]
        scheduled = kms.schedule_key_deletion(KeyId=pending["KeyId"], PendingWindowInDays=7)
        b_key = first.client("kms", "b").create_key(Description="account b")["KeyMetadata"]
        events_before = wait_for_events(
            ct, ("ResourceName", md["Arn"]), lambda evs: by_request_id(evs, encrypt_rid) is not None
        )
        assert by_request_id(events_before, encrypt_rid) is not None
        described_before = kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]
    finally:
        rc = first.stop()
    assert rc == 0, f"kms-stack did not shut down cleanly on SIGINT (exit {rc}):\n{first.log_tail()}"

    second = start_stack(data_dir, tmp_path / "second.log")
    try:
        kms = second.client("kms", "a")
        ct = second.client("cloudtrail", "a")
        assert second.endpoint  # a new process, maybe a new port
        # The key material survived: the old ciphertext decrypts.
        dec = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"c": "1"})
        assert dec["Plaintext"] == b"durable"
        assert dec["KeyId"] == md["Arn"]
        # Metadata, alias, tags, policy.
        assert kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"] == described_before
        assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == md["KeyId"]
        tags = kms.list_resource_tags(KeyId=md["KeyId"])["Tags"]
        assert tags == [{"TagKey": "k", "TagValue": "v"}]
        assert json.loads(kms.get_key_policy(KeyId=md["KeyId"], PolicyName="default")["Policy"]) == policy
        # Key states.
        assert kms.describe_key(KeyId=disabled["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"
        p = kms.describe_key(KeyId=pending["KeyId"])["KeyMetadata"]
        assert p["KeyState"] == "PendingDeletion"
        assert p["DeletionDate"] == scheduled["DeletionDate"]
        # Both accounts' credentials still work and keys stay in their account.
        b_keys = {k["KeyId"] for k in second.client("kms", "b").list_keys()["Keys"]}
        assert b_key["KeyId"] in b_keys and md["KeyId"] not in b_keys
        # New work with the old key.
        again = kms.encrypt(KeyId=alias, Plaintext=b"after restart")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=again)["Plaintext"] == b"after restart"
        # The audit trail from before the restart is still there, unchanged.
        events_after = lookup_events(ct, ("ResourceName", md["Arn"]))
        after_ids = {e["EventId"] for e in events_after}
        assert {e["EventId"] for e in events_before} <= after_ids
        e = by_request_id(events_after, encrypt_rid)
        assert e is not None
        assert event_json(e) == event_json(by_request_id(events_before, encrypt_rid))
        assert len(events_after) > len(events_before)  # the new calls were added
    finally:
        rc = second.stop()
    assert rc == 0, f"kms-stack did not shut down cleanly on SIGINT (exit {rc}):\n{second.log_tail()}"


def test_restart_with_no_activity_keeps_accounts(data_dir, tmp_path):
    """A data dir is bootstrapped once: restarting does not fail or re-create accounts."""
    first = start_stack(data_dir, tmp_path / "first.log")
    try:
        key_id = first.client("kms", "a").create_key()["KeyMetadata"]["KeyId"]
    finally:
        assert first.stop() == 0
    for n in range(2):
        s = start_stack(data_dir, tmp_path / f"again-{n}.log")
        try:
            ids = {k["KeyId"] for k in s.client("kms", "a").list_keys()["Keys"]}
            assert key_id in ids
        finally:
            assert s.stop() == 0
