-- Customer managed policies (with their versions), their attachments to users and roles,
-- and the tags of users and roles.
CREATE TABLE iam_policies (
    account_id      TEXT NOT NULL REFERENCES accounts (account_id),
    policy_name     TEXT NOT NULL COLLATE NOCASE,
    policy_id       TEXT NOT NULL UNIQUE,
    path            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    default_version TEXT NOT NULL,
    next_version    INTEGER NOT NULL,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    PRIMARY KEY (account_id, policy_name)
) STRICT;

CREATE TABLE iam_policy_versions (
    account_id  TEXT NOT NULL,
    policy_name TEXT NOT NULL COLLATE NOCASE,
    version_id  TEXT NOT NULL,
    document    TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (account_id, policy_name, version_id),
    FOREIGN KEY (account_id, policy_name) REFERENCES iam_policies (account_id, policy_name)
        ON DELETE CASCADE
) STRICT;

-- principal_kind: 'user' or 'role'.
CREATE TABLE iam_policy_attachments (
    account_id     TEXT NOT NULL,
    principal_kind TEXT NOT NULL CHECK (principal_kind IN ('user', 'role')),
    principal_name TEXT NOT NULL COLLATE NOCASE,
    policy_name    TEXT NOT NULL COLLATE NOCASE,
    attached_ms    INTEGER NOT NULL,
    PRIMARY KEY (account_id, principal_kind, principal_name, policy_name),
    FOREIGN KEY (account_id, policy_name) REFERENCES iam_policies (account_id, policy_name)
) STRICT;

-- Tag keys are unique per entity regardless of case, as in IAM; `position` keeps their order.
CREATE TABLE iam_tags (
    account_id     TEXT NOT NULL,
    principal_kind TEXT NOT NULL CHECK (principal_kind IN ('user', 'role')),
    principal_name TEXT NOT NULL COLLATE NOCASE,
    tag_key        TEXT NOT NULL COLLATE NOCASE,
    tag_value      TEXT NOT NULL,
    position       INTEGER NOT NULL,
    PRIMARY KEY (account_id, principal_kind, principal_name, tag_key)
) STRICT;
