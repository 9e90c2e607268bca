-- Files kept with a data set: the bill of materials it was read from ('source'), the file it is
-- compared with ('against'), the files of its parts ('part': thumbnails, PDF, STEP, DXF), and the shape of its
-- tree ('tree': each record's parent, for pages of the tree).
-- Keep in step with migrations/postgres/0016_dataset_files.sql. Everything but ids,
-- the kind and the size is ciphertext under the data set's key; `file_key` and `part_key` are
-- keyed hashes under that key (of the file's part and name; of the part number), so neither a
-- name nor a part number is stored in clear. Deleted with the data set (and its retention).
CREATE TABLE dataset_files (
    dataset_id       TEXT   NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    organization_id  TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind             TEXT   NOT NULL CHECK (kind IN ('source', 'against', 'part', 'tree')),
    file_key         BLOB  NOT NULL,
    part_key         BLOB  NOT NULL,
    size             BIGINT NOT NULL,
    -- What the file is (its name, part, content type), sealed apart from its bytes so that
    -- listing a data set's files opens no file.
    header           BLOB  NOT NULL,
    payload          BLOB  NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (dataset_id, kind, file_key)
);
CREATE INDEX dataset_files_part ON dataset_files (dataset_id, part_key);
