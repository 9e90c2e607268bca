//! Data sets: a member pulls records through a pipeline into a data set of their own, reviews
//! them beside what the destination holds, fixes or unticks what is wrong, and submits the ticked
//! records to the destination.
//!
//! A data set is the most sensitive thing the hub holds, so:
//! - it has a key of its own ([`DataKey`]), stored only wrapped by the organization's key and
//!   bound to the data set; every record, edit, destination value and outcome is sealed under
//!   it, bound to the data set, the part and its position. Deleting the data set deletes the
//!   wrapped key with it: what is left on disk cannot be read;
//! - it belongs to its owner: visible to them, to the members it is shared with (to read) and to
//!   the organization's Administrators; to nobody else (404, like a missing id);
//! - it is deleted when nobody opened, edited or submitted it for the organization's
//!   `dataset_retention_days`, and with its owner's absence as long.
//!
//! Records are kept in chunks of [`CHUNK_ROWS`]: one sealed payload (values, the source values
//! the rules ran on, issues, the destination record each one is compared with, outcomes) and one
//! flags byte per record in clear (status, tick, issue levels, outcome), so pages filter and
//! count without opening anything and open only the chunks they show. The destination's records
//! read for the comparison are kept in chunks of their own, read when a page shows changes.
//!
//! A pull reads the destination first (keeping a keyed hash of each key and of its values in
//! memory, not its records), then the source through the pipeline's rules in review mode
//! ([`lockstep_engine::Plan::for_review`]: nothing is rejected, every problem is an issue on its
//! field), then adds the destination's records the source did not have as `destination_only`.
//! Pulls and submits run on a task of their own with a lease kept alive by heartbeats; one whose
//! process died is found by [`Hub::sweep_datasets`]: a pull's partial records are removed, a
//! submit wrote nothing (the destination commits all or nothing).

use crate::audit::{Actor, Event, FieldChange};
use crate::identity::Caller;
use crate::{AppError, BlockedRow, Hub};
use lockstep_connectors::batch::{
    BatchDestination, BatchSource, BatchWriter, DEFAULT_BATCH_ROWS, ReadSpec, RecordBatch,
    SchemaRef, WriteMode, WriteSpec, field_meta,
};
use lockstep_connectors::{ConnectionKind, FailureKind};
use lockstep_domain::{DatasetId, PipelineId, UserId};
use lockstep_engine::records::{self, Row};
use lockstep_engine::{Level, PipelineSpec, Plan};
use lockstep_policy::{Action, DatasetAction};
use lockstep_storage::datasets::{self, ChunkIndex, ChunkKind, StoredChunk, StoredDataset};
use lockstep_storage::{StoreError, connections, pipelines, users};
use lockstep_vault::DataKey;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use zeroize::Zeroizing;

mod bom;
pub use bom::{
    BOM_FIELDS, MAX_PART_FILE_BYTES, PartFile, PartFileView, PartTotalView, TreeNode, TreePage,
    TreeQuery, part_file_type,
};

/// Records per stored chunk.
pub const CHUNK_ROWS: usize = 1024;
/// The most records one page shows.
pub const MAX_PAGE: u64 = 500;
/// How long a pull's or submit's lease lasts without a heartbeat, unless
/// [`crate::HubOptions::dataset_lease`] says otherwise.
pub const LEASE: Duration = Duration::seconds(30);
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(2);
/// Data sets are deleted after this many days untouched unless the organization says otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 5;
/// The longest an organization may keep data sets untouched.
pub const MAX_RETENTION_DAYS: u32 = 90;
/// How many ticked records with errors a refused submit names.
const BLOCKED_ROWS: usize = 20;
/// The longest a data set's name may be.
const MAX_NAME: usize = 200;

// Flags: one byte per record.
const STATUS_MASK: u8 = 0b0000_0111;
const PROCESS: u8 = 1 << 3;
const HAS_ERROR: u8 = 1 << 4;
const HAS_WARNING: u8 = 1 << 5;
const OUTCOME_SHIFT: u8 = 6;
const OUTCOME_MASK: u8 = 0b1100_0000;

/// Where a data set is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetState {
    /// Records are being read.
    Pulling,
    /// Ready for review.
    Ready,
    /// The ticked records are being written.
    Submitting,
    /// The last submit wrote its records.
    Submitted,
    /// The pull failed (see the message); nothing is kept.
    Failed,
}

impl DatasetState {
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetState::Pulling => "pulling",
            DatasetState::Ready => "ready",
            DatasetState::Submitting => "submitting",
            DatasetState::Submitted => "submitted",
            DatasetState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<DatasetState, AppError> {
        Ok(match s {
            "pulling" => DatasetState::Pulling,
            "ready" => DatasetState::Ready,
            "submitting" => DatasetState::Submitting,
            "submitted" => DatasetState::Submitted,
            "failed" => DatasetState::Failed,
            _ => return Err(AppError::Store(StoreError::Corrupt("data set state"))),
        })
    }

    /// Whether a pull or submit is going.
    pub fn is_busy(self) -> bool {
        matches!(self, DatasetState::Pulling | DatasetState::Submitting)
    }
}

/// A record compared with the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    /// Not in the destination: a submit inserts it.
    Create,
    /// In the destination with other values: a submit updates it.
    Update,
    /// In the destination with the same values.
    Unchanged,
    /// Only in the destination: shown, never deleted (a bill of materials' line is unlinked
    /// when ticked).
    DestinationOnly,
    /// A bill of materials' line whose part the destination has, but not in this assembly: a
    /// submit adds the line.
    Link,
}

impl RecordStatus {
    pub const ALL: [RecordStatus; 5] = [
        RecordStatus::Create,
        RecordStatus::Link,
        RecordStatus::Update,
        RecordStatus::Unchanged,
        RecordStatus::DestinationOnly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::Create => "create",
            RecordStatus::Update => "update",
            RecordStatus::Unchanged => "unchanged",
            RecordStatus::DestinationOnly => "destination_only",
            RecordStatus::Link => "link",
        }
    }

    pub fn parse(s: &str) -> Option<RecordStatus> {
        RecordStatus::ALL.into_iter().find(|r| r.as_str() == s)
    }

    fn bits(self) -> u8 {
        match self {
            RecordStatus::Create => 0,
            RecordStatus::Update => 1,
            RecordStatus::Unchanged => 2,
            RecordStatus::DestinationOnly => 3,
            RecordStatus::Link => 4,
        }
    }

    fn from_flags(flags: u8) -> RecordStatus {
        match flags & STATUS_MASK {
            0 => RecordStatus::Create,
            1 => RecordStatus::Update,
            2 => RecordStatus::Unchanged,
            4 => RecordStatus::Link,
            _ => RecordStatus::DestinationOnly,
        }
    }

    /// Whether a record of this status is ticked when it is pulled.
    fn ticked_by_default(self) -> bool {
        matches!(
            self,
            RecordStatus::Create | RecordStatus::Update | RecordStatus::Link
        )
    }
}

/// What became of a record at the last submit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordOutcome {
    Submitted,
    Failed,
}

impl RecordOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordOutcome::Submitted => "submitted",
            RecordOutcome::Failed => "failed",
        }
    }

    fn from_flags(flags: u8) -> Option<RecordOutcome> {
        match (flags & OUTCOME_MASK) >> OUTCOME_SHIFT {
            1 => Some(RecordOutcome::Submitted),
            2 => Some(RecordOutcome::Failed),
            _ => None,
        }
    }

    fn bits(outcome: Option<RecordOutcome>) -> u8 {
        let n = match outcome {
            None => 0,
            Some(RecordOutcome::Submitted) => 1,
            Some(RecordOutcome::Failed) => 2,
        };
        n << OUTCOME_SHIFT
    }
}

/// Which records by their issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueFilter {
    /// Records with an error or a warning.
    Any,
    /// Records with an error.
    Errors,
    /// Records with a warning.
    Warnings,
    /// Records without issues.
    None,
}

impl IssueFilter {
    pub fn parse(s: &str) -> Option<IssueFilter> {
        Some(match s {
            "any" => IssueFilter::Any,
            "errors" | "error" => IssueFilter::Errors,
            "warnings" | "warning" => IssueFilter::Warnings,
            "none" => IssueFilter::None,
            _ => return None,
        })
    }

    fn admits(self, flags: u8) -> bool {
        let error = flags & HAS_ERROR != 0;
        let warning = flags & HAS_WARNING != 0;
        match self {
            IssueFilter::Any => error || warning,
            IssueFilter::Errors => error,
            IssueFilter::Warnings => warning,
            IssueFilter::None => !error && !warning,
        }
    }
}

/// Counts of a data set's records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetCounts {
    /// Records in the data set (destination-only ones included).
    pub records: u64,
    pub create: u64,
    pub update: u64,
    pub unchanged: u64,
    pub destination_only: u64,
    /// Bill of materials lines whose part the destination has elsewhere.
    #[serde(default)]
    pub link: u64,
    /// Records with at least one error.
    pub errors: u64,
    /// Records with at least one warning.
    pub warnings: u64,
    /// Ticked records.
    pub ticked: u64,
    /// Ticked records with an error (a submit is refused while there are any).
    pub ticked_with_errors: u64,
    /// Records the last submit wrote.
    pub submitted: u64,
    /// Records the last submit could not write.
    pub failed: u64,
    /// While pulling: source records read so far; after: all read.
    pub read: u64,
    /// Source records the filters skipped.
    pub skipped: u64,
    /// While submitting: records written so far.
    pub written: u64,
}

impl DatasetCounts {
    fn add_flags(&mut self, flags: u8) {
        self.records += 1;
        match RecordStatus::from_flags(flags) {
            RecordStatus::Create => self.create += 1,
            RecordStatus::Update => self.update += 1,
            RecordStatus::Unchanged => self.unchanged += 1,
            RecordStatus::DestinationOnly => self.destination_only += 1,
            RecordStatus::Link => self.link += 1,
        }
        let error = flags & HAS_ERROR != 0;
        if error {
            self.errors += 1;
        }
        if flags & HAS_WARNING != 0 {
            self.warnings += 1;
        }
        if flags & PROCESS != 0 {
            self.ticked += 1;
            if error {
                self.ticked_with_errors += 1;
            }
        }
        match RecordOutcome::from_flags(flags) {
            Some(RecordOutcome::Submitted) => self.submitted += 1,
            Some(RecordOutcome::Failed) => self.failed += 1,
            None => {}
        }
    }

    /// Counts from every chunk's flags, keeping the pull's `read` and `skipped`.
    fn from_index(index: &[ChunkIndex], read: u64, skipped: u64) -> DatasetCounts {
        let mut counts = DatasetCounts {
            read,
            skipped,
            ..DatasetCounts::default()
        };
        for chunk in index {
            for flags in &chunk.flags {
                counts.add_flags(*flags);
            }
        }
        counts
    }

    fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    fn from_json(text: &str) -> DatasetCounts {
        serde_json::from_str(text).unwrap_or_default()
    }
}

/// A data set as it is shown.
#[derive(Debug, Clone)]
pub struct DatasetView {
    pub id: DatasetId,
    pub name: String,
    pub pipeline_id: PipelineId,
    pub owner: UserId,
    pub state: DatasetState,
    /// Why the pull or the last submit failed (names no value).
    pub message: Option<String>,
    pub counts: DatasetCounts,
    /// The record fields, in order (empty until the pull read the source's schema).
    pub fields: Vec<String>,
    /// The fields that identify a record (empty: none; every record is new).
    pub key: Vec<String>,
    pub shared_with: Vec<UserId>,
    pub created_at: OffsetDateTime,
    /// Last opened, edited or submitted.
    pub touched_at: OffsetDateTime,
    /// When it is deleted unless someone opens it again.
    pub expires_at: OffsetDateTime,
    /// Whether the caller may edit, tick, pull again and submit.
    pub may_edit: bool,
    /// Whether the caller may share, hand over and delete it.
    pub may_manage: bool,
    /// A data set read from a bill of materials: its file and how it was read.
    pub bom: Option<BomInfo>,
}

/// How a data set's bill of materials was read and what it is compared with.
#[derive(Debug, Clone, PartialEq)]
pub struct BomInfo {
    /// The uploaded file's name.
    pub file_name: String,
    /// The file the records are compared with; none: the pipeline's destination.
    pub against: Option<String>,
    /// The assembly's part number.
    pub root: Option<String>,
    /// The import profile the file was read with (detected, or the pipeline's).
    pub profile: serde_json::Value,
    /// The file's other columns, kept as record fields after the BOM's own.
    pub properties: Vec<String>,
}

/// A field whose value differs from the destination's.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub field: String,
    /// The destination's value.
    pub destination: serde_json::Value,
    /// The data set's value.
    pub value: serde_json::Value,
}

/// What is wrong with a record's field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordIssue {
    pub field: String,
    pub level: Level,
    pub message: String,
}

/// One record as the review grid shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordView {
    /// The record's position in the data set, from 0.
    pub row: u64,
    /// The key fields and their values (empty without a key).
    pub key: serde_json::Map<String, serde_json::Value>,
    pub values: serde_json::Map<String, serde_json::Value>,
    pub status: RecordStatus,
    /// `update` records: the fields that differ, the destination's value beside the new one.
    pub changes: Vec<Change>,
    pub issues: Vec<RecordIssue>,
    /// Ticked: a submit writes it.
    pub process: bool,
    pub outcome: Option<RecordOutcome>,
    /// Why the last submit could not write it (the destination's reason, no value).
    pub outcome_message: Option<String>,
}

/// Which records a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordQuery {
    pub offset: u64,
    /// At most [`MAX_PAGE`]; 0 means 100.
    pub limit: u64,
    pub status: Option<RecordStatus>,
    pub issues: Option<IssueFilter>,
}

/// A page of records.
#[derive(Debug, Clone)]
pub struct RecordPage {
    pub records: Vec<RecordView>,
    /// Records that match the query in all.
    pub total: u64,
    /// Records of this page the data policies withhold from the viewer (left out).
    pub withheld: u64,
}

/// Which records a bulk tick changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessSelection {
    Rows(Vec<u64>),
    /// These rows of a bill of materials and every row below them.
    Subtrees(Vec<u64>),
    Status(RecordStatus),
}

// ---------------------------------------------------------------------------------------------
// What is sealed

/// What the data set needs to open and recompute its records, sealed under its key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Layout {
    /// The pipeline as it was pulled, with the data set's filter joined to its own.
    spec: PipelineSpec,
    /// The source's schema (of the fields the plan reads) and the records' schema.
    source: serde_json::Value,
    output: serde_json::Value,
    /// The record fields that identify a record.
    key: Vec<String>,
    /// For each record field, whether the destination has it (compared only then).
    compared: Vec<bool>,
    /// A data set read from a bill of materials: its file and how it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bom: Option<bom::BomLayout>,
}

/// What a pull reads.
enum PullJob {
    /// The pipeline's source, through its rules.
    Pipeline(Box<PipelineSpec>),
    /// A bill of materials file.
    Bom(Box<bom::BomJob>),
}

/// A stored issue.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredIssue {
    field: String,
    level: Level,
    message: String,
}

/// What a chunk of records keeps beside the records, by position in the chunk.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ChunkNotes {
    /// Issues by position in the chunk.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    issues: BTreeMap<u32, Vec<StoredIssue>>,
    /// The destination record each record was compared with (for a `destination_only` record,
    /// the destination record it is).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    destination: BTreeMap<u32, u64>,
    /// Why the last submit could not write a record.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    failures: BTreeMap<u32, String>,
}

/// One chunk of records, opened. Kept as Arrow batches (sealed in the Arrow IPC format), so a
/// pull stores what the rules made without turning each value into JSON, and a page turns only
/// the records it shows.
#[derive(Debug, Clone)]
struct RecordsChunk {
    /// The records, in the layout's output schema (every field nullable); a `destination_only`
    /// record's row is null here: its values are the destination's.
    rows: RecordBatch,
    /// The source values each record came from (the plan's input, every field nullable), for
    /// recomputing an edited record; null for `destination_only` records.
    source: RecordBatch,
    /// For each source column, the record column that holds the same values (a plain mapping),
    /// if any: such a source column is not stored twice ([`seal_records`] checks it is the same).
    derived: Arc<[Option<usize>]>,
    notes: ChunkNotes,
}

