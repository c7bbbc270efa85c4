//! The cryptographic operations: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext)
//! and GenerateRandom. None of them touches the database.

use std::collections::HashMap;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::{CachedKey, KeyService, require_enabled};
use crate::asymmetric::{EncryptError, PrivateKey};
use crate::authz::Question;
use crate::blob::{self, Blob, MAX_BLOB_LEN};
use crate::crypto;
use crate::error::{Error, Result, validation};
use crate::model::{ALGORITHM_SYMMETRIC_DEFAULT, Caller, KEY_USAGE_ENCRYPT_DECRYPT};
use crate::store::Store;

const MAX_PLAINTEXT_LEN: usize = 4096;
const MAX_RANDOM_BYTES: i32 = 1024;
const ENCRYPTION_ALGORITHMS: &[&str] = &[
    "SYMMETRIC_DEFAULT",
    "RSAES_OAEP_SHA_1",
    "RSAES_OAEP_SHA_256",
    "SM2PKE",
];

pub struct Encrypted {
    pub ciphertext_blob: Vec<u8>,
    pub key_arn: String,
    /// SYMMETRIC_DEFAULT, or the RSAES_OAEP_* algorithm of an RSA key.
    pub algorithm: String,
}

/// Material ids in these results are the public ids KMS reports
/// (`KeyMaterialId`, as `CurrentKeyMaterialId` in the key's metadata).
pub struct Decrypted {
    pub plaintext: Zeroizing<Vec<u8>>,
    pub key_arn: String,
    /// The material that had sealed the blob (symmetric keys only).
    pub key_material_id: Option<String>,
    pub algorithm: String,
}

pub struct ReEncrypted {
    pub ciphertext_blob: Vec<u8>,
    pub source_key_arn: String,
    /// Symmetric source keys only.
    pub source_key_material_id: Option<String>,
    pub source_algorithm: String,
    pub key_arn: String,
    /// Symmetric destination keys only.
    pub key_material_id: Option<String>,
    pub destination_algorithm: String,
}

pub struct DataKey {
    pub ciphertext_blob: Vec<u8>,
    pub plaintext: Zeroizing<Vec<u8>>,
    pub key_arn: String,
    pub key_material_id: String,
}

/// A blob opened by Decrypt or ReEncrypt: its key, the material that had sealed it,
/// and the plaintext.
struct Opened {
    key: Arc<CachedKey>,
    material_id: u32,
    plaintext: Zeroizing<Vec<u8>>,
}

/// ReEncrypt parameters.
pub struct ReEncryptInput<'a> {
    pub ciphertext_blob: &'a [u8],
    pub source_encryption_context: &'a HashMap<String, String>,
    pub source_key_id: Option<&'a str>,
    pub destination_key_id: &'a str,
    pub destination_encryption_context: &'a HashMap<String, String>,
    pub source_encryption_algorithm: Option<&'a str>,
    pub destination_encryption_algorithm: Option<&'a str>,
    pub dry_run: bool,
}

