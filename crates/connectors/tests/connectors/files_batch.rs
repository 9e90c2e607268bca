//! Bulk reads of the `files` connector: CSV, JSON Lines, JSON arrays and uploads as Arrow
//! batches.

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use futures_util::TryStreamExt;
use lockstep_connectors::batch::{BatchSource, CursorSpec, ReadSpec, keys};
use lockstep_connectors::files::{CsvOptions, FilesConfig, FilesConnector};
use lockstep_connectors::{
    ConnectorError, Context, EgressPolicy, FailureKind, FilesRoot, UploadedFile,
};
use std::fmt::Write as _;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

const ROWS: i64 = 20_000;
/// 2024-05-01T00:00:00Z.
const BASE: i64 = 1_714_521_600;
/// 2024-01-01 in days since 1970-01-01.
const NEW_YEAR: i32 = 19_723;

/// `ROWS` records: id, name (with a comma, a quote and an umlaut), amount, active, day, at
/// (offsets vary), note (empty every tenth record).
fn big_csv() -> String {
    let mut csv = String::from("id,name,amount,active,day,at,note\n");
    for i in 1..=ROWS {
        let amount = if i % 7 == 0 {
            format!("{i}")
        } else {
            format!("{i}.5")
        };
        let day = time::Date::from_julian_day(
            time::Date::from_calendar_date(2024, time::Month::January, 1)
                .unwrap()
                .to_julian_day()
                + i32::try_from(i % 365).unwrap(),
        )
        .unwrap();
        let offset = if i % 2 == 0 {
            time::UtcOffset::UTC
        } else {
            time::UtcOffset::from_hms(2, 0, 0).unwrap()
        };
        let at = time::OffsetDateTime::from_unix_timestamp(BASE + i)
            .unwrap()
            .to_offset(offset)
            .format(&Rfc3339)
            .unwrap();
        let note = if i % 10 == 0 {
            String::new()
        } else {
            format!("n{i}")
        };
        writeln!(
            csv,
            "{i},\"name {i}, \"\"ü\"\"\",{amount},{},{day},{at},{note}",
            i % 2 == 0
        )
        .unwrap();
    }
    csv
}

fn connector(
    root: Option<FilesRoot>,
    directory: Option<&str>,
    uploads: Vec<UploadedFile>,
) -> FilesConnector {
    let config = FilesConfig {
        directory: directory.map(str::to_owned),
        csv: CsvOptions::default(),
    };
    FilesConnector::new(config, uploads, Context::new(EgressPolicy::default(), root))
}

/// A files directory with `data/` holding `files`.
fn directory(files: &[(&str, &str)]) -> (tempfile::TempDir, FilesConnector) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for (name, contents) in files {
        std::fs::write(data.join(name), contents).unwrap();
    }
    let root = FilesRoot::new(dir.path()).unwrap();
    (dir, connector(Some(root), Some("data"), Vec::new()))
}

fn spec(object: &str, batch_rows: usize) -> ReadSpec {
    ReadSpec {
        object: object.to_owned(),
        fields: None,
        cursor: None,
        batch_rows,
    }
}

async fn read_all(
    c: &FilesConnector,
    spec: ReadSpec,
) -> Result<(SchemaRef, Vec<RecordBatch>), ConnectorError> {
    let (schema, stream) = c.read(spec).await?;
    let batches = stream.try_collect().await?;
    Ok((schema, batches))
}

#[tokio::test]
async fn csv_is_read_in_batches_with_exact_values_and_types() {
    let (_dir, c) = directory(&[("big.csv", &big_csv())]);
    let (schema, batches) = read_all(&c, spec("big.csv", 3000)).await.unwrap();
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone(), f.is_nullable()))
        .collect();
    assert_eq!(
        fields,
        [
            ("id", DataType::Int64, false),
            ("name", DataType::Utf8, false),
            ("amount", DataType::Float64, false),
            ("active", DataType::Boolean, false),
            ("day", DataType::Date32, false),
            ("at", utc, false),
            ("note", DataType::Utf8, true),
        ]
    );
    for field in schema.fields() {
        assert_eq!(field.metadata()[keys::SOURCE], "files");
        assert_eq!(field.metadata()[keys::NATIVE], "csv");
    }
    let sizes: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
    assert_eq!(sizes, [3000, 3000, 3000, 3000, 3000, 3000, 2000]);

    let mut i = 0_i64;
    for batch in &batches {
        assert_eq!(batch.schema(), schema);
        let ids = batch.column(0).as_primitive::<Int64Type>();
        let names = batch.column(1).as_string::<i32>();
        let amounts = batch.column(2).as_primitive::<Float64Type>();
        let active = batch.column(3).as_boolean();
        let days = batch.column(4).as_primitive::<Date32Type>();
        let at = batch.column(5).as_primitive::<TimestampMicrosecondType>();
        let notes = batch.column(6).as_string::<i32>();
        for row in 0..batch.num_rows() {
            i += 1;
            assert_eq!(ids.value(row), i);
            assert_eq!(names.value(row), format!("name {i}, \"ü\""));
            let amount = if i % 7 == 0 { i as f64 } else { i as f64 + 0.5 };
            assert_eq!(amounts.value(row), amount);
            assert_eq!(active.value(row), i % 2 == 0);
            assert_eq!(days.value(row), NEW_YEAR + i32::try_from(i % 365).unwrap());
            assert_eq!(at.value(row), (BASE + i) * 1_000_000);
            if i % 10 == 0 {
                assert!(notes.is_null(row));
            } else {
                assert_eq!(notes.value(row), format!("n{i}"));
            }
        }
    }
    assert_eq!(i, ROWS);
}

