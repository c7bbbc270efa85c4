"""Tamper-evident CloudTrail log files, checked with the aws CLI's own validator.

A stack of its own delivers log files and signed, chained digest files into its data
dir (`<data-dir>/cloudtrail`, standing for the S3 bucket; a digest's S3 metadata
`signature` / `signature-algorithm` is the sidecar `<digest>.meta`). The CLI's
`validate-logs` command (awscli.customizations.cloudtrail.validation) then runs
unmodified over these files: its DigestTraverser, DigestProvider,
Sha256RSADigestValidator and log hash check, with an S3 client that reads the folder
and a CloudTrail client bound to the stack (ListPublicKeys, blobs left base64 as the
CLI leaves them).
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import io
import json
from argparse import Namespace
from pathlib import Path

import pytest

from e2e_support import ACCOUNT_A, REGION, AwsCli, cloudtrail_log_dir, start_stack

BUCKET = "kms-cloudtrail-logs"
TRAIL = "management-events"
TRAIL_ARN = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_A.account_id}:trail/{TRAIL}"


class LocalS3:
    """The three S3 calls the CLI's validator makes, served from the log dir."""

    def __init__(self, root: Path):
        self.root = root

    def _keys(self):
        return sorted(
            p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()
        )

    def get_paginator(self, name):
        assert name == "list_objects"
        s3 = self

        class Pages:
            def paginate(self, Bucket, Marker, Prefix):
                assert Bucket == BUCKET
                keys = [k for k in s3._keys() if k.startswith(Prefix) and k > Marker]

                class Result:
                    def search(self, expr):
                        assert expr == "Contents[*].Key"
                        return iter(keys)

                return Result()

        return Pages()

    def get_object(self, Bucket, Key):
        from botocore.exceptions import ClientError

        path = self.root / Key
        if Bucket != BUCKET or not path.is_file():
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "The specified key does not exist."}}, "GetObject")
        meta_path = Path(str(path) + ".meta")
        metadata = json.loads(meta_path.read_bytes()) if meta_path.is_file() else {}
        return {"Body": io.BytesIO(path.read_bytes()), "Metadata": metadata}


class LocalS3Provider:
    def __init__(self, root: Path):
        self.client = LocalS3(root)

    def get_client(self, bucket_name):
        return self.client


def cli_cloudtrail_client(endpoint: str):
    """A CloudTrail client as the aws CLI builds it: blobs stay base64 text."""
    import botocore.session
    from awscli.customizations.scalarparse import add_scalar_parsers

    session = botocore.session.get_session()
    add_scalar_parsers(session)
    return session.create_client(
        "cloudtrail",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=ACCOUNT_A.access_key,
        aws_secret_access_key=ACCOUNT_A.secret_key,
    )


