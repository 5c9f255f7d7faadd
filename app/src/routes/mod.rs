//! HTTP routes, one module per resource. `router` assembles them with the layers every request
//! goes through: request id, tracing, metrics.

mod account;
mod admin;
pub mod auth;
mod collections;
mod conversations;
mod documents;
mod health;
mod search;
mod status;
mod web;

use std::sync::Arc;

use axum::http::{header, HeaderName, HeaderValue, Request};
use axum::middleware;
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::audit::Audit;
use crate::config::{AuthSettings, ConnectionLimits, RagSettings};
use crate::error::ApiError;
use crate::llm;
use crate::metrics::{self, Metrics};
use crate::retrieval::Retriever;
use crate::store::Store;
use std::path::PathBuf;
use tokio::sync::Notify;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub audit: Audit,
    pub auth: Arc<AuthSettings>,
    pub rag: Arc<RagSettings>,
    pub retriever: Arc<Retriever>,
    /// The LLM for answers; None: extractive answers.
    pub llm: Option<llm::Client>,
    pub data_dir: PathBuf,
    /// Uploaded files, one per document, named by its id.
    pub files_dir: PathBuf,
    /// Wakes the ingestion worker when a document is queued.
    pub wake: Arc<Notify>,
    /// Becomes true when shutdown begins, so readiness fails and load balancers drain us.
    pub shutting_down: watch::Receiver<bool>,
}

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Berth API",
        description = "Berth: chat with your team's documents on a local LLM. Browser clients \
            authenticate with the session cookie from sign-in and send its CSRF token as \
            X-CSRF-Token on state changes; scripts send a personal API token as \
            `Authorization: Bearer ...`. Every error has the body \
            `{\"error\": {\"code\", \"message\", \"details\"?}}`."
    ),
    servers((url = "/api/v1")),
    tags(
        (name = "auth", description = "Registration, sign-in, sessions"),
        (name = "account", description = "Your password and API tokens"),
        (name = "admin", description = "Approvals, users and roles, the audit log"),
        (name = "documents", description = "Collections, documents, search"),
        (name = "chat", description = "Conversations and streamed answers with citations"),
    )
)]
struct ApiDoc;

/// The API routes and their OpenAPI document, built from the same handler annotations so the
/// document cannot drift from the code.
pub fn api(max_upload: u64) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::router())
        .merge(account::router())
        .merge(admin::router())
        .merge(collections::router())
        .merge(documents::router(max_upload))
        .merge(search::router())
        .merge(conversations::router())
        .merge(status::router())
        .split_for_parts()
}

pub fn router(state: AppState, limits: &ConnectionLimits) -> Router {
    let metrics_state = state.metrics.clone();
    let (api, doc) = api(state.rag.max_upload_bytes);
    let doc = Arc::new(doc);
    Router::new()
        // API answers carry accounts, tokens and documents: no cache (browser or proxy) keeps them.
        .nest(
            "/api/v1",
            api.layer(middleware::from_fn_with_state(
                limits.request_timeout,
                deadline,
            ))
            .layer(middleware::from_fn(crate::error::envelope_rejections))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            )),
        )
        .route(
            "/api/openapi.json",
            get(move || async move { axum::Json(doc.as_ref().clone()) }),
        )
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .fallback(web::serve)
        // `layer` (not `route_layer`) so unmatched paths are counted too, as route "unmatched".
        .layer(middleware::from_fn_with_state(
            metrics_state,
            metrics::track,
        ))
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                // Keep a caller's request id, or make one; log it in the request's span; return it.
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request<_>| {
                            let id = req
                                .headers()
                                .get(REQUEST_ID)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-");
                            // The path only: query strings may carry tokens.
                            tracing::info_span!(
                                "request",
                                request_id = %id,
                                method = %req.method(),
                                path = %req.uri().path(),
                            )
                        })
                        .on_request(())
                        .on_response(DefaultOnResponse::new().level(Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                // A body that stops arriving ends its request (the reading handler gets an error).
                .layer(RequestBodyTimeoutLayer::new(limits.body_read_timeout))
                // Browsers take every body as the type it is labelled, never as what it looks like.
                .layer(SetResponseHeaderLayer::overriding(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                // gzip for the UI bundle and JSON; the default predicate leaves event streams,
                // images and tiny bodies alone.
                .layer(tower_http::compression::CompressionLayer::new()),
        )
}

/// Every API request but the streamed ones (an answer, an upload: bounded by the body timeout
/// and the client instead) finishes within `request_timeout`, or is answered 408.
async fn deadline(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = req.uri().path();
    let streamed = req.method() == axum::http::Method::POST
        && (path.ends_with("/messages") || path.ends_with("/documents"));
    if streamed {
        return next.run(req).await;
    }
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::TimedOut(format!(
            "the request took longer than {} s (setting request_timeout); try again, or narrow it",
            limit.as_secs()
        ))
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; the API lives under /api/v1/".into())
}
