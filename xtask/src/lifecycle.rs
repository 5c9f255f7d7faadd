//! The stack's lifecycle on Docker Compose: `build`, `up`, `down`, `ps`, `logs`, `health`,
//! `exec`. Each reads deploy/stack.toml (through the generated compose file of the chosen
//! stage), and each fails with one line saying what to do when Docker is missing, its daemon is
//! down, Compose is missing, or a port is taken.

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
// build

#[derive(clap::Args, Debug)]
#[command(
    about = "Build the stack's images (deploy/stack.toml [images]) with BuildKit, showing progress",
    long_about = "Build every image the stage needs (deploy/stack.toml [images], with the \
                  stage's overrides: prod builds the `runtime` target as BERTH_IMAGE, dev the \
                  `dev` target as berth:dev), with `docker build` and BuildKit, showing its \
                  progress, then print each image's size and build time.\n\n\
                  BERTH_VERSION, BERTH_REVISION and BERTH_CREATED (the OCI labels) default to \
                  the workspace version, the git commit and its commit time, unless set in the \
                  environment or .env.",
    after_help = "Exit status:\n  0  built\n  1  Docker unavailable, or a build failed\n  2  bad command line"
)]
pub struct BuildArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Build only this image (a key of [images]; repeatable)
    #[arg(long = "image", value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Build without BuildKit's cache
    #[arg(long)]
    pub no_cache: bool,
    /// Progress output: auto, plain or tty
    #[arg(long, default_value = "auto", value_parser = ["auto", "plain", "tty"])]
    pub progress: String,
    /// Print the build commands, build nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub fn build(args: BuildArgs) -> Result<ExitCode> {
    let ctx = Ctx::load(&args.stage)?;
    if !args.dry_run {
        docker::preflight(true)?;
    }
    for wanted in &args.images {
        if !ctx.stage.images.iter().any(|i| &i.key == wanted) {
            let names: Vec<_> = ctx.stage.images.iter().map(|i| i.key.as_str()).collect();
            bail!(
                "no image `{wanted}` in deploy/stack.toml; images are: {}",
                names.join(", ")
            );
        }
    }
    build_images(
        &ctx,
        &args.images,
        args.no_cache,
        &args.progress,
        args.dry_run,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Values for the OCI-label variables when neither the environment nor .env sets them.
fn label_defaults(root: &Path) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    if let Ok(text) = std::fs::read_to_string(root.join("Cargo.toml")) {
        if let Ok(value) = text.parse::<toml::Table>() {
            if let Some(v) = value
                .get("workspace")
                .and_then(|w| w.get("package"))
                .and_then(|p| p.get("version"))
                .and_then(|v| v.as_str())
            {
                out.insert("BERTH_VERSION", v.to_string());
            }
        }
    }
    if let Some(rev) = git(&["rev-parse", "HEAD"]) {
        out.insert("BERTH_REVISION", rev);
    }
    // The commit time, not now: the same commit gives the same labels (reproducible images).
    if let Some(time) = git(&[
        "log",
        "-1",
        "--format=%cd",
        "--date=format-local:%Y-%m-%dT%H:%M:%SZ",
    ]) {
        out.insert("BERTH_CREATED", time);
    }
    out
}

/// Sets the label variables this process (and the compose it runs) will see.
fn apply_label_defaults(ctx: &Ctx) {
    for (name, value) in label_defaults(&ctx.root) {
        let set = std::env::var(name).is_ok_and(|v| !v.is_empty());
        let in_env_file = ctx
            .vars
            .env_path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .is_some_and(|t| {
                docker::parse_env_file(&t)
                    .get(name)
                    .is_some_and(|v| !v.is_empty())
            });
        if !set && !in_env_file && ctx.stack.file.variables.contains_key(name) {
            // Single-threaded here: nothing else reads the environment concurrently.
            std::env::set_var(name, value);
        }
    }
}

