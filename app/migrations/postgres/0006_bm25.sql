-- BM25 as SQLite's FTS5 defines it (porter unicode61): every run of letters and digits is a
-- token (so "os.path.join" is three, as FTS5 splits it, where PostgreSQL's parser keeps one
-- "host" token that the query's "path" never matches), stop words included, each stemmed; a
-- chunk's length is its count of tokens. `english` dropped stop words and indexed dotted names,
-- URLs and hyphenated words whole, so lengths, matches and document frequencies disagreed with
-- the embedded store's.
CREATE TEXT SEARCH DICTIONARY berth_stem (TEMPLATE = snowball, Language = english);
CREATE TEXT SEARCH CONFIGURATION berth (COPY = simple);
-- Words stemmed; numbers (and anything else the parser finds in a run of letters and digits)
-- kept as they are, as `simple` keeps them.
ALTER TEXT SEARCH CONFIGURATION berth ALTER MAPPING FOR asciiword, word, numword WITH berth_stem;

DROP INDEX chunks_tsv;
ALTER TABLE chunks DROP COLUMN tsv;
ALTER TABLE chunks ADD COLUMN tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('berth'::regconfig, regexp_replace(text, '[^[:alnum:]]+', ' ', 'g'))) STORED;
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);

-- BM25 ranks by a chunk's length against the mean, and a tsvector gives its length only by
-- walking it: the count is kept beside it. A generated column cannot read another (tsv), so it
-- tokenizes the text again; immutable, so PostgreSQL allows it. (The configuration is named in
-- the columns, not in a function: a column resolves it once, a function body by search_path,
-- which pg_dump's restore empties.)
CREATE FUNCTION berth_term_count(tsvector) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT coalesce(sum(coalesce(cardinality(positions), 1)), 0)::integer FROM unnest($1) $$;

ALTER TABLE chunks ADD COLUMN term_count integer
    GENERATED ALWAYS AS (berth_term_count(
        to_tsvector('berth'::regconfig, regexp_replace(text, '[^[:alnum:]]+', ' ', 'g')))) STORED;
