//! `berth backup create|list|verify` and `berth restore`: backups an operator can trust, on
//! either backend, run by the binary that knows the schema (inside a container too).
//!
//! An archive holds a consistent database snapshot and the uploaded files (`DATA_DIR/files`),
//! with a manifest of what is inside; see [`archive`]. Secrets are never in it: they have a
//! sealed file of their own ([`secrets`]). [`drill`] proves an archive usable end to end.

pub mod archive;
pub mod drill;
pub mod secrets;
pub mod snapshot;

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};

use crate::config::{DatabaseLocation, ForData, Given, Settings};
use crate::error::BootError;
use crate::store::{PgStore, SqliteStore};
use archive::{Manifest, Member, Refused};
use snapshot::{Description, PgTools};

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Take a backup: a consistent database snapshot and the uploaded files in one archive
    /// (DIR/berth-STAGE-TIMESTAMP.tar.gz), written atomically, then keep the newest --keep.
    Create(CreateArgs),
    /// List the archives in DIR, oldest first, with what their manifests say.
    List(ListArgs),
    /// Check an archive's checksums, restore it into a scratch database and compare the row
    /// counts with its manifest; marks it verified (rotation never deletes the newest verified).
    Verify(VerifyArgs),
    /// Prove an archive usable: restore it into a throwaway database, start Berth on it, sign in
    /// as a throwaway admin over HTTP, list the documents and search them; then remove it all.
    /// Nothing of the live setup is touched. The newest archive when ARCHIVE is not given.
    /// Exit status 0 only when every step passed; otherwise the failed step and what to do.
    Drill(drill::DrillArgs),
    /// Secrets (database password, settings file, TLS keys) in a file of their own, encrypted
    /// with a passphrase (age, scrypt): they are never inside data archives.
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
}

/// Where backup archives are kept: one flag (and variable) for every backup command.
#[derive(Debug, Args)]
pub struct BackupDir {
    /// Directory the archives (and sealed secrets) are kept in; created when something is written.
    #[arg(
        id = "backup_dir",
        long = "dir",
        env = "BERTH_BACKUP_DIR",
        default_value = "backups",
        value_name = "DIR"
    )]
    pub path: PathBuf,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub dir: BackupDir,
    /// Name in the archive's file name (e.g. dev, prod): rotation counts each stage apart.
    #[arg(long, default_value = "default", value_name = "NAME")]
    pub stage: String,
    /// How many archives of this stage to keep (the newest verified one is always kept too).
    #[arg(long, env = "BERTH_BACKUP_KEEP", default_value_t = 7, value_name = "N")]
    pub keep: usize,
    /// Also copy the archive to this directory (an off-site mount; sync it to object storage
    /// with your tool of choice).
    #[arg(long, env = "BERTH_BACKUP_COPY_TO", value_name = "DIR")]
    pub copy_to: Option<PathBuf>,
    #[command(flatten)]
    pub tools: ToolArgs,
    #[command(flatten)]
    pub settings: Given<ForData>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub dir: BackupDir,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The archive to verify.
    pub archive: PathBuf,
    /// Only check the checksums, without restoring into a scratch database.
    #[arg(long)]
    pub checksums_only: bool,
    #[command(flatten)]
    pub tools: ToolArgs,
    /// For a PostgreSQL archive: the server to create the scratch database on.
    #[command(flatten)]
    pub settings: Given<ForData>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The archive to restore (see `berth backup list`).
    pub archive: PathBuf,
    /// Replace the data without asking.
    #[arg(long)]
    pub yes: bool,
    /// Check the archive and say what would happen; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub dir: BackupDir,
    /// Do not take a safety backup of the current data first.
    #[arg(long)]
    pub no_safety_backup: bool,
    #[command(flatten)]
    pub tools: ToolArgs,
    #[command(flatten)]
    pub settings: Given<ForData>,
}

#[derive(Debug, Args)]
pub struct ToolArgs {
    /// PostgreSQL only: a command prefix to run pg_dump, pg_restore and psql with, e.g.
    /// `docker run --rm -i --network host -e PGPASSWORD pgvector/pgvector:pg17`. Unset: from PATH.
    #[arg(long, env = "BERTH_PG_TOOLS", value_name = "COMMAND")]
    pub pg_tools: Option<String>,
}

