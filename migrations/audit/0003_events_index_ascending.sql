-- LookupEvents' index in ascending order. Declared (account_id, event_time_ms DESC,
-- seq DESC), every append went to the left edge of its account's range: SQLite split
-- those pages in the middle (balance_nonroot), so the index stayed half empty and each
-- group commit wrote more of its pages. Ascending, appends go to the right edge, where
-- a full page simply gets a new sibling; SQLite scans the index backwards for
-- `ORDER BY event_time_ms DESC, seq DESC`, so lookups keep using it without a sort.
DROP INDEX events_by_account_time;
CREATE INDEX events_by_account_time ON events (account_id, event_time_ms, seq);
