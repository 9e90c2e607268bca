//! Pages of Administrators: users (invite, list, resend and revoke pending invitations, change a
//! role, deactivate or reactivate, reset the second factor, delete) and
//! the organization's settings (with the rotation of its data key). The use cases are the API's
//! (`api/v1/users.rs`); they refuse every other role.

use super::organization::ControlCards;
use super::page::{
    FormErrors, NoticeQuery, Shell, WebError, render, render_status, role_label, see_other, when,
};
use super::session::{Posted, SignedIn};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use lockstep_app::{
    AppError, InvitationCreated, InvitationView, MailOutcome, SettingsUpdate, TimeZone, UserUpdate,
    UserView,
};
use lockstep_domain::{InvitationId, Role, UserId};
use serde::Deserialize;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(users))
        .route("/users/invitations", post(invite))
        .route("/users/invitations/{id}/resend", post(resend_invitation))
        .route("/users/invitations/{id}/revoke", post(revoke_invitation))
        .route("/users/{id}/totp/reset", post(reset_totp))
        .route("/users/{id}", get(user))
        .route("/users/{id}/role", post(change_role))
        .route("/users/{id}/active", post(change_active))
        .route("/users/{id}/delete", post(delete_user))
        .route("/settings", get(settings).post(update_settings))
        .route("/settings/rotate-key", post(rotate_key))
}

#[derive(Deserialize)]
struct Empty {}

/// A user as the pages show them.
struct UserRow {
    id: String,
    display_name: String,
    email: String,
    role: Role,
    active: bool,
    totp_enabled: bool,
    created: String,
}

impl UserRow {
    fn role_label(&self) -> &'static str {
        role_label(self.role)
    }
}

impl UserRow {
    fn new(v: UserView, zone: TimeZone) -> Self {
        UserRow {
            id: v.id.to_string(),
            display_name: v.display_name,
            email: v.email,
            role: v.role,
            active: v.active,
            totp_enabled: v.totp_enabled,
            created: when(zone, v.created_at),
        }
    }
}

/// A pending invitation as the users page shows it.
struct InvitationRow {
    id: String,
    email: String,
    role: Role,
    invited_by: String,
    created: String,
    expires: String,
    /// Its latest mail could not be sent.
    mail_failed: bool,
}

impl InvitationRow {
    fn role_label(&self) -> &'static str {
        role_label(self.role)
    }
}

impl InvitationRow {
    fn new(v: InvitationView, zone: TimeZone) -> Self {
        InvitationRow {
            id: v.id.to_string(),
            email: v.email,
            role: v.role,
            invited_by: match (v.invited_by_name, v.invited_by) {
                (Some(name), _) => name,
                (None, Some(_)) => "a former member".to_owned(),
                (None, None) => "the operator".to_owned(),
            },
            created: when(zone, v.created_at),
            expires: when(zone, v.expires_at),
            mail_failed: v.mail == MailOutcome::Failed,
        }
    }
}

/// A role of the select of the invitation and of the user page.
struct RoleOption {
    value: &'static str,
    label: &'static str,
}

fn role_options() -> Vec<RoleOption> {
    Role::ALL
        .into_iter()
        .map(|role| RoleOption {
            value: role.as_str(),
            label: role_label(role),
        })
        .collect()
}

fn parse_role(text: &str) -> Result<Role, FormErrors> {
    text.parse()
        .map_err(|_| FormErrors::none().field("role", "Choose a role."))
}

/// The form errors of a refused or invalid change, said as a sentence.
fn change_errors(err: AppError) -> FormErrors {
    match err {
        AppError::Refused(why) => FormErrors::general(format!("Nothing was changed: {why}.")),
        other => FormErrors::from_app(other),
    }
}

fn parse_user_id(id: &str) -> Result<UserId, WebError> {
    id.parse().map_err(|_| WebError::not_found("user"))
}

/// What the page says about an invitation just sent.
struct Invited {
    email: String,
    mail: MailOutcome,
    /// The invitation link, shown this once — only on a hub without a mail server.
    link: Option<String>,
}

