//! The `files` connector's tests.

use lockstep_connectors::files::{CsvOptions, FilesConfig, FilesConnector};
use lockstep_connectors::{
    Connector, Context, EgressPolicy, FailureKind, FieldType, FilesRoot, ObjectKind, ObjectMeta,
    UploadedFile,
};
use serde_json::{Value, json};
use std::path::Path;
use zeroize::Zeroizing;

const CUSTOMERS: &str = "\
id,name,city,balance,active,joined,seen_at,note
1,Zoë Ærø,\"Paris, France\",12.5,true,2024-01-02,2024-05-01T10:00:00Z,
2,李雷,Berlin,7,false,2023-12-31,2024-05-02T11:30:00+02:00,\"said \"\"hi\"\"\"
3,Ünal,,,true,,2024-05-03T00:00:00Z,plain
";

/// A files directory holding `data/` with one file of each format, a symbolic link to a file
/// outside it, a folder and an unrelated file; and a file outside the directory.
fn files_root() -> (tempfile::TempDir, tempfile::TempDir, FilesRoot) {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("customers.csv"), CUSTOMERS).unwrap();
    std::fs::write(
        data.join("orders.json"),
        r#"[{"id": 10, "total": 9.5, "items": [1, 2], "meta": {"a": 1}, "paid": true},
            {"id": 11, "total": 3, "items": [], "meta": null, "paid": false, "coupon": "X"}]"#,
    )
    .unwrap();
    std::fs::write(
        data.join("events.jsonl"),
        "{\"seq\": 1, \"kind\": \"start\"}\n\n{\"seq\": 2, \"kind\": \"stop\", \"extra\": 1.5}\n",
    )
    .unwrap();
    std::fs::write(data.join("notes.txt"), "not a data file").unwrap();
    std::fs::create_dir(data.join("nested.csv")).unwrap();
    std::fs::write(outside.path().join("secret.csv"), "password\nhunter2\n").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.csv"), data.join("link.csv")).unwrap();
    let root = FilesRoot::new(dir.path()).unwrap();
    (dir, outside, root)
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

fn upload(name: &str, contents: &str) -> UploadedFile {
    UploadedFile {
        name: name.to_owned(),
        contents: Zeroizing::new(contents.as_bytes().to_vec()),
    }
}

fn object<'a>(objects: &'a [ObjectMeta], name: &str) -> &'a ObjectMeta {
    objects
        .iter()
        .find(|o| o.name == name)
        .unwrap_or_else(|| panic!("{name} is not discovered"))
}

fn types(object: &ObjectMeta) -> Vec<(&str, FieldType, bool)> {
    object
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.field_type, f.nullable))
        .collect()
}

#[tokio::test]
async fn discovers_the_folder_s_files_and_uploads() {
    let (_dir, _outside, root) = files_root();
    let files = connector(
        Some(root),
        Some("data"),
        vec![upload("extra.ndjson", "{\"x\": 1}\n{\"x\": 2}\n")],
    );
    files.test().await.unwrap();
    let objects = files.discover().await.unwrap();
    let names: Vec<_> = objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "customers.csv",
            "events.jsonl",
            "orders.json",
            "uploads/extra.ndjson"
        ],
        "no symbolic link, folder or other file is listed"
    );
    assert!(objects.iter().all(|o| o.kind == ObjectKind::File));

    let customers = object(&objects, "customers.csv");
    assert_eq!(
        types(customers),
        [
            ("id", FieldType::Integer, false),
            ("name", FieldType::String, false),
            ("city", FieldType::String, true),
            ("balance", FieldType::Float, true),
            ("active", FieldType::Boolean, false),
            ("joined", FieldType::Date, true),
            ("seen_at", FieldType::TimestampTz, false),
            ("note", FieldType::String, true),
        ]
    );
    assert!(
        customers
            .fields
            .iter()
            .all(|f| f.native == "csv" && !f.primary_key)
    );

    let orders = object(&objects, "orders.json");
    assert_eq!(
        types(orders),
        [
            ("id", FieldType::Integer, false),
            ("items", FieldType::Json, false),
            ("meta", FieldType::Json, true),
            ("paid", FieldType::Boolean, false),
            ("total", FieldType::Float, false),
            ("coupon", FieldType::String, true),
        ]
    );
    assert!(orders.fields.iter().all(|f| f.native == "json"));

    let events = object(&objects, "events.jsonl");
    assert_eq!(
        types(events),
        [
            ("kind", FieldType::String, false),
            ("seq", FieldType::Integer, false),
            ("extra", FieldType::Float, true),
        ]
    );
    let extra = object(&objects, "uploads/extra.ndjson");
    assert_eq!(types(extra), [("x", FieldType::Integer, false)]);
}

