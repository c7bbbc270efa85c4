-- Accounts and their access keys. authz is the only reader and writer.
-- Secret access keys are stored as-is in this version (see the README); they
-- never leave the authz service.
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY NOT NULL,
    created_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE access_keys (
    access_key_id  TEXT PRIMARY KEY NOT NULL,
    account_id     TEXT NOT NULL REFERENCES accounts (account_id),
    secret         TEXT NOT NULL,
    principal_arn  TEXT NOT NULL,
    principal_id   TEXT NOT NULL,
    principal_type TEXT NOT NULL CHECK (principal_type IN ('Root', 'IAMUser')),
    user_name      TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL CHECK (status IN ('Active', 'Inactive')),
    created_ms     INTEGER NOT NULL
) STRICT;

CREATE INDEX access_keys_by_account ON access_keys (account_id);
