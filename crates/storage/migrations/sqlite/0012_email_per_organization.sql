-- no-transaction
-- E-mail addresses are unique per organization, not across the hub: a person may be a member
-- of several organizations with the same address. Invitations remember whether their mail went
-- out ('sent', 'failed'; NULL when the hub has no mail server or before this migration).
-- Keep in step with migrations/postgres/0012_email_per_organization.sql.
--
-- SQLite cannot drop a column's UNIQUE constraint, so `users` is rebuilt with the same columns.
-- Five tables refer to it with ON DELETE CASCADE, and dropping a table deletes its rows first:
-- foreign keys are off for the rebuild (a pragma that only works outside a transaction, hence
-- `no-transaction`), and the rebuild itself is one transaction.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE users_new (
    id                     TEXT   PRIMARY KEY,
    organization_id        TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email_index            BLOB   NOT NULL,
    email_ciphertext       BLOB   NOT NULL,
    display_name_ciphertext BLOB  NOT NULL,
    role                   TEXT   NOT NULL CHECK (role IN ('administrator', 'editor', 'viewer')),
    status                 TEXT   NOT NULL CHECK (status IN ('active', 'deactivated')),
    password_hash          TEXT   NOT NULL,
    failed_logins          BIGINT NOT NULL DEFAULT 0,
    locked_until           BIGINT,
    totp_secret_ciphertext BLOB,
    totp_enabled           BIGINT NOT NULL DEFAULT 0,
    totp_last_step         BIGINT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    CONSTRAINT users_organization_email UNIQUE (organization_id, email_index)
);
INSERT INTO users_new (id, organization_id, email_index, email_ciphertext,
    display_name_ciphertext, role, status, password_hash, failed_logins, locked_until,
    totp_secret_ciphertext, totp_enabled, totp_last_step, created_at, updated_at)
SELECT id, organization_id, email_index, email_ciphertext, display_name_ciphertext, role,
    status, password_hash, failed_logins, locked_until, totp_secret_ciphertext, totp_enabled,
    totp_last_step, created_at, updated_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE INDEX users_organization ON users (organization_id);
CREATE INDEX users_email_index ON users (email_index);
ALTER TABLE invitations ADD COLUMN mail_status TEXT
    CHECK (mail_status IS NULL OR mail_status IN ('sent', 'failed'));
COMMIT;
PRAGMA foreign_keys = ON;
