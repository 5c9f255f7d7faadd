//! Docker and Compose as the stack tasks use them: preflight checks that turn the usual
//! problems (no Docker, daemon down, no permission, Compose missing, a port taken) into one line
//! saying what to do; the `docker compose` command line for a stage; the stack's variables as
//! compose will see them; secrets; and container states.

use std::{
    collections::BTreeMap,
    fs,
    io::Read,
    net::{IpAddr, SocketAddr, TcpListener},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::{
    doctor::run_with_timeout,
    stack::{interp, resolve::ResolvedStage, Stack},
};

const PROBE: Duration = Duration::from_secs(15);

/// Checks that `docker` and `docker compose` exist and (when `engine`) that the daemon answers.
/// Each failure is one line saying what to do.
pub fn preflight(engine: bool) -> Result<()> {
    if which::which("docker").is_err() {
        bail!(
            "Docker is not installed (no `docker` on PATH): install Docker Engine with the \
             Compose plugin (https://docs.docker.com/engine/install/); `cargo xtask doctor` lists \
             what the tasks need"
        );
    }
    let mut compose = Command::new("docker");
    compose.args(["compose", "version"]);
    match run_with_timeout(compose, PROBE) {
        Ok(Some(out)) if out.status.success() => {}
        _ => bail!(
            "Docker Compose v2 is missing (`docker compose version` fails): install the \
             docker-compose-plugin package, or the `docker-compose` binary as \
             ~/.docker/cli-plugins/docker-compose"
        ),
    }
    if !engine {
        return Ok(());
    }
    let mut info = Command::new("docker");
    info.args(["info", "--format", "{{.ServerVersion}}"]);
    match run_with_timeout(info, PROBE) {
        Ok(Some(out)) if out.status.success() => Ok(()),
        Ok(Some(out)) => {
            let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
            if err.contains("permission denied") {
                bail!(
                    "no permission to use the Docker daemon: add yourself to the `docker` group \
                     (then log in again), or run as root"
                )
            }
            bail!(
                "the Docker daemon is not running (`docker info` cannot reach it): start it, \
                 e.g. `sudo systemctl start docker`"
            )
        }
        Ok(None) => bail!(
            "the Docker daemon does not answer (`docker info` hung for {}s): restart it, e.g. \
             `sudo systemctl restart docker`",
            PROBE.as_secs()
        ),
        Err(e) => bail!("cannot run `docker info`: {e}"),
    }
}

/// The stack's variables as compose resolves them: the environment, then .env, then the
/// stack file's defaults.
pub struct Vars {
    env_file: BTreeMap<String, String>,
    defaults: BTreeMap<String, String>,
    pub env_path: Option<PathBuf>,
}

impl Vars {
    pub fn load(root: &Path, stack: &Stack) -> Result<Vars> {
        let env_path = root.join(".env");
        let (env_file, env_path) = if env_path.is_file() {
            let text = fs::read_to_string(&env_path).context("reading .env")?;
            (parse_env_file(&text), Some(env_path))
        } else {
            (BTreeMap::new(), None)
        };
        let defaults = stack
            .file
            .variables
            .iter()
            .filter_map(|(k, v)| Some((k.get_ref().clone(), v.default.as_ref()?.get_ref().clone())))
            .collect();
        Ok(Vars {
            env_file,
            defaults,
            env_path,
        })
    }

    pub fn get(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| self.env_file.get(name).filter(|v| !v.is_empty()).cloned())
            .or_else(|| self.defaults.get(name).cloned())
    }

    /// `text` with its variables replaced (and `$$` → `$`).
    pub fn expand(&self, text: &str) -> String {
        interp::expand(text, &|name| self.get(name))
    }
}

/// KEY=VALUE lines; `#` comments; optional matching quotes around the value.
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim();
            let v = if v.len() >= 2
                && ((v.starts_with('"') && v.ends_with('"'))
                    || (v.starts_with('\'') && v.ends_with('\'')))
            {
                &v[1..v.len() - 1]
            } else {
                v
            };
            out.insert(k.trim().to_string(), v.to_string());
        }
    }
    out
}

/// `docker compose` for one stage of the stack.
pub struct Compose {
    pub root: PathBuf,
    pub file: String,
    pub project: String,
    pub env_file: Option<PathBuf>,
    pub profiles: Vec<String>,
}

