-- When a campaign first reached the spread thresholds (its incidents were
-- raised then); later members are raised one by one as they join.
ALTER TABLE campaigns ADD COLUMN spread_at TEXT COLLATE "C";
