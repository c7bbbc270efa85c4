//! Grants end to end at the key store's gRPC contract, with the real authz service deciding:
//! CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant, grant tokens,
//! constraints, cross-account grants, explicit denies and persistence across restarts.

use std::collections::HashMap;
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
const ALICE: &str = "arn:aws:iam::111122223333:user/Alice";
const BOB: &str = "arn:aws:iam::111122223333:user/Bob";

struct App {
    client: KeyStoreClient<Channel>,
    stops: Vec<oneshot::Sender<()>>,
    servers: Vec<JoinHandle<anyhow::Result<()>>>,
    dir: TempDir,
}

async fn spawn_in(dir: TempDir) -> App {
    let authz_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authz_addr = authz_listener.local_addr().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (authz_stop, authz_stopped) = oneshot::channel::<()>();
    let authz = tokio::spawn(kms_authz::run(
        authz_listener,
        kms_authz::Config::new(format!(
            "sqlite://{}",
            dir.path().join("authz.db").display()
        )),
        async {
            let _ = authz_stopped.await;
        },
    ));
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
        stops: vec![stop, authz_stop],
        servers: vec![server, authz],
        dir,
    }
}

fn config(dir: &Path) -> Config {
    Config::dev(
        format!("sqlite://{}", dir.join("keystore.db").display()),
        dir.join("root.key"),
    )
}

impl App {
    async fn stop(self) -> TempDir {
        for (stop, server) in self.stops.into_iter().zip(self.servers) {
            let _ = stop.send(());
            server.await.unwrap().unwrap();
        }
        self.dir
    }

    fn c(&self) -> KeyStoreClient<Channel> {
        self.client.clone()
    }

