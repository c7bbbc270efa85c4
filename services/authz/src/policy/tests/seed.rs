//! Every example policy of the seed document ("Connecting to AWS KMS through a VPC endpoint"),
//! copied verbatim, behaving as the document says.

use super::{A, B, Q};
use crate::policy::{Context, DenyReason, EvalDecision, Policy, PolicyKind, PolicyType, Principal};

const KEY: &str = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const OTHER_KEY: &str =
    "arn:aws:kms:us-west-2:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321";
const VPCE: &str = "vpce-1234abcdf5678c90a";

const DEFAULT_ENDPOINT_POLICY: &str = r#"{
  "Statement": [
    {
      "Action": "*", 
      "Effect": "Allow", 
      "Principal": "*", 
      "Resource": "*"
    }
  ]
}"#;

const EXAMPLE_USER_ENDPOINT_POLICY: &str = r#"{
   "Statement":[
      {
         "Sid": "Allow decrypt and view permission",
         "Principal": {"AWS": "arn:aws:iam::111122223333:user/ExampleUser"},
         "Effect":"Allow",
         "Action": [ 
             "kms:Decrypt",
             "kms:DescribeKey",  
             "kms:ListAliases", 
             "kms:ListKeys"
          ],
         "Resource": "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
      }
   ]
}"#;

const PRINCIPAL_ACCOUNT_ENDPOINT_POLICY: &str = r#"{
  "Statement": [
    {
      "Sid": "Access for a specific account",
      "Principal": {"AWS": "*"},
      "Action": "kms:*",
      "Effect": "Deny",
      "Resource": "arn:aws:kms:*:111122223333:key/*",
      "Condition": {
        "StringNotEquals": {
          "aws:PrincipalAccount": "111122223333"
        }
      }
    }
  ]
}"#;

/// example-key-1 exactly as the seed prints it (the source page lost `*` characters).
const EXAMPLE_KEY_1_LITERAL: &str = r#"{
    "Id": "example-key-1",
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Enable IAM user permissions",
            "Effect": "Allow",
            "Principal": {"AWS":["111122223333"]},
            "Action": ["kms:"],
            "Resource": ""
        },
        {
            "Sid": "Restrict usage to my VPC endpoint",
            "Effect": "Deny",
            "Principal": "",
            "Action": [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncrypt",
                "kms:GenerateDataKey"
            ],
            "Resource": "",
            "Condition": {
                "StringNotEquals": {
                    "aws:sourceVpce": "vpce-1234abcdf5678c90a"
                }
            }
        }
]

}"#;

/// example-key-2 exactly as the seed prints it: with a trailing comma, which is invalid JSON.
const EXAMPLE_KEY_2_LITERAL: &str = r#"{
    "Id": "example-key-2",
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Allow administrative actions from vpc-12345678",
            "Effect": "Allow",
            "Principal": {"AWS": "111122223333"},
            "Action": [
                "kms:Create*","kms:Enable*","kms:Put*","kms:Update*",
                "kms:Revoke*","kms:Disable*","kms:Delete*",
                "kms:TagResource", "kms:UntagResource"
            ],
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "aws:sourceVpc": "vpc-12345678"
                }
            }
        },
        {
            "Sid": "Allow key usage from vpc-2b2b2b2b",
            "Effect": "Allow",
            "Principal": {"AWS": "111122223333"},
            "Action": [
                "kms:Encrypt","kms:Decrypt","kms:GenerateDataKey*"
            ],
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "aws:sourceVpc": "vpc-2b2b2b2b"
                }
            }
        },
        {
            "Sid": "Allow read actions from everywhere",
            "Effect": "Allow",
            "Principal": {"AWS": "111122223333"},
            "Action": [
                "kms:Describe*","kms:List*","kms:Get*"
            ],
            "Resource": "*",
        }
    ]
}"#;

