//! The OpenAI-compatible API: `POST /embeddings`, and `POST /chat/completions` with
//! `stream: true` (Server-Sent Events: `data: {...}` lines, then `data: [DONE]`).

use std::time::Instant;

use serde_json::json;
use tokio::sync::mpsc;

use super::{ChatMessage, ChatStats, Client, Lines, LlmError};

pub(super) async fn embed(client: &Client, texts: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
    let body = json!({ "model": client.model(), "input": texts });
    let resp = client.send("/embeddings", &body).await?;
    #[derive(serde::Deserialize)]
    struct Item {
        index: usize,
        embedding: Vec<f32>,
    }
    #[derive(serde::Deserialize)]
    struct Embedded {
        data: Vec<Item>,
    }
    let mut data = resp
        .json::<Embedded>()
        .await
        .map_err(|e| LlmError::Refused(format!("unreadable /embeddings answer: {e}")))?
        .data;
    data.sort_by_key(|i| i.index);
    Ok(data.into_iter().map(|i| i.embedding).collect())
}

pub(super) async fn chat(
    client: &Client,
    messages: &[ChatMessage],
    tokens: &mpsc::Sender<String>,
) -> Result<ChatStats, LlmError> {
    let mut body = json!({ "model": client.chat_model(), "messages": messages, "stream": true });
    if let Some(s) = client.sampling {
        body["temperature"] = json!(s.temperature);
        body["max_tokens"] = json!(s.max_tokens);
    }
    let started = Instant::now();
    let resp = client.send("/chat/completions", &body).await?;
    let mut lines = Lines::new(resp, client.timeout);
    let mut stats = ChatStats::default();
    loop {
        let line = match lines.next().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => return Err(LlmError::Stream(e)),
        };
        let Some(data) = line.strip_prefix("data:").map(str::trim) else {
            continue; // comments, `event:` lines, blank separators
        };
        if data == "[DONE]" {
            break;
        }
        let record: serde_json::Value = serde_json::from_str(data)
            .map_err(|_| LlmError::Stream(format!("not a JSON event: {data:.120}")))?;
        if let Some(error) = record.get("error") {
            let message = error["message"]
                .as_str()
                .or(error.as_str())
                .unwrap_or("unknown error");
            return Err(LlmError::Stream(message.to_string()));
        }
        if let Some(text) = record["choices"][0]["delta"]["content"].as_str() {
            if !text.is_empty() {
                stats.tokens += 1;
                tokens
                    .send(text.to_string())
                    .await
                    .map_err(|_| LlmError::Cancelled)?;
            }
        }
    }
    stats.generation_time = started.elapsed();
    Ok(stats)
}
