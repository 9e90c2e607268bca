//! The run loop: read batches from a source, apply the plan, write to a destination, commit —
//! or abort on any error or cancellation, so the destination stays as it was. It does no IO of
//! its own: the source, the destination and the observer (progress, rejected records,
//! cancellation) are given.

use crate::convert::{self, ColumnView};
use crate::plan::{Applied, Plan, Rejected};
use crate::redact::Scrambler;
use crate::spec::{Mode, PipelineSpec, SpecError};
use arrow_array::RecordBatch;
use futures_util::StreamExt as _;
use lockstep_connectors::ConnectorError;
use lockstep_connectors::batch::{
    BatchDestination, BatchSource, BatchStream, BatchWriter, CursorSpec, DEFAULT_BATCH_ROWS,
    ReadSpec, WriteSpec, field_meta,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The pipeline definition is invalid, or does not fit the source's fields.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The source or the destination failed.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    /// The run was cancelled; nothing was changed.
    #[error("cancelled")]
    Cancelled,
    /// The engine could not apply the plan to a batch (an internal error; the message names no
    /// record value).
    #[error("{0}")]
    Rule(String),
    /// An expression reached an evaluation limit (steps, time or size per record): the run
    /// fails, naming the rule.
    #[error("{rule} was stopped: {reason}")]
    Limit {
        /// `rules[2]`, `mappings[0]`, `filter`.
        rule: String,
        /// Which limit, in words.
        reason: String,
    },
    /// More records were rejected than the pipeline allows; nothing was committed.
    #[error(
        "{rejected} of {read} records read were rejected ({percent:.1}%), more than the \
         pipeline allows ({threshold}%): nothing was written"
    )]
    TooManyRejected {
        /// Records rejected.
        rejected: u64,
        /// Records read.
        read: u64,
        /// `rejected` in percent of `read`.
        percent: f64,
        /// The pipeline's threshold, in percent.
        threshold: f64,
    },
}

/// What a run needs besides the source and the destination.
#[derive(Clone)]
pub struct RunInput<'a> {
    /// The pipeline.
    pub spec: &'a PipelineSpec,
    /// Incremental pipelines: the last committed cursor (`None`: from the start).
    pub cursor: Option<serde_json::Value>,
    /// Rows per batch asked of the source (0: the default).
    pub batch_rows: usize,
    /// The organization's keyed hash, for the mappings that scramble their value
    /// ([`PipelineSpec::uses_scramble`]); a run that scrambles without one fails before it
    /// writes anything.
    pub scrambler: Option<Scrambler>,
}

impl std::fmt::Debug for RunInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunInput")
            .field("spec", &self.spec)
            .field("cursor", &self.cursor)
            .field("batch_rows", &self.batch_rows)
            .field("scrambler", &self.scrambler.as_ref().map(|_| ".."))
            .finish()
    }
}

/// What a successful run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOutcome {
    /// Records the source answered.
    pub records_read: u64,
    /// Records written (and committed).
    pub records_written: u64,
    /// Records rejected by rules, casts or failed evaluations.
    pub records_rejected: u64,
    /// Failed warning-level validation rules.
    pub warnings: u64,
    /// `warnings` per rule (`rules[3]` → count), for the rules that failed at least once.
    pub warnings_by_rule: BTreeMap<String, u64>,
    /// Records the filter skipped.
    pub skipped: u64,
    /// Incremental pipelines: records read but neither written, rejected nor skipped — those at
    /// or after the first rejected record's cursor, read again next run. 0 for other modes, so
    /// `records_read = records_written + records_rejected + skipped + held_back` always holds.
    pub held_back: u64,
    /// Incremental pipelines: the cursor to store once committed — the greatest cursor value
    /// written, or the input cursor when nothing was written. `None` for other modes.
    pub new_cursor: Option<serde_json::Value>,
}

/// A run's running totals after a batch. While a run is going, `pending` counts the records
/// read but not yet decided: an incremental run keeps records that share the last cursor value
/// (or follow a rejected record) until it knows whether they are written or held back. So
/// `read = written + rejected + skipped + pending` holds after every batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub read: u64,
    pub written: u64,
    pub rejected: u64,
    /// Records the filter skipped.
    pub skipped: u64,
    /// Records read but not yet written, rejected or skipped (incremental runs only).
    pub pending: u64,
    /// Failed warning rules (the records were written).
    pub warnings: u64,
}

