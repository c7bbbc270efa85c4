//! Ciphertext tampering, property-based (proptest) at the key store's gRPC contract with the
//! real authz service deciding: for random plaintexts and encryption contexts, every way of
//! altering a blob (bit flips anywhere, truncation, extension, another key's id, another
//! material id) or the encryption context presented with it never decrypts. The answer is
//! always the documented error (docs/CIPHERTEXT.md "Decryption": `InvalidCiphertextException`
//! with an empty message; `AccessDeniedException` for a key of another account;
//! `IncorrectKeyException` when the request names another key than the blob;
//! `ValidationException` for a blob truncated to nothing), never a
//! plaintext and never a panic (a panicking handler would surface as a status without an AWS
//! error code), while the unmodified blob decrypts before and after.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use kms_keystore::Config;
use kms_proto::common::v1::{Caller, RequestContext};
use kms_proto::error::AwsError;
use kms_proto::keystore::v1 as pb;
use pb::key_store_client::KeyStoreClient;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

const ACCOUNT: &str = "111122223333";
const OTHER_ACCOUNT: &str = "444455556666";
const REGION: &str = "us-east-1";
/// A well-formed key id that no key has.
const UNKNOWN_ID: &str = "0badc0de-0000-4000-8000-000000000000";
const CASES: u32 = 500;

struct App {
    client: KeyStoreClient<Channel>,
    stops: Vec<oneshot::Sender<()>>,
    servers: Vec<JoinHandle<anyhow::Result<()>>>,
    _dir: TempDir,
}

/// authz and the key store on pre-bound 127.0.0.1 ports, fresh databases in a temp dir.
async fn spawn_app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let authz_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authz_addr = authz_listener.local_addr().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (authz_stop, authz_stopped) = oneshot::channel::<()>();
    let authz = tokio::spawn(kms_authz::run(
        authz_listener,
        kms_authz::Config::new(format!(
            "sqlite://{}",
            dir.path().join("authz.db").display()
        )),
        async {
            let _ = authz_stopped.await;
        },
    ));
    let (stop, stopped) = oneshot::channel::<()>();
    let config = config(dir.path()).with_authz_url(format!("http://{authz_addr}"));
    let server = tokio::spawn(kms_keystore::run(listener, config, async {
        let _ = stopped.await;
    }));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    App {
        client: KeyStoreClient::new(channel),
        stops: vec![stop, authz_stop],
        servers: vec![server, authz],
        _dir: dir,
    }
}

fn config(dir: &Path) -> Config {
    Config::dev(
        format!("sqlite://{}", dir.join("keystore.db").display()),
        dir.join("root.key"),
    )
}

fn ctx(account: &str) -> Option<RequestContext> {
    Some(RequestContext {
        request_id: "tampering".into(),
        caller: Some(Caller {
            account_id: account.into(),
            arn: format!("arn:aws:iam::{account}:root"),
            principal_id: account.into(),
            principal_type: "Root".into(),
            ..Default::default()
        }),
        region: REGION.into(),
        source_ip: "127.0.0.1".into(),
        ..Default::default()
    })
}

fn arn(account: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{REGION}:{account}:key/{key_id}")
}

