//! The `Condition` element: operators, their parsing and their evaluation.
//!
//! Rules implemented (IAM's "Condition operators" and "multivalued context keys" pages):
//! - Several operators in a block, several keys under one operator: all must hold (AND).
//! - Several values for one key: any may match (OR). For the negated operators
//!   (`StringNotEquals`, `StringNotLike`, `NumericNotEquals`, `DateNotEquals`, `NotIpAddress`,
//!   `ArnNotEquals`, `ArnNotLike`, `StringNotEqualsIgnoreCase`) the condition holds when the
//!   request value matches none of the values (NOT any).
//! - Condition-key names are case-insensitive; values are case-sensitive except with the
//!   `...IgnoreCase` operators. `Bool` compares `true`/`false` case-insensitively.
//! - A key missing from the request: positive operators are false, negated operators true,
//!   `...IfExists` operators true, `Null: true` true.
//! - `ForAnyValue:` holds when at least one request value satisfies the operator; with a missing
//!   key or an empty set it is false. `ForAllValues:` holds when every request value satisfies
//!   the operator, and so also with a missing key or an empty set. `...IfExists` makes a missing
//!   key true for both.
//! - Without a set operator, a multi-valued key behaves as "any request value matches any
//!   policy value" (negated: none does).
//! - `Null` considers a key null when it is missing or its set is empty.
//! - `ArnEquals` and `ArnLike` are the same operator: each of the six colon-separated parts is
//!   matched separately with `*`/`?` (a wildcard does not cross a colon, except in the last
//!   part, the resource, which may itself contain colons).

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ipnet::IpNet;
use serde_json::Value;
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

use super::PolicyError;
use super::context::Context;
use super::template::Template;
use super::wildcard::{self, Tok};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn holds<T: PartialOrd>(self, request: T, policy: T) -> bool {
        match self {
            Cmp::Eq => request == policy,
            Cmp::Lt => request < policy,
            Cmp::Le => request <= policy,
            Cmp::Gt => request > policy,
            Cmp::Ge => request >= policy,
        }
    }
}

/// The comparison an operator makes, before negation and set qualifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    String,
    StringIgnoreCase,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    ForAllValues,
    ForAnyValue,
}

/// A parsed operator such as `ForAnyValue:StringNotLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    pub base: Base,
    pub negated: bool,
    pub if_exists: bool,
    pub set: Option<SetOp>,
}

const OPERATORS: &[(&str, Base, bool)] = &[
    ("StringEquals", Base::String, false),
    ("StringNotEquals", Base::String, true),
    ("StringEqualsIgnoreCase", Base::StringIgnoreCase, false),
    ("StringNotEqualsIgnoreCase", Base::StringIgnoreCase, true),
    ("StringLike", Base::StringLike, false),
    ("StringNotLike", Base::StringLike, true),
    ("NumericEquals", Base::Numeric(Cmp::Eq), false),
    ("NumericNotEquals", Base::Numeric(Cmp::Eq), true),
    ("NumericLessThan", Base::Numeric(Cmp::Lt), false),
    ("NumericLessThanEquals", Base::Numeric(Cmp::Le), false),
    ("NumericGreaterThan", Base::Numeric(Cmp::Gt), false),
    ("NumericGreaterThanEquals", Base::Numeric(Cmp::Ge), false),
    ("DateEquals", Base::Date(Cmp::Eq), false),
    ("DateNotEquals", Base::Date(Cmp::Eq), true),
    ("DateLessThan", Base::Date(Cmp::Lt), false),
    ("DateLessThanEquals", Base::Date(Cmp::Le), false),
    ("DateGreaterThan", Base::Date(Cmp::Gt), false),
    ("DateGreaterThanEquals", Base::Date(Cmp::Ge), false),
    ("Bool", Base::Bool, false),
    ("BinaryEquals", Base::Binary, false),
    ("IpAddress", Base::Ip, false),
    ("NotIpAddress", Base::Ip, true),
    ("ArnEquals", Base::Arn, false),
    ("ArnLike", Base::Arn, false),
    ("ArnNotEquals", Base::Arn, true),
    ("ArnNotLike", Base::Arn, true),
    ("Null", Base::Null, false),
];

