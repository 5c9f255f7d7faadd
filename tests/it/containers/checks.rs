//! The checks the end-to-end test makes on the running stack: the proxy, a browser session,
//! asking a question, the secret files' modes, and a backup and restore.

use super::*;

pub(super) fn proxy_checks(stack: &mut TestStack) {
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
pub(super) fn wait_until_healthy(container: &str, timeout: Duration) {
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

pub(super) fn browser(base: &str) -> Browser {
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
pub(super) async fn ask(b: &Browser, conversation: &str, question: &str) -> Value {
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

pub(super) fn effective_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

/// Each secret file is 0600 and owned by the uid:gid of the services that mount it (app and
/// backup 10001, db 999, grafana 472:0) when xtask runs as root; else 0644 in a 0700 directory.
pub(super) fn secret_modes(stack: &TestStack) {
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
pub(super) async fn backup_and_restore(
    stack: &TestStack,
    alice: &mut Browser,
    collection: &str,
    doc: &str,
) {
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
