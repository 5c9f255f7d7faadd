//! Settings: parsed once at start from flags, `BERTH_*` variables and an optional TOML file, in that
//! order of precedence. Each value is parsed into its domain type here, and an invalid one stops
//! the start with a message naming the setting, where it came from, and the expected form.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::ArgMatches;

use crate::accounts::policy::{PasswordPolicy, PolicyKind};
use crate::cli::ServeArgs;
use crate::error::BootError;

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: DatabaseLocation,
    /// How long start-up waits for an unreachable database before giving up.
    pub database_connect_timeout: Duration,
    pub log: LogSettings,
    pub shutdown_timeout: Duration,
    pub limits: ConnectionLimits,
    pub auth: AuthSettings,
    pub rag: RagSettings,
}

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

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_connections_per_address: 256,
        }
    }
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

#[derive(Debug, Clone)]
pub struct RagSettings {
    pub llm: Option<Endpoint>,
    pub embed: Option<Endpoint>,
    pub llm_timeout: Duration,
    pub max_upload_bytes: u64,
    /// What extracting one document may cost.
    pub extract: crate::documents::Budget,
    pub chunk_size: usize,
    pub chunk_overlap: usize,
    pub retrieval_k: usize,
    pub lexical_weight: f64,
    pub vector_weight: f64,
    /// Redis for the query cache (a validated redis:// URL; may hold a password, so never
    /// logged); None: no cache.
    pub redis_url: Option<String>,
    pub cache_ttl: Duration,
}

impl Default for RagSettings {
    fn default() -> Self {
        RagSettings {
            llm: None,
            embed: None,
            llm_timeout: Duration::from_secs(120),
            max_upload_bytes: 50 << 20,
            extract: crate::documents::Budget::default(),
            chunk_size: 1000,
            chunk_overlap: 150,
            retrieval_k: 6,
            lexical_weight: 1.0,
            vector_weight: 1.0,
            redis_url: None,
            cache_ttl: Duration::from_secs(300),
        }
    }
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieSecure {
    Auto,
    Always,
    Never,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            password_policy: PasswordPolicy::default(),
            session_idle_timeout: Duration::from_secs(8 * 3600),
            session_absolute_timeout: Duration::from_secs(7 * 24 * 3600),
            login_max_failures: 5,
            login_max_failures_per_address: 30,
            login_lockout: Duration::from_secs(900),
            register_max_per_address: 10,
            trust_forwarded_for: false,
            cookie_secure: CookieSecure::Auto,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum DatabaseLocation {
    /// The embedded default: a SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (kept out of logs: it may hold a password).
    Postgres(String),
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub filter: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
    Auto,
}

/// Where a setting's value came from, for error messages.
#[derive(Debug, Clone)]
enum Origin {
    Flag(String),
    Env(String),
    File { path: PathBuf, line: usize },
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "flag {flag}"),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Default => write!(f, "default"),
        }
    }
}

/// The config file, parsed as a flat table whose keys must be settings.
struct ConfigFile {
    path: PathBuf,
    text: String,
    table: toml::Table,
}

impl ConfigFile {
    fn read(path: &Path, known: &BTreeSet<String>) -> Result<Self, BootError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            BootError::Config(format!(
                "cannot read config file {} ({e}); check the path given by --config / BERTH_CONFIG",
                path.display()
            ))
        })?;
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            BootError::Config(
                format!(
                    "config file {} is not valid TOML: {}",
                    path.display(),
                    e.message()
                ) + &line_suffix(&text, e.span().map(|s| s.start)),
            )
        })?;
        let file = ConfigFile {
            path: path.to_owned(),
            text,
            table,
        };
        for key in file.table.keys() {
            if !known.contains(key) {
                let known: Vec<_> = known.iter().map(String::as_str).collect();
                return Err(BootError::Config(format!(
                    "{}:{}: unknown setting `{key}`; known settings are: {}",
                    path.display(),
                    file.line_of(key),
                    known.join(", ")
                )));
            }
        }
        Ok(file)
    }

    /// The 1-based line where `key` is assigned (the table itself keeps no positions).
    fn line_of(&self, key: &str) -> usize {
        self.text
            .lines()
            .position(|l| {
                let l = l.trim_start();
                l.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
            .map_or(1, |i| i + 1)
    }
}

fn line_suffix(text: &str, offset: Option<usize>) -> String {
    offset
        .map(|o| {
            format!(
                " (line {})",
                text[..o.min(text.len())].lines().count().max(1)
            )
        })
        .unwrap_or_default()
}

/// Resolves one setting's raw text from the three layers.
struct Layers<'a> {
    matches: &'a ArgMatches,
    file: Option<ConfigFile>,
}

