#!/usr/bin/env python3
"""Makes the third-party ONNX fixtures for `albert-convert` under tests/fixtures/convert/ (run by
hand, not in CI).

`albert-convert` has to load ALBERT graphs that other tools wrote: find the shared layer's weights
however they are stored, fold the repeated layer back into one, fuse and quantize. These fixtures
are tiny random ALBERTs made with HF transformers and exported each third-party way:

    torch-legacy          torch.onnx.export(dynamo=False), opset 17, AlbertModel, L=3, gelu_new
    torch-legacy-mlm      same, AlbertForMaskedLM (logits), L=3, gelu (erf)
    torch-legacy-groups   same as torch-legacy, L=4 with num_hidden_groups=2, gelu (erf)
    torch-dynamo          torch.onnx.export(dynamo=True) of the torch-legacy model, weights embedded
    optimum               optimum's ALBERT feature-extraction export, if optimum imports (it needs
                          transformers<4.58, so with the pinned 5.24 it is skipped and the reason
                          is written in the README)
    ort-optimized         onnxruntime.transformers.optimizer.optimize_model(model_type="bert") of
                          the torch-legacy file
    ort-quantized         onnxruntime.quantization.quant_pre_process + quantize_dynamic(per-channel
                          QInt8) of the torch-legacy file

Each directory holds `model.onnx` (one file, no external data), `config.json` (the HF config) and
`reference.safetensors`: the fixed inputs (batch 2, seq 9, second row padded, two segments;
input_ids, attention_mask, token_type_ids as int64) and HF PyTorch's outputs for them in eval mode
with the eager attention (last_hidden_state + pooler_output, or logits; float32). The script checks
that ONNX Runtime reproduces them (and that the dynamic axes work at another shape), prints the
max-abs differences and writes tests/fixtures/convert/README.md with a structural description of
each graph.

All parameters, LayerNorm and biases included, are drawn from N(0, 0.2) after HF's init (as in
tools/make_fixtures.py) so that a swapped or mis-named tensor changes the outputs.

`--base` runs the same pipeline (torch-legacy, ort-optimized, ort-quantized) at ALBERT-base-v2
shapes with HF's default random init into the git-ignored data/convert-anchors/ (batch 1, seq 128),
prints each file's size and its ratio to 4 bytes per parameter, and records them in the README
section between the base-sizes markers. Those files are not committed.

Usage (from the repository root, after tools/setup.sh):
    .venv/bin/pip install transformers==5.24.0 onnx==1.23.2 onnxruntime==1.31.1 onnxscript==0.7.2
    nice .venv/bin/python tools/make_convert_fixtures.py          # tests/fixtures/convert/
    nice .venv/bin/python tools/make_convert_fixtures.py --base   # data/convert-anchors/ (~15 s)
"""

import argparse
import collections
import contextlib
import hashlib
import io
import platform
import shutil
import sys
import tempfile
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import transformers
from onnx import numpy_helper
from safetensors.torch import save_file
from transformers import AlbertConfig, AlbertForMaskedLM, AlbertModel

TRANSFORMERS_VERSION = "5.24.0"
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "convert"
BASE_OUT = ROOT / "data" / "convert-anchors"
SCRIPT = "tools/make_convert_fixtures.py"
INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]
LEGACY_OPSET = 17
BASE_BEGIN, BASE_END = "<!-- base-sizes -->", "<!-- /base-sizes -->"

TINY = dict(
    vocab_size=64,
    embedding_size=16,
    hidden_size=32,
    num_hidden_layers=3,
    num_hidden_groups=1,
    inner_group_num=1,
    num_attention_heads=4,
    intermediate_size=64,
    hidden_act="gelu_new",
    max_position_embeddings=32,
    type_vocab_size=2,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    classifier_dropout_prob=0.0,
)

BASE = dict(
    TINY,
    vocab_size=30000,
    embedding_size=128,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    max_position_embeddings=512,
)

# model -> (class, config overrides, seed)
MODELS = {
    "albert-l3": (AlbertModel, {}, 0),
    "albert-mlm-l3": (AlbertForMaskedLM, dict(hidden_act="gelu"), 1),
    "albert-l4-g2": (AlbertModel, dict(num_hidden_layers=4, num_hidden_groups=2, hidden_act="gelu"), 2),
}

# kind -> (model, how it is made, one line for the README)
KINDS = {
    "torch-legacy": ("albert-l3", "legacy", "TorchScript exporter, opset 17, `AlbertModel`"),
    "torch-legacy-mlm": ("albert-mlm-l3", "legacy", "TorchScript exporter, opset 17, `AlbertForMaskedLM`"),
    "torch-legacy-groups": ("albert-l4-g2", "legacy", "TorchScript exporter, opset 17, `AlbertModel` with 4 layers in 2 groups"),
    "torch-dynamo": ("albert-l3", "dynamo", "torch.export-based exporter (`dynamo=True`, default opset, default `optimize=True`), weights embedded"),
    "optimum": ("albert-l3", "optimum", "optimum's `feature-extraction` ALBERT export"),
    "ort-optimized": ("albert-l3", "ort-optimized", "`onnxruntime.transformers.optimizer.optimize_model` of torch-legacy"),
    "ort-quantized": ("albert-l3", "ort-quantized", "`quant_pre_process` + `quantize_dynamic(per_channel=True, weight_type=QInt8)` of torch-legacy"),
}

# Why the optimum kind is skipped with the pinned versions (checked by hand on 2026-11-29: `pip install
# --dry-run optimum-onnx`, then optimum==2.1.0 + optimum-onnx==0.1.0 installed with --no-deps into a scratch
# directory outside the venv and imported from there).
OPTIMUM_WHY = (
    "optimum's ONNX exporter now lives in the separate `optimum-onnx` package; its newest release (0.1.0) requires "
    "`transformers<4.58.0,>=4.36` and `optimum~=2.1.0`, so pip would downgrade the pinned transformers 5.24.0 "
    "(optimum 2.3.0 alone has no ONNX exporter; optimum 1.27's `exporters` extra requires transformers<4.54). "
    "Installed anyway with `--no-deps` outside the venv, `from optimum.exporters.onnx import main_export` fails with "
    "`ImportError: cannot import name 'get_parameter_dtype' from 'transformers.modeling_utils'`."
)

