//! The AWS SDK for Rust (aws-sdk-kms) against the whole stack for the KMS API
//! beyond symmetric keys: grants, data key pairs, Sign / Verify and GetPublicKey,
//! GenerateMac / VerifyMac, DeriveSharedSecret, rotation, imported key material
//! and multi-Region keys, aliases and tags, plus the operations this KMS does not
//! serve.
//!
//! What KMS returns is checked independently where it can be (aws-lc-rs verifies
//! signatures, derives the ECDH secret from the other side, wraps the material to
//! import and opens a ciphertext under it), and every operation meets at least one
//! of its modelled errors, asserted by the SDK's typed error variant.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement;
use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrapPadded};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey};
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::{Blob, DateTime};
use aws_sdk_kms::types::{
    AlgorithmSpec, DataKeyPairSpec, ExpirationModelType, GrantConstraints, GrantOperation,
    KeyAgreementAlgorithmSpec, KeySpec, KeyState, KeyUsageType, MacAlgorithmSpec, MessageType,
    MultiRegionKeyType, OriginType, RotationType, SigningAlgorithmSpec, Tag, WrappingKeySpec,
};
use kms_e2e::{
    ACCOUNT_A, ACCOUNT_B, error_code as code, kms_client as client, start_stack,
    start_stack_in_regions,
};

const EAST: &str = "us-east-1";
const WEST: &str = "us-west-2";
const EU: &str = "eu-west-1";

fn root_arn(account: (&str, &str, &str)) -> String {
    format!("arn:aws:iam::{}:root", account.0)
}

/// A new key of account A: (key id, key ARN).
async fn new_key(kms: &Client, spec: KeySpec, usage: KeyUsageType) -> (String, String) {
    let out = kms
        .create_key()
        .key_spec(spec)
        .key_usage(usage)
        .send()
        .await
        .unwrap();
    let md = out.key_metadata().unwrap();
    (md.key_id().to_string(), md.arn().unwrap().to_string())
}

async fn symmetric_key(kms: &Client) -> (String, String) {
    new_key(kms, KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt).await
}

fn x509_der(public: PublicKeyX509Der<'_>) -> Vec<u8> {
    public.as_ref().to_vec()
}

