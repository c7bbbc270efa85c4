//! The key store against its gRPC contract: each test starts the service on a
//! pre-bound 127.0.0.1 port with a fresh SQLite database and development root key in
//! a temporary directory, next to the authz service it asks for every decision (on its
//! own pre-bound port and database), and talks to it with the typed client, acting as
//! the gateway (it sets each request's `context`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use kms_keystore::Config;
use kms_proto::common::v1::{Caller, RequestContext};
use kms_proto::error::AwsError;
use kms_proto::keystore::v1 as pb;
use pb::key_store_client::KeyStoreClient;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

const ACCOUNT: &str = "111122223333";
const OTHER_ACCOUNT: &str = "444455556666";
const REGION: &str = "us-east-1";
const UNKNOWN_ID: &str = "0badc0de-0000-4000-8000-000000000000";

struct App {
    client: KeyStoreClient<Channel>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<anyhow::Result<()>>,
    authz_stop: Option<oneshot::Sender<()>>,
    authz: Option<JoinHandle<anyhow::Result<()>>>,
    // Dropped last: the databases and root key live here.
    dir: TempDir,
}

async fn spawn_app() -> App {
    spawn_in(tempfile::tempdir().unwrap()).await
}

fn dev_config(dir: &Path) -> Config {
    Config::dev(
        format!("sqlite://{}", dir.join("keystore.db").display()),
        dir.join("root.key"),
    )
}

async fn spawn_in(dir: TempDir) -> App {
    spawn_with(dir, dev_config).await
}

/// Starts authz (its database in `dir`, the two example accounts bootstrapped) and
/// the key store configured by `config` and pointed at that authz. Both listeners
/// are bound before either service starts.
async fn spawn_with(dir: TempDir, config: impl FnOnce(&Path) -> Config) -> App {
    let authz_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authz_addr = authz_listener.local_addr().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();

    let (authz_stop, authz_stopped) = oneshot::channel::<()>();
    let authz_config = kms_authz::Config::new(format!(
        "sqlite://{}",
        dir.path().join("authz.db").display()
    ));
    let authz = tokio::spawn(kms_authz::run(authz_listener, authz_config, async {
        let _ = authz_stopped.await;
    }));

    let (stop, stopped) = oneshot::channel::<()>();
    let config = config(dir.path()).with_authz_url(format!("http://{authz_addr}"));
    let server = tokio::spawn(kms_keystore::run(listener, config, async {
        let _ = stopped.await;
    }));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    App {
        client: KeyStoreClient::new(channel),
        addr,
        stop: Some(stop),
        server,
        authz_stop: Some(authz_stop),
        authz: Some(authz),
        dir,
    }
}

impl App {
    fn c(&self) -> KeyStoreClient<Channel> {
        self.client.clone()
    }

    /// Stops the key store (draining calls), then authz, and hands back the directory.
    async fn stop(mut self) -> TempDir {
        let _ = self.stop.take().unwrap().send(());
        self.server.await.unwrap().unwrap();
        if let Some(stop) = self.authz_stop.take() {
            let _ = stop.send(());
        }
        if let Some(authz) = self.authz.take() {
            authz.await.unwrap().unwrap();
        }
        self.dir
    }

    /// Stops authz alone: the key store stays up without anyone to decide.
    async fn stop_authz(&mut self) {
        if let Some(stop) = self.authz_stop.take() {
            let _ = stop.send(());
        }
        if let Some(authz) = self.authz.take() {
            authz.await.unwrap().unwrap();
        }
    }

    async fn create_key(&self) -> pb::KeyMetadata {
        self.create_key_as(ACCOUNT).await
    }

