//! Plans: output schemas, mappings, rules, filters and casts over batches.

use crate::{batch, meta, rows, schema, spec_with};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, SchemaRef};
use lockstep_connectors::FieldType;
use lockstep_connectors::batch::{field_meta, keys};
use lockstep_engine::{Plan, RejectionKind, SpecError};
use serde_json::json;
use std::sync::Arc;

/// `items(id int8 pk, name text, price float8, qty text)`.
fn items() -> (SchemaRef, RecordBatch) {
    let schema = schema(&[
        meta("id", FieldType::Integer, "int8", false, true),
        meta("name", FieldType::String, "text", true, false),
        meta("price", FieldType::Float, "float8", true, false),
        meta("qty", FieldType::String, "varchar(10)", true, false),
    ]);
    let b = batch(
        &schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])) as ArrayRef,
            Arc::new(StringArray::from(vec![
                Some("apple"),
                Some("CANARY-7f3a"),
                None,
                Some("pear"),
            ])),
            Arc::new(Float64Array::from(vec![
                Some(1.5),
                Some(-2.0),
                Some(3.0),
                Some(0.0),
            ])),
            Arc::new(StringArray::from(vec![
                Some("10"),
                Some("x"),
                Some("abc"),
                None,
            ])),
        ],
    );
    (schema, b)
}

fn planned(parts: serde_json::Value) -> (Plan, RecordBatch) {
    let (schema, b) = items();
    (Plan::new(&spec_with(parts), schema).unwrap(), b)
}

#[test]
fn empty_mappings_copy_every_field_with_its_metadata() {
    let (schema, b) = items();
    let plan = Plan::new(&spec_with(json!({})), Arc::clone(&schema)).unwrap();
    assert_eq!(plan.output_schema(), schema);
    assert_eq!(
        plan.read_fields(),
        ["id", "name", "price", "qty"].map(String::from)
    );
    let applied = plan.apply(&b).unwrap();
    assert_eq!(applied.batch.num_rows(), 4);
    assert_eq!(applied.accepted_rows, [0, 1, 2, 3]);
    assert!(applied.rejected.is_empty());
    // zero-copy: the very same arrays
    for (out, input) in applied.batch.columns().iter().zip(b.columns()) {
        assert!(Arc::ptr_eq(out, input));
    }
}

#[test]
fn renames_keep_metadata_and_unmapped_fields_are_dropped() {
    let (plan, b) = planned(json!({"mappings": [
        {"source": "price", "destination": "cost"},
        {"source": "id", "destination": "item_id"}
    ]}));
    let out = plan.output_schema();
    assert_eq!(out.fields().len(), 2);
    let cost = out.field_with_name("cost").unwrap();
    assert_eq!(cost.data_type(), &DataType::Float64);
    assert!(cost.is_nullable());
    assert_eq!(cost.metadata().get(keys::NATIVE).unwrap(), "float8");
    let id = field_meta(out.field_with_name("item_id").unwrap());
    assert!(id.primary_key && !id.nullable);
    assert_eq!(id.native, "int8");
    assert_eq!(plan.read_fields(), ["id", "price"].map(String::from));

    let applied = plan.apply(&b).unwrap();
    assert!(Arc::ptr_eq(applied.batch.column(0), b.column(2)));
    assert!(Arc::ptr_eq(applied.batch.column(1), b.column(0)));
    assert_eq!(
        rows(&applied.batch)[1],
        json!({"cost": -2.0, "item_id": 2})
            .as_object()
            .unwrap()
            .clone()
    );
}

#[test]
fn the_key_sets_the_primary_key_of_the_output() {
    let (plan, _) = planned(json!({
        "mode": "upsert",
        "key": ["label"],
        "mappings": [
            {"source": "id", "destination": "id"},
            {"source": "name", "destination": "label"}
        ]
    }));
    let out = plan.output_schema();
    assert!(!field_meta(out.field_with_name("id").unwrap()).primary_key);
    assert!(field_meta(out.field_with_name("label").unwrap()).primary_key);
}

