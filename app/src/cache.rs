//! The optional query cache on Redis: query embeddings (by model and query text) and hybrid search
//! results (by query, collection set, k, mode and weights → chunk ids and scores), each with a TTL.
//!
//! Berth works the same without it. Every Redis command has a short timeout; after a failure the
//! cache is bypassed for a few seconds (one warning per outage, not per request), so a dead or
//! frozen Redis costs the cache, never the search.
//!
//! Results are never served stale: each collection has a generation token in Redis, replaced when
//! one of its documents becomes ready or is deleted. A result is stored with the tokens read
//! *before* it was computed and used only while they are all unchanged. A missing token (expired,
//! evicted, Redis restarted) is set to a fresh random one, which matches no stored result. A
//! replacement that cannot reach Redis is kept here and done before the cache is read again.
//! Results hold chunk ids only: rows are always re-read from the database (ready documents only),
//! and a result is keyed by the exact set of collections the caller was allowed to search.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, FromRedisValue, Pipeline};
use sha2::{Digest, Sha256};

use crate::tls;

/// The longest one Redis command (or connecting) may take.
const OP_TIMEOUT: Duration = Duration::from_millis(200);
/// How long the cache is bypassed after a failure.
const BACKOFF: Duration = Duration::from_secs(5);
/// Version of the keys' layout: bump it when the values' format changes.
const PREFIX: &str = "berth:v1";

/// What a search needs to look itself up.
pub struct Query<'a> {
    pub model: &'a str,
    pub text: &'a str,
    /// The collections the caller may search (any order).
    pub collections: &'a [String],
    pub k: usize,
    pub mode: &'a str,
    pub weights: (f64, f64),
}

/// What the cache had for a query, and where to store what it lacked.
pub struct Lookup {
    results_key: String,
    embedding_key: String,
    /// The collections' generation tokens, read before the search computes anything.
    generations: Vec<String>,
    /// Ranked (chunk id, score), if a result for the current generations was cached.
    pub results: Option<Vec<(i64, f64)>>,
    pub embedding: Option<Vec<f32>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredResults {
    generations: Vec<String>,
    hits: Vec<(i64, f64)>,
}

pub struct Cache {
    redis: Option<Redis>,
    ttl: Duration,
    hits: IntCounterVec,
    misses: IntCounterVec,
    errors: IntCounter,
}

struct Redis {
    client: redis::Client,
    /// For messages: the server's host, and `redis_ca_file` if set.
    host: String,
    ca_file: Option<PathBuf>,
    config: AsyncConnectionConfig,
    connection: Mutex<Option<MultiplexedConnection>>,
    /// Held while connecting, so a burst of requests opens one connection.
    connecting: tokio::sync::Mutex<()>,
    health: Mutex<Health>,
    /// Collections whose generation must still be replaced (Redis was unreachable).
    pending: Mutex<BTreeSet<String>>,
}

#[derive(Default)]
struct Health {
    /// Not before this instant after a failure.
    retry_at: Option<Instant>,
    /// Since when Redis has been failing (None: fine, or not tried yet).
    down_since: Option<Instant>,
    last_error: Option<String>,
}

impl Cache {
    /// The cache for `redis_url` (a URL checked by `config`; over TLS, trusting only the CA in
    /// `ca_file` if given), or a disabled one; its counters are registered either way so
    /// dashboards see them.
    pub fn new(
        redis_url: Option<&str>,
        ca_file: Option<&Path>,
        ttl: Duration,
        registry: &Registry,
    ) -> Cache {
        let hits = IntCounterVec::new(
            Opts::new("cache_hits_total", "Query cache hits by kind"),
            &["kind"],
        )
        .expect("valid metric");
        let misses = IntCounterVec::new(
            Opts::new("cache_misses_total", "Query cache misses by kind"),
            &["kind"],
        )
        .expect("valid metric");
        let errors = IntCounter::new(
            "cache_errors_total",
            "Query cache operations that failed (Redis unreachable, slow or refusing)",
        )
        .expect("valid metric");
        for kind in ["embedding", "results"] {
            hits.with_label_values(&[kind]);
            misses.with_label_values(&[kind]);
        }
        for m in [
            Box::new(hits.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(misses.clone()),
            Box::new(errors.clone()),
        ] {
            registry.register(m).expect("registered once");
        }
        let redis = redis_url.and_then(|url| match client(url, ca_file) {
            Ok(client) => {
                tracing::info!(
                    redis = %client.get_connection_info().addr(),
                    tls = url.starts_with("rediss://"),
                    ttl_secs = ttl.as_secs(),
                    "query cache on Redis"
                );
                Some(Redis {
                    client,
                    host: parse_host(url),
                    ca_file: ca_file.map(Path::to_path_buf),
                    config: AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(OP_TIMEOUT))
                        .set_response_timeout(Some(OP_TIMEOUT)),
                    connection: Mutex::new(None),
                    connecting: tokio::sync::Mutex::new(()),
                    health: Mutex::new(Health::default()),
                    pending: Mutex::new(BTreeSet::new()),
                })
            }
            Err(error) => {
                tracing::warn!(%error, "running without the query cache");
                None
            }
        });
        Cache {
            redis,
            ttl,
            hits,
            misses,
            errors,
        }
    }

