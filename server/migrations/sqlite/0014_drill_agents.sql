-- Drill agents and the drill runner's lease.
--
-- An enrollment token made for a drill marks the agents enrolled with it
-- with the drill's id: they stay out of the fleet (agent list, metrics,
-- silence checks) and are retired when the drill ends.
ALTER TABLE enroll_tokens ADD COLUMN drill_id TEXT;
ALTER TABLE agents ADD COLUMN drill_id TEXT;
CREATE INDEX agents_by_drill ON agents (drill_id) WHERE drill_id IS NOT NULL;

-- A running drill holds a lease its runner renews; a drill whose lease ran
-- out is 'abandoned'. SQLite cannot change a CHECK constraint, so the table
-- is rebuilt (nothing references it by foreign key).
CREATE TABLE drills_new (
    id          TEXT PRIMARY KEY,
    scenario    TEXT NOT NULL,
    description TEXT NOT NULL,
    source      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('running', 'finished', 'aborted', 'abandoned')),
    reason      TEXT,               -- why it was aborted or abandoned
    started_by  TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,               -- finished, aborted, or when the lease ran out
    scorecard   TEXT,
    lease_until TEXT,               -- running drills: the runner's lease
    renewed_at  TEXT                -- when the runner last renewed it
);
INSERT INTO drills_new (id, scenario, description, source, status, reason, started_by,
                        started_at, finished_at, scorecard)
    SELECT id, scenario, description, source, status, reason, started_by,
           started_at, finished_at, scorecard FROM drills;
DROP TABLE drills;
ALTER TABLE drills_new RENAME TO drills;
CREATE INDEX drills_by_start ON drills (started_at);
CREATE INDEX drills_running_by_lease ON drills (lease_until) WHERE status = 'running';
