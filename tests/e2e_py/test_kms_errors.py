"""KMS errors as AWS answers them: botocore ClientError codes with HTTP 400
(through boto3), and protocol-level failures through raw signed HTTP."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import json
import uuid

import pytest
from botocore.exceptions import ClientError

from e2e_support import (
    ACCOUNT_A,
    ACCOUNT_B,
    CLOUDTRAIL_TARGET,
    KMS_TARGET,
    REPO_ROOT,
    UUID_RE,
    alias_arn,
    client_error,
    key_arn,
    raw_post,
    unique,
    utcnow,
)


@pytest.fixture
def blob(kms, key):
    return kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p" * 32, EncryptionContext={"k": "v"})["CiphertextBlob"]


# -- ciphertext ---------------------------------------------------------------------


@pytest.mark.parametrize("ctx", [{"k": "other"}, {}, {"k": "v", "extra": "1"}, {"K": "v"}], ids=["value", "missing", "extra", "case"])
def test_wrong_encryption_context(kms, blob, ctx):
    with client_error("InvalidCiphertextException"):
        kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)


@pytest.mark.parametrize("where", ["last", "tail-20"])
def test_tampered_ciphertext(kms, blob, where):
    pos = {"last": len(blob) - 1, "tail-20": len(blob) - 20}[where]
    bad = bytearray(blob)
    bad[pos] ^= 0x01
    with client_error("InvalidCiphertextException"):
        kms.decrypt(CiphertextBlob=bytes(bad), EncryptionContext={"k": "v"})


def test_truncated_ciphertext(kms, blob):
    with client_error("InvalidCiphertextException"):
        kms.decrypt(CiphertextBlob=blob[:-1], EncryptionContext={"k": "v"})


def test_garbage_ciphertext(kms):
    with client_error("InvalidCiphertextException"):
        kms.decrypt(CiphertextBlob=b"this is not a kms ciphertext blob at all")


def test_decrypt_with_wrong_key_id(kms, make_key, blob):
    other = make_key()
    with client_error("IncorrectKeyException"):
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"k": "v"}, KeyId=other["KeyId"])


def test_reencrypt_with_wrong_source_context(kms, make_key, blob):
    dst = make_key()
    with client_error("InvalidCiphertextException"):
        kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"k": "x"}, DestinationKeyId=dst["KeyId"])


# -- key states ---------------------------------------------------------------------


def test_disabled_key(kms, make_key, key, blob):
    kms.disable_key(KeyId=key["KeyId"])
    with client_error("DisabledException"):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    with client_error("DisabledException"):
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"k": "v"})
    with client_error("DisabledException"):
        kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    with client_error("DisabledException"):
        kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], KeySpec="AES_256")
    other = make_key()
    with client_error("DisabledException"):
        kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"k": "v"}, DestinationKeyId=other["KeyId"])
    other_blob = kms.encrypt(KeyId=other["KeyId"], Plaintext=b"y")["CiphertextBlob"]
    with client_error("DisabledException"):
        kms.re_encrypt(CiphertextBlob=other_blob, DestinationKeyId=key["KeyId"])
    # Management calls still work on a disabled key.
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"


def test_disabled_exception_message_names_the_key(kms, key):
    kms.disable_key(KeyId=key["KeyId"])
    with client_error("DisabledException") as err:
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert key["Arn"] in err["error"].response["Error"]["Message"]


def test_pending_deletion_key(kms, key, blob):
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    with client_error("KMSInvalidStateException"):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    with client_error("KMSInvalidStateException"):
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"k": "v"})
    with client_error("KMSInvalidStateException"):
        kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    with client_error("KMSInvalidStateException"):
        kms.enable_key(KeyId=key["KeyId"])
    with client_error("KMSInvalidStateException"):
        kms.disable_key(KeyId=key["KeyId"])
    with client_error("KMSInvalidStateException"):
        kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    # DescribeKey still answers.
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_pending_deletion_blocks_key_changes(kms, make_key, key):
    """AWS's key state table: these fail with KMSInvalidStateException
    ("<key ARN> is pending deletion") while the key is PendingDeletion."""
    alias = unique("alias/e2e-pending")
    kms.create_alias(AliasName=alias, TargetKeyId=make_key()["KeyId"])
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "t", "TagValue": "1"}])
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    with client_error("KMSInvalidStateException"):
        kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "t", "TagValue": "2"}])
    with client_error("KMSInvalidStateException"):
        kms.untag_resource(KeyId=key["KeyId"], TagKeys=["t"])
    with client_error("KMSInvalidStateException"):
        kms.update_key_description(KeyId=key["KeyId"], Description="nope")
    with client_error("KMSInvalidStateException"):
        kms.create_alias(AliasName=unique("alias/e2e-pending"), TargetKeyId=key["KeyId"])
    with client_error("KMSInvalidStateException"):
        kms.update_alias(AliasName=alias, TargetKeyId=key["KeyId"])


def test_pending_deletion_allows_reads_and_alias_removal(kms, key):
    alias = unique("alias/e2e-pending-read")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "t", "TagValue": "1"}])
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] == [{"TagKey": "t", "TagValue": "1"}]
    assert json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])["Statement"]
    assert kms.list_key_policies(KeyId=key["KeyId"])["PolicyNames"] == ["default"]
    assert [a["AliasName"] for a in kms.list_aliases(KeyId=key["KeyId"])["Aliases"]] == [alias]
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    kms.delete_alias(AliasName=alias)
    assert kms.list_aliases(KeyId=key["KeyId"])["Aliases"] == []


def test_pending_deletion_message_names_the_key(kms, key):
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    with client_error("KMSInvalidStateException") as err:
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert key["Arn"] in err["error"].response["Error"]["Message"]


def test_cancel_deletion_of_key_not_pending_deletion(kms, key):
    with client_error("KMSInvalidStateException"):
        kms.cancel_key_deletion(KeyId=key["KeyId"])


@pytest.mark.parametrize("days", [6, 31])
def test_schedule_key_deletion_window_out_of_range(kms, key, days):
    with client_error("ValidationException"):
        kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=days)
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


# -- unknown keys and aliases ------------------------------------------------------------


@pytest.mark.parametrize(
    "op",
    ["describe_key", "encrypt", "generate_data_key", "enable_key", "disable_key", "get_key_policy", "list_resource_tags", "schedule_key_deletion"],
)
def test_unknown_key(kms, op):
    missing = str(uuid.uuid4())
    kwargs = {"KeyId": missing}
    if op == "encrypt":
        kwargs["Plaintext"] = b"x"
    if op == "generate_data_key":
        kwargs["KeySpec"] = "AES_256"
    with client_error("NotFoundException"):
        getattr(kms, op)(**kwargs)


def test_unknown_key_arn_and_message(kms):
    arn = key_arn(str(uuid.uuid4()))
    with client_error("NotFoundException") as err:
        kms.describe_key(KeyId=arn)
    assert arn in err["error"].response["Error"]["Message"]


def test_unknown_alias(kms):
    with client_error("NotFoundException"):
        kms.encrypt(KeyId=unique("alias/e2e-missing"), Plaintext=b"x")
    with client_error("NotFoundException"):
        kms.describe_key(KeyId=alias_arn(unique("alias/e2e-missing")))
    with client_error("NotFoundException"):
        kms.delete_alias(AliasName=unique("alias/e2e-missing"))
    with client_error("NotFoundException"):
        kms.update_alias(AliasName=unique("alias/e2e-missing"), TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])


def test_alias_to_unknown_key(kms):
    with client_error("NotFoundException"):
        kms.create_alias(AliasName=unique("alias/e2e-dangling"), TargetKeyId=str(uuid.uuid4()))


def test_duplicate_alias(kms, make_key):
    k1, k2 = make_key(), make_key()
    alias = unique("alias/e2e-dup")
    kms.create_alias(AliasName=alias, TargetKeyId=k1["KeyId"])
    with client_error("AlreadyExistsException"):
        kms.create_alias(AliasName=alias, TargetKeyId=k2["KeyId"])
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == k1["KeyId"]


def test_reserved_tag_key_prefix(kms, key):
    with client_error("TagException"):
        kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "aws:reserved", "TagValue": "x"}])


@pytest.mark.parametrize(
    "name",
    ["alias/has space", "alias/bad!char", "alias/" + "a" * 251],
    ids=["space", "punctuation", "257-chars"],
)
def test_alias_name_constraints(kms, key, name):
    with client_error("ValidationException"):
        kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])


@pytest.mark.parametrize("name", ["no-prefix", "alias/aws/e2e-reserved"], ids=["no-prefix", "aws-reserved"])
def test_alias_name_must_be_alias_prefixed_and_not_aws(kms, key, name):
    with pytest.raises(ClientError) as ei:
        kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    names = {a["AliasName"] for p in kms.get_paginator("list_aliases").paginate() for a in p["Aliases"]}
    assert name not in names


def test_description_over_8192_chars(kms, key):
    with client_error("ValidationException"):
        kms.update_key_description(KeyId=key["KeyId"], Description="d" * 8193)
    with client_error("ValidationException"):
        kms.create_key(Description="d" * 8193)


def test_list_keys_invalid_marker(kms):
    with client_error("InvalidMarkerException"):
        kms.list_keys(Marker="not-a-marker-this-service-issued")


@pytest.mark.parametrize(
    "policy",
    ["this is { not json", "{}", '{"Version": "2012-10-17", "Statement": "nope"}'],
    ids=["not-json", "empty-object", "statement-not-a-list"],
)
def test_malformed_key_policy(kms, key, policy):
    with client_error("MalformedPolicyDocumentException"):
        kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=policy)


LOCKOUT_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "EncryptOnly",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": "kms:Encrypt",
            "Resource": "*",
        }
    ],
}


def test_put_key_policy_lockout_safety_check(kms, key):
    """The new policy must let the caller call PutKeyPolicy again, unless
    BypassPolicyLockoutSafetyCheck is set (PutKeyPolicy's Policy documentation)."""
    with client_error("MalformedPolicyDocumentException"):
        kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(LOCKOUT_POLICY))
    default = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    assert default["Statement"][0]["Action"] == "kms:*"


