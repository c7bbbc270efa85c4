//! The AWS SDK for Rust (aws-sdk-kms) against the whole stack: every supported
//! operation, the error cases, and restart persistence.

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, KeyState, Tag};
use kms_e2e::{ACCOUNT_A, ACCOUNT_B, Stack, error_code as code, start_stack};

fn client(stack: &Stack, account: (&str, &str, &str)) -> Client {
    kms_e2e::kms_client(stack, account, "us-east-1")
}

#[tokio::test]
async fn symmetric_key_lifecycle_and_crypto() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(dir.path()).await.unwrap();
    let kms = client(&stack, ACCOUNT_A);

    let created = kms
        .create_key()
        .description("e2e key")
        .tags(
            Tag::builder()
                .tag_key("team")
                .tag_value("blue")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let meta = created.key_metadata().unwrap();
    let key_id = meta.key_id().to_string();
    assert_eq!(meta.key_state(), Some(&KeyState::Enabled));
    assert_eq!(meta.aws_account_id(), Some("111122223333"));
    assert_eq!(
        meta.arn().unwrap(),
        format!("arn:aws:kms:us-east-1:111122223333:key/{key_id}")
    );
    assert_eq!(meta.description(), Some("e2e key"));

    // Encrypt and decrypt, with an encryption context, with and without KeyId.
    let enc = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"hello kms".to_vec()))
        .encryption_context("purpose", "e2e")
        .send()
        .await
        .unwrap();
    assert_eq!(enc.key_id().unwrap(), meta.arn().unwrap());
    let blob = enc.ciphertext_blob().unwrap().clone();
    let dec = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("purpose", "e2e")
        .send()
        .await
        .unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"hello kms");
    assert_eq!(dec.key_id().unwrap(), meta.arn().unwrap());

    // A different encryption context does not decrypt.
    let err = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("purpose", "other")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "InvalidCiphertextException");

    // A tampered blob does not decrypt.
    let mut tampered = blob.as_ref().to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let err = kms
        .decrypt()
        .ciphertext_blob(Blob::new(tampered))
        .encryption_context("purpose", "e2e")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "InvalidCiphertextException");

    // Aliases name the key for encryption and decryption.
    kms.create_alias()
        .alias_name("alias/e2e")
        .target_key_id(&key_id)
        .send()
        .await
        .unwrap();
    let enc2 = kms
        .encrypt()
        .key_id("alias/e2e")
        .plaintext(Blob::new(b"via alias".to_vec()))
        .send()
        .await
        .unwrap();
    let dec2 = kms
        .decrypt()
        .key_id("alias/e2e")
        .ciphertext_blob(enc2.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(dec2.plaintext().unwrap().as_ref(), b"via alias");
    let aliases = kms.list_aliases().key_id(&key_id).send().await.unwrap();
    assert_eq!(aliases.aliases().len(), 1);
    assert_eq!(aliases.aliases()[0].alias_name(), Some("alias/e2e"));

    // Data keys: the plaintext key decrypts back from its blob.
    let dk = kms
        .generate_data_key()
        .key_id(&key_id)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .unwrap();
    assert_eq!(dk.plaintext().unwrap().as_ref().len(), 32);
    let back = kms
        .decrypt()
        .ciphertext_blob(dk.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap(), dk.plaintext().unwrap());
    let dk2 = kms
        .generate_data_key_without_plaintext()
        .key_id(&key_id)
        .number_of_bytes(64)
        .send()
        .await
        .unwrap();
    let back2 = kms
        .decrypt()
        .ciphertext_blob(dk2.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(back2.plaintext().unwrap().as_ref().len(), 64);

    // ReEncrypt to a second key.
    let other = kms.create_key().send().await.unwrap();
    let other_arn = other.key_metadata().unwrap().arn().unwrap().to_string();
    let re = kms
        .re_encrypt()
        .ciphertext_blob(blob.clone())
        .source_encryption_context("purpose", "e2e")
        .destination_key_id(&other_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(re.key_id(), Some(other_arn.as_str()));
    let dec3 = kms
        .decrypt()
        .ciphertext_blob(re.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(dec3.plaintext().unwrap().as_ref(), b"hello kms");

    let random = kms
        .generate_random()
        .number_of_bytes(48)
        .send()
        .await
        .unwrap();
    assert_eq!(random.plaintext().unwrap().as_ref().len(), 48);

    // Disabled keys refuse cryptography; enabled again they work.
    kms.disable_key().key_id(&key_id).send().await.unwrap();
    let err = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "DisabledException");
    kms.enable_key().key_id(&key_id).send().await.unwrap();

    // Pending deletion refuses cryptography; cancelling leaves the key disabled.
    let sched = kms
        .schedule_key_deletion()
        .key_id(&other_arn)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    assert_eq!(sched.key_state(), Some(&KeyState::PendingDeletion));
    assert!(sched.deletion_date().is_some());
    let err = kms
        .encrypt()
        .key_id(&other_arn)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "KMSInvalidStateException");
    kms.cancel_key_deletion()
        .key_id(&other_arn)
        .send()
        .await
        .unwrap();
    let d = kms.describe_key().key_id(&other_arn).send().await.unwrap();
    assert_eq!(
        d.key_metadata().unwrap().key_state(),
        Some(&KeyState::Disabled)
    );

    // Tags, description, policies.
    let tags = kms
        .list_resource_tags()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().len(), 1);
    assert_eq!(tags.tags()[0].tag_key(), "team");
    kms.update_key_description()
        .key_id(&key_id)
        .description("renamed")
        .send()
        .await
        .unwrap();
    let policy = kms
        .get_key_policy()
        .key_id(&key_id)
        .policy_name("default")
        .send()
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    assert_eq!(
        doc["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::111122223333:root"
    );
    let names = kms
        .list_key_policies()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    assert_eq!(names.policy_names(), ["default"]);

    // Unknown keys and the other account's keys.
    let err = kms
        .describe_key()
        .key_id("00000000-0000-0000-0000-000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "NotFoundException");
    // The default key policy does not name account B: authz denies, with AWS's message.
    let kms_b = client(&stack, ACCOUNT_B);
    let err = kms_b
        .encrypt()
        .key_id(meta.arn().unwrap())
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    let message = err
        .as_service_error()
        .and_then(|e| aws_sdk_kms::error::ProvideErrorMetadata::message(e))
        .unwrap_or_default()
        .to_string();
    assert_eq!(code(err), "AccessDeniedException");
    assert_eq!(
        message,
        format!(
            "User: arn:aws:iam::{}:root is not authorized to perform: kms:Encrypt on resource: {} because no resource-based policy allows the kms:Encrypt action",
            ACCOUNT_B.0,
            meta.arn().unwrap()
        )
    );
    // Once the key policy names account B, it may encrypt with the key.
    let shared = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{}:root"}},"Action":"kms:*","Resource":"*"}},
            {{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{}:root"}},"Action":"kms:Encrypt","Resource":"*"}}]}}"#,
        ACCOUNT_A.0, ACCOUNT_B.0
    );
    kms.put_key_policy()
        .key_id(&key_id)
        .policy_name("default")
        .policy(shared)
        .send()
        .await
        .unwrap();
    let enc_b = kms_b
        .encrypt()
        .key_id(meta.arn().unwrap())
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(enc_b.key_id(), meta.arn());
    let listed_b = kms_b.list_keys().send().await.unwrap();
    assert!(
        listed_b.keys().is_empty(),
        "account B sees none of A's keys"
    );

    stack.shutdown().await.unwrap();
}

#[tokio::test]
async fn authentication_errors_use_kms_exception_names() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(dir.path()).await.unwrap();
    let wrong_secret = client(&stack, ("", ACCOUNT_A.1, "not-the-secret"));
    let err = wrong_secret.list_keys().send().await.unwrap_err();
    assert_eq!(code(err), "InvalidSignatureException");
    let unknown = client(&stack, ("", "AKIAUNKNOWNEXAMPLE00", "whatever"));
    let err = unknown.list_keys().send().await.unwrap_err();
    assert_eq!(code(err), "UnrecognizedClientException");
    stack.shutdown().await.unwrap();
}

#[tokio::test]
async fn keys_and_ciphertexts_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(dir.path()).await.unwrap();
    let kms = client(&stack, ACCOUNT_A);
    let key = kms.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    let blob = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"persisted".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    stack.shutdown().await.unwrap();

    let stack = start_stack(dir.path()).await.unwrap();
    let kms = client(&stack, ACCOUNT_A);
    let dec = kms.decrypt().ciphertext_blob(blob).send().await.unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"persisted");
    let listed = kms.list_keys().send().await.unwrap();
    assert!(
        listed
            .keys()
            .iter()
            .any(|k| k.key_id() == Some(key_id.as_str()))
    );
    stack.shutdown().await.unwrap();
}
