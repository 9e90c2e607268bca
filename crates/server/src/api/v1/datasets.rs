//! `/api/v1/datasets*`: data sets pulled through a pipeline, their records reviewed beside the
//! destination's, fixed, ticked and submitted; shared to read, handed over, deleted.
//!
//! A data set is visible to its owner, to the members it is shared with (to read) and to the
//! organization's Administrators; to anybody else it is 404, like a missing id. Sharees may
//! read only: their writes are 403 `owner-only`.

use crate::AppState;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated};
use crate::problem::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use lockstep_app::engine::Level;
use lockstep_app::{
    AppError, DatasetCounts, DatasetState, DatasetView, IssueFilter, ProcessSelection,
    RecordOutcome, RecordQuery, RecordStatus, RecordView,
};
use lockstep_domain::{DatasetId, PipelineId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Where a data set is in its life.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StateName {
    /// Records are being read.
    Pulling,
    /// Ready for review.
    Ready,
    /// The ticked records are being written.
    Submitting,
    /// The last submit wrote its records.
    Submitted,
    /// The pull failed (see `message`); nothing is kept.
    Failed,
}

impl From<DatasetState> for StateName {
    fn from(s: DatasetState) -> Self {
        match s {
            DatasetState::Pulling => StateName::Pulling,
            DatasetState::Ready => StateName::Ready,
            DatasetState::Submitting => StateName::Submitting,
            DatasetState::Submitted => StateName::Submitted,
            DatasetState::Failed => StateName::Failed,
        }
    }
}

/// A record compared with the destination: `create` (not there: inserted), `update` (there
/// with other values), `unchanged`, `destination_only` (only there: shown, never written; a
/// bill of materials' line is unlinked when ticked), `link` (a bill of materials' part the
/// destination has, not yet in this assembly: the line is added).
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StatusName {
    Create,
    Update,
    Unchanged,
    DestinationOnly,
    Link,
}

impl From<RecordStatus> for StatusName {
    fn from(s: RecordStatus) -> Self {
        match s {
            RecordStatus::Create => StatusName::Create,
            RecordStatus::Update => StatusName::Update,
            RecordStatus::Unchanged => StatusName::Unchanged,
            RecordStatus::DestinationOnly => StatusName::DestinationOnly,
            RecordStatus::Link => StatusName::Link,
        }
    }
}

/// What became of a record at the last submit.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OutcomeName {
    Submitted,
    Failed,
}

impl From<RecordOutcome> for OutcomeName {
    fn from(o: RecordOutcome) -> Self {
        match o {
            RecordOutcome::Submitted => OutcomeName::Submitted,
            RecordOutcome::Failed => OutcomeName::Failed,
        }
    }
}

/// Which records by their issues: `any` (an error or a warning), `errors`, `warnings`, `none`.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum IssuesName {
    Any,
    Errors,
    Warnings,
    None,
}

impl IssuesName {
    fn parse(s: &str) -> Option<IssueFilter> {
        let name = match s {
            "any" => IssuesName::Any,
            "errors" => IssuesName::Errors,
            "warnings" => IssuesName::Warnings,
            "none" => IssuesName::None,
            _ => return None,
        };
        Some(match name {
            IssuesName::Any => IssueFilter::Any,
            IssuesName::Errors => IssueFilter::Errors,
            IssuesName::Warnings => IssueFilter::Warnings,
            IssuesName::None => IssueFilter::None,
        })
    }
}

/// Counts of a data set's records.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CountsBody {
    /// Records in the data set (destination-only ones included).
    records: u64,
    create: u64,
    update: u64,
    unchanged: u64,
    destination_only: u64,
    /// Bill of materials lines whose part the destination has elsewhere.
    link: u64,
    /// Records with at least one error.
    errors: u64,
    /// Records with at least one warning.
    warnings: u64,
    /// Ticked records (a submit writes them).
    ticked: u64,
    /// Ticked records with an error: a submit is refused while there are any.
    ticked_with_errors: u64,
    /// Records the last submit wrote.
    submitted: u64,
    /// Records the last submit could not write.
    failed: u64,
    /// Source records read (so far, while pulling).
    read: u64,
    /// Source records the filters skipped.
    skipped: u64,
    /// Records written so far, while submitting.
    written: u64,
}

