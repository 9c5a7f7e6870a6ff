-- Captured frames an alert carries as evidence (network alerts), in the
-- alert's order. Served as pcap per alert and per incident.
CREATE TABLE alert_packets (
    alert_id TEXT NOT NULL REFERENCES alerts (id),
    seq      INTEGER NOT NULL,
    ts_ns    INTEGER NOT NULL,   -- capture time, ns since the epoch
    linktype INTEGER NOT NULL,   -- pcap LINKTYPE_*
    orig_len INTEGER NOT NULL,   -- length on the wire (>= length(data))
    data     BLOB NOT NULL,
    PRIMARY KEY (alert_id, seq)
);
