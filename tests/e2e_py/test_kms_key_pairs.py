"""Data key pairs and key agreement through boto3.

GenerateDataKeyPair(WithoutPlaintext): the private key is PKCS#8 DER, the public
key a DER SubjectPublicKeyInfo of the same pair (checked with `cryptography`), and
PrivateKeyCiphertextBlob decrypts with Decrypt under the encryption context.

KEY_AGREEMENT keys: CreateKey, DescribeKey / GetPublicKey show ECDH, and
DeriveSharedSecret returns the raw ECDH secret, which `cryptography` derives too
from the other side. Wrong key usage, bad public keys and the curve combinations
AWS refuses fail as AWS documents."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from e2e_support import client_error

PAIR_SPECS = {
    "RSA_2048": (rsa.RSAPrivateKey, 2048),
    "RSA_3072": (rsa.RSAPrivateKey, 3072),
    "RSA_4096": (rsa.RSAPrivateKey, 4096),
    "ECC_NIST_P256": (ec.EllipticCurvePrivateKey, ec.SECP256R1),
    "ECC_NIST_P384": (ec.EllipticCurvePrivateKey, ec.SECP384R1),
    "ECC_NIST_P521": (ec.EllipticCurvePrivateKey, ec.SECP521R1),
    "ECC_SECG_P256K1": (ec.EllipticCurvePrivateKey, ec.SECP256K1),
}
CURVES = {
    "ECC_NIST_P256": ec.SECP256R1,
    "ECC_NIST_P384": ec.SECP384R1,
    "ECC_NIST_P521": ec.SECP521R1,
}
CONTEXT = {"purpose": "key-pair-test"}


def spki(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize("spec", list(PAIR_SPECS))
def test_generate_data_key_pair(kms, key, spec):
    out = kms.generate_data_key_pair(
        KeyId=key["KeyId"], KeyPairSpec=spec, EncryptionContext=CONTEXT
    )
    assert out["KeyId"] == key["Arn"]
    assert out["KeyPairSpec"] == spec
    kind, param = PAIR_SPECS[spec]
    private = serialization.load_der_private_key(out["PrivateKeyPlaintext"], password=None)
    assert isinstance(private, kind)
    if kind is rsa.RSAPrivateKey:
        assert private.key_size == param
    else:
        assert isinstance(private.curve, param)
    # The public key is the private key's.
    assert out["PublicKey"] == spki(private.public_key())
    public = serialization.load_der_public_key(out["PublicKey"])
    if kind is rsa.RSAPrivateKey:
        ct = public.encrypt(
            b"hi",
            padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
        )
        assert private.decrypt(
            ct, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
        ) == b"hi"
    else:
        sig = private.sign(b"m", ec.ECDSA(hashes.SHA256()))
        public.verify(sig, b"m", ec.ECDSA(hashes.SHA256()))
    # The ciphertext is an ordinary KMS ciphertext of the PKCS#8 bytes.
    opened = kms.decrypt(CiphertextBlob=out["PrivateKeyCiphertextBlob"], EncryptionContext=CONTEXT)
    assert opened["Plaintext"] == out["PrivateKeyPlaintext"]
    assert opened["KeyId"] == key["Arn"]
    with client_error("InvalidCiphertextException"):
        kms.decrypt(CiphertextBlob=out["PrivateKeyCiphertextBlob"], EncryptionContext={"purpose": "other"})


def test_generate_data_key_pair_without_plaintext(kms, key):
    out = kms.generate_data_key_pair_without_plaintext(
        KeyId=key["KeyId"], KeyPairSpec="ECC_NIST_P256"
    )
    assert "PrivateKeyPlaintext" not in out
    assert out["KeyPairSpec"] == "ECC_NIST_P256"
    plain = kms.decrypt(CiphertextBlob=out["PrivateKeyCiphertextBlob"])["Plaintext"]
    private = serialization.load_der_private_key(plain, password=None)
    assert spki(private.public_key()) == out["PublicKey"]


def test_generate_data_key_pair_errors(kms, make_key, key):
    signing = make_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    with client_error("InvalidKeyUsageException"):
        kms.generate_data_key_pair(KeyId=signing["KeyId"], KeyPairSpec="RSA_2048")
    with client_error("ValidationException"):
        kms.generate_data_key_pair(KeyId=key["KeyId"], KeyPairSpec="RSA_1024")
    with client_error("UnsupportedOperationException"):
        kms.generate_data_key_pair(KeyId=key["KeyId"], KeyPairSpec="SM2")
    with client_error("UnsupportedOperationException"):
        kms.generate_data_key_pair(
            KeyId=key["KeyId"],
            KeyPairSpec="ECC_NIST_P256",
            Recipient={"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": b"doc"},
        )
    with client_error("NotFoundException"):
        kms.generate_data_key_pair(KeyId="alias/does-not-exist", KeyPairSpec="RSA_2048")
    kms.disable_key(KeyId=key["KeyId"])
    with client_error("DisabledException"):
        kms.generate_data_key_pair(KeyId=key["KeyId"], KeyPairSpec="RSA_2048")


@pytest.mark.parametrize("spec", list(CURVES))
def test_derive_shared_secret_matches_the_other_side(kms, make_key, spec):
    key = make_key(KeySpec=spec, KeyUsage="KEY_AGREEMENT")
    assert key["KeyUsage"] == "KEY_AGREEMENT"
    assert key["KeyAgreementAlgorithms"] == ["ECDH"]
    assert "SigningAlgorithms" not in key and "EncryptionAlgorithms" not in key
    described = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert described["KeyAgreementAlgorithms"] == ["ECDH"]
    pub = kms.get_public_key(KeyId=key["KeyId"])
    assert pub["KeyAgreementAlgorithms"] == ["ECDH"]
    assert pub["KeyUsage"] == "KEY_AGREEMENT"
    kms_public = serialization.load_der_public_key(pub["PublicKey"])
    assert isinstance(kms_public.curve, CURVES[spec])

    peer = ec.generate_private_key(CURVES[spec]())
    out = kms.derive_shared_secret(
        KeyId=key["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=spki(peer.public_key())
    )
    assert out["KeyId"] == key["Arn"]
    assert out["KeyAgreementAlgorithm"] == "ECDH"
    assert out["KeyOrigin"] == "AWS_KMS"
    expected = peer.exchange(ec.ECDH(), kms_public)
    assert out["SharedSecret"] == expected
    # Another peer, another secret.
    other = ec.generate_private_key(CURVES[spec]())
    again = kms.derive_shared_secret(
        KeyId=key["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=spki(other.public_key())
    )
    assert again["SharedSecret"] == other.exchange(ec.ECDH(), kms_public)
    assert again["SharedSecret"] != out["SharedSecret"]


def test_derive_shared_secret_errors(kms, make_key, key):
    agreement = make_key(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")
    p256_peer = spki(ec.generate_private_key(ec.SECP256R1()).public_key())
    # Keys of another usage.
    signing = make_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    for other in (signing, key):
        with client_error("InvalidKeyUsageException"):
            kms.derive_shared_secret(
                KeyId=other["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=p256_peer
            )
    # A public key of another curve, a raw point instead of SPKI, garbage.
    p384_peer = spki(ec.generate_private_key(ec.SECP384R1()).public_key())
    raw_point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    for bad in (p384_peer, raw_point, b"\x30\x03\x02\x01\x01"):
        with client_error("ValidationException"):
            kms.derive_shared_secret(
                KeyId=agreement["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=bad
            )
    # Key agreement keys do not sign or encrypt.
    with client_error("InvalidKeyUsageException"):
        kms.sign(KeyId=agreement["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    # The combinations AWS refuses.
    for spec in ("ECC_SECG_P256K1", "RSA_2048", "SYMMETRIC_DEFAULT", "HMAC_256"):
        with client_error("ValidationException"):
            kms.create_key(KeySpec=spec, KeyUsage="KEY_AGREEMENT")
    kms.disable_key(KeyId=agreement["KeyId"])
    with client_error("DisabledException"):
        kms.derive_shared_secret(
            KeyId=agreement["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=p256_peer
        )
