//! Fuzz targets for every loader of untrusted input but the trainer's (crates/albert-train/tests/fuzz.rs) and
//! the server's (crates/albert-serve/tests/openapi.rs): each test is one target of
//! `albert_e2e::fuzz` (a child process under a memory limit; regression fixtures under
//! tests/fixtures/fuzz/<target>/). `make fuzz` runs them longer; docs/hardening.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::sync::OnceLock;

use albert_core::AlbertConfig;
use albert_core::checkpoint::{self, CONFIG_FILE, WEIGHTS_FILE};
use albert_e2e::fuzz::{self, ByteEdit, JsonEdit, Verdict};
use albert_e2e::root;
use albert_onnx::convert::{self, ConvertOptions, FuseFlavour, LoopMode, QuantFormat};
use albert_onnx::convert::{QuantizeOptions, arity};
use albert_onnx::proto::pb::{GraphProto, ModelProto, TensorProto};
use albert_runtime::backend::BackendChoice;
use albert_runtime::pipeline::{Pipeline, PipelineOptions, TextInput, Truncation};
use albert_runtime::tasks::embed::EmbedOptions;
use proptest::prelude::*;
use proptest::sample::Index;
use prost::Message;

fn read(path: &str) -> Vec<u8> {
    std::fs::read(root().join(path)).unwrap()
}

fn json(path: &str) -> serde_json::Value {
    serde_json::from_slice(&read(path)).unwrap()
}

// ---------------------------------------------------------------------------------------------
// config.json

fn config_seeds() -> Vec<serde_json::Value> {
    vec![
        json("models/albert-tiny-en/config.json"),
        json("tests/fixtures/runtime/tiny-base/config.json"),
        json("tests/fixtures/convert/torch-legacy-groups/config.json"),
        json("tests/fixtures/hf/sequence_classification/config.json"),
    ]
}

fn check_config(bytes: &[u8]) -> Verdict {
    let (_dir, path) = fuzz::in_file(CONFIG_FILE, bytes);
    let Ok(config) = AlbertConfig::from_file(&path) else {
        return Ok(());
    };
    // What the loaders do next with a config that passed: count its parameters, name its heads.
    let parts = albert_core::Head::Pretraining.parts();
    let inventory = albert_core::params::inventory(&config, &parts);
    let _ = inventory.iter().map(|s| s.numel()).sum::<usize>();
    let again = AlbertConfig::from_json_str(&config.to_json_string(), &path)
        .map_err(|e| format!("a config that loaded does not load again once written: {e}"))?;
    if again != config {
        return Err(format!(
            "written and read again, the config changed: {again:?}"
        ));
    }
    Ok(())
}

#[test]
fn config() {
    fuzz::run(
        "config",
        fuzz::mutated_json(config_seeds(), 6),
        fuzz::render_json,
        check_config,
    );
}

// ---------------------------------------------------------------------------------------------
// tokenizer.json

fn check_tokenizer(bytes: &[u8]) -> Verdict {
    let (_dir, path) = fuzz::in_file("tokenizer.json", bytes);
    let Ok(tokenizer) = albert_core::tokenizer::load(&path) else {
        return Ok(());
    };
    for text in [
        "",
        "Hello, world!",
        "[CLS] [MASK] <pad>",
        "naïve café\u{0}\u{202e}",
    ] {
        if let Ok(encoding) = tokenizer.encode(text, true) {
            let vocab = tokenizer.get_vocab_size(true);
            let _ = encoding
                .get_ids()
                .iter()
                .filter(|&&id| id as usize >= vocab)
                .count();
        }
    }
    Ok(())
}

#[test]
fn tokenizer() {
    // The runtime fixture's tokenizer (27 kB) and the bundled one cut to its first 300 pieces: the
    // full 530 kB file would make each case slow without adding structure.
    let mut bundled = json("models/albert-tiny-en/tokenizer.json");
    if let Some(vocab) = bundled
        .pointer_mut("/model/vocab")
        .and_then(|v| v.as_array_mut())
    {
        vocab.truncate(300);
    }
    let seeds = vec![
        json("tests/fixtures/runtime/tiny-base/tokenizer.json"),
        bundled,
    ];
    fuzz::run(
        "tokenizer",
        fuzz::mutated_json(seeds, 6),
        fuzz::render_json,
        check_tokenizer,
    );
}

