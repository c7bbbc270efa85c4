//! The KMS JSON 1.1 protocol (`X-Amz-Target: TrentService.<Operation>`).
//!
//! The body is validated against the botocore model, decoded straight into the
//! keystore's request message (same shapes), the gateway-made context is
//! attached, and the call is recorded by audit before the answer leaves: when
//! the record cannot be made durable, the call fails and nothing is returned.

use crate::audit;
use crate::http::json_response;
use crate::{State, model::Operation};
use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use kms_proto::common::v1::RequestContext;
use kms_proto::error::AwsError;
use serde_json::Value;

fn unknown_operation(op: &str) -> AwsError {
    AwsError::new(
        "UnknownOperationException",
        format!("Unknown operation {op}"),
    )
}

/// Operations served by the keystore today. Every other operation of the model
/// answers UnsupportedOperationException (see the README's status table).
pub const SUPPORTED: &[&str] = &[
    "CreateKey",
    "DescribeKey",
    "ListKeys",
    "EnableKey",
    "DisableKey",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "UpdateKeyDescription",
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateRandom",
    "CreateAlias",
    "UpdateAlias",
    "DeleteAlias",
    "ListAliases",
    "TagResource",
    "UntagResource",
    "ListResourceTags",
    "GetKeyPolicy",
    "PutKeyPolicy",
    "ListKeyPolicies",
    "GetPublicKey",
    "Sign",
    "Verify",
    "GenerateMac",
    "VerifyMac",
    "EnableKeyRotation",
    "DisableKeyRotation",
    "GetKeyRotationStatus",
    "RotateKeyOnDemand",
    "ListKeyRotations",
    "CreateGrant",
    "ListGrants",
    "ListRetirableGrants",
    "RetireGrant",
    "RevokeGrant",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "DeriveSharedSecret",
    "GetParametersForImport",
    "ImportKeyMaterial",
    "DeleteImportedKeyMaterial",
    "ReplicateKey",
    "UpdatePrimaryRegion",
];

/// CloudTrail marks these KMS events readOnly (cryptographic use and reads).
pub fn is_read_only(op: &str) -> bool {
    [
        "Describe",
        "List",
        "Get",
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "Generate",
        "Sign",
        "Verify",
        "DeriveSharedSecret",
    ]
    .iter()
    .any(|p| op.starts_with(p))
}

pub async fn call(
    state: &State,
    ctx: RequestContext,
    op_name: &str,
    body: &[u8],
) -> Result<Response<Full<Bytes>>, AwsError> {
    let op = state
        .kms_model
        .operation(op_name)
        .ok_or_else(|| unknown_operation(op_name))?;
    let request: Value = if body.is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(body).map_err(|_| {
            AwsError::new(
                "SerializationException",
                "Start of structure or map found where not expected.",
            )
        })?
    };
    // Only the records of calls that change something show the response.
    let want_json = op.output.is_some() && !is_read_only(op_name);
    let outcome = match execute(state, &ctx, op_name, op, &request, want_json).await {
        Ok(v) => Ok(v),
        // AWS does not record a request that only the endpoint policy denied.
        Err(f) if f.endpoint_policy_denial => return Err(f.error),
        Err(f) => Err(f.error),
    };
    // The record is durable before any answer leaves.
    audit::record(state, &ctx, op_name, op, &request, &outcome).await?;
    match outcome {
        Ok(reply) => Ok(json_response(match &op.output {
            None => Vec::new(),
            Some(_) => reply.body,
        })),
        Err(e) => Err(e),
    }
}

/// What a call answered.
pub struct Reply {
    /// The response body: the keystore's message serialized straight to JSON.
    pub body: Vec<u8>,
    /// The response as a JSON tree, made only when the record shows it.
    pub json: Option<Value>,
    /// The key ids the response names (`KeyId`, then `SourceKeyId`), read from the message
    /// for the cryptographic operations, so the record need not parse `body` for them;
    /// `None` for the others (the record reads the body).
    pub keys: Option<[Option<String>; 2]>,
}

/// The key ids a response message names, for the CloudTrail record: `KeyId`, then
/// `SourceKeyId`, as [`crate::audit`] reads them from the body of other responses.
trait ResponseKeyIds {
    fn key_ids(&self) -> [Option<String>; 2];
}

macro_rules! key_id_only {
    ($($t:ty),*) => {$(
        impl ResponseKeyIds for $t {
            fn key_ids(&self) -> [Option<String>; 2] {
                [Some(self.key_id.clone()), None]
            }
        }
    )*};
}
key_id_only!(
    kms_proto::keystore::v1::EncryptResponse,
    kms_proto::keystore::v1::DecryptResponse,
    kms_proto::keystore::v1::GenerateDataKeyResponse,
    kms_proto::keystore::v1::GenerateDataKeyWithoutPlaintextResponse
);

