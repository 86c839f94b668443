#!/usr/bin/env python3
"""External anchors for `albert-bench --compare`, measured on this machine in the same run:
HF transformers in PyTorch eager (fp32), and ONNX Runtime (Python) on its `torch.onnx.export` as
is, after ONNX Runtime's transformer optimizer, and after its pre-processed per-channel
`quantize_dynamic` (int8). The HF class is the one of the measured export's task (`--task`:
`AlbertModel` for base, `AlbertForPreTraining` for pretraining, ...), so that both sides compute
the same heads: on a small model the vocabulary projection of an MLM head is a third of the work.

`--ours NAME=PATH` also times our exported graphs in this process with the same ONNX Runtime
session options, so that our graph can be compared with torch's export apart from our runtime.
All measurements of one shape are interleaved (round-robin slices, the first run of each slice
dropped), so that the machine's drift over the run (other load, clocks) reaches them alike.
Same config (random weights: speed does not depend on them), batch sizes, lengths and threads as
the albert-bench cells; median latency. Prints JSON (a list of rows) to stdout or --out.

    .venv/bin/pip install transformers==5.24.0
    .venv/bin/python tools/bench_anchors.py --config model/config.json --task base --batch 1,8 --seq 128 --threads 2
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Our export tasks (albert.task in the model's metadata) → the HF class and its output names.
TASKS = {
    "base": ("AlbertModel", ["last_hidden_state", "pooler_output"]),
    "masked-lm": ("AlbertForMaskedLM", ["logits"]),
    "pretraining": ("AlbertForPreTraining", ["prediction_logits", "sop_logits"]),
    "sequence-classification": ("AlbertForSequenceClassification", ["logits"]),
    "token-classification": ("AlbertForTokenClassification", ["logits"]),
    "question-answering": ("AlbertForQuestionAnswering", ["start_logits", "end_logits"]),
}


def timed_interleaved(runs, seconds, warmup=3, min_runs=5, slice_seconds=0.25):
    """Median latency (ms) of each callable, measured round-robin in slices of `slice_seconds`
    until each has had `seconds` and `min_runs`; the first run of every slice is dropped (other
    sessions' threads may still be spinning then)."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    latencies = {name: [] for name in runs}
    spent = {name: 0.0 for name in runs}
    while any(spent[n] < seconds or len(latencies[n]) < min_runs for n in runs):
        for name, run in runs.items():
            run()
            start = time.perf_counter()
            while True:
                t = time.perf_counter()
                run()
                latencies[name].append((time.perf_counter() - t) * 1e3)
                if time.perf_counter() - start >= slice_seconds:
                    break
            spent[name] += time.perf_counter() - start
    return {name: {"p50_ms": statistics.median(v), "mean_ms": sum(v) / len(v), "runs": len(v)}
            for name, v in latencies.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--task", choices=sorted(TASKS), default="base", help="the export's task (albert.task)")
    parser.add_argument("--ours", action="append", default=[], metavar="NAME=PATH",
                        help="also time this ONNX model of ours (reported as ort-python-ours-NAME)")
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--seq", default="128")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    ours = []
    for item in args.ours:
        name, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            parser.error(f"--ours {item!r}: expected NAME=PATH of an ONNX model")
        ours.append((name, Path(path)))

    import numpy as np
    import onnxruntime as ort
    import torch
    import transformers
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from onnxruntime.transformers.optimizer import optimize_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    raw = json.loads(args.config.read_text())
    config = transformers.AlbertConfig(
        **{k: v for k, v in raw.items() if k not in ("model_type", "architectures", "sharing")})
    config._attn_implementation = "eager"
    class_name, output_names = TASKS[args.task]
    model = getattr(transformers, class_name)(config).eval()
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
                input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=output_names,
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
            + [(f"ort-python-ours-{name}", path) for name, path in ours]
        }
        for b in batches:
            for s in seqs:
                ids = torch.randint(5, config.vocab_size, (b, s))
                mask, types = torch.ones_like(ids), torch.zeros_like(ids)
                feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "token_type_ids": types.numpy()}

                def eager():
                    with torch.no_grad():
                        model(input_ids=ids, attention_mask=mask, token_type_ids=types)

                runs = {"pytorch-eager-fp32": eager}
                for name, session in sessions.items():
                    runs[name] = lambda session=session: session.run(None, feed)
                for name, r in timed_interleaved(runs, args.seconds).items():
                    rows.append({"anchor": name, "batch": b, "seq": s, "threads": args.threads, **r})
                print(f"anchors at batch {b}, length {s} done", file=sys.stderr)
    text = json.dumps(rows, indent=1)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
