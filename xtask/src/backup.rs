//! `cargo xtask backup [list|verify]` and `cargo xtask restore`: `berth backup …` and
//! `berth restore …` run where the data is. The berth binary does the work (it knows the
//! schema); this task only finds the binary, the data and the archives.
//!
//! - `--stage prod|dev`: the compose stack. The stack's `backup` service (profile `backup`: the
//!   Berth binary in the PostgreSQL image, so pg_dump matches the server) runs the command with
//!   the stack's secrets, network and data volume; archives land in BERTH_BACKUP_DIR (default
//!   `backups/` in the repository).
//! - `--stage local`: the SQLite data of `cargo xtask dev` (.berth-dev/data or --data-dir), with
//!   this checkout's debug build.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

use crate::docker;
use crate::lifecycle::{run_status, Ctx, StageArgs};
use crate::util::{dev_data_dir, dev_server_bin, project_root, section, show};

const AFTER_HELP: &str = "Examples:\n  \
    cargo xtask backup                         # the prod stack, into backups/\n  \
    cargo xtask backup --stage local           # the SQLite data of `cargo xtask dev`\n  \
    cargo xtask backup list\n  \
    cargo xtask backup verify backups/berth-prod-20261201T020000.000Z.tar.gz\n  \
    cargo xtask restore backups/berth-prod-20261201T020000.000Z.tar.gz\n\n\
    Exit status: 0 done; 1 failed or archive refused; 2 bad command line or not confirmed; \
    3 database error.";

#[derive(clap::Args, Debug)]
#[command(
    about = "Back up the databases and uploaded files; list and verify the archives",
    long_about = "Take a backup: a consistent database snapshot (PostgreSQL: pg_dump from one \
                  snapshot, run in the PostgreSQL image; SQLite: VACUUM INTO) and the uploaded \
                  files, in one archive (berth-STAGE-UTCTIME.tar.gz) with a manifest: Berth \
                  version, migration level, embedding models, row counts, SHA-256 of every \
                  member. Written atomically: an interrupted backup leaves no archive. Then the \
                  newest --keep (7) are kept, and the newest verified one.\n\n\
                  `list` shows the archives; `verify ARCHIVE` restores one into a scratch \
                  database and compares it with its manifest. Secrets are never in an archive \
                  (back up the secrets directory on its own).",
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    create: CreateArgs,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Take a backup (what `cargo xtask backup` alone does)
    Create(CreateArgs),
    /// List the archives, oldest first
    List(Where),
    /// Check an archive's checksums, restore it into a scratch database, compare with its manifest
    Verify(VerifyArgs),
}

#[derive(clap::Args, Debug)]
struct CreateArgs {
    #[command(flatten)]
    at: Where,
    /// Archives of this stage to keep
    #[arg(long, default_value_t = 7, value_name = "N")]
    keep: usize,
    /// Also copy the archive into this directory (an off-site mount)
    #[arg(long, value_name = "DIR")]
    copy_to: Option<PathBuf>,
    /// Print what would be run, change nothing
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::Args, Debug)]
struct VerifyArgs {
    #[command(flatten)]
    at: Where,
    /// The archive (in the backup directory)
    archive: PathBuf,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Where {
    /// prod or dev: the compose stack of that stage; local: the SQLite data of `cargo xtask dev`
    #[arg(long, default_value = "prod", value_name = "STAGE")]
    stage: String,
    /// Compose project name [default: the stage's]
    #[arg(long, short = 'p', value_name = "NAME")]
    project_name: Option<String>,
    /// Data directory for --stage local [default: .berth-dev/data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Backup directory for --stage local [default: backups/ in the repository; for the stack,
    /// BERTH_BACKUP_DIR]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
#[command(
    about = "Restore a backup archive over the current data (checked first, safety backup taken)",
    long_about = "Restore ARCHIVE: its checksums and compatibility are checked before anything \
                  changes (a corrupt, truncated, foreign or newer-Berth archive is refused); a \
                  safety backup of the current data is taken; it asks before replacing (unless \
                  --yes); the database is replaced in one transaction and migrated forward if \
                  the archive is older. For the stack, Berth is stopped meanwhile and started \
                  again afterwards.",
    after_help = AFTER_HELP
)]
pub struct RestoreArgs {
    #[command(flatten)]
    at: Where,
    /// The archive to restore
    archive: PathBuf,
    /// Do not ask before replacing the data
    #[arg(long)]
    yes: bool,
    /// Check the archive and say what would happen; change nothing
    #[arg(long)]
    dry_run: bool,
}

/// How to run `berth ARGS…` next to the data of a stage.
enum Runner {
    Local {
        bin: PathBuf,
        build: bool,
        data_dir: PathBuf,
        dir: PathBuf,
    },
    Stack {
        ctx: Box<Ctx>,
        compose: docker::Compose,
        /// The host directory mounted at /backups in the backup service.
        host_dir: PathBuf,
        stage: String,
    },
}

