//! Authorization decisions: the `Authorize` RPC's logic.
//!
//! Builds the request context (AWS's global condition keys plus the KMS keys the caller of the
//! RPC supplies) from what the gateway established from the network path, parses the policies
//! (cached by their text: they change rarely and are re-sent with every request) and asks
//! [`crate::policy::evaluate`]. A policy that does not parse fails the call with
//! `MalformedPolicyDocumentException`: no decision is guessed.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::Error;
use crate::grants::GrantSet;
use crate::policy::{self, Context, Policies, Policy, PolicyKind, Principal, Request};

/// The caller, as authentication established it.
#[derive(Debug, Clone, Default)]
pub struct CallerInfo {
    pub account_id: String,
    pub arn: String,
    /// CloudTrail's unique id (`userIdentity.principalId`).
    pub principal_id: String,
    /// CloudTrail's `userIdentity.type`: Root, IAMUser, AssumedRole, FederatedUser.
    pub principal_type: String,
    pub user_name: String,
    /// For sessions: the role's ARN.
    pub role_arn: String,
}

/// Where the request came from, as the gateway saw the connection.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub source_ip: String,
    /// Set only when the request arrived on a VPC endpoint network interface.
    pub vpce_id: String,
    pub vpc_id: String,
    pub region: String,
    pub secure_transport: bool,
    /// Unix milliseconds; 0 means "now" by the service's clock.
    pub time_ms: i64,
}

/// One authorization question, in domain terms.
#[derive(Debug, Clone, Default)]
pub struct AccessRequest {
    /// `None` when the request carried no caller (always denied).
    pub caller: Option<CallerInfo>,
    pub origin: Origin,
    /// IAM action, e.g. `kms:Encrypt`.
    pub action: String,
    /// Empty for operations without a resource.
    pub resource_arn: String,
    pub resource_account: String,
    pub key_policy: String,
    pub identity_policies: Vec<String>,
    pub endpoint_policy: String,
    /// Extra condition keys (single- and multi-valued).
    pub condition_keys: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Empty when allowed; AWS's AccessDeniedException message otherwise.
    pub reason: String,
    pub denied_by_endpoint_policy: bool,
    /// `allowed`, `explicitDeny` or `implicitDeny`.
    pub eval_decision: &'static str,
}

pub const NO_CALLER: &str = "the request has no authenticated caller";

/// How many distinct policy texts stay parsed in memory (per kind, cleared when full).
const CACHE_CAPACITY: usize = 4096;

/// The decision maker, with its cache of parsed policies (one map per kind, keyed by text).
#[derive(Debug, Default)]
pub struct Authorizer {
    cache: Mutex<[PolicyMap; 3]>,
}

type PolicyMap = HashMap<String, Arc<Policy>, BuildHasherDefault<TextHasher>>;

/// A fast non-cryptographic hasher for policy texts (FxHash's word-at-a-time mixing): a
/// policy is hashed on every request, and SipHash over a few KB dominated the decision.
/// Lookups still compare the full text, so a collision costs time, never correctness, and
/// the texts come from the keystore and registry, not from clients.
#[derive(Default)]
struct TextHasher(u64);

impl Hasher for TextHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Authorizer {
    pub fn new() -> Self {
        Self::default()
    }

