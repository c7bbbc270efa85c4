//! authz over gRPC: bootstrap, Authenticate, Authorize, CreateAccount, ListAccounts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use kms_authz::{Config, FixedClock};
use kms_proto::authz::v1::authz_client::AuthzClient;
use kms_proto::authz::v1::{
    AuthenticateRequest, AuthorizeRequest, ConditionKeyValues, CreateAccountRequest, Decision,
    ListAccountsRequest,
};
use kms_proto::common::v1::{Caller, RequestContext};
use kms_proto::error::AwsError;
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

const NOW: OffsetDateTime = datetime!(2026-01-02 00:00:00 UTC);
const DEFAULT_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const DEFAULT_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

struct TestApp {
    addr: SocketAddr,
    client: AuthzClient<Channel>,
    clock: Arc<FixedClock>,
    db_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    dir: Arc<TempDir>,
}

impl TestApp {
    async fn stop(mut self) -> Arc<TempDir> {
        let _ = self.shutdown.take().unwrap().send(());
        self.server.take().unwrap().await.unwrap().unwrap();
        self.dir.clone()
    }
}

async fn spawn_with(dir: Arc<TempDir>, bootstrap_file: Option<PathBuf>) -> TestApp {
    let db_url = format!("sqlite://{}", dir.path().join("authz.db").display());
    let mut config = Config::new(db_url.clone());
    config.bootstrap_file = bootstrap_file;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let clock = Arc::new(FixedClock::new(NOW));
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(kms_authz::run_with_clock(
        listener,
        config,
        clock.clone(),
        async {
            let _ = rx.await;
        },
    ));
    let client = AuthzClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    TestApp {
        addr,
        client,
        clock,
        db_url,
        shutdown: Some(tx),
        server: Some(server),
        dir,
    }
}

async fn spawn_app() -> TestApp {
    spawn_with(Arc::new(TempDir::new().unwrap()), None).await
}

/// SigV4 signature computed here independently of the service (plain HMAC chain).
fn sign(secret: &str, date: &str, region: &str, service: &str, string_to_sign: &str) -> String {
    let mut k = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, format!("AWS4{secret}").as_bytes()),
        date.as_bytes(),
    );
    for part in [region, service, "aws4_request"] {
        k = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, k.as_ref()),
            part.as_bytes(),
        );
    }
    let sig = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, k.as_ref()),
        string_to_sign.as_bytes(),
    );
    hex::encode(sig.as_ref())
}

fn signed(access_key_id: &str, secret: &str, amz_date: &str) -> AuthenticateRequest {
    let date = &amz_date[..8];
    let sts = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/us-east-1/kms/aws4_request\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    AuthenticateRequest {
        access_key_id: access_key_id.into(),
        scope_date: date.into(),
        scope_region: "us-east-1".into(),
        scope_service: "kms".into(),
        amz_date: amz_date.into(),
        signature: sign(secret, date, "us-east-1", "kms", &sts),
        string_to_sign: sts,
        security_token: String::new(),
    }
}

fn aws_error(r: Result<impl std::fmt::Debug, tonic::Status>) -> AwsError {
    AwsError::from_status(&r.expect_err("call should fail"))
}

#[tokio::test]
async fn health_reports_serving_after_migrations() {
    let app = spawn_app().await;
    let channel = Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let resp = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "kms.authz.v1.Authz".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        resp.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
}

