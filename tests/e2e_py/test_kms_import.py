"""Imported key material through boto3: CreateKey Origin EXTERNAL,
GetParametersForImport with every RSA wrapping algorithm and wrapping key spec,
ImportKeyMaterial, DeleteImportedKeyMaterial and re-import.

The material is wrapped here with `cryptography` (RSAES-OAEP, and RSA + AES key
wrap with padding for RSA_AES_KEY_WRAP_*), and the imported material is shown to be
the one KMS uses: a ciphertext of Encrypt opens locally with AES-GCM under it
(blob format in docs/CIPHERTEXT.md)."""

from __future__ import annotations

import datetime as dt
import os
import struct

import pytest
from cryptography.hazmat.primitives import hashes, hmac, keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from e2e_support import client_error

WRAPPINGS = [
    ("RSAES_OAEP_SHA_1", "RSA_2048"),
    ("RSAES_OAEP_SHA_256", "RSA_3072"),
    ("RSA_AES_KEY_WRAP_SHA_1", "RSA_4096"),
    ("RSA_AES_KEY_WRAP_SHA_256", "RSA_2048"),
]


def wrap(params: dict, algorithm: str, material: bytes) -> bytes:
    public = serialization.load_der_public_key(params["PublicKey"])
    h = hashes.SHA1() if algorithm.endswith("SHA_1") else hashes.SHA256()
    oaep = padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None)
    if algorithm.startswith("RSA_AES_KEY_WRAP"):
        aes_key = os.urandom(32)
        return public.encrypt(aes_key, oaep) + keywrap.aes_key_wrap_with_padding(aes_key, material)
    return public.encrypt(material, oaep)