impl From<DatasetCounts> for CountsBody {
    fn from(c: DatasetCounts) -> Self {
        CountsBody {
            records: c.records,
            create: c.create,
            update: c.update,
            unchanged: c.unchanged,
            destination_only: c.destination_only,
            link: c.link,
            errors: c.errors,
            warnings: c.warnings,
            ticked: c.ticked,
            ticked_with_errors: c.ticked_with_errors,
            submitted: c.submitted,
            failed: c.failed,
            read: c.read,
            skipped: c.skipped,
            written: c.written,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DatasetBody {
    id: DatasetId,
    name: String,
    pipeline_id: PipelineId,
    /// The owning member's user id.
    owner: UserId,
    state: StateName,
    /// Why the pull or the last submit failed (names no value).
    message: Option<String>,
    counts: CountsBody,
    /// The record fields, in order (empty until the pull has read the source).
    fields: Vec<String>,
    /// The fields that identify a record (empty: every record is new).
    key: Vec<String>,
    /// The members it is shared with, to read.
    shared_with: Vec<UserId>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// Last opened, edited or submitted.
    #[serde(with = "time::serde::rfc3339")]
    touched_at: OffsetDateTime,
    /// When it is deleted unless somebody opens it before.
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    /// Whether you may edit, tick, pull again and submit it.
    may_edit: bool,
    /// Whether you may share, hand over and delete it.
    may_manage: bool,
    /// A data set read from a bill of materials: its file and how it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    bom: Option<BomBody>,
}

/// How a data set's bill of materials was read and what it is compared with.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct BomBody {
    /// The uploaded file's name.
    file_name: String,
    /// The file the records are compared with; none: the pipeline's destination.
    against: Option<String>,
    /// The assembly's part number.
    root: Option<String>,
    /// The import profile the file was read with (detected, or the pipeline's): correct it and
    /// save it on the pipeline (`PUT /api/v1/pipelines/{id}/bom`).
    #[schema(value_type = Object)]
    profile: serde_json::Value,
    /// The file's other columns, kept as record fields after the BOM's own.
    properties: Vec<String>,
}

impl From<DatasetView> for DatasetBody {
    fn from(d: DatasetView) -> Self {
        DatasetBody {
            id: d.id,
            name: d.name,
            pipeline_id: d.pipeline_id,
            owner: d.owner,
            state: d.state.into(),
            message: d.message,
            counts: d.counts.into(),
            fields: d.fields,
            key: d.key,
            shared_with: d.shared_with,
            created_at: d.created_at,
            touched_at: d.touched_at,
            expires_at: d.expires_at,
            may_edit: d.may_edit,
            may_manage: d.may_manage,
            bom: d.bom.map(|b| BomBody {
                file_name: b.file_name,
                against: b.against,
                root: b.root,
                profile: b.profile,
                properties: b.properties,
            }),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DatasetList {
    datasets: Vec<DatasetBody>,
}

/// A field whose value differs from the destination's.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ChangeBody {
    field: String,
    /// The destination's value.
    destination: serde_json::Value,
    /// The data set's value.
    value: serde_json::Value,
}

/// What is wrong with a record's field.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct IssueBody {
    field: String,
    level: Level,
    message: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RecordBody {
    /// The record's position in the data set, from 0.
    row: u64,
    /// The key fields and their values (empty without a key).
    #[schema(value_type = Object)]
    key: serde_json::Map<String, serde_json::Value>,
    #[schema(value_type = Object)]
    values: serde_json::Map<String, serde_json::Value>,
    status: StatusName,
    /// `update` records: the fields that differ, the destination's value beside the new one.
    changes: Vec<ChangeBody>,
    issues: Vec<IssueBody>,
    /// Ticked: a submit writes it.
    process: bool,
    outcome: Option<OutcomeName>,
    /// Why the last submit could not write it (the destination's reason, no value).
    outcome_message: Option<String>,
}

impl From<RecordView> for RecordBody {
    fn from(r: RecordView) -> Self {
        RecordBody {
            row: r.row,
            key: r.key,
            values: r.values,
            status: r.status.into(),
            changes: r
                .changes
                .into_iter()
                .map(|c| ChangeBody {
                    field: c.field,
                    destination: c.destination,
                    value: c.value,
                })
                .collect(),
            issues: r
                .issues
                .into_iter()
                .map(|i| IssueBody {
                    field: i.field,
                    level: i.level,
                    message: i.message,
                })
                .collect(),
            process: r.process,
            outcome: r.outcome.map(OutcomeName::from),
            outcome_message: r.outcome_message,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RecordList {
    records: Vec<RecordBody>,
    /// Records that match the query in all.
    total: u64,
    /// Records of this page the data policies withhold from the viewer (left out of it).
    withheld: u64,
}

pub(crate) fn dataset_id(id: &str) -> Result<DatasetId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::invalid("id", "is not a data set id"))
}

fn user_id(id: &str, field: &str) -> Result<UserId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::invalid(field, "is not a user id"))
}

fn row_number(row: &str) -> Result<u64, ApiError> {
    row.parse()
        .map_err(|_| ApiError::invalid("row", "must be a record's row number (0 or more)"))
}

fn status(s: &str, field: &str) -> Result<RecordStatus, ApiError> {
    RecordStatus::parse(s).ok_or_else(|| {
        ApiError::invalid(
            field,
            "must be one of create, link, update, unchanged, destination_only",
        )
    })
}

/// Pull a data set.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewDataset {
    /// The pipeline whose source, rules and destination the data set follows.
    #[schema(value_type = uuid::Uuid)]
    pipeline_id: String,
    /// Up to 200 characters; default: the pipeline's name and the time.
    name: Option<String>,
    /// A CEL expression over the source's fields, joined to the pipeline's own filter.
    filter: Option<String>,
}

/// Pull a data set through a pipeline (every role): answers at once with the data set in state
/// `pulling`; poll it until it is `ready` (or `failed`).
#[utoipa::path(post, path = "/api/v1/datasets", tag = "datasets",
    request_body = NewDataset,
    responses((status = 202, body = DatasetBody),
        (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn pull(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<NewDataset>,
) -> Result<(StatusCode, Json<DatasetBody>), ApiError> {
    let pipeline: PipelineId = body
        .pipeline_id
        .parse()
        .map_err(|_| ApiError::invalid("pipeline_id", "is not a pipeline id"))?;
    let view = state
        .hub
        .pull_dataset(
            &caller,
            pipeline,
            body.name.as_deref(),
            body.filter.as_deref(),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(view.into())))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Every data set of the organization (Administrators); default: yours and those shared
    /// with you.
    all: Option<bool>,
}

/// Your data sets and those shared with you; with `all=true`, every data set of the
/// organization (Administrators).
#[utoipa::path(get, path = "/api/v1/datasets", tag = "datasets",
    params(ListQuery),
    responses((status = 200, body = DatasetList)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<DatasetList>, ApiError> {
    let views = state
        .hub
        .list_datasets(&caller, query.all.unwrap_or(false))
        .await?;
    Ok(Json(DatasetList {
        datasets: views.into_iter().map(DatasetBody::from).collect(),
    }))
}

/// One data set (its owner, its sharees, Administrators). Opening it keeps it from expiring.
#[utoipa::path(get, path = "/api/v1/datasets/{id}", tag = "datasets",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = DatasetBody)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DatasetBody>, ApiError> {
    let view = state.hub.get_dataset(&caller, dataset_id(&id)?).await?;
    Ok(Json(view.into()))
}

/// Delete a data set at once, its key with it (the owner or an Administrator).
#[utoipa::path(delete, path = "/api/v1/datasets/{id}", tag = "datasets",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204),
        (status = 409, description = "It is being submitted", body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.hub.delete_dataset(&caller, dataset_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordsQuery {
    /// Records to skip (default 0).
    #[param(value_type = Option<u64>, minimum = 0)]
    offset: Option<String>,
    /// 1 to 500 (default 100).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// Only records of this status.
    #[param(value_type = Option<StatusName>)]
    status: Option<String>,
    /// Only records with (or without) issues.
    #[param(value_type = Option<IssuesName>)]
    issues: Option<String>,
    /// Administrators: the records as a member (`user:ID`) or a team (`team:ID`) sees them
    /// under the data policies (audited).
    view_as: Option<String>,
}

impl RecordsQuery {
    fn parse(&self) -> Result<RecordQuery, ApiError> {
        let offset = match &self.offset {
            None => 0,
            Some(o) => o
                .parse::<u64>()
                .map_err(|_| ApiError::invalid("offset", "must be a number, 0 or more"))?,
        };
        let max = lockstep_app::MAX_DATASET_PAGE;
        let limit = match &self.limit {
            None => 100,
            Some(l) => match l.parse::<u64>() {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => {
                    return Err(ApiError::invalid(
                        "limit",
                        format!("must be a number from 1 to {max}"),
                    ));
                }
            },
        };
        let status = self
            .status
            .as_deref()
            .map(|s| status(s, "status"))
            .transpose()?;
        let issues = self
            .issues
            .as_deref()
            .map(|s| {
                IssuesName::parse(s).ok_or_else(|| {
                    ApiError::invalid("issues", "must be one of any, errors, warnings, none")
                })
            })
            .transpose()?;
        Ok(RecordQuery {
            offset,
            limit,
            status,
            issues,
        })
    }
}

/// A page of a data set's records beside the destination's values, filtered by status and
/// issues (its owner, its sharees, Administrators).
#[utoipa::path(get, path = "/api/v1/datasets/{id}/records", tag = "datasets",
    params(("id" = uuid::Uuid, Path), RecordsQuery),
    responses((status = 200, body = RecordList)))]
pub(crate) async fn records(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<RecordsQuery>,
) -> Result<Json<RecordList>, ApiError> {
    let id = dataset_id(&id)?;
    let view_as = super::policies::view_as(query.view_as.as_deref())?;
    let query = query.parse()?;
    let page = state
        .hub
        .dataset_records_as(&caller, id, query, view_as)
        .await?;
    Ok(Json(RecordList {
        records: page.records.into_iter().map(RecordBody::from).collect(),
        total: page.total,
        withheld: page.withheld,
    }))
}

/// A change to one record: its values, its tick, or both (at least one).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordChange {
    /// Field → new value, each checked against the field's type; the pipeline's rules run
    /// again on the record. Fields computed by the pipeline cannot be edited.
    #[schema(value_type = Option<Object>)]
    values: Option<serde_json::Map<String, serde_json::Value>>,
    /// Tick (a submit writes it) or untick the record.
    process: Option<bool>,
}

/// Edit or tick one record (Editors and Administrators; the owner or an Administrator): answers
/// the record with its new status and issues.
#[utoipa::path(patch, path = "/api/v1/datasets/{id}/records/{row}", tag = "datasets",
    params(("id" = uuid::Uuid, Path), ("row" = u64, Path, minimum = 0)),
    request_body = RecordChange,
    responses((status = 200, body = RecordBody),
        (status = 409, description = "The data set is busy or has no records yet", body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn update_record(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, row)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<RecordChange>,
) -> Result<Json<RecordBody>, ApiError> {
    let id = dataset_id(&id)?;
    let row = row_number(&row)?;
    if body.values.is_none() && body.process.is_none() {
        return Err(ApiError::invalid(
            "values",
            "send values to change, process to tick or untick, or both",
        ));
    }
    let mut record = None;
    if let Some(values) = body.values {
        record = Some(
            state
                .hub
                .update_dataset_record(&caller, id, row, values)
                .await?,
        );
    }
    if let Some(process) = body.process {
        let ticked = state
            .hub
            .set_dataset_process(&caller, id, ProcessSelection::Rows(vec![row]), process)
            .await;
        match ticked {
            Ok(_) => {}
            Err(AppError::Invalid { field: "rows", .. }) => {
                // Either no such row, or a record only the destination has.
                return Err(match one_record(&state, &caller, id, row).await? {
                    None => AppError::NotFound("record").into(),
                    Some(_) => ApiError::invalid(
                        "process",
                        "the record is one only the destination has: it is never written, so \
                         it cannot be ticked",
                    ),
                });
            }
            Err(e) => return Err(e.into()),
        }
        record = one_record(&state, &caller, id, row).await?;
    }
    record
        .map(|r| Json(r.into()))
        .ok_or_else(|| AppError::NotFound("record").into())
}

/// The record at `row`, if there is one.
async fn one_record(
    state: &AppState,
    caller: &lockstep_app::Caller,
    id: DatasetId,
    row: u64,
) -> Result<Option<RecordView>, ApiError> {
    let page = state
        .hub
        .dataset_records(
            caller,
            id,
            RecordQuery {
                offset: row,
                limit: 1,
                status: None,
                issues: None,
            },
        )
        .await?;
    Ok(page.records.into_iter().next().filter(|r| r.row == row))
}

/// Tick or untick records: by row, or every record of a status (exactly one of the two).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProcessChange {
    /// The records' row numbers.
    rows: Option<Vec<u64>>,
    /// With `rows` of a bill of materials: every row below them too ("apply to children").
    with_children: Option<bool>,
    /// Every record of this status.
    #[schema(value_type = Option<StatusName>)]
    status: Option<String>,
    /// Tick (`true`) or untick (`false`).
    process: bool,
}

/// Tick or untick records (Editors and Administrators; the owner or an Administrator): answers
/// the new counts. Records only the destination has cannot be ticked.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/process", tag = "datasets",
    params(("id" = uuid::Uuid, Path)),
    request_body = ProcessChange,
    responses((status = 200, body = CountsBody),
        (status = 409, description = "The data set is busy", body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn process(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ProcessChange>,
) -> Result<Json<CountsBody>, ApiError> {
    let id = dataset_id(&id)?;
    let selection = match (body.rows, body.status) {
        (Some(rows), None) if body.with_children == Some(true) => ProcessSelection::Subtrees(rows),
        (Some(rows), None) => ProcessSelection::Rows(rows),
        (None, Some(s)) => ProcessSelection::Status(status(&s, "status")?),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "status",
                "send either rows or status, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "rows",
                "send rows (row numbers) or status (every record of that status)",
            ));
        }
    };
    let counts = state
        .hub
        .set_dataset_process(&caller, id, selection, body.process)
        .await?;
    Ok(Json(counts.into()))
}

/// Pull a data set again (Editors and Administrators; the owner or an Administrator): its
/// records are read anew and the edits whose records still exist are applied again.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/refresh", tag = "datasets",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 202, body = DatasetBody),
        (status = 409, description = "The data set is busy", body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn refresh(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<DatasetBody>), ApiError> {
    let view = state.hub.refresh_dataset(&caller, dataset_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(view.into())))
}

/// Write the ticked records to the destination by key (Editors and Administrators; the owner or
/// an Administrator); nothing is deleted there. Refused (422, `rows` naming up to 20 records)
/// while a ticked record has an error; poll the data set until it is `submitted`.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/submit", tag = "datasets",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 202, body = DatasetBody),
        (status = 409, description = "The data set is busy, failed or has nothing ticked", body = ApiError, content_type = "application/problem+json"),
        (status = 422, description = "Ticked records have errors (`rows` names them)", body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn submit(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<DatasetBody>), ApiError> {
    let view = state.hub.submit_dataset(&caller, dataset_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(view.into())))
}

/// A member of the organization.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Member {
    /// An active member's user id.
    #[schema(value_type = uuid::Uuid)]
    user_id: String,
}

