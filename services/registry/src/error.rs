//! The registry's failures, named after the EC2 error codes a caller sees.
//!
//! This enum is the only place that turns a registry failure into a
//! `tonic::Status` (through `kms_proto::error::AwsError`, so the EC2 code
//! travels as `x-aws-error-code` and the gateway renders it unchanged).

use kms_proto::error::AwsError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A parameter is malformed (e.g. a CIDR block that does not parse).
    #[error("Value ({value}) for parameter {parameter} is invalid. {reason}")]
    InvalidParameterValue {
        parameter: &'static str,
        value: String,
        reason: String,
    },
    /// A parameter combination EC2 refuses (`InvalidParameter`).
    #[error("{0}")]
    InvalidParameter(String),
    /// A VPC CIDR block outside /16../28.
    #[error("The CIDR '{0}' is invalid.")]
    VpcRange(String),
    /// A subnet CIDR block outside /16../28 or outside its VPC's block.
    #[error("The CIDR '{0}' is invalid.")]
    SubnetRange(String),
    /// A subnet CIDR block overlapping another subnet of the VPC.
    #[error("The CIDR '{0}' conflicts with another subnet")]
    SubnetConflict(String),
    #[error("Invalid id: \"{0}\" (expecting \"vpc-...\")")]
    VpcIdMalformed(String),
    #[error("The vpc ID '{0}' does not exist")]
    VpcNotFound(String),
    #[error("Invalid id: \"{0}\" (expecting \"subnet-...\")")]
    SubnetIdMalformed(String),
    #[error("The subnet ID '{0}' does not exist")]
    SubnetNotFound(String),
    #[error("The Vpc Endpoint Service '{0}' does not exist")]
    ServiceNotFound(String),
    #[error("Found another VPC endpoint subnet in the availability zone of {0}")]
    DuplicateSubnetsInSameZone(String),
    #[error("Address {0} is in use.")]
    AddressInUse(String),
    #[error(
        "There are not enough free addresses in subnet '{0}' to satisfy the requested number of instances."
    )]
    SubnetFull(String),
    #[error("the endpoint policy is not a JSON document")]
    InvalidPolicyDocument,
    /// A describe filter name the resource does not have.
    #[error("The filter '{0}' is invalid")]
    InvalidFilter(String),
    /// Parameters EC2 refuses to see together.
    #[error("{0}")]
    InvalidParameterCombination(String),
    /// A VPC or subnet still has resources in it (the message is EC2's).
    #[error("{0}")]
    DependencyViolation(String),
    #[error("Invalid id: \"{0}\" (expecting \"vpce-...\")")]
    VpcEndpointIdMalformed(String),
    #[error("The Vpc Endpoint Id '{0}' does not exist")]
    VpcEndpointNotFound(String),
    #[error("Invalid id: \"{0}\" (expecting \"eni-...\")")]
    NetworkInterfaceIdMalformed(String),
    #[error("The networkInterface ID '{0}' does not exist")]
    NetworkInterfaceNotFound(String),
    #[error("Invalid id: \"{0}\" (expecting \"sg-...\")")]
    SecurityGroupIdMalformed(String),
    /// The database failed; details are logged, never returned.
    #[error("registry store failed")]
    Store(#[from] sqlx::Error),
}

impl RegistryError {
    pub(crate) fn invalid_value(
        parameter: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::InvalidParameterValue {
            parameter,
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// The EC2 error code of this failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidParameterValue { .. } => "InvalidParameterValue",
            Self::InvalidParameter(_) => "InvalidParameter",
            Self::VpcRange(_) => "InvalidVpc.Range",
            Self::SubnetRange(_) => "InvalidSubnet.Range",
            Self::SubnetConflict(_) => "InvalidSubnet.Conflict",
            Self::VpcIdMalformed(_) => "InvalidVpcID.Malformed",
            Self::VpcNotFound(_) => "InvalidVpcID.NotFound",
            Self::SubnetIdMalformed(_) => "InvalidSubnetID.Malformed",
            Self::SubnetNotFound(_) => "InvalidSubnetID.NotFound",
            Self::ServiceNotFound(_) => "InvalidServiceName",
            Self::DuplicateSubnetsInSameZone(_) => "DuplicateSubnetsInSameZone",
            Self::AddressInUse(_) => "InvalidIPAddress.InUse",
            Self::SubnetFull(_) => "InsufficientFreeAddressesInSubnet",
            Self::InvalidPolicyDocument => "MalformedPolicyDocument",
            Self::InvalidFilter(_) => "InvalidParameterValue",
            Self::InvalidParameterCombination(_) => "InvalidParameterCombination",
            Self::DependencyViolation(_) => "DependencyViolation",
            Self::VpcEndpointIdMalformed(_) => "InvalidVpcEndpointId.Malformed",
            Self::VpcEndpointNotFound(_) => "InvalidVpcEndpointId.NotFound",
            Self::NetworkInterfaceIdMalformed(_) => "InvalidNetworkInterfaceID.Malformed",
            Self::NetworkInterfaceNotFound(_) => "InvalidNetworkInterfaceID.NotFound",
            Self::SecurityGroupIdMalformed(_) => "InvalidGroupId.Malformed",
            Self::Store(_) => "InternalError",
        }
    }
}

impl From<RegistryError> for AwsError {
    fn from(e: RegistryError) -> Self {
        match &e {
            RegistryError::Store(source) => {
                tracing::error!(error = %source, "registry store failed");
                AwsError::new(e.code(), "An internal error has occurred")
            }
            _ => AwsError::new(e.code(), e.to_string()),
        }
    }
}

impl From<RegistryError> for tonic::Status {
    fn from(e: RegistryError) -> Self {
        AwsError::from(e).into()
    }
}
