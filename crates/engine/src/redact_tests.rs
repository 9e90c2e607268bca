//! Tests of [`super`]: each kind on text, numbers and nulls; JSON and Arrow agreeing.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use super::*;
use crate::records::{Row, batch_rows, rows_batch};
use crate::transform::Transform;
use arrow_array::cast::AsArray;
use arrow_schema::{DataType, Field, Schema};
use lockstep_connectors::batch::keys;
use serde_json::json;
use std::collections::HashMap;

/// A stand-in for the app's HMAC: a hash of `key` and the bytes (not cryptographic).
fn scrambler(key: u8) -> Scrambler {
    Arc::new(move |data: &[u8]| {
        let mut out = [0u8; 32];
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(key);
        for (i, slot) in out.iter_mut().enumerate() {
            for b in data.iter().chain(&[i as u8, key]) {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            *slot = (h >> 24) as u8;
        }
        out
    })
}

fn red(r: Redaction, v: serde_json::Value) -> Option<serde_json::Value> {
    redact_json(&r, &v, &scrambler(1))
}

#[test]
fn each_kind_on_text_numbers_and_null() {
    let mask = Redaction::new(RedactKind::Mask);
    assert_eq!(red(mask, json!("secret")), Some(json!("••••")));
    assert_eq!(red(mask, json!(42)), Some(json!("••••")));
    assert_eq!(red(mask, json!(null)), Some(json!(null)));

    let partial = Redaction::partial(4);
    assert_eq!(
        red(partial, json!("4111111111111234")),
        Some(json!("••••1234"))
    );
    assert_eq!(red(partial, json!(123_456_789)), Some(json!("••••6789")));
    assert_eq!(red(partial, json!("1234")), Some(json!("••••")));
    assert_eq!(red(partial, json!("12")), Some(json!("••••")));
    assert_eq!(red(partial, json!(null)), Some(json!(null)));
    // Characters, not bytes.
    assert_eq!(
        red(Redaction::partial(3), json!("Zoë Ångström")),
        Some(json!("••••röm"))
    );
    assert_eq!(
        red(Redaction::partial(2), json!("日本語テキスト")),
        Some(json!("••••スト"))
    );
    // The default keeps 4.
    let default = Redaction::new(RedactKind::Partial);
    assert_eq!(red(default, json!("abcdefgh")), Some(json!("••••efgh")));

    let scramble = Redaction::new(RedactKind::Scramble);
    let s = red(scramble, json!("ada@example.com")).unwrap();
    let s = s.as_str().unwrap();
    assert!(s.starts_with("scr_"));
    assert_eq!(s.len(), 4 + 24);
    assert!(
        s[4..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert!(!s.contains("ada"));
    assert_eq!(red(scramble, json!(null)), Some(json!(null)));

    let hide = Redaction::new(RedactKind::Hide);
    assert_eq!(red(hide, json!("x")), None);
    assert_eq!(red(hide, json!(null)), None);
}

#[test]
fn scramble_is_stable_keeps_equal_values_equal_and_depends_on_the_key() {
    let r = Redaction::new(RedactKind::Scramble);
    let a = scrambler(1);
    let b = scrambler(2);
    let of = |v: serde_json::Value, s: &Scrambler| redact_json(&r, &v, s).unwrap();
    assert_eq!(
        of(json!("ada@example.com"), &a),
        of(json!("ada@example.com"), &a)
    );
    assert_ne!(
        of(json!("ada@example.com"), &a),
        of(json!("bob@example.com"), &a)
    );
    assert_ne!(
        of(json!("ada@example.com"), &a),
        of(json!("ada@example.com"), &b)
    );
    // Equal as records::comparable sees them: 42, 42.0 and "42" are one value.
    assert_eq!(of(json!(42), &a), of(json!("42"), &a));
    assert_eq!(of(json!(42), &a), of(json!(42.0), &a));
    assert_ne!(of(json!(true), &a), of(json!("true"), &a));
}

#[test]
fn json_and_arrow_give_the_same_text_for_the_same_values() {
    let field = |name: &str, t: &str, dt: DataType| {
        Field::new(name, dt, true)
            .with_metadata(HashMap::from([(keys::TYPE.to_owned(), t.to_owned())]))
    };
    let schema = Arc::new(Schema::new(vec![
        field("i", "integer", DataType::Int64),
        field("f", "float", DataType::Float64),
        field("s", "string", DataType::Utf8),
        field("b", "boolean", DataType::Boolean),
        field("d", "date", DataType::Date32),
        field("n", "decimal", DataType::Decimal128(10, 2)),
        field("j", "json", DataType::Utf8),
    ]));
    let rows: Vec<Row> = vec![
        vec![
            json!(1234567),
            json!(1.5),
            json!("ada@example.com"),
            json!(true),
            json!("2024-01-31"),
            json!("12.50"),
            json!({"a": [1, 2]}),
        ],
        vec![
            json!(null),
            json!(null),
            json!(null),
            json!(null),
            json!(null),
            json!(null),
            json!(null),
        ],
        vec![
            json!(-7),
            json!(-0.25),
            json!("Zoë Ångström"),
            json!(false),
            json!("1970-01-01"),
            json!("-4.00"),
            json!("text"),
        ],
    ];
    let refs: Vec<&Row> = rows.iter().collect();
    let batch = rows_batch(&schema, &refs).unwrap();
    let values = batch_rows(&batch);
    let s = scrambler(9);
    for r in [
        Redaction::new(RedactKind::Mask),
        Redaction::partial(2),
        Redaction::partial(5),
        Redaction::new(RedactKind::Scramble),
        Redaction::new(RedactKind::Hide),
    ] {
        for (c, f) in schema.fields().iter().enumerate() {
            let t = lockstep_connectors::batch::field_meta(f).field_type;
            let out = redact_array(&r, batch.column(c), t, &s).unwrap();
            assert_eq!(out.data_type(), &DataType::Utf8);
            let out = out.as_string::<i32>();
            for (row, values) in values.iter().enumerate() {
                let json = redact_json(&r, &values[c], &s);
                let arrow = (!out.is_null(row)).then(|| json!(out.value(row)));
                match json {
                    None => assert!(arrow.is_none(), "{r:?} column {c} row {row}"),
                    Some(serde_json::Value::Null) => {
                        assert!(arrow.is_none(), "{r:?} column {c} row {row}")
                    }
                    Some(v) => assert_eq!(Some(v), arrow, "{r:?} column {c} row {row}"),
                }
            }
        }
    }
    // A number column and a text column of the same values scramble alike.
    let ints = rows_batch(
        &Arc::new(Schema::new(vec![field("i", "integer", DataType::Int64)])),
        &[&vec![json!(42)]],
    )
    .unwrap();
    let texts = rows_batch(
        &Arc::new(Schema::new(vec![field("s", "string", DataType::Utf8)])),
        &[&vec![json!("42")]],
    )
    .unwrap();
    let r = Redaction::new(RedactKind::Scramble);
    let a = redact_array(&r, ints.column(0), FieldType::Integer, &s).unwrap();
    let b = redact_array(&r, texts.column(0), FieldType::String, &s).unwrap();
    assert_eq!(a.as_string::<i32>().value(0), b.as_string::<i32>().value(0));
}

#[test]
fn strictness_orders_hide_mask_scramble_partial() {
    let hide = Redaction::new(RedactKind::Hide);
    let mask = Redaction::new(RedactKind::Mask);
    let scramble = Redaction::new(RedactKind::Scramble);
    let keep1 = Redaction::partial(1);
    let keep4 = Redaction::new(RedactKind::Partial);
    let keep64 = Redaction::partial(64);
    let order = [keep64, keep4, keep1, scramble, mask, hide];
    for pair in order.windows(2) {
        assert!(
            pair[0].strictness() < pair[1].strictness(),
            "{pair:?} in order"
        );
    }
    let strictest = [keep4, scramble, keep1]
        .into_iter()
        .max_by_key(Redaction::strictness);
    assert_eq!(strictest, Some(scramble));
    assert_eq!(keep4.strictness(), Redaction::partial(4).strictness());
}

#[test]
fn keep_is_checked() {
    assert!(Redaction::partial(1).check().is_ok());
    assert!(Redaction::partial(64).check().is_ok());
    assert!(Redaction::partial(0).check().unwrap_err().contains("keep"));
    assert!(
        Redaction::partial(65)
            .check()
            .unwrap_err()
            .contains("1 to 64")
    );
    let mask_keep = Redaction {
        kind: RedactKind::Mask,
        keep: Some(4),
    };
    assert!(
        mask_keep
            .check()
            .unwrap_err()
            .contains("only for a partial")
    );
    let array: ArrayRef = Arc::new(arrow_array::StringArray::from(vec!["x"]));
    assert!(
        redact_array(
            &Redaction::partial(0),
            &array,
            FieldType::String,
            &scrambler(1)
        )
        .is_err()
    );
}

#[test]
fn transforms_round_trip_in_both_forms() {
    for (text, transform) in [
        (
            json!("value * 2.0"),
            Transform::Expression("value * 2.0".to_owned()),
        ),
        (
            json!({"redact": "scramble"}),
            Transform::Redact {
                redact: RedactKind::Scramble,
                keep: None,
            },
        ),
        (
            json!({"redact": "partial", "keep": 4}),
            Transform::Redact {
                redact: RedactKind::Partial,
                keep: Some(4),
            },
        ),
        (
            json!({"redact": "mask"}),
            Transform::Redact {
                redact: RedactKind::Mask,
                keep: None,
            },
        ),
        (
            json!({"redact": "hide"}),
            Transform::Redact {
                redact: RedactKind::Hide,
                keep: None,
            },
        ),
    ] {
        let parsed: Transform = serde_json::from_value(text.clone()).unwrap();
        assert_eq!(parsed, transform);
        assert_eq!(serde_json::to_value(&parsed).unwrap(), text);
        // From text too (a stored definition is text).
        let again: Transform = serde_json::from_str(&text.to_string()).unwrap();
        assert_eq!(again, transform);
    }
    let unknown = serde_json::from_value::<Transform>(json!({"redact": "mask", "kep": 4}))
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("unknown field `kep`"), "{unknown}");
    let kind = serde_json::from_value::<Transform>(json!({"redact": "blur"}))
        .unwrap_err()
        .to_string();
    assert!(kind.contains("unknown variant `blur`"), "{kind}");
    assert!(serde_json::from_value::<Transform>(json!(4)).is_err());
    let r: Redaction = serde_json::from_value(json!({"kind": "partial", "keep": 2})).unwrap();
    assert_eq!(r, Redaction::partial(2));
}
