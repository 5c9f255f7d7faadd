//! The embedded vector index on its own (build, recall, latency), and Chroma's HNSW beside it
//! when its Python package is installed.

use super::*;

pub(crate) fn vector_index(args: &Args, figures: &mut Vec<Figure>) {
    let (n, dim, queries) = (100_000usize, 384usize, if args.quick { 200 } else { 1000 });
    // Clustered like embeddings are (topics), not uniform noise.
    let mut rng = Rng(42);
    let centres: Vec<Vec<f32>> = (0..1000)
        .map(|_| (0..dim).map(|_| rng.unit()).collect())
        .collect();
    let near = |rng: &mut Rng, c: usize| -> Vec<f32> {
        centres[c].iter().map(|x| x + 0.3 * rng.unit()).collect()
    };
    let vectors: Vec<(i64, String, Vec<f32>)> = (0..n)
        .map(|i| (i as i64, "c".to_string(), near(&mut rng, i % 1000)))
        .collect();
    let exact_copy: Vec<Vec<f32>> = vectors.iter().map(|v| v.2.clone()).collect();
    let index = VectorIndex::default();
    let start = Instant::now();
    index.insert(vectors);
    let secs = start.elapsed().as_secs_f64();
    figures.push(Figure {
        name: "vector index: insert 100k×384".into(),
        value: n as f64 / secs,
        unit: "vectors/s",
        how: "in-process, one batch: normalise, sign bits, copy".into(),
    });
    let collections = vec!["c".to_string()];
    let mut lat = Vec::with_capacity(queries);
    let mut found = 0;
    let checked = 20;
    let query_vectors: Vec<Vec<f32>> = (0..queries)
        .map(|i| near(&mut rng, (i * 37) % 1000))
        .collect();
    for (i, q) in query_vectors.iter().enumerate() {
        let q = q.clone();
        let t = Instant::now();
        let hits = index.search(&q, &collections, 10);
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        if i < checked {
            // Recall against an exact scan.
            let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
            let qn = norm(&q);
            let mut exact: Vec<(f32, i64)> = exact_copy
                .iter()
                .enumerate()
                .map(|(j, v)| {
                    (
                        v.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>() / (norm(v) * qn),
                        j as i64,
                    )
                })
                .collect();
            exact.sort_by(|a, b| b.0.total_cmp(&a.0));
            found += exact
                .iter()
                .take(10)
                .filter(|e| hits.iter().any(|h| h.0 == e.1))
                .count();
        }
    }
    for (p, name) in [(0.5, "p50"), (0.95, "p95")] {
        figures.push(Figure {
            name: format!("vector index: top-10 of 100k×384 {name}"),
            value: percentile(&mut lat, p),
            unit: "ms",
            how: format!("sign-bit scan + exact rescoring, {queries} queries, one thread"),
        });
    }
    figures.push(Figure {
        name: "vector index: recall@10 vs exact".into(),
        value: found as f64 / (checked * 10) as f64,
        unit: "",
        how: format!("{checked} queries compared with a brute-force cosine scan"),
    });
    let berth_p50 = percentile(&mut lat, 0.5);
    let berth_p95 = percentile(&mut lat, 0.95);
    // Chroma adds only a few hundred vectors a second here: --quick gives it the first 20k.
    let chroma_n = if args.quick { 20_000 } else { n };
    if let Err(e) = chroma(
        &exact_copy[..chroma_n],
        &query_vectors,
        (n as f64 / secs, berth_p50, berth_p95),
        figures,
    ) {
        eprintln!("bench: the Chroma comparison did not run: {e:#}");
    }
}

/// The same vectors and queries through Chroma (PyPI `chromadb`, in-process, in a virtualenv
/// under target/bench), reported as ratios to Berth's index. `berth` is (inserts/s, p50, p95).
pub(crate) fn chroma(
    vectors: &[Vec<f32>],
    queries: &[Vec<f32>],
    berth: (f64, f64, f64),
    figures: &mut Vec<Figure>,
) -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("root")?;
    let dir = root.join("target/bench");
    let python = dir.join("venv/bin/python");
    if !python.is_file() {
        eprintln!("bench: installing chromadb into target/bench/venv (once)");
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(dir.join("venv"))
            .status()?
            .success()
            && Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "chromadb", "numpy"])
                .status()?
                .success();
        if !ok {
            bail!("could not install chromadb");
        }
    }
    let write = |path: &Path, rows: &[Vec<f32>]| {
        let bytes: Vec<u8> = rows
            .iter()
            .flat_map(|r| r.iter().flat_map(|x| x.to_le_bytes()))
            .collect();
        std::fs::write(path, bytes)
    };
    let (vpath, qpath) = (dir.join("vectors.f32"), dir.join("queries.f32"));
    write(&vpath, vectors)?;
    write(&qpath, queries)?;
    let dim = vectors[0].len().to_string();
    let out = Command::new(&python)
        .arg(root.join("bench/chroma.py"))
        .args([&vpath, &qpath])
        .arg(&dim)
        .env("ANONYMIZED_TELEMETRY", "False")
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("bench/chroma.py failed ({})", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let result: Value = serde_json::from_str(text.lines().last().unwrap_or_default())
        .with_context(|| format!("bench/chroma.py printed {text}"))?;
    let field = |k: &str| result[k].as_f64().unwrap_or(f64::NAN);
    let version = result["chromadb"].as_str().unwrap_or("?");
    let how = format!(
        "chromadb {version} in-process (EphemeralClient, HNSW, cosine), the same {}×{dim} vectors \
         (Berth's index held 100k) and {} queries as above; recall@10 {:.2}",
        vectors.len(),
        queries.len(),
        field("recall_at_10")
    );
    for (name, value, unit) in [
        ("Chroma: insert", field("insert_per_s"), "vectors/s"),
        ("Chroma: top-10 p50", field("p50_ms"), "ms"),
        ("Chroma: top-10 p95", field("p95_ms"), "ms"),
    ] {
        figures.push(Figure {
            name: name.into(),
            value,
            unit,
            how: how.clone(),
        });
    }
    for (name, value) in [
        (
            "Berth vs Chroma: insert rate",
            berth.0 / field("insert_per_s"),
        ),
        (
            "Berth vs Chroma: top-10 p50 speed-up",
            field("p50_ms") / berth.1,
        ),
        (
            "Berth vs Chroma: top-10 p95 speed-up",
            field("p95_ms") / berth.2,
        ),
    ] {
        figures.push(Figure {
            name: name.into(),
            value,
            unit: "×",
            how: "ratio of the two rows above (>1: Berth is faster)".into(),
        });
    }
    Ok(())
}
