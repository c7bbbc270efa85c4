"""IAM and STS through the same endpoint, with boto3 and the aws CLI: users, access keys,
inline policies enforced on KMS calls, roles, AssumeRole and session credentials, and the
CloudTrail records of those calls (never with a secret)."""

from __future__ import annotations

import json
import time

import pytest

from e2e_support import ACCOUNT_B, REGION, client_error, lookup_events, retry_config, unique

# Everything happens in account b, so account a's trail (which other tests page through)
# stays as it was.
ACCOUNT = ACCOUNT_B
ACCT = ACCOUNT.account_id

ENCRYPT_DENIED = (
    "User: arn:aws:iam::444455556666:user/{user} is not authorized to perform: kms:Encrypt "
    "on resource: {key} because no identity-based policy allows the kms:Encrypt action"
)


def session_client(endpoint: str, service: str, access_key: str, secret_key: str, token: str | None = None):
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=token,
        region_name=REGION,
    )
    return session.client(service, endpoint_url=endpoint, region_name=REGION, config=retry_config())


def allow(action: str, resource: str = "*") -> str:
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}
    )


def trust(principal: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}],
        }
    )


@pytest.fixture(scope="module")
def iam(client):
    return client("iam", "b")


@pytest.fixture
def key(kms_b):
    """A fresh symmetric key of account b (KeyMetadata)."""
    return kms_b.create_key(Description="e2e iam/sts")["KeyMetadata"]


@pytest.fixture(scope="module")
def sts(client):
    return client("sts", "b")


def new_user(iam, endpoint: str, prefix: str = "user"):
    name = unique(prefix)
    user = iam.create_user(UserName=name)["User"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return name, user, key


def test_user_lifecycle_and_errors(iam):
    name = unique("life")
    user = iam.create_user(UserName=name, Path="/team/")["User"]
    assert user["UserName"] == name
    assert user["Path"] == "/team/"
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT.account_id}:user/team/{name}"
    assert user["UserId"].startswith("AIDA")
    assert iam.get_user(UserName=name)["User"]["UserId"] == user["UserId"]
    assert name in [u["UserName"] for u in iam.list_users()["Users"]]
    assert [u["UserName"] for u in iam.list_users(PathPrefix="/team/")["Users"]] == [name]

    with client_error("EntityAlreadyExists", 409) as err:
        iam.create_user(UserName=name)
    assert err["error"].response["Error"]["Message"] == f"User with name {name} already exists."
    with client_error("NoSuchEntity", 404) as err:
        iam.get_user(UserName=unique("nobody"))

    key = iam.create_access_key(UserName=name)["AccessKey"]
    assert key["AccessKeyId"].startswith("AKIA") and len(key["SecretAccessKey"]) == 40
    assert key["Status"] == "Active"
    listed = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed] == [key["AccessKeyId"]]
    assert "SecretAccessKey" not in listed[0]

    iam.put_user_policy(UserName=name, PolicyName="p1", PolicyDocument=allow("kms:Encrypt"))
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == ["p1"]
    got = iam.get_user_policy(UserName=name, PolicyName="p1")
    # boto3 decodes IAM's URL-encoded document into a dict.
    assert got["PolicyDocument"] == json.loads(allow("kms:Encrypt"))
    with client_error("MalformedPolicyDocument") as err:
        iam.put_user_policy(
            UserName=name,
            PolicyName="bad",
            PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"},]}',
        )

    with client_error("DeleteConflict", 409) as err:
        iam.delete_user(UserName=name)
    assert err["error"].response["Error"]["Message"] == "Cannot delete entity, must delete access keys first."
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    with client_error("DeleteConflict", 409) as err:
        iam.delete_user(UserName=name)
    assert err["error"].response["Error"]["Message"] == "Cannot delete entity, must delete policies first."
    iam.delete_user_policy(UserName=name, PolicyName="p1")
    with client_error("NoSuchEntity", 404):
        iam.get_user_policy(UserName=name, PolicyName="p1")
    iam.delete_user(UserName=name)
    with client_error("NoSuchEntity", 404) as err:
        iam.get_user(UserName=name)
    assert err["error"].response["Error"]["Message"] == f"The user with name {name} cannot be found."


