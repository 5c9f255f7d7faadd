//! A backup under stress: killed midway, or taken while requests write.

use super::*;

#[tokio::test]
async fn a_backup_killed_midway_leaves_no_archive_behind() {
    let (site, _) = populated().await;
    // One big uploaded file makes the backup slow enough to kill while it writes.
    let id = plant_legacy_file(&site.data(), b"").await;
    let mut big = std::fs::File::create(site.data().join("files").join(&id)).unwrap();
    let mut block = vec![0u8; 1 << 20];
    // xorshift64: bytes gzip cannot shrink, so writing them takes a while.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..96 {
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes());
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
    // At once: a fast machine finished the whole backup in the 200 ms this test used to wait.
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