    fn parsed(&self, text: &str, kind: PolicyKind) -> Result<Arc<Policy>, Error> {
        let slot = match kind {
            PolicyKind::KeyPolicy => 0,
            PolicyKind::EndpointPolicy => 1,
            PolicyKind::Identity => 2,
        };
        if let Some(p) = self.lock()[slot].get(text) {
            return Ok(p.clone());
        }
        // Parse outside the lock; errors are not cached (they are rare and cheap to redo).
        let p = Arc::new(Policy::parse_as(text, kind)?);
        let mut cache = self.lock();
        let map = &mut cache[slot];
        if map.len() >= CACHE_CAPACITY {
            map.clear();
        }
        map.insert(text.to_owned(), p.clone());
        Ok(p)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [PolicyMap; 3]> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decide `req`; `now` stands in when the request carries no time.
    pub fn decide(&self, req: &AccessRequest, now: OffsetDateTime) -> Result<Decision, Error> {
        let Some(caller) = &req.caller else {
            return Ok(Decision {
                allowed: false,
                reason: NO_CALLER.into(),
                denied_by_endpoint_policy: false,
                eval_decision: policy::EvalDecision::ImplicitDeny.as_str(),
            });
        };
        let principal = principal_of(caller);
        let time = request_time(req, now);
        let context = build_context(caller, &req.origin, time, &req.condition_keys);

        let key_policy = if !req.key_policy.is_empty() {
            Some(self.parsed(&req.key_policy, PolicyKind::KeyPolicy)?)
        } else if req.resource_arn.contains(":key/") {
            Some(self.parsed(
                &default_key_policy(&req.resource_account),
                PolicyKind::KeyPolicy,
            )?)
        } else {
            None
        };
        let identity = req
            .identity_policies
            .iter()
            .map(|t| self.parsed(t, PolicyKind::Identity))
            .collect::<Result<Vec<_>, _>>()?;
        let endpoint = if req.endpoint_policy.is_empty() {
            // No endpoint, or an endpoint with the default policy (allows everything).
            None
        } else {
            Some(self.parsed(&req.endpoint_policy, PolicyKind::EndpointPolicy)?)
        };
        let identity_refs: Vec<&Policy> = identity.iter().map(Arc::as_ref).collect();
        let resource = if req.resource_arn.is_empty() {
            "*"
        } else {
            req.resource_arn.as_str()
        };
        let d = policy::evaluate(
            &Request {
                principal: &principal,
                action: &req.action,
                resource,
                resource_account: (!req.resource_account.is_empty())
                    .then_some(req.resource_account.as_str()),
                context: &context,
            },
            &Policies {
                key_policy: key_policy.as_deref(),
                identity: &identity_refs,
                endpoint: endpoint.as_deref(),
            },
        );
        // Only some KMS operations accept another account's key, whatever its policy says.
        let foreign_key = resource.contains(":key/")
            && !req.resource_account.is_empty()
            && req.resource_account != principal.account_id;
        if d.allowed && foreign_key && !policy::works_across_accounts(&req.action) {
            return Ok(Decision {
                allowed: false,
                reason: policy::deny_message(
                    &principal.arn,
                    &req.action,
                    resource,
                    policy::DenyReason::NoAllow(policy::PolicyType::ResourceBased),
                ),
                denied_by_endpoint_policy: false,
                eval_decision: policy::EvalDecision::ImplicitDeny.as_str(),
            });
        }
        Ok(Decision {
            allowed: d.allowed,
            reason: d.message,
            denied_by_endpoint_policy: d.denied_by_endpoint_policy,
            eval_decision: d.eval.as_str(),
        })
    }

    /// [`Authorizer::decide`], then the grants (see [`crate::grants`]): a grant that allows
    /// the action completes the key side of a decision that no explicit deny made (the
    /// grantee needs no identity policy, in its account or another); the VPC endpoint policy
    /// must still allow the request. Without a matching grant the decision (and its deny
    /// message) is unchanged.
    pub fn decide_with_grants(
        &self,
        req: &AccessRequest,
        grants: &GrantSet,
        now: OffsetDateTime,
    ) -> Result<Decision, Error> {
        let d = self.decide(req, now)?;
        if d.allowed
            || grants.is_empty()
            || d.denied_by_endpoint_policy
            || d.eval_decision != policy::EvalDecision::ImplicitDeny.as_str()
        {
            return Ok(d);
        }
        let Some(caller) = &req.caller else {
            return Ok(d);
        };
        let mut arns = vec![caller.arn.as_str()];
        if !caller.role_arn.is_empty() {
            arns.push(caller.role_arn.as_str());
        }
        if grants
            .allowing(&arns, &req.action, &req.condition_keys)
            .is_none()
        {
            return Ok(d);
        }
        if !req.endpoint_policy.is_empty() {
            let endpoint = self.parsed(&req.endpoint_policy, PolicyKind::EndpointPolicy)?;
            let principal = principal_of(caller);
            let time = request_time(req, now);
            let context = build_context(caller, &req.origin, time, &req.condition_keys);
            let resource = if req.resource_arn.is_empty() {
                "*"
            } else {
                req.resource_arn.as_str()
            };
            let request = Request {
                principal: &principal,
                action: &req.action,
                resource,
                resource_account: (!req.resource_account.is_empty())
                    .then_some(req.resource_account.as_str()),
                context: &context,
            };
            let outcome = endpoint.outcome(&request, &req.action.to_lowercase());
            if outcome.denied_by.is_some() || outcome.allowed_as.is_none() {
                let why = if outcome.denied_by.is_some() {
                    policy::DenyReason::ExplicitDeny(policy::PolicyType::VpcEndpoint)
                } else {
                    policy::DenyReason::NoAllow(policy::PolicyType::VpcEndpoint)
                };
                return Ok(Decision {
                    allowed: false,
                    reason: policy::deny_message(&principal.arn, &req.action, resource, why),
                    denied_by_endpoint_policy: true,
                    eval_decision: match why {
                        policy::DenyReason::ExplicitDeny(_) => {
                            policy::EvalDecision::ExplicitDeny.as_str()
                        }
                        policy::DenyReason::NoAllow(_) => {
                            policy::EvalDecision::ImplicitDeny.as_str()
                        }
                    },
                });
            }
        }
        Ok(Decision {
            allowed: true,
            reason: String::new(),
            denied_by_endpoint_policy: false,
            eval_decision: policy::EvalDecision::Allowed.as_str(),
        })
    }
}

/// The key policy AWS gives a key created without one: the account may do everything, through
/// IAM.
pub fn default_key_policy(account_id: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Id":"key-default-1","Statement":[{{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account_id}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#
    )
}

