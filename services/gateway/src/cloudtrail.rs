//! The CloudTrail JSON 1.1 protocol: LookupEvents and ListPublicKeys over the audit service.
//! A caller sees only the records delivered to its own account; the digest signing public
//! keys are the service's (regional in AWS), the same for every caller.

use crate::State;
use crate::http::json_response;
use base64::Engine;
use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use kms_proto::audit::v1::{ListPublicKeysRequest, LookupEventsRequest};
use kms_proto::common::v1::RequestContext;
use kms_proto::error::AwsError;
use serde_json::{Value, json};

/// A CloudTrail timestamp: epoch seconds (what the SDKs send) or ISO 8601.
fn timestamp_ms(v: &Value) -> Result<i64, AwsError> {
    if let Some(n) = v.as_f64() {
        return Ok((n * 1000.0) as i64);
    }
    let s = v.as_str().unwrap_or_default();
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            AwsError::new(
                "SerializationException",
                format!("Could not parse the timestamp '{s}'."),
            )
        })
}

pub async fn call(
    state: &State,
    ctx: RequestContext,
    op_name: &str,
    body: &[u8],
) -> Result<Response<Full<Bytes>>, AwsError> {
    let op = state.cloudtrail_model.operation(op_name).ok_or_else(|| {
        AwsError::new(
            "UnknownOperationException",
            format!("Unknown operation {op_name}"),
        )
    })?;
    let request: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|_| {
            AwsError::new(
                "SerializationException",
                "Start of structure or map found where not expected.",
            )
        })?
    };
    state.cloudtrail_model.validate_input(op, &request)?;
    if op_name == "ListPublicKeys" {
        return list_public_keys(state, &request).await;
    }
    if op_name != "LookupEvents" {
        return Err(AwsError::new(
            "UnsupportedOperationException",
            format!(
                "CloudTrail {op_name} is not supported; this endpoint serves LookupEvents and ListPublicKeys."
            ),
        ));
    }
    let attrs = request
        .get("LookupAttributes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if attrs.len() > 1 {
        return Err(AwsError::new(
            "InvalidLookupAttributesException",
            "You cannot specify more than one lookup attribute.",
        ));
    }
    let (attribute_key, attribute_value) = attrs
        .first()
        .map(|a| {
            (
                a.get("AttributeKey")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                a.get("AttributeValue")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .unwrap_or_default();
    let start = request.get("StartTime").map(timestamp_ms).transpose()?;
    let end = request.get("EndTime").map(timestamp_ms).transpose()?;
    let account_id = ctx
        .caller
        .as_ref()
        .map(|c| c.account_id.clone())
        .ok_or_else(AwsError::internal)?;
    let resp = state
        .clients
        .audit()
        .lookup_events(LookupEventsRequest {
            account_id,
            attribute_key,
            attribute_value,
            start_time_ms: start,
            end_time_ms: end,
            max_results: request
                .get("MaxResults")
                .and_then(Value::as_i64)
                .unwrap_or(0) as i32,
            next_token: request
                .get("NextToken")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
        .await
        .map_err(|s| AwsError::from_status(&s))?
        .into_inner();
    let events: Vec<Value> = resp
        .events
        .iter()
        .map(|e| {
            json!({
                "EventId": e.event_id,
                "EventName": e.event_name,
                "ReadOnly": if e.read_only { "true" } else { "false" },
                "AccessKeyId": e.access_key_id,
                "EventTime": e.event_time_ms as f64 / 1000.0,
                "EventSource": e.event_source,
                "Username": e.username,
                "Resources": e.resources.iter().map(|r| json!({
                    "ResourceType": r.resource_type,
                    "ResourceName": r.resource_name,
                })).collect::<Vec<_>>(),
                "CloudTrailEvent": e.cloudtrail_event,
            })
        })
        .collect();
    let mut out = json!({ "Events": events });
    if !resp.next_token.is_empty() {
        out["NextToken"] = json!(resp.next_token);
    }
    Ok(json_response(out.to_string().into_bytes()))
}

/// ListPublicKeys: `Value` is the DER of the PKCS #1 public key (a blob: base64 on the wire),
/// times are epoch seconds; no `ValidityEndTime` while a key is the current signing key.
async fn list_public_keys(
    state: &State,
    request: &Value,
) -> Result<Response<Full<Bytes>>, AwsError> {
    let start = request.get("StartTime").map(timestamp_ms).transpose()?;
    let end = request.get("EndTime").map(timestamp_ms).transpose()?;
    let resp = state
        .clients
        .audit()
        .list_public_keys(ListPublicKeysRequest {
            start_time_ms: start,
            end_time_ms: end,
        })
        .await
        .map_err(|s| AwsError::from_status(&s))?
        .into_inner();
    let keys: Vec<Value> = resp
        .public_key_list
        .iter()
        .map(|k| {
            let mut v = json!({
                "Value": base64::engine::general_purpose::STANDARD.encode(&k.value),
                "ValidityStartTime": k.validity_start_time_ms as f64 / 1000.0,
                "Fingerprint": k.fingerprint,
            });
            if let Some(end) = k.validity_end_time_ms {
                v["ValidityEndTime"] = json!(end as f64 / 1000.0);
            }
            v
        })
        .collect();
    Ok(json_response(
        json!({ "PublicKeyList": keys }).to_string().into_bytes(),
    ))
}
