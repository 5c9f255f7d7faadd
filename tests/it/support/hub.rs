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
    /// Over HTTPS: the PEM of the CA that signed its certificate.
    pub ca_pem: Option<String>,
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

/// A CA, and a certificate for 127.0.0.1 and localhost signed by it.
fn test_ca() -> (String, rustls::ServerConfig) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Berth test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    (ca_cert.pem(), config)
}

impl HubFake {
    pub fn start() -> HubFake {
        HubFake::start_with(None)
    }

    /// Over HTTPS, with a certificate from a CA of its own (`ca_pem`).
    pub fn start_tls() -> HubFake {
        let (ca_pem, config) = test_ca();
        let mut hub = HubFake::start_with(Some(config));
        hub.url = hub.url.replace("http://", "https://");
        hub.ca_pem = Some(ca_pem);
        hub
    }

    fn start_with(tls: Option<rustls::ServerConfig>) -> HubFake {
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
                let Some(tls) = tls else {
                    axum::serve(listener, app).await.unwrap();
                    return;
                };
                let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
                while let Ok((tcp, _)) = listener.accept().await {
                    let (acceptor, app) = (acceptor.clone(), app.clone());
                    tokio::spawn(async move {
                        // A client that refuses the certificate ends the handshake: fine.
                        let Ok(stream) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let service = hyper::service::service_fn(
                            move |req: hyper::Request<hyper::body::Incoming>| {
                                let mut app = app.clone();
                                async move {
                                    use tower::Service as _;
                                    app.call(req.map(Body::new)).await
                                }
                            },
                        );
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        let addr = rx.recv().unwrap();
        HubFake {
            url: format!("http://{addr}"),
            state,
            ca_pem: None,
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
