//! What this Berth can do right now: which models, and whether retrieval is hybrid.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::domain::settings::{Api, Endpoint};
use crate::embed::Embedder;
use crate::http::auth::CurrentUser;
use crate::service::retrieval::Mode;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(status))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelInfo {
    /// `builtin`, `ollama` or `openai`; null when not configured.
    pub provider: Option<String>,
    pub model: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    pub llm: ModelInfo,
    pub embeddings: ModelInfo,
    /// `lexical` when no embedding model is configured: say so to users.
    pub retrieval: Mode,
    pub version: String,
}

fn info(e: Option<&Endpoint>) -> ModelInfo {
    ModelInfo {
        provider: e.map(|e| match e.api {
            Api::Ollama => "ollama".into(),
            Api::OpenAi => "openai".into(),
        }),
        model: e.map(|e| e.model.clone()),
    }
}

fn embedder_info(e: Option<&Embedder>) -> ModelInfo {
    ModelInfo {
        provider: e.map(|e| e.provider().into()),
        model: e.map(|e| e.model().into()),
    }
}

/// The models in use and the retrieval mode.
#[utoipa::path(get, path = "/status", tag = "chat", responses((status = 200, body = Status)))]
pub async fn status(State(state): State<AppState>, _user: CurrentUser) -> Json<Status> {
    Json(Status {
        llm: ModelInfo {
            // The model an admin named at run time, if any.
            model: state.llm.as_ref().map(|c| c.chat_model()),
            ..info(state.rag.llm.as_ref())
        },
        embeddings: embedder_info(state.retriever.embedder.as_ref()),
        retrieval: state.retriever.mode(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}
