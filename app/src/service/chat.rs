//! Answering a question: retrieve passages, number them in the prompt, stream the model's
//! answer, and store it with structured citations. With no LLM, an extractive answer.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::chat::Speaker;
use crate::llm::ChatMessage;
use crate::service::retrieval::Hit;
use crate::store::MessageRow;

/// Where a statement in an answer comes from.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Citation {
    /// The source's number in the answer: `[n]`.
    pub n: usize,
    pub document_id: String,
    pub document_name: String,
    pub chunk_id: i64,
    /// Character offsets of the passage in the document's text.
    pub start: i64,
    pub end: i64,
    pub score: f64,
    pub text: String,
}

pub fn citations(hits: &[Hit]) -> Vec<Citation> {
    hits.iter()
        .enumerate()
        .map(|(i, h)| Citation {
            n: i + 1,
            document_id: h.chunk.document_id.clone(),
            document_name: h.chunk.document_name.clone(),
            chunk_id: h.chunk.id,
            start: h.chunk.start_offset,
            end: h.chunk.end_offset,
            score: h.score,
            text: h.chunk.text.clone(),
        })
        .collect()
}

const SYSTEM: &str = "You are Berth, an assistant that answers questions from the user's own \
documents. Use only the numbered sources below. After each statement, cite the sources it comes \
from as [1], [2]. If the sources do not contain the answer, say that you could not find it in \
the documents. Answer in the language of the question.";

/// The prompt: instructions with the numbered sources, the recent conversation, the question.
pub fn prompt(sources: &[Citation], history: &[MessageRow], question: &str) -> Vec<ChatMessage> {
    let mut system = format!("{SYSTEM}\n\nSources:\n");
    for s in sources {
        system.push_str(&format!("\n[{}] ({})\n{}\n", s.n, s.document_name, s.text));
    }
    if sources.is_empty() {
        system.push_str("\n(no matching passages were found)\n");
    }
    let mut messages = vec![ChatMessage {
        role: Speaker::System,
        content: system,
    }];
    // The last few turns give follow-up questions their context; older ones cost tokens.
    let recent = history.len().saturating_sub(6);
    for m in &history[recent..] {
        messages.push(ChatMessage {
            role: match Speaker::parse(&m.role) {
                Some(Speaker::Assistant) => Speaker::Assistant,
                _ => Speaker::User,
            },
            content: m.content.clone(),
        });
    }
    messages.push(ChatMessage {
        role: Speaker::User,
        content: question.to_string(),
    });
    messages
}

/// The sources an answer cites as `[n]`; all of them when it cites none explicitly.
pub fn cited(answer: &str, sources: &[Citation]) -> Vec<Citation> {
    let used: Vec<Citation> = sources
        .iter()
        .filter(|s| answer.contains(&format!("[{}]", s.n)))
        .cloned()
        .collect();
    if used.is_empty() {
        sources.to_vec()
    } else {
        used
    }
}

/// The answer when no LLM is configured: the best passages, each with its citation number.
pub fn extractive(sources: &[Citation]) -> String {
    if sources.is_empty() {
        return "No LLM is configured, and no passage in your documents matches the question."
            .into();
    }
    let mut out = String::from(
        "No LLM is configured, so this is an extractive answer: the passages that best match \
         your question.\n",
    );
    for s in sources.iter().take(3) {
        let excerpt: String = s.text.chars().take(600).collect();
        out.push_str(&format!(
            "\n[{}] {} — {}\n",
            s.n,
            s.document_name,
            excerpt.trim()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(n: usize) -> Citation {
        Citation {
            n,
            document_id: "d".into(),
            document_name: "doc.txt".into(),
            chunk_id: n as i64,
            start: 0,
            end: 4,
            score: 0.5,
            text: format!("passage {n}"),
        }
    }

    #[test]
    fn only_cited_sources_are_kept() {
        let sources = [source(1), source(2), source(3)];
        let kept = cited("Water boils at 100 °C [2], at sea level [3].", &sources);
        assert_eq!(kept.iter().map(|c| c.n).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(cited("No markers.", &sources).len(), 3);
    }

    #[test]
    fn the_prompt_numbers_sources_and_ends_with_the_question() {
        let p = prompt(&[source(1)], &[], "Why?");
        assert!(p[0].content.contains("[1] (doc.txt)\npassage 1"));
        assert_eq!(p.last().unwrap().content, "Why?");
    }
}
