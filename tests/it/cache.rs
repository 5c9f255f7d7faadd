//! The optional Redis query cache, against a real Redis (a private `redis-server` per test) and
//! the in-test model server: cached results are used (no second embedding), never hide a new
//! document or show a deleted one, and Redis dying, freezing or coming back only ever costs the
//! cache. Without `redis-server` installed these tests skip loudly; under CI they fail.

use crate::support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::llm::ModelServer;
use support::redis::Redis;
use support::{create_admin, json, Berth, Browser};

const PW: &str = "Adm1n!chosen-well";

pub(crate) const HOLIDAYS: &str =
    "Holidays\n\nEvery employee has 28 days of paid vacation per year, \
plus public holidays. Vacation requests go to your manager.";
const TRAVEL: &str = "Travel\n\nEmployees may rent a car for trips longer than 200 kilometres. \
Fuel is reimbursed monthly.";
const SABBATICAL: &str = "Sabbatical\n\nAfter five years, an employee may take three months of \
unpaid vacation as a sabbatical, on top of the paid vacation days.";

const QUERY: &str = "How many vacation days do employees get?";

pub(crate) struct Fixture {
    pub(crate) berth: Berth,
    pub(crate) me: Browser,
    model: ModelServer,
    redis: Redis,
    pub(crate) collection: String,
    _dir: tempfile::TempDir,
}

/// Berth with the model server and a private Redis; None when `redis-server` is missing.
async fn fixture() -> Option<Fixture> {
    Some(fixture_on(Redis::start()?, &[]).await)
}

/// Berth with the model server, caching on `redis`, with more settings in `env`.
pub(crate) async fn fixture_on(redis: Redis, more_env: &[(&str, &str)]) -> Fixture {
    let model = ModelServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (url, redis_url) = (model.url(), redis.url());
    let mut env = vec![
        ("BERTH_EMBED_URL", url.as_str()),
        ("BERTH_EMBED_MODEL", "test-embed"),
        ("BERTH_LLM_TIMEOUT", "5"),
        ("BERTH_REDIS_URL", redis_url.as_str()),
        ("BERTH_CACHE_TTL", "600"),
    ];
    env.extend_from_slice(more_env);
    let berth = Berth::start_with(dir.path(), &[], &env);
    create_admin(dir.path(), "root", PW);
    let mut me = Browser::new(&berth);
    me.sign_in("root", PW).await;
    let collection = new_collection(&me, "handbook").await;
    Fixture {
        berth,
        me,
        model,
        redis,
        collection,
        _dir: dir,
    }
}

impl Fixture {
    pub(crate) fn embed_calls(&self) -> usize {
        self.model.shared.embed_calls.load(Ordering::SeqCst)
    }

    /// Searches (all readable collections, or `only`); the (document id, chunk id, score) list.
    pub(crate) async fn search(&self, only: Option<&str>) -> Vec<(String, i64, f64)> {
        let mut body = json!({"query": QUERY, "k": 5});
        if let Some(c) = only {
            body["collection_ids"] = json!([c]);
        }
        let resp = self.me.post("/search", body).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body = json(resp).await;
        assert_eq!(body["mode"], "hybrid", "{body}");
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["document_id"].as_str().unwrap().to_string(),
                    h["chunk_id"].as_i64().unwrap(),
                    h["score"].as_f64().unwrap(),
                )
            })
            .collect()
    }

    /// Searches and returns the result with how many embedding requests it made.
    pub(crate) async fn search_counting(
        &self,
        only: Option<&str>,
    ) -> (Vec<(String, i64, f64)>, usize) {
        let before = self.embed_calls();
        let results = self.search(only).await;
        (results, self.embed_calls() - before)
    }

    pub(crate) async fn ready(&self) -> Value {
        let resp = reqwest::get(self.berth.url("/ready")).await.unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "the cache never makes Berth unready"
        );
        json(resp).await
    }

    pub(crate) async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let text = reqwest::get(self.berth.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let samples = support::metrics::parse(&text);
        support::metrics::value(&samples, name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in /metrics"))
    }

    pub(crate) fn log_count(&self, needle: &str) -> usize {
        self.berth
            .logs()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }
}

async fn new_collection(me: &Browser, name: &str) -> String {
    let c = json(me.post("/collections", json!({"name": name})).await).await;
    c["id"].as_str().unwrap().to_string()
}

fn documents(results: &[(String, i64, f64)]) -> Vec<&str> {
    results.iter().map(|r| r.0.as_str()).collect()
}

pub(crate) const UNAVAILABLE: &str = "the Redis query cache is unavailable";

