//! SigV4 request framing (AWS Signature Version 4, "Create a canonical request").
//!
//! The gateway parses the `Authorization` header and builds the string to sign
//! from the request exactly as received; authz holds the secrets and checks the
//! signature. Only the payload hash computed here from the received body is
//! used, so a client cannot sign one body and send another. The URI path is
//! normalized as for every AWS service but S3 (dot segments removed, repeated
//! slashes merged, `normalize_uri_path`); the gateway does not route on the
//! path, so `/`, `//` and `/./` are the same service root.

use std::borrow::Cow;

use aws_lc_rs::digest;
use http::HeaderMap;
use kms_proto::error::AwsError;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    pub access_key_id: String,
    pub scope_date: String,
    pub scope_region: String,
    pub scope_service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl AuthHeader {
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.scope_date, self.scope_region, self.scope_service
        )
    }
}

fn incomplete(msg: String) -> AwsError {
    AwsError::new("IncompleteSignatureException", msg)
}

/// Parse the Authorization header. `None` when the request carries none.
pub fn parse_authorization(headers: &HeaderMap) -> Result<Option<AuthHeader>, AwsError> {
    let Some(raw) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let raw = raw
        .to_str()
        .map_err(|_| incomplete("Authorization header is not valid ASCII.".into()))?;
    let Some(rest) = raw.strip_prefix(ALGORITHM) else {
        return Err(incomplete(format!(
            "Unsupported Authorization Type. Authorization={raw}"
        )));
    };
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let mut missing = String::new();
    for (name, v) in [
        ("Credential", credential),
        ("Signature", signature),
        ("SignedHeaders", signed),
    ] {
        if v.is_none() {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if !missing.is_empty() {
        return Err(incomplete(format!("{missing}Authorization={raw}")));
    }
    let (credential, signed, signature) = (
        credential.unwrap_or_default(),
        signed.unwrap_or_default(),
        signature.unwrap_or_default(),
    );
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5 || parts[4] != "aws4_request" || parts.iter().any(|p| p.is_empty()) {
        return Err(incomplete(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            parts.get(2).copied().unwrap_or_default()
        )));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AwsError::new(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ));
    }
    Ok(Some(AuthHeader {
        access_key_id: parts[0].to_string(),
        scope_date: parts[1].to_string(),
        scope_region: parts[2].to_string(),
        scope_service: parts[3].to_string(),
        signed_headers: signed.split(';').map(|s| s.to_ascii_lowercase()).collect(),
        signature: signature.to_ascii_lowercase(),
    }))
}

/// The request date: `X-Amz-Date`, else `Date` in ISO 8601 basic form.
pub fn amz_date(headers: &HeaderMap) -> Result<String, AwsError> {
    let v = headers
        .get("x-amz-date")
        .or_else(|| headers.get(http::header::DATE))
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            incomplete(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                    .into(),
            )
        })?;
    let ok = v.len() == 16
        && v.as_bytes()[8] == b'T'
        && v.ends_with('Z')
        && v[..8].bytes().all(|b| b.is_ascii_digit())
        && v[9..15].bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return Err(incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{v}'. See http://en.wikipedia.org/wiki/ISO_8601"
        )));
    }
    Ok(v.to_string())
}

