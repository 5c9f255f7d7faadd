-- berth-migration: expand
-- Settings an admin changes at run time (model names, retrieval, registration), over the
-- server's own settings (file, environment, flags), which stay the defaults. One row per
-- changed setting; deleting it returns to the default. Each change is in the audit log too.
CREATE TABLE runtime_settings (
    key        TEXT PRIMARY KEY,
    -- As typed in the server's settings, e.g. "8", "0.5", "false", "llama3.2:3b".
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    -- The admin's name at the time (kept if the account goes).
    updated_by TEXT NOT NULL
) STRICT;
