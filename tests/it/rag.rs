//! Black-box tests of documents, retrieval and chat: the real binary, its real HTTP clients,
//! and an in-test model server speaking Ollama's (and OpenAI's) documented API.

use crate::support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use support::llm::ModelServer;
use support::{create_admin, db_strings, json, Berth, Browser};

const PW: &str = "Adm1n!chosen-well";

/// A signed-in admin with a collection, against a Berth wired to `model` (if any).
struct Fixture {
    berth: Berth,
    me: Browser,
    collection: String,
    _dir: tempfile::TempDir,
}

fn model_env(model: &ModelServer, api: &str) -> Vec<(String, String)> {
    let base = if api == "openai" {
        format!("{}/v1", model.url())
    } else {
        model.url()
    };
    vec![
        ("BERTH_LLM_URL".into(), base.clone()),
        ("BERTH_LLM_API".into(), api.into()),
        ("BERTH_LLM_MODEL".into(), "test-chat".into()),
        ("BERTH_EMBED_URL".into(), base),
        ("BERTH_EMBED_API".into(), api.into()),
        ("BERTH_EMBED_MODEL".into(), "test-embed".into()),
        ("BERTH_LLM_TIMEOUT".into(), "5".into()),
    ]
}

async fn fixture(env: &[(String, String)]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let berth = Berth::start_with(dir.path(), &[], &env);
    create_admin(dir.path(), "root", PW);
    let mut me = Browser::new(&berth);
    me.sign_in("root", PW).await;
    let c = json(me.post("/collections", json!({"name": "handbook"})).await).await;
    Fixture {
        berth,
        me,
        collection: c["id"].as_str().unwrap().to_string(),
        _dir: dir,
    }
}

async fn search(b: &Browser, query: &str) -> Value {
    let resp = b.post("/search", json!({"query": query, "k": 5})).await;
    assert_eq!(resp.status(), 200);
    json(resp).await
}

/// Server-Sent Events of a response: (event, data) pairs.
async fn events(resp: reqwest::Response) -> Vec<(String, Value)> {
    let text = resp.text().await.unwrap();
    text.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = Some(e.trim().to_string());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            Some((event?, serde_json::from_str(&data).ok()?))
        })
        .collect()
}

/// Another user, registered, approved by the fixture's admin, and signed in.
async fn approved_user(f: &Fixture, name: &str) -> Browser {
    let mut b = Browser::new(&f.berth);
    let password = "Ev3!someone-else";
    let id = json(b.register(name, password).await).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    f.me.post(&format!("/admin/users/{id}/approve"), json!({}))
        .await;
    b.sign_in(name, password).await;
    b
}

/// A collection the fixture's admin creates from `body`, with `member` added; its id.
async fn shared_with(f: &Fixture, body: Value, member: &str) -> String {
    let c = json(f.me.post("/collections", body).await).await;
    let id = c["id"].as_str().unwrap().to_string();
    let members = format!("/collections/{id}/members");
    let added = f.me.post(&members, json!({"username": member})).await;
    assert_eq!(added.status(), 204, "{}", added.text().await.unwrap());
    id
}

async fn new_conversation(b: &Browser) -> String {
    let c = json(b.post("/conversations", json!({})).await).await;
    c["id"].as_str().unwrap().to_string()
}

async fn ask(b: &Browser, conversation: &str, question: &str) -> reqwest::Response {
    b.post(
        &format!("/conversations/{conversation}/messages"),
        json!({"content": question}),
    )
    .await
}

const HANDBOOK: &str = "Office hours\n\nThe office opens at 8 in the morning and closes at 6 in the evening.\n\n\
Travel\n\nEmployees may rent a car for trips longer than 200 kilometres. Fuel is reimbursed monthly.\n\n\
Holidays\n\nEvery employee has 28 days of paid vacation per year, plus public holidays.";

