//! AWS's decision logic for KMS: key policy, identity policies, endpoint policy, and messages.

use super::{A, B, KEY_A, Q};
use crate::policy::{Context, DenyReason, EvalDecision, PolicyType, Principal, deny_message};

fn allow_account(account: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#
    )
}

fn allow_principal(arn: &str, action: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{arn}"}},"Action":"{action}","Resource":"*"}}]}}"#
    )
}

fn identity(effect: &str, action: &str, resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"{effect}","Action":"{action}","Resource":"{resource}"}}]}}"#
    )
}

#[test]
fn same_account_key_policy_naming_the_caller_needs_no_iam() {
    let alice = Principal::user(A, "Alice");
    let key = allow_principal(&alice.arn, "kms:Encrypt");
    let d = Q::new(&alice, "kms:Encrypt").key(&key).run();
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.eval, EvalDecision::Allowed);
    assert!(d.message.is_empty());
    let d = Q::new(&alice, "kms:Decrypt").key(&key).run();
    assert_eq!(
        d.message,
        format!(
            "User: {} is not authorized to perform: kms:Decrypt on resource: {KEY_A} because no resource-based policy allows the kms:Decrypt action",
            alice.arn
        )
    );
    assert_eq!(d.eval, EvalDecision::ImplicitDeny);
}

#[test]
fn account_principal_delegates_to_iam() {
    let alice = Principal::user(A, "Alice");
    let key = allow_account(A);
    let d = Q::new(&alice, "kms:Encrypt").key(&key).run();
    assert!(!d.allowed);
    assert_eq!(
        d.deny_reason,
        Some(DenyReason::NoAllow(PolicyType::IdentityBased))
    );
    assert!(
        d.message
            .ends_with("because no identity-based policy allows the kms:Encrypt action"),
        "{}",
        d.message
    );
    let iam = identity("Allow", "kms:Encrypt", KEY_A);
    assert!(
        Q::new(&alice, "kms:Encrypt")
            .key(&key)
            .iam(&iam)
            .run()
            .allowed
    );
    // The identity policy for another key does not help.
    let other = identity(
        "Allow",
        "kms:Encrypt",
        "arn:aws:kms:us-east-1:111122223333:key/other",
    );
    assert!(
        !Q::new(&alice, "kms:Encrypt")
            .key(&key)
            .iam(&other)
            .run()
            .allowed
    );
    // The 12-digit form is the same principal as the root ARN.
    let key12 = allow_principal(A, "kms:*");
    assert!(
        Q::new(&alice, "kms:Encrypt")
            .key(&key12)
            .iam(&iam)
            .run()
            .allowed
    );
    assert!(!Q::new(&alice, "kms:Encrypt").key(&key12).run().allowed);
}

#[test]
fn root_needs_the_key_policy_but_no_identity_policy() {
    let root = Principal::root(A);
    assert!(
        Q::new(&root, "kms:Encrypt")
            .key(&allow_account(A))
            .run()
            .allowed
    );
    // A key policy that does not mention the account: even root is refused.
    let alice_only = allow_principal("arn:aws:iam::111122223333:user/Alice", "kms:*");
    let d = Q::new(&root, "kms:PutKeyPolicy").key(&alice_only).run();
    assert_eq!(
        d.deny_reason,
        Some(DenyReason::NoAllow(PolicyType::ResourceBased))
    );
    // An identity policy cannot stand in for the key policy.
    let alice = Principal::user(A, "Alice");
    let bob_key = allow_principal("arn:aws:iam::111122223333:user/Bob", "kms:*");
    let iam = identity("Allow", "kms:*", "*");
    let d = Q::new(&alice, "kms:Encrypt").key(&bob_key).iam(&iam).run();
    assert_eq!(
        d.deny_reason,
        Some(DenyReason::NoAllow(PolicyType::ResourceBased))
    );
}

#[test]
fn cross_account_needs_both_sides() {
    let bob = Principal::user(B, "Bob");
    let iam = identity("Allow", "kms:Decrypt", KEY_A);
    let key_names_account = allow_account(B);
    let key_names_bob = allow_principal(&bob.arn, "kms:Decrypt");
    let cross = |key: &str, iam: Option<&str>| {
        let mut q = Q::new(&bob, "kms:Decrypt").key(key);
        if let Some(i) = iam {
            q = q.iam(i);
        }
        q.run()
    };
    assert!(cross(&key_names_account, Some(&iam)).allowed);
    assert!(cross(&key_names_bob, Some(&iam)).allowed);
    for key in [&key_names_account, &key_names_bob] {
        let d = cross(key, None);
        assert_eq!(
            d.deny_reason,
            Some(DenyReason::NoAllow(PolicyType::IdentityBased)),
            "the caller's own account must allow too"
        );
    }
    let d = cross(&allow_account(A), Some(&iam));
    assert_eq!(
        d.deny_reason,
        Some(DenyReason::NoAllow(PolicyType::ResourceBased))
    );
    // The other account's root needs no identity policy, but still needs the key policy.
    let root_b = Principal::root(B);
    assert!(
        Q::new(&root_b, "kms:Decrypt")
            .key(&key_names_account)
            .run()
            .allowed
    );
    assert!(
        !Q::new(&root_b, "kms:Decrypt")
            .key(&allow_account(A))
            .run()
            .allowed
    );
    // A public key policy still needs the external caller's identity side.
    let public = allow_principal("*", "kms:Decrypt");
    assert!(!cross(&public, None).allowed);
    assert!(cross(&public, Some(&iam)).allowed);
}

