//! Errors: `BootError` for what stops the process (exit codes scripts can rely on), and
//! `ApiError`, the one error type every HTTP handler returns, mapped to a status and one JSON shape.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why the process could not start or finish a command.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// A setting or argument is wrong: fix the configuration. Exit code 2.
    #[error("{0}")]
    Config(String),
    /// The database belongs to a newer Berth or is otherwise unusable as it is. Exit code 3.
    #[error("{0}")]
    Database(String),
    /// Anything else. Exit code 1.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl BootError {
    pub fn exit_code(&self) -> u8 {
        match self {
            BootError::Config(_) => 2,
            BootError::Database(_) => 3,
            BootError::Other(_) => 1,
        }
    }
}

/// The JSON body of every error response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize)]
pub struct ErrorDetail {
    /// Stable, machine-readable code, e.g. `not_found`, `validation_failed`.
    pub code: &'static str,
    /// What went wrong and what to do about it, for people.
    pub message: String,
    /// Extra structured detail (e.g. each broken password rule), when there is any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Invalid {
        message: String,
        details: Option<serde_json::Value>,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        // A database that cannot be reached is a temporary condition (503), not a bug (500).
        match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                ApiError::Unavailable("the database is unavailable; try again shortly".into())
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let (message, details) = match self {
            ApiError::Internal(err) => {
                // The cause goes to the log; the client gets no internals.
                tracing::error!(error = %format!("{err:#}"), "internal error");
                (
                    "internal error; the server log has details".to_string(),
                    None,
                )
            }
            ApiError::Invalid { message, details } => (message, details),
            other => (other.to_string(), None),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message,
                details,
            },
        };
        (status, axum::Json(body)).into_response()
    }
}
