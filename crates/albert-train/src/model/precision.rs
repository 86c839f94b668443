//! Mixed precision: inside [`bf16_autocast`], matrix products (linear layers and attention) run
//! in bfloat16 while parameters, LayerNorm, softmax and losses stay in float32 — what PyTorch's
//! autocast does with `dtype=torch.bfloat16`. tch's own `autocast` cannot select bf16 (it uses
//! libtorch's default, fp16), so the casts are explicit here. Scoped and per thread, like autocast.

use std::cell::Cell;

use tch::{Kind, Tensor};

thread_local! {
    static BF16: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with bf16 matrix products when `enabled`.
pub fn bf16_autocast<T>(enabled: bool, f: impl FnOnce() -> T) -> T {
    let previous = BF16.with(|c| c.replace(enabled));
    let result = f();
    BF16.with(|c| c.set(previous));
    result
}

pub(crate) fn active() -> bool {
    BF16.with(Cell::get)
}

/// x·Wᵀ + b, in bf16 inside [`bf16_autocast`], the result back in f32.
pub(crate) fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Tensor {
    if active() {
        x.to_kind(Kind::BFloat16)
            .linear(
                &weight.to_kind(Kind::BFloat16),
                Some(&bias.to_kind(Kind::BFloat16)),
            )
            .to_kind(Kind::Float)
    } else {
        x.linear(weight, Some(bias))
    }
}

/// a·b, in bf16 inside [`bf16_autocast`], the result back in f32.
pub(crate) fn matmul(a: &Tensor, b: &Tensor) -> Tensor {
    if active() {
        a.to_kind(Kind::BFloat16)
            .matmul(&b.to_kind(Kind::BFloat16))
            .to_kind(Kind::Float)
    } else {
        a.matmul(b)
    }
}
