#!/usr/bin/env bash
# The benchmark matrix: kms-stack (fresh data dir) against the in-run
# reference server (tools/kms-bench/examples/minimal_server.rs: SigV4 + JSON +
# AES-256-GCM in one process, nothing else), both on this machine, measured by
# kms-bench in the same run. For Encrypt (64 and 4096 bytes), Decrypt and
# GenerateDataKey at concurrency 1, 16 and 64 it reports throughput, p99
# latency and server CPU per request, and writes a Markdown table; then it fills
# the stack with BENCH_KEYS keys, restarts it and reports its startup time and
# resident memory at rest.
#
# Usage: scripts/bench-matrix.sh [--out FILE]   (default: <cargo target dir>/bench-matrix.md)
# Environment:
#   BENCH_SECONDS   seconds per cell (default 5)
#   BENCH_REPEAT    runs per cell, stack and reference alternating (default 1); with
#                   more than one the table shows medians and the range of the
#                   per-pair ratios (for VMs whose speed drifts between runs)
#   BENCH_KEYS      keys for the memory and startup measurement (default 10000)
#   STACK_LISTEN    kms-stack public endpoint (default 127.0.0.1:4566)
#   REF_LISTEN      reference server (default 127.0.0.1:4577)
# Loopback only: both addresses must be in 127.0.0.0/8. Client and servers
# share the machine's CPUs, so compare columns of one run, not runs of
# different machines.
set -euo pipefail
cd "$(dirname "$0")/.."

out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="${2:?--out needs a file}"; shift 2 ;;
    --out=*) out="${1#--out=}"; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-matrix: unknown argument $1" >&2; exit 2 ;;
  esac
done

seconds="${BENCH_SECONDS:-5}"
stack_listen="${STACK_LISTEN:-127.0.0.1:4566}"
ref_listen="${REF_LISTEN:-127.0.0.1:4577}"
for addr in "$stack_listen" "$ref_listen"; do
  if ! [[ "$addr" =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}:[0-9]{1,5}$ ]]; then
    echo "bench-matrix: $addr is not a 127.0.0.0/8 address:port (loopback only)" >&2
    exit 2
  fi
done
if ! [[ "${BENCH_KEYS:-10000}" =~ ^[1-9][0-9]*$ ]]; then
  echo "bench-matrix: BENCH_KEYS must be a positive whole number" >&2
  exit 2
fi
repeat="${BENCH_REPEAT:-1}"
if ! [[ "$repeat" =~ ^[1-9][0-9]*$ ]]; then
  echo "bench-matrix: BENCH_REPEAT must be a positive whole number" >&2
  exit 2