impl ToolArgs {
    fn tools(&self) -> PgTools {
        PgTools {
            prefix: self.pg_tools.clone(),
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `berth backup …`.
pub fn run_backup(command: &BackupCommand) -> Result<(), BootError> {
    match command {
        BackupCommand::Create(args) => {
            let settings = Settings::load(&args.settings)?;
            let made = runtime()?.block_on(create(
                &settings,
                &args.tools.tools(),
                &args.dir.path,
                &args.stage,
            ))?;
            if let Some(copy_to) = &args.copy_to {
                copy_off_site(&made, copy_to)?;
            }
            for deleted in archive::rotate(&args.dir.path, &args.stage, args.keep)
                .map_err(|e| BootError::Config(e.to_string()))?
            {
                eprintln!("rotation: deleted {}", deleted.display());
            }
            println!("{}", made.display());
            Ok(())
        }
        BackupCommand::List(args) => list(&args.dir.path),
        BackupCommand::Drill(args) => drill::run(args),
        BackupCommand::Secrets(command) => secrets::run(command),
        BackupCommand::Verify(args) => {
            let manifest = archive::verify(&args.archive).map_err(refused)?;
            eprintln!(
                "checksums: {} member(s) match the manifest",
                manifest.members.len()
            );
            refuse_newer(&args.archive, &manifest)?;
            if args.checksums_only {
                return Ok(());
            }
            let settings = Settings::load(&args.settings)?;
            runtime()?.block_on(verify_by_restoring(
                &args.archive,
                &manifest,
                &settings,
                &args.tools.tools(),
            ))?;
            std::fs::write(
                archive::verified_marker(&args.archive),
                format!("{}\n", chrono::Utc::now().to_rfc3339()),
            )
            .context("writing the verified marker")?;
            println!("{}: verified", args.archive.display());
            Ok(())
        }
    }
}

fn refused(r: Refused) -> BootError {
    BootError::Other(anyhow::anyhow!(r))
}

fn backend_of(location: &DatabaseLocation) -> &'static str {
    match location {
        DatabaseLocation::Sqlite(_) => "sqlite",
        DatabaseLocation::Postgres(_) => "postgres",
    }
}

fn valid_stage(stage: &str) -> bool {
    !stage.is_empty()
        && stage
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Takes a backup into `dir`; returns the archive's path.
pub async fn create(
    settings: &Settings,
    tools: &PgTools,
    dir: &Path,
    stage: &str,
) -> Result<PathBuf, BootError> {
    if !valid_stage(stage) {
        return Err(BootError::Config(format!(
            "invalid --stage {stage:?}: use lower-case letters, digits and dashes"
        )));
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the backup directory {}", dir.display()))?;
    let now = chrono::Utc::now();
    let stamp = now.format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let dest = dir.join(format!(
        "{}{stage}-{stamp}{}",
        archive::PREFIX,
        archive::SUFFIX
    ));
    let staging = TempDir::new(dir.join(format!(".staging-{stamp}-{}", std::process::id())))?;
    let files_dir = settings.data_dir.join("files");
    let staged_files = staging.0.join("files");
    std::fs::create_dir_all(&staged_files).context("creating the staging directory")?;

    // Files first, then the database: a document deleted meanwhile still has its file here, and
    // those added meanwhile are linked after the snapshot, below.
    eprintln!(
        "backup: linking the uploaded files in {}",
        files_dir.display()
    );
    for name in file_names(&files_dir)? {
        link_or_copy(&files_dir.join(&name), &staged_files.join(&name))
            .with_context(|| format!("linking the uploaded file {name}"))?;
    }
    eprintln!(
        "backup: taking a {} snapshot",
        backend_of(&settings.database)
    );
    let (db_member, description) = match &settings.database {
        DatabaseLocation::Sqlite(path) => {
            let out = staging.0.join("database.sqlite");
            (
                "database.sqlite",
                snapshot::sqlite_snapshot(path, &out).await?,
            )
        }
        DatabaseLocation::Postgres(url) => {
            let out = staging.0.join("database.pgdump");
            (
                "database.pgdump",
                snapshot::pg_snapshot(url, tools, &out).await?,
            )
        }
    };
    let mut missing_files = Vec::new();
    let wanted: std::collections::BTreeSet<&String> = description.document_ids.iter().collect();
    for id in &description.document_ids {
        let staged = staged_files.join(id);
        if !staged.exists() && link_or_copy(&files_dir.join(id), &staged).is_err() {
            missing_files.push(id.clone());
        }
    }
    for name in file_names(&staged_files)? {
        if !wanted.contains(&name) {
            std::fs::remove_file(staged_files.join(&name))
                .context("cleaning the staging directory")?;
        }
    }
    if !missing_files.is_empty() {
        eprintln!(
            "backup: warning: {} document(s) had no uploaded file (deleted during the backup?)",
            missing_files.len()
        );
    }

    eprintln!("backup: computing checksums");
    let mut paths = vec![db_member.to_string()];
    paths.extend(
        file_names(&staged_files)?
            .into_iter()
            .map(|n| format!("files/{n}")),
    );
    let mut members = Vec::with_capacity(paths.len());
    for path in paths {
        let (size, sha256) = archive::sha256_file(&staging.0.join(&path))
            .with_context(|| format!("reading the staged {path}"))?;
        members.push(Member { path, size, sha256 });
    }
    let manifest = Manifest {
        format: archive::FORMAT.into(),
        format_version: archive::FORMAT_VERSION,
        berth_version: env!("CARGO_PKG_VERSION").into(),
        backend: backend_of(&settings.database).into(),
        stage: stage.into(),
        created_at: now.to_rfc3339(),
        migration_level: description.migration_level,
        embeddings: description.embeddings,
        row_counts: description.row_counts,
        missing_files,
        members,
    };
    eprintln!("backup: writing {}", dest.display());
    archive::write(&dest, &manifest, &staging.0)?;
    Ok(dest)
}

/// Removes the staging directory however the backup ends (short of SIGKILL; then the next
/// backup's directory listing ignores it, and it is plainly named `.staging-…`).
struct TempDir(PathBuf);

impl TempDir {
    fn new(path: PathBuf) -> anyhow::Result<TempDir> {
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn file_names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => bail!("reading {}: {e}", dir.display()),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// A hard link freezes the file as it is now at no cost; across file systems, a copy.
fn link_or_copy(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::hard_link(from, to).or_else(|_| std::fs::copy(from, to).map(|_| ()))
}

fn copy_off_site(archive: &Path, to: &Path) -> Result<(), BootError> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let name = archive.file_name().context("archive name")?;
    let dest = to.join(name);
    archive::write_atomically(&dest, |file, _| {
        std::io::copy(&mut std::fs::File::open(archive)?, file)?;
        Ok(())
    })
    .with_context(|| format!("copying the archive to {}", to.display()))?;
    eprintln!("backup: copied to {}", dest.display());
    Ok(())
}

fn list(dir: &Path) -> Result<(), BootError> {
    let archives = archive::list(dir, None)?;
    if archives.is_empty() {
        println!("no archives in {}", dir.display());
        return Ok(());
    }
    for path in archives {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        match archive::read_manifest(&path) {
            Ok(m) => println!(
                "{name}  {:.1} MiB  {} level {}  {} file(s)  berth {}{}",
                size as f64 / (1 << 20) as f64,
                m.backend,
                m.migration_level,
                m.members.len().saturating_sub(1),
                m.berth_version,
                if archive::verified_marker(&path).exists() {
                    "  verified"
                } else {
                    ""
                }
            ),
            Err(e) => println!("{name}  UNREADABLE: {e}"),
        }
    }
    Ok(())
}

/// What a restore of `manifest` compares to: the snapshot's description minus document ids.
fn matches_manifest(manifest: &Manifest, found: &Description) -> Result<(), String> {
    if found.migration_level != manifest.migration_level {
        return Err(format!(
            "migration level {} instead of {}",
            found.migration_level, manifest.migration_level
        ));
    }
    if found.row_counts != manifest.row_counts {
        let diff: Vec<String> = manifest
            .row_counts
            .iter()
            .filter(|(t, n)| found.row_counts.get(*t) != Some(n))
            .map(|(t, n)| format!("{t}: {:?} instead of {n}", found.row_counts.get(t)))
            .collect();
        return Err(format!("row counts differ ({})", diff.join(", ")));
    }
    if found.embeddings != manifest.embeddings {
        return Err("embedding models or counts differ".into());
    }
    Ok(())
}

async fn verify_by_restoring(
    path: &Path,
    manifest: &Manifest,
    settings: &Settings,
    tools: &PgTools,
) -> Result<(), BootError> {
    // Beside the archive, not in /tmp: the archive's directory has room for it (a container's
    // /tmp is a small tmpfs).
    let beside = path.parent().filter(|p| !p.as_os_str().is_empty());
    let scratch = TempDir::new(
        beside
            .unwrap_or(Path::new("."))
            .join(format!(".verify-{}", uuid::Uuid::new_v4().simple())),
    )?;
    archive::extract(path, &scratch.0).map_err(refused)?;
    let found = match manifest.backend.as_str() {
        "sqlite" => snapshot::sqlite_describe(&scratch.0.join("database.sqlite")).await?,
        "postgres" => {
            let DatabaseLocation::Postgres(url) = &settings.database else {
                return Err(BootError::Config(
                    "a PostgreSQL archive is verified on a PostgreSQL server: give \
                     --database-url postgres://… (a scratch database is created and dropped \
                     there)"
                        .into(),
                ));
            };
            let (name, scratch_url) = snapshot::create_scratch(url, "verify").await?;
            eprintln!("verify: restoring into the scratch database {name}");
            let loaded = snapshot::pg_load(&scratch_url, tools, &scratch.0.join("database.pgdump"));
            let described = match loaded {
                Ok(()) => snapshot::pg_describe(&scratch_url).await,
                Err(e) => Err(e),
            };
            let _ = snapshot::drop_scratch(url, &name).await;
            described?
        }
        other => return Err(anyhow::anyhow!("unknown backend {other:?} in the manifest").into()),
    };
    matches_manifest(manifest, &found).map_err(|why| {
        anyhow::anyhow!(
            "{}: the restored copy does not match the manifest: {why}",
            path.display()
        )
    })?;
    eprintln!(
        "verify: restored copy matches the manifest ({} tables, migration level {})",
        found.row_counts.len(),
        found.migration_level
    );
    Ok(())
}

/// `berth restore ARCHIVE`.
pub fn run_restore(args: &RestoreArgs) -> Result<(), BootError> {
    let settings = Settings::load(&args.settings)?;
    let tools = args.tools.tools();
    // Everything about the archive is checked before anything else happens.
    eprintln!("restore: checking {}", args.archive.display());
    let manifest = archive::verify(&args.archive).map_err(refused)?;
    check_compatible(&args.archive, &manifest, &settings)?;
    let target = match &settings.database {
        DatabaseLocation::Sqlite(path) => format!("the SQLite database {}", path.display()),
        DatabaseLocation::Postgres(_) => "the PostgreSQL database (--database-url)".into(),
    };
    let files_dir = settings.data_dir.join("files");
    let known = known_level(&settings.database);
    let plan = format!(
        "restore {} (taken {}, Berth {}, migration level {}{}, {} uploaded file(s)) over {target} \
         and {}{}",
        args.archive.display(),
        manifest.created_at,
        manifest.berth_version,
        manifest.migration_level,
        if manifest.migration_level < known {
            format!(", then migrate it forward to {known}")
        } else {
            String::new()
        },
        manifest.members.len() - 1,
        files_dir.display(),
        if args.no_safety_backup {
            String::new()
        } else {
            format!(
                ", after a safety backup of the current data into {}",
                args.dir.path.display()
            )
        }
    );
    if args.dry_run {
        println!("dry run: would {plan}");
        return Ok(());
    }
    if !args.yes {
        confirm(&plan)?;
    }
    runtime()?.block_on(async {
        if !args.no_safety_backup && live_data_exists(&settings).await {
            eprintln!("restore: taking a safety backup of the current data");
            let safety = create(&settings, &tools, &args.dir.path, "pre-restore").await?;
            eprintln!("restore: safety backup {}", safety.display());
            archive::rotate(&args.dir.path, "pre-restore", 7)?;
        }
        restore(&args.archive, &settings, &tools).await
    })?;
    println!(
        "restored {}; start Berth again to serve it",
        args.archive.display()
    );
    Ok(())
}

fn known_level(location: &DatabaseLocation) -> i64 {
    known_level_of(backend_of(location))
}

/// The newest schema migration this Berth has for `backend`.
fn known_level_of(backend: &str) -> i64 {
    let migrator = match backend {
        "postgres" => &crate::store::migrations::POSTGRES,
        _ => &crate::store::migrations::SQLITE,
    };
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

/// An archive whose schema is newer than this Berth's cannot be restored or verified by it.
fn refuse_newer(path: &Path, manifest: &Manifest) -> Result<(), BootError> {
    let known = known_level_of(&manifest.backend);
    if manifest.migration_level > known {
        return Err(refused(Refused::Newer(
            path.display().to_string(),
            format!(
                "schema migration level {}, Berth {} knows up to {known}; archive from Berth {}",
                manifest.migration_level,
                env!("CARGO_PKG_VERSION"),
                manifest.berth_version
            ),
        )));
    }
    Ok(())
}

fn check_compatible(
    path: &Path,
    manifest: &Manifest,
    settings: &Settings,
) -> Result<(), BootError> {
    let backend = backend_of(&settings.database);
    if manifest.backend != backend {
        return Err(BootError::Config(format!(
            "{} holds a {} database, but this Berth is configured for {backend}; restore it \
             into a {} setup (--database-url). Nothing was changed.",
            path.display(),
            manifest.backend,
            manifest.backend
        )));
    }
    refuse_newer(path, manifest)
}

fn confirm(plan: &str) -> Result<(), BootError> {
    if !std::io::stdin().is_terminal() {
        return Err(BootError::Config(format!(
            "this would {plan}. Pass --yes to do it without a terminal to confirm on."
        )));
    }
    eprintln!("This will {plan}.\nThe current data will be replaced. Type `yes` to go on:");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    if answer.trim() != "yes" {
        return Err(BootError::Config("not confirmed; nothing changed".into()));
    }
    Ok(())
}

async fn live_data_exists(settings: &Settings) -> bool {
    match &settings.database {
        DatabaseLocation::Sqlite(path) => path.exists(),
        // A database without Berth's schema (a new installation restoring its first backup)
        // holds nothing to keep. One that cannot be read is assumed to hold data: the safety
        // backup then says why it cannot be taken.
        DatabaseLocation::Postgres(_) => {
            let store = crate::store::Store::connect_waiting(
                &settings.database,
                settings.database_connect_timeout,
            )
            .await;
            let Ok(store) = store else { return true };
            let status = store.migration_status().await;
            store.close().await;
            status.is_ok_and(|s| {
                !s.unknown.is_empty() || s.migrations.iter().any(|(_, at)| at.is_some())
            })
        }
    }
}

async fn restore(path: &Path, settings: &Settings, tools: &PgTools) -> Result<(), BootError> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating {}", settings.data_dir.display()))?;
    // Extracted beside the live data, so the final moves are renames on one file system.
    let staging = TempDir::new(
        settings
            .data_dir
            .join(format!(".restore-{}", uuid::Uuid::new_v4().simple())),
    )?;
    eprintln!("restore: extracting");
    archive::extract(path, &staging.0).map_err(refused)?;
    std::fs::create_dir_all(staging.0.join("files")).context("creating the staging directory")?;
    match &settings.database {
        DatabaseLocation::Sqlite(live) => {
            let restored = staging.0.join("database.sqlite");
            // Migrating the copy forward before it replaces anything: a failure leaves the
            // live database as it was.
            let store = SqliteStore::open(&restored).await?;
            store.close().await;
            quiesce_sqlite(live).await?;
            eprintln!("restore: replacing {}", live.display());
            std::fs::rename(&restored, live)
                .with_context(|| format!("moving the restored database to {}", live.display()))?;
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", live.display()));
            }
            if let Some(dir) = live.parent() {
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .context("syncing the data directory")?;
            }
        }
        DatabaseLocation::Postgres(url) => {
            eprintln!("restore: loading the dump in one transaction");
            snapshot::pg_load(url, tools, &staging.0.join("database.pgdump"))?;
            eprintln!("restore: applying newer migrations, if any");
            let store = PgStore::open(url, settings.database_connect_timeout).await?;
            store.close().await;
        }
    }
    let files_dir = settings.data_dir.join("files");
    let old = settings
        .data_dir
        .join(format!(".files-before-restore-{}", std::process::id()));
    if files_dir.exists() {
        std::fs::rename(&files_dir, &old).context("moving the old files directory aside")?;
    }
    std::fs::rename(staging.0.join("files"), &files_dir)
        .context("moving the restored files into place")?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Empties the live database's write-ahead log into the file, so that nothing of the old
/// database lingers beside the new one; refuses when another process holds the database.
async fn quiesce_sqlite(live: &Path) -> Result<(), BootError> {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Connection};
    if !live.exists() {
        return Ok(());
    }
    let mut conn = SqliteConnectOptions::new()
        .filename(live)
        .connect()
        .await
        .with_context(|| format!("opening {}", live.display()))?;
    let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(&mut conn)
        .await
        .context("checkpointing the live database")?;
    conn.close().await.ok();
    if busy != 0 {
        return Err(BootError::Config(format!(
            "{} is in use (is Berth running?); stop it and run the restore again. Nothing was \
             replaced.",
            live.display()
        )));
    }
    Ok(())
}
