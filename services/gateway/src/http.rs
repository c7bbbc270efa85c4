//! One HTTP request: size limit, SigV4, protocol dispatch, AWS responses.

use crate::{ConnInfo, State, sigv4};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use kms_proto::authz::v1::AuthenticateRequest;
use kms_proto::common::v1::{Caller, RequestContext, TlsDetails};
use kms_proto::error::AwsError;
use std::convert::Infallible;
use std::sync::Arc;
use tracing::Instrument;

pub const JSON_1_1: &str = "application/x-amz-json-1.1";
const KMS_TARGET_PREFIX: &str = "TrentService.";
const CLOUDTRAIL_TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.";

/// The HTTP status AWS uses for an exception of the JSON protocols.
pub fn status_for(code: &str) -> StatusCode {
    match code {
        "KMSInternalException" | "InternalFailure" | "CloudTrailInternalException" => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        "DependencyTimeoutException" | "ServiceUnavailableException" => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        "RequestEntityTooLargeException" => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// `{"__type": ..., "message": ...}` with AWS's status.
pub fn error_response(e: &AwsError) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "__type": e.code, "message": e.message });
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status_for(&e.code);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_1_1),
    );
    resp
}

pub fn json_response(body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_1_1),
    );
    resp
}

/// The `Date` header, formatted once per second per thread (it names the second).
fn http_date() -> Option<HeaderValue> {
    thread_local! {
        static LAST: std::cell::RefCell<(i64, Option<HeaderValue>)> = const { std::cell::RefCell::new((i64::MIN, None)) };
    }
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let now = time::OffsetDateTime::now_utc();
    LAST.with_borrow_mut(|(second, value)| {
        if *second != now.unix_timestamp() {
            *second = now.unix_timestamp();
            *value = HeaderValue::from_str(&now.format(&fmt).unwrap_or_default()).ok();
        }
        value.clone()
    })
}

/// Whether the request's Host is ambiguous: more than one Host field line, or
/// none in an HTTP/1.1 request. RFC 9112 section 3.2: "A server MUST respond
/// with a 400 (Bad Request) status code to any HTTP/1.1 request message that
/// lacks a Host header field and to any request message that contains more than
/// one Host header field line". A signature over two Host lines verifies (SigV4
/// joins their values), and a proxy in front may have routed or checked the
/// request by either one. The Host never decides the endpoint here (the local
/// address does); this is about not executing a request whose framing is
/// ambiguous.
fn ambiguous_host<B>(req: &hyper::Request<B>) -> bool {
    let mut hosts = req.headers().get_all(http::header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (_, Some(_)) => true,
        (None, _) => req.version() == http::Version::HTTP_11,
        (Some(_), None) => false,
    }
}

/// A bare 400 that closes the connection, as hyper answers a request it cannot
/// frame: nothing was run, and nothing more is read from this connection.
fn bad_request() -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    resp.headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

pub async fn handle(
    state: Arc<State>,
    conn: Arc<ConnInfo>,
    req: hyper::Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if ambiguous_host(&req) {
        return Ok(bad_request());
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    // Parsed once: it picks the error dialect here and is verified in `authenticate`.
    let auth = sigv4::parse_authorization(req.headers());
    let query_service = query_service(&auth, req.headers());
    let started = std::time::Instant::now();
    // One trace per API call: this span is the root; every gRPC hop below it
    // carries its context. The request id ties it to the response and to the
    // CloudTrail record.
    let span = tracing::info_span!(
        target: "kms::gateway",
        "api.request",
        otel.kind = "server",
        aws.request_id = %request_id,
        aws.service = tracing::field::Empty,
        aws.operation = tracing::field::Empty,
        aws.account = tracing::field::Empty,
        aws.vpce_id = tracing::field::Empty,
        kms.key_id = tracing::field::Empty,
        aws.error_code = tracing::field::Empty,
        http.status_code = tracing::field::Empty,
    );
    let mut labels = crate::metrics::Labels::default();
    let result = process(&state, &conn, req, auth, &request_id, &mut labels)
        .instrument(span.clone())
        .await;
    let error_code = result.as_ref().err().map(|e| e.code.clone());
    if let Some(code) = &error_code {
        span.record("aws.error_code", code.as_str());
    }
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => match query_service {
            Some("ec2") => crate::query::error_response(&ec2_auth_error(e), &request_id),
            Some("iam") => crate::iam::error_response(
                crate::iam::IAM_XMLNS,
                &crate::iam::auth_error(e),
                &request_id,
            ),
            Some("sts") => crate::iam::error_response(
                crate::sts::STS_XMLNS,
                &crate::iam::auth_error(e),
                &request_id,
            ),
            _ => error_response(&e),
        },
    };
    span.record("http.status_code", resp.status().as_u16());
    crate::metrics::record_request(
        &labels,
        error_code.as_deref(),
        resp.status().as_u16(),
        started.elapsed(),
    );
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-amzn-requestid", v);
    }
    if let Some(v) = http_date() {
        h.insert(http::header::DATE, v);
    }
    Ok(resp)
}

