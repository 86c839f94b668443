//! A small ONNX graph builder: nodes with generated, readable value names, initializers added once
//! by name (so a shared tensor is one initializer however many nodes read it), deduplicated
//! constants, and the composite pieces ALBERT needs written with standard ONNX ops only
//! (LayerNorm, the `hidden_act` functions, linear layers).

use std::collections::{HashMap, HashSet};

use albert_core::Activation;

use crate::proto::pb::{AttributeProto, GraphProto, NodeProto, TensorProto, ValueInfoProto};
use crate::proto::{attr_float, attr_ints, tensor_f32, tensor_i64};

pub struct GraphBuilder {
    opset: i64,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    initializer_names: HashSet<String>,
    constants: HashMap<String, String>,
    counter: usize,
    scope: String,
}

impl GraphBuilder {
    pub fn new(opset: i64) -> Self {
        GraphBuilder {
            opset,
            nodes: Vec::new(),
            initializers: Vec::new(),
            initializer_names: HashSet::new(),
            constants: HashMap::new(),
            counter: 0,
            scope: String::new(),
        }
    }

    /// Names nodes created from now on `/<scope>/<Op>_<n>` (as torch exporters do), for readable graphs.
    pub fn set_scope(&mut self, scope: impl Into<String>) {
        self.scope = scope.into();
    }

    /// Adds a node with one output and returns the output's name.
    pub fn op(&mut self, op_type: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        self.op_n(op_type, inputs, attrs, 1).remove(0)
    }

    /// Adds a node with `n` outputs.
    pub fn op_n(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        n: usize,
    ) -> Vec<String> {
        self.counter += 1;
        let base = format!("{}/{}_{}", self.scope, op_type, self.counter);
        let outputs: Vec<String> = if n == 1 {
            vec![base.clone()]
        } else {
            (0..n).map(|i| format!("{base}:{i}")).collect()
        };
        self.push_node(op_type, inputs, attrs, &outputs, &base);
        outputs
    }

    /// Adds a node whose single output has a given name (a graph output).
    pub fn op_into(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        output: &str,
    ) {
        self.counter += 1;
        let name = format!("{}/{}_{}", self.scope, op_type, self.counter);
        self.push_node(op_type, inputs, attrs, &[output.to_string()], &name);
    }