#[test]
fn import_rules_derive_new_fields() {
    let (plan, b) = planned(json!({"rules": [
        {"kind": "import", "expression": "id * 10", "target": "tenfold", "type": "integer"},
        {"kind": "import", "expression": "name == null ? 'none' : name.upperAscii()", "target": "shout"},
        {"kind": "import", "expression": "tenfold + 1", "target": "tenfold"}
    ]}));
    let out = plan.output_schema();
    let names: Vec<&str> = out.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["id", "name", "price", "qty", "tenfold", "shout"]);
    let tenfold = out.field_with_name("tenfold").unwrap();
    assert_eq!(tenfold.data_type(), &DataType::Int64);
    assert!(tenfold.is_nullable());
    assert_eq!(field_meta(tenfold).field_type, FieldType::Integer);
    assert_eq!(
        out.field_with_name("shout").unwrap().data_type(),
        &DataType::Utf8
    );

    let applied = plan.apply(&b).unwrap();
    let r = rows(&applied.batch);
    assert_eq!(r[0]["tenfold"], 11);
    assert_eq!(r[3]["tenfold"], 41);
    assert_eq!(r[0]["shout"], "APPLE");
    assert_eq!(r[2]["shout"], "none");
}

#[test]
fn a_failed_validation_rejects_without_showing_values() {
    let (plan, b) = planned(json!({"rules": [
        {"kind": "validation", "expression": "price >= 0.0", "message": "price must not be negative"},
        {"kind": "validation", "expression": "name != 'pear'"}
    ]}));
    let applied = plan.apply(&b).unwrap();
    assert_eq!(applied.accepted_rows, [0, 2]);
    assert_eq!(applied.batch.num_rows(), 2);
    assert_eq!(applied.rejected.len(), 2);

    let canary = &applied.rejected[0];
    assert_eq!(canary.row, 1);
    // a validation rule's verdict reads as its own message, apart from evaluation failures
    assert_eq!(canary.reason, "price must not be negative");
    assert_eq!(canary.rule, "rules[0]");
    assert_eq!(canary.kind, RejectionKind::Rule);
    assert!(!canary.reason.contains("CANARY"));
    assert_eq!(canary.values["name"], "CANARY-7f3a");
    assert_eq!(canary.values["price"], -2.0);
    assert_eq!(canary.values["id"], 2);
    assert_eq!(canary.key, json!({"id": 2}));

    let second = &applied.rejected[1];
    assert_eq!(second.row, 3);
    assert_eq!(second.reason, "the rule 'name != 'pear'' is false");
    assert_eq!(second.rule, "rules[1]");
}

#[test]
fn warnings_are_counted_and_the_records_written() {
    let (plan, b) = planned(json!({"rules": [
        {"kind": "validation", "expression": "price > 0.0", "level": "warning"},
        {"kind": "validation", "expression": "id < 4", "level": "warning"}
    ]}));
    let applied = plan.apply(&b).unwrap();
    assert_eq!(applied.batch.num_rows(), 4);
    assert_eq!(applied.warnings, 3);
    assert!(applied.rejected.is_empty());
}

#[test]
fn evaluation_failures_reject_with_a_reason_free_of_values() {
    let (plan, b) = planned(json!({"rules": [
        {"kind": "validation", "expression": "{'a': 1}[name] == 1"},
        {"kind": "validation", "expression": "{'a': 1}.missing == 1"}
    ]}));
    let applied = plan.apply(&b).unwrap();
    // every record fails the first rule (apple and pear are no keys, null is a null key)
    assert_eq!(applied.batch.num_rows(), 0);
    for r in applied
        .rejected
        .iter()
        .filter(|r| !r.values["name"].is_null())
    {
        assert_eq!(r.rule, "rules[0]");
        assert_eq!(r.kind, RejectionKind::Error, "{}", r.reason);
        assert!(
            r.reason
                .starts_with("'the rule '{'a': 1}[name] == 1' is false' could not be evaluated: "),
            "{}",
            r.reason
        );
        assert!(
            !r.reason.contains("apple") && !r.reason.contains("CANARY"),
            "{}",
            r.reason
        );
    }

    let (plan, b) = planned(json!({"rules": [
        {"kind": "validation", "expression": "{'a': 1}.missing == 1"}
    ]}));
    let applied = plan.apply(&b).unwrap();
    assert_eq!(
        applied.rejected[0].reason,
        "'the rule '{'a': 1}.missing == 1' is false' could not be evaluated: no such key 'missing'"
    );

    let (plan, b) = planned(json!({"rules": [
        {"kind": "import", "expression": "int(qty)", "target": "n", "type": "integer"}
    ]}));
    let applied = plan.apply(&b).unwrap();
    // a null quantity gives a null result (a computation with null is null)
    assert_eq!(applied.accepted_rows, [0, 3]);
    for r in &applied.rejected {
        assert_eq!(r.rule, "rules[0]", "{}", r.reason);
        assert!(
            !r.reason.contains("abc") && !r.reason.contains("'x'"),
            "{}",
            r.reason
        );
    }
}

