//! Pages: data sets (issue 14). The list (the member's own and those shared with them;
//! Administrators may show all) with the form that pulls one through a pipeline; a data set's
//! page with its progress while pulling or submitting (htmx polling, a refresh link without
//! JavaScript), its counts, and the review grid: paged, filtered by status and issues, a colour
//! per status, issues marked on their cells, changes beside the destination's values, a tick per
//! record and per status, a small edit form per record; then submit, refresh, share, hand over
//! and delete.
//!
//! A data set read from a bill of materials has its own section on its page (the tree, its
//! parts' files, the import profile): see [`bom`].
//!
//! Every form is a plain form that posts and redirects; the use cases are the API's
//! (`Hub::*_dataset*`), which refuse what the member may not do. Record values are shown on the
//! page only (escaped); they never go into a URL or a log line.

mod bom;

use super::page::{
    FormErrors, NoticeQuery, Shell, WebError, render, render_status, see_other, when,
};
use super::session::{Posted, SignedIn};
use super::view_as::{self, ViewAsPicker};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use lockstep_app::engine::Level;
use lockstep_app::{
    AppError, BlockedRow, DatasetCounts, DatasetState, DatasetView, IssueFilter, ProcessSelection,
    RecordQuery, RecordStatus, RecordView, TimeZone,
};
use lockstep_domain::{DatasetId, PipelineId, UserId};
use lockstep_policy::Action;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .merge(bom::routes())
        .route("/datasets", get(list).post(pull))
        .route("/datasets/{id}", get(show))
        .route("/datasets/{id}/progress", get(progress))
        .route("/datasets/{id}/records/{row}", post(edit_record))
        .route("/datasets/{id}/ticks", post(save_ticks))
        .route("/datasets/{id}/ticks/status", post(tick_status))
        .route("/datasets/{id}/submit", post(submit))
        .route("/datasets/{id}/refresh", post(refresh))
        .route("/datasets/{id}/share", post(share))
        .route("/datasets/{id}/unshare", post(unshare))
        .route("/datasets/{id}/transfer", post(transfer))
        .route("/datasets/{id}/delete", post(delete))
}

/// Records per page of the review grid.
const PAGE_SIZE: u64 = 100;
/// The answer that stops htmx polling.
const STOP_POLLING: u16 = 286;

fn dataset_id(id: &str) -> Result<DatasetId, WebError> {
    id.parse().map_err(|_| WebError::not_found("data set"))
}

fn status_label(status: RecordStatus) -> &'static str {
    match status {
        RecordStatus::Create => "new",
        RecordStatus::Update => "changed",
        RecordStatus::Unchanged => "unchanged",
        RecordStatus::DestinationOnly => "only in the destination",
        RecordStatus::Link => "to link",
    }
}

fn state_label(state: DatasetState) -> &'static str {
    match state {
        DatasetState::Pulling => "pulling",
        DatasetState::Ready => "ready for review",
        DatasetState::Submitting => "submitting",
        DatasetState::Submitted => "submitted",
        DatasetState::Failed => "failed",
    }
}

