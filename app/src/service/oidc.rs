//! Sign-in with an OpenID provider: the authorization-code flow with PKCE and a nonce, the
//! provider found by discovery from its issuer, the ID token checked (signature against the
//! provider's keys, `iss`, `aud`, `exp`, `nonce`). The protocol is the `openidconnect` crate's;
//! here are what Berth adds: flows kept on the server and used once, bound to the browser that
//! started them; discovery fetched on first use (a provider that is down does not stop Berth);
//! the provider's keys fetched again when a token names a key not seen yet (rotation), at most
//! once per [`JWKS_REFETCH_FLOOR`], so forged key ids cannot make Berth hammer the provider.
//!
//! The accounts' side (link, create, approve, start a session) is `service::auth`'s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    JsonWebKeySet, Nonce, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl,
    ProviderMetadataWithLogout, RedirectUrl, RequestTokenError, Scope, SignatureVerificationError,
    TokenResponse as _,
};

use crate::domain::accounts::now_ms;
use crate::domain::secret::{constant_time_eq, random_token, sha256_hex};
use crate::domain::settings::OidcProvider;
use crate::store::{OidcFlowRow, Store};

/// How long a sign-in may take from the click to the provider's answer.
pub const FLOW_LIFETIME: Duration = Duration::from_secs(600);

/// Fetches of a provider's keys because a token named an unknown key: at most one per this.
pub const JWKS_REFETCH_FLOOR: Duration = Duration::from_secs(60);

/// Why a sign-in with a provider failed. `code` goes to the browser (the login page says it
/// in words); `detail` goes to the audit log and the server log, never to the browser.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("no OpenID provider {0:?} is configured")]
    UnknownProvider(String),
    #[error("{detail}")]
    Failed { code: FailCode, detail: String },
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// What the person is told, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailCode {
    /// The provider could not be reached, or answered nonsense.
    Unavailable,
    /// The provider said no (the person cancelled, or the provider refused the client).
    ProviderRefused,
    /// The sign-in took longer than [`FLOW_LIFETIME`].
    Expired,
    /// A state that is unknown, used already, or from another browser.
    BadState,
    /// The ID token failed a check: signature, issuer, audience, expiry or nonce.
    InvalidToken,
}

impl FailCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FailCode::Unavailable => "provider_unavailable",
            FailCode::ProviderRefused => "provider_refused",
            FailCode::Expired => "expired",
            FailCode::BadState => "bad_state",
            FailCode::InvalidToken => "invalid_token",
        }
    }
}

fn failed(code: FailCode, detail: impl Into<String>) -> OidcError {
    OidcError::Failed {
        code,
        detail: detail.into(),
    }
}

/// A started sign-in: where to send the browser, and the value its flow cookie must hold.
pub struct Started {
    pub authorize_url: String,
    pub browser_secret: String,
}

/// What the provider's answer to the browser carried (the callback's query).
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    /// Set instead of `code` when the provider refused (e.g. `access_denied`).
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// The issuer of the answer (RFC 9207), when the provider says it.
    pub iss: Option<String>,
}

/// A person the provider vouched for, from a checked ID token.
#[derive(Debug, Clone)]
pub struct Verified {
    pub issuer: String,
    pub subject: String,
    /// `preferred_username`, else the e-mail address: a user name is made from it.
    pub name_hint: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
}

struct Cached {
    /// The discovery document and when it was fetched.
    metadata: Option<(ProviderMetadataWithLogout, Instant)>,
    last_key_refetch: Option<Instant>,
}

/// A discovery document older than this is fetched again at the next sign-in (a provider that
/// moved an endpoint is followed without restarting Berth).
const DISCOVERY_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

struct Provider {
    config: OidcProvider,
    cache: tokio::sync::Mutex<Cached>,
}

/// The configured providers and what Berth has learnt of them. One per process, shared.
pub struct Oidc {
    providers: Vec<Arc<Provider>>,
    /// Berth's outbound client with redirects off: a token request must not be redirected
    /// (the client secret and code would follow).
    http: reqwest::Client,
    public_url: String,
}

