"""Authorization as AWS KMS decides it, through boto3: key policies decide who may use
a key, across accounts too, with AWS's AccessDeniedException messages."""

from __future__ import annotations

import json

from e2e_support import ACCOUNT_A, ACCOUNT_B, alias_arn, client_error, unique

DENIED_PREFIX = (
    f"User: {ACCOUNT_B.root_arn} is not authorized to perform: kms:Encrypt "
    f"on resource: arn:aws:kms:us-east-1:{ACCOUNT_A.account_id}:key/"
)


def owner_statement() -> dict:
    return {
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": ACCOUNT_A.root_arn},
        "Action": "kms:*",
        "Resource": "*",
    }


def put_policy(kms, key_id: str, *statements: dict) -> None:
    policy = {"Version": "2012-10-17", "Statement": [owner_statement(), *statements]}
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))


def message(err) -> str:
    return err["error"].response["Error"]["Message"]


def test_other_account_is_denied_with_the_default_key_policy(kms_b, key):
    with client_error("AccessDeniedException") as err:
        kms_b.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    msg = message(err)
    assert msg.startswith(DENIED_PREFIX), msg
    assert msg == (
        f"{DENIED_PREFIX}{key['KeyId']} because no resource-based policy allows the kms:Encrypt action"
    )


def test_other_account_may_use_the_key_once_the_key_policy_names_it(kms, kms_b, key):
    put_policy(
        kms,
        key["KeyId"],
        {
            "Sid": "Allow use of the key by account B",
            "Effect": "Allow",
            "Principal": {"AWS": ACCOUNT_B.root_arn},
            "Action": ["kms:Encrypt", "kms:Decrypt"],
            "Resource": "*",
        },
    )
    enc = kms_b.encrypt(KeyId=key["Arn"], Plaintext=b"shared secret", EncryptionContext={"k": "v"})
    assert enc["KeyId"] == key["Arn"]
    dec = kms_b.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"k": "v"})
    assert dec["Plaintext"] == b"shared secret"
    assert dec["KeyId"] == key["Arn"]
    # The owner reads what B wrote, and B reads what the owner wrote.
    assert kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"k": "v"})["Plaintext"] == b"shared secret"
    mine = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"from a")["CiphertextBlob"]
    assert kms_b.decrypt(CiphertextBlob=mine)["Plaintext"] == b"from a"
    # An alias ARN names the key across accounts too.
    alias = unique("alias/e2e-shared")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    assert kms_b.encrypt(KeyId=alias_arn(alias, ACCOUNT_A), Plaintext=b"x")["KeyId"] == key["Arn"]
    # What the policy does not grant stays denied.
    with client_error("AccessDeniedException") as err:
        kms_b.generate_data_key(KeyId=key["Arn"], KeySpec="AES_256")
    assert "kms:GenerateDataKey" in message(err)


def test_other_account_cannot_disable_the_key_even_when_the_policy_says_so(kms, kms_b, key):
    put_policy(
        kms,
        key["KeyId"],
        {
            "Sid": "Everything for account B",
            "Effect": "Allow",
            "Principal": {"AWS": ACCOUNT_B.root_arn},
            "Action": "kms:*",
            "Resource": "*",
        },
    )
    # DisableKey is not one of the operations that work across accounts.
    with client_error("AccessDeniedException") as err:
        kms_b.disable_key(KeyId=key["Arn"])
    assert "kms:DisableKey" in message(err) and key["Arn"] in message(err)
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    # DescribeKey is one of them.
    assert kms_b.describe_key(KeyId=key["Arn"])["KeyMetadata"]["Arn"] == key["Arn"]


def test_explicit_deny_with_a_condition(kms, key):
    put_policy(
        kms,
        key["KeyId"],
        {
            "Sid": "Deny Encrypt unless app is x",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:Encrypt",
            "Resource": "*",
            "Condition": {"StringNotEquals": {"kms:EncryptionContext:app": "x"}},
        },
    )
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"ok", EncryptionContext={"app": "x"})["CiphertextBlob"]
    for context in ({"app": "y"}, {}):
        with client_error("AccessDeniedException") as err:
            kms.encrypt(KeyId=key["KeyId"], Plaintext=b"no", EncryptionContext=context)
        assert message(err) == (
            f"User: {ACCOUNT_A.root_arn} is not authorized to perform: kms:Encrypt on resource: {key['Arn']} "
            "with an explicit deny in a resource-based policy"
        )
    # The deny names Encrypt only.
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "x"})["Plaintext"] == b"ok"
