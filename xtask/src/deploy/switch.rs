//! The deploy itself: preflight, lock, images, files, backup, the health-gated blue/green
//! switch behind the proxy, the record. Also `status`, `logs --target` and the rollback choice.
//!
//! On the target, under `<dir>`:
//!   docker/compose.yaml      the stage's generated compose file, as in the repository
//!   docker/.env              the target's variables (no secrets)
//!   docker/nginx/nginx.conf  the repository's nginx.conf, its upstream pointed at the live slot
//!   secrets/                 made there on the first deploy (0700), never sent back
//!   backups/                 pre-deploy-<version>-<time>.dump (pg_dump -Fc)
//!   current                  "<slot> <version>" of the release the proxy sends traffic to
//!   deploy.log               one JSON line per deploy or rollback
//! The app runs as `<project>-app-blue` or `<project>-app-green` (`docker compose run` of the
//! app service: its settings, secrets and hardening, no published port); the proxy reaches it
//! by container name.

mod files;
mod migrations;
mod record;

use self::files::*;
pub use self::record::*;

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use super::{
    lock::Lock,
    ship::{self, Shipped},
    ssh::quote,
    Target,
};
use crate::{
    util::docker::random_password,
    util::time::{now, stamp},
    util::{secs, section, warn, Timer},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Deploy,
    Rollback,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Deploy => "deploy",
            Action::Rollback => "rollback",
        }
    }
}

pub struct Plan {
    pub version: String,
    pub action: Action,
    pub dry_run: bool,
    pub wait_lock: u64,
    pub ready_timeout: u64,
    /// Apply contract migrations even while the previous release serves.
    pub allow_contract: bool,
}

/// The upstream line of docker/nginx/nginx.conf that the switch rewrites.
const UPSTREAM_LINE: &str = "server app:8080;";
const APP_SERVICE: &str = "app";
const PROXY_SERVICE: &str = "proxy";
const READY_URL: &str = "http://127.0.0.1:8080/ready";
/// How long the old release keeps running after the switch, for requests already sent to it.
const DRAIN: Duration = Duration::from_secs(2);

/// Paths and commands on the target.
struct Layout<'a> {
    t: &'a Target,
}

impl Layout<'_> {
    fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.t.dir)
    }
    fn project(&self) -> &str {
        &self.t.stage.project
    }
    fn container(&self, slot: &str) -> String {
        format!("{}-{APP_SERVICE}-{slot}", self.project())
    }
    /// `docker compose` on the target's files, with `BERTH_IMAGE` set for `image`.
    fn compose(&self, image: &str, args: &str) -> String {
        let mut profiles = String::new();
        for p in &self.t.profiles {
            profiles.push_str(&format!(" --profile {}", quote(p)));
        }
        format!(
            "cd {docker} && BERTH_IMAGE={image} docker compose --project-name {p} --file compose.yaml --env-file .env{profiles} {args}",
            docker = quote(&self.path("docker")),
            image = quote(image),
            p = quote(self.project()),
        )
    }
}

/// What is serving now: (slot, version).
fn current(t: &Target) -> Result<Option<(String, String)>> {
    let l = Layout { t };
    let out = t.remote.must(
        "reading the current release",
        &format!("cat {} 2>/dev/null || :", quote(&l.path("current"))),
    )?;
    Ok(out
        .split_once(' ')
        .map(|(slot, v)| (slot.trim().to_string(), v.trim().to_string())))
}

fn app_image(t: &Target, version: &str) -> String {
    let default = t.expand("${BERTH_IMAGE}");
    let repo = match default.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo.to_string(),
        _ => default.clone(),
    };
    format!("{repo}:{version}")
}

/// The services the target runs (the stage's, with its profiles).
fn services(t: &Target) -> Vec<&crate::stack::resolve::ResolvedService> {
    t.stage
        .services
        .iter()
        .filter(|s| s.profiles.is_empty() || s.profiles.iter().any(|p| t.profiles.contains(p)))
        .filter(|s| !s.oneshot)
        .collect()
}

