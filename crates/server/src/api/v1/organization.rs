//! `/api/v1/organization/deletion` and `/api/v1/organization/incident`: the customer stays in
//! control — Administrators delete their whole organization (after its grace period, cancellable
//! until then) and end every session and API token of a member or of everyone.

use super::auth::opaque_debug;
use crate::AppState;
use crate::extract::{ApiJson, Authenticated};
use crate::problem::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use lockstep_app::{DeletionConfirmation, DeletionView, IncidentOutcome, Password};
use lockstep_domain::UserId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeletionRequest {
    /// Your password.
    #[schema(max_length = 1024)]
    password: String,
    /// The current code of your authenticator, or an unused recovery code: needed when your
    /// account has TOTP.
    totp: Option<String>,
    /// The organization's name, typed exactly.
    confirm_name: String,
}

opaque_debug!(DeletionRequest);

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PendingDeletion {
    /// When everything of the organization will be deleted (the periodic sweep does it soon
    /// after).
    #[serde(with = "time::serde::rfc3339")]
    deletion_due_at: OffsetDateTime,
    /// The Administrator who asked.
    requested_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    requested_at: OffsetDateTime,
}

impl From<DeletionView> for PendingDeletion {
    fn from(d: DeletionView) -> Self {
        PendingDeletion {
            deletion_due_at: d.due_at,
            requested_by: d.requested_by,
            requested_at: d.requested_at,
        }
    }
}

/// Ask for the whole organization to be deleted (Administrators, signed in with a password —
/// not an API token). Confirm with your password, your TOTP code where you have TOTP, and the
/// organization's exact name. Every active Administrator is mailed; after the organization's
/// `deletion_grace_days` (at once with 0) everything is deleted and its keys destroyed. Audited.
#[utoipa::path(post, path = "/api/v1/organization/deletion", tag = "organization",
    request_body = DeletionRequest,
    responses(
        (status = 202, body = PendingDeletion),
        (status = 403, description = "Not an Administrator, or called with an API token", body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "A deletion is already pending", body = ApiError, content_type = "application/problem+json"),
        (status = 422, description = "Wrong password (`password`), TOTP code (`totp`) or name (`confirm_name`): nothing changed", body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn request_deletion(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<DeletionRequest>,
) -> Result<(StatusCode, Json<PendingDeletion>), ApiError> {
    let password = Password::new(body.password);
    let pending = state
        .hub
        .request_organization_deletion(
            &caller,
            DeletionConfirmation {
                password: &password,
                totp: body.totp.as_deref(),
                confirm_name: &body.confirm_name,
            },
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(pending.into())))
}

/// The organization's pending deletion (Administrators); 404 when none is pending.
#[utoipa::path(get, path = "/api/v1/organization/deletion", tag = "organization",
    responses(
        (status = 200, body = PendingDeletion),
        (status = 404, description = "No deletion is pending", body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_deletion(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<PendingDeletion>, ApiError> {
    state
        .hub
        .organization_deletion(&caller)
        .await?
        .map(|d| Json(d.into()))
        .ok_or_else(|| lockstep_app::AppError::NotFound("pending organization deletion").into())
}

/// Cancel the pending deletion (any Administrator); every active Administrator is mailed.
#[utoipa::path(delete, path = "/api/v1/organization/deletion", tag = "organization",
    responses(
        (status = 204),
        (status = 404, description = "No deletion is pending", body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn cancel_deletion(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<StatusCode, ApiError> {
    state.hub.cancel_organization_deletion(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Incident {
    /// The member whose credentials end; without it, every member of the organization — you
    /// included.
    user_id: Option<UserId>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct IncidentAnswer {
    sessions_ended: u64,
    tokens_revoked: u64,
    /// The members whose sessions and tokens ended and who must reset their password.
    members: u64,
}

impl From<IncidentOutcome> for IncidentAnswer {
    fn from(o: IncidentOutcome) -> Self {
        IncidentAnswer {
            sessions_ended: o.sessions_ended,
            tokens_revoked: o.tokens_revoked,
            members: o.members,
        }
    }
}

/// Respond to a security incident (Administrators): end every session and revoke every API
/// token of the member `user_id`, or without it of every member — the caller included, whose
/// own session ends too — and require a password reset before their next password or passkey
/// sign-in. Each member is mailed; audited `user.incident_response` per member.
#[utoipa::path(post, path = "/api/v1/organization/incident", tag = "organization",
    request_body = Incident,
    responses(
        (status = 200, body = IncidentAnswer),
        (status = 404, description = "No such member", body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn incident(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<Incident>,
) -> Result<Json<IncidentAnswer>, ApiError> {
    Ok(Json(
        state
            .hub
            .respond_to_incident(&caller, body.user_id)
            .await?
            .into(),
    ))
}
