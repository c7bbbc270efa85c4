"""IAM customer managed policies (versions, attachments to users and roles, enforced on KMS
calls), user and role tags (aws:PrincipalTag in conditions and policy variables), with boto3
and the aws CLI, and the CloudTrail records of those calls."""

from __future__ import annotations

import json

import pytest

from e2e_support import ACCOUNT_B, REGION, client_error, lookup_events, retry_config, unique

# Everything happens in account b, like test_iam_sts.
ACCT = ACCOUNT_B.account_id


def session_client(endpoint: str, service: str, access_key: str, secret_key: str, token: str | None = None):
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=token,
        region_name=REGION,
    )
    return session.client(service, endpoint_url=endpoint, region_name=REGION, config=retry_config())


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str, resource: str = "*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


@pytest.fixture(scope="module")
def iam(client):
    return client("iam", "b")


@pytest.fixture
def key(kms_b):
    return kms_b.create_key(Description="e2e iam managed")["KeyMetadata"]


def new_user(iam, endpoint: str, prefix: str):
    name = unique(prefix)
    iam.create_user(UserName=name)
    access = iam.create_access_key(UserName=name)["AccessKey"]
    kms = session_client(endpoint, "kms", access["AccessKeyId"], access["SecretAccessKey"])
    return name, kms


def test_managed_policy_lifecycle_versions_and_errors(iam):
    name = unique("mp")
    document = doc(allow("kms:Encrypt"))
    pol = iam.create_policy(PolicyName=name, Path="/e2e/", PolicyDocument=document, Description="d")["Policy"]
    arn = f"arn:aws:iam::{ACCT}:policy/e2e/{name}"
    assert pol["Arn"] == arn
    assert pol["PolicyId"].startswith("ANPA")
    assert (pol["Path"], pol["DefaultVersionId"], pol["AttachmentCount"], pol["IsAttachable"]) == (
        "/e2e/",
        "v1",
        0,
        True,
    )
    got = iam.get_policy(PolicyArn=arn)["Policy"]
    assert got["PolicyName"] == name and got["Description"] == "d"
    version = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
    # IAM URL-encodes the document; boto3 decodes it into a dict.
    assert version["Document"] == json.loads(document)
    assert version["IsDefaultVersion"] is True

    with client_error("EntityAlreadyExists", 409) as err:
        iam.create_policy(PolicyName=name, PolicyDocument=document)
    assert err["error"].response["Error"]["Message"] == (
        f"A policy called {name} already exists. Duplicate names are not allowed."
    )
    with client_error("MalformedPolicyDocument") as err:
        iam.create_policy(PolicyName=unique("bad"), PolicyDocument='{"Version":"2012-10-17","Statement":[}')
    assert err["error"].response["Error"]["Message"] == "This policy contains invalid Json"
    with client_error("MalformedPolicyDocument") as err:
        iam.create_policy(
            PolicyName=unique("bad"),
            PolicyDocument=doc(allow("kms:Encrypt", Principal={"AWS": "*"})),
        )
    assert err["error"].response["Error"]["Message"] == "Policy document should not specify a principal."
    missing = f"arn:aws:iam::{ACCT}:policy/{unique('nope')}"
    with client_error("NoSuchEntity", 404) as err:
        iam.get_policy(PolicyArn=missing)
    assert err["error"].response["Error"]["Message"] == f"Policy {missing} was not found."

    # Versions: a new default, the old one listed, the default not deletable.
    v2 = iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc(allow("kms:Decrypt")), SetAsDefault=True)
    assert v2["PolicyVersion"]["VersionId"] == "v2" and v2["PolicyVersion"]["IsDefaultVersion"] is True
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert sorted((v["VersionId"], v["IsDefaultVersion"]) for v in versions) == [("v1", False), ("v2", True)]
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v2"
    with client_error("DeleteConflict", 409) as err:
        iam.delete_policy_version(PolicyArn=arn, VersionId="v2")
    assert err["error"].response["Error"]["Message"] == "Cannot delete the default version of a policy."
    iam.delete_policy_version(PolicyArn=arn, VersionId="v1")
    with client_error("NoSuchEntity", 404):
        iam.get_policy_version(PolicyArn=arn, VersionId="v1")

    # Attached: cannot be deleted.
    user = unique("holder")
    iam.create_user(UserName=user)
    iam.attach_user_policy(UserName=user, PolicyArn=arn)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    assert iam.list_attached_user_policies(UserName=user)["AttachedPolicies"] == [
        {"PolicyName": name, "PolicyArn": arn}
    ]
    with client_error("DeleteConflict", 409) as err:
        iam.delete_policy(PolicyArn=arn)
    assert err["error"].response["Error"]["Message"] == "Cannot delete a policy attached to entities."
    with client_error("DeleteConflict", 409) as err:
        iam.delete_user(UserName=user)
    assert err["error"].response["Error"]["Message"] == "Cannot delete entity, must detach all policies first."
    with client_error("NoSuchEntity", 404) as err:
        iam.attach_user_policy(UserName=user, PolicyArn=missing)
    assert err["error"].response["Error"]["Message"] == f"Policy {missing} does not exist or is not attachable."
    with client_error("NoSuchEntity", 404):
        iam.attach_user_policy(UserName=unique("ghost"), PolicyArn=arn)
    iam.detach_user_policy(UserName=user, PolicyArn=arn)
    with client_error("NoSuchEntity", 404):
        iam.detach_user_policy(UserName=user, PolicyArn=arn)
    assert iam.list_attached_user_policies(UserName=user)["AttachedPolicies"] == []
    iam.delete_policy(PolicyArn=arn)
    with client_error("NoSuchEntity", 404):
        iam.get_policy(PolicyArn=arn)
    iam.delete_user(UserName=user)


