//! CEL over every Arrow type of the batch contract's table, nulls included; rejected records
//! show values in the connectors' `Record` conventions.

use crate::{batch, meta, schema, spec_with};
use arrow_array::builder::FixedSizeBinaryBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array,
    Int64Array, RecordBatch, StringArray, Time64MicrosecondArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use lockstep_connectors::FieldType;
use lockstep_engine::{Plan, RejectionKind};
use serde_json::json;
use std::sync::Arc;

/// 2024-03-01T12:34:56.789Z in microseconds.
const TS: i64 = 1_709_296_496_789_000;

/// One field of each type; row 0 has values (unicode, a decimal, zoned timestamps), row 1 nulls.
fn all_types() -> (SchemaRef, RecordBatch) {
    let schema = schema(&[
        meta("b", FieldType::Boolean, "bool", true, false),
        meta("i", FieldType::Integer, "int8", true, true),
        meta("f", FieldType::Float, "float8", true, false),
        meta("d", FieldType::Decimal, "numeric(12,2)", true, false),
        meta("dt", FieldType::Decimal, "numeric", true, false),
        meta("s", FieldType::String, "text", true, false),
        meta("j", FieldType::Json, "jsonb", true, false),
        meta("bin", FieldType::Binary, "bytea", true, false),
        meta("day", FieldType::Date, "date", true, false),
        meta("t", FieldType::Time, "time", true, false),
        meta("ts", FieldType::Timestamp, "timestamp", true, false),
        meta("tz", FieldType::TimestampTz, "timestamptz", true, false),
        meta("u", FieldType::Uuid, "uuid", true, false),
    ]);
    let mut uuid = FixedSizeBinaryBuilder::with_capacity(2, 16);
    uuid.append_value([
        0x01, 0x90, 0xf4, 0xc2, 0x7d, 0x3e, 0x7a, 0x4b, 0x9c, 0x1d, 0x2e, 0x3f, 0x4a, 0x5b, 0x6c,
        0x7d,
    ])
    .unwrap();
    uuid.append_null();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(BooleanArray::from(vec![Some(true), None])),
        Arc::new(Int64Array::from(vec![Some(9_007_199_254_740_993), None])),
        Arc::new(Float64Array::from(vec![Some(2.5), None])),
        Arc::new(
            Decimal128Array::from(vec![Some(123_456), None])
                .with_precision_and_scale(12, 2)
                .unwrap(),
        ),
        Arc::new(StringArray::from(vec![
            Some("0.000000000000000000001"),
            None,
        ])),
        Arc::new(StringArray::from(vec![Some("Grüße, 世界 🚀"), None])),
        Arc::new(StringArray::from(vec![
            Some(r#"{"a": {"b": [1, 2.5, "x"]}, "n": null}"#),
            None,
        ])),
        Arc::new(BinaryArray::from(vec![Some(&b"\x00\xffhi"[..]), None])),
        Arc::new(Date32Array::from(vec![Some(19_783), None])),
        Arc::new(Time64MicrosecondArray::from(vec![
            Some(45_296_789_000),
            None,
        ])),
        Arc::new(TimestampMicrosecondArray::from(vec![Some(TS), None])),
        Arc::new(TimestampMicrosecondArray::from(vec![Some(TS), None]).with_timezone("UTC")),
        Arc::new(uuid.finish()),
    ];
    let b = batch(&schema, columns);
    (schema, b)
}

/// Which rows `expression` holds for.
fn holds(expression: &str) -> Vec<usize> {
    let (schema, b) = all_types();
    let plan = Plan::new(
        &spec_with(json!({"rules": [{"kind": "validation", "expression": expression}]})),
        schema,
    )
    .unwrap();
    let applied = plan.apply(&b).unwrap();
    applied.accepted_rows
}

