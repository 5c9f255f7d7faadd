//! Who is calling: browser sessions (cookie + CSRF token) and personal API tokens (bearer), the
//! extractors handlers use to require them, and sign-in throttling.

pub mod throttle;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;

use crate::domain::accounts::{now_ms, AccountState, Role, UserRow};
use crate::domain::settings::CookieSecure;
use crate::http::error::ApiError;
use crate::http::routes::AppState;
use crate::service::audit::{self, event, outcome};

pub const SESSION_COOKIE: &str = "berth_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const TOKEN_PREFIX: &str = "berth_";

/// `bytes` random bytes from the OS, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Secrets are stored only as hashes: a stolen database yields no usable session or token.
pub fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How the request proved who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    Session { token_hash: String, csrf: String },
    Token { id: String },
}

/// A signed-in, active user. Extracting it refuses anything else with 401/403.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: UserRow,
    pub credential: Credential,
    pub client: ClientInfo,
}

/// An active admin; others get 403 and an `authz.denied` audit entry.
#[derive(Debug, Clone)]
pub struct AdminUser(pub CurrentUser);

/// The caller's address and user agent, for the audit log and throttling.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub addr: Option<String>,
    pub user_agent: Option<String>,
    pub https: bool,
}

impl ClientInfo {
    pub fn audit(&self) -> audit::Context {
        audit::Context {
            client_addr: self.addr.clone(),
            user_agent: self.user_agent.clone(),
            ..Default::default()
        }
    }
}

impl CurrentUser {
    pub fn audit(&self) -> audit::Context {
        self.client.audit().with_actor(&self.user)
    }
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let socket = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let forwarded = state
            .auth
            .trust_forwarded_for
            .then(|| header_str(&parts.headers, "x-forwarded-for"))
            .flatten()
            .and_then(|v| v.split(',').next().map(|s| s.trim().to_string()))
            .filter(|s| s.parse::<std::net::IpAddr>().is_ok());
        let user_agent = header_str(&parts.headers, "user-agent").map(|ua| {
            // Bounded: the audit log is no place for a megabyte of header.
            ua.chars().take(256).collect()
        });
        let https = header_str(&parts.headers, "x-forwarded-proto") == Some("https");
        Ok(ClientInfo {
            addr: forwarded.or(socket),
            user_agent,
            https,
        })
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

/// `Set-Cookie` for a new session (or, with `None`, one that clears it).
pub fn session_set_cookie(
    value: Option<&str>,
    max_age_secs: u64,
    client: &ClientInfo,
    mode: CookieSecure,
) -> String {
    let secure = match mode {
        CookieSecure::Always => true,
        CookieSecure::Never => false,
        CookieSecure::Auto => client.https,
    };
    let (value, max_age) = match value {
        Some(v) => (v, max_age_secs),
        None => ("", 0),
    };
    format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

fn unauthenticated() -> ApiError {
    ApiError::Unauthenticated(
        "sign in first (or send an API token as `Authorization: Bearer ...`)".into(),
    )
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client = ClientInfo::from_request_parts(parts, state).await?;
        let now = now_ms();
        let bearer = header_str(&parts.headers, "authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let (user_id, credential) = if let Some(token) = bearer {
            let row = state
                .store
                .live_token(&sha256_hex(token))
                .await?
                .ok_or_else(|| {
                    ApiError::Unauthenticated("the API token is unknown or revoked".into())
                })?;
            // As with sessions below: a write per request would serialise concurrent requests
            // with one token on that row (and on SQLite's single writer); a minute is precise
            // enough for "last used".
            if row.last_used_at.is_none_or(|t| now - t > 60_000) {
                state.store.touch_token(&row.id, now).await?;
            }
            (row.user_id, Credential::Token { id: row.id })
        } else if let Some(cookie) = session_cookie(&parts.headers) {
            let token_hash = sha256_hex(&cookie);
            let session = state
                .store
                .session(&token_hash)
                .await?
                .ok_or_else(unauthenticated)?;
            let idle_ms = state.auth.session_idle_timeout.as_millis() as i64;
            if now >= session.expires_at || now - session.last_seen_at >= idle_ms {
                state.store.delete_session(&token_hash).await?;
                return Err(ApiError::Unauthenticated(
                    "your session has expired; sign in again".into(),
                ));
            }
            // Refreshing last-seen on every request would be a write per request; a little
            // slack (at most a tenth of the idle timeout, capped at a minute) is enough.
            if now - session.last_seen_at > (idle_ms / 10).min(60_000) {
                state.store.touch_session(&token_hash, now).await?;
            }
            if !is_safe(&parts.method) {
                let sent = header_str(&parts.headers, CSRF_HEADER).unwrap_or("");
                if !constant_time_eq(sent.as_bytes(), session.csrf_token.as_bytes()) {
                    return Err(ApiError::Forbidden {
                        code: "csrf_failed",
                        message: format!(
                            "missing or wrong {CSRF_HEADER} header; take the token from \
                             GET /api/v1/auth/session"
                        ),
                    });
                }
            }
            (
                session.user_id,
                Credential::Session {
                    token_hash,
                    csrf: session.csrf_token,
                },
            )
        } else {
            return Err(unauthenticated());
        };
        let user = state
            .store
            .user_by_id(&user_id)
            .await?
            .ok_or_else(unauthenticated)?;
        if user.state() != AccountState::Active {
            // Sessions of a disabled user are already deleted; this covers any race with that.
            return Err(ApiError::forbidden("this account is not active"));
        }
        Ok(CurrentUser {
            user,
            credential,
            client,
        })
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let current = CurrentUser::from_request_parts(parts, state).await?;
        if current.user.role() != Role::Admin {
            // Inside a nested router `uri` lost its prefix; the original has it.
            let path = parts
                .extensions
                .get::<axum::extract::OriginalUri>()
                .map_or_else(|| parts.uri.path().to_owned(), |o| o.0.path().to_owned());
            let detail = format!("{} {path}", parts.method);
            state
                .audit
                .record(
                    &current.audit(),
                    event::ACCESS_DENIED,
                    outcome::DENIED,
                    None,
                    Some(detail),
                )
                .await;
            return Err(ApiError::forbidden("this needs an admin"));
        }
        Ok(AdminUser(current))
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; berth_session=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(session_cookie(&h).as_deref(), Some("xyz"));
    }

    #[test]
    fn set_cookie_is_http_only_strict_and_secure_over_https() {
        let https = ClientInfo {
            https: true,
            ..Default::default()
        };
        let c = session_set_cookie(Some("v"), 60, &https, CookieSecure::Auto);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("Secure"));
        let c = session_set_cookie(Some("v"), 60, &ClientInfo::default(), CookieSecure::Auto);
        assert!(!c.contains("Secure"));
    }
}
