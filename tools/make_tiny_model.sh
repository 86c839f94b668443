#!/usr/bin/env bash
# Trains the bundled model models/albert-tiny-en from the corpus (make corpus), with the project's
# own tools, exactly as its model card records. About 2 hours on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
run=runs/albert-tiny-en
mkdir -p "$run"
target/release/albert-train tokenizer --corpus data/corpus/train.txt --vocab-size 8000 -o "$run/tokenizer.json"
cp models/albert-tiny-en/config.json "$run/config.json"
target/release/albert-train pretrain --config "$run/config.json" --tokenizer "$run/tokenizer.json" \
    --train data/corpus/train.txt --eval data/corpus/heldout.txt --objective sop \
    --steps 4500 --batch-size 64 --max-seq-length 128 --max-predictions 20 \
    --optimizer adamw --lr 0.001 --warmup-steps 200 --eval-every 250 --eval-batches 20 \
    --save-every 250 --keep 2 --seed 0 --device cpu -o "$run/run"
last=$(ls -d "$run"/run/checkpoint-* | tail -n 1)
cp "$last"/config.json "$last"/model.safetensors "$last"/tokenizer.json models/albert-tiny-en/
cp "$run"/run/metrics.jsonl "$run"/run/curves.svg models/albert-tiny-en/
echo "models/albert-tiny-en updated from $last"
