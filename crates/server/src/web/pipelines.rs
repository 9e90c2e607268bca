//! Pages: pipelines (the list, one form to define or change one with selects fed by discovery,
//! the definition with its runs) and runs (live progress over htmx polling, cancel, and the
//! rejected records for Editors and Administrators).
//!
//! The form's fields are named as the API's specification and its 422 `field`s are
//! (`source.object`, `mappings[1].source`, `rules[0].expression`, …), so an error is shown next
//! to the input it is about. Rows are posted with indexed names and parsed from the pairs.

use super::page::{
    FormErrors, NoticeQuery, Shell, WebError, render, render_status, see_other, when,
};
use super::session::{Posted, SignedIn};
use crate::AppState;
use crate::problem::ApiError;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use lockstep_app::connectors::{ConnectionKind, ObjectMeta};
use lockstep_app::{AppError, PipelineView, RunErrorView, RunView};
use lockstep_domain::{ConnectionId, PipelineId, Role, RunId};
use lockstep_policy::Action;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/pipelines", get(list).post(create))
        .route("/pipelines/new", get(new_form))
        .route("/pipelines/form/objects", get(objects_fragment))
        .route("/pipelines/form/fields", get(fields_fragment))
        .route("/pipelines/{id}", get(show).post(update))
        .route("/pipelines/{id}/edit", get(edit_form))
        .route("/pipelines/{id}/delete", post(delete))
        .route("/pipelines/{id}/run", post(run_now))
        .route("/pipelines/{id}/runs/{run}", get(run_page))
        .route("/pipelines/{id}/runs/{run}/progress", get(progress))
        .route("/pipelines/{id}/runs/{run}/cancel", post(cancel))
}

/// Rejected records shown on a run's page (the API pages through all of them).
const ERRORS_SHOWN: u32 = 100;
/// Runs shown on a pipeline's page.
const RUNS_SHOWN: u32 = 50;
/// The answer that stops htmx polling.
const STOP_POLLING: u16 = 286;
/// The types a mapping may cast to (and an import or export rule may set).
const FIELD_TYPES: [&str; 12] = [
    "boolean",
    "integer",
    "float",
    "decimal",
    "string",
    "binary",
    "date",
    "time",
    "timestamp",
    "timestamp_tz",
    "uuid",
    "json",
];
const MODES: [(&str, &str); 4] = [
    ("full_refresh", "Full refresh: replace the destination"),
    ("append", "Append: add the records read"),
    ("upsert", "Upsert: insert or update by key"),
    (
        "incremental",
        "Incremental: only records after the cursor, upserted by key",
    ),
];
const RULE_KINDS: [(&str, &str); 3] = [
    ("import", "Import: set a field before mapping"),
    ("validation", "Validation: accept or reject"),
    ("export", "Export: set a destination field"),
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
// The form: what was typed, parsed from the posted pairs, and turned into the specification.

#[derive(Debug, Clone, Default)]
struct MappingRow {
    source: String,
    destination: String,
    transform: String,
    cast: String,
}

#[derive(Debug, Clone, Default)]
struct RuleRow {
    kind: String,
    expression: String,
    target: String,
    field_type: String,
    level: String,
    message: String,
}

#[derive(Debug, Clone, Default)]
struct PipelineForm {
    name: String,
    source_connection: String,
    source_object: String,
    destination_connection: String,
    destination_object: String,
    mappings: Vec<MappingRow>,
    rules: Vec<RuleRow>,
    filter: String,
    mode: String,
    key: String,
    cursor: String,
    schedule: String,
}

/// `mappings[3].source` → `("3", "source")` for the list `mappings`.
fn indexed<'a>(name: &'a str, list: &str) -> Option<(&'a str, &'a str)> {
    name.strip_prefix(list)?
        .strip_prefix('[')?
        .split_once("].")
}

