//! The gRPC contract (`kms.keystore.v1.KeyStore`) on top of [`KeyService`]: converts
//! contract messages to domain calls and domain results back to contract messages.
//! Nothing here reads the database or key material directly.
//!
//! Operations that write run on their own task: a client that goes away mid-call
//! cannot cancel a write between its database commit and the cache update.

use std::future::Future;
use std::sync::Arc;

use kms_proto::common::v1::RequestContext;
use kms_proto::error::AwsError;
use kms_proto::keystore::v1 as pb;
use pb::key_store_server::KeyStore;
use tonic::{Request, Response, Status};

use crate::asymmetric;
use crate::crypto;
use crate::error::Result;
use crate::model::{
    AliasRecord, Caller, DEFAULT_POLICY_NAME, KEY_MANAGER_CUSTOMER, KEY_SPEC_SYMMETRIC_DEFAULT,
    KeyRecord, KeyState, Tag, is_account_id, ms_to_epoch_seconds,
};
use crate::service::grants::{self, CreateGrantInput};
use crate::service::{
    CreateKeyInput, ImportInput, KeyService, Page, ReEncryptInput, ReplicateInput,
};
use crate::store::Store;

pub struct KeyStoreGrpc<S> {
    service: Arc<KeyService<S>>,
}

impl<S: Store> KeyStoreGrpc<S> {
    pub fn new(service: Arc<KeyService<S>>) -> Self {
        Self { service }
    }

    /// [`metadata`] with the MultiRegionConfiguration of multi-Region keys.
    fn full_metadata(&self, r: &KeyRecord) -> pb::KeyMetadata {
        let mut m = metadata(r);
        m.multi_region_configuration =
            self.service
                .multi_region_view(r)
                .map(|v| pb::MultiRegionConfiguration {
                    multi_region_key_type: v.key_type.to_owned(),
                    primary_key: Some(pb::MultiRegionKey {
                        arn: v.primary.0,
                        region: v.primary.1,
                    }),
                    replica_keys: v
                        .replicas
                        .into_iter()
                        .map(|(arn, region)| pb::MultiRegionKey { arn, region })
                        .collect(),
                });
        m
    }

    /// Runs a write to completion on its own task, whatever happens to the caller.
    async fn detached<T, F, Fut>(&self, write: F) -> Result<T, Status>
    where
        F: FnOnce(Arc<KeyService<S>>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        match tokio::spawn(write(Arc::clone(&self.service))).await {
            Ok(result) => result.map_err(Status::from),
            Err(join) => {
                tracing::error!(error = %join, "write task failed");
                Err(AwsError::internal().into())
            }
        }
    }
}

/// The caller and region the gateway established for this request.
fn caller(context: Option<RequestContext>) -> Result<Caller, Status> {
    let missing = || {
        Status::from(AwsError::new(
            "ValidationException",
            "The request context (caller account and region) is missing.",
        ))
    };
    let context = context.ok_or_else(missing)?;
    let principal = context.caller.as_ref().ok_or_else(missing)?;
    let region_ok = !context.region.is_empty()
        && context
            .region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !is_account_id(&principal.account_id) || !region_ok {
        return Err(missing());
    }
    Ok(Caller {
        account_id: principal.account_id.clone(),
        region: context.region.clone(),
        context,
    })
}