/// Read-only checks: the target answers, Docker and Compose are there, the directory is usable.
fn preflight(t: &Target) -> Result<()> {
    let script = format!(
        "command -v docker >/dev/null 2>&1 || exit 10; \
         docker info --format '{{{{.ServerVersion}}}}' >/dev/null 2>&1 || exit 11; \
         docker compose version >/dev/null 2>&1 || exit 12; \
         command -v flock >/dev/null 2>&1 || exit 13; \
         if [ -e {d} ]; then [ -d {d} ] && [ -w {d} ] || exit 14; else [ -w \"$(dirname {d})\" ] || exit 14; fi; \
         docker info --format '{{{{.ServerVersion}}}}'",
        d = quote(&t.dir)
    );
    let out = t.remote.run(&script, None)?;
    let who = format!("target `{}` ({})", t.name, t.remote.destination());
    match out.status.code() {
        Some(0) => {
            println!("deploy: {who}: Docker {}", out.stdout.trim());
            Ok(())
        }
        Some(10) => bail!("Docker is missing on {who}: install Docker Engine and the compose plugin there (https://docs.docker.com/engine/install/)"),
        Some(11) => bail!("Docker does not answer on {who}: start it (systemctl start docker) and make sure user `{}` may use it (group docker)", t.remote.user),
        Some(12) => bail!("Docker Compose v2 is missing on {who}: install the compose plugin (`docker compose version` must work)"),
        Some(13) => bail!("`flock` is missing on {who}: install util-linux"),
        Some(14) => bail!("{who}: cannot create or write {}: create it and give it to user `{}`", t.dir, t.remote.user),
        _ => bail!("preflight on {who} failed ({}): {}", out.status, out.stderr.trim()),
    }
}

