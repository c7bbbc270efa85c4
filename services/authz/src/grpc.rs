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
use crate::sigv4::{Authenticator, SignedRequest};
use crate::store::Store;

pub struct AuthzService<S> {
    store: Arc<S>,
    authenticator: Arc<Authenticator<S>>,
    authorizer: Authorizer,
    clock: Arc<dyn Clock>,
}

impl<S: Store> AuthzService<S> {
    pub fn new(store: Arc<S>, authenticator: Arc<Authenticator<S>>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
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
        let mut condition_keys: Vec<(String, Vec<String>)> = r
            .condition_keys
            .into_iter()
            .map(|(k, v)| (k, vec![v]))
            .collect();
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

fn caller(key: AccessKey) -> Caller {
    Caller {
        account_id: key.account_id,
        arn: key.principal_arn,
        principal_id: key.principal_id,
        principal_type: key.principal_type.as_str().to_owned(),
        user_name: key.user_name,
        access_key_id: key.access_key_id,
        role_arn: String::new(),
        session_name: String::new(),
    }
}

fn now_ms(clock: &dyn Clock) -> i64 {
    let t: OffsetDateTime = clock.now();
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

#[tonic::async_trait]
impl<S: Store> pb::authz_server::Authz for AuthzService<S> {
    #[instrument(skip_all, fields(access_key_id = %request.get_ref().access_key_id))]
    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> Result<Response<pb::AuthenticateResponse>, Status> {
        let req = SignedRequest::from(request.into_inner());
        match self.authenticator.authenticate(&req).await {
            Ok(key) => Ok(Response::new(pb::AuthenticateResponse {
                caller: Some(caller(key)),
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
        let req = AccessRequest::from(request.into_inner());
        let d = self.authorizer.decide(&req, self.clock.now())?;
        if !d.allowed {
            tracing::debug!(
                reason = %d.reason,
                resource_account = %req.resource_account,
                denied_by_endpoint_policy = d.denied_by_endpoint_policy,
                "denied"
            );
        }
        Ok(Response::new(pb::Decision {
            allowed: d.allowed,
            reason: d.reason,
            denied_by_endpoint_policy: d.denied_by_endpoint_policy,
            eval_decision: d.eval_decision.to_owned(),
        }))
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
}
