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
    /// The document's title and the headings above the passage ("qemu-img › convert"); empty
    /// for passages indexed before Berth kept it.
    #[serde(default)]
    pub section: String,
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
            section: h.chunk.context.clone(),
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
        // The section tells the model what a passage is about when its text does not say.
        let place = if s.section.is_empty() {
            &s.document_name
        } else {
            &s.section
        };
        system.push_str(&format!("\n[{}] ({})\n{}\n", s.n, place, s.text));
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

/// How many sentences an extractive answer gives.
const EXTRACTED_SENTENCES: usize = 3;

/// The answer when no LLM is configured: the sentences of the sources that share the most of the
/// question's words, each cited, in the sources' order (best source first) — not whole passages,
/// whose answering line may be their last. When no sentence shares a word (a search that
/// matched by meaning only), the best source's first sentences.
pub fn extractive(question: &str, sources: &[Citation]) -> String {
    if sources.is_empty() {
        return "No LLM is configured, and no passage in your documents matches the question."
            .into();
    }
    let wanted: Vec<String> = crate::service::retrieval::terms(question)
        .iter()
        .map(|t| stem(t))
        .collect();
    // (score, source index, sentence index, sentence, source number)
    let mut scored: Vec<(usize, usize, usize, String, usize)> = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        for (j, sentence) in sentences(&source.text).into_iter().enumerate() {
            let mut found: Vec<String> = sentence
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(|w| stem(&w.to_lowercase()))
                .filter(|w| wanted.contains(w))
                .collect();
            found.sort();
            found.dedup();
            scored.push((found.len(), i, j, sentence, source.n));
        }
    }
    let best = scored.iter().map(|s| s.0).max().unwrap_or(0);
    let mut chosen: Vec<&(usize, usize, usize, String, usize)> = if best == 0 {
        scored
            .iter()
            .filter(|s| s.1 == 0)
            .take(EXTRACTED_SENTENCES)
            .collect()
    } else {
        // Most shared words first; a better-ranked source wins a tie.
        let mut by_score: Vec<_> = scored.iter().filter(|s| s.0 > 0).collect();
        by_score.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        by_score.truncate(EXTRACTED_SENTENCES);
        by_score
    };
    chosen.sort_by(|a, b| a.1.cmp(&b.1).then(a.2.cmp(&b.2)));
    let mut out = String::from(
        "No LLM is configured, so this is an extractive answer: the sentences of your documents \
         that best match your question.\n",
    );
    for (_, _, _, sentence, n) in chosen {
        out.push_str(&format!("\n{sentence} [{n}]\n"));
    }
    out
}

/// A passage's sentences: split after `.`, `?` or `!` before a space, and at blank lines and
/// line breaks (headings, list items); whitespace collapsed, fragments of one word dropped.
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let mut current = String::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            current.push(c);
            if matches!(c, '.' | '?' | '!') && chars.peek().is_some_and(|n| n.is_whitespace()) {
                out.push(std::mem::take(&mut current));
            }
        }
        out.push(current);
    }
    out.into_iter()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| s.split(' ').count() > 1)
        .collect()
}

/// A word without the commonest English endings, so "days" meets "day" and "renting" "rent".
fn stem(word: &str) -> String {
    for suffix in ["ing", "ed", "es", "s"] {
        if let Some(root) = word.strip_suffix(suffix) {
            if root.chars().count() >= 3 {
                return root.to_string();
            }
        }
    }
    word.to_string()
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
            section: String::new(),
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
    fn an_extractive_answer_is_the_sentences_that_answer_each_cited() {
        let mut first = source(1);
        first.text = "Office hours\n\nThe office opens at 8. It closes at 6 in the evening.".into();
        let mut second = source(2);
        second.text = "Holidays\n\nEvery employee has 28 days of paid vacation per year, plus \
                       public holidays. Unused days expire in March."
            .into();
        let answer = extractive("How many vacation days do employees get?", &[first, second]);
        assert!(
            answer.contains("\nEvery employee has 28 days of paid vacation per year, plus public holidays. [2]\n"),
            "{answer}"
        );
        assert!(
            answer.contains("Unused days expire in March. [2]"),
            "{answer}"
        );
        assert!(
            !answer.contains("office"),
            "a sentence sharing no word: {answer}"
        );
        // Matched by meaning only: the best source's first sentences.
        let mut only = source(1);
        only.text = "Staff get four weeks off. Ask HR.".into();
        let answer = extractive("annual leave", &[only]);
        assert!(answer.contains("Staff get four weeks off. [1]"), "{answer}");
    }

    #[test]
    fn the_prompt_numbers_sources_and_ends_with_the_question() {
        let p = prompt(&[source(1)], &[], "Why?");
        assert!(p[0].content.contains("[1] (doc.txt)\npassage 1"));
        assert_eq!(p.last().unwrap().content, "Why?");
    }
}
