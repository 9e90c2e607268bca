//! Pages: pipelines (the list, one form to define or change one with selects fed by discovery,
//! the definition with its runs) and runs (live progress over htmx polling, cancel, and the
//! rejected records for Editors and Administrators; Administrators delete run history by hand,
//! [`history`]).
//!
//! The form is in [`form`]; the start page, built from pipelines and runs, in [`dashboard`].

mod dashboard;
mod form;
mod history;

use super::page::{NoticeQuery, Shell, WebError, render, render_status, see_other, when};
use super::session::{Posted, SignedIn};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use form::{PipelineForm, create, edit_form, fields_fragment, new_form, objects_fragment, update};
use lockstep_app::{
    AppError, PipelineView, RejectionGroup, RejectionKind, RunErrorView, RunView, TimeZone,
};
use lockstep_domain::{PipelineId, Role, RunId};
use lockstep_policy::Action;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(dashboard::dashboard))
        .route("/pipelines", get(list).post(create))
        .route("/pipelines/new", get(new_form))
        .route("/pipelines/form/objects", get(objects_fragment))
        .route("/pipelines/form/fields", get(fields_fragment))
        .route("/pipelines/{id}", get(show).post(update))
        .route("/pipelines/{id}/edit", get(edit_form))
        .route("/pipelines/{id}/delete", post(delete))
        .route("/pipelines/{id}/run", post(run_now))
        .route("/pipelines/{id}/runs/delete", post(history::delete_history))
        .route("/pipelines/{id}/runs/{run}", get(run_page))
        .route("/pipelines/{id}/runs/{run}/progress", get(progress))
        .route("/pipelines/{id}/runs/{run}/cancel", post(cancel))
        .route("/pipelines/{id}/runs/{run}/rejected.csv", get(rejected_csv))
}

/// Rejected records per page of a run's page.
const ERRORS_SHOWN: u32 = 50;
/// Runs shown on a pipeline's page.
const RUNS_SHOWN: u32 = 50;
/// The answer that stops htmx polling.
const STOP_POLLING: u16 = 286;
/// The sync modes and how the form names them.
const MODES: [(&str, &str); 4] = [
    ("full_refresh", "Full refresh: replace the destination"),
    ("append", "Append: add the records read"),
    ("upsert", "Upsert: insert or update by key"),
    (
        "incremental",
        "Incremental: only records after the cursor, upserted by key",
    ),
];

fn pipeline_id(id: &str) -> Result<PipelineId, WebError> {
    id.parse().map_err(|_| WebError::not_found("pipeline"))
}

fn run_id(id: &str) -> Result<RunId, WebError> {
    id.parse().map_err(|_| WebError::not_found("run"))
}

/// Pages that only Editors and Administrators can use (the use cases refuse the rest anyway).
fn require_editor(signed: &SignedIn) -> Result<(), WebError> {
    if signed.nav.can_edit() {
        Ok(())
    } else {
        Err(AppError::Forbidden {
            needs: Role::Editor,
        }
        .into())
    }
}

/// An enum's serde name (`full_refresh`, `timestamp_tz`).
fn snake<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

fn mode_label(mode: &str) -> &str {
    MODES
        .iter()
        .find(|(m, _)| *m == mode)
        .map_or(mode, |(_, label)| label.split(':').next().unwrap_or(mode))
}

// ---------------------------------------------------------------------------------------------
// The list and one pipeline.

/// A run as pages show it.
struct RunInfo {
    id: String,
    state: &'static str,
    /// The state in words (`succeeded with rejections`).
    state_label: String,
    finished: bool,
    /// Who started it: a name, `schedule`, or `a member` for those who may not see names.
    started_by: String,
    /// The id of the member who started it, shown on hover next to their name.
    started_by_id: Option<String>,
    read: u64,
    written: u64,
    rejected: u64,
    skipped: u64,
    held_back: u64,
    warnings: u64,
    rate: Option<String>,
    message: Option<String>,
    cancel_requested: bool,
    attempts: u32,
    created: String,
    started: Option<String>,
    ended: Option<String>,
    duration: Option<String>,
}

