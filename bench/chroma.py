"""The vector-index workload of `berth-bench` against Chroma (PyPI `chromadb`), in-process.

Reads the same vectors and queries the Rust harness used (little-endian f32, row-major), adds the
vectors to an in-memory Chroma collection (cosine space, HNSW), then times top-10 queries one by
one. Prints one JSON object: insert rate, query p50/p95 in ms, recall@10 against an exact scan.
"""

import json
import sys
import time

import numpy as np
import chromadb


def main() -> None:
    vectors_path, queries_path, dim = sys.argv[1], sys.argv[2], int(sys.argv[3])
    vectors = np.fromfile(vectors_path, dtype="<f4").reshape(-1, dim)
    queries = np.fromfile(queries_path, dtype="<f4").reshape(-1, dim)
    client = chromadb.EphemeralClient()
    col = client.create_collection("bench", metadata={"hnsw:space": "cosine"})
    ids = [str(i) for i in range(len(vectors))]
    start = time.perf_counter()
    batch = 5000
    for i in range(0, len(vectors), batch):
        col.add(ids=ids[i : i + batch], embeddings=vectors[i : i + batch])
    insert_secs = time.perf_counter() - start
    lat = []
    for q in queries:
        t = time.perf_counter()
        col.query(query_embeddings=[q], n_results=10, include=[])
        lat.append((time.perf_counter() - t) * 1000.0)
    lat.sort()
    pick = lambda p: lat[round((len(lat) - 1) * p)]
    norm = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    found = 0
    checked = min(20, len(queries))
    for q in queries[:checked]:
        exact = np.argsort(-(norm @ (q / np.linalg.norm(q))))[:10]
        got = col.query(query_embeddings=[q], n_results=10, include=[])["ids"][0]
        found += len(set(map(int, got)) & set(exact.tolist()))
    print(
        json.dumps(
            {
                "insert_per_s": len(vectors) / insert_secs,
                "p50_ms": pick(0.5),
                "p95_ms": pick(0.95),
                "recall_at_10": found / (checked * 10),
                "chromadb": chromadb.__version__,
                "queries": len(queries),
            }
        )
    )


if __name__ == "__main__":
    main()