def test_user_denied_then_allowed_by_its_policy(iam, endpoint, key):
    name, _, access = new_user(iam, endpoint, "enc")
    kms_user = session_client(endpoint, "kms", access["AccessKeyId"], access["SecretAccessKey"])
    with client_error("AccessDeniedException") as err:
        kms_user.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    assert err["error"].response["Error"]["Message"] == ENCRYPT_DENIED.format(user=name, key=key["Arn"])

    iam.put_user_policy(UserName=name, PolicyName="enc", PolicyDocument=allow("kms:Encrypt", key["Arn"]))
    out = kms_user.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    assert out["KeyId"] == key["Arn"]
    # Only what the policy grants.
    with client_error("AccessDeniedException"):
        kms_user.decrypt(CiphertextBlob=out["CiphertextBlob"])

    # The user itself may not manage IAM without a policy allowing it.
    iam_user = session_client(endpoint, "iam", access["AccessKeyId"], access["SecretAccessKey"])
    with client_error("AccessDenied", 403) as err:
        iam_user.create_user(UserName=unique("x"))
    assert err["error"].response["Error"]["Message"].startswith(
        f"User: arn:aws:iam::{ACCT}:user/{name} is not authorized to perform: iam:CreateUser on resource: "
    )
    # Its own keys: GetUser without a name is about the caller once allowed.
    iam.put_user_policy(UserName=name, PolicyName="self", PolicyDocument=allow("iam:GetUser"))
    assert iam_user.get_user()["User"]["UserName"] == name

    sts_user = session_client(endpoint, "sts", access["AccessKeyId"], access["SecretAccessKey"])
    ident = sts_user.get_caller_identity()
    assert ident["Arn"] == f"arn:aws:iam::{ACCT}:user/{name}"
    assert ident["Account"] == ACCOUNT.account_id
    assert ident["UserId"].startswith("AIDA")


def test_inactive_key_stops_working(iam, endpoint):
    name, _, access = new_user(iam, endpoint, "inactive")
    sts_user = session_client(endpoint, "sts", access["AccessKeyId"], access["SecretAccessKey"])
    assert sts_user.get_caller_identity()["Account"] == ACCOUNT.account_id
    iam.update_access_key(UserName=name, AccessKeyId=access["AccessKeyId"], Status="Inactive")
    assert iam.list_access_keys(UserName=name)["AccessKeyMetadata"][0]["Status"] == "Inactive"
    with client_error("InvalidClientTokenId", 403) as err:
        sts_user.get_caller_identity()
    assert err["error"].response["Error"]["Message"] == "The security token included in the request is invalid."
    kms_user = session_client(endpoint, "kms", access["AccessKeyId"], access["SecretAccessKey"])
    with client_error("UnrecognizedClientException"):
        kms_user.list_keys()
    iam.update_access_key(UserName=name, AccessKeyId=access["AccessKeyId"], Status="Active")
    assert sts_user.get_caller_identity()["Account"] == ACCOUNT.account_id


