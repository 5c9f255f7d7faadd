//! Clients for the model servers: embeddings and streamed chat, over Ollama's API or an
//! OpenAI-compatible one. Timeouts everywhere, bounded retries with backoff where a retry is safe.

mod ollama;
mod openai;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::domain::settings::{Api, Endpoint, Sampling};

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The server cannot be reached or answers 5xx: try later. The message leaves the URL out:
    /// it reaches users (chat errors, document errors, /ready), and the internal address of a
    /// model server is not theirs to know; the log has it.
    #[error("the model server is unavailable: {reason}")]
    Unavailable { reason: String },
    /// The server refused the request (unknown model, bad input): retrying will not help.
    #[error("the model server refused the request: {0}")]
    Refused(String),
    /// An `{"error": ...}` or malformed record in the middle of a stream.
    #[error("the model server failed mid-answer: {0}")]
    Stream(String),
    /// The client went away; generation stopped.
    #[error("cancelled")]
    Cancelled,
}

impl LlmError {
    pub fn is_transient(&self) -> bool {
        matches!(self, LlmError::Unavailable { .. })
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ChatMessage {
    pub role: crate::domain::chat::Speaker,
    pub content: String,
}

/// What a finished generation reports.
#[derive(Debug, Default, Clone)]
pub struct ChatStats {
    pub tokens: u64,
    pub generation_time: Duration,
}

#[derive(Clone)]
pub struct Client {
    endpoint: Endpoint,
    /// The model chat asks for: the endpoint's, until an admin names another at run time. Shared
    /// by the clones, so a change reaches every request at once.
    model: Arc<RwLock<String>>,
    http: reqwest::Client,
    timeout: Duration,
    /// For chat; None: the server's own defaults.
    sampling: Option<Sampling>,
}

const RETRY_DELAYS: [Duration; 2] = [Duration::from_millis(250), Duration::from_millis(1000)];

/// The HTTP client for outbound requests (model servers, the Hub): rustls, trusting the
/// system's roots, Mozilla's, and the PEM certificates in `ca_bundle` if given.
pub fn http_client(ca_bundle: Option<&std::path::Path>) -> Result<reqwest::Client, String> {
    Ok(http_clients(ca_bundle)?.0)
}

/// [`http_client`], and the same client with redirects off and a time limit, for OpenID
/// providers: a token request that is redirected would take the client secret and the code
/// along.
pub fn http_clients(
    ca_bundle: Option<&std::path::Path>,
) -> Result<(reqwest::Client, reqwest::Client), String> {
    let mut roots = Vec::new();
    if let Some(path) = ca_bundle {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read ca_bundle {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| {
            format!(
                "ca_bundle {} holds no PEM certificates (-----BEGIN CERTIFICATE-----)",
                path.display()
            )
        })?;
        if certs.is_empty() {
            return Err(format!(
                "ca_bundle {} holds no certificates",
                path.display()
            ));
        }
        roots = certs;
    }
    let build = |redirects, timeout: Option<Duration>| {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(redirects)
            .use_rustls_tls();
        if let Some(timeout) = timeout {
            builder = builder.timeout(timeout);
        }
        for cert in &roots {
            builder = builder.add_root_certificate(cert.clone());
        }
        builder
            .build()
            .map_err(|e| format!("the HTTP client cannot start: {e}"))
    };
    Ok((
        // Answers stream for minutes: the model clients time out per read instead.
        build(reqwest::redirect::Policy::default(), None)?,
        // A provider that hangs must not hold a sign-in past the request deadline.
        build(
            reqwest::redirect::Policy::none(),
            Some(Duration::from_secs(15)),
        )?,
    ))
}

impl Client {
    pub fn new(endpoint: Endpoint, timeout: Duration, http: reqwest::Client) -> Client {
        Client {
            model: Arc::new(RwLock::new(endpoint.model.clone())),
            endpoint,
            http,
            timeout,
            sampling: None,
        }
    }

    /// Answers drawn with this temperature and token limit.
    pub fn with_sampling(self, sampling: Sampling) -> Client {
        Client {
            sampling: Some(sampling),
            ..self
        }
    }

    /// The configured model (embeddings always use it).
    pub fn model(&self) -> &str {
        &self.endpoint.model
    }

    /// The model answers come from: the configured one, or the one an admin named since.
    pub fn chat_model(&self) -> String {
        self.model.read().expect("not poisoned").clone()
    }

    /// Names another chat model on the same server, for every clone of this client.
    pub fn set_model(&self, model: &str) {
        *self.model.write().expect("not poisoned") = model.to_string();
    }

    pub fn api(&self) -> Api {
        self.endpoint.api
    }

    fn request(&self, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.http.post(format!("{}{path}", self.endpoint.url));
        if let Some(key) = &self.endpoint.api_key {
            req = req.bearer_auth(key);
        }
        req
    }

    fn unavailable(&self, reason: impl ToString) -> LlmError {
        LlmError::Unavailable {
            reason: reason.to_string(),
        }
    }

    /// Sends a request, retrying connection failures and 5xx with backoff.
    async fn send(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response, LlmError> {
        let mut attempt = 0;
        loop {
            let result = self
                .request(path)
                .json(body)
                .timeout(self.timeout)
                .send()
                .await;
            let err = match result {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) if resp.status().is_server_error() => {
                    let status = resp.status();
                    self.unavailable(format!("HTTP {status}: {}", error_text(resp).await))
                }
                Ok(resp) => {
                    let status = resp.status();
                    return Err(LlmError::Refused(format!(
                        "HTTP {status}: {}",
                        error_text(resp).await
                    )));
                }
                Err(e) => self.unavailable(e.without_url()),
            };
            match RETRY_DELAYS.get(attempt) {
                Some(delay) => {
                    tracing::debug!(error = %err, url = %self.endpoint.url, "model server request failed; retrying");
                    tokio::time::sleep(*delay).await;
                    attempt += 1;
                }
                None => return Err(err),
            }
        }
    }

    /// Whether the server answers at all (for readiness detail): Ollama's `/api/version`, or the
    /// OpenAI-compatible `/models`.
    pub async fn ping(&self) -> Result<(), String> {
        let path = match self.endpoint.api {
            Api::Ollama => "/api/version",
            Api::OpenAi => "/models",
        };
        let mut req = self.http.get(format!("{}{path}", self.endpoint.url));
        if let Some(key) = &self.endpoint.api_key {
            req = req.bearer_auth(key);
        }
        match req.timeout(Duration::from_secs(2)).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("HTTP {}", r.status())),
            Err(e) => Err(e.without_url().to_string()),
        }
    }

