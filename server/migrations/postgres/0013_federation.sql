-- Federation: a provincial coordinator forwards incident snapshots to a
-- national one.

-- Provincial side. Every change of an incident raises its revision; the
-- outbox holds one row per incident waiting to be forwarded (the latest
-- revision queued), so a burst of changes is sent as one snapshot.
ALTER TABLE incidents ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;

CREATE TABLE federation_outbox (
    incident_id BIGINT PRIMARY KEY REFERENCES incidents (id),
    revision    BIGINT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    next_at     TEXT COLLATE "C" NOT NULL,
    last_error  TEXT COLLATE "C",
    queued_at   TEXT COLLATE "C" NOT NULL
);
CREATE INDEX federation_outbox_due ON federation_outbox (next_at);

-- The link to the upstream as the forwarder last saw it (one row). `upstream`
-- is set by a coordinator started with --upstream and cleared without it;
-- changes are queued only while it is set.
CREATE TABLE federation_link (
    upstream        TEXT COLLATE "C",
    id              BIGINT PRIMARY KEY CHECK (id = 1),
    last_success_at TEXT COLLATE "C",
    last_error      TEXT COLLATE "C",
    last_error_at   TEXT COLLATE "C",
    forwarded       BIGINT NOT NULL DEFAULT 0
);
INSERT INTO federation_link (id, forwarded) VALUES (1, 0);

-- National side: provinces and their credentials (stored hashed). A
-- province's credential may only forward incidents.
CREATE TABLE provinces (
    id              BIGSERIAL PRIMARY KEY,
    name            TEXT COLLATE "C" NOT NULL UNIQUE,
    token_hash      TEXT COLLATE "C" NOT NULL UNIQUE,
    created_by      TEXT COLLATE "C" NOT NULL,
    created_at      TEXT COLLATE "C" NOT NULL,
    last_forward_at TEXT COLLATE "C",
    revoked_at      TEXT COLLATE "C"
);

-- A forwarded incident: its province, its number there, and the revision
-- of the latest snapshot applied (older ones are ignored).
ALTER TABLE incidents ADD COLUMN province TEXT COLLATE "C";
ALTER TABLE incidents ADD COLUMN remote_id BIGINT;
ALTER TABLE incidents ADD COLUMN remote_revision BIGINT;
CREATE UNIQUE INDEX incidents_by_remote ON incidents (province, remote_id)
    WHERE province IS NOT NULL;
