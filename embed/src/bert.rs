//! The BERT encoder (all-MiniLM, bge-small, e5-small and their kin) on `f32` weights, forward
//! only. A batch's sequences are packed end to end without padding: the linear layers see every
//! token of the batch as one matrix (large products, no work on pad tokens), attention runs per
//! sequence.

use std::collections::HashMap;

use crate::math::{self, Activation, View};

/// What `config.json` says of the architecture.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Config {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f32,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    #[serde(default)]
    pub model_type: Option<String>,
}

fn default_eps() -> f32 {
    1e-12
}

fn default_act() -> String {
    "gelu".into()
}

struct Linear {
    /// `out × in`, as PyTorch stores it.
    weight: Vec<f32>,
    bias: Vec<f32>,
    out: usize,
    inp: usize,
}

impl Linear {
    /// `y = x·Wᵀ + b` for `x` of `rows × in`.
    fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut y = vec![0.0; rows * self.out];
        math::matmul_transposed(
            View::new(x, rows, self.inp),
            View::new(&self.weight, self.out, self.inp),
            &mut y,
            self.out,
            false,
        );
        math::add_bias(&mut y, &self.bias);
        y
    }
}

struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

struct Layer {
    /// Query, key and value in one `3h × h` product.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    output: Linear,
    output_norm: Norm,
}

pub struct Bert {
    config: Config,
    activation: Activation,
    words: Vec<f32>,
    positions: Vec<f32>,
    token_type: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
}

/// A weight named in the model file, as `f32` with its shape.
pub type Tensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

