-- The organization's time zone (IANA name): schedules are evaluated in it.
-- Keep in step with migrations/sqlite/0008_time_zone.sql.
ALTER TABLE organization_settings ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