/// Lower-case hex of the SHA-256 of `data` (twice per request: `hex::encode` builds its
/// String a `char` at a time through an iterator, about 2,200 instructions per digest).
pub fn sha256_hex(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = digest::digest(&digest::SHA256, data);
    let mut hex = String::with_capacity(64);
    for &b in digest.as_ref() {
        hex.push(char::from(DIGITS[usize::from(b >> 4)]));
        hex.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    hex
}

const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

fn uri_encode(s: &[u8], keep_slash: bool, out: &mut String) {
    for &b in s {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// The URI path as services other than S3 sign it: RFC 3986 section 5.2.4
/// (remove_dot_segments) with repeated slashes merged, as the SDKs normalize it
/// before signing ("Create a canonical request": "Normalize URI paths according to
/// RFC 3986. Remove redundant and relative path components.").
///
/// Works on the path as sent (still percent-encoded): only literal `.` and `..`
/// segments are dot segments, so `%2E` stays a segment of its own, as the SDKs
/// see it. `..` above the root stays at the root; a path that ends in a slash,
/// or in a `.` or `..` segment, keeps (or gets) a trailing slash (RFC 3986:
/// `/a/b/..` is `/a/`); the empty path is `/`. This is aws-sigv4's
/// `normalize_uri_path` (the AWS test suite's source, the Rust SDK); botocore's
/// `remove_dot_segments` agrees except that it drops that trailing slash after a
/// final `.` or `..` segment (`/a/b/..` is `/a` there), a path no KMS client
/// sends: every KMS request is `POST /`.
pub fn normalize_uri_path(path: &str) -> Cow<'_, str> {
    if path.is_empty() {
        return Cow::Borrowed("/");
    }
    // The common case (`/`, any path without dot segments or empty segments)
    // costs no allocation.
    let has_dot_segment = path.split('/').any(|s| s == "." || s == "..");
    if path.starts_with('/') && !has_dot_segment && !path.contains("//") {
        return Cow::Borrowed(path);
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let last = path.rsplit('/').next().unwrap_or_default();
    let trailing_slash = matches!(last, "" | "." | "..") && !segments.is_empty();
    let mut out = String::with_capacity(path.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    Cow::Owned(out)
}

/// Canonical URI for services other than S3: the normalized path, encoded again
/// (the path as sent is already percent-encoded once).
fn canonical_uri(path: &str) -> String {
    let path = normalize_uri_path(path);
    let mut out = String::with_capacity(path.len());
    uri_encode(path.as_bytes(), true, &mut out);
    out
}

fn canonical_query(query: Option<&str>) -> String {
    let Some(q) = query.filter(|q| !q.is_empty()) else {
        return String::new();
    };
    let mut pairs: Vec<(String, String)> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let enc = |s: &str| {
                let decoded = percent_encoding::percent_decode_str(s).collect::<Vec<u8>>();
                let mut out = String::new();
                uri_encode(&decoded, false, &mut out);
                out
            };
            (enc(k), enc(v))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Append a header's canonical value: each value's words joined by one space,
/// the values joined by commas. Written in place: this runs for every signed
/// header of every request.
fn push_canonical_header_value<'a>(values: impl Iterator<Item = &'a [u8]>, out: &mut String) {
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, word) in String::from_utf8_lossy(v).split_whitespace().enumerate() {
            if j > 0 {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
}

/// Build the SigV4 string to sign for a received request.
pub fn string_to_sign(
    method: &str,
    uri: &http::Uri,
    headers: &HeaderMap,
    auth: &AuthHeader,
    amz_date: &str,
    payload_hash: &str,
) -> Result<String, AwsError> {
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(AwsError::new(
            "InvalidSignatureException",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    let mut canonical = String::with_capacity(512);
    canonical.push_str(method);
    canonical.push('\n');
    canonical.push_str(&canonical_uri(uri.path()));
    canonical.push('\n');
    canonical.push_str(&canonical_query(uri.query()));
    canonical.push('\n');
    for name in &auth.signed_headers {
        let values = headers.get_all(name.as_str());
        canonical.push_str(name);
        canonical.push(':');
        if values.iter().next().is_none() && name == "host" {
            // HTTP/2 carries the host as :authority.
            canonical.push_str(uri.authority().map(|a| a.as_str()).unwrap_or_default());
        } else {
            push_canonical_header_value(values.iter().map(|v| v.as_bytes()), &mut canonical);
        }
        canonical.push('\n');
    }
    canonical.push('\n');
    for (i, name) in auth.signed_headers.iter().enumerate() {
        if i > 0 {
            canonical.push(';');
        }
        canonical.push_str(name);
    }
    canonical.push('\n');
    canonical.push_str(payload_hash);
    Ok(format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        auth.scope(),
        sha256_hex(canonical.as_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_is_lower_case_hex_of_the_digest() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let data = b"Action=ListUsers&Version=2010-05-08";
        assert_eq!(
            sha256_hex(data),
            hex::encode(digest::digest(&digest::SHA256, data))
        );
    }

    // The "get-vanilla" case of the AWS SigV4 test suite: GET / with host and
    // x-amz-date signed, empty body, service "service", region us-east-1.
    #[test]
    fn get_vanilla_string_to_sign() {
        let mut h = HeaderMap::new();
        h.insert("host", "example.amazonaws.com".parse().unwrap());
        h.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
                .parse()
                .unwrap(),
        );
        let auth = parse_authorization(&h).unwrap().unwrap();
        let uri: http::Uri = "/".parse().unwrap();
        let sts = string_to_sign(
            "GET",
            &uri,
            &h,
            &auth,
            &amz_date(&h).unwrap(),
            &sha256_hex(b""),
        )
        .unwrap();
        assert_eq!(
            sts,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
    }

    #[test]
    fn query_parameters_are_sorted_and_encoded() {
        assert_eq!(canonical_query(Some("b=2&a=1&a=0")), "a=0&a=1&b=2");
        assert_eq!(canonical_query(Some("k=a%20b")), "k=a%20b");
        assert_eq!(canonical_uri("/a b"), "/a%20b");
    }

    #[test]
    fn uri_paths_are_normalized_as_rfc_3986_with_slashes_merged() {
        for (path, normalized) in [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("///", "/"),
            ("/.", "/"),
            ("/./", "/"),
            ("/..", "/"),
            ("/../", "/"),
            ("/../..", "/"),
            ("/../a", "/a"),
            ("/a/./b/../c//d", "/a/c/d"),
            ("/a/b/c/./../../g", "/a/g"),
            ("/example/..", "/"),
            ("/example1/example2/../..", "/"),
            ("/./example", "/example"),
            ("//example//", "/example/"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/a/b/", "/a/b/"),
            ("/a//b", "/a/b"),
            ("/a/b", "/a/b"),
            ("a/b", "/a/b"),
            ("/mid/content=5/../6", "/mid/6"),
            // Only literal dots are dot segments; dots inside a segment are not.
            ("/a/%2E/b", "/a/%2E/b"),
            ("/a/%2e%2e/b", "/a/%2e%2e/b"),
            ("/a/.../b", "/a/.../b"),
            ("/a/..b/.c", "/a/..b/.c"),
            ("/a%2Fb//c", "/a%2Fb/c"),
        ] {
            assert_eq!(normalize_uri_path(path), normalized, "{path:?}");
            // Normalizing is idempotent.
            assert_eq!(normalize_uri_path(normalized), normalized, "{normalized:?}");
        }
        // Already normal paths are borrowed, not copied.
        for path in ["/", "/a/b", "/a/b/", "/a/..b"] {
            assert!(
                matches!(normalize_uri_path(path), Cow::Borrowed(_)),
                "{path}"
            );
        }
    }

    #[test]
    fn canonical_uri_encodes_the_normalized_path_again() {
        assert_eq!(canonical_uri("//"), "/");
        assert_eq!(canonical_uri("/./"), "/");
        assert_eq!(canonical_uri("/a b/../c d"), "/c%20d");
        // The path as sent is encoded once; the canonical URI encodes it again.
        assert_eq!(canonical_uri("/a%20b//c"), "/a%2520b/c");
        assert_eq!(canonical_uri("/%2E/x"), "/%252E/x");
    }

    #[test]
    fn request_targets_with_dot_segments_and_slashes_sign_as_the_root() {
        // `//` and `/./` as hyper hands them over (origin-form request targets).
        for target in ["/", "//", "/./", "/a/..", "/./?", "//?"] {
            let uri: http::Uri = target.parse().unwrap();
            assert_eq!(canonical_uri(uri.path()), "/", "{target}");
        }
    }

    #[test]
    fn missing_parts_are_incomplete_signatures() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/kms/aws4_request"
                .parse()
                .unwrap(),
        );
        let e = parse_authorization(&h).unwrap_err();
        assert_eq!(e.code, "IncompleteSignatureException");
        assert!(e.message.contains("'Signature'"));
        assert!(parse_authorization(&HeaderMap::new()).unwrap().is_none());
    }

    #[test]
    fn header_values_are_trimmed_folded_and_joined() {
        let mut out = String::new();
        let values: [&[u8]; 3] = [b"  a   b\tc ", b"", b"d"];
        push_canonical_header_value(values.into_iter(), &mut out);
        assert_eq!(out, "a b c,,d");
    }

    #[test]
    fn dates_must_be_iso_basic() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-date", "2015-08-30T12:36:00Z".parse().unwrap());
        assert_eq!(
            amz_date(&h).unwrap_err().code,
            "IncompleteSignatureException"
        );
    }
}
