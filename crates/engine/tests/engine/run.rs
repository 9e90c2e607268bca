//! The run loop against in-memory test doubles of the batch contract: a source answering
//! batches from a vector, a destination whose writer keeps batches aside until commit.

use crate::{batch, meta, rows, schema, spec_with};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::SchemaRef;
use futures_util::stream;
use lockstep_connectors::batch::{
    BatchDestination, BatchSource, BatchStream, BatchWriter, ReadSpec, WriteMode, WriteSpec,
};
use lockstep_connectors::{ConnectorError, FailureKind, FieldType};
use lockstep_engine::{
    EngineError, PipelineSpec, Progress, Rejected, RunInput, RunObserver, execute,
};
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

type Row = Map<String, Value>;

/// A source answering `batches`, then (when `fail_after` is set) an error after that many.
struct VecSource {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    fail_after: Option<usize>,
    reads: Mutex<Vec<ReadSpec>>,
}

impl VecSource {
    fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> VecSource {
        VecSource {
            schema,
            batches,
            fail_after: None,
            reads: Mutex::new(Vec::new()),
        }
    }
}

impl BatchSource for VecSource {
    async fn read(&self, spec: ReadSpec) -> Result<(SchemaRef, BatchStream), ConnectorError> {
        self.reads.lock().unwrap().push(spec);
        let mut items: Vec<Result<RecordBatch, ConnectorError>> =
            self.batches.iter().cloned().map(Ok).collect();
        if let Some(n) = self.fail_after {
            items.truncate(n);
            items.push(Err(ConnectorError::failed(
                FailureKind::Timeout,
                "the source stopped answering",
            )));
        }
        Ok((Arc::clone(&self.schema), Box::pin(stream::iter(items))))
    }
}

/// A destination holding one table as rows; writers commit all or nothing.
#[derive(Default)]
struct VecDestination {
    table: Arc<Mutex<Vec<Row>>>,
    specs: Mutex<Vec<WriteSpec>>,
    aborted: Arc<AtomicUsize>,
    committed: Arc<AtomicUsize>,
}

struct VecWriter {
    table: Arc<Mutex<Vec<Row>>>,
    mode: WriteMode,
    staged: Vec<Row>,
    aborted: Arc<AtomicUsize>,
    committed: Arc<AtomicUsize>,
}

impl BatchDestination for VecDestination {
    type Writer = VecWriter;

    async fn writer(&self, spec: WriteSpec) -> Result<VecWriter, ConnectorError> {
        let mode = spec.mode.clone();
        self.specs.lock().unwrap().push(spec);
        Ok(VecWriter {
            table: Arc::clone(&self.table),
            mode,
            staged: Vec::new(),
            aborted: Arc::clone(&self.aborted),
            committed: Arc::clone(&self.committed),
        })
    }
}

impl BatchWriter for VecWriter {
    async fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        self.staged.extend(rows(batch));
        Ok(())
    }

    async fn commit(self) -> Result<u64, ConnectorError> {
        let mut table = self.table.lock().unwrap();
        let n = self.staged.len() as u64;
        match &self.mode {
            WriteMode::Replace => *table = self.staged,
            WriteMode::Append => table.extend(self.staged),
            WriteMode::Upsert { key } => {
                for row in self.staged {
                    let same = |r: &Row| key.iter().all(|k| r.get(k) == row.get(k));
                    match table.iter_mut().find(|r| same(r)) {
                        Some(existing) => *existing = row,
                        None => table.push(row),
                    }
                }
            }
        }
        self.committed.fetch_add(1, Ordering::SeqCst);
        Ok(n)
    }

    async fn abort(self) {
        self.aborted.fetch_add(1, Ordering::SeqCst);
    }
}

