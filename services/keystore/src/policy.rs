//! Structural checks of key policy documents, as KMS makes them on PutKeyPolicy and
//! CreateKey before it stores a policy: a policy that fails them is refused with
//! `MalformedPolicyDocumentException`.
//!
//! Self-contained on purpose (serde and serde_json only, its own error type): the
//! policy engine of the authorization issue will evaluate these documents, and this
//! module can move next to it. It does not evaluate anything: whether a policy locks
//! its caller out (the lockout safety check) needs that engine.
//!
//! What is checked, following the IAM JSON policy grammar as KMS applies it to key
//! policies:
//! - the document is one JSON object, with no element repeated in any object (a
//!   repeated element would leave its meaning to whichever parser reads it);
//! - top-level elements are only `Version`, `Id` and `Statement`; `Version`, when
//!   present, is `2012-10-17` or `2008-10-17`; `Statement` is present, and is a
//!   statement or an array of statements;
//! - a statement is an object of only `Sid`, `Effect`, `Principal`, `NotPrincipal`,
//!   `Action`, `NotAction`, `Resource`, `NotResource`, `Condition`; `Sid`s are unique;
//!   `Effect` is `Allow` or `Deny`; exactly one of `Principal` / `NotPrincipal` (every
//!   key policy statement names its principals), either `"*"` or an object of
//!   `AWS`/`Service`/`Federated`/`CanonicalUser` to a string or a non-empty array of
//!   strings; at most one of `Action` / `NotAction` and of `Resource` / `NotResource`,
//!   each a string or an array of strings; `Condition` maps operators to objects.
//!
//! Not checked, as in KMS: a statement without `Action` or `Resource` is accepted
//! (it has no effect). The KMS API reference for PutKeyPolicy: "When a key policy
//! statement is missing one of these elements, the KMS console correctly reports an
//! error, but the PutKeyPolicy API request succeeds, even though the policy statement
//! is ineffective."
//!
//! Size and character set are the API's constraints and are checked by the caller.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Policy language versions IAM knows.
pub const VERSIONS: &[&str] = &["2012-10-17", "2008-10-17"];
const TOP_LEVEL_ELEMENTS: &[&str] = &["Version", "Id", "Statement"];
const STATEMENT_ELEMENTS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];
const PRINCIPAL_TYPES: &[&str] = &["AWS", "Service", "Federated", "CanonicalUser"];

/// Why a policy document is malformed; the message is the exception's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedPolicy(pub String);

impl fmt::Display for MalformedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MalformedPolicy {}

fn malformed(message: impl Into<String>) -> MalformedPolicy {
    MalformedPolicy(message.into())
}

/// Checks the structure of a key policy document.
pub fn check_key_policy(document: &str) -> Result<(), MalformedPolicy> {
    let Strict(doc) = serde_json::from_str::<Strict>(document)
        .map_err(|e| malformed(format!("The policy is not a valid JSON document: {e}.")))?;
    let Value::Object(doc) = doc else {
        return Err(malformed("The policy must be a JSON object."));
    };
    only_known_elements(&doc, TOP_LEVEL_ELEMENTS, "policy")?;
    if let Some(version) = doc.get("Version") {
        match version.as_str() {
            Some(v) if VERSIONS.contains(&v) => {}
            _ => {
                return Err(malformed(format!(
                    "The policy Version {} is not supported; use 2012-10-17 (or 2008-10-17).",
                    describe(version)
                )));
            }
        }
    }
    if doc.get("Id").is_some_and(|id| !id.is_string()) {
        return Err(malformed("The policy Id must be a string."));
    }
    let statements = match doc.get("Statement") {
        None => {
            return Err(malformed(
                "The policy is missing the required Statement element.",
            ));
        }
        Some(Value::Object(_)) => std::slice::from_ref(&doc["Statement"]),
        Some(Value::Array(list)) => list.as_slice(),
        Some(_) => {
            return Err(malformed(
                "The policy Statement must be a statement object or an array of statement objects.",
            ));
        }
    };
    let mut sids = HashSet::new();
    for statement in statements {
        let Value::Object(statement) = statement else {
            return Err(malformed(
                "The policy contains a statement that is not a JSON object.",
            ));
        };
        check_statement(statement, &mut sids)?;
    }
    Ok(())
}

