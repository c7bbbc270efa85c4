//! Authorization of key store operations by the authz service.
//!
//! Every operation asks authz's `Authorize` before it acts: the key store knows the
//! key (its ARN, owner, policy, aliases) and the request's KMS condition keys, authz
//! knows the policy language and AWS's decision logic. When authz cannot answer
//! (unreachable, deadline, error) the operation fails: fail closed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kms_proto::authz::v1::authz_client::AuthzClient;
use kms_proto::authz::v1::{AuthorizeRequest, ConditionKeyValues, Decision};
use kms_proto::error::AwsError;
use tonic::transport::Endpoint;

/// Deadline of one `Authorize` call (as the gateway's for authz).
pub const AUTHZ_DEADLINE: Duration = Duration::from_secs(2);
/// HTTP/2 connections to authz, used round-robin (one connection serializes on its
/// own framing under load).
const CONNECTIONS: usize = 4;

/// Who decides. The production implementation is [`GrpcAuthorizer`]; unit tests of
/// the domain use one that allows everything.
#[tonic::async_trait]
pub trait Authorizer: Send + Sync + 'static {
    async fn authorize(&self, request: AuthorizeRequest) -> Result<Decision, AwsError>;
}

/// authz over gRPC, connected lazily (the key store starts even while authz is down;
/// calls fail closed until it is up).
pub struct GrpcAuthorizer {
    channels: Vec<AuthzClient<kms_telemetry::Traced>>,
    next: AtomicUsize,
    /// Where authz is, for its typed handle when it runs in this process.
    transport: kms_telemetry::local::Transport,
}

impl GrpcAuthorizer {
    /// Over mutual TLS as the `keystore` role when `tls` is given (authz in
    /// another process), plaintext otherwise.
    pub fn new(
        url: &str,
        tls: Option<&kms_telemetry::tls::InternalTls>,
    ) -> Result<Self, tonic::transport::Error> {
        let transports = (0..CONNECTIONS)
            .map(|_| {
                let endpoint = Endpoint::from_shared(url.to_owned())?
                    .timeout(AUTHZ_DEADLINE)
                    .connect_timeout(AUTHZ_DEADLINE)
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(30));
                let channel =
                    kms_telemetry::tls::channel(&endpoint, tls, kms_telemetry::tls::Role::Authz);
                Ok(kms_telemetry::local::Transport::new(
                    url,
                    channel,
                    AUTHZ_DEADLINE,
                ))
            })
            .collect::<Result<Vec<_>, tonic::transport::Error>>()?;
        Ok(Self {
            transport: transports[0].clone(),
            channels: transports
                .into_iter()
                .map(|t| AuthzClient::new(kms_telemetry::traced(t)))
                .collect(),
            next: AtomicUsize::new(0),
        })
    }
}

#[tonic::async_trait]
impl Authorizer for GrpcAuthorizer {
    async fn authorize(&self, request: AuthorizeRequest) -> Result<Decision, AwsError> {
        let answer = match self
            .transport
            .local::<dyn kms_proto::authz::v1::authz_server::Authz>()
        {
            // authz in this process: the typed call (no encoding, no routing).
            Some(authz) => {
                authz
                    .call("kms.authz.v1.Authz", "Authorize", |a| {
                        a.authorize(tonic::Request::new(request))
                    })
                    .await
            }
            // Boxed: a tonic client call's future is several KB, and kept inline it would
            // make this future (allocated and copied on every call) that large even when
            // the typed in-process path answers.
            None => {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % self.channels.len();
                let mut client = self.channels[i].clone();
                Box::pin(async move { client.authorize(request).await })
                    .await
                    .map(tonic::Response::into_inner)
            }
        };
        match answer {
            Ok(d) => Ok(d),
            Err(status) => {
                tracing::warn!(code = ?status.code(), error = %status.message(), "authz call failed");
                Err(AwsError::from_status(&status))
            }
        }
    }
}

