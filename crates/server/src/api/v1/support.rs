//! Support access: the operator's support accounts (`/api/v1/sys/support-users`), a support
//! person's setup, sign-in and entering an organization (`/api/v1/auth/support/*`, the routes
//! after sign-in take the support session as `Authorization: Bearer`), and the grants an
//! organization's Administrators give (`/api/v1/organization/support-access`).

use crate::AppState;
use crate::api::v1::auth::{LoginAnswer, opaque_debug, session_tokens_answer};
use crate::extract::{ApiJson, ApiPath, Authenticated, OperatorAuth};
use crate::problem::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use lockstep_app::{Password, SecretToken, SupportAccount, SupportGrantView, SupportOrganization};
use lockstep_domain::{OrganizationId, Role, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SupportAccountBody {
    id: Uuid,
    email: String,
    /// Password chosen and TOTP confirmed: may sign in.
    active: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl From<SupportAccount> for SupportAccountBody {
    fn from(a: SupportAccount) -> Self {
        SupportAccountBody {
            id: a.id,
            email: a.email,
            active: a.active,
            created_at: a.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SupportAccountList {
    support_users: Vec<SupportAccountBody>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSupportUser {
    email: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedSupportUser {
    #[serde(flatten)]
    account: SupportAccountBody,
    /// Shown once (and mailed): the person opens `/support/setup#<token>` to choose a password
    /// and enrol TOTP, within 7 days.
    setup_token: String,
}

opaque_debug!(CreatedSupportUser);

/// Add a support account (a person of the platform who helps customers). It sees no
/// organization until one grants it access.
#[utoipa::path(post, path = "/api/v1/sys/support-users", tag = "support",
    security(("operator_token" = [])),
    request_body = NewSupportUser,
    responses(
        (status = 201, body = CreatedSupportUser),
        (status = 401, body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "The address already has a support account", body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn add_support_user(
    State(state): State<AppState>,
    OperatorAuth(operator): OperatorAuth,
    ApiJson(body): ApiJson<NewSupportUser>,
) -> Result<(StatusCode, Json<CreatedSupportUser>), ApiError> {
    let created = state.hub.add_support_user(&operator, &body.email).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedSupportUser {
            setup_token: created.setup_token.expose().to_owned(),
            account: created.account.into(),
        }),
    ))
}

/// List the support accounts.
#[utoipa::path(get, path = "/api/v1/sys/support-users", tag = "support",
    security(("operator_token" = [])),
    responses(
        (status = 200, body = SupportAccountList),
        (status = 401, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_support_users(
    State(state): State<AppState>,
    OperatorAuth(operator): OperatorAuth,
) -> Result<Json<SupportAccountList>, ApiError> {
    let users = state.hub.list_support_users(&operator).await?;
    Ok(Json(SupportAccountList {
        support_users: users.into_iter().map(Into::into).collect(),
    }))
}

/// Remove a support account: its sessions end at once; organizations keep the record of the
/// grants they gave it.
#[utoipa::path(delete, path = "/api/v1/sys/support-users/{id}", tag = "support",
    security(("operator_token" = [])),
    params(("id" = Uuid, Path, description = "Support account id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, body = ApiError, content_type = "application/problem+json"),
        (status = 404, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn remove_support_user(
    State(state): State<AppState>,
    OperatorAuth(operator): OperatorAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.hub.remove_support_user(&operator, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SupportSetup {
    token: String,
    /// 8 to 128 characters, not a common password.
    #[schema(min_length = 8, max_length = 128)]
    password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SupportSetupAnswer {
    /// Add it to an authenticator app, then confirm with a first code.
    otpauth_uri: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SupportSetupConfirm {
    token: String,
    code: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SupportLogin {
    email: String,
    password: String,
    /// The current TOTP code: always needed.
    totp: String,
}

opaque_debug!(
    SupportSetup,
    SupportSetupAnswer,
    SupportSetupConfirm,
    SupportLogin
);

/// Set up a support account, first step: choose the password; answers the TOTP secret to enrol.
#[utoipa::path(post, path = "/api/v1/auth/support/setup", tag = "support",
    security(()),
    request_body = SupportSetup,
    responses(
        (status = 200, body = SupportSetupAnswer),
        (status = 404, description = "No such setup link, or it expired or was used", body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json"),
        (status = 429, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn support_setup(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SupportSetup>,
) -> Result<Json<SupportSetupAnswer>, ApiError> {
    let password = Password::new(body.password);
    let enrolment = state
        .hub
        .begin_support_setup(&body.token, &password)
        .await?;
    Ok(Json(SupportSetupAnswer {
        otpauth_uri: enrolment.otpauth_uri.to_string(),
    }))
}

/// Set up a support account, second step: a first code from the authenticator. The account may
/// then sign in; the setup link is used up.
#[utoipa::path(post, path = "/api/v1/auth/support/setup/confirm", tag = "support",
    security(()),
    request_body = SupportSetupConfirm,
    responses(
        (status = 204, description = "Set up"),
        (status = 403, description = "Choose the password first", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such setup link, or it expired or was used", body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json"),
        (status = 429, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn support_setup_confirm(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SupportSetupConfirm>,
) -> Result<StatusCode, ApiError> {
    state
        .hub
        .confirm_support_setup(&body.token, &body.code)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A support person signs in: e-mail, password and TOTP code. The session sees no organization
/// until it enters one under a grant (`POST /api/v1/auth/support/enter`). Also set as the
/// `__Host-` cookie for pages.
#[utoipa::path(post, path = "/api/v1/auth/support/login", tag = "support",
    security(()),
    request_body = SupportLogin,
    responses(
        (status = 200, body = LoginAnswer),
        (status = 401, description = "Sign-in failed", body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json"),
        (status = 429, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn support_login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SupportLogin>,
) -> Result<impl IntoResponse, ApiError> {
    let password = Password::new(body.password);
    let done = state
        .hub
        .support_login(&body.email, &password, &body.totp)
        .await?;
    Ok(session_tokens_answer(
        &done.session_token,
        &done.csrf_token,
        done.expires_at,
    ))
}

/// The support session of `Authorization: Bearer lsp_…` (only a bearer: these routes are never
/// sent by a browser on its own).
pub(crate) struct SupportBearer(SecretToken);

impl axum::extract::FromRequestParts<AppState> for SupportBearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, token)| {
                scheme.eq_ignore_ascii_case("bearer") && token.trim().starts_with("lsp_")
            })
            .map(|(_, token)| SecretToken::from_text(token.trim()));
        token
            .map(SupportBearer)
            .ok_or_else(ApiError::unauthenticated)
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SupportOrganizationBody {
    organization_id: OrganizationId,
    organization_name: String,
    grant_id: Uuid,
    role: Role,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

impl From<SupportOrganization> for SupportOrganizationBody {
    fn from(o: SupportOrganization) -> Self {
        SupportOrganizationBody {
            organization_id: o.organization_id,
            organization_name: o.organization_name,
            grant_id: o.grant_id,
            role: o.role,
            expires_at: o.expires_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SupportOrganizationList {
    organizations: Vec<SupportOrganizationBody>,
}

/// The organizations that granted the signed-in support person access, in force now.
#[utoipa::path(get, path = "/api/v1/auth/support/organizations", tag = "support",
    security(("support_session" = [])),
    responses(
        (status = 200, body = SupportOrganizationList),
        (status = 401, body = ApiError, content_type = "application/problem+json"),
        (status = 429, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn support_organizations(
    State(state): State<AppState>,
    SupportBearer(token): SupportBearer,
) -> Result<Json<SupportOrganizationList>, ApiError> {
    let organizations = state.hub.support_organizations(token.expose()).await?;
    Ok(Json(SupportOrganizationList {
        organizations: organizations.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnterOrganization {
    organization_id: OrganizationId,
}

/// Work in an organization: only under a grant of it in force (otherwise 404). The same session
/// then acts there with the granted role, every request audited, until the grant ends.
#[utoipa::path(post, path = "/api/v1/auth/support/enter", tag = "support",
    security(("support_session" = [])),
    request_body = EnterOrganization,
    responses(
        (status = 200, body = SupportOrganizationBody),
        (status = 401, body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No grant of that organization in force", body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json"),
        (status = 429, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn support_enter(
    State(state): State<AppState>,
    SupportBearer(token): SupportBearer,
    ApiJson(body): ApiJson<EnterOrganization>,
) -> Result<Json<SupportOrganizationBody>, ApiError> {
    let entered = state
        .hub
        .support_enter(token.expose(), body.organization_id)
        .await?;
    Ok(Json(entered.into()))
}

/// Sign a support session out (whether or not it entered an organization).
#[utoipa::path(post, path = "/api/v1/auth/support/logout", tag = "support",
    security(("support_session" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, body = ApiError, content_type = "application/problem+json"),
        (status = 429, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn support_logout(
    State(state): State<AppState>,
    SupportBearer(token): SupportBearer,
) -> Result<StatusCode, ApiError> {
    state.hub.support_logout(token.expose()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SupportGrantBody {
    id: Uuid,
    support_user_id: Uuid,
    support_email: String,
    role: Role,
    reason: String,
    granted_by: Option<UserId>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    revoked_at: Option<OffsetDateTime>,
    /// In force now (neither expired nor revoked).
    active: bool,
}

impl From<SupportGrantView> for SupportGrantBody {
    fn from(g: SupportGrantView) -> Self {
        SupportGrantBody {
            id: g.id,
            support_user_id: g.support_user_id,
            support_email: g.support_email,
            role: g.role,
            reason: g.reason,
            granted_by: g.granted_by,
            created_at: g.created_at,
            expires_at: g.expires_at,
            revoked_at: g.revoked_at,
            active: g.active,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SupportGrantList {
    grants: Vec<SupportGrantBody>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSupportGrant {
    support_user_id: Uuid,
    role: Role,
    /// 1 to 72.
    #[schema(minimum = 1, maximum = 72)]
    hours: i64,
    /// Why support needs access (1 to 500 characters).
    reason: String,
}

/// Grant a support account access to this organization, with a role, for at most 72 hours.
#[utoipa::path(post, path = "/api/v1/organization/support-access", tag = "support",
    request_body = NewSupportGrant,
    responses(
        (status = 201, body = SupportGrantBody),
        (status = 422, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn grant_support_access(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<NewSupportGrant>,
) -> Result<(StatusCode, Json<SupportGrantBody>), ApiError> {
    let grant = state
        .hub
        .grant_support_access(
            &caller,
            body.support_user_id,
            body.role,
            body.hours,
            &body.reason,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(grant.into())))
}

/// The organization's support access grants, active and past, newest first.
#[utoipa::path(get, path = "/api/v1/organization/support-access", tag = "support",
    responses((status = 200, body = SupportGrantList)))]
pub(crate) async fn list_support_access(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<SupportGrantList>, ApiError> {
    let grants = state.hub.list_support_grants(&caller).await?;
    Ok(Json(SupportGrantList {
        grants: grants.into_iter().map(Into::into).collect(),
    }))
}

/// Revoke a grant in force: the support person's sessions here end at once.
#[utoipa::path(delete, path = "/api/v1/organization/support-access/{id}", tag = "support",
    params(("id" = Uuid, Path, description = "Grant id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "The grant already ended", body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn revoke_support_access(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.hub.revoke_support_access(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The support accounts that may be granted access (set up ones).
#[utoipa::path(get, path = "/api/v1/organization/support-access/accounts", tag = "support",
    responses((status = 200, body = SupportAccountList)))]
pub(crate) async fn support_accounts(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<SupportAccountList>, ApiError> {
    let users = state.hub.support_accounts_to_grant(&caller).await?;
    Ok(Json(SupportAccountList {
        support_users: users.into_iter().map(Into::into).collect(),
    }))
}
