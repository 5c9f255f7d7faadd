//! The production store: PostgreSQL (with pgvector for retrieval).
//!
//! Start-up waits for the server with bounded exponential backoff (a database container usually
//! starts next to Berth, and may be slower). Afterwards every query gets its connection within
//! [`ACQUIRE_TIMEOUT`] or fails, so while the server is down or restarting requests answer 503
//! quickly instead of piling up, and the pool reconnects by itself once it is back.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection;

use super::migrations;
use crate::error::BootError;
use crate::store::failure::database_unavailable;
use crate::tls;

/// How long a query waits for a pooled connection (including opening a new one) before the
/// request fails with 503.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the readiness check may take in all.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// Pauses between connection attempts at start: doubling from the first to the last.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);
/// One connection attempt at start gives up after this long (a black-holed address).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct PgStore {
    pub pool: PgPool,
    /// For messages and the readiness check's diagnosis (boxed: it is large).
    options: std::sync::Arc<PgConnectOptions>,
    /// `database_ca_file` (the URL's `sslrootcert`, where `config` put it), for messages.
    ca_file: Option<PathBuf>,
}

impl PgStore {
    /// [`PgStore::connect`], then every pending migration applied.
    pub async fn open(url: &str, connect_timeout: Duration) -> Result<PgStore, BootError> {
        let store = PgStore::connect(url, connect_timeout).await?;
        store.apply_migrations().await?;
        Ok(store)
    }

    /// Connects (retrying unreachable-server errors for up to `connect_timeout`) and refuses a
    /// database written by a newer Berth; migrates nothing.
    pub async fn connect(url: &str, connect_timeout: Duration) -> Result<PgStore, BootError> {
        // Never echo the URL: it may hold a password.
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| BootError::Config(format!("the PostgreSQL URL is not valid: {e}")))?
            .application_name("berth");
        let ca_file = reqwest::Url::parse(url).ok().and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "sslrootcert")
                .map(|(_, v)| PathBuf::from(v.into_owned()))
        });
        wait_for_server(&options, ca_file.as_deref(), connect_timeout).await?;

        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A pooled connection is pinged before use, so the ones a database restart broke are
            // replaced instead of failing a request.
            .test_before_acquire(true)
            .idle_timeout(Some(Duration::from_secs(600)))
            .max_lifetime(Some(Duration::from_secs(1800)))
            // Statements are prepared once per connection; after five runs PostgreSQL may switch
            // to a generic plan that ignores the values. For the search queries (a term's
            // frequency, a LIMIT, the collections) that plan is a scan where the value would pick
            // an index, so every run is planned with its values (bench: search at 10k chunks p50
            // 173 → 26 ms; the planning cost per run was not measured on its own).
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(conn, "SET plan_cache_mode = force_custom_plan")
                        .await
                        .map(drop)
                })
            })
            .connect_lazy_with(options.clone());
        let store = PgStore {
            pool,
            options: options.into(),
            ca_file,
        };
        store.refuse_newer_schema().await?;
        Ok(store)
    }

    pub fn describe(&self) -> String {
        describe(&self.options)
    }

    async fn refuse_newer_schema(&self) -> Result<(), BootError> {
        let where_ = describe(&self.options);
        let has_table: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                .fetch_one(&self.pool)
                .await
                .map_err(|e| {
                    BootError::Database(format!("cannot query PostgreSQL at {where_}: {e}"))
                })?;
        if has_table.is_some() {
            let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| anyhow::anyhow!("reading applied migrations: {e}"))?;
            migrations::refuse_unknown(&migrations::POSTGRES, &applied, &where_)?;
        }
        Ok(())
    }

    pub async fn apply_migrations(&self) -> Result<(), BootError> {
        let where_ = describe(&self.options);
        // sqlx takes an advisory lock around the run, so instances starting together apply each
        // migration once; each migration runs in its own transaction.
        migrations::POSTGRES.run(&self.pool).await.map_err(|e| {
            BootError::Database(format!(
                "cannot migrate PostgreSQL at {where_}: {e}; no migration was half-applied"
            ))
        })
    }

    /// Readiness: a pooled connection answers a query within [`CHECK_TIMEOUT`].
    pub async fn check(&self) -> Result<(), String> {
        let probe = async {
            let mut conn = self.pool.acquire().await?;
            sqlx::query("SELECT 1").execute(&mut *conn).await?;
            Ok::<_, sqlx::Error>(())
        };
        let why = |e: sqlx::Error| explain(&e, &self.options, self.ca_file.as_deref());
        let error = match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) if !matches!(e, sqlx::Error::PoolTimedOut) => why(e),
            // The pool only says it timed out: one direct attempt tells why (refused, unknown
            // host, authentication, or no answer at all).
            _ => match tokio::time::timeout(
                Duration::from_secs(1),
                PgConnection::connect_with(&self.options),
            )
            .await
            {
                Ok(Err(e)) => why(e),
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    format!("no pooled connection answered within {CHECK_TIMEOUT:?}")
                }
                Err(_) => format!("no answer within {CHECK_TIMEOUT:?}"),
            },
        };
        Err(format!(
            "PostgreSQL at {}: {error}",
            describe(&self.options)
        ))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `host:port/database`, for messages: never the user or password.
