"""KMS grants with boto3 and the aws CLI against a real kms-stack: CreateGrant,
ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant, grant tokens, constraints,
cross-account grants, and the CloudTrail record of CreateGrant."""

from __future__ import annotations

import json

import pytest

from e2e_support import (
    ACCOUNT_A,
    ACCOUNT_B,
    by_request_id,
    client_error,
    event_json,
    unique,
    wait_for_events,
)


@pytest.fixture(scope="module")
def iam(client):
    return client("iam", "a")


def new_user(iam, client):
    """An IAM user of account a without any policy, and its kms client."""
    name = unique("grantee")
    user = iam.create_user(UserName=name)["User"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    kms = client("kms", "a", access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"])
    return user["Arn"], kms


def test_grantee_without_iam_policy_uses_the_key_until_revoked(kms, iam, client, key):
    arn, user_kms = new_user(iam, client)
    with client_error("AccessDeniedException") as err:
        user_kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    denied = err["error"].response["Error"]["Message"]
    assert denied.startswith(f"User: {arn} is not authorized to perform: kms:Encrypt on resource: {key['Arn']}")

    grant = kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=arn, Operations=["Encrypt", "Decrypt"])
    assert len(grant["GrantId"]) == 64 and int(grant["GrantId"], 16) >= 0
    token = grant["GrantToken"]
    blob = user_kms.encrypt(KeyId=key["Arn"], Plaintext=b"via grant", GrantTokens=[token])["CiphertextBlob"]
    assert user_kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"via grant"
    # Only the granted operations.
    with client_error("AccessDeniedException"):
        user_kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")

    kms.revoke_grant(KeyId=key["KeyId"], GrantId=grant["GrantId"])
    with client_error("AccessDeniedException") as err:
        user_kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert err["error"].response["Error"]["Message"] == denied
    with client_error("AccessDeniedException"):
        user_kms.decrypt(CiphertextBlob=blob)
    with client_error("NotFoundException"):
        kms.revoke_grant(KeyId=key["KeyId"], GrantId=grant["GrantId"])


def test_constraints_equals_and_subset(kms, iam, client, key):
    arn_eq, kms_eq = new_user(iam, client)
    arn_sub, kms_sub = new_user(iam, client)
    kms.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=arn_eq,
        Operations=["Encrypt", "Decrypt"],
        Constraints={"EncryptionContextEquals": {"dept": "it"}},
    )
    kms.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=arn_sub,
        Operations=["Encrypt"],
        Constraints={"EncryptionContextSubset": {"dept": "it"}},
    )
    blob = kms_eq.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"dept": "it"})["CiphertextBlob"]
    assert kms_eq.decrypt(CiphertextBlob=blob, EncryptionContext={"dept": "it"})["Plaintext"] == b"x"
    for bad in [{}, {"dept": "IT"}, {"dept": "it", "extra": "1"}]:
        with client_error("AccessDeniedException"):
            kms_eq.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext=bad)
    kms_sub.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"dept": "it", "extra": "1"})
    with client_error("AccessDeniedException"):
        kms_sub.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"extra": "1"})

    listed = kms.list_grants(KeyId=key["KeyId"], GranteePrincipal=arn_eq)["Grants"]
    assert len(listed) == 1
    assert listed[0]["Constraints"] == {"EncryptionContextEquals": {"dept": "it"}}
    assert listed[0]["IssuingAccount"] == ACCOUNT_A.root_arn
    assert listed[0]["KeyId"] == key["Arn"]


def test_cross_account_grant_with_the_key_arn(kms, kms_b, key):
    with client_error("AccessDeniedException"):
        kms_b.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=ACCOUNT_B.root_arn, Operations=["Encrypt", "DescribeKey"])
    out = kms_b.encrypt(KeyId=key["Arn"], Plaintext=b"cross")
    assert out["KeyId"] == key["Arn"]
    assert kms_b.describe_key(KeyId=key["Arn"])["KeyMetadata"]["KeyId"] == key["KeyId"]
    # A bare key id names a key of the caller's own account.
    with client_error("NotFoundException"):
        kms_b.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    # Decrypt was not granted.
    with client_error("AccessDeniedException"):
        kms_b.decrypt(CiphertextBlob=out["CiphertextBlob"])


