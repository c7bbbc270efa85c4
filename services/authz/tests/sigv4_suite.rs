//! SigV4 conformance: the AWS signing test suite (header signing, `tests/data/sigv4/`) through
//! the gateway's framing (`kms_gateway::sigv4`: Authorization header, date, payload hash,
//! string to sign) and authz's verifier (`kms_authz::sigv4::Authenticator`: clock window,
//! scope, signing key, signature, session token), the two halves of one `Authenticate` call.
//!
//! Every vector that can reach the gateway as an HTTP request must give the suite's string to
//! sign and be accepted, except those signed without URI path normalization (S3's rule), which
//! a service other than S3 refuses; every mutation of an accepted request must be refused with
//! KMS's exception name and message, and only a path that normalizes to the signed one is
//! the same request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use kms_authz::FixedClock;
use kms_authz::accounts::{AccessKey, AccountSummary, NewAccount, Secret, SessionInfo};
use kms_authz::error::{Error, SIGNATURE_MISMATCH};
use kms_authz::sigv4::{Authenticator, SignedRequest, check_clock, parse_amz_date};
use kms_authz::store::Store;
use kms_gateway::sigv4;
use kms_proto::error::AwsError;
use time::OffsetDateTime;
use time::macros::datetime;

/// The suite's signing time.
const SIGNED_AT: OffsetDateTime = datetime!(2015-08-30 12:36:00 UTC);
const ACCOUNT: &str = "111122223333";
/// The clock window authz runs with (`Config::max_clock_skew`'s default, AWS's 5 minutes).
const SKEW: Duration = Duration::from_secs(300);

/// Vectors whose request target is not a valid HTTP request target (a raw space in the path):
/// `http::Uri` refuses it, so hyper answers the request line 400 before SigV4 is looked at
/// (SDKs send `%20`), and these cannot reach the verifier.
const NOT_ON_THE_WIRE: &[&str] = &["get-space-normalized", "get-space-unnormalized"];

/// Vectors signed over the URI path as sent (`"normalize": false`, S3's rule) whose path
/// normalization changes. Every AWS service but S3 signs and verifies the normalized path
/// (dot segments removed, repeated slashes merged), so the gateway frames each exactly like
/// its `-normalized` twin, the same request on the wire, and refuses its signature.
const SIGNED_UNNORMALIZED: &[&str] = &[
    "get-relative-relative-unnormalized",
    "get-relative-unnormalized",
    "get-slash-dot-slash-unnormalized",
    "get-slash-pointless-dot-unnormalized",
    "get-slash-unnormalized",
    "get-slashes-unnormalized",
];

// ---------------------------------------------------------------------------------------
// The suite's files.

struct Vector {
    name: String,
    access_key_id: String,
    secret: String,
    token: Option<String>,
    region: String,
    service: String,
    /// Whether the suite signed the normalized URI path.
    normalize: bool,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    string_to_sign: String,
    signature: String,
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sigv4")
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
}

/// Parse `header-signed-request.txt`: request line, header lines (a line starting with
/// whitespace continues the previous header, obs-fold, unfolded with one space), blank line,
/// body (`Content-Length` bytes when given).
fn parse_signed_request(text: &str) -> (String, String, Vec<(String, String)>, Vec<u8>) {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().expect("request line");
    let (method, rest) = request_line.split_once(' ').expect("method");
    let target = rest.rsplit_once(' ').map_or(rest, |(t, _version)| t);
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().expect("continuation after a header");
            last.1.push(' ');
            last.1.push_str(line.trim());
            continue;
        }
        let (name, value) = line.split_once(':').expect("header line");
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let body = match headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        Some((_, len)) => body.as_bytes()[..len.parse::<usize>().expect("length")].to_vec(),
        None => Vec::new(),
    };
    (method.to_owned(), target.to_owned(), headers, body)
}

