//! `/api/v1/users*` and `/api/v1/organization/settings`: Administrators manage their organization.

use crate::AppState;
use crate::extract::{ApiJson, ApiPath, Authenticated};
use crate::problem::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use lockstep_app::{InvitationCreated, MailOutcome, UserUpdate, UserView};
use lockstep_domain::{InvitationId, Role, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Invite {
    #[schema(format = "email", max_length = 254)]
    email: String,
    role: Role,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Invited {
    id: InvitationId,
    /// What became of the invitation mail: `sent` (the mail server took it), `failed` (it
    /// could not be sent: resend later), or `no_mail_server` (this hub has none).
    mail: MailState,
    /// Only on a hub without a mail server (`mail` is `no_mail_server`): the token, shown this
    /// once, for the Administrator to hand over. Where mail reaches the address, only the
    /// invited address gets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    invitation_token: Option<String>,
    /// Why the token is (or is not) in this answer.
    note: &'static str,
    /// A pending invitation for the same address was replaced (its token stopped working).
    replaced: bool,
}

/// What became of an invitation's mail.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MailState {
    Sent,
    Failed,
    NoMailServer,
}

impl From<MailOutcome> for MailState {
    fn from(mail: MailOutcome) -> Self {
        match mail {
            MailOutcome::Sent => MailState::Sent,
            MailOutcome::Failed => MailState::Failed,
            MailOutcome::NoMailServer => MailState::NoMailServer,
        }
    }
}

impl Invited {
    fn new(created: &InvitationCreated, replaced: bool) -> Invited {
        Invited {
            id: created.id,
            mail: created.mail.into(),
            invitation_token: created
                .token_for_inviter()
                .map(|token| token.expose().to_owned()),
            note: match created.mail {
                MailOutcome::Sent => {
                    "The invitation was mailed to the address; only it gets the link."
                }
                MailOutcome::Failed => {
                    "The invitation mail could not be sent; resend the invitation later."
                }
                MailOutcome::NoMailServer => {
                    "This hub has no mail server: hand the invitation link over yourself."
                }
            },
            replaced,
        }
    }
}

super::auth::opaque_debug!(Invite, Invited);

/// Invite a member with a role (Administrators).
#[utoipa::path(post, path = "/api/v1/users/invitations", tag = "users",
    request_body = Invite,
    responses(
        (status = 201, body = Invited),
        (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 409, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn invite(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<Invite>,
) -> Result<(StatusCode, Json<Invited>), ApiError> {
    let created = state
        .hub
        .invite_user(&caller, &body.email, body.role)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Invited::new(&created, created.replaced)),
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct InvitationBody {
    id: InvitationId,
    email: String,
    role: Role,
    /// The Administrator who sent it; `null` for the operator's invitation of the first one.
    invited_by: Option<UserId>,
    /// Their display name while they are a member.
    invited_by_name: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    /// What became of its latest mail (`failed`: resend it).
    mail: MailState,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct InvitationList {
    invitations: Vec<InvitationBody>,
}

/// Pending invitations (Administrators); reading their addresses is audited.
#[utoipa::path(get, path = "/api/v1/users/invitations", tag = "users",
    responses((status = 200, body = InvitationList), (status = 403, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn list_invitations(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<InvitationList>, ApiError> {
    let list = state.hub.list_invitations(&caller).await?;
    Ok(Json(InvitationList {
        invitations: list
            .into_iter()
            .map(|v| InvitationBody {
                id: v.id,
                email: v.email,
                role: v.role,
                invited_by: v.invited_by,
                invited_by_name: v.invited_by_name,
                created_at: v.created_at,
                expires_at: v.expires_at,
                mail: v.mail.into(),
            })
            .collect(),
    }))
}

fn invitation_id(id: &str) -> Result<InvitationId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::invalid("id", "is not an invitation id"))
}

/// Send a pending invitation again with a new token; the old token stops working (Administrators).
#[utoipa::path(post, path = "/api/v1/users/invitations/{id}/resend", tag = "users",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Invited), (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn resend_invitation(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Invited>, ApiError> {
    let resent = state
        .hub
        .resend_invitation(&caller, invitation_id(&id)?)
        .await?;
    Ok(Json(Invited::new(&resent, false)))
}

/// Revoke a pending invitation: its token then fails like an unknown one (Administrators).
#[utoipa::path(delete, path = "/api/v1/users/invitations/{id}", tag = "users",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn revoke_invitation(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state
        .hub
        .revoke_invitation(&caller, invitation_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct UserBody {
    id: UserId,
    email: String,
    display_name: String,
    role: Role,
    active: bool,
    totp_enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl From<UserView> for UserBody {
    fn from(v: UserView) -> Self {
        UserBody {
            id: v.id,
            email: v.email,
            display_name: v.display_name,
            role: v.role,
            active: v.active,
            totp_enabled: v.totp_enabled,
            created_at: v.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct UserList {
    users: Vec<UserBody>,
}

/// The organization's users (Administrators).
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = UserList), (status = 403, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<UserList>, ApiError> {
    let users = state.hub.list_users(&caller).await?;
    Ok(Json(UserList {
        users: users.into_iter().map(UserBody::from).collect(),
    }))
}

fn user_id(id: &str) -> Result<UserId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::invalid("id", "is not a user id"))
}

/// One user (Administrators).
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = UserBody), (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<UserBody>, ApiError> {
    Ok(Json(
        state.hub.get_user(&caller, user_id(&id)?).await?.into(),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserPatch {
    role: Option<Role>,
    /// `false` deactivates (their sessions end at once); `true` reactivates.
    active: Option<bool>,
}

/// Change a user's role, deactivate or reactivate them (Administrators).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = uuid::Uuid, Path)),
    request_body = UserPatch,
    responses((status = 200, body = UserBody), (status = 404, body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "Would leave no active Administrator", body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn update(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UserPatch>,
) -> Result<Json<UserBody>, ApiError> {
    let update = UserUpdate {
        role: body.role,
        active: body.active,
    };
    Ok(Json(
        state
            .hub
            .update_user(&caller, user_id(&id)?, update)
            .await?
            .into(),
    ))
}

/// Delete a user with their sessions and tokens (Administrators).
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ApiError, content_type = "application/problem+json"),
        (status = 409, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.hub.delete_user(&caller, user_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reset a member's second factor: their TOTP and recovery codes are removed and their sessions
/// end (Administrators; audited).
#[utoipa::path(post, path = "/api/v1/users/{id}/totp/reset", tag = "users",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn reset_totp(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.hub.reset_user_totp(&caller, user_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct Settings {
    /// Every member must have a second factor — TOTP or a passkey — before doing anything else
    /// (the name is kept from when TOTP was the only one).
    require_totp: bool,
    /// How many audit events each object keeps (1..=1000).
    audit_depth: u32,
    /// Whether events also go to the long-term, verifiable ledger.
    long_term_audit: bool,
    /// IANA time zone name (`Europe/Berlin`); pipeline schedules are evaluated in it.
    time_zone: String,
    /// Days (1..=90) after which a data set nobody opened, edited or submitted is deleted (and
    /// every data set of a member who has not signed in for as long).
    dataset_retention_days: u32,
    /// Days (0..=30, default 7) between a request to delete the organization and the deletion;
    /// 0 deletes at once.
    deletion_grace_days: u32,
}

impl From<lockstep_app::OrganizationSettings> for Settings {
    fn from(s: lockstep_app::OrganizationSettings) -> Self {
        Settings {
            require_totp: s.require_totp,
            audit_depth: s.audit_depth,
            long_term_audit: s.long_term_audit,
            time_zone: s.time_zone,
            dataset_retention_days: s.dataset_retention_days,
            deletion_grace_days: s.deletion_grace_days,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsPatch {
    require_totp: Option<bool>,
    /// 1 to 1000.
    #[schema(minimum = 1, maximum = 1000)]
    audit_depth: Option<u32>,
    long_term_audit: Option<bool>,
    time_zone: Option<String>,
    /// Days (1 to 90) after which a data set nobody opened, edited or submitted is deleted.
    #[schema(minimum = 1, maximum = 90)]
    dataset_retention_days: Option<u32>,
    /// Days (0 to 30) between a request to delete the organization and the deletion; a pending
    /// deletion keeps its date.
    #[schema(minimum = 0, maximum = 30)]
    deletion_grace_days: Option<u32>,
}

/// The organization's settings (Administrators).
#[utoipa::path(get, path = "/api/v1/organization/settings", tag = "organization",
    responses((status = 200, body = Settings), (status = 403, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn get_settings(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Settings>, ApiError> {
    Ok(Json(state.hub.organization_settings(&caller).await?.into()))
}

/// Change the organization's settings (Administrators).
#[utoipa::path(patch, path = "/api/v1/organization/settings", tag = "organization",
    request_body = SettingsPatch,
    responses((status = 200, body = Settings), (status = 403, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn update_settings(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<SettingsPatch>,
) -> Result<Json<Settings>, ApiError> {
    let update = lockstep_app::SettingsUpdate {
        require_totp: body.require_totp,
        audit_depth: body.audit_depth,
        long_term_audit: body.long_term_audit,
        time_zone: body.time_zone,
        dataset_retention_days: body.dataset_retention_days,
        deletion_grace_days: body.deletion_grace_days,
    };
    Ok(Json(
        state
            .hub
            .update_organization_settings(&caller, update)
            .await?
            .into(),
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct KeyRotated {
    /// The data key version new data is encrypted with.
    key_version: u32,
}

/// Rotate the organization's data key (Administrators); older versions keep decrypting older data.
#[utoipa::path(post, path = "/api/v1/organization/keys/rotate", tag = "organization",
    responses((status = 200, body = KeyRotated), (status = 403, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn rotate_key(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<KeyRotated>, ApiError> {
    let key_version = state.hub.rotate_organization_key(&caller).await?;
    Ok(Json(KeyRotated { key_version }))
}
