//! Stable smoke run of the policy fuzz target (`fuzz/fuzz_targets/policy.rs`): the committed
//! seeds of `fuzz/corpus/policy/` keep their promise (`ok-*` parse as key policies,
//! `bad-<Code>-*` are refused with that code), then a few thousand deterministic mutations
//! must neither panic nor break the harness's invariants (kind-specific parses agree with the
//! generic one, evaluation is deterministic). Real fuzzing: `fuzz/README.md`.

use std::path::Path;

#[path = "../../../fuzz/harness/mutate.rs"]
mod mutate;
#[path = "../../../fuzz/harness/policy.rs"]
mod policy;

const ROUNDS: usize = 5000;

#[test]
fn policy_seeds_and_mutations() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let seeds = mutate::corpus(root, "policy");
    let tokens: &[&[u8]] = &[
        b"\"Condition\":{\"StringLike\":{\"aws:PrincipalTag/team\":\"*\"}}",
        b"\"ForAllValues:StringEquals\"",
        b"\"IpAddress\"",
        b"\"DateGreaterThan\"",
        b"\"NumericEquals\"",
        b"\"ArnLike\"",
        b"\"BoolIfExists\"",
        b"${aws:username}",
        b"${*}",
        b"${",
        b"\"NotPrincipal\":\"*\"",
        b"\"Principal\":{\"AWS\":[]}",
        b"\"::/0\"",
        b"\"999.1.1.1/33\"",
        b"\"*?*?*\"",
        b"\"Version\":\"2008-10-17\"",
    ];
    let (ok, refused) = mutate::run(&seeds, tokens, ROUNDS, 0x706f_6c69_6379_0001, policy::check);
    eprintln!("policy: {ok} mutations accepted, {refused} refused");
    assert_eq!(ok + refused, ROUNDS);
    assert!(ok > 0 && refused > 0, "{ok} accepted, {refused} refused");
}