def test_put_key_policy_bypassing_the_lockout_check(kms, key):
    kms.put_key_policy(
        KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(LOCKOUT_POLICY), BypassPolicyLockoutSafetyCheck=True
    )
    # The policy took effect as written: the owner may encrypt, and nothing else.
    kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    with client_error("AccessDeniedException"):
        kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")


def test_create_key_lockout_safety_check(kms):
    with client_error("MalformedPolicyDocumentException"):
        kms.create_key(Policy=json.dumps(LOCKOUT_POLICY))


def test_policy_statement_without_principal(kms, key):
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"},
        ],
    }
    with client_error("MalformedPolicyDocumentException"):
        kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(policy))


# -- input validation (server side) ------------------------------------------------------


def test_plaintext_over_4096_bytes(kms, key):
    with client_error("ValidationException"):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"a" * 4097)


def test_generate_random_over_1024_bytes(kms):
    with client_error("ValidationException"):
        kms.generate_random(NumberOfBytes=1025)


@pytest.mark.parametrize("kwargs", [{}, {"KeySpec": "AES_256", "NumberOfBytes": 32}], ids=["neither", "both"])
def test_generate_data_key_needs_exactly_one_of_keyspec_and_number_of_bytes(kms, key, kwargs):
    with client_error("ValidationException"):
        kms.generate_data_key(KeyId=key["KeyId"], **kwargs)


