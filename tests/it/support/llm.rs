//! An in-test model server speaking Ollama's documented API (`/api/embed`, `/api/chat` with
//! NDJSON streaming and a final `done` record, `/api/tags`, `/api/version`) and the
//! OpenAI-compatible one (`/v1/embeddings`, `/v1/chat/completions` as Server-Sent Events).
//! Berth's real client code talks to it over HTTP; only the model behind it is small:
//! embeddings are hashed bags of words with a few synonym classes, and answers quote the
//! source that best matches the question.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// Embedding dimension unless a test sets another (`Shared::dim`).
pub const DIM: usize = 64;

/// How the server misbehaves, switchable while a test runs.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Answer every request with this HTTP status and an `{"error": ...}` body.
    pub fail_status: Option<u16>,
    /// Same, for embedding requests only.
    pub embed_fail_status: Option<u16>,
    /// Send an `{"error": ...}` record after this many tokens.
    pub error_after_tokens: Option<usize>,
    /// Pause between streamed tokens.
    pub token_delay: Duration,
    /// Pause before answering an embedding request.
    pub embed_delay: Duration,
}

#[derive(Default)]
pub struct Shared {
    pub behaviour: Mutex<Behaviour>,
    pub embed_calls: AtomicUsize,
    pub chat_calls: AtomicUsize,
    /// Set when a client hung up on a streaming answer before it ended.
    pub stream_abandoned: AtomicBool,
    pub last_chat_request: Mutex<Option<Value>>,
    /// The embedding dimension; 0 means `DIM`.
    pub dim: AtomicUsize,
}

pub struct ModelServer {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ModelServer {
    /// Starts on 127.0.0.1 with a port of its own, on its own runtime thread.
    pub fn start() -> ModelServer {
        Self::start_on("127.0.0.1:0".parse().unwrap())
    }

    pub fn start_on(addr: SocketAddr) -> ModelServer {
        let shared = Arc::new(Shared::default());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let state = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let app = Router::new()
                    .route(
                        "/api/version",
                        get(|| async { Json(json!({"version": "0.5.7"})) }),
                    )
                    .route("/api/tags", get(tags))
                    .route("/api/embed", post(ollama_embed))
                    .route("/api/chat", post(ollama_chat))
                    .route("/v1/models", get(tags))
                    .route("/v1/embeddings", post(openai_embed))
                    .route("/v1/chat/completions", post(openai_chat))
                    .with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        ModelServer {
            addr,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.shared.behaviour.lock().unwrap());
    }

