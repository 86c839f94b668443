//! int8 quantization: every weight matrix symmetric int8 per output channel, quantized once however
//! many layers read it (a shared ALBERT layer is read L times: DESIGN.md "Known traps",
//! onnxruntime#10340 / #11701); activations quantized dynamically (per tensor, per call).
//!
//! Two formats:
//! * `portable` — `DynamicQuantizeLinear` + `MatMulInteger` + a float rescale, standard ONNX that
//!   both ONNX Runtime (CPU) and tract run;
//! * `ort` — ONNX Runtime's fused contrib op `com.microsoft.DynamicQuantizeMatMul` (CPU only).
//!
//! The weights reached: `MatMul` by an initializer (directly, through a `Transpose`, from inside a
//! folded `Scan` body as an outer-scope reference, or as a stacked per-layer scan input), `Gemm`
//! with a constant B (ALBERT's tied MLM decoder reads the word-embedding table with `transB`), and,
//! optionally, the word-embedding table of `Gather` (a third of ALBERT-base), stored int8 per row
//! and dequantized after the lookup. The tied decoder then reads the same int8 table.
//!
//! How the weights are encoded ([`Int8Weights`]) decides where the int8 form stays accurate: ONNX
//! Runtime multiplies uint8 activations by int8 weights (u8×s8), and on x86-64 without VNNI its
//! kernels add pairs of 8-bit products in 16-bit lanes that saturate for weights outside
//! [-64, 63] (`session.x64quantprecision` in ONNX Runtime's
//! `onnxruntime_session_options_config_keys.h`; `albert_core::cpu`). A converted file runs on
//! any CPU, so the default is the encoding accurate on all of them (measurements:
//! docs/export-and-convert.md, "int8 weights and the CPU").

use std::collections::HashMap;

use crate::error::{OnnxError, Result};
use crate::graph::{self, Namer};
use crate::proto::pb::tensor_proto::DataType;
use crate::proto::pb::{GraphProto, NodeProto, TensorProto, ValueInfoProto};
use crate::proto::{attr_int, attr_ints};

/// Which int8 operator form to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantFormat {
    /// `DynamicQuantizeLinear` + `MatMulInteger` (ONNX Runtime CPU and tract).
    Portable,
    /// `com.microsoft.DynamicQuantizeMatMul` (ONNX Runtime CPU only).
    Ort,
}

impl std::str::FromStr for QuantFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "portable" => Ok(QuantFormat::Portable),
            "ort" => Ok(QuantFormat::Ort),
            _ => Err(format!(
                "unknown int8 format `{s}`: expected portable or ort"
            )),
        }
    }
}

/// How the int8 weights are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Int8Weights {
    /// Symmetric int8 in [-127, 127]. Most precise where the u8×s8 product does not saturate
    /// (CPUs with VNNI, tract); loses accuracy in ONNX Runtime on x86-64 CPUs without VNNI.
    Full,
    /// Symmetric int8 in [-63, 63] (7 bits, ONNX Runtime's `reduce_range`): a pair of products
    /// fits 16 bits (2 × 255 × 63 < 32767), so no CPU saturates, at the cost of one bit.
    #[default]
    Reduced,
    /// uint8 in [1, 255] with zero point 128 (8 bits): ONNX Runtime's u8×u8 product widens to
    /// 16 bits before it multiplies and does not saturate, but runs slower than u8×s8.
    Uint8,
}