fn check_statement<'a>(
    statement: &'a Map<String, Value>,
    sids: &mut HashSet<&'a str>,
) -> Result<(), MalformedPolicy> {
    only_known_elements(statement, STATEMENT_ELEMENTS, "policy statement")?;
    if let Some(sid) = statement.get("Sid") {
        let Some(sid) = sid.as_str() else {
            return Err(malformed("The Sid of a policy statement must be a string."));
        };
        if !sids.insert(sid) {
            return Err(malformed(
                "Statement IDs (SID) in a single policy must be unique.",
            ));
        }
    }
    match statement.get("Effect") {
        None => {
            return Err(malformed(
                "Policy contains a statement without the required Effect element.",
            ));
        }
        Some(Value::String(e)) if e == "Allow" || e == "Deny" => {}
        Some(other) => {
            return Err(malformed(format!(
                "Policy contains a statement with an invalid Effect {}; the Effect must be Allow or Deny.",
                describe(other)
            )));
        }
    }
    let principal = one_of(statement, "Principal", "NotPrincipal")?
        .ok_or_else(|| malformed("Policy contains a statement with no principal."))?;
    if !valid_principal(principal) {
        return Err(malformed(
            "Policy contains a statement with one or more invalid principals.",
        ));
    }
    for (element, negated) in [("Action", "NotAction"), ("Resource", "NotResource")] {
        if let Some(value) = one_of(statement, element, negated)?
            && !is_string_or_strings(value)
        {
            let name = if statement.contains_key(element) {
                element
            } else {
                negated
            };
            return Err(malformed(format!(
                "The {name} element of a policy statement must be a string or an array of strings."
            )));
        }
    }
    if let Some(condition) = statement.get("Condition")
        && !valid_condition(condition)
    {
        return Err(malformed(
            "The Condition element of a policy statement must map condition operators to objects of condition keys and values.",
        ));
    }
    Ok(())
}

fn only_known_elements(
    object: &Map<String, Value>,
    known: &[&str],
    what: &str,
) -> Result<(), MalformedPolicy> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(malformed(format!(
            "The {what} contains the unknown element {unknown:?}."
        ))),
        None => Ok(()),
    }
}

/// The value of `element` or of its negation `negated`; a statement may not have both.
fn one_of<'a>(
    statement: &'a Map<String, Value>,
    element: &str,
    negated: &str,
) -> Result<Option<&'a Value>, MalformedPolicy> {
    match (statement.get(element), statement.get(negated)) {
        (Some(_), Some(_)) => Err(malformed(format!(
            "Policy contains a statement with both {element} and {negated}; use one of them."
        ))),
        (a, b) => Ok(a.or(b)),
    }
}

/// `"*"`, or an object of principal types to one name or a non-empty list of names.
fn valid_principal(principal: &Value) -> bool {
    match principal {
        Value::String(s) => s == "*",
        Value::Object(types) => {
            !types.is_empty()
                && types.iter().all(|(kind, names)| {
                    PRINCIPAL_TYPES.contains(&kind.as_str())
                        && match names {
                            Value::String(name) => !name.is_empty(),
                            Value::Array(list) => {
                                !list.is_empty()
                                    && list
                                        .iter()
                                        .all(|n| n.as_str().is_some_and(|n| !n.is_empty()))
                            }
                            _ => false,
                        }
                })
        }
        _ => false,
    }
}

fn is_string_or_strings(value: &Value) -> bool {
    match value {
        Value::String(_) => true,
        Value::Array(list) => list.iter().all(Value::is_string),
        _ => false,
    }
}

/// `{"StringEquals": {"kms:CallerAccount": "111122223333"}, ...}`: condition values
/// are strings, numbers, booleans, or arrays of them.
fn valid_condition(condition: &Value) -> bool {
    let scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
    let Value::Object(operators) = condition else {
        return false;
    };
    operators.values().all(|keys| match keys {
        Value::Object(keys) => keys.values().all(|v| match v {
            Value::Array(list) => list.iter().all(scalar),
            other => scalar(other),
        }),
        _ => false,
    })
}

