//! CloudTrail records of KMS calls, shaped as CloudTrail's `eventVersion` 1.08
//! (the seed's sample record), made durable by the audit service before the
//! gateway answers. Secrets never enter a record: request and response views
//! come from the botocore model with blobs and sensitive members removed.

use crate::State;
use crate::model::Operation;
use kms_proto::audit::v1::{AppendRequest, AuditRecord, Resource};
use kms_proto::common::v1::{Caller, RequestContext};
use kms_proto::error::AwsError;
use serde_json::{Map, Value, json};

/// The result of executing a call: the response JSON, or AWS's error.
pub type Outcome = Result<Value, AwsError>;

pub const KEY_RESOURCE_TYPE: &str = "AWS::KMS::Key";

/// CloudTrail's `eventTime` form (seconds, UTC).
pub fn iso8601(ms: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

/// CloudTrail's userIdentity and the LookupEvents user name of a caller.
pub fn user_identity(c: &Caller) -> (Value, String) {
    let mut id = Map::new();
    id.insert("type".into(), json!(c.principal_type));
    id.insert("principalId".into(), json!(c.principal_id));
    id.insert("arn".into(), json!(c.arn));
    id.insert("accountId".into(), json!(c.account_id));
    id.insert("accessKeyId".into(), json!(c.access_key_id));
    let username = match c.principal_type.as_str() {
        "Root" => "root".to_string(),
        "AssumedRole" => c.session_name.clone(),
        _ => c.user_name.clone(),
    };
    if c.principal_type == "IAMUser" {
        id.insert("userName".into(), json!(c.user_name));
    }
    if c.principal_type == "AssumedRole" {
        id.insert(
            "sessionContext".into(),
            json!({ "sessionIssuer": { "type": "Role", "arn": c.role_arn, "accountId": c.account_id } }),
        );
    }
    (Value::Object(id), username)
}

fn is_key_arn(s: &str) -> bool {
    s.starts_with("arn:") && s.contains(":key/")
}

fn account_of_arn(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// Key ARNs a call touched: from the response when it succeeded, else from
/// the request (an ARN as given, or a bare key id in the caller's account).
fn key_arns(ctx: &RequestContext, request: &Value, outcome: &Outcome) -> Vec<String> {
    let mut arns = Vec::new();
    if let Ok(resp) = outcome {
        for k in ["KeyId", "SourceKeyId"] {
            if let Some(s) = resp
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| is_key_arn(s))
            {
                arns.push(s.to_string());
            }
        }
        if let Some(s) = resp
            .get("KeyMetadata")
            .and_then(|m| m.get("Arn"))
            .and_then(Value::as_str)
        {
            arns.push(s.to_string());
        }
    }
    if arns.is_empty() {
        for k in ["KeyId", "TargetKeyId", "SourceKeyId", "DestinationKeyId"] {
            let Some(id) = request.get(k).and_then(Value::as_str) else {
                continue;
            };
            if is_key_arn(id) {
                arns.push(id.to_string());
            } else if uuid::Uuid::parse_str(id).is_ok() {
                let account = ctx
                    .caller
                    .as_ref()
                    .map(|c| c.account_id.as_str())
                    .unwrap_or_default();
                arns.push(format!("arn:aws:kms:{}:{account}:key/{id}", ctx.region));
            }
        }
    }
    arns.dedup();
    arns
}

/// What differs between the CloudTrail events of the protocols; [`append`]
/// adds the common envelope.
pub struct Event<'a> {
    pub source: &'a str,
    pub name: &'a str,
    pub region: &'a str,
    pub read_only: bool,
    pub error: Option<&'a AwsError>,
    pub request_parameters: Value,
    pub response_elements: Value,
    /// Key ARNs the call touched (their accounts receive the record too).
    pub key_arns: &'a [String],
    /// Other accounts that receive the record.
    pub other_recipients: &'a [String],
    /// Whether the record names the VPC endpoint the call came through.
    pub with_vpc_endpoint: bool,
}

