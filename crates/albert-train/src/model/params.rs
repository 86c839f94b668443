//! The model's variables, created from the `albert-core` inventory so that names, shapes and sharing
//! are defined in one place. A shared tensor is one variable; every layer that uses it holds a
//! shallow clone (same storage, same gradient).

use std::collections::BTreeMap;

use albert_core::AlbertConfig;
use albert_core::params::{Init, LinearNames, NormNames, ParamSpec};
use tch::{Tensor, nn};

pub struct ParamTable {
    tensors: BTreeMap<String, Tensor>,
}

/// Creates the variable `name` (dots separate path components, as in the VarStore's own names).
fn var_at(root: &nn::Path, name: &str, shape: &[i64], init: nn::Init) -> Tensor {
    let (dir, leaf) = name.rsplit_once('.').unwrap_or(("", name));
    let path = dir
        .split('.')
        .filter(|c| !c.is_empty())
        .fold(None, |p: Option<nn::Path>, c| {
            Some(p.map_or_else(|| root.sub(c), |p| p.sub(c)))
        });
    match path {
        Some(p) => p.var(leaf, shape, init),
        None => root.var(leaf, shape, init),
    }
}

impl ParamTable {
    /// Creates one variable per inventory entry, initialized as HF `_init_weights` does.
    pub fn create(vs: &nn::VarStore, config: &AlbertConfig, inventory: &[ParamSpec]) -> Self {
        let root = vs.root();
        let tensors = inventory
            .iter()
            .map(|spec| {
                let shape: Vec<i64> = spec.shape.iter().map(|&d| d as i64).collect();
                let init = match spec.init {
                    Init::Normal => nn::Init::Randn {
                        mean: 0.0,
                        stdev: config.initializer_range,
                    },
                    Init::Zeros => nn::Init::Const(0.0),
                    Init::Ones => nn::Init::Const(1.0),
                };
                (spec.name.clone(), var_at(&root, &spec.name, &shape, init))
            })
            .collect();
        ParamTable { tensors }
    }

    /// The variable `name`. Names come from the same inventory the table was built from, so a
    /// miss is a bug in this crate, not a user error.
    pub fn get(&self, name: &str) -> Tensor {
        match self.tensors.get(name) {
            Some(t) => t.shallow_clone(),
            None => panic!("parameter `{name}` is not in the inventory (bug in albert-train)"),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Tensor)> {
        self.tensors.iter()
    }
}

pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    pub fn new(table: &ParamTable, names: &LinearNames) -> Self {
        Linear {
            weight: table.get(&names.weight),
            bias: table.get(&names.bias),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        super::precision::linear(x, &self.weight, &self.bias)
    }
}

pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    pub fn new(table: &ParamTable, names: &NormNames, config: &AlbertConfig) -> Self {
        LayerNorm {
            weight: table.get(&names.weight),
            bias: table.get(&names.bias),
            eps: config.layer_norm_eps,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let size = self.weight.size();
        x.layer_norm(&size, Some(&self.weight), Some(&self.bias), self.eps, true)
    }
}