/// Records progress and rejected records; cancels once `cancel_after` batches are done.
#[derive(Default)]
struct Observer {
    progress: Mutex<Vec<(u64, u64, u64)>>,
    last: Mutex<Progress>,
    rejected: Mutex<Vec<Rejected>>,
    cancel_after: Option<usize>,
    cancel: AtomicBool,
}

impl RunObserver for Observer {
    async fn progress(&self, progress: Progress) {
        let Progress {
            read,
            written,
            rejected,
            skipped,
            pending,
            ..
        } = progress;
        assert_eq!(read, written + rejected + skipped + pending, "{progress:?}");
        *self.last.lock().unwrap() = progress;
        let mut p = self.progress.lock().unwrap();
        p.push((read, written, rejected));
        if self.cancel_after == Some(p.len()) {
            self.cancel.store(true, Ordering::SeqCst);
        }
    }

    async fn rejected(&self, rejected: Vec<Rejected>) -> Result<(), EngineError> {
        self.rejected.lock().unwrap().extend(rejected);
        Ok(())
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
}

fn orders_schema() -> SchemaRef {
    schema(&[
        meta("id", FieldType::Integer, "int8", false, true),
        meta("seq", FieldType::Integer, "int8", false, false),
        meta("price", FieldType::Float, "float8", true, false),
        meta("note", FieldType::String, "text", true, false),
    ])
}

/// Orders `(id, seq, price)`; the note is "note <id>".
fn orders(schema: &SchemaRef, rows: &[(i64, i64, f64)]) -> RecordBatch {
    batch(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef,
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| format!("note {}", r.0)),
            )),
        ],
    )
}

fn ids(table: &[Row], field: &str) -> Vec<i64> {
    table.iter().map(|r| r[field].as_i64().unwrap()).collect()
}

fn input(spec: &PipelineSpec) -> RunInput<'_> {
    RunInput {
        spec,
        cursor: None,
        batch_rows: 2,
        scrambler: None,
    }
}

fn copy_spec(mode: &str) -> PipelineSpec {
    spec_with(json!({
        "mode": mode,
        "key": ["order_id"],
        "mappings": [
            {"source": "id", "destination": "order_id"},
            {"source": "price", "destination": "amount"}
        ],
        "rules": [{"kind": "validation", "expression": "price >= 0.0", "message": "no negative prices"}],
        // these runs are about what happens to rejected records, not about the threshold
        "max_rejected_percent": 100
    }))
}

#[tokio::test]
async fn a_run_commits_what_it_accepted() {
    let schema = orders_schema();
    let source = VecSource::new(
        Arc::clone(&schema),
        vec![
            orders(&schema, &[(1, 1, 10.0), (2, 2, -1.0)]),
            orders(&schema, &[(3, 3, 5.0)]),
        ],
    );
    let destination = VecDestination::default();
    destination.table.lock().unwrap().push(
        json!({"order_id": 99, "amount": 1.0})
            .as_object()
            .unwrap()
            .clone(),
    );
    let observer = Observer::default();
    let spec = copy_spec("full_refresh");

    let outcome = execute(&source, &destination, input(&spec), &observer)
        .await
        .unwrap();
    assert_eq!(outcome.records_read, 3);
    assert_eq!(outcome.records_written, 2);
    assert_eq!(outcome.records_rejected, 1);
    assert_eq!(outcome.new_cursor, None);
    assert_eq!(ids(&destination.table.lock().unwrap(), "order_id"), [1, 3]);
    assert_eq!(destination.committed.load(Ordering::SeqCst), 1);
    assert_eq!(destination.aborted.load(Ordering::SeqCst), 0);
    assert_eq!(*observer.progress.lock().unwrap(), [(2, 1, 1), (3, 2, 1)]);
    let rejected = observer.rejected.lock().unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].row, 1);
    assert_eq!(rejected[0].reason, "no negative prices");

    let read = &source.reads.lock().unwrap()[0];
    assert_eq!(read.object, "public.items");
    assert_eq!(read.fields, Some(vec!["id".to_owned(), "price".to_owned()]));
    assert_eq!(read.cursor, None);
    assert_eq!(read.batch_rows, 2);
    let write = &destination.specs.lock().unwrap()[0];
    assert_eq!(write.object, "items_copy");
    assert_eq!(write.mode, WriteMode::Replace);
    let names: Vec<&str> = write
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["order_id", "amount"]);
}

