//! `cargo xtask release --push` for real: a snapshot commit of this work tree (a temporary clone,
//! so the shared checkout's git state is never touched) released to a private registry on
//! 127.0.0.1 (Debian's `docker-registry`), the image pulled back by the digest the manifest
//! records, run, and healthy by its own HEALTHCHECK. A second release of the same commit must
//! give the same manifest digest and the same layers (labels and timestamps come from the commit,
//! not the clock).
//!
//! The SBOMs are generated when `cargo cyclonedx` is installed (installing it costs minutes of
//! compiling); otherwise the release runs with --skip-sbom and this test says so loudly.
//!
//! Slow (image builds, though the docker build cache of the `containers` step makes them quick),
//! so `cargo test` skips it (#[ignore]); `cargo xtask ci` runs it as the `release` step:
//!   cargo test --locked -p xtask --test tasks -- --ignored release:: --nocapture
//! Without Docker or docker-registry it passes with a loud notice, except under CI, where it fails.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{free_port, root, under_ci};
use serde_json::Value;

fn skip(why: &str) {
    assert!(!under_ci(), "the release test cannot run under CI: {why}");
    eprintln!("!! SKIPPING the release test: {why}");
}

fn run(c: &mut Command) -> String {
    let out = c.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{c:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The private registry, stopped when dropped.
struct Registry {
    child: Child,
    port: u16,
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        let port = free_port();
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                dir.join("registry-data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let registry = Registry { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A container removed when dropped.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "--force", "--volumes", &self.0])
            .output();
    }
}

/// Images removed when dropped (the pulled copy, the release's local tags).
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        let mut c = Command::new("docker");
        c.args(["image", "rm", "--force"]).args(&self.0);
        let _ = c.output();
    }
}

/// A clone of this repository whose HEAD is a commit of the work tree as it is now.
fn snapshot(dir: &Path) -> PathBuf {
    let src = root();
    let clone = dir.join("repo");
    run(Command::new("git")
        .args(["clone", "--quiet", "--no-hardlinks"])
        .arg(&src)
        .arg(&clone));
    let listed = run(Command::new("git").current_dir(&src).args([
        "ls-files",
        "--cached",
        "--others",
        "--exclude-standard",
    ]));
    for file in listed.lines() {
        let from = src.join(file);
        let to = clone.join(file);
        if from.is_file() {
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&from, &to).unwrap();
        } else if to.exists() && !from.exists() {
            std::fs::remove_file(&to).unwrap();
        }
    }
    let git = |args: &[&str]| {
        run(Command::new("git")
            .current_dir(&clone)
            .env("GIT_AUTHOR_NAME", "release test")
            .env("GIT_AUTHOR_EMAIL", "release-test@localhost")
            .env("GIT_COMMITTER_NAME", "release test")
            .env("GIT_COMMITTER_EMAIL", "release-test@localhost")
            .env("GIT_COMMITTER_DATE", "2026-01-02T03:04:05Z")
            .env("GIT_AUTHOR_DATE", "2026-01-02T03:04:05Z")
            .args(args))
    };
    git(&["add", "--all"]);
    git(&[
        "commit",
        "--quiet",
        "--allow-empty",
        "--message",
        "release test snapshot",
    ]);
    clone
}

/// The xtask binary built from this work tree.
fn xtask_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo)
        .current_dir(root())
        .args(["build", "--locked", "--quiet", "-p", "xtask"]));
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or(root().join("target"), |d| root().join(d));
    target.join("debug/xtask")
}