/// The rows of `list`, in the order the page had them. A row is the run of pairs with one
/// index; the same index again (a row added after one was removed) starts another row.
fn rows(pairs: &[(String, String)], list: &str) -> Vec<BTreeMap<String, String>> {
    let mut rows: Vec<(&str, BTreeMap<String, String>)> = Vec::new();
    for (name, value) in pairs {
        let Some((index, part)) = indexed(name, list) else {
            continue;
        };
        match rows.last_mut() {
            Some((i, row)) if *i == index && !row.contains_key(part) => {
                row.insert(part.to_owned(), value.clone());
            }
            _ => rows.push((index, BTreeMap::from([(part.to_owned(), value.clone())]))),
        }
    }
    rows.into_iter().map(|(_, row)| row).collect()
}

fn take(row: &mut BTreeMap<String, String>, part: &str) -> String {
    row.remove(part)
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

impl PipelineForm {
    /// The form as posted (or as a query), empty rows left out.
    fn from_pairs(pairs: &[(String, String)]) -> PipelineForm {
        let value = |name: &str| {
            pairs
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default()
        };
        let mappings = rows(pairs, "mappings")
            .into_iter()
            .map(|mut row| MappingRow {
                source: take(&mut row, "source"),
                destination: take(&mut row, "destination"),
                transform: take(&mut row, "transform"),
                cast: take(&mut row, "cast"),
            })
            .filter(|m| {
                !(m.source.is_empty()
                    && m.destination.is_empty()
                    && m.transform.is_empty()
                    && m.cast.is_empty())
            })
            .collect();
        let rules = rows(pairs, "rules")
            .into_iter()
            .map(|mut row| RuleRow {
                kind: take(&mut row, "kind"),
                expression: take(&mut row, "expression"),
                target: take(&mut row, "target"),
                field_type: take(&mut row, "type"),
                level: take(&mut row, "level"),
                message: take(&mut row, "message"),
            })
            .filter(|r| !(r.expression.is_empty() && r.target.is_empty() && r.message.is_empty()))
            .collect();
        let mode = value("mode");
        PipelineForm {
            name: value("name"),
            source_connection: value("source.connection_id"),
            source_object: value("source.object"),
            destination_connection: value("destination.connection_id"),
            destination_object: value("destination.object"),
            mappings,
            rules,
            filter: value("filter"),
            mode: if mode.is_empty() {
                "full_refresh".to_owned()
            } else {
                mode
            },
            key: value("key"),
            cursor: value("cursor"),
            schedule: value("schedule"),
        }
    }

    /// The form of a stored pipeline.
    fn from_view(view: &PipelineView) -> PipelineForm {
        let spec = &view.spec;
        PipelineForm {
            name: view.name.clone(),
            source_connection: spec.source.connection_id.clone(),
            source_object: spec.source.object.clone(),
            destination_connection: spec.destination.connection_id.clone(),
            destination_object: spec.destination.object.clone(),
            mappings: spec
                .mappings
                .iter()
                .map(|m| MappingRow {
                    source: m.source.clone(),
                    destination: m.destination.clone(),
                    transform: m.transform.clone().unwrap_or_default(),
                    cast: m.cast.as_ref().map(snake).unwrap_or_default(),
                })
                .collect(),
            rules: spec
                .rules
                .iter()
                .map(|r| RuleRow {
                    kind: snake(&r.kind),
                    expression: r.expression.clone(),
                    target: r.target.clone().unwrap_or_default(),
                    field_type: r.field_type.as_ref().map(snake).unwrap_or_default(),
                    level: r.level.as_ref().map(snake).unwrap_or_default(),
                    message: r.message.clone().unwrap_or_default(),
                })
                .collect(),
            filter: spec.filter.clone().unwrap_or_default(),
            mode: snake(&spec.mode),
            key: spec.key.join(", "),
            cursor: spec.cursor.clone().unwrap_or_default(),
            schedule: spec.schedule.clone().unwrap_or_default(),
        }
    }

    /// The specification as the API takes it; empty optional parts are left out.
    fn spec_json(&self) -> Value {
        let optional = |map: &mut Map<String, Value>, name: &str, value: &str| {
            if !value.is_empty() {
                map.insert(name.to_owned(), Value::String(value.to_owned()));
            }
        };
        let mappings: Vec<Value> = self
            .mappings
            .iter()
            .map(|m| {
                let mut map = Map::new();
                map.insert("source".to_owned(), json!(m.source));
                map.insert("destination".to_owned(), json!(m.destination));
                optional(&mut map, "transform", &m.transform);
                optional(&mut map, "cast", &m.cast);
                Value::Object(map)
            })
            .collect();
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|r| {
                let mut map = Map::new();
                map.insert("kind".to_owned(), json!(r.kind));
                map.insert("expression".to_owned(), json!(r.expression));
                optional(&mut map, "target", &r.target);
                optional(&mut map, "type", &r.field_type);
                optional(&mut map, "level", &r.level);
                optional(&mut map, "message", &r.message);
                Value::Object(map)
            })
            .collect();
        let mut spec = Map::new();
        spec.insert(
            "source".to_owned(),
            json!({"connection_id": self.source_connection, "object": self.source_object}),
        );
        spec.insert(
            "destination".to_owned(),
            json!({"connection_id": self.destination_connection, "object": self.destination_object}),
        );
        spec.insert("mappings".to_owned(), Value::Array(mappings));
        spec.insert("rules".to_owned(), Value::Array(rules));
        optional(&mut spec, "filter", &self.filter);
        spec.insert("mode".to_owned(), json!(self.mode));
        let key: Vec<&str> = self
            .key
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .collect();
        if !key.is_empty() {
            spec.insert("key".to_owned(), json!(key));
        }
        optional(&mut spec, "cursor", &self.cursor);
        optional(&mut spec, "schedule", &self.schedule);
        Value::Object(spec)
    }

    /// Whether the form shows an input for the API's `field`.
    fn shows(&self, field: &str) -> bool {
        const PLAIN: [&str; 10] = [
            "name",
            "source.connection_id",
            "source.object",
            "destination.connection_id",
            "destination.object",
            "filter",
            "mode",
            "key",
            "cursor",
            "schedule",
        ];
        let row = |list: &str, len: usize, parts: &[&str]| {
            indexed(field, list).is_some_and(|(i, part)| {
                i.parse::<usize>().is_ok_and(|i| i < len) && parts.contains(&part)
            })
        };
        PLAIN.contains(&field)
            || row(
                "mappings",
                self.mappings.len(),
                &["source", "destination", "transform", "cast"],
            )
            || row(
                "rules",
                self.rules.len(),
                &["kind", "expression", "target", "type", "level", "message"],
            )
    }
}