#[tokio::test]
async fn rejected_rows_count_from_the_start_of_the_run() {
    let schema = orders_schema();
    let source = VecSource::new(
        Arc::clone(&schema),
        vec![
            orders(&schema, &[(1, 1, 1.0), (2, 2, 2.0)]),
            orders(&schema, &[(3, 3, -3.0), (4, 4, -4.0)]),
        ],
    );
    let destination = VecDestination::default();
    let observer = Observer::default();
    let spec = copy_spec("append");
    execute(&source, &destination, input(&spec), &observer)
        .await
        .unwrap();
    let rejected = observer.rejected.lock().unwrap();
    let rows: Vec<usize> = rejected.iter().map(|r| r.row).collect();
    assert_eq!(rows, [2, 3]);
    assert_eq!(rejected[0].key, json!({"id": 3}));
}

#[tokio::test]
async fn a_source_error_mid_stream_aborts_and_changes_nothing() {
    let schema = orders_schema();
    let mut source = VecSource::new(
        Arc::clone(&schema),
        vec![
            orders(&schema, &[(1, 1, 1.0)]),
            orders(&schema, &[(2, 2, 2.0)]),
        ],
    );
    source.fail_after = Some(1);
    let destination = VecDestination::default();
    let before = json!({"order_id": 99, "amount": 1.0})
        .as_object()
        .unwrap()
        .clone();
    destination.table.lock().unwrap().push(before.clone());
    let observer = Observer::default();
    let spec = copy_spec("full_refresh");

    let e = execute(&source, &destination, input(&spec), &observer)
        .await
        .unwrap_err();
    assert!(matches!(e, EngineError::Connector(_)), "{e:?}");
    assert_eq!(destination.aborted.load(Ordering::SeqCst), 1);
    assert_eq!(destination.committed.load(Ordering::SeqCst), 0);
    assert_eq!(*destination.table.lock().unwrap(), [before]);
}

#[tokio::test]
async fn cancelling_aborts_and_changes_nothing() {
    let schema = orders_schema();
    let source = VecSource::new(
        Arc::clone(&schema),
        vec![
            orders(&schema, &[(1, 1, 1.0)]),
            orders(&schema, &[(2, 2, 2.0)]),
            orders(&schema, &[(3, 3, 3.0)]),
        ],
    );
    let destination = VecDestination::default();
    let observer = Observer {
        cancel_after: Some(1),
        ..Observer::default()
    };
    let spec = copy_spec("append");
    let e = execute(&source, &destination, input(&spec), &observer)
        .await
        .unwrap_err();
    assert!(matches!(e, EngineError::Cancelled));
    assert_eq!(e.to_string(), "cancelled");
    assert_eq!(destination.aborted.load(Ordering::SeqCst), 1);
    assert_eq!(destination.committed.load(Ordering::SeqCst), 0);
    assert!(destination.table.lock().unwrap().is_empty());
    assert_eq!(
        observer.progress.lock().unwrap().len(),
        1,
        "no batch after the cancel"
    );
}

#[tokio::test]
async fn an_invalid_definition_reads_nothing() {
    let schema = orders_schema();
    let source = VecSource::new(Arc::clone(&schema), vec![]);
    let destination = VecDestination::default();
    let spec = spec_with(json!({"mode": "upsert"}));
    let e = execute(&source, &destination, input(&spec), &Observer::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, EngineError::Spec(s) if s.field == "key"),
        "{e:?}"
    );
    assert!(source.reads.lock().unwrap().is_empty());
    assert!(destination.specs.lock().unwrap().is_empty());
}

