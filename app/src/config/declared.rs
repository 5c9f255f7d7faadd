//! Every setting, declared once: its name (the TOML key; the flag is `--name-with-dashes`, the
//! variable `BERTH_NAME`), the commands that use it, its default in the form a person writes it,
//! the form it expects, its parser and its help (the doc comment). The flags, the variables,
//! the config file's keys, `--help` and `docs/settings.md` all come from this table.
//!
//! Adding a setting is adding an entry here and reading it where it is used
//! (`layers.get(&declared::NAME)`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::parse::{self, Parse};
use super::{Api, CookieSecure, DatabaseLocation, EmbedApi, LogFormat};
use crate::domain::accounts::policy::PolicyKind;

/// Which commands use a setting. `berth serve` uses them all; the others take only theirs, so
/// that `berth backup create --help` shows what backing up depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Where the data is: every command that opens it.
    Data,
    /// The password rules: the server and `berth admin`.
    Passwords,
    /// Model servers: the server and a backup drill (which searches as production does).
    Models,
    /// Ranking: the server and a backup drill.
    Ranking,
    /// Outbound TLS (model servers, the Hugging Face Hub): the server, a drill, `berth models`.
    Tls,
    /// Where models are downloaded from: `berth models`.
    Hub,
    /// Everything else only the running server reads.
    Server,
}

/// One setting; `T` is what its text parses into.
pub struct Setting<T: 'static> {
    pub name: &'static str,
    pub scope: Scope,
    /// Shown in `--help` as the value's placeholder.
    pub value_name: &'static str,
    /// Empty: unset (the setting is optional, or its default depends on another setting).
    pub default: &'static str,
    /// The form the value must have, for error messages.
    pub expected: &'static str,
    /// The doc comment's lines.
    pub doc: &'static str,
    /// A password or key: never shown in `--help` or logs.
    pub secret: bool,
    pub parse: Parse<T>,
}

/// A setting without its value type, for the tables built from all of them.
pub trait Declared: Sync {
    fn name(&self) -> &'static str;
    fn scope(&self) -> Scope;
    fn value_name(&self) -> &'static str;
    fn default(&self) -> &'static str;
    fn secret(&self) -> bool;
    /// The doc comment as one paragraph.
    fn help(&self) -> String;
    /// Whether the default parses (a test runs this for every setting).
    fn default_parses(&self) -> Result<(), String>;
}

impl<T> Declared for Setting<T> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn scope(&self) -> Scope {
        self.scope
    }
    fn value_name(&self) -> &'static str {
        self.value_name
    }
    fn default(&self) -> &'static str {
        self.default
    }
    fn secret(&self) -> bool {
        self.secret
    }
    fn help(&self) -> String {
        self.doc.split_whitespace().collect::<Vec<_>>().join(" ")
    }
    fn default_parses(&self) -> Result<(), String> {
        (self.parse)(self.default).map(|_| ())
    }
}

impl Setting<()> {
    /// `--data-dir` for `data_dir`.
    pub fn flag_of(name: &str) -> String {
        format!("--{}", name.replace('_', "-"))
    }

    /// `BERTH_DATA_DIR` for `data_dir`.
    pub fn env_of(name: &str) -> String {
        format!("BERTH_{}", name.to_uppercase())
    }
}