/// One chunk of the destination's records, opened: in the records' field order, each column
/// as the destination holds it (null where it has no such field).
#[derive(Debug, Clone)]
struct DestinationChunk {
    rows: RecordBatch,
}

/// What the first bytes of a sealed chunk say it holds (version 1: notes as JSON, then Arrow
/// IPC streams).
const CHUNK_FORMAT: &[u8; 4] = b"LSC1";
/// A records chunk that leaves out the source columns a record column repeats.
const CHUNK_FORMAT_DERIVED: &[u8; 4] = b"LSC2";

/// `part` of one length-prefixed section.
fn put_section(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(part);
}

/// The next length-prefixed section of `bytes`, and what follows it.
fn take_section(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    (rest.len() >= len).then(|| rest.split_at(len))
}

fn corrupt_chunk() -> AppError {
    AppError::Refused(
        "this data set's records were stored by another version of the hub: refresh it to pull \
         them again (edits are kept)",
    )
}

fn batch_error(_: records::BatchError) -> AppError {
    AppError::Store(StoreError::Corrupt("data set chunk"))
}

fn seal_plain(
    key: &DataKey,
    id: DatasetId,
    part: &str,
    position: u64,
    plain: &[u8],
) -> Result<Vec<u8>, AppError> {
    let id = id.to_string();
    Ok(key.seal(
        &[id.as_bytes(), part.as_bytes(), &position.to_be_bytes()],
        plain,
        &mut rand::rng(),
    )?)
}

/// What [`seal_plain`] sealed with the same data set, part and position.
fn open_plain(
    key: &DataKey,
    id: DatasetId,
    part: &str,
    position: u64,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, AppError> {
    let id = id.to_string();
    Ok(key.open(
        &[id.as_bytes(), part.as_bytes(), &position.to_be_bytes()],
        ciphertext,
    )?)
}

fn seal_records(
    key: &DataKey,
    id: DatasetId,
    chunk: u64,
    records: &RecordsChunk,
) -> Result<Vec<u8>, AppError> {
    let mut plain = Zeroizing::new(Vec::new());
    plain.extend_from_slice(CHUNK_FORMAT_DERIVED);
    let notes = Zeroizing::new(
        serde_json::to_vec(&records.notes)
            .map_err(|_| AppError::Store(StoreError::Corrupt("data set")))?,
    );
    put_section(&mut plain, &notes);
    let mut rows = Zeroizing::new(Vec::new());
    records::write_ipc(&records.rows, &mut rows).map_err(batch_error)?;
    put_section(&mut plain, &rows);
    // A source column is left out when a record column holds exactly its values.
    let derived = derived_columns(records);
    let mut map = Vec::with_capacity(derived.len() * 4);
    for d in &derived {
        let j = d.and_then(|j| u32::try_from(j).ok()).unwrap_or(u32::MAX);
        map.extend_from_slice(&j.to_be_bytes());
    }
    put_section(&mut plain, &map);
    let schema = records.source.schema();
    let mut empty = Vec::new();
    records::write_ipc(&RecordBatch::new_empty(Arc::clone(&schema)), &mut empty)
        .map_err(batch_error)?;
    put_section(&mut plain, &empty);
    let kept: Vec<usize> = (0..derived.len())
        .filter(|i| derived.get(*i).is_some_and(Option::is_none))
        .collect();
    let stored = records
        .source
        .project(&kept)
        .map_err(|_| AppError::Store(StoreError::Corrupt("data set chunk")))?;
    records::write_ipc(&stored, &mut plain).map_err(batch_error)?;
    seal_plain(key, id, "records", chunk, &plain)
}

/// The source columns of a chunk that a record column repeats: the chunk's hint, each checked.
fn derived_columns(records: &RecordsChunk) -> Vec<Option<usize>> {
    let source = &records.source;
    (0..source.num_columns())
        .map(|i| {
            let j = (*records.derived.get(i)?)?;
            let (a, b) = (source.column(i), records.rows.columns().get(j)?);
            (a.data_type() == b.data_type() && a.to_data() == b.to_data()).then_some(j)
        })
        .collect()
}

fn open_records(
    key: &DataKey,
    id: DatasetId,
    chunk: u64,
    ciphertext: &[u8],
) -> Result<RecordsChunk, AppError> {
    let plain = open_plain(key, id, "records", chunk, ciphertext)?;
    if let Some(rest) = plain.strip_prefix(CHUNK_FORMAT_DERIVED) {
        let (notes, rest) = take_section(rest).ok_or_else(corrupt_chunk)?;
        let (rows, rest) = take_section(rest).ok_or_else(corrupt_chunk)?;
        let (map, rest) = take_section(rest).ok_or_else(corrupt_chunk)?;
        let (schema, stored) = take_section(rest).ok_or_else(corrupt_chunk)?;
        let rows = records::read_ipc(rows).map_err(batch_error)?;
        let schema = records::read_ipc(schema).map_err(batch_error)?.schema();
        let stored = records::read_ipc(stored).map_err(batch_error)?;
        let derived: Vec<Option<usize>> = map
            .chunks_exact(4)
            .map(|b| {
                let j = <[u8; 4]>::try_from(b).map_or(u32::MAX, u32::from_be_bytes);
                (j != u32::MAX).then(|| usize::try_from(j).unwrap_or(usize::MAX))
            })
            .collect();
        if derived.len() != schema.fields().len() {
            return Err(corrupt_chunk());
        }
        let mut kept = stored.columns().iter();
        let columns = derived
            .iter()
            .map(|d| match d {
                Some(j) => rows.columns().get(*j).cloned(),
                None => kept.next().cloned(),
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(corrupt_chunk)?;
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows.num_rows()));
        let source = RecordBatch::try_new_with_options(schema, columns, &options)
            .map_err(|_| corrupt_chunk())?;
        return Ok(RecordsChunk {
            notes: serde_json::from_slice(notes).map_err(|_| corrupt_chunk())?,
            rows,
            source,
            derived: derived.into(),
        });
    }
    let rest = plain.strip_prefix(CHUNK_FORMAT).ok_or_else(corrupt_chunk)?;
    let (notes, rest) = take_section(rest).ok_or_else(corrupt_chunk)?;
    let (rows, source) = take_section(rest).ok_or_else(corrupt_chunk)?;
    let source = records::read_ipc(source).map_err(batch_error)?;
    Ok(RecordsChunk {
        notes: serde_json::from_slice(notes).map_err(|_| corrupt_chunk())?,
        rows: records::read_ipc(rows).map_err(batch_error)?,
        derived: vec![None; source.num_columns()].into(),
        source,
    })
}

fn seal_destination(
    key: &DataKey,
    id: DatasetId,
    chunk: u64,
    rows: &RecordBatch,
) -> Result<Vec<u8>, AppError> {
    let mut plain = Zeroizing::new(Vec::new());
    plain.extend_from_slice(CHUNK_FORMAT);
    records::write_ipc(rows, &mut plain).map_err(batch_error)?;
    seal_plain(key, id, "destination", chunk, &plain)
}

fn open_destination(
    key: &DataKey,
    id: DatasetId,
    chunk: u64,
    ciphertext: &[u8],
) -> Result<DestinationChunk, AppError> {
    let plain = open_plain(key, id, "destination", chunk, ciphertext)?;
    let rest = plain.strip_prefix(CHUNK_FORMAT).ok_or_else(corrupt_chunk)?;
    Ok(DestinationChunk {
        rows: records::read_ipc(rest).map_err(batch_error)?,
    })
}

/// An edit, kept by the record's key so a refresh can apply it again: source field → value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StoredEdit {
    values: BTreeMap<String, serde_json::Value>,
}

/// An opened data set: its row, its key and, once pulled, its layout.
struct Opened {
    stored: StoredDataset,
    key: Arc<DataKey>,
    layout: Option<Layout>,
}

impl Opened {
    fn layout(&self) -> Result<&Layout, AppError> {
        self.layout
            .as_ref()
            .ok_or(AppError::Refused("the data set has no records yet"))
    }
}

fn seal_json<T: Serialize>(
    key: &DataKey,
    id: DatasetId,
    part: &str,
    position: u64,
    value: &T,
) -> Result<Vec<u8>, AppError> {
    let plain = Zeroizing::new(
        serde_json::to_vec(value).map_err(|_| AppError::Store(StoreError::Corrupt("data set")))?,
    );
    seal_plain(key, id, part, position, &plain)
}

fn open_json<T: for<'de> Deserialize<'de>>(
    key: &DataKey,
    id: DatasetId,
    part: &str,
    position: u64,
    ciphertext: &[u8],
) -> Result<T, AppError> {
    let plain = open_plain(key, id, part, position, ciphertext)?;
    serde_json::from_slice(&plain).map_err(|_| AppError::Store(StoreError::Corrupt("data set")))
}

/// What record keys are hashed under (one subkey of the data set's key).
fn key_hasher(key: &DataKey) -> Result<lockstep_vault::KeyedHasher, AppError> {
    Ok(key.hasher("dataset record key")?)
}

/// A key's identity under the data set's key (16 bytes of a keyed hash of its values).
fn key_hash(hasher: &lockstep_vault::KeyedHasher, values: &[&serde_json::Value]) -> u128 {
    let mut text = String::new();
    for v in values {
        text.push_str(&records::comparable(v));
        text.push('\u{1f}');
    }
    key_hash_text(hasher, &text)
}

/// [`key_hash`] of the key columns of a batch's record, read in place (`text` is scratch).
fn key_hash_cells(
    hasher: &lockstep_vault::KeyedHasher,
    cells: &records::Cells<'_>,
    row: usize,
    key_columns: &[usize],
    text: &mut String,
) -> u128 {
    text.clear();
    for k in key_columns {
        cells.write_comparable(row, *k, text);
        text.push('\u{1f}');
    }
    key_hash_text(hasher, text)
}

fn key_hash_text(hasher: &lockstep_vault::KeyedHasher, text: &str) -> u128 {
    let hash = hasher.hash(text.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(hash.get(..16).unwrap_or(&[0u8; 16]));
    u128::from_be_bytes(first)
}

/// A hash of the compared values of a record (not keyed: it never leaves memory).
fn content_hash(row: &Row, compared: &[bool]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (v, c) in row.iter().zip(compared) {
        if *c {
            records::comparable(v).hash(&mut h);
        }
    }
    h.finish()
}

/// [`content_hash`] of a batch's record, read in place (`text` is scratch).
fn content_hash_cells(
    cells: &records::Cells<'_>,
    row: usize,
    compared: &[bool],
    text: &mut String,
) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (column, c) in compared.iter().enumerate() {
        if *c {
            text.clear();
            cells.write_comparable(row, column, text);
            text.as_str().hash(&mut h);
        }
    }
    h.finish()
}

fn flags_for(status: RecordStatus, process: bool, issues: &[StoredIssue]) -> u8 {
    let mut flags = status.bits();
    if process {
        flags |= PROCESS;
    }
    if issues.iter().any(|i| i.level == Level::Error) {
        flags |= HAS_ERROR;
    }
    if issues.iter().any(|i| i.level == Level::Warning) {
        flags |= HAS_WARNING;
    }
    flags
}

fn connector_error(err: lockstep_engine::EngineError) -> AppError {
    match err {
        lockstep_engine::EngineError::Connector(err) => AppError::from(err),
        lockstep_engine::EngineError::Spec(err) => AppError::InvalidConfig {
            field: err.field,
            reason: err.reason,
        },
        other => AppError::Connector {
            kind: FailureKind::Other,
            message: other.to_string(),
        },
    }
}