#[tokio::test]
async fn fresh_database_gets_the_two_default_accounts() {
    let mut app = spawn_app().await;
    let accounts = app
        .client
        .list_accounts(ListAccountsRequest {})
        .await
        .unwrap()
        .into_inner()
        .accounts;
    let got: Vec<(&str, &str, &str)> = accounts
        .iter()
        .map(|a| {
            (
                a.account_id.as_str(),
                a.root_access_key_id.as_str(),
                a.root_secret_access_key.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("111122223333", DEFAULT_KEY, ""),
            ("444455556666", "AKIAI44QH8DHBEXAMPLE", "")
        ]
    );
}

#[tokio::test]
async fn authenticate_returns_the_root_caller() {
    let mut app = spawn_app().await;
    let caller = app
        .client
        .authenticate(signed(DEFAULT_KEY, DEFAULT_SECRET, "20260102T000000Z"))
        .await
        .unwrap()
        .into_inner()
        .caller
        .unwrap();
    assert_eq!(
        caller,
        Caller {
            account_id: "111122223333".into(),
            arn: "arn:aws:iam::111122223333:root".into(),
            principal_id: "111122223333".into(),
            principal_type: "Root".into(),
            user_name: String::new(),
            access_key_id: DEFAULT_KEY.into(),
            role_arn: String::new(),
            session_name: String::new(),
        }
    );
    // The second default account signs with its own secret.
    let caller = app
        .client
        .authenticate(signed(
            "AKIAI44QH8DHBEXAMPLE",
            "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
            "20260102T000000Z",
        ))
        .await
        .unwrap()
        .into_inner()
        .caller
        .unwrap();
    assert_eq!(caller.account_id, "444455556666");
}

#[tokio::test]
async fn unknown_access_key_is_unrecognized() {
    let mut app = spawn_app().await;
    let e = aws_error(
        app.client
            .authenticate(signed(
                "AKIAUNKNOWNUNKNOWN00",
                DEFAULT_SECRET,
                "20260102T000000Z",
            ))
            .await,
    );
    assert_eq!(
        e,
        AwsError::new(
            "UnrecognizedClientException",
            "The security token included in the request is invalid."
        )
    );
}

#[tokio::test]
async fn wrong_secret_or_tampered_string_is_a_signature_mismatch() {
    let mut app = spawn_app().await;
    let expected = AwsError::new(
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    );
    let e = aws_error(
        app.client
            .authenticate(signed(
                DEFAULT_KEY,
                "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
                "20260102T000000Z",
            ))
            .await,
    );
    assert_eq!(e, expected);
    let mut req = signed(DEFAULT_KEY, DEFAULT_SECRET, "20260102T000000Z");
    req.string_to_sign = req.string_to_sign.replace("us-east-1", "us-west-2");
    assert_eq!(aws_error(app.client.authenticate(req).await), expected);
    let mut req = signed(DEFAULT_KEY, DEFAULT_SECRET, "20260102T000000Z");
    req.scope_region = "us-west-2".into();
    assert_eq!(aws_error(app.client.authenticate(req).await), expected);
}

#[tokio::test]
async fn scope_date_must_equal_the_request_date() {
    let mut app = spawn_app().await;
    let mut req = signed(DEFAULT_KEY, DEFAULT_SECRET, "20260102T000000Z");
    req.scope_date = "20260101".into();
    assert_eq!(
        aws_error(app.client.authenticate(req).await),
        AwsError::new(
            "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20260101' != '20260102', from '20260102T000000Z'."
        )
    );
}

#[tokio::test]
async fn clock_window_accepts_299_seconds_and_refuses_301() {
    let mut app = spawn_app().await;
    let req = signed(DEFAULT_KEY, DEFAULT_SECRET, "20260102T000000Z");
    for offset in [299i64, -299, 0] {
        app.clock.set(NOW + time::Duration::seconds(offset));
        app.client
            .authenticate(req.clone())
            .await
            .unwrap_or_else(|e| panic!("offset {offset}: {e:?}"));
    }
    app.clock.set(NOW + time::Duration::seconds(301));
    assert_eq!(
        aws_error(app.client.authenticate(req.clone()).await),
        AwsError::new(
            "InvalidSignatureException",
            "Signature expired: 20260102T000000Z is now earlier than 20260102T000001Z (20260102T000501Z - 5 min.)"
        )
    );
    app.clock.set(NOW - time::Duration::seconds(301));
    assert_eq!(
        aws_error(app.client.authenticate(req).await),
        AwsError::new(
            "InvalidSignatureException",
            "Signature not yet current: 20260102T000000Z is still later than 20260101T235959Z (20260101T235459Z + 5 min.)"
        )
    );
}

#[tokio::test]
async fn malformed_date_and_session_tokens_are_refused() {
    let mut app = spawn_app().await;
    let mut req = signed(DEFAULT_KEY, DEFAULT_SECRET, "20260102T000000Z");
    req.amz_date = "2026-01-02T00:00:00Z".into();
    assert_eq!(
        aws_error(app.client.authenticate(req).await).code,
        "IncompleteSignatureException"
    );
    let mut req = signed(DEFAULT_KEY, DEFAULT_SECRET, "20260102T000000Z");
    req.security_token = "FwoGZXIvYXdzEXAMPLETOKEN".into();
    assert_eq!(
        aws_error(app.client.authenticate(req).await).code,
        "UnrecognizedClientException"
    );
}

const KEY_ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const VPCE: &str = "vpce-1234abcdf5678c90a";

fn root(account: &str) -> Caller {
    Caller {
        account_id: account.into(),
        arn: format!("arn:aws:iam::{account}:root"),
        principal_id: account.into(),
        principal_type: "Root".into(),
        ..Default::default()
    }
}

fn user(account: &str, name: &str) -> Caller {
    Caller {
        account_id: account.into(),
        arn: format!("arn:aws:iam::{account}:user/{name}"),
        principal_id: "AIDAEXAMPLEUSERID".into(),
        principal_type: "IAMUser".into(),
        user_name: name.into(),
        ..Default::default()
    }
}

/// A request from `caller` on the public endpoint, on the key of account 111122223333.
fn authorize_request(caller: Caller, action: &str) -> AuthorizeRequest {
    AuthorizeRequest {
        context: Some(RequestContext {
            caller: Some(caller),
            source_ip: "203.0.113.10".into(),
            region: "us-east-1".into(),
            secure_transport: true,
            ..Default::default()
        }),
        action: action.into(),
        resource_arn: KEY_ARN.into(),
        resource_account: "111122223333".into(),
        ..Default::default()
    }
}

fn through_endpoint(mut r: AuthorizeRequest, vpce: &str, vpc: &str) -> AuthorizeRequest {
    let ctx = r.context.as_mut().unwrap();
    ctx.vpce_id = vpce.into();
    ctx.vpc_id = vpc.into();
    ctx.source_ip = "10.0.1.25".into();
    r
}

async fn decide(app: &mut TestApp, r: AuthorizeRequest) -> Decision {
    app.client.authorize(r).await.unwrap().into_inner()
}

#[tokio::test]
async fn authorize_default_key_policy_allows_own_account_root_only() {
    let mut app = spawn_app().await;
    let own = decide(
        &mut app,
        authorize_request(root("111122223333"), "kms:Encrypt"),
    )
    .await;
    assert!(own.allowed, "{own:?}");
    assert_eq!(own.eval_decision, "allowed");
    assert!(own.reason.is_empty());

    let cross = decide(
        &mut app,
        authorize_request(root("444455556666"), "kms:Encrypt"),
    )
    .await;
    assert!(!cross.allowed);
    assert_eq!(
        cross.reason,
        format!(
            "User: arn:aws:iam::444455556666:root is not authorized to perform: kms:Encrypt on resource: {KEY_ARN} because no resource-based policy allows the kms:Encrypt action"
        )
    );
    assert_eq!(cross.eval_decision, "implicitDeny");
    assert!(!cross.denied_by_endpoint_policy);

    // An IAM user of the account needs an identity policy (the default policy delegates).
    let alice = decide(
        &mut app,
        authorize_request(user("111122223333", "Alice"), "kms:Encrypt"),
    )
    .await;
    assert!(
        alice
            .reason
            .ends_with("because no identity-based policy allows the kms:Encrypt action")
    );
    let mut with_iam = authorize_request(user("111122223333", "Alice"), "kms:Encrypt");
    with_iam.identity_policies = vec![
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:Encrypt","Resource":"arn:aws:kms:*:111122223333:key/*"}}"#.into(),
    ];
    assert!(decide(&mut app, with_iam).await.allowed);

    let mut anonymous = authorize_request(root("111122223333"), "kms:Encrypt");
    anonymous.context = None;
    let d = decide(&mut app, anonymous).await;
    assert!(!d.allowed);
    assert_eq!(d.reason, "the request has no authenticated caller");
}

#[tokio::test]
async fn authorize_operations_without_resource_use_identity_policies() {
    let mut app = spawn_app().await;
    let mut r = authorize_request(root("111122223333"), "kms:CreateKey");
    r.resource_arn.clear();
    r.resource_account.clear();
    assert!(
        decide(&mut app, r.clone()).await.allowed,
        "root may create keys"
    );
    r.context.as_mut().unwrap().caller = Some(user("111122223333", "Alice"));
    let d = decide(&mut app, r.clone()).await;
    assert_eq!(
        d.reason,
        "User: arn:aws:iam::111122223333:user/Alice is not authorized to perform: kms:CreateKey on resource: * because no identity-based policy allows the kms:CreateKey action"
    );
    r.identity_policies = vec![
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:Create*","Resource":"*"}}"#.into(),
    ];
    assert!(decide(&mut app, r).await.allowed);
}

const EXAMPLE_KEY_1: &str = r#"{
    "Id": "example-key-1",
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "Enable IAM user permissions", "Effect": "Allow",
         "Principal": {"AWS":["111122223333"]}, "Action": ["kms:*"], "Resource": "*"},
        {"Sid": "Restrict usage to my VPC endpoint", "Effect": "Deny", "Principal": "*",
         "Action": ["kms:Encrypt","kms:Decrypt","kms:ReEncrypt","kms:GenerateDataKey"],
         "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:sourceVpce": "vpce-1234abcdf5678c90a"}}}
    ]
}"#;

#[tokio::test]
async fn authorize_key_policy_with_source_vpce() {
    let mut app = spawn_app().await;
    let req = |vpce: Option<&str>| {
        let mut r = authorize_request(root("111122223333"), "kms:Decrypt");
        r.key_policy = EXAMPLE_KEY_1.into();
        match vpce {
            Some(v) => through_endpoint(r, v, "vpc-12345678"),
            None => r,
        }
    };
    assert!(decide(&mut app, req(Some(VPCE))).await.allowed);
    for r in [req(Some("vpce-0000000000000000f")), req(None)] {
        let d = decide(&mut app, r).await;
        assert_eq!(
            d.reason,
            format!(
                "User: arn:aws:iam::111122223333:root is not authorized to perform: kms:Decrypt on resource: {KEY_ARN} with an explicit deny in a resource-based policy"
            )
        );
        assert_eq!(d.eval_decision, "explicitDeny");
    }
}

#[tokio::test]
async fn authorize_endpoint_policy_gate_and_flag() {
    let mut app = spawn_app().await;
    let endpoint_policy = r#"{"Statement":[{"Sid":"Allow decrypt and view permission",
        "Principal":{"AWS":"arn:aws:iam::111122223333:user/ExampleUser"},"Effect":"Allow",
        "Action":["kms:Decrypt","kms:DescribeKey","kms:ListAliases","kms:ListKeys"],
        "Resource":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}]}"#;
    let iam = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}"#;
    let req = |action: &str| {
        let mut r = through_endpoint(
            authorize_request(user("111122223333", "ExampleUser"), action),
            VPCE,
            "vpc-12345678",
        );
        r.endpoint_policy = endpoint_policy.into();
        r.identity_policies = vec![iam.into()];
        r
    };
    assert!(decide(&mut app, req("kms:Decrypt")).await.allowed);
    let d = decide(&mut app, req("kms:Encrypt")).await;
    assert!(!d.allowed);
    assert!(d.denied_by_endpoint_policy);
    assert_eq!(
        d.reason,
        format!(
            "User: arn:aws:iam::111122223333:user/ExampleUser is not authorized to perform: kms:Encrypt on resource: {KEY_ARN} because no VPC endpoint policy allows the kms:Encrypt action"
        )
    );
    // Also refused by IAM: not "only the endpoint policy".
    let mut no_iam = req("kms:Encrypt");
    no_iam.identity_policies.clear();
    let d = decide(&mut app, no_iam).await;
    assert!(!d.denied_by_endpoint_policy);
    assert!(
        d.reason
            .ends_with("because no identity-based policy allows the kms:Encrypt action")
    );
    // An endpoint with the default policy (empty here) lets through what the key allows.
    let mut default = req("kms:Encrypt");
    default.endpoint_policy.clear();
    assert!(decide(&mut app, default).await.allowed);
}

#[tokio::test]
async fn authorize_source_ip_and_vpc_keys_follow_the_network_path() {
    let mut app = spawn_app().await;
    let key_policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:DescribeKey","Resource":"*",
         "Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}},
        {"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:Decrypt","Resource":"*",
         "Condition":{"StringEquals":{"aws:SourceVpc":"vpc-12345678"},"IpAddress":{"aws:VpcSourceIp":"10.0.0.0/16"}}}]}"#;
    let req = |action: &str, via_endpoint: bool| {
        let mut r = authorize_request(root("111122223333"), action);
        r.key_policy = key_policy.into();
        if via_endpoint {
            r = through_endpoint(r, VPCE, "vpc-12345678");
            // The same address as seen on the public path must not count as aws:SourceIp.
            r.context.as_mut().unwrap().source_ip = "203.0.113.10".into();
        }
        r
    };
    assert!(
        decide(&mut app, req("kms:DescribeKey", false))
            .await
            .allowed
    );
    assert!(
        !decide(&mut app, req("kms:DescribeKey", true)).await.allowed,
        "aws:SourceIp is absent through an endpoint"
    );
    assert!(!decide(&mut app, req("kms:Decrypt", false)).await.allowed);
    let mut via = req("kms:Decrypt", true);
    via.context.as_mut().unwrap().source_ip = "10.0.1.25".into();
    assert!(decide(&mut app, via).await.allowed);
    // A client-supplied condition key cannot claim an endpoint or a source address.
    let mut forged = req("kms:Decrypt", false);
    forged
        .condition_keys
        .insert("aws:SourceVpc".into(), "vpc-12345678".into());
    forged
        .condition_keys
        .insert("aws:VpcSourceIp".into(), "10.0.1.25".into());
    assert!(!decide(&mut app, forged).await.allowed);
}

#[tokio::test]
async fn authorize_condition_keys_single_and_multi_valued() {
    let mut app = spawn_app().await;
    let key_policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:Decrypt","Resource":"*",
         "Condition":{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["app","env"]},
                      "StringEquals":{"kms:EncryptionContext:app":"billing","aws:PrincipalType":"Account",
                                      "kms:CallerAccount":"111122223333","aws:RequestedRegion":"us-east-1"},
                      "DateLessThan":{"aws:CurrentTime":"2026-06-01T00:00:00Z"},
                      "NumericLessThan":{"aws:EpochTime":"1780272000"},
                      "Bool":{"aws:SecureTransport":"true"}}}]}"#;
    let req = |keys: &[&str], app_value: &str| {
        let mut r = authorize_request(root("111122223333"), "kms:Decrypt");
        r.key_policy = key_policy.into();
        r.condition_keys
            .insert("kms:EncryptionContext:app".into(), app_value.into());
        r.multi_valued_condition_keys.push(ConditionKeyValues {
            key: "kms:EncryptionContextKeys".into(),
            values: keys.iter().map(|k| k.to_string()).collect(),
        });
        r
    };
    let d = decide(&mut app, req(&["app", "env"], "billing")).await;
    assert!(d.allowed, "{d:?}");
    assert!(
        decide(&mut app, req(&[], "billing")).await.allowed,
        "empty set: ForAllValues holds"
    );
    assert!(
        !decide(&mut app, req(&["app", "owner"], "billing"))
            .await
            .allowed
    );
    assert!(!decide(&mut app, req(&["app"], "Billing")).await.allowed);
    // The request time comes from the context (2026-01-02 by the test clock when absent).
    let mut late = req(&["app"], "billing");
    late.context.as_mut().unwrap().time_ms = 1_780_272_000_000;
    assert!(!decide(&mut app, late).await.allowed);
    let mut plain = req(&["app"], "billing");
    plain.context.as_mut().unwrap().secure_transport = false;
    assert!(!decide(&mut app, plain).await.allowed);
}

#[tokio::test]
async fn authorize_refuses_malformed_policies() {
    let mut app = spawn_app().await;
    let mut r = authorize_request(root("111122223333"), "kms:Decrypt");
    r.key_policy =
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"},]}"#
            .into();
    let e = aws_error(app.client.authorize(r).await);
    assert_eq!(e.code, "MalformedPolicyDocumentException");
    assert!(e.message.contains("trailing comma"), "{}", e.message);

    let mut r = authorize_request(root("111122223333"), "kms:Decrypt");
    r.identity_policies = vec![
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}"#
            .into(),
    ];
    let e = aws_error(app.client.authorize(r).await);
    assert_eq!(e.code, "MalformedPolicyDocumentException");

    let mut r = authorize_request(root("111122223333"), "kms:Decrypt");
    r.key_policy = format!(
        r#"{{"Statement":{{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}}}{}"#,
        " ".repeat(32 * 1024)
    );
    let e = aws_error(app.client.authorize(r).await);
    assert_eq!(e.code, "LimitExceededException");
}

#[tokio::test]
async fn created_account_can_sign_at_once_and_is_listed_without_secret() {
    let mut app = spawn_app().await;
    let created = app
        .client
        .create_account(CreateAccountRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.account_id.len(), 12);
    assert!(created.account_id.bytes().all(|b| b.is_ascii_digit()));
    assert!(created.root_access_key_id.starts_with("AKIA"));
    assert_eq!(created.root_access_key_id.len(), 20);
    assert_eq!(created.root_secret_access_key.len(), 40);

    let caller = app
        .client
        .authenticate(signed(
            &created.root_access_key_id,
            &created.root_secret_access_key,
            "20260102T000000Z",
        ))
        .await
        .unwrap()
        .into_inner()
        .caller
        .unwrap();
    assert_eq!(caller.account_id, created.account_id);
    assert_eq!(
        caller.arn,
        format!("arn:aws:iam::{}:root", created.account_id)
    );

    let accounts = app
        .client
        .list_accounts(ListAccountsRequest {})
        .await
        .unwrap()
        .into_inner()
        .accounts;
    assert_eq!(accounts.len(), 3);
    let listed = accounts
        .iter()
        .find(|a| a.account_id == created.account_id)
        .unwrap();
    assert_eq!(listed.root_access_key_id, created.root_access_key_id);
    assert!(listed.root_secret_access_key.is_empty());
}

#[tokio::test]
async fn create_account_with_given_keys_and_conflicts() {
    let mut app = spawn_app().await;
    let req = CreateAccountRequest {
        account_id: "999988887777".into(),
        access_key_id: "AKIATESTTESTTEST0001".into(),
        secret_access_key: "abcdefghijklmnopqrstuvwxyz0123456789ABCD".into(),
    };
    let created = app
        .client
        .create_account(req.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.account_id, "999988887777");
    assert_eq!(created.root_access_key_id, "AKIATESTTESTTEST0001");
    assert_eq!(
        created.root_secret_access_key,
        "abcdefghijklmnopqrstuvwxyz0123456789ABCD"
    );

    assert_eq!(
        aws_error(app.client.create_account(req.clone()).await).code,
        "AlreadyExistsException"
    );
    let same_key = CreateAccountRequest {
        account_id: "999988887778".into(),
        ..req.clone()
    };
    assert_eq!(
        aws_error(app.client.create_account(same_key).await).code,
        "AlreadyExistsException"
    );
    let bad_id = CreateAccountRequest {
        account_id: "12345".into(),
        ..Default::default()
    };
    assert_eq!(
        aws_error(app.client.create_account(bad_id).await).code,
        "ValidationException"
    );
    let half_pair = CreateAccountRequest {
        access_key_id: "AKIATESTTESTTEST0002".into(),
        ..Default::default()
    };
    assert_eq!(
        aws_error(app.client.create_account(half_pair).await).code,
        "ValidationException"
    );
    // The failed attempts left nothing behind.
    assert_eq!(
        app.client
            .list_accounts(ListAccountsRequest {})
            .await
            .unwrap()
            .into_inner()
            .accounts
            .len(),
        3
    );
}

#[tokio::test]
async fn bootstrap_file_replaces_the_defaults_and_runs_once() {
    let dir = Arc::new(TempDir::new().unwrap());
    let file = dir.path().join("bootstrap.json");
    std::fs::write(
        &file,
        r#"{"accounts":[{"account_id":"123456789012","access_key_id":"AKIABOOTSTRAPKEY0001","secret_access_key":"bootstrapsecretbootstrapsecretbootstrap1"}]}"#,
    )
    .unwrap();
    let mut app = spawn_with(dir.clone(), Some(file.clone())).await;
    let accounts = app
        .client
        .list_accounts(ListAccountsRequest {})
        .await
        .unwrap()
        .into_inner()
        .accounts;
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].account_id, "123456789012");
    app.client
        .authenticate(signed(
            "AKIABOOTSTRAPKEY0001",
            "bootstrapsecretbootstrapsecretbootstrap1",
            "20260102T000000Z",
        ))
        .await
        .unwrap();
    let created = app
        .client
        .create_account(CreateAccountRequest::default())
        .await
        .unwrap()
        .into_inner();
    let db_url = app.db_url.clone();
    let dir = app.stop().await;

    // Restart on the same database with a different bootstrap file: nothing is re-created.
    std::fs::write(
        &file,
        r#"{"accounts":[{"account_id":"000000000000","access_key_id":"AKIAOTHERKEY00000001","secret_access_key":"othersecretothersecretothersecretother12"}]}"#,
    )
    .unwrap();
    let mut app = spawn_with(dir, Some(file)).await;
    assert_eq!(app.db_url, db_url);
    let ids: Vec<String> = app
        .client
        .list_accounts(ListAccountsRequest {})
        .await
        .unwrap()
        .into_inner()
        .accounts
        .into_iter()
        .map(|a| a.account_id)
        .collect();
    let mut expected = vec!["123456789012".to_string(), created.account_id.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    // Keys created before the restart still authenticate (loaded from the database).
    app.client
        .authenticate(signed(
            &created.root_access_key_id,
            &created.root_secret_access_key,
            "20260102T000000Z",
        ))
        .await
        .unwrap();
    app.stop().await;
}

#[tokio::test]
async fn invalid_bootstrap_file_fails_startup() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("bootstrap.json");
    std::fs::write(&file, r#"{"accounts":[{"account_id":"1"}]}"#).unwrap();
    let mut config = Config::new(format!(
        "sqlite://{}",
        dir.path().join("authz.db").display()
    ));
    config.bootstrap_file = Some(file);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        kms_authz::run(listener, config, std::future::pending()),
    )
    .await
    .expect("startup should fail, not serve");
    assert!(result.is_err());
}

// ---- IAM identities, their policies in decisions, STS sessions ----

use kms_proto::authz::v1::{
    AssumeRoleRequest, CreateIamRoleRequest, IamAccessKeyRequest, IamRoleRequest, IamUserRequest,
    InlinePolicy, InlinePolicyRequest, ListIamUsersRequest,
};

const ACCOUNT: &str = "111122223333";
const ENCRYPT_POLICY: &str = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}}"#;

fn user_ref(name: &str) -> IamUserRequest {
    IamUserRequest {
        account_id: ACCOUNT.into(),
        user_name: name.into(),
        path: String::new(),
    }
}

fn user_policy(user: &str, name: &str) -> InlinePolicyRequest {
    InlinePolicyRequest {
        account_id: ACCOUNT.into(),
        principal_kind: "user".into(),
        principal_name: user.into(),
        policy_name: name.into(),
    }
}

async fn authenticate(app: &mut TestApp, r: AuthenticateRequest) -> Result<Caller, AwsError> {
    app.client
        .authenticate(r)
        .await
        .map(|r| r.into_inner().caller.unwrap())
        .map_err(|s| AwsError::from_status(&s))
}

#[tokio::test]
async fn iam_users_keys_and_inline_policies_drive_decisions() {
    let mut app = spawn_app().await;
    let bob = app
        .client
        .create_user(user_ref("Bob"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bob.arn, "arn:aws:iam::111122223333:user/Bob");
    assert!(bob.user_id.starts_with("AIDA") && bob.user_id.len() == 21);
    let dup = aws_error(app.client.create_user(user_ref("bob")).await);
    assert_eq!(dup.code, "EntityAlreadyExists");
    assert_eq!(dup.message, "User with name bob already exists.");
    let bad = aws_error(app.client.create_user(user_ref("no spaces")).await);
    assert_eq!(bad.code, "ValidationError");
    let missing = aws_error(app.client.get_user(user_ref("Nobody")).await);
    assert_eq!(
        (missing.code.as_str(), missing.message.as_str()),
        ("NoSuchEntity", "The user with name Nobody cannot be found.")
    );
    let users = app
        .client
        .list_users(ListIamUsersRequest {
            account_id: ACCOUNT.into(),
            path_prefix: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .users;
    assert_eq!(users.len(), 1);

    // An access key of Bob signs as Bob.
    let key = app
        .client
        .create_access_key(user_ref("Bob"))
        .await
        .unwrap()
        .into_inner();
    assert!(key.access_key_id.starts_with("AKIA"));
    assert_eq!(key.secret_access_key.len(), 40);
    let caller = authenticate(
        &mut app,
        signed(
            &key.access_key_id,
            &key.secret_access_key,
            "20260102T000000Z",
        ),
    )
    .await
    .unwrap();
    assert_eq!(caller.principal_type, "IAMUser");
    assert_eq!(caller.arn, bob.arn);
    assert_eq!(caller.principal_id, bob.user_id);
    assert_eq!(caller.user_name, "Bob");
    let listed = app
        .client
        .list_access_keys(user_ref("Bob"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.access_keys.len(), 1);
    assert!(listed.access_keys[0].secret_access_key.is_empty());

    // Without a policy Bob is denied (the default key policy delegates to IAM); his stored
    // inline policy allows, and removing it denies again (the cache follows writes).
    let denied = decide(&mut app, authorize_request(caller.clone(), "kms:Encrypt")).await;
    assert_eq!(
        denied.reason,
        format!(
            "User: arn:aws:iam::111122223333:user/Bob is not authorized to perform: kms:Encrypt on resource: {KEY_ARN} because no identity-based policy allows the kms:Encrypt action"
        )
    );
    let malformed = aws_error(
        app.client
            .put_inline_policy(InlinePolicy {
                account_id: ACCOUNT.into(),
                principal_kind: "user".into(),
                principal_name: "Bob".into(),
                policy_name: "bad".into(),
                policy_document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"},]}"#.into(),
            })
            .await,
    );
    assert_eq!(malformed.code, "MalformedPolicyDocument");
    app.client
        .put_inline_policy(InlinePolicy {
            account_id: ACCOUNT.into(),
            principal_kind: "user".into(),
            principal_name: "bob".into(),
            policy_name: "encrypt".into(),
            policy_document: ENCRYPT_POLICY.into(),
        })
        .await
        .unwrap();
    assert!(
        decide(&mut app, authorize_request(caller.clone(), "kms:Encrypt"))
            .await
            .allowed
    );
    assert!(
        !decide(&mut app, authorize_request(caller.clone(), "kms:Decrypt"))
            .await
            .allowed
    );
    let got = app
        .client
        .get_inline_policy(user_policy("Bob", "encrypt"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.policy_document, ENCRYPT_POLICY);
    assert_eq!(
        app.client
            .list_inline_policies(user_policy("Bob", ""))
            .await
            .unwrap()
            .into_inner()
            .policy_names,
        ["encrypt"]
    );

    // Users with keys or policies cannot be deleted.
    let conflict = aws_error(app.client.delete_user(user_ref("Bob")).await);
    assert_eq!(
        (conflict.code.as_str(), conflict.message.as_str()),
        (
            "DeleteConflict",
            "Cannot delete entity, must delete access keys first."
        )
    );

    // An inactive key no longer authenticates; active again, it does.
    let set = |status: &str| IamAccessKeyRequest {
        account_id: ACCOUNT.into(),
        user_name: "Bob".into(),
        access_key_id: key.access_key_id.clone(),
        status: status.into(),
    };
    app.client.update_access_key(set("Inactive")).await.unwrap();
    let refused = authenticate(
        &mut app,
        signed(
            &key.access_key_id,
            &key.secret_access_key,
            "20260102T000000Z",
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code, "UnrecognizedClientException");
    app.client.update_access_key(set("Active")).await.unwrap();
    authenticate(
        &mut app,
        signed(
            &key.access_key_id,
            &key.secret_access_key,
            "20260102T000000Z",
        ),
    )
    .await
    .unwrap();
    app.client.delete_access_key(set("")).await.unwrap();
    assert_eq!(
        authenticate(
            &mut app,
            signed(
                &key.access_key_id,
                &key.secret_access_key,
                "20260102T000000Z"
            ),
        )
        .await
        .unwrap_err()
        .code,
        "UnrecognizedClientException"
    );
    let conflict = aws_error(app.client.delete_user(user_ref("Bob")).await);
    assert_eq!(
        conflict.message,
        "Cannot delete entity, must delete policies first."
    );
    app.client
        .delete_inline_policy(user_policy("Bob", "encrypt"))
        .await
        .unwrap();
    assert!(
        !decide(&mut app, authorize_request(caller.clone(), "kms:Encrypt"))
            .await
            .allowed
    );
    let gone = aws_error(
        app.client
            .delete_inline_policy(user_policy("Bob", "encrypt"))
            .await,
    );
    assert_eq!(
        gone.message,
        "The user policy with name encrypt cannot be found."
    );
    app.client.delete_user(user_ref("Bob")).await.unwrap();
    assert_eq!(
        aws_error(app.client.get_user(user_ref("Bob")).await).code,
        "NoSuchEntity"
    );
}

fn trust(principal: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"sts:AssumeRole"}}}}"#
    )
}

fn assume(caller: Caller, role_arn: &str, duration: i32) -> AssumeRoleRequest {
    AssumeRoleRequest {
        context: Some(RequestContext {
            caller: Some(caller),
            source_ip: "203.0.113.10".into(),
            region: "us-east-1".into(),
            ..Default::default()
        }),
        role_arn: role_arn.into(),
        role_session_name: "s1".into(),
        duration_seconds: duration,
    }
}

#[tokio::test]
async fn assume_role_trust_sessions_and_expiry() {
    let mut app = spawn_app().await;
    let role = app
        .client
        .create_role(CreateIamRoleRequest {
            account_id: ACCOUNT.into(),
            role_name: "App".into(),
            path: String::new(),
            assume_role_policy_document: trust("arn:aws:iam::111122223333:user/Bob"),
            description: String::new(),
            max_session_duration: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(role.arn, "arn:aws:iam::111122223333:role/App");
    assert_eq!(role.max_session_duration, 3600);
    let no_principal = aws_error(
        app.client
            .create_role(CreateIamRoleRequest {
                account_id: ACCOUNT.into(),
                role_name: "Bad".into(),
                assume_role_policy_document: ENCRYPT_POLICY.into(),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(no_principal.code, "MalformedPolicyDocument");

    // Roots may not assume roles; a user the trust policy does not name is denied.
    let root_try = aws_error(
        app.client
            .assume_role(assume(root(ACCOUNT), &role.arn, 0))
            .await,
    );
    assert_eq!(
        (root_try.code.as_str(), root_try.message.as_str()),
        ("AccessDenied", "Roles may not be assumed by root accounts.")
    );
    let carol = aws_error(
        app.client
            .assume_role(assume(user(ACCOUNT, "Carol"), &role.arn, 0))
            .await,
    );
    assert_eq!(
        carol.message,
        "User: arn:aws:iam::111122223333:user/Carol is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111122223333:role/App"
    );
    let too_short = aws_error(
        app.client
            .assume_role(assume(user(ACCOUNT, "Bob"), &role.arn, 899))
            .await,
    );
    assert_eq!(too_short.code, "ValidationError");
    let too_long = aws_error(
        app.client
            .assume_role(assume(user(ACCOUNT, "Bob"), &role.arn, 7200))
            .await,
    );
    assert_eq!(
        too_long.message,
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    );

    let creds = app
        .client
        .assume_role(assume(user(ACCOUNT, "Bob"), &role.arn, 900))
        .await
        .unwrap()
        .into_inner();
    assert!(creds.access_key_id.starts_with("ASIA"));
    assert_eq!(creds.arn, "arn:aws:sts::111122223333:assumed-role/App/s1");
    assert_eq!(creds.assumed_role_id, format!("{}:s1", role.role_id));
    assert_eq!(creds.expiration_ms, NOW.unix_timestamp() * 1000 + 900_000);

    let mut req = signed(
        &creds.access_key_id,
        &creds.secret_access_key,
        "20260102T000000Z",
    );
    // Without (or with a wrong) token, session keys are refused.
    assert_eq!(
        authenticate(&mut app, req.clone()).await.unwrap_err().code,
        "UnrecognizedClientException"
    );
    req.security_token = format!("{}x", creds.session_token);
    assert_eq!(
        authenticate(&mut app, req.clone()).await.unwrap_err().code,
        "UnrecognizedClientException"
    );
    req.security_token = creds.session_token.clone();
    let session = authenticate(&mut app, req).await.unwrap();
    assert_eq!(session.principal_type, "AssumedRole");
    assert_eq!(session.arn, creds.arn);
    assert_eq!(session.role_arn, role.arn);
    assert_eq!(session.session_name, "s1");
    assert_eq!(session.principal_id, creds.assumed_role_id);

    // The session's identity side is the role's inline policies.
    let denied = decide(&mut app, authorize_request(session.clone(), "kms:Encrypt")).await;
    assert!(denied.reason.starts_with(
        "User: arn:aws:sts::111122223333:assumed-role/App/s1 is not authorized to perform: kms:Encrypt"
    ));
    app.client
        .put_inline_policy(InlinePolicy {
            account_id: ACCOUNT.into(),
            principal_kind: "role".into(),
            principal_name: "App".into(),
            policy_name: "encrypt".into(),
            policy_document: ENCRYPT_POLICY.into(),
        })
        .await
        .unwrap();
    assert!(
        decide(&mut app, authorize_request(session.clone(), "kms:Encrypt"))
            .await
            .allowed
    );
    let conflict = aws_error(
        app.client
            .delete_role(IamRoleRequest {
                account_id: ACCOUNT.into(),
                role_name: "App".into(),
            })
            .await,
    );
    assert_eq!(conflict.code, "DeleteConflict");

    // Role chaining: the session assumes a role whose trust policy names its role; chained
    // sessions last at most an hour.
    let chained = app
        .client
        .create_role(CreateIamRoleRequest {
            account_id: ACCOUNT.into(),
            role_name: "Chained".into(),
            assume_role_policy_document: trust(&role.arn),
            max_session_duration: 7200,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let long = aws_error(
        app.client
            .assume_role(assume(session.clone(), &chained.arn, 7200))
            .await,
    );
    assert_eq!(
        long.message,
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
    );
    let second = app
        .client
        .assume_role(assume(session.clone(), &chained.arn, 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        second.arn,
        "arn:aws:sts::111122223333:assumed-role/Chained/s1"
    );
    assert_eq!(
        second.expiration_ms,
        NOW.unix_timestamp() * 1000 + 3_600_000
    );

    // After 900 s the credentials are expired.
    app.clock.set(NOW + Duration::from_secs(900));
    let mut late = signed(
        &creds.access_key_id,
        &creds.secret_access_key,
        "20260102T001500Z",
    );
    late.security_token = creds.session_token.clone();
    let expired = authenticate(&mut app, late).await.unwrap_err();
    assert_eq!(
        (expired.code.as_str(), expired.message.as_str()),
        (
            "ExpiredTokenException",
            "The security token included in the request is expired"
        )
    );
    app.clock.set(NOW + Duration::from_secs(899));
    let mut still = signed(
        &creds.access_key_id,
        &creds.secret_access_key,
        "20260102T001459Z",
    );
    still.security_token = creds.session_token;
    authenticate(&mut app, still).await.unwrap();
}

// ---- Managed policies, principal tags, the policy simulator ----

use kms_proto::authz::v1::{
    CreateManagedPolicyRequest, IamTag, ManagedPolicyRequest, PolicyAttachmentRequest,
    SimulatePolicyRequest, TagPrincipalRequest,
};

fn caller_context(caller: Caller) -> Option<RequestContext> {
    Some(RequestContext {
        caller: Some(caller),
        region: "us-east-1".into(),
        ..Default::default()
    })
}

#[tokio::test]
async fn managed_policies_and_principal_tags_drive_decisions_and_the_simulator() {
    let mut app = spawn_app().await;
    let mia = app
        .client
        .create_user(user_ref("Mia"))
        .await
        .unwrap()
        .into_inner();
    let caller = Caller {
        principal_id: mia.user_id.clone(),
        ..user(ACCOUNT, "Mia")
    };
    let encrypt = || authorize_request(caller.clone(), "kms:Encrypt");
    assert!(!decide(&mut app, encrypt()).await.allowed);

    let tagged = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"blue"}}}]}"#;
    let policy = app
        .client
        .create_policy(CreateManagedPolicyRequest {
            account_id: ACCOUNT.into(),
            policy_name: "EncryptIfBlue".into(),
            path: "/p/".into(),
            policy_document: tagged.into(),
            description: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        policy.arn,
        "arn:aws:iam::111122223333:policy/p/EncryptIfBlue"
    );
    let attach = PolicyAttachmentRequest {
        account_id: ACCOUNT.into(),
        principal_kind: "user".into(),
        principal_name: "mia".into(),
        policy_arn: policy.arn.clone(),
        path_prefix: String::new(),
    };
    app.client.attach_policy(attach.clone()).await.unwrap();
    // Attached, but the tag condition does not hold yet; a forged tag from the RPC's caller
    // is ignored.
    assert!(!decide(&mut app, encrypt()).await.allowed);
    let mut forged = encrypt();
    forged
        .condition_keys
        .insert("aws:PrincipalTag/team".into(), "blue".into());
    assert!(!decide(&mut app, forged).await.allowed);

    let simulate = |caller: Caller| SimulatePolicyRequest {
        context: caller_context(caller),
        policy_source_arn: mia.arn.clone(),
        action_names: vec!["kms:Encrypt".into(), "kms:Decrypt".into()],
        resource_arns: vec![KEY_ARN.into()],
        ..Default::default()
    };
    let out = app
        .client
        .simulate_policy(simulate(root(ACCOUNT)))
        .await
        .unwrap()
        .into_inner();
    let decisions: Vec<&str> = out
        .evaluation_results
        .iter()
        .map(|r| r.eval_decision.as_str())
        .collect();
    assert_eq!(decisions, ["implicitDeny", "implicitDeny"]);

    app.client
        .tag_principal(TagPrincipalRequest {
            account_id: ACCOUNT.into(),
            principal_kind: "user".into(),
            principal_name: "Mia".into(),
            tags: vec![IamTag {
                key: "team".into(),
                value: "blue".into(),
            }],
        })
        .await
        .unwrap();
    assert!(decide(&mut app, encrypt()).await.allowed);
    let out = app
        .client
        .simulate_policy(simulate(root(ACCOUNT)))
        .await
        .unwrap()
        .into_inner();
    let enc = &out.evaluation_results[0];
    assert_eq!(
        (enc.eval_action_name.as_str(), enc.eval_decision.as_str()),
        ("kms:Encrypt", "allowed")
    );
    assert_eq!(enc.matched_statements.len(), 1);
    assert_eq!(enc.matched_statements[0].source_policy_id, "EncryptIfBlue");
    assert_eq!(enc.matched_statements[0].source_policy_type, "user-managed");
    let start = enc.matched_statements[0].start_position.unwrap();
    assert_eq!((start.line, start.column), (1, 38));
    assert_eq!(out.evaluation_results[1].eval_decision, "implicitDeny");

    // Attached policies block deleting the policy and the user; detaching restores the deny.
    let e = aws_error(
        app.client
            .delete_policy(ManagedPolicyRequest {
                account_id: ACCOUNT.into(),
                policy_arn: policy.arn.clone(),
            })
            .await,
    );
    assert_eq!(e.code, "DeleteConflict");
    let e = aws_error(app.client.delete_user(user_ref("Mia")).await);
    assert_eq!(e.code, "DeleteConflict");
    app.client.detach_policy(attach).await.unwrap();
    assert!(!decide(&mut app, encrypt()).await.allowed);
    let e = aws_error(
        app.client
            .create_policy(CreateManagedPolicyRequest {
                account_id: ACCOUNT.into(),
                policy_name: "Bad".into(),
                path: String::new(),
                policy_document: r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}"#.into(),
                description: String::new(),
            })
            .await,
    );
    assert_eq!(
        (e.code.as_str(), e.message.as_str()),
        (
            "MalformedPolicyDocument",
            "Policy document should not specify a principal."
        )
    );
    app.stop().await;
}