// ---------------------------------------------------------------------------------------------
// model.safetensors

/// A small checkpoint's weights file, written the way the trainer writes one.
fn safetensors_seed() -> Vec<u8> {
    let config = AlbertConfig {
        vocab_size: 40,
        embedding_size: 4,
        hidden_size: 8,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 8,
        max_position_embeddings: 8,
        ..AlbertConfig::default()
    };
    let ckpt =
        albert_core::Checkpoint::random(&config, albert_core::Head::Base.parts(), 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    ckpt.write_dir(dir.path()).unwrap();
    std::fs::read(dir.path().join(WEIGHTS_FILE)).unwrap()
}

type SafetensorsInput = (Vec<JsonEdit>, bool, Vec<ByteEdit>);

/// The header as JSON edited, its length prefix recomputed (or, when `keep_len`, left as it was),
/// then byte edits over the whole file.
fn render_safetensors(input: &SafetensorsInput) -> Vec<u8> {
    static SEED: OnceLock<Vec<u8>> = OnceLock::new();
    let seed = SEED.get_or_init(safetensors_seed);
    let (json_edits, keep_len, byte_edits) = input;
    let header_len = u64::from_le_bytes(seed[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&seed[8..8 + header_len]).unwrap();
    fuzz::apply_json(&mut header, json_edits);
    let text = serde_json::to_vec(&header).unwrap();
    let len = if *keep_len { header_len } else { text.len() };
    let mut bytes = (len as u64).to_le_bytes().to_vec();
    bytes.extend(text);
    bytes.extend(&seed[8 + header_len..]);
    fuzz::apply_bytes(&mut bytes, byte_edits);
    bytes
}

fn check_safetensors(bytes: &[u8]) -> Verdict {
    let (_dir, path) = fuzz::in_file(WEIGHTS_FILE, bytes);
    let Ok(tensors) = checkpoint::read_safetensors(&path) else {
        return Ok(());
    };
    for (name, t) in &tensors {
        if t.shape.iter().product::<usize>() != t.data.len() {
            return Err(format!(
                "tensor `{name}`: {} values for shape {:?}",
                t.data.len(),
                t.shape
            ));
        }
    }
    // Every value comes from at least two bytes of the file.
    let values: usize = tensors.values().map(|t| t.data.len()).sum();
    if values * 2 > bytes.len() {
        return Err(format!("{values} values from a {}-byte file", bytes.len()));
    }
    Ok(())
}

#[test]
fn safetensors() {
    let strategy = (
        prop::collection::vec(fuzz::json_edit(), 0..5),
        prop::bool::weighted(0.2),
        prop_oneof![2 => Just(Vec::new()), 1 => prop::collection::vec(fuzz::byte_edit(), 1..5)],
    );
    fuzz::run(
        "safetensors",
        strategy,
        render_safetensors,
        check_safetensors,
    );
}

// ---------------------------------------------------------------------------------------------
// model.onnx: the protobuf reader

/// Our export, and the third-party graphs of tests/fixtures/convert.
fn onnx_seeds() -> Vec<Vec<u8>> {
    let mut seeds = vec![read("tests/fixtures/runtime/tiny-base/model.onnx")];
    for kind in [
        "torch-legacy",
        "torch-legacy-groups",
        "torch-dynamo",
        "ort-optimized",
        "ort-quantized",
    ] {
        seeds.push(read(&format!("tests/fixtures/convert/{kind}/model.onnx")));
    }
    // Our export folded into a Scan loop (loop bodies are graphs too).
    let mut folded = ModelProto::decode(seeds[0].as_slice()).unwrap();
    convert::convert(
        &mut folded,
        &ConvertOptions {
            loops: LoopMode::Fold,
            ..ConvertOptions::default()
        },
    )
    .unwrap();
    seeds.push(folded.encode_to_vec());
    seeds
}

fn graph_seeds() -> &'static [ModelProto] {
    static SEEDS: OnceLock<Vec<ModelProto>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        onnx_seeds()
            .iter()
            .map(|b| ModelProto::decode(b.as_slice()).unwrap())
            .collect()
    })
}

