//! The stack's own CA and the gateway's server certificate, under
//! `<data-dir>/tls/`:
//!
//! - `ca.pem` (give it to clients: `--ca-bundle`, `verify=`, `AWS_CA_BUNDLE`)
//!   and `ca.key`;
//! - `server.pem` (the server certificate followed by the CA's) and
//!   `server.key`.
//!
//! Made on first start and reused as they are afterwards (never regenerated
//! while present). Private keys are written 0600 in a 0700 folder and never
//! logged.
//!
//! The internal gRPC hops have a CA of their own ([`ensure_internal`], under
//! `<data-dir>/internal-tls/`): `ca.pem`, `ca.key`, and one certificate per
//! role (`gateway`, `authz`, `keystore`, `audit`, `registry`, `ops`) naming
//! `<role>.internal.kms` as its only DNS name, for both TLS ends
//! (`kms_telemetry::tls`). [`export_internal`] copies what one process needs
//! (the CA certificate, its role's files, and the `ops` files of its health
//! probe) into a folder of its own, e.g. a container's volume.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use kms_telemetry::tls::Role;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// The CA's subject (stable: a server certificate can be issued again from
/// the saved CA key).
const CA_NAME: &str = "kms-stack local CA";

/// The PEM files of a stack's TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

/// The names the server certificate carries: the KMS hostname of `region`,
/// every endpoint-specific name there, `localhost`, `127.0.0.1` and the
/// given addresses (the public endpoint's, when not loopback or wildcard).
pub fn server_names(region: &str, ips: &[IpAddr]) -> Vec<String> {
    let mut names = vec![
        format!("kms.{region}.amazonaws.com"),
        format!("*.kms.{region}.vpce.amazonaws.com"),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ];
    for ip in ips {
        let s = ip.to_string();
        if !ip.is_unspecified() && !names.contains(&s) {
            names.push(s);
        }
    }
    names
}

fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, CA_NAME);
    p.distinguished_name
        .push(DnType::OrganizationName, "kms-stack");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(3650);
    Ok(p)
}

/// Write `contents` to `path` through a temporary file; `private` files are 0600.
fn write_file(path: &Path, contents: &str, private: bool) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn read_key(path: &Path) -> anyhow::Result<KeyPair> {
    let pem = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    // rcgen's error says nothing of the key itself.
    KeyPair::from_pem(&pem).map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))
}

/// Make the CA and the server certificate under `<data_dir>/tls` unless they
/// are there already.
pub fn ensure(data_dir: &Path, region: &str, ips: &[IpAddr]) -> anyhow::Result<TlsFiles> {
    let dir = data_dir.join("tls");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    let files = TlsFiles {
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
    };
    let ca_key_path = dir.join("ca.key");
    let ca_params = ca_params()?;
    let (ca_key, ca_pem) = if files.ca_cert.is_file() && ca_key_path.is_file() {
        let pem = fs::read_to_string(&files.ca_cert)?;
        (read_key(&ca_key_path)?, pem)
    } else {
        let key = KeyPair::generate()?;
        let cert = ca_params.self_signed(&key)?;
        write_file(&ca_key_path, &key.serialize_pem(), true)?;
        write_file(&files.ca_cert, &cert.pem(), false)?;
        // A new CA: any server certificate there was issued by another one.
        let _ = fs::remove_file(&files.server_cert);
        tracing::info!(path = %files.ca_cert.display(), "created the stack's CA");
        (key, cert.pem())
    };
    if !(files.server_cert.is_file() && files.server_key.is_file()) {
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(server_names(region, ips))?;
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name
            .push(DnType::CommonName, format!("kms.{region}.amazonaws.com"));
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(825);
        let cert = p.signed_by(&key, &issuer)?;
        write_file(&files.server_key, &key.serialize_pem(), true)?;
        write_file(
            &files.server_cert,
            &format!("{}{ca_pem}", cert.pem()),
            false,
        )?;
        tracing::info!(path = %files.server_cert.display(), "issued the gateway's TLS certificate");
    }
    // Keys stay private even if something loosened them.
    for key in [&ca_key_path, &files.server_key] {
        fs::set_permissions(key, fs::Permissions::from_mode(0o600))?;
    }
    Ok(files)
}

/// The internal CA's subject.
const INTERNAL_CA_NAME: &str = "kms-stack internal gRPC CA";

fn internal_ca_params() -> anyhow::Result<CertificateParams> {
    let mut p = ca_params()?;
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name
        .push(DnType::CommonName, INTERNAL_CA_NAME);
    p.distinguished_name
        .push(DnType::OrganizationName, "kms-stack");
    Ok(p)
}

