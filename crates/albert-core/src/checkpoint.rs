//! Checkpoints in the Hugging Face layout: a directory with `config.json` and `model.safetensors`.
//!
//! Reading accepts what HF writes for `AlbertModel` (names without the `albert.` prefix),
//! `AlbertForMaskedLM`, `AlbertForPreTraining`, `AlbertForSequenceClassification`,
//! `AlbertForTokenClassification`, `AlbertForQuestionAnswering`, and older files that still hold
//! the tied MLM decoder or the `position_ids` buffer. Every tensor is checked against the
//! inventory of [`crate::params`]: a missing, unexpected or mis-shaped tensor is an error that
//! names it. Writing uses the canonical names, F32, and replaces files atomically.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::Dtype;

use crate::config::AlbertConfig;
use crate::error::{AlbertError, Result};
use crate::params::{self, Parts, SentenceHead, names};

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The tokenizer beside the weights in a model directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// The ONNX graph in an exported model directory (`albert-export` writes it beside the config and
/// the tokenizer; `albert-runtime` loads it).
pub const MODEL_FILE: &str = "model.onnx";

/// The files a model directory carries beside its weights that the exporter and the converter
/// copy into theirs — `config.json` and, when present, `tokenizer.json` — each loaded first, the
/// tokenizer checked against the config's vocabulary, so a broken one is an error naming it here
/// rather than when the copy is loaded. Returns the names present, in copy order (config first).
pub fn checked_companions(dir: &Path) -> Result<Vec<&'static str>> {
    let mut present = Vec::new();
    let config = dir.join(CONFIG_FILE);
    let config = if config.exists() {
        present.push(CONFIG_FILE);
        Some(AlbertConfig::from_file(&config)?)
    } else {
        None
    };
    let tokenizer = dir.join(TOKENIZER_FILE);
    if tokenizer.exists() {
        match &config {
            Some(config) => crate::tokenizer::load_for(&tokenizer, config.vocab_size)?,
            None => crate::tokenizer::load(&tokenizer)?,
        };
        present.push(TOKENIZER_FILE);
    }
    Ok(present)
}

/// A dense f32 tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorF32 {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl TensorF32 {
    pub fn new(name: &str, shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(AlbertError::TensorLength {
                name: name.to_string(),
                shape,
                expected,
                found: data.len(),
            });
        }
        Ok(TensorF32 { shape, data })
    }

    fn to_le_bytes(&self) -> Vec<u8> {
        self.data.iter().flat_map(|v| v.to_le_bytes()).collect()
    }
}

/// A model: its config, which heads it has, and its tensors under canonical names.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub config: AlbertConfig,
    pub parts: Parts,
    pub tensors: BTreeMap<String, TensorF32>,
}

/// Buffers that HF has written into checkpoints at some version; not parameters.
const IGNORED_BUFFERS: &[&str] = &[
    "albert.embeddings.position_ids",
    "albert.embeddings.token_type_ids",
];

/// `AlbertModel.save_pretrained` writes the base model without the `albert.` prefix.
fn canonical_name(name: &str) -> String {
    let bare_base = ["embeddings.", "encoder.", "pooler."];
    if bare_base.iter().any(|p| name.starts_with(p)) {
        format!("{}{name}", names::BASE_PREFIX)
    } else {
        name.to_string()
    }
}

/// Which heads a set of (canonical) tensor names holds.
pub fn detect_parts<'a>(names_iter: impl IntoIterator<Item = &'a str>) -> Parts {
    let mut parts = Parts::default();
    for name in names_iter {
        if name.starts_with("albert.pooler.") {
            parts.pooler = true;
        } else if name.starts_with("predictions.") {
            parts.mlm = true;
        } else if name.starts_with("sop_classifier.") {
            parts.sentence = Some(SentenceHead::Sop);
        } else if name.starts_with("nsp_classifier.") {
            parts.sentence = Some(SentenceHead::Nsp);
        } else if name.starts_with("classifier.") {
            parts.classifier = true;
        } else if name.starts_with("qa_outputs.") {
            parts.qa = true;
        }
    }
    parts
}

fn to_f32(path: &Path, name: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>> {
    let out = match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        other => {
            return Err(AlbertError::TensorDtype {
                path: path.to_path_buf(),
                name: name.to_string(),
                found: format!("{other:?}"),
            });
        }
    };
    Ok(out)
}

