#!/usr/bin/env bash
# The GPU checks, as one prepared script for a lent GPU machine (no registries there, device time
# counted): builds nothing, uses target/release/albert-train built here (carry `target/release`
# is too big: carry only the binary, e.g. `cp target/release/albert-train gpu-bin/` and
# carry `gpu-bin`), and the machine's own PyTorch 2.11 libraries for libtorch.
#
#   BIN=gpu-bin DEVICE=cuda tools/gpu_checks.sh     # on the GPU machine
#   BIN=target/release DEVICE=cpu STEPS=3 TINY_BATCH=4 BASE_BATCH=2 tools/gpu_checks.sh  # dry run here
#
# Per run: pretraining tokens/s (the trainer's own figure, mean over the last half of the steps)
# and peak GPU memory (nvidia-smi, sampled every 0.2 s), for the bundled model's config and for
# ALBERT-base shapes, in float32 and with --bf16. Prints a Markdown table; the runs' metrics stay
# under $OUT (or /tmp/gpu-checks). ONNX Runtime's CUDA/TensorRT providers are not checked: the
# onnxruntime-gpu libraries (~300 MB) cannot be carried to that machine (docs/gpu.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-target/release}
device=${DEVICE:-cuda}
steps=${STEPS:-60}
tiny_batch=${TINY_BATCH:-128}
base_batch=${BASE_BATCH:-64}
out=${OUT:-/tmp/gpu-checks}
mkdir -p "$out"

# libtorch: the machine's PyTorch (the binary's rpath points at this checkout's .venv, absent there).
if torch_lib=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null); then
    export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

rows=()
run() { # run NAME ARGS…: one short pretraining run, its tokens/s and peak GPU memory
    local name=$1
    shift
    local dir="$out/$name" sampler=""
    rm -rf "$dir"
    if command -v nvidia-smi >/dev/null; then
        (while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; sleep 0.2; done) >"$dir.mem" &
        sampler=$!
    fi
    local status=ok
    "$bin/albert-train" pretrain --tokenizer models/albert-tiny-en/tokenizer.json --vocab-size 8000 \
        --train tests/fixtures/corpus/train-sample.txt --objective sop --steps "$steps" \
        --max-seq-length 128 --optimizer lamb --lr 1e-3 --warmup-steps 5 --eval-every 0 \
        --save-every 0 --device "$device" "$@" -o "$dir" >"$dir.log" 2>&1 || status="failed (see $dir.log)"
    [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
    local tokens="-" memory="-"
    if [ -f "$dir/metrics.jsonl" ]; then
        tokens=$(python3 - "$dir/metrics.jsonl" <<'PY'
import json, sys
rates = [json.loads(l)["tokens_per_second"] for l in open(sys.argv[1]) if '"train"' in l]
half = rates[len(rates) // 2:] or rates
print(f"{sum(half) / len(half):,.0f}" if half else "-")
PY
)
    fi
    [ -s "$dir.mem" ] && memory="$(sort -n "$dir.mem" | tail -n 1) MiB"
    rows+=("| $name | $* | $status | $tokens | $memory |")
}

run tiny-fp32 --config models/albert-tiny-en/config.json --batch-size "$tiny_batch"
run tiny-bf16 --config models/albert-tiny-en/config.json --batch-size "$tiny_batch" --bf16
run base-fp32 --preset base --batch-size "$base_batch"
run base-bf16 --preset base --batch-size "$base_batch" --bf16

echo
echo "device $device, $steps steps per run"
echo
echo "| run | flags | status | tokens/s | peak GPU memory |"
echo "| --- | --- | --- | ---: | ---: |"
printf '%s\n' "${rows[@]}"