const IN_CONTAINER_DIR: &str = "/backups";

impl Runner {
    fn new(at: &Where) -> Result<Runner> {
        if at.stage == "local" {
            let server = dev_server_bin()?;
            return Ok(Runner::Local {
                bin: server.path,
                build: server.build,
                data_dir: match &at.data_dir {
                    Some(d) => std::path::absolute(d)?,
                    None => dev_data_dir(),
                },
                dir: match &at.dir {
                    Some(d) => std::path::absolute(d)?,
                    None => project_root().join("backups"),
                },
            });
        }
        if at.data_dir.is_some() || at.dir.is_some() {
            bail!(
                "--data-dir and --dir apply to --stage local; the stack's backups go to \
                 BERTH_BACKUP_DIR (.env)"
            );
        }
        let ctx = Ctx::load(&StageArgs {
            stage: at.stage.clone(),
            project_name: at.project_name.clone(),
        })?;
        let compose = ctx.compose().with_profiles(["backup".to_string()]);
        let compose_dir = ctx.root.join(&ctx.stage.file);
        let compose_dir = compose_dir.parent().unwrap_or(&ctx.root).to_path_buf();
        let host_dir = docker::normalize(
            &compose_dir.join(
                ctx.vars
                    .get("BERTH_BACKUP_DIR")
                    .unwrap_or("../backups".into()),
            ),
        );
        Ok(Runner::Stack {
            stage: ctx.stage.name.clone(),
            ctx: Box::new(ctx),
            compose,
            host_dir,
        })
    }

    fn stage_name(&self) -> String {
        match self {
            Runner::Local { .. } => "local".into(),
            Runner::Stack { stage, .. } => stage.clone(),
        }
    }

    /// The backup directory as the berth command sees it.
    fn dir_arg(&self) -> String {
        match self {
            Runner::Local { dir, .. } => dir.display().to_string(),
            Runner::Stack { .. } => IN_CONTAINER_DIR.into(),
        }
    }

    fn host_dir(&self) -> &Path {
        match self {
            Runner::Local { dir, .. } => dir,
            Runner::Stack { host_dir, .. } => host_dir,
        }
    }

    /// An archive path given on our command line, as the berth command sees it.
    fn archive_arg(&self, archive: &Path) -> Result<String> {
        match self {
            Runner::Local { .. } => Ok(std::path::absolute(archive)?.display().to_string()),
            Runner::Stack { host_dir, .. } => {
                let name = archive
                    .file_name()
                    .context("the archive has no file name")?;
                let inside = host_dir.join(name);
                if !inside.is_file() {
                    bail!(
                        "{} is not in the stack's backup directory {}: copy it there first",
                        archive.display(),
                        host_dir.display()
                    );
                }
                Ok(format!("{IN_CONTAINER_DIR}/{}", name.to_string_lossy()))
            }
        }
    }

    fn command(&self, args: &[String]) -> Command {
        match self {
            Runner::Local { bin, data_dir, .. } => {
                let mut c = Command::new(bin);
                c.args(args).arg("--data-dir").arg(data_dir);
                c
            }
            Runner::Stack { compose, .. } => {
                let mut full: Vec<String> = [
                    "run",
                    "--rm",
                    "--no-deps",
                    "--entrypoint",
                    "berth",
                    "backup",
                ]
                .map(String::from)
                .to_vec();
                full.extend_from_slice(args);
                compose.command(full)
            }
        }
    }

    fn prepare(&self, dry_run: bool) -> Result<()> {
        match self {
            Runner::Local { build, .. } => {
                if *build && !dry_run {
                    crate::admin::build_server()?;
                }
            }
            Runner::Stack { host_dir, .. } => {
                if !dry_run {
                    docker::preflight(true)?;
                    ensure_backup_dir(host_dir)?;
                }
            }
        }
        Ok(())
    }
}

/// The stack's backup service runs as uid 10001 (like Berth): it must be able to write here.
fn ensure_backup_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        // Only root can give it away; otherwise the operator's own uid must be 10001's group.
        let _ = std::os::unix::fs::chown(dir, Some(10001), Some(10001));
    }
    Ok(())
}

fn run(mut command: Command) -> Result<ExitCode> {
    section(&format!("run: {}", show(&command)));
    let status = command
        .status()
        .with_context(|| format!("cannot run {}", show(&command)))?;
    Ok(ExitCode::from(
        status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or(1),
    ))
}