def import_material(kms, key_id, material, algorithm="RSAES_OAEP_SHA_256", spec="RSA_2048", **kwargs):
    params = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=spec
    )
    kwargs.setdefault("ExpirationModel", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    return kms.import_key_material(
        KeyId=key_id,
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrap(params, algorithm, material),
        **kwargs,
    )


def open_locally(blob: bytes, material: bytes) -> bytes:
    """Opens a version-1 KMS ciphertext blob (empty encryption context)."""
    assert blob[0] == 1
    id_len = blob[1]
    header_len = 2 + id_len + 4 + 12
    nonce = blob[2 + id_len + 4 : header_len]
    aad = blob[:header_len] + struct.pack(">I", 0)
    return AESGCM(material).decrypt(nonce, blob[header_len:], aad)


@pytest.fixture
def external_key(make_key):
    return make_key(Origin="EXTERNAL")


def state(kms, key_id):
    return kms.describe_key(KeyId=key_id)["KeyMetadata"]


@pytest.mark.parametrize("algorithm,spec", WRAPPINGS)
def test_import_with_every_wrapping(kms, external_key, algorithm, spec):
    key_id = external_key["KeyId"]
    assert external_key["Origin"] == "EXTERNAL"
    assert external_key["KeyState"] == "PendingImport"
    assert external_key["Enabled"] is False
    params = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=spec
    )
    assert params["KeyId"] == external_key["Arn"]
    public = serialization.load_der_public_key(params["PublicKey"])
    assert public.key_size == int(spec.split("_")[1])
    valid_to = params["ParametersValidTo"]
    now = dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(hours=23, minutes=55) < valid_to - now <= dt.timedelta(hours=24, minutes=1)

    material = os.urandom(32)
    out = kms.import_key_material(
        KeyId=key_id,
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrap(params, algorithm, material),
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    assert out["KeyId"] == external_key["Arn"]
    md = state(kms, key_id)
    assert md["KeyState"] == "Enabled"
    assert md["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    assert "ValidTo" not in md
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"imported")["CiphertextBlob"]
    # KMS really encrypts under the imported material.
    assert open_locally(blob, material) == b"imported"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"imported"


def test_delete_and_reimport_the_same_material(kms, external_key):
    key_id = external_key["KeyId"]
    with client_error("KMSInvalidStateException"):
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    material = os.urandom(32)
    import_material(kms, key_id, material)
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"before deletion")["CiphertextBlob"]

    deleted = kms.delete_imported_key_material(KeyId=key_id)
    assert deleted["KeyId"] == external_key["Arn"]
    md = state(kms, key_id)
    assert md["KeyState"] == "PendingImport"
    assert "ExpirationModel" not in md
    with client_error("KMSInvalidStateException"):
        kms.decrypt(CiphertextBlob=blob)
    with client_error("KMSInvalidStateException"):
        kms.delete_imported_key_material(KeyId=key_id)

    # Other material is refused, and changes nothing.
    with client_error("IncorrectKeyMaterialException"):
        import_material(kms, key_id, os.urandom(32))
    assert state(kms, key_id)["KeyState"] == "PendingImport"

    # The same material again, now expiring: old ciphertexts decrypt again.
    valid_to = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)
    import_material(
        kms,
        key_id,
        material,
        algorithm="RSA_AES_KEY_WRAP_SHA_256",
        ExpirationModel="KEY_MATERIAL_EXPIRES",
        ValidTo=valid_to,
    )
    md = state(kms, key_id)
    assert md["KeyState"] == "Enabled"
    assert md["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    assert abs((md["ValidTo"] - valid_to).total_seconds()) < 2
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before deletion"
    # Re-importing the same material into an enabled key is allowed too; other
    # material is not.
    import_material(kms, key_id, material)
    with client_error("IncorrectKeyMaterialException"):
        import_material(kms, key_id, os.urandom(32))
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before deletion"


def test_import_errors(kms, make_key, external_key):
    key_id = external_key["KeyId"]
    params = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    material = os.urandom(32)
    good = wrap(params, "RSAES_OAEP_SHA_256", material)

    # The token of another key, and a damaged token.
    other = make_key(Origin="EXTERNAL")
    other_params = kms.get_parameters_for_import(
        KeyId=other["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    damaged = bytearray(params["ImportToken"])
    damaged[-1] ^= 1
    for token in (other_params["ImportToken"], bytes(damaged), b"not a token"):
        with client_error("InvalidImportTokenException"):
            kms.import_key_material(
                KeyId=key_id,
                ImportToken=token,
                EncryptedKeyMaterial=good,
                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
            )
    # Material wrapped under another wrapping key, or with another algorithm.
    for bad in (
        wrap(other_params, "RSAES_OAEP_SHA_256", material),
        wrap(params, "RSAES_OAEP_SHA_1", material),
        b"\x00" * 256,
    ):
        with client_error("InvalidCiphertextException"):
            kms.import_key_material(
                KeyId=key_id,
                ImportToken=params["ImportToken"],
                EncryptedKeyMaterial=bad,
                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
            )
    # Not 256 bits.
    with client_error("IncorrectKeyMaterialException"):
        kms.import_key_material(
            KeyId=key_id,
            ImportToken=params["ImportToken"],
            EncryptedKeyMaterial=wrap(params, "RSAES_OAEP_SHA_256", os.urandom(16)),
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        )
    # ExpirationModel and ValidTo must agree; ValidTo must be in the future.
    with client_error("ValidationException"):
        kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=good)
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    with client_error("ValidationException"):
        kms.import_key_material(
            KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=good, ValidTo=past
        )
    with client_error("ValidationException"):
        kms.import_key_material(
            KeyId=key_id,
            ImportToken=params["ImportToken"],
            EncryptedKeyMaterial=good,
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
            ValidTo=past + dt.timedelta(days=2),
        )
    assert state(kms, key_id)["KeyState"] == "PendingImport"

    # RSAES_PKCS1_V1_5 is no longer supported.
    with client_error("ValidationException"):
        kms.get_parameters_for_import(
            KeyId=key_id, WrappingAlgorithm="RSAES_PKCS1_V1_5", WrappingKeySpec="RSA_2048"
        )
    # Keys of AWS_KMS origin take no imported material.
    regular = make_key()
    with client_error("UnsupportedOperationException"):
        kms.get_parameters_for_import(
            KeyId=regular["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
        )
    with client_error("UnsupportedOperationException"):
        kms.delete_imported_key_material(KeyId=regular["KeyId"])
    # Multi-Region keys with imported material: not supported here (README).
    with client_error("UnsupportedOperationException"):
        kms.create_key(Origin="EXTERNAL", MultiRegion=True)

    # The import itself works after all this, and rotation is refused as AWS does.
    kms.import_key_material(
        KeyId=key_id,
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=good,
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    assert state(kms, key_id)["KeyState"] == "Enabled"
    with client_error("UnsupportedOperationException"):
        kms.enable_key_rotation(KeyId=key_id)


def test_cancel_deletion_of_a_key_without_material(kms, external_key):
    key_id = external_key["KeyId"]
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert state(kms, key_id)["KeyState"] == "PendingDeletion"
    with client_error("KMSInvalidStateException"):
        kms.get_parameters_for_import(
            KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
        )
    kms.cancel_key_deletion(KeyId=key_id)
    assert state(kms, key_id)["KeyState"] == "PendingImport"
    with client_error("KMSInvalidStateException"):
        kms.enable_key(KeyId=key_id)



# -- asymmetric and HMAC keys with imported key material --------------------------------
#
# AWS imports the DER PKCS#8 private key into RSA and ECC keys and the key bytes into
# HMAC keys; KMS derives the public key. The keystore takes such material
# (services/keystore/src/service/import.rs).


def make_external_key(make_key, **kwargs):
    return make_key(Origin="EXTERNAL", **kwargs)


def pkcs8(private_key) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def spki(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_import_rsa_signing_key(kms, make_key):
    key = make_external_key(make_key, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    assert key["KeyState"] == "PendingImport"
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # A PKCS#8 RSA key is longer than RSAES-OAEP can wrap: RSA + AES key wrap.
    import_material(kms, key["KeyId"], pkcs8(private), algorithm="RSA_AES_KEY_WRAP_SHA_256", spec="RSA_3072")
    md = state(kms, key["KeyId"])
    assert md["KeyState"] == "Enabled"
    assert md["Origin"] == "EXTERNAL"
    public = kms.get_public_key(KeyId=key["KeyId"])
    assert public["PublicKey"] == spki(private.public_key())
    # KMS signs with the imported key; the local key's signature verifies in KMS.
    sig = kms.sign(KeyId=key["KeyId"], Message=b"m", SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")["Signature"]
    private.public_key().verify(sig, b"m", padding.PKCS1v15(), hashes.SHA256())
    local = private.sign(b"n", padding.PKCS1v15(), hashes.SHA256())
    assert kms.verify(KeyId=key["KeyId"], Message=b"n", Signature=local, SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")[
        "SignatureValid"
    ]
    # Other material, including a key of another size, is refused.
    other = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    with client_error("IncorrectKeyMaterialException"):
        import_material(kms, key["KeyId"], pkcs8(other), algorithm="RSA_AES_KEY_WRAP_SHA_256", spec="RSA_3072")


def test_import_ecc_key_delete_and_reimport(kms, make_key):
    key = make_external_key(make_key, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    with client_error("KMSInvalidStateException"):
        kms.get_public_key(KeyId=key["KeyId"])
    private = ec.generate_private_key(ec.SECP256R1())
    with client_error("IncorrectKeyMaterialException"):
        import_material(kms, key["KeyId"], pkcs8(ec.generate_private_key(ec.SECP384R1())))
    with client_error("IncorrectKeyMaterialException"):
        import_material(kms, key["KeyId"], os.urandom(32))
    import_material(kms, key["KeyId"], pkcs8(private))
    assert kms.get_public_key(KeyId=key["KeyId"])["PublicKey"] == spki(private.public_key())
    sig = kms.sign(KeyId=key["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    private.public_key().verify(sig, b"m", ec.ECDSA(hashes.SHA256()))

    kms.delete_imported_key_material(KeyId=key["KeyId"])
    assert state(kms, key["KeyId"])["KeyState"] == "PendingImport"
    with client_error("KMSInvalidStateException"):
        kms.sign(KeyId=key["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    # Only the same private key comes back.
    with client_error("IncorrectKeyMaterialException"):
        import_material(kms, key["KeyId"], pkcs8(ec.generate_private_key(ec.SECP256R1())))
    import_material(kms, key["KeyId"], pkcs8(private))
    assert kms.verify(KeyId=key["KeyId"], Message=b"m", Signature=sig, SigningAlgorithm="ECDSA_SHA_256")[
        "SignatureValid"
    ]


def test_import_hmac_key(kms, make_key):
    key = make_external_key(make_key, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    for length in (31, 65):
        with client_error("IncorrectKeyMaterialException"):
            import_material(kms, key["KeyId"], os.urandom(length))
    secret = os.urandom(48)
    import_material(kms, key["KeyId"], secret)
    mac = kms.generate_mac(KeyId=key["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    local = hmac.HMAC(secret, hashes.SHA256())
    local.update(b"m")
    assert mac == local.finalize()
