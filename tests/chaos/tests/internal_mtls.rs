//! The backends' ports are no attack surface: the real binaries (as the crash
//! tests run them) serve mutual TLS only, and a server answers only the roles
//! that really call it. Anyone else who reaches the keystore's port, with no
//! certificate, a certificate of another CA, or an internal certificate of a
//! role the keystore does not serve, cannot make it act for an asserted caller;
//! the gateway's role can.

use std::sync::Arc;
use std::time::Duration;

use kms_chaos::{Cluster, Svc, serial};
use kms_proto::common::v1::{Caller, RequestContext};
use kms_proto::keystore::v1::GenerateRandomRequest;
use kms_proto::keystore::v1::key_store_client::KeyStoreClient;
use kms_telemetry::tls::{InternalTls, Role, client_config, connect_lazy_with, read_roots};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Channel, Endpoint};

/// What an attacker wants: 16 random bytes in the name of account A's root.
fn request() -> GenerateRandomRequest {
    GenerateRandomRequest {
        number_of_bytes: Some(16),
        context: Some(RequestContext {
            request_id: "internal-mtls-test".into(),
            caller: Some(Caller {
                account_id: "111122223333".into(),
                arn: "arn:aws:iam::111122223333:root".into(),
                principal_id: "111122223333".into(),
                principal_type: "Root".into(),
                ..Default::default()
            }),
            region: "us-east-1".into(),
            source_ip: "127.0.0.1".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn generate_random(channel: Channel) -> Result<Vec<u8>, tonic::Status> {
    KeyStoreClient::new(channel)
        .generate_random(request())
        .await
        .map(|r| r.into_inner().plaintext)
}

/// A CA nobody trusts, and a certificate from it that claims the gateway's role.
fn foreign_gateway_identity() -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec![Role::Gateway.server_name()]).unwrap();
    leaf.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let now = time::OffsetDateTime::now_utc();
    leaf.not_before = now - time::Duration::days(1);
    leaf.not_after = now + time::Duration::days(1);
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let chain = vec![cert.der().clone(), ca_cert.der().clone()];
    let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap();
    (chain, key)
}

/// A refused connection: the call fails in the transport (the connection
/// was closed or spoke no HTTP/2 the client understood), with no answer or
/// status from the keystore.
fn assert_refused(what: &str, result: Result<Vec<u8>, tonic::Status>) {
    match result {
        Ok(bytes) => panic!("{what}: the keystore answered ({} bytes)", bytes.len()),
        Err(status) => {
            let transport = std::error::Error::source(&status)
                .is_some_and(|e| e.downcast_ref::<tonic::transport::Error>().is_some());
            assert!(
                transport && status.metadata().get("x-aws-error-code").is_none(),
                "{what}: expected a transport failure, got {status:?}"
            );
            assert_ne!(status.code(), tonic::Code::PermissionDenied, "{what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_gateway_role_gets_the_keystore_to_act() {
    let _serial = serial().await;
    let cluster = Cluster::start().await.expect("cluster");
    let dir = cluster.internal_tls_dir();
    let endpoint = Endpoint::from_shared(format!("http://{}", cluster.addr(Svc::Keystore)))
        .unwrap()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5));
    let roots = read_roots(&dir.join("ca.pem")).unwrap();

    // Plaintext h2c, as every backend spoke before.
    assert_refused("plaintext", generate_random(endpoint.connect_lazy()).await);

    // TLS that trusts the right CA but shows no certificate.
    let anonymous = client_config(roots.clone(), None).unwrap();
    assert_refused(
        "no client certificate",
        generate_random(connect_lazy_with(&endpoint, anonymous, Role::Keystore)).await,
    );

    // A certificate for the gateway's name from another CA.
    let foreign = client_config(roots.clone(), Some(foreign_gateway_identity())).unwrap();
    assert_refused(
        "another CA",
        generate_random(connect_lazy_with(&endpoint, foreign, Role::Keystore)).await,
    );

    // Internal certificates of roles the keystore does not serve: the
    // handshake completes, every call is denied.
    for role in [Role::Registry, Role::Audit, Role::Authz, Role::Ops] {
        let tls = InternalTls::load(&dir, role).unwrap();
        let status = generate_random(tls.connect_lazy(&endpoint, Role::Keystore))
            .await
            .expect_err("a role the keystore does not serve");
        assert_eq!(
            status.code(),
            tonic::Code::PermissionDenied,
            "{role}: {status:?}"
        );
    }

    // Any internal role may ask for health (the container probes use `ops`).
    let ops = InternalTls::load(&dir, Role::Ops).unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(
        ops.connect(&endpoint, Role::Keystore).await.unwrap(),
    )
    .check(tonic_health::pb::HealthCheckRequest::default())
    .await
    .unwrap()
    .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // The gateway's certificate: the keystore acts.
    let gateway = InternalTls::load(&dir, Role::Gateway).unwrap();
    let bytes = generate_random(gateway.connect_lazy(&endpoint, Role::Keystore))
        .await
        .expect("the gateway role is served");
    assert_eq!(bytes.len(), 16);

    // Clients verify whom they reach: the keystore is not the audit service.
    gateway
        .connect(&endpoint, Role::Audit)
        .await
        .expect_err("the keystore's certificate does not name audit");

    // And a client that trusts another CA does not talk to the keystore either.
    let (chain, key) = foreign_gateway_identity();
    let mut other_roots = rustls::RootCertStore::empty();
    other_roots.add(chain[1].clone()).unwrap();
    let distrusting = client_config(Arc::new(other_roots), Some((chain, key))).unwrap();
    assert_refused(
        "a client that does not trust the internal CA",
        generate_random(connect_lazy_with(&endpoint, distrusting, Role::Keystore)).await,
    );

    // The whole system still works end to end (every hop is mutual TLS).
    let kms = cluster.client();
    let key = kms.create_key().send().await.expect("CreateKey");
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    let out = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(aws_sdk_kms::primitives::Blob::new(b"hello".to_vec()))
        .send()
        .await
        .expect("Encrypt");
    assert!(out.ciphertext_blob().is_some());
}

/// Authz serves the gateway and the keystore, and no one else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authz_serves_the_gateway_and_the_keystore_only() {
    use kms_proto::authz::v1::ListAccountsRequest;
    use kms_proto::authz::v1::authz_client::AuthzClient;
    let _serial = serial().await;
    let cluster = Cluster::start().await.expect("cluster");
    let dir = cluster.internal_tls_dir();
    let endpoint = Endpoint::from_shared(format!("http://{}", cluster.addr(Svc::Authz)))
        .unwrap()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5));
    for role in Role::ALL {
        let tls = InternalTls::load(&dir, role).unwrap();
        let result = AuthzClient::new(tls.connect_lazy(&endpoint, Role::Authz))
            .list_accounts(ListAccountsRequest::default())
            .await;
        match role {
            Role::Gateway | Role::Keystore => {
                assert!(result.is_ok(), "{role}: {result:?}");
            }
            _ => assert_eq!(
                result.expect_err("not a caller of authz").code(),
                tonic::Code::PermissionDenied,
                "{role}"
            ),
        }
    }
}

/// Secure by default: a service binary given no internal TLS folder (and no
/// explicit `KMS_INTERNAL_TLS=plaintext`) does not start.
#[test]
fn a_service_binary_without_internal_tls_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    for s in Svc::ALL {
        let bin = kms_chaos::bin_dir().join(format!("kms-{}", s.name()));
        let out = std::process::Command::new(&bin)
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(dir.path())
            .env_remove("KMS_INTERNAL_TLS_DIR")
            .env_remove("KMS_INTERNAL_TLS")
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "0")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{} started: {stderr}", s.name());
        assert!(stderr.contains("no internal TLS"), "{}: {stderr}", s.name());
    }
}
