//! The one error type of authz and its mapping to AWS exceptions.

use kms_proto::error::AwsError;

pub const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const INVALID_TOKEN: &str = "The security token included in the request is invalid.";
pub const EXPIRED_TOKEN: &str = "The security token included in the request is expired";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Unknown or inactive access key, or a security token we did not issue.
    #[error("unrecognized client")]
    UnrecognizedClient,
    /// Temporary credentials past their expiration.
    #[error("expired token")]
    ExpiredToken,
    /// An IAM / STS error with its Query-protocol code (NoSuchEntity, EntityAlreadyExists,
    /// DeleteConflict, MalformedPolicyDocument, ValidationError, LimitExceeded, AccessDenied).
    #[error("{0}: {1}")]
    Iam(&'static str, String),
    /// Malformed signing input (AWS's message).
    #[error("incomplete signature: {0}")]
    IncompleteSignature(String),
    /// Signature expired, scope mismatch or wrong signature (AWS's message).
    #[error("invalid signature: {0}")]
    InvalidSignature(String),
    #[error("validation failed: {0}")]
    Validation(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// A policy document that cannot be used (MalformedPolicyDocumentException, or
    /// LimitExceededException when too large).
    #[error("invalid policy: {0}")]
    Policy(#[from] crate::policy::PolicyError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl From<Error> for AwsError {
    fn from(e: Error) -> Self {
        match e {
            Error::UnrecognizedClient => {
                AwsError::new("UnrecognizedClientException", INVALID_TOKEN)
            }
            Error::ExpiredToken => AwsError::new("ExpiredTokenException", EXPIRED_TOKEN),
            Error::Iam(code, m) => AwsError::new(code, m),
            Error::IncompleteSignature(m) => AwsError::new("IncompleteSignatureException", m),
            Error::InvalidSignature(m) => AwsError::new("InvalidSignatureException", m),
            Error::Validation(m) => AwsError::new("ValidationException", m),
            Error::AlreadyExists(m) => AwsError::new("AlreadyExistsException", m),
            Error::Policy(e) => AwsError::new(e.aws_code(), e.message),
            Error::Corrupt(_) | Error::Database(_) => AwsError::internal(),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        if matches!(e, Error::Corrupt(_) | Error::Database(_)) {
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), "authz internal error");
        }
        AwsError::from(e).into()
    }
}
