//! GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext: a fresh RSA or ECC
//! key pair, its private key (PKCS#8 DER) sealed under a symmetric encryption key
//! exactly as Encrypt seals a plaintext (so Decrypt opens it), its public key as a
//! DER SubjectPublicKeyInfo. Nothing touches the database.
//!
//! `Recipient` (a Nitro Enclaves attestation document) is refused with
//! UnsupportedOperationException: this KMS does not verify attestation documents.

use std::collections::HashMap;

use zeroize::Zeroizing;

use super::{KeyService, require_enabled};
use crate::asymmetric::{KEY_USAGE_SIGN_VERIFY, PrivateKey};
use crate::crypto::{self, CryptoError};
use crate::error::{Error, Result};
use crate::model::{ALGORITHM_SYMMETRIC_DEFAULT, Caller, KEY_SPEC_SYMMETRIC_DEFAULT};
use crate::store::Store;

/// The model's DataKeyPairSpec values.
const KEY_PAIR_SPECS: &[&str] = &[
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "SM2",
    "ECC_NIST_EDWARDS25519",
];

pub struct DataKeyPair {
    pub private_key_ciphertext_blob: Vec<u8>,
    /// PKCS#8 DER.
    pub private_key_plaintext: Zeroizing<Vec<u8>>,
    /// DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    pub key_arn: String,
    pub key_pair_spec: String,
    pub key_material_id: String,
}

impl<S: Store> KeyService<S> {
    /// GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext (`op`).
    #[allow(clippy::too_many_arguments)]
    pub async fn generate_data_key_pair(
        &self,
        caller: &Caller,
        key_id: &str,
        key_pair_spec: &str,
        context: &HashMap<String, String>,
        recipient: bool,
        dry_run: bool,
        op: &str,
    ) -> Result<DataKeyPair> {
        if !KEY_PAIR_SPECS.contains(&key_pair_spec) {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value '{key_pair_spec}' at 'keyPairSpec' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                KEY_PAIR_SPECS.join(", ")
            )));
        }
        let key = self.resolve(caller, key_id, "keyId", true)?;
        let question = self
            .key_question(caller, op, &key, Some(key_id))
            .encryption_context(context)
            .key("kms:EncryptionAlgorithm", ALGORITHM_SYMMETRIC_DEFAULT)
            .key("kms:DataKeyPairSpec", key_pair_spec);
        self.authorize_key(caller, &key, question).await?;
        require_enabled(&key)?;
        if key.record.key_usage != "ENCRYPT_DECRYPT"
            || key.record.key_spec != KEY_SPEC_SYMMETRIC_DEFAULT
        {
            return Err(Error::InvalidKeyUsage(format!(
                "{} key usage is {} and key spec is {}: {op} requires a symmetric encryption KMS key (ENCRYPT_DECRYPT, SYMMETRIC_DEFAULT).",
                key.record.arn, key.record.key_usage, key.record.key_spec
            )));
        }
        if recipient {
            return Err(Error::Unsupported(
                "Recipient (Nitro Enclaves attestation) is not supported by this KMS.".into(),
            ));
        }
        if matches!(key_pair_spec, "SM2" | "ECC_NIST_EDWARDS25519") {
            return Err(Error::Unsupported(format!(
                "KeyPairSpec {key_pair_spec} is not supported by this KMS."
            )));
        }
        if dry_run {
            return Err(Error::DryRun);
        }
        // RSA key generation takes a while: off the async workers.
        let spec = key_pair_spec.to_owned();
        let (pair, pkcs8) =
            tokio::task::spawn_blocking(move || PrivateKey::generate(&spec, KEY_USAGE_SIGN_VERIFY))
                .await
                .map_err(|_| Error::Crypto(CryptoError::Random))??;
        let public_key = pair
            .public_key_der()
            .ok_or(Error::Crypto(CryptoError::KeyLength))?
            .to_vec();
        drop(pair);
        let private_key_ciphertext_blob = super::crypto_ops::seal(&key, context, &pkcs8)?;
        Ok(DataKeyPair {
            private_key_ciphertext_blob,
            private_key_plaintext: pkcs8,
            public_key,
            key_arn: key.record.arn.clone(),
            key_pair_spec: key_pair_spec.to_owned(),
            key_material_id: crypto::material_public_id(
                &key.record.id,
                key.record.current_material_id,
            ),
        })
    }
}
