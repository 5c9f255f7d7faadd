//! `berth backup secrets seal|open`: the secrets directory (database password, settings file,
//! TLS keys…) in a file of its own, encrypted with a passphrase. Data archives never hold
//! secrets, so that they can be copied off-site freely; this file can go along, because without
//! the passphrase it is noise.
//!
//! The format is a plain tar of the directory's regular files, encrypted with age's passphrase
//! (scrypt) recipient: `age -d FILE | tar -t` opens it without Berth.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use age::secrecy::{ExposeSecret, SecretString};
use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::archive::write_atomically;
use super::BackupDir;
use crate::error::BootError;

/// Sealed file names: `berth-secrets-<stage>-<UTC timestamp>.tar.age`. The data archives'
/// listing and rotation only take `.tar.gz`, so they never count or delete these.
pub const PREFIX: &str = "berth-secrets-";
pub const SUFFIX: &str = ".tar.age";
/// The passphrase's environment variable (for scripts; a terminal prompt otherwise).
pub const PASSPHRASE_ENV: &str = "BERTH_BACKUP_PASSPHRASE";
/// The shortest passphrase accepted for sealing: it is all that protects the secrets.
pub const MIN_PASSPHRASE_CHARS: usize = 12;
/// The largest secrets file opened: a secrets directory is a few KiB; a bigger one is a mistake.
const MAX_PLAIN_BYTES: u64 = 64 << 20;

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Encrypt the regular files of a secrets directory (subdirectories included) into
    /// OUT/berth-secrets-STAGE-UTCTIME.tar.age with a passphrase, written atomically, mode 0600.
    Seal(SealArgs),
    /// Decrypt a sealed secrets file into a directory (created with mode 0700; each file written
    /// atomically with mode 0600). Refuses to overwrite a file that differs unless --force.
    Open(OpenArgs),
}

#[derive(Debug, Args)]
pub struct PassphraseArgs {
    /// Read the passphrase from this file (its first line). Without it: the
    /// BERTH_BACKUP_PASSPHRASE environment variable, else a hidden prompt on the terminal.
    /// Never give the passphrase on the command line.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SealArgs {
    /// The secrets directory to seal.
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    #[command(flatten)]
    pub dir: BackupDir,
    /// Name in the file name (e.g. prod, dev).
    #[arg(long, default_value = "default", value_name = "NAME")]
    pub stage: String,
    /// Say which files would be sealed and where; ask for no passphrase, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The sealed file (berth-secrets-….tar.age).
    pub file: PathBuf,
    /// The directory to write the secrets into (e.g. the stack's secrets directory).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Overwrite files that exist with other content.
    #[arg(long)]
    pub force: bool,
    /// Decrypt and say what would be written; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

pub fn run(command: &SecretsCommand) -> Result<(), BootError> {
    match command {
        SecretsCommand::Seal(args) => {
            if !super::valid_stage(&args.stage) {
                return Err(BootError::Config(format!(
                    "invalid --stage {:?}: use lower-case letters, digits and dashes",
                    args.stage
                )));
            }
            let files = collect(&args.from)?;
            let dest = args.dir.path.join(format!(
                "{PREFIX}{}-{}{SUFFIX}",
                args.stage,
                chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
            ));
            if args.dry_run {
                println!(
                    "dry run: would seal {} file(s) of {} into {}: {}",
                    files.len(),
                    args.from.display(),
                    dest.display(),
                    files.keys().cloned().collect::<Vec<_>>().join(", ")
                );
                return Ok(());
            }
            let passphrase = passphrase(&args.passphrase, true)?;
            seal(&files, &dest, passphrase)?;
            eprintln!(
                "secrets: sealed {} file(s) of {}; keep the passphrase apart from this file",
                files.len(),
                args.from.display()
            );
            println!("{}", dest.display());
            Ok(())
        }
        SecretsCommand::Open(args) => {
            let passphrase = passphrase(&args.passphrase, false)?;
            let files = open(&args.file, passphrase)?;
            let plan = plan(&files, &args.to)?;
            let conflicts: Vec<&str> = plan
                .iter()
                .filter(|(_, s)| *s == Target::Differs)
                .map(|(n, _)| n.as_str())
                .collect();
            if !conflicts.is_empty() && !args.force {
                return Err(BootError::Config(format!(
                    "{} exist(s) in {} with other content: nothing was written. Move them \
                     aside, or pass --force to overwrite them",
                    conflicts.join(", "),
                    args.to.display()
                )));
            }
            if args.dry_run {
                for (name, target) in &plan {
                    println!("dry run: {name}: {}", target.would());
                }
                return Ok(());
            }
            let written = write_all(&files, &plan, &args.to)?;
            println!(
                "opened {}: {written} file(s) written, {} unchanged, into {}",
                args.file.display(),
                files.len() - written,
                args.to.display()
            );
            Ok(())
        }
    }
}

/// The regular files under `dir`, by relative path (`/`-separated), with their bytes.
/// Symbolic links and other special files are skipped, with a notice.
pub fn collect(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, BootError> {
    if !dir.is_dir() {
        return Err(BootError::Config(format!(
            "{} is not a directory; give the secrets directory with --from",
            dir.display()
        )));
    }
    let mut files = BTreeMap::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, prefix)) = pending.pop() {
        let entries =
            std::fs::read_dir(&path).with_context(|| format!("reading {}", path.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", path.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = format!("{prefix}{name}");
            let kind = entry
                .file_type()
                .with_context(|| format!("reading {}", entry.path().display()))?;
            if kind.is_dir() {
                pending.push((entry.path(), format!("{rel}/")));
            } else if kind.is_file() {
                let bytes = std::fs::read(entry.path())
                    .with_context(|| format!("reading {}", entry.path().display()))?;
                files.insert(rel, bytes);
            } else {
                eprintln!("secrets: skipping {rel}: not a regular file");
            }
        }
    }
    if files.is_empty() {
        return Err(BootError::Config(format!(
            "{} holds no files; nothing to seal",
            dir.display()
        )));
    }
    Ok(files)
}

/// Encrypts a tar of `files` into `dest`, atomically, mode 0600.
pub fn seal(
    files: &BTreeMap<String, Vec<u8>>,
    dest: &Path,
    passphrase: SecretString,
) -> Result<(), BootError> {
    let dir = dest.parent().context("the destination has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tar = tar::Builder::new(Vec::new());
    let mtime = chrono::Utc::now().timestamp().max(0) as u64;
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, bytes.as_slice())
            .with_context(|| format!("adding {name}"))?;
    }
    let plain = tar.into_inner().context("finishing the tar")?;
    let encryptor = age::Encryptor::with_user_passphrase(passphrase);
    write_atomically(dest, |file, _| {
        let mut writer = encryptor.wrap_output(file)?;
        writer.write_all(&plain)?;
        writer.finish()?;
        Ok(())
    })
    .with_context(|| format!("writing {}", dest.display()))?;
    Ok(())
}

