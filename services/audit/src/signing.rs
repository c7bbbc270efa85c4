//! The digest signing key: RSA-2048, SHA256withRSA (PKCS #1 v1.5), generated on first
//! start and kept as PKCS #8 in a file readable by its owner only (0600).
//!
//! Its public key is published as CloudTrail does (ListPublicKeys): the DER of the
//! PKCS #1 `RSAPublicKey` (what the aws CLI loads with `rsa.PublicKey.load_pkcs1(.., 'DER')`)
//! and a fingerprint, the hex MD5 of that DER, which digests name in
//! `digestPublicKeyFingerprint` (the CLI only matches the two strings).

use std::io::Write;
use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};
use md5::Digest as _;

pub struct DigestSigner {
    key: KeyPair,
    public_der: Vec<u8>,
    fingerprint: String,
}

impl std::fmt::Debug for DigestSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestSigner")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Hex MD5 of a public key's DER.
pub fn fingerprint(public_der: &[u8]) -> String {
    hex::encode(md5::Md5::digest(public_der))
}

impl DigestSigner {
    /// Load the key at `path`, or generate one and store it there (0600, never overwritten).
    pub fn load_or_generate(path: &Path) -> anyhow::Result<Self> {
        let pkcs8 = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = KeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| anyhow::anyhow!("generating the digest signing key"))?;
                let der = key
                    .as_der()
                    .map_err(|_| anyhow::anyhow!("encoding the digest signing key"))?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut f = options.open(path)?;
                f.write_all(der.as_ref())?;
                f.sync_all()?;
                tracing::info!(path = %path.display(), "generated the digest signing key");
                der.as_ref().to_vec()
            }
            Err(e) => return Err(e.into()),
        };
        Self::from_pkcs8(&pkcs8)
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> anyhow::Result<Self> {
        let key = KeyPair::from_pkcs8(pkcs8)
            .map_err(|e| anyhow::anyhow!("invalid digest signing key: {e}"))?;
        let public_der = key.public_key().as_ref().to_vec();
        Ok(Self {
            fingerprint: fingerprint(&public_der),
            public_der,
            key,
        })
    }

    pub fn public_der(&self) -> &[u8] {
        &self.public_der
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Hex SHA256withRSA signature of `message`.
    pub fn sign(&self, message: &[u8]) -> anyhow::Result<String> {
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut sig,
            )
            .map_err(|_| anyhow::anyhow!("signing a digest"))?;
        Ok(hex::encode(sig))
    }
}

/// Check a hex SHA256withRSA signature with a PKCS #1 (or X.509) public key DER.
pub fn verify(public_der: &[u8], message: &[u8], signature_hex: &str) -> bool {
    let Ok(sig) = hex::decode(signature_hex) else {
        return false;
    };
    UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public_der)
        .verify(message, &sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_persists_with_owner_only_mode_and_verifies() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("k.p8");
        let a = DigestSigner::load_or_generate(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let b = DigestSigner::load_or_generate(&path).unwrap();
        assert_eq!(a.public_der(), b.public_der());
        assert_eq!(a.fingerprint().len(), 32);
        // PKCS #1 RSAPublicKey of a 2048-bit key: SEQUENCE of 270 bytes.
        assert_eq!(&a.public_der()[..4], &[0x30, 0x82, 0x01, 0x0a]);
        let sig = a.sign(b"hello").unwrap();
        assert!(verify(b.public_der(), b"hello", &sig));
        assert!(!verify(b.public_der(), b"hellO", &sig));
    }
}
