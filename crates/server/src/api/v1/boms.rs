//! `/api/v1/datasets/upload` and the BOM parts of `/api/v1/datasets/{id}`: a bill of materials
//! uploaded through a pipeline as a data set, compared with the pipeline's destination (Tryton)
//! or with another BOM file, read as a tree or as totals per part, with the files of its parts.
//!
//! Visible as every data set is: to its owner, its sharees and the organization's
//! Administrators; to anybody else 404, files included.

use super::datasets::{DatasetBody, RecordBody, dataset_id};
use crate::AppState;
use crate::extract::{ApiPath, ApiQuery, Authenticated};
use crate::problem::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use lockstep_app::{PartFileView, PartTotalView, TreeNode, TreeQuery};
use lockstep_domain::PipelineId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct UploadQuery {
    /// The pipeline whose destination and import profile the data set follows.
    #[param(value_type = uuid::Uuid)]
    pipeline_id: String,
    /// The file's name (its extension says its format: `.csv`, `.txt`, `.xlsx`, `.xls`); also
    /// the data set's name unless `dataset_name` says otherwise.
    name: String,
    /// The data set's name (up to 200 characters).
    dataset_name: Option<String>,
    /// The assembly's part number, when the file names none (no title row, no single top row).
    root_part: Option<String>,
}

/// Make a data set of a bill of materials (every role): the body is the file (CSV in UTF-8,
/// UTF-16 or Windows-1252; XLSX; XLS; at most 32 MiB, kept encrypted). A file that cannot be read
/// is refused (422, saying why) and nothing is kept; otherwise the answer comes at once with the
/// data set `pulling` while it is compared with the pipeline's destination.
#[utoipa::path(post, path = "/api/v1/datasets/upload", tag = "datasets",
    params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 202, body = DatasetBody),
        (status = 413, body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn upload(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(query): ApiQuery<UploadQuery>,
    body: Bytes,
) -> Result<(StatusCode, Json<DatasetBody>), ApiError> {
    let pipeline: PipelineId = query
        .pipeline_id
        .parse()
        .map_err(|_| ApiError::invalid("pipeline_id", "is not a pipeline id"))?;
    let view = state
        .hub
        .upload_bom_dataset(
            &caller,
            pipeline,
            query.dataset_name.as_deref(),
            &query.name,
            query.root_part.as_deref(),
            body.to_vec(),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(view.into())))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompareQuery {
    /// The other BOM file's name, with the file as the body; none (and no body): compare with
    /// the pipeline's destination again.
    name: Option<String>,
}

/// Compare a BOM data set again (Editors and Administrators; the owner or an Administrator):
/// with another BOM file (for example the ERP's export of the same product), or with the
/// pipeline's destination. The records are read again from the data set's file; the answer
/// comes at once with the data set `pulling`.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/compare", tag = "datasets",
    params(("id" = uuid::Uuid, Path), CompareQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 202, body = DatasetBody),
        (status = 409, description = "Busy, or not a bill of materials", body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn compare(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<CompareQuery>,
    body: Bytes,
) -> Result<(StatusCode, Json<DatasetBody>), ApiError> {
    let id = dataset_id(&id)?;
    let view = state
        .hub
        .compare_bom_dataset(&caller, id, query.name.as_deref(), body.to_vec())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(view.into())))
}

/// A file of a part.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PartFileBody {
    /// Opaque: names neither the part nor the file. `GET /api/v1/datasets/{id}/files/{file}`.
    id: String,
    part_number: String,
    name: String,
    content_type: String,
    size: u64,
}

impl From<PartFileView> for PartFileBody {
    fn from(f: PartFileView) -> Self {
        PartFileBody {
            id: f.id,
            part_number: f.part_number,
            name: f.name,
            content_type: f.content_type,
            size: f.size,
        }
    }
}

/// A row of the tree and its children.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(no_recursion)]
pub(crate) struct TreeNodeBody {
    record: RecordBody,
    /// Its children in all (shown or not).
    child_count: u64,
    /// Its children, down to the depth asked for.
    children: Vec<TreeNodeBody>,
    /// Its part's files, thumbnails first.
    files: Vec<PartFileBody>,
}

