-- berth-migration: expand
-- Thumbs up or down on an answer, by the person who asked (a conversation has one owner, so a
-- column is one vote per user per answer). NULL: no vote. Changing the vote overwrites it.
ALTER TABLE messages ADD COLUMN feedback TEXT CHECK (feedback IN ('up', 'down'));
