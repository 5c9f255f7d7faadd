//! Registration, sign-in and sign-out, the current session, the password policy.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::domain::accounts::policy::PolicyKind;
use crate::domain::accounts::User;
use crate::http::auth::{session_cookie, session_set_cookie, ClientInfo, Credential, CurrentUser};
use crate::http::error::{ApiError, ErrorBody};
use crate::service::audit::{event, outcome};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(sign_in))
        .routes(routes!(sign_out))
        .routes(routes!(session))
        .routes(routes!(policy))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    pub user: User,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    pub user: User,
    /// Send back as the `X-CSRF-Token` header on every POST/PUT/PATCH/DELETE made with the cookie.
    pub csrf_token: Option<String>,
}

/// Creates an account that waits for an admin's approval.
#[utoipa::path(post, path = "/auth/register", tag = "auth",
    request_body = Credentials,
    responses(
        (status = 202, description = "Registered; awaits approval", body = Registered),
        (status = 409, description = "Name taken", body = ErrorBody),
        (status = 422, description = "Name or password refused, every broken rule listed", body = ErrorBody),
        (status = 429, description = "Too many registrations from this address; see Retry-After", body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(body): Json<Credentials>,
) -> Result<Response, ApiError> {
    let row = state
        .accounts()
        .register(&client.client(), &body.username, body.password)
        .await?;
    let body = Registered {
        user: row.public(),
        message: "registered; your account awaits approval by an admin".into(),
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// Signs in with a password and starts a browser session (cookie).
#[utoipa::path(post, path = "/auth/sign-in", tag = "auth",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = SessionInfo),
        (status = 401, description = "Wrong user name or password (the same for both)", body = ErrorBody),
        (status = 403, description = "Account pending approval, denied or disabled", body = ErrorBody),
        (status = 429, description = "Too many failures; see Retry-After", body = ErrorBody),
    ))]
pub async fn sign_in(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: axum::http::HeaderMap,
    Json(body): Json<Credentials>,
) -> Result<Response, ApiError> {
    let old = session_cookie(&headers);
    let session = state
        .accounts()
        .sign_in(
            &client.client(),
            &body.username,
            body.password,
            old.as_deref(),
        )
        .await?;
    let cookie = session_set_cookie(
        Some(&session.token),
        state.auth.session_absolute_timeout.as_secs(),
        &client,
        state.auth.cookie_secure,
    );
    let body = SessionInfo {
        user: session.user.public(),
        csrf_token: Some(session.csrf),
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignedOut {
    /// The provider's page that ends its own session too: offer it to the person.
    pub end_session_url: String,
}

/// Ends this browser session on the server and clears the cookie. A session that came from an
/// OpenID provider with an end-session endpoint answers 200 with that provider's URL.
#[utoipa::path(post, path = "/auth/sign-out", tag = "auth",
    responses((status = 204, description = "Signed out"),
              (status = 200, description = "Signed out of Berth; the provider's end-session \
                  URL is offered", body = SignedOut),
              (status = 401, description = "Not signed in", body = ErrorBody)))]
pub async fn sign_out(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Response, ApiError> {
    let mut provider = None;
    if let Credential::Session { token_hash, .. } = &current.credential {
        provider = state.store.session_provider(token_hash).await?;
        state.store.delete_session(token_hash).await?;
    }
    state
        .audit
        .record(
            &current.audit(),
            event::SIGN_OUT,
            outcome::SUCCESS,
            Some((&current.user.id, &current.user.username)),
            provider.as_ref().map(|p| format!("provider {p}")),
        )
        .await;
    let cookie = session_set_cookie(None, 0, &current.client, state.auth.cookie_secure);
    let end_session_url = match &provider {
        Some(id) => state.oidc.end_session_url(id).await,
        None => None,
    };
    Ok(match end_session_url {
        Some(end_session_url) => (
            [(header::SET_COOKIE, cookie)],
            Json(SignedOut { end_session_url }),
        )
            .into_response(),
        None => (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response(),
    })
}

/// Who is signed in, and the CSRF token for this session.
#[utoipa::path(get, path = "/auth/session", tag = "auth",
    responses((status = 200, body = SessionInfo),
              (status = 401, description = "Not signed in", body = ErrorBody)))]
pub async fn session(current: CurrentUser) -> Json<SessionInfo> {
    let csrf_token = match current.credential {
        Credential::Session { csrf, .. } => Some(csrf),
        Credential::Token { .. } => None,
    };
    Json(SessionInfo {
        user: current.user.public(),
        csrf_token,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyInfo {
    /// `composition` or `length`.
    pub kind: String,
    pub min_length: usize,
    /// The rules, for people.
    pub rules: Vec<String>,
}

/// The password rules in force, so forms can show them.
#[utoipa::path(get, path = "/auth/password-policy", tag = "auth",
    responses((status = 200, body = PolicyInfo)))]
pub async fn policy(State(state): State<AppState>) -> Json<PolicyInfo> {
    let p = state.auth.password_policy;
    Json(PolicyInfo {
        kind: match p.kind {
            PolicyKind::Composition => "composition",
            PolicyKind::Length => "length",
        }
        .into(),
        min_length: p.min_length,
        rules: p.describe(),
    })
}