fn incremental_spec() -> PipelineSpec {
    spec_with(json!({
        "mode": "incremental",
        "cursor": "seq",
        "key": ["id"],
        "mappings": [
            {"source": "id", "destination": "id"},
            {"source": "seq", "destination": "seq"},
            {"source": "price", "destination": "price"}
        ],
        "rules": [{"kind": "validation", "expression": "price >= 0.0"}],
        "max_rejected_percent": 100
    }))
}

#[tokio::test]
async fn the_incremental_cursor_never_passes_a_rejected_record() {
    let schema = orders_schema();
    // cursor 20 is shared across the batch boundary and by the rejected record (id 5)
    let source = VecSource::new(
        Arc::clone(&schema),
        vec![
            orders(&schema, &[(1, 10, 1.0), (2, 10, 1.0), (3, 20, 1.0)]),
            orders(&schema, &[(4, 20, 1.0), (5, 20, -1.0), (6, 20, 1.0)]),
            orders(&schema, &[(7, 30, 1.0)]),
        ],
    );
    let destination = VecDestination::default();
    let observer = Observer::default();
    let spec = incremental_spec();
    let outcome = execute(
        &source,
        &destination,
        RunInput {
            spec: &spec,
            cursor: Some(json!(5)),
            batch_rows: 3,
            scrambler: None,
        },
        &observer,
    )
    .await
    .unwrap();

    let read = source.reads.lock().unwrap()[0].clone();
    let cursor = read.cursor.as_ref().unwrap();
    assert_eq!(
        (cursor.field.as_str(), &cursor.after),
        ("seq", &Some(json!(5)))
    );
    assert_eq!(
        destination.specs.lock().unwrap()[0].mode,
        WriteMode::Upsert {
            key: vec!["id".into()]
        }
    );
    assert_eq!(ids(&destination.table.lock().unwrap(), "id"), [1, 2]);
    assert_eq!(outcome.records_read, 7);
    assert_eq!(outcome.records_written, 2);
    assert_eq!(outcome.records_rejected, 1);
    assert_eq!(outcome.new_cursor, Some(json!(10)));

    // the first record rejected in a batch at a cursor equal to the previous batch's last
    let source = VecSource::new(
        Arc::clone(&schema),
        vec![
            orders(&schema, &[(1, 10, 1.0), (2, 20, 1.0)]),
            orders(&schema, &[(3, 20, -1.0), (4, 30, 1.0)]),
        ],
    );
    let destination = VecDestination::default();
    let outcome = execute(&source, &destination, input(&spec), &Observer::default())
        .await
        .unwrap();
    assert_eq!(ids(&destination.table.lock().unwrap(), "id"), [1]);
    assert_eq!(outcome.new_cursor, Some(json!(10)));

    // rejected at the very first cursor value: nothing written, the cursor stays
    let source = VecSource::new(
        Arc::clone(&schema),
        vec![orders(
            &schema,
            &[(1, 10, 1.0), (2, 10, -1.0), (3, 11, 1.0)],
        )],
    );
    let destination = VecDestination::default();
    let outcome = execute(
        &source,
        &destination,
        RunInput {
            spec: &spec,
            cursor: Some(json!(7)),
            batch_rows: 3,
            scrambler: None,
        },
        &Observer::default(),
    )
    .await
    .unwrap();
    assert!(destination.table.lock().unwrap().is_empty());
    assert_eq!(outcome.records_written, 0);
    assert_eq!(outcome.new_cursor, Some(json!(7)));
}

