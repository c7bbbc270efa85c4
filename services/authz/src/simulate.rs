//! IAM's policy simulator (SimulatePrincipalPolicy, SimulateCustomPolicy) on the policy engine.
//!
//! The decision is [`crate::policy::evaluate`], the same function `Authorize` uses, over the
//! simulated identity's policies (inline, attached managed, and `PolicyInputList`), the
//! optional resource-based policy (which takes the key policy's place, as for a KMS key) and
//! the request context `Authorize` would build for that principal (its ARN, id, type, user
//! name and principal tags), overridden by the caller's `ContextEntries`. Which statements
//! matched comes from [`crate::policy::Policy::outcome`]; their positions are found in the
//! document text as submitted. Network keys (`aws:SourceIp`, ...) are unknown to a simulation
//! and are reported as missing context values when a statement needs them.

use std::collections::BTreeSet;

use kms_proto::authz::v1 as pb;

use crate::authorize::{CallerInfo, Origin, build_context};
use crate::error::Error;
use crate::iam::{Iam, role_arn, user_arn};
use crate::policy::{self, Context, Effect, EvalDecision, Policies, Policy, PolicyKind, Principal};

/// IAM's ContextKeyType values.
const CONTEXT_KEY_TYPES: &[&str] = &[
    "string",
    "stringList",
    "numeric",
    "numericList",
    "boolean",
    "booleanList",
    "ip",
    "ipList",
    "binary",
    "binaryList",
    "date",
    "dateList",
];

fn invalid(message: impl Into<String>) -> Error {
    Error::Iam("InvalidInput", message.into())
}

/// A policy taking part in the simulation.
struct Source {
    id: String,
    source_type: &'static str,
    policy: Policy,
    /// Start and end (line, column; 1-based) of each statement in the text.
    spans: Vec<((i32, i32), (i32, i32))>,
    /// The text lowercased (ASCII), to recover condition keys' spelling.
    text: String,
    lower: String,
}

impl Source {
    fn new(
        id: String,
        source_type: &'static str,
        text: &str,
        kind: PolicyKind,
    ) -> Result<Self, Error> {
        let policy = Policy::parse_as(text, kind)
            .map_err(|e| Error::Iam("InvalidInput", format!("{id}: {}", e.message)))?;
        Ok(Self {
            id,
            source_type,
            policy,
            spans: statement_spans(text),
            text: text.to_owned(),
            lower: text.to_ascii_lowercase(),
        })
    }

    fn statement(&self, index: usize) -> pb::SimulationStatement {
        let (start, end) = self.spans.get(index).copied().unwrap_or(((0, 0), (0, 0)));
        pb::SimulationStatement {
            source_policy_id: self.id.clone(),
            source_policy_type: self.source_type.to_owned(),
            start_position: Some(pb::SimulationPosition {
                line: start.0,
                column: start.1,
            }),
            end_position: Some(pb::SimulationPosition {
                line: end.0,
                column: end.1,
            }),
        }
    }

    /// A lowercase condition key as the document spells it.
    fn spelled(&self, key: &str) -> String {
        let quoted = format!("\"{key}\"");
        match self.lower.find(&quoted) {
            Some(i) => self.text[i + 1..i + 1 + key.len()].to_owned(),
            None => key.to_owned(),
        }
    }
}

