#!/usr/bin/env python3
"""Makes the HF-parity fixtures under tests/fixtures/hf/ (run by hand, not in CI).

Each case is a tiny random ALBERT made with HF transformers (pinned below), saved with
`save_pretrained` exactly as HF saves it (config.json + model.safetensors), plus `io.safetensors`
with the inputs (input_ids, attention_mask with padding, token_type_ids) and HF's outputs in eval
mode with the eager attention: last_hidden_state, pooler_output, mlm_logits, sop_logits,
classifier_logits, start_logits, end_logits (those the model class has).

All parameters, LayerNorm and biases included, are drawn from N(0, 0.2) after HF's init so that a
swapped or mis-named tensor changes the outputs.

Usage (from the repository root, after tools/setup.sh):
    .venv/bin/pip install transformers==5.24.0
    .venv/bin/python tools/make_fixtures.py
"""

import json
import shutil
import sys
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file
from transformers import (
    AlbertConfig,
    AlbertForMaskedLM,
    AlbertForPreTraining,
    AlbertForQuestionAnswering,
    AlbertForSequenceClassification,
    AlbertForTokenClassification,
    AlbertModel,
)

TRANSFORMERS_VERSION = "5.24.0"
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "hf"

TINY = dict(
    vocab_size=97,
    embedding_size=16,
    hidden_size=32,
    num_hidden_layers=3,
    num_hidden_groups=1,
    inner_group_num=1,
    num_attention_heads=4,
    intermediate_size=48,
    hidden_act="gelu_new",
    max_position_embeddings=40,
    type_vocab_size=2,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    classifier_dropout_prob=0.1,
)

# name -> (model class, config overrides). Together they cover E != H and E == H, several groups,
# an uneven layer-to-group split, several inner layers, non-default activations, every HF head and
# the prefix-less AlbertModel layout.
CASES = {
    "pretraining_default": (AlbertForPreTraining, {}),
    "pretraining_groups": (AlbertForPreTraining, dict(num_hidden_layers=4, num_hidden_groups=2, embedding_size=24, hidden_act="gelu")),
    "pretraining_inner": (AlbertForPreTraining, dict(inner_group_num=2, hidden_act="silu")),
    "pretraining_uneven_groups_inner": (AlbertForPreTraining, dict(num_hidden_layers=5, num_hidden_groups=2, inner_group_num=2, hidden_act="quick_gelu")),
    "pretraining_not_shared_e_eq_h": (AlbertForPreTraining, dict(embedding_size=32, num_hidden_layers=3, num_hidden_groups=3, hidden_act="relu")),
    "base_model": (AlbertModel, dict(num_hidden_layers=2, hidden_act="gelu_fast")),
    "masked_lm": (AlbertForMaskedLM, dict(num_hidden_groups=3)),
    "sequence_classification": (AlbertForSequenceClassification, dict(id2label={0: "neg", 1: "neu", 2: "pos"}, label2id={"neg": 0, "neu": 1, "pos": 2})),
    "token_classification": (AlbertForTokenClassification, dict(id2label={0: "O", 1: "B-X", 2: "I-X", 3: "B-Y"}, label2id={"O": 0, "B-X": 1, "I-X": 2, "B-Y": 3})),
    "question_answering": (AlbertForQuestionAnswering, dict(inner_group_num=2)),
}


def inputs(vocab_size, seed):
    g = torch.Generator().manual_seed(seed)
    batch, seq = 3, 11
    input_ids = torch.randint(5, vocab_size, (batch, seq), generator=g)
    lengths = [11, 7, 4]
    attention_mask = torch.zeros(batch, seq, dtype=torch.long)
    token_type_ids = torch.zeros(batch, seq, dtype=torch.long)
    for b, n in enumerate(lengths):
        attention_mask[b, :n] = 1
        input_ids[b, n:] = 0  # <pad>
        token_type_ids[b, n // 2 : n] = 1
    input_ids[:, 0] = 2  # [CLS]
    return dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)


def main():
    if transformers.__version__ != TRANSFORMERS_VERSION:
        sys.exit(f"need transformers=={TRANSFORMERS_VERSION}, found {transformers.__version__}")
    if OUT.exists():
        shutil.rmtree(OUT)
    for seed, (name, (cls, overrides)) in enumerate(sorted(CASES.items())):
        torch.manual_seed(1000 + seed)
        config = AlbertConfig(**{**TINY, **overrides})
        config._attn_implementation = "eager"
        model = cls(config).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0.0, 0.2)
        model.tie_weights()
        feed = inputs(config.vocab_size, seed)
        with torch.no_grad():
            if cls is AlbertModel:
                out = model(**feed)
                base = out
            else:
                out = model(**feed, output_hidden_states=True)
                base = model.albert(**feed)
        tensors = {k: v.contiguous() for k, v in feed.items()}
        tensors["last_hidden_state"] = base.last_hidden_state
        if base.pooler_output is not None:
            tensors["pooler_output"] = base.pooler_output
        for field, key in [
            ("prediction_logits", "mlm_logits"),
            ("sop_logits", "sop_logits"),
            ("start_logits", "start_logits"),
            ("end_logits", "end_logits"),
        ]:
            if getattr(out, field, None) is not None:
                tensors[key] = getattr(out, field)
        if cls is AlbertForMaskedLM:
            tensors["mlm_logits"] = out.logits
        if cls in (AlbertForSequenceClassification, AlbertForTokenClassification):
            tensors["classifier_logits"] = out.logits
        case_dir = OUT / name
        model.save_pretrained(case_dir)
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(case_dir / "io.safetensors"))
        (case_dir / "case.json").write_text(
            json.dumps(
                {
                    "class": cls.__name__,
                    "num_parameters": model.num_parameters(),
                    "transformers": transformers.__version__,
                    "torch": torch.__version__,
                },
                indent=2,
            ) + "\n"
        )
        print(f"{name}: {cls.__name__}, {sum(p.numel() for p in model.parameters())} parameters")


if __name__ == "__main__":
    main()