/// Which Query-protocol service a request speaks, if any (its errors are that service's
/// XML): signed for `ec2`, `iam` or `sts`, or (EC2) an unsigned form post without a JSON
/// target.
fn query_service(
    auth: &Result<Option<sigv4::AuthHeader>, AwsError>,
    headers: &HeaderMap,
) -> Option<&'static str> {
    match auth {
        Ok(Some(auth)) => match auth.scope_service.as_str() {
            "ec2" => Some("ec2"),
            "iam" => Some("iam"),
            "sts" => Some("sts"),
            _ => None,
        },
        _ => (headers.get("x-amz-target").is_none()
            && headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded")))
        .then_some("ec2"),
    }
}

/// EC2's names for the authentication failures of the JSON protocols.
fn ec2_auth_error(e: AwsError) -> AwsError {
    let code = match e.code.as_str() {
        "UnrecognizedClientException" => "AuthFailure",
        "InvalidSignatureException" if e.message.starts_with("Signature expired") => {
            "RequestExpired"
        }
        "InvalidSignatureException" => "SignatureDoesNotMatch",
        "IncompleteSignatureException" => "IncompleteSignature",
        "MissingAuthenticationTokenException" => "MissingAuthenticationToken",
        _ => return e,
    };
    AwsError::new(code, e.message)
}

fn unknown_target(target: &str) -> AwsError {
    AwsError::new(
        "UnknownOperationException",
        if target.is_empty() {
            "Missing X-Amz-Target header.".to_string()
        } else {
            format!("Unknown operation {target}")
        },
    )
}

enum Protocol<'a> {
    Kms(&'a str),
    CloudTrail(&'a str),
    /// The EC2 Query API (the VPC model); the action is in the form body.
    Ec2,
    /// The IAM and STS Query APIs (identities, kept by authz).
    Iam,
    Sts,
}

async fn process(
    state: &State,
    conn: &ConnInfo,
    req: hyper::Request<Incoming>,
    auth: Result<Option<sigv4::AuthHeader>, AwsError>,
    request_id: &str,
    labels: &mut crate::metrics::Labels,
) -> Result<Response<Full<Bytes>>, AwsError> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, state.config.max_body_bytes)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return Err(AwsError::new(
                "RequestEntityTooLargeException",
                format!(
                    "Request body must be at most {} bytes.",
                    state.config.max_body_bytes
                ),
            ));
        }
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (caller, service, scope_region) = authenticate(state, &parts, auth, &body).await?;
    // A request for a known target must be signed for that target's service.
    for (prefix, expected) in [
        (KMS_TARGET_PREFIX, "kms"),
        (CLOUDTRAIL_TARGET_PREFIX, "cloudtrail"),
    ] {
        if target.starts_with(prefix) && service != expected {
            return Err(AwsError::new(
                "InvalidSignatureException",
                format!("Credential should be scoped to correct service: '{expected}'. "),
            ));
        }
    }
    // The credential scope's service decides the protocol.
    let protocol = match service.as_str() {
        "kms" => Protocol::Kms(
            target
                .strip_prefix(KMS_TARGET_PREFIX)
                .ok_or_else(|| unknown_target(target))?,
        ),
        "cloudtrail" => Protocol::CloudTrail(
            target
                .strip_prefix(CLOUDTRAIL_TARGET_PREFIX)
                .ok_or_else(|| unknown_target(target))?,
        ),
        "ec2" => Protocol::Ec2,
        "iam" => Protocol::Iam,
        "sts" => Protocol::Sts,
        other => {
            return Err(AwsError::new(
                "UnknownOperationException",
                format!("This endpoint does not serve the '{other}' service."),
            ));
        }
    };
    // The endpoint as the registry has it now (its policy may have changed
    // since the connection opened).
    let endpoint = state.current_endpoint(conn)?;
    *labels = crate::metrics::Labels::new(
        &service,
        match &protocol {
            Protocol::Kms(op) | Protocol::CloudTrail(op) => op,
            Protocol::Ec2 | Protocol::Iam | Protocol::Sts => crate::metrics::query_action(&body),
        },
    );
    labels.record_on_current_span(
        &caller.account_id,
        endpoint
            .as_ref()
            .map(|e| e.vpce_id.as_str())
            .unwrap_or_default(),
    );
    // Request quotas (per caller account and Region, shared by every
    // endpoint): a throttled call goes no further and is not recorded.
    if let Protocol::Kms(op) = &protocol {
        state
            .throttle
            .check(&caller.account_id, &scope_region, op, &body)?;
    }
    let ctx = RequestContext {
        request_id: request_id.to_string(),
        caller: Some(caller),
        source_ip: conn.peer_ip.clone(),
        user_agent: parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        vpce_id: endpoint
            .as_ref()
            .map(|e| e.vpce_id.clone())
            .unwrap_or_default(),
        vpc_id: endpoint
            .as_ref()
            .map(|e| e.vpc_id.clone())
            .unwrap_or_default(),
        // The Region the request was signed for (one the stack serves).
        region: scope_region,
        // The connection's own transport, nothing the client claims.
        secure_transport: conn.tls.is_some(),
        time_ms: now_ms(),
        endpoint_policy: endpoint.map(|e| e.policy_document).unwrap_or_default(),
        tls: conn.tls.as_ref().map(|t| TlsDetails {
            tls_version: t.version.to_string(),
            cipher_suite: t.cipher_suite.clone(),
            client_provided_host_header: host_header(&parts),
        }),
    };
    // The other protocols' futures are boxed: inline, the largest of them would
    // set the size of every request's future, which is moved (copied) as a whole.
    match protocol {
        Protocol::Kms(op) => crate::kms::call(state, ctx, op, &body).await,
        Protocol::CloudTrail(op) => Box::pin(crate::cloudtrail::call(state, ctx, op, &body)).await,
        Protocol::Ec2 => Box::pin(crate::ec2::call(state, ctx, parts.uri.query(), &body)).await,
        Protocol::Iam => Box::pin(crate::iam::call(state, ctx, parts.uri.query(), &body)).await,
        Protocol::Sts => Box::pin(crate::sts::call(state, ctx, parts.uri.query(), &body)).await,
    }
}