/// A model with external data: the protobuf reader also follows `location`, `offset` and
/// `length`, which an attacker controls.
fn check_proto(bytes: &[u8]) -> Verdict {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, bytes).unwrap();
    std::fs::write(dir.path().join("model.onnx.data"), [7u8; 4096]).unwrap();
    let _ = albert_onnx::proto::read_model(&path);
    Ok(())
}

#[test]
fn onnx_proto() {
    // Some seeds with an initializer moved to external data, so its fields get mutated too.
    let mut seeds = onnx_seeds();
    let mut external = ModelProto::decode(seeds[0].as_slice()).unwrap();
    if let Some(t) = external
        .graph
        .as_mut()
        .and_then(|g| g.initializer.first_mut())
    {
        t.raw_data.clear();
        t.data_location = Some(1);
        t.external_data = albert_onnx::proto::metadata(&[
            ("location", "model.onnx.data".into()),
            ("offset", "64".into()),
            ("length", "128".into()),
        ]);
    }
    seeds.push(external.encode_to_vec());
    fuzz::run(
        "onnx_proto",
        fuzz::mutated_bytes(seeds, 8),
        |b| b.clone(),
        check_proto,
    );
}

// ---------------------------------------------------------------------------------------------
// The converter's passes on mutated graphs

/// One structural edit of a graph (the top-level one or a loop body, by `graph`).
#[derive(Debug, Clone)]
enum GraphEdit {
    DropInput {
        graph: Index,
        node: Index,
        slot: Index,
    },
    DropOutput {
        graph: Index,
        node: Index,
        slot: Index,
    },
    /// Reads another value of the graph instead (a cycle, a type or shape mismatch).
    Rewire {
        graph: Index,
        node: Index,
        slot: Index,
        to: Index,
    },
    OpType {
        graph: Index,
        node: Index,
        op: Index,
    },
    DropAttribute {
        graph: Index,
        node: Index,
        attr: Index,
    },
    AttributeInt {
        graph: Index,
        node: Index,
        attr: Index,
        value: i64,
    },
    DropNode {
        graph: Index,
        node: Index,
    },
    DuplicateNode {
        graph: Index,
        node: Index,
    },
    SwapNodes {
        graph: Index,
        a: Index,
        b: Index,
    },
    DropInitializer {
        graph: Index,
        init: Index,
    },
    TruncateData {
        graph: Index,
        init: Index,
        keep: Index,
    },
    Dims {
        graph: Index,
        init: Index,
        dims: Vec<i64>,
    },
    DataType {
        graph: Index,
        init: Index,
        data_type: i32,
    },
    DropGraphOutput {
        graph: Index,
        output: Index,
    },
    DropGraphInput {
        graph: Index,
        input: Index,
    },
}

/// Operators the passes look for, and some they do not know.
const OPS: [&str; 24] = [
    "MatMul",
    "Add",
    "Mul",
    "Sub",
    "Div",
    "Gather",
    "Gemm",
    "Softmax",
    "Transpose",
    "Reshape",
    "LayerNormalization",
    "ReduceMean",
    "Pow",
    "Sqrt",
    "Tanh",
    "Erf",
    "Scan",
    "Constant",
    "Identity",
    "Cast",
    "Concat",
    "Unsqueeze",
    "Attention",
    "FancyNewOp",
];

