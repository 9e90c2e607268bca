//! Pages: connections. Everybody sees the list, a connection's name and kind and its discovered
//! objects; Administrators create, edit, test, discover, connect (OAuth) and delete, and see the
//! configuration (never a secret's value: only which secrets are set); Editors and
//! Administrators read samples. Every change is the API's use case.

mod form;
mod input;
mod uploads;

use super::page::{
    FormErrors, NoticeQuery, Shell, WebError, render, render_status, see_other, when,
};
use super::session::{Posted, SignedIn};
use crate::AppState;
use crate::problem::ApiError;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use form::{FormState, Item, kind_label};
use input::Submitted;
use lockstep_app::connectors::{ConnectionKind, FailureKind, Secret};
use lockstep_app::{AppError, ConnectionUpdate, ConnectionView, NewConnection, TestOutcome};
use lockstep_domain::{ConnectionId, Role};
use lockstep_policy::Action;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The most records a sample page shows.
const SAMPLE_SIZE: usize = 20;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/connections", get(list).post(create))
        .route("/connections/new", get(new_page))
        .route("/connections/{id}", get(details))
        .route("/connections/{id}/edit", get(edit_page).post(update))
        .route("/connections/{id}/delete", post(delete))
        .route("/connections/{id}/test", post(test))
        .route("/connections/{id}/discover", post(discover))
        .route("/connections/{id}/objects/{name}/sample", get(sample))
        .route("/connections/{id}/oauth/connect", post(oauth_connect))
        .route("/connections/{id}/oauth/disconnect", post(oauth_disconnect))
        .route("/connections/{id}/files", post(uploads::upload))
        .route(
            "/connections/{id}/files/{name}/delete",
            post(uploads::delete),
        )
}

fn connection_id(id: &str) -> Result<ConnectionId, WebError> {
    id.parse().map_err(|_| WebError::not_found("connection"))
}

/// The 403 page the use case would answer, for pages that only show a form.
fn administrators_only() -> WebError {
    WebError::from(AppError::Forbidden {
        needs: Role::Administrator,
    })
}

/// Errors a form or a page shows in place (the rest is the error page).
fn shown_in_place(err: &AppError) -> bool {
    matches!(
        err,
        AppError::Invalid { .. }
            | AppError::InvalidConfig { .. }
            | AppError::Conflict(_)
            | AppError::Refused(_)
            | AppError::Connector { .. }
    )
}

/// What failed, for people.
fn failure_words(kind: &str) -> &'static str {
    match kind {
        "refused" => "The connection was refused (nothing listens there, or a firewall said no)",
        "timeout" => "No answer in time",
        "authentication" => "The credentials were not accepted",
        "tls" => "TLS could not be set up",
        "dns" => "The host name does not resolve",
        "policy" => {
            "The hub's egress policy or files directory does not allow this address or path"
        }
        "not_found" => "The object does not exist",
        "protocol" => "The other side answered something unexpected",
        _ => "The connection failed",
    }
}

/// One readable sentence for an error shown on a page.
fn alert_text(api: ApiError) -> String {
    match (api.failure, &api.detail) {
        (Some(failure), Some(detail)) => {
            format!("{}: {detail}", failure_words(failure.as_str()))
        }
        (Some(failure), None) => format!("{}.", failure_words(failure.as_str())),
        _ => FormErrors::from_api(&ApiError { field: None, ..api })
            .general
            .unwrap_or_default(),
    }
}

// ----- the list -----

struct ListRow {
    id: String,
    name: String,
    kind: &'static str,
}

#[derive(Template)]
#[template(path = "connections/list.html")]
struct ListPage {
    shell: Shell,
    rows: Vec<ListRow>,
    can_create: bool,
}

async fn list(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    let rows = state
        .hub
        .list_connections(&signed.caller)
        .await?
        .into_iter()
        .map(|c| ListRow {
            id: c.id.to_string(),
            name: c.name,
            kind: kind_label(c.kind),
        })
        .collect();
    let page = ListPage {
        shell: signed
            .shell("Connections", "connections")
            .with_notice(query.text()),
        rows,
        can_create: signed.nav.can(Action::ManageConnections),
    };
    Ok(render(&page))
}

