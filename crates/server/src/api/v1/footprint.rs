//! `/api/v1/organization/export` and `/api/v1/organization/footprint`: Administrators take the
//! organization's configuration with them, and see what the hub stores about it.

use crate::AppState;
use crate::extract::Authenticated;
use crate::problem::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use lockstep_app::{Footprint, Retention};
use lockstep_domain::{ApiTokenId, OrganizationId, Role, TokenScope, UserId};
use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The organization's configuration as one JSON document, as a download (Administrators of
/// the organization, never a support person; audited `organization.exported`): organization,
/// settings, members and roles (no password hashes, TOTP secrets or recovery codes), pending
/// invitations (no tokens), teams, connections (configuration without secrets: a set secret
/// shows as `"<field>_set": true`), pipelines with their full specification, data policies and
/// single sign-on (no client secret).
#[utoipa::path(get, path = "/api/v1/organization/export", tag = "organization",
    responses(
        (status = 200, description = "The configuration (JSON), as an attachment"),
        (status = 403, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn export(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Response, ApiError> {
    let export = state.hub.export_organization(&caller).await?;
    let body = serde_json::to_vec_pretty(&export).map_err(|_| {
        ApiError::from(lockstep_app::AppError::Refused(
            "the export could not be written",
        ))
    })?;
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let disposition = format!(
        "attachment; filename=\"lockstep-{}-export.json\"",
        export.organization.id
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// When a kind of stored thing is deleted.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RetentionBody {
    /// `until_deleted`, `with_parent`, `expires`, `after_days`, `when_untouched`,
    /// `newest_per_object` or `kept_for_good`.
    rule: &'static str,
    /// `after_days`, `when_untouched`: the number of days.
    #[serde(skip_serializing_if = "Option::is_none")]
    days: Option<u32>,
    /// `newest_per_object`: the events each object keeps.
    #[serde(skip_serializing_if = "Option::is_none")]
    depth: Option<u32>,
    /// The rule in words.
    text: String,
}

impl From<&Retention> for RetentionBody {
    fn from(r: &Retention) -> Self {
        let (days, depth) = match r {
            Retention::AfterDays { days } | Retention::WhenUntouched { days } => {
                (Some(*days), None)
            }
            Retention::NewestPerObject { depth } => (None, Some(*depth)),
            _ => (None, None),
        };
        RetentionBody {
            rule: r.rule(),
            days,
            depth,
            text: r.describe(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct StoredKindBody {
    /// A stable name: `users`, `sessions`, `run_errors`, `dataset_records`, `ledger_entries`…
    kind: &'static str,
    label: &'static str,
    count: u64,
    /// When the oldest was made; absent when there is none or its time is not kept.
    #[serde(with = "time::serde::rfc3339::option")]
    oldest: Option<OffsetDateTime>,
    retention: RetentionBody,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct KeyVersionBody {
    version: u32,
    keyring_version: u32,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CiphertextsBody {
    kind: &'static str,
    label: &'static str,
    /// Key version (as text) → how many ciphertexts were made with it; `0`: not an
    /// organization-key ciphertext.
    by_version: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EncryptionBody {
    /// The key version new data is encrypted with.
    current_version: u32,
    keys: Vec<KeyVersionBody>,
    ciphertexts: Vec<CiphertextsBody>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct NamedMember {
    id: UserId,
    display_name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RoleBody {
    role: Role,
    active: u64,
    deactivated: u64,
    /// Administrators only: the active ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    members: Option<Vec<NamedMember>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TokenBody {
    id: ApiTokenId,
    name: String,
    scope: TokenScope,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    last_used_at: Option<OffsetDateTime>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TokenOwnerBody {
    user_id: UserId,
    display_name: String,
    tokens: Vec<TokenBody>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AccessBody {
    /// Administrators, Editors, Viewers.
    members_by_role: Vec<RoleBody>,
    api_tokens: Vec<TokenOwnerBody>,
    /// Support access grants in force now.
    support_grants: Vec<crate::api::v1::support::SupportGrantBody>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FootprintBody {
    organization: OrganizationId,
    #[serde(with = "time::serde::rfc3339")]
    taken_at: OffsetDateTime,
    /// Every kind of thing the hub holds for the organization.
    stored: Vec<StoredKindBody>,
    encryption: EncryptionBody,
    /// Who has access.
    access: AccessBody,
}

impl From<Footprint> for FootprintBody {
    fn from(f: Footprint) -> Self {
        FootprintBody {
            organization: f.organization,
            taken_at: f.taken_at,
            stored: f
                .stored
                .iter()
                .map(|k| StoredKindBody {
                    kind: k.kind,
                    label: k.label,
                    count: k.count,
                    oldest: k.oldest,
                    retention: RetentionBody::from(&k.retention),
                })
                .collect(),
            encryption: EncryptionBody {
                current_version: f.encryption.current_version,
                keys: f
                    .encryption
                    .keys
                    .iter()
                    .map(|k| KeyVersionBody {
                        version: k.version,
                        keyring_version: k.keyring_version,
                        created_at: k.created_at,
                    })
                    .collect(),
                ciphertexts: f
                    .encryption
                    .ciphertexts
                    .into_iter()
                    .map(|c| CiphertextsBody {
                        kind: c.kind,
                        label: c.label,
                        by_version: c
                            .by_version
                            .into_iter()
                            .map(|(v, n)| (v.to_string(), n))
                            .collect(),
                    })
                    .collect(),
            },
            access: AccessBody {
                support_grants: f
                    .access
                    .support_grants
                    .iter()
                    .cloned()
                    .map(Into::into)
                    .collect(),
                members_by_role: f
                    .access
                    .members_by_role
                    .into_iter()
                    .map(|r| RoleBody {
                        role: r.role,
                        active: r.active,
                        deactivated: r.deactivated,
                        members: r.names.map(|names| {
                            names
                                .into_iter()
                                .map(|(id, display_name)| NamedMember { id, display_name })
                                .collect()
                        }),
                    })
                    .collect(),
                api_tokens: f
                    .access
                    .api_tokens
                    .into_iter()
                    .map(|o| TokenOwnerBody {
                        user_id: o.user_id,
                        display_name: o.display_name,
                        tokens: o
                            .tokens
                            .into_iter()
                            .map(|t| TokenBody {
                                id: t.id,
                                name: t.name,
                                scope: t.scope,
                                created_at: t.created_at,
                                expires_at: t.expires_at,
                                last_used_at: t.last_used_at,
                            })
                            .collect(),
                    })
                    .collect(),
            },
        }
    }
}

/// What the hub stores about the organization (Administrators; audited
/// `organization.footprint_read`): every kind of thing with how many, the oldest one's time and
/// when it is deleted; the organization's key versions and which version its ciphertexts use;
/// who has access (members by role, API tokens by owner with their last use).
#[utoipa::path(get, path = "/api/v1/organization/footprint", tag = "organization",
    responses((status = 200, body = FootprintBody),
        (status = 403, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn footprint(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<FootprintBody>, ApiError> {
    Ok(Json(
        state.hub.organization_footprint(&caller).await?.into(),
    ))
}
