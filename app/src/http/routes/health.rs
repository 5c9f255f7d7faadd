//! Liveness, readiness and metrics.
//!
//! Liveness never touches the database: a database outage must not make an orchestrator restart
//! every Berth instance. Readiness checks every backend Berth depends on.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Map, Value};

use super::AppState;

pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let mut checks = Map::new();
    let mut down = Vec::new();
    if *state.shutting_down.borrow() {
        down.push("server");
        checks.insert(
            "server".into(),
            json!({ "ok": false, "error": "shutting down" }),
        );
    }
    match state.store.check().await {
        Ok(()) => {
            checks.insert(
                "database".into(),
                json!({ "ok": true, "backend": state.store.backend() }),
            );
        }
        Err(error) => {
            tracing::warn!(%error, "readiness: database is down");
            down.push("database");
            checks.insert(
                "database".into(),
                json!({ "ok": false, "backend": state.store.backend(), "error": error }),
            );
        }
    }
    // Model servers are reported but do not make Berth unready: without them it still signs
    // people in, searches lexically and answers extractively, and taking every instance out of
    // the load balancer because Ollama restarts would turn a degradation into an outage.
    let mut degraded = false;
    let llm = match state.llm.as_ref() {
        None => None,
        Some(c) => Some((c.chat_model(), c.ping().await)),
    };
    let embeddings = match state.retriever.embedder.as_ref() {
        None => None,
        Some(e) => Some((e.model().to_string(), e.ping().await)),
    };
    for (name, pinged) in [("llm", llm), ("embeddings", embeddings)] {
        let check = match pinged {
            None => json!({ "ok": true, "configured": false }),
            Some((model, Ok(()))) => json!({ "ok": true, "configured": true, "model": model }),
            Some((model, Err(error))) => {
                degraded = true;
                json!({ "ok": false, "configured": true, "model": model, "error": error })
            }
        };
        checks.insert(name.into(), check);
    }
    // The query cache likewise: without Redis, searches are computed afresh.
    let cache = match state.retriever.cache().check().await {
        None => json!({ "ok": true, "configured": false }),
        Some(Ok(())) => json!({ "ok": true, "configured": true }),
        Some(Err(error)) => {
            degraded = true;
            json!({ "ok": false, "configured": true, "error": error })
        }
    };
    checks.insert("cache".into(), cache);
    checks.insert(
        "retrieval".into(),
        json!({ "ok": true, "mode": state.retriever.mode() }),
    );
    let (status, word) = if !down.is_empty() {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    } else if degraded {
        (StatusCode::OK, "degraded")
    } else {
        (StatusCode::OK, "ready")
    };
    (
        status,
        Json(json!({ "status": word, "down": down, "checks": checks })),
    )
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
