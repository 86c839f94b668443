#!/usr/bin/env python3
"""Makes tests/fixtures/optim/steps.safetensors: three optimizer steps on hand-sized tensors
(run by hand; needs the project venv's torch).

LAMB: a PyTorch transcription of google-research/albert `lamb_optimizer.py` (no bias
correction; weight decay and trust ratio skipped for names with LayerNorm/layer_norm/bias).
AdamW: PyTorch's own `torch.optim.AdamW`, with weight decay only on the decaying tensors.
The Rust optimizer is tested against both.

    .venv/bin/python tools/make_optimizer_fixture.py
"""

from pathlib import Path

import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "optim" / "steps.safetensors"
LR, BETA1, BETA2, EPS, WD, STEPS = 0.01, 0.9, 0.999, 1e-6, 0.01, 3


def excluded(name):
    return any(k in name for k in ("LayerNorm", "layer_norm", "bias"))


def lamb(params, grads):
    params = {k: v.clone().double() for k, v in params.items()}
    m = {k: torch.zeros_like(v) for k, v in params.items()}
    v = {k: torch.zeros_like(p) for k, p in params.items()}
    for step in range(STEPS):
        for name, p in params.items():
            g = grads[name][step].double()
            m[name] = BETA1 * m[name] + (1 - BETA1) * g
            v[name] = BETA2 * v[name] + (1 - BETA2) * g * g
            update = m[name] / (v[name].sqrt() + EPS)
            ratio = 1.0
            if not excluded(name):
                update = update + WD * p
                w_norm, u_norm = p.norm(), update.norm()
                ratio = (w_norm / u_norm).item() if w_norm > 0 and u_norm > 0 else 1.0
            params[name] = p - LR * ratio * update
    return {k: v.float() for k, v in params.items()}


def adamw(params, grads):
    tensors = {k: torch.nn.Parameter(v.clone()) for k, v in params.items()}
    groups = [
        {"params": [t for k, t in tensors.items() if not excluded(k)], "weight_decay": WD},
        {"params": [t for k, t in tensors.items() if excluded(k)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=LR, betas=(BETA1, BETA2), eps=EPS)
    for step in range(STEPS):
        for name, t in tensors.items():
            t.grad = grads[name][step].clone()
        opt.step()
    return {k: t.detach() for k, t in tensors.items()}


def main():
    torch.manual_seed(0)
    params = {
        "encoder.dense.weight": torch.randn(3, 4),
        "encoder.dense.bias": torch.randn(3),
        "encoder.LayerNorm.weight": 1 + 0.1 * torch.randn(4),
        "zero.weight": torch.zeros(2, 2),  # a zero norm: trust ratio 1
    }
    grads = {k: torch.randn(STEPS, *v.shape) for k, v in params.items()}
    out = {}
    for k, v in params.items():
        out[f"initial/{k}"] = v
        out[f"grads/{k}"] = grads[k]
    for k, v in lamb(params, grads).items():
        out[f"lamb/{k}"] = v
    for k, v in adamw(params, grads).items():
        out[f"adamw/{k}"] = v
    OUT.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in out.items()}, str(OUT))
    print(f"wrote {OUT}: lr={LR} betas=({BETA1}, {BETA2}) eps={EPS} wd={WD} steps={STEPS}")


if __name__ == "__main__":
    main()
