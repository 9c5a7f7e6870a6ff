-- Drill agents and the drill runner's lease.
--
-- An enrollment token made for a drill marks the agents enrolled with it
-- with the drill's id: they stay out of the fleet (agent list, metrics,
-- silence checks) and are retired when the drill ends.
ALTER TABLE enroll_tokens ADD COLUMN drill_id TEXT COLLATE "C";
ALTER TABLE agents ADD COLUMN drill_id TEXT COLLATE "C";
CREATE INDEX agents_by_drill ON agents (drill_id) WHERE drill_id IS NOT NULL;

-- A running drill holds a lease its runner renews; a drill whose lease ran
-- out is 'abandoned'.
ALTER TABLE drills DROP CONSTRAINT drills_status_check;
ALTER TABLE drills ADD CONSTRAINT drills_status_check
    CHECK (status IN ('running', 'finished', 'aborted', 'abandoned'));
ALTER TABLE drills ADD COLUMN lease_until TEXT COLLATE "C";  -- running drills: the runner's lease
ALTER TABLE drills ADD COLUMN renewed_at TEXT COLLATE "C";   -- when the runner last renewed it
CREATE INDEX drills_running_by_lease ON drills (lease_until) WHERE status = 'running';
