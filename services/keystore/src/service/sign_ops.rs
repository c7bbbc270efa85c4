//! Operations of asymmetric signing keys and HMAC keys: GetPublicKey, Sign, Verify,
//! GenerateMac and VerifyMac. None of them touches the database.

use std::sync::Arc;

use super::{CachedKey, KeyService, require_enabled};
use crate::asymmetric::{
    KEY_USAGE_GENERATE_VERIFY_MAC, KEY_USAGE_SIGN_VERIFY, PrivateKey, UseError,
};
use crate::error::{Error, Result, validation};
use crate::model::{Caller, KeyRecord};
use crate::store::Store;

const MAX_MESSAGE_LEN: usize = 4096;
const MAX_SIGNATURE_LEN: usize = 6144;
const SIGNING_ALGORITHMS: &[&str] = &[
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
    "ECDSA_SHA_256",
    "ECDSA_SHA_384",
    "ECDSA_SHA_512",
    "SM2DSA",
    "ML_DSA_SHAKE_256",
    "ED25519_SHA_512",
    "ED25519_PH_SHA_512",
];
const MESSAGE_TYPES: &[&str] = &["RAW", "DIGEST", "EXTERNAL_MU"];
const MAC_ALGORITHMS: &[&str] = &[
    "HMAC_SHA_224",
    "HMAC_SHA_256",
    "HMAC_SHA_384",
    "HMAC_SHA_512",
];

pub struct PublicKeyInfo {
    pub record: KeyRecord,
    pub public_key: Vec<u8>,
}

pub struct Signed {
    pub key_arn: String,
    pub signature: Vec<u8>,
}

