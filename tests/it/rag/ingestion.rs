//! Uploads and their ingestion: checked by content, deduplicated, waited for, retried, never half
//! visible, and PDF/DOCX text extracted.

use super::*;

/// A server refusing uploads over 1 MB, with a signed-in admin and a collection `c`.
async fn small_uploads() -> (tempfile::TempDir, Berth, Browser, String) {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(dir.path(), &[], &[("BERTH_MAX_UPLOAD_MB", "1")]);
    create_admin(dir.path(), "root", PW);
    let mut me = Browser::new(&berth);
    me.sign_in("root", PW).await;
    let c = json(me.post("/collections", json!({"name": "c"})).await).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    (dir, berth, me, c)
}

/// An HTML page with a script, uploaded under a `.txt` name.
const MENU: &[u8] = b"<!DOCTYPE html><html><body><h1>Menu</h1><p>Soup &amp; bread</p><script>x()</script></body></html>";

/// Uploads [`MENU`] as `menu.txt` into `c` and waits until it is ready: the upload's answer.
async fn upload_menu(me: &Browser, c: &str) -> Value {
    let resp = me.upload(c, "menu.txt", MENU.to_vec()).await;
    assert_eq!(resp.status(), 202, "uploading menu.txt");
    let doc = json(resp).await;
    let id = doc["id"].as_str().unwrap();
    me.wait_status(id, "ready", Duration::from_secs(10)).await;
    doc
}

#[tokio::test]
async fn an_upload_refused_for_its_content_names_the_reason_and_leaves_no_temp_file() {
    let (dir, _berth, me, c) = small_uploads().await;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("empty.txt", vec![], 422, "empty"),
        (
            "program.txt",
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec(),
            415,
            "unsupported_type",
        ),
        (
            "broken.pdf",
            b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\nnonsense".to_vec(),
            422,
            "malformed",
        ),
        (
            "locked.pdf",
            b"%PDF-1.4\n%stuff\ntrailer\n<< /Root 1 0 R /Encrypt 2 0 R >>\n%%EOF".to_vec(),
            422,
            "encrypted",
        ),
        (
            "archive.zip",
            b"PK\x03\x04\x14\0\0\0\0\0".to_vec(),
            415,
            "unsupported_type",
        ),
        ("huge.txt", vec![b'a'; (1 << 20) + 10], 413, "too_large"),
    ];
    for (name, bytes, status, code) in cases {
        let resp = me.upload(&c, name, bytes).await;
        assert_eq!(resp.status().as_u16(), status, "{name}");
        let body = json(resp).await;
        let got = body["error"]["details"]["reason"]
            .as_str()
            .or(body["error"]["code"].as_str())
            .unwrap();
        assert_eq!(got, code, "{name}: {body}");
        assert!(
            !body["error"]["message"].as_str().unwrap().is_empty(),
            "{name}: no message: {body}"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0,
        "no temp files left"
    );
}

#[tokio::test]
async fn an_uploads_type_comes_from_its_content_not_its_name() {
    let (_dir, _berth, me, c) = small_uploads().await;
    let doc = upload_menu(&me, &c).await;
    assert_eq!(doc["media_type"], "text/html", "HTML named .txt: {doc}");
    assert_eq!(
        search(&me, "soup").await["results"][0]["text"],
        "# Menu\n\nSoup & bread",
        "the page's text, without markup or script; its heading as Markdown's"
    );
}

#[tokio::test]
async fn the_same_content_uploaded_again_is_reported_not_re_indexed() {
    let (_dir, _berth, me, c) = small_uploads().await;
    let doc = upload_menu(&me, &c).await;
    let resp = me.upload(&c, "menu-copy.html", MENU.to_vec()).await;
    assert_eq!(resp.status(), 409, "the same bytes under another name");
    let body = json(resp).await;
    assert_eq!(body["error"]["code"], "duplicate", "{body}");
    assert_eq!(body["error"]["details"]["document_id"], doc["id"], "{body}");
}

/// Uploaded HTML comes back as text in a sandbox: it never runs on Berth's origin.
#[tokio::test]
async fn a_download_returns_the_original_bytes_as_sandboxed_text() {
    let (_dir, _berth, me, c) = small_uploads().await;
    let doc = upload_menu(&me, &c).await;
    let id = doc["id"].as_str().unwrap();
    let file = me.get(&format!("/documents/{id}/file")).await;
    assert_eq!(file.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        file.headers()["content-security-policy"],
        "sandbox; default-src 'none'"
    );
    assert!(
        file.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment"),
        "not an attachment: {:?}",
        file.headers()["content-disposition"]
    );
    assert_eq!(
        file.bytes().await.unwrap().as_ref(),
        MENU,
        "the downloaded bytes differ from the uploaded ones"
    );
}