#[tokio::test]
async fn grants_give_and_take_away_access() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(dir.path()).await.unwrap();
    let kms = client(&stack, ACCOUNT_A, EAST);
    let kms_b = client(&stack, ACCOUNT_B, EAST);
    let (key_id, arn) = symmetric_key(&kms).await;
    let grantee = root_arn(ACCOUNT_B);

    // The default key policy does not name account B.
    let err = kms_b
        .encrypt()
        .key_id(&arn)
        .plaintext(Blob::new(b"x".to_vec()))
        .encryption_context("app", "e2e")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "AccessDeniedException");

    let constraints = GrantConstraints::builder()
        .encryption_context_subset("app", "e2e")
        .build();
    let grant = kms
        .create_grant()
        .key_id(&key_id)
        .grantee_principal(&grantee)
        .retiring_principal(root_arn(ACCOUNT_A))
        .operations(GrantOperation::Encrypt)
        .operations(GrantOperation::Decrypt)
        .constraints(constraints.clone())
        .name("e2e-grant")
        .send()
        .await
        .unwrap();
    let grant_id = grant.grant_id().unwrap().to_string();
    assert_eq!(grant_id.len(), 64);
    assert!(grant_id.bytes().all(|b| b.is_ascii_hexdigit()));
    let token = grant.grant_token().unwrap().to_string();
    assert!(!token.is_empty());
    // Idempotent by name with the same parameters.
    let again = kms
        .create_grant()
        .key_id(&key_id)
        .grantee_principal(&grantee)
        .retiring_principal(root_arn(ACCOUNT_A))
        .operations(GrantOperation::Encrypt)
        .operations(GrantOperation::Decrypt)
        .constraints(constraints)
        .name("e2e-grant")
        .send()
        .await
        .unwrap();
    assert_eq!(again.grant_id(), Some(grant_id.as_str()));

    // The grantee encrypts with the grant token (the key ARN: another account's
    // key) and decrypts, within the constraint.
    let enc = kms_b
        .encrypt()
        .key_id(&arn)
        .plaintext(Blob::new(b"via grant".to_vec()))
        .encryption_context("app", "e2e")
        .encryption_context("extra", "allowed by subset")
        .grant_tokens(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(enc.key_id(), Some(arn.as_str()));
    let blob = enc.ciphertext_blob().unwrap().clone();
    let dec = kms_b
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("app", "e2e")
        .encryption_context("extra", "allowed by subset")
        .grant_tokens(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"via grant");
    // Outside the constraint, and an operation the grant does not give.
    let err = kms_b
        .encrypt()
        .key_id(&arn)
        .plaintext(Blob::new(b"x".to_vec()))
        .encryption_context("app", "other")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "AccessDeniedException");
    let err = kms_b
        .generate_data_key()
        .key_id(&arn)
        .number_of_bytes(32)
        .encryption_context("app", "e2e")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "AccessDeniedException");
    // A malformed grant token is refused as such.
    let err = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"x".to_vec()))
        .grant_tokens("not a grant token")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_invalid_grant_token_exception(),
        "{err:?}"
    );

    // ListGrants: the grant as created, and its filters.
    let listed = kms.list_grants().key_id(&key_id).send().await.unwrap();
    assert_eq!(listed.grants().len(), 1);
    assert!(!listed.truncated());
    let entry = &listed.grants()[0];
    assert_eq!(entry.grant_id(), Some(grant_id.as_str()));
    assert_eq!(entry.key_id(), Some(arn.as_str()));
    assert_eq!(entry.name(), Some("e2e-grant"));
    assert_eq!(entry.grantee_principal(), Some(grantee.as_str()));
    assert_eq!(
        entry.retiring_principal(),
        Some(root_arn(ACCOUNT_A).as_str())
    );
    assert_eq!(entry.issuing_account(), Some(root_arn(ACCOUNT_A).as_str()));
    assert_eq!(
        entry.operations(),
        [GrantOperation::Encrypt, GrantOperation::Decrypt]
    );
    let subset = entry
        .constraints()
        .unwrap()
        .encryption_context_subset()
        .unwrap();
    assert_eq!(subset.get("app").map(String::as_str), Some("e2e"));
    assert!(entry.creation_date().is_some());
    let by_id = kms
        .list_grants()
        .key_id(&key_id)
        .grant_id(&grant_id)
        .send()
        .await
        .unwrap();
    assert_eq!(by_id.grants().len(), 1);
    let by_other_grantee = kms
        .list_grants()
        .key_id(&key_id)
        .grantee_principal("arn:aws:iam::111122223333:user/nobody")
        .send()
        .await
        .unwrap();
    assert!(by_other_grantee.grants().is_empty());
    let err = kms
        .list_grants()
        .key_id(&key_id)
        .grant_id("xyz")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_invalid_grant_id_exception(),
        "{err:?}"
    );

    // ListRetirableGrants: account A's root is the retiring principal.
    let retirable = kms
        .list_retirable_grants()
        .retiring_principal(root_arn(ACCOUNT_A))
        .send()
        .await
        .unwrap();
    assert_eq!(
        retirable
            .grants()
            .iter()
            .map(|g| g.grant_id().unwrap())
            .collect::<Vec<_>>(),
        [grant_id.as_str()]
    );

    // RetireGrant by token alone; a second retirement finds nothing.
    let second = kms
        .create_grant()
        .key_id(&key_id)
        .grantee_principal(&grantee)
        .operations(GrantOperation::DescribeKey)
        .send()
        .await
        .unwrap();
    let described = kms_b.describe_key().key_id(&arn).send().await.unwrap();
    assert_eq!(described.key_metadata().unwrap().key_id(), key_id);
    kms.retire_grant()
        .grant_token(second.grant_token().unwrap())
        .send()
        .await
        .unwrap();
    let err = kms_b.describe_key().key_id(&arn).send().await.unwrap_err();
    assert_eq!(code(err), "AccessDeniedException");
    let err = kms
        .retire_grant()
        .grant_token(second.grant_token().unwrap())
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_not_found_exception(),
        "{err:?}"
    );
    let err = kms
        .retire_grant()
        .grant_token("garbage")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_invalid_grant_token_exception(),
        "{err:?}"
    );

    // RevokeGrant takes the access away at once.
    kms.revoke_grant()
        .key_id(&key_id)
        .grant_id(&grant_id)
        .send()
        .await
        .unwrap();
    let err = kms_b
        .decrypt()
        .ciphertext_blob(blob)
        .encryption_context("app", "e2e")
        .encryption_context("extra", "allowed by subset")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "AccessDeniedException");
    let err = kms
        .revoke_grant()
        .key_id(&key_id)
        .grant_id(&grant_id)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_not_found_exception(),
        "{err:?}"
    );
    let err = kms
        .revoke_grant()
        .key_id(&key_id)
        .grant_id("not-a-grant-id")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_invalid_grant_id_exception(),
        "{err:?}"
    );
    let err = kms
        .create_grant()
        .key_id("0badc0de-0000-4000-8000-000000000000")
        .grantee_principal(&grantee)
        .operations(GrantOperation::Encrypt)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_not_found_exception(),
        "{err:?}"
    );
    assert!(
        kms.list_grants()
            .key_id(&key_id)
            .send()
            .await
            .unwrap()
            .grants()
            .is_empty()
    );
    stack.shutdown().await.unwrap();
}