impl Int8Weights {
    /// The name in the CLI and in the model's metadata (`albert.int8_weights`).
    pub fn name(self) -> &'static str {
        match self {
            Int8Weights::Full => "full",
            Int8Weights::Reduced => "reduced",
            Int8Weights::Uint8 => "uint8",
        }
    }

    /// The largest quantized magnitude.
    fn qmax(self) -> f32 {
        match self {
            Int8Weights::Full | Int8Weights::Uint8 => 127.0,
            Int8Weights::Reduced => 63.0,
        }
    }

    /// The element type of the stored weights.
    fn elem_type(self) -> DataType {
        match self {
            Int8Weights::Full | Int8Weights::Reduced => DataType::Int8,
            Int8Weights::Uint8 => DataType::Uint8,
        }
    }

    /// The element type's name in the names of the tensors made.
    fn type_name(self) -> &'static str {
        match self {
            Int8Weights::Full | Int8Weights::Reduced => "int8",
            Int8Weights::Uint8 => "uint8",
        }
    }

    /// Whether ONNX Runtime's u8×s8 product saturates on these weights on a CPU without VNNI.
    pub fn saturates_without_vnni(self) -> bool {
        self == Int8Weights::Full
    }
}

impl std::str::FromStr for Int8Weights {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "full" => Ok(Int8Weights::Full),
            "reduced" => Ok(Int8Weights::Reduced),
            "uint8" => Ok(Int8Weights::Uint8),
            _ => Err(format!(
                "unknown int8 weight encoding `{s}`: expected full, reduced or uint8"
            )),
        }
    }
}

/// The model metadata key recording the [`Int8Weights`] of a quantized model.
pub const INT8_WEIGHTS_KEY: &str = "albert.int8_weights";

/// Operators that multiply by integer weights in ONNX Runtime's u8×s8 (or u8×u8) kernels.
const INTEGER_PRODUCTS: [&str; 6] = [
    "MatMulInteger",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
    "QAttention",
    "QGemm",
    "DynamicQuantizeLSTM",
];

/// The int8 weight encoding of a model: from its metadata (`albert.int8_weights`, written by the
/// converter), else inferred from its weights (a third party's model) — `None` when it has no
/// integer matrix product or its weights cannot be read (stored as external data). Inference:
/// an int8 weight (an int8 initializer of rank ≥ 2) outside [-64, 63] is `Full`, int8 weights
/// within it `Reduced`, uint8 weights alone `Uint8`.
pub fn int8_weights_of(model: &crate::proto::pb::ModelProto) -> Option<Int8Weights> {
    if let Some(named) = crate::proto::metadata_value(model, INT8_WEIGHTS_KEY) {
        return named.parse().ok();
    }
    let graph = model.graph.as_ref()?;
    fn walk<'a>(g: &'a GraphProto, products: &mut bool, weights: &mut Vec<&'a TensorProto>) {
        *products |= g
            .node
            .iter()
            .any(|n| INTEGER_PRODUCTS.contains(&n.op_type.as_str()));
        weights.extend(g.initializer.iter().filter(|t| t.dims.len() >= 2));
        for n in &g.node {
            for sub in graph::subgraphs(n) {
                walk(sub, products, weights);
            }
        }
    }
    let (mut products, mut weights) = (false, Vec::new());
    walk(graph, &mut products, &mut weights);
    if !products {
        return None;
    }
    let int8: Vec<&TensorProto> = weights
        .iter()
        .copied()
        .filter(|t| t.data_type == DataType::Int8 as i32)
        .collect();
    if int8
        .iter()
        .any(|t| t.raw_data.is_empty() && t.int32_data.is_empty())
    {
        return None; // external data, not read here
    }
    let outside = |v: i32| !(-64..=63).contains(&v);
    if int8.iter().any(|t| {
        t.raw_data.iter().any(|&b| outside(i32::from(b as i8)))
            || t.int32_data.iter().any(|&v| outside(v))
    }) {
        Some(Int8Weights::Full)
    } else if !int8.is_empty() {
        Some(Int8Weights::Reduced)
    } else if weights
        .iter()
        .any(|t| t.data_type == DataType::Uint8 as i32)
    {
        Some(Int8Weights::Uint8)
    } else {
        None
    }
}

/// Options of the int8 pass.
#[derive(Debug, Clone)]
pub struct QuantizeOptions {
    pub format: QuantFormat,
    pub weights: Int8Weights,
    /// Quantize the word-embedding table too (tables of at least `EMBEDDING_MIN_ROWS` rows).
    pub embeddings: bool,
    /// Nodes or weights whose name contains one of these stay in float32.
    pub keep: Vec<String>,
}