fi
if ! [[ "$seconds" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  echo "bench-matrix: BENCH_SECONDS must be a number of seconds" >&2
  exit 2
fi

echo "== building (release)" >&2
cargo build --release -p kms-stack -p kms-bench --bins --examples >&2
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/release"
out="${out:-$target_dir/bench-matrix.md}"

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-matrix.XXXXXX")
stack_pid=""
ref_pid=""
cleanup() {
  for pid in $stack_pid $ref_pid; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in $stack_pid $ref_pid; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Something already answering there would be measured instead of our servers.
for addr in "$stack_listen" "$ref_listen"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X POST "http://$addr/" || true)
  if [ -n "$code" ] && [ "$code" != 000 ]; then
    echo "bench-matrix: $addr is already in use; pick another with STACK_LISTEN / REF_LISTEN" >&2
    exit 1
  fi
done

# The stack's other listeners (TLS, DNS) take free ports so that they cannot
# collide with a stack already running here; no trace exporter.
env -u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_EXPORTER_OTLP_TRACES_ENDPOINT RUST_BACKTRACE=0 \
  "$bin/kms-stack" --data-dir "$work/data" --listen "$stack_listen" \
  --tls-listen "${stack_listen%:*}:0" --dns-port 0 \
  >"$work/stack.log" 2>&1 &
stack_pid=$!
"$bin/examples/minimal_server" --listen "$ref_listen" >"$work/ref.log" 2>&1 &
ref_pid=$!

# Up means: our process announced its endpoint (it has bound the address) and
# that address answers an HTTP request (any status; unsigned gets a KMS error).
wait_up() {
  local name=$1 pid=$2 addr=$3 log=$4 ready=$5
  for _ in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "bench-matrix: $name exited during startup:" >&2
      tail -n 30 "$log" >&2
      exit 1
    fi
    if grep -q "$ready" "$log"; then
      code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X POST "http://$addr/" || true)
      if [ -n "$code" ] && [ "$code" != 000 ]; then
        return 0
      fi
    fi
    sleep 0.2
  done
  echo "bench-matrix: $name did not answer on $addr within 60 s:" >&2
  tail -n 30 "$log" >&2
  exit 1
}
wait_up kms-stack "$stack_pid" "$stack_listen" "$work/stack.log" "KMS endpoint: http://$stack_listen"
wait_up minimal_server "$ref_pid" "$ref_listen" "$work/ref.log" "listening on http://$ref_listen"

# One run of kms-bench; prints its JSON report, or nothing if it failed.
run_bench() {
  local addr=$1 pid=$2 op=$3 size=$4 conc=$5 secs=$6
  "$bin/kms-bench" --endpoint "http://$addr" --op "$op" --size "$size" \
    --concurrency "$conc" --duration "$secs" --server-pid "$pid" --json \
    2>>"$work/bench.err" || true
}

alive() {
  for pair in "kms-stack:$stack_pid:$work/stack.log" "minimal_server:$ref_pid:$work/ref.log"; do
    IFS=: read -r name pid log <<<"$pair"
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "bench-matrix: $name died:" >&2
      tail -n 30 "$log" >&2
      exit 1
    fi
  done
}

# Warm up both (first key, first connections, caches) before measuring.
echo "== warm-up" >&2
run_bench "$stack_listen" "$stack_pid" encrypt 64 4 1 >/dev/null
run_bench "$ref_listen" "$ref_pid" encrypt 64 4 1 >/dev/null
alive

{
  echo "# kms-bench matrix"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "- machine: $(nproc) CPUs, $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (modified)')"
  echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every column)"
  if [ "$repeat" -gt 1 ]; then
    echo "- ${seconds} s per run, $repeat runs per cell (stack, reference, stack, ...): medians; ratio range: lowest and highest of the runs' pairs"
  else
    echo "- ${seconds} s per cell; client and both servers on the same machine"
  fi
  echo "- stack: kms-stack on http://$stack_listen (fresh data dir); reference: minimal_server on http://$ref_listen"
  echo "- CPU µs/req: server process CPU (user + system) / requests; ratio: stack req/s ÷ reference req/s"
  echo
} >"$work/header.md"
cat "$work/header.md"

rows="$work/rows.jsonl"
: >"$rows"
# op size: Encrypt at 64 and 4096 bytes, Decrypt of 64 bytes, a 32-byte data key.
cases=("encrypt 64" "decrypt 64" "generate-data-key 32" "encrypt 4096")
for case in "${cases[@]}"; do
  read -r op size <<<"$case"
  for conc in 1 16 64; do
    # kms-bench's --size applies to Encrypt and Decrypt; GenerateDataKey asks AES_256.
    bench_size=$size
    [ "$op" = generate-data-key ] && bench_size=64
    for run in $(seq 1 "$repeat"); do
      echo "== $op size $size concurrency $conc (run $run of $repeat)" >&2
      stack_json=$(run_bench "$stack_listen" "$stack_pid" "$op" "$bench_size" "$conc" "$seconds")
      ref_json=$(run_bench "$ref_listen" "$ref_pid" "$op" "$bench_size" "$conc" "$seconds")
      alive
      python3 -c '
import json, sys
op, size, conc, stack, ref = sys.argv[1:6]
def load(s):
    try:
        return json.loads(s)
    except ValueError:
        return None
print(json.dumps({"op": op, "size": int(size), "concurrency": int(conc),
                  "stack": load(stack), "ref": load(ref)}))
' "$op" "$size" "$conc" "$stack_json" "$ref_json" >>"$rows"
    done
  done
done

python3 - "$rows" "$repeat" >"$work/table.md" <<'PY'
import json, statistics, sys

def num(v, fmt):
    return "-" if v is None else format(v, fmt)

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

repeat = int(sys.argv[2])
cells = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    cells.setdefault((r["op"], r["size"], r["concurrency"]), []).append(r)

