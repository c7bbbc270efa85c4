//! The `kms.authz.v1.Authz` contract mapped onto the domain.

use std::sync::Arc;

use kms_proto::authz::v1 as pb;
use kms_proto::common::v1::Caller;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::accounts::{AccessKey, AccountSpec};
use crate::authorize::{AccessRequest, Authorizer, CallerInfo, Origin};
use crate::clock::Clock;
use crate::iam::Iam;
use crate::sigv4::{Authenticator, SignedRequest};
use crate::store::Store;

pub struct AuthzService<S> {
    store: Arc<S>,
    iam: Arc<Iam>,
    authenticator: Arc<Authenticator<S>>,
    authorizer: Authorizer,
    clock: Arc<dyn Clock>,
}

impl<S: Store> AuthzService<S> {
    pub fn new(
        store: Arc<S>,
        iam: Arc<Iam>,
        authenticator: Arc<Authenticator<S>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            iam,
            authenticator,
            authorizer: Authorizer::new(),
            clock,
        }
    }
}

impl From<pb::AuthenticateRequest> for SignedRequest {
    fn from(r: pb::AuthenticateRequest) -> Self {
        Self {
            access_key_id: r.access_key_id,
            scope_date: r.scope_date,
            scope_region: r.scope_region,
            scope_service: r.scope_service,
            amz_date: r.amz_date,
            string_to_sign: r.string_to_sign,
            signature: r.signature,
            security_token: r.security_token,
        }
    }
}

impl From<pb::AuthorizeRequest> for AccessRequest {
    fn from(r: pb::AuthorizeRequest) -> Self {
        let ctx = r.context.unwrap_or_default();
        let caller = ctx
            .caller
            .filter(|c| !c.account_id.is_empty())
            .map(|c| CallerInfo {
                account_id: c.account_id,
                arn: c.arn,
                principal_id: c.principal_id,
                principal_type: c.principal_type,
                user_name: c.user_name,
                role_arn: c.role_arn,
            });
        // Room for the multi-valued keys and the caller's principal tags too.
        let mut condition_keys: Vec<(String, Vec<String>)> =
            Vec::with_capacity(r.condition_keys.len() + r.multi_valued_condition_keys.len() + 4);
        condition_keys.extend(r.condition_keys.into_iter().map(|(k, v)| (k, vec![v])));
        condition_keys.extend(
            r.multi_valued_condition_keys
                .into_iter()
                .map(|k| (k.key, k.values)),
        );
        Self {
            caller,
            origin: Origin {
                source_ip: ctx.source_ip,
                vpce_id: ctx.vpce_id,
                vpc_id: ctx.vpc_id,
                region: ctx.region,
                secure_transport: ctx.secure_transport,
                time_ms: ctx.time_ms,
            },
            action: r.action,
            resource_arn: r.resource_arn,
            resource_account: r.resource_account,
            key_policy: r.key_policy,
            identity_policies: r.identity_policies,
            endpoint_policy: r.endpoint_policy,
            condition_keys,
        }
    }
}

fn caller(key: &AccessKey) -> Caller {
    let (role_arn, session_name) = key
        .session
        .as_ref()
        .map(|s| (s.role_arn.clone(), s.session_name.clone()))
        .unwrap_or_default();
    Caller {
        account_id: key.account_id.clone(),
        arn: key.principal_arn.clone(),
        principal_id: key.principal_id.clone(),
        principal_type: key.principal_type.as_str().to_owned(),
        user_name: key.user_name.clone(),
        access_key_id: key.access_key_id.clone(),
        role_arn,
        session_name,
    }
}