impl Default for QuantizeOptions {
    fn default() -> Self {
        QuantizeOptions {
            format: QuantFormat::Portable,
            weights: Int8Weights::default(),
            embeddings: true,
            keep: Vec::new(),
        }
    }
}

/// Gather tables with at least this many rows count as word embeddings (position and token-type
/// tables are small and stay float32).
const EMBEDDING_MIN_ROWS: i64 = 1000;

/// What quantization changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QuantizeStats {
    /// Matrix products now in int8.
    pub matmuls: usize,
    /// Distinct weight tensors stored in int8.
    pub weights: usize,
    /// Matrix products with a constant weight left in float32 (by `keep`).
    pub kept: usize,
    /// Embedding lookups reading an int8 table.
    pub embedding_lookups: usize,
}

/// Symmetric per channel: `scale = max|w| / qmax`, `q = round(w / scale)` in [-qmax, qmax].
fn quantize_channels(
    values: &[f32],
    channels: usize,
    qmax: f32,
    of: impl Fn(usize) -> usize,
) -> (Vec<i8>, Vec<f32>) {
    let mut max = vec![0f32; channels];
    for (i, &v) in values.iter().enumerate() {
        // `of` maps every index below the product of the dims to a channel (the callers').
        if let Some(m) = max.get_mut(of(i)) {
            *m = m.max(v.abs());
        }
    }
    let scale: Vec<f32> = max
        .iter()
        .map(|&m| if m > 0.0 { m / qmax } else { 1.0 })
        .collect();
    let q = values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let s = scale.get(of(i)).copied().unwrap_or(1.0);
            (v / s).round().clamp(-qmax, qmax) as i8
        })
        .collect();
    (q, scale)
}

/// How a weight is laid out for its reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Layout {
    /// `[K, N]`, channels are columns (MatMul B).
    Columns,
    /// `[N, K]`, channels are rows (a transposed B, an embedding table).
    Rows,
    /// `[R, K, N]` stacked per layer, channels are (layer, column).
    StackedColumns,
}

#[derive(Debug, Clone)]
struct QuantizedWeight {
    q: String,
    scale: String,
    zero: String,
}

struct Ctx<'a> {
    inits: HashMap<String, TensorProto>,
    done: HashMap<(String, Layout), QuantizedWeight>,
    new_inits: Vec<TensorProto>,
    namer: Namer,
    options: &'a QuantizeOptions,
    stats: QuantizeStats,
}

