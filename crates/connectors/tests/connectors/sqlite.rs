//! The `sqlite` connector's tests: database files in a temporary files directory.

use lockstep_connectors::sqlite::{SqliteConfig, SqliteConnector};
use lockstep_connectors::{
    Connector, ConnectorError, Context, EgressPolicy, FailureKind, FieldMeta, FieldType, FilesRoot,
    ObjectKind,
};
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Executor};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn ctx(root: Option<&Path>) -> Context {
    Context {
        egress: Arc::new(EgressPolicy::parse("loopback").unwrap()),
        files_root: root.map(|dir| Arc::new(FilesRoot::new(dir).unwrap())),
        timeout: Duration::from_secs(10),
    }
}

fn connector(root: Option<&Path>, path: &str) -> SqliteConnector {
    SqliteConnector::new(
        SqliteConfig {
            path: path.to_owned(),
        },
        ctx(root),
    )
}

fn kind(result: Result<impl Sized, ConnectorError>) -> Option<FailureKind> {
    result.err().expect("the call must fail").kind()
}

/// A database with the edge cases: NULLs, unicode, big integers, reals, blobs, a composite primary
/// key and a view.
async fn make_database(path: &Path) {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    conn.execute(
        r#"
        CREATE TABLE items (
            id INTEGER NOT NULL,
            region TEXT NOT NULL,
            name VARCHAR(40),
            price NUMERIC(10,2),
            ratio REAL,
            big INTEGER,
            data BLOB,
            flag BOOLEAN,
            created DATETIME,
            doc JSON,
            "odd ""name""" TEXT,
            PRIMARY KEY (id, region)
        );
        INSERT INTO items VALUES
            (1, 'eu', 'Grüße 😀', 12.5, 0.25, 9007199254740993, x'00ff10', 1,
             '2024-03-01 12:34:56', '{"a":[1,2]}', 'q"uote'),
            (2, 'us', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        CREATE VIEW named AS SELECT id, name FROM items WHERE name IS NOT NULL;
        "#,
    )
    .await
    .unwrap();
    conn.close().await.unwrap();
}

fn field(name: &str, field_type: FieldType, native: &str, nullable: bool, pk: bool) -> FieldMeta {
    FieldMeta {
        name: name.to_owned(),
        field_type,
        native: native.to_owned(),
        nullable,
        primary_key: pk,
    }
}

#[tokio::test]
async fn discovers_and_samples_read_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let file = dir.path().join("data/shop.db");
    make_database(&file).await;
    let before = std::fs::read(&file).unwrap();

    let c = connector(Some(dir.path()), "data/shop.db");
    c.test().await.unwrap();

    let objects = c.discover().await.unwrap();
    let names: Vec<_> = objects.iter().map(|o| (o.name.as_str(), o.kind)).collect();
    assert_eq!(
        names,
        [("items", ObjectKind::Table), ("named", ObjectKind::View)]
    );
    assert_eq!(
        objects[0].fields,
        [
            field("id", FieldType::Integer, "INTEGER", false, true),
            field("region", FieldType::String, "TEXT", false, true),
            field("name", FieldType::String, "VARCHAR(40)", true, false),
            field("price", FieldType::Decimal, "NUMERIC(10,2)", true, false),
            field("ratio", FieldType::Float, "REAL", true, false),
            field("big", FieldType::Integer, "INTEGER", true, false),
            field("data", FieldType::Binary, "BLOB", true, false),
            field("flag", FieldType::Boolean, "BOOLEAN", true, false),
            field("created", FieldType::Timestamp, "DATETIME", true, false),
            field("doc", FieldType::Json, "JSON", true, false),
            field("odd \"name\"", FieldType::String, "TEXT", true, false),
        ]
    );
    assert_eq!(
        objects[1].fields,
        [
            field("id", FieldType::Integer, "INTEGER", true, false),
            field("name", FieldType::String, "VARCHAR(40)", true, false),
        ]
    );

    let rows = c.sample("items", 10).await.unwrap();
    assert_eq!(
        serde_json::Value::Array(rows.into_iter().map(serde_json::Value::Object).collect()),
        json!([
            {
                "id": 1, "region": "eu", "name": "Grüße 😀", "price": 12.5, "ratio": 0.25,
                "big": "9007199254740993", "data": "AP8Q", "flag": 1,
                "created": "2024-03-01 12:34:56", "doc": "{\"a\":[1,2]}", "odd \"name\"": "q\"uote"
            },
            {
                "id": 2, "region": "us", "name": null, "price": null, "ratio": null, "big": null,
                "data": null, "flag": null, "created": null, "doc": null, "odd \"name\"": null
            }
        ])
    );
    let rows = c.sample("items", 1).await.unwrap();
    assert_eq!(rows.len(), 1);
    let rows = c.sample("named", 10).await.unwrap();
    assert_eq!(
        rows,
        [json!({"id": 1, "name": "Grüße 😀"})
            .as_object()
            .unwrap()
            .clone()]
    );

    // Names that are not discovered objects are refused before any SQL is built with them.
    for bad in [
        "missing",
        "x\"; DROP TABLE items; --",
        "sqlite_master",
        "ITEMS",
    ] {
        assert_eq!(
            kind(c.sample(bad, 10).await),
            Some(FailureKind::NotFound),
            "{bad}"
        );
    }
    assert_eq!(
        c.sample("items", 10).await.unwrap().len(),
        2,
        "the table is intact"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "the file is not written"
    );
}

#[tokio::test]
async fn refuse_paths_outside_the_files_directory() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    make_database(&outside.path().join("secret.db")).await;
    std::os::unix::fs::symlink(outside.path().join("secret.db"), dir.path().join("link.db"))
        .unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("linkdir")).unwrap();
    let outside_path = outside.path().join("secret.db").display().to_string();

    for (path, expected) in [
        ("../secret.db", None),
        ("data/../../secret.db", None),
        (outside_path.as_str(), None),
        ("link.db", Some(FailureKind::Policy)),
        ("linkdir/secret.db", Some(FailureKind::Policy)),
        ("missing.db", Some(FailureKind::NotFound)),
    ] {
        let c = connector(Some(dir.path()), path);
        let err = c.test().await.unwrap_err();
        assert_eq!(err.kind(), expected, "{path}: {err}");
        if expected.is_none() {
            assert!(
                matches!(&err, ConnectorError::Config { field, .. } if field == "config.path"),
                "{path}: {err:?}"
            );
        }
        assert_eq!(kind(c.discover().await), expected, "{path}");
        assert_eq!(kind(c.sample("items", 5).await), expected, "{path}");
    }
}

#[tokio::test]
async fn need_a_files_directory() {
    let c = connector(None, "shop.db");
    match c.test().await.unwrap_err() {
        ConnectorError::Config { field, reason } => {
            assert_eq!(field, "config.path");
            assert!(reason.contains("--files-root"), "{reason}");
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn text_file_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("notes.db"),
        "This is a text file, long enough to look like it could have a header.\n".repeat(20),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("folder.db")).unwrap();

    let c = connector(Some(dir.path()), "notes.db");
    let err = c.test().await.unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Protocol), "{err}");
    assert!(err.to_string().contains("not a SQLite database"), "{err}");
    assert_eq!(kind(c.discover().await), Some(FailureKind::Protocol));

    let c = connector(Some(dir.path()), "folder.db");
    assert_eq!(kind(c.test().await), Some(FailureKind::NotFound));
}
