//! Black-box tests of `cargo xtask dev` and `cargo xtask admin`: they run the xtask binary
//! against the real server, each on a free port and a data directory of its own.
//!
//! The server is this checkout's `target/debug/berth`, built once per run by
//! `cargo build --locked -p berth` (a no-op when it is up to date) and passed in BERTH_DEV_BIN, so
//! `xtask` itself builds nothing. This also covers `cargo test -p xtask`, which would not build the
//! server itself. (Cargo releases its build lock before it runs tests, so the nested build does
//! not wait for the `cargo test` that started it; `cargo test --workspace` builds the server with
//! the dev-dependencies' features, a separately cached variant, so both stay up to date.)

use crate::support::{free_port, XTASK};
use std::{
    env,
    ffi::OsStr,
    fs,
    io::{BufRead, BufReader, Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{mpsc, Arc, Mutex, OnceLock},
    thread,
    time::{Duration, Instant},
};

/// Startup runs migrations; `dev` itself gives the server 60 s.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// `dev` gives the server 10 s after SIGTERM before killing it.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// A cold build of the server takes minutes on a small machine.
const BUILD_TIMEOUT: Duration = Duration::from_secs(20 * 60);
const PASSWORD: &str = "Correct-Horse-9-battery";

/// The server binary, built (or found up to date) once for all the tests here.
fn berth() -> &'static Path {
    static BERTH: OnceLock<PathBuf> = OnceLock::new();
    BERTH.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let started = Instant::now();
        let mut build = Command::new(cargo)
            .args(["build", "--locked", "--quiet", "-p", "berth"])
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running cargo build -p berth");
        let mut pipe = build.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        });
        // Another cargo sharing target/ can make this wait for a while; but should the cargo
        // running these tests ever hold the build lock itself, it would wait forever.
        let status = loop {
            if let Some(status) = build.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > BUILD_TIMEOUT {
                let _ = build.kill();
                let _ = build.wait();
                panic!(
                    "`cargo build --locked -p berth` did not finish within {BUILD_TIMEOUT:?} \
                     (waiting for cargo's build lock?); run it first, then the tests"
                );
            }
            thread::sleep(Duration::from_millis(100));
        };
        let stderr = stderr.join().unwrap();
        assert!(
            status.success(),
            "`cargo build --locked -p berth` failed ({status}), so `xtask dev` cannot be tested:\n\
             {stderr}"
        );
        eprintln!("cargo build -p berth: {:.1?}", started.elapsed());
        // Cargo puts every binary of the workspace in the same directory.
        let bin = Path::new(XTASK).with_file_name("berth");
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

/// `xtask ARGS`, with no BERTH_* settings from the caller's environment.
fn xtask<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I) -> Command {
    let mut command = Command::new(XTASK);
    command.args(args);
    for (name, _) in env::vars_os() {
        if name.to_string_lossy().starts_with("BERTH_") {
            command.env_remove(name);
        }
    }
    command
}

/// A data directory that does not exist yet (the task must create it), in a temporary
/// directory that is removed on drop.
struct TempDir {
    _root: tempfile::TempDir,
    path: PathBuf,
}

impl TempDir {
    fn new(name: &str) -> TempDir {
        let root = tempfile::Builder::new()
            .prefix(&format!("berth-xtask-test-{name}-"))
            .tempdir()
            .expect("a temporary directory");
        let path = root.path().join("data");
        TempDir { _root: root, path }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn arg(&self) -> &str {
        self.path.to_str().expect("temp dir path is UTF-8")
    }
}

/// Processes whose command line contains `needle`, as `pid: command line`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let name = entry.file_name();
        let Ok(pid) = name.to_string_lossy().parse::<u32>() else {
            continue;
        };
        // Processes come and go while we look; one that went is not one left.
        let Ok(raw) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if pid != std::process::id() && cmdline.contains(needle) {
            found.push(format!("{pid}: {}", cmdline.trim_end()));
        }
    }
    found
}

/// The status code of `GET path`, or `None` if nothing valid answered.
fn get(port: u16, path: &str) -> Option<u16> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    let mut chunk = [0; 512];
    while !response.windows(2).any(|w| w == b"\r\n") && response.len() < 8192 {
        match stream.read(&mut chunk).ok()? {
            0 => break,
            n => response.extend_from_slice(&chunk[..n]),
        }
    }
    let response = String::from_utf8_lossy(&response);
    let mut parts = response.lines().next()?.split(' ');
    parts.next()?.starts_with("HTTP/").then_some(())?;
    parts.next()?.parse().ok()
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{sig} {pid}: {status}");
}

/// A running `xtask dev`, its stdout as lines and its stderr collected. If the test fails it is
/// stopped, and anything it left behind on the test's data dir is killed.
struct Dev {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    data_dir: String,
}

