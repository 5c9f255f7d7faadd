//! A real OpenID Provider for a test: `tests/oidc/provider.mjs` (the npm package
//! `oidc-provider`, a certified implementation) on a free loopback port, with the test's
//! clients and accounts, its own login form, and test-only switches that make it issue bad ID
//! tokens or rotate its signing key. Its npm packages are installed here, once, when
//! `tests/oidc/package-lock.json` is newer than what is installed. Without node and npm the
//! tests fail, saying what to install.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};

use super::Berth;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/oidc")
}

/// `npm ci` in tests/oidc unless node_modules matches the lockfile; once per test process,
/// under a file lock so that parallel test processes do not install over each other.
fn ensure_installed() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
        let node = Command::new("node").arg("--version").output();
        if !node.is_ok_and(|o| o.status.success()) {
            return Err(
                "node is not on PATH: the single sign-on tests run a real OpenID \
                        provider on Node.js (20.19 or newer) with npm; install them \
                        (apt-get install nodejs npm, or `cargo xtask doctor`)"
                    .into(),
            );
        }
        let lock_path = std::env::temp_dir().join("berth-tests-oidc-npm.lock");
        let lock = std::fs::File::create(&lock_path).map_err(|e| e.to_string())?;
        lock.lock().map_err(|e| e.to_string())?;
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let installed = modified(&dir().join("node_modules/.package-lock.json"));
        let locked = modified(&dir().join("package-lock.json"));
        if installed.is_none() || locked > installed {
            let out = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(dir())
                .output()
                .map_err(|e| format!("cannot run npm ({e}): install npm"))?;
            if !out.status.success() {
                return Err(format!(
                    "`npm ci` in tests/oidc failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        Ok(())
    });
    if let Err(why) = result {
        panic!("{why}");
    }
}

/// A client registered at the provider: Berth's side of it goes into the providers file.
pub struct TestClient {
    pub id: String,
    pub secret: String,
}

pub struct Provider {
    child: Child,
    pub issuer: String,
    output: Arc<Mutex<Vec<String>>>,
    _config: tempfile::TempDir,
}

impl Provider {
    /// Starts a provider with `client` registered for Berth's callback of `berth_id` at
    /// `berth_url`, and `accounts` (`{"LOGIN": {"password", "claims"}}`).
    pub fn start(
        berth_url: &str,
        berth_id: &str,
        client: &TestClient,
        accounts: Value,
    ) -> Provider {
        ensure_installed();
        let config_dir = tempfile::tempdir().unwrap();
        let config = json!({
            "port": 0,
            "clients": [{
                "client_id": client.id,
                "client_secret": client.secret,
                "redirect_uris": [format!("{berth_url}/api/v1/auth/oidc/{berth_id}/callback")],
                "post_logout_redirect_uris": [format!("{berth_url}/")],
            }],
            "accounts": accounts,
        });
        let path = config_dir.path().join("config.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let mut child = Command::new("node")
            .arg(dir().join("provider.mjs"))
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start node tests/oidc/provider.mjs");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        // Kept reading (a closed pipe would kill the provider at its next log line), and
        // shown if the test fails.
        let output = Arc::new(Mutex::new(Vec::new()));
        let stderr = BufReader::new(child.stderr.take().unwrap());
        for stream in [
            Box::new(stdout) as Box<dyn BufRead + Send>,
            Box::new(stderr),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in stream.lines().map_while(Result::ok) {
                    output.lock().unwrap().push(line);
                }
            });
        }
        let started: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("the test provider did not start: {line:?}"));
        Provider {
            child,
            issuer: started["issuer"].as_str().unwrap().to_string(),
            output,
            _config: config_dir,
        }
    }

    /// The next ID token is re-signed: `expired`, `wrong_aud`, `wrong_nonce`, `forged`,
    /// `unknown_kid` (see provider.mjs).
    pub async fn spoil_next_id_token(&self, mode: &str) {
        let url = format!("{}/test/next-id-token?mode={mode}", self.issuer);
        let status = reqwest::Client::new()
            .post(url)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 204);
    }

    /// A new signing key, published first: the key id of it.
    pub async fn rotate_keys(&self) -> String {
        let url = format!("{}/test/rotate", self.issuer);
        let v: Value = reqwest::Client::new()
            .post(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["kid"].as_str().unwrap().to_string()
    }

    /// How often the key set was fetched.
    pub async fn key_fetches(&self) -> u64 {
        let url = format!("{}/test/jwks-fetches", self.issuer);
        let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        v["fetches"].as_u64().unwrap()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "test provider's output:\n{}",
                self.output.lock().unwrap().join("\n")
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One provider as Berth's providers file names it.
pub struct Configured<'a> {
    pub id: &'a str,
    pub display_name: &'a str,
    pub issuer: &'a str,
    pub client: &'a TestClient,
    /// Extra TOML lines for the table (`auto_approve_groups = ["staff"]`, ...).
    pub extra: &'a str,
}

/// Writes the providers file (and each client secret in a file of its own, 0600): its path.
pub fn providers_file(dir: &Path, providers: &[Configured<'_>]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let mut text = String::new();
    for p in providers {
        let secret = dir.join(format!("{}.secret", p.id));
        std::fs::write(&secret, format!("{}\n", p.client.secret)).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        text += &format!(
            "[[provider]]\nid = \"{}\"\ndisplay_name = \"{}\"\nissuer = \"{}\"\n\
             client_id = \"{}\"\nclient_secret_file = \"{}.secret\"\n\
             scopes = [\"openid\", \"profile\", \"email\", \"groups\"]\n{}\n",
            p.id, p.display_name, p.issuer, p.client.id, p.id, p.extra
        );
    }
    let path = dir.join("providers.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A free loopback port for Berth: its public URL must be known before it starts, since the
/// provider registers the callback under it.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts Berth on `port` with the providers file and `args`.
pub fn start_berth(data_dir: &Path, port: u16, providers: &Path, args: &[&str]) -> Berth {
    let listen = format!("127.0.0.1:{port}");
    let public = format!("http://127.0.0.1:{port}");
    let mut all = vec![
        "--listen",
        &listen,
        "--public-url",
        &public,
        "--oidc-providers-file",
        providers.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    Berth::start_with(data_dir, &all, &[])
}

/// A browser: keeps cookies (Berth's and the provider's, both on 127.0.0.1), follows no
/// redirect by itself so that each hop can be seen.
pub struct SsoBrowser {
    pub http: reqwest::Client,
    pub berth: String,
}

/// Where Berth sent the browser from its callback.
pub struct Landed {
    pub location: String,
}

impl Landed {
    /// The `sign_in_error` code Berth sent the browser back with, if any.
    pub fn error(&self) -> Option<String> {
        let url = reqwest::Url::parse(&format!("http://x{}", self.location)).ok()?;
        url.query_pairs()
            .find(|(k, _)| k == "sign_in_error")
            .map(|(_, v)| v.into_owned())
    }
}

impl SsoBrowser {
    pub fn new(berth: &Berth) -> SsoBrowser {
        SsoBrowser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent("berth-tests/1")
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            berth: berth.base.clone(),
        }
    }

    /// Clicks the provider's button, signs in at the provider's own form, and follows the
    /// redirects up to Berth's callback: its URL (not yet visited).
    pub async fn through_provider(&self, provider_id: &str, login: &str, password: &str) -> String {
        let mut url = format!("{}/api/v1/auth/oidc/{provider_id}/start", self.berth);
        let callback = format!("{}/api/v1/auth/oidc/{provider_id}/callback", self.berth);
        for _ in 0..20 {
            if url.starts_with(&callback) {
                return url;
            }
            let resp = self.http.get(&url).send().await.unwrap();
            let status = resp.status();
            if status.is_redirection() {
                let location = resp.headers()["location"].to_str().unwrap().to_string();
                url = resp.url().join(&location).unwrap().to_string();
                continue;
            }
            let page_url = resp.url().clone();
            let body = resp.text().await.unwrap();
            assert!(
                status == 200 && body.contains("name=\"login\""),
                "expected the provider's login form at {page_url}, got {status}: {body}"
            );
            let action = body
                .split("action=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .expect("the form's action");
            let resp = self
                .http
                .post(page_url.join(action).unwrap())
                .form(&[("login", login), ("password", password)])
                .send()
                .await
                .unwrap();
            assert!(
                resp.status().is_redirection(),
                "login at the provider refused"
            );
            let location = resp.headers()["location"].to_str().unwrap().to_string();
            url = resp.url().join(&location).unwrap().to_string();
        }
        panic!("never reached Berth's callback; last URL {url}");
    }

    /// Visits Berth's callback: where Berth sends the browser.
    pub async fn land(&self, callback: &str) -> Landed {
        let resp = self.http.get(callback).send().await.unwrap();
        assert_eq!(resp.status(), 303, "the callback redirects");
        Landed {
            location: resp.headers()["location"].to_str().unwrap().to_string(),
        }
    }

    /// The whole sign-in: provider, login, callback.
    pub async fn sign_in(&self, provider_id: &str, login: &str, password: &str) -> Landed {
        let callback = self.through_provider(provider_id, login, password).await;
        self.land(&callback).await
    }

    /// `GET /api/v1/PATH` with this browser's cookies.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/v1{path}", self.berth))
            .send()
            .await
            .unwrap()
    }
}
