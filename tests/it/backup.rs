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

#[tokio::test]
async fn a_restore_brings_back_data_files_and_audit_log_exactly() {
    let (site, collection) = populated().await;
    // One document as uploaded before migration 4 (its file on disk, not in the database).
    let legacy = plant_legacy_file(&site.data(), b"legacy bytes").await;
    let before = state(&site.data()).await;
    assert!(before.iter().any(|r| r.starts_with("file ")), "{before:?}");
    let archive = backup(&site.data(), &site.backups(), &[]);

    // The manifest describes the snapshot.
    let m = manifest(&archive);
    assert_eq!(m["format"], "berth-backup");
    assert_eq!(
        m["backend"],
        if postgres_backend() {
            "postgres"
        } else {
            "sqlite"
        }
    );
    assert_eq!(m["row_counts"]["documents"], 2, "{m}");
    assert_eq!(m["row_counts"]["users"], 1, "{m}");
    assert_eq!(m["embeddings"][0]["model"], "test-embed", "{m}");
    assert_eq!(m["missing_files"], json!([]), "{m}");
    let members: Vec<&str> = m["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["path"].as_str().unwrap())
        .collect();
    assert!(
        members.contains(&format!("files/{legacy}").as_str()),
        "{members:?}"
    );
    let out = list_archives(site.backups());
    let listed = text(&out);
    let level = format!("level {}", m["migration_level"]);
    assert!(out.status.success() && listed.contains(&level), "{listed}");

    // Change everything a restore must undo: a new account, a deleted document, a new file.
    let berth_again = site.start();
    let mut me = Browser::new(&berth_again);
    me.sign_in("root", PW).await;
    assert_eq!(me.register("mallory", "Mall0ry!secret").await.status(), 202);
    let docs = json(
        me.get(&format!("/collections/{collection}/documents"))
            .await,
    )
    .await;
    let first = docs["documents"][0]["id"]
        .as_str()
        .or_else(|| docs[0]["id"].as_str())
        .unwrap_or_else(|| panic!("{docs}"))
        .to_string();
    me.send(
        reqwest::Method::DELETE,
        &format!("/documents/{first}"),
        json!({}),
    )
    .await;
    me.uploaded(&collection, "new.txt", b"written after the backup".to_vec())
        .await;
    berth_again.stop();
    assert_ne!(state(&site.data()).await, before);

    // Dry run changes nothing.
    let checksum = database_checksum(&site.data());
    let out = berth(
        &["restore", archive.to_str().unwrap(), "--dry-run"],
        &site.data(),
    );
    assert!(
        out.status.success() && text(&out).contains("would restore"),
        "{}",
        text(&out)
    );
    assert_eq!(database_checksum(&site.data()), checksum);

    // Without a terminal and without --yes, it asks for --yes and changes nothing.
    let out = berth(&["restore", archive.to_str().unwrap()], &site.data());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--yes"), "{}", text(&out));

    let out = berth(
        &[
            "restore",
            archive.to_str().unwrap(),
            "--yes",
            "--dir",
            site.backups().to_str().unwrap(),
        ],
        &site.data(),
    );
    assert!(out.status.success(), "restore failed: {}", text(&out));
    assert_eq!(state(&site.data()).await, before);
    // A safety backup of what was replaced was taken first.
    assert!(
        archives(&site.backups())
            .iter()
            .any(|n| n.starts_with("berth-pre-restore-")),
        "{:?}",
        archives(&site.backups())
    );

    // And Berth serves the restored data: sign in, search.
    let berth = site.start();
    let mut me = Browser::new(&berth);
    assert_eq!(me.sign_in("root", PW).await, StatusCode::OK);
    let found = json(
        me.post("/search", json!({"query": "moored boat", "k": 3}))
            .await,
    )
    .await;
    assert!(found.to_string().contains("moored"), "{found}");
    berth.stop();
}

#[tokio::test]
async fn verify_restores_into_a_scratch_database_and_marks_the_archive() {
    let (site, _) = populated().await;
    let archive = backup(&site.data(), &site.backups(), &[]);
    let out = berth(
        &["backup", "verify", archive.to_str().unwrap()],
        &site.data(),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("matches the manifest"),
        "{}",
        text(&out)
    );
    let mut marker = archive.clone().into_os_string();
    marker.push(".verified");
    assert!(Path::new(&marker).exists());
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

#[tokio::test]
async fn corrupt_truncated_foreign_and_newer_archives_are_refused_untouched() {
    let (site, _) = populated().await;
    let archive = backup(&site.data(), &site.backups(), &[]);
    let bytes = std::fs::read(&archive).unwrap();
    let bad = site.dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();

    let mut corrupt = bytes.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    let truncated = bytes[..bytes.len() * 2 / 3].to_vec();
    let mut foreign_tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_size(5);
    header.set_cksum();
    foreign_tar
        .append_data(&mut header, "hello.txt", &b"hello"[..])
        .unwrap();
    let foreign = foreign_tar.into_inner().unwrap().finish().unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("corrupt", corrupt, "corrupt"),
        ("truncated", truncated, "corrupt or truncated"),
        ("foreign", foreign, "not a Berth backup"),
        ("text", b"just some text\n".to_vec(), "not a Berth backup"),
    ];
    let newer = bad.join("newer.tar.gz");
    rewrite_manifest(&archive, &newer, |m| m["migration_level"] = json!(9999));
    let newer_format = bad.join("newer-format.tar.gz");
    rewrite_manifest(&archive, &newer_format, |m| m["format_version"] = json!(99));

    let checksum = database_checksum(&site.data());
    let files_before = state(&site.data()).await;
    let mut paths: Vec<(PathBuf, &str)> = Vec::new();
    for (name, content, expect) in &cases {
        let path = bad.join(format!("{name}.tar.gz"));
        std::fs::write(&path, content).unwrap();
        paths.push((path, expect));
    }
    paths.push((newer, "newer Berth"));
    paths.push((newer_format, "newer Berth"));
    for (path, expect) in &paths {
        for command in [&["restore", "--yes"][..], &["backup", "verify"][..]] {
            let mut args = command.to_vec();
            args.push(path.to_str().unwrap());
            let out = berth(&args, &site.data());
            let said = text(&out);
            assert!(!out.status.success(), "{args:?} accepted {path:?}: {said}");
            assert!(said.contains(expect), "{args:?} {path:?}: {said}");
            assert!(
                said.contains("nothing was changed") || said.contains("Nothing was changed"),
                "{said}"
            );
        }
    }
    assert_eq!(database_checksum(&site.data()), checksum);
    assert_eq!(state(&site.data()).await, files_before);
    // No safety backups were taken either: nothing got that far.
    assert_eq!(archives(&site.backups()).len(), 1);
}

#[tokio::test]
async fn rotation_keeps_the_newest_seven_and_the_newest_verified() {
    let (site, _) = populated().await;
    let mut made = Vec::new();
    for _ in 0..9 {
        made.push(backup(&site.data(), &site.backups(), &[]));
    }
    let kept = archives(&site.backups());
    assert_eq!(kept.len(), 7, "{kept:?}");
    let newest: Vec<String> = made[2..]
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(kept, newest);

    // The newest verified archive survives rotation even when seven newer ones exist.
    let verified = &made[2];
    let out = berth(
        &[
            "backup",
            "verify",
            "--checksums-only",
            verified.to_str().unwrap(),
        ],
        &site.data(),
    );
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(
        format!("{}.verified", verified.display()),
        "marked by the test\n",
    )
    .unwrap();
    // The off-site copy is the same bytes; archives hold password hashes, so both are private.
    let offsite = site.backups().with_file_name("offsite");
    let last = backup(
        &site.data(),
        &site.backups(),
        &["--keep", "2", "--copy-to", offsite.to_str().unwrap()],
    );
    let kept = archives(&site.backups());
    assert_eq!(kept.len(), 3, "{kept:?}");
    assert!(kept.contains(&verified.file_name().unwrap().to_string_lossy().into_owned()));
    let copy = offsite.join(last.file_name().unwrap());
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&last).unwrap());
    assert_eq!((mode(&last), mode(&copy)), (0o600, 0o600));
    assert_eq!(
        archives(&offsite).len(),
        1,
        "no partial file is left in the copy's folder"
    );
    assert_eq!(std::fs::read_dir(&offsite).unwrap().count(), 1);
}

