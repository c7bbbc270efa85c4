//! Ciphertext blobs at the key store's Decrypt. The blob parser (`kms_keystore`'s `blob`
//! module) is private to its crate, so blobs reach it as in production: over gRPC, through
//! the key lookup, authz's decision and AES-GCM, on an in-process authz + key store pair
//! bound to 127.0.0.1.
//!
//! `Stack::check(blob)`: `Ok(plaintext)` when the blob decrypts (with the empty encryption
//! context); `Err("<Code>: ...")` otherwise. Every refusal must be one of the documented
//! exceptions (docs/CIPHERTEXT.md), never `KMSInternalException`.

// The fuzz target uses part of this (no `encrypt`, no `stop`); the smoke test uses all of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

use kms_proto::common::v1::{Caller, RequestContext};
use kms_proto::error::AwsError;
use kms_proto::keystore::v1 as pb;
use pb::key_store_client::KeyStoreClient;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

pub const ACCOUNT: &str = "111122223333";

/// What Decrypt may answer a blob that is not a genuine one for the caller.
pub const DOCUMENTED: &[&str] = &[
    "InvalidCiphertextException",
    // Empty or longer than 6144 bytes.
    "ValidationException",
    // The blob names a key of another account.
    "AccessDeniedException",
];

pub struct Stack {
    rt: Runtime,
    client: KeyStoreClient<Channel>,
    pub key_id: String,
    stops: Vec<oneshot::Sender<()>>,
    servers: Vec<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

fn ctx() -> Option<RequestContext> {
    Some(RequestContext {
        request_id: "fuzz".into(),
        caller: Some(Caller {
            account_id: ACCOUNT.into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:root"),
            principal_id: ACCOUNT.into(),
            principal_type: "Root".into(),
            ..Default::default()
        }),
        region: "us-east-1".into(),
        source_ip: "127.0.0.1".into(),
        ..Default::default()
    })
}

/// A 127.0.0.1 listener whose accepted sockets get TCP_NODELAY (copied from the listening
/// socket on Linux), so responses are not held back by Nagle's algorithm.
fn bind() -> tokio::net::TcpListener {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_nodelay(true).expect("nodelay");
    socket.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    socket.listen(1024).expect("listen")
}

fn keystore_config(dir: &Path, authz: std::net::SocketAddr) -> kms_keystore::Config {
    kms_keystore::Config::dev(
        format!("sqlite://{}", dir.join("keystore.db").display()),
        dir.join("root.key"),
    )
    .with_authz_url(format!("http://{authz}"))
}

impl Stack {
    /// authz and the key store with fresh databases, and one symmetric key.
    pub fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let (client, stops, servers) = rt.block_on(async {
            let authz_listener = bind();
            let authz_addr = authz_listener.local_addr().unwrap();
            let listener = bind();
            let addr = listener.local_addr().unwrap();
            let (authz_stop, authz_stopped) = oneshot::channel::<()>();
            let authz_config = kms_authz::Config::new(format!(
                "sqlite://{}",
                dir.path().join("authz.db").display()
            ));
            let authz = tokio::spawn(async move {
                kms_authz::run(authz_listener, authz_config, async {
                    let _ = authz_stopped.await;
                })
                .await
                .expect("authz runs");
            });
            let (stop, stopped) = oneshot::channel::<()>();
            let config = keystore_config(dir.path(), authz_addr);
            let keystore = tokio::spawn(async move {
                kms_keystore::run(listener, config, async {
                    let _ = stopped.await;
                })
                .await
                .expect("keystore runs");
            });
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .expect("connect");
            (
                KeyStoreClient::new(channel),
                vec![stop, authz_stop],
                vec![keystore, authz],
            )
        });
        let key_id = rt.block_on(async {
            client
                .clone()
                .create_key(pb::CreateKeyRequest {
                    context: ctx(),
                    ..Default::default()
                })
                .await
                .expect("CreateKey")
                .into_inner()
                .key_metadata
                .expect("metadata")
                .key_id
        });
        Self {
            rt,
            client,
            key_id,
            stops,
            servers,
            _dir: dir,
        }
    }

    /// A genuine blob of the stack's key (empty encryption context).
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        self.rt.block_on(async {
            self.client
                .clone()
                .encrypt(pb::EncryptRequest {
                    key_id: self.key_id.clone(),
                    plaintext: plaintext.to_vec(),
                    context: ctx(),
                    ..Default::default()
                })
                .await
                .expect("Encrypt")
                .into_inner()
                .ciphertext_blob
        })
    }

    pub fn check(&self, blob: &[u8]) -> Result<Vec<u8>, String> {
        let result = self.rt.block_on(async {
            self.client
                .clone()
                .decrypt(pb::DecryptRequest {
                    ciphertext_blob: blob.to_vec(),
                    encryption_context: HashMap::new(),
                    context: ctx(),
                    ..Default::default()
                })
                .await
        });
        match result {
            Ok(r) => Ok(r.into_inner().plaintext),
            Err(status) => {
                let e = AwsError::from_status(&status);
                assert!(
                    DOCUMENTED.contains(&e.code.as_str()),
                    "undocumented Decrypt error {e:?} ({status:?})"
                );
                if e.code == "InvalidCiphertextException" {
                    assert!(e.message.is_empty(), "InvalidCiphertext says why: {e:?}");
                }
                Err(format!("{}: {}", e.code, e.message))
            }
        }
    }

    /// Whether both services are still serving (nothing panicked them down).
    pub fn alive(&self) -> bool {
        self.servers.iter().all(|s| !s.is_finished())
    }

    /// Stop both services, draining calls.
    pub fn stop(self) {
        for stop in self.stops {
            let _ = stop.send(());
        }
        self.rt.block_on(async {
            for s in self.servers {
                s.await.expect("service task");
            }
        });
    }
}