// ----- the form (new and edit) -----

#[derive(Template)]
#[template(path = "connections/form.html")]
struct FormPage {
    shell: Shell,
    action: String,
    /// The connection being edited: its id and kind (which cannot change).
    editing: Option<(String, &'static str)>,
    name: String,
    kind: String,
    kinds: Vec<(&'static str, &'static str)>,
    items: Vec<Item>,
    errors: FormErrors,
}

impl FormPage {
    fn is_kind(&self, value: &str) -> bool {
        self.kind == value
    }

    /// The errors for the summary at the top: the name's and the kind's, then each control's,
    /// linking to the control's own id (`postgres-config-port`: the kind shown).
    fn summary(&self) -> Vec<(String, String, String)> {
        let mut lines = self.errors.summary();
        lines.extend(
            self.items
                .iter()
                .filter_map(|item| item.control.as_ref())
                .filter_map(|c| {
                    let message = c.error.as_ref()?;
                    Some((c.id.clone(), c.label.to_owned(), message.clone()))
                }),
        );
        lines
    }
}

struct FormInput<'a> {
    name: String,
    /// The chosen kind as sent (the kind select shows it again).
    kind: String,
    state: FormState,
    secrets_set: &'a [String],
}

fn form_page(
    state: &AppState,
    signed: &SignedIn,
    editing: Option<(ConnectionId, ConnectionKind)>,
    input: FormInput<'_>,
) -> FormPage {
    let redirect_uri = state.hub.oauth_redirect_uri();
    let (title, action, kinds, items) = match editing {
        Some((id, kind)) => (
            "Edit connection",
            format!("/connections/{id}/edit"),
            Vec::new(),
            form::items(
                &[kind],
                false,
                &input.state,
                input.secrets_set,
                &redirect_uri,
            ),
        ),
        None => (
            "New connection",
            "/connections".to_owned(),
            ConnectionKind::ALL
                .iter()
                .map(|k| (k.as_str(), kind_label(*k)))
                .collect(),
            form::items(
                &ConnectionKind::ALL,
                true,
                &input.state,
                input.secrets_set,
                &redirect_uri,
            ),
        ),
    };
    FormPage {
        shell: signed.shell(title, "connections"),
        action,
        editing: editing.map(|(id, kind)| (id.to_string(), kind_label(kind))),
        name: input.name,
        kind: input.kind,
        kinds,
        items,
        errors: FormErrors::none(),
    }
}

/// Puts each error next to its control; what has no control (or no field: `""`) goes to the
/// top of the form.
fn place_errors(page: &mut FormPage, kind: Option<ConnectionKind>, errors: Vec<(String, String)>) {
    for (field, message) in errors {
        if field == "name" || field == "kind" {
            page.errors = std::mem::take(&mut page.errors).field(&field, message);
            continue;
        }
        let placed = kind.is_some_and(|k| form::place_error(&mut page.items, k, &field, &message));
        if !placed && page.errors.general.is_none() {
            page.errors.general = Some(if field.is_empty() {
                message
            } else {
                format!("{field}: {message}")
            });
        }
    }
}

/// The field and message of a use case's error for a form (`None` field: the whole form).
fn form_error(err: AppError) -> (Option<String>, String) {
    let api = ApiError::from(err);
    let errors = FormErrors::from_api(&api);
    match api.field {
        Some(field) => {
            let message = errors.get(&field).unwrap_or_default().to_owned();
            (Some(field), message)
        }
        None => (None, errors.general.unwrap_or_default()),
    }
}

async fn new_page(State(state): State<AppState>, signed: SignedIn) -> Result<Response, WebError> {
    if !signed.nav.can(Action::ManageConnections) {
        return Err(administrators_only());
    }
    let page = form_page(
        &state,
        &signed,
        None,
        FormInput {
            name: String::new(),
            kind: ConnectionKind::Postgres.as_str().to_owned(),
            state: FormState::default(),
            secrets_set: &[],
        },
    );
    Ok(render(&page))
}