# What the generated lines do not say, from reading the tiny graphs made with the versions in the README.
LEGACY_NOTES = [
    "The repeated layer is unrolled: its nodes appear once per layer. Node names keep the path of the one shared "
    "module plus a per-call suffix on the innermost module that was called again: "
    "`/encoder/albert_layer_groups.0/albert_layers.0/attention/query/MatMul`, `.../attention/query_1/MatMul`, "
    "`.../attention_2/Softmax`, `.../full_layer_layer_norm_1/LayerNormalization`. Values are named `<node>_output_0`.",
    "Linear weights are stored once, already transposed to [in, out], under generated names `onnx::MatMul_<n>`; "
    "biases and LayerNorm parameters keep their HF names. The first call's MatMul reads the weight initializer "
    "directly, every later call reads it through its own `Identity` node (`Identity_<n>`, output `onnx::MatMul_<n>`), "
    "so there are 6 Identity nodes per extra call of a layer. Biases and LayerNorm parameters are read directly by "
    "every call.",
    "Linear = MatMul(x, W[in, out]) then Add(bias, x) with the bias as the *first* Add input. The pooler is "
    "Gather(last_hidden_state, 0, axis=1) → Gemm(transB=1) on `pooler.weight` in torch layout [out, in] → Tanh.",
    "Attention per layer: Q, V: Reshape [B, S, heads, d] + Transpose perm [0,2,1,3]; K: one Transpose perm "
    "[0,2,3,1]; MatMul(Q, K^T) → Mul by the constant 1/sqrt(d) (after the product, no Div) → Add(mask) → "
    "Softmax(axis=-1) → MatMul(·, V) → Transpose [0,2,1,3] → Reshape [B, S, H] → dense → Add(residual) → "
    "LayerNormalization (post-LN); then ffn → gelu → ffn_output → Add(residual) → full_layer_layer_norm.",
    "The additive mask comes from transformers 5's `create_bidirectional_mask`, traced into ~45 shape and index "
    "nodes (Range/Unsqueeze/GreaterOrEqual/And, the padding mask picked with Flatten + Gather, Expand) ending in "
    "Where(mask, 0.0, -3.4028235e38) of shape [B, 1, S, S], computed once and added to every layer's scores.",
    "The `embeddings.position_ids` buffer is a Constant node (`onnx::Slice_<n>`, int64 [1, max_position]) sliced to "
    "the sequence length; all other Constant nodes are scalars and axes. LayerNormalization has epsilon 1e-12. "
    "There is no value_info.",
]

