//! The data policies page of Administrators: the three layers (access, ownership row filters,
//! redaction), each one form of rows saved by its own POST, and a preview of a connection's
//! sample as a member or a team would see it.
//!
//! Rows are posted with indexed names (`rules[2].filter`) and numbered as the page drew them;
//! empty rows and rows ticked "remove" are left out of what is saved. The use case names a bad
//! rule by its place in what was saved (`rules[1].filter`), which the page turns back into the
//! row it came from, so the error shows next to that row's input (and in the summary); nothing
//! is saved then.

use super::page::{FormErrors, NoticeQuery, Shell, WebError, render_status, see_other};
use super::session::{Posted, SignedIn};
use super::view_as::{self, HIDDEN_TITLE, ViewAsPicker};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use lockstep_app::{
    AccessGrant, AccessPolicy, AppError, OwnershipPolicy, OwnershipRule, PolicyObjectKind,
    RedactionKind, RedactionPolicy, RedactionRule,
};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The records the preview samples.
const PREVIEW_SIZE: usize = 20;

const KINDS: [(&str, &str); 4] = [
    ("mask", "Mask (••••)"),
    ("partial", "Partial (keep the last characters)"),
    ("scramble", "Scramble (equal values stay equal)"),
    ("hide", "Hide the field"),
];

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/policies", get(policies))
        .route("/policies/access", post(save_access))
        .route("/policies/ownership", post(save_ownership))
        .route("/policies/redaction", post(save_redaction))
}

/// A choice of a `<select>`.
struct Choice {
    value: String,
    label: String,
}

#[derive(Debug, Clone, Default)]
struct GrantRow {
    team_id: String,
    /// `connection:ID`, `pipeline:ID` or `dataset` (then `dataset_id`).
    object: String,
    dataset_id: String,
    remove: bool,
}

#[derive(Debug, Clone, Default)]
struct OwnershipRow {
    team_id: String,
    connection_id: String,
    object: String,
    filter: String,
    remove: bool,
}

#[derive(Debug, Clone, Default)]
struct RedactionRow {
    team_id: String,
    connection_id: String,
    object: String,
    field: String,
    pattern: String,
    kind: String,
    keep: String,
    exempt_administrators: bool,
    remove: bool,
}

impl GrantRow {
    fn is_blank(&self) -> bool {
        self.team_id.is_empty() && self.object.is_empty() && self.dataset_id.is_empty()
    }
}

impl OwnershipRow {
    fn is_blank(&self) -> bool {
        self.team_id.is_empty()
            && self.connection_id.is_empty()
            && self.object.is_empty()
            && self.filter.is_empty()
    }
}

impl RedactionRow {
    /// The text inputs of the row: (part, value, label).
    fn texts(&self) -> [(&'static str, &str, &'static str); 3] {
        [
            ("object", &self.object, "Object"),
            ("field", &self.field, "Field"),
            ("pattern", &self.pattern, "Pattern"),
        ]
    }

    fn is_blank(&self) -> bool {
        self.team_id.is_empty()
            && self.connection_id.is_empty()
            && self.object.is_empty()
            && self.field.is_empty()
            && self.pattern.is_empty()
            && self.keep.is_empty()
    }
}

/// One layer's form: whether it is on, its rows (the last one empty, to add), its errors by
/// the form's row numbers.
struct Layer<R> {
    enabled: bool,
    rows: Vec<R>,
    errors: FormErrors,
}

impl<R> Layer<R> {
    /// The error of `list[index].part` (`rules[0].filter`).
    fn row_error(&self, list: &str, index: &usize, part: &str) -> Option<&str> {
        self.errors.get(&format!("{list}[{index}].{part}"))
    }
}

/// The preview's form and what it found.
#[derive(Default)]
struct Preview {
    connection: String,
    object: String,
    /// Asked for: the form was sent.
    asked: bool,
    error: Option<String>,
    columns: Vec<String>,
    /// Cells: `None` is a field a policy hides.
    rows: Vec<Vec<Option<String>>>,
}

