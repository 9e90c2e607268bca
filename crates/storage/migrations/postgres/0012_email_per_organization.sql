-- E-mail addresses are unique per organization, not across the hub: a person may be a member
-- of several organizations with the same address. Invitations remember whether their mail went
-- out ('sent', 'failed'; NULL when the hub has no mail server or before this migration).
-- Keep in step with migrations/sqlite/0012_email_per_organization.sql.
ALTER TABLE users DROP CONSTRAINT users_email_index_key;
ALTER TABLE users ADD CONSTRAINT users_organization_email UNIQUE (organization_id, email_index);
CREATE INDEX users_email_index ON users (email_index);
ALTER TABLE invitations ADD COLUMN mail_status TEXT
    CHECK (mail_status IS NULL OR mail_status IN ('sent', 'failed'));