NOTES = {
    "torch-legacy": LEGACY_NOTES
    + ["gelu_new is `0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715*x^3)))` written out: Pow(x, 3), Mul, Add, Mul, Tanh, Add, Mul, Mul."],
    "torch-legacy-mlm": [
        "Same encoder layout as torch-legacy (see there) under the `albert.` prefix: initializers `albert.…`, node names `/albert/encoder/…`.",
        "MLM head nodes `/predictions/…`: dense MatMul + Add → gelu as Div(x, sqrt 2), Erf, Add 1, Mul x, Mul 0.5 → "
        "LayerNormalization → decoder MatMul + Add(`predictions.bias`) → `logits`.",
        "The decoder is tied to the word embeddings in HF, but the file stores the matrix twice: "
        "`albert.embeddings.word_embeddings.weight` [64, 16] for the Gather and a transposed copy "
        "`onnx::MatMul_<n>` [16, 64] for the decoder MatMul.",
    ],
    "torch-legacy-groups": [
        "Same layout as torch-legacy, per group: HF runs layer i with group i // (L / G), so layers 0-1 use group 0 "
        "and layers 2-3 group 1. Each group's weights are stored once; in each group the first call reads the "
        "initializers directly and the second goes through Identity. Node names "
        "`/encoder/albert_layer_groups.<g>/albert_layers.0/attention[_1]/…`.",
    ],
    "torch-dynamo": [
        "Node names are flat and say nothing about the layer: `node_MatMul_52`, `node_linear_1` (the bias Add), "
        "`node_softmax_1`, `node_layer_norm_3`; values are `val_<n>`, `linear_<n>`, `softmax_<n>`. The module path is "
        "only in each node's metadata_props (`pkg.torch.onnx.name_scopes`, `namespace`, `pkg.torch.onnx.stack_trace` "
        "with local file paths), which are most of the file's bytes. 196 value_info entries carry inferred shapes.",
        "Linear weights are stored only transposed to [in, out] under generated names `val_<n>` (the torch-layout "
        "tensor is not in the file); biases and LayerNorm parameters keep their HF names. The attention "
        "query/key/value/dense weights are stored once and read by all 3 layers' MatMuls directly (no Identity), but "
        "ffn and ffn_output are stored 3 times, one identical copy per layer (the exporter's constant folding, "
        "not deduplicated).",
        "Linear = MatMul then Add(x, bias) (bias second). Attention as in torch-legacy (K Transpose perm [0,2,3,1], "
        "Mul by the scale, Add mask, Softmax). The mask chain is shorter (GatherND instead of Flatten + Gather, a Max "
        "for broadcasting) and ends in Where(mask, 0.0, -3.4e38). `embeddings.position_ids` is an int64 "
        "initializer. The pooler is Gather + Gemm(transB=1) + Tanh as in torch-legacy.",
        "Opset 20 and IR 10, but HF's gelu_new is written out, so it is still the Pow/Tanh chain (an erf `gelu` "
        "would become the opset-20 `Gelu` op with this exporter). No Constant nodes: every constant is an initializer.",
    ],
    "ort-optimized": [
        "Attention is fused for layers 1 and 2 only: `com.microsoft:Attention` (num_heads=4) with a packed QKV weight "
        "`Attention_<i>_qkv_weight` [H, 3H] and bias [3H], and mask_index = ReduceSum(Cast(attention_mask, int32), "
        "axis 1) (the [B] sequence lengths). Each fused layer gets its own packed copy (identical bytes), while the "
        "original Q/K/V weights stay in the file for layer 0, whose attention is left as MatMul/Softmax with the "
        "traced HF mask chain (the BERT attention fusion did not match it, presumably because its input is the "
        "embedding projection's output rather than a LayerNorm's; not investigated further).",
        "LayerNorms: the embedding LayerNorm stays `LayerNormalization` (no EmbedLayerNormalization: ALBERT's E→H "
        "projection sits between), the 6 residual LayerNorms become `com.microsoft:SkipLayerNormalization` "
        "(inputs x, skip, gamma, beta[, bias]); 5 of them absorb the preceding bias Add as a 5th input, layer 0's "
        "attention LayerNorm does not (\"not safe\", the fusion says).",
        "gelu_new → `com.microsoft:FastGelu` with the ffn bias as its second input (the Add is absorbed). The dense "
        "and ffn weights are still shared single initializers read by 3 MatMuls; Identity nodes are gone.",
        "Former Constant nodes are now int64 initializers (`ort_const_*` and original names). The opset_import lists "
        "9 domains (ai.onnx 17, com.microsoft 1, plus unused ai.onnx.ml, ai.onnx.training, ai.onnx.preview(.training), "
        "com.microsoft.experimental, com.microsoft.nchwc, org.pytorch.aten).",
    ],
    "ort-quantized": [
        "quant_pre_process also runs ONNX Runtime's basic graph optimizations and ONNX shape inference before "
        "quantize_dynamic. Its symbolic shape inference stops with `Exception: Incomplete symbolic shape inference` "
        "on this graph (and leaves `sym_shape_infer_temp.onnx` plus a `<uuid>.data` file in the current directory), "
        "so the script retries with skip_symbolic_shape=True. The Identity nodes are gone and 185 value_info "
        "entries are added.",
        "Every MatMul with a weight (embedding projection, Q/K/V/dense/ffn/ffn_output, and the pooler's Gemm, "
        "rewritten as MatMul on a transposed weight) becomes DynamicQuantizeLinear(x) → MatMulInteger(x_q, W_q, "
        "x_zp, W_zp) → Cast(float) → Mul(x_scale · W_scale) → Add(bias, ·) (the pooler's Add(·, bias)). Weights are int8 [in, out], `<name>_quantized`, "
        "symmetric per output channel: `<name>_scale` float [out] and `<name>_zero_point` int8 [out] of zeros. "
        "They stay stored once: each shared weight is one int8 initializer read by 3 MatMulInteger nodes. Q, K and V "
        "share one DynamicQuantizeLinear of their common input.",
        "The three embedding tables are quantized too, per tensor and asymmetric to uint8 despite weight_type=QInt8: "
        "Gather on `<name>_quantized` uint8 → DequantizeLinear(scalar scale, scalar uint8 zero point).",
        "The attention products (activation × activation MatMul), Softmax, LayerNormalization and the gelu chain "
        "stay float. Model metadata_props record `onnx.infer` and `onnx.quant.pre_process`.",
    ],
}


# ---------------------------------------------------------------------------------------------
# models and inputs


def make_model(cls, config_kwargs, seed, renormalize=True):
    torch.manual_seed(1000 + seed)
    config = AlbertConfig(**config_kwargs)
    config._attn_implementation = "eager"
    config.architectures = [cls.__name__]
    model = cls(config).eval()
    if renormalize:
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0.0, 0.2)
    model.tie_weights()
    return model


def make_inputs(vocab_size, lengths, seq, seed):
    """Rows of the given lengths padded to seq (pad id 0, mask 0), [CLS]=2 first, [SEP]=3 at the
    end of each of the two segments, token type 1 on the second segment."""
    g = torch.Generator().manual_seed(seed)
    batch = len(lengths)
    input_ids = torch.randint(5, vocab_size, (batch, seq), generator=g)
    attention_mask = torch.zeros(batch, seq, dtype=torch.long)
    token_type_ids = torch.zeros(batch, seq, dtype=torch.long)
    for b, n in enumerate(lengths):
        first = n // 2 + 1
        attention_mask[b, :n] = 1
        token_type_ids[b, first:n] = 1
        input_ids[b, n:] = 0
        input_ids[b, 0] = 2
        input_ids[b, first - 1] = 3
        input_ids[b, n - 1] = 3
    return dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)


def output_names(model):
    return ["logits"] if isinstance(model, AlbertForMaskedLM) else ["last_hidden_state", "pooler_output"]


def hf_outputs(model, feed):
    with torch.no_grad():
        out = model(**feed)
    return {name: getattr(out, name).float().contiguous() for name in output_names(model)}


# ---------------------------------------------------------------------------------------------
# exports


def export_legacy(model, feed, path):
    names = output_names(model)
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    for name in names:
        axes[name] = {0: "batch"} if name == "pooler_output" else {0: "batch", 1: "sequence"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            tuple(feed[name] for name in INPUT_NAMES),
            str(path),
            dynamo=False,
            opset_version=LEGACY_OPSET,
            input_names=INPUT_NAMES,
            output_names=names,
            dynamic_axes=axes,
        )
    return f"torch.onnx.export(model, (input_ids, attention_mask, token_type_ids), dynamo=False, opset_version={LEGACY_OPSET}, dynamic_axes=batch/sequence)"


