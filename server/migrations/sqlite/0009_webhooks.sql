-- Webhooks: signed JSON POSTs about new incidents and status changes,
-- delivered from a durable outbox with retries.

CREATE TABLE webhooks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    url           TEXT NOT NULL,
    -- The HMAC-SHA256 key; kept as given because signing needs it.
    secret        TEXT NOT NULL,
    min_severity  TEXT NOT NULL CHECK (min_severity IN ('low', 'medium', 'high', 'critical')),
    events        TEXT NOT NULL,
    drills        INTEGER NOT NULL DEFAULT 0,
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    disabled_at   TEXT
);

CREATE TABLE webhook_deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id   INTEGER NOT NULL REFERENCES webhooks (id),
    event        TEXT NOT NULL,
    incident_id  INTEGER NOT NULL REFERENCES incidents (id),
    body         TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      TEXT NOT NULL,
    delivered_at TEXT,
    failed_at    TEXT,
    last_status  INTEGER,
    last_error   TEXT,
    created_at   TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries (webhook_id, id);
