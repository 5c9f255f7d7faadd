//! Embeddings: from the built-in model (in-process, the default when a model is present) or
//! from a model server over Ollama's or the OpenAI-compatible API.

mod builtin;

use std::sync::Arc;

use crate::domain::settings::{Api, Embedding};
use crate::llm::{self, LlmError};

pub use berth_embed::ModelError;
pub use builtin::Builtin;

/// Counts tokens as the built-in model reads a passage.
#[derive(Clone)]
pub struct PassageTokens {
    builtin: Arc<Builtin>,
    /// Tokens of a passage the model reads; the rest is cut.
    pub max: usize,
}

impl PassageTokens {
    pub fn count(&self, text: &str) -> usize {
        self.builtin.model().count_tokens(text)
    }
}

#[derive(Clone)]
pub enum Embedder {
    Server(llm::Client),
    Builtin(Arc<Builtin>),
}

impl Embedder {
    /// The configured embedder; the built-in model is loaded here (blocking).
    pub fn open(
        settings: &Embedding,
        timeout: std::time::Duration,
        http: &reqwest::Client,
    ) -> Result<Embedder, ModelError> {
        Ok(match settings {
            Embedding::Server(endpoint) => {
                Embedder::Server(llm::Client::new(endpoint.clone(), timeout, http.clone()))
            }
            Embedding::Builtin(m) => {
                Embedder::Builtin(Arc::new(Builtin::load(&m.dir, &m.name, m.threads)?))
            }
        })
    }

    /// What vectors are stored under: the server's model name, or the built-in model's name
    /// and weights' hash. A change re-embeds; vectors of two models never mix.
    pub fn model(&self) -> &str {
        match self {
            Embedder::Server(c) => c.model(),
            Embedder::Builtin(b) => b.model().identity(),
        }
    }

    /// The built-in model's tokenizer and how many tokens of a passage it reads, so chunks
    /// can be cut to fit; a model server does not tell.
    pub fn passage_tokens(&self) -> Option<PassageTokens> {
        match self {
            Embedder::Server(_) => None,
            Embedder::Builtin(b) => Some(PassageTokens {
                // [CLS] and [SEP] take two of them.
                max: b.model().max_tokens().saturating_sub(2),
                builtin: b.clone(),
            }),
        }
    }

    /// `builtin`, `ollama` or `openai`: for status pages.
    pub fn provider(&self) -> &'static str {
        match self {
            Embedder::Server(c) => match c.api() {
                Api::Ollama => "ollama",
                Api::OpenAi => "openai",
            },
            Embedder::Builtin(_) => "builtin",
        }
    }

    /// Whether it can embed now (a model server may be down; the built-in model is loaded).
    pub async fn ping(&self) -> Result<(), String> {
        match self {
            Embedder::Server(c) => c.ping().await,
            Embedder::Builtin(_) => Ok(()),
        }
    }

    /// Passages, one vector each, in order.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        match self {
            Embedder::Server(c) => c.embed(texts).await,
            Embedder::Builtin(b) => b.embed_passages(texts).await.map_err(LlmError::Refused),
        }
    }

    /// A search query (some models embed queries with a prompt of their own).
    pub async fn embed_query(&self, query: &str) -> Result<Vec<f32>, LlmError> {
        match self {
            Embedder::Server(c) => c
                .embed(&[query.to_string()])
                .await
                .map(|mut v| v.pop().unwrap_or_default()),
            Embedder::Builtin(b) => b.embed_query(query).await.map_err(LlmError::Refused),
        }
    }
}
