//! `cargo xtask deploy | rollback | status | logs --target` against a real server: a container
//! (`berth-deploy-target:test`, from `cargo xtask fixtures`) running its own sshd and its own
//! Docker Engine, reachable only on 127.0.0.1. It has no registry either: everything it runs is
//! shipped over SSH by the deploy.
//!
//! The story: deploy v1 (first: ships every image); deploy v2 under a steady request load through
//! the target's proxy (no request may fail); deploy v3, whose database password is wrong, so it
//! never gets ready (automatic rollback: v2 keeps serving, no request fails, the failure is
//! reported and logged); `rollback --to v1`; an unchanged-image deploy (nothing shipped); two
//! deploys at once (one fails clearly on the lock); unreachable host and refused key.
//! Timings and failed-request counts are printed (docs/deploy.md quotes them).
//!
//! Needs Docker and the images berth:latest (`cargo xtask build`), the stand-ins and the target
//! (`cargo xtask fixtures`); `cargo test` skips it (#[ignore]), `cargo xtask ci` runs it (step
//! `deploy`), or: cargo test -p xtask --test tasks -- --ignored deploy:: --nocapture

use crate::support::{free_port, root};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const TARGET_IMAGE: &str = "berth-deploy-target:test";
const NEEDED: &[&str] = &[
    TARGET_IMAGE,
    "pgvector/pgvector:pg17",
    "redis:8.0",
    "nginx:1.26",
];

/// The app image the releases are made from: berth:latest, or BERTH_DEPLOY_TEST_IMAGE.
fn app_image() -> String {
    std::env::var("BERTH_DEPLOY_TEST_IMAGE").unwrap_or_else(|_| "berth:latest".into())
}

/// The app image the releases are made from. On a fresh machine nothing has built it under this
/// name yet: build it as `cargo xtask build` does (after the containers step, every layer is in
/// BuildKit's cache, so this only tags).
fn ensure_app_image() {
    let image = app_image();
    if docker(&["image", "inspect", &image]).status.success() {
        return;
    }
    eprintln!(
        "+ BERTH_IMAGE={image} cargo xtask build --stage prod --image berth --progress plain"
    );
    let status = xtask_command(&[
        "build",
        "--stage",
        "prod",
        "--image",
        "berth",
        "--progress",
        "plain",
    ])
    .env("BERTH_IMAGE", &image)
    .status()
    .expect("cargo xtask build");
    assert!(status.success(), "building {image} failed (see above)");
}

/// `cargo xtask ARGS…` as this checkout's cargo runs it.
fn xtask_command(args: &[&str]) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root())
        .args(["run", "--locked", "--quiet", "-p", "xtask", "--"])
        .args(args);
    command
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("docker")
}

fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The throwaway server, its key and its stack file; removed on drop (also on failure).
struct Server {
    container: String,
    dir: PathBuf,
    ssh_port: u16,
    https_port: u16,
    stack: PathBuf,
    tags: Vec<String>,
}

