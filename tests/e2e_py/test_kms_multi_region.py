"""Multi-Region keys through boto3: one stack serves every Region (the Region of a
request is its SigV4 credential scope), so clients for us-east-1 and us-west-2
against the same endpoint see the two copies of a multi-Region key.

CreateKey MultiRegion, DescribeKey's MultiRegionConfiguration, ReplicateKey (same
key id, same material: ciphertexts cross Regions), UpdatePrimaryRegion, rotation of
the primary reaching the replica, and the documented errors."""

from __future__ import annotations

import re

import pytest

from e2e_support import client_error

WEST = "us-west-2"
EU = "eu-west-1"


@pytest.fixture(scope="module")
def kms_west(client):
    return client("kms", "a", region=WEST)


@pytest.fixture(scope="module")
def kms_eu(client):
    return client("kms", "a", region=EU)


def test_multi_region_key_replicates_with_its_material(kms, kms_west, make_key):
    primary = make_key(MultiRegion=True, Tags=[{"TagKey": "k", "TagValue": "primary"}])
    key_id = primary["KeyId"]
    assert re.fullmatch(r"mrk-[0-9a-f]{32}", key_id)
    assert primary["MultiRegion"] is True
    config = primary["MultiRegionConfiguration"]
    assert config["MultiRegionKeyType"] == "PRIMARY"
    assert config["PrimaryKey"] == {"Arn": primary["Arn"], "Region": "us-east-1"}
    assert config["ReplicaKeys"] == []

    # The replica does not exist yet in us-west-2.
    with client_error("NotFoundException"):
        kms_west.describe_key(KeyId=key_id)

    blob = kms.encrypt(KeyId=key_id, Plaintext=b"from us-east-1", EncryptionContext={"a": "b"})[
        "CiphertextBlob"
    ]
    replica = kms.replicate_key(
        KeyId=key_id,
        ReplicaRegion=WEST,
        Description="the west replica",
        Tags=[{"TagKey": "k", "TagValue": "replica"}],
    )
    rmd = replica["ReplicaKeyMetadata"]
    west_arn = f"arn:aws:kms:{WEST}:111122223333:key/{key_id}"
    assert rmd["KeyId"] == key_id
    assert rmd["Arn"] == west_arn
    assert rmd["Description"] == "the west replica"
    assert rmd["KeyState"] == "Enabled"
    assert rmd["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    assert rmd["MultiRegionConfiguration"]["PrimaryKey"]["Region"] == "us-east-1"
    assert replica["ReplicaTags"] == [{"TagKey": "k", "TagValue": "replica"}]
    assert '"Version"' in replica["ReplicaPolicy"]

    # Both Regions see the set.
    md = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert md["MultiRegionConfiguration"]["ReplicaKeys"] == [{"Arn": west_arn, "Region": WEST}]
    west = kms_west.describe_key(KeyId=key_id)["KeyMetadata"]
    assert west["Arn"] == west_arn
    assert west["MultiRegionConfiguration"]["PrimaryKey"] == {"Arn": primary["Arn"], "Region": "us-east-1"}
    assert west["CurrentKeyMaterialId"] == md["CurrentKeyMaterialId"]
    assert kms_west.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "k", "TagValue": "replica"}]
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "k", "TagValue": "primary"}]
    assert any(k["KeyId"] == key_id for k in kms_west.list_keys(Limit=1000)["Keys"])

    # Same material: the primary's ciphertext decrypts in us-west-2 and back.
    out = kms_west.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})
    assert out["Plaintext"] == b"from us-east-1"
    assert out["KeyId"] == west_arn
    back = kms_west.encrypt(KeyId=key_id, Plaintext=b"from us-west-2")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=back)["Plaintext"] == b"from us-west-2"
    # Per-Region state: disabling the replica leaves the primary enabled.
    kms_west.disable_key(KeyId=key_id)
    with client_error("DisabledException"):
        kms_west.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})["Plaintext"] == b"from us-east-1"
    kms_west.enable_key(KeyId=key_id)

    # Rotation of the primary reaches the replica.
    kms.rotate_key_on_demand(KeyId=key_id)
    rotated = kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    assert rotated != md["CurrentKeyMaterialId"]
    assert kms_west.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"] == rotated
    fresh = kms.encrypt(KeyId=key_id, Plaintext=b"after rotation")["CiphertextBlob"]
    assert kms_west.decrypt(CiphertextBlob=fresh)["Plaintext"] == b"after rotation"
    with client_error("UnsupportedOperationException"):
        kms_west.rotate_key_on_demand(KeyId=key_id)
    # Automatic rotation is set on the primary; the replica shows it.
    with client_error("UnsupportedOperationException"):
        kms_west.enable_key_rotation(KeyId=key_id)
    assert kms_west.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=180)
    status = kms_west.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is True
    assert status["RotationPeriodInDays"] == 180
    assert status["KeyId"] == west_arn

    # Errors: the replica exists; a replica cannot be replicated; same Region.
    with client_error("AlreadyExistsException"):
        kms.replicate_key(KeyId=key_id, ReplicaRegion=WEST)
    with client_error("UnsupportedOperationException"):
        kms_west.replicate_key(KeyId=key_id, ReplicaRegion=EU)
    with client_error("ValidationException"):
        kms.replicate_key(KeyId=key_id, ReplicaRegion="us-east-1")