/// Make the internal CA and every role's certificate under `dir` (0700)
/// unless they are there already; a new CA reissues every certificate.
/// Returns `dir`, ready for `kms_telemetry::tls::InternalTls::load`.
pub fn ensure_internal(dir: &Path) -> anyhow::Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    let ca_cert = dir.join("ca.pem");
    let ca_key_path = dir.join("ca.key");
    let params = internal_ca_params()?;
    let (ca_key, ca_pem, fresh_ca) = if ca_cert.is_file() && ca_key_path.is_file() {
        (
            read_key(&ca_key_path)?,
            fs::read_to_string(&ca_cert)?,
            false,
        )
    } else {
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        write_file(&ca_key_path, &key.serialize_pem(), true)?;
        write_file(&ca_cert, &cert.pem(), false)?;
        tracing::info!(path = %ca_cert.display(), "created the internal gRPC CA");
        (key, cert.pem(), true)
    };
    let issuer = Issuer::new(params, ca_key);
    for role in Role::ALL {
        let cert_path = dir.join(format!("{}.pem", role.name()));
        let key_path = dir.join(format!("{}.key", role.name()));
        if !fresh_ca && cert_path.is_file() && key_path.is_file() {
            continue;
        }
        let key = KeyPair::generate()?;
        let name = role.server_name();
        let mut p = CertificateParams::new(vec![name.clone()])?;
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // The same certificate serves and calls.
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(825);
        let cert = p.signed_by(&key, &issuer)?;
        write_file(&key_path, &key.serialize_pem(), true)?;
        write_file(&cert_path, &format!("{}{ca_pem}", cert.pem()), false)?;
    }
    for role in Role::ALL {
        fs::set_permissions(
            dir.join(format!("{}.key", role.name())),
            fs::Permissions::from_mode(0o600),
        )?;
    }
    fs::set_permissions(&ca_key_path, fs::Permissions::from_mode(0o600))?;
    Ok(dir.to_path_buf())
}

/// Copy what a process of `role` needs from the internal folder `internal`
/// into `out`: `ca.pem`, `<role>.pem` and `<role>.key`, and the `ops` files
/// (its health probe). Never the CA's key. Rewritten on every call (the
/// source files are made once).
pub fn export_internal(internal: &Path, role: Role, out: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    fs::set_permissions(out, fs::Permissions::from_mode(0o700))?;
    let copy = |name: String, private: bool| -> anyhow::Result<()> {
        let from = internal.join(&name);
        let text =
            fs::read_to_string(&from).with_context(|| format!("reading {}", from.display()))?;
        write_file(&out.join(&name), &text, private)
    };
    copy("ca.pem".into(), false)?;
    for r in [role, Role::Ops] {
        copy(format!("{}.pem", r.name()), false)?;
        copy(format!("{}.key", r.name()), true)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let ips = ["127.0.0.1".parse().unwrap()];
        let files = ensure(dir.path(), "eu-west-1", &ips).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files.server_key), 0o600);
        assert_eq!(mode(&dir.path().join("tls/ca.key")), 0o600);
        assert_eq!(mode(&dir.path().join("tls")), 0o700);
        let ca = fs::read(&files.ca_cert).unwrap();
        let cert = fs::read(&files.server_cert).unwrap();
        let key = fs::read(&files.server_key).unwrap();
        // The chain: server certificate, then the CA's.
        assert!(String::from_utf8_lossy(&cert).ends_with(&*String::from_utf8_lossy(&ca)));
        let again = ensure(dir.path(), "eu-west-1", &ips).unwrap();
        assert_eq!(fs::read(&again.ca_cert).unwrap(), ca);
        assert_eq!(fs::read(&again.server_cert).unwrap(), cert);
        assert_eq!(fs::read(&again.server_key).unwrap(), key);
        // A lost server certificate is issued again by the same CA.
        fs::remove_file(&files.server_cert).unwrap();
        let third = ensure(dir.path(), "eu-west-1", &ips).unwrap();
        assert_eq!(fs::read(&third.ca_cert).unwrap(), ca);
        assert_ne!(fs::read(&third.server_key).unwrap(), key);
    }

    #[test]
    fn internal_certificates_are_made_once_private_and_load_per_role() {
        let dir = tempfile::tempdir().unwrap();
        let internal = dir.path().join("internal");
        ensure_internal(&internal).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&internal), 0o700);
        assert_eq!(mode(&internal.join("ca.key")), 0o600);
        for role in Role::ALL {
            assert_eq!(mode(&internal.join(format!("{role}.key"))), 0o600);
            let tls = kms_telemetry::tls::InternalTls::load(&internal, role).unwrap();
            assert_eq!(tls.role(), role);
        }
        let key = fs::read(internal.join("keystore.key")).unwrap();
        ensure_internal(&internal).unwrap();
        assert_eq!(fs::read(internal.join("keystore.key")).unwrap(), key);
        // A certificate is checked against the role it is loaded as.
        fs::copy(internal.join("audit.pem"), internal.join("keystore.pem")).unwrap();
        let err = kms_telemetry::tls::InternalTls::load(&internal, Role::Keystore).unwrap_err();
        assert!(err.to_string().contains("keystore.internal.kms"), "{err}");

        let out = dir.path().join("export");
        export_internal(&internal, Role::Gateway, &out).unwrap();
        let mut names: Vec<String> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["ca.pem", "gateway.key", "gateway.pem", "ops.key", "ops.pem"]
        );
        assert_eq!(mode(&out.join("gateway.key")), 0o600);
        kms_telemetry::tls::InternalTls::load(&out, Role::Gateway).unwrap();
    }

    #[test]
    fn names_cover_the_region_the_endpoints_and_loopback() {
        let names = server_names(
            "us-east-1",
            &["0.0.0.0".parse().unwrap(), "127.0.0.1".parse().unwrap()],
        );
        assert_eq!(
            names,
            [
                "kms.us-east-1.amazonaws.com",
                "*.kms.us-east-1.vpce.amazonaws.com",
                "localhost",
                "127.0.0.1"
            ]
        );
    }
}