#[tokio::test]
async fn incremental_runs_advance_and_reruns_do_not_duplicate() {
    let schema = orders_schema();
    let batches = vec![
        orders(&schema, &[(1, 10, 1.0), (2, 20, 1.0)]),
        orders(&schema, &[(3, 20, 1.0), (4, 30, 1.0)]),
        orders(&schema, &[(5, 30, 1.0)]),
    ];
    let source = VecSource::new(Arc::clone(&schema), batches);
    let destination = VecDestination::default();
    let observer = Observer::default();
    let spec = incremental_spec();
    let outcome = execute(&source, &destination, input(&spec), &observer)
        .await
        .unwrap();
    assert_eq!(outcome.records_written, 5);
    assert_eq!(outcome.new_cursor, Some(json!(30)));
    // records sharing a batch's last cursor are held back until a greater one shows up
    assert_eq!(
        *observer.progress.lock().unwrap(),
        [(2, 1, 0), (4, 3, 0), (5, 3, 0)]
    );

    // a rerun (as after a crash before the cursor was stored) upserts the same records
    execute(&source, &destination, input(&spec), &Observer::default())
        .await
        .unwrap();
    assert_eq!(
        ids(&destination.table.lock().unwrap(), "id"),
        [1, 2, 3, 4, 5]
    );
}

#[tokio::test]
async fn upserts_update_by_key() {
    let schema = orders_schema();
    let destination = VecDestination::default();
    let spec = copy_spec("upsert");
    for price in [1.0, 2.0] {
        let source = VecSource::new(
            Arc::clone(&schema),
            vec![orders(&schema, &[(1, 1, price), (2, 2, price)])],
        );
        execute(&source, &destination, input(&spec), &Observer::default())
            .await
            .unwrap();
    }
    let table = destination.table.lock().unwrap();
    assert_eq!(ids(&table, "order_id"), [1, 2]);
    assert_eq!(table[0]["amount"], 2.0);
}

#[test]
fn the_run_future_is_send() {
    fn assert_send<T: Send>(_: T) {}
    let schema = orders_schema();
    let source = VecSource::new(schema, vec![]);
    let destination = VecDestination::default();
    let observer = Observer::default();
    let spec = copy_spec("append");
    assert_send(execute(&source, &destination, input(&spec), &observer));
}

/// About 3,800 characters from a note of 6: `'' ` replaced by a 76-character string of it.
const LONG_NOTE: &str = "note.replace('', note.replace('', note.replace('', '----------')))";

/// `note` of 48 and then of 2,400 characters.
const S2: &str = "note.replace('', note).replace('', note.replace('', note))";

/// Every pair of characters of `text`: within the static estimate (lists that are not written
/// out are assumed to hold 100 elements), past the step budget on a long text.
fn pairs(text: &str) -> String {
    format!("{text}.split('').all(a, {text}.split('').all(b, a != 'x'))")
}

/// A full refresh over a destination holding order 99, with `rules`, and `threshold` if given.
async fn refresh_with(
    rules: serde_json::Value,
    threshold: Option<f64>,
    observer: &Observer,
) -> (
    Result<lockstep_engine::RunOutcome, EngineError>,
    VecDestination,
) {
    let schema = orders_schema();
    let source = VecSource::new(
        Arc::clone(&schema),
        vec![
            orders(&schema, &[(1, 1, 10.0), (2, 2, -1.0)]),
            orders(&schema, &[(3, 3, 5.0), (4, 4, 6.0)]),
        ],
    );
    let destination = VecDestination::default();
    destination.table.lock().unwrap().push(
        json!({"order_id": 99, "amount": 1.0})
            .as_object()
            .unwrap()
            .clone(),
    );
    let mut parts = json!({
        "mode": "full_refresh",
        "mappings": [
            {"source": "id", "destination": "order_id"},
            {"source": "price", "destination": "amount"}
        ],
        "rules": rules
    });
    if let Some(t) = threshold {
        parts["max_rejected_percent"] = json!(t);
    }
    let spec = spec_with(parts);
    let result = execute(&source, &destination, input(&spec), observer).await;
    (result, destination)
}

