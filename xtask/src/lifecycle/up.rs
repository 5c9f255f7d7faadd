//! `cargo xtask up`: secrets, images, the stack started and waited on until it is healthy.

use super::*;

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
pub(super) fn missing_bind_sources(ctx: &Ctx, enabled: &BTreeSet<String>) -> Result<()> {
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

pub(super) fn active_services<'a>(
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
pub(super) enum Verdict {
    Ready(String),
    Waiting(String),
    Failed(String),
}

pub(super) fn verdict(container: Option<&Container>, oneshot: bool) -> Verdict {
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

pub(super) fn wait_healthy(
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

pub(super) fn show_logs(compose: &Compose, service: &str) {
    eprintln!("--- last log lines of {service} ---");
    let _ = compose
        .command(["logs", "--no-color", "--tail", "30", service])
        .stdin(Stdio::null())
        .status();
}

pub(super) fn urls(ctx: &Ctx, enabled: &BTreeSet<String>) -> Vec<String> {
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
