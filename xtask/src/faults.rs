//! The `faults` step of `cargo xtask ci`: runs the fault-injection suite (tests/it/faults.rs, whose
//! tests are #[ignore]d in the plain `test` step) and counts its scenarios for the summary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::util::{project_root, Note};

/// What `cargo test` said it ran: the sums of its `test result:` lines.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
}

impl Tally {
    /// Adds the counts of one `test result: ok. 6 passed; 0 failed; ...` line, if it is one.
    pub fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let words: Vec<_> = part.split_whitespace().collect();
            // "ok. 6 passed" / "FAILED. 1 passed" / "2 failed"
            if let [.., n, what] = words[..] {
                let Ok(n) = n.parse::<u64>() else { continue };
                match what {
                    "passed" => self.passed += n,
                    "failed" => self.failed += n,
                    _ => {}
                }
            }
        }
    }
}

/// Runs `cargo ARGS` in the repository root, showing its output as it comes and tallying its
/// `test result:` lines. Fails if cargo fails.
pub fn cargo_test_tallied(args: &[&str], env: &[(&str, &str)]) -> Result<(Tally, bool)> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(args)
        .current_dir(project_root())
        .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().context("cannot run cargo")?;
    let mut tally = Tally::default();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        println!("{line}");
        tally.add_line(&line);
    }
    Ok((tally, child.wait()?.success()))
}

pub fn run_ci(note: &mut Note) -> Result<()> {
    let (tally, ok) = cargo_test_tallied(
        &[
            "test",
            "--locked",
            "--workspace",
            "--test",
            "it",
            "--",
            "--ignored",
            "faults::",
            "--nocapture",
            "--test-threads=2",
        ],
        &[],
    )?;
    note.set(format!(
        "{} scenarios passed, {} failed",
        tally.passed, tally.failed
    ));
    if !ok || tally.failed > 0 {
        bail!("{} fault scenario(s) failed", tally.failed.max(1));
    }
    if tally.passed == 0 {
        bail!("no fault scenario ran");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_result_lines_are_summed() {
        let mut tally = Tally::default();
        for line in [
            "running 6 tests",
            "test result: ok. 6 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 80.1s",
            "test result: FAILED. 4 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out",
            "test a_test_named_test_result ... ok",
        ] {
            tally.add_line(line);
        }
        assert_eq!(
            tally,
            Tally {
                passed: 10,
                failed: 2
            }
        );
    }
}
