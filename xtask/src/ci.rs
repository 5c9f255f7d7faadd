//! `cargo xtask ci`: the one gate. Runs every step, even after a failure, then summarises.
//!
//! To add a check, add one `Step` to [`steps`]. A step that is another task's check names it
//! ([`Check`]); the composition root (`pipeline::run_check`) runs it, so that ci imports no
//! other task.

use std::{process::ExitCode, time::Duration};

use anyhow::Result;
use xshell::{cmd, Shell};

use crate::util::{
    is_ci, project_root, secs, section,
    tools::{Status, Tool},
    warn, Note, Timer,
};

#[derive(clap::Args, Debug)]
#[command(
    about = "Run the whole gate (gen, fmt, clippy, test, frontend, e2e, containers), then summarise",
    long_about = "Run every check the project is gated on, in order: gen, fmt, clippy, test, frontend, \
                  e2e, containers \
                  (`--list` shows them all).\n\n\
                  Every selected step runs even after one fails, so one run shows every problem; \
                  then a summary table lists each step's result and time, and the last line reads \
                  `ci: N passed, M failed` (with `, K skipped` when steps were skipped).\n\n\
                  A step whose tool is missing is skipped with a loud notice locally, but fails \
                  under CI (CI=true): CI never silently skips a check.",
    after_help = "Exit status:\n  0  no step failed\n  1  a step failed\n  2  bad command line (e.g. an unknown step)"
)]
pub struct Args {
    /// Skip STEP (repeatable)
    #[arg(long, value_name = "STEP", value_parser = step_name)]
    skip: Vec<String>,
    /// Run only STEP (repeatable); --skip still applies
    #[arg(long, value_name = "STEP", value_parser = step_name)]
    only: Vec<String>,
    /// List the steps, what they run and what they need, then exit
    #[arg(long, conflicts_with_all = ["skip", "only"])]
    list: bool,
}

/// One check of the gate.
pub struct Step {
    pub name: &'static str,
    pub description: &'static str,
    /// What `run` does, shown as it starts and by `--list`.
    pub command: &'static str,
    /// Tools it cannot run without (see `cargo xtask doctor`).
    pub needs: &'static [Tool],
    /// Runs the check; what it counted (scenarios, inputs) goes in the note.
    pub run: Run,
}

/// How a step runs.
pub enum Run {
    /// Commands run here.
    Here(fn(&Shell, &mut Note) -> Result<()>),
    /// Another task's check, run by the caller's [`RunCheck`].
    Task(Check),
}

/// The other tasks' checks that steps run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// `gen --check`
    Gen,
    /// `k8s validate`
    K8s,
    /// `scan`
    Scan,
    /// `fixtures`
    Fixtures,
    /// `frontend` (every check and the bundle)
    Frontend,
    /// `e2e`
    E2e,
    /// the fault-injection suite (counts its scenarios in the note)
    Faults,
    /// `fuzz --seconds 30` (counts its inputs in the note)
    Fuzz,
    /// `upgrade-test`
    Upgrade,
}

/// Runs one of the other tasks' checks (given by `main`, so that ci does not import them).
pub type RunCheck = fn(Check, &mut Note) -> Result<()>;

