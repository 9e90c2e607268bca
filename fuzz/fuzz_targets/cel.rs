//! A CEL expression, as an Editor writes it into a pipeline: the first byte picks where it goes
//! (filter, validation rule, import rule, mapping transform or cast, export rule) and the type
//! its result is converted to, the rest is its text.
//! The pipeline is checked as the hub checks it when it is saved (the limits, the type check
//! against the source's fields), then planned and applied to a batch of records with nulls, as a
//! run does.
#![no_main]

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use libfuzzer_sys::fuzz_target;
use lockstep_connectors::batch::arrow_field;
use lockstep_connectors::{ConnectionKind, FieldMeta, FieldType};
use lockstep_engine::{PipelineSpec, Plan};
use std::sync::{Arc, LazyLock};

fn field(name: &str, field_type: FieldType, native: &str) -> FieldMeta {
    FieldMeta {
        name: name.to_owned(),
        field_type,
        native: native.to_owned(),
        nullable: true,
        primary_key: name == "id",
    }
}

static FIELDS: LazyLock<Vec<FieldMeta>> = LazyLock::new(|| {
    vec![
        field("id", FieldType::Integer, "bigint"),
        field("name", FieldType::String, "text"),
        field("price", FieldType::Float, "double precision"),
        field("active", FieldType::Boolean, "boolean"),
        field("tags", FieldType::Json, "jsonb"),
    ]
});

static BATCH: LazyLock<Option<RecordBatch>> = LazyLock::new(|| {
    let schema = Arc::new(arrow_schema::Schema::new(
        FIELDS
            .iter()
            .map(|f| arrow_field(f, ConnectionKind::Postgres))
            .collect::<Vec<_>>(),
    ));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![
            Some(1),
            Some(-7),
            None,
            Some(i64::MAX),
        ])),
        Arc::new(StringArray::from(vec![
            Some("Ada"),
            Some(""),
            None,
            Some("Ünïcode ✓ \u{0}"),
        ])),
        Arc::new(Float64Array::from(vec![
            Some(9.5),
            Some(f64::NAN),
            None,
            Some(-0.0),
        ])),
        Arc::new(BooleanArray::from(vec![
            Some(true),
            Some(false),
            None,
            Some(true),
        ])),
        Arc::new(StringArray::from(vec![
            Some(r#"{"a": [1, 2.5, "x"], "b": null}"#),
            Some("[]"),
            None,
            Some(r#""text""#),
        ])),
    ];
    RecordBatch::try_new(schema, columns).ok()
});

/// The types a rule's result or a mapping's cast can be converted to.
const TYPES: [&str; 13] = [
    "string",
    "integer",
    "float",
    "decimal",
    "boolean",
    "date",
    "time",
    "timestamp",
    "timestamp_tz",
    "uuid",
    "json",
    "binary",
    "other",
];

fn spec(pick: u8, expression: &str) -> Option<PipelineSpec> {
    let place = pick % 5;
    let field_type = TYPES[usize::from(pick / 5) % TYPES.len()];
    let mut spec = serde_json::json!({
        "source": { "connection_id": "source", "object": "public.items" },
        "destination": { "connection_id": "destination", "object": "public.copy" },
        "mode": "append",
    });
    match place {
        0 => spec["filter"] = expression.into(),
        1 => {
            spec["rules"] = serde_json::json!([
                { "kind": "validation", "expression": expression, "message": "m", "on_null": "pass" }
            ])
        }
        2 => {
            spec["rules"] = serde_json::json!([
                { "kind": "import", "expression": expression, "target": "derived", "type": field_type }
            ])
        }
        3 => {
            spec["mappings"] = serde_json::json!([
                { "source": "id", "destination": "id" },
                { "source": "name", "destination": "label", "transform": expression, "cast": field_type },
            ])
        }
        _ => {
            spec["rules"] = serde_json::json!([
                { "kind": "export", "expression": expression, "target": "price", "type": field_type }
            ])
        }
    }
    serde_json::from_value(spec).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&place, text)) = data.split_first() else {
        return;
    };
    let Ok(expression) = std::str::from_utf8(text) else {
        return;
    };
    let (Some(batch), Some(spec)) = (BATCH.as_ref(), spec(place, expression)) else {
        return;
    };
    if spec.validate().is_err() || spec.validate_against(&FIELDS).is_err() {
        return;
    }
    let Ok(plan) = Plan::new(&spec, batch.schema()) else {
        return;
    };
    let _ = plan.apply(batch);
});
