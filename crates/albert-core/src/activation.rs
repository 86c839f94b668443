//! The `hidden_act` values of a Hugging Face ALBERT `config.json` (HF `activations.py`, `ACT2CLS`).
//!
//! Each variant is one formula; the trainer and the exporter implement exactly these. `prelu` and
//! `xielu` carry learned parameters of their own that ALBERT checkpoints never hold, so they are
//! refused with a clear error rather than guessed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::AlbertError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `gelu`, `gelu_python`: x·Φ(x) with the exact error function.
    Gelu,
    /// `gelu_new`, `gelu_accurate`, `gelu_pytorch_tanh`, `gelu_python_tanh`:
    /// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). ALBERT's default.
    GeluTanh,
    /// `gelu_fast`: 0.5·x·(1 + tanh(0.7978845608·x·(1 + 0.044715·x²))).
    GeluFast,
    /// `gelu_10`: exact GELU clipped to [-10, 10].
    Gelu10,
    /// `quick_gelu`: x·σ(1.702·x).
    QuickGelu,
    Relu,
    /// `relu2`: relu(x)².
    Relu2,
    Relu6,
    /// `leaky_relu` with PyTorch's default slope 0.01.
    LeakyRelu,
    /// `silu`, `swish`: x·σ(x).
    Silu,
    Hardswish,
    Mish,
    Sigmoid,
    Tanh,
    /// `laplace`: 0.5·(1 + erf((x − 0.707107)/(0.282095·√2))).
    Laplace,
    /// `sqrtsoftplus`: √softplus(x).
    SqrtSoftplus,
    /// `linear`: identity.
    Linear,
}

/// Every accepted name and the variant it maps to; the first name of a variant is the one written.
const NAMES: &[(&str, Activation)] = &[
    ("gelu", Activation::Gelu),
    ("gelu_python", Activation::Gelu),
    ("gelu_new", Activation::GeluTanh),
    ("gelu_accurate", Activation::GeluTanh),
    ("gelu_pytorch_tanh", Activation::GeluTanh),
    ("gelu_python_tanh", Activation::GeluTanh),
    ("gelu_fast", Activation::GeluFast),
    ("gelu_10", Activation::Gelu10),
    ("quick_gelu", Activation::QuickGelu),
    ("relu", Activation::Relu),
    ("relu2", Activation::Relu2),
    ("relu6", Activation::Relu6),
    ("leaky_relu", Activation::LeakyRelu),
    ("silu", Activation::Silu),
    ("swish", Activation::Silu),
    ("hardswish", Activation::Hardswish),
    ("mish", Activation::Mish),
    ("sigmoid", Activation::Sigmoid),
    ("tanh", Activation::Tanh),
    ("laplace", Activation::Laplace),
    ("sqrtsoftplus", Activation::SqrtSoftplus),
    ("linear", Activation::Linear),
];

impl Activation {
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, a)| *a == self)
            .map(|(n, _)| *n)
            .unwrap_or("gelu_new")
    }

    pub fn accepted_names() -> String {
        NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
    }
}

impl FromStr for Activation {
    type Err = AlbertError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, a)| *a)
            .ok_or_else(|| AlbertError::UnknownName {
                what: "hidden_act",
                found: s.to_string(),
                expected: Activation::accepted_names(),
            })
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A config keeps the exact spelling it was read with (`gelu_accurate` stays `gelu_accurate`),
/// so reading and writing a `config.json` changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HiddenAct {
    pub name: String,
    pub activation: Activation,
}

impl HiddenAct {
    pub fn new(activation: Activation) -> Self {
        HiddenAct {
            name: activation.name().to_string(),
            activation,
        }
    }
}

impl Serialize for HiddenAct {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for HiddenAct {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        let activation = name.parse::<Activation>().map_err(|_| {
            serde::de::Error::custom(format!(
                "expected one of {}, found `{name}`",
                Activation::accepted_names()
            ))
        })?;
        Ok(HiddenAct { name, activation })
    }
}
