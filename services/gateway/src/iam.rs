//! The IAM Query API (version 2010-05-08): users, access keys, roles and their inline
//! policies, kept by authz.
//!
//! Every call is authorized first with authz's `Authorize` (`iam:<Action>` on the user or
//! role ARN; account roots may do everything, users and sessions need an identity policy
//! allowing it, which authz loads itself), then executed by authz, recorded by audit as a
//! CloudTrail event of `iam.amazonaws.com` (never with a secret) and answered in IAM's XML.
//! Also the Query-protocol helpers STS shares: the response envelope and the error document.
//!
//! As IAM does: policy documents in answers are URL-encoded (boto3 decodes them), names are
//! unique regardless of case, a user with access keys or policies cannot be deleted
//! (`DeleteConflict`). Customer managed policies (with versions) attach to users and roles,
//! users and roles carry tags (their `aws:PrincipalTag/<key>`), and the policy simulator
//! (`SimulatePrincipalPolicy`, `SimulateCustomPolicy`) runs authz's engine. The lists of managed
//! policies, attachments, versions, tags and simulation results are paginated
//! (`Marker` / `MaxItems` / `IsTruncated`); the older listings return everything in one page.
//! Not modelled: groups, AWS managed policies, permissions boundaries attached to identities.

use crate::State;
use crate::query::{Params, escape};
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use kms_proto::authz::v1 as pb;
use kms_proto::common::v1::{Caller, RequestContext};
use kms_proto::error::AwsError;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};

pub const IAM_XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
pub const IAM_VERSION: &str = "2010-05-08";

/// The actions this endpoint serves.
pub const SUPPORTED: &[&str] = &[
    "CreateUser",
    "GetUser",
    "ListUsers",
    "DeleteUser",
    "CreateAccessKey",
    "ListAccessKeys",
    "DeleteAccessKey",
    "UpdateAccessKey",
    "PutUserPolicy",
    "GetUserPolicy",
    "DeleteUserPolicy",
    "ListUserPolicies",
    "CreateRole",
    "GetRole",
    "DeleteRole",
    "PutRolePolicy",
    "GetRolePolicy",
    "DeleteRolePolicy",
    "ListRolePolicies",
    "CreatePolicy",
    "GetPolicy",
    "DeletePolicy",
    "ListPolicies",
    "CreatePolicyVersion",
    "GetPolicyVersion",
    "ListPolicyVersions",
    "DeletePolicyVersion",
    "SetDefaultPolicyVersion",
    "AttachUserPolicy",
    "DetachUserPolicy",
    "ListAttachedUserPolicies",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "ListAttachedRolePolicies",
    "TagUser",
    "UntagUser",
    "ListUserTags",
    "TagRole",
    "UntagRole",
    "ListRoleTags",
    "SimulatePrincipalPolicy",
    "SimulateCustomPolicy",
];

/// Actions whose resource is the managed policy named by `PolicyArn`.
const POLICY_ARN_ACTIONS: &[&str] = &[
    "GetPolicy",
    "DeletePolicy",
    "CreatePolicyVersion",
    "GetPolicyVersion",
    "ListPolicyVersions",
    "DeletePolicyVersion",
    "SetDefaultPolicyVersion",
];

/// RFC 3986's unreserved characters stay; everything else is percent-encoded (as IAM does).
const POLICY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn url_encode(s: &str) -> String {
    utf8_percent_encode(s, POLICY_ENCODE).to_string()
}

/// The HTTP status IAM and STS answer an error code with.
pub fn status_for(code: &str) -> StatusCode {
    match code {
        "NoSuchEntity" => StatusCode::NOT_FOUND,
        "EntityAlreadyExists" | "DeleteConflict" | "LimitExceeded" => StatusCode::CONFLICT,
        "AccessDenied"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "MissingAuthenticationToken"
        | "ExpiredToken" => StatusCode::FORBIDDEN,
        "ServiceFailure" | "InternalFailure" => StatusCode::INTERNAL_SERVER_ERROR,
        "ServiceUnavailable" => StatusCode::SERVICE_UNAVAILABLE,
        "RequestEntityTooLargeException" => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The Query protocol's error document of IAM / STS.
pub fn error_body(xmlns: &str, code: &str, message: &str, request_id: &str) -> String {
    let kind = if status_for(code).is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    format!(
        "<ErrorResponse xmlns=\"{xmlns}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        escape(code),
        escape(message),
        escape(request_id)
    )
}

fn xml(body: String, status: StatusCode) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml"),
    );
    resp
}

/// An IAM / STS error response (`xmlns` of the service).
pub fn error_response(xmlns: &str, e: &AwsError, request_id: &str) -> Response<Full<Bytes>> {
    xml(
        error_body(xmlns, &e.code, &e.message, request_id),
        status_for(&e.code),
    )
}

/// The Query names of the authentication failures (KMS JSON names in, IAM/STS names out).
pub fn auth_error(e: AwsError) -> AwsError {
    let code = match e.code.as_str() {
        "UnrecognizedClientException" => "InvalidClientTokenId",
        "InvalidSignatureException" => "SignatureDoesNotMatch",
        "IncompleteSignatureException" => "IncompleteSignature",
        "MissingAuthenticationTokenException" => "MissingAuthenticationToken",
        "ExpiredTokenException" => "ExpiredToken",
        _ => return backend_error(e),
    };
    AwsError::new(code, e.message)
}

/// Failures of the backends as IAM and STS name them.
pub fn backend_error(e: AwsError) -> AwsError {
    match e.code.as_str() {
        "DependencyTimeoutException" => {
            AwsError::new("ServiceUnavailable", "Service is unable to handle request.")
        }
        "KMSInternalException" => AwsError::new(
            "ServiceFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
        ),
        _ => e,
    }
}

/// A Query response document: `<XResponse xmlns><XResult>...</XResult><ResponseMetadata>`.
#[derive(Debug)]
pub struct Doc {
    buf: String,
}

