-- Webhooks: signed JSON POSTs about new incidents and status changes,
-- delivered from a durable outbox with retries.

CREATE TABLE webhooks (
    id            BIGSERIAL PRIMARY KEY,
    url           TEXT COLLATE "C" NOT NULL,
    -- The HMAC-SHA256 key; kept as given because signing needs it.
    secret        TEXT COLLATE "C" NOT NULL,
    min_severity  TEXT COLLATE "C" NOT NULL CHECK (min_severity IN ('low', 'medium', 'high', 'critical')),
    events        TEXT COLLATE "C" NOT NULL,
    drills        BIGINT NOT NULL DEFAULT 0,
    created_by    TEXT COLLATE "C" NOT NULL,
    created_at    TEXT COLLATE "C" NOT NULL,
    disabled_at   TEXT COLLATE "C"
);

CREATE TABLE webhook_deliveries (
    id           BIGSERIAL PRIMARY KEY,
    webhook_id   BIGINT NOT NULL REFERENCES webhooks (id),
    event        TEXT COLLATE "C" NOT NULL,
    incident_id  BIGINT NOT NULL REFERENCES incidents (id),
    body         TEXT COLLATE "C" NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    next_at      TEXT COLLATE "C" NOT NULL,
    delivered_at TEXT COLLATE "C",
    failed_at    TEXT COLLATE "C",
    last_status  BIGINT,
    last_error   TEXT COLLATE "C",
    created_at   TEXT COLLATE "C" NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries (webhook_id, id);
