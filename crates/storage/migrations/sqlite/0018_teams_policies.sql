-- Teams and data policies. Keep in step with migrations/postgres/0018_teams_policies.sql.
-- A team's name is sealed under the organization's key (bound to the team and the field
-- `name`); `name` holds its keyed index, unique in the organization, as for connections.
CREATE TABLE teams (
    id               TEXT   PRIMARY KEY,
    organization_id  TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name             TEXT   NOT NULL,
    name_ciphertext  BLOB  NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (organization_id, name)
);

-- A member is in any number of teams of their own organization.
CREATE TABLE team_members (
    team_id          TEXT   NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id          TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id  TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    added_at         BIGINT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members (organization_id, user_id);

-- One row per organization and layer: whether it is on, and its rules as JSON sealed under the
-- organization's key (bound to the organization and the layer): row filters name values.
CREATE TABLE data_policies (
    organization_id  TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    layer            TEXT   NOT NULL CHECK (layer IN ('access', 'ownership', 'redaction')),
    enabled          BIGINT NOT NULL,
    document         BLOB  NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (organization_id, layer)
);
