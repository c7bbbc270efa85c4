//! The ciphertext blob of symmetric KMS keys (format version 1, see
//! `docs/CIPHERTEXT.md`):
//!
//! ```text
//! 0x01 | u8 len | key id (ASCII) | u32 BE material id | 12-byte nonce | AES-GCM ciphertext || 16-byte tag
//! ```
//!
//! The AAD is every header byte (version through nonce) followed by the canonical
//! encoding of the encryption context, so neither the key reference nor the context
//! can be changed without failing authentication. Every way a blob can be wrong
//! (short, unknown version, bad id, failed tag) is the same [`InvalidCiphertext`].

use std::collections::HashMap;

use zeroize::Zeroizing;

use crate::crypto::{self, AeadKey, CryptoError, NONCE_LEN, TAG_LEN};

/// Format version written by this code.
pub const VERSION_1: u8 = 0x01;
/// KMS's limit on CiphertextBlob.
pub const MAX_BLOB_LEN: usize = 6144;

/// The one, deliberately uninformative, reason a blob is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid ciphertext")]
pub struct InvalidCiphertext;

/// A parsed, not yet authenticated, blob.
pub struct Blob<'a> {
    /// The key id named by the blob (unauthenticated until [`Blob::open`] succeeds).
    pub key_id: &'a str,
    pub material_id: u32,
    nonce: [u8; NONCE_LEN],
    header: &'a [u8],
    sealed: &'a [u8],
}

impl<'a> Blob<'a> {
    pub fn parse(blob: &'a [u8]) -> Result<Self, InvalidCiphertext> {
        if blob.len() > MAX_BLOB_LEN {
            return Err(InvalidCiphertext);
        }
        let (&version, rest) = blob.split_first().ok_or(InvalidCiphertext)?;
        if version != VERSION_1 {
            return Err(InvalidCiphertext);
        }
        let (&id_len, rest) = rest.split_first().ok_or(InvalidCiphertext)?;
        let id_len = usize::from(id_len);
        if id_len == 0 || rest.len() < id_len + 4 + NONCE_LEN + TAG_LEN {
            return Err(InvalidCiphertext);
        }
        let (id, rest) = rest.split_at(id_len);
        if !id.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-') {
            return Err(InvalidCiphertext);
        }
        let key_id = std::str::from_utf8(id).map_err(|_| InvalidCiphertext)?;
        let (material, rest) = rest.split_at(4);
        let material_id = u32::from_be_bytes(material.try_into().map_err(|_| InvalidCiphertext)?);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| InvalidCiphertext)?;
        let header_len = blob.len() - sealed.len();
        Ok(Self {
            key_id,
            material_id,
            nonce,
            header: &blob[..header_len],
            sealed,
        })
    }

    /// Authenticates and decrypts with the named key's material.
    pub fn open(
        &self,
        material: &AeadKey,
        context: &HashMap<String, String>,
    ) -> Result<Zeroizing<Vec<u8>>, InvalidCiphertext> {
        let aad = aad(self.header, context);
        material
            .open(self.nonce, &aad, self.sealed)
            .map_err(|_| InvalidCiphertext)
    }
}

/// Seals `plaintext` into a version-1 blob for `key_id` / `material_id`.
pub fn seal(
    material: &AeadKey,
    key_id: &str,
    material_id: u32,
    context: &HashMap<String, String>,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let id_len = u8::try_from(key_id.len()).map_err(|_| CryptoError::Seal)?;
    let nonce = crypto::random_nonce()?;
    let header_len = 2 + key_id.len() + 4 + NONCE_LEN;
    let mut blob = Vec::with_capacity(header_len + plaintext.len() + TAG_LEN);
    blob.push(VERSION_1);
    blob.push(id_len);
    blob.extend_from_slice(key_id.as_bytes());
    blob.extend_from_slice(&material_id.to_be_bytes());
    blob.extend_from_slice(&nonce);
    let aad = aad(&blob, context);
    material.seal_append(nonce, &aad, plaintext, &mut blob)?;
    Ok(blob)
}

fn aad(header: &[u8], context: &HashMap<String, String>) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + canonical_context_len(context));
    aad.extend_from_slice(header);
    write_canonical_context(context, &mut aad);
    aad
}

fn canonical_context_len(context: &HashMap<String, String>) -> usize {
    4 + context
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len())
        .sum::<usize>()
}

