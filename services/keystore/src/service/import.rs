//! Imported key material (keys of origin EXTERNAL): GetParametersForImport,
//! ImportKeyMaterial, DeleteImportedKeyMaterial, and the expiry of imported material
//! ([`KeyService::expire_imported_material`], run by the sweeper).
//!
//! SYMMETRIC_DEFAULT keys take a 256-bit AES key; RSA and ECC keys the DER PKCS#8
//! private key of a pair of their key spec, HMAC keys their key bytes
//! ([`PrivateKey::from_imported`]), stored like the secrets of generated
//! asymmetric keys. CreateKey decides which key specs it creates with EXTERNAL
//! origin.
//!
//! The import token is self-contained: a header (version, expiry, wrapping algorithm
//! and key spec) followed by the RSA wrapping key's PKCS#8, sealed under the root key
//! with the key ARN and the header as AAD. It is valid for 24 hours and only for the
//! key it was made for; nothing about it is stored. The material's fingerprint
//! (SHA-256 over the key ARN and the material) stays with the key when the material
//! is deleted, so that only the same material can come back: ciphertexts made before
//! decrypt again.

use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrapPadded};
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    PrivateDecryptingKey,
};
use zeroize::Zeroizing;

use super::{CachedKey, KeyService, Materials};
use crate::asymmetric::{PrivateKey, SpecKind, spec_kind};
use crate::crypto::{self, AeadKey, CryptoError};
use crate::error::{Error, Result, validation};
use crate::model::{
    Caller, KEY_SPEC_SYMMETRIC_DEFAULT, KeyRecord, KeyState, MaterialRecord, ORIGIN_EXTERNAL,
    now_ms,
};
use crate::store::Store;

const WRAPPING_ALGORITHMS: &[&str] = &[
    "RSAES_PKCS1_V1_5",
    "RSAES_OAEP_SHA_1",
    "RSAES_OAEP_SHA_256",
    "RSA_AES_KEY_WRAP_SHA_1",
    "RSA_AES_KEY_WRAP_SHA_256",
    "SM2PKE",
];
const WRAPPING_KEY_SPECS: &[&str] = &["RSA_2048", "RSA_3072", "RSA_4096", "SM2"];
const EXPIRATION_MODELS: &[&str] = &["KEY_MATERIAL_EXPIRES", "KEY_MATERIAL_DOES_NOT_EXPIRE"];
pub const KEY_MATERIAL_EXPIRES: &str = "KEY_MATERIAL_EXPIRES";
const IMPORT_TOKEN_VALIDITY_MS: i64 = 24 * 3_600_000;
const MAX_VALID_TO_MS: i64 = 365 * 86_400_000;
/// The one material of a key with imported material.
const IMPORTED_MATERIAL_ID: u32 = 1;
const TOKEN_VERSION: u8 = 1;
/// version, expiry (i64 BE), algorithm index, key spec index.
const TOKEN_HEADER_LEN: usize = 1 + 8 + 1 + 1;
/// The ephemeral AES key of the RSA_AES_KEY_WRAP_* algorithms.
const AES_WRAP_KEY_LEN: usize = 32;

pub struct ImportParameters {
    pub key_arn: String,
    pub import_token: Vec<u8>,
    pub public_key: Vec<u8>,
    pub valid_to_ms: i64,
}

/// ImportKeyMaterial parameters.
pub struct ImportInput<'a> {
    pub key_id: &'a str,
    pub import_token: &'a [u8],
    pub encrypted_key_material: &'a [u8],
    /// Seconds since the epoch.
    pub valid_to: Option<f64>,
    pub expiration_model: Option<&'a str>,
    pub import_type: Option<&'a str>,
    pub key_material_id: Option<&'a str>,
}

fn oaep_of(algorithm: &str) -> Option<&'static OaepAlgorithm> {
    match algorithm {
        "RSAES_OAEP_SHA_1" | "RSA_AES_KEY_WRAP_SHA_1" => Some(&OAEP_SHA1_MGF1SHA1),
        "RSAES_OAEP_SHA_256" | "RSA_AES_KEY_WRAP_SHA_256" => Some(&OAEP_SHA256_MGF1SHA256),
        _ => None,
    }
}