#[derive(Template)]
#[template(path = "policies/policies.html")]
struct PoliciesPage {
    shell: Shell,
    teams: Vec<Choice>,
    connections: Vec<Choice>,
    pipelines: Vec<Choice>,
    kinds: Vec<Choice>,
    access: Layer<GrantRow>,
    ownership: Layer<OwnershipRow>,
    redaction: Layer<RedactionRow>,
    /// Every layer's errors, for the summary at the top.
    summary: Vec<(String, String, String)>,
    picker: Option<ViewAsPicker>,
    preview: Preview,
    hidden_title: &'static str,
}

/// What the stored policies are as rows (plus the empty one).
fn grant_rows(policy: &AccessPolicy) -> Vec<GrantRow> {
    let mut rows: Vec<GrantRow> = policy
        .grants
        .iter()
        .map(|g| {
            let (object, dataset_id) = match g.object_kind {
                PolicyObjectKind::Connection => (format!("connection:{}", g.object_id), ""),
                PolicyObjectKind::Pipeline => (format!("pipeline:{}", g.object_id), ""),
                PolicyObjectKind::Dataset => ("dataset".to_owned(), g.object_id.as_str()),
            };
            GrantRow {
                team_id: g.team_id.to_string(),
                object,
                dataset_id: dataset_id.to_owned(),
                remove: false,
            }
        })
        .collect();
    rows.push(GrantRow::default());
    rows
}

fn ownership_rows(policy: &OwnershipPolicy) -> Vec<OwnershipRow> {
    let mut rows: Vec<OwnershipRow> = policy
        .rules
        .iter()
        .map(|r| OwnershipRow {
            team_id: r.team_id.to_string(),
            connection_id: r.connection_id.to_string(),
            object: r.object.clone(),
            filter: r.filter.clone(),
            remove: false,
        })
        .collect();
    rows.push(OwnershipRow::default());
    rows
}

fn kind_text(kind: RedactionKind) -> &'static str {
    match kind {
        RedactionKind::Mask => "mask",
        RedactionKind::Partial => "partial",
        RedactionKind::Scramble => "scramble",
        RedactionKind::Hide => "hide",
    }
}

fn redaction_rows(policy: &RedactionPolicy) -> Vec<RedactionRow> {
    let mut rows: Vec<RedactionRow> = policy
        .rules
        .iter()
        .map(|r| RedactionRow {
            team_id: r.team_id.map(|t| t.to_string()).unwrap_or_default(),
            connection_id: r.connection_id.map(|c| c.to_string()).unwrap_or_default(),
            object: r.object.clone().unwrap_or_default(),
            field: r.field.clone().unwrap_or_default(),
            pattern: r.pattern.clone().unwrap_or_default(),
            kind: kind_text(r.kind).to_owned(),
            keep: r.keep.map(|k| k.to_string()).unwrap_or_default(),
            exempt_administrators: r.exempt_administrators,
            remove: false,
        })
        .collect();
    rows.push(RedactionRow {
        kind: "mask".to_owned(),
        ..RedactionRow::default()
    });
    rows
}

/// The query of the page: a notice, and the preview's form.
#[derive(Deserialize, Default)]
struct PageQuery {
    notice: Option<String>,
    preview_connection: Option<String>,
    preview_object: Option<String>,
    view_as: Option<String>,
}

/// A layer refused, shown again as posted.
enum Refused {
    None,
    Access(Layer<GrantRow>),
    Ownership(Layer<OwnershipRow>),
    Redaction(Layer<RedactionRow>),
}

/// The summary lines of a layer's errors, the anchors made unique per layer.
fn summary_of(layer: &str, errors: &FormErrors) -> Vec<(String, String, String)> {
    errors
        .summary()
        .into_iter()
        .map(|(id, field, message)| (format!("{layer}-{id}"), field, message))
        .collect()
}

