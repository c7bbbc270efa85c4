//! Symmetric cryptography of the key store, on aws-lc-rs. Synchronous, and the only
//! code in the service that touches key material.
//!
//! - AES-256-GCM as specified by NIST SP 800-38D: 96-bit nonces drawn from the
//!   aws-lc DRBG for every seal (SP 800-38D §8.2.2, RBG-based construction), 128-bit
//!   tags. Callers keep the number of seals per key far below 2^32 (§8.3).
//! - Wrapping of KMS key material at rest: AES-256-GCM under the root key, with the
//!   key ARN and material id in the AAD so a wrapped row cannot be moved to another
//!   key or material slot.
//! - Random bytes (data keys, GenerateRandom, fresh key material).
//!
//! Key material lives in [`AeadKey`] (aws-lc's expanded key, freed and cleansed by
//! aws-lc on drop) or in [`zeroize::Zeroizing`] buffers; neither implements `Debug`.
//! Every failure to open is the same opaque [`CryptoError::Open`].

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::digest;
use zeroize::Zeroizing;

/// AES-256 key length in bytes.
pub const KEY_LEN: usize = 32;
/// GCM nonce length in bytes (96 bits).
pub const NONCE_LEN: usize = 12;
/// GCM tag length in bytes (128 bits).
pub const TAG_LEN: usize = 16;

/// Domain separation for the AAD of wrapped key material.
const WRAP_AAD_LABEL: &[u8] = b"kms-keystore wrapped key material v1";
/// Domain separation for the public identifier of a key material.
const MATERIAL_ID_LABEL: &[u8] = b"kms-keystore key material id v1";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Authentication failed, or the input was too short to hold a tag. Deliberately
    /// says nothing more.
    #[error("authenticated decryption failed")]
    Open,
    #[error("the random generator failed")]
    Random,
    #[error("the key has the wrong length")]
    KeyLength,
    #[error("the cipher failed to seal")]
    Seal,
}

/// An AES-256-GCM key with its schedule expanded, ready for many seals and opens.
pub struct AeadKey {
    key: LessSafeKey,
}

impl AeadKey {
    /// A key from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != KEY_LEN {
            return Err(CryptoError::KeyLength);
        }
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| CryptoError::KeyLength)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
        })
    }

    /// A fresh random key, with its raw bytes (to be wrapped and stored).
    pub fn generate() -> Result<(Self, Zeroizing<[u8; KEY_LEN]>), CryptoError> {
        let mut raw = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(raw.as_mut())?;
        let key = Self::from_bytes(raw.as_ref())?;
        Ok((key, raw))
    }

    /// Encrypts `plaintext` under `nonce` and `aad`, appending ciphertext || tag to `out`.
    ///
    /// `out` is grown once up front, so the plaintext copied into it is never left
    /// behind in a freed reallocation.
    pub fn seal_append(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        out.reserve_exact(plaintext.len() + TAG_LEN);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = match self.key.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out[start..],
        ) {
            Ok(tag) => tag,
            Err(_) => {
                // Never hand back a buffer that may still hold plaintext.
                zeroize::Zeroize::zeroize(&mut out[start..]);
                out.truncate(start);
                return Err(CryptoError::Seal);
            }
        };
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Decrypts ciphertext || tag sealed under `nonce` and `aad`.
    pub fn open(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if ciphertext_and_tag.len() < TAG_LEN {
            return Err(CryptoError::Open);
        }
        let mut buf = Zeroizing::new(ciphertext_and_tag.to_vec());
        let len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                buf.as_mut_slice(),
            )
            .map_err(|_| CryptoError::Open)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// The root key: wraps every KMS key's material at rest.
pub struct RootKey {
    key: AeadKey,
}

impl RootKey {
    /// A root key from its hex encoding (64 hex digits, surrounding whitespace ignored).
    pub fn from_hex(hex_key: &str) -> Result<Self, CryptoError> {
        let mut raw = Zeroizing::new([0u8; KEY_LEN]);
        hex::decode_to_slice(hex_key.trim(), raw.as_mut()).map_err(|_| CryptoError::KeyLength)?;
        Ok(Self {
            key: AeadKey::from_bytes(raw.as_ref())?,
        })
    }