/// The host the client named: the `Host` header (HTTP/1.1) or the
/// `:authority` (HTTP/2), as sent. Recorded only; it decides nothing.
fn host_header(parts: &http::request::Parts) -> String {
    parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_string()))
        .unwrap_or_default()
}

pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Verify SigV4 through authz; returns the caller and the scope's service and
/// Region.
async fn authenticate(
    state: &State,
    parts: &http::request::Parts,
    auth: Result<Option<sigv4::AuthHeader>, AwsError>,
    body: &[u8],
) -> Result<(Caller, String, String), AwsError> {
    let headers: &HeaderMap = &parts.headers;
    let Some(auth) = auth? else {
        return Err(AwsError::new(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let amz_date = sigv4::amz_date(headers)?;
    if auth.scope_region != state.config.region
        && !state.config.additional_regions.contains(&auth.scope_region)
    {
        return Err(AwsError::new(
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to a valid region, not '{}'. ",
                auth.scope_region
            ),
        ));
    }
    let payload_hash = sigv4::sha256_hex(body);
    if let Some(claimed) = headers.get("x-amz-content-sha256")
        && claimed.as_bytes() != payload_hash.as_bytes()
    {
        return Err(AwsError::new(
            "InvalidSignatureException",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ));
    }
    let string_to_sign = sigv4::string_to_sign(
        parts.method.as_str(),
        &parts.uri,
        headers,
        &auth,
        &amz_date,
        &payload_hash,
    )?;
    let request = AuthenticateRequest {
        access_key_id: auth.access_key_id,
        scope_date: auth.scope_date,
        scope_region: auth.scope_region.clone(),
        scope_service: auth.scope_service.clone(),
        amz_date,
        string_to_sign,
        signature: auth.signature,
        security_token: headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
    };
    let resp = crate::clients::backend_call!(
        state.clients,
        authz_local,
        authz,
        "kms.authz.v1.Authz",
        "Authenticate",
        authenticate,
        request
    )
    .map_err(|s| AwsError::from_status(&s))?;
    let caller = resp.caller.ok_or_else(AwsError::internal)?;
    Ok((caller, auth.scope_service, auth.scope_region))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an async function returns, without calling it.
    fn future_size<A, Fut>(_: impl FnOnce(A) -> Fut) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// Every request's future is moved (copied) whole, by hyper among others: the
    /// rare paths stay boxed, out of it (it was 36 KB before they were).
    #[test]
    fn a_request_future_stays_small() {
        let handle = future_size(|(s, c, r)| handle(s, c, r));
        let kms = future_size(|(s, x, o, b): (&State, RequestContext, &str, &[u8])| {
            crate::kms::call(s, x, o, b)
        });
        assert!(handle < 8 * 1024, "a request's future is {handle} bytes");
        assert!(kms < 8 * 1024, "a KMS call's future is {kms} bytes");
    }

    fn request(version: http::Version, hosts: &[&str]) -> http::Request<()> {
        let mut b = http::Request::builder()
            .method("POST")
            .uri("/")
            .version(version);
        for h in hosts {
            b = b.header(http::header::HOST, *h);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn a_request_needs_exactly_one_host() {
        use http::Version;
        for v in [Version::HTTP_10, Version::HTTP_11, Version::HTTP_2] {
            assert!(!ambiguous_host(&request(
                v,
                &["kms.us-east-1.amazonaws.com"]
            )));
            // Two lines, whether they agree or not.
            assert!(ambiguous_host(&request(v, &["a.example", "b.example"])));
            assert!(ambiguous_host(&request(v, &["a.example", "a.example"])));
        }
        // HTTP/1.1 requires one; HTTP/1.0 has none; HTTP/2 carries :authority.
        assert!(ambiguous_host(&request(Version::HTTP_11, &[])));
        assert!(!ambiguous_host(&request(Version::HTTP_10, &[])));
        assert!(!ambiguous_host(&request(Version::HTTP_2, &[])));
        let r = bad_request();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()[http::header::CONNECTION], "close");
    }
}
