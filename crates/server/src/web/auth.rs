//! Sign-in (with the TOTP step), sign-out, accepting an invitation, password reset, and the
//! password strength feedback of every password form.

use super::page::{FormErrors, NoticeQuery, Shell, WebError, render, render_status, see_other};
use super::session::{
    AnonCsrf, AnonPosted, CSRF_COOKIE, FORM_COOKIE, PENDING_COOKIE, Posted, clear_cookies, cookie,
    set_cookie,
};
use crate::AppState;
use crate::extract::SESSION_COOKIE;
use askama::Template;
use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lockstep_app::{AppError, LoginSuccess, OrganizationChoice, Password, SecretToken};
use lockstep_auth::{PasswordStrength, check_password_policy, password_strength};
use lockstep_domain::OrganizationId;
use serde::Deserialize;
use time::OffsetDateTime;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/login/totp", get(totp_page).post(login_totp))
        .route("/login/organization", post(login_organization))
        .route("/logout", post(logout))
        .route("/accept-invitation", get(accept_page).post(accept))
        .route("/forgot-password", get(forgot_page).post(forgot))
        .route("/reset-password", get(reset_page).post(reset))
        .route("/password-strength", post(strength))
}

/// Paths of sign-in forms, rate-limited per client address like `/api/v1/auth/*`.
pub(crate) const RATE_LIMITED: [&str; 11] = [
    "/login",
    "/support/login",
    "/support/setup",
    "/support/setup/confirm",
    "/login/sso",
    "/login/totp",
    "/login/organization",
    "/accept-invitation",
    "/forgot-password",
    "/reset-password",
    "/operator",
];

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage {
    shell: Shell,
    email: String,
    errors: FormErrors,
}

async fn login_page(anon: AnonCsrf, Query(query): Query<NoticeQuery>) -> Response {
    let page = LoginPage {
        shell: anon.shell("Sign in").with_notice(query.text()),
        email: String::new(),
        errors: FormErrors::none(),
    };
    anon.attach(render(&page))
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    AnonPosted(anon, form, _): AnonPosted<LoginForm>,
) -> Result<Response, WebError> {
    let email = form.email.trim().to_owned();
    let password = Password::new(form.password);
    match state.hub.login(&email, &password, None).await {
        Ok(done) => Ok(signed_in(&done)),
        Err(err @ (AppError::TotpRequired | AppError::SecondFactorRequired(_))) => {
            let pending = state.web.hold_login(email, password);
            let mut response = totp_view(&anon, &FormErrors::none(), &SecondStep::of(&err));
            if let Some(value) = set_cookie(PENDING_COOKIE, &pending, Some(300)) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Ok(response)
        }
        Err(AppError::ChooseOrganization(choices)) => {
            let pending = state.web.hold_login(email, password);
            let mut response = chooser_view(&anon, choices);
            if let Some(value) = set_cookie(PENDING_COOKIE, &pending, Some(300)) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Ok(response)
        }
        Err(AppError::Sealed) => Err(WebError::Sealed),
        Err(err) => {
            let page = LoginPage {
                shell: anon.shell("Sign in"),
                email,
                errors: FormErrors::from_app(err),
            };
            Ok(render_status(StatusCode::UNAUTHORIZED, &page))
        }
    }
}

