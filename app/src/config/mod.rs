//! Settings: parsed once at start from flags, `BERTH_*` variables and an optional TOML file, in that
//! order of precedence. Each setting is declared once ([`declared`]); here the values are put
//! together into what the rest of the program reads, and rules that involve several settings
//! are checked. An invalid value stops the start with a message naming the setting, where it
//! came from, and the expected form.

mod database;
pub mod declared;
mod layers;
mod oidc;
pub mod parse;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::domain::accounts::policy::{PasswordPolicy, PolicyKind};
pub use crate::domain::settings::{
    Api, AuthSettings, BuiltinModel, ConnectionLimits, CookieSecure, DatabaseLocation, EmbedApi,
    Embedding, Endpoint, RagSettings,
};
use crate::error::BootError;
use declared as d;
use layers::Layers;
pub use layers::{ForAdmin, ForData, ForDrill, ForModels, ForServe, Given, Uses};
pub use parse::is_local_host;

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
    /// `berth models pull`'s source, without a trailing slash.
    pub hub_url: String,
    /// Whether `berth serve` runs ingestion itself.
    pub ingest: bool,
    /// Whether start-up applies pending migrations (else it requires none pending).
    pub migrate: bool,
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

impl Settings {
    /// The settings a command was given (the ones outside its scope keep their defaults).
    pub fn load<U: Uses>(given: &Given<U>) -> Result<Settings, BootError> {
        Self::from_layers(&Layers::read(given)?)
    }

    /// Every setting at its default, as `berth serve` with nothing set.
    pub fn defaults() -> Settings {
        Self::from_layers(&Layers::defaults()).expect("every default parses (tested)")
    }

    fn from_layers(l: &Layers<'_>) -> Result<Settings, BootError> {
        let data_dir = l.get(&d::DATA_DIR)?;
        let database = database::location(l, &data_dir)?;
        let rag = rag(l, &data_dir)?;
        Ok(Settings {
            listen: l.get(&d::LISTEN)?,
            database,
            data_dir,
            database_connect_timeout: l.get(&d::DATABASE_CONNECT_TIMEOUT)?,
            log: LogSettings {
                filter: l.get(&d::LOG_LEVEL)?,
                format: l.get(&d::LOG_FORMAT)?,
            },
            shutdown_timeout: l.get(&d::SHUTDOWN_TIMEOUT)?,
            limits: ConnectionLimits {
                header_read_timeout: l.get(&d::HEADER_READ_TIMEOUT)?,
                body_read_timeout: l.get(&d::BODY_READ_TIMEOUT)?,
                request_timeout: l.get(&d::REQUEST_TIMEOUT)?,
                max_connections: l.get(&d::MAX_CONNECTIONS)?,
                max_connections_per_address: l.get(&d::MAX_CONNECTIONS_PER_ADDRESS)?,
            },
            auth: auth(l)?,
            rag,
            ingest: l.get(&d::INGEST)?,
            migrate: l.get(&d::MIGRATE)?,
            hub_url: l
                .get(&d::HUB_URL)?
                .unwrap_or_else(|| "https://huggingface.co".into()),
        })
    }
}

fn auth(l: &Layers<'_>) -> Result<AuthSettings, BootError> {
    let kind = l.get(&d::PASSWORD_POLICY)?;
    let min_length = l.get(&d::PASSWORD_MIN_LENGTH)?.unwrap_or(match kind {
        PolicyKind::Length => 12,
        PolicyKind::Composition => 8,
    });
    let oidc_providers = match l.get(&d::OIDC_PROVIDERS_FILE)? {
        Some(path) => oidc::read(&path)?,
        None => Vec::new(),
    };
    let public_url = l.get(&d::PUBLIC_URL)?;
    if !oidc_providers.is_empty() && public_url.is_none() {
        return Err(l.refuse(
            &d::PUBLIC_URL,
            "it is unset, and the OpenID providers need it to send people back to Berth \
             (PUBLIC_URL/api/v1/auth/oidc/ID/callback)",
        ));
    }
    Ok(AuthSettings {
        password_policy: PasswordPolicy { kind, min_length },
        session_idle_timeout: l.get(&d::SESSION_IDLE_TIMEOUT)?,
        session_absolute_timeout: l.get(&d::SESSION_ABSOLUTE_TIMEOUT)?,
        login_max_failures: l.get(&d::LOGIN_MAX_FAILURES)?,
        login_max_failures_per_address: l.get(&d::LOGIN_MAX_FAILURES_PER_ADDRESS)?,
        login_lockout: l.get(&d::LOGIN_LOCKOUT)?,
        register_max_per_address: l.get(&d::REGISTER_MAX_PER_ADDRESS)?,
        trust_forwarded_for: l.get(&d::TRUST_FORWARDED_FOR)?,
        cookie_secure: l.get(&d::COOKIE_SECURE)?,
        password_login: l.get(&d::PASSWORD_LOGIN)?,
        registration_open: l.get(&d::REGISTRATION_OPEN)?,
        oidc_providers,
        public_url,
    })
}

