//! SigV4 framing in the gateway (`kms_gateway::sigv4`): the Authorization header, the
//! request date and the string to sign.
//!
//! Input: header lines `name: value` (lines that are not valid headers are skipped), and
//! optionally a line `URI <request target>` (default `/`). `Ok` when the gateway would send
//! a string to sign to authz; `Err("<Code>: ...")` with the exception it answers otherwise.

use http::{HeaderMap, HeaderName, HeaderValue};
use kms_gateway::sigv4;

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub fn check(data: &[u8]) -> Result<(), String> {
    let mut headers = HeaderMap::new();
    let mut uri: http::Uri = http::Uri::from_static("/");
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(target) = line.strip_prefix(b"URI ") {
            if let Ok(u) = http::Uri::try_from(target) {
                uri = u;
            }
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    let code = |e: kms_proto::error::AwsError| {
        assert!(
            e.code == "IncompleteSignatureException" || e.code == "InvalidSignatureException",
            "unexpected SigV4 error {e:?}"
        );
        format!("{}: {}", e.code, e.message)
    };
    let auth = sigv4::parse_authorization(&headers)
        .map_err(code)?
        .ok_or("MissingAuthenticationTokenException: Missing Authentication Token")?;
    // What authz is handed is well-formed.
    assert!(
        is_lower_hex(&auth.signature, 64),
        "signature {:?}",
        auth.signature
    );
    for part in [
        &auth.access_key_id,
        &auth.scope_date,
        &auth.scope_region,
        &auth.scope_service,
    ] {
        assert!(
            !part.is_empty() && !part.contains('/'),
            "scope part {part:?}"
        );
    }
    assert!(
        auth.signed_headers
            .iter()
            .all(|h| *h == h.to_ascii_lowercase()),
        "signed headers are lower case"
    );
    let date = sigv4::amz_date(&headers).map_err(code)?;
    assert_eq!(date.len(), 16, "date {date:?}");
    let payload = sigv4::sha256_hex(b"");
    let sts =
        sigv4::string_to_sign("POST", &uri, &headers, &auth, &date, &payload).map_err(code)?;
    let again =
        sigv4::string_to_sign("POST", &uri, &headers, &auth, &date, &payload).map_err(code)?;
    assert_eq!(sts, again, "string to sign is deterministic");
    let prefix = format!("AWS4-HMAC-SHA256\n{date}\n{}\n", auth.scope());
    let hash = sts.strip_prefix(&prefix).expect("string to sign layout");
    assert!(is_lower_hex(hash, 64), "canonical request hash {hash:?}");
    Ok(())
}
