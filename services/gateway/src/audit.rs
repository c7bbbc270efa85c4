//! CloudTrail records of KMS calls, shaped as CloudTrail's `eventVersion` 1.08
//! (the seed's sample record), made durable by the audit service before the
//! gateway answers. Secrets never enter a record: request and response views
//! come from the botocore model with blobs and sensitive members removed.

use crate::State;
use crate::model::Operation;
use kms_proto::audit::v1::{AppendRequest, AuditRecord, Resource};
use kms_proto::common::v1::{Caller, RequestContext};
use kms_proto::error::AwsError;
use serde::Deserialize;
use serde_json::{Value, json};
use std::borrow::Cow;

/// The result of executing a call: its answer, or AWS's error.
pub type Outcome = Result<crate::kms::Reply, AwsError>;

pub const KEY_RESOURCE_TYPE: &str = "AWS::KMS::Key";

/// CloudTrail's `eventTime` form (seconds, UTC). Formatted once per second per thread:
/// the calls of one second share the text.
pub fn iso8601(ms: i64) -> String {
    thread_local! {
        static LAST: std::cell::RefCell<(i64, String)> =
            const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let second = ms.div_euclid(1000);
    LAST.with_borrow_mut(|(last, text)| {
        if *last != second {
            let fmt =
                time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
            *text = time::OffsetDateTime::from_unix_timestamp(second)
                .ok()
                .and_then(|t| t.format(&fmt).ok())
                .unwrap_or_default();
            *last = second;
        }
        text.clone()
    })
}

fn is_key_arn(s: &str) -> bool {
    s.starts_with("arn:") && s.contains(":key/")
}

fn account_of_arn(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// The members of a response that name keys, read from the response body
/// (borrowed, all other members skipped).
#[derive(Deserialize, Default)]
struct ResponseKeys<'a> {
    #[serde(rename = "KeyId", borrow, default)]
    key_id: Option<Cow<'a, str>>,
    #[serde(rename = "SourceKeyId", borrow, default)]
    source_key_id: Option<Cow<'a, str>>,
    #[serde(rename = "KeyMetadata", borrow, default)]
    key_metadata: Option<ResponseKeyMetadata<'a>>,
}

#[derive(Deserialize)]
struct ResponseKeyMetadata<'a> {
    #[serde(rename = "Arn", borrow, default)]
    arn: Option<Cow<'a, str>>,
}

/// Key ARNs a call touched: from the response when it succeeded, else from
/// the request (an ARN as given, or a bare key id in the caller's account).
pub(crate) fn key_arns(ctx: &RequestContext, request: &Value, outcome: &Outcome) -> Vec<String> {
    let mut arns = Vec::new();
    if let Ok(reply) = outcome {
        if let Some(ids) = &reply.keys {
            // Read from the message (the cryptographic operations): no parse of the body.
            arns.extend(ids.iter().flatten().filter(|s| is_key_arn(s)).cloned());
        } else {
            let keys: ResponseKeys = serde_json::from_slice(&reply.body).unwrap_or_default();
            for s in [keys.key_id, keys.source_key_id].into_iter().flatten() {
                if is_key_arn(&s) {
                    arns.push(s.into_owned());
                }
            }
            if let Some(s) = keys.key_metadata.and_then(|m| m.arn) {
                arns.push(s.into_owned());
            }
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

/// A CloudTrail event (eventVersion 1.08) as written into a record, written
/// straight from borrowed fields by [`CloudTrailEvent::to_json`] in the byte order
/// of the names, the order the records had when they were built as a (sorted)
/// `serde_json::Map`, so the text of a record is unchanged; audit keeps the
/// sender's field order.
struct CloudTrailEvent<'a> {
    aws_region: &'a str,
    error_code: Option<&'a str>,
    error_message: Option<&'a str>,
    event_category: &'static str,
    event_id: &'a str,
    event_name: &'a str,
    event_source: &'a str,
    event_time: &'a str,
    event_type: &'static str,
    event_version: &'static str,
    management_event: bool,
    read_only: bool,
    request_id: &'a str,
    request_parameters: &'a Value,
    /// Key ARNs, one resource each.
    resources: Option<&'a [String]>,
    response_elements: &'a Value,
    source_ip_address: &'a str,
    tls_details: Option<TlsDetailsView<'a>>,
    user_agent: &'a str,
    user_identity: UserIdentityView<'a>,
    vpc_endpoint_id: Option<&'a str>,
}

struct UserIdentityView<'a> {
    access_key_id: &'a str,
    account_id: &'a str,
    arn: &'a str,
    principal_id: &'a str,
    /// The role an assumed-role session was issued for.
    session_issuer: Option<SessionIssuerView<'a>>,
    ty: &'a str,
    user_name: Option<&'a str>,
}

struct SessionIssuerView<'a> {
    account_id: &'a str,
    arn: &'a str,
    ty: &'static str,
}

