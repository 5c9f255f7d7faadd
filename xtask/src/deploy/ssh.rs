//! The system OpenSSH client, run non-interactively, with its failures turned into messages
//! that say what to do.
//!
//! Every call is `ssh -o BatchMode=yes -o ConnectTimeout=… host -- 'sh -c …'`: no password
//! prompts, a bounded wait for an unreachable host, and host keys pinned in the project's own
//! known_hosts file (`deploy/known_hosts`, trusted on first use), so a server that changes its
//! key is refused rather than silently trusted.

use std::{
    io::Write,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
};

use anyhow::{bail, Context, Result};

use crate::util::project_root;

/// How to reach one target.
#[derive(Clone, Debug)]
pub struct Remote {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity: Option<PathBuf>,
    pub known_hosts: PathBuf,
}

/// A remote command's result.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.status.success()
    }
}

/// `ssh` exits 255 for its own failures (connection, authentication, host key).
const SSH_FAILED: i32 = 255;
const CONNECT_TIMEOUT_SECS: u32 = 10;

/// Where host keys of deployment servers are pinned; `BERTH_DEPLOY_KNOWN_HOSTS` overrides it
/// (the tests use a throwaway one, since their servers are new every run).
pub fn known_hosts_file() -> PathBuf {
    std::env::var_os("BERTH_DEPLOY_KNOWN_HOSTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("deploy/known_hosts"))
}

/// Quotes `s` for a POSIX shell.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Remote {
    pub fn destination(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }

    /// `ssh` with every option set, ready for a remote command.
    pub fn command(&self) -> Command {
        if let Some(dir) = self.known_hosts.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let mut c = Command::new("ssh");
        c.args(["-o", "BatchMode=yes"])
            .args(["-o", &format!("ConnectTimeout={CONNECT_TIMEOUT_SECS}")])
            .args(["-o", "StrictHostKeyChecking=accept-new"])
            .args([
                "-o",
                &format!("UserKnownHostsFile={}", self.known_hosts.display()),
            ])
            .args(["-o", "ServerAliveInterval=15"])
            .args(["-o", "ServerAliveCountMax=4"])
            .args(["-o", "LogLevel=ERROR"])
            // AES-GCM first: with AES-NI it streams images faster than ChaCha20.
            .args([
                "-o",
                "Ciphers=aes128-gcm@openssh.com,chacha20-poly1305@openssh.com,aes256-gcm@openssh.com",
            ])
            .args(["-p", &self.port.to_string()])
            .args(["-l", &self.user]);
        if let Some(identity) = &self.identity {
            c.args(["-o", "IdentitiesOnly=yes"]).arg("-i").arg(identity);
        }
        c.arg(&self.host).arg("--");
        c
    }

    /// Runs `script` with `sh -c` on the target; stdin from `input` (or nothing).
    pub fn run(&self, script: &str, input: Option<&[u8]>) -> Result<Output> {
        let mut c = self.command();
        c.arg(format!("sh -c {}", quote(script)));
        c.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .context("cannot run `ssh`: install the OpenSSH client")?;
        if let Some(input) = input {
            let mut stdin = child.stdin.take().expect("piped stdin");
            // A failed write shows up as the command's own failure below.
            let _ = stdin.write_all(input);
        }
        let out = child.wait_with_output()?;
        let output = Output {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.check_connection(&output)?;
        Ok(output)
    }

    /// Runs `script` and fails, with its stderr, unless it succeeds; returns its stdout.
    pub fn must(&self, what: &str, script: &str) -> Result<String> {
        let out = self.run(script, None)?;
        if !out.ok() {
            bail!(
                "{what} failed on target `{}` ({}): {}",
                self.name,
                out.status,
                out.stderr.trim()
            );
        }
        Ok(out.stdout)
    }

    /// Writes `content` to `path` on the target atomically (temporary name, then rename) with
    /// `mode`. For files bind-mounted on their own (their inode must stay), see `overwrite`.
    pub fn write_file(&self, path: &str, content: &[u8], mode: &str) -> Result<()> {
        let tmp = format!("{path}.tmp.{}", std::process::id());
        let script = format!(
            "set -e; umask 077; cat > {t}; chmod {mode} {t}; sync {t} 2>/dev/null || :; mv -f {t} {p}",
            t = quote(&tmp),
            p = quote(path)
        );
        self.write_with(path, &script, content)
    }

    /// Replaces `path`'s content in place (same inode), staging it beside first so that a
    /// failed upload changes nothing: for files a running container bind-mounts.
    pub fn overwrite(&self, path: &str, content: &[u8]) -> Result<()> {
        let tmp = format!("{path}.new");
        let script = format!(
            "set -e; cat > {t}; if [ -e {p} ]; then cat {t} > {p}; rm -f {t}; else mv {t} {p}; fi",
            t = quote(&tmp),
            p = quote(path)
        );
        self.write_with(path, &script, content)
    }

    /// Runs a write `script` that reads `content` on stdin; one error message for both ways of writing.
    fn write_with(&self, path: &str, script: &str, content: &[u8]) -> Result<()> {
        let out = self.run(script, Some(content))?;
        if !out.ok() {
            bail!(
                "cannot write {path} on target `{}`: {}",
                self.name,
                out.stderr.trim()
            );
        }
        Ok(())
    }

    /// Starts `script` with stdin and stdout piped, for streaming (`docker load`) and for
    /// the lock, which lives as long as the session.
    pub fn spawn(&self, script: &str, stdout: Stdio) -> Result<Child> {
        let mut c = self.command();
        c.arg(format!("sh -c {}", quote(script)))
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(Stdio::piped());
        c.spawn()
            .context("cannot run `ssh`: install the OpenSSH client")
    }

    /// ssh's own failures, as messages that say what to do.
    fn check_connection(&self, out: &Output) -> Result<()> {
        if out.status.code() != Some(SSH_FAILED) {
            return Ok(());
        }
        bail!("{}", classify(&self.name, &self.destination(), &out.stderr))
    }
}

/// A clear message for an `ssh` failure (exit 255) from its stderr.
pub fn classify(name: &str, destination: &str, stderr: &str) -> String {
    let e = stderr.trim();
    let lower = e.to_ascii_lowercase();
    let reason = if lower.contains("permission denied") {
        format!(
            "SSH refused the login to {destination}: the key was not accepted. Check the target's \
             `user` and `identity` in deploy/stack.toml, and that the public key is in that \
             user's ~/.ssh/authorized_keys on the server"
        )
    } else if lower.contains("host key verification failed")
        || lower.contains("remote host identification has changed")
    {
        format!(
            "the host key of {destination} does not match the one pinned in {}: if the server \
             was really reinstalled, remove its line there (ssh-keygen -R) and deploy again; \
             otherwise do not connect",
            known_hosts_file().display()
        )
    } else if lower.contains("could not resolve hostname") {
        format!("cannot resolve the host of {destination}: check `host` in deploy/stack.toml")
    } else if lower.contains("connection refused")
        || lower.contains("timed out")
        || lower.contains("no route to host")
        || lower.contains("network is unreachable")
        || lower.contains("connection closed")
        || lower.contains("connection reset")
    {
        format!(
            "host unreachable: cannot connect to {destination} ({e}). Check that the server is \
             up, that sshd listens on that port, and `host`/`port` in deploy/stack.toml"
        )
    } else if lower.contains("identity file") || lower.contains("no such identity") {
        format!("the identity file of target `{name}` cannot be read ({e}): check `identity`")
    } else {
        format!("ssh to {destination} failed: {e}")
    };
    format!("target `{name}`: {reason}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_shell() {
        assert_eq!(quote("abc/d-e.f"), "abc/d-e.f");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn ssh_failures_are_told_apart() {
        let d = "deploy@h:22";
        assert!(classify("t", d, "deploy@h: Permission denied (publickey).").contains("refused"));
        assert!(
            classify("t", d, "ssh: connect to host h port 22: Connection refused")
                .contains("host unreachable")
        );
        assert!(classify(
            "t",
            d,
            "ssh: connect to host h port 22: Connection timed out"
        )
        .contains("host unreachable"));
        assert!(classify("t", d, "Host key verification failed.").contains("host key"));
        assert!(classify(
            "t",
            d,
            "ssh: Could not resolve hostname h: Name or service not known"
        )
        .contains("resolve"));
    }
}
