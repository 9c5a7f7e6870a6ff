-- Several coordinator replicas on one database, and retention.

-- At most one open incident per group: concurrent ingest (and the
-- silent-agent check) in two replicas cannot open two. Writers name this
-- index in INSERT ... ON CONFLICT (group_key) WHERE status NOT IN (...).
DROP INDEX incidents_open_by_group;
CREATE UNIQUE INDEX incidents_open_by_group ON incidents (group_key)
    WHERE status NOT IN ('resolved', 'false_positive');

-- Retention prunes alerts by the coordinator's receipt time, oldest first.
CREATE INDEX alerts_by_received ON alerts (received_at);
