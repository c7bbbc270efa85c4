//! Authorization decisions.
//!
//! Interim rule, until key policies, IAM policies and grants are evaluated: a principal may
//! act only on resources of its own account (or on operations without a resource).
//! It is deliberately strict: cross-account use is refused rather than guessed at.

/// The facts the interim rule looks at.
#[derive(Debug, Clone, Default)]
pub struct AccessRequest {
    /// Account of the authenticated caller; `None` when the request carried no caller.
    pub caller_account: Option<String>,
    /// IAM action, e.g. `kms:Encrypt` (only for the record, for now).
    pub action: String,
    /// Account owning the resource; empty for operations without a resource.
    pub resource_account: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

pub const CROSS_ACCOUNT_DENY: &str =
    "interim rule: principals may use only their own account's keys";

pub fn decide(req: &AccessRequest) -> Decision {
    if req.resource_account.is_empty() {
        return Decision {
            allowed: true,
            reason: "interim rule: operation without a resource".into(),
        };
    }
    match &req.caller_account {
        Some(a) if *a == req.resource_account => Decision {
            allowed: true,
            reason: "interim rule: resource belongs to the caller's account".into(),
        },
        Some(_) => Decision {
            allowed: false,
            reason: CROSS_ACCOUNT_DENY.into(),
        },
        None => Decision {
            allowed: false,
            reason: "no authenticated caller".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(caller: Option<&str>, resource: &str) -> AccessRequest {
        AccessRequest {
            caller_account: caller.map(str::to_owned),
            action: "kms:Encrypt".into(),
            resource_account: resource.into(),
        }
    }

    #[test]
    fn interim_rule() {
        assert!(decide(&req(Some("111122223333"), "")).allowed);
        assert!(decide(&req(None, "")).allowed);
        assert!(decide(&req(Some("111122223333"), "111122223333")).allowed);
        let d = decide(&req(Some("111122223333"), "444455556666"));
        assert!(!d.allowed);
        assert_eq!(d.reason, CROSS_ACCOUNT_DENY);
        assert!(!decide(&req(None, "444455556666")).allowed);
    }
}
