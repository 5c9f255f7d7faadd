-- PostgreSQL's twin indexes chunks with FTS5's tokens and keeps each chunk's length, for BM25.
-- FTS5 has both already (its bm25() reads them), so there is nothing to change here; the
-- migration exists so both backends share one list of versions.
SELECT 1;