impl<S: Store> KeyService<S> {
    pub async fn get_public_key(&self, caller: &Caller, key_id: &str) -> Result<PublicKeyInfo> {
        let key = self
            .resolve_authorized(caller, key_id, "keyId", "GetPublicKey", true)
            .await?;
        require_enabled(&key)?;
        let public_key = key
            .private
            .as_ref()
            .and_then(|p| p.public_key_der())
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "{} is not an asymmetric KMS key: GetPublicKey works only on asymmetric KMS keys.",
                    key.record.arn
                ))
            })?
            .to_vec();
        Ok(PublicKeyInfo {
            record: key.record.clone(),
            public_key,
        })
    }

    /// Sign (`signature == None`) or Verify: returns the signature, or for Verify
    /// an empty one when it verified (a failed verification is
    /// KMSInvalidSignatureException).
    #[allow(clippy::too_many_arguments)]
    pub async fn sign_or_verify(
        &self,
        caller: &Caller,
        key_id: &str,
        message: &[u8],
        message_type: Option<&str>,
        algorithm: &str,
        signature: Option<&[u8]>,
        dry_run: bool,
    ) -> Result<Signed> {
        let op = if signature.is_some() {
            "Verify"
        } else {
            "Sign"
        };
        check_message(message)?;
        check_enum("signingAlgorithm", algorithm, SIGNING_ALGORITHMS)?;
        let message_type = message_type.unwrap_or("RAW");
        check_enum("messageType", message_type, MESSAGE_TYPES)?;
        if let Some(sig) = signature {
            if sig.is_empty() {
                return Err(validation(
                    "signature",
                    "Member must have length greater than or equal to 1",
                ));
            }
            if sig.len() > MAX_SIGNATURE_LEN {
                return Err(validation(
                    "signature",
                    "Member must have length less than or equal to 6144",
                ));
            }
        }
        let key = self.resolve(caller, key_id, "keyId", true)?;
        let question = self
            .key_question(caller, op, &key, Some(key_id))
            .key("kms:SigningAlgorithm", algorithm)
            .key("kms:MessageType", message_type);
        self.authorize_key(caller, &key, question).await?;
        require_enabled(&key)?;
        let private = require_usage(&key, KEY_USAGE_SIGN_VERIFY, op)?;
        if message_type == "EXTERNAL_MU" {
            return Err(Error::InvalidKeyUsage(format!(
                "MessageType EXTERNAL_MU is valid only for ML_DSA key specs, not {}.",
                key.record.key_spec
            )));
        }
        if dry_run {
            return Err(Error::DryRun);
        }
        let digest = message_type == "DIGEST";
        let signature = match signature {
            None => private
                .sign(algorithm, message, digest)
                .map_err(|e| use_error(e, &key, algorithm))?,
            Some(sig) => {
                if !private
                    .verify(algorithm, message, digest, sig)
                    .map_err(|e| use_error(e, &key, algorithm))?
                {
                    return Err(Error::InvalidSignature);
                }
                Vec::new()
            }
        };
        Ok(Signed {
            key_arn: key.record.arn.clone(),
            signature,
        })
    }

    /// GenerateMac (`mac == None`) or VerifyMac (a wrong MAC is
    /// KMSInvalidMacException).
    pub async fn generate_or_verify_mac(
        &self,
        caller: &Caller,
        key_id: &str,
        message: &[u8],
        algorithm: &str,
        mac: Option<&[u8]>,
        dry_run: bool,
    ) -> Result<Signed> {
        let op = if mac.is_some() {
            "VerifyMac"
        } else {
            "GenerateMac"
        };
        check_message(message)?;
        check_enum("macAlgorithm", algorithm, MAC_ALGORITHMS)?;
        if let Some(m) = mac {
            if m.is_empty() {
                return Err(validation(
                    "mac",
                    "Member must have length greater than or equal to 1",
                ));
            }
            if m.len() > MAX_SIGNATURE_LEN {
                return Err(validation(
                    "mac",
                    "Member must have length less than or equal to 6144",
                ));
            }
        }
        let key = self.resolve(caller, key_id, "keyId", true)?;
        let question = self
            .key_question(caller, op, &key, Some(key_id))
            .key("kms:MacAlgorithm", algorithm);
        self.authorize_key(caller, &key, question).await?;
        require_enabled(&key)?;
        let private = require_usage(&key, KEY_USAGE_GENERATE_VERIFY_MAC, op)?;
        if dry_run {
            return Err(Error::DryRun);
        }
        let spec = key.record.key_spec.as_str();
        let out = match mac {
            None => private
                .mac(algorithm, spec, message)
                .map_err(|e| use_error(e, &key, algorithm))?,
            Some(m) => {
                if !private
                    .verify_mac(algorithm, spec, message, m)
                    .map_err(|e| use_error(e, &key, algorithm))?
                {
                    return Err(Error::InvalidMac);
                }
                Vec::new()
            }
        };
        Ok(Signed {
            key_arn: key.record.arn.clone(),
            signature: out,
        })
    }
}

fn require_usage<'k>(key: &'k CachedKey, usage: &str, op: &str) -> Result<&'k Arc<PrivateKey>> {
    match &key.private {
        Some(p) if key.record.key_usage == usage => Ok(p),
        _ => Err(Error::InvalidKeyUsage(format!(
            "{} key usage is {} which is not valid for {op}.",
            key.record.arn, key.record.key_usage
        ))),
    }
}

fn use_error(e: UseError, key: &CachedKey, algorithm: &str) -> Error {
    match e {
        UseError::IncompatibleAlgorithm => Error::InvalidKeyUsage(format!(
            "Algorithm {algorithm} is incompatible with key spec {}.",
            key.record.key_spec
        )),
        UseError::DigestLength => Error::Validation(format!(
            "Digest is invalid length for algorithm {algorithm}."
        )),
        UseError::Crypto => Error::Crypto(crate::crypto::CryptoError::Seal),
    }
}

fn check_message(message: &[u8]) -> Result<()> {
    if message.is_empty() {
        return Err(validation(
            "message",
            "Member must have length greater than or equal to 1",
        ));
    }
    if message.len() > MAX_MESSAGE_LEN {
        return Err(validation(
            "message",
            "Member must have length less than or equal to 4096",
        ));
    }
    Ok(())
}

fn check_enum(field: &str, value: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(Error::Validation(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
        allowed.join(", ")
    )))
}
