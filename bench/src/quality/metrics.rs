//! Ranking metrics as BEIR reports them (through pytrec_eval, i.e. trec_eval): nDCG@k with
//! gain = the judged grade and a log2(rank + 1) discount, recall@k, and MRR@k (the reciprocal
//! rank of the first relevant document within the first k). A document is relevant when its
//! grade is above 0; queries without a relevant document are left out of the means, and a
//! query the run has no ranking for scores 0. Shared by `cargo xtask bench --quality` and the
//! CI test of retrieval quality (tests/it/rag/retrieval.rs), so both measure the same way.

use std::collections::{BTreeMap, HashMap};

/// Graded judgements of one query: document id → grade.
pub type Judged = HashMap<String, i64>;

/// nDCG at `k` of one ranking.
pub fn ndcg(ranked: &[String], judged: &Judged, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, id)| gain(judged.get(id).copied().unwrap_or(0)) / discount(i))
        .sum();
    let mut ideal: Vec<i64> = judged.values().copied().filter(|&g| g > 0).collect();
    ideal.sort_unstable();
    ideal.reverse();
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, &g)| gain(g) / discount(i))
        .sum();
    if idcg == 0.0 {
        0.0
    } else {
        dcg / idcg
    }
}

fn gain(grade: i64) -> f64 {
    grade.max(0) as f64
}

/// The discount of the document at 0-based position `i`: log2 of its 1-based rank plus one.
fn discount(i: usize) -> f64 {
    (i as f64 + 2.0).log2()
}

/// The share of the relevant documents that are among the first `k`.
pub fn recall(ranked: &[String], judged: &Judged, k: usize) -> f64 {
    let relevant = judged.values().filter(|&&g| g > 0).count();
    if relevant == 0 {
        return 0.0;
    }
    let found = ranked
        .iter()
        .take(k)
        .filter(|id| relevant_in(judged, id))
        .count();
    found as f64 / relevant as f64
}

/// 1 / the rank of the first relevant document among the first `k`, 0 if none.
pub fn mrr(ranked: &[String], judged: &Judged, k: usize) -> f64 {
    ranked
        .iter()
        .take(k)
        .position(|id| relevant_in(judged, id))
        .map_or(0.0, |i| 1.0 / (i as f64 + 1.0))
}

fn relevant_in(judged: &Judged, id: &str) -> bool {
    judged.get(id).is_some_and(|&g| g > 0)
}

/// The four figures the quality report gives, averaged over queries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    pub ndcg_at_10: f64,
    pub recall_at_1: f64,
    pub recall_at_10: f64,
    pub mrr_at_10: f64,
    /// Queries averaged over (those with a relevant document).
    pub queries: usize,
}

/// Means over every judged query with a relevant document: `runs` maps a query id to its
/// ranked document ids (best first), `qrels` a query id to its judgements.
pub fn evaluate(runs: &HashMap<String, Vec<String>>, qrels: &BTreeMap<String, Judged>) -> Scores {
    let mut sum = [0.0; 4];
    let mut n = 0;
    let none = Vec::new();
    for (query, judged) in qrels {
        if !judged.values().any(|&g| g > 0) {
            continue;
        }
        let ranked = runs.get(query).unwrap_or(&none);
        sum[0] += ndcg(ranked, judged, 10);
        sum[1] += recall(ranked, judged, 1);
        sum[2] += recall(ranked, judged, 10);
        sum[3] += mrr(ranked, judged, 10);
        n += 1;
    }
    let mean = |s: f64| if n == 0 { 0.0 } else { s / n as f64 };
    Scores {
        ndcg_at_10: mean(sum[0]),
        recall_at_1: mean(sum[1]),
        recall_at_10: mean(sum[2]),
        mrr_at_10: mean(sum[3]),
        queries: n,
    }
}

/// Passages (as their documents' ids, best first) to a ranking of documents: each document at
/// the place of its first passage.
pub fn documents_in_order<'a>(passages: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    passages
        .into_iter()
        .filter(|d| seen.insert(*d))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn judged(v: &[(&str, i64)]) -> Judged {
        v.iter().map(|(d, g)| (d.to_string(), *g)).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn ndcg_with_graded_relevance_by_hand() {
        // Ranked: a (2), x (0), b (1). DCG = 2/log2(2) + 0 + 1/log2(4) = 2 + 0.5 = 2.5.
        // Ideal: 2, 1 → 2/1 + 1/log2(3) = 2.630929753571457.
        let j = judged(&[("a", 2), ("b", 1), ("z", 0)]);
        let got = ndcg(&ids(&["a", "x", "b"]), &j, 10);
        assert!(close(got, 2.5 / (2.0 + 1.0 / 3f64.log2())), "{got}");
        // Cut at 1: DCG = 2, IDCG = 2.
        assert!(close(ndcg(&ids(&["a", "x", "b"]), &j, 1), 1.0));
        // The one relevant document third: 1/log2(4) = 0.5.
        let one = judged(&[("b", 1)]);
        assert!(close(ndcg(&ids(&["x", "y", "b"]), &one, 10), 0.5));
        // Beyond the cut, or absent: 0.
        assert!(close(ndcg(&ids(&["x", "y", "b"]), &one, 2), 0.0));
        assert!(close(ndcg(&[], &one, 10), 0.0));
    }

    #[test]
    fn recall_counts_relevant_documents_within_the_cut() {
        let j = judged(&[("a", 1), ("b", 2), ("c", 0)]);
        let r = ids(&["c", "a", "x", "b"]);
        assert!(close(recall(&r, &j, 1), 0.0));
        assert!(close(recall(&r, &j, 2), 0.5));
        assert!(close(recall(&r, &j, 10), 1.0));
    }

    #[test]
    fn mrr_is_the_first_relevant_rank_within_the_cut() {
        let j = judged(&[("b", 1), ("d", 1)]);
        assert!(close(mrr(&ids(&["a", "b", "d"]), &j, 10), 0.5));
        assert!(close(mrr(&ids(&["b"]), &j, 10), 1.0));
        assert!(close(mrr(&ids(&["a", "c", "b"]), &j, 2), 0.0));
    }

    #[test]
    fn evaluate_averages_over_judged_queries() {
        let qrels: BTreeMap<String, Judged> = [
            ("q1".to_string(), judged(&[("a", 1)])),
            ("q2".to_string(), judged(&[("b", 1)])),
            ("q3".to_string(), judged(&[("c", 0)])), // no relevant document: left out
            ("q4".to_string(), judged(&[("d", 1)])), // no run: scores 0
        ]
        .into_iter()
        .collect();
        let runs: HashMap<String, Vec<String>> = [
            ("q1".to_string(), ids(&["a"])),
            ("q2".to_string(), ids(&["x", "b"])),
        ]
        .into_iter()
        .collect();
        let s = evaluate(&runs, &qrels);
        assert_eq!(s.queries, 3);
        assert!(close(s.recall_at_1, 1.0 / 3.0));
        assert!(close(s.recall_at_10, 2.0 / 3.0));
        assert!(close(s.mrr_at_10, 1.5 / 3.0));
        assert!(close(s.ndcg_at_10, (1.0 + 1.0 / 3f64.log2()) / 3.0));
    }

    #[test]
    fn passages_rank_documents_by_their_first_passage() {
        let got = documents_in_order(["d2", "d1", "d2", "d3", "d1"]);
        assert_eq!(got, ids(&["d2", "d1", "d3"]));
    }
}
