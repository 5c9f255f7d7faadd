//! `berth models pull|list`: embedding models as data, in the data dir's `models/`. A pull
//! pins the revision to a commit, checks every file against the Hub's checksum, loads the
//! model once to be sure it runs, and only then moves it into place in one rename, so an
//! interrupted or corrupted download never replaces a working model.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::config::{models_dir, ForModels, Given, Settings};
use crate::domain::settings::DEFAULT_BUILTIN_MODEL;
use crate::error::BootError;
use crate::hub::{Hub, RemoteFile};

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Download a sentence-embedding model (BERT family: all-MiniLM, bge, e5) from the Hugging
    /// Face Hub into the data dir's models/, where the built-in embedder finds it.
    Pull(PullArgs),
    /// The models in the data dir, with the commit each was pulled at.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The model's Hub id, e.g. sentence-transformers/all-MiniLM-L6-v2 or BAAI/bge-small-en-v1.5.
    pub name: String,
    /// A branch, tag or commit of the model's repository.
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// Download again even if this commit is already in place.
    #[arg(long)]
    pub force: bool,
    /// Show what would be downloaded, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub settings: Given<ForModels>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub settings: Given<ForModels>,
}

/// What a pull records beside the files: where they came from and their checksums.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub repo: String,
    pub revision: String,
    pub commit: String,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ManifestFile {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

pub const MANIFEST: &str = "berth-model.json";

/// The files the built-in embedder reads; the first three are required.
const REQUIRED: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];
const OPTIONAL: [&str; 5] = [
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

pub fn run(command: &ModelsCommand) -> Result<(), BootError> {
    match command {
        ModelsCommand::Pull(args) => {
            let settings = Settings::load(&args.settings)?;
            check_name(&args.name)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            runtime.block_on(pull(args, &settings))
        }
        ModelsCommand::List(args) => list(&Settings::load(&args.settings)?),
    }
}

/// `org/name` or `name`, each part of letters, digits, `.`, `_` and `-`.
fn check_name(name: &str) -> Result<(), BootError> {
    let parts: Vec<&str> = name.split('/').collect();
    let ok = (1..=2).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        });
    if ok {
        Ok(())
    } else {
        Err(BootError::Config(format!(
            "{name:?} is not a model id: use the Hub's ORG/NAME, e.g. \
             sentence-transformers/all-MiniLM-L6-v2"
        )))
    }
}

fn wanted(file: &RemoteFile) -> bool {
    let n = file.name.as_str();
    REQUIRED.contains(&n) || OPTIONAL.contains(&n) || {
        // sentence-transformers' module folders: `1_Pooling/config.json`, `2_Normalize/…`.
        let mut parts = n.split('/');
        matches!(
            (parts.next(), parts.next(), parts.next()),
            (Some(dir), Some("config.json"), None)
                if dir.split('_').next().is_some_and(|d| d.parse::<u32>().is_ok())
        )
    }
}