#[test]
fn every_type_reads_as_its_cel_value() {
    let cases = [
        "b == true && type(b) == bool",
        "i == 9007199254740993 && type(i) == int",
        "f == 2.5 && f * 2.0 == 5.0",
        "d == 1234.56 && d > 1000.0 && type(d) == double",
        // an unconstrained `numeric` is a number for rules, like every decimal
        "dt > 0.0 && dt < 0.00000000000000000001 && dt == 1e-21",
        "s == 'Grüße, 世界 🚀' && size(s) == 11 && s.startsWith('Grü') && s.contains('🚀')",
        "j.a.b[0] == 1 && j.a.b[1] == 2.5 && j.a.b[2] == 'x' && j.n == null && size(j.a.b) == 3",
        "bin == b'\\x00\\xffhi' && size(bin) == 4",
        "day == '2024-03-01' && day > '2024-02-29'",
        "t == '12:34:56.789'",
        "ts == timestamp('2024-03-01T12:34:56.789Z') && ts.getHours() == 12",
        "tz > timestamp('2024-03-01T14:00:00+02:00') && tz < timestamp('2024-03-01T12:35:00Z')",
        "tz.getHours('Europe/Paris') == 13 || tz.getHours() == 12",
        "u == '0190f4c2-7d3e-7a4b-9c1d-2e3f4a5b6c7d'",
    ];
    for expression in cases {
        assert_eq!(holds(expression), [0], "{expression}");
    }
}

#[test]
fn nulls_are_cel_null() {
    for field in [
        "b", "i", "f", "d", "dt", "s", "j", "bin", "day", "t", "ts", "tz", "u",
    ] {
        assert_eq!(holds(&format!("{field} == null")), [1], "{field}");
    }
    // a comparison with null is false: the record is rejected with the rule's own message
    let (schema, b) = all_types();
    let plan = Plan::new(
        &spec_with(json!({"rules": [
            {"kind": "validation", "expression": "f > 1.0", "message": "f must exceed 1"}
        ]})),
        Arc::clone(&schema),
    )
    .unwrap();
    let applied = plan.apply(&b).unwrap();
    assert_eq!(applied.accepted_rows, [0]);
    assert_eq!(applied.rejected[0].reason, "f must exceed 1");
    assert_eq!(applied.rejected[0].kind, RejectionKind::Rule);

    // unless the rule says so, or tests for null itself
    for rule in [
        json!({"kind": "validation", "expression": "f > 1.0", "on_null": "pass"}),
        json!({"kind": "validation", "expression": "f == null || f > 1.0"}),
    ] {
        let plan = Plan::new(&spec_with(json!({"rules": [rule]})), Arc::clone(&schema)).unwrap();
        let applied = plan.apply(&b).unwrap();
        assert_eq!(applied.accepted_rows, [0, 1], "{rule}");
    }

    // a computation with null is null: an import rule gives null, the filter skips
    let plan = Plan::new(
        &spec_with(json!({
            "rules": [{"kind": "import", "expression": "f * 2.0", "target": "f2", "type": "float"}],
            "filter": "f < 100.0"
        })),
        Arc::clone(&schema),
    )
    .unwrap();
    let applied = plan.apply(&b).unwrap();
    assert_eq!(applied.accepted_rows, [0]);
    assert_eq!(applied.skipped, 1);
    assert!(applied.rejected.is_empty());
}

#[test]
fn rejected_values_follow_the_record_conventions() {
    let (schema, b) = all_types();
    let plan = Plan::new(
        &spec_with(json!({"rules": [{"kind": "validation", "expression": "false"}]})),
        schema,
    )
    .unwrap();
    let applied = plan.apply(&b).unwrap();
    let v = &applied.rejected[0].values;
    assert_eq!(v["b"], true);
    assert_eq!(v["i"], "9007199254740993", "beyond 2^53: a string");
    assert_eq!(v["f"], 2.5);
    assert_eq!(v["d"], "1234.56");
    assert_eq!(v["dt"], "0.000000000000000000001");
    assert_eq!(v["s"], "Grüße, 世界 🚀");
    assert_eq!(v["j"], json!({"a": {"b": [1, 2.5, "x"]}, "n": null}));
    assert_eq!(v["bin"], "AP9oaQ==");
    assert_eq!(v["day"], "2024-03-01");
    assert_eq!(v["t"], "12:34:56.789");
    assert_eq!(v["ts"], "2024-03-01T12:34:56.789");
    assert_eq!(v["tz"], "2024-03-01T12:34:56.789Z");
    assert_eq!(v["u"], "0190f4c2-7d3e-7a4b-9c1d-2e3f4a5b6c7d");
    assert_eq!(applied.rejected[0].key, json!({"i": "9007199254740993"}));
    let nulls = &applied.rejected[1].values;
    assert!(nulls.values().all(serde_json::Value::is_null));
}

