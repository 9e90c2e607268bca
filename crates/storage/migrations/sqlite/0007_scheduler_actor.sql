-- The scheduler acts too (it queues scheduled runs): allow actor_kind 'scheduler'.
-- Keep in step with migrations/postgres/0007_scheduler_actor.sql. SQLite cannot change a CHECK
-- constraint in place, so the table is rebuilt with the same columns and indexes.

CREATE TABLE audit_events_new (
    id                 TEXT   PRIMARY KEY,
    organization_id    TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    seq                BIGINT NOT NULL,
    at                 BIGINT NOT NULL,
    actor_kind         TEXT   NOT NULL CHECK (actor_kind IN ('user', 'operator', 'anonymous', 'scheduler')),
    actor_id           TEXT,
    action             TEXT   NOT NULL,
    object_kind        TEXT   NOT NULL,
    object_id          TEXT   NOT NULL,
    outcome            TEXT   NOT NULL CHECK (outcome IN ('success', 'failure')),
    changes_ciphertext BLOB
);
INSERT INTO audit_events_new (id, organization_id, seq, at, actor_kind, actor_id, action,
    object_kind, object_id, outcome, changes_ciphertext)
SELECT id, organization_id, seq, at, actor_kind, actor_id, action, object_kind, object_id,
    outcome, changes_ciphertext FROM audit_events;
DROP TABLE audit_events;
ALTER TABLE audit_events_new RENAME TO audit_events;
CREATE INDEX audit_events_object ON audit_events (organization_id, object_kind, object_id, seq);
CREATE INDEX audit_events_time ON audit_events (organization_id, seq);