impl RunInfo {
    fn new(r: &RunView, zone: TimeZone) -> RunInfo {
        let duration = r
            .started_at
            .map(|start| (r.finished_at.unwrap_or(r.updated_at) - start).as_seconds_f64());
        RunInfo {
            id: r.id.to_string(),
            state: r.state_name(),
            state_label: r.state_name().replace('_', " "),
            finished: r.state.is_finished(),
            started_by: if r.trigger == "schedule" {
                "schedule".to_owned()
            } else {
                r.requested_by_name
                    .clone()
                    .unwrap_or_else(|| "a member".to_owned())
            },
            started_by_id: r
                .requested_by_name
                .as_ref()
                .and(r.requested_by)
                .map(|id| id.to_string()),
            read: r.records_read,
            written: r.records_written,
            rejected: r.records_rejected,
            skipped: r.records_skipped,
            held_back: r.records_held_back,
            warnings: r.warnings,
            rate: r.rate().map(|rate| format!("{rate:.1} records/s")),
            message: r.message.clone(),
            cancel_requested: r.cancel_requested,
            attempts: r.attempts,
            created: when(zone, r.created_at),
            started: r.started_at.map(|t| when(zone, t)),
            ended: r.finished_at.map(|t| when(zone, t)),
            duration: duration.map(seconds),
        }
    }
}

/// `0.4 s`, `12 s`, `3 min 05 s`, `2 h 01 min`.
fn seconds(s: f64) -> String {
    if s < 10.0 {
        return format!("{s:.1} s");
    }
    let whole = s.round() as u64;
    match whole {
        0..60 => format!("{whole} s"),
        60..3600 => format!("{} min {:02} s", whole / 60, whole % 60),
        _ => format!("{} h {:02} min", whole / 3600, whole % 3600 / 60),
    }
}

/// A pipeline as the list and its page show it.
struct PipelineInfo {
    id: String,
    name: String,
    source: String,
    source_object: String,
    destination: String,
    destination_object: String,
    mode: String,
    schedule: Option<String>,
    next_run: Option<String>,
    last_run: Option<RunInfo>,
}

impl PipelineInfo {
    fn new(p: &PipelineView, names: &BTreeMap<String, String>, zone: TimeZone) -> PipelineInfo {
        let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned());
        PipelineInfo {
            id: p.id.to_string(),
            name: p.name.clone(),
            source: name(&p.spec.source.connection_id),
            source_object: p.spec.source.object.clone(),
            destination: name(&p.spec.destination.connection_id),
            destination_object: p.spec.destination.object.clone(),
            mode: mode_label(&snake(&p.spec.mode)).to_owned(),
            schedule: p.spec.schedule.clone(),
            next_run: p.next_run_at.map(|t| when(zone, t)),
            last_run: p.last_run.as_ref().map(|r| RunInfo::new(r, zone)),
        }
    }
}

/// Connection names by id.
async fn connection_names(
    state: &AppState,
    signed: &SignedIn,
) -> Result<BTreeMap<String, String>, WebError> {
    Ok(state
        .hub
        .list_connections(&signed.caller)
        .await?
        .into_iter()
        .map(|c| (c.id.to_string(), c.name))
        .collect())
}

#[derive(Template)]
#[template(path = "pipelines/list.html")]
struct ListPage {
    shell: Shell,
    pipelines: Vec<PipelineInfo>,
    can_edit: bool,
}

async fn list(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    let views = state.hub.list_pipelines(&signed.caller).await?;
    let names = connection_names(&state, &signed).await?;
    let page = ListPage {
        shell: signed
            .shell("Pipelines", "pipelines")
            .with_notice(query.text()),
        pipelines: views
            .iter()
            .map(|p| PipelineInfo::new(p, &names, signed.nav.time_zone))
            .collect(),
        can_edit: signed.nav.can_edit(),
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "pipelines/show.html")]
struct ShowPage {
    shell: Shell,
    pipeline: PipelineInfo,
    form: PipelineForm,
    runs: Vec<RunInfo>,
    can_edit: bool,
    can_run: bool,
    /// May delete run history (Administrators).
    can_delete_history: bool,
    /// The organization's time zone's name (the run history form's days are read in it).
    time_zone: &'static str,
    /// Why "Run now" did not start a run.
    alert: Option<String>,
}

