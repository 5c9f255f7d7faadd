//! Data archives: a restore brings back exactly what was backed up; verify, refusal of damaged
//! or foreign archives, and rotation.

use super::*;

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
    // Later than any migration version (they are timestamps now: 9999-12-31 23:59:59).
    rewrite_manifest(&archive, &newer, |m| {
        m["migration_level"] = json!(99_991_231_235_959_i64)
    });
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