#[test]
fn explicit_deny_wins_everywhere() {
    let alice = Principal::user(A, "Alice");
    let key = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Principal":{{"AWS":"{A}"}},"Action":"kms:*","Resource":"*"}},
            {{"Sid":"NoDecrypt","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*"}}]}}"#
    );
    let iam_all = identity("Allow", "kms:*", "*");
    let d = Q::new(&alice, "kms:Decrypt").key(&key).iam(&iam_all).run();
    assert_eq!(d.eval, EvalDecision::ExplicitDeny);
    assert_eq!(
        d.message,
        format!(
            "User: {} is not authorized to perform: kms:Decrypt on resource: {KEY_A} with an explicit deny in a resource-based policy",
            alice.arn
        )
    );
    let iam_deny = identity("Deny", "kms:Encrypt", "*");
    let d = Q::new(&alice, "kms:Encrypt")
        .key(&key)
        .iam(&iam_all)
        .iam(&iam_deny)
        .run();
    assert_eq!(
        d.message,
        format!(
            "User: {} is not authorized to perform: kms:Encrypt on resource: {KEY_A} with an explicit deny in an identity-based policy",
            alice.arn
        )
    );
    assert!(!d.denied_by_endpoint_policy);
    assert!(
        Q::new(&alice, "kms:Encrypt")
            .key(&key)
            .iam(&iam_all)
            .run()
            .allowed
    );
}

#[test]
fn operations_without_a_key_use_identity_policies_only() {
    let alice = Principal::user(A, "Alice");
    let root = Principal::root(A);
    for op in [
        "kms:CreateKey",
        "kms:ListKeys",
        "kms:ListAliases",
        "kms:GenerateRandom",
        "kms:ListRetirableGrants",
    ] {
        assert!(Q::new(&root, op).no_resource().run().allowed, "{op} root");
        let d = Q::new(&alice, op).no_resource().run();
        assert_eq!(
            d.message,
            format!(
                "User: {} is not authorized to perform: {op} on resource: * because no identity-based policy allows the {op} action",
                alice.arn
            )
        );
        let iam = identity("Allow", op, "*");
        assert!(Q::new(&alice, op).no_resource().iam(&iam).run().allowed);
    }
    // Resource-less operations are on `*`: a key-ARN pattern does not grant them.
    let narrow = identity("Allow", "kms:*", "arn:aws:kms:*:111122223333:key/*");
    assert!(
        !Q::new(&alice, "kms:CreateKey")
            .no_resource()
            .iam(&narrow)
            .run()
            .allowed
    );
    let d = Q::new(&alice, "kms:CreateKey")
        .no_resource()
        .iam(&identity("Allow", "kms:*", "*"))
        .iam(&identity("Deny", "kms:Create*", "*"))
        .run();
    assert_eq!(d.eval, EvalDecision::ExplicitDeny);
}

#[test]
fn sessions_match_their_role() {
    let s = Principal::session(A, "Reader", "app-1");
    let by_role = allow_principal("arn:aws:iam::111122223333:role/Reader", "kms:Decrypt");
    let by_session = allow_principal(&s.arn, "kms:Decrypt");
    let other_role = allow_principal("arn:aws:iam::111122223333:role/Writer", "kms:Decrypt");
    assert!(Q::new(&s, "kms:Decrypt").key(&by_role).run().allowed);
    assert!(Q::new(&s, "kms:Decrypt").key(&by_session).run().allowed);
    assert!(!Q::new(&s, "kms:Decrypt").key(&other_role).run().allowed);
    let d = Q::new(&s, "kms:Encrypt").key(&by_role).run();
    assert!(d.message.starts_with(
        "User: arn:aws:sts::111122223333:assumed-role/Reader/app-1 is not authorized"
    ));
}

