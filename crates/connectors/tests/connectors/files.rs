//! The `files` connector's tests.

use lockstep_connectors::files::{CsvOptions, FileOptions, FilesConfig, FilesConnector};
use lockstep_connectors::{
    Connector, Context, EgressPolicy, FailureKind, FieldType, FileLayout, FilesRoot, ObjectKind,
    ObjectMeta, Secrets, UploadedFile,
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
    // The delimiter is detected.
    assert_eq!(
        types(&objects[0]),
        [
            ("name", FieldType::String, false),
            ("age", FieldType::Integer, false)
        ]
    );

    let semicolons = FilesConnector::new(
        FilesConfig {
            directory: None,
            csv: CsvOptions {
                delimiter: Some(";".to_owned()),
                ..CsvOptions::default()
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
                delimiter: Some("\t".to_owned()),
                header: false,
                ..CsvOptions::default()
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

/// The error discovery gives the only file of `files`, which is listed all the same.
async fn discovery_error(files: &FilesConnector) -> String {
    let objects = files.discover().await.unwrap();
    assert_eq!(objects.len(), 1);
    assert!(objects[0].fields.is_empty());
    objects[0].error.clone().unwrap()
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
    let message = discovery_error(&files).await;
    assert!(
        message.contains("bad.csv") && message.contains("line 3"),
        "{message}"
    );
    assert!(!message.contains(CANARY), "{message}");
    let err = files.sample("bad.csv", 1).await.unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Protocol), "{err}");
    assert!(!err.to_string().contains(CANARY));

    std::fs::remove_file(data.join("bad.csv")).unwrap();
    write(
        &data,
        "bad.json",
        &format!("[{{\"a\": 1}},\n {{\"a\": {CANARY}}}]"),
    );
    let message = discovery_error(&files).await;
    assert!(
        message.contains("bad.json") && message.contains("line 2"),
        "{message}"
    );
    assert!(!message.contains(CANARY), "{message}");
    let err = files.sample("bad.json", 1).await.unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Protocol), "{err}");

    std::fs::remove_file(data.join("bad.json")).unwrap();
    write(
        &data,
        "bad.jsonl",
        &format!("{{\"a\": 1}}\n{{\"a\": \"{CANARY}\"\n"),
    );
    let message = discovery_error(&files).await;
    assert!(
        message.contains("bad.jsonl") && message.contains("line 2"),
        "{message}"
    );
    assert!(!message.contains(CANARY), "{message}");

    std::fs::remove_file(data.join("bad.jsonl")).unwrap();
    write(&data, "object.json", "{\"a\": [1]}");
    let message = discovery_error(&files).await;
    assert!(message.contains("array"), "{message}");
}

/// `text` in Windows-1252, as Excel saves "CSV" on a Western European Windows.
fn windows_1252(text: &str) -> Vec<u8> {
    let (bytes, _, lossy) = encoding_rs::WINDOWS_1252.encode(text);
    assert!(!lossy);
    bytes.into_owned()
}

