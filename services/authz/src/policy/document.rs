//! Policy documents: the JSON grammar, validated into a typed tree.

use serde_json::{Map, Value};

use super::PolicyError;
use super::condition::Condition;
use super::template::Template;
use super::wildcard::{self, Tok};

/// Maximum size of a key policy document, in bytes (AWS KMS quota: 32 KB).
pub const KEY_POLICY_MAX_BYTES: usize = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `2012-10-17`: policy variables are substituted.
    V2012_10_17,
    /// `2008-10-17`, also what a document without `Version` gets: no policy variables.
    V2008_10_17,
}

/// Which kind of policy a document is; decides whether `Principal` is required or forbidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// A KMS key policy (resource-based): Principal required, at most 32 KB.
    KeyPolicy,
    /// A VPC endpoint policy (resource-based for the endpoint): Principal required.
    EndpointPolicy,
    /// An IAM identity-based policy: no Principal / NotPrincipal.
    Identity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One entry of `Principal` / `NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalId {
    /// `"*"` or `{"AWS": "*"}`: every principal.
    Any,
    /// A 12-digit account id or `arn:aws:iam::ID:root`: every principal of that account.
    Account(String),
    /// An IAM user, role, assumed-role session or federated user ARN.
    Arn(String),
    /// `{"Service": "..."}`: an AWS service principal (never an IAM caller here).
    Service(String),
    /// `{"Federated": "..."}` or `{"CanonicalUser": "..."}`: never an IAM caller here.
    Other(String),
}

/// A list of strings matched with wildcards (Action / Resource and their Not forms).
#[derive(Debug, Clone, PartialEq)]
pub struct ActionList(pub Vec<Vec<Tok>>);

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceList(pub Vec<Template>);

#[derive(Debug, Clone, PartialEq)]
pub enum Principals {
    /// `Principal`: the statement applies to these.
    Only(Vec<PrincipalId>),
    /// `NotPrincipal`: the statement applies to everyone but these.
    AllBut(Vec<PrincipalId>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Actions {
    Only(ActionList),
    AllBut(ActionList),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Resources {
    Only(ResourceList),
    AllBut(ResourceList),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    /// `None` in identity policies (the statement is about the caller).
    pub principals: Option<Principals>,
    pub actions: Actions,
    pub resources: Resources,
    pub condition: Condition,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub version: Version,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

const POLICY_ELEMENTS: &[&str] = &["Version", "Id", "Statement"];
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

impl Policy {
    /// Parse any policy document (Principal neither required nor forbidden).
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let StrictJson(value) = serde_json::from_str(text)
            .map_err(|e| PolicyError::new(format!("This policy contains invalid Json: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| PolicyError::new("The policy document must be a JSON object"))?;
        check_elements(obj, POLICY_ELEMENTS, "policy")?;
        let version = match obj.get("Version") {
            None => Version::V2008_10_17,
            Some(Value::String(v)) if v == "2012-10-17" => Version::V2012_10_17,
            Some(Value::String(v)) if v == "2008-10-17" => Version::V2008_10_17,
            Some(v) => {
                return Err(PolicyError::new(format!(
                    "The policy has an invalid Version {v}: use 2012-10-17 or 2008-10-17"
                )));
            }
        };
        let id = match obj.get("Id") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(PolicyError::new("Id must be a string")),
        };
        let statements = match obj.get("Statement") {
            None => {
                return Err(PolicyError::new(
                    "The policy is missing the Statement element",
                ));
            }
            Some(Value::Array(a)) => a.iter().collect::<Vec<_>>(),
            Some(v @ Value::Object(_)) => vec![v],
            Some(_) => {
                return Err(PolicyError::new(
                    "Statement must be an object or an array of objects",
                ));
            }
        };
        let variables = version == Version::V2012_10_17;
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(i, s)| Statement::parse(s, variables, i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            version,
            id,
            statements,
        })
    }

    /// Parse a document of a given kind, enforcing that kind's rules (Principal presence,
    /// size limit of key policies).
    pub fn parse_as(text: &str, kind: PolicyKind) -> Result<Self, PolicyError> {
        if kind == PolicyKind::KeyPolicy {
            check_key_policy_size(text)?;
        }
        let policy = Self::parse(text)?;
        for (i, s) in policy.statements.iter().enumerate() {
            let name = statement_name(s.sid.as_deref(), i);
            match (kind, &s.principals) {
                (PolicyKind::Identity, Some(_)) => {
                    return Err(PolicyError::new(format!(
                        "Statement {name}: identity-based policies must not have Principal or NotPrincipal"
                    )));
                }
                (PolicyKind::KeyPolicy | PolicyKind::EndpointPolicy, None) => {
                    return Err(PolicyError::new(format!(
                        "Statement {name}: Principal or NotPrincipal is required"
                    )));
                }
                _ => {}
            }
        }
        Ok(policy)
    }
}

/// Refuse key policies beyond 32 KB (before parsing them).
pub fn check_key_policy_size(text: &str) -> Result<(), PolicyError> {
    if text.len() > KEY_POLICY_MAX_BYTES {
        return Err(PolicyError::too_large(format!(
            "The key policy is {} bytes; the maximum size is {KEY_POLICY_MAX_BYTES} bytes",
            text.len()
        )));
    }
    Ok(())
}

fn statement_name(sid: Option<&str>, index: usize) -> String {
    match sid {
        Some(s) if !s.is_empty() => format!("\"{s}\""),
        _ => format!("#{}", index + 1),
    }
}

fn check_elements(obj: &Map<String, Value>, known: &[&str], what: &str) -> Result<(), PolicyError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(PolicyError::new(format!(
            "The {what} has an unknown element: {k}"
        ))),
        None => Ok(()),
    }
}

/// A string or a non-empty array of strings.
fn string_list<'a>(v: &'a Value, what: &str) -> Result<Vec<&'a str>, PolicyError> {
    let err = || PolicyError::new(format!("{what} must be a string or an array of strings"));
    match v {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(a) if !a.is_empty() => a.iter().map(|x| x.as_str().ok_or_else(err)).collect(),
        Value::Array(_) => Err(PolicyError::new(format!("{what} must not be empty"))),
        _ => Err(err()),
    }
}

impl Statement {
    fn parse(v: &Value, variables: bool, index: usize) -> Result<Self, PolicyError> {
        let obj = v.as_object().ok_or_else(|| {
            PolicyError::new(format!("Statement #{} must be an object", index + 1))
        })?;
        let sid = match obj.get("Sid") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(PolicyError::new(format!(
                    "Statement #{}: Sid must be a string",
                    index + 1
                )));
            }
        };
        let name = statement_name(sid.as_deref(), index);
        let ctx = |e: PolicyError| PolicyError::new(format!("Statement {name}: {}", e.message));
        check_elements(obj, STATEMENT_ELEMENTS, "statement").map_err(ctx)?;
        let effect = match obj.get("Effect") {
            Some(Value::String(e)) if e == "Allow" => Effect::Allow,
            Some(Value::String(e)) if e == "Deny" => Effect::Deny,
            Some(_) => return Err(ctx(PolicyError::new("Effect must be Allow or Deny"))),
            None => return Err(ctx(PolicyError::new("Effect is missing"))),
        };
        let principals = match (obj.get("Principal"), obj.get("NotPrincipal")) {
            (Some(_), Some(_)) => {
                return Err(ctx(PolicyError::new(
                    "Principal and NotPrincipal cannot both be present",
                )));
            }
            (Some(p), None) => Some(Principals::Only(parse_principal(p).map_err(ctx)?)),
            (None, Some(p)) => Some(Principals::AllBut(parse_principal(p).map_err(ctx)?)),
            (None, None) => None,
        };
        let actions = match (obj.get("Action"), obj.get("NotAction")) {
            (Some(_), Some(_)) => {
                return Err(ctx(PolicyError::new(
                    "Action and NotAction cannot both be present",
                )));
            }
            (Some(a), None) => Actions::Only(parse_actions(a, "Action").map_err(ctx)?),
            (None, Some(a)) => Actions::AllBut(parse_actions(a, "NotAction").map_err(ctx)?),
            (None, None) => return Err(ctx(PolicyError::new("Action or NotAction is required"))),
        };
        let resources = match (obj.get("Resource"), obj.get("NotResource")) {
            (Some(_), Some(_)) => {
                return Err(ctx(PolicyError::new(
                    "Resource and NotResource cannot both be present",
                )));
            }
            (Some(r), None) => {
                Resources::Only(parse_resources(r, "Resource", variables).map_err(ctx)?)
            }
            (None, Some(r)) => {
                Resources::AllBut(parse_resources(r, "NotResource", variables).map_err(ctx)?)
            }
            (None, None) => {
                return Err(ctx(PolicyError::new("Resource or NotResource is required")));
            }
        };
        let condition = match obj.get("Condition") {
            None => Condition::default(),
            Some(c) => Condition::parse(c, variables).map_err(ctx)?,
        };
        Ok(Self {
            sid,
            effect,
            principals,
            actions,
            resources,
            condition,
        })
    }
}

fn parse_actions(v: &Value, what: &str) -> Result<ActionList, PolicyError> {
    let list = string_list(v, what)?;
    let mut out = Vec::with_capacity(list.len());
    for a in list {
        if a != "*" && !a.contains(':') {
            return Err(PolicyError::new(format!(
                "{what} {a:?} is invalid: actions are written service:Action, e.g. kms:Encrypt"
            )));
        }
        // Action names are case-insensitive: patterns and requests are both lowered.
        out.push(wildcard::compile(&a.to_lowercase()));
    }
    Ok(ActionList(out))
}

fn parse_resources(v: &Value, what: &str, variables: bool) -> Result<ResourceList, PolicyError> {
    let list = string_list(v, what)?;
    Ok(ResourceList(
        list.into_iter()
            .map(|r| Template::parse(r, variables))
            .collect(),
    ))
}

const INVALID_PRINCIPAL: &str = "Policy contains a statement with one or more invalid principals.";

fn parse_principal(v: &Value) -> Result<Vec<PrincipalId>, PolicyError> {
    match v {
        Value::String(s) if s == "*" => Ok(vec![PrincipalId::Any]),
        Value::Object(map) if !map.is_empty() => {
            let mut out = Vec::new();
            for (kind, ids) in map {
                let ids = string_list(ids, &format!("Principal {kind}"))?;
                for id in ids {
                    out.push(match kind.as_str() {
                        "AWS" => aws_principal(id)?,
                        "Service" if !id.is_empty() => PrincipalId::Service(id.to_owned()),
                        "Federated" | "CanonicalUser" if !id.is_empty() => {
                            PrincipalId::Other(id.to_owned())
                        }
                        _ => return Err(PolicyError::new(INVALID_PRINCIPAL)),
                    });
                }
            }
            Ok(out)
        }
        _ => Err(PolicyError::new(INVALID_PRINCIPAL)),
    }
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn aws_principal(id: &str) -> Result<PrincipalId, PolicyError> {
    if id == "*" {
        return Ok(PrincipalId::Any);
    }
    if is_account_id(id) {
        return Ok(PrincipalId::Account(id.to_owned()));
    }
    let parts: Vec<&str> = id.splitn(6, ':').collect();
    let valid = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && matches!(parts[2], "iam" | "sts")
        && parts[3].is_empty()
        && is_account_id(parts[4])
        && !parts[5].is_empty()
        && !id.contains('*')
        && !id.contains('?');
    if !valid {
        return Err(PolicyError::new(INVALID_PRINCIPAL));
    }
    if parts[2] == "iam" && parts[5] == "root" {
        return Ok(PrincipalId::Account(parts[4].to_owned()));
    }
    Ok(PrincipalId::Arn(id.to_owned()))
}

/// JSON like `serde_json::Value`, except that a duplicate key in an object is an error:
/// silently keeping the last of two `StringEquals` blocks would drop a condition.
struct StrictJson(Value);

impl<'de> serde::Deserialize<'de> for StrictJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictJson)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
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
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictJson(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictJson(v) = map.next_value()?;
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
            }
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}