#[tokio::test]
async fn cached_results_are_used_but_never_hide_new_or_show_deleted_documents() {
    let Some(f) = fixture().await else { return };
    let ready = f.ready().await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["checks"]["cache"]["ok"], true, "{ready}");
    assert_eq!(ready["checks"]["cache"]["configured"], true, "{ready}");
    let holidays = f.me.ingest(&f.collection, "holidays.md", HOLIDAYS).await;
    f.me.ingest(&f.collection, "travel.md", TRAVEL).await;

    // The first search embeds the query; the same search again comes from the cache whole.
    let (first, embeds) = f.search_counting(None).await;
    assert_eq!(embeds, 1);
    assert_eq!(first[0].0, holidays, "{first:?}");
    let (again, embeds) = f.search_counting(None).await;
    assert_eq!(embeds, 0, "a repeated query is answered from the cache");
    assert_eq!(again, first, "the cached result is the same result");
    assert!(
        f.metric("berth_cache_hits_total", &[("kind", "results")])
            .await
            >= 1.0
    );
    assert!(
        f.metric("berth_cache_misses_total", &[("kind", "results")])
            .await
            >= 1.0
    );

    // Another k is another result, but the query's embedding is cached.
    let before = f.embed_calls();
    let resp = f.me.post("/search", json!({"query": QUERY, "k": 1})).await;
    assert_eq!(json(resp).await["results"].as_array().unwrap().len(), 1);
    assert_eq!(
        f.embed_calls(),
        before,
        "the query embedding came from the cache"
    );
    assert!(
        f.metric("berth_cache_hits_total", &[("kind", "embedding")])
            .await
            >= 1.0
    );

    // A document that becomes ready shows in the very next search, cache or not.
    let sabbatical =
        f.me.ingest(&f.collection, "sabbatical.md", SABBATICAL)
            .await;
    let (with_new, embeds) = f.search_counting(None).await;
    assert!(
        documents(&with_new).contains(&sabbatical.as_str()),
        "the new document is found despite the cached result: {with_new:?}"
    );
    assert_eq!(
        embeds, 0,
        "only the result was invalidated, not the embedding"
    );
    let (cached, embeds) = f.search_counting(None).await;
    assert_eq!((cached, embeds), (with_new.clone(), 0));

    // A deleted document is gone from the next search.
    let resp =
        f.me.send(
            Method::DELETE,
            &format!("/documents/{sabbatical}"),
            json!({}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let after_delete = f.search(None).await;
    assert!(
        !documents(&after_delete).contains(&sabbatical.as_str()),
        "{after_delete:?}"
    );
    assert_eq!(
        after_delete, first,
        "back to the result before it was added"
    );

    // Results are per collection set: a second collection with a matching document does not
    // leak into a search of the first alone, cached or not, and the union has both.
    let other = new_collection(&f.me, "other").await;
    let elsewhere = f.me.ingest(&other, "sabbatical.md", SABBATICAL).await;
    for _ in 0..2 {
        let only_first = f.search(Some(&f.collection)).await;
        assert!(!documents(&only_first).contains(&elsewhere.as_str()));
        assert_eq!(only_first, first);
        let all = f.search(None).await;
        assert!(documents(&all).contains(&elsewhere.as_str()), "{all:?}");
    }
    assert_eq!(f.metric("berth_cache_errors_total", &[]).await, 0.0);
    assert_eq!(f.log_count(UNAVAILABLE), 0);
}

#[tokio::test]
async fn redis_dying_costs_only_the_cache_and_its_return_is_noticed() {
    let Some(mut f) = fixture().await else { return };
    f.me.ingest(&f.collection, "holidays.md", HOLIDAYS).await;
    f.me.ingest(&f.collection, "travel.md", TRAVEL).await;
    let (expected, _) = f.search_counting(None).await;
    assert_eq!(f.search_counting(None).await, (expected.clone(), 0));

    f.redis.kill();
    for _ in 0..5 {
        let started = Instant::now();
        let (results, embeds) = f.search_counting(None).await;
        assert_eq!(results, expected, "the same results without the cache");
        assert_eq!(embeds, 1, "computed afresh");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a dead Redis does not slow searches: {:?}",
            started.elapsed()
        );
    }
    let ready = f.ready().await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["checks"]["cache"]["ok"], false, "{ready}");
    assert_eq!(ready["checks"]["cache"]["configured"], true, "{ready}");
    assert!(ready["checks"]["cache"]["error"].is_string(), "{ready}");
    assert!(ready["down"].as_array().unwrap().is_empty(), "{ready}");
    assert!(f.metric("berth_cache_errors_total", &[]).await >= 1.0);
    assert_eq!(f.log_count(UNAVAILABLE), 1, "one warning per outage");

    // Back (empty): readiness notices at once, and the cache works again.
    f.redis.restart();
    let start = Instant::now();
    loop {
        let ready = f.ready().await;
        if ready["checks"]["cache"]["ok"] == true {
            assert_eq!(ready["status"], "ready", "{ready}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the cache never came back: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(f.search_counting(None).await, (expected.clone(), 1));
    assert_eq!(
        f.search_counting(None).await,
        (expected, 0),
        "cached again after Redis came back"
    );
    assert!(f.log_count("the Redis query cache is back") >= 1);
    assert_eq!(f.log_count(UNAVAILABLE), 1);
}

#[tokio::test]
async fn a_frozen_redis_neither_stalls_searches_nor_hides_documents_added_meanwhile() {
    let Some(f) = fixture().await else { return };
    f.me.ingest(&f.collection, "holidays.md", HOLIDAYS).await;
    let (before, _) = f.search_counting(None).await;
    assert_eq!(f.search_counting(None).await, (before.clone(), 0));

    // Frozen: connections stay open, nothing answers. Each search gives up on it quickly.
    f.redis.freeze();
    let started = Instant::now();
    assert_eq!(f.search(None).await, before);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "a frozen Redis costs at most its short timeout: {:?}",
        started.elapsed()
    );
    // A document becomes ready meanwhile: its collection's cached results cannot be
    // invalidated now, and Redis still holds them.
    let sabbatical =
        f.me.ingest(&f.collection, "sabbatical.md", SABBATICAL)
            .await;
    assert!(documents(&f.search(None).await).contains(&sabbatical.as_str()));
    f.redis.thaw();

    // Once Berth uses Redis again (after its back-off), the pending invalidation comes first:
    // the stale result is never served.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (thawed, _) = f.search_counting(None).await;
    assert!(
        documents(&thawed).contains(&sabbatical.as_str()),
        "the result cached before the document was added is void: {thawed:?}"
    );
    assert_eq!(
        f.search_counting(None).await,
        (thawed, 0),
        "and the cache is in use again"
    );
    assert_eq!(f.log_count(UNAVAILABLE), 1, "one warning per outage");
}
