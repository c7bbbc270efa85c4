//! `minimal_server`: the in-run reference that `kms-bench` numbers are read
//! against. It is a measuring reference, not part of the product.
//!
//! One process, one HTTP/1.1 listener, one AES-256-GCM key in memory, and only
//! the work a KMS Encrypt, Decrypt or GenerateDataKey cannot skip: verify the
//! SigV4 signature (canonical request, HMAC-SHA256 with a signing key cached
//! per access key, date, Region and service, constant-time comparison), parse
//! the JSON body, seal or open. No policy, no audit, no persistence, no gRPC
//! hop: the gap between its numbers and the stack's on the same machine in the
//! same run is what the stack's architecture costs.
//!
//! It knows one credential pair (the `kms-bench` default, account
//! 111122223333). CreateKey returns the one key, so `kms-bench` runs without
//! `--key-id`. Errors are KMS JSON (`{"__type", "message"}`, 400). It binds
//! 127.0.0.0/8 addresses only.
//!
//! ```text
//! cargo run --release -p kms-bench --example minimal_server -- --listen 127.0.0.1:4577
//! kms-bench --endpoint http://127.0.0.1:4577 --op encrypt
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, bail};
use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::{digest, hmac, rand};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use clap::Parser;
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::Deserialize;
use serde::de::IgnoredAny;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

/// The one credential pair (the AWS documentation's example, `kms-bench`'s default).
const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const ACCOUNT: &str = "111122223333";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// KMS requests are small (4 KiB of plaintext at most, base64 in JSON).
const MAX_BODY: usize = 64 * 1024;
/// SigV4 allows this much clock difference between client and server.
const MAX_SKEW: Duration = Duration::from_secs(5 * 60);
/// Blob layout: version byte, 96-bit nonce, ciphertext, 128-bit tag.
const BLOB_VERSION: u8 = 1;
/// Signing keys kept before the cache is emptied (one per client and day, normally).
const MAX_CACHED_SIGNING_KEYS: usize = 1024;

/// RFC 3986 unreserved characters stay as they are; everything else is encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
const UNRESERVED_AND_SLASH: &AsciiSet = &UNRESERVED.remove(b'/');

#[derive(Debug, Parser)]
#[command(
    name = "minimal_server",
    about = "Reference KMS for kms-bench: SigV4 + JSON + AES-256-GCM, nothing else"
)]
struct Cli {
    /// Address to listen on; must be in 127.0.0.0/8.
    #[arg(long, default_value = "127.0.0.1:4577")]
    listen: SocketAddr,
    /// Region served (the credential scope must name it).
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Runtime worker threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
}

/// A KMS error as the JSON 1.1 protocol renders it.
#[derive(Debug)]
struct KmsError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

fn client_error(kind: &'static str, message: impl Into<String>) -> KmsError {
    KmsError {
        status: StatusCode::BAD_REQUEST,
        kind,
        message: message.into(),
    }
}

fn invalid_signature(message: impl Into<String>) -> KmsError {
    client_error("InvalidSignatureException", message)
}

fn validation(message: impl Into<String>) -> KmsError {
    client_error("ValidationException", message)
}

/// Signing keys are derived from the secret in four HMACs; they only change
/// with the access key, the day, the Region and the service.
type ScopeKey = (String, String, String, String);