    async fn create_key(&self, usage: Option<&str>, spec: Option<&str>) -> pb::KeyMetadata {
        self.c()
            .create_key(pb::CreateKeyRequest {
                key_usage: usage.map(Into::into),
                key_spec: spec.map(Into::into),
                context: root(ACCOUNT),
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
        who: Option<RequestContext>,
        key_id: &str,
        context: &[(&str, &str)],
        tokens: &[&str],
    ) -> Result<pb::EncryptResponse, AwsError> {
        aws(self
            .c()
            .encrypt(pb::EncryptRequest {
                key_id: key_id.into(),
                plaintext: b"secret".to_vec(),
                encryption_context: map(context),
                grant_tokens: tokens.iter().map(|t| t.to_string()).collect(),
                context: who,
                ..Default::default()
            })
            .await)
    }

    async fn grant(
        &self,
        who: Option<RequestContext>,
        req: pb::CreateGrantRequest,
    ) -> Result<pb::CreateGrantResponse, AwsError> {
        aws(self
            .c()
            .create_grant(pb::CreateGrantRequest {
                context: who,
                ..req
            })
            .await)
    }

    async fn list(
        &self,
        key_id: &str,
        limit: Option<i32>,
        marker: Option<String>,
    ) -> pb::ListGrantsResponse {
        aws(self
            .c()
            .list_grants(pb::ListGrantsRequest {
                key_id: key_id.into(),
                limit,
                marker,
                context: root(ACCOUNT),
                ..Default::default()
            })
            .await)
        .unwrap()
    }
}

fn grant_req(key_id: &str, grantee: &str, ops: &[&str]) -> pb::CreateGrantRequest {
    pb::CreateGrantRequest {
        key_id: key_id.into(),
        grantee_principal: grantee.into(),
        operations: ops.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn context(caller: Caller) -> Option<RequestContext> {
    Some(RequestContext {
        request_id: "test-request".into(),
        caller: Some(caller),
        region: REGION.into(),
        source_ip: "127.0.0.1".into(),
        ..Default::default()
    })
}

fn root(account: &str) -> Option<RequestContext> {
    context(Caller {
        account_id: account.into(),
        arn: format!("arn:aws:iam::{account}:root"),
        principal_id: account.into(),
        principal_type: "Root".into(),
        ..Default::default()
    })
}

/// An IAM user of ACCOUNT with no identity policy at all.
fn user(arn: &str) -> Option<RequestContext> {
    let name = arn.rsplit('/').next().unwrap();
    context(Caller {
        account_id: ACCOUNT.into(),
        arn: arn.into(),
        principal_id: format!("AIDA{}", name.to_uppercase()),
        principal_type: "IAMUser".into(),
        user_name: name.into(),
        ..Default::default()
    })
}

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn aws<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Result<T, AwsError> {
    r.map(tonic::Response::into_inner)
        .map_err(|s| AwsError::from_status(&s))
}

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
async fn a_grant_lets_a_user_without_policies_use_the_key_until_revoked() {
    let app = spawn_in(tempfile::tempdir().unwrap()).await;
    let key = app.create_key(None, None).await;
    let denied = expect_err(
        app.encrypt(user(ALICE), &key.key_id, &[], &[]).await,
        "AccessDeniedException",
    );
    assert!(
        denied.starts_with(&format!(
            "User: {ALICE} is not authorized to perform: kms:Encrypt on resource: {}",
            key.arn
        )),
        "{denied}"
    );

    let g = app
        .grant(
            root(ACCOUNT),
            grant_req(&key.key_id, ALICE, &["Encrypt", "Decrypt"]),
        )
        .await
        .unwrap();
    let grant_id = g.grant_id.unwrap();
    let token = g.grant_token.unwrap();
    assert_eq!(grant_id.len(), 64);
    assert!(grant_id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(token.len() > 64);

    let blob = app
        .encrypt(user(ALICE), &key.key_id, &[], &[&token])
        .await
        .unwrap()
        .ciphertext_blob;
    let opened = aws(app
        .c()
        .decrypt(pb::DecryptRequest {
            ciphertext_blob: blob,
            context: user(ALICE),
            ..Default::default()
        })
        .await)
    .unwrap();
    assert_eq!(opened.plaintext, b"secret");
    // Only the granted operations, and only for the grantee.
    expect_err(
        aws(app
            .c()
            .generate_data_key(pb::GenerateDataKeyRequest {
                key_id: key.key_id.clone(),
                number_of_bytes: Some(32),
                context: user(ALICE),
                ..Default::default()
            })
            .await),
        "AccessDeniedException",
    );
    expect_err(
        app.encrypt(user(BOB), &key.key_id, &[], &[]).await,
        "AccessDeniedException",
    );

    let listed = app.list(&key.key_id, None, None).await;
    assert_eq!(listed.grants.len(), 1);
    let e = &listed.grants[0];
    assert_eq!(e.grant_id, grant_id);
    assert_eq!(e.key_id, key.arn);
    assert_eq!(e.grantee_principal, ALICE);
    assert_eq!(e.issuing_account, format!("arn:aws:iam::{ACCOUNT}:root"));
    assert_eq!(e.operations, vec!["Encrypt", "Decrypt"]);
    assert!(e.constraints.is_none());

    aws(app
        .c()
        .revoke_grant(pb::RevokeGrantRequest {
            key_id: key.key_id.clone(),
            grant_id: grant_id.clone(),
            context: root(ACCOUNT),
            ..Default::default()
        })
        .await)
    .unwrap();
    let again = expect_err(
        app.encrypt(user(ALICE), &key.key_id, &[], &[]).await,
        "AccessDeniedException",
    );
    assert_eq!(again, denied, "the deny message is the one without a grant");
    expect_err(
        aws(app
            .c()
            .revoke_grant(pb::RevokeGrantRequest {
                key_id: key.key_id.clone(),
                grant_id,
                context: root(ACCOUNT),
                ..Default::default()
            })
            .await),
        "NotFoundException",
    );
    app.stop().await;
}

#[tokio::test]
async fn constraints_decide_on_the_encryption_context() {
    let app = spawn_in(tempfile::tempdir().unwrap()).await;
    let key = app.create_key(None, None).await;
    let mut eq = grant_req(&key.key_id, ALICE, &["Encrypt"]);
    eq.constraints = Some(pb::GrantConstraints {
        encryption_context_equals: map(&[("dept", "it")]),
        ..Default::default()
    });
    app.grant(root(ACCOUNT), eq).await.unwrap();
    let mut sub = grant_req(&key.key_id, BOB, &["Encrypt"]);
    sub.constraints = Some(pb::GrantConstraints {
        encryption_context_subset: map(&[("dept", "it")]),
        ..Default::default()
    });
    app.grant(root(ACCOUNT), sub).await.unwrap();

    // Equals: exactly that context (keys case-insensitive, values case-sensitive).
    app.encrypt(user(ALICE), &key.key_id, &[("dept", "it")], &[])
        .await
        .unwrap();
    app.encrypt(user(ALICE), &key.key_id, &[("DEPT", "it")], &[])
        .await
        .unwrap();
    for bad in [
        vec![],
        vec![("dept", "IT")],
        vec![("dept", "it"), ("x", "y")],
    ] {
        expect_err(
            app.encrypt(user(ALICE), &key.key_id, &bad, &[]).await,
            "AccessDeniedException",
        );
    }
    // Subset: the request's context includes the pairs.
    app.encrypt(user(BOB), &key.key_id, &[("dept", "it"), ("x", "y")], &[])
        .await
        .unwrap();
    expect_err(
        app.encrypt(user(BOB), &key.key_id, &[("x", "y")], &[])
            .await,
        "AccessDeniedException",
    );
    let listed = app.list(&key.key_id, None, None).await;
    let with_eq = listed
        .grants
        .iter()
        .find(|g| g.grantee_principal == ALICE)
        .unwrap();
    assert_eq!(
        with_eq
            .constraints
            .as_ref()
            .unwrap()
            .encryption_context_equals,
        map(&[("dept", "it")])
    );

    // Constraints only on symmetric encryption keys; operations must fit the key.
    let signing = app
        .create_key(Some("SIGN_VERIFY"), Some("ECC_NIST_P256"))
        .await;
    let mut bad = grant_req(&signing.key_id, ALICE, &["Sign"]);
    bad.constraints = Some(pb::GrantConstraints {
        encryption_context_subset: map(&[("a", "b")]),
        ..Default::default()
    });
    expect_err(app.grant(root(ACCOUNT), bad).await, "ValidationException");
    expect_err(
        app.grant(
            root(ACCOUNT),
            grant_req(&signing.key_id, ALICE, &["Encrypt"]),
        )
        .await,
        "ValidationException",
    );
    app.grant(
        root(ACCOUNT),
        grant_req(&signing.key_id, ALICE, &["Sign", "GetPublicKey"]),
    )
    .await
    .unwrap();
    app.stop().await;
}

#[tokio::test]
async fn cross_account_grants_and_explicit_denies() {
    let app = spawn_in(tempfile::tempdir().unwrap()).await;
    let key = app.create_key(None, None).await;
    let other = format!("arn:aws:iam::{OTHER_ACCOUNT}:root");
    expect_err(
        app.encrypt(root(OTHER_ACCOUNT), &key.arn, &[], &[]).await,
        "AccessDeniedException",
    );
    app.grant(
        root(ACCOUNT),
        grant_req(&key.arn, &other, &["Encrypt", "DescribeKey"]),
    )
    .await
    .unwrap();
    app.encrypt(root(OTHER_ACCOUNT), &key.arn, &[], &[])
        .await
        .unwrap();
    aws(app
        .c()
        .describe_key(pb::DescribeKeyRequest {
            key_id: key.arn.clone(),
            context: root(OTHER_ACCOUNT),
            ..Default::default()
        })
        .await)
    .unwrap();

    // An explicit deny in the key policy wins over a grant.
    app.grant(root(ACCOUNT), grant_req(&key.key_id, ALICE, &["Encrypt"]))
        .await
        .unwrap();
    app.encrypt(user(ALICE), &key.key_id, &[], &[])
        .await
        .unwrap();
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:*","Resource":"*"}},{{"Effect":"Deny","Principal":{{"AWS":"{ALICE}"}},"Action":"kms:Encrypt","Resource":"*"}}]}}"#
    );
    aws(app
        .c()
        .put_key_policy(pb::PutKeyPolicyRequest {
            key_id: key.key_id.clone(),
            policy,
            context: root(ACCOUNT),
            ..Default::default()
        })
        .await)
    .unwrap();
    let msg = expect_err(
        app.encrypt(user(ALICE), &key.key_id, &[], &[]).await,
        "AccessDeniedException",
    );
    assert!(
        msg.contains("with an explicit deny in a resource-based policy"),
        "{msg}"
    );
    app.stop().await;
}

#[tokio::test]
async fn retiring_listing_tokens_and_restarts() {
    let app = spawn_in(tempfile::tempdir().unwrap()).await;
    let key = app.create_key(None, None).await;
    let mut by_retirer = grant_req(&key.key_id, ALICE, &["Encrypt"]);
    by_retirer.retiring_principal = Some(BOB.into());
    by_retirer.name = Some("retire-me".into());
    let first = app.grant(root(ACCOUNT), by_retirer.clone()).await.unwrap();
    // The same name and parameters: the same grant (AWS's idempotency).
    let again = app.grant(root(ACCOUNT), by_retirer).await.unwrap();
    assert_eq!(first.grant_id, again.grant_id);
    let by_token = app
        .grant(root(ACCOUNT), grant_req(&key.key_id, ALICE, &["Decrypt"]))
        .await
        .unwrap();
    let self_retire = app
        .grant(
            root(ACCOUNT),
            grant_req(&key.key_id, ALICE, &["Decrypt", "RetireGrant"]),
        )
        .await
        .unwrap();
    assert_eq!(app.list(&key.key_id, None, None).await.grants.len(), 3);

    // Pagination and filters.
    let page = app.list(&key.key_id, Some(2), None).await;
    assert_eq!(page.grants.len(), 2);
    assert!(page.truncated);
    let rest = app
        .list(&key.key_id, Some(2), page.next_marker.clone())
        .await;
    assert_eq!(rest.grants.len(), 1);
    assert!(!rest.truncated);
    let filtered = aws(app
        .c()
        .list_grants(pb::ListGrantsRequest {
            key_id: key.key_id.clone(),
            grant_id: first.grant_id.clone(),
            context: root(ACCOUNT),
            ..Default::default()
        })
        .await)
    .unwrap();
    assert_eq!(filtered.grants.len(), 1);
    expect_err(
        aws(app
            .c()
            .list_grants(pb::ListGrantsRequest {
                key_id: key.key_id.clone(),
                grant_id: Some("nope".into()),
                context: root(ACCOUNT),
                ..Default::default()
            })
            .await),
        "InvalidGrantIdException",
    );
    let retirable = aws(app
        .c()
        .list_retirable_grants(pb::ListRetirableGrantsRequest {
            retiring_principal: BOB.into(),
            context: root(ACCOUNT),
            ..Default::default()
        })
        .await)
    .unwrap();
    assert_eq!(retirable.grants.len(), 1);
    assert_eq!(
        retirable.grants[0].grant_id,
        first.grant_id.clone().unwrap()
    );

    // Malformed tokens are refused by every operation that takes them.
    expect_err(
        app.encrypt(user(ALICE), &key.key_id, &[], &["garbage"])
            .await,
        "InvalidGrantTokenException",
    );

    // Persisted: a restart keeps the grants.
    let dir = app.stop().await;
    let app = spawn_in(dir).await;
    assert_eq!(app.list(&key.key_id, None, None).await.grants.len(), 3);
    app.encrypt(user(ALICE), &key.key_id, &[], &[])
        .await
        .unwrap();

    let retire = |who, token: Option<String>, id: Option<String>| {
        let c = app.c();
        let key_id = id.as_ref().map(|_| key.key_id.clone());
        async move {
            aws(c
                .clone()
                .retire_grant(pb::RetireGrantRequest {
                    grant_token: token,
                    key_id,
                    grant_id: id,
                    context: who,
                    ..Default::default()
                })
                .await)
        }
    };
    // Alice (grantee without RetireGrant) may not retire; Bob, the retiring principal, may.
    expect_err(
        retire(user(ALICE), None, first.grant_id.clone()).await,
        "AccessDeniedException",
    );
    retire(user(BOB), None, first.grant_id.clone())
        .await
        .unwrap();
    expect_err(
        retire(user(BOB), None, first.grant_id.clone()).await,
        "NotFoundException",
    );
    // By token alone (the key's account).
    retire(root(ACCOUNT), by_token.grant_token.clone(), None)
        .await
        .unwrap();
    expect_err(
        retire(root(ACCOUNT), Some("bad token".into()), None).await,
        "InvalidGrantTokenException",
    );
    expect_err(
        retire(root(ACCOUNT), None, None).await,
        "ValidationException",
    );
    // A grantee whose grant has RetireGrant.
    retire(user(ALICE), self_retire.grant_token.clone(), None)
        .await
        .unwrap();
    assert!(app.list(&key.key_id, None, None).await.grants.is_empty());
    expect_err(
        app.encrypt(user(ALICE), &key.key_id, &[], &[]).await,
        "AccessDeniedException",
    );
    app.stop().await;
}

#[tokio::test]
async fn a_grantee_with_create_grant_delegates_a_subset() {
    let app = spawn_in(tempfile::tempdir().unwrap()).await;
    let key = app.create_key(None, None).await;
    expect_err(
        app.grant(user(ALICE), grant_req(&key.key_id, BOB, &["Encrypt"]))
            .await,
        "AccessDeniedException",
    );
    app.grant(
        root(ACCOUNT),
        grant_req(&key.key_id, ALICE, &["Encrypt", "Decrypt", "CreateGrant"]),
    )
    .await
    .unwrap();
    app.grant(user(ALICE), grant_req(&key.key_id, BOB, &["Encrypt"]))
        .await
        .unwrap();
    app.encrypt(user(BOB), &key.key_id, &[], &[]).await.unwrap();
    expect_err(
        app.grant(
            user(ALICE),
            grant_req(&key.key_id, BOB, &["Encrypt", "GenerateDataKey"]),
        )
        .await,
        "AccessDeniedException",
    );
    app.stop().await;
}