/// The session's cookies (session, and the CSRF token for pages) and the way in.
fn signed_in(done: &LoginSuccess) -> Response {
    let max_age = (done.expires_at - OffsetDateTime::now_utc())
        .whole_seconds()
        .max(0);
    let mut response = see_other("/");
    for value in [
        set_cookie(SESSION_COOKIE, done.session_token.expose(), Some(max_age)),
        set_cookie(CSRF_COOKIE, done.csrf_token.expose(), Some(max_age)),
        set_cookie(PENDING_COOKIE, "", Some(0)),
    ]
    .into_iter()
    .flatten()
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[derive(Template)]
#[template(path = "auth/totp.html")]
struct TotpPage {
    shell: Shell,
    errors: FormErrors,
    step: SecondStep,
}

/// What the second step of a sign-in offers: a TOTP code, and a passkey for the hub's pending
/// sign-in (its handle goes to the page's script, which answers the passkey challenge through
/// `/api/v1/auth/passkey/second-factor/*`; alone it is worth nothing without the passkey).
#[derive(Clone, Debug)]
struct SecondStep {
    totp: bool,
    passkey_pending: Option<String>,
}

impl SecondStep {
    fn of(err: &AppError) -> SecondStep {
        match err {
            AppError::SecondFactorRequired(pending) => SecondStep {
                totp: pending.totp,
                passkey_pending: pending.pending.as_ref().map(|p| p.expose().to_owned()),
            },
            _ => SecondStep {
                totp: true,
                passkey_pending: None,
            },
        }
    }
}

fn totp_view(anon: &AnonCsrf, errors: &FormErrors, step: &SecondStep) -> Response {
    let page = TotpPage {
        shell: anon.shell("Two-factor sign-in"),
        errors: errors.clone(),
        step: step.clone(),
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    };
    anon.attach(render_status(status, &page))
}

async fn totp_page(anon: AnonCsrf, headers: HeaderMap) -> Response {
    if cookie(&headers, PENDING_COOKIE).is_none() {
        return see_other("/login");
    }
    totp_view(
        &anon,
        &FormErrors::none(),
        &SecondStep::of(&AppError::TotpRequired),
    )
}

#[derive(Deserialize)]
struct TotpForm {
    totp: String,
}

async fn login_totp(
    State(state): State<AppState>,
    AnonPosted(anon, form, headers): AnonPosted<TotpForm>,
) -> Result<Response, WebError> {
    let Some(value) = cookie(&headers, PENDING_COOKIE) else {
        return Ok(see_other("/login"));
    };
    let Some(pending) = state.web.take_login(&value) else {
        let page = LoginPage {
            shell: anon.shell("Sign in"),
            email: String::new(),
            errors: FormErrors::general(
                "The sign-in took too long or had too many wrong codes. Start again.",
            ),
        };
        return Ok(render_status(StatusCode::UNAUTHORIZED, &page));
    };
    let code: String = form.totp.chars().filter(|c| !c.is_whitespace()).collect();
    match state
        .hub
        .login_to(
            &pending.email,
            &pending.password,
            Some(&code),
            pending.organization,
        )
        .await
    {
        Ok(done) => Ok(signed_in(&done)),
        Err(err @ (AppError::TotpRequired | AppError::SecondFactorRequired(_))) => {
            state.web.put_back_login(&value, pending);
            Ok(totp_view(
                &anon,
                &FormErrors::none().field(
                    "totp",
                    "This code is wrong or expired. Enter the current code of your authenticator, or a recovery code.",
                ),
                &SecondStep::of(&err),
            ))
        }
        Err(AppError::Sealed) => Err(WebError::Sealed),
        Err(err) => {
            let page = LoginPage {
                shell: anon.shell("Sign in"),
                email: pending.email.clone(),
                errors: FormErrors::from_app(err),
            };
            Ok(render_status(StatusCode::UNAUTHORIZED, &page))
        }
    }
}

#[derive(Template)]
#[template(path = "auth/organization.html")]
struct ChooserPage {
    shell: Shell,
    choices: Vec<OrganizationChoice>,
}

/// The organizations whose account the address and password both fit (nobody else sees them).
fn chooser_view(anon: &AnonCsrf, choices: Vec<OrganizationChoice>) -> Response {
    let page = ChooserPage {
        shell: anon.shell("Choose an organization"),
        choices,
    };
    anon.attach(render(&page))
}

#[derive(Deserialize)]
struct OrganizationForm {
    organization: String,
}

/// Continues a held sign-in into the chosen organization's account (its TOTP step next, when
/// it has one).
async fn login_organization(
    State(state): State<AppState>,
    AnonPosted(anon, form, headers): AnonPosted<OrganizationForm>,
) -> Result<Response, WebError> {
    let start_again = |anon: &AnonCsrf, email: String| {
        let page = LoginPage {
            shell: anon.shell("Sign in"),
            email,
            errors: FormErrors::general("The sign-in took too long. Start again."),
        };
        render_status(StatusCode::UNAUTHORIZED, &page)
    };
    let Some(value) = cookie(&headers, PENDING_COOKIE) else {
        return Ok(see_other("/login"));
    };
    let Some(mut pending) = state.web.take_login(&value) else {
        return Ok(start_again(&anon, String::new()));
    };
    let Ok(organization) = form.organization.parse::<OrganizationId>() else {
        return Ok(start_again(&anon, pending.email.clone()));
    };
    match state
        .hub
        .login_to(&pending.email, &pending.password, None, Some(organization))
        .await
    {
        Ok(done) => Ok(signed_in(&done)),
        Err(err @ (AppError::TotpRequired | AppError::SecondFactorRequired(_))) => {
            pending.organization = Some(organization);
            state.web.put_back_login(&value, pending);
            Ok(totp_view(&anon, &FormErrors::none(), &SecondStep::of(&err)))
        }
        Err(AppError::Sealed) => Err(WebError::Sealed),
        Err(err) => {
            let page = LoginPage {
                shell: anon.shell("Sign in"),
                email: pending.email.clone(),
                errors: FormErrors::from_app(err),
            };
            Ok(render_status(StatusCode::UNAUTHORIZED, &page))
        }
    }
}

#[derive(Deserialize)]
struct Empty {}

/// Sign-out ends the session on the server and tells the browser to forget the site's cookies,
/// storage and cache (`Clear-Site-Data`).
async fn logout(
    State(state): State<AppState>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    state.hub.logout(&signed.caller).await?;
    let mut response = see_other("/login?notice=signed-out");
    clear_cookies(
        &mut response,
        &[SESSION_COOKIE, CSRF_COOKIE, FORM_COOKIE, PENDING_COOKIE],
    );
    response.headers_mut().insert(
        "clear-site-data",
        HeaderValue::from_static("\"cache\", \"cookies\", \"storage\""),
    );
    Ok(response)
}

#[derive(Template)]
#[template(path = "auth/accept.html")]
struct AcceptPage {
    shell: Shell,
    display_name: String,
    /// The invitation code sent with a refused form, put back as a hidden field so the next
    /// try needs no new link (never in a URL; empty when the code itself was refused).
    token: String,
    errors: FormErrors,
}

/// The code to put back into a re-rendered form: the one sent, unless it is what was wrong.
fn carried_token(sent: &str, errors: &FormErrors) -> String {
    if errors.get("token").is_some() {
        String::new()
    } else {
        sent.trim().to_owned()
    }
}

async fn accept_page(anon: AnonCsrf) -> Response {
    let page = AcceptPage {
        shell: anon.shell("Accept your invitation"),
        display_name: String::new(),
        token: String::new(),
        errors: FormErrors::none(),
    };
    anon.attach(render(&page))
}

#[derive(Deserialize)]
struct AcceptForm {
    token: String,
    display_name: String,
    password: String,
    password_again: String,
}

async fn accept(
    State(state): State<AppState>,
    AnonPosted(anon, form, _): AnonPosted<AcceptForm>,
) -> Result<Response, WebError> {
    let show = |errors: FormErrors| {
        let page = AcceptPage {
            shell: anon.shell("Accept your invitation"),
            display_name: form.display_name.clone(),
            token: carried_token(&form.token, &errors),
            errors,
        };
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
    };
    if form.token.trim().is_empty() {
        return Ok(show(FormErrors::none().field(
            "token",
            "Open the link from your invitation e-mail, or paste its code here.",
        )));
    }
    if form.password != form.password_again {
        return Ok(show(
            FormErrors::none().field("password_again", "The two passwords differ."),
        ));
    }
    let password = Password::new(form.password.clone());
    match state
        .hub
        .accept_invitation(form.token.trim(), &password, form.display_name.trim())
        .await
    {
        Ok(_) => Ok(see_other("/login?notice=accepted")),
        Err(AppError::Sealed) => Err(WebError::Sealed),
        Err(AppError::NotFound(_)) => Ok(show(FormErrors::none().field(
            "token",
            "This invitation does not exist, expired or was already used. Ask for a new one.",
        ))),
        Err(err) => Ok(show(FormErrors::from_app(err))),
    }
}

#[derive(Template)]
#[template(path = "auth/forgot.html")]
struct ForgotPage {
    shell: Shell,
}

async fn forgot_page(anon: AnonCsrf) -> Response {
    let page = ForgotPage {
        shell: anon.shell("Forgot your password?"),
    };
    anon.attach(render(&page))
}

#[derive(Deserialize)]
struct ForgotForm {
    email: String,
}

async fn forgot(
    State(state): State<AppState>,
    AnonPosted(_, form, _): AnonPosted<ForgotForm>,
) -> Result<Response, WebError> {
    // The answer is the same whether or not the address has an account.
    match state.hub.request_password_reset(form.email.trim()).await {
        Ok(()) | Err(AppError::Invalid { .. }) => Ok(see_other("/login?notice=reset-sent")),
        Err(err) => Err(err.into()),
    }
}

#[derive(Template)]
#[template(path = "auth/reset.html")]
struct ResetPage {
    shell: Shell,
    /// As [`AcceptPage::token`], for the reset code.
    token: String,
    errors: FormErrors,
}

async fn reset_page(anon: AnonCsrf) -> Response {
    let page = ResetPage {
        shell: anon.shell("Choose a new password"),
        token: String::new(),
        errors: FormErrors::none(),
    };
    anon.attach(render(&page))
}

#[derive(Deserialize)]
struct ResetForm {
    token: String,
    password: String,
    password_again: String,
    totp: Option<String>,
}

async fn reset(
    State(state): State<AppState>,
    AnonPosted(anon, form, _): AnonPosted<ResetForm>,
) -> Result<Response, WebError> {
    let show = |errors: FormErrors| {
        let page = ResetPage {
            shell: anon.shell("Choose a new password"),
            token: carried_token(&form.token, &errors),
            errors,
        };
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
    };
    if form.password != form.password_again {
        return Ok(show(
            FormErrors::none().field("password_again", "The two passwords differ."),
        ));
    }
    let password = Password::new(form.password.clone());
    let totp = form
        .totp
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    match state
        .hub
        .complete_password_reset(form.token.trim(), &password, totp)
        .await
    {
        Ok(()) => Ok(see_other("/login?notice=reset-done")),
        Err(AppError::Sealed) => Err(WebError::Sealed),
        Err(AppError::TotpRequired) => Ok(show(FormErrors::none().field(
            "totp",
            "Your account uses two-factor sign-in: enter the current code of your authenticator, or a recovery code.",
        ))),
        Err(AppError::NotFound(_)) => Ok(show(FormErrors::none().field(
            "token",
            "This link does not work any more (it is valid 30 minutes, once). Ask for a new one.",
        ))),
        Err(err) => Ok(show(FormErrors::from_app(err))),
    }
}

#[derive(Template)]
#[template(path = "auth/strength.html")]
pub(crate) struct StrengthFragment {
    strength: PasswordStrength,
    /// Why the policy refuses the password, if it does (too short, too long, common).
    refused: Option<String>,
    empty: bool,
}

impl StrengthFragment {
    fn label(&self) -> &'static str {
        match self.strength.score {
            0 => "Very weak",
            1 => "Weak",
            2 => "Fair",
            3 => "Strong",
            _ => "Very strong",
        }
    }
}