def export_dynamo(model, feed, path):
    batch, seq = torch.export.Dim("batch", min=1, max=1024), torch.export.Dim("sequence", min=2, max=model.config.max_position_embeddings)
    shapes = {name: {0: batch, 1: seq} for name in INPUT_NAMES}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (),
            str(path),
            kwargs=dict(feed),
            dynamo=True,
            external_data=False,
            input_names=INPUT_NAMES,
            output_names=output_names(model),
            dynamic_shapes=shapes,
        )
    extra = [p.name for p in path.parent.iterdir() if p.name not in ("model.onnx",)]
    if extra:
        raise RuntimeError(f"dynamo export left extra files next to model.onnx: {extra}")
    return "torch.onnx.export(model, (), kwargs=feed, dynamo=True, external_data=False, dynamic_shapes={batch, sequence})"


def export_optimum(model, feed, path):
    """Raises with the reason when optimum's exporter is not usable."""
    try:
        from optimum.exporters.onnx import onnx_export_from_model
    except Exception as e:  # noqa: BLE001 - the reason is what the README records
        raise RuntimeError(f"`from optimum.exporters.onnx import onnx_export_from_model` failed here with {type(e).__name__}: {e}. {OPTIMUM_WHY}") from e
    with tempfile.TemporaryDirectory() as tmp:
        onnx_export_from_model(model, tmp, task="feature-extraction", do_validation=False)
        shutil.copy(Path(tmp) / "model.onnx", path)
    return "optimum.exporters.onnx.onnx_export_from_model(model, dir, task='feature-extraction')"


def ort_optimize(src, path, config):
    from onnxruntime.transformers.optimizer import optimize_model

    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp), contextlib.redirect_stdout(io.StringIO()):
        opt = optimize_model(
            str(src),
            model_type="bert",
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
            use_gpu=False,
        )
    opt.save_model_to_file(str(path), use_external_data_format=False)
    stats = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    return (
        f"optimize_model(torch-legacy, model_type='bert', num_heads={config.num_attention_heads}, "
        f"hidden_size={config.hidden_size}, use_gpu=False)  # opt_level=None -> bert default 1",
        f"fused operator statistics: {stats}",
    )


def ort_quantize(src, path):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    notes = []
    # When its symbolic shape inference fails, quant_pre_process saves `sym_shape_infer_temp.onnx` and a
    # `<uuid>.data` file into the current directory: run it from the scratch directory.
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(src), str(pre))
            notes.append("quant_pre_process with default arguments (symbolic shape inference included) succeeded")
            pre_call = "quant_pre_process(torch-legacy, pre)"
        except Exception as e:  # noqa: BLE001 - recorded in the README
            notes.append(f"quant_pre_process with default arguments failed: {type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}; retried with skip_symbolic_shape=True")
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            pre_call = "quant_pre_process(torch-legacy, pre, skip_symbolic_shape=True)"
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_dynamic(str(pre), str(path), per_channel=True, weight_type=QuantType.QInt8)
    return (f"{pre_call}; quantize_dynamic(pre, model.onnx, per_channel=True, weight_type=QuantType.QInt8)", *notes)


# ---------------------------------------------------------------------------------------------
# checks


def ort_run(path, feed):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    values = sess.run(None, {k: v.numpy() for k, v in feed.items()})
    return dict(zip(names, values))


def max_diffs(path, feed, expected):
    got = ort_run(path, feed)
    return {name: float(np.abs(got[name] - ref.numpy()).max()) for name, ref in expected.items()}


# ---------------------------------------------------------------------------------------------
# structure


def tensor_array(t):
    return numpy_helper.to_array(t)