    pub fn configured(&self) -> bool {
        self.redis.is_some()
    }

    /// For readiness: None when not configured, else whether Redis answers a PING now (tried
    /// even while backing off, so recovery is noticed at once).
    pub async fn check(&self) -> Option<Result<(), String>> {
        self.redis.as_ref()?;
        Some(
            self.run::<(String,)>(true, |p| {
                p.cmd("PING");
            })
            .await
            .map(drop),
        )
    }

    /// Looks `q` up: None when there is no cache or Redis is unavailable (then nothing is stored
    /// either).
    pub async fn lookup(&self, q: &Query<'_>) -> Option<Lookup> {
        self.redis.as_ref()?;
        let mut collections: Vec<&str> = q.collections.iter().map(String::as_str).collect();
        collections.sort_unstable();
        collections.dedup();
        if collections.is_empty() {
            return None;
        }
        let embedding_key = format!(
            "{PREFIX}:embedding:{}",
            digest(&serde_json::json!([q.model, q.text]))
        );
        let results_key = format!(
            "{PREFIX}:results:{}",
            digest(&serde_json::json!([
                q.model,
                q.text,
                collections,
                q.k,
                q.mode,
                q.weights.0.to_bits(),
                q.weights.1.to_bits(),
            ]))
        );
        let generation_keys: Vec<String> = collections.iter().map(|c| generation_key(c)).collect();
        let (mut generations, stored, embedding) = self
            .run::<(Vec<Option<String>>, Option<Vec<u8>>, Option<Vec<u8>>)>(false, |p| {
                p.cmd("MGET").arg(&generation_keys);
                p.cmd("GET").arg(&results_key);
                p.cmd("GET").arg(&embedding_key);
            })
            .await
            .ok()?;
        if generations.iter().any(Option::is_none) {
            // First search of these collections since their tokens went: start fresh ones (a
            // concurrent writer's token wins), which no stored result carries.
            let ttl = self.generation_ttl();
            (generations,) = self
                .run::<(Vec<Option<String>>,)>(false, |p| {
                    for (key, _) in generation_keys
                        .iter()
                        .zip(&generations)
                        .filter(|(_, g)| g.is_none())
                    {
                        p.cmd("SET")
                            .arg(key)
                            .arg(new_token())
                            .arg("NX")
                            .arg("EX")
                            .arg(ttl)
                            .ignore();
                    }
                    p.cmd("MGET").arg(&generation_keys);
                })
                .await
                .ok()?;
        }
        let generations: Vec<String> = generations.into_iter().collect::<Option<_>>()?;
        let results = stored
            .and_then(|bytes| serde_json::from_slice::<StoredResults>(&bytes).ok())
            .filter(|s| s.generations == generations)
            .map(|s| s.hits);
        let embedding = embedding.and_then(|bytes| decode_vector(&bytes));
        self.count("results", results.is_some());
        if results.is_none() {
            self.count("embedding", embedding.is_some());
        }
        Some(Lookup {
            results_key,
            embedding_key,
            generations,
            results,
            embedding,
        })
    }

    /// Stores a freshly computed result (and the query's embedding, if it was computed).
    pub async fn store(&self, lookup: &Lookup, hits: &[(i64, f64)], embedding: Option<&[f32]>) {
        let value = serde_json::to_vec(&StoredResults {
            generations: lookup.generations.clone(),
            hits: hits.to_vec(),
        })
        .expect("serialisable");
        let ttl = self.ttl.as_secs();
        let _ = self
            .run::<()>(false, |p| {
                p.cmd("SET")
                    .arg(&lookup.results_key)
                    .arg(value)
                    .arg("EX")
                    .arg(ttl)
                    .ignore();
                if let Some(v) = embedding {
                    p.cmd("SET")
                        .arg(&lookup.embedding_key)
                        .arg(encode_vector(v))
                        .arg("EX")
                        .arg(ttl)
                        .ignore();
                }
            })
            .await;
    }