/// Build a CloudTrail event (eventVersion 1.08) and make it durable before the
/// caller answers; fails closed (KMSInternalException).
pub async fn append(state: &State, ctx: &RequestContext, e: Event<'_>) -> Result<(), AwsError> {
    let caller = ctx.caller.clone().unwrap_or_default();
    let (identity, username) = user_identity(&caller);
    let mut event = Map::new();
    event.insert("eventVersion".into(), json!("1.08"));
    event.insert("userIdentity".into(), identity);
    event.insert("eventTime".into(), json!(iso8601(ctx.time_ms)));
    event.insert("eventSource".into(), json!(e.source));
    event.insert("eventName".into(), json!(e.name));
    event.insert("awsRegion".into(), json!(e.region));
    event.insert("sourceIPAddress".into(), json!(ctx.source_ip));
    event.insert("userAgent".into(), json!(ctx.user_agent));
    if let Some(err) = e.error {
        event.insert("errorCode".into(), json!(err.code));
        event.insert("errorMessage".into(), json!(err.message));
    }
    event.insert("requestParameters".into(), e.request_parameters);
    event.insert("responseElements".into(), e.response_elements);
    event.insert("requestID".into(), json!(ctx.request_id));
    // A time-ordered UUID (v7): audit's unique (account, eventID) index then grows at
    // its end instead of dirtying a random page per record (random v4 ids did).
    let event_id = uuid::Uuid::now_v7().to_string();
    event.insert("eventID".into(), json!(event_id));
    event.insert("readOnly".into(), json!(e.read_only));
    if !e.key_arns.is_empty() {
        let resources: Vec<Value> = e
            .key_arns
            .iter()
            .map(|a| json!({ "accountId": account_of_arn(a), "type": KEY_RESOURCE_TYPE, "ARN": a }))
            .collect();
        event.insert("resources".into(), Value::Array(resources));
    }
    event.insert("eventType".into(), json!("AwsApiCall"));
    event.insert("managementEvent".into(), json!(true));
    event.insert("eventCategory".into(), json!("Management"));
    if e.with_vpc_endpoint && !ctx.vpce_id.is_empty() {
        event.insert("vpcEndpointId".into(), json!(ctx.vpce_id));
    }
    // Only calls that arrived over TLS have tlsDetails.
    if let Some(tls) = &ctx.tls {
        event.insert(
            "tlsDetails".into(),
            json!({
                "tlsVersion": tls.tls_version,
                "cipherSuite": tls.cipher_suite,
                "clientProvidedHostHeader": tls.client_provided_host_header,
            }),
        );
    }

    // The caller's account, each key owner's account and any other named account.
    let mut recipients = vec![caller.account_id.clone()];
    let others = e
        .key_arns
        .iter()
        .filter_map(|a| account_of_arn(a))
        .chain(e.other_recipients.iter().map(String::as_str));
    for a in others {
        if !a.is_empty() && !recipients.iter().any(|r| r == a) {
            recipients.push(a.to_string());
        }
    }
    let record = AuditRecord {
        event_id,
        event_time_ms: ctx.time_ms,
        event_name: e.name.to_string(),
        event_source: e.source.to_string(),
        read_only: e.read_only,
        username,
        access_key_id: caller.access_key_id.clone(),
        resources: e
            .key_arns
            .iter()
            .map(|a| Resource {
                resource_type: KEY_RESOURCE_TYPE.into(),
                resource_name: a.clone(),
            })
            .collect(),
        recipient_account_ids: recipients,
        cloudtrail_event: Value::Object(event).to_string(),
        request_id: ctx.request_id.clone(),
    };
    state
        .clients
        .audit()
        .append(AppendRequest {
            records: vec![record],
        })
        .await
        .map_err(|s| {
            tracing::error!(error = %s.message(), request_id = %ctx.request_id, "audit record not durable; failing the call");
            AwsError::internal()
        })?;
    Ok(())
}

