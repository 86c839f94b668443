#!/usr/bin/env python3
"""Writes models/albert-tiny-en/README.md (the model card) from what the run recorded: the config,
the parameter count (albert-train params), the held-out metrics of the last evaluation
(metrics.jsonl), the training curves (curves.svg), and fill-mask examples run through albert-run
on an ONNX export of the model (both engines). Run after tools/make_tiny_model.sh:

    .venv/bin/python tools/model_card.py
"""

import json
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "albert-tiny-en"
BIN = ROOT / "target" / "release"

EXAMPLES = [
    "The captain ordered the men to lower the [MASK].",
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a [MASK].",
    "In the beginning God created the heaven and the [MASK].",
    "The President shall from time to time give to the Congress information of the state of the [MASK].",
    "She could not help [MASK] at the thought of seeing him again.",
    "We must reduce the federal [MASK] and balance the budget.",
]


def run(cmd):
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True).stdout


def read_metrics(path):
    lines = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    train = [l for l in lines if l["split"] == "train"]
    evals = [l for l in lines if l["split"] == "eval"]
    return {"steps": train[-1]["step"], "peak_lr": max(l["lr"] for l in train), "eval": evals[-1], "train": train}


def main():
    config = json.loads((MODEL / "config.json").read_text())
    # Stage 1 (from scratch) and stage 2 (continued from stage 1's weights): tools/make_tiny_model.sh.
    stages = [read_metrics(MODEL / "stage1-metrics.jsonl"), read_metrics(MODEL / "metrics.jsonl")]
    last_eval = stages[-1]["eval"]
    train = stages[-1]["train"]
    tokens_per_second = sum(l["tokens_per_second"] for l in train[-50:]) / len(train[-50:])
    params = json.loads(run([BIN / "albert-train", "params", "--config", MODEL / "config.json", "--head", "pretraining", "--json"]))

    examples = []
    with tempfile.TemporaryDirectory() as tmp:
        run([BIN / "albert-export", MODEL, "-o", tmp, "--task", "masked-lm"])
        for text in EXAMPLES:
            results = {}
            for backend in ["ort", "tract"]:
                out = json.loads(run([BIN / "albert-run", tmp, "fill-mask", text, "--top-k", "5", "--json", "--backend", backend]))
                results[backend] = [(c["text"], c["score"]) for c in out["masks"][0]["candidates"]]
            same = [w for w, _ in results["ort"]] == [w for w, _ in results["tract"]]
            examples.append((text, results["ort"], same))

    recipe = (ROOT / "tools" / "make_tiny_model.sh").read_text()
    commands = "\n".join(l for l in recipe.splitlines() if not l.startswith("#!"))
    total_steps = sum(st["steps"] for st in stages)
    training = "; ".join(
        f"stage {i + 1}: {st['steps']:,} steps at peak lr {st['peak_lr']:g}"
        f"{' from scratch' if i == 0 else ' from stage 1 (fresh optimizer)'}, held-out MLM {st['eval']['mlm_accuracy']:.3f}"
        for i, st in enumerate(stages)
    )
    status = (
        f"Held out, it predicts the masked word exactly (top 1) {last_eval['mlm_accuracy']:.0%} of the "
        "time: fill-mask gives words of the right kind and topic (below), often not the exact one. "
        "It is small and CPU-trained (2 cores, about 3½ hours), meant for the project's demos and tests "
        "and as a starting point for fine-tuning, not as a general-purpose English model."
    )
    card = f"""# albert-tiny-en

A small ALBERT pretrained from scratch by this project's own trainer on its public-domain English
corpus (`make corpus`: State of the Union addresses, Moby-Dick, six Austen novels, the World
English and King James Bibles; 24.3 MB train, 0.63 MB held out by document). {status}

| | |
| --- | --- |
| architecture | ALBERT, all layers shared: E = {config['embedding_size']}, H = {config['hidden_size']}, L = {config['num_hidden_layers']}, {config['num_attention_heads']} heads, FFN {config['intermediate_size']}, `{config['hidden_act']}`, max {config['max_position_embeddings']} positions |
| vocabulary | {config['vocab_size']} SentencePiece-style unigram pieces (`albert-train tokenizer`), ALBERT's normalization and special tokens |
| parameters | {params['total']:,} (with the MLM and SOP heads) |
| objective | MLM with n-gram masking (n ≤ 3, 15%) + sentence-order prediction |
| training | {total_steps:,} AdamW steps × 32 sequences of ≤ 128 tokens ({training}), seeds 0 and 1, 2 CPU cores, about {tokens_per_second:,.0f} tokens/s |
| held-out (end) | MLM accuracy {last_eval['mlm_accuracy']:.3f} (loss {last_eval['mlm_loss']:.3f}), SOP accuracy {last_eval['sentence_accuracy']:.3f} (loss {last_eval['sentence_loss']:.3f}) |

The exact commands (`make tiny-model` runs them: `tools/make_tiny_model.sh`):

```sh
.venv/bin/python tools/make_corpus.py   # make corpus
# tools/make_tiny_model.sh:
{commands.strip()}
```

(The unigram trainer's choice among single-character pieces varies from run to run, so a rebuilt
tokenizer, and so the model, may differ slightly. The committed `tokenizer.json` was trained
before `albert-train tokenizer` gave `[MASK]` HF's `lstrip` (the mask takes the space before it);
that one flag was set by hand afterwards: it changes how the text "[MASK]" tokenizes, nothing the
model was trained on.) Training curves: `stage1-curves.svg` and
`curves.svg` (stage 2; data: `stage1-metrics.jsonl`, `metrics.jsonl`).

## Fill-mask

Top 5 from `albert-run <export> fill-mask "<text>" --top-k 5` on an export of this model
(`albert-export models/albert-tiny-en -o <export> --task masked-lm`); ONNX Runtime and tract give
the same ranking{'' if all(s for _, _, s in examples) else ' except where marked'}:

"""
    for text, candidates, same in examples:
        shown = ", ".join(f"{w} ({s:.2f})" for w, s in candidates)
        card += f"- {text}\n  → {shown}{'' if same else ' (tract ranks differently)'}\n"
    card += """
## Files

`config.json`, `model.safetensors` (HF layout and names: loads in HF transformers as
`AlbertForPreTraining`), `tokenizer.json` (loads in `AlbertTokenizerFast`), `metrics.jsonl` and
`curves.svg` (stage 2), `stage1-metrics.jsonl` and `stage1-curves.svg`. Written by `tools/model_card.py`.
"""
    (MODEL / "README.md").write_text(card)
    print(card)


if __name__ == "__main__":
    main()