impl Layers<'_> {
    fn raw(&self, id: &str, from_cli: Option<&String>) -> (Option<String>, Origin) {
        if let Some(value) = from_cli {
            let origin = match self.matches.value_source(id) {
                Some(ValueSource::EnvVariable) => Origin::Env(env_name(id)),
                _ => Origin::Flag(format!("--{}", id.replace('_', "-"))),
            };
            return (Some(value.clone()), origin);
        }
        if let Some(file) = &self.file {
            if let Some(value) = file.table.get(id) {
                let text = match value {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let origin = Origin::File {
                    path: file.path.clone(),
                    line: file.line_of(id),
                };
                return (Some(text), origin);
            }
        }
        (None, Origin::Default)
    }

    /// Parses a setting, or its default when no layer sets it.
    fn get<T>(
        &self,
        id: &str,
        from_cli: Option<&String>,
        default: &str,
        expected: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, BootError> {
        let (raw, origin) = self.raw(id, from_cli);
        let text = raw.unwrap_or_else(|| default.to_string());
        parse(text.trim()).map_err(|why| {
            BootError::Config(format!(
                "invalid setting `{id}` ({origin}): {why}; expected {expected}"
            ))
        })
    }
}

fn env_name(id: &str) -> String {
    format!("BERTH_{}", id.to_uppercase())
}

fn known_settings() -> BTreeSet<String> {
    use clap::Args;
    ServeArgs::augment_args(clap::Command::new("serve"))
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .filter(|id| id != "config")
        .collect()
}

impl Settings {
    /// Loads settings for `berth serve`; `matches` are the subcommand's, to tell flags from env.
    pub fn load(args: &ServeArgs, matches: &ArgMatches) -> Result<Settings, BootError> {
        let file = match &args.config {
            Some(path) => Some(ConfigFile::read(path, &known_settings())?),
            None => None,
        };
        let layers = Layers { matches, file };

        let listen = layers.get(
            "listen",
            args.listen.as_ref(),
            "127.0.0.1:8080",
            "HOST:PORT with a numeric host, e.g. 127.0.0.1:8080 or [::]:8080",
            |s| {
                s.parse::<SocketAddr>()
                    .map_err(|_| format!("{s:?} is not an address"))
            },
        )?;
        let data_dir = layers.get(
            "data_dir",
            args.data_dir.as_ref(),
            "data",
            "a directory path",
            |s| {
                if s.is_empty() {
                    Err("the path is empty".into())
                } else {
                    Ok(PathBuf::from(s))
                }
            },
        )?;
        let database = layers.get(
            "database_url",
            args.database_url.as_ref(),
            "",
            "postgres://USER:PASSWORD@HOST:PORT/DB, sqlite://PATH, or unset for DATA_DIR/berth.db",
            |s| parse_database(s, &data_dir),
        )?;
        let database_connect_timeout = layers.get(
            "database_connect_timeout",
            args.database_connect_timeout.as_ref(),
            "30",
            "a whole number of seconds between 0 and 3600",
            |s| match s.parse::<u64>() {
                Ok(n) if n <= 3600 => Ok(Duration::from_secs(n)),
                _ => Err(format!("{s:?} is not a number of seconds")),
            },
        )?;
        let filter = layers.get(
            "log_level",
            args.log_level.as_ref(),
            "info",
            "a level (error, warn, info, debug, trace) or directives like `info,berth=debug`",
            |s| {
                tracing_subscriber::EnvFilter::try_new(s)
                    .map(|_| s.to_string())
                    .map_err(|e| format!("{s:?} is not a log filter ({e})"))
            },
        )?;
        let format = layers.get(
            "log_format",
            args.log_format.as_ref(),
            "auto",
            "json, text or auto",
            |s| match s.to_ascii_lowercase().as_str() {
                "json" => Ok(LogFormat::Json),
                "text" => Ok(LogFormat::Text),
                "auto" => Ok(LogFormat::Auto),
                _ => Err(format!("{s:?} is not a log format")),
            },
        )?;
        let shutdown_timeout = layers.get(
            "shutdown_timeout",
            args.shutdown_timeout.as_ref(),
            "30",
            "a whole number of seconds between 0 and 3600",
            |s| match s.parse::<u64>() {
                Ok(n) if n <= 3600 => Ok(Duration::from_secs(n)),
                _ => Err(format!("{s:?} is not a number of seconds")),
            },
        )?;

        let limits = ConnectionLimits {
            header_read_timeout: layers.get(
                "header_read_timeout",
                args.header_read_timeout.as_ref(),
                "10",
                "seconds, at most 3600",
                seconds(3600),
            )?,
            body_read_timeout: layers.get(
                "body_read_timeout",
                args.body_read_timeout.as_ref(),
                "30",
                "seconds, at most 3600",
                seconds(3600),
            )?,
            request_timeout: layers.get(
                "request_timeout",
                args.request_timeout.as_ref(),
                "60",
                "seconds, at most 3600",
                seconds(3600),
            )?,
            max_connections: layers.get(
                "max_connections",
                args.max_connections.as_ref(),
                "1024",
                "a count of connections",
                |s| count(s).map(|n| n as usize),
            )?,
            max_connections_per_address: layers.get(
                "max_connections_per_address",
                args.max_connections_per_address.as_ref(),
                "256",
                "a count of connections",
                |s| count(s).map(|n| n as usize),
            )?,
        };
        let auth = load_auth(args, &layers)?;
        let rag = load_rag(args, &layers)?;
        Ok(Settings {
            listen,
            data_dir,
            database,
            database_connect_timeout,
            log: LogSettings { filter, format },
            shutdown_timeout,
            limits,
            auth,
            rag,
        })
    }
}

fn seconds(max: u64) -> impl Fn(&str) -> Result<Duration, String> {
    move |s| match s.parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(format!("{s:?} is not a number of seconds from 1 to {max}")),
    }
}

