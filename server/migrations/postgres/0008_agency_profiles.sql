-- Agency profiles: what the regulatory reports (Circular 20/2017/TT-BTTTT
-- forms 03 and 04) need about an agency and its system. Keyed by the agency
-- name agents and incidents carry. Edited by admins only; every change is
-- in the audit log. Portable SQL (the PostgreSQL copy is the same).
CREATE TABLE agency_profiles (
    agency          TEXT PRIMARY KEY,
    full_name       TEXT,              -- official name of the operating unit
    governing_body  TEXT,              -- cơ quan chủ quản
    address         TEXT,
    contact_name    TEXT,
    contact_role    TEXT,
    contact_phone   TEXT,
    contact_email   TEXT,
    system_name     TEXT,              -- the information system reported on
    security_level  INTEGER CHECK (security_level BETWEEN 1 AND 5), -- Decree 85/2016
    public_assets   TEXT NOT NULL DEFAULT '[]',   -- JSON array: public IPs and domains
    report_to       TEXT NOT NULL DEFAULT '[]',   -- JSON array: recipients' e-mail addresses
    updated_by      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