fn utf16le_with_bom(text: &str) -> Vec<u8> {
    [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect()
}

fn layout(encoding: &str, delimiter: &str) -> Option<FileLayout> {
    Some(FileLayout {
        encoding: encoding.to_owned(),
        delimiter: Some(delimiter.to_owned()),
    })
}

/// Any cell of `rows` is `value`.
fn has_value(rows: &[lockstep_connectors::Record], value: &str) -> bool {
    rows.iter()
        .any(|r| r.values().any(|v| v.as_str() == Some(value)))
}

#[tokio::test]
async fn each_file_is_discovered_on_its_own_with_its_encoding_and_delimiter() {
    const CANARY: &str = "CANARY-5d1e08";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    write(&data, "good.csv", "id,name\n1,Ada\n");
    // A quote opened on line 3 and never closed (the CSV parser alone would take the rest of
    // the file as that one field).
    write(
        &data,
        "unclosed.csv",
        &format!("id,name\n1,Ada\n2,\"{CANARY}\n3,Alan\n4,Grace\n"),
    );
    // Windows-1252 with semicolons (Latin-1 text).
    std::fs::write(
        data.join("latin1.csv"),
        windows_1252("Teil;Menge;Bezeichnung\nA-1;2;Rohr 90° Stück\nB-2;10;\"Flansch; DN50\"\n"),
    )
    .unwrap();
    // Excel's "CSV UTF-8": a byte order mark, semicolons and CRLF.
    std::fs::write(
        data.join("excel.csv"),
        [
            b"\xEF\xBB\xBF".as_slice(),
            "Teil;Menge\r\nÄ-1;3\r\nÖ-2;4\r\n".as_bytes(),
        ]
        .concat(),
    )
    .unwrap();
    std::fs::write(
        data.join("utf16.csv"),
        utf16le_with_bom("Teil\tMenge\r\nŽ-1\t5\r\n"),
    )
    .unwrap();
    // A workbook saved under a .csv name.
    std::fs::write(
        data.join("workbook.csv"),
        b"PK\x03\x04\x14\x00\x06\x00\x08\x00",
    )
    .unwrap();
    write(&data, "broken.json", &format!("[{{\"a\": {CANARY}}}]"));
    let root = FilesRoot::new(dir.path()).unwrap();
    let files = connector(Some(root), Some("data"), Vec::new());

    let objects = files.discover().await.unwrap();
    let names: Vec<_> = objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "broken.json",
            "excel.csv",
            "good.csv",
            "latin1.csv",
            "unclosed.csv",
            "utf16.csv",
            "workbook.csv"
        ],
        "every file is listed"
    );
    let error = |name: &str| object(&objects, name).error.clone();
    assert_eq!(
        error("unclosed.csv").as_deref(),
        Some(
            "unclosed.csv: line 3: unclosed quote (the quoted field that starts there never ends)"
        )
    );
    let workbook = error("workbook.csv").unwrap();
    assert!(
        workbook.starts_with("workbook.csv: not a text file") && workbook.contains("xlsx"),
        "{workbook}"
    );
    let broken = error("broken.json").unwrap();
    assert!(
        broken.starts_with("broken.json: malformed JSON at line 1"),
        "{broken}"
    );
    for bad in ["unclosed.csv", "workbook.csv", "broken.json"] {
        let bad = object(&objects, bad);
        assert!(bad.fields.is_empty() && bad.layout.is_none());
        assert!(!bad.error.as_ref().unwrap().contains(CANARY));
    }

    let good = object(&objects, "good.csv");
    assert_eq!(good.error, None);
    assert_eq!(good.layout, layout("UTF-8", ","));
    assert_eq!(
        types(good),
        [
            ("id", FieldType::Integer, false),
            ("name", FieldType::String, false)
        ]
    );
    let latin1 = object(&objects, "latin1.csv");
    assert_eq!(latin1.layout, layout("windows-1252", ";"));
    assert_eq!(
        types(latin1),
        [
            ("Teil", FieldType::String, false),
            ("Menge", FieldType::Integer, false),
            ("Bezeichnung", FieldType::String, false)
        ]
    );
    let excel = object(&objects, "excel.csv");
    assert_eq!(excel.layout, layout("UTF-8", ";"));
    assert_eq!(
        types(excel),
        [
            ("Teil", FieldType::String, false),
            ("Menge", FieldType::Integer, false)
        ],
        "the byte order mark is not part of the first name"
    );
    let utf16 = object(&objects, "utf16.csv");
    assert_eq!(utf16.layout, layout("UTF-16LE", "\t"));
    assert_eq!(
        types(utf16),
        [
            ("Teil", FieldType::String, false),
            ("Menge", FieldType::Integer, false)
        ]
    );

    let rows = files.sample("latin1.csv", 10).await.unwrap();
    assert_eq!(
        Value::Object(rows[1].clone()),
        json!({"Teil": "B-2", "Menge": 10, "Bezeichnung": "Flansch; DN50"})
    );
    assert!(has_value(&rows, "Rohr 90° Stück"));
    let rows = files.sample("excel.csv", 10).await.unwrap();
    assert_eq!(
        Value::Object(rows[0].clone()),
        json!({"Teil": "Ä-1", "Menge": 3})
    );
    let rows = files.sample("utf16.csv", 10).await.unwrap();
    assert_eq!(
        Value::Object(rows[0].clone()),
        json!({"Teil": "Ž-1", "Menge": 5})
    );
    let err = files.sample("unclosed.csv", 10).await.unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Protocol));
    assert!(err.to_string().contains("line 3: unclosed quote"), "{err}");
}

