#!/usr/bin/env bash
# Instructions per call, counted by valgrind's callgrind: repeatable where timings
# are not (a VM's runs minutes apart differ by a third; three runs of this script
# agreed within 0.2 %, the rest being spin loops and batch sizes that depend on
# timing). kms-stack runs under callgrind twice on copies of one prepared data dir
# (so that key and certificate generation, whose cost varies, happen once, outside
# both runs), serving N1 and then N2 calls from kms-bench; the difference of the
# two runs, divided by N2 - N1, is what one call costs, start-up and shutdown
# cancelling out. Work deferred and proportional to the calls (the CloudTrail
# log-file delivery at shutdown) is counted with them.
#
# Usage: scripts/instructions-per-call.sh [--op OP] [--size B] [--concurrency C]
#                                          [--calls N1,N2] [--top K] [--keep DIR]
#   defaults: encrypt, 64 B, concurrency 4, 1000,3000 calls, top 40 functions;
#   --keep copies the two callgrind files to DIR (for callgrind_annotate).
# Prints the total per call, then the functions costing most per call
# (inclusive: with what they call) among the project's and SQLite's.
# Needs valgrind (Debian: apt-get install valgrind). Loopback only (127.0.0.1).
# SHA-256 counts high: under valgrind aws-lc cannot use the CPU's SHA extensions.
set -euo pipefail
cd "$(dirname "$0")/.."

op=encrypt size=64 conc=4 calls=1000,3000 top=40 keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --op) op="${2:?}"; shift 2 ;;
    --size) size="${2:?}"; shift 2 ;;
    --concurrency) conc="${2:?}"; shift 2 ;;
    --calls) calls="${2:?}"; shift 2 ;;
    --top) top="${2:?}"; shift 2 ;;
    --keep) keep="${2:?}"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "instructions-per-call: unknown argument $1" >&2; exit 2 ;;
  esac
done
IFS=, read -r n1 n2 <<<"$calls"
for v in "$n1" "$n2" "$conc" "$size" "$top"; do
  [[ "$v" =~ ^[0-9]+$ ]] || { echo "instructions-per-call: $v is not a whole number" >&2; exit 2; }
done
[ "$n2" -gt "$n1" ] || { echo "instructions-per-call: --calls N1,N2 needs N2 > N1" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "instructions-per-call: valgrind is not installed" >&2; exit 1; }

echo "== building (release)" >&2
cargo build --release -p kms-stack -p kms-bench >&2
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/release"

work=$(mktemp -d "${TMPDIR:-/tmp}/instructions.XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts kms-stack on data dir $1 (optionally under callgrind writing $2); sets pid and port.
start() {
  local data=$1 out=${2:-}
  port=$(free_port)
  local cmd=("$bin/kms-stack" --data-dir "$data" --listen "127.0.0.1:$port"
    --tls-listen 127.0.0.1:0 --dns-port 0)
  if [ -n "$out" ]; then
    cmd=(valgrind --tool=callgrind "--callgrind-out-file=$out" --dump-instr=no "${cmd[@]}")
  fi
  env -u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_EXPORTER_OTLP_TRACES_ENDPOINT "${cmd[@]}" \
    >"$data.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 900); do
    grep -q "KMS endpoint" "$data.log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  echo "instructions-per-call: kms-stack did not start:" >&2
  tail -n 20 "$data.log" >&2
  exit 1
}

stop() {
  kill -INT "$pid"
  wait "$pid" || true
  pid=""
}

calls_of() {
  "$bin/kms-bench" --endpoint "http://127.0.0.1:$port" --op "$1" --size "$size" \
    --concurrency "$conc" --requests "$2" --duration 3600 --json |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["ok"], d["errors"])'
}

echo "== preparing a data dir (keys, certificates, first calls)" >&2
start "$work/template"
calls_of "$op" 10 >/dev/null
stop

for n in "$n1" "$n2"; do
  echo "== $n calls under callgrind" >&2
  cp -a "$work/template" "$work/run$n"
  start "$work/run$n" "$work/cg.$n"
  read -r ok errors <<<"$(calls_of "$op" "$n")"
  stop
  if [ "$errors" != 0 ] || [ "$ok" != "$n" ]; then
    echo "instructions-per-call: $ok calls answered, $errors errors (expected $n)" >&2
    exit 1
  fi
done

if [ -n "$keep" ]; then
  mkdir -p "$keep"
  cp "$work/cg.$n1" "$work/cg.$n2" "$keep/"
fi

python3 - "$work/cg.$n1" "$work/cg.$n2" "$((n2 - n1))" "$top" <<'PY'
import re, subprocess, sys

def load(path, inclusive):
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=" + ("yes" if inclusive else "no"),
         "--threshold=100", path], capture_output=True, text=True, check=True).stdout
    costs, total = {}, None
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(.*)$", line)
        if not m or "=>" in line:
            continue
        n, name = int(m.group(1).replace(",", "")), m.group(2)
        if name.startswith("PROGRAM TOTALS"):
            total = n
        costs[name] = costs.get(name, 0) + n
    return costs, total

a_path, b_path, calls, top = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
(a, a_total), (b, b_total) = load(a_path, True), load(b_path, True)
print(f"instructions per call: {(b_total - a_total) / calls:,.0f}")
own = re.compile(r"/services/|/crates/|/tools/|sqlite3_step")
per_call = {}
for name in set(a) | set(b):
    if own.search(name):
        # "file:function [binary]": the function, without the binary.
        short = re.sub(r"\s*\[[^\]]*\]\s*$", "", name.split(":", 1)[-1])
        per_call[short] = max(per_call.get(short, 0), (b.get(name, 0) - a.get(name, 0)) / calls)
print(f"{'per call':>10}  function (inclusive)")
for name, v in sorted(per_call.items(), key=lambda kv: -kv[1])[:top]:
    print(f"{v:>10,.0f}  {name[:150]}")
PY