#[test]
fn not_principal_not_action_not_resource() {
    let alice = Principal::user(A, "Alice");
    let bob = Principal::user(A, "Bob");
    let key = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Principal":"*","NotAction":["kms:Decrypt","kms:Schedule*"],"Resource":"*"}},
            {{"Effect":"Deny","NotPrincipal":{{"AWS":"{}"}},"Action":"kms:Encrypt","Resource":"*"}},
            {{"Effect":"Deny","Principal":"*","Action":"kms:DescribeKey","NotResource":"{KEY_A}"}}]}}"#,
        alice.arn
    );
    assert!(Q::new(&alice, "kms:Encrypt").key(&key).run().allowed);
    let d = Q::new(&bob, "kms:Encrypt").key(&key).run();
    assert_eq!(
        d.eval,
        EvalDecision::ExplicitDeny,
        "NotPrincipal deny hits Bob"
    );
    assert!(!Q::new(&alice, "kms:Decrypt").key(&key).run().allowed);
    assert!(
        !Q::new(&alice, "kms:ScheduleKeyDeletion")
            .key(&key)
            .run()
            .allowed
    );
    assert!(Q::new(&alice, "kms:DescribeKey").key(&key).run().allowed);
    let other = "arn:aws:kms:us-east-1:111122223333:key/other";
    let d = Q::new(&alice, "kms:DescribeKey")
        .key(&key)
        .resource(other)
        .run();
    assert_eq!(d.eval, EvalDecision::ExplicitDeny, "NotResource deny");
}

#[test]
fn action_case_insensitive_resource_case_sensitive() {
    let alice = Principal::user(A, "Alice");
    let key = allow_principal(&alice.arn, "KMS:ENCRYPT");
    assert!(Q::new(&alice, "kms:Encrypt").key(&key).run().allowed);
    assert!(Q::new(&alice, "kms:encrypt").key(&key).run().allowed);
    let upper = identity("Allow", "kms:Encrypt", &KEY_A.replace("key/", "KEY/"));
    let d = Q::new(&alice, "kms:Encrypt")
        .key(&allow_account(A))
        .iam(&upper)
        .run();
    assert!(!d.allowed);
    let wild = identity("Allow", "kms:Enc?ypt", "arn:aws:kms:*:111122223333:key/*");
    assert!(
        Q::new(&alice, "kms:Encrypt")
            .key(&allow_account(A))
            .iam(&wild)
            .run()
            .allowed
    );
}

#[test]
fn resource_variables() {
    let alice = Principal::user(A, "Alice");
    let mut ctx = Context::new();
    ctx.insert("aws:username", "Alice");
    let iam = identity(
        "Allow",
        "kms:CreateAlias",
        "arn:aws:kms:us-east-1:111122223333:alias/${aws:username}-*",
    );
    let mine = "arn:aws:kms:us-east-1:111122223333:alias/Alice-app";
    let theirs = "arn:aws:kms:us-east-1:111122223333:alias/Bob-app";
    let q = |r: &str| {
        Q::new(&alice, "kms:CreateAlias")
            .resource(r)
            .no_key()
            .iam(&iam)
            .context(ctx.clone())
            .run()
    };
    assert!(q(mine).allowed);
    assert!(!q(theirs).allowed);
    // Without the variable's key the statement matches nothing.
    let d = Q::new(&alice, "kms:CreateAlias")
        .resource(mine)
        .no_key()
        .iam(&iam)
        .run();
    assert!(!d.allowed);
}

#[test]
fn endpoint_policy_is_one_more_gate() {
    let alice = Principal::user(A, "Alice");
    let key = allow_principal(&alice.arn, "kms:*");
    let ep_decrypt_only = allow_principal(&alice.arn, "kms:Decrypt");
    let d = Q::new(&alice, "kms:Decrypt")
        .key(&key)
        .endpoint(&ep_decrypt_only)
        .run();
    assert!(d.allowed);
    let d = Q::new(&alice, "kms:Encrypt")
        .key(&key)
        .endpoint(&ep_decrypt_only)
        .run();
    assert!(d.denied_by_endpoint_policy);
    assert_eq!(
        d.message,
        format!(
            "User: {} is not authorized to perform: kms:Encrypt on resource: {KEY_A} because no VPC endpoint policy allows the kms:Encrypt action",
            alice.arn
        )
    );
    let ep_deny = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"},
            {"Effect":"Deny","Principal":"*","Action":"kms:Encrypt","Resource":"*"}]}"#;
    let d = Q::new(&alice, "kms:Encrypt")
        .key(&key)
        .endpoint(ep_deny)
        .run();
    assert!(d.denied_by_endpoint_policy);
    assert_eq!(d.eval, EvalDecision::ExplicitDeny);
    assert!(
        d.message
            .ends_with("with an explicit deny in a VPC endpoint policy")
    );
    // Denied by the key policy as well: not "only the endpoint policy".
    let nothing = allow_principal(&alice.arn, "kms:Decrypt");
    let d = Q::new(&alice, "kms:Encrypt")
        .key(&nothing)
        .endpoint(ep_deny)
        .run();
    assert!(!d.denied_by_endpoint_policy);
    let d = Q::new(&alice, "kms:Encrypt")
        .key(&nothing)
        .endpoint(&ep_decrypt_only)
        .run();
    assert!(!d.denied_by_endpoint_policy);
    assert_eq!(
        d.deny_reason,
        Some(DenyReason::NoAllow(PolicyType::ResourceBased))
    );
    // Endpoint policy principals by account match every principal of the account.
    let ep_account = allow_principal(A, "kms:*");
    assert!(
        Q::new(&alice, "kms:Encrypt")
            .key(&key)
            .endpoint(&ep_account)
            .run()
            .allowed
    );
}

