-- Federation: a provincial coordinator forwards incident snapshots to a
-- national one.

-- Provincial side. Every change of an incident raises its revision; the
-- outbox holds one row per incident waiting to be forwarded (the latest
-- revision queued), so a burst of changes is sent as one snapshot.
ALTER TABLE incidents ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;

CREATE TABLE federation_outbox (
    incident_id INTEGER PRIMARY KEY REFERENCES incidents (id),
    revision    INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     TEXT NOT NULL,
    last_error  TEXT,
    queued_at   TEXT NOT NULL
);
CREATE INDEX federation_outbox_due ON federation_outbox (next_at);

-- The link to the upstream as the forwarder last saw it (one row). `upstream`
-- is set by a coordinator started with --upstream and cleared without it;
-- changes are queued only while it is set.
CREATE TABLE federation_link (
    upstream        TEXT,
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    last_success_at TEXT,
    last_error      TEXT,
    last_error_at   TEXT,
    forwarded       INTEGER NOT NULL DEFAULT 0
);
INSERT INTO federation_link (id, forwarded) VALUES (1, 0);

-- National side: provinces and their credentials (stored hashed). A
-- province's credential may only forward incidents.
CREATE TABLE provinces (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE,
    token_hash      TEXT NOT NULL UNIQUE,
    created_by      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    last_forward_at TEXT,
    revoked_at      TEXT
);

-- A forwarded incident: its province, its number there, and the revision
-- of the latest snapshot applied (older ones are ignored).
ALTER TABLE incidents ADD COLUMN province TEXT;
ALTER TABLE incidents ADD COLUMN remote_id INTEGER;
ALTER TABLE incidents ADD COLUMN remote_revision INTEGER;
CREATE UNIQUE INDEX incidents_by_remote ON incidents (province, remote_id)
    WHERE province IS NOT NULL;
