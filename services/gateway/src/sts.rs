//! The STS Query API (version 2011-06-15): GetCallerIdentity and AssumeRole.
//!
//! AssumeRole is decided and issued by authz (the role's trust policy and the caller's
//! identity policies; the temporary credentials are kept there). Each call is recorded as a
//! CloudTrail event of `sts.amazonaws.com` (without the secret key or the session token),
//! delivered to the caller's account and, for AssumeRole, to the role's.
//! Session policies (`Policy`, `PolicyArns`) are not supported and are refused rather than
//! ignored, since ignoring them would grant more than asked.

use crate::State;
use crate::iam::{Doc, backend_error, error_response, iso8601, record, required};
use crate::query::Params;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use kms_proto::authz::v1 as pb;
use kms_proto::common::v1::RequestContext;
use kms_proto::error::AwsError;
use serde_json::{Value, json};

pub const STS_XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
pub const STS_VERSION: &str = "2011-06-15";

pub const SUPPORTED: &[&str] = &["GetCallerIdentity", "AssumeRole"];

/// Serve one STS request. Always answers in STS's format (errors included).
pub async fn call(
    state: &State,
    ctx: RequestContext,
    query: Option<&str>,
    body: &[u8],
) -> Result<Response<Full<Bytes>>, AwsError> {
    let (params, action) = Params::from_request(query, body);
    let mut recipients = Vec::new();
    let outcome = match action.as_str() {
        "" => Err(AwsError::new(
            "MissingAction",
            "The request must contain the parameter Action",
        )),
        "GetCallerIdentity" => get_caller_identity(&ctx),
        "AssumeRole" => {
            if let Some(account) = params.get("RoleArn").and_then(|a| a.split(':').nth(4)) {
                recipients.push(account.to_owned());
            }
            assume_role(state, &ctx, &params).await
        }
        a => Err(AwsError::new(
            "InvalidAction",
            format!("Could not find operation {a} for version {STS_VERSION}"),
        )),
    };
    if SUPPORTED.contains(&action.as_str()) {
        let response = match &outcome {
            Ok((_, v)) => Ok(v.clone()),
            Err(e) => Err(e.clone()),
        };
        if let Err(e) = record(
            state,
            &ctx,
            "sts.amazonaws.com",
            &action,
            &params,
            &response,
            &recipients,
        )
        .await
        {
            return Ok(error_response(
                STS_XMLNS,
                &backend_error(e),
                &ctx.request_id,
            ));
        }
    }
    Ok(match outcome {
        Ok((doc, _)) => {
            let mut resp = Response::new(Full::new(Bytes::from(doc.finish(
                STS_XMLNS,
                &action,
                &ctx.request_id,
                true,
            ))));
            *resp.status_mut() = StatusCode::OK;
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/xml"),
            );
            resp
        }
        Err(e) => error_response(STS_XMLNS, &e, &ctx.request_id),
    })
}

fn get_caller_identity(ctx: &RequestContext) -> Result<(Doc, Value), AwsError> {
    let c = ctx.caller.as_ref().ok_or_else(AwsError::internal)?;
    let user_id = if c.principal_type == "Root" || c.principal_id.is_empty() {
        c.account_id.clone()
    } else {
        c.principal_id.clone()
    };
    let mut d = Doc::new();
    d.text("Arn", &c.arn)
        .text("UserId", &user_id)
        .text("Account", &c.account_id);
    Ok((d, Value::Null))
}

async fn assume_role(
    state: &State,
    ctx: &RequestContext,
    p: &Params,
) -> Result<(Doc, Value), AwsError> {
    let role_arn = required(p, "RoleArn")?.to_owned();
    let session = required(p, "RoleSessionName")?.to_owned();
    if p.get("Policy").is_some() || !p.structs("PolicyArns.member").is_empty() {
        return Err(AwsError::new(
            "ValidationError",
            "Session policies (Policy, PolicyArns) are not supported by this endpoint.",
        ));
    }
    let duration = match p.get("DurationSeconds") {
        None | Some("") => 0,
        Some(v) => v.parse::<i32>().map_err(|_| {
            AwsError::new(
                "ValidationError",
                format!("1 validation error detected: Value '{v}' at 'durationSeconds' failed to satisfy constraint: Member must be an integer"),
            )
        })?,
    };
    let r = state
        .clients
        .authz()
        .assume_role(pb::AssumeRoleRequest {
            context: Some(ctx.clone()),
            role_arn,
            role_session_name: session,
            duration_seconds: duration,
        })
        .await
        .map_err(|s| backend_error(AwsError::from_status(&s)))?
        .into_inner();
    let expiration = iso8601(r.expiration_ms);
    let mut d = Doc::new();
    d.open("Credentials")
        .text("AccessKeyId", &r.access_key_id)
        .text("SecretAccessKey", &r.secret_access_key)
        .text("SessionToken", &r.session_token)
        .text("Expiration", &expiration)
        .close("Credentials")
        .open("AssumedRoleUser")
        .text("AssumedRoleId", &r.assumed_role_id)
        .text("Arn", &r.arn)
        .close("AssumedRoleUser");
    // CloudTrail's view: no secret key, no session token.
    let elements = json!({
        "credentials": { "accessKeyId": r.access_key_id, "expiration": expiration },
        "assumedRoleUser": { "assumedRoleId": r.assumed_role_id, "arn": r.arn },
    });
    Ok((d, elements))
}
