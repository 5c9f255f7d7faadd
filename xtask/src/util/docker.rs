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
    stack::{interp, resolve::ResolvedStage, Stack},
    util::process::run_with_timeout,
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

/// What `ensure_secrets` did or would do, one line each; nothing when everything is as it
/// should be. Missing secrets are made; existing ones are never overwritten, but their owner
/// and mode are brought to what [`secret_access`] says (see [`SecretFile`]).
pub fn ensure_secrets(
    dir: &Path,
    stack: &Stack,
    stage: &ResolvedStage,
    dry_run: bool,
) -> Result<Vec<String>> {
    ensure_secrets_as(dir, stack, stage, &Rights::of_this_process(), dry_run)
}

fn ensure_secrets_as(
    dir: &Path,
    stack: &Stack,
    stage: &ResolvedStage,
    rights: &Rights,
    dry_run: bool,
) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let path_of = |file: &str| dir.join(file);
    if !dir.is_dir() {
        done.push(format!("create {} (mode 0700)", dir.display()));
        if !dry_run {
            fs::create_dir_all(dir)?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
    } else if let Some(line) = tighten_dir(dir, rights, dry_run)? {
        done.push(line);
    }
    let want = |name: &str| SecretFile::of(&secret_access(stage, name), rights);
    // Generated ones first: templates are made from them.
    for (name, secret) in &stack.file.secrets {
        let path = path_of(secret.file.get_ref());
        if secret.generate.is_some() {
            match read_secret(&path)? {
                Some(v) => {
                    values.insert(name.get_ref().clone(), v.trim().to_string());
                }
                None => {
                    let v = random_password(32)?;
                    let file = want(name.get_ref());
                    done.push(format!(
                        "generate {} ({}; {})",
                        path.display(),
                        secret.description,
                        file.describe()
                    ));
                    if !dry_run {
                        write_secret(&path, &v, &file)?;
                    }
                    values.insert(name.get_ref().clone(), v);
                }
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
            match read_secret(&path)? {
                Some(current) if current.trim() == content.trim() => {}
                Some(_) => crate::util::warn(&format!(
                    "{} does not match what its template makes from the other secrets; \
                     delete it to have it made again",
                    path.display()
                )),
                None => {
                    let file = want(name.get_ref());
                    done.push(format!(
                        "derive {} ({}; {})",
                        path.display(),
                        secret.description,
                        file.describe()
                    ));
                    if !dry_run {
                        write_secret(&path, &format!("{content}\n"), &file)?;
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
    // Files made earlier (or by hand, or before this policy) get the owner and mode too.
    let mut changed = !done.is_empty();
    for (name, secret) in &stack.file.secrets {
        let path = path_of(secret.file.get_ref());
        if let Some(line) = tighten(&path, &want(name.get_ref()), rights, dry_run)? {
            done.push(line);
            changed = true;
        }
    }
    if changed && !rights.root {
        let mounted = stack
            .file
            .secrets
            .keys()
            .any(|n| want(n.get_ref()).limited_by_rights);
        if mounted {
            done.push(format!(
                "keep the secret files the services read at 0644: only the 0700 directory {} \
                 protects them, since only root can give a file to a service's user; for 0600 \
                 files owned by each service's user run `cargo xtask setup --no-up` as root \
                 (e.g. `sudo target/debug/xtask setup --no-up`)",
                dir.display()
            ));
        }
    }
    Ok(done)
}

/// A secret's content; `None` when it does not exist yet. A file that exists but cannot be
/// read is an error, not a reason to make a new one (that would change a live password).
fn read_secret(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => bail!(
            "cannot read {}: permission denied; it was made by root (`cargo xtask setup` with \
             sudo): run this task as root too, e.g. `sudo target/debug/xtask …`",
            path.display()
        ),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Who reads a secret inside the containers, from the stack model: the `user` of every
/// service of the stage that lists it (whatever its profiles: any may be enabled later).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretAccess {
    /// No service mounts it: 0600, its owner left as it is.
    Unmounted,
    /// One user reads it: 0600, owned by that uid (and gid, when every reader names the same).
    Owner { uid: u32, gid: Option<u32> },
    /// Several users with one group in common: 0640, owned by root and that group.
    Group { gid: u32 },
    /// Nothing tighter works: 0644, protected only by the 0700 directory. Says why.
    World(String),
}

/// `uid[:gid]` of a compose `user`, when numeric.
fn numeric_user(user: &str) -> Option<(u32, Option<u32>)> {
    match user.split_once(':') {
        Some((u, g)) => Some((u.parse().ok()?, Some(g.parse().ok()?))),
        None => Some((user.parse().ok()?, None)),
    }
}

/// How the secret `name` must be kept so that exactly the services that mount it can read it.
pub fn secret_access(stage: &ResolvedStage, name: &str) -> SecretAccess {
    let mut readers: Vec<(&str, u32, Option<u32>)> = Vec::new();
    for s in stage
        .services
        .iter()
        .filter(|s| s.secrets.iter().any(|x| x == name))
    {
        let (uid, gid) = match (&s.user, &s.root) {
            (Some(user), _) => match numeric_user(user.get_ref()) {
                Some(ids) => ids,
                None => {
                    return SecretAccess::World(format!(
                        "service `{}` runs as `{}`, not a numeric uid:gid, so its uid is unknown \
                         here",
                        s.name,
                        user.get_ref()
                    ))
                }
            },
            // Root without capabilities (cap_drop ALL): no CAP_DAC_OVERRIDE, the mode applies.
            (None, Some(_)) => (0, Some(0)),
            (None, None) => {
                return SecretAccess::World(format!(
                    "service `{}` sets no `user`, so the uid it reads as is the image's",
                    s.name
                ))
            }
        };
        readers.push((&s.name, uid, gid));
    }
    let Some(&(_, uid, gid)) = readers.first() else {
        return SecretAccess::Unmounted;
    };
    let same_gid = readers
        .iter()
        .all(|r| r.2.is_some() && r.2 == gid)
        .then_some(gid)
        .flatten();
    if readers.iter().all(|r| r.1 == uid) {
        return SecretAccess::Owner { uid, gid: same_gid };
    }
    match same_gid {
        Some(gid) => SecretAccess::Group { gid },
        None => {
            let who: Vec<String> = readers
                .iter()
                .map(|(n, u, g)| match g {
                    Some(g) => format!("`{n}` ({u}:{g})"),
                    None => format!("`{n}` ({u})"),
                })
                .collect();
            SecretAccess::World(format!(
                "services {} read it as different users with no group in common",
                who.join(", ")
            ))
        }
    }
}

/// What this process may do to a file's owner.
pub struct Rights {
    pub root: bool,
    pub uid: u32,
    /// Why container uids are not host uids here (userns-remap, rootless Docker), if they aren't.
    pub remapped: Option<String>,
}

impl Rights {
    pub fn of_this_process() -> Rights {
        let uid = effective_uid();
        let root = uid == 0;
        // Only root's chown depends on it; an engine that does not answer remaps nothing.
        let remapped = if root { docker_remaps_uids() } else { None };
        Rights {
            root,
            uid,
            remapped,
        }
    }
}

/// The effective uid: the owner of /proc/self, else `id -u`.
fn effective_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    if let Ok(meta) = fs::metadata("/proc/self") {
        return meta.uid();
    }
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(u32::MAX)
}

fn docker_remaps_uids() -> Option<String> {
    let mut info = Command::new("docker");
    info.args(["info", "--format", "{{json .SecurityOptions}}"]);
    let out = run_with_timeout(info, PROBE).ok()??;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("name=userns") {
        Some("the Docker engine remaps container uids (userns-remap)".into())
    } else if text.contains("name=rootless") {
        Some("the Docker engine is rootless: container uids are not host uids".into())
    } else {
        None
    }
}

/// The owner and mode a secret file gets here: [`SecretAccess`] as far as this process can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretFile {
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Looser than the stack model asks only because this process is not root.
    pub limited_by_rights: bool,
    /// Why it is 0644 although this process could do better.
    pub why: Option<String>,
}

impl SecretFile {
    pub fn of(access: &SecretAccess, rights: &Rights) -> SecretFile {
        let file = |mode, uid, gid| SecretFile {
            mode,
            uid,
            gid,
            limited_by_rights: false,
            why: None,
        };
        let world = |limited: bool, why: Option<String>| SecretFile {
            mode: 0o644,
            uid: None,
            gid: None,
            limited_by_rights: limited,
            why,
        };
        match access {
            SecretAccess::Unmounted => file(0o600, None, None),
            SecretAccess::World(why) => world(false, Some(why.clone())),
            _ if rights.root && rights.remapped.is_some() => world(false, rights.remapped.clone()),
            SecretAccess::Owner { uid, gid } if rights.root => file(0o600, Some(*uid), *gid),
            SecretAccess::Group { gid } if rights.root => file(0o640, Some(0), Some(*gid)),
            // Our own uid is the reader's: no chown needed.
            SecretAccess::Owner { uid, .. } if *uid == rights.uid => file(0o600, None, None),
            _ => world(true, None),
        }
    }

    /// `0600, owner 999:999`, for progress lines.
    pub fn describe(&self) -> String {
        let mut out = format!("{:04o}", self.mode);
        match (self.uid, self.gid) {
            (Some(u), Some(g)) => out.push_str(&format!(", owner {u}:{g}")),
            (Some(u), None) => out.push_str(&format!(", owner {u}")),
            (None, Some(g)) => out.push_str(&format!(", group {g}")),
            (None, None) => {}
        }
        if let Some(why) = &self.why {
            out.push_str(&format!(": {why}"));
        }
        out
    }
}

/// Written beside, then renamed: a crash leaves the old file or the new one, never half of
/// one, and the content is never readable by anyone else, not even for a moment.
fn write_secret(path: &Path, content: &str, file: &SecretFile) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.file_name().context("secret path has no file name")?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(content.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(f);
    if file.uid.is_some() || file.gid.is_some() {
        std::os::unix::fs::chown(&tmp, file.uid, file.gid)
            .with_context(|| format!("giving {} to its service's user", tmp.display()))?;
    }
    fs::set_permissions(&tmp, fs::Permissions::from_mode(file.mode))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming {}", tmp.display()))?;
    Ok(())
}

/// Brings an existing secret file to `want`; a line when something changed (or would).
/// Without root only bits are taken away: a stricter file someone made stays as it is.
fn tighten(
    path: &Path,
    want: &SecretFile,
    rights: &Rights,
    dry_run: bool,
) -> Result<Option<String>> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Ok(None);
    }
    let mode = meta.mode() & 0o7777;
    let (uid, gid) = (meta.uid(), meta.gid());
    let (new_mode, new_uid, new_gid) = if rights.root {
        (want.mode, want.uid.unwrap_or(uid), want.gid.unwrap_or(gid))
    } else if uid == rights.uid {
        (mode & want.mode, uid, gid)
    } else {
        // Not ours: nothing we could change.
        return Ok(None);
    };
    if (new_mode, new_uid, new_gid) == (mode, uid, gid) {
        return Ok(None);
    }
    if !dry_run {
        if (new_uid, new_gid) != (uid, gid) {
            std::os::unix::fs::chown(path, Some(new_uid), Some(new_gid))
                .with_context(|| format!("giving {} to {new_uid}:{new_gid}", path.display()))?;
        }
        fs::set_permissions(path, fs::Permissions::from_mode(new_mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
    }
    let shown = SecretFile {
        mode: new_mode,
        uid: Some(new_uid),
        gid: Some(new_gid),
        limited_by_rights: false,
        why: want.why.clone(),
    };
    Ok(Some(format!(
        "set {} to {} (was {mode:04o}, owner {uid}:{gid})",
        path.display(),
        shown.describe()
    )))
}

/// The secrets directory back to 0700 if it was opened up (only the owner or root can).
fn tighten_dir(dir: &Path, rights: &Rights, dry_run: bool) -> Result<Option<String>> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(dir)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 == 0 || !(rights.root || meta.uid() == rights.uid) {
        return Ok(None);
    }
    if !dry_run {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(Some(format!(
        "set {} to 0700 (was {mode:04o})",
        dir.display()
    )))
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
mod tests;
