//! `/api/v1/teams*` and `/api/v1/policies/*`: Administrators make teams and the data policies
//! (access, ownership row filters, redaction) that subtract from what members see.

use crate::AppState;
use crate::extract::{ApiJson, ApiPath, Authenticated};
use crate::problem::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use lockstep_app::{AccessPolicy, OwnershipPolicy, RedactionPolicy, TeamView, ViewAs};
use lockstep_domain::{TeamId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TeamName {
    /// 1 to 100 characters, unique in the organization.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TeamMemberBody {
    id: UserId,
    display_name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TeamBody {
    id: TeamId,
    name: String,
    members: Vec<TeamMemberBody>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<TeamView> for TeamBody {
    fn from(t: TeamView) -> Self {
        TeamBody {
            id: t.id,
            name: t.name,
            members: t
                .members
                .into_iter()
                .map(|(id, display_name)| TeamMemberBody { id, display_name })
                .collect(),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TeamList {
    teams: Vec<TeamBody>,
}

pub(crate) fn team_id(id: &str) -> Result<TeamId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::invalid("id", "must be a team id"))
}

fn user_id(id: &str) -> Result<UserId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::invalid("user_id", "must be a user id"))
}

/// Parses the `view_as` query parameter of the reading routes: `user:ID` or `team:ID`.
pub(crate) fn view_as(text: Option<&str>) -> Result<Option<ViewAs>, ApiError> {
    text.map(|t| ViewAs::parse(t).map_err(ApiError::from))
        .transpose()
}

/// Create a team (Administrators).
#[utoipa::path(post, path = "/api/v1/teams", tag = "teams",
    request_body = TeamName,
    responses((status = 201, body = TeamBody),
        (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 409, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn create_team(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<TeamName>,
) -> Result<(StatusCode, Json<TeamBody>), ApiError> {
    let team = state.hub.create_team(&caller, &body.name).await?;
    Ok((StatusCode::CREATED, Json(team.into())))
}

/// The organization's teams and their members (Administrators).
#[utoipa::path(get, path = "/api/v1/teams", tag = "teams",
    responses((status = 200, body = TeamList),
        (status = 403, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn list_teams(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<TeamList>, ApiError> {
    let teams = state.hub.list_teams(&caller).await?;
    Ok(Json(TeamList {
        teams: teams.into_iter().map(TeamBody::from).collect(),
    }))
}

/// One team (Administrators).
#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "teams",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = TeamBody),
        (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn get_team(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TeamBody>, ApiError> {
    Ok(Json(
        state.hub.get_team(&caller, team_id(&id)?).await?.into(),
    ))
}

/// Rename a team (Administrators).
#[utoipa::path(patch, path = "/api/v1/teams/{id}", tag = "teams",
    params(("id" = uuid::Uuid, Path)),
    request_body = TeamName,
    responses((status = 200, body = TeamBody),
        (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 404, body = ApiError, content_type = "application/problem+json"),
        (status = 409, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn rename_team(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<TeamName>,
) -> Result<Json<TeamBody>, ApiError> {
    let id = team_id(&id)?;
    Ok(Json(
        state.hub.rename_team(&caller, id, &body.name).await?.into(),
    ))
}

/// Delete a team (Administrators): its memberships go, and so do the policy grants and rules
/// that name it.
#[utoipa::path(delete, path = "/api/v1/teams/{id}", tag = "teams",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204),
        (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn delete_team(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.hub.delete_team(&caller, team_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add a member of the organization to a team (Administrators).
#[utoipa::path(put, path = "/api/v1/teams/{id}/members/{user_id}", tag = "teams",
    params(("id" = uuid::Uuid, Path), ("user_id" = uuid::Uuid, Path)),
    responses((status = 200, body = TeamBody),
        (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn add_member(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, user)): ApiPath<(String, String)>,
) -> Result<Json<TeamBody>, ApiError> {
    let id = team_id(&id)?;
    let user = user_id(&user)?;
    Ok(Json(
        state.hub.add_team_member(&caller, id, user).await?.into(),
    ))
}

/// Remove a member from a team (Administrators).
#[utoipa::path(delete, path = "/api/v1/teams/{id}/members/{user_id}", tag = "teams",
    params(("id" = uuid::Uuid, Path), ("user_id" = uuid::Uuid, Path)),
    responses((status = 200, body = TeamBody),
        (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, user)): ApiPath<(String, String)>,
) -> Result<Json<TeamBody>, ApiError> {
    let id = team_id(&id)?;
    let user = user_id(&user)?;
    Ok(Json(
        state
            .hub
            .remove_team_member(&caller, id, user)
            .await?
            .into(),
    ))
}

/// The access policy: which teams may use which connections, pipelines and data sets
/// (Administrators).
#[utoipa::path(get, path = "/api/v1/policies/access", tag = "policies",
    responses((status = 200, body = AccessPolicy),
        (status = 403, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn get_access(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<AccessPolicy>, ApiError> {
    Ok(Json(state.hub.access_policy(&caller).await?))
}

/// Replace the access policy (Administrators). With it on, a member sees a connection or a
/// pipeline only when one of their teams is granted it (404 otherwise, as for a missing id);
/// Administrators see everything.
#[utoipa::path(put, path = "/api/v1/policies/access", tag = "policies",
    request_body = AccessPolicy,
    responses((status = 200, body = AccessPolicy),
        (status = 403, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn put_access(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<AccessPolicy>,
) -> Result<Json<AccessPolicy>, ApiError> {
    Ok(Json(state.hub.put_access_policy(&caller, body).await?))
}

/// The ownership policy: row filters per team and connection object (Administrators).
#[utoipa::path(get, path = "/api/v1/policies/ownership", tag = "policies",
    responses((status = 200, body = OwnershipPolicy),
        (status = 403, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn get_ownership(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<OwnershipPolicy>, ApiError> {
    Ok(Json(state.hub.ownership_policy(&caller).await?))
}

/// Replace the row filters (Administrators): each a CEL expression over the object's fields
/// (`member.email`, `member.id`, `member.role`, `member.teams` are the member's own).
#[utoipa::path(put, path = "/api/v1/policies/ownership", tag = "policies",
    request_body = OwnershipPolicy,
    responses((status = 200, body = OwnershipPolicy),
        (status = 403, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn put_ownership(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<OwnershipPolicy>,
) -> Result<Json<OwnershipPolicy>, ApiError> {
    Ok(Json(state.hub.put_ownership_policy(&caller, body).await?))
}

/// The redaction policy (Administrators).
#[utoipa::path(get, path = "/api/v1/policies/redaction", tag = "policies",
    responses((status = 200, body = RedactionPolicy),
        (status = 403, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn get_redaction(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<RedactionPolicy>, ApiError> {
    Ok(Json(state.hub.redaction_policy(&caller).await?))
}

/// Replace the redaction rules (Administrators): per field or field-name pattern, per team,
/// `mask`, `partial`, `scramble` or `hide`; the strictest rule that applies wins.
#[utoipa::path(put, path = "/api/v1/policies/redaction", tag = "policies",
    request_body = RedactionPolicy,
    responses((status = 200, body = RedactionPolicy),
        (status = 403, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn put_redaction(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<RedactionPolicy>,
) -> Result<Json<RedactionPolicy>, ApiError> {
    Ok(Json(state.hub.put_redaction_policy(&caller, body).await?))
}
