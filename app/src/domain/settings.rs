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
    /// Whether people may register; the default of the run-time setting (`Tunables`).
    pub registration_open: bool,
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

/// What an admin may change while Berth runs (`/admin/settings`), over the server's settings,
/// which stay the defaults: the values every request reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Tunables {
    /// The LLM's model name; None when no LLM is configured (then it cannot be set).
    pub llm_model: Option<String>,
    pub retrieval_k: usize,
    pub lexical_weight: f64,
    pub vector_weight: f64,
    /// Whether people may register (with a password) at all.
    pub registration_open: bool,
}

/// One setting of [`Tunables`]: its key (as in the server's settings) and how a value parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tunable {
    LlmModel,
    RetrievalK,
    LexicalWeight,
    VectorWeight,
    RegistrationOpen,
}

impl Tunable {
    pub const ALL: [Tunable; 5] = [
        Tunable::LlmModel,
        Tunable::RetrievalK,
        Tunable::LexicalWeight,
        Tunable::VectorWeight,
        Tunable::RegistrationOpen,
    ];

    /// The key, the same as the server setting it overrides.
    pub fn key(self) -> &'static str {
        match self {
            Tunable::LlmModel => "llm_model",
            Tunable::RetrievalK => "retrieval_k",
            Tunable::LexicalWeight => "retrieval_lexical_weight",
            Tunable::VectorWeight => "retrieval_vector_weight",
            Tunable::RegistrationOpen => "registration_open",
        }
    }

    pub fn from_key(key: &str) -> Option<Tunable> {
        Tunable::ALL.into_iter().find(|t| t.key() == key)
    }

    /// The value in `t`, as text (as stored, and as the server's settings write it).
    pub fn get(self, t: &Tunables) -> Option<String> {
        match self {
            Tunable::LlmModel => t.llm_model.clone(),
            Tunable::RetrievalK => Some(t.retrieval_k.to_string()),
            Tunable::LexicalWeight => Some(t.lexical_weight.to_string()),
            Tunable::VectorWeight => Some(t.vector_weight.to_string()),
            Tunable::RegistrationOpen => Some(t.registration_open.to_string()),
        }
    }

    /// Sets `value` into `t`, or says what a valid value is. The ranges are the server
    /// settings' own (`config::declared`).
    pub fn set(self, t: &mut Tunables, value: &str) -> Result<(), String> {
        let value = value.trim();
        match self {
            Tunable::LlmModel => {
                if t.llm_model.is_none() {
                    return Err("no LLM is configured (llm_url): there is no model to name".into());
                }
                if value.is_empty() || value.len() > 200 || value.chars().any(char::is_control) {
                    return Err("the LLM model name must be 1 to 200 printable characters".into());
                }
                t.llm_model = Some(value.to_string());
            }
            Tunable::RetrievalK => {
                t.retrieval_k = value
                    .parse()
                    .ok()
                    .filter(|k| (1..=50).contains(k))
                    .ok_or("passages per question must be a whole number from 1 to 50")?;
            }
            Tunable::LexicalWeight | Tunable::VectorWeight => {
                let w = value
                    .parse::<f64>()
                    .ok()
                    .filter(|w| (0.0..=100.0).contains(w))
                    .ok_or("a fusion weight must be a number from 0 to 100")?;
                if self == Tunable::LexicalWeight {
                    t.lexical_weight = w;
                } else {
                    t.vector_weight = w;
                }
                if t.lexical_weight == 0.0 && t.vector_weight == 0.0 {
                    return Err("at least one fusion weight must be above 0".into());
                }
            }
            Tunable::RegistrationOpen => {
                t.registration_open = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err("registration is open (true) or closed (false)".into()),
                };
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Tunables {
        Tunables {
            llm_model: Some("llama3.2:3b".into()),
            retrieval_k: 6,
            lexical_weight: 1.0,
            vector_weight: 1.0,
            registration_open: true,
        }
    }

    #[test]
    fn tunables_take_valid_values_and_say_what_is_valid() {
        let mut t = defaults();
        Tunable::RetrievalK.set(&mut t, "8").unwrap();
        Tunable::VectorWeight.set(&mut t, "0.5").unwrap();
        Tunable::RegistrationOpen.set(&mut t, "false").unwrap();
        Tunable::LlmModel.set(&mut t, "qwen2.5:7b").unwrap();
        assert_eq!(
            (t.retrieval_k, t.vector_weight, t.registration_open),
            (8, 0.5, false)
        );
        assert_eq!(Tunable::LlmModel.get(&t).as_deref(), Some("qwen2.5:7b"));
        let err = Tunable::RetrievalK.set(&mut t, "0").unwrap_err();
        assert!(err.contains("from 1 to 50"), "{err}");
        assert!(Tunable::LexicalWeight.set(&mut t, "-1").is_err());
        Tunable::LexicalWeight.set(&mut t, "0").unwrap();
        assert!(Tunable::VectorWeight
            .set(&mut t, "0")
            .unwrap_err()
            .contains("above 0"));
        assert!(Tunable::RegistrationOpen.set(&mut t, "maybe").is_err());
        let mut no_llm = Tunables {
            llm_model: None,
            ..defaults()
        };
        assert!(Tunable::LlmModel
            .set(&mut no_llm, "x")
            .unwrap_err()
            .contains("no LLM"));
        for t in Tunable::ALL {
            assert_eq!(Tunable::from_key(t.key()), Some(t));
        }
    }
}
