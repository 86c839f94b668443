#!/usr/bin/env python3
"""How many attention probabilities of a checkpoint are subnormal floats (|x| < 1.2e-38), on the
first held-out sentences: the values that make CPU training slow without flush-to-zero (see
crates/albert-train/src/denormals.rs); and how sharp its attention is (the mean of each query
row's largest probability, and the share of rows above 0.99: near one-hot attention, where the
softmax passes almost no gradient). HF transformers' eager attention reads our checkpoints as
they are (HF layout; a sentence head HF's AlbertForPreTraining lacks is left out, the encoder is
what counts here).

  .venv/bin/python tools/count_subnormals.py runs/experiments/objective-nsp/checkpoint-00008054 ...

Needs transformers in the venv (as `albert-bench --compare` does).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from transformers import AlbertForPreTraining, PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parent.parent


def main(paths: list[str]) -> int:
    if not paths:
        raise SystemExit(__doc__)
    lines = [l.strip() for l in open(ROOT / "data/corpus/heldout.txt", encoding="utf-8") if l.strip()]
    texts = [" ".join(lines[i:i + 4]) for i in range(0, 128, 4)]  # 32 sequences of 4 sentences
    tiny = torch.finfo(torch.float32).tiny
    for path in paths:
        model = AlbertForPreTraining.from_pretrained(path, attn_implementation="eager").eval()
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=f"{path}/tokenizer.json", pad_token="<pad>")
        batch = tokenizer(texts, truncation=True, max_length=128, padding=True, return_tensors="pt")
        with torch.no_grad():
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                        token_type_ids=torch.zeros_like(batch["input_ids"]), output_attentions=True)
        probs = torch.stack(out.attentions).abs()  # layers, batch, heads, queries, keys
        subnormal = ((probs > 0) & (probs < tiny)).sum().item()
        # Query rows of real tokens only (padding rows attend like any other but mean nothing).
        largest = probs.max(-1).values  # layers, batch, heads, queries
        largest = largest[batch["attention_mask"][None, :, None, :].expand_as(largest).bool()]
        print(f"{path}: {subnormal:,} of {probs.numel():,} attention probabilities subnormal "
              f"({100 * subnormal / probs.numel():.2f} %); largest probability per query row: mean "
              f"{largest.mean().item():.3f}, {100 * (largest > 0.99).float().mean().item():.1f} % of rows above 0.99")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