impl App {
    async fn create_key(&self, account: &str) -> String {
        self.client
            .clone()
            .create_key(pb::CreateKeyRequest {
                context: ctx(account),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .key_metadata
            .unwrap()
            .key_id
    }

    async fn encrypt(&self, key_id: &str, plaintext: &[u8], ec: &Ec) -> Vec<u8> {
        self.client
            .clone()
            .encrypt(pb::EncryptRequest {
                key_id: key_id.into(),
                plaintext: plaintext.to_vec(),
                encryption_context: ec.clone().into_iter().collect(),
                context: ctx(ACCOUNT),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .ciphertext_blob
    }

    async fn decrypt(
        &self,
        blob: &[u8],
        ec: &Ec,
        key_id: Option<&str>,
    ) -> Result<pb::DecryptResponse, AwsError> {
        self.client
            .clone()
            .decrypt(pb::DecryptRequest {
                ciphertext_blob: blob.to_vec(),
                encryption_context: ec.clone().into_iter().collect::<HashMap<_, _>>(),
                key_id: key_id.map(Into::into),
                context: ctx(ACCOUNT),
                ..Default::default()
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| AwsError::from_status(&s))
    }

    async fn stop(self) {
        for (stop, server) in self.stops.into_iter().zip(self.servers) {
            let _ = stop.send(());
            server.await.unwrap().unwrap();
        }
    }
}

type Ec = BTreeMap<String, String>;

/// The fixed keys of the run.
struct Keys {
    /// Two keys of the caller's account (same key id length, 36).
    mine: [String; 2],
    /// A key of another account.
    theirs: String,
}

/// One way of altering a (blob, encryption context) pair.
#[derive(Debug, Clone)]
enum Tamper {
    /// Flip these (byte index mod length, bit) pairs, at least one.
    FlipBits(Vec<(usize, u8)>),
    /// Keep only `n mod length` bytes (possibly none).
    Truncate(usize),
    /// Append bytes.
    Extend(Vec<u8>),
    /// Replace the blob's key id: 0 the caller's other key, 1 another account's key,
    /// 2 an id no key has.
    SwapKeyId(u8),
    /// Add this to the blob's material id (wrapping, never 0).
    MaterialId(u32),
    /// Present another encryption context.
    Context(ContextChange),
}

#[derive(Debug, Clone)]
enum ContextChange {
    Add(String, String),
    /// Drop the pair at index mod length (adds one when the context is empty).
    Remove(usize),
    /// Append to the value of the pair at index mod length.
    ChangeValue(usize, String),
    /// Append to the key of the pair at index mod length.
    ChangeKey(usize, String),
    /// Upper-case every value (case matters in KMS).
    Uppercase,
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9:/_.-]{1,12}",
        1 => "\\PC{1,8}",
    ]
}

fn context_change() -> impl Strategy<Value = ContextChange> {
    prop_oneof![
        (text(), text()).prop_map(|(k, v)| ContextChange::Add(k, v)),
        any::<usize>().prop_map(ContextChange::Remove),
        (any::<usize>(), text()).prop_map(|(i, s)| ContextChange::ChangeValue(i, s)),
        (any::<usize>(), text()).prop_map(|(i, s)| ContextChange::ChangeKey(i, s)),
        Just(ContextChange::Uppercase),
    ]
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        4 => vec((any::<usize>(), 0u8..8), 1..4).prop_map(Tamper::FlipBits),
        2 => any::<usize>().prop_map(Tamper::Truncate),
        1 => vec(any::<u8>(), 1..64).prop_map(Tamper::Extend),
        1 => (0u8..3).prop_map(Tamper::SwapKeyId),
        1 => (1u32..).prop_map(Tamper::MaterialId),
        2 => context_change().prop_map(Tamper::Context),
    ]
}

/// Offsets of the version-1 layout: version, id length, key id, material id.
fn key_id_range(blob: &[u8]) -> std::ops::Range<usize> {
    2..2 + usize::from(blob[1])
}

/// The altered blob and context (always different from the originals).
fn apply(t: &Tamper, original: &[u8], original_ec: &Ec, keys: &Keys, own: usize) -> (Vec<u8>, Ec) {
    let mut blob = original.to_vec();
    let mut ec = original_ec.clone();
    match t {
        Tamper::FlipBits(flips) => {
            let len = blob.len();
            for &(i, bit) in flips {
                blob[i % len] ^= 1 << bit;
            }
            // An even number of flips of one bit cancels out: force a difference.
            if blob == original {
                blob[len - 1] ^= 0x01;
            }
        }
        Tamper::Truncate(n) => blob.truncate(n % blob.len()),
        Tamper::Extend(extra) => blob.extend_from_slice(extra),
        Tamper::SwapKeyId(which) => {
            let id = match which {
                0 => keys.mine[1 - own].as_str(),
                1 => keys.theirs.as_str(),
                _ => UNKNOWN_ID,
            };
            let range = key_id_range(&blob);
            assert_eq!(range.len(), id.len(), "key ids are all 36 bytes");
            blob[range].copy_from_slice(id.as_bytes());
        }
        Tamper::MaterialId(delta) => {
            let at = key_id_range(&blob).end;
            let old = u32::from_be_bytes(blob[at..at + 4].try_into().unwrap());
            blob[at..at + 4].copy_from_slice(&old.wrapping_add(*delta).to_be_bytes());
        }
        Tamper::Context(change) => {
            let keys_in: Vec<String> = ec.keys().cloned().collect();
            let pick = |i: &usize| keys_in[i % keys_in.len()].clone();
            match change {
                ContextChange::Add(k, v) => {
                    let mut k = k.clone();
                    while ec.contains_key(&k) {
                        k.push('+');
                    }
                    ec.insert(k, v.clone());
                }
                ContextChange::Remove(i) if !keys_in.is_empty() => {
                    ec.remove(&pick(i));
                }
                ContextChange::ChangeValue(i, s) if !keys_in.is_empty() => {
                    ec.get_mut(&pick(i)).unwrap().push_str(s);
                }
                ContextChange::ChangeKey(i, s) if !keys_in.is_empty() => {
                    let k = pick(i);
                    let v = ec.remove(&k).unwrap();
                    let mut new = format!("{k}{s}");
                    while ec.contains_key(&new) {
                        new.push('+');
                    }
                    ec.insert(new, v);
                }
                ContextChange::Uppercase => {
                    for v in ec.values_mut() {
                        *v = v.to_uppercase();
                    }
                }
                _ => {}
            }
            if ec == *original_ec {
                ec.insert("tampered".into(), "yes".into());
            }
        }
    }
    (blob, ec)
}

/// The errors a tampered request may get (docs/CIPHERTEXT.md "Decryption").
fn allowed(t: &Tamper, named_key: bool) -> &'static [&'static str] {
    match t {
        // The blob names a key of another account: refused before any crypto.
        Tamper::SwapKeyId(1) if named_key => &["IncorrectKeyException"],
        Tamper::SwapKeyId(1) => &["AccessDeniedException"],
        // The blob names another key than the request.
        Tamper::SwapKeyId(0) if named_key => &["IncorrectKeyException"],
        // A flipped bit in the key id may name another (unknown) key, or not parse.
        Tamper::FlipBits(_) | Tamper::Truncate(_) | Tamper::Extend(_) if named_key => {
            &["InvalidCiphertextException", "IncorrectKeyException"]
        }
        Tamper::SwapKeyId(2) if named_key => {
            &["InvalidCiphertextException", "IncorrectKeyException"]
        }
        _ => &["InvalidCiphertextException"],
    }
}

#[derive(Debug, Clone)]
struct Case {
    plaintext: Vec<u8>,
    ec: Ec,
    own: usize,
    tamper: Tamper,
    /// Whether the Decrypt request names the key (KeyId) as well.
    named_key: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![
            4 => vec(any::<u8>(), 1..256),
            1 => vec(any::<u8>(), 1..=4096),
        ],
        btree_map(text(), text(), 0..4),
        0usize..2,
        tamper(),
        any::<bool>(),
    )
        .prop_map(|(plaintext, ec, own, tamper, named_key)| Case {
            plaintext,
            ec,
            own,
            tamper,
            named_key,
        })
}

