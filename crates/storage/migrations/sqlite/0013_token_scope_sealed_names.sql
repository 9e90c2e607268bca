-- An API token's scope (read, run or manage), chosen when it is made; the policy holds a token
-- to its scope and to its owner's current role. Tokens made before scopes existed acted with
-- the owner's whole role, so they keep it as `manage`.
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'manage';

-- Names of connections, pipelines and API tokens are sealed under the organization's key
-- (bound to the object and the field `name`). For connections and pipelines the `name` column
-- then holds a keyed index of the name (HMAC under a key derived from the keyring), so the
-- existing UNIQUE (organization_id, name) still refuses a second object of the same name; for
-- API tokens it is empty. Rows written before keep their clear name, with no ciphertext, until
-- the hub seals them (`Hub::seal_clear_names`, every minute while unsealed).
ALTER TABLE connections ADD COLUMN name_ciphertext BLOB;
ALTER TABLE pipelines ADD COLUMN name_ciphertext BLOB;
ALTER TABLE api_tokens ADD COLUMN name_ciphertext BLOB;
