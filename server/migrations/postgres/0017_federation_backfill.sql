-- The latest revision of an incident that the upstream accepted, so a
-- coordinator given an upstream later forwards what it has not sent yet
-- (incidents from before the link). Incidents not waiting in the outbox of
-- a coordinator that already forwards count as sent.
ALTER TABLE incidents ADD COLUMN forwarded_revision BIGINT;
UPDATE incidents SET forwarded_revision = revision
WHERE (SELECT upstream FROM federation_link WHERE id = 1) IS NOT NULL
  AND id NOT IN (SELECT incident_id FROM federation_outbox);
