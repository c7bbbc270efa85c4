"""Asymmetric signing keys and HMAC keys through boto3: CreateKey with the
asymmetric and HMAC key specs, GetPublicKey, Sign / Verify (RAW and DIGEST),
GenerateMac / VerifyMac. Signatures and public keys are checked independently
with the `cryptography` package, and with the openssl CLI for one RSA and one
ECDSA case."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from e2e_support import ACCOUNT_B, KMS_TARGET, client_error, key_arn, raw_post

RSA_ALGS = [
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
]
EC_SPECS = {
    "ECC_NIST_P256": ("ECDSA_SHA_256", ec.SECP256R1),
    "ECC_NIST_P384": ("ECDSA_SHA_384", ec.SECP384R1),
    "ECC_NIST_P521": ("ECDSA_SHA_512", ec.SECP521R1),
    "ECC_SECG_P256K1": ("ECDSA_SHA_256", ec.SECP256K1),
}
MESSAGE = b"a message signed by KMS"


@pytest.fixture(scope="module")
def kms(kms_b):
    """This module works in account b (also through `make_key`): its many calls then
    do not crowd account a's CloudTrail history that other modules page through."""
    return kms_b


def _hash(alg: str):
    return {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[-3:]]


def _digest(alg: str, message: bytes) -> bytes:
    return hashlib.new("sha" + alg[-3:], message).digest()


def _verify(public_key, alg: str, message: bytes, signature: bytes, prehashed: bool = False):
    """Verifies with `cryptography`; raises InvalidSignature on failure."""
    h = _hash(alg)
    algo = utils.Prehashed(h) if prehashed else h
    if alg.startswith("RSASSA_PSS"):
        # KMS uses a salt as long as the digest.
        public_key.verify(signature, message, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), algo)
    elif alg.startswith("RSASSA_PKCS1"):
        public_key.verify(signature, message, padding.PKCS1v15(), algo)
    else:
        public_key.verify(signature, message, ec.ECDSA(algo))


@pytest.fixture(scope="module")
def rsa_key(kms):
    return kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY", Description="e2e rsa")["KeyMetadata"]


@pytest.fixture(scope="module")
def ec_keys(kms):
    return {
        spec: kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY", Description="e2e ec")["KeyMetadata"]
        for spec in EC_SPECS
    }


def test_rsa_key_metadata_and_public_key(kms, rsa_key):
    assert rsa_key["KeySpec"] == "RSA_2048"
    assert rsa_key["CustomerMasterKeySpec"] == "RSA_2048"
    assert rsa_key["KeyUsage"] == "SIGN_VERIFY"
    assert rsa_key["SigningAlgorithms"] == RSA_ALGS
    assert "EncryptionAlgorithms" not in rsa_key
    assert "MacAlgorithms" not in rsa_key
    assert kms.describe_key(KeyId=rsa_key["KeyId"])["KeyMetadata"]["SigningAlgorithms"] == RSA_ALGS

    resp = kms.get_public_key(KeyId=rsa_key["KeyId"])
    assert resp["KeyId"] == rsa_key["Arn"]
    assert resp["KeySpec"] == "RSA_2048"
    assert resp["KeyUsage"] == "SIGN_VERIFY"
    assert resp["SigningAlgorithms"] == RSA_ALGS
    public = serialization.load_der_public_key(resp["PublicKey"])
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == 2048


@pytest.mark.parametrize("alg", RSA_ALGS)
def test_rsa_signatures_verify_with_cryptography(kms, rsa_key, alg):
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=rsa_key["KeyId"])["PublicKey"])
    raw = kms.sign(KeyId=rsa_key["KeyId"], Message=MESSAGE, MessageType="RAW", SigningAlgorithm=alg)
    assert raw["KeyId"] == rsa_key["Arn"]
    assert raw["SigningAlgorithm"] == alg
    assert len(raw["Signature"]) == 256
    _verify(public, alg, MESSAGE, raw["Signature"])

    digest = _digest(alg, MESSAGE)
    pre = kms.sign(KeyId=rsa_key["Arn"], Message=digest, MessageType="DIGEST", SigningAlgorithm=alg)
    _verify(public, alg, MESSAGE, pre["Signature"])
    _verify(public, alg, digest, pre["Signature"], prehashed=True)

    for message, mtype, sig in [(MESSAGE, "RAW", pre["Signature"]), (digest, "DIGEST", raw["Signature"])]:
        out = kms.verify(KeyId=rsa_key["KeyId"], Message=message, MessageType=mtype, Signature=sig, SigningAlgorithm=alg)
        assert out["SignatureValid"] is True
        assert out["KeyId"] == rsa_key["Arn"]
        assert out["SigningAlgorithm"] == alg