#[test]
fn tampered_blobs_and_contexts_never_decrypt() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(spawn_app());
    let keys = rt.block_on(async {
        Keys {
            mine: [app.create_key(ACCOUNT).await, app.create_key(ACCOUNT).await],
            theirs: app.create_key(OTHER_ACCOUNT).await,
        }
    });
    let started = Instant::now();
    let counts = std::sync::Mutex::new(HashMap::<String, usize>::new());
    // PROPTEST_CASES (read by proptest's default config) overrides the case count.
    let mut config = ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = CASES;
    }
    let cases = config.cases as usize;
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(), |c| {
        rt.block_on(async {
            let key_id = &keys.mine[c.own];
            let key_arn = arn(ACCOUNT, key_id);
            let blob = app.encrypt(key_id, &c.plaintext, &c.ec).await;
            prop_assert_eq!(blob[0], 1, "format version");

            // The unmodified blob decrypts, with or without naming its key.
            for named in [None, Some(key_id.as_str())] {
                let out = app
                    .decrypt(&blob, &c.ec, named)
                    .await
                    .map_err(|e| TestCaseError::fail(format!("untouched blob: {e:?}")))?;
                prop_assert_eq!(&out.plaintext, &c.plaintext);
                prop_assert_eq!(&out.key_id, &key_arn);
            }

            let (bad_blob, bad_ec) = apply(&c.tamper, &blob, &c.ec, &keys, c.own);
            prop_assert!(
                bad_blob != blob || bad_ec != c.ec,
                "tampering changed nothing"
            );
            let named = c.named_key.then_some(key_id.as_str());
            match app.decrypt(&bad_blob, &bad_ec, named).await {
                Ok(out) => {
                    return Err(TestCaseError::fail(format!(
                        "tampered request decrypted ({} bytes)",
                        out.plaintext.len()
                    )));
                }
                Err(e) => {
                    // An empty blob breaks the model's length constraint (min 1) first.
                    let ok: &[&str] = if bad_blob.is_empty() {
                        &["ValidationException"]
                    } else {
                        allowed(&c.tamper, c.named_key)
                    };
                    prop_assert!(
                        ok.contains(&e.code.as_str()),
                        "{:?}: got {} ({}), allowed {:?}",
                        c.tamper,
                        e.code,
                        e.message,
                        ok
                    );
                    if e.code == "InvalidCiphertextException" {
                        // Opaque: nothing about which check failed.
                        prop_assert_eq!(e.message.as_str(), "");
                    }
                    *counts.lock().unwrap().entry(e.code.clone()).or_default() += 1;
                }
            }

            // Still decrypts afterwards (no state was disturbed).
            let out = app
                .decrypt(&blob, &c.ec, None)
                .await
                .map_err(|e| TestCaseError::fail(format!("untouched blob after: {e:?}")))?;
            prop_assert_eq!(&out.plaintext, &c.plaintext);
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let counts = counts.into_inner().unwrap();
    let total: usize = counts.values().sum();
    eprintln!(
        "{total} tampered requests refused in {:?}: {counts:?}",
        started.elapsed()
    );
    assert!(total >= cases, "every case ran ({total})");
    assert!(
        counts
            .get("InvalidCiphertextException")
            .copied()
            .unwrap_or(0)
            > cases / 2
    );
    // The servers are still up: nothing panicked them down.
    assert!(app.servers.iter().all(|s| !s.is_finished()));
    rt.block_on(app.stop());
}
