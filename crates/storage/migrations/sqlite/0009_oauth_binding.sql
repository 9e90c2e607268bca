-- An OAuth authorization is bound to the browser that started it: the SHA-256 of the value of
-- a cookie set when it started. Pending authorizations from before have no binding and could
-- never complete, so they go.
-- Keep in step with migrations/postgres/0009_oauth_binding.sql.
DELETE FROM oauth_authorizations;
ALTER TABLE oauth_authorizations ADD COLUMN binding_hash BLOB NOT NULL DEFAULT X'';
