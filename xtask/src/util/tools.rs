//! The tools tasks need: how to find each, and its version. `ci` steps name theirs; `cargo
//! xtask doctor` reports them all.

use std::{process::Command, time::Duration};

use super::process::{first_line, run_with_timeout};

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A tool some task needs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tool {
    Cargo,
    Rustfmt,
    Clippy,
    Node,
    Npm,
    Docker,
    DockerEngine,
    DockerCompose,
    DockerBuildx,
    Psql,
    PgDump,
    Chromium,
}

/// How to recognise a tool: the first of `bins` on PATH, run with `args`.
struct Spec {
    name: &'static str,
    required: bool,
    /// Tasks that need it besides the `ci` steps, which are read from the step table.
    used_by: &'static str,
    bins: &'static [&'static str],
    args: &'static [&'static str],
}

impl Tool {
    pub const ALL: [Tool; 12] = [
        Tool::Cargo,
        Tool::Rustfmt,
        Tool::Clippy,
        Tool::Node,
        Tool::Npm,
        Tool::Docker,
        Tool::DockerEngine,
        Tool::DockerCompose,
        Tool::DockerBuildx,
        Tool::Psql,
        Tool::PgDump,
        Tool::Chromium,
    ];

    fn spec(self) -> Spec {
        let (name, required, used_by, bins, args): (_, _, _, &[&str], &[&str]) = match self {
            Tool::Cargo => (
                "cargo",
                true,
                "dev, every build",
                &["cargo"],
                &["--version"],
            ),
            Tool::Rustfmt => ("rustfmt", true, "", &["rustfmt"], &["--version"]),
            Tool::Clippy => ("clippy", true, "", &["cargo"], &["clippy", "--version"]),
            Tool::Node => (
                "node",
                false,
                "web UI (cargo xtask frontend, dev)",
                &["node"],
                &["--version"],
            ),
            Tool::Npm => (
                "npm",
                false,
                "web UI (cargo xtask frontend, dev)",
                &["npm"],
                &["--version"],
            ),
            Tool::Docker => (
                "docker",
                false,
                "container images (cargo xtask build, fixtures)",
                &["docker"],
                &["--version"],
            ),
            Tool::DockerEngine => (
                "Docker engine",
                false,
                "compose stack (cargo xtask up, containers test)",
                &["docker"],
                // --format keeps it to one line and skips the slow plugin scan.
                &["info", "--format", "{{.ServerVersion}}"],
            ),
            Tool::DockerCompose => (
                "docker compose",
                false,
                "compose stack (cargo xtask up)",
                &["docker"],
                &["compose", "version"],
            ),
            Tool::DockerBuildx => (
                "docker buildx",
                false,
                "image builds (cargo xtask build)",
                &["docker"],
                &["buildx", "version"],
            ),
            Tool::Psql => (
                "psql",
                false,
                "psql against the stack (optional)",
                &["psql"],
                &["--version"],
            ),
            Tool::PgDump => (
                "pg_dump",
                false,
                "`berth backup` run on the host against PostgreSQL (the stack's backup service has its own; optional)",
                &["pg_dump"],
                &["--version"],
            ),
            Tool::Chromium => (
                "chromium",
                false,
                "browser tests (cargo xtask e2e)",
                &["chromium", "chromium-browser", "google-chrome"],
                &["--version"],
            ),
        };
        Spec {
            name,
            required,
            used_by,
            bins,
            args,
        }
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn required(self) -> bool {
        self.spec().required
    }

    /// Tasks that need it besides the `ci` steps (which name their own needs).
    pub fn used_by(self) -> &'static str {
        self.spec().used_by
    }

    /// Finds the tool and asks for its version; never takes much longer than [`PROBE_TIMEOUT`].
    pub fn check(self) -> Status {
        let spec = self.spec();
        let Some(bin) = spec.bins.iter().find_map(|bin| which::which(bin).ok()) else {
            return Status::Missing(format!("{} not found on PATH", spec.bins.join(" / ")));
        };
        let shown = format!("{} {}", bin.display(), spec.args.join(" "));
        let mut command = Command::new(&bin);
        command.args(spec.args);
        match run_with_timeout(command, PROBE_TIMEOUT) {
            Err(err) => Status::Missing(format!("`{shown}` could not run: {err}")),
            Ok(None) => {
                Status::Missing(format!("`{shown}` gave no answer within {PROBE_TIMEOUT:?}"))
            }
            Ok(Some(out)) if out.status.success() => {
                match first_line(&out.stdout).or(first_line(&out.stderr)) {
                    Some(version) => Status::Found(version),
                    None => Status::Missing(format!("`{shown}` printed nothing")),
                }
            }
            Ok(Some(out)) => Status::Missing(
                first_line(&out.stderr)
                    .unwrap_or_else(|| format!("`{shown}` failed: {}", out.status)),
            ),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Found; holds its version line.
    Found(String),
    /// Missing or not working; holds why.
    Missing(String),
}