/// The canonical encoding of an encryption context: pairs sorted by key bytes, then
/// u32 BE count, and per pair u32 BE key length, key bytes, u32 BE value length, value
/// bytes. Length prefixes make it unambiguous (`{"a":"bc"}` differs from `{"ab":"c"}`).
pub fn write_canonical_context(context: &HashMap<String, String>, out: &mut Vec<u8>) {
    let mut pairs: Vec<(&String, &String)> = context.iter().collect();
    pairs.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.extend_from_slice(&(pairs.len() as u32).to_be_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    fn ctx(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn material() -> AeadKey {
        AeadKey::generate().unwrap().0
    }

    #[test]
    fn round_trip_and_layout() {
        let key = material();
        let c = ctx(&[("purpose", "test"), ("a", "b")]);
        let blob = seal(&key, KEY_ID, 7, &c, b"hello").unwrap();
        assert_eq!(blob[0], VERSION_1);
        assert_eq!(usize::from(blob[1]), KEY_ID.len());
        assert_eq!(&blob[2..38], KEY_ID.as_bytes());
        assert_eq!(&blob[38..42], &7u32.to_be_bytes());
        assert_eq!(blob.len(), 2 + 36 + 4 + NONCE_LEN + 5 + TAG_LEN);

        let parsed = Blob::parse(&blob).unwrap();
        assert_eq!(parsed.key_id, KEY_ID);
        assert_eq!(parsed.material_id, 7);
        assert_eq!(parsed.open(&key, &c).unwrap().as_slice(), b"hello");
    }

    #[test]
    fn a_4096_byte_plaintext_fits_the_kms_limit() {
        let key = material();
        let blob = seal(&key, KEY_ID, 1, &HashMap::new(), &[0u8; 4096]).unwrap();
        assert!(blob.len() <= MAX_BLOB_LEN);
        assert!(Blob::parse(&blob).is_ok());
    }

    #[test]
    fn context_must_match_exactly() {
        let key = material();
        let c = ctx(&[("k", "v")]);
        let blob = seal(&key, KEY_ID, 1, &c, b"x").unwrap();
        let parsed = Blob::parse(&blob).unwrap();
        for wrong in [
            ctx(&[]),
            ctx(&[("k", "V")]),
            ctx(&[("K", "v")]),
            ctx(&[("k", "v"), ("k2", "v2")]),
        ] {
            assert_eq!(parsed.open(&key, &wrong).unwrap_err(), InvalidCiphertext);
        }
    }

    #[test]
    fn canonical_context_is_order_independent_and_unambiguous() {
        let enc = |c: &HashMap<String, String>| {
            let mut out = Vec::new();
            write_canonical_context(c, &mut out);
            out
        };
        let a = ctx(&[("x", "1"), ("y", "2"), ("z", "3")]);
        let b = ctx(&[("z", "3"), ("x", "1"), ("y", "2")]);
        assert_eq!(enc(&a), enc(&b));
        assert_ne!(enc(&ctx(&[("a", "bc")])), enc(&ctx(&[("ab", "c")])));
        assert_eq!(enc(&HashMap::new()), 0u32.to_be_bytes());
        let one = enc(&ctx(&[("k", "vv")]));
        assert_eq!(
            one,
            [&[0, 0, 0, 1, 0, 0, 0, 1][..], b"k", &[0, 0, 0, 2], b"vv"].concat()
        );
        assert_eq!(one.len(), canonical_context_len(&ctx(&[("k", "vv")])));
    }

    #[test]
    fn every_bit_flip_is_rejected() {
        let key = material();
        let c = HashMap::new();
        let blob = seal(&key, KEY_ID, 1, &c, b"secret").unwrap();
        for i in 0..blob.len() * 8 {
            let mut bad = blob.clone();
            bad[i / 8] ^= 1 << (i % 8);
            let result = Blob::parse(&bad).and_then(|p| {
                // A flip in the key id or material id names another key or material;
                // with this key it must still fail.
                p.open(&key, &c)
            });
            assert_eq!(result.unwrap_err(), InvalidCiphertext, "bit {i}");
        }
    }

    #[test]
    fn malformed_blobs_are_rejected() {
        let key = material();
        let blob = seal(&key, KEY_ID, 1, &HashMap::new(), b"x").unwrap();
        assert!(Blob::parse(&[]).is_err());
        assert!(Blob::parse(&[VERSION_1]).is_err());
        let mut v2 = blob.clone();
        v2[0] = 0x02;
        assert!(Blob::parse(&v2).is_err());
        for cut in 0..blob.len() {
            let r = Blob::parse(&blob[..cut]).and_then(|p| p.open(&key, &HashMap::new()));
            assert!(r.is_err(), "truncated to {cut}");
        }
        let mut zero_len = blob.clone();
        zero_len[1] = 0;
        assert!(Blob::parse(&zero_len).is_err());
        let mut bad_char = blob.clone();
        bad_char[2] = b'/';
        assert!(Blob::parse(&bad_char).is_err());
        assert!(Blob::parse(&vec![VERSION_1; MAX_BLOB_LEN + 1]).is_err());
    }
}