/// `aws:PrincipalType` spelling of CloudTrail's `userIdentity.type`.
fn principal_type(cloudtrail_type: &str) -> &str {
    match cloudtrail_type {
        "Root" => "Account",
        "IAMUser" => "User",
        other => other,
    }
}

/// The request context: AWS's global keys from the caller and the network path, then the
/// keys the RPC's caller supplied (which cannot override the global `aws:` keys).
/// The policy engine's view of the caller.
fn principal_of(caller: &CallerInfo) -> Principal {
    Principal {
        account_id: caller.account_id.clone(),
        arn: caller.arn.clone(),
        role_arn: (!caller.role_arn.is_empty()).then(|| caller.role_arn.clone()),
        is_root: caller.principal_type == "Root" || is_root_arn(&caller.arn, &caller.account_id),
    }
}

/// `t` (UTC, whole seconds) as RFC 3339 `YYYY-MM-DDTHH:MM:SSZ`, what `time`'s `Rfc3339`
/// format gives for it, without its general formatting machinery (once per decision);
/// anything else (another offset, a fraction of a second, years outside 0..=9999) goes to
/// `Rfc3339` itself.
fn rfc3339_utc(t: OffsetDateTime) -> Option<String> {
    use std::fmt::Write;
    if t.offset() != time::UtcOffset::UTC || t.nanosecond() != 0 || !(0..=9999).contains(&t.year())
    {
        return t.format(&Rfc3339).ok();
    }
    let mut out = String::with_capacity(20);
    write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
    .ok()?;
    out.push('Z');
    Some(out)
}

/// aws:CurrentTime (whole seconds) and aws:EpochTime of `time`, formatted once per
/// second per thread: every decision needs them, most in the same second.
fn time_keys(time: OffsetDateTime) -> (Option<String>, String) {
    thread_local! {
        static LAST: std::cell::RefCell<(i64, Option<String>, String)> =
            const { std::cell::RefCell::new((i64::MIN, None, String::new())) };
    }
    let secs = time.unix_timestamp();
    let Ok(whole) = OffsetDateTime::from_unix_timestamp(secs) else {
        return (rfc3339_utc(time), secs.to_string());
    };
    LAST.with_borrow_mut(|(last, current, epoch)| {
        if *last != secs {
            *current = rfc3339_utc(whole);
            *epoch = secs.to_string();
            *last = secs;
        }
        (current.clone(), epoch.clone())
    })
}