impl Dev {
    fn start(port: u16, data_dir: &TempDir) -> Dev {
        let port = port.to_string();
        let mut child = xtask([
            "dev",
            "--no-watch",
            "--port",
            &port,
            "--data-dir",
            data_dir.arg(),
        ])
        .env("BERTH_DEV_BIN", berth())
        .env("BERTH_DEV_NO_FRONTEND", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting xtask dev");

        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // The server inherits both pipes (it logs to stdout), so both are drained to the end;
        // nobody waits for these threads, since a leftover server would keep the pipes open.
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut chunk = [0; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        Dev {
            child,
            lines,
            stderr,
            data_dir: data_dir.arg().to_string(),
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for a line of stdout equal to `expected`.
    fn wait_for_line(&mut self, expected: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) if line == expected => return,
                Ok(line) => seen.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().unwrap();
                    panic!(
                        "xtask dev exited ({status}) without printing {expected:?}\n\
                         stdout: {seen:?}\nstderr:\n{}",
                        self.stderr()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {expected:?} within {timeout:?}\nstdout: {seen:?}\nstderr:\n{}",
                self.stderr()
            );
        }
    }

    fn wait_for_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "xtask dev still running {timeout:?} after SIGINT\nstderr:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), "TERM");
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Only what this test started mentions its data dir.
        for process in processes_mentioning(&self.data_dir) {
            if let Some((pid, _)) = process.split_once(':') {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
    }
}

#[test]
fn dev_serves_then_stops_everything_on_sigint() {
    let data_dir = TempDir::new("dev");
    let port = free_port();
    let mut dev = Dev::start(port, &data_dir);
    dev.wait_for_line(
        &format!("Berth is running at http://127.0.0.1:{port}/"),
        START_TIMEOUT,
    );

    assert_eq!(get(port, "/health"), Some(200), "GET /health");
    assert_eq!(get(port, "/ready"), Some(200), "GET /ready");
    assert!(data_dir.path().join("berth.db").is_file());
    // Otherwise the check that nothing is left could not fail.
    let running = processes_mentioning(data_dir.arg());
    assert!(
        running.iter().any(|p| p.contains(" serve ")),
        "the server should show up in /proc: {running:?}"
    );

    signal(dev.child.id(), "INT");
    let status = dev.wait_for_exit(STOP_TIMEOUT);
    assert!(
        status.success(),
        "xtask dev should exit 0 on SIGINT, got {status}\nstderr:\n{}",
        dev.stderr()
    );
    assert_eq!(
        processes_mentioning(data_dir.arg()),
        Vec::<String>::new(),
        "processes left running"
    );
    assert!(
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok(),
        "port {port} still taken"
    );
    assert_eq!(get(port, "/health"), None);
}

#[test]
fn dev_on_a_taken_port_is_one_clear_error() {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let data_dir = TempDir::new("taken-port");
    let out = xtask([
        "dev",
        "--no-watch",
        "--port",
        &port,
        "--data-dir",
        data_dir.arg(),
    ])
    // The port is checked first: nothing is built or run.
    .env("BERTH_DEV_BIN", "/nonexistent/berth")
    .stdin(Stdio::null())
    .output()
    .unwrap();

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    let lines: Vec<_> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected, got:\n{stderr}");
    assert!(
        lines[0].contains(&port) && lines[0].contains("--port"),
        "{}",
        lines[0]
    );
    assert!(out.stdout.is_empty());
    assert!(!data_dir.path().exists(), "nothing should be created");
}

/// `xtask admin ACTION --username NAME --password-stdin --data-dir DIR`, given `password` on stdin.
fn admin(action: &str, name: &str, data_dir: &TempDir, password: &str) -> Output {
    let mut child = xtask([
        "admin",
        action,
        "--username",
        name,
        "--password-stdin",
        "--data-dir",
        data_dir.arg(),
    ])
    .env("BERTH_DEV_BIN", berth())
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn admin_passes_stdin_and_exit_status_through() {
    let data_dir = TempDir::new("admin");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();

    let created = admin("create", "alice", &data_dir, PASSWORD);
    assert!(
        created.status.success(),
        "{}\n{}",
        created.status,
        text(&created.stderr)
    );
    // stdout is berth's alone; xtask's progress goes to stderr.
    assert!(
        text(&created.stdout).starts_with("Created admin account alice"),
        "{}",
        text(&created.stdout)
    );
    assert!(data_dir.path().join("berth.db").is_file());

    // berth refuses with 2 (a configuration-class error); xtask passes that on.
    let again = admin("create", "alice", &data_dir, PASSWORD);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again.stderr));
    assert!(text(&again.stderr).contains("exists already"));

    let weak = admin("reset-password", "alice", &data_dir, "short");
    assert_eq!(weak.status.code(), Some(2), "{}", text(&weak.stderr));
    assert!(text(&weak.stderr).contains("not accepted"));

    let reset = admin(
        "reset-password",
        "alice",
        &data_dir,
        "Another-Horse-7-battery",
    );
    assert!(reset.status.success(), "{}", text(&reset.stderr));
    assert!(text(&reset.stdout).contains("Password of alice reset"));
}
