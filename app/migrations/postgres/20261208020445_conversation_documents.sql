-- berth-migration: expand
-- A conversation may answer from chosen documents rather than whole collections: their ids as
-- a JSON array ('[]': the collections in collection_ids decide, as before).
ALTER TABLE conversations ADD COLUMN document_ids TEXT NOT NULL DEFAULT '[]';
