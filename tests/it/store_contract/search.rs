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
        let corpus = store.corpus().await.unwrap();
        let c1 = vec!["c1".to_string()];
        let c2 = vec!["c2".to_string()];
        let both = vec!["c1".to_string(), "c2".to_string()];
        let t = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ids = |h: Vec<(i64, f64)>| h.into_iter().map(|x| x.0).collect::<Vec<_>>();
        assert_eq!(ids(store.lexical_search(&t(&["invoices"]), &c1, 10, corpus).await.unwrap()), [a[0]]);
        assert_eq!(sorted(ids(store.lexical_search(&t(&["invoices"]), &c2, 10, corpus).await.unwrap())), sorted(b.clone()));
        let all = store.lexical_search(&t(&["invoices"]), &both, 10, corpus).await.unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.windows(2).all(|w| w[0].1 >= w[1].1), "best first: {all:?}");
        assert_eq!(all[0].0, b[1], "the chunk saying it three times ranks first: {all:?}");
        // Any term may match; the limit holds; nothing for no terms, no collections, or unknown words.
        assert_eq!(sorted(ids(store.lexical_search(&t(&["lunch", "fee"]), &both, 10, corpus).await.unwrap())), sorted(vec![a[1], b[0]]));
        assert_eq!(store.lexical_search(&t(&["invoices"]), &both, 2, corpus).await.unwrap().len(), 2);
        assert!(store.lexical_search(&[], &both, 10, corpus).await.unwrap().is_empty());
        assert!(store.lexical_search(&t(&["invoices"]), &[], 10, corpus).await.unwrap().is_empty());
        assert!(store.lexical_search(&t(&["zeppelin"]), &both, 10, corpus).await.unwrap().is_empty());
        // User text is never query syntax.
        for odd in ["\"in\"voices", "invoices OR", "-invoices", "(invoices", "inv*", "'", "\"", "NEAR"] {
            store.lexical_search(&t(&[odd]), &both, 10, corpus).await.unwrap();
        }
    }

    async fn every_run_of_letters_and_digits_is_a_term(store, location) {
        // As FTS5's unicode61 splits text: dotted names, file names, addresses and hyphenated
        // words are found by their parts (PostgreSQL's parser alone keeps most of them whole).
        with_collections(&store).await;
        insert_doc(&store, &doc("a", "c1", "h1", 10)).await;
        let texts = ["Call os.path.join(a, b) to join them.", "See qemu-img.1 for the options.",
                     "Write to someone@example.com or visit https://docs.example.org/v2/faq.", "Nothing here."];
        let ids = ingest(&store, "a", &texts, None).await;
        let corpus = store.corpus().await.unwrap();
        let c1 = vec!["c1".to_string()];
        for (term, want) in [("path", ids[0]), ("os", ids[0]), ("img", ids[1]), ("qemu", ids[1]),
                             ("someone", ids[2]), ("faq", ids[2]), ("v2", ids[2])] {
            let hits = store.lexical_search(&[term.to_string()], &c1, 10, corpus).await.unwrap();
            assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [want], "{term}");
        }
    }

    async fn lexical_ranking_is_exhaustive_bm25(store, location) {
        // 60 chunks of words whose stems are themselves, drawn unevenly (so some words are in
        // most chunks, some in few) with uneven lengths; 45 in c1, 15 in c2.
        with_collections(&store).await;
        insert_doc(&store, &doc("a", "c1", "h1", 10)).await;
        insert_doc(&store, &doc("b", "c2", "h2", 20)).await;
        const WORDS: [&str; 12] = ["cat", "dog", "fox", "owl", "elk", "yak", "emu", "gnu", "ram", "bat", "hen", "cow"];
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        let texts: Vec<String> = (0..60)
            .map(|_| {
                let len = 3 + next() % 14;
                // The square skews the draw toward the first words.
                (0..len).map(|_| WORDS[(next() % 144).isqrt()]).collect::<Vec<_>>().join(" ")
            })
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let a = ingest(&store, "a", &refs[..45], None).await;
        let b = ingest(&store, "b", &refs[45..], None).await;
        let ids: Vec<i64> = a.iter().chain(&b).copied().collect();
        // BM25 as FTS5 defines it (k1 1.2, b 0.75, idf clamped at 1e-6), over every chunk.
        let tokens: Vec<Vec<&str>> = texts.iter().map(|t| t.split(' ').collect()).collect();
        let mean = tokens.iter().map(Vec::len).sum::<usize>() as f64 / tokens.len() as f64;
        let n = tokens.len() as f64;
        // A query term said twice counts once.
        let bm25 = |query: &[&str], chunk: &[&str]| -> f64 {
            let unique: std::collections::BTreeSet<&str> = query.iter().copied().collect();
            unique.iter().map(|q| {
                let df = tokens.iter().filter(|t| t.contains(q)).count() as f64;
                let idf = ((n - df + 0.5) / (df + 0.5)).ln().max(1e-6);
                let tf = chunk.iter().filter(|w| *w == q).count() as f64;
                idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * chunk.len() as f64 / mean))
            }).sum()
        };
        let corpus = store.corpus().await.unwrap();
        assert_eq!(corpus.chunks, 60);
        let c1 = vec!["c1".to_string()];
        for query in [&["yak"][..], &["cat"], &["cat", "cow"], &["dog", "emu", "hen"], &["owl", "owl", "bat"]] {
            let mut want: Vec<(i64, f64)> = (0..45)
                .map(|i| (ids[i], bm25(query, &tokens[i])))
                .filter(|(_, s)| *s > 0.0)
                .collect();
            want.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
            want.truncate(10);
            let terms: Vec<String> = query.iter().map(|q| q.to_string()).collect();
            let got = store.lexical_search(&terms, &c1, 10, corpus).await.unwrap();
            assert_eq!(
                got.iter().map(|h| h.0).collect::<Vec<_>>(),
                want.iter().map(|h| h.0).collect::<Vec<_>>(),
                "{query:?}: {got:?}, exhaustive BM25 {want:?}"
            );
            for (g, w) in got.iter().zip(&want) {
                assert!((g.1 - w.1).abs() < 1e-6 * w.1.max(1.0), "{query:?}: {got:?} vs {want:?}");
            }
        }
    }

    async fn a_chunks_context_is_searched_with_its_text(store, location) {
        // The passage under "convert" never says the word: its context does.
        with_collections(&store).await;
        insert_doc(&store, &doc("a", "c1", "h1", 10)).await;
        let texts = ["Change the image's format, for example from raw.", "Nothing relevant here."];
        let contexts = ["qemu-img › Commands › convert", "qemu-img › Notes"];
        let new: Vec<NewChunk> = texts.iter().zip(contexts).enumerate()
            .map(|(i, (text, context))| NewChunk { text, context, start: i as i64 * 100, end: i as i64 * 100 + 40 })
            .collect();
        store.claim_document(1_000, 60_000).await.unwrap().unwrap();
        let ids = store.complete_document("a", &texts.join(" "), &new, None, 1_001).await.unwrap().unwrap();
        let corpus = store.corpus().await.unwrap();
        let c1 = vec!["c1".to_string()];
        let search = |term: &str| {
            let store = store.clone();
            let term = term.to_string();
            let c1 = c1.clone();
            async move { store.lexical_search(&[term], &c1, 10, corpus).await.unwrap().into_iter().map(|h| h.0).collect::<Vec<_>>() }
        };
        assert_eq!(search("convert").await, [ids[0]]);
        assert_eq!(sorted(search("qemu").await), sorted(ids.clone()));
        let rows = store.chunks_by_ids(&ids[..1]).await.unwrap();
        assert_eq!((rows[0].text.as_str(), rows[0].context.as_str()), (texts[0], contexts[0]));
        // Deleting the document takes context and text out of the index alike.
        store.delete_document("a").await.unwrap();
        assert!(search("convert").await.is_empty());
        assert!(search("format").await.is_empty());
        if matches!(store, Store::Sqlite(_)) {
            raw_execute(&store, "INSERT INTO chunks_fts (chunks_fts) VALUES ('integrity-check')").await.unwrap();
        }
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