async fn show_page(
    state: &AppState,
    signed: &SignedIn,
    id: &str,
    notice: Option<&'static str>,
    alert: Option<String>,
) -> Result<ShowPage, WebError> {
    let id = pipeline_id(id)?;
    let view = state.hub.get_pipeline(&signed.caller, id).await?;
    let runs = state.hub.list_runs(&signed.caller, id, RUNS_SHOWN).await?;
    let names = connection_names(state, signed).await?;
    Ok(ShowPage {
        shell: signed
            .shell(view.name.clone(), "pipelines")
            .with_notice(notice),
        pipeline: PipelineInfo::new(&view, &names, signed.nav.time_zone),
        form: PipelineForm::from_view(&view),
        runs: runs
            .iter()
            .map(|r| RunInfo::new(r, signed.nav.time_zone))
            .collect(),
        can_edit: signed.nav.can_edit(),
        can_run: signed.nav.can(Action::RunPipelines),
        can_delete_history: signed.nav.can(Action::DeleteRunHistory),
        time_zone: signed.nav.time_zone.name(),
        alert,
    })
}

async fn show(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    let page = show_page(&state, &signed, &id, query.text(), None).await?;
    Ok(render(&page))
}

#[derive(Deserialize)]
struct Empty {}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    state
        .hub
        .delete_pipeline(&signed.caller, pipeline_id(&id)?)
        .await?;
    Ok(see_other("/pipelines?notice=deleted"))
}

async fn run_now(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    match state.hub.start_run(&signed.caller, pipeline_id(&id)?).await {
        Ok(run) => Ok(see_other(&format!(
            "/pipelines/{id}/runs/{}?notice=started",
            run.id
        ))),
        Err(AppError::Conflict(_)) => {
            let alert = "A run of this pipeline is already queued or running: only one runs at a \
                         time. Wait for it to end (or cancel it), then start another."
                .to_owned();
            let page = show_page(&state, &signed, &id, None, Some(alert)).await?;
            Ok(render_status(StatusCode::CONFLICT, &page))
        }
        Err(err) => Err(err.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// A run.

/// A rejected record as the run's page shows it (escaped by the template): the fields its rule
/// refers to first.
struct RejectedRow {
    position: u64,
    key: String,
    reason: String,
    rule: String,
    offending: Vec<(String, String)>,
    others: Vec<(String, String)>,
}

fn shown(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl RejectedRow {
    fn new(e: RunErrorView) -> RejectedRow {
        let key = match &e.key {
            Value::Null => "—".to_owned(),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| format!("{k} = {}", shown(v)))
                .collect::<Vec<_>>()
                .join(", "),
            other => shown(other),
        };
        let offending = e
            .fields
            .iter()
            .filter_map(|f| e.values.get(f).map(|v| (f.clone(), shown(v))))
            .collect();
        let others = e
            .values
            .iter()
            .filter(|(k, _)| !e.fields.contains(k))
            .map(|(k, v)| (k.clone(), shown(v)))
            .collect();
        RejectedRow {
            position: e.position + 1,
            key,
            reason: e.reason,
            rule: e.rule,
            offending,
            others,
        }
    }
}

/// A group of rejected records (or of warnings) as the run's page shows it.
struct GroupRow {
    reason: String,
    rule: String,
    fields: String,
    count: u64,
    /// The link that shows only this group's records (`None` for warnings).
    link: Option<String>,
    selected: bool,
}

/// `?kind=rule&rule=rules[2]&page=2`: which rejected records the run's page shows.
#[derive(Deserialize, Default)]
struct RunQuery {
    notice: Option<String>,
    kind: Option<String>,
    rule: Option<String>,
    page: Option<u32>,
    /// Administrators: the records as this member or team sees them (`user:ID`, `team:ID`).
    view_as: Option<String>,
}

/// `&view_as=…` for the links of a page viewed as another (only a well-formed value).
fn view_as_param(view_as: Option<lockstep_app::ViewAs>) -> String {
    match view_as {
        None => String::new(),
        Some(lockstep_app::ViewAs::User(id)) => format!("&view_as=user:{id}"),
        Some(lockstep_app::ViewAs::Team(id)) => format!("&view_as=team:{id}"),
    }
}

fn query_value(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)])
        .map(|s| s.trim_start_matches("v=").to_owned())
        .unwrap_or_default()
}