/// The intended example-key-1: `kms:*` and `*` where the page lost the star.
fn example_key_1() -> String {
    EXAMPLE_KEY_1_LITERAL
        .replace(r#"["kms:"]"#, r#"["kms:*"]"#)
        .replace(r#""Resource": """#, r#""Resource": "*""#)
        .replace(r#""Principal": """#, r#""Principal": "*""#)
}

/// example-key-2 without the trailing comma.
fn example_key_2() -> String {
    let fixed = EXAMPLE_KEY_2_LITERAL.replace(
        "\"Resource\": \"*\",\n        }",
        "\"Resource\": \"*\"\n        }",
    );
    assert_ne!(fixed, EXAMPLE_KEY_2_LITERAL);
    fixed
}

fn key_policy_for_everyone_in_a() -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":["{A}","{B}"]}},"Action":"kms:*","Resource":"*"}}]}}"#
    )
}

fn through(vpce: &str, vpc: &str) -> Context {
    let mut c = Context::new();
    c.insert("aws:SourceVpce", vpce);
    c.insert("aws:SourceVpc", vpc);
    c.insert("aws:VpcSourceIp", "10.0.1.25");
    c.insert("aws:PrincipalAccount", "111122223333");
    c
}

fn public() -> Context {
    let mut c = Context::new();
    c.insert("aws:SourceIp", "203.0.113.10");
    c.insert("aws:PrincipalAccount", "111122223333");
    c
}

#[test]
fn every_seed_policy_parses_as_its_kind() {
    for p in [
        DEFAULT_ENDPOINT_POLICY,
        EXAMPLE_USER_ENDPOINT_POLICY,
        PRINCIPAL_ACCOUNT_ENDPOINT_POLICY,
    ] {
        Policy::parse_as(p, PolicyKind::EndpointPolicy).unwrap();
    }
    Policy::parse_as(&example_key_1(), PolicyKind::KeyPolicy).unwrap();
    Policy::parse_as(&example_key_2(), PolicyKind::KeyPolicy).unwrap();
}

#[test]
fn default_endpoint_policy_allows_what_the_key_policy_allows() {
    let root = Principal::root(A);
    let alice = Principal::user(A, "Alice");
    let key = key_policy_for_everyone_in_a();
    for action in ["kms:Encrypt", "kms:DisableKey", "kms:ScheduleKeyDeletion"] {
        let d = Q::new(&root, action)
            .resource(KEY)
            .key(&key)
            .endpoint(DEFAULT_ENDPOINT_POLICY)
            .context(through(VPCE, "vpc-12345678"))
            .run();
        assert!(d.allowed, "{action}: {d:?}");
    }
    assert!(
        Q::new(&root, "kms:CreateKey")
            .no_resource()
            .endpoint(DEFAULT_ENDPOINT_POLICY)
            .run()
            .allowed
    );
    // The endpoint policy grants nothing by itself: Alice has no IAM permission.
    let d = Q::new(&alice, "kms:Encrypt")
        .resource(KEY)
        .key(&key)
        .endpoint(DEFAULT_ENDPOINT_POLICY)
        .run();
    assert_eq!(
        d.deny_reason,
        Some(DenyReason::NoAllow(PolicyType::IdentityBased))
    );
    assert!(!d.denied_by_endpoint_policy);
}

#[test]
fn example_user_endpoint_policy() {
    let example_user = Principal::user(A, "ExampleUser");
    let other_user = Principal::user(A, "Other");
    let iam = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}"#;
    let key = key_policy_for_everyone_in_a();
    let q = |who: &Principal, action: &str, resource: &str| {
        Q::new(who, action)
            .resource(resource)
            .key(&key)
            .iam(iam)
            .endpoint(EXAMPLE_USER_ENDPOINT_POLICY)
            .context(through(VPCE, "vpc-12345678"))
            .run()
    };
    assert!(q(&example_user, "kms:Decrypt", KEY).allowed);
    assert!(q(&example_user, "kms:DescribeKey", KEY).allowed);
    for (who, action, resource) in [
        (&example_user, "kms:Encrypt", KEY),
        (&example_user, "kms:Decrypt", OTHER_KEY),
        (&other_user, "kms:Decrypt", KEY),
    ] {
        let d = q(who, action, resource);
        assert!(!d.allowed, "{who:?} {action} {resource}");
        assert!(
            d.denied_by_endpoint_policy,
            "only the endpoint policy denies"
        );
        assert_eq!(
            d.message,
            format!(
                "User: {} is not authorized to perform: {action} on resource: {resource} because no VPC endpoint policy allows the {action} action",
                who.arn
            )
        );
    }
    // ListKeys / ListAliases have no resource (AWS evaluates them on `*`), so a statement
    // limited to the key ARN does not cover them: AWS's resource-level rule, kept as is.
    let d = Q::new(&example_user, "kms:ListKeys")
        .no_resource()
        .iam(iam)
        .endpoint(EXAMPLE_USER_ENDPOINT_POLICY)
        .run();
    assert!(d.denied_by_endpoint_policy);
    // The endpoint policy does not grant: without IAM permission ExampleUser is refused.
    let d = Q::new(&example_user, "kms:Decrypt")
        .resource(KEY)
        .key(&key)
        .endpoint(EXAMPLE_USER_ENDPOINT_POLICY)
        .run();
    assert_eq!(
        d.deny_reason,
        Some(DenyReason::NoAllow(PolicyType::IdentityBased))
    );
    assert!(!d.denied_by_endpoint_policy);
}

