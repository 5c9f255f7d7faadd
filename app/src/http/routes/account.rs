//! The signed-in user's own account: password change and personal API tokens.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::domain::accounts::now_ms;
use crate::domain::secret::{random_token, sha256_hex, TOKEN_PREFIX};
use crate::http::auth::{session_set_cookie, CurrentUser};
use crate::http::error::{ApiError, ErrorBody};
use crate::service::audit::{event, outcome};
use crate::store::TokenRow;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(change_password))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Changes your password. Every session and API token of yours ends: sign in again.
#[utoipa::path(post, path = "/account/password", tag = "account",
    request_body = PasswordChange,
    responses((status = 204, description = "Changed; signed out everywhere"),
              (status = 403, description = "Current password wrong", body = ErrorBody),
              (status = 422, description = "New password refused", body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<PasswordChange>,
) -> Result<Response, ApiError> {
    state
        .accounts()
        .change_password(
            &current.audit(),
            &current.user,
            body.current_password,
            body.new_password,
        )
        .await?;
    let cookie = session_set_cookie(None, 0, &current.client, state.auth.cookie_secure);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl From<TokenRow> for TokenInfo {
    fn from(t: TokenRow) -> Self {
        use crate::domain::accounts::rfc3339;
        TokenInfo {
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            created_at: rfc3339(t.created_at),
            last_used_at: t.last_used_at.map(rfc3339),
            revoked_at: t.revoked_at.map(rfc3339),
        }
    }
}

/// Your API tokens (never their secrets).
#[utoipa::path(get, path = "/account/tokens", tag = "account",
    responses((status = 200, body = [TokenInfo])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    let tokens = state.store.list_tokens(&current.user.id).await?;
    Ok(Json(tokens.into_iter().map(TokenInfo::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewToken {
    /// What the token is for, e.g. "backup script": 1 to 100 characters, not only spaces.
    #[schema(min_length = 1, max_length = 100, pattern = r"[^\s\u0085]")]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The secret, shown this once: send it as `Authorization: Bearer <token>`.
    pub token: String,
}

/// Creates a personal API token for scripts.
#[utoipa::path(post, path = "/account/tokens", tag = "account",
    request_body = NewToken,
    responses((status = 201, body = CreatedToken),
              (status = 422, description = "Bad name", body = ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<NewToken>,
) -> Result<Response, ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::Invalid {
            message: "give the token a name of 1 to 100 characters".into(),
            details: None,
        });
    }
    let secret = format!("{TOKEN_PREFIX}{}", random_token(32));
    let row = TokenRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: current.user.id.clone(),
        name: name.to_string(),
        prefix: secret.chars().take(TOKEN_PREFIX.len() + 6).collect(),
        created_at: now_ms(),
        last_used_at: None,
        revoked_at: None,
    };
    state.store.insert_token(&row, &sha256_hex(&secret)).await?;
    state
        .audit
        .record(
            &current.audit(),
            event::TOKEN_CREATED,
            outcome::SUCCESS,
            Some((&current.user.id, &current.user.username)),
            Some(format!("token {} ({})", row.name, row.id)),
        )
        .await;
    let body = CreatedToken {
        info: row.into(),
        token: secret,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Revokes one of your API tokens; it stops working at once.
#[utoipa::path(delete, path = "/account/tokens/{id}", tag = "account",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"),
              (status = 404, description = "No such live token", body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = state
        .store
        .revoke_token(&current.user.id, &id, now_ms())
        .await?
        .ok_or_else(|| ApiError::NotFound("no such live token of yours".into()))?;
    state
        .audit
        .record(
            &current.audit(),
            event::TOKEN_REVOKED,
            outcome::SUCCESS,
            Some((&current.user.id, &current.user.username)),
            Some(format!("token {name} ({id})")),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
