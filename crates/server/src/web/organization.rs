//! The customer stays in control, in the pages of Administrators: the settings page's "Delete
//! organization" section (password, code and the organization's name; the pending date with a
//! Cancel button) and the incident buttons — for the whole organization in settings, for one
//! member on their page. The use cases are the API's (`api/v1/organization.rs`).

use super::page::{FormErrors, WebError, render_status, see_other, when};
use super::session::{Posted, SignedIn};
use crate::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use lockstep_app::{AppError, DeletionConfirmation, Password};
use lockstep_domain::UserId;
use serde::Deserialize;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/settings/deletion", post(request_deletion))
        .route("/settings/deletion/cancel", post(cancel_deletion))
        .route("/settings/incident", post(incident_all))
        .route("/users/{id}/incident", post(incident_member))
}

/// The settings page's sections of this module.
#[derive(Debug, Clone, Default)]
pub(crate) struct ControlCards {
    /// Whether the member may delete the organization and respond to incidents (the sections
    /// are drawn only then).
    pub can_delete: bool,
    pub can_respond: bool,
    /// The pending deletion, if any.
    pub pending: Option<PendingRow>,
    /// The deletion form's errors.
    pub errors: FormErrors,
}

#[derive(Debug, Clone)]
pub(crate) struct PendingRow {
    pub due: String,
    pub requested_at: String,
    pub requested_by: String,
}

impl ControlCards {
    /// The sections for `signed`, with the deletion form's `errors`.
    pub(crate) async fn load(
        state: &AppState,
        signed: &SignedIn,
        errors: FormErrors,
    ) -> Result<ControlCards, WebError> {
        let can_delete = signed.nav.can_delete_organization();
        let can_respond = signed.nav.can_respond_to_incident();
        let mut pending = None;
        if can_delete && let Some(d) = state.hub.organization_deletion(&signed.caller).await? {
            let zone = signed.nav.time_zone;
            let names = state.hub.member_names(&signed.caller).await?;
            let requested_by = names
                .into_iter()
                .find(|(id, _)| *id == d.requested_by)
                .map_or_else(|| "A former Administrator".to_owned(), |(_, name)| name);
            pending = Some(PendingRow {
                due: when(zone, d.due_at),
                requested_at: when(zone, d.requested_at),
                requested_by,
            });
        }
        Ok(ControlCards {
            can_delete,
            can_respond,
            pending,
            errors,
        })
    }
}

#[derive(Deserialize)]
struct DeletionForm {
    password: String,
    #[serde(default)]
    totp: String,
    confirm_name: String,
}

async fn request_deletion(
    State(state): State<AppState>,
    Posted(signed, form): Posted<DeletionForm>,
) -> Result<Response, WebError> {
    let password = Password::new(form.password);
    let totp = Some(form.totp.trim()).filter(|t| !t.is_empty());
    let asked = state
        .hub
        .request_organization_deletion(
            &signed.caller,
            DeletionConfirmation {
                password: &password,
                totp,
                confirm_name: &form.confirm_name,
            },
        )
        .await;
    match asked {
        Ok(pending) if pending.due_at <= pending.requested_at => {
            // No grace period: the organization, and this session with it, is gone.
            Ok(see_other("/login?notice=organization-deleted"))
        }
        Ok(_) => Ok(see_other("/settings?notice=deletion-requested#deletion")),
        Err(err @ (AppError::Invalid { .. } | AppError::Conflict(_))) => {
            let errors = FormErrors::from_app(err)
                .anchored("password", "deletion-password")
                .anchored("totp", "deletion-totp")
                .anchored("confirm_name", "deletion-name");
            let page = super::users::settings_page(&state, &signed, None, errors).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(err) => Err(err.into()),
    }
}

#[derive(Deserialize)]
struct Empty {}

async fn cancel_deletion(
    State(state): State<AppState>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    state
        .hub
        .cancel_organization_deletion(&signed.caller)
        .await?;
    Ok(see_other("/settings?notice=deletion-cancelled"))
}

async fn incident_all(
    State(state): State<AppState>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    state.hub.respond_to_incident(&signed.caller, None).await?;
    // The caller's own session ended with everyone's.
    Ok(see_other("/login?notice=incident-all"))
}

async fn incident_member(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let id: UserId = id.parse().map_err(|_| WebError::not_found("user"))?;
    state
        .hub
        .respond_to_incident(&signed.caller, Some(id))
        .await?;
    if id == signed.caller.user() {
        return Ok(see_other("/login?notice=incident-self"));
    }
    Ok(see_other(&format!("/users/{id}?notice=incident")))
}
