//! The `hidden_act` functions, as HF `activations.py` computes them.

use albert_core::Activation;
use tch::Tensor;

pub fn apply(activation: Activation, x: &Tensor) -> Tensor {
    match activation {
        Activation::Gelu => x.gelu("none"),
        // gelu_new / gelu_pytorch_tanh: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
        Activation::GeluTanh => x.gelu("tanh"),
        Activation::GeluFast => {
            let inner = x * 0.797_884_560_8 * (x * x * 0.044715 + 1.0);
            x * 0.5 * (inner.tanh() + 1.0)
        }
        Activation::Gelu10 => x.gelu("none").clamp(-10.0, 10.0),
        Activation::QuickGelu => x * (x * 1.702).sigmoid(),
        Activation::Relu => x.relu(),
        Activation::Relu2 => {
            let r = x.relu();
            &r * &r
        }
        Activation::Relu6 => x.clamp(0.0, 6.0),
        Activation::LeakyRelu => x.leaky_relu(),
        Activation::Silu => x.silu(),
        Activation::Hardswish => x.hardswish(),
        Activation::Mish => x.mish(),
        Activation::Sigmoid => x.sigmoid(),
        Activation::Tanh => x.tanh(),
        // HF LaplaceActivation: mu = 0.707107 (HF's literal, ≈ 1/√2), sigma = 0.282095.
        Activation::Laplace => {
            #[allow(clippy::approx_constant)] // HF uses this literal, not 1/√2.
            const MU: f64 = 0.707_107;
            const SIGMA: f64 = 0.282_095;
            ((x - MU) / (SIGMA * std::f64::consts::SQRT_2)).erf() * 0.5 + 0.5
        }
        Activation::SqrtSoftplus => x.softplus().sqrt(),
        Activation::Linear => x.shallow_clone(),
    }
}