impl Ctx<'_> {
    fn float_init(&self, name: &str, rank: usize) -> Option<&TensorProto> {
        self.inits
            .get(name)
            .filter(|t| t.data_type == DataType::Float as i32 && t.dims.len() == rank)
    }

    fn kept(&self, node: &NodeProto, weight: &str) -> bool {
        self.options
            .keep
            .iter()
            .any(|k| node.name.contains(k.as_str()) || weight.contains(k.as_str()))
    }

    fn quantized(&mut self, name: &str, layout: Layout) -> Result<QuantizedWeight> {
        if let Some(q) = self.done.get(&(name.to_string(), layout)) {
            return Ok(q.clone());
        }
        let t = self.inits.get(name).ok_or_else(|| {
            OnnxError::CannotQuantize(format!("weight `{name}` is not an initializer"))
        })?;
        let values = graph::f32_data(t)?;
        let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
        let rank = || {
            OnnxError::CannotQuantize(format!(
                "weight `{name}` has dims {dims:?}, not the {layout:?} layout"
            ))
        };
        let qmax = self.options.weights.qmax();
        let (q, scale, scale_dims, zero_len) = match (layout, dims.as_slice()) {
            (Layout::Columns, &[_, n]) => {
                let (q, s) = quantize_channels(&values, n, qmax, |i| i % n);
                (q, s, vec![n], n)
            }
            (Layout::Rows, &[rows, k]) => {
                let (q, s) = quantize_channels(&values, rows, qmax, |i| i / k.max(1));
                (q, s, vec![rows], rows)
            }
            (Layout::StackedColumns, &[layers, k, n]) => {
                let (q, s) = quantize_channels(&values, layers * n, qmax, |i| {
                    (i / (k * n).max(1)) * n + i % n.max(1)
                });
                (q, s, vec![layers, n], n)
            }
            _ => return Err(rank()),
        };
        let suffix = match layout {
            Layout::Rows => ".rows",
            _ => "",
        };
        // uint8: the same symmetric values shifted by the zero point 128 (q + 128 in [1, 255]).
        let elem = self.options.weights.elem_type();
        let type_name = self.options.weights.type_name();
        let (stored, zero_byte) = match self.options.weights {
            Int8Weights::Uint8 => (
                q.iter().map(|&v| (i16::from(v) + 128) as u8).collect(),
                128u8,
            ),
            Int8Weights::Full | Int8Weights::Reduced => {
                (q.iter().map(|&v| v as u8).collect::<Vec<u8>>(), 0u8)
            }
        };
        let made = QuantizedWeight {
            q: self.namer.fresh(&format!("{name}{suffix}.{type_name}")),
            scale: self.namer.fresh(&format!("{name}{suffix}.scale")),
            zero: self.namer.fresh(&format!("{name}{suffix}.zero_point")),
        };
        self.new_inits.push(TensorProto {
            name: made.q.clone(),
            dims: t.dims.clone(),
            data_type: elem as i32,
            raw_data: stored,
            ..Default::default()
        });
        self.new_inits
            .push(crate::proto::tensor_f32(&made.scale, &scale_dims, &scale));
        self.new_inits.push(TensorProto {
            name: made.zero.clone(),
            dims: vec![zero_len as i64],
            data_type: elem as i32,
            raw_data: vec![zero_byte; zero_len],
            ..Default::default()
        });
        self.stats.weights += 1;
        self.done.insert((name.to_string(), layout), made.clone());
        Ok(made)
    }
}

/// A weight as one node reads it.
enum WeightRef {
    /// An initializer read as is.
    Direct(String),
    /// An initializer read through `Transpose(perm = [1, 0])` (or `Gemm`'s `transB`).
    Transposed(String),
    /// A per-layer slice of a stacked initializer (a folded `Scan`'s scan input `index`).
    Stacked { outer: String },
}

