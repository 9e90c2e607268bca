//! The member's own account: profile, password change, two-factor sign-in (TOTP enrolment with
//! a QR code drawn on the server, recovery codes shown once, removal), passkeys (added by
//! `static/passkeys.js` through the API, which the browser's WebAuthn call needs; removed by a
//! form), sessions, API tokens.
//!
//! The same use cases as `/api/v1/me*`. Whatever is shown once (the TOTP secret, recovery
//! codes, a new API token) is rendered directly by the POST that made it, never put into a URL
//! or a redirect.

use super::page::{
    FormErrors, NoticeQuery, Shell, WebError, notice_text, render, render_status, role_label,
    see_other, when,
};
use super::session::{CSRF_COOKIE, Posted, SignedIn, clear_cookies};
use crate::AppState;
use crate::extract::SESSION_COOKIE;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use lockstep_app::{AccountView, AppError, DEFAULT_API_TOKEN_DAYS, Password, TokenExpiry};
use lockstep_domain::{ApiTokenId, SessionId, TokenScope};
use serde::Deserialize;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/account", get(account))
        .route("/account/password", post(change_password))
        .route("/account/totp/start", post(start_totp))
        .route("/account/totp/confirm", post(confirm_totp))
        .route("/account/totp/remove", post(remove_totp))
        .route("/account/sessions/end-all", post(end_all_sessions))
        .route("/account/sessions/{id}/end", post(end_session))
        .route("/account/dataset-notice", post(set_dataset_notice))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
        .route("/account/passkeys/{id}/remove", post(remove_passkey))
}

const TITLE: &str = "Your account";
/// The scope a new API token gets unless the member picks another: the narrowest.
const DEFAULT_TOKEN_SCOPE: &str = "read";

/// A choice in the scope list.
struct ScopeOption {
    value: &'static str,
    label: &'static str,
}

const SCOPES: [ScopeOption; 3] = [
    ScopeOption {
        value: "read",
        label: "Read only",
    },
    ScopeOption {
        value: "run",
        label: "Run pipelines",
    },
    ScopeOption {
        value: "manage",
        label: "Manage",
    },
];

struct Profile {
    display_name: String,
    email: String,
    role: &'static str,
    organization_id: String,
    organization: String,
    totp_enabled: bool,
    must_enrol_totp: bool,
}

struct SessionRow {
    id: String,
    created: String,
    last_seen: String,
    expires: String,
    current: bool,
}

struct PasskeyRow {
    id: String,
    name: String,
    created: String,
    last_used: Option<String>,
}

struct TokenRow {
    id: String,
    name: String,
    scope: &'static str,
    created: String,
    expires: String,
    last_used: Option<String>,
}

/// A token made just now: shown on this page only.
struct NewToken {
    name: String,
    token: String,
}

#[derive(Template)]
#[template(path = "account/account.html")]
struct AccountPage {
    shell: Shell,
    profile: Profile,
    sessions: Vec<SessionRow>,
    passkeys: Vec<PasskeyRow>,
    /// Whether the hub's public URL lets passkeys be used.
    passkeys_available: bool,
    tokens: Vec<TokenRow>,
    /// The password form's errors (named `errors` for `auth/password_fields.html`).
    errors: FormErrors,
    totp_errors: FormErrors,
    token_errors: FormErrors,
    token_name: String,
    token_scope: String,
    token_days: String,
    scopes: &'static [ScopeOption],
    new_token: Option<NewToken>,
    /// Whether a mail tells the member when one of their data sets is removed.
    dataset_removal_notice: bool,
}