pub fn backup(args: Args) -> Result<ExitCode> {
    match args.action {
        None => create(args.create),
        Some(Action::Create(create_args)) => create(create_args),
        Some(Action::List(at)) => {
            let runner = Runner::new(&at)?;
            runner.prepare(false)?;
            run(runner.command(&[
                "backup".into(),
                "list".into(),
                "--dir".into(),
                runner.dir_arg(),
            ]))
        }
        Some(Action::Verify(v)) => {
            let runner = Runner::new(&v.at)?;
            let archive = runner.archive_arg(&v.archive)?;
            runner.prepare(false)?;
            run(runner.command(&["backup".into(), "verify".into(), archive]))
        }
    }
}

fn create(args: CreateArgs) -> Result<ExitCode> {
    let runner = Runner::new(&args.at)?;
    let mut berth_args: Vec<String> = vec![
        "backup".into(),
        "create".into(),
        "--stage".into(),
        runner.stage_name(),
        "--dir".into(),
        runner.dir_arg(),
        "--keep".into(),
        args.keep.to_string(),
    ];
    if let (Runner::Local { .. }, Some(to)) = (&runner, &args.copy_to) {
        berth_args.push("--copy-to".into());
        berth_args.push(std::path::absolute(to)?.display().to_string());
    }
    let mut command = runner.command(&berth_args);
    if args.dry_run {
        println!("backup --dry-run: would run {}", show(&command));
        return Ok(ExitCode::SUCCESS);
    }
    runner.prepare(false)?;
    section(&format!("run: {}", show(&command)));
    let out = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", show(&command)))?;
    if !out.status.success() {
        bail!("the backup failed ({}); see above", out.status);
    }
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let name = Path::new(&printed)
        .file_name()
        .context("berth printed no archive name")?;
    let archive = runner.host_dir().join(name);
    if let (Runner::Stack { .. }, Some(to)) = (&runner, &args.copy_to) {
        copy_atomically(&archive, to)?;
    }
    println!("{}", archive.display());
    Ok(ExitCode::SUCCESS)
}

fn copy_atomically(archive: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    let name = archive.file_name().context("archive name")?;
    let partial = to.join(format!(".{}.partial", name.to_string_lossy()));
    std::fs::copy(archive, &partial)?;
    std::fs::File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, to.join(name))?;
    eprintln!("backup: copied to {}", to.display());
    Ok(())
}

pub fn restore(args: RestoreArgs) -> Result<ExitCode> {
    let runner = Runner::new(&args.at)?;
    let archive = runner.archive_arg(&args.archive)?;
    let mut berth_args = vec![
        "restore".to_string(),
        archive.clone(),
        "--dir".into(),
        runner.dir_arg(),
    ];
    if args.dry_run {
        berth_args.push("--dry-run".into());
    }
    if args.yes {
        berth_args.push("--yes".into());
    }
    runner.prepare(false)?;
    let Runner::Stack { ctx, .. } = &runner else {
        return run(runner.command(&berth_args));
    };
    // The archive is checked before Berth is stopped: a refused one costs no downtime.
    let checked = run(runner.command(&[
        "backup".into(),
        "verify".into(),
        "--checksums-only".into(),
        archive,
    ]))?;
    if checked != ExitCode::SUCCESS || args.dry_run {
        return if args.dry_run {
            run(runner.command(&berth_args))
        } else {
            Ok(checked)
        };
    }
    let app = ctx.compose();
    run_status(app.command(["stop", "app"]), false)?;
    let restored = run(runner.command(&berth_args));
    let started = run_status(app.command(["start", "app"]), false);
    let code = restored?;
    started?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::{Cli, Task};

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
    }

    #[test]
    fn backup_alone_creates_and_subcommands_parse() {
        assert!(matches!(
            parse(&["backup"]).unwrap().task,
            Task::Backup(Args { action: None, .. })
        ));
        assert!(matches!(
            parse(&["backup", "--stage", "local", "--keep", "3"])
                .unwrap()
                .task,
            Task::Backup(Args { action: None, .. })
        ));
        assert!(matches!(
            parse(&["backup", "list", "--stage", "local"]).unwrap().task,
            Task::Backup(Args {
                action: Some(Action::List(_)),
                ..
            })
        ));
        assert!(matches!(
            parse(&["restore", "x.tar.gz", "--yes"]).unwrap().task,
            Task::Restore(_)
        ));
        assert_eq!(parse(&["restore"]).unwrap_err().exit_code(), 2);
        assert_eq!(
            parse(&["backup", "--keep", "many"])
                .unwrap_err()
                .exit_code(),
            2
        );
    }

    #[test]
    fn local_stage_runs_the_host_binary_on_the_dev_data() {
        let runner = Runner::new(&Where {
            stage: "local".into(),
            project_name: None,
            data_dir: None,
            dir: None,
        })
        .unwrap();
        let shown = show(&runner.command(&["backup".into(), "list".into()]));
        assert!(shown.ends_with(&format!(
            "berth backup list --data-dir {}",
            dev_data_dir().display()
        )));
    }
}
