//! Throughput of a plan — one validation rule and two renames — over 1,000,000 rows in
//! batches of 8192: `cargo bench -p lockstep-engine`. It prints rows per second; the
//! end-to-end figures against other tools are `bench/run.sh`'s (BENCHMARKS.md).
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::cast_possible_wrap
)]

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{Schema, SchemaRef};
use lockstep_connectors::batch::arrow_field;
use lockstep_connectors::{ConnectionKind, FieldMeta, FieldType};
use lockstep_engine::{PipelineSpec, Plan};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

const ROWS: usize = 1_000_000;
const BATCH: usize = 8192;

fn field(name: &str, field_type: FieldType, native: &str, primary_key: bool) -> FieldMeta {
    FieldMeta {
        name: name.to_owned(),
        field_type,
        native: native.to_owned(),
        nullable: !primary_key,
        primary_key,
    }
}

fn main() {
    let fields = [
        field("id", FieldType::Integer, "int8", true),
        field("name", FieldType::String, "text", false),
        field("price", FieldType::Float, "float8", false),
    ];
    let schema: SchemaRef = Arc::new(Schema::new(
        fields
            .iter()
            .map(|f| arrow_field(f, ConnectionKind::Postgres))
            .collect::<Vec<_>>(),
    ));
    let batches: Vec<RecordBatch> = (0..ROWS)
        .step_by(BATCH)
        .map(|start| {
            let end = (start + BATCH).min(ROWS);
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from_iter_values(start as i64..end as i64)),
                Arc::new(StringArray::from_iter_values(
                    (start..end).map(|i| format!("item {i}")),
                )),
                Arc::new(Float64Array::from_iter_values(
                    (start..end).map(|i| if i % 1000 == 0 { -1.0 } else { i as f64 / 7.0 }),
                )),
            ];
            RecordBatch::try_new(Arc::clone(&schema), columns).unwrap()
        })
        .collect();
    let spec: PipelineSpec = serde_json::from_value(json!({
        "source": {"connection_id": "src", "object": "public.items"},
        "destination": {"connection_id": "dst", "object": "items_copy"},
        "mode": "full_refresh",
        "mappings": [
            {"source": "id", "destination": "item_id"},
            {"source": "name", "destination": "label"},
            {"source": "price", "destination": "price"}
        ],
        "rules": [{"kind": "validation", "expression": "price >= 0.0"}]
    }))
    .unwrap();
    let plan = Plan::new(&spec, schema).unwrap();
    for round in 1..=3 {
        let started = Instant::now();
        let (mut written, mut rejected) = (0, 0);
        for b in &batches {
            let applied = plan.apply(b).unwrap();
            written += applied.batch.num_rows();
            rejected += applied.rejected.len();
        }
        let elapsed = started.elapsed();
        assert_eq!((written, rejected), (ROWS - 1000, 1000));
        println!(
            "round {round}: {ROWS} rows in {:.3} s, {:.0} rows/s",
            elapsed.as_secs_f64(),
            ROWS as f64 / elapsed.as_secs_f64()
        );
    }
}
