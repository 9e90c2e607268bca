//! Throughput of one validation rule and two renames over 1,000,000 rows (ignored by default;
//! run with `cargo test -p lockstep-engine --release -- --ignored --nocapture million`).

use crate::{batch, meta, schema, spec_with};
use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
use lockstep_connectors::FieldType;
use lockstep_engine::Plan;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

#[test]
#[ignore = "a benchmark: run in release"]
#[allow(clippy::print_stderr, clippy::cast_precision_loss)]
fn a_million_rows_through_one_rule_and_two_renames() {
    const ROWS: usize = 1_000_000;
    const BATCH: usize = 8192;
    let schema = schema(&[
        meta("id", FieldType::Integer, "int8", false, true),
        meta("name", FieldType::String, "text", true, false),
        meta("price", FieldType::Float, "float8", true, false),
    ]);
    let batches: Vec<_> = (0..ROWS)
        .step_by(BATCH)
        .map(|start| {
            let end = (start + BATCH).min(ROWS);
            batch(
                &schema,
                vec![
                    Arc::new(Int64Array::from_iter_values(start as i64..end as i64)) as ArrayRef,
                    Arc::new(StringArray::from_iter_values(
                        (start..end).map(|i| format!("item {i}")),
                    )),
                    Arc::new(Float64Array::from_iter_values(
                        (start..end).map(|i| if i % 1000 == 0 { -1.0 } else { i as f64 / 7.0 }),
                    )),
                ],
            )
        })
        .collect();
    let spec = spec_with(json!({
        "mappings": [
            {"source": "id", "destination": "item_id"},
            {"source": "name", "destination": "label"},
            {"source": "price", "destination": "price"}
        ],
        "rules": [{"kind": "validation", "expression": "price >= 0.0"}]
    }));
    let plan = Plan::new(&spec, schema).unwrap();
    let started = Instant::now();
    let (mut written, mut rejected) = (0, 0);
    for b in &batches {
        let applied = plan.apply(b).unwrap();
        written += applied.batch.num_rows();
        rejected += applied.rejected.len();
    }
    let elapsed = started.elapsed();
    assert_eq!((written, rejected), (ROWS - 1000, 1000));
    eprintln!(
        "{ROWS} rows in {elapsed:?}: {:.0} rows/s",
        ROWS as f64 / elapsed.as_secs_f64()
    );
}
