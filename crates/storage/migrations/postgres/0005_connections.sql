-- Connections: configured sources and destinations, their secrets, discovered metadata, uploaded
-- files and pending OAuth authorizations. Keep in step with migrations/sqlite/0005_connections.sql.
-- Configuration, secrets, metadata and files are ciphertext under the organization's key, bound
-- to the connection and field; only the name and kind are in clear.

CREATE TABLE connections (
    id                TEXT   PRIMARY KEY,
    organization_id   TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name              TEXT   NOT NULL,
    kind              TEXT   NOT NULL CHECK (kind IN ('postgres', 'mysql', 'sqlite', 'files', 'rest')),
    config_ciphertext BYTEA  NOT NULL,
    oauth_expires_at  BIGINT,
    oauth_connected   BIGINT NOT NULL DEFAULT 0,
    created_by        TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (organization_id, name)
);

CREATE TABLE connection_secrets (
    connection_id   TEXT   NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    organization_id TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    field           TEXT   NOT NULL,
    ciphertext      BYTEA  NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (connection_id, field)
);

CREATE TABLE connection_metadata (
    connection_id   TEXT   PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
    organization_id TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    ciphertext      BYTEA  NOT NULL,
    discovered_at   BIGINT NOT NULL
);

CREATE TABLE connection_uploads (
    id              TEXT   PRIMARY KEY,
    connection_id   TEXT   NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    organization_id TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            TEXT   NOT NULL,
    size            BIGINT NOT NULL,
    ciphertext      BYTEA  NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (connection_id, name)
);

CREATE TABLE oauth_authorizations (
    state_hash          BYTEA  PRIMARY KEY,
    organization_id     TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    connection_id       TEXT   NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    user_id             TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    verifier_ciphertext BYTEA  NOT NULL,
    expires_at          BIGINT NOT NULL,
    created_at          BIGINT NOT NULL
);
