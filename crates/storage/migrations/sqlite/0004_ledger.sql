-- The long-term audit ledger: one append-only Merkle log per organization (RFC 9162 hashing),
-- with signed checkpoints. Keep in step with migrations/postgres/0004_ledger.sql.
-- Entries hold ids and keyed hashes only. They are kept when the organization is deleted (no
-- foreign key): its key is gone, so they mean nothing any more, and every proof still verifies.

CREATE TABLE ledger_entries (
    organization_id TEXT   NOT NULL,
    idx             BIGINT NOT NULL,
    entry           BLOB   NOT NULL,
    running_root    BLOB   NOT NULL,
    PRIMARY KEY (organization_id, idx)
);

CREATE TABLE ledger_heads (
    organization_id TEXT   PRIMARY KEY,
    size            BIGINT NOT NULL,
    frontier        BLOB   NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE ledger_checkpoints (
    organization_id TEXT   NOT NULL,
    size            BIGINT NOT NULL,
    note            TEXT   NOT NULL,
    -- The verifier key that signed the note (public), so the stored ledger verifies offline.
    vkey            TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (organization_id, size)
);