impl AccountPage {
    async fn load(state: &AppState, signed: &SignedIn) -> Result<AccountPage, WebError> {
        let me = state.hub.me(&signed.caller).await?;
        let zone = signed.nav.time_zone;
        let sessions = state
            .hub
            .list_sessions(&signed.caller)
            .await?
            .into_iter()
            .map(|s| SessionRow {
                id: s.id.to_string(),
                created: when(zone, s.created_at),
                last_seen: when(zone, s.last_seen_at),
                expires: when(zone, s.expires_at),
                current: s.current,
            })
            .collect();
        let tokens = state
            .hub
            .list_api_tokens(&signed.caller)
            .await?
            .into_iter()
            .map(|t| TokenRow {
                id: t.id.to_string(),
                name: t.name,
                scope: scope_label(t.scope),
                created: when(zone, t.created_at),
                expires: when(zone, t.expires_at),
                last_used: t.last_used_at.map(|t| when(zone, t)),
            })
            .collect();
        let passkeys = state
            .hub
            .list_passkeys(&signed.caller)
            .await?
            .into_iter()
            .map(|p| PasskeyRow {
                id: p.id.to_string(),
                name: p.name,
                created: when(zone, p.created_at),
                last_used: p.last_used_at.map(|t| when(zone, t)),
            })
            .collect();
        Ok(AccountPage {
            shell: signed.shell(TITLE, "account"),
            profile: profile(me),
            sessions,
            passkeys,
            passkeys_available: state.hub.passkeys_available(),
            tokens,
            errors: FormErrors::none(),
            totp_errors: FormErrors::none(),
            token_errors: FormErrors::none(),
            token_name: String::new(),
            token_scope: DEFAULT_TOKEN_SCOPE.to_owned(),
            token_days: DEFAULT_API_TOKEN_DAYS.to_string(),
            scopes: &SCOPES,
            new_token: None,
            dataset_removal_notice: state.hub.dataset_removal_notice(&signed.caller).await?,
        })
    }
}

fn profile(me: AccountView) -> Profile {
    Profile {
        display_name: me.display_name,
        email: me.email,
        role: role_label(me.role),
        organization_id: me.organization_id.to_string(),
        organization: me.organization_name,
        totp_enabled: me.totp_enabled,
        must_enrol_totp: me.must_enrol_totp,
    }
}

async fn account(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    let mut page = AccountPage::load(&state, &signed).await?;
    page.shell = page.shell.with_notice(query.text());
    Ok(render(&page))
}

#[derive(Deserialize)]
struct PasswordForm {
    current_password: String,
    password: String,
    password_again: String,
    /// A checkbox, checked on the page: present ("on") when it stays checked.
    revoke_api_tokens: Option<String>,
}

async fn change_password(
    State(state): State<AppState>,
    Posted(signed, form): Posted<PasswordForm>,
) -> Result<Response, WebError> {
    let errors = if form.current_password.is_empty() {
        FormErrors::none().field("current_password", "Enter your current password.")
    } else if form.password != form.password_again {
        FormErrors::none().field("password_again", "The two passwords differ.")
    } else {
        let current = Password::new(form.current_password);
        let new = Password::new(form.password);
        match state
            .hub
            .change_password(
                &signed.caller,
                &current,
                &new,
                form.revoke_api_tokens.is_some(),
            )
            .await
        {
            Ok(()) => return Ok(see_other("/account?notice=password")),
            Err(err @ AppError::Invalid { .. }) => {
                let errors = FormErrors::from_app(err);
                // The API calls the new password `new_password`; the form's field is `password`.
                match errors.get("new_password") {
                    Some(message) => FormErrors::none().field("password", message),
                    None => errors,
                }
            }
            Err(err) => return Err(err.into()),
        }
    };
    let mut page = AccountPage::load(&state, &signed).await?;
    page.errors = errors;
    Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

#[derive(Template)]
#[template(path = "account/totp.html")]
struct TotpPage {
    shell: Shell,
    /// `data:image/svg+xml;base64,…` of the QR code of the `otpauth://` URI.
    qr: String,
    /// The Base32 secret, for typing it in by hand.
    secret: String,
    errors: FormErrors,
}

/// The enrolment page for the pending secret (the QR code and the secret in text).
fn totp_page(
    signed: &SignedIn,
    uri: &str,
    errors: FormErrors,
    status: StatusCode,
) -> Result<Response, WebError> {
    let secret = otpauth_secret(uri).ok_or_else(qr_failed)?;
    let page = TotpPage {
        shell: signed.shell("Turn on two-factor sign-in", "account"),
        qr: qr_data_uri(uri).ok_or_else(qr_failed)?,
        secret,
        errors,
    };
    Ok(render_status(status, &page))
}

fn qr_failed() -> WebError {
    WebError::Page(crate::problem::ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "The QR code could not be drawn",
    ))
}