def describe(path, model):
    """Structural facts about an ONNX file, for the README."""
    m = onnx.load(str(path))
    g = m.graph
    inits = {t.name: tensor_array(t) for t in g.initializer}
    consumers = collections.defaultdict(list)
    producers = {}
    for n in g.node:
        for i in n.input:
            consumers[i].append(n)
        for o in n.output:
            producers[o] = n
    ops = collections.Counter((f"{n.domain}:" if n.domain not in ("", "ai.onnx") else "") + n.op_type for n in g.node)
    for sub in (a.g for n in g.node for a in n.attribute if a.type == onnx.AttributeProto.GRAPH):
        ops["(subgraph nodes)"] += len(sub.node)
    init_bytes = collections.Counter()
    init_count = collections.Counter()
    for t in g.initializer:
        a = inits[t.name]
        init_bytes[str(a.dtype)] += a.nbytes
        init_count[str(a.dtype)] += 1
    const_nodes = [n for n in g.node if n.op_type == "Constant"]
    const_sizes = []
    for n in const_nodes:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                const_sizes.append(tensor_array(a.t).size)
    big_consts = sum(1 for s in const_sizes if s > 16)

    def final_uses(name, path_=()):
        """(path of Identity/Transpose/... hops, consumer op) for every use of a value."""
        out = []
        for n in consumers.get(name, []):
            if n.op_type in ("Identity", "Transpose", "Cast", "DequantizeLinear") and len(n.output) == 1:
                out += final_uses(n.output[0], path_ + (n.op_type,)) or [(path_ + (n.op_type,), "(graph output)")]
            else:
                out.append((path_, n.op_type))
        return out

    identity_from_init = [n for n in g.node if n.op_type == "Identity" and n.input[0] in inits]
    transpose_from_init = [n for n in g.node if n.op_type == "Transpose" and n.input[0] in inits]

    # Where the repeated layer's parameters went.
    cfg = model.config
    shared = []
    for pname, p in model.named_parameters():
        if "albert_layer_groups" not in pname:
            continue
        w = p.detach().numpy()
        hits = []
        for iname, a in inits.items():
            if a.dtype != np.float32:
                continue
            if a.shape == w.shape and np.array_equal(a, w):
                hits.append((iname, "as stored in torch"))
            elif w.ndim == 2 and a.shape == w.T.shape and np.array_equal(a, w.T):
                hits.append((iname, "transposed ([in, out])"))
        uses = []
        for iname, _ in hits:
            c = collections.Counter(" → ".join(hops + (op,)) for hops, op in final_uses(iname))
            uses.append(", ".join(f"{k} ×{v}" for k, v in sorted(c.items())))
        shared.append(
            dict(
                param=pname.split("albert_layer_groups.", 1)[1],
                shape=list(w.shape),
                copies=len(hits),
                form=sorted({f for _, f in hits}),
                names=[i for i, _ in hits],
                uses=uses,
            )
        )
    # Initializers that are not float (quantized) or not a torch parameter, grouped by shape.
    low_prec = collections.Counter()
    low_prec_uses = collections.Counter()
    for iname, a in inits.items():
        if a.dtype in (np.int8, np.uint8) and a.ndim == 2:
            low_prec[(str(a.dtype), a.shape)] += 1
            for hops, op in final_uses(iname):
                low_prec_uses[(str(a.dtype), a.shape, " → ".join(hops + (op,)))] += 1
    H, I = cfg.hidden_size, cfg.intermediate_size
    packed_qkv = [n for n, a in inits.items() if a.ndim == 2 and a.shape in ((H, 3 * H),)]
    act_matmul = sum(
        1 for n in g.node if n.op_type == "MatMul" and all(i not in inits and not (i in producers and producers[i].op_type in ("Constant", "Identity", "Transpose") and producers[i].input and producers[i].input[0] in inits) for i in n.input)
    )
    per_layer_names = [n.name for n in g.node if n.op_type in ("Softmax", "Attention", "MultiHeadAttention")]
    # Identical initializers (same dtype, shape and bytes) stored more than once.
    by_content = collections.defaultdict(list)
    for iname, a in inits.items():
        by_content[(str(a.dtype), a.shape, hashlib.sha256(a.tobytes()).hexdigest())].append(iname)
    dup_groups = [names for names in by_content.values() if len(names) > 1]
    dup_bytes = sum(inits[names[0]].nbytes * (len(names) - 1) for names in dup_groups)
    big_dups = [names for names in dup_groups if inits[names[0]].size > 16]
    # Operand order of bias Adds: Add(bias, x) or Add(x, bias).
    bias_first = sum(1 for n in g.node if n.op_type == "Add" and n.input[0] in inits and inits[n.input[0]].ndim == 1 and inits[n.input[0]].size > 1 and n.input[1] not in inits)
    bias_second = sum(1 for n in g.node if n.op_type == "Add" and n.input[1] in inits and inits[n.input[1]].ndim == 1 and inits[n.input[1]].size > 1 and n.input[0] not in inits)
    scales = collections.Counter(inits[k].ndim for k in inits if k.endswith("_scale") and inits[k].dtype == np.float32)
    meta_keys = sorted({p.key for n in g.node for p in n.metadata_props})
    meta_bytes = sum(len(p.key) + len(p.value) for n in g.node for p in n.metadata_props)
    dims = lambda vi: [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]  # noqa: E731
    return dict(
        producer=f"{m.producer_name} {m.producer_version}".strip(),
        ir_version=m.ir_version,
        opsets={(o.domain or "ai.onnx"): o.version for o in m.opset_import},
        functions=[f"{f.domain}:{f.name}" for f in m.functions],
        inputs=[(i.name, onnx.TensorProto.DataType.Name(i.type.tensor_type.elem_type), dims(i)) for i in g.input],
        outputs=[(o.name, onnx.TensorProto.DataType.Name(o.type.tensor_type.elem_type), dims(o)) for o in g.output],
        nodes=len(g.node),
        ops=dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        initializers=len(g.initializer),
        initializer_bytes=sum(init_bytes.values()),
        initializers_by_dtype={k: (init_count[k], init_bytes[k]) for k in sorted(init_count)},
        constant_nodes=len(const_nodes),
        constant_nodes_over_16_elements=big_consts,
        identity_from_initializer=len(identity_from_init),
        transpose_from_initializer=len(transpose_from_init),
        shared=shared,
        low_prec={f"{d}{list(s)}": c for (d, s), c in sorted(low_prec.items(), key=str)},
        low_prec_uses={f"{d}{list(s)}: {u}": c for (d, s, u), c in sorted(low_prec_uses.items(), key=str)},
        packed_qkv=len(packed_qkv),
        activation_matmuls=act_matmul,
        per_layer_names=per_layer_names,
        duplicate_groups=len(dup_groups),
        duplicate_bytes=dup_bytes,
        big_duplicates=[(names, list(inits[names[0]].shape)) for names in big_dups],
        bias_add_order=(bias_first, bias_second),
        scales={f"{k}-D": v for k, v in sorted(scales.items())},
        node_metadata=(meta_keys, meta_bytes),
        value_info=len(g.value_info),
        model_metadata=[p.key for p in m.metadata_props],
        example_initializer_names=[t.name for t in g.initializer][:6],
        file_bytes=path.stat().st_size,
        layers=cfg.num_hidden_layers,
        groups=cfg.num_hidden_groups,
    )