/// A value as a cell shows it (and as an edit input holds it: null is empty).
fn shown(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A member's display name by id, or "a former member".
fn name_of(names: &HashMap<UserId, String>, id: UserId) -> String {
    names
        .get(&id)
        .cloned()
        .unwrap_or_else(|| "a former member".to_owned())
}

// ---------------------------------------------------------------------------------------------
// The list and the pull form.

/// A data set as the list shows it.
struct DatasetRow {
    id: String,
    name: String,
    owner: String,
    mine: bool,
    state: &'static str,
    state_label: &'static str,
    records: u64,
    create: u64,
    update: u64,
    errors: u64,
    ticked: u64,
    expires: String,
}

impl DatasetRow {
    fn new(v: &DatasetView, names: &HashMap<UserId, String>, me: UserId, zone: TimeZone) -> Self {
        DatasetRow {
            id: v.id.to_string(),
            name: v.name.clone(),
            owner: name_of(names, v.owner),
            mine: v.owner == me,
            state: v.state.as_str(),
            state_label: state_label(v.state),
            records: v.counts.records,
            create: v.counts.create,
            update: v.counts.update,
            errors: v.counts.errors,
            ticked: v.counts.ticked,
            expires: when(zone, v.expires_at),
        }
    }
}

/// What the pull form holds.
#[derive(Deserialize, Default, Clone)]
struct PullForm {
    #[serde(default)]
    pipeline_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    filter: String,
}

#[derive(Template)]
#[template(path = "datasets/list.html")]
struct ListPage {
    shell: Shell,
    datasets: Vec<DatasetRow>,
    /// Showing every data set of the organization (Administrators).
    all: bool,
    is_admin: bool,
    /// Pipelines by (id, name), for the pull form.
    pipelines: Vec<(String, String)>,
    form: PullForm,
    errors: FormErrors,
    /// Pipelines by (id, name) a bill of materials may be uploaded through.
    bom_pipelines: Vec<(String, String)>,
    upload: bom::UploadForm,
}

#[derive(Deserialize, Default)]
struct ListQuery {
    notice: Option<String>,
    all: Option<String>,
}

async fn list_page(
    state: &AppState,
    signed: &SignedIn,
    all: bool,
    form: PullForm,
    errors: FormErrors,
) -> Result<ListPage, WebError> {
    let views = state.hub.list_datasets(&signed.caller, all).await?;
    let names: HashMap<UserId, String> = state
        .hub
        .member_names(&signed.caller)
        .await?
        .into_iter()
        .collect();
    let views_of_pipelines = state.hub.list_pipelines(&signed.caller).await?;
    let bom_pipelines = bom::bom_pipelines(state, signed, &views_of_pipelines).await?;
    let pipelines = views_of_pipelines
        .into_iter()
        .map(|p| (p.id.to_string(), p.name))
        .collect();
    let me = signed.caller.user();
    Ok(ListPage {
        shell: signed.shell("Data sets", "datasets"),
        datasets: views
            .iter()
            .map(|v| DatasetRow::new(v, &names, me, signed.nav.time_zone))
            .collect(),
        all,
        is_admin: signed.nav.can(Action::ListAllDatasets),
        pipelines,
        form,
        errors,
        bom_pipelines,
        upload: bom::UploadForm::default(),
    })
}

async fn list(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    let all = query.all.as_deref() == Some("1");
    let notice = NoticeQuery {
        notice: query.notice,
    };
    let text = notice
        .text()
        .or_else(|| dataset_notice(notice.notice.as_deref()));
    let mut page = list_page(
        &state,
        &signed,
        all,
        PullForm::default(),
        FormErrors::none(),
    )
    .await?;
    page.shell = page.shell.with_notice(text);
    Ok(render(&page))
}

/// `POST /datasets`: pulls a data set through the chosen pipeline; its page follows the pull.
async fn pull(
    State(state): State<AppState>,
    Posted(signed, form): Posted<PullForm>,
) -> Result<Response, WebError> {
    let invalid = |errors: FormErrors| (StatusCode::UNPROCESSABLE_ENTITY, errors);
    let outcome = match form.pipeline_id.parse::<PipelineId>() {
        Err(_) => Err(invalid(
            FormErrors::none().field("pipeline_id", "Choose a pipeline."),
        )),
        Ok(pipeline) => {
            let name = Some(form.name.trim()).filter(|n| !n.is_empty());
            let filter = Some(form.filter.trim()).filter(|f| !f.is_empty());
            match state
                .hub
                .pull_dataset(&signed.caller, pipeline, name, filter)
                .await
            {
                Ok(view) => Ok(view),
                Err(err @ (AppError::Invalid { .. } | AppError::InvalidConfig { .. })) => {
                    Err(invalid(FormErrors::from_app(err)))
                }
                Err(err) => return Err(err.into()),
            }
        }
    };
    match outcome {
        Ok(view) => Ok(see_other(&format!("/datasets/{}?notice=pulling", view.id))),
        Err((status, errors)) => {
            let page = list_page(&state, &signed, false, form, errors).await?;
            Ok(render_status(status, &page))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One data set.

/// The counts and state, as the progress area shows them.
struct Progress {
    id: String,
    state: &'static str,
    state_label: &'static str,
    busy: bool,
    message: Option<String>,
    counts: DatasetCounts,
}

impl Progress {
    fn new(v: &DatasetView) -> Progress {
        Progress {
            id: v.id.to_string(),
            state: v.state.as_str(),
            state_label: state_label(v.state),
            busy: v.state.is_busy(),
            message: v.message.clone(),
            counts: v.counts.clone(),
        }
    }
}

/// One field of a record as a cell shows it.
struct Cell {
    field: String,
    value: String,
    is_null: bool,
    /// The destination's value where it differs (an `update` record).
    destination: Option<String>,
    /// "error", "warning" or "" (the cell's class).
    level: &'static str,
    /// The issues' messages, one line each (also in the cell's `title`).
    messages: Vec<String>,
    /// A data policy hides the field from the viewer (absent from the record).
    hidden: bool,
    /// The edit input's id.
    input_id: String,
    /// The value typed into the edit form when it was refused, else the value.
    typed: String,
    /// Why the edit of this field was refused.
    error: Option<String>,
}

impl Cell {
    fn title(&self) -> String {
        self.messages.join("\n")
    }
}

/// One record as the grid shows it.
struct Row {
    row: u64,
    /// Counted from 1 for people.
    number: u64,
    status: &'static str,
    status_label: &'static str,
    process: bool,
    /// `destination_only` records are never written, so they have no tick.
    tickable: bool,
    cells: Vec<Cell>,
    /// Issues on no field of the record (its key, a rule over several fields).
    other_issues: Vec<(String, &'static str)>,
    outcome: Option<&'static str>,
    outcome_message: Option<String>,
    /// The edit form's general message, when it was refused.
    edit_error: Option<String>,
    /// The edit form is open (it was refused and is shown again).
    editing: bool,
}

impl Row {
    fn new(r: RecordView, fields: &[String], refused: Option<&EditRefused>) -> Row {
        let refused = refused.filter(|e| e.row == r.row);
        let mut placed = vec![false; r.issues.len()];
        let cells = fields
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let hidden = !r.values.contains_key(field);
                let value = r.values.get(field).unwrap_or(&Value::Null);
                let mut level = "";
                let mut messages = Vec::new();
                for (j, issue) in r.issues.iter().enumerate() {
                    if issue.field == *field {
                        if let Some(p) = placed.get_mut(j) {
                            *p = true;
                        }
                        messages.push(issue.message.clone());
                        level = match (level, issue.level) {
                            ("error", _) | (_, Level::Error) => "error",
                            _ => "warning",
                        };
                    }
                }
                let destination = r
                    .changes
                    .iter()
                    .find(|c| c.field == *field)
                    .map(|c| shown(&c.destination));
                let typed = refused
                    .and_then(|e| e.typed.get(field).cloned())
                    .unwrap_or_else(|| shown(value));
                Cell {
                    field: field.clone(),
                    value: shown(value),
                    is_null: value.is_null(),
                    hidden,
                    destination,
                    level,
                    messages,
                    input_id: format!("edit-{}-{i}", r.row),
                    typed,
                    error: refused
                        .and_then(|e| e.errors.get(&format!("values.{field}")))
                        .map(str::to_owned),
                }
            })
            .collect();
        let other_issues = r
            .issues
            .iter()
            .zip(&placed)
            .filter(|(_, placed)| !**placed)
            .map(|(issue, _)| {
                let level = match issue.level {
                    Level::Error => "error",
                    Level::Warning => "warning",
                };
                (format!("{}: {}", issue.field, issue.message), level)
            })
            .collect();
        Row {
            row: r.row,
            number: r.row + 1,
            status: r.status.as_str(),
            status_label: status_label(r.status),
            process: r.process,
            tickable: r.status != RecordStatus::DestinationOnly,
            cells,
            other_issues,
            outcome: r.outcome.map(|o| o.as_str()),
            outcome_message: r.outcome_message,
            edit_error: refused.and_then(|e| edit_message(e, fields)),
            editing: refused.is_some(),
        }
    }
}

/// What a refused edit says above its fields: the general message, and the field errors no
/// input of the record shows (the record as a whole: "with these values the pipeline's filter
/// leaves the record out").
fn edit_message(refused: &EditRefused, fields: &[String]) -> Option<String> {
    let mut lines: Vec<String> = refused.errors.general.iter().cloned().collect();
    for (field, message) in refused.errors.fields() {
        let on_an_input = field
            .strip_prefix("values.")
            .is_some_and(|f| fields.iter().any(|x| x == f));
        if !on_an_input {
            lines.push(message.clone());
        }
    }
    (!lines.is_empty()).then(|| lines.join(" "))
}

/// An edit the use case refused, shown again on its row.
struct EditRefused {
    row: u64,
    typed: BTreeMap<String, String>,
    errors: FormErrors,
}

/// A filter link of the grid.
struct FilterLink {
    label: String,
    href: String,
    current: bool,
}

/// `?status=update&issues=errors&page=2`: which records the grid shows.
#[derive(Deserialize, Default, Clone)]
struct GridQuery {
    notice: Option<String>,
    status: Option<String>,
    issues: Option<String>,
    page: Option<u64>,
    /// A bill of materials' tree: `all` shows every level at once (without JavaScript).
    levels: Option<String>,
    /// A bill of materials' tree: the first top-level line shown.
    top: Option<u64>,
    /// Administrators: the records as this member or team sees them (`user:ID`, `team:ID`).
    view_as: Option<String>,
}

impl GridQuery {
    fn status(&self) -> Option<RecordStatus> {
        self.status.as_deref().and_then(RecordStatus::parse)
    }

    fn issues(&self) -> Option<IssueFilter> {
        self.issues.as_deref().and_then(IssueFilter::parse)
    }

    /// The grid's link with these filters and `page` (only known filter words go in).
    fn link(&self, id: &str, status: Option<&str>, issues: Option<&str>, page: u64) -> String {
        let mut params = Vec::new();
        if let Some(s) = status.and_then(RecordStatus::parse) {
            params.push(format!("status={}", s.as_str()));
        }
        if let Some(i) = issues.filter(|i| IssueFilter::parse(i).is_some()) {
            params.push(format!("issues={i}"));
        }
        if page > 1 {
            params.push(format!("page={page}"));
        }
        // Only a well-formed `user:ID` or `team:ID` goes in (never a value of the user's).
        if let Some(Ok(v)) = self.view_as.as_deref().map(lockstep_app::ViewAs::parse) {
            params.push(match v {
                lockstep_app::ViewAs::User(id) => format!("view_as=user:{id}"),
                lockstep_app::ViewAs::Team(id) => format!("view_as=team:{id}"),
            });
        }
        if params.is_empty() {
            format!("/datasets/{id}#records")
        } else {
            format!("/datasets/{id}?{}#records", params.join("&"))
        }
    }
}

/// A member in a picker.
struct MemberOption {
    id: String,
    name: String,
}

#[derive(Template)]
#[template(path = "datasets/show.html")]
struct ShowPage {
    shell: Shell,
    id: String,
    pipeline_id: String,
    owner: String,
    mine: bool,
    created: String,
    expires: String,
    progress: Progress,
    fields: Vec<String>,
    key: String,
    rows: Vec<Row>,
    /// Records that match the filters.
    total: u64,
    page: u64,
    pages: u64,
    previous: Option<String>,
    next: Option<String>,
    status_links: Vec<FilterLink>,
    issue_links: Vec<FilterLink>,
    /// The current filters, kept by the forms that come back to the grid.
    back: String,
    may_edit: bool,
    may_manage: bool,
    /// Why Submit is disabled, if it is.
    submit_blocked: Option<String>,
    /// The records a refused submit named.
    blocked: Vec<(u64, String)>,
    /// A refused action's message (the form's general error).
    alert: Option<String>,
    /// Shared with, by (id, name).
    shared_with: Vec<MemberOption>,
    /// Members it may be shared with or handed to.
    candidates: Vec<MemberOption>,
    share_errors: FormErrors,
    transfer_errors: FormErrors,
    /// Statuses with records, for "tick all / untick all".
    statuses: Vec<(&'static str, &'static str, u64)>,
    /// A data set read from a bill of materials: its tree and forms.
    bom: Option<bom::BomSection>,
    /// "View as" for Administrators.
    picker: Option<ViewAsPicker>,
    /// "N records on this page are withheld by data policies".
    withheld: Option<String>,
    hidden_title: &'static str,
}

/// What a page shows besides the data set: a refused action, shown again.
#[derive(Default)]
struct Refusal {
    alert: Option<String>,
    blocked: Vec<(u64, String)>,
    edit: Option<EditRefused>,
    share: FormErrors,
    transfer: FormErrors,
    bom: bom::BomRefusal,
}

async fn show_page(
    state: &AppState,
    signed: &SignedIn,
    id: DatasetId,
    query: &GridQuery,
    refusal: Refusal,
) -> Result<ShowPage, WebError> {
    let view_as = view_as::parse(query.view_as.as_deref())?;
    let view = state.hub.get_dataset(&signed.caller, id).await?;
    let bom = match &view.bom {
        Some(info) => Some(bom::section(state, signed, &view, info, query, refusal.bom).await?),
        None => None,
    };
    let records = if view.state == DatasetState::Pulling {
        lockstep_app::RecordPage {
            records: Vec::new(),
            total: 0,
            withheld: 0,
        }
    } else {
        let page = query.page.unwrap_or(1).max(1);
        state
            .hub
            .dataset_records_as(
                &signed.caller,
                id,
                RecordQuery {
                    offset: (page - 1).saturating_mul(PAGE_SIZE),
                    limit: PAGE_SIZE,
                    status: query.status(),
                    issues: query.issues(),
                },
                view_as,
            )
            .await?
    };
    let names: HashMap<UserId, String> = state
        .hub
        .member_names(&signed.caller)
        .await?
        .into_iter()
        .collect();
    let zone = signed.nav.time_zone;
    let id_text = id.to_string();
    let pages = records.total.div_ceil(PAGE_SIZE).max(1);
    let page = query.page.unwrap_or(1).clamp(1, pages);
    let status = query.status().map(RecordStatus::as_str);
    let issues = query
        .issues
        .as_deref()
        .filter(|i| IssueFilter::parse(i).is_some());
    let counts = &view.counts;
    let mut status_links = vec![FilterLink {
        label: format!("All ({})", counts.records),
        href: query.link(&id_text, None, issues, 1),
        current: status.is_none(),
    }];
    let mut statuses = Vec::new();
    for s in RecordStatus::ALL {
        let n = match s {
            RecordStatus::Create => counts.create,
            RecordStatus::Update => counts.update,
            RecordStatus::Unchanged => counts.unchanged,
            RecordStatus::DestinationOnly => counts.destination_only,
            // Only a bill of materials has lines to link.
            RecordStatus::Link if counts.link == 0 => continue,
            RecordStatus::Link => counts.link,
        };
        status_links.push(FilterLink {
            label: format!("{} ({n})", capitalized(status_label(s))),
            href: query.link(&id_text, Some(s.as_str()), issues, 1),
            current: status == Some(s.as_str()),
        });
        if n > 0 && s != RecordStatus::DestinationOnly {
            statuses.push((s.as_str(), status_label(s), n));
        }
    }
    let issue_links = [
        (None, "Any".to_owned()),
        (Some("errors"), format!("With errors ({})", counts.errors)),
        (
            Some("warnings"),
            format!("With warnings ({})", counts.warnings),
        ),
        (Some("none"), "Without issues".to_owned()),
    ]
    .into_iter()
    .map(|(i, label)| FilterLink {
        label,
        href: query.link(&id_text, status, i, 1),
        current: issues == i,
    })
    .collect();
    let submit_blocked = if counts.ticked_with_errors > 0 {
        Some(format!(
            "{} ticked record{} errors: fix or untick {} first.",
            counts.ticked_with_errors,
            if counts.ticked_with_errors == 1 {
                " has"
            } else {
                "s have"
            },
            if counts.ticked_with_errors == 1 {
                "it"
            } else {
                "them"
            },
        ))
    } else if view.state.is_busy() {
        Some("Wait for the pull or submit to end.".to_owned())
    } else if view.state == DatasetState::Failed {
        Some("The pull failed: pull the data set again first.".to_owned())
    } else if counts.ticked == 0 {
        Some("No record is ticked: nothing to submit.".to_owned())
    } else {
        None
    };
    let member = |id: &UserId| MemberOption {
        id: id.to_string(),
        name: name_of(&names, *id),
    };
    let candidates = if view.may_manage {
        let mut list: Vec<(UserId, String)> = names
            .iter()
            .filter(|(u, _)| **u != view.owner)
            .map(|(u, n)| (*u, n.clone()))
            .collect();
        list.sort_by_cached_key(|(u, n)| (n.to_lowercase(), u.to_string()));
        list.into_iter()
            .map(|(id, name)| MemberOption {
                id: id.to_string(),
                name,
            })
            .collect()
    } else {
        Vec::new()
    };
    let notice = NoticeQuery {
        notice: query.notice.clone(),
    };
    let mut kept: Vec<(String, String)> = Vec::new();
    if let Some(s) = status {
        kept.push(("status".to_owned(), s.to_owned()));
    }
    if let Some(i) = issues {
        kept.push(("issues".to_owned(), i.to_owned()));
    }
    let picker =
        view_as::picker(state, signed, format!("/datasets/{id_text}"), kept, view_as).await?;
    let withheld = view_as::withheld_line(records.withheld);
    let rows = records
        .records
        .into_iter()
        .map(|r| Row::new(r, &view.fields, refusal.edit.as_ref()))
        .collect();
    let back = {
        let link = query.link(&id_text, status, issues, page);
        let path = link.trim_end_matches("#records");
        path.strip_prefix(&format!("/datasets/{id_text}"))
            .unwrap_or("")
            .to_owned()
    };
    Ok(ShowPage {
        shell: signed.shell(view.name.clone(), "datasets").with_notice(
            notice
                .text()
                .or_else(|| dataset_notice(query.notice.as_deref())),
        ),
        id: id_text.clone(),
        pipeline_id: view.pipeline_id.to_string(),
        owner: name_of(&names, view.owner),
        mine: view.owner == signed.caller.user(),
        created: when(zone, view.created_at),
        expires: when(zone, view.expires_at),
        progress: Progress::new(&view),
        key: view.key.join(", "),
        fields: view.fields.clone(),
        rows,
        total: records.total,
        page,
        pages,
        previous: (page > 1).then(|| query.link(&id_text, status, issues, page - 1)),
        next: (page < pages).then(|| query.link(&id_text, status, issues, page + 1)),
        status_links,
        issue_links,
        back,
        // Values as another sees them are not edited or ticked from here.
        may_edit: view.may_edit && view_as.is_none(),
        may_manage: view.may_manage,
        submit_blocked,
        blocked: refusal.blocked,
        alert: refusal.alert,
        shared_with: view.shared_with.iter().map(member).collect(),
        candidates,
        share_errors: refusal.share,
        transfer_errors: refusal.transfer,
        statuses,
        bom,
        picker,
        withheld,
        hidden_title: view_as::HIDDEN_TITLE,
    })
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The texts of this area's own `?notice=` codes.
fn dataset_notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "pulling" => "The records are being pulled.",
        "edited" => "The record was changed and checked again.",
        "unchanged" => "Nothing was changed.",
        "ticks" => "The ticks were saved.",
        "submitting" => "The ticked records are being written to the destination.",
        "shared" => "The data set was shared.",
        "unshared" => "The data set is no longer shared with them.",
        "transferred" => "The data set was handed over.",
        "files" => "The files were added to their parts.",
        "profile" => {
            "The import profile was saved: the next file uploaded through the pipeline is read with it."
        }
        _ => return None,
    })
}

async fn show(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    Query(query): Query<GridQuery>,
) -> Result<Response, WebError> {
    let id = dataset_id(&id)?;
    let page = show_page(&state, &signed, id, &query, Refusal::default()).await?;
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "datasets/progress.html")]
struct ProgressFragment {
    progress: Progress,
    polled: bool,
}