header = ("| op | size (B) | concurrency | stack req/s | stack p99 ms | stack CPU µs/req "
          "| errors (stack/ref) | reference req/s | reference CPU µs/req | stack/reference |")
rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
if repeat > 1:
    header += " ratio range |"
    rule += "---:|"
print(header)
print(rule)
for (op, size, conc), runs in cells.items():
    stack = [r["stack"] or {} for r in runs]
    ref = [r["ref"] or {} for r in runs]
    ratios = [s["req_per_s"] / f["req_per_s"] for s, f in zip(stack, ref)
              if s.get("req_per_s") is not None and f.get("req_per_s")]
    s_rps = median(s.get("req_per_s") for s in stack)
    f_rps = median(f.get("req_per_s") for f in ref)
    ratio = f"{statistics.median(ratios):.2f}" if ratios else "-"
    # A failed run counts as failed; otherwise the errors of every run, added up.
    err = lambda xs: "failed" if not all(xs) else str(sum(x["errors"] for x in xs))
    row = (f"| {op} | {size} | {conc} "
           f"| {num(s_rps, '.0f')} | {num(median(s.get('p99_ms') for s in stack), '.2f')} "
           f"| {num(median(s.get('cpu_us_per_req') for s in stack), '.0f')} "
           f"| {err([r['stack'] for r in runs])}/{err([r['ref'] for r in runs])} "
           f"| {num(f_rps, '.0f')} | {num(median(f.get('cpu_us_per_req') for f in ref), '.0f')} | {ratio} |")
    if repeat > 1:
        row += f" {min(ratios):.2f}-{max(ratios):.2f} |" if ratios else " - |"
    print(row)
PY
cat "$work/table.md"
if [ -s "$work/bench.err" ]; then
  echo >&2
  echo "kms-bench reported:" >&2
  sort "$work/bench.err" | uniq -c >&2
fi

# Memory and startup: the stack filled with BENCH_KEYS keys (default 10,000), then
# restarted on the same data dir: time from exec until it answers HTTP and until a
# signed call succeeds, and its resident memory at rest (the whole stack is this
# one process).
keys="${BENCH_KEYS:-10000}"
echo "== memory and startup with $keys keys" >&2
created=$("$bin/kms-bench" --endpoint "http://$stack_listen" --op create-key --requests "$keys" \
  --concurrency 16 --duration 3600 --json 2>>"$work/bench.err" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["ok"])' || echo 0)
kill "$stack_pid"
wait "$stack_pid" 2>/dev/null || true
now_ms() { date +%s%3N; }
started=$(now_ms)
env -u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_EXPORTER_OTLP_TRACES_ENDPOINT RUST_BACKTRACE=0 \
  "$bin/kms-stack" --data-dir "$work/data" --listen "$stack_listen" \
  --tls-listen "${stack_listen%:*}:0" --dns-port 0 \
  >>"$work/stack.log" 2>&1 &
stack_pid=$!
answered=""
for _ in $(seq 1 1000); do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 -X POST "http://$stack_listen/" || true)
  if [ -n "$code" ] && [ "$code" != 000 ]; then
    answered=$(now_ms)
    break
  fi
  alive
  sleep 0.01
done
# A signed CreateKey and Encrypt, the first calls after the restart.
signed_ok=$("$bin/kms-bench" --endpoint "http://$stack_listen" --op encrypt --requests 1 \
  --concurrency 1 --duration 30 --json 2>>"$work/bench.err" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["ok"])' || echo 0)
signed=$(now_ms)
sleep 2
rss_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$stack_pid/status")
alive
{
  echo
  echo "Memory and startup: $created keys created, then kms-stack restarted on the same data dir:"
  if [ -n "$answered" ]; then
    echo "answering HTTP $(( answered - started )) ms after exec; first signed calls (CreateKey + Encrypt, $signed_ok ok) done $(( signed - started )) ms after exec;"
  else
    echo "not answering HTTP within 10 s of exec;"
  fi
  echo "resident memory at rest $(( rss_kib / 1024 )) MiB ($rss_kib KiB)."
} >>"$work/table.md"
tail -n 4 "$work/table.md"

mkdir -p "$(dirname "$out")"
cat "$work/header.md" "$work/table.md" >"$out"
echo >&2
echo "written to $out" >&2
