//! The process layer: every task runs its commands through xshell's `cmd!` or through these,
//! which add what xshell does not give — `--dry-run` printing, a deadline (a hung `docker info`
//! must not hang a task), progress headings — and one shape of error: the command as a person
//! would type it, and how it failed.

use std::{
    io::Read,
    process::{Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use super::{section, show};

/// A child's exit status as a task's own, for tasks that pass it on; death by signal N as a
/// shell reports it, 128 + N.
pub fn exit_code(status: ExitStatus) -> std::process::ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|sig| 128 + sig))
        .unwrap_or(1);
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Runs `command` with its output shown, or with `dry_run` prints what it would run.
pub fn run_or_print(command: Command, dry_run: bool) -> Result<()> {
    if dry_run {
        println!("would run: {}", show(&command));
        return Ok(());
    }
    run(command)
}

/// Runs `command` with its output shown; fails unless it succeeds.
pub fn run(mut command: Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot run {}", show(&command)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", show(&command));
    }
    Ok(())
}

/// Runs `command` under a progress heading and hands back how it ended, for tasks that pass
/// a command's exit status on.
pub fn status(mut command: Command) -> Result<ExitStatus> {
    section(&format!("run: {}", show(&command)));
    command
        .status()
        .with_context(|| format!("cannot run {}", show(&command)))
}

/// Runs `command` under a progress heading with its progress (stderr) shown, for what it
/// prints on stdout; how it ended is the caller's to judge.
pub fn run_for_stdout(command: &mut Command) -> Result<std::process::Output> {
    section(&format!("run: {}", show(command)));
    command
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", show(command)))
}

/// Runs `command` quietly for its standard output (trimmed); fails with its stderr unless it
/// succeeds.
pub fn read(mut command: Command) -> Result<String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", show(&command)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed: {}",
            show(&command),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// [`read`] for a command made with xshell's `cmd!`.
pub fn read_cmd(command: xshell::Cmd<'_>) -> Result<String> {
    read(command.into())
}

/// The first non-blank line of a command's output.
pub fn first_line(bytes: &[u8]) -> Option<String> {
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
        let out = run_with_timeout(echo, Duration::from_secs(5))
            .unwrap()
            .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(first_line(&out.stdout).as_deref(), Some("v1.2"));
        assert_eq!(first_line(&out.stderr).as_deref(), Some("oops"));
    }
}
