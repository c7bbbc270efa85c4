//! Asymmetric signing keys (RSA, ECDSA on the NIST curves and secp256k1) and HMAC
//! keys, on aws-lc-rs: key generation, the at-rest form of their secrets, Sign /
//! Verify with RAW and DIGEST messages, GenerateMac / VerifyMac, and the algorithm
//! lists KMS shows for each key spec.
//!
//! Private keys are kept by aws-lc (freed and cleansed by aws-lc on drop); their
//! PKCS#8 encoding and HMAC key bytes only ever sit in [`Zeroizing`] buffers until
//! they are wrapped under the root key. Nothing here implements `Debug` on secrets.

use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::encoding as agreement_der;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, PrivateDecryptingKey,
};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey};
use aws_lc_rs::{agreement, hmac};
use zeroize::Zeroizing;

use crate::crypto::{self, CryptoError};

pub const KEY_USAGE_SIGN_VERIFY: &str = "SIGN_VERIFY";
pub const KEY_USAGE_GENERATE_VERIFY_MAC: &str = "GENERATE_VERIFY_MAC";
pub const KEY_USAGE_KEY_AGREEMENT: &str = "KEY_AGREEMENT";

const RSA_SIGNING: &[&str] = &[
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
];

/// The kind of key a key spec names, with what this service supports of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecKind {
    Symmetric,
    Rsa(KeySize),
    Ec(Curve),
    Hmac(&'static hmac::Algorithm, usize),
    /// A key spec of the model that this KMS does not create.
    Unsupported,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
    Secp256k1,
}

impl Curve {
    fn signing(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            Curve::P521 => &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
            Curve::Secp256k1 => &signature::ECDSA_P256K1_SHA256_ASN1_SIGNING,
        }
    }

    fn verification(self) -> &'static signature::EcdsaVerificationAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1,
            Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1,
            Curve::P521 => &signature::ECDSA_P521_SHA512_ASN1,
            Curve::Secp256k1 => &signature::ECDSA_P256K1_SHA256_ASN1,
        }
    }

    /// The ECDH algorithm of a NIST curve (secp256k1 has no KEY_AGREEMENT in KMS).
    fn agreement(self) -> Option<&'static agreement::Algorithm> {
        match self {
            Curve::P256 => Some(&agreement::ECDH_P256),
            Curve::P384 => Some(&agreement::ECDH_P384),
            Curve::P521 => Some(&agreement::ECDH_P521),
            Curve::Secp256k1 => None,
        }
    }

    fn hash(self) -> &'static digest::Algorithm {
        match self {
            Curve::P256 | Curve::Secp256k1 => &digest::SHA256,
            Curve::P384 => &digest::SHA384,
            Curve::P521 => &digest::SHA512,
        }
    }

    /// The one signing algorithm KMS offers for the curve.
    fn algorithm(self) -> &'static str {
        match self {
            Curve::P256 | Curve::Secp256k1 => "ECDSA_SHA_256",
            Curve::P384 => "ECDSA_SHA_384",
            Curve::P521 => "ECDSA_SHA_512",
        }
    }
}

pub fn spec_kind(spec: &str) -> SpecKind {
    match spec {
        "SYMMETRIC_DEFAULT" => SpecKind::Symmetric,
        "RSA_2048" => SpecKind::Rsa(KeySize::Rsa2048),
        "RSA_3072" => SpecKind::Rsa(KeySize::Rsa3072),
        "RSA_4096" => SpecKind::Rsa(KeySize::Rsa4096),
        "ECC_NIST_P256" => SpecKind::Ec(Curve::P256),
        "ECC_NIST_P384" => SpecKind::Ec(Curve::P384),
        "ECC_NIST_P521" => SpecKind::Ec(Curve::P521),
        "ECC_SECG_P256K1" => SpecKind::Ec(Curve::Secp256k1),
        "HMAC_224" => SpecKind::Hmac(&hmac::HMAC_SHA224, 28),
        "HMAC_256" => SpecKind::Hmac(&hmac::HMAC_SHA256, 32),
        "HMAC_384" => SpecKind::Hmac(&hmac::HMAC_SHA384, 48),
        "HMAC_512" => SpecKind::Hmac(&hmac::HMAC_SHA512, 64),
        _ => SpecKind::Unsupported,
    }
}