fn metadata(r: &KeyRecord) -> pb::KeyMetadata {
    pb::KeyMetadata {
        aws_account_id: r.account_id.clone(),
        key_id: r.id.clone(),
        arn: r.arn.clone(),
        creation_date: ms_to_epoch_seconds(r.creation_date_ms),
        enabled: r.enabled(),
        description: r.description.clone(),
        key_usage: r.key_usage.clone(),
        key_state: r.state.as_str().to_owned(),
        deletion_date: r.deletion_date_ms.map(ms_to_epoch_seconds),
        origin: r.origin.clone(),
        key_manager: KEY_MANAGER_CUSTOMER.to_owned(),
        customer_master_key_spec: r.key_spec.clone(),
        key_spec: r.key_spec.clone(),
        encryption_algorithms: asymmetric::encryption_algorithms(&r.key_spec, &r.key_usage),
        multi_region: r.multi_region,
        // AWS shows it only for multi-Region primary keys awaiting replica deletion.
        pending_deletion_window_in_days: if r.state == KeyState::PendingReplicaDeletion {
            r.pending_window_days
        } else {
            None
        },
        signing_algorithms: asymmetric::signing_algorithms(&r.key_spec, &r.key_usage),
        mac_algorithms: asymmetric::mac_algorithms(&r.key_spec),
        key_agreement_algorithms: asymmetric::key_agreement_algorithms(&r.key_usage),
        // AWS shows it for symmetric encryption keys only.
        current_key_material_id: (r.key_spec == KEY_SPEC_SYMMETRIC_DEFAULT
            && r.state != KeyState::PendingImport)
            .then(|| crypto::material_public_id(&r.id, r.current_material_id)),
        valid_to: r.valid_to_ms.map(ms_to_epoch_seconds),
        expiration_model: r.expiration_model.clone(),
        // Filled by `KeyStoreGrpc::full_metadata` (it needs the other Regions' keys).
        multi_region_configuration: None,
    }
}

fn alias_entry(a: AliasRecord) -> pb::AliasListEntry {
    pb::AliasListEntry {
        alias_arn: a.arn(),
        alias_name: a.alias_name,
        target_key_id: Some(a.target_key_id),
        creation_date: Some(ms_to_epoch_seconds(a.creation_date_ms)),
        last_updated_date: Some(ms_to_epoch_seconds(a.last_updated_ms)),
    }
}

fn tag_from_pb(t: pb::Tag) -> Tag {
    Tag {
        key: t.tag_key,
        value: t.tag_value,
    }
}

fn tag_to_pb(t: Tag) -> pb::Tag {
    pb::Tag {
        tag_key: t.key,
        tag_value: t.value,
    }
}

/// (items, next_marker, truncated) of a page.
fn page_parts<T, U>(page: Page<T>, f: impl FnMut(T) -> U) -> (Vec<U>, Option<String>, bool) {
    let truncated = page.next_marker.is_some();
    (
        page.items.into_iter().map(f).collect(),
        page.next_marker,
        truncated,
    )
}

/// Moves a secret out of its zeroizing buffer into a response message. The message
/// is encoded and dropped by tonic, beyond our reach; this avoids leaving a copy.
fn take_secret(mut secret: zeroize::Zeroizing<Vec<u8>>) -> Vec<u8> {
    std::mem::take(&mut *secret)
}