impl<S: Store> KeyService<S> {
    pub async fn encrypt(
        &self,
        caller: &Caller,
        key_id: &str,
        plaintext: &[u8],
        context: &HashMap<String, String>,
        algorithm: Option<&str>,
        dry_run: bool,
    ) -> Result<Encrypted> {
        if plaintext.is_empty() {
            return Err(validation(
                "plaintext",
                "Member must have length greater than or equal to 1",
            ));
        }
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(validation(
                "plaintext",
                "Member must have length less than or equal to 4096",
            ));
        }
        check_algorithm_value("encryptionAlgorithm", algorithm)?;
        let key = self.resolve(caller, key_id, "keyId", true)?;
        let question = self
            .key_question(caller, "Encrypt", &key, Some(key_id))
            .encryption_context(context)
            .key("kms:EncryptionAlgorithm", algorithm_or_default(algorithm));
        self.authorize_key(caller, &key, question).await?;
        require_enabled(&key)?;
        require_encrypt_decrypt(&key, "Encrypt")?;
        if let Some(private) = &key.private {
            return encrypt_asymmetric(&key, private, context, plaintext, algorithm, dry_run);
        }
        check_algorithm_for_key(&key, algorithm)?;
        if dry_run {
            return Err(Error::DryRun);
        }
        let ciphertext_blob = seal(&key, context, plaintext)?;
        Ok(Encrypted {
            ciphertext_blob,
            key_arn: key.record.arn.clone(),
            algorithm: ALGORITHM_SYMMETRIC_DEFAULT.to_owned(),
        })
    }

    pub async fn decrypt(
        &self,
        caller: &Caller,
        ciphertext_blob: &[u8],
        context: &HashMap<String, String>,
        key_id: Option<&str>,
        algorithm: Option<&str>,
        dry_run: bool,
    ) -> Result<Decrypted> {
        // Asymmetric ciphertexts name no key: the caller must, and it decides.
        if let Some(id) = key_id
            && let Ok(named) = self.resolve(caller, id, "keyId", true)
            && named.private.is_some()
        {
            let out = self
                .decrypt_asymmetric(
                    caller,
                    named,
                    id,
                    ciphertext_blob,
                    context,
                    algorithm,
                    "Decrypt",
                )
                .await?;
            if dry_run {
                return Err(Error::DryRun);
            }
            return Ok(out);
        }
        let opened = self
            .open(
                caller,
                ciphertext_blob,
                context,
                key_id,
                "keyId",
                algorithm,
                "Decrypt",
            )
            .await?;
        if dry_run {
            return Err(Error::DryRun);
        }
        Ok(Decrypted {
            key_arn: opened.key.record.arn.clone(),
            key_material_id: Some(crypto::material_public_id(
                &opened.key.record.id,
                opened.material_id,
            )),
            plaintext: opened.plaintext,
            algorithm: ALGORITHM_SYMMETRIC_DEFAULT.to_owned(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn decrypt_asymmetric(
        &self,
        caller: &Caller,
        key: Arc<CachedKey>,
        key_id: &str,
        ciphertext_blob: &[u8],
        context: &HashMap<String, String>,
        algorithm: Option<&str>,
        op: &str,
    ) -> Result<Decrypted> {
        if ciphertext_blob.is_empty() || ciphertext_blob.len() > MAX_BLOB_LEN {
            return Err(validation(
                "ciphertextBlob",
                "Member must have length between 1 and 6144",
            ));
        }
        let field = if op == "Decrypt" {
            "encryptionAlgorithm"
        } else {
            "sourceEncryptionAlgorithm"
        };
        check_algorithm_value(field, algorithm)?;
        let question = self
            .key_question(caller, op, &key, Some(key_id))
            .encryption_context(context)
            .key("kms:EncryptionAlgorithm", algorithm_or_default(algorithm));
        self.authorize_key(caller, &key, question).await?;
        require_enabled(&key)?;
        require_encrypt_decrypt(&key, if op == "Decrypt" { op } else { "ReEncrypt" })?;
        no_context_for_asymmetric(context)?;
        let private = key.private.as_ref().ok_or(Error::InvalidCiphertext)?;
        let algorithm = algorithm_or_default(algorithm);
        let plaintext = match private.decrypt(algorithm, ciphertext_blob) {
            Ok(Some(p)) => p,
            Ok(None) | Err(EncryptError::Crypto) | Err(EncryptError::TooLong(_)) => {
                return Err(Error::InvalidCiphertext);
            }
            Err(EncryptError::IncompatibleAlgorithm) => {
                return Err(incompatible_algorithm(&key, algorithm));
            }
        };
        Ok(Decrypted {
            plaintext,
            key_arn: key.record.arn.clone(),
            key_material_id: None,
            algorithm: algorithm.to_owned(),
        })
    }

    pub async fn re_encrypt(
        &self,
        caller: &Caller,
        input: ReEncryptInput<'_>,
    ) -> Result<ReEncrypted> {
        check_algorithm_value(
            "destinationEncryptionAlgorithm",
            input.destination_encryption_algorithm,
        )?;
        // The source: an asymmetric key must be named (its ciphertexts name no key).
        let named_asymmetric = match input.source_key_id {
            Some(id) => match self.resolve(caller, id, "sourceKeyId", true) {
                Ok(k) if k.private.is_some() => Some((k, id)),
                _ => None,
            },
            None => None,
        };
        let (source_key, source_material_id, source_algorithm, plaintext) = match named_asymmetric {
            Some((key, id)) => {
                let out = self
                    .decrypt_asymmetric(
                        caller,
                        Arc::clone(&key),
                        id,
                        input.ciphertext_blob,
                        input.source_encryption_context,
                        input.source_encryption_algorithm,
                        "ReEncryptFrom",
                    )
                    .await?;
                (key, None, out.algorithm, out.plaintext)
            }
            None => {
                let source = self
                    .open(
                        caller,
                        input.ciphertext_blob,
                        input.source_encryption_context,
                        input.source_key_id,
                        "sourceKeyId",
                        input.source_encryption_algorithm,
                        "ReEncryptFrom",
                    )
                    .await?;
                let material =
                    crypto::material_public_id(&source.key.record.id, source.material_id);
                (
                    source.key,
                    Some(material),
                    ALGORITHM_SYMMETRIC_DEFAULT.to_owned(),
                    source.plaintext,
                )
            }
        };
        let destination =
            self.resolve(caller, input.destination_key_id, "destinationKeyId", true)?;
        let same_key = destination.record.id == source_key.record.id;
        let question = self
            .key_question(
                caller,
                "ReEncryptTo",
                &destination,
                Some(input.destination_key_id),
            )
            .encryption_context(input.destination_encryption_context)
            .key(
                "kms:EncryptionAlgorithm",
                algorithm_or_default(input.destination_encryption_algorithm),
            )
            .key("kms:ReEncryptOnSameKey", same_key.to_string());
        self.authorize_key(caller, &destination, question).await?;
        require_enabled(&destination)?;
        require_encrypt_decrypt(&destination, "ReEncrypt")?;
        let (ciphertext_blob, key_material_id, destination_algorithm) =
            if let Some(private) = &destination.private {
                let out = encrypt_asymmetric(
                    &destination,
                    private,
                    input.destination_encryption_context,
                    &plaintext,
                    input.destination_encryption_algorithm,
                    input.dry_run,
                )?;
                (out.ciphertext_blob, None, out.algorithm)
            } else {
                check_algorithm_for_key(&destination, input.destination_encryption_algorithm)?;
                if input.dry_run {
                    return Err(Error::DryRun);
                }
                (
                    seal(
                        &destination,
                        input.destination_encryption_context,
                        &plaintext,
                    )?,
                    Some(current_material_public_id(&destination)),
                    ALGORITHM_SYMMETRIC_DEFAULT.to_owned(),
                )
            };
        Ok(ReEncrypted {
            ciphertext_blob,
            source_key_arn: source_key.record.arn.clone(),
            source_key_material_id: source_material_id,
            source_algorithm,
            key_arn: destination.record.arn.clone(),
            key_material_id,
            destination_algorithm,
        })
    }

    /// GenerateDataKey and GenerateDataKeyWithoutPlaintext (`op`).
    #[allow(clippy::too_many_arguments)]
    pub async fn generate_data_key(
        &self,
        caller: &Caller,
        key_id: &str,
        context: &HashMap<String, String>,
        number_of_bytes: Option<i32>,
        key_spec: Option<&str>,
        dry_run: bool,
        op: &str,
    ) -> Result<DataKey> {
        let len = match (number_of_bytes, key_spec) {
            (Some(n), None) => bounded_len("numberOfBytes", n)?,
            (None, Some("AES_256")) => 32,
            (None, Some("AES_128")) => 16,
            (None, Some(other)) => {
                return Err(Error::Validation(format!(
                    "1 validation error detected: Value '{other}' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"
                )));
            }
            (None, None) | (Some(_), Some(_)) => {
                return Err(Error::Validation(
                    "Please specify either number of bytes or key spec.".into(),
                ));
            }
        };
        let key = self.resolve(caller, key_id, "keyId", true)?;
        let question = self
            .key_question(caller, op, &key, Some(key_id))
            .encryption_context(context)
            .key("kms:EncryptionAlgorithm", ALGORITHM_SYMMETRIC_DEFAULT);
        self.authorize_key(caller, &key, question).await?;
        require_enabled(&key)?;
        require_encrypt_decrypt(&key, op)?;
        require_symmetric(&key, op)?;
        if dry_run {
            return Err(Error::DryRun);
        }
        let plaintext = crypto::random_bytes(len)?;
        let ciphertext_blob = seal(&key, context, &plaintext)?;
        Ok(DataKey {
            ciphertext_blob,
            plaintext,
            key_arn: key.record.arn.clone(),
            key_material_id: current_material_public_id(&key),
        })
    }

    pub async fn generate_random(
        &self,
        caller: &Caller,
        number_of_bytes: Option<i32>,
        custom_key_store_id: Option<&str>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let Some(n) = number_of_bytes else {
            return Err(Error::Validation("NumberOfBytes is required.".into()));
        };
        let len = bounded_len("numberOfBytes", n)?;
        self.authorize_account(caller, "GenerateRandom", Question::default())
            .await?;
        if custom_key_store_id.is_some() {
            return Err(Error::CustomKeyStoreNotFound);
        }
        Ok(crypto::random_bytes(len)?)
    }

    /// Parses, checks, authorizes and opens a ciphertext blob for `op` (Decrypt,
    /// ReEncryptFrom): the key is the one the blob names.
    #[allow(clippy::too_many_arguments)]
    async fn open(
        &self,
        caller: &Caller,
        ciphertext_blob: &[u8],
        context: &HashMap<String, String>,
        key_id: Option<&str>,
        key_field: &str,
        algorithm: Option<&str>,
        op: &str,
    ) -> Result<Opened> {
        if ciphertext_blob.is_empty() {
            return Err(validation(
                "ciphertextBlob",
                "Member must have length greater than or equal to 1",
            ));
        }
        if ciphertext_blob.len() > MAX_BLOB_LEN {
            return Err(validation(
                "ciphertextBlob",
                "Member must have length less than or equal to 6144",
            ));
        }
        let algorithm_field = if key_field == "keyId" {
            "encryptionAlgorithm"
        } else {
            "sourceEncryptionAlgorithm"
        };
        check_algorithm_value(algorithm_field, algorithm)?;
        let parsed = Blob::parse(ciphertext_blob)?;
        if let Some(key_id) = key_id {
            let named = self.resolve(caller, key_id, key_field, true)?;
            if named.record.id != parsed.key_id {
                return Err(Error::IncorrectKey);
            }
        }
        // A blob naming no key we hold is just an invalid ciphertext.
        let key = self
            .key_in_region(parsed.key_id, &caller.region)
            .ok_or(Error::InvalidCiphertext)?;
        if key.record.region != caller.region {
            return Err(Error::InvalidCiphertext);
        }
        let question = self
            .key_question(caller, op, &key, key_id)
            .encryption_context(context)
            .key("kms:EncryptionAlgorithm", algorithm_or_default(algorithm));
        self.authorize_key(caller, &key, question).await?;
        require_enabled(&key)?;
        require_encrypt_decrypt(&key, if op == "Decrypt" { op } else { "ReEncrypt" })?;
        check_algorithm_for_key(&key, algorithm)?;
        let material = key
            .materials
            .get(parsed.material_id)
            .ok_or(Error::InvalidCiphertext)?;
        let plaintext = parsed.open(material, context)?;
        Ok(Opened {
            material_id: parsed.material_id,
            key,
            plaintext,
        })
    }
}

/// Asymmetric Encrypt: RSAES-OAEP under an RSA key's public key. The ciphertext is
/// the raw OAEP output, as AWS returns it (anyone with the public key can make one).
fn encrypt_asymmetric(
    key: &CachedKey,
    private: &PrivateKey,
    context: &HashMap<String, String>,
    plaintext: &[u8],
    algorithm: Option<&str>,
    dry_run: bool,
) -> Result<Encrypted> {
    no_context_for_asymmetric(context)?;
    let algorithm = algorithm_or_default(algorithm);
    if !private.encrypts_with(algorithm) {
        return Err(incompatible_algorithm(key, algorithm));
    }
    if dry_run {
        return Err(Error::DryRun);
    }
    let ciphertext_blob = match private.encrypt(algorithm, plaintext) {
        Ok(c) => c,
        Err(EncryptError::TooLong(max)) => {
            return Err(Error::Validation(format!(
                "Plaintext is too long for {algorithm} with key spec {}: the limit is {max} bytes.",
                key.record.key_spec
            )));
        }
        Err(EncryptError::IncompatibleAlgorithm) => {
            return Err(incompatible_algorithm(key, algorithm));
        }
        Err(EncryptError::Crypto) => return Err(Error::Crypto(crypto::CryptoError::Seal)),
    };
    Ok(Encrypted {
        ciphertext_blob,
        key_arn: key.record.arn.clone(),
        algorithm: algorithm.to_owned(),
    })
}

/// Asymmetric keys take no encryption context (it could not be bound to the
/// ciphertext).
fn no_context_for_asymmetric(context: &HashMap<String, String>) -> Result<()> {
    if !context.is_empty() {
        return Err(Error::Validation(
            "EncryptionContext is not supported with asymmetric KMS keys.".into(),
        ));
    }
    Ok(())
}

fn incompatible_algorithm(key: &CachedKey, algorithm: &str) -> Error {
    Error::InvalidKeyUsage(format!(
        "Algorithm {algorithm} is incompatible with key spec {}.",
        key.record.key_spec
    ))
}

/// Operations that only symmetric encryption keys perform (data keys, ReEncrypt).
fn require_symmetric(key: &CachedKey, op: &str) -> Result<()> {
    if key.private.is_some() {
        return Err(Error::InvalidKeyUsage(format!(
            "{} key spec is {} which is not valid for {op}.",
            key.record.arn, key.record.key_spec
        )));
    }
    Ok(())
}

pub(super) fn seal(
    key: &CachedKey,
    context: &HashMap<String, String>,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    Ok(blob::seal(
        key.current_material()?,
        &key.record.id,
        key.record.current_material_id,
        context,
        plaintext,
    )?)
}

/// The public id of the material [`seal`] uses for `key`.
fn current_material_public_id(key: &CachedKey) -> String {
    crypto::material_public_id(&key.record.id, key.record.current_material_id)
}

fn require_encrypt_decrypt(key: &CachedKey, op: &str) -> Result<()> {
    if key.record.key_usage != KEY_USAGE_ENCRYPT_DECRYPT {
        return Err(Error::InvalidKeyUsage(format!(
            "{} key usage is {} which is not valid for {op}.",
            key.record.arn, key.record.key_usage
        )));
    }
    Ok(())
}

fn algorithm_or_default(algorithm: Option<&str>) -> &str {
    algorithm.unwrap_or(ALGORITHM_SYMMETRIC_DEFAULT)
}

fn check_algorithm_value(field: &str, algorithm: Option<&str>) -> Result<()> {
    match algorithm {
        Some(a) if !ENCRYPTION_ALGORITHMS.contains(&a) => Err(Error::Validation(format!(
            "1 validation error detected: Value '{a}' at '{field}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            ENCRYPTION_ALGORITHMS.join(", ")
        ))),
        _ => Ok(()),
    }
}

/// Symmetric keys support only SYMMETRIC_DEFAULT.
fn check_algorithm_for_key(key: &CachedKey, algorithm: Option<&str>) -> Result<()> {
    match algorithm {
        Some(a) if a != ALGORITHM_SYMMETRIC_DEFAULT => Err(Error::InvalidKeyUsage(format!(
            "Algorithm {a} is incompatible with key spec {}.",
            key.record.key_spec
        ))),
        _ => Ok(()),
    }
}

fn bounded_len(field: &str, n: i32) -> Result<usize> {
    if n < 1 {
        return Err(Error::Validation(format!(
            "1 validation error detected: Value '{n}' at '{field}' failed to satisfy constraint: Member must have value greater than or equal to 1"
        )));
    }
    if n > MAX_RANDOM_BYTES {
        return Err(Error::Validation(format!(
            "1 validation error detected: Value '{n}' at '{field}' failed to satisfy constraint: Member must have value less than or equal to 1024"
        )));
    }
    Ok(n as usize)
}