/// One authorization question, before the request context is attached.
#[derive(Debug, Default)]
pub struct Question {
    /// `kms:<Operation>`.
    pub action: String,
    /// Key ARN, alias ARN, or `*` for operations without a resource.
    pub resource_arn: String,
    pub resource_account: String,
    /// The key's policy (empty for an alias or no resource).
    pub key_policy: String,
    pub condition_keys: HashMap<String, String>,
    pub multi_valued: Vec<ConditionKeyValues>,
    /// Grants on the key whose grantee is the caller (filled by the service).
    pub grants: Vec<kms_proto::authz::v1::Grant>,
    /// CreateGrant: the grant being created.
    pub new_grant: Option<kms_proto::authz::v1::Grant>,
}

impl Question {
    pub fn new(op: &str, resource_arn: &str, resource_account: &str) -> Self {
        Self {
            action: format!("kms:{op}"),
            resource_arn: resource_arn.to_owned(),
            resource_account: resource_account.to_owned(),
            // A key question carries about eight keys: sized once, not grown key by key.
            condition_keys: HashMap::with_capacity(8),
            ..Default::default()
        }
    }

    pub fn key(mut self, key: &str, value: impl Into<String>) -> Self {
        self.condition_keys.insert(key.to_owned(), value.into());
        self
    }

    pub fn multi(mut self, key: &str, values: Vec<String>) -> Self {
        self.multi_valued.push(ConditionKeyValues {
            key: key.to_owned(),
            values,
        });
        self
    }

    /// `kms:EncryptionContext:<k>` for each pair and `kms:EncryptionContextKeys`
    /// (absent, as in AWS, when the request has no encryption context).
    pub fn encryption_context(mut self, context: &HashMap<String, String>) -> Self {
        if context.is_empty() {
            return self;
        }
        for (k, v) in context {
            self.condition_keys
                .insert(format!("kms:EncryptionContext:{k}"), v.clone());
        }
        let keys = context.keys().cloned().collect();
        self.multi("kms:EncryptionContextKeys", keys)
    }
}

/// The alias a KeyId parameter names (`alias/x` or an alias ARN), for
/// `kms:RequestAlias`.
pub fn requested_alias(key_id: &str) -> Option<&str> {
    if key_id.starts_with("alias/") {
        return Some(key_id);
    }
    if key_id.starts_with("arn:") {
        return key_id
            .split_once(":alias/")
            .map(|(prefix, _)| &key_id[prefix.len() + 1..]);
    }
    None
}

#[cfg(test)]
pub mod testing {
    use super::*;

    /// Allows every request (unit tests of the domain without an authz server).
    pub struct AllowAll;

    #[tonic::async_trait]
    impl Authorizer for AllowAll {
        async fn authorize(&self, _request: AuthorizeRequest) -> Result<Decision, AwsError> {
            Ok(Decision {
                allowed: true,
                eval_decision: "allowed".into(),
                ..Default::default()
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_alias_comes_from_alias_names_and_arns_only() {
        assert_eq!(requested_alias("alias/app"), Some("alias/app"));
        assert_eq!(
            requested_alias("arn:aws:kms:us-east-1:111122223333:alias/app/x"),
            Some("alias/app/x")
        );
        assert_eq!(
            requested_alias("1234abcd-12ab-34cd-56ef-1234567890ab"),
            None
        );
        assert_eq!(
            requested_alias(
                "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
            ),
            None
        );
    }

    #[test]
    fn encryption_context_keys_are_absent_without_a_context() {
        let q = Question::new("Encrypt", "arn", "111122223333").encryption_context(&HashMap::new());
        assert!(q.multi_valued.is_empty());
        let ctx: HashMap<String, String> = [("purpose".to_owned(), "test".to_owned())].into();
        let q = Question::new("Encrypt", "arn", "111122223333").encryption_context(&ctx);
        assert_eq!(q.condition_keys["kms:EncryptionContext:purpose"], "test");
        assert_eq!(q.multi_valued[0].key, "kms:EncryptionContextKeys");
        assert_eq!(q.multi_valued[0].values, vec!["purpose"]);
    }
}