def test_list_policies_scope_only_attached_and_pagination(iam, aws):
    path = f"/{unique('page')}/"
    names = sorted(unique(f"lp{i}") for i in range(3))
    arns = [iam.create_policy(PolicyName=n, Path=path, PolicyDocument=doc(allow("kms:Encrypt")))["Policy"]["Arn"] for n in names]

    first = iam.list_policies(Scope="Local", PathPrefix=path, MaxItems=2)
    assert [p["PolicyName"] for p in first["Policies"]] == names[:2]
    assert first["IsTruncated"] is True and first["Marker"]
    second = iam.list_policies(Scope="Local", PathPrefix=path, MaxItems=2, Marker=first["Marker"])
    assert [p["PolicyName"] for p in second["Policies"]] == names[2:]
    assert second["IsTruncated"] is False and "Marker" not in second
    paged = [
        p["PolicyName"]
        for page in iam.get_paginator("list_policies").paginate(
            Scope="All", PathPrefix=path, PaginationConfig={"PageSize": 1}
        )
        for p in page["Policies"]
    ]
    assert paged == names
    assert iam.list_policies(Scope="AWS", PathPrefix=path)["Policies"] == []
    assert iam.list_policies(Scope="Local", PathPrefix=path, OnlyAttached=True)["Policies"] == []

    role = unique("lprole")
    iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    iam.attach_role_policy(RoleName=role, PolicyArn=arns[1])
    attached = iam.list_policies(Scope="Local", PathPrefix=path, OnlyAttached=True)["Policies"]
    assert [p["PolicyName"] for p in attached] == [names[1]]
    assert attached[0]["AttachmentCount"] == 1
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == [
        {"PolicyName": names[1], "PolicyArn": arns[1]}
    ]
    # The aws CLI sees the same.
    out = aws.json("iam", "list-policies", "--scope", "Local", "--path-prefix", path, "--only-attached", account="b")
    assert [p["Arn"] for p in out["Policies"]] == [arns[1]]
    iam.detach_role_policy(RoleName=role, PolicyArn=arns[1])
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    iam.delete_role(RoleName=role)
    for a in arns:
        iam.delete_policy(PolicyArn=a)


def test_attached_policy_authorizes_users_and_role_sessions(iam, endpoint, key):
    name, kms_user = new_user(iam, endpoint, "mpuser")
    with client_error("AccessDeniedException"):
        kms_user.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    arn = iam.create_policy(PolicyName=unique("enc"), PolicyDocument=doc(allow("kms:Encrypt", key["Arn"])))["Policy"]["Arn"]
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    assert kms_user.encrypt(KeyId=key["Arn"], Plaintext=b"x")["KeyId"] == key["Arn"]
    with client_error("AccessDeniedException"):
        kms_user.generate_data_key(KeyId=key["Arn"], KeySpec="AES_256")

    # A new default version changes what the attached policy allows.
    iam.create_policy_version(
        PolicyArn=arn, PolicyDocument=doc(allow("kms:GenerateDataKey", key["Arn"])), SetAsDefault=True
    )
    assert kms_user.generate_data_key(KeyId=key["Arn"], KeySpec="AES_256")["KeyId"] == key["Arn"]
    with client_error("AccessDeniedException"):
        kms_user.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v1")
    assert kms_user.encrypt(KeyId=key["Arn"], Plaintext=b"x")["KeyId"] == key["Arn"]

    iam.detach_user_policy(UserName=name, PolicyArn=arn)
    with client_error("AccessDeniedException"):
        kms_user.encrypt(KeyId=key["Arn"], Plaintext=b"x")

    # A role's attached policy applies to its sessions.
    user_arn = f"arn:aws:iam::{ACCT}:user/{name}"
    role = unique("mprole")
    role_arn = iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"}],
            }
        ),
    )["Role"]["Arn"]
    assume = iam.create_policy(PolicyName=unique("assume"), PolicyDocument=doc(allow("sts:AssumeRole", role_arn)))
    iam.attach_user_policy(UserName=name, PolicyArn=assume["Policy"]["Arn"])
    # new_user kept only a KMS client: a second key pair for STS.
    key2 = iam.create_access_key(UserName=name)["AccessKey"]
    sts_user = session_client(endpoint, "sts", key2["AccessKeyId"], key2["SecretAccessKey"])
    creds = sts_user.assume_role(RoleArn=role_arn, RoleSessionName="s1")["Credentials"]
    kms_session = session_client(
        endpoint, "kms", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]
    )
    with client_error("AccessDeniedException"):
        kms_session.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    assert kms_session.encrypt(KeyId=key["Arn"], Plaintext=b"x")["KeyId"] == key["Arn"]


