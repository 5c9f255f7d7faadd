//! `berth migrate status|up|check`: schema migrations as their own step, for installations that
//! start the server with `--no-migrate` (a Kubernetes init container, the SSH deploy) and for
//! operators who want to see what an upgrade will do before it does it.

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::config::{ForData, Given, Settings};
use crate::error::BootError;
use crate::store::migrations::{Kind, Status};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Every migration this Berth carries, its kind (expand: the previous release keeps working;
    /// contract: it would not) and whether the database has it. Exit 0.
    Status(StatusArgs),
    /// The migrations this Berth carries and their kinds, as JSON: [{version, description,
    /// kind}], PostgreSQL's (SQLite's are the same versions and kinds). Needs no database: a deploy
    /// asks the new release's image what it would apply.
    List,
    /// Apply the pending migrations, each in its own transaction. A pending contract migration is
    /// refused (exit 4, nothing applied) unless --allow-contract: the previous release must be
    /// stopped first.
    Up(UpArgs),
    /// Exit 0 if the database is exactly at this Berth's schema; 3 with the reason if a migration
    /// is pending, edited after it was applied, failed, or unknown (a newer Berth's).
    Check(StatusArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON (for scripts): {"database", "backend", "migrations": [{version, description,
    /// kind, applied_at}], "pending", "unknown", "modified", "failed"}.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub settings: Given<ForData>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Apply contract migrations too. Only once every instance of the previous release is
    /// stopped: they change the schema in ways it cannot work with.
    #[arg(long)]
    pub allow_contract: bool,
    /// Say what would be applied (and whether it would be refused), change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub settings: Given<ForData>,
}

pub fn run(command: &MigrateCommand) -> Result<(), BootError> {
    let given = match command {
        MigrateCommand::Status(a) | MigrateCommand::Check(a) => &a.settings,
        MigrateCommand::Up(a) => &a.settings,
        MigrateCommand::List => {
            let known = crate::store::migrations::known(&crate::store::migrations::POSTGRES);
            println!("{}", serde_json::to_string(&known).context("encoding")?);
            return Ok(());
        }
    };
    let settings = Settings::load(given)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let store =
            Store::connect_waiting(&settings.database, settings.database_connect_timeout).await?;
        let result = match command {
            MigrateCommand::Status(a) => status(&store, a.json).await,
            MigrateCommand::Check(a) => check(&store, a.json).await,
            MigrateCommand::Up(a) => up(&store, a).await,
            MigrateCommand::List => unreachable!("answered above, without a database"),
        };
        store.close().await;
        result
    })
}

async fn status(store: &Store, json: bool) -> Result<(), BootError> {
    let status = store.migration_status().await?;
    print(store, &status, json);
    Ok(())
}

async fn check(store: &Store, json: bool) -> Result<(), BootError> {
    let status = store.migration_status().await?;
    print(store, &status, json);
    if let Some(problem) = status.problem(&store.describe()) {
        return Err(BootError::Database(problem));
    }
    let pending: Vec<String> = status.pending().map(|k| k.version.to_string()).collect();
    if pending.is_empty() {
        return Ok(());
    }
    Err(BootError::Database(format!(
        "the database at {} lacks migration(s) {}: run `berth migrate up`",
        store.describe(),
        pending.join(", ")
    )))
}

async fn up(store: &Store, args: &UpArgs) -> Result<(), BootError> {
    if args.dry_run {
        let status = store.migration_status().await?;
        if let Some(problem) = status.problem(&store.describe()) {
            return Err(BootError::Database(problem));
        }
        let pending: Vec<_> = status.pending().collect();
        if pending.is_empty() {
            println!("migrate: {} is up to date; nothing to do", store.describe());
        }
        for k in &pending {
            println!(
                "migrate: would apply {} {} ({})",
                k.version,
                k.description,
                kind(k.kind)
            );
        }
        status.refuse_contract(args.allow_contract)?;
        println!("migrate: dry run, nothing changed");
        return Ok(());
    }
    let started = std::time::Instant::now();
    let applied = store.migrate_up(args.allow_contract).await?;
    if applied.is_empty() {
        println!("migrate: {} is up to date; nothing to do", store.describe());
    }
    for k in &applied {
        println!(
            "migrate: applied {} {} ({})",
            k.version,
            k.description,
            kind(k.kind)
        );
    }
    if !applied.is_empty() {
        println!(
            "migrate: {} migration(s) applied to {} in {:.1} s",
            applied.len(),
            store.describe(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn kind(kind: Kind) -> &'static str {
    match kind {
        Kind::Expand => "expand",
        Kind::Contract => "contract",
    }
}

fn print(store: &Store, status: &Status, json: bool) {
    if json {
        let migrations: Vec<_> = status
            .migrations
            .iter()
            .map(|(k, at)| {
                serde_json::json!({
                    "version": k.version, "description": k.description,
                    "kind": k.kind, "applied_at": at,
                })
            })
            .collect();
        let pending: Vec<i64> = status.pending().map(|k| k.version).collect();
        let doc = serde_json::json!({
            "database": store.describe(),
            "backend": store.backend(),
            "migrations": migrations,
            "pending": pending,
            "unknown": status.unknown,
            "modified": status.modified,
            "failed": status.failed,
        });
        println!("{doc:#}");
        return;
    }
    println!("{} ({})", store.describe(), store.backend());
    for (k, at) in &status.migrations {
        let state = match at {
            Some(secs) => chrono::DateTime::from_timestamp(*secs, 0).map_or_else(
                || "applied".into(),
                |t| format!("applied {}", t.format("%F %T UTC")),
            ),
            None => "PENDING".into(),
        };
        println!(
            "  {:>14}  {:<8}  {:<28}  {state}",
            k.version,
            kind(k.kind),
            k.description
        );
    }
    for v in &status.unknown {
        println!("  {v:>14}  ?         (not in this Berth: a newer Berth's)");
    }
    let pending = status.pending().count();
    println!(
        "{} migration(s), {pending} pending",
        status.migrations.len()
    );
}