async fn create(
    State(state): State<AppState>,
    Posted(signed, pairs): Posted<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    if !signed.nav.can(Action::ManageConnections) {
        return Err(administrators_only());
    }
    let sub = Submitted::from_pairs(pairs);
    let kind = ConnectionKind::parse(&sub.kind);
    let again = |errors: Vec<(String, String)>| {
        let mut page = form_page(
            &state,
            &signed,
            None,
            FormInput {
                name: sub.name.clone(),
                kind: sub.kind.clone(),
                state: sub.state(),
                secrets_set: &[],
            },
        );
        place_errors(&mut page, kind, errors);
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
    };
    let Some(kind) = kind else {
        return Ok(again(vec![(
            "kind".to_owned(),
            "Choose a kind.".to_owned(),
        )]));
    };
    let built = input::build(kind, &sub);
    if !built.errors.is_empty() {
        return Ok(again(built.errors.clone()));
    }
    let result = state
        .hub
        .create_connection(
            &signed.caller,
            NewConnection {
                name: sub.name.clone(),
                kind: kind.as_str().to_owned(),
                config: built.config.clone(),
                secrets: built
                    .secrets
                    .iter()
                    .map(|(k, v)| (k.clone(), Secret::new(v.clone())))
                    .collect(),
            },
        )
        .await;
    match result {
        Ok(view) => Ok(see_other(&format!(
            "/connections/{}?notice=created",
            view.id
        ))),
        Err(err) if shown_in_place(&err) => {
            let (field, message) = form_error(err);
            let errors = match field {
                Some(field) => vec![(built.form_field(&field), message)],
                None => vec![(String::new(), message)],
            };
            Ok(again(errors))
        }
        Err(err) => Err(err.into()),
    }
}

/// The connection with the details an Administrator sees (403 for everybody else).
async fn managed(
    state: &AppState,
    signed: &SignedIn,
    id: ConnectionId,
) -> Result<(ConnectionView, lockstep_app::ConnectionDetails), WebError> {
    let mut view = state.hub.get_connection(&signed.caller, id).await?;
    match view.details.take() {
        Some(details) => Ok((view, details)),
        None => Err(administrators_only()),
    }
}

async fn edit_page(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = connection_id(&id)?;
    let (view, details) = managed(&state, &signed, id).await?;
    let page = form_page(
        &state,
        &signed,
        Some((id, view.kind)),
        FormInput {
            name: view.name,
            kind: view.kind.as_str().to_owned(),
            state: FormState::from_config(view.kind, &details.config),
            secrets_set: &details.secrets_set,
        },
    );
    Ok(render(&page))
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, pairs): Posted<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let id = connection_id(&id)?;
    let view = state.hub.get_connection(&signed.caller, id).await?;
    let kind = view.kind;
    let sub = Submitted::from_pairs(pairs);
    let built = input::build(kind, &sub);
    let mut errors = built.errors.clone();
    if errors.is_empty() {
        let mut secrets: BTreeMap<String, Option<Secret>> = built
            .secrets
            .iter()
            .map(|(k, v)| (k.clone(), Some(Secret::new(v.clone()))))
            .collect();
        for field in &built.removed {
            secrets.insert(field.clone(), None);
        }
        let update = ConnectionUpdate {
            name: Some(sub.name.clone()),
            config: Some(built.config.clone()),
            secrets: Some(secrets),
        };
        match state
            .hub
            .update_connection(&signed.caller, id, update)
            .await
        {
            Ok(_) => return Ok(see_other(&format!("/connections/{id}?notice=saved"))),
            Err(err) if shown_in_place(&err) => {
                let (field, message) = form_error(err);
                errors.push(match field {
                    Some(field) => (built.form_field(&field), message),
                    None => (String::new(), message),
                });
            }
            Err(err) => return Err(err.into()),
        }
    }
    let (_, details) = managed(&state, &signed, id).await?;
    let mut page = form_page(
        &state,
        &signed,
        Some((id, kind)),
        FormInput {
            name: sub.name.clone(),
            kind: kind.as_str().to_owned(),
            state: sub.state(),
            secrets_set: &details.secrets_set,
        },
    );
    place_errors(&mut page, Some(kind), errors);
    Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

