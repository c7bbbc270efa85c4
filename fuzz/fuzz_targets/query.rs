//! libFuzzer target: see `../harness/query.rs` for the input format and invariants.
#![no_main]

#[path = "../harness/query.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Refusals are expected; panics (including broken invariants) are the findings.
    let _ = harness::check(data);
});