impl Operator {
    /// Parse an operator name (case-sensitive, as IAM's grammar spells them).
    pub fn parse(name: &str) -> Result<Self, PolicyError> {
        let unknown = || PolicyError::new(format!("Unknown condition operator: {name}"));
        let (set, rest) = if let Some(r) = name.strip_prefix("ForAllValues:") {
            (Some(SetOp::ForAllValues), r)
        } else if let Some(r) = name.strip_prefix("ForAnyValue:") {
            (Some(SetOp::ForAnyValue), r)
        } else {
            (None, name)
        };
        let (if_exists, rest) = match rest.strip_suffix("IfExists") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let &(_, base, negated) = OPERATORS
            .iter()
            .find(|(n, _, _)| *n == rest)
            .ok_or_else(unknown)?;
        if base == Base::Null && (if_exists || set.is_some()) {
            return Err(unknown());
        }
        Ok(Self {
            base,
            negated,
            if_exists,
            set,
        })
    }
}

/// A policy-side value, converted once at parse time to what its operator compares.
#[derive(Debug, Clone, PartialEq)]
pub enum CondValue {
    Str(Template),
    Num(f64),
    /// Unix time in nanoseconds.
    Date(i128),
    Bool(bool),
    Binary(Vec<u8>),
    Cidr(IpNet),
}

/// One `operator: { key: values }` test.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionTest {
    pub operator_name: String,
    pub operator: Operator,
    /// Lowercase key name.
    pub key: String,
    pub values: Vec<CondValue>,
}

/// A statement's whole `Condition` block (all tests must hold).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Condition {
    pub tests: Vec<ConditionTest>,
}

impl Condition {
    pub fn parse(v: &Value, variables: bool) -> Result<Self, PolicyError> {
        let block = v
            .as_object()
            .ok_or_else(|| PolicyError::new("Condition must be an object"))?;
        let mut tests = Vec::new();
        for (op_name, keys) in block {
            let operator = Operator::parse(op_name)?;
            let keys = keys.as_object().ok_or_else(|| {
                PolicyError::new(format!(
                    "Condition operator {op_name} must map condition keys to values"
                ))
            })?;
            for (key, values) in keys {
                if key.is_empty() {
                    return Err(PolicyError::new(format!(
                        "Condition operator {op_name} has an empty condition key"
                    )));
                }
                let raw = scalar_list(values).ok_or_else(|| {
                    PolicyError::new(format!(
                        "Condition {op_name} {key}: values must be a string, number, boolean or an array of them"
                    ))
                })?;
                let values = raw
                    .iter()
                    .map(|s| convert(operator.base, s, variables))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        PolicyError::new(format!(
                            "Condition {op_name} {key}: invalid value for this operator"
                        ))
                    })?;
                tests.push(ConditionTest {
                    operator_name: op_name.clone(),
                    operator,
                    key: key.to_ascii_lowercase(),
                    values,
                });
            }
        }
        Ok(Self { tests })
    }

    pub fn holds(&self, ctx: &Context) -> bool {
        self.tests.iter().all(|t| t.holds(ctx))
    }
}

/// Strings of a scalar or an array of scalars (numbers and booleans as JSON spells them).
fn scalar_list(v: &Value) -> Option<Vec<String>> {
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    match v {
        Value::Array(a) => a.iter().map(scalar).collect(),
        v => scalar(v).map(|s| vec![s]),
    }
}

fn convert(base: Base, s: &str, variables: bool) -> Option<CondValue> {
    Some(match base {
        Base::String | Base::StringIgnoreCase | Base::StringLike | Base::Arn => {
            CondValue::Str(Template::parse(s, variables))
        }
        Base::Numeric(_) => CondValue::Num(parse_number(s)?),
        Base::Date(_) => CondValue::Date(parse_date(s)?),
        Base::Bool | Base::Null => CondValue::Bool(parse_bool(s)?),
        Base::Binary => CondValue::Binary(B64.decode(s).ok()?),
        Base::Ip => CondValue::Cidr(parse_cidr(s)?),
    })
}

fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// ISO 8601 (with or without offset, or a date alone, read as UTC) or epoch seconds.
pub fn parse_date(s: &str) -> Option<i128> {
    let s = s.trim();
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        // Epoch seconds.
        return s
            .parse::<i64>()
            .ok()
            .map(|secs| secs as i128 * 1_000_000_000);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp_nanos());
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(t.unix_timestamp_nanos());
    }
    if let Ok(t) = PrimitiveDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(t.assume_utc().unix_timestamp_nanos());
    }
    if let Ok(d) = Date::parse(s, format_description!("[year]-[month]-[day]")) {
        return Some(d.midnight().assume_utc().unix_timestamp_nanos());
    }
    None
}

fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

impl ConditionTest {
    pub fn holds(&self, ctx: &Context) -> bool {
        let op = self.operator;
        let request = ctx.get(&self.key);
        if op.base == Base::Null {
            let is_null = request.is_none_or(|v| v.is_empty());
            return self
                .values
                .iter()
                .any(|v| matches!(v, CondValue::Bool(b) if *b == is_null));
        }
        let sat = |r: &String| self.matches_any(r, ctx) != op.negated;
        match (op.set, request) {
            (None, None) => op.if_exists || op.negated,
            (None, Some(rs)) => {
                let any = rs.iter().any(|r| self.matches_any(r, ctx));
                any != op.negated
            }
            (Some(SetOp::ForAnyValue), None) => op.if_exists,
            (Some(SetOp::ForAnyValue), Some(rs)) => rs.iter().any(sat),
            (Some(SetOp::ForAllValues), None) => true,
            (Some(SetOp::ForAllValues), Some(rs)) => rs.iter().all(sat),
        }
    }

    /// Whether the request value matches at least one policy value (before negation).
    fn matches_any(&self, request: &str, ctx: &Context) -> bool {
        let base = self.operator.base;
        self.values
            .iter()
            .any(|v| value_matches(base, v, request, ctx))
    }
}

fn value_matches(base: Base, policy: &CondValue, request: &str, ctx: &Context) -> bool {
    match (base, policy) {
        (Base::String, CondValue::Str(t)) => t.resolve(ctx).is_some_and(|p| *p == *request),
        (Base::StringIgnoreCase, CondValue::Str(t)) => t
            .resolve(ctx)
            .is_some_and(|p| p.to_lowercase() == request.to_lowercase()),
        (Base::StringLike, CondValue::Str(t)) => t.matches_wild(ctx, request),
        (Base::Arn, CondValue::Str(t)) => t.pattern(ctx).is_some_and(|p| arn_like(&p, request)),
        (Base::Numeric(cmp), CondValue::Num(p)) => {
            parse_number(request).is_some_and(|r| cmp.holds(r, *p))
        }
        (Base::Date(cmp), CondValue::Date(p)) => {
            parse_date(request).is_some_and(|r| cmp.holds(r, *p))
        }
        (Base::Bool, CondValue::Bool(p)) => parse_bool(request) == Some(*p),
        (Base::Binary, CondValue::Binary(p)) => B64.decode(request).is_ok_and(|r| r == *p),
        (Base::Ip, CondValue::Cidr(net)) => request
            .trim()
            .parse::<IpAddr>()
            .is_ok_and(|ip| net.contains(&ip)),
        _ => false,
    }
}

/// ARN matching part by part (`arn:partition:service:region:account:resource`).
fn arn_like(pattern: &[Tok], arn: &str) -> bool {
    let parts: Vec<&[Tok]> = pattern.splitn(6, |t| *t == Tok::Char(':')).collect();
    if parts.len() < 6 {
        // Not an ARN-shaped pattern (e.g. a bare `*`): match the whole string.
        return wildcard::matches(pattern, arn);
    }
    let texts: Vec<&str> = arn.splitn(6, ':').collect();
    texts.len() == 6
        && parts
            .iter()
            .zip(&texts)
            .all(|(p, t)| wildcard::matches(p, t))
}
