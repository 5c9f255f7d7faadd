//! `cargo xtask setup`: from a fresh checkout to a running stack with a first admin, in one
//! command that is safe to run again. Built from the pieces other tasks own: the engine check
//! (`doctor`), the secret files (`docker::ensure_secrets`, as `up` makes them), `up` (build,
//! start, wait healthy, print the URLs) and `berth admin create` inside the app container.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::{ExitCode, Stdio};

use anyhow::{bail, Context, Result};

use crate::util::docker;
use crate::util::stage::{Ctx, StageArgs};
use crate::util::{refuse_tracked_secrets, section, show};

#[derive(clap::Args, Debug)]
#[command(
    about = "Set up Berth on this machine: secrets, images, the stack, the first admin",
    long_about = "One command from a fresh checkout to a running Berth: checks the container \
                  engine, generates every missing secret (deploy/stack.toml [secrets]) from the \
                  kernel's CSPRNG into the secrets directory (0700, never printed, ignored by \
                  git), builds the images, brings the stack up, waits until it is healthy, \
                  creates the first admin and prints where to sign in.\n\n\
                  Running it again changes nothing: existing secrets are never overwritten (only \
                  --rotate NAME replaces one, and says what must restart), an existing admin is \
                  left alone, and a healthy stack stays as it is.",
    after_help = "Examples:\n  \
        cargo xtask setup                                    # prod, asks the admin password\n  \
        echo \"$PW\" | cargo xtask setup --non-interactive --admin-password-stdin\n  \
        cargo xtask setup --rotate grafana_admin_password\n  \
        cargo xtask setup --no-up --dry-run                   # what it would generate\n\n\
        Exit status: 0 done (or nothing to do); 1 failure; 2 bad command line."
)]
pub struct Args {
    #[command(flatten)]
    stage: StageArgs,
    /// Enable PROFILE (repeatable), as `up`
    #[arg(long = "profile", value_name = "PROFILE")]
    profiles: Vec<String>,
    /// Never prompt: without --admin-password-stdin the admin step is skipped (and said so)
    #[arg(long)]
    non_interactive: bool,
    /// User name of the first admin
    #[arg(long, default_value = "admin", value_name = "NAME")]
    admin_username: String,
    /// Read the first admin's password from the first line of standard input
    #[arg(long)]
    admin_password_stdin: bool,
    /// Replace the secret NAME with a fresh one (and the files derived from it)
    #[arg(long, value_name = "NAME")]
    rotate: Option<String>,
    /// Only the secrets: no build, no stack, no admin (a machine without Docker, or CI)
    #[arg(long)]
    no_up: bool,
    /// Print what would be done, change nothing
    #[arg(long)]
    dry_run: bool,
}

/// Brings the stack up as `cargo xtask up` does (handed in by `main`): the stage, the profiles
/// to enable, and whether this is a dry run; waits until it is healthy.
pub type Up<'a> = &'a dyn Fn(&StageArgs, &[String], bool) -> Result<ExitCode>;

pub fn run(args: Args, up: Up) -> Result<ExitCode> {
    // The password is read first, before anything slow, so a pipe is not left waiting.
    let password = if args.admin_password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the admin password from standard input")?;
        Some(line.trim_end_matches(['\n', '\r']).to_string())
    } else {
        None
    };
    if !args.no_up && !args.dry_run {
        section("setup: prerequisites");
        docker::preflight(true)?;
    }
    let ctx = Ctx::load(&args.stage)?;
    let dir = docker::secrets_dir(&ctx.root, &ctx.stack, &ctx.stage, &ctx.vars);
    refuse_tracked_secrets(&ctx.root, &dir)?;

    section(&format!("setup: secrets in {}", dir.display()));
    let mut restart = Vec::new();
    if let Some(name) = &args.rotate {
        restart = rotate(&ctx, &dir, name, args.dry_run)?;
    }
    let done = docker::ensure_secrets(&dir, &ctx.stack, &ctx.stage, args.dry_run)?;
    if done.is_empty() {
        eprintln!("setup: secrets: nothing to do (every secret exists; none is ever overwritten)");
    }
    for line in done {
        if args.dry_run {
            println!("would {line}");
        } else {
            eprintln!("setup: {line}");
        }
    }
    if !restart.is_empty() {
        eprintln!(
            "setup: rotated `{}`: restart {} to use it (`cargo xtask up --stage {}` recreates \
             them)",
            args.rotate.as_deref().unwrap_or_default(),
            restart.join(", "),
            ctx.stage.name
        );
        if args.rotate.as_deref() == Some("postgres_password") {
            eprintln!(
                "setup: PostgreSQL keeps the old password in its data volume: set the new one \
                 with `cargo xtask exec db -- psql -U berth -c \"ALTER ROLE berth PASSWORD '…'\"` \
                 (the value is in {}) before restarting app",
                dir.join("postgres_password").display()
            );
        }
    }
    if args.no_up {
        eprintln!("setup: --no-up: not building or starting the stack");
        return Ok(ExitCode::SUCCESS);
    }

    let up = up(&args.stage, &args.profiles, args.dry_run)?;
    if up != ExitCode::SUCCESS {
        return Ok(up);
    }
    first_admin(&ctx, &args, password)
}

