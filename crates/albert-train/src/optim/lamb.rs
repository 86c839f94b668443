//! LAMB (You et al. 2019, as ALBERT trains: google-research/albert `lamb_optimizer.py`) and AdamW.
//!
//! LAMB, per tensor w with gradient g (no bias correction, as in ALBERT's implementation):
//! m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  u = m / (√v + ε) + λw;
//! r = ‖w‖ / ‖u‖ (1 when either norm is 0);  w ← w − η·r·u.
//! Biases and LayerNorm parameters get neither weight decay (λ = 0) nor the trust ratio (r = 1).
//! AdamW (Loshchilov & Hutter, PyTorch semantics): bias-corrected m̂, v̂;
//! w ← w − η·λw (decaying tensors only);  w ← w − η·m̂ / (√v̂ + ε).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    Lamb,
    AdamW,
}

impl FromStr for OptimizerKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "lamb" => Ok(OptimizerKind::Lamb),
            "adamw" => Ok(OptimizerKind::AdamW),
            other => Err(format!(
                "unknown optimizer `{other}`: expected lamb or adamw"
            )),
        }
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OptimizerKind::Lamb => "lamb",
            OptimizerKind::AdamW => "adamw",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimizerOptions {
    pub kind: OptimizerKind,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for OptimizerOptions {
    /// The paper's LAMB settings.
    fn default() -> Self {
        OptimizerOptions {
            kind: OptimizerKind::Lamb,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-6,
            weight_decay: 0.01,
        }
    }
}

struct Slot {
    name: String,
    var: Tensor,
    m: Tensor,
    v: Tensor,
    /// Weight decay and the trust ratio apply (not to biases and LayerNorm).
    adapt: bool,
}

pub struct Optimizer {
    options: OptimizerOptions,
    slots: Vec<Slot>,
    /// Updates applied so far (AdamW's bias correction).
    pub steps: u64,
}

impl Optimizer {
    pub fn new(named: Vec<(String, Tensor)>, options: OptimizerOptions) -> Self {
        let slots = named
            .into_iter()
            .map(|(name, var)| Slot {
                m: var.zeros_like().detach(),
                v: var.zeros_like().detach(),
                adapt: albert_core::params::decays(&name),
                name,
                var,
            })
            .collect();
        Optimizer {
            options,
            slots,
            steps: 0,
        }
    }

    pub fn zero_grad(&mut self) {
        for slot in &mut self.slots {
            let mut grad = slot.var.grad();
            if grad.defined() {
                let _ = grad.zero_();
            }
        }
    }

    /// Scales gradients so that their global L2 norm is at most `max`; returns the norm before.
    pub fn clip_grad_norm(&mut self, max: f64) -> f64 {
        tch::no_grad(|| {
            let squares: Vec<Tensor> = self
                .slots
                .iter()
                .map(|s| s.var.grad())
                .filter(Tensor::defined)
                .map(|g| g.to_kind(Kind::Float).square().sum(Kind::Float))
                .collect();
            if squares.is_empty() {
                return 0.0;
            }
            let norm = Tensor::stack(&squares, 0)
                .sum(Kind::Float)
                .sqrt()
                .double_value(&[]);
            if norm > max && norm.is_finite() {
                let scale = max / (norm + 1e-6);
                for slot in &self.slots {
                    let mut g = slot.var.grad();
                    if g.defined() {
                        let _ = g.g_mul_scalar_(scale);
                    }
                }
            }
            norm
        })
    }

    /// One update with learning rate `lr`.
    pub fn step(&mut self, lr: f64) {
        let o = self.options;
        self.steps += 1;
        let t = self.steps as f64;
        tch::no_grad(|| {
            for slot in &mut self.slots {
                let g = slot.var.grad();
                if !g.defined() {
                    continue;
                }
                slot.m = &slot.m * o.beta1 + &g * (1.0 - o.beta1);
                slot.v = &slot.v * o.beta2 + g.square() * (1.0 - o.beta2);
                let decay = if slot.adapt { o.weight_decay } else { 0.0 };
                match o.kind {
                    OptimizerKind::Lamb => {
                        let mut update = &slot.m / (slot.v.sqrt() + o.eps);
                        if decay > 0.0 {
                            update += &slot.var * decay;
                        }
                        if slot.adapt {
                            // r = ‖w‖/‖u‖, or 1 when either is 0; kept on the device (no host
                            // sync per tensor on this hot path).
                            let (w, u) = (slot.var.norm(), update.norm());
                            let both = w.gt(0.0).logical_and(&u.gt(0.0));
                            let ratio = (&w / &u).where_self(&both, &w.ones_like());
                            update *= ratio;
                        }
                        let _ = slot.var.shallow_clone().g_sub_(&(update * lr));
                    }
                    OptimizerKind::AdamW => {
                        let m_hat = &slot.m / (1.0 - o.beta1.powf(t));
                        let v_hat = &slot.v / (1.0 - o.beta2.powf(t));
                        if decay > 0.0 {
                            let _ = slot.var.shallow_clone().g_mul_scalar_(1.0 - lr * decay);
                        }
                        let _ = slot
                            .var
                            .shallow_clone()
                            .g_sub_(&(m_hat / (v_hat.sqrt() + o.eps) * lr));
                    }
                }
            }
        });
    }

    /// The moment estimates by parameter name (`<name>.m`, `<name>.v`), for checkpoints.
    pub fn state(&self) -> BTreeMap<String, Tensor> {
        let mut state = BTreeMap::new();
        for slot in &self.slots {
            state.insert(format!("{}.m", slot.name), slot.m.shallow_clone());
            state.insert(format!("{}.v", slot.name), slot.v.shallow_clone());
        }
        state
    }

    /// Restores moment estimates saved by [`Optimizer::state`].
    pub fn load_state(
        &mut self,
        state: &BTreeMap<String, Tensor>,
        steps: u64,
    ) -> Result<(), String> {
        for slot in &mut self.slots {
            for (suffix, target) in [("m", &mut slot.m), ("v", &mut slot.v)] {
                let key = format!("{}.{suffix}", slot.name);
                let saved = state
                    .get(&key)
                    .ok_or_else(|| format!("optimizer state has no `{key}`"))?;
                if saved.size() != target.size() {
                    return Err(format!(
                        "optimizer state `{key}` has shape {:?}, expected {:?}",
                        saved.size(),
                        target.size()
                    ));
                }
                *target = saved.to_device(target.device()).to_kind(target.kind());
            }
        }
        self.steps = steps;
        Ok(())
    }
}