def test_update_primary_region(kms, kms_west, kms_eu, make_key):
    key_id = make_key(MultiRegion=True)["KeyId"]
    kms.replicate_key(KeyId=key_id, ReplicaRegion=WEST)
    kms.replicate_key(KeyId=key_id, ReplicaRegion=EU)
    md = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert sorted(r["Region"] for r in md["MultiRegionConfiguration"]["ReplicaKeys"]) == [EU, WEST]

    # Only in the primary's Region, only to a Region with a replica.
    with client_error("UnsupportedOperationException"):
        kms_west.update_primary_region(KeyId=key_id, PrimaryRegion=WEST)
    with client_error("NotFoundException"):
        kms.update_primary_region(KeyId=key_id, PrimaryRegion="ap-south-1")

    kms.update_primary_region(KeyId=key_id, PrimaryRegion=WEST)
    west = kms_west.describe_key(KeyId=key_id)["KeyMetadata"]["MultiRegionConfiguration"]
    assert west["MultiRegionKeyType"] == "PRIMARY"
    assert west["PrimaryKey"]["Region"] == WEST
    assert sorted(r["Region"] for r in west["ReplicaKeys"]) == [EU, "us-east-1"]
    east = kms.describe_key(KeyId=key_id)["KeyMetadata"]["MultiRegionConfiguration"]
    assert east["MultiRegionKeyType"] == "REPLICA"
    assert east["PrimaryKey"]["Region"] == WEST
    eu = kms_eu.describe_key(KeyId=key_id)["KeyMetadata"]["MultiRegionConfiguration"]
    assert eu["PrimaryKey"]["Region"] == WEST
    # The new primary replicates and rotates; the old one does not.
    with client_error("UnsupportedOperationException"):
        kms.replicate_key(KeyId=key_id, ReplicaRegion="ap-south-1")
    kms_west.rotate_key_on_demand(KeyId=key_id)
    blob = kms_west.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    assert kms_eu.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_single_region_keys_do_not_replicate(kms, key):
    assert key["MultiRegion"] is False
    assert "MultiRegionConfiguration" not in key
    with client_error("UnsupportedOperationException"):
        kms.replicate_key(KeyId=key["KeyId"], ReplicaRegion=WEST)
    with client_error("UnsupportedOperationException"):
        kms.update_primary_region(KeyId=key["KeyId"], PrimaryRegion=WEST)
    with client_error("NotFoundException"):
        kms.replicate_key(KeyId="mrk-0123456789abcdef0123456789abcdef", ReplicaRegion=WEST)


def test_asymmetric_multi_region_key(kms, kms_west, make_key):
    key = make_key(MultiRegion=True, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    kms.replicate_key(KeyId=key["KeyId"], ReplicaRegion=WEST)
    a = kms.get_public_key(KeyId=key["KeyId"])["PublicKey"]
    b = kms_west.get_public_key(KeyId=key["KeyId"])["PublicKey"]
    assert a == b
    sig = kms_west.sign(KeyId=key["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    assert kms.verify(KeyId=key["KeyId"], Message=b"m", Signature=sig, SigningAlgorithm="ECDSA_SHA_256")[
        "SignatureValid"
    ]


def test_primary_key_pending_replica_deletion(kms, kms_west, make_key):
    """ScheduleKeyDeletion of a primary key with replicas: PendingReplicaDeletion,
    unusable, not replicable, its primary Region fixed, until its last replica is
    deleted (the move to PendingDeletion when a replica is purged needs days to
    pass: the keystore's unit tests cover it with an injected time)."""
    key_id = make_key(MultiRegion=True)["KeyId"]
    arn = f"arn:aws:kms:us-east-1:111122223333:key/{key_id}"
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    kms.replicate_key(KeyId=key_id, ReplicaRegion=WEST)

    resp = kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert resp["KeyId"] == arn
    assert resp["KeyState"] == "PendingReplicaDeletion"
    assert resp["PendingWindowInDays"] == 7
    assert "DeletionDate" not in resp
    md = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert md["KeyState"] == "PendingReplicaDeletion"
    assert md["Enabled"] is False
    assert md["PendingDeletionWindowInDays"] == 7
    assert "DeletionDate" not in md

    for call in (
        lambda: kms.encrypt(KeyId=key_id, Plaintext=b"y"),
        lambda: kms.decrypt(CiphertextBlob=blob),
        lambda: kms.replicate_key(KeyId=key_id, ReplicaRegion=EU),
        lambda: kms.update_primary_region(KeyId=key_id, PrimaryRegion=WEST),
        lambda: kms.schedule_key_deletion(KeyId=key_id),
    ):
        with client_error("KMSInvalidStateException") as err:
            call()
        assert err["error"].response["Error"]["Message"] == f"{arn} is pending replica deletion."

    # The replica is untouched; scheduling it starts its own waiting period, and the
    # primary keeps waiting (scheduled is not deleted).
    assert kms_west.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    replica = kms_west.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert replica["KeyState"] == "PendingDeletion"
    assert "DeletionDate" in replica
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingReplicaDeletion"

    # CancelKeyDeletion: Disabled, as from PendingDeletion.
    assert kms.cancel_key_deletion(KeyId=key_id)["KeyId"] == arn
    md = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert md["KeyState"] == "Disabled"
    assert "PendingDeletionWindowInDays" not in md
    kms_west.cancel_key_deletion(KeyId=key_id)
    kms.enable_key(KeyId=key_id)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
