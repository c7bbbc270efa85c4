"""The aws CLI (v1, from PyPI) against the stack: the commands a user types."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from e2e_support import ACCOUNT_A, UUID_RE, event_json, unique


@pytest.fixture(scope="module")
def cli_key(aws):
    md = aws.json("kms", "create-key", "--description", "created by the aws cli")["KeyMetadata"]
    return md


def test_create_key(cli_key):
    assert UUID_RE.match(cli_key["KeyId"])
    assert cli_key["Arn"] == f"arn:aws:kms:us-east-1:{ACCOUNT_A.account_id}:key/{cli_key['KeyId']}"
    assert cli_key["KeyState"] == "Enabled"
    assert cli_key["Enabled"] is True
    assert cli_key["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert cli_key["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert cli_key["Origin"] == "AWS_KMS"
    assert cli_key["KeyManager"] == "CUSTOMER"
    assert cli_key["Description"] == "created by the aws cli"


def test_describe_key(aws, cli_key):
    md = aws.json("kms", "describe-key", "--key-id", cli_key["Arn"])["KeyMetadata"]
    assert md["KeyId"] == cli_key["KeyId"]
    assert md["Description"] == "created by the aws cli"


def test_list_keys(aws, cli_key):
    keys = aws.json("kms", "list-keys")["Keys"]
    assert {"KeyId": cli_key["KeyId"], "KeyArn": cli_key["Arn"]} in keys


def test_list_keys_text_output(aws, cli_key):
    ids = aws.text("kms", "list-keys", "--query", "Keys[].KeyId").split()
    assert cli_key["KeyId"] in ids


def test_create_alias_and_describe_by_alias(aws, cli_key):
    alias = unique("alias/e2e-cli")
    out = aws.run("kms", "create-alias", "--alias-name", alias, "--target-key-id", cli_key["KeyId"])
    assert out.stdout.strip() == ""
    md = aws.json("kms", "describe-key", "--key-id", alias)["KeyMetadata"]
    assert md["KeyId"] == cli_key["KeyId"]
    aliases = aws.json("kms", "list-aliases", "--key-id", cli_key["KeyId"])["Aliases"]
    assert alias in [a["AliasName"] for a in aliases]


def test_encrypt_decrypt_with_files(aws, cli_key, tmp_path):
    plaintext = b"secret bytes from a file \x00\x01\x02\xfe\xff"
    pt_file = tmp_path / "plaintext.bin"
    pt_file.write_bytes(plaintext)
    ct_b64 = aws.text(
        "kms", "encrypt",
        "--key-id", cli_key["KeyId"],
        "--plaintext", f"fileb://{pt_file}",
        "--encryption-context", "purpose=cli-test",
        "--query", "CiphertextBlob",
    )
    ct_file = tmp_path / "ciphertext.bin"
    ct_file.write_bytes(base64.b64decode(ct_b64))

    out_b64 = aws.text(
        "kms", "decrypt",
        "--ciphertext-blob", f"fileb://{ct_file}",
        "--encryption-context", "purpose=cli-test",
        "--query", "Plaintext",
    )
    assert base64.b64decode(out_b64) == plaintext

    dec = aws.json("kms", "decrypt", "--ciphertext-blob", f"fileb://{ct_file}", "--encryption-context", "purpose=cli-test")
    assert dec["KeyId"] == cli_key["Arn"]


def test_generate_data_key_and_random(aws, cli_key):
    gdk = aws.json("kms", "generate-data-key", "--key-id", cli_key["KeyId"], "--key-spec", "AES_256")
    assert len(base64.b64decode(gdk["Plaintext"])) == 32
    rnd = aws.json("kms", "generate-random", "--number-of-bytes", "16")
    assert len(base64.b64decode(rnd["Plaintext"])) == 16


def test_cli_reports_service_errors(aws):
    proc = aws.run("kms", "describe-key", "--key-id", str(uuid.uuid4()), check=False)
    assert proc.returncode != 0
    assert "NotFoundException" in proc.stderr


def test_cloudtrail_lookup_events_shows_the_calls(aws, cli_key, tmp_path):
    pt_file = tmp_path / "p.bin"
    pt_file.write_bytes(b"audited by the cli test")
    enc = aws.json("kms", "encrypt", "--key-id", cli_key["KeyId"], "--plaintext", f"fileb://{pt_file}")
    events = aws.json(
        "cloudtrail", "lookup-events", "--lookup-attributes", "AttributeKey=EventName,AttributeValue=Encrypt"
    )["Events"]
    assert events, "no Encrypt events"
    assert {e["EventName"] for e in events} == {"Encrypt"}
    mine = [e for e in events if cli_key["Arn"] in {r["ResourceName"] for r in e.get("Resources", [])}]
    assert mine, "the CLI's Encrypt calls are not in the trail"
    for e in mine:
        assert e["EventSource"] == "kms.amazonaws.com"
        assert e["Username"] == "root"
        assert e["AccessKeyId"] == ACCOUNT_A.access_key
        ev = json.loads(e["CloudTrailEvent"]) if isinstance(e["CloudTrailEvent"], str) else e["CloudTrailEvent"]
        assert ev["eventName"] == "Encrypt"
        assert "aws-cli" in ev.get("userAgent", "")
        assert enc["CiphertextBlob"] not in e["CloudTrailEvent"]
        assert base64.b64encode(b"audited by the cli test").decode() not in e["CloudTrailEvent"]
    by_resource = aws.json(
        "cloudtrail", "lookup-events",
        "--lookup-attributes", f"AttributeKey=ResourceName,AttributeValue={cli_key['Arn']}",
    )["Events"]
    names = {e["EventName"] for e in by_resource}
    assert {"CreateKey", "Encrypt"} <= names
    assert {event_json(e)["eventName"] for e in by_resource} == names
