//! `kms-demo`: what a workload inside a VPC does. It resolves the KMS hostname
//! with the system resolver (in compose: the VPC's resolver at base + 2), then
//! creates a key, encrypts and decrypts with the AWS SDK for Rust through
//! whatever address the name resolved to, and prints one JSON line with what
//! happened (resolved addresses, key, request ids) for the smoke test to check
//! against CloudTrail.
//!
//! Network guard: it refuses to send anything unless every resolved address
//! is loopback or inside one of the `--allow-cidr` blocks (the project's own
//! compose networks).

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{Context, bail};
use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::operation::RequestId;
use aws_sdk_kms::primitives::Blob;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// An endpoint URL instead of the SDK's own (`https://kms.<region>.amazonaws.com`).
    #[arg(long, env = "KMS_DEMO_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// PEM file of the CA to trust for https (the stack's own CA).
    #[arg(long, env = "KMS_DEMO_CA_FILE")]
    ca_file: Option<String>,
    /// Address blocks the demo may talk to besides 127.0.0.0/8 (e.g. 172.30.10.0/24).
    #[arg(
        long = "allow-cidr",
        env = "KMS_DEMO_ALLOW_CIDRS",
        value_delimiter = ','
    )]
    allow_cidrs: Vec<String>,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key_id: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: String,
}

/// `a.b.c.d/n` contains `ip`.
fn in_cidr(cidr: &str, ip: Ipv4Addr) -> anyhow::Result<bool> {
    let (base, len) = cidr.split_once('/').context("CIDR without /")?;
    let base: Ipv4Addr = base.parse().context("CIDR base")?;
    let len: u32 = len.parse().context("CIDR length")?;
    if len > 32 {
        bail!("CIDR length above 32: {cidr}");
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Ok(u32::from(base) & mask == u32::from(ip) & mask)
}

fn allowed(ip: IpAddr, cidrs: &[String]) -> anyhow::Result<bool> {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Ok(true),
        IpAddr::V4(v4) => {
            for c in cidrs {
                if in_cidr(c, v4)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        IpAddr::V6(_) => Ok(false),
    }
}

fn host_and_port(url: &str) -> anyhow::Result<(String, u16)> {
    let (scheme, rest) = url
        .split_once("://")
        .context("endpoint URL without scheme")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let default = if scheme == "https" { 443 } else { 80 };
    Ok(match authority.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse().context("port")?),
        None => (authority.to_owned(), default),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Without an endpoint URL the SDK uses its own, the KMS hostname of the
    // Region: private DNS decides where it goes.
    let default_url = format!("https://kms.{}.amazonaws.com", args.region);
    let (host, port) = host_and_port(args.endpoint_url.as_deref().unwrap_or(&default_url))?;
    let resolved: Vec<IpAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .with_context(|| format!("resolving {host}"))?
        .map(|a| a.ip())
        .collect();
    if resolved.is_empty() {
        bail!("{host} resolved to nothing");
    }
    for ip in &resolved {
        if !allowed(*ip, &args.allow_cidrs)? {
            bail!("{host} resolved to {ip}, outside 127.0.0.0/8 and --allow-cidr: refusing");
        }
    }

    let conf = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(args.region.clone()))
        .credentials_provider(Credentials::new(
            &args.access_key_id,
            &args.secret_access_key,
            None,
            None,
            "kms-demo",
        ));
    // Our own trust store: the stack's CA when given, never the platform's
    // roots (a container of ours has none, and KMS here is never public).
    let mut trust = aws_smithy_http_client::tls::TrustStore::empty();
    if let Some(ca) = &args.ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("reading {ca}"))?;
        trust = trust.with_pem_certificate(pem.as_slice());
    }
    let context = aws_smithy_http_client::tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .context("TLS context")?;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https();
    let mut conf = conf.http_client(http);
    if let Some(url) = &args.endpoint_url {
        conf = conf.endpoint_url(url);
    }
    let kms = aws_sdk_kms::Client::from_conf(conf.build());

    let created = kms
        .create_key()
        .description("kms-demo: created from inside a VPC")
        .send()
        .await;
    report("CreateKey", &created);
    let created = created.context("CreateKey")?;
    let key = created.key_metadata().context("no KeyMetadata")?;
    let plaintext = format!("hello from {host} via {}", resolved[0]);
    let encrypted = kms
        .encrypt()
        .key_id(key.key_id())
        .plaintext(Blob::new(plaintext.as_bytes()))
        .send()
        .await;
    report("Encrypt", &encrypted);
    let encrypted = encrypted.context("Encrypt")?;
    let blob = encrypted.ciphertext_blob().context("no CiphertextBlob")?;
    let decrypted = kms.decrypt().ciphertext_blob(blob.clone()).send().await;
    report("Decrypt", &decrypted);
    let decrypted = decrypted.context("Decrypt")?;
    let round_trip = decrypted.plaintext().map(|p| p.as_ref()) == Some(plaintext.as_bytes());
    if !round_trip {
        bail!("Decrypt did not return the plaintext");
    }
    // A decrypt failure on purpose: the same blob with one bit flipped must be
    // refused (InvalidCiphertextException), and shows as a failed call.
    let mut tampered = blob.as_ref().to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let refused = kms
        .decrypt()
        .ciphertext_blob(Blob::new(tampered))
        .send()
        .await;
    report("Decrypt", &refused);
    let refused_code = refused
        .as_ref()
        .err()
        .and_then(|e| e.as_service_error())
        .and_then(|e| aws_sdk_kms::error::ProvideErrorMetadata::code(e).map(str::to_owned));
    if refused_code.as_deref() != Some("InvalidCiphertextException") {
        bail!("a tampered ciphertext was not refused: {refused_code:?}");
    }
    let line = serde_json::json!({
        "host": host,
        "resolved": resolved.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "keyArn": key.arn(),
        "createKeyRequestId": created.request_id(),
        "encryptRequestId": encrypted.request_id(),
        "decryptRequestId": decrypted.request_id(),
        "failedDecryptRequestId": refused.as_ref().err().and_then(RequestId::request_id),
        "roundTrip": round_trip,
    });
    println!("{line}");
    Ok(())
}

