//! The store's contract: lexical and vector search over ready documents.

use super::*;

cases! {
    async fn lexical_search_sees_ready_documents_in_the_given_collections(store, location) {
        with_collections(&store).await;
        insert_doc(&store, &doc("a", "c1", "h1", 10)).await;
        insert_doc(&store, &doc("b", "c2", "h2", 20)).await;
        insert_doc(&store, &doc("q", "c1", "h3", 30)).await;
        let a = ingest(&store, "a", &["Invoices are paid within thirty days.", "Lunch is at noon."], None).await;
        let b = ingest(&store, "b", &["Late invoices incur a fee.", "Invoices invoices invoices."], None).await;
        // "q" is claimed but never completed: never found.
        store.claim_document(1_000, 60_000).await.unwrap().unwrap();
        let c1 = vec!["c1".to_string()];
        let c2 = vec!["c2".to_string()];
        let both = vec!["c1".to_string(), "c2".to_string()];
        let t = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ids = |h: Vec<(i64, f64)>| h.into_iter().map(|x| x.0).collect::<Vec<_>>();
        assert_eq!(ids(store.lexical_search(&t(&["invoices"]), &c1, 10).await.unwrap()), [a[0]]);
        assert_eq!(sorted(ids(store.lexical_search(&t(&["invoices"]), &c2, 10).await.unwrap())), sorted(b.clone()));
        let all = store.lexical_search(&t(&["invoices"]), &both, 10).await.unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.windows(2).all(|w| w[0].1 >= w[1].1), "best first: {all:?}");
        assert_eq!(all[0].0, b[1], "the chunk saying it three times ranks first: {all:?}");
        // Any term may match; the limit holds; nothing for no terms, no collections, or unknown words.
        assert_eq!(sorted(ids(store.lexical_search(&t(&["lunch", "fee"]), &both, 10).await.unwrap())), sorted(vec![a[1], b[0]]));
        assert_eq!(store.lexical_search(&t(&["invoices"]), &both, 2).await.unwrap().len(), 2);
        assert!(store.lexical_search(&[], &both, 10).await.unwrap().is_empty());
        assert!(store.lexical_search(&t(&["invoices"]), &[], 10).await.unwrap().is_empty());
        assert!(store.lexical_search(&t(&["zeppelin"]), &both, 10).await.unwrap().is_empty());
        // User text is never query syntax.
        for odd in ["\"in\"voices", "invoices OR", "-invoices", "(invoices", "inv*", "'", "\"", "NEAR"] {
            store.lexical_search(&t(&[odd]), &both, 10).await.unwrap();
        }
    }

    async fn search_leaves_out_terms_too_common_to_rank_by(store, location) {
        // 2,100 chunks hold "alpha" and "beta" (in every chunk: far past the common-term share);
        // three also hold "zeta".
        with_collections(&store).await;
        insert_doc(&store, &doc("a", "c1", "h1", 10)).await;
        let texts: Vec<String> = (0..2_100)
            .map(|i| match i % 700 {
                0 => format!("alpha beta zeta filler{i}"),
                _ => format!("alpha beta alpha filler{i}"),
            })
            .collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let ids = ingest(&store, "a", &texts, None).await;
        let zeta: Vec<i64> = vec![ids[0], ids[700], ids[1400]];
        let retriever = berth::service::retrieval::Retriever::open(
            store.clone(),
            None,
            &berth::config::Settings::defaults().rag,
            berth::metrics::Metrics::new(),
        )
        .await
        .unwrap();
        let c1 = vec!["c1".to_string()];
        let found = |hits: Vec<berth::service::retrieval::Hit>| {
            sorted(hits.into_iter().map(|h| h.chunk.id).collect::<Vec<_>>())
        };
        // "alpha" is left out beside the rarer "zeta": only zeta's chunks match, where an OR of
        // both terms would fill all ten places with alpha's.
        let (_, hits) = retriever.search("alpha zeta", &c1, 10).await.unwrap();
        assert_eq!(found(hits), zeta);
        // Alone, or with only other common terms, a common term is still searched.
        assert_eq!(retriever.search("alpha", &c1, 10).await.unwrap().1.len(), 10);
        assert_eq!(retriever.search("alpha beta", &c1, 10).await.unwrap().1.len(), 10);
    }

    async fn vectors_are_stored_per_model_and_searched(store, location) {
        with_collections(&store).await;
        insert_doc(&store, &doc("a", "c1", "h1", 10)).await;
        insert_doc(&store, &doc("b", "c2", "h2", 20)).await;
        let va = vec![vec![1.0f32, 0.0, 0.0], vec![0.0, 1.0, 0.0]];
        let a = ingest(&store, "a", &["one", "two"], Some(("m1", &va))).await;
        let b = ingest(&store, "b", &["three"], None).await;
        let both = vec!["c1".to_string(), "c2".to_string()];
        // b has no vector from m1; a has all.
        let missing: Vec<_> = store.chunks_missing_vectors("m1", 10).await.unwrap();
        assert_eq!(missing, [(b[0], "c2".to_string(), "three".to_string())]);
        assert_eq!(store.chunks_missing_vectors("m2", 10).await.unwrap().len(), 3);
        assert_eq!(store.chunks_missing_vectors("m2", 2).await.unwrap().len(), 2);
        store.put_vectors("m1", &[(b[0], vec![0.6, 0.8, 0.0])]).await.unwrap();
        assert!(store.chunks_missing_vectors("m1", 10).await.unwrap().is_empty());
        match &store {
            Store::Postgres(_) => {
                let hits = store.pg_vector_search(&[0.0, 1.0, 0.0], "m1", &both, 10).await.unwrap();
                assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [a[1], b[0], a[0]]);
                assert!((hits[0].1 - 1.0).abs() < 1e-6 && (hits[1].1 - 0.8).abs() < 1e-6 && hits[2].1.abs() < 1e-6, "{hits:?}");
                let c1 = vec!["c1".to_string()];
                assert_eq!(store.pg_vector_search(&[0.0, 1.0, 0.0], "m1", &c1, 1).await.unwrap()[0].0, a[1]);
                assert!(store.pg_vector_search(&[0.0, 1.0, 0.0], "m2", &both, 10).await.unwrap().is_empty());
                // Another dimension never mixes in.
                assert!(store.pg_vector_search(&[0.0, 1.0], "m1", &both, 10).await.unwrap().is_empty());
                assert!(store.sqlite_vectors("m1").await.unwrap().is_empty());
                // The HNSW index for the dimension, created once (again is a no-op), is the one
                // the search's ORDER BY uses.
                store.ensure_vector_index(3).await.unwrap();
                store.ensure_vector_index(3).await.unwrap();
                assert_eq!(raw_count(&store, "SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'chunk_vectors_hnsw_3'").await, 1);
                let Store::Postgres(pg) = &store else { unreachable!() };
                let mut conn = pg.pool.acquire().await.unwrap();
                sqlx::query("SET enable_seqscan = off").execute(&mut *conn).await.unwrap();
                let plan: Vec<String> = sqlx::query_scalar(
                    "EXPLAIN SELECT v.chunk_id FROM chunk_vectors v WHERE v.dim = 3 \
                     ORDER BY v.embedding::vector(3) <=> '[0,1,0]'::vector(3) LIMIT 5",
                )
                .fetch_all(&mut *conn)
                .await
                .unwrap();
                sqlx::query("RESET enable_seqscan").execute(&mut *conn).await.unwrap();
                assert!(plan.join("\n").contains("chunk_vectors_hnsw_3"), "{plan:#?}");
                drop(conn);
                let hits = store.pg_vector_search(&[0.0, 1.0, 0.0], "m1", &both, 10).await.unwrap();
                assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [a[1], b[0], a[0]]);
            }
            Store::Sqlite(_) => {
                let mut rows: Vec<_> = store
                    .sqlite_vectors("m1")
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|(id, c, v)| (id, c, berth::store::blob_to_f32s(&v)))
                    .collect();
                rows.sort_by_key(|r| r.0);
                assert_eq!(rows, [
                    (a[0], "c1".to_string(), va[0].clone()),
                    (a[1], "c1".to_string(), va[1].clone()),
                    (b[0], "c2".to_string(), vec![0.6, 0.8, 0.0]),
                ]);
                assert!(store.pg_vector_search(&[0.0, 1.0, 0.0], "m1", &both, 10).await.unwrap().is_empty());
            }
        }
        // Replacing a vector with another model's.
        store.put_vectors("m2", &[(a[0], vec![0.0, 0.0, 1.0])]).await.unwrap();
        assert_eq!(store.chunks_missing_vectors("m1", 10).await.unwrap(), [(a[0], "c1".to_string(), "one".to_string())]);
    }
}