    /// Documents of these collections became searchable or went away: cached results that
    /// cover them are void. If Redis cannot be reached now, this is done before it is read again.
    pub async fn invalidate(&self, collections: &[String]) {
        let Some(redis) = &self.redis else { return };
        redis
            .pending
            .lock()
            .unwrap()
            .extend(collections.iter().cloned());
        // `run` replaces the pending generations before anything else.
        let _ = self.run::<()>(false, |_| {}).await;
    }

    fn count(&self, kind: &str, hit: bool) {
        if hit {
            self.hits.with_label_values(&[kind]).inc();
        } else {
            self.misses.with_label_values(&[kind]).inc();
        }
    }

    /// Generation tokens outlive the results they guard; one that expires anyway only voids them.
    fn generation_ttl(&self) -> u64 {
        (self.ttl.as_secs() * 2).max(24 * 3600)
    }

    /// Runs the commands `build` adds, as one pipeline, after replacing any pending generations:
    /// `T` is the tuple of the commands' replies (ignored ones aside). Fails at once while backing
    /// off after a failure, unless `probe`.
    async fn run<T: FromRedisValue>(
        &self,
        probe: bool,
        build: impl FnOnce(&mut Pipeline),
    ) -> Result<T, String> {
        let redis = self.redis.as_ref().ok_or("not configured")?;
        if !probe {
            redis.backing_off()?;
        }
        let pending: Vec<String> = redis.pending.lock().unwrap().iter().cloned().collect();
        let mut pipe = redis::pipe();
        for collection in &pending {
            pipe.cmd("SET")
                .arg(generation_key(collection))
                .arg(new_token())
                .arg("EX")
                .arg(self.generation_ttl())
                .ignore();
        }
        build(&mut pipe);
        if pipe.is_empty() {
            return Err("nothing to do".into());
        }
        let result = async {
            let mut conn = redis.connection(probe).await?;
            match tokio::time::timeout(OP_TIMEOUT, pipe.query_async::<T>(&mut conn)).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {} ms", OP_TIMEOUT.as_millis())),
            }
        }
        .await;
        match result {
            Ok(value) => {
                if !pending.is_empty() {
                    let mut left = redis.pending.lock().unwrap();
                    for c in &pending {
                        left.remove(c);
                    }
                }
                redis.recovered();
                Ok(value)
            }
            Err(error) => {
                self.errors.inc();
                redis.failed(&error);
                Err(error)
            }
        }
    }
}

impl Redis {
    fn backing_off(&self) -> Result<(), String> {
        let health = self.health.lock().unwrap();
        match health.retry_at {
            Some(at) if Instant::now() < at => Err(format!(
                "unavailable ({}); retrying in a few seconds",
                health.last_error.as_deref().unwrap_or("failed")
            )),
            _ => Ok(()),
        }
    }

    /// The shared connection, opened if there is none (one opener at a time).
    async fn connection(&self, probe: bool) -> Result<MultiplexedConnection, String> {
        if let Some(conn) = self.connection.lock().unwrap().as_ref() {
            return Ok(conn.clone());
        }
        let _connecting = tokio::time::timeout(OP_TIMEOUT, self.connecting.lock())
            .await
            .map_err(|_| "busy reconnecting".to_string())?;
        // Someone else may have connected, or failed to, while we waited.
        if let Some(conn) = self.connection.lock().unwrap().as_ref() {
            return Ok(conn.clone());
        }
        if !probe {
            self.backing_off()?;
        }
        let conn = tokio::time::timeout(
            OP_TIMEOUT,
            self.client
                .get_multiplexed_async_connection_with_config(&self.config),
        )
        .await
        .map_err(|_| format!("cannot connect within {} ms", OP_TIMEOUT.as_millis()))?
        .map_err(|e| self.explain(&e))?;
        *self.connection.lock().unwrap() = Some(conn.clone());
        Ok(conn)
    }

    /// A failed connection in one line: a refused certificate names `redis_ca_file`.
    fn explain(&self, error: &redis::RedisError) -> String {
        match tls::tls_error(error) {
            Some(e) => {
                let trust = tls::Trust {
                    setting: "redis_ca_file",
                    ca_file: self.ca_file.as_deref(),
                };
                format!(
                    "cannot connect to Redis at {} over TLS: {}",
                    self.host,
                    tls::explain(e, &self.host, trust)
                )
            }
            None => error.to_string(),
        }
    }