def patterns(d):
    """One line each for LayerNorm, gelu and attention, from the op counts."""
    ops = d["ops"]
    c = lambda *names: sum(ops.get(n, 0) + ops.get(f"com.microsoft:{n}", 0) for n in names)  # noqa: E731
    ln = []
    for op in ("LayerNormalization", "com.microsoft:SkipLayerNormalization", "com.microsoft:EmbedLayerNormalization", "com.microsoft:SkipSimplifiedLayerNormalization", "SimplifiedLayerNormalization"):
        if ops.get(op):
            ln.append(f"{ops[op]}× {op}")
    if ops.get("ReduceMean"):
        ln.append(f"{ops['ReduceMean']}× ReduceMean (decomposed chain: ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div)")
    gelu = []
    for op in ("Gelu", "com.microsoft:Gelu", "com.microsoft:FastGelu", "com.microsoft:BiasGelu", "com.microsoft:BiasFastGelu"):
        if ops.get(op):
            gelu.append(f"{ops[op]}× {op}")
    if ops.get("Erf"):
        gelu.append(f"{ops['Erf']}× Erf (erf chain: Div/Erf/Add/Mul/Mul)")
    tanh = ops.get("Tanh", 0)
    if tanh and ops.get("Pow", 0):
        gelu.append(f"{ops['Pow']}× Pow + Tanh (tanh chain: Pow/Mul/Add/Mul/Tanh/Add/Mul/Mul; {tanh} Tanh incl. the pooler's)")
    att = []
    for op in ("com.microsoft:Attention", "com.microsoft:MultiHeadAttention", "Attention"):
        if ops.get(op):
            att.append(f"{ops[op]}× {op}")
    if ops.get("Softmax"):
        att.append(f"{ops['Softmax']}× Softmax, {d['activation_matmuls']} activation×activation MatMul (QK^T and PV, unfused)")
    if d["packed_qkv"]:
        att.append(f"{d['packed_qkv']} packed QKV weight initializer(s) [H, 3H]")
    return dict(layernorm="; ".join(ln) or "none found", gelu="; ".join(gelu) or "none found", attention="; ".join(att) or "none found")


# ---------------------------------------------------------------------------------------------
# README


def fmt_bytes(n):
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def versions():
    names = ["torch", "transformers", "onnx", "onnxruntime", "onnxscript", "onnx_ir", "numpy", "safetensors"]
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def shared_summary(d):
    """Stored once / copied per layer, from the exact-match table."""
    rows = d["shared"]
    if not rows:
        return "no layer parameters"
    found = [r for r in rows if r["copies"]]
    if not found:
        return "no float initializer equals a layer parameter (they were rewritten: see below)"
    copies = collections.Counter(r["copies"] for r in rows)
    return ", ".join(f"{n} parameter(s) with {k} exact cop{'y' if k == 1 else 'ies'}" for k, n in sorted(copies.items()))


def readme_kind(kind, info):
    model_name, how, line = KINDS[kind]
    lines = [f"### `{kind}`", "", f"{line}. Model `{model_name}` ({info.get('model_desc', '')})."]
    if info.get("skipped"):
        lines += ["", f"**Skipped**: {info['skipped']}", ""]
        return lines
    d = info["describe"]
    p = patterns(d)
    lines += [
        "",
        f"- made with: `{info['call']}`",
    ]
    for note in info.get("notes", []):
        lines.append(f"- {note}")
    diffs = ", ".join(f"{k} {v:.2e}" for k, v in info["diffs"].items())
    diffs2 = ", ".join(f"{k} {v:.2e}" for k, v in info["diffs_other_shape"].items())
    lines += [
        f"- ONNX Runtime vs HF, max-abs: {diffs} (reference inputs); {diffs2} (batch 3, seq 5: dynamic axes)",
        f"- file {fmt_bytes(d['file_bytes'])}; producer `{d['producer']}`, IR {d['ir_version']}; opsets {d['opsets']}"
        + (f"; local functions {d['functions']}" if d["functions"] else ""),
        f"- inputs {', '.join(f'`{n}` {t} {s}' for n, t, s in d['inputs'])}; outputs {', '.join(f'`{n}` {t} {s}' for n, t, s in d['outputs'])}",
        f"- {d['nodes']} nodes: " + ", ".join(f"{k} {v}" for k, v in d["ops"].items()),
        f"- {d['initializers']} initializers, {fmt_bytes(d['initializer_bytes'])} ("
        + ", ".join(f"{k}: {c} / {fmt_bytes(b)}" for k, (c, b) in d["initializers_by_dtype"].items())
        + f"); {d['constant_nodes']} Constant nodes ({d['constant_nodes_over_16_elements']} with more than 16 elements)",
        f"- shared layer weights ({d['layers']} layers, {d['groups']} group(s)): {shared_summary(d)}; "
        f"{d['identity_from_initializer']} Identity and {d['transpose_from_initializer']} Transpose nodes read an initializer",
        f"- LayerNorm: {p['layernorm']}",
        f"- gelu: {p['gelu']}",
        f"- attention: {p['attention']}",
        f"- per-layer node names (Softmax / Attention): {', '.join(f'`{n}`' for n in d['per_layer_names'])}",
        "- first initializer names: " + ", ".join(f"`{n}`" for n in d["example_initializer_names"]),
        f"- identical initializers stored more than once: {d['duplicate_groups']} group(s), {fmt_bytes(d['duplicate_bytes'])} redundant"
        + ("" if not d["big_duplicates"] else " (" + "; ".join(" = ".join(f"`{n}`" for n in names) + f" {shape}" for names, shape in d["big_duplicates"]) + ")"),
        f"- bias Adds: {d['bias_add_order'][0]}× Add(bias, x), {d['bias_add_order'][1]}× Add(x, bias)",
        f"- node metadata_props: {fmt_bytes(d['node_metadata'][1])}" + (f" (keys {', '.join(f'`{k}`' for k in d['node_metadata'][0])})" if d["node_metadata"][0] else "")
        + f"; {d['value_info']} value_info entries; model metadata_props: {d['model_metadata'] or 'none'}",
    ]
    if d["scales"]:
        lines.append(f"- float `*_scale` initializers by rank: {d['scales']}")
    if d["low_prec"]:
        lines.append("- 8-bit 2-D initializers by shape: " + ", ".join(f"{k} ×{v}" for k, v in d["low_prec"].items()))
        lines.append("- their uses: " + "; ".join(f"{k} ×{v}" for k, v in d["low_prec_uses"].items()))
    for note in NOTES.get(kind, []):
        lines.append(f"- {note}")
    lines += ["", "<details><summary>Where each layer parameter went (exact float matches)</summary>", ""]
    lines += ["| parameter | shape | copies | stored as | used by |", "|---|---|---|---|---|"]
    for r in d["shared"]:
        names = "<br>".join(f"`{n}`" for n in r["names"]) or "—"
        uses = "<br>".join(r["uses"]) or "—"
        lines.append(f"| `{r['param']}` | {r['shape']} | {r['copies']} | {names} ({', '.join(r['form']) or 'not stored'}) | {uses} |")
    lines += ["", "</details>", ""]
    return lines