impl<'a> UserIdentityView<'a> {
    fn of(c: &'a Caller) -> Self {
        UserIdentityView {
            access_key_id: &c.access_key_id,
            account_id: &c.account_id,
            arn: &c.arn,
            principal_id: &c.principal_id,
            session_issuer: (c.principal_type == "AssumedRole").then_some(SessionIssuerView {
                account_id: &c.account_id,
                arn: &c.role_arn,
                ty: "Role",
            }),
            ty: &c.principal_type,
            user_name: (c.principal_type == "IAMUser").then_some(c.user_name.as_str()),
        }
    }

    fn write(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let mut o = JsonObject::new(out);
        o.str("accessKeyId", self.access_key_id)?;
        o.str("accountId", self.account_id)?;
        o.str("arn", self.arn)?;
        o.str("principalId", self.principal_id)?;
        if let Some(issuer) = &self.session_issuer {
            let mut context = JsonObject::new(o.key("sessionContext"));
            let mut i = JsonObject::new(context.key("sessionIssuer"));
            i.str("accountId", issuer.account_id)?;
            i.str("arn", issuer.arn)?;
            i.str("type", issuer.ty)?;
            i.end();
            context.end();
        }
        o.str("type", self.ty)?;
        o.opt_str("userName", self.user_name)?;
        o.end();
        Ok(())
    }
}

/// The LookupEvents user name of a caller.
fn username(c: &Caller) -> &str {
    match c.principal_type.as_str() {
        "Root" => "root",
        "AssumedRole" => &c.session_name,
        _ => &c.user_name,
    }
}

/// The `resources` of an event: one entry per key ARN.
fn write_resources(out: &mut Vec<u8>, key_arns: &[String]) -> serde_json::Result<()> {
    out.push(b'[');
    for (n, arn) in key_arns.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let mut o = JsonObject::new(out);
        o.str("ARN", arn)?;
        match account_of_arn(arn) {
            Some(account) => o.str("accountId", account)?,
            None => o.key("accountId").extend_from_slice(b"null"),
        }
        o.str("type", KEY_RESOURCE_TYPE)?;
        o.end();
    }
    out.push(b']');
    Ok(())
}

struct TlsDetailsView<'a> {
    cipher_suite: &'a str,
    client_provided_host_header: &'a str,
    tls_version: &'a str,
}

/// One JSON object being written. serde_json checks every byte of every string
/// for characters to escape one at a time (about 6 instructions a byte, most of
/// the cost of a record); here a string is checked in one pass that the compiler
/// vectorizes and copied whole when nothing needs escaping, and otherwise written
/// by serde_json, so the text is always exactly serde_json's.
struct JsonObject<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

/// Whether serde_json escapes something in `s`: control characters, `"` and `\`.
fn needs_escape(s: &str) -> bool {
    // No early exit, so that the loop vectorizes.
    s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

fn write_str(out: &mut Vec<u8>, s: &str) -> serde_json::Result<()> {
    if needs_escape(s) {
        return serde_json::to_writer(out, s);
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
    Ok(())
}

impl<'a> JsonObject<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        JsonObject { out, first: true }
    }

    /// `"name":`, after a comma unless it is the first member. Names are
    /// literals that need no escaping.
    fn key(&mut self, name: &'static str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    fn str(&mut self, name: &'static str, value: &str) -> serde_json::Result<()> {
        write_str(self.key(name), value)
    }

    fn opt_str(&mut self, name: &'static str, value: Option<&str>) -> serde_json::Result<()> {
        match value {
            Some(v) => self.str(name, v),
            None => Ok(()),
        }
    }

    fn bool(&mut self, name: &'static str, value: bool) {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.key(name).extend_from_slice(text);
    }

    fn value(&mut self, name: &'static str, value: &Value) -> serde_json::Result<()> {
        serde_json::to_writer(self.key(name), value)
    }

    fn end(self) {
        self.out.push(b'}');
    }
}

