//! The pipeline form: one form to define or change a pipeline, its selects fed by discovery
//! (and reloaded by htmx fragments, or by "Load objects and fields" without JavaScript).
//!
//! The form's fields are named as the API's specification and its 422 `field`s are
//! (`source.object`, `mappings[1].source`, `rules[0].expression`, …), so an error is shown next
//! to the input it is about. Rows are posted with indexed names (`mappings[0].source`) and parsed
//! from the pairs; empty rows are left out.

use super::{MODES, pipeline_id, require_editor, snake};
use crate::AppState;
use crate::problem::ApiError;
use crate::web::page::{FormErrors, Shell, WebError, render, render_status, see_other};
use crate::web::session::{Posted, SignedIn};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use lockstep_app::connectors::{ConnectionKind, ObjectMeta};
use lockstep_app::engine::Transform;
use lockstep_app::{AppError, PipelineView};
use lockstep_domain::ConnectionId;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

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
const RULE_KINDS: [(&str, &str); 3] = [
    ("import", "Import: set a field before mapping"),
    ("validation", "Validation: accept or reject"),
    ("export", "Export: set a destination field"),
];

#[derive(Debug, Clone, Default)]
pub(super) struct MappingRow {
    pub(super) source: String,
    pub(super) destination: String,
    pub(super) transform: String,
    pub(super) cast: String,
}

#[derive(Debug, Clone, Default)]
pub(super) struct RuleRow {
    pub(super) kind: String,
    pub(super) expression: String,
    pub(super) target: String,
    pub(super) field_type: String,
    pub(super) level: String,
    pub(super) message: String,
}

#[derive(Debug, Clone, Default)]
pub(super) struct PipelineForm {
    pub(super) name: String,
    pub(super) source_connection: String,
    pub(super) source_object: String,
    pub(super) destination_connection: String,
    pub(super) destination_object: String,
    pub(super) mappings: Vec<MappingRow>,
    pub(super) rules: Vec<RuleRow>,
    pub(super) filter: String,
    pub(super) mode: String,
    pub(super) key: String,
    pub(super) cursor: String,
    pub(super) schedule: String,
    pub(super) max_rejected_percent: String,
}

/// The text box of a transform: a CEL expression as it is, a redaction as `redact:scramble`,
/// `redact:partial:4`, `redact:mask` or `redact:hide`.
pub(super) fn transform_text(transform: &Transform) -> String {
    match transform {
        Transform::Expression(e) => e.clone(),
        Transform::Redact { redact, keep } => match keep {
            Some(keep) => format!("{REDACT_PREFIX}{}:{keep}", redact.name()),
            None => format!("{REDACT_PREFIX}{}", redact.name()),
        },
    }
}

/// What a redaction's text starts with (no CEL expression does: `redact:` does not parse).
const REDACT_PREFIX: &str = "redact:";

/// The API's transform for the text box: `redact:partial:4` is `{"redact": "partial", "keep":
/// 4}`, any other text a CEL expression; none when empty. A `keep` that is no number is sent
/// as 0, so the API's refusal lands next to the field.
fn transform_json(text: &str) -> Option<Value> {
    if text.is_empty() {
        return None;
    }
    let Some(redaction) = text.strip_prefix(REDACT_PREFIX) else {
        return Some(json!(text));
    };
    let mut parts = redaction.splitn(2, ':').map(str::trim);
    let mut object = Map::new();
    object.insert("redact".to_owned(), json!(parts.next().unwrap_or_default()));
    if let Some(keep) = parts.next() {
        object.insert("keep".to_owned(), json!(keep.parse::<u32>().unwrap_or(0)));
    }
    Some(Value::Object(object))
}