/// `GET …/progress` (htmx polling): the progress area; once nothing is going on, status 286
/// (htmx stops polling) and `HX-Refresh` (the page shows the records).
async fn progress(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let view = state
        .hub
        .get_dataset(&signed.caller, dataset_id(&id)?)
        .await?;
    let fragment = ProgressFragment {
        progress: Progress::new(&view),
        polled: true,
    };
    if fragment.progress.busy {
        return Ok(render(&fragment));
    }
    let status = StatusCode::from_u16(STOP_POLLING).unwrap_or(StatusCode::OK);
    let mut response = render_status(status, &fragment);
    response
        .headers_mut()
        .insert("hx-refresh", HeaderValue::from_static("true"));
    Ok(response)
}

/// Where a form sends the browser back to: the grid with the filters it came from.
fn back_to(id: DatasetId, back: Option<&str>, notice: &str) -> String {
    // Only the grid's own query words come back (never a value of the user's).
    let query: GridQuery = back
        .and_then(|b| b.strip_prefix('?'))
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let id_text = id.to_string();
    let link = query.link(
        &id_text,
        query.status().map(RecordStatus::as_str),
        query
            .issues
            .as_deref()
            .filter(|i| IssueFilter::parse(i).is_some()),
        query.page.unwrap_or(1),
    );
    let (path, fragment) = link.split_once('#').unwrap_or((&link, "records"));
    let joiner = if path.contains('?') { '&' } else { '?' };
    format!("{path}{joiner}notice={notice}#{fragment}")
}

