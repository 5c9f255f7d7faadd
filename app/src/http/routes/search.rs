//! Search: ranked passages from the collections the caller may read.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::http::auth::CurrentUser;
use crate::http::error::{ApiError, ErrorBody};
use crate::service::access;
use crate::service::retrieval::{GroupBy, Mode};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SearchRequest {
    /// 1 to 2000 characters, not only spaces.
    #[schema(min_length = 1, max_length = 2000, pattern = r"[^\s\u0085]")]
    pub query: String,
    /// Only these collections (each must be readable); all readable ones when absent.
    pub collection_ids: Option<Vec<String>>,
    /// How many passages, 1–50. [default: the retrieval_k setting]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 50)]
    #[serde(default, deserialize_with = "whole_number")]
    pub k: Option<usize>,
    /// `chunk` (the default): the `k` best passages. `document`: the best passage of each of
    /// the `k` best documents.
    #[serde(default)]
    pub group_by: GroupBy,
}

/// A count written as JSON writes numbers: `5` or `5.0` (JSON Schema's integers include both).
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    let Some(n) = Option::<f64>::deserialize(d)? else {
        return Ok(None);
    };
    if n.fract() != 0.0 || !(0.0..=u32::MAX as f64).contains(&n) {
        return Err(serde::de::Error::custom(format!(
            "{n} is not a whole number of passages"
        )));
    }
    Ok(Some(n as usize))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    pub chunk_id: i64,
    pub document_id: String,
    pub document_name: String,
    pub collection_id: String,
    pub text: String,
    /// The document's title and the headings above the passage.
    pub section: String,
    pub start: i64,
    pub end: i64,
    pub score: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    /// `hybrid` (full-text and vectors) or `lexical` (no embedding model, or it is down).
    pub mode: Mode,
    pub results: Vec<SearchHit>,
}

/// Hybrid search over your documents.
#[utoipa::path(post, path = "/search", tag = "documents", request_body = SearchRequest,
    responses((status = 200, body = SearchResults), (status = 404, description = "A collection of `collection_ids` that you may not read", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<SearchRequest>,
) -> Result<Json<SearchResults>, ApiError> {
    let query = body.query.trim();
    if query.is_empty() || query.chars().count() > 2000 {
        return Err(ApiError::Invalid {
            message: "the query must have 1 to 2000 characters".into(),
            details: None,
        });
    }
    let k = body.k.unwrap_or(state.runtime.current().retrieval_k);
    if !(1..=50).contains(&k) {
        return Err(ApiError::BadRequest("`k` must be from 1 to 50".into()));
    }
    let collections = access::search_scope(
        &state.store,
        &current.user.id,
        body.collection_ids.as_deref(),
    )
    .await?;
    let (mode, hits) = state
        .retriever
        .search(query, &collections, k, body.group_by)
        .await?;
    Ok(Json(SearchResults {
        mode,
        results: hits
            .into_iter()
            .map(|h| SearchHit {
                chunk_id: h.chunk.id,
                document_id: h.chunk.document_id,
                document_name: h.chunk.document_name,
                collection_id: h.chunk.collection_id,
                text: h.chunk.text,
                section: h.chunk.context,
                start: h.chunk.start_offset,
                end: h.chunk.end_offset,
                score: h.score,
            })
            .collect(),
    }))
}
