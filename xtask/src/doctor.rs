//! `cargo xtask doctor`: which tools are installed, their versions, and what needs them.
//!
//! The tool table here is also what `ci` steps name as prerequisites, so a step's needs and
//! doctor's report cannot disagree.

use std::{
    io::Read,
    process::{Command, ExitCode, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::Result;

use crate::ci;

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(clap::Args, Debug)]
#[command(
    about = "Report which tools are installed, their versions, and what needs them",
    long_about = "List every tool the project's tasks use: found or missing, its version \
                  (first line of its version output) and which tasks need it.\n\n\
                  cargo, rustfmt and clippy are required; the rest are optional, and the report \
                  says what will not work without them. Each probe is given 5 seconds, so a hung \
                  Docker daemon cannot hang doctor.",
    after_help = "Exit status:\n  0  all required tools are present (optional ones may be missing)\n  \
                  1  a required tool is missing or broken\n  2  bad command line"
)]
pub struct Args {}

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

    /// Every task that needs this tool: the `ci` steps naming it, then the others.
    pub fn needed_by(self) -> String {
        let mut users: Vec<String> = ci::steps()
            .iter()
            .filter(|step| step.needs.contains(&self))
            .map(|step| format!("ci {}", step.name))
            .collect();
        let used_by = self.spec().used_by;
        if !used_by.is_empty() {
            users.push(used_by.to_string());
        }
        users.join(", ")
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

pub fn run(_args: Args) -> Result<ExitCode> {
    // Probes are independent and some are slow (docker), so run them side by side.
    let statuses = thread::scope(|scope| {
        Tool::ALL
            .map(|tool| scope.spawn(move || tool.check()))
            .map(|probe| probe.join().expect("probe thread panicked"))
    });
    let report: Vec<_> = Tool::ALL.into_iter().zip(statuses).collect();
    print!("{}", format_table(&report));

    let missing = |required: bool| -> Vec<Tool> {
        report
            .iter()
            .filter(|(tool, status)| {
                tool.required() == required && matches!(status, Status::Missing(_))
            })
            .map(|(tool, _)| *tool)
            .collect()
    };
    println!();
    for tool in missing(false) {
        println!(
            "optional {} is missing; without it, no: {}",
            tool.name(),
            tool.needed_by()
        );
    }
    let missing_required = missing(true);
    if missing_required.is_empty() {
        println!("doctor: all required tools are present");
        Ok(ExitCode::SUCCESS)
    } else {
        let names: Vec<_> = missing_required.iter().map(|tool| tool.name()).collect();
        println!("doctor: required tools missing: {}", names.join(", "));
        Ok(ExitCode::FAILURE)
    }
}

fn format_table(report: &[(Tool, Status)]) -> String {
    let rows: Vec<[String; 4]> = report
        .iter()
        .map(|(tool, status)| {
            let (state, detail) = match status {
                Status::Found(version) => ("ok", version.as_str()),
                Status::Missing(why) if tool.required() => ("MISSING", why.as_str()),
                Status::Missing(why) => ("missing", why.as_str()),
            };
            let needed_by = if tool.required() {
                format!("{} (required)", tool.needed_by())
            } else {
                tool.needed_by()
            };
            [
                tool.name().to_string(),
                state.to_string(),
                detail.to_string(),
                needed_by,
            ]
        })
        .collect();
    let header = ["tool", "status", "version / problem", "needed by"].map(String::from);
    let mut widths = [0; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn first_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(str::to_string)
}

pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs `command` with its output captured; `Ok(None)` if it ran past `timeout`, in which case
/// it is killed. (`docker info` blocks for a long time when the daemon is unresponsive.)
pub fn run_with_timeout(
    mut command: Command,
    timeout: Duration,
) -> std::io::Result<Option<Output>> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Drain the pipes on threads, so a chatty child cannot block on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            let stdout = stdout.join().unwrap_or_default();
            let stderr = stderr.join().unwrap_or_default();
            return Ok(Some(Output {
                status,
                stdout,
                stderr,
            }));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            // The readers are left behind: a grandchild may still hold the pipes open.
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_skips_blank_lines() {
        assert_eq!(
            first_line(b"\n  cargo 1.95.0 (abc)\nmore\n"),
            Some("cargo 1.95.0 (abc)".into())
        );
        assert_eq!(first_line(b" \n"), None);
    }

    #[test]
    fn slow_commands_are_killed() {
        let mut sleep = Command::new("sleep");
        sleep.arg("10");
        let started = Instant::now();
        assert!(run_with_timeout(sleep, Duration::from_millis(200))
            .unwrap()
            .is_none());
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn output_is_captured() {
        let mut echo = Command::new("sh");
        echo.args(["-c", "echo v1.2; echo oops >&2; exit 3"]);
        let out = run_with_timeout(echo, PROBE_TIMEOUT).unwrap().unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(first_line(&out.stdout).as_deref(), Some("v1.2"));
        assert_eq!(first_line(&out.stderr).as_deref(), Some("oops"));
    }

    #[test]
    fn needed_by_includes_ci_steps() {
        assert_eq!(Tool::Rustfmt.needed_by(), "ci fmt");
        assert!(Tool::Cargo.needed_by().contains("dev"));
    }

    #[test]
    fn table_marks_missing_required_tools_loudly() {
        let table = format_table(&[
            (Tool::Cargo, Status::Found("cargo 1.95.0".into())),
            (Tool::Clippy, Status::Missing("not installed".into())),
            (Tool::Node, Status::Missing("node not found on PATH".into())),
        ]);
        let lines: Vec<_> = table.lines().collect();
        assert!(lines[0].starts_with("tool"));
        assert!(lines[1].starts_with("cargo   ok"));
        assert!(lines[2].contains("MISSING") && lines[2].ends_with("(required)"));
        assert!(lines[3].contains("missing") && !lines[3].contains("MISSING"));
    }
}