/// The query a form came from (its `back` field), to show the page again as it was.
fn grid_query(back: Option<&str>) -> GridQuery {
    back.and_then(|b| b.strip_prefix('?'))
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default()
}

/// `POST …/records/{row}`: the record's edit form. Fields come as `values.<field>` with the
/// value shown as `was.<field>`; only the changed ones are sent to the use case.
async fn edit_record(
    State(state): State<AppState>,
    Path((id, row)): Path<(String, String)>,
    Posted(signed, form): Posted<BTreeMap<String, String>>,
) -> Result<Response, WebError> {
    let id = dataset_id(&id)?;
    let row: u64 = row.parse().map_err(|_| WebError::not_found("record"))?;
    let back = form.get("back").map(String::as_str);
    let mut typed = BTreeMap::new();
    let mut values = serde_json::Map::new();
    for (name, value) in &form {
        let Some(field) = name.strip_prefix("values.") else {
            continue;
        };
        typed.insert(field.to_owned(), value.clone());
        let was = form.get(&format!("was.{field}"));
        if was.is_some_and(|w| w == value) {
            continue;
        }
        let value = if value.is_empty() {
            Value::Null
        } else {
            Value::String(value.clone())
        };
        values.insert(field.to_owned(), value);
    }
    if values.is_empty() {
        return Ok(see_other(&back_to(id, back, "unchanged")));
    }
    match state
        .hub
        .update_dataset_record(&signed.caller, id, row, values)
        .await
    {
        Ok(_) => Ok(see_other(&back_to(id, back, "edited"))),
        Err(err @ (AppError::Invalid { .. } | AppError::InvalidConfig { .. })) => {
            let refusal = Refusal {
                edit: Some(EditRefused {
                    row,
                    typed,
                    errors: FormErrors::from_app(err),
                }),
                ..Refusal::default()
            };
            let page = show_page(&state, &signed, id, &grid_query(back), refusal).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(err) => Err(err.into()),
    }
}

/// `POST …/ticks`: the grid's tick boxes. `shown.<row>` names each record the page showed with
/// a box, `tick.<row>` each box left ticked; the others shown are unticked.
async fn save_ticks(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, form): Posted<BTreeMap<String, String>>,
) -> Result<Response, WebError> {
    let id = dataset_id(&id)?;
    let rows = |prefix: &str| -> Vec<u64> {
        form.keys()
            .filter_map(|k| k.strip_prefix(prefix))
            .filter_map(|r| r.parse().ok())
            .collect()
    };
    let ticked = rows("tick.");
    let unticked: Vec<u64> = rows("shown.")
        .into_iter()
        .filter(|r| !ticked.contains(r))
        .collect();
    if !ticked.is_empty() {
        state
            .hub
            .set_dataset_process(&signed.caller, id, ProcessSelection::Rows(ticked), true)
            .await?;
    }
    if !unticked.is_empty() {
        state
            .hub
            .set_dataset_process(&signed.caller, id, ProcessSelection::Rows(unticked), false)
            .await?;
    }
    Ok(see_other(&back_to(
        id,
        form.get("back").map(String::as_str),
        "ticks",
    )))
}

