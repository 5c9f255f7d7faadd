//! `cargo xtask dev`: build the server, run it, and rebuild and restart it when sources change.
//!
//! Everything it starts stops with it: on SIGINT/SIGTERM/SIGHUP a handler only raises a flag,
//! and the loops here, which poll, see it and stop the build and the server themselves.

use std::{
    collections::BTreeMap,
    fs,
    io::{ErrorKind, Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{bail, Context, Result};
use walkdir::WalkDir;
use xshell::{cmd, Shell};

use crate::util::{dev_data_dir, dev_server_bin, project_root, section, show, warn};

/// What a server build depends on; a change to any of these triggers a rebuild.
const WATCHED: &[&str] = &[
    "app/src",
    "app/migrations",
    "app/Cargo.toml",
    "embed/src",
    "embed/Cargo.toml",
    "Cargo.toml",
    "Cargo.lock",
];
const POLL: Duration = Duration::from_millis(700);
/// How long to let an editor finish writing a batch of files before building.
const SETTLE: Duration = Duration::from_millis(250);
/// Startup includes migrations; generous, but a hung server must not hang `dev`.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(clap::Args, Debug)]
#[command(
    about = "Build and run the server locally; rebuild and restart it when sources change",
    long_about = "Build the server (cargo build --locked -p berth), run it with \
                  `berth serve --listen 127.0.0.1:PORT --data-dir DIR`, wait until GET /health \
                  answers 200, and print `Berth is running at http://127.0.0.1:PORT/`.\n\n\
                  Unless --no-watch is given, keep watching app/src, app/migrations, \
                  app/Cargo.toml, Cargo.toml and Cargo.lock. On a change, rebuild: if the build \
                  fails the running server is left alone; if it succeeds the server is restarted.\n\n\
                  Ctrl-C (or SIGTERM/SIGHUP) stops the server (SIGTERM, then SIGKILL after 10 s) \
                  and any build in progress; nothing is left running. A second Ctrl-C kills at once.",
    after_help = "Environment:\n  \
                  BERTH_DEV_BIN=PATH  run this binary instead of building target/debug/berth \
                  (no build step; a change still restarts it)\n  \
                  CARGO_TARGET_DIR    where cargo puts debug/berth (default: target/ in the repository)\n\n\
                  Exit status:\n  \
                  0  stopped by Ctrl-C/SIGTERM, or --dry-run\n  \
                  1  port in use, build failed, server not healthy, or (with --no-watch) it exited by itself\n  \
                  2  bad command line"
)]
pub struct Args {
    /// Start the server once; do not rebuild and restart on changes
    #[arg(long)]
    no_watch: bool,
    /// Port on 127.0.0.1 to serve on
    #[arg(long, value_name = "N", default_value_t = 8080, value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// Server data directory [default: .berth-dev/data in the repository]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print what would be done, then exit without doing it
    #[arg(long)]
    dry_run: bool,
    /// Run PostgreSQL, Redis and Ollama in containers (stage dev of deploy/stack.toml, on
    /// 127.0.0.1) and point the server at them; they keep running after Ctrl-C
    /// (`cargo xtask down --stage dev` stops them)
    #[arg(long)]
    stack: bool,
}

/// Number of stop signals received; the handler does nothing else.
static SIGNALS: AtomicU32 = AtomicU32::new(0);

fn stop_requested() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}

