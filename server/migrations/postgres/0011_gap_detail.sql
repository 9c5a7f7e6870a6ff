-- What else is known about a gap: for `rejected` gaps, the refused entry's
-- id and the coordinator's message.
ALTER TABLE gaps ADD COLUMN detail TEXT COLLATE "C";
