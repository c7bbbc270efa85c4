"""IAM's policy simulator (SimulatePrincipalPolicy, SimulateCustomPolicy) with boto3 and the aws
CLI. The acceptance rule: the simulation says what the real KMS call with the user's
credentials does, for several (policy, action, resource) cases."""

from __future__ import annotations

import json

import pytest

from e2e_support import ACCOUNT_B, REGION, client_error, lookup_events, retry_config, unique

ACCT = ACCOUNT_B.account_id


def session_client(endpoint: str, service: str, access_key: str, secret_key: str):
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=REGION
    )
    return session.client(service, endpoint_url=endpoint, region_name=REGION, config=retry_config())


def doc(*statements: dict, indent: int | None = None) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=indent)


@pytest.fixture(scope="module")
def iam(client):
    return client("iam", "b")


@pytest.fixture
def key(kms_b):
    return kms_b.create_key(Description="e2e iam simulate")["KeyMetadata"]


def real_call(kms, action: str, key_arn: str) -> str:
    """Make the KMS call; 'allowed', 'explicitDeny' or 'implicitDeny' from its outcome."""
    from botocore.exceptions import ClientError

    calls = {
        "kms:Encrypt": lambda: kms.encrypt(KeyId=key_arn, Plaintext=b"x"),
        "kms:GenerateDataKey": lambda: kms.generate_data_key(KeyId=key_arn, KeySpec="AES_256"),
        "kms:DescribeKey": lambda: kms.describe_key(KeyId=key_arn),
        "kms:GetKeyPolicy": lambda: kms.get_key_policy(KeyId=key_arn, PolicyName="default"),
        "kms:GenerateRandom": lambda: kms.generate_random(NumberOfBytes=16),
    }
    try:
        calls[action]()
        return "allowed"
    except ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDeniedException", e.response
        message = e.response["Error"]["Message"]
        return "explicitDeny" if "with an explicit deny" in message else "implicitDeny"


def test_simulation_matches_the_real_calls(iam, endpoint, key):
    name = unique("sim")
    iam.create_user(UserName=name)
    access = iam.create_access_key(UserName=name)["AccessKey"]
    kms_user = session_client(endpoint, "kms", access["AccessKeyId"], access["SecretAccessKey"])
    user_arn = f"arn:aws:iam::{ACCT}:user/{name}"
    inline = doc(
        {"Sid": "Use", "Effect": "Allow", "Action": ["kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"], "Resource": key["Arn"]},
        {"Sid": "NoDataKeys", "Effect": "Deny", "Action": "kms:GenerateDataKey", "Resource": "*"},
        indent=2,
    )
    iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=inline)
    managed = iam.create_policy(
        PolicyName=unique("simmp"),
        PolicyDocument=doc(
            {"Effect": "Allow", "Action": "kms:GetKeyPolicy", "Resource": key["Arn"],
             "Condition": {"StringEquals": {"aws:PrincipalTag/team": "blue"}}}
        ),
    )["Policy"]
    iam.attach_user_policy(UserName=name, PolicyArn=managed["Arn"])

    actions = ["kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:GetKeyPolicy", "kms:GenerateRandom"]

    def compare(expected: dict[str, str]):
        results = iam.simulate_principal_policy(
            PolicySourceArn=user_arn, ActionNames=actions, ResourceArns=[key["Arn"]]
        )["EvaluationResults"]
        simulated = {r["EvalActionName"]: r["EvalDecision"] for r in results}
        real = {a: real_call(kms_user, a, key["Arn"]) for a in actions}
        assert simulated == real == expected, (simulated, real)
        return {r["EvalActionName"]: r for r in results}

    by_action = compare(
        {
            "kms:Encrypt": "allowed",
            "kms:GenerateDataKey": "explicitDeny",
            "kms:DescribeKey": "allowed",
            "kms:GetKeyPolicy": "implicitDeny",
            "kms:GenerateRandom": "implicitDeny",
        }
    )
    enc = by_action["kms:Encrypt"]
    assert enc["EvalResourceName"] == key["Arn"]
    # The allowing statement: the inline policy's first statement, where it is in the text.
    lines = inline.splitlines()
    start_line = next(i for i, l in enumerate(lines, 1) if '"Sid": "Use"' in l) - 1
    assert enc["MatchedStatements"] == [
        {
            "SourcePolicyId": "inline",
            "SourcePolicyType": "user",
            "StartPosition": {"Line": start_line, "Column": lines[start_line - 1].index("{") + 1},
            "EndPosition": enc["MatchedStatements"][0]["EndPosition"],
        }
    ]
    end = enc["MatchedStatements"][0]["EndPosition"]
    assert end["Line"] > start_line and lines[end["Line"] - 1][end["Column"] - 2] == "}"
    deny = by_action["kms:GenerateDataKey"]["MatchedStatements"]
    assert [(s["SourcePolicyId"], s["SourcePolicyType"]) for s in deny] == [("inline", "user")]
    assert deny[0]["StartPosition"]["Line"] > start_line
    assert by_action["kms:GetKeyPolicy"]["MatchedStatements"] == []
    assert by_action["kms:Encrypt"]["ResourceSpecificResults"][0]["EvalResourceDecision"] == "allowed"

    # The user's stored tags take part, as in the real call.
    iam.tag_user(UserName=name, Tags=[{"Key": "team", "Value": "blue"}])
    by_action = compare(
        {
            "kms:Encrypt": "allowed",
            "kms:GenerateDataKey": "explicitDeny",
            "kms:DescribeKey": "allowed",
            "kms:GetKeyPolicy": "allowed",
            "kms:GenerateRandom": "implicitDeny",
        }
    )
    matched = by_action["kms:GetKeyPolicy"]["MatchedStatements"]
    assert [(s["SourcePolicyId"], s["SourcePolicyType"]) for s in matched] == [
        (managed["PolicyName"], "user-managed")
    ]
    assert matched[0]["StartPosition"]["Line"] == 1

    # Detached and untagged: the simulation follows again.
    iam.detach_user_policy(UserName=name, PolicyArn=managed["Arn"])
    iam.delete_user_policy(UserName=name, PolicyName="inline")
    compare({a: "implicitDeny" for a in actions})


