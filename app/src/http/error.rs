//! `ApiError`, the one error type every HTTP handler returns, mapped to a status and one JSON
//! shape; the services' errors become it here, in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::llm::LlmError;
use crate::service::access::AccessError;
use crate::service::ask::AskError;
use crate::service::auth::AuthError;
use crate::service::runtime::RuntimeError;
use crate::store::failure::{database_full, database_unavailable};

/// The JSON body of every error response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code, e.g. `not_found`, `validation_failed`.
    pub code: &'static str,
    /// What went wrong and what to do about it, for people.
    pub message: String,
    /// Extra structured detail (e.g. each broken password rule), when there is any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// No valid credentials: sign in again.
    #[error("{0}")]
    Unauthenticated(String),
    /// Signed in, but not allowed; `code` says why (`forbidden`, `csrf_failed`, ...).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The same content is already in the collection.
    #[error("this file is already in the collection as \"{name}\"; it was not added again")]
    Duplicate { existing: String, name: String },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    Invalid {
        message: String,
        details: Option<serde_json::Value>,
    },
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    Unavailable(String),
    /// The request ran past its deadline.
    #[error("{0}")]
    TimedOut(String),
    /// The disk holding the data directory or the database is full.
    #[error("{0}")]
    InsufficientStorage(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::Forbidden {
            code: "forbidden",
            message: message.into(),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden { code, .. } => (StatusCode::FORBIDDEN, code),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Duplicate { .. } => (StatusCode::CONFLICT, "duplicate"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_type")
            }
            ApiError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            ApiError::TooManyRequests { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
            }
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::TimedOut(_) => (StatusCode::REQUEST_TIMEOUT, "timeout"),
            ApiError::InsufficientStorage(_) => {
                (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Invalid { message, details } => ApiError::Invalid { message, details },
            AuthError::Unauthenticated(message) => ApiError::Unauthenticated(message),
            AuthError::Refused { code, message } => ApiError::Forbidden { code, message },
            AuthError::Taken(message) => ApiError::Conflict(message),
            AuthError::Throttled(locked) => ApiError::TooManyRequests {
                message: locked.message(),
                retry_after_secs: locked.retry_after_secs(),
            },
            AuthError::Store(err) => err.into(),
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(err: AccessError) -> Self {
        match err {
            AccessError::NotFound(message) => ApiError::NotFound(message),
            AccessError::Forbidden(message) => ApiError::forbidden(message),
            AccessError::Store(err) => err.into(),
        }
    }
}

impl From<RuntimeError> for ApiError {
    fn from(err: RuntimeError) -> Self {
        match err {
            RuntimeError::Invalid(message) => ApiError::Invalid {
                message,
                details: None,
            },
            RuntimeError::Store(err) => err.into(),
        }
    }
}

impl From<AskError> for ApiError {
    fn from(err: AskError) -> Self {
        match err {
            AskError::Invalid(message) => ApiError::Invalid {
                message,
                details: None,
            },
            AskError::Access(err) => err.into(),
            AskError::Store(err) => err.into(),
            AskError::Llm(e @ LlmError::Unavailable { .. }) => ApiError::Unavailable(format!(
                "{e}; answers need the LLM server, so try again when it is back"
            )),
            AskError::Llm(other) => ApiError::Unavailable(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        // A database that cannot be reached is a temporary condition (503), not a bug (500).
        if database_unavailable(&err) {
            tracing::warn!(error = %err, "the database is unavailable");
            ApiError::Unavailable("the database is unavailable; try again shortly".into())
        } else if database_full(&err) {
            tracing::error!(error = %err, "the database's disk is full");
            ApiError::InsufficientStorage(STORAGE_FULL.into())
        } else if err
            .as_database_error()
            .is_some_and(|e| e.is_foreign_key_violation())
        {
            // A write naming a row that was deleted meanwhile (a conversation deleted in another
            // tab while a question was being saved): the client's view is stale, not a bug.
            tracing::info!(error = %err, "a write refers to something deleted meanwhile");
            ApiError::Conflict(
                "what this refers to was deleted meanwhile (in another tab, or by someone else); \
                 reload the page and try again"
                    .into(),
            )
        } else {
            ApiError::Internal(err.into())
        }
    }
}

const STORAGE_FULL: &str =
    "the server's storage is full; nothing was saved. Free disk space (or ask the operator to), \
     then try again";

/// A full disk is the operator's to fix, not a bug: 507 with what to do, never a 500.
impl From<std::io::Error> for ApiError {
    fn from(err: std::io::Error) -> Self {
        if matches!(
            err.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        ) {
            tracing::error!(error = %err, "the data directory's disk is full");
            ApiError::InsufficientStorage(STORAGE_FULL.into())
        } else {
            ApiError::Internal(err.into())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let retry_after = match &self {
            ApiError::TooManyRequests {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        let (message, details) = match self {
            ApiError::Internal(err) => {
                // The cause goes to the log; the client gets no internals.
                tracing::error!(error = %format!("{err:#}"), "internal error");
                (
                    "something went wrong on the server; try again, and if it keeps happening \
                     ask your admin to look at the server log"
                        .to_string(),
                    None,
                )
            }
            ApiError::Invalid { message, details } => (message, details),
            ApiError::Duplicate { ref existing, .. } => (
                self.to_string(),
                Some(serde_json::json!({ "document_id": existing })),
            ),
            other => (other.to_string(), None),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message,
                details,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.max(1).into());
        }
        response
    }
}

/// Requests the framework refuses before a handler runs (unparsable JSON, a missing field, a
/// wrong type, a path segment that is not a number, a method the route does not take, a body
/// over the limit) come back in the same envelope as every other error, in words for the
/// caller: axum's own answers are `text/plain` and name Rust types ("Cannot parse `abc` to a
/// `i64`"), and a 405 has no body at all. One layer here rather than a wrapper per extractor,
/// so a new route cannot forget it.
pub async fn envelope_rejections(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = req.method().clone();
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json") || t.starts_with("text/event-stream"));
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Rejection texts are short; anything longer is not one of them and is cut.
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let (status, code, message) = if text.contains(BODY_TIMED_OUT) {
        (
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            BODY_STALLED.to_string(),
        )
    } else {
        let (code, message) = rejection_words(status, &method, text.trim());
        (status, code, message)
    };
    let body = ErrorBody {
        error: ErrorDetail {
            code,
            message,
            details: None,
        },
    };
    let mut out = (status, axum::Json(body)).into_response();
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// tower-http's words when a request body stops arriving (the body timeout).
pub const BODY_TIMED_OUT: &str = "not received within the designated timeout";
pub const BODY_STALLED: &str = "the request body stopped arriving for longer than the body \
    timeout (setting body_read_timeout); send it again";

/// Whether `err` (or what caused it) is the body timeout: tower-http's error reaches handlers
/// wrapped by axum's body, JSON and multipart errors, so it is told by its words.
pub fn body_timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.to_string().contains(BODY_TIMED_OUT) {
            return true;
        }
        next = e.source();
    }
    false
}

/// The envelope's code and message for a framework rejection: axum's text, its Rust-isms
/// translated, behind a sentence that says what to change.
fn rejection_words(
    status: StatusCode,
    method: &axum::http::Method,
    text: &str,
) -> (&'static str, String) {
    let plain = |s: &str| {
        let mut s = s.to_string();
        for (rust, words) in [
            ("`i64`", "a whole number"),
            ("`u64`", "a whole number"),
            ("`i32`", "a whole number"),
            ("`u32`", "a whole number"),
            ("`usize`", "a whole number"),
            ("`f64`", "a number"),
            ("`bool`", "true or false"),
            ("i64", "a whole number"),
            ("u64", "a whole number"),
            ("i32", "a whole number"),
            ("u32", "a whole number"),
            ("usize", "a whole number"),
            ("u8", "a whole number"),
            ("u16", "a whole number"),
            ("f64", "a number"),
            ("f32", "a number"),
        ] {
            s = s.replace(rust, words);
        }
        s.replace("to a a", "as a")
            .replace("Cannot parse", "cannot read")
    };
    let after = |prefix: &str| text.strip_prefix(prefix).map(|rest| plain(rest.trim()));
    match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            format!("this endpoint does not take {method}; /api/openapi.json lists what it takes"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "too_large",
            "the request body is larger than this endpoint accepts".into(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_type",
            "send the body as JSON, with Content-Type: application/json".into(),
        ),
        StatusCode::UNPROCESSABLE_ENTITY => {
            let why = after("Failed to deserialize the JSON body into the target type:")
                .unwrap_or_else(|| plain(text));
            (
                "validation_failed",
                format!("the JSON body does not fit this endpoint: {why}"),
            )
        }
        StatusCode::BAD_REQUEST => {
            let message = if let Some(why) = after("Failed to parse the request body as JSON:") {
                format!("the request body is not valid JSON: {why}")
            } else if let Some(why) = after("Failed to deserialize query string:") {
                format!("the query string does not fit this endpoint: {why}")
            } else if let Some(why) = after("Invalid URL:") {
                format!("a part of the URL is not valid: {why}")
            } else if text.is_empty() {
                "the request is malformed".into()
            } else {
                format!("the request is malformed: {}", plain(text))
            };
            ("bad_request", message)
        }
        StatusCode::NOT_FOUND => (
            "not_found",
            "no such endpoint; the API lives under /api/v1/".into(),
        ),
        s if s.is_server_error() => (
            "internal",
            "internal error; the server log has details".into(),
        ),
        _ => (
            "error",
            if text.is_empty() {
                status.to_string()
            } else {
                plain(text)
            },
        ),
    }
}

#[cfg(test)]
mod rejection_tests {
    use super::*;

    #[tokio::test]
    async fn a_write_naming_a_deleted_row_is_a_conflict_not_a_server_error() {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        for sql in [
            "PRAGMA foreign_keys = ON",
            "CREATE TABLE conversations (id TEXT PRIMARY KEY)",
            "CREATE TABLE messages (conversation_id TEXT NOT NULL REFERENCES conversations (id))",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        let err = sqlx::query("INSERT INTO messages VALUES ('gone')")
            .execute(&pool)
            .await
            .unwrap_err();
        match ApiError::from(err) {
            ApiError::Conflict(message) => assert!(message.contains("reload"), "{message}"),
            other => panic!("not a conflict: {other:?}"),
        }
    }

    #[test]
    fn rejections_speak_of_json_not_rust() {
        let get = axum::http::Method::GET;
        let (code, message) = rejection_words(
            StatusCode::BAD_REQUEST,
            &get,
            "Invalid URL: Cannot parse `abc` to a `i64`",
        );
        assert_eq!(code, "bad_request");
        assert_eq!(
            message,
            "a part of the URL is not valid: cannot read `abc` as a whole number"
        );
        let (code, message) = rejection_words(
            StatusCode::UNPROCESSABLE_ENTITY,
            &get,
            "Failed to deserialize the JSON body into the target type: k: invalid type: string \"x\", expected usize at line 1 column 8",
        );
        assert_eq!(code, "validation_failed");
        assert!(
            message.ends_with("expected a whole number at line 1 column 8"),
            "{message}"
        );
        let (code, message) =
            rejection_words(StatusCode::METHOD_NOT_ALLOWED, &axum::http::Method::PUT, "");
        assert_eq!(code, "method_not_allowed");
        assert!(message.contains("PUT"));
    }
}