    fn failed(&self, error: &impl Display) {
        // A fresh connection next time: this one may be dead or stuck.
        self.connection.lock().unwrap().take();
        let mut health = self.health.lock().unwrap();
        health.retry_at = Some(Instant::now() + BACKOFF);
        health.last_error = Some(error.to_string());
        if health.down_since.is_none() {
            health.down_since = Some(Instant::now());
            tracing::warn!(
                %error,
                retry_secs = BACKOFF.as_secs(),
                "the Redis query cache is unavailable; searching without it until it is back"
            );
        } else {
            tracing::debug!(%error, "the Redis query cache is still unavailable");
        }
    }

    fn recovered(&self) {
        let mut health = self.health.lock().unwrap();
        if let Some(since) = health.down_since.take() {
            tracing::info!(
                down_secs = since.elapsed().as_secs(),
                "the Redis query cache is back"
            );
        }
        health.retry_at = None;
        health.last_error = None;
    }
}

/// The client for a checked URL; over TLS with only the CA in `ca_file` trusted, if given. Never
/// echoes the URL (it may hold a password).
fn client(url: &str, ca_file: Option<&Path>) -> Result<redis::Client, String> {
    if url.starts_with("rediss://") {
        // The redis crate builds its TLS setup on the process's default rustls provider. Ring is
        // the one this build compiles (aws-lc would need cmake); installed by name so that no
        // second provider in the dependency tree can leave the choice open. Already installed
        // (a second cache, a test) is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let Some(path) = ca_file else {
        return redis::Client::open(url).map_err(|_| "the Redis URL is invalid".to_string());
    };
    // `config` read it at start; a file gone since is said the same way.
    let pem = tls::read_ca_file(path).map_err(|e| format!("redis_ca_file: {e}"))?;
    redis::Client::build_with_tls(
        url,
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        },
    )
    .map_err(|e| format!("redis_ca_file {}: {e}", path.display()))
}

/// `host` of a checked URL, for messages.
fn parse_host(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
}

fn generation_key(collection: &str) -> String {
    format!("{PREFIX}:generation:{collection}")
}

fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn digest(value: &serde_json::Value) -> String {
    Sha256::digest(value.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn encode_vector(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn decode_vector(bytes: &[u8]) -> Option<Vec<f32>> {
    let chunks = bytes.chunks_exact(4);
    if bytes.is_empty() || !chunks.remainder().is_empty() {
        return None;
    }
    Some(
        chunks
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_and_garbage_is_a_miss() {
        let v = vec![0.25f32, -1.5, 3.0e-7];
        assert_eq!(decode_vector(&encode_vector(&v)), Some(v));
        assert_eq!(decode_vector(&[1, 2, 3]), None);
        assert_eq!(decode_vector(&[]), None);
    }

    #[tokio::test]
    async fn without_redis_nothing_is_cached_and_nothing_fails() {
        let cache = Cache::new(None, None, Duration::from_secs(300), &Registry::new());
        assert!(!cache.configured());
        assert!(cache.check().await.is_none());
        let q = Query {
            model: "m",
            text: "q",
            collections: &["c".to_string()],
            k: 5,
            mode: "hybrid",
            weights: (1.0, 1.0),
        };
        assert!(cache.lookup(&q).await.is_none());
        cache.invalidate(&["c".to_string()]).await;
    }

    #[tokio::test]
    async fn an_unreachable_redis_fails_fast_and_then_backs_off() {
        // A port nothing listens on: bind one, then close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let registry = Registry::new();
        let url = format!("redis://127.0.0.1:{port}");
        let cache = Cache::new(Some(&url), None, Duration::from_secs(300), &registry);
        let q = Query {
            model: "m",
            text: "q",
            collections: &["c".to_string()],
            k: 5,
            mode: "hybrid",
            weights: (1.0, 1.0),
        };
        let started = Instant::now();
        assert!(cache.lookup(&q).await.is_none());
        assert_eq!(cache.errors.get(), 1);
        // Backing off: no further attempt, no further error.
        for _ in 0..10 {
            assert!(cache.lookup(&q).await.is_none());
        }
        cache.invalidate(&["c".to_string()]).await;
        assert_eq!(cache.errors.get(), 1);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(
            cache.redis.as_ref().unwrap().pending.lock().unwrap().len(),
            1,
            "the invalidation waits for Redis"
        );
        assert!(matches!(cache.check().await, Some(Err(_))));
    }
}
