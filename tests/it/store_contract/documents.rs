//! The store's contract: documents and their ingestion queue: one per content hash, claims, leases, retries, chunks.

use super::*;

cases! {
    async fn documents_insert_once_per_content_hash(store, location) {
        with_collections(&store).await;
        insert_doc(&store, &doc("d1", "c1", "h1", 10)).await;
        // The same content in the same collection names the existing document.
        assert_eq!(store.insert_document(&doc("d2", "c1", "h1", 11)).await.unwrap().as_deref(), Some("d1"));
        // In another collection it is a new document.
        insert_doc(&store, &doc("d3", "c2", "h1", 12)).await;
        let d1 = store.document("d1").await.unwrap().unwrap();
        assert_eq!(
            (d1.collection_id.as_str(), d1.filename.as_str(), d1.status.as_str(), d1.size, d1.created_at, d1.updated_at),
            ("c1", "d1.txt", "queued", 10, 10, 10)
        );
        assert_eq!((d1.progress, d1.chunk_count, d1.attempts, d1.error), (0.0, 0, 0, None));
        assert!(store.document("d2").await.unwrap().is_none());
        let ids: Vec<_> = store.documents_in("c1").await.unwrap().into_iter().map(|d| d.id).collect();
        assert_eq!(ids, ["d1"]);
        assert_eq!(store.collection("c1").await.unwrap().unwrap().document_count, 1);
        assert_eq!(store.queue_depth().await.unwrap(), 2);
        store.delete_document("d1").await.unwrap();
        assert!(store.document("d1").await.unwrap().is_none());
        assert_eq!(store.queue_depth().await.unwrap(), 1);
    }

    async fn uploaded_bytes_live_with_their_document(store, location) {
        with_collections(&store).await;
        let bytes = b"%PDF-1.7 \x00\xff binary bytes survive".to_vec();
        assert_eq!(store.insert_document_with_file(&doc("d1", "c1", "h1", 10), &bytes).await.unwrap(), None);
        assert_eq!(store.document_file("d1").await.unwrap(), Some(bytes.clone()));
        // A duplicate names the existing document and stores nothing.
        let dup = store.insert_document_with_file(&doc("d2", "c1", "h1", 11), b"other").await.unwrap();
        assert_eq!(dup.as_deref(), Some("d1"));
        assert!(store.document("d2").await.unwrap().is_none());
        assert_eq!(store.document_file("d2").await.unwrap(), None);
        assert_eq!(raw_count(&store, "SELECT COUNT(*) FROM document_files").await, 1);
        // Documents inserted without bytes (before migration 4) have none in the database.
        insert_doc(&store, &doc("d3", "c2", "h1", 12)).await;
        assert_eq!(store.document_file("d3").await.unwrap(), None);
        // Deleting the document deletes its bytes.
        store.delete_document("d1").await.unwrap();
        assert_eq!(store.document_file("d1").await.unwrap(), None);
        assert_eq!(raw_count(&store, "SELECT COUNT(*) FROM document_files").await, 0);
    }

    async fn concurrent_claimers_never_share_a_document(store, location) {
        with_collections(&store).await;
        for i in 0..20 {
            insert_doc(&store, &doc(&format!("d{i:02}"), "c1", &format!("h{i}"), 100 + i)).await;
        }
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(d) = store.claim_document(1_000, 60_000).await.unwrap() {
                    assert_eq!((d.status.as_str(), d.attempts), ("processing", 1));
                    mine.push(d.id);
                    tokio::task::yield_now().await;
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let expected: Vec<_> = (0..20).map(|i| format!("d{i:02}")).collect();
        assert_eq!(sorted(all), expected, "each document claimed exactly once");
        assert!(store.claim_document(1_000, 60_000).await.unwrap().is_none());
        assert_eq!(store.queue_depth().await.unwrap(), 20);
    }

    async fn claims_go_oldest_first_and_expired_leases_are_reclaimed(store, location) {
        with_collections(&store).await;
        insert_doc(&store, &doc("late", "c1", "h2", 20)).await;
        insert_doc(&store, &doc("early", "c1", "h1", 10)).await;
        let first = store.claim_document(1_000, 500).await.unwrap().unwrap();
        assert_eq!((first.id.as_str(), first.status.as_str(), first.attempts, first.updated_at), ("early", "processing", 1, 1_000));
        let second = store.claim_document(1_000, 500).await.unwrap().unwrap();
        assert_eq!(second.id, "late");
        store.set_progress("early", 0.5, 1_600).await.unwrap();
        assert_eq!(store.document("early").await.unwrap().unwrap().progress, 0.5);
        // Within the leases nothing is claimable; after "late"'s lease (1_500) it is, again.
        assert!(store.claim_document(1_400, 500).await.unwrap().is_none());
        let again = store.claim_document(1_550, 500).await.unwrap().unwrap();
        assert_eq!((again.id.as_str(), again.attempts, again.progress), ("late", 2, 0.0));
        assert!(store.claim_document(1_550, 500).await.unwrap().is_none());
        // release_claims puts every processing document back.
        assert_eq!(store.release_claims().await.unwrap(), 2);
        assert_eq!(store.document("early").await.unwrap().unwrap().status, "queued");
        assert_eq!(store.claim_document(1_550, 500).await.unwrap().unwrap().id, "early");
    }

    async fn requeue_fail_and_retry(store, location) {
        with_collections(&store).await;
        insert_doc(&store, &doc("d1", "c1", "h1", 10)).await;
        let d = store.claim_document(1_000, 60_000).await.unwrap().unwrap();
        assert_eq!(d.attempts, 1);
        // A transient failure: queued again, not due before 5_000, the attempt not counted.
        store.requeue_document("d1", 5_000, "model server down").await.unwrap();
        let d = store.document("d1").await.unwrap().unwrap();
        assert_eq!((d.status.as_str(), d.attempts, d.error.as_deref()), ("queued", 0, Some("model server down")));
        assert!(store.claim_document(4_999, 60_000).await.unwrap().is_none());
        let d = store.claim_document(5_000, 60_000).await.unwrap().unwrap();
        assert_eq!((d.id.as_str(), d.attempts), ("d1", 1));
        // Requeueing what is not processing does nothing.
        store.fail_document("d1", "bad pdf", 6_000).await.unwrap();
        store.requeue_document("d1", 0, "x").await.unwrap();
        let d = store.document("d1").await.unwrap().unwrap();
        assert_eq!((d.status.as_str(), d.error.as_deref(), d.updated_at), ("failed", Some("bad pdf"), 6_000));
        assert!(store.claim_document(10_000, 60_000).await.unwrap().is_none());
        assert_eq!(store.queue_depth().await.unwrap(), 0);
        // Only a failed document is retried.
        assert!(store.retry_document("d1", 7_000).await.unwrap());
        assert!(!store.retry_document("d1", 7_001).await.unwrap());
        assert!(!store.retry_document("nope", 7_001).await.unwrap());
        let d = store.document("d1").await.unwrap().unwrap();
        assert_eq!((d.status.as_str(), d.error, d.attempts, d.updated_at), ("queued", None, 0, 7_000));
        assert_eq!(store.claim_document(7_000, 60_000).await.unwrap().unwrap().id, "d1");
    }

    async fn completed_chunks_become_visible_only_then(store, location) {
        with_collections(&store).await;
        insert_doc(&store, &doc("d1", "c1", "h1", 10)).await;
        let terms = vec!["harbour".to_string()];
        let both = vec!["c1".to_string(), "c2".to_string()];
        // Not ours to complete before it is claimed.
        let texts = ["The harbour master keeps the tide tables.", "Ships berth at the quay."];
        assert_eq!(store.complete_document("d1", "x", &chunks(&texts), None, 5).await.unwrap(), None);
        assert!(store.chunk_ids_of("d1").await.unwrap().is_empty());
        store.claim_document(1_000, 60_000).await.unwrap().unwrap();
        assert!(store.lexical_search(&terms, &both, 10, store.corpus().await.unwrap()).await.unwrap().is_empty());
        let ids = store
            .complete_document("d1", &texts.join(" "), &chunks(&texts), None, 2_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(sorted(store.chunk_ids_of("d1").await.unwrap()), sorted(ids.clone()));
        let d = store.document("d1").await.unwrap().unwrap();
        assert_eq!((d.status.as_str(), d.progress, d.chunk_count, d.updated_at), ("ready", 1.0, 2, 2_000));
        assert_eq!(store.document_text("d1").await.unwrap().as_deref(), Some(texts.join(" ").as_str()));
        let rows = store.chunks_by_ids(&ids).await.unwrap();
        let mut rows: Vec<_> = rows.into_iter().map(|c| (c.ordinal, c.text, c.document_name, c.collection_id, c.start_offset)).collect();
        rows.sort();
        assert_eq!(rows[0], (0, texts[0].to_string(), "d1.txt".to_string(), "c1".to_string(), 0));
        assert_eq!(rows[1].0, 1);
        let hits = store.lexical_search(&terms, &both, 10, store.corpus().await.unwrap()).await.unwrap();
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [ids[0]]);
        assert!(hits[0].1 > 0.0);
        // Completing twice is refused: it is no longer processing.
        assert_eq!(store.complete_document("d1", "x", &chunks(&texts), None, 3_000).await.unwrap(), None);
        // Deleting the document drops its chunks.
        store.delete_document("d1").await.unwrap();
        assert!(store.chunks_by_ids(&ids).await.unwrap().is_empty());
        assert!(store.lexical_search(&terms, &both, 10, store.corpus().await.unwrap()).await.unwrap().is_empty());
    }
}