#[tokio::test]
async fn json_lines_and_json_arrays_are_read() {
    let mut jsonl = String::new();
    for i in 1..=2500_u64 {
        let big = if i == 2 {
            "18446744073709551615".to_owned()
        } else {
            i.to_string()
        };
        writeln!(
            jsonl,
            r#"{{"seq": {i}, "kind": "k{i}", "payload": {{"n": {i}, "tags": ["a"]}}, "big": {big}, "ratio": {i}.25}}"#
        )
        .unwrap();
        if i % 100 == 0 {
            jsonl.push('\n');
        }
    }
    let array = r#"[{"id": 1, "paid": true, "total": 9.5, "coupon": null},
                    {"id": 2, "paid": false, "total": 3, "coupon": "X"}]"#;
    let (_dir, c) = directory(&[("events.jsonl", &jsonl), ("orders.json", array)]);

    let (schema, batches) = read_all(&c, spec("events.jsonl", 1000)).await.unwrap();
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| {
            (
                f.name().as_str(),
                f.data_type().clone(),
                f.metadata()[keys::TYPE].as_str(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("big", DataType::Utf8, "decimal"),
            ("kind", DataType::Utf8, "string"),
            ("payload", DataType::Utf8, "json"),
            ("ratio", DataType::Float64, "float"),
            ("seq", DataType::Int64, "integer"),
        ]
    );
    assert_eq!(
        batches
            .iter()
            .map(RecordBatch::num_rows)
            .collect::<Vec<_>>(),
        [1000, 1000, 500]
    );
    let last = &batches[2];
    assert_eq!(last.column(4).as_primitive::<Int64Type>().value(499), 2500);
    assert_eq!(last.column(1).as_string::<i32>().value(499), "k2500");
    let payload: serde_json::Value =
        serde_json::from_str(last.column(2).as_string::<i32>().value(0)).unwrap();
    assert_eq!(payload, serde_json::json!({"n": 2001, "tags": ["a"]}));
    assert_eq!(
        batches[0].column(0).as_string::<i32>().value(1),
        "18446744073709551615"
    );
    assert_eq!(
        last.column(3).as_primitive::<Float64Type>().value(499),
        2500.25
    );

    let (schema, batches) = read_all(&c, spec("orders.json", 10)).await.unwrap();
    let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["coupon", "id", "paid", "total"]);
    let batch = &batches[0];
    assert!(batch.column(0).is_null(0));
    assert_eq!(batch.column(0).as_string::<i32>().value(1), "X");
    assert_eq!(batch.column(3).as_primitive::<Float64Type>().value(1), 3.0);
    assert!(!batch.column(2).as_boolean().value(1));
}

#[tokio::test]
async fn an_uploaded_csv_is_read() {
    let upload = UploadedFile {
        name: "people.csv".to_owned(),
        contents: Zeroizing::new(b"id,name\n1,Ann\n2,\n3,Bo\n".to_vec()),
    };
    let c = connector(None, None, vec![upload]);
    let (schema, batches) = read_all(&c, spec("uploads/people.csv", 2)).await.unwrap();
    assert_eq!(schema.field(0).data_type(), &DataType::Int64);
    assert_eq!(
        batches
            .iter()
            .map(RecordBatch::num_rows)
            .collect::<Vec<_>>(),
        [2, 1]
    );
    assert!(batches[0].column(1).is_null(1));
    assert_eq!(batches[1].column(1).as_string::<i32>().value(0), "Bo");
    let err = c.read(spec("uploads/other.csv", 2)).await.err().unwrap();
    assert_eq!(err.kind(), Some(FailureKind::NotFound));
}