impl Invited {
    fn new(email: String, created: &InvitationCreated) -> Invited {
        Invited {
            email,
            mail: created.mail,
            link: created
                .token_for_inviter()
                .map(|token| format!("/accept-invitation#{}", token.expose())),
        }
    }

    fn sent(&self) -> bool {
        self.mail == MailOutcome::Sent
    }

    fn failed(&self) -> bool {
        self.mail == MailOutcome::Failed
    }
}

#[derive(Template)]
#[template(path = "users/list.html")]
struct UsersPage {
    shell: Shell,
    users: Vec<UserRow>,
    invitations: Vec<InvitationRow>,
    roles: Vec<RoleOption>,
    errors: FormErrors,
    email: String,
    role: String,
    /// Just invited (or resent): the address and what became of the mail.
    invited: Option<Invited>,
    /// The new invitation replaced a pending one for the same address.
    replaced: bool,
}

async fn users_page(
    state: &AppState,
    signed: &SignedIn,
    notice: Option<&'static str>,
) -> Result<UsersPage, WebError> {
    let users = state.hub.list_users(&signed.caller).await?;
    let invitations = state.hub.list_invitations(&signed.caller).await?;
    Ok(UsersPage {
        shell: signed.shell("Users", "users").with_notice(notice),
        users: users
            .into_iter()
            .map(|u| UserRow::new(u, signed.nav.time_zone))
            .collect(),
        invitations: invitations
            .into_iter()
            .map(|i| InvitationRow::new(i, signed.nav.time_zone))
            .collect(),
        roles: role_options(),
        errors: FormErrors::none(),
        email: String::new(),
        role: Role::Editor.as_str().to_owned(),
        invited: None,
        replaced: false,
    })
}

async fn users(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    Ok(render(&users_page(&state, &signed, query.text()).await?))
}

#[derive(Deserialize)]
struct InviteForm {
    email: String,
    role: String,
}

