-- Collections, documents, their chunks with a full-text index and embeddings, conversations.
CREATE TABLE collections (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    owner_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    shared     INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX collections_owner ON collections (owner_id);

CREATE TABLE collection_members (
    collection_id TEXT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at      INTEGER NOT NULL,
    PRIMARY KEY (collection_id, user_id)
) STRICT;
CREATE INDEX collection_members_user ON collection_members (user_id);

-- status: queued -> processing -> ready | failed. Chunks become searchable only with 'ready',
-- and a document's chunks are written in the same transaction that makes it ready.
CREATE TABLE documents (
    id           TEXT PRIMARY KEY NOT NULL,
    collection_id TEXT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    filename     TEXT NOT NULL,
    media_type   TEXT NOT NULL,
    size         INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'ready', 'failed')),
    progress     REAL NOT NULL DEFAULT 0,
    error        TEXT,
    chunk_count  INTEGER NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0,
    lease_until  INTEGER,
    not_before   INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (collection_id, content_hash)
) STRICT;
CREATE INDEX documents_status ON documents (status, not_before);

CREATE TABLE document_texts (
    document_id TEXT PRIMARY KEY NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    text        TEXT NOT NULL
) STRICT;

CREATE TABLE chunks (
    id            INTEGER PRIMARY KEY,
    document_id   TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    collection_id TEXT NOT NULL,
    ordinal       INTEGER NOT NULL,
    text          TEXT NOT NULL,
    start_offset  INTEGER NOT NULL,
    end_offset    INTEGER NOT NULL
) STRICT;
CREATE INDEX chunks_document ON chunks (document_id, ordinal);

-- The persistent full-text index (FTS5), kept in step with `chunks` by triggers.
CREATE VIRTUAL TABLE chunks_fts USING fts5 (
    text, content = 'chunks', content_rowid = 'id', tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;

-- One embedding per chunk, for the model named; vectors of another model are never compared.
CREATE TABLE chunk_vectors (
    chunk_id  INTEGER PRIMARY KEY NOT NULL REFERENCES chunks (id) ON DELETE CASCADE,
    model     TEXT NOT NULL,
    dim       INTEGER NOT NULL,
    embedding BLOB NOT NULL
) STRICT;
CREATE INDEX chunk_vectors_model ON chunk_vectors (model);

CREATE TABLE conversations (
    id             TEXT PRIMARY KEY NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title          TEXT NOT NULL,
    collection_ids TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX conversations_user ON conversations (user_id, updated_at);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content         TEXT NOT NULL,
    mode            TEXT,
    citations       TEXT NOT NULL DEFAULT '[]',
    created_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX messages_conversation ON messages (conversation_id, id);
