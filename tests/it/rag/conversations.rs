//! Conversations as the chat page keeps them: renamed, scoped to chosen collections (kept with
//! the conversation and used by every question in it), and each answer's thumbs up or down.

use super::*;

async fn patch(b: &Browser, conv: &str, body: Value) -> reqwest::Response {
    b.send(Method::PATCH, &format!("/conversations/{conv}"), body)
        .await
}

async fn vote(b: &Browser, conv: &str, message: &Value, vote: Value) -> reqwest::Response {
    let path = format!("/conversations/{conv}/messages/{message}/feedback");
    b.send(Method::PUT, &path, json!({ "vote": vote })).await
}

#[tokio::test]
async fn a_conversation_is_renamed_and_answers_only_from_its_scope() {
    let f = fixture(&[]).await;
    f.me.ingest(&f.collection, "handbook.txt", HANDBOOK).await;
    let other = json(f.me.post("/collections", json!({"name": "canteen"})).await).await;
    let other = other["id"].as_str().unwrap().to_string();
    let menu = "Canteen\n\nThe canteen serves vacation soup on Fridays.";
    f.me.ingest(&other, "menu.txt", menu).await;
    let conv = new_conversation(&f.me).await;

    let renamed = patch(&f.me, &conv, json!({"title": "  Leave  "})).await;
    assert_eq!(renamed.status(), 200);
    assert_eq!(json(renamed).await["title"], "Leave");
    let listed = json(f.me.get("/conversations").await).await;
    assert_eq!(listed[0]["title"], "Leave");
    let empty = patch(&f.me, &conv, json!({"title": "   "})).await;
    assert_eq!(empty.status(), 422);

    // Scoped to the canteen: the handbook is not searched, and the scope is kept.
    let scoped = patch(&f.me, &conv, json!({"collection_ids": [other]})).await;
    assert_eq!(json(scoped).await["collection_ids"], json!([other]));
    assert_eq!(
        cited(&f.me, &conv, "How many vacation days?").await,
        ["menu.txt"]
    );
    let stored = json(f.me.get(&format!("/conversations/{conv}")).await).await;
    assert_eq!(stored["collection_ids"], json!([other]));
    assert_eq!(
        stored["title"], "Leave",
        "a renamed conversation keeps its name"
    );

    // Back to everything.
    patch(&f.me, &conv, json!({"collection_ids": []})).await;
    let answered = events(ask(&f.me, &conv, "How many vacation days?").await).await;
    let done = &answered.last().unwrap().1["message"];
    assert!(done.to_string().contains("handbook.txt"), "{done}");

    // Nobody else renames it, or scopes their own to a collection they cannot read.
    let eve = approved_user(&f, "eve").await;
    let theirs = patch(&eve, &conv, json!({"title": "mine"})).await;
    assert_eq!(theirs.status(), 404);
    let eve_conv = new_conversation(&eve).await;
    let foreign = patch(&eve, &eve_conv, json!({"collection_ids": [f.collection]})).await;
    assert_eq!(foreign.status(), 404);
}

#[tokio::test]
async fn an_answer_takes_one_changeable_vote_from_its_asker() {
    let f = fixture(&[]).await;
    f.me.ingest(&f.collection, "handbook.txt", HANDBOOK).await;
    let conv = new_conversation(&f.me).await;
    ask(&f.me, &conv, "When does the office open?")
        .await
        .text()
        .await
        .unwrap();
    let stored = json(f.me.get(&format!("/conversations/{conv}")).await).await;
    let (question, answer) = (&stored["messages"][0]["id"], &stored["messages"][1]["id"]);
    assert!(stored["messages"][1]["feedback"].is_null());

    let feedback = || async {
        let stored = json(f.me.get(&format!("/conversations/{conv}")).await).await;
        stored["messages"][1]["feedback"].clone()
    };
    assert_eq!(vote(&f.me, &conv, answer, json!("up")).await.status(), 204);
    assert_eq!(feedback().await, "up");
    assert_eq!(
        vote(&f.me, &conv, answer, json!("down")).await.status(),
        204
    );
    assert_eq!(feedback().await, "down", "the vote changes, not adds");
    assert_eq!(vote(&f.me, &conv, answer, Value::Null).await.status(), 204);
    assert!(feedback().await.is_null(), "taken back");

    assert_eq!(
        vote(&f.me, &conv, question, json!("up")).await.status(),
        404
    );
    assert!(vote(&f.me, &conv, answer, json!("sideways"))
        .await
        .status()
        .is_client_error());
    let eve = approved_user(&f, "eve").await;
    assert_eq!(vote(&eve, &conv, answer, json!("up")).await.status(), 404);
    assert!(feedback().await.is_null());
}

#[tokio::test]
async fn a_conversation_scoped_to_a_document_answers_from_it_alone() {
    let f = fixture(&[]).await;
    f.me.ingest(&f.collection, "handbook.txt", HANDBOOK).await;
    let memo = "Memo\n\nThe office closes early on Fridays, at 3 in the afternoon.";
    let memo = f.me.ingest(&f.collection, "memo.txt", memo).await;
    let c = json(
        f.me.post("/conversations", json!({"document_ids": [memo]}))
            .await,
    )
    .await;
    assert_eq!(c["document_ids"], json!([memo]));
    let conv = c["id"].as_str().unwrap().to_string();

    // The handbook matches better, and is in the same collection: not a source.
    assert_eq!(
        cited(&f.me, &conv, "When does the office open?").await,
        ["memo.txt"]
    );

    // Back to the collections; a document nobody may read is refused.
    let back = patch(&f.me, &conv, json!({"document_ids": []})).await;
    assert_eq!(json(back).await["document_ids"], json!([]));
    let answered = events(ask(&f.me, &conv, "When does the office open?").await).await;
    assert!(answered
        .last()
        .unwrap()
        .1
        .to_string()
        .contains("handbook.txt"));
    let eve = approved_user(&f, "eve").await;
    let theirs = eve
        .post("/conversations", json!({"document_ids": [memo]}))
        .await;
    assert_eq!(theirs.status(), 404);
}

/// The file names the answer to `question` cites, in order.
async fn cited(me: &Browser, conv: &str, question: &str) -> Vec<String> {
    let answered = events(ask(me, conv, question).await).await;
    let done = &answered.last().unwrap().1["message"];
    done["citations"]
        .as_array()
        .unwrap_or_else(|| panic!("no citations: {done}"))
        .iter()
        .map(|c| c["document_name"].as_str().unwrap().to_string())
        .collect()
}