    /// A fresh random root key, returned with its hex encoding (for the dev key file).
    pub fn generate() -> Result<(Self, Zeroizing<String>), CryptoError> {
        let (key, raw) = AeadKey::generate()?;
        Ok((Self { key }, Zeroizing::new(hex::encode(raw.as_ref()))))
    }

    /// Wraps 32 bytes of key material: returns nonce || ciphertext || tag.
    pub fn wrap_material(
        &self,
        key_arn: &str,
        material_id: u32,
        material: &[u8; KEY_LEN],
    ) -> Result<Vec<u8>, CryptoError> {
        let nonce = random_nonce()?;
        let mut out = Vec::with_capacity(NONCE_LEN + KEY_LEN + TAG_LEN);
        out.extend_from_slice(&nonce);
        self.key
            .seal_append(nonce, &wrap_aad(key_arn, material_id), material, &mut out)?;
        Ok(out)
    }

    /// Unwraps key material stored for `key_arn` / `material_id`.
    pub fn unwrap_material(
        &self,
        key_arn: &str,
        material_id: u32,
        wrapped: &[u8],
    ) -> Result<AeadKey, CryptoError> {
        if wrapped.len() != NONCE_LEN + KEY_LEN + TAG_LEN {
            return Err(CryptoError::Open);
        }
        let (nonce, sealed) = wrapped.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Open)?;
        let raw = self
            .key
            .open(nonce, &wrap_aad(key_arn, material_id), sealed)?;
        AeadKey::from_bytes(&raw)
    }
}

impl RootKey {
    /// Re-wraps stored key material of `from_arn` for `to_arn` (a multi-Region
    /// replica), without the material leaving a zeroizing buffer.
    pub fn rewrap_material(
        &self,
        from_arn: &str,
        to_arn: &str,
        material_id: u32,
        wrapped: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if wrapped.len() != NONCE_LEN + KEY_LEN + TAG_LEN {
            return Err(CryptoError::Open);
        }
        let (nonce, sealed) = wrapped.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Open)?;
        let raw = self
            .key
            .open(nonce, &wrap_aad(from_arn, material_id), sealed)?;
        let raw: &[u8; KEY_LEN] = raw.as_slice().try_into().map_err(|_| CryptoError::Open)?;
        self.wrap_material(to_arn, material_id, raw)
    }
}

impl RootKey {
    /// Wraps a variable-length secret of a non-symmetric key (a PKCS#8 private key,
    /// an HMAC key): nonce || ciphertext || tag, with the key spec in the AAD too, so
    /// a row cannot be reinterpreted as another kind of key.
    pub fn wrap_secret(
        &self,
        key_arn: &str,
        material_id: u32,
        key_spec: &str,
        secret: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let nonce = random_nonce()?;
        let mut out = Vec::with_capacity(NONCE_LEN + secret.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        self.key.seal_append(
            nonce,
            &secret_aad(key_arn, material_id, key_spec),
            secret,
            &mut out,
        )?;
        Ok(out)
    }

    /// Unwraps what [`RootKey::wrap_secret`] wrapped.
    pub fn unwrap_secret(
        &self,
        key_arn: &str,
        material_id: u32,
        key_spec: &str,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if wrapped.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Open);
        }
        let (nonce, sealed) = wrapped.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Open)?;
        self.key
            .open(nonce, &secret_aad(key_arn, material_id, key_spec), sealed)
    }
}

/// Domain separation for the AAD of wrapped non-symmetric secrets.
const SECRET_AAD_LABEL: &[u8] = b"kms-keystore wrapped private key v1";