#[derive(Deserialize)]
struct StrengthForm {
    password: Option<String>,
    display_name: Option<String>,
}

/// `POST /password-strength`: the strength meter under a password field (htmx, as the user
/// types). It changes nothing; it still needs the form's CSRF token (the member's, or the
/// double-submit one), like every form. The password is never logged or stored.
async fn strength(State(state): State<AppState>, request: Request) -> Result<Response, WebError> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map_err(|_| WebError::bad_request("The form is too large."))?;
    let sent = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let anon_ok = cookie(&parts.headers, FORM_COOKIE).is_some_and(|expected| {
        lockstep_auth::hashes_equal(
            &SecretToken::from_text(sent).hash(),
            &SecretToken::from_text(&expected).hash(),
        )
    });
    let member_ok = match cookie(&parts.headers, SESSION_COOKIE) {
        Some(token) if !anon_ok => state
            .hub
            .authenticate(&token)
            .await
            .is_ok_and(|caller| caller.csrf_matches(sent)),
        _ => false,
    };
    if !anon_ok && !member_ok {
        return Err(WebError::Csrf);
    }
    let form: StrengthForm = super::session::parse_form(&body)?;
    let password = Password::new(form.password.unwrap_or_default());
    let name = form.display_name.unwrap_or_default();
    // zxcvbn's work grows with the length; past the policy's maximum the answer is known.
    let strength = if password.expose().chars().count() > lockstep_auth::MAX_PASSWORD_CHARS {
        PasswordStrength {
            score: 0,
            warning: None,
            suggestions: Vec::new(),
        }
    } else {
        password_strength(&password, &[name.as_str()])
    };
    let fragment = StrengthFragment {
        strength,
        refused: check_password_policy(&password)
            .err()
            .map(|e| capitalize_first(&e.to_string())),
        empty: password.expose().is_empty(),
    };
    Ok(render(&fragment).into_response())
}

fn capitalize_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