#[tokio::test]
async fn encoding_and_delimiter_can_be_set_per_file() {
    // "Müller" in UTF-8: read as Windows-1252 when the file says so.
    let bytes = b"name;age\nM\xC3\xBCller;36\n";
    let uploads = vec![
        UploadedFile {
            name: "set.csv".to_owned(),
            contents: Zeroizing::new(bytes.to_vec()),
        },
        UploadedFile {
            name: "detected.csv".to_owned(),
            contents: Zeroizing::new(bytes.to_vec()),
        },
    ];
    let config = FilesConfig {
        directory: None,
        csv: CsvOptions {
            files: [(
                "set.csv".to_owned(),
                FileOptions {
                    encoding: Some("windows-1252".to_owned()),
                    delimiter: Some(",".to_owned()),
                    header: None,
                },
            )]
            .into(),
            ..CsvOptions::default()
        },
    };
    config.validate(&Secrets::new()).unwrap();
    let files = FilesConnector::new(config, uploads, Context::new(EgressPolicy::default(), None));
    let objects = files.discover().await.unwrap();
    assert_eq!(
        object(&objects, "uploads/set.csv").layout,
        layout("windows-1252", ",")
    );
    assert_eq!(
        object(&objects, "uploads/detected.csv").layout,
        layout("UTF-8", ";")
    );
    let set = files.sample("uploads/set.csv", 10).await.unwrap();
    assert_eq!(
        Value::Object(set[0].clone()),
        json!({"name;age": "MÃ¼ller;36"})
    );
    let detected = files.sample("uploads/detected.csv", 10).await.unwrap();
    assert_eq!(
        Value::Object(detected[0].clone()),
        json!({"name": "Müller", "age": 36})
    );

    // Settings are checked, naming the field.
    for (options, field) in [
        (
            json!({"files": {"a.csv": {"encoding": "klingon"}}}),
            r#"config.csv.files["a.csv"].encoding"#,
        ),
        (
            json!({"files": {"a.csv": {"delimiter": ";;"}}}),
            r#"config.csv.files["a.csv"].delimiter"#,
        ),
        (
            json!({"files": {"a.csv": {"delimiter": "\""}}}),
            r#"config.csv.files["a.csv"].delimiter"#,
        ),
        (
            json!({"files": {"../a.csv": {"delimiter": ";"}}}),
            r#"config.csv.files["../a.csv"]"#,
        ),
        (json!({"encoding": "utf-7"}), "config.csv.encoding"),
        (json!({"delimiter": ""}), "config.csv.delimiter"),
    ] {
        let config: FilesConfig = serde_json::from_value(json!({ "csv": options })).unwrap();
        match config.validate(&Secrets::new()).unwrap_err() {
            lockstep_connectors::ConnectorError::Config { field: got, .. } => {
                assert_eq!(got, field, "{options}");
            }
            other => panic!("{other}"),
        }
    }
}

/// Real exports of CAD tools (`shared/testdata/bom`, read where they are).
fn bom_exports() -> FilesRoot {
    FilesRoot::new(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/bom"))
        .unwrap()
}

#[tokio::test]
async fn real_cad_exports_are_discovered_file_by_file() {
    let files = connector(Some(bom_exports()), Some("solidworks"), Vec::new());
    let objects = files.discover().await.unwrap();
    let names: Vec<_> = objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "3180-UNV2-000_sw.csv",
            "6890-DVT0161720-02_sw.csv",
            "ACV0121010_sw.csv",
            "ACV0158450_sw.csv"
        ],
        "workbooks (.xlsx, .xls) are not CSV files"
    );
    // This export has descriptions with an unquoted comma from line 170 on.
    let bad = object(&objects, "ACV0121010_sw.csv");
    assert_eq!(
        bad.error.as_deref(),
        Some("ACV0121010_sw.csv: line 170: 8 fields where the first line has 7")
    );
    for name in [
        "3180-UNV2-000_sw.csv",
        "6890-DVT0161720-02_sw.csv",
        "ACV0158450_sw.csv",
    ] {
        let good = object(&objects, name);
        assert_eq!(good.error, None, "{name}");
        assert_eq!(good.layout, layout("windows-1252", ","), "{name}");
        assert!(good.fields.len() >= 5, "{name}");
    }
    let rows = files.sample("ACV0158450_sw.csv", 100).await.unwrap();
    assert!(
        rows.iter().any(|r| r
            .values()
            .any(|v| v.as_str().is_some_and(|s| s.contains("SR 90° FNPT")))),
        "the degree sign of Windows-1252 is read"
    );

    let kicad = connector(Some(bom_exports()), Some("kicad"), Vec::new());
    let objects = kicad.discover().await.unwrap();
    let board = object(&objects, "open-source-rover_Control_Boards.csv");
    assert_eq!(board.layout, layout("UTF-8", ","));
    assert_eq!(
        types(board)[..2],
        [
            ("Reference", FieldType::String, false),
            ("Quantity", FieldType::Integer, false)
        ]
    );
}

#[test]
fn upload_names_may_hold_any_letter_but_never_a_path() {
    use lockstep_connectors::files::check_file_name;
    for good in [
        "Stückliste Montage.csv",
        "Перечень (v2).csv",
        "部品表.jsonl",
        "bom_2024-05.json",
        "a.b.NDJSON",
    ] {
        assert_eq!(check_file_name(good), Ok(()), "{good}");
    }
    for bad in [
        "",
        "a/b.csv",
        "a\\b.csv",
        "..csv",
        "x..csv",
        ".hidden.csv",
        " lead.csv",
        "trail.csv ",
        "line\nbreak.csv",
        "tab\t.csv",
        "rtl\u{202E}vsc.csv",
        "notes.txt",
        "noextension",
    ] {
        assert!(check_file_name(bad).is_err(), "{bad:?}");
    }
    assert!(check_file_name(&format!("{}.csv", "ü".repeat(126))).is_err());
}

fn write(dir: &Path, name: &str, contents: &str) {
    std::fs::write(dir.join(name), contents).unwrap();
}
