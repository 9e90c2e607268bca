-- The dashboard's recent runs of an organization, newest first, since a time: an index that
-- answers them without scanning the organization's whole run history.
-- Keep in step with migrations/sqlite/0014_runs_recent.sql.
CREATE INDEX runs_recent ON runs (organization_id, created_at);
