-- Connections may be of kind 'tryton' (a Tryton ERP over JSON-RPC). Keep in step with
-- migrations/sqlite/0017_tryton_connections.sql.
ALTER TABLE connections DROP CONSTRAINT connections_kind_check;
ALTER TABLE connections ADD CONSTRAINT connections_kind_check
    CHECK (kind IN ('postgres', 'mysql', 'sqlite', 'files', 'rest', 'tryton'));