/// Share a data set with a member of the organization, to read (the owner or an
/// Administrator).
#[utoipa::path(post, path = "/api/v1/datasets/{id}/shares", tag = "datasets",
    params(("id" = uuid::Uuid, Path)),
    request_body = Member,
    responses((status = 200, body = DatasetBody)))]
pub(crate) async fn share(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Member>,
) -> Result<Json<DatasetBody>, ApiError> {
    let id = dataset_id(&id)?;
    let user = user_id(&body.user_id, "user_id")?;
    let view = state.hub.share_dataset(&caller, id, user).await?;
    Ok(Json(view.into()))
}

/// Stop sharing a data set with a member (the owner or an Administrator).
#[utoipa::path(delete, path = "/api/v1/datasets/{id}/shares/{user_id}", tag = "datasets",
    params(("id" = uuid::Uuid, Path), ("user_id" = uuid::Uuid, Path)),
    responses((status = 200, body = DatasetBody)))]
pub(crate) async fn unshare(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, user)): ApiPath<(String, String)>,
) -> Result<Json<DatasetBody>, ApiError> {
    let id = dataset_id(&id)?;
    let user = user_id(&user, "user_id")?;
    let view = state.hub.unshare_dataset(&caller, id, user).await?;
    Ok(Json(view.into()))
}

/// Hand a data set to another member (the owner or an Administrator); the previous owner keeps
/// no access unless it is shared with them.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/transfer", tag = "datasets",
    params(("id" = uuid::Uuid, Path)),
    request_body = Member,
    responses((status = 200, body = DatasetBody)))]
pub(crate) async fn transfer(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Member>,
) -> Result<Json<DatasetBody>, ApiError> {
    let id = dataset_id(&id)?;
    let user = user_id(&body.user_id, "user_id")?;
    let view = state.hub.transfer_dataset(&caller, id, user).await?;
    Ok(Json(view.into()))
}
