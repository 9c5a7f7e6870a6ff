-- Users, scoped API tokens, revocation and the audit log.

-- People (or services) holding API tokens. A user with agencies in
-- user_agencies sees and acts only on those agencies' incidents and agents;
-- one without sees all. password_hash is an argon2id PHC string (optional).
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT COLLATE "C" NOT NULL UNIQUE,
    role          TEXT COLLATE "C" NOT NULL CHECK (role IN ('admin', 'responder', 'viewer')),
    password_hash TEXT COLLATE "C",
    created_by    TEXT COLLATE "C" NOT NULL,
    created_at    TEXT COLLATE "C" NOT NULL
);

CREATE TABLE user_agencies (
    user_id BIGINT NOT NULL REFERENCES users (id),
    agency  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, agency)
);

-- API tokens belong to a user (the first-start admin token to none: it is
-- unscoped) and can be revoked.
ALTER TABLE api_tokens ADD COLUMN user_id BIGINT REFERENCES users (id);
ALTER TABLE api_tokens ADD COLUMN revoked_at TEXT COLLATE "C";

-- Revoked agents' credentials stop working.
ALTER TABLE agents ADD COLUMN revoked_at TEXT COLLATE "C";
CREATE INDEX agents_by_agency ON agents (agency);

-- Enrollment tokens can be revoked before they are used up.
ALTER TABLE enroll_tokens ADD COLUMN revoked_at TEXT COLLATE "C";

-- Append-only: the code has no UPDATE or DELETE on this table.
CREATE TABLE audit (
    id      BIGSERIAL PRIMARY KEY,
    at      TEXT COLLATE "C" NOT NULL,
    actor   TEXT COLLATE "C" NOT NULL,      -- user name, agent:ID, or "unknown"
    action  TEXT COLLATE "C" NOT NULL,      -- e.g. incident.resolve, user.add, agent.revoke, denied
    target  TEXT COLLATE "C" NOT NULL,      -- e.g. incident:12, user:alice, POST /api/v1/...
    outcome TEXT COLLATE "C" NOT NULL,      -- ok | denied
    status  BIGINT NOT NULL,                -- HTTP status answered
    peer    TEXT COLLATE "C" NOT NULL,      -- the client's address
    detail  TEXT COLLATE "C" NOT NULL
);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