struct Server {
    region: String,
    key_id: String,
    arn: String,
    key: RandomizedNonceKey,
    signing_keys: RwLock<HashMap<ScopeKey, hmac::Key>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptRequest {
    key_id: String,
    plaintext: String,
    encryption_context: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptRequest {
    ciphertext_blob: String,
    key_id: Option<String>,
    encryption_context: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateDataKeyRequest {
    key_id: String,
    key_spec: Option<String>,
    number_of_bytes: Option<u32>,
    encryption_context: Option<IgnoredAny>,
}

impl Server {
    fn new(region: String) -> anyhow::Result<Self> {
        let mut material = [0u8; 32];
        rand::fill(&mut material).map_err(|_| anyhow::anyhow!("no randomness"))?;
        let key = RandomizedNonceKey::new(&AES_256_GCM, &material)
            .map_err(|_| anyhow::anyhow!("cannot make an AES-256-GCM key"))?;
        material.fill(0);
        let mut id = [0u8; 16];
        rand::fill(&mut id).map_err(|_| anyhow::anyhow!("no randomness"))?;
        // A version 4 UUID, like KMS key ids.
        id[6] = (id[6] & 0x0f) | 0x40;
        id[8] = (id[8] & 0x3f) | 0x80;
        let h = hex::encode(id);
        let key_id = format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        );
        let arn = format!("arn:aws:kms:{region}:{ACCOUNT}:key/{key_id}");
        Ok(Self {
            region,
            key_id,
            arn,
            key,
            signing_keys: RwLock::new(HashMap::new()),
        })
    }

    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let (parts, body) = request.into_parts();
        let result = match Limited::new(body, MAX_BODY).collect().await {
            Ok(body) => self.call(&parts, &body.to_bytes()),
            Err(_) => Err(client_error(
                "SerializationException",
                "request body unreadable or larger than 64 KiB",
            )),
        };
        Ok(match result {
            Ok(body) => reply(StatusCode::OK, body),
            Err(e) => {
                let body = serde_json::json!({ "__type": e.kind, "message": e.message });
                reply(e.status, body.to_string().into_bytes())
            }
        })
    }

    fn call(&self, parts: &Parts, body: &[u8]) -> Result<Vec<u8>, KmsError> {
        self.verify(parts, body)?;
        if parts.method != Method::POST || parts.uri.path() != "/" {
            return Err(client_error(
                "UnknownOperationException",
                "only POST / is served",
            ));
        }
        let target = header(parts, "x-amz-target").unwrap_or_default();
        let response = match target.strip_prefix("TrentService.") {
            Some("Encrypt") => self.encrypt(parse(body)?)?,
            Some("Decrypt") => self.decrypt(parse(body)?)?,
            Some("GenerateDataKey") => self.generate_data_key(parse(body)?)?,
            Some("CreateKey") => self.create_key(),
            _ => {
                return Err(client_error(
                    "UnknownOperationException",
                    "operation not served by the reference server",
                ));
            }
        };
        serde_json::to_vec(&response).map_err(|_| KmsError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "KMSInternalException",
            message: "cannot render the response".into(),
        })
    }

    /// SigV4 (`AWS4-HMAC-SHA256` in the `Authorization` header) for this
    /// server's Region and the service `kms`.
    fn verify(&self, parts: &Parts, body: &[u8]) -> Result<(), KmsError> {
        let Some(auth) = header(parts, "authorization") else {
            return Err(client_error(
                "MissingAuthenticationTokenException",
                "request is missing the authentication token",
            ));
        };
        let Some(fields) = auth.strip_prefix("AWS4-HMAC-SHA256 ") else {
            return Err(client_error(
                "IncompleteSignatureException",
                "authorization header must use AWS4-HMAC-SHA256",
            ));
        };
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for field in fields.split(',') {
            match field.trim().split_once('=') {
                Some(("Credential", v)) => credential = Some(v),
                Some(("SignedHeaders", v)) => signed_headers = Some(v),
                Some(("Signature", v)) => signature = Some(v),
                _ => {}
            }
        }
        let (Some(credential), Some(signed_headers), Some(signature)) =
            (credential, signed_headers, signature)
        else {
            return Err(client_error(
                "IncompleteSignatureException",
                "authorization header needs Credential, SignedHeaders and Signature",
            ));
        };
        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key, date, region, service, "aws4_request"] = scope[..] else {
            return Err(client_error(
                "IncompleteSignatureException",
                "credential must be KEY/DATE/REGION/SERVICE/aws4_request",
            ));
        };
        if access_key != ACCESS_KEY {
            return Err(client_error(
                "UnrecognizedClientException",
                "the security token included in the request is invalid",
            ));
        }
        if service != "kms" || region != self.region {
            return Err(invalid_signature(format!(
                "credential scope must name service kms and region {}",
                self.region
            )));
        }
        let Some(amz_date) = header(parts, "x-amz-date") else {
            return Err(client_error(
                "IncompleteSignatureException",
                "request needs an x-amz-date header",
            ));
        };
        if date.len() != 8 || !amz_date.starts_with(date) {
            return Err(invalid_signature(
                "credential date must be x-amz-date's day",
            ));
        }
        check_skew(amz_date)?;
        let names: Vec<&str> = signed_headers.split(';').collect();
        if !names.contains(&"host") || !names.contains(&"x-amz-date") {
            return Err(invalid_signature(
                "signed headers must include host and x-amz-date",
            ));
        }