#[tokio::test]
async fn an_answer_streams_from_ollama_with_structured_citations() {
    let model = ModelServer::start();
    let mut env = model_env(&model, "ollama");
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
    let streamed: String = events
        .iter()
        .filter(|(e, _)| e == "token")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect();
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
        .contains("[1] (handbook.md)"));
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
    assert!(done["content"].as_str().unwrap().contains("extractive"));
    assert!(done["content"].as_str().unwrap().contains("28 days"));
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

#[tokio::test]
async fn uploads_are_checked_by_content_and_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(dir.path(), &[], &[("BERTH_MAX_UPLOAD_MB", "1")]);
    create_admin(dir.path(), "root", PW);
    let mut me = Browser::new(&berth);
    me.sign_in("root", PW).await;
    let c = json(me.post("/collections", json!({"name": "c"})).await).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("empty.txt", vec![], 422, "empty"),
        (
            "program.txt",
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec(),
            415,
            "unsupported_type",
        ),
        (
            "broken.pdf",
            b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\nnonsense".to_vec(),
            422,
            "malformed",
        ),
        (
            "locked.pdf",
            b"%PDF-1.4\n%stuff\ntrailer\n<< /Root 1 0 R /Encrypt 2 0 R >>\n%%EOF".to_vec(),
            422,
            "encrypted",
        ),
        (
            "archive.zip",
            b"PK\x03\x04\x14\0\0\0\0\0".to_vec(),
            415,
            "unsupported_type",
        ),
        ("huge.txt", vec![b'a'; (1 << 20) + 10], 413, "too_large"),
    ];
    for (name, bytes, status, code) in cases {
        let resp = me.upload(&c, name, bytes).await;
        assert_eq!(resp.status().as_u16(), status, "{name}");
        let body = json(resp).await;
        let got = body["error"]["details"]["reason"]
            .as_str()
            .or(body["error"]["code"].as_str())
            .unwrap();
        assert_eq!(got, code, "{name}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0,
        "no temp files left"
    );

    // Type from content: HTML named .txt is read as HTML.
    let html = b"<!DOCTYPE html><html><body><h1>Menu</h1><p>Soup &amp; bread</p><script>x()</script></body></html>";
    let resp = me.upload(&c, "menu.txt", html.to_vec()).await;
    assert_eq!(resp.status(), 202);
    let doc = json(resp).await;
    assert_eq!(doc["media_type"], "text/html");
    let id = doc["id"].as_str().unwrap();
    me.wait_status(id, "ready", Duration::from_secs(10)).await;
    assert_eq!(
        search(&me, "soup").await["results"][0]["text"],
        "Menu\n\nSoup & bread"
    );

    // The same content again: reported, not re-indexed.
    let resp = me.upload(&c, "menu-copy.html", html.to_vec()).await;
    assert_eq!(resp.status(), 409);
    let body = json(resp).await;
    assert_eq!(body["error"]["code"], "duplicate");
    assert_eq!(body["error"]["details"]["document_id"], id);

    // Download returns the original bytes; delete removes chunks, vectors and the file.
    // Uploaded HTML comes back as text in a sandbox: it never runs on Berth's origin.
    let file = me.get(&format!("/documents/{id}/file")).await;
    assert_eq!(file.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        file.headers()["content-security-policy"],
        "sandbox; default-src 'none'"
    );
    assert!(file.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(file.bytes().await.unwrap().as_ref(), html);
    let resp = me
        .send(Method::DELETE, &format!("/documents/{id}"), json!({}))
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        search(&me, "soup").await["results"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(me.get(&format!("/documents/{id}/file")).await.status(), 404);
    assert!(!dir.path().join("files").join(id).exists());
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

/// The same for a document: a store failure while checking access is a server error, never a
/// "no such document" (which would tell a member their document is gone).
#[tokio::test]
async fn a_store_failure_while_checking_access_is_not_a_missing_document() {
    let f = fixture(&[]).await;
    let eve = approved_user(&f, "eve").await;
    let sid = shared_with(&f, json!({"name": "team", "shared": true}), "eve").await;
    let doc =
        f.me.ingest(&sid, "team.txt", "The team offsite is in Lisbon.")
            .await;
    assert_eq!(eve.get(&format!("/documents/{doc}")).await.status(), 200);

    support::db_execute(
        f._dir.path(),
        "ALTER TABLE collection_members RENAME TO collection_members_away",
    )
    .await
    .unwrap();
    let resp = eve.get(&format!("/documents/{doc}")).await;
    let status = resp.status();
    let body = resp.text().await.unwrap();
    assert!(status.is_server_error(), "{status}: {body}");
    assert!(!body.contains("collection_members"), "{body}");
}

async fn delete(b: &Browser, id: &str) -> reqwest::Response {
    b.send(Method::DELETE, &format!("/documents/{id}"), json!({}))
        .await
}

/// In a shared collection the owner deletes anything; a member only what they uploaded.
#[tokio::test]
async fn in_a_shared_collection_members_delete_only_their_own_uploads() {
    let f = fixture(&[]).await;
    let eve = approved_user(&f, "eve").await;
    let sid = shared_with(&f, json!({"name": "team", "shared": true}), "eve").await;
    let owners = f.me.ingest(&sid, "plan.txt", "The owner's plan.").await;
    let eves = eve.ingest(&sid, "notes.txt", "Eve's notes.").await;
    let eves_second = eve.ingest(&sid, "more.txt", "More of Eve's notes.").await;
    let refused = delete(&eve, &owners).await;
    assert_eq!(refused.status(), 403);
    let message = json(refused).await["error"]["message"].to_string();
    assert!(message.contains("owner"), "{message}");
    assert_eq!(delete(&eve, &eves).await.status(), 204, "her own upload");
    assert_eq!(
        delete(&f.me, &eves_second).await.status(),
        204,
        "the owner's right"
    );
    let left = json(f.me.get(&format!("/collections/{sid}/documents")).await).await;
    let names: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["plan.txt"]);

    // Unless the owner lets members delete any document.
    let open = json!({"name": "open", "shared": true, "members_delete_any": true});
    let oid = shared_with(&f, open, "eve").await;
    let listed = json(f.me.get("/collections").await).await;
    let open = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == oid.as_str());
    assert_eq!(open.unwrap()["members_delete_any"], true, "{listed}");
    let owners =
        f.me.ingest(&oid, "plan.txt", "The owner's other plan.")
            .await;
    assert_eq!(delete(&eve, &owners).await.status(), 204);

    // Removing a member is idempotent; afterwards the collection is gone from her view.
    let members = json(f.me.get(&format!("/collections/{oid}/members")).await).await;
    let eve_id = members[0]["id"].as_str().unwrap().to_string();
    let remove = format!("/collections/{oid}/members/{eve_id}");
    for _ in 0..2 {
        let resp = f.me.send(Method::DELETE, &remove, json!({})).await;
        assert_eq!(resp.status(), 204);
    }
    let hers = eve.get(&format!("/collections/{oid}/documents")).await;
    assert_eq!(hers.status(), 404);
}

/// Adding a member reveals nothing about accounts that cannot be added: no such user and a
/// pending one get the same answer.
#[tokio::test]
async fn adding_a_member_answers_the_same_for_missing_and_inactive_accounts() {
    let f = fixture(&[]).await;
    let shared = json(
        f.me.post("/collections", json!({"name": "team", "shared": true}))
            .await,
    )
    .await;
    let members = format!("/collections/{}/members", shared["id"].as_str().unwrap());
    Browser::new(&f.berth)
        .register("pending", "Pend!ng-for-now1")
        .await;
    let missing = f.me.post(&members, json!({"username": "nobody"})).await;
    let (missing_status, missing) = (missing.status(), json(missing).await);
    let pending = f.me.post(&members, json!({"username": "pending"})).await;
    let (pending_status, pending) = (pending.status(), json(pending).await);
    assert_eq!(missing_status, 422);
    assert_eq!(pending_status, missing_status);
    let without_name = |v: &Value| v.to_string().replace("nobody", "X").replace("pending", "X");
    assert_eq!(without_name(&pending), without_name(&missing));
}

#[tokio::test]
async fn nothing_leaks_across_users() {
    let model = ModelServer::start();
    let f = fixture(&model_env(&model, "ollama")).await;
    let secret =
        f.me.ingest(
            &f.collection,
            "salaries.txt",
            "The secret project codename is Bluebird.",
        )
        .await;
    let conv = new_conversation(&f.me).await;

    // Another approved user.
    let eve = approved_user(&f, "eve").await;

    assert_eq!(
        json(eve.get("/collections").await)
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        search(&eve, "secret project codename").await["results"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let resp = eve
        .post(
            "/search",
            json!({"query": "codename", "collection_ids": [f.collection]}),
        )
        .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(eve.get(&format!("/documents/{secret}")).await.status(), 404);
    assert_eq!(
        eve.get(&format!("/documents/{secret}/file")).await.status(),
        404
    );
    assert_eq!(
        eve.get(&format!("/collections/{}/documents", f.collection))
            .await
            .status(),
        404
    );
    assert_eq!(
        eve.get(&format!("/conversations/{conv}")).await.status(),
        404
    );
    let chunk = search(&f.me, "codename").await["results"][0]["chunk_id"].clone();
    assert_eq!(eve.get(&format!("/chunks/{chunk}")).await.status(), 404);
    let eve_conv = new_conversation(&eve).await;
    let events = events(ask(&eve, &eve_conv, "What is the secret project codename?").await).await;
    let all = format!("{events:?}");
    assert!(!all.contains("Bluebird"), "leaked through chat: {all}");
    let sent = model
        .shared
        .last_chat_request
        .lock()
        .unwrap()
        .clone()
        .unwrap();
    assert!(
        !sent.to_string().contains("Bluebird"),
        "leaked into eve's prompt"
    );
    assert!(
        eve.upload(&f.collection, "x.txt", b"x".to_vec())
            .await
            .status()
            == 404
    );

    // Shared with eve as a member: now she can read it.
    let shared = json(
        f.me.post("/collections", json!({"name": "team", "shared": true}))
            .await,
    )
    .await;
    let sid = shared["id"].as_str().unwrap();
    f.me.ingest(sid, "team.txt", "The team offsite is in Lisbon.")
        .await;
    assert_eq!(
        f.me.post(
            &format!("/collections/{sid}/members"),
            json!({"username": "eve"})
        )
        .await
        .status(),
        204
    );
    let hits = search(&eve, "offsite Lisbon").await;
    assert_eq!(hits["results"][0]["document_name"], "team.txt");
    assert!(!hits.to_string().contains("Bluebird"));
    // A private collection takes no members.
    let resp =
        f.me.post(
            &format!("/collections/{}/members", f.collection),
            json!({"username": "eve"}),
        )
        .await;
    assert_eq!(resp.status(), 409);
}

#[tokio::test]
async fn ingestion_waits_for_the_embedding_server_and_failed_jobs_can_be_retried() {
    let model = ModelServer::start();
    let f = fixture(&model_env(&model, "ollama")).await;

    // Down (HTTP 503): the document waits in the queue, then completes once the server is back.
    model.set(|b| b.embed_fail_status = Some(503));
    let resp =
        f.me.upload(
            &f.collection,
            "a.txt",
            b"Alpha document about rockets.".to_vec(),
        )
        .await;
    let id = json(resp).await["id"].as_str().unwrap().to_string();
    let start = Instant::now();
    loop {
        let doc = json(f.me.get(&format!("/documents/{id}")).await).await;
        if doc["error"]
            .as_str()
            .is_some_and(|e| e.contains("unavailable"))
        {
            assert_eq!(doc["status"], "queued", "{doc}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{doc}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    model.set(|b| b.embed_fail_status = None);
    f.me.wait_status(&id, "ready", Duration::from_secs(20))
        .await;

    // Refused (HTTP 400): the document fails with the reason, and a retry succeeds.
    model.set(|b| b.embed_fail_status = Some(400));
    let resp =
        f.me.upload(
            &f.collection,
            "b.txt",
            b"Beta document about boats.".to_vec(),
        )
        .await;
    let id = json(resp).await["id"].as_str().unwrap().to_string();
    let doc =
        f.me.wait_status(&id, "failed", Duration::from_secs(15))
            .await;
    assert!(
        doc["error"].as_str().unwrap().contains("embedding"),
        "{doc}"
    );
    assert_eq!(
        search(&f.me, "boats").await["results"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    model.set(|b| b.embed_fail_status = None);
    let resp =
        f.me.post(&format!("/documents/{id}/retry"), json!({}))
            .await;
    assert_eq!(resp.status(), 202);
    f.me.wait_status(&id, "ready", Duration::from_secs(15))
        .await;
    assert_eq!(
        search(&f.me, "boats").await["results"][0]["document_id"],
        id.as_str()
    );
}

#[tokio::test]
async fn sigkill_mid_ingest_never_exposes_a_partial_document() {
    let model = ModelServer::start();
    let mut env = model_env(&model, "ollama");
    env.push(("BERTH_CHUNK_SIZE".into(), "200".into()));
    env.push(("BERTH_CHUNK_OVERLAP".into(), "20".into()));
    let mut f = fixture(&env).await;
    // Many chunks and a slow embedder: the kill lands in the middle of embedding.
    model.set(|b| b.embed_delay = Duration::from_millis(300));
    let text: String = (0..400)
        .map(|i| format!("Paragraph {i} describes the zebra number {i} in careful detail.\n\n"))
        .collect();
    let resp =
        f.me.upload(&f.collection, "zebras.txt", text.into_bytes())
            .await;
    let id = json(resp).await["id"].as_str().unwrap().to_string();
    let start = Instant::now();
    loop {
        let doc = json(f.me.get(&format!("/documents/{id}")).await).await;
        if doc["status"] == "processing" && doc["progress"].as_f64().unwrap() > 0.0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{doc}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f.berth.signal("KILL");
    f.berth.wait(Duration::from_secs(5));

    let chunks = db_strings(
        f._dir.path(),
        &format!("SELECT CAST(COUNT(*) AS TEXT) FROM chunks WHERE document_id = '{id}'"),
    )
    .await;
    assert_eq!(chunks, ["0"], "no partial chunks were committed");
    if support::postgres_backend() {
        // Another instance could still be working: the claim ends only when its lease runs out
        // (60 s). Let it run out now rather than wait.
        let sql = format!("UPDATE documents SET lease_until = 0 WHERE id = '{id}'");
        support::db_execute(f._dir.path(), &sql).await.unwrap();
    }

    // Restarted: searches never see a partial document, and it completes.
    model.set(|b| b.embed_delay = Duration::from_millis(0));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let berth = Berth::start_with(f._dir.path(), &[], &env);
    let mut me = Browser::new(&berth);
    me.sign_in("root", PW).await;
    let mut saw_partial = false;
    let start = Instant::now();
    loop {
        // Search before reading the status: status only moves forward, so hits followed by a
        // not-ready status prove a partial document was visible (the other order races the worker).
        let hits = search(&me, "zebra").await["results"]
            .as_array()
            .unwrap()
            .len();
        let doc = json(me.get(&format!("/documents/{id}")).await).await;
        if doc["status"] != "ready" && hits > 0 {
            saw_partial = true;
        }
        if doc["status"] == "ready" {
            assert!(doc["chunk_count"].as_i64().unwrap() > 0);
            break;
        }
        assert!(doc["status"] != "failed" || doc["error"].is_string());
        assert!(start.elapsed() < Duration::from_secs(60), "{doc}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !saw_partial,
        "search returned chunks of an unfinished document"
    );
    assert_eq!(
        search(&me, "zebra number 399").await["results"][0]["document_id"],
        id.as_str()
    );
}

#[tokio::test]
async fn a_new_embedding_model_re_embeds_without_mixing() {
    let model = ModelServer::start();
    let env = model_env(&model, "ollama");
    let f = fixture(&env).await;
    f.me.ingest(&f.collection, "handbook.txt", HANDBOOK).await;
    let dir = f._dir.path().to_path_buf();
    drop(f.berth);
    let mut env2 = env.clone();
    env2[5].1 = "test-embed-v2".into();
    let env2: Vec<(&str, &str)> = env2.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let berth = Berth::start_with(&dir, &[], &env2);
    let start = Instant::now();
    loop {
        let counts = db_strings(
            &dir,
            "SELECT CAST((SELECT COUNT(*) FROM chunk_vectors WHERE model = 'test-embed') AS TEXT) \
             || ' ' || CAST((SELECT COUNT(*) FROM chunk_vectors WHERE model = 'test-embed-v2') AS TEXT) \
             || ' ' || CAST((SELECT COUNT(*) FROM chunks) AS TEXT)",
        )
        .await;
        let n: Vec<i64> = counts[0].split(' ').map(|x| x.parse().unwrap()).collect();
        let (old, new, chunks) = (n[0], n[1], n[2]);
        if new == chunks {
            assert_eq!(old, 0, "old vectors replaced, not kept beside");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut me = Browser::new(&berth);
    me.sign_in("root", PW).await;
    assert_eq!(search(&me, "vacation").await["mode"], "hybrid");
}

/// Questions whose wording differs from the documents (synonyms), over a small corpus with one
/// right document each. Prints recall@5 for lexical and hybrid retrieval.
#[tokio::test]
async fn retrieval_quality_on_a_known_corpus() {
    let corpus = [
        (
            "cars.txt",
            "Company automobile policy: staff may rent an automobile for client visits.",
        ),
        (
            "health.txt",
            "See a physician if you feel unwell for more than three days; sick leave is paid.",
        ),
        (
            "purchase.txt",
            "To acquire equipment, file a purchase request with finance before ordering.",
        ),
        (
            "laptop.txt",
            "Every engineer receives a notebook computer with 32 GB of memory.",
        ),
        (
            "pay.txt",
            "Compensation is paid on the 25th of each month by bank transfer.",
        ),
        (
            "vacation.txt",
            "Annual vacation is 28 days; unused days carry over until March.",
        ),
        (
            "start.txt",
            "New hires commence on the first Monday of the month with an onboarding day.",
        ),
        (
            "budget.txt",
            "Each team has a training budget of 2000 euros per year for courses.",
        ),
        (
            "office.txt",
            "The office opens at 8 and closes at 18; the doors lock at 19.",
        ),
        (
            "security.txt",
            "Badges must be worn visibly; lost badges are reported to security at once.",
        ),
        (
            "parking.txt",
            "Parking spaces are assigned by lottery every January.",
        ),
        (
            "coffee.txt",
            "Coffee and tea are free in the kitchen on every floor.",
        ),
    ];
    let questions = [
        ("Can I use a car to visit a customer?", "cars.txt"),
        ("When should I go to the doctor?", "health.txt"),
        ("How do I buy new equipment?", "purchase.txt"),
        ("What laptop do engineers get?", "laptop.txt"),
        ("When is the salary paid?", "pay.txt"),
        ("How many holiday days do I have?", "vacation.txt"),
        ("When do new hires begin?", "start.txt"),
        (
            "How much money is there for training courses?",
            "budget.txt",
        ),
        ("What time does the office open?", "office.txt"),
        ("What happens if I lose my badge?", "security.txt"),
        ("How are parking spaces assigned?", "parking.txt"),
        ("Is coffee free?", "coffee.txt"),
    ];
    let mut recall = Vec::new();
    for with_vectors in [false, true] {
        let model = ModelServer::start();
        let env = if with_vectors {
            model_env(&model, "ollama")
        } else {
            Vec::new()
        };
        let f = fixture(&env).await;
        for (name, text) in corpus {
            f.me.ingest(&f.collection, name, text).await;
        }
        let mut found = 0;
        for (q, want) in questions {
            let hits = search(&f.me, q).await;
            let names: Vec<&str> = hits["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["document_name"].as_str().unwrap())
                .collect();
            if names.iter().take(5).any(|n| *n == want) {
                found += 1;
            }
        }
        recall.push(found as f64 / questions.len() as f64);
    }
    println!(
        "recall@5: lexical {:.2}, hybrid {:.2}",
        recall[0], recall[1]
    );
    assert!(
        recall[1] >= recall[0],
        "hybrid must not be worse than lexical: {recall:?}"
    );
    assert!(recall[1] >= 0.9, "hybrid recall@5 {:.2}", recall[1]);
}

/// A one-page PDF with a real text layer (Helvetica), with a correct cross-reference table.
fn pdf_with_text(text: &str) -> Vec<u8> {
    support::files::pdf(&[text.to_string()])
}

/// A minimal Word document: the parts a DOCX reader needs, zipped.
fn docx_with_paragraphs(paragraphs: &[&str]) -> Vec<u8> {
    use std::io::Write;
    let body: String = paragraphs
        .iter()
        .map(|p| format!("<w:p><w:r><w:t>{p}</w:t></w:r></w:p>"))
        .collect();
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
         <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
         <w:body>{body}</w:body></w:document>"
    );
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file("[Content_Types].xml", opts).unwrap();
    zip.write_all(b"<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>").unwrap();
    zip.start_file("word/document.xml", opts).unwrap();
    zip.write_all(document.as_bytes()).unwrap();
    zip.finish().unwrap().into_inner()
}

#[tokio::test]
async fn pdf_and_docx_text_is_extracted_and_searchable() {
    let f = fixture(&[]).await;
    let resp =
        f.me.upload(
            &f.collection,
            "report.pdf",
            pdf_with_text("Quarterly revenue grew by twelve percent"),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let pdf = json(resp).await;
    assert_eq!(pdf["media_type"], "application/pdf");
    f.me.wait_status(
        pdf["id"].as_str().unwrap(),
        "ready",
        Duration::from_secs(20),
    )
    .await;
    let hits = search(&f.me, "quarterly revenue").await;
    assert_eq!(hits["results"][0]["document_name"], "report.pdf", "{hits}");
    assert!(hits["results"][0]["text"]
        .as_str()
        .unwrap()
        .contains("twelve percent"));

    let docx = docx_with_paragraphs(&[
        "Onboarding checklist",
        "Collect the badge from reception &amp; sign the register.",
    ]);
    let resp = f.me.upload(&f.collection, "onboarding.docx", docx).await;
    assert_eq!(resp.status(), 202);
    let doc = json(resp).await;
    assert!(doc["media_type"]
        .as_str()
        .unwrap()
        .contains("wordprocessingml"));
    f.me.wait_status(
        doc["id"].as_str().unwrap(),
        "ready",
        Duration::from_secs(20),
    )
    .await;
    let hits = search(&f.me, "badge reception").await;
    assert_eq!(
        hits["results"][0]["document_name"], "onboarding.docx",
        "{hits}"
    );
    assert!(hits["results"][0]["text"]
        .as_str()
        .unwrap()
        .contains("reception & sign"));
}
