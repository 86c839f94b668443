#!/usr/bin/env python3
"""What flushing subnormal floats to zero is worth in ONNX Runtime's CPU provider, measured side by
side: one session with `session.set_denormal_as_zero` (what `albert-runtime` sets by default,
`OrtOptions::flush_denormals`) and one without, runs interleaved so that drift of a shared machine
falls on both alike; median and p90 per export, the ratio, and the largest output difference.

  .venv/bin/python tools/bench_denormals.py EXPORT_DIR... [--threads 2] [--runs 15]

EXPORT_DIR: an `albert-export` output (model.onnx, tokenizer.json). Inputs: 32 sequences of four
held-out sentences, padded to 128 tokens. ONNX Runtime flushes only in its worker threads, so at
one thread (no workers) the two sessions should not differ: a check of the measurement itself.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parent.parent


def inputs(export: Path, names: set[str]) -> dict[str, np.ndarray]:
    lines = [l.strip() for l in open(ROOT / "data/corpus/heldout.txt", encoding="utf-8") if l.strip()]
    texts = [" ".join(lines[i:i + 4]) for i in range(0, 128, 4)]
    tokenizer = Tokenizer.from_file(str(export / "tokenizer.json"))
    tokenizer.enable_truncation(128)
    tokenizer.enable_padding(pad_id=0, length=128)
    encodings = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
             "token_type_ids": np.zeros_like(ids)}
    return {k: v for k, v in feeds.items() if k in names}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("exports", nargs="+", type=Path)
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    ap.add_argument("--runs", type=int, default=15, help="timed runs per session, after 3 warm-up runs")
    args = ap.parse_args()
    for export in args.exports:
        if not (export / "model.onnx").exists():
            raise SystemExit(f"bench_denormals: {export}: no model.onnx (expected an albert-export directory)")
        sessions = {}
        for flush in (True, False):
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            if flush:
                options.add_session_config_entry("session.set_denormal_as_zero", "1")
            session = ort.InferenceSession(str(export / "model.onnx"), options, providers=["CPUExecutionProvider"])
            feeds = inputs(export, {i.name for i in session.get_inputs()})
            for _ in range(3):
                session.run(None, feeds)
            sessions[flush] = (session, feeds)
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.runs):
            for flush, (session, feeds) in sessions.items():
                start = time.perf_counter()
                session.run(None, feeds)
                times[flush].append(time.perf_counter() - start)
        outputs = {flush: s.run(None, f)[0] for flush, (s, f) in sessions.items()}
        median = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
        p90 = {k: 1e3 * float(np.percentile(v, 90)) for k, v in times.items()}
        print(f"{export} ({args.threads} threads): flush {median[True]:.1f} ms (p90 {p90[True]:.1f}), "
              f"keep {median[False]:.1f} ms (p90 {p90[False]:.1f}); keep/flush {median[False] / median[True]:.2f}; "
              f"max |output difference| {np.abs(outputs[True] - outputs[False]).max():.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
