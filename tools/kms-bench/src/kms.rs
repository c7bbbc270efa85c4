//! KMS JSON 1.1 over HTTP/1.1, signed with SigV4 for every request.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, bail};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4::SigningParams;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http::{HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// An HTTP response, read whole.
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `__type` of a KMS error body, if there is one.
    pub fn error_type(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        v.get("__type")?.as_str().map(str::to_owned)
    }

    /// `400 ValidationException`: how errors are counted.
    pub fn error_label(&self) -> String {
        match self.error_type() {
            Some(t) => format!("{} {t}", self.status),
            None => self.status.to_string(),
        }
    }
}

/// A signing KMS client for one endpoint. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct KmsClient {
    http: Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
    /// `Host` as sent and signed (`127.0.0.1:4566`).
    host: Arc<str>,
    region: Arc<str>,
    identity: Arc<Identity>,
}

impl KmsClient {
    /// `max_idle` bounds the keep-alive connections kept open to the endpoint.
    pub fn new(
        uri: Uri,
        region: &str,
        access_key: &str,
        secret_key: &str,
        max_idle: usize,
    ) -> anyhow::Result<Self> {
        let host = uri
            .authority()
            .context("endpoint without host")?
            .as_str()
            .rsplit('@')
            .next()
            .unwrap_or_default()
            .into();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_idle)
            .build(connector);
        let identity = Credentials::new(access_key, secret_key, None, None, "kms-bench").into();
        Ok(Self {
            http,
            uri,
            host,
            region: region.into(),
            identity: Arc::new(identity),
        })
    }

    /// Build `POST /` for `TrentService.<operation>` with `body`, signed now.
    pub fn signed_request(
        &self,
        operation: &str,
        body: Bytes,
    ) -> anyhow::Result<Request<Full<Bytes>>> {
        let target = format!("TrentService.{operation}");
        let mut request = Request::post(self.uri.clone())
            .header(http::header::HOST, &*self.host)
            .header(http::header::CONTENT_TYPE, CONTENT_TYPE)
            .header("x-amz-target", &target)
            .body(())?;
        let settings = SigningSettings::default();
        let params = SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("kms")
            .time(SystemTime::now())
            .settings(settings)
            .build()?
            .into();
        let headers = [
            ("host", &*self.host),
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", target.as_str()),
        ];
        let signable = SignableRequest::new(
            "POST",
            self.uri.to_string(),
            headers.into_iter(),
            SignableBody::Bytes(&body),
        )?;
        let (instructions, _signature) = sign(signable, &params)?.into_parts();
        instructions.apply_to_request_http1x(&mut request);
        request.headers_mut().insert(
            http::header::USER_AGENT,
            HeaderValue::from_static("kms-bench/0.1"),
        );
        let (parts, ()) = request.into_parts();
        Ok(Request::from_parts(parts, Full::new(body)))
    }

    /// Send a signed call and read the whole response.
    pub async fn call(&self, operation: &str, body: Bytes) -> anyhow::Result<Reply> {
        let request = self.signed_request(operation, body)?;
        let response = self.http.request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Reply { status, body })
    }

    /// A call that must succeed; returns its JSON.
    pub async fn call_json(
        &self,
        operation: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let reply = self
            .call(operation, Bytes::from(body.to_string()))
            .await
            .with_context(|| format!("{operation} failed"))?;
        if !reply.is_success() {
            bail!(
                "{operation} failed: {} {}",
                reply.error_label(),
                String::from_utf8_lossy(&reply.body)
            );
        }
        serde_json::from_slice(&reply.body).with_context(|| format!("{operation} returned no JSON"))
    }

    /// CreateKey with no parameters (a symmetric encryption key); returns its KeyId.
    pub async fn create_key(&self) -> anyhow::Result<String> {
        let v = self.call_json("CreateKey", serde_json::json!({})).await?;
        v.pointer("/KeyMetadata/KeyId")
            .and_then(|k| k.as_str())
            .map(str::to_owned)
            .context("CreateKey response without KeyMetadata.KeyId")
    }

    /// Encrypt `plaintext` once; returns the ciphertext blob, base64 as on the wire.
    pub async fn encrypt_once(&self, key_id: &str, plaintext: &[u8]) -> anyhow::Result<String> {
        let v = self
            .call_json(
                "Encrypt",
                serde_json::json!({ "KeyId": key_id, "Plaintext": B64.encode(plaintext) }),
            )
            .await?;
        v.get("CiphertextBlob")
            .and_then(|b| b.as_str())
            .map(str::to_owned)
            .context("Encrypt response without CiphertextBlob")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_carries_a_sigv4_header_for_kms() {
        let client = KmsClient::new(
            "http://127.0.0.1:4566".parse().unwrap(),
            "eu-west-1",
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            4,
        )
        .unwrap();
        let r = client
            .signed_request("Encrypt", Bytes::from_static(b"{}"))
            .unwrap();
        let h = r.headers();
        assert_eq!(r.method(), http::Method::POST);
        assert_eq!(r.uri().path(), "/");
        assert_eq!(h["host"], "127.0.0.1:4566");
        assert_eq!(h["content-type"], CONTENT_TYPE);
        assert_eq!(h["x-amz-target"], "TrentService.Encrypt");
        let date = h["x-amz-date"].to_str().unwrap();
        assert_eq!(date.len(), "20250101T000000Z".len());
        let auth = h["authorization"].to_str().unwrap();
        let scope = format!(
            "Credential=AKIAIOSFODNN7EXAMPLE/{}/eu-west-1/kms/aws4_request",
            &date[..8]
        );
        assert!(auth.starts_with("AWS4-HMAC-SHA256 "), "{auth}");
        assert!(auth.contains(&scope), "{auth}");
        assert!(
            auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-target"),
            "{auth}"
        );
        assert!(!auth.contains("wJalr"));
    }

    #[test]
    fn error_labels_name_status_and_type() {
        let reply = Reply {
            status: 400,
            body: Bytes::from_static(br#"{"__type":"NotFoundException","message":"x"}"#),
        };
        assert!(!reply.is_success());
        assert_eq!(reply.error_label(), "400 NotFoundException");
        let reply = Reply {
            status: 503,
            body: Bytes::from_static(b"busy"),
        };
        assert_eq!(reply.error_label(), "503");
    }
}
