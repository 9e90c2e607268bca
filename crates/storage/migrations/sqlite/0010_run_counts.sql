-- Run counts that add up: records the filter skipped, records an incremental run held back
-- (read after the first rejected cursor, read again next run), and the failed warning rules
-- with their counts (JSON object: rule label such as "rules[3]" -> count; labels and numbers
-- only, never a message or a value). Rejected records carry their rule and kind in clear, so a
-- run's rejections can be counted per rule without opening them.
-- Keep in step with migrations/postgres/0010_run_counts.sql.
ALTER TABLE runs ADD COLUMN records_skipped BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN records_held_back BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN warning_counts TEXT;
ALTER TABLE run_errors ADD COLUMN rule TEXT NOT NULL DEFAULT '';
ALTER TABLE run_errors ADD COLUMN kind TEXT NOT NULL DEFAULT 'rule';
CREATE INDEX run_errors_group ON run_errors (run_id, kind, rule, position);