    async fn create_key_as(&self, account: &str) -> pb::KeyMetadata {
        self.c()
            .create_key(pb::CreateKeyRequest {
                context: ctx(account),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .key_metadata
            .unwrap()
    }

    async fn encrypt(
        &self,
        account: &str,
        key_id: &str,
        plaintext: &[u8],
        context: &[(&str, &str)],
    ) -> Result<pb::EncryptResponse, AwsError> {
        self.c()
            .encrypt(pb::EncryptRequest {
                key_id: key_id.into(),
                plaintext: plaintext.to_vec(),
                encryption_context: map(context),
                context: ctx(account),
                ..Default::default()
            })
            .await
            .aws()
    }

    async fn decrypt(
        &self,
        account: &str,
        blob: &[u8],
        context: &[(&str, &str)],
        key_id: Option<&str>,
    ) -> Result<pb::DecryptResponse, AwsError> {
        self.c()
            .decrypt(pb::DecryptRequest {
                ciphertext_blob: blob.to_vec(),
                encryption_context: map(context),
                key_id: key_id.map(Into::into),
                context: ctx(account),
                ..Default::default()
            })
            .await
            .aws()
    }

    async fn describe(&self, key_id: &str) -> Result<pb::KeyMetadata, AwsError> {
        self.c()
            .describe_key(pb::DescribeKeyRequest {
                key_id: key_id.into(),
                context: ctx(ACCOUNT),
                ..Default::default()
            })
            .await
            .aws()
            .map(|r| r.key_metadata.unwrap())
    }

    async fn key_op(&self, op: KeyOp, key_id: &str) -> Result<(), AwsError> {
        let req = pb::KeyIdRequest {
            key_id: key_id.into(),
            context: ctx(ACCOUNT),
        };
        let mut c = self.c();
        match op {
            KeyOp::Enable => c.enable_key(req).await.aws().map(drop),
            KeyOp::Disable => c.disable_key(req).await.aws().map(drop),
            KeyOp::CancelDeletion => c.cancel_key_deletion(req).await.aws().map(drop),
        }
    }

    async fn schedule_deletion(
        &self,
        key_id: &str,
        days: Option<i32>,
    ) -> Result<pb::ScheduleKeyDeletionResponse, AwsError> {
        self.c()
            .schedule_key_deletion(pb::ScheduleKeyDeletionRequest {
                key_id: key_id.into(),
                pending_window_in_days: days,
                context: ctx(ACCOUNT),
            })
            .await
            .aws()
    }

    async fn alias(&self, create: bool, name: &str, target: &str) -> Result<(), AwsError> {
        let req = pb::AliasRequest {
            alias_name: name.into(),
            target_key_id: target.into(),
            context: ctx(ACCOUNT),
        };
        let mut c = self.c();
        if create {
            c.create_alias(req).await.aws().map(drop)
        } else {
            c.update_alias(req).await.aws().map(drop)
        }
    }

    async fn list_aliases(
        &self,
        key_id: Option<&str>,
        limit: Option<i32>,
        marker: Option<String>,
    ) -> Result<pb::ListAliasesResponse, AwsError> {
        self.c()
            .list_aliases(pb::ListAliasesRequest {
                key_id: key_id.map(Into::into),
                limit,
                marker,
                context: ctx(ACCOUNT),
            })
            .await
            .aws()
    }

    async fn list_tags(
        &self,
        key_id: &str,
        limit: Option<i32>,
        marker: Option<String>,
    ) -> Result<pb::ListResourceTagsResponse, AwsError> {
        self.c()
            .list_resource_tags(pb::ListResourceTagsRequest {
                key_id: key_id.into(),
                limit,
                marker,
                context: ctx(ACCOUNT),
            })
            .await
            .aws()
    }

    async fn resolve(&self, account: &str, key_id: &str) -> Result<pb::ResolvedKey, AwsError> {
        self.c()
            .resolve_key(pb::ResolveKeyRequest {
                key_id: key_id.into(),
                context: ctx(account),
            })
            .await
            .aws()
    }
}

#[derive(Clone, Copy)]
enum KeyOp {
    Enable,
    Disable,
    CancelDeletion,
}

fn ctx(account: &str) -> Option<RequestContext> {
    Some(RequestContext {
        request_id: "test-request".into(),
        // The account's root user: it needs no identity policy, so the key policy
        // alone decides (IAM users and roles come with the identity issue).
        caller: Some(Caller {
            account_id: account.into(),
            arn: format!("arn:aws:iam::{account}:root"),
            principal_id: account.into(),
            principal_type: "Root".into(),
            ..Default::default()
        }),
        region: REGION.into(),
        source_ip: "127.0.0.1".into(),
        ..Default::default()
    })
}

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn arn(account: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{REGION}:{account}:key/{key_id}")
}

fn tag(k: &str, v: &str) -> pb::Tag {
    pb::Tag {
        tag_key: k.into(),
        tag_value: v.into(),
    }
}

trait AwsResult<T> {
    fn aws(self) -> Result<T, AwsError>;
}

impl<T> AwsResult<T> for Result<tonic::Response<T>, tonic::Status> {
    fn aws(self) -> Result<T, AwsError> {
        self.map(tonic::Response::into_inner)
            .map_err(|s| AwsError::from_status(&s))
    }
}

/// Asserts the AWS exception and returns its message.
#[track_caller]
fn expect_err<T: std::fmt::Debug>(result: Result<T, AwsError>, code: &str) -> String {
    match result {
        Ok(v) => panic!("expected {code}, got {v:?}"),
        Err(e) => {
            assert_eq!(e.code, code, "{e}");
            e.message
        }
    }
}

#[tokio::test]
async fn health_is_serving_after_start() {
    let app = spawn_app().await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "kms.keystore.v1.KeyStore".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    app.stop().await;
}

#[tokio::test]
async fn create_key_returns_aws_metadata_and_default_policy() {
    let app = spawn_app().await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let created = app
        .c()
        .create_key(pb::CreateKeyRequest {
            description: Some("test key 123".into()),
            tags: vec![tag("Project", "alpha")],
            context: ctx(ACCOUNT),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .key_metadata
        .unwrap();
    assert_eq!(created.aws_account_id, ACCOUNT);
    assert_eq!(created.arn, arn(ACCOUNT, &created.key_id));
    assert_eq!(created.key_id.len(), 36);
    assert!(created.enabled);
    assert_eq!(created.key_state, "Enabled");
    assert_eq!(created.description, "test key 123");
    assert_eq!(created.key_usage, "ENCRYPT_DECRYPT");
    assert_eq!(created.key_spec, "SYMMETRIC_DEFAULT");
    assert_eq!(created.customer_master_key_spec, "SYMMETRIC_DEFAULT");
    assert_eq!(created.origin, "AWS_KMS");
    assert_eq!(created.key_manager, "CUSTOMER");
    assert_eq!(created.encryption_algorithms, vec!["SYMMETRIC_DEFAULT"]);
    assert!(!created.multi_region);
    assert!(created.deletion_date.is_none());
    assert_eq!(created.current_key_material_id.as_ref().unwrap().len(), 64);
    assert!(created.creation_date >= before - 1.0 && created.creation_date < before + 60.0);

    // DescribeKey by id and by ARN gives the same metadata.
    assert_eq!(app.describe(&created.key_id).await.unwrap(), created);
    assert_eq!(app.describe(&created.arn).await.unwrap(), created);

    let policy = app
        .c()
        .get_key_policy(pb::GetKeyPolicyRequest {
            key_id: created.key_id.clone(),
            policy_name: Some("default".into()),
            context: ctx(ACCOUNT),
        })
        .await
        .aws()
        .unwrap();
    assert_eq!(policy.policy_name, "default");
    let policy: serde_json::Value = serde_json::from_str(&policy.policy).unwrap();
    assert_eq!(
        policy,
        serde_json::json!({
            "Version": "2012-10-17",
            "Id": "key-default-1",
            "Statement": [{
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
                "Action": "kms:*",
                "Resource": "*"
            }]
        })
    );
    let tags = app.list_tags(&created.key_id, None, None).await.unwrap();
    assert_eq!(tags.tags, vec![tag("Project", "alpha")]);
    app.stop().await;
}

#[tokio::test]
async fn create_key_rejects_what_is_not_supported_yet() {
    let app = spawn_app().await;
    let create = |req: pb::CreateKeyRequest| {
        let mut c = app.c();
        async move {
            c.create_key(pb::CreateKeyRequest {
                context: ctx(ACCOUNT),
                ..req
            })
            .await
            .aws()
        }
    };
    let msg = expect_err(
        create(pb::CreateKeyRequest {
            key_spec: Some("SM2".into()),
            ..Default::default()
        })
        .await,
        "UnsupportedOperationException",
    );
    assert!(msg.contains("SM2"), "{msg}");
    // Not a combination AWS allows.
    expect_err(
        create(pb::CreateKeyRequest {
            key_usage: Some("SIGN_VERIFY".into()),
            ..Default::default()
        })
        .await,
        "ValidationException",
    );
    // Asymmetric keys take imported material: they wait for it.
    let external = create(pb::CreateKeyRequest {
        origin: Some("EXTERNAL".into()),
        key_spec: Some("RSA_2048".into()),
        key_usage: Some("SIGN_VERIFY".into()),
        ..Default::default()
    })
    .await
    .expect("an EXTERNAL RSA key")
    .key_metadata
    .expect("metadata");
    assert_eq!(external.key_state, "PendingImport");
    assert_eq!(external.origin, "EXTERNAL");
    expect_err(
        create(pb::CreateKeyRequest {
            multi_region: Some(true),
            origin: Some("EXTERNAL".into()),
            ..Default::default()
        })
        .await,
        "UnsupportedOperationException",
    );
    expect_err(
        create(pb::CreateKeyRequest {
            custom_key_store_id: Some("cks-1234567890abcdef0".into()),
            ..Default::default()
        })
        .await,
        "CustomKeyStoreNotFoundException",
    );
    expect_err(
        create(pb::CreateKeyRequest {
            policy: Some("{not json".into()),
            ..Default::default()
        })
        .await,
        "MalformedPolicyDocumentException",
    );
    expect_err(
        create(pb::CreateKeyRequest {
            tags: vec![tag("aws:reserved", "x")],
            ..Default::default()
        })
        .await,
        "TagException",
    );
    expect_err(
        create(pb::CreateKeyRequest {
            key_spec: Some("NOPE".into()),
            ..Default::default()
        })
        .await,
        "ValidationException",
    );
    // Explicit defaults are fine, and a given policy is kept verbatim.
    let policy = r#"{ "Version":"2012-10-17",  "Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}]}"#;
    let key = create(pb::CreateKeyRequest {
        key_spec: Some("SYMMETRIC_DEFAULT".into()),
        key_usage: Some("ENCRYPT_DECRYPT".into()),
        origin: Some("AWS_KMS".into()),
        multi_region: Some(false),
        policy: Some(policy.into()),
        ..Default::default()
    })
    .await
    .unwrap()
    .key_metadata
    .unwrap();
    let got = app
        .c()
        .get_key_policy(pb::GetKeyPolicyRequest {
            key_id: key.key_id,
            policy_name: None,
            context: ctx(ACCOUNT),
        })
        .await
        .aws()
        .unwrap();
    assert_eq!(got.policy, policy);
    // Nothing but that key and the EXTERNAL one was created.
    let keys = app
        .c()
        .list_keys(pb::ListKeysRequest {
            context: ctx(ACCOUNT),
            ..Default::default()
        })
        .await
        .aws()
        .unwrap();
    assert_eq!(keys.keys.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn encrypt_decrypt_round_trip_with_every_identifier() {
    let app = spawn_app().await;
    let key = app.create_key().await;
    app.alias(true, "alias/app", &key.key_id).await.unwrap();
    let alias_arn = format!("arn:aws:kms:{REGION}:{ACCOUNT}:alias/app");
    for id in [
        key.key_id.as_str(),
        key.arn.as_str(),
        "alias/app",
        alias_arn.as_str(),
    ] {
        let out = app
            .encrypt(ACCOUNT, id, b"attack at dawn", &[("purpose", "test")])
            .await
            .unwrap();
        assert_eq!(out.key_id, key.arn, "Encrypt returns the key ARN");
        assert_eq!(out.encryption_algorithm, "SYMMETRIC_DEFAULT");
        assert!(out.ciphertext_blob.len() <= 6144);
        let plain = app
            .decrypt(ACCOUNT, &out.ciphertext_blob, &[("purpose", "test")], None)
            .await
            .unwrap();
        assert_eq!(plain.plaintext, b"attack at dawn");
        assert_eq!(plain.key_id, key.arn);
        assert_eq!(plain.encryption_algorithm, "SYMMETRIC_DEFAULT");
        // Naming the key in Decrypt, in any form, works too.
        let again = app
            .decrypt(
                ACCOUNT,
                &out.ciphertext_blob,
                &[("purpose", "test")],
                Some(id),
            )
            .await
            .unwrap();
        assert_eq!(again.plaintext, b"attack at dawn");
    }
    // The largest plaintext KMS accepts.
    let big = vec![0xa5; 4096];
    let out = app.encrypt(ACCOUNT, &key.key_id, &big, &[]).await.unwrap();
    assert!(out.ciphertext_blob.len() <= 6144);
    assert_eq!(
        app.decrypt(ACCOUNT, &out.ciphertext_blob, &[], None)
            .await
            .unwrap()
            .plaintext,
        big
    );
    // Two encryptions of the same plaintext differ (random nonces).
    let a = app.encrypt(ACCOUNT, &key.key_id, b"x", &[]).await.unwrap();
    let b = app.encrypt(ACCOUNT, &key.key_id, b"x", &[]).await.unwrap();
    assert_ne!(a.ciphertext_blob, b.ciphertext_blob);
    app.stop().await;
}

#[tokio::test]
async fn encrypt_validates_its_input() {
    let app = spawn_app().await;
    let key = app.create_key().await;
    let msg = expect_err(
        app.encrypt(ACCOUNT, &key.key_id, &[0; 4097], &[]).await,
        "ValidationException",
    );
    assert_eq!(
        msg,
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"
    );
    expect_err(
        app.encrypt(ACCOUNT, &key.key_id, b"", &[]).await,
        "ValidationException",
    );
    let msg = expect_err(
        app.encrypt(ACCOUNT, "fake-key-id", b"x", &[]).await,
        "NotFoundException",
    );
    assert_eq!(msg, "Invalid keyId 'fake-key-id'");
    let msg = expect_err(
        app.encrypt(ACCOUNT, UNKNOWN_ID, b"x", &[]).await,
        "NotFoundException",
    );
    assert_eq!(
        msg,
        format!("Key '{}' does not exist", arn(ACCOUNT, UNKNOWN_ID))
    );
    let msg = expect_err(
        app.encrypt(ACCOUNT, "alias/missing", b"x", &[]).await,
        "NotFoundException",
    );
    assert_eq!(
        msg,
        format!("Alias arn:aws:kms:{REGION}:{ACCOUNT}:alias/missing is not found.")
    );
    let other_region = format!("arn:aws:kms:eu-west-1:{ACCOUNT}:key/{}", key.key_id);
    let msg = expect_err(
        app.encrypt(ACCOUNT, &other_region, b"x", &[]).await,
        "NotFoundException",
    );
    assert_eq!(msg, "Invalid arn eu-west-1");
    let wrong_algorithm = app
        .c()
        .encrypt(pb::EncryptRequest {
            key_id: key.key_id.clone(),
            plaintext: b"x".to_vec(),
            encryption_algorithm: Some("RSAES_OAEP_SHA_256".into()),
            context: ctx(ACCOUNT),
            ..Default::default()
        })
        .await
        .aws();
    expect_err(wrong_algorithm, "InvalidKeyUsageException");
    let dry = app
        .c()
        .encrypt(pb::EncryptRequest {
            key_id: key.key_id.clone(),
            plaintext: b"x".to_vec(),
            dry_run: Some(true),
            context: ctx(ACCOUNT),
            ..Default::default()
        })
        .await
        .aws();
    expect_err(dry, "DryRunOperationException");
    // Without the gateway's context nothing happens.
    let no_context = app
        .c()
        .encrypt(pb::EncryptRequest {
            key_id: key.key_id.clone(),
            plaintext: b"x".to_vec(),
            ..Default::default()
        })
        .await
        .aws();
    expect_err(no_context, "ValidationException");
    app.stop().await;
}

#[tokio::test]
async fn decrypt_requires_the_exact_encryption_context() {
    let app = spawn_app().await;
    let key = app.create_key().await;
    let blob = app
        .encrypt(ACCOUNT, &key.key_id, b"secret", &[("a", "1"), ("b", "2")])
        .await
        .unwrap()
        .ciphertext_blob;
    // Order does not matter, content does.
    assert!(
        app.decrypt(ACCOUNT, &blob, &[("b", "2"), ("a", "1")], None)
            .await
            .is_ok()
    );
    for wrong in [
        &[][..],
        &[("a", "1")][..],
        &[("a", "1"), ("b", "3")][..],
        &[("a", "1"), ("B", "2")][..],
        &[("a", "1"), ("b", "2"), ("c", "3")][..],
    ] {
        let msg = expect_err(
            app.decrypt(ACCOUNT, &blob, wrong, None).await,
            "InvalidCiphertextException",
        );
        assert_eq!(msg, "");
    }
    app.stop().await;
}

#[tokio::test]
async fn tampered_or_foreign_blobs_are_invalid_ciphertext() {
    let app = spawn_app().await;
    let key = app.create_key().await;
    let blob = app
        .encrypt(ACCOUNT, &key.key_id, b"secret", &[])
        .await
        .unwrap()
        .ciphertext_blob;
    for bit in 0..blob.len() * 8 {
        let mut bad = blob.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let err = app.decrypt(ACCOUNT, &bad, &[], None).await.unwrap_err();
        // A flip inside the key id can make it name no key at all, or one of another
        // form; every outcome is opaque.
        assert!(
            err.code == "InvalidCiphertextException" && err.message.is_empty(),
            "bit {bit}: {err}"
        );
    }
    for junk in [
        vec![0u8; 1],
        vec![1u8; 100],
        b"not a kms blob at all".to_vec(),
    ] {
        expect_err(
            app.decrypt(ACCOUNT, &junk, &[], None).await,
            "InvalidCiphertextException",
        );
    }
    expect_err(
        app.decrypt(ACCOUNT, &[], &[], None).await,
        "ValidationException",
    );
    expect_err(
        app.decrypt(ACCOUNT, &vec![1u8; 6145], &[], None).await,
        "ValidationException",
    );
    // Truncations.
    for cut in [1, 10, 40, blob.len() - 1] {
        expect_err(
            app.decrypt(ACCOUNT, &blob[..cut], &[], None).await,
            "InvalidCiphertextException",
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn decrypt_with_the_wrong_key_is_incorrect_key() {
    let app = spawn_app().await;
    let a = app.create_key().await;
    let b = app.create_key().await;
    let blob = app
        .encrypt(ACCOUNT, &a.key_id, b"for a", &[])
        .await
        .unwrap()
        .ciphertext_blob;
    let msg = expect_err(
        app.decrypt(ACCOUNT, &blob, &[], Some(&b.key_id)).await,
        "IncorrectKeyException",
    );
    assert_eq!(
        msg,
        "The key ID in the request does not identify a CMK that can perform this operation."
    );
    expect_err(
        app.decrypt(ACCOUNT, &blob, &[], Some(UNKNOWN_ID)).await,
        "NotFoundException",
    );
    app.stop().await;
}

#[tokio::test]
async fn disabled_and_pending_deletion_keys_refuse_crypto() {
    let app = spawn_app().await;
    let key = app.create_key().await;
    let blob = app
        .encrypt(ACCOUNT, &key.key_id, b"x", &[])
        .await
        .unwrap()
        .ciphertext_blob;

    app.key_op(KeyOp::Disable, &key.key_id).await.unwrap();
    let described = app.describe(&key.key_id).await.unwrap();
    assert_eq!(described.key_state, "Disabled");
    assert!(!described.enabled);
    let msg = expect_err(
        app.encrypt(ACCOUNT, &key.key_id, b"x", &[]).await,
        "DisabledException",
    );
    assert_eq!(msg, format!("{} is disabled.", key.arn));
    expect_err(
        app.decrypt(ACCOUNT, &blob, &[], None).await,
        "DisabledException",
    );
    // Disabling twice is fine, as in AWS.
    app.key_op(KeyOp::Disable, &key.key_id).await.unwrap();
    app.key_op(KeyOp::Enable, &key.key_id).await.unwrap();
    assert!(app.decrypt(ACCOUNT, &blob, &[], None).await.is_ok());

    // Out-of-range waiting periods.
    for days in [0, 6, 31, 366] {
        expect_err(
            app.schedule_deletion(&key.key_id, Some(days)).await,
            "ValidationException",
        );
    }
    let scheduled = app.schedule_deletion(&key.key_id, None).await.unwrap();
    assert_eq!(scheduled.key_id, key.arn);
    assert_eq!(scheduled.key_state, "PendingDeletion");
    assert_eq!(scheduled.pending_window_in_days, 30);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let deletion_date = scheduled.deletion_date.expect("a deletion date");
    assert!((deletion_date - (now + 30.0 * 86400.0)).abs() < 60.0);
    let described = app.describe(&key.key_id).await.unwrap();
    assert_eq!(described.key_state, "PendingDeletion");
    assert_eq!(described.deletion_date, Some(deletion_date));
    assert!(!described.enabled);

    let pending = format!("{} is pending deletion.", key.arn);
    for result in [
        app.encrypt(ACCOUNT, &key.key_id, b"x", &[]).await.map(drop),
        app.decrypt(ACCOUNT, &blob, &[], None).await.map(drop),
        app.key_op(KeyOp::Enable, &key.key_id).await,
        app.key_op(KeyOp::Disable, &key.key_id).await,
        app.schedule_deletion(&key.key_id, Some(7)).await.map(drop),
    ] {
        assert_eq!(expect_err(result, "KMSInvalidStateException"), pending);
    }

    let cancelled = app
        .c()
        .cancel_key_deletion(pb::KeyIdRequest {
            key_id: key.key_id.clone(),
            context: ctx(ACCOUNT),
        })
        .await
        .aws()
        .unwrap();
    assert_eq!(cancelled.key_id, key.arn);
    let described = app.describe(&key.key_id).await.unwrap();
    assert_eq!(described.key_state, "Disabled", "AWS cancels into Disabled");
    assert!(described.deletion_date.is_none());
    expect_err(
        app.key_op(KeyOp::CancelDeletion, &key.key_id).await,
        "KMSInvalidStateException",
    );
    app.key_op(KeyOp::Enable, &key.key_id).await.unwrap();
    assert!(app.decrypt(ACCOUNT, &blob, &[], None).await.is_ok());
    app.stop().await;
}

/// PutKeyPolicy as `account`.
async fn put_policy(
    app: &App,
    account: &str,
    key_id: &str,
    policy: &str,
    bypass: bool,
) -> Result<(), AwsError> {
    app.c()
        .put_key_policy(pb::PutKeyPolicyRequest {
            key_id: key_id.into(),
            policy: policy.into(),
            bypass_policy_lockout_safety_check: bypass,
            context: ctx(account),
            ..Default::default()
        })
        .await
        .aws()
        .map(drop)
}

/// A key policy: the owner's root may do everything, plus `extra` statements.
fn policy_with(extra: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Owner","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:*","Resource":"*"}}{extra}]}}"#
    )
}

#[tokio::test]
async fn cross_account_use_is_decided_by_the_key_policy() {
    let app = spawn_app().await;
    let mine = app.create_key().await;
    app.alias(true, "alias/mine", &mine.key_id).await.unwrap();
    let blob = app
        .encrypt(ACCOUNT, &mine.key_id, b"mine", &[])
        .await
        .unwrap()
        .ciphertext_blob;
    let alias_arn = format!("arn:aws:kms:{REGION}:{ACCOUNT}:alias/mine");

    // The default key policy names only the owner's account: authz denies, with
    // AWS's message.
    let msg = expect_err(
        app.encrypt(OTHER_ACCOUNT, &mine.arn, b"x", &[]).await,
        "AccessDeniedException",
    );
    assert_eq!(
        msg,
        format!(
            "User: arn:aws:iam::{OTHER_ACCOUNT}:root is not authorized to perform: kms:Encrypt on resource: {} because no resource-based policy allows the kms:Encrypt action",
            mine.arn
        )
    );
    let msg = expect_err(
        app.decrypt(OTHER_ACCOUNT, &blob, &[], None).await,
        "AccessDeniedException",
    );
    assert!(
        msg.contains("kms:Decrypt") && msg.contains(&mine.arn),
        "{msg}"
    );
    expect_err(
        app.encrypt(OTHER_ACCOUNT, &alias_arn, b"x", &[]).await,
        "AccessDeniedException",
    );
    // A bare id or alias name names a key in the caller's own account: there is none.
    expect_err(
        app.encrypt(OTHER_ACCOUNT, &mine.key_id, b"x", &[]).await,
        "NotFoundException",
    );
    expect_err(
        app.encrypt(OTHER_ACCOUNT, "alias/mine", b"x", &[]).await,
        "NotFoundException",
    );

    // The owner grants the other account Encrypt and Decrypt (and, uselessly,
    // DisableKey: it does not work across accounts).
    let grant = format!(
        r#",{{"Sid":"Partner","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{OTHER_ACCOUNT}:root"}},"Action":["kms:Encrypt","kms:Decrypt","kms:DisableKey"],"Resource":"*"}}"#
    );
    put_policy(&app, ACCOUNT, &mine.key_id, &policy_with(&grant), false)
        .await
        .unwrap();
    let theirs = app
        .encrypt(OTHER_ACCOUNT, &mine.arn, b"shared", &[("k", "v")])
        .await
        .unwrap();
    assert_eq!(theirs.key_id, mine.arn);
    let plain = app
        .decrypt(OTHER_ACCOUNT, &theirs.ciphertext_blob, &[("k", "v")], None)
        .await
        .unwrap();
    assert_eq!(plain.plaintext, b"shared");
    assert_eq!(
        app.decrypt(OTHER_ACCOUNT, &blob, &[], None)
            .await
            .unwrap()
            .plaintext,
        b"mine"
    );
    app.encrypt(OTHER_ACCOUNT, &alias_arn, b"x", &[])
        .await
        .unwrap();
    // Not granted: DescribeKey.
    let denied = app
        .c()
        .describe_key(pb::DescribeKeyRequest {
            key_id: mine.arn.clone(),
            context: ctx(OTHER_ACCOUNT),
            ..Default::default()
        })
        .await
        .aws();
    expect_err(denied, "AccessDeniedException");
    // Granted, but not an operation that works across accounts.
    let disable = app
        .c()
        .disable_key(pb::KeyIdRequest {
            key_id: mine.arn.clone(),
            context: ctx(OTHER_ACCOUNT),
        })
        .await
        .aws();
    let msg = expect_err(disable, "AccessDeniedException");
    assert!(msg.contains("kms:DisableKey"), "{msg}");
    assert_eq!(
        app.describe(&mine.key_id).await.unwrap().key_state,
        "Enabled"
    );
    // Nor can it point its aliases at the key or change the policy.
    let alias = app
        .c()
        .create_alias(pb::AliasRequest {
            alias_name: "alias/borrowed".into(),
            target_key_id: mine.arn.clone(),
            context: ctx(OTHER_ACCOUNT),
        })
        .await
        .aws();
    expect_err(alias, "AccessDeniedException");
    expect_err(
        put_policy(&app, OTHER_ACCOUNT, &mine.arn, &policy_with(""), true).await,
        "AccessDeniedException",
    );

    // ListKeys shows only one's own keys; ResolveKey (internal) resolves across accounts.
    let listed = app
        .c()
        .list_keys(pb::ListKeysRequest {
            context: ctx(OTHER_ACCOUNT),
            ..Default::default()
        })
        .await
        .aws()
        .unwrap();
    assert!(listed.keys.is_empty());
    let resolved = app.resolve(OTHER_ACCOUNT, &mine.arn).await.unwrap();
    assert_eq!(resolved.account_id, ACCOUNT);
    assert_eq!(resolved.key_id, mine.key_id);
    app.stop().await;
}

#[tokio::test]
async fn an_explicit_deny_wins() {
    let app = spawn_app().await;
    let key = app.create_key().await;
    let blob = app
        .encrypt(ACCOUNT, &key.key_id, b"before", &[])
        .await
        .unwrap()
        .ciphertext_blob;
    let deny = format!(
        r#",{{"Sid":"NoEncrypt","Effect":"Deny","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:Encrypt","Resource":"*"}}"#
    );
    put_policy(&app, ACCOUNT, &key.key_id, &policy_with(&deny), false)
        .await
        .unwrap();
    let msg = expect_err(
        app.encrypt(ACCOUNT, &key.key_id, b"x", &[]).await,
        "AccessDeniedException",
    );
    assert_eq!(
        msg,
        format!(
            "User: arn:aws:iam::{ACCOUNT}:root is not authorized to perform: kms:Encrypt on resource: {} with an explicit deny in a resource-based policy",
            key.arn
        )
    );
    // Only Encrypt is denied.
    assert_eq!(
        app.decrypt(ACCOUNT, &blob, &[], None)
            .await
            .unwrap()
            .plaintext,
        b"before"
    );
    // GenerateDataKey is another action; ReEncrypt to the key needs kms:ReEncryptTo.
    app.c()
        .generate_data_key(pb::GenerateDataKeyRequest {
            key_id: key.key_id.clone(),
            key_spec: Some("AES_256".into()),
            context: ctx(ACCOUNT),
            ..Default::default()
        })
        .await
        .unwrap();
    let deny_to = r#",{"Effect":"Deny","Principal":"*","Action":"kms:ReEncryptTo","Resource":"*"}"#;
    let other = app.create_key().await;
    put_policy(&app, ACCOUNT, &other.key_id, &policy_with(deny_to), false)
        .await
        .unwrap();
    let re = app
        .c()
        .re_encrypt(pb::ReEncryptRequest {
            ciphertext_blob: blob.clone(),
            destination_key_id: other.key_id.clone(),
            context: ctx(ACCOUNT),
            ..Default::default()
        })
        .await
        .aws();
    let msg = expect_err(re, "AccessDeniedException");
    assert!(
        msg.contains("kms:ReEncryptTo") && msg.contains(&other.arn),
        "{msg}"
    );
    // The other way round, ReEncryptFrom on `other` and ReEncryptTo on `key` are allowed.
    let from_other = app
        .encrypt(ACCOUNT, &other.key_id, b"moved", &[])
        .await
        .unwrap()
        .ciphertext_blob;
    app.c()
        .re_encrypt(pb::ReEncryptRequest {
            ciphertext_blob: from_other,
            destination_key_id: key.key_id.clone(),
            context: ctx(ACCOUNT),
            ..Default::default()
        })
        .await
        .unwrap();
    app.stop().await;
}

#[tokio::test]
async fn key_policy_conditions_see_the_request() {
    let app = spawn_app().await;
    let key = app.create_key().await;
    app.alias(true, "alias/conditional", &key.key_id)
        .await
        .unwrap();
    // Encrypt only with the right purpose, and only through the alias.
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"NotAction":"kms:Encrypt","Resource":"*"}},
            {{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:Encrypt","Resource":"*",
              "Condition":{{"StringEquals":{{"kms:EncryptionContext:purpose":"test","kms:RequestAlias":"alias/conditional","kms:EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}},
                           "ForAnyValue:StringEquals":{{"kms:ResourceAliases":"alias/conditional"}}}}}}
        ]}}"#
    );
    put_policy(&app, ACCOUNT, &key.key_id, &policy, false)
        .await
        .unwrap();
    app.encrypt(ACCOUNT, "alias/conditional", b"x", &[("purpose", "test")])
        .await
        .unwrap();
    for (id, context) in [
        ("alias/conditional", &[("purpose", "other")][..]),
        ("alias/conditional", &[][..]),
        (key.key_id.as_str(), &[("purpose", "test")][..]),
    ] {
        let msg = expect_err(
            app.encrypt(ACCOUNT, id, b"x", context).await,
            "AccessDeniedException",
        );
        assert!(
            msg.contains("because no resource-based policy allows"),
            "{msg}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn the_policy_lockout_safety_check() {
    let app = spawn_app().await;
    let key = app.create_key().await;
    let encrypt_only = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:Encrypt","Resource":"*"}}]}}"#
    );
    let msg = expect_err(
        put_policy(&app, ACCOUNT, &key.key_id, &encrypt_only, false).await,
        "MalformedPolicyDocumentException",
    );
    assert_eq!(
        msg,
        "The new key policy will not allow you to update the key policy in the future."
    );
    assert_eq!(app.resolve(ACCOUNT, &key.key_id).await.unwrap().version, 1);
    let create = |bypass: bool| {
        let mut c = app.c();
        let req = pb::CreateKeyRequest {
            policy: Some(encrypt_only.clone()),
            bypass_policy_lockout_safety_check: bypass,
            context: ctx(ACCOUNT),
            ..Default::default()
        };
        async move { c.create_key(req).await.aws() }
    };
    let msg = expect_err(create(false).await, "MalformedPolicyDocumentException");
    assert!(
        msg.contains("will not allow you to update the key policy"),
        "{msg}"
    );
    // Bypassed, the policy is taken and does what it says: the owner is locked out.
    let locked = create(true).await.unwrap().key_metadata.unwrap();
    app.encrypt(ACCOUNT, &locked.key_id, b"x", &[])
        .await
        .unwrap();
    expect_err(
        put_policy(&app, ACCOUNT, &locked.key_id, &policy_with(""), true).await,
        "AccessDeniedException",
    );
    put_policy(&app, ACCOUNT, &key.key_id, &encrypt_only, true)
        .await
        .unwrap();
    expect_err(app.describe(&key.key_id).await, "AccessDeniedException");
    app.stop().await;
}

#[tokio::test]
async fn the_endpoint_policy_gates_requests_through_an_endpoint() {
    let app = spawn_app().await;
    let key = app.create_key().await;
    let blob = app
        .encrypt(ACCOUNT, &key.key_id, b"x", &[])
        .await
        .unwrap()
        .ciphertext_blob;
    // Through an endpoint whose policy allows only Decrypt.
    let through = || {
        let mut c = ctx(ACCOUNT).unwrap();
        c.vpce_id = "vpce-1234abcdf5678c90a".into();
        c.vpc_id = "vpc-12345678".into();
        c.endpoint_policy = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}]}"#.into();
        Some(c)
    };
    let status = app
        .c()
        .encrypt(pb::EncryptRequest {
            key_id: key.key_id.clone(),
            plaintext: b"x".to_vec(),
            context: through(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let e = AwsError::from_status(&status);
    assert_eq!(e.code, "AccessDeniedException");
    assert_eq!(
        e.message,
        format!(
            "User: arn:aws:iam::{ACCOUNT}:root is not authorized to perform: kms:Encrypt on resource: {} because no VPC endpoint policy allows the kms:Encrypt action",
            key.arn
        )
    );
    assert_eq!(
        status
            .metadata()
            .get(kms_keystore::DENIED_BY_ENDPOINT_POLICY)
            .unwrap(),
        "true"
    );
    app.c()
        .decrypt(pb::DecryptRequest {
            ciphertext_blob: blob,
            context: through(),
            ..Default::default()
        })
        .await
        .unwrap();
    // A key policy deny is not the endpoint's doing.
    let status = app
        .c()
        .encrypt(pb::EncryptRequest {
            key_id: key.arn.clone(),
            plaintext: b"x".to_vec(),
            context: ctx(OTHER_ACCOUNT),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        status
            .metadata()
            .get(kms_keystore::DENIED_BY_ENDPOINT_POLICY)
            .is_none()
    );
    app.stop().await;
}

#[tokio::test]
async fn without_authz_every_call_fails_closed() {
    let mut app = spawn_app().await;
    let key = app.create_key().await;
    let blob = app
        .encrypt(ACCOUNT, &key.key_id, b"x", &[])
        .await
        .unwrap()
        .ciphertext_blob;
    app.stop_authz().await;

    let fails = |e: AwsError| {
        assert!(
            e.code == "DependencyTimeoutException" || e.code == "KMSInternalException",
            "{e}"
        );
    };
    fails(
        app.encrypt(ACCOUNT, &key.key_id, b"x", &[])
            .await
            .unwrap_err(),
    );
    fails(app.decrypt(ACCOUNT, &blob, &[], None).await.unwrap_err());
    fails(app.describe(&key.key_id).await.unwrap_err());
    fails(app.key_op(KeyOp::Disable, &key.key_id).await.unwrap_err());
    fails(
        app.alias(true, "alias/never", &key.key_id)
            .await
            .unwrap_err(),
    );
    let create = app
        .c()
        .create_key(pb::CreateKeyRequest {
            context: ctx(ACCOUNT),
            ..Default::default()
        })
        .await
        .aws();
    fails(create.unwrap_err());
    // Nothing happened (ResolveKey is internal and asks no one).
    let after = app.resolve(ACCOUNT, &key.key_id).await.unwrap();
    assert_eq!(after.key_state, "Enabled");
    assert_eq!(after.version, 1);
    expect_err(
        app.resolve(ACCOUNT, "alias/never").await,
        "NotFoundException",
    );
    app.stop().await;
}

#[tokio::test]
async fn re_encrypt_moves_data_between_keys_and_contexts() {
    let app = spawn_app().await;
    let a = app.create_key().await;
    let b = app.create_key().await;
    let blob = app
        .encrypt(ACCOUNT, &a.key_id, b"payload", &[("v", "1")])
        .await
        .unwrap()
        .ciphertext_blob;
    let re = |source_key_id: Option<String>, source_ctx: &[(&str, &str)]| {
        let mut c = app.c();
        let req = pb::ReEncryptRequest {
            ciphertext_blob: blob.clone(),
            source_encryption_context: map(source_ctx),
            source_key_id,
            destination_key_id: b.key_id.clone(),
            destination_encryption_context: map(&[("v", "2")]),
            context: ctx(ACCOUNT),
            ..Default::default()
        };
        async move { c.re_encrypt(req).await.aws() }
    };
    let out = re(Some(a.arn.clone()), &[("v", "1")]).await.unwrap();
    assert_eq!(out.source_key_id, a.arn);
    assert_eq!(out.key_id, b.arn);
    assert_eq!(out.source_encryption_algorithm, "SYMMETRIC_DEFAULT");
    assert_eq!(out.destination_encryption_algorithm, "SYMMETRIC_DEFAULT");
    let plain = app
        .decrypt(ACCOUNT, &out.ciphertext_blob, &[("v", "2")], None)
        .await
        .unwrap();
    assert_eq!(plain.plaintext, b"payload");
    assert_eq!(plain.key_id, b.arn);
    expect_err(
        app.decrypt(ACCOUNT, &out.ciphertext_blob, &[("v", "1")], None)
            .await,
        "InvalidCiphertextException",
    );
    expect_err(
        re(Some(b.key_id.clone()), &[("v", "1")]).await,
        "IncorrectKeyException",
    );
    expect_err(re(None, &[("v", "x")]).await, "InvalidCiphertextException");
    app.key_op(KeyOp::Disable, &b.key_id).await.unwrap();
    expect_err(re(None, &[("v", "1")]).await, "DisabledException");
    app.stop().await;
}

#[tokio::test]
async fn crypto_responses_name_the_key_material() {
    let app = spawn_app().await;
    let src = app.create_key().await;
    let dst = app.create_key().await;
    let src_material = src.current_key_material_id.clone().unwrap();
    let dst_material = dst.current_key_material_id.clone().unwrap();
    assert_eq!(src_material.len(), 64);
    assert!(src_material.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(src_material, dst_material);

    let blob = app
        .encrypt(ACCOUNT, &src.key_id, b"m", &[])
        .await
        .unwrap()
        .ciphertext_blob;
    let decrypted = app.decrypt(ACCOUNT, &blob, &[], None).await.unwrap();
    assert_eq!(decrypted.key_material_id.as_deref(), Some(&*src_material));

    let gdk = app
        .c()
        .generate_data_key(pb::GenerateDataKeyRequest {
            key_id: src.key_id.clone(),
            key_spec: Some("AES_256".into()),
            context: ctx(ACCOUNT),
            ..Default::default()
        })
        .await
        .aws()
        .unwrap();
    assert_eq!(gdk.key_material_id.as_deref(), Some(&*src_material));
    let gdkwp = app
        .c()
        .generate_data_key_without_plaintext(pb::GenerateDataKeyRequest {
            key_id: src.arn.clone(),
            number_of_bytes: Some(16),
            context: ctx(ACCOUNT),
            ..Default::default()
        })
        .await
        .aws()
        .unwrap();
    assert_eq!(gdkwp.key_material_id.as_deref(), Some(&*src_material));

    let re = app
        .c()
        .re_encrypt(pb::ReEncryptRequest {
            ciphertext_blob: blob.clone(),
            destination_key_id: dst.key_id.clone(),
            context: ctx(ACCOUNT),
            ..Default::default()
        })
        .await
        .aws()
        .unwrap();
    assert_eq!(re.source_key_material_id.as_deref(), Some(&*src_material));
    assert_eq!(
        re.destination_key_material_id.as_deref(),
        Some(&*dst_material)
    );
    let back = app
        .decrypt(ACCOUNT, &re.ciphertext_blob, &[], None)
        .await
        .unwrap();
    assert_eq!(back.key_material_id.as_deref(), Some(&*dst_material));

    // On the KMS wire (the gateway encodes these messages as they are), with the
    // botocore model's member names.
    let json = serde_json::to_value(&re).unwrap();
    assert_eq!(json["SourceKeyMaterialId"], src_material.as_str());
    assert_eq!(json["DestinationKeyMaterialId"], dst_material.as_str());
    for json in [
        serde_json::to_value(&decrypted).unwrap(),
        serde_json::to_value(&gdk).unwrap(),
        serde_json::to_value(&gdkwp).unwrap(),
    ] {
        assert_eq!(json["KeyMaterialId"], src_material.as_str(), "{json}");
    }
    // Unset, the member is omitted rather than null.
    let unset = serde_json::to_value(pb::DecryptResponse::default()).unwrap();
    assert!(unset.get("KeyMaterialId").is_none(), "{unset}");
    app.stop().await;
}

#[tokio::test]
async fn generate_data_keys_and_random_bytes() {
    let app = spawn_app().await;
    let key = app.create_key().await;
    let gdk = |number_of_bytes: Option<i32>, key_spec: Option<&str>| {
        let mut c = app.c();
        let req = pb::GenerateDataKeyRequest {
            key_id: key.key_id.clone(),
            encryption_context: map(&[("file", "a.txt")]),
            number_of_bytes,
            key_spec: key_spec.map(Into::into),
            context: ctx(ACCOUNT),
            ..Default::default()
        };
        async move { c.generate_data_key(req).await.aws() }
    };
    for (n, spec, len) in [
        (None, Some("AES_256"), 32),
        (None, Some("AES_128"), 16),
        (Some(1), None, 1),
        (Some(64), None, 64),
        (Some(1024), None, 1024),
    ] {
        let out = gdk(n, spec).await.unwrap();
        assert_eq!(out.plaintext.len(), len);
        assert_eq!(out.key_id, key.arn);
        let plain = app
            .decrypt(ACCOUNT, &out.ciphertext_blob, &[("file", "a.txt")], None)
            .await
            .unwrap();
        assert_eq!(plain.plaintext, out.plaintext);
    }
    for (n, spec) in [
        (None, None),
        (Some(32), Some("AES_256")),
        (Some(0), None),
        (Some(1025), None),
        (None, Some("AES_512")),
    ] {
        expect_err(gdk(n, spec).await, "ValidationException");
    }
    assert_eq!(
        expect_err(gdk(None, None).await, "ValidationException"),
        "Please specify either number of bytes or key spec."
    );

    let without = app
        .c()
        .generate_data_key_without_plaintext(pb::GenerateDataKeyRequest {
            key_id: "alias/none".into(),
            key_spec: Some("AES_256".into()),
            context: ctx(ACCOUNT),
            ..Default::default()
        })
        .await
        .aws();
    expect_err(without, "NotFoundException");
    let without = app
        .c()
        .generate_data_key_without_plaintext(pb::GenerateDataKeyRequest {
            key_id: key.arn.clone(),
            key_spec: Some("AES_256".into()),
            context: ctx(ACCOUNT),
            ..Default::default()
        })
        .await
        .aws()
        .unwrap();
    assert_eq!(without.key_id, key.arn);
    let plain = app
        .decrypt(ACCOUNT, &without.ciphertext_blob, &[], None)
        .await
        .unwrap();
    assert_eq!(plain.plaintext.len(), 32);

    let random = |n: Option<i32>| {
        let mut c = app.c();
        async move {
            c.generate_random(pb::GenerateRandomRequest {
                number_of_bytes: n,
                context: ctx(ACCOUNT),
                ..Default::default()
            })
            .await
            .aws()
        }
    };
    for n in [1, 12, 1024] {
        assert_eq!(random(Some(n)).await.unwrap().plaintext.len(), n as usize);
    }
    assert_ne!(
        random(Some(32)).await.unwrap().plaintext,
        random(Some(32)).await.unwrap().plaintext
    );
    assert_eq!(
        expect_err(random(None).await, "ValidationException"),
        "NumberOfBytes is required."
    );
    assert_eq!(
        expect_err(random(Some(1025)).await, "ValidationException"),
        "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
    );
    expect_err(random(Some(0)).await, "ValidationException");
    app.stop().await;
}

#[tokio::test]
async fn aliases_lifecycle() {
    let app = spawn_app().await;
    let a = app.create_key().await;
    let b = app.create_key().await;
    app.alias(true, "alias/one", &a.key_id).await.unwrap();
    app.alias(true, "alias/two", &a.arn).await.unwrap();
    app.alias(true, "alias/three", &b.key_id).await.unwrap();

    let msg = expect_err(
        app.alias(true, "alias/one", &b.key_id).await,
        "AlreadyExistsException",
    );
    assert_eq!(
        msg,
        format!("An alias with the name arn:aws:kms:{REGION}:{ACCOUNT}:alias/one already exists")
    );
    expect_err(
        app.alias(true, "alias/aws/ebs", &a.key_id).await,
        "NotAuthorizedException",
    );
    let msg = expect_err(
        app.alias(true, "one", &a.key_id).await,
        "ValidationException",
    );
    assert!(
        msg.starts_with("Alias must start with the prefix \"alias/\""),
        "{msg}"
    );
    expect_err(
        app.alias(true, "alias/bad name", &a.key_id).await,
        "ValidationException",
    );
    expect_err(
        app.alias(true, "alias/four", "alias/one").await,
        "ValidationException",
    );
    expect_err(
        app.alias(true, "alias/four", UNKNOWN_ID).await,
        "NotFoundException",
    );

    let all = app.list_aliases(None, None, None).await.unwrap();
    let names: Vec<_> = all.aliases.iter().map(|x| x.alias_name.as_str()).collect();
    assert_eq!(names, vec!["alias/one", "alias/three", "alias/two"]);
    assert!(!all.truncated);
    let first = &all.aliases[0];
    assert_eq!(
        first.alias_arn,
        format!("arn:aws:kms:{REGION}:{ACCOUNT}:alias/one")
    );
    assert_eq!(first.target_key_id.as_deref(), Some(a.key_id.as_str()));
    assert!(first.creation_date.is_some() && first.last_updated_date.is_some());

    let of_a = app.list_aliases(Some(&a.arn), None, None).await.unwrap();
    assert_eq!(of_a.aliases.len(), 2);
    let page = app.list_aliases(None, Some(2), None).await.unwrap();
    assert_eq!(page.aliases.len(), 2);
    assert!(page.truncated);
    let rest = app
        .list_aliases(None, Some(2), page.next_marker.clone())
        .await
        .unwrap();
    assert_eq!(rest.aliases.len(), 1);
    assert_eq!(rest.aliases[0].alias_name, "alias/two");
    assert!(!rest.truncated && rest.next_marker.is_none());

    // UpdateAlias repoints; the alias follows.
    app.alias(false, "alias/one", &b.key_id).await.unwrap();
    let out = app.encrypt(ACCOUNT, "alias/one", b"x", &[]).await.unwrap();
    assert_eq!(out.key_id, b.arn);
    expect_err(
        app.alias(false, "alias/missing", &b.key_id).await,
        "NotFoundException",
    );
    // A key pending deletion cannot become a target.
    app.schedule_deletion(&a.key_id, Some(7)).await.unwrap();
    expect_err(
        app.alias(false, "alias/three", &a.key_id).await,
        "KMSInvalidStateException",
    );
    expect_err(
        app.alias(true, "alias/five", &a.key_id).await,
        "KMSInvalidStateException",
    );

    let delete = |name: &str| {
        let mut c = app.c();
        let req = pb::DeleteAliasRequest {
            alias_name: name.into(),
            context: ctx(ACCOUNT),
        };
        async move { c.delete_alias(req).await.aws() }
    };
    delete("alias/one").await.unwrap();
    let msg = expect_err(delete("alias/one").await, "NotFoundException");
    assert_eq!(
        msg,
        format!("Alias arn:aws:kms:{REGION}:{ACCOUNT}:alias/one is not found.")
    );
    expect_err(
        app.encrypt(ACCOUNT, "alias/one", b"x", &[]).await,
        "NotFoundException",
    );
    // Aliases are per account.
    let theirs = app.create_key_as(OTHER_ACCOUNT).await;
    let mut c = app.c();
    c.create_alias(pb::AliasRequest {
        alias_name: "alias/two".into(),
        target_key_id: theirs.key_id.clone(),
        context: ctx(OTHER_ACCOUNT),
    })
    .await
    .unwrap();
    let out = app
        .encrypt(OTHER_ACCOUNT, "alias/two", b"x", &[])
        .await
        .unwrap();
    assert_eq!(out.key_id, theirs.arn);
    // In the caller's account, alias/two still names key a, now pending deletion.
    expect_err(
        app.encrypt(ACCOUNT, "alias/two", b"x", &[]).await,
        "KMSInvalidStateException",
    );
    app.stop().await;
}

#[tokio::test]
async fn tags_lifecycle() {
    let app = spawn_app().await;
    let key = app.create_key().await;
    let tag_resource = |tags: Vec<pb::Tag>| {
        let mut c = app.c();
        let req = pb::TagResourceRequest {
            key_id: key.key_id.clone(),
            tags,
            context: ctx(ACCOUNT),
        };
        async move { c.tag_resource(req).await.aws() }
    };
    tag_resource(vec![tag("b", "2"), tag("a", "1"), tag("c", "")])
        .await
        .unwrap();
    tag_resource(vec![tag("a", "one")]).await.unwrap();
    let listed = app.list_tags(&key.arn, None, None).await.unwrap();
    assert_eq!(
        listed.tags,
        vec![tag("a", "one"), tag("b", "2"), tag("c", "")]
    );
    assert!(!listed.truncated);

    let page = app.list_tags(&key.key_id, Some(2), None).await.unwrap();
    assert_eq!(page.tags, vec![tag("a", "one"), tag("b", "2")]);
    assert!(page.truncated);
    let rest = app
        .list_tags(&key.key_id, Some(2), page.next_marker)
        .await
        .unwrap();
    assert_eq!(rest.tags, vec![tag("c", "")]);
    assert!(!rest.truncated);

    let msg = expect_err(
        tag_resource(vec![tag("aws:owner", "x")]).await,
        "TagException",
    );
    assert_eq!(msg, "Tags beginning with aws: are reserved");
    expect_err(
        tag_resource(vec![tag("", "x")]).await,
        "ValidationException",
    );
    let too_many: Vec<_> = (0..48).map(|i| tag(&format!("k{i:02}"), "v")).collect();
    expect_err(
        tag_resource(too_many.clone()).await,
        "LimitExceededException",
    );
    // Nothing of the refused request was kept.
    assert_eq!(
        app.list_tags(&key.key_id, None, None)
            .await
            .unwrap()
            .tags
            .len(),
        3
    );
    tag_resource(too_many[..47].to_vec()).await.unwrap();
    assert_eq!(
        app.list_tags(&key.key_id, None, None)
            .await
            .unwrap()
            .tags
            .len(),
        50
    );

    let untag = |keys: &[&str]| {
        let mut c = app.c();
        let req = pb::UntagResourceRequest {
            key_id: key.key_id.clone(),
            tag_keys: keys.iter().map(|k| k.to_string()).collect(),
            context: ctx(ACCOUNT),
        };
        async move { c.untag_resource(req).await.aws() }
    };
    untag(&["a", "not-there"]).await.unwrap();
    let listed = app.list_tags(&key.key_id, Some(1), None).await.unwrap();
    assert_eq!(listed.tags, vec![tag("b", "2")]);

    app.schedule_deletion(&key.key_id, Some(7)).await.unwrap();
    expect_err(
        tag_resource(vec![tag("x", "y")]).await,
        "KMSInvalidStateException",
    );
    expect_err(untag(&["b"]).await, "KMSInvalidStateException");
    // Reading tags works in every state.
    assert!(app.list_tags(&key.key_id, None, None).await.is_ok());
    expect_err(
        app.list_tags(UNKNOWN_ID, None, None).await,
        "NotFoundException",
    );
    app.stop().await;
}

#[tokio::test]
async fn list_keys_paginates() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(app.create_key().await.key_id);
    }
    created.sort();
    let list = |limit: Option<i32>, marker: Option<String>| {
        let mut c = app.c();
        async move {
            c.list_keys(pb::ListKeysRequest {
                limit,
                marker,
                context: ctx(ACCOUNT),
            })
            .await
            .aws()
        }
    };
    let all = list(None, None).await.unwrap();
    assert_eq!(all.keys.len(), 5);
    assert!(!all.truncated && all.next_marker.is_none());
    for entry in &all.keys {
        assert_eq!(entry.key_arn, arn(ACCOUNT, &entry.key_id));
    }

    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let page = list(Some(2), marker).await.unwrap();
        assert!(page.keys.len() <= 2);
        seen.extend(page.keys.into_iter().map(|k| k.key_id));
        if !page.truncated {
            assert!(page.next_marker.is_none());
            break;
        }
        marker = page.next_marker;
    }
    assert_eq!(seen, created);

    expect_err(
        list(Some(1), Some("not-a-marker".into())).await,
        "InvalidMarkerException",
    );
    expect_err(list(Some(0), None).await, "ValidationException");
    expect_err(list(Some(1001), None).await, "ValidationException");
    app.stop().await;
}

#[tokio::test]
async fn descriptions_and_key_policies() {
    let app = spawn_app().await;
    let key = app.create_key().await;
    let resolved = app.resolve(ACCOUNT, &key.key_id).await.unwrap();
    assert_eq!(resolved.version, 1);
    assert_eq!(resolved.key_state, "Enabled");

    app.c()
        .update_key_description(pb::UpdateKeyDescriptionRequest {
            key_id: key.key_id.clone(),
            description: "new words".into(),
            context: ctx(ACCOUNT),
        })
        .await
        .unwrap();
    assert_eq!(
        app.describe(&key.key_id).await.unwrap().description,
        "new words"
    );

    let put = |policy: &str, name: Option<&str>| {
        let mut c = app.c();
        let req = pb::PutKeyPolicyRequest {
            key_id: key.key_id.clone(),
            policy_name: name.map(Into::into),
            policy: policy.into(),
            context: ctx(ACCOUNT),
            ..Default::default()
        };
        async move { c.put_key_policy(req).await.aws() }
    };
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#
    );
    put(&policy, Some("default")).await.unwrap();
    expect_err(put("{", None).await, "MalformedPolicyDocumentException");
    expect_err(
        put(&policy, Some("other")).await,
        "UnsupportedOperationException",
    );
    let got = app
        .c()
        .get_key_policy(pb::GetKeyPolicyRequest {
            key_id: key.arn.clone(),
            policy_name: None,
            context: ctx(ACCOUNT),
        })
        .await
        .aws()
        .unwrap();
    assert_eq!(got.policy, policy);
    let other = app
        .c()
        .get_key_policy(pb::GetKeyPolicyRequest {
            key_id: key.key_id.clone(),
            policy_name: Some("other".into()),
            context: ctx(ACCOUNT),
        })
        .await
        .aws();
    expect_err(other, "NotFoundException");

    let names = app
        .c()
        .list_key_policies(pb::ListKeyPoliciesRequest {
            key_id: key.key_id.clone(),
            context: ctx(ACCOUNT),
            ..Default::default()
        })
        .await
        .aws()
        .unwrap();
    assert_eq!(names.policy_names, vec!["default"]);
    assert!(!names.truncated);

    // Every change bumps the version authz caches policies by.
    expect_err(app.resolve(ACCOUNT, UNKNOWN_ID).await, "NotFoundException");
    let after = app.resolve(ACCOUNT, &key.key_id).await.unwrap();
    assert_eq!(after.version, 3);
    assert_eq!(after.policy, policy);
    app.key_op(KeyOp::Disable, &key.key_id).await.unwrap();
    let disabled = app.resolve(ACCOUNT, &key.arn).await.unwrap();
    assert_eq!(disabled.version, 4);
    assert_eq!(disabled.key_state, "Disabled");
    app.stop().await;
}

#[tokio::test]
async fn malformed_key_policies_are_refused() {
    let app = spawn_app().await;
    let key = app.create_key().await;
    let default_policy = app.resolve(ACCOUNT, &key.key_id).await.unwrap().policy;
    let root = format!(r#"{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}}"#);
    let put = |policy: String| {
        let mut c = app.c();
        let req = pb::PutKeyPolicyRequest {
            key_id: key.key_id.clone(),
            policy,
            context: ctx(ACCOUNT),
            ..Default::default()
        };
        async move { c.put_key_policy(req).await.aws() }
    };
    let create = |policy: String| {
        let mut c = app.c();
        let req = pb::CreateKeyRequest {
            policy: Some(policy),
            context: ctx(ACCOUNT),
            ..Default::default()
        };
        async move { c.create_key(req).await.aws() }
    };
    for (policy, message) in [
        ("this is { not json".to_owned(), None),
        ("[]".to_owned(), Some("The policy must be a JSON object.")),
        (
            "{}".to_owned(),
            Some("The policy is missing the required Statement element."),
        ),
        (
            r#"{"Version":"2012-10-17","Statement":"nope"}"#.to_owned(),
            Some(
                "The policy Statement must be a statement object or an array of statement objects.",
            ),
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[7]}"#.to_owned(),
            Some("The policy contains a statement that is not a JSON object."),
        ),
        (
            format!(r#"{{"Statement":{{"Effect":"Permit","Principal":{root}}}}}"#),
            None,
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]}"#
                .to_owned(),
            Some("Policy contains a statement with no principal."),
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"arn:aws:iam::111122223333:root"}]}"#
                .to_owned(),
            Some("Policy contains a statement with one or more invalid principals."),
        ),
        (
            format!(r#"{{"Statement":[{{"Effect":"Allow","Principal":{root},"Action":"kms:*","Sids":"x"}}]}}"#),
            Some(r#"The policy statement contains the unknown element "Sids"."#),
        ),
        (
            format!(r#"{{"Version":"2012-10-17","Extra":1,"Statement":[{{"Effect":"Allow","Principal":{root}}}]}}"#),
            Some(r#"The policy contains the unknown element "Extra"."#),
        ),
        (
            format!(r#"{{"Version":"2012-10-18","Statement":[{{"Effect":"Allow","Principal":{root}}}]}}"#),
            None,
        ),
    ] {
        let got = expect_err(put(policy.clone()).await, "MalformedPolicyDocumentException");
        if let Some(message) = message {
            assert_eq!(got, message, "{policy}");
        } else {
            assert!(!got.is_empty(), "{policy}");
        }
        let got = expect_err(create(policy.clone()).await, "MalformedPolicyDocumentException");
        assert!(!got.is_empty(), "{policy}");
    }
    // Nothing changed: the key kept its policy and no key was created.
    let after = app.resolve(ACCOUNT, &key.key_id).await.unwrap();
    assert_eq!(after.policy, default_policy);
    assert_eq!(after.version, 1);
    let keys = app
        .c()
        .list_keys(pb::ListKeysRequest {
            context: ctx(ACCOUNT),
            ..Default::default()
        })
        .await
        .aws()
        .unwrap();
    assert_eq!(keys.keys.len(), 1);
    // Over KMS's 32 KiB quota it is LimitExceededException, as PutKeyPolicy documents.
    let huge = format!(
        r#"{{"Id":"{}","Statement":[{{"Effect":"Allow","Principal":{root}}}]}}"#,
        "x".repeat(32_768)
    );
    expect_err(put(huge).await, "LimitExceededException");
    // A statement without Action is refused by authz's policy engine, which has to
    // evaluate every stored policy (even when the lockout check is bypassed).
    let inert = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{root},"Action":"kms:*","Resource":"*"}},{{"Sid":"Inert","Effect":"Deny","Principal":"*"}}]}}"#
    );
    let got = expect_err(put(inert.clone()).await, "MalformedPolicyDocumentException");
    assert!(got.contains("Action"), "{got}");
    let bypassed = app
        .c()
        .put_key_policy(pb::PutKeyPolicyRequest {
            key_id: key.key_id.clone(),
            policy: inert,
            bypass_policy_lockout_safety_check: true,
            context: ctx(ACCOUNT),
            ..Default::default()
        })
        .await
        .aws();
    expect_err(bypassed, "MalformedPolicyDocumentException");
    assert_eq!(app.resolve(ACCOUNT, &key.key_id).await.unwrap().version, 1);
    app.stop().await;
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let app = spawn_app().await;
    let key = app.create_key().await;
    app.alias(true, "alias/kept", &key.key_id).await.unwrap();
    let blob = app
        .encrypt(ACCOUNT, "alias/kept", b"durable", &[("k", "v")])
        .await
        .unwrap()
        .ciphertext_blob;
    let disabled = app.create_key().await;
    app.key_op(KeyOp::Disable, &disabled.key_id).await.unwrap();
    let dir = app.stop().await;

    let app = spawn_in(dir).await;
    let plain = app
        .decrypt(ACCOUNT, &blob, &[("k", "v")], Some("alias/kept"))
        .await
        .unwrap();
    assert_eq!(plain.plaintext, b"durable");
    assert_eq!(app.describe(&key.key_id).await.unwrap(), key);
    assert_eq!(
        app.describe(&disabled.key_id).await.unwrap().key_state,
        "Disabled"
    );
    let fresh = app.create_key().await;
    let blob2 = app
        .encrypt(ACCOUNT, &fresh.key_id, b"new", &[])
        .await
        .unwrap()
        .ciphertext_blob;
    let dir = app.stop().await;

    // Once more, with the key file given as a production configuration.
    let app = spawn_with(dir, |d| {
        Config::with_root_key_file(
            format!("sqlite://{}", d.join("keystore.db").display()),
            d.join("root.key"),
        )
    })
    .await;
    assert_eq!(
        app.decrypt(ACCOUNT, &blob2, &[], None)
            .await
            .unwrap()
            .plaintext,
        b"new"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_root_key_refuses_to_start() {
    let app = spawn_app().await;
    app.create_key().await;
    let dir = app.stop().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = Config {
        root_key_file: None,
        root_key: Some("42".repeat(32)),
        dev: false,
        ..dev_config(dir.path())
    };
    let result = kms_keystore::run(listener, config, std::future::pending()).await;
    let err = result.unwrap_err();
    assert!(format!("{err:#}").contains("root key"), "{err:#}");
}

#[tokio::test]
async fn without_a_root_key_the_service_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = Config::with_root_key_file(
        format!("sqlite://{}", dir.path().join("keystore.db").display()),
        dir.path().join("missing.key"),
    );
    assert!(
        kms_keystore::run(listener, config, std::future::pending())
            .await
            .is_err()
    );
    assert!(!dir.path().join("keystore.db").exists());
}