/// Build the record of a KMS call and append it; fails closed.
pub async fn record(
    state: &State,
    ctx: &RequestContext,
    op_name: &str,
    op: &Operation,
    request: &Value,
    outcome: &Outcome,
) -> Result<(), AwsError> {
    let read_only = crate::kms::is_read_only(op_name);
    let arns = key_arns(ctx, request, outcome);
    let params = op
        .input
        .as_ref()
        .and_then(|s| state.kms_model.audit_view(&s.shape, request));
    let params = match params {
        // CloudTrail shows the algorithm KMS used even when the caller left it out.
        Some(Value::Object(mut p)) if matches!(op_name, "Encrypt" | "Decrypt") => {
            p.entry("encryptionAlgorithm")
                .or_insert_with(|| json!("SYMMETRIC_DEFAULT"));
            Some(Value::Object(p))
        }
        None if op_name == "Decrypt" => Some(json!({ "encryptionAlgorithm": "SYMMETRIC_DEFAULT" })),
        other => other,
    };
    // CloudTrail shows responseElements only for calls that change something.
    let response = match (outcome, &op.output, read_only) {
        (Ok(v), Some(s), false) => state.kms_model.audit_view(&s.shape, v),
        _ => None,
    };
    // Grant tokens let their holder use a grant at once: no record shows them.
    let (params, response) = (without_grant_tokens(params), without_grant_tokens(response));
    append(
        state,
        ctx,
        Event {
            source: "kms.amazonaws.com",
            name: op_name,
            region: &ctx.region,
            read_only,
            error: outcome.as_ref().err(),
            request_parameters: params.unwrap_or(Value::Null),
            response_elements: response.unwrap_or(Value::Null),
            key_arns: &arns,
            other_recipients: &[],
            with_vpc_endpoint: true,
        },
    )
    .await
}

/// A request or response view without `grantToken` / `grantTokens` (`None` when nothing
/// else is left).
fn without_grant_tokens(view: Option<Value>) -> Option<Value> {
    match view {
        Some(Value::Object(mut o)) => {
            o.remove("grantToken");
            o.remove("grantTokens");
            (!o.is_empty()).then_some(Value::Object(o))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_tokens_never_reach_a_record() {
        let v = without_grant_tokens(Some(json!({"grantId": "g", "grantToken": "t"})));
        assert_eq!(v, Some(json!({"grantId": "g"})));
        assert_eq!(without_grant_tokens(Some(json!({"grantToken": "t"}))), None);
        let v = without_grant_tokens(Some(json!({"keyId": "k", "grantTokens": ["t"]})));
        assert_eq!(v, Some(json!({"keyId": "k"})));
    }

    #[test]
    fn root_identity_has_no_user_name_and_looks_up_as_root() {
        let c = Caller {
            account_id: "111122223333".into(),
            arn: "arn:aws:iam::111122223333:root".into(),
            principal_id: "111122223333".into(),
            principal_type: "Root".into(),
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            ..Default::default()
        };
        let (id, username) = user_identity(&c);
        assert_eq!(username, "root");
        assert_eq!(id["type"], "Root");
        assert!(id.get("userName").is_none());
    }

    #[test]
    fn bare_key_ids_are_attributed_to_the_callers_account() {
        let ctx = RequestContext {
            region: "us-east-1".into(),
            caller: Some(Caller {
                account_id: "111122223333".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let req = json!({"KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab"});
        let arns = key_arns(&ctx, &req, &Err(AwsError::internal()));
        assert_eq!(
            arns,
            vec!["arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"]
        );
    }

    #[test]
    fn event_time_is_iso8601_utc() {
        assert_eq!(iso8601(1_516_081_617_000), "2018-01-16T05:46:57Z");
    }
}
