//! The command line. Every setting is a flag, a `BERTH_*` environment variable, or a key of the
//! same name in the TOML file given by `--config`, in that order of precedence.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "Berth: chat with your team's documents on a local LLM",
    long_about = "Berth: a self-hosted, private document assistant.\n\n\
        Run `berth serve` to start the server. With no configuration it keeps everything \
        (SQLite database, uploads) under ./data and needs no other service.\n\n\
        Settings come from flags, then BERTH_* environment variables, then the TOML file \
        named by --config / BERTH_CONFIG (keys named like the flags, with underscores)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (API, web UI, /health, /ready, /metrics).
    Serve(ServeArgs),
    /// Account recovery and bootstrap, straight on the database (works inside a container).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Backups: take one, list them, verify or drill one (restore it somewhere throwaway and
    /// use it); seal the secrets apart, with a passphrase.
    #[command(subcommand)]
    Backup(crate::maintenance::BackupCommand),
    /// Replace the data (database and uploaded files) with a backup archive, after checking it
    /// and taking a safety backup. Stop Berth first.
    Restore(crate::maintenance::RestoreArgs),
    /// Exit 0 if the server's /health answers 200 within 3 s, else 1 (container health checks).
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// URL to check. [default: /health on the address in BERTH_LISTEN, asked on loopback when
    /// that is 0.0.0.0 or [::]; without BERTH_LISTEN, http://127.0.0.1:8080/health]
    #[arg(long, env = "BERTH_HEALTHCHECK_URL", value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an active admin account: the first one after installing, or another.
    Create(AdminArgs),
    /// Set a new password for an account; all its sessions and API tokens end.
    ResetPassword(AdminArgs),
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The account's user name.
    #[arg(long)]
    pub username: String,
    /// Read the password from the first line of standard input instead of a hidden prompt.
    #[arg(long)]
    pub password_stdin: bool,
    /// Where the database is, and the password policy: the same settings as `berth serve`.
    #[command(flatten)]
    pub settings: ServeArgs,
}