// -- asymmetric signing keys and HMAC keys ------------------------------------------

impl App {
    async fn create_spec(
        &self,
        spec: &str,
        usage: Option<&str>,
    ) -> Result<pb::KeyMetadata, AwsError> {
        self.c()
            .create_key(pb::CreateKeyRequest {
                key_spec: Some(spec.into()),
                key_usage: usage.map(Into::into),
                context: ctx(ACCOUNT),
                ..Default::default()
            })
            .await
            .aws()
            .map(|r| r.key_metadata.unwrap())
    }

    async fn sign(
        &self,
        key_id: &str,
        message: &[u8],
        message_type: Option<&str>,
        alg: &str,
    ) -> Result<pb::SignResponse, AwsError> {
        self.c()
            .sign(pb::SignRequest {
                key_id: key_id.into(),
                message: message.to_vec(),
                message_type: message_type.map(Into::into),
                signing_algorithm: alg.into(),
                context: ctx(ACCOUNT),
                ..Default::default()
            })
            .await
            .aws()
    }

    async fn verify(
        &self,
        key_id: &str,
        message: &[u8],
        message_type: Option<&str>,
        alg: &str,
        signature: &[u8],
    ) -> Result<pb::VerifyResponse, AwsError> {
        self.c()
            .verify(pb::VerifyRequest {
                key_id: key_id.into(),
                message: message.to_vec(),
                message_type: message_type.map(Into::into),
                signing_algorithm: alg.into(),
                signature: signature.to_vec(),
                context: ctx(ACCOUNT),
                ..Default::default()
            })
            .await
            .aws()
    }

