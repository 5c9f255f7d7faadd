//! The backup archive: one gzip-compressed tar file, `manifest.json` first, then the database
//! snapshot and the uploaded files. The manifest lists every other member with its size and
//! SHA-256, so a corrupt, truncated or foreign archive is recognised before anything is touched.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What the manifest's `format` says: anything else is not a Berth backup.
pub const FORMAT: &str = "berth-backup";
/// The archive layout this Berth writes; it reads this one and older.
pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
/// The largest manifest read: a foreign archive must not make us allocate without bound.
const MANIFEST_MAX_BYTES: u64 = 64 << 20;
/// Archive file names: `berth-<stage>-<UTC timestamp>.tar.gz`.
pub const PREFIX: &str = "berth-";
pub const SUFFIX: &str = ".tar.gz";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub berth_version: String,
    /// `sqlite` or `postgres`: an archive restores only into the same backend.
    pub backend: String,
    pub stage: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// The highest schema migration applied in the snapshot.
    pub migration_level: i64,
    /// Embedding vectors by model and dimension.
    pub embeddings: Vec<EmbeddingSet>,
    /// Rows per table in the snapshot.
    pub row_counts: BTreeMap<String, i64>,
    /// Documents whose uploaded file was gone when the backup was taken (deleted meanwhile).
    #[serde(default)]
    pub missing_files: Vec<String>,
    /// Every other member of the archive, in archive order.
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmbeddingSet {
    pub model: String,
    pub dim: i64,
    pub vectors: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Member {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// Why an archive is refused: each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0} is not a Berth backup archive ({1}); nothing was changed")]
    Foreign(String, String),
    #[error("{0} is corrupt or truncated ({1}); nothing was changed. Use another archive (`berth backup list`).")]
    Corrupt(String, String),
    #[error("{0} was written by a newer Berth ({1}); nothing was changed. Restore it with that version or newer.")]
    Newer(String, String),
}

pub fn sha256_file(path: &Path) -> io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let size = io::copy(&mut file, &mut hasher)?;
    Ok((size, hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A member path we are willing to write: relative, no `..`, under `files/` or a database file.
fn safe_member_path(path: &str) -> bool {
    plain_relative(path) && (path.starts_with("files/") || path.starts_with("database."))
}

/// A non-empty relative path of plain names only (no `..`, no root): safe to join to a directory
/// when it comes from an archive.
pub(crate) fn plain_relative(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// Writes the archive at `dest` from `staged` (a directory holding every member under its
/// path), atomically: a hidden temporary name, fsync, rename, fsync of the directory. A crash or
/// kill leaves at most a `.partial` file, which listings ignore.
pub fn write(dest: &Path, manifest: &Manifest, staged: &Path) -> anyhow::Result<()> {
    write_atomically(dest, |file, partial| {
        let gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let json = serde_json::to_vec_pretty(manifest)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(json.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
        header.set_cksum();
        tar.append_data(&mut header, MANIFEST, json.as_slice())?;
        for member in &manifest.members {
            let mut file = File::open(staged.join(&member.path))
                .with_context(|| format!("reading the staged {}", member.path))?;
            let mut header = tar::Header::new_gnu();
            header.set_size(member.size);
            header.set_mode(0o600);
            header.set_mtime(0);
            header.set_cksum();
            tar.append_data(&mut header, &member.path, (&mut file).take(member.size))?;
        }
        tar.into_inner()?.finish()?.flush()?;
        verify(partial).context("re-reading the archive just written")?;
        Ok(())
    })
}

/// Writes `dest` whole or not at all: `fill` writes a hidden `.NAME.<random>.partial` file beside
/// it (mode 0600 from the start: archives and secrets hold password hashes and keys) and may read
/// it back by its path; then it is fsynced, renamed over `dest` and the directory fsynced. A crash
/// leaves the old file or the new one, never half of one; listings skip hidden files.
pub fn write_atomically(
    dest: &Path,
    fill: impl FnOnce(&mut File, &Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = match dest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = dest.file_name().context("no file name to write")?;
    let partial = dir.join(format!(
        ".{}.{}.partial",
        name.to_string_lossy(),
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .with_context(|| format!("creating {}", partial.display()))?;
        fill(&mut file, &partial)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&partial, dest)?;
        File::open(dir)?.sync_all()?;
        anyhow::Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Reads only the manifest (the first member): cheap, for listings and compatibility checks.
pub fn read_manifest(archive: &Path) -> Result<Manifest, Refused> {
    let shown = archive.display().to_string();
    let file = File::open(archive).map_err(|e| Refused::Foreign(shown.clone(), e.to_string()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    let mut entries = tar
        .entries()
        .map_err(|e| Refused::Foreign(shown.clone(), e.to_string()))?;
    let first = entries
        .next()
        .ok_or_else(|| Refused::Foreign(shown.clone(), "it is empty".into()))?
        .map_err(|e| Refused::Foreign(shown.clone(), format!("not a gzip-compressed tar: {e}")))?;
    manifest_of(first, &shown)
}

fn manifest_of<R: Read>(mut entry: tar::Entry<R>, shown: &str) -> Result<Manifest, Refused> {
    let path = entry
        .path()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    if path != MANIFEST {
        return Err(Refused::Foreign(
            shown.into(),
            format!("its first member is {path:?}, not {MANIFEST}"),
        ));
    }
    let mut json = Vec::new();
    (&mut entry)
        .take(MANIFEST_MAX_BYTES)
        .read_to_end(&mut json)
        .map_err(|e| Refused::Corrupt(shown.into(), e.to_string()))?;
    let value: serde_json::Value = serde_json::from_slice(&json)
        .map_err(|e| Refused::Foreign(shown.into(), format!("unreadable manifest: {e}")))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(Refused::Foreign(
            shown.into(),
            format!("its manifest does not say format \"{FORMAT}\""),
        ));
    }
    let version = value
        .get("format_version")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    if version > FORMAT_VERSION as u64 {
        return Err(Refused::Newer(
            shown.into(),
            format!("archive format {version}, this Berth reads up to {FORMAT_VERSION}"),
        ));
    }
    let manifest: Manifest = serde_json::from_value(value)
        .map_err(|e| Refused::Foreign(shown.into(), format!("unreadable manifest: {e}")))?;
    if let Some(bad) = manifest.members.iter().find(|m| !safe_member_path(&m.path)) {
        return Err(Refused::Foreign(
            shown.into(),
            format!("member path {:?} is not allowed", bad.path),
        ));
    }
    Ok(manifest)
}

/// Reads the whole archive and checks every member against the manifest: present once, same
/// size, same SHA-256, nothing else. Returns the manifest.
pub fn verify(archive: &Path) -> Result<Manifest, Refused> {
    read_all(archive, None)
}

/// [`verify`], writing the members under `dest` as it goes. Only a fully verified extraction
/// returns Ok; the caller removes `dest` otherwise.
pub fn extract(archive: &Path, dest: &Path) -> Result<Manifest, Refused> {
    read_all(archive, Some(dest))
}

fn read_all(archive: &Path, dest: Option<&Path>) -> Result<Manifest, Refused> {
    let shown = archive.display().to_string();
    let corrupt = |e: &dyn std::fmt::Display| Refused::Corrupt(shown.clone(), e.to_string());
    let file = File::open(archive).map_err(|e| Refused::Foreign(shown.clone(), e.to_string()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    let mut entries = tar.entries().map_err(|e| corrupt(&e))?;
    let first = entries
        .next()
        .ok_or_else(|| Refused::Foreign(shown.clone(), "it is empty".into()))?
        .map_err(|e| Refused::Foreign(shown.clone(), format!("not a gzip-compressed tar: {e}")))?;
    let manifest = manifest_of(first, &shown)?;
    let expected: BTreeMap<&str, &Member> = manifest
        .members
        .iter()
        .map(|m| (m.path.as_str(), m))
        .collect();
    let mut seen = BTreeSet::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(&e))?;
        let path = entry
            .path()
            .map_err(|e| corrupt(&e))?
            .to_string_lossy()
            .into_owned();
        let member = expected
            .get(path.as_str())
            .ok_or_else(|| corrupt(&format!("member {path:?} is not in the manifest")))?;
        if !seen.insert(path.clone()) {
            return Err(corrupt(&format!("member {path:?} appears twice")));
        }
        let mut hasher = Sha256::new();
        let size = match dest {
            Some(dest) => {
                let target: PathBuf = dest.join(&path);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| corrupt(&e))?;
                }
                let mut out = BufWriter::new(File::create(&target).map_err(|e| corrupt(&e))?);
                let size = io::copy(&mut entry, &mut Tee(&mut out, &mut hasher))
                    .map_err(|e| corrupt(&e))?;
                out.into_inner()
                    .map_err(|e| corrupt(&e.into_error()))?
                    .sync_all()
                    .map_err(|e| corrupt(&e))?;
                size
            }
            None => io::copy(&mut entry, &mut hasher).map_err(|e| corrupt(&e))?,
        };
        let sha = hex(&hasher.finalize());
        if size != member.size || sha != member.sha256 {
            return Err(corrupt(&format!(
                "member {path} does not match its checksum in the manifest"
            )));
        }
    }
    if let Some(missing) = expected.keys().find(|p| !seen.contains(**p)) {
        return Err(corrupt(&format!("member {missing} is missing")));
    }
    Ok(manifest)
}

/// Writes to two sinks: the extracted file and the running checksum.
struct Tee<'a, A: Write, B: Write>(&'a mut A, &'a mut B);

impl<A: Write, B: Write> Write for Tee<'_, A, B> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.0.write(buf)?;
        self.1.write_all(&buf[..n])?;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

/// The archives in `dir` (complete ones only: `.partial` files are hidden), oldest first.
/// With `stage`, only that stage's.
pub fn list(dir: &Path, stage: Option<&str>) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(anyhow!("reading {}: {e}", dir.display())),
    };
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !name.starts_with(PREFIX) || !name.ends_with(SUFFIX) {
            continue;
        }
        if let Some(stage) = stage {
            if stage_of(&name) != Some(stage) {
                continue;
            }
        }
        found.push(dir.join(name));
    }
    // The UTC timestamp at the end of the name sorts in time order.
    found.sort_by(|a, b| timestamp_of(a).cmp(&timestamp_of(b)).then(a.cmp(b)));
    Ok(found)
}

/// `berth-<stage>-<timestamp>.tar.gz` → stage (which may itself contain dashes).
pub fn stage_of(name: &str) -> Option<&str> {
    let inner = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    inner.rsplit_once('-').map(|(stage, _)| stage)
}

fn timestamp_of(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.strip_suffix(SUFFIX)
        .and_then(|n| n.rsplit_once('-'))
        .map(|(_, ts)| ts.to_string())
        .unwrap_or_default()
}

/// The marker `backup verify` leaves beside an archive it restored and checked.
pub fn verified_marker(archive: &Path) -> PathBuf {
    let mut name = archive.as_os_str().to_owned();
    name.push(".verified");
    PathBuf::from(name)
}

/// Keeps the newest `keep` archives of `stage` and the newest verified one; deletes the rest
/// (and their markers). Returns what was deleted.
pub fn rotate(dir: &Path, stage: &str, keep: usize) -> anyhow::Result<Vec<PathBuf>> {
    if keep == 0 {
        bail!("--keep must be at least 1");
    }
    let all = list(dir, Some(stage))?;
    let newest_verified = all
        .iter()
        .rev()
        .find(|a| verified_marker(a).exists())
        .cloned();
    let cut = all.len().saturating_sub(keep);
    let mut deleted = Vec::new();
    for old in &all[..cut] {
        if Some(old) == newest_verified.as_ref() {
            continue;
        }
        std::fs::remove_file(old).with_context(|| format!("deleting {}", old.display()))?;
        let _ = std::fs::remove_file(verified_marker(old));
        deleted.push(old.clone());
    }
    deleted.extend(remove_abandoned_partials(dir, stage));
    Ok(deleted)
}

/// A backup killed mid-write leaves its hidden `.partial` file; one a day old belongs to no
/// running backup (they take minutes), so rotation removes it rather than let them pile up.
fn remove_abandoned_partials(dir: &Path, stage: &str) -> Vec<PathBuf> {
    let prefix = format!(".{PREFIX}{stage}-");
    let abandoned = |entry: &std::fs::DirEntry| {
        let name = entry.file_name().to_string_lossy().into_owned();
        name.starts_with(&prefix)
            && name.ends_with(".partial")
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(24 * 3600))
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| abandoned(entry))
        .map(|entry| entry.path())
        .filter(|path| std::fs::remove_file(path).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_removes_only_day_old_partials_of_its_stage() {
        let dir = std::env::temp_dir().join(format!("berth-partials-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let day_old = std::time::SystemTime::now() - std::time::Duration::from_secs(25 * 3600);
        let make = |name: &str, old: bool| {
            let path = dir.join(name);
            let file = File::create(&path).unwrap();
            if old {
                file.set_modified(day_old).unwrap();
            }
            path
        };
        let abandoned = make(".berth-dev-20261201T101010.000Z.tar.gz.ab12.partial", true);
        let running = make(".berth-dev-20261201T111010.000Z.tar.gz.cd34.partial", false);
        let other_stage = make(".berth-prod-20261201T101010.000Z.tar.gz.ef56.partial", true);
        let deleted = rotate(&dir, "dev", 7).unwrap();
        assert_eq!(deleted, vec![abandoned.clone()]);
        assert!(!abandoned.exists() && running.exists() && other_stage.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stage_and_order_come_from_the_name() {
        assert_eq!(
            stage_of("berth-pre-restore-20261201T101010.123Z.tar.gz"),
            Some("pre-restore")
        );
        assert_eq!(
            stage_of("berth-dev-20261201T101010.123Z.tar.gz"),
            Some("dev")
        );
        assert_eq!(stage_of("other.tar.gz"), None);
    }

    #[test]
    fn only_plain_relative_member_paths_are_allowed() {
        assert!(safe_member_path("files/abc"));
        assert!(safe_member_path("database.sqlite"));
        assert!(!safe_member_path("files/../../etc/passwd"));
        assert!(!safe_member_path("/etc/passwd"));
        assert!(!safe_member_path("berth.toml"));
    }
}
