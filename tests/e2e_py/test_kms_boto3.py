"""Every supported KMS operation through boto3, asserting AWS KMS's behaviour
(botocore model kms/2014-11-01 and its documentation)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from e2e_support import (
    ACCOUNT_A,
    UUID_RE,
    alias_arn,
    client_error,
    key_arn,
    unique,
    utcnow,
)


def assert_new_symmetric_key(md: dict, description: str = "") -> None:
    assert UUID_RE.match(md["KeyId"]), md["KeyId"]
    assert md["Arn"] == f"arn:aws:kms:us-east-1:111122223333:key/{md['KeyId']}"
    assert md["AWSAccountId"] == "111122223333"
    assert md["Enabled"] is True
    assert md["KeyState"] == "Enabled"
    assert md["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert md["CustomerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
    assert md["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert md["Origin"] == "AWS_KMS"
    assert md["KeyManager"] == "CUSTOMER"
    assert md["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert md["Description"] == description
    assert md["MultiRegion"] is False
    assert "DeletionDate" not in md
    assert "SigningAlgorithms" not in md
    created = md["CreationDate"]
    assert isinstance(created, dt.datetime)
    assert abs((utcnow() - created).total_seconds()) < 300, created


# -- CreateKey / DescribeKey --------------------------------------------------


def test_create_key_metadata(kms):
    md = kms.create_key(Description="e2e create key")["KeyMetadata"]
    assert_new_symmetric_key(md, "e2e create key")


def test_create_key_without_description_has_empty_description(kms):
    md = kms.create_key()["KeyMetadata"]
    assert_new_symmetric_key(md, "")


def test_create_key_with_explicit_symmetric_parameters(kms):
    md = kms.create_key(
        Description="explicit", KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT", Origin="AWS_KMS"
    )["KeyMetadata"]
    assert_new_symmetric_key(md, "explicit")


def test_create_key_with_tags(kms):
    md = kms.create_key(Tags=[{"TagKey": "team", "TagValue": "e2e"}, {"TagKey": "env", "TagValue": "test"}])[
        "KeyMetadata"
    ]
    tags = kms.list_resource_tags(KeyId=md["KeyId"])
    assert {t["TagKey"]: t["TagValue"] for t in tags["Tags"]} == {"team": "e2e", "env": "test"}
    assert tags["Truncated"] is False


@pytest.mark.parametrize("form", ["id", "arn", "alias", "alias_arn"])
def test_describe_key_by_every_identifier_form(kms, key, form):
    alias = unique("alias/e2e-describe")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    key_ref = {"id": key["KeyId"], "arn": key["Arn"], "alias": alias, "alias_arn": alias_arn(alias)}[form]
    md = kms.describe_key(KeyId=key_ref)["KeyMetadata"]
    assert md == key


def test_describe_key_response_metadata(kms, key):
    resp = kms.describe_key(KeyId=key["KeyId"])
    meta = resp["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 200
    assert UUID_RE.match(meta["RequestId"]), meta["RequestId"]
    headers = meta["HTTPHeaders"]
    assert headers["x-amzn-requestid"] == meta["RequestId"]
    assert headers["content-type"] == "application/x-amz-json-1.1"
    assert "date" in headers


# -- ListKeys -----------------------------------------------------------------


def test_list_keys_contains_created_key(kms, key):
    keys = []
    for page in kms.get_paginator("list_keys").paginate():
        keys.extend(page["Keys"])
    assert {"KeyId": key["KeyId"], "KeyArn": key["Arn"]} in keys
    for k in keys:
        assert k["KeyArn"] == key_arn(k["KeyId"])


def test_list_keys_pagination_with_limit_and_marker(kms, make_key):
    created = {make_key()["KeyId"] for _ in range(3)}
    first = kms.list_keys(Limit=1)
    assert len(first["Keys"]) == 1
    assert first["Truncated"] is True
    assert first["NextMarker"]

    seen: list[str] = []
    marker = None
    for _ in range(1000):
        kwargs = {"Limit": 2}
        if marker:
            kwargs["Marker"] = marker
        page = kms.list_keys(**kwargs)
        assert len(page["Keys"]) <= 2
        seen.extend(k["KeyId"] for k in page["Keys"])
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        assert page["NextMarker"]
        marker = page["NextMarker"]
    else:
        pytest.fail("ListKeys never stopped being truncated")
    assert len(seen) == len(set(seen)), "a key was listed twice across pages"
    assert created <= set(seen)
    # The same keys as one unpaginated call.
    everything = kms.list_keys(Limit=1000)
    assert everything["Truncated"] is False
    assert sorted(seen) == sorted(k["KeyId"] for k in everything["Keys"])


# -- Encrypt / Decrypt ----------------------------------------------------------


def test_encrypt_decrypt_roundtrip_without_key_id(kms, key):
    plaintext = b"hello, kms \x00\xff binary"
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=plaintext)
    assert enc["KeyId"] == key["Arn"]
    assert enc["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert isinstance(enc["CiphertextBlob"], bytes)
    assert plaintext not in enc["CiphertextBlob"]
    dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"])
    assert dec["Plaintext"] == plaintext
    assert dec["KeyId"] == key["Arn"]
    assert dec["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"


@pytest.mark.parametrize("form", ["id", "arn", "alias", "alias_arn"])
def test_encrypt_and_decrypt_accept_every_key_identifier_form(kms, key, form):
    alias = unique("alias/e2e-forms")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    key_ref = {"id": key["KeyId"], "arn": key["Arn"], "alias": alias, "alias_arn": alias_arn(alias)}[form]
    enc = kms.encrypt(KeyId=key_ref, Plaintext=b"forms")
    assert enc["KeyId"] == key["Arn"]
    dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], KeyId=key_ref)
    assert dec["Plaintext"] == b"forms"
    assert dec["KeyId"] == key["Arn"]


def test_decrypt_with_alias_key_id(kms, key):
    alias = unique("alias/e2e-decrypt")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"via alias")["CiphertextBlob"]
    dec = kms.decrypt(CiphertextBlob=blob, KeyId=alias)
    assert dec["Plaintext"] == b"via alias"
    assert dec["KeyId"] == key["Arn"]


def test_encryption_context_roundtrip(kms, key):
    ctx = {"purpose": "e2e", "tenant": "acme", "n": "1"}
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"with context", EncryptionContext=ctx)["CiphertextBlob"]
    # The same pairs in another order decrypt: the context is a map.
    reordered = dict(reversed(list(ctx.items())))
    dec = kms.decrypt(CiphertextBlob=blob, EncryptionContext=reordered, KeyId=key["KeyId"])
    assert dec["Plaintext"] == b"with context"


def test_encrypt_is_randomized(kms, key):
    a = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"same")["CiphertextBlob"]
    b = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"same")["CiphertextBlob"]
    assert a != b


@pytest.mark.parametrize("size", [1, 4096])
def test_encrypt_plaintext_size_bounds(kms, key, size):
    plaintext = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    assert len(plaintext) == size
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=plaintext)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext


def test_keys_have_distinct_material(kms, make_key):
    k1, k2 = make_key(), make_key()
    blob = kms.encrypt(KeyId=k1["KeyId"], Plaintext=b"k1 only")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["KeyId"] == k1["Arn"]
    with client_error("IncorrectKeyException"):
        kms.decrypt(CiphertextBlob=blob, KeyId=k2["KeyId"])


# -- ReEncrypt ------------------------------------------------------------------


def test_reencrypt_to_another_key(kms, make_key):
    src, dst = make_key(), make_key()
    blob = kms.encrypt(KeyId=src["KeyId"], Plaintext=b"move me", EncryptionContext={"stage": "1"})["CiphertextBlob"]
    re = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext={"stage": "1"},
        DestinationKeyId=dst["KeyId"],
        DestinationEncryptionContext={"stage": "2"},
    )
    assert re["SourceKeyId"] == src["Arn"]
    assert re["KeyId"] == dst["Arn"]
    assert re["SourceEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert re["DestinationEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    new_blob = re["CiphertextBlob"]
    assert new_blob != blob
    dec = kms.decrypt(CiphertextBlob=new_blob, EncryptionContext={"stage": "2"})
    assert dec["Plaintext"] == b"move me"
    assert dec["KeyId"] == dst["Arn"]
    # The new blob is bound to the destination key and context.
    with client_error("IncorrectKeyException"):
        kms.decrypt(CiphertextBlob=new_blob, EncryptionContext={"stage": "2"}, KeyId=src["KeyId"])
    with client_error("InvalidCiphertextException"):
        kms.decrypt(CiphertextBlob=new_blob, EncryptionContext={"stage": "1"})


def test_reencrypt_with_source_key_id_and_alias_destination(kms, make_key):
    src, dst = make_key(), make_key()
    alias = unique("alias/e2e-reencrypt")
    kms.create_alias(AliasName=alias, TargetKeyId=dst["KeyId"])
    blob = kms.encrypt(KeyId=src["KeyId"], Plaintext=b"aliased")["CiphertextBlob"]
    re = kms.re_encrypt(CiphertextBlob=blob, SourceKeyId=src["Arn"], DestinationKeyId=alias)
    assert re["KeyId"] == dst["Arn"]
    assert kms.decrypt(CiphertextBlob=re["CiphertextBlob"])["Plaintext"] == b"aliased"


# -- GenerateDataKey / GenerateDataKeyWithoutPlaintext / GenerateRandom ---------


@pytest.mark.parametrize(
    "kwargs,length",
    [({"KeySpec": "AES_256"}, 32), ({"KeySpec": "AES_128"}, 16), ({"NumberOfBytes": 64}, 64), ({"NumberOfBytes": 1}, 1)],
)
def test_generate_data_key(kms, key, kwargs, length):
    ctx = {"file": "report.pdf"}
    resp = kms.generate_data_key(KeyId=key["KeyId"], EncryptionContext=ctx, **kwargs)
    assert resp["KeyId"] == key["Arn"]
    assert len(resp["Plaintext"]) == length
    dec = kms.decrypt(CiphertextBlob=resp["CiphertextBlob"], EncryptionContext=ctx)
    assert dec["Plaintext"] == resp["Plaintext"]
    assert dec["KeyId"] == key["Arn"]


def test_generate_data_keys_differ(kms, key):
    a = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")["Plaintext"]
    b = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")["Plaintext"]
    assert a != b


@pytest.mark.parametrize("kwargs,length", [({"KeySpec": "AES_256"}, 32), ({"NumberOfBytes": 48}, 48)])
def test_generate_data_key_without_plaintext(kms, key, kwargs, length):
    resp = kms.generate_data_key_without_plaintext(KeyId=key["Arn"], **kwargs)
    assert "Plaintext" not in resp
    assert resp["KeyId"] == key["Arn"]
    dec = kms.decrypt(CiphertextBlob=resp["CiphertextBlob"])
    assert len(dec["Plaintext"]) == length
    assert dec["KeyId"] == key["Arn"]


@pytest.mark.parametrize("n", [1, 32, 1024])
def test_generate_random_length(kms, n):
    resp = kms.generate_random(NumberOfBytes=n)
    assert isinstance(resp["Plaintext"], bytes)
    assert len(resp["Plaintext"]) == n


def test_generate_random_is_random(kms):
    a = kms.generate_random(NumberOfBytes=32)["Plaintext"]
    b = kms.generate_random(NumberOfBytes=32)["Plaintext"]
    assert a != b
    assert a != bytes(32)


# -- key state ------------------------------------------------------------------


def test_disable_and_enable_key(kms, key):
    kms.disable_key(KeyId=key["KeyId"])
    md = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert (md["KeyState"], md["Enabled"]) == ("Disabled", False)
    kms.enable_key(KeyId=key["Arn"])
    md = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert (md["KeyState"], md["Enabled"]) == ("Enabled", True)
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"back")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"back"


def test_disable_key_is_idempotent(kms, key):
    kms.disable_key(KeyId=key["KeyId"])
    kms.disable_key(KeyId=key["KeyId"])
    kms.enable_key(KeyId=key["KeyId"])
    kms.enable_key(KeyId=key["KeyId"])
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_update_key_description(kms, key):
    kms.update_key_description(KeyId=key["KeyId"], Description="new description")
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Description"] == "new description"
    kms.update_key_description(KeyId=key["Arn"], Description="")
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Description"] == ""


def test_schedule_and_cancel_key_deletion(kms, key):
    before = utcnow()
    resp = kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert resp["KeyId"] == key["Arn"]
    assert resp["KeyState"] == "PendingDeletion"
    assert resp["PendingWindowInDays"] == 7
    deletion = resp["DeletionDate"]
    assert isinstance(deletion, dt.datetime)
    assert before + dt.timedelta(days=6) < deletion < before + dt.timedelta(days=8), deletion

    md = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert md["KeyState"] == "PendingDeletion"
    assert md["Enabled"] is False
    assert md["DeletionDate"] == deletion
    # Only for a multi-Region primary key in PendingReplicaDeletion.
    assert "PendingDeletionWindowInDays" not in md

    cancel = kms.cancel_key_deletion(KeyId=key["KeyId"])
    assert cancel["KeyId"] == key["Arn"]
    md = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert md["KeyState"] == "Disabled"
    assert md["Enabled"] is False
    assert "DeletionDate" not in md
    assert "PendingDeletionWindowInDays" not in md

    kms.enable_key(KeyId=key["KeyId"])
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"saved")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"saved"


def test_schedule_key_deletion_default_window_is_30_days(kms, key):
    before = utcnow()
    resp = kms.schedule_key_deletion(KeyId=key["Arn"])
    assert resp["PendingWindowInDays"] == 30
    assert before + dt.timedelta(days=29) < resp["DeletionDate"] < before + dt.timedelta(days=31)
    kms.cancel_key_deletion(KeyId=key["Arn"])


def test_pending_deletion_key_still_listed(kms, key):
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    ids = set()
    for page in kms.get_paginator("list_keys").paginate():
        ids.update(k["KeyId"] for k in page["Keys"])
    assert key["KeyId"] in ids


# -- aliases ----------------------------------------------------------------------


def _aliases(kms, **kwargs) -> list[dict]:
    out = []
    for page in kms.get_paginator("list_aliases").paginate(**kwargs):
        out.extend(page["Aliases"])
    return out


def test_alias_lifecycle(kms, make_key):
    k1, k2 = make_key(), make_key()
    alias = unique("alias/e2e-lifecycle")
    before = utcnow() - dt.timedelta(minutes=5)
    kms.create_alias(AliasName=alias, TargetKeyId=k1["KeyId"])

    entries = [a for a in _aliases(kms) if a["AliasName"] == alias]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["AliasArn"] == f"arn:aws:kms:us-east-1:111122223333:{alias}"
    assert entry["TargetKeyId"] == k1["KeyId"]
    assert entry["CreationDate"] > before
    assert entry["LastUpdatedDate"] >= entry["CreationDate"]

    by_key = _aliases(kms, KeyId=k1["KeyId"])
    assert [a["AliasName"] for a in by_key] == [alias]

    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == k1["KeyId"]
    blob = kms.encrypt(KeyId=alias, Plaintext=b"alias")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["KeyId"] == k1["Arn"]

    kms.update_alias(AliasName=alias, TargetKeyId=k2["Arn"])
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == k2["KeyId"]
    assert kms.encrypt(KeyId=alias, Plaintext=b"x")["KeyId"] == k2["Arn"]
    assert _aliases(kms, KeyId=k1["KeyId"]) == []
    assert [a["AliasName"] for a in _aliases(kms, KeyId=k2["KeyId"])] == [alias]
    # The old ciphertext still decrypts with its own key.
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"alias"

    kms.delete_alias(AliasName=alias)
    assert all(a["AliasName"] != alias for a in _aliases(kms))
    with client_error("NotFoundException"):
        kms.describe_key(KeyId=alias)
    # Deleting an alias leaves its key alone.
    assert kms.describe_key(KeyId=k2["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_key_with_several_aliases(kms, key):
    names = sorted(unique("alias/e2e-multi") for _ in range(3))
    for n in names:
        kms.create_alias(AliasName=n, TargetKeyId=key["KeyId"])
    assert sorted(a["AliasName"] for a in _aliases(kms, KeyId=key["KeyId"])) == names


def test_list_aliases_pagination(kms, key):
    names = {unique("alias/e2e-page") for _ in range(3)}
    for n in names:
        kms.create_alias(AliasName=n, TargetKeyId=key["KeyId"])
    first = kms.list_aliases(Limit=1)
    assert len(first["Aliases"]) == 1
    assert first["Truncated"] is True and first["NextMarker"]
    seen = []
    kwargs = {"Limit": 2}
    for _ in range(1000):
        page = kms.list_aliases(**kwargs)
        assert len(page["Aliases"]) <= 2
        seen.extend(a["AliasName"] for a in page["Aliases"])
        if not page["Truncated"]:
            break
        kwargs["Marker"] = page["NextMarker"]
    assert len(seen) == len(set(seen))
    assert names <= set(seen)


# -- tags ---------------------------------------------------------------------------


def _tags(kms, key_id) -> dict[str, str]:
    resp = kms.list_resource_tags(KeyId=key_id)
    assert resp["Truncated"] is False
    return {t["TagKey"]: t["TagValue"] for t in resp["Tags"]}


def test_tag_list_untag(kms, key):
    assert _tags(kms, key["KeyId"]) == {}
    kms.tag_resource(
        KeyId=key["KeyId"],
        Tags=[{"TagKey": "project", "TagValue": "kms"}, {"TagKey": "owner", "TagValue": "e2e"}, {"TagKey": "empty", "TagValue": ""}],
    )
    assert _tags(kms, key["KeyId"]) == {"project": "kms", "owner": "e2e", "empty": ""}
    assert _tags(kms, key["Arn"]) == {"project": "kms", "owner": "e2e", "empty": ""}
    kms.untag_resource(KeyId=key["Arn"], TagKeys=["owner", "empty"])
    assert _tags(kms, key["KeyId"]) == {"project": "kms"}
    # Removing a tag key that is not there is not an error.
    kms.untag_resource(KeyId=key["KeyId"], TagKeys=["never-set"])
    assert _tags(kms, key["KeyId"]) == {"project": "kms"}


def test_tag_resource_overwrites_value(kms, key):
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "stage", "TagValue": "dev"}])
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "stage", "TagValue": "prod"}])
    assert _tags(kms, key["KeyId"]) == {"stage": "prod"}


# -- key policies -------------------------------------------------------------------


def test_default_key_policy(kms, key):
    resp = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")
    policy = json.loads(resp["Policy"])
    assert policy["Version"] == "2012-10-17"
    statements = policy["Statement"]
    assert isinstance(statements, list) and len(statements) == 1
    st = statements[0]
    assert st["Effect"] == "Allow"
    assert st["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    assert st["Action"] == "kms:*"
    assert st["Resource"] == "*"


def test_default_key_policy_is_exactly_aws_default(kms, key):
    policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    assert policy == {
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }


def test_get_key_policy_policy_name_defaults_to_default(kms, key):
    named = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")
    unnamed = kms.get_key_policy(KeyId=key["Arn"])
    assert json.loads(unnamed["Policy"]) == json.loads(named["Policy"])
    assert unnamed["PolicyName"] == "default"


def test_list_key_policies(kms, key):
    resp = kms.list_key_policies(KeyId=key["KeyId"])
    assert resp["PolicyNames"] == ["default"]
    assert resp["Truncated"] is False


def test_put_key_policy_roundtrip(kms, key):
    policy = {
        "Version": "2012-10-17",
        "Id": "e2e-policy",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A.account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "Describe",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A.account_id}:root"},
                "Action": ["kms:DescribeKey"],
                "Resource": "*",
            },
        ],
    }
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(policy, indent=2))
    got = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")
    assert json.loads(got["Policy"]) == policy
    assert kms.list_key_policies(KeyId=key["KeyId"])["PolicyNames"] == ["default"]
    # The key is still usable by its account.
    assert kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p")["KeyId"] == key["Arn"]


def test_create_key_with_policy(kms):
    policy = {
        "Version": "2012-10-17",
        "Id": "e2e-create-policy",
        "Statement": [
            {
                "Sid": "Root",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
    md = kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]
    got = kms.get_key_policy(KeyId=md["KeyId"], PolicyName="default")["Policy"]
    assert json.loads(got) == policy


def test_key_material_id_in_crypto_responses(kms, make_key):
    """Symmetric keys: Decrypt, GenerateDataKey(WithoutPlaintext) and ReEncrypt
    name the key material they used (KeyMaterialId / Source- and
    DestinationKeyMaterialId), the key's CurrentKeyMaterialId."""
    src, dst = make_key(), make_key()
    assert src["CurrentKeyMaterialId"] and dst["CurrentKeyMaterialId"]
    blob = kms.encrypt(KeyId=src["KeyId"], Plaintext=b"m")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["KeyMaterialId"] == src["CurrentKeyMaterialId"]
    assert kms.generate_data_key(KeyId=src["KeyId"], KeySpec="AES_256")["KeyMaterialId"] == src["CurrentKeyMaterialId"]
    gdkwp = kms.generate_data_key_without_plaintext(KeyId=src["KeyId"], KeySpec="AES_256")
    assert gdkwp["KeyMaterialId"] == src["CurrentKeyMaterialId"]
    re = kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=dst["KeyId"])
    assert re["SourceKeyMaterialId"] == src["CurrentKeyMaterialId"]
    assert re["DestinationKeyMaterialId"] == dst["CurrentKeyMaterialId"]


def test_list_keys_default_page_size_is_100(kms):
    """ListKeys without Limit returns at most 100 keys (Limit's documented default)."""
    total = len([k for p in kms.get_paginator("list_keys").paginate() for k in p["Keys"]])
    for _ in range(max(0, 101 - total)):
        kms.create_key(Description="e2e page size")
    page = kms.list_keys()
    assert len(page["Keys"]) <= 100
    assert page["Truncated"] is True and page["NextMarker"]


def test_list_aliases_default_page_size_is_50(kms, key):
    """ListAliases without Limit returns at most 50 aliases (Limit's documented default)."""
    total = len([a for p in kms.get_paginator("list_aliases").paginate() for a in p["Aliases"]])
    for _ in range(max(0, 51 - total)):
        kms.create_alias(AliasName=unique("alias/e2e-page-size"), TargetKeyId=key["KeyId"])
    page = kms.list_aliases()
    assert len(page["Aliases"]) <= 50
    assert page["Truncated"] is True and page["NextMarker"]


def test_dry_run(kms, key):
    """DryRun=True: KMS checks the request and answers DryRunOperationException."""
    with pytest.raises(kms.exceptions.DryRunOperationException):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", DryRun=True)
