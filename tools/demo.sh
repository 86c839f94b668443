#!/usr/bin/env bash
# `make demo`: from a fresh clone, the whole toolchain on the bundled model in a few minutes:
# set-up → export (verified in ONNX Runtime and tract) → convert (folded, int8; drift on real
# text) → fill-mask on both engines and an embedding search → a short albert-bench matrix,
# ending with the report's path and the headline ratios.
#
#     make demo                      # models/albert-tiny-en
#     MODEL=path/to/checkpoint make demo
set -euo pipefail
cd "$(dirname "$0")/.."
model=${MODEL:-models/albert-tiny-en}
out=${DEMO_OUT:-demo-out}
if [ ! -f "$model/model.safetensors" ]; then
    echo "demo: $model/model.safetensors is missing: the bundled model's weights are not committed yet" >&2
    echo "      (train them with 'make tiny-model', or run MODEL=<checkpoint dir> make demo)" >&2
    exit 1
fi
tools/setup.sh
echo "== building (release)"
cargo build --release -q -p albert-verify -p albert-runtime -p albert-bench --bins
cargo build --release -q -p albert-runtime --example semantic_search
bin=target/release
rm -rf "$out"
mkdir -p "$out"
held_out=tests/fixtures/corpus/heldout-sample.txt

echo "== export: $model → $out/mlm (masked-LM) and $out/base (embeddings), verified in both engines"
$bin/albert-export "$model" -o "$out/mlm" --task masked-lm --verify | tail -n 1
$bin/albert-export "$model" -o "$out/base" --task base --verify | tail -n 1

echo "== convert: fold the shared layer, int8 weights; drift on held-out text"
$bin/albert-convert "$out/mlm" -o "$out/mlm-int8" --fold --quantize int8 --verify \
    --text "$held_out" --sentences 200 | grep -E "file size|nodes|sentences"

echo "== fill-mask, ONNX Runtime (int8, folded) and tract (fp32)"
for sentence in "the [MASK] of the united states." "she went to the [MASK] to buy bread." "the ship sailed across the [MASK]."; do
    $bin/albert-run "$out/mlm-int8" fill-mask "$sentence" --backend ort --top-k 3
    $bin/albert-run "$out/mlm" fill-mask "$sentence" --backend tract --top-k 3
done

echo "== embedding search (ONNX Runtime)"
$bin/examples/semantic_search "$out/base" "a sailor at sea"

echo "== albert-bench (short matrix on the providers present)"
$bin/albert-bench "$out/mlm" --variants fp32,folded,int8 --batch 1,8 --seq 128 --seconds 1 \
    --report "$out/bench" | tail -n 30

echo "== headline"
.venv/bin/python - "$out/bench/results.json" <<'PY'
import json, sys
rows = [r for r in json.load(open(sys.argv[1]))["rows"] if r["status"] == "ok"]
def p50(provider, variant, batch):
    return next((r["p50_ms"] for r in rows if (r["provider"], r["variant"], r["batch"]) == (provider, variant, batch)), None)
for batch in (1, 8):
    fp32, int8, tract = p50("ort-cpu", "fp32", batch), p50("ort-cpu", "int8", batch), p50("tract", "fp32", batch)
    if fp32 and int8:
        print(f"batch {batch}: ONNX Runtime int8 / fp32 = {int8 / fp32:.2f}; tract / ONNX Runtime fp32 = {tract / fp32:.2f}")
PY
echo "report: $out/bench/report.md"
