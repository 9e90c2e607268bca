//! What an Administrator reads the audit by: the organization's members by display name (a
//! sealed personal field, decrypted here), its connections and pipelines by name, and the names
//! of the actions events are recorded under — so pages show names and offer pickers, not ids.

use crate::identity::Caller;
use crate::{AppError, Hub};
use lockstep_domain::{ConnectionId, PipelineId, UserId};
use lockstep_policy::{Action, Resource};
use lockstep_storage::{connections, pipelines, users};

/// Every action an audit event is recorded under, sorted.
pub const AUDIT_ACTIONS: &[&str] = &[
    "api_token.created",
    "api_token.revoked",
    "connection.created",
    "connection.deleted",
    "connection.discovered",
    "connection.file_deleted",
    "connection.file_uploaded",
    "connection.oauth_connected",
    "connection.oauth_disconnected",
    "connection.oauth_refreshed",
    "connection.oauth_started",
    "connection.tested",
    "connection.updated",
    "dataset.deleted",
    "dataset.expired",
    "dataset.pulled",
    "dataset.read",
    "dataset.record_updated",
    "dataset.shared",
    "dataset.submitted",
    "dataset.transferred",
    "dataset.unshared",
    "invitation.created",
    "invitation.replaced",
    "invitation.resent",
    "invitation.revoked",
    "invitations.listed",
    "ledger.exported",
    "organization.created",
    "organization.deleted",
    "organization.deletion_cancelled",
    "organization.deletion_requested",
    "organization.exported",
    "organization.footprint_read",
    "organization.incident_response",
    "organization.key_rotated",
    "organization.runs_deleted",
    "organization.settings_changed",
    "passkey.registered",
    "passkey.removed",
    "passkey.renamed",
    "pipeline.created",
    "pipeline.deleted",
    "pipeline.runs_deleted",
    "pipeline.updated",
    "policy.changed",
    "policy.viewed_as",
    "records.sampled",
    "run.cancel_requested",
    "run.cancelled",
    "run.failed",
    "run.requested",
    "run.scheduled",
    "run.succeeded",
    "run_errors.exported",
    "run_errors.read",
    "session.ended",
    "sso.configured",
    "sso.refused",
    "sso.signed_in",
    "sso.tested",
    "support.entered",
    "support.granted",
    "support.request",
    "support.revoked",
    "support.signed_out",
    "team.created",
    "team.deleted",
    "team.member_added",
    "team.member_removed",
    "team.renamed",
    "user.created",
    "user.deleted",
    "user.incident_response",
    "user.password_changed",
    "user.password_reset",
    "user.password_reset_requested",
    "user.read",
    "user.sign_in_failed",
    "user.signed_in",
    "user.signed_out_everywhere",
    "user.totp_enabled",
    "user.totp_enrolment_started",
    "user.totp_removed",
    "user.totp_reset",
    "user.updated",
    "users.listed",
];

/// The names of the organization's members, connections and pipelines, each by id.
#[derive(Debug, Clone, Default)]
pub struct AuditNames {
    /// Members by display name (case-insensitively sorted).
    pub members: Vec<(UserId, String)>,
    /// Connections by name.
    pub connections: Vec<(ConnectionId, String)>,
    /// Pipelines by name.
    pub pipelines: Vec<(PipelineId, String)>,
}

impl Hub {
    /// The names an audit page shows in place of ids (Administrators, like the events). Reading
    /// them is not an event of its own: the names are those of the events the caller reads.
    pub async fn audit_names(&self, caller: &Caller) -> Result<AuditNames, AppError> {
        let org = caller.organization();
        self.authorize(caller, Action::ReadAudit, &Resource::organization(org))?;
        let mut conn = self.store.read().await?;
        let stored_users = users::list(&mut conn, org).await?;
        let stored_connections = connections::list(&mut conn, org).await?;
        let stored_pipelines = pipelines::list(&mut conn, org).await?;
        drop(conn);
        let mut members = Vec::with_capacity(stored_users.len());
        for user in stored_users {
            let name = self
                .open_text(
                    org,
                    "user",
                    &user.id.to_string(),
                    "display_name",
                    &user.display_name_ciphertext,
                )
                .await?;
            members.push((user.id, name));
        }
        members.sort_by_cached_key(|(id, name)| (name.to_lowercase(), id.to_string()));
        Ok(AuditNames {
            members,
            connections: stored_connections
                .into_iter()
                .map(|c| (c.id, c.name))
                .collect(),
            pipelines: stored_pipelines
                .into_iter()
                .map(|p| (p.id, p.name))
                .collect(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::AUDIT_ACTIONS;

    /// Every quoted kind-dot-verb text in this crate's code is an action the list offers (or one of
    /// the few field names of that shape), so a new action cannot be missing from the pickers.
    #[test]
    fn the_action_list_names_every_action_the_code_records() {
        let mut sorted = AUDIT_ACTIONS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, AUDIT_ACTIONS, "keep the list sorted");
        let fields = ["source.", "destination.", "oidc.", "saml."];
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut missing = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let code = std::fs::read_to_string(&path).unwrap();
            for literal in code.split('"').skip(1).step_by(2) {
                let shaped = literal.split_once('.').is_some_and(|(kind, verb)| {
                    !kind.is_empty()
                        && !verb.is_empty()
                        && literal
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
                        && literal.matches('.').count() == 1
                });
                if shaped
                    && !fields.iter().any(|f| literal.starts_with(f))
                    && !AUDIT_ACTIONS.contains(&literal)
                {
                    missing.push(format!("{}: {literal}", path.display()));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "actions missing from AUDIT_ACTIONS: {missing:?}"
        );
    }
}
