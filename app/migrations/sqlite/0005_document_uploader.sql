-- Who uploaded each document, for the delete rule in a shared collection: the owner deletes
-- anything, a member only what they uploaded, unless the owner lets members delete any
-- document (members_delete_any). Documents from before this migration have no uploader, so
-- only the owner (or, when allowed, any member) may delete them. An account that is removed
-- leaves its uploads to the owner.
ALTER TABLE documents ADD COLUMN uploaded_by TEXT REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE collections ADD COLUMN members_delete_any INTEGER NOT NULL DEFAULT 0;
