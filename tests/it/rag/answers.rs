//! Answers: streamed from the model (Ollama's and OpenAI's API) with structured citations,
//! extractive without a model, and the model's failures and cancellations reported as they are.

use super::*;

#[tokio::test]
async fn an_answer_streams_from_ollama_with_structured_citations() {
    let model = ModelServer::start();
    let mut env = real_embeddings(&model, "ollama");
    env.push(("BERTH_CHUNK_SIZE".into(), "100".into()));
    env.push(("BERTH_CHUNK_OVERLAP".into(), "10".into()));
    let f = fixture(&env).await;
    let doc = f.me.ingest(&f.collection, "handbook.md", HANDBOOK).await;
    let conv = new_conversation(&f.me).await;

    let resp = ask(&f.me, &conv, "How many vacation days do employees get?").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = events(resp).await;
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"sources"), "{names:?}");
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    assert!(
        names.iter().filter(|n| **n == "token").count() > 3,
        "streamed token by token: {names:?}"
    );
    let streamed = streamed(&events);
    let done = &events.last().unwrap().1["message"];
    assert_eq!(done["content"], streamed.as_str());
    assert!(streamed.contains("28 days"), "{streamed}");
    assert_eq!(done["mode"], "llm");
    let cite = &done["citations"][0];
    assert_eq!(cite["document_id"], doc.as_str());
    assert_eq!(cite["document_name"], "handbook.md");
    assert!(cite["score"].as_f64().unwrap() > 0.0);
    let (start, end) = (
        cite["start"].as_u64().unwrap() as usize,
        cite["end"].as_u64().unwrap() as usize,
    );
    let cited: String = HANDBOOK.chars().skip(start).take(end - start).collect();
    assert!(
        cited.contains("28 days"),
        "offsets point into the document: {cited:?}"
    );
    assert!(done["content"]
        .as_str()
        .unwrap()
        .contains(&format!("[{}]", cite["n"])));

    // The prompt carried numbered sources; the conversation was stored.
    let sent = model
        .shared
        .last_chat_request
        .lock()
        .unwrap()
        .clone()
        .unwrap();
    assert!(sent["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("[1] (handbook.md — handbook"));
    assert_eq!(sent["stream"], true);
    let stored = json(f.me.get(&format!("/conversations/{conv}")).await).await;
    assert_eq!(stored["messages"].as_array().unwrap().len(), 2);
    assert_eq!(
        stored["messages"][1]["citations"][0]["chunk_id"],
        cite["chunk_id"]
    );
    assert_eq!(stored["title"], "How many vacation days do employees get?");

    // Opening the citation shows the passage in its context.
    let passage = json(f.me.get(&format!("/chunks/{}", cite["chunk_id"])).await).await;
    assert!(passage["text"].as_str().unwrap().contains("28 days"));
    assert!(passage["before"]
        .as_str()
        .unwrap()
        .contains("Fuel is reimbursed"));

    // Per-stage metrics moved.
    let text = reqwest::get(f.berth.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = support::metrics::parse(&text);
    for stage in ["extract", "chunk", "embed", "index", "retrieve", "generate"] {
        let n = support::metrics::value(
            &samples,
            "berth_stage_duration_seconds_count",
            &[("stage", stage)],
        );
        assert!(n.unwrap_or(0.0) >= 1.0, "stage {stage} not measured");
    }
    assert!(support::metrics::value(&samples, "berth_llm_tokens_total", &[]).unwrap() > 3.0);
}

#[tokio::test]
async fn the_openai_compatible_api_works_the_same() {
    let model = ModelServer::start();
    let f = fixture(&model_env(&model, "openai")).await;
    f.me.ingest(&f.collection, "handbook.txt", HANDBOOK).await;
    assert_eq!(search(&f.me, "vacation").await["mode"], "hybrid");
    let conv = new_conversation(&f.me).await;
    let events = events(ask(&f.me, &conv, "When does the office open?").await).await;
    let done = &events.last().unwrap().1["message"];
    assert!(
        done["content"].as_str().unwrap().contains("opens at 8"),
        "{done}"
    );
    assert!(model.shared.embed_calls.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn without_an_llm_the_answer_is_extractive_and_labelled() {
    let f = fixture(&[]).await;
    f.me.ingest(&f.collection, "handbook.txt", HANDBOOK).await;
    let status = json(f.me.get("/status").await).await;
    assert_eq!(status["retrieval"], "lexical");
    assert!(status["llm"]["model"].is_null());
    assert_eq!(search(&f.me, "vacation days").await["mode"], "lexical");
    let conv = new_conversation(&f.me).await;
    let events = events(ask(&f.me, &conv, "How many vacation days?").await).await;
    let done = &events.last().unwrap().1["message"];
    assert_eq!(done["mode"], "extractive");
    let content = done["content"].as_str().unwrap();
    assert!(content.contains("extractive"), "{content}");
    // The answering sentence, cited; not the passage's other paragraphs.
    assert!(
        content.contains(
            "Every employee has 28 **days** of paid **vacation** per year, plus public holidays. [1]"
        ),
        "{content}"
    );
    assert!(
        !content.contains("Fuel") && !content.contains("opens at 8"),
        "{content}"
    );
}

#[tokio::test]
async fn llm_failures_are_reported_not_hidden() {
    let model = ModelServer::start();
    let f = fixture(&model_env(&model, "ollama")).await;
    f.me.ingest(&f.collection, "handbook.txt", HANDBOOK).await;
    let conv = new_conversation(&f.me).await;

    // An {"error": ...} record mid-stream becomes an `error` event; nothing half is stored.
    model.set(|b| b.error_after_tokens = Some(2));
    let events = events(ask(&f.me, &conv, "When does the office open?").await).await;
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "error", "{events:?}");
    assert!(data["message"]
        .as_str()
        .unwrap()
        .contains("model crashed mid-answer"));

    // HTTP errors from the server: 503 with the reason, after bounded retries.
    model.set(|b| {
        b.error_after_tokens = None;
        b.fail_status = Some(500);
    });
    let before = model.shared.chat_calls.load(Ordering::SeqCst);
    let resp = ask(&f.me, &conv, "When does the office open?").await;
    assert_eq!(resp.status(), 503);
    let message = json(resp).await["error"]["message"].to_string();
    assert!(message.contains("unavailable"), "{message}");
    // The model server's internal address is not the user's to know.
    let port = model.url().trim_start_matches("http://").to_string();
    assert!(!message.contains(&port), "{message}");
    assert_eq!(
        model.shared.chat_calls.load(Ordering::SeqCst) - before,
        3,
        "1 try + 2 retries"
    );

    // The server gone entirely: readiness says so without taking Berth out of service.
    model.set(|b| b.fail_status = None);
    model.stop();
    let ready = reqwest::get(f.berth.url("/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready = json(ready).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["checks"]["llm"]["ok"], false);
    assert!(!ready.to_string().contains(&port), "{ready}");
    let resp = ask(&f.me, &conv, "When does the office open?").await;
    assert_eq!(resp.status(), 503);
    let message = json(resp).await["error"]["message"].to_string();
    assert!(!message.contains(&port), "{message}");
    // Search still answers, lexically.
    assert_eq!(search(&f.me, "office").await["mode"], "lexical");
    let stored = json(f.me.get(&format!("/conversations/{conv}")).await).await;
    assert!(stored["messages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["role"] == "user"));
}

#[tokio::test]
async fn an_unknown_model_is_refused_with_the_servers_reason() {
    let model = ModelServer::start();
    let mut env = model_env(&model, "ollama");
    env[2].1 = "no-such-model".into();
    let f = fixture(&env).await;
    let conv = new_conversation(&f.me).await;
    let resp = ask(&f.me, &conv, "Anything?").await;
    assert_eq!(resp.status(), 503);
    let body = json(resp).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model 'no-such-model' not found"),
        "{body}"
    );
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_generation() {
    let model = ModelServer::start();
    let f = fixture(&model_env(&model, "ollama")).await;
    f.me.ingest(&f.collection, "handbook.txt", HANDBOOK).await;
    let conv = new_conversation(&f.me).await;
    model.set(|b| b.token_delay = Duration::from_millis(300));
    let mut resp = ask(&f.me, &conv, "How many vacation days?").await;
    assert_eq!(resp.status(), 200);
    let _first = resp.chunk().await.unwrap();
    drop(resp);
    let start = Instant::now();
    while !model.shared.stream_abandoned.load(Ordering::SeqCst) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the model kept generating"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A member's question scoped to a shared collection, asked while the store cannot answer who
/// is a member: the question fails with the error envelope, never answers from a narrowed scope.
#[tokio::test]
async fn a_store_failure_fails_the_question_instead_of_narrowing_its_scope() {
    let f = fixture(&[]).await;
    let eve = approved_user(&f, "eve").await;
    let sid = shared_with(&f, json!({"name": "team", "shared": true}), "eve").await;
    f.me.ingest(&sid, "team.txt", "The team offsite is in Lisbon.")
        .await;
    let conv = json(
        eve.post("/conversations", json!({"collection_ids": [sid]}))
            .await,
    )
    .await;
    let conv = conv["id"].as_str().unwrap().to_string();

    // Membership becomes unanswerable; the conversation itself still loads.
    support::db_execute(
        f._dir.path(),
        "ALTER TABLE collection_members RENAME TO collection_members_away",
    )
    .await
    .unwrap();
    let resp = ask(&eve, &conv, "Where is the team offsite?").await;
    let status = resp.status();
    let body = resp.text().await.unwrap();
    assert!(status.is_server_error(), "{status}: {body}");
    let error: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}"));
    assert!(error["error"]["code"].is_string(), "{body}");
    assert!(
        !body.contains("Lisbon") && !body.contains("collection_members"),
        "{body}"
    );
}
