#!/usr/bin/env python3
"""External anchors for `albert-bench --compare`, measured on this machine in the same run:
HF transformers `AlbertModel` in PyTorch eager (fp32), and ONNX Runtime (Python) on its
`torch.onnx.export` as is, after ONNX Runtime's transformer optimizer, and after its
pre-processed per-channel `quantize_dynamic` (int8). Same config (random weights: speed does not
depend on them), batch sizes, lengths and threads as the albert-bench cells; warm-up, then runs
for a time budget; median latency. Prints JSON (a list of rows) to stdout or --out.

    .venv/bin/pip install transformers==5.24.0
    .venv/bin/python tools/bench_anchors.py --config model/config.json --batch 1,8 --seq 128 --threads 2
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def timed(run, seconds, warmup=3, min_runs=5):
    for _ in range(warmup):
        run()
    latencies = []
    start = time.perf_counter()
    while len(latencies) < min_runs or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        run()
        latencies.append((time.perf_counter() - t) * 1e3)
    latencies.sort()
    return {"p50_ms": statistics.median(latencies), "mean_ms": sum(latencies) / len(latencies), "runs": len(latencies)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--seq", default="128")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import numpy as np
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AlbertConfig, AlbertModel

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    raw = json.loads(args.config.read_text())
    config = AlbertConfig(**{k: v for k, v in raw.items() if k not in ("model_type", "architectures", "sharing")})
    config._attn_implementation = "eager"
    model = AlbertModel(config).eval()
    batches = [int(b) for b in args.batch.split(",")]
    seqs = [int(s) for s in args.seq.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)  # quant_pre_process leaves scratch files in the working directory
        try:
            plain = Path(tmp) / "plain.onnx"
            ids = torch.randint(5, config.vocab_size, (1, 16))
            torch.onnx.export(
                model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(plain), dynamo=False, opset_version=17,
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["last_hidden_state", "pooler_output"],
                dynamic_axes={n: {0: "batch", 1: "sequence"} for n in ["input_ids", "attention_mask", "token_type_ids"]},
            )
            optimized = Path(tmp) / "optimized.onnx"
            optimize_model(str(plain), model_type="bert", num_heads=config.num_attention_heads,
                           hidden_size=config.hidden_size, use_gpu=False).save_model_to_file(str(optimized))
            pre = Path(tmp) / "pre.onnx"
            quant_pre_process(str(plain), str(pre), skip_symbolic_shape=True)
            int8 = Path(tmp) / "int8.onnx"
            quantize_dynamic(str(pre), str(int8), per_channel=True, weight_type=QuantType.QInt8)
        finally:
            os.chdir(cwd)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        sessions = {
            name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            for name, path in [("ort-python-fp32", plain), ("ort-python-optimizer-fp32", optimized),
                               ("ort-python-quantize-dynamic-int8", int8)]
        }
        for b in batches:
            for s in seqs:
                ids = torch.randint(5, config.vocab_size, (b, s))
                mask, types = torch.ones_like(ids), torch.zeros_like(ids)
                with torch.no_grad():
                    r = timed(lambda: model(input_ids=ids, attention_mask=mask, token_type_ids=types), args.seconds)
                rows.append({"anchor": "pytorch-eager-fp32", "batch": b, "seq": s, "threads": args.threads, **r})
                feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "token_type_ids": types.numpy()}
                for name, session in sessions.items():
                    r = timed(lambda: session.run(None, feed), args.seconds)
                    rows.append({"anchor": name, "batch": b, "seq": s, "threads": args.threads, **r})
                print(f"anchors at batch {b}, length {s} done", file=sys.stderr)
    text = json.dumps(rows, indent=1)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