/// label || u32 BE len(arn) || arn || u32 BE material id || u32 BE len(spec) || spec.
fn secret_aad(key_arn: &str, material_id: u32, key_spec: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SECRET_AAD_LABEL.len() + 12 + key_arn.len() + key_spec.len());
    aad.extend_from_slice(SECRET_AAD_LABEL);
    aad.extend_from_slice(&(key_arn.len() as u32).to_be_bytes());
    aad.extend_from_slice(key_arn.as_bytes());
    aad.extend_from_slice(&material_id.to_be_bytes());
    aad.extend_from_slice(&(key_spec.len() as u32).to_be_bytes());
    aad.extend_from_slice(key_spec.as_bytes());
    aad
}

/// AAD of wrapped material: label || u32 BE len(arn) || arn || u32 BE material id.
fn wrap_aad(key_arn: &str, material_id: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(WRAP_AAD_LABEL.len() + 8 + key_arn.len());
    aad.extend_from_slice(WRAP_AAD_LABEL);
    aad.extend_from_slice(&(key_arn.len() as u32).to_be_bytes());
    aad.extend_from_slice(key_arn.as_bytes());
    aad.extend_from_slice(&material_id.to_be_bytes());
    aad
}

/// Fills `dest` from the aws-lc DRBG.
pub fn fill_random(dest: &mut [u8]) -> Result<(), CryptoError> {
    aws_lc_rs::rand::fill(dest).map_err(|_| CryptoError::Random)
}

/// `len` random bytes in a buffer that is wiped when dropped.
pub fn random_bytes(len: usize) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let mut out = Zeroizing::new(vec![0u8; len]);
    fill_random(out.as_mut_slice())?;
    Ok(out)
}

/// A fresh random 96-bit GCM nonce.
pub fn random_nonce() -> Result<[u8; NONCE_LEN], CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    Ok(nonce)
}