fn build_images(
    ctx: &Ctx,
    only: &[String],
    no_cache: bool,
    progress: &str,
    dry_run: bool,
) -> Result<()> {
    apply_label_defaults(ctx);
    for image in &ctx.stage.images {
        if !only.is_empty() && !only.contains(&image.key) {
            continue;
        }
        let name = ctx.vars.expand(&image.name);
        let mut c = Command::new("docker");
        c.current_dir(&ctx.root).env("DOCKER_BUILDKIT", "1").args([
            "build",
            "--file",
            &image.dockerfile,
            "--tag",
            &name,
        ]);
        if let Some(t) = &image.target {
            c.args(["--target", t]);
        }
        for (k, v) in &image.args {
            c.arg("--build-arg")
                .arg(format!("{k}={}", ctx.vars.expand(v)));
        }
        if no_cache {
            c.arg("--no-cache");
        }
        c.args(["--progress", progress]).arg(&image.context);
        if dry_run {
            println!("would run: {}", show(&c));
            continue;
        }
        section(&format!(
            "build {} ({}{}) as {name}",
            image.key,
            image.dockerfile,
            image
                .target
                .as_ref()
                .map_or(String::new(), |t| format!(", target {t}"))
        ));
        let timer = Timer::start();
        process::run(c)?;
        let size = image_size(&name).map_or("?".into(), |b| format!("{:.1} MB", b as f64 / 1e6));
        eprintln!("build: {name}: {size}, built in {}", secs(timer.elapsed()));
    }
    Ok(())
}

/// An image's size in bytes, as `docker image inspect` reports it.
pub fn image_size(name: &str) -> Option<u64> {
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Size}}", name])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

// ------------------------------------------------------------------------------------------------
// up

