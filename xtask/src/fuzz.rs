//! `cargo xtask fuzz`: bad input, generated in bulk, against the two parsers users feed.
//!
//! - `stack`: deploy/stack.toml, mutated — bytes flipped, lines dropped, duplicated or swapped,
//!   TOML tokens spliced in, and (on the parsed document) values replaced by values of another
//!   type or keys removed — then parsed, checked and, when accepted, generated from. Anything
//!   but a result or a diagnostic (a panic) is a failure. Inputs that reach a diagnostic not seen
//!   before are kept to mutate further, a cheap stand-in for coverage feedback. (`cargo fuzz`
//!   would add real coverage guidance, but needs a nightly toolchain; this runs on stable.)
//! - `api`: the HTTP API from its OpenAPI document, with schemathesis (PyPI, installed into a
//!   virtualenv under target/fuzz), against `berth serve` on a fresh data directory, with every
//!   schemathesis check (statuses and bodies as documented, invalid input refused, valid input
//!   accepted, no 5xx), half the time signed in as an administrator and half as anyone
//!   (tests/fuzz/api.py, tests/fuzz/schemathesis.toml). A failed check, or a panic in the
//!   server's log, is a failure.
//!
//! Both are bounded in time. Failing inputs are written under target/fuzz/.

use std::collections::HashSet;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::stack::Stack;
use crate::util::{project_root, section, Note};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Stack,
    Api,
    All,
}

#[derive(clap::Args, Debug)]
#[command(
    about = "Fuzz the stack-file parser and the HTTP API (bounded in time); no panic, every API check",
    long_about = "Generates bad input in bulk against the two parsers users feed:\n\n\
                  stack: deploy/stack.toml mutated (bytes, lines, TOML tokens, values of the wrong \
                  type), then parsed, checked and generated from; a panic is a failure.\n\n\
                  api: the HTTP API from /api/openapi.json with schemathesis (installed into \
                  target/fuzz/venv from PyPI when missing) against `berth serve` on a fresh data \
                  directory with every schemathesis check (--checks all), signed in as an \
                  administrator and not; a failed check or a panic is a failure.\n\n\
                  Prints how many inputs were tried and how many failed; failing inputs are \
                  written under target/fuzz/. Coverage-guided fuzzing (cargo fuzz) needs a \
                  nightly toolchain; this runs on stable.",
    after_help = "Exit status:\n  0  no failure found\n  1  a failure was found (or the fuzzer could not run)\n  2  bad command line"
)]
pub struct Args {
    /// Time budget per target, in seconds
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Which parser to fuzz
    #[arg(long, value_enum, default_value = "all")]
    target: Target,
    /// Seed of the stack mutator (a run with the same seed tries the same inputs first)
    #[arg(long)]
    seed: Option<u64>,
    /// Print what would run, run nothing
    #[arg(long)]
    dry_run: bool,
}

