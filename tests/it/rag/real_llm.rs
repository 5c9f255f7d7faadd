//! A real LLM answers through Berth's own OpenAI-compatible client: SmolLM2-135M-Instruct on
//! llama-cpp-python's server, with the real built-in embedder, streamed, with citations.

use super::*;
use support::llama::{LlamaServer, MODEL};

#[tokio::test]
async fn a_real_model_answers_from_the_documents_streamed_with_citations() {
    let llm = LlamaServer::start();
    let mut env: Vec<(String, String)> = vec![
        ("BERTH_LLM_API".into(), "openai".into()),
        ("BERTH_LLM_URL".into(), llm.url()),
        ("BERTH_LLM_MODEL".into(), MODEL.into()),
        // The likeliest token each time: the same answer on every run.
        ("BERTH_LLM_TEMPERATURE".into(), "0".into()),
        ("BERTH_LLM_MAX_TOKENS".into(), "96".into()),
        ("BERTH_LLM_TIMEOUT".into(), "60".into()),
    ];
    env.extend(builtin_embeddings());
    let f = fixture(&env).await;
    let doc = f.me.ingest(&f.collection, "handbook.md", HANDBOOK).await;
    let conv = new_conversation(&f.me).await;

    let asked = Instant::now();
    let resp = ask(
        &f.me,
        &conv,
        "How many days of paid vacation does an employee get?",
    )
    .await;
    assert_eq!(resp.status(), 200);
    // Read as it streams, to time the first token.
    let (mut body, mut resp, mut first_token) = (String::new(), resp, None);
    while let Some(chunk) = resp.chunk().await.unwrap() {
        body.push_str(std::str::from_utf8(&chunk).unwrap());
        if first_token.is_none() && body.contains("event: token") {
            first_token = Some(asked.elapsed());
        }
    }
    let finished = asked.elapsed();
    let events = parse_events(&body);
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"sources"), "{names:?}");
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    let tokens = names.iter().filter(|n| **n == "token").count();
    assert!(tokens > 3, "streamed token by token: {names:?}");
    let streamed = streamed(&events);
    let done = &events.last().unwrap().1["message"];
    assert_eq!(done["mode"], "llm");
    assert_eq!(done["content"], streamed.as_str());
    // A 135M-parameter model, but the answer is in its prompt: it reads it back.
    assert!(streamed.contains("28"), "the answer: {streamed:?}");
    let cite = &done["citations"][0];
    assert_eq!(cite["document_id"], doc.as_str());
    let cited = json(f.me.get(&format!("/chunks/{}", cite["chunk_id"])).await).await;
    assert!(
        cited["text"].as_str().unwrap().contains("28 days"),
        "{cited}"
    );

    let first_token = first_token.unwrap();
    let generating = (finished - first_token).as_secs_f64().max(1e-3);
    eprintln!(
        "real LLM (SmolLM2-135M Q4_1, llama-cpp-python, 2 threads): first token {:.0} ms after \
         the question, {tokens} tokens at {:.1} tokens/s",
        first_token.as_secs_f64() * 1e3,
        (tokens.saturating_sub(1)) as f64 / generating,
    );
}