async fn page(
    state: &AppState,
    signed: &SignedIn,
    query: &PageQuery,
    refused: Refused,
) -> Result<Response, WebError> {
    let caller = &signed.caller;
    let access = state.hub.access_policy(caller).await?;
    let ownership = state.hub.ownership_policy(caller).await?;
    let redaction = state.hub.redaction_policy(caller).await?;
    let teams = state.hub.list_teams(caller).await?;
    let connections = state.hub.list_connections(caller).await?;
    let pipelines = state.hub.list_pipelines(caller).await?;
    let status = if matches!(refused, Refused::None) {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let (mut access_form, mut ownership_form, mut redaction_form) = (
        Layer {
            enabled: access.enabled,
            rows: grant_rows(&access),
            errors: FormErrors::none(),
        },
        Layer {
            enabled: ownership.enabled,
            rows: ownership_rows(&ownership),
            errors: FormErrors::none(),
        },
        Layer {
            enabled: redaction.enabled,
            rows: redaction_rows(&redaction),
            errors: FormErrors::none(),
        },
    );
    match refused {
        Refused::None => {}
        Refused::Access(layer) => access_form = layer,
        Refused::Ownership(layer) => ownership_form = layer,
        Refused::Redaction(layer) => redaction_form = layer,
    }
    let mut summary = summary_of("access", &access_form.errors);
    summary.extend(summary_of("ownership", &ownership_form.errors));
    summary.extend(summary_of("redaction", &redaction_form.errors));

    let selected_view = view_as::parse(query.view_as.as_deref())?;
    let picker = view_as::picker(
        state,
        signed,
        "/policies".to_owned(),
        Vec::new(),
        selected_view,
    )
    .await?;
    let preview = preview(state, signed, query, selected_view).await?;
    let page = PoliciesPage {
        shell: signed.shell("Data policies", "policies").with_notice(
            NoticeQuery {
                notice: query.notice.clone(),
            }
            .text(),
        ),
        teams: teams
            .into_iter()
            .map(|t| Choice {
                value: t.id.to_string(),
                label: t.name,
            })
            .collect(),
        connections: connections
            .into_iter()
            .map(|c| Choice {
                value: c.id.to_string(),
                label: c.name,
            })
            .collect(),
        pipelines: pipelines
            .into_iter()
            .map(|p| Choice {
                value: p.id.to_string(),
                label: p.name,
            })
            .collect(),
        kinds: KINDS
            .iter()
            .map(|(v, l)| Choice {
                value: (*v).to_owned(),
                label: (*l).to_owned(),
            })
            .collect(),
        access: access_form,
        ownership: ownership_form,
        redaction: redaction_form,
        summary,
        picker,
        preview,
        hidden_title: HIDDEN_TITLE,
    };
    Ok(render_status(status, &page))
}

/// The preview's sample, when its form was sent (a connection and an object).
async fn preview(
    state: &AppState,
    signed: &SignedIn,
    query: &PageQuery,
    view_as: Option<lockstep_app::ViewAs>,
) -> Result<Preview, WebError> {
    let connection = query
        .preview_connection
        .as_deref()
        .map(str::trim)
        .unwrap_or_default();
    let object = query
        .preview_object
        .as_deref()
        .map(str::trim)
        .unwrap_or_default();
    let mut preview = Preview {
        connection: connection.to_owned(),
        object: object.to_owned(),
        ..Preview::default()
    };
    if connection.is_empty() && object.is_empty() {
        return Ok(preview);
    }
    preview.asked = true;
    let Ok(id) = connection.parse() else {
        preview.error = Some("Choose a connection.".to_owned());
        return Ok(preview);
    };
    if object.is_empty() {
        preview.error = Some("Enter the object to sample.".to_owned());
        return Ok(preview);
    }
    let records = match state
        .hub
        .sample_records_as(&signed.caller, id, object, PREVIEW_SIZE, view_as)
        .await
    {
        Ok(records) => records,
        Err(
            err @ (AppError::NotFound(_)
            | AppError::Invalid { .. }
            | AppError::InvalidConfig { .. }
            | AppError::Connector { .. }),
        ) => {
            let errors = FormErrors::from_app(err);
            let fields: Vec<String> = errors.fields().iter().map(|(_, m)| m.clone()).collect();
            preview.error = Some(errors.general.unwrap_or_else(|| fields.join(" ")));
            return Ok(preview);
        }
        Err(err) => return Err(err.into()),
    };
    let known = state.hub.connection_objects(&signed.caller, id).await?;
    let mut columns: Vec<String> = known
        .objects
        .iter()
        .find(|o| o.name == object)
        .map(|o| o.fields.iter().map(|f| f.name.clone()).collect())
        .unwrap_or_default();
    for record in &records {
        for key in record.keys() {
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    // A hidden field is absent from every record (a field only some records lack is null).
    let hidden: Vec<bool> = columns
        .iter()
        .map(|c| !records.is_empty() && records.iter().all(|r| !r.contains_key(c)))
        .collect();
    preview.rows = records
        .iter()
        .map(|record| {
            columns
                .iter()
                .zip(&hidden)
                .map(|(c, hidden)| match record.get(c) {
                    None if *hidden => None,
                    None => Some("null".to_owned()),
                    Some(Value::Null) => Some("null".to_owned()),
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(other) => Some(other.to_string()),
                })
                .collect()
        })
        .collect();
    preview.columns = columns;
    Ok(preview)
}

async fn policies(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(query): Query<PageQuery>,
) -> Result<Response, WebError> {
    page(&state, &signed, &query, Refused::None).await
}

// ----- the posted forms -----

/// The posted rows of `list` by the page's row number: `rules[3].filter` → row 3, `filter`.
fn posted_rows(
    pairs: &[(String, String)],
    list: &str,
) -> BTreeMap<usize, BTreeMap<String, String>> {
    let mut rows: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
    for (name, value) in pairs {
        let Some((index, part)) = name
            .strip_prefix(list)
            .and_then(|r| r.strip_prefix('['))
            .and_then(|r| r.split_once("]."))
        else {
            continue;
        };
        let Ok(index) = index.parse::<usize>() else {
            continue;
        };
        rows.entry(index)
            .or_default()
            .insert(part.to_owned(), value.trim().to_owned());
    }
    rows
}

fn enabled(pairs: &[(String, String)]) -> bool {
    pairs.iter().any(|(n, _)| n == "enabled")
}

fn part(row: &BTreeMap<String, String>, name: &str) -> String {
    row.get(name).cloned().unwrap_or_default()
}

/// The use case's error, its `list[k]` (the k-th saved rule) turned into the page's row
/// numbers (`origin[k]`).
fn renumbered(err: AppError, list: &str, origin: &[usize]) -> FormErrors {
    let errors = FormErrors::from_app(err);
    let mut out = match &errors.general {
        Some(g) => FormErrors::general(g.clone()),
        None => FormErrors::none(),
    };
    for (field, message) in errors.fields() {
        let mapped = field
            .strip_prefix(list)
            .and_then(|r| r.strip_prefix('['))
            .and_then(|r| r.split_once("]."))
            .and_then(|(k, part)| {
                let k: usize = k.parse().ok()?;
                Some(format!("{list}[{}].{part}", origin.get(k)?))
            })
            .unwrap_or_else(|| field.clone());
        out = out.field(&mapped, message.clone());
    }
    out
}

/// Refusals a form shows; anything else is the error page.
fn is_refusal(err: &AppError) -> bool {
    matches!(
        err,
        AppError::Invalid { .. } | AppError::InvalidConfig { .. } | AppError::Refused(_)
    )
}

async fn save_access(
    State(state): State<AppState>,
    Posted(signed, pairs): Posted<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let posted = posted_rows(&pairs, "grants");
    let mut rows = Vec::new();
    let mut grants = Vec::new();
    let mut origin = Vec::new();
    let mut errors = FormErrors::none();
    for (i, row) in posted.values().enumerate() {
        let form = GrantRow {
            team_id: part(row, "team_id"),
            object: part(row, "object"),
            dataset_id: part(row, "dataset_id"),
            remove: row.contains_key("remove"),
        };
        if !form.is_blank() && !form.remove {
            let team = form.team_id.parse();
            let object = match form.object.split_once(':') {
                Some(("connection", id)) => Some((PolicyObjectKind::Connection, id.to_owned())),
                Some(("pipeline", id)) => Some((PolicyObjectKind::Pipeline, id.to_owned())),
                None if form.object == "dataset" => {
                    Some((PolicyObjectKind::Dataset, form.dataset_id.clone()))
                }
                _ => None,
            };
            match (team, object) {
                (Ok(team_id), Some((object_kind, object_id))) => {
                    origin.push(i);
                    grants.push(AccessGrant {
                        team_id,
                        object_kind,
                        object_id,
                    });
                }
                (team, object) => {
                    if team.is_err() {
                        errors = errors.field(&format!("grants[{i}].team_id"), "Choose a team.");
                    }
                    if object.is_none() {
                        errors = errors.field(
                            &format!("grants[{i}].object_id"),
                            "Choose a connection, a pipeline or a data set.",
                        );
                    }
                }
            }
        }
        rows.push(form);
    }
    if errors.is_empty() {
        let policy = AccessPolicy {
            enabled: enabled(&pairs),
            grants,
        };
        match state.hub.put_access_policy(&signed.caller, policy).await {
            Ok(_) => return Ok(see_other("/policies?notice=saved#access")),
            Err(err) if is_refusal(&err) => errors = renumbered(err, "grants", &origin),
            Err(err) => return Err(err.into()),
        }
    }
    if rows.last().is_none_or(|r| !r.is_blank()) {
        rows.push(GrantRow::default());
    }
    let layer = Layer {
        enabled: enabled(&pairs),
        rows,
        errors,
    };
    page(
        &state,
        &signed,
        &PageQuery::default(),
        Refused::Access(layer),
    )
    .await
}

async fn save_ownership(
    State(state): State<AppState>,
    Posted(signed, pairs): Posted<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let posted = posted_rows(&pairs, "rules");
    let mut rows = Vec::new();
    let mut rules = Vec::new();
    let mut origin = Vec::new();
    let mut errors = FormErrors::none();
    for (i, row) in posted.values().enumerate() {
        let form = OwnershipRow {
            team_id: part(row, "team_id"),
            connection_id: part(row, "connection_id"),
            object: part(row, "object"),
            filter: part(row, "filter"),
            remove: row.contains_key("remove"),
        };
        if !form.is_blank() && !form.remove {
            match (form.team_id.parse(), form.connection_id.parse()) {
                (Ok(team_id), Ok(connection_id)) => {
                    origin.push(i);
                    rules.push(OwnershipRule {
                        team_id,
                        connection_id,
                        object: form.object.clone(),
                        filter: form.filter.clone(),
                    });
                }
                (team, connection) => {
                    if team.is_err() {
                        errors = errors.field(&format!("rules[{i}].team_id"), "Choose a team.");
                    }
                    if connection.is_err() {
                        errors = errors
                            .field(&format!("rules[{i}].connection_id"), "Choose a connection.");
                    }
                }
            }
        }
        rows.push(form);
    }
    if errors.is_empty() {
        let policy = OwnershipPolicy {
            enabled: enabled(&pairs),
            rules,
        };
        match state.hub.put_ownership_policy(&signed.caller, policy).await {
            Ok(_) => return Ok(see_other("/policies?notice=saved#ownership")),
            Err(err) if is_refusal(&err) => errors = renumbered(err, "rules", &origin),
            Err(err) => return Err(err.into()),
        }
    }
    if rows.last().is_none_or(|r| !r.is_blank()) {
        rows.push(OwnershipRow::default());
    }
    let layer = Layer {
        enabled: enabled(&pairs),
        rows,
        errors,
    };
    page(
        &state,
        &signed,
        &PageQuery::default(),
        Refused::Ownership(layer),
    )
    .await
}

fn parse_kind(text: &str) -> Option<RedactionKind> {
    Some(match text {
        "mask" => RedactionKind::Mask,
        "partial" => RedactionKind::Partial,
        "scramble" => RedactionKind::Scramble,
        "hide" => RedactionKind::Hide,
        _ => return None,
    })
}

fn some_text(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

async fn save_redaction(
    State(state): State<AppState>,
    Posted(signed, pairs): Posted<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let posted = posted_rows(&pairs, "rules");
    let mut rows = Vec::new();
    let mut rules = Vec::new();
    let mut origin = Vec::new();
    let mut errors = FormErrors::none();
    for (i, row) in posted.values().enumerate() {
        let form = RedactionRow {
            team_id: part(row, "team_id"),
            connection_id: part(row, "connection_id"),
            object: part(row, "object"),
            field: part(row, "field"),
            pattern: part(row, "pattern"),
            kind: part(row, "kind"),
            keep: part(row, "keep"),
            exempt_administrators: row.contains_key("exempt_administrators"),
            remove: row.contains_key("remove"),
        };
        if !form.is_blank() && !form.remove {
            let at = |p: &str| format!("rules[{i}].{p}");
            let team_id = match form.team_id.as_str() {
                "" => Ok(None),
                t => t.parse().map(Some).map_err(|_| "Choose a team."),
            };
            let connection_id = match form.connection_id.as_str() {
                "" => Ok(None),
                c => c.parse().map(Some).map_err(|_| "Choose a connection."),
            };
            let kind = parse_kind(&form.kind).ok_or("Choose how the value is shown.");
            let keep = match form.keep.as_str() {
                "" => Ok(None),
                k => k
                    .parse::<u32>()
                    .map(Some)
                    .map_err(|_| "Enter a whole number of characters (1 to 64)."),
            };
            match (team_id, connection_id, kind, keep) {
                (Ok(team_id), Ok(connection_id), Ok(kind), Ok(keep)) => {
                    origin.push(i);
                    rules.push(RedactionRule {
                        team_id,
                        connection_id,
                        object: some_text(&form.object),
                        field: some_text(&form.field),
                        pattern: some_text(&form.pattern),
                        kind,
                        keep,
                        exempt_administrators: form.exempt_administrators,
                    });
                }
                (team_id, connection_id, kind, keep) => {
                    for (name, result) in [
                        ("team_id", team_id.err()),
                        ("connection_id", connection_id.err()),
                        ("kind", kind.err()),
                        ("keep", keep.err()),
                    ] {
                        if let Some(message) = result {
                            errors = errors.field(&at(name), message);
                        }
                    }
                }
            }
        }
        rows.push(form);
    }
    if errors.is_empty() {
        let policy = RedactionPolicy {
            enabled: enabled(&pairs),
            rules,
        };
        match state.hub.put_redaction_policy(&signed.caller, policy).await {
            Ok(_) => return Ok(see_other("/policies?notice=saved#redaction")),
            Err(err) if is_refusal(&err) => errors = renumbered(err, "rules", &origin),
            Err(err) => return Err(err.into()),
        }
    }
    if rows.last().is_none_or(|r| !r.is_blank()) {
        rows.push(RedactionRow {
            kind: "mask".to_owned(),
            ..RedactionRow::default()
        });
    }
    let layer = Layer {
        enabled: enabled(&pairs),
        rows,
        errors,
    };
    page(
        &state,
        &signed,
        &PageQuery::default(),
        Refused::Redaction(layer),
    )
    .await
}