    async fn mac(
        &self,
        key_id: &str,
        message: &[u8],
        alg: &str,
        mac: Option<&[u8]>,
    ) -> Result<Vec<u8>, AwsError> {
        match mac {
            None => self
                .c()
                .generate_mac(pb::GenerateMacRequest {
                    key_id: key_id.into(),
                    message: message.to_vec(),
                    mac_algorithm: alg.into(),
                    context: ctx(ACCOUNT),
                    ..Default::default()
                })
                .await
                .aws()
                .map(|r| {
                    assert_eq!(r.mac_algorithm, alg);
                    r.mac
                }),
            Some(m) => self
                .c()
                .verify_mac(pb::VerifyMacRequest {
                    key_id: key_id.into(),
                    message: message.to_vec(),
                    mac_algorithm: alg.into(),
                    mac: m.to_vec(),
                    context: ctx(ACCOUNT),
                    ..Default::default()
                })
                .await
                .aws()
                .map(|r| {
                    assert!(r.mac_valid);
                    Vec::new()
                }),
        }
    }

    async fn public_key(&self, key_id: &str) -> Result<pb::GetPublicKeyResponse, AwsError> {
        self.c()
            .get_public_key(pb::GetPublicKeyRequest {
                key_id: key_id.into(),
                context: ctx(ACCOUNT),
                ..Default::default()
            })
            .await
            .aws()
    }
}