// ----- the details page -----

struct FieldRow {
    name: String,
    field_type: String,
    native: String,
    nullable: bool,
    primary_key: bool,
}

struct ObjectRow {
    name: String,
    kind: String,
    fields: Vec<FieldRow>,
    sample: String,
    /// Files: how it was read ("windows-1252, delimiter ;").
    layout: Option<String>,
    /// Files: why it could not be discovered.
    error: Option<String>,
}

/// A file's encoding and delimiter in words.
fn layout_words(layout: &lockstep_app::connectors::FileLayout) -> String {
    match layout.delimiter.as_deref() {
        Some("\t") => format!("{}, delimiter tab", layout.encoding),
        Some(d) => format!("{}, delimiter {d}", layout.encoding),
        None => layout.encoding.clone(),
    }
}

struct UploadRow {
    name: String,
    /// Where its Delete button posts.
    delete: String,
    size: u64,
    created: String,
}

struct OAuthView {
    connected: bool,
    expires: Option<String>,
}

/// What only Administrators see.
struct AdminView {
    config: Vec<(String, String)>,
    /// Secret fields the configuration uses (or that are stored): label and whether set.
    secrets: Vec<(&'static str, bool)>,
    oauth: Option<OAuthView>,
    /// `Some` for a `files` connection.
    uploads: Option<Vec<UploadRow>>,
    created: String,
    updated: String,
}

/// The answer of "test connection".
struct TestView {
    ok: bool,
    summary: &'static str,
    message: String,
}

impl TestView {
    fn from_outcome(outcome: TestOutcome) -> TestView {
        TestView {
            ok: outcome.ok,
            summary: if outcome.ok {
                "Connected"
            } else {
                failure_words(outcome.failure.unwrap_or(FailureKind::Other).as_str())
            },
            message: if outcome.ok && outcome.message == "connected" {
                "The hub reached it and the credentials were accepted.".to_owned()
            } else {
                outcome.message
            },
        }
    }
}

#[derive(Template)]
#[template(path = "connections/test_fragment.html")]
struct TestFragment {
    test: Option<TestView>,
}

#[derive(Template)]
#[template(path = "connections/details.html")]
struct DetailsPage {
    shell: Shell,
    id: String,
    name: String,
    kind: &'static str,
    admin: Option<AdminView>,
    objects: Vec<ObjectRow>,
    discovered: Option<String>,
    can_sample: bool,
    test: Option<TestView>,
    alert: Option<String>,
    /// The error of an upload, shown next to the file input.
    upload_error: Option<String>,
}

/// A path segment: everything but unreserved characters percent-encoded.
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn serde_word<T: serde::Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn admin_view(
    id: ConnectionId,
    kind: ConnectionKind,
    details: lockstep_app::ConnectionDetails,
    zone: lockstep_app::TimeZone,
) -> AdminView {
    let config = form::flatten(&details.config, "")
        .into_iter()
        .map(|(path, value)| {
            let text = match value {
                Value::String(s) => s,
                Value::Bool(b) => if b { "yes" } else { "no" }.to_owned(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            (path.trim_start_matches('.').to_owned(), text)
        })
        .collect();
    let mut fields: Vec<&'static str> = form::secret_fields(kind, &details.config).to_vec();
    for set in &details.secrets_set {
        if let Some(f) = kind.secret_fields().iter().find(|f| **f == set.as_str())
            && !fields.contains(f)
        {
            fields.push(f);
        }
    }
    AdminView {
        config,
        secrets: fields
            .into_iter()
            .map(|f| {
                (
                    form::secret_label(f),
                    details.secrets_set.iter().any(|s| s == f),
                )
            })
            .collect(),
        oauth: details.oauth.map(|o| OAuthView {
            connected: o.connected,
            expires: o.expires_at.map(|t| when(zone, t)),
        }),
        uploads: (kind == ConnectionKind::Files).then(|| {
            details
                .uploads
                .into_iter()
                .map(|u| UploadRow {
                    delete: format!("/connections/{id}/files/{}/delete", path_segment(&u.name)),
                    name: u.name,
                    size: u.size,
                    created: when(zone, u.created_at),
                })
                .collect()
        }),
        created: when(zone, details.created_at),
        updated: when(zone, details.updated_at),
    }
}

async fn details_page(
    state: &AppState,
    signed: &SignedIn,
    id: ConnectionId,
    notice: Option<&'static str>,
) -> Result<DetailsPage, WebError> {
    let view = state.hub.get_connection(&signed.caller, id).await?;
    let found = state.hub.connection_objects(&signed.caller, id).await?;
    let objects = found
        .objects
        .into_iter()
        .map(|o| ObjectRow {
            sample: format!("/connections/{id}/objects/{}/sample", path_segment(&o.name)),
            layout: o.layout.as_ref().map(layout_words),
            error: o.error,
            name: o.name,
            kind: serde_word(o.kind),
            fields: o
                .fields
                .into_iter()
                .map(|f| FieldRow {
                    name: f.name,
                    field_type: serde_word(f.field_type),
                    native: f.native,
                    nullable: f.nullable,
                    primary_key: f.primary_key,
                })
                .collect(),
        })
        .collect();
    Ok(DetailsPage {
        shell: signed
            .shell(view.name.clone(), "connections")
            .with_notice(notice),
        id: id.to_string(),
        kind: kind_label(view.kind),
        admin: view
            .details
            .map(|d| admin_view(id, view.kind, d, signed.nav.time_zone)),
        name: view.name,
        objects,
        discovered: found.discovered_at.map(|t| when(signed.nav.time_zone, t)),
        can_sample: signed.nav.can(Action::SampleRecords),
        test: None,
        alert: None,
        upload_error: None,
    })
}

async fn details(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    let page = details_page(&state, &signed, connection_id(&id)?, query.text()).await?;
    Ok(render(&page))
}

/// The details page with an error of an action in place (a 409, 422 or 502 with the API's
/// words), or the error page for the rest.
async fn details_with_error(
    state: &AppState,
    signed: &SignedIn,
    id: ConnectionId,
    err: AppError,
) -> Result<Response, WebError> {
    if !shown_in_place(&err) {
        return Err(err.into());
    }
    let api = ApiError::from(err);
    let status = api.status;
    let mut page = details_page(state, signed, id, None).await?;
    page.alert = Some(alert_text(api));
    Ok(render_status(status, &page))
}

#[derive(Deserialize)]
struct Empty {}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let id = connection_id(&id)?;
    match state.hub.delete_connection(&signed.caller, id).await {
        Ok(()) => Ok(see_other("/connections?notice=deleted")),
        Err(err) => details_with_error(&state, &signed, id, err).await,
    }
}

/// "Test connection": the result as a fragment for htmx, or the page with the result.
async fn test(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let id = connection_id(&id)?;
    let outcome = state.hub.test_connection(&signed.caller, id).await?;
    let test = TestView::from_outcome(outcome);
    if headers.contains_key("hx-request") {
        return Ok(render(&TestFragment { test: Some(test) }));
    }
    let mut page = details_page(&state, &signed, id, None).await?;
    page.test = Some(test);
    Ok(render(&page))
}

async fn discover(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let id = connection_id(&id)?;
    match state.hub.discover_connection(&signed.caller, id).await {
        Ok(_) => Ok(see_other(&format!("/connections/{id}?notice=discovered"))),
        Err(err) => details_with_error(&state, &signed, id, err).await,
    }
}

// ----- samples -----

#[derive(Template)]
#[template(path = "connections/sample.html")]
struct SamplePage {
    shell: Shell,
    id: String,
    connection: String,
    object: String,
    columns: Vec<String>,
    /// Cells as text; `None` is null.
    rows: Vec<Vec<SampleCell>>,
    /// "View as" for Administrators.
    picker: Option<super::view_as::ViewAsPicker>,
    hidden_title: &'static str,
}

/// A cell of a sample.
enum SampleCell {
    Value(String),
    Null,
    /// A data policy hides the field from the viewer.
    Hidden,
}

impl SampleCell {
    fn text(&self) -> Option<&str> {
        match self {
            SampleCell::Value(v) => Some(v),
            _ => None,
        }
    }

    fn is_hidden(&self) -> bool {
        matches!(self, SampleCell::Hidden)
    }
}

#[derive(Deserialize, Default)]
struct SampleQuery {
    view_as: Option<String>,
}

async fn sample(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((id, object)): Path<(String, String)>,
    Query(query): Query<SampleQuery>,
) -> Result<Response, WebError> {
    let id = connection_id(&id)?;
    let view_as = super::view_as::parse(query.view_as.as_deref())?;
    let view = state.hub.get_connection(&signed.caller, id).await?;
    let records = state
        .hub
        .sample_records_as(&signed.caller, id, &object, SAMPLE_SIZE, view_as)
        .await?;
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
    let rows = records
        .iter()
        .map(|record| {
            columns
                .iter()
                .zip(&hidden)
                .map(|(c, hidden)| match record.get(c) {
                    None if *hidden => SampleCell::Hidden,
                    None => SampleCell::Null,
                    Some(Value::Null) => SampleCell::Null,
                    Some(Value::String(s)) => SampleCell::Value(s.clone()),
                    Some(other) => SampleCell::Value(other.to_string()),
                })
                .collect()
        })
        .collect();
    let picker = super::view_as::picker(
        &state,
        &signed,
        format!("/connections/{id}/objects/{}/sample", path_segment(&object)),
        Vec::new(),
        view_as,
    )
    .await?;
    let page = SamplePage {
        shell: signed.shell(format!("Sample of {object}"), "connections"),
        id: id.to_string(),
        connection: view.name,
        object,
        columns,
        rows,
        picker,
        hidden_title: super::view_as::HIDDEN_TITLE,
    };
    Ok(render(&page))
}

// ----- OAuth -----

#[derive(Template)]
#[template(path = "connections/oauth_continue.html")]
struct ContinuePage {
    shell: Shell,
    id: String,
    authorize_url: String,
}

/// "Connect": starts the authorization, gives this browser the cookie that binds it, and sends
/// the browser on to the provider with a page (a redirect answering a form post would be
/// blocked by the CSP's `form-action 'self'`).
async fn oauth_connect(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let id = connection_id(&id)?;
    match state.hub.oauth_start(&signed.caller, id).await {
        Ok(started) => {
            let max_age = (started.expires_at - time::OffsetDateTime::now_utc())
                .whole_seconds()
                .max(0);
            let page = ContinuePage {
                shell: signed.shell("Continue to the provider", "connections"),
                id: id.to_string(),
                authorize_url: started.authorize_url,
            };
            let mut response = render(&page);
            // Binds the authorization to this browser: the callback needs the cookie back.
            if let Some(cookie) = super::oauth_cookie(started.binding.expose(), max_age) {
                response
                    .headers_mut()
                    .append(axum::http::header::SET_COOKIE, cookie);
            }
            Ok(response)
        }
        Err(err) => details_with_error(&state, &signed, id, err).await,
    }
}

async fn oauth_disconnect(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let id = connection_id(&id)?;
    match state.hub.oauth_disconnect(&signed.caller, id).await {
        Ok(_) => Ok(see_other(&format!("/connections/{id}?notice=disconnected"))),
        Err(err) => details_with_error(&state, &signed, id, err).await,
    }
}