/// What a validation rule says when it fails: its message, or else its expression.
fn rule_text(view: &PipelineView, label: &str) -> String {
    label
        .strip_prefix("rules[")
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| view.spec.rules.get(i))
        .map_or_else(
            || label.to_owned(),
            |rule| {
                rule.message
                    .clone()
                    .unwrap_or_else(|| format!("the rule '{}' is false", rule.expression))
            },
        )
}

#[derive(Template)]
#[template(path = "pipelines/run.html")]
struct RunPage {
    shell: Shell,
    pipeline_id: String,
    pipeline_name: String,
    run: RunInfo,
    can_run: bool,
    /// Rejections by a rule's verdict, per rule, with counts.
    verdicts: Vec<GroupRow>,
    /// Records that could not be evaluated or converted, per rule, with counts.
    failures: Vec<GroupRow>,
    /// Failed warning rules with counts (nothing was rejected for them).
    warnings: Vec<GroupRow>,
    /// `None`: the member's role cannot read rejected records.
    rejected: Option<Vec<RejectedRow>>,
    /// Which records are listed: `None` for all, else the group's reason.
    showing: Option<String>,
    page: u32,
    pages: u32,
    /// Links to the previous and next page.
    previous: Option<String>,
    next: Option<String>,
    /// The progress area was asked for by polling (it then links to the final results).
    polled: bool,
    /// "View as" for Administrators.
    picker: Option<super::view_as::ViewAsPicker>,
    /// `?view_as=…` for the CSV and "show all" links, or "".
    csv_query: String,
}

#[derive(Template)]
#[template(path = "pipelines/progress.html")]
struct ProgressFragment {
    pipeline_id: String,
    run: RunInfo,
    polled: bool,
}

async fn run_page(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((id, run)): Path<(String, String)>,
    Query(query): Query<RunQuery>,
) -> Result<Response, WebError> {
    let (pipeline, run) = (pipeline_id(&id)?, run_id(&run)?);
    let view_as = super::view_as::parse(query.view_as.as_deref())?;
    let keep_view = view_as_param(view_as);
    let view = state.hub.get_pipeline(&signed.caller, pipeline).await?;
    let current = state.hub.get_run(&signed.caller, pipeline, run).await?;
    let base = format!("/pipelines/{pipeline}/runs/{run}");
    let groups = if current.records_rejected > 0 {
        state
            .hub
            .run_error_groups(&signed.caller, pipeline, run)
            .await?
    } else {
        Vec::new()
    };
    let selected: Option<&RejectionGroup> = match (&query.kind, &query.rule) {
        (Some(kind), Some(rule)) => groups
            .iter()
            .find(|g| g.rule == *rule && snake(&g.kind) == *kind),
        _ => None,
    };
    let group_row = |g: &RejectionGroup| GroupRow {
        reason: g.reason.clone(),
        rule: g.rule.clone(),
        fields: g.fields.join(", "),
        count: g.count,
        link: Some(format!(
            "{base}?kind={}&rule={}{keep_view}#rejected",
            snake(&g.kind),
            query_value(&g.rule)
        )),
        selected: selected.is_some_and(|s| s == g),
    };
    let verdicts = groups
        .iter()
        .filter(|g| g.kind == RejectionKind::Rule)
        .map(group_row)
        .collect();
    let failures = groups
        .iter()
        .filter(|g| g.kind == RejectionKind::Error)
        .map(group_row)
        .collect();
    let warnings = current
        .warning_counts
        .iter()
        .map(|(rule, count)| GroupRow {
            reason: rule_text(&view, rule),
            rule: rule.clone(),
            fields: String::new(),
            count: *count,
            link: None,
            selected: false,
        })
        .collect();

    let total = selected.map_or(current.records_rejected, |g| g.count);
    let pages = u32::try_from(total.div_ceil(u64::from(ERRORS_SHOWN)))
        .unwrap_or(u32::MAX)
        .max(1);
    let page = query.page.unwrap_or(1).clamp(1, pages);
    let rejected = if signed.nav.can(Action::ReadRunErrors) {
        Some(if current.records_rejected > 0 {
            let filter = selected.map(|g| (g.kind, g.rule.as_str()));
            state
                .hub
                .run_errors_as(
                    &signed.caller,
                    pipeline,
                    run,
                    filter,
                    ERRORS_SHOWN,
                    (page - 1).saturating_mul(ERRORS_SHOWN),
                    view_as,
                )
                .await?
                .into_iter()
                .map(RejectedRow::new)
                .collect()
        } else {
            Vec::new()
        })
    } else {
        None
    };
    let page_link = |p: u32| {
        let group = selected.map_or(String::new(), |g| {
            format!("kind={}&rule={}&", snake(&g.kind), query_value(&g.rule))
        });
        format!("{base}?{group}page={p}{keep_view}#rejected")
    };
    let picker = if signed.nav.can(Action::ReadRunErrors) && current.records_rejected > 0 {
        let mut kept = Vec::new();
        if let Some(g) = selected {
            kept.push(("kind".to_owned(), snake(&g.kind)));
            kept.push(("rule".to_owned(), g.rule.clone()));
        }
        super::view_as::picker(&state, &signed, base.clone(), kept, view_as).await?
    } else {
        None
    };
    let notice = NoticeQuery {
        notice: query.notice.clone(),
    };
    let page = RunPage {
        shell: signed
            .shell(format!("Run of {}", view.name), "pipelines")
            .with_notice(notice.text()),
        pipeline_id: view.id.to_string(),
        pipeline_name: view.name.clone(),
        run: RunInfo::new(&current, signed.nav.time_zone),
        can_run: signed.nav.can(Action::RunPipelines),
        verdicts,
        failures,
        warnings,
        rejected,
        showing: selected.map(|g| g.reason.clone()),
        page,
        pages,
        previous: (page > 1).then(|| page_link(page - 1)),
        next: (page < pages).then(|| page_link(page + 1)),
        polled: false,
        picker,
        csv_query: keep_view.replacen('&', "?", 1),
    };
    Ok(render(&page))
}

