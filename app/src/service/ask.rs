//! Asking a question in a conversation: the scope (its collections still readable), retrieval,
//! the question stored, then the answer (from the LLM, or extractive without one) as a stream
//! of [`Progress`], stored with the citations it uses. The HTTP layer turns the stream into
//! Server-Sent Events; closing it stops generation.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::domain::accounts::now_ms;
use crate::domain::chat::{AnswerMode, Speaker};
use crate::llm::{self, LlmError};
use crate::metrics::Metrics;
use crate::service::access::{self, AccessError};
use crate::service::chat::{self, Citation};
use crate::service::retrieval::Retriever;
use crate::store::{MessageRow, Store};

/// Longest question, in characters.
pub const MAX_QUESTION_CHARS: usize = 8000;

/// What the chat service needs; cheap to clone (the generation runs in a task of its own).
#[derive(Clone)]
pub struct Chat {
    pub store: Store,
    pub retriever: Arc<Retriever>,
    /// None: extractive answers.
    pub llm: Option<llm::Client>,
    pub metrics: Arc<Metrics>,
    /// Passages retrieved per question.
    pub retrieval_k: usize,
}

/// The answer as stored.
#[derive(Debug, Clone)]
pub struct StoredAnswer {
    pub id: i64,
    pub content: String,
    pub mode: AnswerMode,
    pub citations: Vec<Citation>,
    pub created_at: i64,
}

/// What the generation reports, in order: tokens, then `Done` or `Failed`.
#[derive(Debug)]
pub enum Progress {
    Token(String),
    Done(StoredAnswer),
    Failed(LlmError),
}

/// An answer under way: the numbered passages it draws on, its first report (already
/// received, so that an unreachable LLM is an error rather than a broken stream) and the rest.
pub struct Answering {
    pub sources: Vec<Citation>,
    pub first: Option<Progress>,
    pub rest: mpsc::Receiver<Progress>,
}

#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    /// The LLM could not start the answer.
    #[error(transparent)]
    Llm(LlmError),
}

impl Chat {
    /// Asks `question` in `user_id`'s conversation `conversation_id`.
    pub async fn ask(
        &self,
        user_id: &str,
        conversation_id: &str,
        question: &str,
    ) -> Result<Answering, AskError> {
        let conversation = self
            .store
            .conversation(conversation_id, user_id)
            .await?
            .ok_or_else(|| {
                AccessError::NotFound(format!("no conversation {conversation_id} of yours"))
            })?;
        let question = question.trim().to_string();
        if question.is_empty() || question.chars().count() > MAX_QUESTION_CHARS {
            return Err(AskError::Invalid(format!(
                "the question must have 1 to {MAX_QUESTION_CHARS} characters"
            )));
        }
        // Chosen documents, when there are any, are the scope; otherwise its collections are.
        let documents: Vec<String> =
            serde_json::from_str(&conversation.document_ids).unwrap_or_default();
        let hits = if documents.is_empty() {
            let asked: Vec<String> =
                serde_json::from_str(&conversation.collection_ids).unwrap_or_default();
            let collections = access::conversation_scope(&self.store, user_id, &asked).await?;
            self.retriever
                .sources(&question, &collections, self.retrieval_k)
                .await?
        } else {
            let readable = access::conversation_documents(&self.store, user_id, &documents).await?;
            self.retriever
                .sources_in_documents(&question, &readable, self.retrieval_k)
                .await?
        };
        let history = self.store.messages(conversation_id).await?;
        let sources = chat::citations(&hits);
        self.store
            .insert_message(
                conversation_id,
                Speaker::User.as_str(),
                &question,
                None,
                "[]",
                now_ms(),
            )
            .await?;
        if history.is_empty() && conversation.title == "New conversation" {
            let title: String = question.chars().take(80).collect();
            self.store
                .set_conversation_title(conversation_id, &title)
                .await?;
        }

        let (events, mut rest) = mpsc::channel::<Progress>(64);
        let task = self.clone();
        let task_sources = sources.clone();
        let conversation_id = conversation_id.to_string();
        tokio::spawn(async move {
            let result = task
                .generate(
                    &conversation_id,
                    &task_sources,
                    &history,
                    &question,
                    &events,
                )
                .await;
            if let Err(e) = result {
                let _ = events.send(Progress::Failed(e)).await;
            }
        });
        let first = rest.recv().await;
        if let Some(Progress::Failed(e)) = first {
            return Err(AskError::Llm(e));
        }
        Ok(Answering {
            sources,
            first,
            rest,
        })
    }

    /// Produces the answer (from the LLM, or extractive), stores it, and reports progress.
    async fn generate(
        &self,
        conversation_id: &str,
        sources: &[Citation],
        history: &[MessageRow],
        question: &str,
        events: &mpsc::Sender<Progress>,
    ) -> Result<(), LlmError> {
        let (answer, mode, citations) = match &self.llm {
            None => {
                let answer = chat::extractive(question, sources);
                events
                    .send(Progress::Token(answer.clone()))
                    .await
                    .map_err(|_| LlmError::Cancelled)?;
                (answer, AnswerMode::Extractive, sources.to_vec())
            }
            Some(llm) => {
                let answer = self
                    .generated(llm, sources, history, question, events)
                    .await?;
                let citations = chat::cited(&answer, sources);
                (answer, AnswerMode::Llm, citations)
            }
        };
        let citations_json = serde_json::to_string(&citations).expect("citations serialise");
        let now = now_ms();
        let id = self
            .store
            .insert_message(
                conversation_id,
                Speaker::Assistant.as_str(),
                &answer,
                Some(mode.as_str()),
                &citations_json,
                now,
            )
            .await
            .map_err(|e| LlmError::Stream(format!("storing the answer failed: {e}")))?;
        let stored = StoredAnswer {
            id,
            content: answer,
            mode,
            citations,
            created_at: now,
        };
        let _ = events.send(Progress::Done(stored)).await;
        Ok(())
    }

    /// The LLM's answer, each token forwarded as it comes; counted in the metrics.
    async fn generated(
        &self,
        llm: &llm::Client,
        sources: &[Citation],
        history: &[MessageRow],
        question: &str,
        events: &mpsc::Sender<Progress>,
    ) -> Result<String, LlmError> {
        let _t = self.metrics.stage("generate");
        let messages = chat::prompt(sources, history, question);
        let (tokens_tx, mut tokens_rx) = mpsc::channel::<String>(64);
        let started = Instant::now();
        let forward = async {
            let mut answer = String::new();
            while let Some(token) = tokens_rx.recv().await {
                answer.push_str(&token);
                if events.send(Progress::Token(token)).await.is_err() {
                    // The client left: dropping the receiver cancels the generation.
                    return None;
                }
            }
            Some(answer)
        };
        let (stats, answer) = tokio::join!(
            async move {
                // The sender goes with the generation, so `forward` ends when it does.
                let tx = tokens_tx;
                llm.chat(&messages, &tx).await
            },
            forward
        );
        let stats = stats?;
        let answer = answer.ok_or(LlmError::Cancelled)?;
        self.metrics.llm_tokens.inc_by(stats.tokens);
        // Ollama reports its own generation time; otherwise the wall time stands in.
        let secs = if stats.generation_time.is_zero() {
            started.elapsed().as_secs_f64()
        } else {
            stats.generation_time.as_secs_f64()
        };
        if stats.tokens > 0 {
            self.metrics
                .tokens_per_second
                .observe(stats.tokens as f64 / secs.max(1e-3));
        }
        Ok(answer)
    }
}