/// The settings of one model server.
struct EndpointSettings {
    url: &'static d::Setting<Option<String>>,
    /// None: the caller says (embeddings read theirs from `embed_api`).
    api: Option<&'static d::Setting<Api>>,
    model: &'static d::Setting<Option<String>>,
    api_key: &'static d::Setting<Option<String>>,
}

const LLM: EndpointSettings = EndpointSettings {
    url: &d::LLM_URL,
    api: Some(&d::LLM_API),
    model: &d::LLM_MODEL,
    api_key: &d::LLM_API_KEY,
};

const EMBED: EndpointSettings = EndpointSettings {
    url: &d::EMBED_URL,
    api: None,
    model: &d::EMBED_MODEL,
    api_key: &d::EMBED_API_KEY,
};

/// Refuses a host outside this network unless `allow_remote_llm` says so.
fn local_only<T>(
    l: &Layers<'_>,
    setting: &d::Setting<T>,
    url: &str,
    allow_remote: bool,
    what_leaves: &str,
) -> Result<(), BootError> {
    let host = parse::host_of(url);
    if allow_remote || is_local_host(&host) {
        return Ok(());
    }
    Err(l.refuse(
        setting,
        format!(
            "{host} is outside this machine and its private network, so {what_leaves} \
             would leave it; set allow_remote_llm = true to allow that"
        ),
    ))
}

fn endpoint(
    l: &Layers<'_>,
    of: &EndpointSettings,
    api: Option<Api>,
    allow_remote: bool,
) -> Result<Option<Endpoint>, BootError> {
    let Some(url) = l.get(of.url)? else {
        return Ok(None);
    };
    local_only(l, of.url, &url, allow_remote, "documents")?;
    let api = match (api, of.api) {
        (Some(api), _) => api,
        (None, Some(setting)) => l.get(setting)?,
        (None, None) => Api::Ollama,
    };
    Ok(Some(Endpoint {
        api,
        url,
        model: l
            .get(of.model)?
            .ok_or_else(|| l.refuse(of.model, "no model is set"))?,
        api_key: l.get(of.api_key)?,
    }))
}

/// Where embeddings come from: `embed_api`, the URL, and whether a built-in model is present.
fn embedding(
    l: &Layers<'_>,
    data_dir: &std::path::Path,
    allow_remote: bool,
) -> Result<Option<Embedding>, BootError> {
    let api = l.get(&d::EMBED_API)?;
    let server = |api| Ok(endpoint(l, &EMBED, Some(api), allow_remote)?.map(Embedding::Server));
    match api {
        EmbedApi::Server(api) => return server(api),
        EmbedApi::Auto if l.get(&d::EMBED_URL)?.is_some() => return server(Api::Ollama),
        EmbedApi::Builtin if l.get(&d::EMBED_URL)?.is_some() => {
            return Err(l.refuse(
                &d::EMBED_URL,
                "the built-in embedder (embed_api = builtin) runs inside Berth and takes no \
                 URL: unset embed_url, or set embed_api to ollama or openai",
            ))
        }
        EmbedApi::Auto | EmbedApi::Builtin => {}
    }
    let name = l
        .get(&d::EMBED_MODEL)?
        .unwrap_or_else(|| crate::domain::settings::DEFAULT_BUILTIN_MODEL.to_string());
    let dir = match l.get(&d::EMBED_MODEL_DIR)? {
        Some(dir) => dir,
        None => models_dir(data_dir).join(&name),
    };
    let present = dir.join("config.json").is_file() && dir.join("model.safetensors").is_file();
    if !present {
        if api == EmbedApi::Auto {
            return Ok(None);
        }
        return Err(l.refuse(
            &d::EMBED_API,
            format!(
                "no model at {}: fetch it with `berth models pull {name}`, or point \
                 embed_model_dir at a directory holding config.json, tokenizer.json and \
                 model.safetensors",
                dir.display()
            ),
        ));
    }
    let threads = l.get(&d::EMBED_THREADS)?.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
    });
    Ok(Some(Embedding::Builtin(BuiltinModel {
        name,
        dir,
        threads,
    })))
}