#[test]
fn principal_account_endpoint_policy_denies_external_principals() {
    // As a whole endpoint policy, usually next to the default Allow statement.
    let with_default = format!(
        r#"{{"Statement":[{{"Action":"*","Effect":"Allow","Principal":"*","Resource":"*"}},{}]}}"#,
        &PRINCIPAL_ACCOUNT_ENDPOINT_POLICY[PRINCIPAL_ACCOUNT_ENDPOINT_POLICY.find("    {").unwrap()
            ..PRINCIPAL_ACCOUNT_ENDPOINT_POLICY.rfind("]").unwrap()]
    );
    let key = key_policy_for_everyone_in_a();
    let local = Principal::root(A);
    let external = Principal::root(B);
    let ctx_for = |account: &str| {
        let mut c = through(VPCE, "vpc-12345678");
        c.insert("aws:PrincipalAccount", account);
        c
    };
    let d = Q::new(&local, "kms:Decrypt")
        .resource(KEY)
        .key(&key)
        .endpoint(&with_default)
        .context(ctx_for(A))
        .run();
    assert!(d.allowed, "{d:?}");
    let d = Q::new(&external, "kms:Decrypt")
        .resource(KEY)
        .key(&key)
        .endpoint(&with_default)
        .context(ctx_for(B))
        .run();
    assert_eq!(d.eval, EvalDecision::ExplicitDeny);
    assert!(
        d.denied_by_endpoint_policy,
        "the key policy allows account B"
    );
    assert!(
        d.message
            .ends_with("with an explicit deny in a VPC endpoint policy")
    );
    // Keys of other accounts are not covered by the statement's Resource.
    let b_key = "arn:aws:kms:us-west-2:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let d = Q::new(&external, "kms:Decrypt")
        .resource(b_key)
        .key(&key)
        .endpoint(&with_default)
        .context(ctx_for(B))
        .run();
    assert!(d.allowed, "{d:?}");
    // The literal document alone holds only a Deny: for the local account nothing allows.
    let d = Q::new(&local, "kms:Decrypt")
        .resource(KEY)
        .key(&key)
        .endpoint(PRINCIPAL_ACCOUNT_ENDPOINT_POLICY)
        .context(ctx_for(A))
        .run();
    assert_eq!(
        d.deny_reason,
        Some(DenyReason::NoAllow(PolicyType::VpcEndpoint))
    );
    let d = Q::new(&external, "kms:Decrypt")
        .resource(KEY)
        .key(&key)
        .endpoint(PRINCIPAL_ACCOUNT_ENDPOINT_POLICY)
        .context(ctx_for(B))
        .run();
    assert_eq!(d.eval, EvalDecision::ExplicitDeny);
}

#[test]
fn example_key_1_restricts_usage_to_the_vpc_endpoint() {
    let key = example_key_1();
    let root = Principal::root(A);
    let alice = Principal::user(A, "Alice");
    let iam = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}"#;
    let q = |who: &Principal, action: &str, ctx: Context| {
        Q::new(who, action)
            .resource(KEY)
            .key(&key)
            .iam(iam)
            .context(ctx)
            .run()
    };
    for action in [
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncrypt",
        "kms:GenerateDataKey",
    ] {
        assert!(q(&root, action, through(VPCE, "vpc-1")).allowed, "{action}");
        assert!(
            q(&alice, action, through(VPCE, "vpc-1")).allowed,
            "{action}"
        );
        let d = q(&alice, action, through("vpce-0000000000000000f", "vpc-1"));
        assert_eq!(
            d.eval,
            EvalDecision::ExplicitDeny,
            "{action} other endpoint"
        );
        assert_eq!(
            d.message,
            format!(
                "User: {} is not authorized to perform: {action} on resource: {KEY} with an explicit deny in a resource-based policy",
                alice.arn
            )
        );
        // Not through any endpoint: aws:SourceVpce is missing, so StringNotEquals holds.
        let d = q(&root, action, public());
        assert_eq!(d.eval, EvalDecision::ExplicitDeny, "{action} public");
    }
    // Condition-key names are case-insensitive: aws:sourceVpce in the policy, aws:SourceVpce
    // in the request (checked above). Operations not listed are not restricted.
    assert!(q(&alice, "kms:DescribeKey", public()).allowed);
    // The list names kms:ReEncrypt and kms:GenerateDataKey literally: no wildcard, so
    // ReEncryptFrom and GenerateDataKeyWithoutPlaintext are not restricted (as in AWS).
    assert!(q(&alice, "kms:ReEncryptFrom", public()).allowed);
    assert!(q(&alice, "kms:GenerateDataKeyWithoutPlaintext", public()).allowed);
    // The first statement delegates to IAM: Alice needs her identity policy.
    let d = Q::new(&alice, "kms:Encrypt")
        .resource(KEY)
        .key(&key)
        .context(through(VPCE, "vpc-1"))
        .run();
    assert_eq!(
        d.deny_reason,
        Some(DenyReason::NoAllow(PolicyType::IdentityBased))
    );
}

