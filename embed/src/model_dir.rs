//! A sentence-embedding model on disk, laid out as sentence-transformers and the Hugging Face
//! Hub keep one: `config.json`, `tokenizer.json`, `model.safetensors`, and optionally
//! `modules.json` (which names the pooling directory and whether vectors are normalised),
//! `1_Pooling/config.json`, `sentence_bert_config.json` (the sequence length) and
//! `config_sentence_transformers.json` (query and passage prompts).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::bert::{Bert, Config, Tensors};

/// How token vectors become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    Mean,
    Cls,
    Max,
}

/// A loaded model: the encoder, its tokenizer and how it is to be used.
pub(crate) struct Loaded {
    pub bert: Bert,
    pub tokenizer: tokenizers::Tokenizer,
    /// The same tokenizer without truncation: counts the tokens of a whole text.
    pub counter: tokenizers::Tokenizer,
    pub pooling: Pooling,
    pub normalize: bool,
    /// Tokens per sequence, [CLS] and [SEP] included; longer text is truncated.
    pub max_tokens: usize,
    /// Text put before a query or a passage, as the model was trained (e5: `query: `).
    pub query_prompt: String,
    pub passage_prompt: String,
    /// `NAME@sha256:PREFIX` of the weights: vectors are stored under it, so new weights (a
    /// new revision, another model in the same directory) re-embed instead of mixing.
    pub identity: String,
}

/// Why a model directory cannot be used; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "no embedding model at {0}: fetch one with `berth models pull \
         sentence-transformers/all-MiniLM-L6-v2` (or point --embed-model-dir at a directory \
         holding config.json, tokenizer.json and model.safetensors)"
    )]
    Missing(PathBuf),
    #[error("the embedding model at {dir}: {problem}")]
    Unusable { dir: PathBuf, problem: String },
}

fn unusable(dir: &Path, problem: impl ToString) -> ModelError {
    ModelError::Unusable {
        dir: dir.to_path_buf(),
        problem: problem.to_string(),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(
    dir: &Path,
    name: &str,
) -> Result<Option<T>, ModelError> {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| unusable(dir, format!("{name} is not valid: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(unusable(dir, format!("cannot read {name}: {e}"))),
    }
}

#[derive(serde::Deserialize)]
struct Module {
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(serde::Deserialize, Default)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
}

#[derive(serde::Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

#[derive(serde::Deserialize, Default)]
struct SentenceTransformersConfig {
    #[serde(default)]
    prompts: std::collections::HashMap<String, String>,
}

/// Loads the model in `dir`; `name` is what it is called (its Hub id, or the directory name).
pub(crate) fn load(dir: &Path, name: &str) -> Result<Loaded, ModelError> {
    let weights_path = dir.join("model.safetensors");
    if !dir.join("config.json").is_file() || !weights_path.is_file() {
        return Err(ModelError::Missing(dir.to_path_buf()));
    }
    let config: Config =
        read_json(dir, "config.json")?.ok_or_else(|| ModelError::Missing(dir.into()))?;

    let modules: Vec<Module> = read_json(dir, "modules.json")?.unwrap_or_default();
    let pooling_dir = modules
        .iter()
        .find(|m| m.kind.ends_with("Pooling"))
        .map_or("1_Pooling".to_string(), |m| m.path.clone());
    let pooling = match read_json::<PoolingConfig>(dir, &format!("{pooling_dir}/config.json"))? {
        Some(p) if p.pooling_mode_cls_token => Pooling::Cls,
        Some(p) if p.pooling_mode_max_tokens && !p.pooling_mode_mean_tokens => Pooling::Max,
        _ => Pooling::Mean,
    };
    // Without modules.json (a plain Hugging Face model), normalise: Berth ranks by cosine.
    let normalize = modules.is_empty() || modules.iter().any(|m| m.kind.ends_with("Normalize"));
    let sbert: Option<SentenceBertConfig> = read_json(dir, "sentence_bert_config.json")?;
    let max_tokens = sbert
        .and_then(|s| s.max_seq_length)
        .unwrap_or(512)
        .min(config.max_position_embeddings);
    let st: SentenceTransformersConfig =
        read_json(dir, "config_sentence_transformers.json")?.unwrap_or_default();
    let prompt = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| st.prompts.get(*k).cloned())
            .unwrap_or_default()
    };
    let (query_prompt, passage_prompt) = (prompt(&["query"]), prompt(&["passage", "document"]));

    let bytes = std::fs::read(&weights_path)
        .map_err(|e| unusable(dir, format!("cannot read model.safetensors: {e}")))?;
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let tensors = read_tensors(&bytes).map_err(|e| unusable(dir, e))?;
    drop(bytes);
    let bert = Bert::new(config, tensors).map_err(|e| unusable(dir, e))?;

    let mut tokenizer = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json"))
        .map_err(|e| unusable(dir, format!("tokenizer.json: {e}")))?;
    // Each text is its own sequence (no padding: the encoder packs a batch), cut at the
    // model's length as sentence-transformers does.
    tokenizer.with_padding(None);
    let mut counter = tokenizer.clone();
    counter
        .with_truncation(None)
        .map_err(|e| unusable(dir, format!("tokenizer.json: {e}")))?;
    tokenizer
        .with_truncation(Some(tokenizers::TruncationParams {
            max_length: max_tokens,
            ..Default::default()
        }))
        .map_err(|e| unusable(dir, format!("tokenizer.json: {e}")))?;
    if tokenizer.get_vocab_size(true) > bert.vocab_size() {
        return Err(unusable(
            dir,
            "the tokenizer's vocabulary is larger than the model's: they do not belong together",
        ));
    }
    Ok(Loaded {
        bert,
        tokenizer,
        counter,
        pooling,
        normalize,
        max_tokens,
        query_prompt,
        passage_prompt,
        identity: format!("{name}@sha256:{hex}"),
    })
}

/// The tensors of a safetensors file as `f32` (F16 and BF16 weights are widened).
fn read_tensors(bytes: &[u8]) -> Result<Tensors, String> {
    let file = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| format!("model.safetensors is not a safetensors file: {e}"))?;
    let mut out = Tensors::new();
    for (name, view) in file.tensors() {
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            safetensors::Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            safetensors::Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            // Integer buffers (position ids) are not weights.
            _ => continue,
        };
        out.insert(name, (view.shape().to_vec(), values));
    }
    Ok(out)
}
