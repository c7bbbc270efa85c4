//! KMS grants in authorization decisions.
//!
//! A grant allows an action on its key (the key side of the decision) when its grantee
//! principal is the caller (the caller's ARN, or for a role session the role's ARN as well),
//! the action's operation is one of the grant's operations, and its encryption context
//! constraints hold for the request. Constraints apply only to operations that take an
//! encryption context; for CreateGrant, the grant being created must have a subset of the
//! allowing grant's operations and constraints at least as strict (AWS's rules). The grant
//! never overrides an explicit deny, nor the VPC endpoint policy: [`crate::authorize`]
//! combines it with the policy evaluation.

use std::collections::HashMap;

use kms_proto::authz::v1 as pb;

/// One grant, in domain terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantInfo {
    pub grant_id: String,
    pub grantee_principal: String,
    pub operations: Vec<String>,
    /// `EncryptionContextEquals`, keys lowercased (constraint keys are case-insensitive,
    /// values case-sensitive).
    pub equals: Option<HashMap<String, String>>,
    /// `EncryptionContextSubset`, keys lowercased.
    pub subset: Option<HashMap<String, String>>,
}

/// The grants an `Authorize` call carries.
#[derive(Debug, Clone, Default)]
pub struct GrantSet {
    pub grants: Vec<GrantInfo>,
    /// CreateGrant: the grant being created.
    pub new_grant: Option<GrantInfo>,
}

fn lower_keys(m: &HashMap<String, String>) -> HashMap<String, String> {
    m.iter()
        .map(|(k, v)| (k.to_lowercase(), v.clone()))
        .collect()
}

impl From<&pb::Grant> for GrantInfo {
    fn from(g: &pb::Grant) -> Self {
        GrantInfo {
            grant_id: g.grant_id.clone(),
            grantee_principal: g.grantee_principal.clone(),
            operations: g.operations.clone(),
            equals: g
                .has_encryption_context_equals
                .then(|| lower_keys(&g.encryption_context_equals)),
            subset: g
                .has_encryption_context_subset
                .then(|| lower_keys(&g.encryption_context_subset)),
        }
    }
}

