//! The key store's one error type, and its single mapping to AWS's exceptions
//! (`kms_proto::error::AwsError`, carried in the gRPC status).
//!
//! Messages of client errors are AWS's messages and are built where the condition is
//! detected. Internal failures (storage, cryptography) are logged here without
//! secrets and leave as an opaque `KMSInternalException`.

use kms_proto::error::AwsError;

use crate::crypto::CryptoError;
use crate::store::StoreError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Status metadata set (to `true`) on an AccessDeniedException that only the VPC
/// endpoint policy caused.
pub const DENIED_BY_ENDPOINT_POLICY: &str = kms_proto::error::DENIED_BY_ENDPOINT_POLICY_KEY;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    AccessDenied(String),
    /// Denied only by the policy of the VPC endpoint the request came through (AWS
    /// does not record such requests in CloudTrail; the status says so in
    /// [`DENIED_BY_ENDPOINT_POLICY`]).
    #[error("{0}")]
    AccessDeniedByEndpointPolicy(String),
    /// The key is disabled.
    #[error("{0}")]
    Disabled(String),
    /// The key's state does not allow the operation.
    #[error("{0}")]
    InvalidState(String),
    /// Any problem with a ciphertext blob: opaque by design.
    #[error("invalid ciphertext")]
    InvalidCiphertext,
    /// The KeyId given to Decrypt/ReEncrypt is not the key of the blob.
    #[error("incorrect key")]
    IncorrectKey,
    #[error("{0}")]
    InvalidKeyUsage(String),
    /// Verify: the signature does not verify.
    #[error("invalid signature")]
    InvalidSignature,
    /// VerifyMac: the MAC does not verify.
    #[error("invalid mac")]
    InvalidMac,
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Unsupported(String),
    /// The message says what is wrong with the policy document.
    #[error("{0}")]
    MalformedPolicy(String),
    #[error("{0}")]
    Tag(String),
    #[error("{0}")]
    NotAuthorized(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("invalid marker")]
    InvalidMarker,
    #[error("{0}")]
    InvalidGrantToken(String),
    #[error("{0}")]
    InvalidGrantId(String),
    #[error("{0}")]
    InvalidArn(String),
    #[error("custom key store not found")]
    CustomKeyStoreNotFound,
    /// Everything checked out, but DryRun was set.
    #[error("dry run")]
    DryRun,
    /// Any other client exception, by its AWS name (imported key material:
    /// IncorrectKeyMaterialException, ExpiredImportTokenException,
    /// InvalidImportTokenException).
    #[error("{1}")]
    Client(&'static str, String),
    #[error("storage failure")]
    Storage(#[from] StoreError),
    #[error("cryptographic failure")]
    Crypto(#[from] CryptoError),
    /// The authorization service could not decide (unreachable, timed out, or it
    /// refused the question): the call fails closed with its AWS error.
    #[error("authorization failed: {0}")]
    Authz(AwsError),
}

impl From<crate::policy::MalformedPolicy> for Error {
    fn from(e: crate::policy::MalformedPolicy) -> Self {
        Error::MalformedPolicy(e.0)
    }
}

impl From<crate::blob::InvalidCiphertext> for Error {
    fn from(_: crate::blob::InvalidCiphertext) -> Self {
        Error::InvalidCiphertext
    }
}

impl From<Error> for AwsError {
    fn from(e: Error) -> Self {
        let (code, message) = match e {
            Error::NotFound(m) => ("NotFoundException", m),
            Error::AlreadyExists(m) => ("AlreadyExistsException", m),
            Error::AccessDenied(m) | Error::AccessDeniedByEndpointPolicy(m) => {
                ("AccessDeniedException", m)
            }
            Error::Disabled(m) => ("DisabledException", m),
            Error::InvalidState(m) => ("KMSInvalidStateException", m),
            // AWS answers every bad ciphertext with an empty message.
            Error::InvalidCiphertext => ("InvalidCiphertextException", String::new()),
            Error::IncorrectKey => (
                "IncorrectKeyException",
                "The key ID in the request does not identify a CMK that can perform this operation."
                    .to_owned(),
            ),
            Error::InvalidKeyUsage(m) => ("InvalidKeyUsageException", m),
            Error::InvalidSignature => ("KMSInvalidSignatureException", String::new()),
            Error::InvalidMac => ("KMSInvalidMacException", String::new()),
            Error::Validation(m) => ("ValidationException", m),
            Error::Unsupported(m) => ("UnsupportedOperationException", m),
            Error::MalformedPolicy(m) => ("MalformedPolicyDocumentException", m),
            Error::Tag(m) => ("TagException", m),
            Error::NotAuthorized(m) => ("NotAuthorizedException", m),
            Error::LimitExceeded(m) => ("LimitExceededException", m),
            Error::InvalidGrantToken(m) => ("InvalidGrantTokenException", m),
            Error::InvalidGrantId(m) => ("InvalidGrantIdException", m),
            Error::InvalidArn(m) => ("InvalidArnException", m),
            Error::InvalidMarker => (
                "InvalidMarkerException",
                "The request was rejected because the marker that specifies where pagination should next begin is not valid."
                    .to_owned(),
            ),
            Error::CustomKeyStoreNotFound => (
                "CustomKeyStoreNotFoundException",
                "The request was rejected because KMS cannot find a custom key store with the specified key store name or ID."
                    .to_owned(),
            ),
            Error::Client(code, m) => (code, m),
            Error::DryRun => (
                "DryRunOperationException",
                "The request would have succeeded, but the DryRun option is set.".to_owned(),
            ),
            Error::Storage(err) => {
                tracing::error!(error = %err, "storage failure");
                return AwsError::internal();
            }
            Error::Crypto(err) => {
                tracing::error!(error = %err, "cryptographic failure");
                return AwsError::internal();
            }
            Error::Authz(err) => {
                tracing::warn!(code = %err.code, "authorization could not be decided");
                return err;
            }
        };
        AwsError::new(code, message)
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        let endpoint_only = matches!(e, Error::AccessDeniedByEndpointPolicy(_));
        let mut status: tonic::Status = AwsError::from(e).into();
        if endpoint_only {
            status.metadata_mut().insert(
                DENIED_BY_ENDPOINT_POLICY,
                tonic::metadata::MetadataValue::from_static("true"),
            );
        }
        status
    }
}

/// `1 validation error detected: ...` as AWS words a constraint violation.
pub fn validation(field: &str, constraint: &str) -> Error {
    Error::Validation(format!(
        "1 validation error detected: Value at '{field}' failed to satisfy constraint: {constraint}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_ciphertext_is_opaque() {
        let aws = AwsError::from(Error::InvalidCiphertext);
        assert_eq!(aws.code, "InvalidCiphertextException");
        assert_eq!(aws.message, "");
    }

    #[test]
    fn internal_failures_do_not_leak_details() {
        let aws = AwsError::from(Error::Crypto(CryptoError::Open));
        assert_eq!(aws, AwsError::internal());
        let status: tonic::Status = Error::Disabled("x is disabled.".into()).into();
        assert_eq!(AwsError::from_status(&status).code, "DisabledException");
    }

    #[test]
    fn endpoint_policy_denials_are_marked() {
        let status: tonic::Status = Error::AccessDeniedByEndpointPolicy("no".into()).into();
        assert_eq!(AwsError::from_status(&status).code, "AccessDeniedException");
        assert_eq!(
            status.metadata().get(DENIED_BY_ENDPOINT_POLICY).unwrap(),
            "true"
        );
        let status: tonic::Status = Error::AccessDenied("no".into()).into();
        assert!(status.metadata().get(DENIED_BY_ENDPOINT_POLICY).is_none());
    }
}