async fn pull(args: &PullArgs, settings: &Settings) -> Result<(), BootError> {
    let http =
        crate::llm::http_client(settings.rag.ca_bundle.as_deref()).map_err(BootError::Config)?;
    let hub = Hub::new(&settings.hub_url, http);
    let name = &args.name;
    let repo = hub
        .repo(name, &args.revision)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let files: Vec<RemoteFile> = repo.files.iter().filter(|f| wanted(f)).cloned().collect();
    for required in REQUIRED {
        if !files.iter().any(|f| f.name == required) {
            return Err(anyhow::anyhow!(
                "{name} has no {required}: the built-in embedder needs config.json, \
                 tokenizer.json and safetensors weights (model.safetensors)"
            )
            .into());
        }
    }
    let models = models_dir(&settings.data_dir);
    let dest = models.join(name);
    let total: u64 = files.iter().filter_map(|f| f.size).sum();
    let short = &repo.commit[..12.min(repo.commit.len())];
    if !args.force && read_manifest(&dest).is_some_and(|m| m.commit == repo.commit) {
        println!(
            "{name} is up to date (commit {short}) at {}",
            dest.display()
        );
        return Ok(());
    }
    if args.dry_run {
        println!(
            "would download {name} at commit {short} ({}) into {}:",
            size(total),
            dest.display()
        );
        for f in &files {
            println!("  {:>10}  {}", f.size.map(size).unwrap_or_default(), f.name);
        }
        return Ok(());
    }
    std::fs::create_dir_all(&models).with_context(|| format!("creating {}", models.display()))?;
    // In the models folder, so the final rename stays on one filesystem.
    let staging = Staging(models.join(format!(".pull-{}-{}", std::process::id(), short)));
    let _ = std::fs::remove_dir_all(&staging.0);
    eprintln!("pulling {name} at commit {short} ({})", size(total));
    let mut manifest = Manifest {
        repo: name.clone(),
        revision: args.revision.clone(),
        commit: repo.commit.clone(),
        files: Vec::new(),
    };
    for file in &files {
        let path = staging.0.join(&file.name);
        std::fs::create_dir_all(path.parent().expect("a file has a folder"))
            .with_context(|| format!("creating {}", staging.0.display()))?;
        let mut shown = 0u64;
        let sha256 = hub
            .download(name, &repo.commit, file, &path, |n| {
                // A line per 10 MB on big files, so a slow link shows it is moving.
                if n >= shown + 10_000_000 {
                    shown = n;
                    eprint!(
                        "\r  {} {} of {}",
                        file.name,
                        size(n),
                        file.size.map(size).unwrap_or_default()
                    );
                    let _ = std::io::stderr().flush();
                }
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        eprintln!("\r  {} {} ✓{}", file.name, size(len), " ".repeat(20));
        manifest.files.push(ManifestFile {
            name: file.name.clone(),
            size: len,
            sha256,
        });
    }
    // Loaded once before it replaces anything: an architecture Berth cannot run is refused here.
    let check_dir = staging.0.clone();
    let model_name = name.clone();
    tokio::task::spawn_blocking(move || berth_embed::Model::load(&check_dir, &model_name))
        .await
        .context("checking the model")?
        .map_err(|e| anyhow::anyhow!("{name} was downloaded but cannot be used: {e}"))?;
    let json = serde_json::to_vec_pretty(&manifest).context("writing the manifest")?;
    std::fs::write(staging.0.join(MANIFEST), json).context("writing the manifest")?;
    place(&staging.0, &dest)?;
    std::mem::forget(staging);
    println!("{name} (commit {short}) is in {}", dest.display());
    Ok(())
}

/// Moves the staged model to `dest`, replacing what was there in one rename.
fn place(staged: &Path, dest: &Path) -> Result<(), BootError> {
    std::fs::create_dir_all(dest.parent().expect("dest has a parent"))
        .with_context(|| format!("creating {}", dest.display()))?;
    let old = staged.with_extension("old");
    if dest.exists() {
        std::fs::rename(dest, &old).with_context(|| format!("moving aside {}", dest.display()))?;
    }
    if let Err(e) = std::fs::rename(staged, dest) {
        // Put the previous model back: nothing is lost.
        let _ = std::fs::rename(&old, dest);
        return Err(anyhow::Error::new(e)
            .context(format!("moving the model into {}", dest.display()))
            .into());
    }
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// A staging folder, removed unless the pull completes.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read_manifest(dir: &Path) -> Option<Manifest> {
    serde_json::from_slice(&std::fs::read(dir.join(MANIFEST)).ok()?).ok()
}

fn list(settings: &Settings) -> Result<(), BootError> {
    let models = models_dir(&settings.data_dir);
    let mut found = Vec::new();
    // No models folder yet lists like an empty one.
    for org in std::fs::read_dir(&models)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
    {
        let path = org.path();
        if path.join("config.json").is_file() {
            found.push((org.file_name().to_string_lossy().into_owned(), path));
            continue;
        }
        for model in std::fs::read_dir(&path).into_iter().flatten().flatten() {
            if model.path().join("config.json").is_file() {
                let name = format!(
                    "{}/{}",
                    org.file_name().to_string_lossy(),
                    model.file_name().to_string_lossy()
                );
                found.push((name, model.path()));
            }
        }
    }
    found.sort();
    if found.is_empty() {
        println!(
            "no models in {}: `berth models pull {DEFAULT_BUILTIN_MODEL}` fetches one",
            models.display()
        );
    }
    for (name, path) in found {
        let bytes: u64 = std::fs::read_dir(&path)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        let source = match read_manifest(&path) {
            Some(m) => format!("commit {}", &m.commit[..12.min(m.commit.len())]),
            None => "copied in by hand".into(),
        };
        println!("{name}\t{}\t{source}", size(bytes));
    }
    Ok(())
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}
