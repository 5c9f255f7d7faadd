//! Who is calling, as the handlers see it: the extractors that require a signed-in user or an
//! admin (the checks themselves are `service::auth`'s), the client's address, the session cookie.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use std::net::SocketAddr;

use super::error::ApiError;
use super::routes::AppState;
use crate::domain::accounts::Role;
use crate::domain::settings::CookieSecure;
use crate::service::audit::{self, event, outcome};
use crate::service::auth::{not_signed_in, Client, Presented};
pub use crate::service::auth::{Credential, CSRF_HEADER};
use crate::store::UserRow;

pub const SESSION_COOKIE: &str = "berth_session";

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
    /// The caller as the accounts service takes it.
    pub fn client(&self) -> Client<'_> {
        Client {
            addr: self.addr.as_deref(),
            user_agent: self.user_agent.as_deref(),
            audit: self.audit(),
        }
    }

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
    cookie(headers, SESSION_COOKIE)
}

/// The value of the cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
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

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client = ClientInfo::from_request_parts(parts, state).await?;
        let bearer = header_str(&parts.headers, "authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let cookie = session_cookie(&parts.headers);
        let presented = match (bearer, &cookie) {
            (Some(token), _) => Presented::Bearer(token),
            (None, Some(cookie)) => Presented::Session {
                cookie,
                csrf: header_str(&parts.headers, CSRF_HEADER),
            },
            (None, None) => return Err(not_signed_in().into()),
        };
        let changes_state = !is_safe(&parts.method);
        let (user, credential) = state
            .accounts()
            .authenticate(presented, changes_state)
            .await?;
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