pub fn steps() -> Vec<Step> {
    vec![
        Step {
            name: "gen",
            description: "files generated from deploy/stack.toml are fresh and valid",
            command: "cargo xtask gen --check",
            needs: &[Tool::Cargo],
            run: Run::Task(Check::Gen),
        },
        Step {
            name: "k8s",
            description: "every Kubernetes overlay builds, meets the restricted profile and \
                          validates against the Kubernetes schemas (offline)",
            command: "cargo xtask k8s validate",
            needs: &[Tool::Cargo],
            run: Run::Task(Check::K8s),
        },
        Step {
            name: "scan",
            description: "the security policy scan of Dockerfiles, compose files and manifests \
                          has no open high finding (report in target/scan/)",
            command: "cargo xtask scan",
            needs: &[Tool::DockerCompose],
            run: Run::Task(Check::Scan),
        },
        Step {
            name: "fmt",
            description: "code is formatted as rustfmt would",
            command: "cargo fmt --all -- --check",
            needs: &[Tool::Rustfmt],
            run: Run::Here(|sh, _| Ok(cmd!(sh, "cargo fmt --all -- --check").quiet().run()?)),
        },
        Step {
            name: "clippy",
            description: "no lint warnings in any crate or target",
            command: "cargo clippy --locked --workspace --all-targets -- -D warnings",
            needs: &[Tool::Clippy],
            run: Run::Here(|sh, _| {
                Ok(cmd!(
                    sh,
                    "cargo clippy --locked --workspace --all-targets -- -D warnings"
                )
                .quiet()
                .run()?)
            }),
        },
        Step {
            name: "fixtures",
            description: "the models, LLM server and container images the tests use are in place \
                          and current",
            command: "cargo xtask fixtures",
            needs: &[Tool::DockerEngine],
            run: Run::Task(Check::Fixtures),
        },
        // --no-fail-fast: every test binary runs even after one fails, so one run shows every
        // failing test (as every step runs after one fails). Every test step selects the whole
        // workspace (`--workspace --test NAME`, not `-p berth`): the same features for the
        // shared dependencies, so the later steps reuse this step's build instead of redoing it.
        // The server's black-box tests are one binary (`it`); a step picks its modules by filter.
        Step {
            name: "test",
            description: "every test in the workspace passes",
            command: "cargo test --locked --workspace --no-fail-fast",
            needs: &[Tool::Cargo],
            run: Run::Here(|sh, _| {
                Ok(cmd!(sh, "cargo test --locked --workspace --no-fail-fast")
                    .quiet()
                    .run()?)
            }),
        },
        Step {
            name: "test-postgres",
            description:
                "the black-box account, server, RAG, backup and migration tests pass on PostgreSQL too",
            command: "BERTH_TEST_BACKEND=postgres cargo test --locked --no-fail-fast --workspace \
                      --test it -- accounts:: http:: rag:: scale_out:: backup:: migrate::",
            needs: &[Tool::Cargo, Tool::DockerEngine],
            run: Run::Here(|sh, _| {
                Ok(cmd!(
                    sh,
                    "cargo test --locked --no-fail-fast --workspace --test it -- accounts:: http:: rag:: scale_out:: backup:: migrate::"
                )
                .env("BERTH_TEST_BACKEND", "postgres")
                .quiet()
                .run()?)
            }),
        },
        Step {
            name: "upgrade",
            description: "the previous release's data and backup survive the upgrade to this \
                          checkout; it serves beside this one on PostgreSQL (expand phase)",
            command: "cargo xtask upgrade-test",
            needs: &[Tool::Cargo, Tool::DockerEngine],
            run: Run::Task(Check::Upgrade),
        },
        Step {
            name: "frontend",
            description: "the web UI type-checks, lints, passes its unit tests and bundles",
            command: "cargo xtask frontend",
            needs: &[Tool::Node, Tool::Npm],
            run: Run::Task(Check::Frontend),
        },
        Step {
            name: "e2e",
            description: "browser tests of the web UI against the real server pass (Chromium)",
            command: "cargo xtask e2e",
            needs: &[Tool::Cargo, Tool::Node, Tool::Npm, Tool::Chromium],
            run: Run::Task(Check::E2e),
        },
        Step {
            name: "faults",
            description: "outages under load: PostgreSQL killed, Redis and the model server down, \
                          SIGTERM, a full disk; a short soak",
            command: "cargo test --locked --workspace --test it -- --ignored faults:: --nocapture \
                      --test-threads=2",
            needs: &[Tool::Cargo, Tool::DockerEngine],
            run: Run::Task(Check::Faults),
        },
        Step {
            name: "fuzz",
            description:
                "random and mutated input to the HTTP API (schemathesis, from its OpenAPI \
                          document) and to the stack-file parser: no 5xx, no panic",
            command: "cargo xtask fuzz --seconds 30",
            needs: &[Tool::Cargo],
            run: Run::Task(Check::Fuzz),
        },
        Step {
            name: "containers",
            description: "the app image builds; the cpu stack is healthy and serves register → ask",
            command:
                "cargo test --locked --workspace --test it -- --ignored containers:: --nocapture",
            needs: &[Tool::Docker, Tool::DockerEngine, Tool::DockerCompose],
            run: Run::Here(|sh, _| {
                Ok(cmd!(
                    sh,
                    "cargo test --locked --workspace --test it -- --ignored containers:: --nocapture"
                )
                .quiet()
                .run()?)
            }),
        },
        Step {
            name: "deploy",
            description: "cargo xtask deploy to a real server (sshd + its own Docker): no failed \
                          request across the switch, automatic rollback, lock, clear errors",
            command:
                "cargo test --locked --workspace --test tasks -- --ignored deploy:: --nocapture",
            needs: &[Tool::Docker, Tool::DockerEngine],
            run: Run::Here(|sh, _| {
                Ok(cmd!(
                    sh,
                    "cargo test --locked --workspace --test tasks -- --ignored deploy:: --nocapture"
                )
                .quiet()
                .run()?)
            }),
        },
        Step {
            name: "release",
            description: "cargo xtask release to a local registry: pushed, pulled back by \
                          digest, healthy; a second release of the commit gives the same digest",
            command:
                "cargo test --locked --workspace --test tasks -- --ignored release:: --nocapture",
            needs: &[Tool::Docker, Tool::DockerEngine, Tool::DockerCompose],
            run: Run::Here(|sh, _| {
                Ok(cmd!(
                    sh,
                    "cargo test --locked --workspace --test tasks -- --ignored release:: --nocapture"
                )
                .quiet()
                .run()?)
            }),
        },
    ]
}

