//! KMS JSON request decoding and validation, as the gateway runs them before anything else
//! sees a body (`kms::call`): JSON parse, `Model::validate_input` against the botocore
//! model, then serde decoding straight into the keystore's gRPC request.
//!
//! Input: `<Operation>\n<JSON body>`. `Ok` when the body validates; `Err("<Code>: ...")`
//! with the exception the gateway would answer.

use std::sync::OnceLock;

use kms_gateway::model::{self, Model};
use kms_proto::keystore::v1 as pb;
use serde_json::Value;

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(model::kms)
}

/// What decoding a validated body into the gRPC request does (refusals are fine, panics not).
fn decode(op: &str, v: &Value) {
    fn de<T: serde::de::DeserializeOwned>(v: &Value) {
        let _ = serde_json::from_value::<T>(v.clone());
    }
    match op {
        "Encrypt" => de::<pb::EncryptRequest>(v),
        "Decrypt" => de::<pb::DecryptRequest>(v),
        "ReEncrypt" => de::<pb::ReEncryptRequest>(v),
        "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" => {
            de::<pb::GenerateDataKeyRequest>(v)
        }
        "GenerateDataKeyPair" | "GenerateDataKeyPairWithoutPlaintext" => {
            de::<pb::GenerateDataKeyPairRequest>(v)
        }
        "CreateKey" => de::<pb::CreateKeyRequest>(v),
        "DescribeKey" => de::<pb::DescribeKeyRequest>(v),
        "Sign" => de::<pb::SignRequest>(v),
        "Verify" => de::<pb::VerifyRequest>(v),
        "GenerateMac" => de::<pb::GenerateMacRequest>(v),
        "VerifyMac" => de::<pb::VerifyMacRequest>(v),
        "CreateGrant" => de::<pb::CreateGrantRequest>(v),
        "PutKeyPolicy" => de::<pb::PutKeyPolicyRequest>(v),
        "TagResource" => de::<pb::TagResourceRequest>(v),
        "ImportKeyMaterial" => de::<pb::ImportKeyMaterialRequest>(v),
        "GenerateRandom" => de::<pb::GenerateRandomRequest>(v),
        _ => {}
    }
}

pub fn check(data: &[u8]) -> Result<(), String> {
    let model = model();
    let nl = data
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("UnknownOperationException: no operation line")?;
    let op_name = std::str::from_utf8(&data[..nl])
        .map_err(|_| "UnknownOperationException: not UTF-8")?
        .trim();
    let body = &data[nl + 1..];
    let op = model
        .operation(op_name)
        .ok_or_else(|| format!("UnknownOperationException: {op_name}"))?;
    let value: Value = if body.is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(body).map_err(|_| "SerializationException: not JSON".to_string())?
    };
    let first = model.validate_input(op, &value);
    // Deterministic, and every refusal is one of the two exceptions with a message.
    assert_eq!(
        first,
        model.validate_input(op, &value),
        "validation is deterministic"
    );
    if let Err(e) = &first {
        assert!(
            e.code == "ValidationException" || e.code == "SerializationException",
            "unexpected validation error {e:?}"
        );
        assert!(!e.message.is_empty(), "empty validation message");
    }
    // The audit view of the request (secrets removed) must not panic either.
    if let Some(input) = &op.input {
        let _ = model.audit_view(&input.shape, &value);
    }
    first.map_err(|e| format!("{}: {}", e.code, e.message))?;
    decode(op_name, &value);
    Ok(())
}
