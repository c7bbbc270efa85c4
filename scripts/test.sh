#!/usr/bin/env bash
# The project's test command (README): formatting, lints, every Rust test
# (unit, per-service integration, AWS SDK for Rust end to end), then the
# docker-compose smoke test (image built here, no registry), and the end-to-end
# suite driven by boto3 and the aws CLI against the kms-stack binary.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace --all-targets
echo "== docker-compose: five containers, smoke test through the published endpoint"
scripts/compose-smoke.sh debug
echo "== boto3 / aws CLI end to end"
# Same selection as `cargo test` above: reuses its build (no second compile).
cargo build --workspace --all-targets
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export KMS_STACK_BIN="$target_dir/debug/kms-stack"
python3 -m pytest tests/e2e_py -q
