//! Sign-in with an OpenID provider, as browser navigations: /start sends the browser to the
//! provider, /callback takes it back. A failure sends the browser to the sign-in page with a
//! code (`/sign-in?sign_in_error=CODE&provider=ID`) that the page says in words; what went wrong in
//! detail is in the audit log, never in the browser.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::domain::settings::CookieSecure;
use crate::http::auth::{cookie, session_cookie, session_set_cookie, ClientInfo};
use crate::http::error::{ApiError, ErrorBody};
use crate::service::audit::{event, outcome};
use crate::service::auth::AuthError;
use crate::service::oidc::{Callback, OidcError, FLOW_LIFETIME};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(providers))
        .routes(routes!(start))
        .routes(routes!(callback))
}

/// Binds a sign-in under way to the browser that started it. SameSite=Lax: the provider's
/// redirect back is a cross-site navigation, which a Strict cookie would not accompany.
const FLOW_COOKIE: &str = "berth_oidc_flow";

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderInfo {
    pub id: String,
    pub display_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignInOptions {
    /// Whether the user name and password form is on.
    pub password_login: bool,
    /// One button each: `GET /api/v1/auth/oidc/{id}/start` signs in with it.
    pub providers: Vec<ProviderInfo>,
    /// True while no active admin exists: the sign-in page says how to create the first one.
    pub needs_admin: bool,
}

/// The ways to sign in here, for the sign-in page.
#[utoipa::path(get, path = "/auth/providers", tag = "auth",
    responses((status = 200, body = SignInOptions)))]
pub async fn providers(State(state): State<AppState>) -> Result<Json<SignInOptions>, ApiError> {
    let needs_admin = state.store.count_active_admins().await? == 0;
    Ok(Json(SignInOptions {
        needs_admin,
        password_login: state.auth.password_login,
        providers: state
            .oidc
            .list()
            .into_iter()
            .map(|(id, name)| ProviderInfo {
                id: id.into(),
                display_name: name.into(),
            })
            .collect(),
    }))
}

/// Starts signing in with a provider: redirects the browser to the provider's sign-in page.
#[utoipa::path(get, path = "/auth/oidc/{provider}/start", tag = "auth",
    params(("provider" = String, Path, description = "The provider's id in the settings")),
    responses(
        (status = 303, description = "To the provider's sign-in page (or, when the provider \
            cannot be reached, back to the sign-in page with `sign_in_error`)"),
        (status = 404, description = "No such provider", body = ErrorBody),
    ))]
pub async fn start(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(provider): Path<String>,
) -> Result<Response, ApiError> {
    match state.oidc.start(&state.store, &provider).await {
        Ok(started) => {
            let cookie = flow_cookie(
                Some(&started.browser_secret),
                &client,
                state.auth.cookie_secure,
            );
            Ok((
                [(header::SET_COOKIE, cookie)],
                see_other(&started.authorize_url),
            )
                .into_response())
        }
        Err(e) => fail(&state, &client, &provider, e).await,
    }
}

/// Where the provider sends the browser back. Signs in and redirects to the chat, or back to
/// the sign-in page with `sign_in_error` (`pending_approval`, `account_denied`,
/// `account_disabled`, `expired`, `bad_state`, `invalid_token`, `provider_refused`,
/// `provider_unavailable`, `failed`).
#[utoipa::path(get, path = "/auth/oidc/{provider}/callback", tag = "auth",
    params(("provider" = String, Path, description = "The provider's id in the settings"),
           Callback),
    responses(
        (status = 303, description = "Signed in (the session cookie is set) and on to `/`, \
            or refused and back to `/sign-in?sign_in_error=CODE&provider=ID`"),
        (status = 404, description = "No such provider", body = ErrorBody),
    ))]
pub async fn callback(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    Path(provider): Path<String>,
    Query(answer): Query<Callback>,
) -> Result<Response, ApiError> {
    let browser = cookie(&headers, FLOW_COOKIE);
    let person = match state
        .oidc
        .finish(&state.store, &provider, &answer, browser.as_deref())
        .await
    {
        Ok(person) => person,
        Err(e) => return fail(&state, &client, &provider, e).await,
    };
    let Some(config) = state.oidc.config(&provider) else {
        return Err(ApiError::NotFound(format!(
            "no sign-in provider {provider:?}"
        )));
    };
    let clear_flow = flow_cookie(None, &client, state.auth.cookie_secure);
    let old = session_cookie(&headers);
    let session = match state
        .accounts()
        .sign_in_oidc(&client.client(), config, &person, old.as_deref())
        .await
    {
        Ok(session) => session,
        Err(AuthError::Refused { code, .. }) => {
            return Ok(([(header::SET_COOKIE, clear_flow)], back(code, &provider)).into_response())
        }
        Err(AuthError::Taken(why)) => {
            tracing::warn!(%why, "no user name for a new account");
            return Ok((
                [(header::SET_COOKIE, clear_flow)],
                back("failed", &provider),
            )
                .into_response());
        }
        Err(e) => return Err(e.into()),
    };
    let session_cookie = session_set_cookie(
        Some(&session.token),
        state.auth.session_absolute_timeout.as_secs(),
        &client,
        state.auth.cookie_secure,
    );
    let mut response = see_other("/").into_response();
    for c in [clear_flow, session_cookie] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

/// Audits a failed sign-in and sends the browser back to the sign-in page with its code.
async fn fail(
    state: &AppState,
    client: &ClientInfo,
    provider: &str,
    e: OidcError,
) -> Result<Response, ApiError> {
    match e {
        OidcError::UnknownProvider(id) => Err(ApiError::NotFound(format!(
            "no sign-in provider {id:?}; GET /api/v1/auth/providers lists them"
        ))),
        OidcError::Store(e) => Err(e.into()),
        OidcError::Failed { code, detail } => {
            tracing::warn!(provider, code = code.as_str(), %detail, "sign-in with an OpenID provider failed");
            state
                .audit
                .record(
                    &client.audit(),
                    event::OIDC_SIGN_IN,
                    outcome::FAILURE,
                    None,
                    Some(format!("provider {provider}: {detail}")),
                )
                .await;
            let clear = flow_cookie(None, client, state.auth.cookie_secure);
            Ok(([(header::SET_COOKIE, clear)], back(code.as_str(), provider)).into_response())
        }
    }
}

fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => ApiError::Internal(anyhow::anyhow!("a redirect location is not a header value"))
            .into_response(),
    }
}

/// To the sign-in page, with what went wrong as a code (ids are `a-z 0-9 -`: no escaping).
fn back(code: &str, provider: &str) -> Response {
    see_other(&format!(
        "/sign-in?sign_in_error={code}&provider={provider}"
    ))
}

fn flow_cookie(value: Option<&str>, client: &ClientInfo, mode: CookieSecure) -> String {
    let secure = match mode {
        CookieSecure::Always => true,
        CookieSecure::Never => false,
        CookieSecure::Auto => client.https,
    };
    let (value, max_age) = match value {
        Some(v) => (v, FLOW_LIFETIME.as_secs()),
        None => ("", 0),
    };
    format!(
        "{FLOW_COOKIE}={value}; Path=/api/v1/auth/oidc/; HttpOnly; SameSite=Lax; \
         Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}
