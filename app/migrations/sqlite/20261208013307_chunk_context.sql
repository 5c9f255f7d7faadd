-- berth-migration: expand
-- Each chunk's context: the document's title and the section headings above the passage
-- ("qemu-img › Command description › convert"), indexed with the passage so a passage that
-- never names its topic is found by it. Empty for chunks indexed before (re-upload to add it).
ALTER TABLE chunks ADD COLUMN context TEXT NOT NULL DEFAULT '';

-- The full-text index reads context and text as one field, so BM25 counts them as one
-- document, as PostgreSQL's tsv does: its external content is a view of that, and the triggers
-- write the same value (FTS5's 'delete' must be given exactly what was inserted).
DROP TRIGGER chunks_fts_insert;
DROP TRIGGER chunks_fts_delete;
DROP TABLE chunks_fts;
CREATE VIEW chunks_indexed AS
    SELECT id, CASE WHEN context = '' THEN text ELSE context || char(10) || char(10) || text END AS text
    FROM chunks;
CREATE VIRTUAL TABLE chunks_fts USING fts5 (
    text, content = 'chunks_indexed', content_rowid = 'id', tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts (rowid, text) VALUES (
        new.id, CASE WHEN new.context = '' THEN new.text ELSE new.context || char(10) || char(10) || new.text END);
END;
CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES (
        'delete', old.id, CASE WHEN old.context = '' THEN old.text ELSE old.context || char(10) || char(10) || old.text END);
END;
INSERT INTO chunks_fts (chunks_fts) VALUES ('rebuild');