pub fn run(t: &Target, plan: Plan) -> Result<ExitCode> {
    let timer = Timer::start();
    let l = Layout { t };
    let image = app_image(t, &plan.version);
    section(&format!(
        "{} {} to target `{}` ({}:{})",
        plan.action.name(),
        plan.version,
        t.name,
        t.remote.destination(),
        t.dir
    ));
    preflight(t)?;
    let lock = if plan.dry_run {
        None
    } else {
        println!("deploy: taking the deploy lock");
        Some(Lock::acquire(&t.remote, &t.dir, &who(), plan.wait_lock)?)
    };
    let before = current(t)?;
    match &before {
        Some((slot, v)) => println!("deploy: serving now: {v} ({})", l.container(slot)),
        None => println!("deploy: nothing deployed yet"),
    }

    // Images: the release and every other service's, unless the target has them.
    let mut images = vec![ship::local_image(&image)?];
    for s in services(t) {
        if s.name != APP_SERVICE {
            images.push(ship::local_image(&t.expand(&s.image))?);
        }
    }
    let state = ship::remote_state(&t.remote, &images)?;
    let mut to_send = 0u64;
    let mut shipped = Vec::new();
    let mut sending: Vec<&str> = Vec::new();
    for (img, (tagged, by_id)) in images.iter().zip(&state) {
        let what = if *tagged {
            Shipped::Present
        } else if *by_id || sending.contains(&img.id.as_str()) {
            Shipped::Tagged
        } else {
            to_send += img.size;
            sending.push(&img.id);
            Shipped::Sent(img.size)
        };
        shipped.push((img, what));
    }
    if to_send > 0 {
        let (dir, free) = ship::remote_free_bytes(&t.remote)?;
        // Layers are stored unpacked next to the streamed archive: ask for room for both.
        let need = to_send + to_send / 2 + 256 * 1024 * 1024;
        if free < need {
            bail!(
                "the disk of target `{}` is too small for the images: {} needed at {dir}, {} free. \
                 Free space there (docker image prune) or grow the disk; nothing was changed",
                t.name,
                ship::human(need),
                ship::human(free)
            );
        }
    }
    let ship_timer = Timer::start();
    let (mut sent, mut skipped) = (0u64, 0u64);
    for (img, what) in &shipped {
        match what {
            Shipped::Present => {
                skipped += img.size;
                println!("deploy: {} already on the target", img.name);
            }
            Shipped::Tagged => {
                skipped += img.size;
                println!(
                    "deploy: {} already on the target under another tag: tagging it",
                    img.name
                );
                if !plan.dry_run {
                    ship::tag(&t.remote, img)?;
                }
            }
            Shipped::Sent(size) => {
                sent += size;
                if plan.dry_run {
                    println!("deploy: would ship {} ({})", img.name, ship::human(*size));
                } else {
                    ship::send(&t.remote, img)?;
                }
            }
        }
    }
    println!(
        "deploy: images: {} {}, {} already there ({})",
        ship::human(sent),
        if plan.dry_run { "to ship" } else { "shipped" },
        ship::human(skipped),
        secs(ship_timer.elapsed())
    );

    let live_slot = before.as_ref().map(|(s, _)| s.as_str());
    let new_slot = if live_slot == Some("blue") {
        "green"
    } else {
        "blue"
    };
    let new_container = l.container(new_slot);
    // The migrations: what the release carries against what the database has, read before
    // anything changes, so a refused contract migration leaves the target as it was.
    // A rollback goes back to a release whose migrations the database has already.
    let release_migrations = match plan.action {
        Action::Deploy => migrations::release_migrations(&image)?,
        Action::Rollback => Vec::new(),
    };
    let applied = match (&before, release_migrations.is_empty()) {
        (Some(_), false) => migrations::applied_versions(t, &l)?,
        _ => Vec::new(),
    };
    let pending = migrations::plan(
        &release_migrations,
        &applied,
        before.as_ref().map(|(_, v)| v.as_str()),
        plan.allow_contract,
    )?;
    if pending.is_empty() {
        println!("deploy: the database has every migration of {image}");
    }
    if plan.dry_run {
        for m in &pending {
            println!(
                "deploy: would apply migration {} {} ({})",
                m.version, m.description, m.kind
            );
        }
        println!(
            "deploy: would upload docker/compose.yaml, docker/.env and nginx.conf to {}",
            t.dir
        );
        println!("deploy: would create missing secrets in {}/secrets", t.dir);
        if before.is_some() {
            println!("deploy: would back up the database to {}/backups", t.dir);
        }
        println!("deploy: would start {new_container} from {image}, wait until {READY_URL} answers, switch the proxy to it");
        if let Some(slot) = live_slot {
            println!("deploy: would then stop {}", l.container(slot));
        }
        println!("deploy: dry run, nothing changed");
        return Ok(ExitCode::SUCCESS);
    }

    upload_files(t, &l, live_slot)?;
    ensure_secrets(t, &l)?;
    println!("deploy: starting the data services");
    t.remote.must(
        "starting the data services",
        &l.compose(
            &image,
            &format!(
                "up --detach --no-deps --wait {}",
                data_services(t).join(" ")
            ),
        ),
    )?;
    let backup = if before.is_some() {
        Some(backup(t, &l, &plan.version)?)
    } else {
        None
    };

    if !pending.is_empty() {
        migrations::apply(t, &l, &image, plan.allow_contract)?;
    }

    let gate_timer = Timer::start();
    let result = start_and_gate(t, &l, &image, &plan, new_slot);
    let outcome = match result {
        Ok(()) => {
            let gate = gate_timer.elapsed();
            println!(
                "deploy: {new_container} is ready after {}: switching the proxy",
                secs(gate)
            );
            switch_proxy(t, &l, &image, new_slot)?;
            t.remote.write_file(
                &l.path("current"),
                format!("{new_slot} {}\n", plan.version).as_bytes(),
                "0644",
            )?;
            if let Some(old) = live_slot {
                std::thread::sleep(DRAIN);
                let old = l.container(old);
                println!("deploy: stopping the previous release ({old})");
                // The switch is done and recorded below even if this fails: say so, go on.
                if let Err(e) = t.remote.must(
                    "stopping the previous release",
                    &format!(
                        "docker stop --time 30 {o} >/dev/null && docker rm {o} >/dev/null",
                        o = quote(&old)
                    ),
                ) {
                    warn(&format!("{e:#}; remove {old} by hand"));
                }
            }
            Outcome::Ok
        }
        Err(why) => {
            warn(&format!("{new_container} did not become ready: {why:#}"));
            let logs = t
                .remote
                .run(
                    &format!("docker logs --tail 20 {} 2>&1", quote(&new_container)),
                    None,
                )
                .map(|o| o.stdout)
                .unwrap_or_default();
            if !logs.trim().is_empty() {
                eprintln!(
                    "--- last lines of {new_container}'s log ---\n{}",
                    logs.trim_end()
                );
            }
            let _ = t.remote.run(
                &format!(
                    "docker rm --force {} >/dev/null 2>&1",
                    quote(&new_container)
                ),
                None,
            );
            Outcome::RolledBack(format!("{why:#}"))
        }
    };
    let record = Record {
        action: plan.action,
        version: &plan.version,
        image: &image,
        from: before.as_ref().map(|(_, v)| v.as_str()),
        outcome: &outcome,
        seconds: timer.elapsed().as_secs_f64(),
        sent,
        backup: backup.as_deref(),
    };
    append_log(t, &l, &record)?;
    drop(lock);
    match outcome {
        Outcome::Ok => {
            println!(
                "deploy: {} {} on target `{}` done in {} ({} shipped)",
                plan.action.name(),
                plan.version,
                t.name,
                secs(timer.elapsed()),
                ship::human(sent)
            );
            Ok(ExitCode::SUCCESS)
        }
        Outcome::RolledBack(why) => {
            let still = match &before {
                Some((_, v)) => format!("rolled back automatically: {v} is still serving"),
                None => "nothing was serving before, and nothing is now".to_string(),
            };
            bail!(
                "{} {} on target `{}` failed its health gate ({why}); {still}. Nothing was switched. \
                 See `cargo xtask logs --target {}` and the log lines above",
                plan.action.name(),
                plan.version,
                t.name,
                t.name
            )
        }
    }
}