#[tokio::test]
async fn data_key_pairs_are_usable_key_pairs_sealed_under_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(dir.path()).await.unwrap();
    let kms = client(&stack, ACCOUNT_A, EAST);
    let (key_id, arn) = symmetric_key(&kms).await;
    let rng = SystemRandom::new();

    // ECC: the PKCS#8 private key signs, the returned SPKI verifies.
    let out = kms
        .generate_data_key_pair()
        .key_id(&key_id)
        .key_pair_spec(DataKeyPairSpec::EccNistP256)
        .encryption_context("purpose", "pair")
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_id(), Some(arn.as_str()));
    assert_eq!(out.key_pair_spec(), Some(&DataKeyPairSpec::EccNistP256));
    let pkcs8 = out.private_key_plaintext().unwrap().as_ref();
    let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8).unwrap();
    let spki = out.public_key().unwrap().as_ref();
    assert_eq!(x509_der(pair.public_key().as_der().unwrap()), spki);
    let sig = pair.sign(&rng, b"message").unwrap();
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, spki)
        .verify(b"message", sig.as_ref())
        .unwrap();
    // The private key blob is an ordinary ciphertext under the key and context.
    let opened = kms
        .decrypt()
        .ciphertext_blob(out.private_key_ciphertext_blob().unwrap().clone())
        .encryption_context("purpose", "pair")
        .send()
        .await
        .unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), pkcs8);
    let err = kms
        .decrypt()
        .ciphertext_blob(out.private_key_ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_invalid_ciphertext_exception(),
        "{err:?}"
    );

    // RSA, without the plaintext: the decrypted PKCS#8 matches the public key.
    let out = kms
        .generate_data_key_pair_without_plaintext()
        .key_id(&arn)
        .key_pair_spec(DataKeyPairSpec::Rsa2048)
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_id(), Some(arn.as_str()));
    assert_eq!(out.key_pair_spec(), Some(&DataKeyPairSpec::Rsa2048));
    let plain = kms
        .decrypt()
        .ciphertext_blob(out.private_key_ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    let rsa = RsaKeyPair::from_pkcs8(plain.plaintext().unwrap().as_ref()).unwrap();
    assert_eq!(rsa.public_modulus_len(), 256);
    let mut rsa_sig = vec![0; rsa.public_modulus_len()];
    rsa.sign(&signature::RSA_PSS_SHA256, &rng, b"m", &mut rsa_sig)
        .unwrap();
    UnparsedPublicKey::new(
        &signature::RSA_PSS_2048_8192_SHA256,
        out.public_key().unwrap().as_ref(),
    )
    .verify(b"m", &rsa_sig)
    .unwrap();

    // Modelled errors: a signing key, a disabled key.
    let (signing, _) = new_key(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let err = kms
        .generate_data_key_pair()
        .key_id(&signing)
        .key_pair_spec(DataKeyPairSpec::Rsa2048)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_invalid_key_usage_exception(),
        "{err:?}"
    );
    kms.disable_key().key_id(&key_id).send().await.unwrap();
    let err = kms
        .generate_data_key_pair_without_plaintext()
        .key_id(&key_id)
        .key_pair_spec(DataKeyPairSpec::EccNistP384)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_disabled_exception(),
        "{err:?}"
    );
    stack.shutdown().await.unwrap();
}

#[tokio::test]
async fn sign_verify_and_get_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(dir.path()).await.unwrap();
    let kms = client(&stack, ACCOUNT_A, EAST);

    // ECDSA P-256: RAW and DIGEST messages, checked with the public key.
    let (ec_id, ec_arn) = new_key(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let public = kms.get_public_key().key_id(&ec_id).send().await.unwrap();
    assert_eq!(public.key_id(), Some(ec_arn.as_str()));
    assert_eq!(public.key_spec(), Some(&KeySpec::EccNistP256));
    assert_eq!(public.key_usage(), Some(&KeyUsageType::SignVerify));
    assert_eq!(
        public.signing_algorithms(),
        [SigningAlgorithmSpec::EcdsaSha256]
    );
    assert!(public.encryption_algorithms().is_empty());
    let ec_public = public.public_key().unwrap().as_ref().to_vec();
    let message = b"the message signed by KMS";
    let raw = kms
        .sign()
        .key_id(&ec_id)
        .message(Blob::new(message.to_vec()))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.key_id(), Some(ec_arn.as_str()));
    assert_eq!(
        raw.signing_algorithm(),
        Some(&SigningAlgorithmSpec::EcdsaSha256)
    );
    let raw_sig = raw.signature().unwrap().as_ref().to_vec();
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &ec_public)
        .verify(message, &raw_sig)
        .unwrap();
    let digest = digest::digest(&digest::SHA256, message);
    let by_digest = kms
        .sign()
        .key_id(&ec_arn)
        .message(Blob::new(digest.as_ref().to_vec()))
        .message_type(MessageType::Digest)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap();
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &ec_public)
        .verify(message, by_digest.signature().unwrap().as_ref())
        .unwrap();
    let verified = kms
        .verify()
        .key_id(&ec_id)
        .message(Blob::new(message.to_vec()))
        .signature(Blob::new(raw_sig.clone()))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap();
    assert!(verified.signature_valid());
    assert_eq!(verified.key_id(), Some(ec_arn.as_str()));
    let err = kms
        .verify()
        .key_id(&ec_id)
        .message(Blob::new(b"another message".to_vec()))
        .signature(Blob::new(raw_sig))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_kms_invalid_signature_exception(),
        "{err:?}"
    );

    // RSA-PSS on RSA_3072, checked with the public key.
    let (rsa_id, _) = new_key(&kms, KeySpec::Rsa3072, KeyUsageType::SignVerify).await;
    let rsa_public = kms.get_public_key().key_id(&rsa_id).send().await.unwrap();
    let rsa_sig = kms
        .sign()
        .key_id(&rsa_id)
        .message(Blob::new(message.to_vec()))
        .signing_algorithm(SigningAlgorithmSpec::RsassaPssSha384)
        .send()
        .await
        .unwrap();
    assert_eq!(rsa_sig.signature().unwrap().as_ref().len(), 384);
    UnparsedPublicKey::new(
        &signature::RSA_PSS_2048_8192_SHA384,
        rsa_public.public_key().unwrap().as_ref(),
    )
    .verify(message, rsa_sig.signature().unwrap().as_ref())
    .unwrap();

    // Modelled errors: a symmetric key neither signs nor has a public key; an
    // algorithm of another key spec.
    let (symmetric, _) = symmetric_key(&kms).await;
    let err = kms
        .sign()
        .key_id(&symmetric)
        .message(Blob::new(b"m".to_vec()))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_invalid_key_usage_exception(),
        "{err:?}"
    );
    let err = kms
        .sign()
        .key_id(&ec_id)
        .message(Blob::new(b"m".to_vec()))
        .signing_algorithm(SigningAlgorithmSpec::RsassaPssSha256)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_invalid_key_usage_exception(),
        "{err:?}"
    );
    let err = kms
        .get_public_key()
        .key_id(&symmetric)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_unsupported_operation_exception(),
        "{err:?}"
    );
    let err = kms
        .get_public_key()
        .key_id("alias/none")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_not_found_exception(),
        "{err:?}"
    );
    stack.shutdown().await.unwrap();
}

