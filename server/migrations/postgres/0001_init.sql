-- PostgreSQL twin of migrations/sqlite/0001_init.sql: same tables, same
-- column names. Times are RFC 3339 UTC strings with microseconds, so text
-- order is time order: every TEXT column sorts bytewise (COLLATE "C"), as
-- in SQLite. Ids are BIGSERIAL and integers BIGINT, so the code reads i64
-- from both; booleans are integers (0/1) as in SQLite.

-- Shims for the two SQLite JSON functions the shared queries use.
-- json_each(text): the elements of a JSON array of strings, as `value`
-- (PostgreSQL's own json_each takes json and yields objects' pairs).
CREATE FUNCTION json_each(list TEXT) RETURNS TABLE (value TEXT)
    LANGUAGE sql IMMUTABLE STRICT
    AS $$ SELECT json_array_elements_text(list::json) $$;
-- json_group_array(text): the aggregated values as a JSON array ('[]' for none).
CREATE FUNCTION ward_json_array_final(items TEXT[]) RETURNS TEXT
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT array_to_json(items)::text $$;
CREATE AGGREGATE json_group_array(TEXT) (
    SFUNC = array_append,
    STYPE = TEXT[],
    INITCOND = '{}',
    FINALFUNC = ward_json_array_final
);

CREATE TABLE api_tokens (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL,
    role        TEXT COLLATE "C" NOT NULL CHECK (role IN ('admin', 'responder', 'viewer')),
    token_hash  TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at  TEXT COLLATE "C" NOT NULL
);

CREATE TABLE enroll_tokens (
    id          BIGSERIAL PRIMARY KEY,
    secret_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    agency      TEXT COLLATE "C" NOT NULL,
    uses_left   BIGINT NOT NULL,
    expires_at  TEXT COLLATE "C" NOT NULL,
    created_by  TEXT COLLATE "C" NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL
);

CREATE TABLE agents (
    id            TEXT COLLATE "C" PRIMARY KEY,
    hostname      TEXT COLLATE "C" NOT NULL,
    agency        TEXT COLLATE "C" NOT NULL,
    token_hash    TEXT COLLATE "C" NOT NULL UNIQUE,
    version       TEXT COLLATE "C" NOT NULL,
    rules_version TEXT COLLATE "C",
    enrolled_at   TEXT COLLATE "C" NOT NULL,
    last_seen     TEXT COLLATE "C",
    heartbeat     TEXT COLLATE "C"
);

CREATE TABLE incidents (
    id          BIGSERIAL PRIMARY KEY,
    title       TEXT COLLATE "C" NOT NULL,
    rule_id     TEXT COLLATE "C" NOT NULL,
    severity    TEXT COLLATE "C" NOT NULL,
    status      TEXT COLLATE "C" NOT NULL,
    host        TEXT COLLATE "C" NOT NULL,
    agency      TEXT COLLATE "C" NOT NULL,
    group_key   TEXT COLLATE "C" NOT NULL,
    entities    TEXT COLLATE "C" NOT NULL,
    tags        TEXT COLLATE "C" NOT NULL,
    alert_count BIGINT NOT NULL,
    first_seen  TEXT COLLATE "C" NOT NULL,
    last_seen   TEXT COLLATE "C" NOT NULL,
    drill       BIGINT NOT NULL DEFAULT 0,
    assignee    TEXT COLLATE "C",
    created_at  TEXT COLLATE "C" NOT NULL,
    updated_at  TEXT COLLATE "C" NOT NULL
);
CREATE INDEX incidents_open_by_group ON incidents (group_key)
    WHERE status NOT IN ('resolved', 'false_positive');
CREATE INDEX incidents_by_last_seen ON incidents (last_seen);

CREATE TABLE alerts (
    id          TEXT COLLATE "C" PRIMARY KEY,
    agent_id    TEXT COLLATE "C" NOT NULL REFERENCES agents (id),
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    rule_id     TEXT COLLATE "C" NOT NULL,
    title       TEXT COLLATE "C" NOT NULL,
    severity    TEXT COLLATE "C" NOT NULL,
    time        TEXT COLLATE "C" NOT NULL,
    host        TEXT COLLATE "C" NOT NULL,
    entities    TEXT COLLATE "C" NOT NULL,
    evidence    TEXT COLLATE "C" NOT NULL,
    tags        TEXT COLLATE "C" NOT NULL,
    source      TEXT COLLATE "C" NOT NULL,
    received_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX alerts_by_incident ON alerts (incident_id, time);

-- The incident timeline and audit log: every triage action, who and when.
CREATE TABLE incident_events (
    id          BIGSERIAL PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    at          TEXT COLLATE "C" NOT NULL,
    actor       TEXT COLLATE "C" NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL,
    detail      TEXT COLLATE "C" NOT NULL
);
CREATE INDEX incident_events_by_incident ON incident_events (incident_id, id);
