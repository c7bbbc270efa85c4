//! libFuzzer target: see `../harness/sigv4_header.rs` for the input format and invariants.
#![no_main]

#[path = "../harness/sigv4_header.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Refusals are expected; panics (including broken invariants) are the findings.
    let _ = harness::check(data);
});