#[tokio::test]
async fn deleting_a_document_removes_its_chunks_vectors_and_file() {
    let (dir, _berth, me, c) = small_uploads().await;
    let doc = upload_menu(&me, &c).await;
    let id = doc["id"].as_str().unwrap();
    let resp = me
        .send(Method::DELETE, &format!("/documents/{id}"), json!({}))
        .await;
    assert_eq!(resp.status(), 204, "deleting the document");
    assert_eq!(
        search(&me, "soup").await["results"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "a deleted document's chunks are still found"
    );
    assert_eq!(
        me.get(&format!("/documents/{id}/file")).await.status(),
        404,
        "a deleted document's file is still served"
    );
    assert!(
        !dir.path().join("files").join(id).exists(),
        "a deleted document's file is still on disk"
    );
}

#[tokio::test]
async fn ingestion_waits_for_the_embedding_server_and_failed_jobs_can_be_retried() {
    let model = ModelServer::start();
    let f = fixture(&model_env(&model, "ollama")).await;

    // Down (HTTP 503): the document waits in the queue, then completes once the server is back.
    model.set(|b| b.embed_fail_status = Some(503));
    let resp =
        f.me.upload(
            &f.collection,
            "a.txt",
            b"Alpha document about rockets.".to_vec(),
        )
        .await;
    let id = json(resp).await["id"].as_str().unwrap().to_string();
    let start = Instant::now();
    loop {
        let doc = json(f.me.get(&format!("/documents/{id}")).await).await;
        if doc["error"]
            .as_str()
            .is_some_and(|e| e.contains("unavailable"))
        {
            assert_eq!(doc["status"], "queued", "{doc}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{doc}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    model.set(|b| b.embed_fail_status = None);
    f.me.wait_status(&id, "ready", Duration::from_secs(20))
        .await;

    // Refused (HTTP 400): the document fails with the reason, and a retry succeeds.
    model.set(|b| b.embed_fail_status = Some(400));
    let resp =
        f.me.upload(
            &f.collection,
            "b.txt",
            b"Beta document about boats.".to_vec(),
        )
        .await;
    let id = json(resp).await["id"].as_str().unwrap().to_string();
    let doc =
        f.me.wait_status(&id, "failed", Duration::from_secs(15))
            .await;
    assert!(
        doc["error"].as_str().unwrap().contains("embedding"),
        "{doc}"
    );
    assert_eq!(
        search(&f.me, "boats").await["results"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    model.set(|b| b.embed_fail_status = None);
    let resp =
        f.me.post(&format!("/documents/{id}/retry"), json!({}))
            .await;
    assert_eq!(resp.status(), 202);
    f.me.wait_status(&id, "ready", Duration::from_secs(15))
        .await;
    assert_eq!(
        search(&f.me, "boats").await["results"][0]["document_id"],
        id.as_str()
    );
}

#[tokio::test]
async fn sigkill_mid_ingest_never_exposes_a_partial_document() {
    let model = ModelServer::start();
    let mut env = model_env(&model, "ollama");
    env.push(("BERTH_CHUNK_SIZE".into(), "200".into()));
    env.push(("BERTH_CHUNK_OVERLAP".into(), "20".into()));
    let mut f = fixture(&env).await;
    // Many chunks and a slow embedder: the kill lands in the middle of embedding.
    model.set(|b| b.embed_delay = Duration::from_millis(300));
    let text: String = (0..400)
        .map(|i| format!("Paragraph {i} describes the zebra number {i} in careful detail.\n\n"))
        .collect();
    let resp =
        f.me.upload(&f.collection, "zebras.txt", text.into_bytes())
            .await;
    let id = json(resp).await["id"].as_str().unwrap().to_string();
    let start = Instant::now();
    loop {
        let doc = json(f.me.get(&format!("/documents/{id}")).await).await;
        if doc["status"] == "processing" && doc["progress"].as_f64().unwrap() > 0.0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{doc}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f.berth.signal("KILL");
    f.berth.wait(Duration::from_secs(5));

    let chunks = db_strings(
        f._dir.path(),
        &format!("SELECT CAST(COUNT(*) AS TEXT) FROM chunks WHERE document_id = '{id}'"),
    )
    .await;
    assert_eq!(chunks, ["0"], "no partial chunks were committed");
    if support::postgres_backend() {
        // Another instance could still be working: the claim ends only when its lease runs out
        // (60 s). Let it run out now rather than wait.
        let sql = format!("UPDATE documents SET lease_until = 0 WHERE id = '{id}'");
        support::db_execute(f._dir.path(), &sql).await.unwrap();
    }

    // Restarted: searches never see a partial document, and it completes.
    model.set(|b| b.embed_delay = Duration::from_millis(0));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let berth = Berth::start_with(f._dir.path(), &[], &env);
    let mut me = Browser::new(&berth);
    me.sign_in("root", PW).await;
    let mut saw_partial = false;
    let start = Instant::now();
    loop {
        // Search before reading the status: status only moves forward, so hits followed by a
        // not-ready status prove a partial document was visible (the other order races the worker).
        let hits = search(&me, "zebra").await["results"]
            .as_array()
            .unwrap()
            .len();
        let doc = json(me.get(&format!("/documents/{id}")).await).await;
        if doc["status"] != "ready" && hits > 0 {
            saw_partial = true;
        }
        if doc["status"] == "ready" {
            assert!(doc["chunk_count"].as_i64().unwrap() > 0);
            break;
        }
        assert!(doc["status"] != "failed" || doc["error"].is_string());
        assert!(start.elapsed() < Duration::from_secs(60), "{doc}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !saw_partial,
        "search returned chunks of an unfinished document"
    );
    assert_eq!(
        search(&me, "zebra number 399").await["results"][0]["document_id"],
        id.as_str()
    );
}

/// A one-page PDF with a real text layer (Helvetica), with a correct cross-reference table.
fn pdf_with_text(text: &str) -> Vec<u8> {
    support::files::pdf(&[text.to_string()])
}

/// A minimal Word document: the parts a DOCX reader needs, zipped.
fn docx_with_paragraphs(paragraphs: &[&str]) -> Vec<u8> {
    use std::io::Write;
    let body: String = paragraphs
        .iter()
        .map(|p| format!("<w:p><w:r><w:t>{p}</w:t></w:r></w:p>"))
        .collect();
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
         <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
         <w:body>{body}</w:body></w:document>"
    );
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file("[Content_Types].xml", opts).unwrap();
    zip.write_all(b"<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>").unwrap();
    zip.start_file("word/document.xml", opts).unwrap();
    zip.write_all(document.as_bytes()).unwrap();
    zip.finish().unwrap().into_inner()
}

#[tokio::test]
async fn pdf_and_docx_text_is_extracted_and_searchable() {
    let f = fixture(&[]).await;
    let resp =
        f.me.upload(
            &f.collection,
            "report.pdf",
            pdf_with_text("Quarterly revenue grew by twelve percent"),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let pdf = json(resp).await;
    assert_eq!(pdf["media_type"], "application/pdf");
    f.me.wait_status(
        pdf["id"].as_str().unwrap(),
        "ready",
        Duration::from_secs(20),
    )
    .await;
    let hits = search(&f.me, "quarterly revenue").await;
    assert_eq!(hits["results"][0]["document_name"], "report.pdf", "{hits}");
    assert!(hits["results"][0]["text"]
        .as_str()
        .unwrap()
        .contains("twelve percent"));

    let docx = docx_with_paragraphs(&[
        "Onboarding checklist",
        "Collect the badge from reception &amp; sign the register.",
    ]);
    let resp = f.me.upload(&f.collection, "onboarding.docx", docx).await;
    assert_eq!(resp.status(), 202);
    let doc = json(resp).await;
    assert!(doc["media_type"]
        .as_str()
        .unwrap()
        .contains("wordprocessingml"));
    f.me.wait_status(
        doc["id"].as_str().unwrap(),
        "ready",
        Duration::from_secs(20),
    )
    .await;
    let hits = search(&f.me, "badge reception").await;
    assert_eq!(
        hits["results"][0]["document_name"], "onboarding.docx",
        "{hits}"
    );
    assert!(hits["results"][0]["text"]
        .as_str()
        .unwrap()
        .contains("reception & sign"));
}

/// Sixteen uploads at once, three times over, while ingestion writes chunks: SQLite has one
/// writer at a time, and none of them may see "database is locked" (nor any other 5xx); each
/// becomes ready. (Before write transactions began IMMEDIATE, every run here logged two or three.)
#[tokio::test]
async fn parallel_uploads_all_become_ready_with_no_lock_error() {
    let (_dir, berth, me, c) = small_uploads().await;
    let me = std::sync::Arc::new(me);
    // Three rounds: each round's uploads land while the previous round is being ingested.
    let uploads = (0..48).map(|i| {
        let (me, c) = (me.clone(), c.clone());
        tokio::spawn(async move {
            let text: String = (0..3000)
                .map(|n| {
                    format!(
                        "Paragraph {n} of file {i}: harbour berth number {}.\n\n",
                        n * i
                    )
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(150 * (i / 16))).await;
            let resp = me.upload(&c, &format!("f{i}.txt"), text.into_bytes()).await;
            let status = resp.status();
            (status, resp.text().await.unwrap())
        })
    });
    let mut ids = Vec::new();
    for upload in uploads.collect::<Vec<_>>() {
        let (status, body) = upload.await.unwrap();
        assert_eq!(status, 202, "{body}");
        ids.push(
            serde_json::from_str::<Value>(&body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for id in &ids {
        me.wait_status(id, "ready", Duration::from_secs(120)).await;
    }
    let logs = berth.stop();
    let locked: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains("database is locked"))
        .collect();
    assert!(
        locked.is_empty(),
        "{} lock errors, e.g. {:?}",
        locked.len(),
        locked.first()
    );
}
