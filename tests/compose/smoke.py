"""Smoke test of `docker-compose up`: the five services as separate containers.

Run by scripts/compose-smoke.sh once the containers are healthy. Drives the
gateway's published port (loopback only) with boto3: create a key, encrypt,
decrypt, and find the calls in CloudTrail LookupEvents (which crosses the
gateway, authz, keystore and audit containers).
"""
import os
import sys
import time
from urllib.parse import urlparse

import boto3
from botocore.config import Config

endpoint = os.environ.get("KMS_ENDPOINT", "http://127.0.0.1:4566")
host = urlparse(endpoint).hostname
assert host == "localhost" or host.startswith("127."), f"refusing non-loopback endpoint {endpoint}"

session = dict(
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
    aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    config=Config(retries={"max_attempts": 1, "mode": "standard"}),
)
kms = boto3.client("kms", **session)
trail = boto3.client("cloudtrail", **session)

# The gateway may accept connections a moment before its backends' channels are up.
for attempt in range(30):
    try:
        key = kms.create_key(Description="compose smoke")["KeyMetadata"]
        break
    except Exception as e:  # noqa: BLE001 - report the last failure below
        last = e
        time.sleep(1)
else:
    sys.exit(f"create_key never succeeded: {last}")

assert key["KeyState"] == "Enabled", key
blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"through compose",
                   EncryptionContext={"via": "compose"})["CiphertextBlob"]
out = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"via": "compose"})
assert out["Plaintext"] == b"through compose", out
assert out["KeyId"] == key["Arn"], out

events = trail.lookup_events(LookupAttributes=[
    {"AttributeKey": "ResourceName", "AttributeValue": key["Arn"]}])["Events"]
names = sorted(e["EventName"] for e in events)
assert names == ["CreateKey", "Decrypt", "Encrypt"], names
print("compose smoke: 1 passed, 0 failed")
