//! Pipeline definitions: parsing and the static and discovery checks, each failure named by the
//! path of the offending part.

use crate::{meta, spec, spec_with};
use lockstep_connectors::FieldType;
use lockstep_connectors::batch::WriteMode;
use lockstep_engine::{Level, Mode, PipelineSpec, RuleKind, SpecError};
use serde_json::json;

fn error(spec: &PipelineSpec) -> SpecError {
    spec.validate().unwrap_err()
}

#[test]
fn the_issue_example_parses_and_round_trips() {
    let s = spec(json!({
        "source": {"connection_id": "c1", "object": "public.orders"},
        "destination": {"connection_id": "c2", "object": "orders"},
        "mappings": [
            {"source": "id", "destination": "order_id"},
            {"source": "total", "destination": "amount", "transform": "value * 2.0"},
            {"source": "qty", "destination": "quantity", "cast": "integer"}
        ],
        "rules": [
            {"kind": "import", "expression": "name.trim()", "target": "clean_name"},
            {"kind": "validation", "expression": "total >= 0.0", "level": "warning", "message": "negative"},
            {"kind": "export", "expression": "amount + 1.0", "target": "amount", "type": "float"}
        ],
        "filter": "status != 'draft'",
        "mode": "incremental",
        "key": ["order_id"],
        "cursor": "updated_at",
        "schedule": "*/15 * * * *"
    }));
    assert_eq!(s.mode, Mode::Incremental);
    assert_eq!(s.rules[1].kind, RuleKind::Validation);
    assert_eq!(s.rules[1].level, Some(Level::Warning));
    assert_eq!(s.rules[2].field_type, Some(FieldType::Float));
    assert_eq!(s.mappings[2].cast, Some(FieldType::Integer));
    s.validate().unwrap();
    let back: PipelineSpec = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
    assert_eq!(back, s);
    let text = serde_json::to_value(&s).unwrap();
    assert_eq!(text["rules"][2]["type"], "float");
    assert_eq!(text["mode"], "incremental");

    let minimal = spec_with(json!({}));
    let text = serde_json::to_value(&minimal).unwrap();
    assert!(text.get("key").is_none() && text.get("cursor").is_none());
    assert!(minimal.mappings.is_empty() && minimal.rules.is_empty());
}

#[test]
fn unknown_fields_are_refused() {
    let r: Result<PipelineSpec, _> = serde_json::from_value(json!({
        "source": {"connection_id": "c1", "object": "a"},
        "destination": {"connection_id": "c2", "object": "b"},
        "mode": "append",
        "colour": "blue"
    }));
    assert!(r.is_err());
    let r: Result<PipelineSpec, _> = serde_json::from_value(json!({
        "source": {"connection_id": "c1", "object": "a"},
        "destination": {"connection_id": "c2", "object": "b"},
        "mode": "append",
        "rules": [{"kind": "validation", "expression": "true", "severity": "high"}]
    }));
    assert!(r.is_err());
}

#[test]
fn cel_errors_name_the_part_and_the_position() {
    let s = spec_with(json!({"rules": [
        {"kind": "validation", "expression": "price > 0.0"},
        {"kind": "validation", "expression": "price >="}
    ]}));
    let e = error(&s);
    assert_eq!(e.field, "rules[1].expression");
    assert!(
        e.reason.starts_with("does not parse at line 1, column 9: "),
        "{}",
        e.reason
    );

    let s = spec_with(json!({"rules": [
        {"kind": "import", "expression": "a &&\n  )", "target": "x"}
    ]}));
    let e = error(&s);
    assert_eq!(e.field, "rules[0].expression");
    assert!(
        e.reason.starts_with("does not parse at line 2, column 3: "),
        "{}",
        e.reason
    );

    let s = spec_with(json!({"mappings": [
        {"source": "a", "destination": "a", "transform": "value +"}
    ]}));
    assert_eq!(error(&s).field, "mappings[0].transform");

    let s = spec_with(json!({"filter": "status == 'open"}));
    let e = error(&s);
    assert_eq!(e.field, "filter");
    assert!(e.reason.contains("line 1, column"), "{}", e.reason);
    assert_eq!(e.to_string(), format!("filter: {}", e.reason));
}