enum Outcome {
    Ok,
    RolledBack(String),
}

fn data_services(t: &Target) -> Vec<String> {
    services(t)
        .into_iter()
        .filter(|s| s.name != APP_SERVICE && s.name != PROXY_SERVICE)
        .map(|s| s.name.clone())
        .collect()
}

/// The `db` service's PostgreSQL user and database, as its image's entrypoint reads them.
fn database_user_and_name(t: &Target) -> (String, String) {
    let db = t.stage.services.iter().find(|s| s.name == "db");
    let user = db
        .and_then(|s| s.environment.get("POSTGRES_USER"))
        .cloned()
        .unwrap_or_else(|| "postgres".into());
    let name = db
        .and_then(|s| s.environment.get("POSTGRES_DB"))
        .cloned()
        .unwrap_or_else(|| user.clone());
    (user, name)
}

/// `pg_dump -Fc` inside the db container into backups/, under a temporary name until complete.
fn backup(t: &Target, l: &Layout, version: &str) -> Result<String> {
    let (user, name) = database_user_and_name(t);
    let file = l.path(&format!(
        "backups/pre-deploy-{version}-{}.dump",
        stamp(now()).replace(':', "")
    ));
    let tmp = format!("{file}.partial");
    println!("deploy: backing up the database");
    let script = format!(
        "set -e; {dump} > {tmp}; sync {tmp} 2>/dev/null || :; mv {tmp} {file}; wc -c < {file}",
        dump = l.compose(
            "unused",
            &format!(
                "exec -T db pg_dump --format=custom --username={} {}",
                quote(&user),
                quote(&name)
            )
        ),
        tmp = quote(&tmp),
        file = quote(&file),
    );
    let out = t.remote.run(&script, None)?;
    if !out.ok() {
        let _ = t.remote.run(&format!("rm -f {}", quote(&tmp)), None);
        bail!(
            "the pre-deploy backup failed, so nothing was deployed: {}",
            out.stderr.trim()
        );
    }
    let bytes: u64 = out.stdout.trim().parse().unwrap_or(0);
    println!("deploy: backup {file} ({:.1} KiB)", bytes as f64 / 1024.0);
    Ok(file)
}

