//! HTTP routes, one module per resource. `router` assembles them with the layers every request
//! goes through: request id, tracing, metrics.

mod account;
mod admin;
pub mod auth;
mod collections;
mod conversations;
mod documents;
mod health;
mod oidc;
mod search;
mod settings;
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

use crate::domain::settings::{AuthSettings, ConnectionLimits, RagSettings};
use crate::http::error::ApiError;
use crate::http::metrics;
use crate::llm;
use crate::metrics::Metrics;
use crate::service::audit::Audit;
use crate::service::retrieval::Retriever;
use crate::service::runtime::Runtime;
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
    /// Settings admins change at run time, over the server's own.
    pub runtime: Arc<Runtime>,
    /// The OpenID providers people may sign in with (none: the list is empty).
    pub oidc: Arc<crate::service::oidc::Oidc>,
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

impl AppState {
    /// The chat service on this state's store, retriever and LLM.
    pub fn chat(&self) -> crate::service::ask::Chat {
        crate::service::ask::Chat {
            store: self.store.clone(),
            retriever: self.retriever.clone(),
            llm: self.llm.clone(),
            metrics: self.metrics.clone(),
            retrieval_k: self.runtime.current().retrieval_k,
        }
    }

    /// The accounts service on this state's store, audit log and rules.
    pub fn accounts(&self) -> crate::service::auth::Auth<'_> {
        crate::service::auth::Auth {
            store: &self.store,
            audit: &self.audit,
            settings: &self.auth,
            registration_open: self.runtime.current().registration_open,
        }
    }
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
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::router())
        .merge(oidc::router())
        .merge(account::router())
        .merge(admin::router())
        .merge(collections::router())
        .merge(documents::router(max_upload))
        .merge(search::router())
        .merge(conversations::router())
        .merge(status::router())
        .merge(settings::router())
        .split_for_parts();
    document_common_statuses(&mut doc);
    document_audit_events(&mut doc);
    (router, doc)
}

/// The audit log's `event` filter takes the names the server knows, listed from the same
/// constant the handler checks against.
fn document_audit_events(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let Some(op) = doc
        .paths
        .paths
        .get_mut("/admin/audit")
        .and_then(|item| item.get.as_mut())
    else {
        return;
    };
    for param in op.parameters.iter_mut().flatten() {
        if param.name == "event" {
            param.schema = Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(crate::service::audit::event::ALL.iter().copied()))
                    .into(),
            );
        }
    }
}

/// Routes anyone may call without signing in.
const PUBLIC: &[&str] = &[
    "/auth/register",
    "/auth/sign-in",
    "/auth/password-policy",
    "/auth/providers",
    "/auth/oidc/{provider}/start",
    "/auth/oidc/{provider}/callback",
];

/// Adds to every operation the statuses it can answer that its handler does not name: those of
/// the layers in front of every route (a malformed or oversized request, the request deadline,
/// the database away, an internal error), of sign-in (401) and CSRF (403 on changes), of a path
/// id that names nothing (404) and of a JSON body (413, 415, 422). Done here, once, so the
/// document cannot forget them on a new route.
fn document_common_statuses(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let error = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        )
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let public = PUBLIC.contains(&path.as_str());
        let operations = [
            (false, &mut item.get),
            (true, &mut item.post),
            (true, &mut item.put),
            (true, &mut item.patch),
            (true, &mut item.delete),
        ];
        for (changes, op) in operations {
            let Some(op) = op else { continue };
            let has_body = op.request_body.is_some();
            let responses = &mut op.responses.responses;
            let mut add = |code: &str, description: &str| {
                responses
                    .entry(code.to_string())
                    .or_insert_with(|| error(description));
            };
            add("400", "The request is malformed: its URL, query or body");
            add(
                "408",
                "The request took too long, or its body stopped arriving",
            );
            add("500", "An internal error; the server log has the details");
            add("503", "The database is unavailable; try again shortly");
            if !public {
                add(
                    "401",
                    "Not signed in, or the API token is unknown or revoked",
                );
            }
            if (changes && !public) || path.starts_with("/admin") {
                add(
                    "403",
                    "Not allowed: the CSRF token is missing or wrong, or a right is lacking",
                );
            }
            if path.contains('{') {
                add("404", "Nothing of that id that you may see");
            }
            if has_body {
                add(
                    "413",
                    "The request body is larger than this endpoint accepts",
                );
                add("415", "The body is not of a type this endpoint takes");
                add(
                    "422",
                    "The body does not fit this endpoint; the message says what to change",
                );
            }
        }
    }
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
            .layer(middleware::from_fn(json_bodies_are_objects))
            .layer(middleware::from_fn(crate::http::error::envelope_rejections))
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

/// A worker's HTTP: health, readiness and metrics, nothing else (it holds no sessions).
pub fn worker_router(state: AppState) -> Router {
    let metrics_state = state.metrics.clone();
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .fallback(|| async {
            (
                axum::http::StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({"error": {
                    "code": "not_found",
                    "message": "this is a Berth ingestion worker: it serves /health, /ready and \
                                /metrics only; the API is on the berth serve instances",
                }})),
            )
        })
        .layer(middleware::from_fn_with_state(
            metrics_state,
            metrics::track,
        ))
        .with_state(state)
}

/// Every JSON body this API takes is an object. serde reads a struct from an array too
/// (`["alice", "pw"]` as a sign-in), which no client means and the document does not allow.
async fn json_bodies_are_objects(
    req: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !is_json {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    // The JSON extractors' own limit (axum's default, 2 MiB): larger is refused there anyway.
    let bytes = match axum::body::to_bytes(body, 2 << 20).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return if crate::http::error::body_timed_out(&e) {
                ApiError::TimedOut(crate::http::error::BODY_STALLED.into()).into_response()
            } else {
                ApiError::PayloadTooLarge(
                    "the request body is larger than this endpoint accepts".into(),
                )
                .into_response()
            };
        }
    };
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return ApiError::Invalid {
            message: "the body must be a JSON object, e.g. {\"name\": \"...\"}".into(),
            details: None,
        }
        .into_response();
    }
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
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
