-- KMS grants (CreateGrant / RetireGrant / RevokeGrant). A grant belongs to one key, named
-- by its ARN (unique across regions); grants of a purged key are dropped when the store loads.
-- Operations are a JSON array of operation names; constraints are the GrantConstraints JSON object (EncryptionContextEquals / EncryptionContextSubset) or NULL.
-- The grant token is the opaque string CreateGrant returns; it names the grant.

CREATE TABLE grants (
    grant_id           TEXT    NOT NULL PRIMARY KEY,
    key_arn            TEXT    NOT NULL,
    grant_token        TEXT    NOT NULL UNIQUE,
    name               TEXT,
    creation_date      INTEGER NOT NULL,
    grantee_principal  TEXT    NOT NULL,
    retiring_principal TEXT,
    issuing_account    TEXT    NOT NULL,
    operations         TEXT    NOT NULL,
    constraints        TEXT
) STRICT;

CREATE INDEX grants_by_key ON grants (key_arn, grant_id);
