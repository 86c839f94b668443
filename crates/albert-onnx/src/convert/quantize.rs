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

/// Options of the int8 pass.
#[derive(Debug, Clone)]
pub struct QuantizeOptions {
    pub format: QuantFormat,
    /// Quantize the word-embedding table too (tables of at least `EMBEDDING_MIN_ROWS` rows).
    pub embeddings: bool,
    /// Nodes or weights whose name contains one of these stay in float32.
    pub keep: Vec<String>,
}

impl Default for QuantizeOptions {
    fn default() -> Self {
        QuantizeOptions {
            format: QuantFormat::Portable,
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

/// Symmetric int8 per channel: `scale = max|w| / 127`, `q = round(w / scale)`.
fn quantize_channels(
    values: &[f32],
    channels: usize,
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
        .map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 })
        .collect();
    let q = values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let s = scale.get(of(i)).copied().unwrap_or(1.0);
            (v / s).round().clamp(-127.0, 127.0) as i8
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
        let (q, scale, scale_dims, zero_len) = match (layout, dims.as_slice()) {
            (Layout::Columns, &[_, n]) => {
                let (q, s) = quantize_channels(&values, n, |i| i % n);
                (q, s, vec![n], n)
            }
            (Layout::Rows, &[rows, k]) => {
                let (q, s) = quantize_channels(&values, rows, |i| i / k.max(1));
                (q, s, vec![rows], rows)
            }
            (Layout::StackedColumns, &[layers, k, n]) => {
                let (q, s) = quantize_channels(&values, layers * n, |i| {
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
        let made = QuantizedWeight {
            q: self.namer.fresh(&format!("{name}{suffix}.int8")),
            scale: self.namer.fresh(&format!("{name}{suffix}.scale")),
            zero: self.namer.fresh(&format!("{name}{suffix}.zero_point")),
        };
        self.new_inits.push(TensorProto {
            name: made.q.clone(),
            dims: t.dims.clone(),
            data_type: DataType::Int8 as i32,
            raw_data: q.iter().map(|&v| v as u8).collect(),
            ..Default::default()
        });
        self.new_inits
            .push(crate::proto::tensor_f32(&made.scale, &scale_dims, &scale));
        self.new_inits.push(TensorProto {
            name: made.zero.clone(),
            dims: vec![zero_len as i64],
            data_type: DataType::Int8 as i32,
            raw_data: vec![0u8; zero_len],
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
                    out.extend(dequantized_lookup(&node, &qw, &mut ctx.namer)?);
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
                let b = slice(&qw.q, DataType::Int8, ctx);
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

/// `Gather(table, ids)` on the int8 table: gather int8 rows and their scales, then rescale.
fn dequantized_lookup(
    node: &NodeProto,
    qw: &QuantizedWeight,
    namer: &mut Namer,
) -> Result<Vec<NodeProto>> {
    let ids = graph::input(node, 1)?;
    let y = graph::output(node, 0)?;
    let base = &node.name;
    let rows = namer.fresh(&format!("{y}.int8"));
    let rows_f = namer.fresh(&format!("{y}.float"));
    let scales = namer.fresh(&format!("{y}.scale"));
    let scales_u = namer.fresh(&format!("{y}.scale_unsqueezed"));
    let axes = namer.fresh(&format!("{y}.axes"));
    Ok(vec![
        graph::node(
            "Gather",
            namer.fresh(&format!("{base}/Gather_int8")),
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
        graph::node(
            "Gather",
            namer.fresh(&format!("{base}/Gather_scale")),
            &[&qw.scale, ids],
            &[&scales],
            vec![attr_int("axis", 0)],
        ),
        graph::node(
            "Constant",
            namer.fresh(&format!("{base}/axes")),
            &[],
            &[&axes],
            vec![crate::proto::pb::AttributeProto {
                name: "value".into(),
                r#type: crate::proto::pb::attribute_proto::AttributeType::Tensor as i32,
                t: Some(crate::proto::tensor_i64("", &[1], &[-1])),
                ..Default::default()
            }],
        ),
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
            &[&rows_f, &scales_u],
            &[y],
            vec![],
        ),
    ])
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