/// `mappings[3].source` → `("3", "source")` for the list `mappings`.
fn indexed<'a>(name: &'a str, list: &str) -> Option<(&'a str, &'a str)> {
    name.strip_prefix(list)?.strip_prefix('[')?.split_once("].")
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
            max_rejected_percent: value("max_rejected_percent"),
        }
    }

    /// The form of a stored pipeline.
    pub(super) fn from_view(view: &PipelineView) -> PipelineForm {
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
                    transform: m.transform.as_ref().map(transform_text).unwrap_or_default(),
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
            max_rejected_percent: spec
                .max_rejected_percent
                .map(|p| p.to_string())
                .unwrap_or_default(),
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
                if let Some(transform) = transform_json(&m.transform) {
                    map.insert("transform".to_owned(), transform);
                }
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
        let threshold = self
            .max_rejected_percent
            .trim()
            .trim_end_matches('%')
            .trim();
        if !threshold.is_empty() {
            // Text that is no number is sent as one out of range, so the refusal lands next to
            // the field with the API's own words.
            let percent = threshold
                .replace(',', ".")
                .parse::<f64>()
                .ok()
                .filter(|p| p.is_finite())
                .unwrap_or(-1.0);
            spec.insert("max_rejected_percent".to_owned(), json!(percent));
        }
        Value::Object(spec)
    }

    /// Whether the form shows an input for the API's `field`.
    fn shows(&self, field: &str) -> bool {
        const PLAIN: [&str; 11] = [
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
            "max_rejected_percent",
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
    time_zone: String,
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
            if rule.kind == "import" && !rule.target.is_empty() && !choices.contains(&rule.target) {
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

    /// How the chosen destination's kind names an object, for the hint: (form, example).
    fn destination_name(&self) -> (&'static str, &'static str) {
        self.destinations
            .iter()
            .find(|c| c.id == self.form.destination_connection)
            .and_then(|c| ConnectionKind::parse(c.kind))
            .map_or(
                (
                    "schema.table for PostgreSQL, database.table for MySQL",
                    "public.items",
                ),
                lockstep_app::connectors::object_name::name_form,
            )
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
    let time_zone = state.hub.schedule_time_zone(&signed.caller).await?;
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

pub(super) async fn new_form(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    require_editor(&signed)?;
    let form = PipelineForm::from_pairs(&pairs);
    let view = form_view(
        &state,
        &signed,
        form,
        FormErrors::none(),
        true,
        &Target::New,
    )
    .await?;
    Ok(form_page(&signed, view, &Target::New, StatusCode::OK))
}

pub(super) async fn edit_form(
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

/// The form as a row button without JavaScript asks for it (`row_action` = `add:rules`,
/// `remove:mappings:2`): a row added or removed, to be shown again without saving. `None` when
/// the form was sent to be saved.
fn with_row_action(pairs: &[(String, String)]) -> Option<PipelineForm> {
    let action = pairs
        .iter()
        .find(|(n, _)| n == "row_action")
        .map(|(_, v)| v.as_str())?;
    let mut parts = action.split(':');
    let (verb, list, index) = (parts.next()?, parts.next()?, parts.next());
    if list != "mappings" && list != "rules" {
        return None;
    }
    let kept: Vec<(String, String)> = match (verb, index) {
        ("remove", Some(index)) => {
            let prefix = format!("{list}[{index}].");
            pairs
                .iter()
                .filter(|(n, _)| !n.starts_with(&prefix))
                .cloned()
                .collect()
        }
        ("add", None) => pairs.to_vec(),
        _ => return None,
    };
    let mut form = PipelineForm::from_pairs(&kept);
    if verb == "add" {
        if list == "mappings" {
            form.mappings.push(MappingRow::default());
        } else {
            form.rules.push(RuleRow {
                kind: "validation".to_owned(),
                ..RuleRow::default()
            });
        }
    }
    Some(form)
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

pub(super) async fn create(
    State(state): State<AppState>,
    Posted(signed, pairs): Posted<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    if let Some(form) = with_row_action(&pairs) {
        return form_again(&state, &signed, form, None, &Target::New).await;
    }
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

pub(super) async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, pairs): Posted<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let id = pipeline_id(&id)?;
    let target = Target::Edit(id.to_string());
    if let Some(form) = with_row_action(&pairs) {
        return form_again(&state, &signed, form, None, &target).await;
    }
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
pub(super) async fn objects_fragment(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let (mut form, destination) = fragment_form(&pairs);
    if !destination {
        form.source_object.clear();
    }
    let view = form_view(
        &state,
        &signed,
        form,
        FormErrors::none(),
        false,
        &Target::New,
    )
    .await?;
    Ok(if destination {
        render(&DestinationObjectFragment { view })
    } else {
        render(&SourceObjectFragment { view })
    })
}

/// `GET /pipelines/form/fields?connection=…&source.object=…` (htmx, with the mapping rows):
/// the mapping table for the chosen source object, one row per field when there was none.
pub(super) async fn fields_fragment(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let (form, _) = fragment_form(&pairs);
    let view = form_view(
        &state,
        &signed,
        form,
        FormErrors::none(),
        true,
        &Target::New,
    )
    .await?;
    Ok(render(&MappingsFragment { view }))
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
    fn redact_transforms_are_written_as_redact_texts_in_the_box() {
        for (text, api) in [
            ("redact:scramble", json!({"redact": "scramble"})),
            ("redact:partial:4", json!({"redact": "partial", "keep": 4})),
            ("redact:partial", json!({"redact": "partial"})),
            ("redact:mask", json!({"redact": "mask"})),
            ("redact:hide", json!({"redact": "hide"})),
            ("value * 2.0", json!("value * 2.0")),
        ] {
            assert_eq!(transform_json(text), Some(api.clone()), "{text}");
            let back = serde_json::from_value::<Transform>(api).map(|t| transform_text(&t));
            assert_eq!(back.ok().as_deref(), Some(text));
        }
        assert_eq!(transform_json(""), None);
        // A keep that is no number is sent out of range, for the API to refuse next to the box.
        assert_eq!(
            transform_json("redact:partial:four"),
            Some(json!({"redact": "partial", "keep": 0}))
        );
    }
}
