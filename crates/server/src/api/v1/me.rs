//! `/api/v1/me*`: the signed-in member's own account, sessions, TOTP, passkeys and API tokens.

use super::auth::opaque_debug;
use crate::AppState;
use crate::extract::{ApiJson, ApiPath, Authenticated};
use crate::problem::ApiError;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use lockstep_app::{Password, TokenExpiry};
use lockstep_domain::{ApiTokenId, OrganizationId, PasskeyId, Role, SessionId, TokenScope, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Me {
    id: UserId,
    email: String,
    display_name: String,
    role: Role,
    organization_id: OrganizationId,
    /// The organization's name.
    organization_name: String,
    totp_enabled: bool,
    /// The organization requires a second factor and you have none: enrol TOTP or register a
    /// passkey before anything else.
    must_enrol_totp: bool,
    /// A mail tells you when one of your data sets is removed for being left untouched (your
    /// own setting; change it with `PUT /api/v1/me/settings`).
    dataset_removal_notice: bool,
}

/// Who am I?
#[utoipa::path(get, path = "/api/v1/me", tag = "account",
    responses((status = 200, body = Me), (status = 401, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn me(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Me>, ApiError> {
    let me = state.hub.me(&caller).await?;
    let dataset_removal_notice = state.hub.dataset_removal_notice(&caller).await?;
    Ok(Json(Me {
        id: me.id,
        email: me.email,
        display_name: me.display_name,
        role: me.role,
        organization_id: me.organization_id,
        organization_name: me.organization_name,
        totp_enabled: me.totp_enabled,
        must_enrol_totp: me.must_enrol_totp,
        dataset_removal_notice,
    }))
}

/// Your own settings.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MySettings {
    /// A mail when one of your data sets is removed for being left untouched (default `true`).
    dataset_removal_notice: bool,
}

/// Change your own settings; answers them.
#[utoipa::path(put, path = "/api/v1/me/settings", tag = "account",
    request_body = MySettings,
    responses((status = 200, body = MySettings)))]
pub(crate) async fn update_settings(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<MySettings>,
) -> Result<Json<MySettings>, ApiError> {
    state
        .hub
        .set_dataset_removal_notice(&caller, body.dataset_removal_notice)
        .await?;
    Ok(Json(MySettings {
        dataset_removal_notice: state.hub.dataset_removal_notice(&caller).await?,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordChange {
    current_password: String,
    /// 8 to 128 characters, not a common password.
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
    /// Revoke every API token of yours too (default `true`): whoever learnt the old password
    /// may have made one.
    #[serde(default = "yes")]
    #[schema(default = true)]
    revoke_api_tokens: bool,
}

fn yes() -> bool {
    true
}

opaque_debug!(PasswordChange);

/// Change your password (needs the current one); your other sessions end, and your API tokens
/// are revoked unless `revoke_api_tokens` is `false`.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "account",
    request_body = PasswordChange,
    responses((status = 204), (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn change_password(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let current = Password::new(body.current_password);
    let new = Password::new(body.new_password);
    state
        .hub
        .change_password(&caller, &current, &new, body.revoke_api_tokens)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SessionBody {
    id: SessionId,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    /// The session this request came with.
    current: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SessionList {
    sessions: Vec<SessionBody>,
}

/// Your active sessions.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "account",
    responses((status = 200, body = SessionList)))]
pub(crate) async fn list_sessions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<SessionList>, ApiError> {
    let list = state.hub.list_sessions(&caller).await?;
    Ok(Json(SessionList {
        sessions: list
            .into_iter()
            .map(|s| SessionBody {
                id: s.id,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                expires_at: s.expires_at,
                current: s.current,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignOutEverywhere {
    /// Revoke every API token of yours too (default `true`).
    revoke_api_tokens: Option<bool>,
}

/// Sign out everywhere: ends all your sessions, this one included, and revokes your API tokens
/// unless `revoke_api_tokens=false`.
#[utoipa::path(delete, path = "/api/v1/me/sessions", tag = "account",
    params(SignOutEverywhere),
    responses((status = 204), (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn end_all_sessions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<SignOutEverywhere>, axum::extract::rejection::QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let Query(query) =
        query.map_err(|_| ApiError::invalid("revoke_api_tokens", "must be true or false"))?;
    state
        .hub
        .end_all_sessions(&caller, query.revoke_api_tokens.unwrap_or(true))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End one of your sessions.
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "account",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn end_session(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id: SessionId = id
        .parse()
        .map_err(|_| ApiError::invalid("id", "is not a session id"))?;
    state.hub.end_session(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TotpStart {
    /// Show as a QR code to your authenticator app; shown this once.
    otpauth_uri: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TotpCode {
    /// A current TOTP code (to remove TOTP, a recovery code works too).
    code: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct RecoveryCodesBody {
    /// Ten one-time codes for when the authenticator is lost; shown this once.
    recovery_codes: Vec<String>,
}

opaque_debug!(TotpStart, TotpCode, RecoveryCodesBody);

/// Start TOTP enrolment.
#[utoipa::path(post, path = "/api/v1/me/totp", tag = "account",
    responses((status = 200, body = TotpStart), (status = 409, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn start_totp(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<TotpStart>, ApiError> {
    let enrolment = state.hub.start_totp(&caller).await?;
    Ok(Json(TotpStart {
        otpauth_uri: enrolment.otpauth_uri.to_string(),
    }))
}

/// Confirm TOTP enrolment with a first code; answers the recovery codes once.
#[utoipa::path(post, path = "/api/v1/me/totp/confirm", tag = "account",
    request_body = TotpCode,
    responses((status = 409, description = "No TOTP enrolment was started, or TOTP is on already", body = ApiError, content_type = "application/problem+json"),
        (status = 200, body = RecoveryCodesBody), (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn confirm_totp(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<TotpCode>,
) -> Result<Json<RecoveryCodesBody>, ApiError> {
    let codes = state.hub.confirm_totp(&caller, &body.code).await?;
    Ok(Json(RecoveryCodesBody {
        recovery_codes: codes.codes.iter().map(|c| c.to_string()).collect(),
    }))
}

/// Remove TOTP (needs a current code or a recovery code).
#[utoipa::path(delete, path = "/api/v1/me/totp", tag = "account",
    request_body = TotpCode,
    responses((status = 204), (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn remove_totp(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<TotpCode>,
) -> Result<StatusCode, ApiError> {
    state.hub.remove_totp(&caller, &body.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    /// 1 to 100 characters, without control characters.
    #[schema(
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: String,
    /// What the token may do, within your role: `read` (reading only), `run` (reading, and
    /// starting and cancelling runs) or `manage` (everything your role allows; no API token
    /// changes credentials).
    scope: TokenScope,
    /// Valid for 1 to 365 days; without this or `expires_at`, 90 days.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 365)]
    expires_in_days: Option<i64>,
    /// Valid until this moment (RFC 3339), at most 365 days ahead; instead of `expires_in_days`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
}

impl NewToken {
    fn expiry(&self) -> Result<TokenExpiry, ApiError> {
        match (self.expires_in_days, self.expires_at) {
            (Some(_), Some(_)) => Err(ApiError::invalid(
                "expires_at",
                "give either expires_in_days or expires_at, not both",
            )),
            (Some(days), None) => Ok(TokenExpiry::Days(days)),
            (None, Some(at)) => Ok(TokenExpiry::At(at)),
            (None, None) => Ok(TokenExpiry::default()),
        }
    }
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

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedToken {
    #[serde(flatten)]
    info: TokenBody,
    /// Shown this once; send as `Authorization: Bearer …`.
    token: String,
}

opaque_debug!(CreatedToken);

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TokenList {
    tokens: Vec<TokenBody>,
}

fn token_body(v: lockstep_app::ApiTokenView) -> TokenBody {
    TokenBody {
        id: v.id,
        name: v.name,
        scope: v.scope,
        created_at: v.created_at,
        expires_at: v.expires_at,
        last_used_at: v.last_used_at,
    }
}

/// Make an API token for automation (shown once), limited to a scope and to your current role,
/// expiring after at most a year (90 days unless you choose).
#[utoipa::path(post, path = "/api/v1/me/tokens", tag = "account",
    request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let created = state
        .hub
        .create_api_token(&caller, &body.name, body.scope, body.expiry()?)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: created.token.expose().to_owned(),
            info: token_body(created.view),
        }),
    ))
}

/// Your API tokens (names and dates; never the tokens).
#[utoipa::path(get, path = "/api/v1/me/tokens", tag = "account", responses((status = 200, body = TokenList)))]
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<TokenList>, ApiError> {
    let list = state.hub.list_api_tokens(&caller).await?;
    Ok(Json(TokenList {
        tokens: list.into_iter().map(token_body).collect(),
    }))
}

/// Revoke one of your API tokens.
#[utoipa::path(delete, path = "/api/v1/me/tokens/{id}", tag = "account",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id: ApiTokenId = id
        .parse()
        .map_err(|_| ApiError::invalid("id", "is not a token id"))?;
    state.hub.revoke_api_token(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PasskeyBody {
    id: PasskeyId,
    name: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    last_used_at: Option<OffsetDateTime>,
}

fn passkey_body(v: lockstep_app::PasskeyView) -> PasskeyBody {
    PasskeyBody {
        id: v.id,
        name: v.name,
        created_at: v.created_at,
        last_used_at: v.last_used_at,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PasskeyList {
    passkeys: Vec<PasskeyBody>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasskeyName {
    /// 1 to 100 characters, without control characters (say which device: "Laptop").
    #[schema(max_length = 100)]
    name: String,
}

/// A WebAuthn ceremony started: send `options` to `navigator.credentials.create` (or `get`),
/// binary fields base64url-encoded, and the answer back with `ceremony`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct PasskeyCeremony {
    /// The ceremony's handle: five minutes, single use.
    ceremony: String,
    /// `{"publicKey": …}`: the options for the browser's WebAuthn call.
    #[schema(value_type = Object)]
    options: serde_json::Value,
}

opaque_debug!(PasskeyCeremony);

impl From<lockstep_app::PasskeyChallenge> for PasskeyCeremony {
    fn from(c: lockstep_app::PasskeyChallenge) -> Self {
        PasskeyCeremony {
            ceremony: c.ceremony.expose().to_owned(),
            options: c.options,
        }
    }
}

/// An authenticator's answer to a ceremony.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasskeyAnswer {
    pub(crate) ceremony: String,
    /// The browser's `PublicKeyCredential` as JSON (`id`, `rawId`, `type`, `response` with
    /// base64url-encoded fields).
    #[schema(value_type = Object)]
    pub(crate) credential: serde_json::Value,
}

opaque_debug!(PasskeyAnswer);

/// Start registering a passkey (a signed-in session is needed): answers the options for
/// `navigator.credentials.create`. A passkey signs in without a password, or after it instead of
/// a TOTP code.
#[utoipa::path(post, path = "/api/v1/me/passkeys/register/begin", tag = "account",
    request_body = PasskeyName,
    responses(
        (status = 200, body = PasskeyCeremony),
        (status = 409, description = "Passkeys need a host name in the hub's public URL, or you have the most passkeys a member may have", body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn begin_passkey_registration(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<PasskeyName>,
) -> Result<Json<PasskeyCeremony>, ApiError> {
    let challenge = state
        .hub
        .start_passkey_registration(&caller, &body.name)
        .await?;
    Ok(Json(challenge.into()))
}

/// Finish registering a passkey with the authenticator's answer.
#[utoipa::path(post, path = "/api/v1/me/passkeys/register/finish", tag = "account",
    request_body = PasskeyAnswer,
    responses(
        (status = 201, body = PasskeyBody),
        (status = 404, description = "No such registration, or it expired or was used", body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "This passkey is registered already", body = ApiError, content_type = "application/problem+json"),
        (status = 422, description = "The answer does not fit the registration", body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn finish_passkey_registration(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<PasskeyAnswer>,
) -> Result<(StatusCode, Json<PasskeyBody>), ApiError> {
    let view = state
        .hub
        .finish_passkey_registration(&caller, &body.ceremony, body.credential)
        .await?;
    Ok((StatusCode::CREATED, Json(passkey_body(view))))
}

/// Your passkeys (names and dates).
#[utoipa::path(get, path = "/api/v1/me/passkeys", tag = "account",
    responses((status = 200, body = PasskeyList)))]
pub(crate) async fn list_passkeys(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<PasskeyList>, ApiError> {
    let list = state.hub.list_passkeys(&caller).await?;
    Ok(Json(PasskeyList {
        passkeys: list.into_iter().map(passkey_body).collect(),
    }))
}

fn passkey_id(id: &str) -> Result<PasskeyId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::invalid("id", "is not a passkey id"))
}

/// Rename one of your passkeys.
#[utoipa::path(patch, path = "/api/v1/me/passkeys/{id}", tag = "account",
    params(("id" = uuid::Uuid, Path)),
    request_body = PasskeyName,
    responses((status = 204), (status = 404, body = ApiError, content_type = "application/problem+json"), (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn rename_passkey(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PasskeyName>,
) -> Result<StatusCode, ApiError> {
    state
        .hub
        .rename_passkey(&caller, passkey_id(&id)?, &body.name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove one of your passkeys: it stops working at once.
#[utoipa::path(delete, path = "/api/v1/me/passkeys/{id}", tag = "account",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn remove_passkey(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.hub.remove_passkey(&caller, passkey_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