#[tokio::test]
async fn a_late_value_that_does_not_fit_names_file_line_and_field_not_the_value() {
    let mut csv = String::from("id,amount,label\n");
    for i in 1..=1500 {
        let amount = if i == 1200 {
            "SECRET-CANARY".to_owned()
        } else {
            i.to_string()
        };
        writeln!(csv, "{i},{amount},l{i}").unwrap();
    }
    let mut empty = String::from("id,amount\n");
    for i in 1..=1100 {
        let amount = if i == 1050 {
            String::new()
        } else {
            i.to_string()
        };
        writeln!(empty, "{i},{amount}").unwrap();
    }
    let mut jsonl = String::new();
    for i in 1..=1100 {
        if i == 1100 {
            jsonl.push_str("{\"id\": \"SECRET-CANARY\"}\n");
        } else {
            writeln!(jsonl, "{{\"id\": {i}}}").unwrap();
        }
    }
    let (_dir, c) = directory(&[
        ("late.csv", &csv),
        ("empty.csv", &empty),
        ("late.jsonl", &jsonl),
    ]);
    for (file, line, field) in [
        ("late.csv", "line 1201", "amount"),
        ("empty.csv", "line 1051", "amount"),
        ("late.jsonl", "line 1100", "id"),
    ] {
        let (schema, stream) = c.read(spec(file, 100)).await.unwrap();
        assert_eq!(schema.field(0).data_type(), &DataType::Int64);
        let err = stream.try_collect::<Vec<_>>().await.unwrap_err();
        assert_eq!(err.kind(), Some(FailureKind::Protocol), "{err}");
        let message = err.to_string();
        assert!(
            message.contains(file) && message.contains(line) && message.contains(field),
            "{message}"
        );
        assert!(!message.contains("SECRET-CANARY"), "{message}");
    }
    // The records before the bad one arrive first.
    let (_, stream) = c.read(spec("late.csv", 100)).await.unwrap();
    let results: Vec<_> = futures_util::StreamExt::collect::<Vec<_>>(stream).await;
    let good: usize = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(good, 1100);
    assert!(results.last().unwrap().is_err());
}

#[tokio::test]
async fn fields_project_and_cursors_are_refused() {
    let (_dir, c) = directory(&[("big.csv", &big_csv())]);
    let (schema, batches) = read_all(
        &c,
        ReadSpec {
            fields: Some(vec!["at".into(), "id".into()]),
            ..spec("big.csv", 8192)
        },
    )
    .await
    .unwrap();
    let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["at", "id"]);
    assert_eq!(batches[0].num_columns(), 2);
    assert_eq!(batches[0].column(1).as_primitive::<Int64Type>().value(0), 1);
    assert_eq!(
        batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
        20_000
    );

    let err = c
        .read(ReadSpec {
            fields: Some(vec!["id".into(), "nope".into()]),
            ..spec("big.csv", 10)
        })
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), None);
    assert!(err.to_string().contains("nope"), "{err}");

    let err = c
        .read(ReadSpec {
            cursor: Some(CursorSpec {
                field: "id".into(),
                after: None,
            }),
            ..spec("big.csv", 10)
        })
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), None);
    assert!(err.to_string().contains("incrementally"), "{err}");

    let err = c.read(spec("missing.csv", 10)).await.err().unwrap();
    assert_eq!(err.kind(), Some(FailureKind::NotFound));
}

#[tokio::test]
async fn a_semicolon_windows_1252_export_with_a_byte_order_mark_is_read_as_discovered() {
    // A UTF-8 byte order mark before Windows-1252 text, semicolons, a quoted semicolon, CRLF.
    let (text, _, lossy) = encoding_rs::WINDOWS_1252
        .encode("Teil;Menge;Bezeichnung\r\nA-1;2;Rohr 90° Stück\r\nB-2;10;\"Flansch; DN50\"\r\n");
    assert!(!lossy);
    let upload = UploadedFile {
        name: "Stückliste Montage.csv".to_owned(),
        contents: Zeroizing::new([b"\xEF\xBB\xBF".as_slice(), &text].concat()),
    };
    let c = connector(None, None, vec![upload]);
    let (schema, batches) = read_all(&c, spec("uploads/Stückliste Montage.csv", 100))
        .await
        .unwrap();
    let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["Teil", "Menge", "Bezeichnung"]);
    assert_eq!(schema.field(1).data_type(), &DataType::Int64);
    let batch = &batches[0];
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(
        batch
            .column(1)
            .as_primitive::<Int64Type>()
            .values()
            .to_vec(),
        [2, 10]
    );
    let described = batch.column(2).as_string::<i32>();
    assert_eq!(described.value(0), "Rohr 90° Stück");
    assert_eq!(described.value(1), "Flansch; DN50");
}

#[tokio::test]
async fn a_real_cad_export_is_read_in_batches() {
    let root = FilesRoot::new(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/bom"),
    )
    .unwrap();
    let c = connector(Some(root), Some("solidworks"), Vec::new());
    let (schema, batches) = read_all(&c, spec("ACV0158450_sw.csv", 50)).await.unwrap();
    assert_eq!(schema.fields().len(), 7);
    // 159 lines: the title row names the fields, the rest are records.
    assert_eq!(
        batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
        158
    );
    let degrees = batches.iter().any(|b| {
        let described = b.column(5).as_string::<i32>();
        (0..b.num_rows()).any(|i| described.value(i).contains("SR 90° FNPT"))
    });
    assert!(degrees, "the degree sign of Windows-1252 is read");
    let err = read_all(&c, spec("ACV0121010_sw.csv", 50))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Protocol));
    assert!(err.to_string().contains("line 170"), "{err}");
}