/// Invites a member. On a hub without a mail server the page shows the invitation link this
/// once; otherwise only whether the mail went out.
async fn invite(
    State(state): State<AppState>,
    Posted(signed, form): Posted<InviteForm>,
) -> Result<Response, WebError> {
    let result = match parse_role(&form.role) {
        Ok(role) => match state
            .hub
            .invite_user(&signed.caller, form.email.trim(), role)
            .await
        {
            Ok(created) => Ok(created),
            Err(AppError::Conflict(_)) => Err(FormErrors::none()
                .field("email", "A user with this e-mail address already exists.")),
            Err(err @ AppError::Invalid { .. }) => Err(FormErrors::from_app(err)),
            Err(err) => return Err(err.into()),
        },
        Err(errors) => Err(errors),
    };
    let mut page = users_page(&state, &signed, None).await?;
    let status = match result {
        Ok(created) => {
            page.invited = Some(Invited::new(form.email.trim().to_owned(), &created));
            page.replaced = created.replaced;
            StatusCode::CREATED
        }
        Err(errors) => {
            page.errors = errors;
            page.email = form.email;
            page.role = form.role;
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    Ok(render_status(status, &page))
}

fn parse_invitation_id(id: &str) -> Result<InvitationId, WebError> {
    id.parse().map_err(|_| WebError::not_found("invitation"))
}

/// Sends a pending invitation again with a new link (the old one stops working) and shows the
/// new link this once, like a new invitation's.
async fn resend_invitation(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let id = parse_invitation_id(&id)?;
    let resent = state.hub.resend_invitation(&signed.caller, id).await?;
    let mut page = users_page(&state, &signed, None).await?;
    let email = page
        .invitations
        .iter()
        .find(|i| i.id == id.to_string())
        .map(|i| i.email.clone())
        .unwrap_or_default();
    page.invited = Some(Invited::new(email, &resent));
    Ok(render(&page))
}

async fn revoke_invitation(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let id = parse_invitation_id(&id)?;
    state.hub.revoke_invitation(&signed.caller, id).await?;
    Ok(see_other("/users?notice=invitation-revoked"))
}

/// Resets a member's second factor: their TOTP and recovery codes go, their sessions end.
async fn reset_totp(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let id = parse_user_id(&id)?;
    state.hub.reset_user_totp(&signed.caller, id).await?;
    if id == signed.caller.user() {
        // Their own sessions ended with it.
        return Ok(see_other("/login"));
    }
    Ok(see_other("/users?notice=totp-reset"))
}

#[derive(Template)]
#[template(path = "users/user.html")]
struct UserPage {
    shell: Shell,
    user: UserRow,
    roles: Vec<RoleOption>,
    errors: FormErrors,
    /// Whether this is the signed-in Administrator's own account.
    is_self: bool,
}

async fn user_page(
    state: &AppState,
    signed: &SignedIn,
    id: UserId,
    errors: FormErrors,
    notice: Option<&'static str>,
) -> Result<Response, WebError> {
    let user = UserRow::new(
        state.hub.get_user(&signed.caller, id).await?,
        signed.nav.time_zone,
    );
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = UserPage {
        shell: signed
            .shell(user.display_name.clone(), "users")
            .with_notice(notice),
        user,
        roles: role_options(),
        errors,
        is_self: id == signed.caller.user(),
    };
    Ok(render_status(status, &page))
}

async fn user(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    let id = parse_user_id(&id)?;
    user_page(&state, &signed, id, FormErrors::none(), query.text()).await
}

/// Applies `update` to user `id`; a refusal (the last Administrator) or an invalid value shows
/// the user page again with the reason, a lower role gets the error page.
async fn apply_update(
    state: &AppState,
    signed: &SignedIn,
    id: UserId,
    update: UserUpdate,
) -> Result<Response, WebError> {
    match state.hub.update_user(&signed.caller, id, update).await {
        Ok(_)
            if id == signed.caller.user()
                && update.role.is_some_and(|r| r != Role::Administrator) =>
        {
            // Who gave up the Administrator role may no longer see the users.
            Ok(see_other("/account?notice=saved"))
        }
        Ok(_) => Ok(see_other(&format!("/users/{id}?notice=saved"))),
        Err(err @ (AppError::Refused(_) | AppError::Invalid { .. })) => {
            user_page(state, signed, id, change_errors(err), None).await
        }
        Err(err) => Err(err.into()),
    }
}

#[derive(Deserialize)]
struct RoleForm {
    role: String,
}

async fn change_role(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, form): Posted<RoleForm>,
) -> Result<Response, WebError> {
    let id = parse_user_id(&id)?;
    let role = match parse_role(&form.role) {
        Ok(role) => role,
        Err(errors) => return user_page(&state, &signed, id, errors, None).await,
    };
    let update = UserUpdate {
        role: Some(role),
        active: None,
    };
    apply_update(&state, &signed, id, update).await
}

#[derive(Deserialize)]
struct ActiveForm {
    active: String,
}

async fn change_active(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, form): Posted<ActiveForm>,
) -> Result<Response, WebError> {
    let id = parse_user_id(&id)?;
    let active = match form.active.as_str() {
        "true" => true,
        "false" => false,
        _ => return Err(WebError::bad_request("`active` must be true or false.")),
    };
    let update = UserUpdate {
        role: None,
        active: Some(active),
    };
    apply_update(&state, &signed, id, update).await
}

async fn delete_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let id = parse_user_id(&id)?;
    match state.hub.delete_user(&signed.caller, id).await {
        Ok(()) => Ok(see_other("/users?notice=deleted")),
        Err(err @ AppError::Refused(_)) => {
            user_page(&state, &signed, id, change_errors(err), None).await
        }
        Err(err) => Err(err.into()),
    }
}

#[derive(Template)]
#[template(path = "settings/settings.html")]
pub(crate) struct SettingsPage {
    shell: Shell,
    errors: FormErrors,
    require_totp: bool,
    audit_depth: String,
    long_term_audit: bool,
    time_zone: String,
    dataset_retention_days: String,
    deletion_grace_days: String,
    /// Just rotated: the data key version new data is encrypted with.
    rotated: Option<u32>,
    /// Deleting the organization and the incident button.
    control: ControlCards,
}