/// Who watches a run: progress, rejected records, cancellation.
pub trait RunObserver: Send + Sync {
    /// After each batch: running totals (for the progress bar and the run page).
    fn progress(&self, progress: Progress) -> impl Future<Output = ()> + Send;

    /// Rejected records to keep as per-record errors (`row` counts from the start of the run).
    fn rejected(
        &self,
        rejected: Vec<Rejected>,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Checked between batches: true stops the run (the writer is aborted, nothing changes).
    fn cancelled(&self) -> bool;
}

/// Runs `input.spec` once: validates it, reads the source (from the cursor, for incremental
/// pipelines), builds the plan from the schema the source answers, applies it to each batch,
/// reports rejected records and progress, writes the accepted records, and commits at the end.
/// On any error or cancellation the writer is aborted and the destination is unchanged.
///
/// Incremental runs: the source answers records in ascending cursor order. Once a record is
/// rejected at cursor value `c`, no record with a cursor `>= c` is written in this run (they are
/// read again next run), and the new cursor is the greatest written cursor below `c`. Records
/// sharing the last cursor value of a batch are held back until a greater value shows that none
/// of their peers is rejected.
pub async fn execute<S: BatchSource, D: BatchDestination, O: RunObserver>(
    source: &S,
    destination: &D,
    input: RunInput<'_>,
    observer: &O,
) -> Result<RunOutcome, EngineError> {
    let spec = input.spec;
    spec.validate()?;
    if observer.cancelled() {
        return Err(EngineError::Cancelled);
    }
    let incremental = spec.mode == Mode::Incremental;
    let cursor = match (&spec.cursor, incremental) {
        (Some(field), true) => Some(CursorSpec {
            field: field.clone(),
            after: input.cursor.clone(),
        }),
        _ => None,
    };
    let read = ReadSpec {
        object: spec.source.object.clone(),
        fields: spec.read_fields(),
        cursor,
        batch_rows: if input.batch_rows == 0 {
            DEFAULT_BATCH_ROWS
        } else {
            input.batch_rows
        },
    };
    // A run that only renames fields into PostgreSQL passes PostgreSQL's values on in their
    // binary form; should the plan do more after all, the source is read again as usual.
    let binary = destination.takes_pg_binary() && renames_only(spec);
    let (schema, stream) = if binary {
        source.read_pg_binary(read.clone()).await?
    } else {
        source.read(read.clone()).await?
    };
    let plan = Plan::new(spec, schema)?;
    let (plan, stream) = if binary && !plan.is_trivial() {
        drop(stream);
        let (schema, stream) = source.read(read).await?;
        (Plan::new(spec, schema)?, stream)
    } else {
        (plan, stream)
    };
    let mut plan = plan;
    if let Some(scrambler) = &input.scrambler {
        plan = plan.with_scrambler(Arc::clone(scrambler));
    }
    plan.check_scrambler()?;
    let plan = Arc::new(plan);
    let mut writer = destination
        .writer(WriteSpec {
            object: spec.destination.object.clone(),
            schema: plan.output_schema(),
            mode: spec.write_mode(),
        })
        .await?;

    let totals = match drive(&plan, stream, &mut writer, incremental, observer).await {
        Ok(totals) if !observer.cancelled() => totals,
        Ok(_) => {
            writer.abort().await;
            return Err(EngineError::Cancelled);
        }
        Err(e) => {
            writer.abort().await;
            return Err(e);
        }
    };
    let threshold = spec.rejection_threshold();
    if totals.rejected > 0 && too_many(totals.rejected, totals.read, threshold) {
        writer.abort().await;
        return Err(EngineError::TooManyRejected {
            rejected: totals.rejected,
            read: totals.read,
            percent: percent(totals.rejected, totals.read),
            threshold,
        });
    }
    let committed = writer.commit().await?;
    if committed != totals.written {
        tracing::debug!(
            committed,
            written = totals.written,
            "the destination counted the committed records differently"
        );
    }
    // Incremental runs stop writing at the first rejected cursor: what was read after it (and
    // its accepted peers) is held back for the next run. Other modes write every record that
    // was neither rejected nor skipped.
    let held_back = if incremental {
        totals
            .read
            .saturating_sub(totals.written)
            .saturating_sub(totals.rejected)
            .saturating_sub(totals.skipped)
    } else {
        0
    };
    tracing::debug!(
        read = totals.read,
        written = totals.written,
        rejected = totals.rejected,
        warnings = totals.warnings,
        skipped = totals.skipped,
        held_back,
        "run committed"
    );
    Ok(RunOutcome {
        records_read: totals.read,
        records_written: totals.written,
        records_rejected: totals.rejected,
        warnings: totals.warnings,
        warnings_by_rule: totals.warnings_by_rule,
        skipped: totals.skipped,
        held_back,
        new_cursor: if incremental {
            totals.last_cursor.or(input.cursor)
        } else {
            None
        },
    })
}

/// Whether the pipeline writes every value it reads as it is: no filter, no rule, no transform,
/// no cast (then [`Plan::is_trivial`]).
fn renames_only(spec: &PipelineSpec) -> bool {
    spec.filter.is_none()
        && spec.rules.is_empty()
        && spec
            .mappings
            .iter()
            .all(|m| m.transform.is_none() && m.cast.is_none())
}

#[derive(Debug, Default)]
struct Totals {
    read: u64,
    written: u64,
    rejected: u64,
    warnings: u64,
    warnings_by_rule: BTreeMap<String, u64>,
    skipped: u64,
    last_cursor: Option<serde_json::Value>,
}

impl Totals {
    fn progress(&self) -> Progress {
        let decided = self.written + self.rejected + self.skipped;
        Progress {
            read: self.read,
            written: self.written,
            rejected: self.rejected,
            skipped: self.skipped,
            pending: self.read.saturating_sub(decided),
            warnings: self.warnings,
        }
    }
}

/// `part` in percent of `whole` (100 when `whole` is 0).
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 100.0;
    }
    // Record counts are far below 2^52: the conversion is exact.
    #[allow(clippy::cast_precision_loss)]
    let (part, whole) = (part as f64, whole as f64);
    part * 100.0 / whole
}