fn graph_edit() -> impl Strategy<Value = GraphEdit> {
    let i = || any::<Index>();
    prop_oneof![
        (i(), i(), i()).prop_map(|(graph, node, slot)| GraphEdit::DropInput { graph, node, slot }),
        (i(), i(), i()).prop_map(|(graph, node, slot)| GraphEdit::DropOutput { graph, node, slot }),
        (i(), i(), i(), i()).prop_map(|(graph, node, slot, to)| GraphEdit::Rewire {
            graph,
            node,
            slot,
            to
        }),
        (i(), i(), i()).prop_map(|(graph, node, op)| GraphEdit::OpType { graph, node, op }),
        (i(), i(), i()).prop_map(|(graph, node, attr)| GraphEdit::DropAttribute {
            graph,
            node,
            attr
        }),
        (
            i(),
            i(),
            i(),
            prop::sample::select(vec![-1i64, 0, 1, 2, 3, -3, 1 << 40, i64::MIN, i64::MAX])
        )
            .prop_map(|(graph, node, attr, value)| GraphEdit::AttributeInt {
                graph,
                node,
                attr,
                value
            }),
        (i(), i()).prop_map(|(graph, node)| GraphEdit::DropNode { graph, node }),
        (i(), i()).prop_map(|(graph, node)| GraphEdit::DuplicateNode { graph, node }),
        (i(), i(), i()).prop_map(|(graph, a, b)| GraphEdit::SwapNodes { graph, a, b }),
        (i(), i()).prop_map(|(graph, init)| GraphEdit::DropInitializer { graph, init }),
        (i(), i(), i()).prop_map(|(graph, init, keep)| GraphEdit::TruncateData {
            graph,
            init,
            keep
        }),
        (
            i(),
            i(),
            prop::collection::vec(
                prop::sample::select(vec![-1i64, 0, 1, 2, 3, 7, 16, 1 << 33, i64::MAX]),
                0..4
            )
        )
            .prop_map(|(graph, init, dims)| GraphEdit::Dims { graph, init, dims }),
        (
            i(),
            i(),
            prop::sample::select(vec![0, 1, 2, 3, 6, 7, 10, 11, 16, 99])
        )
            .prop_map(|(graph, init, data_type)| GraphEdit::DataType {
                graph,
                init,
                data_type
            }),
        (i(), i()).prop_map(|(graph, output)| GraphEdit::DropGraphOutput { graph, output }),
        (i(), i()).prop_map(|(graph, input)| GraphEdit::DropGraphInput { graph, input }),
    ]
}

/// Applies `f` to the `index`-th graph of `model` in pre-order.
fn with_graph(model: &mut ModelProto, index: &Index, f: impl FnOnce(&mut GraphProto)) {
    fn count(g: &GraphProto) -> usize {
        1 + g
            .node
            .iter()
            .flat_map(albert_onnx::graph::subgraphs)
            .map(count)
            .sum::<usize>()
    }
    fn nth<'a>(g: &'a mut GraphProto, n: &mut usize) -> Option<&'a mut GraphProto> {
        if *n == 0 {
            return Some(g);
        }
        *n -= 1;
        for node in &mut g.node {
            for sub in albert_onnx::graph::subgraphs_mut(node) {
                let size = count(sub);
                if *n < size {
                    return nth(sub, n);
                }
                *n -= size;
            }
        }
        None
    }
    let Some(graph) = model.graph.as_mut() else {
        return;
    };
    let mut n = index.index(count(graph));
    if let Some(g) = nth(graph, &mut n) {
        f(g);
    }
}

fn pick<'a, T>(items: &'a mut [T], index: &Index) -> Option<&'a mut T> {
    if items.is_empty() {
        return None;
    }
    let n = index.index(items.len());
    items.get_mut(n)
}

fn remove<T>(items: &mut Vec<T>, index: &Index) {
    if !items.is_empty() {
        items.remove(index.index(items.len()));
    }
}

