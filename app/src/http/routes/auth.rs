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
use crate::domain::accounts::{now_ms, password, AccountState, Role, User, UserRow, Username};
use crate::http::error::{ApiError, ErrorBody};
use crate::service::audit::{event, outcome};
use crate::service::auth::{
    random_token, session_cookie, session_set_cookie, sha256_hex, throttle, ClientInfo, Credential,
    CurrentUser,
};

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

/// Refuses a password that breaks the policy, listing every rule it breaks.
pub fn check_password(state: &AppState, password: &str) -> Result<(), ApiError> {
    let broken = state.auth.password_policy.violations(password);
    if broken.is_empty() {
        return Ok(());
    }
    let list: Vec<_> = broken.iter().map(|v| v.message.as_str()).collect();
    Err(ApiError::Invalid {
        message: format!("the password is not accepted: {}", list.join("; ")),
        details: Some(serde_json::json!({ "password": broken })),
    })
}

pub fn parse_username(raw: &str) -> Result<Username, ApiError> {
    Username::parse(raw).map_err(|why| ApiError::Invalid {
        message: format!("the user name is not accepted: {why}"),
        details: None,
    })
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
    let username = parse_username(&body.username)?;
    check_password(&state, &body.password)?;
    if let Some(addr) = &client.addr {
        // An address locked out of sign-in does not get to make accounts meanwhile either.
        throttle::check(
            &state,
            &[throttle::address_key(addr)],
            throttle::Counted::FailedSignIns,
        )
        .await?;
        let key = throttle::registration_key(addr);
        throttle::check(
            &state,
            std::slice::from_ref(&key),
            throttle::Counted::Registrations,
        )
        .await?;
        throttle::fail(&state, &[(key, state.auth.register_max_per_address)]).await?;
    }
    let now = now_ms();
    let row = UserRow {
        id: uuid::Uuid::new_v4().to_string(),
        username: username.to_string(),
        password_hash: password::hash(body.password).await,
        role: Role::User.as_str().into(),
        state: AccountState::Pending.as_str().into(),
        created_at: now,
        updated_at: now,
    };
    if !state.store.insert_user(&row).await? {
        return Err(ApiError::Conflict(format!(
            "the user name {username} is taken; choose another"
        )));
    }
    state
        .audit
        .record(
            &client.audit(),
            event::REGISTERED,
            outcome::SUCCESS,
            Some((&row.id, &row.username)),
            None,
        )
        .await;
    let body = Registered {
        user: row.public(),
        message: "registered; your account awaits approval by an admin".into(),
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

fn wrong_credentials() -> ApiError {
    ApiError::Unauthenticated("wrong user name or password".into())
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
    let audit_ctx = client.audit();
    let username = Username::parse(&body.username).ok();
    let name = username.as_ref().map_or("", Username::as_str).to_string();
    let mut keys = vec![throttle::account_key(&name)];
    if let Some(addr) = &client.addr {
        keys.push(throttle::address_key(addr));
    }
    throttle::check(&state, &keys, throttle::Counted::FailedSignIns).await?;

    let user = match &username {
        Some(u) => state.store.user_by_name(u.as_str()).await?,
        None => None,
    };
    // Verify against a decoy when there is no such user: same work, same answer, same time.
    let hash = user.as_ref().map_or_else(
        || password::decoy_hash().to_string(),
        |u| u.password_hash.clone(),
    );
    let matches = password::verify(body.password, hash).await && user.is_some();
    let target_owned = user.as_ref().map(|u| (u.id.clone(), u.username.clone()));
    let target = target_owned.as_ref().map(|(i, n)| (i.as_str(), n.as_str()));

    let Some(user) = user.filter(|_| matches) else {
        let mut limits = vec![(keys[0].clone(), state.auth.login_max_failures)];
        if let Some(k) = keys.get(1) {
            limits.push((k.clone(), state.auth.login_max_failures_per_address));
        }
        let locked = throttle::fail(&state, &limits).await?;
        let attempted = (!name.is_empty()).then(|| format!("attempted user name: {name}"));
        state
            .audit
            .record(
                &audit_ctx,
                event::SIGN_IN,
                outcome::FAILURE,
                target,
                attempted,
            )
            .await;
        if locked {
            state
                .audit
                .record(
                    &audit_ctx,
                    event::LOCKOUT,
                    outcome::SUCCESS,
                    target,
                    Some(format!(
                        "locked for {} s after repeated failures",
                        state.auth.login_lockout.as_secs()
                    )),
                )
                .await;
        }
        return Err(wrong_credentials());
    };

    let refusal = match user.state() {
        AccountState::Active => None,
        AccountState::Pending => Some((
            "pending_approval",
            "your account awaits approval by an admin",
        )),
        AccountState::Denied => Some(("account_denied", "an admin declined this account")),
        AccountState::Disabled => Some(("account_disabled", "this account is disabled")),
    };
    if let Some((code, message)) = refusal {
        state
            .audit
            .record(
                &audit_ctx,
                event::SIGN_IN,
                outcome::DENIED,
                target,
                Some(format!("account is {}", user.state)),
            )
            .await;
        return Err(ApiError::Forbidden {
            code,
            message: message.into(),
        });
    }
    state.store.clear_throttle(&keys[0]).await?;

    // A new session id at every sign-in; the one the browser had (if any) ends.
    if let Some(old) = session_cookie(&headers) {
        state.store.delete_session(&sha256_hex(&old)).await?;
    }
    let token = random_token(32);
    let csrf = random_token(32);
    let now = now_ms();
    let absolute = state.auth.session_absolute_timeout;
    state
        .store
        .insert_session(
            &sha256_hex(&token),
            &user.id,
            &csrf,
            now,
            now + absolute.as_millis() as i64,
            client.addr.as_deref(),
            client.user_agent.as_deref(),
        )
        .await?;
    state
        .audit
        .record(
            &audit_ctx.with_actor(&user),
            event::SIGN_IN,
            outcome::SUCCESS,
            target,
            None,
        )
        .await;
    let cookie = session_set_cookie(
        Some(&token),
        absolute.as_secs(),
        &client,
        state.auth.cookie_secure,
    );
    let body = SessionInfo {
        user: user.public(),
        csrf_token: Some(csrf),
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Ends this browser session on the server and clears the cookie.
#[utoipa::path(post, path = "/auth/sign-out", tag = "auth",
    responses((status = 204, description = "Signed out"),
              (status = 401, description = "Not signed in", body = ErrorBody)))]
pub async fn sign_out(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Response, ApiError> {
    if let Credential::Session { token_hash, .. } = &current.credential {
        state.store.delete_session(token_hash).await?;
    }
    state
        .audit
        .record(
            &current.audit(),
            event::SIGN_OUT,
            outcome::SUCCESS,
            Some((&current.user.id, &current.user.username)),
            None,
        )
        .await;
    let cookie = session_set_cookie(None, 0, &current.client, state.auth.cookie_secure);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
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
            crate::domain::accounts::policy::PolicyKind::Composition => "composition",
            crate::domain::accounts::policy::PolicyKind::Length => "length",
        }
        .into(),
        min_length: p.min_length,
        rules: p.describe(),
    })
}