/// `GET …/rejected.csv`: every rejected record of the run (Editors and Administrators; the
/// read is audited).
async fn rejected_csv(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((id, run)): Path<(String, String)>,
    Query(query): Query<RunQuery>,
) -> Result<Response, WebError> {
    let (pipeline, run) = (pipeline_id(&id)?, run_id(&run)?);
    let view_as = super::view_as::parse(query.view_as.as_deref())?;
    let errors = state
        .hub
        .export_run_errors_as(&signed.caller, pipeline, run, view_as)
        .await?;
    let body = crate::rejected_csv::build(&errors)
        .map_err(|_| AppError::Refused("the CSV could not be written"))?;
    Ok(crate::rejected_csv::response(&run.to_string(), body))
}

/// `GET …/progress` (htmx polling): the progress area; once the run has ended, status 286
/// (htmx stops polling) and `HX-Refresh` (the page shows the final results).
async fn progress(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((id, run)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let (pipeline, run) = (pipeline_id(&id)?, run_id(&run)?);
    let current = state.hub.get_run(&signed.caller, pipeline, run).await?;
    let fragment = ProgressFragment {
        pipeline_id: pipeline.to_string(),
        run: RunInfo::new(&current, signed.nav.time_zone),
        polled: true,
    };
    if !fragment.run.finished {
        return Ok(render(&fragment));
    }
    let status = StatusCode::from_u16(STOP_POLLING).unwrap_or(StatusCode::OK);
    let mut response = render_status(status, &fragment);
    response
        .headers_mut()
        .insert("hx-refresh", HeaderValue::from_static("true"));
    Ok(response)
}

async fn cancel(
    State(state): State<AppState>,
    Path((id, run)): Path<(String, String)>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let (pipeline, run) = (pipeline_id(&id)?, run_id(&run)?);
    state.hub.cancel_run(&signed.caller, pipeline, run).await?;
    Ok(see_other(&format!(
        "/pipelines/{pipeline}/runs/{run}?notice=cancelled"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(seconds(0.42), "0.4 s");
        assert_eq!(seconds(42.0), "42 s");
        assert_eq!(seconds(185.0), "3 min 05 s");
        assert_eq!(seconds(7260.0), "2 h 01 min");
    }
}