#[tonic::async_trait]
impl<S: Store> KeyStore for KeyStoreGrpc<S> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn create_key(
        &self,
        request: Request<pb::CreateKeyRequest>,
    ) -> Result<Response<pb::CreateKeyResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let input = CreateKeyInput {
            policy: r.policy,
            description: r.description,
            key_usage: r.key_usage,
            customer_master_key_spec: r.customer_master_key_spec,
            key_spec: r.key_spec,
            origin: r.origin,
            custom_key_store_id: r.custom_key_store_id,
            multi_region: r.multi_region,
            xks_key_id: r.xks_key_id,
            tags: r.tags.into_iter().map(tag_from_pb).collect(),
            bypass_policy_lockout_safety_check: r.bypass_policy_lockout_safety_check,
        };
        let record = self
            .detached(move |s| async move { s.create_key(&caller, input).await })
            .await?;
        Ok(Response::new(pb::CreateKeyResponse {
            key_metadata: Some(self.full_metadata(&record)),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn describe_key(
        &self,
        request: Request<pb::DescribeKeyRequest>,
    ) -> Result<Response<pb::DescribeKeyResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        grants::check_grant_tokens(&r.grant_tokens)?;
        let record = self.service.describe_key(&caller, &r.key_id).await?;
        Ok(Response::new(pb::DescribeKeyResponse {
            key_metadata: Some(self.full_metadata(&record)),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_keys(
        &self,
        request: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let page = self
            .service
            .list_keys(&caller, r.limit, r.marker.as_deref())
            .await?;
        let (keys, next_marker, truncated) = page_parts(page, |(key_id, key_arn)| {
            pb::KeyListEntry { key_id, key_arn }
        });
        Ok(Response::new(pb::ListKeysResponse {
            keys,
            next_marker,
            truncated,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn enable_key(
        &self,
        request: Request<pb::KeyIdRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        self.detached(move |s| async move { s.enable_key(&caller, &r.key_id).await })
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn disable_key(
        &self,
        request: Request<pb::KeyIdRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        self.detached(move |s| async move { s.disable_key(&caller, &r.key_id).await })
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn schedule_key_deletion(
        &self,
        request: Request<pb::ScheduleKeyDeletionRequest>,
    ) -> Result<Response<pb::ScheduleKeyDeletionResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let record = self
            .detached(move |s| async move {
                s.schedule_key_deletion(&caller, &r.key_id, r.pending_window_in_days)
                    .await
            })
            .await?;
        Ok(Response::new(pb::ScheduleKeyDeletionResponse {
            key_id: record.arn.clone(),
            deletion_date: record.deletion_date_ms.map(ms_to_epoch_seconds),
            // PendingDeletion, or PendingReplicaDeletion (no deletion date yet) for a
            // multi-Region primary key that still has replicas.
            key_state: record.state.as_str().to_owned(),
            pending_window_in_days: record.pending_window_days.unwrap_or_default(),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn cancel_key_deletion(
        &self,
        request: Request<pb::KeyIdRequest>,
    ) -> Result<Response<pb::CancelKeyDeletionResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let key_arn = self
            .detached(move |s| async move { s.cancel_key_deletion(&caller, &r.key_id).await })
            .await?;
        Ok(Response::new(pb::CancelKeyDeletionResponse {
            key_id: key_arn,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn update_key_description(
        &self,
        request: Request<pb::UpdateKeyDescriptionRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        self.detached(move |s| async move {
            s.update_key_description(&caller, &r.key_id, r.description)
                .await
        })
        .await?;
        Ok(Response::new(pb::Empty {}))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn encrypt(
        &self,
        request: Request<pb::EncryptRequest>,
    ) -> Result<Response<pb::EncryptResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        grants::check_grant_tokens(&r.grant_tokens)?;
        let mut plaintext = r.plaintext;
        let out = self
            .service
            .encrypt(
                &caller,
                &r.key_id,
                &plaintext,
                &r.encryption_context,
                r.encryption_algorithm.as_deref(),
                r.dry_run.unwrap_or(false),
            )
            .await;
        // The request's plaintext is wiped before the response goes out.
        zeroize::Zeroize::zeroize(&mut plaintext);
        let out = out?;
        Ok(Response::new(pb::EncryptResponse {
            ciphertext_blob: out.ciphertext_blob,
            key_id: out.key_arn,
            encryption_algorithm: out.algorithm,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn decrypt(
        &self,
        request: Request<pb::DecryptRequest>,
    ) -> Result<Response<pb::DecryptResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        grants::check_grant_tokens(&r.grant_tokens)?;
        let out = self
            .service
            .decrypt(
                &caller,
                &r.ciphertext_blob,
                &r.encryption_context,
                r.key_id.as_deref(),
                r.encryption_algorithm.as_deref(),
                r.dry_run.unwrap_or(false),
            )
            .await?;
        Ok(Response::new(pb::DecryptResponse {
            key_id: out.key_arn,
            plaintext: take_secret(out.plaintext),
            encryption_algorithm: out.algorithm,
            key_material_id: out.key_material_id,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn re_encrypt(
        &self,
        request: Request<pb::ReEncryptRequest>,
    ) -> Result<Response<pb::ReEncryptResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        grants::check_grant_tokens(&r.grant_tokens)?;
        let out = self
            .service
            .re_encrypt(
                &caller,
                ReEncryptInput {
                    ciphertext_blob: &r.ciphertext_blob,
                    source_encryption_context: &r.source_encryption_context,
                    source_key_id: r.source_key_id.as_deref(),
                    destination_key_id: &r.destination_key_id,
                    destination_encryption_context: &r.destination_encryption_context,
                    source_encryption_algorithm: r.source_encryption_algorithm.as_deref(),
                    destination_encryption_algorithm: r.destination_encryption_algorithm.as_deref(),
                    dry_run: r.dry_run.unwrap_or(false),
                },
            )
            .await?;
        Ok(Response::new(pb::ReEncryptResponse {
            ciphertext_blob: out.ciphertext_blob,
            source_key_id: out.source_key_arn,
            key_id: out.key_arn,
            source_encryption_algorithm: out.source_algorithm,
            destination_encryption_algorithm: out.destination_algorithm,
            source_key_material_id: out.source_key_material_id,
            destination_key_material_id: out.key_material_id,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn generate_data_key(
        &self,
        request: Request<pb::GenerateDataKeyRequest>,
    ) -> Result<Response<pb::GenerateDataKeyResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        grants::check_grant_tokens(&r.grant_tokens)?;
        let out = self
            .service
            .generate_data_key(
                &caller,
                &r.key_id,
                &r.encryption_context,
                r.number_of_bytes,
                r.key_spec.as_deref(),
                r.dry_run.unwrap_or(false),
                "GenerateDataKey",
            )
            .await?;
        Ok(Response::new(pb::GenerateDataKeyResponse {
            ciphertext_blob: out.ciphertext_blob,
            plaintext: take_secret(out.plaintext),
            key_id: out.key_arn,
            key_material_id: Some(out.key_material_id),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn generate_data_key_without_plaintext(
        &self,
        request: Request<pb::GenerateDataKeyRequest>,
    ) -> Result<Response<pb::GenerateDataKeyWithoutPlaintextResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        grants::check_grant_tokens(&r.grant_tokens)?;
        let out = self
            .service
            .generate_data_key(
                &caller,
                &r.key_id,
                &r.encryption_context,
                r.number_of_bytes,
                r.key_spec.as_deref(),
                r.dry_run.unwrap_or(false),
                "GenerateDataKeyWithoutPlaintext",
            )
            .await?;
        Ok(Response::new(pb::GenerateDataKeyWithoutPlaintextResponse {
            ciphertext_blob: out.ciphertext_blob,
            key_id: out.key_arn,
            key_material_id: Some(out.key_material_id),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn generate_random(
        &self,
        request: Request<pb::GenerateRandomRequest>,
    ) -> Result<Response<pb::GenerateRandomResponse>, Status> {
        let r = request.into_inner();
        // Not tied to a key: identity policies decide.
        let caller = caller(r.context)?;
        let bytes = self
            .service
            .generate_random(&caller, r.number_of_bytes, r.custom_key_store_id.as_deref())
            .await?;
        Ok(Response::new(pb::GenerateRandomResponse {
            plaintext: take_secret(bytes),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn create_alias(
        &self,
        request: Request<pb::AliasRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        self.detached(move |s| async move {
            s.create_alias(&caller, &r.alias_name, &r.target_key_id)
                .await
        })
        .await?;
        Ok(Response::new(pb::Empty {}))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn update_alias(
        &self,
        request: Request<pb::AliasRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        self.detached(move |s| async move {
            s.update_alias(&caller, &r.alias_name, &r.target_key_id)
                .await
        })
        .await?;
        Ok(Response::new(pb::Empty {}))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn delete_alias(
        &self,
        request: Request<pb::DeleteAliasRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        self.detached(move |s| async move { s.delete_alias(&caller, &r.alias_name).await })
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_aliases(
        &self,
        request: Request<pb::ListAliasesRequest>,
    ) -> Result<Response<pb::ListAliasesResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let page = self
            .service
            .list_aliases(&caller, r.key_id.as_deref(), r.limit, r.marker.as_deref())
            .await?;
        let (aliases, next_marker, truncated) = page_parts(page, alias_entry);
        Ok(Response::new(pb::ListAliasesResponse {
            aliases,
            next_marker,
            truncated,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn tag_resource(
        &self,
        request: Request<pb::TagResourceRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let tags: Vec<Tag> = r.tags.into_iter().map(tag_from_pb).collect();
        self.detached(move |s| async move { s.tag_resource(&caller, &r.key_id, &tags).await })
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn untag_resource(
        &self,
        request: Request<pb::UntagResourceRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        self.detached(
            move |s| async move { s.untag_resource(&caller, &r.key_id, &r.tag_keys).await },
        )
        .await?;
        Ok(Response::new(pb::Empty {}))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_resource_tags(
        &self,
        request: Request<pb::ListResourceTagsRequest>,
    ) -> Result<Response<pb::ListResourceTagsResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let page = self
            .service
            .list_resource_tags(&caller, &r.key_id, r.limit, r.marker.as_deref())
            .await?;
        let (tags, next_marker, truncated) = page_parts(page, tag_to_pb);
        Ok(Response::new(pb::ListResourceTagsResponse {
            tags,
            next_marker,
            truncated,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_key_policy(
        &self,
        request: Request<pb::GetKeyPolicyRequest>,
    ) -> Result<Response<pb::GetKeyPolicyResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let policy = self
            .service
            .get_key_policy(&caller, &r.key_id, r.policy_name.as_deref())
            .await?;
        Ok(Response::new(pb::GetKeyPolicyResponse {
            policy,
            policy_name: DEFAULT_POLICY_NAME.to_owned(),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn put_key_policy(
        &self,
        request: Request<pb::PutKeyPolicyRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        self.detached(move |s| async move {
            s.put_key_policy(
                &caller,
                &r.key_id,
                r.policy_name.as_deref(),
                r.policy,
                r.bypass_policy_lockout_safety_check,
            )
            .await
        })
        .await?;
        Ok(Response::new(pb::Empty {}))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_key_policies(
        &self,
        request: Request<pb::ListKeyPoliciesRequest>,
    ) -> Result<Response<pb::ListKeyPoliciesResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let page = self
            .service
            .list_key_policies(&caller, &r.key_id, r.limit, r.marker.as_deref())
            .await?;
        let (policy_names, next_marker, truncated) = page_parts(page, |n| n);
        Ok(Response::new(pb::ListKeyPoliciesResponse {
            policy_names,
            next_marker,
            truncated,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn resolve_key(
        &self,
        request: Request<pb::ResolveKeyRequest>,
    ) -> Result<Response<pb::ResolvedKey>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let record = self.service.resolve_key(&caller, &r.key_id)?;
        Ok(Response::new(pb::ResolvedKey {
            key_id: record.id,
            arn: record.arn,
            account_id: record.account_id,
            key_state: record.state.as_str().to_owned(),
            policy: record.policy,
            version: record.version,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_public_key(
        &self,
        request: Request<pb::GetPublicKeyRequest>,
    ) -> Result<Response<pb::GetPublicKeyResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        grants::check_grant_tokens(&r.grant_tokens)?;
        let info = self.service.get_public_key(&caller, &r.key_id).await?;
        let k = &info.record;
        Ok(Response::new(pb::GetPublicKeyResponse {
            key_id: k.arn.clone(),
            public_key: info.public_key,
            customer_master_key_spec: k.key_spec.clone(),
            key_spec: k.key_spec.clone(),
            key_usage: k.key_usage.clone(),
            encryption_algorithms: asymmetric::encryption_algorithms(&k.key_spec, &k.key_usage),
            signing_algorithms: asymmetric::signing_algorithms(&k.key_spec, &k.key_usage),
            key_agreement_algorithms: asymmetric::key_agreement_algorithms(&k.key_usage),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn sign(
        &self,
        request: Request<pb::SignRequest>,
    ) -> Result<Response<pb::SignResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        grants::check_grant_tokens(&r.grant_tokens)?;
        let out = self
            .service
            .sign_or_verify(
                &caller,
                &r.key_id,
                &r.message,
                r.message_type.as_deref(),
                &r.signing_algorithm,
                None,
                r.dry_run.unwrap_or(false),
            )
            .await?;
        Ok(Response::new(pb::SignResponse {
            key_id: out.key_arn,
            signature: out.signature,
            signing_algorithm: r.signing_algorithm,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn verify(
        &self,
        request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        grants::check_grant_tokens(&r.grant_tokens)?;
        let out = self
            .service
            .sign_or_verify(
                &caller,
                &r.key_id,
                &r.message,
                r.message_type.as_deref(),
                &r.signing_algorithm,
                Some(&r.signature),
                r.dry_run.unwrap_or(false),
            )
            .await?;
        Ok(Response::new(pb::VerifyResponse {
            key_id: out.key_arn,
            signature_valid: true,
            signing_algorithm: r.signing_algorithm,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn generate_mac(
        &self,
        request: Request<pb::GenerateMacRequest>,
    ) -> Result<Response<pb::GenerateMacResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        grants::check_grant_tokens(&r.grant_tokens)?;
        let out = self
            .service
            .generate_or_verify_mac(
                &caller,
                &r.key_id,
                &r.message,
                &r.mac_algorithm,
                None,
                r.dry_run.unwrap_or(false),
            )
            .await?;
        Ok(Response::new(pb::GenerateMacResponse {
            mac: out.signature,
            mac_algorithm: r.mac_algorithm,
            key_id: out.key_arn,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn verify_mac(
        &self,
        request: Request<pb::VerifyMacRequest>,
    ) -> Result<Response<pb::VerifyMacResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        grants::check_grant_tokens(&r.grant_tokens)?;
        let out = self
            .service
            .generate_or_verify_mac(
                &caller,
                &r.key_id,
                &r.message,
                &r.mac_algorithm,
                Some(&r.mac),
                r.dry_run.unwrap_or(false),
            )
            .await?;
        Ok(Response::new(pb::VerifyMacResponse {
            key_id: out.key_arn,
            mac_valid: true,
            mac_algorithm: r.mac_algorithm,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn enable_key_rotation(
        &self,
        request: Request<pb::EnableKeyRotationRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        self.detached(move |s| async move {
            s.enable_key_rotation(&caller, &r.key_id, r.rotation_period_in_days)
                .await
        })
        .await?;
        Ok(Response::new(pb::Empty {}))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn disable_key_rotation(
        &self,
        request: Request<pb::KeyIdRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        self.detached(move |s| async move { s.disable_key_rotation(&caller, &r.key_id).await })
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_key_rotation_status(
        &self,
        request: Request<pb::KeyIdRequest>,
    ) -> Result<Response<pb::GetKeyRotationStatusResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let status = self
            .service
            .get_key_rotation_status(&caller, &r.key_id)
            .await?;
        let k = &status.record;
        Ok(Response::new(pb::GetKeyRotationStatusResponse {
            key_rotation_enabled: status.enabled,
            key_id: k.arn.clone(),
            rotation_period_in_days: k.rotation_period_days.filter(|_| status.enabled),
            next_rotation_date: k
                .next_rotation_ms
                .filter(|_| status.enabled)
                .map(ms_to_epoch_seconds),
            on_demand_rotation_start_date: None,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn rotate_key_on_demand(
        &self,
        request: Request<pb::KeyIdRequest>,
    ) -> Result<Response<pb::RotateKeyOnDemandResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let key_id = self
            .detached(move |s| async move { s.rotate_key_on_demand(&caller, &r.key_id).await })
            .await?;
        Ok(Response::new(pb::RotateKeyOnDemandResponse { key_id }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_key_rotations(
        &self,
        request: Request<pb::ListKeyRotationsRequest>,
    ) -> Result<Response<pb::ListKeyRotationsResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let page = self
            .service
            .list_key_rotations(
                &caller,
                &r.key_id,
                r.include_key_material.as_deref(),
                r.limit,
                r.marker.as_deref(),
            )
            .await?;
        let (rotations, next_marker, truncated) =
            page_parts(page, |(_, e)| pb::RotationsListEntry {
                key_id: e.key_id,
                key_material_id: Some(e.material_public_id),
                key_material_state: Some(
                    if e.current { "CURRENT" } else { "NON_CURRENT" }.to_owned(),
                ),
                rotation_date: e
                    .info
                    .rotation_type
                    .is_some()
                    .then(|| ms_to_epoch_seconds(e.info.created_ms)),
                rotation_type: e.info.rotation_type,
                ..Default::default()
            });
        Ok(Response::new(pb::ListKeyRotationsResponse {
            rotations,
            next_marker,
            truncated,
        }))
    }
    #[tracing::instrument(level = "debug", skip_all)]
    async fn generate_data_key_pair(
        &self,
        request: Request<pb::GenerateDataKeyPairRequest>,
    ) -> Result<Response<pb::GenerateDataKeyPairResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        grants::check_grant_tokens(&r.grant_tokens)?;
        let out = self
            .service
            .generate_data_key_pair(
                &caller,
                &r.key_id,
                &r.key_pair_spec,
                &r.encryption_context,
                r.recipient.is_some(),
                r.dry_run.unwrap_or(false),
                "GenerateDataKeyPair",
            )
            .await?;
        Ok(Response::new(pb::GenerateDataKeyPairResponse {
            private_key_ciphertext_blob: out.private_key_ciphertext_blob,
            private_key_plaintext: take_secret(out.private_key_plaintext),
            public_key: out.public_key,
            key_id: out.key_arn,
            key_pair_spec: out.key_pair_spec,
            key_material_id: Some(out.key_material_id),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn generate_data_key_pair_without_plaintext(
        &self,
        request: Request<pb::GenerateDataKeyPairRequest>,
    ) -> Result<Response<pb::GenerateDataKeyPairWithoutPlaintextResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        grants::check_grant_tokens(&r.grant_tokens)?;
        let out = self
            .service
            .generate_data_key_pair(
                &caller,
                &r.key_id,
                &r.key_pair_spec,
                &r.encryption_context,
                r.recipient.is_some(),
                r.dry_run.unwrap_or(false),
                "GenerateDataKeyPairWithoutPlaintext",
            )
            .await?;
        Ok(Response::new(
            pb::GenerateDataKeyPairWithoutPlaintextResponse {
                private_key_ciphertext_blob: out.private_key_ciphertext_blob,
                public_key: out.public_key,
                key_id: out.key_arn,
                key_pair_spec: out.key_pair_spec,
                key_material_id: Some(out.key_material_id),
            },
        ))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn derive_shared_secret(
        &self,
        request: Request<pb::DeriveSharedSecretRequest>,
    ) -> Result<Response<pb::DeriveSharedSecretResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        grants::check_grant_tokens(&r.grant_tokens)?;
        let out = self
            .service
            .derive_shared_secret(
                &caller,
                &r.key_id,
                &r.key_agreement_algorithm,
                &r.public_key,
                r.recipient.is_some(),
                r.dry_run.unwrap_or(false),
            )
            .await?;
        Ok(Response::new(pb::DeriveSharedSecretResponse {
            key_id: out.key_arn,
            shared_secret: take_secret(out.shared_secret),
            key_agreement_algorithm: r.key_agreement_algorithm,
            key_origin: out.key_origin,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_parameters_for_import(
        &self,
        request: Request<pb::GetParametersForImportRequest>,
    ) -> Result<Response<pb::GetParametersForImportResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let out = self
            .service
            .get_parameters_for_import(
                &caller,
                &r.key_id,
                &r.wrapping_algorithm,
                &r.wrapping_key_spec,
            )
            .await?;
        Ok(Response::new(pb::GetParametersForImportResponse {
            key_id: out.key_arn,
            import_token: out.import_token,
            public_key: out.public_key,
            parameters_valid_to: ms_to_epoch_seconds(out.valid_to_ms),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn import_key_material(
        &self,
        request: Request<pb::ImportKeyMaterialRequest>,
    ) -> Result<Response<pb::ImportKeyMaterialResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let (key_id, key_material_id) = self
            .detached(move |s| async move {
                s.import_key_material(
                    &caller,
                    ImportInput {
                        key_id: &r.key_id,
                        import_token: &r.import_token,
                        encrypted_key_material: &r.encrypted_key_material,
                        valid_to: r.valid_to,
                        expiration_model: r.expiration_model.as_deref(),
                        import_type: r.import_type.as_deref(),
                        key_material_id: r.key_material_id.as_deref(),
                    },
                )
                .await
            })
            .await?;
        Ok(Response::new(pb::ImportKeyMaterialResponse {
            key_id,
            key_material_id: Some(key_material_id),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn delete_imported_key_material(
        &self,
        request: Request<pb::DeleteImportedKeyMaterialRequest>,
    ) -> Result<Response<pb::DeleteImportedKeyMaterialResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let (key_id, key_material_id) = self
            .detached(move |s| async move {
                s.delete_imported_key_material(&caller, &r.key_id, r.key_material_id.as_deref())
                    .await
            })
            .await?;
        Ok(Response::new(pb::DeleteImportedKeyMaterialResponse {
            key_id,
            key_material_id: Some(key_material_id),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn replicate_key(
        &self,
        request: Request<pb::ReplicateKeyRequest>,
    ) -> Result<Response<pb::ReplicateKeyResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let input = ReplicateInput {
            key_id: r.key_id,
            replica_region: r.replica_region,
            policy: r.policy,
            bypass_policy_lockout_safety_check: r.bypass_policy_lockout_safety_check,
            description: r.description,
            tags: r.tags.into_iter().map(tag_from_pb).collect(),
        };
        let (record, policy, tags) = self
            .detached(move |s| async move { s.replicate_key(&caller, input).await })
            .await?;
        Ok(Response::new(pb::ReplicateKeyResponse {
            replica_key_metadata: Some(self.full_metadata(&record)),
            replica_policy: policy,
            replica_tags: tags.into_iter().map(tag_to_pb).collect(),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn update_primary_region(
        &self,
        request: Request<pb::UpdatePrimaryRegionRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        self.detached(move |s| async move {
            s.update_primary_region(&caller, &r.key_id, &r.primary_region)
                .await
        })
        .await?;
        Ok(Response::new(pb::Empty {}))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn create_grant(
        &self,
        request: Request<pb::CreateGrantRequest>,
    ) -> Result<Response<pb::CreateGrantResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let input = CreateGrantInput {
            key_id: r.key_id,
            grantee_principal: r.grantee_principal,
            retiring_principal: r.retiring_principal,
            operations: r.operations,
            constraints: r.constraints.map(grants::constraints_from_pb),
            grant_tokens: r.grant_tokens,
            name: r.name,
        };
        let (grant_id, grant_token) = self
            .detached(move |s| async move { s.create_grant(&caller, input).await })
            .await?;
        Ok(Response::new(pb::CreateGrantResponse {
            grant_token: Some(grant_token),
            grant_id: Some(grant_id),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_grants(
        &self,
        request: Request<pb::ListGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let page = self
            .service
            .list_grants(
                &caller,
                &r.key_id,
                r.limit,
                r.marker.as_deref(),
                r.grant_id.as_deref(),
                r.grantee_principal.as_deref(),
            )
            .await?;
        let (grants, next_marker, truncated) = page_parts(page, |g| grants::entry(&g));
        Ok(Response::new(pb::ListGrantsResponse {
            grants,
            next_marker,
            truncated,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_retirable_grants(
        &self,
        request: Request<pb::ListRetirableGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        let page = self
            .service
            .list_retirable_grants(&caller, &r.retiring_principal, r.limit, r.marker.as_deref())
            .await?;
        let (grants, next_marker, truncated) = page_parts(page, |g| grants::entry(&g));
        Ok(Response::new(pb::ListGrantsResponse {
            grants,
            next_marker,
            truncated,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn retire_grant(
        &self,
        request: Request<pb::RetireGrantRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        self.detached(move |s| async move {
            s.retire_grant(
                &caller,
                r.grant_token.as_deref(),
                r.key_id.as_deref(),
                r.grant_id.as_deref(),
            )
            .await
        })
        .await?;
        Ok(Response::new(pb::Empty {}))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn revoke_grant(
        &self,
        request: Request<pb::RevokeGrantRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = request.into_inner();
        let caller = caller(r.context)?;
        self.detached(
            move |s| async move { s.revoke_grant(&caller, &r.key_id, &r.grant_id).await },
        )
        .await?;
        Ok(Response::new(pb::Empty {}))
    }
}
