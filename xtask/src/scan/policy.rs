//! Berth's own policy checks: each rule, what it reads and how bad a breach is.
//!
//! The compose files are read as Docker Compose itself resolves them (`docker compose config
//! --format json`, every profile on, variables at their defaults), so what is checked is what
//! `docker compose up` would run, hand edits included.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::{dockerfile, Finding, Severity};

/// Every rule: (id, severity, what it demands). The report and SARIF list them from here.
pub const RULES: &[(&str, Severity, &str)] = &[
    (
        "non-root",
        Severity::High,
        "containers run as a non-root user",
    ),
    (
        "healthcheck",
        Severity::Medium,
        "every long-running container has a health check",
    ),
    (
        "read-only-root",
        Severity::Medium,
        "the root file system is read-only",
    ),
    (
        "no-new-privileges",
        Severity::High,
        "no-new-privileges is set (no setuid escalation)",
    ),
    (
        "cap-drop",
        Severity::High,
        "every capability is dropped (cap_drop: ALL), only needed ones added",
    ),
    (
        "privileged",
        Severity::High,
        "no privileged containers, host namespaces or docker socket",
    ),
    (
        "limits",
        Severity::Medium,
        "CPU, memory and PID limits are set",
    ),
    (
        "pinned-image",
        Severity::Medium,
        "images name a version tag or digest, never `latest` or none",
    ),
    (
        "digest-pinned",
        Severity::Low,
        "base images are pinned by digest (the stack file supports it)",
    ),
    (
        "secret-in-env",
        Severity::High,
        "no secret values in environment defaults, ENV or ARG",
    ),
    (
        "secret-in-context",
        Severity::High,
        "secrets and .env files are kept out of the build context",
    ),
    (
        "data-port",
        Severity::High,
        "data services publish no port in production",
    ),
    (
        "public-bind",
        Severity::Medium,
        "published ports bind to an explicit address, by default 127.0.0.1",
    ),
    (
        "k8s-restricted",
        Severity::High,
        "Kubernetes workloads meet the restricted Pod Security profile",
    ),
];

pub fn severity(rule: &str) -> Severity {
    RULES
        .iter()
        .find(|(id, ..)| *id == rule)
        .map_or(Severity::Medium, |(_, s, _)| *s)
}

fn finding(
    rule: &'static str,
    target: String,
    file: &str,
    line: Option<usize>,
    message: String,
) -> Finding {
    Finding {
        rule: rule.to_string(),
        severity: severity(rule),
        source: "berth".into(),
        target,
        file: file.to_string(),
        line,
        message,
        accepted: None,
    }
}