/// Rewrites one graph (the main graph, or a Scan body with `slices`: body input → stacked outer
/// initializer). Returns the scan inputs to add to the enclosing Scan: (outer name, body input).
fn rewrite(
    graph: &mut GraphProto,
    ctx: &mut Ctx,
    slices: &HashMap<String, String>,
) -> Result<Vec<(String, ValueInfoProto)>> {
    let mut added_scan_inputs: Vec<(String, ValueInfoProto)> = Vec::new();
    let mut slice_inputs: HashMap<String, String> = HashMap::new(); // outer → body input
    let mut activations: HashMap<String, [String; 3]> = HashMap::new();
    let transposes: HashMap<String, String> = graph
        .node
        .iter()
        .filter(|n| n.op_type == "Transpose" && graph::attr_is(n, "perm") == Some(&[1, 0][..]))
        .filter_map(|n| match (n.input.as_slice(), n.output.first()) {
            ([x], Some(y)) => Some((y.clone(), x.clone())),
            _ => None,
        })
        .collect();
    let mut out: Vec<NodeProto> = Vec::with_capacity(graph.node.len());
    for mut node in std::mem::take(&mut graph.node) {
        if node.op_type == "Scan" && node.domain.is_empty() {
            quantize_scan(&mut node, ctx)?;
            out.push(node);
            continue;
        }
        if !node.domain.is_empty() {
            out.push(node);
            continue;
        }
        let gemm_ok = node.op_type == "Gemm"
            && graph::attr_i(&node, "transA").unwrap_or(0) == 0
            && node
                .attribute
                .iter()
                .all(|a| !matches!(a.name.as_str(), "alpha" | "beta") || a.f == 1.0);
        let weight = match node.op_type.as_str() {
            "MatMul" | "Gemm" if node.op_type == "MatMul" || gemm_ok => {
                let b = node.input.get(1).cloned().unwrap_or_default();
                let trans_b = node.op_type == "Gemm" && graph::attr_i(&node, "transB") == Some(1);
                if ctx.float_init(&b, 2).is_some() {
                    Some(if trans_b {
                        WeightRef::Transposed(b)
                    } else {
                        WeightRef::Direct(b)
                    })
                } else if let Some(src) = transposes
                    .get(&b)
                    .filter(|s| ctx.float_init(s, 2).is_some())
                    && !trans_b
                {
                    Some(WeightRef::Transposed(src.clone()))
                } else if let Some(outer) =
                    slices.get(&b).filter(|o| ctx.float_init(o, 3).is_some())
                    && !trans_b
                {
                    Some(WeightRef::Stacked {
                        outer: outer.clone(),
                    })
                } else {
                    None
                }
            }
            "Gather" if ctx.options.embeddings => {
                let table = node.input.first().cloned().unwrap_or_default();
                let big = ctx
                    .float_init(&table, 2)
                    .and_then(|t| t.dims.first())
                    .is_some_and(|&rows| rows >= EMBEDDING_MIN_ROWS);
                if big && graph::attr_i(&node, "axis").unwrap_or(0) == 0 && !ctx.kept(&node, &table)
                {
                    let qw = ctx.quantized(&table, Layout::Rows)?;
                    out.extend(dequantized_lookup(
                        &node,
                        &qw,
                        ctx.options.weights,
                        &mut ctx.namer,
                    )?);
                    ctx.stats.embedding_lookups += 1;
                    continue;
                }
                None
            }
            _ => None,
        };
        let Some(weight) = weight else {
            out.push(node);
            continue;
        };
        let weight_name = match &weight {
            WeightRef::Direct(n) | WeightRef::Transposed(n) => n.clone(),
            WeightRef::Stacked { outer } => outer.clone(),
        };
        if ctx.kept(&node, &weight_name) {
            ctx.stats.kept += 1;
            out.push(node);
            continue;
        }
        // The int8 B operand [K, N], its per-column scale and zero point, as this graph sees them.
        let (b, scale, zero) = match &weight {
            WeightRef::Direct(name) => {
                let qw = ctx.quantized(name, Layout::Columns)?;
                (qw.q, qw.scale, qw.zero)
            }
            WeightRef::Transposed(name) => {
                let qw = ctx.quantized(name, Layout::Rows)?;
                let t = ctx.namer.fresh(&format!("{}.transposed", qw.q));
                out.push(graph::node(
                    "Transpose",
                    ctx.namer.fresh(&format!("/quantize/Transpose_{name}")),
                    &[&qw.q],
                    &[&t],
                    vec![attr_ints("perm", &[1, 0])],
                ));
                (t, qw.scale, qw.zero)
            }
            WeightRef::Stacked { outer } => {
                let qw = ctx.quantized(outer, Layout::StackedColumns)?;
                let mut slice = |outer_name: &str, elem: DataType, ctx: &mut Ctx| -> String {
                    if let Some(body) = slice_inputs.get(outer_name) {
                        return body.clone();
                    }
                    let body = ctx.namer.fresh(&format!("{outer_name}.slice"));
                    added_scan_inputs.push((outer_name.to_string(), graph::typed(&body, elem)));
                    slice_inputs.insert(outer_name.to_string(), body.clone());
                    body
                };
                let b = slice(&qw.q, ctx.options.weights.elem_type(), ctx);
                let scale = slice(&qw.scale, DataType::Float, ctx);
                (b, scale, qw.zero)
            }
        };
        let x = graph::input(&node, 0)?.to_string();
        let y = graph::output(&node, 0)?.to_string();
        let bias = (node.op_type == "Gemm")
            .then(|| node.input.get(2).cloned())
            .flatten()
            .filter(|c| !c.is_empty());
        let product = match bias {
            Some(_) => ctx.namer.fresh(&format!("{y}.product")),
            None => y.clone(),
        };
        let base = node.name.clone();
        match ctx.options.format {
            QuantFormat::Ort => out.push(graph::ms_node(
                "DynamicQuantizeMatMul",
                ctx.namer.fresh(&format!("{base}/DynamicQuantizeMatMul")),
                &[&x, &b, &scale, &zero],
                &[&product],
                vec![],
            )),
            QuantFormat::Portable => {
                let [xq, xs, xz] = match activations.get(&x) {
                    Some(a) => a.clone(),
                    None => {
                        let names = [
                            ctx.namer.fresh(&format!("{x}.uint8")),
                            ctx.namer.fresh(&format!("{x}.scale")),
                            ctx.namer.fresh(&format!("{x}.zero_point")),
                        ];
                        out.push(graph::node(
                            "DynamicQuantizeLinear",
                            ctx.namer.fresh(&format!("{base}/DynamicQuantizeLinear")),
                            &[&x],
                            &[&names[0], &names[1], &names[2]],
                            vec![],
                        ));
                        activations.insert(x.clone(), names.clone());
                        names
                    }
                };
                let int = ctx.namer.fresh(&format!("{y}.int32"));
                let float = ctx.namer.fresh(&format!("{y}.float"));
                let rescale = ctx.namer.fresh(&format!("{y}.rescale"));
                out.push(graph::node(
                    "MatMulInteger",
                    ctx.namer.fresh(&format!("{base}/MatMulInteger")),
                    &[&xq, &b, &xz, &zero],
                    &[&int],
                    vec![],
                ));
                out.push(graph::node(
                    "Cast",
                    ctx.namer.fresh(&format!("{base}/Cast")),
                    &[&int],
                    &[&float],
                    vec![attr_int("to", DataType::Float as i64)],
                ));
                out.push(graph::node(
                    "Mul",
                    ctx.namer.fresh(&format!("{base}/Mul_scale")),
                    &[&xs, &scale],
                    &[&rescale],
                    vec![],
                ));
                out.push(graph::node(
                    "Mul",
                    ctx.namer.fresh(&format!("{base}/Mul")),
                    &[&float, &rescale],
                    &[&product],
                    vec![],
                ));
            }
        }
        if let Some(bias) = bias {
            out.push(graph::node(
                "Add",
                ctx.namer.fresh(&format!("{base}/Add_bias")),
                &[&product, &bias],
                &[&y],
                vec![],
            ));
        }
        ctx.stats.matmuls += 1;
    }
    graph.node = out;
    Ok(added_scan_inputs)
}

