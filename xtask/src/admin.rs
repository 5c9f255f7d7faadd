//! `cargo xtask admin`: `berth admin create|reset-password` on a local stage's data,
//! without having to know where its binary and data live.
//!
//! To add a stage, add a [`Stage`] variant and say in [`Stage::plan`] how to reach its server.

use std::{
    path::PathBuf,
    process::{Command, ExitCode},
};

use anyhow::{Context, Result};

use crate::util::{
    cargo, dev_data_dir, dev_server_bin, process::exit_code, project_root, section, show,
};

const AFTER_HELP: &str = "Examples:\n  \
    cargo xtask admin create --username alice\n  \
    echo \"$PW\" | cargo xtask admin create --username alice --password-stdin\n  \
    cargo xtask admin reset-password --username alice\n\n\
    Environment:\n  \
    BERTH_DEV_BIN=PATH  run this binary instead of building target/debug/berth\n  \
    BERTH_*             berth's own settings still apply (e.g. BERTH_DATABASE_URL)\n\n\
    Exit status (berth's own, passed on):\n  \
    0    done\n  \
    1    the build failed, berth could not be started, or another error\n  \
    2    refused: invalid name or password, account exists or does not; or bad command line\n  \
    3    database error\n  \
    130  interrupted (Ctrl-C)";

#[derive(clap::Args, Debug)]
#[command(
    about = "Create an admin account, or reset a password, on a local stage",
    long_about = "Run `berth admin create` or `berth admin reset-password` on the data of a \
                  local stage, so the first admin can be made without knowing where the binary \
                  and its data live.\n\n\
                  --stage dev (the default, and for now the only stage) builds the server \
                  (cargo build --locked -p berth) and runs \
                  `target/debug/berth admin ACTION --username NAME [--password-stdin] --data-dir DIR` \
                  on the data directory `cargo xtask dev` uses (.berth-dev/data, or --data-dir). \
                  The server need not be running.\n\n\
                  Standard input, output and error are berth's own: without --password-stdin it \
                  asks for the password twice at a hidden prompt; with it, it reads the first \
                  line of standard input (`echo \"$PW\" | cargo xtask admin create --username \
                  alice --password-stdin`).",
    after_help = AFTER_HELP
)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Create an active admin account (`berth admin create`)
    #[command(after_help = AFTER_HELP)]
    Create(ActionArgs),
    /// Set a new password for an account, ending its sessions and tokens (`berth admin reset-password`)
    #[command(after_help = AFTER_HELP)]
    ResetPassword(ActionArgs),
}

impl Action {
    fn parts(&self) -> (&'static str, &ActionArgs) {
        match self {
            Action::Create(args) => ("create", args),
            Action::ResetPassword(args) => ("reset-password", args),
        }
    }
}

#[derive(clap::Args, Debug)]
struct ActionArgs {
    /// The account's user name
    #[arg(long, value_name = "NAME")]
    username: String,
    /// Read the password from the first line of standard input instead of a hidden prompt
    /// (asked twice)
    #[arg(long)]
    password_stdin: bool,
    /// Which stage's server and data to act on
    #[arg(long, value_enum, default_value_t = Stage::Dev)]
    stage: Stage,
    /// Data directory of the dev stage [default: .berth-dev/data in the repository, as `dev`]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print what would be done, then exit without doing it
    #[arg(long)]
    dry_run: bool,
}

/// Where the server whose accounts are changed runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// The server `cargo xtask dev` runs: this checkout's build, on its data directory
    Dev,
    // Extension point: a `Compose` stage will run the same `berth admin ...` command inside the
    // compose stack's app container, `docker compose exec app berth admin <action> ...`, once that
    // stack exists. `--data-dir` will not apply to it: the data dir is the container's.
}

/// How to run `berth admin` for a stage.
struct Plan {
    /// The command to build first, if any.
    build: Option<&'static str>,
    admin: Command,
}

impl Stage {
    fn plan(self, action: &str, args: &ActionArgs) -> Result<Plan> {
        match self {
            Stage::Dev => {
                let server = dev_server_bin()?;
                let data_dir = match &args.data_dir {
                    Some(dir) => std::path::absolute(dir)?,
                    None => dev_data_dir(),
                };
                let mut admin = server.command();
                admin
                    .args(["admin", action, "--username", &args.username])
                    .args(args.password_stdin.then_some("--password-stdin"))
                    .arg("--data-dir")
                    .arg(data_dir)
                    .current_dir(project_root());
                Ok(Plan {
                    build: server.build.then_some("cargo build --locked -p berth"),
                    admin,
                })
            }
        }
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let (action, args) = args.action.parts();
    let Plan { build, mut admin } = args.stage.plan(action, args)?;
    if args.dry_run {
        println!("admin --dry-run: would");
        match build {
            Some(build) => println!("  build:  {build}   (in {})", project_root().display()),
            None => println!("  build:  nothing (BERTH_DEV_BIN is set)"),
        }
        println!("  run:    {}", show(&admin));
        println!("          with this terminal's stdin, stdout and stderr; exit with its status");
        return Ok(ExitCode::SUCCESS);
    }

    if build.is_some() {
        cargo::build_server()?;
    }
    section(&format!("run: {}", show(&admin)));
    // Inherited stdin/stdout/stderr: the hidden prompt needs the terminal, and a password piped
    // to us must reach berth.
    let status = admin
        .status()
        .with_context(|| format!("starting {}", admin.get_program().to_string_lossy()))?;
    Ok(exit_code(status))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::{Cli, Task};

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))?;
        match cli.task {
            Task::Admin(args) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    /// The arguments `berth` would be given.
    fn berth_args(args: &[&str]) -> Vec<String> {
        let args = parse(args).unwrap();
        let (action, args) = args.action.parts();
        let plan = args.stage.plan(action, args).unwrap();
        plan.admin
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn dev_stage_runs_berth_admin_on_the_dev_data_dir() {
        let data_dir = dev_data_dir().display().to_string();
        assert_eq!(
            berth_args(&["admin", "create", "--username", "alice"]),
            [
                "admin",
                "create",
                "--username",
                "alice",
                "--data-dir",
                &data_dir
            ]
        );
    }

    #[test]
    fn flags_are_passed_on() {
        let dir = std::env::temp_dir().join("berth-admin-plan");
        let dir = dir.to_str().unwrap();
        assert_eq!(
            berth_args(&[
                "admin",
                "reset-password",
                "--username",
                "bob",
                "--password-stdin",
                "--stage",
                "dev",
                "--data-dir",
                dir,
            ]),
            [
                "admin",
                "reset-password",
                "--username",
                "bob",
                "--password-stdin",
                "--data-dir",
                dir
            ]
        );
    }

    #[test]
    fn bad_command_lines_are_usage_errors() {
        for bad in [
            &["admin"][..],
            &["admin", "create"],
            &["admin", "delete", "--username", "a"],
            &["admin", "create", "--username", "a", "--stage", "prod"],
        ] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn exit_status_is_passed_on() {
        let status = |script: &str| Command::new("sh").args(["-c", script]).status().unwrap();
        assert_eq!(exit_code(status("exit 0")), ExitCode::SUCCESS);
        assert_eq!(exit_code(status("exit 3")), ExitCode::from(3));
        assert_eq!(exit_code(status("kill -INT $$")), ExitCode::from(130));
    }
}
