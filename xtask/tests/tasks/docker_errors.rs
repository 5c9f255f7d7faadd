//! The stack tasks' answers when Docker is not usable: each is one line saying what to do, and a
//! non-zero exit. Docker is replaced by a script on PATH that fails the way the real one does
//! (no engine needed to run these).

use crate::support::{root, XTASK};
use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

/// A PATH of one folder holding, if given, a fake `docker` script (a `#!/bin/sh` script using
/// only builtins, so it needs nothing else on PATH).
fn fake_path(name: &str, docker: Option<&str>) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-docker-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    if let Some(script) = docker {
        let path = dir.join("docker");
        fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// `xtask TASK...` with PATH = `dir`: (exit code, stderr).
fn xtask(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(XTASK)
        .args(args)
        .current_dir(root())
        .env("PATH", dir)
        .env("CARGO_MANIFEST_DIR", root().join("xtask"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The last non-empty line of stderr, which must be the only error line.
fn error_line(stderr: &str) -> String {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    errors[0].to_string()
}

#[test]
fn no_docker_says_to_install_it() {
    let dir = fake_path("none", None);
    let (code, stderr) = xtask(&dir, &["ps"]);
    assert_eq!(code, 1, "{stderr}");
    let line = error_line(&stderr);
    assert!(
        line.contains("Docker is not installed") && line.contains("install"),
        "{line}"
    );
}

#[test]
fn missing_compose_says_which_package() {
    let dir = fake_path(
        "compose",
        Some(
            r#"case "$1" in compose) echo "docker: 'compose' is not a docker command." >&2; exit 1;; *) exit 0;; esac"#,
        ),
    );
    let (code, stderr) = xtask(&dir, &["ps"]);
    assert_eq!(code, 1, "{stderr}");
    let line = error_line(&stderr);
    assert!(
        line.contains("Docker Compose v2 is missing") && line.contains("docker-compose-plugin"),
        "{line}"
    );
}

#[test]
fn a_stopped_daemon_says_to_start_it() {
    let dir = fake_path(
        "daemon",
        Some(
            r#"case "$1" in
  compose) echo "Docker Compose version v2.30.0"; exit 0;;
  info) echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1;;
esac
exit 0"#,
        ),
    );
    for task in [
        &["ps"][..],
        &["health"],
        &["logs"],
        &["down"],
        &["up", "--no-build"],
    ] {
        let (code, stderr) = xtask(&dir, task);
        assert_eq!(code, 1, "{task:?}: {stderr}");
        let line = error_line(&stderr);
        assert!(
            line.contains("the Docker daemon is not running")
                && line.contains("systemctl start docker"),
            "{task:?}: {line}"
        );
    }
}

#[test]
fn no_permission_says_how_to_get_it() {
    let dir = fake_path(
        "permission",
        Some(
            r#"case "$1" in
  compose) echo "Docker Compose version v2.30.0"; exit 0;;
  info) echo "permission denied while trying to connect to the Docker daemon socket" >&2; exit 1;;
esac
exit 0"#,
        ),
    );
    let (code, stderr) = xtask(&dir, &["ps"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        error_line(&stderr).contains("add yourself to the `docker` group"),
        "{stderr}"
    );
}

#[test]
fn dry_runs_need_no_docker() {
    let dir = fake_path("dry", Some("exit 1"));
    let out = Command::new(XTASK)
        .args(["up", "--dry-run", "--profile", "cpu"])
        .current_dir(root())
        .env("PATH", &dir)
        .env("CARGO_MANIFEST_DIR", root().join("xtask"))
        .env("BERTH_SECRETS_DIR", dir.join("secrets"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("would run: docker build"), "{stdout}");
    assert!(stdout.contains("--profile cpu up --detach"), "{stdout}");
    assert!(!dir.join("secrets").exists(), "a dry run creates no secret");
}

#[test]
fn unknown_profiles_and_stages_are_refused_with_the_known_ones() {
    let dir = fake_path("names", Some("exit 0"));
    let (code, stderr) = xtask(&dir, &["up", "--dry-run", "--profile", "gpus"]);
    assert_eq!(code, 1);
    assert!(
        error_line(&stderr).contains("no profile `gpus`"),
        "{stderr}"
    );
    let (code, stderr) = xtask(
        &dir,
        &["up", "--dry-run", "--profile", "cpu", "--profile", "gpu"],
    );
    assert_eq!(code, 1);
    assert!(
        error_line(&stderr).contains("cannot run together"),
        "{stderr}"
    );
    let (code, stderr) = xtask(&dir, &["ps", "--stage", "staging"]);
    assert_eq!(code, 1);
    assert!(
        error_line(&stderr).contains("no stage `staging`"),
        "{stderr}"
    );
}
