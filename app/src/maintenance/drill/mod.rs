//! `berth backup drill`: the proof that a backup is usable, not just readable. The archive is
//! restored into a throwaway database, the real server is started on it, and a throwaway admin
//! signs in over HTTP and searches, as a person would after a disaster. Nothing of the live
//! setup is touched, and everything made is removed however the drill ends.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use base64::Engine as _;
use clap::Args;
use serde_json::{json, Value};

mod server;

use server::Server;

use super::{archive, refused, runtime, snapshot, BackupDir, TempDir, ToolArgs};
use crate::config::{DatabaseLocation, ForDrill, Given, Settings};
use crate::domain::accounts::Username;
use crate::error::BootError;
use crate::store::{on_pool, Store};

const STEPS: usize = 6;
/// The restored server's log lines kept, to show when it fails.
const LOG_LINES: usize = 40;

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// The archive to drill. [default: the newest archive in --dir (of --stage, if given)]
    pub archive: Option<PathBuf>,
    #[command(flatten)]
    pub dir: BackupDir,
    /// Pick the newest archive of this stage (e.g. prod) rather than the newest of any.
    #[arg(long, value_name = "NAME")]
    pub stage: Option<String>,
    /// Seconds to wait for the restored server to answer /ready.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub ready_timeout: u64,
    #[command(flatten)]
    pub tools: ToolArgs,
    /// For a PostgreSQL archive: the server to create the scratch database on. The embedding
    /// settings are used by the restored server, so that the search embeds the query as
    /// production does.
    #[command(flatten)]
    pub settings: Given<ForDrill>,
}

/// What a drill found.
struct Summary {
    documents: usize,
    chunks: i64,
    hits: usize,
    mode: String,
}

pub fn run(args: &DrillArgs) -> Result<(), BootError> {
    let started = Instant::now();
    let archive = match &args.archive {
        Some(path) => path.clone(),
        None => newest(&args.dir.path, args.stage.as_deref())?,
    };
    let settings = Settings::load(&args.settings)?;
    let drill = Drill {
        archive: archive.clone(),
        settings,
        tools: args.tools.tools(),
        ready_timeout: Duration::from_secs(args.ready_timeout),
    };
    let summary = runtime()?.block_on(async {
        tokio::select! {
            result = drill.run() => result,
            signal = interrupted() => Err(BootError::Other(anyhow!(
                "interrupted by {signal}; the throwaway copy was removed"
            ))),
        }
    })?;
    // A passed drill proves more than verify: the archive counts as verified (rotation keeps
    // the newest verified one).
    if let Err(e) = std::fs::write(
        archive::verified_marker(&archive),
        format!("{} (drill)\n", chrono::Utc::now().to_rfc3339()),
    ) {
        eprintln!("drill: warning: could not write the verified marker: {e}");
    }
    let secs = started.elapsed().as_secs_f64();
    if summary.chunks == 0 {
        println!(
            "drill passed: {}: {} document(s), no chunks to search (an empty archive); signed in \
             and listed, {secs:.1} s",
            archive.display(),
            summary.documents
        );
    } else {
        println!(
            "drill passed: {}: {} document(s), {} chunk(s), {} hit(s) ({} search), {secs:.1} s",
            archive.display(),
            summary.documents,
            summary.chunks,
            summary.hits,
            summary.mode
        );
    }
    Ok(())
}

/// The newest complete archive in `dir` (of `stage`, if given).
fn newest(dir: &Path, stage: Option<&str>) -> Result<PathBuf, BootError> {
    archive::list(dir, stage)?.pop().ok_or_else(|| {
        BootError::Config(format!(
            "no backup archive{} in {}: take one with `berth backup create`, or give the \
             archive's path",
            stage.map(|s| format!(" of stage {s}")).unwrap_or_default(),
            dir.display()
        ))
    })
}

async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}

struct Drill {
    archive: PathBuf,
    settings: Settings,
    tools: snapshot::PgTools,
    ready_timeout: Duration,
}

