//! Statement and policy evaluation, and AWS's decision logic for KMS on top of it.
//!
//! The decision, as AWS KMS makes it:
//! 1. An explicit `Deny` that applies, in the key policy, an identity policy or the VPC endpoint
//!    policy, denies (reported in that order).
//! 2. Key-resource operations need the key policy: a statement naming the caller directly (its
//!    ARN, its role for a session, or `*`) allows on its own for a caller of the key's account;
//!    a statement naming the caller's account (`ID` or `arn:aws:iam::ID:root`) delegates to
//!    IAM, so an identity policy must allow too. A caller from another account always needs
//!    both the key policy and its own identity policies.
//! 3. Operations without a key policy (CreateKey, ListKeys, alias-only checks, ...) are decided
//!    by identity policies alone.
//! 4. Account root principals are allowed everything on the identity side: they need no
//!    identity policy (the key policy still has to allow them).
//! 5. A request that came through a VPC endpoint also needs its endpoint policy to allow.

use super::context::Context;
use super::document::{Actions, Effect, Policy, PrincipalId, Principals, Resources, Statement};
use super::wildcard;

/// Who is calling, as the principal-matching rules need it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    pub account_id: String,
    /// The caller's ARN (for sessions, the assumed-role session ARN).
    pub arn: String,
    /// For assumed-role sessions: the role's ARN, which a policy may name instead.
    pub role_arn: Option<String>,
    /// The account's root user.
    pub is_root: bool,
}

impl Principal {
    pub fn root(account_id: &str) -> Self {
        Self {
            account_id: account_id.to_owned(),
            arn: format!("arn:aws:iam::{account_id}:root"),
            role_arn: None,
            is_root: true,
        }
    }

    pub fn user(account_id: &str, name: &str) -> Self {
        Self {
            account_id: account_id.to_owned(),
            arn: format!("arn:aws:iam::{account_id}:user/{name}"),
            role_arn: None,
            is_root: false,
        }
    }

    pub fn session(account_id: &str, role: &str, session: &str) -> Self {
        Self {
            account_id: account_id.to_owned(),
            arn: format!("arn:aws:sts::{account_id}:assumed-role/{role}/{session}"),
            role_arn: Some(format!("arn:aws:iam::{account_id}:role/{role}")),
            is_root: false,
        }
    }
}

/// One authorization question.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub principal: &'a Principal,
    /// `kms:Encrypt` (any case).
    pub action: &'a str,
    /// The resource ARN, or `*` for operations without a resource.
    pub resource: &'a str,
    /// The account owning the resource, when there is one.
    pub resource_account: Option<&'a str>,
    pub context: &'a Context,
}

/// The policies that apply to a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policies<'a> {
    /// The key policy; `None` for operations without a key resource.
    pub key_policy: Option<&'a Policy>,
    /// The caller's identity-based policies.
    pub identity: &'a [&'a Policy],
    /// The endpoint policy; `None` when the request did not come through an endpoint.
    pub endpoint: Option<&'a Policy>,
}

/// How an allowing statement named the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AllowedAs {
    /// Through the caller's account (delegation to IAM).
    Account,
    /// The caller itself, its role, or `*`.
    Direct,
}

/// What one policy says about a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyOutcome {
    /// Index of the first applicable Deny statement.
    pub denied_by: Option<usize>,
    /// The strongest way an applicable Allow statement named the caller.
    pub allowed_as: Option<AllowedAs>,
    /// Indexes of every applicable statement, in order (see [`Policy::statement_name`]).
    pub matched: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyType {
    ResourceBased,
    IdentityBased,
    VpcEndpoint,
}

impl PolicyType {
    fn article_name(self) -> &'static str {
        match self {
            PolicyType::ResourceBased => "a resource-based policy",
            PolicyType::IdentityBased => "an identity-based policy",
            PolicyType::VpcEndpoint => "a VPC endpoint policy",
        }
    }

    fn name(self) -> &'static str {
        match self {
            PolicyType::ResourceBased => "resource-based",
            PolicyType::IdentityBased => "identity-based",
            PolicyType::VpcEndpoint => "VPC endpoint",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// An applicable Deny statement.
    ExplicitDeny(PolicyType),
    /// No applicable Allow statement in a policy that was needed.
    NoAllow(PolicyType),
}

/// IAM's EvalDecision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalDecision {
    Allowed,
    ExplicitDeny,
    ImplicitDeny,
}

