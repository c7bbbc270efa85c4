//! Table-driven tests of every condition operator and of the missing-key, empty-set,
//! negation, set-operator, variable and case rules.

use serde_json::Value;

use crate::policy::condition::{Condition, parse_date};
use crate::policy::context::Context;

/// `None` in a row's context: key missing. `Some(&[])`: present with an empty set.
type Ctx<'a> = &'a [(&'a str, &'a [&'a str])];

fn ctx(entries: Ctx<'_>) -> Context {
    let mut c = Context::new();
    for (k, vs) in entries {
        c.insert_multi(k, vs.iter().copied());
    }
    c
}

fn holds_with(condition: &str, entries: Ctx<'_>, variables: bool) -> bool {
    let v: Value = serde_json::from_str(condition).expect("test condition is JSON");
    Condition::parse(&v, variables)
        .unwrap_or_else(|e| panic!("{condition}: {e}"))
        .holds(&ctx(entries))
}

fn holds(condition: &str, entries: Ctx<'_>) -> bool {
    holds_with(condition, entries, true)
}

/// Each row: (condition block, context, expected, the rule it pins).
fn check(rows: &[(&str, Ctx<'_>, bool, &str)]) {
    let mut failures = Vec::new();
    for (i, (cond, c, want, why)) in rows.iter().enumerate() {
        if holds(cond, c) != *want {
            failures.push(format!(
                "row {i} ({why}): {cond} with {c:?} should be {want}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const K_A: Ctx<'static> = &[("k", &["a"])];
const K_B: Ctx<'static> = &[("k", &["b"])];
const K_UPPER_A: Ctx<'static> = &[("k", &["A"])];
const NONE: Ctx<'static> = &[];
const K_EMPTY: Ctx<'static> = &[("k", &[])];

#[test]
fn string_operators() {
    check(&[
        (r#"{"StringEquals":{"k":"a"}}"#, K_A, true, "equal"),
        (
            r#"{"StringEquals":{"k":"a"}}"#,
            K_UPPER_A,
            false,
            "values are case-sensitive",
        ),
        (
            r#"{"StringEquals":{"K":"a"}}"#,
            K_A,
            true,
            "key names are case-insensitive",
        ),
        (
            r#"{"StringEquals":{"k":"a"}}"#,
            &[("K", &["a"])],
            true,
            "context key spelled differently",
        ),
        (
            r#"{"StringEquals":{"k":["x","a"]}}"#,
            K_A,
            true,
            "several values are OR",
        ),
        (
            r#"{"StringEquals":{"k":["x","y"]}}"#,
            K_A,
            false,
            "no value equal",
        ),
        (
            r#"{"StringEquals":{"k":"a"}}"#,
            NONE,
            false,
            "missing key: positive operator false",
        ),
        (
            r#"{"StringEquals":{"k":"a"}}"#,
            K_EMPTY,
            false,
            "empty set: nothing equal",
        ),
        (
            r#"{"StringEquals":{"k":"a"}}"#,
            &[("k", &["b", "a"])],
            true,
            "multi-valued key, no set operator: any",
        ),
        (
            r#"{"StringNotEquals":{"k":"a"}}"#,
            K_A,
            false,
            "negated: equal",
        ),
        (
            r#"{"StringNotEquals":{"k":"a"}}"#,
            K_B,
            true,
            "negated: different",
        ),
        (
            r#"{"StringNotEquals":{"k":["a","b"]}}"#,
            K_B,
            false,
            "negated over several values: NOT any",
        ),
        (
            r#"{"StringNotEquals":{"k":["a","b"]}}"#,
            &[("k", &["c"])],
            true,
            "negated: none of the values",
        ),
        (
            r#"{"StringNotEquals":{"k":"a"}}"#,
            NONE,
            true,
            "missing key: negated operator true",
        ),
        (
            r#"{"StringNotEquals":{"k":"a"}}"#,
            &[("k", &["b", "a"])],
            false,
            "multi-valued key negated: none may match",
        ),
        (
            r#"{"StringNotEquals":{"k":"a"}}"#,
            K_UPPER_A,
            true,
            "negated, case-sensitive",
        ),
        (
            r#"{"StringEqualsIgnoreCase":{"k":"A"}}"#,
            K_A,
            true,
            "ignore case",
        ),
        (
            r#"{"StringEqualsIgnoreCase":{"k":"Straße"}}"#,
            &[("k", &["STRASSE"])],
            false,
            "ignore case is not folding",
        ),
        (
            r#"{"StringEqualsIgnoreCase":{"k":"ÉTÉ"}}"#,
            &[("k", &["été"])],
            true,
            "ignore case beyond ASCII",
        ),
        (
            r#"{"StringEqualsIgnoreCase":{"k":"a"}}"#,
            NONE,
            false,
            "missing key",
        ),
        (
            r#"{"StringNotEqualsIgnoreCase":{"k":"A"}}"#,
            K_A,
            false,
            "negated ignore case: equal",
        ),
        (
            r#"{"StringNotEqualsIgnoreCase":{"k":"A"}}"#,
            K_B,
            true,
            "negated ignore case: different",
        ),
        (
            r#"{"StringNotEqualsIgnoreCase":{"k":"A"}}"#,
            NONE,
            true,
            "negated ignore case: missing",
        ),
        (
            r#"{"StringLike":{"k":"a*"}}"#,
            &[("k", &["abc"])],
            true,
            "star",
        ),
        (
            r#"{"StringLike":{"k":"a?c"}}"#,
            &[("k", &["abc"])],
            true,
            "question mark",
        ),
        (
            r#"{"StringLike":{"k":"a?c"}}"#,
            &[("k", &["abbc"])],
            false,
            "question mark is one char",
        ),
        (
            r#"{"StringLike":{"k":"A*"}}"#,
            &[("k", &["abc"])],
            false,
            "like is case-sensitive",
        ),
        (
            r#"{"StringLike":{"k":["x*","*c"]}}"#,
            &[("k", &["abc"])],
            true,
            "like: several patterns OR",
        ),
        (
            r#"{"StringLike":{"k":"*"}}"#,
            NONE,
            false,
            "like star: missing key still false",
        ),
        (
            r#"{"StringLike":{"k":"*"}}"#,
            &[("k", &[""])],
            true,
            "like star: empty string",
        ),
        (
            r#"{"StringNotLike":{"k":"a*"}}"#,
            &[("k", &["abc"])],
            false,
            "not like: matches",
        ),
        (
            r#"{"StringNotLike":{"k":["x*","y*"]}}"#,
            &[("k", &["abc"])],
            true,
            "not like: matches none",
        ),
        (
            r#"{"StringNotLike":{"k":"a*"}}"#,
            NONE,
            true,
            "not like: missing key",
        ),
        (
            r#"{"StringEqualsIfExists":{"k":"a"}}"#,
            NONE,
            true,
            "IfExists: missing key true",
        ),
        (
            r#"{"StringEqualsIfExists":{"k":"a"}}"#,
            K_B,
            false,
            "IfExists: present key evaluated",
        ),
        (
            r#"{"StringEqualsIfExists":{"k":"a"}}"#,
            K_A,
            true,
            "IfExists: present and equal",
        ),
        (
            r#"{"StringNotEqualsIfExists":{"k":"a"}}"#,
            NONE,
            true,
            "negated IfExists: missing",
        ),
        (
            r#"{"StringNotEqualsIfExists":{"k":"a"}}"#,
            K_A,
            false,
            "negated IfExists: equal",
        ),
        (
            r#"{"StringLikeIfExists":{"k":"a*"}}"#,
            NONE,
            true,
            "like IfExists: missing",
        ),
    ]);
}

#[test]
fn numeric_operators() {
    let n = |v: &'static str| -> Ctx<'static> {
        match v {
            "9" => &[("n", &["9"])],
            "10" => &[("n", &["10"])],
            "10.0" => &[("n", &["10.0"])],
            "11" => &[("n", &["11"])],
            "-1.5" => &[("n", &["-1.5"])],
            _ => &[("n", &["ten"])],
        }
    };
    check(&[
        (r#"{"NumericEquals":{"n":"10"}}"#, n("10"), true, "equal"),
        (
            r#"{"NumericEquals":{"n":"10"}}"#,
            n("10.0"),
            true,
            "numeric, not textual",
        ),
        (
            r#"{"NumericEquals":{"n":10}}"#,
            n("10"),
            true,
            "JSON number value",
        ),
        (
            r#"{"NumericEquals":{"n":"10"}}"#,
            n("11"),
            false,
            "different",
        ),
        (
            r#"{"NumericEquals":{"n":"10"}}"#,
            n("x"),
            false,
            "request value not a number",
        ),
        (r#"{"NumericEquals":{"n":["9","10"]}}"#, n("10"), true, "OR"),
        (r#"{"NumericEquals":{"n":"10"}}"#, NONE, false, "missing"),
        (
            r#"{"NumericNotEquals":{"n":"10"}}"#,
            n("10"),
            false,
            "not equals: equal",
        ),
        (
            r#"{"NumericNotEquals":{"n":"10"}}"#,
            n("11"),
            true,
            "not equals: different",
        ),
        (
            r#"{"NumericNotEquals":{"n":["10","11"]}}"#,
            n("11"),
            false,
            "not equals: NOT any",
        ),
        (
            r#"{"NumericNotEquals":{"n":"10"}}"#,
            NONE,
            true,
            "not equals: missing",
        ),
        (
            r#"{"NumericLessThan":{"n":"10"}}"#,
            n("9"),
            true,
            "request < policy",
        ),
        (
            r#"{"NumericLessThan":{"n":"10"}}"#,
            n("10"),
            false,
            "strict",
        ),
        (
            r#"{"NumericLessThan":{"n":"0"}}"#,
            n("-1.5"),
            true,
            "negative decimals",
        ),
        (
            r#"{"NumericLessThanEquals":{"n":"10"}}"#,
            n("10"),
            true,
            "<=",
        ),
        (
            r#"{"NumericLessThanEquals":{"n":"10"}}"#,
            n("11"),
            false,
            "<= false",
        ),
        (r#"{"NumericGreaterThan":{"n":"10"}}"#, n("11"), true, ">"),
        (
            r#"{"NumericGreaterThan":{"n":"10"}}"#,
            n("10"),
            false,
            "> strict",
        ),
        (
            r#"{"NumericGreaterThanEquals":{"n":"10"}}"#,
            n("10"),
            true,
            ">=",
        ),
        (
            r#"{"NumericGreaterThanEquals":{"n":"10"}}"#,
            n("9"),
            false,
            ">= false",
        ),
        (r#"{"NumericLessThan":{"n":"10"}}"#, NONE, false, "missing"),
        (
            r#"{"NumericLessThanIfExists":{"n":"10"}}"#,
            NONE,
            true,
            "IfExists missing",
        ),
        (
            r#"{"NumericLessThanIfExists":{"n":"10"}}"#,
            n("11"),
            false,
            "IfExists present",
        ),
    ]);
}

#[test]
fn date_operators() {
    const T: Ctx<'static> = &[("t", &["2026-01-02T00:00:00Z"])];
    const EPOCH: Ctx<'static> = &[("t", &["1767312000"])];
    const BEFORE: Ctx<'static> = &[("t", &["2026-01-01T23:59:59Z"])];
    const AFTER: Ctx<'static> = &[("t", &["2026-01-02T00:00:01Z"])];
    check(&[
        (
            r#"{"DateEquals":{"t":"2026-01-02T00:00:00Z"}}"#,
            T,
            true,
            "ISO 8601 equal",
        ),
        (
            r#"{"DateEquals":{"t":"2026-01-02T00:00:00Z"}}"#,
            EPOCH,
            true,
            "epoch request value",
        ),
        (
            r#"{"DateEquals":{"t":"1767312000"}}"#,
            T,
            true,
            "epoch policy value",
        ),
        (
            r#"{"DateEquals":{"t":1767312000}}"#,
            T,
            true,
            "epoch as JSON number",
        ),
        (
            r#"{"DateEquals":{"t":"2026-01-02T01:00:00+01:00"}}"#,
            T,
            true,
            "offsets are honoured",
        ),
        (
            r#"{"DateEquals":{"t":"2026-01-02"}}"#,
            T,
            true,
            "a date alone is midnight UTC",
        ),
        (
            r#"{"DateEquals":{"t":"2026-01-02T00:00:00.000Z"}}"#,
            T,
            true,
            "fractional seconds",
        ),
        (
            r#"{"DateEquals":{"t":"2026-01-02T00:00:00Z"}}"#,
            AFTER,
            false,
            "different",
        ),
        (
            r#"{"DateNotEquals":{"t":"2026-01-02T00:00:00Z"}}"#,
            AFTER,
            true,
            "not equals",
        ),
        (
            r#"{"DateNotEquals":{"t":"2026-01-02T00:00:00Z"}}"#,
            T,
            false,
            "not equals: equal",
        ),
        (
            r#"{"DateNotEquals":{"t":"2026-01-02T00:00:00Z"}}"#,
            NONE,
            true,
            "not equals: missing",
        ),
        (
            r#"{"DateLessThan":{"t":"2026-01-02T00:00:00Z"}}"#,
            BEFORE,
            true,
            "<",
        ),
        (
            r#"{"DateLessThan":{"t":"2026-01-02T00:00:00Z"}}"#,
            T,
            false,
            "< strict",
        ),
        (
            r#"{"DateLessThanEquals":{"t":"2026-01-02T00:00:00Z"}}"#,
            T,
            true,
            "<=",
        ),
        (
            r#"{"DateGreaterThan":{"t":"2026-01-02T00:00:00Z"}}"#,
            AFTER,
            true,
            ">",
        ),
        (
            r#"{"DateGreaterThan":{"t":"2026-01-02T00:00:00Z"}}"#,
            T,
            false,
            "> strict",
        ),
        (
            r#"{"DateGreaterThanEquals":{"t":"1767312000"}}"#,
            T,
            true,
            ">= epoch",
        ),
        (
            r#"{"DateGreaterThanEquals":{"t":"2026-01-02T00:00:00Z"}}"#,
            BEFORE,
            false,
            ">= false",
        ),
        (
            r#"{"DateLessThan":{"t":"2026-01-02T00:00:00Z"}}"#,
            &[("t", &["soon"])],
            false,
            "request not a date",
        ),
        (
            r#"{"DateLessThan":{"t":"2026-01-02T00:00:00Z"}}"#,
            NONE,
            false,
            "missing",
        ),
        (
            r#"{"DateLessThanIfExists":{"t":"2026-01-02T00:00:00Z"}}"#,
            NONE,
            true,
            "IfExists missing",
        ),
    ]);
    assert_eq!(parse_date("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_date("not a date"), None);
}

#[test]
fn bool_binary_ip_operators() {
    check(&[
        (
            r#"{"Bool":{"b":"true"}}"#,
            &[("b", &["true"])],
            true,
            "bool true",
        ),
        (
            r#"{"Bool":{"b":"true"}}"#,
            &[("b", &["TRUE"])],
            true,
            "bool values case-insensitive",
        ),
        (
            r#"{"Bool":{"b":true}}"#,
            &[("b", &["true"])],
            true,
            "JSON boolean",
        ),
        (
            r#"{"Bool":{"b":"true"}}"#,
            &[("b", &["false"])],
            false,
            "bool mismatch",
        ),
        (
            r#"{"Bool":{"b":"false"}}"#,
            &[("b", &["false"])],
            true,
            "bool false",
        ),
        (
            r#"{"Bool":{"b":"true"}}"#,
            &[("b", &["yes"])],
            false,
            "not a boolean",
        ),
        (
            r#"{"Bool":{"b":"false"}}"#,
            NONE,
            false,
            "bool: missing key is false, not 'false'",
        ),
        (
            r#"{"BoolIfExists":{"b":"false"}}"#,
            NONE,
            true,
            "BoolIfExists: missing",
        ),
        (
            r#"{"BinaryEquals":{"x":"QmluYXJ5"}}"#,
            &[("x", &["QmluYXJ5"])],
            true,
            "binary equal",
        ),
        (
            r#"{"BinaryEquals":{"x":"QmluYXJ5"}}"#,
            &[("x", &["b3RoZXI="])],
            false,
            "binary different",
        ),
        (
            r#"{"BinaryEquals":{"x":"QmluYXJ5"}}"#,
            &[("x", &["%%%"])],
            false,
            "request not base64",
        ),
        (
            r#"{"BinaryEquals":{"x":"QmluYXJ5"}}"#,
            NONE,
            false,
            "binary missing",
        ),
        (
            r#"{"BinaryEqualsIfExists":{"x":"QmluYXJ5"}}"#,
            NONE,
            true,
            "binary IfExists missing",
        ),
        (
            r#"{"IpAddress":{"ip":"203.0.113.0/24"}}"#,
            &[("ip", &["203.0.113.7"])],
            true,
            "v4 in CIDR",
        ),
        (
            r#"{"IpAddress":{"ip":"203.0.113.0/24"}}"#,
            &[("ip", &["203.0.114.1"])],
            false,
            "v4 outside",
        ),
        (
            r#"{"IpAddress":{"ip":"203.0.113.7"}}"#,
            &[("ip", &["203.0.113.7"])],
            true,
            "single address",
        ),
        (
            r#"{"IpAddress":{"ip":"203.0.113.7"}}"#,
            &[("ip", &["203.0.113.8"])],
            false,
            "single address is /32",
        ),
        (
            r#"{"IpAddress":{"ip":"203.0.113.0/24"}}"#,
            &[("ip", &["2001:db8::1"])],
            false,
            "v6 request vs v4 CIDR",
        ),
        (
            r#"{"IpAddress":{"ip":"2001:db8::/32"}}"#,
            &[("ip", &["2001:db8:1::5"])],
            true,
            "v6 in CIDR",
        ),
        (
            r#"{"IpAddress":{"ip":"2001:db8::/32"}}"#,
            &[("ip", &["2001:db9::5"])],
            false,
            "v6 outside",
        ),
        (
            r#"{"IpAddress":{"ip":["10.0.0.0/8","192.168.0.0/16"]}}"#,
            &[("ip", &["192.168.1.1"])],
            true,
            "several CIDRs OR",
        ),
        (
            r#"{"IpAddress":{"ip":"10.0.0.0/8"}}"#,
            &[("ip", &["not-an-ip"])],
            false,
            "request not an IP",
        ),
        (
            r#"{"IpAddress":{"ip":"10.0.0.0/8"}}"#,
            NONE,
            false,
            "IpAddress missing",
        ),
        (
            r#"{"NotIpAddress":{"ip":"203.0.113.0/24"}}"#,
            &[("ip", &["198.51.100.1"])],
            true,
            "not ip: outside",
        ),
        (
            r#"{"NotIpAddress":{"ip":"203.0.113.0/24"}}"#,
            &[("ip", &["203.0.113.1"])],
            false,
            "not ip: inside",
        ),
        (
            r#"{"NotIpAddress":{"ip":["10.0.0.0/8","203.0.113.0/24"]}}"#,
            &[("ip", &["203.0.113.1"])],
            false,
            "not ip: NOT any",
        ),
        (
            r#"{"NotIpAddress":{"ip":"203.0.113.0/24"}}"#,
            NONE,
            true,
            "not ip: missing",
        ),
        (
            r#"{"IpAddressIfExists":{"ip":"10.0.0.0/8"}}"#,
            NONE,
            true,
            "IpAddressIfExists missing",
        ),
    ]);
}

#[test]
fn arn_operators() {
    const ROLE: Ctx<'static> = &[("a", &["arn:aws:iam::111122223333:role/Reader"])];
    const KEY: Ctx<'static> = &[("a", &["arn:aws:kms:us-east-1:111122223333:key/abc"])];
    check(&[
        (
            r#"{"ArnEquals":{"a":"arn:aws:iam::111122223333:role/Reader"}}"#,
            ROLE,
            true,
            "equal",
        ),
        (
            r#"{"ArnEquals":{"a":"arn:aws:iam::111122223333:role/reader"}}"#,
            ROLE,
            false,
            "case-sensitive",
        ),
        (
            r#"{"ArnEquals":{"a":"arn:aws:iam::*:role/Reader"}}"#,
            ROLE,
            true,
            "ArnEquals takes wildcards too",
        ),
        (
            r#"{"ArnLike":{"a":"arn:aws:iam::*:role/R*"}}"#,
            ROLE,
            true,
            "like",
        ),
        (
            r#"{"ArnLike":{"a":"arn:aws:iam::111122223333:*"}}"#,
            ROLE,
            true,
            "resource part wildcard",
        ),
        (
            r#"{"ArnLike":{"a":"arn:aws:iam::444455556666:*"}}"#,
            ROLE,
            false,
            "other account",
        ),
        (
            r#"{"ArnLike":{"a":"arn:aws:kms:*:111122223333:key/*"}}"#,
            KEY,
            true,
            "region wildcard",
        ),
        (
            r#"{"ArnLike":{"a":"arn:aws:kms:*:111122223333:key/*"}}"#,
            &[("a", &["arn:aws:kms:us-east-1:x:111122223333:key/abc"])],
            false,
            "a wildcard does not cross a colon between ARN parts",
        ),
        (
            r#"{"ArnLike":{"a":"arn:aws:kms:us-east-1:111122223333:key/*"}}"#,
            &[("a", &["key/abc"])],
            false,
            "request value not an ARN",
        ),
        (
            r#"{"ArnLike":{"a":"arn:aws:iam::*:role/R*"}}"#,
            NONE,
            false,
            "missing",
        ),
        (
            r#"{"ArnNotEquals":{"a":"arn:aws:iam::111122223333:role/Reader"}}"#,
            ROLE,
            false,
            "not equals: equal",
        ),
        (
            r#"{"ArnNotEquals":{"a":"arn:aws:iam::111122223333:role/Writer"}}"#,
            ROLE,
            true,
            "not equals: different",
        ),
        (
            r#"{"ArnNotLike":{"a":["arn:aws:iam::*:role/W*","arn:aws:iam::*:role/R*"]}}"#,
            ROLE,
            false,
            "not like: NOT any",
        ),
        (
            r#"{"ArnNotLike":{"a":"arn:aws:iam::*:role/W*"}}"#,
            NONE,
            true,
            "not like: missing",
        ),
        (
            r#"{"ArnLikeIfExists":{"a":"arn:aws:iam::*:role/W*"}}"#,
            NONE,
            true,
            "IfExists missing",
        ),
    ]);
}

#[test]
fn null_operator() {
    check(&[
        (r#"{"Null":{"k":"true"}}"#, NONE, true, "null true: missing"),
        (r#"{"Null":{"k":"true"}}"#, K_A, false, "null true: present"),
        (
            r#"{"Null":{"k":"false"}}"#,
            K_A,
            true,
            "null false: present",
        ),
        (
            r#"{"Null":{"k":"false"}}"#,
            NONE,
            false,
            "null false: missing",
        ),
        (r#"{"Null":{"k":true}}"#, NONE, true, "JSON boolean"),
        (
            r#"{"Null":{"k":"true"}}"#,
            K_EMPTY,
            true,
            "an empty set is null",
        ),
        (
            r#"{"Null":{"k":"false"}}"#,
            K_EMPTY,
            false,
            "an empty set is not present",
        ),
        (
            r#"{"Null":{"k":"TRUE"}}"#,
            NONE,
            true,
            "boolean spelling case-insensitive",
        ),
    ]);
}

#[test]
fn set_operators() {
    const A: Ctx<'static> = &[("kms:EncryptionContextKeys", &["a"])];
    const AB: Ctx<'static> = &[("kms:EncryptionContextKeys", &["a", "b"])];
    const AC: Ctx<'static> = &[("kms:EncryptionContextKeys", &["a", "c"])];
    const C: Ctx<'static> = &[("kms:EncryptionContextKeys", &["c"])];
    const EMPTY: Ctx<'static> = &[("kms:EncryptionContextKeys", &[])];
    let all = r#"{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["a","b"]}}"#;
    let any = r#"{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":["a","b"]}}"#;
    let all_not = r#"{"ForAllValues:StringNotEquals":{"kms:EncryptionContextKeys":"a"}}"#;
    let any_not = r#"{"ForAnyValue:StringNotEquals":{"kms:EncryptionContextKeys":"a"}}"#;
    check(&[
        (all, A, true, "ForAllValues: subset"),
        (all, AB, true, "ForAllValues: equal set"),
        (all, AC, false, "ForAllValues: one value outside"),
        (all, NONE, true, "ForAllValues: missing key is true"),
        (all, EMPTY, true, "ForAllValues: empty set is true"),
        (any, AC, true, "ForAnyValue: one value inside"),
        (any, C, false, "ForAnyValue: none inside"),
        (any, NONE, false, "ForAnyValue: missing key is false"),
        (any, EMPTY, false, "ForAnyValue: empty set is false"),
        (
            all_not,
            C,
            true,
            "ForAllValues negated: every value differs",
        ),
        (all_not, AC, false, "ForAllValues negated: one equal"),
        (all_not, NONE, true, "ForAllValues negated: missing"),
        (any_not, AC, true, "ForAnyValue negated: one differs"),
        (any_not, A, false, "ForAnyValue negated: all equal"),
        (any_not, NONE, false, "ForAnyValue negated: missing"),
        (
            r#"{"ForAnyValue:StringEqualsIfExists":{"kms:EncryptionContextKeys":"a"}}"#,
            NONE,
            true,
            "ForAnyValue IfExists: missing",
        ),
        (
            r#"{"ForAllValues:StringLike":{"kms:EncryptionContextKeys":"x*"}}"#,
            &[("kms:EncryptionContextKeys", &["xa", "xb"])],
            true,
            "ForAllValues with Like",
        ),
        (
            r#"{"ForAllValues:StringLike":{"kms:EncryptionContextKeys":"x*"}}"#,
            &[("kms:EncryptionContextKeys", &["xa", "y"])],
            false,
            "ForAllValues with Like: one outside",
        ),
        (
            r#"{"ForAnyValue:StringEqualsIgnoreCase":{"kms:encryptioncontextkeys":"A"}}"#,
            AC,
            true,
            "set operator, key and value case rules together",
        ),
        (
            r#"{"ForAllValues:NumericLessThan":{"n":"10"}}"#,
            &[("n", &["1", "9"])],
            true,
            "set operator on numbers",
        ),
    ]);
}

#[test]
fn several_operators_and_keys_are_and() {
    const BOTH: Ctx<'static> = &[("k", &["a"]), ("b", &["true"])];
    const ONE: Ctx<'static> = &[("k", &["a"]), ("b", &["false"])];
    const KJ: Ctx<'static> = &[("k", &["a"]), ("j", &["b"])];
    const KX: Ctx<'static> = &[("k", &["a"]), ("j", &["x"])];
    check(&[
        (
            r#"{"StringEquals":{"k":"a"},"Bool":{"b":"true"}}"#,
            BOTH,
            true,
            "two operators both hold",
        ),
        (
            r#"{"StringEquals":{"k":"a"},"Bool":{"b":"true"}}"#,
            ONE,
            false,
            "two operators, one fails",
        ),
        (
            r#"{"StringEquals":{"k":"a","j":"b"}}"#,
            KJ,
            true,
            "two keys both hold",
        ),
        (
            r#"{"StringEquals":{"k":"a","j":"b"}}"#,
            KX,
            false,
            "two keys, one fails",
        ),
        (r#"{}"#, NONE, true, "empty block holds"),
    ]);
}

#[test]
fn policy_variables() {
    const ALICE: Ctx<'static> = &[("aws:username", &["Alice"]), ("k", &["Alice"])];
    const LITERAL: Ctx<'static> = &[("aws:username", &["Alice"]), ("k", &["${aws:username}"])];
    const TAG: Ctx<'static> = &[("aws:PrincipalTag/team", &["blue"]), ("k", &["blue"])];
    check(&[
        (
            r#"{"StringEquals":{"k":"${aws:username}"}}"#,
            ALICE,
            true,
            "variable substituted",
        ),
        (
            r#"{"StringEquals":{"k":"${aws:username}"}}"#,
            LITERAL,
            false,
            "2012-10-17 substitutes",
        ),
        (
            r#"{"StringLike":{"k":"${aws:username}*"}}"#,
            ALICE,
            true,
            "variable in a Like pattern",
        ),
        (
            r#"{"StringEquals":{"k":"${aws:PrincipalTag/team}"}}"#,
            TAG,
            true,
            "principal tag variable",
        ),
        (
            r#"{"StringEquals":{"k":"${aws:userid}"}}"#,
            ALICE,
            false,
            "unresolvable variable matches nothing",
        ),
        (
            r#"{"StringEquals":{"k":"${aws:userid, 'Alice'}"}}"#,
            ALICE,
            true,
            "variable default",
        ),
        (
            r#"{"StringLike":{"k":"a${*}"}}"#,
            &[("k", &["a*"])],
            true,
            "${*} is a literal star",
        ),
        (
            r#"{"StringLike":{"k":"a${*}"}}"#,
            &[("k", &["ab"])],
            false,
            "${*} is not a wildcard",
        ),
        (
            r#"{"StringEquals":{"k":"${?}${$}"}}"#,
            &[("k", &["?$"])],
            true,
            "${?} and ${$}",
        ),
        (
            r#"{"ArnLike":{"k":"arn:aws:iam::*:user/${aws:username}"}}"#,
            &[
                ("aws:username", &["Alice"]),
                ("k", &["arn:aws:iam::111122223333:user/Alice"]),
            ],
            true,
            "variable in ARN",
        ),
    ]);
    // 2008-10-17: no substitution, the text is literal.
    assert!(holds_with(
        r#"{"StringEquals":{"k":"${aws:username}"}}"#,
        LITERAL,
        false
    ));
    assert!(!holds_with(
        r#"{"StringEquals":{"k":"${aws:username}"}}"#,
        ALICE,
        false
    ));
}

#[test]
fn invalid_conditions_are_refused() {
    let cases = [
        (
            r#"{"StringEqualz":{"k":"a"}}"#,
            "Unknown condition operator",
        ),
        (
            r#"{"stringequals":{"k":"a"}}"#,
            "Unknown condition operator",
        ),
        (
            r#"{"ForAllValues:Null":{"k":"true"}}"#,
            "Unknown condition operator",
        ),
        (
            r#"{"NullIfExists":{"k":"true"}}"#,
            "Unknown condition operator",
        ),
        (
            r#"{"ForSomeValues:StringEquals":{"k":"a"}}"#,
            "Unknown condition operator",
        ),
        (r#"{"NumericEquals":{"n":"ten"}}"#, "invalid value"),
        (r#"{"DateEquals":{"t":"yesterday"}}"#, "invalid value"),
        (r#"{"IpAddress":{"ip":"300.1.1.1/8"}}"#, "invalid value"),
        (r#"{"IpAddress":{"ip":"10.0.0.0/33"}}"#, "invalid value"),
        (r#"{"Bool":{"b":"yes"}}"#, "invalid value"),
        (r#"{"Null":{"k":"maybe"}}"#, "invalid value"),
        (r#"{"BinaryEquals":{"x":"!!!"}}"#, "invalid value"),
        (r#"{"StringEquals":{"k":{"x":"y"}}}"#, "values must be"),
        (r#"{"StringEquals":{"k":null}}"#, "values must be"),
        (r#"{"StringEquals":{"k":[["a"]]}}"#, "values must be"),
        (r#"{"StringEquals":"k"}"#, "must map condition keys"),
        (r#"{"StringEquals":{"":"a"}}"#, "empty condition key"),
        (r#"["StringEquals"]"#, "Condition must be an object"),
    ];
    for (cond, want) in cases {
        let v: Value = serde_json::from_str(cond).unwrap();
        let err = Condition::parse(&v, true).expect_err(cond);
        assert!(err.message.contains(want), "{cond}: {}", err.message);
    }
}