fn describe(options: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("(default database)")
    )
}

/// What a failed connection means, in one line: a TLS failure names the setting that fixes it.
fn explain(error: &sqlx::Error, options: &PgConnectOptions, ca_file: Option<&Path>) -> String {
    let trust = tls::Trust {
        setting: "database_ca_file",
        ca_file,
    };
    match error {
        sqlx::Error::Io(io) => match tls::tls_error(io) {
            Some(tls) => tls::explain(tls, options.get_host(), trust),
            None => error.to_string(),
        },
        // sqlx's own TLS refusals: the server has TLS off, or a file it could not use.
        sqlx::Error::Tls(why) => format!(
            "TLS failed: {why} (sslmode in database_url asks for TLS; the server's `ssl` setting \
             and database_ca_file must agree)"
        ),
        sqlx::Error::Database(db) if db.message().ends_with("no encryption") => format!(
            "{error} (the server accepts only TLS connections here: set sslmode=verify-full in \
             database_url and database_ca_file to its CA)"
        ),
        _ => error.to_string(),
    }
}

/// Opens one connection, retrying while the server is unreachable or starting, with pauses
/// doubling from [`FIRST_RETRY`] to [`MAX_RETRY`], for at most `patience` in all. Errors that
/// waiting cannot fix (wrong password, no such database) fail at once.
async fn wait_for_server(
    options: &PgConnectOptions,
    ca_file: Option<&Path>,
    patience: Duration,
) -> Result<(), BootError> {
    let started = Instant::now();
    let deadline = started + patience;
    let mut pause = FIRST_RETRY;
    let mut attempt = 1u32;
    loop {
        let budget = deadline
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_secs(3), ATTEMPT_TIMEOUT);
        let error = match tokio::time::timeout(budget, PgConnection::connect_with(options)).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                if attempt > 1 {
                    tracing::info!(
                        attempts = attempt,
                        waited_ms = started.elapsed().as_millis() as u64,
                        "connected to PostgreSQL"
                    );
                }
                return Ok(());
            }
            Ok(Err(e)) => e,
            Err(_) => sqlx::Error::PoolTimedOut,
        };
        // A certificate the CA refuses comes as an I/O error, but waiting will not fix it.
        let tls_refused = matches!(&error, sqlx::Error::Io(io) if tls::tls_error(io).is_some());
        let retryable = database_unavailable(&error) && !tls_refused;
        let now = Instant::now();
        if !retryable || now + pause > deadline {
            let why = match error {
                sqlx::Error::PoolTimedOut => format!("no answer within {budget:?}"),
                other => explain(&other, options, ca_file),
            };
            let tried = if attempt > 1 {
                format!(
                    " (tried {attempt} times over {:.0}s; --database-connect-timeout / \
                     BERTH_DATABASE_CONNECT_TIMEOUT sets how long)",
                    started.elapsed().as_secs_f64()
                )
            } else {
                String::new()
            };
            return Err(BootError::Database(format!(
                "cannot connect to PostgreSQL at {}: {why}{tried}",
                describe(options)
            )));
        }
        tracing::warn!(
            attempt,
            retry_in_ms = pause.as_millis() as u64,
            error = %error,
            "PostgreSQL is not reachable yet; waiting"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_RETRY);
        attempt += 1;
    }
}
