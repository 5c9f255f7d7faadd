-- The uploaded file's bytes live in the database, so that any instance's ingestion worker can
-- read them and instances need no shared disk (several replicas on Kubernetes). Documents
-- uploaded before this migration keep their file under the data directory's files/.
CREATE TABLE document_files (
    document_id TEXT PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    bytes       BYTEA NOT NULL
);
