-- Users, scoped API tokens, revocation and the audit log.

-- People (or services) holding API tokens. A user with agencies in
-- user_agencies sees and acts only on those agencies' incidents and agents;
-- one without sees all. password_hash is an argon2id PHC string (optional).
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'responder', 'viewer')),
    password_hash TEXT,
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE user_agencies (
    user_id INTEGER NOT NULL REFERENCES users (id),
    agency  TEXT NOT NULL,
    PRIMARY KEY (user_id, agency)
);

-- API tokens belong to a user (the first-start admin token to none: it is
-- unscoped) and can be revoked.
ALTER TABLE api_tokens ADD COLUMN user_id INTEGER REFERENCES users (id);
ALTER TABLE api_tokens ADD COLUMN revoked_at TEXT;

-- Revoked agents' credentials stop working.
ALTER TABLE agents ADD COLUMN revoked_at TEXT;
CREATE INDEX agents_by_agency ON agents (agency);

-- Enrollment tokens can be revoked before they are used up.
ALTER TABLE enroll_tokens ADD COLUMN revoked_at TEXT;

-- Append-only: the code has no UPDATE or DELETE on this table.
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,      -- user name, agent:ID, or "unknown"
    action  TEXT NOT NULL,      -- e.g. incident.resolve, user.add, agent.revoke, denied
    target  TEXT NOT NULL,      -- e.g. incident:12, user:alice, POST /api/v1/...
    outcome TEXT NOT NULL,      -- ok | denied
    status  INTEGER NOT NULL,   -- HTTP status answered
    peer    TEXT NOT NULL,      -- the client's address
    detail  TEXT NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
