//! libFuzzer target: see `../harness/ciphertext_blob.rs`. One in-process authz + key store
//! (127.0.0.1, temporary databases) serves every input.
#![no_main]

use std::sync::OnceLock;

#[path = "../harness/ciphertext_blob.rs"]
mod harness;

fn stack() -> &'static harness::Stack {
    static STACK: OnceLock<harness::Stack> = OnceLock::new();
    STACK.get_or_init(harness::Stack::start)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // No input the fuzzer can make is a genuine blob of the stack's fresh key: none may
    // decrypt, and every refusal must be a documented one (checked in the harness).
    let stack = stack();
    assert!(stack.check(data).is_err(), "fuzzer input decrypted");
    assert!(stack.alive(), "a service stopped");
});
