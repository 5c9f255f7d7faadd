//! The restored server the drill talks to: `berth serve` (this very binary) on the throwaway
//! copy, its logs kept to show when it fails.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use serde_json::Value;

use super::LOG_LINES;
use crate::config::{Api, Embedding, Settings};
use crate::error::BootError;

/// The real server (`berth serve`, this very binary) on the throwaway copy, listening on a port
/// of loopback the kernel picks. Killed when dropped.
pub(super) struct Server {
    /// In a mutex so that checking for an early exit works through `&self`.
    child: Mutex<Child>,
    logs: Arc<Mutex<VecDeque<String>>>,
}

impl Server {
    pub(super) fn start(
        data_dir: &Path,
        database_url: Option<&str>,
        settings: &Settings,
    ) -> Result<Server, BootError> {
        let exe = std::env::current_exe().context("finding this program's path")?;
        let mut cmd = Command::new(exe);
        cmd.arg("serve");
        // Nothing of the live configuration leaks in (its database, its Redis cache, its
        // config file): only what is set here.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("BERTH_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("BERTH_LISTEN", "127.0.0.1:0")
            .env("BERTH_DATA_DIR", data_dir)
            .env("BERTH_LOG_FORMAT", "json")
            .env("BERTH_LOG_LEVEL", "info")
            .env("BERTH_SHUTDOWN_TIMEOUT", "1")
            .env("BERTH_DATABASE_CONNECT_TIMEOUT", "10")
            // Plain HTTP on loopback: a Secure cookie would not come back.
            .env("BERTH_COOKIE_SECURE", "never");
        if let Some(url) = database_url {
            // In the environment, not on the command line: it may hold a password.
            cmd.env("BERTH_DATABASE_URL", url);
        }
        // The same embedding model and ranking as production, so the query is embedded and
        // ranked as there. No LLM: the drill does not chat.
        let rag = &settings.rag;
        match &rag.embed {
            None => {
                // Not "auto": a model in the drill's scratch data dir must not switch it on.
                cmd.env("BERTH_EMBED_API", "ollama");
            }
            Some(Embedding::Server(embed)) => {
                cmd.env("BERTH_EMBED_URL", &embed.url)
                    .env(
                        "BERTH_EMBED_API",
                        match embed.api {
                            Api::Ollama => "ollama",
                            Api::OpenAi => "openai",
                        },
                    )
                    .env("BERTH_EMBED_MODEL", &embed.model)
                    // Already checked against the live setting when this command's were loaded.
                    .env("BERTH_ALLOW_REMOTE_LLM", "true");
                if let Some(key) = &embed.api_key {
                    cmd.env("BERTH_EMBED_API_KEY", key);
                }
            }
            Some(Embedding::Builtin(model)) => {
                cmd.env("BERTH_EMBED_API", "builtin")
                    .env("BERTH_EMBED_MODEL", &model.name)
                    .env("BERTH_EMBED_MODEL_DIR", &model.dir)
                    .env("BERTH_EMBED_THREADS", model.threads.to_string());
            }
        }
        cmd.env("BERTH_RETRIEVAL_K", rag.retrieval_k.to_string())
            .env(
                "BERTH_RETRIEVAL_LEXICAL_WEIGHT",
                rag.lexical_weight.to_string(),
            )
            .env(
                "BERTH_RETRIEVAL_VECTOR_WEIGHT",
                rag.vector_weight.to_string(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().context("starting `berth serve`")?;
        let logs = Arc::new(Mutex::new(VecDeque::new()));
        let streams: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().context("the server's stdout")?),
            Box::new(child.stderr.take().context("the server's stderr")?),
        ];
        for stream in streams {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut logs = logs.lock().unwrap_or_else(|e| e.into_inner());
                    if logs.len() == LOG_LINES {
                        logs.pop_front();
                    }
                    logs.push_back(line);
                }
            });
        }
        Ok(Server {
            child: Mutex::new(child),
            logs,
        })
    }

    pub(super) fn logs(&self) -> Vec<String> {
        self.logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// `e`, followed by the server's last log lines.
    pub(super) fn with_logs(&self, e: anyhow::Error) -> anyhow::Error {
        let logs = self.logs();
        if logs.is_empty() {
            return e;
        }
        anyhow!(
            "{e:#}\nthe restored server's last log lines:\n  {}",
            logs.join("\n  ")
        )
    }

    /// The server's base URL once /ready answers 200.
    pub(super) async fn wait_ready(&self, timeout: Duration) -> Result<String, BootError> {
        let started = Instant::now();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;
        let mut base = None;
        let mut last = String::from("it has not said where it listens yet");
        loop {
            if base.is_none() {
                base = self.logs().iter().find_map(|line| {
                    let v: Value = serde_json::from_str(line).ok()?;
                    let message = v["fields"]["message"]
                        .as_str()
                        .or(v["message"].as_str())
                        .unwrap_or_default();
                    if !message.contains("Berth is listening") {
                        return None;
                    }
                    let address = v["address"].as_str().or(v["fields"]["address"].as_str())?;
                    Some(format!("http://{address}"))
                });
            }
            if let Some(base) = &base {
                match http.get(format!("{base}/ready")).send().await {
                    Ok(resp) if resp.status().is_success() => return Ok(base.clone()),
                    Ok(resp) => {
                        last = format!(
                            "/ready answered {}: {}",
                            resp.status(),
                            resp.text().await.unwrap_or_default()
                        )
                    }
                    Err(e) => last = format!("/ready did not answer: {e}"),
                }
            }
            if let Some(status) = self.exited() {
                // Let the log threads catch the last lines.
                tokio::time::sleep(Duration::from_millis(200)).await;
                return Err(self
                    .with_logs(anyhow!("the restored server exited ({status})"))
                    .into());
            }
            if started.elapsed() > timeout {
                return Err(self
                    .with_logs(anyhow!(
                        "the restored server was not ready within {} s ({last}); give it longer \
                         with --ready-timeout",
                        timeout.as_secs()
                    ))
                    .into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub(super) fn exited(&self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        child.try_wait().ok().flatten()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}
