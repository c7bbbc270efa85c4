//! Decision micro-benchmark: how many authorization decisions per second one core makes.
//!
//! Realistic policies: a key policy with administrators, users restricted to a VPC endpoint and
//! an encryption-context condition, grant delegation and a Deny; an IAM policy with a few
//! statements; an endpoint policy with the aws:PrincipalAccount deny of the seed document.
//! Two figures: the pure engine (`policy::evaluate` on parsed policies) and the RPC's logic
//! (`Authorizer::decide`: context building, policy cache lookups by text, evaluation).
//!
//! Run: `cargo run --release -p kms-authz --example policy_bench`

use std::hint::black_box;
use std::time::{Duration, Instant};

use kms_authz::authorize::{AccessRequest, Authorizer, CallerInfo, Origin};
use kms_authz::policy::{Context, Policies, Policy, PolicyKind, Principal, Request, evaluate};
use time::OffsetDateTime;

const KEY_ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

const KEY_POLICY: &str = r#"{
  "Id": "key-consolepolicy-3",
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "Allow access for Key Administrators", "Effect": "Allow",
     "Principal": {"AWS": ["arn:aws:iam::111122223333:role/KeyAdmin", "arn:aws:iam::111122223333:user/ops"]},
     "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
                "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
                "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"],
     "Resource": "*"},
    {"Sid": "Allow use of the key", "Effect": "Allow",
     "Principal": {"AWS": ["arn:aws:iam::111122223333:user/Alice", "arn:aws:iam::111122223333:role/App"]},
     "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
     "Resource": "*",
     "Condition": {"StringEquals": {"kms:EncryptionContext:app": ["billing", "ledger"]},
                   "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["app", "env", "tenant"]}}},
    {"Sid": "Allow attachment of persistent resources", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:role/App"},
     "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"], "Resource": "*",
     "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
    {"Sid": "Restrict usage to my VPC endpoint", "Effect": "Deny", "Principal": "*",
     "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"], "Resource": "*",
     "Condition": {"StringNotEquals": {"aws:sourceVpce": ["vpce-1234abcdf5678c90a", "vpce-0a1b2c3d4e5f67890"]}}}
  ]
}"#;

const IAM_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "ReadKeys", "Effect": "Allow", "Action": ["kms:Describe*", "kms:List*", "kms:Get*"], "Resource": "*"},
    {"Sid": "UseAppKeys", "Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"],
     "Resource": "arn:aws:kms:*:111122223333:key/*",
     "Condition": {"StringEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]},
                   "Bool": {"aws:SecureTransport": "true"}}},
    {"Sid": "NoDeletion", "Effect": "Deny", "Action": ["kms:ScheduleKeyDeletion", "kms:Delete*"], "Resource": "*"},
    {"Sid": "OwnAliases", "Effect": "Allow", "Action": "kms:CreateAlias",
     "Resource": "arn:aws:kms:*:111122223333:alias/${aws:username}-*"}
  ]
}"#;

const ENDPOINT_POLICY: &str = r#"{
  "Statement": [
    {"Sid": "Default", "Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
    {"Sid": "Access for a specific account", "Principal": {"AWS": "*"}, "Action": "kms:*", "Effect": "Deny",
     "Resource": "arn:aws:kms:*:111122223333:key/*",
     "Condition": {"StringNotEquals": {"aws:PrincipalAccount": "111122223333"}}}
  ]
}"#;

fn measure(name: &str, mut f: impl FnMut(u64) -> bool) {
    // Warm up, then run for a fixed wall time.
    for i in 0..10_000 {
        black_box(f(i));
    }
    let budget = Duration::from_secs(2);
    let start = Instant::now();
    let mut n = 0u64;
    let mut allowed = 0u64;
    while start.elapsed() < budget {
        for _ in 0..1_000 {
            allowed += u64::from(black_box(f(n)));
            n += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name}: {n} decisions in {secs:.2} s = {:.0} decisions/s ({:.2} us each, {:.0}% allowed)",
        n as f64 / secs,
        secs * 1e6 / n as f64,
        100.0 * allowed as f64 / n as f64
    );
}

fn main() {
    let key = Policy::parse_as(KEY_POLICY, PolicyKind::KeyPolicy).expect("key policy");
    let iam = Policy::parse_as(IAM_POLICY, PolicyKind::Identity).expect("iam policy");
    let endpoint =
        Policy::parse_as(ENDPOINT_POLICY, PolicyKind::EndpointPolicy).expect("endpoint policy");
    let identity = [&iam];
    let policies = Policies {
        key_policy: Some(&key),
        identity: &identity,
        endpoint: Some(&endpoint),
    };
    let alice = Principal::user("111122223333", "Alice");
    let mut ctx = Context::new();
    for (k, v) in [
        ("aws:PrincipalAccount", "111122223333"),
        ("aws:PrincipalArn", "arn:aws:iam::111122223333:user/Alice"),
        ("aws:PrincipalType", "User"),
        ("aws:username", "Alice"),
        ("aws:SourceVpce", "vpce-1234abcdf5678c90a"),
        ("aws:SourceVpc", "vpc-12345678"),
        ("aws:RequestedRegion", "us-east-1"),
        ("aws:SecureTransport", "true"),
        ("kms:CallerAccount", "111122223333"),
        ("kms:EncryptionContext:app", "billing"),
    ] {
        ctx.insert(k, v);
    }
    ctx.insert_multi("kms:EncryptionContextKeys", ["app", "env"]);
    let actions = [
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:ScheduleKeyDeletion",
    ];

    measure("engine (policy::evaluate, parsed policies)", |i| {
        let req = Request {
            principal: &alice,
            action: actions[(i % 4) as usize],
            resource: KEY_ARN,
            resource_account: Some("111122223333"),
            context: &ctx,
        };
        evaluate(&req, &policies).allowed
    });

    let authorizer = Authorizer::new();
    let now = OffsetDateTime::now_utc();
    let requests: Vec<AccessRequest> = actions
        .iter()
        .map(|a| AccessRequest {
            caller: Some(CallerInfo {
                account_id: "111122223333".into(),
                arn: "arn:aws:iam::111122223333:user/Alice".into(),
                principal_id: "AIDAEXAMPLEUSERID".into(),
                principal_type: "IAMUser".into(),
                user_name: "Alice".into(),
                role_arn: String::new(),
            }),
            origin: Origin {
                source_ip: "10.0.1.25".into(),
                vpce_id: "vpce-1234abcdf5678c90a".into(),
                vpc_id: "vpc-12345678".into(),
                region: "us-east-1".into(),
                secure_transport: true,
                time_ms: 0,
            },
            action: (*a).into(),
            resource_arn: KEY_ARN.into(),
            resource_account: "111122223333".into(),
            key_policy: KEY_POLICY.into(),
            identity_policies: vec![IAM_POLICY.into()],
            endpoint_policy: ENDPOINT_POLICY.into(),
            condition_keys: vec![
                ("kms:EncryptionContext:app".into(), vec!["billing".into()]),
                (
                    "kms:EncryptionContextKeys".into(),
                    vec!["app".into(), "env".into()],
                ),
            ],
        })
        .collect();
    measure("rpc logic (Authorizer::decide, policies by text)", |i| {
        authorizer
            .decide(&requests[(i % 4) as usize], now)
            .expect("decision")
            .allowed
    });
}