#[derive(Deserialize)]
struct StatusTickForm {
    status: String,
    /// "on" ticks, anything else unticks.
    process: String,
    back: Option<String>,
}

/// `POST …/ticks/status`: ticks or unticks every record of a status.
async fn tick_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, form): Posted<StatusTickForm>,
) -> Result<Response, WebError> {
    let id = dataset_id(&id)?;
    let status = RecordStatus::parse(&form.status)
        .ok_or_else(|| WebError::bad_request("Choose a status of the data set's records."))?;
    state
        .hub
        .set_dataset_process(
            &signed.caller,
            id,
            ProcessSelection::Status(status),
            form.process == "on",
        )
        .await?;
    Ok(see_other(&back_to(id, form.back.as_deref(), "ticks")))
}

#[derive(Deserialize)]
struct BackForm {
    back: Option<String>,
}

/// `POST …/submit`: writes the ticked records; refused, naming the records, while a ticked one
/// has an error.
async fn submit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, form): Posted<BackForm>,
) -> Result<Response, WebError> {
    let id = dataset_id(&id)?;
    match state.hub.submit_dataset(&signed.caller, id).await {
        Ok(_) => Ok(see_other(&format!("/datasets/{id}?notice=submitting"))),
        Err(AppError::Blocked { reason, rows }) => {
            let refusal = Refusal {
                alert: Some(capitalized(&reason)),
                blocked: rows.into_iter().map(blocked_row).collect(),
                ..Refusal::default()
            };
            let query = grid_query(form.back.as_deref());
            let page = show_page(&state, &signed, id, &query, refusal).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(err @ AppError::Refused(_)) => {
            let refusal = Refusal {
                alert: FormErrors::from_app(err).general,
                ..Refusal::default()
            };
            let query = grid_query(form.back.as_deref());
            let page = show_page(&state, &signed, id, &query, refusal).await?;
            Ok(render_status(StatusCode::CONFLICT, &page))
        }
        Err(err) => Err(err.into()),
    }
}

fn blocked_row(r: BlockedRow) -> (u64, String) {
    (r.row + 1, r.issues.join("; "))
}

/// `POST …/refresh`: pulls the records again (edits whose keys still exist are kept).
async fn refresh(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, _form): Posted<BackForm>,
) -> Result<Response, WebError> {
    let id = dataset_id(&id)?;
    state.hub.refresh_dataset(&signed.caller, id).await?;
    Ok(see_other(&format!("/datasets/{id}?notice=pulling")))
}

