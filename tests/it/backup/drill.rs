//! The restore drill: restores into scratch, serves, signs in, searches, and leaves nothing behind.

use super::*;

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
