//! The stack in containers, for real: the app image built by the real Dockerfile, the `cpu`
//! profile of the prod stage brought up by `cargo xtask up` from the generated compose file,
//! with stand-ins for the upstream images (`cargo xtask fixtures`: PostgreSQL+pgvector, Redis,
//! and an Ollama whose model is a toy but whose API and CLI are Ollama's). Through the published
//! port: register → approve (the admin made with `berth admin create` inside the container) →
//! upload → ask, answered by the model in the `ollama` container. Then the app container
//! restarts and everything is still there. The secret files are 0600, each owned by the user of
//! the services that read it (when the test runs as root, as CI does). A backup through the
//! stack's `backup` service (`cargo xtask backup|backup list|backup verify|restore`) brings a
//! deleted document back. `cargo xtask down --volumes` leaves nothing behind.
//!
//! It takes minutes (image builds), so `cargo test` skips it (#[ignore]); `cargo xtask ci` runs
//! it as the `containers` step:
//!   cargo test --locked -p berth --test it -- --ignored containers:: --nocapture
//! Without a Docker engine it passes with a loud notice, except under CI (CI=true), where it
//! fails: CI never skips it.

use crate::support;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{json, Browser};

const ADMIN_PW: &str = "Adm1n!in-a-container";
const USER_PW: &str = "Al1ce!has-documents";
const HANDBOOK: &str =
    "Office hours\n\nThe office opens at 8 in the morning and closes at 6 in the evening.\n\n\
Travel\n\nEmployees may rent a car for trips longer than 200 kilometres.\n\n\
Holidays\n\nEvery employee has 28 days of paid vacation per year, plus public holidays.";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

fn docker_works() -> Result<(), String> {
    let out = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let compose = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .map_err(|e| e.to_string())?;
    if !compose.status.success() {
        return Err("`docker compose` is missing".into());
    }
    Ok(())
}

/// The stack under test: its own compose project, port and secrets, torn down when dropped.
struct TestStack {
    project: String,
    port: u16,
    env: Vec<(String, String)>,
    _secrets: tempfile::TempDir,
    down: bool,
}

impl TestStack {
    fn new() -> TestStack {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let secrets = tempfile::tempdir().unwrap();
        let project = format!("berth-test-{}", std::process::id());
        let env = vec![
            ("BERTH_HTTP_PORT".to_string(), port.to_string()),
            (
                "BERTH_SECRETS_DIR".to_string(),
                secrets.path().join("secrets").display().to_string(),
            ),
            (
                "BERTH_IMAGE".to_string(),
                "berth:containers-test".to_string(),
            ),
            // The stand-in Ollama accepts any model name; these are what it will be asked for.
            ("BERTH_LLM_MODEL".to_string(), "test-chat".to_string()),
            ("BERTH_EMBED_MODEL".to_string(), "test-embed".to_string()),
            ("OLLAMA_CPUS".to_string(), "1".to_string()),
            ("OLLAMA_MEMORY".to_string(), "512m".to_string()),
            ("COMPOSE_PROFILES".to_string(), String::new()),
            // Not made yet: `cargo xtask backup` creates it for the backup service's uid.
            (
                "BERTH_BACKUP_DIR".to_string(),
                secrets.path().join("backups").display().to_string(),
            ),
        ];
        TestStack {
            project,
            port,
            env,
            _secrets: secrets,
            down: false,
        }
    }

    /// `cargo xtask ARGS` in the repository root, progress on our stderr, stdout captured.
    fn xtask(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut c = Command::new(cargo);
        c.current_dir(root())
            .args(["run", "--locked", "--quiet", "-p", "xtask", "--"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        for (k, v) in &self.env {
            c.env(k, v);
        }
        eprintln!("+ cargo xtask {}", args.join(" "));
        let mut child = c.spawn().expect("cargo run -p xtask");
        if let Some(input) = stdin {
            writeln!(child.stdin.take().unwrap(), "{input}").unwrap();
        }
        child.wait_with_output().unwrap()
    }

    fn xtask_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.xtask(args, stdin);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "`cargo xtask {}` failed ({}); stdout:\n{stdout}",
            args.join(" "),
            out.status
        );
        stdout
    }