fn apply_graph_edit(model: &mut ModelProto, edit: &GraphEdit) {
    use GraphEdit::*;
    match edit {
        DropInput { graph, node, slot } => with_graph(model, graph, |g| {
            if let Some(n) = pick(&mut g.node, node) {
                remove(&mut n.input, slot);
            }
        }),
        DropOutput { graph, node, slot } => with_graph(model, graph, |g| {
            if let Some(n) = pick(&mut g.node, node) {
                remove(&mut n.output, slot);
            }
        }),
        Rewire {
            graph,
            node,
            slot,
            to,
        } => with_graph(model, graph, |g| {
            let names: Vec<String> = g
                .node
                .iter()
                .flat_map(|n| n.output.iter().cloned())
                .chain(g.initializer.iter().map(|t| t.name.clone()))
                .chain(g.input.iter().map(|v| v.name.clone()))
                .collect();
            if names.is_empty() {
                return;
            }
            let name = names[to.index(names.len())].clone();
            if let Some(n) = pick(&mut g.node, node)
                && let Some(input) = pick(&mut n.input, slot)
            {
                *input = name;
            }
        }),
        OpType { graph, node, op } => with_graph(model, graph, |g| {
            if let Some(n) = pick(&mut g.node, node) {
                n.op_type = OPS[op.index(OPS.len())].to_string();
            }
        }),
        DropAttribute { graph, node, attr } => with_graph(model, graph, |g| {
            if let Some(n) = pick(&mut g.node, node) {
                remove(&mut n.attribute, attr);
            }
        }),
        AttributeInt {
            graph,
            node,
            attr,
            value,
        } => with_graph(model, graph, |g| {
            if let Some(n) = pick(&mut g.node, node)
                && let Some(a) = pick(&mut n.attribute, attr)
            {
                a.i = *value;
                for v in &mut a.ints {
                    *v = *value;
                }
            }
        }),
        DropNode { graph, node } => with_graph(model, graph, |g| remove(&mut g.node, node)),
        DuplicateNode { graph, node } => with_graph(model, graph, |g| {
            if let Some(n) = pick(&mut g.node, node) {
                let copy = n.clone();
                g.node.push(copy);
            }
        }),
        SwapNodes { graph, a, b } => with_graph(model, graph, |g| {
            if !g.node.is_empty() {
                let (a, b) = (a.index(g.node.len()), b.index(g.node.len()));
                g.node.swap(a, b);
            }
        }),
        DropInitializer { graph, init } => {
            with_graph(model, graph, |g| remove(&mut g.initializer, init))
        }
        TruncateData { graph, init, keep } => with_graph(model, graph, |g| {
            if let Some(t) = pick(&mut g.initializer, init) {
                let keep = keep.index(t.raw_data.len() + 1);
                t.raw_data.truncate(keep);
                t.float_data.truncate(keep / 4);
                t.int64_data.truncate(keep / 8);
            }
        }),
        Dims { graph, init, dims } => with_graph(model, graph, |g| {
            if let Some(t) = pick(&mut g.initializer, init) {
                t.dims = dims.clone();
            }
        }),
        DataType {
            graph,
            init,
            data_type,
        } => with_graph(model, graph, |g| {
            if let Some(t) = pick::<TensorProto>(&mut g.initializer, init) {
                t.data_type = *data_type;
            }
        }),
        DropGraphOutput { graph, output } => {
            with_graph(model, graph, |g| remove(&mut g.output, output))
        }
        DropGraphInput { graph, input } => {
            with_graph(model, graph, |g| remove(&mut g.input, input))
        }
    }
}

type GraphInput = (Index, Vec<GraphEdit>);

fn graph_input() -> impl Strategy<Value = GraphInput> {
    (any::<Index>(), prop::collection::vec(graph_edit(), 1..6))
}

fn render_graph(input: &GraphInput) -> Vec<u8> {
    let seeds = graph_seeds();
    let mut model = seeds[input.0.index(seeds.len())].clone();
    for edit in &input.1 {
        apply_graph_edit(&mut model, edit);
    }
    model.encode_to_vec()
}

/// Converts the model with each of `options`: an error, or a graph whose every node has the
/// inputs and outputs its operator needs.
fn check_convert(bytes: &[u8], options: &[ConvertOptions]) -> Verdict {
    let Ok(model) = ModelProto::decode(bytes) else {
        return Ok(());
    };
    for o in options {
        let mut m = model.clone();
        if convert::convert(&mut m, o).is_ok() {
            let graph = m.graph.as_ref().ok_or("a converted model lost its graph")?;
            arity::check(graph).map_err(|e| format!("{o:?} wrote a malformed graph: {e}"))?;
        }
    }
    Ok(())
}

fn int8(format: QuantFormat) -> Option<QuantizeOptions> {
    Some(QuantizeOptions {
        format,
        ..QuantizeOptions::default()
    })
}

#[test]
fn convert_cleanup_dedupe() {
    fuzz::run("convert_cleanup_dedupe", graph_input(), render_graph, |b| {
        check_convert(b, &[ConvertOptions::default()])
    });
}