#[tokio::test]
async fn a_backup_killed_midway_leaves_no_archive_behind() {
    let (site, _) = populated().await;
    // One big uploaded file makes the backup slow enough to kill while it writes.
    let id = plant_legacy_file(&site.data(), b"").await;
    let mut big = std::fs::File::create(site.data().join("files").join(&id)).unwrap();
    let mut block = vec![0u8; 1 << 20];
    for i in 0..96u32 {
        // Pseudo-random bytes: gzip cannot shrink them quickly.
        for (j, b) in block.iter_mut().enumerate() {
            *b = (((j as u32).wrapping_mul(2_654_435_761) ^ i.wrapping_mul(40_503)) >> 13) as u8;
        }
        big.write_all(&block).unwrap();
    }
    drop(big);

    std::fs::create_dir_all(site.backups()).unwrap();
    let dir = site.backups();
    let mut child = spawn_berth(
        &[
            "backup",
            "create",
            "--stage",
            "test",
            "--dir",
            dir.to_str().unwrap(),
        ],
        &site.data(),
        Stdio::null(),
    );
    let start = Instant::now();
    let partial = loop {
        let found = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .find(|n| n.ends_with(".partial"));
        if let Some(found) = found {
            break found;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup ended before it could be killed"
        );
        assert!(start.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(10));
    };
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        dir.join(&partial).exists(),
        "killed before writing: {partial}"
    );
    assert!(archives(&dir).is_empty(), "{:?}", archives(&dir));
    let out = list_archives(&dir);
    assert!(text(&out).contains("no archives"), "{}", text(&out));
    // The next backup works and lists.
    backup(&site.data(), &dir, &[]);
    assert_eq!(archives(&dir).len(), 1);
}