fn count(s: &str) -> Result<i64, String> {
    match s.parse::<i64>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a whole number from 1 to 1000000")),
    }
}

fn boolean(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{s:?} is not true or false")),
    }
}

fn load_auth(args: &ServeArgs, layers: &Layers<'_>) -> Result<AuthSettings, BootError> {
    let kind = layers.get(
        "password_policy",
        args.password_policy.as_ref(),
        "composition",
        "composition or length",
        |s| match s {
            "composition" => Ok(PolicyKind::Composition),
            "length" | "asvs" => Ok(PolicyKind::Length),
            _ => Err(format!("{s:?} is not a password policy")),
        },
    )?;
    let default_min = if kind == PolicyKind::Length {
        "12"
    } else {
        "8"
    };
    let min_length = layers.get(
        "password_min_length",
        args.password_min_length.as_ref(),
        default_min,
        "a whole number from 8 to 128",
        |s| match s.parse::<usize>() {
            Ok(n) if (8..=128).contains(&n) => Ok(n),
            _ => Err(format!("{s:?} is out of range")),
        },
    )?;
    let day = 24 * 3600;
    Ok(AuthSettings {
        password_policy: PasswordPolicy { kind, min_length },
        session_idle_timeout: layers.get(
            "session_idle_timeout",
            args.session_idle_timeout.as_ref(),
            "28800",
            "seconds, at most 30 days",
            seconds(30 * day),
        )?,
        session_absolute_timeout: layers.get(
            "session_absolute_timeout",
            args.session_absolute_timeout.as_ref(),
            "604800",
            "seconds, at most 400 days",
            seconds(400 * day),
        )?,
        login_max_failures: layers.get(
            "login_max_failures",
            args.login_max_failures.as_ref(),
            "5",
            "a count of failed sign-ins",
            count,
        )?,
        login_max_failures_per_address: layers.get(
            "login_max_failures_per_address",
            args.login_max_failures_per_address.as_ref(),
            "30",
            "a count of failed sign-ins",
            count,
        )?,
        login_lockout: layers.get(
            "login_lockout",
            args.login_lockout.as_ref(),
            "900",
            "seconds, at most one day",
            seconds(day),
        )?,
        register_max_per_address: layers.get(
            "register_max_per_address",
            args.register_max_per_address.as_ref(),
            "10",
            "a count of registrations",
            count,
        )?,
        trust_forwarded_for: layers.get(
            "trust_forwarded_for",
            args.trust_forwarded_for.as_ref(),
            "false",
            "true or false",
            boolean,
        )?,
        cookie_secure: layers.get(
            "cookie_secure",
            args.cookie_secure.as_ref(),
            "auto",
            "auto, always or never",
            |s| match s {
                "auto" => Ok(CookieSecure::Auto),
                "always" => Ok(CookieSecure::Always),
                "never" => Ok(CookieSecure::Never),
                _ => Err(format!("{s:?} is not a cookie mode")),
            },
        )?,
    })
}

