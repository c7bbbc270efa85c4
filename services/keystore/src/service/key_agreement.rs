//! DeriveSharedSecret: ECDH between a KEY_AGREEMENT key (ECC_NIST_P256/P384/P521)
//! and a peer's public key (DER SubjectPublicKeyInfo). The shared secret is the raw
//! ECDH output, as KMS returns it. Nothing touches the database.
//!
//! `Recipient` (a Nitro Enclaves attestation document) is refused with
//! UnsupportedOperationException: this KMS does not verify attestation documents.

use zeroize::Zeroizing;

use super::{KeyService, require_enabled};
use crate::asymmetric::{AgreeError, KEY_USAGE_KEY_AGREEMENT};
use crate::error::{Error, Result, validation};
use crate::model::Caller;
use crate::store::Store;

const KEY_AGREEMENT_ALGORITHMS: &[&str] = &["ECDH"];
/// The model's PublicKeyType length bound.
const MAX_PUBLIC_KEY_LEN: usize = 8192;

pub struct SharedSecret {
    pub key_arn: String,
    pub shared_secret: Zeroizing<Vec<u8>>,
    pub key_origin: String,
}

impl<S: Store> KeyService<S> {
    pub async fn derive_shared_secret(
        &self,
        caller: &Caller,
        key_id: &str,
        algorithm: &str,
        peer_public_key: &[u8],
        recipient: bool,
        dry_run: bool,
    ) -> Result<SharedSecret> {
        if !KEY_AGREEMENT_ALGORITHMS.contains(&algorithm) {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value '{algorithm}' at 'keyAgreementAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [ECDH]"
            )));
        }
        if peer_public_key.is_empty() {
            return Err(validation(
                "publicKey",
                "Member must have length greater than or equal to 1",
            ));
        }
        if peer_public_key.len() > MAX_PUBLIC_KEY_LEN {
            return Err(validation(
                "publicKey",
                "Member must have length less than or equal to 8192",
            ));
        }
        let key = self.resolve(caller, key_id, "keyId", true)?;
        let question = self
            .key_question(caller, "DeriveSharedSecret", &key, Some(key_id))
            .key("kms:KeyAgreementAlgorithm", algorithm);
        self.authorize_key(caller, &key, question).await?;
        require_enabled(&key)?;
        if key.record.key_usage != KEY_USAGE_KEY_AGREEMENT {
            return Err(Error::InvalidKeyUsage(format!(
                "{} key usage is {} which is not valid for DeriveSharedSecret.",
                key.record.arn, key.record.key_usage
            )));
        }
        if recipient {
            return Err(Error::Unsupported(
                "Recipient (Nitro Enclaves attestation) is not supported by this KMS.".into(),
            ));
        }
        let private = key.private.as_ref().ok_or_else(|| {
            Error::InvalidKeyUsage(format!("{} is not a key agreement key.", key.record.arn))
        })?;
        let shared_secret = match private.derive_shared_secret(peer_public_key) {
            Ok(s) => s,
            Err(AgreeError::BadPublicKey) => {
                return Err(Error::Validation(format!(
                    "The PublicKey is not a valid DER-encoded SubjectPublicKeyInfo of a {} public key.",
                    key.record.key_spec
                )));
            }
            Err(AgreeError::NotAgreement) => {
                return Err(Error::InvalidKeyUsage(format!(
                    "{} is not a key agreement key.",
                    key.record.arn
                )));
            }
        };
        if dry_run {
            return Err(Error::DryRun);
        }
        Ok(SharedSecret {
            key_arn: key.record.arn.clone(),
            shared_secret,
            key_origin: key.record.origin.clone(),
        })
    }
}
