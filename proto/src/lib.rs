//! The gRPC contracts shared by the five services (gateway, registry, authz,
//! keystore, audit), compiled once from `proto/kms/**`.
//!
//! Also home of the two conventions every hop relies on: AWS error identities
//! carried across gRPC (`error`) and base64 for KMS JSON blobs (`b64`).

pub mod b64;
pub mod error;

pub mod common {
    pub mod v1 {
        tonic::include_proto!("kms.common.v1");
    }
}
pub mod keystore {
    pub mod v1 {
        tonic::include_proto!("kms.keystore.v1");
    }
}
pub mod authz {
    pub mod v1 {
        tonic::include_proto!("kms.authz.v1");
    }
}
pub mod audit {
    pub mod v1 {
        tonic::include_proto!("kms.audit.v1");
    }

    /// Marks an in-process `Append` whose `cloudtrail_event`s the sender serialized from
    /// typed structs (each a JSON object without `recipientAccountId`), so audit need not
    /// parse them again. A request extension: it never crosses the network (a remote
    /// sender cannot set it), so what arrives over gRPC is always checked.
    #[derive(Clone, Copy, Debug)]
    pub struct SerializedEvents;
}
pub mod registry {
    pub mod v1 {
        tonic::include_proto!("kms.registry.v1");
    }
}

/// Encoded `FileDescriptorSet` of every contract (for reflection and tooling).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/kms_descriptor.bin"));