#[test]
fn rules_have_the_parts_of_their_kind() {
    let cases = [
        (
            json!({"kind": "import", "expression": "1"}),
            "rules[0].target",
        ),
        (
            json!({"kind": "export", "expression": "1"}),
            "rules[0].target",
        ),
        (
            json!({"kind": "import", "expression": "1", "target": ""}),
            "rules[0].target",
        ),
        (
            json!({"kind": "validation", "expression": "true", "target": "x"}),
            "rules[0].target",
        ),
        (
            json!({"kind": "validation", "expression": "true", "type": "integer"}),
            "rules[0].type",
        ),
        (
            json!({"kind": "import", "expression": "1", "target": "x", "level": "warning"}),
            "rules[0].level",
        ),
        (
            json!({"kind": "export", "expression": "1", "target": "x", "message": "m"}),
            "rules[0].message",
        ),
    ];
    for (rule, field) in cases {
        let s = spec_with(json!({"rules": [rule]}));
        assert_eq!(error(&s).field, field, "{rule}");
    }
    let s = spec_with(json!({"rules": [
        {"kind": "validation", "expression": "true", "level": "error", "message": "m"},
        {"kind": "import", "expression": "1", "target": "x", "type": "integer"}
    ]}));
    s.validate().unwrap();
}

#[test]
fn modes_keys_and_cursors() {
    let cases = [
        (json!({"mode": "upsert"}), Some("key")),
        (json!({"mode": "upsert", "key": ["id"]}), None),
        (
            json!({"mode": "upsert", "key": ["id"], "cursor": "t"}),
            Some("cursor"),
        ),
        (
            json!({"mode": "incremental", "key": ["id"]}),
            Some("cursor"),
        ),
        (json!({"mode": "incremental", "cursor": "t"}), Some("key")),
        (
            json!({"mode": "incremental", "cursor": "t", "key": ["id"]}),
            None,
        ),
        (
            json!({"mode": "full_refresh", "cursor": "t"}),
            Some("cursor"),
        ),
        (json!({"mode": "append", "cursor": "t"}), Some("cursor")),
        (json!({"mode": "append", "key": ["id"]}), None),
        (json!({"mode": "upsert", "key": ["id", "id"]}), Some("key")),
        (json!({"mode": "upsert", "key": [""]}), Some("key")),
    ];
    for (parts, field) in cases {
        let s = spec_with(parts.clone());
        assert_eq!(
            s.validate().err().map(|e| e.field),
            field.map(str::to_owned),
            "{parts}"
        );
    }
    let e = error(&spec_with(json!({"mode": "incremental", "cursor": "t"})));
    assert!(e.reason.contains("upsert"), "{}", e.reason);
}

#[test]
fn key_fields_are_destination_fields() {
    let s = spec_with(json!({
        "mode": "upsert",
        "key": ["id"],
        "mappings": [{"source": "id", "destination": "order_id"}]
    }));
    let e = error(&s);
    assert_eq!(e.field, "key");
    assert!(e.reason.contains("'id'"), "{}", e.reason);

    let s = spec_with(json!({
        "mode": "upsert",
        "key": ["ref"],
        "mappings": [{"source": "id", "destination": "order_id"}],
        "rules": [{"kind": "export", "expression": "string(order_id)", "target": "ref"}]
    }));
    s.validate().unwrap();
}

#[test]
fn bad_schedules_are_refused() {
    for (schedule, says) in [
        ("* * * *", "has 4"),
        ("0 0 * * * * 2030", "has 7"),
        ("61 * * * *", "not a valid cron expression"),
        ("* * * * mondays", "not a valid cron expression"),
        ("", "empty"),
    ] {
        let e = error(&spec_with(json!({"schedule": schedule})));
        assert_eq!(e.field, "schedule");
        assert!(e.reason.contains(says), "{schedule}: {}", e.reason);
    }
    for schedule in [
        "*/5 * * * *",
        "30 */5 * * * *",
        "0 3 * * MON-FRI",
        "@hourly",
    ] {
        spec_with(json!({"schedule": schedule})).validate().unwrap();
    }
}

#[test]
fn destinations_are_unique_and_not_empty() {
    let s = spec_with(json!({"mappings": [
        {"source": "a", "destination": "x"},
        {"source": "b", "destination": "x"}
    ]}));
    let e = error(&s);
    assert_eq!(e.field, "mappings[1].destination");
    assert!(e.reason.contains("mappings[0]"), "{}", e.reason);

    let s = spec_with(json!({"mappings": [{"source": "a", "destination": ""}]}));
    assert_eq!(error(&s).field, "mappings[0].destination");
    let s = spec_with(json!({"mappings": [{"source": "", "destination": "a"}]}));
    assert_eq!(error(&s).field, "mappings[0].source");
}