/// The steps that need `tool`, for `cargo xtask doctor`.
pub fn steps_needing(tool: Tool) -> Vec<&'static str> {
    steps()
        .iter()
        .filter(|step| step.needs.contains(&tool))
        .map(|step| step.name)
        .collect()
}

/// clap value parser: rejects unknown step names with the list of known ones (exit 2).
fn step_name(name: &str) -> Result<String, String> {
    let names: Vec<_> = steps().iter().map(|step| step.name).collect();
    if names.contains(&name) {
        Ok(name.to_string())
    } else {
        Err(format!("no such step; steps are: {}", names.join(", ")))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

struct Report {
    name: &'static str,
    outcome: Outcome,
    /// None when the step did not run.
    time: Option<Duration>,
    /// What the step counted, e.g. `6 scenarios passed, 0 failed` (see [`Note`]).
    note: Option<String>,
}

pub fn run(args: Args, run_check: RunCheck) -> Result<ExitCode> {
    let steps = steps();
    if args.list {
        print!("{}", format_list(&steps));
        return Ok(ExitCode::SUCCESS);
    }

    let sh = Shell::new()?;
    sh.change_dir(project_root());
    let mut reports = Vec::new();
    let mut lacking_tools = Vec::new();
    for (step, skip_reason) in select(&steps, &args.only, &args.skip) {
        let mut note = Note::default();
        let (outcome, time) = match skip_reason {
            Some(reason) => (Outcome::Skipped(reason.to_string()), None),
            None => run_step(step, &sh, &mut note, run_check),
        };
        let note = note.take();
        if skip_reason.is_none() && matches!(outcome, Outcome::Skipped(_)) {
            lacking_tools.push(step.name);
        }
        reports.push(Report {
            name: step.name,
            outcome,
            time,
            note,
        });
    }

    println!();
    if !lacking_tools.is_empty() {
        warn(&format!(
            "not the full gate: skipped for missing tools: {}",
            lacking_tools.join(", ")
        ));
    }
    print!("{}", format_summary(&reports));
    let failed = reports
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Failed(_)));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn run_step(
    step: &Step,
    sh: &Shell,
    note: &mut Note,
    run_check: RunCheck,
) -> (Outcome, Option<Duration>) {
    if let Some(why) = missing_tool(step) {
        return (unrunnable(step.name, why, is_ci()), None);
    }
    section(&format!("{}: {}", step.name, step.command));
    let timer = Timer::start();
    let result = match &step.run {
        Run::Here(run) => run(sh, note),
        Run::Task(check) => run_check(*check, note),
    };
    let outcome = match result {
        Ok(()) => Outcome::Passed,
        Err(err) => {
            warn(&format!("{} failed: {err}", step.name));
            Outcome::Failed("see its output above".to_string())
        }
    };
    (outcome, Some(timer.elapsed()))
}

/// A step whose tool is missing: skipped loudly here, failed under CI.
fn unrunnable(name: &str, why: String, under_ci: bool) -> Outcome {
    if under_ci {
        warn(&format!(
            "{name}: {why}; failing it, since CI never skips a check"
        ));
        Outcome::Failed(why)
    } else {
        warn(&format!(
            "SKIPPING {name}: {why} (see `cargo xtask doctor`)"
        ));
        Outcome::Skipped(why)
    }
}

/// Every step in order, with `Some(reason)` for those the flags leave out.
fn select<'a>(
    steps: &'a [Step],
    only: &[String],
    skip: &[String],
) -> Vec<(&'a Step, Option<&'static str>)> {
    steps
        .iter()
        .map(|step| {
            let reason = if skip.iter().any(|s| s == step.name) {
                Some("--skip")
            } else if !only.is_empty() && !only.iter().any(|s| s == step.name) {
                Some("not in --only")
            } else {
                None
            };
            (step, reason)
        })
        .collect()
}

