-- Gap records: what an agent had to drop (a full spool, capture drops,
-- engine state evictions), counted, so that no loss is silent.
CREATE TABLE gaps (
    id          TEXT COLLATE "C" PRIMARY KEY,        -- the agent's idempotency key
    agent_id    TEXT COLLATE "C" NOT NULL REFERENCES agents (id),
    host        TEXT COLLATE "C" NOT NULL,
    agency      TEXT COLLATE "C" NOT NULL,
    reason      TEXT COLLATE "C" NOT NULL,           -- spool_full | capture_dropped | state_evicted | spool_damaged
    count       BIGINT NOT NULL,                     -- alerts, events or correlation groups lost
    by_severity TEXT COLLATE "C" NOT NULL,           -- JSON {"low": n, ...} (spool_full)
    first_time  TEXT COLLATE "C",                    -- earliest dropped alert / start of the window
    last_time   TEXT COLLATE "C",                    -- latest dropped alert / end of the window
    detected_at TEXT COLLATE "C" NOT NULL,           -- when the agent recorded it
    received_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX gaps_by_agent ON gaps (agent_id, detected_at);
CREATE INDEX gaps_by_detected ON gaps (detected_at);
