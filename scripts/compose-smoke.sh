#!/usr/bin/env bash
# docker-compose for real: build the image here (no registry), start the five
# containers, wait until every healthcheck passes, drive the published
# endpoint with boto3, run a client container inside each of the two VPC
# networks (private DNS, endpoint-specific DNS), and tear everything down
# (volumes included). Internal gRPC is checked to be mutual TLS only.
# Usage: scripts/compose-smoke.sh [debug|release]
set -euo pipefail
cd "$(dirname "$0")/.."
compose=(docker-compose)
docker compose version >/dev/null 2>&1 && compose=(docker compose)
export KMS_PUBLIC_PORT="${KMS_PUBLIC_PORT:-14566}"
export KMS_TRACES_PORT="${KMS_TRACES_PORT:-26686}"
export KMS_TLS_PORT="${KMS_TLS_PORT:-14443}"
project=kmsvpce-smoke
scripts/docker-image.sh "${1:-release}"
cleanup() { "${compose[@]}" -p "$project" --profile scale --profile demo down -v --remove-orphans >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup
"${compose[@]}" -p "$project" up -d --no-build
for i in $(seq 1 60); do
  unhealthy=0
  for c in $("${compose[@]}" -p "$project" ps -q); do
    # One-shot containers (tls-init) have no healthcheck: they must have exited 0.
    s=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}:{{.State.ExitCode}}{{end}}' "$c")
    [ "$s" = healthy ] || [ "$s" = exited:0 ] || unhealthy=1
  done
  [ "$unhealthy" = 0 ] && break
  sleep 1
done
if [ "$unhealthy" != 0 ]; then
  "${compose[@]}" -p "$project" ps
  "${compose[@]}" -p "$project" logs --tail 50
  echo "containers did not become healthy"; exit 1
fi
COMPOSE="${compose[*]}" COMPOSE_PROJECT="$project" \
  KMS_ENDPOINT="http://127.0.0.1:$KMS_PUBLIC_PORT" python3 tests/compose/smoke.py
# Internal gRPC is mutual TLS: from the backend network, a plaintext probe of
# the keystore gets nothing, and the same probe with the internal CA's `ops`
# certificate (the control) gets SERVING.
probe=(docker run --rm --network "${project}_backend" kms-vpce:latest kms-health grpc keystore:50053)
if "${probe[@]}"; then
  echo "plaintext gRPC reached the keystore"; exit 1
fi
docker run --rm --network "${project}_backend" -v "${project}_internal-gateway:/internal-tls:ro" \
  -e KMS_INTERNAL_TLS_DIR=/internal-tls kms-vpce:latest kms-health grpc keystore:50053 keystore \
  || { echo "the ops role could not probe the keystore over mutual TLS"; exit 1; }
echo "compose smoke: internal gRPC refuses plaintext, serves mutual TLS"
