-- Support access. Keep in step with migrations/sqlite/0021_support_access.sql.
-- Support accounts are people of the platform, not members of any organization: the operator
-- adds them. Their e-mail is found through the hub-wide keyed e-mail index and sealed, with their
-- TOTP secret, under a keyring subkey (no organization's key). The setup token (to choose a
-- password and enrol TOTP) is stored as a hash; `active` once TOTP is confirmed.
CREATE TABLE support_users (
    id                     TEXT   PRIMARY KEY,
    email_index            BYTEA   NOT NULL UNIQUE,
    email_ciphertext       BYTEA   NOT NULL,
    password_hash          TEXT,
    totp_secret_ciphertext BYTEA,
    totp_last_step         BIGINT,
    active                 BIGINT NOT NULL DEFAULT 0,
    setup_token_hash       BYTEA   UNIQUE,
    setup_expires_at       BIGINT,
    failed_logins          BIGINT NOT NULL DEFAULT 0,
    locked_until           BIGINT,
    created_at             BIGINT NOT NULL
);

-- A grant by an organization's Administrator: a role for a limited time. It stays (with its
-- reason and the support person's address sealed under the organization's key) after it ends or
-- the support account is removed, so the organization keeps the record of who had access.
CREATE TABLE support_grants (
    id                 TEXT   PRIMARY KEY,
    organization_id    TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    support_user_id    TEXT   NOT NULL,
    role               TEXT   NOT NULL CHECK (role IN ('administrator', 'editor', 'viewer')),
    reason_ciphertext  BYTEA   NOT NULL,
    email_ciphertext   BYTEA   NOT NULL,
    granted_by         TEXT   REFERENCES users (id) ON DELETE SET NULL,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    revoked_at         BIGINT,
    revoked_by         TEXT   REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX support_grants_organization ON support_grants (organization_id, created_at);
CREATE INDEX support_grants_support_user ON support_grants (support_user_id, expires_at);

-- A support person's signed-in session; bound to one organization and grant once they enter
-- it (`organization_id`, `grant_id`), and ended with the grant.
CREATE TABLE support_sessions (
    id               TEXT   PRIMARY KEY,
    support_user_id  TEXT   NOT NULL REFERENCES support_users (id) ON DELETE CASCADE,
    token_hash       BYTEA   NOT NULL UNIQUE,
    csrf_hash        BYTEA   NOT NULL,
    organization_id  TEXT   REFERENCES organizations (id) ON DELETE CASCADE,
    grant_id         TEXT   REFERENCES support_grants (id) ON DELETE CASCADE,
    created_at       BIGINT NOT NULL,
    last_seen_at     BIGINT NOT NULL
);
CREATE INDEX support_sessions_grant ON support_sessions (grant_id);
CREATE INDEX support_sessions_user ON support_sessions (support_user_id);

-- A support person acts too (under a grant): allow actor_kind 'support'.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_kind_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_kind_check
    CHECK (actor_kind IN ('user', 'operator', 'anonymous', 'scheduler', 'support'));
