-- CloudTrail-style events, one row per recipient account.
-- `resources` is a JSON array of {"type": ..., "name": ...}; LookupEvents filters on it with json_each.
-- `cloudtrail_event` is the complete record as LookupEvents returns it (recipientAccountId included).
CREATE TABLE events (
    seq              INTEGER PRIMARY KEY,
    account_id       TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    event_time_ms    INTEGER NOT NULL,
    event_name       TEXT NOT NULL,
    event_source     TEXT NOT NULL,
    read_only        INTEGER NOT NULL CHECK (read_only IN (0, 1)),
    username         TEXT NOT NULL,
    access_key_id    TEXT NOT NULL,
    resources        TEXT NOT NULL,
    request_id       TEXT NOT NULL,
    cloudtrail_event TEXT NOT NULL,
    -- A retried append of the same event is a no-op.
    UNIQUE (account_id, event_id)
) STRICT;

-- LookupEvents: one account, newest first (ties broken by arrival order).
CREATE INDEX events_by_account_time ON events (account_id, event_time_ms DESC, seq DESC);