/// Starts the release in `slot` and waits until it is ready; Err says why it is not.
fn start_and_gate(t: &Target, l: &Layout, image: &str, plan: &Plan, slot: &str) -> Result<()> {
    let name = l.container(slot);
    println!("deploy: starting {name} from {image} (it applies pending migrations)");
    t.remote.must(
        "starting the new release",
        &format!(
            "docker rm --force {n} >/dev/null 2>&1 || :; {run} >/dev/null && docker update --restart unless-stopped {n} >/dev/null",
            n = quote(&name),
            run = l.compose(
                image,
                &format!(
                    "run --detach --no-deps --name {n} --label org.berth.deploy.version={v} --label org.berth.deploy.slot={slot} {APP_SERVICE}",
                    n = quote(&name),
                    v = quote(&plan.version)
                )
            ),
        ),
    )?;
    let deadline = Instant::now() + Duration::from_secs(plan.ready_timeout);
    let probe = format!(
        "s=$(docker inspect --format '{{{{.State.Status}}}} {{{{.State.ExitCode}}}}' {n}) || exit 4; \
         case \"$s\" in running*) ;; *) echo \"$s\"; exit 3;; esac; \
         docker exec {n} berth healthcheck --url {READY_URL} 2>&1",
        n = quote(&name)
    );
    let mut last: String;
    loop {
        let out = t.remote.run(&probe, None)?;
        match out.status.code() {
            Some(0) => return Ok(()),
            Some(3) => bail!(
                "the new release stopped before it was ready (container {}): a failed migration \
                 or a bad setting; its log is below",
                out.stdout.trim()
            ),
            Some(4) => bail!("the new release's container is gone"),
            _ => last = format!("{}{}", out.stdout.trim(), out.stderr.trim()),
        }
        if Instant::now() > deadline {
            bail!(
                "not ready after {} s (last check: {last})",
                plan.ready_timeout
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Points the proxy at `slot`: nginx.conf rewritten in place, checked, then a graceful reload
/// (new workers take new requests, old ones finish theirs). The first time, starts the proxy.
fn switch_proxy(t: &Target, l: &Layout, image: &str, slot: &str) -> Result<()> {
    let conf = nginx_conf(t, &l.container(slot))?;
    let running = t.remote.run(
        &l.compose(
            image,
            &format!("ps --status running --quiet {PROXY_SERVICE}"),
        ),
        None,
    )?;
    let path = l.path("docker/nginx/nginx.conf");
    if running.ok() && !running.stdout.trim().is_empty() {
        // nginx reads its file only when told to reload: the new one is checked first (`nginx
        // -t`, which also resolves the new upstream) and the old one put back if it fails.
        t.remote
            .write_file(&format!("{path}.next"), conf.as_bytes(), "0644")?;
        t.remote.must(
            "switching the proxy",
            &format!(
                "cp {p} {prev} && cat {n} > {p} && rm -f {n} && \
                 if {test} >&2; then {reload}; else cat {prev} > {p}; echo 'the new proxy configuration is invalid; the old one is back' >&2; exit 1; fi",
                n = quote(&format!("{path}.next")),
                p = quote(&path),
                prev = quote(&format!("{path}.prev")),
                test = l.compose(image, &format!("exec -T {PROXY_SERVICE} nginx -t -q")),
                reload = l.compose(image, &format!("exec -T {PROXY_SERVICE} nginx -s reload"))
            ),
        )?;
    } else {
        t.remote.overwrite(&path, conf.as_bytes())?;
        println!("deploy: starting the proxy");
        t.remote.must(
            "starting the proxy",
            &l.compose(
                image,
                &format!("up --detach --no-deps --wait {PROXY_SERVICE}"),
            ),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