def write_readme(results, total_bytes):
    v = versions()
    old = (OUT / "README.md").read_text() if (OUT / "README.md").exists() else ""
    base_section = old[old.index(BASE_BEGIN) : old.index(BASE_END) + len(BASE_END)] if BASE_BEGIN in old and BASE_END in old else f"{BASE_BEGIN}\nNot made yet: run `{SCRIPT} --base`.\n{BASE_END}"
    lines = [
        "# Third-party ALBERT ONNX fixtures for `albert-convert`",
        "",
        f"Made by `{SCRIPT}` (by hand, not in CI; it rewrites this file):",
        "",
        "```sh",
        f".venv/bin/pip install transformers=={v['transformers']} onnx=={v['onnx']} onnxruntime=={v['onnxruntime']} onnxscript=={v['onnxscript']}",
        f"nice .venv/bin/python {SCRIPT}",
        "```",
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
        "Tiny random ALBERTs (vocab 64, E 16, H 32, 4 heads, FFN 64, max_position 32, dropout 0, eager attention; every "
        "parameter drawn from N(0, 0.2)), exported the ways other tools export ALBERT. Each directory holds `model.onnx` "
        "(one file, no external data), `config.json` (the HF config) and `reference.safetensors`: `input_ids`, "
        "`attention_mask`, `token_type_ids` (int64 [2, 9]; row 0 full, row 1 has 6 tokens then 3 padding positions with "
        "mask 0; token type 1 on each row's second segment) and the HF PyTorch outputs for them (float32: "
        "`last_hidden_state` [2, 9, 32] and `pooler_output` [2, 32], or `logits` [2, 9, 64]). torch-legacy, torch-dynamo, "
        "ort-optimized and ort-quantized come from the same HF model and share one reference. The quantized file's "
        "outputs only approximate the float reference (see its max-abs difference).",
        "",
        f"Total size of the committed fixture files: {fmt_bytes(total_bytes)}, plus this README.",
        "",
        "| kind | model | layers / groups | hidden_act | outputs | model.onnx |",
        "|---|---|---|---|---|---|",
    ]
    for kind, info in results.items():
        model_name = KINDS[kind][0]
        cls, over, _ = MODELS[model_name]
        cfg = {**TINY, **over}
        size = "skipped" if info.get("skipped") else fmt_bytes(info["describe"]["file_bytes"])
        lines.append(f"| `{kind}` | {cls.__name__} | {cfg['num_hidden_layers']} / {cfg['num_hidden_groups']} | {cfg['hidden_act']} | {', '.join(output_names_for(cls))} | {size} |")
    lines += [
        "",
        "Reading the per-kind notes: *copies* counts float initializers that equal a parameter of the shared layer exactly "
        "(as stored by torch, or transposed to [in, out] for MatMul); *used by* follows Identity/Transpose/Cast hops from "
        "that initializer to the op that consumes it. \"activation×activation MatMul\" are the attention score and context "
        "products (two per layer when attention is not fused).",
        "",
        "## Fixtures",
        "",
    ]
    for kind, info in results.items():
        lines += readme_kind(kind, info)
    lines += ["## ALBERT-base-v2 anchors (`--base`, not committed)", "", base_section, ""]
    (OUT / "README.md").write_text("\n".join(lines))


def output_names_for(cls):
    return ["logits"] if cls is AlbertForMaskedLM else ["last_hidden_state", "pooler_output"]


# ---------------------------------------------------------------------------------------------
# main


def model_desc(cls, cfg):
    return f"{cls.__name__}, L={cfg['num_hidden_layers']}, G={cfg['num_hidden_groups']}, {cfg['hidden_act']}"


def save_reference(d, feed, expected, model):
    save_file({**{k: v.contiguous() for k, v in feed.items()}, **expected}, str(d / "reference.safetensors"))
    model.config.to_json_file(str(d / "config.json"))


def build(how, model, feed, d, legacy_paths):
    """Writes d/model.onnx; returns (call string, notes)."""
    if how == "legacy":
        return export_legacy(model, feed, d / "model.onnx"), []
    if how == "dynamo":
        return export_dynamo(model, feed, d / "model.onnx"), []
    if how == "optimum":
        return export_optimum(model, feed, d / "model.onnx"), []
    if how == "ort-optimized":
        call, *notes = ort_optimize(legacy_paths[id(model)], d / "model.onnx", model.config)
        return call, notes
    if how == "ort-quantized":
        call, *notes = ort_quantize(legacy_paths[id(model)], d / "model.onnx")
        return call, notes
    raise ValueError(how)


