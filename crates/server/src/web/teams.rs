//! The teams page of Administrators: the organization's teams with their members; create,
//! rename and delete a team, add and remove a member. Teams are what the data policies name
//! (`web::policies`). The use cases are the API's (`api/v1/policies.rs`); they refuse every
//! other role.

use super::page::{FormErrors, NoticeQuery, Shell, WebError, render_status, see_other};
use super::session::{Posted, SignedIn};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use lockstep_app::{AppError, TeamView};
use lockstep_domain::{TeamId, UserId};
use serde::Deserialize;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/teams", get(teams).post(create))
        .route("/teams/{id}/rename", post(rename))
        .route("/teams/{id}/delete", post(delete))
        .route("/teams/{id}/members", post(add_member))
        .route("/teams/{id}/members/{user}/remove", post(remove_member))
}

#[derive(Deserialize)]
struct Empty {}

fn team_id(id: &str) -> Result<TeamId, WebError> {
    id.parse().map_err(|_| WebError::not_found("team"))
}

/// A member as a team row and the "add a member" select show them.
struct MemberOption {
    id: String,
    name: String,
}

/// A team as the page shows it, with the errors of its own forms.
struct TeamRow {
    id: String,
    name: String,
    members: Vec<MemberOption>,
    /// Members of the organization not in the team (the "add" select).
    candidates: Vec<MemberOption>,
    /// The rename form's value (what was typed, when it was refused).
    typed_name: String,
    errors: FormErrors,
}

#[derive(Template)]
#[template(path = "teams/list.html")]
struct TeamsPage {
    shell: Shell,
    teams: Vec<TeamRow>,
    /// The create form.
    name: String,
    errors: FormErrors,
}

/// A refused form, shown again: on which team (none: the create form), what was typed, why.
struct Refused {
    team: Option<TeamId>,
    typed: String,
    errors: FormErrors,
}

async fn page(
    state: &AppState,
    signed: &SignedIn,
    notice: Option<&'static str>,
    refused: Option<Refused>,
) -> Result<Response, WebError> {
    let teams = state.hub.list_teams(&signed.caller).await?;
    let users = state.hub.list_users(&signed.caller).await?;
    let mut active: Vec<(UserId, String)> = users
        .into_iter()
        .filter(|u| u.active)
        .map(|u| (u.id, u.display_name))
        .collect();
    active.sort_by_cached_key(|(id, name)| (name.to_lowercase(), id.to_string()));
    let status = if refused.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let rows = teams
        .into_iter()
        .map(|t: TeamView| {
            let mine = refused.as_ref().filter(|r| r.team == Some(t.id));
            TeamRow {
                id: t.id.to_string(),
                typed_name: mine.map_or_else(|| t.name.clone(), |r| r.typed.clone()),
                name: t.name,
                candidates: active
                    .iter()
                    .filter(|(u, _)| !t.members.iter().any(|(m, _)| m == u))
                    .map(|(u, n)| MemberOption {
                        id: u.to_string(),
                        name: n.clone(),
                    })
                    .collect(),
                members: t
                    .members
                    .into_iter()
                    .map(|(u, n)| MemberOption {
                        id: u.to_string(),
                        name: if n.is_empty() {
                            "a former member".to_owned()
                        } else {
                            n
                        },
                    })
                    .collect(),
                errors: mine.map_or_else(FormErrors::none, |r| r.errors.clone()),
            }
        })
        .collect();
    let (name, errors) = match refused {
        Some(r) if r.team.is_none() => (r.typed, r.errors),
        _ => (String::new(), FormErrors::none()),
    };
    let page = TeamsPage {
        shell: signed.shell("Teams", "teams").with_notice(notice),
        teams: rows,
        name,
        errors,
    };
    Ok(render_status(status, &page))
}

async fn teams(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    page(&state, &signed, query.text(), None).await
}

/// The form errors of a refused team change, or the error page for anything else.
fn refusal(err: AppError) -> Result<FormErrors, WebError> {
    match err {
        AppError::Conflict(_) => {
            Ok(FormErrors::none().field("name", "A team with this name already exists."))
        }
        AppError::Refused(why) => Ok(FormErrors::general(format!("Nothing was changed: {why}."))),
        err @ AppError::Invalid { .. } => Ok(FormErrors::from_app(err)),
        err => Err(err.into()),
    }
}

#[derive(Deserialize)]
struct NameForm {
    name: String,
}

async fn create(
    State(state): State<AppState>,
    Posted(signed, form): Posted<NameForm>,
) -> Result<Response, WebError> {
    match state.hub.create_team(&signed.caller, &form.name).await {
        Ok(_) => Ok(see_other("/teams?notice=created")),
        Err(err) => {
            let errors = refusal(err)?;
            let refused = Refused {
                team: None,
                typed: form.name,
                errors,
            };
            page(&state, &signed, None, Some(refused)).await
        }
    }
}

async fn rename(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, form): Posted<NameForm>,
) -> Result<Response, WebError> {
    let id = team_id(&id)?;
    match state.hub.rename_team(&signed.caller, id, &form.name).await {
        Ok(_) => Ok(see_other(&format!("/teams?notice=saved#team-{id}"))),
        Err(err) => {
            let errors = refusal(err)?;
            let refused = Refused {
                team: Some(id),
                typed: form.name,
                errors,
            };
            page(&state, &signed, None, Some(refused)).await
        }
    }
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let id = team_id(&id)?;
    state.hub.delete_team(&signed.caller, id).await?;
    Ok(see_other("/teams?notice=deleted"))
}

#[derive(Deserialize)]
struct MemberForm {
    user_id: String,
}

async fn add_member(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, form): Posted<MemberForm>,
) -> Result<Response, WebError> {
    let id = team_id(&id)?;
    let result = match form.user_id.trim().parse::<UserId>() {
        Ok(user) => state.hub.add_team_member(&signed.caller, id, user).await,
        Err(_) => Err(AppError::Invalid {
            field: "user_id",
            reason: "choose a member".to_owned(),
        }),
    };
    match result {
        Ok(_) => Ok(see_other(&format!("/teams?notice=saved#team-{id}"))),
        Err(err) => {
            let errors = refusal(err)?;
            let name = state.hub.get_team(&signed.caller, id).await?.name;
            let refused = Refused {
                team: Some(id),
                typed: name,
                errors,
            };
            page(&state, &signed, None, Some(refused)).await
        }
    }
}

async fn remove_member(
    State(state): State<AppState>,
    Path((id, user)): Path<(String, String)>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let id = team_id(&id)?;
    let user: UserId = user
        .parse()
        .map_err(|_| WebError::not_found("team member"))?;
    state
        .hub
        .remove_team_member(&signed.caller, id, user)
        .await?;
    Ok(see_other(&format!("/teams?notice=saved#team-{id}")))
}
