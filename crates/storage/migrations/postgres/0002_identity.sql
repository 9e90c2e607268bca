-- Users, sessions, API tokens, TOTP recovery codes, password resets, organization settings.
-- Keep in step with migrations/sqlite/0002_identity.sql.
-- Personal data (e-mail, display name) and TOTP secrets are ciphertext under the organization's
-- key; e-mail lookups go through a keyed hash (email_index). Every token is stored as a hash.

CREATE TABLE users (
    id                     TEXT   PRIMARY KEY,
    organization_id        TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email_index            BYTEA  NOT NULL UNIQUE,
    email_ciphertext       BYTEA  NOT NULL,
    display_name_ciphertext BYTEA NOT NULL,
    role                   TEXT   NOT NULL CHECK (role IN ('administrator', 'editor', 'viewer')),
    status                 TEXT   NOT NULL CHECK (status IN ('active', 'deactivated')),
    password_hash          TEXT   NOT NULL,
    failed_logins          BIGINT NOT NULL DEFAULT 0,
    locked_until           BIGINT,
    totp_secret_ciphertext BYTEA,
    totp_enabled           BIGINT NOT NULL DEFAULT 0,
    totp_last_step         BIGINT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX users_organization ON users (organization_id);

CREATE TABLE recovery_codes (
    user_id         TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    code_hash       BYTEA  NOT NULL,
    used_at         BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE sessions (
    id              TEXT   PRIMARY KEY,
    organization_id TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash      BYTEA  NOT NULL UNIQUE,
    csrf_hash       BYTEA  NOT NULL,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id              TEXT   PRIMARY KEY,
    organization_id TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            TEXT   NOT NULL,
    token_hash      BYTEA  NOT NULL UNIQUE,
    role            TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    last_used_at    BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE password_resets (
    token_hash      BYTEA  PRIMARY KEY,
    organization_id TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);

CREATE TABLE organization_settings (
    organization_id TEXT   PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    require_totp    BIGINT NOT NULL DEFAULT 0,
    updated_at      BIGINT NOT NULL
);

ALTER TABLE invitations ADD COLUMN accepted_at BIGINT;