#[tokio::test]
async fn samples_typed_records() {
    let (_dir, _outside, root) = files_root();
    let files = connector(Some(root), Some("./data"), Vec::new());

    let rows = files.sample("customers.csv", 100).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        Value::Object(rows[0].clone()),
        json!({
            "id": 1, "name": "Zoë Ærø", "city": "Paris, France", "balance": 12.5, "active": true,
            "joined": "2024-01-02", "seen_at": "2024-05-01T10:00:00Z", "note": null,
        })
    );
    assert_eq!(
        rows[1]["balance"],
        json!(7.0),
        "a float column's integers are floats"
    );
    assert_eq!(rows[1]["note"], json!("said \"hi\""));
    assert_eq!(rows[2]["city"], Value::Null);
    assert_eq!(rows[2]["joined"], Value::Null);

    let limited = files.sample("customers.csv", 2).await.unwrap();
    assert_eq!(limited.len(), 2);

    let orders = files.sample("orders.json", 10).await.unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0]["items"], json!([1, 2]));
    let events = files.sample("events.jsonl", 10).await.unwrap();
    assert_eq!(events[1]["kind"], json!("stop"));
}

#[tokio::test]
async fn never_reads_links_or_undiscovered_names() {
    let (_dir, _outside, root) = files_root();
    let files = connector(Some(root), Some("data"), Vec::new());
    for name in [
        "link.csv",
        "notes.txt",
        "nested.csv",
        "../data/customers.csv",
        "/etc/passwd",
        "missing.csv",
        "uploads/customers.csv",
    ] {
        let err = files.sample(name, 10).await.unwrap_err();
        assert_eq!(err.kind(), Some(FailureKind::NotFound), "{name}: {err}");
        assert!(!err.to_string().contains("hunter2"));
    }
}

#[tokio::test]
async fn refuses_folders_outside_the_files_directory() {
    let (_dir, _outside, root) = files_root();
    for (directory, kind) in [
        ("../x", None),
        ("/etc", None),
        ("data/link.csv", Some(FailureKind::Policy)),
    ] {
        let files = connector(Some(root.clone()), Some(directory), Vec::new());
        let err = files.test().await.unwrap_err();
        assert_eq!(err.kind(), kind, "{directory}: {err}");
        let err = files.discover().await.unwrap_err();
        assert_eq!(err.kind(), kind, "{directory}: {err}");
    }
    let files = connector(Some(root), Some("missing"), Vec::new());
    let err = files.test().await.unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::NotFound), "{err}");
}

#[tokio::test]
async fn a_folder_needs_the_operator_s_files_directory() {
    let files = connector(None, Some("data"), Vec::new());
    let err = files.test().await.unwrap_err();
    assert!(err.kind().is_none());
    assert!(err.to_string().contains("--files-root"), "{err}");
}