fn api(s: &str) -> Result<Api, String> {
    match s {
        "ollama" => Ok(Api::Ollama),
        "openai" => Ok(Api::OpenAi),
        _ => Err(format!("{s:?} is not a known API")),
    }
}

/// True for hosts on this machine or a private network: loopback, RFC 1918 / unique-local
/// addresses, `localhost`, and single-label names (compose or Kubernetes services).
/// Link-local addresses are not "local": 169.254.169.254 is the cloud metadata service, which
/// hands out credentials. Unspecified addresses (0.0.0.0, ::) name no host at all.
pub fn is_local_host(host: &str) -> bool {
    use std::net::IpAddr;
    fn local_ip(ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(ip) => ip.is_loopback() || ip.is_private(),
            IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
                Some(v4) => local_ip(IpAddr::V4(v4)),
                None => ip.is_loopback() || (ip.segments()[0] & 0xfe00) == 0xfc00,
            },
        }
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => local_ip(ip),
        Err(_) => host == "localhost" || host.ends_with(".localhost") || !host.contains('.'),
    }
}

#[cfg(test)]
mod local_host_tests {
    use super::is_local_host;

    #[test]
    fn local_means_this_machine_or_its_private_network() {
        for host in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.20",
            "[::1]",
            "[fd00::5]",
            "ollama",
            "localhost",
        ] {
            assert!(is_local_host(host), "{host}");
        }
        for host in [
            "169.254.169.254",
            "[fe80::1]",
            "0.0.0.0",
            "[::]",
            "[::ffff:169.254.169.254]",
            "8.8.8.8",
            "api.example.com",
        ] {
            assert!(!is_local_host(host), "{host}");
        }
        assert!(is_local_host("[::ffff:10.0.0.1]"));
    }
}