impl GrantSet {
    pub fn from_pb(r: &pb::AuthorizeRequest) -> Self {
        GrantSet {
            grants: r.grants.iter().map(GrantInfo::from).collect(),
            new_grant: r.new_grant.as_ref().map(GrantInfo::from),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    /// The first grant that allows `action` (`kms:<Op>`, any case) to `caller_arns` for a
    /// request with condition keys `condition_keys`.
    pub fn allowing(
        &self,
        caller_arns: &[&str],
        action: &str,
        condition_keys: &[(String, Vec<String>)],
    ) -> Option<&GrantInfo> {
        let op = operation_of(action)?;
        let context = request_context(condition_keys);
        self.grants.iter().find(|g| {
            caller_arns.contains(&g.grantee_principal.as_str())
                && g.operations.iter().any(|o| o == op)
                && self.constraints_hold(g, op, &context)
        })
    }

    fn constraints_hold(&self, g: &GrantInfo, op: &str, context: &HashMap<String, String>) -> bool {
        if op == "CreateGrant" {
            return match &self.new_grant {
                Some(new) => may_create(g, new),
                None => false,
            };
        }
        if !takes_encryption_context(op) {
            return true;
        }
        constraints_match(g, context)
    }
}

/// `Encrypt` of `kms:Encrypt` (the prefix in any case).
fn operation_of(action: &str) -> Option<&str> {
    let (service, op) = action.split_once(':')?;
    service.eq_ignore_ascii_case("kms").then_some(op)
}

/// Grant operations whose requests carry an encryption context.
pub fn takes_encryption_context(op: &str) -> bool {
    matches!(
        op,
        "Encrypt"
            | "Decrypt"
            | "ReEncryptFrom"
            | "ReEncryptTo"
            | "GenerateDataKey"
            | "GenerateDataKeyWithoutPlaintext"
            | "GenerateDataKeyPair"
            | "GenerateDataKeyPairWithoutPlaintext"
    )
}

/// The request's encryption context (keys lowercased) from its
/// `kms:EncryptionContext:<key>` condition keys.
fn request_context(condition_keys: &[(String, Vec<String>)]) -> HashMap<String, String> {
    const PREFIX: &str = "kms:encryptioncontext:";
    condition_keys
        .iter()
        .filter(|(k, _)| k.len() > PREFIX.len() && k[..PREFIX.len()].eq_ignore_ascii_case(PREFIX))
        .filter_map(|(k, v)| Some((k[PREFIX.len()..].to_lowercase(), v.first()?.clone())))
        .collect()
}

/// Equals: the request's context is exactly the constraint's; Subset: the request's
/// context contains every pair of the constraint's.
pub fn constraints_match(g: &GrantInfo, context: &HashMap<String, String>) -> bool {
    if let Some(eq) = &g.equals
        && eq != context
    {
        return false;
    }
    if let Some(sub) = &g.subset
        && !contains(context, sub)
    {
        return false;
    }
    true
}

fn contains(big: &HashMap<String, String>, small: &HashMap<String, String>) -> bool {
    small.iter().all(|(k, v)| big.get(k) == Some(v))
}

/// Whether a grantee of `parent` (which has the CreateGrant operation) may create `new`:
/// a subset of the parent's operations, and constraints at least as strict.
pub fn may_create(parent: &GrantInfo, new: &GrantInfo) -> bool {
    if !new.operations.iter().all(|o| parent.operations.contains(o)) {
        return false;
    }
    if let Some(eq) = &parent.equals {
        // Only the same exact context is as strict.
        if new.equals.as_ref() != Some(eq) {
            return false;
        }
    }
    if let Some(sub) = &parent.subset {
        let stricter = new.equals.as_ref().is_some_and(|e| contains(e, sub))
            || new.subset.as_ref().is_some_and(|s| contains(s, sub));
        if !stricter {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "arn:aws:iam::111122223333:user/Alice";

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn grant(ops: &[&str]) -> GrantInfo {
        GrantInfo {
            grant_id: "g".into(),
            grantee_principal: ALICE.into(),
            operations: ops.iter().map(|s| s.to_string()).collect(),
            equals: None,
            subset: None,
        }
    }

    fn ec(pairs: &[(&str, &str)]) -> Vec<(String, Vec<String>)> {
        pairs
            .iter()
            .map(|(k, v)| (format!("kms:EncryptionContext:{k}"), vec![v.to_string()]))
            .chain(std::iter::once((
                "kms:EncryptionContextKeys".to_string(),
                pairs.iter().map(|(k, _)| k.to_string()).collect(),
            )))
            .collect()
    }

    fn set(grants: Vec<GrantInfo>) -> GrantSet {
        GrantSet {
            grants,
            new_grant: None,
        }
    }

    #[test]
    fn grantee_and_operation_must_match() {
        let s = set(vec![grant(&["Encrypt", "Decrypt"])]);
        assert!(s.allowing(&[ALICE], "kms:Encrypt", &[]).is_some());
        assert!(s.allowing(&[ALICE], "KMS:Decrypt", &[]).is_some());
        assert!(s.allowing(&[ALICE], "kms:GenerateDataKey", &[]).is_none());
        assert!(
            s.allowing(&[ALICE], "kms:encrypt", &[]).is_none(),
            "operation names are exact"
        );
        assert!(
            s.allowing(&["arn:aws:iam::111122223333:user/Bob"], "kms:Encrypt", &[])
                .is_none()
        );
        assert!(s.allowing(&[ALICE], "iam:Encrypt", &[]).is_none());
        // A role grant serves the role's sessions (the session's role ARN is a caller ARN).
        let mut g = grant(&["Encrypt"]);
        g.grantee_principal = "arn:aws:iam::111122223333:role/App".into();
        let s = set(vec![g]);
        assert!(
            s.allowing(
                &[
                    "arn:aws:sts::111122223333:assumed-role/App/s1",
                    "arn:aws:iam::111122223333:role/App"
                ],
                "kms:Encrypt",
                &[]
            )
            .is_some()
        );
    }

    #[test]
    fn equals_constraint_needs_the_exact_context() {
        let mut g = grant(&["Encrypt", "DescribeKey"]);
        g.equals = Some(map(&[("dept", "it")]));
        let s = set(vec![g]);
        assert!(
            s.allowing(&[ALICE], "kms:Encrypt", &ec(&[("dept", "it")]))
                .is_some()
        );
        // Keys are case-insensitive, values are not.
        assert!(
            s.allowing(&[ALICE], "kms:Encrypt", &ec(&[("Dept", "it")]))
                .is_some()
        );
        assert!(
            s.allowing(&[ALICE], "kms:Encrypt", &ec(&[("dept", "IT")]))
                .is_none()
        );
        assert!(
            s.allowing(&[ALICE], "kms:Encrypt", &ec(&[("dept", "it"), ("x", "y")]))
                .is_none()
        );
        assert!(s.allowing(&[ALICE], "kms:Encrypt", &[]).is_none());
        // Not applied to operations without an encryption context.
        assert!(s.allowing(&[ALICE], "kms:DescribeKey", &[]).is_some());
    }

    #[test]
    fn subset_constraint_needs_the_pairs() {
        let mut g = grant(&["Decrypt"]);
        g.subset = Some(map(&[("dept", "it")]));
        let s = set(vec![g]);
        assert!(
            s.allowing(&[ALICE], "kms:Decrypt", &ec(&[("dept", "it"), ("x", "y")]))
                .is_some()
        );
        assert!(
            s.allowing(&[ALICE], "kms:Decrypt", &ec(&[("x", "y")]))
                .is_none()
        );
        assert!(s.allowing(&[ALICE], "kms:Decrypt", &[]).is_none());
    }

    #[test]
    fn create_grant_needs_a_subset_and_stricter_constraints() {
        let mut parent = grant(&["Encrypt", "Decrypt", "CreateGrant"]);
        let mut s = set(vec![parent.clone()]);
        assert!(
            s.allowing(&[ALICE], "kms:CreateGrant", &[]).is_none(),
            "no new grant"
        );
        s.new_grant = Some(grant(&["Decrypt"]));
        assert!(s.allowing(&[ALICE], "kms:CreateGrant", &[]).is_some());
        s.new_grant = Some(grant(&["Decrypt", "Sign"]));
        assert!(s.allowing(&[ALICE], "kms:CreateGrant", &[]).is_none());

        parent.subset = Some(map(&[("a", "1")]));
        let mut s = set(vec![parent.clone()]);
        s.new_grant = Some(grant(&["Decrypt"]));
        assert!(s.allowing(&[ALICE], "kms:CreateGrant", &[]).is_none());
        let mut child = grant(&["Decrypt"]);
        child.subset = Some(map(&[("a", "1"), ("b", "2")]));
        s.new_grant = Some(child.clone());
        assert!(s.allowing(&[ALICE], "kms:CreateGrant", &[]).is_some());
        child.subset = None;
        child.equals = Some(map(&[("a", "1")]));
        s.new_grant = Some(child.clone());
        assert!(s.allowing(&[ALICE], "kms:CreateGrant", &[]).is_some());

        parent.subset = None;
        parent.equals = Some(map(&[("a", "1")]));
        let mut s = set(vec![parent]);
        s.new_grant = Some(child.clone());
        assert!(s.allowing(&[ALICE], "kms:CreateGrant", &[]).is_some());
        child.equals = Some(map(&[("a", "1"), ("b", "2")]));
        s.new_grant = Some(child);
        assert!(s.allowing(&[ALICE], "kms:CreateGrant", &[]).is_none());
    }

    mod decisions {
        use super::*;
        use crate::authorize::{AccessRequest, Authorizer, CallerInfo, Origin};
        use time::macros::datetime;

        const KEY: &str =
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

        fn request(caller: CallerInfo, endpoint_policy: &str, key_policy: &str) -> AccessRequest {
            AccessRequest {
                caller: Some(caller),
                origin: Origin {
                    region: "us-east-1".into(),
                    vpce_id: if endpoint_policy.is_empty() {
                        String::new()
                    } else {
                        "vpce-1234".into()
                    },
                    ..Default::default()
                },
                action: "kms:Encrypt".into(),
                resource_arn: KEY.into(),
                resource_account: "111122223333".into(),
                key_policy: key_policy.into(),
                endpoint_policy: endpoint_policy.into(),
                ..Default::default()
            }
        }

        fn alice() -> CallerInfo {
            CallerInfo {
                account_id: "111122223333".into(),
                arn: ALICE.into(),
                principal_id: "AIDAALICE".into(),
                principal_type: "IAMUser".into(),
                user_name: "Alice".into(),
                role_arn: String::new(),
            }
        }

        fn decide(req: &AccessRequest, grants: &GrantSet) -> crate::authorize::Decision {
            Authorizer::new()
                .decide_with_grants(req, grants, datetime!(2026-01-02 00:00 UTC))
                .unwrap()
        }

        #[test]
        fn a_grant_completes_the_key_side_without_identity_policies() {
            let req = request(alice(), "", "");
            let none = decide(&req, &GrantSet::default());
            assert!(!none.allowed);
            let with = decide(&req, &set(vec![grant(&["Encrypt"])]));
            assert!(with.allowed, "{}", with.reason);
            assert_eq!(with.eval_decision, "allowed");
            // A grant of other operations changes nothing, not even the message.
            let other = decide(&req, &set(vec![grant(&["Decrypt"])]));
            assert_eq!(other, none);
            // Another account's grantee, on the key ARN.
            let partner = CallerInfo {
                account_id: "444455556666".into(),
                arn: "arn:aws:iam::444455556666:user/Pat".into(),
                principal_type: "IAMUser".into(),
                ..Default::default()
            };
            let req = request(partner.clone(), "", "");
            assert!(!decide(&req, &GrantSet::default()).allowed);
            let mut g = grant(&["Encrypt"]);
            g.grantee_principal = partner.arn.clone();
            assert!(decide(&req, &set(vec![g])).allowed);
        }

        #[test]
        fn explicit_denies_and_the_endpoint_policy_still_apply() {
            let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:Encrypt","Resource":"*"}]}"#;
            let req = request(alice(), "", deny);
            let d = decide(&req, &set(vec![grant(&["Encrypt"])]));
            assert!(!d.allowed);
            assert_eq!(d.eval_decision, "explicitDeny");

            let endpoint = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}]}"#;
            let req = request(alice(), endpoint, "");
            let d = decide(&req, &set(vec![grant(&["Encrypt"])]));
            assert!(!d.allowed);
            assert!(d.denied_by_endpoint_policy);
            assert!(
                d.reason.contains("no VPC endpoint policy allows"),
                "{}",
                d.reason
            );
            let open = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}"#;
            let req = request(alice(), open, "");
            assert!(decide(&req, &set(vec![grant(&["Encrypt"])])).allowed);
        }
    }
}
