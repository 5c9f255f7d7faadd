//! Retrieval by meaning with the real built-in embedder: questions whose words are not in the
//! document still find the passage, with nothing but Berth running.

use super::*;

/// Four passages on unrelated topics, one chunk each (each over half the chunk size).
const POLICIES: &str =
    "Staff members receive twenty-eight days of paid annual leave each calendar \
year, in addition to public holidays, and unused days carry over until March.\n\n\
Cars may be parked in the underground garage beneath the building; spaces are assigned by the \
facilities team at the start of each quarter.\n\n\
Each new hire is issued a notebook computer on the first day, with a charger and a bag; it \
must be returned when the contract ends.\n\n\
Receipts for travel costs must be submitted within thirty days to be reimbursed, through the \
finance portal, with the purpose of the trip.";

/// A question, and a phrase of the passage that answers it.
const PARAPHRASES: [(&str, &str); 3] = [
    ("How much vacation time do employees get?", "annual leave"),
    ("Where should I put my vehicle?", "underground garage"),
    (
        "Which machine will I use after joining?",
        "notebook computer",
    ),
];

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 3)
        .map(str::to_lowercase)
        .collect()
}

async fn with_policies() -> Fixture {
    let mut env = builtin_embeddings();
    env.push(("BERTH_CHUNK_SIZE".into(), "200".into()));
    env.push(("BERTH_CHUNK_OVERLAP".into(), "0".into()));
    let f = fixture(&env).await;
    f.me.ingest(&f.collection, "policies.md", POLICIES).await;
    f
}

#[tokio::test]
async fn with_a_model_present_retrieval_is_hybrid_and_says_which_model() {
    let f = with_policies().await;
    let status = json(f.me.get("/status").await).await;
    assert_eq!(status["retrieval"], "hybrid", "{status}");
    assert_eq!(status["embeddings"]["provider"], "builtin", "{status}");
    assert!(
        status["embeddings"]["model"]
            .as_str()
            .unwrap()
            .contains("@sha256:"),
        "the model is named with its weights' hash: {status}"
    );
}

#[tokio::test]
async fn a_question_in_other_words_finds_the_passage_that_answers_it() {
    let f = with_policies().await;
    let document = words(POLICIES);
    for (question, answer) in PARAPHRASES {
        // The test means something only if the words differ (longer words; "I", "do" aside).
        let shared: Vec<String> = words(question)
            .into_iter()
            .filter(|w| document.contains(w))
            .collect();
        assert!(
            shared.is_empty(),
            "{question:?} shares {shared:?} with the document"
        );
        let found = search(&f.me, question).await;
        assert_eq!(found["mode"], "hybrid", "{found}");
        let top = found["results"][0]["text"].as_str().unwrap_or_default();
        assert!(
            top.contains(answer),
            "{question:?} should find the passage with {answer:?}, found {top:?}"
        );
    }
}

#[tokio::test]
async fn an_answer_cites_the_passage_a_paraphrase_asked_for() {
    let model = ModelServer::start();
    let mut env = real_embeddings(&model, "ollama");
    env.push(("BERTH_CHUNK_SIZE".into(), "200".into()));
    env.push(("BERTH_CHUNK_OVERLAP".into(), "0".into()));
    let f = fixture(&env).await;
    let doc = f.me.ingest(&f.collection, "policies.md", POLICIES).await;
    let conv = new_conversation(&f.me).await;
    let events = events(ask(&f.me, &conv, PARAPHRASES[0].0).await).await;
    let done = &events.last().expect("events").1["message"];
    let cite = &done["citations"][0];
    assert_eq!(cite["document_id"], doc.as_str(), "{done}");
    let passage = json(f.me.get(&format!("/chunks/{}", cite["chunk_id"])).await).await;
    assert!(
        passage["text"].as_str().unwrap().contains("annual leave"),
        "the first citation is the leave passage: {passage}"
    );
}

#[tokio::test]
async fn every_passage_fits_what_the_model_reads() {
    // Dense text (identifiers, numbers: several tokens per word) in 1,000-character chunks, the
    // default, would be cut at the model's 256 tokens; chunks are sized to fit it, their
    // context included.
    let mut env = builtin_embeddings();
    env.push(("BERTH_CHUNK_SIZE".into(), "1000".into()));
    let f = fixture(&env).await;
    let dense: String = (0..400)
        .map(|i| {
            format!(
                "cfg_{i:04x}::set_0x{:08x}(); ",
                i * 2_654_435_761u64 % 4_294_967_291
            )
        })
        .collect();
    f.me.ingest(&f.collection, "registers.txt", &dense).await;
    let model =
        berth_embed::Model::load(&berth_embed::test_model_dir(), "all-MiniLM-L6-v2").unwrap();
    let body = json(
        f.me.post("/search", json!({ "query": "cfg set", "k": 50 }))
            .await,
    )
    .await;
    let results = body["results"].as_array().unwrap();
    assert!(results.len() > 10, "{body}");
    for hit in results {
        let (text, section) = (
            hit["text"].as_str().unwrap(),
            hit["section"].as_str().unwrap(),
        );
        let read = model.count_tokens(&format!("{section}\n\n{text}")) + 2;
        assert!(read <= model.max_tokens(), "{read} tokens: {text}");
        assert!(text.chars().count() <= 1000);
    }
}
