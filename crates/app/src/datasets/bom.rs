//! Bills of materials as data sets: a CAD/PLM or ERP export uploaded through a pipeline is read
//! ([`lockstep_bom::read`], on the blocking pool) into records that carry their place in the tree
//! (`path`, `depth`, `parent_row`), compared with the pipeline's destination — a Tryton ERP — or
//! with another BOM file, reviewed and ticked like any data set, and submitted: missing products
//! created, each assembly's BOM created or its lines added and updated, a `destination_only`
//! line unlinked only when ticked, and never a product deleted.
//!
//! The uploaded file (and the file it is compared with) is kept sealed with the data set, so a
//! refresh reads it again and compares with what the destination holds then. The files of its
//! parts (thumbnails, PDF, STEP, DXF) are sealed beside it and attached in Tryton on submit.

use super::*;
use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, StringArray};
use arrow_schema::{DataType, Field, Schema};
use lockstep_bom::{Bom, ReadOptions};
use lockstep_connectors::AnyConnector;
use lockstep_connectors::tryton::{NewBomLine, NewProduct, Product, TrytonClient};
use lockstep_engine::BomSettings;
use lockstep_storage::datasets::{FileKind, StoredFile};

/// The record fields of a bill of materials, in order, before its property columns.
pub const BOM_FIELDS: [&str; 9] = [
    "path",
    "depth",
    "parent_row",
    "position",
    "parent_part_number",
    "part_number",
    "description",
    "quantity",
    "unit",
];
const F_PARENT_ROW: usize = 2;
const F_PARENT_PART: usize = 4;
const F_PART: usize = 5;
const F_DESCRIPTION: usize = 6;
const F_QUANTITY: usize = 7;
const F_UNIT: usize = 8;

/// The unit a part is created in when its file names none Tryton knows.
const DEFAULT_UNIT: &str = "u";
/// The largest file of a part (a thumbnail or a derivative).
pub const MAX_PART_FILE_BYTES: usize = 8 * 1024 * 1024;
/// The most files one data set keeps for its parts.
const MAX_PART_FILES: usize = 2_000;

/// What a bill of materials adds to a data set's layout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct BomLayout {
    /// The uploaded file's name.
    pub(super) file_name: String,
    /// The file the records are compared with; none: the pipeline's destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) against: Option<String>,
    /// The assembly's part number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) root: Option<String>,
    /// The import profile the file was read with (detected or the pipeline's).
    pub(super) profile: serde_json::Value,
    /// The property columns, after [`BOM_FIELDS`].
    pub(super) properties: Vec<String>,
}

/// What a BOM data set's records are compared with.
#[derive(Debug, Clone)]
pub(super) enum Against {
    /// The pipeline's destination (Tryton).
    Destination,
    /// Another BOM file.
    File { name: String, bom: Arc<Bom> },
}

/// A BOM pull: the file read, and what it is compared with.
#[derive(Debug, Clone)]
pub(super) struct BomJob {
    pub(super) spec: PipelineSpec,
    pub(super) file_name: String,
    pub(super) bom: Arc<Bom>,
    pub(super) against: Against,
}

/// One node of a BOM data set's tree.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeNode {
    pub record: RecordView,
    /// Rows of its children in all (shown or not).
    pub child_count: u64,
    /// Its children, down to the depth asked for.
    pub children: Vec<TreeNode>,
    /// Its part's files (thumbnails first).
    pub files: Vec<PartFileView>,
}

/// Which part of a BOM data set's tree to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeQuery {
    /// The node whose children are answered; none: the top level.
    pub parent: Option<u64>,
    /// Levels of children below those nodes (0: none).
    pub depth: u32,
    /// The first node of the level asked for, and how many (0: 100; at most [`MAX_PAGE`]).
    pub offset: u64,
    pub limit: u64,
}

/// A page of a BOM data set's tree.
#[derive(Debug, Clone)]
pub struct TreePage {
    pub nodes: Vec<TreeNode>,
    /// Nodes on the level asked for in all.
    pub total: u64,
    /// Nodes answered, children included.
    pub shown: u64,
}

/// One part's total over a BOM data set.
#[derive(Debug, Clone, PartialEq)]
pub struct PartTotalView {
    pub part_number: String,
    pub description: Option<String>,
    pub unit: Option<String>,
    /// The quantity one of the assembly needs, rolled up through the tree.
    pub quantity: f64,
    /// The records it is on.
    pub rows: Vec<u64>,
}

/// A file of a part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartFileView {
    /// An opaque id (a keyed hash: it names neither the part nor the file).
    pub id: String,
    pub part_number: String,
    pub name: String,
    pub content_type: String,
    pub size: u64,
}

/// A part's file, with its bytes.
#[derive(Debug, Clone)]
pub struct PartFile {
    pub view: PartFileView,
    pub bytes: Vec<u8>,
}

/// What a sealed file holds besides its bytes.
#[derive(Debug, Serialize, Deserialize)]
struct FileHeader {
    name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    part_number: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    content_type: String,
}

/// Where a file's parts are bound in their seal: the first 8 bytes of its key.
fn file_position(file_key: &[u8]) -> u64 {
    u64::from_be_bytes(
        file_key
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .unwrap_or_default(),
    )
}

/// A part number as parts are matched: trimmed, upper case.
fn part_key(part: &str) -> String {
    part.trim().to_uppercase()
}

/// The content type of a part's file by its name; `None` for a kind the hub does not keep.
pub fn part_file_type(name: &str) -> Option<&'static str> {
    let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "pdf" => "application/pdf",
        "step" | "stp" => "application/step",
        "dxf" => "image/vnd.dxf",
        _ => return None,
    })
}

/// Whether the bytes are what the name says (images and PDFs by their magic bytes).
fn looks_like(content_type: &str, bytes: &[u8]) -> bool {
    match content_type {
        "image/png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => bytes.starts_with(&[0xff, 0xd8, 0xff]),
        "application/pdf" => bytes.starts_with(b"%PDF-"),
        _ => true,
    }
}

fn bom_error(err: lockstep_bom::BomError) -> AppError {
    AppError::Invalid {
        field: "file",
        reason: err.to_string(),
    }
}

/// The records' schema: [`BOM_FIELDS`], then each property column as text.
fn bom_schema(properties: &[String]) -> SchemaRef {
    let mut fields = vec![
        Field::new("path", DataType::Utf8, true),
        Field::new("depth", DataType::Int64, true),
        Field::new("parent_row", DataType::Int64, true),
        Field::new("position", DataType::Utf8, true),
        Field::new("parent_part_number", DataType::Utf8, true),
        Field::new("part_number", DataType::Utf8, true),
        Field::new("description", DataType::Utf8, true),
        Field::new("quantity", DataType::Float64, true),
        Field::new("unit", DataType::Utf8, true),
    ];
    fields.extend(
        properties
            .iter()
            .map(|p| Field::new(p.as_str(), DataType::Utf8, true)),
    );
    Arc::new(Schema::new(fields))
}

/// The property columns of a BOM, in the order first seen, renamed where they would take a
/// record field's name.
fn property_names(bom: &Bom) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for row in &bom.rows {
        for (name, _) in &row.properties {
            let shown = if BOM_FIELDS.contains(&name.as_str()) {
                format!("{name} (file)")
            } else {
                name.clone()
            };
            if !names.contains(&shown) {
                names.push(shown);
            }
        }
    }
    names
}

/// Each row's parent part number: its parent row's, or the assembly's for a top-level row.
fn parent_parts(bom: &Bom) -> Vec<Option<String>> {
    let root_row = bom.root.as_ref().and_then(|r| r.row);
    let root_part = bom.root.as_ref().map(|r| r.part_number.clone());
    bom.rows
        .iter()
        .map(|r| match r.parent_row {
            Some(p) => bom
                .rows
                .get(p)
                .map(|p| p.part_number.clone())
                .filter(|p| !p.is_empty()),
            None if Some(r.row) == root_row => None,
            None => root_part.clone(),
        })
        .collect()
}

