//! The values the layers run with: plain data, parsed and checked by `config` (the composition
//! root) from the declared settings. Each layer reads its part; none parses.

use std::path::PathBuf;
use std::time::Duration;

use crate::domain::accounts::policy::PasswordPolicy;
use crate::domain::documents::Budget;

/// What one client may hold of the server: time to send headers and bodies, time per request,
/// connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
}

/// Which HTTP API an LLM or embedding server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Ollama,
    OpenAi,
}

/// A model on a server.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub api: Api,
    /// Base URL without a trailing slash.
    pub url: String,
    pub model: String,
    pub api_key: Option<String>,
}

/// How answers are drawn from the LLM.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    pub temperature: f64,
    pub max_tokens: u32,
}

/// Where embeddings come from, as configured (`embed_api`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedApi {
    /// The server when a URL is set, else the built-in model when present, else none.
    Auto,
    Builtin,
    Server(Api),
}

/// A sentence-embedding model run inside Berth.
#[derive(Debug, Clone)]
pub struct BuiltinModel {
    /// Its Hugging Face id (or directory name): the name vectors are stored under, with the
    /// weights' hash.
    pub name: String,
    pub dir: PathBuf,
    /// Threads for bulk embedding (queries get as many more).
    pub threads: usize,
}

#[derive(Debug, Clone)]
pub enum Embedding {
    Server(Endpoint),
    Builtin(BuiltinModel),
}

/// The built-in embedder's model when none is named.
pub const DEFAULT_BUILTIN_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";

#[derive(Debug, Clone)]
pub struct RagSettings {
    pub llm: Option<Endpoint>,
    pub embed: Option<Embedding>,
    pub llm_timeout: Duration,
    pub sampling: Sampling,
    pub max_upload_bytes: u64,
    /// What extracting one document may cost.
    pub extract: Budget,
    pub chunk_size: usize,
    pub chunk_overlap: usize,
    pub retrieval_k: usize,
    pub lexical_weight: f64,
    pub vector_weight: f64,
    /// Redis for the query cache (a validated redis:// or rediss:// URL; may hold a password,
    /// so never logged); None: no cache.
    pub redis_url: Option<String>,
    /// The CA that signed a rediss:// server's certificate (PEM, checked readable at load).
    pub redis_ca_file: Option<PathBuf>,
    pub cache_ttl: Duration,
    /// Extra certificate authorities for outbound HTTPS (PEM).
    pub ca_bundle: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub password_policy: PasswordPolicy,
    pub session_idle_timeout: Duration,
    pub session_absolute_timeout: Duration,
    pub login_max_failures: i64,
    pub login_max_failures_per_address: i64,
    pub login_lockout: Duration,
    pub register_max_per_address: i64,
    pub trust_forwarded_for: bool,
    pub cookie_secure: CookieSecure,
    /// Whether accounts may sign in (and register) with a password. `berth admin` works either way.
    pub password_login: bool,
    /// The OpenID providers people may sign in with, in the order the login page shows them.
    pub oidc_providers: Vec<OidcProvider>,
    /// The address people reach Berth at, without a trailing slash: redirect URIs come from it.
    pub public_url: Option<String>,
}

/// An OpenID provider, as configured in `oidc_providers_file`.
#[derive(Clone)]
pub struct OidcProvider {
    /// Its name in Berth's URLs (`/api/v1/auth/oidc/ID/callback`): `a-z 0-9 -`.
    pub id: String,
    pub display_name: String,
    /// The issuer URL, as the provider's discovery document states it.
    pub issuer: String,
    pub client_id: String,
    /// Read from `client_secret_file`; never logged.
    pub client_secret: String,
    /// Scopes asked for besides `openid`.
    pub scopes: Vec<String>,
    /// The ID token claim listing the person's groups.
    pub groups_claim: String,
    /// Members of any of these groups are approved at their first sign-in.
    pub auto_approve_groups: Vec<String>,
    /// Members of any of these groups are admins (approved too); with none, roles are Berth's.
    pub admin_groups: Vec<String>,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Everything but the client secret.
        f.debug_struct("OidcProvider")
            .field("id", &self.id)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieSecure {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DatabaseLocation {
    /// The embedded default: a SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (kept out of logs: it may hold a password), with
    /// `database_ca_file` in it as `sslrootcert`.
    Postgres(String),
}
