#!/usr/bin/env python3
"""Checks that checkpoints written by `albert-train` load in HF transformers (run by hand, not in CI).

For each sharing HF can express (all, none) and each head with an HF class, it writes a random
checkpoint with `albert-train init`, loads it with the matching `AlbertFor*` class, and requires:
no missing, unexpected or mis-shaped keys; every loaded tensor equal to the file's; the MLM decoder
tied to the word embeddings; and HF's own `save_pretrained` of the loaded model writing the same
names and values back. Together with the parity fixtures (HF checkpoint -> our model, outputs equal
to 1e-5), this closes the loop in both directions.

Usage (from the repository root, after `make build`):
    .venv/bin/pip install transformers==5.24.0
    .venv/bin/python tools/check_hf_load.py
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import (
    AlbertForMaskedLM,
    AlbertForPreTraining,
    AlbertForQuestionAnswering,
    AlbertForSequenceClassification,
    AlbertForTokenClassification,
    AlbertModel,
)

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "debug" / "albert-train"
CONFIG = ROOT / "tests" / "fixtures" / "hf" / "pretraining_uneven_groups_inner" / "config.json"

HEADS = {
    "base": AlbertModel,
    "masked-lm": AlbertForMaskedLM,
    "pretraining": AlbertForPreTraining,
    "sequence-classification": AlbertForSequenceClassification,
    "token-classification": AlbertForTokenClassification,
    "question-answering": AlbertForQuestionAnswering,
}


def check(sharing, head, cls, workdir):
    out = workdir / f"{sharing}-{head}"
    subprocess.run(
        [str(BINARY), "init", "--config", str(CONFIG), "--sharing", sharing, "--head", head,
         "--device", "cpu", "--seed", "3", "-o", str(out)],
        check=True, capture_output=True,
    )
    model, info = cls.from_pretrained(out, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        raise AssertionError(f"{sharing}/{head}: {problems}")
    ours = load_file(out / "model.safetensors")
    state = model.state_dict()
    for name, tensor in ours.items():
        key = name[len("albert."):] if cls is AlbertModel else name
        if not torch.equal(state[key], tensor):
            raise AssertionError(f"{sharing}/{head}: {name} differs after loading")
    if hasattr(model, "predictions"):
        assert model.predictions.decoder.weight.data_ptr() == model.albert.embeddings.word_embeddings.weight.data_ptr()
    resaved = workdir / f"{sharing}-{head}-hf"
    model.save_pretrained(resaved)
    theirs = load_file(resaved / "model.safetensors")
    canonical = {("albert." + k if cls is AlbertModel else k): v for k, v in theirs.items()}
    if set(canonical) != set(ours):
        raise AssertionError(f"{sharing}/{head}: HF writes {sorted(set(canonical) ^ set(ours))} differently")
    for name, tensor in ours.items():
        assert torch.equal(canonical[name], tensor), name
    return len(ours)


def check_tokenizer(workdir):
    """A tokenizer trained by `albert-train tokenizer` loads in HF AlbertTokenizerFast with
    ALBERT's special-token ids and tokenizes as the `tokenizers` library does."""
    from tokenizers import Tokenizer
    from transformers import AlbertTokenizerFast

    path = workdir / "tokenizer.json"
    corpus = ROOT / "tests" / "fixtures" / "corpus" / "heldout-sample.txt"
    subprocess.run([str(BINARY), "tokenizer", "--corpus", str(corpus), "--vocab-size", "2000", "-o", str(path)], check=True, capture_output=True)
    hf = AlbertTokenizerFast(tokenizer_file=str(path))
    assert (hf.pad_token_id, hf.unk_token_id, hf.cls_token_id, hf.sep_token_id, hf.mask_token_id) == (0, 1, 2, 3, 4)
    raw = Tokenizer.from_file(str(path))
    for a, b in [("The whale surfaced beside the ship.", None), ("``Call me Ishmael,'' he said.", "Café déjà vu!")]:
        ours = raw.encode(a, b).ids if b else raw.encode(a).ids
        theirs = hf(a, b)["input_ids"] if b else hf(a)["input_ids"]
        assert ours == theirs, (a, ours, theirs)
    print(f"ok: tokenizer loads in AlbertTokenizerFast, special ids 0..4, {hf.vocab_size} pieces")


def main():
    if not BINARY.exists():
        sys.exit(f"{BINARY} not found: run `make build` first")
    with tempfile.TemporaryDirectory() as tmp:
        check_tokenizer(Path(tmp))
        for sharing in ["all", "none"]:
            for head, cls in HEADS.items():
                n = check(sharing, head, cls, Path(tmp))
                print(f"ok: sharing={sharing:<4} head={head:<24} {cls.__name__} loads, {n} tensors equal")


if __name__ == "__main__":
    main()
