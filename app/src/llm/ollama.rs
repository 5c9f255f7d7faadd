//! Ollama's API: `POST /api/embed`, and `POST /api/chat` streaming NDJSON records
//! (`{"message": {"content": ...}, "done": false}` ..., then one with `"done": true`).

use std::time::Instant;

use serde_json::json;
use tokio::sync::mpsc;

use super::{ChatMessage, ChatStats, Client, Lines, LlmError};

pub(super) async fn embed(client: &Client, texts: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
    let body = json!({ "model": client.model(), "input": texts });
    let resp = client.send("/api/embed", &body).await?;
    #[derive(serde::Deserialize)]
    struct Embedded {
        embeddings: Vec<Vec<f32>>,
    }
    resp.json::<Embedded>()
        .await
        .map(|e| e.embeddings)
        .map_err(|e| LlmError::Refused(format!("unreadable /api/embed answer: {e}")))
}

pub(super) async fn chat(
    client: &Client,
    messages: &[ChatMessage],
    tokens: &mpsc::Sender<String>,
) -> Result<ChatStats, LlmError> {
    let mut body = json!({ "model": client.chat_model(), "messages": messages, "stream": true });
    if let Some(s) = client.sampling {
        body["options"] = json!({ "temperature": s.temperature, "num_predict": s.max_tokens });
    }
    let started = Instant::now();
    let resp = client.send("/api/chat", &body).await?;
    let mut lines = Lines::new(resp, client.timeout);
    let mut stats = ChatStats::default();
    loop {
        let line = match lines.next().await {
            Ok(Some(line)) => line,
            Ok(None) => return Err(LlmError::Stream("the stream ended before `done`".into())),
            Err(e) => return Err(LlmError::Stream(e)),
        };
        if line.is_empty() {
            continue;
        }
        let record: serde_json::Value = serde_json::from_str(&line)
            .map_err(|_| LlmError::Stream(format!("not a JSON record: {line:.120}")))?;
        if let Some(error) = record.get("error") {
            return Err(LlmError::Stream(
                error.as_str().unwrap_or("unknown error").to_string(),
            ));
        }
        if let Some(text) = record["message"]["content"].as_str() {
            if !text.is_empty() {
                stats.tokens += 1;
                tokens
                    .send(text.to_string())
                    .await
                    .map_err(|_| LlmError::Cancelled)?;
            }
        }
        if record["done"].as_bool() == Some(true) {
            // Ollama counts generated tokens itself; prefer its figures when present.
            if let Some(n) = record["eval_count"].as_u64() {
                stats.tokens = n;
            }
            stats.generation_time = match record["eval_duration"].as_u64() {
                Some(ns) => std::time::Duration::from_nanos(ns),
                None => started.elapsed(),
            };
            return Ok(stats);
        }
    }
}
