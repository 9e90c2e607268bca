//! Support access pages: the Administrators' grants (`/settings/support-access`), and a support
//! person's way in — set up the account (`/support/setup`), sign in with password and TOTP
//! (`/support/login`), pick the organization that granted access (`/support`) and work there
//! under the granted role with the member pages (the banner says so).

use super::account::{otpauth_secret, qr_data_uri};
use super::page::{
    FormErrors, NoticeQuery, Shell, WebError, render, render_status, see_other, when,
};
use super::session::{
    AnonCsrf, AnonPosted, CSRF_COOKIE, FORM_COOKIE, PENDING_COOKIE, Posted, SignedIn,
    clear_cookies, cookie, set_cookie,
};
use crate::AppState;
use crate::extract::SESSION_COOKIE;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use lockstep_app::{AppError, Password};
use lockstep_domain::{OrganizationId, Role};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/settings/support-access", get(grants_page).post(grant))
        .route("/settings/support-access/{id}/revoke", post(revoke))
        .route("/support/setup", get(setup_page).post(setup))
        .route("/support/setup/confirm", post(setup_confirm))
        .route("/support/login", get(login_page).post(login))
        .route("/support", get(organizations_page))
        .route("/support/enter", post(enter))
        .route("/support/logout", post(logout))
}

/// One grant as the settings page lists it.
struct GrantRow {
    id: String,
    support_email: String,
    role: &'static str,
    reason: String,
    created_at: String,
    expires_at: String,
    revoked_at: Option<String>,
    active: bool,
}

struct AccountOption {
    id: String,
    email: String,
}

#[derive(Template)]
#[template(path = "settings/support_access.html")]
struct GrantsPage {
    shell: Shell,
    errors: FormErrors,
    grants: Vec<GrantRow>,
    accounts: Vec<AccountOption>,
    support_user_id: String,
    role: String,
    hours: String,
    reason: String,
    max_hours: i64,
}

impl GrantsPage {
    fn role_selected(&self, role: &str) -> bool {
        self.role == role
    }
}

async fn grants_view(
    state: &AppState,
    signed: &SignedIn,
    errors: FormErrors,
    notice: Option<&'static str>,
    form: Option<&GrantForm>,
) -> Result<GrantsPage, WebError> {
    let grants = state.hub.list_support_grants(&signed.caller).await?;
    let accounts = state.hub.support_accounts_to_grant(&signed.caller).await?;
    let zone = signed.nav.time_zone;
    Ok(GrantsPage {
        shell: signed
            .shell("Support access", "settings")
            .with_notice(notice),
        errors,
        grants: grants
            .into_iter()
            .map(|g| GrantRow {
                id: g.id.to_string(),
                support_email: g.support_email,
                role: super::page::role_label(g.role),
                reason: g.reason,
                created_at: when(zone, g.created_at),
                expires_at: when(zone, g.expires_at),
                revoked_at: g.revoked_at.map(|at| when(zone, at)),
                active: g.active,
            })
            .collect(),
        accounts: accounts
            .into_iter()
            .map(|a| AccountOption {
                id: a.id.to_string(),
                email: a.email,
            })
            .collect(),
        support_user_id: form.map(|f| f.support_user_id.clone()).unwrap_or_default(),
        role: form.map_or_else(|| "viewer".to_owned(), |f| f.role.clone()),
        hours: form.map_or_else(|| "4".to_owned(), |f| f.hours.clone()),
        reason: form.map(|f| f.reason.clone()).unwrap_or_default(),
        max_hours: lockstep_app::MAX_SUPPORT_GRANT_HOURS,
    })
}

async fn grants_page(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    let notice = match query.notice.as_deref() {
        Some("granted") => Some("Support access was granted."),
        Some("revoked") => Some("Support access was revoked: their sessions here ended."),
        _ => query.text(),
    };
    let page = grants_view(&state, &signed, FormErrors::none(), notice, None).await?;
    Ok(render(&page))
}

#[derive(Deserialize)]
struct GrantForm {
    #[serde(default)]
    support_user_id: String,
    role: String,
    hours: String,
    reason: String,
}

