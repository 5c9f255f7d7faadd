-- Who uploaded each document, for the delete rule in a shared collection: the owner deletes
-- anything, a member only what they uploaded. Documents from before this migration have none,
-- so only the owner may delete them. An account that is removed leaves its uploads to the owner.
ALTER TABLE documents ADD COLUMN uploaded_by TEXT REFERENCES users (id) ON DELETE SET NULL;
