//! `cargo xtask deploy | rollback | status` (and `logs --target`): a pinned release on a server
//! over SSH, with no registry needed. How it works, and why, is in docs/deploy.md.

mod lock;
mod ship;
mod ssh;
mod switch;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{bail, Context, Result};

use crate::{
    stack::{resolve::ResolvedStage, Stack},
    util::project_root,
    util::stage::TargetArgs,
};

pub use switch::remote_logs;

const AFTER_HELP: &str = "Exit status:\n  0  done\n  1  failed (the message says why and what \
                          still serves)\n  2  bad command line";

#[derive(clap::Args, Debug)]
#[command(
    about = "Deploy a pinned release to a server over SSH: locked, health-gated, rolled back on failure",
    long_about = "Put release VERSION (the local image berth:VERSION) on a target of \
                  deploy/stack.toml [targets] over SSH, with no registry: take the target's \
                  deploy lock; ship the images it lacks (docker save | ssh docker load, skipping \
                  images it already has); upload the generated compose file, nginx config and \
                  non-secret settings (secrets are made there on the first deploy and never leave \
                  it); back up the database (pg_dump into <dir>/backups); apply the release's \
                  migrations as their own step (`berth migrate up`; a contract migration, one the \
                  previous release cannot work with, is refused while it serves unless \
                  --allow-contract); start the new version beside the old one; wait until it is ready (/ready); switch the proxy to it (nginx reload: \
                  no request fails); stop the old one; record the deploy in <dir>/deploy.log. If \
                  the new version never gets ready, it is removed and the old one keeps serving \
                  (automatic rollback, recorded and reported). See docs/deploy.md.",
    after_help = AFTER_HELP
)]
pub struct DeployArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Release to deploy: the local image berth:VERSION [default: the workspace version]
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    /// Print what would be done (after read-only checks of the target), change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Wait up to SECS for another deploy's lock instead of failing at once
    #[arg(long, value_name = "SECS", default_value = "0")]
    pub wait_lock: u64,
    /// How long the new version may take to become ready before it is rolled back
    #[arg(long, value_name = "SECS", default_value = "120")]
    pub ready_timeout: u64,
    /// Apply the release's contract migrations (ones the previous release cannot work with)
    /// even though the previous release still serves during the switch
    #[arg(long)]
    pub allow_contract: bool,
}

#[derive(clap::Args, Debug)]
#[command(
    about = "Put a target back on an earlier release (health-gated, like deploy)",
    long_about = "Switch a target back to release VERSION (--to), or to the release that served \
                  before the current one (from the target's deploy log): the same locked, \
                  health-gated switch as `deploy`, recorded as a rollback. The image is normally \
                  still on the target; it is shipped when not. The database is backed up first \
                  but not restored: migrations are forward-only (see docs/deploy.md).",
    after_help = AFTER_HELP
)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Release to go back to [default: the one before the current one]
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// Print what would be done, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Wait up to SECS for another deploy's lock instead of failing at once
    #[arg(long, value_name = "SECS", default_value = "0")]
    pub wait_lock: u64,
    /// How long the release may take to become ready
    #[arg(long, value_name = "SECS", default_value = "120")]
    pub ready_timeout: u64,
}

#[derive(clap::Args, Debug)]
#[command(
    about = "Show a target's running release, its health and its last deploys",
    after_help = "Exit status:\n  0  a release is running and ready\n  1  nothing deployed, not \
                  ready, or the target cannot be reached\n  2  bad command line"
)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// How many deploy-log entries to show
    #[arg(long, default_value = "5", value_name = "N")]
    pub last: usize,
}

/// One target, with everything the tasks need to act on it.
pub struct Target {
    pub name: String,
    pub description: Option<String>,
    pub remote: ssh::Remote,
    pub dir: String,
    pub stack: Stack,
    pub stage: ResolvedStage,
    pub profiles: Vec<String>,
    /// Values of every declared variable there (defaults, then the target's own).
    pub vars: BTreeMap<String, String>,
    pub root: PathBuf,
}

impl Target {
    pub fn load(args: &TargetArgs) -> Result<Target> {
        let root = project_root();
        let stack = match &args.stack {
            None => Stack::load(&root)?,
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                Stack::parse(path.clone(), text, &root)?
            }
        };
        let names: Vec<String> = stack
            .file
            .targets
            .keys()
            .map(|k| k.get_ref().clone())
            .collect();
        let name = match (&args.target, names.as_slice()) {
            (Some(t), _) => t.clone(),
            (None, [only]) => only.clone(),
            (None, []) => bail!(
                "no targets in the stack file: add a [targets.NAME] table (host, user, stage, dir; \
                 see docs/deploy.md)"
            ),
            (None, _) => bail!(
                "several targets are declared ({}): choose one with --target",
                names.join(", ")
            ),
        };
        let Some(t) = stack.file.targets.get(name.as_str()) else {
            bail!(
                "no target `{name}` in the stack file; targets are: {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            );
        };
        let stage = stack.stage(t.stage.get_ref())?;
        let profiles: Vec<String> = t.profiles.iter().map(|p| p.get_ref().clone()).collect();
        let mut vars = BTreeMap::new();
        for (k, v) in &stack.file.variables {
            if let Some(d) = &v.default {
                vars.insert(k.get_ref().clone(), d.get_ref().clone());
            }
        }
        for (k, v) in &t.variables {
            vars.insert(k.get_ref().clone(), v.get_ref().clone());
        }
        let remote = ssh::Remote {
            name: name.clone(),
            host: t.host.get_ref().clone(),
            port: *t.port.get_ref(),
            user: t.user.get_ref().clone(),
            identity: t.identity.as_ref().map(|i| expand_home(i.get_ref())),
            known_hosts: ssh::known_hosts_file(),
        };
        let dir = t.dir.get_ref().trim_end_matches('/').to_string();
        Ok(Target {
            name,
            description: t.description.clone(),
            remote,
            dir,
            stage,
            profiles,
            vars,
            stack,
            root,
        })
    }