def test_retire_by_retiring_principal_and_by_token(kms, iam, client, key):
    grantee, grantee_kms = new_user(iam, client)
    retirer, retirer_kms = new_user(iam, client)
    first = kms.create_grant(
        KeyId=key["KeyId"], GranteePrincipal=grantee, RetiringPrincipal=retirer, Operations=["Encrypt"], Name="e2e-retire"
    )
    # Idempotent with the same name and parameters.
    again = kms.create_grant(
        KeyId=key["KeyId"], GranteePrincipal=grantee, RetiringPrincipal=retirer, Operations=["Encrypt"], Name="e2e-retire"
    )
    assert again["GrantId"] == first["GrantId"]
    second = kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee, Operations=["Decrypt"])

    retirable = kms.list_retirable_grants(RetiringPrincipal=retirer)["Grants"]
    assert [g["GrantId"] for g in retirable] == [first["GrantId"]]
    assert retirable[0]["Name"] == "e2e-retire"
    assert retirable[0]["RetiringPrincipal"] == retirer

    # The grantee may not retire a grant without RetireGrant; the retiring principal may.
    with client_error("AccessDeniedException"):
        grantee_kms.retire_grant(KeyId=key["KeyId"], GrantId=first["GrantId"])
    grantee_kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    retirer_kms.retire_grant(KeyId=key["Arn"], GrantId=first["GrantId"])
    with client_error("AccessDeniedException"):
        grantee_kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert kms.list_retirable_grants(RetiringPrincipal=retirer)["Grants"] == []

    # By the grant token alone.
    kms.retire_grant(GrantToken=second["GrantToken"])
    assert kms.list_grants(KeyId=key["KeyId"])["Grants"] == []
    with client_error("NotFoundException"):
        kms.retire_grant(GrantToken=second["GrantToken"])


def test_list_grants_pagination_and_filters(kms, key, aws):
    ids = set()
    for i in range(5):
        g = kms.create_grant(
            KeyId=key["KeyId"],
            GranteePrincipal=f"arn:aws:iam::{ACCOUNT_A.account_id}:user/page{i % 2}",
            Operations=["Encrypt"],
        )
        ids.add(g["GrantId"])
    seen = []
    marker = None
    pages = 0
    while True:
        kwargs = {"KeyId": key["KeyId"], "Limit": 2}
        if marker:
            kwargs["Marker"] = marker
        page = kms.list_grants(**kwargs)
        pages += 1
        assert len(page["Grants"]) <= 2
        seen += [g["GrantId"] for g in page["Grants"]]
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        marker = page["NextMarker"]
    assert pages == 3
    assert seen == sorted(ids)
    by_grantee = kms.list_grants(KeyId=key["KeyId"], GranteePrincipal=f"arn:aws:iam::{ACCOUNT_A.account_id}:user/page1")
    assert len(by_grantee["Grants"]) == 2
    one = sorted(ids)[0]
    assert [g["GrantId"] for g in kms.list_grants(KeyId=key["KeyId"], GrantId=one)["Grants"]] == [one]
    # And with the aws CLI (it follows the markers itself).
    out = aws.json("kms", "list-grants", "--key-id", key["Arn"], "--page-size", "2")
    assert sorted(g["GrantId"] for g in out["Grants"]) == sorted(ids)


