//! Black-box tests of documents, retrieval and chat: the real binary, its real HTTP clients,
//! and an in-test model server speaking Ollama's (and OpenAI's) documented API.

use crate::support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use support::llm::ModelServer;
use support::{builtin_embeddings, create_admin, db_strings, json, Berth, Browser};

mod access;
mod answers;
mod conversations;
mod ingestion;
mod real_llm;
mod retrieval;
mod semantic;

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

/// The LLM from `model`, embeddings from the real built-in model (all-MiniLM-L6-v2, from
/// `cargo xtask fixtures`): for tests of retrieval and answers, where the fake's embeddings
/// would measure the fake.
fn real_embeddings(model: &ModelServer, api: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = model_env(model, api)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("BERTH_EMBED_"))
        .collect();
    env.extend(builtin_embeddings());
    env
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
    parse_events(&resp.text().await.unwrap())
}

/// The answer's text as it streamed: the `token` events' text, in order.
fn streamed(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(e, _)| e == "token")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect()
}

fn parse_events(text: &str) -> Vec<(String, Value)> {
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