#[test]
fn checks_against_the_discovered_fields() {
    let fields = [
        meta("id", FieldType::Integer, "int8", false, true),
        meta("name", FieldType::String, "text", true, false),
        meta("price", FieldType::Decimal, "numeric(12,2)", true, false),
        meta(
            "updated_at",
            FieldType::TimestampTz,
            "timestamptz",
            false,
            false,
        ),
        meta("tags", FieldType::Json, "jsonb", true, false),
    ];
    let ok = spec_with(json!({
        "mode": "incremental",
        "cursor": "updated_at",
        "key": ["item_id"],
        "filter": "type(price) == double",
        "mappings": [
            {"source": "id", "destination": "item_id"},
            {"source": "name", "destination": "label", "transform": "value.upperAscii() + string(id)"},
            {"source": "clean", "destination": "clean"}
        ],
        "rules": [
            {"kind": "import", "expression": "name.trim()", "target": "clean"},
            {"kind": "validation", "expression": "tags.all(t, t != '') && clean != ''"},
            {"kind": "export", "expression": "label + '!'", "target": "label"},
            {"kind": "export", "expression": "label + string(item_id)", "target": "extra"}
        ]
    }));
    ok.validate_against(&fields).unwrap();

    let cases = [
        (
            json!({"mappings": [{"source": "nope", "destination": "x"}]}),
            "mappings[0].source",
        ),
        (
            json!({"mode": "incremental", "cursor": "nope", "key": ["id"]}),
            "cursor",
        ),
        (
            json!({"rules": [{"kind": "validation", "expression": "nope > 1"}]}),
            "rules[0].expression",
        ),
        (json!({"filter": "nope"}), "filter"),
        (
            json!({"mappings": [{"source": "id", "destination": "id", "transform": "value + other"}]}),
            "mappings[0].transform",
        ),
        // an import rule sees earlier targets only
        (
            json!({"rules": [
                {"kind": "import", "expression": "later", "target": "first"},
                {"kind": "import", "expression": "1", "target": "later"}
            ]}),
            "rules[0].expression",
        ),
        // export rules see destination names, not source names
        (
            json!({
                "mappings": [{"source": "id", "destination": "item_id"}],
                "rules": [{"kind": "export", "expression": "id + 1", "target": "item_id"}]
            }),
            "rules[0].expression",
        ),
        (json!({"mode": "upsert", "key": ["nope"]}), "key"),
    ];
    for (parts, field) in cases {
        let s = spec_with(parts.clone());
        let e = s.validate_against(&fields).unwrap_err();
        assert_eq!(e.field, field, "{parts}: {e}");
    }
}

#[test]
fn write_modes() {
    let mode = |m: &str| spec_with(json!({"mode": m, "key": ["id"], "cursor": "t"})).write_mode();
    assert_eq!(
        spec_with(json!({"mode": "full_refresh"})).write_mode(),
        WriteMode::Replace
    );
    assert_eq!(
        spec_with(json!({"mode": "append"})).write_mode(),
        WriteMode::Append
    );
    assert_eq!(
        mode("incremental"),
        WriteMode::Upsert {
            key: vec!["id".into()]
        }
    );
    assert_eq!(
        spec_with(json!({"mode": "upsert", "key": ["id"]})).write_mode(),
        WriteMode::Upsert {
            key: vec!["id".into()]
        }
    );
}

#[test]
fn read_fields_when_the_definition_tells() {
    let s = spec_with(json!({
        "mode": "incremental",
        "cursor": "updated_at",
        "key": ["a"],
        "mappings": [
            {"source": "id", "destination": "a"},
            {"source": "name", "destination": "b", "transform": "value + suffix"}
        ],
        "rules": [{"kind": "validation", "expression": "items.all(i, i > price)"}]
    }));
    assert_eq!(
        s.read_fields(),
        Some(vec![
            "id".to_owned(),
            "name".to_owned(),
            "items".to_owned(),
            "price".to_owned(),
            "suffix".to_owned(),
            "updated_at".to_owned()
        ])
    );
    assert_eq!(spec_with(json!({})).read_fields(), None);
    let s = spec_with(json!({
        "mappings": [{"source": "id", "destination": "a"}],
        "rules": [{"kind": "import", "expression": "1", "target": "x"}]
    }));
    assert_eq!(s.read_fields(), None);
}

