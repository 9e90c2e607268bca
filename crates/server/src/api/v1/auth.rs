//! `/api/v1/auth/*`: accept an invitation, sign in (with a password, a passkey as its second
//! factor, or a passkey alone) and out, reset a password. Rate-limited per client address (see `middleware::auth_rate_limit`).

use crate::AppState;
use crate::extract::{ApiJson, Authenticated, SESSION_COOKIE};
use crate::problem::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use lockstep_app::Password;
use lockstep_domain::{OrganizationId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Request bodies hold passwords and tokens: their `Debug` prints nothing of them.
macro_rules! opaque_debug {
    ($($t:ty),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($t), "(..)"))
            }
        }
    )*};
}
pub(crate) use opaque_debug;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcceptInvitation {
    token: String,
    /// 8 to 128 characters, not a common password.
    #[schema(min_length = 8, max_length = 128)]
    password: String,
    /// 1 to 100 characters, without control characters.
    #[schema(
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    display_name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Accepted {
    user_id: UserId,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    email: String,
    password: String,
    /// The current TOTP code (or a recovery code), for accounts with TOTP.
    totp: Option<String>,
    /// Which organization's account, when the address has accounts in several (a sign-in
    /// without it answers 300 with the organizations the password fits).
    organization: Option<OrganizationId>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct LoginAnswer {
    /// Send as `Authorization: Bearer …` (or rely on the `__Host-` cookie set with this answer).
    session_token: String,
    /// Send as `X-CSRF-Token` on cookie-authenticated requests that change something.
    csrf_token: String,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetRequest {
    email: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetCompletion {
    token: String,
    /// 8 to 128 characters, not a common password.
    #[schema(min_length = 8, max_length = 128)]
    password: String,
    totp: Option<String>,
}

opaque_debug!(
    AcceptInvitation,
    Login,
    LoginAnswer,
    ResetRequest,
    ResetCompletion
);

/// Accept an invitation: set a password and a display name. The first user of an organization
/// (the operator's invitation) is its Administrator.
#[utoipa::path(post, path = "/api/v1/auth/invitations/accept", tag = "auth",
    security(()),
    request_body = AcceptInvitation,
    responses(
        (status = 201, body = Accepted),
        (status = 404, description = "No such invitation, or it expired or was used", body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn accept_invitation(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AcceptInvitation>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let password = Password::new(body.password);
    let user_id = state
        .hub
        .accept_invitation(&body.token, &password, &body.display_name)
        .await?;
    Ok((StatusCode::CREATED, Json(Accepted { user_id })))
}

/// Sign in. Also sets the session as a `__Host-` cookie (Secure, HttpOnly, SameSite=Strict).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    security(()),
    request_body = Login,
    responses(
        (status = 200, body = LoginAnswer),
        (status = 300, description = "The address and password fit accounts in several organizations: sign in again naming one (`organizations` lists them)", body = ApiError, content_type = "application/problem+json"),
        (status = 401, description = "Sign-in failed, or a second factor is needed: `totp-required` (send the password again with `totp`) or `second-factor-required` (`second_factors` lists `totp` and/or `passkey`; `pending_sign_in` is the pending sign-in a passkey finishes)", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "The password was right, but the organization signs in with single sign-on only (`sso-required`), or an Administrator's incident response requires a new password first (`password-reset-required`)", body = ApiError, content_type = "application/problem+json"),
        (status = 429, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Login>,
) -> Result<impl IntoResponse, ApiError> {
    let password = Password::new(body.password);
    let done = state
        .hub
        .login_to(
            &body.email,
            &password,
            body.totp.as_deref(),
            body.organization,
        )
        .await?;
    Ok(session_answer(&done))
}

/// A new session's answer: the tokens, and the same as `__Host-` cookies for pages.
fn session_answer(done: &lockstep_app::LoginSuccess) -> impl IntoResponse + use<> {
    session_tokens_answer(&done.session_token, &done.csrf_token, done.expires_at)
}

/// [`session_answer`] for any new session (a member's or a support person's).
pub(crate) fn session_tokens_answer(
    session_token: &lockstep_app::SecretToken,
    csrf_token: &lockstep_app::SecretToken,
    expires_at: OffsetDateTime,
) -> impl IntoResponse + use<> {
    let max_age = (expires_at - OffsetDateTime::now_utc())
        .whole_seconds()
        .max(0);
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}",
        session_token.expose()
    );
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.append(header::SET_COOKIE, value);
    }
    // Pages put the session's CSRF token into their forms; they read it from this cookie.
    if let Some(value) = crate::web::csrf_cookie(csrf_token.expose(), max_age) {
        headers.append(header::SET_COOKIE, value);
    }
    (
        headers,
        Json(LoginAnswer {
            session_token: session_token.expose().to_owned(),
            csrf_token: csrf_token.expose().to_owned(),
            expires_at,
        }),
    )
}

/// Sign out: ends the session on the server and clears the cookie; called with an API token,
/// revokes that token.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<impl IntoResponse, ApiError> {
    state.hub.logout(&caller).await?;
    let mut headers = HeaderMap::new();
    headers.append(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "__Host-lockstep_session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    headers.append(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "__Host-lockstep_csrf=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    headers.insert("clear-site-data", HeaderValue::from_static("\"cookies\""));
    Ok((StatusCode::NO_CONTENT, headers))
}

/// Ask for a password reset link by e-mail. Always answers 202 at once, whether or not the
/// address has an account; each account of the address (one per organization) is mailed a link
/// afterwards.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth",
    security(()),
    request_body = ResetRequest,
    responses((status = 202, description = "If the address has an account, a link is on its way")))]
pub(crate) async fn request_password_reset(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    state.hub.request_password_reset(&body.email).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Set a new password with the link's token. Single use, valid 30 minutes; ends every session;
/// an account with TOTP needs a code too.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/complete", tag = "auth",
    security(()),
    request_body = ResetCompletion,
    responses(
        (status = 204),
        (status = 401, description = "A TOTP code is needed", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such reset, or it expired or was used", body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn complete_password_reset(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetCompletion>,
) -> Result<StatusCode, ApiError> {
    let password = Password::new(body.password);
    state
        .hub
        .complete_password_reset(&body.token, &password, body.totp.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A pending password sign-in (from a `second-factor-required` answer).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PendingSignIn {
    pending_sign_in: String,
}

/// A passkey's answer for a pending password sign-in.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecondFactorAnswer {
    pending_sign_in: String,
    /// The browser's `PublicKeyCredential` from `navigator.credentials.get`, as JSON.
    #[schema(value_type = Object)]
    credential: serde_json::Value,
}

/// The options for `navigator.credentials.get`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct PasskeyOptions {
    /// `{"publicKey": …}`, binary fields base64url-encoded.
    #[schema(value_type = Object)]
    options: serde_json::Value,
}

opaque_debug!(PendingSignIn, SecondFactorAnswer);

/// The passkey challenge for a pending password sign-in: the account's passkeys may answer it.
#[utoipa::path(post, path = "/api/v1/auth/passkey/second-factor/begin", tag = "auth",
    security(()),
    request_body = PendingSignIn,
    responses(
        (status = 200, body = PasskeyOptions),
        (status = 401, description = "No such pending sign-in, or it expired", body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "Passkeys need a host name in the hub's public URL", body = ApiError, content_type = "application/problem+json"),
        (status = 429, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn begin_passkey_second_factor(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PendingSignIn>,
) -> Result<Json<PasskeyOptions>, ApiError> {
    let options = state
        .hub
        .start_passkey_second_factor(&body.pending_sign_in)
        .await?;
    Ok(Json(PasskeyOptions { options }))
}

/// Finish a pending password sign-in with the passkey's answer: a session, as `login` answers.
#[utoipa::path(post, path = "/api/v1/auth/passkey/second-factor/finish", tag = "auth",
    security(()),
    request_body = SecondFactorAnswer,
    responses(
        (status = 200, body = LoginAnswer),
        (status = 401, description = "The passkey was not accepted (a wrong answer counts as a failed sign-in)", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "An incident response required a new password meanwhile (`password-reset-required`)", body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "Passkeys need a host name in the hub's public URL", body = ApiError, content_type = "application/problem+json"),
        (status = 429, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn finish_passkey_second_factor(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SecondFactorAnswer>,
) -> Result<impl IntoResponse, ApiError> {
    let done = state
        .hub
        .finish_passkey_second_factor(&body.pending_sign_in, body.credential)
        .await?;
    Ok(session_answer(&done))
}

/// Start a sign-in without a password: answers the options for `navigator.credentials.get`
/// (any passkey registered on this hub may answer) and the ceremony's handle.
#[utoipa::path(post, path = "/api/v1/auth/passkey/begin", tag = "auth",
    security(()),
    responses(
        (status = 200, body = super::me::PasskeyCeremony),
        (status = 409, description = "Passkeys need a host name in the hub's public URL", body = ApiError, content_type = "application/problem+json"),
        (status = 429, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn begin_passkey_sign_in(
    State(state): State<AppState>,
) -> Result<Json<super::me::PasskeyCeremony>, ApiError> {
    let challenge = state.hub.start_passkey_sign_in().await?;
    Ok(Json(challenge.into()))
}

/// Finish a sign-in without a password: a session, as `login` answers. Audited as
/// `user.signed_in` with `method: passkey`.
#[utoipa::path(post, path = "/api/v1/auth/passkey/finish", tag = "auth",
    security(()),
    request_body = super::me::PasskeyAnswer,
    responses(
        (status = 200, body = LoginAnswer),
        (status = 401, description = "The passkey was not accepted", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "The organization signs in with single sign-on only (`sso-required`), or an incident response requires a new password first (`password-reset-required`)", body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "Passkeys need a host name in the hub's public URL", body = ApiError, content_type = "application/problem+json"),
        (status = 429, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn finish_passkey_sign_in(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<super::me::PasskeyAnswer>,
) -> Result<impl IntoResponse, ApiError> {
    let done = state
        .hub
        .finish_passkey_sign_in(&body.ceremony, body.credential)
        .await?;
    Ok(session_answer(&done))
}
