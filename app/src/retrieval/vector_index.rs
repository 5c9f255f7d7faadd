//! The embedded store's vector index: every vector of the current model in one contiguous,
//! L2-normalised matrix in memory, searched exactly (cosine = dot product), filtered by the
//! collections the caller may read. Persisted in SQLite (`chunk_vectors`), loaded at start.

use std::collections::HashMap;
use std::sync::RwLock;

#[derive(Default)]
struct Inner {
    dim: usize,
    ids: Vec<i64>,
    /// Index into `collections` for each row.
    owners: Vec<u32>,
    data: Vec<f32>,
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
            if let Some(&row) = inner.row_of.get(&id) {
                let dim = inner.dim;
                inner.data[row * dim..(row + 1) * dim].copy_from_slice(&v);
                inner.owners[row] = owner;
                continue;
            }
            let row = inner.ids.len();
            inner.ids.push(id);
            inner.owners.push(owner);
            inner.data.extend_from_slice(&v);
            inner.row_of.insert(id, row);
        }
    }

    pub fn remove(&self, ids: &[i64]) {
        let mut inner = self.inner.write().expect("index lock");
        let dim = inner.dim;
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
                inner.row_of.insert(moved, row);
            }
            inner.ids.pop();
            inner.owners.pop();
            inner.data.truncate(last * dim);
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
        // A small sorted buffer beats a heap for k in the tens.
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
        for (row, v) in inner.data.chunks_exact(inner.dim).enumerate() {
            if !allowed[inner.owners[row] as usize] {
                continue;
            }
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
}
