//! `DELETE /api/v1/pipelines/{id}/runs` and `DELETE /api/v1/runs`: Administrators delete run
//! history (finished runs and their per-record errors) before its time.

use crate::AppState;
use crate::extract::{ApiPath, ApiQuery, Authenticated};
use crate::problem::ApiError;
use axum::Json;
use axum::extract::State;
use lockstep_app::RunHistoryDeleted;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct CutOff {
    /// RFC 3339: only runs started before this time; absent: every finished run.
    #[param(format = DateTime)]
    before: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Deleted {
    runs_deleted: u64,
    errors_deleted: u64,
}

impl From<RunHistoryDeleted> for Deleted {
    fn from(d: RunHistoryDeleted) -> Self {
        Deleted {
            runs_deleted: d.runs_deleted,
            errors_deleted: d.errors_deleted,
        }
    }
}

/// Delete a pipeline's finished runs started before `before` (all of them without it) with
/// their per-record errors (Administrators; audited `pipeline.runs_deleted`). Queued and
/// running runs are kept.
#[utoipa::path(delete, path = "/api/v1/pipelines/{id}/runs", tag = "pipelines",
    params(("id" = uuid::Uuid, Path), CutOff),
    responses((status = 200, body = Deleted),
        (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 404, body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn delete_pipeline_runs(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<CutOff>,
) -> Result<Json<Deleted>, ApiError> {
    let id = id
        .parse()
        .map_err(|_| ApiError::invalid("id", "is not a pipeline id"))?;
    let deleted = state
        .hub
        .delete_pipeline_run_history(&caller, id, query.before.as_deref())
        .await?;
    Ok(Json(deleted.into()))
}

/// Delete every pipeline's finished runs started before `before` (all of them without it)
/// with their per-record errors (Administrators; audited `organization.runs_deleted`). Queued
/// and running runs are kept.
#[utoipa::path(delete, path = "/api/v1/runs", tag = "pipelines",
    params(CutOff),
    responses((status = 200, body = Deleted),
        (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn delete_runs(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(query): ApiQuery<CutOff>,
) -> Result<Json<Deleted>, ApiError> {
    let deleted = state
        .hub
        .delete_organization_run_history(&caller, query.before.as_deref())
        .await?;
    Ok(Json(deleted.into()))
}