#[tokio::test]
async fn generate_and_verify_mac() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(dir.path()).await.unwrap();
    let kms = client(&stack, ACCOUNT_A, EAST);
    let (key_id, arn) = new_key(&kms, KeySpec::Hmac384, KeyUsageType::GenerateVerifyMac).await;
    let described = kms.describe_key().key_id(&key_id).send().await.unwrap();
    assert_eq!(
        described.key_metadata().unwrap().mac_algorithms(),
        [MacAlgorithmSpec::HmacSha384]
    );

    let mac = kms
        .generate_mac()
        .key_id(&key_id)
        .message(Blob::new(b"message".to_vec()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha384)
        .send()
        .await
        .unwrap();
    assert_eq!(mac.key_id(), Some(arn.as_str()));
    assert_eq!(mac.mac_algorithm(), Some(&MacAlgorithmSpec::HmacSha384));
    let tag = mac.mac().unwrap().as_ref().to_vec();
    assert_eq!(tag.len(), 48);
    // HMAC is deterministic: the same message gives the same tag.
    let again = kms
        .generate_mac()
        .key_id(&arn)
        .message(Blob::new(b"message".to_vec()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha384)
        .send()
        .await
        .unwrap();
    assert_eq!(again.mac().unwrap().as_ref(), tag.as_slice());
    let ok = kms
        .verify_mac()
        .key_id(&key_id)
        .message(Blob::new(b"message".to_vec()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha384)
        .mac(Blob::new(tag.clone()))
        .send()
        .await
        .unwrap();
    assert!(ok.mac_valid());
    assert_eq!(ok.key_id(), Some(arn.as_str()));

    let mut tampered = tag.clone();
    tampered[0] ^= 1;
    let err = kms
        .verify_mac()
        .key_id(&key_id)
        .message(Blob::new(b"message".to_vec()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha384)
        .mac(Blob::new(tampered))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_kms_invalid_mac_exception(),
        "{err:?}"
    );
    let err = kms
        .generate_mac()
        .key_id(&key_id)
        .message(Blob::new(b"message".to_vec()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_invalid_key_usage_exception(),
        "{err:?}"
    );
    let (symmetric, _) = symmetric_key(&kms).await;
    let err = kms
        .verify_mac()
        .key_id(&symmetric)
        .message(Blob::new(b"message".to_vec()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha384)
        .mac(Blob::new(tag))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_invalid_key_usage_exception(),
        "{err:?}"
    );
    stack.shutdown().await.unwrap();
}

#[tokio::test]
async fn derive_shared_secret_matches_the_other_side() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(dir.path()).await.unwrap();
    let kms = client(&stack, ACCOUNT_A, EAST);
    let (key_id, arn) = new_key(&kms, KeySpec::EccNistP384, KeyUsageType::KeyAgreement).await;
    let public = kms.get_public_key().key_id(&key_id).send().await.unwrap();
    assert_eq!(public.key_usage(), Some(&KeyUsageType::KeyAgreement));
    assert_eq!(
        public.key_agreement_algorithms(),
        [KeyAgreementAlgorithmSpec::Ecdh]
    );
    let kms_public = public.public_key().unwrap().as_ref().to_vec();

    let peer = agreement::PrivateKey::generate(&agreement::ECDH_P384).unwrap();
    let peer_spki = x509_der(peer.compute_public_key().unwrap().as_der().unwrap());
    let out = kms
        .derive_shared_secret()
        .key_id(&key_id)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(Blob::new(peer_spki.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_id(), Some(arn.as_str()));
    assert_eq!(
        out.key_agreement_algorithm(),
        Some(&KeyAgreementAlgorithmSpec::Ecdh)
    );
    assert_eq!(out.key_origin(), Some(&OriginType::AwsKms));
    let expected = agreement::agree(
        &peer,
        agreement::UnparsedPublicKey::new(&agreement::ECDH_P384, &kms_public),
        aws_lc_rs::error::Unspecified,
        |secret| Ok(secret.to_vec()),
    )
    .unwrap();
    assert_eq!(expected.len(), 48);
    assert_eq!(out.shared_secret().unwrap().as_ref(), expected.as_slice());

    // Modelled errors: a key of another usage; a disabled key.
    let (symmetric, _) = symmetric_key(&kms).await;
    let err = kms
        .derive_shared_secret()
        .key_id(&symmetric)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(Blob::new(peer_spki.clone()))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_invalid_key_usage_exception(),
        "{err:?}"
    );
    kms.disable_key().key_id(&key_id).send().await.unwrap();
    let err = kms
        .derive_shared_secret()
        .key_id(&key_id)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(Blob::new(peer_spki))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_disabled_exception(),
        "{err:?}"
    );
    stack.shutdown().await.unwrap();
}

#[tokio::test]
async fn rotation_keeps_old_ciphertexts() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(dir.path()).await.unwrap();
    let kms = client(&stack, ACCOUNT_A, EAST);
    let (key_id, arn) = symmetric_key(&kms).await;

    let status = kms
        .get_key_rotation_status()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    assert!(!status.key_rotation_enabled());
    kms.enable_key_rotation()
        .key_id(&key_id)
        .rotation_period_in_days(90)
        .send()
        .await
        .unwrap();
    let status = kms
        .get_key_rotation_status()
        .key_id(&arn)
        .send()
        .await
        .unwrap();
    assert!(status.key_rotation_enabled());
    assert_eq!(status.rotation_period_in_days(), Some(90));
    assert_eq!(status.key_id(), Some(arn.as_str()));
    let next = status.next_rotation_date().unwrap().secs();
    let created = kms
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .creation_date()
        .unwrap()
        .secs();
    assert!(
        (next - created - 90 * 86_400).abs() < 600,
        "next rotation 90 days after enabling"
    );

    let before = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"before rotation".to_vec()))
        .send()
        .await
        .unwrap();
    let material_before = kms
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .current_key_material_id()
        .unwrap()
        .to_string();
    assert!(
        kms.list_key_rotations()
            .key_id(&key_id)
            .send()
            .await
            .unwrap()
            .rotations()
            .is_empty()
    );
    let rotated = kms
        .rotate_key_on_demand()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.key_id(), Some(key_id.as_str()));
    let material_after = kms
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .current_key_material_id()
        .unwrap()
        .to_string();
    assert_ne!(material_after, material_before);
    let rotations = kms
        .list_key_rotations()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    assert!(!rotations.truncated());
    assert_eq!(rotations.rotations().len(), 1);
    let entry = &rotations.rotations()[0];
    assert_eq!(entry.rotation_type(), Some(&RotationType::OnDemand));
    assert_eq!(entry.key_material_id(), Some(material_after.as_str()));
    assert!(entry.rotation_date().is_some());
    // The old ciphertext decrypts; the new one is sealed under the new material.
    let old = kms
        .decrypt()
        .ciphertext_blob(before.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(old.plaintext().unwrap().as_ref(), b"before rotation");
    let after = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"after rotation".to_vec()))
        .send()
        .await
        .unwrap();
    let new = kms
        .decrypt()
        .ciphertext_blob(after.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(new.plaintext().unwrap().as_ref(), b"after rotation");
    assert_ne!(
        before.ciphertext_blob().unwrap().as_ref()[38..42],
        after.ciphertext_blob().unwrap().as_ref()[38..42],
        "another material id in the blob header"
    );

    kms.disable_key_rotation()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    assert!(
        !kms.get_key_rotation_status()
            .key_id(&key_id)
            .send()
            .await
            .unwrap()
            .key_rotation_enabled()
    );

    // Modelled errors: asymmetric keys do not rotate; a disabled key; no key.
    let (signing, _) = new_key(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let err = kms
        .enable_key_rotation()
        .key_id(&signing)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_unsupported_operation_exception(),
        "{err:?}"
    );
    let err = kms
        .rotate_key_on_demand()
        .key_id(&signing)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_unsupported_operation_exception(),
        "{err:?}"
    );
    kms.disable_key().key_id(&key_id).send().await.unwrap();
    let err = kms
        .rotate_key_on_demand()
        .key_id(&key_id)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_disabled_exception(),
        "{err:?}"
    );
    let err = kms
        .enable_key_rotation()
        .key_id(&key_id)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_disabled_exception(),
        "{err:?}"
    );
    let missing = "0badc0de-0000-4000-8000-000000000000";
    let err = kms
        .get_key_rotation_status()
        .key_id(missing)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_not_found_exception(),
        "{err:?}"
    );
    let err = kms
        .disable_key_rotation()
        .key_id(missing)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_not_found_exception(),
        "{err:?}"
    );
    let err = kms
        .list_key_rotations()
        .key_id(missing)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_not_found_exception(),
        "{err:?}"
    );
    stack.shutdown().await.unwrap();
}

