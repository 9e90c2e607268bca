-- no-transaction
-- Connections may be of kind 'tryton' (a Tryton ERP over JSON-RPC). Keep in step with
-- migrations/postgres/0017_tryton_connections.sql.
--
-- SQLite cannot change a CHECK constraint, so `connections` is rebuilt with the same columns.
-- Tables refer to it (ON DELETE CASCADE) and dropping a table deletes its rows first: foreign
-- keys are off for the rebuild (outside a transaction, hence `no-transaction`), and the rebuild
-- itself is one transaction.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE connections_new (
    id                TEXT   PRIMARY KEY,
    organization_id   TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name              TEXT   NOT NULL,
    kind              TEXT   NOT NULL CHECK (kind IN ('postgres', 'mysql', 'sqlite', 'files', 'rest', 'tryton')),
    config_ciphertext BLOB  NOT NULL,
    oauth_expires_at  BIGINT,
    oauth_connected   BIGINT NOT NULL DEFAULT 0,
    created_by        TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    name_ciphertext   BLOB,
    UNIQUE (organization_id, name)
);
INSERT INTO connections_new (id, organization_id, name, kind, config_ciphertext,
    oauth_expires_at, oauth_connected, created_by, created_at, updated_at, name_ciphertext)
SELECT id, organization_id, name, kind, config_ciphertext, oauth_expires_at, oauth_connected,
    created_by, created_at, updated_at, name_ciphertext FROM connections;
DROP TABLE connections;
ALTER TABLE connections_new RENAME TO connections;
COMMIT;
PRAGMA foreign_keys = ON;
