-- Facts about this installation that must survive restarts (instance id, embedding model, ...).
CREATE TABLE berth_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