/// What a refused save shows: invalid input next to its field (a field the form has no input
/// for at the top), a conflict at the top; anything else (a role that may not, a missing
/// pipeline, a sealed hub) is the error page.
fn form_failure(err: AppError, form: &PipelineForm) -> Result<(StatusCode, FormErrors), WebError> {
    match err {
        AppError::Invalid { .. }
        | AppError::InvalidConfig { .. }
        | AppError::Conflict(_)
        | AppError::Refused(_) => {
            let api = ApiError::from(err);
            let errors = FormErrors::from_api(&api);
            let errors = match &api.field {
                Some(field) if !form.shows(field) => FormErrors::general(format!(
                    "{field}: {}",
                    errors.get(field).unwrap_or(api.title.as_str())
                )),
                _ => errors,
            };
            Ok((api.status, errors))
        }
        other => Err(other.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// The form's page and its fragments.

struct ConnOption {
    id: String,
    name: String,
    kind: &'static str,
}

struct FieldOption {
    name: String,
    native: String,
}

/// Everything the form and its fragments show.
struct FormView {
    /// Where the form posts: `/pipelines` or `/pipelines/{id}`.
    action: String,
    cancel: String,
    submit: &'static str,
    form: PipelineForm,
    sources: Vec<ConnOption>,
    destinations: Vec<ConnOption>,
    source_objects: Vec<String>,
    /// Whether the chosen source connection was discovered at all.
    source_discovered: bool,
    source_fields: Vec<FieldOption>,
    destination_objects: Vec<String>,
    errors: FormErrors,
    /// The organization's time zone, when the member may read the settings.
    time_zone: Option<String>,
}

impl FormView {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field)
    }

    /// The error of `list[index].part` (`rules[0].expression`).
    fn row_error(&self, list: &str, index: &usize, part: &str) -> Option<&str> {
        self.errors.get(&format!("{list}[{index}].{part}"))
    }

    /// The choices of a mapping's source field: the source object's fields, the fields import
    /// rules add, and the value typed (so nothing typed is lost).
    fn field_choices(&self, current: &str) -> Vec<String> {
        let mut choices: Vec<String> = self.source_fields.iter().map(|f| f.name.clone()).collect();
        for rule in &self.form.rules {
            if rule.kind == "import" && !rule.target.is_empty() && !choices.contains(&rule.target)
            {
                choices.push(rule.target.clone());
            }
        }
        if !current.is_empty() && !choices.iter().any(|c| c == current) {
            choices.push(current.to_owned());
        }
        choices
    }

    /// The source object's choices, with the chosen one even when discovery no longer has it.
    fn object_choices(&self) -> Vec<String> {
        let mut choices = self.source_objects.clone();
        let current = &self.form.source_object;
        if !current.is_empty() && !choices.contains(current) {
            choices.push(current.clone());
        }
        choices
    }

    fn field_types(&self) -> [&'static str; 12] {
        FIELD_TYPES
    }

    fn modes(&self) -> [(&'static str, &'static str); 4] {
        MODES
    }

    fn rule_kinds(&self) -> [(&'static str, &'static str); 3] {
        RULE_KINDS
    }

    fn same(&self, a: &str, b: &str) -> bool {
        a == b
    }
}

#[derive(Template)]
#[template(path = "pipelines/form.html")]
struct FormPage {
    shell: Shell,
    view: FormView,
}

#[derive(Template)]
#[template(path = "pipelines/source_object.html")]
struct SourceObjectFragment {
    view: FormView,
}

#[derive(Template)]
#[template(path = "pipelines/destination_object.html")]
struct DestinationObjectFragment {
    view: FormView,
}

#[derive(Template)]
#[template(path = "pipelines/mappings.html")]
struct MappingsFragment {
    view: FormView,
}

/// The discovered objects of a connection (`None` when there is no such connection).
async fn objects_of(
    state: &AppState,
    signed: &SignedIn,
    id: &str,
) -> Result<Option<lockstep_app::Discovery>, WebError> {
    let Ok(id) = id.parse::<ConnectionId>() else {
        return Ok(None);
    };
    match state.hub.connection_objects(&signed.caller, id).await {
        Ok(found) => Ok(Some(found)),
        Err(AppError::NotFound(_)) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Where a form is sent and what its button says.
enum Target {
    New,
    Edit(String),
}

/// Builds the form's view: the connections, the objects of the chosen ones, the fields of the
/// chosen source object; with `prefill`, one mapping per source field when there is none yet.
async fn form_view(
    state: &AppState,
    signed: &SignedIn,
    mut form: PipelineForm,
    errors: FormErrors,
    prefill: bool,
    target: &Target,
) -> Result<FormView, WebError> {
    let mut sources = Vec::new();
    let mut destinations = Vec::new();
    for c in state.hub.list_connections(&signed.caller).await? {
        let option = || ConnOption {
            id: c.id.to_string(),
            name: c.name.clone(),
            kind: c.kind.as_str(),
        };
        if matches!(
            c.kind,
            ConnectionKind::Postgres | ConnectionKind::Mysql | ConnectionKind::Files
        ) {
            sources.push(option());
        }
        if matches!(c.kind, ConnectionKind::Postgres | ConnectionKind::Mysql) {
            destinations.push(option());
        }
    }
    let mut source_objects = Vec::new();
    let mut source_fields = Vec::new();
    let mut source_discovered = false;
    if !form.source_connection.is_empty()
        && let Some(found) = objects_of(state, signed, &form.source_connection).await?
    {
        source_discovered = found.discovered_at.is_some();
        if let Some(object) = found.objects.iter().find(|o| o.name == form.source_object) {
            source_fields = fields_of(object);
        }
        source_objects = found.objects.into_iter().map(|o| o.name).collect();
    }
    let mut destination_objects = Vec::new();
    if !form.destination_connection.is_empty()
        && let Some(found) = objects_of(state, signed, &form.destination_connection).await?
    {
        destination_objects = found.objects.into_iter().map(|o| o.name).collect();
    }
    if prefill && form.mappings.is_empty() {
        form.mappings = source_fields
            .iter()
            .map(|f| MappingRow {
                source: f.name.clone(),
                destination: f.name.clone(),
                ..MappingRow::default()
            })
            .collect();
    }
    let time_zone = if signed.nav.can(Action::ReadSettings) {
        Some(
            state
                .hub
                .organization_settings(&signed.caller)
                .await?
                .time_zone,
        )
    } else {
        None
    };
    let (action, cancel, submit) = match target {
        Target::New => (
            "/pipelines".to_owned(),
            "/pipelines".to_owned(),
            "Create pipeline",
        ),
        Target::Edit(id) => (
            format!("/pipelines/{id}"),
            format!("/pipelines/{id}"),
            "Save changes",
        ),
    };
    Ok(FormView {
        action,
        cancel,
        submit,
        form,
        sources,
        destinations,
        source_objects,
        source_discovered,
        source_fields,
        destination_objects,
        errors,
        time_zone,
    })
}

fn fields_of(object: &ObjectMeta) -> Vec<FieldOption> {
    object
        .fields
        .iter()
        .map(|f| FieldOption {
            name: f.name.clone(),
            native: f.native.clone(),
        })
        .collect()
}

fn form_page(signed: &SignedIn, view: FormView, target: &Target, status: StatusCode) -> Response {
    let title = match target {
        Target::New => "New pipeline".to_owned(),
        Target::Edit(_) => format!("Edit {}", view.form.name),
    };
    let page = FormPage {
        shell: signed.shell(title, "pipelines"),
        view,
    };
    render_status(status, &page)
}

async fn new_form(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    require_editor(&signed)?;
    let form = PipelineForm::from_pairs(&pairs);
    let view = form_view(&state, &signed, form, FormErrors::none(), true, &Target::New).await?;
    Ok(form_page(&signed, view, &Target::New, StatusCode::OK))
}

async fn edit_form(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    require_editor(&signed)?;
    let pipeline = state
        .hub
        .get_pipeline(&signed.caller, pipeline_id(&id)?)
        .await?;
    let target = Target::Edit(pipeline.id.to_string());
    let form = PipelineForm::from_view(&pipeline);
    let view = form_view(&state, &signed, form, FormErrors::none(), false, &target).await?;
    Ok(form_page(&signed, view, &target, StatusCode::OK))
}

/// Whether the form was sent with "Load objects" (shown again, nothing saved).
fn reload(pairs: &[(String, String)]) -> bool {
    pairs.iter().any(|(n, _)| n == "reload")
}

/// A save that failed or a reload: the form again with everything typed.
async fn form_again(
    state: &AppState,
    signed: &SignedIn,
    form: PipelineForm,
    outcome: Option<AppError>,
    target: &Target,
) -> Result<Response, WebError> {
    let (status, errors, prefill) = match outcome {
        None => {
            require_editor(signed)?;
            (StatusCode::OK, FormErrors::none(), true)
        }
        Some(err) => {
            let (status, errors) = form_failure(err, &form)?;
            (status, errors, false)
        }
    };
    let view = form_view(state, signed, form, errors, prefill, target).await?;
    Ok(form_page(signed, view, target, status))
}

async fn create(
    State(state): State<AppState>,
    Posted(signed, pairs): Posted<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let form = PipelineForm::from_pairs(&pairs);
    if reload(&pairs) {
        return form_again(&state, &signed, form, None, &Target::New).await;
    }
    match state
        .hub
        .create_pipeline(&signed.caller, &form.name, form.spec_json())
        .await
    {
        Ok(created) => Ok(see_other(&format!(
            "/pipelines/{}?notice=created",
            created.id
        ))),
        Err(err) => form_again(&state, &signed, form, Some(err), &Target::New).await,
    }
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, pairs): Posted<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let id = pipeline_id(&id)?;
    let target = Target::Edit(id.to_string());
    let form = PipelineForm::from_pairs(&pairs);
    if reload(&pairs) {
        return form_again(&state, &signed, form, None, &target).await;
    }
    match state
        .hub
        .update_pipeline(&signed.caller, id, Some(&form.name), Some(form.spec_json()))
        .await
    {
        Ok(_) => Ok(see_other(&format!("/pipelines/{id}?notice=saved"))),
        Err(err) => form_again(&state, &signed, form, Some(err), &target).await,
    }
}

/// The query of the form's fragments: the form's own fields, and `connection` (with `role`).
fn fragment_form(pairs: &[(String, String)]) -> (PipelineForm, bool) {
    let mut form = PipelineForm::from_pairs(pairs);
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim().to_owned())
    };
    let destination = get("role").as_deref() == Some("destination");
    if let Some(connection) = get("connection").filter(|c| !c.is_empty()) {
        if destination {
            form.destination_connection = connection;
        } else {
            form.source_connection = connection;
        }
    }
    (form, destination)
}