impl Compose {
    pub fn new(root: &Path, stage: &ResolvedStage, project: Option<&str>, vars: &Vars) -> Compose {
        Compose {
            root: root.to_path_buf(),
            file: stage.file.clone(),
            project: project.unwrap_or(&stage.project).to_string(),
            env_file: vars.env_path.clone(),
            profiles: Vec::new(),
        }
    }

    pub fn with_profiles(mut self, profiles: impl IntoIterator<Item = String>) -> Compose {
        self.profiles = profiles.into_iter().collect();
        self
    }

    /// `docker compose --file F --project-name P [--env-file .env] [--profile X]... ARGS`,
    /// run from the repository root.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut c = Command::new("docker");
        c.current_dir(&self.root).args([
            "compose",
            "--file",
            &self.file,
            "--project-name",
            &self.project,
        ]);
        if let Some(env) = &self.env_file {
            c.arg("--env-file").arg(env);
        }
        for p in &self.profiles {
            c.args(["--profile", p]);
        }
        c.args(args);
        c
    }

    /// Every container of the project, running or not.
    pub fn containers(&self) -> Result<Vec<Container>> {
        let c = self.command(["ps", "--all", "--format", "json"]);
        let out = run_with_timeout(c, Duration::from_secs(30))?
            .context("`docker compose ps` did not answer within 30 s")?;
        if !out.status.success() {
            bail!(
                "`docker compose ps` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout))
    }
}

/// One container as `docker compose ps --format json` describes it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Container {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Service")]
    pub service: String,
    /// created, running, exited, restarting, ...
    #[serde(rename = "State")]
    pub state: String,
    /// healthy, unhealthy, starting, or empty without a health check.
    #[serde(rename = "Health", default)]
    pub health: String,
    #[serde(rename = "ExitCode", default)]
    pub exit_code: i64,
    #[serde(rename = "Publishers", default)]
    pub publishers: Option<Vec<Publisher>>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Publisher {
    #[serde(rename = "URL", default)]
    pub url: String,
    #[serde(rename = "TargetPort", default)]
    pub target_port: u16,
    #[serde(rename = "PublishedPort", default)]
    pub published_port: u16,
    #[serde(rename = "Protocol", default)]
    pub protocol: String,
}

/// Compose prints one JSON object per line (newer) or one JSON array (older); both are read.
pub fn parse_ps(text: &str) -> Result<Vec<Container>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if text.starts_with('[') {
        return Ok(serde_json::from_str(text)?);
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .with_context(|| format!("unexpected `docker compose ps` line: {l}"))
        })
        .collect()
}

/// Host ports the stage would publish (for the given profiles) that something else holds.
/// Ports this project's own running containers publish are not "taken".
pub fn taken_ports(
    stage: &ResolvedStage,
    enabled: &std::collections::BTreeSet<String>,
    vars: &Vars,
    running: &[Container],
) -> Vec<String> {
    let ours: Vec<u16> = running
        .iter()
        .filter(|c| c.state == "running")
        .flat_map(|c| c.publishers.iter().flatten().map(|p| p.published_port))
        .collect();
    let mut taken = Vec::new();
    for s in &stage.services {
        if !s.active_in.is_empty() && !s.active_in.iter().any(|p| enabled.contains(p)) {
            continue;
        }
        for p in &s.ports {
            let p = p.get_ref();
            let Ok(port) = vars.expand(&p.host.0).parse::<u16>() else {
                continue;
            };
            if ours.contains(&port) || p.protocol != "tcp" {
                continue;
            }
            let bind = p
                .bind
                .as_ref()
                .map_or("127.0.0.1".to_string(), |b| vars.expand(b.get_ref()));
            let Ok(ip) = bind.parse::<IpAddr>() else {
                continue;
            };
            if TcpListener::bind(SocketAddr::new(ip, port)).is_err() {
                let var = interp::references(&p.host.0)
                    .ok()
                    .and_then(|r| r.first().map(|r| r.name.clone()));
                taken.push(match var {
                    Some(v) => format!(
                        "port {port} on {bind} (service `{}`) is already in use: stop what holds it, \
                         or set {v} to a free port in .env",
                        s.name
                    ),
                    None => format!(
                        "port {port} on {bind} (service `{}`) is already in use: stop what holds it",
                        s.name
                    ),
                });
            }
        }
    }
    taken
}