        let canonical = canonical_request(parts, &names, signed_headers, body)?;
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
            hex::encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
        );
        let key = self.signing_key(access_key, date, region, service);
        let expected = hmac::sign(&key, string_to_sign.as_bytes());
        let provided = hex::decode(signature).unwrap_or_default();
        if bool::from(expected.as_ref().ct_eq(&provided)) {
            Ok(())
        } else {
            Err(invalid_signature(
                "the request signature we calculated does not match the signature you provided",
            ))
        }
    }

    fn signing_key(&self, access_key: &str, date: &str, region: &str, service: &str) -> hmac::Key {
        let scope = (
            access_key.to_owned(),
            date.to_owned(),
            region.to_owned(),
            service.to_owned(),
        );
        if let Some(key) = self
            .signing_keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&scope)
        {
            return key.clone();
        }
        let step = |key: &[u8], data: &str| {
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
        };
        let k_date = step(format!("AWS4{SECRET_KEY}").as_bytes(), date);
        let k_region = step(k_date.as_ref(), region);
        let k_service = step(k_region.as_ref(), service);
        let k_signing = step(k_service.as_ref(), "aws4_request");
        let key = hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref());
        let mut cache = self.signing_keys.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED_SIGNING_KEYS {
            cache.clear();
        }
        cache.insert(scope, key.clone());
        key
    }

    fn check_key(&self, key_id: &str) -> Result<(), KmsError> {
        if key_id == self.key_id || key_id == self.arn {
            Ok(())
        } else {
            Err(client_error(
                "NotFoundException",
                format!("key '{key_id}' does not exist"),
            ))
        }
    }

    fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, KmsError> {
        let mut blob = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        blob.push(BLOB_VERSION);
        blob.extend_from_slice(&[0u8; NONCE_LEN]);
        let mut sealed = plaintext.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(self.key_id.as_bytes()), &mut sealed)
            .map_err(|_| KmsError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                kind: "KMSInternalException",
                message: "encryption failed".into(),
            })?;
        blob[1..1 + NONCE_LEN].copy_from_slice(nonce.as_ref());
        blob.extend_from_slice(&sealed);
        Ok(blob)
    }

    fn open(&self, mut blob: Vec<u8>) -> Result<Vec<u8>, KmsError> {
        // One message for every failure: no oracle on what was wrong.
        let invalid = || client_error("InvalidCiphertextException", "");
        if blob.len() < 1 + NONCE_LEN + 16 || blob[0] != BLOB_VERSION {
            return Err(invalid());
        }
        let nonce =
            Nonce::try_assume_unique_for_key(&blob[1..1 + NONCE_LEN]).map_err(|_| invalid())?;
        let plaintext = self
            .key
            .open_in_place(
                nonce,
                Aad::from(self.key_id.as_bytes()),
                &mut blob[1 + NONCE_LEN..],
            )
            .map_err(|_| invalid())?;
        Ok(plaintext.to_vec())
    }

    fn encrypt(&self, request: EncryptRequest) -> Result<serde_json::Value, KmsError> {
        no_context(request.encryption_context.is_some())?;
        self.check_key(&request.key_id)?;
        let plaintext = B64
            .decode(&request.plaintext)
            .map_err(|_| validation("Plaintext must be base64"))?;
        if plaintext.is_empty() || plaintext.len() > 4096 {
            return Err(validation("Plaintext must be 1 to 4096 bytes"));
        }
        let blob = self.seal(&plaintext)?;
        Ok(serde_json::json!({
            "CiphertextBlob": B64.encode(blob),
            "KeyId": self.arn,
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        }))
    }

    fn decrypt(&self, request: DecryptRequest) -> Result<serde_json::Value, KmsError> {
        no_context(request.encryption_context.is_some())?;
        if let Some(key_id) = &request.key_id {
            self.check_key(key_id)?;
        }
        let blob = B64
            .decode(&request.ciphertext_blob)
            .map_err(|_| validation("CiphertextBlob must be base64"))?;
        let plaintext = self.open(blob)?;
        Ok(serde_json::json!({
            "Plaintext": B64.encode(plaintext),
            "KeyId": self.arn,
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        }))
    }

    fn generate_data_key(
        &self,
        request: GenerateDataKeyRequest,
    ) -> Result<serde_json::Value, KmsError> {
        no_context(request.encryption_context.is_some())?;
        self.check_key(&request.key_id)?;
        let len = match (request.key_spec.as_deref(), request.number_of_bytes) {
            (Some("AES_256"), None) => 32,
            (Some("AES_128"), None) => 16,
            (None, Some(n @ 1..=1024)) => n as usize,
            _ => {
                return Err(validation(
                    "give KeySpec AES_256 or AES_128, or NumberOfBytes 1 to 1024",
                ));
            }
        };
        let mut data_key = vec![0u8; len];
        rand::fill(&mut data_key).map_err(|_| KmsError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "KMSInternalException",
            message: "no randomness".into(),
        })?;
        let blob = self.seal(&data_key)?;
        Ok(serde_json::json!({
            "CiphertextBlob": B64.encode(blob),
            "Plaintext": B64.encode(&data_key),
            "KeyId": self.arn,
        }))
    }

    /// There is one key; CreateKey describes it (so `kms-bench` needs no `--key-id`).
    fn create_key(&self) -> serde_json::Value {
        serde_json::json!({
            "KeyMetadata": {
                "AWSAccountId": ACCOUNT,
                "KeyId": self.key_id,
                "Arn": self.arn,
                "Enabled": true,
                "KeyState": "Enabled",
                "KeyUsage": "ENCRYPT_DECRYPT",
                "KeySpec": "SYMMETRIC_DEFAULT",
                "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
                "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
                "Origin": "AWS_KMS",
                "KeyManager": "CUSTOMER",
                "MultiRegion": false,
            }
        })
    }
}