/// Runs one numbered step, reporting it and its time on stderr; a failure names the step and
/// says what to do.
async fn step<T>(
    n: usize,
    name: &str,
    hint: &str,
    work: impl Future<Output = Result<T, BootError>>,
) -> Result<T, BootError> {
    eprintln!("drill: [{n}/{STEPS}] {name}");
    let started = Instant::now();
    match work.await {
        Ok(value) => {
            eprintln!(
                "drill: [{n}/{STEPS}] {name}: ok ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
            Ok(value)
        }
        Err(e) => {
            let why = match &e {
                BootError::Other(e) => format!("{e:#}"),
                other => other.to_string(),
            };
            let message = format!("drill failed at step {n}/{STEPS} ({name}): {why}\n{hint}");
            Err(match e {
                BootError::Config(_) => BootError::Config(message),
                BootError::Database(_) => BootError::Database(message),
                BootError::Refused(_) => BootError::Refused(message),
                BootError::Other(_) => BootError::Other(anyhow!(message)),
            })
        }
    }
}

impl Drill {
    async fn run(&self) -> Result<Summary, BootError> {
        let manifest = step(
            1,
            "check the archive's checksums and compatibility",
            "Use another archive (`berth backup list`), and find out why this one is bad before \
             it is the only one left.",
            async {
                let manifest = archive::verify(&self.archive).map_err(refused)?;
                super::refuse_newer(&self.archive, &manifest)?;
                if manifest.backend == "postgres"
                    && !matches!(self.settings.database, DatabaseLocation::Postgres(_))
                {
                    return Err(BootError::Config(
                        "a PostgreSQL archive is drilled on a PostgreSQL server: give \
                         --database-url postgres://… (a scratch database is created there and \
                         dropped afterwards)"
                            .into(),
                    ));
                }
                if !matches!(manifest.backend.as_str(), "sqlite" | "postgres") {
                    return Err(
                        anyhow!("unknown backend {:?} in the manifest", manifest.backend).into(),
                    );
                }
                Ok(manifest)
            },
        )
        .await?;

        // Beside the archive, like verify: that disk has room for a copy (a container's /tmp
        // may be a small tmpfs). Removed when dropped, whatever happens below.
        let beside = self.archive.parent().filter(|p| !p.as_os_str().is_empty());
        let work = TempDir::new(
            beside
                .unwrap_or(Path::new("."))
                .join(format!(".drill-{}", uuid::Uuid::new_v4().simple())),
        )?;
        let server_url = match &self.settings.database {
            DatabaseLocation::Postgres(url) if manifest.backend == "postgres" => Some(url.clone()),
            _ => None,
        };
        let scratch = match &server_url {
            Some(url) => Some(snapshot::create_scratch(url, "drill").await.map_err(|e| {
                BootError::Other(anyhow!(
                    "drill failed at step 2/{STEPS} (restore into a throwaway database): \
                             {e:#}\nThe role in --database-url needs the CREATEDB privilege."
                ))
            })?),
            None => None,
        };
        let result = self
            .on_copy(
                &manifest,
                &work.0,
                scratch.as_ref().map(|(_, url)| url.as_str()),
            )
            .await;
        // Always, also after a failure: the scratch database must not outlive the drill.
        if let (Some(url), Some((name, _))) = (&server_url, &scratch) {
            match snapshot::drop_scratch(url, name).await {
                Ok(()) => eprintln!("drill: dropped the scratch database {name}"),
                Err(e) => eprintln!(
                    "drill: warning: could not drop the scratch database {name} ({e:#}); drop \
                     it by hand: DROP DATABASE \"{name}\" WITH (FORCE)"
                ),
            }
        }
        drop(work);
        result
    }

    /// Steps 2 to 6, on the throwaway copy: the SQLite file in `work`, or the scratch
    /// PostgreSQL database at `scratch_url`. The server started here is killed on return.
    async fn on_copy(
        &self,
        manifest: &archive::Manifest,
        work: &Path,
        scratch_url: Option<&str>,
    ) -> Result<Summary, BootError> {
        let data_dir = work.join("data");
        let location = step(
            2,
            "restore into a throwaway database",
            "Check the free space beside the archive; for PostgreSQL, that pg_restore and psql \
             run (--pg-tools) and the role may create databases.",
            async {
                let extracted = work.join("archive");
                archive::extract(&self.archive, &extracted).map_err(refused)?;
                std::fs::create_dir_all(&data_dir).context("creating the throwaway data dir")?;
                let files = extracted.join("files");
                if files.is_dir() {
                    std::fs::rename(&files, data_dir.join("files"))
                        .context("moving the restored files into place")?;
                }
                let location = match scratch_url {
                    Some(url) => {
                        snapshot::pg_load(url, &self.tools, &extracted.join("database.pgdump"))?;
                        DatabaseLocation::Postgres(url.to_string())
                    }
                    None => {
                        let db = data_dir.join("berth.db");
                        std::fs::rename(extracted.join("database.sqlite"), &db)
                            .context("moving the restored database into place")?;
                        DatabaseLocation::Sqlite(db)
                    }
                };
                let _ = std::fs::remove_dir_all(&extracted);
                // What verify checks, before the server migrates or writes anything.
                let found = match &location {
                    DatabaseLocation::Sqlite(db) => snapshot::sqlite_describe(db).await?,
                    DatabaseLocation::Postgres(url) => snapshot::pg_describe(url).await?,
                };
                super::matches_manifest(manifest, &found).map_err(|why| {
                    anyhow!("the restored copy does not match the manifest: {why}")
                })?;
                Ok(location)
            },
        )
        .await?;

        let mut server = None;
        let base = step(
            3,
            "start Berth on the restored copy and wait for /ready",
            "Fix what the server's log lines above say (e.g. a migration that fails on this \
             data, or a model server it cannot reach) before this backup is needed.",
            async {
                let started = Server::start(&data_dir, scratch_url, &self.settings)?;
                let base = started.wait_ready(self.ready_timeout).await;
                server = Some(started);
                base
            },
        )
        .await?;
        let server = server.expect("started in step 3");

        let store = Store::open(&location).await?;
        let result = self.as_a_user(&store, &base, &server).await;
        store.close().await;
        drop(server);
        result
    }

    async fn as_a_user(
        &self,
        store: &Store,
        base: &str,
        server: &Server,
    ) -> Result<Summary, BootError> {
        let (name, password) = step(
            4,
            "create a throwaway admin account",
            "The restored users table does not take a new account; see the error.",
            async {
                let name = Username::parse(&format!(
                    "drill-{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                ))
                .map_err(|e| anyhow!("{e}"))?;
                let password = random_password()?;
                let user = crate::admin_cli::create_admin(
                    store,
                    &self.settings,
                    &name,
                    password.clone(),
                    "berth backup drill",
                )
                .await?;
                // Collections are private to their owners: the drill account is made a member
                // of each one in the throwaway copy, so that it sees what their owners see.
                share_everything_with(store, &user.id).await?;
                Ok((name, password))
            },
        )
        .await?;

        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("berth-backup-drill/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        let (session, documents) = step(
            5,
            "sign in over HTTP and list the documents",
            "Signing in or listing failed on the restored data; see the error and the server's \
             log lines.",
            async {
                let session = sign_in(&http, base, name.as_str(), &password)
                    .await
                    .map_err(|e| server.with_logs(e))?;
                let listed = list_documents(&http, base, &session)
                    .await
                    .map_err(|e| server.with_logs(e))?;
                let stored = count(store, "SELECT count(*) FROM documents").await?;
                if listed as i64 != stored {
                    return Err(anyhow!(
                        "the API lists {listed} document(s), the restored database holds {stored}"
                    )
                    .into());
                }
                Ok((session, listed))
            },
        )
        .await?;

        step(
            6,
            "search the restored documents over HTTP",
            "The archive has chunks, yet a search for their own words finds nothing: check the \
             embedding settings (--embed-url, --embed-model, as in production) and the server's \
             log lines.",
            async {
                let chunks = count(
                    store,
                    "SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.document_id \
                     WHERE d.status = 'ready'",
                )
                .await?;
                if chunks == 0 {
                    eprintln!("drill: the archive holds no searchable chunks; nothing to search");
                    return Ok(Summary {
                        documents,
                        chunks,
                        hits: 0,
                        mode: "no".into(),
                    });
                }
                let text = first_chunk_text(store).await?;
                let query = query_from(&text);
                // The query is the restored documents' own words: counted, never printed.
                eprintln!(
                    "drill: searching for {} word(s) of a restored chunk",
                    query.split_whitespace().count()
                );
                let found = search(&http, base, &session, &query)
                    .await
                    .map_err(|e| server.with_logs(e))?;
                let hits = found["results"].as_array().map_or(0, Vec::len);
                let mode = found["mode"].as_str().unwrap_or("unknown").to_string();
                if hits == 0 {
                    return Err(server
                        .with_logs(anyhow!(
                            "the search returned no hits ({mode} search) over {chunks} chunk(s)"
                        ))
                        .into());
                }
                if mode != "hybrid" && self.settings.rag.embed.is_some() {
                    eprintln!(
                        "drill: warning: the search was {mode} only: the embedding server did \
                         not answer the restored server"
                    );
                }
                Ok(Summary {
                    documents,
                    chunks,
                    hits,
                    mode,
                })
            },
        )
        .await
    }
}

/// Long and random from the OS's CSPRNG, with every character class a password policy may ask
/// for. Used once, over loopback; never printed.
fn random_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("the OS random source failed: {e}"))?;
    Ok(format!(
        "Dr1ll!{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

async fn share_everything_with(store: &Store, user_id: &str) -> anyhow::Result<()> {
    let now = crate::domain::accounts::now_ms();
    on_pool!(store, |pool| {
        sqlx::query("UPDATE collections SET shared = 1")
            .execute(pool)
            .await?;
        sqlx::query(
            "INSERT INTO collection_members (collection_id, user_id, added_at) \
             SELECT id, $1, $2 FROM collections",
        )
        .bind(user_id)
        .bind(now)
        .execute(pool)
        .await?;
    });
    Ok(())
}

async fn count(store: &Store, sql: &str) -> anyhow::Result<i64> {
    let n: i64 = on_pool!(store, |pool| sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .with_context(|| format!("counting ({sql})"))?);
    Ok(n)
}

async fn first_chunk_text(store: &Store) -> anyhow::Result<String> {
    let sql = "SELECT c.text FROM chunks c JOIN documents d ON d.id = c.document_id \
               WHERE d.status = 'ready' ORDER BY c.id LIMIT 1";
    let text: String = on_pool!(store, |pool| sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .context("reading a restored chunk")?);
    Ok(text)
}

/// A few distinctive words of `text`: the first five words of four letters or more (short words
/// are mostly stop words, which full-text search drops), else its first five words.
fn query_from(text: &str) -> String {
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let long: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| w.chars().count() >= 4 && w.chars().all(char::is_alphabetic))
        .take(5)
        .collect();
    let chosen = if long.is_empty() {
        words.into_iter().take(5).collect::<Vec<_>>()
    } else {
        long
    };
    if chosen.is_empty() {
        text.chars().take(100).collect()
    } else {
        chosen.join(" ")
    }
}

/// A signed-in browser session: its cookie and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

async fn sign_in(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<Session> {
    let resp = http
        .post(format!("{base}/api/v1/auth/sign-in"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .context("POST /api/v1/auth/sign-in")?;
    let status = resp.status();
    let cookie = resp
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{}=", crate::http::auth::SESSION_COOKIE)))
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(anyhow!("signing in answered {status}: {body}"));
    }
    Ok(Session {
        cookie: cookie.context("signing in set no session cookie")?,
        csrf: body["csrf_token"]
            .as_str()
            .context("signing in returned no CSRF token")?
            .to_string(),
    })
}

async fn get_json(
    http: &reqwest::Client,
    base: &str,
    session: &Session,
    path: &str,
) -> anyhow::Result<Value> {
    let request = http
        .get(format!("{base}/api/v1{path}"))
        .header(reqwest::header::COOKIE, &session.cookie);
    send_for_json(request, &format!("GET /api/v1{path}")).await
}

/// Sends `request` and returns its JSON body, or an error naming `what` and the status.
async fn send_for_json(request: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
    let resp = request.send().await.context(what.to_string())?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(anyhow!("{what} answered {status}: {body}"));
    }
    Ok(body)
}

/// Every document of every collection the session may read, as the web UI lists them.
async fn list_documents(
    http: &reqwest::Client,
    base: &str,
    session: &Session,
) -> anyhow::Result<usize> {
    let collections = get_json(http, base, session, "/collections").await?;
    let mut documents = 0;
    for c in collections
        .as_array()
        .context("the collections are not a list")?
    {
        let id = c["id"].as_str().context("a collection without an id")?;
        let docs = get_json(http, base, session, &format!("/collections/{id}/documents")).await?;
        documents += docs
            .as_array()
            .context("the documents are not a list")?
            .len();
    }
    Ok(documents)
}

async fn search(
    http: &reqwest::Client,
    base: &str,
    session: &Session,
    query: &str,
) -> anyhow::Result<Value> {
    let request = http
        .post(format!("{base}/api/v1/search"))
        .header(reqwest::header::COOKIE, &session.cookie)
        .header(crate::http::auth::CSRF_HEADER, &session.csrf)
        .json(&json!({ "query": query, "k": 5 }));
    send_for_json(request, "POST /api/v1/search").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_prefer_long_words() {
        assert_eq!(
            query_from("# Boats\n\nA berth is where a boat is moored in the harbour."),
            "Boats berth where boat moored"
        );
        assert_eq!(query_from("a b 12"), "a b 12");
        assert_eq!(query_from("!!"), "!!");
    }

    #[test]
    fn passwords_are_long_and_random() {
        let a = random_password().unwrap();
        assert!(a.len() > 40);
        assert_ne!(a, random_password().unwrap());
    }
}
