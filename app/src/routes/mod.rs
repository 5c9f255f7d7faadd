//! HTTP routes, one module per resource. `router` assembles them with the layers every request
//! goes through: request id, tracing, metrics.

mod health;

use std::sync::Arc;

use axum::http::{HeaderName, Request};
use axum::middleware;
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::ApiError;
use crate::metrics::{self, Metrics};
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    /// Becomes true when shutdown begins, so readiness fails and load balancers drain us.
    pub shutting_down: watch::Receiver<bool>,
}

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let metrics_state = state.metrics.clone();
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
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
                .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
        )
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; the API lives under /api/v1/".into())
}