async fn grant(
    State(state): State<AppState>,
    Posted(signed, form): Posted<GrantForm>,
) -> Result<Response, WebError> {
    let refuse = |errors: FormErrors| async {
        let page = grants_view(&state, &signed, errors, None, Some(&form)).await?;
        Ok::<_, WebError>(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
    };
    let Ok(support_user_id) = Uuid::parse_str(form.support_user_id.trim()) else {
        return refuse(FormErrors::none().field("support_user_id", "Pick a support account."))
            .await;
    };
    let Ok(role) = form.role.parse::<Role>() else {
        return refuse(FormErrors::none().field("role", "Pick a role.")).await;
    };
    let Ok(hours) = form.hours.trim().parse::<i64>() else {
        return refuse(FormErrors::none().field("hours", "Give a whole number of hours.")).await;
    };
    match state
        .hub
        .grant_support_access(&signed.caller, support_user_id, role, hours, &form.reason)
        .await
    {
        Ok(_) => Ok(see_other("/settings/support-access?notice=granted")),
        Err(err @ AppError::Invalid { .. }) => refuse(FormErrors::from_app(err)).await,
        Err(err) => Err(err.into()),
    }
}

#[derive(Deserialize)]
struct Empty {}

async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let id = Uuid::parse_str(&id).map_err(|_| WebError::not_found("support access grant"))?;
    state.hub.revoke_support_access(&signed.caller, id).await?;
    Ok(see_other("/settings/support-access?notice=revoked"))
}

#[derive(Template)]
#[template(path = "support/setup.html")]
struct SetupPage {
    shell: Shell,
    errors: FormErrors,
    /// The setup code, carried in a hidden field once read (never in a URL).
    token: String,
    /// The TOTP enrolment's QR code and key, after the password was chosen.
    qr: Option<String>,
    secret: String,
}

fn setup_view(anon: &AnonCsrf, errors: FormErrors, token: String) -> SetupPage {
    SetupPage {
        shell: anon.shell("Set up your support account"),
        errors,
        token,
        qr: None,
        secret: String::new(),
    }
}

async fn setup_page(anon: AnonCsrf) -> Response {
    anon.attach(render(&setup_view(
        &anon,
        FormErrors::none(),
        String::new(),
    )))
}

#[derive(Deserialize)]
struct SetupForm {
    token: String,
    password: String,
    password_again: String,
}

async fn setup(
    State(state): State<AppState>,
    AnonPosted(anon, form, _): AnonPosted<SetupForm>,
) -> Result<Response, WebError> {
    let token = form.token.trim().to_owned();
    let show = |errors: FormErrors, token: String| {
        render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &setup_view(&anon, errors, token),
        )
    };
    if form.password != form.password_again {
        return Ok(show(
            FormErrors::none().field("password_again", "The two passwords differ."),
            token,
        ));
    }
    let password = Password::new(form.password);
    match state.hub.begin_support_setup(&token, &password).await {
        Ok(enrolment) => {
            let uri = enrolment.otpauth_uri.as_str();
            let secret = otpauth_secret(uri).unwrap_or_default();
            let page = SetupPage {
                qr: Some(qr_data_uri(uri).ok_or_else(|| {
                    WebError::bad_request("The QR code could not be drawn: use the key.")
                })?),
                secret,
                ..setup_view(&anon, FormErrors::none(), token)
            };
            Ok(render(&page))
        }
        Err(AppError::Sealed) => Err(WebError::Sealed),
        Err(AppError::NotFound(_)) => Ok(show(
            FormErrors::none().field(
                "token",
                "This setup link does not exist, expired or was already used. Ask the operator for a new one.",
            ),
            String::new(),
        )),
        Err(err) => Ok(show(FormErrors::from_app(err), token)),
    }
}

#[derive(Deserialize)]
struct ConfirmForm {
    token: String,
    code: String,
}

async fn setup_confirm(
    State(state): State<AppState>,
    AnonPosted(anon, form, _): AnonPosted<ConfirmForm>,
) -> Result<Response, WebError> {
    match state
        .hub
        .confirm_support_setup(form.token.trim(), &form.code)
        .await
    {
        Ok(()) => Ok(see_other("/support/login?notice=support-ready")),
        Err(AppError::Sealed) => Err(WebError::Sealed),
        Err(err) => Ok(render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &setup_view(&anon, FormErrors::from_app(err), String::new()),
        )),
    }
}

