//! The document grammar: what parses, and what is refused with which message.

use crate::policy::document::{Actions, Principals, Resources};
use crate::policy::{
    Effect, KEY_POLICY_MAX_BYTES, Policy, PolicyKind, PrincipalId, Version, check_key_policy_size,
};

fn stmt(body: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{body}]}}"#)
}

const OK_BODY: &str = r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}"#;

#[test]
fn statement_as_object_or_array_and_versions() {
    let one = Policy::parse(
        r#"{"Id":"p","Statement":{"Sid":"s","Effect":"Deny","Action":["kms:Encrypt","kms:Decrypt"],"NotResource":"arn:aws:kms:*:111122223333:key/*"}}"#,
    )
    .unwrap();
    assert_eq!(
        one.version,
        Version::V2008_10_17,
        "no Version means 2008-10-17"
    );
    assert_eq!(one.id.as_deref(), Some("p"));
    assert_eq!(one.statements.len(), 1);
    let s = &one.statements[0];
    assert_eq!(s.sid.as_deref(), Some("s"));
    assert_eq!(s.effect, Effect::Deny);
    assert!(s.principals.is_none());
    assert!(matches!(&s.actions, Actions::Only(l) if l.0.len() == 2));
    assert!(matches!(&s.resources, Resources::AllBut(l) if l.0.len() == 1));

    let two = Policy::parse(&stmt(&format!("{OK_BODY},{OK_BODY}"))).unwrap();
    assert_eq!(two.version, Version::V2012_10_17);
    assert_eq!(two.statements.len(), 2);
    let old = Policy::parse(&format!(
        r#"{{"Version":"2008-10-17","Statement":{OK_BODY}}}"#
    ))
    .unwrap();
    assert_eq!(old.version, Version::V2008_10_17);
}

#[test]
fn principals_are_parsed() {
    let p = Policy::parse(&stmt(
        r#"{"Effect":"Allow","Principal":{"AWS":["111122223333","arn:aws:iam::444455556666:root","arn:aws:iam::111122223333:user/Alice","arn:aws:sts::111122223333:assumed-role/R/s","*"],"Service":"cloudtrail.amazonaws.com"},"Action":"kms:*","Resource":"*"}"#,
    ))
    .unwrap();
    let Some(Principals::Only(ids)) = &p.statements[0].principals else {
        panic!("principal expected")
    };
    assert_eq!(
        ids,
        &[
            PrincipalId::Account("111122223333".into()),
            PrincipalId::Account("444455556666".into()),
            PrincipalId::Arn("arn:aws:iam::111122223333:user/Alice".into()),
            PrincipalId::Arn("arn:aws:sts::111122223333:assumed-role/R/s".into()),
            PrincipalId::Any,
            PrincipalId::Service("cloudtrail.amazonaws.com".into()),
        ]
    );
    let not = Policy::parse(&stmt(
        r#"{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}"#,
    ))
    .unwrap();
    assert!(matches!(
        &not.statements[0].principals,
        Some(Principals::AllBut(_))
    ));
}