impl Oidc {
    pub fn new(
        providers: Vec<OidcProvider>,
        public_url: Option<String>,
        http: reqwest::Client,
    ) -> Oidc {
        Oidc {
            providers: providers
                .into_iter()
                .map(|config| {
                    Arc::new(Provider {
                        config,
                        cache: tokio::sync::Mutex::new(Cached {
                            metadata: None,
                            last_key_refetch: None,
                        }),
                    })
                })
                .collect(),
            http,
            public_url: public_url.unwrap_or_default(),
        }
    }

    /// The providers, in the configured order: (id, display name).
    pub fn list(&self) -> Vec<(&str, &str)> {
        self.providers
            .iter()
            .map(|p| (p.config.id.as_str(), p.config.display_name.as_str()))
            .collect()
    }

    pub fn display_name(&self, id: &str) -> Option<&str> {
        self.provider(id)
            .ok()
            .map(|p| p.config.display_name.as_str())
    }

    fn provider(&self, id: &str) -> Result<&Arc<Provider>, OidcError> {
        self.providers
            .iter()
            .find(|p| p.config.id == id)
            .ok_or_else(|| OidcError::UnknownProvider(id.to_string()))
    }

    /// Where the provider sends the browser back: PUBLIC_URL/api/v1/auth/oidc/ID/callback.
    pub fn redirect_uri(&self, id: &str) -> String {
        format!("{}/api/v1/auth/oidc/{id}/callback", self.public_url)
    }

    /// The provider's discovery document (with its keys), fetched on first use.
    async fn metadata(&self, p: &Provider) -> Result<ProviderMetadataWithLogout, OidcError> {
        let mut cache = p.cache.lock().await;
        if let Some((m, at)) = &cache.metadata {
            if at.elapsed() < DISCOVERY_MAX_AGE {
                return Ok(m.clone());
            }
        }
        let issuer = IssuerUrl::new(p.config.issuer.clone())
            .map_err(|e| failed(FailCode::Unavailable, format!("issuer URL is invalid: {e}")))?;
        let m = ProviderMetadataWithLogout::discover_async(issuer, &self.http)
            .await
            .map_err(|e| {
                failed(
                    FailCode::Unavailable,
                    format!("discovery at {} failed: {}", p.config.issuer, chain(&e)),
                )
            })?;
        cache.metadata = Some((m.clone(), Instant::now()));
        Ok(m)
    }