/// RSAES-OAEP-SHA-256 of `plaintext` under the DER SubjectPublicKeyInfo `spki`.
fn oaep_sha256(spki: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let key = OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(spki).unwrap()).unwrap();
    let mut out = vec![0; key.ciphertext_size()];
    let len = key
        .encrypt(&OAEP_SHA256_MGF1SHA256, plaintext, &mut out, None)
        .unwrap()
        .len();
    out.truncate(len);
    out
}

/// RSA_AES_KEY_WRAP_SHA_256: a fresh AES-256 key under RSAES-OAEP-SHA-256, then
/// the material under that key with AES key wrap with padding (RFC 5649).
fn rsa_aes_key_wrap_sha256(spki: &[u8], material: &[u8]) -> Vec<u8> {
    let mut aes_key = [0u8; 32];
    SystemRandom::new().fill(&mut aes_key).unwrap();
    let mut out = oaep_sha256(spki, &aes_key);
    let kek = AesKek::new(&AES_256, &aes_key).unwrap();
    let mut wrapped = vec![0; material.len() + 15];
    let len = kek.wrap_with_padding(material, &mut wrapped).unwrap().len();
    out.extend_from_slice(&wrapped[..len]);
    out
}

/// Opens a version-1 ciphertext blob (docs/CIPHERTEXT.md) with an empty
/// encryption context under `material`.
fn open_locally(blob: &[u8], material: &[u8]) -> Vec<u8> {
    assert_eq!(blob[0], 1, "blob version");
    let header_len = 2 + usize::from(blob[1]) + 4 + 12;
    let nonce = Nonce::try_assume_unique_for_key(&blob[header_len - 12..header_len]).unwrap();
    let mut aad = blob[..header_len].to_vec();
    aad.extend_from_slice(&0u32.to_be_bytes());
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, material).unwrap());
    let mut in_out = blob[header_len..].to_vec();
    key.open_in_place(nonce, Aad::from(aad), &mut in_out)
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn imported_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(dir.path()).await.unwrap();
    let kms = client(&stack, ACCOUNT_A, EAST);
    let created = kms
        .create_key()
        .origin(OriginType::External)
        .send()
        .await
        .unwrap();
    let md = created.key_metadata().unwrap();
    let key_id = md.key_id().to_string();
    let arn = md.arn().unwrap().to_string();
    assert_eq!(md.origin(), Some(&OriginType::External));
    assert_eq!(md.key_state(), Some(&KeyState::PendingImport));
    assert!(!md.enabled());

    let params = kms
        .get_parameters_for_import()
        .key_id(&key_id)
        .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(WrappingKeySpec::Rsa2048)
        .send()
        .await
        .unwrap();
    assert_eq!(params.key_id(), Some(arn.as_str()));
    let valid_for = params.parameters_valid_to().unwrap().secs()
        - DateTime::from(std::time::SystemTime::now()).secs();
    assert!((86_100..=86_460).contains(&valid_for), "{valid_for}");
    let spki = params.public_key().unwrap().as_ref().to_vec();
    let token = params.import_token().unwrap().clone();
    let mut material = [0u8; 32];
    SystemRandom::new().fill(&mut material).unwrap();

    // Modelled errors first: nothing here changes the key.
    let mut damaged = token.as_ref().to_vec();
    *damaged.last_mut().unwrap() ^= 1;
    let err = kms
        .import_key_material()
        .key_id(&key_id)
        .import_token(Blob::new(damaged))
        .encrypted_key_material(Blob::new(oaep_sha256(&spki, &material)))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_invalid_import_token_exception(),
        "{err:?}"
    );
    let err = kms
        .import_key_material()
        .key_id(&key_id)
        .import_token(token.clone())
        .encrypted_key_material(Blob::new(vec![0; 256]))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_invalid_ciphertext_exception(),
        "{err:?}"
    );
    let err = kms
        .import_key_material()
        .key_id(&key_id)
        .import_token(token.clone())
        .encrypted_key_material(Blob::new(oaep_sha256(&spki, &material[..16])))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_incorrect_key_material_exception(),
        "{err:?}"
    );
    let err = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_kms_invalid_state_exception(),
        "{err:?}"
    );

    let imported = kms
        .import_key_material()
        .key_id(&key_id)
        .import_token(token)
        .encrypted_key_material(Blob::new(oaep_sha256(&spki, &material)))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .unwrap();
    assert_eq!(imported.key_id(), Some(arn.as_str()));
    let md = kms.describe_key().key_id(&key_id).send().await.unwrap();
    let md = md.key_metadata().unwrap();
    assert_eq!(md.key_state(), Some(&KeyState::Enabled));
    assert_eq!(
        md.expiration_model(),
        Some(&ExpirationModelType::KeyMaterialDoesNotExpire)
    );
    assert!(md.valid_to().is_none());
    // KMS really encrypts under the imported material.
    let blob = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"imported".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    assert_eq!(open_locally(blob.as_ref(), &material), b"imported");

    // DeleteImportedKeyMaterial: PendingImport, nothing decrypts.
    let deleted = kms
        .delete_imported_key_material()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.key_id(), Some(arn.as_str()));
    let md = kms.describe_key().key_id(&key_id).send().await.unwrap();
    assert_eq!(
        md.key_metadata().unwrap().key_state(),
        Some(&KeyState::PendingImport)
    );
    let err = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_kms_invalid_state_exception(),
        "{err:?}"
    );
    let err = kms
        .delete_imported_key_material()
        .key_id(&key_id)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_kms_invalid_state_exception(),
        "{err:?}"
    );

    // Re-import the same material with RSA_AES_KEY_WRAP_SHA_256, expiring.
    let params = kms
        .get_parameters_for_import()
        .key_id(&arn)
        .wrapping_algorithm(AlgorithmSpec::RsaAesKeyWrapSha256)
        .wrapping_key_spec(WrappingKeySpec::Rsa3072)
        .send()
        .await
        .unwrap();
    let spki = params.public_key().unwrap().as_ref().to_vec();
    let mut other = [0u8; 32];
    SystemRandom::new().fill(&mut other).unwrap();
    let err = kms
        .import_key_material()
        .key_id(&key_id)
        .import_token(params.import_token().unwrap().clone())
        .encrypted_key_material(Blob::new(rsa_aes_key_wrap_sha256(&spki, &other)))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_incorrect_key_material_exception(),
        "{err:?}"
    );
    let valid_to =
        DateTime::from_secs(DateTime::from(std::time::SystemTime::now()).secs() + 30 * 86_400);
    kms.import_key_material()
        .key_id(&key_id)
        .import_token(params.import_token().unwrap().clone())
        .encrypted_key_material(Blob::new(rsa_aes_key_wrap_sha256(&spki, &material)))
        .expiration_model(ExpirationModelType::KeyMaterialExpires)
        .valid_to(valid_to)
        .send()
        .await
        .unwrap();
    let md = kms.describe_key().key_id(&key_id).send().await.unwrap();
    let md = md.key_metadata().unwrap();
    assert_eq!(md.key_state(), Some(&KeyState::Enabled));
    assert_eq!(
        md.expiration_model(),
        Some(&ExpirationModelType::KeyMaterialExpires)
    );
    assert_eq!(md.valid_to().unwrap().secs(), valid_to.secs());
    let dec = kms.decrypt().ciphertext_blob(blob).send().await.unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"imported");

    // Keys of AWS_KMS origin take no imported material.
    let (regular, _) = symmetric_key(&kms).await;
    let err = kms
        .get_parameters_for_import()
        .key_id(&regular)
        .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(WrappingKeySpec::Rsa2048)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_unsupported_operation_exception(),
        "{err:?}"
    );
    let err = kms
        .delete_imported_key_material()
        .key_id(&regular)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_unsupported_operation_exception(),
        "{err:?}"
    );
    stack.shutdown().await.unwrap();
}