#[test]
fn deny_messages_use_aws_wording() {
    let arn = "arn:aws:iam::111122223333:user/Alice";
    let cases = [
        (
            DenyReason::NoAllow(PolicyType::ResourceBased),
            "because no resource-based policy allows the kms:Sign action",
        ),
        (
            DenyReason::NoAllow(PolicyType::IdentityBased),
            "because no identity-based policy allows the kms:Sign action",
        ),
        (
            DenyReason::NoAllow(PolicyType::VpcEndpoint),
            "because no VPC endpoint policy allows the kms:Sign action",
        ),
        (
            DenyReason::ExplicitDeny(PolicyType::ResourceBased),
            "with an explicit deny in a resource-based policy",
        ),
        (
            DenyReason::ExplicitDeny(PolicyType::IdentityBased),
            "with an explicit deny in an identity-based policy",
        ),
        (
            DenyReason::ExplicitDeny(PolicyType::VpcEndpoint),
            "with an explicit deny in a VPC endpoint policy",
        ),
    ];
    for (why, tail) in cases {
        assert_eq!(
            deny_message(arn, "kms:Sign", KEY_A, why),
            format!(
                "User: {arn} is not authorized to perform: kms:Sign on resource: {KEY_A} {tail}"
            )
        );
    }
}

#[test]
fn conditions_in_decisions_see_multi_valued_keys() {
    let alice = Principal::user(A, "Alice");
    let key = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"kms:Decrypt","Resource":"*",
            "Condition":{{"ForAllValues:StringEquals":{{"kms:EncryptionContextKeys":["app","env"]}},
                          "StringEquals":{{"kms:EncryptionContext:app":"billing"}}}}}}]}}"#,
        alice.arn
    );
    let with = |keys: &[&str], app: Option<&str>| {
        let mut c = Context::new();
        c.insert_multi("kms:EncryptionContextKeys", keys.iter().copied());
        if let Some(a) = app {
            c.insert("kms:EncryptionContext:app", a);
        }
        Q::new(&alice, "kms:Decrypt")
            .key(&key)
            .context(c)
            .run()
            .allowed
    };
    assert!(with(&["app"], Some("billing")));
    assert!(with(&["app", "env"], Some("billing")));
    assert!(!with(&["app", "owner"], Some("billing")));
    assert!(!with(&["app"], Some("Billing")));
    assert!(!with(&[], None));
}

#[test]
fn lockout_safety_check_and_cross_account_actions() {
    use crate::policy::{
        LOCKOUT_MESSAGE, Policy, PolicyKind, Request, lockout_safety_check, works_across_accounts,
    };
    let alice = Principal::user(A, "Alice");
    let ctx = Context::new();
    let req = Request {
        principal: &alice,
        action: "kms:CreateKey",
        resource: KEY_A,
        resource_account: Some(A),
        context: &ctx,
    };
    let iam = Policy::parse_as(&identity("Allow", "kms:*", "*"), PolicyKind::Identity).unwrap();
    let safe = Policy::parse_as(&allow_account(A), PolicyKind::KeyPolicy).unwrap();
    assert!(lockout_safety_check(&safe, &req, &[&iam]).is_ok());
    let e = lockout_safety_check(&safe, &req, &[]).unwrap_err();
    assert_eq!(e.message, LOCKOUT_MESSAGE);
    assert_eq!(e.aws_code(), "MalformedPolicyDocumentException");
    let encrypt_only = Policy::parse_as(
        &allow_principal(&alice.arn, "kms:Encrypt"),
        PolicyKind::KeyPolicy,
    )
    .unwrap();
    assert!(lockout_safety_check(&encrypt_only, &req, &[&iam]).is_err());
    let root = Principal::root(A);
    let root_req = Request {
        principal: &root,
        ..req
    };
    assert!(lockout_safety_check(&safe, &root_req, &[]).is_ok());

    assert!(works_across_accounts("kms:Decrypt"));
    assert!(works_across_accounts("KMS:generatedatakeypair"));
    assert!(!works_across_accounts("kms:DisableKey"));
    assert!(!works_across_accounts("kms:PutKeyPolicy"));
    assert!(!works_across_accounts("kms:ScheduleKeyDeletion"));
}