    fn compose(&self, args: &[&str]) -> Output {
        let mut c = Command::new("docker");
        c.current_dir(root()).args([
            "compose",
            "--file",
            "docker/compose.yaml",
            "--project-name",
            &self.project,
        ]);
        c.args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Names of the project's containers, networks or volumes that exist.
    fn leftovers(&self) -> Vec<String> {
        let filter = format!("label=com.docker.compose.project={}", self.project);
        let mut left = Vec::new();
        for args in [
            vec![
                "ps",
                "--all",
                "--filter",
                &filter,
                "--format",
                "container {{.Names}}",
            ],
            vec![
                "network",
                "ls",
                "--filter",
                &filter,
                "--format",
                "network {{.Name}}",
            ],
            vec![
                "volume",
                "ls",
                "--filter",
                &filter,
                "--format",
                "volume {{.Name}}",
            ],
        ] {
            let out = Command::new("docker").args(&args).output().unwrap();
            left.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(String::from),
            );
        }
        left
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        if !self.down {
            eprintln!("tearing down project {} after a failure", self.project);
            let _ = self.compose(&["logs", "--no-color", "--tail", "40"]);
            let _ = self.compose(&[
                "--profile",
                "cpu",
                "--profile",
                "gpu",
                "--profile",
                "monitoring",
                "--profile",
                "proxy",
                "--profile",
                "backup",
                "down",
                "--volumes",
                "--remove-orphans",
            ]);
        }
    }
}