/// One line per call on stderr: the operation, its request id, its error code.
fn report<T: RequestId, E, R>(op: &str, result: &Result<T, aws_sdk_kms::error::SdkError<E, R>>)
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
    aws_sdk_kms::error::SdkError<E, R>: RequestId,
{
    let (request_id, error) = match result {
        Ok(out) => (out.request_id().map(str::to_owned), None),
        Err(e) => (
            e.request_id().map(str::to_owned),
            Some(
                e.as_service_error()
                    .and_then(|s| s.code().map(str::to_owned))
                    .unwrap_or_else(|| aws_sdk_kms::error::DisplayErrorContext(e).to_string()),
            ),
        ),
    };
    eprintln!(
        "{}",
        serde_json::json!({"call": op, "requestId": request_id, "error": error})
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_allows_loopback_and_listed_blocks_only() {
        let cidrs = vec!["172.30.10.0/24".to_owned()];
        assert!(allowed("127.0.0.9".parse().unwrap(), &cidrs).unwrap());
        assert!(allowed("172.30.10.4".parse().unwrap(), &cidrs).unwrap());
        assert!(!allowed("172.30.11.4".parse().unwrap(), &cidrs).unwrap());
        assert!(!allowed("10.0.0.1".parse().unwrap(), &cidrs).unwrap());
        assert!(!allowed("8.8.8.8".parse().unwrap(), &[]).unwrap());
    }

    #[test]
    fn endpoint_url_host_and_port() {
        assert_eq!(
            host_and_port("https://kms.us-east-1.amazonaws.com").unwrap(),
            ("kms.us-east-1.amazonaws.com".to_owned(), 443)
        );
        assert_eq!(
            host_and_port("http://kms.us-east-1.amazonaws.com:4566/").unwrap(),
            ("kms.us-east-1.amazonaws.com".to_owned(), 4566)
        );
    }
}