fn load_endpoint(
    layers: &Layers<'_>,
    prefix: &str,
    url: Option<&String>,
    api_raw: Option<&String>,
    model: Option<&String>,
    key: Option<&String>,
    allow_remote: bool,
) -> Result<Option<Endpoint>, BootError> {
    let url_id = format!("{prefix}_url");
    let url = layers.get(
        &url_id,
        url,
        "",
        "an http:// or https:// base URL, e.g. http://127.0.0.1:11434",
        |s| {
            if s.is_empty() {
                return Ok(None);
            }
            let parsed = reqwest::Url::parse(s).map_err(|e| format!("{s:?} is not a URL ({e})"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(format!("{s:?} is not http or https"));
            }
            let host = parsed.host_str().unwrap_or_default();
            if !allow_remote && !is_local_host(host) {
                return Err(format!(
                    "{host} is outside this machine and its private network, so documents \
                     would leave it; set allow_remote_llm = true to allow that"
                ));
            }
            Ok(Some(s.trim_end_matches('/').to_string()))
        },
    )?;
    let Some(url) = url else { return Ok(None) };
    let api = layers.get(
        &format!("{prefix}_api"),
        api_raw,
        "ollama",
        "ollama or openai",
        api,
    )?;
    let model = layers.get(
        &format!("{prefix}_model"),
        model,
        "",
        "a model name (required when the URL is set)",
        |s| {
            if s.is_empty() {
                Err("no model is set".into())
            } else {
                Ok(s.to_string())
            }
        },
    )?;
    let api_key = layers
        .raw(&format!("{prefix}_api_key"), key)
        .0
        .filter(|k| !k.is_empty());
    Ok(Some(Endpoint {
        api,
        url,
        model,
        api_key,
    }))
}

fn load_rag(args: &ServeArgs, layers: &Layers<'_>) -> Result<RagSettings, BootError> {
    let allow_remote = layers.get(
        "allow_remote_llm",
        args.allow_remote_llm.as_ref(),
        "false",
        "true or false",
        boolean,
    )?;
    let llm = load_endpoint(
        layers,
        "llm",
        args.llm_url.as_ref(),
        args.llm_api.as_ref(),
        args.llm_model.as_ref(),
        args.llm_api_key.as_ref(),
        allow_remote,
    )?;
    let embed = load_endpoint(
        layers,
        "embed",
        args.embed_url.as_ref(),
        args.embed_api.as_ref(),
        args.embed_model.as_ref(),
        args.embed_api_key.as_ref(),
        allow_remote,
    )?;
    let chunk_size = layers.get(
        "chunk_size",
        args.chunk_size.as_ref(),
        "1000",
        "characters, from 100 to 20000",
        |s| match s.parse::<usize>() {
            Ok(n) if (100..=20_000).contains(&n) => Ok(n),
            _ => Err(format!("{s:?} is out of range")),
        },
    )?;
    let chunk_overlap = layers.get(
        "chunk_overlap",
        args.chunk_overlap.as_ref(),
        "150",
        "characters, less than half the chunk size",
        |s| match s.parse::<usize>() {
            Ok(n) if n < chunk_size / 2 => Ok(n),
            _ => Err(format!(
                "{s:?} is not below half of chunk_size ({chunk_size})"
            )),
        },
    )?;
    let weight = |s: &str| match s.parse::<f64>() {
        Ok(w) if (0.0..=100.0).contains(&w) => Ok(w),
        _ => Err(format!("{s:?} is not a weight from 0 to 100")),
    };
    Ok(RagSettings {
        llm,
        embed,
        llm_timeout: layers.get(
            "llm_timeout",
            args.llm_timeout.as_ref(),
            "120",
            "seconds, at most 3600",
            seconds(3600),
        )?,
        max_upload_bytes: layers.get(
            "max_upload_mb",
            args.max_upload_mb.as_ref(),
            "50",
            "MiB, from 1 to 4096",
            |s| match s.parse::<u64>() {
                Ok(n) if (1..=4096).contains(&n) => Ok(n << 20),
                _ => Err(format!("{s:?} is out of range")),
            },
        )?,
        extract: crate::documents::Budget {
            max_chars: layers.get(
                "extract_max_chars",
                args.extract_max_chars.as_ref(),
                "10000000",
                "characters, from 1000 to 1000000000",
                |s| match s.parse::<usize>() {
                    Ok(n) if (1000..=1_000_000_000).contains(&n) => Ok(n),
                    _ => Err(format!("{s:?} is out of range")),
                },
            )?,
            max_pages: layers.get(
                "extract_max_pages",
                args.extract_max_pages.as_ref(),
                "5000",
                "pages, from 1 to 1000000",
                |s| count(s).map(|n| n as usize),
            )?,
            timeout: layers.get(
                "extract_timeout",
                args.extract_timeout.as_ref(),
                "120",
                "seconds, at most 3600",
                seconds(3600),
            )?,
        },
        chunk_size,
        chunk_overlap,
        retrieval_k: layers.get(
            "retrieval_k",
            args.retrieval_k.as_ref(),
            "6",
            "a count from 1 to 50",
            |s| match s.parse::<usize>() {
                Ok(n) if (1..=50).contains(&n) => Ok(n),
                _ => Err(format!("{s:?} is out of range")),
            },
        )?,
        lexical_weight: layers.get(
            "retrieval_lexical_weight",
            args.retrieval_lexical_weight.as_ref(),
            "1.0",
            "a number from 0 to 100",
            weight,
        )?,
        vector_weight: layers.get(
            "retrieval_vector_weight",
            args.retrieval_vector_weight.as_ref(),
            "1.0",
            "a number from 0 to 100",
            weight,
        )?,
        redis_url: layers.get(
            "redis_url",
            args.redis_url.as_ref(),
            "",
            "a redis://[:PASSWORD@]HOST[:PORT][/DB] URL, or unset for no cache",
            |s| parse_redis_url(s, allow_remote),
        )?,
        cache_ttl: layers.get(
            "cache_ttl",
            args.cache_ttl.as_ref(),
            "300",
            "seconds, at most one day",
            seconds(24 * 3600),
        )?,
    })
}

/// Checks a Redis URL without echoing it (it may hold a password). Plain `redis://` only: this
/// build has no TLS client (as for the model servers, Redis belongs on the private network).
fn parse_redis_url(s: &str, allow_remote: bool) -> Result<Option<String>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    let Ok(parsed) = reqwest::Url::parse(s) else {
        return Err("the value is not a URL".into());
    };
    match parsed.scheme() {
        "redis" => {}
        "rediss" => {
            return Err(
                "rediss:// (TLS) is not supported by this build; reach Redis over \
                        redis:// on a private network"
                    .into(),
            )
        }
        _ => return Err("the URL scheme is not redis://".into()),
    }
    let host = parsed.host_str().unwrap_or_default();
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    if !allow_remote && !is_local_host(host) {
        return Err(format!(
            "{host} is outside this machine and its private network, so cached queries would \
             leave it; set allow_remote_llm = true to allow that"
        ));
    }
    if redis::Client::open(s).is_err() {
        return Err("the URL is not a valid Redis URL (check the port and database number)".into());
    }
    Ok(Some(s.to_string()))
}