impl From<TreeNode> for TreeNodeBody {
    fn from(n: TreeNode) -> Self {
        TreeNodeBody {
            record: n.record.into(),
            child_count: n.child_count,
            children: n.children.into_iter().map(TreeNodeBody::from).collect(),
            files: n.files.into_iter().map(PartFileBody::from).collect(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TreeBody {
    nodes: Vec<TreeNodeBody>,
    /// Nodes on the level asked for, in all.
    total: u64,
    /// Nodes answered, children included.
    shown: u64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct TreeParams {
    /// The row whose children are answered; default: the top level.
    #[param(value_type = Option<u64>, minimum = 0)]
    parent: Option<String>,
    /// Levels of children to answer below each node (0 to 64; default 1).
    #[param(value_type = Option<u32>, minimum = 0, maximum = 64)]
    depth: Option<String>,
    /// Nodes of the level to skip (default 0).
    #[param(value_type = Option<u64>, minimum = 0)]
    offset: Option<String>,
    /// 1 to 500 nodes of the level (default 100).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// Administrators: the values as a member (`user:ID`) or a team (`team:ID`) sees them under
    /// the data policies (audited).
    view_as: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct PartsParams {
    /// Administrators: the values as a member (`user:ID`) or a team (`team:ID`) sees them under
    /// the data policies (audited).
    view_as: Option<String>,
}

fn number<T: std::str::FromStr>(
    value: Option<String>,
    field: &'static str,
    reason: &str,
) -> Result<Option<T>, ApiError> {
    value
        .map(|v| v.parse::<T>().map_err(|_| ApiError::invalid(field, reason)))
        .transpose()
}

/// The tree of a BOM data set (its owner, its sharees, Administrators): the top level or a
/// row's children, each with its children down to `depth` levels, with statuses, issues,
/// ticks and the parts' files. A line only the destination has hangs under its assembly.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/tree", tag = "datasets",
    params(("id" = uuid::Uuid, Path), TreeParams),
    responses((status = 200, body = TreeBody),
        (status = 409, description = "Not a bill of materials", body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn tree(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<TreeParams>,
) -> Result<Json<TreeBody>, ApiError> {
    let id = dataset_id(&id)?;
    let view_as = super::policies::view_as(params.view_as.as_deref())?;
    let depth: u32 = number(params.depth, "depth", "must be a number from 0 to 64")?.unwrap_or(1);
    if depth > 64 {
        return Err(ApiError::invalid("depth", "must be a number from 0 to 64"));
    }
    let max = lockstep_app::MAX_DATASET_PAGE;
    let limit: u64 =
        number(params.limit, "limit", "must be a number from 1 to 500")?.unwrap_or(100);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be a number from 1 to {max}"),
        ));
    }
    let query = TreeQuery {
        parent: number(params.parent, "parent", "must be a row number (0 or more)")?,
        depth,
        offset: number(params.offset, "offset", "must be a number, 0 or more")?.unwrap_or(0),
        limit,
    };
    let page = state
        .hub
        .dataset_tree_as(&caller, id, query, view_as)
        .await?;
    Ok(Json(TreeBody {
        nodes: page.nodes.into_iter().map(TreeNodeBody::from).collect(),
        total: page.total,
        shown: page.shown,
    }))
}

/// One part's total over the bill of materials.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PartTotalBody {
    part_number: String,
    description: Option<String>,
    unit: Option<String>,
    /// What one assembly needs: each row's quantity multiplied by those above it, added up.
    quantity: f64,
    /// The rows it is on.
    rows: Vec<u64>,
}

impl From<PartTotalView> for PartTotalBody {
    fn from(p: PartTotalView) -> Self {
        PartTotalBody {
            part_number: p.part_number,
            description: p.description,
            unit: p.unit,
            quantity: p.quantity,
            rows: p.rows,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PartsBody {
    parts: Vec<PartTotalBody>,
}

/// The flattened totals of a BOM data set, per part, in the order parts first appear (its
/// owner, its sharees, Administrators).
#[utoipa::path(get, path = "/api/v1/datasets/{id}/parts", tag = "datasets",
    params(("id" = uuid::Uuid, Path), PartsParams),
    responses((status = 200, body = PartsBody),
        (status = 409, description = "Not a bill of materials", body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn parts(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<PartsParams>,
) -> Result<Json<PartsBody>, ApiError> {
    let id = dataset_id(&id)?;
    let view_as = super::policies::view_as(params.view_as.as_deref())?;
    let parts = state.hub.dataset_parts_as(&caller, id, view_as).await?;
    Ok(Json(PartsBody {
        parts: parts.into_iter().map(PartTotalBody::from).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilesQuery {
    /// The file's name: `<part number>.png` (`.jpg`, `.pdf`, `.step`, `.dxf`), or a `.zip` of
    /// such files (required).
    name: Option<String>,
    /// The part the file belongs to, when its name is not the part number.
    part_number: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PartFileList {
    files: Vec<PartFileBody>,
}

/// Add files to a BOM data set's parts (Editors and Administrators; the owner or an
/// Administrator): thumbnails (PNG, JPEG) and derivatives (PDF, STEP, DXF), named by part
/// number, one by one or in a ZIP. Kept encrypted with the data set, attached to the product in
/// Tryton on submit, deleted with the data set.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/files", tag = "datasets",
    params(("id" = uuid::Uuid, Path), FilesQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = PartFileList),
        (status = 413, body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn add_files(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<FilesQuery>,
    body: Bytes,
) -> Result<(StatusCode, Json<PartFileList>), ApiError> {
    let id = dataset_id(&id)?;
    let files = state
        .hub
        .add_dataset_part_files(
            &caller,
            id,
            query.name.as_deref(),
            query.part_number.as_deref(),
            body.to_vec(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(PartFileList {
            files: files.into_iter().map(PartFileBody::from).collect(),
        }),
    ))
}

/// One file of a part (its owner, its sharees, Administrators), never cached and never
/// sniffed: images inline, other files as downloads.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/files/{file}", tag = "datasets",
    params(("id" = uuid::Uuid, Path), ("file" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn file(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((id, file)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let id = dataset_id(&id)?;
    let file = state.hub.dataset_part_file(&caller, id, &file).await?;
    Ok(part_file_response(file))
}

/// A part's file as an answer: `no-store`, `nosniff`, a download unless it is an image.
pub(crate) fn part_file_response(file: lockstep_app::PartFile) -> Response {
    let inline = file.view.content_type.starts_with("image/");
    let disposition = if inline { "inline" } else { "attachment" };
    let ascii: String = file
        .view
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    (
        [
            (header::CONTENT_TYPE, file.view.content_type.clone()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("{disposition}; filename=\"{ascii}\""),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_owned(),
            ),
        ],
        file.bytes,
    )
        .into_response()
}
