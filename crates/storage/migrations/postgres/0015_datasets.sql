-- Data sets: records pulled through a pipeline, staged for review and submitted later. Keep in
-- step with migrations/sqlite/0015_datasets.sql. Every value of a data set (its records, the
-- destination's values beside them, the edits, the outcomes, its name and filter) is ciphertext
-- under the data set's own key; that key is stored only wrapped by the organization's key
-- (`key_ciphertext`), so deleting the row makes everything else of the data set unreadable.
-- In clear: ids, the state, times, counts, and one flags byte per record (status, tick, issue
-- levels, outcome) that pages filter and count by without opening anything.

CREATE TABLE datasets (
    id               TEXT   PRIMARY KEY,
    organization_id  TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    pipeline_id      TEXT   NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    owner_id         TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_ciphertext   BYTEA  NOT NULL,
    name_ciphertext  BYTEA  NOT NULL,
    filter_ciphertext BYTEA,
    schema_ciphertext BYTEA,
    state            TEXT   NOT NULL CHECK (state IN ('pulling', 'ready', 'submitting', 'submitted', 'failed')),
    message          TEXT,
    counts           TEXT   NOT NULL DEFAULT '{}',
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    created_at       BIGINT NOT NULL,
    touched_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX datasets_owner ON datasets (organization_id, owner_id);
CREATE INDEX datasets_touched ON datasets (touched_at);

CREATE TABLE dataset_shares (
    dataset_id       TEXT   NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    user_id          TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id  TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (dataset_id, user_id)
);
CREATE INDEX dataset_shares_user ON dataset_shares (user_id);

-- Records in chunks: `kind` 'records' holds the data set's records from `first_row`,
-- 'destination' the destination's records read for the comparison (referenced by position).
CREATE TABLE dataset_chunks (
    dataset_id       TEXT   NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    organization_id  TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind             TEXT   NOT NULL CHECK (kind IN ('records', 'destination')),
    chunk            BIGINT NOT NULL,
    first_row        BIGINT NOT NULL,
    row_count        BIGINT NOT NULL,
    flags            BYTEA  NOT NULL,
    payload          BYTEA  NOT NULL,
    PRIMARY KEY (dataset_id, kind, chunk)
);

-- Edits by record key (a keyed hash under the data set's key): kept across a refresh.
CREATE TABLE dataset_edits (
    dataset_id       TEXT   NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    organization_id  TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    key_hash         BYTEA  NOT NULL,
    payload          BYTEA  NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (dataset_id, key_hash)
);

ALTER TABLE organization_settings ADD COLUMN dataset_retention_days BIGINT NOT NULL DEFAULT 5;
ALTER TABLE users ADD COLUMN dataset_removal_notice BIGINT NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN last_signed_in_at BIGINT;