/// Inputs tried and failures found.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub inputs: u64,
    pub failures: u64,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let budget = Duration::from_secs(args.seconds);
    if args.dry_run {
        if args.target != Target::Api {
            println!("would fuzz deploy/stack.toml for {}s", args.seconds);
        }
        if args.target != Target::Stack {
            println!(
                "would run: cargo build --locked -p berth; pip install schemathesis into \
                 target/fuzz/venv (if missing); berth serve on a temporary data dir; \
                 schemathesis against /api/openapi.json for {}s",
                args.seconds
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let counts = fuzz(args.target, budget, args.seed, &mut Note::default())?;
    Ok(if counts.failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The `fuzz` step of `cargo xtask ci`: both targets, 60 s each.
pub fn run_ci(note: &mut Note) -> Result<()> {
    let counts = fuzz(Target::All, Duration::from_secs(30), None, note)?;
    if counts.failures > 0 {
        bail!("fuzzing found {} failure(s)", counts.failures);
    }
    Ok(())
}

/// Fuzzes `target` for `budget`; what it counted goes in `note` (also on failure).
fn fuzz(target: Target, budget: Duration, seed: Option<u64>, note: &mut Note) -> Result<Counts> {
    let mut total = Counts::default();
    let mut notes = Vec::new();
    let mut errors = Vec::new();
    if target != Target::Api {
        section(&format!(
            "fuzz stack: deploy/stack.toml, {}s",
            budget.as_secs()
        ));
        let seed = seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
        let c = fuzz_stack(&project_root(), budget, seed)?;
        notes.push(format!(
            "stack: {} inputs, {} failures",
            c.inputs, c.failures
        ));
        total.inputs += c.inputs;
        total.failures += c.failures;
    }
    if target != Target::Stack {
        section(&format!("fuzz api: schemathesis, {}s", budget.as_secs()));
        match fuzz_api(budget) {
            Ok(c) => {
                notes.push(format!("api: {} inputs, {} failures", c.inputs, c.failures));
                total.inputs += c.inputs;
                total.failures += c.failures;
            }
            Err(e) => {
                notes.push("api: did not run".into());
                errors.push(e);
            }
        }
    }
    let summary = format!(
        "{} inputs, {} failures ({})",
        total.inputs,
        total.failures,
        notes.join("; ")
    );
    println!("fuzz: {summary}");
    note.set(summary);
    if let Some(e) = errors.pop() {
        return Err(e);
    }
    Ok(total)
}

/// xorshift64*: small, deterministic for a seed, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Fragments that mean something to TOML, to interpolation or to the checks.
const TOKENS: &[&str] = &[
    "\"",
    "'",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    ",",
    ".",
    "\n",
    "#",
    "\\",
    "${",
    "}",
    "$",
    "${A:-b}",
    "${A:?}",
    "$$",
    "true",
    "false",
    "0",
    "-1",
    "1e400",
    "99999999999999999999",
    "\"\"",
    "[]",
    "{}",
    "\u{0}",
    "\u{feff}",
    "é",
    "../",
    "/",
    "..",
    ":",
    "::",
    "*",
    " ",
    "\t",
    "\"${X}\"",
    "inf",
    "nan",
    "1979-05-27T07:32:00Z",
    "'''",
    "\"\"\"",
];

/// Replacement values of every TOML type, for the structured mutations.
fn odd_values(rng: &mut Rng, seen: &[toml::Value]) -> toml::Value {
    use toml::Value;
    match rng.below(10) {
        0 => Value::String(String::new()),
        1 => Value::Integer(*rng.pick(&[0, -1, i64::MAX, i64::MIN, 65536, 70000])),
        2 => Value::Boolean(rng.below(2) == 0),
        3 => Value::Array(Vec::new()),
        4 => Value::Table(Default::default()),
        5 => Value::Float(*rng.pick(&[0.5, -0.0, f64::INFINITY, f64::NAN, 1e300])),
        6 => Value::String(rng.pick(TOKENS).repeat(1 + rng.below(3))),
        7 => Value::String("x".repeat(rng.below(5000))),
        _ if !seen.is_empty() => rng.pick(seen).clone(),
        _ => Value::String("${UNSET_VARIABLE}".into()),
    }
}

/// Every value in the document (to splice one where another was).
fn all_values(v: &toml::Value, out: &mut Vec<toml::Value>) {
    out.push(v.clone());
    match v {
        toml::Value::Table(t) => t.values().for_each(|v| all_values(v, out)),
        toml::Value::Array(a) => a.iter().for_each(|v| all_values(v, out)),
        _ => {}
    }
}

/// Changes one value somewhere in the document: replaced, removed, or its key renamed.
fn mutate_value(here: &mut toml::Value, rng: &mut Rng, seen: &[toml::Value]) {
    // Walk down a random path, stopping at random.
    let descend = rng.below(4) != 0;
    match here {
        toml::Value::Table(t) if !t.is_empty() && descend => {
            let key = t.keys().nth(rng.below(t.len())).unwrap().clone();
            match rng.below(6) {
                0 => {
                    t.remove(&key);
                }
                1 => {
                    let value = t.remove(&key).unwrap();
                    let new_key = match rng.below(3) {
                        0 => format!("{key}_"),
                        1 => key.to_uppercase(),
                        _ => rng.pick(TOKENS).to_string(),
                    };
                    t.insert(new_key, value);
                }
                _ => mutate_value(t.get_mut(&key).unwrap(), rng, seen),
            }
        }
        toml::Value::Array(a) if !a.is_empty() && descend => {
            let i = rng.below(a.len());
            match rng.below(5) {
                0 => {
                    a.remove(i);
                }
                1 => {
                    let copy = a[i].clone();
                    a.push(copy);
                }
                _ => mutate_value(&mut a[i], rng, seen),
            }
        }
        _ => *here = odd_values(rng, seen),
    }
}

/// One text-level mutation.
fn mutate_text(text: &str, rng: &mut Rng) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    match rng.below(7) {
        0 if !bytes.is_empty() => {
            let i = rng.below(bytes.len());
            bytes[i] ^= 1 << rng.below(8);
        }
        1 if !bytes.is_empty() => {
            bytes.truncate(rng.below(bytes.len()));
        }
        2 if !lines.is_empty() => {
            let i = rng.below(lines.len());
            return lines
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, l)| *l)
                .collect();
        }
        3 if !lines.is_empty() => {
            let i = rng.below(lines.len());
            let mut out: Vec<&str> = lines.clone();
            out.insert(rng.below(lines.len()), lines[i]);
            return out.concat();
        }
        4 if lines.len() > 1 => {
            let mut out = lines.clone();
            let (i, j) = (rng.below(lines.len()), rng.below(lines.len()));
            out.swap(i, j);
            return out.concat();
        }
        _ => {
            let at = rng.below(bytes.len() + 1);
            let token = rng.pick(TOKENS).as_bytes();
            bytes.splice(at..at, token.iter().copied());
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Parses, checks and (when accepted) generates from `text`, as `gen`, `up` and friends would.
fn exercise(text: String, root: &Path) -> Option<String> {
    match Stack::parse("deploy/stack.toml".into(), text, root) {
        Ok(stack) => {
            let _ = stack.generate();
            for name in stack.profile_names() {
                let _ = stack.profiles(&[name]);
            }
            let _ = stack.profiles(&stack.default_profiles());
            None
        }
        // Rendered (spans into mutated text are a classic panic), then reduced to what the
        // messages say, without numbers: a rough mark of the path the checks took.
        Err(diagnostics) => {
            let _ = diagnostics.to_string();
            let mut kinds: Vec<String> = diagnostics
                .items
                .iter()
                .map(|d| d.message.chars().filter(|c| !c.is_ascii_digit()).collect())
                .collect();
            kinds.sort();
            kinds.dedup();
            Some(kinds.join("\n"))
        }
    }
}

fn fuzz_stack(root: &Path, budget: Duration, seed: u64) -> Result<Counts> {
    let seed_text = std::fs::read_to_string(root.join(crate::stack::STACK_PATH))
        .context("reading deploy/stack.toml")?;
    let parsed: toml::Value =
        toml::from_str(&seed_text).context("deploy/stack.toml is not TOML")?;
    let mut seen_values = Vec::new();
    all_values(&parsed, &mut seen_values);
    let mut rng = Rng::new(seed);
    let mut corpus = vec![seed_text.clone()];
    let mut messages = HashSet::new();
    let mut counts = Counts::default();
    let crashes = root.join("target/fuzz/stack-crashes");

    // Panics are the findings: record their message instead of printing each one.
    let last_panic = Arc::new(Mutex::new(String::new()));
    let previous_hook = std::panic::take_hook();
    {
        let last_panic = last_panic.clone();
        std::panic::set_hook(Box::new(move |info| {
            *last_panic.lock().unwrap_or_else(|e| e.into_inner()) = info.to_string();
        }));
    }
    let started = Instant::now();
    let mut last_progress = Instant::now();
    while started.elapsed() < budget {
        let base = rng.pick(&corpus).clone();
        let input = if rng.below(3) == 0 {
            match toml::from_str::<toml::Value>(&base) {
                Ok(mut doc) => {
                    for _ in 0..1 + rng.below(3) {
                        mutate_value(&mut doc, &mut rng, &seen_values);
                    }
                    toml::to_string(&doc).unwrap_or(base)
                }
                Err(_) => mutate_text(&base, &mut rng),
            }
        } else {
            let mut text = base;
            for _ in 0..1 + rng.below(4) {
                text = mutate_text(&text, &mut rng);
            }
            text
        };
        counts.inputs += 1;
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| exercise(input.clone(), root)));
        match result {
            Ok(Some(message)) => {
                if messages.insert(message) && corpus.len() < 1000 {
                    corpus.push(input);
                }
            }
            Ok(None) => {
                if corpus.len() < 1000 && rng.below(10) == 0 {
                    corpus.push(input);
                }
            }
            Err(_) => {
                counts.failures += 1;
                std::fs::create_dir_all(&crashes)?;
                let path = crashes.join(format!("crash-{}.toml", counts.failures));
                std::fs::write(&path, &input)?;
                let why = last_panic.lock().unwrap_or_else(|e| e.into_inner()).clone();
                eprintln!(
                    "fuzz stack: PANIC ({why}); input saved as {}",
                    path.display()
                );
            }
        }
        if last_progress.elapsed() > Duration::from_secs(10) {
            last_progress = Instant::now();
            println!(
                "fuzz stack: {} inputs, {} distinct diagnostics, {} failures, {:.0}s",
                counts.inputs,
                messages.len(),
                counts.failures,
                started.elapsed().as_secs_f64()
            );
        }
    }
    std::panic::set_hook(previous_hook);
    println!(
        "fuzz stack: {} inputs (seed {seed}), {} distinct diagnostics, {} failures",
        counts.inputs,
        messages.len(),
        counts.failures
    );
    Ok(counts)
}

/// `berth serve` for the API fuzzer; killed when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn venv_python(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target/fuzz/venv");
    let python = venv.join("bin/python");
    let st = venv.join("bin/schemathesis");
    if !st.is_file() {
        println!("fuzz api: installing schemathesis into {}", venv.display());
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .context("python3 is needed for the API fuzzer")?
            .success();
        if !ok {
            bail!("python3 -m venv failed (apt-get install python3-venv)");
        }
        let ok = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "schemathesis>=4,<5"])
            .status()?
            .success();
        if !ok {
            bail!("pip install schemathesis failed");
        }
    }
    Ok(python)
}