/// Reads every tensor of a safetensors file as f32, under canonical names. The file is read tensor
/// by tensor (header first), so memory peaks at the f32 tensors plus one tensor's bytes, not twice
/// the file: xxlarge-sized checkpoints fit.
pub fn read_safetensors(path: &Path) -> Result<BTreeMap<String, TensorF32>> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |e| AlbertError::io(path, e);
    let bad = |message: String| AlbertError::Safetensors {
        path: path.to_path_buf(),
        message,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes)
        .map_err(|_| bad("shorter than the 8-byte header length".into()))?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > 100_000_000 || 8 + header_len > file_len {
        return Err(bad(format!(
            "header length {header_len} does not fit a {file_len}-byte file"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(io)?;
    let metadata: safetensors::tensor::Metadata =
        serde_json::from_slice(&header).map_err(|e| bad(format!("header: {e}")))?;
    let data_start = 8 + header_len;
    let mut entries: Vec<_> = metadata.tensors().into_iter().collect();
    entries.sort_by_key(|(_, info)| info.data_offsets.0);
    if let Some((_, last)) = entries.last()
        && data_start + last.data_offsets.1 as u64 != file_len
    {
        return Err(bad(format!(
            "the header describes {} data bytes, the file holds {}",
            last.data_offsets.1,
            file_len - data_start
        )));
    }
    let mut tensors = BTreeMap::new();
    let mut bytes = Vec::new();
    for (name, info) in entries {
        let canonical = canonical_name(&name);
        if IGNORED_BUFFERS.contains(&canonical.as_str()) {
            continue;
        }
        let (start, end) = info.data_offsets;
        let numel: usize = info.shape.iter().product();
        if (end - start) * 8 != numel * info.dtype.bitsize() {
            return Err(bad(format!(
                "tensor `{name}`: {} bytes do not hold shape {:?} of {:?}",
                end - start,
                info.shape,
                info.dtype
            )));
        }
        bytes.resize(end - start, 0);
        file.seek(SeekFrom::Start(data_start + start as u64))
            .map_err(io)?;
        file.read_exact(&mut bytes).map_err(io)?;
        let data = to_f32(path, &name, info.dtype, &bytes)?;
        tensors.insert(
            canonical,
            TensorF32 {
                shape: info.shape.clone(),
                data,
            },
        );
    }
    Ok(tensors)
}

/// A tensor as safetensors writes it: little-endian f32 bytes, made one tensor at a time while the
/// file is written, so writing never holds a second copy of the model.
struct F32View<'a>(&'a TensorF32);

impl safetensors::View for F32View<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        &self.0.shape
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Owned(self.0.to_le_bytes())
    }

    fn data_len(&self) -> usize {
        self.0.data.len() * 4
    }
}

/// Checks tensors against the inventory of `config` and `parts`. The tied decoder, if a file holds
/// it, must have the shape of what it is tied to; it is then dropped (HF re-ties it on load).
pub fn validate_tensors(
    path: &Path,
    config: &AlbertConfig,
    parts: &Parts,
    tensors: &mut BTreeMap<String, TensorF32>,
) -> Result<()> {
    let (v, e) = (config.vocab_size, config.embedding_size);
    for (tied, want) in [
        (names::MLM_DECODER_WEIGHT, &[v, e][..]),
        (names::MLM_DECODER_BIAS, &[v][..]),
    ] {
        if let Some(t) = tensors.remove(tied)
            && t.shape != want
        {
            return Err(AlbertError::TensorShape {
                path: path.to_path_buf(),
                name: tied.to_string(),
                expected: want.to_vec(),
                found: t.shape,
            });
        }
    }

    check_against_inventory(path, config, parts, tensors)
}

/// Checks that `tensors` are exactly the inventory of `config` and `parts`, with the right shapes.
pub fn check_against_inventory(
    path: &Path,
    config: &AlbertConfig,
    parts: &Parts,
    tensors: &BTreeMap<String, TensorF32>,
) -> Result<()> {
    let inventory = params::inventory(config, parts);
    let expected: HashMap<&str, &[usize]> = inventory
        .iter()
        .map(|s| (s.name.as_str(), s.shape.as_slice()))
        .collect();
    let layout = format!(
        "config: sharing={}, num_hidden_layers={}, num_hidden_groups={}, inner_group_num={}, heads: {}",
        config.sharing,
        config.num_hidden_layers,
        config.num_hidden_groups,
        config.inner_group_num,
        parts.describe()
    );
    for (name, tensor) in tensors.iter() {
        match expected.get(name.as_str()) {
            None => {
                return Err(AlbertError::UnexpectedTensor {
                    path: path.to_path_buf(),
                    name: name.clone(),
                    found: tensor.shape.clone(),
                    hint: format!("not a parameter of this model; {layout}"),
                });
            }
            Some(shape) if *shape != tensor.shape.as_slice() => {
                return Err(AlbertError::TensorShape {
                    path: path.to_path_buf(),
                    name: name.clone(),
                    expected: shape.to_vec(),
                    found: tensor.shape.clone(),
                });
            }
            Some(_) => {}
        }
    }
    for spec in &inventory {
        if !tensors.contains_key(&spec.name) {
            return Err(AlbertError::MissingTensor {
                path: path.to_path_buf(),
                name: spec.name.clone(),
                expected: spec.shape.clone(),
                hint: format!("; {layout}"),
            });
        }
    }
    Ok(())
}