/// The settings page, with the deletion form's `deletion_errors`.
pub(crate) async fn settings_page(
    state: &AppState,
    signed: &SignedIn,
    notice: Option<&'static str>,
    deletion_errors: FormErrors,
) -> Result<SettingsPage, WebError> {
    let current = state.hub.organization_settings(&signed.caller).await?;
    Ok(SettingsPage {
        shell: signed.shell("Settings", "settings").with_notice(notice),
        errors: FormErrors::none(),
        require_totp: current.require_totp,
        audit_depth: current.audit_depth.to_string(),
        long_term_audit: current.long_term_audit,
        time_zone: current.time_zone,
        dataset_retention_days: current.dataset_retention_days.to_string(),
        deletion_grace_days: current.deletion_grace_days.to_string(),
        rotated: None,
        control: ControlCards::load(state, signed, deletion_errors).await?,
    })
}

async fn settings(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    Ok(render(
        &settings_page(&state, &signed, query.text(), FormErrors::none()).await?,
    ))
}

#[derive(Deserialize)]
struct SettingsForm {
    require_totp: Option<String>,
    audit_depth: String,
    long_term_audit: Option<String>,
    time_zone: String,
    /// Missing: kept as it is.
    dataset_retention_days: Option<String>,
    /// Missing: kept as it is.
    deletion_grace_days: Option<String>,
}

async fn update_settings(
    State(state): State<AppState>,
    Posted(signed, form): Posted<SettingsForm>,
) -> Result<Response, WebError> {
    let control = ControlCards::load(&state, &signed, FormErrors::none()).await?;
    let show = |errors: FormErrors| SettingsPage {
        shell: signed.shell("Settings", "settings"),
        errors,
        require_totp: form.require_totp.is_some(),
        audit_depth: form.audit_depth.clone(),
        long_term_audit: form.long_term_audit.is_some(),
        time_zone: form.time_zone.clone(),
        dataset_retention_days: form.dataset_retention_days.clone().unwrap_or_default(),
        deletion_grace_days: form.deletion_grace_days.clone().unwrap_or_default(),
        rotated: None,
        control: control.clone(),
    };
    let Ok(audit_depth) = form.audit_depth.trim().parse::<u32>() else {
        // Asked first, so that a lower role gets the error page and not a form.
        state.hub.organization_settings(&signed.caller).await?;
        let errors = FormErrors::none().field(
            "audit_depth",
            "Enter a whole number of events between 1 and 1000.",
        );
        return Ok(render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &show(errors),
        ));
    };
    let retention = match form.dataset_retention_days.as_deref().map(str::trim) {
        None => None,
        Some(text) => match text.parse::<u32>() {
            Ok(days) => Some(days),
            Err(_) => {
                state.hub.organization_settings(&signed.caller).await?;
                let errors = FormErrors::none().field(
                    "dataset_retention_days",
                    "Enter a whole number of days between 1 and 90.",
                );
                return Ok(render_status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &show(errors),
                ));
            }
        },
    };
    let grace = match form.deletion_grace_days.as_deref().map(str::trim) {
        None => None,
        Some(text) => match text.parse::<u32>() {
            Ok(days) => Some(days),
            Err(_) => {
                state.hub.organization_settings(&signed.caller).await?;
                let errors = FormErrors::none().field(
                    "deletion_grace_days",
                    "Enter a whole number of days between 0 and 30.",
                );
                return Ok(render_status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &show(errors),
                ));
            }
        },
    };
    let update = SettingsUpdate {
        require_totp: Some(form.require_totp.is_some()),
        audit_depth: Some(audit_depth),
        long_term_audit: Some(form.long_term_audit.is_some()),
        time_zone: Some(form.time_zone.trim().to_owned()),
        dataset_retention_days: retention,
        deletion_grace_days: grace,
    };
    match state
        .hub
        .update_organization_settings(&signed.caller, update)
        .await
    {
        Ok(_) => Ok(see_other("/settings?notice=saved")),
        Err(err @ AppError::Invalid { .. }) => Ok(render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &show(FormErrors::from_app(err)),
        )),
        Err(err) => Err(err.into()),
    }
}

/// Rotates the organization's data key and shows the settings with the new version.
async fn rotate_key(
    State(state): State<AppState>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let version = state.hub.rotate_organization_key(&signed.caller).await?;
    let mut page = settings_page(&state, &signed, None, FormErrors::none()).await?;
    page.rotated = Some(version);
    Ok(render(&page))
}