macro_rules! declare {
    ($(
        $(#[doc = $doc:literal])+
        $id:ident($name:literal): $ty:ty = $default:literal {
            $scope:ident, $value_name:literal, $parse:expr,
            expected $expected:literal $(, $secret:ident)?
        }
    )*) => {
        $(
            pub const $id: Setting<$ty> = Setting {
                name: $name,
                scope: Scope::$scope,
                value_name: $value_name,
                default: $default,
                expected: $expected,
                doc: concat!($($doc, "\n"),+),
                secret: declare!(@secret $($secret)?),
                parse: $parse,
            };
        )*
        /// Every setting, in the order `--help` shows them.
        pub static ALL: &[&dyn Declared] = &[$(&$id),*];
    };
    (@secret secret) => { true };
    (@secret) => { false };
}

declare! {
    /// Address to listen on, HOST:PORT.
    LISTEN("listen"): SocketAddr = "127.0.0.1:8080" {
        Server, "HOST:PORT", parse::address,
        expected "HOST:PORT with a numeric host, e.g. 127.0.0.1:8080 or [::]:8080"
    }
    /// Directory for the embedded database and uploaded files; created on first run.
    DATA_DIR("data_dir"): PathBuf = "data" {
        Data, "DIR", parse::path, expected "a directory path"
    }
    /// Database URL: `postgres://user:pass@host/db` for PostgreSQL, `sqlite://PATH` for a
    /// SQLite file. Unset: SQLite at DATA_DIR/berth.db. TLS to PostgreSQL: add
    /// `?sslmode=verify-full` (or disable, prefer, require) and set database_ca_file.
    DATABASE_URL("database_url"): Option<DatabaseLocation> = "" {
        Data, "URL", parse::database,
        expected "postgres://USER:PASSWORD@HOST:PORT/DB, sqlite://PATH, or unset for DATA_DIR/berth.db",
        secret
    }
    /// Seconds to keep trying, with growing pauses, while the database cannot be reached at
    /// start (e.g. PostgreSQL still starting); 0 tries once.
    DATABASE_CONNECT_TIMEOUT("database_connect_timeout"): Duration = "30" {
        Data, "SECONDS", parse::seconds::<0, 3600>,
        expected "a whole number of seconds between 0 and 3600"
    }
    /// PEM file of the certificate authority that signed the PostgreSQL server's certificate
    /// (a private CA, or your cloud's database CA), trusted besides Mozilla's roots. Checked
    /// with sslmode=verify-full, which is the default when this is set.
    DATABASE_CA_FILE("database_ca_file"): Option<PathBuf> = "" {
        Data, "FILE", parse::optional_path, expected "a PEM file of CA certificates"
    }
    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives.
    LOG_LEVEL("log_level"): String = "info" {
        Server, "FILTER", parse::log_filter,
        expected "a level (error, warn, info, debug, trace) or directives like `info,berth=debug`"
    }
    /// Log format: json, text, or auto (text on a terminal, JSON otherwise).
    LOG_FORMAT("log_format"): LogFormat = "auto" {
        Server, "FORMAT", parse::log_format, expected "json, text or auto"
    }
    /// Seconds to let in-flight requests finish after SIGTERM/SIGINT before exiting.
    SHUTDOWN_TIMEOUT("shutdown_timeout"): Duration = "30" {
        Server, "SECONDS", parse::seconds::<0, 3600>,
        expected "a whole number of seconds between 0 and 3600"
    }
    /// Seconds a client may take to send a request's headers before the connection is closed.
    HEADER_READ_TIMEOUT("header_read_timeout"): Duration = "10" {
        Server, "SECONDS", parse::seconds::<1, 3600>, expected "seconds, at most 3600"
    }
    /// Seconds a request body may stall (no bytes arriving) before the request is refused.
    BODY_READ_TIMEOUT("body_read_timeout"): Duration = "30" {
        Server, "SECONDS", parse::seconds::<1, 3600>, expected "seconds, at most 3600"
    }
    /// Seconds a request may take in all, except streamed answers and uploads (bounded by the
    /// body timeout instead).
    REQUEST_TIMEOUT("request_timeout"): Duration = "60" {
        Server, "SECONDS", parse::seconds::<1, 3600>, expected "seconds, at most 3600"
    }
    /// Open connections at most; more are closed at once.
    MAX_CONNECTIONS("max_connections"): usize = "1024" {
        Server, "N", parse::whole::<usize, 1, 1_000_000>, expected "a count of connections"
    }
    /// Open connections from one client address at most (behind a reverse proxy, every
    /// connection comes from the proxy: raise it there).
    MAX_CONNECTIONS_PER_ADDRESS("max_connections_per_address"): usize = "256" {
        Server, "N", parse::whole::<usize, 1, 1_000_000>, expected "a count of connections"
    }
    /// Password rules: `composition` (8+ characters with upper, lower, digit and symbol) or
    /// `length` (OWASP ASVS style: length only). Both refuse the commonest passwords.
    PASSWORD_POLICY("password_policy"): PolicyKind = "composition" {
        Passwords, "POLICY", parse::password_policy, expected "composition or length"
    }
    /// Minimum password length. Unset: 8 with `composition`, 12 with `length`.
    PASSWORD_MIN_LENGTH("password_min_length"): Option<usize> = "" {
        Passwords, "N", parse::optional_whole::<8, 128>, expected "a whole number from 8 to 128"
    }
    /// A browser session ends after this many seconds without a request (28800: 8 hours).
    SESSION_IDLE_TIMEOUT("session_idle_timeout"): Duration = "28800" {
        Server, "SECONDS", parse::seconds::<1, { 30 * 86_400 }>,
        expected "seconds, at most 30 days"
    }
    /// A browser session ends this many seconds after sign-in, however active (604800: 7 days).
    SESSION_ABSOLUTE_TIMEOUT("session_absolute_timeout"): Duration = "604800" {
        Server, "SECONDS", parse::seconds::<1, { 400 * 86_400 }>,
        expected "seconds, at most 400 days"
    }
    /// Failed sign-ins for one account before it is locked for the lockout period.
    LOGIN_MAX_FAILURES("login_max_failures"): i64 = "5" {
        Server, "N", parse::whole::<i64, 1, 1_000_000>, expected "a count of failed sign-ins"
    }
    /// Failed sign-ins from one client address before it is locked out.
    LOGIN_MAX_FAILURES_PER_ADDRESS("login_max_failures_per_address"): i64 = "30" {
        Server, "N", parse::whole::<i64, 1, 1_000_000>, expected "a count of failed sign-ins"
    }
    /// Seconds failures are counted over, and how long a lock lasts.
    LOGIN_LOCKOUT("login_lockout"): Duration = "900" {
        Server, "SECONDS", parse::seconds::<1, 86_400>, expected "seconds, at most one day"
    }
    /// Registrations one client address may make per lockout period.
    REGISTER_MAX_PER_ADDRESS("register_max_per_address"): i64 = "10" {
        Server, "N", parse::whole::<i64, 1, 1_000_000>, expected "a count of registrations"
    }
    /// Take the client address from X-Forwarded-For (only behind a reverse proxy you run).
    TRUST_FORWARDED_FOR("trust_forwarded_for"): bool = "false" {
        Server, "BOOL", parse::boolean, expected "true or false"
    }
    /// Mark cookies Secure: `auto` (when the request came over HTTPS, per X-Forwarded-Proto),
    /// `always` or `never`.
    COOKIE_SECURE("cookie_secure"): CookieSecure = "auto" {
        Server, "MODE", parse::cookie_secure, expected "auto, always or never"
    }
    /// Allow signing in and registering with a user name and password. With `false`, people
    /// sign in only through the OpenID providers of `oidc_providers_file`; `berth admin` on the
    /// command line still works (create an admin, reset a password, promote an account).
    PASSWORD_LOGIN("password_login"): bool = "true" {
        Server, "BOOL", parse::boolean, expected "true or false"
    }
    /// Let people register accounts (which wait for an admin's approval). An admin can change
    /// this at run time on the Admin > Settings page; this is then the default.
    REGISTRATION_OPEN("registration_open"): bool = "true" {
        Server, "BOOL", parse::boolean, expected "true or false"
    }
    /// A TOML file of `[[provider]]` tables, one per OpenID provider people may sign in with
    /// (id, display_name, issuer, client_id, client_secret_file, scopes, groups_claim,
    /// auto_approve_groups, admin_groups): see docs/sso.md. Unset: no single sign-on.
    OIDC_PROVIDERS_FILE("oidc_providers_file"): Option<PathBuf> = "" {
        Server, "FILE", parse::optional_path, expected "a TOML file"
    }
    /// The address people use to reach Berth, e.g. https://berth.example.com: the OpenID
    /// providers send people back to PUBLIC_URL/api/v1/auth/oidc/ID/callback. Required with
    /// oidc_providers_file.
    PUBLIC_URL("public_url"): Option<String> = "" {
        Server, "URL", parse::http_url,
        expected "an http:// or https:// URL, e.g. https://berth.example.com"
    }
    /// LLM server for answers: the Ollama base URL (e.g. http://127.0.0.1:11434), or an
    /// OpenAI-compatible base URL ending in /v1 with --llm-api openai. Unset: extractive answers.
    LLM_URL("llm_url"): Option<String> = "" {
        Models, "URL", parse::http_url,
        expected "an http:// or https:// base URL, e.g. http://127.0.0.1:11434"
    }
    /// The LLM server's API: `ollama` or `openai`.
    LLM_API("llm_api"): Api = "ollama" {
        Models, "API", parse::api, expected "ollama or openai"
    }
    /// The chat model, e.g. llama3.2:3b. Required with --llm-url.
    LLM_MODEL("llm_model"): Option<String> = "" {
        Models, "MODEL", parse::optional_text,
        expected "a model name (required when the URL is set)"
    }
    /// Bearer key for an OpenAI-compatible LLM server, if it wants one.
    LLM_API_KEY("llm_api_key"): Option<String> = "" {
        Models, "KEY", parse::optional_text, expected "a key", secret
    }
    /// Sampling temperature of answers: 0 always takes the likeliest word (repeatable answers),
    /// higher values vary more. Low by default, since answers should keep to the passages.
    LLM_TEMPERATURE("llm_temperature"): f64 = "0.2" {
        Models, "T", parse::temperature, expected "a number from 0 to 2"
    }
    /// Most tokens an answer may take; a model that runs on stops there.
    LLM_MAX_TOKENS("llm_max_tokens"): u32 = "1024" {
        Models, "N", parse::whole::<u32, 16, 32_768>, expected "a count from 16 to 32768"
    }
    /// Seconds to wait for the LLM's first token and between tokens.
    LLM_TIMEOUT("llm_timeout"): Duration = "120" {
        Models, "SECONDS", parse::seconds::<1, 3600>, expected "seconds, at most 3600"
    }
    /// Where embeddings come from: `builtin` (a model run inside Berth, from the data dir's
    /// models/ or --embed-model-dir), `ollama` or `openai` (a server at --embed-url), or
    /// `auto`: the server when --embed-url is set, else the built-in model when one is
    /// present (`berth models pull`), else none (retrieval is lexical only).
    EMBED_API("embed_api"): EmbedApi = "auto" {
        Models, "API", parse::embed_api, expected "auto, builtin, ollama or openai"
    }
    /// Embedding server: Ollama base URL, or OpenAI-compatible base URL ending in /v1 with
    /// --embed-api openai.
    EMBED_URL("embed_url"): Option<String> = "" {
        Models, "URL", parse::http_url,
        expected "an http:// or https:// base URL, e.g. http://127.0.0.1:11434"
    }
    /// The embedding model: on a server its name (e.g. nomic-embed-text, required with
    /// --embed-url); built in, a Hugging Face model id looked up in the data dir's models/
    /// (default sentence-transformers/all-MiniLM-L6-v2). Changing it re-embeds every chunk in
    /// the background; vectors of different models are never mixed.
    EMBED_MODEL("embed_model"): Option<String> = "" {
        Models, "MODEL", parse::optional_text,
        expected "a model name (required when the URL is set)"
    }
    /// The built-in model's directory (config.json, tokenizer.json, model.safetensors), for
    /// a model kept outside the data dir or fetched by hand.
    EMBED_MODEL_DIR("embed_model_dir"): Option<PathBuf> = "" {
        Models, "DIR", parse::optional_path, expected "a directory"
    }
    /// Threads the built-in embedder uses for ingestion (queries get as many more, so a large
    /// ingest never queues a search): `auto` is half the machine's cores, at least 1.
    EMBED_THREADS("embed_threads"): Option<usize> = "auto" {
        Models, "N", parse::auto_or_whole::<1, 256>, expected "auto, or threads from 1 to 256"
    }
    /// Bearer key for an OpenAI-compatible embedding server, if it wants one.
    EMBED_API_KEY("embed_api_key"): Option<String> = "" {
        Models, "KEY", parse::optional_text, expected "a key", secret
    }
    /// Allow LLM, embedding and Redis URLs outside loopback, private networks and compose
    /// service names. Documents and questions then leave this network.
    ALLOW_REMOTE_LLM("allow_remote_llm"): bool = "false" {
        Models, "BOOL", parse::boolean, expected "true or false"
    }
    /// PEM file of extra certificate authorities to trust for outbound HTTPS (model servers,
    /// the Hugging Face Hub), e.g. a company's private CA; the system's and Mozilla's roots
    /// are trusted as well.
    CA_BUNDLE("ca_bundle"): Option<PathBuf> = "" {
        Tls, "FILE", parse::optional_path, expected "a PEM file"
    }
    /// Where `berth models pull` downloads from: the Hugging Face Hub, or a mirror that serves
    /// its URL layout.
    HUB_URL("hub_url"): Option<String> = "https://huggingface.co" {
        Hub, "URL", parse::http_url, expected "an http:// or https:// base URL"
    }
    /// Apply pending schema migrations at start. false (or `--no-migrate`): apply none and
    /// refuse to start while one is pending, for installations that run `berth migrate up` as
    /// their own step (the Kubernetes init container, the SSH deploy).
    MIGRATE("migrate"): bool = "true" {
        Server, "BOOL", parse::boolean, expected "true or false"
    }
    /// Run ingestion (extracting, chunking, embedding uploads) in this server. false: an API-only
    /// instance, with `berth worker` processes doing it (PostgreSQL only: they share its queue).
    INGEST("ingest"): bool = "true" {
        Server, "BOOL", parse::boolean, expected "true or false"
    }
    /// Largest accepted upload, in MiB.
    MAX_UPLOAD_MB("max_upload_mb"): u64 = "50" {
        Server, "MIB", parse::mebibytes::<4096>, expected "MiB, from 1 to 4096"
    }
    /// Most characters of text one document may yield; a longer one fails, naming this
    /// setting.
    EXTRACT_MAX_CHARS("extract_max_chars"): usize = "10000000" {
        Server, "N", parse::whole::<usize, 1000, 1_000_000_000>,
        expected "characters, from 1000 to 1000000000"
    }
    /// Most pages a PDF may have.
    EXTRACT_MAX_PAGES("extract_max_pages"): usize = "5000" {
        Server, "N", parse::whole::<usize, 1, 1_000_000>, expected "pages, from 1 to 1000000"
    }
    /// Seconds extracting one document's text may take.
    EXTRACT_TIMEOUT("extract_timeout"): Duration = "120" {
        Server, "SECONDS", parse::seconds::<1, 3600>, expected "seconds, at most 3600"
    }
    /// Largest chunk in characters. With the built-in embedder a chunk also holds no more tokens
    /// than the model reads, less 32 for its context (title and headings): 222 for
    /// all-MiniLM-L6-v2.
    CHUNK_SIZE("chunk_size"): usize = "1000" {
        Server, "CHARS", parse::whole::<usize, 100, 20_000>,
        expected "characters, from 100 to 20000"
    }
    /// Characters shared by neighbouring chunks.
    CHUNK_OVERLAP("chunk_overlap"): usize = "150" {
        Server, "CHARS", parse::whole::<usize, 0, 10_000>,
        expected "characters, less than half the chunk size"
    }
    /// Passages retrieved per question.
    RETRIEVAL_K("retrieval_k"): usize = "6" {
        Ranking, "N", parse::whole::<usize, 1, 50>, expected "a count from 1 to 50"
    }
    /// Weight of the full-text ranking in hybrid fusion.
    RETRIEVAL_LEXICAL_WEIGHT("retrieval_lexical_weight"): f64 = "1.0" {
        Ranking, "W", parse::weight, expected "a number from 0 to 100"
    }
    /// Weight of the vector-similarity ranking in hybrid fusion.
    RETRIEVAL_VECTOR_WEIGHT("retrieval_vector_weight"): f64 = "1.0" {
        Ranking, "W", parse::weight, expected "a number from 0 to 100"
    }
    /// Redis for caching query embeddings and hybrid search results, e.g.
    /// redis://127.0.0.1:6379 (with a password: redis://:PASSWORD@HOST:6379; over TLS:
    /// rediss://HOST:6379 with redis_ca_file). Same local-only rule as the model URLs. Unset:
    /// no cache; Redis going away only costs the cache.
    REDIS_URL("redis_url"): Option<String> = "" {
        Server, "URL", parse::redis_url,
        expected "a redis:// or rediss://[:PASSWORD@]HOST[:PORT][/DB] URL, or unset for no cache",
        secret
    }
    /// PEM file of the certificate authority that signed the Redis server's certificate, for a
    /// rediss:// redis_url; only this CA is trusted then. Unset: Mozilla's roots.
    REDIS_CA_FILE("redis_ca_file"): Option<PathBuf> = "" {
        Server, "FILE", parse::optional_path, expected "a PEM file of CA certificates"
    }
    /// Seconds a cached query embedding or search result is kept.
    CACHE_TTL("cache_ttl"): Duration = "300" {
        Server, "SECONDS", parse::seconds::<1, 86_400>, expected "seconds, at most one day"
    }
}

impl Scope {
    /// The commands that take this scope's settings.
    pub fn commands(self) -> &'static str {
        match self {
            Scope::Data => "serve, admin, backup create/verify/drill, restore",
            Scope::Passwords => "serve, admin",
            Scope::Models | Scope::Ranking => "serve, backup drill",
            Scope::Tls => "serve, backup drill, models",
            Scope::Hub => "models",
            Scope::Server => "serve",
        }
    }
}

