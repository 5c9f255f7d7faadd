//! `cargo xtask backup [list|verify|drill]` and `cargo xtask restore`: `berth backup …` and
//! `berth restore …` run where the data is. The berth binary does the work (it knows the
//! schema); this task only finds the binary, the data and the archives.
//!
//! `backup --secrets` / `restore --secrets FILE` seal and open the stage's secrets directory with
//! a passphrase (`berth backup secrets seal|open`, run by the host binary: the secrets are files
//! on this machine).
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

use crate::util::docker;
use crate::util::process::exit_code;
use crate::util::stage::{Ctx, StageArgs};
use crate::util::{dev_data_dir, dev_server_bin, process, project_root, show};

const AFTER_HELP: &str = "Examples:\n  \
    cargo xtask backup                         # the prod stack, into backups/\n  \
    cargo xtask backup --stage local           # the SQLite data of `cargo xtask dev`\n  \
    cargo xtask backup list\n  \
    cargo xtask backup verify backups/berth-prod-20261201T020000.000Z.tar.gz\n  \
    cargo xtask backup drill                   # newest prod archive: restore, serve, sign in, search\n  \
    cargo xtask backup --secrets               # seal secrets/ with a passphrase (asked twice)\n  \
    cargo xtask restore backups/berth-prod-20261201T020000.000Z.tar.gz\n  \
    cargo xtask restore --secrets backups/berth-secrets-prod-20261201T020000.000Z.tar.age\n\n\
    The passphrase of --secrets: --passphrase-file FILE, or BERTH_BACKUP_PASSPHRASE, or a \
    hidden prompt; never on the command line.\n\n\
    Exit status: 0 done; 1 failed, archive refused or drill failed; 2 bad command line or not \
    confirmed; 3 database error.";

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
                  database and compares it with its manifest; `drill [ARCHIVE]` restores the \
                  newest (or ARCHIVE) into a throwaway database, starts Berth on it, signs in as \
                  a throwaway admin and searches over HTTP: the proof that backups are usable.\n\n\
                  Secrets are never in a data archive: `--secrets` seals the stage's secrets \
                  directory on its own (berth-secrets-STAGE-UTCTIME.tar.age, encrypted with a \
                  passphrase by age/scrypt, mode 0600) into the backup directory.",
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
    /// Restore the newest archive (or ARCHIVE) into a throwaway copy, start Berth on it, sign in
    /// and search over HTTP; remove it all. Exit 0 only if every step passed
    Drill(DrillArgs),
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
    /// Seal the stage's secrets directory instead of taking a data backup: encrypted with a
    /// passphrase into the backup directory (--dir, else BERTH_BACKUP_DIR)
    #[arg(long, conflicts_with = "keep")]
    secrets: bool,
    /// With --secrets: read the passphrase from this file [default: BERTH_BACKUP_PASSPHRASE,
    /// else a hidden prompt, asked twice]
    #[arg(long, value_name = "FILE", requires = "secrets")]
    passphrase_file: Option<PathBuf>,
    /// Print what would be run, change nothing
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::Args, Debug)]
struct DrillArgs {
    #[command(flatten)]
    at: Where,
    /// The archive (in the backup directory) [default: the stage's newest]
    archive: Option<PathBuf>,
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
    #[arg(required_unless_present = "secrets")]
    archive: Option<PathBuf>,
    /// Open a sealed secrets file (from `backup --secrets`) into the stage's secrets directory
    /// instead; files that exist with other content are refused unless --force
    #[arg(long, value_name = "FILE", conflicts_with_all = ["archive", "yes"])]
    secrets: Option<PathBuf>,
    /// With --secrets: overwrite secret files that exist with other content
    #[arg(long, requires = "secrets")]
    force: bool,
    /// With --secrets: read the passphrase from this file [default: BERTH_BACKUP_PASSPHRASE,
    /// else a hidden prompt]
    #[arg(long, value_name = "FILE", requires = "secrets")]
    passphrase_file: Option<PathBuf>,
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
        let host_dir = stack_backup_dir(&ctx);
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
        self.command_with_env(args, &[])
    }

    /// [`Runner::command`] with extra environment variables for berth. In the stack they go
    /// through `-e NAME` (the value from our environment, never on a command line).
    fn command_with_env(&self, args: &[String], env: &[(String, String)]) -> Command {
        match self {
            Runner::Local { bin, data_dir, .. } => {
                let mut c = Command::new(bin);
                c.args(args);
                // `backup list` reads only the archives' directory.
                if args.get(1).is_none_or(|action| action != "list") {
                    c.arg("--data-dir").arg(data_dir);
                }
                c.envs(env.iter().map(|(k, v)| (k, v)));
                c
            }
            Runner::Stack { compose, .. } => {
                let mut full: Vec<String> = ["run", "--rm", "--no-deps", "--entrypoint", "berth"]
                    .map(String::from)
                    .to_vec();
                for (name, _) in env {
                    full.push("-e".into());
                    full.push(name.clone());
                }
                full.push("backup".into());
                full.extend_from_slice(args);
                let mut c = compose.command(full);
                c.envs(env.iter().map(|(k, v)| (k, v)));
                c
            }
        }
    }

    /// The app's embedding settings, for a drill in the stack: the backup service has none of
    /// its own, and the drill's search must embed the query as the app does.
    fn app_embedding_env(&self) -> Vec<(String, String)> {
        let Runner::Stack { ctx, .. } = self else {
            return Vec::new();
        };
        ctx.stage
            .services
            .iter()
            .find(|s| s.name == "app")
            .map(|app| {
                app.environment
                    .iter()
                    .filter(|(k, _)| k.starts_with("BERTH_EMBED_"))
                    .map(|(k, v)| (k.clone(), ctx.vars.expand(v)))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn prepare(&self, dry_run: bool) -> Result<()> {
        match self {
            Runner::Local { build, .. } => {
                if *build && !dry_run {
                    crate::util::cargo::build_server()?;
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

/// BERTH_BACKUP_DIR on this machine (relative to the compose file's folder).
fn stack_backup_dir(ctx: &Ctx) -> PathBuf {
    let compose_dir = ctx.root.join(&ctx.stage.file);
    let compose_dir = compose_dir.parent().unwrap_or(&ctx.root).to_path_buf();
    docker::normalize(
        &compose_dir.join(
            ctx.vars
                .get("BERTH_BACKUP_DIR")
                .unwrap_or("../backups".into()),
        ),
    )
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

fn run(command: Command) -> Result<ExitCode> {
    Ok(exit_code(process::status(command)?))
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
        Some(Action::Drill(d)) => drill(d),
    }
}

fn drill(args: DrillArgs) -> Result<ExitCode> {
    let runner = Runner::new(&args.at)?;
    let mut berth_args: Vec<String> = vec!["backup".into(), "drill".into()];
    match &args.archive {
        Some(archive) => berth_args.push(runner.archive_arg(archive)?),
        None => {
            // The newest archive of this stage in the backup directory.
            berth_args.push("--stage".into());
            berth_args.push(runner.stage_name());
        }
    }
    berth_args.push("--dir".into());
    berth_args.push(runner.dir_arg());
    let command = runner.command_with_env(&berth_args, &runner.app_embedding_env());
    if args.dry_run {
        println!("backup drill --dry-run: would run {}", show(&command));
        return Ok(ExitCode::SUCCESS);
    }
    runner.prepare(false)?;
    run(command)
}

/// Where `--secrets` works: the stage's secrets directory, the backup directory, the host binary.
struct SecretsPlace {
    stage: String,
    root: PathBuf,
    secrets_dir: PathBuf,
    backup_dir: PathBuf,
    bin: crate::util::ServerBin,
}

impl SecretsPlace {
    fn new(at: &Where) -> Result<SecretsPlace> {
        if at.stage == "local" {
            bail!(
                "--secrets seals a stack's secrets directory: use --stage prod or dev (`cargo \
                 xtask dev` keeps no secrets)"
            );
        }
        if at.data_dir.is_some() {
            bail!("--data-dir applies to --stage local, not to --secrets");
        }
        let ctx = Ctx::load(&StageArgs {
            stage: at.stage.clone(),
            project_name: at.project_name.clone(),
        })?;
        let backup_dir = match &at.dir {
            Some(d) => std::path::absolute(d)?,
            None => stack_backup_dir(&ctx),
        };
        Ok(SecretsPlace {
            stage: ctx.stage.name.clone(),
            secrets_dir: docker::secrets_dir(&ctx.root, &ctx.stack, &ctx.stage, &ctx.vars),
            root: ctx.root.clone(),
            backup_dir,
            bin: dev_server_bin()?,
        })
    }

    /// `berth backup secrets ACTION ARGS [--passphrase-file FILE]`, with the host binary.
    fn command(&self, args: &[String], passphrase_file: Option<&Path>) -> Result<Command> {
        let mut c = Command::new(&self.bin.path);
        c.args(["backup", "secrets"]).args(args);
        if let Some(file) = passphrase_file {
            c.arg("--passphrase-file").arg(std::path::absolute(file)?);
        }
        Ok(c)
    }

    fn build(&self) -> Result<()> {
        if self.bin.build {
            crate::util::cargo::build_server()?;
        }
        Ok(())
    }
}

fn seal_secrets(args: &CreateArgs) -> Result<ExitCode> {
    let place = SecretsPlace::new(&args.at)?;
    let mut command = place.command(
        &[
            "seal".into(),
            "--from".into(),
            place.secrets_dir.display().to_string(),
            "--dir".into(),
            place.backup_dir.display().to_string(),
            "--stage".into(),
            place.stage.clone(),
        ],
        args.passphrase_file.as_deref(),
    )?;
    if args.dry_run {
        let files = walkdir::WalkDir::new(&place.secrets_dir)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .count();
        println!(
            "backup --secrets --dry-run: would run {} ({files} file(s) in {})",
            show(&command),
            place.secrets_dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if !place.secrets_dir.is_dir() {
        bail!(
            "{} does not exist: nothing to seal (`cargo xtask setup` makes the secrets)",
            place.secrets_dir.display()
        );
    }
    place.build()?;
    let out = process::run_for_stdout(&mut command)?;
    if !out.status.success() {
        return Ok(exit_code(out.status));
    }
    let sealed = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if let Some(to) = &args.copy_to {
        copy_atomically(&sealed, to)?;
    }
    println!("{}", sealed.display());
    Ok(ExitCode::SUCCESS)
}

fn open_secrets(args: &RestoreArgs, file: &Path) -> Result<ExitCode> {
    let place = SecretsPlace::new(&args.at)?;
    crate::util::refuse_tracked_secrets(&place.root, &place.secrets_dir)?;
    let mut berth_args = vec![
        "open".to_string(),
        std::path::absolute(file)?.display().to_string(),
        "--to".into(),
        place.secrets_dir.display().to_string(),
    ];
    if args.force {
        berth_args.push("--force".into());
    }
    if args.dry_run {
        berth_args.push("--dry-run".into());
    }
    let command = place.command(&berth_args, args.passphrase_file.as_deref())?;
    place.build()?;
    let code = run(command)?;
    if code == ExitCode::SUCCESS && !args.dry_run {
        eprintln!(
            "restore: secrets are in {}; `cargo xtask up --stage {}` makes the services use them",
            place.secrets_dir.display(),
            place.stage
        );
    }
    Ok(code)
}

fn create(args: CreateArgs) -> Result<ExitCode> {
    if args.secrets {
        return seal_secrets(&args);
    }
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
    let out = process::run_for_stdout(&mut command)?;
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
    let copied = std::fs::copy(archive, &partial)
        .and_then(|_| std::fs::File::open(&partial)?.sync_all())
        .and_then(|_| std::fs::rename(&partial, to.join(name)))
        .and_then(|_| std::fs::File::open(to)?.sync_all());
    if let Err(err) = copied {
        // Never leave half a copy behind: the off-site folder holds whole archives only.
        let _ = std::fs::remove_file(&partial);
        bail!("copying {} to {}: {err}", archive.display(), to.display());
    }
    eprintln!("backup: copied to {}", to.display());
    Ok(())
}

pub fn restore(args: RestoreArgs) -> Result<ExitCode> {
    if let Some(file) = &args.secrets {
        return open_secrets(&args, file);
    }
    // clap excuses a missing `requires` target that conflicts with a given argument (here
    // --secrets with ARCHIVE), so this is checked here.
    if args.force || args.passphrase_file.is_some() {
        bail!("--force and --passphrase-file apply to --secrets FILE, not to a data archive");
    }
    let runner = Runner::new(&args.at)?;
    let archive = runner.archive_arg(args.archive.as_deref().context("no archive given")?)?;
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
    process::run(app.command(["stop", "app"]))?;
    let restored = run(runner.command(&berth_args));
    let started = process::run(app.command(["start", "app"]));
    let code = restored?;
    started?;
    Ok(code)
}

#[cfg(test)]
mod tests;