fn now_ms(clock: &dyn Clock) -> i64 {
    let t: OffsetDateTime = clock.now();
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// An authorization that waits for the caller's identity policies to be read.
type PendingDecision<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<pb::Decision, Status>> + Send + 'a>>;

impl<S: Store> AuthzService<S> {
    /// `Authorize` when the caller's identity policies are cached (roots have none): the
    /// decision; otherwise the read and the decision after it, as a boxed future.
    fn authorize_cached(
        &self,
        inner: pb::AuthorizeRequest,
    ) -> Result<Result<pb::Decision, Status>, PendingDecision<'_>> {
        let grants = crate::grants::GrantSet::from_pb(&inner);
        let mut req = AccessRequest::from(inner);
        // Principal tags come only from the store: any the RPC's caller sent are dropped.
        req.condition_keys
            .retain(|(k, _)| !crate::iam::is_principal_tag_key(k));
        let Some(caller) = &req.caller else {
            return Ok(self.decide(req, &grants, None));
        };
        if let Some(stored) = self.iam.cached_identity_policies(caller) {
            return Ok(self.decide(req, &grants, Some(&stored)));
        }
        // A cache miss (rare): the caller is copied so that the read can own it beside `req`.
        let caller = caller.clone();
        Err(Box::pin(async move {
            let stored = self.iam.identity_policies(&caller).await?;
            self.decide(req, &grants, Some(&stored))
        }))
    }

    /// The decision on `req`, with the caller's own policies and tags from this
    /// service's store merged into any the RPC's caller supplied.
    fn decide(
        &self,
        mut req: AccessRequest,
        grants: &crate::grants::GrantSet,
        stored: Option<&crate::iam::IdentityData>,
    ) -> Result<pb::Decision, Status> {
        if let Some(stored) = stored {
            req.identity_policies
                .extend(stored.documents.iter().cloned());
            req.condition_keys.extend(stored.tag_condition_keys());
        }
        let d = self
            .authorizer
            .decide_with_grants(&req, grants, self.clock.now())?;
        record_decision(&req.action, &d);
        if !d.allowed {
            tracing::debug!(
                reason = %d.reason,
                resource_account = %req.resource_account,
                denied_by_endpoint_policy = d.denied_by_endpoint_policy,
                "denied"
            );
        }
        Ok(pb::Decision {
            allowed: d.allowed,
            reason: d.reason,
            denied_by_endpoint_policy: d.denied_by_endpoint_policy,
            eval_decision: d.eval_decision.to_owned(),
        })
    }
}

#[tonic::async_trait]
impl<S: Store> pb::authz_server::Authz for AuthzService<S> {
    #[instrument(skip_all, fields(access_key_id = %request.get_ref().access_key_id))]
    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> Result<Response<pb::AuthenticateResponse>, Status> {
        let req = SignedRequest::from(request.into_inner());
        match self.authenticator.verify(&req).await {
            Ok(verified) => Ok(Response::new(pb::AuthenticateResponse {
                caller: Some(caller(verified.key())),
            })),
            Err(e) => {
                tracing::debug!(error = %e, "authentication refused");
                Err(e.into())
            }
        }
    }

    #[instrument(skip_all, fields(action = %request.get_ref().action))]
    async fn authorize(
        &self,
        request: Request<pb::AuthorizeRequest>,
    ) -> Result<Response<pb::Decision>, Status> {
        // Decided without awaiting unless the caller's identity policies must be read: the
        // only state this future keeps across an await is that read's boxed future.
        let load = match self.authorize_cached(request.into_inner()) {
            Ok(decision) => return decision.map(Response::new),
            Err(load) => load,
        };
        load.await.map(Response::new)
    }

    #[instrument(skip_all)]
    async fn create_account(
        &self,
        request: Request<pb::CreateAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        let r = request.into_inner();
        let spec = AccountSpec {
            account_id: r.account_id,
            access_key_id: r.access_key_id,
            secret_access_key: r.secret_access_key,
        };
        let account = spec.build(now_ms(self.clock.as_ref()))?;
        self.store.create_account(&account).await?;
        tracing::info!(
            account_id = %account.account_id,
            access_key_id = %account.root_key.access_key_id,
            "account created"
        );
        let key = account.root_key;
        let response = pb::Account {
            account_id: account.account_id,
            root_access_key_id: key.access_key_id.clone(),
            root_secret_access_key: key.secret.expose().to_owned(),
        };
        self.authenticator.remember(key);
        Ok(Response::new(response))
    }

    #[instrument(skip_all)]
    async fn list_accounts(
        &self,
        _request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        let accounts = self
            .store
            .list_accounts()
            .await?
            .into_iter()
            .map(|a| pb::Account {
                account_id: a.account_id,
                root_access_key_id: a.root_access_key_id,
                root_secret_access_key: String::new(),
            })
            .collect();
        Ok(Response::new(pb::ListAccountsResponse { accounts }))
    }

    async fn create_user(
        &self,
        request: Request<pb::IamUserRequest>,
    ) -> Result<Response<pb::IamUser>, Status> {
        let user = self.iam.create_user(request.into_inner()).await?;
        tracing::info!(account_id = %user.account_id, user_name = %user.user_name, "IAM user created");
        Ok(Response::new(user))
    }

