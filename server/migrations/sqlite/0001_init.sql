-- Times are RFC 3339 UTC strings with microseconds ("2026-11-22T04:00:00.000000Z"),
-- so text order is time order.

CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'responder', 'viewer')),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE enroll_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    secret_hash TEXT NOT NULL UNIQUE,
    agency      TEXT NOT NULL,
    uses_left   INTEGER NOT NULL,
    expires_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE agents (
    id            TEXT PRIMARY KEY,
    hostname      TEXT NOT NULL,
    agency        TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    version       TEXT NOT NULL,
    rules_version TEXT,
    enrolled_at   TEXT NOT NULL,
    last_seen     TEXT,
    heartbeat     TEXT
);

CREATE TABLE incidents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    title       TEXT NOT NULL,
    rule_id     TEXT NOT NULL,
    severity    TEXT NOT NULL,
    status      TEXT NOT NULL,
    host        TEXT NOT NULL,
    agency      TEXT NOT NULL,
    group_key   TEXT NOT NULL,
    entities    TEXT NOT NULL,
    tags        TEXT NOT NULL,
    alert_count INTEGER NOT NULL,
    first_seen  TEXT NOT NULL,
    last_seen   TEXT NOT NULL,
    drill       INTEGER NOT NULL DEFAULT 0,
    assignee    TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX incidents_open_by_group ON incidents (group_key)
    WHERE status NOT IN ('resolved', 'false_positive');
CREATE INDEX incidents_by_last_seen ON incidents (last_seen);

CREATE TABLE alerts (
    id          TEXT PRIMARY KEY,
    agent_id    TEXT NOT NULL REFERENCES agents (id),
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    rule_id     TEXT NOT NULL,
    title       TEXT NOT NULL,
    severity    TEXT NOT NULL,
    time        TEXT NOT NULL,
    host        TEXT NOT NULL,
    entities    TEXT NOT NULL,
    evidence    TEXT NOT NULL,
    tags        TEXT NOT NULL,
    source      TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX alerts_by_incident ON alerts (incident_id, time);

-- The incident timeline and audit log: every triage action, who and when.
CREATE TABLE incident_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX incident_events_by_incident ON incident_events (incident_id, id);