#[tokio::test]
async fn uploads_only() {
    let empty = connector(None, None, Vec::new());
    assert!(empty.test().await.is_err(), "neither a folder nor uploads");
    assert!(empty.discover().await.unwrap().is_empty());

    let files = connector(
        None,
        None,
        vec![
            upload("people.csv", "name;age\nAda;36\nAlan;41\n"),
            upload("../escape.csv", "a\n1\n"),
            upload("readme.md", "# hi"),
        ],
    );
    files.test().await.unwrap();
    let objects = files.discover().await.unwrap();
    let names: Vec<_> = objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["uploads/people.csv"]);
    // The default delimiter is a comma: one column.
    assert_eq!(types(&objects[0]), [("name;age", FieldType::String, false)]);

    let semicolons = FilesConnector::new(
        FilesConfig {
            directory: None,
            csv: CsvOptions {
                delimiter: ";".to_owned(),
                header: true,
            },
        },
        vec![upload("people.csv", "name;age\nAda;36\nAlan;41\n")],
        Context::new(EgressPolicy::default(), None),
    );
    let rows = semicolons.sample("uploads/people.csv", 10).await.unwrap();
    assert_eq!(
        Value::Object(rows[1].clone()),
        json!({"name": "Alan", "age": 41})
    );
    let err = semicolons.sample("people.csv", 10).await.unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::NotFound));
}

#[tokio::test]
async fn csv_without_a_header() {
    let files = FilesConnector::new(
        FilesConfig {
            directory: None,
            csv: CsvOptions {
                delimiter: "\t".to_owned(),
                header: false,
            },
        },
        vec![upload("t.csv", "1\tone\n2\ttwo\n")],
        Context::new(EgressPolicy::default(), None),
    );
    let objects = files.discover().await.unwrap();
    assert_eq!(
        types(&objects[0]),
        [
            ("column_1", FieldType::Integer, false),
            ("column_2", FieldType::String, false)
        ]
    );
    let rows = files.sample("uploads/t.csv", 10).await.unwrap();
    assert_eq!(
        Value::Object(rows[0].clone()),
        json!({"column_1": 1, "column_2": "one"})
    );
}

#[tokio::test]
async fn malformed_files_are_named_without_their_content() {
    const CANARY: &str = "CANARY-7f3a9c";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    write(&data, "bad.csv", &format!("a,b\n1,2\n3,{CANARY},oops\n"));
    let root = FilesRoot::new(dir.path()).unwrap();
    let files = connector(Some(root.clone()), Some("data"), Vec::new());
    let err = files.discover().await.unwrap_err();
    let message = err.to_string();
    assert_eq!(err.kind(), Some(FailureKind::Protocol), "{message}");
    assert!(
        message.contains("bad.csv") && message.contains("line 3"),
        "{message}"
    );
    assert!(!message.contains(CANARY), "{message}");
    let err = files.sample("bad.csv", 1).await.unwrap_err();
    assert!(!err.to_string().contains(CANARY));

    std::fs::remove_file(data.join("bad.csv")).unwrap();
    write(
        &data,
        "bad.json",
        &format!("[{{\"a\": 1}},\n {{\"a\": {CANARY}}}]"),
    );
    let err = files.discover().await.unwrap_err();
    let message = err.to_string();
    assert_eq!(err.kind(), Some(FailureKind::Protocol), "{message}");
    assert!(
        message.contains("bad.json") && message.contains("line 2"),
        "{message}"
    );
    assert!(!message.contains(CANARY), "{message}");

    std::fs::remove_file(data.join("bad.json")).unwrap();
    write(
        &data,
        "bad.jsonl",
        &format!("{{\"a\": 1}}\n{{\"a\": \"{CANARY}\"\n"),
    );
    let err = files.discover().await.unwrap_err();
    let message = err.to_string();
    assert_eq!(err.kind(), Some(FailureKind::Protocol), "{message}");
    assert!(
        message.contains("bad.jsonl") && message.contains("line 2"),
        "{message}"
    );
    assert!(!message.contains(CANARY), "{message}");

    std::fs::remove_file(data.join("bad.jsonl")).unwrap();
    write(&data, "object.json", "{\"a\": [1]}");
    let err = files.discover().await.unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Protocol));
    assert!(err.to_string().contains("array"), "{err}");
}

fn write(dir: &Path, name: &str, contents: &str) {
    std::fs::write(dir.join(name), contents).unwrap();
}