#[tokio::test]
async fn a_backup_taken_while_requests_write_is_consistent() {
    let (site, collection) = populated().await;
    let berth_srv = site.start();
    let mut me = Browser::new(&berth_srv);
    me.sign_in("root", PW).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let base = berth_srv.url("/api/v1");
        let me = Browser {
            http: me.http.clone(),
            base,
            csrf: me.csrf.clone(),
        };
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                me.register(&format!("user{n}"), "Us3r!password").await;
                let body = format!("Document number {n} about harbours and berths.");
                me.uploaded(&collection, &format!("d{n}.txt"), body.into_bytes())
                    .await;
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let data = site.data();
    let backups = site.backups();
    let archive = tokio::task::spawn_blocking(move || backup(&data, &backups, &[]))
        .await
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let written = writer.await.unwrap();
    assert!(written > 0);
    berth_srv.stop();
    // Verify restores the snapshot elsewhere and compares it with the manifest's counts.
    let out = berth(
        &["backup", "verify", archive.to_str().unwrap()],
        &site.data(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let m = manifest(&archive);
    assert_eq!(m["missing_files"], json!([]), "{m}");
    assert!(m["row_counts"]["documents"].as_i64().unwrap() >= 2, "{m}");
    let listed = text(&list_archives(site.backups()));
    assert!(!listed.contains("UNREADABLE"), "{listed}");
}

/// `berth backup drill ARGS` with the site's embedding model (as production would give it).
fn drill(site: &Site, args: &[&str]) -> Output {
    let mut all = vec!["backup", "drill"];
    all.extend_from_slice(args);
    let mut cmd = Command::new(BIN);
    cmd.args(&all)
        .arg("--data-dir")
        .arg(site.data())
        .args(support::database_args(&site.data()))
        .env("BERTH_PG_TOOLS", PG_TOOLS)
        .env("BERTH_EMBED_URL", site.model.url())
        .env("BERTH_EMBED_API", "ollama")
        .env("BERTH_EMBED_MODEL", "test-embed")
        .stdin(Stdio::null());
    cmd.output().expect("run berth backup drill")
}

/// Entries a drill could leave beside the archives: `.drill-…` work directories.
fn drill_leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".drill-") || n.starts_with(".verify-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Scratch databases a drill could leave on the PostgreSQL server (none under SQLite).
async fn scratch_databases(data_dir: &Path) -> Vec<String> {
    if !postgres_backend() {
        return Vec::new();
    }
    support::db_strings(
        data_dir,
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'berth\\_drill\\_%'",
    )
    .await
}

/// One test for every drill, so that "no scratch database is left" is not raced by another.
#[tokio::test]
async fn a_drill_restores_serves_signs_in_and_searches_and_leaves_nothing() {
    // An empty site: the drill signs in, says there is nothing to search, and passes.
    let empty = Site::new();
    create_admin(&empty.data(), "root", PW);
    backup(&empty.data(), &empty.backups(), &[]);
    let out = drill(&empty, &["--dir", empty.backups().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains("drill passed") && said.contains("no chunks"),
        "{said}"
    );

    // Real data: two ingested documents; the newest archive of the stage is picked.
    let (site, _) = populated().await;
    backup(&site.data(), &site.backups(), &[]);
    let archive = backup(&site.data(), &site.backups(), &[]);
    let live_before = database_checksum(&site.data());
    let state_before = state(&site.data()).await;
    let out = drill(
        &site,
        &["--dir", site.backups().to_str().unwrap(), "--stage", "test"],
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    for step in 1..=6 {
        assert!(said.contains(&format!("[{step}/6]")), "step {step}: {said}");
    }
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        summary.contains(archive.file_name().unwrap().to_str().unwrap()),
        "not the newest archive: {summary}"
    );
    assert!(summary.contains("2 document(s)"), "{summary}");
    let hits: usize = summary
        .split(" hit(s)")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no hit count: {summary}"));
    assert!(hits >= 1, "{summary}");
    assert!(summary.contains("hybrid search"), "{summary}");
    // The password of the throwaway account is never shown.
    assert!(!said.contains("Dr1ll!"), "{said}");
    // The live data is untouched: no drill account, same database.
    assert_eq!(database_checksum(&site.data()), live_before);
    assert_eq!(state(&site.data()).await, state_before);
    assert!(drill_leftovers(&site.backups()).is_empty());
    assert!(scratch_databases(&site.data()).await.is_empty());
    // A passed drill counts as a verification (rotation keeps the newest verified archive).
    let mut marker = archive.clone().into_os_string();
    marker.push(".verified");
    assert!(Path::new(&marker).exists());

    // A failure after the throwaway copy exists (here: no time to get ready) still removes it
    // all: the server, the work directory, the scratch database.
    let out = drill(&site, &[archive.to_str().unwrap(), "--ready-timeout", "0"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("step 3/6") && said.contains("--ready-timeout"),
        "{said}"
    );
    assert!(drill_leftovers(&site.backups()).is_empty());
    assert!(scratch_databases(&site.data()).await.is_empty());

    // A corrupt archive (a member's checksum does not match) fails at step 1, making nothing.
    let bad = site.dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let corrupt = bad.join("berth-test-20990101T000000.000Z.tar.gz");
    rewrite_manifest(&archive, &corrupt, |m| {
        m["members"][0]["sha256"] = json!("0".repeat(64));
    });
    let out = drill(&site, &[corrupt.to_str().unwrap()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("step 1/6"), "{said}");
    assert!(said.contains("does not match its checksum"), "{said}");
    assert!(
        drill_leftovers(&bad).is_empty(),
        "{:?}",
        drill_leftovers(&bad)
    );
    assert_eq!(std::fs::read_dir(&bad).unwrap().count(), 1);
    assert!(scratch_databases(&site.data()).await.is_empty());

    // No archive at all: a clear error, exit 2.
    let none = site.dir.path().join("none");
    let out = drill(&site, &["--dir", none.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no backup archive"), "{}", text(&out));
}

const PASSPHRASE: &str = "correct horse battery staple";

/// `berth backup secrets ARGS` with `env`: its output.
fn secrets(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["backup", "secrets"])
        .args(args)
        .env_remove("BERTH_BACKUP_PASSPHRASE")
        .env_remove("BERTH_BACKUP_DIR")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run berth backup secrets")
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file under `dir` (relative path → bytes).
fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, prefix)) = pending.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                pending.push((entry.path(), format!("{name}/")));
            } else {
                out.insert(name, std::fs::read(entry.path()).unwrap());
            }
        }
    }
    out
}

/// A secrets directory like the stack's, sealed into `out`: (the directory, the sealed file).
fn sealed_secrets(root: &Path, out: &Path) -> (PathBuf, PathBuf) {
    let dir = root.join("secrets");
    std::fs::create_dir_all(dir.join("tls")).unwrap();
    std::fs::write(dir.join("postgres_password"), "s3cret-db-password\n").unwrap();
    std::fs::write(
        dir.join("berth.toml"),
        "database_url = \"postgres://berth:s3cret@db:5432/berth\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("tls/privkey.pem"),
        b"-----BEGIN PRIVATE KEY-----\n",
    )
    .unwrap();
    let out_s = out.to_str().unwrap();
    let result = secrets(
        &[
            "seal",
            "--from",
            dir.to_str().unwrap(),
            "--dir",
            out_s,
            "--stage",
            "prod",
        ],
        &[("BERTH_BACKUP_PASSPHRASE", PASSPHRASE)],
    );
    assert!(result.status.success(), "{}", text(&result));
    let sealed = PathBuf::from(String::from_utf8_lossy(&result.stdout).trim());
    (dir, sealed)
}

#[test]
fn secrets_seal_and_open_round_trip_with_private_modes() {
    let root = tempfile::tempdir().unwrap();
    let (dir, sealed) = sealed_secrets(root.path(), &root.path().join("backups"));
    let name = sealed.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("berth-secrets-prod-") && name.ends_with(".tar.age"),
        "{name}"
    );
    assert_eq!(mode(&sealed), 0o600);
    // Encrypted: no secret is readable in the file.
    let bytes = std::fs::read(&sealed).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    assert!(!String::from_utf8_lossy(&bytes).contains("s3cret"));
    // No temporary file is left beside it.
    assert_eq!(
        std::fs::read_dir(sealed.parent().unwrap()).unwrap().count(),
        1
    );

    // Opened on "a new machine": a directory that does not exist yet, passphrase from a file.
    let pass_file = root.path().join("passphrase");
    std::fs::write(&pass_file, format!("{PASSPHRASE}\n")).unwrap();
    let restored = root.path().join("new-machine/secrets");
    let args = [
        "open",
        sealed.to_str().unwrap(),
        "--to",
        restored.to_str().unwrap(),
        "--passphrase-file",
        pass_file.to_str().unwrap(),
    ];
    let out = secrets(&args, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(PASSPHRASE), "{}", text(&out));
    assert_eq!(tree(&restored), tree(&dir));
    assert_eq!(mode(&restored), 0o700);
    for file in ["postgres_password", "berth.toml", "tls/privkey.pem"] {
        assert_eq!(mode(&restored.join(file)), 0o600, "{file}");
    }

    // Again: identical files are left alone. A changed one is refused without --force…
    let out = secrets(&args, &[]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(restored.join("postgres_password"), "changed since\n").unwrap();
    let out = secrets(&args, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("postgres_password"), "{}", text(&out));
    assert_eq!(
        std::fs::read(restored.join("postgres_password")).unwrap(),
        b"changed since\n"
    );
    // …and overwritten with it.
    let mut forced = args.to_vec();
    forced.push("--force");
    let out = secrets(&forced, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(tree(&restored), tree(&dir));

    // A passphrase shorter than 12 characters is refused for sealing; nothing is written.
    let out = secrets(
        &[
            "seal",
            "--from",
            dir.to_str().unwrap(),
            "--dir",
            root.path().join("other").to_str().unwrap(),
        ],
        &[("BERTH_BACKUP_PASSPHRASE", "too-short")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("too short"), "{}", text(&out));
    assert!(!root.path().join("other").exists());
    // Without any passphrase and no terminal: told how to give one.
    let out = secrets(
        &[
            "seal",
            "--from",
            dir.to_str().unwrap(),
            "--dir",
            root.path().to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--passphrase-file"), "{}", text(&out));
}

#[test]
fn a_wrong_passphrase_or_a_damaged_secrets_file_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (_, sealed) = sealed_secrets(root.path(), &root.path().join("backups"));
    let bytes = std::fs::read(&sealed).unwrap();
    let target = root.path().join("restored");
    let open = |file: &Path, passphrase: &str| {
        secrets(
            &[
                "open",
                file.to_str().unwrap(),
                "--to",
                target.to_str().unwrap(),
            ],
            &[("BERTH_BACKUP_PASSPHRASE", passphrase)],
        )
    };

    let out = open(&sealed, "not the right passphrase");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("wrong passphrase"), "{}", text(&out));
    assert!(!target.exists());

    // One byte flipped: in the header, in the middle of the payload, in the last byte.
    let header_end = bytes.windows(4).position(|w| w == b"\n---").unwrap();
    for (what, at) in [
        ("header", header_end / 2),
        ("payload", (header_end + bytes.len()) / 2),
        ("last byte", bytes.len() - 1),
    ] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x01;
        let path = root.path().join(format!("flipped-{at}.tar.age"));
        std::fs::write(&path, &damaged).unwrap();
        let out = open(&path, PASSPHRASE);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out));
        assert!(
            text(&out).contains("nothing was written"),
            "{what}: {}",
            text(&out)
        );
        assert!(!target.exists(), "{what}");
    }
    // Truncated.
    let path = root.path().join("truncated.tar.age");
    std::fs::write(&path, &bytes[..bytes.len() - 20]).unwrap();
    let out = open(&path, PASSPHRASE);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!target.exists());
    // Not an age file at all.
    let path = root.path().join("plain.tar.age");
    std::fs::write(&path, b"hello\n").unwrap();
    let out = open(&path, PASSPHRASE);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("not a sealed secrets file"),
        "{}",
        text(&out)
    );
    assert!(!target.exists());
}

#[test]
fn data_archive_listing_and_rotation_leave_secrets_files_alone() {
    let site = Site::new();
    create_admin(&site.data(), "root", PW);
    let (_, sealed) = sealed_secrets(site.dir.path(), &site.backups());
    // A stage named like the secrets prefix must not confuse anything either.
    for _ in 0..3 {
        backup(&site.data(), &site.backups(), &["--keep", "1"]);
    }
    let mut args = vec![
        "backup", "create", "--stage", "secrets", "--keep", "1", "--dir",
    ];
    let backups = site.backups();
    args.push(backups.to_str().unwrap());
    let out = berth(&args, &site.data());
    assert!(out.status.success(), "{}", text(&out));
    assert!(sealed.exists(), "rotation deleted the secrets file");
    let archives = archives(&site.backups());
    assert_eq!(archives.len(), 2, "{archives:?}");
    let out = list_archives(&backups);
    let listed = text(&out);
    assert!(out.status.success(), "{listed}");
    assert!(!listed.contains(".tar.age"), "{listed}");
    assert!(!listed.contains("UNREADABLE"), "{listed}");
    assert_eq!(listed.lines().count(), 2, "{listed}");
}
