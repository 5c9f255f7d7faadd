//! Cargo as the tasks run it: building the server, and running tests while counting what
//! they said they ran.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::{project_root, section};

/// `cargo build --locked -p berth`, its progress on stderr; stdout stays berth's alone.
pub fn build_server() -> Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    let cmd = cmd!(sh, "cargo build --locked -p berth");
    section(&format!("build: {cmd}"));
    let status = Command::from(cmd)
        // Nothing in a build may eat the password waiting on our stdin.
        .stdin(Stdio::null())
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("build failed ({status}); see above");
    }
    Ok(())
}

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

/// Runs the black-box test NAME of the `it` binary alone (ignored or not) with `env`, its
/// output shown: whether it ran and passed.
pub fn it_test_passes(name: &str, env: &[(&str, &str)]) -> Result<bool> {
    let (tally, ok) = cargo_test_tallied(
        &[
            "test",
            "--locked",
            "--workspace",
            "--test",
            "it",
            "--",
            "--include-ignored",
            "--exact",
            name,
        ],
        env,
    )?;
    Ok(ok && tally.passed == 1)
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