/// The block size of an HMAC key spec's hash: the longest HMAC key material kept
/// as it is (RFC 2104, section 3).
fn hmac_block_len(spec: &str) -> usize {
    match spec {
        "HMAC_384" | "HMAC_512" => 128,
        _ => 64,
    }
}

/// KeyMetadata.SigningAlgorithms of a key.
pub fn signing_algorithms(spec: &str, usage: &str) -> Vec<String> {
    if usage != KEY_USAGE_SIGN_VERIFY {
        return Vec::new();
    }
    match spec_kind(spec) {
        SpecKind::Rsa(_) => RSA_SIGNING.iter().map(|s| s.to_string()).collect(),
        SpecKind::Ec(c) => vec![c.algorithm().to_owned()],
        _ => Vec::new(),
    }
}

/// KeyMetadata.EncryptionAlgorithms of a key.
pub fn encryption_algorithms(spec: &str, usage: &str) -> Vec<String> {
    if usage != "ENCRYPT_DECRYPT" {
        return Vec::new();
    }
    match spec_kind(spec) {
        SpecKind::Symmetric => vec!["SYMMETRIC_DEFAULT".to_owned()],
        SpecKind::Rsa(_) => vec![
            "RSAES_OAEP_SHA_1".to_owned(),
            "RSAES_OAEP_SHA_256".to_owned(),
        ],
        _ => Vec::new(),
    }
}

/// KeyMetadata.KeyAgreementAlgorithms of a key.
pub fn key_agreement_algorithms(usage: &str) -> Vec<String> {
    if usage == KEY_USAGE_KEY_AGREEMENT {
        vec!["ECDH".to_owned()]
    } else {
        Vec::new()
    }
}

/// KeyMetadata.MacAlgorithms of a key.
pub fn mac_algorithms(spec: &str) -> Vec<String> {
    match spec {
        "HMAC_224" => vec!["HMAC_SHA_224".to_owned()],
        "HMAC_256" => vec!["HMAC_SHA_256".to_owned()],
        "HMAC_384" => vec!["HMAC_SHA_384".to_owned()],
        "HMAC_512" => vec!["HMAC_SHA_512".to_owned()],
        _ => Vec::new(),
    }
}

/// The secret of a non-symmetric key, ready to use.
pub enum PrivateKey {
    /// An RSA key of usage ENCRYPT_DECRYPT (RSAES-OAEP).
    RsaCrypt(Box<RsaCrypt>),
    Rsa {
        pair: RsaKeyPair,
        spki: Vec<u8>,
    },
    Ec {
        pair: EcdsaKeyPair,
        curve: Curve,
        spki: Vec<u8>,
    },
    Hmac(Box<hmac::Key>),
    /// An ECC key of usage KEY_AGREEMENT (ECDH).
    Ecdh {
        key: agreement::PrivateKey,
        spki: Vec<u8>,
    },
}

/// Why DeriveSharedSecret could not run.
#[derive(Debug, PartialEq, Eq)]
pub enum AgreeError {
    /// Not a key agreement key.
    NotAgreement,
    /// The peer key is not a DER SubjectPublicKeyInfo of the key's curve.
    BadPublicKey,
}

/// Why a signature or MAC operation could not run (not: "the signature is wrong").
#[derive(Debug, PartialEq, Eq)]
pub enum UseError {
    /// The algorithm does not belong to the key spec.
    IncompatibleAlgorithm,
    /// A DIGEST message of the wrong length for the algorithm.
    DigestLength,
    Crypto,
}

impl From<CryptoError> for UseError {
    fn from(_: CryptoError) -> Self {
        UseError::Crypto
    }
}

/// The two halves of an RSA encryption key.
pub struct RsaCrypt {
    private: OaepPrivateDecryptingKey,
    public: OaepPublicEncryptingKey,
    spki: Vec<u8>,
}