def test_custom_policy_context_entries_and_missing_values(iam, aws):
    policy = doc(
        {
            "Effect": "Allow",
            "Action": "kms:Encrypt",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:EncryptionContext:Team": "blue"}},
        }
    )
    out = iam.simulate_custom_policy(PolicyInputList=[policy], ActionNames=["kms:Encrypt"])
    (r,) = out["EvaluationResults"]
    assert (r["EvalDecision"], r["EvalResourceName"]) == ("implicitDeny", "*")
    assert r["MissingContextValues"] == ["kms:EncryptionContext:Team"]
    out = iam.simulate_custom_policy(
        PolicyInputList=[policy],
        ActionNames=["kms:Encrypt"],
        ContextEntries=[
            {"ContextKeyName": "kms:EncryptionContext:Team", "ContextKeyValues": ["blue"], "ContextKeyType": "string"}
        ],
    )
    (r,) = out["EvaluationResults"]
    assert r["EvalDecision"] == "allowed" and r["MissingContextValues"] == []
    # With resources listed, missing values are reported per resource.
    listed_out = iam.simulate_custom_policy(
        PolicyInputList=[policy], ActionNames=["kms:Encrypt"], ResourceArns=[f"arn:aws:kms:{REGION}:{ACCT}:key/k1"]
    )
    (listed,) = listed_out["EvaluationResults"]
    assert listed["EvalDecision"] == "implicitDeny" and listed["MissingContextValues"] == []
    (specific,) = listed["ResourceSpecificResults"]
    assert specific["EvalResourceName"] == f"arn:aws:kms:{REGION}:{ACCT}:key/k1"
    assert specific["MissingContextValues"] == ["kms:EncryptionContext:Team"]
    assert [(s["SourcePolicyId"], s["SourcePolicyType"]) for s in r["MatchedStatements"]] == [
        ("PolicyInputList.1", "none")
    ]
    # The aws CLI, with a value that does not match.
    cli = aws.json(
        "iam",
        "simulate-custom-policy",
        "--policy-input-list",
        policy,
        "--action-names",
        "kms:Encrypt",
        "--context-entries",
        json.dumps(
            [{"ContextKeyName": "kms:EncryptionContext:Team", "ContextKeyValues": ["red"], "ContextKeyType": "string"}]
        ),
        account="b",
    )
    assert [r["EvalDecision"] for r in cli["EvaluationResults"]] == ["implicitDeny"]
    with client_error("ValidationError"):
        iam.simulate_custom_policy(
            PolicyInputList=[policy],
            ActionNames=["kms:Encrypt"],
            ContextEntries=[{"ContextKeyName": "kms:Foo", "ContextKeyValues": ["x"], "ContextKeyType": "colour"}],
        )
    with client_error("InvalidInput"):
        iam.simulate_custom_policy(PolicyInputList=["{not json"], ActionNames=["kms:Encrypt"])


