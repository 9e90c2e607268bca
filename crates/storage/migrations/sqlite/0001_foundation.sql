-- The vault, the operator and organizations with their wrapped data keys.
-- Keep in step with migrations/postgres/0001_foundation.sql: same tables, columns and constraints.

CREATE TABLE vault_config (
    singleton         BIGINT PRIMARY KEY CHECK (singleton = 1),
    vault_id          BLOB   NOT NULL,
    key_shares        BIGINT NOT NULL CHECK (key_shares BETWEEN 1 AND 255),
    key_threshold     BIGINT NOT NULL CHECK (key_threshold BETWEEN 1 AND key_shares),
    share_verifiers   BLOB   NOT NULL,
    encrypted_keyring BLOB   NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE operator_tokens (
    id         TEXT   PRIMARY KEY,
    token_hash BLOB   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE organizations (
    id             TEXT   PRIMARY KEY,
    name           TEXT   NOT NULL,
    name_canonical TEXT   NOT NULL UNIQUE,
    created_at     BIGINT NOT NULL
);

CREATE TABLE organization_keys (
    organization_id TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    version         BIGINT NOT NULL CHECK (version >= 1),
    keyring_version BIGINT NOT NULL CHECK (keyring_version >= 1),
    wrapped_key     BLOB   NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (organization_id, version)
);

CREATE TABLE invitations (
    id               TEXT   PRIMARY KEY,
    organization_id  TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    token_hash       BLOB   NOT NULL UNIQUE,
    email_ciphertext BLOB   NOT NULL,
    role             TEXT   NOT NULL,
    expires_at       BIGINT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX invitations_organization ON invitations (organization_id);
