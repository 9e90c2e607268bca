-- The customer stays in control. Keep in step with migrations/sqlite/0022_customer_control.sql.
-- A deletion of the whole organization an Administrator asked for: carried out by the hub's
-- periodic work once `due_at` has passed, unless an Administrator cancels it first. At most one
-- per organization; it goes with the organization. `requested_by` names the member (no foreign
-- key: the request stands if that member is removed meanwhile).
CREATE TABLE organization_deletions (
    organization_id  TEXT   PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    requested_by     TEXT   NOT NULL,
    requested_at     BIGINT NOT NULL,
    due_at           BIGINT NOT NULL
);
CREATE INDEX organization_deletions_due ON organization_deletions (due_at);

-- Days between the request and the deletion (0..=30; 0 deletes at once).
ALTER TABLE organization_settings ADD COLUMN deletion_grace_days BIGINT NOT NULL DEFAULT 7;

-- Set by the incident button: a sign-in with the right password is refused until the member
-- completes a password reset, which clears it.
ALTER TABLE users ADD COLUMN must_reset_password BIGINT NOT NULL DEFAULT 0;