def test_resource_policy_boundaries_and_pagination(iam):
    allow_all = doc({"Effect": "Allow", "Action": "kms:*", "Resource": "*"})
    caller = f"arn:aws:iam::{ACCT}:user/someone"
    resource_policy = doc(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": {"AWS": caller}, "Action": "kms:Decrypt", "Resource": "*"},
    )
    key_arn = f"arn:aws:kms:{REGION}:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    out = iam.simulate_custom_policy(
        PolicyInputList=[allow_all],
        ActionNames=["kms:Encrypt", "kms:Decrypt"],
        ResourceArns=[key_arn],
        ResourcePolicy=resource_policy,
        CallerArn=caller,
    )
    got = {r["EvalActionName"]: r for r in out["EvaluationResults"]}
    assert got["kms:Encrypt"]["EvalDecision"] == "allowed"
    assert got["kms:Decrypt"]["EvalDecision"] == "explicitDeny"
    assert [s["SourcePolicyType"] for s in got["kms:Decrypt"]["MatchedStatements"]] == ["resource"]

    boundary = doc({"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"})
    out = iam.simulate_custom_policy(
        PolicyInputList=[allow_all],
        PermissionsBoundaryPolicyInputList=[boundary],
        ActionNames=["kms:Encrypt", "kms:Sign"],
    )
    got = {r["EvalActionName"]: r for r in out["EvaluationResults"]}
    assert got["kms:Encrypt"]["EvalDecision"] == "allowed"
    assert got["kms:Encrypt"]["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": True}
    assert got["kms:Sign"]["EvalDecision"] == "implicitDeny"
    assert got["kms:Sign"]["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": False}

    actions = ["kms:Encrypt", "kms:Decrypt", "kms:Sign"]
    first = iam.simulate_custom_policy(PolicyInputList=[allow_all], ActionNames=actions, MaxItems=2)
    assert [r["EvalActionName"] for r in first["EvaluationResults"]] == actions[:2]
    assert first["IsTruncated"] is True
    second = iam.simulate_custom_policy(
        PolicyInputList=[allow_all], ActionNames=actions, MaxItems=2, Marker=first["Marker"]
    )
    assert [r["EvalActionName"] for r in second["EvaluationResults"]] == actions[2:]
    assert second["IsTruncated"] is False
    paged = [
        r["EvalActionName"]
        for page in iam.get_paginator("simulate_custom_policy").paginate(
            PolicyInputList=[allow_all], ActionNames=actions, PaginationConfig={"PageSize": 1}
        )
        for r in page["EvaluationResults"]
    ]
    assert paged == actions


def test_principal_simulation_of_a_role_errors_and_audit(iam, cloudtrail_b):
    role = unique("simrole")
    role_arn = iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=role,
        PolicyName="rp",
        PolicyDocument=doc({"Effect": "Allow", "Action": "kms:Sign", "Resource": "*"}),
    )
    out = iam.simulate_principal_policy(
        PolicySourceArn=role_arn,
        ActionNames=["kms:Sign", "kms:Verify"],
        PolicyInputList=[doc({"Effect": "Allow", "Action": "kms:Verify", "Resource": "*"})],
    )
    got = {r["EvalActionName"]: r for r in out["EvaluationResults"]}
    assert got["kms:Sign"]["EvalDecision"] == "allowed"
    assert got["kms:Sign"]["MatchedStatements"][0]["SourcePolicyId"] == "rp"
    assert got["kms:Sign"]["MatchedStatements"][0]["SourcePolicyType"] == "role"
    assert got["kms:Verify"]["EvalDecision"] == "allowed"
    assert got["kms:Verify"]["MatchedStatements"][0]["SourcePolicyId"] == "PolicyInputList.1"

    with client_error("NoSuchEntity", 404):
        iam.simulate_principal_policy(
            PolicySourceArn=f"arn:aws:iam::{ACCT}:user/{unique('ghost')}", ActionNames=["kms:Sign"]
        )
    events = lookup_events(cloudtrail_b, ("EventName", "SimulatePrincipalPolicy"))
    mine = [json.loads(e["CloudTrailEvent"]) for e in events]
    mine = [e for e in mine if (e.get("requestParameters") or {}).get("policySourceArn") == role_arn]
    assert mine and mine[0]["readOnly"] is True and mine[0]["eventSource"] == "iam.amazonaws.com"
