"""Secret hygiene: plaintexts and data keys a run handles never reach the logs, the
databases (and their WAL files) or the CloudTrail log files.

One stack of its own, with the most verbose logging (`RUST_LOG=debug`, span fields on
every line), drives Encrypt / Decrypt / GenerateDataKey / GenerateDataKeyPair /
GenerateMac with secrets made for this test, stops (which delivers every committed
record to the log files), then scans every byte it left: raw, base64 and hex forms.
A control (the key id, which is recorded everywhere) proves the scan can find things.
"""

from __future__ import annotations

import base64
import gzip
import os
from pathlib import Path

import pytest

from e2e_support import Stack


def forms(secret: bytes) -> dict[str, bytes]:
    """The encodings a leak could take."""
    b64 = base64.b64encode(secret)
    return {
        "raw": secret,
        "base64": b64,
        "base64-unpadded": b64.rstrip(b"="),
        "hex": secret.hex().encode(),
        "HEX": secret.hex().upper().encode(),
    }


def every_file(root: Path):
    """(path, bytes) of every file under root; gzip files also decompressed."""
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        data = p.read_bytes()
        yield p, data
        if p.suffix == ".gz":
            yield p.with_suffix(p.suffix + "[gunzip]"), gzip.decompress(data)


@pytest.fixture
def verbose_stack(tmp_path, monkeypatch):
    monkeypatch.setenv("RUST_LOG", "debug")
    monkeypatch.setenv("KMS_LOG_SPANS", "1")
    s = Stack(tmp_path / "data", tmp_path / "kms-stack.log")
    s.start()
    yield s
    if s.proc and s.proc.poll() is None:
        s.stop()


def test_no_plaintext_or_data_key_is_logged_or_stored(verbose_stack, tmp_path):
    kms = verbose_stack.client("kms", "a")
    key_id = kms.create_key(Description="hygiene")["KeyMetadata"]["KeyId"]
    secrets: dict[str, bytes] = {}

    plaintext = os.urandom(48)
    secrets["Encrypt plaintext"] = plaintext
    blob = kms.encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext={"purpose": "hygiene"})[
        "CiphertextBlob"
    ]
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"purpose": "hygiene"})["Plaintext"] == plaintext

    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    secrets["GenerateDataKey plaintext"] = data_key["Plaintext"]
    again = kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"]
    assert again == data_key["Plaintext"]

    pair = kms.generate_data_key_pair(KeyId=key_id, KeyPairSpec="ECC_NIST_P256")
    secrets["GenerateDataKeyPair private key"] = pair["PrivateKeyPlaintext"]

    mac_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    message = os.urandom(40)
    secrets["GenerateMac message"] = message
    mac = kms.generate_mac(KeyId=mac_key, Message=message, MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert kms.verify_mac(KeyId=mac_key, Message=message, Mac=mac, MacAlgorithm="HMAC_SHA_256")["MacValid"]

    random_bytes = kms.generate_random(NumberOfBytes=64)["Plaintext"]
    secrets["GenerateRandom bytes"] = random_bytes

    # Stopping delivers every committed record to the CloudTrail log files.
    assert verbose_stack.stop() == 0
    files = list(every_file(tmp_path))
    names = {str(p.relative_to(tmp_path)) for p, _ in files}
    assert "kms-stack.log" in names
    assert any(n.startswith("data/cloudtrail/") for n in names), names
    assert any(n.endswith("[gunzip]") for n in names), names
    assert any(".db" in n or "sqlite" in n for n in names), names

    # Control: the key id is in the log, the audit database and the log files.
    control = key_id.encode()
    found = [str(p.relative_to(tmp_path)) for p, data in files if control in data]
    assert "kms-stack.log" in found, found
    assert any("audit" in n for n in found), found
    assert any(n.endswith("[gunzip]") for n in found), found

    leaks = [
        f"{what} ({form}) in {p.relative_to(tmp_path)}"
        for what, secret in secrets.items()
        for form, needle in forms(secret).items()
        for p, data in files
        if needle in data
    ]
    assert leaks == [], leaks