    fn push_node(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        outputs: &[String],
        name: &str,
    ) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.to_vec(),
            name: name.to_string(),
            op_type: op_type.to_string(),
            attribute: attrs,
            ..Default::default()
        });
    }

    /// Adds an initializer unless one of that name exists; returns its name.
    pub fn initializer(&mut self, name: &str, make: impl FnOnce() -> TensorProto) -> String {
        if self.initializer_names.insert(name.to_string()) {
            let mut tensor = make();
            tensor.name = name.to_string();
            self.initializers.push(tensor);
        }
        name.to_string()
    }

    /// Renames a value produced by a node (to make it a graph output without an Identity node).
    /// Must be called before anything reads the value under its new name.
    pub fn rename_value(&mut self, from: &str, to: &str) {
        for node in &mut self.nodes {
            for name in node.input.iter_mut().chain(node.output.iter_mut()) {
                if name == from {
                    *name = to.to_string();
                }
            }
        }
    }

    pub fn has_initializer(&self, name: &str) -> bool {
        self.initializer_names.contains(name)
    }

    /// A float constant of any shape, stored once per distinct value.
    pub fn const_f32(&mut self, dims: &[usize], values: &[f32]) -> String {
        let bits: Vec<String> = values
            .iter()
            .map(|v| format!("{:08x}", v.to_bits()))
            .collect();
        let key = format!("f32{dims:?}:{}", bits.join(","));
        if let Some(name) = self.constants.get(&key) {
            return name.clone();
        }
        let name = format!("const_f32_{}", self.constants.len());
        let tensor = tensor_f32(&name, dims, values);
        self.initializer(&name, || tensor);
        self.constants.insert(key, name.clone());
        name
    }

    pub fn scalar_f32(&mut self, value: f32) -> String {
        self.const_f32(&[], &[value])
    }

    /// An int64 constant, stored once per distinct value; `dims` empty means a scalar.
    pub fn const_i64(&mut self, dims: &[usize], values: &[i64]) -> String {
        let key = format!("i64{dims:?}:{values:?}");
        if let Some(name) = self.constants.get(&key) {
            return name.clone();
        }
        let name = format!("const_i64_{}", self.constants.len());
        let tensor = tensor_i64(&name, dims, values);
        self.initializer(&name, || tensor);
        self.constants.insert(key, name.clone());
        name
    }

    /// ReduceMean over the last axis, keeping it: `axes` is an attribute up to opset 17 and an
    /// input from opset 18.
    pub fn reduce_mean_last(&mut self, x: &str) -> String {
        if self.opset >= 18 {
            let axes = self.const_i64(&[1], &[-1]);
            self.op(
                "ReduceMean",
                &[x, &axes],
                vec![crate::proto::attr_int("keepdims", 1)],
            )
        } else {
            self.op(
                "ReduceMean",
                &[x],
                vec![
                    attr_ints("axes", &[-1]),
                    crate::proto::attr_int("keepdims", 1),
                ],
            )
        }
    }

    /// LayerNorm over the last axis with standard ops (HF/PyTorch semantics: biased variance, eps
    /// inside the square root). The converter fuses this into LayerNormalization.
    pub fn layer_norm(&mut self, x: &str, weight: &str, bias: &str, eps: f64) -> String {
        let mean = self.reduce_mean_last(x);
        let centered = self.op("Sub", &[x, &mean], vec![]);
        let squared = self.op("Mul", &[&centered, &centered], vec![]);
        let variance = self.reduce_mean_last(&squared);
        let eps = self.scalar_f32(eps as f32);
        let shifted = self.op("Add", &[&variance, &eps], vec![]);
        let std = self.op("Sqrt", &[&shifted], vec![]);
        let normalized = self.op("Div", &[&centered, &std], vec![]);
        let scaled = self.op("Mul", &[&normalized, weight], vec![]);
        self.op("Add", &[&scaled, bias], vec![])
    }

    /// x·W + b with W stored as [in, out].
    pub fn linear(&mut self, x: &str, weight: &str, bias: &str) -> String {
        let product = self.op("MatMul", &[x, weight], vec![]);
        self.op("Add", &[&product, bias], vec![])
    }

    /// x·W + b with W stored as [in, out], into the named value `output` (a graph output).
    pub fn linear_into(&mut self, x: &str, weight: &str, bias: &str, output: &str) {
        let product = self.op("MatMul", &[x, weight], vec![]);
        self.op_into("Add", &[&product, bias], vec![], output);
    }

    /// The `hidden_act` functions of HF `activations.py`, with standard ops.
    pub fn activation(&mut self, activation: Activation, x: &str) -> String {
        match activation {
            Activation::Gelu => self.gelu_erf(x),
            Activation::GeluTanh => {
                // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
                let x2 = self.op("Mul", &[x, x], vec![]);
                let x3 = self.op("Mul", &[&x2, x], vec![]);
                let c = self.scalar_f32(0.044715);
                let cx3 = self.op("Mul", &[&x3, &c], vec![]);
                let inner = self.op("Add", &[x, &cx3], vec![]);
                let k = self.scalar_f32((2.0f64 / std::f64::consts::PI).sqrt() as f32);
                let scaled = self.op("Mul", &[&inner, &k], vec![]);
                self.half_x_one_plus(x, "Tanh", &scaled)
            }
            Activation::GeluFast => {
                // 0.5·x·(1 + tanh(0.7978845608·x·(1 + 0.044715·x²)))
                let x2 = self.op("Mul", &[x, x], vec![]);
                let c = self.scalar_f32(0.044715);
                let cx2 = self.op("Mul", &[&x2, &c], vec![]);
                let one = self.scalar_f32(1.0);
                let poly = self.op("Add", &[&cx2, &one], vec![]);
                let k = self.scalar_f32(0.797_884_6);
                let kx = self.op("Mul", &[x, &k], vec![]);
                let inner = self.op("Mul", &[&kx, &poly], vec![]);
                self.half_x_one_plus(x, "Tanh", &inner)
            }
            Activation::Gelu10 => {
                let g = self.gelu_erf(x);
                let (lo, hi) = (self.scalar_f32(-10.0), self.scalar_f32(10.0));
                self.op("Clip", &[&g, &lo, &hi], vec![])
            }
            Activation::QuickGelu => {
                let k = self.scalar_f32(1.702);
                let kx = self.op("Mul", &[x, &k], vec![]);
                let s = self.op("Sigmoid", &[&kx], vec![]);
                self.op("Mul", &[x, &s], vec![])
            }
            Activation::Relu => self.op("Relu", &[x], vec![]),
            Activation::Relu2 => {
                let r = self.op("Relu", &[x], vec![]);
                self.op("Mul", &[&r, &r], vec![])
            }
            Activation::Relu6 => {
                let (lo, hi) = (self.scalar_f32(0.0), self.scalar_f32(6.0));
                self.op("Clip", &[x, &lo, &hi], vec![])
            }
            Activation::LeakyRelu => self.op("LeakyRelu", &[x], vec![attr_float("alpha", 0.01)]),
            Activation::Silu => {
                let s = self.op("Sigmoid", &[x], vec![]);
                self.op("Mul", &[x, &s], vec![])
            }
            Activation::Hardswish => self.op("HardSwish", &[x], vec![]),
            Activation::Mish => {
                let sp = self.op("Softplus", &[x], vec![]);
                let t = self.op("Tanh", &[&sp], vec![]);
                self.op("Mul", &[x, &t], vec![])
            }
            Activation::Sigmoid => self.op("Sigmoid", &[x], vec![]),
            Activation::Tanh => self.op("Tanh", &[x], vec![]),
            Activation::Laplace => {
                // 0.5·(1 + erf((x − μ)/(σ·√2))), μ = 0.707107, σ = 0.282095 (HF's literals)
                #[allow(clippy::approx_constant)]
                let mu = self.scalar_f32(0.707_107);
                let centered = self.op("Sub", &[x, &mu], vec![]);
                let d = self.scalar_f32((0.282_095f64 * std::f64::consts::SQRT_2) as f32);
                let z = self.op("Div", &[&centered, &d], vec![]);
                let e = self.op("Erf", &[&z], vec![]);
                let one = self.scalar_f32(1.0);
                let p = self.op("Add", &[&e, &one], vec![]);
                let half = self.scalar_f32(0.5);
                self.op("Mul", &[&p, &half], vec![])
            }
            Activation::SqrtSoftplus => {
                let sp = self.op("Softplus", &[x], vec![]);
                self.op("Sqrt", &[&sp], vec![])
            }
            Activation::Linear => x.to_string(),
        }
    }

    /// Exact GELU: 0.5·x·(1 + erf(x/√2)).
    fn gelu_erf(&mut self, x: &str) -> String {
        let k = self.scalar_f32(std::f32::consts::FRAC_1_SQRT_2);
        let scaled = self.op("Mul", &[x, &k], vec![]);
        self.half_x_one_plus(x, "Erf", &scaled)
    }

    /// 0.5·x·(1 + f(inner)).
    fn half_x_one_plus(&mut self, x: &str, f: &str, inner: &str) -> String {
        let fx = self.op(f, &[inner], vec![]);
        let one = self.scalar_f32(1.0);
        let p = self.op("Add", &[&fx, &one], vec![]);
        let xp = self.op("Mul", &[x, &p], vec![]);
        let half = self.scalar_f32(0.5);
        self.op("Mul", &[&xp, &half], vec![])
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn finish(
        self,
        name: &str,
        inputs: Vec<ValueInfoProto>,
        outputs: Vec<ValueInfoProto>,
    ) -> GraphProto {
        GraphProto {
            node: self.nodes,
            name: name.to_string(),
            initializer: self.initializers,
            input: inputs,
            output: outputs,
            ..Default::default()
        }
    }
}
