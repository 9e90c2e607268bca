-- Pipelines, their runs and the runs' per-record errors. Keep in step with
-- migrations/sqlite/0006_pipelines.sql. The specification (objects, mappings, rules) and the
-- incremental cursor (a record value) are ciphertext under the organization's key; so are the
-- rejected records. The schedule is in clear: the scheduler reads it without keys.

CREATE TABLE pipelines (
    id                        TEXT   PRIMARY KEY,
    organization_id           TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                      TEXT   NOT NULL,
    source_connection_id      TEXT   NOT NULL REFERENCES connections (id),
    destination_connection_id TEXT   NOT NULL REFERENCES connections (id),
    mode                      TEXT   NOT NULL CHECK (mode IN ('full_refresh', 'append', 'incremental', 'upsert')),
    spec_ciphertext           BYTEA  NOT NULL,
    schedule                  TEXT,
    next_run_at               BIGINT,
    cursor_ciphertext         BYTEA,
    created_by                TEXT,
    created_at                BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL,
    UNIQUE (organization_id, name)
);
CREATE INDEX pipelines_next_run ON pipelines (next_run_at);

CREATE TABLE runs (
    id               TEXT   PRIMARY KEY,
    organization_id  TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    pipeline_id      TEXT   NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    state            TEXT   NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    trigger          TEXT   NOT NULL CHECK (trigger IN ('manual', 'schedule')),
    requested_by     TEXT,
    scheduled_for    BIGINT,
    records_read     BIGINT NOT NULL DEFAULT 0,
    records_written  BIGINT NOT NULL DEFAULT 0,
    records_rejected BIGINT NOT NULL DEFAULT 0,
    warnings         BIGINT NOT NULL DEFAULT 0,
    message          TEXT,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    attempts         BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    updated_at       BIGINT NOT NULL,
    UNIQUE (pipeline_id, scheduled_for)
);
CREATE INDEX runs_queue ON runs (state, created_at);
CREATE INDEX runs_pipeline ON runs (pipeline_id, created_at);

CREATE TABLE run_errors (
    id              TEXT   PRIMARY KEY,
    organization_id TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    run_id          TEXT   NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    position        BIGINT NOT NULL,
    ciphertext      BYTEA  NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX run_errors_run ON run_errors (run_id, position);
CREATE INDEX run_errors_created ON run_errors (created_at);
