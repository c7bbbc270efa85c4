//! The botocore service models as the contract of the JSON protocols.
//!
//! Every request body is checked against the operation's input shape before
//! anything else sees it: wrong JSON types are `SerializationException`,
//! violated constraints (required, length, range, enum) are
//! `ValidationException` with AWS's "N validation errors detected" message.
//! The same model tells which members are secrets (blobs, sensitive shapes), so
//! that audit records never carry them.

use kms_proto::error::AwsError;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// Operations and shapes by name: looked up a dozen times per request (validation, the
/// record's view of the request), so hashed with foldhash rather than SipHash; the names
/// come from the model, not from callers.
type ByName<V> = HashMap<String, V, foldhash::fast::RandomState>;

#[derive(Debug, Deserialize)]
struct RawModel {
    metadata: Metadata,
    operations: ByName<Operation>,
    shapes: ByName<Shape>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub target_prefix: Option<String>,
    pub endpoint_prefix: String,
}

#[derive(Debug, Deserialize)]
pub struct Operation {
    pub input: Option<ShapeRef>,
    pub output: Option<ShapeRef>,
}

#[derive(Debug, Deserialize)]
pub struct ShapeRef {
    pub shape: String,
}

#[derive(Debug, Deserialize)]
struct Shape {
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    members: BTreeMap<String, ShapeRef>,
    #[serde(default)]
    required: Vec<String>,
    min: Option<f64>,
    max: Option<f64>,
    #[serde(rename = "enum")]
    enum_values: Option<Vec<String>>,
    #[serde(default)]
    sensitive: bool,
    member: Option<ShapeRef>,
    key: Option<ShapeRef>,
    value: Option<ShapeRef>,
    /// `members` with their AWS (lowerCamel) names, in `members` order; filled
    /// once when the model is parsed so that no call recomputes them.
    #[serde(skip)]
    cased_members: Vec<Member>,
}

#[derive(Debug)]
struct Member {
    name: String,
    cased: String,
    shape: String,
}

pub struct Model {
    pub metadata: Metadata,
    operations: ByName<Operation>,
    shapes: ByName<Shape>,
}

/// The KMS model (botocore `kms/2014-11-01`, trimmed).
pub fn kms() -> Model {
    Model::parse(include_str!("../models/kms.json"))
}

/// The CloudTrail model (botocore `cloudtrail/2013-11-01`, trimmed).
pub fn cloudtrail() -> Model {
    Model::parse(include_str!("../models/cloudtrail.json"))
}

/// AWS's member names as they appear in validation messages and CloudTrail
/// records: Java's `Introspector.decapitalize` (`KeyId` -> `keyId`, but
/// `AWSAccountId` stays as it is).
fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match (chars.next(), name.chars().nth(1)) {
        (Some(a), Some(b)) if a.is_uppercase() && b.is_uppercase() => name.to_string(),
        (Some(c), _) => c.to_lowercase().chain(chars).collect(),
        (None, _) => String::new(),
    }
}

/// CloudTrail writes KMS timestamps in responseElements as
/// "Aug 10, 2022, 10:38:27 PM" (UTC).
fn cloudtrail_date(v: &Value) -> Option<Value> {
    let secs = v.as_f64()?;
    let t = time::OffsetDateTime::from_unix_timestamp(secs.floor() as i64).ok()?;
    let fmt = time::macros::format_description!(
        "[month repr:short] [day padding:none], [year], [hour repr:12 padding:none]:[minute]:[second] [period]"
    );
    t.format(&fmt).ok().map(Value::String)
}

fn serialization(msg: &str) -> AwsError {
    AwsError::new("SerializationException", msg)
}