/// The `secret=` parameter of an `otpauth://` URI.
pub(crate) fn otpauth_secret(uri: &str) -> Option<String> {
    let (_, query) = uri.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("secret="))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The QR code of `text` as an SVG image in a `data:` URI (allowed by the CSP's `img-src`).
pub(crate) fn qr_data_uri(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(220, 220)
        .build();
    Some(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ))
}

#[derive(Deserialize)]
struct Empty {}

async fn start_totp(
    State(state): State<AppState>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let enrolment = state.hub.start_totp(&signed.caller).await?;
    totp_page(
        &signed,
        &enrolment.otpauth_uri,
        FormErrors::none(),
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
struct ConfirmForm {
    code: String,
}

#[derive(Template)]
#[template(path = "account/recovery.html")]
struct RecoveryPage {
    shell: Shell,
    codes: Vec<String>,
}

async fn confirm_totp(
    State(state): State<AppState>,
    Posted(signed, form): Posted<ConfirmForm>,
) -> Result<Response, WebError> {
    let code: String = form.code.chars().filter(|c| !c.is_whitespace()).collect();
    let errors = if code.is_empty() {
        FormErrors::none().field(
            "code",
            "Enter the 6-digit code your authenticator app shows.",
        )
    } else {
        match state.hub.confirm_totp(&signed.caller, &code).await {
            Ok(codes) => {
                let page = RecoveryPage {
                    shell: signed
                        .shell("Your recovery codes", "account")
                        .with_notice(notice_text(Some("totp-on"))),
                    codes: codes.codes.iter().map(|c| c.as_str().to_owned()).collect(),
                };
                return Ok(render(&page));
            }
            Err(err @ AppError::Invalid { .. }) => FormErrors::from_app(err),
            Err(err) => return Err(err.into()),
        }
    };
    // Show the pending enrolment's QR code again (read from the store, never from the form);
    // if none is pending any more, start over with a new secret and say so.
    match state.hub.pending_totp(&signed.caller).await? {
        Some(enrolment) => totp_page(
            &signed,
            &enrolment.otpauth_uri,
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        None => {
            let enrolment = state.hub.start_totp(&signed.caller).await?;
            totp_page(
                &signed,
                &enrolment.otpauth_uri,
                FormErrors::none().field(
                    "code",
                    "That code was wrong, and the key had to be made again: remove any earlier \
                     Lockstep entry from your app, scan this new QR code, then enter its code.",
                ),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    }
}

#[derive(Deserialize)]
struct CodeForm {
    code: String,
}

async fn remove_totp(
    State(state): State<AppState>,
    Posted(signed, form): Posted<CodeForm>,
) -> Result<Response, WebError> {
    let code = form.code.trim();
    let errors = if code.is_empty() {
        FormErrors::none().field(
            "code",
            "Enter the current code of your authenticator, or a recovery code.",
        )
    } else {
        match state.hub.remove_totp(&signed.caller, code).await {
            Ok(()) => return Ok(see_other("/account?notice=totp-off")),
            Err(err @ AppError::Invalid { .. }) => FormErrors::from_app(err),
            Err(err) => return Err(err.into()),
        }
    };
    let mut page = AccountPage::load(&state, &signed).await?;
    page.totp_errors = errors;
    Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

/// This browser's session ended: forget its cookies and go to the sign-in page.
fn signed_out() -> Response {
    let mut response = see_other("/login?notice=signed-out");
    clear_cookies(&mut response, &[SESSION_COOKIE, CSRF_COOKIE]);
    response.headers_mut().insert(
        "clear-site-data",
        HeaderValue::from_static("\"cache\", \"cookies\", \"storage\""),
    );
    response
}

#[derive(Deserialize)]
struct SignOutEverywhereForm {
    /// A checkbox, checked on the page: present ("on") when it stays checked.
    revoke_api_tokens: Option<String>,
}

/// "Sign out everywhere": the use case ends every session of the member, this one included, and
/// revokes their API tokens when the box stays checked.
async fn end_all_sessions(
    State(state): State<AppState>,
    Posted(signed, form): Posted<SignOutEverywhereForm>,
) -> Result<Response, WebError> {
    state
        .hub
        .end_all_sessions(&signed.caller, form.revoke_api_tokens.is_some())
        .await?;
    Ok(signed_out())
}

async fn end_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let id: SessionId = id.parse().map_err(|_| WebError::not_found("session"))?;
    let current = state
        .hub
        .list_sessions(&signed.caller)
        .await?
        .iter()
        .any(|s| s.id == id && s.current);
    state.hub.end_session(&signed.caller, id).await?;
    if current {
        return Ok(signed_out());
    }
    Ok(see_other("/account?notice=session-ended"))
}

#[derive(Deserialize)]
struct DatasetNoticeForm {
    /// A checkbox: present ("on") when checked.
    dataset_removal_notice: Option<String>,
}

/// The member's own setting: a mail when one of their data sets is removed.
async fn set_dataset_notice(
    State(state): State<AppState>,
    Posted(signed, form): Posted<DatasetNoticeForm>,
) -> Result<Response, WebError> {
    state
        .hub
        .set_dataset_removal_notice(&signed.caller, form.dataset_removal_notice.is_some())
        .await?;
    Ok(see_other("/account?notice=saved"))
}

fn scope_label(scope: TokenScope) -> &'static str {
    match scope {
        TokenScope::Read => "Read only",
        TokenScope::Run => "Run pipelines",
        TokenScope::Manage => "Manage",
    }
}

#[derive(Deserialize)]
struct TokenForm {
    name: String,
    #[serde(default)]
    scope: String,
    expires_in_days: String,
}

async fn create_token(
    State(state): State<AppState>,
    Posted(signed, form): Posted<TokenForm>,
) -> Result<Response, WebError> {
    let result = match (
        form.scope.parse::<TokenScope>(),
        form.expires_in_days.trim().parse::<i64>(),
    ) {
        (Ok(scope), Ok(days)) => state
            .hub
            .create_api_token(&signed.caller, &form.name, scope, TokenExpiry::Days(days))
            .await
            .map_err(|err| match err {
                AppError::Invalid { .. } => Ok(FormErrors::from_app(err)),
                other => Err(other),
            }),
        (Err(_), _) => Err(Ok(
            FormErrors::none().field("scope", "Choose read only, run pipelines or manage.")
        )),
        (_, Err(_)) => Err(Ok(FormErrors::none().field(
            "expires_in_days",
            "Enter a number of days between 1 and 365.",
        ))),
    };
    match result {
        Ok(created) => {
            let mut page = AccountPage::load(&state, &signed).await?;
            page.new_token = Some(NewToken {
                name: created.view.name,
                token: created.token.expose().to_owned(),
            });
            Ok(render_status(StatusCode::CREATED, &page))
        }
        Err(Ok(errors)) => {
            let mut page = AccountPage::load(&state, &signed).await?;
            page.token_errors = errors
                .anchored("name", "token-name")
                .anchored("expires_in_days", "token-days")
                .anchored("scope", "token-scope");
            page.token_name = form.name;
            page.token_scope = form.scope;
            page.token_days = form.expires_in_days;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(Err(err)) => Err(err.into()),
    }
}

async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let id: ApiTokenId = id.parse().map_err(|_| WebError::not_found("API token"))?;
    state.hub.revoke_api_token(&signed.caller, id).await?;
    Ok(see_other("/account?notice=revoked"))
}

async fn remove_passkey(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let id: lockstep_domain::PasskeyId = id.parse().map_err(|_| WebError::not_found("passkey"))?;
    state.hub.remove_passkey(&signed.caller, id).await?;
    Ok(see_other("/account?notice=passkey-removed"))
}
