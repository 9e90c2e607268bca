-- Who sent an invitation (a user id; NULL for the operator's invitation of a new organization's
-- first Administrator), so Administrators can list pending invitations with their sender.
ALTER TABLE invitations ADD COLUMN invited_by TEXT;