/// Where `berth models pull` puts models: `DATA_DIR/models/ORG/NAME`.
pub fn models_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("models")
}

fn rag(l: &Layers<'_>, data_dir: &std::path::Path) -> Result<RagSettings, BootError> {
    let allow_remote = l.get(&d::ALLOW_REMOTE_LLM)?;
    let chunk_size = l.get(&d::CHUNK_SIZE)?;
    let chunk_overlap = l.get(&d::CHUNK_OVERLAP)?;
    if chunk_overlap >= chunk_size / 2 {
        return Err(l.refuse(
            &d::CHUNK_OVERLAP,
            format!("{chunk_overlap} is not below half of chunk_size ({chunk_size})"),
        ));
    }
    let redis_url = l.get(&d::REDIS_URL)?;
    if let Some(url) = &redis_url {
        local_only(l, &d::REDIS_URL, url, allow_remote, "cached queries")?;
    }
    let redis_ca_file = l.get(&d::REDIS_CA_FILE)?;
    if let Some(path) = &redis_ca_file {
        if !redis_url
            .as_deref()
            .is_some_and(|u| u.starts_with("rediss://"))
        {
            return Err(l.refuse(
                &d::REDIS_CA_FILE,
                "redis_url is not a rediss:// (TLS) URL, so there is no certificate to check: \
                 use rediss://, or unset redis_ca_file",
            ));
        }
        crate::tls::read_ca_file(path).map_err(|e| l.refuse(&d::REDIS_CA_FILE, e))?;
    }
    Ok(RagSettings {
        llm: endpoint(l, &LLM, None, allow_remote)?,
        embed: embedding(l, data_dir, allow_remote)?,
        llm_timeout: l.get(&d::LLM_TIMEOUT)?,
        sampling: crate::domain::settings::Sampling {
            temperature: l.get(&d::LLM_TEMPERATURE)?,
            max_tokens: l.get(&d::LLM_MAX_TOKENS)?,
        },
        max_upload_bytes: l.get(&d::MAX_UPLOAD_MB)?,
        extract: crate::domain::documents::Budget {
            max_chars: l.get(&d::EXTRACT_MAX_CHARS)?,
            max_pages: l.get(&d::EXTRACT_MAX_PAGES)?,
            timeout: l.get(&d::EXTRACT_TIMEOUT)?,
        },
        chunk_size,
        chunk_overlap,
        retrieval_k: l.get(&d::RETRIEVAL_K)?,
        lexical_weight: l.get(&d::RETRIEVAL_LEXICAL_WEIGHT)?,
        vector_weight: l.get(&d::RETRIEVAL_VECTOR_WEIGHT)?,
        redis_url,
        redis_ca_file,
        cache_ttl: l.get(&d::CACHE_TTL)?,
        ca_bundle: l.get(&d::CA_BUNDLE)?,
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn load(argv: &[&str]) -> Result<Settings, BootError> {
        let mut all = vec!["berth", "serve"];
        all.extend_from_slice(argv);
        let Command::Serve(args) = Cli::try_parse_from(all).unwrap().command else {
            unreachable!("parsed as serve")
        };
        Settings::load(&args.settings)
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
            "rediss://:secret@127.0.0.1:6379/#insecure",
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

    /// A CA file for the tests: one self-made certificate in PEM.
    fn ca_file(dir: &std::path::Path) -> PathBuf {
        let cert = rcgen::generate_simple_self_signed(vec!["ca.test".into()]).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, cert.cert.pem()).unwrap();
        path
    }

    #[test]
    fn rediss_takes_a_ca_file_that_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca_file(dir.path());
        let ca = ca.to_str().unwrap();
        let s = load(&[
            "--redis-url",
            "rediss://:pw@redis:6380",
            "--redis-ca-file",
            ca,
        ])
        .unwrap();
        assert_eq!(s.rag.redis_url.as_deref(), Some("rediss://:pw@redis:6380"));
        assert_eq!(
            s.rag.redis_ca_file.as_deref(),
            Some(std::path::Path::new(ca))
        );

        let err = load(&[
            "--redis-url",
            "redis://:pw@redis:6379",
            "--redis-ca-file",
            ca,
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`redis_ca_file`") && err.contains("rediss://"),
            "{err}"
        );
        assert!(!err.contains("pw@"), "{err}");
        let missing = dir.path().join("nope.pem");
        let err = load(&[
            "--redis-url",
            "rediss://redis:6380",
            "--redis-ca-file",
            missing.to_str().unwrap(),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`redis_ca_file`") && err.contains("cannot read"),
            "{err}"
        );
    }

    #[test]
    fn database_ca_file_goes_into_the_url_and_asks_for_verification() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca_file(dir.path());
        let ca = ca.to_str().unwrap();
        let url = |s: Settings| match s.database {
            DatabaseLocation::Postgres(url) => url,
            other => panic!("{other:?}"),
        };
        let base = "postgres://berth:s3cret@db:5432/berth";
        // No sslmode: verify-full, against the CA.
        let got = url(load(&["--database-url", base, "--database-ca-file", ca]).unwrap());
        let parsed = reqwest::Url::parse(&got).unwrap();
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            [
                ("sslmode".to_string(), "verify-full".to_string()),
                ("sslrootcert".to_string(), ca.to_string())
            ]
        );
        assert_eq!(parsed.password(), Some("s3cret"));
        // An explicit verify-full is kept; without a CA file the URL is as given.
        let full = format!("{base}?sslmode=verify-full");
        let got = url(load(&["--database-url", &full, "--database-ca-file", ca]).unwrap());
        assert_eq!(got.matches("sslmode").count(), 1, "{got}");
        let plain = format!("{base}?sslmode=require");
        assert_eq!(url(load(&["--database-url", &plain]).unwrap()), plain);

        for (args, setting, says) in [
            (
                vec!["--database-url", &plain, "--database-ca-file", ca],
                "database_ca_file",
                "sslmode=require",
            ),
            (vec!["--database-ca-file", ca], "database_ca_file", "SQLite"),
            (
                vec![
                    "--database-url",
                    "postgres://u:s3cret@db/b?sslrootcert=/x.pem",
                ],
                "database_url",
                "database_ca_file",
            ),
            (
                vec![
                    "--database-url",
                    "postgres://u:s3cret@db/b?sslmode=verify_full",
                ],
                "database_url",
                "verify-full",
            ),
            (
                vec!["--database-url", "postgres://u:s3cret@db/b?sslmode=allow"],
                "database_url",
                "allow",
            ),
            (
                vec![
                    "--database-url",
                    "postgres://u:s3cret@db/b?sslmode=verify-ca",
                ],
                "database_url",
                "verify-full",
            ),
            (
                vec![
                    "--database-url",
                    base,
                    "--database-ca-file",
                    "/no/such/ca.pem",
                ],
                "database_ca_file",
                "cannot read",
            ),
        ] {
            let err = load(&args).unwrap_err().to_string();
            assert!(err.contains(&format!("`{setting}`")), "{err}");
            assert!(err.contains(says), "{err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn nothing_set_is_the_defaults() {
        let (loaded, defaults) = (load(&[]).unwrap(), Settings::defaults());
        assert_eq!(format!("{loaded:?}"), format!("{defaults:?}"));
        assert_eq!(defaults.auth.password_policy.min_length, 8);
        let s = load(&["--password-policy", "length"]).unwrap();
        assert_eq!(
            s.auth.password_policy.min_length, 12,
            "length policy's default"
        );
    }

    #[test]
    fn rules_across_settings_name_the_setting_and_origin() {
        let err = load(&["--chunk-size", "400", "--chunk-overlap", "200"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`chunk_overlap` (flag --chunk-overlap)"),
            "{err}"
        );
        assert!(err.contains("below half of chunk_size (400)"), "{err}");
        let err = load(&["--embed-url", "http://127.0.0.1:11434"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`embed_model` (default): no model is set"),
            "{err}"
        );
    }

    #[test]
    fn commands_take_only_the_settings_they_use() {
        let admin = Cli::try_parse_from([
            "berth",
            "admin",
            "create",
            "--username",
            "a",
            "--password-policy",
            "length",
        ])
        .unwrap();
        let Command::Admin(crate::cli::AdminCommand::Create(args)) = admin.command else {
            unreachable!("parsed as admin create")
        };
        let s = Settings::load(&args.settings).unwrap();
        assert_eq!(s.auth.password_policy.kind, PolicyKind::Length);

        for argv in [
            &[
                "berth",
                "admin",
                "create",
                "--username",
                "a",
                "--listen",
                "x",
            ][..],
            &["berth", "backup", "create", "--llm-url", "http://x"],
            &["berth", "backup", "list", "--data-dir", "d"],
            &["berth", "restore", "a.tar.gz", "--chunk-size", "500"],
        ] {
            let err = Cli::try_parse_from(argv).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::UnknownArgument,
                "{argv:?}"
            );
        }
    }

    #[test]
    fn a_file_may_hold_settings_a_command_does_not_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.toml");
        // The server's file, with a value the backup command would have no use for.
        std::fs::write(&path, "data_dir = \"/srv/berth\"\nchunk_size = 5\n").unwrap();
        let cli = Cli::try_parse_from([
            "berth",
            "backup",
            "create",
            "--config",
            path.to_str().unwrap(),
        ])
        .unwrap();
        let Command::Backup(crate::maintenance::BackupCommand::Create(args)) = cli.command else {
            unreachable!("parsed as backup create")
        };
        let s = Settings::load(&args.settings).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/srv/berth"));
        assert!(
            load(&["--config", path.to_str().unwrap()]).is_err(),
            "serve reads chunk_size"
        );
    }

    #[test]
    fn database_url_scheme_is_checked_without_echoing_it() {
        let err = load(&["--database-url", "mysql://u:secret@h/db"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("database_url"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    fn data_dir_with_model() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let model = dir
            .path()
            .join("models/sentence-transformers/all-MiniLM-L6-v2");
        std::fs::create_dir_all(&model).unwrap();
        std::fs::write(model.join("config.json"), "{}").unwrap();
        std::fs::write(model.join("model.safetensors"), "").unwrap();
        dir
    }

    #[test]
    fn embeddings_are_built_in_when_a_model_is_in_the_data_dir() {
        let data = data_dir_with_model();
        let s = load(&["--data-dir", data.path().to_str().unwrap()]).unwrap();
        let Some(Embedding::Builtin(m)) = s.rag.embed else {
            panic!("expected the built-in embedder")
        };
        assert_eq!(m.name, "sentence-transformers/all-MiniLM-L6-v2");
        assert!(m
            .dir
            .ends_with("models/sentence-transformers/all-MiniLM-L6-v2"));
        assert!(m.threads >= 1);
    }

    #[test]
    fn without_a_model_or_url_retrieval_is_lexical() {
        let empty = tempfile::tempdir().unwrap();
        let s = load(&["--data-dir", empty.path().to_str().unwrap()]).unwrap();
        assert!(s.rag.embed.is_none());
    }

    #[test]
    fn an_embedding_url_means_a_server_even_with_a_model_present() {
        let data = data_dir_with_model();
        let s = load(&[
            "--data-dir",
            data.path().to_str().unwrap(),
            "--embed-url",
            "http://127.0.0.1:11434",
            "--embed-model",
            "nomic-embed-text",
        ])
        .unwrap();
        assert!(matches!(s.rag.embed, Some(Embedding::Server(e)) if e.api == Api::Ollama));
    }

    #[test]
    fn builtin_without_a_model_names_the_command_that_fetches_one() {
        let empty = tempfile::tempdir().unwrap();
        let err = load(&[
            "--data-dir",
            empty.path().to_str().unwrap(),
            "--embed-api",
            "builtin",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("embed_api")
                && err.contains("berth models pull sentence-transformers/all-MiniLM-L6-v2"),
            "{err}"
        );
    }

    #[test]
    fn builtin_with_a_url_is_refused() {
        let err = load(&[
            "--embed-api",
            "builtin",
            "--embed-url",
            "http://127.0.0.1:11434",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("embed_url") && err.contains("takes no URL"),
            "{err}"
        );
    }

    #[test]
    fn embed_threads_is_auto_or_a_count() {
        let data = data_dir_with_model();
        let dir = data.path().to_str().unwrap();
        let s = load(&["--data-dir", dir, "--embed-threads", "3"]).unwrap();
        assert!(matches!(s.rag.embed, Some(Embedding::Builtin(m)) if m.threads == 3));
        let err = load(&["--data-dir", dir, "--embed-threads", "0"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("embed_threads"), "{err}");
    }
}
