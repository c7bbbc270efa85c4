//! TLS on the public endpoint and on every endpoint interface (rustls on the
//! aws-lc-rs provider). The certificate and key come from PEM files
//! (`--tls-cert`, `--tls-key`); `kms-stack` makes them with its own CA.
//!
//! TLS changes nothing about who a connection belongs to: the endpoint is still
//! decided by the local address alone, never by SNI or Host. It only makes
//! `aws:SecureTransport` true and gives CloudTrail its `tlsDetails`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{CipherSuite, ProtocolVersion, ServerConnection};

/// Longest a client may take to finish the handshake.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The server configuration for a certificate chain and its private key (PEM
/// files). TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading TLS certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing TLS certificate {}", cert.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "no certificate in TLS certificate file {}",
        cert.display()
    );
    // The error never contains key material.
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("reading TLS private key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("TLS certificate and private key do not fit together")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What a handshake negotiated, as CloudTrail names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSession {
    pub version: &'static str,
    pub cipher_suite: String,
}

impl TlsSession {
    pub fn of(conn: &ServerConnection) -> Self {
        Self {
            version: match conn.protocol_version() {
                Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
                Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
                _ => "unknown",
            },
            cipher_suite: conn
                .negotiated_cipher_suite()
                .map(|s| openssl_name(s.suite()))
                .unwrap_or_default(),
        }
    }
}

/// A cipher suite in OpenSSL's naming, which is what CloudTrail records (TLS
/// 1.3 suites keep their IANA names there).
pub fn openssl_name(suite: CipherSuite) -> String {
    let name = match suite {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
            "ECDHE-ECDSA-CHACHA20-POLY1305"
        }
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        other => return format!("{other:?}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_use_openssl_names() {
        assert_eq!(
            openssl_name(CipherSuite::TLS13_AES_128_GCM_SHA256),
            "TLS_AES_128_GCM_SHA256"
        );
        assert_eq!(
            openssl_name(CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
            "ECDHE-RSA-AES128-GCM-SHA256"
        );
        assert_eq!(
            openssl_name(CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
            "ECDHE-ECDSA-AES256-GCM-SHA384"
        );
    }

    #[test]
    fn missing_files_are_reported_without_panicking() {
        let e = server_config(
            Path::new("/nonexistent/cert.pem"),
            Path::new("/nonexistent/key.pem"),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent/cert.pem"), "{e:#}");
    }
}
