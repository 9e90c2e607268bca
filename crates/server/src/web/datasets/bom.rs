//! Pages of bills of materials (BOM) as data sets: the upload form of the list page, and on a
//! BOM data set's page its tree (indented, a `<details>` per assembly so it opens and closes
//! without JavaScript; deeper levels loaded by htmx when opened, or all at once by a link), a
//! colour per status, issues on their cells, a thumbnail per part that has one, ticks with
//! "apply to children", the totals per part, the forms that compare it with another BOM file and
//! add its parts' files, and for Administrators the import profile the file was read with, to
//! correct and save for the pipeline.
//!
//! The use cases are the API's (`Hub::*bom*`, `Hub::dataset_tree`…), which refuse what the
//! member may not do and answer 404 for a data set they may not see. Files come as
//! `multipart/form-data` whose first field is the CSRF token (see [`crate::web::multipart`]).

use super::{GridQuery, Refusal, dataset_id, list_page, show_page, shown, status_label};
use crate::AppState;
use crate::web::multipart::{self, FileForm, Unreadable};
use crate::web::page::{FormErrors, WebError, render, render_status, see_other};
use crate::web::session::{Posted, SignedIn};
use askama::Template;
use axum::Router;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use lockstep_app::connectors::ConnectionKind;
use lockstep_app::engine::{BomSettings, Level};
use lockstep_app::{
    AppError, BomInfo, DatasetState, DatasetView, PartFileView, PipelineView, ProcessSelection,
    RecordView, TreeNode, TreeQuery,
};
use lockstep_bom::{Hierarchy, ImportProfile, Role};
use lockstep_domain::{DatasetId, PipelineId};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/datasets/upload", axum::routing::post(upload))
        .route("/datasets/{id}/tree", axum::routing::get(tree))
        .route("/datasets/{id}/tree/ticks", axum::routing::post(tree_ticks))
        .route("/datasets/{id}/parts", axum::routing::get(parts))
        .route("/datasets/{id}/compare", axum::routing::post(compare))
        .route("/datasets/{id}/files", axum::routing::post(add_files))
        .route("/datasets/{id}/files/{file}", axum::routing::get(part_file))
        .route("/datasets/{id}/profile", axum::routing::post(save_profile))
}

/// Top-level lines of the tree per page.
const TOP_PAGE: u64 = 100;
/// Children answered when one node is opened (the use case's most).
const CHILDREN_PAGE: u64 = lockstep_app::MAX_DATASET_PAGE;
/// Levels shown by "show all levels" (the use case's most).
const ALL_LEVELS: u32 = 64;
/// Indentation steps the style sheet has (deeper lines are indented as much).
const MAX_INDENT: u64 = 12;
/// The tree's columns, in order (the record fields they show).
const TREE_FIELDS: [&str; 5] = ["path", "part_number", "description", "quantity", "unit"];

// ---------------------------------------------------------------------------------------------
// The upload form of the list page.

/// What the upload form holds (shown again when refused).
#[derive(Default)]
pub(super) struct UploadForm {
    pub pipeline_id: String,
    pub name: String,
    pub root_part: String,
    pub errors: FormErrors,
}

/// The pipelines a bill of materials may be uploaded through, by (id, name): those whose
/// destination is a Tryton connection. A member who may not list connections sees them all
/// (the use case refuses the others, saying why).
pub(super) async fn bom_pipelines(
    state: &AppState,
    signed: &SignedIn,
    pipelines: &[PipelineView],
) -> Result<Vec<(String, String)>, WebError> {
    let tryton: Option<HashSet<String>> = match state.hub.list_connections(&signed.caller).await {
        Ok(list) => Some(
            list.into_iter()
                .filter(|c| c.kind == ConnectionKind::Tryton)
                .map(|c| c.id.to_string())
                .collect(),
        ),
        Err(AppError::Forbidden { .. }) => None,
        Err(err) => return Err(err.into()),
    };
    Ok(pipelines
        .iter()
        .filter(|p| {
            tryton
                .as_ref()
                .is_none_or(|t| t.contains(&p.spec.destination.connection_id))
        })
        .map(|p| (p.id.to_string(), p.name.clone()))
        .collect())
}

/// The list page again with the upload form refused.
async fn upload_refused(
    state: &AppState,
    signed: &SignedIn,
    status: StatusCode,
    mut form: UploadForm,
    errors: FormErrors,
) -> Result<Response, WebError> {
    form.errors = errors;
    let mut page = list_page(state, signed, false, Default::default(), FormErrors::none()).await?;
    page.upload = form;
    Ok(render_status(status, &page))
}