/// Whether `rejected` of `read` is over `threshold` percent.
fn too_many(rejected: u64, read: u64, threshold: f64) -> bool {
    percent(rejected, read) > threshold
}

/// How often a run whose rules are being evaluated looks whether it was cancelled.
const CANCEL_POLL: Duration = Duration::from_millis(200);

/// Applies the plan to `batch` on a blocking thread, never on the threads that answer
/// requests; a cancellation while it runs interrupts the evaluation.
async fn apply<O: RunObserver>(
    plan: &Arc<Plan>,
    batch: &RecordBatch,
    observer: &O,
) -> Result<Applied, EngineError> {
    if plan.is_trivial() {
        return plan.apply(batch);
    }
    let task = {
        let plan = Arc::clone(plan);
        let batch = batch.clone();
        tokio::task::spawn_blocking(move || plan.apply(&batch))
    };
    tokio::pin!(task);
    loop {
        tokio::select! {
            joined = &mut task => {
                return match joined {
                    Ok(Err(EngineError::Limit { .. })) if observer.cancelled() => {
                        Err(EngineError::Cancelled)
                    }
                    Ok(applied) => applied,
                    Err(_) => Err(EngineError::Rule(
                        "applying the rules to a batch stopped unexpectedly".to_owned(),
                    )),
                };
            }
            () = tokio::time::sleep(CANCEL_POLL) => {
                if observer.cancelled() {
                    plan.interrupter().store(true, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Reads, applies and writes every batch; commits nothing.
async fn drive<W: BatchWriter, O: RunObserver>(
    plan: &Arc<Plan>,
    mut stream: BatchStream,
    writer: &mut W,
    incremental: bool,
    observer: &O,
) -> Result<Totals, EngineError> {
    let mut totals = Totals::default();
    let mut cursor = CursorState::default();
    loop {
        if observer.cancelled() {
            return Err(EngineError::Cancelled);
        }
        let Some(batch) = stream.next().await else {
            break;
        };
        let batch = batch?;
        let applied = apply(plan, &batch, observer).await?;
        let offset = totals.read;
        totals.read += count(batch.num_rows());
        totals.warnings += applied.warnings;
        for (rule, n) in &applied.warnings_by_rule {
            *totals.warnings_by_rule.entry(rule.clone()).or_default() += n;
        }
        totals.skipped += applied.skipped;
        totals.rejected += count(applied.rejected.len());
        let first_rejected = applied.rejected.iter().map(|r| r.row).min();

        if incremental {
            cursor
                .write(plan, &batch, &applied, first_rejected, writer, &mut totals)
                .await?;
        } else if applied.batch.num_rows() > 0 {
            writer.write(&applied.batch).await?;
            totals.written += count(applied.batch.num_rows());
        }

        if !applied.rejected.is_empty() {
            let offset = usize::try_from(offset).unwrap_or(usize::MAX);
            let rejected = applied
                .rejected
                .into_iter()
                .map(|mut r| {
                    r.row = r.row.saturating_add(offset);
                    r
                })
                .collect();
            observer.rejected(rejected).await?;
        }
        observer.progress(totals.progress()).await;
    }
    if incremental {
        cursor.flush(writer, &mut totals).await?;
    }
    Ok(totals)
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Incremental runs: what is held back and where writing stopped.
#[derive(Debug, Default)]
struct CursorState {
    /// Accepted records sharing `pending_cursor`, the last cursor value seen so far.
    pending: Vec<RecordBatch>,
    pending_cursor: Option<serde_json::Value>,
    /// A record was rejected: nothing more is written.
    stopped: bool,
}

impl CursorState {
    async fn write<W: BatchWriter>(
        &mut self,
        plan: &Plan,
        input: &RecordBatch,
        applied: &Applied,
        first_rejected: Option<usize>,
        writer: &mut W,
        totals: &mut Totals,
    ) -> Result<(), EngineError> {
        if self.stopped {
            return Ok(());
        }
        let column = plan
            .cursor_column()
            .and_then(|c| input.columns().get(c).map(|a| (c, a)))
            .ok_or_else(|| EngineError::Rule("the batch has no cursor field".to_owned()))?;
        let field_type = plan
            .source_schema()
            .fields()
            .get(column.0)
            .map(|f| field_meta(f).field_type)
            .unwrap_or(lockstep_connectors::FieldType::String);
        let view = ColumnView::new(column.1, field_type);
        let cursor_at = |row: usize| convert::cell_to_json(&view.cell(row));
        let accepted = &applied.accepted_rows;
        let cursor_of_accepted = |k: usize| accepted.get(k).map(|row| cursor_at(*row));

        match first_rejected {
            Some(r) => {
                let c = cursor_at(r);
                if self.pending_cursor.as_ref() == Some(&c) {
                    self.pending.clear();
                    self.pending_cursor = None;
                } else {
                    self.flush(writer, totals).await?;
                }
                // accepted records before the rejected one, without its peers
                let mut k = accepted.partition_point(|row| *row < r);
                while k > 0 && cursor_of_accepted(k - 1).as_ref() == Some(&c) {
                    k -= 1;
                }
                if k > 0 {
                    write(writer, &applied.batch.slice(0, k), totals).await?;
                    totals.last_cursor = cursor_of_accepted(k - 1);
                }
                self.stopped = true;
            }
            None => {
                let n = input.num_rows();
                if n == 0 {
                    return Ok(());
                }
                let last = cursor_at(n - 1);
                if self.pending_cursor.is_some() && self.pending_cursor.as_ref() != Some(&last) {
                    self.flush(writer, totals).await?;
                }
                let m = accepted.len();
                let mut t = m;
                while t > 0 && cursor_of_accepted(t - 1).as_ref() == Some(&last) {
                    t -= 1;
                }
                if t > 0 {
                    write(writer, &applied.batch.slice(0, t), totals).await?;
                    totals.last_cursor = cursor_of_accepted(t - 1);
                }
                if m > t {
                    self.pending.push(applied.batch.slice(t, m - t));
                    self.pending_cursor = Some(last);
                }
            }
        }
        Ok(())
    }

    /// Writes what is held back.
    async fn flush<W: BatchWriter>(
        &mut self,
        writer: &mut W,
        totals: &mut Totals,
    ) -> Result<(), EngineError> {
        let pending = std::mem::take(&mut self.pending);
        let cursor = self.pending_cursor.take();
        if pending.is_empty() {
            return Ok(());
        }
        for batch in &pending {
            write(writer, batch, totals).await?;
        }
        totals.last_cursor = cursor;
        Ok(())
    }
}

async fn write<W: BatchWriter>(
    writer: &mut W,
    batch: &RecordBatch,
    totals: &mut Totals,
) -> Result<(), EngineError> {
    if batch.num_rows() > 0 {
        writer.write(batch).await?;
        totals.written += count(batch.num_rows());
    }
    Ok(())
}