def test_assume_role_session_calls_kms(iam, endpoint, key):
    name, user, access = new_user(iam, endpoint, "assumer")
    role_name = unique("role")
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust(user["Arn"]))["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCT}:role/{role_name}"
    assert role["RoleId"].startswith("AROA")
    assert role["MaxSessionDuration"] == 3600
    assert iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"] == json.loads(trust(user["Arn"]))
    iam.put_role_policy(RoleName=role_name, PolicyName="enc", PolicyDocument=allow("kms:Encrypt"))
    assert iam.list_role_policies(RoleName=role_name)["PolicyNames"] == ["enc"]
    assert iam.get_role_policy(RoleName=role_name, PolicyName="enc")["PolicyDocument"]["Statement"][0]["Action"] == "kms:Encrypt"

    sts_user = session_client(endpoint, "sts", access["AccessKeyId"], access["SecretAccessKey"])
    out = sts_user.assume_role(RoleArn=role["Arn"], RoleSessionName="app-session", DurationSeconds=900)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert creds["SessionToken"]
    remaining = (creds["Expiration"].timestamp() - time.time())
    assert 800 < remaining <= 901, remaining
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCT}:assumed-role/{role_name}/app-session"
    assert out["AssumedRoleUser"]["AssumedRoleId"] == f"{role['RoleId']}:app-session"

    sts_session = session_client(endpoint, "sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    ident = sts_session.get_caller_identity()
    assert ident["Arn"] == f"arn:aws:sts::{ACCT}:assumed-role/{role_name}/app-session"
    assert ident["UserId"] == f"{role['RoleId']}:app-session"

    kms_session = session_client(endpoint, "kms", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert kms_session.encrypt(KeyId=key["Arn"], Plaintext=b"x")["KeyId"] == key["Arn"]
    with client_error("AccessDeniedException") as err:
        kms_session.describe_key(KeyId=key["Arn"])
    assert err["error"].response["Error"]["Message"].startswith(
        f"User: arn:aws:sts::{ACCT}:assumed-role/{role_name}/app-session is not authorized to perform: kms:DescribeKey"
    )
    # The secret without the token is not a credential.
    kms_no_token = session_client(endpoint, "kms", creds["AccessKeyId"], creds["SecretAccessKey"])
    with client_error("UnrecognizedClientException"):
        kms_no_token.encrypt(KeyId=key["Arn"], Plaintext=b"x")

    with client_error("DeleteConflict", 409):
        iam.delete_role(RoleName=role_name)
    iam.delete_role_policy(RoleName=role_name, PolicyName="enc")
    iam.delete_role(RoleName=role_name)
    with client_error("NoSuchEntity", 404):
        iam.get_role(RoleName=role_name)


def test_trust_policy_denial_and_root(iam, sts, endpoint):
    name, user, access = new_user(iam, endpoint, "outsider")
    role_name = unique("closed")
    role = iam.create_role(
        RoleName=role_name, AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCT}:user/someone-else")
    )["Role"]
    sts_user = session_client(endpoint, "sts", access["AccessKeyId"], access["SecretAccessKey"])
    with client_error("AccessDenied", 403) as err:
        sts_user.assume_role(RoleArn=role["Arn"], RoleSessionName="s1")
    assert err["error"].response["Error"]["Message"] == (
        f"User: {user['Arn']} is not authorized to perform: sts:AssumeRole on resource: {role['Arn']}"
    )
    with client_error("AccessDenied", 403) as err:
        sts.assume_role(RoleArn=role["Arn"], RoleSessionName="root-session")
    assert err["error"].response["Error"]["Message"] == "Roles may not be assumed by root accounts."

    # A trust policy naming the account delegates to the user's own policies.
    open_role = iam.create_role(RoleName=unique("acct"), AssumeRolePolicyDocument=trust(ACCOUNT.account_id))["Role"]
    with client_error("AccessDenied", 403):
        sts_user.assume_role(RoleArn=open_role["Arn"], RoleSessionName="s1")
    iam.put_user_policy(UserName=name, PolicyName="assume", PolicyDocument=allow("sts:AssumeRole", open_role["Arn"]))
    assert sts_user.assume_role(RoleArn=open_role["Arn"], RoleSessionName="s1")["Credentials"]["AccessKeyId"].startswith("ASIA")

    with client_error("MalformedPolicyDocument"):
        iam.create_role(RoleName=unique("bad"), AssumeRolePolicyDocument=allow("sts:AssumeRole"))


def test_root_get_caller_identity_and_cli(aws):
    ident = aws.json("sts", "get-caller-identity", account="b")
    assert ident == {"UserId": ACCOUNT.account_id, "Account": ACCOUNT.account_id, "Arn": ACCOUNT.root_arn}
    name = unique("cli")
    created = aws.json("iam", "create-user", "--user-name", name, account="b")
    assert created["User"]["UserName"] == name
    aws.run("iam", "put-user-policy", "--user-name", name, "--policy-name", "p", "--policy-document", allow("kms:Encrypt"), account="b")
    got = aws.json("iam", "get-user-policy", "--user-name", name, "--policy-name", "p", account="b")
    assert got["PolicyDocument"] == json.loads(allow("kms:Encrypt"))
    key = aws.json("iam", "create-access-key", "--user-name", name, account="b")["AccessKey"]
    keys = aws.json("iam", "list-access-keys", "--user-name", name, account="b")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [key["AccessKeyId"]]
    failed = aws.run("iam", "get-user", "--user-name", unique("missing"), check=False, account="b")
    assert failed.returncode != 0 and "NoSuchEntity" in failed.stderr


def test_iam_and_sts_calls_are_recorded_without_secrets(iam, endpoint, cloudtrail_b):
    name, user, access = new_user(iam, endpoint, "audited")
    role = iam.create_role(RoleName=unique("audited"), AssumeRolePolicyDocument=trust(user["Arn"]))["Role"]
    sts_user = session_client(endpoint, "sts", access["AccessKeyId"], access["SecretAccessKey"])
    creds = sts_user.assume_role(RoleArn=role["Arn"], RoleSessionName="audit")["Credentials"]

    events = lookup_events(cloudtrail_b, ("EventSource", "iam.amazonaws.com"))
    created = [e for e in events if e["EventName"] == "CreateAccessKey" and name in e["CloudTrailEvent"]]
    assert created, [e["EventName"] for e in events]
    record = json.loads(created[0]["CloudTrailEvent"])
    assert record["eventSource"] == "iam.amazonaws.com"
    assert record["requestParameters"] == {"userName": name}
    assert record["responseElements"]["accessKey"]["accessKeyId"] == access["AccessKeyId"]
    assert access["SecretAccessKey"] not in created[0]["CloudTrailEvent"]

    sts_events = lookup_events(cloudtrail_b, ("EventName", "AssumeRole"))
    mine = [e for e in sts_events if creds["AccessKeyId"] in e["CloudTrailEvent"]]
    assert mine
    text = mine[0]["CloudTrailEvent"]
    record = json.loads(text)
    assert record["eventSource"] == "sts.amazonaws.com"
    assert record["userIdentity"]["arn"] == user["Arn"]
    assert creds["SecretAccessKey"] not in text
    assert creds["SessionToken"] not in text
