//! One deploy at a time per target: `flock` on `<dir>/.deploy.lock`, held by a remote `cat`
//! that lives as long as our SSH session. When the deploy ends (or this process dies, or the
//! connection drops) `cat` reads end-of-file, exits, and the lock is released: no stale locks.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Stdio},
};

use anyhow::{bail, Result};

use super::ssh::{quote, Remote};

/// flock's exit status when the lock is taken (`-E`).
const BUSY: i32 = 75;

pub struct Lock {
    child: Child,
}

impl Lock {
    /// Takes the target's deploy lock, waiting up to `wait_secs` (0: fail at once when taken).
    pub fn acquire(remote: &Remote, dir: &str, holder: &str, wait_secs: u64) -> Result<Lock> {
        let lock = format!("{dir}/.deploy.lock");
        let info = format!("{dir}/.deploy.lock.holder");
        let wait = if wait_secs == 0 {
            "-n".to_string()
        } else {
            format!("-w {wait_secs}")
        };
        let script = format!(
            "mkdir -p {d} && exec flock {wait} -E {BUSY} {l} sh -c {inner}",
            d = quote(dir),
            l = quote(&lock),
            inner = quote(&format!(
                "printf '%s\\n' {h} > {i}; echo locked; cat >/dev/null",
                h = quote(holder),
                i = quote(&info)
            )),
        );
        let mut child = remote.spawn(&script, Stdio::piped())?;
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() == "locked" {
            return Ok(Lock { child });
        }
        let out = child.wait_with_output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() == Some(BUSY) {
            let holder = remote
                .run(&format!("cat {} 2>/dev/null", quote(&info)), None)
                .map(|o| o.stdout.trim().to_string())
                .unwrap_or_default();
            let waited = if wait_secs == 0 {
                "use --wait-lock SECS to wait for it".to_string()
            } else {
                format!("waited {wait_secs} s")
            };
            bail!(
                "another deploy is running on target `{}` (lock {lock}, held by: {}); {waited}",
                remote.name,
                if holder.is_empty() {
                    "unknown"
                } else {
                    &holder
                }
            );
        }
        if out.status.code() == Some(255) {
            bail!(
                "{}",
                super::ssh::classify(&remote.name, &remote.destination(), &stderr)
            );
        }
        bail!(
            "cannot take the deploy lock on target `{}` ({}): {}. Is `flock` (util-linux) installed there?",
            remote.name,
            out.status,
            stderr.trim()
        )
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Closing stdin ends the remote `cat`, which releases the lock.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