def run_tiny():
    if OUT.exists():
        readme = (OUT / "README.md").read_text() if (OUT / "README.md").exists() else None
        shutil.rmtree(OUT)
        OUT.mkdir(parents=True)
        if readme is not None:
            (OUT / "README.md").write_text(readme)  # keeps the --base section
    OUT.mkdir(parents=True, exist_ok=True)
    models, feeds, refs, legacy_paths = {}, {}, {}, {}
    for name, (cls, over, seed) in MODELS.items():
        models[name] = make_model(cls, {**TINY, **over}, seed)
        feeds[name] = make_inputs(TINY["vocab_size"], [9, 6], 9, seed)
        refs[name] = hf_outputs(models[name], feeds[name])
    results = {}
    for kind, (model_name, how, _) in KINDS.items():
        model, feed, expected = models[model_name], feeds[model_name], refs[model_name]
        cls, over, seed = MODELS[model_name]
        info = dict(model_desc=model_desc(cls, {**TINY, **over}))
        d = OUT / kind
        d.mkdir(parents=True)
        try:
            call, notes = build(how, model, feed, d, legacy_paths)
        except Exception as e:  # noqa: BLE001
            if how != "optimum":
                raise
            shutil.rmtree(d)
            info["skipped"] = str(e)
            print(f"{kind}: SKIPPED: {e}")
            results[kind] = info
            continue
        if how == "legacy" and id(model) not in legacy_paths:
            legacy_paths[id(model)] = d / "model.onnx"
        save_reference(d, feed, expected, model)
        info["call"], info["notes"] = call, notes
        info["diffs"] = max_diffs(d / "model.onnx", feed, expected)
        other_feed = make_inputs(TINY["vocab_size"], [5, 3, 4], 5, 100 + seed)
        info["diffs_other_shape"] = max_diffs(d / "model.onnx", other_feed, hf_outputs(model, other_feed))
        info["describe"] = describe(d / "model.onnx", model)
        tol = 0.5 if how == "ort-quantized" else 1e-4
        worst = max(list(info["diffs"].values()) + list(info["diffs_other_shape"].values()))
        if worst > tol:
            sys.exit(f"{kind}: ONNX Runtime differs from HF by {worst} (> {tol})")
        print(f"{kind}: {fmt_bytes(info['describe']['file_bytes'])}, max-abs vs HF {info['diffs']}, other shape {info['diffs_other_shape']}")
        for n in notes:
            print(f"    {n}")
        results[kind] = info
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file() and p.name != "README.md")
    write_readme(results, total)
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"total size of {OUT.relative_to(ROOT)}: {total} bytes ({fmt_bytes(total)})")


def run_base():
    BASE_OUT.mkdir(parents=True, exist_ok=True)
    model = make_model(AlbertModel, BASE, seed=0, renormalize=False)
    params = model.num_parameters()
    feed = make_inputs(BASE["vocab_size"], [100], 128, seed=0)
    expected = hf_outputs(model, feed)
    rows = []
    legacy = BASE_OUT / "torch-legacy" / "model.onnx"
    for kind in ("torch-legacy", "ort-optimized", "ort-quantized"):
        d = BASE_OUT / kind
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        how = KINDS[kind][1]
        call, notes = build(how, model, feed, d, {id(model): legacy})
        save_reference(d, feed, expected, model)
        diffs = max_diffs(d / "model.onnx", feed, expected)
        size = (d / "model.onnx").stat().st_size
        ratio = size / (4 * params)
        info = describe(d / "model.onnx", model)
        top = ", ".join(f"{k} {v}" for k, v in list(info["ops"].items())[:8])
        dups = f"{info['duplicate_groups']} group(s), {fmt_bytes(info['duplicate_bytes'])}"
        print(f"{kind}: {size} bytes ({fmt_bytes(size)}), {size / (4 * params):.3f} × 4 bytes/parameter, max-abs vs HF {diffs}")
        for n in notes:
            print(f"    {n}")
        rows.append((kind, size, ratio, diffs, info["nodes"], dups, top, notes))
    v = versions()
    section = [
        BASE_BEGIN,
        f"`nice .venv/bin/python {SCRIPT} --base` writes `data/convert-anchors/<kind>/` (git-ignored): AlbertModel at "
        f"ALBERT-base-v2 shapes (vocab 30000, E 128, H 768, 12 layers in 1 group, 12 heads, FFN 3072, max_position 512, "
        f"gelu_new) with HF's default random init, {params:,} parameters (4 × parameters = {fmt_bytes(4 * params)}); "
        f"reference.safetensors with batch 1, seq 128 (100 tokens then padding). Versions: torch {v['torch']}, "
        f"transformers {v['transformers']}, onnxruntime {v['onnxruntime']}.",
        "",
        "| kind | model.onnx bytes | file / (4 × parameters) | nodes | identical initializers stored twice or more (redundant bytes) | max-abs vs HF | most common ops |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, size, ratio, diffs, nodes, dups, top, _ in rows:
        section.append(f"| `{kind}` | {size:,} ({fmt_bytes(size)}) | {ratio:.3f} | {nodes} | {dups} | {', '.join(f'{k} {x:.1e}' for k, x in diffs.items())} | {top} |")
    notes = [n for *_, ns in rows for n in ns]
    if notes:
        section += [""] + [f"- {n}" for n in notes]
    section.append(
        "- As in the tiny fixtures, ort-optimized leaves layer 0's attention unfused and gives every fused layer its "
        "own packed [768, 2304] QKV weight (7.1 MB each), which is why it is larger than the unfused export; "
        "ort-quantized keeps one int8 copy of each shared weight and quantizes the embedding tables to uint8."
    )
    section.append(BASE_END)
    section = "\n".join(section)
    readme = OUT / "README.md"
    if readme.exists() and BASE_BEGIN in readme.read_text():
        text = readme.read_text()
        text = text[: text.index(BASE_BEGIN)] + section + text[text.index(BASE_END) + len(BASE_END) :]
        readme.write_text(text)
        print(f"updated the base-sizes section of {readme.relative_to(ROOT)}")
    else:
        print(section)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", action="store_true", help="ALBERT-base-v2 shapes into data/convert-anchors/ (not committed)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; the fixtures are tiny)")
    args = parser.parse_args()
    if transformers.__version__ != TRANSFORMERS_VERSION:
        sys.exit(f"need transformers=={TRANSFORMERS_VERSION}, found {transformers.__version__}")
    torch.set_num_threads(args.threads)
    if args.base:
        run_base()
    else:
        run_tiny()


if __name__ == "__main__":
    main()