def test_tags_limits_and_get_user_get_role(iam, aws):
    name = unique("tagged")
    iam.create_user(UserName=name)
    iam.tag_user(UserName=name, Tags=[{"Key": "team", "Value": "blue"}, {"Key": "cost", "Value": "42"}])
    assert iam.list_user_tags(UserName=name)["Tags"] == [
        {"Key": "team", "Value": "blue"},
        {"Key": "cost", "Value": "42"},
    ]
    iam.tag_user(UserName=name, Tags=[{"Key": "team", "Value": "red"}])
    assert {t["Key"]: t["Value"] for t in iam.get_user(UserName=name)["User"]["Tags"]} == {
        "team": "red",
        "cost": "42",
    }
    page = iam.list_user_tags(UserName=name, MaxItems=1)
    assert page["IsTruncated"] is True and len(page["Tags"]) == 1
    iam.untag_user(UserName=name, TagKeys=["cost"])
    assert iam.list_user_tags(UserName=name)["Tags"] == [{"Key": "team", "Value": "red"}]

    with client_error("LimitExceeded", 409) as err:
        iam.tag_user(UserName=name, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert err["error"].response["Error"]["Message"] == "Cannot exceed quota for TagsPerUser: 50"
    with client_error("ValidationError") as err:
        iam.tag_user(UserName=name, Tags=[{"Key": "k" * 129, "Value": "v"}])
    assert "Member must have length less than or equal to 128" in err["error"].response["Error"]["Message"]
    with client_error("ValidationError") as err:
        iam.tag_user(UserName=name, Tags=[{"Key": "k", "Value": "v" * 257}])
    assert "Member must have length less than or equal to 256" in err["error"].response["Error"]["Message"]
    with client_error("NoSuchEntity", 404):
        iam.tag_user(UserName=unique("ghost"), Tags=[{"Key": "a", "Value": "b"}])
    # Nothing changed by the refused calls.
    assert iam.list_user_tags(UserName=name)["Tags"] == [{"Key": "team", "Value": "red"}]

    role = unique("taggedrole")
    iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    aws.run("iam", "tag-role", "--role-name", role, "--tags", "Key=env,Value=prod", account="b")
    assert aws.json("iam", "list-role-tags", "--role-name", role, account="b")["Tags"] == [
        {"Key": "env", "Value": "prod"}
    ]
    assert iam.get_role(RoleName=role)["Role"]["Tags"] == [{"Key": "env", "Value": "prod"}]
    iam.untag_role(RoleName=role, TagKeys=["env"])
    assert iam.list_role_tags(RoleName=role)["Tags"] == []
    assert "Tags" not in iam.get_role(RoleName=role)["Role"]
    iam.delete_role(RoleName=role)
    iam.delete_user(UserName=name)


def test_principal_tags_in_conditions_and_variables(iam, endpoint, key):
    name, kms_user = new_user(iam, endpoint, "ptag")
    # The condition key and the policy variable both read the caller's stored tags.
    iam.put_user_policy(
        UserName=name,
        PolicyName="by-tag",
        PolicyDocument=doc(
            allow("kms:Encrypt", key["Arn"], Condition={"StringEquals": {"aws:PrincipalTag/team": "blue"}}),
            allow(
                "kms:GenerateDataKey",
                key["Arn"],
                Condition={"StringEquals": {"kms:EncryptionContext:team": "${aws:PrincipalTag/team}"}},
            ),
        ),
    )
    with client_error("AccessDeniedException"):
        kms_user.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    iam.tag_user(UserName=name, Tags=[{"Key": "team", "Value": "red"}])
    with client_error("AccessDeniedException"):
        kms_user.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    with client_error("AccessDeniedException"):
        kms_user.generate_data_key(KeyId=key["Arn"], KeySpec="AES_256", EncryptionContext={"team": "blue"})
    assert kms_user.generate_data_key(KeyId=key["Arn"], KeySpec="AES_256", EncryptionContext={"team": "red"})
    iam.tag_user(UserName=name, Tags=[{"Key": "team", "Value": "blue"}])
    assert kms_user.encrypt(KeyId=key["Arn"], Plaintext=b"x")["KeyId"] == key["Arn"]
    assert kms_user.generate_data_key(KeyId=key["Arn"], KeySpec="AES_256", EncryptionContext={"team": "blue"})
    iam.untag_user(UserName=name, TagKeys=["team"])
    with client_error("AccessDeniedException"):
        kms_user.encrypt(KeyId=key["Arn"], Plaintext=b"x")


def test_role_sessions_carry_the_role_tags(iam, endpoint, key):
    name = unique("rtuser")
    iam.create_user(UserName=name)
    access = iam.create_access_key(UserName=name)["AccessKey"]
    user_arn = f"arn:aws:iam::{ACCT}:user/{name}"
    role = unique("rtrole")
    role_arn = iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"}],
            }
        ),
    )["Role"]["Arn"]
    iam.put_user_policy(UserName=name, PolicyName="assume", PolicyDocument=doc(allow("sts:AssumeRole", role_arn)))
    iam.put_role_policy(
        RoleName=role,
        PolicyName="by-tag",
        PolicyDocument=doc(
            allow("kms:Encrypt", key["Arn"], Condition={"StringEquals": {"aws:PrincipalTag/env": "prod"}})
        ),
    )
    sts_user = session_client(endpoint, "sts", access["AccessKeyId"], access["SecretAccessKey"])
    creds = sts_user.assume_role(RoleArn=role_arn, RoleSessionName="tagged")["Credentials"]
    kms_session = session_client(endpoint, "kms", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    with client_error("AccessDeniedException"):
        kms_session.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    iam.tag_role(RoleName=role, Tags=[{"Key": "env", "Value": "prod"}])
    assert kms_session.encrypt(KeyId=key["Arn"], Plaintext=b"x")["KeyId"] == key["Arn"]


def test_managed_and_tag_calls_are_recorded(iam, cloudtrail_b):
    name = unique("audit")
    iam.create_user(UserName=name)
    arn = iam.create_policy(PolicyName=unique("auditp"), PolicyDocument=doc(allow("kms:Encrypt")))["Policy"]["Arn"]
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    iam.tag_user(UserName=name, Tags=[{"Key": "a", "Value": "b"}])
    with client_error("NoSuchEntity", 404):
        iam.get_policy(PolicyArn=arn + "-missing")
    events = lookup_events(cloudtrail_b, ("EventSource", "iam.amazonaws.com"))
    recorded = {}
    for e in events:
        body = json.loads(e["CloudTrailEvent"])
        params = body.get("requestParameters") or {}
        if name in json.dumps(params) or arn in json.dumps(params):
            recorded.setdefault(e["EventName"], []).append(body)
    for event_name in ("CreateUser", "AttachUserPolicy", "TagUser", "GetPolicy"):
        assert event_name in recorded, (event_name, sorted(recorded))
    attach = recorded["AttachUserPolicy"][0]
    assert attach["requestParameters"] == {"userName": name, "policyArn": arn}
    assert attach["readOnly"] is False and attach["awsRegion"] == "us-east-1"
    failed = recorded["GetPolicy"][0]
    assert failed["errorCode"] == "NoSuchEntity" and failed["readOnly"] is True


def test_create_user_and_role_with_tags(iam):
    name = unique("born-tagged")
    user = iam.create_user(UserName=name, Tags=[{"Key": "team", "Value": "blue"}])["User"]
    assert user["Tags"] == [{"Key": "team", "Value": "blue"}]
    assert iam.list_user_tags(UserName=name)["Tags"] == [{"Key": "team", "Value": "blue"}]
    # Refused tags leave nothing behind.
    bad = unique("bad-tags")
    with client_error("ValidationError"):
        iam.create_user(UserName=bad, Tags=[{"Key": "k" * 129, "Value": "v"}])
    with client_error("NoSuchEntity", 404):
        iam.get_user(UserName=bad)
    role = unique("born-tagged-role")
    created = iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
        Tags=[{"Key": "env", "Value": "dev"}],
    )["Role"]
    assert created["Tags"] == [{"Key": "env", "Value": "dev"}]
    assert iam.get_role(RoleName=role)["Role"]["Tags"] == [{"Key": "env", "Value": "dev"}]
    iam.delete_role(RoleName=role)
    iam.delete_user(UserName=name)