def test_errors_for_bad_grant_ids_tokens_and_operations(kms, key, make_key):
    with client_error("InvalidGrantIdException"):
        kms.revoke_grant(KeyId=key["KeyId"], GrantId="not-a-grant-id")
    with client_error("InvalidGrantIdException"):
        kms.list_grants(KeyId=key["KeyId"], GrantId="xyz")
    with client_error("NotFoundException"):
        kms.revoke_grant(KeyId=key["KeyId"], GrantId="0" * 64)
    with client_error("InvalidGrantTokenException"):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=["not a token"])
    with client_error("InvalidGrantTokenException"):
        kms.retire_grant(GrantToken="garbage")
    with client_error("ValidationException"):
        kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=ACCOUNT_B.root_arn, Operations=["Sign"])
    signing = make_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")
    with client_error("ValidationException"):
        kms.create_grant(
            KeyId=signing["KeyId"],
            GranteePrincipal=ACCOUNT_B.root_arn,
            Operations=["Sign"],
            Constraints={"EncryptionContextSubset": {"a": "b"}},
        )
    with client_error("NotFoundException"):
        kms.create_grant(
            KeyId="0badc0de-0000-4000-8000-000000000000", GranteePrincipal=ACCOUNT_B.root_arn, Operations=["Encrypt"]
        )
    # Bad input changed nothing.
    assert kms.list_grants(KeyId=key["KeyId"])["Grants"] == []


def test_cloudtrail_record_of_create_grant_has_the_id_and_no_token(kms, cloudtrail, key):
    resp = kms.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=ACCOUNT_B.root_arn,
        RetiringPrincipal=ACCOUNT_A.root_arn,
        Operations=["Encrypt", "Decrypt"],
        Constraints={"EncryptionContextSubset": {"app": "e2e"}},
        Name="audited",
    )
    request_id = resp["ResponseMetadata"]["RequestId"]
    events = wait_for_events(
        cloudtrail, ("EventName", "CreateGrant"), lambda evs: by_request_id(evs, request_id) is not None
    )
    event = by_request_id(events, request_id)
    assert event is not None
    raw = event["CloudTrailEvent"]
    record = event_json(event)
    assert resp["GrantToken"] not in raw
    assert "grantToken" not in raw
    assert record["responseElements"] == {"grantId": resp["GrantId"]}
    params = record["requestParameters"]
    assert params["keyId"] == key["KeyId"]
    assert params["granteePrincipal"] == ACCOUNT_B.root_arn
    assert params["retiringPrincipal"] == ACCOUNT_A.root_arn
    assert params["operations"] == ["Encrypt", "Decrypt"]
    assert params["constraints"] == {"encryptionContextSubset": {"app": "e2e"}}
    assert params["name"] == "audited"
    assert record["readOnly"] is False
    assert record["resources"][0]["ARN"] == key["Arn"]
    assert json.loads(raw)["eventName"] == "CreateGrant"


def test_create_grant_condition_keys_in_the_key_policy(kms, iam, client, make_key):
    creator, creator_kms = new_user(iam, client)
    grantee, _ = new_user(iam, client)
    aws_only, aws_only_kms = new_user(iam, client)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ACCOUNT_A.root_arn}, "Action": "kms:*", "Resource": "*"},
            {
                "Effect": "Allow",
                "Principal": {"AWS": creator},
                "Action": "kms:CreateGrant",
                "Resource": "*",
                "Condition": {
                    "ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", "Decrypt"]},
                    "StringEquals": {"kms:GranteePrincipal": grantee},
                },
            },
            {
                "Effect": "Allow",
                "Principal": {"AWS": aws_only},
                "Action": "kms:CreateGrant",
                "Resource": "*",
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
        ],
    }
    key = make_key(Policy=json.dumps(policy))
    creator_kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee, Operations=["Encrypt"])
    with client_error("AccessDeniedException"):
        creator_kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee, Operations=["Encrypt", "GenerateDataKey"])
    with client_error("AccessDeniedException"):
        creator_kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=aws_only, Operations=["Encrypt"])
    with client_error("AccessDeniedException"):
        aws_only_kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee, Operations=["Encrypt"])
    assert len(kms.list_grants(KeyId=key["KeyId"])["Grants"]) == 1
