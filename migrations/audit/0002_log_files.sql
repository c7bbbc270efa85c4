-- CloudTrail log files and digest files delivered from the committed events.
--
-- Delivery reads events in `seq` order after the cursor, writes one log file per
-- (account, region) and advances the cursor in the same transaction that records the
-- files. A file is recorded before it is written (hash_value NULL); at start-up a recorded
-- file without a hash is regenerated from its event range (events never change), so a
-- crash between the commit and the write neither loses nor duplicates records.
CREATE TABLE delivery_cursor (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL
) STRICT;

-- Per account: the last event sequence number delivered to that account's log files.
CREATE TABLE delivery_cursors (
    account_id TEXT PRIMARY KEY,
    last_seq   INTEGER NOT NULL
) STRICT;

CREATE TABLE log_files (
    id              INTEGER PRIMARY KEY,
    account_id      TEXT NOT NULL,
    region          TEXT NOT NULL,
    -- Key under the log dir: AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<name>.json.gz
    s3_object       TEXT NOT NULL UNIQUE,
    -- The file holds this account's events of this region with seq_from < seq <= seq_to.
    seq_from        INTEGER NOT NULL,
    seq_to          INTEGER NOT NULL,
    oldest_event_ms INTEGER NOT NULL,
    newest_event_ms INTEGER NOT NULL,
    delivered_ms    INTEGER NOT NULL,
    -- Hex SHA-256 of the uncompressed file; NULL until written.
    hash_value      TEXT,
    -- The digest that covers it; NULL until digested.
    digest_object   TEXT
) STRICT;
CREATE INDEX log_files_undigested ON log_files (account_id, region) WHERE digest_object IS NULL;

CREATE TABLE digests (
    id           INTEGER PRIMARY KEY,
    account_id   TEXT NOT NULL,
    region       TEXT NOT NULL,
    s3_object    TEXT NOT NULL UNIQUE,
    end_ms       INTEGER NOT NULL,
    -- The uncompressed digest file, its hex SHA-256 and hex signature (S3 metadata
    -- `signature`, kept in the sidecar `<digest>.meta` locally).
    content      TEXT NOT NULL,
    hash_value   TEXT NOT NULL,
    signature    TEXT NOT NULL,
    written      INTEGER NOT NULL DEFAULT 0 CHECK (written IN (0, 1))
) STRICT;
CREATE INDEX digests_chain ON digests (account_id, region, end_ms DESC);

-- Public keys of the digest signing keys, for ListPublicKeys.
CREATE TABLE digest_public_keys (
    fingerprint    TEXT PRIMARY KEY,
    public_der     BLOB NOT NULL,
    valid_from_ms  INTEGER NOT NULL,
    valid_to_ms    INTEGER
) STRICT;
