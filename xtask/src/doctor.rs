//! `cargo xtask doctor`: which tools are installed, their versions, and what needs them.
//!
//! The tool table (`util::tools`) is also what `ci` steps name as prerequisites, so a step's
//! needs and doctor's report cannot disagree.

use std::{process::ExitCode, thread};

use anyhow::Result;

use crate::util::tools::{Status, Tool};

/// Which `ci` steps need a tool (given by the caller, so that doctor does not import ci).
pub type StepsNeeding = fn(Tool) -> Vec<&'static str>;

/// Every task that needs `tool`: the `ci` steps naming it, then the others.
fn needed_by(tool: Tool, steps: StepsNeeding) -> String {
    let mut users: Vec<String> = steps(tool)
        .into_iter()
        .map(|step| format!("ci {step}"))
        .collect();
    if !tool.used_by().is_empty() {
        users.push(tool.used_by().to_string());
    }
    users.join(", ")
}

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

pub fn run(_args: Args, steps: StepsNeeding) -> Result<ExitCode> {
    // Probes are independent and some are slow (docker), so run them side by side.
    let statuses = thread::scope(|scope| {
        Tool::ALL
            .map(|tool| scope.spawn(move || tool.check()))
            .map(|probe| probe.join().expect("probe thread panicked"))
    });
    let report: Vec<_> = Tool::ALL.into_iter().zip(statuses).collect();
    print!("{}", format_table(&report, steps));

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
            needed_by(tool, steps)
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

fn format_table(report: &[(Tool, Status)], steps: StepsNeeding) -> String {
    let rows: Vec<[String; 4]> = report
        .iter()
        .map(|(tool, status)| {
            let (state, detail) = match status {
                Status::Found(version) => ("ok", version.as_str()),
                Status::Missing(why) if tool.required() => ("MISSING", why.as_str()),
                Status::Missing(why) => ("missing", why.as_str()),
            };
            let users = if tool.required() {
                format!("{} (required)", needed_by(*tool, steps))
            } else {
                needed_by(*tool, steps)
            };
            [
                tool.name().to_string(),
                state.to_string(),
                detail.to_string(),
                users,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(tool: Tool) -> Vec<&'static str> {
        match tool {
            Tool::Rustfmt => vec!["fmt"],
            _ => vec![],
        }
    }

    #[test]
    fn needed_by_includes_ci_steps() {
        assert_eq!(needed_by(Tool::Rustfmt, steps), "ci fmt");
        assert!(needed_by(Tool::Cargo, steps).contains("dev"));
    }

    #[test]
    fn table_marks_missing_required_tools_loudly() {
        let table = format_table(
            &[
                (Tool::Cargo, Status::Found("cargo 1.95.0".into())),
                (Tool::Clippy, Status::Missing("not installed".into())),
                (Tool::Node, Status::Missing("node not found on PATH".into())),
            ],
            steps,
        );
        let lines: Vec<_> = table.lines().collect();
        assert!(lines[0].starts_with("tool"));
        assert!(lines[1].starts_with("cargo   ok"));
        assert!(lines[2].contains("MISSING") && lines[2].ends_with("(required)"));
        assert!(lines[3].contains("missing") && !lines[3].contains("MISSING"));
    }
}