#[derive(Template)]
#[template(path = "support/login.html")]
struct LoginPage {
    shell: Shell,
    email: String,
    errors: FormErrors,
}

async fn login_page(anon: AnonCsrf, Query(query): Query<NoticeQuery>) -> Response {
    let notice = match query.notice.as_deref() {
        Some("support-ready") => Some("Your support account is ready. Sign in."),
        _ => query.text(),
    };
    let page = LoginPage {
        shell: anon.shell("Support sign-in").with_notice(notice),
        email: String::new(),
        errors: FormErrors::none(),
    };
    anon.attach(render(&page))
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    code: String,
}

async fn login(
    State(state): State<AppState>,
    AnonPosted(anon, form, _): AnonPosted<LoginForm>,
) -> Result<Response, WebError> {
    let email = form.email.trim().to_owned();
    let password = Password::new(form.password);
    match state.hub.support_login(&email, &password, &form.code).await {
        Ok(done) => {
            let max_age = (done.expires_at - OffsetDateTime::now_utc())
                .whole_seconds()
                .max(0);
            let mut response = see_other("/support");
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
            Ok(response)
        }
        Err(AppError::Sealed) => Err(WebError::Sealed),
        Err(err) => {
            let page = LoginPage {
                shell: anon.shell("Support sign-in"),
                email,
                errors: FormErrors::from_app(err),
            };
            Ok(render_status(StatusCode::UNAUTHORIZED, &page))
        }
    }
}

struct OrganizationRow {
    id: String,
    name: String,
    role: &'static str,
    expires_at: String,
}

#[derive(Template)]
#[template(path = "support/organizations.html")]
struct OrganizationsPage {
    shell: Shell,
    organizations: Vec<OrganizationRow>,
}

fn support_token(headers: &HeaderMap) -> Result<String, WebError> {
    cookie(headers, SESSION_COOKIE)
        .filter(|token| token.starts_with("lsp_"))
        .ok_or(WebError::Page(crate::problem::ApiError::unauthenticated()))
}

async fn organizations_page(
    State(state): State<AppState>,
    anon: AnonCsrf,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let Ok(token) = support_token(&headers) else {
        return Ok(see_other("/support/login"));
    };
    let organizations = match state.hub.support_organizations(&token).await {
        Ok(list) => list,
        Err(AppError::Unauthenticated) => return Ok(see_other("/support/login")),
        Err(err) => return Err(err.into()),
    };
    let page = OrganizationsPage {
        shell: anon.shell("Organizations you may help"),
        organizations: organizations
            .into_iter()
            .map(|o| OrganizationRow {
                id: o.organization_id.to_string(),
                name: o.organization_name,
                role: super::page::role_label(o.role),
                expires_at: format!(
                    "{:04}-{:02}-{:02} {:02}:{:02}",
                    o.expires_at.year(),
                    u8::from(o.expires_at.month()),
                    o.expires_at.day(),
                    o.expires_at.hour(),
                    o.expires_at.minute()
                ),
            })
            .collect(),
    };
    Ok(anon.attach(render(&page)))
}

#[derive(Deserialize)]
struct EnterForm {
    organization_id: OrganizationId,
}

async fn enter(
    State(state): State<AppState>,
    AnonPosted(_, form, headers): AnonPosted<EnterForm>,
) -> Result<Response, WebError> {
    let token = support_token(&headers)?;
    state
        .hub
        .support_enter(&token, form.organization_id)
        .await?;
    Ok(see_other("/dashboard"))
}

async fn logout(
    State(state): State<AppState>,
    AnonPosted(_, Empty {}, headers): AnonPosted<Empty>,
) -> Result<Response, WebError> {
    if let Ok(token) = support_token(&headers) {
        match state.hub.support_logout(&token).await {
            Ok(()) | Err(AppError::Unauthenticated) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let mut response = see_other("/support/login?notice=signed-out");
    clear_cookies(
        &mut response,
        &[SESSION_COOKIE, CSRF_COOKIE, FORM_COOKIE, PENDING_COOKIE],
    );
    Ok(response)
}
