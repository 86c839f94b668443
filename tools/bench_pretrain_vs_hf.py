#!/usr/bin/env python3
"""Pretraining throughput: `albert-train pretrain` vs HF transformers `AlbertForPreTraining`
trained in PyTorch, same config, batch, sequence length and threads, on the same libtorch (the
project venv's torch 2.11.0), measured one after the other in one run (run by hand).

HF side: random full-length batches with 15% of positions labelled for MLM and an SOP label,
AdamW, the model's default attention; tokens/s over the steps after 3 warm-up steps.
Our side: `albert-train pretrain` on the corpus sample with --short-seq-prob 0 (full-length
sequences), LAMB; tokens/s as it reports it (real tokens over the whole loop, data included).

    .venv/bin/pip install transformers==5.24.0
    cargo build --release -p albert-train
    .venv/bin/python tools/bench_pretrain_vs_hf.py --steps 30 --batch-size 16 --seq-len 128 --threads 2
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def hf_tokens_per_second(config_dict, batch, seq, steps, threads):
    import torch
    from transformers import AlbertConfig, AlbertForPreTraining

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = AlbertConfig(**{k: v for k, v in config_dict.items() if k != "model_type"})
    model = AlbertForPreTraining(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    v = config.vocab_size
    times = []
    for step in range(steps + 3):
        ids = torch.randint(5, v, (batch, seq))
        labels = torch.full((batch, seq), -100)
        mask = torch.rand(batch, seq) < 0.15
        labels[mask] = ids[mask]
        types = torch.zeros(batch, seq, dtype=torch.long)
        types[:, seq // 2 :] = 1
        sop = torch.randint(0, 2, (batch,))
        start = time.perf_counter()
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=types, labels=labels, sentence_order_label=sop)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        if step >= 3:
            times.append(time.perf_counter() - start)
    return batch * seq * len(times) / sum(times)


def ours_tokens_per_second(config_path, tokenizer, corpus, batch, seq, steps, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with tempfile.TemporaryDirectory() as out:
        cmd = [
            str(ROOT / "target/release/albert-train"), "pretrain", "--config", str(config_path), "--tokenizer", str(tokenizer),
            "--train", str(corpus), "--steps", str(steps), "--batch-size", str(batch), "--max-seq-length", str(seq),
            "--short-seq-prob", "0", "--eval-every", "0", "--save-every", "0", "--device", "cpu", "-o", out,
        ]
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        match = re.search(r"([0-9.]+) tokens/s", result.stdout)
        if not match:
            sys.exit(f"no tokens/s in albert-train's output:\n{result.stdout}\n{result.stderr}")
        return float(match.group(1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=str(ROOT / "models/albert-tiny-en/config.json"))
    parser.add_argument("--tokenizer", default=str(ROOT / "models/albert-tiny-en/tokenizer.json"))
    parser.add_argument("--corpus", default=str(ROOT / "tests/fixtures/corpus/train-sample.txt"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    config = json.loads(Path(args.config).read_text())
    config["max_position_embeddings"] = max(config.get("max_position_embeddings", 512), args.seq_len)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
        config_path = f.name
    ours = ours_tokens_per_second(config_path, args.tokenizer, args.corpus, args.batch_size, args.seq_len, args.steps, args.threads)
    hf = hf_tokens_per_second(config, args.batch_size, args.seq_len, args.steps, args.threads)
    print(f"config {args.config}: batch {args.batch_size} x {args.seq_len} tokens, {args.threads} threads, {args.steps} steps")
    print(f"albert-train (tch, LAMB):           {ours:10.0f} tokens/s")
    print(f"HF transformers (PyTorch, AdamW):   {hf:10.0f} tokens/s")
    print(f"ratio ours / HF: {ours / hf:.2f}")


if __name__ == "__main__":
    main()
