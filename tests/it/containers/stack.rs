//! The stack under test: a compose project of its own on a free port, driven through
//! `cargo xtask`, and taken down (volumes and all) when dropped.

use super::*;

/// The stack under test: its own compose project, port and secrets, torn down when dropped.
pub(super) struct TestStack {
    pub(super) project: String,
    pub(super) port: u16,
    pub(super) env: Vec<(String, String)>,
    pub(super) _secrets: tempfile::TempDir,
    pub(super) down: bool,
}

impl TestStack {
    pub(super) fn new() -> TestStack {
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
    pub(super) fn xtask(&self, args: &[&str], stdin: Option<&str>) -> Output {
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

    pub(super) fn xtask_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
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

    pub(super) fn compose(&self, args: &[&str]) -> Output {
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

    pub(super) fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Names of the project's containers, networks or volumes that exist.
    pub(super) fn leftovers(&self) -> Vec<String> {
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
                "--profile",
                "workers",
                "down",
                "--volumes",
                "--remove-orphans",
            ]);
        }
    }
}

pub(super) async fn wait_for_health(base: &str, timeout: Duration) {
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
