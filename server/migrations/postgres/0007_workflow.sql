-- Responder labels, merged incidents, and the attacker index behind campaigns.
-- (The SQLite twin also indexes the alerts stored before this migration.)

ALTER TABLE incidents ADD COLUMN labels TEXT COLLATE "C" NOT NULL DEFAULT '[]';
ALTER TABLE incidents ADD COLUMN merged_into BIGINT REFERENCES incidents (id);

CREATE TABLE incident_attackers (
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    realm       TEXT COLLATE "C" NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL CHECK (kind IN ('ip', 'domain', 'sha256')),
    value       TEXT COLLATE "C" NOT NULL,
    host        TEXT COLLATE "C" NOT NULL,
    agency      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (realm, kind, value, incident_id)
);
CREATE INDEX incident_attackers_by_incident ON incident_attackers (incident_id);

CREATE TABLE campaigns (
    id         BIGSERIAL PRIMARY KEY,
    realm      TEXT COLLATE "C" NOT NULL,
    kind       TEXT COLLATE "C" NOT NULL,
    value      TEXT COLLATE "C" NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    UNIQUE (realm, kind, value)
);

CREATE TABLE incident_group_aliases (
    group_key   TEXT COLLATE "C" PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id)
);
