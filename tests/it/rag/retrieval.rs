//! Retrieval: embeddings per model and the quality of search on a known corpus.

use super::*;

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

/// Questions whose wording differs from the documents (synonyms), over a small corpus with one
/// right document each. Prints recall@5 for lexical and hybrid retrieval.
#[tokio::test]
async fn retrieval_quality_on_a_known_corpus() {
    let corpus = [
        (
            "cars.txt",
            "Company automobile policy: staff may rent an automobile for client visits.",
        ),
        (
            "health.txt",
            "See a physician if you feel unwell for more than three days; sick leave is paid.",
        ),
        (
            "purchase.txt",
            "To acquire equipment, file a purchase request with finance before ordering.",
        ),
        (
            "laptop.txt",
            "Every engineer receives a notebook computer with 32 GB of memory.",
        ),
        (
            "pay.txt",
            "Compensation is paid on the 25th of each month by bank transfer.",
        ),
        (
            "vacation.txt",
            "Annual vacation is 28 days; unused days carry over until March.",
        ),
        (
            "start.txt",
            "New hires commence on the first Monday of the month with an onboarding day.",
        ),
        (
            "budget.txt",
            "Each team has a training budget of 2000 euros per year for courses.",
        ),
        (
            "office.txt",
            "The office opens at 8 and closes at 18; the doors lock at 19.",
        ),
        (
            "security.txt",
            "Badges must be worn visibly; lost badges are reported to security at once.",
        ),
        (
            "parking.txt",
            "Parking spaces are assigned by lottery every January.",
        ),
        (
            "coffee.txt",
            "Coffee and tea are free in the kitchen on every floor.",
        ),
    ];
    let questions = [
        ("Can I use a car to visit a customer?", "cars.txt"),
        ("When should I go to the doctor?", "health.txt"),
        ("How do I buy new equipment?", "purchase.txt"),
        ("What laptop do engineers get?", "laptop.txt"),
        ("When is the salary paid?", "pay.txt"),
        ("How many holiday days do I have?", "vacation.txt"),
        ("When do new hires begin?", "start.txt"),
        (
            "How much money is there for training courses?",
            "budget.txt",
        ),
        ("What time does the office open?", "office.txt"),
        ("What happens if I lose my badge?", "security.txt"),
        ("How are parking spaces assigned?", "parking.txt"),
        ("Is coffee free?", "coffee.txt"),
    ];
    let mut recall = Vec::new();
    for with_vectors in [false, true] {
        let model = ModelServer::start();
        let env = if with_vectors {
            model_env(&model, "ollama")
        } else {
            Vec::new()
        };
        let f = fixture(&env).await;
        for (name, text) in corpus {
            f.me.ingest(&f.collection, name, text).await;
        }
        let mut found = 0;
        for (q, want) in questions {
            let hits = search(&f.me, q).await;
            let names: Vec<&str> = hits["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["document_name"].as_str().unwrap())
                .collect();
            if names.iter().take(5).any(|n| *n == want) {
                found += 1;
            }
        }
        recall.push(found as f64 / questions.len() as f64);
    }
    println!(
        "recall@5: lexical {:.2}, hybrid {:.2}",
        recall[0], recall[1]
    );
    assert!(
        recall[1] >= recall[0],
        "hybrid must not be worse than lexical: {recall:?}"
    );
    assert!(recall[1] >= 0.9, "hybrid recall@5 {:.2}", recall[1]);
}