@pytest.mark.parametrize("spec,bits", [("RSA_3072", 3072), ("RSA_4096", 4096)])
def test_larger_rsa_signing_keys(kms, make_key, spec, bits):
    key = make_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")
    assert key["SigningAlgorithms"] == RSA_ALGS
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=key["KeyId"])["PublicKey"])
    assert public.key_size == bits
    for alg in ("RSASSA_PSS_SHA_512", "RSASSA_PKCS1_V1_5_SHA_384"):
        sig = kms.sign(KeyId=key["KeyId"], Message=MESSAGE, SigningAlgorithm=alg)["Signature"]
        assert len(sig) == bits // 8
        _verify(public, alg, MESSAGE, sig)


@pytest.mark.parametrize("spec", list(EC_SPECS))
def test_ecdsa_signatures_verify_with_cryptography(kms, ec_keys, spec):
    key = ec_keys[spec]
    alg, curve = EC_SPECS[spec]
    assert key["SigningAlgorithms"] == [alg]
    resp = kms.get_public_key(KeyId=key["KeyId"])
    assert resp["KeySpec"] == spec
    assert resp["SigningAlgorithms"] == [alg]
    public = serialization.load_der_public_key(resp["PublicKey"])
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert isinstance(public.curve, curve)

    raw = kms.sign(KeyId=key["KeyId"], Message=MESSAGE, SigningAlgorithm=alg)
    # AWS returns ECDSA signatures DER-encoded (RFC 3279 Ecdsa-Sig-Value).
    r, s = utils.decode_dss_signature(raw["Signature"])
    assert r > 0 and s > 0
    _verify(public, alg, MESSAGE, raw["Signature"])
    digest = _digest(alg, MESSAGE)
    pre = kms.sign(KeyId=key["KeyId"], Message=digest, MessageType="DIGEST", SigningAlgorithm=alg)
    _verify(public, alg, MESSAGE, pre["Signature"])
    assert kms.verify(KeyId=key["KeyId"], Message=MESSAGE, Signature=pre["Signature"], SigningAlgorithm=alg)[
        "SignatureValid"
    ]
    with pytest.raises(InvalidSignature):
        _verify(public, alg, MESSAGE + b"!", raw["Signature"])


def test_tampered_signatures_are_kms_invalid_signature(kms, rsa_key, ec_keys):
    for key, alg in [(rsa_key, "RSASSA_PSS_SHA_256"), (ec_keys["ECC_NIST_P256"], "ECDSA_SHA_256")]:
        sig = bytearray(kms.sign(KeyId=key["KeyId"], Message=MESSAGE, SigningAlgorithm=alg)["Signature"])
        with client_error("KMSInvalidSignatureException"):
            kms.verify(KeyId=key["KeyId"], Message=MESSAGE + b"x", Signature=bytes(sig), SigningAlgorithm=alg)
        sig[-1] ^= 1
        with client_error("KMSInvalidSignatureException"):
            kms.verify(KeyId=key["KeyId"], Message=MESSAGE, Signature=bytes(sig), SigningAlgorithm=alg)