/// Encryption context is not bound here; refusing it beats ignoring it.
fn no_context(given: bool) -> Result<(), KmsError> {
    if given {
        Err(validation(
            "EncryptionContext is not supported by the reference server",
        ))
    } else {
        Ok(())
    }
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, KmsError> {
    serde_json::from_slice(body)
        .map_err(|e| client_error("SerializationException", format!("invalid request: {e}")))
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

fn reply(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE),
    );
    response
}

fn check_skew(amz_date: &str) -> Result<(), KmsError> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let signed = time::PrimitiveDateTime::parse(amz_date, format)
        .map_err(|_| invalid_signature("x-amz-date must be YYYYMMDDTHHMMSSZ"))?
        .assume_utc();
    let skew = (time::OffsetDateTime::now_utc() - signed).unsigned_abs();
    if skew > MAX_SKEW {
        return Err(invalid_signature("signature expired or not yet valid"));
    }
    Ok(())
}

/// The SigV4 canonical request: method, URI path (encoded once more, as for
/// every service but S3), sorted query, signed headers with trimmed values,
/// the signed header list, and the hex SHA-256 of the payload.
fn canonical_request(
    parts: &Parts,
    names: &[&str],
    signed_headers: &str,
    body: &[u8],
) -> Result<String, KmsError> {
    let mut c = String::with_capacity(256 + signed_headers.len());
    c.push_str(parts.method.as_str());
    c.push('\n');
    let path = parts.uri.path();
    c.extend(utf8_percent_encode(
        if path.is_empty() { "/" } else { path },
        UNRESERVED_AND_SLASH,
    ));
    c.push('\n');
    if let Some(query) = parts.uri.query() {
        let mut pairs: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                let enc = |s: &str| {
                    let raw = percent_decode_str(s).decode_utf8_lossy();
                    utf8_percent_encode(&raw, UNRESERVED).to_string()
                };
                (enc(k), enc(v))
            })
            .collect();
        pairs.sort();
        let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        c.push_str(&joined.join("&"));
    }
    c.push('\n');
    for name in names {
        let mut values = parts.headers.get_all(*name).iter().peekable();
        if values.peek().is_none() {
            return Err(invalid_signature(format!(
                "signed header {name} is missing"
            )));
        }
        c.push_str(name);
        c.push(':');
        for (i, value) in values.enumerate() {
            let value = value
                .to_str()
                .map_err(|_| invalid_signature(format!("header {name} is not text")))?;
            if i > 0 {
                c.push(',');
            }
            // Trimmed, inner runs of spaces folded to one.
            let mut words = value.split_ascii_whitespace();
            if let Some(first) = words.next() {
                c.push_str(first);
                for word in words {
                    c.push(' ');
                    c.push_str(word);
                }
            }
        }
        c.push('\n');
    }
    c.push('\n');
    c.push_str(signed_headers);
    c.push('\n');
    c.push_str(&hex::encode(digest::digest(&digest::SHA256, body)));
    Ok(c)
}