impl<'a> CloudTrailEvent<'a> {
    fn new(
        ctx: &'a RequestContext,
        caller: &'a Caller,
        e: &'a Event<'a>,
        event_id: &'a str,
        event_time: &'a str,
    ) -> Self {
        CloudTrailEvent {
            aws_region: e.region,
            error_code: e.error.map(|err| err.code.as_str()),
            error_message: e.error.map(|err| err.message.as_str()),
            event_category: "Management",
            event_id,
            event_name: e.name,
            event_source: e.source,
            event_time,
            event_type: "AwsApiCall",
            event_version: "1.08",
            management_event: true,
            read_only: e.read_only,
            request_id: &ctx.request_id,
            request_parameters: &e.request_parameters,
            resources: (!e.key_arns.is_empty()).then_some(e.key_arns),
            response_elements: &e.response_elements,
            source_ip_address: &ctx.source_ip,
            // Only calls that arrived over TLS have tlsDetails.
            tls_details: ctx.tls.as_ref().map(|tls| TlsDetailsView {
                cipher_suite: &tls.cipher_suite,
                client_provided_host_header: &tls.client_provided_host_header,
                tls_version: &tls.tls_version,
            }),
            user_agent: &ctx.user_agent,
            user_identity: UserIdentityView::of(caller),
            vpc_endpoint_id: (e.with_vpc_endpoint && !ctx.vpce_id.is_empty())
                .then_some(ctx.vpce_id.as_str()),
        }
    }

    /// The event's text.
    fn to_json(&self) -> serde_json::Result<String> {
        let mut out = Vec::with_capacity(1024);
        let mut o = JsonObject::new(&mut out);
        o.str("awsRegion", self.aws_region)?;
        o.opt_str("errorCode", self.error_code)?;
        o.opt_str("errorMessage", self.error_message)?;
        o.str("eventCategory", self.event_category)?;
        o.str("eventID", self.event_id)?;
        o.str("eventName", self.event_name)?;
        o.str("eventSource", self.event_source)?;
        o.str("eventTime", self.event_time)?;
        o.str("eventType", self.event_type)?;
        o.str("eventVersion", self.event_version)?;
        o.bool("managementEvent", self.management_event);
        o.bool("readOnly", self.read_only);
        o.str("requestID", self.request_id)?;
        o.value("requestParameters", self.request_parameters)?;
        if let Some(key_arns) = self.resources {
            write_resources(o.key("resources"), key_arns)?;
        }
        o.value("responseElements", self.response_elements)?;
        o.str("sourceIPAddress", self.source_ip_address)?;
        if let Some(tls) = &self.tls_details {
            let mut t = JsonObject::new(o.key("tlsDetails"));
            t.str("cipherSuite", tls.cipher_suite)?;
            t.str("clientProvidedHostHeader", tls.client_provided_host_header)?;
            t.str("tlsVersion", tls.tls_version)?;
            t.end();
        }
        o.str("userAgent", self.user_agent)?;
        self.user_identity.write(o.key("userIdentity"))?;
        o.opt_str("vpcEndpointId", self.vpc_endpoint_id)?;
        o.end();
        // Only `str`s and serde_json's output went in.
        String::from_utf8(out).map_err(serde::ser::Error::custom)
    }
}

