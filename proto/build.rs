//! Compiles `proto/kms/**.proto` with protox (pure Rust) and tonic-prost-build.
//!
//! The keystore messages mirror the KMS JSON shapes, so they also get serde
//! derives with AWS's PascalCase names: bytes fields travel as base64 strings and
//! the gateway-set `context` field is never read from, nor written to, JSON.

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "kms/common/v1/common.proto",
    "kms/keystore/v1/keystore.proto",
    "kms/authz/v1/authz.proto",
    "kms/audit/v1/audit.proto",
    "kms/registry/v1/registry.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("kms_descriptor.bin"), fds.encode_to_vec())?;

    let mut cfg = tonic_prost_build::configure();
    for file in &fds.file {
        if file.package() != "kms.keystore.v1" {
            continue;
        }
        for msg in &file.message_type {
            let path = format!(".kms.keystore.v1.{}", msg.name());
            cfg = cfg.type_attribute(
                &path,
                "#[::serde_with::skip_serializing_none] #[derive(::serde::Serialize, ::serde::Deserialize)] #[serde(rename_all = \"PascalCase\", default)]",
            );
            for field in &msg.field {
                let fpath = format!("{path}.{}", field.name());
                let repeated = field.label() == Label::Repeated;
                if field.name() == "context" {
                    cfg = cfg.field_attribute(&fpath, "#[serde(skip)]");
                } else if repeated
                    && (msg.name() == "KeyMetadata" || field.name().ends_with("_algorithms"))
                {
                    // AWS omits the algorithm lists that do not apply to a key.
                    cfg = cfg.field_attribute(
                        &fpath,
                        "#[serde(skip_serializing_if = \"Vec::is_empty\")]",
                    );
                } else if msg.name() == "GrantConstraints" {
                    // AWS shows only the constraint a grant has.
                    cfg = cfg.field_attribute(
                        &fpath,
                        "#[serde(skip_serializing_if = \"::std::collections::HashMap::is_empty\")]",
                    );
                } else if field.name() == "aws_account_id" {
                    cfg = cfg.field_attribute(&fpath, "#[serde(rename = \"AWSAccountId\")]");
                } else if field.r#type() == Type::Bytes && !repeated {
                    let with = if field.proto3_optional() {
                        "crate::b64::opt"
                    } else {
                        "crate::b64"
                    };
                    cfg = cfg.field_attribute(&fpath, format!("#[serde(with = \"{with}\")]"));
                }
            }
        }
    }
    cfg.compile_fds(fds)?;
    Ok(())
}