impl ResponseKeyIds for kms_proto::keystore::v1::ReEncryptResponse {
    fn key_ids(&self) -> [Option<String>; 2] {
        [Some(self.key_id.clone()), Some(self.source_key_id.clone())]
    }
}

/// A failed call, and whether only the VPC endpoint policy denied it.
struct Failure {
    error: AwsError,
    endpoint_policy_denial: bool,
}

impl From<AwsError> for Failure {
    fn from(error: AwsError) -> Self {
        Failure {
            error,
            endpoint_policy_denial: false,
        }
    }
}

fn backend_failure(s: &tonic::Status) -> Failure {
    Failure {
        error: AwsError::from_status(s),
        endpoint_policy_denial: s
            .metadata()
            .get(kms_proto::error::DENIED_BY_ENDPOINT_POLICY_KEY)
            .is_some_and(|v| v == "true"),
    }
}

async fn execute(
    state: &State,
    ctx: &RequestContext,
    op_name: &str,
    op: &Operation,
    request: &Value,
    want_json: bool,
) -> Result<Reply, Failure> {
    state.kms_model.validate_input(op, request)?;
    if let Some(key_id) = request.get("KeyId").and_then(Value::as_str) {
        tracing::Span::current().record("kms.key_id", key_id);
    }
    if !SUPPORTED.contains(&op_name) {
        return Err(AwsError::new(
            "UnsupportedOperationException",
            format!("{op_name} is not supported by this KMS yet; see the README's status table."),
        )
        .into());
    }
    if request.get("DryRun").and_then(Value::as_bool) == Some(true) {
        // The key must exist and be usable by the caller; nothing else happens.
        if let Some(key_id) = request.get("KeyId").and_then(Value::as_str) {
            let request = kms_proto::keystore::v1::ResolveKeyRequest {
                key_id: key_id.to_string(),
                context: Some(ctx.clone()),
            };
            // Boxed: a rare path, kept out of the size of every call's future.
            Box::pin(async move { state.clients.keystore().resolve_key(request).await })
                .await
                .map_err(|s| backend_failure(&s))?;
        }
        return Err(AwsError::new(
            "DryRunOperationException",
            "The request would have succeeded, but the DryRun option is set.",
        )
        .into());
    }
    dispatch(state, ctx.clone(), op_name, request, want_json).await
}

fn decode<'a, T: serde::Deserialize<'a>>(v: &'a Value) -> Result<T, AwsError> {
    T::deserialize(v).map_err(|e| {
        AwsError::new(
            "SerializationException",
            format!("Could not decode the request: {e}"),
        )
    })
}

/// The answer from the keystore's response message, serialized once, without a
/// JSON tree unless `want_json`.
fn reply<T: serde::Serialize>(resp: &T, want_json: bool) -> Result<Reply, Failure> {
    let internal = |_| Failure::from(AwsError::internal());
    let json = if want_json {
        Some(serde_json::to_value(resp).map_err(internal)?)
    } else {
        None
    };
    let body = serde_json::to_vec(resp).map_err(internal)?;
    Ok(Reply {
        body,
        json,
        keys: None,
    })
}

/// [`reply`] for a message whose key ids are read from its fields.
fn reply_with_keys<T: serde::Serialize + ResponseKeyIds>(
    resp: &T,
    want_json: bool,
) -> Result<Reply, Failure> {
    let mut r = reply(resp, want_json)?;
    r.keys = Some(resp.key_ids());
    Ok(r)
}