/// Build a CloudTrail event (eventVersion 1.08) and make it durable before the
/// caller answers; fails closed (KMSInternalException).
pub async fn append(state: &State, ctx: &RequestContext, e: Event<'_>) -> Result<(), AwsError> {
    let no_caller = Caller::default();
    let caller = ctx.caller.as_ref().unwrap_or(&no_caller);
    // A time-ordered UUID (v7): audit's unique (account, eventID) index then grows at
    // its end instead of dirtying a random page per record (random v4 ids did).
    let event_id = uuid::Uuid::now_v7().to_string();
    let event_time = iso8601(ctx.time_ms);
    let event = CloudTrailEvent::new(ctx, caller, &e, &event_id, &event_time);
    let cloudtrail_event = event.to_json().map_err(|_| AwsError::internal())?;

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
        username: username(caller).to_string(),
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
        cloudtrail_event,
        request_id: ctx.request_id.clone(),
    };
    crate::clients::backend_call!(
        state.clients,
        audit_local,
        audit,
        "kms.audit.v1.Audit",
        "Append",
        append,
        {
            let mut request = tonic::Request::new(AppendRequest {
                records: vec![record],
            });
            // Serialized above from typed structs: audit in this process skips
            // parsing the event again.
            request
                .extensions_mut()
                .insert(kms_proto::audit::SerializedEvents);
            request
        }
    )
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
        (Ok(reply), Some(s), false) => reply
            .json
            .as_ref()
            .and_then(|v| state.kms_model.audit_view(&s.shape, v)),
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
    use serde_json::Map;

    #[test]
    fn grant_tokens_never_reach_a_record() {
        let v = without_grant_tokens(Some(json!({"grantId": "g", "grantToken": "t"})));
        assert_eq!(v, Some(json!({"grantId": "g"})));
        assert_eq!(without_grant_tokens(Some(json!({"grantToken": "t"}))), None);
        let v = without_grant_tokens(Some(json!({"keyId": "k", "grantTokens": ["t"]})));
        assert_eq!(v, Some(json!({"keyId": "k"})));
    }

    fn root_caller() -> Caller {
        Caller {
            account_id: "111122223333".into(),
            arn: "arn:aws:iam::111122223333:root".into(),
            principal_id: "111122223333".into(),
            principal_type: "Root".into(),
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            ..Default::default()
        }
    }

    #[test]
    fn root_identity_has_no_user_name_and_looks_up_as_root() {
        let c = root_caller();
        let mut text = Vec::new();
        UserIdentityView::of(&c).write(&mut text).unwrap();
        let id: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(username(&c), "root");
        assert_eq!(id["type"], "Root");
        assert!(id.get("userName").is_none());
    }

    /// The event as it was built before [`CloudTrailEvent`] existed: a sorted
    /// `serde_json::Map`. Records must keep exactly this text.
    fn map_built_event(ctx: &RequestContext, e: &Event<'_>, event_id: &str) -> String {
        let c = ctx.caller.clone().unwrap_or_default();
        let mut id = Map::new();
        id.insert("type".into(), json!(c.principal_type));
        id.insert("principalId".into(), json!(c.principal_id));
        id.insert("arn".into(), json!(c.arn));
        id.insert("accountId".into(), json!(c.account_id));
        id.insert("accessKeyId".into(), json!(c.access_key_id));
        if c.principal_type == "IAMUser" {
            id.insert("userName".into(), json!(c.user_name));
        }
        if c.principal_type == "AssumedRole" {
            id.insert(
                "sessionContext".into(),
                json!({ "sessionIssuer": { "type": "Role", "arn": c.role_arn, "accountId": c.account_id } }),
            );
        }
        let mut event = Map::new();
        event.insert("eventVersion".into(), json!("1.08"));
        event.insert("userIdentity".into(), Value::Object(id));
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
        event.insert("requestParameters".into(), e.request_parameters.clone());
        event.insert("responseElements".into(), e.response_elements.clone());
        event.insert("requestID".into(), json!(ctx.request_id));
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
        Value::Object(event).to_string()
    }

    /// A string is copied as is exactly when serde_json would not escape it.
    #[test]
    fn strings_need_escaping_where_serde_json_escapes() {
        let mut samples: Vec<String> = (0..=0x7f_u8).map(|b| char::from(b).to_string()).collect();
        samples.extend(["é", "\u{7f}x", "\u{2028}", "key/1234-abcd", ""].map(String::from));
        // A character to escape at every position of a longer string (the vectorized
        // part and the remainder).
        for at in 0..40 {
            let mut s = "a".repeat(40);
            s.replace_range(at..=at, "\\");
            samples.push(s);
        }
        for s in samples {
            let by_serde = serde_json::to_string(&s).unwrap();
            assert_eq!(needs_escape(&s), by_serde != format!("\"{s}\""), "{s:?}");
            let mut ours = Vec::new();
            write_str(&mut ours, &s).unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), by_serde);
        }
    }

    #[test]
    fn events_keep_the_text_of_map_built_records() {
        let callers = [
            root_caller(),
            Caller {
                account_id: "111122223333".into(),
                arn: "arn:aws:iam::111122223333:user/Al\"ice\n".into(),
                principal_id: "AIDA\u{1}X".into(),
                principal_type: "IAMUser".into(),
                user_name: "Al\"ice\n".into(),
                access_key_id: "AKIA2".into(),
                ..Default::default()
            },
            Caller {
                account_id: "444455556666".into(),
                arn: "arn:aws:sts::444455556666:assumed-role/R/s".into(),
                principal_id: "AROA:s".into(),
                principal_type: "AssumedRole".into(),
                role_arn: "arn:aws:iam::444455556666:role/R".into(),
                session_name: "s".into(),
                access_key_id: "ASIA3".into(),
                ..Default::default()
            },
        ];
        let error = AwsError::new("NotFoundException", "Key 'x\u{7f}' does not exist é");
        let arns = [
            "arn:aws:kms:us-east-1:111122223333:key/k1".to_string(),
            "arn:aws:kms:us-east-1::key/k2".to_string(),
        ];
        let mut n = 0;
        for caller in callers {
            for tls in [false, true] {
                for failed in [false, true] {
                    for (key_arns, vpce) in [(&arns[..], "vpce-0a1b"), (&[][..], "")] {
                        n += 1;
                        let ctx = RequestContext {
                            request_id: format!("req-{n}"),
                            caller: Some(caller.clone()),
                            source_ip: "10.0.0.7".into(),
                            user_agent: "aws-cli/2 \"x\"".into(),
                            vpce_id: vpce.into(),
                            region: "us-east-1".into(),
                            time_ms: 1_516_081_617_000,
                            tls: tls.then(|| kms_proto::common::v1::TlsDetails {
                                tls_version: "TLSv1.3".into(),
                                cipher_suite: "TLS_AES_128_GCM_SHA256".into(),
                                client_provided_host_header: "kms.us-east-1.amazonaws.com".into(),
                            }),
                            ..Default::default()
                        };
                        let e = Event {
                            source: "kms.amazonaws.com",
                            name: "Encrypt",
                            region: "us-east-1",
                            read_only: n % 2 == 0,
                            error: failed.then_some(&error),
                            request_parameters: if failed {
                                Value::Null
                            } else {
                                json!({"keyId": "k", "encryptionContext": {"b": "1", "a": "2"}})
                            },
                            response_elements: json!({"keyMetadata": {"keyId": "k", "enabled": true}}),
                            key_arns,
                            other_recipients: &[],
                            with_vpc_endpoint: n % 3 != 0,
                        };
                        let caller = ctx.caller.as_ref().unwrap();
                        let time = iso8601(ctx.time_ms);
                        let event = CloudTrailEvent::new(&ctx, caller, &e, "ev-1", &time);
                        assert_eq!(
                            event.to_json().unwrap(),
                            map_built_event(&ctx, &e, "ev-1"),
                            "case {n}"
                        );
                    }
                }
            }
        }
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
    fn response_keys_come_from_the_reply_body() {
        let ctx = RequestContext::default();
        let req = json!({"KeyId": "alias/x"});
        let reply = |body: Value| {
            Ok(crate::kms::Reply {
                body: serde_json::to_vec(&body).unwrap(),
                json: None,
                keys: None,
            })
        };
        let arn = "arn:aws:kms:us-east-1:111122223333:key/k1";
        let src = "arn:aws:kms:us-east-1:444455556666:key/k2";
        let out = reply(json!({"CiphertextBlob": "AAAA", "KeyId": arn, "SourceKeyId": src}));
        assert_eq!(key_arns(&ctx, &req, &out), vec![arn, src]);
        // An id that is not a key ARN names nothing; escapes are decoded.
        let out = reply(json!({"KeyId": "k1", "KeyMetadata": {"Arn": "arn:a\"b", "KeyId": "k1"}}));
        assert_eq!(key_arns(&ctx, &req, &out), vec!["arn:a\"b"]);
        let out = reply(json!({"KeyId": arn, "KeyMetadata": {"Arn": arn}}));
        assert_eq!(key_arns(&ctx, &req, &out), vec![arn]);
    }

    #[test]
    fn event_time_is_iso8601_utc() {
        assert_eq!(iso8601(1_516_081_617_000), "2018-01-16T05:46:57Z");
        // The same second from the cache, then the next one and an earlier one.
        assert_eq!(iso8601(1_516_081_617_999), "2018-01-16T05:46:57Z");
        assert_eq!(iso8601(1_516_081_618_000), "2018-01-16T05:46:58Z");
        assert_eq!(iso8601(1_516_081_616_999), "2018-01-16T05:46:56Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59Z");
    }
}