fn failure_message(err: &AppError) -> String {
    match err {
        AppError::Connector { message, .. } => message.clone(),
        AppError::InvalidConfig { field, reason } => format!("{field}: {reason}"),
        AppError::Invalid { field, reason } => format!("{field}: {reason}"),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// The use cases

impl Hub {
    /// The data set if the caller may do `action` to it: another organization's, or one neither
    /// theirs nor shared with them (unless they are an Administrator), is not found.
    async fn dataset_for(
        &self,
        caller: &Caller,
        action: DatasetAction,
        id: DatasetId,
    ) -> Result<StoredDataset, AppError> {
        let mut conn = self.store.read().await?;
        let stored = datasets::get(&mut conn, caller.organization(), id)
            .await?
            .ok_or(AppError::NotFound("data set"))?;
        let shared = stored.owner_id != caller.user()
            && datasets::shares(&mut conn, id)
                .await?
                .contains(&caller.user());
        drop(conn);
        let decision = lockstep_policy::decide_dataset(
            &lockstep_policy::Subject::Member(caller.member),
            action,
            &lockstep_policy::Dataset {
                organization: stored.organization_id,
                owner: stored.owner_id,
                shared_with_caller: shared,
            },
        );
        match decision {
            lockstep_policy::Decision::Allow => {
                let owner = stored.owner_id == caller.user();
                if self
                    .access(caller)
                    .await?
                    .sees_dataset(owner, stored.pipeline_id, stored.id)
                {
                    Ok(stored)
                } else {
                    Err(AppError::NotFound("data set"))
                }
            }
            lockstep_policy::Decision::Deny(lockstep_policy::Denial::NotVisible) => {
                Err(AppError::NotFound("data set"))
            }
            lockstep_policy::Decision::Deny(denial) => Err(denial.into()),
        }
    }

    async fn open_dataset(&self, stored: StoredDataset) -> Result<Opened, AppError> {
        let id = stored.id.to_string();
        let bytes = self
            .open_field(
                stored.organization_id,
                "dataset",
                &id,
                "key",
                &stored.key_ciphertext,
            )
            .await?;
        let key = Arc::new(DataKey::from_bytes(&bytes)?);
        let layout = match &stored.schema_ciphertext {
            Some(ct) => Some(open_json::<Layout>(&key, stored.id, "layout", 0, ct)?),
            None => None,
        };
        Ok(Opened {
            stored,
            key,
            layout,
        })
    }

    async fn dataset_view(
        &self,
        caller: &Caller,
        opened: &Opened,
    ) -> Result<DatasetView, AppError> {
        let stored = &opened.stored;
        let name = self
            .open_text(
                stored.organization_id,
                "dataset",
                &stored.id.to_string(),
                "name",
                &stored.name_ciphertext,
            )
            .await?;
        let mut conn = self.store.read().await?;
        let shared_with = datasets::shares(&mut conn, stored.id).await?;
        let settings = lockstep_storage::settings::get(&mut conn, stored.organization_id).await?;
        drop(conn);
        let retention = Duration::days(i64::from(settings.dataset_retention_days));
        let (fields, key) = match &opened.layout {
            Some(layout) => (
                records::schema_from_json(&layout.output)
                    .map(|s| s.fields().iter().map(|f| f.name().clone()).collect())
                    .unwrap_or_default(),
                layout.key.clone(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let owner = stored.owner_id == caller.user();
        let administrator = caller.member.role == lockstep_domain::Role::Administrator;
        Ok(DatasetView {
            id: stored.id,
            name,
            pipeline_id: stored.pipeline_id,
            owner: stored.owner_id,
            state: DatasetState::parse(&stored.state)?,
            message: stored.message.clone(),
            counts: DatasetCounts::from_json(&stored.counts),
            fields,
            key,
            shared_with,
            created_at: stored.created_at,
            touched_at: stored.touched_at,
            expires_at: stored.touched_at + retention,
            may_edit: (owner || administrator)
                && caller.member.role >= lockstep_domain::Role::Editor,
            may_manage: owner || administrator,
            bom: opened
                .layout
                .as_ref()
                .and_then(|l| l.bom.as_ref())
                .map(|b| BomInfo {
                    file_name: b.file_name.clone(),
                    against: b.against.clone(),
                    root: b.root.clone(),
                    profile: b.profile.clone(),
                    properties: b.properties.clone(),
                }),
        })
    }

    /// A new data set's name: the one given (checked), else the pipeline's and the time.
    async fn new_dataset_name(
        &self,
        caller: &Caller,
        pipeline: &lockstep_storage::pipelines::StoredPipeline,
        name: Option<&str>,
    ) -> Result<String, AppError> {
        Ok(match name.map(str::trim) {
            Some("") => {
                return Err(AppError::Invalid {
                    field: "name",
                    reason: "must not be empty".to_owned(),
                });
            }
            Some(n) if n.chars().count() > MAX_NAME => {
                return Err(AppError::Invalid {
                    field: "name",
                    reason: format!("must be at most {MAX_NAME} characters"),
                });
            }
            Some(n) if n.chars().any(char::is_control) => {
                return Err(AppError::Invalid {
                    field: "name",
                    reason: "must not hold control characters".to_owned(),
                });
            }
            Some(n) => n.to_owned(),
            None => {
                let pipeline_name = self.pipeline_name(pipeline).await?;
                let zone = self.schedule_time_zone(caller).await?;
                let local = crate::TimeZone::parse(&zone)
                    .map(|z| z.local(self.clock.now()))
                    .unwrap_or_else(|_| self.clock.now());
                format!(
                    "{pipeline_name} {:04}-{:02}-{:02} {:02}:{:02}",
                    local.year(),
                    u8::from(local.month()),
                    local.day(),
                    local.hour(),
                    local.minute()
                )
            }
        })
    }

    /// A new data set in state `pulling`, leased to the pull about to start (not stored yet).
    async fn new_dataset(
        &self,
        caller: &Caller,
        pipeline_id: PipelineId,
        name: &str,
        filter: Option<&str>,
    ) -> Result<(Opened, String), AppError> {
        let org = caller.organization();
        let now = self.clock.now();
        let id = DatasetId::from_uuid(Uuid::now_v7());
        let key = DataKey::generate(&mut rand::rng());
        let id_text = id.to_string();
        let key_ciphertext = self
            .seal_field(org, "dataset", &id_text, "key", &key.to_bytes())
            .await?;
        let name_ciphertext = self
            .seal_field(org, "dataset", &id_text, "name", name.as_bytes())
            .await?;
        let filter_ciphertext = match filter {
            Some(f) => Some(
                self.seal_field(org, "dataset", &id_text, "filter", f.as_bytes())
                    .await?,
            ),
            None => None,
        };
        let lease_owner = format!("pull-{}", Uuid::now_v7());
        let stored = StoredDataset {
            id,
            organization_id: org,
            pipeline_id,
            owner_id: caller.user(),
            key_ciphertext,
            name_ciphertext,
            filter_ciphertext,
            schema_ciphertext: None,
            state: DatasetState::Pulling.as_str().to_owned(),
            message: None,
            counts: DatasetCounts::default().to_json(),
            lease_owner: Some(lease_owner.clone()),
            lease_expires_at: Some(now + self.options.dataset_lease),
            created_at: now,
            touched_at: now,
            updated_at: now,
        };
        Ok((
            Opened {
                stored,
                key: Arc::new(key),
                layout: None,
            },
            lease_owner,
        ))
    }

    /// Stores a new data set and audits it.
    async fn insert_dataset(
        &self,
        tx: &mut lockstep_storage::Transaction,
        caller: &Caller,
        opened: &Opened,
        filtered: bool,
    ) -> Result<(), AppError> {
        datasets::insert(tx, &opened.stored).await?;
        let event = Event::new(
            caller.actor(),
            "dataset.pulled",
            "dataset",
            opened.stored.id,
        )
        .change(
            "pipeline_id",
            FieldChange::value(None::<String>, Some(opened.stored.pipeline_id)),
        )
        .change(
            "filter",
            FieldChange::value(None::<String>, filtered.then_some("set")),
        );
        self.record(tx, opened.stored.organization_id, event)
            .await?;
        Ok(())
    }

    /// Pulls a data set through a pipeline (any member): answers at once with the data set in
    /// state `pulling`; the records are read on a task of the hub's own. `filter` is a CEL
    /// expression over the source's fields, joined to the pipeline's own filter.
    pub async fn pull_dataset(
        self: &Arc<Self>,
        caller: &Caller,
        pipeline_id: PipelineId,
        name: Option<&str>,
        filter: Option<&str>,
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
        if self.moves_boms(&pipeline).await? {
            return Err(AppError::Refused(crate::pipelines::BOM_PIPELINE));
        }
        let name = self.new_dataset_name(caller, &pipeline, name).await?;
        let filter = filter.map(str::trim).filter(|f| !f.is_empty());
        let mut spec = self.open_spec(&pipeline).await?;
        if let Some(f) = filter {
            check_filter(&spec, f)?;
            spec.filter = Some(match &spec.filter {
                Some(own) => format!("({own}) && ({f})"),
                None => f.to_owned(),
            });
        }
        let (opened, lease_owner) = self.new_dataset(caller, pipeline_id, &name, filter).await?;
        let mut tx = self.store.write().await?;
        self.insert_dataset(&mut tx, caller, &opened, filter.is_some())
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
        let view = self.dataset_view(caller, &opened).await?;
        let hub = Arc::clone(self);
        let actor = caller.actor();
        tokio::spawn(async move {
            hub.run_pull(
                opened,
                PullJob::Pipeline(Box::new(spec)),
                lease_owner,
                actor,
            )
            .await;
        });
        Ok(view)
    }

    /// Pulls again (Editors and Administrators; owner or Administrator): the records are read
    /// anew and the edits whose keys still exist are applied again.
    pub async fn refresh_dataset(
        self: &Arc<Self>,
        caller: &Caller,
        id: DatasetId,
    ) -> Result<DatasetView, AppError> {
        let stored = self.dataset_for(caller, DatasetAction::Edit, id).await?;
        if DatasetState::parse(&stored.state)?.is_busy() {
            return Err(AppError::Refused(
                "the data set is busy: wait for its pull or submit",
            ));
        }
        let opened = self.open_dataset(stored).await?;
        if opened.layout.as_ref().is_some_and(|l| l.bom.is_some()) {
            return self.restart_bom_pull(caller, opened, None).await;
        }
        let pipeline = {
            let mut conn = self.store.read().await?;
            pipelines::get(&mut conn, caller.organization(), opened.stored.pipeline_id)
                .await?
                .ok_or(AppError::NotFound("pipeline"))?
        };
        let mut spec = self.open_spec(&pipeline).await?;
        if let Some(ct) = &opened.stored.filter_ciphertext {
            let f = self
                .open_text(
                    caller.organization(),
                    "dataset",
                    &id.to_string(),
                    "filter",
                    ct,
                )
                .await?;
            spec.filter = Some(match &spec.filter {
                Some(own) => format!("({own}) && ({f})"),
                None => f,
            });
        }
        self.restart_pull(caller, opened, PullJob::Pipeline(Box::new(spec)), None)
            .await
    }

    /// Pulls a data set again: its records go, it is `pulling` under a new lease, the pull is
    /// audited (with what it is compared with, when that is said) and runs on a task of its own.
    async fn restart_pull(
        self: &Arc<Self>,
        caller: &Caller,
        mut opened: Opened,
        job: PullJob,
        compared_with: Option<&str>,
    ) -> Result<DatasetView, AppError> {
        let id = opened.stored.id;
        let now = self.clock.now();
        let lease_owner = format!("pull-{}", Uuid::now_v7());
        opened.stored.state = DatasetState::Pulling.as_str().to_owned();
        opened.stored.message = None;
        opened.stored.lease_owner = Some(lease_owner.clone());
        opened.stored.lease_expires_at = Some(now + self.options.dataset_lease);
        opened.stored.touched_at = now;
        opened.stored.updated_at = now;
        opened.stored.counts = DatasetCounts::default().to_json();
        opened.stored.schema_ciphertext = None;
        opened.layout = None;
        let mut tx = self.store.write().await?;
        datasets::clear_chunks(&mut tx, id, ChunkKind::Records).await?;
        datasets::clear_chunks(&mut tx, id, ChunkKind::Destination).await?;
        datasets::update(&mut tx, &opened.stored).await?;
        let mut event = Event::new(caller.actor(), "dataset.pulled", "dataset", id)
            .change("refresh", FieldChange::value(None::<bool>, Some(true)));
        if let Some(against) = compared_with {
            event = event.change(
                "compared_with",
                FieldChange::value(None::<String>, Some(against)),
            );
        }
        self.record(&mut tx, caller.organization(), event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let view = self.dataset_view(caller, &opened).await?;
        let hub = Arc::clone(self);
        let actor = caller.actor();
        tokio::spawn(async move {
            hub.run_pull(opened, job, lease_owner, actor).await;
        });
        Ok(view)
    }

    /// The data sets the caller owns or that are shared with them; with `all`, every data set of
    /// the organization (Administrators).
    pub async fn list_datasets(
        &self,
        caller: &Caller,
        all: bool,
    ) -> Result<Vec<DatasetView>, AppError> {
        let org = caller.organization();
        if all {
            self.authorize_in_organization(caller, Action::ListAllDatasets)?;
        } else {
            self.authorize_in_organization(caller, Action::ListPipelines)?;
        }
        let mut conn = self.store.read().await?;
        let stored = if all {
            datasets::list_all(&mut conn, org).await?
        } else {
            datasets::list_visible(&mut conn, org, caller.user()).await?
        };
        drop(conn);
        let access = self.access(caller).await?;
        let mut views = Vec::with_capacity(stored.len());
        for s in stored {
            if !access.sees_dataset(s.owner_id == caller.user(), s.pipeline_id, s.id) {
                continue;
            }
            let opened = self.open_dataset(s).await?;
            views.push(self.dataset_view(caller, &opened).await?);
        }
        Ok(views)
    }

    /// One data set. Opening it counts as touching it (it does not expire while used); the first
    /// read of each session is audited.
    pub async fn get_dataset(
        &self,
        caller: &Caller,
        id: DatasetId,
    ) -> Result<DatasetView, AppError> {
        let stored = self.dataset_for(caller, DatasetAction::Read, id).await?;
        self.note_read(caller, &stored).await?;
        let opened = self.open_dataset(stored).await?;
        self.dataset_view(caller, &opened).await
    }

    /// Records the first read of a data set in a session (or by an API token), and touches it.
    async fn note_read(&self, caller: &Caller, stored: &StoredDataset) -> Result<(), AppError> {
        let reader = match caller.credential {
            crate::Credential::Session { id, .. } => id.to_string(),
            crate::Credential::ApiToken(id) => id.to_string(),
            crate::Credential::Support { session, .. } => session.to_string(),
        };
        let first = self
            .dataset_reads
            .lock()
            .map(|mut seen| {
                if seen.len() > 100_000 {
                    seen.clear();
                }
                seen.insert((stored.id, reader))
            })
            .unwrap_or(true);
        let now = self.clock.now();
        let mut tx = self.store.write().await?;
        datasets::touch(&mut tx, stored.id, now).await?;
        if first {
            let event = Event::new(caller.actor(), "dataset.read", "dataset", stored.id);
            self.record(&mut tx, stored.organization_id, event).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// A page of records, filtered by status and issues.
    pub async fn dataset_records(
        &self,
        caller: &Caller,
        id: DatasetId,
        query: RecordQuery,
    ) -> Result<RecordPage, AppError> {
        self.dataset_records_as(caller, id, query, None).await
    }

    /// A page of records as the caller sees them under the data policies, or (Administrators)
    /// as a member or a team would: records the row filters withhold are left out of the page
    /// (counted in `withheld`), redacted values are shown redacted.
    pub async fn dataset_records_as(
        &self,
        caller: &Caller,
        id: DatasetId,
        query: RecordQuery,
        view_as: Option<crate::ViewAs>,
    ) -> Result<RecordPage, AppError> {
        let stored = self.dataset_for(caller, DatasetAction::Read, id).await?;
        let viewer = self.dataset_viewer(caller, &stored, view_as).await?;
        self.note_read(caller, &stored).await?;
        let opened = self.open_dataset(stored).await?;
        let Some(layout) = opened.layout.as_ref() else {
            return Ok(RecordPage {
                records: Vec::new(),
                total: 0,
                withheld: 0,
            });
        };
        let policy = self
            .dataset_policy(caller.organization(), &viewer, &layout.spec)
            .await?;
        let limit = match query.limit {
            0 => 100,
            n => n.min(MAX_PAGE),
        };
        let mut conn = self.store.read().await?;
        let index = datasets::chunk_index(&mut conn, id, ChunkKind::Records).await?;
        drop(conn);
        let admits = |flags: u8| {
            query
                .status
                .is_none_or(|s| RecordStatus::from_flags(flags) == s)
                && query.issues.is_none_or(|f| f.admits(flags))
        };
        let mut total = 0u64;
        let mut wanted: Vec<(u64, usize)> = Vec::new();
        for chunk in &index {
            for (i, flags) in chunk.flags.iter().enumerate() {
                if admits(*flags) {
                    if total >= query.offset && (wanted.len() as u64) < limit {
                        wanted.push((chunk.chunk, i));
                    }
                    total += 1;
                }
            }
        }
        let mut records = Vec::with_capacity(wanted.len());
        let mut by_chunk: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        let mut destinations = HashMap::new();
        for (chunk, i) in wanted {
            by_chunk.entry(chunk).or_default().push(i);
        }
        let mut withheld = 0;
        let mut pending = Vec::new();
        for (chunk, positions) in by_chunk {
            let (index, payload) = self.load_chunk(&opened, chunk).await?;
            // Only the source columns the row filters read.
            let wanted_fields = policy.source_filter_fields();
            let source_columns: Vec<(usize, String)> = payload
                .source
                .schema()
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| wanted_fields.contains(f.name()))
                .map(|(j, f)| (j, f.name().clone()))
                .collect();
            let source_cells = records::Cells::new(&payload.source);
            for i in positions {
                let view = self
                    .record_view(&opened, &index, &payload, i, &mut destinations)
                    .await?;
                if policy.is_open() {
                    records.push(view);
                    continue;
                }
                let source =
                    (policy.filters_source() && i < payload.source.num_rows()).then(|| {
                        source_columns
                            .iter()
                            .map(|(j, name)| (name.clone(), source_cells.value(i, *j)))
                            .collect::<serde_json::Map<String, serde_json::Value>>()
                    });
                pending.push((view, source));
            }
        }
        // Row filters and redaction run off the threads that answer requests.
        if !pending.is_empty() {
            let policy = Arc::new(policy);
            let (shown, left_out) = crate::policies::off_request_threads(move || {
                let mut shown = Vec::with_capacity(pending.len());
                let mut left_out = 0u64;
                for (mut view, source) in pending {
                    if policy.apply(&mut view, source.as_ref()) {
                        shown.push(view);
                    } else {
                        left_out += 1;
                    }
                }
                (shown, left_out)
            })
            .await?;
            records.extend(shown);
            withheld = left_out;
        }
        Ok(RecordPage {
            records,
            total,
            withheld,
        })
    }

    /// The viewer of a data set's records: the caller, or with `view_as` (Administrators) a
    /// member or team, who sees nothing of a data set they could not open: its owner, the
    /// members it is shared with and Administrators can (a team previews the rules).
    pub(crate) async fn dataset_viewer(
        &self,
        caller: &Caller,
        stored: &StoredDataset,
        view_as: Option<crate::ViewAs>,
    ) -> Result<crate::Viewer, AppError> {
        let viewer = self.viewer(caller, view_as).await?;
        if viewer.preview {
            let owner = viewer.user == Some(stored.owner_id);
            if let Some(user) = viewer.user
                && !owner
                && !viewer.administrator
            {
                let mut conn = self.store.read().await?;
                let shared = datasets::shares(&mut conn, stored.id)
                    .await?
                    .contains(&user);
                drop(conn);
                if !shared {
                    return Err(AppError::NotFound("data set"));
                }
            }
            let access = self.access_for(caller.organization(), &viewer).await?;
            if !access.sees_dataset(owner, stored.pipeline_id, stored.id) {
                return Err(AppError::NotFound("data set"));
            }
        }
        Ok(viewer)
    }

    async fn load_chunk(
        &self,
        opened: &Opened,
        chunk: u64,
    ) -> Result<(ChunkIndex, RecordsChunk), AppError> {
        let mut conn = self.store.read().await?;
        let stored = datasets::chunk(&mut conn, opened.stored.id, ChunkKind::Records, chunk)
            .await?
            .ok_or(AppError::Store(StoreError::Corrupt("data set chunk")))?;
        drop(conn);
        let key = Arc::clone(&opened.key);
        let id = opened.stored.id;
        let payload = tokio::task::spawn_blocking(move || {
            open_records(&key, id, chunk, &stored.payload).map(|p| (stored.index, p))
        })
        .await
        .map_err(|_| AppError::Refused("opening a chunk stopped unexpectedly"))??;
        Ok(payload)
    }

    async fn destination_row(&self, opened: &Opened, row: u64) -> Result<Option<Row>, AppError> {
        self.destination_row_cached(opened, row, &mut HashMap::new())
            .await
    }

    /// The destination record at `row`, opening each destination chunk once per `cache`.
    async fn destination_row_cached(
        &self,
        opened: &Opened,
        row: u64,
        cache: &mut HashMap<u64, Option<(u64, DestinationChunk)>>,
    ) -> Result<Option<Row>, AppError> {
        let chunk = row / CHUNK_ROWS as u64;
        let found = |opened_chunk: &Option<(u64, DestinationChunk)>| {
            opened_chunk.as_ref().and_then(|(first, payload)| {
                let at = usize::try_from(row - first).ok()?;
                (at < payload.rows.num_rows()).then(|| records::Cells::new(&payload.rows).row(at))
            })
        };
        if let Some(opened_chunk) = cache.get(&chunk) {
            return Ok(found(opened_chunk));
        }
        let opened_chunk = self.open_destination_chunk(opened, chunk).await?;
        let row = found(&opened_chunk);
        cache.insert(chunk, opened_chunk);
        Ok(row)
    }

    async fn open_destination_chunk(
        &self,
        opened: &Opened,
        chunk: u64,
    ) -> Result<Option<(u64, DestinationChunk)>, AppError> {
        let mut conn = self.store.read().await?;
        let Some(stored) =
            datasets::chunk(&mut conn, opened.stored.id, ChunkKind::Destination, chunk).await?
        else {
            return Ok(None);
        };
        drop(conn);
        let key = Arc::clone(&opened.key);
        let id = opened.stored.id;
        let payload =
            tokio::task::spawn_blocking(move || open_destination(&key, id, chunk, &stored.payload))
                .await
                .map_err(|_| AppError::Refused("opening a chunk stopped unexpectedly"))??;
        Ok(Some((stored.index.first_row, payload)))
    }

    async fn record_view(
        &self,
        opened: &Opened,
        index: &ChunkIndex,
        payload: &RecordsChunk,
        i: usize,
        destinations: &mut HashMap<u64, Option<(u64, DestinationChunk)>>,
    ) -> Result<RecordView, AppError> {
        let layout = opened.layout()?;
        // The chunk's records are in the layout's output schema (nullable): its names, in order.
        let schema = payload.rows.schema();
        let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
        let flags = index.flags.get(i).copied().unwrap_or_default();
        let position = u32::try_from(i).unwrap_or(u32::MAX);
        let status = RecordStatus::from_flags(flags);
        let dest = match payload.notes.destination.get(&position) {
            Some(dest_row)
                if matches!(status, RecordStatus::Update | RecordStatus::DestinationOnly) =>
            {
                self.destination_row_cached(opened, *dest_row, destinations)
                    .await?
            }
            _ => None,
        };
        // A record only the destination has shows the destination's values.
        let row = match (status, &dest) {
            (RecordStatus::DestinationOnly, Some(dest)) => dest.clone(),
            _ if i < payload.rows.num_rows() => records::Cells::new(&payload.rows).row(i),
            _ => Row::new(),
        };
        let mut values = serde_json::Map::new();
        for (name, v) in names.iter().zip(&row) {
            values.insert((*name).clone(), v.clone());
        }
        let mut key = serde_json::Map::new();
        for k in &layout.key {
            key.insert(
                k.clone(),
                values.get(k).cloned().unwrap_or(serde_json::Value::Null),
            );
        }
        let mut changes = Vec::new();
        if status == RecordStatus::Update
            && let Some(dest) = &dest
        {
            for (j, name) in names.iter().enumerate() {
                if !layout.compared.get(j).copied().unwrap_or(false) {
                    continue;
                }
                let (Some(new), Some(old)) = (row.get(j), dest.get(j)) else {
                    continue;
                };
                // A bill of materials that does not say (a unit, say) asks for no change.
                if layout.bom.is_some() && new.is_null() {
                    continue;
                }
                if !records::same_value(new, old) {
                    changes.push(Change {
                        field: (*name).clone(),
                        destination: old.clone(),
                        value: new.clone(),
                    });
                }
            }
        }
        let issues = payload
            .notes
            .issues
            .get(&position)
            .map(|list| {
                list.iter()
                    .map(|i| RecordIssue {
                        field: i.field.clone(),
                        level: i.level,
                        message: i.message.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(RecordView {
            row: index.first_row + i as u64,
            key,
            values,
            status,
            changes,
            issues,
            process: flags & PROCESS != 0,
            outcome: RecordOutcome::from_flags(flags),
            outcome_message: payload.notes.failures.get(&position).cloned(),
        })
    }

    /// Edits a record's values (Editors and Administrators; owner or Administrator): each field
    /// is checked against its type, the pipeline's rules run again on the record and its status
    /// is recomputed. Fields computed by a transform or an export rule cannot be edited.
    pub async fn update_dataset_record(
        &self,
        caller: &Caller,
        id: DatasetId,
        row: u64,
        values: serde_json::Map<String, serde_json::Value>,
    ) -> Result<RecordView, AppError> {
        let stored = self.dataset_for(caller, DatasetAction::Edit, id).await?;
        let state = DatasetState::parse(&stored.state)?;
        if state.is_busy() {
            return Err(AppError::Refused(
                "the data set is busy: wait for its pull or submit",
            ));
        }
        let opened = self.open_dataset(stored).await?;
        let layout = opened.layout()?.clone();
        if layout.bom.is_some() {
            return Err(AppError::Refused(
                "a bill of materials is corrected in its file: upload the file again, or untick \
                 the record",
            ));
        }
        let output = records::schema_from_json(&layout.output)
            .ok_or(AppError::Store(StoreError::Corrupt("data set layout")))?;
        let source_schema = records::schema_from_json(&layout.source)
            .ok_or(AppError::Store(StoreError::Corrupt("data set layout")))?;
        let mut plan = Plan::for_review(&layout.spec, Arc::clone(&source_schema)).map_err(|e| {
            AppError::InvalidConfig {
                field: e.field,
                reason: e.reason,
            }
        })?;
        let viewer = self.viewer(caller, None).await?;
        let policy = self
            .dataset_policy(caller.organization(), &viewer, &layout.spec)
            .await?;
        if layout.spec.uses_scramble() {
            plan = plan.with_scrambler(self.scrambler(opened.stored.organization_id).await?);
        }
        // Check every field before changing anything.
        let mut source_edits: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        for (name, value) in &values {
            if policy.redacts(name) {
                return Err(AppError::InvalidConfig {
                    field: format!("values.{name}"),
                    reason: "is redacted for you by a data policy: it cannot be edited".to_owned(),
                });
            }
            let Some(field) = output.fields().iter().find(|f| f.name() == name) else {
                return Err(AppError::InvalidConfig {
                    field: format!("values.{name}"),
                    reason: "is not a field of this data set".to_owned(),
                });
            };
            let Some(source) = plan.source_of(name) else {
                return Err(AppError::InvalidConfig {
                    field: format!("values.{name}"),
                    reason: "is computed by the pipeline (a transform or an export rule): edit \
                             the fields it is computed from"
                        .to_owned(),
                });
            };
            let Some(source_field) = source_schema.fields().iter().find(|f| f.name() == source)
            else {
                return Err(AppError::InvalidConfig {
                    field: format!("values.{name}"),
                    reason: "is computed by the pipeline: it cannot be edited".to_owned(),
                });
            };
            let bad_type = |e: records::ValueError| AppError::InvalidConfig {
                field: format!("values.{name}"),
                reason: format!("must be a value of type {}", e.expected),
            };
            records::normalize(field, value).map_err(bad_type)?;
            let normalized = records::normalize(source_field, value).map_err(bad_type)?;
            source_edits.insert(source.to_owned(), normalized);
        }
        if source_edits.is_empty() {
            return Err(AppError::Invalid {
                field: "values",
                reason: "name at least one field to change".to_owned(),
            });
        }
        let chunk_no = row / CHUNK_ROWS as u64;
        let (mut index, mut payload) = match self.load_chunk(&opened, chunk_no).await {
            Ok(found) => found,
            Err(AppError::Store(StoreError::Corrupt(_))) => {
                return Err(AppError::NotFound("record"));
            }
            Err(e) => return Err(e),
        };
        let i = usize::try_from(row - index.first_row).unwrap_or(usize::MAX);
        let flags = *index.flags.get(i).ok_or(AppError::NotFound("record"))?;
        if RecordStatus::from_flags(flags) == RecordStatus::DestinationOnly {
            return Err(AppError::Invalid {
                field: "row",
                reason: "is a record only the destination has: it is shown, never written"
                    .to_owned(),
            });
        }
        let source_names: Vec<&String> = source_schema.fields().iter().map(|f| f.name()).collect();
        let mut source_row = if i < payload.source.num_rows() {
            records::Cells::new(&payload.source).row(i)
        } else {
            Row::new()
        };
        source_row.resize(source_names.len(), serde_json::Value::Null);
        if policy.filters_source() {
            let record: serde_json::Map<String, serde_json::Value> = source_names
                .iter()
                .map(|n| (*n).clone())
                .zip(source_row.iter().cloned())
                .collect();
            let mut probe = self
                .record_view(&opened, &index, &payload, i, &mut HashMap::new())
                .await?;
            if !policy.apply(&mut probe, Some(&record)) {
                return Err(AppError::NotFound("record"));
            }
        }
        for (name, value) in &source_edits {
            if let Some(j) = source_names.iter().position(|n| *n == name)
                && let Some(slot) = source_row.get_mut(j)
            {
                *slot = value.clone();
            }
        }
        // The rules run on the blocking pool, never on the threads that answer requests.
        let (one, new_row, issues, one_source) = {
            let schema = Arc::clone(&source_schema);
            let stored_source = payload.source.schema();
            tokio::task::spawn_blocking(move || {
                let (one, issues) = recompute(&plan, &schema, &source_row)?;
                let new_row = records::Cells::new(&one).row(0);
                let one_source = records::rows_batch(&stored_source, &[&source_row])
                    .map_err(|_| AppError::Store(StoreError::Corrupt("data set chunk")))?;
                Ok::<_, AppError>((one, new_row, issues, one_source))
            })
            .await
            .map_err(|_| AppError::Refused("applying the rules stopped unexpectedly"))??
        };
        let position = u32::try_from(i).unwrap_or(u32::MAX);
        // The status against the destination record it was compared with (or none).
        let status = match payload.notes.destination.get(&position) {
            Some(dest_row) => match self.destination_row(&opened, *dest_row).await? {
                Some(dest)
                    if content_hash(&dest, &layout.compared)
                        == content_hash(&new_row, &layout.compared) =>
                {
                    RecordStatus::Unchanged
                }
                Some(_) => RecordStatus::Update,
                None => RecordStatus::Create,
            },
            None => RecordStatus::Create,
        };
        let old_row = records::Cells::new(&payload.rows).row(i);
        let old_key: Vec<serde_json::Value> = key_values(&output, &layout.key, Some(&old_row));
        payload.rows = records::replace_row(&payload.rows, i, &one).map_err(batch_error)?;
        payload.source =
            records::replace_row(&payload.source, i, &one_source).map_err(batch_error)?;
        if issues.is_empty() {
            payload.notes.issues.remove(&position);
        } else {
            payload.notes.issues.insert(position, issues.clone());
        }
        payload.notes.failures.remove(&position);
        // The tick stays as the user left it, unless there is nothing left to write.
        let ticked = flags & PROCESS != 0 && status != RecordStatus::Unchanged;
        let new_flags = flags_for(status, ticked, &issues);
        if let Some(f) = index.flags.get_mut(i) {
            *f = new_flags;
        }
        // Kept by key, so a refresh applies it again.
        let edit_key = key_hash(
            &key_hasher(&opened.key)?,
            &old_key.iter().collect::<Vec<_>>(),
        );
        let mut conn = self.store.read().await?;
        let mut edit: StoredEdit = match datasets::edits(&mut conn, id)
            .await?
            .into_iter()
            .find(|(k, _)| k.as_slice() == edit_key.to_be_bytes())
        {
            Some((_, ct)) => open_json(&opened.key, id, "edit", 0, &ct)?,
            None => StoredEdit::default(),
        };
        drop(conn);
        edit.values.extend(source_edits);
        let now = self.clock.now();
        let sealed_chunk = seal_records(&opened.key, id, chunk_no, &payload)?;
        let sealed_edit = seal_json(&opened.key, id, "edit", 0, &edit)?;
        let mut tx = self.store.write().await?;
        datasets::put_chunk(
            &mut tx,
            opened.stored.organization_id,
            id,
            ChunkKind::Records,
            &StoredChunk {
                index: index.clone(),
                payload: sealed_chunk,
            },
        )
        .await?;
        datasets::put_edit(
            &mut tx,
            opened.stored.organization_id,
            id,
            &edit_key.to_be_bytes(),
            &sealed_edit,
            now,
        )
        .await?;
        let mut stored = opened.stored.clone();
        self.refresh_counts(&mut tx, &mut stored, now).await?;
        let mut event = Event::new(caller.actor(), "dataset.record_updated", "dataset", id)
            .change("row", FieldChange::value(None::<u64>, Some(row)));
        // Which fields changed, never their values.
        let fields: Vec<&String> = values.keys().collect();
        event = event.change(
            "fields",
            FieldChange::value(
                None::<String>,
                Some(
                    fields
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            ),
        );
        self.record(&mut tx, stored.organization_id, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let opened = Opened { stored, ..opened };
        let mut view = self
            .record_view(&opened, &index, &payload, i, &mut HashMap::new())
            .await?;
        policy.redact_view(&mut view);
        Ok(view)
    }

    /// Recounts the records from their flags and stores the counts; marks the data set touched.
    async fn refresh_counts(
        &self,
        tx: &mut lockstep_storage::Transaction,
        stored: &mut StoredDataset,
        now: OffsetDateTime,
    ) -> Result<DatasetCounts, AppError> {
        let index = datasets::chunk_index(tx, stored.id, ChunkKind::Records).await?;
        let before = DatasetCounts::from_json(&stored.counts);
        let counts = DatasetCounts::from_index(&index, before.read, before.skipped);
        stored.counts = counts.to_json();
        stored.touched_at = now;
        stored.updated_at = now;
        datasets::update(tx, stored).await?;
        Ok(counts)
    }

    /// Ticks or unticks records (Editors and Administrators; owner or Administrator): by row, or
    /// every record of a status. Answers the new counts.
    pub async fn set_dataset_process(
        &self,
        caller: &Caller,
        id: DatasetId,
        selection: ProcessSelection,
        process: bool,
    ) -> Result<DatasetCounts, AppError> {
        let stored = self.dataset_for(caller, DatasetAction::Edit, id).await?;
        if DatasetState::parse(&stored.state)?.is_busy() {
            return Err(AppError::Refused(
                "the data set is busy: wait for its pull or submit",
            ));
        }
        let opened = self.open_dataset(stored.clone()).await?;
        // A bill of materials' line only the destination has is unlinked when ticked.
        let bom = opened.layout.as_ref().is_some_and(|l| l.bom.is_some());
        let selection = match selection {
            ProcessSelection::Subtrees(rows) if bom => {
                ProcessSelection::Rows(self.with_descendants(&opened, &rows).await?)
            }
            ProcessSelection::Subtrees(_) => {
                return Err(AppError::Refused(
                    "only a bill of materials has rows below rows",
                ));
            }
            other => other,
        };
        let mut conn = self.store.read().await?;
        let mut index = datasets::chunk_index(&mut conn, id, ChunkKind::Records).await?;
        drop(conn);
        let total: u64 = index.iter().map(|c| c.row_count).sum();
        let rows: HashSet<u64> = match &selection {
            ProcessSelection::Subtrees(_) => HashSet::new(),
            ProcessSelection::Rows(rows) => {
                if rows.is_empty() {
                    return Err(AppError::Invalid {
                        field: "rows",
                        reason: "name at least one row".to_owned(),
                    });
                }
                if let Some(bad) = rows.iter().find(|r| **r >= total) {
                    return Err(AppError::Invalid {
                        field: "rows",
                        reason: format!("row {bad} is not in the data set ({total} records)"),
                    });
                }
                rows.iter().copied().collect()
            }
            ProcessSelection::Status(_) => HashSet::new(),
        };
        let mut changed_chunks = Vec::new();
        let mut refused = None;
        for chunk in &mut index {
            let mut changed = false;
            for (i, flags) in chunk.flags.iter_mut().enumerate() {
                let row = chunk.first_row + i as u64;
                let selected = match &selection {
                    ProcessSelection::Rows(_) | ProcessSelection::Subtrees(_) => {
                        rows.contains(&row)
                    }
                    ProcessSelection::Status(s) => RecordStatus::from_flags(*flags) == *s,
                };
                if !selected {
                    continue;
                }
                if process
                    && !bom
                    && RecordStatus::from_flags(*flags) == RecordStatus::DestinationOnly
                {
                    if matches!(selection, ProcessSelection::Rows(_)) {
                        refused = Some(row);
                    }
                    continue;
                }
                let new = if process {
                    *flags | PROCESS
                } else {
                    *flags & !PROCESS
                };
                if new != *flags {
                    *flags = new;
                    changed = true;
                }
            }
            if changed {
                changed_chunks.push((chunk.chunk, chunk.flags.clone()));
            }
        }
        if let Some(row) = refused {
            return Err(AppError::Invalid {
                field: "rows",
                reason: format!(
                    "row {row} is a record only the destination has: it is never written, so it \
                     cannot be ticked"
                ),
            });
        }
        let now = self.clock.now();
        let mut tx = self.store.write().await?;
        for (chunk, flags) in &changed_chunks {
            datasets::set_flags(&mut tx, id, ChunkKind::Records, *chunk, flags).await?;
        }
        let mut stored = stored;
        let counts = self.refresh_counts(&mut tx, &mut stored, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(counts)
    }

    /// Writes the ticked `create` and `update` records to the destination (Editors and
    /// Administrators; owner or Administrator), by key, on a task of the hub's own; nothing is
    /// ever deleted in the destination. Refused, naming up to 20 rows, while a ticked record has
    /// an error.
    pub async fn submit_dataset(
        self: &Arc<Self>,
        caller: &Caller,
        id: DatasetId,
    ) -> Result<DatasetView, AppError> {
        let stored = self.dataset_for(caller, DatasetAction::Submit, id).await?;
        let state = DatasetState::parse(&stored.state)?;
        if state.is_busy() {
            return Err(AppError::Refused(
                "the data set is busy: wait for its pull or submit",
            ));
        }
        if state == DatasetState::Failed {
            return Err(AppError::Refused(
                "the pull failed: pull the data set again first",
            ));
        }
        let mut opened = self.open_dataset(stored).await?;
        opened.layout()?;
        let mut conn = self.store.read().await?;
        let index = datasets::chunk_index(&mut conn, id, ChunkKind::Records).await?;
        drop(conn);
        // Refuse while a ticked record has an error, naming the first ones.
        let mut blocked: Vec<(u64, usize)> = Vec::new();
        let mut blocked_total = 0u64;
        let mut ticked = 0u64;
        for chunk in &index {
            for (i, flags) in chunk.flags.iter().enumerate() {
                if flags & PROCESS != 0 {
                    ticked += 1;
                    if flags & HAS_ERROR != 0 {
                        blocked_total += 1;
                        if blocked.len() < BLOCKED_ROWS {
                            blocked.push((chunk.chunk, i));
                        }
                    }
                }
            }
        }
        if blocked_total > 0 {
            let mut rows = Vec::new();
            let mut by_chunk: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
            for (c, i) in blocked {
                by_chunk.entry(c).or_default().push(i);
            }
            for (c, positions) in by_chunk {
                let (index, payload) = self.load_chunk(&opened, c).await?;
                for i in positions {
                    let position = u32::try_from(i).unwrap_or(u32::MAX);
                    let issues = payload
                        .notes
                        .issues
                        .get(&position)
                        .map(|l| {
                            l.iter()
                                .filter(|x| x.level == Level::Error)
                                .map(|x| format!("{}: {}", x.field, x.message))
                                .collect()
                        })
                        .unwrap_or_default();
                    rows.push(BlockedRow {
                        row: index.first_row + i as u64,
                        issues,
                    });
                }
            }
            return Err(AppError::Blocked {
                reason: format!(
                    "{blocked_total} ticked record(s) have errors: fix or untick them first \
                     (nothing was written)"
                ),
                rows,
            });
        }
        if ticked == 0 {
            return Err(AppError::Refused("no record is ticked: nothing to submit"));
        }
        let now = self.clock.now();
        let lease_owner = format!("submit-{}", Uuid::now_v7());
        opened.stored.state = DatasetState::Submitting.as_str().to_owned();
        opened.stored.message = None;
        opened.stored.lease_owner = Some(lease_owner.clone());
        opened.stored.lease_expires_at = Some(now + self.options.dataset_lease);
        opened.stored.touched_at = now;
        opened.stored.updated_at = now;
        let mut tx = self.store.write().await?;
        datasets::update(&mut tx, &opened.stored).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let view = self.dataset_view(caller, &opened).await?;
        let hub = Arc::clone(self);
        let actor = caller.actor();
        tokio::spawn(async move {
            hub.run_submit(opened, lease_owner, actor).await;
        });
        Ok(view)
    }

    /// Shares a data set with a member of the organization to read (owner or Administrator).
    pub async fn share_dataset(
        &self,
        caller: &Caller,
        id: DatasetId,
        user: UserId,
    ) -> Result<DatasetView, AppError> {
        let stored = self.dataset_for(caller, DatasetAction::Manage, id).await?;
        self.check_member(caller, user, "user_id").await?;
        if user == stored.owner_id {
            return Err(AppError::Invalid {
                field: "user_id",
                reason: "is the data set's owner".to_owned(),
            });
        }
        let now = self.clock.now();
        let mut tx = self.store.write().await?;
        let added = datasets::add_share(&mut tx, caller.organization(), id, user, now).await?;
        if added {
            let event = Event::new(caller.actor(), "dataset.shared", "dataset", id)
                .change("user_id", FieldChange::value(None::<String>, Some(user)));
            self.record(&mut tx, caller.organization(), event).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        let opened = self.open_dataset(stored).await?;
        self.dataset_view(caller, &opened).await
    }

    /// Stops sharing a data set with a member (owner or Administrator).
    pub async fn unshare_dataset(
        &self,
        caller: &Caller,
        id: DatasetId,
        user: UserId,
    ) -> Result<DatasetView, AppError> {
        let stored = self.dataset_for(caller, DatasetAction::Manage, id).await?;
        let mut tx = self.store.write().await?;
        let removed = datasets::remove_share(&mut tx, id, user).await?;
        if !removed {
            return Err(AppError::NotFound("share"));
        }
        let event = Event::new(caller.actor(), "dataset.unshared", "dataset", id)
            .change("user_id", FieldChange::value(Some(user), None::<String>));
        self.record(&mut tx, caller.organization(), event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let opened = self.open_dataset(stored).await?;
        self.dataset_view(caller, &opened).await
    }

    /// Hands a data set to another member (owner or Administrator); the previous owner keeps no
    /// access unless it is shared with them.
    pub async fn transfer_dataset(
        &self,
        caller: &Caller,
        id: DatasetId,
        user: UserId,
    ) -> Result<DatasetView, AppError> {
        let mut stored = self.dataset_for(caller, DatasetAction::Manage, id).await?;
        if user == stored.owner_id {
            return Err(AppError::Invalid {
                field: "user_id",
                reason: "already owns the data set".to_owned(),
            });
        }
        self.check_member(caller, user, "user_id").await?;
        let before = stored.owner_id;
        let now = self.clock.now();
        stored.owner_id = user;
        stored.updated_at = now;
        let mut tx = self.store.write().await?;
        datasets::update(&mut tx, &stored).await?;
        // The new owner needs no share of their own.
        datasets::remove_share(&mut tx, id, user).await?;
        let event = Event::new(caller.actor(), "dataset.transferred", "dataset", id)
            .change("owner_id", FieldChange::value(Some(before), Some(user)));
        self.record(&mut tx, caller.organization(), event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let opened = self.open_dataset(stored).await?;
        self.dataset_view(caller, &opened).await
    }

    /// An active member of the caller's organization, or a field error.
    async fn check_member(
        &self,
        caller: &Caller,
        user: UserId,
        field: &'static str,
    ) -> Result<(), AppError> {
        let mut conn = self.store.read().await?;
        let found = users::get(&mut conn, caller.organization(), user).await?;
        match found {
            Some(u) if u.status == users::UserStatus::Active => Ok(()),
            Some(_) => Err(AppError::Invalid {
                field,
                reason: "is a deactivated member".to_owned(),
            }),
            None => Err(AppError::Invalid {
                field,
                reason: "is not a member of this organization".to_owned(),
            }),
        }
    }

    /// Deletes a data set at once (owner or Administrator): its key goes with it.
    pub async fn delete_dataset(&self, caller: &Caller, id: DatasetId) -> Result<(), AppError> {
        let stored = self.dataset_for(caller, DatasetAction::Manage, id).await?;
        if DatasetState::parse(&stored.state)? == DatasetState::Submitting {
            return Err(AppError::Refused(
                "the data set is being submitted: wait for the end",
            ));
        }
        let mut tx = self.store.write().await?;
        datasets::delete(&mut tx, caller.organization(), id).await?;
        let event = Event::new(caller.actor(), "dataset.deleted", "dataset", id);
        self.record(&mut tx, caller.organization(), event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(dataset = %id, "data set deleted");
        Ok(())
    }

    /// Ends pulls and submits whose process died (their lease ran out) and deletes stale data
    /// sets: untouched for the organization's retention, or whose owner has not signed in for
    /// as long. Answers how many data sets were deleted.
    pub async fn sweep_datasets(&self) -> Result<u64, AppError> {
        let now = self.clock.now();
        let mut conn = self.store.read().await?;
        let all = datasets::staleness(&mut conn).await?;
        drop(conn);
        let mut deleted = 0;
        for d in all {
            let state = DatasetState::parse(&d.state)?;
            if state.is_busy() && d.lease_expires_at.is_some_and(|t| t < now) {
                self.recover_dataset(&d, state, now).await?;
                continue;
            }
            let retention = Duration::days(i64::from(d.retention_days));
            let untouched = d.touched_at + retention <= now;
            let owner_away = d.owner_seen_at + retention <= now;
            if !(untouched || owner_away) || state.is_busy() {
                continue;
            }
            if self.expire_dataset(&d, untouched).await? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    async fn recover_dataset(
        &self,
        d: &datasets::Staleness,
        state: DatasetState,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        let mut tx = self.store.write().await?;
        let Some(mut stored) = datasets::get(&mut tx, d.organization_id, d.id).await? else {
            return Ok(());
        };
        if stored.lease_expires_at.is_none_or(|t| t >= now) {
            return Ok(());
        }
        stored.lease_owner = None;
        stored.lease_expires_at = None;
        stored.updated_at = now;
        if state == DatasetState::Pulling {
            datasets::clear_chunks(&mut tx, d.id, ChunkKind::Records).await?;
            datasets::clear_chunks(&mut tx, d.id, ChunkKind::Destination).await?;
            stored.state = DatasetState::Failed.as_str().to_owned();
            stored.schema_ciphertext = None;
            stored.counts = DatasetCounts::default().to_json();
            stored.message = Some(
                "the pull stopped with the hub before it finished; nothing of it was kept: pull \
                 again"
                    .to_owned(),
            );
        } else {
            stored.state = DatasetState::Ready.as_str().to_owned();
            stored.message = Some(
                "the submit stopped with the hub before it committed; nothing was written: \
                 submit again"
                    .to_owned(),
            );
        }
        datasets::update(&mut tx, &stored).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::warn!(dataset = %d.id, state = state.as_str(), "an interrupted data set was recovered");
        Ok(())
    }

    async fn expire_dataset(
        &self,
        d: &datasets::Staleness,
        untouched: bool,
    ) -> Result<bool, AppError> {
        let mut tx = self.store.write().await?;
        if !datasets::delete(&mut tx, d.organization_id, d.id).await? {
            return Ok(false);
        }
        let event = Event::new(Actor::Scheduler, "dataset.expired", "dataset", d.id).change(
            "reason",
            FieldChange::value(
                None::<String>,
                Some(if untouched {
                    "untouched"
                } else {
                    "owner_inactive"
                }),
            ),
        );
        self.record(&mut tx, d.organization_id, event).await?;
        let notify = users::dataset_removal_notice(&mut tx, d.owner_id).await?;
        let owner = users::get(&mut tx, d.organization_id, d.owner_id).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(dataset = %d.id, "stale data set deleted");
        if notify && let Some(owner) = owner {
            let to = self
                .open_text(
                    d.organization_id,
                    "user",
                    &owner.id.to_string(),
                    "email",
                    &owner.email_ciphertext,
                )
                .await?;
            let days = d.retention_days;
            let message = lockstep_mail::Message {
                to,
                subject: "A data set of yours was removed".to_owned(),
                body: format!(
                    "One of your data sets was removed because {} for {days} days, as your \
                     organization's data retention requires. Nothing of it can be read any more.\n\n\
                     Pull it again from its pipeline whenever you need it: {}/datasets\n\n\
                     You can turn these notices off in your account settings.\n",
                    if untouched {
                        "nobody opened it"
                    } else {
                        "you had not signed in"
                    },
                    self.options.public_url.trim_end_matches('/'),
                ),
            };
            self.send_mail(message).await;
        }
        Ok(true)
    }

    /// The member's own setting: a mail when one of their data sets is removed.
    pub async fn set_dataset_removal_notice(
        &self,
        caller: &Caller,
        on: bool,
    ) -> Result<(), AppError> {
        self.authorize(
            caller,
            Action::ManageOwnCredentials,
            &lockstep_policy::Resource::owned_by(caller.organization(), caller.user()),
        )?;
        let mut tx = self.store.write().await?;
        users::set_dataset_removal_notice(&mut tx, caller.user(), on).await?;
        let event = Event::new(caller.actor(), "user.updated", "user", caller.user()).change(
            "dataset_removal_notice",
            FieldChange::value(None::<bool>, Some(on)),
        );
        self.record(&mut tx, caller.organization(), event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// The member's own setting (on by default).
    pub async fn dataset_removal_notice(&self, caller: &Caller) -> Result<bool, AppError> {
        let mut conn = self.store.read().await?;
        Ok(users::dataset_removal_notice(&mut conn, caller.user()).await?)
    }

    /// Deletes stale data sets, and organizations whose requested deletion is due, every `every`
    /// until `shutdown` (while unsealed).
    pub async fn sweep_datasets_every(
        self: Arc<Self>,
        every: std::time::Duration,
        shutdown: Arc<AtomicBool>,
    ) {
        while !shutdown.load(Ordering::Relaxed) {
            if !self.is_sealed() {
                match self.sweep_datasets().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "stale data sets deleted"),
                    Err(err) => tracing::warn!(error = %err, "the data set clean-up failed"),
                }
                // Organizations whose Administrators asked for their deletion, once it is due.
                if let Err(err) = self.delete_due_organizations().await {
                    tracing::warn!(error = %err, "due organization deletions failed");
                }
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// The key values of a row (null where a key field is missing).
fn key_values(schema: &SchemaRef, key: &[String], row: Option<&Row>) -> Vec<serde_json::Value> {
    key.iter()
        .map(|k| {
            schema
                .fields()
                .iter()
                .position(|f| f.name() == k)
                .and_then(|j| row.and_then(|r| r.get(j)).cloned())
                .unwrap_or(serde_json::Value::Null)
        })
        .collect()
}

/// Checks a data set's filter on its own, so its error names its position in it.
fn check_filter(spec: &PipelineSpec, filter: &str) -> Result<(), AppError> {
    let mut alone = spec.clone();
    alone.filter = Some(filter.to_owned());
    alone.rules.clear();
    alone.mappings.clear();
    match alone.validate() {
        Ok(()) => Ok(()),
        Err(e) if e.field == "filter" => Err(AppError::InvalidConfig {
            field: "filter".to_owned(),
            reason: e.reason,
        }),
        Err(_) => Ok(()),
    }
}

/// One source record through the review plan: its values (a batch of one record) and issues.
fn recompute(
    plan: &Plan,
    source_schema: &SchemaRef,
    source_row: &Row,
) -> Result<(RecordBatch, Vec<StoredIssue>), AppError> {
    let batch =
        records::rows_batch(source_schema, &[source_row]).map_err(|e| AppError::InvalidConfig {
            field: format!("values.{}", e.field),
            reason: format!("must be a value of type {}", e.expected),
        })?;
    let applied = plan.apply(&batch).map_err(connector_error)?;
    if applied.batch.num_rows() != 1 {
        return Err(AppError::InvalidConfig {
            field: "values".to_owned(),
            reason: "with these values the pipeline's filter leaves the record out".to_owned(),
        });
    }
    let issues = applied
        .issues
        .into_iter()
        .map(|i| StoredIssue {
            field: i.field,
            level: i.level,
            message: i.message,
        })
        .collect();
    Ok((applied.batch, issues))
}

// ---------------------------------------------------------------------------------------------
// Pull and submit, on tasks of their own

/// Keeps a pull's or submit's lease alive and its counts stored; set `lost` when the lease is
/// no longer ours.
struct Beat {
    counts: std::sync::Mutex<DatasetCounts>,
    lost: AtomicBool,
}

impl Beat {
    fn set(&self, f: impl FnOnce(&mut DatasetCounts)) {
        if let Ok(mut c) = self.counts.lock() {
            f(&mut c);
        }
    }

    fn get(&self) -> DatasetCounts {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Hub {
    fn start_heartbeat(
        self: &Arc<Self>,
        id: DatasetId,
        owner: String,
        beat: Arc<Beat>,
    ) -> tokio::task::JoinHandle<()> {
        let hub = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                let now = hub.clock.now();
                let counts = beat.get().to_json();
                let result = async {
                    let mut tx = hub.store.write().await?;
                    let held = datasets::heartbeat(
                        &mut tx,
                        id,
                        &owner,
                        &counts,
                        now + hub.options.dataset_lease,
                    )
                    .await?;
                    tx.commit().await.map_err(StoreError::from)?;
                    Ok::<_, StoreError>(held)
                }
                .await;
                match result {
                    Ok(true) => {}
                    Ok(false) => beat.lost.store(true, Ordering::Relaxed),
                    Err(err) => tracing::warn!(dataset = %id, error = %err, "heartbeat failed"),
                }
            }
        })
    }

    async fn run_pull(self: Arc<Self>, opened: Opened, job: PullJob, owner: String, actor: Actor) {
        let id = opened.stored.id;
        let beat = Arc::new(Beat {
            counts: std::sync::Mutex::new(DatasetCounts::default()),
            lost: AtomicBool::new(false),
        });
        let heartbeat = self.start_heartbeat(id, owner.clone(), Arc::clone(&beat));
        let result = match &job {
            PullJob::Pipeline(spec) => self.pull(&opened, spec, &beat, actor).await,
            PullJob::Bom(job) => self.pull_bom(&opened, job, &beat, actor).await,
        };
        // The lease is kept until the outcome is stored: writing it can outlast the lease.
        let now = self.clock.now();
        let mut stored = opened.stored.clone();
        let outcome = async {
            let mut tx = self.store.write().await?;
            // Another process took it over (our lease ran out): leave it.
            let Some(current) = datasets::get(&mut tx, stored.organization_id, id).await? else {
                return Ok::<_, AppError>(());
            };
            if current.lease_owner.as_deref() != Some(owner.as_str()) {
                return Ok(());
            }
            stored.owner_id = current.owner_id;
            stored.lease_owner = None;
            stored.lease_expires_at = None;
            stored.updated_at = now;
            match &result {
                Ok((layout_ct, read, skipped)) => {
                    stored.schema_ciphertext = Some(layout_ct.clone());
                    stored.state = DatasetState::Ready.as_str().to_owned();
                    stored.counts = DatasetCounts {
                        read: *read,
                        skipped: *skipped,
                        ..DatasetCounts::default()
                    }
                    .to_json();
                    let counts = self.refresh_counts(&mut tx, &mut stored, now).await?;
                    let event = Event::new(Actor::Scheduler, "dataset.pulled", "dataset", id)
                        .change(
                            "records",
                            FieldChange::value(None::<u64>, Some(counts.records)),
                        )
                        .change(
                            "create",
                            FieldChange::value(None::<u64>, Some(counts.create)),
                        )
                        .change(
                            "update",
                            FieldChange::value(None::<u64>, Some(counts.update)),
                        )
                        .change(
                            "errors",
                            FieldChange::value(None::<u64>, Some(counts.errors)),
                        );
                    self.record(&mut tx, stored.organization_id, event).await?;
                }
                Err(err) => {
                    datasets::clear_chunks(&mut tx, id, ChunkKind::Records).await?;
                    datasets::clear_chunks(&mut tx, id, ChunkKind::Destination).await?;
                    stored.schema_ciphertext = None;
                    stored.state = DatasetState::Failed.as_str().to_owned();
                    stored.message = Some(failure_message(err));
                    stored.counts = DatasetCounts::default().to_json();
                    datasets::update(&mut tx, &stored).await?;
                    let event =
                        Event::new(Actor::Scheduler, "dataset.pulled", "dataset", id).failed();
                    self.record(&mut tx, stored.organization_id, event).await?;
                }
            }
            tx.commit().await.map_err(StoreError::from)?;
            Ok(())
        }
        .await;
        heartbeat.abort();
        match (&result, outcome) {
            (Ok(_), Ok(())) => tracing::info!(dataset = %id, "data set pulled"),
            (Err(err), Ok(())) => {
                tracing::warn!(dataset = %id, error = %err, "data set pull failed")
            }
            (_, Err(err)) => {
                tracing::error!(dataset = %id, error = %err, "data set pull could not be ended")
            }
        }
    }

    /// Reads the destination, then the source through the review plan; stores the chunks.
    /// Answers the sealed layout and the source counts. When it fails, nothing more is written
    /// once it has returned.
    async fn pull(
        self: &Arc<Self>,
        opened: &Opened,
        spec: &PipelineSpec,
        beat: &Arc<Beat>,
        actor: Actor,
    ) -> Result<(Vec<u8>, u64, u64), AppError> {
        let mut writer = ChunkWriter::start(self.store.clone(), ChunkTarget::of(opened));
        match self.pull_into(opened, spec, beat, actor, &mut writer).await {
            Ok(pulled) => {
                writer.finish().await?;
                Ok(pulled)
            }
            Err(err) => {
                writer.stop().await;
                Err(err)
            }
        }
    }

    async fn pull_into(
        self: &Arc<Self>,
        opened: &Opened,
        spec: &PipelineSpec,
        beat: &Arc<Beat>,
        actor: Actor,
        writer: &mut ChunkWriter,
    ) -> Result<(Vec<u8>, u64, u64), AppError> {
        let org = opened.stored.organization_id;
        let id = opened.stored.id;
        let key = Arc::clone(&opened.key);
        let hasher = key_hasher(&key)?;
        let scrambler = match spec.uses_scramble() {
            true => Some(self.scrambler(org).await?),
            false => None,
        };
        let parse_id = |s: &str| -> Result<lockstep_domain::ConnectionId, AppError> {
            s.parse().map_err(|_| AppError::InvalidConfig {
                field: "connection_id".to_owned(),
                reason: "is not a connection id".to_owned(),
            })
        };
        let mut conn = self.store.read().await?;
        let source = connections::get(&mut conn, org, parse_id(&spec.source.connection_id)?)
            .await?
            .ok_or(AppError::NotFound("connection"))?;
        let destination =
            connections::get(&mut conn, org, parse_id(&spec.destination.connection_id)?)
                .await?
                .ok_or(AppError::NotFound("connection"))?;
        let edits = datasets::edits(&mut conn, id).await?;
        let owner = users::get(&mut conn, org, opened.stored.owner_id).await?;
        drop(conn);
        // The owner's row filters: a pull takes only the records its owner may see.
        let owner_role = owner.map_or(lockstep_domain::Role::Viewer, |u| u.role);
        let viewer = self
            .viewer_of_user(org, opened.stored.owner_id, owner_role)
            .await?;
        let policy = Arc::new(self.dataset_policy(org, &viewer, spec).await?);
        let mut edit_map: HashMap<u128, StoredEdit> = HashMap::new();
        for (k, ct) in edits {
            let Ok(bytes) = <[u8; 16]>::try_from(k.as_slice()) else {
                continue;
            };
            let edit: StoredEdit = open_json(&key, id, "edit", 0, &ct)?;
            edit_map.insert(u128::from_be_bytes(bytes), edit);
        }
        let source = self.connector(actor.clone(), &source).await?;
        let destination_kind = ConnectionKind::parse(&destination.kind)
            .ok_or(AppError::Store(StoreError::Corrupt("kind")))?;
        let destination = self.connector(actor, &destination).await?;

        // The source's schema first: the plan gives the records' schema and key.
        let (source_schema, stream) = source
            .read(ReadSpec {
                object: spec.source.object.clone(),
                fields: spec.read_fields(),
                cursor: None,
                batch_rows: DEFAULT_BATCH_ROWS,
            })
            .await
            .map_err(AppError::from)?;
        let mut plan = Plan::for_review(spec, Arc::clone(&source_schema)).map_err(|e| {
            AppError::InvalidConfig {
                field: e.field,
                reason: e.reason,
            }
        })?;
        if let Some(scrambler) = scrambler {
            plan = plan.with_scrambler(scrambler);
        }
        let plan = Arc::new(plan);
        let output = plan.output_schema();
        let key_fields: Vec<String> = if spec.key.is_empty() {
            output
                .fields()
                .iter()
                .filter(|f| field_meta(f).primary_key)
                .map(|f| f.name().clone())
                .collect()
        } else {
            spec.key.clone()
        };
        let key_columns: Vec<usize> = key_fields
            .iter()
            .filter_map(|k| output.fields().iter().position(|f| f.name() == k))
            .collect();

        // 1. The destination's records: kept sealed in chunks of their own; in memory only a
        //    hash of each key and of its values.
        let mut compared = vec![false; output.fields().len()];
        let mut dest_keys: HashMap<u128, (u64, u64)> = HashMap::new();
        let mut dest_total = 0u64;
        if !key_columns.is_empty() {
            let read = destination
                .read(ReadSpec {
                    object: spec.destination.object.clone(),
                    fields: None,
                    cursor: None,
                    batch_rows: DEFAULT_BATCH_ROWS,
                })
                .await;
            match read {
                Ok((dest_schema, dest_stream)) => {
                    let mut dest_stream = read_ahead(dest_stream);
                    // Destination column of each record field (by name, then ignoring case).
                    let columns: Vec<Option<usize>> = output
                        .fields()
                        .iter()
                        .map(|f| {
                            let fields = dest_schema.fields();
                            fields
                                .iter()
                                .position(|d| d.name() == f.name())
                                .or_else(|| {
                                    fields
                                        .iter()
                                        .position(|d| d.name().eq_ignore_ascii_case(f.name()))
                                })
                        })
                        .collect();
                    for (c, col) in compared.iter_mut().zip(&columns) {
                        *c = col.is_some();
                    }
                    if key_columns
                        .iter()
                        .all(|k| columns.get(*k).is_some_and(Option::is_some))
                    {
                        let mut buffer: Vec<RecordBatch> = Vec::new();
                        let mut buffered = 0usize;
                        let mut chunk_no = 0u64;
                        let shared_columns = Arc::new(columns.clone());
                        let shared_keys = Arc::new(key_columns.clone());
                        let shared_compared = Arc::new(compared.clone());
                        while let Some(batch) = dest_stream.recv().await {
                            let batch = batch.map_err(AppError::from)?;
                            let (aligned, hashes) = aligned_rows(
                                batch,
                                Arc::clone(&shared_columns),
                                Arc::clone(&output),
                                hasher.clone(),
                                Arc::clone(&shared_keys),
                                Arc::clone(&shared_compared),
                            )
                            .await?;
                            for (h, c) in hashes {
                                dest_keys.entry(h).or_insert((dest_total, c));
                                dest_total += 1;
                            }
                            let mut offset = 0;
                            while offset < aligned.num_rows() {
                                let take = (CHUNK_ROWS - buffered).min(aligned.num_rows() - offset);
                                buffer.push(aligned.slice(offset, take));
                                buffered += take;
                                offset += take;
                                if buffered == CHUNK_ROWS {
                                    writer
                                        .put(ChunkJob::Destination {
                                            chunk: chunk_no,
                                            pieces: std::mem::take(&mut buffer),
                                        })
                                        .await?;
                                    buffered = 0;
                                    chunk_no += 1;
                                }
                            }
                        }
                        if !buffer.is_empty() {
                            writer
                                .put(ChunkJob::Destination {
                                    chunk: chunk_no,
                                    pieces: buffer,
                                })
                                .await?;
                        }
                    }
                }
                // A destination object that does not exist yet holds nothing.
                Err(err) if err.kind() == Some(FailureKind::NotFound) => {}
                Err(err) => return Err(AppError::from(err)),
            }
        }
        let _ = destination_kind;

        // 2. The source's records through the review plan, compared and chunked off the
        //    request threads.
        let mut compare = Box::new(Compare {
            plan: Arc::clone(&plan),
            source_schema: Arc::clone(&source_schema),
            hasher: hasher.clone(),
            key_columns: key_columns.clone(),
            key_fields: key_fields.clone(),
            compared: compared.clone(),
            dest_keys,
            matched: vec![false; usize::try_from(dest_total).unwrap_or(0)],
            seen_keys: HashSet::new(),
            edits: edit_map,
            pending: PendingChunk::new(&output, &source_schema, plan.passthrough().into()),
            text: String::new(),
            next_row: 0,
        });
        let mut chunk_no = 0u64;
        let mut read = 0u64;
        let mut skipped = 0u64;
        let mut stream = read_ahead(stream);
        while let Some(batch) = stream.recv().await {
            if beat.lost.load(Ordering::Relaxed) {
                return Err(AppError::Refused("the pull's lease was lost"));
            }
            let batch = batch.map_err(AppError::from)?;
            read += batch.num_rows() as u64;
            let policy = Arc::clone(&policy);
            let (back, result) = tokio::task::spawn_blocking(move || {
                let result = match policy.keep_source_rows(&batch) {
                    Ok((kept, withheld)) => compare
                        .absorb(&kept)
                        .map(|(full, skipped)| (full, skipped + withheld)),
                    Err(err) => Err(err),
                };
                (compare, result)
            })
            .await
            .map_err(|_| AppError::Refused("comparing records stopped unexpectedly"))?;
            compare = back;
            let (full, batch_skipped) = result?;
            skipped += batch_skipped;
            for chunk in full {
                let end_row = chunk_no * CHUNK_ROWS as u64 + chunk.len() as u64;
                writer
                    .put(ChunkJob::Records {
                        chunk: chunk_no,
                        end_row,
                        pending: chunk,
                    })
                    .await?;
                chunk_no += 1;
            }
            let records = compare.next_row;
            beat.set(|c| {
                c.read = read;
                c.skipped = skipped;
                c.records = records;
            });
        }
        let Compare {
            matched,
            mut pending,
            mut next_row,
            ..
        } = *compare;

        // 3. What only the destination has: shown (with the destination's values), never
        //    written.
        if matched.iter().any(|m| !m) {
            for (dest_row, seen) in matched.iter().enumerate() {
                if *seen {
                    continue;
                }
                pending.push_nulls(RecordStatus::DestinationOnly, dest_row as u64);
                next_row += 1;
                if pending.len() == CHUNK_ROWS {
                    let next = pending.next();
                    let full = std::mem::replace(&mut pending, next);
                    writer
                        .put(ChunkJob::Records {
                            chunk: chunk_no,
                            end_row: next_row,
                            pending: full,
                        })
                        .await?;
                    chunk_no += 1;
                }
            }
        }
        if pending.len() > 0 {
            writer
                .put(ChunkJob::Records {
                    chunk: chunk_no,
                    end_row: next_row,
                    pending,
                })
                .await?;
        }
        let layout = Layout {
            spec: spec.clone(),
            source: records::schema_to_json(&source_schema),
            output: records::schema_to_json(&output),
            key: key_fields,
            compared,
            bom: None,
        };
        let layout_ct = seal_json(&key, id, "layout", 0, &layout)?;
        Ok((layout_ct, read, skipped))
    }

    async fn put_destination_chunk(
        &self,
        opened: &Opened,
        chunk: u64,
        pieces: Vec<RecordBatch>,
    ) -> Result<(), AppError> {
        let target = ChunkTarget::of(opened);
        store_chunk(
            &self.store,
            &target,
            ChunkJob::Destination { chunk, pieces },
        )
        .await
    }

    async fn put_records_chunk(
        &self,
        opened: &Opened,
        chunk: u64,
        end_row: u64,
        pending: PendingChunk,
    ) -> Result<(), AppError> {
        let target = ChunkTarget::of(opened);
        let job = ChunkJob::Records {
            chunk,
            end_row,
            pending,
        };
        store_chunk(&self.store, &target, job).await
    }

    async fn run_submit(self: Arc<Self>, opened: Opened, owner: String, actor: Actor) {
        let id = opened.stored.id;
        let beat = Arc::new(Beat {
            counts: std::sync::Mutex::new(DatasetCounts::from_json(&opened.stored.counts)),
            lost: AtomicBool::new(false),
        });
        let heartbeat = self.start_heartbeat(id, owner.clone(), Arc::clone(&beat));
        let result = self.submit(&opened, &beat, actor.clone()).await;
        // The lease is kept until the outcome is stored: writing it can outlast the lease.
        let now = self.clock.now();
        let outcome = async {
            let mut tx = self.store.write().await?;
            let Some(mut stored) =
                datasets::get(&mut tx, opened.stored.organization_id, id).await?
            else {
                return Ok::<_, AppError>(());
            };
            if stored.lease_owner.as_deref() != Some(owner.as_str()) {
                return Ok(());
            }
            stored.lease_owner = None;
            stored.lease_expires_at = None;
            let (written, failed_message) = match &result {
                Ok(attempt) => (attempt.rows.len() as u64, None),
                Err((attempt, err)) => (0, Some((attempt.rows.len() as u64, failure_message(err)))),
            };
            let attempt = match &result {
                Ok(a) => a,
                Err((a, _)) => a,
            };
            // Each attempted record's outcome.
            for (chunk, positions) in &attempt.by_chunk {
                let Some(mut stored_chunk) =
                    datasets::chunk(&mut tx, id, ChunkKind::Records, *chunk).await?
                else {
                    continue;
                };
                let mut payload = open_records(&opened.key, id, *chunk, &stored_chunk.payload)?;
                for i in positions {
                    let position = u32::try_from(*i).unwrap_or(u32::MAX);
                    if let Some(f) = stored_chunk.index.flags.get_mut(*i) {
                        match &failed_message {
                            None => {
                                *f = (*f & !OUTCOME_MASK & !PROCESS)
                                    | RecordOutcome::bits(Some(RecordOutcome::Submitted));
                                payload.notes.failures.remove(&position);
                            }
                            Some((_, message)) => {
                                *f = (*f & !OUTCOME_MASK)
                                    | RecordOutcome::bits(Some(RecordOutcome::Failed));
                                payload.notes.failures.insert(position, message.clone());
                            }
                        }
                    }
                }
                stored_chunk.payload = seal_records(&opened.key, id, *chunk, &payload)?;
                datasets::put_chunk(
                    &mut tx,
                    stored.organization_id,
                    id,
                    ChunkKind::Records,
                    &stored_chunk,
                )
                .await?;
            }
            let mut event = Event::new(actor.clone(), "dataset.submitted", "dataset", id).change(
                "records_written",
                FieldChange::value(None::<u64>, Some(written)),
            );
            match &failed_message {
                None => {
                    stored.state = DatasetState::Submitted.as_str().to_owned();
                    stored.message = None;
                }
                Some((attempted, message)) => {
                    stored.state = DatasetState::Ready.as_str().to_owned();
                    let bom = opened.layout.as_ref().is_some_and(|l| l.bom.is_some());
                    stored.message = Some(if bom {
                        format!(
                            "the submit stopped: {message}. Tryton keeps each call's changes, so \
                             what was written before stays; submit again to finish (what is \
                             there already is not written twice)"
                        )
                    } else {
                        format!(
                            "the submit failed, and nothing was written to the destination: \
                             {message}"
                        )
                    });
                    event = event
                        .change(
                            "records_failed",
                            FieldChange::value(None::<u64>, Some(*attempted)),
                        )
                        .failed();
                }
            }
            let before = DatasetCounts::from_json(&stored.counts);
            stored.counts = before.to_json();
            let mut counts = self.refresh_counts(&mut tx, &mut stored, now).await?;
            counts.written = written;
            stored.counts = counts.to_json();
            datasets::update(&mut tx, &stored).await?;
            self.record(&mut tx, stored.organization_id, event).await?;
            tx.commit().await.map_err(StoreError::from)?;
            Ok(())
        }
        .await;
        heartbeat.abort();
        match (&result, outcome) {
            (Ok(a), Ok(())) => {
                tracing::info!(dataset = %id, written = a.rows.len(), "data set submitted")
            }
            (Err((_, err)), Ok(())) => {
                tracing::warn!(dataset = %id, error = %err, "data set submit failed")
            }
            (_, Err(err)) => {
                tracing::error!(dataset = %id, error = %err, "data set submit could not be ended")
            }
        }
    }

    /// Writes the ticked records in one all-or-nothing writer.
    async fn submit(
        &self,
        opened: &Opened,
        beat: &Arc<Beat>,
        actor: Actor,
    ) -> Result<Attempt, (Attempt, AppError)> {
        let mut attempt = Attempt::default();
        let result = self.submit_inner(opened, beat, actor, &mut attempt).await;
        match result {
            Ok(()) => Ok(attempt),
            Err(err) => Err((attempt, err)),
        }
    }

    async fn submit_inner(
        &self,
        opened: &Opened,
        beat: &Arc<Beat>,
        actor: Actor,
        attempt: &mut Attempt,
    ) -> Result<(), AppError> {
        let org = opened.stored.organization_id;
        let id = opened.stored.id;
        let layout = opened.layout()?;
        if layout.bom.is_some() {
            return self.submit_bom(opened, beat, actor, attempt).await;
        }
        let output = records::schema_from_json(&layout.output)
            .ok_or(AppError::Store(StoreError::Corrupt("data set layout")))?;
        let destination_id: lockstep_domain::ConnectionId = layout
            .spec
            .destination
            .connection_id
            .parse()
            .map_err(|_| AppError::Store(StoreError::Corrupt("connection id")))?;
        let mut conn = self.store.read().await?;
        let destination = connections::get(&mut conn, org, destination_id)
            .await?
            .ok_or(AppError::NotFound("connection"))?;
        let index = datasets::chunk_index(&mut conn, id, ChunkKind::Records).await?;
        drop(conn);
        let destination = self.connector(actor, &destination).await?;
        let mode = if layout.key.is_empty() {
            WriteMode::Append
        } else {
            WriteMode::Upsert {
                key: layout.key.clone(),
            }
        };
        let mut writer = destination
            .writer(WriteSpec {
                object: layout.spec.destination.object.clone(),
                schema: Arc::clone(&output),
                mode,
            })
            .await
            .map_err(AppError::from)?;
        let mut written = 0u64;
        for chunk in &index {
            let positions: Vec<usize> = chunk
                .flags
                .iter()
                .enumerate()
                .filter(|(_, f)| {
                    **f & PROCESS != 0
                        && matches!(
                            RecordStatus::from_flags(**f),
                            RecordStatus::Create | RecordStatus::Update
                        )
                })
                .map(|(i, _)| i)
                .collect();
            if positions.is_empty() {
                continue;
            }
            if beat.lost.load(Ordering::Relaxed) {
                writer.abort().await;
                return Err(AppError::Refused("the submit's lease was lost"));
            }
            let (_, payload) = match self.load_chunk(opened, chunk.chunk).await {
                Ok(loaded) => loaded,
                Err(err) => {
                    writer.abort().await;
                    return Err(err);
                }
            };
            let batch = match records::take(&payload.rows, &positions)
                .and_then(|b| records::with_schema(&b, &output))
            {
                Ok(b) => b,
                Err(e) => {
                    writer.abort().await;
                    return Err(batch_error(e));
                }
            };
            attempt.note(chunk.chunk, &positions);
            if let Err(err) = writer.write(&batch).await {
                writer.abort().await;
                return Err(AppError::from(err));
            }
            written += batch.num_rows() as u64;
            beat.set(|c| c.written = written);
        }
        writer.commit().await.map_err(AppError::from)?;
        Ok(())
    }
}

/// The records a submit tried to write.
#[derive(Debug, Default)]
struct Attempt {
    by_chunk: Vec<(u64, Vec<usize>)>,
    rows: Vec<(u64, usize)>,
}

impl Attempt {
    fn note(&mut self, chunk: u64, positions: &[usize]) {
        self.by_chunk.push((chunk, positions.to_vec()));
        self.rows.extend(positions.iter().map(|p| (chunk, *p)));
    }
}

/// A pull's comparison state: the destination's keys, which of them the source had, the keys
/// seen, the edits to apply again, and the records gathered for the next chunk.
struct Compare {
    plan: Arc<Plan>,
    source_schema: SchemaRef,
    hasher: lockstep_vault::KeyedHasher,
    key_columns: Vec<usize>,
    key_fields: Vec<String>,
    compared: Vec<bool>,
    dest_keys: HashMap<u128, (u64, u64)>,
    matched: Vec<bool>,
    seen_keys: HashSet<u128>,
    edits: HashMap<u128, StoredEdit>,
    pending: PendingChunk,
    /// Scratch for a value's comparable text.
    text: String,
    next_row: u64,
}

impl Compare {
    /// Runs one source batch through the review plan and compares its records, reading their
    /// values in place; answers the chunks it filled and how many records the filter skipped.
    /// Blocking work.
    fn absorb(&mut self, batch: &RecordBatch) -> Result<(Vec<PendingChunk>, u64), AppError> {
        let applied = self.plan.apply(batch).map_err(connector_error)?;
        let out = &applied.batch;
        // The source values of each record, in the records' order.
        let sources = if applied.accepted_rows.len() == batch.num_rows() {
            // Every record kept, in order (the rows are ascending): the batch as it is.
            batch.clone()
        } else {
            records::take(batch, &applied.accepted_rows).map_err(batch_error)?
        };
        let mut issues: HashMap<usize, Vec<StoredIssue>> = HashMap::new();
        for i in applied.issues {
            issues.entry(i.row).or_default().push(StoredIssue {
                field: i.field,
                level: i.level,
                message: i.message,
            });
        }
        let cells = records::Cells::new(out);
        let mut full = Vec::new();
        // Records from `run_start` on are taken from `out` as they are, in one piece.
        let mut run_start = 0usize;
        for j in 0..out.num_rows() {
            let mut row_issues = issues.remove(&j).unwrap_or_default();
            let mut hash = None;
            let mut content = None;
            if !self.key_columns.is_empty() {
                let kh = key_hash_cells(&self.hasher, &cells, j, &self.key_columns, &mut self.text);
                if let Some(edit) = self.edits.get(&kh) {
                    // An edit made before a refresh: the record is computed again from its
                    // edited source values.
                    let mut source_row = records::Cells::new(&sources).row(j);
                    apply_edit(&self.source_schema, &mut source_row, edit);
                    if let Ok((one, i)) = recompute(&self.plan, &self.source_schema, &source_row)
                        && let Ok(one_source) =
                            records::rows_batch(&self.pending.source_schema, &[&source_row])
                    {
                        self.pending.add(
                            out.slice(run_start, j - run_start),
                            sources.slice(run_start, j - run_start),
                        );
                        let one_cells = records::Cells::new(&one);
                        content = Some(content_hash_cells(
                            &one_cells,
                            0,
                            &self.compared,
                            &mut self.text,
                        ));
                        self.pending.add(one, one_source);
                        run_start = j + 1;
                        row_issues = i;
                    }
                }
                hash = Some(kh);
                // A key seen before: one the destination has and an earlier record matched, or
                // one it lacks that is in `seen_keys` (which so holds only the new keys).
                let repeated = match self.dest_keys.get(&kh) {
                    Some((dest_row, _)) => usize::try_from(*dest_row)
                        .ok()
                        .and_then(|r| self.matched.get(r))
                        .copied()
                        .unwrap_or(false),
                    None => !self.seen_keys.insert(kh),
                };
                if repeated {
                    row_issues.push(StoredIssue {
                        field: self.key_fields.first().cloned().unwrap_or_default(),
                        level: Level::Error,
                        message: "another record of this data set has the same key".to_owned(),
                    });
                }
            }
            let (status, dest_row) = match hash.and_then(|h| self.dest_keys.get(&h)) {
                Some((dest_row, dest_hash)) => {
                    if let Some(m) = usize::try_from(*dest_row)
                        .ok()
                        .and_then(|r| self.matched.get_mut(r))
                    {
                        *m = true;
                    }
                    let content = content.unwrap_or_else(|| {
                        content_hash_cells(&cells, j, &self.compared, &mut self.text)
                    });
                    if *dest_hash == content {
                        (RecordStatus::Unchanged, Some(*dest_row))
                    } else {
                        (RecordStatus::Update, Some(*dest_row))
                    }
                }
                None => (RecordStatus::Create, None),
            };
            self.pending.note(row_issues, status, dest_row);
            self.next_row += 1;
            if self.pending.len() == CHUNK_ROWS {
                self.pending.add(
                    out.slice(run_start, j + 1 - run_start),
                    sources.slice(run_start, j + 1 - run_start),
                );
                run_start = j + 1;
                let next = self.pending.next();
                full.push(std::mem::replace(&mut self.pending, next));
            }
        }
        let rest = out.num_rows() - run_start;
        self.pending
            .add(out.slice(run_start, rest), sources.slice(run_start, rest));
        Ok((full, applied.skipped))
    }
}

/// Sets the edited source fields of a source row.
fn apply_edit(source_schema: &SchemaRef, source_row: &mut Row, edit: &StoredEdit) {
    source_row.resize(source_schema.fields().len(), serde_json::Value::Null);
    for (name, v) in &edit.values {
        if let Some(p) = source_schema.fields().iter().position(|f| f.name() == name)
            && let Some(slot) = source_row.get_mut(p)
        {
            *slot = v.clone();
        }
    }
}

/// Records gathered for the next chunk: pieces of batches, joined when the chunk is sealed,
/// and each record's notes and flags.
#[derive(Debug)]
struct PendingChunk {
    output_schema: SchemaRef,
    source_schema: SchemaRef,
    /// [`RecordsChunk::derived`]: which record column repeats each source column.
    derived: Arc<[Option<usize>]>,
    rows: Vec<RecordBatch>,
    source: Vec<RecordBatch>,
    /// Records of nothing but nulls to add before the next piece.
    nulls: usize,
    notes: ChunkNotes,
    flags: Vec<u8>,
}

impl PendingChunk {
    fn new(output: &SchemaRef, source: &SchemaRef, derived: Arc<[Option<usize>]>) -> PendingChunk {
        PendingChunk {
            output_schema: records::nullable(output),
            source_schema: records::nullable(source),
            derived,
            rows: Vec::new(),
            source: Vec::new(),
            nulls: 0,
            notes: ChunkNotes::default(),
            flags: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.flags.len()
    }

    /// An empty chunk of the same schemas, for the records after this one's.
    fn next(&self) -> PendingChunk {
        PendingChunk {
            output_schema: Arc::clone(&self.output_schema),
            source_schema: Arc::clone(&self.source_schema),
            derived: Arc::clone(&self.derived),
            rows: Vec::new(),
            source: Vec::new(),
            nulls: 0,
            notes: ChunkNotes::default(),
            flags: Vec::new(),
        }
    }

    /// The next records' notes and flags, one record.
    fn note(&mut self, issues: Vec<StoredIssue>, status: RecordStatus, dest_row: Option<u64>) {
        let position = u32::try_from(self.flags.len()).unwrap_or(u32::MAX);
        self.flags
            .push(flags_for(status, status.ticked_by_default(), &issues));
        if !issues.is_empty() {
            self.notes.issues.insert(position, issues);
        }
        if let Some(d) = dest_row {
            self.notes.destination.insert(position, d);
        }
    }

    /// The values of the records noted (as many rows in each batch).
    fn add(&mut self, rows: RecordBatch, source: RecordBatch) {
        if rows.num_rows() == 0 {
            return;
        }
        self.flush_nulls();
        self.rows.push(rows);
        self.source.push(source);
    }

    /// A record whose values are another's (a `destination_only` record): nulls here.
    fn push_nulls(&mut self, status: RecordStatus, dest_row: u64) {
        self.note(Vec::new(), status, Some(dest_row));
        self.nulls += 1;
    }

    fn flush_nulls(&mut self) {
        if self.nulls == 0 {
            return;
        }
        if let (Ok(rows), Ok(source)) = (
            records::null_batch(&self.output_schema, self.nulls),
            records::null_batch(&self.source_schema, self.nulls),
        ) {
            self.rows.push(rows);
            self.source.push(source);
        }
        self.nulls = 0;
    }

    /// The chunk, its pieces joined. Blocking work.
    fn finish(mut self) -> Result<RecordsChunk, AppError> {
        self.flush_nulls();
        let rows = records::concat(&self.output_schema, &self.rows).map_err(batch_error)?;
        let source = records::concat(&self.source_schema, &self.source).map_err(batch_error)?;
        if rows.num_rows() != self.flags.len() || source.num_rows() != self.flags.len() {
            return Err(AppError::Store(StoreError::Corrupt("data set chunk")));
        }
        Ok(RecordsChunk {
            rows,
            source,
            derived: self.derived,
            notes: self.notes,
        })
    }
}

/// The destination batch in the records' field order (null where it has no such field), with
/// each record's key hash and compared values' hash, read in place off the request threads.
async fn aligned_rows(
    batch: RecordBatch,
    columns: Arc<Vec<Option<usize>>>,
    output: SchemaRef,
    hasher: lockstep_vault::KeyedHasher,
    key_columns: Arc<Vec<usize>>,
    compared: Arc<Vec<bool>>,
) -> Result<(RecordBatch, Vec<(u128, u64)>), AppError> {
    tokio::task::spawn_blocking(move || {
        let aligned = records::align(&batch, &columns, &output).map_err(batch_error)?;
        let cells = records::Cells::new(&aligned);
        let mut text = String::new();
        let hashes = (0..aligned.num_rows())
            .map(|r| {
                let key = key_hash_cells(&hasher, &cells, r, &key_columns, &mut text);
                let content = content_hash_cells(&cells, r, &compared, &mut text);
                (key, content)
            })
            .collect();
        drop(cells);
        Ok((aligned, hashes))
    })
    .await
    .map_err(|_| AppError::Refused("reading the destination stopped unexpectedly"))?
}

/// Where a pull's chunks go: the data set and its key.
#[derive(Clone)]
struct ChunkTarget {
    organization_id: lockstep_domain::OrganizationId,
    id: DatasetId,
    key: Arc<DataKey>,
}

impl ChunkTarget {
    fn of(opened: &Opened) -> ChunkTarget {
        ChunkTarget {
            organization_id: opened.stored.organization_id,
            id: opened.stored.id,
            key: Arc::clone(&opened.key),
        }
    }
}

/// One chunk to seal and store.
enum ChunkJob {
    /// The destination's records `chunk * CHUNK_ROWS ..`, in pieces.
    Destination {
        chunk: u64,
        pieces: Vec<RecordBatch>,
    },
    /// The records up to `end_row`.
    Records {
        chunk: u64,
        end_row: u64,
        pending: PendingChunk,
    },
}

/// Seals a chunk off the request threads and stores it in a transaction of its own.
async fn store_chunk(
    store: &lockstep_storage::Store,
    target: &ChunkTarget,
    job: ChunkJob,
) -> Result<(), AppError> {
    store_chunks(store, target, vec![job]).await
}

/// Seals chunks off the request threads and stores them in one transaction (a pull's chunks
/// are stored a few at a time: one commit, and one sync of the store's log, for several).
async fn store_chunks(
    store: &lockstep_storage::Store,
    target: &ChunkTarget,
    jobs: Vec<ChunkJob>,
) -> Result<(), AppError> {
    let mut sealed = Vec::with_capacity(jobs.len());
    for job in jobs {
        sealed.push(seal_chunk(target, job).await?);
    }
    let mut tx = store.write().await?;
    for (kind, chunk) in &sealed {
        datasets::put_chunk(&mut tx, target.organization_id, target.id, *kind, chunk).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// A chunk sealed off the request threads, ready to store.
async fn seal_chunk(
    target: &ChunkTarget,
    job: ChunkJob,
) -> Result<(ChunkKind, StoredChunk), AppError> {
    let key = Arc::clone(&target.key);
    let id = target.id;
    let (kind, index) = match &job {
        ChunkJob::Destination { chunk, pieces } => (
            ChunkKind::Destination,
            ChunkIndex {
                chunk: *chunk,
                first_row: chunk * CHUNK_ROWS as u64,
                row_count: pieces.iter().map(|p| p.num_rows() as u64).sum(),
                flags: Vec::new(),
            },
        ),
        ChunkJob::Records {
            chunk,
            end_row,
            pending,
        } => (
            ChunkKind::Records,
            ChunkIndex {
                chunk: *chunk,
                first_row: end_row - pending.len() as u64,
                row_count: pending.len() as u64,
                flags: pending.flags.clone(),
            },
        ),
    };
    let payload = tokio::task::spawn_blocking(move || match job {
        ChunkJob::Destination { chunk, pieces } => {
            let schema = pieces
                .first()
                .map(RecordBatch::schema)
                .ok_or(AppError::Store(StoreError::Corrupt("data set chunk")))?;
            let rows = records::concat(&schema, &pieces).map_err(batch_error)?;
            seal_destination(&key, id, chunk, &rows)
        }
        ChunkJob::Records { chunk, pending, .. } => {
            let records = pending.finish()?;
            seal_records(&key, id, chunk, &records)
        }
    })
    .await
    .map_err(|_| AppError::Refused("sealing a chunk stopped unexpectedly"))??;
    Ok((kind, StoredChunk { index, payload }))
}

/// Seals and stores a pull's chunks, in order, on a task of its own, so the next records are
/// read and compared meanwhile. At most [`WRITER_QUEUE`] chunks wait; a pull that fails calls
/// [`ChunkWriter::stop`], which returns once nothing more will be written.
struct ChunkWriter {
    jobs: Option<tokio::sync::mpsc::Sender<ChunkJob>>,
    stopped: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<Result<(), AppError>>>,
}

/// Chunks a [`ChunkWriter`] holds while others are being stored (and stores at once).
const WRITER_QUEUE: usize = 4;

impl ChunkWriter {
    fn start(store: lockstep_storage::Store, target: ChunkTarget) -> ChunkWriter {
        let (jobs, mut queue) = tokio::sync::mpsc::channel::<ChunkJob>(WRITER_QUEUE);
        let stopped = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopped);
        let task = tokio::spawn(async move {
            while let Some(job) = queue.recv().await {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                // What else is waiting goes into the same transaction.
                let mut jobs = vec![job];
                while jobs.len() < WRITER_QUEUE {
                    match queue.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                store_chunks(&store, &target, jobs).await?;
            }
            Ok(())
        });
        ChunkWriter {
            jobs: Some(jobs),
            stopped,
            task: Some(task),
        }
    }

    /// Queues a chunk; the error of an earlier chunk that could not be stored, if any.
    async fn put(&mut self, job: ChunkJob) -> Result<(), AppError> {
        let sent = match &self.jobs {
            Some(jobs) => jobs.send(job).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The task ended early: only an error ends it.
        self.jobs = None;
        self.join().await?;
        Err(AppError::Refused(
            "storing the data set's chunks stopped unexpectedly",
        ))
    }

    /// Waits until every queued chunk is stored.
    async fn finish(mut self) -> Result<(), AppError> {
        self.jobs = None;
        self.join().await
    }

    /// Drops the queued chunks and waits until the chunk being stored, if any, is done.
    async fn stop(mut self) {
        self.stopped.store(true, Ordering::Release);
        self.jobs = None;
        let _ = self.join().await;
    }

    async fn join(&mut self) -> Result<(), AppError> {
        match self.task.take() {
            Some(task) => task.await.map_err(|_| {
                AppError::Refused("storing the data set's chunks stopped unexpectedly")
            })?,
            None => Ok(()),
        }
    }
}

/// `stream` read ahead on a task of its own (decoding overlaps the work on each batch), at
/// most [`READ_AHEAD`] batches ahead. Dropping the receiver ends the read.
fn read_ahead(
    mut stream: lockstep_connectors::batch::BatchStream,
) -> tokio::sync::mpsc::Receiver<Result<RecordBatch, lockstep_connectors::ConnectorError>> {
    let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
    tokio::spawn(async move {
        while let Some(batch) = futures_util::StreamExt::next(&mut stream).await {
            let failed = batch.is_err();
            if tx.send(batch).await.is_err() || failed {
                break;
            }
        }
    });
    rx
}

/// Batches [`read_ahead`] decodes before they are asked for.
const READ_AHEAD: usize = 2;

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod chunk_tests {
    use super::*;
    use arrow_array::{ArrayRef, Int64Array, StringArray};
    use arrow_schema::{Field, Schema};

    fn batch(fields: &[(&str, ArrayRef)]) -> RecordBatch {
        let schema = Schema::new(
            fields
                .iter()
                .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        );
        RecordBatch::try_new(
            Arc::new(schema),
            fields.iter().map(|(_, a)| Arc::clone(a)).collect(),
        )
        .expect("batch")
    }

    fn ints(v: &[Option<i64>]) -> ArrayRef {
        Arc::new(Int64Array::from(v.to_vec()))
    }

    fn texts(v: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(v.to_vec()))
    }

    /// A chunk whose source `id` and `name` reach the records unchanged (renamed) and whose
    /// `note` does not reach them; `derived` is the plan's hint.
    fn chunk(derived: &[Option<usize>], name_in_record: &[Option<&str>]) -> RecordsChunk {
        let source = batch(&[
            ("id", ints(&[Some(1), Some(2), None])),
            ("name", texts(&[Some("bolt"), None, Some("nüt")])),
            ("note", texts(&[Some("x"), Some("y"), Some("z")])),
        ]);
        let rows = batch(&[
            ("item_code", ints(&[Some(1), Some(2), None])),
            ("item_name", texts(name_in_record)),
        ]);
        RecordsChunk {
            rows,
            source,
            derived: derived.to_vec().into(),
            notes: ChunkNotes::default(),
        }
    }

    fn sealed_len(records: &RecordsChunk) -> (Vec<u8>, usize) {
        let key = DataKey::generate(&mut rand::rng());
        let id = DatasetId::from_uuid(Uuid::now_v7());
        let ct = seal_records(&key, id, 7, records).expect("sealed");
        let opened = open_records(&key, id, 7, &ct).expect("opened");
        assert_eq!(
            opened.rows, records.rows,
            "the records come back as they were"
        );
        assert_eq!(
            opened.source.columns(),
            records.source.columns(),
            "the source values come back as they were"
        );
        assert_eq!(opened.source.schema(), records.source.schema());
        let plain = open_plain(&key, id, "records", 7, &ct).expect("plain");
        (plain.to_vec(), ct.len())
    }

    #[test]
    fn source_columns_a_record_repeats_are_stored_once_and_read_back_whole() {
        let names = [Some("bolt"), None, Some("nüt")];
        let (with_hint, with_len) = sealed_len(&chunk(&[Some(0), Some(1), None], &names));
        let (without_hint, without_len) = sealed_len(&chunk(&[None, None, None], &names));
        assert!(with_hint.starts_with(CHUNK_FORMAT_DERIVED));
        assert!(
            with_len < without_len,
            "leaving out repeated columns makes the chunk smaller ({with_len} vs {without_len})"
        );
        // The stored source section of the hinted chunk holds only `note`.
        let count = |plain: &[u8], needle: &[u8]| {
            plain.windows(needle.len()).filter(|w| *w == needle).count()
        };
        assert_eq!(
            count(&with_hint, "nüt".as_bytes()),
            1,
            "`name` is kept once"
        );
        assert_eq!(count(&without_hint, "nüt".as_bytes()), 2);
    }

    #[test]
    fn a_wrong_hint_is_caught_and_the_source_column_kept() {
        // The record's name was edited apart from its source (or the hint is simply wrong):
        // the source keeps its own values.
        let edited = [Some("bolt"), Some("washer"), Some("nüt")];
        let (plain, _) = sealed_len(&chunk(&[Some(0), Some(1), None], &edited));
        // `name` differs from `item_name`, so it is stored beside it: "nüt" twice.
        let count = |needle: &[u8]| plain.windows(needle.len()).filter(|w| *w == needle).count();
        assert_eq!(count("nüt".as_bytes()), 2);
        // A hint to a column of another type, or past the end, is ignored too.
        sealed_len(&chunk(&[Some(1), Some(5), Some(0)], &edited));
    }

    #[test]
    fn every_source_column_derived_leaves_a_source_of_the_right_length() {
        let mut records = chunk(
            &[Some(0), Some(1), None],
            &[Some("bolt"), None, Some("nüt")],
        );
        records.source = records.source.project(&[0, 1]).expect("project");
        records.derived = vec![Some(0), Some(1)].into();
        let (_, _) = sealed_len(&records);
    }

    #[test]
    fn chunks_of_the_first_format_still_open() {
        let records = chunk(&[None, None, None], &[Some("bolt"), None, Some("nüt")]);
        let key = DataKey::generate(&mut rand::rng());
        let id = DatasetId::from_uuid(Uuid::now_v7());
        let mut plain = Vec::new();
        plain.extend_from_slice(CHUNK_FORMAT);
        put_section(&mut plain, b"{}");
        let mut rows = Vec::new();
        records::write_ipc(&records.rows, &mut rows).expect("rows");
        put_section(&mut plain, &rows);
        records::write_ipc(&records.source, &mut plain).expect("source");
        let ct = seal_plain(&key, id, "records", 0, &plain).expect("sealed");
        let opened = open_records(&key, id, 0, &ct).expect("opened");
        assert_eq!(opened.source, records.source);
        assert_eq!(opened.rows, records.rows);
    }
}