/// Decrypts `path` and reads the tar inside, whole, before anything is written: a wrong
/// passphrase, a tampered or a truncated file is an error here.
pub fn open(path: &Path, passphrase: SecretString) -> Result<BTreeMap<String, Vec<u8>>, BootError> {
    let shown = path.display();
    let file =
        File::open(path).map_err(|e| BootError::Config(format!("cannot read {shown}: {e}")))?;
    let decryptor = age::Decryptor::new_buffered(std::io::BufReader::new(file)).map_err(|e| {
        BootError::Other(anyhow::anyhow!(
            "{shown} is not a sealed secrets file (age: {e}); nothing was written"
        ))
    })?;
    if !decryptor.is_scrypt() {
        return Err(BootError::Other(anyhow::anyhow!(
            "{shown} is not sealed with a passphrase; open it with the age tool and its key; \
             nothing was written"
        )));
    }
    let identity = age::scrypt::Identity::new(passphrase);
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::ExcessiveWork { .. } => BootError::Other(anyhow::anyhow!(
                "{shown} asks for more work than this machine allows (age: {e}); open it on a \
                 faster machine; nothing was written"
            )),
            age::DecryptError::InvalidMac | age::DecryptError::InvalidHeader => {
                BootError::Other(anyhow::anyhow!(
                    "{shown} is corrupt or was tampered with (age: {e}); use another copy; \
                     nothing was written"
                ))
            }
            _ => BootError::Other(anyhow::anyhow!(
                "wrong passphrase for {shown} (or the file is damaged); nothing was written"
            )),
        })?;
    let mut plain = Vec::new();
    (&mut reader)
        .take(MAX_PLAIN_BYTES + 1)
        .read_to_end(&mut plain)
        .map_err(|e| {
            BootError::Other(anyhow::anyhow!(
                "{shown} is corrupt, truncated or was tampered with ({e}); use another \
                 copy; nothing was written"
            ))
        })?;
    if plain.len() as u64 > MAX_PLAIN_BYTES {
        return Err(BootError::Other(anyhow::anyhow!(
            "{shown} holds more than {} MiB: not a secrets directory; nothing was written",
            MAX_PLAIN_BYTES >> 20
        )));
    }
    let bad = |why: String| {
        BootError::Other(anyhow::anyhow!(
            "{shown} decrypts, but not to a secrets archive ({why}); nothing was written"
        ))
    };
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(plain.as_slice());
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let name = entry
            .path()
            .map_err(|e| bad(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(bad(format!("{name:?} is not a regular file")));
        }
        if !safe_relative(&name) {
            return Err(bad(format!("the path {name:?} is not allowed")));
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| bad(e.to_string()))?;
        if files.insert(name.clone(), bytes).is_some() {
            return Err(bad(format!("{name:?} appears twice")));
        }
    }
    if files.is_empty() {
        return Err(bad("it holds no files".into()));
    }
    Ok(files)
}

