-- berth-migration: expand
-- Each chunk's context: the document's title and the section headings above the passage
-- ("qemu-img › Command description › convert"), indexed with the passage so a passage that
-- never names its topic is found by it. Empty for chunks indexed before (re-upload to add it).
ALTER TABLE chunks ADD COLUMN context text NOT NULL DEFAULT '';

-- BM25's document is the context and the text as one field, as SQLite's index has it: the
-- generated columns (0006) are made again over both.
DROP INDEX chunks_tsv;
ALTER TABLE chunks DROP COLUMN tsv;
ALTER TABLE chunks DROP COLUMN term_count;
ALTER TABLE chunks ADD COLUMN tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('berth'::regconfig,
        regexp_replace(context || ' ' || text, '[^[:alnum:]]+', ' ', 'g'))) STORED;
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);
ALTER TABLE chunks ADD COLUMN term_count integer
    GENERATED ALWAYS AS (berth_term_count(to_tsvector('berth'::regconfig,
        regexp_replace(context || ' ' || text, '[^[:alnum:]]+', ' ', 'g')))) STORED;