async fn serve(listener: TcpListener, server: Arc<Server>) -> anyhow::Result<()> {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: back off, keep serving.
                Err(e) => {
                    eprintln!("minimal_server: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let server = server.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| server.clone().handle(request));
            // A client closing its connection is not worth reporting.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("minimal_server: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.listen {
        SocketAddr::V4(a) if a.ip().octets()[0] == 127 => {}
        other => {
            bail!("refusing to listen on {other}: the reference server binds 127.0.0.0/8 only")
        }
    }
    let server = Arc::new(Server::new(cli.region)?);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = cli.threads {
        runtime.worker_threads(n);
    }
    runtime.build()?.block_on(async {
        let listener = TcpListener::bind(cli.listen)
            .await
            .with_context(|| format!("binding {}", cli.listen))?;
        println!(
            "minimal_server listening on http://{} key {} (measuring reference, not the product)",
            listener.local_addr()?,
            server.arn
        );
        serve(listener, server).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4::SigningParams;
    use aws_smithy_runtime_api::client::identity::Identity;

    /// A request signed by the AWS SDK's signer, as parts the server sees.
    fn signed(secret: &str, region: &str, body: &[u8]) -> Parts {
        let mut request = Request::post("http://127.0.0.1:4577/")
            .header("host", "127.0.0.1:4577")
            .header("content-type", CONTENT_TYPE)
            .header("x-amz-target", "TrentService.Encrypt")
            .body(())
            .unwrap();
        let identity: Identity = Credentials::new(ACCESS_KEY, secret, None, None, "test").into();
        let params = SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("kms")
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
            .collect();
        let signable = SignableRequest::new(
            "POST",
            "http://127.0.0.1:4577/",
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(&mut request);
        request.into_parts().0
    }

    #[test]
    fn accepts_the_sdk_signer_and_nothing_else() {
        let server = Server::new("us-east-1".into()).unwrap();
        let body = br#"{"KeyId":"k","Plaintext":"AA=="}"#;
        let parts = signed(SECRET_KEY, "us-east-1", body);
        server.verify(&parts, body).unwrap();
        // Second call: the cached signing key gives the same answer.
        server.verify(&parts, body).unwrap();

        let kind = |parts: &Parts, body: &[u8]| server.verify(parts, body).unwrap_err().kind;
        assert_eq!(kind(&parts, b"{}"), "InvalidSignatureException");
        let wrong = signed("wrong", "us-east-1", body);
        assert_eq!(kind(&wrong, body), "InvalidSignatureException");
        let other_region = signed(SECRET_KEY, "eu-west-1", body);
        assert_eq!(kind(&other_region, body), "InvalidSignatureException");
        let mut retargeted = parts.clone();
        retargeted.headers.insert(
            "x-amz-target",
            HeaderValue::from_static("TrentService.Decrypt"),
        );
        assert_eq!(kind(&retargeted, body), "InvalidSignatureException");
        let mut unsigned = parts.clone();
        unsigned.headers.remove("authorization");
        assert_eq!(kind(&unsigned, body), "MissingAuthenticationTokenException");
    }

    #[test]
    fn blobs_round_trip_and_tampering_fails() {
        let server = Server::new("us-east-1".into()).unwrap();
        let blob = server.seal(b"attack at dawn").unwrap();
        assert_eq!(blob.len(), 1 + NONCE_LEN + 14 + 16);
        assert_eq!(server.open(blob.clone()).unwrap(), b"attack at dawn");
        for i in [0, 1, blob.len() - 1] {
            let mut bad = blob.clone();
            bad[i] ^= 1;
            assert_eq!(
                server.open(bad).unwrap_err().kind,
                "InvalidCiphertextException"
            );
        }
        let other = Server::new("us-east-1".into()).unwrap();
        assert!(other.open(blob).is_err());
    }
}
