-- Drills: attack scenarios replayed through sandboxed agents. Drill alerts
-- and incidents carry the drill's id and never group with real ones.
ALTER TABLE incidents ADD COLUMN drill_id TEXT;
ALTER TABLE alerts ADD COLUMN drill_id TEXT;
CREATE INDEX incidents_by_drill ON incidents (drill_id) WHERE drill_id IS NOT NULL;

CREATE TABLE drills (
    id          TEXT PRIMARY KEY,
    scenario    TEXT NOT NULL,      -- the scenario's name
    description TEXT NOT NULL,
    source      TEXT NOT NULL,      -- the scenario file as run
    status      TEXT NOT NULL CHECK (status IN ('running', 'finished', 'aborted')),
    reason      TEXT,               -- why it was aborted
    started_by  TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    scorecard   TEXT                -- JSON, when finished
);
CREATE INDEX drills_by_start ON drills (started_at);
