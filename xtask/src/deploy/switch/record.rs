//! The target's deploy log (<dir>/deploy.log, one JSON line per deploy or rollback) and what
//! reads it: the previous version, `status`, and `logs --target`.

use super::*;

pub(super) struct Record<'a> {
    pub(super) action: Action,
    pub(super) version: &'a str,
    pub(super) image: &'a str,
    pub(super) from: Option<&'a str>,
    pub(super) outcome: &'a Outcome,
    pub(super) seconds: f64,
    pub(super) sent: u64,
    pub(super) backup: Option<&'a str>,
}

pub(super) fn append_log(t: &Target, l: &Layout, r: &Record) -> Result<()> {
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

pub(super) fn read_log(t: &Target) -> Result<Vec<serde_json::Value>> {
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
            super::super::ssh::classify(
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
pub(super) fn who() -> String {
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