#[test]
fn malformed_documents_are_refused_with_a_reason() {
    let cases: Vec<(String, &str)> = vec![
        ("{".into(), "invalid Json"),
        ("".into(), "invalid Json"),
        (format!(r#"{{"Statement":[{OK_BODY},]}}"#), "invalid Json"),
        ("[]".into(), "must be a JSON object"),
        (
            stmt(
                r#"{"Effect":"Allow","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"a":"1"},"StringEquals":{"b":"2"}}}"#,
            ),
            "duplicate key \"StringEquals\"",
        ),
        (
            r#"{"Statement":[],"Statement":[]}"#.into(),
            "duplicate key \"Statement\"",
        ),
        (
            r#"{"Version":"2012-10-17"}"#.into(),
            "missing the Statement",
        ),
        (
            r#"{"Version":"2012-10-18","Statement":[]}"#.into(),
            "invalid Version",
        ),
        (
            r#"{"Version":20121017,"Statement":[]}"#.into(),
            "invalid Version",
        ),
        (r#"{"Id":7,"Statement":[]}"#.into(), "Id must be a string"),
        (
            format!(r#"{{"Statements":[{OK_BODY}]}}"#),
            "unknown element: Statements",
        ),
        (r#"{"Statement":"Allow"}"#.into(), "Statement must be"),
        (stmt(r#""Allow""#), "Statement #1 must be an object"),
        (
            stmt(r#"{"Sid":"x","Effect":"Allow","Actions":"kms:*","Resource":"*"}"#),
            "Statement \"x\": The statement has an unknown element: Actions",
        ),
        (
            stmt(r#"{"Action":"kms:*","Resource":"*"}"#),
            "Effect is missing",
        ),
        (
            stmt(r#"{"Effect":"allow","Action":"kms:*","Resource":"*"}"#),
            "Effect must be Allow or Deny",
        ),
        (
            stmt(r#"{"Sid":1,"Effect":"Allow","Action":"kms:*","Resource":"*"}"#),
            "Sid must be a string",
        ),
        (
            stmt(r#"{"Effect":"Allow","Action":"kms:*","NotAction":"kms:Decrypt","Resource":"*"}"#),
            "Action and NotAction cannot both be present",
        ),
        (
            stmt(r#"{"Effect":"Allow","Resource":"*"}"#),
            "Action or NotAction is required",
        ),
        (
            stmt(r#"{"Effect":"Allow","Action":"kms:*"}"#),
            "Resource or NotResource is required",
        ),
        (
            stmt(r#"{"Effect":"Allow","Action":"kms:*","Resource":"*","NotResource":"*"}"#),
            "Resource and NotResource cannot both be present",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"kms:*","Resource":"*"}"#,
            ),
            "Principal and NotPrincipal cannot both be present",
        ),
        (
            stmt(r#"{"Effect":"Allow","Action":7,"Resource":"*"}"#),
            "Action must be a string or an array of strings",
        ),
        (
            stmt(r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#),
            "Action must not be empty",
        ),
        (
            stmt(r#"{"Effect":"Allow","Action":["kms:Encrypt",3],"Resource":"*"}"#),
            "Action must be a string",
        ),
        (
            stmt(r#"{"Effect":"Allow","Action":"Encrypt","Resource":"*"}"#),
            "actions are written service:Action",
        ),
        (
            stmt(r#"{"Effect":"Allow","Action":"kms:*","Resource":{"a":"b"}}"#),
            "Resource must be a string",
        ),
        (
            stmt(r#"{"Effect":"Allow","Principal":"","Action":"kms:*","Resource":"*"}"#),
            "invalid principals",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Principal":{"AWS":"11112222333"},"Action":"kms:*","Resource":"*"}"#,
            ),
            "invalid principals",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Principal":{"AWS":"Alice"},"Action":"kms:*","Resource":"*"}"#,
            ),
            "invalid principals",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/*"},"Action":"kms:*","Resource":"*"}"#,
            ),
            "invalid principals",
        ),
        (
            stmt(r#"{"Effect":"Allow","Principal":{"Foo":"x"},"Action":"kms:*","Resource":"*"}"#),
            "invalid principals",
        ),
        (
            stmt(r#"{"Effect":"Allow","Principal":{},"Action":"kms:*","Resource":"*"}"#),
            "invalid principals",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Action":"kms:*","Resource":"*","Condition":{"Bogus":{"k":"v"}}}"#,
            ),
            "Unknown condition operator: Bogus",
        ),
    ];
    for (doc, want) in cases {
        let err = Policy::parse(&doc).expect_err(&doc);
        assert!(
            err.message.contains(want),
            "{doc}\n  got: {}\n  want: {want}",
            err.message
        );
        assert_eq!(err.aws_code(), "MalformedPolicyDocumentException");
    }
}

#[test]
fn principal_requirements_depend_on_the_policy_kind() {
    let with = stmt(OK_BODY);
    let without = stmt(r#"{"Effect":"Allow","Action":"kms:*","Resource":"*"}"#);
    assert!(Policy::parse_as(&with, PolicyKind::KeyPolicy).is_ok());
    assert!(Policy::parse_as(&with, PolicyKind::EndpointPolicy).is_ok());
    let e = Policy::parse_as(&with, PolicyKind::Identity).unwrap_err();
    assert!(e.message.contains("must not have Principal"), "{e}");
    assert!(Policy::parse_as(&without, PolicyKind::Identity).is_ok());
    for kind in [PolicyKind::KeyPolicy, PolicyKind::EndpointPolicy] {
        let e = Policy::parse_as(&without, kind).unwrap_err();
        assert!(
            e.message.contains("Principal or NotPrincipal is required"),
            "{e}"
        );
    }
}

#[test]
fn key_policy_size_limit_is_32_kb() {
    let base = stmt(OK_BODY);
    let pad = |n: usize| format!("{}{}", base, " ".repeat(n - base.len()));
    let at_limit = pad(KEY_POLICY_MAX_BYTES);
    assert_eq!(at_limit.len(), 32768);
    assert!(check_key_policy_size(&at_limit).is_ok());
    assert!(Policy::parse_as(&at_limit, PolicyKind::KeyPolicy).is_ok());
    let over = pad(KEY_POLICY_MAX_BYTES + 1);
    let e = Policy::parse_as(&over, PolicyKind::KeyPolicy).unwrap_err();
    assert!(e.too_large);
    assert_eq!(e.aws_code(), "LimitExceededException");
    assert!(e.message.contains("32768"), "{e}");
    // Identity policies have other quotas; the key policy limit does not apply to them.
    let identity_over = format!(
        "{}{}",
        stmt(r#"{"Effect":"Allow","Action":"kms:*","Resource":"*"}"#),
        " ".repeat(KEY_POLICY_MAX_BYTES)
    );
    assert!(Policy::parse_as(&identity_over, PolicyKind::Identity).is_ok());
}
