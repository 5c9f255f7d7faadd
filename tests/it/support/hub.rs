//! A stand-in for the Hugging Face Hub (which is out of reach here): the URL layout and
//! answers `berth models pull` uses, serving a real model's files from a local directory.
//! Weights are "LFS" files — listed with their SHA-256 and served through a redirect to a
//! CDN path, as the Hub does — and the rest are listed with their Git blob id.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

#[derive(Default)]
struct State {
    /// repo → (commit, directory).
    repos: HashMap<String, (String, PathBuf)>,
    /// Serve the weights with one byte changed.
    corrupt: bool,
}

pub struct HubFake {
    pub url: String,
    state: Arc<Mutex<State>>,
}

fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_lfs(name: &str) -> bool {
    name.ends_with(".safetensors") || name.ends_with(".bin")
}

impl HubFake {
    pub fn start() -> HubFake {
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new().fallback(move |uri: Uri| {
                    let state = shared.clone();
                    async move { answer(&state, uri.path()) }
                });
                axum::serve(listener, app).await.unwrap();
            });
        });
        let addr = rx.recv().unwrap();
        HubFake {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// Serves `dir` as `repo` at `commit` (any revision name resolves to it).
    pub fn serve(&self, repo: &str, commit: &str, dir: &Path) {
        self.state
            .lock()
            .unwrap()
            .repos
            .insert(repo.into(), (commit.into(), dir.into()));
    }

    pub fn corrupt_weights(&self, on: bool) {
        self.state.lock().unwrap().corrupt = on;
    }
}

fn answer(state: &Mutex<State>, path: &str) -> Response {
    let state = state.lock().unwrap();
    let not_found = || (StatusCode::NOT_FOUND, "Repository not found").into_response();
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let Some((repo, _revision)) = rest.split_once("/revision/") else {
            return not_found();
        };
        let Some((commit, dir)) = state.repos.get(repo) else {
            return not_found();
        };
        let siblings: Vec<serde_json::Value> = files(dir)
            .into_iter()
            .map(|name| {
                let bytes = std::fs::read(dir.join(&name)).unwrap();
                if is_lfs(&name) {
                    serde_json::json!({
                        "rfilename": name, "size": bytes.len(),
                        "lfs": { "sha256": hex(&Sha256::digest(&bytes)), "size": bytes.len() },
                    })
                } else {
                    serde_json::json!({
                        "rfilename": name, "size": bytes.len(),
                        "blobId": berth::hub::git_blob_id(&bytes),
                    })
                }
            })
            .collect();
        return axum::Json(serde_json::json!({ "id": repo, "sha": commit, "siblings": siblings }))
            .into_response();
    }
    if let Some(sha) = path.strip_prefix("/cdn/") {
        for (_, dir) in state.repos.values() {
            for name in files(dir).into_iter().filter(|n| is_lfs(n)) {
                let mut bytes = std::fs::read(dir.join(&name)).unwrap();
                if hex(&Sha256::digest(&bytes)) == sha {
                    if state.corrupt {
                        let last = bytes.len() - 1;
                        bytes[last] ^= 1;
                    }
                    return Body::from(bytes).into_response();
                }
            }
        }
        return not_found();
    }
    let Some((repo, rest)) = path.trim_start_matches('/').split_once("/resolve/") else {
        return not_found();
    };
    let Some((commit, dir)) = state.repos.get(repo) else {
        return not_found();
    };
    let Some((asked, file)) = rest.split_once('/') else {
        return not_found();
    };
    if asked != commit || file.contains("..") {
        return not_found();
    }
    let Ok(bytes) = std::fs::read(dir.join(file)) else {
        return not_found();
    };
    if is_lfs(file) {
        let to = format!("/cdn/{}", hex(&Sha256::digest(&bytes)));
        return (StatusCode::FOUND, [(header::LOCATION, to)]).into_response();
    }
    Body::from(bytes).into_response()
}
