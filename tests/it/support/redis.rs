//! A private, real Redis for a test: Debian's `redis-server` on a free loopback port, without
//! persistence, in its own temporary directory. It can be killed, frozen and started again on the
//! same port, as an outage would.
//!
//! Without `redis-server` on the PATH the tests that need it skip, loudly; under CI (`CI=true`)
//! they fail instead, so a missing install step cannot pass unnoticed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Serving TLS only (`rediss://`), with this certificate and key in `dir`.
    tls: bool,
}

/// True if `redis-server` can run here; otherwise says why the test is skipped (or, under CI,
/// fails it).
pub fn available() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        let under_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !under_ci,
            "redis-server is not installed, and CI must run the Redis cache tests \
             (apt-get install redis-server; .ci/run does it)"
        );
        // Straight to stderr, past the test harness's capture, so the skip is seen.
        let _ = std::io::stderr().write_all(
            b"\n*** SKIPPED: redis-server is not installed, so the Redis cache tests did not run.\n\
              *** Install it (apt-get install redis-server) to run them.\n",
        );
    }
    found
}

impl Redis {
    /// Starts a Redis on a free port, or None (after saying so) when `redis-server` is missing.
    pub fn start() -> Option<Redis> {
        Redis::start_inner(None)
    }

    /// A Redis that speaks TLS only (`rediss://`, no plain port), presenting the certificate
    /// `cert_pem` (with its key); clients need no certificate of their own.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Option<Redis> {
        Redis::start_inner(Some((cert_pem, key_pem)))
    }

    fn start_inner(tls: Option<(&str, &str)>) -> Option<Redis> {
        if !available() {
            return None;
        }
        let mut redis = Redis {
            port: 0,
            child: None,
            dir: tempfile::tempdir().unwrap(),
            tls: tls.is_some(),
        };
        if let Some((cert, key)) = tls {
            std::fs::write(redis.dir.path().join("server.crt"), cert).unwrap();
            std::fs::write(redis.dir.path().join("server.key"), key).unwrap();
        }
        // The port is free when asked; another process could take it before Redis binds, so
        // try a few.
        for _ in 0..5 {
            redis.port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if redis.spawn() {
                return Some(redis);
            }
        }
        panic!("could not start redis-server on a free port");
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Starts the server process on `self.port`; false if it exited (e.g. the port is taken).
    fn spawn(&mut self) -> bool {
        let mut cmd = Command::new("redis-server");
        if self.tls {
            let file = |name: &str| self.dir.path().join(name).to_string_lossy().into_owned();
            // The server's own certificate doubles as the (unused) client CA Redis insists on.
            cmd.args(["--port", "0", "--tls-port", &self.port.to_string()])
                .args(["--tls-cert-file", &file("server.crt")])
                .args(["--tls-key-file", &file("server.key")])
                .args(["--tls-ca-cert-file", &file("server.crt")])
                .args(["--tls-auth-clients", "no"]);
        } else {
            cmd.args(["--port", &self.port.to_string()]);
        }
        let child = cmd
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.as_mut().unwrap().try_wait() {
                self.child = None;
                return false;
            }
            if self.ping() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer PING", self.port);
    }

    /// Whether the server answers PING now (raw RESP over TCP, short timeouts); over TLS,
    /// whether it accepts connections.
    pub fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect_timeout(
            &([127, 0, 0, 1], self.port).into(),
            Duration::from_millis(200),
        ) else {
            return false;
        };
        if self.tls {
            return true;
        }
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 16];
        matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
    }

    /// Sends a signal to the server process.
    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("redis is running").id();
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{sig} {pid} failed");
    }

    /// SIGKILL: the server is gone, its data with it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts an empty server again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn(),
            "redis-server did not start again on {}",
            self.port
        );
    }

    /// SIGSTOP: the server keeps its connections and data but answers nothing.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// SIGCONT after `freeze`.
    pub fn thaw(&self) {
        self.signal("CONT");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A frozen server would ignore SIGTERM; SIGKILL works either way.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}