    async fn get_user(
        &self,
        request: Request<pb::IamUserRequest>,
    ) -> Result<Response<pb::IamUser>, Status> {
        Ok(Response::new(
            self.iam.get_user(request.into_inner()).await?,
        ))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListIamUsersRequest>,
    ) -> Result<Response<pb::ListIamUsersResponse>, Status> {
        let users = self.iam.list_users(request.into_inner()).await?;
        Ok(Response::new(pb::ListIamUsersResponse { users }))
    }

    async fn delete_user(
        &self,
        request: Request<pb::IamUserRequest>,
    ) -> Result<Response<pb::IamEmpty>, Status> {
        self.iam.delete_user(request.into_inner()).await?;
        Ok(Response::new(pb::IamEmpty {}))
    }

    async fn create_access_key(
        &self,
        request: Request<pb::IamUserRequest>,
    ) -> Result<Response<pb::IamAccessKey>, Status> {
        let key = self.iam.create_access_key(request.into_inner()).await?;
        tracing::info!(account_id = %key.account_id, access_key_id = %key.access_key_id, "access key created");
        let response = access_key_pb(&key, true);
        self.authenticator.remember(key);
        Ok(Response::new(response))
    }

    async fn list_access_keys(
        &self,
        request: Request<pb::IamUserRequest>,
    ) -> Result<Response<pb::ListIamAccessKeysResponse>, Status> {
        let keys = self.iam.list_access_keys(request.into_inner()).await?;
        Ok(Response::new(pb::ListIamAccessKeysResponse {
            access_keys: keys.iter().map(|k| access_key_pb(k, false)).collect(),
        }))
    }

    async fn update_access_key(
        &self,
        request: Request<pb::IamAccessKeyRequest>,
    ) -> Result<Response<pb::IamEmpty>, Status> {
        let key = self.iam.update_access_key(request.into_inner()).await?;
        self.authenticator.remember(key);
        Ok(Response::new(pb::IamEmpty {}))
    }

    async fn delete_access_key(
        &self,
        request: Request<pb::IamAccessKeyRequest>,
    ) -> Result<Response<pb::IamEmpty>, Status> {
        let r = request.into_inner();
        let id = r.access_key_id.clone();
        self.iam.delete_access_key(r).await?;
        self.authenticator.forget(&id);
        Ok(Response::new(pb::IamEmpty {}))
    }

    async fn create_role(
        &self,
        request: Request<pb::CreateIamRoleRequest>,
    ) -> Result<Response<pb::IamRole>, Status> {
        Ok(Response::new(
            self.iam.create_role(request.into_inner()).await?,
        ))
    }

    async fn get_role(
        &self,
        request: Request<pb::IamRoleRequest>,
    ) -> Result<Response<pb::IamRole>, Status> {
        Ok(Response::new(
            self.iam.get_role(request.into_inner()).await?,
        ))
    }

    async fn delete_role(
        &self,
        request: Request<pb::IamRoleRequest>,
    ) -> Result<Response<pb::IamEmpty>, Status> {
        self.iam.delete_role(request.into_inner()).await?;
        Ok(Response::new(pb::IamEmpty {}))
    }

    async fn put_inline_policy(
        &self,
        request: Request<pb::InlinePolicy>,
    ) -> Result<Response<pb::IamEmpty>, Status> {
        self.iam.put_inline_policy(request.into_inner()).await?;
        Ok(Response::new(pb::IamEmpty {}))
    }

    async fn get_inline_policy(
        &self,
        request: Request<pb::InlinePolicyRequest>,
    ) -> Result<Response<pb::InlinePolicy>, Status> {
        Ok(Response::new(
            self.iam.get_inline_policy(request.into_inner()).await?,
        ))
    }

    async fn delete_inline_policy(
        &self,
        request: Request<pb::InlinePolicyRequest>,
    ) -> Result<Response<pb::IamEmpty>, Status> {
        self.iam.delete_inline_policy(request.into_inner()).await?;
        Ok(Response::new(pb::IamEmpty {}))
    }

    async fn list_inline_policies(
        &self,
        request: Request<pb::InlinePolicyRequest>,
    ) -> Result<Response<pb::ListInlinePoliciesResponse>, Status> {
        let policy_names = self.iam.list_inline_policies(request.into_inner()).await?;
        Ok(Response::new(pb::ListInlinePoliciesResponse {
            policy_names,
        }))
    }

