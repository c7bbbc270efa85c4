//! End-to-end test support: start the whole stack in-process (five gRPC
//! servers on loopback plus the gateway) on a fresh data dir, and build AWS SDK
//! for Rust clients pointed at it.

use std::net::SocketAddr;
use std::path::Path;

pub use kms_stack::Stack;

/// The documentation account 111122223333's root key pair, bootstrapped on a
/// fresh data dir.
pub const ACCOUNT_A: (&str, &str, &str) = (
    "111122223333",
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
);
/// The documentation account 444455556666's root key pair.
pub const ACCOUNT_B: (&str, &str, &str) = (
    "444455556666",
    "AKIAI44QH8DHBEXAMPLE",
    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
);

/// Start a stack on `data_dir` with the public endpoint on a fresh loopback port.
pub async fn start_stack(data_dir: &Path) -> anyhow::Result<Stack> {
    start_stack_in_regions(data_dir, &[]).await
}

/// Start a stack that serves `us-east-1` and `additional_regions` (multi-Region
/// keys): the Region of a request is its SigV4 credential scope.
pub async fn start_stack_in_regions(
    data_dir: &Path,
    additional_regions: &[&str],
) -> anyhow::Result<Stack> {
    let listen: SocketAddr = "127.0.0.1:0".parse()?;
    let mut config = kms_stack::StackConfig::new(data_dir, listen);
    config.additional_regions = additional_regions.iter().map(|r| r.to_string()).collect();
    let stack = kms_stack::start(config).await?;
    anyhow::ensure!(
        stack.endpoint.ip().is_loopback(),
        "tests may only talk to loopback"
    );
    Ok(stack)
}

/// An AWS SDK for Rust KMS client of `account` (id, access key, secret) for
/// `region`, pointed at the stack's public endpoint, without retries.
pub fn kms_client(
    stack: &Stack,
    (_, akid, secret): (&str, &str, &str),
    region: &str,
) -> aws_sdk_kms::Client {
    use aws_sdk_kms::config::{BehaviorVersion, Region};
    let conf = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(format!("http://{}", stack.endpoint))
        .credentials_provider(aws_credential_types::Credentials::new(
            akid, secret, None, None, "test",
        ))
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

/// The AWS exception name of a failed SDK call (also for errors the KMS model
/// does not list for the operation, such as AccessDeniedException).
pub fn error_code<E, R>(err: aws_sdk_kms::error::SdkError<E, R>) -> String
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(e) => e.code().unwrap_or("<none>").to_string(),
        None => format!("not a service error: {err:?}"),
    }
}
