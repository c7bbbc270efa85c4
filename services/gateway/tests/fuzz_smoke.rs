//! Stable smoke runs of the gateway's fuzz targets (`fuzz/fuzz_targets/`): the committed
//! seeds of `fuzz/corpus/<target>/` keep their promise (`ok-*` accepted, `bad-<Code>-*`
//! refused with that code), then a few thousand deterministic mutations of them must neither
//! panic nor break the harnesses' invariants. Real coverage-guided fuzzing needs nightly and
//! cargo-fuzz (`fuzz/README.md`).

use std::path::Path;

#[path = "../../../fuzz/harness/kms_json.rs"]
mod kms_json;
#[path = "../../../fuzz/harness/mutate.rs"]
mod mutate;
#[path = "../../../fuzz/harness/query.rs"]
mod query;
#[path = "../../../fuzz/harness/sigv4_header.rs"]
mod sigv4_header;

const ROUNDS: usize = 5000;

fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[track_caller]
fn report(target: &str, (ok, refused): (usize, usize)) {
    eprintln!("{target}: {ok} mutations accepted, {refused} refused");
    assert_eq!(ok + refused, ROUNDS);
    // The mutations reach both sides of the parser, not only its first check.
    assert!(
        ok > 0 && refused > 0,
        "{target}: {ok} accepted, {refused} refused"
    );
}

#[test]
fn kms_json_seeds_and_mutations() {
    let seeds = mutate::corpus(repo_root(), "kms_json");
    let tokens: &[&[u8]] = &[
        b"\"KeyId\":\"k\"",
        b"\"Plaintext\":\"aGk=\"",
        b"\"EncryptionContext\":{\"a\":\"b\"}",
        b"\"GrantTokens\":[]",
        b"null",
        b"true",
        b"1e400",
        b"-0",
        b"\"\\u0000\"",
        b"{}",
        b"[]",
        b"Encrypt\n",
        b"ReEncrypt\n",
    ];
    report(
        "kms_json",
        mutate::run(
            &seeds,
            tokens,
            ROUNDS,
            0x6b6d_735f_6a73_6f6e,
            kms_json::check,
        ),
    );
}

#[test]
fn sigv4_header_seeds_and_mutations() {
    let seeds = mutate::corpus(repo_root(), "sigv4_header");
    let tokens: &[&[u8]] = &[
        b"AWS4-HMAC-SHA256 ",
        b"Credential=",
        b"SignedHeaders=",
        b"Signature=",
        b"/aws4_request",
        b", ",
        b";",
        b"\nx-amz-date: 20150830T123600Z\n",
        b"\nURI /?a=%&b\n",
        b"\nURI //..%2F\n",
        b"\ndate: 20150830T123600Z\n",
    ];
    report(
        "sigv4_header",
        mutate::run(
            &seeds,
            tokens,
            ROUNDS,
            0x7369_6776_3468_6472,
            sigv4_header::check,
        ),
    );
}

#[test]
fn query_seeds_and_mutations() {
    let seeds = mutate::corpus(repo_root(), "query");
    let tokens: &[&[u8]] = &[
        b"&Filter.1.Name=",
        b"&Filter.4294967296.Value.1=x",
        b".Value.",
        b"&SubnetId.0=",
        b"%",
        b"%ZZ",
        b"%C3%28",
        b"+",
        b"&DryRun=TRUE",
        b"<![CDATA[",
        b"&#x0;",
    ];
    report(
        "query",
        mutate::run(&seeds, tokens, ROUNDS, 0x7175_6572_7971_7279, query::check),
    );
}
