//! `cargo xtask migrate status|up|new NAME|check`: the schema migrations of this checkout.
//! `status` and `up` run `berth migrate` on the dev server's data; `new` writes a migration's two
//! files (one per backend); `check` proves the two folders agree and the migrations apply.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{bail, Context, Result};

use crate::util::{
    cargo, dev_data_dir, dev_server_bin,
    process::{self, exit_code},
    project_root, section, time, write_atomic,
};

const MARKER: &str = "-- berth-migration:";
/// The last version from before every migration declared its kind (all of them expand).
const LAST_UNMARKED: i64 = 6;
const BACKENDS: [&str; 2] = ["sqlite", "postgres"];
/// The black-box test that applies every migration on a scratch database of each backend and
/// compares the schemas they end with.
const SCHEMA_TEST: &str = "migrate::every_migration_applies_on_both_backends_to_the_same_schema";

#[derive(clap::Args, Debug)]
#[command(
    about = "Schema migrations: status, up, new NAME, check",
    long_about = "Schema migrations, one folder per backend (app/migrations/sqlite and \
                  app/migrations/postgres), each migration a pair of files with the same \
                  version and name. Each starts with `-- berth-migration: expand` (the previous \
                  release keeps working on the new schema: added tables, nullable columns, \
                  indexes) or `-- berth-migration: contract` (it would not: drops, renames, new \
                  constraints it would break). Deploys refuse a contract migration while the \
                  previous release still runs.\n\n\
                  status / up run `berth migrate status|up` on the dev server's data \
                  (.berth-dev/data, or --data-dir; BERTH_DATABASE_URL applies), building \
                  target/debug/berth first (BERTH_DEV_BIN: a ready binary).",
    after_help = "Exit status:\n  0  done / up to date / the check passed\n  1  failed (the \
                  message says why)\n  2  bad command line\n  3  (status, up) the database \
                  cannot be migrated by this checkout, as berth says\n  4  (up) refused: a \
                  contract migration is pending; pass --allow-contract once the previous release \
                  is stopped"
)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Every migration, its kind, and whether the dev database has it
    Status(DevArgs),
    /// Apply the pending migrations to the dev database
    Up(UpArgs),
    /// Write a new migration for both backends: app/migrations/{sqlite,postgres}/TIMESTAMP_NAME.sql
    New(NewArgs),
    /// Every migration exists for both backends with the same kind, none runs outside a
    /// transaction, and all apply on a scratch database of each backend (a PostgreSQL container)
    /// ending with the same tables and columns
    Check(CheckArgs),
}

#[derive(clap::Args, Debug)]
struct DevArgs {
    /// Data directory of the dev server [default: .berth-dev/data, as `cargo xtask dev`]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print what would be run, run nothing
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::Args, Debug)]
struct UpArgs {
    #[command(flatten)]
    dev: DevArgs,
    /// Apply contract migrations too (stop the previous release first)
    #[arg(long)]
    allow_contract: bool,
}

#[derive(clap::Args, Debug)]
struct NewArgs {
    /// What the migration does, in lower-case words joined by underscores (e.g. add_feedback)
    #[arg(value_parser = migration_name)]
    name: String,
    /// Mark it contract (it breaks the previous release) instead of expand
    #[arg(long)]
    contract: bool,
    /// Print the files it would write, write nothing
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// Only the file checks (no build, no databases)
    #[arg(long)]
    files_only: bool,
    /// Print what would be checked, check nothing
    #[arg(long)]
    dry_run: bool,
}