impl Server {
    fn start() -> Server {
        let id = std::process::id();
        let dir = std::env::temp_dir().join(format!("berth-deploy-test-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("id_ed25519");
        let out = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "berth-deploy-test",
                "-f",
            ])
            .arg(&key)
            .output()
            .expect("ssh-keygen (OpenSSH client)");
        assert!(out.status.success());
        let public = std::fs::read_to_string(dir.join("id_ed25519.pub")).unwrap();
        let (ssh_port, https_port) = (free_port(), free_port());
        let container = format!("berth-deploy-test-{id}");
        let server = Server {
            container: container.clone(),
            dir: dir.clone(),
            ssh_port,
            https_port,
            stack: dir.join("stack.toml"),
            tags: Vec::new(),
        };
        // Not --privileged: this machine's engine cannot grant every capability; the target's
        // entrypoint remounts its (private) cgroups writable instead.
        docker_ok(&[
            "run",
            "--detach",
            "--name",
            &container,
            "--cgroupns=private",
            "--cap-add=ALL",
            "--cap-drop=SYS_RESOURCE",
            "--security-opt=seccomp=unconfined",
            "--security-opt=apparmor=unconfined",
            "--security-opt=systempaths=unconfined",
            "--device-cgroup-rule=a *:* rwm",
            "--tmpfs=/run",
            "--tmpfs=/tmp",
            "--env",
            &format!("DEPLOY_AUTHORIZED_KEY={}", public.trim()),
            "--publish",
            &format!("127.0.0.1:{ssh_port}:22"),
            "--publish",
            &format!("127.0.0.1:{https_port}:8443"),
            TARGET_IMAGE,
        ]);
        let stack = std::fs::read_to_string(root().join("deploy/stack.toml")).unwrap();
        std::fs::write(
            &server.stack,
            format!(
                "{stack}\n[targets.testbox]\ndescription = \"throwaway test server\"\n\
                 host = \"127.0.0.1\"\nport = {ssh_port}\nuser = \"deploy\"\n\
                 identity = \"{}\"\nstage = \"prod\"\ndir = \"/srv/berth\"\nprofiles = [\"proxy\"]\n\n\
                 [targets.testbox.variables]\nBERTH_BIND_ADDRESS = \"0.0.0.0\"\n\
                 BERTH_HTTPS_PORT = \"8443\"\nBERTH_TRUST_FORWARDED_FOR = \"true\"\n",
                key.display()
            ),
        )
        .unwrap();
        // sshd starts once the inner dockerd answers.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if server.ssh("docker info >/dev/null").status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the target did not come up: {}",
                String::from_utf8_lossy(&docker(&["logs", &container]).stderr)
            );
            thread::sleep(Duration::from_millis(500));
        }
        server
    }

    fn ssh(&self, script: &str) -> Output {
        Command::new("ssh")
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
            .arg("-i")
            .arg(self.dir.join("id_ed25519"))
            .args(["-p", &self.ssh_port.to_string(), "deploy@127.0.0.1", script])
            .output()
            .expect("ssh")
    }

    /// `cargo xtask ARGS --stack <ours>` (progress on our stderr), its stdout, status and time.
    fn xtask(&self, args: &[&str]) -> (bool, String, Duration) {
        let child = self.spawn_xtask(args, &self.stack);
        let started = Instant::now();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        eprint!("{stdout}{stderr}");
        (
            out.status.success(),
            format!("{stdout}{stderr}"),
            started.elapsed(),
        )
    }

    fn spawn_xtask(&self, args: &[&str], stack: &Path) -> std::process::Child {
        eprintln!("+ cargo xtask {}", args.join(" "));
        xtask_command(args)
            .arg("--stack")
            .arg(stack)
            .env("BERTH_DEPLOY_KNOWN_HOSTS", self.dir.join("known_hosts"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cargo run -p xtask")
    }

    fn xtask_ok(&self, args: &[&str]) -> (String, Duration) {
        let (ok, out, time) = self.xtask(args);
        assert!(ok, "`cargo xtask {}` failed:\n{out}", args.join(" "));
        (out, time)
    }

    /// A release: berth:latest with a label (so its image ID differs) and Dockerfile lines.
    fn release(&mut self, version: &str, extra: &str) -> String {
        let tag = format!("berth:{version}");
        let ctx = self.dir.join(format!("release-{version}"));
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(
            ctx.join("Dockerfile"),
            format!(
                "FROM {}\nLABEL org.berth.test.release=\"{version}\"\n{extra}\n",
                app_image()
            ),
        )
        .unwrap();
        docker_ok(&["build", "--quiet", "--tag", &tag, ctx.to_str().unwrap()]);
        self.tags.push(tag);
        version.to_string()
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.https_port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = docker(&["rm", "--force", "--volumes", &self.container]);
        for tag in &self.tags {
            let _ = docker(&["image", "rm", tag]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// GET through the target's proxy (its certificate is self-signed): the HTTP status, 0 when
/// no answer came.
fn get(url: &str) -> u16 {
    let out = Command::new("curl")
        .args([
            "--silent",
            "--insecure",
            "--max-time",
            "5",
            "--output",
            "/dev/null",
        ])
        .args(["--write-out", "%{http_code}", url])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Requests /ready at a steady pace (under the proxy's rate limit) until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    handle: Option<thread::JoinHandle<Vec<u16>>>,
}

impl Load {
    fn start(url: String) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (s, o, f) = (stop.clone(), ok.clone(), failed.clone());
        let handle = thread::spawn(move || {
            let mut bad = Vec::new();
            while !s.load(Ordering::Relaxed) {
                let code = get(&url);
                if code == 200 {
                    o.fetch_add(1, Ordering::Relaxed);
                } else {
                    f.fetch_add(1, Ordering::Relaxed);
                    bad.push(code);
                }
                thread::sleep(Duration::from_millis(100));
            }
            bad
        });
        Load {
            stop,
            ok,
            failed,
            handle: Some(handle),
        }
    }

    /// (succeeded, failed, the failed statuses).
    fn finish(mut self) -> (u64, u64, Vec<u16>) {
        self.stop.store(true, Ordering::Relaxed);
        let bad = self.handle.take().unwrap().join().unwrap();
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            bad,
        )
    }
}

fn serving(server: &Server) -> String {
    let (_, out, _) = server.xtask(&["status", "--target", "testbox"]);
    out.lines()
        .find_map(|l| l.trim().strip_prefix("running release: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default()
        .to_string()
}

#[test]
#[ignore = "needs Docker and minutes: cargo xtask ci (step deploy) runs it"]
fn deploy_switch_rollback_and_lock_on_a_real_server() {
    ensure_app_image();
    for image in NEEDED.iter().copied().chain([app_image().as_str()]) {
        assert!(
            docker(&["image", "inspect", image]).status.success(),
            "image {image} is missing: run `cargo xtask fixtures` and `cargo xtask build`"
        );
    }
    let mut server = Server::start();
    let tag = format!("t{}", std::process::id());
    let v1 = server.release(&format!("{tag}-v1"), "");
    let v2 = server.release(&format!("{tag}-v2"), "");
    // Wrong database password: the release never gets ready (as a failed migration would not).
    let v3 = server.release(
        &format!("{tag}-v3"),
        "ENV BERTH_DATABASE_URL=postgres://berth:not-the-password@db:5432/berth",
    );

    // A dry run changes nothing.
    let (out, _) = server.xtask_ok(&[
        "deploy",
        "--target",
        "testbox",
        "--version",
        &v1,
        "--dry-run",
    ]);
    assert!(
        out.contains("would ship") && out.contains("dry run, nothing changed"),
        "{out}"
    );
    assert!(server.ssh("test -e /srv/berth/current").status.code() == Some(1));

    // v1: the first deploy ships every image and starts everything.
    let (_, t_first) = server.xtask_ok(&["deploy", "--target", "testbox", "--version", &v1]);
    assert_eq!(get(&server.url("/ready")), 200);
    assert_eq!(serving(&server), v1);

    // v2 under load: a changed image, switched behind the proxy; no request may fail.
    let load = Load::start(server.url("/ready"));
    thread::sleep(Duration::from_secs(1));
    let (out, t_changed) = server.xtask_ok(&["deploy", "--target", "testbox", "--version", &v2]);
    thread::sleep(Duration::from_secs(1));
    let (ok, failed, bad) = load.finish();
    eprintln!("deploy v2 (changed image) took {t_changed:.1?}; requests during it: {ok} ok, {failed} failed {bad:?}");
    assert!(out.contains("backing up the database"), "{out}");
    assert!(ok > 20, "too few requests went through: {ok}");
    assert_eq!(failed, 0, "requests failed during the switch: {bad:?}");
    assert_eq!(serving(&server), v2);
    let backups = server.ssh("ls -l /srv/berth/backups/");
    let listing = String::from_utf8_lossy(&backups.stdout);
    assert!(listing.contains(&format!("pre-deploy-{v2}-")), "{listing}");
    assert!(!listing.contains(".partial"), "{listing}");

    // v3 never gets ready: removed, v2 keeps serving, nothing fails, the failure is reported.
    let load = Load::start(server.url("/ready"));
    let (success, out, t_failed) = server.xtask(&[
        "deploy",
        "--target",
        "testbox",
        "--version",
        &v3,
        "--ready-timeout",
        "45",
    ]);
    let (ok, failed, bad) = load.finish();
    eprintln!("deploy v3 (broken) took {t_failed:.1?} to roll back; requests during it: {ok} ok, {failed} failed {bad:?}");
    assert!(
        !success,
        "a release that never gets ready must fail the deploy"
    );
    assert!(
        out.contains(&format!("rolled back automatically: {v2} is still serving")),
        "{out}"
    );
    assert_eq!(failed, 0, "requests failed while v3 was tried: {bad:?}");
    assert_eq!(serving(&server), v2);
    let log = String::from_utf8_lossy(&server.ssh("cat /srv/berth/deploy.log").stdout).into_owned();
    assert!(log.contains("\"outcome\":\"rolled-back\""), "{log}");

    // Rollback to v1 (its image is still on the target: nothing shipped).
    let (out, _) = server.xtask_ok(&["rollback", "--target", "testbox", "--to", &v1]);
    assert!(out.contains("0.0 MiB shipped"), "{out}");
    assert_eq!(serving(&server), v1);
    let (out, _) = server.xtask_ok(&["status", "--target", "testbox"]);
    assert!(
        out.contains("ready:           yes") && out.contains("rollback"),
        "{out}"
    );

    // The same release again: nothing to ship, only the switch.
    let (out, t_unchanged) = server.xtask_ok(&["deploy", "--target", "testbox", "--version", &v1]);
    assert!(out.contains("0.0 MiB shipped"), "{out}");
    eprintln!(
        "deploy times: first (every image) {t_first:.1?}, changed image {t_changed:.1?}, \
         unchanged image {t_unchanged:.1?}, failed health gate + rollback {t_failed:.1?}"
    );

    // Two deploys at once: one runs, the other fails clearly on the lock.
    let a = server.spawn_xtask(
        &["deploy", "--target", "testbox", "--version", &v2],
        &server.stack,
    );
    let b = server.spawn_xtask(
        &["deploy", "--target", "testbox", "--version", &v2],
        &server.stack,
    );
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let texts: Vec<String> = [&a, &b]
        .iter()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .collect();
    eprintln!("concurrent deploys:\n{}\n---\n{}", texts[0], texts[1]);
    assert_eq!(
        [a.status.success(), b.status.success()]
            .iter()
            .filter(|s| **s)
            .count(),
        1,
        "exactly one of two concurrent deploys must run"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("another deploy is running on target `testbox`")),
        "the other must say why"
    );
    assert_eq!(serving(&server), v2);
    assert_eq!(get(&server.url("/ready")), 200);

    // Logs of the live release, over SSH.
    let (out, _) = server.xtask_ok(&["logs", "--target", "testbox", "--tail", "5"]);
    assert!(!out.trim().is_empty());

    // Clear errors: a closed port, a key the server does not know.
    let closed = free_port();
    let unreachable = server.dir.join("unreachable.toml");
    let text = std::fs::read_to_string(&server.stack).unwrap();
    std::fs::write(
        &unreachable,
        text.replace(
            &format!("port = {}", server.ssh_port),
            &format!("port = {closed}"),
        ),
    )
    .unwrap();
    let out = server
        .spawn_xtask(&["status", "--target", "testbox"], &unreachable)
        .wait_with_output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("host unreachable"),
        "{err}"
    );
    let stranger = server.dir.join("stranger");
    Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .output()
        .unwrap();
    let refused = server.dir.join("refused.toml");
    std::fs::write(
        &refused,
        text.replace(
            &server.dir.join("id_ed25519").display().to_string(),
            &stranger.display().to_string(),
        ),
    )
    .unwrap();
    let out = server
        .spawn_xtask(&["status", "--target", "testbox"], &refused)
        .wait_with_output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("refused the login"),
        "{err}"
    );
}