fn parse_database(s: &str, data_dir: &Path) -> Result<DatabaseLocation, String> {
    if s.is_empty() {
        return Ok(DatabaseLocation::Sqlite(data_dir.join("berth.db")));
    }
    if let Some(path) = s.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err("the sqlite:// URL has no path".into());
        }
        return Ok(DatabaseLocation::Sqlite(PathBuf::from(path)));
    }
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        return Ok(DatabaseLocation::Postgres(s.to_string()));
    }
    // Never echo the value: a malformed URL may still contain a password.
    Err("the URL scheme is not postgres:// or sqlite://".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::{CommandFactory, FromArgMatches};

    fn load(argv: &[&str]) -> Result<Settings, BootError> {
        let mut all = vec!["berth", "serve"];
        all.extend_from_slice(argv);
        let matches = Cli::command().try_get_matches_from(all).unwrap();
        let Command::Serve(args) = Cli::from_arg_matches(&matches).unwrap().command else {
            unreachable!("parsed as serve")
        };
        Settings::load(&args, matches.subcommand_matches("serve").unwrap())
    }

    #[test]
    fn defaults_are_embedded_and_local() {
        let s = load(&[]).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            s.database,
            DatabaseLocation::Sqlite(PathBuf::from("data/berth.db"))
        );
    }

    #[test]
    fn invalid_listen_names_setting_origin_and_form() {
        let err = load(&["--listen", "nowhere"]).unwrap_err().to_string();
        assert!(err.contains("`listen`"), "{err}");
        assert!(err.contains("flag --listen"), "{err}");
        assert!(err.contains("HOST:PORT"), "{err}");
    }

    #[test]
    fn file_values_apply_below_flags_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\nshutdown_timeout = 5\n").unwrap();
        let p = path.to_str().unwrap();
        let s = load(&["--config", p]).unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.shutdown_timeout, Duration::from_secs(5));
        let s = load(&["--config", p, "--listen", "127.0.0.1:9001"]).unwrap();
        assert_eq!(s.listen.port(), 9001);

        std::fs::write(&path, "# comment\nlistne = \"x\"\n").unwrap();
        let err = load(&["--config", p]).unwrap_err().to_string();
        assert!(err.contains(":2: unknown setting `listne`"), "{err}");
    }

    #[test]
    fn database_connect_timeout_defaults_to_30s_and_is_bounded() {
        assert_eq!(
            load(&[]).unwrap().database_connect_timeout,
            Duration::from_secs(30)
        );
        let s = load(&["--database-connect-timeout", "0"]).unwrap();
        assert_eq!(s.database_connect_timeout, Duration::ZERO);
        let err = load(&["--database-connect-timeout", "forever"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`database_connect_timeout`"), "{err}");
    }

    #[test]
    fn redis_url_is_optional_local_and_checked_without_echoing_it() {
        let s = load(&[]).unwrap();
        assert_eq!(s.rag.redis_url, None);
        assert_eq!(s.rag.cache_ttl, Duration::from_secs(300));
        let s = load(&[
            "--redis-url",
            "redis://:pw@redis:6379/1",
            "--cache-ttl",
            "60",
        ])
        .unwrap();
        assert_eq!(s.rag.redis_url.as_deref(), Some("redis://:pw@redis:6379/1"));
        assert_eq!(s.rag.cache_ttl, Duration::from_secs(60));
        for bad in [
            "http://:secret@127.0.0.1:6379",
            "rediss://:secret@127.0.0.1:6379",
            "redis://:secret@cache.example.com:6379",
            "redis://:secret@127.0.0.1:6379/notanumber",
        ] {
            let err = load(&["--redis-url", bad]).unwrap_err().to_string();
            assert!(err.contains("`redis_url`"), "{err}");
            assert!(!err.contains("secret"), "{err}");
        }
        let s = load(&[
            "--redis-url",
            "redis://cache.example.com",
            "--allow-remote-llm",
            "true",
        ])
        .unwrap();
        assert!(s.rag.redis_url.is_some());
        assert!(load(&["--cache-ttl", "0"]).is_err());
    }

    #[test]
    fn database_url_scheme_is_checked_without_echoing_it() {
        let err = load(&["--database-url", "mysql://u:secret@h/db"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("database_url"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
}