fn release(xtask: &Path, clone: &Path, registry: &str, out: &Path, sbom: bool) -> Value {
    let mut c = Command::new(xtask);
    // project_root() follows CARGO_MANIFEST_DIR: the task acts on the snapshot clone.
    c.env("CARGO_MANIFEST_DIR", clone.join("xtask"))
        .args([
            "release",
            "--skip-ci",
            "--push",
            "--progress",
            "plain",
            "--registry",
            registry,
            "--out",
        ])
        .arg(out);
    if !sbom {
        c.arg("--skip-sbom");
    }
    let status = c.status().unwrap();
    assert!(status.success(), "cargo xtask release failed ({status})");
    let version_dirs: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(version_dirs.len(), 1, "{version_dirs:?}");
    let text = std::fs::read_to_string(version_dirs[0].join("release.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The Berth server's entry of a release manifest (the stack may release other images too).
fn berth_image(manifest: &Value) -> &Value {
    manifest["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == "berth")
        .expect("the manifest lists the berth image")
}

fn wait_healthy(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let health = run(Command::new("docker").args([
            "inspect",
            "--format",
            "{{.State.Health.Status}}",
            name,
        ]));
        if health == "healthy" {
            return;
        }
        if Instant::now() > deadline || health == "unhealthy" {
            let logs = Command::new("docker")
                .args(["logs", "--tail", "30", name])
                .output()
                .unwrap();
            panic!(
                "the pulled image is {health}:\n{}{}",
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
#[ignore = "builds and pushes images (minutes); run by `cargo xtask ci` (step release)"]
fn release_pushes_pullable_healthy_reproducible_images() {
    if let Err(e) = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map_err(|e| e.to_string())
        .and_then(|o| {
            if o.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&o.stderr).to_string())
            }
        })
    {
        return skip(&format!("no Docker engine: {e}"));
    }
    if Command::new("docker-registry")
        .arg("--version")
        .output()
        .is_err()
    {
        return skip(
            "docker-registry is not installed (apt-get install docker-registry; .ci/run does)",
        );
    }
    let sbom = Command::new("cargo")
        .args(["cyclonedx", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !sbom {
        eprintln!("!! release test: cargo-cyclonedx is not installed: releasing with --skip-sbom (the SBOM path is not exercised by this run)");
    }

    let tmp = tempfile::tempdir().unwrap();
    let xtask = xtask_binary();
    let clone = snapshot(tmp.path());
    let registry = Registry::start(tmp.path());
    let namespace = format!("127.0.0.1:{}/berth-release-test", registry.port);

    // First release.
    let first = release(&xtask, &clone, &namespace, &tmp.path().join("out1"), sbom);
    let image = berth_image(&first);
    let tags: Vec<String> = serde_json::from_value(image["tags"].clone()).unwrap();
    // Every image's local tags go when the test ends.
    let _local = Images(
        first["images"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|i| i["tags"].as_array().unwrap().iter())
            .map(|t| t.as_str().unwrap().to_string())
            .collect(),
    );
    let version = first["version"].as_str().unwrap();
    let revision = run(Command::new("git")
        .current_dir(&clone)
        .args(["rev-parse", "HEAD"]));
    assert_eq!(first["revision"], revision.as_str());
    assert_eq!(first["ci"], "skipped (--skip-ci)");
    for suffix in [
        version.to_string(),
        format!("sha-{}", &revision[..12]),
        "latest".into(),
    ] {
        assert!(
            tags.contains(&format!("{namespace}/berth:{suffix}")),
            "{suffix} not in {tags:?}"
        );
    }
    let labels = &image["labels"];
    assert_eq!(labels["org.opencontainers.image.version"], version);
    assert_eq!(
        labels["org.opencontainers.image.revision"],
        revision.as_str()
    );
    assert_eq!(
        labels["org.opencontainers.image.created"],
        "2026-01-02T03:04:05Z"
    );
    let digest = image["digest"]
        .as_str()
        .expect("a pushed digest")
        .to_string();
    assert!(digest.starts_with("sha256:"));
    assert!(image["size"].as_u64().unwrap() > 1_000_000);
    assert_eq!(first["scan"]["open_high"], 0);
    let dir = tmp.path().join("out1").join(version);
    for report in ["report.md", "report.json", "report.sarif"] {
        assert!(dir.join(report).is_file(), "{report} missing");
    }
    if sbom {
        for (file, expect) in [
            ("sbom-rust.cdx.json", "tokio"),
            ("sbom-npm.cdx.json", "react"),
        ] {
            let doc: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
            assert_eq!(doc["bomFormat"], "CycloneDX", "{file}");
            let names: Vec<&str> = doc["components"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|c| c["name"].as_str())
                .collect();
            assert!(names.contains(&expect), "{file} lacks {expect}");
        }
    }

    // Pull back by digest (after removing the local copies, so the pull is real) and run it.
    let by_digest = format!("{namespace}/berth@{digest}");
    let _pulled = Images(vec![by_digest.clone()]);
    let mut rm = Command::new("docker");
    rm.args(["image", "rm", "--force"]).args(&tags);
    run(&mut rm);
    run(Command::new("docker").args(["pull", "--quiet", &by_digest]));
    let name = format!("berth-release-test-{}", std::process::id());
    let container = Container(name.clone());
    run(Command::new("docker").args([
        "run",
        "--detach",
        "--name",
        &container.0,
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges:true",
        "--tmpfs",
        "/tmp",
        "--tmpfs",
        "/var/lib/berth:uid=10001,gid=10001,mode=0700",
        "--publish",
        "127.0.0.1::8080",
        &by_digest,
    ]));
    wait_healthy(&name);
    drop(container);

    // Second release of the same commit: nothing changes.
    let second = release(&xtask, &clone, &namespace, &tmp.path().join("out2"), false);
    let again = berth_image(&second);
    assert_eq!(
        again["layers"], image["layers"],
        "the layers changed between two releases of one commit"
    );
    assert_eq!(
        again["digest"].as_str(),
        Some(digest.as_str()),
        "the pushed digest changed between two releases of one commit"
    );
    drop(registry);
}
