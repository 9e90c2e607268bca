-- The scheduler acts too (it queues scheduled runs): allow actor_kind 'scheduler'.
-- Keep in step with migrations/sqlite/0007_scheduler_actor.sql.

ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_kind_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_kind_check
    CHECK (actor_kind IN ('user', 'operator', 'anonymous', 'scheduler'));