/// The public identifier of a key material (KeyMetadata.CurrentKeyMaterialId): 64 hex
/// digits, as AWS shows them, derived from public data only (SHA-256 over the key id
/// and the material number), so it reveals nothing about the material itself.
pub fn material_public_id(key_id: &str, material_id: u32) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(MATERIAL_ID_LABEL);
    ctx.update(&(key_id.len() as u32).to_be_bytes());
    ctx.update(key_id.as_bytes());
    ctx.update(&material_id.to_be_bytes());
    hex::encode(ctx.finish().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// Known-answer tests: AES-256 cases 13, 14 and 16 of the GCM specification
    /// (McGrew & Viega, "The Galois/Counter Mode of Operation", the test vectors of
    /// NIST SP 800-38D's submission), 96-bit IVs.
    struct Vector {
        key: &'static str,
        iv: &'static str,
        aad: &'static str,
        pt: &'static str,
        ct: &'static str,
        tag: &'static str,
    }

    const VECTORS: &[Vector] = &[
        // Test case 13: zero key, empty plaintext.
        Vector {
            key: "0000000000000000000000000000000000000000000000000000000000000000",
            iv: "000000000000000000000000",
            aad: "",
            pt: "",
            ct: "",
            tag: "530f8afbc74536b9a963b4f1c4cb738b",
        },
        // Test case 14: zero key, one zero block.
        Vector {
            key: "0000000000000000000000000000000000000000000000000000000000000000",
            iv: "000000000000000000000000",
            aad: "",
            pt: "00000000000000000000000000000000",
            ct: "cea7403d4d606b6e074ec5d3baf39d18",
            tag: "d0d1c8a799996bf0265b98b5d48ab919",
        },
        // Test case 16: 60-byte plaintext with 20 bytes of AAD.
        Vector {
            key: "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            iv: "cafebabefacedbaddecaf888",
            aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
            pt: "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
                 1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
            ct: "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
                 8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            tag: "76fc6ece0f4e1768cddf8853bb2d551b",
        },
    ];

    #[test]
    fn gcm_known_answers() {
        for v in VECTORS {
            let pt = unhex(&v.pt.replace(' ', ""));
            let key = AeadKey::from_bytes(&unhex(v.key)).unwrap();
            let iv: [u8; NONCE_LEN] = unhex(v.iv).try_into().unwrap();
            let aad = unhex(v.aad);
            let mut out = Vec::new();
            key.seal_append(iv, &aad, &pt, &mut out).unwrap();
            let expected = [unhex(&v.ct.replace(' ', "")), unhex(v.tag)].concat();
            assert_eq!(hex::encode(&out), hex::encode(&expected));
            let opened = key.open(iv, &aad, &out).unwrap();
            assert_eq!(opened.as_slice(), pt.as_slice());
        }
    }

    #[test]
    fn any_flipped_bit_fails_to_open() {
        let (key, _) = AeadKey::generate().unwrap();
        let nonce = random_nonce().unwrap();
        let mut sealed = Vec::new();
        key.seal_append(nonce, b"aad", b"attack at dawn", &mut sealed)
            .unwrap();
        for i in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(matches!(
                key.open(nonce, b"aad", &bad),
                Err(CryptoError::Open)
            ));
        }
        assert!(key.open(nonce, b"aaD", &sealed).is_err());
        assert!(key.open(nonce, b"aad", &sealed[..TAG_LEN - 1]).is_err());
        assert_eq!(
            key.open(nonce, b"aad", &sealed).unwrap().as_slice(),
            b"attack at dawn"
        );
    }

    #[test]
    fn seal_appends_after_existing_bytes() {
        let (key, _) = AeadKey::generate().unwrap();
        let nonce = [7u8; NONCE_LEN];
        let mut out = b"header".to_vec();
        key.seal_append(nonce, b"", b"x", &mut out).unwrap();
        assert_eq!(&out[..6], b"header");
        assert_eq!(out.len(), 6 + 1 + TAG_LEN);
        assert_eq!(key.open(nonce, b"", &out[6..]).unwrap().as_slice(), b"x");
    }

    #[test]
    fn wrapped_material_is_bound_to_its_key_and_slot() {
        let (root, hex_key) = RootKey::generate().unwrap();
        assert_eq!(hex_key.len(), 2 * KEY_LEN);
        let (material, raw) = AeadKey::generate().unwrap();
        let arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let wrapped = root.wrap_material(arn, 1, &raw).unwrap();
        assert_eq!(wrapped.len(), NONCE_LEN + KEY_LEN + TAG_LEN);

        let unwrapped = root.unwrap_material(arn, 1, &wrapped).unwrap();
        let nonce = random_nonce().unwrap();
        let mut sealed = Vec::new();
        material
            .seal_append(nonce, b"", b"data", &mut sealed)
            .unwrap();
        assert_eq!(
            unwrapped.open(nonce, b"", &sealed).unwrap().as_slice(),
            b"data"
        );

        let other = "arn:aws:kms:us-east-1:111122223333:key/ffffffff-12ab-34cd-56ef-1234567890ab";
        assert!(root.unwrap_material(other, 1, &wrapped).is_err());
        assert!(root.unwrap_material(arn, 2, &wrapped).is_err());
        let again = RootKey::from_hex(&hex_key).unwrap();
        assert!(again.unwrap_material(arn, 1, &wrapped).is_ok());
        let (stranger, _) = RootKey::generate().unwrap();
        assert!(stranger.unwrap_material(arn, 1, &wrapped).is_err());
    }

    #[test]
    fn root_key_hex_must_be_32_bytes() {
        assert!(RootKey::from_hex("00").is_err());
        assert!(RootKey::from_hex(&"zz".repeat(32)).is_err());
        assert!(RootKey::from_hex(&format!(" {}\n", "ab".repeat(32))).is_ok());
    }

    #[test]
    fn random_bytes_have_the_requested_length_and_differ() {
        let a = random_bytes(32).unwrap();
        let b = random_bytes(32).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a.as_slice(), b.as_slice());
        assert_eq!(random_bytes(0).unwrap().len(), 0);
    }

    #[test]
    fn material_public_id_is_stable_hex() {
        let id = material_public_id("1234abcd-12ab-34cd-56ef-1234567890ab", 1);
        assert_eq!(id.len(), 64);
        assert_eq!(
            id,
            material_public_id("1234abcd-12ab-34cd-56ef-1234567890ab", 1)
        );
        assert_ne!(
            id,
            material_public_id("1234abcd-12ab-34cd-56ef-1234567890ab", 2)
        );
    }
}