impl Model {
    fn parse(json: &str) -> Model {
        // The models are compiled in; a parse failure is a build defect.
        let mut raw: RawModel = serde_json::from_str(json).expect("embedded botocore model parses");
        for shape in raw.shapes.values_mut() {
            shape.cased_members = shape
                .members
                .iter()
                .map(|(name, r)| Member {
                    name: name.clone(),
                    cased: lower_camel(name),
                    shape: r.shape.clone(),
                })
                .collect();
        }
        Model {
            metadata: raw.metadata,
            operations: raw.operations,
            shapes: raw.shapes,
        }
    }

    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operations.get(name)
    }

    /// Check `value` against the input shape of `op`.
    pub fn validate_input(&self, op: &Operation, value: &Value) -> Result<(), AwsError> {
        let Some(input) = &op.input else {
            return Ok(());
        };
        if !value.is_object() {
            return Err(serialization(
                "Start of structure or map found where not expected.",
            ));
        }
        let mut errors = Vec::new();
        self.check(&input.shape, value, Path::Root, &mut errors)?;
        if errors.is_empty() {
            return Ok(());
        }
        let n = errors.len();
        let head = if n == 1 {
            "1 validation error detected: ".to_string()
        } else {
            format!("{n} validation errors detected: ")
        };
        Err(AwsError::new(
            "ValidationException",
            format!("{head}{}", errors.join("; ")),
        ))
    }

    fn shape(&self, name: &str) -> &Shape {
        // Every reference inside a botocore model resolves.
        &self.shapes[name]
    }

    fn check(
        &self,
        shape_name: &str,
        value: &Value,
        path: Path<'_>,
        errors: &mut Vec<String>,
    ) -> Result<(), AwsError> {
        let shape = self.shape(shape_name);
        // Rendered only when a message needs it: the common, valid call allocates nothing.
        let show = || -> String {
            if shape.sensitive {
                String::new()
            } else {
                match value {
                    Value::String(s) => format!(" '{s}'"),
                    other => format!(" '{other}'"),
                }
            }
        };
        match shape.ty.as_str() {
            "structure" => {
                let obj = value.as_object().ok_or_else(|| {
                    serialization("Start of structure or map found where not expected.")
                })?;
                for req in &shape.required {
                    if obj.get(req).is_none_or(Value::is_null) {
                        errors.push(format!(
                            "Value null at '{}' failed to satisfy constraint: Member must not be null",
                            Path::Member(&path, &lower_camel(req))
                        ));
                    }
                }
                for m in &shape.cased_members {
                    if let Some(v) = obj.get(&m.name).filter(|v| !v.is_null()) {
                        self.check(&m.shape, v, Path::Member(&path, &m.cased), errors)?;
                    }
                }
            }
            "string" => {
                let s = value.as_str().ok_or_else(|| {
                    serialization(&format!(
                        "{} can not be converted to a String",
                        json_kind(value)
                    ))
                })?;
                let len = s.chars().count() as f64;
                self.check_len(shape, len, &show, path, errors);
                if let Some(values) = &shape.enum_values
                    && !values.iter().any(|e| e == s)
                {
                    errors.push(format!(
                        "Value{} at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                        show(),
                        values.join(", ")
                    ));
                }
            }
            "blob" => {
                let s = value.as_str().ok_or_else(|| {
                    serialization(&format!(
                        "{} can not be converted to a Blob",
                        json_kind(value)
                    ))
                })?;
                // Checked and measured without decoding (the request is decoded later).
                let len = kms_proto::b64::decoded_len(s)
                    .ok_or_else(|| serialization("Base64 encoded value could not be decoded."))?;
                self.check_len(shape, len as f64, &String::new, path, errors);
            }
            "integer" | "long" => {
                let n = value
                    .as_i64()
                    .filter(|_| value.is_i64() || value.is_u64())
                    .ok_or_else(|| {
                        serialization(&format!(
                            "{} can not be converted to an Integer",
                            json_kind(value)
                        ))
                    })?;
                if shape.ty == "integer" && i32::try_from(n).is_err() {
                    return Err(serialization("Numeric value out of range of int"));
                }
                if let Some(min) = shape.min
                    && (n as f64) < min
                {
                    errors.push(format!(
                        "Value '{n}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {min}"
                    ));
                }
                if let Some(max) = shape.max
                    && (n as f64) > max
                {
                    errors.push(format!(
                        "Value '{n}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {max}"
                    ));
                }
            }
            "double" | "float" if !value.is_number() => {
                return Err(serialization(&format!(
                    "{} can not be converted to a Double",
                    json_kind(value)
                )));
            }
            "boolean" if !value.is_boolean() => {
                return Err(serialization(&format!(
                    "{} can not be converted to a Boolean",
                    json_kind(value)
                )));
            }
            "timestamp" if !(value.is_number() || value.is_string()) => {
                return Err(serialization(&format!(
                    "{} can not be converted to a Timestamp",
                    json_kind(value)
                )));
            }
            "list" => {
                let items = value
                    .as_array()
                    .ok_or_else(|| serialization("Start of list found where not expected"))?;
                self.check_len(shape, items.len() as f64, &String::new, path, errors);
                if let Some(member) = &shape.member {
                    for (i, item) in items.iter().enumerate() {
                        if item.is_null() {
                            continue;
                        }
                        self.check(&member.shape, item, Path::Item(&path, i + 1), errors)?;
                    }
                }
            }
            "map" => {
                let obj = value.as_object().ok_or_else(|| {
                    serialization("Start of structure or map found where not expected.")
                })?;
                self.check_len(shape, obj.len() as f64, &String::new, path, errors);
                if let (Some(k), Some(v)) = (&shape.key, &shape.value) {
                    for (key, val) in obj {
                        self.check(&k.shape, &Value::String(key.clone()), path, errors)?;
                        if !val.is_null() {
                            self.check(&v.shape, val, Path::Key(&path, key), errors)?;
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn check_len(
        &self,
        shape: &Shape,
        len: f64,
        shown: &dyn Fn() -> String,
        path: Path<'_>,
        errors: &mut Vec<String>,
    ) {
        if let Some(min) = shape.min
            && len < min
        {
            errors.push(format!(
                "Value{} at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {min}",
                shown()
            ));
        }
        if let Some(max) = shape.max
            && len > max
        {
            errors.push(format!(
                "Value{} at '{path}' failed to satisfy constraint: Member must have length less than or equal to {max}",
                shown()
            ));
        }
    }

    /// The audit form of a request or response: member names in lowerCamel,
    /// secrets (blobs and sensitive shapes) removed. `None` for an empty result.
    pub fn audit_view(&self, shape_name: &str, value: &Value) -> Option<Value> {
        let shape = self.shapes.get(shape_name)?;
        if shape.sensitive || shape.ty == "blob" {
            return None;
        }
        match (shape.ty.as_str(), value) {
            ("structure", Value::Object(obj)) => {
                let mut out = Map::new();
                for m in &shape.cased_members {
                    if let Some(v) = obj.get(&m.name).filter(|v| !v.is_null())
                        && let Some(view) = self.audit_view(&m.shape, v)
                    {
                        out.insert(m.cased.clone(), view);
                    }
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            ("list", Value::Array(items)) => {
                let member = shape.member.as_ref()?;
                Some(Value::Array(
                    items
                        .iter()
                        .filter_map(|i| self.audit_view(&member.shape, i))
                        .collect(),
                ))
            }
            ("map", Value::Object(obj)) => {
                let v = shape.value.as_ref()?;
                let mut out = Map::new();
                for (key, val) in obj {
                    if let Some(view) = self.audit_view(&v.shape, val) {
                        out.insert(key.clone(), view);
                    }
                }
                Some(Value::Object(out))
            }
            ("timestamp", v) => cloudtrail_date(v).or_else(|| Some(v.clone())),
            _ => Some(value.clone()),
        }
    }
}

/// Where a value sits in a request, as validation messages name it
/// (`keyId`, `grantTokens.1.member`, `encryptionContext.Dept`); rendered only
/// into a message.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    /// A structure member, by its AWS (lowerCamel) name.
    Member(&'a Path<'a>, &'a str),
    /// A list item, numbered from 1.
    Item(&'a Path<'a>, usize),
    /// A map value, by its key.
    Key(&'a Path<'a>, &'a str),
}

impl Path<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Path::Root => true,
            Path::Member(p, name) => p.is_empty() && name.is_empty(),
            Path::Item(..) | Path::Key(..) => false,
        }
    }
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Member(p, name) if p.is_empty() => f.write_str(name),
            Path::Member(p, name) => write!(f, "{p}.{name}"),
            Path::Item(p, i) => write!(f, "{p}.{i}.member"),
            Path::Key(p, key) => write!(f, "{p}.{key}"),
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "STRING_VALUE",
        Value::Number(n) if n.is_f64() => "DECIMAL_VALUE",
        Value::Number(_) => "NUMBER_VALUE",
        Value::Bool(_) => "BOOLEAN_VALUE",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
        Value::Null => "NULL_VALUE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn validate(op: &str, v: Value) -> Result<(), AwsError> {
        let m = kms();
        m.validate_input(m.operation(op).unwrap(), &v)
    }

    #[test]
    fn valid_encrypt_passes() {
        validate(
            "Encrypt",
            json!({"KeyId": "alias/x", "Plaintext": "aGVsbG8="}),
        )
        .unwrap();
    }

    #[test]
    fn missing_required_member_is_a_validation_error() {
        let e = validate("Encrypt", json!({"KeyId": "alias/x"})).unwrap_err();
        assert_eq!(e.code, "ValidationException");
        assert_eq!(
            e.message,
            "1 validation error detected: Value null at 'plaintext' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn wrong_types_are_serialization_errors() {
        let e = validate("Encrypt", json!({"KeyId": 5, "Plaintext": "aGk="})).unwrap_err();
        assert_eq!(e.code, "SerializationException");
        let e = validate("GenerateRandom", json!({"NumberOfBytes": "x"})).unwrap_err();
        assert_eq!(e.code, "SerializationException");
        let e = validate("Encrypt", json!({"KeyId": "k", "Plaintext": "!!"})).unwrap_err();
        assert_eq!(e.code, "SerializationException");
    }

    #[test]
    fn limits_and_enums_are_enforced_with_aws_messages() {
        let big = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [0u8; 4097]);
        let e = validate("Encrypt", json!({"KeyId": "k", "Plaintext": big})).unwrap_err();
        assert!(e.message.contains("Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"), "{}", e.message);
        let e = validate(
            "GenerateDataKey",
            json!({"KeyId": "k", "KeySpec": "AES_512", "NumberOfBytes": 0}),
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("2 validation errors detected: "),
            "{}",
            e.message
        );
        assert!(
            e.message
                .contains("Member must satisfy enum value set: [AES_256, AES_128]")
        );
    }

    #[test]
    fn nested_values_are_named_by_their_path() {
        let e = validate(
            "CreateGrant",
            json!({"KeyId": "k", "GranteePrincipal": "p", "Operations": ["Encrypt", "Nope"]}),
        )
        .unwrap_err();
        assert!(
            e.message.starts_with(
                "1 validation error detected: Value 'Nope' at 'operations.2.member' failed to satisfy constraint: Member must satisfy enum value set: ["
            ),
            "{}",
            e.message
        );
        let e = validate(
            "TagResource",
            json!({"KeyId": "k", "Tags": [{"TagKey": "a", "TagValue": "b"}, {"TagKey": ""}]}),
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "2 validation errors detected: Value null at 'tags.2.member.tagValue' failed to satisfy constraint: Member must not be null; Value '' at 'tags.2.member.tagKey' failed to satisfy constraint: Member must have length greater than or equal to 1"
        );
    }

    #[test]
    fn audit_view_writes_dates_and_names_as_cloudtrail_does() {
        let m = kms();
        let v = m
            .audit_view(
                "CreateKeyResponse",
                &json!({"KeyMetadata": {"AWSAccountId": "111122223333", "KeyId": "k", "CreationDate": 1_660_171_107.5}}),
            )
            .unwrap();
        assert_eq!(
            v,
            json!({"keyMetadata": {"AWSAccountId": "111122223333", "keyId": "k", "creationDate": "Aug 10, 2022, 10:38:27 PM"}})
        );
    }

    #[test]
    fn audit_view_drops_secrets_and_camel_cases() {
        let m = kms();
        let v = m
            .audit_view(
                "EncryptRequest",
                &json!({"KeyId": "k", "Plaintext": "aGk=", "EncryptionContext": {"Dept": "A"}}),
            )
            .unwrap();
        assert_eq!(v, json!({"keyId": "k", "encryptionContext": {"Dept": "A"}}));
    }
}
