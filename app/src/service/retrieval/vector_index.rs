//! The embedded store's vector index: every vector of the current model in one contiguous,
//! L2-normalised matrix in memory, filtered by the collections the caller may read. Persisted in
//! SQLite (`chunk_vectors`), loaded at start.
//!
//! Large indexes are searched in two steps: a scan of one sign bit per dimension (Hamming
//! distance approximates the angle, and 384 dimensions fit in 48 bytes, so the scan reads a
//! thirty-second of the floats), then exact cosine rescoring of the best candidates. Small ones
//! are scanned exactly.

use std::collections::HashMap;
use std::sync::RwLock;

#[derive(Default)]
struct Inner {
    dim: usize,
    ids: Vec<i64>,
    /// Index into `collections` for each row.
    owners: Vec<u32>,
    data: Vec<f32>,
    /// Sign bits of each row, `words` u64s per row.
    bits: Vec<u64>,
    words: usize,
    row_of: HashMap<i64, usize>,
    collections: Vec<String>,
    collection_index: HashMap<String, u32>,
}

#[derive(Default)]
pub struct VectorIndex {
    inner: RwLock<Inner>,
}

pub fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Dot product with eight independent accumulators, which the compiler turns into SIMD.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

impl VectorIndex {
    pub fn len(&self) -> usize {
        self.inner.read().expect("index lock").ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dim(&self) -> usize {
        self.inner.read().expect("index lock").dim
    }

    /// Adds (or replaces) vectors; ones of another dimension than the index's are ignored
    /// (the model changed: they are re-embedded, never mixed).
    pub fn insert(&self, items: impl IntoIterator<Item = (i64, String, Vec<f32>)>) {
        let mut inner = self.inner.write().expect("index lock");
        for (id, collection, mut v) in items {
            if inner.dim == 0 {
                inner.dim = v.len();
                inner.words = v.len().div_ceil(64);
            }
            if v.len() != inner.dim || v.is_empty() {
                continue;
            }
            normalise(&mut v);
            let owner = match inner.collection_index.get(&collection) {
                Some(i) => *i,
                None => {
                    let i = inner.collections.len() as u32;
                    inner.collections.push(collection.clone());
                    inner.collection_index.insert(collection, i);
                    i
                }
            };
            let signs = sign_bits(&v);
            if let Some(&row) = inner.row_of.get(&id) {
                let (dim, words) = (inner.dim, inner.words);
                inner.data[row * dim..(row + 1) * dim].copy_from_slice(&v);
                inner.bits[row * words..(row + 1) * words].copy_from_slice(&signs);
                inner.owners[row] = owner;
                continue;
            }
            let row = inner.ids.len();
            inner.ids.push(id);
            inner.owners.push(owner);
            inner.data.extend_from_slice(&v);
            inner.bits.extend_from_slice(&signs);
            inner.row_of.insert(id, row);
        }
    }

    pub fn remove(&self, ids: &[i64]) {
        let mut inner = self.inner.write().expect("index lock");
        let (dim, words) = (inner.dim, inner.words);
        for id in ids {
            let Some(row) = inner.row_of.remove(id) else {
                continue;
            };
            let last = inner.ids.len() - 1;
            if row != last {
                // Move the last row into the hole.
                let moved = inner.ids[last];
                inner.ids[row] = moved;
                inner.owners[row] = inner.owners[last];
                inner
                    .data
                    .copy_within(last * dim..(last + 1) * dim, row * dim);
                inner
                    .bits
                    .copy_within(last * words..(last + 1) * words, row * words);
                inner.row_of.insert(moved, row);
            }
            inner.ids.pop();
            inner.owners.pop();
            inner.data.truncate(last * dim);
            inner.bits.truncate(last * words);
        }
    }

    pub fn clear(&self) {
        *self.inner.write().expect("index lock") = Inner::default();
    }

    /// The `k` most similar vectors among `collections`: (chunk id, cosine similarity).
    pub fn search(&self, query: &[f32], collections: &[String], k: usize) -> Vec<(i64, f32)> {
        let inner = self.inner.read().expect("index lock");
        if inner.dim == 0 || query.len() != inner.dim || k == 0 {
            return Vec::new();
        }
        let mut q = query.to_vec();
        normalise(&mut q);
        let mut allowed = vec![false; inner.collections.len()];
        for c in collections {
            if let Some(&i) = inner.collection_index.get(c) {
                allowed[i as usize] = true;
            }
        }
        let rows: Vec<usize> = if inner.ids.len() <= EXACT_BELOW {
            (0..inner.ids.len())
                .filter(|r| allowed[inner.owners[*r] as usize])
                .collect()
        } else {
            // Candidates by Hamming distance of the sign bits, many more than asked for.
            let qbits = sign_bits(&q);
            let mut candidates: Vec<(u32, u32)> = inner
                .bits
                .chunks_exact(inner.words)
                .enumerate()
                .filter(|(r, _)| allowed[inner.owners[*r] as usize])
                .map(|(r, b)| {
                    let d: u32 = b
                        .iter()
                        .zip(&qbits)
                        .map(|(x, y)| (x ^ y).count_ones())
                        .sum();
                    (d, r as u32)
                })
                .collect();
            let keep = (k * OVERSAMPLE).max(MIN_CANDIDATES).min(candidates.len());
            if keep < candidates.len() {
                candidates.select_nth_unstable(keep);
                candidates.truncate(keep);
            }
            candidates.into_iter().map(|(_, r)| r as usize).collect()
        };
        // Exact cosine for the survivors; a small sorted buffer beats a heap for k in the tens.
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
        for row in rows {
            let v = &inner.data[row * inner.dim..(row + 1) * inner.dim];
            let score = dot(&q, v);
            if best.len() == k && score <= best[k - 1].0 {
                continue;
            }
            let at = best.partition_point(|(s, _)| *s >= score);
            best.insert(at, (score, row));
            best.truncate(k);
        }
        best.into_iter()
            .map(|(s, row)| (inner.ids[row], s))
            .collect()
    }
}

/// Indexes up to this size are scanned exactly: the sign-bit pass would not pay for itself.
const EXACT_BELOW: usize = 20_000;
/// Candidates rescored per result asked for, and at least this many.
const OVERSAMPLE: usize = 16;
const MIN_CANDIDATES: usize = 256;

fn sign_bits(v: &[f32]) -> Vec<u64> {
    let mut out = vec![0u64; v.len().div_ceil(64)];
    for (i, x) in v.iter().enumerate() {
        if *x > 0.0 {
            out[i / 64] |= 1 << (i % 64);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nearest_within_allowed_collections_and_forgets_removed() {
        let idx = VectorIndex::default();
        idx.insert(vec![
            (1, "a".into(), vec![1.0, 0.0, 0.0]),
            (2, "a".into(), vec![0.7, 0.7, 0.0]),
            (3, "b".into(), vec![1.0, 0.01, 0.0]),
            (4, "a".into(), vec![0.0, 0.0, 1.0]),
        ]);
        let hits = idx.search(&[1.0, 0.0, 0.0], &["a".into()], 2);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [1, 2]);
        assert!((hits[0].1 - 1.0).abs() < 1e-6);
        let hits = idx.search(&[1.0, 0.0, 0.0], &["a".into(), "b".into()], 2);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [1, 3]);
        idx.remove(&[1]);
        let hits = idx.search(&[1.0, 0.0, 0.0], &["a".into()], 1);
        assert_eq!(hits[0].0, 2);
        assert_eq!(idx.len(), 3);
        // Another dimension is never mixed in.
        idx.insert(vec![(9, "a".into(), vec![1.0, 0.0])]);
        assert_eq!(idx.len(), 3);
    }

    #[test]
    fn removal_keeps_rows_and_sign_bits_together() {
        let idx = VectorIndex::default();
        let n = EXACT_BELOW as i64 + 100;
        idx.insert((0..n).map(|i| {
            let mut v = vec![-1.0f32; 64];
            v[(i % 64) as usize] = 1.0 + i as f32 / n as f32;
            (i, "c".to_string(), v)
        }));
        idx.remove(&(0..n).filter(|i| i % 2 == 0).collect::<Vec<_>>());
        let mut q = vec![-1.0f32; 64];
        q[5] = 1.0;
        let hits = idx.search(&q, &["c".to_string()], 3);
        assert!(
            hits.iter().all(|(id, _)| id % 64 == 5 && id % 2 == 1),
            "{hits:?}"
        );
    }

    #[test]
    fn the_two_step_search_finds_what_an_exact_scan_finds() {
        // Clustered vectors, as embeddings are: 400 topics, 60 documents around each.
        let mut seed = 7u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let dim = 128;
        let centres: Vec<Vec<f32>> = (0..400)
            .map(|_| (0..dim).map(|_| rnd()).collect())
            .collect();
        let idx = VectorIndex::default();
        let mut all = Vec::new();
        for i in 0..24_000i64 {
            let c = &centres[(i % 400) as usize];
            let v: Vec<f32> = c.iter().map(|x| x + 0.25 * rnd()).collect();
            all.push((i, v));
        }
        idx.insert(all.iter().map(|(i, v)| (*i, "c".to_string(), v.clone())));
        let collections = ["c".to_string()];
        let mut found = 0;
        for t in 0..50 {
            let q: Vec<f32> = centres[t * 7].iter().map(|x| x + 0.25 * rnd()).collect();
            let mut qn = q.clone();
            normalise(&mut qn);
            let mut exact: Vec<(f32, i64)> = all
                .iter()
                .map(|(i, v)| {
                    let mut vn = v.clone();
                    normalise(&mut vn);
                    (dot(&qn, &vn), *i)
                })
                .collect();
            exact.sort_by(|a, b| b.0.total_cmp(&a.0));
            let want: Vec<i64> = exact.iter().take(10).map(|e| e.1).collect();
            let got: Vec<i64> = idx
                .search(&q, &collections, 10)
                .iter()
                .map(|h| h.0)
                .collect();
            found += want.iter().filter(|w| got.contains(w)).count();
        }
        let recall = found as f64 / 500.0;
        assert!(recall >= 0.95, "recall@10 against exact search: {recall}");
    }
}
