"""The AWS Encryption SDK for Python against this KMS.

The SDK builds its own botocore clients from a botocore session (with no
endpoint parameter): the session here carries the account's credentials, and
botocore's service-specific `AWS_ENDPOINT_URL_KMS` points every client it makes
at our loopback endpoint (checked before any call, so nothing can reach AWS). Encrypt / decrypt round trips with a
StrictAwsKmsMasterKeyProvider (GenerateDataKey + Decrypt with the encryption
context the SDK adds), the SDK's encrypted data key opens with Decrypt directly,
a key the provider does not name cannot decrypt, and the multi-Region-aware
provider decrypts in us-west-2 what the us-east-1 primary encrypted."""

from __future__ import annotations

import pytest

import aws_encryption_sdk  # noqa: E402  (requirements.txt pins it)
import os  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import boto3  # noqa: E402
from cryptography.exceptions import InvalidSignature  # noqa: E402
import botocore.session  # noqa: E402
from aws_encryption_sdk.identifiers import CommitmentPolicy  # noqa: E402
from aws_encryption_sdk.key_providers.kms import MRKAwareStrictAwsKmsMasterKeyProvider  # noqa: E402

from e2e_support import ACCOUNT_A, assert_loopback_endpoint  # noqa: E402

PLAINTEXT = b"a message for the AWS Encryption SDK" * 50
CONTEXT = {"purpose": "esdk-e2e", "tenant": "a"}


@pytest.fixture(scope="module")
def botocore_session(stack):
    assert_loopback_endpoint(stack.endpoint)
    saved = os.environ.get("AWS_ENDPOINT_URL_KMS")
    os.environ["AWS_ENDPOINT_URL_KMS"] = stack.endpoint
    try:
        session = botocore.session.Session()
        session.set_credentials(ACCOUNT_A.access_key, ACCOUNT_A.secret_key)
        session.set_config_variable("region", "us-east-1")
        # The SDK's clients are made exactly like this one: fail before any call
        # if they would not talk to our loopback endpoint.
        for region in ("us-east-1", "us-west-2"):
            probe = boto3.session.Session(botocore_session=session).client("kms", region_name=region)
            assert urlsplit(probe.meta.endpoint_url).hostname.startswith("127."), probe.meta.endpoint_url
        yield session
    finally:
        if saved is None:
            os.environ.pop("AWS_ENDPOINT_URL_KMS", None)
        else:
            os.environ["AWS_ENDPOINT_URL_KMS"] = saved


@pytest.fixture(scope="module")
def esdk():
    return aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )


def test_round_trip_with_strict_provider(kms, make_key, botocore_session, esdk):
    key = make_key()
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=[key["Arn"]], botocore_session=botocore_session
    )
    ciphertext, enc_header = esdk.encrypt(
        source=PLAINTEXT, key_provider=provider, encryption_context=CONTEXT
    )
    assert PLAINTEXT not in ciphertext
    edks = list(enc_header.encrypted_data_keys)
    assert len(edks) == 1
    assert edks[0].key_provider.provider_id == "aws-kms"
    assert edks[0].key_provider.key_info.decode() == key["Arn"]

    plaintext, dec_header = esdk.decrypt(source=ciphertext, key_provider=provider)
    assert plaintext == PLAINTEXT
    for k, v in CONTEXT.items():
        assert dec_header.encryption_context[k] == v

    # The SDK's encrypted data key is a KMS ciphertext under the SDK's full
    # encryption context (it adds the signing public key).
    data_key = kms.decrypt(
        CiphertextBlob=edks[0].encrypted_data_key,
        EncryptionContext=dict(enc_header.encryption_context),
    )
    assert data_key["KeyId"] == key["Arn"]
    assert len(data_key["Plaintext"]) == 32

    # A provider that names another key cannot decrypt.
    other = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=[make_key()["Arn"]], botocore_session=botocore_session
    )
    with pytest.raises(aws_encryption_sdk.exceptions.DecryptKeyError):
        esdk.decrypt(source=ciphertext, key_provider=other)

    # Tampering is detected.
    tampered = bytearray(ciphertext)
    tampered[-100] ^= 1
    with pytest.raises((aws_encryption_sdk.exceptions.AWSEncryptionSDKClientError, InvalidSignature)):
        esdk.decrypt(source=bytes(tampered), key_provider=provider)


def test_multi_region_key_decrypts_in_the_replica_region(kms, make_key, botocore_session, esdk):
    key = make_key(MultiRegion=True)
    west_arn = kms.replicate_key(KeyId=key["KeyId"], ReplicaRegion="us-west-2")["ReplicaKeyMetadata"]["Arn"]
    east = MRKAwareStrictAwsKmsMasterKeyProvider(
        key_ids=[key["Arn"]], botocore_session=botocore_session
    )
    ciphertext, _ = esdk.encrypt(source=PLAINTEXT, key_provider=east, encryption_context=CONTEXT)
    west = MRKAwareStrictAwsKmsMasterKeyProvider(
        key_ids=[west_arn], botocore_session=botocore_session
    )
    plaintext, header = esdk.decrypt(source=ciphertext, key_provider=west)
    assert plaintext == PLAINTEXT
    assert header.encryption_context["purpose"] == "esdk-e2e"