#[derive(clap::Args, Debug)]
#[command(
    about = "Start the stack: secrets, images, containers; wait until all are healthy; print URLs",
    long_about = "Start a stage of the stack with Docker Compose and wait until every service is \
                  healthy (and every one-shot job has finished successfully), then print the URLs \
                  of what it publishes.\n\n\
                  Before starting: checks that Docker, its daemon and Compose work, that the \
                  compose file is fresh, that the published ports are free; creates the missing \
                  secret files (random passwords; derived files such as Berth's database URL); \
                  builds the images (cached; --no-build to skip).\n\n\
                  Profiles: --profile (repeatable), else COMPOSE_PROFILES from the environment or \
                  .env, else deploy/stack.toml's default (cpu). A profile's inclusions are added \
                  (full = cpu + monitoring + proxy); conflicting profiles (cpu and gpu) are refused.",
    after_help = "Exit status:\n  0  every service is healthy\n  \
                  1  Docker unavailable, a port taken, a build failed, or a service did not become \
                  healthy in time (its last log lines are shown)\n  2  bad command line"
)]
pub struct UpArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Enable PROFILE (repeatable): cpu, gpu, monitoring, proxy, full
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// Do not build images first (use what is there)
    #[arg(long)]
    pub no_build: bool,
    /// Seconds to wait for every service to be healthy
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
    /// Print what would be done (secrets, builds, compose commands), change nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub fn up(args: UpArgs) -> Result<ExitCode> {
    let started = Timer::start();
    let ctx = Ctx::load(&args.stage)?;
    let requested = if !args.profiles.is_empty() {
        args.profiles.clone()
    } else if let Some(p) = ctx.vars.get("COMPOSE_PROFILES") {
        p.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    } else {
        ctx.stack.default_profiles()
    };
    let enabled = ctx.stack.profiles(&requested)?;
    if !args.dry_run {
        docker::preflight(true)?;
    }
    let compose = ctx.compose().with_profiles(enabled.iter().cloned());

    let running = if args.dry_run {
        Vec::new()
    } else {
        compose.containers()?
    };
    let taken = docker::taken_ports(&ctx.stage, &enabled, &ctx.vars, &running);
    if let Some(first) = taken.first() {
        bail!("{first}");
    }

    let dir = docker::secrets_dir(&ctx.root, &ctx.stack, &ctx.stage, &ctx.vars);
    for line in docker::ensure_secrets(&dir, &ctx.stack, &ctx.stage, args.dry_run)? {
        if args.dry_run {
            println!("would {line}");
        } else {
            eprintln!("up: {line}");
        }
    }
    missing_bind_sources(&ctx, &enabled)?;

    if !args.no_build {
        let needed: Vec<String> = active_services(&ctx.stage, &enabled)
            .filter_map(|s| s.build.as_ref().map(|b| b.key.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !needed.is_empty() {
            build_images(
                &ctx,
                &needed,
                false,
                if is_ci() { "plain" } else { "auto" },
                args.dry_run,
            )?;
        }
    } else {
        apply_label_defaults(&ctx);
    }

    section(&format!(
        "up: stage {}, project {}, profiles {}",
        ctx.stage.name,
        ctx.project(),
        if enabled.is_empty() {
            "(none)".to_string()
        } else {
            enabled.iter().cloned().collect::<Vec<_>>().join(", ")
        }
    ));
    // `compose up` itself waits for each dependency's condition before starting a dependant.
    let waited = Timer::start();
    let started_up = process::run_or_print(
        compose.command(["up", "--detach", "--no-build", "--remove-orphans"]),
        args.dry_run,
    );
    if let Err(err) = started_up {
        // Say which service failed, with its logs, rather than only that compose did.
        if let Err(why) = wait_healthy(&ctx.stage, &compose, &enabled, Duration::ZERO) {
            bail!("{why}");
        }
        return Err(err);
    }
    if args.dry_run {
        println!(
            "would wait for: {}",
            active_services(&ctx.stage, &enabled)
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(ExitCode::SUCCESS);
    }
    wait_healthy(
        &ctx.stage,
        &compose,
        &enabled,
        Duration::from_secs(args.timeout),
    )?;
    eprintln!(
        "up: every service is healthy ({} from `compose up`, {} in all)",
        secs(waited.elapsed()),
        secs(started.elapsed())
    );
    for line in urls(&ctx, &enabled) {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Bind-mounted host paths of the services to start must exist (compose would create empty
/// directories in their place, and e.g. nginx would then fail for want of a certificate).
fn missing_bind_sources(ctx: &Ctx, enabled: &BTreeSet<String>) -> Result<()> {
    let compose_dir = ctx.root.join(&ctx.stage.file);
    let compose_dir = compose_dir.parent().unwrap_or(&ctx.root);
    for s in active_services(&ctx.stage, enabled) {
        for m in &s.volumes {
            let Some(bind) = &m.get_ref().bind else {
                continue;
            };
            let (path, var) = if bind.contains("${") {
                let var = crate::stack::interp::references(bind)
                    .ok()
                    .and_then(|r| r.first().map(|r| r.name.clone()));
                (
                    docker::normalize(&compose_dir.join(ctx.vars.expand(bind))),
                    var,
                )
            } else {
                (ctx.root.join(bind), None)
            };
            if !path.exists() {
                let hint = var.map_or(String::new(), |v| {
                    format!(" (set {v} in .env to another place)")
                });
                bail!(
                    "service `{}` mounts {}, which does not exist: create it{hint}",
                    s.name,
                    path.display()
                );
            }
        }
    }
    Ok(())
}

fn active_services<'a>(
    stage: &'a ResolvedStage,
    enabled: &'a BTreeSet<String>,
) -> impl Iterator<Item = &'a crate::stack::resolve::ResolvedService> {
    stage
        .services
        .iter()
        .filter(|s| s.active_in.is_empty() || s.active_in.iter().any(|p| enabled.contains(p)))
}

/// What a service's container says about it: done (healthy / finished), waiting, or failed.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Ready(String),
    Waiting(String),
    Failed(String),
}

fn verdict(container: Option<&Container>, oneshot: bool) -> Verdict {
    let Some(c) = container else {
        return Verdict::Waiting("not created yet".into());
    };
    match (c.state.as_str(), oneshot) {
        ("exited", true) if c.exit_code == 0 => Verdict::Ready("finished".into()),
        ("exited", true) => Verdict::Failed(format!("exited with {}", c.exit_code)),
        ("running", true) => Verdict::Waiting("running".into()),
        ("running", false) => match c.health.as_str() {
            "healthy" => Verdict::Ready("healthy".into()),
            "unhealthy" => Verdict::Failed("unhealthy".into()),
            "" => Verdict::Ready("running (no health check)".into()),
            other => Verdict::Waiting(other.into()),
        },
        ("exited" | "dead", false) => Verdict::Failed(format!("{} ({})", c.state, c.exit_code)),
        (other, _) => Verdict::Waiting(other.into()),
    }
}

fn wait_healthy(
    stage: &ResolvedStage,
    compose: &Compose,
    enabled: &BTreeSet<String>,
    timeout: Duration,
) -> Result<()> {
    let services: Vec<_> = active_services(stage, enabled).collect();
    let deadline = Instant::now() + timeout;
    let start = Instant::now();
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let containers = compose.containers()?;
        let mut waiting = Vec::new();
        for s in &services {
            let c = containers.iter().find(|c| c.service == s.name);
            let v = verdict(c, s.oneshot);
            let shown = match &v {
                Verdict::Ready(x) | Verdict::Waiting(x) | Verdict::Failed(x) => x.clone(),
            };
            if last.get(&s.name) != Some(&shown) {
                eprintln!("  {:<14} {shown} ({})", s.name, secs(start.elapsed()));
                last.insert(s.name.clone(), shown.clone());
            }
            match v {
                Verdict::Ready(_) => {}
                Verdict::Waiting(_) => waiting.push(s.name.clone()),
                Verdict::Failed(why) => {
                    show_logs(compose, &s.name);
                    bail!(
                        "service `{}` is {why}: its last log lines are above (`cargo xtask logs {}` for all)",
                        s.name,
                        s.name
                    );
                }
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            for s in &waiting {
                show_logs(compose, s);
            }
            bail!(
                "not healthy after {}s: {} (last log lines above; `cargo xtask health` for the checks)",
                timeout.as_secs(),
                waiting.join(", ")
            );
        }
        thread::sleep(Duration::from_millis(500));
    }
}

fn show_logs(compose: &Compose, service: &str) {
    eprintln!("--- last log lines of {service} ---");
    let _ = compose
        .command(["logs", "--no-color", "--tail", "30", service])
        .stdin(Stdio::null())
        .status();
}

fn urls(ctx: &Ctx, enabled: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for s in active_services(&ctx.stage, enabled) {
        for p in &s.ports {
            let p = p.get_ref();
            let host = ctx.vars.expand(&p.host.0);
            let bind = p
                .bind
                .as_ref()
                .map_or("127.0.0.1".to_string(), |b| ctx.vars.expand(b.get_ref()));
            let shown = match bind.as_str() {
                "0.0.0.0" | "::" => "127.0.0.1".to_string(),
                b if b.contains(':') => format!("[{b}]"),
                b => b.to_string(),
            };
            let what = p.name.clone().unwrap_or_else(|| s.name.clone());
            match &p.path {
                Some(path) => out.push(format!("{what}: {}://{shown}:{host}{path}", p.scheme)),
                None => out.push(format!("{what}: {shown}:{host}")),
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------
// down

#[derive(clap::Args, Debug)]
#[command(
    about = "Stop and remove the stack's containers and networks (--volumes: its data too)",
    long_about = "Stop and remove every container (of every profile) and network of the stage's \
                  compose project. With --volumes, also delete its named volumes, which hold all \
                  of its data (database, uploads, models): asks first, unless --yes; refuses \
                  without a terminal to ask on. Afterwards, checks that nothing of the project is \
                  left and says so.",
    after_help = "Exit status:\n  0  removed\n  1  Docker unavailable, not confirmed, or something was left\n  2  bad command line"
)]
pub struct DownArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Also delete the named volumes: all of the stack's data
    #[arg(long)]
    pub volumes: bool,
    /// Do not ask before deleting volumes
    #[arg(long)]
    pub yes: bool,
    /// Print what would be removed, remove nothing
    #[arg(long)]
    pub dry_run: bool,
}

fn project_objects(kind: &str, project: &str) -> Result<Vec<String>> {
    let filter = format!("label=com.docker.compose.project={project}");
    let mut c = Command::new("docker");
    match kind {
        "container" => c.args(["ps", "--all", "--filter", &filter, "--format", "{{.Names}}"]),
        "network" => c.args([
            "network",
            "ls",
            "--filter",
            &filter,
            "--format",
            "{{.Name}}",
        ]),
        _ => c.args(["volume", "ls", "--filter", &filter, "--format", "{{.Name}}"]),
    };
    let out = c
        .output()
        .with_context(|| format!("cannot run {}", show(&c)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed: {}",
            show(&c),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect())
}

pub fn down(args: DownArgs) -> Result<ExitCode> {
    let ctx = Ctx::load(&args.stage)?;
    docker::preflight(true)?;
    let project = ctx.project();
    let volumes = if args.volumes {
        project_objects("volume", &project)?
    } else {
        Vec::new()
    };
    if args.volumes && !volumes.is_empty() && !args.yes && !args.dry_run {
        if !std::io::stdin().is_terminal() {
            bail!(
                "refusing to delete the volumes of project {project} ({}) without confirmation: \
                 rerun with --yes",
                volumes.join(", ")
            );
        }
        eprint!(
            "This deletes all data of project {project}: volumes {}.\nType the project name to confirm: ",
            volumes.join(", ")
        );
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != project {
            bail!("not confirmed; nothing was removed");
        }
    }
    let mut down = vec!["down", "--remove-orphans"];
    if args.volumes {
        down.push("--volumes");
    }
    process::run_or_print(ctx.compose_all().command(&down), args.dry_run)?;
    if args.dry_run {
        if !volumes.is_empty() {
            println!("would delete volumes: {}", volumes.join(", "));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut left = Vec::new();
    for kind in ["container", "network"]
        .into_iter()
        .chain(args.volumes.then_some("volume"))
    {
        for name in project_objects(kind, &project)? {
            left.push(format!("{kind} {name}"));
        }
    }
    if !left.is_empty() {
        bail!("left behind in project {project}: {}", left.join(", "));
    }
    let kept = if args.volumes {
        String::new()
    } else {
        let v = project_objects("volume", &project)?;
        if v.is_empty() {
            String::new()
        } else {
            format!(
                " (volumes kept: {}; `--volumes` deletes them)",
                v.join(", ")
            )
        }
    };
    eprintln!("down: nothing of project {project} is running{kept}");
    Ok(ExitCode::SUCCESS)
}

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

// ------------------------------------------------------------------------------------------------
// dev --stack

/// For `cargo xtask dev --stack`: the dev stage's services that are neither built here nor
/// depend on what is (PostgreSQL, Redis, Ollama and its model pull) brought up healthy and
/// published on 127.0.0.1. Returns the settings that point a natively run Berth at them: the
/// app's environment and database URL from the stack, with `SERVICE:PORT` replaced by the
/// published address.
pub fn dev_stack(dry_run: bool) -> Result<Vec<(String, String)>> {
    let ctx = Ctx::load(&StageArgs {
        stage: "dev".into(),
        project_name: None,
    })?;
    let requested = match ctx.vars.get("COMPOSE_PROFILES") {
        Some(p) => p
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        None => ctx.stack.default_profiles(),
    };
    let enabled = ctx.stack.profiles(&requested)?;
    let built: BTreeSet<&str> = ctx
        .stage
        .services
        .iter()
        .filter(|s| s.build.is_some())
        .map(|s| s.name.as_str())
        .collect();
    let services: Vec<_> = active_services(&ctx.stage, &enabled)
        .filter(|s| {
            s.build.is_none()
                && !s
                    .depends_on
                    .iter()
                    .any(|d| built.contains(d.service.as_str()))
        })
        .collect();
    let names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
    let names_set: BTreeSet<String> = names.iter().cloned().collect();

    // SERVICE:PORT → 127.0.0.1:PUBLISHED for what those services publish.
    let mut published = BTreeMap::new();
    for s in &services {
        for p in &s.ports {
            let p = p.get_ref();
            published.insert(
                format!("{}:{}", s.name, p.container),
                format!("127.0.0.1:{}", ctx.vars.expand(&p.host.0)),
            );
        }
    }
    let rewrite = |value: &str| {
        let mut v = value.to_string();
        for (inside, outside) in &published {
            v = v.replace(&format!("//{inside}"), &format!("//{outside}"));
            v = v.replace(&format!("@{inside}"), &format!("@{outside}"));
        }
        v
    };

    if !dry_run {
        docker::preflight(true)?;
    }
    let compose = ctx.compose().with_profiles(enabled.iter().cloned());
    let running = if dry_run {
        Vec::new()
    } else {
        compose.containers()?
    };
    let mut only = ctx.stage.clone();
    only.services.retain(|s| names_set.contains(&s.name));
    if let Some(first) = docker::taken_ports(&only, &enabled, &ctx.vars, &running).first() {
        bail!("{first}");
    }
    let dir = docker::secrets_dir(&ctx.root, &ctx.stack, &ctx.stage, &ctx.vars);
    for line in docker::ensure_secrets(&dir, &ctx.stack, &ctx.stage, dry_run)? {
        if dry_run {
            println!("  secret: would {line}");
        } else {
            eprintln!("dev: {line}");
        }
    }
    section(&format!(
        "dev --stack: {} in containers (project {})",
        names.join(", "),
        ctx.project()
    ));
    let mut up = vec!["up".to_string(), "--detach".into(), "--no-build".into()];
    up.extend(names.iter().cloned());
    process::run_or_print(compose.command(&up), dry_run)?;
    if !dry_run {
        wait_healthy(&only, &compose, &enabled, Duration::from_secs(600))?;
        eprintln!("dev: they keep running after Ctrl-C; `cargo xtask down --stage dev` stops them");
    }

    // The app's settings, pointed at the published ports.
    let mut env = Vec::new();
    if let Some(app) = ctx.stage.services.iter().find(|s| s.build.is_some()) {
        for (k, v) in &app.environment {
            let value = ctx.vars.expand(v);
            let rewritten = rewrite(&value);
            let model = k.ends_with("_MODEL");
            if rewritten != value || model {
                env.push((k.clone(), rewritten));
            }
        }
        // A settings file made from a template (the database URL with its password).
        for name in &app.secrets {
            let Some(secret) = ctx.stack.file.secrets.get(name.as_str()) else {
                continue;
            };
            if secret.template.is_none() {
                continue;
            }
            let path = dir.join(secret.file.get_ref());
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            if let Ok(table) = text.parse::<toml::Table>() {
                for (key, value) in table {
                    if let Some(v) = value.as_str() {
                        env.push((format!("BERTH_{}", key.to_uppercase()), rewrite(v)));
                    }
                }
            }
        }
    }
    Ok(env)
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
