//! Tests of the policy library: grammar, operators, decisions and the seed document's examples.

mod conditions;
mod decision;
mod parse;
mod seed;

use crate::policy::{
    Context, Decision, Policies, Policy, PolicyKind, Principal, Request, evaluate,
};

pub const A: &str = "111122223333";
pub const B: &str = "444455556666";
pub const KEY_A: &str =
    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// One decision to make, built up fluently; policies are parsed as their kind requires.
pub struct Q<'a> {
    principal: &'a Principal,
    action: &'a str,
    resource: String,
    key: Option<String>,
    iam: Vec<String>,
    endpoint: Option<String>,
    context: Context,
}

impl<'a> Q<'a> {
    pub fn new(principal: &'a Principal, action: &'a str) -> Self {
        Self {
            principal,
            action,
            resource: KEY_A.into(),
            key: None,
            iam: Vec::new(),
            endpoint: None,
            context: Context::new(),
        }
    }

    pub fn key(mut self, policy: &str) -> Self {
        self.key = Some(policy.into());
        self
    }

    pub fn no_key(mut self) -> Self {
        self.key = None;
        self
    }

    /// An operation without a resource (CreateKey, ListKeys...): resource `*`, no key policy.
    pub fn no_resource(mut self) -> Self {
        self.resource = "*".into();
        self.key = None;
        self
    }

    pub fn resource(mut self, arn: &str) -> Self {
        self.resource = arn.into();
        self
    }

    pub fn iam(mut self, policy: &str) -> Self {
        self.iam.push(policy.into());
        self
    }

    pub fn endpoint(mut self, policy: &str) -> Self {
        self.endpoint = Some(policy.into());
        self
    }

    pub fn context(mut self, context: Context) -> Self {
        self.context = context;
        self
    }

    pub fn run(&self) -> Decision {
        let parse = |t: &str, k| Policy::parse_as(t, k).unwrap_or_else(|e| panic!("{e}\n{t}"));
        let key = self.key.as_deref().map(|t| parse(t, PolicyKind::KeyPolicy));
        let iam: Vec<Policy> = self
            .iam
            .iter()
            .map(|t| parse(t, PolicyKind::Identity))
            .collect();
        let iam_refs: Vec<&Policy> = iam.iter().collect();
        let endpoint = self
            .endpoint
            .as_deref()
            .map(|t| parse(t, PolicyKind::EndpointPolicy));
        let resource_account = self.resource.split(':').nth(4).filter(|a| !a.is_empty());
        evaluate(
            &Request {
                principal: self.principal,
                action: self.action,
                resource: &self.resource,
                resource_account,
                context: &self.context,
            },
            &Policies {
                key_policy: key.as_ref(),
                identity: &iam_refs,
                endpoint: endpoint.as_ref(),
            },
        )
    }
}
