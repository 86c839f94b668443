#!/usr/bin/env bash
# Trains the bundled model models/albert-tiny-en from the corpus (make corpus), with the project's
# own tools, exactly as its model card records: a tokenizer, then 10,000 AdamW steps × 32
# sequences of ≤ 128 tokens (about 1 h 40 min on 2 otherwise idle CPU cores at ~1.7 steps/s; minutes on a GPU
# with DEVICE=cuda). The session that made the committed weights stopped it early (Ctrl-C saves a
# checkpoint): the card gives the step. INIT=<checkpoint dir> continues from a checkpoint's weights
# instead of from scratch (same tokenizer: it is copied from there).
set -euo pipefail
cd "$(dirname "$0")/.."
run=runs/albert-tiny-en
device=${DEVICE:-cpu}
mkdir -p "$run"
if [ -n "${INIT:-}" ]; then
    cp "$INIT/tokenizer.json" "$run/tokenizer.json"
    init=(--init-from "$INIT")
else
    target/release/albert-train tokenizer --corpus data/corpus/train.txt --vocab-size 8000 -o "$run/tokenizer.json"
    init=()
fi
cp models/albert-tiny-en/config.json "$run/config.json"
target/release/albert-train pretrain --config "$run/config.json" --tokenizer "$run/tokenizer.json" \
    --train data/corpus/train.txt --eval data/corpus/heldout.txt --objective sop \
    --steps 10000 --batch-size 32 --max-seq-length 128 --max-predictions 20 \
    --optimizer adamw --lr 0.001 --warmup-steps 400 --eval-every 500 --eval-batches 20 \
    --save-every 500 --keep 2 --seed 0 --device "$device" "${init[@]}" -o "$run/run"
last=$(ls -d "$run"/run/checkpoint-* | tail -n 1)
cp "$last"/config.json "$last"/model.safetensors "$last"/tokenizer.json models/albert-tiny-en/
cp "$run"/run/metrics.jsonl "$run"/run/curves.svg models/albert-tiny-en/
echo "models/albert-tiny-en updated from $last; now run: .venv/bin/python tools/model_card.py"