fn digest_of(alg: &str, message: &[u8]) -> Vec<u8> {
    use aws_lc_rs::digest;
    let hash = if alg.ends_with("256") {
        &digest::SHA256
    } else if alg.ends_with("384") {
        &digest::SHA384
    } else {
        &digest::SHA512
    };
    digest::digest(hash, message).as_ref().to_vec()
}

/// Verifies a KMS signature with aws-lc-rs against the DER public key GetPublicKey
/// returned (independently of the key store's own Verify).
fn verify_independently(alg: &str, spec: &str, spki: &[u8], message: &[u8], sig: &[u8]) -> bool {
    use aws_lc_rs::signature as s;
    let params: &'static dyn s::VerificationAlgorithm = match (alg, spec) {
        ("RSASSA_PSS_SHA_256", _) => &s::RSA_PSS_2048_8192_SHA256,
        ("RSASSA_PSS_SHA_384", _) => &s::RSA_PSS_2048_8192_SHA384,
        ("RSASSA_PSS_SHA_512", _) => &s::RSA_PSS_2048_8192_SHA512,
        ("RSASSA_PKCS1_V1_5_SHA_256", _) => &s::RSA_PKCS1_2048_8192_SHA256,
        ("RSASSA_PKCS1_V1_5_SHA_384", _) => &s::RSA_PKCS1_2048_8192_SHA384,
        ("RSASSA_PKCS1_V1_5_SHA_512", _) => &s::RSA_PKCS1_2048_8192_SHA512,
        ("ECDSA_SHA_256", "ECC_SECG_P256K1") => &s::ECDSA_P256K1_SHA256_ASN1,
        ("ECDSA_SHA_256", _) => &s::ECDSA_P256_SHA256_ASN1,
        ("ECDSA_SHA_384", _) => &s::ECDSA_P384_SHA384_ASN1,
        ("ECDSA_SHA_512", _) => &s::ECDSA_P521_SHA512_ASN1,
        _ => panic!("no algorithm {alg}"),
    };
    s::UnparsedPublicKey::new(params, spki)
        .verify(message, sig)
        .is_ok()
}