/// Server settings. Values are kept as text here and parsed in `config`, so that an invalid one is
/// reported with the setting's name and where it came from (flag, variable or file).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML file with settings (keys as the flags below, e.g. `listen = "0.0.0.0:8080"`).
    #[arg(long, env = "BERTH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on, HOST:PORT. [default: 127.0.0.1:8080]
    #[arg(long, env = "BERTH_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<String>,

    /// Directory for the embedded database and uploaded files; created on first run. [default: ./data]
    #[arg(long, env = "BERTH_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<String>,

    /// Database URL: `postgres://user:pass@host/db` for PostgreSQL, `sqlite://PATH` for a SQLite
    /// file. Unset: SQLite at DATA_DIR/berth.db.
    #[arg(
        long,
        env = "BERTH_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Seconds to keep trying, with growing pauses, while the database cannot be reached at start
    /// (e.g. PostgreSQL still starting); 0 tries once. [default: 30]
    #[arg(long, env = "BERTH_DATABASE_CONNECT_TIMEOUT", value_name = "SECONDS")]
    pub database_connect_timeout: Option<String>,

    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives. [default: info]
    #[arg(long, env = "BERTH_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,

    /// Log format: json, text, or auto (text on a terminal, JSON otherwise). [default: auto]
    #[arg(long, env = "BERTH_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// Seconds to let in-flight requests finish after SIGTERM/SIGINT before exiting. [default: 30]
    #[arg(long, env = "BERTH_SHUTDOWN_TIMEOUT", value_name = "SECONDS")]
    pub shutdown_timeout: Option<String>,

    /// Seconds a client may take to send a request's headers before the connection is closed.
    /// [default: 10]
    #[arg(long, env = "BERTH_HEADER_READ_TIMEOUT", value_name = "SECONDS")]
    pub header_read_timeout: Option<String>,

    /// Seconds a request body may stall (no bytes arriving) before the request is refused.
    /// [default: 30]
    #[arg(long, env = "BERTH_BODY_READ_TIMEOUT", value_name = "SECONDS")]
    pub body_read_timeout: Option<String>,

    /// Seconds a request may take in all, except streamed answers and uploads (bounded by the
    /// body timeout instead). [default: 60]
    #[arg(long, env = "BERTH_REQUEST_TIMEOUT", value_name = "SECONDS")]
    pub request_timeout: Option<String>,

    /// Open connections at most; more are closed at once. [default: 1024]
    #[arg(long, env = "BERTH_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<String>,

    /// Open connections from one client address at most (behind a reverse proxy, every
    /// connection comes from the proxy: raise it there). [default: 256]
    #[arg(long, env = "BERTH_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    pub max_connections_per_address: Option<String>,

    /// Password rules: `composition` (8+ characters with upper, lower, digit and symbol) or
    /// `length` (OWASP ASVS style: length only). Both refuse the commonest passwords.
    /// [default: composition]
    #[arg(long, env = "BERTH_PASSWORD_POLICY", value_name = "POLICY")]
    pub password_policy: Option<String>,

    /// Minimum password length. [default: 8 with `composition`, 12 with `length`]
    #[arg(long, env = "BERTH_PASSWORD_MIN_LENGTH", value_name = "N")]
    pub password_min_length: Option<String>,

    /// A browser session ends after this many seconds without a request. [default: 28800 (8 h)]
    #[arg(long, env = "BERTH_SESSION_IDLE_TIMEOUT", value_name = "SECONDS")]
    pub session_idle_timeout: Option<String>,

    /// A browser session ends this many seconds after sign-in, however active. [default: 604800 (7 days)]
    #[arg(long, env = "BERTH_SESSION_ABSOLUTE_TIMEOUT", value_name = "SECONDS")]
    pub session_absolute_timeout: Option<String>,

    /// Failed sign-ins for one account before it is locked for the lockout period. [default: 5]
    #[arg(long, env = "BERTH_LOGIN_MAX_FAILURES", value_name = "N")]
    pub login_max_failures: Option<String>,

    /// Failed sign-ins from one client address before it is locked out. [default: 30]
    #[arg(long, env = "BERTH_LOGIN_MAX_FAILURES_PER_ADDRESS", value_name = "N")]
    pub login_max_failures_per_address: Option<String>,

    /// Seconds failures are counted over, and how long a lock lasts. [default: 900]
    #[arg(long, env = "BERTH_LOGIN_LOCKOUT", value_name = "SECONDS")]
    pub login_lockout: Option<String>,

    /// Registrations one client address may make per lockout period. [default: 10]
    #[arg(long, env = "BERTH_REGISTER_MAX_PER_ADDRESS", value_name = "N")]
    pub register_max_per_address: Option<String>,

    /// Take the client address from X-Forwarded-For (only behind a reverse proxy you run).
    /// [default: false]
    #[arg(long, env = "BERTH_TRUST_FORWARDED_FOR", value_name = "BOOL")]
    pub trust_forwarded_for: Option<String>,

    /// LLM server for answers: the Ollama base URL (e.g. http://127.0.0.1:11434), or an
    /// OpenAI-compatible base URL ending in /v1 with --llm-api openai. Unset: extractive answers.
    #[arg(long, env = "BERTH_LLM_URL", value_name = "URL")]
    pub llm_url: Option<String>,

    /// The LLM server's API: `ollama` or `openai`. [default: ollama]
    #[arg(long, env = "BERTH_LLM_API", value_name = "API")]
    pub llm_api: Option<String>,

    /// The chat model, e.g. llama3.2:3b. Required with --llm-url.
    #[arg(long, env = "BERTH_LLM_MODEL", value_name = "MODEL")]
    pub llm_model: Option<String>,

    /// Bearer key for an OpenAI-compatible LLM server, if it wants one.
    #[arg(
        long,
        env = "BERTH_LLM_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub llm_api_key: Option<String>,

    /// Seconds to wait for the LLM's first token and between tokens. [default: 120]
    #[arg(long, env = "BERTH_LLM_TIMEOUT", value_name = "SECONDS")]
    pub llm_timeout: Option<String>,

    /// Embedding server: Ollama base URL, or OpenAI-compatible base URL ending in /v1 with
    /// --embed-api openai. Unset: retrieval is lexical only.
    #[arg(long, env = "BERTH_EMBED_URL", value_name = "URL")]
    pub embed_url: Option<String>,

    /// The embedding server's API: `ollama` or `openai`. [default: ollama]
    #[arg(long, env = "BERTH_EMBED_API", value_name = "API")]
    pub embed_api: Option<String>,

    /// The embedding model, e.g. nomic-embed-text. Required with --embed-url. Changing it
    /// re-embeds every chunk in the background; vectors of different models are never mixed.
    #[arg(long, env = "BERTH_EMBED_MODEL", value_name = "MODEL")]
    pub embed_model: Option<String>,

    /// Bearer key for an OpenAI-compatible embedding server, if it wants one.
    #[arg(
        long,
        env = "BERTH_EMBED_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub embed_api_key: Option<String>,

    /// Allow LLM and embedding URLs outside loopback, private networks and compose service
    /// names. Documents and questions then leave this network. [default: false]
    #[arg(long, env = "BERTH_ALLOW_REMOTE_LLM", value_name = "BOOL")]
    pub allow_remote_llm: Option<String>,

    /// Largest accepted upload, in MiB. [default: 50]
    #[arg(long, env = "BERTH_MAX_UPLOAD_MB", value_name = "MIB")]
    pub max_upload_mb: Option<String>,

    /// Most characters of text one document may yield; a longer one fails, naming this
    /// setting. [default: 10000000]
    #[arg(long, env = "BERTH_EXTRACT_MAX_CHARS", value_name = "N")]
    pub extract_max_chars: Option<String>,

    /// Most pages a PDF may have. [default: 5000]
    #[arg(long, env = "BERTH_EXTRACT_MAX_PAGES", value_name = "N")]
    pub extract_max_pages: Option<String>,

    /// Seconds extracting one document's text may take. [default: 120]
    #[arg(long, env = "BERTH_EXTRACT_TIMEOUT", value_name = "SECONDS")]
    pub extract_timeout: Option<String>,

    /// Target chunk size in characters. [default: 1000]
    #[arg(long, env = "BERTH_CHUNK_SIZE", value_name = "CHARS")]
    pub chunk_size: Option<String>,

    /// Characters shared by neighbouring chunks. [default: 150]
    #[arg(long, env = "BERTH_CHUNK_OVERLAP", value_name = "CHARS")]
    pub chunk_overlap: Option<String>,

    /// Passages retrieved per question. [default: 6]
    #[arg(long, env = "BERTH_RETRIEVAL_K", value_name = "N")]
    pub retrieval_k: Option<String>,

    /// Weight of the full-text ranking in hybrid fusion. [default: 1.0]
    #[arg(long, env = "BERTH_RETRIEVAL_LEXICAL_WEIGHT", value_name = "W")]
    pub retrieval_lexical_weight: Option<String>,

    /// Weight of the vector-similarity ranking in hybrid fusion. [default: 1.0]
    #[arg(long, env = "BERTH_RETRIEVAL_VECTOR_WEIGHT", value_name = "W")]
    pub retrieval_vector_weight: Option<String>,

    /// Redis for caching query embeddings and hybrid search results, e.g.
    /// redis://127.0.0.1:6379 (with a password: redis://:PASSWORD@HOST:6379). Same local-only
    /// rule as the model URLs. Unset: no cache; Redis going away only costs the cache.
    #[arg(
        long,
        env = "BERTH_REDIS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub redis_url: Option<String>,

    /// Seconds a cached query embedding or search result is kept. [default: 300]
    #[arg(long, env = "BERTH_CACHE_TTL", value_name = "SECONDS")]
    pub cache_ttl: Option<String>,

    /// Mark cookies Secure: `auto` (when the request came over HTTPS, per X-Forwarded-Proto),
    /// `always` or `never`. [default: auto]
    #[arg(long, env = "BERTH_COOKIE_SECURE", value_name = "MODE")]
    pub cookie_secure: Option<String>,
}