    async fn create_policy(
        &self,
        request: Request<pb::CreateManagedPolicyRequest>,
    ) -> Result<Response<pb::ManagedPolicy>, Status> {
        Ok(Response::new(
            self.iam.create_policy(request.into_inner()).await?,
        ))
    }

    async fn get_policy(
        &self,
        request: Request<pb::ManagedPolicyRequest>,
    ) -> Result<Response<pb::ManagedPolicy>, Status> {
        Ok(Response::new(
            self.iam.get_policy(request.into_inner()).await?,
        ))
    }

    async fn delete_policy(
        &self,
        request: Request<pb::ManagedPolicyRequest>,
    ) -> Result<Response<pb::IamEmpty>, Status> {
        self.iam.delete_policy(request.into_inner()).await?;
        Ok(Response::new(pb::IamEmpty {}))
    }

    async fn list_policies(
        &self,
        request: Request<pb::ListManagedPoliciesRequest>,
    ) -> Result<Response<pb::ListManagedPoliciesResponse>, Status> {
        let policies = self.iam.list_policies(request.into_inner()).await?;
        Ok(Response::new(pb::ListManagedPoliciesResponse { policies }))
    }

    async fn create_policy_version(
        &self,
        request: Request<pb::CreatePolicyVersionRequest>,
    ) -> Result<Response<pb::PolicyVersion>, Status> {
        Ok(Response::new(
            self.iam.create_policy_version(request.into_inner()).await?,
        ))
    }

    async fn get_policy_version(
        &self,
        request: Request<pb::PolicyVersionRequest>,
    ) -> Result<Response<pb::PolicyVersion>, Status> {
        Ok(Response::new(
            self.iam.get_policy_version(request.into_inner()).await?,
        ))
    }

    async fn list_policy_versions(
        &self,
        request: Request<pb::ManagedPolicyRequest>,
    ) -> Result<Response<pb::ListPolicyVersionsResponse>, Status> {
        let versions = self.iam.list_policy_versions(request.into_inner()).await?;
        Ok(Response::new(pb::ListPolicyVersionsResponse { versions }))
    }

    async fn delete_policy_version(
        &self,
        request: Request<pb::PolicyVersionRequest>,
    ) -> Result<Response<pb::IamEmpty>, Status> {
        self.iam.delete_policy_version(request.into_inner()).await?;
        Ok(Response::new(pb::IamEmpty {}))
    }

    async fn set_default_policy_version(
        &self,
        request: Request<pb::PolicyVersionRequest>,
    ) -> Result<Response<pb::IamEmpty>, Status> {
        self.iam
            .set_default_policy_version(request.into_inner())
            .await?;
        Ok(Response::new(pb::IamEmpty {}))
    }

    async fn attach_policy(
        &self,
        request: Request<pb::PolicyAttachmentRequest>,
    ) -> Result<Response<pb::IamEmpty>, Status> {
        self.iam.attach_policy(request.into_inner()).await?;
        Ok(Response::new(pb::IamEmpty {}))
    }

    async fn detach_policy(
        &self,
        request: Request<pb::PolicyAttachmentRequest>,
    ) -> Result<Response<pb::IamEmpty>, Status> {
        self.iam.detach_policy(request.into_inner()).await?;
        Ok(Response::new(pb::IamEmpty {}))
    }

    async fn list_attached_policies(
        &self,
        request: Request<pb::PolicyAttachmentRequest>,
    ) -> Result<Response<pb::ListAttachedPoliciesResponse>, Status> {
        let policies = self
            .iam
            .list_attached_policies(request.into_inner())
            .await?;
        Ok(Response::new(pb::ListAttachedPoliciesResponse { policies }))
    }

    async fn tag_principal(
        &self,
        request: Request<pb::TagPrincipalRequest>,
    ) -> Result<Response<pb::IamEmpty>, Status> {
        self.iam.tag_principal(request.into_inner()).await?;
        Ok(Response::new(pb::IamEmpty {}))
    }

    async fn untag_principal(
        &self,
        request: Request<pb::UntagPrincipalRequest>,
    ) -> Result<Response<pb::IamEmpty>, Status> {
        self.iam.untag_principal(request.into_inner()).await?;
        Ok(Response::new(pb::IamEmpty {}))
    }