    /// Stops serving (the port closes): the model server is "down".
    pub fn stop(mut self) -> SocketAddr {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.addr
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

type S = State<Arc<Shared>>;

fn failure(status: u16, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        Json(json!({ "error": message })),
    )
        .into_response()
}

async fn tags() -> Json<Value> {
    Json(json!({"models": [{"name": "test-chat"}, {"name": "test-embed"}]}))
}

/// Words, lower-cased, with a crude plural strip and a few synonym classes folded together,
/// so that related words land in the same dimension (what a real model learns).
pub fn words(text: &str) -> Vec<String> {
    const SYNONYMS: &[&[&str]] = &[
        &["car", "automobile", "vehicle", "auto"],
        &["doctor", "physician", "medic"],
        &["buy", "purchase", "acquire", "bought"],
        &["big", "large", "huge", "enormous"],
        &["fast", "quick", "rapid", "speed"],
        &["begin", "start", "commence"],
        &["money", "cash", "fund", "budget"],
        &["holiday", "vacation", "leave"],
        &["salary", "pay", "wage", "compensation"],
        &["laptop", "computer", "notebook"],
    ];
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
        .map(|w| {
            let w = w.to_lowercase();
            let w = w
                .strip_suffix('s')
                .filter(|s| s.len() > 2)
                .map(str::to_string)
                .unwrap_or(w);
            SYNONYMS
                .iter()
                .find(|class| class.contains(&w.as_str()))
                .map(|class| class[0].to_string())
                .unwrap_or(w)
        })
        .collect()
}

pub fn embed_text(text: &str, dim: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; dim];
    for w in words(text) {
        let h = w.bytes().fold(1469598103934665603u64, |h, b| {
            (h ^ b as u64).wrapping_mul(1099511628211)
        });
        v[(h % dim as u64) as usize] += 1.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    v.iter().map(|x| x / norm).collect()
}

fn inputs(body: &Value) -> Vec<String> {
    match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

fn dim(shared: &Shared) -> usize {
    match shared.dim.load(Ordering::Relaxed) {
        0 => DIM,
        d => d,
    }
}

async fn embed_guard(shared: &Shared) -> Option<Response> {
    shared.embed_calls.fetch_add(1, Ordering::SeqCst);
    let b = shared.behaviour.lock().unwrap().clone();
    tokio::time::sleep(b.embed_delay).await;
    b.fail_status
        .or(b.embed_fail_status)
        .map(|s| failure(s, "embedding model failed"))
}

async fn ollama_embed(State(shared): S, Json(body): Json<Value>) -> Response {
    if let Some(r) = embed_guard(&shared).await {
        return r;
    }
    if body["model"].as_str().is_none() {
        return failure(400, "model is required");
    }
    let d = dim(&shared);
    let embeddings: Vec<Vec<f32>> = inputs(&body).iter().map(|t| embed_text(t, d)).collect();
    Json(json!({ "model": body["model"], "embeddings": embeddings })).into_response()
}

async fn openai_embed(State(shared): S, Json(body): Json<Value>) -> Response {
    if let Some(r) = embed_guard(&shared).await {
        return r;
    }
    let d = dim(&shared);
    let data: Vec<Value> = inputs(&body)
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": embed_text(t, d)}))
        .collect();
    Json(json!({"object": "list", "data": data, "model": body["model"]})).into_response()
}

/// The answer: the first sentence of the source sharing most words with the question.
fn answer(body: &Value) -> String {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let system = messages
        .first()
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    let question = messages
        .last()
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    let q: Vec<String> = words(question);
    let mut sources: BTreeMap<usize, String> = BTreeMap::new();
    let mut current: Option<usize> = None;
    for line in system.lines() {
        if let Some(rest) = line.strip_prefix('[') {
            if let Some((n, _)) = rest.split_once("] (") {
                if let Ok(n) = n.parse() {
                    current = Some(n);
                    continue;
                }
            }
        }
        if let Some(n) = current {
            sources.entry(n).or_default().push_str(line);
            sources.entry(n).or_default().push(' ');
        }
    }
    // The sentence sharing most words with the question, and the source it is in.
    let mut best: Option<(usize, usize, String)> = None;
    for (n, text) in &sources {
        for sentence in text.split_inclusive(['.', '!', '?']) {
            let w = words(sentence);
            let overlap = q.iter().filter(|x| w.contains(x)).count();
            if overlap > 0 && best.as_ref().is_none_or(|b| overlap > b.0) {
                best = Some((overlap, *n, sentence.trim().to_string()));
            }
        }
    }
    match best {
        Some((_, n, sentence)) => format!("According to the documents, {sentence} [{n}]"),
        None => "I could not find that in the documents.".into(),
    }
}

/// Marks the stream abandoned if it is dropped before it finished.
struct Watch(Arc<Shared>, bool);
impl Drop for Watch {
    fn drop(&mut self) {
        if !self.1 {
            self.0.stream_abandoned.store(true, Ordering::SeqCst);
        }
    }
}

fn streamed(
    shared: Arc<Shared>,
    body: &Value,
    record: fn(&str) -> String,
    error_record: fn(&str) -> String,
    last: fn(usize) -> Vec<String>,
) -> Response {
    let b = shared.behaviour.lock().unwrap().clone();
    let text = answer(body);
    let tokens: Vec<String> = text.split_inclusive(' ').map(String::from).collect();
    let count = tokens.len();
    let stream = futures_util::stream::unfold(
        (0usize, Watch(shared, false), tokens, b),
        move |(i, mut watch, tokens, b)| async move {
            if watch.1 {
                return None;
            }
            if i > 0 {
                tokio::time::sleep(b.token_delay).await;
            }
            let chunk = if b.error_after_tokens == Some(i) {
                watch.1 = true;
                error_record("model crashed mid-answer")
            } else if i < tokens.len() {
                record(&tokens[i])
            } else {
                watch.1 = true;
                last(count).concat()
            };
            Some((Ok::<_, std::io::Error>(chunk), (i + 1, watch, tokens, b)))
        },
    );
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(stream))
        .unwrap()
}

async fn ollama_chat(State(shared): S, Json(body): Json<Value>) -> Response {
    shared.chat_calls.fetch_add(1, Ordering::SeqCst);
    *shared.last_chat_request.lock().unwrap() = Some(body.clone());
    if let Some(s) = shared.behaviour.lock().unwrap().fail_status {
        return failure(s, "model runner failed");
    }
    if body["model"].as_str() != Some("test-chat") {
        return failure(
            404,
            &format!("model '{}' not found", body["model"].as_str().unwrap_or("")),
        );
    }
    streamed(
        shared,
        &body,
        |t| {
            format!(
                "{}\n",
                json!({"model": "test-chat", "created_at": "2026-01-01T00:00:00Z", "message": {"role": "assistant", "content": t}, "done": false})
            )
        },
        |e| format!("{}\n", json!({"error": e})),
        |n| {
            vec![format!(
                "{}\n",
                json!({"model": "test-chat", "created_at": "2026-01-01T00:00:00Z", "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop", "total_duration": 5_000_000u64, "eval_count": n, "eval_duration": 1_000_000u64 * n as u64})
            )]
        },
    )
}

async fn openai_chat(State(shared): S, Json(body): Json<Value>) -> Response {
    shared.chat_calls.fetch_add(1, Ordering::SeqCst);
    *shared.last_chat_request.lock().unwrap() = Some(body.clone());
    if let Some(s) = shared.behaviour.lock().unwrap().fail_status {
        return (
            StatusCode::from_u16(s).unwrap(),
            Json(json!({"error": {"message": "upstream failed", "type": "server_error"}})),
        )
            .into_response();
    }
    let mut r = streamed(
        shared,
        &body,
        |t| {
            format!(
                "data: {}\n\n",
                json!({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": null}]})
            )
        },
        |e| format!("data: {}\n\n", json!({"error": {"message": e}})),
        |_| {
            vec![
                format!(
                    "data: {}\n\n",
                    json!({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                ),
                "data: [DONE]\n\n".to_string(),
            ]
        },
    );
    r.headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    r
}