impl Checkpoint {
    /// A checkpoint of new weights; `architectures` in the config is set to the HF class the heads
    /// make, when they make exactly one, so HF `AutoModel` classes pick the right one.
    pub fn new(
        mut config: AlbertConfig,
        parts: Parts,
        tensors: BTreeMap<String, TensorF32>,
    ) -> Self {
        if let Some(head) = parts.head() {
            config.extra.insert(
                "architectures".to_string(),
                serde_json::Value::Array(vec![head.hf_architecture().into()]),
            );
        }
        Checkpoint {
            config,
            parts,
            tensors,
        }
    }

    /// Reads `config.json` and `model.safetensors` from a model directory; the heads are those the
    /// weights hold.
    pub fn read_dir(dir: &Path) -> Result<Self> {
        let config = AlbertConfig::from_file(&dir.join(CONFIG_FILE))?;
        let weights = dir.join(WEIGHTS_FILE);
        let mut tensors = read_safetensors(&weights)?;
        let parts = detect_parts(tensors.keys().map(String::as_str));
        validate_tensors(&weights, &config, &parts, &mut tensors)?;
        Ok(Checkpoint {
            config,
            parts,
            tensors,
        })
    }

    /// Validates, then writes `config.json` and `model.safetensors`, each atomically. The directory
    /// is created.
    pub fn write_dir(&self, dir: &Path) -> Result<()> {
        let weights = dir.join(WEIGHTS_FILE);
        self.config.validate()?;
        let tensors = &self.tensors;
        check_against_inventory(&weights, &self.config, &self.parts, tensors)?;
        std::fs::create_dir_all(dir).map_err(|e| AlbertError::io(dir, e))?;

        // HF refuses safetensors files whose metadata lacks `format`.
        let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
        let views = tensors.iter().map(|(n, t)| (n.as_str(), F32View(t)));
        crate::fsutil::write_atomic_with(&weights, |tmp| {
            safetensors::serialize_to_file(views, Some(metadata), tmp).map_err(|e| {
                AlbertError::Safetensors {
                    path: weights.clone(),
                    message: e.to_string(),
                }
            })
        })?;
        self.config.write_file(&dir.join(CONFIG_FILE))
    }

    /// A randomly initialized checkpoint, as HF `_init_weights` initializes (normal(0,
    /// `initializer_range`) weights, zero biases, unit LayerNorm scales, zero padding row),
    /// deterministic for a seed. For tests, benchmarks and speed measurements.
    pub fn random(config: &AlbertConfig, parts: Parts, seed: u64) -> Result<Self> {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        config.validate()?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let normal = Normal::new(0.0f32, config.initializer_range as f32).map_err(|e| {
            AlbertError::InvalidConfig {
                field: "initializer_range".into(),
                expected: "a finite, non-negative standard deviation".into(),
                found: e.to_string(),
            }
        })?;
        let mut tensors = BTreeMap::new();
        for spec in params::inventory(config, &parts) {
            let n = spec.numel();
            let mut data: Vec<f32> = match spec.init {
                params::Init::Normal => (0..n).map(|_| normal.sample(&mut rng)).collect(),
                params::Init::Zeros => vec![0.0; n],
                params::Init::Ones => vec![1.0; n],
            };
            if spec.name == names::WORD_EMBEDDINGS
                && let Some(pad) = config.pad_token_id
            {
                let e = spec.shape[1];
                data[pad as usize * e..(pad as usize + 1) * e].fill(0.0);
            }
            tensors.insert(
                spec.name.clone(),
                TensorF32::new(&spec.name, spec.shape, data)?,
            );
        }
        Ok(Checkpoint::new(config.clone(), parts, tensors))
    }

    /// Adds normal(0, `std`) noise to every tensor, so that LayerNorm scales and biases differ from
    /// their 1/0 initialization: a swapped or mis-named tensor then changes the outputs.
    pub fn perturbed(mut self, seed: u64, std: f32) -> Self {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        if let Ok(normal) = Normal::new(0.0f32, std) {
            for tensor in self.tensors.values_mut() {
                tensor
                    .data
                    .iter_mut()
                    .for_each(|v| *v += normal.sample(&mut rng));
            }
        }
        self
    }

    /// The tensor under a canonical name.
    pub fn tensor(&self, name: &str) -> Option<&TensorF32> {
        self.tensors.get(name)
    }

    /// The weights file of a model directory (for messages).
    pub fn weights_path(dir: &Path) -> PathBuf {
        dir.join(WEIGHTS_FILE)
    }
}