impl EvalDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            EvalDecision::Allowed => "allowed",
            EvalDecision::ExplicitDeny => "explicitDeny",
            EvalDecision::ImplicitDeny => "implicitDeny",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub eval: EvalDecision,
    pub deny_reason: Option<DenyReason>,
    /// Empty when allowed; AWS's AccessDeniedException message otherwise.
    pub message: String,
    /// Denied only because of the VPC endpoint policy (such requests are not logged).
    pub denied_by_endpoint_policy: bool,
}

/// AWS's AccessDeniedException message for a denied KMS request.
pub fn deny_message(principal_arn: &str, action: &str, resource: &str, why: DenyReason) -> String {
    match why {
        DenyReason::ExplicitDeny(t) => format!(
            "User: {principal_arn} is not authorized to perform: {action} on resource: {resource} with an explicit deny in {}",
            t.article_name()
        ),
        DenyReason::NoAllow(t) => format!(
            "User: {principal_arn} is not authorized to perform: {action} on resource: {resource} because no {} policy allows the {action} action",
            t.name()
        ),
    }
}

impl Policy {
    /// Evaluate every statement against `req` (`action_lower` is the request's action in
    /// lowercase). Principals are checked when a statement has them.
    pub fn outcome(&self, req: &Request<'_>, action_lower: &str) -> PolicyOutcome {
        self.outcome_with(req, action_lower, true)
    }

    /// [`Policy::outcome`]; `matched` is filled only when `record_matches` (the decision
    /// itself needs only `denied_by` and `allowed_as`: no list per policy and request).
    fn outcome_with(
        &self,
        req: &Request<'_>,
        action_lower: &str,
        record_matches: bool,
    ) -> PolicyOutcome {
        let mut out = PolicyOutcome::default();
        for (i, s) in self.statements.iter().enumerate() {
            let Some(as_) = s.applies(req, action_lower) else {
                continue;
            };
            match s.effect {
                Effect::Deny => {
                    out.denied_by.get_or_insert(i);
                }
                Effect::Allow => out.allowed_as = out.allowed_as.max(Some(as_)),
            }
            if record_matches {
                out.matched.push(i);
            }
        }
        out
    }

    /// A statement's Sid, or `#n` (1-based) when it has none.
    pub fn statement_name(&self, index: usize) -> String {
        match self.statements.get(index).and_then(|s| s.sid.as_deref()) {
            Some(sid) if !sid.is_empty() => sid.to_owned(),
            _ => format!("#{}", index + 1),
        }
    }
}

impl Statement {
    /// `Some(how the caller was named)` when the statement applies to the request.
    pub fn applies(&self, req: &Request<'_>, action_lower: &str) -> Option<AllowedAs> {
        let as_ = match &self.principals {
            None => AllowedAs::Direct,
            Some(p) => principal_match(p, req.principal)?,
        };
        let action_hit = |list: &super::document::ActionList| {
            list.0.iter().any(|p| wildcard::matches(p, action_lower))
        };
        let action_ok = match &self.actions {
            Actions::Only(l) => action_hit(l),
            Actions::AllBut(l) => !action_hit(l),
        };
        if !action_ok {
            return None;
        }
        let resource_hit = |list: &super::document::ResourceList| {
            list.0
                .iter()
                .any(|t| t.matches_wild(req.context, req.resource))
        };
        let resource_ok = match &self.resources {
            Resources::Only(l) => resource_hit(l),
            Resources::AllBut(l) => !resource_hit(l),
        };
        if !resource_ok || !self.condition.holds(req.context) {
            return None;
        }
        Some(as_)
    }
}

fn principal_match(p: &Principals, who: &Principal) -> Option<AllowedAs> {
    let one = |id: &PrincipalId| match id {
        PrincipalId::Any => Some(AllowedAs::Direct),
        PrincipalId::Account(a) => (*a == who.account_id).then_some(AllowedAs::Account),
        PrincipalId::Arn(a) => (*a == who.arn || who.role_arn.as_deref() == Some(a.as_str()))
            .then_some(AllowedAs::Direct),
        PrincipalId::Service(_) | PrincipalId::Other(_) => None,
    };
    match p {
        Principals::Only(ids) => ids.iter().filter_map(one).max(),
        Principals::AllBut(ids) => ids
            .iter()
            .all(|id| one(id).is_none())
            .then_some(AllowedAs::Direct),
    }
}

