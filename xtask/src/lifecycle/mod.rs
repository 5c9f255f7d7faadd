//! The stack's lifecycle on Docker Compose: `build`, `up`, `down`, `ps`, `logs`, `health`,
//! `exec`. Each reads deploy/stack.toml (through the generated compose file of the chosen
//! stage), and each fails with one line saying what to do when Docker is missing, its daemon is
//! down, Compose is missing, or a port is taken.

mod build;
mod dev_stack;
mod down;
mod up;

pub use self::{build::*, dev_stack::*, down::*, up::*};

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, IsTerminal, Write},
    path::Path,
    process::{Command, ExitCode, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::{
    stack::resolve::ResolvedStage,
    util::docker::{self, Compose, Container},
    util::stage::{Ctx, StageArgs, TargetArgs},
    util::{is_ci, process, secs, section, show, warn, Timer},
};

// ------------------------------------------------------------------------------------------------
// ps, logs, health, exec

#[derive(clap::Args, Debug)]
#[command(about = "List the stack's containers (every profile), with state, health and ports")]
pub struct PsArgs {
    #[command(flatten)]
    pub stage: StageArgs,
}

pub fn ps(args: PsArgs) -> Result<ExitCode> {
    let ctx = Ctx::load(&args.stage)?;
    docker::preflight(true)?;
    process::run(ctx.compose_all().command(["ps", "--all"]))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
#[command(about = "Show the stack's logs, or one service's (-f to follow)")]
pub struct LogsArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Only this service's logs
    pub service: Option<String>,
    /// Keep printing new lines
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Lines from the end of each log
    #[arg(long, default_value = "200", value_name = "N")]
    pub tail: String,
    /// A deployment server's logs instead (deploy/stack.toml [targets], over SSH)
    #[command(flatten)]
    pub remote: TargetArgs,
}

fn check_service(ctx: &Ctx, service: &str) -> Result<()> {
    if !ctx.stage.services.iter().any(|s| s.name == service) {
        let names: Vec<_> = ctx.stage.services.iter().map(|s| s.name.as_str()).collect();
        bail!(
            "no service `{service}` in deploy/stack.toml; services are: {}",
            names.join(", ")
        );
    }
    Ok(())
}

/// A deployment target's logs (`deploy::remote_logs`, handed in by `main`): the target, the
/// service, `--tail` and `--follow`.
pub type RemoteLogs = fn(&TargetArgs, Option<&str>, &str, bool) -> Result<ExitCode>;

pub fn logs(args: LogsArgs, remote_logs: RemoteLogs) -> Result<ExitCode> {
    if args.remote.target.is_some() {
        return remote_logs(
            &args.remote,
            args.service.as_deref(),
            &args.tail,
            args.follow,
        );
    }
    let ctx = Ctx::load(&args.stage)?;
    if let Some(s) = &args.service {
        check_service(&ctx, s)?;
    }
    docker::preflight(true)?;
    let mut a = vec!["logs".to_string(), "--tail".into(), args.tail.clone()];
    if args.follow {
        a.push("--follow".into());
    }
    a.extend(args.service.clone());
    process::run(ctx.compose_all().command(&a))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
#[command(
    about = "Report each service's health (and the last health check's output when failing)",
    after_help = "Exit status:\n  0  every container is healthy (or a one-shot job that succeeded)\n  \
                  1  something is unhealthy, failed, or nothing runs\n  2  bad command line"
)]
pub struct HealthArgs {
    #[command(flatten)]
    pub stage: StageArgs,
}

fn last_health_output(container: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["inspect", "--format", "{{json .State.Health}}", container])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let last = v["Log"].as_array()?.last()?.clone();
    Some(last["Output"].as_str()?.trim().to_string())
}

pub fn health(args: HealthArgs) -> Result<ExitCode> {
    let ctx = Ctx::load(&args.stage)?;
    docker::preflight(true)?;
    let containers = ctx.compose_all().containers()?;
    if containers.is_empty() {
        bail!(
            "nothing of project {} exists: `cargo xtask up` starts it",
            ctx.project()
        );
    }
    let mut bad = 0;
    println!("{:<14} {:<10} {:<12} check", "service", "state", "health");
    for c in &containers {
        let oneshot = ctx
            .stage
            .services
            .iter()
            .any(|s| s.name == c.service && s.oneshot);
        let v = verdict(Some(c), oneshot);
        let detail = match &v {
            Verdict::Ready(x) => x.clone(),
            Verdict::Waiting(x) | Verdict::Failed(x) => {
                bad += 1;
                let out = last_health_output(&c.name).unwrap_or_default();
                let out = out.lines().last().unwrap_or("").to_string();
                if out.is_empty() {
                    x.clone()
                } else {
                    format!("{x}: {out}")
                }
            }
        };
        let health = if c.health.is_empty() { "-" } else { &c.health };
        println!("{:<14} {:<10} {:<12} {detail}", c.service, c.state, health);
    }
    if bad > 0 {
        warn(&format!(
            "{bad} of {} containers are not healthy",
            containers.len()
        ));
        return Ok(ExitCode::FAILURE);
    }
    println!("health: all {} containers are healthy", containers.len());
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
#[command(
    about = "Run a command in a running service's container: exec SERVICE -- CMD [ARGS...]",
    after_help = "Example:\n  cargo xtask exec app -- berth admin create --username alice\n\n\
                  Exit status: the command's, or 1 when it could not run; 2 bad command line"
)]
pub struct ExecArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// The service (e.g. app, db)
    pub service: String,
    /// The command and its arguments (after `--`)
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
    /// Print the command, run nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub fn exec(args: ExecArgs) -> Result<ExitCode> {
    let ctx = Ctx::load(&args.stage)?;
    check_service(&ctx, &args.service)?;
    if !args.dry_run {
        docker::preflight(true)?;
    }
    let mut a = vec!["exec".to_string()];
    if !std::io::stdin().is_terminal() {
        a.push("-T".into());
    }
    a.push(args.service.clone());
    a.extend(args.command.clone());
    let mut c = ctx.compose_all().command(&a);
    if args.dry_run {
        println!("would run: {}", show(&c));
        return Ok(ExitCode::SUCCESS);
    }
    let status = c
        .status()
        .with_context(|| format!("cannot run {}", show(&c)))?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(state: &str, health: &str, exit: i64) -> Container {
        Container {
            name: "x".into(),
            service: "x".into(),
            state: state.into(),
            health: health.into(),
            exit_code: exit,
            publishers: None,
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            verdict(None, false),
            Verdict::Waiting("not created yet".into())
        );
        assert_eq!(
            verdict(Some(&container("running", "starting", 0)), false),
            Verdict::Waiting("starting".into())
        );
        assert_eq!(
            verdict(Some(&container("running", "healthy", 0)), false),
            Verdict::Ready("healthy".into())
        );
        assert_eq!(
            verdict(Some(&container("running", "unhealthy", 0)), false),
            Verdict::Failed("unhealthy".into())
        );
        assert_eq!(
            verdict(Some(&container("exited", "", 0)), true),
            Verdict::Ready("finished".into())
        );
        assert_eq!(
            verdict(Some(&container("exited", "", 3)), true),
            Verdict::Failed("exited with 3".into())
        );
        assert!(matches!(
            verdict(Some(&container("exited", "", 137)), false),
            Verdict::Failed(_)
        ));
        assert_eq!(
            verdict(Some(&container("restarting", "", 1)), false),
            Verdict::Waiting("restarting".into())
        );
    }
}
