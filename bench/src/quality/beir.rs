//! A test collection in BEIR's format — corpus.jsonl (`_id`, `title`, `text`), queries.jsonl
//! (`_id`, `text`) and qrels/test.tsv (`query-id corpus-id score`, with a header) — and one
//! measurement of it against a running Berth over its HTTP API: every document uploaded as
//! `<_id>.txt` (title, blank line, text), waited on until ready, then every judged query
//! searched. Shared by `cargo xtask bench --quality` and the CI test of retrieval quality.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::metrics::{documents_in_order, Judged};

pub struct Document {
    pub id: String,
    pub title: String,
    pub text: String,
}

pub struct Query {
    pub id: String,
    pub text: String,
}

pub struct Collection {
    pub corpus: Vec<Document>,
    /// The queries that have judgements, in the file's order.
    pub queries: Vec<Query>,
    pub qrels: BTreeMap<String, Judged>,
}

fn str_field(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Reads a BEIR directory.
pub fn load(dir: &Path) -> Result<Collection> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .with_context(|| format!("reading {}", dir.join(name).display()))
    };
    let jsonl = |name: &str| -> Result<Vec<Value>> {
        read(name)?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{name} line {}", i + 1)))
            .collect()
    };
    let corpus: Vec<Document> = jsonl("corpus.jsonl")?
        .iter()
        .map(|v| Document {
            id: str_field(v, "_id"),
            title: str_field(v, "title"),
            text: str_field(v, "text"),
        })
        .collect();
    let mut qrels: BTreeMap<String, Judged> = BTreeMap::new();
    for (i, line) in read("qrels/test.tsv")?.lines().enumerate() {
        let cols: Vec<&str> = line.split('\t').map(str::trim).collect();
        if (i == 0 && cols.first() == Some(&"query-id")) || line.trim().is_empty() {
            continue;
        }
        let &[query, doc, score] = cols.as_slice() else {
            bail!(
                "qrels/test.tsv line {}: expected 3 tab-separated columns",
                i + 1
            );
        };
        let score: i64 = score
            .parse()
            .with_context(|| format!("qrels/test.tsv line {}: score", i + 1))?;
        qrels
            .entry(query.to_string())
            .or_default()
            .insert(doc.to_string(), score);
    }
    let queries: Vec<Query> = jsonl("queries.jsonl")?
        .iter()
        .map(|v| Query {
            id: str_field(v, "_id"),
            text: str_field(v, "text"),
        })
        .filter(|q| qrels.contains_key(&q.id))
        .collect();
    if corpus.is_empty() || queries.is_empty() {
        bail!(
            "{}: {} documents and {} judged queries; a collection needs both",
            dir.display(),
            corpus.len(),
            queries.len()
        );
    }
    Ok(Collection {
        corpus,
        queries,
        qrels,
    })
}

/// A signed-in session on Berth's API: the client (with the session cookie), the API's base
/// (`http://…/api/v1`) and the CSRF token.
pub struct Session<'a> {
    pub http: &'a reqwest::Client,
    pub api: String,
    pub csrf: String,
}

/// Uploads every document into the collection and waits until all are ready (failing on a
/// failed one): Berth's document id → the corpus id. `progress` is told (ready, total).
pub async fn ingest(
    s: &Session<'_>,
    collection: &str,
    corpus: &[Document],
    mut progress: impl FnMut(&str, usize, usize),
) -> Result<HashMap<String, String>> {
    let mut ids = HashMap::new();
    let mut last = Instant::now();
    for (i, doc) in corpus.iter().enumerate() {
        let body = if doc.title.is_empty() {
            doc.text.clone()
        } else {
            format!("{}\n\n{}", doc.title, doc.text)
        };
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(body.into_bytes()).file_name(format!("{}.txt", doc.id)),
        );
        let resp = s
            .http
            .post(format!("{}/collections/{collection}/documents", s.api))
            .header("x-csrf-token", &s.csrf)
            .multipart(form)
            .send()
            .await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or_default();
        let Some(id) = v["id"].as_str() else {
            bail!("uploading {}: {status} {v}", doc.id);
        };
        ids.insert(id.to_string(), doc.id.clone());
        if last.elapsed() > Duration::from_secs(5) {
            progress("uploaded", i + 1, corpus.len());
            last = Instant::now();
        }
    }
    progress("uploaded", corpus.len(), corpus.len());
    loop {
        let docs: Value = s
            .http
            .get(format!("{}/collections/{collection}/documents", s.api))
            .send()
            .await?
            .json()
            .await?;
        let docs = docs.as_array().context("the document list")?;
        if let Some(d) = docs.iter().find(|d| d["status"] == "failed") {
            bail!("an ingest failed: {d}");
        }
        let ready = docs.iter().filter(|d| d["status"] == "ready").count();
        if ready >= corpus.len() {
            progress("ready", ready, corpus.len());
            return Ok(ids);
        }
        if last.elapsed() > Duration::from_secs(5) {
            progress("ready", ready, corpus.len());
            last = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Passages asked per query (the API's most): enough that ten distinct documents are almost
/// always among them.
pub const PASSAGES: usize = 50;

/// Runs every query through the search API over the collection: each query's ranked corpus
/// ids, and the modes the responses reported. A passage with score 0 is dropped: with one
/// half's weight at 0, the passages only that half found score exactly 0 and trail the list
/// in id order, which is not a ranking.
pub async fn search_all(
    s: &Session<'_>,
    collection: &str,
    queries: &[Query],
    documents: &HashMap<String, String>,
    mut progress: impl FnMut(usize, usize),
) -> Result<(HashMap<String, Vec<String>>, BTreeSet<String>)> {
    let mut runs = HashMap::new();
    let mut modes = BTreeSet::new();
    let mut last = Instant::now();
    for (i, q) in queries.iter().enumerate() {
        // The API takes 1 to 2000 characters.
        let text: String = q.text.chars().take(2000).collect();
        let resp = s
            .http
            .post(format!("{}/search", s.api))
            .header("x-csrf-token", &s.csrf)
            .json(&json!({"query": text, "k": PASSAGES, "collection_ids": [collection]}))
            .send()
            .await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!("search for {}: {status} {v}", q.id);
        }
        modes.insert(v["mode"].as_str().unwrap_or("?").to_string());
        let hits = v["results"].as_array().context("search results")?;
        let ranked = documents_in_order(
            hits.iter()
                .filter(|h| h["score"].as_f64().unwrap_or(0.0) > 0.0)
                .filter_map(|h| documents.get(h["document_id"].as_str()?))
                .map(String::as_str),
        );
        runs.insert(q.id.clone(), ranked);
        if last.elapsed() > Duration::from_secs(5) {
            progress(i + 1, queries.len());
            last = Instant::now();
        }
    }
    progress(queries.len(), queries.len());
    Ok((runs, modes))
}
