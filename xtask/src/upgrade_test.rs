//! `cargo xtask upgrade-test`: the upgrade from the previous release, proven. Builds that
//! release's `berth` from its tag (cached by commit), then runs the black-box upgrade test
//! (`tests/it/upgrade.rs`) on SQLite and on PostgreSQL with it.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::util::{cargo, process, project_root, secs, section, Timer};

/// The test `tests/it/upgrade.rs` holds.
const TEST: &str =
    "upgrade::the_previous_releases_data_survives_the_upgrade_and_its_backup_restores";
/// Names the previous release when the clone has no tags (a mirror that dropped them): its tag
/// and commit, written by hand when a release is tagged.
const LAST_RELEASE_FILE: &str = "deploy/last-release";

#[derive(clap::Args, Debug)]
#[command(
    about = "Prove the upgrade from the previous release: its data, its backup, side by side",
    long_about = "Build the previous release's `berth` (the newest v* tag reachable from HEAD, \
                  or --from REF; when the clone has no tags, the one deploy/last-release names) \
                  from a clean export of its commit, cached in ~/.cache/berth/releases/COMMIT, \
                  then run the black-box upgrade test with it, on SQLite and on PostgreSQL: the \
                  previous release makes data (accounts, a document, a conversation) and a \
                  backup; the current build migrates that data (`berth migrate up`, refusing \
                  contract migrations) and serves all of it, while on PostgreSQL the previous \
                  release still serves beside it (the expand phase of a deploy); the backup \
                  restores into the current build. Needs Docker for PostgreSQL.",
    after_help = "Exit status:\n  0  the upgrade works on both backends\n  1  it does not, or \
                  the previous release could not be built (the message says why)\n  2  bad \
                  command line"
)]
pub struct Args {
    /// The release to upgrade from: a tag or commit [default: the newest v* tag]
    #[arg(long, value_name = "REF")]
    from: Option<String>,
    /// Say which release and commands, build and run nothing
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let root = project_root();
    let sh = Shell::new()?;
    sh.change_dir(&root);
    let (name, commit) = previous_release(&sh, &root, args.from.as_deref())?;
    let bin = cached_bin(&commit);
    if args.dry_run {
        println!("upgrade-test --dry-run: from {name} ({commit})");
        if bin.exists() {
            println!("  its berth: {} (cached)", bin.display());
        } else {
            println!(
                "  would build its berth: git archive {commit} into target/upgrade/src, cargo build \
                 --locked -p berth there (CARGO_TARGET_DIR=target/upgrade/target), cached at {}",
                bin.display()
            );
        }
        for backend in ["sqlite", "postgres"] {
            println!(
                "  would run: BERTH_TEST_BACKEND={backend} BERTH_PREVIOUS_BIN={} cargo test \
                 --locked --workspace --test it -- --ignored --exact {TEST}",
                bin.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    run_with(&sh, &root, &name, &commit)?;
    Ok(ExitCode::SUCCESS)
}

/// For `cargo xtask ci`: from the newest release.
pub fn run_ci() -> Result<()> {
    let root = project_root();
    let sh = Shell::new()?;
    sh.change_dir(&root);
    let (name, commit) = previous_release(&sh, &root, None)?;
    run_with(&sh, &root, &name, &commit)
}

fn run_with(sh: &Shell, root: &Path, name: &str, commit: &str) -> Result<()> {
    let bin = cached_bin(commit);
    section(&format!(
        "upgrade-test: from {name} ({commit}) to this checkout"
    ));
    if bin.exists() {
        println!(
            "upgrade-test: {name}'s berth is cached at {}",
            bin.display()
        );
    } else {
        build_release(sh, root, commit, &bin)?;
    }
    for backend in ["sqlite", "postgres"] {
        section(&format!(
            "upgrade-test: {name} → this checkout on {backend}"
        ));
        let bin = bin.to_string_lossy();
        let env = [
            ("BERTH_TEST_BACKEND", backend),
            ("BERTH_PREVIOUS_BIN", bin.as_ref()),
        ];
        if !cargo::it_test_passes(TEST, &env)? {
            bail!("the upgrade from {name} fails on {backend} (the test's output is above)");
        }
    }
    println!("upgrade-test: the upgrade from {name} works on SQLite and PostgreSQL");
    Ok(())
}

/// (name, commit) of the release to upgrade from.
fn previous_release(sh: &Shell, root: &Path, from: Option<&str>) -> Result<(String, String)> {
    let name = match from {
        Some(name) => name.to_string(),
        None => match process::read_cmd(cmd!(
            sh,
            "git describe --tags --abbrev=0 --match v[0-9]* HEAD"
        )) {
            Ok(tag) => tag,
            Err(_) => {
                let file = root.join(LAST_RELEASE_FILE);
                let text = std::fs::read_to_string(&file).with_context(|| {
                    format!(
                        "no release tag (v*) is reachable from HEAD and {} cannot be read: \
                         fetch the tags (`git fetch --tags`) or name a release with --from REF",
                        file.display()
                    )
                })?;
                let mut words = text.split_whitespace();
                let (Some(tag), Some(commit)) = (words.next(), words.next()) else {
                    bail!("{} must hold `TAG COMMIT`", file.display());
                };
                println!("upgrade-test: no tags in this clone; {LAST_RELEASE_FILE} names {tag}");
                return Ok((tag.to_string(), resolve(sh, commit)?));
            }
        },
    };
    let commit = resolve(sh, &name)?;
    Ok((name, commit))
}

fn resolve(sh: &Shell, reference: &str) -> Result<String> {
    let spec = format!("{reference}^{{commit}}");
    process::read_cmd(cmd!(sh, "git rev-parse --verify --quiet {spec}")).with_context(|| {
        format!(
            "{reference} is not a commit of this clone (a shallow clone lacks the history: \
             `git fetch --unshallow --tags`)"
        )
    })
}

fn cached_bin(commit: &str) -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
        .join(".cache/berth/releases")
        .join(commit)
        .join("berth")
}

/// Builds `commit`'s berth from a clean export, into its own target directory seeded with this
/// checkout's compiled dependencies (the same crates need not compile twice), and caches it.
/// Its own target directory: building another workspace's `berth` in ours would replace
/// target/debug/berth, the binary this checkout's tests run.
fn build_release(sh: &Shell, root: &Path, commit: &str, bin: &Path) -> Result<()> {
    let timer = Timer::start();
    let work = root.join("target/upgrade");
    let src = work.join("src");
    let target = work.join("target");
    if src.exists() {
        std::fs::remove_dir_all(&src).with_context(|| format!("removing {}", src.display()))?;
    }
    std::fs::create_dir_all(&src)?;
    let tar = work.join("src.tar");
    println!("upgrade-test: exporting {commit} into {}", src.display());
    cmd!(sh, "git archive --format=tar --output {tar} {commit}")
        .quiet()
        .run()?;
    cmd!(sh, "tar -xf {tar} -C {src}").quiet().run()?;
    let ours = root.join("target/debug");
    let seeded = target.join("debug");
    if !seeded.exists() && ours.join("deps").exists() {
        println!("upgrade-test: seeding its target directory with this checkout's dependencies");
        std::fs::create_dir_all(&seeded)?;
        for dir in ["deps", "build", ".fingerprint"] {
            let from = ours.join(dir);
            cmd!(sh, "cp -a {from} {seeded}/").quiet().run()?;
        }
    }
    println!("upgrade-test: building its berth (cargo build --locked -p berth)");
    let manifest = src.join("Cargo.toml");
    cmd!(
        sh,
        "cargo build --locked -p berth --bin berth --manifest-path {manifest}"
    )
    .env("CARGO_TARGET_DIR", &target)
    .run()?;
    let built = target.join("debug/berth");
    let dir = bin.parent().expect("a file in a folder");
    std::fs::create_dir_all(dir)?;
    let partial = dir.join("berth.partial");
    std::fs::copy(&built, &partial)
        .with_context(|| format!("copying {} into the cache", built.display()))?;
    std::fs::rename(&partial, bin)?;
    // The export and its target directory (gigabytes) are not needed again: the binary is cached.
    if let Err(e) = std::fs::remove_dir_all(&work) {
        crate::util::warn(&format!("could not remove {}: {e}", work.display()));
    }
    println!(
        "upgrade-test: built and cached {} in {}",
        bin.display(),
        secs(timer.elapsed())
    );
    Ok(())
}