fn token_label(header: &[u8]) -> String {
    format!("IMPORT_TOKEN|{}", hex::encode(header))
}

fn invalid_token() -> Error {
    Error::Client(
        "InvalidImportTokenException",
        "The import token is invalid or is associated with a different KMS key.".into(),
    )
}

fn incorrect_material(message: &str) -> Error {
    Error::Client("IncorrectKeyMaterialException", message.into())
}

fn fingerprint(arn: &str, material: &[u8]) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"kms-imported-material\0");
    ctx.update(arn.as_bytes());
    ctx.update(b"\0");
    ctx.update(material);
    ctx.finish().as_ref().to_vec()
}

/// Whether a key holds key material: AES materials, or the private (HMAC) key.
fn has_material(k: &CachedKey) -> bool {
    !k.materials.0.is_empty() || k.private.is_some()
}

fn require_external(r: &KeyRecord, op: &str) -> Result<()> {
    if r.origin != ORIGIN_EXTERNAL {
        return Err(Error::Unsupported(format!(
            "{} origin is {}: {op} works only on KMS keys with EXTERNAL origin.",
            r.arn, r.origin
        )));
    }
    if r.state.is_pending_deletion() {
        return Err(super::pending_deletion(r));
    }
    Ok(())
}

impl<S: Store> KeyService<S> {
    pub async fn get_parameters_for_import(
        &self,
        caller: &Caller,
        key_id: &str,
        wrapping_algorithm: &str,
        wrapping_key_spec: &str,
    ) -> Result<ImportParameters> {
        let Some(alg_index) = WRAPPING_ALGORITHMS
            .iter()
            .position(|a| *a == wrapping_algorithm)
        else {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value '{wrapping_algorithm}' at 'wrappingAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                WRAPPING_ALGORITHMS.join(", ")
            )));
        };
        let Some(spec_index) = WRAPPING_KEY_SPECS
            .iter()
            .position(|s| *s == wrapping_key_spec)
        else {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value '{wrapping_key_spec}' at 'wrappingKeySpec' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                WRAPPING_KEY_SPECS.join(", ")
            )));
        };
        let key = self.resolve(caller, key_id, "keyId", false)?;
        let question = self
            .key_question(caller, "GetParametersForImport", &key, None)
            .key("kms:WrappingAlgorithm", wrapping_algorithm)
            .key("kms:WrappingKeySpec", wrapping_key_spec);
        self.authorize_key(caller, &key, question).await?;
        require_external(&key.record, "GetParametersForImport")?;
        let size = match wrapping_key_spec {
            "RSA_2048" => KeySize::Rsa2048,
            "RSA_3072" => KeySize::Rsa3072,
            "RSA_4096" => KeySize::Rsa4096,
            _ => {
                return Err(Error::Unsupported(
                    "WrappingKeySpec SM2 is supported only in China Regions.".into(),
                ));
            }
        };
        if wrapping_algorithm == "SM2PKE" {
            return Err(Error::Unsupported(
                "WrappingAlgorithm SM2PKE is supported only in China Regions.".into(),
            ));
        }
        if wrapping_algorithm == "RSAES_PKCS1_V1_5" {
            return Err(Error::Validation(
                "The RSAES_PKCS1_V1_5 wrapping algorithm is deprecated and no longer supported. Use RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256."
                    .into(),
            ));
        }
        let private = tokio::task::spawn_blocking(move || PrivateDecryptingKey::generate(size))
            .await
            .map_err(|_| Error::Crypto(CryptoError::Random))?
            .map_err(|_| Error::Crypto(CryptoError::Random))?;
        let public_key = private
            .public_key()
            .as_der()
            .map_err(|_| Error::Crypto(CryptoError::Random))?
            .as_ref()
            .to_vec();
        let pkcs8 = Zeroizing::new(
            private
                .as_der()
                .map_err(|_| Error::Crypto(CryptoError::Random))?
                .as_ref()
                .to_vec(),
        );
        drop(private);
        let valid_to_ms = now_ms() + IMPORT_TOKEN_VALIDITY_MS;
        let mut token = Vec::with_capacity(TOKEN_HEADER_LEN + pkcs8.len() + 28);
        token.push(TOKEN_VERSION);
        token.extend_from_slice(&valid_to_ms.to_be_bytes());
        token.push(alg_index as u8);
        token.push(spec_index as u8);
        let label = token_label(&token);
        let sealed = self.root.wrap_secret(&key.record.arn, 0, &label, &pkcs8)?;
        token.extend_from_slice(&sealed);
        Ok(ImportParameters {
            key_arn: key.record.arn.clone(),
            import_token: token,
            public_key,
            valid_to_ms,
        })
    }

    pub async fn import_key_material(
        &self,
        caller: &Caller,
        input: ImportInput<'_>,
    ) -> Result<(String, String)> {
        let model = input.expiration_model.unwrap_or(KEY_MATERIAL_EXPIRES);
        if !EXPIRATION_MODELS.contains(&model) {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value '{model}' at 'expirationModel' failed to satisfy constraint: Member must satisfy enum value set: [KEY_MATERIAL_EXPIRES, KEY_MATERIAL_DOES_NOT_EXPIRE]"
            )));
        }
        if let Some(t) = input.import_type
            && !matches!(t, "NEW_KEY_MATERIAL" | "EXISTING_KEY_MATERIAL")
        {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value '{t}' at 'importType' failed to satisfy constraint: Member must satisfy enum value set: [NEW_KEY_MATERIAL, EXISTING_KEY_MATERIAL]"
            )));
        }
        if input.import_token.is_empty() {
            return Err(validation(
                "importToken",
                "Member must have length greater than or equal to 1",
            ));
        }
        if input.encrypted_key_material.is_empty() {
            return Err(validation(
                "encryptedKeyMaterial",
                "Member must have length greater than or equal to 1",
            ));
        }
        let now = now_ms();
        let valid_to_ms = match (model, input.valid_to) {
            (KEY_MATERIAL_EXPIRES, None) => {
                return Err(Error::Validation(
                    "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"
                        .into(),
                ));
            }
            (KEY_MATERIAL_EXPIRES, Some(t)) => {
                let ms = (t * 1000.0) as i64;
                if ms <= now || ms > now + MAX_VALID_TO_MS {
                    return Err(Error::Validation(
                        "ValidTo must be a future date and time no more than 365 days from now."
                            .into(),
                    ));
                }
                Some(ms)
            }
            (_, Some(_)) => {
                return Err(Error::Validation(
                    "A validTo date cannot be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE"
                        .into(),
                ));
            }
            (_, None) => None,
        };

        let _writes = self.writes.lock().await;
        let key = self.resolve(caller, input.key_id, "keyId", false)?;
        let mut question = self
            .key_question(caller, "ImportKeyMaterial", &key, None)
            .key("kms:ExpirationModel", model);
        if let Some(ms) = valid_to_ms {
            question = question.key("kms:ValidTo", (ms / 1000).to_string());
        }
        self.authorize_key(caller, &key, question).await?;
        require_external(&key.record, "ImportKeyMaterial")?;
        let symmetric = key.record.key_spec == KEY_SPEC_SYMMETRIC_DEFAULT;
        if !symmetric && spec_kind(&key.record.key_spec) == SpecKind::Unsupported {
            return Err(Error::Unsupported(format!(
                "Importing key material into {} keys is not supported by this KMS.",
                key.record.key_spec
            )));
        }
        let public_material_id = crypto::material_public_id(&key.record.id, IMPORTED_MATERIAL_ID);
        if input.import_type == Some("NEW_KEY_MATERIAL") && key.record.import_fingerprint.is_some()
        {
            return Err(Error::Unsupported(
                "Rotation of keys with imported key material (ImportType NEW_KEY_MATERIAL on a key that has had material) is not supported by this KMS."
                    .into(),
            ));
        }
        if let Some(id) = input.key_material_id
            && id != public_material_id
        {
            return Err(Error::NotFound(format!(
                "Key material {id} does not exist for {}.",
                key.record.arn
            )));
        }
        let material = self.unwrap_import(
            &key.record,
            input.import_token,
            input.encrypted_key_material,
        )?;
        if symmetric && material.len() != crypto::KEY_LEN {
            return Err(incorrect_material(
                "The key material must be a 256-bit (32-byte) symmetric key.",
            ));
        }
        // Asymmetric keys take the DER PKCS#8 private key, HMAC keys their key bytes;
        // KMS derives the public key from the private key.
        let private = if symmetric {
            None
        } else {
            let (spec, usage) = (key.record.key_spec.clone(), key.record.key_usage.clone());
            let bytes = Zeroizing::new(material.to_vec());
            let parsed = tokio::task::spawn_blocking(move || {
                PrivateKey::from_imported(&spec, &usage, &bytes)
            })
            .await
            .map_err(|_| Error::Crypto(CryptoError::Open))?;
            Some(parsed.map_err(|_| {
                incorrect_material(&format!(
                    "The key material is not valid for a {} key: import the DER-encoded PKCS#8 private key of a key pair of that key spec, or HMAC key bytes of a length that key spec accepts.",
                    key.record.key_spec
                ))
            })?)
        };
        let print = fingerprint(&key.record.arn, &material);
        if let Some(old) = &key.record.import_fingerprint
            && *old != print
        {
            return Err(incorrect_material(
                "The key material in the request is not the same key material that was previously imported into this KMS key.",
            ));
        }
        let (materials, wrapped) = match private {
            None => {
                let aead = AeadKey::from_bytes(&material)?;
                let raw: &[u8; crypto::KEY_LEN] = material
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::Crypto(CryptoError::KeyLength))?;
                let wrapped =
                    self.root
                        .wrap_material(&key.record.arn, IMPORTED_MATERIAL_ID, raw)?;
                (vec![(IMPORTED_MATERIAL_ID, Arc::new(aead))], wrapped)
            }
            // Stored as KeyService::load reads a non-symmetric key's secret.
            Some(_) => {
                let wrapped = self.root.wrap_secret(
                    &key.record.arn,
                    IMPORTED_MATERIAL_ID,
                    &key.record.key_spec,
                    &material,
                )?;
                (Vec::new(), wrapped)
            }
        };
        drop(material);
        let mut record = key.record.clone();
        if record.state == KeyState::PendingImport {
            record.state = KeyState::Enabled;
        }
        record.expiration_model = Some(model.to_owned());
        record.valid_to_ms = valid_to_ms;
        record.import_fingerprint = Some(print);
        record.current_material_id = IMPORTED_MATERIAL_ID;
        record.version += 1;
        let stored = MaterialRecord {
            key_id: record.row_id(),
            material_id: IMPORTED_MATERIAL_ID,
            wrapped,
            created_ms: now,
            rotation_type: None,
        };
        self.store
            .replace_materials(&record, std::slice::from_ref(&stored))
            .await?;
        let arn = record.arn.clone();
        self.publish_key(CachedKey {
            record,
            materials: Arc::new(Materials(materials)),
            private: private.map(Arc::new),
        });
        tracing::info!(key_id = %key.record.id, "key material imported");
        Ok((arn, public_material_id))
    }

    /// Checks the import token and unwraps the key material with its wrapping key.
    fn unwrap_import(
        &self,
        record: &KeyRecord,
        token: &[u8],
        encrypted: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        if token.len() <= TOKEN_HEADER_LEN || token[0] != TOKEN_VERSION {
            return Err(invalid_token());
        }
        let (header, sealed) = token.split_at(TOKEN_HEADER_LEN);
        let pkcs8 = self
            .root
            .unwrap_secret(&record.arn, 0, &token_label(header), sealed)
            .map_err(|_| invalid_token())?;
        let expiry = i64::from_be_bytes(header[1..9].try_into().map_err(|_| invalid_token())?);
        if expiry <= now_ms() {
            return Err(Error::Client(
                "ExpiredImportTokenException",
                "The import token has expired. Use GetParametersForImport to get a new import token and public key.".into(),
            ));
        }
        let algorithm = WRAPPING_ALGORITHMS
            .get(usize::from(header[9]))
            .copied()
            .ok_or_else(invalid_token)?;
        let oaep = oaep_of(algorithm).ok_or_else(invalid_token)?;
        let private = PrivateDecryptingKey::from_pkcs8(&pkcs8).map_err(|_| invalid_token())?;
        let modulus_len = private.key_size_bytes();
        let private = OaepPrivateDecryptingKey::new(private).map_err(|_| invalid_token())?;
        let rsa_decrypt = |ciphertext: &[u8]| -> Result<Zeroizing<Vec<u8>>> {
            let mut out = Zeroizing::new(vec![0u8; private.min_output_size()]);
            let len = private
                .decrypt(oaep, ciphertext, &mut out, None)
                .map_err(|_| Error::InvalidCiphertext)?
                .len();
            out.truncate(len);
            Ok(out)
        };
        if algorithm.starts_with("RSA_AES_KEY_WRAP") {
            if encrypted.len() <= modulus_len {
                return Err(Error::InvalidCiphertext);
            }
            let (wrapped_key, wrapped_material) = encrypted.split_at(modulus_len);
            let aes_key = rsa_decrypt(wrapped_key)?;
            if aes_key.len() != AES_WRAP_KEY_LEN {
                return Err(Error::InvalidCiphertext);
            }
            let kek = AesKek::new(&AES_256, &aes_key).map_err(|_| Error::InvalidCiphertext)?;
            let mut out = Zeroizing::new(vec![0u8; wrapped_material.len()]);
            let len = kek
                .unwrap_with_padding(wrapped_material, &mut out)
                .map_err(|_| Error::InvalidCiphertext)?
                .len();
            out.truncate(len);
            Ok(out)
        } else {
            rsa_decrypt(encrypted)
        }
    }

    /// DeleteImportedKeyMaterial: the key goes back to PendingImport. Returns the key
    /// ARN and the deleted material's id.
    pub async fn delete_imported_key_material(
        &self,
        caller: &Caller,
        key_id: &str,
        key_material_id: Option<&str>,
    ) -> Result<(String, String)> {
        let _writes = self.writes.lock().await;
        let key = self.resolve(caller, key_id, "keyId", false)?;
        let question = self.key_question(caller, "DeleteImportedKeyMaterial", &key, None);
        self.authorize_key(caller, &key, question).await?;
        require_external(&key.record, "DeleteImportedKeyMaterial")?;
        let public_material_id = crypto::material_public_id(&key.record.id, IMPORTED_MATERIAL_ID);
        if let Some(id) = key_material_id
            && id != public_material_id
        {
            return Err(Error::NotFound(format!(
                "Key material {id} does not exist for {}.",
                key.record.arn
            )));
        }
        if key.record.state == KeyState::PendingImport {
            return Err(super::pending_import(&key.record));
        }
        self.drop_imported_material(&key, KeyState::PendingImport)
            .await?;
        Ok((key.record.arn.clone(), public_material_id))
    }

    /// Deletes the imported material of `key` (under the write lock); the key goes
    /// to `state` unless it is pending deletion.
    async fn drop_imported_material(&self, key: &CachedKey, state: KeyState) -> Result<()> {
        let mut record = key.record.clone();
        if !record.state.is_pending_deletion() {
            record.state = state;
        }
        record.expiration_model = None;
        record.valid_to_ms = None;
        record.version += 1;
        self.store.replace_materials(&record, &[]).await?;
        self.publish_key(CachedKey {
            record,
            materials: Arc::new(Materials(Vec::new())),
            private: None,
        });
        tracing::info!(key_id = %key.record.id, "imported key material deleted");
        Ok(())
    }

    /// Deletes imported material whose ValidTo has passed (the keys go to
    /// PendingImport); returns how many keys lost their material.
    pub async fn expire_imported_material(&self) -> Result<usize> {
        let now = now_ms();
        let due: Vec<String> = super::read(&self.keys)
            .values()
            .filter(|k| {
                k.record.origin == ORIGIN_EXTERNAL
                    && has_material(k)
                    && k.record.valid_to_ms.is_some_and(|t| t <= now)
            })
            .map(|k| k.record.row_id())
            .collect();
        let mut expired = 0;
        for row in due {
            let _writes = self.writes.lock().await;
            let Some(key) = self.key_by_id(&row) else {
                continue;
            };
            if !has_material(&key) || key.record.valid_to_ms.is_none_or(|t| t > now) {
                continue;
            }
            self.drop_imported_material(&key, KeyState::PendingImport)
                .await?;
            expired += 1;
        }
        Ok(expired)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey};

    use super::*;
    use crate::crypto::RootKey;
    use crate::service::CreateKeyInput;
    use crate::store::SqliteStore;

    fn caller() -> Caller {
        Caller {
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            context: Default::default(),
        }
    }

    async fn service() -> (KeyService<SqliteStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ks.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        let (root, _) = RootKey::generate().unwrap();
        let authz = Arc::new(crate::authz::testing::AllowAll);
        (KeyService::load(store, root, authz).await.unwrap(), dir)
    }

    fn wrap(public_der: &[u8], material: &[u8]) -> Vec<u8> {
        let public = PublicEncryptingKey::from_der(public_der).unwrap();
        let oaep = OaepPublicEncryptingKey::new(public).unwrap();
        let mut out = vec![0u8; oaep.ciphertext_size()];
        oaep.encrypt(&OAEP_SHA256_MGF1SHA256, material, &mut out, None)
            .unwrap()
            .to_vec()
    }

    fn input<'a>(
        key_id: &'a str,
        token: &'a [u8],
        encrypted: &'a [u8],
        valid_to: Option<f64>,
    ) -> ImportInput<'a> {
        ImportInput {
            key_id,
            import_token: token,
            encrypted_key_material: encrypted,
            valid_to,
            expiration_model: Some(if valid_to.is_some() {
                KEY_MATERIAL_EXPIRES
            } else {
                "KEY_MATERIAL_DOES_NOT_EXPIRE"
            }),
            import_type: None,
            key_material_id: None,
        }
    }

    /// An EXTERNAL key of `spec` and `usage` as CreateKey makes it (no material,
    /// PendingImport), stored and cached. CreateKey itself decides which key specs
    /// it accepts with EXTERNAL origin; this builds the key directly.
    async fn external_key(
        svc: &KeyService<SqliteStore>,
        c: &Caller,
        spec: &str,
        usage: &str,
    ) -> KeyRecord {
        let template = svc
            .create_key(
                c,
                CreateKeyInput {
                    origin: Some("EXTERNAL".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let id = uuid::Uuid::new_v4().to_string();
        let record = KeyRecord {
            arn: crate::model::key_arn(&c.region, &c.account_id, &id),
            id,
            key_spec: spec.into(),
            key_usage: usage.into(),
            ..template
        };
        svc.store.insert_key_with(&record, &[], &[]).await.unwrap();
        svc.publish_key(CachedKey {
            record: record.clone(),
            materials: Arc::new(Materials(Vec::new())),
            private: None,
        });
        record
    }

    #[tokio::test]
    async fn asymmetric_and_hmac_keys_take_their_private_key_or_key_bytes() {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};

        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ks.db").display());
        let (root, root_hex) = RootKey::generate().unwrap();
        let authz = Arc::new(crate::authz::testing::AllowAll);
        let svc = KeyService::load(SqliteStore::connect(&url).await.unwrap(), root, authz)
            .await
            .unwrap();
        let c = caller();

        // ECC_NIST_P256 SIGN_VERIFY: the PKCS#8 private key; KMS signs with it.
        let key = external_key(&svc, &c, "ECC_NIST_P256", "SIGN_VERIFY").await;
        assert!(matches!(
            svc.get_public_key(&c, &key.id).await,
            Err(Error::InvalidState(_))
        ));
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &SystemRandom::new(),
        )
        .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
                .unwrap();
        let spki = pair.public_key().as_der().unwrap().as_ref().to_vec();
        let params = svc
            .get_parameters_for_import(&c, &key.id, "RSAES_OAEP_SHA_256", "RSA_3072")
            .await
            .unwrap();
        // A P-384 key, a PKCS#8 RSA key and raw bytes are not P-256 material.
        let p384 = EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            &SystemRandom::new(),
        )
        .unwrap();
        for bad in [p384.as_ref(), &[7u8; 32][..]] {
            let err = svc
                .import_key_material(
                    &c,
                    input(
                        &key.id,
                        &params.import_token,
                        &wrap(&params.public_key, bad),
                        None,
                    ),
                )
                .await
                .unwrap_err();
            assert!(
                matches!(err, Error::Client("IncorrectKeyMaterialException", _)),
                "{err:?}"
            );
        }
        svc.import_key_material(
            &c,
            input(
                &key.id,
                &params.import_token,
                &wrap(&params.public_key, pkcs8.as_ref()),
                None,
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            svc.describe_key(&c, &key.id).await.unwrap().state,
            KeyState::Enabled
        );
        assert_eq!(
            svc.get_public_key(&c, &key.id).await.unwrap().public_key,
            spki
        );
        let signed = svc
            .sign_or_verify(&c, &key.id, b"m", None, "ECDSA_SHA_256", None, false)
            .await
            .unwrap();
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &spki)
            .verify(b"m", &signed.signature)
            .unwrap();

        // HMAC_256: key bytes of 32 to 64 bytes.
        let mac_key = external_key(&svc, &c, "HMAC_256", "GENERATE_VERIFY_MAC").await;
        let params = svc
            .get_parameters_for_import(&c, &mac_key.id, "RSAES_OAEP_SHA_1", "RSA_2048")
            .await
            .unwrap();
        let wrap_sha1 = |material: &[u8]| {
            let public = PublicEncryptingKey::from_der(&params.public_key).unwrap();
            let oaep = OaepPublicEncryptingKey::new(public).unwrap();
            let mut out = vec![0u8; oaep.ciphertext_size()];
            oaep.encrypt(&OAEP_SHA1_MGF1SHA1, material, &mut out, None)
                .unwrap()
                .to_vec()
        };
        for len in [31, 65] {
            let err = svc
                .import_key_material(
                    &c,
                    input(
                        &mac_key.id,
                        &params.import_token,
                        &wrap_sha1(&vec![1u8; len]),
                        None,
                    ),
                )
                .await
                .unwrap_err();
            assert!(
                matches!(err, Error::Client("IncorrectKeyMaterialException", _)),
                "{len}: {err:?}"
            );
        }
        let hmac_bytes = [9u8; 40];
        svc.import_key_material(
            &c,
            input(
                &mac_key.id,
                &params.import_token,
                &wrap_sha1(&hmac_bytes),
                None,
            ),
        )
        .await
        .unwrap();
        let mac = svc
            .generate_or_verify_mac(&c, &mac_key.id, b"m", "HMAC_SHA_256", None, false)
            .await
            .unwrap();
        let expected = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &hmac_bytes),
            b"m",
        );
        assert_eq!(mac.signature, expected.as_ref());

        // Deleted material leaves no private key; the same material comes back.
        svc.delete_imported_key_material(&c, &key.id, None)
            .await
            .unwrap();
        assert!(matches!(
            svc.sign_or_verify(&c, &key.id, b"m", None, "ECDSA_SHA_256", None, false)
                .await,
            Err(Error::InvalidState(_))
        ));
        let params = svc
            .get_parameters_for_import(&c, &key.id, "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048")
            .await
            .unwrap();
        let other = EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &SystemRandom::new(),
        )
        .unwrap();
        let aes_wrapped = |material: &[u8]| {
            let aes_key = [3u8; AES_WRAP_KEY_LEN];
            let mut out = wrap(&params.public_key, &aes_key);
            let kek = AesKek::new(&AES_256, &aes_key).unwrap();
            let mut wrapped = vec![0u8; material.len() + 15];
            let len = kek.wrap_with_padding(material, &mut wrapped).unwrap().len();
            out.extend_from_slice(&wrapped[..len]);
            out
        };
        let err = svc
            .import_key_material(
                &c,
                input(
                    &key.id,
                    &params.import_token,
                    &aes_wrapped(other.as_ref()),
                    None,
                ),
            )
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Client("IncorrectKeyMaterialException", _)
        ));
        svc.import_key_material(
            &c,
            input(
                &key.id,
                &params.import_token,
                &aes_wrapped(pkcs8.as_ref()),
                None,
            ),
        )
        .await
        .unwrap();

        // What a restart loads: both keys work as before.
        let restarted = KeyService::load(
            SqliteStore::connect(&url).await.unwrap(),
            RootKey::from_hex(&root_hex).unwrap(),
            Arc::new(crate::authz::testing::AllowAll),
        )
        .await
        .unwrap();
        let signed = restarted
            .sign_or_verify(&c, &key.id, b"m2", None, "ECDSA_SHA_256", None, false)
            .await
            .unwrap();
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &spki)
            .verify(b"m2", &signed.signature)
            .unwrap();
        let mac = restarted
            .generate_or_verify_mac(&c, &mac_key.id, b"m", "HMAC_SHA_256", None, false)
            .await
            .unwrap();
        assert_eq!(mac.signature, expected.as_ref());
    }

    #[tokio::test]
    async fn expired_tokens_are_refused_and_material_expires() {
        let (svc, _dir) = service().await;
        let c = caller();
        let key = svc
            .create_key(
                &c,
                CreateKeyInput {
                    origin: Some("EXTERNAL".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(key.state, KeyState::PendingImport);
        let params = svc
            .get_parameters_for_import(&c, &key.id, "RSAES_OAEP_SHA_256", "RSA_2048")
            .await
            .unwrap();
        let material = [7u8; 32];
        let encrypted = wrap(&params.public_key, &material);

        // The same wrapping key in a token whose 24 hours are over.
        let (header, sealed) = params.import_token.split_at(TOKEN_HEADER_LEN);
        let pkcs8 = svc
            .root
            .unwrap_secret(&key.arn, 0, &token_label(header), sealed)
            .unwrap();
        let mut expired = header.to_vec();
        expired[1..9].copy_from_slice(&(now_ms() - 1).to_be_bytes());
        let resealed = svc
            .root
            .wrap_secret(&key.arn, 0, &token_label(&expired), &pkcs8)
            .unwrap();
        expired.extend_from_slice(&resealed);
        let err = svc
            .import_key_material(&c, input(&key.id, &expired, &encrypted, None))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Client("ExpiredImportTokenException", _)),
            "{err:?}"
        );
        // Changing the expiry without the root key breaks the token.
        let mut forged = params.import_token.clone();
        forged[1..9].copy_from_slice(&(now_ms() + 1).to_be_bytes());
        let err = svc
            .import_key_material(&c, input(&key.id, &forged, &encrypted, None))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Client("InvalidImportTokenException", _)
        ));

        // Import with an expiry; encrypt; let the expiry pass.
        let valid_to = (now_ms() + 3_600_000) as f64 / 1000.0;
        svc.import_key_material(
            &c,
            input(&key.id, &params.import_token, &encrypted, Some(valid_to)),
        )
        .await
        .unwrap();
        let empty = HashMap::new();
        let blob = svc
            .encrypt(&c, &key.id, b"secret", &empty, None, false)
            .await
            .unwrap()
            .ciphertext_blob;
        assert_eq!(svc.expire_imported_material().await.unwrap(), 0);
        let cached = svc.key_in_region(&key.id, &c.region).unwrap();
        let due = KeyRecord {
            valid_to_ms: Some(now_ms() - 1),
            ..cached.record.clone()
        };
        svc.store.update_key(&due).await.unwrap();
        svc.publish_key(cached.with_record(due));
        assert_eq!(svc.expire_imported_material().await.unwrap(), 1);
        let md = svc.describe_key(&c, &key.id).await.unwrap();
        assert_eq!(md.state, KeyState::PendingImport);
        assert!(matches!(
            svc.decrypt(&c, &blob, &empty, None, None, false).await,
            Err(Error::InvalidState(_))
        ));
        // What a restart loads: no material.
        let stored = svc.store.load_keys().await.unwrap();
        let row = stored.iter().find(|k| k.record.id == key.id).unwrap();
        assert!(row.materials.is_empty());
        assert_eq!(row.record.state, KeyState::PendingImport);

        // Only the same material comes back; then the old ciphertext opens.
        let params = svc
            .get_parameters_for_import(&c, &key.id, "RSAES_OAEP_SHA_256", "RSA_2048")
            .await
            .unwrap();
        let other = wrap(&params.public_key, &[8u8; 32]);
        let err = svc
            .import_key_material(&c, input(&key.id, &params.import_token, &other, None))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Client("IncorrectKeyMaterialException", _)
        ));
        let again = wrap(&params.public_key, &material);
        svc.import_key_material(&c, input(&key.id, &params.import_token, &again, None))
            .await
            .unwrap();
        let opened = svc
            .decrypt(&c, &blob, &empty, None, None, false)
            .await
            .unwrap();
        assert_eq!(opened.plaintext.as_slice(), b"secret");
    }
}