#[tokio::test]
async fn asymmetric_keys_sign_and_verify_with_every_algorithm() {
    let app = spawn_app().await;
    let cases: &[(&str, &[&str])] = &[
        (
            "RSA_2048",
            &[
                "RSASSA_PSS_SHA_256",
                "RSASSA_PSS_SHA_384",
                "RSASSA_PSS_SHA_512",
                "RSASSA_PKCS1_V1_5_SHA_256",
                "RSASSA_PKCS1_V1_5_SHA_384",
                "RSASSA_PKCS1_V1_5_SHA_512",
            ],
        ),
        ("ECC_NIST_P256", &["ECDSA_SHA_256"]),
        ("ECC_NIST_P384", &["ECDSA_SHA_384"]),
        ("ECC_NIST_P521", &["ECDSA_SHA_512"]),
        ("ECC_SECG_P256K1", &["ECDSA_SHA_256"]),
    ];
    let message = b"the message to sign";
    for (spec, algs) in cases {
        let key = app.create_spec(spec, Some("SIGN_VERIFY")).await.unwrap();
        assert_eq!(key.key_spec, *spec);
        assert_eq!(key.customer_master_key_spec, *spec);
        assert_eq!(key.key_usage, "SIGN_VERIFY");
        assert_eq!(key.signing_algorithms, *algs);
        assert!(key.encryption_algorithms.is_empty());
        assert!(key.mac_algorithms.is_empty());
        assert!(key.current_key_material_id.is_none());
        assert_eq!(app.describe(&key.key_id).await.unwrap(), key);

        let public = app.public_key(&key.key_id).await.unwrap();
        assert_eq!(public.key_id, key.arn);
        assert_eq!(public.key_spec, *spec);
        assert_eq!(public.key_usage, "SIGN_VERIFY");
        assert_eq!(public.signing_algorithms, *algs);
        assert_eq!(public.public_key[0], 0x30, "DER SEQUENCE");

        for alg in *algs {
            let raw = app.sign(&key.key_id, message, None, alg).await.unwrap();
            assert_eq!(raw.key_id, key.arn);
            assert_eq!(raw.signing_algorithm, *alg);
            assert!(
                verify_independently(alg, spec, &public.public_key, message, &raw.signature),
                "{spec} {alg}"
            );
            if alg.starts_with("ECDSA") {
                assert_eq!(raw.signature[0], 0x30, "ECDSA signatures are DER");
            }
            let ok = app
                .verify(&key.key_id, message, Some("RAW"), alg, &raw.signature)
                .await
                .unwrap();
            assert!(ok.signature_valid);
            assert_eq!(ok.key_id, key.arn);

            // DIGEST: the caller hashes; the signature is over the same message.
            let d = digest_of(alg, message);
            let signed = app.sign(&key.arn, &d, Some("DIGEST"), alg).await.unwrap();
            assert!(verify_independently(
                alg,
                spec,
                &public.public_key,
                message,
                &signed.signature
            ));
            app.verify(&key.key_id, &d, Some("DIGEST"), alg, &raw.signature)
                .await
                .unwrap();
            let msg = expect_err(
                app.sign(&key.key_id, &d[1..], Some("DIGEST"), alg).await,
                "ValidationException",
            );
            assert!(msg.contains("Digest"), "{msg}");

            // A tampered message or signature: KMSInvalidSignatureException.
            expect_err(
                app.verify(&key.key_id, b"another message", None, alg, &raw.signature)
                    .await,
                "KMSInvalidSignatureException",
            );
            let mut bad = raw.signature.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            expect_err(
                app.verify(&key.key_id, message, None, alg, &bad).await,
                "KMSInvalidSignatureException",
            );
        }
        // An algorithm of another key spec.
        let other = if spec.starts_with("RSA") {
            "ECDSA_SHA_256"
        } else {
            "RSASSA_PSS_SHA_256"
        };
        expect_err(
            app.sign(&key.key_id, message, None, other).await,
            "InvalidKeyUsageException",
        );
        // Signing keys do not encrypt.
        expect_err(
            app.encrypt(ACCOUNT, &key.key_id, b"x", &[]).await,
            "InvalidKeyUsageException",
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn signing_validates_keys_messages_and_state() {
    let app = spawn_app().await;
    let key = app
        .create_spec("ECC_NIST_P256", Some("SIGN_VERIFY"))
        .await
        .unwrap();
    // The largest RAW message, and one byte more.
    app.sign(&key.key_id, &[7u8; 4096], None, "ECDSA_SHA_256")
        .await
        .unwrap();
    expect_err(
        app.sign(&key.key_id, &[7u8; 4097], None, "ECDSA_SHA_256")
            .await,
        "ValidationException",
    );
    expect_err(
        app.sign(&key.key_id, b"", None, "ECDSA_SHA_256").await,
        "ValidationException",
    );
    expect_err(
        app.sign(&key.key_id, b"m", Some("NOPE"), "ECDSA_SHA_256")
            .await,
        "ValidationException",
    );
    expect_err(
        app.sign(&key.key_id, b"m", None, "NOPE").await,
        "ValidationException",
    );
    expect_err(
        app.sign(UNKNOWN_ID, b"m", None, "ECDSA_SHA_256").await,
        "NotFoundException",
    );
    // Symmetric keys neither sign nor have a public key.
    let symmetric = app.create_key().await;
    expect_err(
        app.sign(&symmetric.key_id, b"m", None, "ECDSA_SHA_256")
            .await,
        "InvalidKeyUsageException",
    );
    expect_err(
        app.public_key(&symmetric.key_id).await,
        "UnsupportedOperationException",
    );
    // Disabled keys refuse.
    app.key_op(KeyOp::Disable, &key.key_id).await.unwrap();
    expect_err(
        app.sign(&key.key_id, b"m", None, "ECDSA_SHA_256").await,
        "DisabledException",
    );
    expect_err(app.public_key(&key.key_id).await, "DisabledException");
    app.key_op(KeyOp::Enable, &key.key_id).await.unwrap();

    // AWS's (KeySpec, KeyUsage) combinations.
    for (spec, usage, code) in [
        (
            "ECC_NIST_P256",
            Some("ENCRYPT_DECRYPT"),
            "ValidationException",
        ),
        ("ECC_NIST_P256", None, "ValidationException"),
        (
            "ECC_SECG_P256K1",
            Some("KEY_AGREEMENT"),
            "ValidationException",
        ),
        (
            "RSA_2048",
            Some("GENERATE_VERIFY_MAC"),
            "ValidationException",
        ),
        ("HMAC_256", Some("SIGN_VERIFY"), "ValidationException"),
        ("HMAC_256", None, "ValidationException"),
        (
            "SYMMETRIC_DEFAULT",
            Some("GENERATE_VERIFY_MAC"),
            "ValidationException",
        ),
        (
            "SM2",
            Some("KEY_AGREEMENT"),
            "UnsupportedOperationException",
        ),
        (
            "ML_DSA_44",
            Some("SIGN_VERIFY"),
            "UnsupportedOperationException",
        ),
    ] {
        let r = app.create_spec(spec, usage).await;
        assert_eq!(r.unwrap_err().code, code, "{spec} {usage:?}");
    }

    // The private key survives a restart (wrapped under the root key at rest).
    let public = app.public_key(&key.key_id).await.unwrap().public_key;
    let dir = app.stop().await;
    let app = spawn_in(dir).await;
    assert_eq!(
        app.public_key(&key.key_id).await.unwrap().public_key,
        public
    );
    let sig = app
        .sign(&key.key_id, b"m", None, "ECDSA_SHA_256")
        .await
        .unwrap();
    assert!(verify_independently(
        "ECDSA_SHA_256",
        "ECC_NIST_P256",
        &public,
        b"m",
        &sig.signature
    ));
    app.stop().await;
}

#[tokio::test]
async fn hmac_keys_generate_and_verify_macs() {
    let app = spawn_app().await;
    for (spec, alg, len) in [
        ("HMAC_224", "HMAC_SHA_224", 28),
        ("HMAC_256", "HMAC_SHA_256", 32),
        ("HMAC_384", "HMAC_SHA_384", 48),
        ("HMAC_512", "HMAC_SHA_512", 64),
    ] {
        let key = app
            .create_spec(spec, Some("GENERATE_VERIFY_MAC"))
            .await
            .unwrap();
        assert_eq!(key.key_usage, "GENERATE_VERIFY_MAC");
        assert_eq!(key.mac_algorithms, vec![alg.to_string()]);
        assert!(key.encryption_algorithms.is_empty());
        assert!(key.signing_algorithms.is_empty());
        let mac = app.mac(&key.key_id, b"message", alg, None).await.unwrap();
        assert_eq!(mac.len(), len);
        // Deterministic.
        assert_eq!(app.mac(&key.arn, b"message", alg, None).await.unwrap(), mac);
        app.mac(&key.key_id, b"message", alg, Some(&mac))
            .await
            .unwrap();
        expect_err(
            app.mac(&key.key_id, b"messagE", alg, Some(&mac)).await,
            "KMSInvalidMacException",
        );
        let mut bad = mac.clone();
        bad[0] ^= 0x80;
        expect_err(
            app.mac(&key.key_id, b"message", alg, Some(&bad)).await,
            "KMSInvalidMacException",
        );
        expect_err(
            app.mac(&key.key_id, b"message", alg, Some(&mac[..len - 1]))
                .await,
            "KMSInvalidMacException",
        );
        let other = if alg == "HMAC_SHA_256" {
            "HMAC_SHA_512"
        } else {
            "HMAC_SHA_256"
        };
        expect_err(
            app.mac(&key.key_id, b"message", other, None).await,
            "InvalidKeyUsageException",
        );
        expect_err(
            app.encrypt(ACCOUNT, &key.key_id, b"x", &[]).await,
            "InvalidKeyUsageException",
        );
        expect_err(
            app.public_key(&key.key_id).await,
            "UnsupportedOperationException",
        );
    }
    // A different key gives a different MAC, and other keys do not MAC.
    let a = app
        .create_spec("HMAC_256", Some("GENERATE_VERIFY_MAC"))
        .await
        .unwrap();
    let b = app
        .create_spec("HMAC_256", Some("GENERATE_VERIFY_MAC"))
        .await
        .unwrap();
    let mac_a = app
        .mac(&a.key_id, b"m", "HMAC_SHA_256", None)
        .await
        .unwrap();
    assert_ne!(
        mac_a,
        app.mac(&b.key_id, b"m", "HMAC_SHA_256", None)
            .await
            .unwrap()
    );
    expect_err(
        app.mac(&b.key_id, b"m", "HMAC_SHA_256", Some(&mac_a)).await,
        "KMSInvalidMacException",
    );
    let symmetric = app.create_key().await;
    expect_err(
        app.mac(&symmetric.key_id, b"m", "HMAC_SHA_256", None).await,
        "InvalidKeyUsageException",
    );
    expect_err(
        app.mac(&a.key_id, &[0u8; 4097], "HMAC_SHA_256", None).await,
        "ValidationException",
    );
    // MACs survive a restart: the HMAC key is stored wrapped.
    let dir = app.stop().await;
    let app = spawn_in(dir).await;
    app.mac(&a.key_id, b"m", "HMAC_SHA_256", Some(&mac_a))
        .await
        .unwrap();
    app.stop().await;
}

// -- rotation ----------------------------------------------------------------------

impl App {
    async fn rotation_status(
        &self,
        key_id: &str,
    ) -> Result<pb::GetKeyRotationStatusResponse, AwsError> {
        self.c()
            .get_key_rotation_status(pb::KeyIdRequest {
                key_id: key_id.into(),
                context: ctx(ACCOUNT),
            })
            .await
            .aws()
    }

    async fn enable_rotation(&self, key_id: &str, days: Option<i32>) -> Result<(), AwsError> {
        self.c()
            .enable_key_rotation(pb::EnableKeyRotationRequest {
                key_id: key_id.into(),
                rotation_period_in_days: days,
                context: ctx(ACCOUNT),
            })
            .await
            .aws()
            .map(drop)
    }

    async fn rotate_now(&self, key_id: &str) -> Result<pb::RotateKeyOnDemandResponse, AwsError> {
        self.c()
            .rotate_key_on_demand(pb::KeyIdRequest {
                key_id: key_id.into(),
                context: ctx(ACCOUNT),
            })
            .await
            .aws()
    }

    async fn rotations(
        &self,
        key_id: &str,
        include: Option<&str>,
        limit: Option<i32>,
        marker: Option<String>,
    ) -> Result<pb::ListKeyRotationsResponse, AwsError> {
        self.c()
            .list_key_rotations(pb::ListKeyRotationsRequest {
                key_id: key_id.into(),
                include_key_material: include.map(Into::into),
                limit,
                marker,
                context: ctx(ACCOUNT),
            })
            .await
            .aws()
    }
}

#[tokio::test]
async fn rotation_status_can_be_enabled_and_disabled() {
    let app = spawn_app().await;
    let key = app.create_key().await;
    let status = app.rotation_status(&key.key_id).await.unwrap();
    assert!(!status.key_rotation_enabled);
    assert_eq!(status.key_id, key.arn);
    assert!(status.rotation_period_in_days.is_none());

    app.enable_rotation(&key.key_id, None).await.unwrap();
    let status = app.rotation_status(&key.arn).await.unwrap();
    assert!(status.key_rotation_enabled);
    assert_eq!(status.rotation_period_in_days, Some(365));
    let next = status.next_rotation_date.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((next - now - 365.0 * 86400.0).abs() < 120.0, "{next} {now}");

    app.enable_rotation(&key.key_id, Some(90)).await.unwrap();
    assert_eq!(
        app.rotation_status(&key.key_id)
            .await
            .unwrap()
            .rotation_period_in_days,
        Some(90)
    );
    for bad in [89, 2561] {
        expect_err(
            app.enable_rotation(&key.key_id, Some(bad)).await,
            "ValidationException",
        );
    }
    app.c()
        .disable_key_rotation(pb::KeyIdRequest {
            key_id: key.key_id.clone(),
            context: ctx(ACCOUNT),
        })
        .await
        .aws()
        .unwrap();
    assert!(
        !app.rotation_status(&key.key_id)
            .await
            .unwrap()
            .key_rotation_enabled
    );

    // Disabled keys: no change of the setting; pending deletion reads as off.
    app.key_op(KeyOp::Disable, &key.key_id).await.unwrap();
    expect_err(
        app.enable_rotation(&key.key_id, None).await,
        "DisabledException",
    );
    expect_err(app.rotate_now(&key.key_id).await, "DisabledException");
    app.key_op(KeyOp::Enable, &key.key_id).await.unwrap();
    app.enable_rotation(&key.key_id, None).await.unwrap();
    app.schedule_deletion(&key.key_id, Some(7)).await.unwrap();
    assert!(
        !app.rotation_status(&key.key_id)
            .await
            .unwrap()
            .key_rotation_enabled
    );
    expect_err(
        app.enable_rotation(&key.key_id, None).await,
        "KMSInvalidStateException",
    );

    // Only symmetric encryption keys rotate.
    let hmac = app
        .create_spec("HMAC_256", Some("GENERATE_VERIFY_MAC"))
        .await
        .unwrap();
    expect_err(
        app.enable_rotation(&hmac.key_id, None).await,
        "UnsupportedOperationException",
    );
    expect_err(
        app.rotation_status(&hmac.key_id).await,
        "UnsupportedOperationException",
    );
    expect_err(
        app.rotate_now(&hmac.key_id).await,
        "UnsupportedOperationException",
    );
    expect_err(app.rotation_status(UNKNOWN_ID).await, "NotFoundException");
    app.stop().await;
}

#[tokio::test]
async fn rotation_keeps_old_ciphertexts_decrypting() {
    let app = spawn_app().await;
    let key = app.create_key().await;
    let first_material = key.current_key_material_id.clone().unwrap();
    let old = app
        .encrypt(ACCOUNT, &key.key_id, b"before", &[("k", "v")])
        .await
        .unwrap();
    assert!(
        app.rotations(&key.key_id, None, None, None)
            .await
            .unwrap()
            .rotations
            .is_empty()
    );

    let out = app.rotate_now(&key.arn).await.unwrap();
    assert_eq!(out.key_id, key.key_id);
    let after = app.describe(&key.key_id).await.unwrap();
    let second_material = after.current_key_material_id.clone().unwrap();
    assert_ne!(second_material, first_material);

    // The old blob opens with the old material; new blobs use the new one.
    let plain = app
        .decrypt(ACCOUNT, &old.ciphertext_blob, &[("k", "v")], None)
        .await
        .unwrap();
    assert_eq!(plain.plaintext, b"before");
    assert_eq!(
        plain.key_material_id.as_deref(),
        Some(first_material.as_str())
    );
    let new = app
        .encrypt(ACCOUNT, &key.key_id, b"after", &[])
        .await
        .unwrap();
    let plain = app
        .decrypt(ACCOUNT, &new.ciphertext_blob, &[], None)
        .await
        .unwrap();
    assert_eq!(
        plain.key_material_id.as_deref(),
        Some(second_material.as_str())
    );

    let list = app.rotations(&key.key_id, None, None, None).await.unwrap();
    assert_eq!(list.rotations.len(), 1);
    let entry = &list.rotations[0];
    assert_eq!(entry.key_id, key.key_id);
    assert_eq!(entry.rotation_type.as_deref(), Some("ON_DEMAND"));
    assert_eq!(
        entry.key_material_id.as_deref(),
        Some(second_material.as_str())
    );
    assert_eq!(entry.key_material_state.as_deref(), Some("CURRENT"));
    assert!(entry.rotation_date.is_some());
    assert!(!list.truncated);

    // Two more rotations; pagination; the original material with ALL_KEY_MATERIAL.
    app.rotate_now(&key.key_id).await.unwrap();
    app.rotate_now(&key.key_id).await.unwrap();
    let page = app
        .rotations(&key.key_id, None, Some(2), None)
        .await
        .unwrap();
    assert_eq!(page.rotations.len(), 2);
    assert!(page.truncated);
    let rest = app
        .rotations(&key.key_id, None, Some(2), page.next_marker.clone())
        .await
        .unwrap();
    assert_eq!(rest.rotations.len(), 1);
    assert!(!rest.truncated);
    assert_eq!(
        rest.rotations[0].key_material_state.as_deref(),
        Some("CURRENT")
    );
    let all = app
        .rotations(&key.key_id, Some("ALL_KEY_MATERIAL"), None, None)
        .await
        .unwrap();
    assert_eq!(all.rotations.len(), 4);
    assert_eq!(
        all.rotations[0].key_material_id.as_deref(),
        Some(first_material.as_str())
    );
    assert!(all.rotations[0].rotation_type.is_none());
    expect_err(
        app.rotations(&key.key_id, None, None, Some("zz".into()))
            .await,
        "InvalidMarkerException",
    );

    // Every material survives a restart.
    let current = app
        .describe(&key.key_id)
        .await
        .unwrap()
        .current_key_material_id;
    let dir = app.stop().await;
    let app = spawn_in(dir).await;
    assert_eq!(
        app.describe(&key.key_id)
            .await
            .unwrap()
            .current_key_material_id,
        current
    );
    for (blob, ctx_pairs, text) in [
        (&old.ciphertext_blob, &[("k", "v")][..], &b"before"[..]),
        (&new.ciphertext_blob, &[][..], &b"after"[..]),
    ] {
        let plain = app.decrypt(ACCOUNT, blob, ctx_pairs, None).await.unwrap();
        assert_eq!(plain.plaintext, text);
    }
    app.stop().await;
}

#[tokio::test]
async fn rsa_encryption_keys_encrypt_and_decrypt() {
    let app = spawn_app().await;
    let key = app
        .create_spec("RSA_2048", Some("ENCRYPT_DECRYPT"))
        .await
        .unwrap();
    assert_eq!(
        key.encryption_algorithms,
        vec!["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
    );
    assert!(key.signing_algorithms.is_empty());
    let public = app.public_key(&key.key_id).await.unwrap();
    assert_eq!(public.encryption_algorithms, key.encryption_algorithms);
    let encrypt = |alg: Option<&str>, plaintext: Vec<u8>| {
        let mut c = app.c();
        let key_id = key.key_id.clone();
        let alg = alg.map(str::to_owned);
        async move {
            c.encrypt(pb::EncryptRequest {
                key_id,
                plaintext,
                encryption_algorithm: alg,
                context: ctx(ACCOUNT),
                ..Default::default()
            })
            .await
            .aws()
        }
    };
    let decrypt = |alg: &str, blob: Vec<u8>| {
        let mut c = app.c();
        let key_id = key.key_id.clone();
        let alg = alg.to_owned();
        async move {
            c.decrypt(pb::DecryptRequest {
                key_id: Some(key_id),
                ciphertext_blob: blob,
                encryption_algorithm: Some(alg),
                context: ctx(ACCOUNT),
                ..Default::default()
            })
            .await
            .aws()
        }
    };
    for (alg, limit) in [("RSAES_OAEP_SHA_1", 214), ("RSAES_OAEP_SHA_256", 190)] {
        let out = encrypt(Some(alg), vec![9u8; limit]).await.unwrap();
        assert_eq!(out.encryption_algorithm, alg);
        assert_eq!(out.ciphertext_blob.len(), 256);
        let plain = decrypt(alg, out.ciphertext_blob.clone()).await.unwrap();
        assert_eq!(plain.plaintext, vec![9u8; limit]);
        assert_eq!(plain.encryption_algorithm, alg);
        assert!(plain.key_material_id.is_none());
        expect_err(
            encrypt(Some(alg), vec![9u8; limit + 1]).await,
            "ValidationException",
        );
        let mut bad = out.ciphertext_blob.clone();
        bad[3] ^= 1;
        expect_err(decrypt(alg, bad).await, "InvalidCiphertextException");
        // Without the KeyId the ciphertext names no key.
        expect_err(
            app.decrypt(ACCOUNT, &out.ciphertext_blob, &[], None).await,
            "InvalidCiphertextException",
        );
    }
    expect_err(
        encrypt(None, b"x".to_vec()).await,
        "InvalidKeyUsageException",
    );
    expect_err(
        app.encrypt(ACCOUNT, &key.key_id, b"x", &[("k", "v")]).await,
        "ValidationException",
    );
    expect_err(
        app.c()
            .generate_data_key(pb::GenerateDataKeyRequest {
                key_id: key.key_id.clone(),
                number_of_bytes: Some(32),
                context: ctx(ACCOUNT),
                ..Default::default()
            })
            .await
            .aws(),
        "InvalidKeyUsageException",
    );
    // ReEncrypt between a symmetric key and the RSA key, both ways.
    let symmetric = app.create_key().await;
    let blob = app
        .encrypt(ACCOUNT, &symmetric.key_id, b"moved", &[])
        .await
        .unwrap();
    let re_encrypt = |blob: Vec<u8>,
                      source: Option<&str>,
                      source_alg: Option<&str>,
                      destination: &str,
                      destination_alg: Option<&str>| {
        let mut c = app.c();
        let req = pb::ReEncryptRequest {
            ciphertext_blob: blob,
            source_key_id: source.map(Into::into),
            source_encryption_algorithm: source_alg.map(Into::into),
            destination_key_id: destination.into(),
            destination_encryption_algorithm: destination_alg.map(Into::into),
            context: ctx(ACCOUNT),
            ..Default::default()
        };
        async move { c.re_encrypt(req).await.aws() }
    };
    expect_err(
        re_encrypt(blob.ciphertext_blob.clone(), None, None, &key.key_id, None).await,
        "InvalidKeyUsageException",
    );
    let to_rsa = re_encrypt(
        blob.ciphertext_blob.clone(),
        None,
        None,
        &key.key_id,
        Some("RSAES_OAEP_SHA_1"),
    )
    .await
    .unwrap();
    assert_eq!(to_rsa.destination_encryption_algorithm, "RSAES_OAEP_SHA_1");
    assert_eq!(to_rsa.source_encryption_algorithm, "SYMMETRIC_DEFAULT");
    assert!(to_rsa.destination_key_material_id.is_none());
    assert!(to_rsa.source_key_material_id.is_some());
    assert_eq!(to_rsa.key_id, key.arn);
    assert_eq!(
        decrypt("RSAES_OAEP_SHA_1", to_rsa.ciphertext_blob.clone())
            .await
            .unwrap()
            .plaintext,
        b"moved"
    );
    let back = re_encrypt(
        to_rsa.ciphertext_blob,
        Some(&key.key_id),
        Some("RSAES_OAEP_SHA_1"),
        &symmetric.arn,
        None,
    )
    .await
    .unwrap();
    assert_eq!(back.source_encryption_algorithm, "RSAES_OAEP_SHA_1");
    assert_eq!(back.source_key_id, key.arn);
    assert!(back.source_key_material_id.is_none());
    assert!(back.destination_key_material_id.is_some());
    assert_eq!(
        app.decrypt(ACCOUNT, &back.ciphertext_blob, &[], None)
            .await
            .unwrap()
            .plaintext,
        b"moved"
    );
    // The private key survives a restart.
    let out = encrypt(Some("RSAES_OAEP_SHA_256"), b"kept".to_vec())
        .await
        .unwrap();
    let dir = app.stop().await;
    let app = spawn_in(dir).await;
    let plain = app
        .c()
        .decrypt(pb::DecryptRequest {
            key_id: Some(key.arn.clone()),
            ciphertext_blob: out.ciphertext_blob,
            encryption_algorithm: Some("RSAES_OAEP_SHA_256".into()),
            context: ctx(ACCOUNT),
            ..Default::default()
        })
        .await
        .aws()
        .unwrap();
    assert_eq!(plain.plaintext, b"kept");
    app.stop().await;
}

#[tokio::test]
async fn key_policies_see_the_signing_mac_and_rotation_condition_keys() {
    let app = spawn_app().await;
    let deny = |action: &str, key: &str, value: &str| {
        format!(
            r#",{{"Sid":"Deny","Effect":"Deny","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"{action}","Resource":"*","Condition":{{"StringEquals":{{"{key}":"{value}"}}}}}}"#
        )
    };
    let rsa = app
        .create_spec("RSA_2048", Some("SIGN_VERIFY"))
        .await
        .unwrap();
    let policy = policy_with(&deny(
        "kms:Sign",
        "kms:SigningAlgorithm",
        "RSASSA_PSS_SHA_256",
    ));
    put_policy(&app, ACCOUNT, &rsa.key_id, &policy, false)
        .await
        .unwrap();
    expect_err(
        app.sign(&rsa.key_id, b"m", None, "RSASSA_PSS_SHA_256")
            .await,
        "AccessDeniedException",
    );
    app.sign(&rsa.key_id, b"m", None, "RSASSA_PKCS1_V1_5_SHA_256")
        .await
        .unwrap();
    let policy = policy_with(&deny("kms:Sign", "kms:MessageType", "DIGEST"));
    put_policy(&app, ACCOUNT, &rsa.key_id, &policy, false)
        .await
        .unwrap();
    expect_err(
        app.sign(
            &rsa.key_id,
            &[0u8; 32],
            Some("DIGEST"),
            "RSASSA_PSS_SHA_256",
        )
        .await,
        "AccessDeniedException",
    );
    app.sign(&rsa.key_id, b"m", Some("RAW"), "RSASSA_PSS_SHA_256")
        .await
        .unwrap();

    let hmac = app
        .create_spec("HMAC_256", Some("GENERATE_VERIFY_MAC"))
        .await
        .unwrap();
    let policy = policy_with(&deny("kms:GenerateMac", "kms:MacAlgorithm", "HMAC_SHA_256"));
    put_policy(&app, ACCOUNT, &hmac.key_id, &policy, false)
        .await
        .unwrap();
    expect_err(
        app.mac(&hmac.key_id, b"m", "HMAC_SHA_256", None).await,
        "AccessDeniedException",
    );

    let key = app.create_key().await;
    let policy = policy_with(&deny(
        "kms:EnableKeyRotation",
        "kms:RotationPeriodInDays",
        "90",
    ));
    put_policy(&app, ACCOUNT, &key.key_id, &policy, false)
        .await
        .unwrap();
    expect_err(
        app.enable_rotation(&key.key_id, Some(90)).await,
        "AccessDeniedException",
    );
    app.enable_rotation(&key.key_id, Some(180)).await.unwrap();
    app.stop().await;
}