/// Run a simulation (`policy_source_arn` empty: SimulateCustomPolicy).
pub async fn simulate(
    iam: &Iam,
    r: pb::SimulatePolicyRequest,
) -> Result<pb::SimulatePolicyResponse, Error> {
    let ctx = r.context.clone().unwrap_or_default();
    let api_caller = ctx
        .caller
        .clone()
        .filter(|c| !c.account_id.is_empty())
        .ok_or_else(|| Error::Validation(crate::authorize::NO_CALLER.into()))?;
    let account = api_caller.account_id.clone();
    if r.action_names.is_empty() {
        return Err(invalid("ActionNames must not be empty."));
    }
    for e in &r.context_entries {
        if !e.key_type.is_empty() && !CONTEXT_KEY_TYPES.contains(&e.key_type.as_str()) {
            return Err(Error::Iam(
                "ValidationError",
                format!(
                    "1 validation error detected: Value '{}' at 'contextEntries.member.contextKeyType' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                    e.key_type,
                    CONTEXT_KEY_TYPES.join(", ")
                ),
            ));
        }
        if e.key.len() < 5 || e.key.len() > 256 {
            return Err(invalid(format!("Invalid context key name: {}", e.key)));
        }
    }

    // The simulated principal and its stored policies and tags.
    let mut sources = Vec::new();
    let mut tags = Vec::new();
    let mut caller = if r.policy_source_arn.is_empty() {
        CallerInfo {
            account_id: account.clone(),
            arn: api_caller.arn.clone(),
            principal_id: api_caller.principal_id.clone(),
            principal_type: api_caller.principal_type.clone(),
            user_name: api_caller.user_name.clone(),
            role_arn: api_caller.role_arn.clone(),
        }
    } else {
        let (kind, name, path, id) = iam.principal_by_arn(&account, &r.policy_source_arn).await?;
        for p in iam.named_policies(&account, kind, &name).await? {
            sources.push(Source::new(
                p.id,
                p.source_type,
                &p.document,
                PolicyKind::Identity,
            )?);
        }
        tags = iam
            .identity_data(&account, kind, &name)
            .await?
            .tag_condition_keys();
        if kind == "user" {
            CallerInfo {
                account_id: account.clone(),
                arn: user_arn(&account, &path, &name),
                principal_id: id,
                principal_type: "IAMUser".into(),
                user_name: name,
                role_arn: String::new(),
            }
        } else {
            let arn = role_arn(&account, &path, &name);
            CallerInfo {
                account_id: account.clone(),
                arn: arn.clone(),
                principal_id: id,
                principal_type: "AssumedRole".into(),
                user_name: String::new(),
                role_arn: arn,
            }
        }
    };
    if !r.caller_arn.is_empty() {
        caller.arn = r.caller_arn.clone();
        if let Some(rest) = r.caller_arn.split(':').nth(5)
            && rest.starts_with("user/")
        {
            caller.principal_type = "IAMUser".into();
            caller.user_name = rest.rsplit('/').next().unwrap_or_default().to_owned();
            caller.role_arn.clear();
        }
    }
    for (i, text) in r.policy_input_list.iter().enumerate() {
        sources.push(Source::new(
            format!("PolicyInputList.{}", i + 1),
            "none",
            text,
            PolicyKind::Identity,
        )?);
    }
    let resource_policy = if r.resource_policy.is_empty() {
        None
    } else {
        Some(Source::new(
            "ResourcePolicy".into(),
            "resource",
            &r.resource_policy,
            PolicyKind::EndpointPolicy,
        )?)
    };
    let boundaries = r
        .permissions_boundary_policy_input_list
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Source::new(
                format!("PermissionsBoundaryPolicyInputList.{}", i + 1),
                "none",
                t,
                PolicyKind::Identity,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;

    let now = iam.clock_now();
    let origin = Origin {
        region: ctx.region.clone(),
        secure_transport: true,
        ..Default::default()
    };
    let mut context = build_context(&caller, &origin, now, &tags);
    for e in &r.context_entries {
        context.insert_multi(&e.key, e.values.iter().cloned());
    }
    let principal = Principal {
        account_id: account.clone(),
        arn: caller.arn.clone(),
        role_arn: (!caller.role_arn.is_empty()).then(|| caller.role_arn.clone()),
        // A simulation evaluates the policies it is given, whoever asks.
        is_root: false,
    };
    let resource_owner = owner_account(&r.resource_owner);

    let resources: Vec<String> = if r.resource_arns.is_empty() {
        vec!["*".into()]
    } else {
        r.resource_arns.clone()
    };
    let mut results = Vec::new();
    for action in &r.action_names {
        for resource in &resources {
            let resource_account = resource_owner.clone().or_else(|| {
                resource
                    .split(':')
                    .nth(4)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
            });
            let one = evaluate_one(
                &principal,
                action,
                resource,
                resource_account.as_deref(),
                &context,
                &sources,
                resource_policy.as_ref(),
                &boundaries,
            );
            let specific = (!r.resource_arns.is_empty()).then(|| pb::SimulationResourceResult {
                eval_resource_name: resource.clone(),
                eval_resource_decision: one.eval_decision.clone(),
                matched_statements: one.matched_statements.clone(),
                missing_context_values: one.missing_context_values.clone(),
                eval_decision_details: one.eval_decision_details.clone(),
                allowed_by_permissions_boundary: one.allowed_by_permissions_boundary,
            });
            // With a list of resources, AWS reports missing context values per resource only.
            let missing_context_values = if specific.is_some() {
                Vec::new()
            } else {
                one.missing_context_values.clone()
            };
            results.push(pb::SimulationResult {
                resource_specific_results: specific.into_iter().collect(),
                missing_context_values,
                ..one
            });
        }
    }
    Ok(pb::SimulatePolicyResponse {
        evaluation_results: results,
    })
}

/// `ResourceOwner` is an account id or an account's root ARN.
fn owner_account(owner: &str) -> Option<String> {
    if owner.is_empty() {
        return None;
    }
    Some(match owner.split(':').nth(4) {
        Some(a) if owner.starts_with("arn:") => a.to_owned(),
        _ => owner.to_owned(),
    })
}

#[allow(clippy::too_many_arguments)]
fn evaluate_one(
    principal: &Principal,
    action: &str,
    resource: &str,
    resource_account: Option<&str>,
    context: &Context,
    sources: &[Source],
    resource_policy: Option<&Source>,
    boundaries: &[Source],
) -> pb::SimulationResult {
    let req = policy::Request {
        principal,
        action,
        resource,
        resource_account,
        context,
    };
    let identity: Vec<&Policy> = sources.iter().map(|s| &s.policy).collect();
    let d = policy::evaluate(
        &req,
        &Policies {
            key_policy: resource_policy.map(|s| &s.policy),
            identity: &identity,
            endpoint: None,
        },
    );
    let mut eval = d.eval;
    let mut allowed_by_boundary = None;
    if !boundaries.is_empty() {
        let refs: Vec<&Policy> = boundaries.iter().map(|s| &s.policy).collect();
        let b = policy::evaluate(
            &req,
            &Policies {
                key_policy: None,
                identity: &refs,
                endpoint: None,
            },
        );
        allowed_by_boundary = Some(b.allowed);
        eval = match (eval, b.eval) {
            (EvalDecision::ExplicitDeny, _) | (_, EvalDecision::ExplicitDeny) => {
                EvalDecision::ExplicitDeny
            }
            (EvalDecision::Allowed, EvalDecision::Allowed) => EvalDecision::Allowed,
            _ => EvalDecision::ImplicitDeny,
        };
    }

    let action_lower = action.to_lowercase();
    let mut matched = Vec::new();
    let mut missing = BTreeSet::new();
    let all = sources
        .iter()
        .chain(resource_policy)
        .chain(boundaries.iter());
    for s in all {
        let o = s.policy.outcome(&req, &action_lower);
        for &i in &o.matched {
            let effect = s.policy.statements[i].effect;
            let report = match eval {
                EvalDecision::Allowed => effect == Effect::Allow,
                EvalDecision::ExplicitDeny => effect == Effect::Deny,
                EvalDecision::ImplicitDeny => false,
            };
            if report {
                matched.push(s.statement(i));
            }
        }
        // Condition keys a statement about this action and resource needs but the context
        // lacks.
        for st in &s.policy.statements {
            if st.condition.tests.is_empty() {
                continue;
            }
            let bare = policy::Statement {
                condition: Default::default(),
                ..st.clone()
            };
            if bare.applies(&req, &action_lower).is_none() {
                continue;
            }
            for t in &st.condition.tests {
                if context.get(&t.key).is_none() {
                    missing.insert(s.spelled(&t.key));
                }
            }
        }
    }
    pb::SimulationResult {
        eval_action_name: action.to_owned(),
        eval_resource_name: resource.to_owned(),
        eval_decision: eval.as_str().to_owned(),
        matched_statements: matched,
        missing_context_values: missing.into_iter().collect(),
        eval_decision_details: Default::default(),
        resource_specific_results: Vec::new(),
        allowed_by_permissions_boundary: allowed_by_boundary,
    }
}

/// Start and end positions (line, column; 1-based, end exclusive) of every statement of a
/// policy document: the elements of its top-level `Statement` array, or the object itself.
pub fn statement_spans(text: &str) -> Vec<((i32, i32), (i32, i32))> {
    let chars: Vec<char> = text.chars().collect();
    let mut pos = Vec::with_capacity(chars.len() + 1);
    let (mut line, mut col) = (1i32, 1i32);
    for &c in &chars {
        pos.push((line, col));
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    pos.push((line, col));
    let mut s = Scan { c: &chars, i: 0 };
    let mut out = Vec::new();
    s.ws();
    if !s.eat('{') {
        return out;
    }
    loop {
        s.ws();
        if s.peek() != Some('"') {
            break;
        }
        let key = s.string();
        s.ws();
        if !s.eat(':') {
            break;
        }
        s.ws();
        if key == "Statement" {
            match s.peek() {
                Some('[') => {
                    s.i += 1;
                    loop {
                        s.ws();
                        match s.peek() {
                            Some(']') | None => break,
                            Some(',') => s.i += 1,
                            Some(_) => {
                                let start = s.i;
                                s.value();
                                out.push((pos[start], pos[s.i.min(chars.len())]));
                            }
                        }
                    }
                }
                Some('{') => {
                    let start = s.i;
                    s.value();
                    out.push((pos[start], pos[s.i.min(chars.len())]));
                }
                _ => s.value(),
            }
            break;
        }
        s.value();
        s.ws();
        if !s.eat(',') {
            break;
        }
    }
    out
}

struct Scan<'a> {
    c: &'a [char],
    i: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Option<char> {
        self.c.get(self.i).copied()
    }

    fn eat(&mut self, ch: char) -> bool {
        if self.peek() == Some(ch) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }

    /// A string starting at `"`; returns its raw content.
    fn string(&mut self) -> String {
        let mut out = String::new();
        self.i += 1;
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                '"' => break,
                '\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                c => out.push(c),
            }
        }
        out
    }

    fn value(&mut self) {
        match self.peek() {
            Some('"') => {
                self.string();
            }
            Some(open @ ('{' | '[')) => {
                let close = if open == '{' { '}' } else { ']' };
                self.i += 1;
                loop {
                    self.ws();
                    match self.peek() {
                        None => break,
                        Some(c) if c == close => {
                            self.i += 1;
                            break;
                        }
                        Some(',' | ':') => self.i += 1,
                        Some(_) => self.value(),
                    }
                }
            }
            _ => {
                while self
                    .peek()
                    .is_some_and(|c| !c.is_whitespace() && !",}]:".contains(c))
                {
                    self.i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_positions_in_the_document() {
        let text = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\", \"Action\": \"kms:*\", \"Resource\": \"*\"},\n    {\n      \"Effect\": \"Deny\",\n      \"Action\": \"kms:Decrypt\",\n      \"Resource\": \"*\"\n    }\n  ]\n}";
        let spans = statement_spans(text);
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0], ((4, 5), (4, 60)));
        assert_eq!(spans[1].0, (5, 5));
        assert_eq!(spans[1].1, (9, 6));
        let one = r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*"},"Version":"2012-10-17"}"#;
        assert_eq!(statement_spans(one), vec![((1, 14), (1, 62))]);
        let tricky = r#"{"Id":"a\"}[","Statement":[{"Sid":"x]}","Effect":"Allow","Action":["a:b"],"Resource":"*"}]}"#;
        let s = statement_spans(tricky);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].0, (1, 28));
        assert_eq!(s[0].1, (1, tricky.len() as i32 - 1));
    }

    #[test]
    fn owners() {
        assert_eq!(
            owner_account("arn:aws:iam::444455556666:root").as_deref(),
            Some("444455556666")
        );
        assert_eq!(
            owner_account("444455556666").as_deref(),
            Some("444455556666")
        );
        assert_eq!(owner_account(""), None);
    }
}
