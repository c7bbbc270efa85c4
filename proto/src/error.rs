//! AWS error identities that survive gRPC hops.
//!
//! A service fails a call with `AwsError::new("NotFoundException", msg).into()`;
//! the status carries the exception name in the `x-aws-error-code` metadata and
//! AWS's message as the status message. The gateway turns it back with
//! `AwsError::from_status` and renders `{"__type": ..., "message": ...}`.
//! A status without the metadata (a transport failure, a deadline) becomes
//! `KMSInternalException` / `DependencyTimeoutException`: the call fails closed.

use tonic::{Code, Status};

pub const ERROR_CODE_KEY: &str = "x-aws-error-code";

/// Set (to `true`) on an AccessDeniedException status when only the VPC
/// endpoint policy denied: AWS does not record such requests in CloudTrail.
pub const DENIED_BY_ENDPOINT_POLICY_KEY: &str = "x-kms-denied-by-endpoint-policy";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// AWS exception name, e.g. `NotFoundException`.
    pub code: String,
    pub message: String,
}

impl AwsError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn internal() -> Self {
        Self::new(
            "KMSInternalException",
            "The request was rejected because an internal exception occurred. The request can be retried.",
        )
    }

    /// The gRPC code that best matches the exception (for non-AWS gRPC clients).
    fn grpc_code(&self) -> Code {
        match self.code.as_str() {
            "NotFoundException" => Code::NotFound,
            "AlreadyExistsException" => Code::AlreadyExists,
            "AccessDeniedException" => Code::PermissionDenied,
            "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "IncompleteSignatureException"
            | "MissingAuthenticationTokenException" => Code::Unauthenticated,
            "KMSInternalException" => Code::Internal,
            "DependencyTimeoutException" => Code::DeadlineExceeded,
            "LimitExceededException" | "ThrottlingException" => Code::ResourceExhausted,
            "DisabledException" | "KMSInvalidStateException" => Code::FailedPrecondition,
            "UnsupportedOperationException" => Code::Unimplemented,
            _ => Code::InvalidArgument,
        }
    }

    /// Recover the AWS error from a status that crossed a hop.
    pub fn from_status(status: &Status) -> Self {
        if let Some(code) = status
            .metadata()
            .get(ERROR_CODE_KEY)
            .and_then(|v| v.to_str().ok())
        {
            return Self::new(code, status.message());
        }
        match status.code() {
            Code::DeadlineExceeded | Code::Unavailable | Code::Cancelled => Self::new(
                "DependencyTimeoutException",
                "The system timed out while trying to fulfill the request. You can retry the request.",
            ),
            _ => Self::internal(),
        }
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AwsError {}

impl From<AwsError> for Status {
    fn from(e: AwsError) -> Status {
        let mut status = Status::new(e.grpc_code(), e.message.clone());
        if let Ok(v) = e.code.parse() {
            status.metadata_mut().insert(ERROR_CODE_KEY, v);
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_survives_a_status_round_trip() {
        let e = AwsError::new("DisabledException", "key is disabled");
        let s: Status = e.clone().into();
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(AwsError::from_status(&s), e);
    }

    #[test]
    fn bare_transport_errors_fail_closed() {
        let s = Status::unavailable("connection refused");
        assert_eq!(AwsError::from_status(&s).code, "DependencyTimeoutException");
        let s = Status::unknown("boom");
        assert_eq!(AwsError::from_status(&s).code, "KMSInternalException");
    }
}
