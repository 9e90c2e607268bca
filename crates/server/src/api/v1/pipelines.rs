//! `/api/v1/pipelines*`: pipelines, their runs and the runs' per-record errors.

use crate::AppState;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated};
use crate::problem::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use lockstep_app::{PipelineView, RunErrorView, RunView};
use lockstep_domain::{PipelineId, RunId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A pipeline definition: `name` plus the specification (`source`, `destination`, `mappings`,
/// `rules`, `filter`, `mode`, `key`, `cursor`, `schedule`, `max_rejected_percent`).
#[derive(Debug, Deserialize)]
pub(crate) struct CreatePipeline {
    name: String,
    #[serde(flatten)]
    spec: serde_json::Map<String, serde_json::Value>,
}

/// A partial change: only the fields sent change. Each top-level specification field sent
/// replaces the stored one as a whole (`mappings` is the whole new list); `null` resets a field
/// to its default (`"schedule": null` removes the schedule). The result is checked like a new
/// pipeline's.
#[derive(Debug, Deserialize)]
pub(crate) struct PatchPipeline {
    name: Option<String>,
    /// Any of the specification's top-level fields.
    #[serde(flatten)]
    spec: serde_json::Map<String, serde_json::Value>,
}

impl utoipa::PartialSchema for CreatePipeline {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        super::bodies::new_pipeline()
    }
}

impl utoipa::ToSchema for CreatePipeline {
    fn schemas(
        out: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        super::bodies::pipeline_schemas(out);
    }
}

impl utoipa::PartialSchema for PatchPipeline {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        super::bodies::pipeline_patch()
    }
}

