-- Drills: attack scenarios replayed through sandboxed agents. Drill alerts
-- and incidents carry the drill's id and never group with real ones.
ALTER TABLE incidents ADD COLUMN drill_id TEXT COLLATE "C";
ALTER TABLE alerts ADD COLUMN drill_id TEXT COLLATE "C";
CREATE INDEX incidents_by_drill ON incidents (drill_id) WHERE drill_id IS NOT NULL;

CREATE TABLE drills (
    id          TEXT COLLATE "C" PRIMARY KEY,
    scenario    TEXT COLLATE "C" NOT NULL,      -- the scenario's name
    description TEXT COLLATE "C" NOT NULL,
    source      TEXT COLLATE "C" NOT NULL,      -- the scenario file as run
    status      TEXT COLLATE "C" NOT NULL CHECK (status IN ('running', 'finished', 'aborted')),
    reason      TEXT COLLATE "C",               -- why it was aborted
    started_by  TEXT COLLATE "C" NOT NULL,
    started_at  TEXT COLLATE "C" NOT NULL,
    finished_at TEXT COLLATE "C",
    scorecard   TEXT COLLATE "C"                -- JSON, when finished
);
CREATE INDEX drills_by_start ON drills (started_at);
