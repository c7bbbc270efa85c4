//! The one error type of audit and its mapping to AWS exceptions.

use kms_proto::error::AwsError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A malformed record or request from another service.
    #[error("validation failed: {0}")]
    Validation(String),
    #[error("invalid lookup attribute: {0}")]
    InvalidLookupAttributes(String),
    #[error("invalid time range: {0}")]
    InvalidTimeRange(String),
    #[error("invalid max results: {0}")]
    InvalidMaxResults(String),
    #[error("invalid next token")]
    InvalidNextToken,
    /// The group commit this append was part of failed (already logged by the writer).
    #[error("commit failed")]
    CommitFailed,
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// Log file or digest delivery failed (already logged).
    #[error("delivery failed: {0}")]
    Delivery(String),
    /// Log file delivery is not configured (no log dir).
    #[error("log file delivery is not configured")]
    NoLogDir,
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// The event writer's own connection.
    #[error("database error")]
    Writer(#[from] rusqlite::Error),
}

impl From<Error> for AwsError {
    fn from(e: Error) -> Self {
        match e {
            Error::Validation(m) => AwsError::new("ValidationException", m),
            Error::InvalidLookupAttributes(m) => {
                AwsError::new("InvalidLookupAttributesException", m)
            }
            Error::InvalidTimeRange(m) => AwsError::new("InvalidTimeRangeException", m),
            Error::InvalidMaxResults(m) => AwsError::new("InvalidMaxResultsException", m),
            Error::InvalidNextToken => AwsError::new(
                "InvalidNextTokenException",
                "The next token is not valid, or was issued for a request with different parameters.",
            ),
            Error::NoLogDir => AwsError::new(
                "UnsupportedOperationException",
                "Log file delivery is not configured on this audit service (no log dir).",
            ),
            Error::CommitFailed
            | Error::Corrupt(_)
            | Error::Delivery(_)
            | Error::Database(_)
            | Error::Writer(_) => AwsError::internal(),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        if matches!(
            e,
            Error::Corrupt(_) | Error::Delivery(_) | Error::Database(_) | Error::Writer(_)
        ) {
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), "audit internal error");
        }
        AwsError::from(e).into()
    }
}