#[test]
fn decimals_are_written_back_exactly() {
    let (schema, b) = all_types();
    // a plain mapping reuses the decimal column as it is
    let plan = Plan::new(
        &spec_with(json!({
            "mappings": [{"source": "d", "destination": "d"}],
            "rules": [{"kind": "validation", "expression": "d == null || d > 0.0"}]
        })),
        Arc::clone(&schema),
    )
    .unwrap();
    let applied = plan.apply(&b).unwrap();
    assert!(Arc::ptr_eq(applied.batch.column(0), b.column(3)));

    // a rule that targets a decimal converts its (double) result to the field's scale
    let plan = Plan::new(
        &spec_with(json!({"rules": [
            {"kind": "import", "expression": "d == null ? null : d * 2.0 + 0.001", "target": "d"},
            {"kind": "import", "expression": "i == null ? null : string(i) + '.5'", "target": "big", "type": "decimal"}
        ]})),
        schema,
    )
    .unwrap();
    let out = plan.output_schema();
    assert_eq!(
        out.field_with_name("d").unwrap().data_type(),
        &DataType::Decimal128(12, 2)
    );
    assert_eq!(
        out.field_with_name("big").unwrap().data_type(),
        &DataType::Utf8
    );
    let applied = plan.apply(&b).unwrap();
    let d = applied.batch.column(3).as_primitive::<Decimal128Type>();
    assert_eq!(d.value(0), 246_912);
    assert!(d.is_null(1));
    let big = applied
        .batch
        .column_by_name("big")
        .unwrap()
        .as_string::<i32>();
    assert_eq!(big.value(0), "9007199254740993.5");
}

#[test]
fn rules_write_every_type() {
    let (schema, b) = all_types();
    let plan = Plan::new(
        &spec_with(json!({"rules": [
            {"kind": "import", "expression": "!b", "target": "b"},
            {"kind": "import", "expression": "i + 1", "target": "i"},
            {"kind": "import", "expression": "s + '!'", "target": "s"},
            {"kind": "import", "expression": "{'k': j.a.b[2], 'list': [1, true]}", "target": "j"},
            {"kind": "import", "expression": "bin + b'!'", "target": "bin"},
            {"kind": "import", "expression": "'2024-12-31'", "target": "day"},
            {"kind": "import", "expression": "'23:59:59.5'", "target": "t"},
            {"kind": "import", "expression": "ts + duration('1h')", "target": "ts"},
            {"kind": "import", "expression": "timestamp('2024-03-01T14:00:00+02:00')", "target": "tz"},
            {"kind": "import", "expression": "u.upperAscii()", "target": "u"}
        ]})),
        schema,
    )
    .unwrap();
    let applied = plan.apply(&b).unwrap();
    // the record of nulls gives nulls (a computation with null is null), except where a rule
    // sets a constant
    assert_eq!(applied.accepted_rows, [0, 1], "{:?}", applied.rejected);
    let out = &applied.batch;
    assert!(out.column(0).is_null(1) && out.column(1).is_null(1));
    assert!(!out.column(0).as_boolean().value(0));
    assert_eq!(
        out.column(1).as_primitive::<Int64Type>().value(0),
        9_007_199_254_740_994
    );
    assert_eq!(out.column(5).as_string::<i32>().value(0), "Grüße, 世界 🚀!");
    let j: serde_json::Value =
        serde_json::from_str(out.column(6).as_string::<i32>().value(0)).unwrap();
    assert_eq!(j, json!({"k": "x", "list": [1, true]}));
    assert_eq!(out.column(7).as_binary::<i32>().value(0), b"\x00\xffhi!");
    assert_eq!(
        out.column(8)
            .as_primitive::<arrow_array::types::Date32Type>()
            .value(0),
        20_088
    );
    assert_eq!(
        out.column(9)
            .as_primitive::<arrow_array::types::Time64MicrosecondType>()
            .value(0),
        86_399_500_000
    );
    assert_eq!(
        out.column(10)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        TS + 3_600_000_000
    );
    assert_eq!(
        out.column(11).data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(
        out.column(11)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        1_709_294_400_000_000
    );
    assert_eq!(
        out.column(12).as_fixed_size_binary().value(0),
        [
            0x01, 0x90, 0xf4, 0xc2, 0x7d, 0x3e, 0x7a, 0x4b, 0x9c, 0x1d, 0x2e, 0x3f, 0x4a, 0x5b,
            0x6c, 0x7d
        ]
    );
}
