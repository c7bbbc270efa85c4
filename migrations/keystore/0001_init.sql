-- The key store's schema: KMS keys, their wrapped key material, aliases and tags.
-- Times are unix milliseconds. Key material is stored only wrapped under the root
-- key (AES-256-GCM, AAD = key ARN + material id; see services/keystore/src/crypto.rs).

CREATE TABLE keys (
    id                  TEXT    NOT NULL PRIMARY KEY,
    account_id          TEXT    NOT NULL,
    region              TEXT    NOT NULL,
    arn                 TEXT    NOT NULL UNIQUE,
    description         TEXT    NOT NULL DEFAULT '',
    key_usage           TEXT    NOT NULL,
    key_spec            TEXT    NOT NULL,
    origin              TEXT    NOT NULL,
    state               TEXT    NOT NULL,
    enabled             INTEGER NOT NULL,
    creation_date       INTEGER NOT NULL,
    deletion_date       INTEGER,
    pending_window_days INTEGER,
    policy              TEXT    NOT NULL,
    multi_region        INTEGER NOT NULL DEFAULT 0,
    -- The material new ciphertexts are sealed with.
    current_material_id INTEGER NOT NULL,
    -- Bumped on every change of the row (authz caches policies by it).
    version             INTEGER NOT NULL DEFAULT 1
) STRICT;

CREATE INDEX keys_by_account_region ON keys (account_id, region, id);

CREATE TABLE key_materials (
    key_id      TEXT    NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
    material_id INTEGER NOT NULL,
    wrapped     BLOB    NOT NULL,
    created     INTEGER NOT NULL,
    PRIMARY KEY (key_id, material_id)
) STRICT;

CREATE TABLE aliases (
    account_id    TEXT    NOT NULL,
    region        TEXT    NOT NULL,
    alias_name    TEXT    NOT NULL,
    target_key_id TEXT    NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
    creation_date INTEGER NOT NULL,
    last_updated  INTEGER NOT NULL,
    PRIMARY KEY (account_id, region, alias_name)
) STRICT;

CREATE INDEX aliases_by_target ON aliases (target_key_id);

CREATE TABLE tags (
    key_id    TEXT NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
    tag_key   TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (key_id, tag_key)
) STRICT;