#[tokio::test]
async fn multi_region_keys_replicate_and_move_their_primary() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack_in_regions(dir.path(), &[WEST, EU])
        .await
        .unwrap();
    let east = client(&stack, ACCOUNT_A, EAST);
    let west = client(&stack, ACCOUNT_A, WEST);
    let eu = client(&stack, ACCOUNT_A, EU);

    let created = east.create_key().multi_region(true).send().await.unwrap();
    let md = created.key_metadata().unwrap();
    let key_id = md.key_id().to_string();
    let east_arn = md.arn().unwrap().to_string();
    let west_arn = format!("arn:aws:kms:{WEST}:{}:key/{key_id}", ACCOUNT_A.0);
    assert!(key_id.starts_with("mrk-") && key_id.len() == 36, "{key_id}");
    assert_eq!(md.multi_region(), Some(true));
    let config = md.multi_region_configuration().unwrap();
    assert_eq!(
        config.multi_region_key_type(),
        Some(&MultiRegionKeyType::Primary)
    );
    assert_eq!(config.primary_key().unwrap().region(), Some(EAST));
    assert!(config.replica_keys().is_empty());
    let err = west
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_not_found_exception(),
        "{err:?}"
    );

    let blob = east
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"from us-east-1".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let replica = east
        .replicate_key()
        .key_id(&key_id)
        .replica_region(WEST)
        .description("the west replica")
        .send()
        .await
        .unwrap();
    let rmd = replica.replica_key_metadata().unwrap();
    assert_eq!(rmd.key_id(), key_id);
    assert_eq!(rmd.arn(), Some(west_arn.as_str()));
    assert_eq!(rmd.description(), Some("the west replica"));
    assert_eq!(rmd.key_state(), Some(&KeyState::Enabled));
    assert_eq!(
        rmd.multi_region_configuration()
            .unwrap()
            .multi_region_key_type(),
        Some(&MultiRegionKeyType::Replica)
    );
    assert!(replica.replica_policy().unwrap().contains("\"Version\""));
    let east_md = east.describe_key().key_id(&key_id).send().await.unwrap();
    let replicas = east_md
        .key_metadata()
        .unwrap()
        .multi_region_configuration()
        .unwrap()
        .replica_keys();
    assert_eq!(replicas.len(), 1);
    assert_eq!(replicas[0].arn(), Some(west_arn.as_str()));
    assert_eq!(replicas[0].region(), Some(WEST));
    // Same material: the primary's ciphertext decrypts in the replica's Region.
    let dec = west.decrypt().ciphertext_blob(blob).send().await.unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"from us-east-1");
    assert_eq!(dec.key_id(), Some(west_arn.as_str()));

    // ReplicateKey's modelled errors.
    let err = east
        .replicate_key()
        .key_id(&key_id)
        .replica_region(WEST)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_already_exists_exception(),
        "{err:?}"
    );
    let err = west
        .replicate_key()
        .key_id(&key_id)
        .replica_region(EU)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_unsupported_operation_exception(),
        "{err:?}"
    );
    let (single, _) = symmetric_key(&east).await;
    let err = east
        .replicate_key()
        .key_id(&single)
        .replica_region(WEST)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_unsupported_operation_exception(),
        "{err:?}"
    );

    // UpdatePrimaryRegion: only to a Region with a replica, only from the primary.
    let err = east
        .update_primary_region()
        .key_id(&key_id)
        .primary_region(EU)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_not_found_exception(),
        "{err:?}"
    );
    let err = west
        .update_primary_region()
        .key_id(&key_id)
        .primary_region(WEST)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_unsupported_operation_exception(),
        "{err:?}"
    );
    east.update_primary_region()
        .key_id(&key_id)
        .primary_region(WEST)
        .send()
        .await
        .unwrap();
    let west_config = west.describe_key().key_id(&key_id).send().await.unwrap();
    let west_config = west_config
        .key_metadata()
        .unwrap()
        .multi_region_configuration()
        .unwrap();
    assert_eq!(
        west_config.multi_region_key_type(),
        Some(&MultiRegionKeyType::Primary)
    );
    assert_eq!(
        west_config.primary_key().unwrap().arn(),
        Some(west_arn.as_str())
    );
    assert_eq!(
        west_config
            .replica_keys()
            .iter()
            .map(|r| r.arn().unwrap())
            .collect::<Vec<_>>(),
        [east_arn.as_str()]
    );
    let east_config = east.describe_key().key_id(&key_id).send().await.unwrap();
    assert_eq!(
        east_config
            .key_metadata()
            .unwrap()
            .multi_region_configuration()
            .unwrap()
            .multi_region_key_type(),
        Some(&MultiRegionKeyType::Replica)
    );
    // The new primary replicates; the old one no longer does.
    west.replicate_key()
        .key_id(&key_id)
        .replica_region(EU)
        .send()
        .await
        .unwrap();
    let from_eu = eu
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"from eu-west-1".to_vec()))
        .send()
        .await
        .unwrap();
    let dec = east
        .decrypt()
        .ciphertext_blob(from_eu.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"from eu-west-1");
    assert_eq!(dec.key_id(), Some(east_arn.as_str()));
    stack.shutdown().await.unwrap();
}