/// Sleeps for `d` in small slices; false if a stop was requested meanwhile.
fn sleep_unless_stopped(d: Duration) -> bool {
    let deadline = Instant::now() + d;
    while Instant::now() < deadline {
        if stop_requested() {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
    !stop_requested()
}

/// `--stack`: brings the dev stage's services up and returns the settings that point the
/// server at them (`lifecycle::dev_stack`, handed in by `main`); takes `--dry-run`.
pub type DevStack = fn(bool) -> Result<Vec<(String, String)>>;

pub fn run(args: Args, dev_stack: DevStack) -> Result<()> {
    let mut dev = Dev::new(&args)?;
    let watch = !args.no_watch;
    // Fail before a possibly long build rather than after it.
    check_port_free(dev.port)?;
    if args.stack {
        dev.env = dev_stack(args.dry_run)?;
    }
    dev.choose_embeddings();
    if args.dry_run {
        dev.print_plan(watch);
        return Ok(());
    }

    ctrlc::set_handler(|| {
        if SIGNALS.fetch_add(1, Ordering::SeqCst) == 0 {
            eprintln!();
            section("stopping (again to kill at once)");
        }
    })
    .context("installing the signal handler")?;

    prepare_frontend(&dev.root)?;
    fs::create_dir_all(&dev.data_dir)
        .with_context(|| format!("creating {}", dev.data_dir.display()))?;
    let sh = Shell::new()?;
    sh.change_dir(&dev.root);
    if watch {
        dev.watch(&sh)
    } else {
        dev.run_once(&sh)
    }
}

/// Bundles `frontend/` before the server starts (`npm ci` when its lockfile changed, then the
/// bundle; see `cargo xtask frontend`). A debug server reads the bundle from disk, so a later
/// `cargo xtask frontend` shows in the browser without a restart. Without npm, or if the bundle
/// fails, the server starts anyway: its pages then say how to build the UI.
/// `BERTH_DEV_NO_FRONTEND=1` skips it (the API alone, e.g. for tests of `dev` itself).
fn prepare_frontend(root: &Path) -> Result<()> {
    let dir = root.join("frontend");
    if !dir.join("package.json").exists() {
        return Ok(());
    }
    if std::env::var_os("BERTH_DEV_NO_FRONTEND").is_some_and(|v| v == "1") {
        section("web UI: not built (BERTH_DEV_NO_FRONTEND=1)");
        return Ok(());
    }
    if let Err(err) =
        crate::util::frontend::build(&dir, crate::util::frontend::Mode::BundleOnly, false)
    {
        warn(&format!(
            "the web UI was not built ({err:#}); the API runs without it"
        ));
    }
    Ok(())
}

fn check_port_free(port: u16) -> Result<()> {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == ErrorKind::AddrInUse => {
            bail!("port {port} is in use; pass --port N")
        }
        Err(err) => Err(err).with_context(|| format!("cannot listen on 127.0.0.1:{port}")),
    }
}

enum Build {
    Done,
    Failed,
    Interrupted,
}

struct Dev {
    root: PathBuf,
    server_bin: PathBuf,
    /// False when BERTH_DEV_BIN names a ready binary.
    build: bool,
    port: u16,
    data_dir: PathBuf,
    /// Extra settings for the server (`--stack`: where the containers are).
    env: Vec<(String, String)>,
}

impl Dev {
    fn new(args: &Args) -> Result<Dev> {
        let root = project_root();
        let server = dev_server_bin()?;
        let data_dir = match &args.data_dir {
            Some(dir) => std::path::absolute(dir)?,
            None => dev_data_dir(),
        };
        Ok(Dev {
            root,
            server_bin: server.path,
            build: server.build,
            port: args.port,
            data_dir,
            env: Vec::new(),
        })
    }

    /// Semantic search whenever a model is at hand: the data dir's own (`berth models pull`), else
    /// the test model `cargo xtask fixtures` fetched; otherwise says how to get one.
    fn choose_embeddings(&mut self) {
        let configured =
            |k: &str| std::env::var_os(k).is_some() || self.env.iter().any(|(name, _)| name == k);
        if configured("BERTH_EMBED_URL") || configured("BERTH_EMBED_MODEL_DIR") {
            return;
        }
        let model = crate::util::DEFAULT_EMBED_MODEL;
        let own = self.data_dir.join("models").join(model);
        let fixture = crate::util::test_models_dir().join(model);
        if own.join("model.safetensors").is_file() {
            println!("embeddings: built in, {model} from {}", own.display());
        } else if fixture.join("model.safetensors").is_file() {
            println!("embeddings: built in, {model} from {}", fixture.display());
            self.env.push((
                "BERTH_EMBED_MODEL_DIR".into(),
                fixture.to_string_lossy().into_owned(),
            ));
        } else {
            warn(&format!(
                "no embedding model: search matches words only. `cargo xtask fixtures models` \
                 fetches {model} (~85 MB, with the tests' LLM ~93 MB) for semantic search"
            ));
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    fn server_command(&self) -> Command {
        let mut command = Command::new(&self.server_bin);
        command
            .arg("serve")
            .arg("--listen")
            .arg(self.addr().to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .current_dir(&self.root)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        command
    }

    fn print_plan(&self, watch: bool) {
        println!("dev --dry-run: would");
        if self.build {
            println!(
                "  build:  cargo build --locked -p berth   (in {})",
                self.root.display()
            );
        } else {
            println!("  build:  nothing (BERTH_DEV_BIN is set)");
        }
        println!("  create: {}", self.data_dir.display());
        println!("  run:    {}", show(&self.server_command()));
        println!(
            "  wait:   until GET http://{}/health answers 200 (at most {HEALTH_TIMEOUT:?})",
            self.addr()
        );
        if watch {
            println!(
                "  watch:  {} every {POLL:?}; rebuild on change, restart if it built",
                WATCHED.join(", ")
            );
        }
        println!(
            "  stop:   on Ctrl-C/SIGTERM: SIGTERM to the server, SIGKILL after {STOP_TIMEOUT:?}"
        );
    }

    /// `--no-watch`: one build, one server, until a signal or the server exits.
    fn run_once(&self, sh: &Shell) -> Result<()> {
        match self.build(sh)? {
            Build::Done => {}
            Build::Failed => bail!("build failed"),
            Build::Interrupted => return Ok(()),
        }
        let Some(mut server) = self.launch()? else {
            return Ok(());
        };
        loop {
            if stop_requested() {
                stop(&mut server);
                return Ok(());
            }
            if let Some(status) = server.try_wait()? {
                if exited_because_stopping() {
                    return Ok(());
                }
                bail!("the server exited by itself ({status})");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The edit loop: keep a server running on the newest code that builds.
    fn watch(&self, sh: &Shell) -> Result<()> {
        let mut seen = snapshot(&self.root);
        let mut server = match self.build(sh)? {
            Build::Done => self.launch_or_warn(),
            Build::Failed => {
                warn("build failed; waiting for a change");
                None
            }
            Build::Interrupted => return Ok(()),
        };
        if !stop_requested() {
            section(&format!("watching {} (Ctrl-C to stop)", WATCHED.join(", ")));
        }
        while sleep_unless_stopped(POLL) {
            if let Some(child) = &mut server {
                if let Some(status) = child.try_wait()? {
                    if exited_because_stopping() {
                        break;
                    }
                    warn(&format!(
                        "the server exited by itself ({status}); it restarts after the next change"
                    ));
                    server = None;
                }
            }

            if diff(&seen, &snapshot(&self.root)).is_empty() {
                continue;
            }
            thread::sleep(SETTLE);
            let now = snapshot(&self.root);
            let changes = diff(&seen, &now);
            seen = now;
            if changes.is_empty() {
                continue;
            }
            report_changes(&changes);

            match self.build(sh)? {
                Build::Done => {}
                Build::Failed if server.is_some() => {
                    warn("build failed; the old server keeps running");
                    continue;
                }
                Build::Failed => {
                    warn("build failed; waiting for a change");
                    continue;
                }
                Build::Interrupted => break,
            }
            if let Some(mut old) = server.take() {
                stop(&mut old);
            }
            server = self.launch_or_warn();
        }
        if let Some(mut child) = server {
            stop(&mut child);
        }
        Ok(())
    }

    /// Builds the server; a stop signal ends the build (and every rustc it started).
    fn build(&self, sh: &Shell) -> Result<Build> {
        if !self.build {
            section(&format!(
                "build: skipped, BERTH_DEV_BIN={}",
                self.server_bin.display()
            ));
            return Ok(Build::Done);
        }
        let cmd = cmd!(sh, "cargo build --locked -p berth");
        section(&format!("build: {cmd}"));
        let mut command = Command::from(cmd);
        // Its own process group, so one signal reaches cargo and all its rustc processes.
        // (From a terminal, Ctrl-C then reaches them through our handler.)
        command.process_group(0).stdin(Stdio::null());
        let mut child = command.spawn().context("running cargo build")?;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(if status.success() {
                    Build::Done
                } else {
                    Build::Failed
                });
            }
            if stop_requested() {
                let group = format!("-{}", child.id());
                signal(&group, "TERM");
                // A background group is stopped if it writes to a `stty tostop` terminal;
                // a stopped process would not act on TERM until continued.
                signal(&group, "CONT");
                let _ = child.wait();
                return Ok(Build::Interrupted);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the server and waits until it is healthy. `None` if a stop came first.
    fn launch(&self) -> Result<Option<Child>> {
        let mut command = self.server_command();
        section(&format!("run: {}", show(&command)));
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", self.server_bin.display()))?;
        let deadline = Instant::now() + HEALTH_TIMEOUT;
        let mut last_answer = None;
        loop {
            if stop_requested() {
                stop(&mut child);
                return Ok(None);
            }
            if let Some(status) = child.try_wait()? {
                if exited_because_stopping() {
                    return Ok(None);
                }
                bail!("the server exited ({status}) before answering /health");
            }
            match health_status(self.addr()) {
                Some(200) => {
                    println!("Berth is running at http://{}/", self.addr());
                    return Ok(Some(child));
                }
                status => last_answer = status.or(last_answer),
            }
            if Instant::now() >= deadline {
                stop(&mut child);
                let last = last_answer.map_or("no HTTP answer".into(), |s| format!("last: {s}"));
                bail!("GET /health did not answer 200 within {HEALTH_TIMEOUT:?} ({last})");
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// In watch mode a server that will not start is reported, and the next change retries.
    fn launch_or_warn(&self) -> Option<Child> {
        self.launch().unwrap_or_else(|err| {
            warn(&format!("{err:#}; waiting for a change"));
            None
        })
    }
}

/// A terminal's Ctrl-C reaches the server too, and may stop it before our handler has run:
/// give the handler a moment before calling an exit unexpected.
fn exited_because_stopping() -> bool {
    thread::sleep(Duration::from_millis(300));
    stop_requested()
}

/// SIGTERM, up to [`STOP_TIMEOUT`] to exit, then SIGKILL. Always reaps the child.
fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    section(&format!("stopping the server (pid {})", child.id()));
    signal(&child.id().to_string(), "TERM");
    let deadline = Instant::now() + STOP_TIMEOUT;
    // A second stop signal means "now".
    while Instant::now() < deadline && SIGNALS.load(Ordering::SeqCst) < 2 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    if SIGNALS.load(Ordering::SeqCst) < 2 {
        warn(&format!(
            "the server did not stop within {STOP_TIMEOUT:?}; killing it"
        ));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends `sig` to `target` (a pid, or `-pgid` for a process group) with kill(1): std has no
/// kill(2) for signals other than SIGKILL, and this crate allows no unsafe code.
fn signal(target: &str, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), "--", target])
        .stderr(Stdio::null())
        .status();
}

/// The status code of `GET /health`, or `None` if nothing valid answered.
fn health_status(addr: SocketAddr) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    // One write: `write!` would send each piece of the format string separately.
    let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    // The status line is all we need; stop there rather than wait for the body.
    let mut response = Vec::new();
    let mut chunk = [0; 512];
    while !response.windows(2).any(|w| w == b"\r\n") && response.len() < 8192 {
        match stream.read(&mut chunk).ok()? {
            0 => break,
            n => response.extend_from_slice(&chunk[..n]),
        }
    }
    parse_status_line(&String::from_utf8_lossy(&response))
}

/// `HTTP/1.1 200 OK` → 200.
fn parse_status_line(response: &str) -> Option<u16> {
    let mut parts = response.lines().next()?.split(' ');
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

type Snapshot = BTreeMap<PathBuf, SystemTime>;

/// Modification times of the watched files, by path relative to `root`.
fn snapshot(root: &Path) -> Snapshot {
    let mut files = Snapshot::new();
    for watched in WATCHED {
        // A watched path may not exist (yet); it is simply empty until it does.
        for entry in WalkDir::new(root.join(watched))
            .into_iter()
            .filter_map(Result::ok)
        {
            if !entry.file_type().is_file() || is_editor_noise(&entry.file_name().to_string_lossy())
            {
                continue;
            }
            if let Some(modified) = entry.metadata().ok().and_then(|m| m.modified().ok()) {
                let path = entry.path().strip_prefix(root).unwrap_or(entry.path());
                files.insert(path.to_path_buf(), modified);
            }
        }
    }
    files
}

/// Swap, backup and lock files editors write next to the real ones.
fn is_editor_noise(name: &str) -> bool {
    name.starts_with('.') || name.ends_with('~') || name == "4913"
}

#[derive(Debug, PartialEq, Eq)]
enum Change {
    Added(PathBuf),
    Modified(PathBuf),
    Removed(PathBuf),
}

fn diff(old: &Snapshot, new: &Snapshot) -> Vec<Change> {
    let mut changes = Vec::new();
    for (path, modified) in new {
        match old.get(path) {
            None => changes.push(Change::Added(path.clone())),
            Some(before) if before != modified => changes.push(Change::Modified(path.clone())),
            Some(_) => {}
        }
    }
    changes.extend(
        old.keys()
            .filter(|path| !new.contains_key(*path))
            .cloned()
            .map(Change::Removed),
    );
    changes
}

fn report_changes(changes: &[Change]) {
    const SHOWN: usize = 5;
    let shown: Vec<String> = changes
        .iter()
        .take(SHOWN)
        .map(|change| match change {
            Change::Added(path) => format!("added {}", path.display()),
            Change::Modified(path) => format!("changed {}", path.display()),
            Change::Removed(path) => format!("removed {}", path.display()),
        })
        .collect();
    let more = match changes.len().saturating_sub(SHOWN) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    section(&format!("{}{more}", shown.join(", ")));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        assert_eq!(
            parse_status_line("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            Some(200)
        );
        assert_eq!(
            parse_status_line("HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(parse_status_line("HTTP/1.1 204\r\n"), Some(204));
        assert_eq!(parse_status_line(""), None);
        assert_eq!(parse_status_line("SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status_line("HTTP/1.1 20 OK\r\n"), None);
    }

    #[test]
    fn health_check_speaks_http() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            // Read the whole request head: it may arrive in several segments.
            let mut request = Vec::new();
            let mut chunk = [0; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut chunk).unwrap() {
                    0 => break,
                    n => request.extend_from_slice(&chunk[..n]),
                }
            }
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            String::from_utf8_lossy(&request).into_owned()
        });
        assert_eq!(health_status(addr), Some(200));
        assert!(server
            .join()
            .unwrap()
            .starts_with("GET /health HTTP/1.1\r\nHost: 127.0.0.1:"));
    }

    #[test]
    fn nothing_listening_means_no_status() {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert_eq!(
            health_status(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
            None
        );
    }

    #[test]
    fn busy_port_is_one_clear_error() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = check_port_free(port).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!("port {port} is in use; pass --port N")
        );
    }

    #[test]
    fn diff_reports_added_changed_and_removed_files() {
        let t0 = SystemTime::UNIX_EPOCH;
        let t1 = t0 + Duration::from_secs(1);
        let old = Snapshot::from([
            ("a.rs".into(), t0),
            ("b.rs".into(), t0),
            ("c.rs".into(), t0),
        ]);
        let new = Snapshot::from([
            ("a.rs".into(), t0),
            ("b.rs".into(), t1),
            ("d.rs".into(), t1),
        ]);
        assert_eq!(
            diff(&old, &new),
            [
                Change::Modified("b.rs".into()),
                Change::Added("d.rs".into()),
                Change::Removed("c.rs".into())
            ]
        );
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn editor_noise_is_ignored() {
        for noise in [".main.rs.swp", ".#main.rs", "main.rs~", "4913"] {
            assert!(is_editor_noise(noise), "{noise}");
        }
        assert!(!is_editor_noise("main.rs"));
        assert!(!is_editor_noise("0001_init.sql"));
    }

    #[test]
    fn snapshot_sees_the_server_sources() {
        let files = snapshot(&project_root());
        assert!(files.keys().any(|path| path == Path::new("Cargo.toml")));
        assert!(files.keys().all(|path| path.is_relative()));
    }
}