impl Doc {
    pub fn new() -> Self {
        Self {
            buf: String::with_capacity(512),
        }
    }

    pub fn open(&mut self, tag: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.buf.push_str("</");
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    pub fn text(&mut self, tag: &str, value: &str) -> &mut Self {
        self.open(tag);
        self.buf.push_str(&escape(value));
        self.close(tag)
    }

    /// The whole response; an empty result (operations without output) writes no `XResult`.
    pub fn finish(self, xmlns: &str, action: &str, request_id: &str, has_result: bool) -> String {
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{xmlns}\">"
        );
        if has_result {
            out.push_str(&format!("<{action}Result>{}</{action}Result>", self.buf));
        }
        out.push_str(&format!(
            "<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
            escape(request_id)
        ));
        out
    }
}

impl Default for Doc {
    fn default() -> Self {
        Self::new()
    }
}

pub use crate::audit::iso8601;

/// `Value null at 'userName' failed to satisfy constraint: Member must not be null`.
pub fn required<'a>(p: &'a Params, name: &str) -> Result<&'a str, AwsError> {
    match p.get(name) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(AwsError::new(
            "ValidationError",
            format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                camel(name)
            ),
        )),
    }
}

/// `UserName` -> `userName` (CloudTrail's and the validation messages' member names).
pub fn camel(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn status(s: tonic::Status) -> AwsError {
    backend_error(AwsError::from_status(&s))
}

/// The result of one call: the inner XML of `XResult` (None: no result element) and the
/// CloudTrail `responseElements` (never with a secret).
pub type Outcome = Result<(Option<Doc>, Value), AwsError>;

/// Serve one IAM request. Always answers in IAM's format (errors included).
pub async fn call(
    state: &State,
    ctx: RequestContext,
    query: Option<&str>,
    body: &[u8],
) -> Result<Response<Full<Bytes>>, AwsError> {
    let (params, action) = Params::from_request(query, body);
    let outcome = match action.as_str() {
        "" => Err(AwsError::new(
            "MissingAction",
            "The request must contain the parameter Action",
        )),
        a if !SUPPORTED.contains(&a) => Err(AwsError::new(
            "InvalidAction",
            format!("Could not find operation {a} for version {IAM_VERSION}"),
        )),
        a => match authorize(state, &ctx, a, &params).await {
            Ok(()) => execute(state, &ctx, a, &params).await,
            Err(e) => Err(e),
        },
    };
    if SUPPORTED.contains(&action.as_str()) {
        let response = match &outcome {
            Ok((_, v)) => Ok(v.clone()),
            Err(e) => Err(e.clone()),
        };
        if let Err(e) = record(
            state,
            &ctx,
            "iam.amazonaws.com",
            &action,
            &params,
            &response,
            &[],
        )
        .await
        {
            return Ok(error_response(
                IAM_XMLNS,
                &backend_error(e),
                &ctx.request_id,
            ));
        }
    }
    Ok(match outcome {
        Ok((doc, _)) => {
            let has = doc.is_some();
            xml(
                doc.unwrap_or_default()
                    .finish(IAM_XMLNS, &action, &ctx.request_id, has),
                StatusCode::OK,
            )
        }
        Err(e) => error_response(IAM_XMLNS, &e, &ctx.request_id),
    })
}

fn caller(ctx: &RequestContext) -> Result<&Caller, AwsError> {
    ctx.caller.as_ref().ok_or_else(AwsError::internal)
}

/// The user an operation with an optional `UserName` is about: the named one, else the
/// caller itself (empty for an account root). Sessions must name one.
fn target_user(ctx: &RequestContext, p: &Params) -> Result<String, AwsError> {
    if let Some(u) = p.get("UserName").filter(|u| !u.is_empty()) {
        return Ok(u.to_owned());
    }
    let c = caller(ctx)?;
    match c.principal_type.as_str() {
        "IAMUser" => Ok(c.user_name.clone()),
        "Root" => Ok(String::new()),
        _ => Err(AwsError::new(
            "ValidationError",
            "Must specify userName when calling with non-User credentials",
        )),
    }
}

/// The resource ARN IAM authorizes an action on.
fn resource(ctx: &RequestContext, action: &str, p: &Params) -> Result<String, AwsError> {
    let account = &caller(ctx)?.account_id;
    if POLICY_ARN_ACTIONS.contains(&action) {
        return Ok(p.get("PolicyArn").unwrap_or_default().to_owned());
    }
    match action {
        "CreatePolicy" => {
            return Ok(format!(
                "arn:aws:iam::{account}:policy{}{}",
                p.get("Path").filter(|s| !s.is_empty()).unwrap_or("/"),
                p.get("PolicyName").unwrap_or_default()
            ));
        }
        "ListPolicies" | "SimulateCustomPolicy" => return Ok("*".into()),
        "SimulatePrincipalPolicy" => {
            return Ok(p.get("PolicySourceArn").unwrap_or_default().to_owned());
        }
        _ => {}
    }
    if action.contains("Role") {
        return Ok(format!(
            "arn:aws:iam::{account}:role/{}",
            p.get("RoleName").unwrap_or_default()
        ));
    }
    if action == "ListUsers" {
        return Ok(format!(
            "arn:aws:iam::{account}:user{}",
            p.get("PathPrefix").filter(|s| !s.is_empty()).unwrap_or("/")
        ));
    }
    let user = target_user(ctx, p)?;
    Ok(if user.is_empty() {
        format!("arn:aws:iam::{account}:root")
    } else {
        format!(
            "arn:aws:iam::{account}:user{}{user}",
            p.get("Path").filter(|s| !s.is_empty()).unwrap_or("/")
        )
    })
}

/// `iam:<Action>` decided by authz (roots need no policy; users and sessions need theirs).
async fn authorize(
    state: &State,
    ctx: &RequestContext,
    action: &str,
    p: &Params,
) -> Result<(), AwsError> {
    let resource_arn = resource(ctx, action, p)?;
    let account = caller(ctx)?.account_id.clone();
    let mut context = ctx.clone();
    // The KMS endpoint's policy is not IAM's.
    context.endpoint_policy.clear();
    let d = state
        .clients
        .authz()
        .authorize(pb::AuthorizeRequest {
            context: Some(context),
            action: format!("iam:{action}"),
            resource_arn,
            resource_account: account,
            ..Default::default()
        })
        .await
        .map_err(status)?
        .into_inner();
    if d.allowed {
        Ok(())
    } else {
        Err(AwsError::new("AccessDenied", d.reason))
    }
}

fn user_xml(d: &mut Doc, u: &pb::IamUser) {
    d.text("Path", &u.path)
        .text("UserName", &u.user_name)
        .text("UserId", &u.user_id)
        .text("Arn", &u.arn)
        .text("CreateDate", &iso8601(u.create_date_ms));
}

fn user_json(u: &pb::IamUser) -> Value {
    json!({
        "user": {
            "path": u.path,
            "userName": u.user_name,
            "userId": u.user_id,
            "arn": u.arn,
            "createDate": iso8601(u.create_date_ms),
        }
    })
}

fn role_xml(d: &mut Doc, r: &pb::IamRole) {
    d.text("Path", &r.path)
        .text("RoleName", &r.role_name)
        .text("RoleId", &r.role_id)
        .text("Arn", &r.arn)
        .text("CreateDate", &iso8601(r.create_date_ms))
        .text(
            "AssumeRolePolicyDocument",
            &url_encode(&r.assume_role_policy_document),
        );
    if !r.description.is_empty() {
        d.text("Description", &r.description);
    }
    d.text("MaxSessionDuration", &r.max_session_duration.to_string());
}

fn key_xml(d: &mut Doc, k: &pb::IamAccessKey, with_secret: bool) {
    if !k.user_name.is_empty() {
        d.text("UserName", &k.user_name);
    }
    d.text("AccessKeyId", &k.access_key_id)
        .text("Status", &k.status);
    if with_secret {
        d.text("SecretAccessKey", &k.secret_access_key);
    }
    d.text("CreateDate", &iso8601(k.create_date_ms));
}

fn tags_xml(d: &mut Doc, tags: &[pb::IamTag]) {
    d.open("Tags");
    for t in tags {
        d.open("member")
            .text("Key", &t.key)
            .text("Value", &t.value)
            .close("member");
    }
    d.close("Tags");
}

fn names_xml(d: &mut Doc, names: &[String]) {
    d.open("PolicyNames");
    for n in names {
        d.text("member", n);
    }
    d.close("PolicyNames").text("IsTruncated", "false");
}

fn policy_request(
    ctx: &RequestContext,
    kind: &str,
    p: &Params,
) -> Result<pb::InlinePolicyRequest, AwsError> {
    let field = if kind == "user" {
        "UserName"
    } else {
        "RoleName"
    };
    Ok(pb::InlinePolicyRequest {
        account_id: caller(ctx)?.account_id.clone(),
        principal_kind: kind.into(),
        principal_name: required(p, field)?.to_owned(),
        policy_name: p.get("PolicyName").unwrap_or_default().to_owned(),
    })
}

async fn execute(state: &State, ctx: &RequestContext, action: &str, p: &Params) -> Outcome {
    let account = caller(ctx)?.account_id.clone();
    let mut authz = state.clients.authz();
    let mut d = Doc::new();
    let mut response = Value::Null;
    let user_request = |name: String| pb::IamUserRequest {
        account_id: account.clone(),
        user_name: name,
        path: p.get("Path").unwrap_or_default().to_owned(),
    };
    match action {
        "CreateUser" => {
            let mut u = authz
                .create_user(user_request(required(p, "UserName")?.to_owned()))
                .await
                .map_err(status)?
                .into_inner();
            u.tags = managed::initial_tags(state, &account, "user", &u.user_name, p).await?;
            d.open("User");
            user_xml(&mut d, &u);
            if !u.tags.is_empty() {
                tags_xml(&mut d, &u.tags);
            }
            d.close("User");
            response = user_json(&u);
        }
        "GetUser" => {
            let name = target_user(ctx, p)?;
            d.open("User");
            if name.is_empty() {
                let c = caller(ctx)?;
                d.text("UserId", &c.account_id)
                    .text("Arn", &c.arn)
                    .text("CreateDate", &iso8601(ctx.time_ms));
            } else {
                let u = authz
                    .get_user(user_request(name))
                    .await
                    .map_err(status)?
                    .into_inner();
                user_xml(&mut d, &u);
                if !u.tags.is_empty() {
                    tags_xml(&mut d, &u.tags);
                }
            }
            d.close("User");
        }
        "ListUsers" => {
            let users = authz
                .list_users(pb::ListIamUsersRequest {
                    account_id: account.clone(),
                    path_prefix: p.get("PathPrefix").unwrap_or_default().to_owned(),
                })
                .await
                .map_err(status)?
                .into_inner()
                .users;
            d.open("Users");
            for u in &users {
                d.open("member");
                user_xml(&mut d, u);
                d.close("member");
            }
            d.close("Users").text("IsTruncated", "false");
        }
        "DeleteUser" => {
            authz
                .delete_user(user_request(required(p, "UserName")?.to_owned()))
                .await
                .map_err(status)?;
            return Ok((None, Value::Null));
        }
        "CreateAccessKey" => {
            let k = authz
                .create_access_key(user_request(target_user(ctx, p)?))
                .await
                .map_err(status)?
                .into_inner();
            d.open("AccessKey");
            key_xml(&mut d, &k, true);
            d.close("AccessKey");
            let mut elements = json!({
                "accessKeyId": k.access_key_id,
                "status": k.status,
                "createDate": iso8601(k.create_date_ms),
            });
            if !k.user_name.is_empty() {
                elements["userName"] = json!(k.user_name);
            }
            response = json!({ "accessKey": elements });
        }
        "ListAccessKeys" => {
            let name = target_user(ctx, p)?;
            let keys = authz
                .list_access_keys(user_request(name))
                .await
                .map_err(status)?
                .into_inner()
                .access_keys;
            d.open("AccessKeyMetadata");
            for k in &keys {
                d.open("member");
                key_xml(&mut d, k, false);
                d.close("member");
            }
            d.close("AccessKeyMetadata").text("IsTruncated", "false");
        }
        "UpdateAccessKey" | "DeleteAccessKey" => {
            let r = pb::IamAccessKeyRequest {
                account_id: account.clone(),
                user_name: target_user(ctx, p)?,
                access_key_id: required(p, "AccessKeyId")?.to_owned(),
                status: if action == "UpdateAccessKey" {
                    required(p, "Status")?.to_owned()
                } else {
                    String::new()
                },
            };
            if action == "UpdateAccessKey" {
                authz.update_access_key(r).await.map_err(status)?;
            } else {
                authz.delete_access_key(r).await.map_err(status)?;
            }
            return Ok((None, Value::Null));
        }
        "PutUserPolicy" | "PutRolePolicy" => {
            let kind = if action == "PutUserPolicy" {
                "user"
            } else {
                "role"
            };
            let r = policy_request(ctx, kind, p)?;
            required(p, "PolicyName")?;
            let document = required(p, "PolicyDocument")?.to_owned();
            authz
                .put_inline_policy(pb::InlinePolicy {
                    account_id: r.account_id,
                    principal_kind: r.principal_kind,
                    principal_name: r.principal_name,
                    policy_name: r.policy_name,
                    policy_document: document,
                })
                .await
                .map_err(status)?;
            return Ok((None, Value::Null));
        }
        "GetUserPolicy" | "GetRolePolicy" => {
            let kind = if action == "GetUserPolicy" {
                "user"
            } else {
                "role"
            };
            let r = policy_request(ctx, kind, p)?;
            required(p, "PolicyName")?;
            let policy = authz
                .get_inline_policy(r)
                .await
                .map_err(status)?
                .into_inner();
            d.text(
                if kind == "user" {
                    "UserName"
                } else {
                    "RoleName"
                },
                &policy.principal_name,
            )
            .text("PolicyName", &policy.policy_name)
            .text("PolicyDocument", &url_encode(&policy.policy_document));
        }
        "DeleteUserPolicy" | "DeleteRolePolicy" => {
            let kind = if action == "DeleteUserPolicy" {
                "user"
            } else {
                "role"
            };
            let r = policy_request(ctx, kind, p)?;
            required(p, "PolicyName")?;
            authz.delete_inline_policy(r).await.map_err(status)?;
            return Ok((None, Value::Null));
        }
        "ListUserPolicies" | "ListRolePolicies" => {
            let kind = if action == "ListUserPolicies" {
                "user"
            } else {
                "role"
            };
            let r = policy_request(ctx, kind, p)?;
            let names = authz
                .list_inline_policies(r)
                .await
                .map_err(status)?
                .into_inner()
                .policy_names;
            names_xml(&mut d, &names);
        }
        "CreateRole" => {
            let max = match p.get("MaxSessionDuration") {
                None | Some("") => 0,
                Some(v) => v.parse::<i32>().map_err(|_| {
                    AwsError::new(
                        "ValidationError",
                        format!("1 validation error detected: Value '{v}' at 'maxSessionDuration' failed to satisfy constraint: Member must be an integer"),
                    )
                })?,
            };
            let role = authz
                .create_role(pb::CreateIamRoleRequest {
                    account_id: account.clone(),
                    role_name: required(p, "RoleName")?.to_owned(),
                    path: p.get("Path").unwrap_or_default().to_owned(),
                    assume_role_policy_document: required(p, "AssumeRolePolicyDocument")?
                        .to_owned(),
                    description: p.get("Description").unwrap_or_default().to_owned(),
                    max_session_duration: max,
                })
                .await
                .map_err(status)?
                .into_inner();
            let tags = managed::initial_tags(state, &account, "role", &role.role_name, p).await?;
            d.open("Role");
            role_xml(&mut d, &role);
            if !tags.is_empty() {
                tags_xml(&mut d, &tags);
            }
            d.close("Role");
            response = json!({
                "role": {
                    "path": role.path,
                    "roleName": role.role_name,
                    "roleId": role.role_id,
                    "arn": role.arn,
                    "createDate": iso8601(role.create_date_ms),
                    "assumeRolePolicyDocument": url_encode(&role.assume_role_policy_document),
                    "maxSessionDuration": role.max_session_duration,
                }
            });
        }
        "GetRole" => {
            let role = authz
                .get_role(pb::IamRoleRequest {
                    account_id: account.clone(),
                    role_name: required(p, "RoleName")?.to_owned(),
                })
                .await
                .map_err(status)?
                .into_inner();
            d.open("Role");
            role_xml(&mut d, &role);
            if !role.tags.is_empty() {
                tags_xml(&mut d, &role.tags);
            }
            d.close("Role");
        }
        "DeleteRole" => {
            authz
                .delete_role(pb::IamRoleRequest {
                    account_id: account.clone(),
                    role_name: required(p, "RoleName")?.to_owned(),
                })
                .await
                .map_err(status)?;
            return Ok((None, Value::Null));
        }
        other => return managed::execute(state, ctx, other, p).await,
    }
    Ok((Some(d), response))
}

/// Build the CloudTrail record of an IAM or STS call and append it; fails closed.
/// `response` is the record's `responseElements` (already free of secrets) or the error.
pub async fn record(
    state: &State,
    ctx: &RequestContext,
    event_source: &str,
    action: &str,
    params: &Params,
    response: &Result<Value, AwsError>,
    other_recipients: &[String],
) -> Result<(), AwsError> {
    let read_only =
        action.starts_with("Get") || action.starts_with("List") || action.starts_with("Simulate");
    let mut request = Map::new();
    for (k, v) in params.iter() {
        request.insert(camel(k), json!(v));
    }
    // IAM is global: its events are recorded in us-east-1.
    let region = if event_source == "iam.amazonaws.com" {
        "us-east-1"
    } else {
        ctx.region.as_str()
    };
    crate::audit::append(
        state,
        ctx,
        crate::audit::Event {
            source: event_source,
            name: action,
            region,
            read_only,
            error: response.as_ref().err(),
            request_parameters: if request.is_empty() {
                Value::Null
            } else {
                Value::Object(request)
            },
            response_elements: response.as_ref().cloned().unwrap_or(Value::Null),
            key_arns: &[],
            other_recipients,
            with_vpc_endpoint: false,
        },
    )
    .await
}

/// Managed policies, attachments, tags and the policy simulator.
mod managed {
    use super::*;

    /// IAM's default page size.
    const DEFAULT_MAX_ITEMS: usize = 100;

    /// One page of `items` after `Marker` (an opaque offset we issued), at most `MaxItems`.
    pub(super) fn page<T>(p: &Params, items: Vec<T>) -> Result<(Vec<T>, Option<String>), AwsError> {
        let max = match p.get("MaxItems") {
            None | Some("") => DEFAULT_MAX_ITEMS,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (1..=1000).contains(&n) => n as usize,
                Ok(n) => {
                    return Err(AwsError::new(
                        "ValidationError",
                        format!(
                            "1 validation error detected: Value '{n}' at 'maxItems' failed to satisfy constraint: Member must have value {}",
                            if n < 1 {
                                "greater than or equal to 1"
                            } else {
                                "less than or equal to 1000"
                            }
                        ),
                    ));
                }
                Err(_) => {
                    return Err(AwsError::new(
                        "ValidationError",
                        format!(
                            "1 validation error detected: Value '{v}' at 'maxItems' failed to satisfy constraint: Member must be an integer"
                        ),
                    ));
                }
            },
        };
        let start = match p.get("Marker") {
            None | Some("") => 0,
            Some(m) => m
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= items.len())
                .ok_or_else(|| AwsError::new("InvalidInput", "Invalid Marker."))?,
        };
        let total = items.len();
        let end = (start + max).min(total);
        let page: Vec<T> = items.into_iter().skip(start).take(end - start).collect();
        Ok((page, (end < total).then(|| end.to_string())))
    }

    fn truncation(d: &mut Doc, marker: Option<String>) {
        d.text(
            "IsTruncated",
            if marker.is_some() { "true" } else { "false" },
        );
        if let Some(m) = marker {
            d.text("Marker", &m);
        }
    }

    fn policy_xml(d: &mut Doc, pol: &pb::ManagedPolicy, full: bool) {
        d.text("PolicyName", &pol.policy_name)
            .text("PolicyId", &pol.policy_id)
            .text("Arn", &pol.arn)
            .text("Path", &pol.path)
            .text("DefaultVersionId", &pol.default_version_id)
            .text("AttachmentCount", &pol.attachment_count.to_string())
            .text("PermissionsBoundaryUsageCount", "0")
            .text("IsAttachable", "true");
        if full && !pol.description.is_empty() {
            d.text("Description", &pol.description);
        }
        d.text("CreateDate", &iso8601(pol.create_date_ms))
            .text("UpdateDate", &iso8601(pol.update_date_ms));
    }

    fn policy_json(pol: &pb::ManagedPolicy) -> Value {
        json!({
            "policy": {
                "policyName": pol.policy_name,
                "policyId": pol.policy_id,
                "arn": pol.arn,
                "path": pol.path,
                "defaultVersionId": pol.default_version_id,
                "attachmentCount": pol.attachment_count,
                "permissionsBoundaryUsageCount": 0,
                "isAttachable": true,
                "createDate": iso8601(pol.create_date_ms),
                "updateDate": iso8601(pol.update_date_ms),
            }
        })
    }

    fn version_xml(d: &mut Doc, v: &pb::PolicyVersion, with_document: bool) {
        if with_document {
            d.text("Document", &url_encode(&v.document));
        }
        d.text("VersionId", &v.version_id)
            .text(
                "IsDefaultVersion",
                if v.is_default_version {
                    "true"
                } else {
                    "false"
                },
            )
            .text("CreateDate", &iso8601(v.create_date_ms));
    }

    fn kind_of(action: &str) -> (&'static str, &'static str) {
        if action.contains("Role") {
            ("role", "RoleName")
        } else {
            ("user", "UserName")
        }
    }

    fn tags_param(p: &Params) -> Vec<pb::IamTag> {
        p.structs("Tags.member")
            .into_iter()
            .map(|t| pb::IamTag {
                key: t.get("Key").cloned().unwrap_or_default(),
                value: t.get("Value").cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// The `Tags` of CreateUser / CreateRole, set right after the creation; if they are
    /// refused, the new user or role is deleted again so that the failed call changes nothing.
    pub(super) async fn initial_tags(
        state: &State,
        account: &str,
        kind: &str,
        name: &str,
        p: &Params,
    ) -> Result<Vec<pb::IamTag>, AwsError> {
        let tags = tags_param(p);
        if tags.is_empty() {
            return Ok(tags);
        }
        let mut authz = state.clients.authz();
        let tagged = authz
            .tag_principal(pb::TagPrincipalRequest {
                account_id: account.to_owned(),
                principal_kind: kind.into(),
                principal_name: name.to_owned(),
                tags: tags.clone(),
            })
            .await;
        if let Err(e) = tagged {
            let undo = if kind == "user" {
                authz
                    .delete_user(pb::IamUserRequest {
                        account_id: account.to_owned(),
                        user_name: name.to_owned(),
                        path: String::new(),
                    })
                    .await
                    .map(|_| ())
            } else {
                authz
                    .delete_role(pb::IamRoleRequest {
                        account_id: account.to_owned(),
                        role_name: name.to_owned(),
                    })
                    .await
                    .map(|_| ())
            };
            if let Err(u) = undo {
                tracing::warn!(error = %u, "could not undo a creation whose tags were refused");
            }
            return Err(status(e));
        }
        Ok(tags)
    }

    fn bool_param(p: &Params, name: &str) -> Result<bool, AwsError> {
        match p.get(name) {
            None | Some("") => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(AwsError::new(
                "ValidationError",
                format!(
                    "1 validation error detected: Value '{v}' at '{}' failed to satisfy constraint: Member must be a boolean",
                    camel(name)
                ),
            )),
        }
    }

    fn position(d: &mut Doc, tag: &str, pos: &Option<pb::SimulationPosition>) {
        if let Some(pos) = pos {
            d.open(tag)
                .text("Line", &pos.line.to_string())
                .text("Column", &pos.column.to_string())
                .close(tag);
        }
    }

    fn statements_xml(d: &mut Doc, statements: &[pb::SimulationStatement]) {
        d.open("MatchedStatements");
        for st in statements {
            d.open("member")
                .text("SourcePolicyId", &st.source_policy_id)
                .text("SourcePolicyType", &st.source_policy_type);
            position(d, "StartPosition", &st.start_position);
            position(d, "EndPosition", &st.end_position);
            d.close("member");
        }
        d.close("MatchedStatements");
    }

    fn details_xml(
        d: &mut Doc,
        missing: &[String],
        details: &std::collections::HashMap<String, String>,
        boundary: Option<bool>,
    ) {
        d.open("MissingContextValues");
        for m in missing {
            d.text("member", m);
        }
        d.close("MissingContextValues");
        if !details.is_empty() {
            let mut entries: Vec<_> = details.iter().collect();
            entries.sort();
            d.open("EvalDecisionDetails");
            for (k, v) in entries {
                d.open("entry")
                    .text("key", k)
                    .text("value", v)
                    .close("entry");
            }
            d.close("EvalDecisionDetails");
        }
        if let Some(b) = boundary {
            d.open("PermissionsBoundaryDecisionDetail")
                .text(
                    "AllowedByPermissionsBoundary",
                    if b { "true" } else { "false" },
                )
                .close("PermissionsBoundaryDecisionDetail");
        }
    }

    fn result_xml(d: &mut Doc, r: &pb::SimulationResult) {
        d.text("EvalActionName", &r.eval_action_name)
            .text("EvalResourceName", &r.eval_resource_name)
            .text("EvalDecision", &r.eval_decision);
        statements_xml(d, &r.matched_statements);
        details_xml(
            d,
            &r.missing_context_values,
            &r.eval_decision_details,
            r.allowed_by_permissions_boundary,
        );
        if !r.resource_specific_results.is_empty() {
            d.open("ResourceSpecificResults");
            for rs in &r.resource_specific_results {
                d.open("member")
                    .text("EvalResourceName", &rs.eval_resource_name)
                    .text("EvalResourceDecision", &rs.eval_resource_decision);
                statements_xml(d, &rs.matched_statements);
                details_xml(
                    d,
                    &rs.missing_context_values,
                    &rs.eval_decision_details,
                    rs.allowed_by_permissions_boundary,
                );
                d.close("member");
            }
            d.close("ResourceSpecificResults");
        }
    }

    fn simulation_request(
        ctx: &RequestContext,
        action: &str,
        p: &Params,
    ) -> Result<pb::SimulatePolicyRequest, AwsError> {
        let policy_source_arn = if action == "SimulatePrincipalPolicy" {
            required(p, "PolicySourceArn")?.to_owned()
        } else {
            String::new()
        };
        let policy_input_list = p.list("PolicyInputList.member");
        if action == "SimulateCustomPolicy" && policy_input_list.is_empty() {
            return Err(AwsError::new(
                "ValidationError",
                "1 validation error detected: Value null at 'policyInputList' failed to satisfy constraint: Member must not be null",
            ));
        }
        let action_names = p.list("ActionNames.member");
        if action_names.is_empty() {
            return Err(AwsError::new(
                "ValidationError",
                "1 validation error detected: Value null at 'actionNames' failed to satisfy constraint: Member must not be null",
            ));
        }
        let context_entries = p
            .structs("ContextEntries.member")
            .into_iter()
            .map(|e| {
                let mut values: Vec<(u32, String)> = e
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((
                            k.strip_prefix("ContextKeyValues.member.")?.parse().ok()?,
                            v.clone(),
                        ))
                    })
                    .collect();
                values.sort_by_key(|(n, _)| *n);
                pb::SimulationContextEntry {
                    key: e.get("ContextKeyName").cloned().unwrap_or_default(),
                    values: values.into_iter().map(|(_, v)| v).collect(),
                    key_type: e.get("ContextKeyType").cloned().unwrap_or_default(),
                }
            })
            .collect();
        let mut context = ctx.clone();
        context.endpoint_policy.clear();
        Ok(pb::SimulatePolicyRequest {
            context: Some(context),
            policy_source_arn,
            policy_input_list,
            permissions_boundary_policy_input_list: p
                .list("PermissionsBoundaryPolicyInputList.member"),
            action_names,
            resource_arns: p.list("ResourceArns.member"),
            resource_policy: p.get("ResourcePolicy").unwrap_or_default().to_owned(),
            resource_owner: p.get("ResourceOwner").unwrap_or_default().to_owned(),
            caller_arn: p.get("CallerArn").unwrap_or_default().to_owned(),
            context_entries,
        })
    }

    pub(super) async fn execute(
        state: &State,
        ctx: &RequestContext,
        action: &str,
        p: &Params,
    ) -> Outcome {
        let account = caller(ctx)?.account_id.clone();
        let mut authz = state.clients.authz();
        let mut d = Doc::new();
        let mut response = Value::Null;
        let policy_request = || -> Result<pb::ManagedPolicyRequest, AwsError> {
            Ok(pb::ManagedPolicyRequest {
                account_id: account.clone(),
                policy_arn: required(p, "PolicyArn")?.to_owned(),
            })
        };
        let version_request = || -> Result<pb::PolicyVersionRequest, AwsError> {
            Ok(pb::PolicyVersionRequest {
                account_id: account.clone(),
                policy_arn: required(p, "PolicyArn")?.to_owned(),
                version_id: required(p, "VersionId")?.to_owned(),
            })
        };
        match action {
            "CreatePolicy" => {
                let name = required(p, "PolicyName")?.to_owned();
                let document = required(p, "PolicyDocument")?.to_owned();
                if !tags_param(p).is_empty() {
                    return Err(AwsError::new(
                        "UnsupportedOperationException",
                        "Tags on managed policies are not supported by this service.",
                    ));
                }
                let pol = authz
                    .create_policy(pb::CreateManagedPolicyRequest {
                        account_id: account.clone(),
                        policy_name: name,
                        path: p.get("Path").unwrap_or_default().to_owned(),
                        policy_document: document,
                        description: p.get("Description").unwrap_or_default().to_owned(),
                    })
                    .await
                    .map_err(status)?
                    .into_inner();
                d.open("Policy");
                policy_xml(&mut d, &pol, true);
                d.close("Policy");
                response = policy_json(&pol);
            }
            "GetPolicy" => {
                let pol = authz
                    .get_policy(policy_request()?)
                    .await
                    .map_err(status)?
                    .into_inner();
                d.open("Policy");
                policy_xml(&mut d, &pol, true);
                d.close("Policy");
            }
            "DeletePolicy" => {
                authz
                    .delete_policy(policy_request()?)
                    .await
                    .map_err(status)?;
                return Ok((None, Value::Null));
            }
            "ListPolicies" => {
                let scope = p.get("Scope").unwrap_or_default().to_owned();
                if let Some(u) = p.get("PolicyUsageFilter").filter(|u| !u.is_empty())
                    && u != "PermissionsPolicy"
                    && u != "PermissionsBoundary"
                {
                    return Err(AwsError::new(
                        "ValidationError",
                        format!(
                            "1 validation error detected: Value '{u}' at 'policyUsageFilter' failed to satisfy constraint: Member must satisfy enum value set: [PermissionsPolicy, PermissionsBoundary]"
                        ),
                    ));
                }
                let policies = authz
                    .list_policies(pb::ListManagedPoliciesRequest {
                        account_id: account.clone(),
                        scope,
                        only_attached: bool_param(p, "OnlyAttached")?,
                        path_prefix: p.get("PathPrefix").unwrap_or_default().to_owned(),
                    })
                    .await
                    .map_err(status)?
                    .into_inner()
                    .policies;
                // Nothing here is a permissions boundary.
                let policies = if p.get("PolicyUsageFilter") == Some("PermissionsBoundary") {
                    Vec::new()
                } else {
                    policies
                };
                let (page, marker) = page(p, policies)?;
                d.open("Policies");
                for pol in &page {
                    d.open("member");
                    policy_xml(&mut d, pol, false);
                    d.close("member");
                }
                d.close("Policies");
                truncation(&mut d, marker);
            }
            "CreatePolicyVersion" => {
                let r = pb::CreatePolicyVersionRequest {
                    account_id: account.clone(),
                    policy_arn: required(p, "PolicyArn")?.to_owned(),
                    policy_document: required(p, "PolicyDocument")?.to_owned(),
                    set_as_default: bool_param(p, "SetAsDefault")?,
                };
                let v = authz
                    .create_policy_version(r)
                    .await
                    .map_err(status)?
                    .into_inner();
                d.open("PolicyVersion");
                version_xml(&mut d, &v, false);
                d.close("PolicyVersion");
                response = json!({
                    "policyVersion": {
                        "versionId": v.version_id,
                        "isDefaultVersion": v.is_default_version,
                        "createDate": iso8601(v.create_date_ms),
                    }
                });
            }
            "GetPolicyVersion" => {
                let v = authz
                    .get_policy_version(version_request()?)
                    .await
                    .map_err(status)?
                    .into_inner();
                d.open("PolicyVersion");
                version_xml(&mut d, &v, true);
                d.close("PolicyVersion");
            }
            "ListPolicyVersions" => {
                let versions = authz
                    .list_policy_versions(policy_request()?)
                    .await
                    .map_err(status)?
                    .into_inner()
                    .versions;
                let (page, marker) = page(p, versions)?;
                d.open("Versions");
                for v in &page {
                    d.open("member");
                    version_xml(&mut d, v, false);
                    d.close("member");
                }
                d.close("Versions");
                truncation(&mut d, marker);
            }
            "DeletePolicyVersion" | "SetDefaultPolicyVersion" => {
                let r = version_request()?;
                if action == "DeletePolicyVersion" {
                    authz.delete_policy_version(r).await.map_err(status)?;
                } else {
                    authz.set_default_policy_version(r).await.map_err(status)?;
                }
                return Ok((None, Value::Null));
            }
            "AttachUserPolicy" | "DetachUserPolicy" | "AttachRolePolicy" | "DetachRolePolicy" => {
                let (kind, field) = kind_of(action);
                let r = pb::PolicyAttachmentRequest {
                    account_id: account.clone(),
                    principal_kind: kind.into(),
                    principal_name: required(p, field)?.to_owned(),
                    policy_arn: required(p, "PolicyArn")?.to_owned(),
                    path_prefix: String::new(),
                };
                if action.starts_with("Attach") {
                    authz.attach_policy(r).await.map_err(status)?;
                } else {
                    authz.detach_policy(r).await.map_err(status)?;
                }
                return Ok((None, Value::Null));
            }
            "ListAttachedUserPolicies" | "ListAttachedRolePolicies" => {
                let (kind, field) = kind_of(action);
                let policies = authz
                    .list_attached_policies(pb::PolicyAttachmentRequest {
                        account_id: account.clone(),
                        principal_kind: kind.into(),
                        principal_name: required(p, field)?.to_owned(),
                        policy_arn: String::new(),
                        path_prefix: p.get("PathPrefix").unwrap_or_default().to_owned(),
                    })
                    .await
                    .map_err(status)?
                    .into_inner()
                    .policies;
                let (page, marker) = page(p, policies)?;
                d.open("AttachedPolicies");
                for a in &page {
                    d.open("member")
                        .text("PolicyName", &a.policy_name)
                        .text("PolicyArn", &a.policy_arn)
                        .close("member");
                }
                d.close("AttachedPolicies");
                truncation(&mut d, marker);
            }
            "TagUser" | "TagRole" => {
                let (kind, field) = kind_of(action);
                let name = required(p, field)?.to_owned();
                let tags = tags_param(p);
                if tags.is_empty() {
                    return Err(AwsError::new(
                        "ValidationError",
                        "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null",
                    ));
                }
                authz
                    .tag_principal(pb::TagPrincipalRequest {
                        account_id: account.clone(),
                        principal_kind: kind.into(),
                        principal_name: name,
                        tags,
                    })
                    .await
                    .map_err(status)?;
                return Ok((None, Value::Null));
            }
            "UntagUser" | "UntagRole" => {
                let (kind, field) = kind_of(action);
                let name = required(p, field)?.to_owned();
                let tag_keys = p.list("TagKeys.member");
                if tag_keys.is_empty() {
                    return Err(AwsError::new(
                        "ValidationError",
                        "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null",
                    ));
                }
                authz
                    .untag_principal(pb::UntagPrincipalRequest {
                        account_id: account.clone(),
                        principal_kind: kind.into(),
                        principal_name: name,
                        tag_keys,
                    })
                    .await
                    .map_err(status)?;
                return Ok((None, Value::Null));
            }
            "ListUserTags" | "ListRoleTags" => {
                let (kind, field) = kind_of(action);
                let tags = authz
                    .list_principal_tags(pb::PrincipalTagsRequest {
                        account_id: account.clone(),
                        principal_kind: kind.into(),
                        principal_name: required(p, field)?.to_owned(),
                    })
                    .await
                    .map_err(status)?
                    .into_inner()
                    .tags;
                let (page, marker) = page(p, tags)?;
                tags_xml(&mut d, &page);
                truncation(&mut d, marker);
            }
            "SimulatePrincipalPolicy" | "SimulateCustomPolicy" => {
                let r = simulation_request(ctx, action, p)?;
                let results = authz
                    .simulate_policy(r)
                    .await
                    .map_err(status)?
                    .into_inner()
                    .evaluation_results;
                let (page, marker) = page(p, results)?;
                d.open("EvaluationResults");
                for r in &page {
                    d.open("member");
                    result_xml(&mut d, r);
                    d.close("member");
                }
                d.close("EvaluationResults");
                truncation(&mut d, marker);
            }
            other => {
                return Err(AwsError::new(
                    "InvalidAction",
                    format!("Could not find operation {other} for version {IAM_VERSION}"),
                ));
            }
        }
        Ok((Some(d), response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_marker_and_max_items() {
        let items: Vec<u32> = (0..5).collect();
        let p = Params::parse("MaxItems=2");
        assert_eq!(
            managed::page(&p, items.clone()).unwrap(),
            (vec![0, 1], Some("2".into()))
        );
        let p = Params::parse("MaxItems=2&Marker=4");
        assert_eq!(managed::page(&p, items.clone()).unwrap(), (vec![4], None));
        let p = Params::parse("");
        assert_eq!(managed::page(&p, items.clone()).unwrap().0.len(), 5);
        for bad in ["MaxItems=0", "MaxItems=1001", "MaxItems=x"] {
            let e = managed::page(&Params::parse(bad), items.clone()).unwrap_err();
            assert_eq!(e.code, "ValidationError", "{bad}");
        }
        let e = managed::page(&Params::parse("Marker=9"), items).unwrap_err();
        assert_eq!(e.code, "InvalidInput");
    }

    #[test]
    fn policies_are_url_encoded_as_iam_does() {
        assert_eq!(
            url_encode(r#"{"Version": "2012-10-17"}"#),
            "%7B%22Version%22%3A%20%222012-10-17%22%7D"
        );
    }

    #[test]
    fn responses_and_errors_have_the_query_envelope() {
        let mut d = Doc::new();
        d.text("UserName", "a<b");
        let doc = d.finish(IAM_XMLNS, "GetUserPolicy", "r1", true);
        assert!(doc.contains("<GetUserPolicyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><GetUserPolicyResult><UserName>a&lt;b</UserName></GetUserPolicyResult><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></GetUserPolicyResponse>"));
        let doc = Doc::new().finish(IAM_XMLNS, "DeleteUser", "r2", false);
        assert!(doc.ends_with("<DeleteUserResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><ResponseMetadata><RequestId>r2</RequestId></ResponseMetadata></DeleteUserResponse>"));
        assert_eq!(
            error_body(
                IAM_XMLNS,
                "NoSuchEntity",
                "The user with name x cannot be found.",
                "r"
            ),
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The user with name x cannot be found.</Message></Error><RequestId>r</RequestId></ErrorResponse>"
        );
        assert_eq!(status_for("NoSuchEntity"), StatusCode::NOT_FOUND);
        assert_eq!(status_for("DeleteConflict"), StatusCode::CONFLICT);
        assert_eq!(
            auth_error(AwsError::new("ExpiredTokenException", "m")).code,
            "ExpiredToken"
        );
        assert_eq!(
            auth_error(AwsError::new("UnrecognizedClientException", "m")).code,
            "InvalidClientTokenId"
        );
    }
}