fn oaep(name: &str) -> Option<&'static OaepAlgorithm> {
    match name {
        "RSAES_OAEP_SHA_1" => Some(&OAEP_SHA1_MGF1SHA1),
        "RSAES_OAEP_SHA_256" => Some(&OAEP_SHA256_MGF1SHA256),
        _ => None,
    }
}

/// Why an asymmetric Encrypt could not run.
#[derive(Debug, PartialEq, Eq)]
pub enum EncryptError {
    IncompatibleAlgorithm,
    /// The plaintext exceeds what the key and algorithm can encrypt (the limit).
    TooLong(usize),
    Crypto,
}

impl PrivateKey {
    /// RSAES-OAEP encryption with the public key.
    pub fn encrypt(&self, algorithm: &str, plaintext: &[u8]) -> Result<Vec<u8>, EncryptError> {
        let (PrivateKey::RsaCrypt(k), Some(alg)) = (self, oaep(algorithm)) else {
            return Err(EncryptError::IncompatibleAlgorithm);
        };
        let max = k.public.max_plaintext_size(alg);
        if plaintext.len() > max {
            return Err(EncryptError::TooLong(max));
        }
        let mut out = vec![0u8; k.public.ciphertext_size()];
        let len = k
            .public
            .encrypt(alg, plaintext, &mut out, None)
            .map_err(|_| EncryptError::Crypto)?
            .len();
        out.truncate(len);
        Ok(out)
    }