async fn wait_for_health(base: &str, timeout: Duration) {
    let http = reqwest::Client::new();
    let start = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/health")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(
            start.elapsed() < timeout,
            "{base}/health never answered 200"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn have(tool: &str, version_arg: &str) -> bool {
    Command::new(tool)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `curl -sk` against the proxy: (status, headers).
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-D", "-", "-w", "%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = text[text.len().saturating_sub(3)..].parse().unwrap_or(0);
    (code, text.to_lowercase())
}

fn proxy_checks(stack: &mut TestStack) {
    if !have("openssl", "version") || !have("curl", "--version") {
        assert!(
            !under_ci(),
            "CI must check the proxy profile: it needs openssl and curl"
        );
        eprintln!("!! SKIPPING the proxy profile checks: they need openssl and curl");
        return;
    }
    let tls = stack._secrets.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(tls.join("privkey.pem"))
        .arg("-out")
        .arg(tls.join("fullchain.pem"))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    for key in ["privkey.pem", "fullchain.pem"] {
        use std::os::unix::fs::PermissionsExt;
        // nginx runs as uid 101 and reads them through the bind mount.
        std::fs::set_permissions(tls.join(key), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let https = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    stack
        .env
        .push(("BERTH_TLS_DIR".into(), tls.display().to_string()));
    stack
        .env
        .push(("BERTH_HTTPS_PORT".into(), https.to_string()));
    stack.xtask_ok(
        &[
            "up",
            "--no-build",
            "--stage",
            "prod",
            "--profile",
            "cpu",
            "--profile",
            "proxy",
            "--project-name",
            &stack.project,
        ],
        None,
    );
    let base = format!("https://127.0.0.1:{https}");
    let (code, headers) = curl(&["--http2", &format!("{base}/health")]);
    assert_eq!(code, 200, "{headers}");
    assert!(headers.starts_with("http/2 200"), "{headers}");
    for header in [
        "strict-transport-security: max-age=",
        "x-content-type-options: nosniff",
        "referrer-policy: same-origin",
    ] {
        assert!(headers.contains(header), "{header} missing: {headers}");
    }
    let (code, _) = curl(&[&format!("{base}/metrics")]);
    assert_eq!(code, 404, "metrics stay inside");
    let codes: Vec<u16> = (0..12)
        .map(|_| {
            curl(&[
                "-X",
                "POST",
                "-H",
                "content-type: application/json",
                "-d",
                r#"{"username":"nobody","password":"wrong"}"#,
                &format!("{base}/api/v1/auth/sign-in"),
            ])
            .0
        })
        .collect();
    assert!(
        codes.contains(&429),
        "sign-in floods are rate limited: {codes:?}"
    );
    let big = stack._secrets.path().join("big.bin");
    std::fs::write(&big, vec![0u8; 60 * 1024 * 1024]).unwrap();
    let (code, _) = curl(&[
        "-X",
        "POST",
        "--data-binary",
        &format!("@{}", big.display()),
        &format!("{base}/api/v1/collections/x/documents"),
    ]);
    assert_eq!(
        code, 413,
        "uploads beyond the limit are refused at the proxy"
    );
    std::fs::remove_file(&big).unwrap();
}

/// Waits until Docker's health check reports the container healthy.
fn wait_until_healthy(container: &str, timeout: Duration) {
    let start = Instant::now();
    loop {
        let out = Command::new("docker")
            .args(["inspect", "--format", "{{.State.Health.Status}}", container])
            .output()
            .unwrap();
        let status = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if status == "healthy" {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "{container} is {status:?}, not healthy, after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn browser(base: &str) -> Browser {
    Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        base: format!("{base}/api/v1"),
        csrf: None,
    }
}

/// The `done` event of a streamed answer.
async fn ask(b: &Browser, conversation: &str, question: &str) -> Value {
    let resp = b
        .post(
            &format!("/conversations/{conversation}/messages"),
            json!({ "content": question }),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let done = text
        .split("\n\n")
        .find(|block| block.lines().any(|l| l.trim() == "event: done"))
        .unwrap_or_else(|| panic!("no done event in: {text}"));
    let data: String = done
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim_start)
        .collect();
    serde_json::from_str(&data).unwrap()
}

fn effective_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

/// Each secret file is 0600 and owned by the uid:gid of the services that mount it (app and
/// backup 10001, db 999, grafana 472:0) when xtask runs as root; else 0644 in a 0700 directory.
fn secret_modes(stack: &TestStack) {
    use std::os::unix::fs::MetadataExt;
    let dir = stack._secrets.path().join("secrets");
    let meta = |f: &str| {
        let m = std::fs::metadata(dir.join(f)).unwrap();
        (m.mode() & 0o7777, m.uid(), m.gid())
    };
    assert_eq!(meta(".").0, 0o700, "the secrets directory");
    if effective_uid() == 0 {
        assert_eq!(meta("berth.toml"), (0o600, 10001, 10001));
        assert_eq!(meta("postgres_password"), (0o600, 999, 999));
        assert_eq!(meta("grafana_admin_password"), (0o600, 472, 0));
    } else {
        for f in ["berth.toml", "postgres_password", "grafana_admin_password"] {
            assert_eq!(
                meta(f).0,
                0o644,
                "{f}: not root, so 0644 inside the 0700 directory"
            );
        }
    }
}

/// The stack's backup path, which only the stack exercises: `cargo xtask backup` runs `berth
/// backup create` in the `backup` service (profile backup, its own image), then list, verify,
/// and a restore that brings a deleted document back.
async fn backup_and_restore(stack: &TestStack, alice: &mut Browser, collection: &str, doc: &str) {
    let dir = stack._secrets.path().join("backups");
    if effective_uid() != 0 {
        // Only root can give the directory to the backup service's uid (10001).
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let project = ["--stage", "prod", "-p", &stack.project];
    // The backup image, as `cargo xtask up --profile backup` would build it (its build stage is
    // the app image's, cached).
    stack.xtask_ok(
        &["build", "--stage", "prod", "--image", "berth-backup"],
        None,
    );

    let out = stack.xtask_ok(&[&["backup"][..], &project].concat(), None);
    let archive = PathBuf::from(out.trim());
    assert_eq!(archive.parent(), Some(dir.as_path()), "{out}");
    let name = archive.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("berth-prod-") && name.ends_with(".tar.gz"),
        "{name}"
    );
    assert!(
        archive.is_file(),
        "{} is in BERTH_BACKUP_DIR",
        archive.display()
    );

    let list = stack.xtask_ok(&[&["backup", "list"][..], &project].concat(), None);
    let line = list
        .lines()
        .find(|l| l.starts_with(&name))
        .unwrap_or_else(|| panic!("`backup list` shows {name}: {list}"));
    assert!(line.contains("postgres"), "{line}");
    let archive_arg = archive.display().to_string();
    stack.xtask_ok(
        &[&["backup", "verify"][..], &project, &[archive_arg.as_str()]].concat(),
        None,
    );
    // The drill: the archive restored into a scratch database beside the live one, a second
    // Berth started on it inside the backup container, signed into and searched.
    let drill = stack.xtask_ok(
        &[&["backup", "drill"][..], &project, &[archive_arg.as_str()]].concat(),
        None,
    );
    assert!(
        drill.contains("drill passed") && !drill.contains(" 0 hit(s)"),
        "the drill signs in and finds the document: {drill}"
    );

    // Gone…
    let gone = alice
        .send(
            reqwest::Method::DELETE,
            &format!("/documents/{doc}"),
            json!({}),
        )
        .await;
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    assert_eq!(alice.get(&format!("/documents/{doc}")).await.status(), 404);

    // …and back.
    stack.xtask_ok(
        &[&["restore"][..], &project, &[archive_arg.as_str(), "--yes"]].concat(),
        None,
    );
    wait_for_health(&stack.base(), Duration::from_secs(60)).await;
    wait_until_healthy(&format!("{}-app-1", stack.project), Duration::from_secs(60));
    assert_eq!(alice.sign_in("alice", USER_PW).await, StatusCode::OK);
    let docs = json(
        alice
            .get(&format!("/collections/{collection}/documents"))
            .await,
    )
    .await;
    assert!(docs.to_string().contains(doc), "restored: {docs}");
    let file = alice.get(&format!("/documents/{doc}/file")).await;
    assert_eq!(file.status(), 200, "the uploaded file is restored too");
    assert_eq!(file.text().await.unwrap(), HANDBOOK);
    let safety = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("berth-pre-restore-")
        });
    assert!(safety, "restore took a safety backup first");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "builds images for minutes; `cargo xtask ci` runs it (step containers)"]
async fn the_cpu_stack_serves_berth_end_to_end() {
    if let Err(why) = docker_works() {
        if under_ci() {
            panic!("CI must run the container test, but Docker is unusable here: {why}");
        }
        eprintln!("!! SKIPPING the container test: no usable Docker engine ({why})");
        return;
    }
    let mut stack = TestStack::new();
    let mut timings = Vec::new();

    // Stand-ins for the upstream images (no registry is needed, nor used).
    stack.xtask_ok(&["fixtures"], None);

    // Up: secrets, the real image, every service healthy.
    let started = Instant::now();
    let up = stack.xtask_ok(
        &[
            "up",
            "--stage",
            "prod",
            "--profile",
            "cpu",
            "--project-name",
            &stack.project,
        ],
        None,
    );
    timings.push(("cargo xtask up (build included)", started.elapsed()));
    assert!(
        up.contains(&format!("http://127.0.0.1:{}/", stack.port)),
        "up prints the URL: {up}"
    );
    let base = stack.base();
    wait_for_health(&base, Duration::from_secs(10)).await;
    secret_modes(&stack);

    // Hardening is in force: the app runs as uid 10001 on a read-only root.
    let inspect = Command::new("docker")
        .args([
            "inspect",
            "--format",
            "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}}",
            &format!("{}-app-1", stack.project),
        ])
        .output()
        .unwrap();
    let inspect = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        inspect.starts_with("10001:10001 true [ALL] [no-new-privileges:true]"),
        "{inspect}"
    );
    // Data services are not published: only the app's port is.
    let ports = stack.compose(&["ps", "--format", "{{.Service}} {{.Publishers}}"]);
    let ports = String::from_utf8_lossy(&ports.stdout);
    for line in ports.lines() {
        if !line.starts_with("app ") {
            assert!(
                !line.contains("0.0.0.0") && !line.contains("127.0.0.1"),
                "published: {line}"
            );
        }
    }

    // The first admin, made inside the container, password on stdin.
    stack.xtask_ok(
        &[
            "exec",
            "--project-name",
            &stack.project,
            "app",
            "--",
            "berth",
            "admin",
            "create",
            "--username",
            "root",
            "--password-stdin",
        ],
        Some(ADMIN_PW),
    );

    // Register → approve → sign in.
    let mut alice = browser(&base);
    let resp = alice.register("alice", USER_PW).await;
    assert!(resp.status().is_success(), "register: {}", resp.status());
    let alice_id = json(resp).await["user"]["id"].as_str().unwrap().to_string();
    assert_ne!(
        alice.sign_in("alice", USER_PW).await,
        StatusCode::OK,
        "pending accounts cannot sign in"
    );
    let mut root_user = browser(&base);
    assert_eq!(root_user.sign_in("root", ADMIN_PW).await, StatusCode::OK);
    let approved = root_user
        .post(&format!("/admin/users/{alice_id}/approve"), json!({}))
        .await;
    assert!(
        approved.status().is_success(),
        "approve: {}",
        approved.status()
    );
    assert_eq!(alice.sign_in("alice", USER_PW).await, StatusCode::OK);

    // Upload → ask: embeddings and the answer come from the `ollama` container.
    let collection = json(
        alice
            .post("/collections", json!({"name": "handbook"}))
            .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = alice.uploaded(&collection, "handbook.md", HANDBOOK).await;
    alice
        .wait_status(&doc, "ready", Duration::from_secs(60))
        .await;
    let conversation = json(alice.post("/conversations", json!({})).await).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = ask(
        &alice,
        &conversation,
        "How many vacation days do employees get?",
    )
    .await;
    let message = &done["message"];
    assert_eq!(message["mode"], "llm", "{done}");
    let content = message["content"].as_str().unwrap();
    assert!(
        content.starts_with("According to the documents,") && content.contains("28 days"),
        "answered by the stand-in model from the document: {content}"
    );
    assert_eq!(message["citations"][0]["document_id"], doc.as_str());

    let ready = json(
        root_user
            .http
            .get(format!("{base}/ready"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(
        ready["checks"]["database"]["backend"], "postgres",
        "{ready}"
    );
    assert_eq!(
        ready["checks"]["cache"]["configured"], true,
        "Redis is wired: {ready}"
    );
    assert_eq!(ready["checks"]["llm"]["ok"], true, "{ready}");

    // Restart the app container: the data (PostgreSQL, the uploads volume) and sessions survive.
    let restarted = Instant::now();
    let out = stack.compose(&["restart", "app"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for_health(&base, Duration::from_secs(60)).await;
    timings.push(("app restart → /health answers 200", restarted.elapsed()));
    wait_until_healthy(&format!("{}-app-1", stack.project), Duration::from_secs(60));
    timings.push((
        "app restart → Docker reports it healthy",
        restarted.elapsed(),
    ));
    let docs = json(
        alice
            .get(&format!("/collections/{collection}/documents"))
            .await,
    )
    .await;
    assert!(docs.to_string().contains("handbook.md"), "{docs}");
    let file = alice.get(&format!("/documents/{doc}/file")).await;
    assert_eq!(file.status(), 200);
    assert_eq!(file.text().await.unwrap(), HANDBOOK);
    let stored = json(alice.get(&format!("/conversations/{conversation}")).await).await;
    assert_eq!(stored["messages"].as_array().unwrap().len(), 2, "{stored}");
    let again = ask(&alice, &conversation, "When does the office open?").await;
    assert!(
        again["message"]["content"]
            .as_str()
            .unwrap()
            .contains("8 in the morning"),
        "{again}"
    );

    // The proxy profile joins the running stack: TLS from the mounted certificate, security
    // headers, rate limits, the upload limit, /metrics kept inside.
    proxy_checks(&mut stack);

    // Backup → delete → restore, through the stack's backup service.
    let started = Instant::now();
    backup_and_restore(&stack, &mut alice, &collection, &doc).await;
    timings.push((
        "backup, list, verify, delete, restore (backup image build included)",
        started.elapsed(),
    ));

    // Health as the task reports it.
    let health = stack.xtask_ok(&["health", "--project-name", &stack.project], None);
    assert!(
        health.contains("all") && health.contains("healthy"),
        "{health}"
    );

    // Down with the volumes: nothing of the project remains.
    let out = stack.xtask(
        &["down", "--project-name", &stack.project, "--volumes"],
        None,
    );
    assert!(
        !out.status.success(),
        "deleting data without --yes and without a terminal is refused"
    );
    assert!(!stack.leftovers().is_empty());
    stack.xtask_ok(
        &[
            "down",
            "--project-name",
            &stack.project,
            "--volumes",
            "--yes",
        ],
        None,
    );
    stack.down = true;
    assert_eq!(
        stack.leftovers(),
        Vec::<String>::new(),
        "down --volumes leaves nothing"
    );

    for (what, took) in timings {
        eprintln!("timing: {what}: {:.1}s", took.as_secs_f64());
    }
}