impl Bert {
    /// The model from its configuration and weights (names as Hugging Face's `BertModel` saves
    /// them, with or without a `bert.` prefix).
    pub fn new(config: Config, mut tensors: Tensors) -> Result<Bert, String> {
        if let Some(kind) = config.model_type.as_deref() {
            if !matches!(kind, "bert" | "roberta" | "xlm-roberta") {
                return Err(format!(
                    "the model is a `{kind}`; the built-in embedder runs BERT-family models \
                     (all-MiniLM, bge, e5)"
                ));
            }
        }
        if config
            .position_embedding_type
            .as_deref()
            .is_some_and(|p| p != "absolute")
        {
            return Err("only absolute position embeddings are supported".into());
        }
        let activation = Activation::parse(&config.hidden_act)
            .ok_or_else(|| format!("unsupported activation `{}`", config.hidden_act))?;
        let h = config.hidden_size;
        if config.num_attention_heads == 0 || !h.is_multiple_of(config.num_attention_heads) {
            return Err("hidden_size is not a multiple of num_attention_heads".into());
        }
        let prefix = if tensors.contains_key("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else {
            ""
        };
        let rows_of = |name: &str| tensors.get(&format!("{prefix}{name}")).map(|(s, _)| s[0]);
        let vocab = rows_of("embeddings.word_embeddings.weight").ok_or_else(|| {
            format!("the weights lack `{prefix}embeddings.word_embeddings.weight`")
        })?;
        let types = rows_of("embeddings.token_type_embeddings.weight").unwrap_or(1);
        let mut take = |name: &str, shape: &[usize]| -> Result<Vec<f32>, String> {
            let full = format!("{prefix}{name}");
            let (got, data) = tensors
                .remove(&full)
                .ok_or_else(|| format!("the weights lack `{full}`"))?;
            if got != shape {
                return Err(format!("`{full}` has shape {got:?}, expected {shape:?}"));
            }
            Ok(data)
        };
        let words = take("embeddings.word_embeddings.weight", &[vocab, h])?;
        let positions = take(
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, h],
        )?;
        // Every token is of type 0 (one segment): only the first row is used.
        let mut token_type = take("embeddings.token_type_embeddings.weight", &[types, h])?;
        token_type.truncate(h);
        let mut norm = |name: &str| -> Result<Norm, String> {
            Ok(Norm {
                weight: take(&format!("{name}.weight"), &[h])?,
                bias: take(&format!("{name}.bias"), &[h])?,
            })
        };
        let embedding_norm = norm("embeddings.LayerNorm")?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let mut linear = |name: &str, out: usize, inp: usize| -> Result<Linear, String> {
                Ok(Linear {
                    weight: take(&format!("{p}.{name}.weight"), &[out, inp])?,
                    bias: take(&format!("{p}.{name}.bias"), &[out])?,
                    out,
                    inp,
                })
            };
            let q = linear("attention.self.query", h, h)?;
            let k = linear("attention.self.key", h, h)?;
            let v = linear("attention.self.value", h, h)?;
            let attention_out = linear("attention.output.dense", h, h)?;
            let intermediate = linear("intermediate.dense", config.intermediate_size, h)?;
            let output = linear("output.dense", h, config.intermediate_size)?;
            let mut norm = |name: &str| -> Result<Norm, String> {
                Ok(Norm {
                    weight: take(&format!("{p}.{name}.weight"), &[h])?,
                    bias: take(&format!("{p}.{name}.bias"), &[h])?,
                })
            };
            let attention_norm = norm("attention.output.LayerNorm")?;
            let output_norm = norm("output.LayerNorm")?;
            layers.push(Layer {
                qkv: Linear {
                    weight: [q.weight, k.weight, v.weight].concat(),
                    bias: [q.bias, k.bias, v.bias].concat(),
                    out: 3 * h,
                    inp: h,
                },
                attention_out,
                attention_norm,
                intermediate,
                output,
                output_norm,
            });
        }
        Ok(Bert {
            config,
            activation,
            words,
            positions,
            token_type,
            embedding_norm,
            layers,
        })
    }

    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    pub fn max_positions(&self) -> usize {
        self.config.max_position_embeddings
    }

    pub fn vocab_size(&self) -> usize {
        self.words.len() / self.config.hidden_size
    }

    /// The last hidden state of each sequence (`len × hidden`, tokens in order). Token ids must
    /// be below the vocabulary size and sequences no longer than the position table (the
    /// tokenizer truncates).
    pub fn forward(&self, sequences: &[Vec<u32>]) -> Vec<Vec<f32>> {
        let h = self.config.hidden_size;
        let lens: Vec<usize> = sequences.iter().map(Vec::len).collect();
        let total: usize = lens.iter().sum();
        let mut x = vec![0.0f32; total * h];
        let mut row = 0;
        for seq in sequences {
            for (pos, &id) in seq.iter().enumerate() {
                let out = &mut x[row * h..(row + 1) * h];
                let word = &self.words[id as usize * h..(id as usize + 1) * h];
                let position = &self.positions[pos * h..(pos + 1) * h];
                for (((o, w), p), t) in out.iter_mut().zip(word).zip(position).zip(&self.token_type)
                {
                    *o = w + p + t;
                }
                row += 1;
            }
        }
        let eps = self.config.layer_norm_eps;
        let norm = &self.embedding_norm;
        math::layer_norm(&mut x, None, &norm.weight, &norm.bias, eps);
        for layer in &self.layers {
            let context = self.attention(layer, &x, &lens);
            let mut attended = layer.attention_out.forward(&context, total);
            let n = &layer.attention_norm;
            math::layer_norm(&mut attended, Some(&x), &n.weight, &n.bias, eps);
            let mut inner = layer.intermediate.forward(&attended, total);
            self.activation.apply(&mut inner);
            let mut out = layer.output.forward(&inner, total);
            let n = &layer.output_norm;
            math::layer_norm(&mut out, Some(&attended), &n.weight, &n.bias, eps);
            x = out;
        }
        let mut result = Vec::with_capacity(sequences.len());
        let mut at = 0;
        for len in lens {
            result.push(x[at * h..(at + len) * h].to_vec());
            at += len;
        }
        result
    }

    /// Multi-head self-attention over each sequence in `x` (packed, `lens` long): the context
    /// vectors, `total × hidden`.
    fn attention(&self, layer: &Layer, x: &[f32], lens: &[usize]) -> Vec<f32> {
        let h = self.config.hidden_size;
        let heads = self.config.num_attention_heads;
        let d = h / heads;
        let total: usize = lens.iter().sum();
        let qkv = layer.qkv.forward(x, total);
        let mut context = vec![0.0f32; total * h];
        let scale = 1.0 / (d as f32).sqrt();
        let longest = lens.iter().copied().max().unwrap_or(0);
        let mut scores = vec![0.0f32; longest * longest];
        let mut start = 0;
        for &len in lens {
            let rows = &qkv[start * 3 * h..(start + len) * 3 * h];
            let all = View {
                data: rows,
                rows: len,
                cols: 3 * h,
                stride: 3 * h,
            };
            let out = &mut context[start * h..(start + len) * h];
            for head in 0..heads {
                let q = all.columns(head * d, d);
                let k = all.columns(h + head * d, d);
                let v = all.columns(2 * h + head * d, d);
                let s = &mut scores[..len * len];
                math::matmul_transposed(q, k, s, len, false);
                math::softmax_rows(s, len, scale);
                math::matmul(View::new(s, len, len), v, &mut out[head * d..], h);
            }
            start += len;
        }
        context
    }

    /// Multiply-adds ×2 of one forward pass over sequences of these lengths: the products that
    /// dominate its time (linear layers and attention), for reporting GFLOP/s.
    pub fn flops(&self, lens: &[usize]) -> f64 {
        let c = &self.config;
        let (h, i) = (c.hidden_size as f64, c.intermediate_size as f64);
        let tokens: f64 = lens.iter().map(|l| *l as f64).sum();
        let squares: f64 = lens.iter().map(|l| (*l as f64) * (*l as f64)).sum();
        let linear = tokens * (3.0 * h * h + h * h + 2.0 * h * i);
        let attention = 2.0 * squares * h;
        2.0 * c.num_hidden_layers as f64 * (linear + attention)
    }
}