/// Deletes the secret `name` and the files derived from it, so `ensure_secrets` makes them
/// again; returns the services that must restart.
fn rotate(ctx: &Ctx, dir: &Path, name: &str, dry_run: bool) -> Result<Vec<String>> {
    let secrets = &ctx.stack.file.secrets;
    let Some((_, secret)) = secrets.iter().find(|(n, _)| n.get_ref() == name) else {
        let known: Vec<_> = secrets.keys().map(|n| n.get_ref().clone()).collect();
        bail!(
            "no secret named {name:?}; the stack has: {}",
            known.join(", ")
        );
    };
    if secret.generate.is_none() {
        bail!("secret {name:?} is not generated (derived or provided by you): replace its file yourself");
    }
    let placeholder = format!("{{{name}}}");
    let mut affected = vec![name.to_string()];
    for (other, s) in secrets {
        if s.template
            .as_ref()
            .is_some_and(|t| t.get_ref().contains(&placeholder))
        {
            affected.push(other.get_ref().clone());
        }
    }
    for (n, s) in secrets {
        if affected.contains(n.get_ref()) {
            let path = dir.join(s.file.get_ref());
            if dry_run {
                println!("would replace {}", path.display());
            } else if path.exists() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    Ok(ctx
        .stack
        .file
        .services
        .iter()
        .filter(|(_, s)| s.secrets.iter().any(|x| affected.contains(x.get_ref())))
        .map(|(n, _)| n.get_ref().clone())
        .collect())
}

fn first_admin(ctx: &Ctx, args: &Args, password: Option<String>) -> Result<ExitCode> {
    section(&format!("setup: first admin `{}`", args.admin_username));
    let interactive = !args.non_interactive && std::io::stdin().is_terminal();
    if password.is_none() && !interactive {
        eprintln!(
            "setup: admin: skipped (no terminal to ask on): pipe the password with \
             --admin-password-stdin, or run `cargo xtask exec app -- berth admin create \
             --username NAME` later"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let compose = ctx.compose();
    let mut exec = compose.command(["exec"]);
    if password.is_some() {
        exec.arg("-T");
    }
    exec.args([
        "app",
        "berth",
        "admin",
        "create",
        "--username",
        &args.admin_username,
    ]);
    if password.is_some() {
        exec.arg("--password-stdin");
    }
    if args.dry_run {
        println!("would run: {}", show(&exec));
        return Ok(ExitCode::SUCCESS);
    }
    let out = match &password {
        Some(password) => {
            let mut child = exec
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("cannot run {}", show(&exec)))?;
            writeln!(child.stdin.take().context("stdin")?, "{password}")?;
            child.wait_with_output()?
        }
        // A terminal: berth's own hidden prompt, asked twice; its messages go straight there.
        None => {
            let status = exec
                .status()
                .with_context(|| format!("cannot run {}", show(&exec)))?;
            if !status.success() {
                bail!("creating the admin failed ({status}); see above");
            }
            eprintln!("setup: done; sign in at the web UI address printed above");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        eprintln!("setup: {}", said.trim());
    } else if said.contains("exists already") {
        eprintln!(
            "setup: admin: `{}` exists already: nothing to do",
            args.admin_username
        );
    } else {
        bail!("creating the admin failed: {}", said.trim());
    }
    eprintln!("setup: done; sign in at the web UI address printed above");
    Ok(ExitCode::SUCCESS)
}