    async fn list_principal_tags(
        &self,
        request: Request<pb::PrincipalTagsRequest>,
    ) -> Result<Response<pb::ListPrincipalTagsResponse>, Status> {
        let tags = self.iam.list_principal_tags(request.into_inner()).await?;
        Ok(Response::new(pb::ListPrincipalTagsResponse { tags }))
    }

    async fn simulate_policy(
        &self,
        request: Request<pb::SimulatePolicyRequest>,
    ) -> Result<Response<pb::SimulatePolicyResponse>, Status> {
        Ok(Response::new(
            crate::simulate::simulate(&self.iam, request.into_inner()).await?,
        ))
    }

    #[instrument(skip_all, fields(role_arn = %request.get_ref().role_arn))]
    async fn assume_role(
        &self,
        request: Request<pb::AssumeRoleRequest>,
    ) -> Result<Response<pb::AssumeRoleResponse>, Status> {
        let r = request.into_inner();
        let access = AccessRequest::from(pb::AuthorizeRequest {
            context: r.context.clone(),
            ..Default::default()
        });
        let Some(caller) = access.caller else {
            return Err(Status::unauthenticated(crate::authorize::NO_CALLER));
        };
        let (key, token) = self
            .iam
            .assume_role(caller, access.origin, &self.authorizer, &r)
            .await?;
        let Some(session) = key.session.clone() else {
            return Err(crate::error::Error::Corrupt("session without session data".into()).into());
        };
        tracing::info!(access_key_id = %key.access_key_id, arn = %key.principal_arn, "role assumed");
        let response = pb::AssumeRoleResponse {
            access_key_id: key.access_key_id.clone(),
            secret_access_key: key.secret.expose().to_owned(),
            session_token: token.expose().to_owned(),
            expiration_ms: session.expires_ms,
            assumed_role_id: key.principal_id.clone(),
            arn: key.principal_arn.clone(),
        };
        self.authenticator.remember(key);
        Ok(Response::new(response))
    }
}

fn access_key_pb(key: &AccessKey, with_secret: bool) -> pb::IamAccessKey {
    pb::IamAccessKey {
        user_name: key.user_name.clone(),
        access_key_id: key.access_key_id.clone(),
        status: key.status.as_str().to_owned(),
        secret_access_key: if with_secret {
            key.secret.expose().to_owned()
        } else {
            String::new()
        },
        create_date_ms: key.created_ms,
    }
}

/// The decision on the request's trace span and in the decisions metric
/// (action and outcome only: never the caller's secrets or the context).
fn record_decision(action: &str, d: &crate::authorize::Decision) {
    use std::sync::LazyLock;
    static DECISIONS: LazyLock<kms_telemetry::Counter<u64>> = LazyLock::new(|| {
        kms_telemetry::meter("kms-authz")
            .u64_counter("kms.authz.decisions")
            .with_description("Authorization decisions by action and IAM EvalDecision")
            .build()
    });
    let outcome = if d.denied_by_endpoint_policy {
        "endpointPolicyDeny"
    } else {
        d.eval_decision
    };
    kms_telemetry::set_attribute("kms.action", action);
    kms_telemetry::set_attribute("kms.decision", outcome);
    DECISIONS.add(
        1,
        &[
            kms_telemetry::KeyValue::new("kms.action", action.to_owned()),
            kms_telemetry::KeyValue::new("kms.decision", outcome),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;
    use pb::authz_server::Authz;

    /// `Authorize` keeps across its one await only the boxed read of identity policies
    /// that the cache did not have: its future (allocated and copied on every call) is the
    /// request and little more. With the read inline it was 4 KB in a release build.
    #[tokio::test]
    async fn an_authorization_future_stays_small() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("authz.db").display());
        let store = Arc::new(SqliteStore::connect(&url).await.unwrap());
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
        let authenticator = Arc::new(Authenticator::new(
            store.clone(),
            clock.clone(),
            std::time::Duration::from_secs(300),
        ));
        let iam = Arc::new(Iam::new(store.pool.clone(), clock.clone()));
        let service = AuthzService::new(store, iam, authenticator, clock);
        let request = Request::new(pb::AuthorizeRequest::default());
        let request_size = std::mem::size_of_val(&request);
        let call = service.authorize(request);
        let size = std::mem::size_of_val(&*call);
        assert!(
            size < 2 * request_size + 1024,
            "an Authorize future is {size} bytes (its request {request_size})"
        );
        // Nothing is allowed without a caller and a policy that allows it.
        assert!(!call.await.unwrap().into_inner().allowed);
    }
}