#[test]
fn export_rules_work_on_destination_fields() {
    let (plan, b) = planned(json!({
        "mappings": [
            {"source": "id", "destination": "item_id"},
            {"source": "name", "destination": "label"}
        ],
        "rules": [
            {"kind": "export", "expression": "label == null ? 'n/a' : label + '#' + string(item_id)", "target": "label"},
            {"kind": "export", "expression": "item_id * 2", "target": "double_id", "type": "integer"}
        ]
    }));
    let out = plan.output_schema();
    let names: Vec<&str> = out.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["item_id", "label", "double_id"]);
    assert_eq!(
        out.field_with_name("label")
            .unwrap()
            .metadata()
            .get(keys::NATIVE)
            .unwrap(),
        "text"
    );
    let applied = plan.apply(&b).unwrap();
    let r = rows(&applied.batch);
    assert_eq!(r[0]["label"], "apple#1");
    assert_eq!(r[2]["label"], "n/a");
    assert_eq!(r[3]["double_id"], 8);
}

#[test]
fn the_filter_skips_records() {
    let (plan, b) = planned(json!({"filter": "id % 2 == 0"}));
    let applied = plan.apply(&b).unwrap();
    assert_eq!(applied.skipped, 2);
    assert_eq!(applied.accepted_rows, [1, 3]);
    assert!(applied.rejected.is_empty());
    let ids = applied.batch.column(0).as_primitive::<Int64Type>();
    assert_eq!(ids.values().to_vec(), [2, 4]);

    // skipped records are not validated
    let (plan, b) = planned(json!({
        "filter": "price >= 0.0",
        "rules": [{"kind": "validation", "expression": "price >= 0.0"}]
    }));
    let applied = plan.apply(&b).unwrap();
    assert_eq!((applied.skipped, applied.rejected.len()), (1, 0));
}

#[test]
fn casts_convert_and_reject_what_does_not_convert() {
    let (plan, b) = planned(json!({"mappings": [
        {"source": "id", "destination": "id_text", "cast": "string"},
        {"source": "qty", "destination": "qty", "cast": "integer"}
    ]}));
    let out = plan.output_schema();
    let id_text = out.field_with_name("id_text").unwrap();
    assert_eq!(id_text.data_type(), &DataType::Utf8);
    assert_eq!(field_meta(id_text).field_type, FieldType::String);
    assert!(!id_text.metadata().contains_key(keys::NATIVE));
    assert!(field_meta(id_text).primary_key, "the primary key is kept");
    assert_eq!(
        out.field_with_name("qty").unwrap().data_type(),
        &DataType::Int64
    );

    let applied = plan.apply(&b).unwrap();
    assert_eq!(applied.accepted_rows, [0, 3]);
    let r = rows(&applied.batch);
    assert_eq!(r[0]["id_text"], "1");
    assert_eq!(r[0]["qty"], 10);
    assert_eq!(r[1]["qty"], serde_json::Value::Null);
    assert_eq!(applied.rejected.len(), 2);
    assert_eq!(applied.rejected[1].reason, "cannot cast 'qty' to integer");
    assert_eq!(applied.rejected[1].values["qty"], "abc");
}

#[test]
fn transforms_see_the_value_and_the_record() {
    let (plan, b) = planned(json!({"mappings": [
        {"source": "id", "destination": "id"},
        {"source": "price", "destination": "gross", "transform": "value * 1.25 + double(id)"},
        {"source": "name", "destination": "name_len", "transform": "value == null ? 0 : size(value)", "cast": "integer"}
    ]}));
    let applied = plan.apply(&b).unwrap();
    let r = rows(&applied.batch);
    assert_eq!(r[0]["gross"], 1.5 * 1.25 + 1.0);
    assert_eq!(r[1]["name_len"], 11);
    assert_eq!(r[2]["name_len"], 0);
    assert_eq!(
        plan.read_fields(),
        ["id", "name", "price"].map(String::from)
    );

    // a result of the wrong type rejects the record
    let (plan, b) = planned(json!({"mappings": [
        {"source": "id", "destination": "id", "transform": "value > 2 ? 'big' : value"}
    ]}));
    let applied = plan.apply(&b).unwrap();
    assert_eq!(applied.accepted_rows, [0, 1]);
    assert_eq!(
        applied.rejected[0].reason,
        "the transform of 'id' gives a string, which cannot be stored as integer"
    );
}