#[tokio::test]
async fn aliases_move_and_tags_change() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(dir.path()).await.unwrap();
    let kms = client(&stack, ACCOUNT_A, EAST);
    let (first, _) = symmetric_key(&kms).await;
    let (second, second_arn) = symmetric_key(&kms).await;

    kms.create_alias()
        .alias_name("alias/e2e-moving")
        .target_key_id(&first)
        .send()
        .await
        .unwrap();
    let err = kms
        .create_alias()
        .alias_name("alias/e2e-moving")
        .target_key_id(&second)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_already_exists_exception(),
        "{err:?}"
    );
    // UpdateAlias moves the name to another key.
    kms.update_alias()
        .alias_name("alias/e2e-moving")
        .target_key_id(&second)
        .send()
        .await
        .unwrap();
    let enc = kms
        .encrypt()
        .key_id("alias/e2e-moving")
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(enc.key_id(), Some(second_arn.as_str()));
    let on_second = kms.list_aliases().key_id(&second).send().await.unwrap();
    assert_eq!(
        on_second
            .aliases()
            .iter()
            .map(|a| a.alias_name().unwrap())
            .collect::<Vec<_>>(),
        ["alias/e2e-moving"]
    );
    assert!(
        kms.list_aliases()
            .key_id(&first)
            .send()
            .await
            .unwrap()
            .aliases()
            .is_empty()
    );
    let err = kms
        .update_alias()
        .alias_name("alias/e2e-none")
        .target_key_id(&second)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_not_found_exception(),
        "{err:?}"
    );
    // DeleteAlias, twice.
    kms.delete_alias()
        .alias_name("alias/e2e-moving")
        .send()
        .await
        .unwrap();
    let err = kms
        .describe_key()
        .key_id("alias/e2e-moving")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_not_found_exception(),
        "{err:?}"
    );
    let err = kms
        .delete_alias()
        .alias_name("alias/e2e-moving")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_not_found_exception(),
        "{err:?}"
    );

    // TagResource adds and overwrites; UntagResource removes.
    let tag = |k: &str, v: &str| Tag::builder().tag_key(k).tag_value(v).build().unwrap();
    kms.tag_resource()
        .key_id(&first)
        .tags(tag("team", "blue"))
        .tags(tag("stage", "dev"))
        .send()
        .await
        .unwrap();
    kms.tag_resource()
        .key_id(&first)
        .tags(tag("stage", "prod"))
        .send()
        .await
        .unwrap();
    let tags_of = |out: &aws_sdk_kms::operation::list_resource_tags::ListResourceTagsOutput| {
        let mut tags: Vec<(String, String)> = out
            .tags()
            .iter()
            .map(|t| (t.tag_key().to_string(), t.tag_value().to_string()))
            .collect();
        tags.sort();
        tags
    };
    let listed = kms
        .list_resource_tags()
        .key_id(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&listed),
        [
            ("stage".to_string(), "prod".to_string()),
            ("team".to_string(), "blue".to_string())
        ]
    );
    kms.untag_resource()
        .key_id(&first)
        .tag_keys("stage")
        .send()
        .await
        .unwrap();
    let listed = kms
        .list_resource_tags()
        .key_id(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(tags_of(&listed), [("team".to_string(), "blue".to_string())]);
    let err = kms
        .tag_resource()
        .key_id(&first)
        .tags(tag("aws:reserved", "x"))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_tag_exception(),
        "{err:?}"
    );
    let err = kms
        .untag_resource()
        .key_id("0badc0de-0000-4000-8000-000000000000")
        .tag_keys("team")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_not_found_exception(),
        "{err:?}"
    );
    stack.shutdown().await.unwrap();
}