#[test]
fn convert_fold() {
    fuzz::run("convert_fold", graph_input(), render_graph, |b| {
        let fold = |loops, best_effort| ConvertOptions {
            loops,
            best_effort,
            ..ConvertOptions::default()
        };
        check_convert(
            b,
            &[fold(LoopMode::Fold, true), fold(LoopMode::Unfold, false)],
        )
    });
}

#[test]
fn convert_fuse() {
    fuzz::run("convert_fuse", graph_input(), render_graph, |b| {
        let fuse = |flavour| ConvertOptions {
            fuse: Some(flavour),
            ..ConvertOptions::default()
        };
        check_convert(b, &[fuse(FuseFlavour::Portable), fuse(FuseFlavour::Ort)])
    });
}

#[test]
fn convert_quantize() {
    fuzz::run("convert_quantize", graph_input(), render_graph, |b| {
        let quantize = |format| ConvertOptions {
            quantize: int8(format),
            ..ConvertOptions::default()
        };
        check_convert(
            b,
            &[quantize(QuantFormat::Portable), quantize(QuantFormat::Ort)],
        )
    });
}

#[test]
fn convert_fp16() {
    fuzz::run("convert_fp16", graph_input(), render_graph, |b| {
        let fp16 = ConvertOptions {
            float16: true,
            ..ConvertOptions::default()
        };
        check_convert(b, &[fp16])
    });
}

// ---------------------------------------------------------------------------------------------
// The runtime's text inputs

fn pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        let options = PipelineOptions {
            backend: BackendChoice::Tract(Default::default()),
            truncation: Truncation::Truncate,
            ..PipelineOptions::default()
        };
        Pipeline::load(&root().join("tests/fixtures/runtime/tiny-base"), &options).unwrap()
    })
}

/// Texts: the kinds of input a client sends by mistake or on purpose.
fn text() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "<pad>",
        "<unk>",
        " ",
        "\t",
        "\n",
        "\r\n",
        "\u{0}",
        "\u{7f}",
        "\u{200b}",
        "\u{feff}",
        "\u{202e}",
        "\u{fffd}",
        "e\u{301}",
        "\u{1f600}",
        "ﬁ",
        "İ",
        "ß",
    ]);
    prop_oneof![
        Just(String::new()),
        "[ \t\n\r]{1,8}",
        prop::collection::vec(special, 1..40).prop_map(|v| v.concat()),
        any::<String>(),
        "\\PC{0,64}",
        // Bytes cut anywhere, then repaired: U+FFFD where a character was split.
        prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        // Very long: far beyond max_position_embeddings, so truncation runs.
        ("[a-z ]{1,8}", 200usize..2000).prop_map(|(s, n)| s.repeat(n)),
    ]
}

fn render_texts(input: &(String, String)) -> Vec<u8> {
    // The two texts, NUL-separated (a NUL inside a text is kept as the first split only).
    let mut bytes = input.0.replace('\u{0}', "\u{1}").into_bytes();
    bytes.push(0);
    bytes.extend(input.1.as_bytes());
    bytes
}

fn check_texts(bytes: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(bytes);
    let (a, b) = text.split_once('\u{0}').unwrap_or((&text, ""));
    let p = pipeline();
    if let Ok(vectors) = p.embed(&[a, b], EmbedOptions::default()) {
        {
            let h = p.config().hidden_size;
            if vectors.len() != 2 || vectors.iter().any(|v| v.len() != h) {
                return Err(format!(
                    "2 texts gave {} vectors of {:?} values (hidden size {h})",
                    vectors.len(),
                    vectors.iter().map(Vec::len).collect::<Vec<_>>()
                ));
            }
        }
    }
    for truncation in [Truncation::Error, Truncation::Truncate] {
        for only_second in [false, true] {
            if let Ok(e) = p.encode_with(0, TextInput::Pair(a, b), truncation, only_second)
                && e.len() > p.max_length()
            {
                return Err(format!(
                    "{} tokens over the limit {}",
                    e.len(),
                    p.max_length()
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn runtime_text() {
    fuzz::run("runtime_text", (text(), text()), render_texts, check_texts);
}