#[derive(Deserialize)]
struct MemberForm {
    #[serde(default)]
    user_id: String,
}

/// The member a share or hand-over form picked.
fn picked(form: &MemberForm) -> Result<UserId, AppError> {
    form.user_id.parse().map_err(|_| AppError::Invalid {
        field: "user_id",
        reason: "choose a member".to_owned(),
    })
}

/// The answer to a share or hand-over: `done` after it, or the page again with a wrong member
/// shown next to the picker.
async fn member_changed(
    state: &AppState,
    signed: &SignedIn,
    id: DatasetId,
    outcome: Result<DatasetView, AppError>,
    transfer: bool,
    done: &str,
) -> Result<Response, WebError> {
    match outcome {
        Ok(_) => Ok(see_other(done)),
        Err(err @ AppError::Invalid { .. }) => {
            let errors = FormErrors::from_app(err);
            let refusal = if transfer {
                Refusal {
                    transfer: errors,
                    ..Refusal::default()
                }
            } else {
                Refusal {
                    share: errors,
                    ..Refusal::default()
                }
            };
            let page = show_page(state, signed, id, &GridQuery::default(), refusal).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(err) => Err(err.into()),
    }
}

async fn share(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, form): Posted<MemberForm>,
) -> Result<Response, WebError> {
    let id = dataset_id(&id)?;
    let outcome = match picked(&form) {
        Ok(user) => state.hub.share_dataset(&signed.caller, id, user).await,
        Err(err) => Err(err),
    };
    let done = format!("/datasets/{id}?notice=shared#sharing");
    member_changed(&state, &signed, id, outcome, false, &done).await
}