/// The stage's secrets directory on this machine (the compose file's folder + secrets_dir).
pub fn secrets_dir(root: &Path, stack: &Stack, stage: &ResolvedStage, vars: &Vars) -> PathBuf {
    let compose_dir = root
        .join(&stage.file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root.to_path_buf());
    let dir = PathBuf::from(vars.expand(stack.file.project.secrets_dir.get_ref()));
    if dir.is_absolute() {
        dir
    } else {
        normalize(&compose_dir.join(dir))
    }
}

pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// What `ensure_secrets` did or would do, one line each.
pub fn ensure_secrets(dir: &Path, stack: &Stack, dry_run: bool) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let path_of = |file: &str| dir.join(file);
    if !dir.is_dir() {
        done.push(format!("create {} (mode 0700)", dir.display()));
        if !dry_run {
            fs::create_dir_all(dir)?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
    }
    // Generated ones first: templates are made from them.
    for (name, secret) in &stack.file.secrets {
        let path = path_of(secret.file.get_ref());
        if secret.generate.is_some() {
            if let Ok(v) = fs::read_to_string(&path) {
                values.insert(name.get_ref().clone(), v.trim().to_string());
            } else {
                let v = random_password(32)?;
                done.push(format!(
                    "generate {} ({})",
                    path.display(),
                    secret.description
                ));
                if !dry_run {
                    write_secret(&path, &v)?;
                }
                values.insert(name.get_ref().clone(), v);
            }
        }
    }
    for (name, secret) in &stack.file.secrets {
        let path = path_of(secret.file.get_ref());
        if let Some(template) = &secret.template {
            let mut content = template.get_ref().clone();
            for (k, v) in &values {
                content = content.replace(&format!("{{{k}}}"), v);
            }
            match fs::read_to_string(&path) {
                Ok(current) if current.trim() == content.trim() => {}
                Ok(_) => crate::util::warn(&format!(
                    "{} does not match what its template makes from the other secrets; \
                     delete it to have it made again",
                    path.display()
                )),
                Err(_) => {
                    done.push(format!(
                        "derive {} ({})",
                        path.display(),
                        secret.description
                    ));
                    if !dry_run {
                        write_secret(&path, &format!("{content}\n"))?;
                    }
                }
            }
        } else if secret.generate.is_none() && !path.is_file() {
            bail!(
                "secret `{}` is missing: put {} in {} ({})",
                name.get_ref(),
                secret.file.get_ref(),
                dir.display(),
                secret.description
            );
        }
    }
    Ok(done)
}

/// Secret files are world-readable inside a 0700 directory: compose bind-mounts them with
/// their host mode, and the services read them as their own non-root users.
fn write_secret(path: &Path, content: &str) -> Result<()> {
    fs::write(path, content).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// Letters and digits from the kernel's random source.
pub fn random_password(len: usize) -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut random = fs::File::open("/dev/urandom").context("opening /dev/urandom")?;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        random.read_exact(&mut buf)?;
        for b in buf {
            // 248 = 4 × 62: no bias.
            if (b as usize) < 248 && out.len() < len {
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_ps_formats() {
        let line = r#"{"Name":"berth-app-1","Service":"app","State":"running","Health":"healthy","ExitCode":0,"Publishers":[{"URL":"127.0.0.1","TargetPort":8080,"PublishedPort":8080,"Protocol":"tcp"}]}"#;
        let one = parse_ps(line).unwrap();
        assert_eq!(one[0].service, "app");
        assert_eq!(one[0].publishers.as_ref().unwrap()[0].published_port, 8080);
        let array = format!("[{line}]");
        assert_eq!(parse_ps(&array).unwrap(), one);
        assert!(parse_ps("\n").unwrap().is_empty());
    }

    #[test]
    fn env_files_are_read_like_compose_reads_them() {
        let vars = parse_env_file("# c\nA=1\nexport B=\"two words\"\n\nC='x'\nbad line\n");
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "x");
        assert_eq!(vars.len(), 3);
    }

    #[test]
    fn passwords_are_random_alphanumerics() {
        let a = random_password(32).unwrap();
        let b = random_password(32).unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn paths_normalize() {
        assert_eq!(
            normalize(Path::new("/r/docker/../secrets")),
            PathBuf::from("/r/secrets")
        );
    }
}