/// `Gather(table, ids)` on the int8 table: gather int8 rows and their scales, then rescale (a
/// uint8 table first subtracts its zero point 128).
fn dequantized_lookup(
    node: &NodeProto,
    qw: &QuantizedWeight,
    weights: Int8Weights,
    namer: &mut Namer,
) -> Result<Vec<NodeProto>> {
    let ids = graph::input(node, 1)?;
    let y = graph::output(node, 0)?;
    let base = &node.name;
    let rows = namer.fresh(&format!("{y}.{}", weights.type_name()));
    let rows_f = namer.fresh(&format!("{y}.float"));
    let scales = namer.fresh(&format!("{y}.scale"));
    let scales_u = namer.fresh(&format!("{y}.scale_unsqueezed"));
    let axes = namer.fresh(&format!("{y}.axes"));
    let constant = |name: &str, t: TensorProto, namer: &mut Namer| {
        graph::node(
            "Constant",
            namer.fresh(&format!("{base}/{name}")),
            &[],
            &[&t.name.clone()],
            vec![crate::proto::pb::AttributeProto {
                name: "value".into(),
                r#type: crate::proto::pb::attribute_proto::AttributeType::Tensor as i32,
                t: Some(TensorProto {
                    name: String::new(),
                    ..t
                }),
                ..Default::default()
            }],
        )
    };
    let mut nodes = vec![
        graph::node(
            "Gather",
            namer.fresh(&format!("{base}/Gather_{}", weights.type_name())),
            &[&qw.q, ids],
            &[&rows],
            vec![attr_int("axis", 0)],
        ),
        graph::node(
            "Cast",
            namer.fresh(&format!("{base}/Cast")),
            &[&rows],
            &[&rows_f],
            vec![attr_int("to", DataType::Float as i64)],
        ),
    ];
    let centred = if weights == Int8Weights::Uint8 {
        let zero = namer.fresh(&format!("{y}.zero_point_float"));
        let centred = namer.fresh(&format!("{y}.centred"));
        nodes.push(constant(
            "zero_point",
            crate::proto::tensor_f32(&zero, &[], &[128.0]),
            namer,
        ));
        nodes.push(graph::node(
            "Sub",
            namer.fresh(&format!("{base}/Sub_zero_point")),
            &[&rows_f, &zero],
            &[&centred],
            vec![],
        ));
        centred
    } else {
        rows_f
    };
    nodes.extend([
        graph::node(
            "Gather",
            namer.fresh(&format!("{base}/Gather_scale")),
            &[&qw.scale, ids],
            &[&scales],
            vec![attr_int("axis", 0)],
        ),
        constant("axes", crate::proto::tensor_i64(&axes, &[1], &[-1]), namer),
        graph::node(
            "Unsqueeze",
            namer.fresh(&format!("{base}/Unsqueeze")),
            &[&scales, &axes],
            &[&scales_u],
            vec![],
        ),
        graph::node(
            "Mul",
            namer.fresh(&format!("{base}/Mul")),
            &[&centred, &scales_u],
            &[y],
            vec![],
        ),
    ]);
    Ok(nodes)
}