async fn unshare(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, form): Posted<MemberForm>,
) -> Result<Response, WebError> {
    let id = dataset_id(&id)?;
    let user: UserId = form
        .user_id
        .parse()
        .map_err(|_| WebError::not_found("share"))?;
    state.hub.unshare_dataset(&signed.caller, id, user).await?;
    Ok(see_other(&format!(
        "/datasets/{id}?notice=unshared#sharing"
    )))
}

async fn transfer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, form): Posted<MemberForm>,
) -> Result<Response, WebError> {
    let id = dataset_id(&id)?;
    let outcome = match picked(&form) {
        Ok(user) => state.hub.transfer_dataset(&signed.caller, id, user).await,
        Err(err) => Err(err),
    };
    // The previous owner may no longer see it (unless an Administrator or shared with).
    member_changed(
        &state,
        &signed,
        id,
        outcome,
        true,
        "/datasets?notice=transferred",
    )
    .await
}

#[derive(Deserialize)]
struct DeleteForm {
    /// The "delete it with its records" box: required.
    confirm: Option<String>,
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, form): Posted<DeleteForm>,
) -> Result<Response, WebError> {
    let id = dataset_id(&id)?;
    if form.confirm.is_none() {
        let refusal = Refusal {
            alert: Some(
                "Tick “Delete it with its records” to confirm: nothing was deleted.".to_owned(),
            ),
            ..Refusal::default()
        };
        let page = show_page(&state, &signed, id, &GridQuery::default(), refusal).await?;
        return Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    state.hub.delete_dataset(&signed.caller, id).await?;
    Ok(see_other("/datasets?notice=deleted"))
}