    /// Embeds `texts` in one request, one vector each, in order.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        let vectors = match self.endpoint.api {
            Api::Ollama => ollama::embed(self, texts).await?,
            Api::OpenAi => openai::embed(self, texts).await?,
        };
        if vectors.len() != texts.len() {
            return Err(LlmError::Refused(format!(
                "asked for {} embeddings, got {}",
                texts.len(),
                vectors.len()
            )));
        }
        Ok(vectors)
    }

    /// Streams a chat answer into `tokens`; returns when the model is done. If the receiver is
    /// dropped (the client went away) the request is dropped too, which stops generation.
    pub async fn chat(
        &self,
        messages: &[ChatMessage],
        tokens: &mpsc::Sender<String>,
    ) -> Result<ChatStats, LlmError> {
        match self.endpoint.api {
            Api::Ollama => ollama::chat(self, messages, tokens).await,
            Api::OpenAi => openai::chat(self, messages, tokens).await,
        }
    }
}

async fn error_text(resp: reqwest::Response) -> String {
    let text = resp.text().await.unwrap_or_default();
    // Both APIs put the reason in an `error` field (a string, or an object with `message`).
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            e.as_str()
                .map(String::from)
                .or_else(|| e.get("message")?.as_str().map(String::from))
        })
        .unwrap_or_else(|| text.chars().take(200).collect())
}

/// Splits a byte stream into lines, waiting at most `timeout` for each chunk.
pub(crate) struct Lines {
    response: reqwest::Response,
    buffer: Vec<u8>,
    timeout: Duration,
}

impl Lines {
    pub(crate) fn new(response: reqwest::Response, timeout: Duration) -> Lines {
        Lines {
            response,
            buffer: Vec::new(),
            timeout,
        }
    }

    pub(crate) async fn next(&mut self) -> Result<Option<String>, String> {
        loop {
            if let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=pos).collect();
                return Ok(Some(String::from_utf8_lossy(&line).trim_end().to_string()));
            }
            let chunk = tokio::time::timeout(self.timeout, self.response.chunk())
                .await
                .map_err(|_| "no data from the model server within the timeout".to_string())?
                .map_err(|e| e.to_string())?;
            match chunk {
                Some(bytes) => self.buffer.extend_from_slice(&bytes),
                None if self.buffer.is_empty() => return Ok(None),
                None => {
                    let rest = std::mem::take(&mut self.buffer);
                    return Ok(Some(String::from_utf8_lossy(&rest).trim_end().to_string()));
                }
            }
        }
    }
}