    fn client(&self, p: &Provider, m: ProviderMetadataWithLogout) -> Result<OidcClient, OidcError> {
        let redirect = RedirectUrl::new(self.redirect_uri(&p.config.id))
            .map_err(|e| failed(FailCode::Unavailable, format!("redirect URI: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            m,
            ClientId::new(p.config.client_id.clone()),
            Some(ClientSecret::new(p.config.client_secret.clone())),
        )
        .set_redirect_uri(redirect))
    }

    /// Starts a sign-in: a flow recorded for one use, and the provider's authorization URL.
    pub async fn start(&self, store: &Store, id: &str) -> Result<Started, OidcError> {
        let p = self.provider(id)?;
        let client = self.client(p, self.metadata(p).await?)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in p.config.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let browser_secret = random_token(32);
        store
            .insert_oidc_flow(&OidcFlowRow {
                state_hash: sha256_hex(state.secret()),
                provider: id.to_string(),
                browser_hash: sha256_hex(&browser_secret),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                created_at: now_ms(),
            })
            .await?;
        // Abandoned flows go now and then; a sign-in is a fine moment.
        let before = now_ms() - FLOW_LIFETIME.as_millis() as i64;
        store.delete_oidc_flows_before(before).await?;
        Ok(Started {
            authorize_url: url.to_string(),
            browser_secret,
        })
    }

    /// Finishes a sign-in: takes the flow (once), exchanges the code, checks the ID token.
    pub async fn finish(
        &self,
        store: &Store,
        id: &str,
        answer: &Callback,
        browser_secret: Option<&str>,
    ) -> Result<Verified, OidcError> {
        let p = self.provider(id)?;
        let Some(state) = answer.state.as_deref() else {
            return Err(failed(FailCode::BadState, "the answer has no state"));
        };
        let flow = store
            .take_oidc_flow(&sha256_hex(state))
            .await?
            .ok_or_else(|| failed(FailCode::BadState, "state unknown or already used"))?;
        let bound = browser_secret.is_some_and(|s| {
            constant_time_eq(sha256_hex(s).as_bytes(), flow.browser_hash.as_bytes())
        });
        if !bound {
            return Err(failed(
                FailCode::BadState,
                "state was not issued to this browser (flow cookie missing or wrong)",
            ));
        }
        if flow.provider != id {
            return Err(failed(
                FailCode::BadState,
                format!("state was issued for provider {:?}", flow.provider),
            ));
        }
        if now_ms() - flow.created_at > FLOW_LIFETIME.as_millis() as i64 {
            return Err(failed(
                FailCode::Expired,
                format!("the sign-in took longer than {} s", FLOW_LIFETIME.as_secs()),
            ));
        }
        if let Some(error) = &answer.error {
            let description = answer.error_description.as_deref().unwrap_or("");
            return Err(failed(
                FailCode::ProviderRefused,
                format!("the provider answered {error}: {description}")
                    .chars()
                    .take(300)
                    .collect::<String>(),
            ));
        }
        let Some(code) = &answer.code else {
            return Err(failed(FailCode::ProviderRefused, "the answer has no code"));
        };

        let metadata = self.metadata(p).await?;
        // A provider that names itself must be the one this flow went to (mix-up defence).
        if let Some(iss) = &answer.iss {
            if iss != metadata.issuer().as_str() {
                return Err(failed(
                    FailCode::BadState,
                    format!("the answer names another issuer: {iss:.200}"),
                ));
            }
        }
        let client = self.client(p, metadata)?;
        let request = client
            .exchange_code(AuthorizationCode::new(code.clone()))
            .map_err(|e| failed(FailCode::Unavailable, format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier));
        let tokens = request
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => failed(
                    FailCode::ProviderRefused,
                    format!("the token endpoint refused the code: {r}"),
                ),
                other => failed(
                    FailCode::Unavailable,
                    format!("the token request failed: {}", chain(&other)),
                ),
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| failed(FailCode::InvalidToken, "the token response has no ID token"))?;
        let nonce = Nonce::new(flow.nonce);
        self.verify(p, id_token, &nonce).await
    }

    /// Checks the ID token; a key id not among the provider's known keys fetches them again
    /// (at most once per floor) and checks once more.
    async fn verify(
        &self,
        p: &Provider,
        id_token: &CoreIdToken,
        nonce: &Nonce,
    ) -> Result<Verified, OidcError> {
        let metadata = self.metadata(p).await?;
        match self.check(p, metadata, id_token, nonce)? {
            Checked::Valid(v) => return Ok(v),
            Checked::UnknownKey => {}
        }
        let metadata = self.refetch_keys(p).await?;
        match self.check(p, metadata, id_token, nonce)? {
            Checked::Valid(v) => Ok(v),
            Checked::UnknownKey => Err(failed(
                FailCode::InvalidToken,
                "ID token signed with a key the provider does not publish",
            )),
        }
    }

    fn check(
        &self,
        p: &Provider,
        metadata: ProviderMetadataWithLogout,
        id_token: &CoreIdToken,
        nonce: &Nonce,
    ) -> Result<Checked, OidcError> {
        let client = self.client(p, metadata)?;
        let verifier = client.id_token_verifier().set_allowed_algs(ASYMMETRIC_ALGS);
        let claims = match id_token.claims(&verifier, nonce) {
            Ok(claims) => claims,
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => return Ok(Checked::UnknownKey),
            Err(e) => return Err(failed(FailCode::InvalidToken, describe(&e))),
        };
        let email = claims.email().map(|e| e.as_str().to_string());
        let name_hint = claims
            .preferred_username()
            .map(|n| n.as_str().to_string())
            .or_else(|| email.clone());
        Ok(Checked::Valid(Verified {
            issuer: claims.issuer().as_str().to_string(),
            subject: claims.subject().as_str().to_string(),
            name_hint,
            email,
            groups: groups(&id_token.to_string(), &p.config.groups_claim),
        }))
    }

