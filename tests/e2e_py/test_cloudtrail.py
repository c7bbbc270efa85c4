"""CloudTrail LookupEvents over the audit records of KMS calls, through boto3."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from e2e_support import (
    ACCOUNT_A,
    ACCOUNT_B,
    UUID_RE,
    b64,
    by_request_id,
    client_error,
    event_json,
    lookup_events,
    unique,
    utcnow,
    wait_for_events,
)


class Calls:
    """The KMS calls made by account a in `audited`, with what they returned."""


@pytest.fixture(scope="module")
def audited(kms, cloudtrail):
    c = Calls()
    c.started = utcnow() - dt.timedelta(seconds=5)
    create = kms.create_key(Description="cloudtrail e2e")
    c.key = create["KeyMetadata"]
    c.create_rid = create["ResponseMetadata"]["RequestId"]
    c.alias = unique("alias/e2e-ct")
    kms.create_alias(AliasName=c.alias, TargetKeyId=c.key["KeyId"])
    c.plaintext = b"super secret plaintext for the audit test"
    c.context = {"app": "cloudtrail-e2e"}
    enc = kms.encrypt(KeyId=c.key["KeyId"], Plaintext=c.plaintext, EncryptionContext=c.context)
    c.encrypt_rid = enc["ResponseMetadata"]["RequestId"]
    c.blob = enc["CiphertextBlob"]
    dec = kms.decrypt(CiphertextBlob=c.blob, EncryptionContext=c.context)
    c.decrypt_rid = dec["ResponseMetadata"]["RequestId"]
    gdk = kms.generate_data_key(KeyId=c.alias, KeySpec="AES_256")
    c.gdk_rid = gdk["ResponseMetadata"]["RequestId"]
    c.data_key = gdk["Plaintext"]
    c.data_key_blob = gdk["CiphertextBlob"]
    c.describe_rid = kms.describe_key(KeyId=c.key["Arn"])["ResponseMetadata"]["RequestId"]
    c.disable_rid = kms.disable_key(KeyId=c.key["KeyId"])["ResponseMetadata"]["RequestId"]
    with client_error("DisabledException") as err:
        kms.encrypt(KeyId=c.key["KeyId"], Plaintext=c.plaintext)
    c.failed_rid = err["error"].response["ResponseMetadata"]["RequestId"]
    c.failed_message = err["error"].response["Error"]["Message"]
    c.enable_rid = kms.enable_key(KeyId=c.key["KeyId"])["ResponseMetadata"]["RequestId"]
    c.rids = [c.create_rid, c.encrypt_rid, c.decrypt_rid, c.gdk_rid, c.describe_rid, c.disable_rid, c.failed_rid, c.enable_rid]

    def all_there(events):
        seen = {event_json(e).get("requestID") for e in events}
        return all(r in seen for r in c.rids)

    c.events = wait_for_events(cloudtrail, ("ResourceName", c.key["Arn"]), all_there)
    return c


def _event(c: Calls, rid: str) -> dict:
    e = by_request_id(c.events, rid)
    assert e is not None, f"no event with requestID {rid} among {len(c.events)} events of {c.key['Arn']}"
    return e


def test_all_calls_on_the_key_are_recorded(audited):
    names = {event_json(e)["requestID"]: e["EventName"] for e in audited.events}
    expected = {
        audited.create_rid: "CreateKey",
        audited.encrypt_rid: "Encrypt",
        audited.decrypt_rid: "Decrypt",
        audited.gdk_rid: "GenerateDataKey",
        audited.describe_rid: "DescribeKey",
        audited.disable_rid: "DisableKey",
        audited.failed_rid: "Encrypt",
        audited.enable_rid: "EnableKey",
    }
    assert {rid: names.get(rid) for rid in expected} == expected


def test_event_summary_fields(audited):
    e = _event(audited, audited.encrypt_rid)
    assert e["EventName"] == "Encrypt"
    assert e["EventSource"] == "kms.amazonaws.com"
    assert e["ReadOnly"] == "true"
    assert e["Username"] == "root"
    assert e["AccessKeyId"] == ACCOUNT_A.access_key
    assert UUID_RE.match(e["EventId"]), e["EventId"]
    assert isinstance(e["EventTime"], dt.datetime)
    assert audited.started - dt.timedelta(seconds=2) <= e["EventTime"] <= utcnow() + dt.timedelta(seconds=2)
    assert {"ResourceType": "AWS::KMS::Key", "ResourceName": audited.key["Arn"]} in e["Resources"]


def test_cloudtrail_event_json(audited):
    e = _event(audited, audited.encrypt_rid)
    ev = event_json(e)
    assert re.fullmatch(r"1\.\d{2}", ev["eventVersion"]), ev["eventVersion"]
    ui = ev["userIdentity"]
    assert ui["type"] == "Root"
    assert ui["accountId"] == ACCOUNT_A.account_id
    assert ui["arn"] == ACCOUNT_A.root_arn
    assert ui["accessKeyId"] == ACCOUNT_A.access_key
    assert ui.get("principalId") == ACCOUNT_A.account_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ev["eventTime"]), ev["eventTime"]
    event_time = dt.datetime.strptime(ev["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    assert event_time == e["EventTime"].replace(microsecond=0)
    assert ev["eventSource"] == "kms.amazonaws.com"
    assert ev["eventName"] == "Encrypt"
    assert ev["awsRegion"] == "us-east-1"
    assert ev["sourceIPAddress"] == "127.0.0.1"
    assert ev["requestParameters"]["keyId"] == audited.key["KeyId"]
    assert ev["requestID"] == audited.encrypt_rid
    assert ev["eventID"] == e["EventId"]
    assert ev["readOnly"] is True
    assert {"accountId": ACCOUNT_A.account_id, "type": "AWS::KMS::Key", "ARN": audited.key["Arn"]} in ev["resources"]
    assert ev["eventType"] == "AwsApiCall"
    assert ev["recipientAccountId"] == ACCOUNT_A.account_id
    assert "errorCode" not in ev


def test_encryption_context_is_recorded(audited):
    ev = event_json(_event(audited, audited.encrypt_rid))
    assert ev["requestParameters"]["encryptionContext"] == audited.context


def test_management_event_fields_and_user_agent(audited):
    ev = event_json(_event(audited, audited.encrypt_rid))
    assert ev["managementEvent"] is True
    assert ev["eventCategory"] == "Management"
    assert "botocore" in ev["userAgent"].lower()


def test_no_plaintext_or_ciphertext_in_events(audited):
    secrets = {
        "plaintext b64": b64(audited.plaintext),
        "plaintext": audited.plaintext.decode(),
        "ciphertext b64": b64(audited.blob),
        "data key b64": b64(audited.data_key),
        "data key blob b64": b64(audited.data_key_blob),
    }
    assert audited.events
    for e in audited.events:
        text = json.dumps(e, default=str)
        for what, value in secrets.items():
            assert value not in text, f"{what} appears in the {e['EventName']} event"
    # Decrypt and GenerateDataKey responses carry no plaintext either.
    for rid in (audited.decrypt_rid, audited.gdk_rid):
        ev = event_json(_event(audited, rid))
        assert "plaintext" not in json.dumps(ev.get("responseElements") or {}).lower()


@pytest.mark.parametrize(
    "attr,name,read_only",
    [
        ("create_rid", "CreateKey", False),
        ("encrypt_rid", "Encrypt", True),
        ("decrypt_rid", "Decrypt", True),
        ("gdk_rid", "GenerateDataKey", True),
        ("describe_rid", "DescribeKey", True),
        ("disable_rid", "DisableKey", False),
        ("enable_rid", "EnableKey", False),
    ],
)
def test_read_only_flag(audited, attr, name, read_only):
    e = _event(audited, getattr(audited, attr))
    assert e["EventName"] == name
    assert e["ReadOnly"] == ("true" if read_only else "false")
    assert event_json(e)["readOnly"] is read_only


def test_decrypt_without_key_id_names_the_key(audited):
    e = _event(audited, audited.decrypt_rid)
    assert {"ResourceType": "AWS::KMS::Key", "ResourceName": audited.key["Arn"]} in e["Resources"]


def test_generate_data_key_via_alias_names_the_key(audited):
    e = _event(audited, audited.gdk_rid)
    assert {"ResourceType": "AWS::KMS::Key", "ResourceName": audited.key["Arn"]} in e["Resources"]
    assert event_json(e)["requestParameters"]["keyId"] == audited.alias


def test_failed_call_is_recorded_with_error_code(audited):
    e = _event(audited, audited.failed_rid)
    ev = event_json(e)
    assert e["EventName"] == "Encrypt"
    assert ev["errorCode"] == "DisabledException"
    assert ev["errorMessage"] == audited.failed_message
    assert ev["requestID"] == audited.failed_rid
    assert ev.get("responseElements") is None
    assert {"ResourceType": "AWS::KMS::Key", "ResourceName": audited.key["Arn"]} in e["Resources"]


def test_create_key_event(audited):
    e = _event(audited, audited.create_rid)
    ev = event_json(e)
    assert ev["eventName"] == "CreateKey"
    assert ev["readOnly"] is False
    assert ev["requestParameters"].get("description") == "cloudtrail e2e"
    assert ev["responseElements"]["keyMetadata"]["keyId"] == audited.key["KeyId"]


def test_create_key_response_elements_as_cloudtrail_writes_them(audited):
    """CloudTrail's CreateKey records (KMS developer guide, "CreateKey" log
    example): keyMetadata with creationDate written like "Aug 10, 2022, 10:38:27 PM"."""
    md = event_json(_event(audited, audited.create_rid))["responseElements"]["keyMetadata"]
    assert md["keyId"] == audited.key["KeyId"]
    assert md["arn"] == audited.key["Arn"]
    created = audited.key["CreationDate"].astimezone(dt.timezone.utc)
    expected = f"{created:%b} {created.day}, {created:%Y}, {created.hour % 12 or 12}:{created:%M:%S %p}"
    assert md["creationDate"] == expected


def test_lookup_by_event_name(audited, cloudtrail):
    events = wait_for_events(
        cloudtrail, ("EventName", "Decrypt"), lambda evs: by_request_id(evs, audited.decrypt_rid) is not None
    )
    assert events
    assert {e["EventName"] for e in events} == {"Decrypt"}
    assert by_request_id(events, audited.decrypt_rid) is not None
    assert by_request_id(events, audited.encrypt_rid) is None


def test_lookup_by_resource_name(audited, cloudtrail):
    events = lookup_events(cloudtrail, ("ResourceName", audited.key["Arn"]))
    assert len(events) >= len(audited.rids)
    for e in events:
        assert audited.key["Arn"] in {r["ResourceName"] for r in e["Resources"]}, e["EventName"]


def test_lookup_by_event_id(audited, cloudtrail):
    e = _event(audited, audited.encrypt_rid)
    found = lookup_events(cloudtrail, ("EventId", e["EventId"]))
    assert [x["EventId"] for x in found] == [e["EventId"]]


@pytest.mark.parametrize(
    "attribute,value,field",
    [
        ("EventSource", "kms.amazonaws.com", "EventSource"),
        ("ReadOnly", "false", "ReadOnly"),
        ("Username", "root", "Username"),
        ("AccessKeyId", ACCOUNT_A.access_key, "AccessKeyId"),
        ("ResourceType", "AWS::KMS::Key", None),
    ],
)
def test_lookup_by_other_attributes(audited, cloudtrail, attribute, value, field):
    events = lookup_events(cloudtrail, (attribute, value), StartTime=audited.started)
    assert events
    for e in events:
        if field:
            assert e[field] == value
        else:
            assert value in {r["ResourceType"] for r in e["Resources"]}
    wanted = audited.disable_rid if attribute == "ReadOnly" else audited.encrypt_rid
    assert by_request_id(events, wanted) is not None


def test_invalid_next_token(cloudtrail):
    with client_error("InvalidNextTokenException"):
        cloudtrail.lookup_events(NextToken="not-a-token-this-service-issued")


def test_events_newest_first(audited):
    times = [e["EventTime"] for e in audited.events]
    assert times == sorted(times, reverse=True)


def test_pagination_max_results_next_token(audited, cloudtrail):
    attr = [{"AttributeKey": "ResourceName", "AttributeValue": audited.key["Arn"]}]
    full = cloudtrail.lookup_events(LookupAttributes=attr, MaxResults=50)
    assert "NextToken" not in full
    expected = [e["EventId"] for e in full["Events"]]
    assert len(expected) >= 8

    pages, token = [], None
    for _ in range(50):
        kwargs = {"LookupAttributes": attr, "MaxResults": 3}
        if token:
            kwargs["NextToken"] = token
        resp = cloudtrail.lookup_events(**kwargs)
        assert len(resp["Events"]) <= 3
        pages.append([e["EventId"] for e in resp["Events"]])
        token = resp.get("NextToken")
        if not token:
            break
    assert len(pages) >= 3
    assert all(len(p) == 3 for p in pages[:-1])
    got = [i for p in pages for i in p]
    assert got == expected


def test_time_range(audited, cloudtrail):
    attr = ("ResourceName", audited.key["Arn"])
    assert lookup_events(cloudtrail, attr, EndTime=audited.started - dt.timedelta(hours=1)) == []
    within = lookup_events(
        cloudtrail, attr, StartTime=audited.started - dt.timedelta(minutes=1), EndTime=utcnow() + dt.timedelta(minutes=1)
    )
    assert {e["EventId"] for e in within} == {e["EventId"] for e in audited.events}


def test_start_after_end_is_rejected(cloudtrail):
    now = utcnow()
    with client_error("InvalidTimeRangeException"):
        cloudtrail.lookup_events(StartTime=now, EndTime=now - dt.timedelta(hours=1))


def test_default_page_size_is_50(kms, cloudtrail):
    key = kms.create_key(Description="cloudtrail page size")["KeyMetadata"]
    for _ in range(51):
        kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], KeySpec="AES_128")
    attr = [{"AttributeKey": "ResourceName", "AttributeValue": key["Arn"]}]
    wait_for_events(cloudtrail, ("ResourceName", key["Arn"]), lambda evs: len(evs) >= 52)
    first = cloudtrail.lookup_events(LookupAttributes=attr)
    assert len(first["Events"]) == 50
    assert first["NextToken"]
    rest = cloudtrail.lookup_events(LookupAttributes=attr, NextToken=first["NextToken"])
    assert len(rest["Events"]) == 2
    assert "NextToken" not in rest


def test_more_than_one_lookup_attribute_is_rejected(cloudtrail):
    with client_error("InvalidLookupAttributesException"):
        cloudtrail.lookup_events(
            LookupAttributes=[
                {"AttributeKey": "EventName", "AttributeValue": "Encrypt"},
                {"AttributeKey": "EventName", "AttributeValue": "Decrypt"},
            ]
        )


def test_other_account_does_not_see_the_events(audited, cloudtrail_b, kms_b):
    assert lookup_events(cloudtrail_b, ("ResourceName", audited.key["Arn"])) == []
    assert lookup_events(cloudtrail_b, ("EventId", _event(audited, audited.encrypt_rid)["EventId"])) == []
    b_events = lookup_events(cloudtrail_b, ("EventName", "Encrypt"))
    for e in b_events:
        ev = event_json(e)
        assert ev["recipientAccountId"] == ACCOUNT_B.account_id
        assert ev["requestID"] not in audited.rids
    # Account b sees its own calls, as its own root user.
    b_key = kms_b.create_key(Description="b audited")
    rid = b_key["ResponseMetadata"]["RequestId"]
    events = wait_for_events(
        cloudtrail_b,
        ("ResourceName", b_key["KeyMetadata"]["Arn"]),
        lambda evs: by_request_id(evs, rid) is not None,
    )
    e = by_request_id(events, rid)
    assert e is not None
    assert e["AccessKeyId"] == ACCOUNT_B.access_key
    ev = event_json(e)
    assert ev["userIdentity"]["accountId"] == ACCOUNT_B.account_id
    assert ev["userIdentity"]["arn"] == ACCOUNT_B.root_arn
    assert ev["recipientAccountId"] == ACCOUNT_B.account_id


def test_cross_account_denial_is_recorded_for_the_caller(audited, kms_b, cloudtrail_b):
    with client_error("AccessDeniedException") as err:
        kms_b.encrypt(KeyId=audited.key["Arn"], Plaintext=b"x")
    rid = err["error"].response["ResponseMetadata"]["RequestId"]
    events = wait_for_events(cloudtrail_b, ("EventName", "Encrypt"), lambda evs: by_request_id(evs, rid) is not None)
    e = by_request_id(events, rid)
    assert e is not None, "account b's denied call is not in account b's trail"
    ev = event_json(e)
    assert ev["errorCode"] == "AccessDeniedException"
    assert ev["userIdentity"]["accountId"] == ACCOUNT_B.account_id