#[test]
fn example_key_1_literal_form_denies() {
    // As printed, the Deny statement's `"Principal": ""` is not a principal: refused.
    let e = Policy::parse_as(EXAMPLE_KEY_1_LITERAL, PolicyKind::KeyPolicy).unwrap_err();
    assert_eq!(e.aws_code(), "MalformedPolicyDocumentException");
    assert!(e.message.contains("invalid principals"), "{e}");
    // Its Allow statement alone (`"kms:"` on `""`) allows nothing: not even root may use the key.
    let allow_only = EXAMPLE_KEY_1_LITERAL[..EXAMPLE_KEY_1_LITERAL
        .find(",\n        {\n            \"Sid\": \"Restrict")
        .unwrap()]
        .to_owned()
        + "]}";
    let root = Principal::root(A);
    for action in ["kms:Encrypt", "kms:DescribeKey", "kms:PutKeyPolicy"] {
        let d = Q::new(&root, action)
            .resource(KEY)
            .key(&allow_only)
            .context(through(VPCE, "vpc-1"))
            .run();
        assert_eq!(
            d.deny_reason,
            Some(DenyReason::NoAllow(PolicyType::ResourceBased)),
            "{action}"
        );
    }
}

#[test]
fn example_key_2_trailing_comma_is_refused() {
    let e = Policy::parse(EXAMPLE_KEY_2_LITERAL).unwrap_err();
    assert_eq!(e.aws_code(), "MalformedPolicyDocumentException");
    assert!(e.message.contains("invalid Json"), "{e}");
    assert!(e.message.contains("trailing comma"), "{e}");
}

#[test]
fn example_key_2_separates_admin_and_usage_vpcs() {
    let key = example_key_2();
    let root = Principal::root(A);
    let q = |action: &str, ctx: Context| {
        Q::new(&root, action)
            .resource(KEY)
            .key(&key)
            .context(ctx)
            .run()
    };
    let admin = || through("vpce-aaaaaaaaaaaaaaaaa", "vpc-12345678");
    let usage = || through("vpce-bbbbbbbbbbbbbbbbb", "vpc-2b2b2b2b");
    for action in [
        "kms:CreateGrant",
        "kms:EnableKeyRotation",
        "kms:PutKeyPolicy",
        "kms:UpdateKeyDescription",
        "kms:RevokeGrant",
        "kms:DisableKey",
        "kms:DeleteAlias",
        "kms:TagResource",
        "kms:UntagResource",
    ] {
        assert!(q(action, admin()).allowed, "{action} from the admin VPC");
        let d = q(action, usage());
        assert_eq!(
            d.deny_reason,
            Some(DenyReason::NoAllow(PolicyType::ResourceBased)),
            "{action} from the usage VPC"
        );
        assert!(
            !q(action, public()).allowed,
            "{action} from outside any VPC"
        );
    }
    for action in [
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyPair",
        "kms:GenerateDataKeyWithoutPlaintext",
    ] {
        assert!(q(action, usage()).allowed, "{action} from the usage VPC");
        assert!(!q(action, admin()).allowed, "{action} from the admin VPC");
        assert!(
            !q(action, public()).allowed,
            "{action} from outside any VPC"
        );
    }
    for action in [
        "kms:DescribeKey",
        "kms:ListGrants",
        "kms:ListKeyPolicies",
        "kms:GetKeyPolicy",
        "kms:GetKeyRotationStatus",
    ] {
        for ctx in [admin(), usage(), public()] {
            assert!(q(action, ctx).allowed, "{action} from everywhere");
        }
    }
    // Operations no statement mentions are refused everywhere.
    assert!(!q("kms:ScheduleKeyDeletion", admin()).allowed);
    assert!(!q("kms:Sign", usage()).allowed);
}