/// `docs/settings.md`: the reference of every setting, generated from this table (a test keeps
/// the file fresh).
pub fn reference() -> String {
    let mut out = String::from(
        "# Settings\n\n\
         <!-- Generated from app/src/config/declared.rs by its tests; edit there. -->\n\n\
         Each setting is a flag (`--name-with-dashes`), an environment variable (`BERTH_NAME`) \
         or a key of the TOML file named by `--config` / `BERTH_CONFIG`, in that order of \
         precedence. An invalid value stops the command with a message naming the setting, \
         where its value came from and the form expected. Each command takes only the settings \
         it uses; one file may hold them all.\n\n\
         | setting | variable | default | used by | meaning |\n\
         |---|---|---|---|---|\n",
    );
    for setting in ALL {
        let default = match setting.default() {
            "" => "unset".to_string(),
            value => format!("`{value}`"),
        };
        out += &format!(
            "| `{}` | `{}` | {default} | {} | {} |\n",
            setting.name(),
            Setting::env_of(setting.name()),
            setting.scope().commands(),
            setting.help().replace('|', "\\|"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rust-analyzer's `ensure_file_contents`: a stale generated file is rewritten and the test
    /// fails, so that the fresh one gets committed.
    #[test]
    fn settings_reference_is_fresh() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/settings.md");
        let fresh = reference();
        if std::fs::read_to_string(&path).ok().as_deref() != Some(fresh.as_str()) {
            std::fs::write(&path, &fresh).unwrap();
            panic!("docs/settings.md was stale and has been regenerated: commit it");
        }
    }

    #[test]
    fn every_default_parses_and_every_name_is_unique() {
        let mut names = std::collections::BTreeSet::new();
        for setting in ALL {
            setting
                .default_parses()
                .unwrap_or_else(|e| panic!("default of {}: {e}", setting.name()));
            assert!(names.insert(setting.name()), "{} twice", setting.name());
            assert!(!setting.help().is_empty(), "{} has no help", setting.name());
        }
    }
}