/// A value for a message: strings as they are quoted in JSON, other values by kind.
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".into(),
        Value::Bool(_) => "of type boolean".into(),
        Value::Number(_) => "of type number".into(),
        Value::Array(_) => "of type array".into(),
        Value::Object(_) => "of type object".into(),
    }
}

/// A JSON value parsed with every object's element names unique.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // serde_json never yields a non-finite number.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut list = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            list.push(v);
        }
        Ok(Value::Array(list))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            let Strict(v) = map.next_value()?;
            if object.contains_key(&name) {
                return Err(de::Error::custom(format_args!(
                    "the element {name:?} appears more than once in an object"
                )));
            }
            object.insert(name, v);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = r#"{"AWS":"arn:aws:iam::111122223333:root"}"#;

    /// A policy whose only statement is `{"Effect":"Allow","Principal":ROOT,` + `rest` + `}`.
    fn with_statement(rest: &str) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{ROOT}{rest}}}]}}"#
        )
    }

    fn message(policy: &str) -> String {
        check_key_policy(policy).unwrap_err().0
    }

    #[test]
    fn accepts_well_formed_key_policies() {
        for ok in [
            // AWS's default key policy.
            r#"{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#.to_owned(),
            // One statement as an object, no Version, older Version, no statements.
            r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*"}}"#.to_owned(),
            r#"{"Version":"2008-10-17","Statement":[]}"#.to_owned(),
            // Lists, NotPrincipal, NotAction, NotResource, conditions of every shape.
            format!(
                r#"{{"Version":"2012-10-17","Statement":[
                    {{"Sid":"a","Effect":"Allow","Principal":{{"AWS":["arn:aws:iam::111122223333:root","444455556666"],"Service":"logs.amazonaws.com"}},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":["*"],
                      "Condition":{{"StringEquals":{{"kms:CallerAccount":"111122223333","kms:ViaService":["s3.us-east-1.amazonaws.com"]}},"Bool":{{"aws:SecureTransport":true}},"NumericLessThan":{{"kms:RecipientAttestation:x":5}}}}}},
                    {{"Sid":"b","Effect":"Deny","NotPrincipal":{ROOT},"NotAction":"kms:Decrypt","NotResource":"*"}}
                ]}}"#
            ),
            // No Action or Resource: KMS accepts the (ineffective) statement.
            with_statement(""),
        ] {
            assert_eq!(check_key_policy(&ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_documents_that_are_not_policies() {
        for bad in [
            "this is { not json",
            "",
            "[1]",
            "\"policy\"",
            "null",
            r#"{"Statement":[]} trailing"#,
        ] {
            assert!(check_key_policy(bad).is_err(), "{bad}");
        }
        assert!(message("{").starts_with("The policy is not a valid JSON document: "));
        assert_eq!(message("[]"), "The policy must be a JSON object.");
    }

    #[test]
    fn refuses_repeated_elements_at_any_depth() {
        let top = r#"{"Statement":[],"Statement":[]}"#;
        assert!(message(top).contains(r#"the element "Statement" appears more than once"#));
        let inner = with_statement(r#","Action":"kms:Encrypt","Action":"kms:*""#);
        assert!(message(&inner).contains(r#""Action" appears more than once"#));
        let principal = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"a","AWS":"b"}}}"#;
        assert!(check_key_policy(principal).is_err());
    }

    #[test]
    fn checks_the_top_level_elements() {
        assert_eq!(
            message("{}"),
            "The policy is missing the required Statement element."
        );
        for statement in [r#""nope""#, "1", "null", "true"] {
            assert_eq!(
                message(&format!(
                    r#"{{"Version":"2012-10-17","Statement":{statement}}}"#
                )),
                "The policy Statement must be a statement object or an array of statement objects."
            );
        }
        assert_eq!(
            message(r#"{"Statement":[],"Extra":1}"#),
            r#"The policy contains the unknown element "Extra"."#
        );
        // Element names are case-sensitive.
        assert!(check_key_policy(r#"{"statement":[]}"#).is_err());
        assert_eq!(
            message(r#"{"Version":"2020-01-01","Statement":[]}"#),
            r#"The policy Version "2020-01-01" is not supported; use 2012-10-17 (or 2008-10-17)."#
        );
        assert!(check_key_policy(r#"{"Version":20121017,"Statement":[]}"#).is_err());
        assert!(check_key_policy(r#"{"Id":1,"Statement":[]}"#).is_err());
    }

    #[test]
    fn every_statement_is_an_object_of_known_elements() {
        assert_eq!(
            message(&format!(
                r#"{{"Statement":[{{"Effect":"Allow","Principal":{ROOT},"Action":"kms:*"}},"stray"]}}"#
            )),
            "The policy contains a statement that is not a JSON object."
        );
        assert_eq!(
            message(&with_statement(r#","Actions":"kms:*""#)),
            r#"The policy statement contains the unknown element "Actions"."#
        );
    }

    #[test]
    fn effect_is_allow_or_deny() {
        assert_eq!(
            message(&format!(r#"{{"Statement":[{{"Principal":{ROOT}}}]}}"#)),
            "Policy contains a statement without the required Effect element."
        );
        for effect in [r#""allow""#, r#""Permit""#, "true", "null"] {
            let policy = format!(r#"{{"Statement":[{{"Effect":{effect},"Principal":{ROOT}}}]}}"#);
            assert!(
                message(&policy).starts_with("Policy contains a statement with an invalid Effect"),
                "{policy}"
            );
        }
    }

    #[test]
    fn every_statement_names_valid_principals() {
        let no_principal =
            r#"{"Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]}"#;
        assert_eq!(
            message(no_principal),
            "Policy contains a statement with no principal."
        );
        let both = format!(
            r#"{{"Statement":{{"Effect":"Allow","Principal":"*","NotPrincipal":{ROOT}}}}}"#
        );
        assert_eq!(
            message(&both),
            "Policy contains a statement with both Principal and NotPrincipal; use one of them."
        );
        for principal in [
            r#""arn:aws:iam::111122223333:root""#,
            "{}",
            r#"{"Aws":"arn:aws:iam::111122223333:root"}"#,
            r#"{"AWS":[]}"#,
            r#"{"AWS":""}"#,
            r#"{"AWS":[1]}"#,
            r#"{"AWS":{"x":"y"}}"#,
            "[]",
            "null",
        ] {
            let policy = format!(r#"{{"Statement":{{"Effect":"Allow","Principal":{principal}}}}}"#);
            assert_eq!(
                message(&policy),
                "Policy contains a statement with one or more invalid principals.",
                "{policy}"
            );
        }
    }

    #[test]
    fn actions_resources_and_conditions_have_their_shapes() {
        assert_eq!(
            message(&with_statement(
                r#","Action":"kms:*","NotAction":"kms:Decrypt""#
            )),
            "Policy contains a statement with both Action and NotAction; use one of them."
        );
        assert_eq!(
            message(&with_statement(r#","Resource":"*","NotResource":"*""#)),
            "Policy contains a statement with both Resource and NotResource; use one of them."
        );
        assert_eq!(
            message(&with_statement(r#","NotAction":7"#)),
            "The NotAction element of a policy statement must be a string or an array of strings."
        );
        assert!(check_key_policy(&with_statement(r#","Action":["kms:*",1]"#)).is_err());
        assert!(check_key_policy(&with_statement(r#","Resource":{"a":"b"}"#)).is_err());
        for condition in [
            r#""StringEquals""#,
            r#"{"StringEquals":"x"}"#,
            r#"{"StringEquals":{"k":{"nested":"x"}}}"#,
            r#"{"StringEquals":{"k":[null]}}"#,
        ] {
            let policy = with_statement(&format!(r#","Condition":{condition}"#));
            assert!(
                message(&policy).starts_with("The Condition element"),
                "{policy}"
            );
        }
    }

    #[test]
    fn statement_ids_are_unique() {
        let policy = format!(
            r#"{{"Statement":[{{"Sid":"x","Effect":"Allow","Principal":{ROOT}}},{{"Sid":"x","Effect":"Deny","Principal":{ROOT}}}]}}"#
        );
        assert_eq!(
            message(&policy),
            "Statement IDs (SID) in a single policy must be unique."
        );
        assert!(check_key_policy(&with_statement(r#","Sid":5"#)).is_err());
    }
}
