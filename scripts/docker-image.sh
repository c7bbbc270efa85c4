#!/usr/bin/env bash
# Build the kms-vpce:latest image without pulling anything: binaries built by
# cargo on this machine plus the shared libraries they need, on `FROM scratch`.
# Usage: scripts/docker-image.sh [debug|release]   (default: release)
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-release}"
# Debug: the same selection as the test command's `cargo test --workspace
# --all-targets`, so the image reuses that build instead of compiling the
# workspace a second time with other features (disk and minutes on CI).
if [ "$profile" = release ]; then
  build=(--release -p kms-gateway -p kms-registry -p kms-authz -p kms-keystore -p kms-audit -p kms-stack -p kms-demo -p kms-traces)
else
  build=(--workspace --all-targets)
fi
bins=(kms-gateway kms-registry kms-authz kms-keystore kms-audit kms-health kms-stack kms-tls-init kms-demo kms-traces)
cargo build "${build[@]}"
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/data" "$root/tmp" "$root/etc"
for b in "${bins[@]}"; do
  install -m 0755 "$target_dir/$profile/$b" "$root/usr/local/bin/$b"
  strip --strip-debug "$root/usr/local/bin/$b"
  # Every shared library the binary links, at the same path, plus the loader.
  ldd "$target_dir/$profile/$b" | grep -oE '/[^ ]+' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
chmod 1777 "$root/tmp"
echo 'hosts: files dns' > "$root/etc/nsswitch.conf"
cp docker/Dockerfile.local "$ctx/Dockerfile"
docker build -q -t kms-vpce:latest "$ctx"