/// `GET /pipelines/form/objects?role=source|destination&connection=…` (htmx): the object
/// input of the chosen connection.
async fn objects_fragment(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let (mut form, destination) = fragment_form(&pairs);
    if !destination {
        form.source_object.clear();
    }
    let view = form_view(&state, &signed, form, FormErrors::none(), false, &Target::New).await?;
    Ok(if destination {
        render(&DestinationObjectFragment { view })
    } else {
        render(&SourceObjectFragment { view })
    })
}

/// `GET /pipelines/form/fields?connection=…&source.object=…` (htmx, with the mapping rows):
/// the mapping table for the chosen source object, one row per field when there was none.
async fn fields_fragment(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let (form, _) = fragment_form(&pairs);
    let view = form_view(&state, &signed, form, FormErrors::none(), true, &Target::New).await?;
    Ok(render(&MappingsFragment { view }))
}

// ---------------------------------------------------------------------------------------------
// The list and one pipeline.

/// A run as pages show it.
struct RunInfo {
    id: String,
    state: &'static str,
    finished: bool,
    trigger: String,
    read: u64,
    written: u64,
    rejected: u64,
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
    fn new(r: &RunView) -> RunInfo {
        let duration = r
            .started_at
            .map(|start| (r.finished_at.unwrap_or(r.updated_at) - start).as_seconds_f64());
        RunInfo {
            id: r.id.to_string(),
            state: r.state.as_str(),
            finished: r.state.is_finished(),
            trigger: r.trigger.clone(),
            read: r.records_read,
            written: r.records_written,
            rejected: r.records_rejected,
            warnings: r.warnings,
            rate: r.rate().map(|rate| format!("{rate:.1} records/s")),
            message: r.message.clone(),
            cancel_requested: r.cancel_requested,
            attempts: r.attempts,
            created: when(r.created_at),
            started: r.started_at.map(when),
            ended: r.finished_at.map(when),
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
    fn new(p: &PipelineView, names: &BTreeMap<String, String>) -> PipelineInfo {
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
            next_run: p.next_run_at.map(when),
            last_run: p.last_run.as_ref().map(RunInfo::new),
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
        pipelines: views.iter().map(|p| PipelineInfo::new(p, &names)).collect(),
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
    let runs = state
        .hub
        .list_runs(&signed.caller, id, RUNS_SHOWN)
        .await?;
    let names = connection_names(state, signed).await?;
    Ok(ShowPage {
        shell: signed.shell(view.name.clone(), "pipelines").with_notice(notice),
        pipeline: PipelineInfo::new(&view, &names),
        form: PipelineForm::from_view(&view),
        runs: runs.iter().map(RunInfo::new).collect(),
        can_edit: signed.nav.can_edit(),
        can_run: signed.nav.can(Action::RunPipelines),
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
    match state
        .hub
        .start_run(&signed.caller, pipeline_id(&id)?)
        .await
    {
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

/// A rejected record as the run's page shows it (escaped by the template).
struct RejectedRow {
    key: String,
    reason: String,
    values: Vec<(String, String)>,
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
        RejectedRow {
            key,
            reason: e.reason,
            values: e.values.iter().map(|(k, v)| (k.clone(), shown(v))).collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "pipelines/run.html")]
struct RunPage {
    shell: Shell,
    pipeline_id: String,
    pipeline_name: String,
    run: RunInfo,
    can_run: bool,
    /// `None`: the member's role cannot read rejected records.
    rejected: Option<Vec<RejectedRow>>,
    errors_shown: u32,
}

#[derive(Template)]
#[template(path = "pipelines/progress.html")]
struct ProgressFragment {
    pipeline_id: String,
    run: RunInfo,
}

async fn run_page(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((id, run)): Path<(String, String)>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    let (pipeline, run) = (pipeline_id(&id)?, run_id(&run)?);
    let view = state.hub.get_pipeline(&signed.caller, pipeline).await?;
    let current = state.hub.get_run(&signed.caller, pipeline, run).await?;
    let rejected = if signed.nav.can(Action::ReadRunErrors) {
        Some(if current.records_rejected > 0 {
            state
                .hub
                .run_errors(&signed.caller, pipeline, run, ERRORS_SHOWN, 0)
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
    let notice = query.text();
    let page = RunPage {
        shell: signed
            .shell(format!("Run of {}", view.name), "pipelines")
            .with_notice(notice),
        pipeline_id: view.id.to_string(),
        pipeline_name: view.name,
        run: RunInfo::new(&current),
        can_run: signed.nav.can(Action::RunPipelines),
        rejected,
        errors_shown: ERRORS_SHOWN,
    };
    Ok(render(&page))
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
        run: RunInfo::new(&current),
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
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn rows_keep_page_order_skip_empty_ones_and_split_repeated_indexes() {
        let form = PipelineForm::from_pairs(&pairs(&[
            ("csrf", "x"),
            ("name", " parts "),
            ("mappings[0].source", "id"),
            ("mappings[0].destination", "id"),
            ("mappings[0].cast", ""),
            ("mappings[1].source", ""),
            ("mappings[1].destination", ""),
            ("mappings[1].cast", ""),
            ("mappings[2].source", "part_no"),
            ("mappings[2].destination", "item_code"),
            ("mappings[2].source", "price"),
            ("mappings[2].destination", "price"),
            ("mappings[2].cast", "decimal"),
            ("rules[0].kind", "validation"),
            ("rules[0].expression", "price >= 0.0"),
            ("rules[0].level", "error"),
            ("rules[1].kind", "validation"),
            ("rules[1].expression", ""),
            ("key", "id, , item_code"),
        ]));
        assert_eq!(form.name, "parts");
        assert_eq!(form.mode, "full_refresh");
        let m: Vec<_> = form
            .mappings
            .iter()
            .map(|m| (m.source.as_str(), m.destination.as_str(), m.cast.as_str()))
            .collect();
        assert_eq!(
            m,
            [
                ("id", "id", ""),
                ("part_no", "item_code", ""),
                ("price", "price", "decimal")
            ]
        );
        assert_eq!(form.rules.len(), 1);
        let spec = form.spec_json();
        assert_eq!(spec["key"], json!(["id", "item_code"]));
        assert_eq!(
            spec["mappings"][2],
            json!({"source": "price", "destination": "price", "cast": "decimal"})
        );
        assert_eq!(
            spec["rules"][0],
            json!({"kind": "validation", "expression": "price >= 0.0", "level": "error"})
        );
        assert!(spec.get("cursor").is_none() && spec.get("schedule").is_none());
        assert!(form.shows("rules[0].expression"));
        assert!(!form.shows("rules[1].expression"));
        assert!(form.shows("mappings[2].cast"));
        assert!(!form.shows("spec"));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(seconds(0.42), "0.4 s");
        assert_eq!(seconds(42.0), "42 s");
        assert_eq!(seconds(185.0), "3 min 05 s");
        assert_eq!(seconds(7260.0), "2 h 01 min");
    }
}
