//! "Export before leaving": the organization's configuration as one JSON document an
//! Administrator downloads — organization, settings, members and roles, invitations, teams,
//! connections, pipelines, data policies and single sign-on. Never a secret: no password hash,
//! TOTP secret, recovery code, token, connection secret or client secret; a secret that is set
//! appears as `"<field>_set": true`. Records, run errors and data sets are data, not
//! configuration, and stay out. Audited `organization.exported`.

use crate::audit::{Actor, Event};
use crate::identity::Caller;
use crate::{AccessPolicy, AppError, Hub, OwnershipPolicy, RedactionPolicy, SsoConfigView, engine};
use lockstep_domain::{
    ConnectionId, InvitationId, OrganizationId, PipelineId, Role, TeamId, UserId,
};
use lockstep_policy::Action;
use lockstep_storage::users::UserStatus;
use lockstep_storage::{invitations, organizations, passkeys, settings, users};
use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The version of the export's format, written into it.
pub const EXPORT_FORMAT: u32 = 1;

/// The organization's configuration, as exported.
#[derive(Debug, Clone, Serialize)]
pub struct OrganizationExport {
    pub format: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub exported_at: OffsetDateTime,
    pub organization: ExportedOrganization,
    pub settings: ExportedSettings,
    pub users: Vec<ExportedUser>,
    pub invitations: Vec<ExportedInvitation>,
    pub teams: Vec<ExportedTeam>,
    pub connections: Vec<ExportedConnection>,
    pub pipelines: Vec<ExportedPipeline>,
    pub data_policies: ExportedPolicies,
    /// Absent when single sign-on is not set up.
    pub sso: Option<ExportedSso>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportedOrganization {
    pub id: OrganizationId,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportedSettings {
    pub require_totp: bool,
    pub audit_depth: u32,
    pub long_term_audit: bool,
    pub time_zone: String,
    pub dataset_retention_days: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportedUser {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    /// `active` or `deactivated`.
    pub status: &'static str,
    pub totp_enrolled: bool,
    /// How many passkeys the member registered (the credentials themselves stay out).
    pub passkeys: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A pending invitation: the address and role, never its token.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedInvitation {
    pub id: InvitationId,
    pub email: String,
    pub role: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportedTeam {
    pub id: TeamId,
    pub name: String,
    pub members: Vec<UserId>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportedConnection {
    pub id: ConnectionId,
    pub name: String,
    pub kind: crate::connectors::ConnectionKind,
    /// The configuration without any secret (secrets are stored apart).
    pub config: serde_json::Value,
    /// `"<field>_set": true` for each secret that is set; never a value.
    pub secrets: BTreeMap<String, bool>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportedPipeline {
    pub id: PipelineId,
    pub name: String,
    /// The full specification: source, destination, mode, mappings, rules, schedule.
    pub spec: engine::PipelineSpec,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportedPolicies {
    pub access: AccessPolicy,
    pub ownership: OwnershipPolicy,
    pub redaction: RedactionPolicy,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportedSso {
    /// `oidc` or `saml`.
    pub kind: &'static str,
    pub enabled: bool,
    pub sso_only: bool,
    pub jit_enabled: bool,
    pub jit_role: Role,
    pub break_glass_user_id: Option<UserId>,
    pub domains: Vec<String>,
    pub oidc: Option<ExportedOidc>,
    pub saml: Option<ExportedSaml>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportedOidc {
    pub issuer: String,
    pub client_id: String,
    pub client_secret_set: bool,
    pub scopes: Vec<String>,
    pub email_claim: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportedSaml {
    pub idp_entity_id: String,
    pub idp_sso_url: String,
}

fn sso_export(view: SsoConfigView) -> ExportedSso {
    ExportedSso {
        kind: view.kind.as_str(),
        enabled: view.enabled,
        sso_only: view.sso_only,
        jit_enabled: view.jit.enabled,
        jit_role: view.jit.role,
        break_glass_user_id: view.break_glass_user_id,
        domains: view.domains,
        oidc: view.oidc.map(|o| ExportedOidc {
            issuer: o.issuer,
            client_id: o.client_id,
            client_secret_set: o.client_secret_set,
            scopes: o.scopes,
            email_claim: o.email_claim,
        }),
        saml: view.saml.map(|s| ExportedSaml {
            idp_entity_id: s.idp_entity_id,
            idp_sso_url: s.idp_sso_url,
        }),
    }
}

impl Hub {
    /// The caller's organization's configuration as one document (Administrators of the
    /// organization; never a support person). The answer is withheld when its audit event
    /// (`organization.exported`) cannot be written.
    pub async fn export_organization(
        &self,
        caller: &Caller,
    ) -> Result<OrganizationExport, AppError> {
        self.authorize_in_organization(caller, Action::ExportOrganization)?;
        let org = caller.organization();
        let mut conn = self.store.read().await?;
        let organization = organizations::get(&mut conn, org)
            .await?
            .ok_or(AppError::NotFound("organization"))?;
        let stored_settings = settings::get(&mut conn, org).await?;
        let members = users::list(&mut conn, org).await?;
        let mut passkey_counts = Vec::with_capacity(members.len());
        for member in &members {
            passkey_counts.push(passkeys::count_for_user(&mut conn, org, member.id).await?);
        }
        let pending = invitations::list_pending(&mut conn, org).await?;
        drop(conn);

        let mut exported_users = Vec::with_capacity(members.len());
        for (member, passkeys) in members.iter().zip(passkey_counts) {
            let (email, display_name) = self.open_profile(member).await?;
            exported_users.push(ExportedUser {
                id: member.id,
                email,
                display_name,
                role: member.role,
                status: match member.status {
                    UserStatus::Active => "active",
                    UserStatus::Deactivated => "deactivated",
                },
                totp_enrolled: member.totp_enabled,
                passkeys: u32::try_from(passkeys).unwrap_or(u32::MAX),
                created_at: member.created_at,
            });
        }
        let mut exported_invitations = Vec::with_capacity(pending.len());
        for invitation in pending {
            let email = self
                .open_text(
                    org,
                    "invitation",
                    &invitation.id.to_string(),
                    "email",
                    &invitation.email_ciphertext,
                )
                .await?;
            exported_invitations.push(ExportedInvitation {
                id: invitation.id,
                email,
                role: invitation.role,
                created_at: invitation.created_at,
                expires_at: invitation.expires_at,
            });
        }
        let teams = self
            .list_teams(caller)
            .await?
            .into_iter()
            .map(|t| ExportedTeam {
                id: t.id,
                name: t.name,
                members: t.members.into_iter().map(|(id, _)| id).collect(),
            })
            .collect();
        let mut connections = Vec::new();
        for view in self.list_connections(caller).await? {
            let Some(details) = view.details else {
                // Administrators always see the details; nothing half-exported otherwise.
                return Err(AppError::Refused(
                    "a connection's configuration could not be read",
                ));
            };
            connections.push(ExportedConnection {
                id: view.id,
                name: view.name,
                kind: view.kind,
                config: details.config,
                secrets: details
                    .secrets_set
                    .into_iter()
                    .map(|field| (format!("{field}_set"), true))
                    .collect(),
                created_at: details.created_at,
            });
        }
        let pipelines = self
            .list_pipelines(caller)
            .await?
            .into_iter()
            .map(|p| ExportedPipeline {
                id: p.id,
                name: p.name,
                spec: p.spec,
                created_at: p.created_at,
            })
            .collect();
        let data_policies = ExportedPolicies {
            access: self.access_policy(caller).await?,
            ownership: self.ownership_policy(caller).await?,
            redaction: self.redaction_policy(caller).await?,
        };
        let sso = self.sso_config(caller).await?.map(sso_export);
        let export = OrganizationExport {
            format: EXPORT_FORMAT,
            exported_at: self.clock.now(),
            organization: ExportedOrganization {
                id: org,
                name: organization.name.as_str().to_owned(),
                created_at: organization.created_at,
            },
            settings: ExportedSettings {
                require_totp: stored_settings.require_totp,
                audit_depth: stored_settings.audit_depth,
                long_term_audit: stored_settings.long_term_audit,
                time_zone: stored_settings.time_zone,
                dataset_retention_days: stored_settings.dataset_retention_days,
            },
            users: exported_users,
            invitations: exported_invitations,
            teams,
            connections,
            pipelines,
            data_policies,
            sso,
        };
        let event = Event::new(
            Actor::User(caller.user()),
            "organization.exported",
            "organization",
            org,
        );
        self.record_read(caller, event).await?;
        tracing::info!(organization = %org, by = %caller.user(), "organization configuration exported");
        Ok(export)
    }
}
