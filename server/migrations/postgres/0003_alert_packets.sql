-- Captured frames an alert carries as evidence (network alerts), in the
-- alert's order. Served as pcap per alert and per incident.
CREATE TABLE alert_packets (
    alert_id TEXT COLLATE "C" NOT NULL REFERENCES alerts (id),
    seq      BIGINT NOT NULL,
    ts_ns    BIGINT NOT NULL,   -- capture time, ns since the epoch
    linktype BIGINT NOT NULL,   -- pcap LINKTYPE_*
    orig_len BIGINT NOT NULL,   -- length on the wire (>= length(data))
    data     BYTEA NOT NULL,
    PRIMARY KEY (alert_id, seq)
);