/// Quantizes a `Scan` body in place, adding scan inputs for stacked per-layer weights.
fn quantize_scan(scan: &mut NodeProto, ctx: &mut Ctx) -> Result<()> {
    let num_scan = graph::attr_i(scan, "num_scan_inputs").unwrap_or(0) as usize;
    let states = scan.input.len().saturating_sub(num_scan);
    let Some(attr) = scan.attribute.iter_mut().find(|a| a.name == "body") else {
        return Ok(());
    };
    let Some(body) = attr.g.as_mut() else {
        return Ok(());
    };
    let slices: HashMap<String, String> = body
        .input
        .iter()
        .skip(states)
        .zip(scan.input.iter().skip(states))
        .map(|(b, outer)| (b.name.clone(), outer.clone()))
        .collect();
    let added = rewrite(body, ctx, &slices)?;
    for (outer, body_input) in added {
        scan.input.push(outer);
        body.input.push(body_input);
    }
    let new_count = scan.input.len() - states;
    for a in scan
        .attribute
        .iter_mut()
        .filter(|a| a.name == "num_scan_inputs")
    {
        a.i = new_count as i64;
    }
    Ok(())
}

/// Quantizes the model's weights to int8 (see the module comment).
pub fn quantize(graph: &mut GraphProto, options: &QuantizeOptions) -> Result<QuantizeStats> {
    let namer = Namer::new(graph);
    let order: Vec<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    let inits: HashMap<String, TensorProto> = std::mem::take(&mut graph.initializer)
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect();
    let mut ctx = Ctx {
        inits,
        done: HashMap::new(),
        new_inits: Vec::new(),
        namer,
        options,
        stats: QuantizeStats::default(),
    };
    let result = rewrite(graph, &mut ctx, &HashMap::new());
    graph.initializer = order
        .iter()
        .filter_map(|name| ctx.inits.remove(name))
        .collect();
    graph.initializer.extend(ctx.new_inits);
    result?;
    if ctx.stats.matmuls == 0 && ctx.stats.embedding_lookups == 0 {
        return Err(OnnxError::CannotQuantize(
            "no matrix product reads a constant float32 weight".into(),
        ));
    }
    super::cleanup::cleanup(graph)?;
    Ok(ctx.stats)
}
