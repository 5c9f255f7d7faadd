-- BM25 as SQLite's FTS5 defines it (porter unicode61): every word is a token, stop words
-- included, a hyphenated word counts as its parts, each stemmed; a chunk's length is its count
-- of tokens. `english` dropped stop words and indexed "qemu-img" as a third token beside its
-- parts, so lengths and document frequencies disagreed with the embedded store's.
CREATE TEXT SEARCH DICTIONARY berth_stem (TEMPLATE = snowball, Language = english);
CREATE TEXT SEARCH CONFIGURATION berth (COPY = simple);
ALTER TEXT SEARCH CONFIGURATION berth
    ALTER MAPPING FOR asciiword, word, numword, hword_asciipart, hword_part, hword_numpart
    WITH berth_stem;
ALTER TEXT SEARCH CONFIGURATION berth DROP MAPPING FOR asciihword, hword, numhword;

DROP INDEX chunks_tsv;
ALTER TABLE chunks DROP COLUMN tsv;
ALTER TABLE chunks ADD COLUMN tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('berth'::regconfig, text)) STORED;
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);

-- BM25 ranks by a chunk's length against the mean, and a tsvector gives its length only by
-- walking it: the count is kept beside it. A generated column cannot read another (tsv), so it
-- tokenizes the text again; immutable, so PostgreSQL allows it.
CREATE FUNCTION berth_term_count(tsvector) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT coalesce(sum(coalesce(cardinality(positions), 1)), 0)::integer FROM unnest($1) $$;

ALTER TABLE chunks ADD COLUMN term_count integer
    GENERATED ALWAYS AS (berth_term_count(to_tsvector('berth'::regconfig, text))) STORED;
