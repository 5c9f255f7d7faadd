//! Upgrades from the previous release, run by `cargo xtask upgrade-test` (which builds that
//! release and names its binary in `BERTH_PREVIOUS_BIN`): data the previous release made is
//! all there after the current build migrates it, the previous release keeps serving beside the
//! current one during the expand phase (PostgreSQL, as a deploy runs them), and a backup the
//! previous release took restores into the current build.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{database_args, json, postgres_backend, Berth, Browser, BIN};

const ADMIN_PW: &str = "Adm1n!upgrade-path";
const USER_PW: &str = "Us3r!upgrade-path";
const DOC: &str = "Mooring rules\n\nEvery boat in the north harbour is moored at berth 14 \
                   from April to October.";

fn previous_bin() -> PathBuf {
    let bin = std::env::var_os("BERTH_PREVIOUS_BIN").unwrap_or_else(|| {
        panic!("BERTH_PREVIOUS_BIN is not set: run `cargo xtask upgrade-test`, which builds the previous release")
    });
    PathBuf::from(bin)
}

/// `bin ARGS --data-dir DIR [database]`, stdin given: (exit code, stdout + stderr).
fn run(bin: &Path, args: &[&str], data_dir: &Path, stdin: &str) -> (i32, String) {
    use std::io::Write;
    let mut child = Command::new(bin)
        // PostgreSQL's client tools as the server's version (the host's may be older).
        .env(
            "BERTH_PG_TOOLS",
            "docker run --rm -i --network host -e PGPASSWORD pgvector/pgvector:pg17",
        )
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .args(database_args(data_dir))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// What the previous release made: an admin, an approved user, a collection with a ready
/// document, a conversation with an answer.
async fn populate(berth: &Berth, bin: &Path) {
    let (code, out) = run(
        bin,
        &["admin", "create", "--username", "root", "--password-stdin"],
        &berth.data_dir,
        &format!("{ADMIN_PW}\n"),
    );
    assert_eq!(code, 0, "{out}");
    let mut admin = Browser::new(berth);
    assert_eq!(admin.sign_in("root", ADMIN_PW).await, StatusCode::OK);
    let user = Browser::new(berth);
    let reg = json(user.register("carol", USER_PW).await).await;
    let id = reg["user"]["id"].as_str().unwrap().to_string();
    let approved = admin
        .post(&format!("/admin/users/{id}/approve"), json!({}))
        .await;
    assert_eq!(approved.status(), 200);
    let c = json(admin.post("/collections", json!({"name": "harbour"})).await).await;
    let collection = c["id"].as_str().unwrap().to_string();
    admin.ingest(&collection, "mooring.txt", DOC).await;
    let conv = json(admin.post("/conversations", json!({})).await).await;
    let conv = conv["id"].as_str().unwrap();
    let answer = admin
        .post(
            &format!("/conversations/{conv}/messages"),
            json!({"content": "Where are boats moored?"}),
        )
        .await;
    assert_eq!(answer.status(), 200);
    answer.text().await.unwrap();
}

/// Everything [`populate`] made, read through `berth`'s API.
async fn assert_all_there(berth: &Berth) {
    let mut admin = Browser::new(berth);
    assert_eq!(admin.sign_in("root", ADMIN_PW).await, StatusCode::OK);
    let mut carol = Browser::new(berth);
    assert_eq!(carol.sign_in("carol", USER_PW).await, StatusCode::OK);
    let collections = json(admin.get("/collections").await).await.to_string();
    assert!(collections.contains("harbour"), "{collections}");
    let conversations = json(admin.get("/conversations").await).await;
    let listed = conversations.to_string();
    assert!(listed.contains("\"id\""), "no conversation: {listed}");
    let found = json(
        admin
            .post("/search", json!({"query": "north harbour berth", "k": 3}))
            .await,
    )
    .await;
    assert!(found.to_string().contains("berth 14"), "{found}");
}

#[tokio::test]
#[ignore = "needs the previous release's binary: cargo xtask upgrade-test"]
async fn the_previous_releases_data_survives_the_upgrade_and_its_backup_restores() {
    let previous = previous_bin();
    let site = tempfile::tempdir().unwrap();
    let data = site.path().join("data");
    let backups = site.path().join("backups");

    let old = Berth::start_bin(&previous, "serve", &data, &[], &[]);
    populate(&old, &previous).await;
    let (code, out) = run(
        &previous,
        &["backup", "create", "--dir", backups.to_str().unwrap()],
        &data,
        "",
    );
    assert_eq!(code, 0, "the previous release's backup: {out}");
    // Its standard output is the archive's path alone (progress goes to stderr).
    let archive = out
        .lines()
        .map(str::trim)
        .find(|l| l.ends_with(".tar.gz") && !l.contains(' '))
        .unwrap_or_else(|| panic!("no archive path in: {out}"))
        .to_string();

    // The current build on the same data: it applies its migrations (expand only, so the
    // previous release may still run: on PostgreSQL they run side by side, as during a deploy).
    let old = if postgres_backend() {
        Some(old)
    } else {
        old.stop();
        None
    };
    let (code, out) = run(Path::new(BIN), &["migrate", "up"], &data, "");
    assert_eq!(code, 0, "migrating the previous release's data: {out}");
    let new = Berth::start_with(&data, &["--no-migrate"], &[]);
    assert_all_there(&new).await;
    if let Some(old) = old {
        // The expand phase: the previous release still serves on the migrated schema.
        assert_all_there(&old).await;
        old.stop();
    }
    new.stop();

    // The previous release's backup restores into the current build, which migrates it.
    let restored = site.path().join("restored");
    let (code, out) = run(
        Path::new(BIN),
        &["restore", &archive, "--yes"],
        &restored,
        "",
    );
    assert_eq!(code, 0, "restoring the previous release's backup: {out}");
    let new = Berth::start(&restored);
    assert_all_there(&new).await;
    new.stop();
}