/// AWS's decision for a KMS request.
pub fn evaluate(req: &Request<'_>, policies: &Policies<'_>) -> Decision {
    let action_lower = req.action.to_lowercase();
    let key = policies
        .key_policy
        .map(|p| p.outcome_with(req, &action_lower, false));
    let mut identity_deny = false;
    let mut identity_allow = false;
    for p in policies.identity {
        let o = p.outcome_with(req, &action_lower, false);
        identity_deny |= o.denied_by.is_some();
        identity_allow |= o.allowed_as.is_some();
    }
    let endpoint = policies
        .endpoint
        .map(|p| p.outcome_with(req, &action_lower, false));

    let key_deny = key.as_ref().is_some_and(|o| o.denied_by.is_some());
    let endpoint_deny = endpoint.as_ref().is_some_and(|o| o.denied_by.is_some());
    // Root users may do everything their account may do: no identity policy needed.
    let identity_ok = req.principal.is_root || identity_allow;
    let same_account = req
        .resource_account
        .is_none_or(|a| a == req.principal.account_id);

    let core = match &key {
        Some(o) => match o.allowed_as {
            None => Some(DenyReason::NoAllow(PolicyType::ResourceBased)),
            Some(AllowedAs::Direct) if same_account => None,
            Some(_) if identity_ok => None,
            Some(_) => Some(DenyReason::NoAllow(PolicyType::IdentityBased)),
        },
        None if identity_ok => None,
        None => Some(DenyReason::NoAllow(PolicyType::IdentityBased)),
    };
    let endpoint_no_allow = endpoint.as_ref().is_some_and(|o| o.allowed_as.is_none());

    let reason = if key_deny {
        Some(DenyReason::ExplicitDeny(PolicyType::ResourceBased))
    } else if identity_deny {
        Some(DenyReason::ExplicitDeny(PolicyType::IdentityBased))
    } else if endpoint_deny {
        Some(DenyReason::ExplicitDeny(PolicyType::VpcEndpoint))
    } else if core.is_some() {
        core
    } else if endpoint_no_allow {
        Some(DenyReason::NoAllow(PolicyType::VpcEndpoint))
    } else {
        None
    };
    match reason {
        None => Decision {
            allowed: true,
            eval: EvalDecision::Allowed,
            deny_reason: None,
            message: String::new(),
            denied_by_endpoint_policy: false,
        },
        Some(why) => Decision {
            allowed: false,
            eval: match why {
                DenyReason::ExplicitDeny(_) => EvalDecision::ExplicitDeny,
                DenyReason::NoAllow(_) => EvalDecision::ImplicitDeny,
            },
            deny_reason: Some(why),
            message: deny_message(&req.principal.arn, req.action, req.resource, why),
            denied_by_endpoint_policy: !key_deny
                && !identity_deny
                && core.is_none()
                && (endpoint_deny || endpoint_no_allow),
        },
    }
}

/// The KMS actions that accept a key of another account (AWS's list of cross-account
/// operations); every other key operation only works on keys of the caller's own account.
pub const CROSS_ACCOUNT_ACTIONS: &[&str] = &[
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DeriveSharedSecret",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GenerateMac",
    "kms:GetKeyRotationStatus",
    "kms:GetPublicKey",
    "kms:ListGrants",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:Sign",
    "kms:Verify",
    "kms:VerifyMac",
];

/// Whether `action` (any case) may be used on a key of another account.
pub fn works_across_accounts(action: &str) -> bool {
    CROSS_ACCOUNT_ACTIONS
        .iter()
        .any(|a| a.eq_ignore_ascii_case(action))
}

/// KMS's message when a new key policy would lock its author out.
pub const LOCKOUT_MESSAGE: &str =
    "The new key policy will not allow you to update the key policy in the future.";

/// The policy lockout safety check of CreateKey and PutKeyPolicy (skipped by AWS when
/// BypassPolicyLockoutSafetyCheck is true): the principal making the request must still be
/// allowed `kms:PutKeyPolicy` on the key under `new_policy`, with its identity policies.
pub fn lockout_safety_check(
    new_policy: &Policy,
    req: &Request<'_>,
    identity: &[&Policy],
) -> Result<(), super::PolicyError> {
    let put = Request {
        action: "kms:PutKeyPolicy",
        ..*req
    };
    let d = evaluate(
        &put,
        &Policies {
            key_policy: Some(new_policy),
            identity,
            endpoint: None,
        },
    );
    if d.allowed {
        Ok(())
    } else {
        Err(super::PolicyError::new(LOCKOUT_MESSAGE))
    }
}