def run_cli_validator(endpoint: str, log_dir: Path, start: dt.datetime, capsys):
    """The CLI's `cloudtrail validate-logs` command over the log dir; returns
    (exit status, command, stdout, stderr)."""
    from awscli.customizations.cloudtrail.validation import CloudTrailValidateLogs

    cmd = CloudTrailValidateLogs(session=None)
    cmd.handle_args(
        Namespace(
            trail_arn=TRAIL_ARN,
            verbose=True,
            start_time=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            end_time=(dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            s3_bucket=BUCKET,
            s3_prefix=None,
            account_id=None,
        )
    )
    cmd._source_region = REGION
    cmd.s3_client_provider = LocalS3Provider(log_dir)
    cmd.cloudtrail_client = cli_cloudtrail_client(endpoint)
    cmd.organization_client = None
    capsys.readouterr()
    cmd._call()
    out = capsys.readouterr()
    invalid = cmd._invalid_digests + cmd._invalid_backfill_digests + cmd._invalid_logs
    return (1 if invalid else 0), cmd, out.out, out.err


def make_calls(stack) -> None:
    kms = stack.client("kms", "a")
    key = kms.create_key(Description="digest e2e")["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"digest")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"digest"
    kms.describe_key(KeyId=key["KeyId"])


def digest_files(log_dir: Path) -> list[Path]:
    root = log_dir / "AWSLogs" / ACCOUNT_A.account_id / "CloudTrail-Digest" / REGION
    return sorted(root.rglob("*.json.gz"))


def test_digests_verify_with_the_aws_cli_validator(tmp_path, capsys):
    started = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    data_dir = tmp_path / "data"
    log_dir = cloudtrail_log_dir(data_dir)

    first = start_stack(data_dir, tmp_path / "first.log")
    try:
        make_calls(first)
        keys = first.client("cloudtrail", "a").list_public_keys()["PublicKeyList"]
        cli_keys = AwsCli(first.endpoint, tmp_path).json("cloudtrail", "list-public-keys")["PublicKeyList"]
    finally:
        assert first.stop() == 0, first.log_tail()
    assert first.log_dir == log_dir

    # ListPublicKeys: DER of the PKCS #1 public key, MD5 fingerprint; the CLI shows base64.
    assert len(keys) == 1
    der = keys[0]["Value"]
    assert isinstance(der, bytes) and der[:4] == b"\x30\x82\x01\x0a"
    assert keys[0]["Fingerprint"] == hashlib.md5(der).hexdigest()
    assert isinstance(keys[0]["ValidityStartTime"], dt.datetime)
    assert cli_keys[0]["Value"] == base64.b64encode(der).decode()
    assert cli_keys[0]["Fingerprint"] == keys[0]["Fingerprint"]

    # Shutdown delivered the log files and a first digest.
    digests = digest_files(log_dir)
    assert len(digests) == 1, digests
    first_digest = json.loads(gzip.decompress(digests[0].read_bytes()))
    assert first_digest["previousDigestSignature"] is None
    assert first_digest["digestPublicKeyFingerprint"] == keys[0]["Fingerprint"]
    records = [
        r
        for lf in first_digest["logFiles"]
        for r in json.loads(gzip.decompress((log_dir / lf["s3Object"]).read_bytes()))["Records"]
    ]
    names = {r["eventName"] for r in records}
    assert {"CreateKey", "Encrypt", "Decrypt", "DescribeKey"} <= names, names
    assert all(r["recipientAccountId"] == ACCOUNT_A.account_id for r in records)

    # The CLI's signature check, on our file and our public key.
    from awscli.customizations.cloudtrail.validation import Sha256RSADigestValidator

    meta = json.loads(Path(str(digests[0]) + ".meta").read_bytes())
    assert meta["signature-algorithm"] == "SHA256withRSA"
    data = dict(first_digest, _signature=meta["signature"], _signature_algorithm=meta["signature-algorithm"])
    key = digests[0].relative_to(log_dir).as_posix()
    Sha256RSADigestValidator().validate(BUCKET, key, base64.b64encode(der), data, gzip.decompress(digests[0].read_bytes()))

    # A second run extends the chain.
    second = start_stack(data_dir, tmp_path / "second.log")
    try:
        make_calls(second)
        rc, cmd, out, err = run_cli_validator(second.endpoint, log_dir, started, capsys)
        assert rc == 0, out + err
        assert cmd._valid_digests == 1  # the second digest is written at shutdown

        second.stop()
        third = start_stack(data_dir, tmp_path / "third.log")
        try:
            digests = digest_files(log_dir)
            assert len(digests) == 2, digests
            newest = json.loads(gzip.decompress(digests[-1].read_bytes()))
            assert newest["previousDigestS3Object"] == digests[0].relative_to(log_dir).as_posix()
            assert newest["previousDigestSignature"] == meta["signature"]

            rc, cmd, out, err = run_cli_validator(third.endpoint, log_dir, started, capsys)
            assert rc == 0, out + err
            assert cmd._valid_digests == 2, out + err
            assert cmd._valid_logs >= 2 and cmd._invalid_logs == 0, out + err
            assert "2/2 digest files valid" in out

            # Tampering: a log file removed, a digest edited.
            victim = log_dir / newest["logFiles"][0]["s3Object"]
            victim.unlink()
            rc, cmd, out, err = run_cli_validator(third.endpoint, log_dir, started, capsys)
            assert rc == 1
            assert f"Log file\ts3://{BUCKET}/{victim.relative_to(log_dir).as_posix()}\tINVALID: not found" in err
            edited = first_digest | {"logFiles": []}
            digests[0].write_bytes(gzip.compress(json.dumps(edited).encode()))
            rc, cmd, out, err = run_cli_validator(third.endpoint, log_dir, started, capsys)
            assert rc == 1
            assert f"Digest file\ts3://{BUCKET}/{key}\tINVALID: signature verification failed" in err
        finally:
            third.stop()
    finally:
        second.stop()