@pytest.mark.parametrize(
    "target,body",
    [
        ("Encrypt", {"Plaintext": base64.b64encode(b"x").decode()}),  # KeyId is required
        ("DescribeKey", {"KeyId": ""}),  # min length 1
        ("ListKeys", {"Limit": 0}),  # min 1
        ("ListKeys", {"Limit": 1001}),  # max 1000
        ("GenerateRandom", {"NumberOfBytes": 0}),  # min 1
    ],
    ids=["missing-required", "empty-string", "limit-0", "limit-1001", "random-0"],
)
def test_model_constraints_enforced_by_the_service(endpoint, target, body):
    resp = raw_post(endpoint, body, target=KMS_TARGET + target)
    assert (resp.status, resp.error_code) == (400, "ValidationException"), resp.body


# -- authentication ----------------------------------------------------------------------


def test_bad_signature(client):
    bad = client("kms", "a", secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGSECRET")
    with client_error("InvalidSignatureException"):
        bad.list_keys()


def test_unknown_access_key(client):
    unknown = client("kms", "a", access_key="AKIAEXAMPLEUNKNOWNKEY", secret_key="x" * 40)
    with client_error("UnrecognizedClientException"):
        unknown.list_keys()


def test_signature_scoped_to_another_region(client):
    # The stack serves us-east-1 and ADDITIONAL_REGIONS (e2e_support), not this one.
    other_region = client("kms", "a", region="ap-northeast-3")
    with client_error("InvalidSignatureException"):
        other_region.list_keys()


def test_signature_scoped_to_another_service(endpoint):
    resp = raw_post(endpoint, {}, target=KMS_TARGET + "ListKeys", service="cloudtrail")
    assert (resp.status, resp.error_code) == (400, "InvalidSignatureException"), resp.body


def test_expired_signature(endpoint):
    resp = raw_post(endpoint, {}, target=KMS_TARGET + "ListKeys", timestamp=utcnow() - dt.timedelta(minutes=20))
    assert (resp.status, resp.error_code) == (400, "InvalidSignatureException"), resp.body


def test_missing_authentication(endpoint):
    resp = raw_post(endpoint, {}, target=KMS_TARGET + "ListKeys", sign=False)
    assert (resp.status, resp.error_code) == (400, "MissingAuthenticationTokenException"), resp.body


def test_signature_over_other_body_is_rejected(endpoint):
    """A valid signature for one body does not authenticate another body."""
    import http.client
    from urllib.parse import urlsplit

    from e2e_support import sign_headers

    headers = sign_headers(
        endpoint, b"{}", {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": KMS_TARGET + "ListKeys"}
    )
    parts = urlsplit(endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", "/", body=b'{"Limit": 1}', headers=headers)
        resp = conn.getresponse()
        body = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 400
    assert body["__type"].rsplit("#", 1)[-1] == "InvalidSignatureException"


# -- protocol -----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{not json", b'{"KeyId": "x"', b"[1, 2]"], ids=["garbage", "truncated", "array"])
def test_malformed_json_body(endpoint, body):
    resp = raw_post(endpoint, body, target=KMS_TARGET + "DescribeKey")
    assert (resp.status, resp.error_code) == (400, "SerializationException"), resp.body


def test_wrong_json_type(endpoint):
    resp = raw_post(endpoint, {"KeyId": 5}, target=KMS_TARGET + "DescribeKey")
    assert (resp.status, resp.error_code) == (400, "SerializationException"), resp.body


def test_unknown_operation(endpoint):
    resp = raw_post(endpoint, {}, target=KMS_TARGET + "NoSuchOp")
    assert (resp.status, resp.error_code) == (400, "UnknownOperationException"), resp.body


def test_oversize_body(endpoint):
    body = b'{"KeyId":"alias/x","Plaintext":"' + b"A" * (1024 * 1024) + b'"}'
    assert len(body) > 1024 * 1024
    resp = raw_post(endpoint, body, target=KMS_TARGET + "Encrypt")
    assert resp.status == 413, (resp.status, resp.body[:300])


def test_signed_raw_request_succeeds(endpoint):
    resp = raw_post(endpoint, {"Limit": 1}, target=KMS_TARGET + "ListKeys")
    assert resp.status == 200, resp.body
    assert resp.header("Content-Type") == "application/x-amz-json-1.1"
    assert isinstance(resp.json["Keys"], list)


RAW_CASES = {
    "ok": dict(body={"Limit": 1}, target=KMS_TARGET + "ListKeys"),
    "missing-auth": dict(body={}, target=KMS_TARGET + "ListKeys", sign=False),
    "unknown-op": dict(body={}, target=KMS_TARGET + "NoSuchOp"),
    "malformed": dict(body=b"{not json", target=KMS_TARGET + "ListKeys"),
    "validation": dict(body={"Limit": 0}, target=KMS_TARGET + "ListKeys"),
    "not-found": dict(body={"KeyId": str(uuid.uuid4())}, target=KMS_TARGET + "DescribeKey"),
    "cloudtrail-ok": dict(body={"MaxResults": 1}, target=CLOUDTRAIL_TARGET + "LookupEvents", service="cloudtrail"),
    "oversize": dict(body=b"{" + b" " * (1024 * 1024 + 10) + b"}", target=KMS_TARGET + "ListKeys"),
}


@pytest.mark.parametrize("case", list(RAW_CASES))
def test_every_response_has_request_id_and_date(endpoint, case):
    resp = raw_post(endpoint, **RAW_CASES[case])
    request_id = resp.header("x-amzn-RequestId")
    assert request_id and UUID_RE.match(request_id), dict(resp.headers)
    date = resp.header("Date")
    assert date, dict(resp.headers)
    sent = email.utils.parsedate_to_datetime(date)
    assert abs((utcnow() - sent).total_seconds()) < 300


def test_error_json_shape(endpoint):
    resp = raw_post(endpoint, {"KeyId": str(uuid.uuid4())}, target=KMS_TARGET + "DescribeKey")
    assert resp.status == 400
    assert resp.header("Content-Type") == "application/x-amz-json-1.1"
    body = resp.json
    assert resp.error_code == "NotFoundException"
    assert isinstance(body.get("message") or body.get("Message"), str)


def test_boto3_error_responses_carry_request_id_and_date(kms):
    for call in (
        lambda: kms.describe_key(KeyId=str(uuid.uuid4())),
        lambda: kms.decrypt(CiphertextBlob=b"garbage garbage garbage"),
    ):
        with pytest.raises(ClientError) as ei:
            call()
        meta = ei.value.response["ResponseMetadata"]
        assert UUID_RE.match(meta["RequestId"]), meta
        assert meta["HTTPHeaders"]["x-amzn-requestid"] == meta["RequestId"]
        assert "date" in meta["HTTPHeaders"]


def test_request_ids_are_unique(kms):
    ids = {kms.list_keys(Limit=1)["ResponseMetadata"]["RequestId"] for _ in range(5)}
    assert len(ids) == 5


# -- cross-account --------------------------------------------------------------------------


def test_cross_account_use_of_key_arn_is_denied(kms, kms_b, key, blob):
    with client_error("AccessDeniedException"):
        kms_b.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    with client_error("AccessDeniedException"):
        kms_b.describe_key(KeyId=key["Arn"])
    with client_error("AccessDeniedException"):
        kms_b.generate_data_key(KeyId=key["Arn"], KeySpec="AES_256")
    with client_error("AccessDeniedException"):
        kms_b.decrypt(CiphertextBlob=blob, EncryptionContext={"k": "v"})


def test_cross_account_alias_arn_is_denied(kms, kms_b, key):
    alias = unique("alias/e2e-xacct")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    with client_error("AccessDeniedException"):
        kms_b.encrypt(KeyId=alias_arn(alias, ACCOUNT_A), Plaintext=b"x")


def test_access_denied_message(kms_b, key):
    with client_error("AccessDeniedException") as err:
        kms_b.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    msg = err["error"].response["Error"]["Message"]
    assert ACCOUNT_B.root_arn in msg
    assert "kms:Encrypt" in msg
    assert key["Arn"] in msg


def test_key_id_and_alias_resolve_in_the_callers_account(kms, kms_b, key):
    alias = unique("alias/e2e-scope")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    with client_error("NotFoundException"):
        kms_b.describe_key(KeyId=key["KeyId"])
    with client_error("NotFoundException"):
        kms_b.encrypt(KeyId=alias, Plaintext=b"x")


def test_accounts_do_not_see_each_others_keys_and_aliases(kms, kms_b, key):
    alias = unique("alias/e2e-isolation")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    b_key = kms_b.create_key(Description="account b")["KeyMetadata"]
    assert b_key["Arn"] == key_arn(b_key["KeyId"], ACCOUNT_B)
    assert b_key["AWSAccountId"] == ACCOUNT_B.account_id
    b_keys = {k["KeyId"] for p in kms_b.get_paginator("list_keys").paginate() for k in p["Keys"]}
    a_keys = {k["KeyId"] for p in kms.get_paginator("list_keys").paginate() for k in p["Keys"]}
    assert key["KeyId"] not in b_keys and b_key["KeyId"] in b_keys
    assert b_key["KeyId"] not in a_keys and key["KeyId"] in a_keys
    b_aliases = {a["AliasName"] for p in kms_b.get_paginator("list_aliases").paginate() for a in p["Aliases"]}
    assert alias not in b_aliases
    # The same alias name is free in the other account.
    kms_b.create_alias(AliasName=alias, TargetKeyId=b_key["KeyId"])
    assert kms_b.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == b_key["KeyId"]
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == key["KeyId"]
    # Account b's default key policy names account b's root.
    policy = json.loads(kms_b.get_key_policy(KeyId=b_key["KeyId"], PolicyName="default")["Policy"])
    assert policy["Statement"][0]["Principal"] == {"AWS": ACCOUNT_B.root_arn}


# -- unsupported operations ----------------------------------------------------------------

# The operations of the botocore KMS model that this KMS does not serve.
NOT_SERVED = {
    "ConnectCustomKeyStore",
    "CreateCustomKeyStore",
    "DeleteCustomKeyStore",
    "DescribeCustomKeyStores",
    "DisconnectCustomKeyStore",
    "UpdateCustomKeyStore",
    "GetKeyLastUsage",
}


def minimal_input(model, shape):
    """A JSON value of `shape` with only its required members, each at its
    minimum size: valid for the model (the gateway validates types, required
    members, lengths and enums), meaningless to the keystore."""
    if shape.type_name == "structure":
        return {name: minimal_input(model, shape.members[name]) for name in shape.required_members}
    if shape.type_name == "list":
        return [minimal_input(model, shape.member)] * max(shape.metadata.get("min", 1), 1)
    if shape.type_name == "map":
        return {}
    if shape.type_name == "string":
        if shape.enum:
            return shape.enum[0]
        return "x" * max(shape.metadata.get("min", 1), 1)
    if shape.type_name == "blob":
        return base64.b64encode(b"x" * max(shape.metadata.get("min", 1), 1)).decode()
    if shape.type_name in ("integer", "long"):
        return shape.metadata.get("min", 1)
    if shape.type_name == "boolean":
        return False
    if shape.type_name == "timestamp":
        return 4102444800  # 2100-01-01
    raise AssertionError(f"no minimal value for {shape.type_name}")


def test_every_model_operation_is_served_or_in_the_readme(kms, endpoint):
    """Issue 6's definition of done: every operation of the botocore model either
    reaches the keystore (whatever it then answers) or is refused by the gateway as
    not served, and then the README's status table names it."""
    model = kms.meta.service_model
    not_served = set()
    for name in model.operation_names:
        op = model.operation_model(name)
        body = minimal_input(model, op.input_shape) if op.input_shape is not None else {}
        resp = raw_post(endpoint, body, target=KMS_TARGET + name)
        error = resp.json if resp.status != 200 else None
        code = error["__type"].rsplit("#", 1)[-1] if error else None
        assert code not in ("UnknownOperationException", "SerializationException"), (name, error)
        if code == "UnsupportedOperationException" and "README's status table" in error["message"]:
            not_served.add(name)
    assert not_served == NOT_SERVED
    readme = (REPO_ROOT / "README.md").read_text()
    status_table = readme[readme.index("## Status") :]
    for name in sorted(not_served):
        assert name in status_table, f"{name} is not served and missing from the README's status table"


@pytest.mark.parametrize(
    "op,kwargs",
    [
        ("describe_custom_key_stores", {}),
        ("connect_custom_key_store", {"CustomKeyStoreId": "cks-1234567890abcdef0"}),
        ("disconnect_custom_key_store", {"CustomKeyStoreId": "cks-1234567890abcdef0"}),
        ("delete_custom_key_store", {"CustomKeyStoreId": "cks-1234567890abcdef0"}),
        ("update_custom_key_store", {"CustomKeyStoreId": "cks-1234567890abcdef0", "NewCustomKeyStoreName": "renamed"}),
        ("create_custom_key_store", {"CustomKeyStoreName": "e2e", "CloudHsmClusterId": "cluster-1234567890a"}),
        ("get_key_last_usage", {"KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab"}),
    ],
)
def test_unsupported_operations(kms, op, kwargs):
    """Every operation of the botocore model that this KMS does not serve answers
    UnsupportedOperationException (the README's status table lists them)."""
    with client_error("UnsupportedOperationException") as err:
        getattr(kms, op)(**kwargs)
    assert "README" in err["error"].response["Error"]["Message"]