    /// `${NAME}` replaced by the target's value of each variable (`$$` is a literal `$`).
    pub fn expand(&self, text: &str) -> String {
        let mut out = text.replace("$$", "\u{0}");
        for (k, v) in &self.vars {
            out = out.replace(&format!("${{{k}}}"), v);
        }
        out.replace('\u{0}', "$")
    }
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// A release name as images and container labels can carry it.
pub fn check_version(version: &str) -> Result<()> {
    let ok = !version.is_empty()
        && version.len() <= 100
        && !version.starts_with(['.', '-'])
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !ok {
        bail!(
            "invalid version `{version}`: use letters, digits, `.`, `_` and `-` (an image tag), \
             e.g. 1.4.2"
        );
    }
    Ok(())
}

pub fn deploy(args: DeployArgs) -> Result<ExitCode> {
    let target = Target::load(&args.target)?;
    let version = match args.version {
        Some(v) => v,
        None => workspace_version(&target.root)?,
    };
    check_version(&version)?;
    switch::run(
        &target,
        switch::Plan {
            version,
            action: switch::Action::Deploy,
            dry_run: args.dry_run,
            wait_lock: args.wait_lock,
            ready_timeout: args.ready_timeout,
            allow_contract: args.allow_contract,
        },
    )
}

pub fn rollback(args: RollbackArgs) -> Result<ExitCode> {
    let target = Target::load(&args.target)?;
    let version = match args.to {
        Some(v) => v,
        None => switch::previous_version(&target)?,
    };
    check_version(&version)?;
    switch::run(
        &target,
        switch::Plan {
            version,
            action: switch::Action::Rollback,
            dry_run: args.dry_run,
            wait_lock: args.wait_lock,
            ready_timeout: args.ready_timeout,
            allow_contract: false,
        },
    )
}

pub fn status(args: StatusArgs) -> Result<ExitCode> {
    let target = Target::load(&args.target)?;
    switch::status(&target, args.last)
}

/// `version = "…"` of the workspace (Cargo.toml's [workspace.package]).
fn workspace_version(root: &Path) -> Result<String> {
    let text = std::fs::read_to_string(root.join("Cargo.toml"))?;
    let doc: toml::Table = toml::from_str(&text)?;
    doc.get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .context("no version in Cargo.toml's [workspace.package]: pass --version")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_target(table: &str) -> Result<Stack, String> {
        let root = project_root();
        let text = std::fs::read_to_string(root.join(crate::stack::STACK_PATH)).unwrap();
        Stack::parse("t.toml".into(), format!("{text}\n{table}"), &root).map_err(|d| {
            d.items
                .iter()
                .map(|i| format!("{} ({})", i.message, i.expected.clone().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    #[test]
    fn targets_are_read_from_the_stack_file() {
        let stack = with_target(
            "[targets.box]\nhost = \"berth.example.org\"\nuser = \"deploy\"\n\
             identity = \"~/.ssh/berth\"\nstage = \"prod\"\ndir = \"/srv/berth\"\n\
             profiles = [\"proxy\"]\nvariables = { BERTH_HTTPS_PORT = \"443\" }\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let t = &stack.file.targets["box"];
        assert_eq!(*t.port.get_ref(), 22);
        assert_eq!(t.dir.get_ref(), "/srv/berth");
    }

    #[test]
    fn bad_targets_are_explained() {
        let err = with_target(
            "[targets.box]\nhost = \"-oProxyCommand=x\"\nuser = \"deploy\"\n\
             identity = \"-----BEGIN OPENSSH PRIVATE KEY-----\"\nstage = \"staging\"\n\
             dir = \"srv/berth\"\nvariables = { DB_PASSWORD = \"x\" }\n",
        )
        .err()
        .unwrap();
        for expected in [
            "invalid host",
            "holds a key, not a path",
            "undefined stage `staging`",
            "invalid deployment directory",
            "does not enable profile `proxy`",
            "undeclared variable `DB_PASSWORD`",
        ] {
            assert!(err.contains(expected), "{expected:?} not in:\n{err}");
        }
        let err = with_target("[targets.box]\nhost = \"h\"\nuser = \"u\"\nstage = \"prod\"\ndir = \"/d\"\npassword = \"x\"\n")
            .err()
            .unwrap();
        assert!(err.contains("unknown field `password`"), "{err}");
    }

    #[test]
    fn versions_are_image_tags() {
        for good in ["1.4.2", "v1", "2026-12-01_rc.1"] {
            check_version(good).unwrap();
        }
        for bad in ["", "-x", ".1", "1 2", "a/b", "x:y", "$(id)"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }
}
