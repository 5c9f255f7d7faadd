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
    let (status, word) = if down.is_empty() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
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