/// Whether `arn` is `arn:aws:iam::<account_id>:root` (compared in place: this runs on
/// every decision).
fn is_root_arn(arn: &str, account_id: &str) -> bool {
    arn.strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.strip_prefix(account_id))
        .is_some_and(|rest| rest == ":root")
}

/// The request's time (aws:CurrentTime); `now` when it carries none.
fn request_time(req: &AccessRequest, now: OffsetDateTime) -> OffsetDateTime {
    if req.origin.time_ms > 0 {
        OffsetDateTime::from_unix_timestamp_nanos(req.origin.time_ms as i128 * 1_000_000)
            .unwrap_or(now)
    } else {
        now
    }
}

pub fn build_context(
    caller: &CallerInfo,
    origin: &Origin,
    time: OffsetDateTime,
    extra: &[(String, Vec<String>)],
) -> Context {
    // At most 13 global keys below, on top of the caller's.
    let mut ctx = Context::with_capacity(extra.len() + 13);
    for (k, v) in extra {
        // The context only hands out slices: a key with one value is the same either way,
        // and stored as one it needs no `Vec`.
        match v.as_slice() {
            [one] => ctx.insert(k, one.as_str()),
            _ => ctx.insert_multi(k, v.iter().cloned()),
        }
    }
    let account = caller.account_id.as_str();
    ctx.insert_lowercase("aws:principalaccount", account);
    ctx.insert_lowercase("kms:calleraccount", account);
    let principal_arn = if caller.role_arn.is_empty() {
        &caller.arn
    } else {
        &caller.role_arn
    };
    ctx.insert_lowercase("aws:principalarn", principal_arn.as_str());
    ctx.insert_lowercase("aws:principaltype", principal_type(&caller.principal_type));
    let userid = if caller.principal_type == "Root" || caller.principal_id.is_empty() {
        account
    } else {
        caller.principal_id.as_str()
    };
    ctx.insert_lowercase("aws:userid", userid);
    if caller.user_name.is_empty() {
        ctx.remove("aws:username");
    } else {
        ctx.insert_lowercase("aws:username", caller.user_name.as_str());
    }
    let (current_time, epoch_time) = time_keys(time);
    if let Some(t) = current_time {
        ctx.insert_lowercase("aws:currenttime", t);
    }
    ctx.insert_lowercase("aws:epochtime", epoch_time);
    let secure = if origin.secure_transport {
        "true"
    } else {
        "false"
    };
    ctx.insert_lowercase("aws:securetransport", secure);
    if !origin.region.is_empty() {
        ctx.insert_lowercase("aws:requestedregion", origin.region.as_str());
    }
    // Lowercase, as the context stores keys: removal then needs no allocation.
    for k in [
        "aws:sourceip",
        "aws:sourcevpce",
        "aws:sourcevpc",
        "aws:vpcsourceip",
    ] {
        ctx.remove(k);
    }
    if origin.vpce_id.is_empty() {
        if !origin.source_ip.is_empty() {
            ctx.insert_lowercase("aws:sourceip", origin.source_ip.as_str());
        }
    } else {
        ctx.insert_lowercase("aws:sourcevpce", origin.vpce_id.as_str());
        if !origin.vpc_id.is_empty() {
            ctx.insert_lowercase("aws:sourcevpc", origin.vpc_id.as_str());
        }
        if !origin.source_ip.is_empty() {
            ctx.insert_lowercase("aws:vpcsourceip", origin.source_ip.as_str());
        }
    }
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn alice() -> CallerInfo {
        CallerInfo {
            account_id: "111122223333".into(),
            arn: "arn:aws:iam::111122223333:user/Alice".into(),
            principal_id: "AIDAEXAMPLE".into(),
            principal_type: "IAMUser".into(),
            user_name: "Alice".into(),
            role_arn: String::new(),
        }
    }

    fn get<'a>(c: &'a Context, k: &str) -> Option<&'a str> {
        c.lookup(k).map(|v| v[0].as_str())
    }

    #[test]
    fn context_keys_from_the_public_path() {
        let origin = Origin {
            source_ip: "203.0.113.10".into(),
            region: "us-east-1".into(),
            secure_transport: true,
            ..Default::default()
        };
        let extra = vec![
            ("aws:SourceVpce".to_owned(), vec!["vpce-forged".to_owned()]),
            ("kms:EncryptionContextKeys".to_owned(), vec![]),
        ];
        let c = build_context(
            &alice(),
            &origin,
            datetime!(2026-01-02 00:00:00.5 UTC),
            &extra,
        );
        assert_eq!(get(&c, "aws:PrincipalAccount"), Some("111122223333"));
        assert_eq!(get(&c, "kms:CallerAccount"), Some("111122223333"));
        assert_eq!(
            get(&c, "aws:PrincipalArn"),
            Some("arn:aws:iam::111122223333:user/Alice")
        );
        assert_eq!(get(&c, "aws:PrincipalType"), Some("User"));
        assert_eq!(get(&c, "aws:userid"), Some("AIDAEXAMPLE"));
        assert_eq!(get(&c, "aws:username"), Some("Alice"));
        assert_eq!(get(&c, "aws:CurrentTime"), Some("2026-01-02T00:00:00Z"));
        assert_eq!(get(&c, "aws:EpochTime"), Some("1767312000"));
        assert_eq!(get(&c, "aws:SecureTransport"), Some("true"));
        assert_eq!(get(&c, "aws:RequestedRegion"), Some("us-east-1"));
        assert_eq!(get(&c, "aws:SourceIp"), Some("203.0.113.10"));
        for k in ["aws:SourceVpce", "aws:SourceVpc", "aws:VpcSourceIp"] {
            assert!(c.lookup(k).is_none(), "{k} only through an endpoint");
        }
        assert_eq!(c.lookup("kms:EncryptionContextKeys"), Some(&[][..]));
    }

    #[test]
    fn context_keys_through_an_endpoint_and_for_root_and_sessions() {
        let origin = Origin {
            source_ip: "10.0.1.25".into(),
            vpce_id: "vpce-1234abcdf5678c90a".into(),
            vpc_id: "vpc-12345678".into(),
            ..Default::default()
        };
        let root = CallerInfo {
            account_id: "111122223333".into(),
            arn: "arn:aws:iam::111122223333:root".into(),
            principal_id: "111122223333".into(),
            principal_type: "Root".into(),
            ..Default::default()
        };
        let c = build_context(&root, &origin, datetime!(2026-01-02 00:00 UTC), &[]);
        assert_eq!(get(&c, "aws:SourceVpce"), Some("vpce-1234abcdf5678c90a"));
        assert_eq!(get(&c, "aws:SourceVpc"), Some("vpc-12345678"));
        assert_eq!(get(&c, "aws:VpcSourceIp"), Some("10.0.1.25"));
        assert!(c.lookup("aws:SourceIp").is_none());
        assert_eq!(get(&c, "aws:PrincipalType"), Some("Account"));
        assert_eq!(get(&c, "aws:userid"), Some("111122223333"));
        assert!(c.lookup("aws:username").is_none());
        let session = CallerInfo {
            account_id: "111122223333".into(),
            arn: "arn:aws:sts::111122223333:assumed-role/App/s1".into(),
            principal_id: "AROAEXAMPLE:s1".into(),
            principal_type: "AssumedRole".into(),
            role_arn: "arn:aws:iam::111122223333:role/App".into(),
            ..Default::default()
        };
        let c = build_context(&session, &origin, datetime!(2026-01-02 00:00 UTC), &[]);
        assert_eq!(
            get(&c, "aws:PrincipalArn"),
            Some("arn:aws:iam::111122223333:role/App")
        );
        assert_eq!(get(&c, "aws:userid"), Some("AROAEXAMPLE:s1"));
        assert_eq!(get(&c, "aws:PrincipalType"), Some("AssumedRole"));
    }

    /// The per-second cache answers for the second asked, also when time goes back,
    /// and the whole second whatever the fraction.
    #[test]
    fn time_keys_are_those_of_the_second_asked() {
        let expect = |t: OffsetDateTime| {
            let whole = OffsetDateTime::from_unix_timestamp(t.unix_timestamp()).unwrap();
            (whole.format(&Rfc3339).ok(), t.unix_timestamp().to_string())
        };
        for t in [
            datetime!(2026-07-08 09:10:11 UTC),
            datetime!(2026-07-08 09:10:11.75 UTC),
            datetime!(2026-07-08 09:10:12 UTC),
            datetime!(2026-07-08 09:10:11.5 UTC),
            datetime!(2026-07-08 11:10:11 +02:00),
            datetime!(1970-01-01 00:00:00 UTC),
        ] {
            assert_eq!(time_keys(t), expect(t), "{t}");
        }
        assert_eq!(
            time_keys(datetime!(2026-07-08 09:10:11.75 UTC))
                .0
                .as_deref(),
            Some("2026-07-08T09:10:11Z")
        );
    }

    #[test]
    fn current_time_is_formatted_as_rfc3339_would() {
        for t in [
            datetime!(2026-01-02 00:00:00 UTC),
            datetime!(1970-01-01 00:00:00 UTC),
            datetime!(2099-12-31 23:59:59 UTC),
            datetime!(2024-02-29 12:34:56 UTC),
            datetime!(0000-01-01 00:00:00 UTC),
            datetime!(9999-12-31 23:59:59 UTC),
            datetime!(2026-07-08 09:10:11.25 UTC),
            datetime!(2026-07-08 09:10:11.000000001 UTC),
            datetime!(2026-07-08 09:10:11 +02:00),
        ] {
            assert_eq!(rfc3339_utc(t), t.format(&Rfc3339).ok(), "{t}");
        }
        let past = datetime!(-0001-12-31 23:59:59 UTC);
        assert!(past.format(&Rfc3339).is_err());
        assert_eq!(rfc3339_utc(past), None);
    }

    #[test]
    fn root_arns_are_recognised_in_place() {
        assert!(is_root_arn(
            "arn:aws:iam::111122223333:root",
            "111122223333"
        ));
        assert!(!is_root_arn(
            "arn:aws:iam::111122223333:root",
            "444455556666"
        ));
        assert!(!is_root_arn(
            "arn:aws:iam::111122223333:rootx",
            "111122223333"
        ));
        assert!(!is_root_arn(
            "arn:aws:iam::111122223333:user/root",
            "111122223333"
        ));
        assert!(!is_root_arn(
            "arn:aws:sts::111122223333:root",
            "111122223333"
        ));
        assert!(!is_root_arn("arn:aws:iam:::root", "111122223333"));
        let p = principal_of(&CallerInfo {
            account_id: "111122223333".into(),
            arn: "arn:aws:iam::111122223333:root".into(),
            principal_type: "IAMUser".into(),
            ..Default::default()
        });
        assert!(p.is_root);
        assert!(!principal_of(&alice()).is_root);
    }

    #[test]
    fn parsed_policies_are_cached_by_text() {
        let a = Authorizer::new();
        let text = default_key_policy("111122223333");
        let p1 = a.parsed(&text, PolicyKind::KeyPolicy).unwrap();
        let p2 = a.parsed(&text, PolicyKind::KeyPolicy).unwrap();
        assert!(Arc::ptr_eq(&p1, &p2));
        // The same text is validated again for another kind (Principal is forbidden there).
        assert!(a.parsed(&text, PolicyKind::Identity).is_err());
        assert!(a.parsed("{", PolicyKind::KeyPolicy).is_err());
    }
}