impl utoipa::ToSchema for PatchPipeline {
    fn schemas(
        out: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        super::bodies::pipeline_schemas(out);
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RunBody {
    id: RunId,
    pipeline_id: PipelineId,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    state: String,
    /// `manual` or `schedule`.
    trigger: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    requested_by: Option<UserId>,
    /// Who started it: `schedule` for scheduled runs, else the member's display name (for the
    /// member and for Editors and Administrators; absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    started_by: Option<String>,
    /// `records_read = records_written + records_rejected + records_skipped +
    /// records_held_back` once a run has succeeded.
    records_read: u64,
    records_written: u64,
    records_rejected: u64,
    /// Records the filter skipped.
    records_skipped: u64,
    /// Incremental runs: records read at or after the first rejected record's cursor and not
    /// written; the next run reads them again.
    records_held_back: u64,
    /// Failed warning-level validation rules (a record may count more than once).
    warnings: u64,
    /// `warnings` per rule: `{"rules[3]": 12}`.
    #[schema(value_type = Object)]
    warnings_by_rule: std::collections::BTreeMap<String, u64>,
    /// Records read per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    rate: Option<f64>,
    /// Why it failed, in the hub's words.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    cancel_requested: bool,
    attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    finished_at: Option<OffsetDateTime>,
    /// Seconds from start to end (or to now while running).
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_seconds: Option<f64>,
}

impl From<RunView> for RunBody {
    fn from(r: RunView) -> Self {
        let rate = r.rate();
        let duration_seconds = r
            .started_at
            .map(|start| (r.finished_at.unwrap_or(r.updated_at) - start).as_seconds_f64());
        RunBody {
            id: r.id,
            pipeline_id: r.pipeline_id,
            state: r.state_name().to_owned(),
            started_by: if r.trigger == "schedule" {
                Some("schedule".to_owned())
            } else {
                r.requested_by_name
            },
            trigger: r.trigger,
            requested_by: r.requested_by,
            records_read: r.records_read,
            records_written: r.records_written,
            records_rejected: r.records_rejected,
            records_skipped: r.records_skipped,
            records_held_back: r.records_held_back,
            warnings: r.warnings,
            warnings_by_rule: r.warning_counts,
            rate,
            message: r.message,
            cancel_requested: r.cancel_requested,
            attempts: r.attempts,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            duration_seconds,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PipelineBody {
    id: PipelineId,
    name: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    spec: serde_json::Value,
    #[serde(with = "time::serde::rfc3339::option")]
    next_run_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_run: Option<RunBody>,
}

impl From<PipelineView> for PipelineBody {
    fn from(p: PipelineView) -> Self {
        PipelineBody {
            id: p.id,
            name: p.name,
            spec: serde_json::to_value(&p.spec).unwrap_or(serde_json::Value::Null),
            next_run_at: p.next_run_at,
            created_at: p.created_at,
            updated_at: p.updated_at,
            last_run: p.last_run.map(RunBody::from),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PipelineList {
    pipelines: Vec<PipelineBody>,
}

fn pipeline_id(id: &str) -> Result<PipelineId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::invalid("id", "is not a pipeline id"))
}

fn run_id(id: &str) -> Result<RunId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::invalid("run", "is not a run id"))
}

/// Define a pipeline (Administrators and Editors). An invalid rule is refused with its position.
#[utoipa::path(post, path = "/api/v1/pipelines", tag = "pipelines",
    request_body = CreatePipeline,
    responses((status = 201, body = PipelineBody),
        (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 409, body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<CreatePipeline>,
) -> Result<(StatusCode, Json<PipelineBody>), ApiError> {
    let view = state
        .hub
        .create_pipeline(&caller, &body.name, serde_json::Value::Object(body.spec))
        .await?;
    Ok((StatusCode::CREATED, Json(view.into())))
}

/// The organization's pipelines (every role).
#[utoipa::path(get, path = "/api/v1/pipelines", tag = "pipelines",
    responses((status = 200, body = PipelineList)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<PipelineList>, ApiError> {
    let list = state.hub.list_pipelines(&caller).await?;
    Ok(Json(PipelineList {
        pipelines: list.into_iter().map(PipelineBody::from).collect(),
    }))
}

/// One pipeline (every role).
#[utoipa::path(get, path = "/api/v1/pipelines/{id}", tag = "pipelines",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = PipelineBody), (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<PipelineBody>, ApiError> {
    Ok(Json(
        state
            .hub
            .get_pipeline(&caller, pipeline_id(&id)?)
            .await?
            .into(),
    ))
}

/// Change some of a pipeline's fields (Administrators and Editors): absent fields keep their
/// stored value; see `PatchPipeline`.
#[utoipa::path(patch, path = "/api/v1/pipelines/{id}", tag = "pipelines",
    params(("id" = uuid::Uuid, Path)),
    request_body = PatchPipeline,
    responses((status = 409, description = "Another pipeline has this name", body = ApiError, content_type = "application/problem+json"),
        (status = 200, body = PipelineBody),
        (status = 404, body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn update(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PatchPipeline>,
) -> Result<Json<PipelineBody>, ApiError> {
    let id = pipeline_id(&id)?;
    let spec = if body.spec.is_empty() {
        None
    } else {
        let stored = state.hub.get_pipeline(&caller, id).await?;
        Some(merge_spec(&stored.spec, body.spec)?)
    };
    Ok(Json(
        state
            .hub
            .update_pipeline(&caller, id, body.name.as_deref(), spec)
            .await?
            .into(),
    ))
}

/// The stored specification with the given top-level fields merged over it (RFC 7396 at the
/// top level: a field sent replaces the stored one, `null` removes it).
fn merge_spec(
    stored: &lockstep_app::engine::PipelineSpec,
    changes: serde_json::Map<String, serde_json::Value>,
) -> Result<serde_json::Value, ApiError> {
    let Ok(serde_json::Value::Object(mut merged)) = serde_json::to_value(stored) else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "The stored pipeline could not be read",
        ));
    };
    for (field, value) in changes {
        if value.is_null() {
            merged.remove(&field);
        } else {
            merged.insert(field, value);
        }
    }
    Ok(serde_json::Value::Object(merged))
}

/// Delete a pipeline with its runs (Administrators and Editors).
#[utoipa::path(delete, path = "/api/v1/pipelines/{id}", tag = "pipelines",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state
        .hub
        .delete_pipeline(&caller, pipeline_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The run just queued.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RunStarted {
    id: RunId,
    state: String,
}

/// Start a run (Administrators and Editors); answers its id. One run of a pipeline at a time.
#[utoipa::path(post, path = "/api/v1/pipelines/{id}/runs", tag = "pipelines",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 202, body = RunStarted),
        (status = 404, body = ApiError, content_type = "application/problem+json"),
        (status = 409, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn start_run(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<RunStarted>), ApiError> {
    let run = state.hub.start_run(&caller, pipeline_id(&id)?).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RunStarted {
            id: run.id,
            state: run.state_name().to_owned(),
        }),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct Page {
    /// 1 to 500; default 50.
    limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RunList {
    runs: Vec<RunBody>,
}

/// A pipeline's runs, newest first (every role).
#[utoipa::path(get, path = "/api/v1/pipelines/{id}/runs", tag = "pipelines",
    params(("id" = uuid::Uuid, Path), Page),
    responses((status = 200, body = RunList), (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn list_runs(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<RunList>, ApiError> {
    let runs = state
        .hub
        .list_runs(&caller, pipeline_id(&id)?, page.limit.unwrap_or(50))
        .await?;
    Ok(Json(RunList {
        runs: runs.into_iter().map(RunBody::from).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunWait {
    /// Seconds to wait for the run to end before answering, 0 to 10 (default 0: at once). The
    /// answer comes as soon as the run has ended, so a client waiting for a run asks again
    /// with `wait` instead of polling.
    #[param(minimum = 0, maximum = 10)]
    wait: Option<u32>,
}

/// One run: state, progress and timings (every role); with `wait`, once it has ended or after
/// that many seconds.
#[utoipa::path(get, path = "/api/v1/pipelines/{id}/runs/{run}", tag = "pipelines",
    params(("id" = uuid::Uuid, Path), ("run" = uuid::Uuid, Path), RunWait),
    responses((status = 200, body = RunBody),
        (status = 404, body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn get_run(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, run)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<RunWait>,
) -> Result<Json<RunBody>, ApiError> {
    let (pipeline, run) = (pipeline_id(&id)?, run_id(&run)?);
    let view = match query.wait {
        None | Some(0) => state.hub.get_run(&caller, pipeline, run).await?,
        Some(seconds) => {
            let wait = std::time::Duration::from_secs(u64::from(seconds));
            state.hub.wait_run(&caller, pipeline, run, wait).await?
        }
    };
    Ok(Json(view.into()))
}

/// Cancel a run (Administrators and Editors): a queued run ends at once, a running one at its
/// next batch, and its writes are rolled back.
#[utoipa::path(post, path = "/api/v1/pipelines/{id}/runs/{run}/cancel", tag = "pipelines",
    params(("id" = uuid::Uuid, Path), ("run" = uuid::Uuid, Path)),
    responses((status = 200, body = RunBody),
        (status = 404, body = ApiError, content_type = "application/problem+json"),
        (status = 409, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn cancel_run(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, run)): ApiPath<(String, String)>,
) -> Result<Json<RunBody>, ApiError> {
    Ok(Json(
        state
            .hub
            .cancel_run(&caller, pipeline_id(&id)?, run_id(&run)?)
            .await?
            .into(),
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RunErrorBody {
    /// The record's key fields (or null).
    #[schema(value_type = Object)]
    key: serde_json::Value,
    /// Why, in words: a validation rule's own message, or what could not be evaluated or
    /// converted.
    reason: String,
    /// What rejected it: `rules[2]`, `mappings[1]`, `filter`.
    rule: String,
    /// `rule` (a validation rule said no) or `error` (an evaluation or conversion failed).
    #[schema(value_type = String)]
    kind: lockstep_app::RejectionKind,
    /// The fields the rule, mapping or filter refers to: the offending fields.
    fields: Vec<String>,
    #[schema(value_type = Object)]
    values: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RunErrorList {
    errors: Vec<RunErrorBody>,
}

impl From<RunErrorView> for RunErrorBody {
    fn from(e: RunErrorView) -> Self {
        RunErrorBody {
            key: e.key,
            reason: e.reason,
            rule: e.rule,
            kind: e.kind,
            fields: e.fields,
            values: e.values,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErrorsPage {
    /// 1 to 1000; default 50.
    limit: Option<u32>,
    offset: Option<u32>,
    /// Administrators: the records as a member (`user:ID`) or a team (`team:ID`) sees them
    /// under the data policies (audited).
    view_as: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ViewAsQuery {
    /// Administrators: the records as a member (`user:ID`) or a team (`team:ID`) sees them
    /// under the data policies (audited).
    view_as: Option<String>,
}

/// A run's rejected records with the reason (Administrators and Editors; audited).
#[utoipa::path(get, path = "/api/v1/pipelines/{id}/runs/{run}/errors", tag = "pipelines",
    params(("id" = uuid::Uuid, Path), ("run" = uuid::Uuid, Path), ErrorsPage),
    responses((status = 200, body = RunErrorList),
        (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn run_errors(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, run)): ApiPath<(String, String)>,
    ApiQuery(page): ApiQuery<ErrorsPage>,
) -> Result<Json<RunErrorList>, ApiError> {
    let view_as = super::policies::view_as(page.view_as.as_deref())?;
    let errors = state
        .hub
        .run_errors_as(
            &caller,
            pipeline_id(&id)?,
            run_id(&run)?,
            None,
            page.limit.unwrap_or(50),
            page.offset.unwrap_or(0),
            view_as,
        )
        .await?;
    Ok(Json(RunErrorList {
        errors: errors.into_iter().map(RunErrorBody::from).collect(),
    }))
}

/// A run's rejected records as CSV, every one of them (Administrators and Editors; audited as
/// `run_errors.exported`), in the order they were read: rule, kind, reason, key, the offending fields, then the
/// source fields as text. Cells that a spreadsheet would read as a formula start with `'`.
#[utoipa::path(get, path = "/api/v1/pipelines/{id}/runs/{run}/errors.csv", tag = "pipelines",
    params(("id" = uuid::Uuid, Path), ("run" = uuid::Uuid, Path), ViewAsQuery),
    responses((status = 200, content_type = "text/csv", body = String),
        (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn run_errors_csv(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, run)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<ViewAsQuery>,
) -> Result<axum::response::Response, ApiError> {
    let run = run_id(&run)?;
    let view_as = super::policies::view_as(query.view_as.as_deref())?;
    let errors = state
        .hub
        .export_run_errors_as(&caller, pipeline_id(&id)?, run, view_as)
        .await?;
    let body = crate::rejected_csv::build(&errors).map_err(|_| {
        ApiError::from(lockstep_app::AppError::Refused(
            "the CSV could not be written",
        ))
    })?;
    Ok(crate::rejected_csv::response(&run.to_string(), body))
}

/// Save how bills of materials uploaded through a pipeline are read (Administrators): the
/// import profile (`profile`: the format, header row, column roles and hierarchy a data set's
/// `bom.profile` shows, corrected; `null`: detected for each file) and whether a part the
/// destination does not know by code is matched by its name (`match_by_name`, default true).
#[utoipa::path(put, path = "/api/v1/pipelines/{id}/bom", tag = "pipelines",
    params(("id" = uuid::Uuid, Path)),
    request_body = lockstep_app::engine::BomSettings,
    responses((status = 200, body = PipelineBody),
        (status = 403, body = ApiError, content_type = "application/problem+json"),
        (status = 404, body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn set_bom(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<lockstep_app::engine::BomSettings>,
) -> Result<Json<PipelineBody>, ApiError> {
    let id = pipeline_id(&id)?;
    Ok(Json(
        state
            .hub
            .set_pipeline_bom_settings(&caller, id, body)
            .await?
            .into(),
    ))
}