/// Why the step cannot run here, if it can't.
fn missing_tool(step: &Step) -> Option<String> {
    step.needs.iter().find_map(|tool| match tool.check() {
        Status::Found(_) => None,
        Status::Missing(why) => Some(format!("needs {}: {why}", tool.name())),
    })
}

fn format_list(steps: &[Step]) -> String {
    let width = steps.iter().map(|step| step.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for step in steps {
        let needs: Vec<_> = step.needs.iter().map(|tool| tool.name()).collect();
        out.push_str(&format!("{:width$}  {}\n", step.name, step.description));
        out.push_str(&format!("{:width$}  runs:  {}\n", "", step.command));
        out.push_str(&format!("{:width$}  needs: {}\n", "", needs.join(", ")));
    }
    out
}

fn format_summary(reports: &[Report]) -> String {
    let rows: Vec<[String; 3]> = reports
        .iter()
        .map(|r| {
            let result = match (&r.outcome, &r.note) {
                (Outcome::Passed, None) => "ok".to_string(),
                (Outcome::Passed, Some(note)) => format!("ok ({note})"),
                (Outcome::Failed(why), None) => format!("FAILED ({why})"),
                (Outcome::Failed(why), Some(note)) => format!("FAILED ({why}; {note})"),
                (Outcome::Skipped(why), _) => format!("skipped ({why})"),
            };
            let time = r.time.map_or("-".to_string(), secs);
            [r.name.to_string(), result, time]
        })
        .collect();
    let header = ["step", "result", "time"].map(String::from);
    let w0 = rows
        .iter()
        .chain([&header])
        .map(|row| row[0].len())
        .max()
        .unwrap_or(0);
    let w1 = rows
        .iter()
        .chain([&header])
        .map(|row| row[1].len())
        .max()
        .unwrap_or(0);
    let w2 = rows
        .iter()
        .chain([&header])
        .map(|row| row[2].len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        out.push_str(&format!(
            "{:w0$}  {:w1$}  {:>w2$}\n",
            row[0], row[1], row[2]
        ));
    }

    let count = |pred: fn(&Outcome) -> bool| reports.iter().filter(|r| pred(&r.outcome)).count();
    let passed = count(|o| matches!(o, Outcome::Passed));
    let failed = count(|o| matches!(o, Outcome::Failed(_)));
    let skipped = count(|o| matches!(o, Outcome::Skipped(_)));
    out.push_str(&format!("ci: {passed} passed, {failed} failed"));
    if skipped > 0 {
        out.push_str(&format!(", {skipped} skipped"));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(selection: &[(&Step, Option<&str>)]) -> Vec<(&'static str, Option<String>)> {
        selection
            .iter()
            .map(|(step, reason)| (step.name, reason.map(String::from)))
            .collect()
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn step_names_are_unique() {
        let steps = steps();
        for (i, step) in steps.iter().enumerate() {
            assert!(
                steps[..i].iter().all(|earlier| earlier.name != step.name),
                "duplicate step {}",
                step.name
            );
        }
    }

    #[test]
    fn selects_everything_by_default() {
        let steps = steps();
        let selection = select(&steps, &[], &[]);
        assert!(selection.iter().all(|(_, reason)| reason.is_none()));
        assert_eq!(selection.len(), steps.len());
    }

    #[test]
    fn skip_and_only_combine() {
        let steps = steps();
        assert_eq!(
            names(&select(&steps, &[], &strings(&["clippy"]))),
            [
                ("gen", None),
                ("k8s", None),
                ("scan", None),
                ("fmt", None),
                ("clippy", Some("--skip".into())),
                ("fixtures", None),
                ("test", None),
                ("test-postgres", None),
                ("upgrade", None),
                ("frontend", None),
                ("e2e", None),
                ("faults", None),
                ("fuzz", None),
                ("containers", None),
                ("deploy", None),
                ("release", None)
            ]
        );
        assert_eq!(
            names(&select(
                &steps,
                &strings(&["fmt", "test"]),
                &strings(&["test"])
            )),
            [
                ("gen", Some("not in --only".into())),
                ("k8s", Some("not in --only".into())),
                ("scan", Some("not in --only".into())),
                ("fmt", None),
                ("clippy", Some("not in --only".into())),
                ("fixtures", Some("not in --only".into())),
                ("test", Some("--skip".into())),
                ("test-postgres", Some("not in --only".into())),
                ("upgrade", Some("not in --only".into())),
                ("frontend", Some("not in --only".into())),
                ("e2e", Some("not in --only".into())),
                ("faults", Some("not in --only".into())),
                ("fuzz", Some("not in --only".into())),
                ("containers", Some("not in --only".into())),
                ("deploy", Some("not in --only".into())),
                ("release", Some("not in --only".into()))
            ]
        );
    }

    #[test]
    fn missing_tools_fail_under_ci_and_skip_elsewhere() {
        let why = || "needs rustfmt: not found".to_string();
        assert_eq!(unrunnable("fmt", why(), true), Outcome::Failed(why()));
        assert_eq!(unrunnable("fmt", why(), false), Outcome::Skipped(why()));
    }

    #[test]
    fn unknown_steps_are_rejected() {
        assert!(step_name("fmt").is_ok());
        assert!(step_name("lint")
            .unwrap_err()
            .contains("fmt, clippy, fixtures, test"));
    }

    #[test]
    fn summary_ends_with_the_counts_line() {
        let reports = [
            Report {
                name: "fmt",
                outcome: Outcome::Passed,
                time: Some(Duration::from_millis(420)),
                note: None,
            },
            Report {
                name: "clippy",
                outcome: Outcome::Failed("see its output above".into()),
                time: Some(Duration::from_millis(12_340)),
                note: None,
            },
            Report {
                name: "test",
                outcome: Outcome::Skipped("--skip".into()),
                time: None,
                note: None,
            },
        ];
        let summary = format_summary(&reports);
        let lines: Vec<_> = summary.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["step", "result", "time"]
        );
        assert!(lines[1].starts_with("fmt     ok") && lines[1].ends_with("0.4s"));
        assert!(lines[2].contains("FAILED (see its output above)") && lines[2].ends_with("12.3s"));
        assert!(lines[3].contains("skipped (--skip)") && lines[3].ends_with('-'));
        assert_eq!(lines.last(), Some(&"ci: 1 passed, 1 failed, 1 skipped"));
    }

    #[test]
    fn counts_line_omits_zero_skipped() {
        let reports = [Report {
            name: "fmt",
            outcome: Outcome::Passed,
            time: Some(Duration::from_secs(1)),
            note: None,
        }];
        assert_eq!(
            format_summary(&reports).lines().last(),
            Some("ci: 1 passed, 0 failed")
        );
    }

    #[test]
    fn a_steps_counts_show_beside_its_result() {
        let reports = [
            Report {
                name: "faults",
                outcome: Outcome::Passed,
                time: Some(Duration::from_secs(90)),
                note: Some("6 scenarios passed, 0 failed".into()),
            },
            Report {
                name: "fuzz",
                outcome: Outcome::Failed("see its output above".into()),
                time: Some(Duration::from_secs(60)),
                note: Some("12345 inputs, 1 failure".into()),
            },
        ];
        let summary = format_summary(&reports);
        assert!(summary.contains("faults  ok (6 scenarios passed, 0 failed)"));
        assert!(summary.contains("FAILED (see its output above; 12345 inputs, 1 failure)"));
    }

    #[test]
    fn list_shows_commands_and_needs() {
        let list = format_list(&steps());
        assert!(list.contains("runs:  cargo fmt --all -- --check"));
        assert!(list.contains("needs: clippy"));
    }
}
