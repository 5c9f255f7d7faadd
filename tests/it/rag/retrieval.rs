//! Retrieval: embeddings per model and the quality of search on real text.

use super::*;

// The collection loader and the metrics of `cargo xtask bench --quality`, so the test measures
// as the benchmark does.
#[allow(dead_code)]
#[path = "../../../bench/src/quality/beir.rs"]
mod beir;
#[allow(dead_code)]
#[path = "../../../bench/src/quality/metrics.rs"]
mod metrics;

#[tokio::test]
async fn a_new_embedding_model_re_embeds_without_mixing() {
    let model = ModelServer::start();
    let env = model_env(&model, "ollama");
    let f = fixture(&env).await;
    f.me.ingest(&f.collection, "handbook.txt", HANDBOOK).await;
    let dir = f._dir.path().to_path_buf();
    drop(f.berth);
    let mut env2 = env.clone();
    env2[5].1 = "test-embed-v2".into();
    let env2: Vec<(&str, &str)> = env2.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let berth = Berth::start_with(&dir, &[], &env2);
    let start = Instant::now();
    loop {
        let counts = db_strings(
            &dir,
            "SELECT CAST((SELECT COUNT(*) FROM chunk_vectors WHERE model = 'test-embed') AS TEXT) \
             || ' ' || CAST((SELECT COUNT(*) FROM chunk_vectors WHERE model = 'test-embed-v2') AS TEXT) \
             || ' ' || CAST((SELECT COUNT(*) FROM chunks) AS TEXT)",
        )
        .await;
        let n: Vec<i64> = counts[0].split(' ').map(|x| x.parse().unwrap()).collect();
        let (old, new, chunks) = (n[0], n[1], n[2]);
        if new == chunks {
            assert_eq!(old, 0, "old vectors replaced, not kept beside");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut me = Browser::new(&berth);
    me.sign_in("root", PW).await;
    assert_eq!(search(&me, "vacation").await["mode"], "hybrid");
}

/// Retrieval quality on a slice of the default collection of `cargo xtask bench --quality`
/// (bench/quality/build_default.py: docstrings of Python's standard library, each summary line a
/// query whose one relevant document is the rest of its docstring; labels from the text's own
/// structure, nothing hand-picked), through the HTTP API with the real built-in embedder:
/// hybrid's nDCG@10 must not be below lexical-only's. Prints the hybrid, lexical-only and
/// dense-only figures; the server restarts on the same data with one half's weight at 0.
#[tokio::test]
async fn hybrid_ranks_real_text_at_least_as_well_as_lexical() {
    let slice = tempfile::tempdir().unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../bench/quality/build_default.py"
    );
    let built = std::process::Command::new("python3")
        .arg(script)
        .arg(slice.path())
        .args(["--docs", "150", "--queries", "50"])
        .output()
        .expect("python3 runs bench/quality/build_default.py");
    assert!(
        built.status.success(),
        "build_default.py failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let collection = beir::load(slice.path()).unwrap();
    assert_eq!(
        (collection.corpus.len(), collection.queries.len()),
        (150, 50)
    );
    let env = builtin_embeddings();
    let f = fixture(&env).await;
    let documents = beir::ingest(
        &session(&f.me),
        &f.collection,
        &collection.corpus,
        |_, _, _| {},
    )
    .await
    .unwrap();
    let dir = f._dir.path().to_path_buf();
    let mut berth = Some(f.berth);
    let mut scores = Vec::new();
    for zero in [
        None,
        Some("BERTH_RETRIEVAL_VECTOR_WEIGHT"),
        Some("BERTH_RETRIEVAL_LEXICAL_WEIGHT"),
    ] {
        // The same data each time: hybrid, lexical only, dense only.
        let mut env = env.clone();
        if let Some(key) = zero {
            drop(berth.take());
            env.push((key.into(), "0".into()));
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            berth = Some(Berth::start_with(&dir, &[], &env));
        }
        let mut me = Browser::new(berth.as_ref().unwrap());
        me.sign_in("root", PW).await;
        let (runs, modes) = beir::search_all(
            &session(&me),
            &f.collection,
            &collection.queries,
            &documents,
            |_, _| {},
        )
        .await
        .unwrap();
        assert_eq!(modes.into_iter().collect::<Vec<_>>(), ["hybrid"]);
        scores.push(metrics::evaluate(&runs, &collection.qrels));
    }
    let [hybrid, lexical, dense] = [scores[0], scores[1], scores[2]];
    for (name, s) in [("hybrid", hybrid), ("lexical", lexical), ("dense", dense)] {
        println!(
            "{name}: nDCG@10 {:.3}, recall@1 {:.3}, recall@10 {:.3}, MRR@10 {:.3} ({} queries, {} documents)",
            s.ndcg_at_10, s.recall_at_1, s.recall_at_10, s.mrr_at_10, s.queries, documents.len()
        );
    }
    assert!(
        hybrid.ndcg_at_10 >= lexical.ndcg_at_10,
        "hybrid nDCG@10 {:.3} is below lexical-only {:.3} (dense-only {:.3})",
        hybrid.ndcg_at_10,
        lexical.ndcg_at_10,
        dense.ndcg_at_10
    );
}

fn session(b: &Browser) -> beir::Session<'_> {
    beir::Session {
        http: &b.http,
        api: b.base.clone(),
        csrf: b.csrf.clone().expect("signed in"),
    }
}

/// One document full of matches and one with a single match: by passage, the full one takes
/// every place; by document each gets one; an answer's sources take each document's best first.
#[tokio::test]
async fn results_and_sources_span_documents() {
    let env = [
        ("BERTH_CHUNK_SIZE".to_string(), "100".to_string()),
        ("BERTH_CHUNK_OVERLAP".to_string(), "10".to_string()),
    ];
    let f = fixture(&env).await;
    let deep: String = (1..=8)
        .map(|n| format!("Harbour mooring fee rule {n}: harbour mooring fees are due monthly.\n\n"))
        .collect();
    let deep_id = f.me.ingest(&f.collection, "fees.txt", deep).await;
    let other_id =
        f.me.ingest(
            &f.collection,
            "guide.txt",
            "Visitors ask about the harbour at the desk.",
        )
        .await;
    let ranked = |v: &Value| -> Vec<String> {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["document_id"].as_str().unwrap().to_string())
            .collect()
    };

    let query = json!({"query": "harbour mooring fees", "k": 3});
    let by_passage = json(f.me.post("/search", query.clone()).await).await;
    assert_eq!(ranked(&by_passage), [deep_id.as_str(); 3], "{by_passage}");
    let mut query = query;
    query["group_by"] = json!("document");
    let by_document = json(f.me.post("/search", query).await).await;
    assert_eq!(
        ranked(&by_document),
        [deep_id.as_str(), other_id.as_str()],
        "{by_document}"
    );

    let conv = new_conversation(&f.me).await;
    let events = events(ask(&f.me, &conv, "harbour mooring fees").await).await;
    let done = &events.last().unwrap().1["message"];
    let cited: Vec<&str> = done["citations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["document_id"].as_str().unwrap())
        .collect();
    assert!(cited.contains(&other_id.as_str()), "{cited:?}");
    assert_eq!(
        cited.len(),
        6,
        "retrieval_k sources, the rest from the deep document: {cited:?}"
    );

    let bad =
        f.me.post("/search", json!({"query": "x", "group_by": "sentence"}))
            .await;
    assert_eq!(bad.status(), 422, "{}", bad.text().await.unwrap());
}