fn fuzz_api(budget: Duration) -> Result<Counts> {
    let root = project_root();
    let python = venv_python(&root)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let ok = Command::new(&cargo)
        .args(["build", "--locked", "-p", "berth"])
        .current_dir(&root)
        .status()?
        .success();
    if !ok {
        bail!("cargo build -p berth failed");
    }
    let berth = root.join("target/debug/berth");
    let data = root.join("target/fuzz/api-data");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data)?;
    let password = "Fuzz!admin-password-1";
    let mut admin = Command::new(&berth)
        .args(["admin", "create", "--username", "root", "--password-stdin"])
        .arg("--data-dir")
        .arg(&data)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    writeln!(admin.stdin.take().expect("piped"), "{password}")?;
    if !admin.wait()?.success() {
        bail!("berth admin create failed");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let log_path = root.join("target/fuzz/api-server.log");
    let log = std::fs::File::create(&log_path)?;
    let _server = Server(
        Command::new(&berth)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(&data)
            // No login throttling: the fuzzer signs in over and over.
            .env("BERTH_LOG_FORMAT", "json")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?,
    );
    let script = root.join("tests/fuzz/api.py");
    let out = Command::new(&python)
        .arg(&script)
        .args([
            "--base",
            &format!("http://127.0.0.1:{port}"),
            "--username",
            "root",
            "--password",
            password,
            "--seconds",
            &budget.as_secs().to_string(),
            "--report",
        ])
        .arg(root.join("target/fuzz/api-report.json"))
        .current_dir(&root)
        .status()?;
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("target/fuzz/api-report.json"))
            .context("the API fuzzer wrote no report")?,
    )?;
    let mut counts = Counts {
        inputs: report["inputs"].as_u64().unwrap_or(0),
        failures: report["failures"].as_u64().unwrap_or(0),
    };
    let server_log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let panics = server_log
        .lines()
        .filter(|l| l.contains("panicked"))
        .count() as u64;
    if panics > 0 {
        eprintln!(
            "fuzz api: {panics} panic(s) in the server log, {}",
            log_path.display()
        );
    }
    counts.failures += panics;
    if counts.inputs == 0 {
        bail!("the API fuzzer tried no input (exit {out})");
    }
    println!(
        "fuzz api: {} inputs, {} failures (report target/fuzz/api-report.json, server log {})",
        counts.inputs,
        counts.failures,
        log_path.display()
    );
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_fuzzer_tries_inputs_and_the_seed_file_is_accepted() {
        let root = project_root();
        let seed = std::fs::read_to_string(root.join(crate::stack::STACK_PATH)).unwrap();
        assert_eq!(
            exercise(seed, &root),
            None,
            "the real stack file is accepted"
        );
        let counts = fuzz_stack(&root, Duration::from_secs(2), 7).unwrap();
        assert!(counts.inputs > 5, "{counts:?}");
        assert_eq!(counts.failures, 0, "see target/fuzz/stack-crashes");
    }

    #[test]
    fn mutations_change_the_text() {
        let mut rng = Rng::new(3);
        let text = "a = 1\nb = \"x\"\n";
        let changed = (0..50)
            .filter(|_| mutate_text(text, &mut rng) != text)
            .count();
        assert!(changed > 40, "{changed}");
    }
}
