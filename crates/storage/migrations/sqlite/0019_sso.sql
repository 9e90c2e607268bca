-- Single sign-on per organization. Keep in step with migrations/postgres/0019_sso.sql.
-- One configuration per organization: its settings (OIDC issuer, client id, scopes, claim; or
-- the SAML IdP's metadata; the e-mail domains that lead to it) sealed under the organization's
-- key, the OIDC client secret sealed apart and write-only, like connection secrets.
CREATE TABLE sso_configs (
    organization_id      TEXT   PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    kind                 TEXT   NOT NULL CHECK (kind IN ('oidc', 'saml')),
    enabled              BIGINT NOT NULL,
    sso_only             BIGINT NOT NULL,
    jit_enabled          BIGINT NOT NULL,
    jit_role             TEXT   NOT NULL,
    break_glass_user_id  TEXT   REFERENCES users (id) ON DELETE SET NULL,
    settings             BLOB  NOT NULL,
    client_secret        BLOB,
    last_test_at         BIGINT,
    last_test_result     TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);

-- The e-mail domains whose people sign in through an organization's identity provider, as a
-- keyed hash of the lower-cased domain (a hub-wide key, like the e-mail index): one
-- organization per domain.
CREATE TABLE sso_domains (
    domain_index     BLOB  PRIMARY KEY,
    organization_id  TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE
);
CREATE INDEX sso_domains_organization ON sso_domains (organization_id);

-- Sign-ins sent to an identity provider and not answered yet, found by the SHA-256 of the
-- OIDC state or the SAML request id; each is used once. The OIDC nonce and PKCE verifier are
-- sealed under the organization's key; the browser that started it holds a cookie whose hash is
-- binding_hash. A test sign-in names the Administrator who started it.
CREATE TABLE sso_requests (
    lookup_hash      BLOB  PRIMARY KEY,
    organization_id  TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind             TEXT   NOT NULL CHECK (kind IN ('oidc', 'saml')),
    binding_hash     BLOB  NOT NULL,
    pending          BLOB  NOT NULL,
    tested_by        TEXT   REFERENCES users (id) ON DELETE CASCADE,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL
);
CREATE INDEX sso_requests_expiry ON sso_requests (expires_at);

-- SAML assertion ids already used, as SHA-256, kept until the assertion expires: a replayed
-- response is refused.
CREATE TABLE sso_assertions (
    organization_id  TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    assertion_hash   BLOB  NOT NULL,
    expires_at       BIGINT NOT NULL,
    PRIMARY KEY (organization_id, assertion_hash)
);
CREATE INDEX sso_assertions_expiry ON sso_assertions (expires_at);