def test_sign_errors(kms, rsa_key, ec_keys, make_key):
    key_id = ec_keys["ECC_NIST_P256"]["KeyId"]
    # 4096 bytes is the largest RAW message; the model refuses more.
    kms.sign(KeyId=key_id, Message=b"m" * 4096, SigningAlgorithm="ECDSA_SHA_256")
    with client_error("ValidationException"):
        kms.sign(KeyId=key_id, Message=b"m" * 4097, SigningAlgorithm="ECDSA_SHA_256")
    # A DIGEST must be as long as the algorithm's hash.
    with client_error("ValidationException"):
        kms.sign(KeyId=key_id, Message=b"d" * 31, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256")
    with client_error("ValidationException"):
        kms.sign(KeyId=rsa_key["KeyId"], Message=b"d" * 32, MessageType="DIGEST", SigningAlgorithm="RSASSA_PSS_SHA_384")
    # An algorithm of another key spec.
    with client_error("InvalidKeyUsageException"):
        kms.sign(KeyId=key_id, Message=b"m", SigningAlgorithm="ECDSA_SHA_384")
    with client_error("InvalidKeyUsageException"):
        kms.sign(KeyId=rsa_key["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    # Symmetric keys do not sign and have no public key; signing keys do not encrypt.
    symmetric = make_key()
    with client_error("InvalidKeyUsageException"):
        kms.sign(KeyId=symmetric["KeyId"], Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")
    with client_error("UnsupportedOperationException"):
        kms.get_public_key(KeyId=symmetric["KeyId"])
    with client_error("InvalidKeyUsageException"):
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    with client_error("NotFoundException"):
        kms.sign(KeyId=key_arn("0badc0de-0000-4000-8000-000000000000", ACCOUNT_B), Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    with client_error("DryRunOperationException"):
        kms.sign(KeyId=key_id, Message=b"m", SigningAlgorithm="ECDSA_SHA_256", DryRun=True)


@pytest.mark.parametrize(
    "spec,usage,code",
    [
        ("ECC_NIST_P256", "ENCRYPT_DECRYPT", "ValidationException"),
        ("ECC_SECG_P256K1", "KEY_AGREEMENT", "ValidationException"),
        ("HMAC_256", "SIGN_VERIFY", "ValidationException"),
        ("SYMMETRIC_DEFAULT", "SIGN_VERIFY", "ValidationException"),
        ("RSA_2048", "GENERATE_VERIFY_MAC", "ValidationException"),
        ("SM2", "KEY_AGREEMENT", "UnsupportedOperationException"),
        ("ML_DSA_65", "SIGN_VERIFY", "UnsupportedOperationException"),
    ],
)
def test_key_spec_and_usage_combinations(kms, spec, usage, code):
    with client_error(code):
        kms.create_key(KeySpec=spec, KeyUsage=usage)


def test_disabled_signing_key(kms, make_key):
    key = make_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    kms.disable_key(KeyId=key["KeyId"])
    with client_error("DisabledException"):
        kms.sign(KeyId=key["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    with client_error("DisabledException"):
        kms.get_public_key(KeyId=key["KeyId"])
    kms.enable_key(KeyId=key["KeyId"])
    kms.sign(KeyId=key["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
@pytest.mark.parametrize(
    "which,alg,sigopts",
    [
        ("rsa", "RSASSA_PKCS1_V1_5_SHA_256", []),
        ("rsa", "RSASSA_PSS_SHA_512", ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"]),
        ("ec", "ECDSA_SHA_384", []),
    ],
)
def test_signatures_verify_with_openssl(kms, rsa_key, ec_keys, tmp_path, which, alg, sigopts):
    key = rsa_key if which == "rsa" else ec_keys["ECC_NIST_P384"]
    (tmp_path / "pub.der").write_bytes(kms.get_public_key(KeyId=key["KeyId"])["PublicKey"])
    subprocess.run(
        ["openssl", "pkey", "-pubin", "-inform", "DER", "-in", "pub.der", "-out", "pub.pem"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    (tmp_path / "msg.bin").write_bytes(MESSAGE)
    (tmp_path / "sig.bin").write_bytes(kms.sign(KeyId=key["KeyId"], Message=MESSAGE, SigningAlgorithm=alg)["Signature"])
    cmd = ["openssl", "dgst", "-sha" + alg[-3:], "-verify", "pub.pem", *sigopts, "-signature", "sig.bin", "msg.bin"]
    ok = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0 and "Verified OK" in ok.stdout, ok.stdout + ok.stderr
    (tmp_path / "msg.bin").write_bytes(MESSAGE + b"tampered")
    bad = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode != 0


# -- RSA encryption keys ------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec,limits",
    [
        ("RSA_2048", {"RSAES_OAEP_SHA_1": 214, "RSAES_OAEP_SHA_256": 190}),
        ("RSA_3072", {"RSAES_OAEP_SHA_1": 342, "RSAES_OAEP_SHA_256": 318}),
        ("RSA_4096", {"RSAES_OAEP_SHA_1": 470, "RSAES_OAEP_SHA_256": 446}),
    ],
)
def test_rsa_encryption_round_trips_and_limits(kms, make_key, spec, limits):
    key = make_key(KeySpec=spec, KeyUsage="ENCRYPT_DECRYPT")
    assert key["EncryptionAlgorithms"] == ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
    assert "SigningAlgorithms" not in key
    assert "CurrentKeyMaterialId" not in key
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=key["KeyId"])["PublicKey"])
    for alg, limit in limits.items():
        h = hashes.SHA1() if alg.endswith("_1") else hashes.SHA256()
        oaep = padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None)
        # KMS encrypts; KMS decrypts (naming the key and the algorithm).
        out = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x" * limit, EncryptionAlgorithm=alg)
        assert out["EncryptionAlgorithm"] == alg
        assert len(out["CiphertextBlob"]) == public.key_size // 8
        plain = kms.decrypt(KeyId=key["KeyId"], CiphertextBlob=out["CiphertextBlob"], EncryptionAlgorithm=alg)
        assert plain["Plaintext"] == b"x" * limit
        assert plain["EncryptionAlgorithm"] == alg
        assert plain["KeyId"] == key["Arn"]
        # Encrypted outside KMS with the public key (`cryptography`), decrypted by KMS.
        local = public.encrypt(b"made elsewhere", oaep)
        assert kms.decrypt(KeyId=key["Arn"], CiphertextBlob=local, EncryptionAlgorithm=alg)["Plaintext"] == b"made elsewhere"
        with client_error("ValidationException"):
            kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x" * (limit + 1), EncryptionAlgorithm=alg)
    # ReEncrypt from the RSA key (named, with its algorithm) to a symmetric key and back.
    symmetric = make_key()
    rsa_blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"moving", EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
    moved = kms.re_encrypt(
        CiphertextBlob=rsa_blob,
        SourceKeyId=key["KeyId"],
        SourceEncryptionAlgorithm="RSAES_OAEP_SHA_256",
        DestinationKeyId=symmetric["KeyId"],
    )
    assert moved["SourceEncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
    assert moved["DestinationEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert kms.decrypt(CiphertextBlob=moved["CiphertextBlob"])["Plaintext"] == b"moving"
    back = kms.re_encrypt(
        CiphertextBlob=moved["CiphertextBlob"], DestinationKeyId=key["Arn"], DestinationEncryptionAlgorithm="RSAES_OAEP_SHA_1"
    )
    assert back["DestinationEncryptionAlgorithm"] == "RSAES_OAEP_SHA_1"
    assert kms.decrypt(KeyId=key["KeyId"], CiphertextBlob=back["CiphertextBlob"], EncryptionAlgorithm="RSAES_OAEP_SHA_1")["Plaintext"] == b"moving"

    tampered = bytearray(kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p", EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"])
    tampered[5] ^= 1
    with client_error("InvalidCiphertextException"):
        kms.decrypt(KeyId=key["KeyId"], CiphertextBlob=bytes(tampered), EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    with client_error("InvalidKeyUsageException"):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p")
    with client_error("InvalidKeyUsageException"):
        kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    with client_error("InvalidKeyUsageException"):
        kms.sign(KeyId=key["KeyId"], Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")


# -- HMAC ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec,alg,length",
    [("HMAC_224", "HMAC_SHA_224", 28), ("HMAC_256", "HMAC_SHA_256", 32), ("HMAC_384", "HMAC_SHA_384", 48), ("HMAC_512", "HMAC_SHA_512", 64)],
)
def test_hmac_round_trip_and_tampering(kms, make_key, spec, alg, length):
    key = make_key(KeySpec=spec, KeyUsage="GENERATE_VERIFY_MAC")
    assert key["KeyUsage"] == "GENERATE_VERIFY_MAC"
    assert key["MacAlgorithms"] == [alg]
    assert "EncryptionAlgorithms" not in key
    assert "CurrentKeyMaterialId" not in key
    out = kms.generate_mac(KeyId=key["KeyId"], Message=b"message", MacAlgorithm=alg)
    assert out["KeyId"] == key["Arn"]
    assert out["MacAlgorithm"] == alg
    assert len(out["Mac"]) == length
    assert kms.generate_mac(KeyId=key["Arn"], Message=b"message", MacAlgorithm=alg)["Mac"] == out["Mac"]
    ok = kms.verify_mac(KeyId=key["KeyId"], Message=b"message", MacAlgorithm=alg, Mac=out["Mac"])
    assert ok["MacValid"] is True
    assert ok["KeyId"] == key["Arn"]
    with client_error("KMSInvalidMacException"):
        kms.verify_mac(KeyId=key["KeyId"], Message=b"messagE", MacAlgorithm=alg, Mac=out["Mac"])
    tampered = bytes([out["Mac"][0] ^ 1]) + out["Mac"][1:]
    with client_error("KMSInvalidMacException"):
        kms.verify_mac(KeyId=key["KeyId"], Message=b"message", MacAlgorithm=alg, Mac=tampered)
    other = "HMAC_SHA_512" if alg != "HMAC_SHA_512" else "HMAC_SHA_256"
    with client_error("InvalidKeyUsageException"):
        kms.generate_mac(KeyId=key["KeyId"], Message=b"message", MacAlgorithm=other)
    with client_error("InvalidKeyUsageException"):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")


def test_hmac_errors(kms, make_key):
    a = make_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    b = make_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    mac = kms.generate_mac(KeyId=a["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    with client_error("KMSInvalidMacException"):
        kms.verify_mac(KeyId=b["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256", Mac=mac)
    with client_error("ValidationException"):
        kms.generate_mac(KeyId=a["KeyId"], Message=b"m" * 4097, MacAlgorithm="HMAC_SHA_256")
    symmetric = make_key()
    with client_error("InvalidKeyUsageException"):
        kms.generate_mac(KeyId=symmetric["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256")
    with client_error("DryRunOperationException"):
        kms.verify_mac(KeyId=a["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256", Mac=mac, DryRun=True)


# -- rotation of symmetric keys (kept here with the other key-material features) -------


def test_rotation_status_enable_disable(kms, make_key, endpoint):
    key = make_key()
    status = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert status["KeyRotationEnabled"] is False
    assert status["KeyId"] == key["Arn"]
    kms.enable_key_rotation(KeyId=key["KeyId"])
    status = kms.get_key_rotation_status(KeyId=key["Arn"])
    assert status["KeyRotationEnabled"] is True
    assert status["RotationPeriodInDays"] == 365
    assert "NextRotationDate" in status
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=90)
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["RotationPeriodInDays"] == 90
    # boto3 checks the range itself; a raw request gets the server's answer.
    for bad in (89, 2561):
        resp = raw_post(endpoint, {"KeyId": key["KeyId"], "RotationPeriodInDays": bad}, target=KMS_TARGET + "EnableKeyRotation", account="b")
        assert (resp.status, resp.error_code) == (400, "ValidationException"), resp.body
    kms.disable_key_rotation(KeyId=key["KeyId"])
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is False

    signing = make_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    with client_error("UnsupportedOperationException"):
        kms.enable_key_rotation(KeyId=signing["KeyId"])
    with client_error("UnsupportedOperationException"):
        kms.rotate_key_on_demand(KeyId=signing["KeyId"])


def test_rotate_on_demand_keeps_old_ciphertexts(kms, make_key, aws):
    key = make_key()
    first = key["CurrentKeyMaterialId"]
    old = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"before rotation", EncryptionContext={"k": "v"})
    assert kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"] == []

    assert kms.rotate_key_on_demand(KeyId=key["KeyId"])["KeyId"] == key["KeyId"]
    second = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["CurrentKeyMaterialId"]
    assert second != first

    plain = kms.decrypt(CiphertextBlob=old["CiphertextBlob"], EncryptionContext={"k": "v"})
    assert plain["Plaintext"] == b"before rotation"
    assert plain["KeyMaterialId"] == first
    new = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"after")
    assert kms.decrypt(CiphertextBlob=new["CiphertextBlob"])["KeyMaterialId"] == second

    rotations = kms.list_key_rotations(KeyId=key["KeyId"])
    assert rotations["Truncated"] is False
    [entry] = rotations["Rotations"]
    assert entry["KeyId"] == key["KeyId"]
    assert entry["RotationType"] == "ON_DEMAND"
    assert entry["KeyMaterialId"] == second
    assert entry["KeyMaterialState"] == "CURRENT"
    assert "RotationDate" in entry

    # The aws CLI sees the same list.
    out = json.loads(aws.run("kms", "list-key-rotations", "--key-id", key["KeyId"], account="b").stdout)
    assert [r["KeyMaterialId"] for r in out["Rotations"]] == [second]

    kms.disable_key(KeyId=key["KeyId"])
    with client_error("DisabledException"):
        kms.rotate_key_on_demand(KeyId=key["KeyId"])
