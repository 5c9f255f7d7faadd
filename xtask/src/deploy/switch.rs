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

use std::{
    process::ExitCode,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
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
    if plan.dry_run {
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

/// The compose file, .env and nginx.conf (pointing at the live slot: unchanged traffic).
fn upload_files(t: &Target, l: &Layout, live_slot: Option<&str>) -> Result<()> {
    println!("deploy: uploading the compose file and settings");
    let compose = t
        .stack
        .generate()
        .into_iter()
        .find(|(path, _)| *path == t.stage.file)
        .map(|(_, content)| content)
        .context("the stage's compose file is not generated")?;
    t.remote.must(
        "creating the deployment directories",
        &format!(
            "mkdir -p {d}/docker/nginx {d}/backups && mkdir -p -m 0700 {d}/secrets",
            d = quote(&t.dir)
        ),
    )?;
    t.remote
        .write_file(&l.path("docker/compose.yaml"), compose.as_bytes(), "0644")?;
    let mut env =
        String::from("# Written by `cargo xtask deploy` from deploy/stack.toml; no secrets.\n");
    for (k, v) in &t.vars {
        if k != "BERTH_IMAGE" {
            env.push_str(&format!("{k}={}\n", quote(v)));
        }
    }
    t.remote
        .write_file(&l.path("docker/.env"), env.as_bytes(), "0644")?;
    if let Some(slot) = live_slot {
        t.remote.overwrite(
            &l.path("docker/nginx/nginx.conf"),
            nginx_conf(t, &l.container(slot))?.as_bytes(),
        )?;
    }
    Ok(())
}

/// The repository's nginx.conf with its upstream set to `container`.
fn nginx_conf(t: &Target, container: &str) -> Result<String> {
    let path = t.root.join("docker/nginx/nginx.conf");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    if text.matches(UPSTREAM_LINE).count() != 1 {
        bail!(
            "{} must contain `{UPSTREAM_LINE}` exactly once: deploy points that upstream at the live release",
            path.display()
        );
    }
    Ok(text.replace(UPSTREAM_LINE, &format!("server {container}:8080;")))
}

/// Missing secrets are made on the target, by the stack file's rules (as `cargo xtask up` does):
/// generated ones from this machine's CSPRNG, sent over SSH's stdin, never printed; templates
/// filled from them. Every secret file then gets the owner and mode `cargo xtask up` gives it
/// (see `docker::secret_access`). The proxy's TLS pair is self-signed when missing (replace it
/// with yours).
fn ensure_secrets(t: &Target, l: &Layout) -> Result<()> {
    let dir = l.path("secrets");
    let mut values = Vec::new();
    // Files made now: their mode is set below without a line of its own.
    let mut made = Vec::new();
    for (name, secret) in &t.stack.file.secrets {
        if secret.generate.is_none() {
            continue;
        }
        let path = format!("{dir}/{}", secret.file.get_ref());
        // Exit 10: missing. Any other failure (unreadable) must not lead to a new password.
        let out = t.remote.run(
            &format!("[ -e {p} ] || exit 10; cat {p}", p = quote(&path)),
            None,
        )?;
        let value = if out.ok() {
            out.stdout.trim().to_string()
        } else if out.status.code() == Some(10) {
            println!(
                "deploy: generating secret {} on the target",
                secret.file.get_ref()
            );
            let v = random_password(32)?;
            t.remote.write_file(&path, v.as_bytes(), "0600")?;
            made.push(path.clone());
            v
        } else {
            bail!(
                "cannot read secret {path} on target `{}` ({}): deploy as the user that made it \
                 (or root)",
                t.name,
                out.stderr.trim()
            );
        };
        values.push((name.get_ref().clone(), value));
    }
    for (name, secret) in &t.stack.file.secrets {
        let path = format!("{dir}/{}", secret.file.get_ref());
        let exists = t
            .remote
            .run(&format!("test -f {}", quote(&path)), None)?
            .ok();
        if exists {
            continue;
        }
        match &secret.template {
            Some(template) => {
                let mut content = template.get_ref().clone();
                for (k, v) in &values {
                    content = content.replace(&format!("{{{k}}}"), v);
                }
                println!(
                    "deploy: deriving secret {} on the target",
                    secret.file.get_ref()
                );
                t.remote
                    .write_file(&path, format!("{content}\n").as_bytes(), "0600")?;
                made.push(path.clone());
            }
            None if secret.generate.is_none() => bail!(
                "secret `{}` is missing on target `{}`: put {} in {dir} ({})",
                name.get_ref(),
                t.name,
                secret.file.get_ref(),
                secret.description
            ),
            None => {}
        }
    }
    secret_modes(t, &dir, &made)?;
    if t.profiles.iter().any(|p| p == PROXY_SERVICE) {
        let tls = t.expand("${BERTH_TLS_DIR}");
        let tls = if tls.starts_with('/') {
            tls
        } else {
            crate::util::docker::normalize(std::path::Path::new(&l.path(&format!("docker/{tls}"))))
                .display()
                .to_string()
        };
        let script = format!(
            "set -e; [ -f {d}/fullchain.pem ] && [ -f {d}/privkey.pem ] && exit 0; \
             command -v openssl >/dev/null || {{ echo 'no TLS certificate in {d} and no openssl to make one' >&2; exit 3; }}; \
             mkdir -p {d}; cd {d}; umask 077; \
             openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj /CN={h} -keyout privkey.pem.tmp -out fullchain.pem.tmp 2>/dev/null; \
             chmod 0644 privkey.pem.tmp fullchain.pem.tmp; mv privkey.pem.tmp privkey.pem; mv fullchain.pem.tmp fullchain.pem; echo made",
            d = quote(&tls),
            h = quote(&t.remote.host)
        );
        let out = t
            .remote
            .must("preparing the proxy's TLS certificate", &script)?;
        if out.trim() == "made" {
            warn(&format!(
                "made a self-signed TLS certificate in {tls} on the target: replace fullchain.pem \
                 and privkey.pem with your own"
            ));
        }
    }
    Ok(())
}

/// Owner and mode of every secret file on the target, by the same rule as on this machine:
/// 0600 owned by the user of the services that read it when the SSH user is root; otherwise
/// 0644 (only the 0700 directory protects them), said once when files were made or changed.
fn secret_modes(t: &Target, dir: &str, made: &[String]) -> Result<()> {
    let script = secret_modes_script(&t.stack, &t.stage, dir);
    let out = t
        .remote
        .must("setting the secret files' owners and modes", &script)?;
    let mut changed = !made.is_empty();
    let mut loose = false;
    for line in out.lines() {
        if line == "loose" {
            loose = true;
        } else if !line.trim().is_empty()
            && !made.iter().any(|m| line.starts_with(&format!("{m}: ")))
        {
            println!("deploy: secret {line}");
            changed = true;
        }
    }
    if loose && changed {
        println!(
            "deploy: the secret files on the target are 0644, protected only by {dir} (0700): \
             deploy as root (`user = \"root\"` in the target) for 0600 files owned by each \
             service's user"
        );
    }
    Ok(())
}

/// The shell script behind [`secret_modes`]: for each secret file that exists, the owner and
/// mode for the user running it; prints `PATH: MODE UID:GID (was …)` per change, and `loose`
/// when files stay 0644 because that user is not root.
fn secret_modes_script(
    stack: &crate::stack::Stack,
    stage: &crate::stack::resolve::ResolvedStage,
    dir: &str,
) -> String {
    use crate::util::docker::{secret_access, SecretAccess};
    let mut script = String::from("set -e; me=$(id -u); loose=; ");
    for (name, secret) in &stack.file.secrets {
        let path = quote(&format!("{dir}/{}", secret.file.get_ref()));
        // as root / as the reader's own uid / as anyone else: "mode owner" (owner may be empty).
        let (root, own_uid, other) = match secret_access(stage, name.get_ref()) {
            SecretAccess::Unmounted => ("600 ".to_string(), None, "600"),
            SecretAccess::Owner { uid, gid } => (
                format!(
                    "600 {uid}{}",
                    gid.map_or(String::new(), |g| format!(":{g}"))
                ),
                Some(uid),
                "644",
            ),
            SecretAccess::Group { gid } => (format!("640 0:{gid}"), None, "644"),
            SecretAccess::World(_) => ("644 ".to_string(), None, "644"),
        };
        let own = own_uid.map_or(String::new(), |u| {
            format!("elif [ \"$me\" = {u} ]; then want='600 '; ")
        });
        script.push_str(&format!(
            "f={path}; if [ -f \"$f\" ]; then \
             if [ \"$me\" = 0 ]; then want='{root}'; {own}else want='{other} '; fi; \
             m=${{want%% *}}; o=${{want#* }}; before=$(stat -c '%a %u:%g' \"$f\"); \
             [ -z \"$o\" ] || chown \"$o\" \"$f\"; chmod \"$m\" \"$f\"; \
             after=$(stat -c '%a %u:%g' \"$f\"); \
             [ \"$before\" = \"$after\" ] || echo \"$f: $after (was $before)\"; \
             [ \"$me\" = 0 ] || [ \"$m\" = 600 ] || loose=1; fi; "
        ));
    }
    script.push_str("[ -z \"$loose\" ] || echo loose");
    script
}

/// `pg_dump -Fc` inside the db container into backups/, under a temporary name until complete.
fn backup(t: &Target, l: &Layout, version: &str) -> Result<String> {
    let db = t.stage.services.iter().find(|s| s.name == "db");
    let user = db
        .and_then(|s| s.environment.get("POSTGRES_USER"))
        .cloned()
        .unwrap_or_else(|| "postgres".into());
    let name = db
        .and_then(|s| s.environment.get("POSTGRES_DB"))
        .cloned()
        .unwrap_or_else(|| user.clone());
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

struct Record<'a> {
    action: Action,
    version: &'a str,
    image: &'a str,
    from: Option<&'a str>,
    outcome: &'a Outcome,
    seconds: f64,
    sent: u64,
    backup: Option<&'a str>,
}

fn append_log(t: &Target, l: &Layout, r: &Record) -> Result<()> {
    let (outcome, detail) = match r.outcome {
        Outcome::Ok => ("ok", String::new()),
        Outcome::RolledBack(why) => ("rolled-back", why.clone()),
    };
    let line = serde_json::json!({
        "at": stamp(now()),
        "by": who(),
        "action": r.action.name(),
        "version": r.version,
        "image": r.image,
        "from": r.from,
        "outcome": outcome,
        "detail": detail,
        "seconds": (r.seconds * 10.0).round() / 10.0,
        "shipped_bytes": r.sent,
        "backup": r.backup,
    });
    let out = t.remote.run(
        &format!("cat >> {}", quote(&l.path("deploy.log"))),
        Some(format!("{line}\n").as_bytes()),
    )?;
    if !out.ok() {
        bail!(
            "cannot append to the deploy log on target `{}`: {}",
            t.name,
            out.stderr.trim()
        );
    }
    Ok(())
}

fn read_log(t: &Target) -> Result<Vec<serde_json::Value>> {
    let l = Layout { t };
    let out = t.remote.must(
        "reading the deploy log",
        &format!("cat {} 2>/dev/null || :", quote(&l.path("deploy.log"))),
    )?;
    Ok(out
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

/// The release that served before the current one, from the deploy log.
pub fn previous_version(t: &Target) -> Result<String> {
    let current = current(t)?.map(|(_, v)| v);
    let log = read_log(t)?;
    log.iter()
        .rev()
        .filter(|e| e["outcome"] == "ok")
        .filter_map(|e| e["version"].as_str())
        .find(|v| Some(*v) != current.as_deref())
        .map(str::to_string)
        .with_context(|| {
            format!(
                "target `{}` has no earlier release in its deploy log: name one with --to VERSION",
                t.name
            )
        })
}

pub fn status(t: &Target, last: usize) -> Result<ExitCode> {
    let l = Layout { t };
    let Some((slot, version)) = current(t)? else {
        println!("target `{}`: nothing deployed yet", t.name);
        return Ok(ExitCode::FAILURE);
    };
    let name = l.container(&slot);
    let ready = t.remote.run(
        &format!(
            "docker exec {} berth healthcheck --url {READY_URL} 2>&1",
            quote(&name)
        ),
        None,
    )?;
    let containers = t.remote.must(
        "listing containers",
        &format!(
            "docker ps --all --filter label=com.docker.compose.project={} --format '{{{{.Names}}}}\t{{{{.Image}}}}\t{{{{.Status}}}}'",
            quote(l.project())
        ),
    )?;
    println!("target `{}` ({}:{})", t.name, t.remote.destination(), t.dir);
    if let Some(d) = &t.description {
        println!("  {d}");
    }
    println!("  running release: {version} ({name})");
    println!(
        "  ready:           {}",
        if ready.ok() {
            "yes".to_string()
        } else {
            format!("NO: {}", ready.stdout.trim())
        }
    );
    println!("  containers:");
    for line in containers.lines() {
        println!("    {line}");
    }
    let log = read_log(t)?;
    println!("  last deploys:");
    for e in log.iter().rev().take(last) {
        println!(
            "    {} {} {} by {}: {} ({} s){}",
            e["at"].as_str().unwrap_or("?"),
            e["action"].as_str().unwrap_or("?"),
            e["version"].as_str().unwrap_or("?"),
            e["by"].as_str().unwrap_or("?"),
            e["outcome"].as_str().unwrap_or("?"),
            e["seconds"],
            e["detail"]
                .as_str()
                .filter(|d| !d.is_empty())
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        );
    }
    Ok(if ready.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `cargo xtask logs --target T [SERVICE]`: the live release's log and the other services'.
pub fn remote_logs(
    args: &crate::util::stage::TargetArgs,
    service: Option<&str>,
    tail: &str,
    follow: bool,
) -> Result<ExitCode> {
    let t = Target::load(args)?;
    let l = Layout { t: &t };
    let f = if follow { " --follow" } else { "" };
    let app = current(&t)?.map(|(slot, _)| l.container(&slot));
    let script = match service {
        Some(APP_SERVICE) | None if app.is_some() && (service.is_some() || follow) => {
            format!(
                "docker logs --tail {} {f} {}",
                quote(tail),
                quote(app.as_deref().unwrap_or_default())
            )
        }
        None => {
            let mut s = l.compose("unused", &format!("logs --tail {}", quote(tail)));
            if let Some(app) = &app {
                s = format!(
                    "{s}; echo '--- {app} ---'; docker logs --tail {} {}",
                    quote(tail),
                    quote(app)
                );
            }
            s
        }
        Some(APP_SERVICE) => bail!("nothing deployed on target `{}` yet", t.name),
        Some(other) => l.compose(
            "unused",
            &format!("logs --tail {}{f} {}", quote(tail), quote(other)),
        ),
    };
    let mut c = t.remote.command();
    c.arg(format!("sh -c {}", quote(&format!("{script} 2>&1"))));
    let status = c.status().context("cannot run ssh")?;
    if status.code() == Some(255) {
        bail!(
            "{}",
            super::ssh::classify(
                &t.name,
                &t.remote.destination(),
                "connection failed (see above)"
            )
        );
    }
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Who deploys: `$USER@host` of this machine.
fn who() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .or_else(|| {
            let out = std::process::Command::new("id").arg("-un").output().ok()?;
            Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
        })
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{host}")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// RFC 3339 UTC time of a Unix timestamp (no date crate in xtask).
fn stamp(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let rem = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(stamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(stamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(stamp(1_796_131_395), "2026-12-01T13:23:15Z");
    }

    /// The target-side script, run here with `sh`: as root it gives each file to its reader.
    #[test]
    fn secret_modes_script_gives_each_file_to_its_reader() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let root = crate::util::project_root();
        let stack = crate::stack::Stack::load(&root).unwrap();
        let stage = stack.stage("prod").unwrap();
        let dir = std::env::temp_dir().join(format!("xtask-remote-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["berth.toml", "postgres_password"] {
            std::fs::write(dir.join(f), "x").unwrap();
            std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let script = secret_modes_script(&stack, &stage, &dir.display().to_string());
        let run = || {
            let out = std::process::Command::new("sh")
                .args(["-c", &script])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        let first = run();
        let meta = |f: &str| {
            let m = std::fs::metadata(dir.join(f)).unwrap();
            (m.mode() & 0o777, m.uid(), m.gid())
        };
        let me = std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(1);
        if me == 0 {
            assert!(
                first.contains("berth.toml: 600 10001:10001 (was 644 0:0)"),
                "{first}"
            );
            assert_eq!(meta("berth.toml"), (0o600, 10001, 10001));
            assert_eq!(meta("postgres_password"), (0o600, 999, 999));
            assert!(!first.contains("loose"), "{first}");
        } else {
            assert_eq!(
                first.trim(),
                "loose",
                "not root: 0644 stays, and it says so"
            );
            assert_eq!(meta("berth.toml").0, 0o644);
        }
        assert_eq!(
            run().trim_end_matches("loose\n"),
            "",
            "a second run changes nothing"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
