//! `berth backup` and `berth restore`, black-box, on the backend `BERTH_TEST_BACKEND` names
//! (SQLite by default; with `postgres`, pg_dump/pg_restore/psql run in the pgvector image with
//! `docker run`, as operators without a host client do).

use crate::support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};
use support::llm::ModelServer;
use support::{create_admin, json, pg, postgres_backend, Berth, Browser, BIN};

mod archives;
mod consistency;
mod drill;
mod secrets;

const PW: &str = "Adm1n!chosen-well";

/// How the tests run the PostgreSQL client tools: in the server's image, on the host network.
const PG_TOOLS: &str = "docker run --rm -i --network host -e PGPASSWORD pgvector/pgvector:pg17";

/// `berth ARGS --data-dir DIR [--database-url …]` with the client tools set: its output.
fn berth(args: &[&str], data_dir: &Path) -> Output {
    berth_with_stdin(args, data_dir, "")
}

fn berth_with_stdin(args: &[&str], data_dir: &Path, stdin: &str) -> Output {
    let mut child = spawn_berth(args, data_dir, Stdio::piped());
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `berth backup list`: it takes the archives' directory and nothing of the data.
fn list_archives(dir: impl AsRef<Path>) -> Output {
    Command::new(BIN)
        .args(["backup", "list", "--dir"])
        .arg(dir.as_ref())
        .output()
        .expect("run berth backup list")
}

fn spawn_berth(args: &[&str], data_dir: &Path, stdin: Stdio) -> std::process::Child {
    Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .args(support::database_args(data_dir))
        .env("BERTH_PG_TOOLS", PG_TOOLS)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn berth")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Takes a backup into `dir`; returns the archive's path.
fn backup(data_dir: &Path, dir: &Path, extra: &[&str]) -> PathBuf {
    let mut args = vec!["backup", "create", "--stage", "test", "--dir"];
    let dir = dir.to_str().unwrap();
    args.push(dir);
    args.extend_from_slice(extra);
    let out = berth(&args, data_dir);
    assert!(out.status.success(), "backup failed: {}", text(&out));
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(Path::new(&path).exists(), "no archive at {path:?}");
    PathBuf::from(path)
}

fn archives(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tar.gz"))
        .collect();
    names.sort();
    names
}

fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The data as a reader sees it: accounts, the audit log, collections, documents, chunks,
/// vectors, conversations, and every uploaded file's checksum.
async fn state(data_dir: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for sql in [
        "SELECT id || '|' || username || '|' || password_hash || '|' || role || '|' || state FROM users ORDER BY id",
        "SELECT id || '|' || at || '|' || event || '|' || outcome || '|' || coalesce(actor_name, '') || '|' || coalesce(target_name, '') || '|' || coalesce(detail, '') FROM audit_log ORDER BY id",
        "SELECT id || '|' || name || '|' || owner_id FROM collections ORDER BY id",
        "SELECT id || '|' || filename || '|' || content_hash || '|' || status || '|' || chunk_count FROM documents ORDER BY id",
        "SELECT document_id || '|' || ordinal || '|' || text FROM chunks ORDER BY document_id, ordinal",
        "SELECT model || '|' || dim || '|' || count(*) FROM chunk_vectors GROUP BY model, dim ORDER BY model",
        "SELECT id || '|' || title FROM conversations ORDER BY id",
        "SELECT conversation_id || '|' || role || '|' || content FROM messages ORDER BY id",
    ] {
        rows.push(format!("-- {sql}"));
        rows.extend(support::db_strings(data_dir, sql).await);
    }
    if has_document_files(data_dir).await {
        let sql = if postgres_backend() {
            "SELECT document_id || '|' || md5(bytes) FROM document_files ORDER BY document_id"
        } else {
            "SELECT document_id || '|' || hex(bytes) FROM document_files ORDER BY document_id"
        };
        rows.extend(support::db_strings(data_dir, sql).await);
    }
    let files = data_dir.join("files");
    let mut names: Vec<_> = std::fs::read_dir(&files)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    names.sort();
    for name in names {
        let bytes = std::fs::read(files.join(&name)).unwrap();
        rows.push(format!(
            "file {} {}",
            name.to_string_lossy(),
            sha256(&bytes)
        ));
    }
    rows
}

/// Since migration 4, uploads are kept in the database (`document_files`).
async fn has_document_files(data_dir: &Path) -> bool {
    let sql = if postgres_backend() {
        "SELECT tablename::text FROM pg_tables WHERE tablename = 'document_files'"
    } else {
        "SELECT name FROM sqlite_master WHERE name = 'document_files'"
    };
    !support::db_strings(data_dir, sql).await.is_empty()
}

/// The manifest of an archive.
fn manifest(archive: &Path) -> serde_json::Value {
    let file = std::fs::File::open(archive).unwrap();
    let mut reader = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut first = reader.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(first.path().unwrap().to_str(), Some("manifest.json"));
    serde_json::from_reader(&mut first).unwrap()
}

/// A checksum of the whole database as a dump (PostgreSQL: `pg_dump` plain text; SQLite: the
/// file itself, Berth being stopped).
fn database_checksum(data_dir: &Path) -> String {
    if postgres_backend() {
        let url = pg::database_for_dir(data_dir);
        let mut parsed = reqwest::Url::parse(&url).unwrap();
        let password = parsed.password().unwrap_or("").to_string();
        parsed.set_password(None).unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{PG_TOOLS} pg_dump --no-owner '{parsed}'"))
            .env("PGPASSWORD", password)
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_dump: {}", text(&out));
        // pg_dump 17.6+ brackets the script with \restrict/\unrestrict and a random key.
        let dump: Vec<&str> = std::str::from_utf8(&out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect();
        sha256(dump.join("\n").as_bytes())
    } else {
        sha256(&std::fs::read(data_dir.join("berth.db")).unwrap())
    }
}

struct Site {
    dir: tempfile::TempDir,
    model: ModelServer,
}

impl Site {
    fn new() -> Site {
        Site {
            dir: tempfile::tempdir().unwrap(),
            model: ModelServer::start(),
        }
    }
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn backups(&self) -> PathBuf {
        self.dir.path().join("backups")
    }
    fn start(&self) -> Berth {
        let env = [
            ("BERTH_EMBED_URL", self.model.url()),
            ("BERTH_EMBED_API", "ollama".into()),
            ("BERTH_EMBED_MODEL", "test-embed".into()),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Berth::start_with(&self.data(), &[], &env)
    }
}

/// A site with an admin, a collection, two ingested documents and a conversation; stopped.
/// Moves one document's upload out of the database onto disk, as Berth kept it before
/// migration 4 (or leaves it there, before that migration); returns the document's id.
async fn plant_legacy_file(data_dir: &Path, bytes: &[u8]) -> String {
    let id = support::db_strings(data_dir, "SELECT id FROM documents ORDER BY id")
        .await
        .remove(0);
    std::fs::create_dir_all(data_dir.join("files")).unwrap();
    std::fs::write(data_dir.join("files").join(&id), bytes).unwrap();
    if has_document_files(data_dir).await {
        support::db_execute(
            data_dir,
            &format!("DELETE FROM document_files WHERE document_id = '{id}'"),
        )
        .await
        .unwrap();
    }
    id
}

async fn populated() -> (Site, String) {
    let site = Site::new();
    let berth = site.start();
    create_admin(&site.data(), "root", PW);
    let mut me = Browser::new(&berth);
    assert_eq!(me.sign_in("root", PW).await, StatusCode::OK);
    let c = json(me.post("/collections", json!({"name": "handbook"})).await).await;
    let collection = c["id"].as_str().unwrap().to_string();
    for (name, body) in [
        (
            "boats.md",
            "# Boats\n\nA berth is where a boat is moored in the harbour.",
        ),
        (
            "trains.txt",
            "Trains stop at platforms; sleepers have berths too.",
        ),
    ] {
        me.ingest(&collection, name, body.as_bytes()).await;
    }
    me.post("/conversations", json!({})).await;
    berth.stop();
    (site, collection)
}

/// Rewrites an archive with a different manifest (checksums kept right): a "newer" archive.
fn rewrite_manifest(archive: &Path, out: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let file = std::fs::File::open(archive).unwrap();
    let mut reader = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(out).unwrap(),
        flate2::Compression::fast(),
    );
    let mut writer = tar::Builder::new(gz);
    for entry in reader.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        if path == "manifest.json" {
            let mut manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            edit(&mut manifest);
            bytes = serde_json::to_vec(&manifest).unwrap();
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_cksum();
        writer
            .append_data(&mut header, &path, bytes.as_slice())
            .unwrap();
    }
    writer.into_inner().unwrap().finish().unwrap();
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
