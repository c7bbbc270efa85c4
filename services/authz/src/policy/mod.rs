//! The IAM policy language and AWS KMS's authorization decision: a pure library (no I/O).
//!
//! - [`Policy::parse`] / [`Policy::parse_as`] turn a JSON document into a validated tree, or a
//!   [`PolicyError`] saying what is wrong (AWS's `MalformedPolicyDocumentException`).
//! - [`Context`] holds the request's condition keys; [`Request`] is one question
//!   (principal, action, resource); [`evaluate`] combines key policy, identity policies and VPC
//!   endpoint policy into a [`Decision`] with AWS's AccessDeniedException message.
//! - [`wildcard`] is the `*`/`?` matcher; [`condition`] the condition operators and their rules.

pub mod condition;
pub mod context;
pub mod document;
pub mod eval;
pub mod template;
pub mod wildcard;

pub use context::Context;
pub use document::{
    Effect, KEY_POLICY_MAX_BYTES, Policy, PolicyKind, PrincipalId, Statement, Version,
    check_key_policy_size,
};
pub use eval::{
    AllowedAs, CROSS_ACCOUNT_ACTIONS, Decision, DenyReason, EvalDecision, LOCKOUT_MESSAGE,
    Policies, PolicyOutcome, PolicyType, Principal, Request, deny_message, evaluate,
    lockout_safety_check, works_across_accounts,
};

/// A policy document that cannot be used, with a message saying why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PolicyError {
    pub message: String,
    /// The document exceeds its size limit (rather than being malformed).
    pub too_large: bool,
}

impl PolicyError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            too_large: false,
        }
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            too_large: true,
        }
    }

    /// The AWS exception a KMS API answers with for this error.
    pub fn aws_code(&self) -> &'static str {
        if self.too_large {
            "LimitExceededException"
        } else {
            "MalformedPolicyDocumentException"
        }
    }
}

#[cfg(test)]
mod tests;