/// Relative, with plain components only: nothing is written outside the target directory.
fn safe_relative(name: &str) -> bool {
    super::archive::plain_relative(name)
}

/// What opening does to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    New,
    Same,
    Differs,
}

impl Target {
    fn would(self) -> &'static str {
        match self {
            Target::New => "would be written",
            Target::Same => "exists with the same content; left as it is",
            Target::Differs => "exists with other content; would be overwritten (--force)",
        }
    }
}

fn plan(files: &BTreeMap<String, Vec<u8>>, to: &Path) -> Result<Vec<(String, Target)>, BootError> {
    let mut plan = Vec::new();
    for (name, bytes) in files {
        let path = to.join(name);
        let target = match std::fs::read(&path) {
            Ok(existing) if &existing == bytes => Target::Same,
            Ok(_) => Target::Differs,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Target::New,
            Err(e) => {
                return Err(BootError::Config(format!(
                    "cannot read {} ({e}); nothing was written",
                    path.display()
                )))
            }
        };
        plan.push((name.clone(), target));
    }
    Ok(plan)
}

/// Writes every new or differing file, each atomically with mode 0600; returns how many.
fn write_all(
    files: &BTreeMap<String, Vec<u8>>,
    plan: &[(String, Target)],
    to: &Path,
) -> Result<usize, BootError> {
    let mut written = 0;
    for (name, target) in plan {
        if *target == Target::Same {
            continue;
        }
        let path = to.join(name);
        let parent = path.parent().context("a file without a directory")?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let bytes = &files[name];
        write_atomically(&path, |file, _| Ok(file.write_all(bytes)?))
            .with_context(|| format!("writing {}", path.display()))?;
        written += 1;
    }
    Ok(written)
}

/// The passphrase: --passphrase-file, else BERTH_BACKUP_PASSPHRASE, else a hidden prompt on the
/// terminal (asked twice when sealing). Never echoed or printed.
pub fn passphrase(args: &PassphraseArgs, sealing: bool) -> Result<SecretString, BootError> {
    let given = if let Some(path) = &args.passphrase_file {
        let mut text = String::new();
        File::open(path)
            .and_then(|f| std::io::BufReader::new(f).read_line(&mut text))
            .map_err(|e| {
                BootError::Config(format!(
                    "cannot read the passphrase file {} ({e})",
                    path.display()
                ))
            })?;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                eprintln!(
                    "secrets: warning: {} is readable by other users; chmod 600 it",
                    path.display()
                );
            }
        }
        // Only the line ending goes: spaces are part of a passphrase.
        let line = text
            .strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or(&text);
        line.to_string()
    } else if let Ok(value) = std::env::var(PASSPHRASE_ENV) {
        value
    } else if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Passphrase: ").context("reading the passphrase")?;
        if sealing {
            let again =
                rpassword::prompt_password("Repeat it: ").context("reading the passphrase")?;
            if first != again {
                return Err(BootError::Config(
                    "the two passphrases differ; nothing was written".into(),
                ));
            }
        }
        first
    } else {
        return Err(BootError::Config(format!(
            "no passphrase: give --passphrase-file FILE or set {PASSPHRASE_ENV} (there is no \
             terminal to ask on)"
        )));
    };
    let passphrase = SecretString::from(given);
    check_passphrase(&passphrase, sealing)?;
    Ok(passphrase)
}

fn check_passphrase(passphrase: &SecretString, sealing: bool) -> Result<(), BootError> {
    let chars = passphrase.expose_secret().chars().count();
    if chars == 0 {
        return Err(BootError::Config(
            "the passphrase is empty; nothing was written".into(),
        ));
    }
    if sealing && chars < MIN_PASSPHRASE_CHARS {
        return Err(BootError::Config(format!(
            "the passphrase is too short ({chars} characters): use at least \
             {MIN_PASSPHRASE_CHARS}, e.g. four or five random words; nothing was written"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_opened() {
        assert!(safe_relative("postgres_password"));
        assert!(safe_relative("tls/privkey.pem"));
        assert!(!safe_relative("../etc/passwd"));
        assert!(!safe_relative("/etc/passwd"));
        assert!(!safe_relative("tls/../../x"));
        assert!(!safe_relative(""));
    }

    #[test]
    fn short_and_empty_passphrases_are_refused_for_sealing() {
        let short = SecretString::from("eleven-char");
        assert!(check_passphrase(&short, true).is_err());
        assert!(check_passphrase(&short, false).is_ok());
        assert!(check_passphrase(&SecretString::from(""), false).is_err());
        assert!(check_passphrase(&SecretString::from("twelve chars"), true).is_ok());
    }

    #[test]
    fn sealed_names_are_not_data_archive_names() {
        let name = format!("{PREFIX}prod-20261201T020000.000Z{SUFFIX}");
        assert!(!name.ends_with(super::super::archive::SUFFIX));
    }
}