async fn dispatch(
    state: &State,
    ctx: RequestContext,
    op: &str,
    v: &Value,
    want_json: bool,
) -> Result<Reply, Failure> {
    // Each arm yields its own response type; `reply` serializes it.
    macro_rules! ks_call {
        ($state:expr, $ctx:expr, $value:expr, $method:ident, $req:ty) => {
            ks_call!($state, $ctx, $value, $method, $req, reply)
        };
        ($state:expr, $ctx:expr, $value:expr, $method:ident, $req:ty, $reply:ident) => {{
            let mut req: $req = decode($value)?;
            req.context = Some($ctx);
            // Boxed: each arm's call is its own small heap future, so this function's
            // future (and with it every request's) stays small; the arms' states,
            // kept inline, added up to tens of KB, copied whenever a request's
            // future moved.
            let resp = Box::pin(async move {
                crate::clients::backend_call!(
                    $state.clients,
                    keystore_local,
                    keystore,
                    "kms.keystore.v1.KeyStore",
                    op,
                    $method,
                    req
                )
            })
            .await
            .map_err(|s| backend_failure(&s))?;
            $reply(&resp, want_json)
        }};
    }
    use kms_proto::keystore::v1 as ks;
    match op {
        "CreateKey" => ks_call!(state, ctx, v, create_key, ks::CreateKeyRequest),
        "DescribeKey" => ks_call!(state, ctx, v, describe_key, ks::DescribeKeyRequest),
        "ListKeys" => ks_call!(state, ctx, v, list_keys, ks::ListKeysRequest),
        "EnableKey" => ks_call!(state, ctx, v, enable_key, ks::KeyIdRequest),
        "DisableKey" => ks_call!(state, ctx, v, disable_key, ks::KeyIdRequest),
        "ScheduleKeyDeletion" => ks_call!(
            state,
            ctx,
            v,
            schedule_key_deletion,
            ks::ScheduleKeyDeletionRequest
        ),
        "CancelKeyDeletion" => ks_call!(state, ctx, v, cancel_key_deletion, ks::KeyIdRequest),
        "UpdateKeyDescription" => ks_call!(
            state,
            ctx,
            v,
            update_key_description,
            ks::UpdateKeyDescriptionRequest
        ),
        "Encrypt" => ks_call!(state, ctx, v, encrypt, ks::EncryptRequest, reply_with_keys),
        "Decrypt" => ks_call!(state, ctx, v, decrypt, ks::DecryptRequest, reply_with_keys),
        "ReEncrypt" => ks_call!(
            state,
            ctx,
            v,
            re_encrypt,
            ks::ReEncryptRequest,
            reply_with_keys
        ),
        "GenerateDataKey" => ks_call!(
            state,
            ctx,
            v,
            generate_data_key,
            ks::GenerateDataKeyRequest,
            reply_with_keys
        ),
        "GenerateDataKeyWithoutPlaintext" => ks_call!(
            state,
            ctx,
            v,
            generate_data_key_without_plaintext,
            ks::GenerateDataKeyRequest,
            reply_with_keys
        ),
        "GenerateRandom" => ks_call!(state, ctx, v, generate_random, ks::GenerateRandomRequest),
        "CreateAlias" => ks_call!(state, ctx, v, create_alias, ks::AliasRequest),
        "UpdateAlias" => ks_call!(state, ctx, v, update_alias, ks::AliasRequest),
        "DeleteAlias" => ks_call!(state, ctx, v, delete_alias, ks::DeleteAliasRequest),
        "ListAliases" => ks_call!(state, ctx, v, list_aliases, ks::ListAliasesRequest),
        "TagResource" => ks_call!(state, ctx, v, tag_resource, ks::TagResourceRequest),
        "UntagResource" => ks_call!(state, ctx, v, untag_resource, ks::UntagResourceRequest),
        "ListResourceTags" => {
            ks_call!(
                state,
                ctx,
                v,
                list_resource_tags,
                ks::ListResourceTagsRequest
            )
        }
        "GetKeyPolicy" => ks_call!(state, ctx, v, get_key_policy, ks::GetKeyPolicyRequest),
        "PutKeyPolicy" => ks_call!(state, ctx, v, put_key_policy, ks::PutKeyPolicyRequest),
        "ListKeyPolicies" => {
            ks_call!(state, ctx, v, list_key_policies, ks::ListKeyPoliciesRequest)
        }
        "GetPublicKey" => ks_call!(state, ctx, v, get_public_key, ks::GetPublicKeyRequest),
        "Sign" => ks_call!(state, ctx, v, sign, ks::SignRequest),
        "Verify" => ks_call!(state, ctx, v, verify, ks::VerifyRequest),
        "GenerateMac" => ks_call!(state, ctx, v, generate_mac, ks::GenerateMacRequest),
        "VerifyMac" => ks_call!(state, ctx, v, verify_mac, ks::VerifyMacRequest),
        "EnableKeyRotation" => ks_call!(
            state,
            ctx,
            v,
            enable_key_rotation,
            ks::EnableKeyRotationRequest
        ),
        "DisableKeyRotation" => ks_call!(state, ctx, v, disable_key_rotation, ks::KeyIdRequest),
        "GetKeyRotationStatus" => {
            ks_call!(state, ctx, v, get_key_rotation_status, ks::KeyIdRequest)
        }
        "RotateKeyOnDemand" => ks_call!(state, ctx, v, rotate_key_on_demand, ks::KeyIdRequest),
        "ListKeyRotations" => {
            ks_call!(
                state,
                ctx,
                v,
                list_key_rotations,
                ks::ListKeyRotationsRequest
            )
        }
        "GenerateDataKeyPair" => ks_call!(
            state,
            ctx,
            v,
            generate_data_key_pair,
            ks::GenerateDataKeyPairRequest
        ),
        "GenerateDataKeyPairWithoutPlaintext" => ks_call!(
            state,
            ctx,
            v,
            generate_data_key_pair_without_plaintext,
            ks::GenerateDataKeyPairRequest
        ),
        "DeriveSharedSecret" => ks_call!(
            state,
            ctx,
            v,
            derive_shared_secret,
            ks::DeriveSharedSecretRequest
        ),
        "GetParametersForImport" => ks_call!(
            state,
            ctx,
            v,
            get_parameters_for_import,
            ks::GetParametersForImportRequest
        ),
        "ImportKeyMaterial" => ks_call!(
            state,
            ctx,
            v,
            import_key_material,
            ks::ImportKeyMaterialRequest
        ),
        "DeleteImportedKeyMaterial" => ks_call!(
            state,
            ctx,
            v,
            delete_imported_key_material,
            ks::DeleteImportedKeyMaterialRequest
        ),
        "ReplicateKey" => ks_call!(state, ctx, v, replicate_key, ks::ReplicateKeyRequest),
        "UpdatePrimaryRegion" => ks_call!(
            state,
            ctx,
            v,
            update_primary_region,
            ks::UpdatePrimaryRegionRequest
        ),
        "CreateGrant" => ks_call!(state, ctx, v, create_grant, ks::CreateGrantRequest),
        "ListGrants" => ks_call!(state, ctx, v, list_grants, ks::ListGrantsRequest),
        "ListRetirableGrants" => ks_call!(
            state,
            ctx,
            v,
            list_retirable_grants,
            ks::ListRetirableGrantsRequest
        ),
        "RetireGrant" => ks_call!(state, ctx, v, retire_grant, ks::RetireGrantRequest),
        "RevokeGrant" => ks_call!(state, ctx, v, revoke_grant, ks::RevokeGrantRequest),
        other => Err(unknown_operation(other).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kms_proto::common::v1::RequestContext;
    use kms_proto::keystore::v1 as ks;

    /// The record's key ARNs from a message's fields and from its serialized body.
    fn both<T: serde::Serialize + ResponseKeyIds>(m: &T) -> (Vec<String>, Vec<String>) {
        let ctx = RequestContext::default();
        let request = serde_json::json!({"KeyId": "alias/x"});
        let typed = reply_with_keys(m, false).ok().unwrap();
        let parsed = reply(m, false).ok().unwrap();
        assert!(typed.keys.is_some() && parsed.keys.is_none());
        assert_eq!(typed.body, parsed.body);
        (
            crate::audit::key_arns(&ctx, &request, &Ok(typed)),
            crate::audit::key_arns(&ctx, &request, &Ok(parsed)),
        )
    }

    #[test]
    fn key_ids_read_from_messages_are_those_the_body_names() {
        let arn = "arn:aws:kms:us-east-1:111122223333:key/k1";
        let src = "arn:aws:kms:us-east-1:444455556666:key/k2";
        let cases = [
            both(&ks::EncryptResponse {
                ciphertext_blob: vec![7; 300],
                key_id: arn.into(),
                encryption_algorithm: "SYMMETRIC_DEFAULT".into(),
            }),
            both(&ks::DecryptResponse {
                key_id: arn.into(),
                plaintext: vec![1; 64],
                ..Default::default()
            }),
            both(&ks::GenerateDataKeyResponse {
                ciphertext_blob: vec![7; 200],
                plaintext: vec![1; 32],
                key_id: arn.into(),
                ..Default::default()
            }),
            both(&ks::GenerateDataKeyWithoutPlaintextResponse {
                ciphertext_blob: vec![7; 200],
                key_id: arn.into(),
                ..Default::default()
            }),
        ];
        for (typed, parsed) in cases {
            assert_eq!(typed, vec![arn]);
            assert_eq!(typed, parsed);
        }
        // Both keys of a ReEncrypt, in the body's order.
        let (typed, parsed) = both(&ks::ReEncryptResponse {
            ciphertext_blob: vec![7; 200],
            source_key_id: src.into(),
            key_id: arn.into(),
            ..Default::default()
        });
        assert_eq!(typed, vec![arn, src]);
        assert_eq!(typed, parsed);
        // An id that is not a key ARN names nothing; the request's alias names nothing.
        let (typed, parsed) = both(&ks::EncryptResponse {
            key_id: "k1".into(),
            ..Default::default()
        });
        assert!(typed.is_empty());
        assert_eq!(typed, parsed);
    }
}
