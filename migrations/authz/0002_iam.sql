-- IAM users and roles, their inline policies, and STS session credentials.
-- Names are unique per account regardless of case, as in IAM.
CREATE TABLE iam_users (
    account_id  TEXT NOT NULL REFERENCES accounts (account_id),
    user_name   TEXT NOT NULL COLLATE NOCASE,
    user_id     TEXT NOT NULL UNIQUE,
    path        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (account_id, user_name)
) STRICT;

CREATE TABLE iam_roles (
    account_id           TEXT NOT NULL REFERENCES accounts (account_id),
    role_name            TEXT NOT NULL COLLATE NOCASE,
    role_id              TEXT NOT NULL UNIQUE,
    path                 TEXT NOT NULL,
    assume_role_policy   TEXT NOT NULL,
    description          TEXT NOT NULL DEFAULT '',
    max_session_duration INTEGER NOT NULL,
    created_ms           INTEGER NOT NULL,
    PRIMARY KEY (account_id, role_name)
) STRICT;

-- principal_kind: 'user' or 'role'; principal_name as stored in iam_users / iam_roles.
CREATE TABLE iam_inline_policies (
    account_id     TEXT NOT NULL,
    principal_kind TEXT NOT NULL CHECK (principal_kind IN ('user', 'role')),
    principal_name TEXT NOT NULL COLLATE NOCASE,
    policy_name    TEXT NOT NULL,
    document       TEXT NOT NULL,
    PRIMARY KEY (account_id, principal_kind, principal_name, policy_name)
) STRICT;

-- Temporary credentials issued by AssumeRole. The session token is kept as its SHA-256.
CREATE TABLE sts_sessions (
    access_key_id  TEXT PRIMARY KEY NOT NULL,
    account_id     TEXT NOT NULL,
    secret         TEXT NOT NULL,
    token_sha256   TEXT NOT NULL,
    role_arn       TEXT NOT NULL,
    role_id        TEXT NOT NULL,
    session_name   TEXT NOT NULL,
    expires_ms     INTEGER NOT NULL,
    created_ms     INTEGER NOT NULL
) STRICT;