#[test]
fn the_rejected_key_maps_back_to_source_names() {
    let (plan, b) = planned(json!({
        "mode": "upsert",
        "key": ["item_id", "label"],
        "mappings": [
            {"source": "id", "destination": "item_id"},
            {"source": "name", "destination": "label"}
        ],
        "rules": [{"kind": "validation", "expression": "id != 2"}]
    }));
    let applied = plan.apply(&b).unwrap();
    assert_eq!(
        applied.rejected[0].key,
        json!({"id": 2, "name": "CANARY-7f3a"})
    );
}

#[test]
fn non_nullable_targets_reject_null_results() {
    let (plan, b) = planned(json!({"rules": [
        {"kind": "import", "expression": "id == 3 ? null : id", "target": "id"}
    ]}));
    let applied = plan.apply(&b).unwrap();
    assert_eq!(applied.accepted_rows, [0, 1, 3]);
    assert_eq!(
        applied.rejected[0].reason,
        "the rule setting 'id' gives null but 'id' cannot be null"
    );
    assert_eq!(applied.batch.column(0).null_count(), 0);
}

#[test]
fn plans_refuse_fields_the_source_lacks() {
    let (schema, _) = items();
    let e = Plan::new(
        &spec_with(json!({"mappings": [{"source": "nope", "destination": "x"}]})),
        Arc::clone(&schema),
    )
    .unwrap_err();
    assert_eq!(
        e,
        SpecError {
            field: "mappings[0].source".into(),
            reason: "no field 'nope' in the source".into()
        }
    );
    let e = Plan::new(
        &spec_with(json!({"mode": "incremental", "cursor": "nope", "key": ["id"]})),
        schema,
    )
    .unwrap_err();
    assert_eq!(e.field, "cursor");
}

#[test]
fn redact_transforms_hash_mask_and_hide_before_the_destination() {
    use lockstep_engine::{RedactKind, Redaction, Scrambler, redact_json};
    let scrambler: Scrambler = Arc::new(|data: &[u8]| {
        let mut out = [0u8; 32];
        for (i, b) in data.iter().enumerate() {
            out[i % 32] ^= b.wrapping_add(i as u8);
        }
        out
    });
    let parts = json!({"mode": "upsert", "key": ["name"], "mappings": [
        {"source": "id", "destination": "id", "transform": {"redact": "partial", "keep": 1}},
        {"source": "name", "destination": "name", "transform": {"redact": "scramble"}},
        {"source": "price", "destination": "price", "transform": {"redact": "mask"}},
        {"source": "qty", "destination": "qty", "transform": {"redact": "hide"}, "cast": "integer"}
    ]});
    let (schema, b) = items();
    let spec = spec_with(parts);
    let plan = Plan::new(&spec, Arc::clone(&schema)).unwrap();
    // Without the organization's scrambler, nothing is written in clear.
    assert!(plan.check_scrambler().is_err());
    let err = plan.apply(&b).unwrap_err().to_string();
    assert!(err.contains("mappings[1]"), "{err}");
    let plan = plan.with_scrambler(Arc::clone(&scrambler));
    plan.check_scrambler().unwrap();

    let out = plan.output_schema();
    for (name, t) in [
        ("id", "string"),
        ("name", "string"),
        ("price", "string"),
        ("qty", "integer"),
    ] {
        let f = out.field_with_name(name).unwrap();
        assert_eq!(
            lockstep_connectors::batch::field_type_name(field_meta(f).field_type),
            t,
            "{name}"
        );
    }
    assert!(out.field_with_name("qty").unwrap().is_nullable());
    assert_eq!(
        out.field_with_name("name")
            .unwrap()
            .metadata()
            .get(keys::PRIMARY_KEY),
        Some(&"true".to_owned())
    );
    assert_eq!(plan.source_of("name"), None);

    let applied = plan.apply(&b).unwrap();
    assert!(applied.rejected.is_empty());
    let r = rows(&applied.batch);
    assert_eq!(r[0]["id"], "••••"); // "1" has no more than 1 character
    assert_eq!(r[0]["price"], "••••");
    assert_eq!(r[2]["price"], "••••");
    assert_eq!(r[2]["name"], serde_json::Value::Null);
    let scrambled = |v: serde_json::Value| {
        redact_json(&Redaction::new(RedactKind::Scramble), &v, &scrambler).unwrap()
    };
    assert_eq!(r[1]["name"], scrambled(json!("CANARY-7f3a")));
    assert!(r[1]["name"].as_str().unwrap().starts_with("scr_"));
    for row in &r {
        assert_eq!(row["qty"], serde_json::Value::Null);
        assert!(
            !serde_json::Value::Object(row.clone())
                .to_string()
                .contains("CANARY")
        );
    }
}
