-- Passkeys (WebAuthn credentials). Keep in step with migrations/postgres/0020_passkeys.sql.
-- A member's passkey: its name and the credential (webauthn-rs's `Passkey`: public key, signature
-- counter, backup flags) sealed under the organization's key, bound to the passkey and the field.
-- `credential_hash` is the SHA-256 of the credential id the authenticator chose, unique across
-- the hub: a sign-in without a password finds the passkey (and so its member) by it.
-- Pending ceremonies (challenges) are not stored: they live in the hub's memory for five
-- minutes (see ARCHITECTURE.md).
CREATE TABLE passkeys (
    id                     TEXT   PRIMARY KEY,
    organization_id        TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id                TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_hash        BLOB   NOT NULL UNIQUE,
    name_ciphertext        BLOB   NOT NULL,
    credential_ciphertext  BLOB   NOT NULL,
    created_at             BIGINT NOT NULL,
    last_used_at           BIGINT
);
CREATE INDEX passkeys_user ON passkeys (organization_id, user_id);
