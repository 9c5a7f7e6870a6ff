-- Responder labels, merged incidents, and the attacker index behind campaigns.

ALTER TABLE incidents ADD COLUMN labels TEXT NOT NULL DEFAULT '[]';
ALTER TABLE incidents ADD COLUMN merged_into INTEGER REFERENCES incidents (id);

-- Attacker identities (source address, domain, file hash) seen in each
-- incident's alerts. `realm` is '' for real incidents and the drill id for a
-- drill's, so drills never link with real incidents.
CREATE TABLE incident_attackers (
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    realm       TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('ip', 'domain', 'sha256')),
    value       TEXT NOT NULL,
    host        TEXT NOT NULL,
    agency      TEXT NOT NULL,
    PRIMARY KEY (realm, kind, value, incident_id)
);
CREATE INDEX incident_attackers_by_incident ON incident_attackers (incident_id);

-- A campaign: one attacker identity seen on two or more hosts. Its
-- incidents are those whose attackers include (realm, kind, value).
CREATE TABLE campaigns (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    realm      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (realm, kind, value)
);

INSERT OR IGNORE INTO incident_attackers (incident_id, realm, kind, value, host, agency)
SELECT i.id, COALESCE(i.drill_id, ''),
       CASE a.key WHEN 'src_ip' THEN 'ip' WHEN 'sha256' THEN 'sha256' ELSE 'domain' END,
       CASE WHEN a.key IN ('query', 'sni') THEN lower(rtrim(a.value, '.'))
            ELSE a.value END,
       i.host, i.agency
FROM alerts l JOIN incidents i ON i.id = l.incident_id, json_each(l.entities) a
WHERE a.key IN ('src_ip', 'query', 'sni', 'sha256') AND a.value <> '';

INSERT OR IGNORE INTO campaigns (realm, kind, value, created_at)
SELECT realm, kind, value, MIN(i.created_at)
FROM incident_attackers x JOIN incidents i ON i.id = x.incident_id
GROUP BY realm, kind, value HAVING COUNT(DISTINCT x.host) >= 2;

-- The group keys of incidents merged into another: new alerts of those
-- groups go to the incident they were merged into while it is open.
CREATE TABLE incident_group_aliases (
    group_key   TEXT PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id)
);
