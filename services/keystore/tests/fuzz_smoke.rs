//! Stable smoke run of the ciphertext blob fuzz target (`fuzz/fuzz_targets/ciphertext_blob.rs`)
//! against an in-process authz + key store: the committed seeds of
//! `fuzz/corpus/ciphertext_blob/` (all `bad-<Code>-*`: malformed or foreign blobs) are refused
//! with their code, genuine blobs made at run time decrypt, and a few thousand deterministic
//! mutations of both never decrypt, never get an undocumented error and never bring a service
//! down. Real fuzzing: `fuzz/README.md`.

use std::path::Path;

#[path = "../../../fuzz/harness/ciphertext_blob.rs"]
mod ciphertext_blob;
#[path = "../../../fuzz/harness/mutate.rs"]
mod mutate;

const ROUNDS: usize = 3000;

#[test]
fn ciphertext_blob_seeds_and_mutations() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let stack = ciphertext_blob::Stack::start();
    let mut seeds = mutate::corpus(root, "ciphertext_blob");
    let plaintexts: [&[u8]; 3] = [b"x", b"hello world", &[0u8; 300]];
    for (i, p) in plaintexts.iter().enumerate() {
        seeds.push((format!("ok-runtime-{i}"), stack.encrypt(p)));
    }
    let genuine: Vec<Vec<u8>> = seeds
        .iter()
        .filter(|(n, _)| n.starts_with("ok-"))
        .map(|(_, b)| b.clone())
        .collect();
    let key_id = stack.key_id.clone();
    let tokens: Vec<&[u8]> = vec![key_id.as_bytes(), &[1, 36], &[0, 0, 0, 1], &[0, 0, 0, 2]];
    let (ok, refused) = mutate::run(&seeds, &tokens, ROUNDS, 0x626c_6f62_0000_0001, |blob| {
        let r = stack.check(blob);
        // Only a genuine blob, unchanged, decrypts.
        if r.is_ok() {
            assert!(
                genuine.iter().any(|g| g == blob),
                "a mutated blob decrypted"
            );
        }
        r
    });
    eprintln!("ciphertext_blob: {ok} mutations decrypted (unchanged genuine), {refused} refused");
    assert_eq!(ok + refused, ROUNDS);
    assert!(refused > ROUNDS * 9 / 10);
    for (p, blob) in plaintexts.iter().zip(&genuine) {
        assert_eq!(
            stack.check(blob).unwrap(),
            *p,
            "genuine blobs still decrypt"
        );
    }
    assert!(stack.alive(), "a service stopped");
    stack.stop();
}
