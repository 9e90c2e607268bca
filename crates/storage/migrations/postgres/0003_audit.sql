-- Short-term audit: each object keeps its last N events (organization_settings.audit_depth).
-- Keep in step with migrations/sqlite/0003_audit.sql.
-- The change set (before/after values) is ciphertext under the organization's key.

CREATE TABLE audit_events (
    id                 TEXT   PRIMARY KEY,
    organization_id    TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    seq                BIGINT NOT NULL,
    at                 BIGINT NOT NULL,
    actor_kind         TEXT   NOT NULL CHECK (actor_kind IN ('user', 'operator', 'anonymous')),
    actor_id           TEXT,
    action             TEXT   NOT NULL,
    object_kind        TEXT   NOT NULL,
    object_id          TEXT   NOT NULL,
    outcome            TEXT   NOT NULL CHECK (outcome IN ('success', 'failure')),
    changes_ciphertext BYTEA
);
CREATE INDEX audit_events_object ON audit_events (organization_id, object_kind, object_id, seq);
CREATE INDEX audit_events_time ON audit_events (organization_id, seq);

ALTER TABLE organization_settings ADD COLUMN audit_depth BIGINT NOT NULL DEFAULT 10;
ALTER TABLE organization_settings ADD COLUMN long_term_audit BIGINT NOT NULL DEFAULT 1;
