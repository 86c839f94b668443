#!/usr/bin/env bash
# Trains the bundled model models/albert-tiny-en from the corpus (make corpus) with the project's
# own tools, exactly as its model card records, in two stages on one tokenizer:
#   1. from scratch: 10,000 AdamW steps × 32 sequences of ≤ 128 tokens, peak lr 1e-3
#      (warm-up 400, linear decay to 0);
#   2. continued pretraining from stage 1's last weights (--init-from: fresh optimizer and
#      schedule): 8,000 steps at peak lr 5e-4 (below stage 1's peak: the held-out MLM accuracy
#      climbed off its plateau while stage 1's lr was 5e-4 and falling), seed 1 so that it draws
#      other segment pairs and masks than stage 1's epochs did.
# About 1.7 steps/s on 2 otherwise idle CPU cores (1 h 40 min + 1 h 20 min); minutes on a GPU with
# DEVICE=cuda. An interrupted stage (Ctrl-C saves a checkpoint) resumes exactly where it stopped
# when the script is run again; a finished stage is not rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
run=runs/albert-tiny-en
device=${DEVICE:-cpu}
mkdir -p "$run"
[ -f "$run/tokenizer.json" ] ||
    target/release/albert-train tokenizer --corpus data/corpus/train.txt --vocab-size 8000 -o "$run/tokenizer.json"
cp models/albert-tiny-en/config.json "$run/config.json"

# pretrain_stage DIR STEPS [ARGS…]: one stage, resumed if DIR holds a checkpoint, skipped if done.
pretrain_stage() {
    local dir=$1 steps=$2
    shift 2
    local last
    last=$(ls -d "$dir"/checkpoint-* 2>/dev/null | tail -n 1 || true)
    if [ -n "$last" ] && [ "$(basename "$last")" = "$(printf 'checkpoint-%08d' "$steps")" ]; then
        echo "$dir: finished ($last)"
        return
    fi
    local resume=()
    [ -n "$last" ] && resume=(--resume)
    target/release/albert-train pretrain --config "$run/config.json" --tokenizer "$run/tokenizer.json" \
        --train data/corpus/train.txt --eval data/corpus/heldout.txt --objective sop \
        --steps "$steps" --batch-size 32 --max-seq-length 128 --max-predictions 20 \
        --optimizer adamw --eval-every 500 --eval-batches 20 --save-every 500 --keep 2 \
        --device "$device" "$@" "${resume[@]}" -o "$dir"
}

pretrain_stage "$run/stage1" 10000 --lr 0.001 --warmup-steps 400 --seed 0
stage1=$(ls -d "$run"/stage1/checkpoint-* | tail -n 1)
# --init-from applies only to a fresh start; a resumed stage 2 continues from its own checkpoint.
init=(--init-from "$stage1")
ls -d "$run"/stage2/checkpoint-* >/dev/null 2>&1 && init=()
pretrain_stage "$run/stage2" 8000 --lr 0.0005 --warmup-steps 200 --seed 1 "${init[@]}"

last=$(ls -d "$run"/stage2/checkpoint-* | tail -n 1)
cp "$last"/config.json "$last"/model.safetensors "$last"/tokenizer.json models/albert-tiny-en/
cp "$run"/stage1/metrics.jsonl models/albert-tiny-en/stage1-metrics.jsonl
cp "$run"/stage1/curves.svg models/albert-tiny-en/stage1-curves.svg
cp "$run"/stage2/metrics.jsonl "$run"/stage2/curves.svg models/albert-tiny-en/
echo "models/albert-tiny-en updated from $last; now run: .venv/bin/python tools/model_card.py"