#[test]
fn rules_are_type_checked_against_the_discovered_fields() {
    let fields = [
        meta("id", FieldType::Integer, "int8", false, true),
        meta("full_name", FieldType::String, "text", true, false),
        meta("credit_limit", FieldType::Decimal, "numeric", true, false),
        meta("active", FieldType::Boolean, "bool", true, false),
    ];
    let refused = |parts: serde_json::Value| -> SpecError {
        spec_with(parts).validate_against(&fields).unwrap_err()
    };
    // the rules the new user wrote, which emptied the destination
    let e = refused(json!({"rules": [
        {"kind": "validation", "expression": "credit_limit + 1.0", "message": "limit"}
    ]}));
    assert_eq!(e.field, "rules[0].expression");
    assert_eq!(
        e.reason,
        "must give a boolean (true accepts the record), but gives a double"
    );
    let e = refused(json!({"rules": [
        {"kind": "validation", "expression": "id > 0"},
        {"kind": "validation", "expression": "full_name > 5"}
    ]}));
    assert_eq!(e.field, "rules[1].expression");
    assert_eq!(
        e.reason,
        "at line 1, column 11: '>' does not apply to a string and an int"
    );
    let e = refused(json!({"filter": "active + 1"}));
    assert_eq!(e.field, "filter");
    assert!(
        e.reason
            .starts_with("at line 1, column 8: '+' does not apply to a bool"),
        "{}",
        e.reason
    );
    // an import rule gives what its target holds
    let e = refused(json!({"rules": [
        {"kind": "import", "expression": "full_name.size() > 3", "target": "id"}
    ]}));
    assert_eq!(
        e.reason,
        "gives a bool, which cannot be stored in 'id' (integer)"
    );
    // a transform too, against the cast
    let e = refused(json!({"mappings": [
        {"source": "id", "destination": "id", "transform": "value > 1", "cast": "float"}
    ]}));
    assert_eq!(e.field, "mappings[0].transform");

    // what types is accepted, JSON and comprehensions included
    spec_with(json!({
        "rules": [
            {"kind": "import", "expression": "full_name.upperAscii()", "target": "shout"},
            {"kind": "validation", "expression": "credit_limit >= 0.0 && shout != ''"},
            {"kind": "validation", "expression": "[1, 2].all(x, x > 0) && id in [1, 2, 3]"}
        ],
        "filter": "active"
    }))
    .validate_against(&fields)
    .unwrap();
}

#[test]
fn redact_transforms_are_checked_and_keep_keys_unique() {
    let ok = spec_with(json!({
        "mode": "upsert",
        "key": ["email"],
        "mappings": [
            {"source": "email", "destination": "email", "transform": {"redact": "scramble"}},
            {"source": "card", "destination": "card", "transform": {"redact": "partial", "keep": 4}},
            {"source": "name", "destination": "name", "transform": {"redact": "mask"}},
            {"source": "phone", "destination": "phone", "transform": {"redact": "hide"}},
            {"source": "id", "destination": "id_text", "transform": {"redact": "partial"}, "cast": "string"}
        ]
    }));
    ok.validate().unwrap();
    assert!(ok.uses_scramble());
    let back: PipelineSpec = serde_json::from_value(serde_json::to_value(&ok).unwrap()).unwrap();
    assert_eq!(back, ok);
    let fields = [
        meta("id", FieldType::Integer, "int8", false, true),
        meta("email", FieldType::String, "text", false, false),
        meta("card", FieldType::String, "text", true, false),
        meta("name", FieldType::String, "text", true, false),
        meta("phone", FieldType::String, "text", true, false),
    ];
    ok.validate_against(&fields).unwrap();
    // Only the expressions' fields and the mapped ones are read.
    assert_eq!(
        ok.read_fields().unwrap(),
        ["email", "card", "name", "phone", "id"].map(String::from)
    );

    let bad_keep = spec_with(json!({"mappings": [
        {"source": "id", "destination": "id"},
        {"source": "card", "destination": "card", "transform": {"redact": "partial", "keep": 0}}
    ]}));
    let e = error(&bad_keep);
    assert_eq!(e.field, "mappings[1].transform");
    assert!(
        e.reason.contains("keep must be from 1 to 64"),
        "{}",
        e.reason
    );
    let keep_on_mask = spec_with(json!({"mappings": [
        {"source": "card", "destination": "card", "transform": {"redact": "mask", "keep": 2}}
    ]}));
    assert_eq!(error(&keep_on_mask).field, "mappings[0].transform");

    for kind in ["mask", "partial", "hide"] {
        let masked_key = spec_with(json!({
            "mode": "upsert",
            "key": ["email"],
            "mappings": [
                {"source": "id", "destination": "id"},
                {"source": "email", "destination": "email", "transform": {"redact": kind}}
            ]
        }));
        let e = error(&masked_key);
        assert_eq!(e.field, "mappings[1].transform");
        assert!(
            e.reason
                .contains("the key must stay unique: only scramble keeps it"),
            "{}",
            e.reason
        );
    }

    // A redaction gives text: a cast to anything but text is refused.
    let cast = spec_with(json!({"mappings": [
        {"source": "id", "destination": "id", "transform": {"redact": "mask"}, "cast": "integer"}
    ]}));
    let e = error(&cast);
    assert_eq!(e.field, "mappings[0].transform");
    assert!(
        e.reason.contains("which cannot be cast to integer"),
        "{}",
        e.reason
    );

    // An unknown part of the object form is named.
    let unknown = serde_json::from_value::<PipelineSpec>(json!({
        "source": {"connection_id": "a", "object": "b"},
        "destination": {"connection_id": "a", "object": "c"},
        "mode": "append",
        "mappings": [{"source": "a", "destination": "a", "transform": {"redact": "mask", "kep": 1}}]
    }))
    .unwrap_err();
    assert!(
        unknown.to_string().contains("unknown field `kep`"),
        "{unknown}"
    );
}
