#!/usr/bin/env bash
# albert-serve's benchmark (docs/serving.md, "Benchmark"): albert-load against albert-serve with
# dynamic batching on and off, and against the Python baseline (tools/serve_baseline.py), on one
# export, every run beside the runtime's own offline throughput; then one chart.
#
#   bash tools/serve_bench.sh EXPORT_DIR [OUT_DIR] [SECONDS_PER_LEVEL]
#
# EXPORT_DIR: a base export (albert-export CHECKPOINT --task base -o DIR). Needs `make release`.
# Servers listen on 127.0.0.1 only; every level is bounded in time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXPORT="$(cd "$1" && pwd)"
OUT="${2:-$ROOT/bench-report/serve}"
SECONDS_PER_LEVEL="${3:-10}"
LEVELS="1,4,16,64"
BIN="$ROOT/target/release"
mkdir -p "$OUT"

BASELINE_VENV="$ROOT/.venv-baseline"
PINNED="$(sed -n 's/^PINNED = "\(.*\)"$/\1/p' "$ROOT/tools/serve_baseline.py")"
if [[ ! -x "$BASELINE_VENV/bin/uvicorn" ]]; then
    python3 -m venv "$BASELINE_VENV"
    # shellcheck disable=SC2086
    "$BASELINE_VENV/bin/pip" install --quiet --disable-pip-version-check $PINNED
fi

wait_for() {  # URL: until it answers (at most 60 s)
    for _ in $(seq 600); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    return 1
}

load() {  # LABEL PORT [albert-load args]
    local label="$1" port="$2"
    shift 2
    "$BIN/albert-load" run "http://127.0.0.1:$port" --concurrency "$LEVELS" --seconds "$SECONDS_PER_LEVEL" \
        --offline "$EXPORT" --label "$label" --out "$OUT" "$@" | tee "$OUT/$label.txt"
}

serve() {  # PORT [albert-serve args]: starts albert-serve in the background
    local port="$1"
    shift
    "$BIN/albert-serve" "bench=$EXPORT" --port "$port" --cache-dir "$OUT/cache" "$@" > /dev/null 2>&1 &
    SERVER=$!
    wait_for "http://127.0.0.1:$port/health"
}

serve 8091
load albert-serve 8091
kill "$SERVER"; wait "$SERVER" || true

serve 8092 --max-batch-requests 1
load albert-serve-no-batching 8092 --batch-size 1
kill "$SERVER"; wait "$SERVER" || true

"$BASELINE_VENV/bin/python" "$ROOT/tools/serve_baseline.py" "$EXPORT" --port 8093 > /dev/null 2>&1 &
SERVER=$!
wait_for "http://127.0.0.1:8093/embed" || true
load python-onnxruntime-uvicorn 8093
kill "$SERVER"; wait "$SERVER" || true

"$BIN/albert-load" chart "$OUT/albert-serve.json" "$OUT/albert-serve-no-batching.json" \
    "$OUT/python-onnxruntime-uvicorn.json" -o "$OUT/serve-bench.svg"
grep -m1 'model name' /proc/cpuinfo
grep -o -w -E 'avx2|avx512f|avx512_vnni|avx_vnni|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' '
echo