fn load(name: &str) -> Vector {
    let dir = data_dir().join(name);
    let context: serde_json::Value =
        serde_json::from_str(&read(&dir, "context.json")).expect("context.json");
    let creds = &context["credentials"];
    let (method, target, headers, body) =
        parse_signed_request(&read(&dir, "header-signed-request.txt"));
    Vector {
        name: name.to_owned(),
        access_key_id: creds["access_key_id"].as_str().unwrap().to_owned(),
        secret: creds["secret_access_key"].as_str().unwrap().to_owned(),
        token: creds["token"].as_str().map(str::to_owned),
        region: context["region"].as_str().unwrap().to_owned(),
        service: context["service"].as_str().unwrap().to_owned(),
        normalize: context["normalize"].as_bool().expect("normalize flag"),
        method,
        target,
        headers,
        body,
        string_to_sign: read(&dir, "header-string-to-sign.txt")
            .trim_end()
            .to_owned(),
        signature: read(&dir, "header-signature.txt").trim().to_owned(),
    }
}

fn all_vectors() -> Vec<Vector> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir())
        .expect("data dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("context.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.iter().map(|n| load(n)).collect()
}

// ---------------------------------------------------------------------------------------
// A request as the gateway receives it, and the two halves of Authenticate.

#[derive(Clone)]
struct Wire {
    method: String,
    uri: http::Uri,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Wire {
    /// `None` when the target cannot be an HTTP request target.
    fn from_vector(v: &Vector) -> Option<Self> {
        let uri: http::Uri = v.target.parse().ok()?;
        let mut headers = HeaderMap::new();
        for (name, value) in &v.headers {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        Some(Self {
            method: v.method.clone(),
            uri,
            headers,
            body: v.body.clone(),
        })
    }

    fn authorization(&self) -> String {
        self.headers["authorization"].to_str().unwrap().to_owned()
    }

    fn set(&mut self, name: &'static str, value: &str) {
        self.headers
            .insert(name, HeaderValue::from_str(value).expect("header value"));
    }

    /// The same request sent to another path (same query).
    fn with_path(&self, path: &str) -> Self {
        let target = match self.uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        Self {
            uri: target.parse().unwrap_or_else(|e| panic!("{target}: {e}")),
            ..self.clone()
        }
    }
}

/// The gateway's half (`http::authenticate` before the authz call): parse the Authorization
/// header and the date, hash the received body, build the string to sign.
fn frame(w: &Wire) -> Result<SignedRequest, AwsError> {
    let auth = sigv4::parse_authorization(&w.headers)?.ok_or_else(|| {
        AwsError::new(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        )
    })?;
    let amz_date = sigv4::amz_date(&w.headers)?;
    let payload_hash = sigv4::sha256_hex(&w.body);
    let string_to_sign = sigv4::string_to_sign(
        &w.method,
        &w.uri,
        &w.headers,
        &auth,
        &amz_date,
        &payload_hash,
    )?;
    Ok(SignedRequest {
        access_key_id: auth.access_key_id,
        scope_date: auth.scope_date,
        scope_region: auth.scope_region,
        scope_service: auth.scope_service,
        amz_date,
        string_to_sign,
        signature: auth.signature,
        security_token: w
            .headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    })
}

/// Access keys in memory.
struct Keys(HashMap<String, AccessKey>);

impl Store for Keys {
    async fn access_key(&self, id: &str) -> Result<Option<AccessKey>, Error> {
        Ok(self.0.get(id).cloned())
    }
    async fn create_account(&self, _: &NewAccount) -> Result<(), Error> {
        Ok(())
    }
    async fn list_accounts(&self) -> Result<Vec<AccountSummary>, Error> {
        Ok(Vec::new())
    }
    async fn bootstrap(&self, _: &[NewAccount]) -> Result<bool, Error> {
        Ok(false)
    }
}

fn sha256_hex(s: &str) -> String {
    sigv4::sha256_hex(s.as_bytes())
}

/// An authenticator that knows the vector's key (a session key when the vector has a token).
fn authenticator(v: &Vector, now: OffsetDateTime) -> (Authenticator<Keys>, Arc<FixedClock>) {
    let mut key = AccessKey::root(
        ACCOUNT,
        v.access_key_id.clone(),
        Secret::new(v.secret.clone()),
        0,
    );
    if let Some(token) = &v.token {
        key.session = Some(SessionInfo {
            token_sha256: sha256_hex(token),
            role_arn: format!("arn:aws:iam::{ACCOUNT}:role/suite"),
            session_name: "suite".into(),
            expires_ms: (SIGNED_AT.unix_timestamp() + 3600) * 1000,
        });
    }
    let clock = Arc::new(FixedClock::new(now));
    let keys = Keys(HashMap::from([(key.access_key_id.clone(), key)]));
    (
        Authenticator::new(Arc::new(keys), clock.clone(), SKEW),
        clock,
    )
}

/// Both halves; the error as the gateway would render it.
async fn authenticate(auth: &Authenticator<Keys>, w: &Wire) -> Result<AccessKey, AwsError> {
    let req = frame(w)?;
    auth.authenticate(&req).await.map_err(AwsError::from)
}

#[track_caller]
fn assert_refused(r: Result<AccessKey, AwsError>, code: &str, message: &str, what: &str) {
    match r {
        Ok(_) => panic!("{what}: accepted, expected {code}"),
        Err(e) => {
            assert_eq!(e.code, code, "{what}: {}", e.message);
            assert_eq!(e.message, message, "{what}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The suite.

#[tokio::test]
async fn every_vector_is_framed_and_verified_as_the_suite_says() {
    let vectors = all_vectors();
    assert_eq!(vectors.len(), 38, "vectors under {}", data_dir().display());
    let (mut accepted, mut unnormalized, mut unreachable) = (0, 0, 0);
    let mut failures = Vec::new();
    for v in &vectors {
        assert_eq!(
            (v.region.as_str(), v.service.as_str()),
            ("us-east-1", "service")
        );
        let (auth, _) = authenticator(v, SIGNED_AT);
        let listed_unreachable = NOT_ON_THE_WIRE.contains(&v.name.as_str());
        let Some(wire) = Wire::from_vector(v) else {
            if !listed_unreachable {
                failures.push(format!(
                    "{}: target {:?} is not a valid request target",
                    v.name, v.target
                ));
            }
            unreachable += 1;
            continue;
        };
        if listed_unreachable {
            failures.push(format!("{}: listed as unreachable but parses", v.name));
        }
        let framed = frame(&wire).unwrap_or_else(|e| panic!("{}: {e:?}", v.name));
        assert_eq!(framed.signature, v.signature, "{}", v.name);
        let result = auth.authenticate(&framed).await.map_err(AwsError::from);
        if SIGNED_UNNORMALIZED.contains(&v.name.as_str()) {
            assert!(!v.normalize, "{}: listed as signed unnormalized", v.name);
            // The same request on the wire as its normalized twin, but for the signature;
            // the gateway frames both alike: the twin's string to sign.
            let twin = load(&v.name.replace("-unnormalized", "-normalized"));
            assert!(twin.normalize, "{}", twin.name);
            assert_eq!(
                (&v.method, &v.target, &v.body),
                (&twin.method, &twin.target, &twin.body)
            );
            let strip = |h: &[(String, String)]| -> Vec<(String, String)> {
                h.iter()
                    .filter(|(n, _)| !n.eq_ignore_ascii_case("authorization"))
                    .cloned()
                    .collect()
            };
            assert_eq!(strip(&v.headers), strip(&twin.headers), "{}", v.name);
            assert_ne!(v.signature, twin.signature, "{}", v.name);
            assert_ne!(
                framed.string_to_sign, v.string_to_sign,
                "{}: the suite's unnormalized string to sign",
                v.name
            );
            assert_eq!(framed.string_to_sign, twin.string_to_sign, "{}", v.name);
            assert_refused(
                result,
                "InvalidSignatureException",
                SIGNATURE_MISMATCH,
                &v.name,
            );
            unnormalized += 1;
            continue;
        }
        if framed.string_to_sign != v.string_to_sign {
            failures.push(format!(
                "{}: string to sign\n{}\n!= suite's\n{}",
                v.name, framed.string_to_sign, v.string_to_sign
            ));
            continue;
        }
        if !v.normalize {
            // Signed over the path as sent: accepted only because it is already normal.
            let path = wire.uri.path();
            assert_eq!(sigv4::normalize_uri_path(path), path, "{}", v.name);
        }
        match result {
            Ok(key) => {
                assert_eq!(key.access_key_id, v.access_key_id);
                assert_eq!(key.account_id, ACCOUNT);
                accepted += 1;
            }
            Err(e) => failures.push(format!("{}: refused: {e:?}", v.name)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(accepted + unnormalized + unreachable, vectors.len());
    assert_eq!(accepted, 30);
    assert_eq!(unnormalized, SIGNED_UNNORMALIZED.len());
    assert_eq!(unreachable, NOT_ON_THE_WIRE.len());
    eprintln!(
        "{accepted} accepted, {unnormalized} signed unnormalized refused, {unreachable} not on the wire"
    );
}

#[tokio::test]
async fn normalized_path_vectors_verify() {
    // The twins of `SIGNED_UNNORMALIZED`: dot segments and repeated slashes, signed as every
    // AWS service but S3 signs them, over the normalized path.
    for (name, canonical_path) in [
        ("get-relative-normalized", "/"),
        ("get-relative-relative-normalized", "/"),
        ("get-slash-dot-slash-normalized", "/"),
        ("get-slash-normalized", "/"),
        ("get-slash-pointless-dot-normalized", "/example"),
        ("get-slashes-normalized", "/example/"),
    ] {
        let v = load(name);
        assert!(v.normalize, "{name}");
        let wire = Wire::from_vector(&v).expect("on the wire");
        assert_ne!(
            wire.uri.path(),
            canonical_path,
            "{name}: a path to normalize"
        );
        assert_eq!(sigv4::normalize_uri_path(wire.uri.path()), canonical_path);
        let canonical = read(&data_dir().join(name), "header-canonical-request.txt");
        assert_eq!(canonical.lines().nth(1), Some(canonical_path), "{name}");
        let framed = frame(&wire).unwrap();
        assert_eq!(framed.string_to_sign, v.string_to_sign, "{name}");
        let (auth, _) = authenticator(&v, SIGNED_AT);
        let key = authenticate(&auth, &wire)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(key.access_key_id, v.access_key_id);
    }
}

/// The vectors that are accepted as they are, as requests.
fn accepted_vectors() -> Vec<(Vector, Wire)> {
    all_vectors()
        .into_iter()
        .filter(|v| {
            !NOT_ON_THE_WIRE.contains(&v.name.as_str())
                && !SIGNED_UNNORMALIZED.contains(&v.name.as_str())
        })
        .map(|v| {
            let w = Wire::from_vector(&v).expect("on the wire");
            (v, w)
        })
        .collect()
}

fn flip_hex(c: char) -> char {
    if c == '0' { '1' } else { '0' }
}

fn signed_headers(w: &Wire) -> Vec<String> {
    let a = w.authorization();
    let list = a
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .expect("SignedHeaders");
    list.split(';').map(str::to_owned).collect()
}

#[tokio::test]
async fn mutations_of_signed_requests_are_refused() {
    let vectors = accepted_vectors();
    assert_eq!(vectors.len(), 30);
    let mut refused = 0;
    for (v, wire) in &vectors {
        let (auth, clock) = authenticator(v, SIGNED_AT);
        let name = v.name.as_str();
        authenticate(&auth, wire)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));

        // Every hex digit of the signature, flipped.
        let a = wire.authorization();
        let at = a.find("Signature=").unwrap() + "Signature=".len();
        for i in 0..64 {
            let mut flipped: Vec<char> = a.chars().collect();
            flipped[at + i] = flip_hex(flipped[at + i]);
            let mut w = wire.clone();
            w.set("authorization", &flipped.iter().collect::<String>());
            assert_refused(
                authenticate(&auth, &w).await,
                "InvalidSignatureException",
                SIGNATURE_MISMATCH,
                &format!("{name}: signature digit {i} flipped"),
            );
            refused += 1;
        }

        // Every signed header's value changed (the date has its own checks below).
        for h in signed_headers(wire) {
            if h == "x-amz-date" {
                continue;
            }
            let mut w = wire.clone();
            let old = w
                .headers
                .get(h.as_str())
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let name_h = HeaderName::from_bytes(h.as_bytes()).unwrap();
            w.headers
                .insert(name_h, HeaderValue::from_str(&format!("{old}x")).unwrap());
            assert_refused(
                authenticate(&auth, &w).await,
                "InvalidSignatureException",
                SIGNATURE_MISMATCH,
                &format!("{name}: header {h} changed"),
            );
            refused += 1;
        }

        // A changed body: the payload hash is computed from what was received.
        for body in [b"x".to_vec(), [wire.body.as_slice(), b" "].concat()] {
            let mut w = wire.clone();
            w.body = body;
            assert_refused(
                authenticate(&auth, &w).await,
                "InvalidSignatureException",
                SIGNATURE_MISMATCH,
                &format!("{name}: body changed"),
            );
            refused += 1;
        }

        // The date one second later (same day, inside the window).
        let mut w = wire.clone();
        w.set("x-amz-date", "20150830T123601Z");
        assert_refused(
            authenticate(&auth, &w).await,
            "InvalidSignatureException",
            SIGNATURE_MISMATCH,
            &format!("{name}: date changed"),
        );
        // The next day, with the clock there too: the credential scope's date disagrees.
        let mut w = wire.clone();
        w.set("x-amz-date", "20150831T123600Z");
        clock.set(datetime!(2015-08-31 12:36:00 UTC));
        assert_refused(
            authenticate(&auth, &w).await,
            "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20150830' != '20150831', from '20150831T123600Z'.",
            &format!("{name}: day changed"),
        );
        clock.set(SIGNED_AT);
        refused += 2;

        // Another Region, service or date in the credential scope.
        for (from, to) in [
            ("/us-east-1/", "/us-west-2/"),
            ("/service/", "/kms/"),
            ("/service/", "/Service/"),
        ] {
            let mut w = wire.clone();
            w.set("authorization", &a.replacen(from, to, 1));
            assert_refused(
                authenticate(&auth, &w).await,
                "InvalidSignatureException",
                SIGNATURE_MISMATCH,
                &format!("{name}: scope {from} -> {to}"),
            );
            refused += 1;
        }
        let mut w = wire.clone();
        w.set("authorization", &a.replacen("/20150830/", "/20150829/", 1));
        assert_refused(
            authenticate(&auth, &w).await,
            "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20150829' != '20150830', from '20150830T123600Z'.",
            &format!("{name}: scope date"),
        );
        refused += 1;

        // Another access key id.
        let mut w = wire.clone();
        w.set(
            "authorization",
            &a.replacen("AKIDEXAMPLE", "AKIDEXAMPLF", 1),
        );
        assert_refused(
            authenticate(&auth, &w).await,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
            &format!("{name}: access key"),
        );
        refused += 1;

        // Session credentials: the token must come along, and be the one issued.
        if v.token.is_some() {
            for token in [None, Some("AQoDYXdzEPTother")] {
                let mut w = wire.clone();
                match token {
                    None => {
                        w.headers.remove("x-amz-security-token");
                    }
                    Some(t) => w.set("x-amz-security-token", t),
                }
                let signed = signed_headers(wire)
                    .iter()
                    .any(|h| h == "x-amz-security-token");
                let r = authenticate(&auth, &w).await;
                if signed {
                    // A signed token header changed: the signature no longer matches.
                    assert_refused(r, "InvalidSignatureException", SIGNATURE_MISMATCH, name);
                } else {
                    assert_refused(
                        r,
                        "UnrecognizedClientException",
                        "The security token included in the request is invalid.",
                        &format!("{name}: token {token:?}"),
                    );
                }
                refused += 1;
            }
        }

        // The path: only one that normalizes to the signed path is the same request.
        let path = wire.uri.path().to_owned();
        for same in [
            format!("/.{path}"),
            format!("/{path}"),
            format!("/x/..{path}"),
        ] {
            authenticate(&auth, &wire.with_path(&same))
                .await
                .unwrap_or_else(|e| panic!("{name}: path {path} sent as {same}: {e:?}"));
        }
        for other in [
            format!("{path}x"),
            format!("/x{path}"),
            // An encoded dot is not a dot segment.
            format!("/%2E{path}"),
            format!("/..x{path}"),
        ] {
            assert_refused(
                authenticate(&auth, &wire.with_path(&other)).await,
                "InvalidSignatureException",
                SIGNATURE_MISMATCH,
                &format!("{name}: path {path} sent as {other}"),
            );
            refused += 1;
        }

        // Headers that are not signed do not matter (control).
        let mut w = wire.clone();
        w.set("x-unsigned-extra", "anything");
        w.set("user-agent", "mutated/1.0");
        authenticate(&auth, &w)
            .await
            .unwrap_or_else(|e| panic!("{name}: unsigned header added: {e:?}"));
    }
    eprintln!("{refused} mutations refused over {} vectors", vectors.len());
    assert!(refused > 30 * 70);
}

#[tokio::test]
async fn malformed_authorization_is_refused_before_authz() {
    let v = load("get-vanilla");
    let wire = Wire::from_vector(&v).unwrap();
    let (auth, _) = authenticator(&v, SIGNED_AT);
    let a = wire.authorization();
    let sig = &v.signature;
    let cred = "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";

    let mut w = wire.clone();
    w.headers.remove("authorization");
    assert_refused(
        authenticate(&auth, &w).await,
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
        "no Authorization",
    );

    let cases: Vec<(String, &str, String)> = vec![
        (
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;x-amz-date"),
            "IncompleteSignatureException",
            format!(
                "Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;x-amz-date"
            ),
        ),
        (
            format!("AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature={sig}"),
            "IncompleteSignatureException",
            format!(
                "Authorization header requires 'Credential' parameter. Authorization=AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature={sig}"
            ),
        ),
        (
            a.replacen("AWS4-HMAC-SHA256", "AWS3-HMAC-SHA256", 1),
            "IncompleteSignatureException",
            format!(
                "Unsupported Authorization Type. Authorization={}",
                a.replacen("AWS4-HMAC-SHA256", "AWS3-HMAC-SHA256", 1)
            ),
        ),
        (
            a.replacen("/service/aws4_request", "/service", 1),
            "IncompleteSignatureException",
            "Credential should be scoped to a valid region, not 'us-east-1'. ".into(),
        ),
        (
            a.replacen("/aws4_request", "/aws5_request", 1),
            "IncompleteSignatureException",
            "Credential should be scoped to a valid region, not 'us-east-1'. ".into(),
        ),
        (
            a.replacen(sig.as_str(), &sig[..63], 1),
            "InvalidSignatureException",
            SIGNATURE_MISMATCH.into(),
        ),
        (
            a.replacen(sig.as_str(), &format!("{}g", &sig[..63]), 1),
            "InvalidSignatureException",
            SIGNATURE_MISMATCH.into(),
        ),
        (
            a.replacen(
                "SignedHeaders=host;x-amz-date",
                "SignedHeaders=x-amz-date",
                1,
            ),
            "InvalidSignatureException",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ),
    ];
    for (header, code, message) in &cases {
        let mut w = wire.clone();
        w.set("authorization", header);
        assert_refused(authenticate(&auth, &w).await, code, message, header);
    }

    let mut w = wire.clone();
    w.set("x-amz-date", "2015-08-30T12:36:00Z");
    assert_refused(
        authenticate(&auth, &w).await,
        "IncompleteSignatureException",
        "Date must be in ISO-8601 'basic format'. Got '2015-08-30T12:36:00Z'. See http://en.wikipedia.org/wiki/ISO_8601",
        "dashed date",
    );
    let mut w = wire.clone();
    w.headers.remove("x-amz-date");
    assert_refused(
        authenticate(&auth, &w).await,
        "IncompleteSignatureException",
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        "no date",
    );
    // Shaped like a date but not one: the gateway lets it through, authz refuses it.
    let mut w = wire.clone();
    w.set("x-amz-date", "20151330T123600Z");
    assert_refused(
        authenticate(&auth, &w).await,
        "IncompleteSignatureException",
        "Date must be in ISO-8601 'basic format'. Got '20151330T123600Z'. See http://en.wikipedia.org/wiki/ISO_8601",
        "month 13",
    );
    // Upper-case hex is the same signature.
    let mut w = wire.clone();
    w.set(
        "authorization",
        &a.replacen(sig.as_str(), &sig.to_ascii_uppercase(), 1),
    );
    authenticate(&auth, &w).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// The ±5 minute clock window (AWS's messages), on a suite request and on `check_clock`.

#[tokio::test]
async fn clock_window_accepts_299_seconds_and_refuses_301() {
    let v = load("get-vanilla");
    let wire = Wire::from_vector(&v).unwrap();
    let (auth, clock) = authenticator(&v, SIGNED_AT);
    // Signed 299 s (and exactly 300 s) in the past or in the future: accepted.
    for offset in [-300i64, -299, 0, 299, 300] {
        clock.set(SIGNED_AT + time::Duration::seconds(offset));
        authenticate(&auth, &wire)
            .await
            .unwrap_or_else(|e| panic!("clock at signing time {offset:+} s: {e:?}"));
    }
    // Signed 301 s in the past: expired.
    clock.set(SIGNED_AT + time::Duration::seconds(301));
    assert_refused(
        authenticate(&auth, &wire).await,
        "InvalidSignatureException",
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T124101Z - 5 min.)",
        "signed 301 s ago",
    );
    // Signed 301 s in the future: not yet current.
    clock.set(SIGNED_AT - time::Duration::seconds(301));
    assert_refused(
        authenticate(&auth, &wire).await,
        "InvalidSignatureException",
        "Signature not yet current: 20150830T123600Z is still later than 20150830T123559Z (20150830T123059Z + 5 min.)",
        "signed 301 s ahead",
    );
    // The window is checked before the signature: a stale request with a wrong signature
    // still hears that it is stale (AWS's order).
    clock.set(SIGNED_AT + time::Duration::seconds(3600));
    let mut w = wire.clone();
    let a = w.authorization();
    w.set(
        "authorization",
        &a.replacen(&v.signature, &"0".repeat(64), 1),
    );
    let e = authenticate(&auth, &w).await.unwrap_err();
    assert_eq!(e.code, "InvalidSignatureException");
    assert!(
        e.message.starts_with("Signature expired: "),
        "{}",
        e.message
    );
}

#[test]
fn check_clock_is_inclusive_at_five_minutes_either_way() {
    let signed = parse_amz_date("20150830T123600Z").unwrap();
    assert_eq!(signed, SIGNED_AT);
    for offset in -400i64..=400 {
        let now = SIGNED_AT + time::Duration::seconds(offset);
        let r = check_clock(signed, "20150830T123600Z", now, SKEW);
        match r {
            Ok(()) => assert!(offset.abs() <= 300, "accepted at {offset:+} s"),
            Err(Error::InvalidSignature(m)) => {
                assert!(offset.abs() > 300, "refused at {offset:+} s: {m}");
                let prefix = if offset > 0 {
                    "Signature expired: 20150830T123600Z is now earlier than "
                } else {
                    "Signature not yet current: 20150830T123600Z is still later than "
                };
                assert!(m.starts_with(prefix), "{offset:+} s: {m}");
                assert!(m.ends_with(" 5 min.)"), "{m}");
            }
            Err(e) => panic!("{offset:+} s: unexpected {e:?}"),
        }
    }
}