    async fn refetch_keys(&self, p: &Provider) -> Result<ProviderMetadataWithLogout, OidcError> {
        let mut cache = p.cache.lock().await;
        let Some((mut metadata, fetched)) = cache.metadata.clone() else {
            return Err(failed(FailCode::Unavailable, "no discovery document"));
        };
        if cache
            .last_key_refetch
            .is_some_and(|at| at.elapsed() < JWKS_REFETCH_FLOOR)
        {
            return Err(failed(
                FailCode::InvalidToken,
                format!(
                    "ID token names an unknown key, and the provider's keys were fetched less \
                     than {} s ago",
                    JWKS_REFETCH_FLOOR.as_secs()
                ),
            ));
        }
        cache.last_key_refetch = Some(Instant::now());
        let keys = JsonWebKeySet::fetch_async(metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| {
                failed(
                    FailCode::Unavailable,
                    format!("fetching the provider's keys failed: {}", chain(&e)),
                )
            })?;
        tracing::info!(provider = %p.config.id, keys = keys.keys().len(), "fetched the OpenID provider's keys again");
        metadata = metadata.set_jwks(keys);
        cache.metadata = Some((metadata.clone(), fetched));
        Ok(metadata)
    }

    /// The provider's end-session URL for a session that came from it, if it has one.
    pub async fn end_session_url(&self, id: &str) -> Option<String> {
        let p = self.provider(id).ok()?;
        let metadata = self.metadata(p).await.ok()?;
        let endpoint = metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let back = PostLogoutRedirectUrl::new(format!("{}/", self.public_url)).ok()?;
        let request = openidconnect::LogoutRequest::from(endpoint)
            .set_client_id(ClientId::new(p.config.client_id.clone()))
            .set_post_logout_redirect_uri(back);
        Some(request.http_get_url().to_string())
    }

    pub fn config(&self, id: &str) -> Option<&OidcProvider> {
        self.provider(id).ok().map(|p| &p.config)
    }
}

type OidcClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

enum Checked {
    Valid(Verified),
    UnknownKey,
}

/// Signatures with the provider's public keys only: never a MAC keyed by the client secret.
const ASYMMETRIC_ALGS: [CoreJwsSigningAlgorithm; 7] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// The audit log's words for a failed check.
fn describe(e: &ClaimsVerificationError) -> String {
    match e {
        ClaimsVerificationError::Expired(why) => format!("ID token expired ({why})"),
        ClaimsVerificationError::InvalidAudience(why) => {
            format!("ID token has the wrong audience ({why})")
        }
        ClaimsVerificationError::InvalidIssuer(why) => {
            format!("ID token has the wrong issuer ({why})")
        }
        ClaimsVerificationError::InvalidNonce(why) => {
            format!("ID token nonce does not match ({why})")
        }
        ClaimsVerificationError::SignatureVerification(why) => {
            format!("ID token signature is invalid ({why})")
        }
        other => format!("ID token refused ({other})"),
    }
}

/// An error with its causes, for the log ("request failed: connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out += &format!(": {s}");
        source = s.source();
    }
    out
}

/// The groups claim of a token whose signature was checked already: a list of strings, or one
/// string. The crate's typed claims have no field for a claim named in the settings, so it is
/// read from the payload itself.
fn groups(jwt: &str, claim: &str) -> Vec<String> {
    use base64::Engine as _;
    let Some(payload) = jwt.split('.').nth(1) else {
        return Vec::new();
    };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else {
        return Vec::new();
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Vec::new();
    };
    match &value[claim] {
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        serde_json::Value::String(one) => vec![one.clone()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_read_as_a_list_or_one_string() {
        use base64::Engine as _;
        let jwt = |claims: serde_json::Value| {
            let b = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
            format!("e30.{b}.sig")
        };
        let list = jwt(serde_json::json!({"groups": ["a", "b", 3]}));
        assert_eq!(groups(&list, "groups"), ["a", "b"]);
        let one = jwt(serde_json::json!({"roles": "admins"}));
        assert_eq!(groups(&one, "roles"), ["admins"]);
        assert!(groups(&one, "groups").is_empty());
        assert!(groups("garbage", "groups").is_empty());
    }
}