/// Names that hold secrets when they hold a value.
pub fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    if n.ends_with("_FILE") || n.ends_with("__FILE") {
        return false;
    }
    [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "ACCESS_KEY",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// A value that is a secret rather than a pointer to one (a file under /run/secrets, empty,
/// or a variable left to the operator).
fn secret_value(value: &str) -> bool {
    let v = value.trim();
    !(v.is_empty()
        || v.starts_with("/run/secrets/")
        || v.starts_with('$')
        || v == "false"
        || v == "true")
}

/// True when `image` names a tag other than `latest`, or a digest.
pub fn pinned(image: &str) -> bool {
    if image.contains("@sha256:") {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => !tag.is_empty() && tag != "latest",
        None => false,
    }
}

// ------------------------------------------------------------------------------------------------
// compose

/// `docker compose config --format json` of `file` with every profile enabled and variables at
/// their defaults (the environment is cleared, so a developer's shell cannot weaken or hide
/// anything).
pub fn resolve_compose(root: &Path, file: &str) -> Result<Value> {
    let mut c = Command::new("docker");
    c.current_dir(root)
        .env_clear()
        .envs(std::env::vars().filter(|(k, _)| {
            matches!(
                k.as_str(),
                "PATH" | "HOME" | "DOCKER_HOST" | "DOCKER_CONFIG" | "DOCKER_CONTEXT"
            )
        }))
        .env("COMPOSE_PROFILES", "*")
        .args([
            "compose",
            "--file",
            file,
            "--env-file",
            "/dev/null",
            "config",
            "--format",
            "json",
        ])
        .stdin(Stdio::null());
    let out = c
        .output()
        .context("cannot run `docker compose`: the scan reads the compose files through it (install Docker Compose v2)")?;
    if !out.status.success() {
        bail!(
            "`docker compose --file {file} config` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("{file}: compose printed no JSON"))
}

/// Line of `services:` → `  NAME:` in the compose file's text, for the report.
fn service_line(text: &str, service: &str) -> Option<usize> {
    let mut in_services = false;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("services:") {
            in_services = true;
            continue;
        }
        if in_services && !line.starts_with(' ') && !line.starts_with('#') && !line.is_empty() {
            in_services = false;
        }
        if in_services && line.trim_end() == format!("  {service}:") {
            return Some(i + 1);
        }
    }
    None
}

pub struct ComposeScope<'a> {
    pub file: &'a str,
    pub text: &'a str,
    /// The stage publishes data services (dev): data-port does not apply.
    pub publish_data_services: bool,
    /// Services that hold data (the stack file's `data = true`).
    pub data_services: &'a BTreeSet<String>,
}

pub fn check_compose(scope: &ComposeScope, config: &Value) -> Vec<Finding> {
    let mut out = Vec::new();
    let empty = serde_json::Map::new();
    let services = config["services"].as_object().unwrap_or(&empty);
    for (name, s) in services {
        let target = format!("{}:{name}", scope.file);
        let line = service_line(scope.text, name);
        let mut add = |rule: &'static str, message: String| {
            out.push(finding(rule, target.clone(), scope.file, line, message));
        };
        let user = s["user"].as_str().unwrap_or("");
        let uid = user.split(':').next().unwrap_or("");
        if uid.is_empty() || uid == "0" || uid == "root" {
            add(
                "non-root",
                format!(
                    "service `{name}` runs as root (no `user`, or user 0): set `user: \"UID:GID\"`"
                ),
            );
        }
        // A one-shot job ends on its own; dependants wait for it to complete, not for health.
        let oneshot = services.values().any(|other| {
            other["depends_on"][name]["condition"].as_str()
                == Some("service_completed_successfully")
        });
        let check_disabled = s["healthcheck"]["disable"].as_bool() == Some(true)
            || s["healthcheck"]["test"]
                .as_array()
                .and_then(|t| t.first())
                .and_then(Value::as_str)
                == Some("NONE");
        if !oneshot && (s["healthcheck"].is_null() || check_disabled) {
            add(
                "healthcheck",
                format!(
                    "service `{name}` has no health check: add `healthcheck: {{ test: [...] }}`"
                ),
            );
        }
        if s["read_only"].as_bool() != Some(true) {
            add("read-only-root", format!("service `{name}` has a writable root file system: set `read_only: true` and mount tmpfs where it writes"));
        }
        let security: Vec<&str> = s["security_opt"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !security.iter().any(|o| {
            let o = o.replace('=', ":");
            o == "no-new-privileges:true" || o == "no-new-privileges"
        }) {
            add("no-new-privileges", format!("service `{name}` allows privilege escalation: add `security_opt: [\"no-new-privileges:true\"]`"));
        }
        let drops: Vec<&str> = s["cap_drop"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !drops.iter().any(|c| c.eq_ignore_ascii_case("ALL")) {
            add("cap-drop", format!("service `{name}` keeps Docker's default capabilities: set `cap_drop: [ALL]` and `cap_add` only what it needs"));
        }
        if s["privileged"].as_bool() == Some(true) {
            add("privileged", format!("service `{name}` is privileged"));
        }
        for ns in ["network_mode", "pid", "ipc"] {
            if s[ns].as_str() == Some("host") {
                add(
                    "privileged",
                    format!("service `{name}` shares the host's {ns} namespace"),
                );
            }
        }
        if s["volumes"].as_array().is_some_and(|v| {
            v.iter().any(|m| {
                m["source"]
                    .as_str()
                    .is_some_and(|src| src.ends_with("docker.sock"))
            })
        }) {
            add(
                "privileged",
                format!("service `{name}` mounts the Docker socket (root on the host)"),
            );
        }
        let limits = &s["deploy"]["resources"]["limits"];
        let missing: Vec<&str> = ["cpus", "memory", "pids"]
            .into_iter()
            .filter(|k| limits[*k].is_null() && (*k != "pids" || s["pids_limit"].is_null()))
            .collect();
        if !missing.is_empty() {
            add(
                "limits",
                format!(
                    "service `{name}` has no {} limit: set deploy.resources.limits",
                    missing.join(", ")
                ),
            );
        }
        if s["build"].is_null() {
            let image = s["image"].as_str().unwrap_or("");
            if !pinned(image) {
                add("pinned-image", format!("service `{name}` runs `{image}`, which names no version: use `name:1.2.3` or `name@sha256:…`"));
            }
        }
        if let Some(env) = s["environment"].as_object() {
            for (k, v) in env {
                let v = v.as_str().unwrap_or("");
                if secret_name(k) && secret_value(v) {
                    add("secret-in-env", format!("service `{name}` sets {k} to a value in the compose file: mount it as a secret (`{k}_FILE=/run/secrets/…`)"));
                }
            }
        }
        let ports = s["ports"].as_array().map(Vec::as_slice).unwrap_or_default();
        if scope.data_services.contains(name) && !scope.publish_data_services && !ports.is_empty() {
            add("data-port", format!("data service `{name}` publishes a port in production: remove `ports` (reach it from the backend network)"));
        }
        for p in ports {
            let ip = p["host_ip"].as_str().unwrap_or("");
            if ip.is_empty() || ip == "0.0.0.0" || ip == "::" {
                add("public-bind", format!("service `{name}` publishes port {} on every interface: bind it to 127.0.0.1 (BERTH_BIND_ADDRESS) or put the proxy in front", p["target"]));
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Dockerfiles

/// What the compose files build from a Dockerfile: its target and the build arguments.
#[derive(Clone, Debug, Default)]
pub struct BuildUse {
    pub target: Option<String>,
    pub args: BTreeMap<String, String>,
}

pub fn check_dockerfile(file: &str, text: &str, uses: &[BuildUse]) -> Vec<Finding> {
    let mut out = Vec::new();
    let parsed = dockerfile::parse(text);
    let uses: Vec<BuildUse> = if uses.is_empty() {
        vec![BuildUse::default()]
    } else {
        uses.to_vec()
    };
    let mut seen = BTreeSet::new();
    for u in &uses {
        let mut vars = parsed.global_args.clone();
        vars.extend(u.args.clone());
        // Base images, as this build resolves them.
        for stage in &parsed.stages {
            let base = dockerfile::expand(&stage.from, &vars);
            if base == "scratch" || parsed.is_stage(&base) || !seen.insert(base.clone()) {
                continue;
            }
            let target = format!("{file}:FROM {base}");
            if !pinned(&base) {
                out.push(finding(
                    "pinned-image",
                    target,
                    file,
                    Some(stage.from_line),
                    format!("base image `{base}` names no version: use a version tag or a digest"),
                ));
            } else if !base.contains("@sha256:") {
                out.push(finding("digest-pinned", target, file, Some(stage.from_line), format!("base image `{base}` is pinned by tag, not digest: set `{}@sha256:…` in deploy/stack.toml [images.*.args] for byte-identical rebuilds", base)));
            }
        }
        let Some(stage) = parsed.stage(u.target.as_deref()) else {
            continue;
        };
        let stage_name = stage.name.clone().unwrap_or_else(|| "(last stage)".into());
        if !seen.insert(format!("stage {stage_name}")) {
            continue;
        }
        let target = format!("{file}:{stage_name}");
        // The image's user: the last USER of the stage (or of a stage it is built FROM).
        let mut user = None;
        let mut health = None;
        let mut cursor = Some(stage);
        while let Some(s) = cursor {
            user = user.or(s.last("USER"));
            health = health.or(s.last("HEALTHCHECK"));
            cursor = parsed.stages.iter().find(|x| {
                x.name.is_some()
                    && x.name.as_deref() == Some(dockerfile::expand(&s.from, &vars).as_str())
            });
        }
        match user {
            None => out.push(finding("non-root", target.clone(), file, Some(stage.from_line), format!("the image of stage `{stage_name}` runs as root: add `USER 10001:10001` (a numeric, non-root id)"))),
            Some(u) => {
                let id = u.args.split(':').next().unwrap_or("").trim();
                if id == "0" || id == "root" {
                    out.push(finding("non-root", target.clone(), file, Some(u.line), format!("stage `{stage_name}` sets USER {}: use a non-root id", u.args)));
                }
            }
        }
        let no_check = health.is_none_or(|h| h.args.trim().eq_ignore_ascii_case("NONE"));
        if no_check {
            out.push(finding("healthcheck", target.clone(), file, Some(stage.from_line), format!("the image of stage `{stage_name}` has no HEALTHCHECK: add one (e.g. `HEALTHCHECK CMD [\"berth\", \"healthcheck\"]`)")));
        }
    }
    // Secrets baked into any stage's ENV or ARG defaults.
    for stage in &parsed.stages {
        for ins in stage
            .instructions
            .iter()
            .filter(|i| i.keyword == "ENV" || i.keyword == "ARG")
        {
            for (k, v) in dockerfile::assignments(&ins.args) {
                if secret_name(&k) && secret_value(&v) {
                    out.push(finding("secret-in-env", format!("{file}:{k}"), file, Some(ins.line), format!("{} {k} has a value baked into the image: pass it at run time as a secret", ins.keyword)));
                }
            }
        }
    }
    for (k, v) in &parsed.global_args {
        if secret_name(k) && secret_value(v) {
            out.push(finding(
                "secret-in-env",
                format!("{file}:{k}"),
                file,
                None,
                format!(
                    "ARG {k} has a default value: pass it at build time as a secret (`--secret`)"
                ),
            ));
        }
    }
    out
}

/// A build context that copies everything (`COPY . .`) must keep secrets out with
/// .dockerignore.
pub fn check_context(
    root: &Path,
    context: &str,
    dockerfile_text: &str,
    file: &str,
) -> Vec<Finding> {
    let copies_all = dockerfile::instructions(dockerfile_text).iter().any(|i| {
        (i.keyword == "COPY" || i.keyword == "ADD")
            && !i.args.contains("--from")
            && i.args.split_whitespace().next() == Some(".")
    });
    if !copies_all {
        return Vec::new();
    }
    let ignore_path = root.join(context).join(".dockerignore");
    let ignore = std::fs::read_to_string(&ignore_path).unwrap_or_default();
    let patterns: BTreeSet<&str> = ignore
        .lines()
        .map(|l| l.trim().trim_start_matches('/').trim_end_matches('/'))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let shown = format!("{}/.dockerignore", context.trim_end_matches('/')).replace("./", "");
    ["secrets", ".env", ".git"]
        .into_iter()
        .filter(|p| !patterns.contains(p))
        .map(|p| {
            finding("secret-in-context", format!("{shown}:{p}"), file, None, format!("{file} copies its whole context ({context}) but {shown} does not exclude `{p}`: add it"))
        })
        .collect()
}

/// Variables whose default in .env.example is a secret value.
pub fn check_env_example(text: &str) -> Vec<Finding> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let (k, v) = line.split_once('=')?;
            (secret_name(k) && secret_value(v.trim_matches('"'))).then(|| {
                finding("secret-in-env", format!(".env.example:{k}"), ".env.example", Some(i + 1), format!("{k} has a default value in .env.example: leave it empty or make it a secret file"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning() {
        assert!(pinned("redis:8.0"));
        assert!(pinned("127.0.0.1:5000/berth:1.2.3"));
        assert!(pinned("x@sha256:abc"));
        assert!(!pinned("redis"));
        assert!(!pinned("redis:latest"));
        assert!(!pinned("127.0.0.1:5000/berth"));
    }

    #[test]
    fn secret_names_and_values() {
        assert!(secret_name("POSTGRES_PASSWORD"));
        assert!(!secret_name("POSTGRES_PASSWORD_FILE"));
        assert!(!secret_name("GF_SECURITY_ADMIN_PASSWORD__FILE"));
        assert!(secret_name("OPENAI_API_KEY"));
        assert!(!secret_name("BERTH_LOG_LEVEL"));
        assert!(secret_value("hunter2"));
        assert!(!secret_value("/run/secrets/pw"));
        assert!(!secret_value(""));
    }

    #[test]
    fn dockerfile_rules() {
        let weak = "ARG BASE=debian\nARG API_TOKEN=abc\nFROM ${BASE} AS b\nFROM b AS runtime\nENV DB_PASSWORD=x\n";
        let rules: Vec<String> = check_dockerfile(
            "D",
            weak,
            &[BuildUse {
                target: Some("runtime".into()),
                args: BTreeMap::new(),
            }],
        )
        .into_iter()
        .map(|f| f.rule)
        .collect();
        for r in ["pinned-image", "non-root", "healthcheck", "secret-in-env"] {
            assert!(rules.contains(&r.to_string()), "{r} missing from {rules:?}");
        }
        let good =
            "FROM debian:trixie-slim@sha256:00 AS b\nFROM b\nUSER 10001\nHEALTHCHECK CMD [\"x\"]\n";
        assert!(check_dockerfile("D", good, &[]).is_empty());
        // The user and check are inherited from the stage it is built on.
        let inherited =
            "FROM debian:1@sha256:00 AS b\nUSER 1\nHEALTHCHECK CMD x\nFROM b\nRUN true\n";
        assert!(check_dockerfile("D", inherited, &[]).is_empty());
    }

    #[test]
    fn compose_rules() {
        let config: Value = serde_json::json!({"services": {
            "db": {"image": "postgres", "ports": [{"target": 5432, "host_ip": "0.0.0.0"}],
                   "environment": {"POSTGRES_PASSWORD": "secret"}},
            "ok": {"image": "x:1", "user": "1:1", "read_only": true,
                   "security_opt": ["no-new-privileges:true"], "cap_drop": ["ALL"],
                   "healthcheck": {"test": ["CMD", "x"]},
                   "deploy": {"resources": {"limits": {"cpus": 1, "memory": "1", "pids": 1}}}}
        }});
        let data = BTreeSet::from(["db".to_string()]);
        let scope = ComposeScope {
            file: "c.yaml",
            text: "services:\n  db:\n",
            publish_data_services: false,
            data_services: &data,
        };
        let found = check_compose(&scope, &config);
        assert!(found.iter().all(|f| f.target == "c.yaml:db"), "{found:?}");
        let rules: BTreeSet<&str> = found.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(
            rules,
            BTreeSet::from([
                "non-root",
                "healthcheck",
                "read-only-root",
                "no-new-privileges",
                "cap-drop",
                "limits",
                "pinned-image",
                "secret-in-env",
                "data-port",
                "public-bind"
            ])
        );
        assert_eq!(found[0].line, Some(2));
    }
}