fn too_large() -> String {
    format!("Files are limited to {} MiB.", lockstep_app::MAX_UPLOAD_MIB)
}

/// A refused file in words, for the message next to a file input.
fn file_refusal(field: &str, reason: &str) -> String {
    match field {
        "body" => too_large(),
        "name" => format!("The file name {reason}."),
        _ => format!("This file cannot be read: {reason}."),
    }
}

/// `POST /datasets/upload`: a bill of materials made into a data set through a pipeline; its
/// page follows the comparison with the destination. A file that cannot be read is shown next
/// to the file input (422) and nothing is kept.
async fn upload(
    State(state): State<AppState>,
    signed: SignedIn,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, WebError> {
    let mut form = multipart::checked(&signed, &headers, form).await?;
    let sent = match multipart::file_form(&mut form).await {
        Ok(sent) => sent,
        Err(Unreadable::TooLarge) => {
            let errors = FormErrors::none().field("file", too_large());
            let status = StatusCode::PAYLOAD_TOO_LARGE;
            return upload_refused(&state, &signed, status, UploadForm::default(), errors).await;
        }
        Err(Unreadable::Broken(err)) => return Err(err),
    };
    let typed = UploadForm {
        pipeline_id: sent.text("pipeline_id").unwrap_or_default().to_owned(),
        name: sent.text("name").unwrap_or_default().to_owned(),
        root_part: sent.text("root_part").unwrap_or_default().to_owned(),
        errors: FormErrors::none(),
    };
    let invalid = StatusCode::UNPROCESSABLE_ENTITY;
    let Ok(pipeline) = typed.pipeline_id.parse::<PipelineId>() else {
        let errors = FormErrors::none().field("pipeline_id", "Choose a pipeline.");
        return upload_refused(&state, &signed, invalid, typed, errors).await;
    };
    if sent.file_name.is_empty() {
        let errors = FormErrors::none().field("file", "Choose a bill of materials file.");
        return upload_refused(&state, &signed, invalid, typed, errors).await;
    }
    let FileForm {
        file_name, file, ..
    } = sent;
    match state
        .hub
        .upload_bom_dataset(
            &signed.caller,
            pipeline,
            Some(typed.name.as_str()).filter(|n| !n.is_empty()),
            &file_name,
            Some(typed.root_part.as_str()).filter(|r| !r.is_empty()),
            file,
        )
        .await
    {
        Ok(view) => Ok(see_other(&format!("/datasets/{}?notice=pulling", view.id))),
        Err(AppError::Invalid { field, reason }) => {
            let errors = match field {
                "file" | "name" | "body" => {
                    FormErrors::none().field("file", file_refusal(field, &reason))
                }
                "pipeline_id" | "root_part" => {
                    FormErrors::none().field(field, capitalized(&reason))
                }
                _ => FormErrors::from_app(AppError::Invalid { field, reason }),
            };
            upload_refused(&state, &signed, invalid, typed, errors).await
        }
        Err(err @ (AppError::InvalidConfig { .. } | AppError::Refused(_))) => {
            let errors = FormErrors::from_app(err);
            upload_refused(&state, &signed, StatusCode::CONFLICT, typed, errors).await
        }
        Err(err) => Err(err.into()),
    }
}

fn capitalized(text: &str) -> String {
    let mut out = super::capitalized(text);
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The tree.

/// One column of a line of the tree.
pub(super) struct TreeCell {
    pub(super) field: &'static str,
    pub(super) value: String,
    /// The destination's value where it differs (an `update` line).
    pub(super) destination: Option<String>,
    /// "error", "warning" or "".
    pub(super) level: &'static str,
    pub(super) messages: Vec<String>,
}

impl TreeCell {
    pub(super) fn title(&self) -> String {
        self.messages.join("\n")
    }
}

/// One line of the tree, flattened: a leaf, an assembly whose children follow (`branch`), or an
/// assembly whose children are loaded when it is opened (`lazy`); `closes` says how many
/// assemblies end after it.
pub(super) struct TreeItem {
    pub(super) row: u64,
    pub(super) path: String,
    pub(super) part_number: String,
    pub(super) indent: u64,
    pub(super) kind: &'static str,
    pub(super) child_count: u64,
    pub(super) status: &'static str,
    pub(super) status_label: &'static str,
    /// Every line of a BOM has a tick: a `destination_only` line ticked is unlinked.
    pub(super) process: bool,
    pub(super) cells: Vec<TreeCell>,
    pub(super) other_issues: Vec<(String, &'static str)>,
    /// The part's first image.
    pub(super) thumb: Option<String>,
    /// The part's files, by (id, name).
    pub(super) files: Vec<(String, String)>,
    pub(super) closes: usize,
}

/// A number as people write it: `8`, not `8.0`.
fn quantity_text(value: &Value) -> String {
    match value.as_f64() {
        Some(q) if q.fract() == 0.0 && q.abs() < 1e15 => format!("{q:.0}"),
        Some(q) => q.to_string(),
        None => shown(value),
    }
}

fn level_of(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warning => "warning",
    }
}

/// Which tree column an issue is on: issues name the record field, the role, or the file's
/// column (`PART NUMBER`), as the import profile maps columns to roles.
struct IssueColumns(Vec<(String, &'static str)>);

impl IssueColumns {
    fn new(info: Option<&BomInfo>) -> IssueColumns {
        let profile =
            info.and_then(|i| serde_json::from_value::<ImportProfile>(i.profile.clone()).ok());
        let columns = profile
            .map(|p| {
                p.columns
                    .into_iter()
                    .filter_map(|c| {
                        let field = match c.role {
                            Role::Position => "path",
                            Role::PartNumber => "part_number",
                            Role::Description => "description",
                            Role::Quantity => "quantity",
                            Role::Unit => "unit",
                            _ => return None,
                        };
                        Some((c.column, field))
                    })
                    .collect()
            })
            .unwrap_or_default();
        IssueColumns(columns)
    }

    fn on(&self, issue_field: &str, field: &str) -> bool {
        issue_field == field
            || (field == "path" && issue_field == "position")
            || self.0.iter().any(|(c, f)| c == issue_field && *f == field)
    }
}

impl TreeItem {
    fn new(
        r: RecordView,
        files: Vec<PartFileView>,
        kind: &'static str,
        child_count: u64,
        columns: &IssueColumns,
    ) -> Self {
        let text = |field: &str| r.values.get(field).map(shown).unwrap_or_default();
        let mut placed = vec![false; r.issues.len()];
        let cells = TREE_FIELDS
            .iter()
            .map(|field| {
                let value = r.values.get(*field).unwrap_or(&Value::Null);
                let mut level = "";
                let mut messages = Vec::new();
                for (issue, placed) in r.issues.iter().zip(placed.iter_mut()) {
                    if columns.on(&issue.field, field) {
                        *placed = true;
                        messages.push(issue.message.clone());
                        level = if level == "error" {
                            "error"
                        } else {
                            level_of(issue.level)
                        };
                    }
                }
                let destination = r
                    .changes
                    .iter()
                    .find(|c| c.field == *field)
                    .map(|c| shown(&c.destination));
                TreeCell {
                    field,
                    value: if *field == "quantity" {
                        quantity_text(value)
                    } else {
                        shown(value)
                    },
                    destination,
                    level,
                    messages,
                }
            })
            .collect();
        let other_issues = r
            .issues
            .iter()
            .zip(&placed)
            .filter(|(_, placed)| !**placed)
            .map(|(issue, _)| {
                (
                    format!("{}: {}", issue.field, issue.message),
                    level_of(issue.level),
                )
            })
            .collect();
        let depth = r.values.get("depth").and_then(Value::as_u64).unwrap_or(0);
        TreeItem {
            row: r.row,
            path: text("path"),
            part_number: text("part_number"),
            indent: depth.min(MAX_INDENT),
            kind,
            child_count,
            status: r.status.as_str(),
            status_label: status_label(r.status),
            process: r.process,
            cells,
            other_issues,
            thumb: files
                .iter()
                .find(|f| f.content_type.starts_with("image/"))
                .map(|f| f.id.clone()),
            files: files.into_iter().map(|f| (f.id, f.name)).collect(),
            closes: 0,
        }
    }
}

/// The nodes as the template writes them: each followed by its loaded children.
fn flatten(nodes: Vec<TreeNode>, columns: &IssueColumns, out: &mut Vec<TreeItem>) {
    for node in nodes {
        // Children cut short by the use case's budget are loaded again when opened.
        let loaded = !node.children.is_empty() && node.children.len() as u64 >= node.child_count;
        let kind = match (node.child_count, loaded) {
            (0, _) => "leaf",
            (_, true) => "branch",
            (_, false) => "lazy",
        };
        out.push(TreeItem::new(
            node.record,
            node.files,
            kind,
            node.child_count,
            columns,
        ));
        if loaded {
            flatten(node.children, columns, out);
            if let Some(last) = out.last_mut() {
                last.closes += 1;
            }
        }
    }
}

/// The lines of one level of the tree, for the template (the page's and the fragment's).
pub(super) struct TreeBlock {
    pub(super) id: String,
    pub(super) may_tick: bool,
    pub(super) items: Vec<TreeItem>,
}

#[derive(Template)]
#[template(path = "datasets/tree_fragment.html")]
struct TreeFragment {
    b: TreeBlock,
}

#[derive(Deserialize)]
struct TreeParams {
    parent: Option<u64>,
}

/// `GET …/tree?parent=ROW` (htmx, when an assembly is opened): its children, each assembly
/// among them loaded in turn when opened.
async fn tree(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    Query(params): Query<TreeParams>,
) -> Result<Response, WebError> {
    let id = dataset_id(&id)?;
    let view = state.hub.get_dataset(&signed.caller, id).await?;
    let page = state
        .hub
        .dataset_tree(
            &signed.caller,
            id,
            TreeQuery {
                parent: params.parent,
                depth: 0,
                offset: 0,
                limit: CHILDREN_PAGE,
            },
        )
        .await?;
    let mut items = Vec::new();
    flatten(
        page.nodes,
        &IssueColumns::new(view.bom.as_ref()),
        &mut items,
    );
    let fragment = TreeFragment {
        b: TreeBlock {
            id: id.to_string(),
            may_tick: view.may_edit && !view.state.is_busy(),
            items,
        },
    };
    Ok(render(&fragment))
}

/// `POST …/tree/ticks`: the tree's tick boxes. `shown.<row>` names each line the page showed
/// with a box, `was.<row>` those that were ticked, `tick.<row>` those ticked now; only the
/// lines changed are sent, with everything below them when "apply to children" is ticked.
async fn tree_ticks(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, form): Posted<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let id = dataset_id(&id)?;
    let rows = |prefix: &str| -> BTreeSet<u64> {
        form.iter()
            .filter_map(|(k, _)| k.strip_prefix(prefix))
            .filter_map(|r| r.parse().ok())
            .collect()
    };
    let (ticked, was, shown) = (rows("tick."), rows("was."), rows("shown."));
    let on: Vec<u64> = ticked.difference(&was).copied().collect();
    let off: Vec<u64> = shown
        .iter()
        .filter(|r| was.contains(r) && !ticked.contains(r))
        .copied()
        .collect();
    let subtrees = form.iter().any(|(k, v)| k == "subtrees" && v == "on");
    let selection = |rows: Vec<u64>| {
        if subtrees {
            ProcessSelection::Subtrees(rows)
        } else {
            ProcessSelection::Rows(rows)
        }
    };
    let all_levels = form.iter().any(|(k, v)| k == "levels" && v == "all");
    let notice = if on.is_empty() && off.is_empty() {
        "unchanged"
    } else {
        "ticks"
    };
    // Unticked first: a line ticked below an unticked assembly stays ticked.
    for (rows, process) in [(off, false), (on, true)] {
        if !rows.is_empty() {
            state
                .hub
                .set_dataset_process(&signed.caller, id, selection(rows), process)
                .await?;
        }
    }
    let levels = if all_levels { "levels=all&" } else { "" };
    Ok(see_other(&format!(
        "/datasets/{id}?{levels}notice={notice}#tree"
    )))
}

// ---------------------------------------------------------------------------------------------
// The section of the data set's page.

/// What a refused BOM form shows on the data set's page.
#[derive(Default)]
pub(super) struct BomRefusal {
    pub compare: Option<String>,
    pub files: Option<String>,
    pub profile: FormErrors,
}

/// One column of the profile editor.
pub(super) struct ProfileColumn {
    pub(super) index: usize,
    pub(super) column: String,
    pub(super) role: &'static str,
}

/// The import profile as its editor shows it (Administrators).
pub(super) struct ProfileForm {
    pub(super) format: String,
    pub(super) sheet: Option<String>,
    pub(super) delimiter: Option<String>,
    pub(super) encoding: Option<String>,
    pub(super) header_row: usize,
    pub(super) columns: Vec<ProfileColumn>,
    pub(super) hierarchy: &'static str,
    pub(super) separator: char,
    pub(super) base: u8,
    pub(super) match_by_name: bool,
    pub(super) errors: FormErrors,
    pub(super) roles: &'static [(&'static str, &'static str)],
    pub(super) hierarchies: &'static [(&'static str, &'static str)],
}

/// The roles a column may play, by (value, label).
const ROLES: [(&str, &str); 8] = [
    ("position", "Item number (position)"),
    ("level", "Level"),
    ("parent", "Parent part number"),
    ("part_number", "Part number"),
    ("description", "Description"),
    ("quantity", "Quantity"),
    ("unit", "Unit"),
    ("property", "Other (kept as a property)"),
];

/// How the rows form a tree, by (value, label).
const HIERARCHIES: [(&str, &str); 4] = [
    ("dotted", "Dotted item numbers (2.17.1 is under 2.17)"),
    ("level", "A level column"),
    ("parent", "A parent part-number column"),
    ("flat", "None: every line is top level"),
];

fn hierarchy_parts(h: Hierarchy) -> (&'static str, char, u8) {
    match h {
        Hierarchy::Dotted { separator } => ("dotted", separator, 1),
        Hierarchy::Level { base } => ("level", '.', base),
        Hierarchy::Parent => ("parent", '.', 1),
        Hierarchy::Flat => ("flat", '.', 1),
    }
}

impl ProfileForm {
    fn new(profile: &ImportProfile, match_by_name: bool, errors: FormErrors) -> ProfileForm {
        let (hierarchy, separator, base) = hierarchy_parts(profile.hierarchy);
        ProfileForm {
            format: serde_json::to_value(profile.format)
                .ok()
                .as_ref()
                .map(shown)
                .unwrap_or_default(),
            sheet: profile.sheet.clone(),
            delimiter: profile.delimiter.map(|d| match d {
                '\t' => "tab".to_owned(),
                d => d.to_string(),
            }),
            encoding: profile
                .encoding
                .and_then(|e| serde_json::to_value(e).ok())
                .as_ref()
                .map(shown),
            header_row: profile.header_row,
            columns: profile
                .columns
                .iter()
                .enumerate()
                .map(|(index, c)| ProfileColumn {
                    index,
                    column: c.column.clone(),
                    role: c.role.as_str(),
                })
                .collect(),
            hierarchy,
            separator,
            base,
            match_by_name,
            errors,
            roles: &ROLES,
            hierarchies: &HIERARCHIES,
        }
    }
}

/// The BOM part of a data set's page.
pub(super) struct BomSection {
    pub(super) id: String,
    pub(super) may_tick: bool,
    pub(super) items: Vec<TreeItem>,
    pub(super) file_name: String,
    pub(super) against: Option<String>,
    pub(super) root: Option<String>,
    /// Top-level lines in all, and the first shown.
    pub(super) total: u64,
    pub(super) first: u64,
    pub(super) last: u64,
    pub(super) previous: Option<String>,
    pub(super) next: Option<String>,
    pub(super) all_levels: bool,
    /// The forms that change the data set (its owner, or an Administrator).
    pub(super) may_edit: bool,
    pub(super) profile: Option<ProfileForm>,
    pub(super) compare_error: Option<String>,
    pub(super) files_error: Option<String>,
}

/// The BOM section of a data set's page: the tree (top level and one level below, or every
/// level with `?levels=all`), and the forms.
pub(super) async fn section(
    state: &AppState,
    signed: &SignedIn,
    view: &DatasetView,
    info: &BomInfo,
    query: &GridQuery,
    refusal: BomRefusal,
) -> Result<BomSection, WebError> {
    let all_levels = query.levels.as_deref() == Some("all");
    let offset = query.top.unwrap_or(0);
    let id = view.id;
    let (items, total, shown_top) = if view.state == DatasetState::Pulling {
        (Vec::new(), 0, 0)
    } else {
        let page = state
            .hub
            .dataset_tree(
                &signed.caller,
                id,
                TreeQuery {
                    parent: None,
                    depth: if all_levels { ALL_LEVELS } else { 1 },
                    offset,
                    limit: TOP_PAGE,
                },
            )
            .await?;
        let shown_top = page.nodes.len() as u64;
        let mut items = Vec::new();
        flatten(page.nodes, &IssueColumns::new(Some(info)), &mut items);
        (items, page.total, shown_top)
    };
    let link = |top: u64| {
        let mut params = Vec::new();
        if all_levels {
            params.push("levels=all".to_owned());
        }
        if top > 0 {
            params.push(format!("top={top}"));
        }
        if params.is_empty() {
            format!("/datasets/{id}#tree")
        } else {
            format!("/datasets/{id}?{}#tree", params.join("&"))
        }
    };
    let profile = if signed.nav.is_admin() {
        match serde_json::from_value::<ImportProfile>(info.profile.clone()) {
            Ok(profile) => {
                let pipeline = state
                    .hub
                    .get_pipeline(&signed.caller, view.pipeline_id)
                    .await;
                let match_by_name = match pipeline {
                    Ok(p) => p.spec.bom.is_none_or(|b| b.match_by_name),
                    // The pipeline is gone: the data set keeps what it was read with.
                    Err(AppError::NotFound(_)) => true,
                    Err(err) => return Err(err.into()),
                };
                Some(ProfileForm::new(&profile, match_by_name, refusal.profile))
            }
            Err(_) => {
                tracing::debug!("a data set's import profile could not be read");
                None
            }
        }
    } else {
        None
    };
    Ok(BomSection {
        id: id.to_string(),
        may_tick: view.may_edit && !view.state.is_busy(),
        items,
        file_name: info.file_name.clone(),
        against: info.against.clone(),
        root: info.root.clone(),
        total,
        first: offset + 1,
        last: offset + shown_top,
        previous: (offset > 0).then(|| link(offset.saturating_sub(TOP_PAGE))),
        next: (offset + TOP_PAGE < total).then(|| link(offset + TOP_PAGE)),
        all_levels,
        may_edit: view.may_edit,
        profile,
        compare_error: refusal.compare,
        files_error: refusal.files,
    })
}

/// The data set's page again with a refused BOM form.
async fn page_refused(
    state: &AppState,
    signed: &SignedIn,
    id: DatasetId,
    status: StatusCode,
    bom: BomRefusal,
) -> Result<Response, WebError> {
    let refusal = Refusal {
        bom,
        ..Refusal::default()
    };
    let page = show_page(state, signed, id, &GridQuery::default(), refusal).await?;
    Ok(render_status(status, &page))
}

/// The page again with a use case's refusal as the page's alert (busy, not a BOM…).
async fn page_alert(
    state: &AppState,
    signed: &SignedIn,
    id: DatasetId,
    err: AppError,
) -> Result<Response, WebError> {
    let refusal = Refusal {
        alert: FormErrors::from_app(err).general,
        ..Refusal::default()
    };
    let page = show_page(state, signed, id, &GridQuery::default(), refusal).await?;
    Ok(render_status(StatusCode::CONFLICT, &page))
}

/// Reads a multipart form after its CSRF check; a form too large is `Err(Ok(message))`.
async fn read_file_form(
    signed: &SignedIn,
    headers: &HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Result<FileForm, String>, WebError> {
    let mut form = multipart::checked(signed, headers, form).await?;
    match multipart::file_form(&mut form).await {
        Ok(sent) => Ok(Ok(sent)),
        Err(Unreadable::TooLarge) => Ok(Err(too_large())),
        Err(Unreadable::Broken(err)) => Err(err),
    }
}

/// `POST …/compare`: compares the data set again, with another BOM file (for example the ERP's
/// export of the same product), or without one with the pipeline's destination.
async fn compare(
    State(state): State<AppState>,
    Path(id): Path<String>,
    signed: SignedIn,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, WebError> {
    let id = dataset_id(&id)?;
    let sent = match read_file_form(&signed, &headers, form).await? {
        Ok(sent) => sent,
        Err(message) => {
            let bom = BomRefusal {
                compare: Some(message),
                ..BomRefusal::default()
            };
            return page_refused(&state, &signed, id, StatusCode::PAYLOAD_TOO_LARGE, bom).await;
        }
    };
    // No file chosen: compare with the destination again.
    let name = (!sent.file_name.is_empty()).then_some(sent.file_name.as_str());
    let bytes = if name.is_some() {
        sent.file
    } else {
        Vec::new()
    };
    match state
        .hub
        .compare_bom_dataset(&signed.caller, id, name, bytes)
        .await
    {
        Ok(_) => Ok(see_other(&format!("/datasets/{id}?notice=pulling"))),
        Err(AppError::Invalid { field, reason }) => {
            let bom = BomRefusal {
                compare: Some(file_refusal(field, &reason)),
                ..BomRefusal::default()
            };
            page_refused(&state, &signed, id, StatusCode::UNPROCESSABLE_ENTITY, bom).await
        }
        Err(err @ AppError::Refused(_)) => page_alert(&state, &signed, id, err).await,
        Err(err) => Err(err.into()),
    }
}

/// `POST …/files`: files of the data set's parts (one named for its part, or a ZIP of them).
async fn add_files(
    State(state): State<AppState>,
    Path(id): Path<String>,
    signed: SignedIn,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, WebError> {
    let id = dataset_id(&id)?;
    let refused = |message: String| BomRefusal {
        files: Some(message),
        ..BomRefusal::default()
    };
    let sent = match read_file_form(&signed, &headers, form).await? {
        Ok(sent) => sent,
        Err(message) => {
            let status = StatusCode::PAYLOAD_TOO_LARGE;
            return page_refused(&state, &signed, id, status, refused(message)).await;
        }
    };
    if sent.file_name.is_empty() {
        let message = "Choose a file to add.".to_owned();
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return page_refused(&state, &signed, id, status, refused(message)).await;
    }
    let part = sent.text("part_number").map(str::to_owned);
    match state
        .hub
        .add_dataset_part_files(
            &signed.caller,
            id,
            Some(sent.file_name.as_str()).filter(|n| !n.is_empty()),
            part.as_deref(),
            sent.file,
        )
        .await
    {
        Ok(_) => Ok(see_other(&format!("/datasets/{id}?notice=files#tree"))),
        Err(AppError::Invalid { field, reason }) => {
            let message = match field {
                "part_number" => capitalized(&reason),
                _ => file_refusal(field, &reason),
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            page_refused(&state, &signed, id, status, refused(message)).await
        }
        Err(err @ AppError::Refused(_)) => page_alert(&state, &signed, id, err).await,
        Err(err) => Err(err.into()),
    }
}

/// `GET …/files/{file}`: a part's file (`no-store`, `nosniff`; a download unless an image).
async fn part_file(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let id = dataset_id(&id)?;
    let file = state
        .hub
        .dataset_part_file(&signed.caller, id, &file)
        .await?;
    Ok(crate::api::v1::boms::part_file_response(file))
}

// ---------------------------------------------------------------------------------------------
// The totals per part.

/// One part's total as the page shows it.
struct PartRow {
    part_number: String,
    description: String,
    quantity: String,
    unit: String,
    lines: usize,
}

#[derive(Template)]
#[template(path = "datasets/parts.html")]
struct PartsPage {
    shell: crate::web::page::Shell,
    id: String,
    parts: Vec<PartRow>,
}

/// `GET …/parts`: each part's quantity for one assembly, rolled up through the tree.
async fn parts(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = dataset_id(&id)?;
    let view = state.hub.get_dataset(&signed.caller, id).await?;
    let totals = state.hub.dataset_parts(&signed.caller, id).await?;
    let page = PartsPage {
        shell: signed.shell(format!("Parts of {}", view.name), "datasets"),
        id: id.to_string(),
        parts: totals
            .into_iter()
            .map(|p| PartRow {
                part_number: p.part_number,
                description: p.description.unwrap_or_default(),
                quantity: quantity_text(&serde_json::json!(p.quantity)),
                unit: p.unit.unwrap_or_default(),
                lines: p.rows.len(),
            })
            .collect(),
    };
    Ok(render(&page))
}

// ---------------------------------------------------------------------------------------------
// The import profile (Administrators).

/// The edited profile: the data set's, with the roles, header row and hierarchy the form says.
fn edited_profile(
    mut profile: ImportProfile,
    form: &[(String, String)],
) -> Result<ImportProfile, FormErrors> {
    let get = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim());
    let mut errors = FormErrors::none();
    for (index, column) in profile.columns.iter_mut().enumerate() {
        let field = format!("role.{index}");
        match get(&field).map(|r| serde_json::from_value::<Role>(Value::String(r.to_owned()))) {
            Some(Ok(role)) => column.role = role,
            Some(Err(_)) => errors = errors.field(&field, "Choose a role among the list."),
            None => {}
        }
    }
    match get("header_row").map(str::parse::<usize>) {
        Some(Ok(row)) if (1..=1000).contains(&row) => profile.header_row = row,
        Some(_) => {
            errors = errors.field(
                "header_row",
                "The header row is a line number from 1 to 1000.",
            )
        }
        None => {}
    }
    let hierarchy = match get("hierarchy") {
        Some("dotted") => match get("separator") {
            Some(",") => Some(Hierarchy::Dotted { separator: ',' }),
            Some(".") | None => Some(Hierarchy::Dotted { separator: '.' }),
            Some(_) => {
                errors = errors.field("separator", "Item numbers are separated by . or ,");
                None
            }
        },
        Some("level") => match get("base") {
            Some("0") => Some(Hierarchy::Level { base: 0 }),
            Some("1") | None => Some(Hierarchy::Level { base: 1 }),
            Some(_) => {
                errors = errors.field("base", "The top level is 0 or 1.");
                None
            }
        },
        Some("parent") => Some(Hierarchy::Parent),
        Some("flat") => Some(Hierarchy::Flat),
        Some(_) => {
            errors = errors.field("hierarchy", "Choose how the lines form a tree.");
            None
        }
        None => None,
    };
    if let Some(h) = hierarchy {
        profile.hierarchy = h;
    }
    let needs = |role: Role| profile.columns.iter().any(|c| c.role == role);
    if !needs(Role::PartNumber) {
        errors = errors.field("columns", "One column must be the part number.");
    }
    let column_needed = match profile.hierarchy {
        Hierarchy::Dotted { .. } => Some((Role::Position, "the item number")),
        Hierarchy::Level { .. } => Some((Role::Level, "the level")),
        Hierarchy::Parent => Some((Role::Parent, "the parent part number")),
        Hierarchy::Flat => None,
    };
    if let Some((role, words)) = column_needed
        && !needs(role)
    {
        errors = errors.field(
            "hierarchy",
            format!("This tree needs a column that is {words}."),
        );
    }
    if errors.is_empty() {
        Ok(profile)
    } else {
        Err(errors)
    }
}

/// `POST …/profile` (Administrators): saves the data set's import profile, as corrected, for
/// every file uploaded through its pipeline from now on (or, with `detect`, goes back to
/// detecting it per file), and whether parts are matched by name.
async fn save_profile(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(signed, form): Posted<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let id = dataset_id(&id)?;
    let view = state.hub.get_dataset(&signed.caller, id).await?;
    let Some(info) = view.bom else {
        return Err(WebError::not_found("import profile"));
    };
    let detect = form.iter().any(|(k, _)| k == "detect");
    let match_by_name = form.iter().any(|(k, v)| k == "match_by_name" && v == "on");
    let profile = if detect {
        None
    } else {
        let profile = serde_json::from_value::<ImportProfile>(info.profile)
            .map_err(|_| WebError::bad_request("The data set's import profile cannot be read."))?;
        match edited_profile(profile, &form) {
            Ok(profile) => {
                Some(serde_json::to_value(&profile).map_err(|_| {
                    WebError::bad_request("The import profile could not be encoded.")
                })?)
            }
            Err(errors) => {
                let bom = BomRefusal {
                    profile: errors,
                    ..BomRefusal::default()
                };
                let status = StatusCode::UNPROCESSABLE_ENTITY;
                return page_refused(&state, &signed, id, status, bom).await;
            }
        }
    };
    match state
        .hub
        .set_pipeline_bom_settings(
            &signed.caller,
            view.pipeline_id,
            BomSettings {
                profile,
                match_by_name,
            },
        )
        .await
    {
        Ok(_) => Ok(see_other(&format!("/datasets/{id}?notice=profile#profile"))),
        Err(err @ (AppError::Invalid { .. } | AppError::InvalidConfig { .. })) => {
            let bom = BomRefusal {
                profile: FormErrors::from_app(err),
                ..BomRefusal::default()
            };
            page_refused(&state, &signed, id, StatusCode::UNPROCESSABLE_ENTITY, bom).await
        }
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use lockstep_bom::{ColumnRole, Format};

    fn profile() -> ImportProfile {
        ImportProfile {
            format: Format::Csv,
            sheet: None,
            header_row: 2,
            delimiter: Some(','),
            encoding: None,
            columns: ["ITEM NO.", "QTY.", "PART NUMBER"]
                .iter()
                .zip([Role::Position, Role::Quantity, Role::Property])
                .map(|(c, role)| ColumnRole {
                    column: (*c).to_owned(),
                    role,
                })
                .collect(),
            hierarchy: Hierarchy::Dotted { separator: '.' },
        }
    }

    fn form(fields: &[(&str, &str)]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_editor_changes_roles_header_row_and_hierarchy() {
        let edited = edited_profile(
            profile(),
            &form(&[
                ("role.2", "part_number"),
                ("header_row", "3"),
                ("hierarchy", "dotted"),
                ("separator", ","),
            ]),
        )
        .unwrap_or_else(|e| panic!("{:?}", e.fields()));
        assert_eq!(edited.columns[2].role, Role::PartNumber);
        assert_eq!(edited.columns[0].role, Role::Position);
        assert_eq!(edited.header_row, 3);
        assert_eq!(edited.hierarchy, Hierarchy::Dotted { separator: ',' });
        assert_eq!(edited.format, Format::Csv);
    }

    #[test]
    fn the_editor_refuses_an_unknown_role_a_missing_part_number_and_an_orphan_tree() {
        let Err(errors) = edited_profile(
            profile(),
            &form(&[
                ("role.1", "price"),
                ("header_row", "0"),
                ("hierarchy", "level"),
            ]),
        ) else {
            panic!("accepted");
        };
        assert!(errors.get("role.1").is_some());
        assert!(errors.get("header_row").is_some());
        assert!(errors.get("columns").unwrap().contains("part number"));
        assert!(errors.get("hierarchy").unwrap().contains("level"));
    }

    #[test]
    fn quantities_are_written_as_people_write_them() {
        assert_eq!(quantity_text(&serde_json::json!(8.0)), "8");
        assert_eq!(quantity_text(&serde_json::json!(0.25)), "0.25");
        assert_eq!(quantity_text(&Value::Null), "");
    }
}