fn migration_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 60
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(s.to_string())
    } else {
        Err(
            "use lower-case letters, digits and underscores, starting with a letter (at most \
             60), e.g. add_feedback"
                .into(),
        )
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let root = project_root();
    match args.action {
        Action::Status(dev) => berth_migrate(&dev, &["status"]),
        Action::Up(up) => {
            let mut berth_args = vec!["up"];
            if up.allow_contract {
                berth_args.push("--allow-contract");
            }
            berth_args.extend(up.dev.dry_run.then_some("--dry-run"));
            berth_migrate(
                &DevArgs {
                    dry_run: false,
                    ..up.dev
                },
                &berth_args,
            )
        }
        Action::New(new) => {
            let version = time::compact_stamp(time::now());
            for path in new_migration(&root, &version, &new.name, new.contract, new.dry_run)? {
                let verb = if new.dry_run { "would write" } else { "wrote" };
                println!("migrate: {verb} {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Check(check) => {
            if check.dry_run {
                println!("migrate check --dry-run: would check the pairs in app/migrations/*");
                if !check.files_only {
                    println!("  then run: cargo test --locked --test it -- --exact {SCHEMA_TEST}");
                }
                return Ok(ExitCode::SUCCESS);
            }
            let migrations = check_files(&root.join("app/migrations"))?;
            println!(
                "migrate: {} migrations, each on both backends with the same kind, all in \
                 transactions",
                migrations.len()
            );
            if !check.files_only {
                apply_on_scratch_databases()?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `berth migrate ARGS --data-dir DIR` with the dev server's binary, its exit status passed on.
fn berth_migrate(dev: &DevArgs, args: &[&str]) -> Result<ExitCode> {
    let server = dev_server_bin()?;
    let data_dir = match &dev.data_dir {
        Some(dir) => std::path::absolute(dir)?,
        None => dev_data_dir(),
    };
    let mut command = server.command();
    command
        .arg("migrate")
        .args(args)
        .arg("--data-dir")
        .arg(&data_dir)
        .current_dir(project_root());
    if dev.dry_run {
        if server.build {
            println!("would run: cargo build --locked -p berth");
        }
        println!("would run: {}", crate::util::show(&command));
        return Ok(ExitCode::SUCCESS);
    }
    if server.build {
        cargo::build_server()?;
    }
    Ok(exit_code(process::status(command)?))
}

/// Writes (or with `dry_run` only names) `VERSION_NAME.sql` in each backend's folder.
fn new_migration(
    root: &Path,
    version: &str,
    name: &str,
    contract: bool,
    dry_run: bool,
) -> Result<Vec<PathBuf>> {
    let kind = if contract { "contract" } else { "expand" };
    let why = if contract {
        "-- Contract: the previous release cannot work on the schema this leaves. Deploys apply it\n\
         -- only once that release is stopped (`berth migrate up --allow-contract`).\n"
    } else {
        "-- Expand: the previous release keeps working on the schema this leaves (it runs beside\n\
         -- the new one during a deploy): add tables, nullable columns, indexes; drop nothing.\n"
    };
    let mut written = Vec::new();
    for backend in BACKENDS {
        let dir = root.join("app/migrations").join(backend);
        let path = dir.join(format!("{version}_{name}.sql"));
        if path.exists() {
            bail!("{} exists already; nothing was written", path.display());
        }
        let text = format!(
            "{MARKER} {kind}\n{why}-- {backend}'s half of {version}_{name}; the other backend's \
             file must leave the same tables and columns.\n"
        );
        if !dry_run {
            write_atomic(&path, text.as_bytes())?;
        }
        written.push(path);
    }
    Ok(written)
}

/// A migration as its files say: version → (description, kind) per backend.
#[derive(Debug, PartialEq, Eq)]
pub struct FileMigration {
    pub version: i64,
    pub name: String,
    pub kind: String,
}

/// The pairing rules `berth` relies on, checked on the files: the same versions and names in
/// both folders, the same kind, no migration outside a transaction.
pub fn check_files(migrations_dir: &Path) -> Result<Vec<FileMigration>> {
    let mut per_backend: BTreeMap<&str, BTreeMap<i64, FileMigration>> = BTreeMap::new();
    let mut problems = Vec::new();
    for backend in BACKENDS {
        let dir = migrations_dir.join(backend);
        let mut found = BTreeMap::new();
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            let Some(stem) = file.strip_suffix(".sql") else {
                continue;
            };
            let Some((version, name)) = stem
                .split_once('_')
                .and_then(|(v, n)| Some((v.parse::<i64>().ok()?, n.to_string())))
            else {
                problems.push(format!(
                    "{backend}/{file}: not named VERSION_NAME.sql (`cargo xtask migrate new NAME`)"
                ));
                continue;
            };
            let text = std::fs::read_to_string(&path)?;
            let kind = match kind_of(version, &text) {
                Ok(kind) => kind,
                Err(e) => {
                    problems.push(format!("{backend}/{file}: {e}"));
                    continue;
                }
            };
            if text.lines().any(|l| l.trim() == "-- no-transaction") {
                problems.push(format!(
                    "{backend}/{file}: `-- no-transaction`: a failure would leave it half-applied"
                ));
            }
            if let Some(other) = found.insert(
                version,
                FileMigration {
                    version,
                    name: name.clone(),
                    kind,
                },
            ) {
                problems.push(format!(
                    "{backend}: version {version} is used twice ({} and {name})",
                    other.name
                ));
            }
        }
        per_backend.insert(backend, found);
    }
    let (sqlite, postgres) = (&per_backend["sqlite"], &per_backend["postgres"]);
    for (version, m) in sqlite {
        match postgres.get(version) {
            None => problems.push(format!(
                "sqlite/{version}_{}.sql has no twin in app/migrations/postgres: write the \
                 PostgreSQL half (same version and name)",
                m.name
            )),
            Some(p) if p.name != m.name => problems.push(format!(
                "version {version} is `{}` on SQLite but `{}` on PostgreSQL",
                m.name, p.name
            )),
            Some(p) if p.kind != m.kind => problems.push(format!(
                "version {version} ({}) is {} on SQLite but {} on PostgreSQL",
                m.name, m.kind, p.kind
            )),
            Some(_) => {}
        }
    }
    for (version, p) in postgres {
        if !sqlite.contains_key(version) {
            problems.push(format!(
                "postgres/{version}_{}.sql has no twin in app/migrations/sqlite: write the SQLite \
                 half (same version and name)",
                p.name
            ));
        }
    }
    if !problems.is_empty() {
        bail!(
            "the migrations do not pair up:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(per_backend
        .remove("sqlite")
        .unwrap_or_default()
        .into_values()
        .collect())
}

/// The kind a migration's first line declares (berth's `store::migrations::Kind::of`, on text).
fn kind_of(version: i64, text: &str) -> Result<String, String> {
    let first = text.lines().next().unwrap_or("").trim();
    match first.strip_prefix(MARKER).map(str::trim) {
        Some(kind @ ("expand" | "contract")) => Ok(kind.to_string()),
        Some(other) => Err(format!(
            "`{MARKER} {other}`: the kind is expand or contract"
        )),
        None if version <= LAST_UNMARKED => Ok("expand".into()),
        None => Err(format!(
            "the first line must be `{MARKER} expand` or `{MARKER} contract`"
        )),
    }
}

/// Applies every migration on a scratch SQLite file and a scratch PostgreSQL database and
/// compares the schemas: the black-box test does it, with the tests' PostgreSQL container.
fn apply_on_scratch_databases() -> Result<()> {
    section("migrate: applying every migration on scratch SQLite and PostgreSQL databases");
    if !cargo::it_test_passes(SCHEMA_TEST, &[("BERTH_TEST_BACKEND", "sqlite")])? {
        bail!("the migrations do not apply alike on both backends (see the test's output above)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_of_migrations() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for backend in BACKENDS {
            let from = project_root().join("app/migrations").join(backend);
            let to = dir.path().join(backend);
            std::fs::create_dir_all(&to).unwrap();
            for entry in std::fs::read_dir(from).unwrap() {
                let path = entry.unwrap().path();
                std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
            }
        }
        dir
    }

    #[test]
    fn the_repository_migrations_pair_up() {
        let found = check_files(&project_root().join("app/migrations")).unwrap();
        assert!(found.len() >= 6);
    }

    #[test]
    fn a_migration_added_for_one_backend_only_fails_the_check() {
        let dir = copy_of_migrations();
        std::fs::write(
            dir.path().join("sqlite/20990101000000_add_x.sql"),
            "-- berth-migration: expand\nCREATE TABLE x (a INTEGER);\n",
        )
        .unwrap();
        let err = check_files(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("sqlite/20990101000000_add_x.sql has no twin"),
            "{err}"
        );
    }

    #[test]
    fn new_writes_a_pair_that_passes_the_check_and_kinds_must_agree() {
        let dir = copy_of_migrations();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("app")).unwrap();
        std::fs::rename(dir.path().join("sqlite"), root.join("app/sqlite")).unwrap();
        std::fs::create_dir_all(root.join("app/migrations")).unwrap();
        std::fs::rename(root.join("app/sqlite"), root.join("app/migrations/sqlite")).unwrap();
        std::fs::rename(
            dir.path().join("postgres"),
            root.join("app/migrations/postgres"),
        )
        .unwrap();
        let written = new_migration(&root, "20990101000000", "add_x", false, false).unwrap();
        assert_eq!(written.len(), 2);
        let found = check_files(&root.join("app/migrations")).unwrap();
        let last = found.last().unwrap();
        assert_eq!(
            (last.version, last.name.as_str(), last.kind.as_str()),
            (20990101000000, "add_x", "expand")
        );
        assert!(new_migration(&root, "20990101000000", "add_x", false, false).is_err());
        std::fs::write(
            &written[1],
            "-- berth-migration: contract\nDROP TABLE users;\n",
        )
        .unwrap();
        let err = check_files(&root.join("app/migrations"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is expand on SQLite but contract on PostgreSQL"),
            "{err}"
        );
    }

    #[test]
    fn a_new_migration_without_its_kind_fails_the_check() {
        let dir = copy_of_migrations();
        for backend in BACKENDS {
            std::fs::write(
                dir.path().join(backend).join("20990101000000_add_x.sql"),
                "CREATE TABLE x (a INTEGER);\n",
            )
            .unwrap();
        }
        let err = check_files(dir.path()).unwrap_err().to_string();
        assert!(err.contains("the first line must be"), "{err}");
    }

    #[test]
    fn names_are_lower_case_words() {
        assert!(migration_name("add_feedback").is_ok());
        for bad in ["", "Add", "add-feedback", "1x", "a b"] {
            assert!(migration_name(bad).is_err(), "{bad:?}");
        }
    }
}