#[tokio::test]
async fn a_run_that_rejects_more_than_its_threshold_fails_and_keeps_the_destination() {
    // the default threshold is 5%: one of four rejected fails the run
    let observer = Observer::default();
    let (result, destination) = refresh_with(
        json!([{"kind": "validation", "expression": "price >= 0.0", "message": "no negative prices"}]),
        None,
        &observer,
    )
    .await;
    match result {
        Err(e @ EngineError::TooManyRejected { .. }) => {
            let text = e.to_string();
            assert!(
                text.starts_with("1 of 4 records read were rejected (25.0%)"),
                "{text}"
            );
            assert!(text.ends_with("nothing was written"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ids(&destination.table.lock().unwrap(), "order_id"), [99]);
    assert_eq!(destination.committed.load(Ordering::SeqCst), 0);
    assert_eq!(destination.aborted.load(Ordering::SeqCst), 1);
    // the rejected record is still reported, so the person sees why
    assert_eq!(
        observer.rejected.lock().unwrap()[0].reason,
        "no negative prices"
    );

    // a rule that rejects every record never empties the destination, whatever the threshold
    let observer = Observer::default();
    let (result, destination) = refresh_with(
        json!([{"kind": "validation", "expression": "price > 1000.0"}]),
        Some(99.0),
        &observer,
    )
    .await;
    assert!(
        matches!(
            result,
            Err(EngineError::TooManyRejected {
                rejected: 4,
                read: 4,
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(ids(&destination.table.lock().unwrap(), "order_id"), [99]);

    // 0% refuses any rejection; 25% lets one of four through
    let (result, _) = refresh_with(
        json!([{"kind": "validation", "expression": "price >= 0.0"}]),
        Some(0.0),
        &Observer::default(),
    )
    .await;
    assert!(matches!(result, Err(EngineError::TooManyRejected { .. })));
    let (result, destination) = refresh_with(
        json!([{"kind": "validation", "expression": "price >= 0.0"}]),
        Some(25.0),
        &Observer::default(),
    )
    .await;
    assert_eq!(result.unwrap().records_rejected, 1);
    assert_eq!(
        ids(&destination.table.lock().unwrap(), "order_id"),
        [1, 3, 4]
    );
}

#[test]
fn thresholds_outside_0_to_100_are_refused() {
    for bad in [-1.0, 100.5] {
        let spec = spec_with(json!({"max_rejected_percent": bad}));
        let e = spec.validate().unwrap_err();
        assert_eq!(e.field, "max_rejected_percent");
    }
}

#[tokio::test]
async fn a_rule_past_its_evaluation_limits_fails_the_run_naming_the_rule() {
    // within the static estimate (lists of fields are assumed to hold 100 elements), past the
    // per-record step budget at run time: 2,000 × 2,000 iterations
    let observer = Observer::default();
    let (result, destination) = refresh_with(
        json!([{"kind": "validation", "message": "pairs", "expression": pairs(LONG_NOTE)}]),
        Some(100.0),
        &observer,
    )
    .await;
    let e = result.unwrap_err();
    assert!(matches!(e, EngineError::Limit { .. }), "{e:?}");
    // which of the two per-record limits trips first depends on how busy the machine is
    let message = e.to_string();
    assert!(
        [
            "rules[0] was stopped: it took more than 1,000,000 steps on one record",
            "rules[0] was stopped: it ran longer than 1 second on one record",
        ]
        .contains(&message.as_str()),
        "{message}"
    );
    assert_eq!(ids(&destination.table.lock().unwrap(), "order_id"), [99]);
    assert_eq!(destination.committed.load(Ordering::SeqCst), 0);

    // a string that would outgrow its limit stops the run too
    let (result, _) = refresh_with(
        json!([{"kind": "import", "target": "note",
                "expression": format!("{S2}.replace('', {S2})")}]),
        Some(100.0),
        &Observer::default(),
    )
    .await;
    let e = result.unwrap_err();
    assert_eq!(
        e.to_string(),
        "rules[0] was stopped: the result of 'replace' would be longer than 1 MiB"
    );
}

#[tokio::test]
async fn cancelling_interrupts_a_rule_in_the_middle_of_a_record() {
    let observer = Observer {
        cancel: AtomicBool::new(false),
        ..Observer::default()
    };
    let cancel_soon = async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        observer.cancel.store(true, Ordering::SeqCst);
    };
    // each record takes about a million steps (seconds in a debug build) without the
    // cancellation, which comes after 50 ms
    let run = refresh_with(
        json!([{"kind": "validation", "expression": pairs(LONG_NOTE)}]),
        Some(100.0),
        &observer,
    );
    let started = std::time::Instant::now();
    let ((result, destination), ()) = tokio::join!(run, cancel_soon);
    assert!(matches!(result, Err(EngineError::Cancelled)), "{result:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(ids(&destination.table.lock().unwrap(), "order_id"), [99]);
}

#[tokio::test]
async fn incremental_counts_add_up_with_the_records_held_back() {
    let schema = orders_schema();
    // id 3 is rejected at cursor 20: 4 shares its cursor, 5 and 6 come after it; 6 is
    // skipped by the filter, 7 is rejected again later
    let source = VecSource::new(
        Arc::clone(&schema),
        vec![
            orders(&schema, &[(1, 10, 1.0), (2, 20, 1.0), (3, 20, -1.0)]),
            orders(&schema, &[(4, 20, 1.0), (5, 30, 1.0), (6, 30, 1000.0)]),
            orders(&schema, &[(7, 40, -2.0)]),
        ],
    );
    let destination = VecDestination::default();
    let mut spec = incremental_spec();
    spec.filter = Some("price < 500.0".to_owned());
    let observer = Observer::default();
    let outcome = execute(
        &source,
        &destination,
        RunInput {
            spec: &spec,
            cursor: None,
            batch_rows: 3,
            scrambler: None,
        },
        &observer,
    )
    .await
    .unwrap();
    // while the run went, the progress named what was skipped and what was still undecided
    // (2, 4 and 5 wait behind the rejected cursor; the flush at the end holds them back)
    assert_eq!(observer.progress.lock().unwrap().len(), 3);
    let last = *observer.last.lock().unwrap();
    assert_eq!((last.read, last.rejected, last.skipped), (7, 2, 1));
    assert!(last.pending >= 3, "{last:?}");
    assert_eq!(ids(&destination.table.lock().unwrap(), "id"), [1]);
    assert_eq!(outcome.records_read, 7);
    assert_eq!(outcome.records_written, 1);
    assert_eq!(outcome.records_rejected, 2);
    assert_eq!(outcome.skipped, 1);
    // 2 (a peer of the rejected cursor), 4 and 5: read again next run
    assert_eq!(outcome.held_back, 3);
    assert_eq!(
        outcome.records_read,
        outcome.records_written + outcome.records_rejected + outcome.skipped + outcome.held_back
    );
}

#[tokio::test]
async fn other_modes_hold_nothing_back_and_count_warnings_per_rule() {
    let schema = orders_schema();
    let source = VecSource::new(
        Arc::clone(&schema),
        vec![
            orders(&schema, &[(1, 1, 10.0), (2, 2, -1.0), (3, 3, 700.0)]),
            orders(&schema, &[(4, 4, 600.0), (5, 5, 5.0)]),
        ],
    );
    let destination = VecDestination::default();
    let spec = spec_with(json!({
        "mode": "append",
        "filter": "id != 5",
        "rules": [
            {"kind": "validation", "expression": "price >= 0.0", "message": "no negative prices"},
            {"kind": "validation", "expression": "price < 500.0", "level": "warning",
             "message": "unusually high price"}
        ],
        "max_rejected_percent": 100
    }));
    let observer = Observer::default();
    let outcome = execute(&source, &destination, input(&spec), &observer)
        .await
        .unwrap();
    assert_eq!(
        (
            outcome.records_read,
            outcome.records_written,
            outcome.records_rejected
        ),
        (5, 3, 1)
    );
    assert_eq!((outcome.skipped, outcome.held_back), (1, 0));
    assert_eq!(outcome.warnings, 2);
    // the last progress already counted the skipped record and the warnings
    assert_eq!(
        *observer.last.lock().unwrap(),
        Progress {
            read: 5,
            written: 3,
            rejected: 1,
            skipped: 1,
            pending: 0,
            warnings: 2,
        }
    );
    assert_eq!(
        outcome.warnings_by_rule.into_iter().collect::<Vec<_>>(),
        [("rules[1]".to_owned(), 2)]
    );
    // the rejected record names the fields its rule refers to
    let rejected = observer.rejected.lock().unwrap();
    assert_eq!(rejected[0].rule, "rules[0]");
    assert_eq!(rejected[0].fields, ["price"]);
}

/// A source that counts the reads asked in PostgreSQL's binary form (answering them as plain
/// reads: what the engine does with the form is the connectors' to test).
struct BinaryCounting {
    inner: VecSource,
    binary: AtomicUsize,
}

impl BatchSource for BinaryCounting {
    async fn read(&self, spec: ReadSpec) -> Result<(SchemaRef, BatchStream), ConnectorError> {
        self.inner.read(spec).await
    }

    async fn read_pg_binary(
        &self,
        spec: ReadSpec,
    ) -> Result<(SchemaRef, BatchStream), ConnectorError> {
        self.binary.fetch_add(1, Ordering::SeqCst);
        self.inner.read(spec).await
    }
}

/// A destination whose writers take PostgreSQL's binary form (or not).
struct MaybeBinary(VecDestination, bool);

impl BatchDestination for MaybeBinary {
    type Writer = VecWriter;

    async fn writer(&self, spec: WriteSpec) -> Result<VecWriter, ConnectorError> {
        self.0.writer(spec).await
    }

    fn takes_pg_binary(&self) -> bool {
        self.1
    }
}

#[tokio::test]
async fn only_runs_that_write_values_as_read_ask_for_the_binary_form() {
    let renames = spec_with(json!({
        "mappings": [
            {"source": "id", "destination": "order_id"},
            {"source": "price", "destination": "amount"}
        ]
    }));
    let with_rule = copy_spec("full_refresh");
    let with_cast = spec_with(json!({
        "mappings": [
            {"source": "id", "destination": "order_id"},
            {"source": "price", "destination": "amount", "cast": "string"}
        ]
    }));
    let with_filter = spec_with(json!({
        "mappings": [{"source": "id", "destination": "order_id"}],
        "filter": "price > 1.0"
    }));
    for (spec, takes, expected) in [
        (&renames, true, 1),
        (&renames, false, 0),
        (&with_rule, true, 0),
        (&with_cast, true, 0),
        (&with_filter, true, 0),
    ] {
        let schema = orders_schema();
        let source = BinaryCounting {
            inner: VecSource::new(
                Arc::clone(&schema),
                vec![orders(&schema, &[(1, 1, 10.0), (2, 2, 3.0)])],
            ),
            binary: AtomicUsize::new(0),
        };
        let destination = MaybeBinary(VecDestination::default(), takes);
        let outcome = execute(&source, &destination, input(spec), &Observer::default())
            .await
            .unwrap();
        assert_eq!(outcome.records_read, 2);
        assert_eq!(
            source.binary.load(Ordering::SeqCst),
            expected,
            "{spec:?}, destination takes the binary form: {takes}"
        );
        // One read in all: the binary read or the plain one, never both.
        assert_eq!(source.inner.reads.lock().unwrap().len(), 1, "{spec:?}");
        assert_eq!(destination.0.committed.load(Ordering::SeqCst), 1);
    }
}