    /// RSAES-OAEP decryption; `None` when the ciphertext does not decrypt.
    pub fn decrypt(
        &self,
        algorithm: &str,
        ciphertext: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, EncryptError> {
        let (PrivateKey::RsaCrypt(k), Some(alg)) = (self, oaep(algorithm)) else {
            return Err(EncryptError::IncompatibleAlgorithm);
        };
        let mut out = Zeroizing::new(vec![0u8; k.private.min_output_size()]);
        let Ok(plain) = k.private.decrypt(alg, ciphertext, &mut out, None) else {
            return Ok(None);
        };
        let len = plain.len();
        out.truncate(len);
        Ok(Some(out))
    }

    /// Whether this is an RSA encryption key and `algorithm` one of its algorithms.
    pub fn encrypts_with(&self, algorithm: &str) -> bool {
        matches!(self, PrivateKey::RsaCrypt(_)) && oaep(algorithm).is_some()
    }

    /// ECDH with the peer's DER SubjectPublicKeyInfo: the raw shared secret (the x
    /// coordinate of the shared point), as KMS returns it.
    pub fn derive_shared_secret(&self, peer_spki: &[u8]) -> Result<Zeroizing<Vec<u8>>, AgreeError> {
        let PrivateKey::Ecdh { key, .. } = self else {
            return Err(AgreeError::NotAgreement);
        };
        let parsed = agreement::ParsedPublicKey::try_from(agreement::UnparsedPublicKey::new(
            key.algorithm(),
            peer_spki,
        ))
        .map_err(|_| AgreeError::BadPublicKey)?;
        if parsed.format() != agreement::ParsedPublicKeyFormat::X509 {
            return Err(AgreeError::BadPublicKey);
        }
        agreement::agree(key, parsed, AgreeError::BadPublicKey, |secret| {
            Ok(Zeroizing::new(secret.to_vec()))
        })
    }

    /// A fresh key of `spec`, with the secret bytes to wrap and store (PKCS#8 for
    /// private keys, the raw key for HMAC).
    pub fn generate(spec: &str, usage: &str) -> Result<(Self, Zeroizing<Vec<u8>>), CryptoError> {
        let secret = match spec_kind(spec) {
            SpecKind::Rsa(size) => {
                let pair = RsaKeyPair::generate(size).map_err(|_| CryptoError::Random)?;
                let der = pair.as_der().map_err(|_| CryptoError::Random)?;
                Zeroizing::new(der.as_ref().to_vec())
            }
            SpecKind::Ec(curve) => {
                let doc = EcdsaKeyPair::generate_pkcs8(curve.signing(), &SystemRandom::new())
                    .map_err(|_| CryptoError::Random)?;
                Zeroizing::new(doc.as_ref().to_vec())
            }
            SpecKind::Hmac(_, len) => crypto::random_bytes(len)?,
            SpecKind::Symmetric | SpecKind::Unsupported => return Err(CryptoError::KeyLength),
        };
        let key = Self::from_secret(spec, usage, &secret)?;
        Ok((key, secret))
    }

    /// The key from its stored (unwrapped) secret.
    pub fn from_secret(spec: &str, usage: &str, secret: &[u8]) -> Result<Self, CryptoError> {
        match spec_kind(spec) {
            SpecKind::Rsa(_) if usage == "ENCRYPT_DECRYPT" => {
                let key =
                    PrivateDecryptingKey::from_pkcs8(secret).map_err(|_| CryptoError::Open)?;
                let public_key = key.public_key();
                let spki = public_key
                    .as_der()
                    .map_err(|_| CryptoError::Open)?
                    .as_ref()
                    .to_vec();
                Ok(PrivateKey::RsaCrypt(Box::new(RsaCrypt {
                    private: OaepPrivateDecryptingKey::new(key).map_err(|_| CryptoError::Open)?,
                    public: OaepPublicEncryptingKey::new(public_key)
                        .map_err(|_| CryptoError::Open)?,
                    spki,
                })))
            }
            SpecKind::Rsa(_) => {
                let pair = RsaKeyPair::from_pkcs8(secret).map_err(|_| CryptoError::Open)?;
                let spki = pair
                    .public_key()
                    .as_der()
                    .map_err(|_| CryptoError::Open)?
                    .as_ref()
                    .to_vec();
                Ok(PrivateKey::Rsa { pair, spki })
            }
            SpecKind::Ec(curve) if usage == KEY_USAGE_KEY_AGREEMENT => {
                let alg = curve.agreement().ok_or(CryptoError::KeyLength)?;
                let key = agreement::PrivateKey::from_private_key_der(alg, secret)
                    .map_err(|_| CryptoError::Open)?;
                let public = key.compute_public_key().map_err(|_| CryptoError::Open)?;
                let spki: agreement_der::PublicKeyX509Der<'_> =
                    public.as_der().map_err(|_| CryptoError::Open)?;
                let spki = spki.as_ref().to_vec();
                Ok(PrivateKey::Ecdh { key, spki })
            }
            SpecKind::Ec(curve) => {
                let pair = EcdsaKeyPair::from_pkcs8(curve.signing(), secret)
                    .map_err(|_| CryptoError::Open)?;
                let spki = pair
                    .public_key()
                    .as_der()
                    .map_err(|_| CryptoError::Open)?
                    .as_ref()
                    .to_vec();
                Ok(PrivateKey::Ec { pair, curve, spki })
            }
            SpecKind::Hmac(alg, len) if (len..=hmac_block_len(spec)).contains(&secret.len()) => {
                Ok(PrivateKey::Hmac(Box::new(hmac::Key::new(*alg, secret))))
            }
            _ => Err(CryptoError::KeyLength),
        }
    }

    /// Imported key material (ImportKeyMaterial) for a key of `spec` and `usage`:
    /// the DER PKCS#8 private key of a pair of exactly that key spec (RSA modulus
    /// size, ECC curve), or HMAC key bytes from the digest length up to the hash's
    /// block size (RFC 2104: a longer key would only be hashed down first).
    pub fn from_imported(spec: &str, usage: &str, material: &[u8]) -> Result<Self, CryptoError> {
        let key = Self::from_secret(spec, usage, material)?;
        let modulus_len = match &key {
            PrivateKey::Rsa { pair, .. } => Some(pair.public_modulus_len()),
            PrivateKey::RsaCrypt(k) => Some(k.private.key_size_bytes()),
            _ => None,
        };
        match (spec_kind(spec), modulus_len) {
            (SpecKind::Rsa(size), Some(len)) if len != size.len() => Err(CryptoError::KeyLength),
            _ => Ok(key),
        }
    }

    /// The DER SubjectPublicKeyInfo of an asymmetric key.
    pub fn public_key_der(&self) -> Option<&[u8]> {
        match self {
            PrivateKey::Rsa { spki, .. }
            | PrivateKey::Ec { spki, .. }
            | PrivateKey::Ecdh { spki, .. } => Some(spki),
            PrivateKey::RsaCrypt(k) => Some(&k.spki),
            PrivateKey::Hmac(_) => None,
        }
    }

    /// Signs `message` (RAW) or a precomputed digest (`digest == true`).
    pub fn sign(&self, algorithm: &str, message: &[u8], digest: bool) -> Result<Vec<u8>, UseError> {
        match self {
            PrivateKey::Rsa { pair, .. } => {
                let (encoding, _, hash) =
                    rsa_algorithm(algorithm).ok_or(UseError::IncompatibleAlgorithm)?;
                let mut sig = vec![0u8; pair.public_modulus_len()];
                if digest {
                    let d = import_digest(message, hash)?;
                    pair.sign_digest(encoding, &d, &mut sig)
                } else {
                    pair.sign(encoding, &SystemRandom::new(), message, &mut sig)
                }
                .map_err(|_| UseError::Crypto)?;
                Ok(sig)
            }
            PrivateKey::Ec { pair, curve, .. } => {
                if algorithm != curve.algorithm() {
                    return Err(UseError::IncompatibleAlgorithm);
                }
                let sig = if digest {
                    let d = import_digest(message, curve.hash())?;
                    pair.sign_digest(&d)
                } else {
                    pair.sign(&SystemRandom::new(), message)
                }
                .map_err(|_| UseError::Crypto)?;
                Ok(sig.as_ref().to_vec())
            }
            PrivateKey::Hmac(_) | PrivateKey::RsaCrypt(_) | PrivateKey::Ecdh { .. } => {
                Err(UseError::IncompatibleAlgorithm)
            }
        }
    }

    /// Whether `sig` is a valid signature of `message` (or of the digest).
    pub fn verify(
        &self,
        algorithm: &str,
        message: &[u8],
        digest: bool,
        sig: &[u8],
    ) -> Result<bool, UseError> {
        let (alg, spki, hash): (&'static dyn signature::VerificationAlgorithm, _, _) = match self {
            PrivateKey::Rsa { spki, .. } => {
                let (_, params, hash) =
                    rsa_algorithm(algorithm).ok_or(UseError::IncompatibleAlgorithm)?;
                (params, spki, hash)
            }
            PrivateKey::Ec { curve, spki, .. } => {
                if algorithm != curve.algorithm() {
                    return Err(UseError::IncompatibleAlgorithm);
                }
                (curve.verification(), spki, curve.hash())
            }
            PrivateKey::Hmac(_) | PrivateKey::RsaCrypt(_) | PrivateKey::Ecdh { .. } => {
                return Err(UseError::IncompatibleAlgorithm);
            }
        };
        let key = UnparsedPublicKey::new(alg, spki.as_slice());
        let ok = if digest {
            let d = import_digest(message, hash)?;
            key.verify_digest(&d, sig).is_ok()
        } else {
            key.verify(message, sig).is_ok()
        };
        Ok(ok)
    }

    /// HMAC of `message` with the algorithm of the key spec (`algorithm` must match).
    pub fn mac(&self, algorithm: &str, spec: &str, message: &[u8]) -> Result<Vec<u8>, UseError> {
        match self {
            PrivateKey::Hmac(key) if mac_algorithms(spec).iter().any(|a| a == algorithm) => {
                Ok(hmac::sign(key, message).as_ref().to_vec())
            }
            _ => Err(UseError::IncompatibleAlgorithm),
        }
    }

    /// Constant-time check of a MAC.
    pub fn verify_mac(
        &self,
        algorithm: &str,
        spec: &str,
        message: &[u8],
        mac: &[u8],
    ) -> Result<bool, UseError> {
        match self {
            PrivateKey::Hmac(key) if mac_algorithms(spec).iter().any(|a| a == algorithm) => {
                Ok(hmac::verify(key, message, mac).is_ok())
            }
            _ => Err(UseError::IncompatibleAlgorithm),
        }
    }
}

type RsaAlgorithm = (
    &'static dyn signature::RsaEncoding,
    &'static signature::RsaParameters,
    &'static digest::Algorithm,
);

fn rsa_algorithm(name: &str) -> Option<RsaAlgorithm> {
    Some(match name {
        "RSASSA_PSS_SHA_256" => (
            &signature::RSA_PSS_SHA256,
            &signature::RSA_PSS_2048_8192_SHA256,
            &digest::SHA256,
        ),
        "RSASSA_PSS_SHA_384" => (
            &signature::RSA_PSS_SHA384,
            &signature::RSA_PSS_2048_8192_SHA384,
            &digest::SHA384,
        ),
        "RSASSA_PSS_SHA_512" => (
            &signature::RSA_PSS_SHA512,
            &signature::RSA_PSS_2048_8192_SHA512,
            &digest::SHA512,
        ),
        "RSASSA_PKCS1_V1_5_SHA_256" => (
            &signature::RSA_PKCS1_SHA256,
            &signature::RSA_PKCS1_2048_8192_SHA256,
            &digest::SHA256,
        ),
        "RSASSA_PKCS1_V1_5_SHA_384" => (
            &signature::RSA_PKCS1_SHA384,
            &signature::RSA_PKCS1_2048_8192_SHA384,
            &digest::SHA384,
        ),
        "RSASSA_PKCS1_V1_5_SHA_512" => (
            &signature::RSA_PKCS1_SHA512,
            &signature::RSA_PKCS1_2048_8192_SHA512,
            &digest::SHA512,
        ),
        _ => return None,
    })
}

fn import_digest(message: &[u8], hash: &'static digest::Algorithm) -> Result<Digest, UseError> {
    Digest::import_less_safe(message, hash).map_err(|_| UseError::DigestLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imported_material_must_fit_the_key_spec() {
        let (_, rsa) = PrivateKey::generate("RSA_2048", KEY_USAGE_SIGN_VERIFY).unwrap();
        assert!(PrivateKey::from_imported("RSA_2048", KEY_USAGE_SIGN_VERIFY, &rsa).is_ok());
        assert!(PrivateKey::from_imported("RSA_2048", "ENCRYPT_DECRYPT", &rsa).is_ok());
        for other in ["RSA_3072", "RSA_4096", "ECC_NIST_P256"] {
            assert!(
                PrivateKey::from_imported(other, KEY_USAGE_SIGN_VERIFY, &rsa).is_err(),
                "{other}"
            );
        }
        let (_, p256) = PrivateKey::generate("ECC_NIST_P256", KEY_USAGE_SIGN_VERIFY).unwrap();
        assert!(PrivateKey::from_imported("ECC_NIST_P256", KEY_USAGE_SIGN_VERIFY, &p256).is_ok());
        assert!(PrivateKey::from_imported("ECC_NIST_P256", KEY_USAGE_KEY_AGREEMENT, &p256).is_ok());
        assert!(PrivateKey::from_imported("ECC_NIST_P384", KEY_USAGE_SIGN_VERIFY, &p256).is_err());
        assert!(
            PrivateKey::from_imported("ECC_SECG_P256K1", KEY_USAGE_SIGN_VERIFY, &p256).is_err()
        );
        // HMAC: from the digest length to the hash's block size.
        for (spec, min, max) in [
            ("HMAC_224", 28, 64),
            ("HMAC_256", 32, 64),
            ("HMAC_384", 48, 128),
            ("HMAC_512", 64, 128),
        ] {
            let usage = KEY_USAGE_GENERATE_VERIFY_MAC;
            for ok in [min, max] {
                let key = PrivateKey::from_imported(spec, usage, &vec![1u8; ok]).unwrap();
                // What a restart loads back.
                assert!(PrivateKey::from_secret(spec, usage, &vec![1u8; ok]).is_ok());
                let alg = &mac_algorithms(spec)[0];
                let mac = key.mac(alg, spec, b"m").unwrap();
                assert!(key.verify_mac(alg, spec, b"m", &mac).unwrap());
            }
            for bad in [min - 1, max + 1] {
                assert!(
                    PrivateKey::from_imported(spec, usage, &vec![1u8; bad]).is_err(),
                    "{spec} {bad}"
                );
            }
        }
    }

    #[test]
    fn every_spec_signs_and_verifies_raw_and_digest() {
        for spec in [
            "RSA_2048",
            "ECC_NIST_P256",
            "ECC_NIST_P384",
            "ECC_NIST_P521",
            "ECC_SECG_P256K1",
        ] {
            let (key, secret) = PrivateKey::generate(spec, KEY_USAGE_SIGN_VERIFY).unwrap();
            let again = PrivateKey::from_secret(spec, KEY_USAGE_SIGN_VERIFY, &secret).unwrap();
            assert_eq!(key.public_key_der(), again.public_key_der());
            for alg in signing_algorithms(spec, KEY_USAGE_SIGN_VERIFY) {
                let sig = key.sign(&alg, b"message", false).unwrap();
                assert!(
                    again.verify(&alg, b"message", false, &sig).unwrap(),
                    "{spec} {alg}"
                );
                assert!(!again.verify(&alg, b"messagf", false, &sig).unwrap());
                let hash = if alg.ends_with("256") {
                    &digest::SHA256
                } else if alg.ends_with("384") {
                    &digest::SHA384
                } else {
                    &digest::SHA512
                };
                let d = digest::digest(hash, b"message");
                let dsig = key.sign(&alg, d.as_ref(), true).unwrap();
                assert!(key.verify(&alg, b"message", false, &dsig).unwrap());
                assert!(key.verify(&alg, d.as_ref(), true, &sig).unwrap());
                assert_eq!(
                    key.sign(&alg, &d.as_ref()[1..], true),
                    Err(UseError::DigestLength)
                );
            }
            assert_eq!(
                key.sign("RSASSA_PSS_SHA_256", b"m", false).err(),
                if spec.starts_with("RSA") {
                    None
                } else {
                    Some(UseError::IncompatibleAlgorithm)
                }
            );
        }
    }

    #[test]
    fn rsa_encryption_keys_encrypt_within_the_oaep_limits() {
        let (key, secret) = PrivateKey::generate("RSA_2048", "ENCRYPT_DECRYPT").unwrap();
        let again = PrivateKey::from_secret("RSA_2048", "ENCRYPT_DECRYPT", &secret).unwrap();
        for (alg, max) in [("RSAES_OAEP_SHA_1", 214), ("RSAES_OAEP_SHA_256", 190)] {
            let ct = key.encrypt(alg, &vec![7u8; max]).unwrap();
            assert_eq!(ct.len(), 256);
            assert_eq!(
                again.decrypt(alg, &ct).unwrap().unwrap().as_slice(),
                vec![7u8; max]
            );
            assert_eq!(
                key.encrypt(alg, &vec![7u8; max + 1]),
                Err(EncryptError::TooLong(max))
            );
            let mut bad = ct.clone();
            bad[10] ^= 1;
            assert!(again.decrypt(alg, &bad).unwrap().is_none());
        }
        assert_eq!(
            key.encrypt("SYMMETRIC_DEFAULT", b"x"),
            Err(EncryptError::IncompatibleAlgorithm)
        );
        assert!(key.sign("RSASSA_PSS_SHA_256", b"m", false).is_err());
    }

    #[test]
    fn hmac_keys_mac_with_their_algorithm_only() {
        let (key, secret) =
            PrivateKey::generate("HMAC_384", KEY_USAGE_GENERATE_VERIFY_MAC).unwrap();
        assert_eq!(secret.len(), 48);
        let mac = key.mac("HMAC_SHA_384", "HMAC_384", b"m").unwrap();
        assert_eq!(mac.len(), 48);
        assert!(
            key.verify_mac("HMAC_SHA_384", "HMAC_384", b"m", &mac)
                .unwrap()
        );
        assert!(
            !key.verify_mac("HMAC_SHA_384", "HMAC_384", b"n", &mac)
                .unwrap()
        );
        assert_eq!(
            key.mac("HMAC_SHA_256", "HMAC_384", b"m"),
            Err(UseError::IncompatibleAlgorithm)
        );
        // RFC 4231 test case 2 (HMAC-SHA-256, key "Jefe").
        let k = PrivateKey::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, b"Jefe")));
        assert_eq!(
            hex::encode(
                k.mac("HMAC_SHA_256", "HMAC_256", b"what do ya want for nothing?")
                    .unwrap()
            ),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
