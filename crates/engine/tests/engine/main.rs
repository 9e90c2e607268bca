//! The engine's integration tests: pipeline definitions, plans over Arrow batches, and the run
//! loop against in-memory sources and destinations (test doubles of the connectors' batch
//! contract).

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod plan;
mod run;
mod spec;
mod types;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Schema, SchemaRef};
use lockstep_connectors::batch::arrow_field;
use lockstep_connectors::{ConnectionKind, FieldMeta, FieldType};
use lockstep_engine::PipelineSpec;
use std::sync::Arc;

/// Discovered field metadata.
pub fn meta(
    name: &str,
    field_type: FieldType,
    native: &str,
    nullable: bool,
    pk: bool,
) -> FieldMeta {
    FieldMeta {
        name: name.to_owned(),
        field_type,
        native: native.to_owned(),
        nullable,
        primary_key: pk,
    }
}

/// The Arrow schema a PostgreSQL source would answer for these fields.
pub fn schema(fields: &[FieldMeta]) -> SchemaRef {
    Arc::new(Schema::new(
        fields
            .iter()
            .map(|f| arrow_field(f, ConnectionKind::Postgres))
            .collect::<Vec<_>>(),
    ))
}

/// A batch of `schema` from columns.
pub fn batch(schema: &SchemaRef, columns: Vec<ArrayRef>) -> RecordBatch {
    RecordBatch::try_new(Arc::clone(schema), columns).unwrap()
}

/// A pipeline definition from JSON.
pub fn spec(json: serde_json::Value) -> PipelineSpec {
    serde_json::from_value(json).unwrap()
}

/// A pipeline definition from the parts tests vary, the endpoints filled in.
pub fn spec_with(mut parts: serde_json::Value) -> PipelineSpec {
    let object = parts.as_object_mut().unwrap();
    object
        .entry("source")
        .or_insert(serde_json::json!({"connection_id": "src", "object": "public.items"}));
    object
        .entry("destination")
        .or_insert(serde_json::json!({"connection_id": "dst", "object": "items_copy"}));
    object
        .entry("mode")
        .or_insert(serde_json::json!("full_refresh"));
    spec(parts)
}

/// The rows of a batch as JSON objects (the column types tests use).
pub fn rows(batch: &RecordBatch) -> Vec<serde_json::Map<String, serde_json::Value>> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type};
    use arrow_schema::DataType;
    let schema = batch.schema();
    (0..batch.num_rows())
        .map(|row| {
            schema
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(f, c)| {
                    let v = if c.is_null(row) {
                        serde_json::Value::Null
                    } else {
                        match c.data_type() {
                            DataType::Int64 => c.as_primitive::<Int64Type>().value(row).into(),
                            DataType::Float64 => c.as_primitive::<Float64Type>().value(row).into(),
                            DataType::Utf8 => c.as_string::<i32>().value(row).into(),
                            DataType::Boolean => c.as_boolean().value(row).into(),
                            other => format!("<{other}>").into(),
                        }
                    };
                    (f.name().clone(), v)
                })
                .collect()
        })
        .collect()
}
