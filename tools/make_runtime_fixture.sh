#!/usr/bin/env bash
# Makes tests/fixtures/runtime/tiny-base: a tiny ALBERT (random weights) exported for the `base`
# task, with a tokenizer trained on tests/fixtures/corpus/small-sample.txt, for the runtime's doc example and quick tries.
# Made with the project's own tools; rerun after changing the export format.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p albert-train -p albert-verify
out=tests/fixtures/runtime/tiny-base
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
target/debug/albert-train tokenizer --corpus tests/fixtures/corpus/small-sample.txt --vocab-size 400 -o "$tmp/tokenizer.json"
target/debug/albert-train init --config tests/fixtures/hf/pretraining_default/config.json \
    --vocab-size 400 --head base --seed 1 --device cpu -o "$tmp/ckpt"
cp "$tmp/tokenizer.json" "$tmp/ckpt/"
rm -rf "$out"
target/debug/albert-export "$tmp/ckpt" -o "$out" --task base --verify