#[tokio::test]
async fn operations_not_served_answer_unsupported_operation_exception() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(dir.path()).await.unwrap();
    let kms = client(&stack, ACCOUNT_A, EAST);
    let (key_id, _) = symmetric_key(&kms).await;
    // The README's status table lists these.
    let err = kms.describe_custom_key_stores().send().await.unwrap_err();
    assert_eq!(code(err), "UnsupportedOperationException");
    let err = kms
        .create_custom_key_store()
        .custom_key_store_name("e2e")
        .cloud_hsm_cluster_id("cluster-1234567890a")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "UnsupportedOperationException");
    let store = "cks-1234567890abcdef0";
    let err = kms
        .connect_custom_key_store()
        .custom_key_store_id(store)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "UnsupportedOperationException");
    let err = kms
        .disconnect_custom_key_store()
        .custom_key_store_id(store)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "UnsupportedOperationException");
    let err = kms
        .update_custom_key_store()
        .custom_key_store_id(store)
        .new_custom_key_store_name("renamed")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "UnsupportedOperationException");
    let err = kms
        .delete_custom_key_store()
        .custom_key_store_id(store)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "UnsupportedOperationException");
    let err = kms
        .get_key_last_usage()
        .key_id(&key_id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "UnsupportedOperationException");
    stack.shutdown().await.unwrap();
}
