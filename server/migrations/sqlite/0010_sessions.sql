-- Web sessions: API tokens issued at login that stop working at expires_at
-- (RFC 3339 UTC, text order is time order). NULL: a token that never expires.
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