/// A BOM's rows as records in [`bom_schema`] (properties matched by name). Blocking work.
fn bom_batch(bom: &Bom, properties: &[String]) -> Result<RecordBatch, AppError> {
    let n = bom.rows.len();
    let parents = parent_parts(bom);
    let mut path = StringBuilder::with_capacity(n, n * 8);
    let mut depth = Int64Builder::with_capacity(n);
    let mut parent_row = Int64Builder::with_capacity(n);
    let mut position = StringBuilder::with_capacity(n, n * 8);
    let mut parent_part = StringBuilder::with_capacity(n, n * 12);
    let mut part = StringBuilder::with_capacity(n, n * 12);
    let mut description = StringBuilder::with_capacity(n, n * 24);
    let mut quantity = Float64Builder::with_capacity(n);
    let mut unit = StringBuilder::with_capacity(n, n * 2);
    let mut props: Vec<StringBuilder> = properties
        .iter()
        .map(|_| StringBuilder::with_capacity(n, n * 8))
        .collect();
    for (r, parent) in bom.rows.iter().zip(&parents) {
        path.append_value(&r.path);
        depth.append_value(i64::from(r.depth));
        parent_row.append_option(r.parent_row.and_then(|p| i64::try_from(p).ok()));
        position.append_option(r.position.as_deref());
        parent_part.append_option(parent.as_deref());
        part.append_option((!r.part_number.is_empty()).then_some(r.part_number.as_str()));
        description.append_option(r.description.as_deref());
        quantity.append_option(
            r.quantity
                .and_then(|q| rust_decimal::prelude::ToPrimitive::to_f64(&q)),
        );
        unit.append_option(r.unit.as_deref());
        for (builder, name) in props.iter_mut().zip(properties) {
            let value = r.properties.iter().find_map(|(k, v)| {
                let shown = if BOM_FIELDS.contains(&k.as_str()) {
                    format!("{k} (file)")
                } else {
                    k.clone()
                };
                (&shown == name).then_some(v.as_str())
            });
            builder.append_option(value.filter(|v| !v.is_empty()));
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(path.finish()),
        Arc::new(depth.finish()),
        Arc::new(parent_row.finish()),
        Arc::new(position.finish()),
        Arc::new(parent_part.finish()),
        Arc::new(part.finish()),
        Arc::new(description.finish()),
        Arc::new(quantity.finish()),
        Arc::new(unit.finish()),
    ];
    columns.extend(props.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    RecordBatch::try_new(bom_schema(properties), columns)
        .map_err(|_| AppError::Store(StoreError::Corrupt("bill of materials")))
}

/// The record field a file's column is read into.
fn record_field(profile: &lockstep_bom::ImportProfile, column: &str) -> String {
    use lockstep_bom::Role;
    let role = profile
        .columns
        .iter()
        .find(|c| c.column == column)
        .map(|c| c.role);
    match role {
        Some(Role::Position) => "path",
        Some(Role::Level) => "depth",
        Some(Role::Parent) => "parent_part_number",
        Some(Role::PartNumber) => "part_number",
        Some(Role::Description) => "description",
        Some(Role::Quantity) => "quantity",
        Some(Role::Unit) => "unit",
        Some(Role::Property) | None if BOM_FIELDS.contains(&column) => {
            return format!("{column} (file)");
        }
        Some(Role::Property) | None => column,
    }
    .to_owned()
}

/// Each record's issues, as stored, on the record fields they are about.
fn row_issues(
    profile: &lockstep_bom::ImportProfile,
    row: &lockstep_bom::BomRow,
) -> Vec<StoredIssue> {
    row.issues
        .iter()
        .map(|i| StoredIssue {
            field: record_field(profile, &i.field),
            level: match i.severity {
                lockstep_bom::Severity::Error => Level::Error,
                lockstep_bom::Severity::Warning => Level::Warning,
            },
            message: i.message.clone(),
        })
        .collect()
}

/// What a comparison found: each record's status and the destination record it was compared
/// with, the destination's records (in the records' schema), and those only it has.
#[derive(Debug, Default)]
struct Compared {
    status: Vec<RecordStatus>,
    destination: Vec<Option<u64>>,
    destination_rows: Option<RecordBatch>,
    destination_only: Vec<u64>,
}

fn line_status(s: lockstep_bom::LineStatus) -> RecordStatus {
    match s {
        lockstep_bom::LineStatus::Create => RecordStatus::Create,
        lockstep_bom::LineStatus::Link => RecordStatus::Link,
        lockstep_bom::LineStatus::Update => RecordStatus::Update,
        lockstep_bom::LineStatus::Unchanged => RecordStatus::Unchanged,
        lockstep_bom::LineStatus::DestinationOnly => RecordStatus::DestinationOnly,
    }
}

/// Compares with another BOM file. Blocking work.
fn compare_files(
    ours: &Bom,
    theirs: &Bom,
    properties: &[String],
    by_name: bool,
) -> Result<Compared, AppError> {
    let matching = lockstep_bom::Matching {
        by_description: by_name,
        ..lockstep_bom::Matching::default()
    };
    let comparison = lockstep_bom::compare(ours, theirs, &matching);
    let n = ours.rows.len();
    let mut compared = Compared {
        status: vec![RecordStatus::Create; n],
        destination: vec![None; n],
        destination_rows: Some(bom_batch(theirs, properties)?),
        destination_only: Vec::new(),
    };
    for line in &comparison.lines {
        if line.status == lockstep_bom::LineStatus::DestinationOnly {
            compared
                .destination_only
                .extend(line.theirs_rows.first().map(|r| *r as u64));
            continue;
        }
        for r in &line.ours_rows {
            if let Some(s) = compared.status.get_mut(*r) {
                *s = line_status(line.status);
            }
            if let Some(d) = compared.destination.get_mut(*r) {
                *d = line.theirs_rows.first().map(|t| *t as u64);
            }
        }
    }
    // The assembly's own row: the same assembly as theirs, whatever its number.
    if let Some(root) = ours.root.as_ref().and_then(|r| r.row) {
        if let Some(s) = compared.status.get_mut(root) {
            *s = if theirs.root.is_some() {
                RecordStatus::Unchanged
            } else {
                RecordStatus::Create
            };
        }
        if let Some(d) = compared.destination.get_mut(root) {
            *d = theirs.root.as_ref().and_then(|r| r.row).map(|r| r as u64);
        }
    }
    Ok(compared)
}

/// Products of the parts found in Tryton: by code (exactly, then ignoring case), then by name
/// when the pipeline matches by name and exactly one product has it.
#[derive(Debug, Default)]
struct Catalogue {
    by_code: HashMap<String, Product>,
    by_name: HashMap<String, Option<Product>>,
    by_id: HashMap<i64, Product>,
    match_by_name: bool,
}

impl Catalogue {
    async fn load(
        client: &TrytonClient,
        parts: &[(String, Option<String>)],
        match_by_name: bool,
    ) -> Result<Catalogue, AppError> {
        let codes: Vec<String> = parts
            .iter()
            .map(|(p, _)| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        let mut catalogue = Catalogue {
            match_by_name,
            ..Catalogue::default()
        };
        for p in client
            .products_by_codes(&codes)
            .await
            .map_err(AppError::from)?
        {
            catalogue.add(p);
        }
        if match_by_name {
            let names: Vec<String> = parts
                .iter()
                .filter(|(p, _)| !catalogue.by_code.contains_key(&part_key(p)))
                .filter_map(|(_, d)| d.as_deref().map(str::trim))
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect();
            if !names.is_empty() {
                for p in client
                    .products_by_names(&names)
                    .await
                    .map_err(AppError::from)?
                {
                    catalogue.add(p);
                }
            }
        }
        Ok(catalogue)
    }

    fn add(&mut self, p: Product) {
        if let Some(code) = &p.code {
            self.by_code
                .entry(part_key(code))
                .or_insert_with(|| p.clone());
        }
        self.by_name
            .entry(p.name.trim().to_owned())
            .and_modify(|e| {
                if e.as_ref().is_some_and(|e| e.id != p.id) {
                    *e = None;
                }
            })
            .or_insert_with(|| Some(p.clone()));
        self.by_id.insert(p.id, p);
    }

    fn find(&self, part: &str, description: Option<&str>) -> Option<&Product> {
        if !part.trim().is_empty()
            && let Some(p) = self.by_code.get(&part_key(part))
        {
            return Some(p);
        }
        if !self.match_by_name {
            return None;
        }
        let name = description.map(str::trim).filter(|d| !d.is_empty())?;
        self.by_name.get(name).and_then(Option::as_ref)
    }
}

/// A row's part and the assembly it is a line of.
#[derive(Debug, Clone)]
struct Line {
    part: String,
    description: Option<String>,
    parent: Option<String>,
    parent_description: Option<String>,
    quantity: Option<f64>,
    unit: Option<String>,
}

fn bom_lines(bom: &Bom) -> Vec<Line> {
    let parents = parent_parts(bom);
    bom.rows
        .iter()
        .zip(parents)
        .map(|(r, parent)| {
            let parent_description = r
                .parent_row
                .and_then(|p| bom.rows.get(p))
                .and_then(|p| p.description.clone());
            Line {
                part: r.part_number.clone(),
                description: r.description.clone(),
                parent,
                parent_description,
                quantity: r
                    .quantity
                    .and_then(|q| rust_decimal::prelude::ToPrimitive::to_f64(&q)),
                unit: r.unit.clone(),
            }
        })
        .collect()
}

fn same_quantity(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

impl Hub {
    /// Logs in to the pipeline's destination when it is a Tryton connection.
    async fn tryton_client(
        &self,
        org: lockstep_domain::OrganizationId,
        spec: &PipelineSpec,
        actor: Actor,
    ) -> Result<Option<TrytonClient>, AppError> {
        let id: lockstep_domain::ConnectionId =
            spec.destination
                .connection_id
                .parse()
                .map_err(|_| AppError::InvalidConfig {
                    field: "destination.connection_id".to_owned(),
                    reason: "is not a connection id".to_owned(),
                })?;
        let mut conn = self.store.read().await?;
        let stored = connections::get(&mut conn, org, id)
            .await?
            .ok_or(AppError::NotFound("connection"))?;
        drop(conn);
        if stored.kind != ConnectionKind::Tryton.as_str() {
            return Ok(None);
        }
        match self.connector(actor, &stored).await? {
            AnyConnector::Tryton(t) => Ok(Some(t.client().await.map_err(AppError::from)?)),
            _ => Ok(None),
        }
    }

    /// Compares with what Tryton holds: each row's product (by code, then name), the BOM of
    /// each assembly, and its lines.
    async fn compare_tryton(
        &self,
        client: &TrytonClient,
        ours: &Bom,
        properties: &[String],
        match_by_name: bool,
    ) -> Result<Compared, AppError> {
        let lines = bom_lines(ours);
        let mut parts: Vec<(String, Option<String>)> = lines
            .iter()
            .map(|l| (l.part.clone(), l.description.clone()))
            .collect();
        if let Some(root) = &ours.root {
            parts.push((root.part_number.clone(), None));
        }
        let mut catalogue = Catalogue::load(client, &parts, match_by_name).await?;
        // The BOM of every assembly Tryton has: its first one, in the product's order.
        let mut assemblies: Vec<i64> = lines
            .iter()
            .filter_map(|l| {
                let parent = l.parent.as_deref()?;
                catalogue
                    .find(parent, l.parent_description.as_deref())
                    .map(|p| p.id)
            })
            .collect();
        assemblies.sort_unstable();
        assemblies.dedup();
        let boms = client.boms_of(&assemblies).await.map_err(AppError::from)?;
        let missing: Vec<i64> = boms
            .values()
            .filter_map(|b| b.first())
            .flat_map(|b| b.inputs.iter().map(|l| l.product_id))
            .filter(|id| !catalogue.by_id.contains_key(id))
            .collect();
        if !missing.is_empty() {
            let mut missing = missing;
            missing.sort_unstable();
            missing.dedup();
            for p in client
                .products_by_ids(&missing)
                .await
                .map_err(AppError::from)?
            {
                catalogue.by_id.insert(p.id, p);
            }
        }
        // The destination's records: every line of those BOMs.
        let mut dest_lines: Vec<(i64, lockstep_connectors::tryton::BomLine)> = Vec::new();
        let mut line_index: HashMap<(i64, i64), usize> = HashMap::new();
        for (product, list) in &boms {
            if let Some(bom) = list.first() {
                for l in &bom.inputs {
                    line_index
                        .entry((*product, l.product_id))
                        .or_insert(dest_lines.len());
                    dest_lines.push((*product, l.clone()));
                }
            }
        }
        let code_of = |id: i64| -> Option<String> {
            catalogue
                .by_id
                .get(&id)
                .map(|p| p.code.clone().unwrap_or_default())
        };
        let m = dest_lines.len();
        let mut parent_part = StringBuilder::with_capacity(m, m * 12);
        let mut part = StringBuilder::with_capacity(m, m * 12);
        let mut description = StringBuilder::with_capacity(m, m * 24);
        let mut quantity = Float64Builder::with_capacity(m);
        let mut unit = StringBuilder::with_capacity(m, m * 2);
        for (parent, l) in &dest_lines {
            parent_part.append_option(code_of(*parent));
            part.append_option(code_of(l.product_id));
            description.append_option(catalogue.by_id.get(&l.product_id).map(|p| p.name.clone()));
            quantity.append_value(l.quantity);
            unit.append_value(&l.uom_symbol);
        }
        let nulls_text = |n: usize| Arc::new(StringArray::new_null(n)) as ArrayRef;
        let mut columns: Vec<ArrayRef> = vec![
            nulls_text(m),
            Arc::new(Int64Array::new_null(m)),
            Arc::new(Int64Array::new_null(m)),
            nulls_text(m),
            Arc::new(parent_part.finish()),
            Arc::new(part.finish()),
            Arc::new(description.finish()),
            Arc::new(quantity.finish()),
            Arc::new(unit.finish()),
        ];
        columns.extend(properties.iter().map(|_| nulls_text(m)));
        let destination_rows = RecordBatch::try_new(bom_schema(properties), columns)
            .map_err(|_| AppError::Store(StoreError::Corrupt("bill of materials")))?;

        let n = ours.rows.len();
        let mut compared = Compared {
            status: vec![RecordStatus::Create; n],
            destination: vec![None; n],
            destination_rows: Some(destination_rows),
            destination_only: Vec::new(),
        };
        let mut matched = vec![false; m];
        let root_row = ours.root.as_ref().and_then(|r| r.row);
        for (r, line) in lines.iter().enumerate() {
            let product = catalogue.find(&line.part, line.description.as_deref());
            let status = match (product, Some(r) == root_row) {
                (None, _) => RecordStatus::Create,
                (Some(_), true) => RecordStatus::Unchanged,
                (Some(child), false) => {
                    let parent = line
                        .parent
                        .as_deref()
                        .and_then(|p| catalogue.find(p, line.parent_description.as_deref()));
                    match parent.and_then(|p| line_index.get(&(p.id, child.id))) {
                        None => RecordStatus::Link,
                        Some(&at) => {
                            if let Some(m) = matched.get_mut(at) {
                                *m = true;
                            }
                            if let Some(d) = compared.destination.get_mut(r) {
                                *d = Some(at as u64);
                            }
                            let Some((_, theirs)) = dest_lines.get(at) else {
                                continue;
                            };
                            let quantity_differs = line
                                .quantity
                                .is_some_and(|q| !same_quantity(q, theirs.quantity));
                            let unit_differs = line
                                .unit
                                .as_deref()
                                .map(str::trim)
                                .and_then(|u| client.unit(u))
                                .is_some_and(|u| u.symbol != theirs.uom_symbol);
                            if quantity_differs || unit_differs {
                                RecordStatus::Update
                            } else {
                                RecordStatus::Unchanged
                            }
                        }
                    }
                }
            };
            if let Some(s) = compared.status.get_mut(r) {
                *s = status;
            }
        }
        compared.destination_only = matched
            .iter()
            .enumerate()
            .filter(|(_, m)| !**m)
            .map(|(i, _)| i as u64)
            .collect();
        Ok(compared)
    }

    /// Reads a BOM file for a pipeline, off the request threads.
    pub(super) async fn read_bom(
        &self,
        spec: &PipelineSpec,
        file_name: &str,
        bytes: Vec<u8>,
        root_part: Option<&str>,
    ) -> Result<Arc<Bom>, AppError> {
        if bytes.len() > crate::MAX_UPLOAD_BYTES {
            return Err(AppError::Invalid {
                field: "body",
                reason: format!("files are limited to {} MiB", crate::MAX_UPLOAD_MIB),
            });
        }
        let profile = match spec.bom.as_ref().and_then(|b| b.profile.clone()) {
            Some(p) => Some(
                serde_json::from_value(p).map_err(|_| AppError::InvalidConfig {
                    field: "bom.profile".to_owned(),
                    reason: "is not an import profile".to_owned(),
                })?,
            ),
            None => None,
        };
        let options = ReadOptions {
            profile,
            root_part: root_part
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned),
            ..ReadOptions::default()
        };
        let name = file_name.to_owned();
        let bom = tokio::task::spawn_blocking(move || lockstep_bom::read(&bytes, &name, &options))
            .await
            .map_err(|_| AppError::Refused("reading the file stopped unexpectedly"))?
            .map_err(bom_error)?;
        if bom.rows.is_empty() {
            return Err(AppError::Invalid {
                field: "file",
                reason: "the file holds no bill of materials rows".to_owned(),
            });
        }
        Ok(Arc::new(bom))
    }

    fn file_key(key: &DataKey, what: &str) -> Result<Vec<u8>, AppError> {
        Ok(key.keyed_hash("dataset file", what.as_bytes())?.to_vec())
    }

    #[allow(clippy::too_many_arguments)] // what a sealed file is: all of it is needed
    async fn put_dataset_file(
        &self,
        tx: &mut lockstep_storage::Transaction,
        opened: &Opened,
        kind: FileKind,
        part_number: &str,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<String, AppError> {
        let what = format!(
            "{}\u{1f}{}\u{1f}{name}",
            kind_word(kind),
            part_key(part_number)
        );
        let file_key = Self::file_key(&opened.key, &what)?;
        let part_key_hash = if part_number.is_empty() {
            Vec::new()
        } else {
            Self::file_key(&opened.key, &format!("part\u{1f}{}", part_key(part_number)))?
        };
        let size = bytes.len() as u64;
        let header = serde_json::to_vec(&FileHeader {
            name: name.to_owned(),
            part_number: part_number.to_owned(),
            content_type: content_type.to_owned(),
        })
        .map_err(|_| AppError::Store(StoreError::Corrupt("data set file")))?;
        let position = file_position(&file_key);
        let header = seal_plain(
            &opened.key,
            opened.stored.id,
            "file header",
            position,
            &header,
        )?;
        let payload = seal_plain(&opened.key, opened.stored.id, "file", position, &bytes)?;
        drop(Zeroizing::new(bytes));
        datasets::put_file(
            tx,
            opened.stored.organization_id,
            opened.stored.id,
            &StoredFile {
                kind,
                file_key: file_key.clone(),
                part_key: part_key_hash,
                size,
                header,
                payload,
                created_at: self.clock.now(),
            },
        )
        .await?;
        Ok(hex::encode(file_key))
    }

    /// What a stored file is, without opening its bytes.
    fn open_file_header(opened: &Opened, file: &StoredFile) -> Result<PartFileView, AppError> {
        let plain = open_plain(
            &opened.key,
            opened.stored.id,
            "file header",
            file_position(&file.file_key),
            &file.header,
        )?;
        let header: FileHeader = serde_json::from_slice(&plain)
            .map_err(|_| AppError::Store(StoreError::Corrupt("data set file")))?;
        Ok(PartFileView {
            id: hex::encode(&file.file_key),
            part_number: header.part_number,
            name: header.name,
            content_type: header.content_type,
            size: file.size,
        })
    }

    fn open_dataset_file(opened: &Opened, file: &StoredFile) -> Result<PartFile, AppError> {
        let view = Self::open_file_header(opened, file)?;
        let bytes = open_plain(
            &opened.key,
            opened.stored.id,
            "file",
            file_position(&file.file_key),
            &file.payload,
        )?;
        Ok(PartFile {
            view,
            bytes: bytes.to_vec(),
        })
    }

    /// Makes a data set of a bill of materials uploaded through a pipeline (any member): the
    /// file is read at once (a file that cannot be read is refused, and nothing is kept), then
    /// compared with the pipeline's destination on a task of the hub's own.
    pub async fn upload_bom_dataset(
        self: &Arc<Self>,
        caller: &Caller,
        pipeline_id: PipelineId,
        name: Option<&str>,
        file_name: &str,
        root_part: Option<&str>,
        bytes: Vec<u8>,
    ) -> Result<DatasetView, AppError> {
        self.authorize_in_organization(caller, Action::PullDatasets)?;
        let org = caller.organization();
        let mut conn = self.store.read().await?;
        let pipeline = pipelines::get(&mut conn, org, pipeline_id)
            .await?
            .ok_or_else(|| AppError::Invalid {
                field: "pipeline_id",
                reason: "no such pipeline".to_owned(),
            })?;
        drop(conn);
        self.check_pipeline_access(caller, pipeline_id).await?;
        let file_name = upload_file_name(file_name)?;
        let name = match name {
            Some(n) => Some(n.to_owned()),
            None => Some(file_name.clone()),
        };
        let name = self
            .new_dataset_name(caller, &pipeline, name.as_deref())
            .await?;
        let spec = self.open_spec(&pipeline).await?;
        let source_bytes = bytes.clone();
        let bom = self.read_bom(&spec, &file_name, bytes, root_part).await?;
        let (opened, lease_owner) = self.new_dataset(caller, pipeline_id, &name, None).await?;
        let mut tx = self.store.write().await?;
        self.insert_dataset(&mut tx, caller, &opened, false).await?;
        self.put_dataset_file(
            &mut tx,
            &opened,
            FileKind::Source,
            "",
            &file_name,
            "",
            source_bytes,
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        let view = self.dataset_view(caller, &opened).await?;
        let job = BomJob {
            spec,
            file_name,
            bom,
            against: Against::Destination,
        };
        let hub = Arc::clone(self);
        let actor = caller.actor();
        tokio::spawn(async move {
            hub.run_pull(opened, PullJob::Bom(Box::new(job)), lease_owner, actor)
                .await;
        });
        Ok(view)
    }

    /// Compares a BOM data set again (Editors and Administrators; owner or Administrator):
    /// with another BOM file, or (`None`) with the pipeline's destination.
    pub async fn compare_bom_dataset(
        self: &Arc<Self>,
        caller: &Caller,
        id: DatasetId,
        name: Option<&str>,
        bytes: Vec<u8>,
    ) -> Result<DatasetView, AppError> {
        let stored = self.dataset_for(caller, DatasetAction::Edit, id).await?;
        let file = match (name, bytes.is_empty()) {
            (Some(name), false) => Some((name, bytes)),
            (None, true) => None,
            (Some(_), true) => {
                return Err(AppError::Invalid {
                    field: "body",
                    reason: "send the file to compare with as the body".to_owned(),
                });
            }
            (None, false) => {
                return Err(AppError::Invalid {
                    field: "name",
                    reason: "name the file (its extension says its format)".to_owned(),
                });
            }
        };
        if DatasetState::parse(&stored.state)?.is_busy() {
            return Err(AppError::Refused(
                "the data set is busy: wait for its pull or submit",
            ));
        }
        let opened = self.open_dataset(stored).await?;
        if opened
            .layout
            .as_ref()
            .and_then(|l| l.bom.as_ref())
            .is_none()
        {
            return Err(AppError::Refused(
                "only a data set read from a bill of materials is compared with a file",
            ));
        }
        let against = match file {
            Some((name, bytes)) => {
                let name = upload_file_name(name)?;
                let spec = self.dataset_spec(caller, &opened).await?;
                let bom = self.read_bom(&spec, &name, bytes.clone(), None).await?;
                let mut tx = self.store.write().await?;
                datasets::clear_files(&mut tx, id, FileKind::Against).await?;
                self.put_dataset_file(&mut tx, &opened, FileKind::Against, "", &name, "", bytes)
                    .await?;
                tx.commit().await.map_err(StoreError::from)?;
                Some((name, bom))
            }
            None => {
                let mut tx = self.store.write().await?;
                datasets::clear_files(&mut tx, id, FileKind::Against).await?;
                tx.commit().await.map_err(StoreError::from)?;
                None
            }
        };
        self.restart_bom_pull(caller, opened, against).await
    }

    /// The pipeline's specification as a BOM data set is read with.
    async fn dataset_spec(
        &self,
        caller: &Caller,
        opened: &Opened,
    ) -> Result<PipelineSpec, AppError> {
        let mut conn = self.store.read().await?;
        let pipeline = pipelines::get(&mut conn, caller.organization(), opened.stored.pipeline_id)
            .await?
            .ok_or(AppError::NotFound("pipeline"))?;
        drop(conn);
        self.open_spec(&pipeline).await
    }

    /// Reads the data set's file again and compares it (a refresh, or a comparison with
    /// another file): the records are replaced.
    pub(super) async fn restart_bom_pull(
        self: &Arc<Self>,
        caller: &Caller,
        opened: Opened,
        against: Option<(String, Arc<Bom>)>,
    ) -> Result<DatasetView, AppError> {
        let id = opened.stored.id;
        let spec = self.dataset_spec(caller, &opened).await?;
        let mut conn = self.store.read().await?;
        let sources = datasets::files(&mut conn, id, FileKind::Source).await?;
        let against_files = datasets::files(&mut conn, id, FileKind::Against).await?;
        drop(conn);
        let source = sources
            .first()
            .ok_or(AppError::Store(StoreError::Corrupt("data set file")))?;
        let source = Self::open_dataset_file(&opened, source)?;
        let root = opened
            .layout
            .as_ref()
            .and_then(|l| l.bom.as_ref())
            .and_then(|b| b.root.clone());
        let bom = self
            .read_bom(&spec, &source.view.name, source.bytes, root.as_deref())
            .await?;
        let against = match against {
            Some((name, bom)) => Against::File { name, bom },
            None => match against_files.first() {
                Some(f) => {
                    let file = Self::open_dataset_file(&opened, f)?;
                    let bom = self
                        .read_bom(&spec, &file.view.name, file.bytes, None)
                        .await?;
                    Against::File {
                        name: file.view.name,
                        bom,
                    }
                }
                None => Against::Destination,
            },
        };
        let against_word = match &against {
            Against::Destination => "destination",
            Against::File { .. } => "file",
        };
        let job = BomJob {
            spec,
            file_name: source.view.name,
            bom,
            against,
        };
        self.restart_pull(
            caller,
            opened,
            PullJob::Bom(Box::new(job)),
            Some(against_word),
        )
        .await
    }

    /// A BOM pull: compares the file read with the destination or the other file, and stores
    /// the records and the destination's.
    pub(super) async fn pull_bom(
        self: &Arc<Self>,
        opened: &Opened,
        job: &BomJob,
        beat: &Arc<Beat>,
        actor: Actor,
    ) -> Result<(Vec<u8>, u64, u64), AppError> {
        let org = opened.stored.organization_id;
        let id = opened.stored.id;
        let settings = job.spec.bom.clone().unwrap_or_default();
        let properties = property_names(&job.bom);
        let schema = bom_schema(&properties);
        let compared = match &job.against {
            Against::File { bom: theirs, .. } => {
                let (ours, theirs) = (Arc::clone(&job.bom), Arc::clone(theirs));
                let props = properties.clone();
                let by_name = settings.match_by_name;
                tokio::task::spawn_blocking(move || compare_files(&ours, &theirs, &props, by_name))
                    .await
                    .map_err(|_| AppError::Refused("comparing records stopped unexpectedly"))??
            }
            Against::Destination => match self.tryton_client(org, &job.spec, actor).await? {
                Some(client) => {
                    let compared = self
                        .compare_tryton(&client, &job.bom, &properties, settings.match_by_name)
                        .await;
                    let _ = client.logout().await;
                    compared?
                }
                // Another kind of destination holds no bill of materials: every part is new.
                None => Compared {
                    status: vec![RecordStatus::Create; job.bom.rows.len()],
                    destination: vec![None; job.bom.rows.len()],
                    destination_rows: None,
                    destination_only: Vec::new(),
                },
            },
        };
        // The destination's records, in chunks.
        if let Some(rows) = &compared.destination_rows {
            let mut offset = 0;
            let mut chunk_no = 0u64;
            while offset < rows.num_rows() {
                let take = CHUNK_ROWS.min(rows.num_rows() - offset);
                self.put_destination_chunk(opened, chunk_no, vec![rows.slice(offset, take)])
                    .await?;
                offset += take;
                chunk_no += 1;
            }
        }
        // The records: the file's rows, then the destination's lines the file does not have.
        let bom = Arc::clone(&job.bom);
        let props = properties.clone();
        let records = tokio::task::spawn_blocking(move || bom_batch(&bom, &props))
            .await
            .map_err(|_| AppError::Refused("reading the file stopped unexpectedly"))??;
        let total = records.num_rows();
        let mut chunk_no = 0u64;
        let mut next_row = 0u64;
        let identity: Arc<[Option<usize>]> = (0..schema.fields().len()).map(Some).collect();
        let mut pending = PendingChunk::new(&schema, &schema, identity);
        let mut start = 0usize;
        for (r, row) in job.bom.rows.iter().enumerate() {
            let status = compared
                .status
                .get(r)
                .copied()
                .unwrap_or(RecordStatus::Create);
            let dest = compared.destination.get(r).copied().flatten();
            pending.note(row_issues(&job.bom.profile, row), status, dest);
            next_row += 1;
            if pending.len() == CHUNK_ROWS || r + 1 == total {
                let len = r + 1 - start;
                pending.add(records.slice(start, len), records.slice(start, len));
                start = r + 1;
                if pending.len() == CHUNK_ROWS {
                    let full = {
                        let next = pending.next();
                        std::mem::replace(&mut pending, next)
                    };
                    self.put_records_chunk(opened, chunk_no, next_row, full)
                        .await?;
                    chunk_no += 1;
                }
            }
            if r % 4096 == 0 {
                if beat.lost.load(Ordering::Relaxed) {
                    return Err(AppError::Refused("the pull's lease was lost"));
                }
                beat.set(|c| {
                    c.read = total as u64;
                    c.records = next_row;
                });
            }
        }
        for dest_row in &compared.destination_only {
            pending.push_nulls(RecordStatus::DestinationOnly, *dest_row);
            next_row += 1;
            if pending.len() == CHUNK_ROWS {
                let full = {
                    let next = pending.next();
                    std::mem::replace(&mut pending, next)
                };
                self.put_records_chunk(opened, chunk_no, next_row, full)
                    .await?;
                chunk_no += 1;
            }
        }
        if pending.len() > 0 {
            self.put_records_chunk(opened, chunk_no, next_row, pending)
                .await?;
        }
        // The tree's shape: each record's parent + 1 (0: the top); a line only the destination
        // has hangs under the first row of its assembly.
        let mut first_row_of: HashMap<String, u32> = HashMap::new();
        for r in &job.bom.rows {
            if !r.part_number.is_empty() {
                first_row_of
                    .entry(part_key(&r.part_number))
                    .or_insert(r.row as u32);
            }
        }
        let mut shape: Vec<u32> = job
            .bom
            .rows
            .iter()
            .map(|r| r.parent_row.map_or(0, |p| p as u32 + 1))
            .collect();
        let dest_parents = compared.destination_rows.as_ref().and_then(|b| {
            b.column(F_PARENT_PART)
                .as_any()
                .downcast_ref::<StringArray>()
                .cloned()
        });
        for dest_row in &compared.destination_only {
            let parent = dest_parents
                .as_ref()
                .and_then(|a| {
                    let i = usize::try_from(*dest_row).ok()?;
                    (i < a.len() && !a.is_null(i)).then(|| a.value(i).to_owned())
                })
                .and_then(|p| first_row_of.get(&part_key(&p)).copied());
            shape.push(parent.map_or(0, |p| p + 1));
        }
        let mut plain = Zeroizing::new(Vec::with_capacity(shape.len() * 4));
        for p in &shape {
            plain.extend_from_slice(&p.to_le_bytes());
        }
        let sealed = seal_plain(&opened.key, id, "tree", 0, &plain)?;
        let mut tx = self.store.write().await?;
        datasets::put_file(
            &mut tx,
            org,
            id,
            &StoredFile {
                kind: FileKind::Tree,
                file_key: Vec::new(),
                part_key: Vec::new(),
                size: plain.len() as u64,
                header: Vec::new(),
                payload: sealed,
                created_at: self.clock.now(),
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        let profile = serde_json::to_value(&job.bom.profile).unwrap_or(serde_json::Value::Null);
        let mut compared_fields = vec![false; schema.fields().len()];
        for f in [F_QUANTITY, F_UNIT] {
            if let Some(c) = compared_fields.get_mut(f) {
                *c = true;
            }
        }
        let layout = Layout {
            spec: job.spec.clone(),
            source: records::schema_to_json(&schema),
            output: records::schema_to_json(&schema),
            key: vec!["parent_part_number".to_owned(), "part_number".to_owned()],
            compared: compared_fields,
            bom: Some(BomLayout {
                file_name: job.file_name.clone(),
                against: match &job.against {
                    Against::Destination => None,
                    Against::File { name, .. } => Some(name.clone()),
                },
                root: job.bom.root.as_ref().map(|r| r.part_number.clone()),
                profile,
                properties,
            }),
        };
        let layout_ct = seal_json(&opened.key, id, "layout", 0, &layout)?;
        Ok((layout_ct, total as u64, 0))
    }

    /// Every record of a data set, opened (the records' chunks in order, with their flags).
    async fn all_records(
        &self,
        opened: &Opened,
    ) -> Result<Vec<(ChunkIndex, RecordsChunk)>, AppError> {
        let mut conn = self.store.read().await?;
        let index = datasets::chunk_index(&mut conn, opened.stored.id, ChunkKind::Records).await?;
        drop(conn);
        let mut out = Vec::with_capacity(index.len());
        for chunk in index {
            out.push(self.load_chunk(opened, chunk.chunk).await?);
        }
        Ok(out)
    }

    async fn bom_dataset(
        &self,
        caller: &Caller,
        action: DatasetAction,
        id: DatasetId,
    ) -> Result<Opened, AppError> {
        let stored = self.dataset_for(caller, action, id).await?;
        let opened = self.open_dataset(stored).await?;
        match opened.layout.as_ref().map(|l| l.bom.is_some()) {
            Some(true) => Ok(opened),
            Some(false) => Err(AppError::Refused(
                "the data set was not read from a bill of materials",
            )),
            None => Err(AppError::Refused("the data set has no records yet")),
        }
    }

    /// The tree's shape, stored at the pull: each record's parent record + 1 (0: the top).
    async fn tree_index(&self, opened: &Opened) -> Result<Vec<u32>, AppError> {
        let mut conn = self.store.read().await?;
        let files = datasets::files(&mut conn, opened.stored.id, FileKind::Tree).await?;
        drop(conn);
        let file = files
            .first()
            .ok_or(AppError::Store(StoreError::Corrupt("data set tree")))?;
        let plain = open_plain(&opened.key, opened.stored.id, "tree", 0, &file.payload)?;
        Ok(plain
            .chunks_exact(4)
            .filter_map(|b| <[u8; 4]>::try_from(b).ok().map(u32::from_le_bytes))
            .collect())
    }

    /// The tree of a BOM data set (whoever may read it): the top level, or a node's children,
    /// each with its children down to `depth` levels. Opens only the chunks of the rows shown.
    pub async fn dataset_tree(
        &self,
        caller: &Caller,
        id: DatasetId,
        query: TreeQuery,
    ) -> Result<TreePage, AppError> {
        self.dataset_tree_as(caller, id, query, None).await
    }

    /// [`Hub::dataset_tree`] with its values as the redaction policy shows them to the caller,
    /// or (Administrators) to a member or a team.
    pub async fn dataset_tree_as(
        &self,
        caller: &Caller,
        id: DatasetId,
        query: TreeQuery,
        view_as: Option<crate::ViewAs>,
    ) -> Result<TreePage, AppError> {
        let opened = self.bom_dataset(caller, DatasetAction::Read, id).await?;
        let viewer = self.dataset_viewer(caller, &opened.stored, view_as).await?;
        self.note_read(caller, &opened.stored).await?;
        let parents = self.tree_index(&opened).await?;
        let mut children: Vec<Vec<u32>> = vec![Vec::new(); parents.len() + 1];
        for (row, parent) in parents.iter().enumerate() {
            if let Some(list) = children.get_mut(*parent as usize) {
                list.push(row as u32);
            }
        }
        let level: &[u32] = match query.parent {
            Some(p) => usize::try_from(p)
                .ok()
                .and_then(|p| p.checked_add(1))
                .and_then(|p| children.get(p))
                .map(Vec::as_slice)
                .unwrap_or_default(),
            None => children.first().map(Vec::as_slice).unwrap_or_default(),
        };
        let limit = match query.limit {
            0 => 100,
            n => n.min(MAX_PAGE),
        };
        let total = level.len() as u64;
        let page: Vec<u32> = level
            .iter()
            .skip(usize::try_from(query.offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .copied()
            .collect();
        // The rows shown: the page and their children down to `depth`, at most a few pages.
        let depth = query.depth.min(64);
        let budget = (MAX_PAGE * 4) as usize;
        let mut shown: Vec<(u32, u32)> = page.iter().map(|r| (*r, 0)).collect();
        let mut at = 0;
        while let Some(&(row, d)) = shown.get(at) {
            if shown.len() >= budget {
                break;
            }
            if d < depth {
                for k in children
                    .get(row as usize + 1)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    if shown.len() >= budget {
                        break;
                    }
                    shown.push((*k, d + 1));
                }
            }
            at += 1;
        }
        let wanted: HashSet<u32> = shown.iter().map(|(r, _)| *r).collect();
        // Their chunks, each opened once.
        let mut conn = self.store.read().await?;
        let index = datasets::chunk_index(&mut conn, id, ChunkKind::Records).await?;
        drop(conn);
        let mut jobs: Vec<(u64, u64, Vec<u32>)> = Vec::new();
        for chunk in &index {
            let first = chunk.first_row;
            let end = first + chunk.row_count;
            let rows: Vec<u32> = wanted
                .iter()
                .copied()
                .filter(|r| (first..end).contains(&u64::from(*r)))
                .collect();
            if !rows.is_empty() {
                jobs.push((chunk.chunk, first, rows));
            }
        }
        // A few at a time: fetching, decrypting and decoding them overlap.
        let mut loaded: Vec<(ChunkIndex, RecordsChunk)> = Vec::with_capacity(jobs.len());
        for batch in jobs.chunks(4) {
            let mut pending = Vec::with_capacity(batch.len());
            for (c, _, _) in batch {
                pending.push(self.load_chunk(&opened, *c));
            }
            loaded.extend(futures_util::future::try_join_all(pending).await?);
        }
        // Redaction applies to a tree's values; row filters do not (a tree keeps its shape).
        let policy = match opened.layout.as_ref() {
            Some(layout) => Some(
                self.dataset_policy(caller.organization(), &viewer, &layout.spec)
                    .await?,
            ),
            None => None,
        };
        let mut views: HashMap<u32, RecordView> = HashMap::with_capacity(wanted.len());
        let mut destinations = HashMap::new();
        for ((_, first, rows), (index, payload)) in jobs.iter().zip(&loaded) {
            for r in rows {
                let i = usize::try_from(u64::from(*r) - first).unwrap_or(usize::MAX);
                let mut view = self
                    .record_view(&opened, index, payload, i, &mut destinations)
                    .await?;
                if let Some(policy) = &policy {
                    policy.redact_view(&mut view);
                }
                views.insert(*r, view);
            }
        }
        let files = self.part_files_by_part(&opened).await?;
        let mut count = 0u64;
        let nodes = page
            .iter()
            .filter_map(|r| {
                build_node(
                    *r, depth, &children, &wanted, &mut views, &files, &mut count,
                )
            })
            .collect();
        Ok(TreePage {
            nodes,
            total,
            shown: count,
        })
    }

    /// `rows` and every row below them, in order (rows that are not in the data set are left
    /// for the caller to refuse).
    pub(super) async fn with_descendants(
        &self,
        opened: &Opened,
        rows: &[u64],
    ) -> Result<Vec<u64>, AppError> {
        let parents = self.tree_index(opened).await?;
        let mut children: Vec<Vec<u32>> = vec![Vec::new(); parents.len() + 1];
        for (row, parent) in parents.iter().enumerate() {
            if let Some(list) = children.get_mut(*parent as usize) {
                list.push(row as u32);
            }
        }
        let mut out: Vec<u64> = Vec::new();
        let mut seen: HashSet<u64> = HashSet::new();
        let mut stack: Vec<u64> = rows.iter().rev().copied().collect();
        while let Some(r) = stack.pop() {
            if !seen.insert(r) {
                continue;
            }
            out.push(r);
            let kids = usize::try_from(r)
                .ok()
                .and_then(|r| r.checked_add(1))
                .and_then(|r| children.get(r));
            if let Some(kids) = kids {
                stack.extend(kids.iter().rev().map(|k| u64::from(*k)));
            }
        }
        Ok(out)
    }

    /// Each part's total over a BOM data set (whoever may read it): quantities multiplied down
    /// the tree and added up per part number, in the order parts first appear.
    pub async fn dataset_parts(
        &self,
        caller: &Caller,
        id: DatasetId,
    ) -> Result<Vec<PartTotalView>, AppError> {
        self.dataset_parts_as(caller, id, None).await
    }

    /// [`Hub::dataset_parts`] as the redaction policy shows them to the caller, or
    /// (Administrators) to a member or a team.
    pub async fn dataset_parts_as(
        &self,
        caller: &Caller,
        id: DatasetId,
        view_as: Option<crate::ViewAs>,
    ) -> Result<Vec<PartTotalView>, AppError> {
        let opened = self.bom_dataset(caller, DatasetAction::Read, id).await?;
        let viewer = self.dataset_viewer(caller, &opened.stored, view_as).await?;
        self.note_read(caller, &opened.stored).await?;
        let chunks = self.all_records(&opened).await?;
        let mut totals = tokio::task::spawn_blocking(move || part_totals(&chunks))
            .await
            .map_err(|_| AppError::Refused("adding up the parts stopped unexpectedly"))??;
        // The totals show record values: as the redaction policy says.
        if let Some(layout) = opened.layout.as_ref() {
            let policy = self
                .dataset_policy(caller.organization(), &viewer, &layout.spec)
                .await?;
            if !policy.is_open() {
                for total in &mut totals {
                    total.part_number = policy
                        .redact_text("part_number", Some(&total.part_number))
                        .unwrap_or_default();
                    total.description =
                        policy.redact_text("description", total.description.as_deref());
                    total.unit = policy.redact_text("unit", total.unit.as_deref());
                }
            }
        }
        Ok(totals)
    }

    async fn part_files_by_part(
        &self,
        opened: &Opened,
    ) -> Result<HashMap<String, Vec<PartFileView>>, AppError> {
        let mut conn = self.store.read().await?;
        let files = datasets::file_headers(&mut conn, opened.stored.id, FileKind::Part).await?;
        drop(conn);
        let mut out: HashMap<String, Vec<PartFileView>> = HashMap::new();
        for f in &files {
            let view = Self::open_file_header(opened, f)?;
            out.entry(part_key(&view.part_number))
                .or_default()
                .push(view);
        }
        for list in out.values_mut() {
            list.sort_by_key(|f| (!f.content_type.starts_with("image/"), f.name.clone()));
        }
        Ok(out)
    }

    /// Adds files to a BOM data set's parts (Editors and Administrators; owner or
    /// Administrator): one file named for its part (`<part number>.png`, `.jpg`, `.pdf`,
    /// `.step`, `.dxf`), or a ZIP of such files. Files of parts the data set does not have, or of
    /// other kinds, are refused and nothing is kept.
    pub async fn add_dataset_part_files(
        &self,
        caller: &Caller,
        id: DatasetId,
        name: Option<&str>,
        part_number: Option<&str>,
        bytes: Vec<u8>,
    ) -> Result<Vec<PartFileView>, AppError> {
        let opened = self.bom_dataset(caller, DatasetAction::Edit, id).await?;
        let name = name.ok_or_else(|| AppError::Invalid {
            field: "name",
            reason: "name the file: <part number>.png, .jpg, .pdf, .step, .dxf, or a .zip"
                .to_owned(),
        })?;
        if bytes.len() > crate::MAX_UPLOAD_BYTES {
            return Err(AppError::Invalid {
                field: "body",
                reason: format!("files are limited to {} MiB", crate::MAX_UPLOAD_MIB),
            });
        }
        let name = upload_file_name(name)?;
        let files: Vec<(String, Vec<u8>)> = if name.to_ascii_lowercase().ends_with(".zip") {
            tokio::task::spawn_blocking(move || unzip_part_files(&bytes))
                .await
                .map_err(|_| AppError::Refused("reading the ZIP stopped unexpectedly"))??
        } else {
            vec![(name, bytes)]
        };
        // The parts the data set has.
        let chunks = self.all_records(&opened).await?;
        let mut parts: HashMap<String, String> = HashMap::new();
        for (_, payload) in &chunks {
            if let Some(col) = payload
                .rows
                .column(F_PART)
                .as_any()
                .downcast_ref::<StringArray>()
            {
                for i in 0..col.len() {
                    if !col.is_null(i) {
                        parts
                            .entry(part_key(col.value(i)))
                            .or_insert_with(|| col.value(i).to_owned());
                    }
                }
            }
        }
        let mut checked = Vec::with_capacity(files.len());
        for (file_name, bytes) in files {
            let content_type = part_file_type(&file_name).ok_or_else(|| AppError::Invalid {
                field: "file",
                reason: format!(
                    "{file_name}: only PNG and JPEG thumbnails and PDF, STEP and DXF files are kept"
                ),
            })?;
            if !looks_like(content_type, &bytes) {
                return Err(AppError::Invalid {
                    field: "file",
                    reason: format!("{file_name} is not a {content_type} file"),
                });
            }
            if bytes.len() > MAX_PART_FILE_BYTES {
                return Err(AppError::Invalid {
                    field: "file",
                    reason: format!(
                        "{file_name}: a part's file is limited to {} MiB",
                        MAX_PART_FILE_BYTES >> 20
                    ),
                });
            }
            let stem = match part_number {
                Some(p) => p.trim().to_owned(),
                None => file_name
                    .rsplit_once('.')
                    .map(|(s, _)| s)
                    .unwrap_or(&file_name)
                    .trim()
                    .to_owned(),
            };
            let part = parts.get(&part_key(&stem)).cloned().ok_or_else(|| {
                AppError::Invalid {
                    field: "file",
                    reason: format!(
                        "{file_name}: the data set has no part numbered \"{stem}\" (files are named by part number)"
                    ),
                }
            })?;
            checked.push((part, file_name, content_type, bytes));
        }
        let mut conn = self.store.read().await?;
        let existing = datasets::file_headers(&mut conn, id, FileKind::Part)
            .await?
            .len();
        drop(conn);
        if existing + checked.len() > MAX_PART_FILES {
            return Err(AppError::Invalid {
                field: "file",
                reason: format!("a data set keeps at most {MAX_PART_FILES} files of its parts"),
            });
        }
        let mut tx = self.store.write().await?;
        let mut views = Vec::with_capacity(checked.len());
        for (part, file_name, content_type, bytes) in checked {
            let size = bytes.len() as u64;
            let file_id = self
                .put_dataset_file(
                    &mut tx,
                    &opened,
                    FileKind::Part,
                    &part,
                    &file_name,
                    content_type,
                    bytes,
                )
                .await?;
            views.push(PartFileView {
                id: file_id,
                part_number: part,
                name: file_name,
                content_type: content_type.to_owned(),
                size,
            });
        }
        datasets::touch(&mut tx, id, self.clock.now()).await?;
        let event = Event::new(caller.actor(), "dataset.files_added", "dataset", id).change(
            "files",
            FieldChange::value(None::<u64>, Some(views.len() as u64)),
        );
        self.record(&mut tx, caller.organization(), event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(views)
    }

    /// One file of a BOM data set's part (whoever may read the data set).
    pub async fn dataset_part_file(
        &self,
        caller: &Caller,
        id: DatasetId,
        file_id: &str,
    ) -> Result<PartFile, AppError> {
        let stored = self.dataset_for(caller, DatasetAction::Read, id).await?;
        let key = hex::decode(file_id).map_err(|_| AppError::NotFound("file"))?;
        let opened = self.open_dataset(stored).await?;
        let mut conn = self.store.read().await?;
        let file = datasets::file(&mut conn, id, FileKind::Part, &key)
            .await?
            .ok_or(AppError::NotFound("file"))?;
        drop(conn);
        self.note_read(caller, &opened.stored).await?;
        Self::open_dataset_file(&opened, &file)
    }

    /// Writes a BOM data set's ticked records to Tryton: the missing products, then each
    /// assembly's BOM, then the ticked `destination_only` lines unlinked. Everything is read
    /// from Tryton again first, so a second submit of the same records changes nothing. Tryton
    /// commits each call on its own: when one fails, what the calls before it wrote stays, and
    /// submitting again finishes it.
    pub(super) async fn submit_bom(
        &self,
        opened: &Opened,
        beat: &Arc<Beat>,
        actor: Actor,
        attempt: &mut Attempt,
    ) -> Result<(), AppError> {
        let layout = opened.layout()?;
        let client = self
            .tryton_client(opened.stored.organization_id, &layout.spec, actor)
            .await?
            .ok_or(AppError::Refused(
                "a bill of materials is submitted to a Tryton connection: this pipeline's \
                 destination is not one",
            ))?;
        let result = self.submit_bom_with(&client, opened, beat, attempt).await;
        let _ = client.logout().await;
        result
    }

    async fn submit_bom_with(
        &self,
        client: &TrytonClient,
        opened: &Opened,
        beat: &Arc<Beat>,
        attempt: &mut Attempt,
    ) -> Result<(), AppError> {
        let layout = opened.layout()?;
        let match_by_name = layout
            .spec
            .bom
            .as_ref()
            .map(|b| b.match_by_name)
            .unwrap_or(BomSettings::default().match_by_name);
        let root = layout.bom.as_ref().and_then(|b| b.root.clone());
        let chunks = self.all_records(opened).await?;
        // The records: every file row (for assemblies and parents) and which are ticked.
        let mut rows: Vec<(u64, usize, RecordStatus, bool, Line)> = Vec::new();
        let mut destinations = HashMap::new();
        for (index, payload) in &chunks {
            let cells = records::Cells::new(&payload.rows);
            for (i, flags) in index.flags.iter().enumerate() {
                let status = RecordStatus::from_flags(*flags);
                let ticked = flags & PROCESS != 0;
                let values = if status == RecordStatus::DestinationOnly {
                    let view = self
                        .record_view(opened, index, payload, i, &mut destinations)
                        .await?;
                    BOM_FIELDS
                        .iter()
                        .map(|f| view.values.get(*f).cloned().unwrap_or_default())
                        .collect::<Vec<_>>()
                } else {
                    (0..BOM_FIELDS.len()).map(|f| cells.value(i, f)).collect()
                };
                let text = |f: usize| {
                    values
                        .get(f)
                        .and_then(|v| v.as_str())
                        .map(str::to_owned)
                        .filter(|s| !s.trim().is_empty())
                };
                let line = Line {
                    part: text(F_PART).unwrap_or_default(),
                    description: text(F_DESCRIPTION),
                    parent: text(F_PARENT_PART),
                    parent_description: None,
                    quantity: values.get(F_QUANTITY).and_then(serde_json::Value::as_f64),
                    unit: text(F_UNIT),
                };
                rows.push((index.chunk, i, status, ticked, line));
            }
        }
        let ticked: Vec<&(u64, usize, RecordStatus, bool, Line)> =
            rows.iter().filter(|r| r.3).collect();
        // Assemblies: every part that is a parent in the file.
        let assemblies: HashSet<String> = rows
            .iter()
            .filter(|r| r.2 != RecordStatus::DestinationOnly)
            .filter_map(|r| r.4.parent.as_deref().map(part_key))
            .collect();
        let mut parts: Vec<(String, Option<String>)> = Vec::new();
        for r in &ticked {
            parts.push((r.4.part.clone(), r.4.description.clone()));
            if let Some(p) = &r.4.parent {
                parts.push((p.clone(), None));
            }
        }
        if let Some(root) = &root {
            parts.push((root.clone(), None));
        }
        let descriptions: HashMap<String, Option<String>> = rows
            .iter()
            .filter(|r| !r.4.part.is_empty())
            .map(|r| (part_key(&r.4.part), r.4.description.clone()))
            .collect();
        let units: HashMap<String, Option<String>> = rows
            .iter()
            .filter(|r| !r.4.part.is_empty())
            .map(|r| (part_key(&r.4.part), r.4.unit.clone()))
            .collect();
        let mut catalogue = Catalogue::load(client, &parts, match_by_name).await?;

        // 1. The products Tryton lacks: the ticked records' parts and the assemblies their
        //    lines go into.
        let mut new_products: Vec<NewProduct> = Vec::new();
        let mut planned: HashSet<String> = HashSet::new();
        let mut need = |part: &str, catalogue: &Catalogue| {
            let key = part_key(part);
            let description = descriptions.get(&key).cloned().flatten();
            if part.trim().is_empty()
                || planned.contains(&key)
                || catalogue.find(part, description.as_deref()).is_some()
            {
                return;
            }
            planned.insert(key.clone());
            let unit = units
                .get(&key)
                .cloned()
                .flatten()
                .filter(|u| client.unit(u.trim()).is_some())
                .map(|u| u.trim().to_owned())
                .unwrap_or_else(|| DEFAULT_UNIT.to_owned());
            new_products.push(NewProduct {
                code: part.trim().to_owned(),
                name: description.unwrap_or_else(|| part.trim().to_owned()),
                uom_symbol: unit,
                producible: assemblies.contains(&key),
            });
        };
        for r in &ticked {
            if r.2 == RecordStatus::DestinationOnly {
                continue;
            }
            need(&r.4.part, &catalogue);
            if let Some(p) = &r.4.parent {
                need(p, &catalogue);
            }
        }
        if beat.lost.load(Ordering::Relaxed) {
            return Err(AppError::Refused("the submit's lease was lost"));
        }
        for r in &ticked {
            attempt.note(r.0, &[r.1]);
        }
        if !new_products.is_empty() {
            let codes: Vec<String> = new_products.iter().map(|p| p.code.clone()).collect();
            client
                .create_products(&new_products)
                .await
                .map_err(AppError::from)?;
            for p in client
                .products_by_codes(&codes)
                .await
                .map_err(AppError::from)?
            {
                catalogue.add(p);
            }
        }
        // 2. Each assembly with ticked lines: producible, with a BOM holding them.
        let mut by_parent: Vec<(String, Vec<&Line>)> = Vec::new();
        let mut unlink: Vec<&Line> = Vec::new();
        for r in &ticked {
            let Some(parent) = r.4.parent.as_deref() else {
                continue; // the assembly itself: its product is all it needs
            };
            if r.2 == RecordStatus::DestinationOnly {
                unlink.push(&r.4);
                continue;
            }
            match by_parent
                .iter_mut()
                .find(|(p, _)| part_key(p) == part_key(parent))
            {
                Some((_, lines)) => lines.push(&r.4),
                None => by_parent.push((parent.to_owned(), vec![&r.4])),
            }
        }
        let find = |catalogue: &Catalogue, part: &str| -> Result<Product, AppError> {
            let description = descriptions.get(&part_key(part)).cloned().flatten();
            catalogue
                .find(part, description.as_deref())
                .cloned()
                .ok_or(AppError::Refused(
                    "a product the submit created is not in Tryton: submit again",
                ))
        };
        let mut parent_ids: Vec<i64> = by_parent
            .iter()
            .filter_map(|(p, _)| find(&catalogue, p).ok().map(|p| p.id))
            .chain(unlink.iter().filter_map(|l| {
                l.parent
                    .as_deref()
                    .and_then(|p| catalogue.find(p, None))
                    .map(|p| p.id)
            }))
            .collect();
        parent_ids.sort_unstable();
        parent_ids.dedup();
        let boms = client.boms_of(&parent_ids).await.map_err(AppError::from)?;
        let mut written = 0u64;
        for (parent, lines) in &by_parent {
            if beat.lost.load(Ordering::Relaxed) {
                return Err(AppError::Refused("the submit's lease was lost"));
            }
            let assembly = find(&catalogue, parent)?;
            if !assembly.producible {
                client
                    .call(
                        "model.product.template.write",
                        serde_json::json!([[assembly.template_id], {"producible": true}, {}]),
                    )
                    .await
                    .map_err(AppError::from)?;
            }
            // The lines wanted, one per part (the first row of a part under this assembly).
            let mut wanted: Vec<(Product, f64, String)> = Vec::new();
            for l in lines {
                let product = find(&catalogue, &l.part)?;
                if wanted.iter().any(|(p, _, _)| p.id == product.id) {
                    continue;
                }
                let unit = l
                    .unit
                    .as_deref()
                    .map(str::trim)
                    .filter(|u| client.unit(u).is_some())
                    .map(str::to_owned)
                    .unwrap_or_else(|| product.uom_symbol.clone());
                wanted.push((product, l.quantity.unwrap_or(1.0), unit));
            }
            match boms.get(&assembly.id).and_then(|b| b.first()) {
                None => {
                    let inputs: Vec<NewBomLine> = wanted
                        .iter()
                        .map(|(p, q, u)| NewBomLine {
                            product_id: p.id,
                            quantity: *q,
                            uom_symbol: u.clone(),
                        })
                        .collect();
                    let name = assembly
                        .code
                        .clone()
                        .unwrap_or_else(|| assembly.name.clone());
                    client
                        .create_bom(assembly.id, &name, &inputs)
                        .await
                        .map_err(AppError::from)?;
                }
                Some(bom) => {
                    let mut add = Vec::new();
                    for (p, q, u) in &wanted {
                        match bom.inputs.iter().find(|l| l.product_id == p.id) {
                            Some(line) if same_quantity(line.quantity, *q) => {}
                            Some(line) => client
                                .set_line_quantity(line.id, *q)
                                .await
                                .map_err(AppError::from)?,
                            None => add.push(NewBomLine {
                                product_id: p.id,
                                quantity: *q,
                                uom_symbol: u.clone(),
                            }),
                        }
                    }
                    if !add.is_empty() {
                        client
                            .add_lines(bom.id, &add)
                            .await
                            .map_err(AppError::from)?;
                    }
                }
            }
            written += lines.len() as u64;
            beat.set(|c| c.written = written);
        }
        // 3. The ticked destination_only lines: unlinked from their BOM; the product stays.
        let mut line_ids = Vec::new();
        for l in &unlink {
            let Some(parent) = l.parent.as_deref().and_then(|p| catalogue.find(p, None)) else {
                continue;
            };
            let Some(child) = catalogue
                .find(&l.part, l.description.as_deref())
                .cloned()
                .or_else(|| {
                    catalogue
                        .by_id
                        .values()
                        .find(|p| p.code.as_deref().map(part_key) == Some(part_key(&l.part)))
                        .cloned()
                })
            else {
                continue;
            };
            if let Some(bom) = boms.get(&parent.id).and_then(|b| b.first()) {
                line_ids.extend(
                    bom.inputs
                        .iter()
                        .filter(|x| x.product_id == child.id)
                        .map(|x| x.id),
                );
            }
        }
        if !line_ids.is_empty() {
            client
                .unlink_lines(&line_ids)
                .await
                .map_err(AppError::from)?;
        }
        // 4. The parts' files, attached to their products once (by name).
        self.attach_part_files(client, opened, &catalogue).await?;
        Ok(())
    }

    async fn attach_part_files(
        &self,
        client: &TrytonClient,
        opened: &Opened,
        catalogue: &Catalogue,
    ) -> Result<(), AppError> {
        let mut conn = self.store.read().await?;
        let files = datasets::files(&mut conn, opened.stored.id, FileKind::Part).await?;
        drop(conn);
        let mut attached: HashMap<i64, HashSet<String>> = HashMap::new();
        for f in &files {
            let file = Self::open_dataset_file(opened, f)?;
            let Some(product) = catalogue.find(&file.view.part_number, None) else {
                continue;
            };
            if let std::collections::hash_map::Entry::Vacant(entry) = attached.entry(product.id) {
                let names = client
                    .attachments_of(product.id)
                    .await
                    .map_err(AppError::from)?
                    .into_iter()
                    .map(|a| a.name)
                    .collect();
                entry.insert(names);
            }
            let names = attached.entry(product.id).or_default();
            if names.contains(&file.view.name) {
                continue;
            }
            client
                .attach_file(product.id, &file.view.name, &file.bytes)
                .await
                .map_err(AppError::from)?;
            names.insert(file.view.name.clone());
        }
        Ok(())
    }
}

/// A node of the tree from the records opened, its children down to `depth` (those opened).
fn build_node(
    row: u32,
    depth: u32,
    children: &[Vec<u32>],
    wanted: &HashSet<u32>,
    views: &mut HashMap<u32, RecordView>,
    files: &HashMap<String, Vec<PartFileView>>,
    count: &mut u64,
) -> Option<TreeNode> {
    let record = views.remove(&row)?;
    *count += 1;
    let kids = children
        .get(row as usize + 1)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let child_nodes = if depth > 0 {
        kids.iter()
            .filter(|k| wanted.contains(k))
            .filter_map(|k| build_node(*k, depth - 1, children, wanted, views, files, count))
            .collect()
    } else {
        Vec::new()
    };
    let part_files = record
        .values
        .get("part_number")
        .and_then(|v| v.as_str())
        .and_then(|p| files.get(&part_key(p)))
        .cloned()
        .unwrap_or_default();
    Some(TreeNode {
        record,
        child_count: kids.len() as u64,
        children: child_nodes,
        files: part_files,
    })
}

/// A column of a BOM chunk's records as the array its field is.
fn column<T: 'static>(rows: &RecordBatch, field: usize) -> Result<&T, AppError> {
    rows.column(field)
        .as_any()
        .downcast_ref::<T>()
        .ok_or(AppError::Store(StoreError::Corrupt("data set chunk")))
}

/// The per-part totals of a BOM data set's records (file rows only). Blocking work.
fn part_totals(chunks: &[(ChunkIndex, RecordsChunk)]) -> Result<Vec<PartTotalView>, AppError> {
    let mut parent_of: Vec<Option<u64>> = Vec::new();
    let mut quantity_of: Vec<f64> = Vec::new();
    // Each row's part number, description and unit.
    type Part = (String, Option<String>, Option<String>);
    let mut part_of: Vec<Option<Part>> = Vec::new();
    for (index, payload) in chunks {
        let rows = &payload.rows;
        let parents = column::<Int64Array>(rows, F_PARENT_ROW)?;
        let parts = column::<StringArray>(rows, F_PART)?;
        let descriptions = column::<StringArray>(rows, F_DESCRIPTION)?;
        let quantities = column::<Float64Array>(rows, F_QUANTITY)?;
        let units = column::<StringArray>(rows, F_UNIT)?;
        for (i, flags) in index.flags.iter().enumerate() {
            if RecordStatus::from_flags(*flags) == RecordStatus::DestinationOnly {
                continue;
            }
            parent_of.push((!parents.is_null(i)).then(|| parents.value(i).max(0) as u64));
            quantity_of.push(if quantities.is_null(i) {
                1.0
            } else {
                quantities.value(i)
            });
            let text = |a: &StringArray| (!a.is_null(i)).then(|| a.value(i).to_owned());
            part_of.push(text(parts).map(|p| (p, text(descriptions), text(units))));
        }
    }
    // The multiplier of each row: the product of the quantities above it (parents come first).
    let mut multiplier: Vec<f64> = vec![1.0; parent_of.len()];
    for r in 0..parent_of.len() {
        let above = parent_of
            .get(r)
            .copied()
            .flatten()
            .and_then(|p| usize::try_from(p).ok())
            .filter(|p| *p < r)
            .map(|p| {
                multiplier.get(p).copied().unwrap_or(1.0)
                    * quantity_of.get(p).copied().unwrap_or(1.0)
            })
            .unwrap_or(1.0);
        if let Some(m) = multiplier.get_mut(r) {
            *m = above;
        }
    }
    let mut order: Vec<PartTotalView> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for (r, part) in part_of.iter().enumerate() {
        let Some((part, description, unit)) = part else {
            continue;
        };
        let q =
            multiplier.get(r).copied().unwrap_or(1.0) * quantity_of.get(r).copied().unwrap_or(1.0);
        let key = part_key(part);
        match at.get(&key).and_then(|i| order.get_mut(*i)) {
            Some(total) => {
                total.quantity += q;
                total.rows.push(r as u64);
                if total.description.is_none() {
                    total.description = description.clone();
                }
                if total.unit.is_none() {
                    total.unit = unit.clone();
                }
            }
            None => {
                at.insert(key, order.len());
                order.push(PartTotalView {
                    part_number: part.clone(),
                    description: description.clone(),
                    unit: unit.clone(),
                    quantity: q,
                    rows: vec![r as u64],
                });
            }
        }
    }
    Ok(order)
}

/// The files of a ZIP of parts' files, bounded: at most [`MAX_PART_FILES`] entries of at most
/// [`MAX_PART_FILE_BYTES`] each, [`crate::MAX_UPLOAD_BYTES`] in all once inflated; folders and
/// hidden files skipped. Blocking work.
fn unzip_part_files(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, AppError> {
    use std::io::Read;
    let invalid = |reason: String| AppError::Invalid {
        field: "file",
        reason,
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|_| invalid("the ZIP cannot be read".to_owned()))?;
    if archive.len() > MAX_PART_FILES {
        return Err(invalid(format!(
            "the ZIP holds more than {MAX_PART_FILES} files"
        )));
    }
    let mut total = 0usize;
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let entry = archive
            .by_index(i)
            .map_err(|_| invalid("the ZIP cannot be read".to_owned()))?;
        if entry.is_dir() {
            continue;
        }
        let Some(name) = entry
            .enclosed_name()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        else {
            continue;
        };
        if name.starts_with('.') || name.starts_with("__MACOSX") {
            continue;
        }
        if entry.size() > MAX_PART_FILE_BYTES as u64 {
            return Err(invalid(format!(
                "{name}: a part's file is limited to {} MiB",
                MAX_PART_FILE_BYTES >> 20
            )));
        }
        let mut data = Vec::new();
        entry
            .take(MAX_PART_FILE_BYTES as u64 + 1)
            .read_to_end(&mut data)
            .map_err(|_| invalid(format!("{name} cannot be read from the ZIP")))?;
        if data.len() > MAX_PART_FILE_BYTES {
            return Err(invalid(format!(
                "{name}: a part's file is limited to {} MiB",
                MAX_PART_FILE_BYTES >> 20
            )));
        }
        total += data.len();
        if total > crate::MAX_UPLOAD_BYTES {
            return Err(invalid(format!(
                "the ZIP holds more than {} MiB",
                crate::MAX_UPLOAD_MIB
            )));
        }
        out.push((name, data));
    }
    Ok(out)
}

fn kind_word(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Source => "source",
        FileKind::Against => "against",
        FileKind::Part => "part",
        FileKind::Tree => "tree",
    }
}

/// An uploaded file's name: its last path part, not empty, without control characters.
fn upload_file_name(name: &str) -> Result<String, AppError> {
    let base = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if base.is_empty() || base.chars().count() > 200 || base.chars().any(char::is_control) {
        return Err(AppError::Invalid {
            field: "file_name",
            reason: "must be a file name of at most 200 characters".to_owned(),
        });
    }
    Ok(base)
}
