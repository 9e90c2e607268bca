//! Bulk reads and writes of the `mysql` connector, against the MariaDB or MySQL in
//! `LOCKSTEP_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`). Each test works in its
//! own database, dropped at the end. Values are compared through SQL.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int64Type, Time64MicrosecondType,
    TimestampMicrosecondType,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, FixedSizeBinaryArray,
    Float64Array, Int64Array, RecordBatch, StringArray, Time64MicrosecondArray,
    TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use futures_util::{FutureExt, TryStreamExt};
use lockstep_connectors::batch::{
    BatchDestination, BatchSource, BatchWriter, CursorSpec, ReadSpec, WriteMode, WriteSpec, keys,
};
use lockstep_connectors::mysql::{MysqlConfig, MysqlConnector};
use lockstep_connectors::{
    Connector, ConnectorError, Context, EgressPolicy, FailureKind, Secret, Secrets, TlsMode,
};
use mysql_async::prelude::Queryable;
use serde_json::json;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) struct Server {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
}

pub(super) fn server() -> Server {
    let url = std::env::var("LOCKSTEP_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
    let url = url::Url::parse(&url).unwrap();
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Server {
        host: url
            .host_str()
            .unwrap_or("127.0.0.1")
            .trim_matches(['[', ']'])
            .to_owned(),
        port: url.port().unwrap_or(3306),
        user: if url.username().is_empty() {
            "root".to_owned()
        } else {
            decode(url.username())
        },
        password: url.password().map(decode),
    }
}

impl Server {
    pub(super) async fn admin(&self, database: Option<&str>) -> mysql_async::Conn {
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(self.password.clone())
            .db_name(database.map(str::to_owned))
            .prefer_socket(false)
            .init(vec!["SET time_zone = '+00:00'"]);
        mysql_async::Conn::new(opts).await.unwrap()
    }

    pub(super) fn connector(&self, database: &str) -> MysqlConnector {
        let config = MysqlConfig {
            host: self.host.clone(),
            port: self.port,
            database: database.to_owned(),
            user: self.user.clone(),
            tls: TlsMode::Disable,
            ca_certificate: None,
        };
        let mut secrets = Secrets::new();
        if let Some(password) = &self.password {
            secrets.insert("password", Secret::new(password.clone()));
        }
        let ctx = Context {
            egress: Arc::new(EgressPolicy::parse("loopback").unwrap()),
            files_root: None,
            timeout: Duration::from_secs(30),
        };
        MysqlConnector::new(config, secrets, ctx)
    }
}

/// Runs `body` with a fresh database (its name), dropped afterwards even when `body` panics.
pub(super) async fn with_database<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let server = server();
    let mut admin = server.admin(None).await;
    let name = format!("lockstep_batch_{}", uuid::Uuid::now_v7().simple());
    admin
        .query_drop(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        .await
        .unwrap();
    let outcome = AssertUnwindSafe(body(name.clone())).catch_unwind().await;
    admin
        .query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
        .await
        .unwrap();
    admin.disconnect().await.unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

fn spec(object: &str, batch_rows: usize) -> ReadSpec {
    ReadSpec {
        object: object.to_owned(),
        fields: None,
        cursor: None,
        batch_rows,
    }
}

async fn read_all(c: &MysqlConnector, spec: ReadSpec) -> (SchemaRef, Vec<RecordBatch>) {
    let (schema, stream) = c.read(spec).await.unwrap();
    let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap();
    (schema, batches)
}

async fn write_all(
    c: &MysqlConnector,
    object: &str,
    schema: SchemaRef,
    mode: WriteMode,
    batches: &[RecordBatch],
) -> u64 {
    let mut writer = c
        .writer(WriteSpec {
            object: object.to_owned(),
            schema,
            mode,
        })
        .await
        .unwrap();
    for batch in batches {
        writer.write(batch).await.unwrap();
    }
    writer.commit().await.unwrap()
}

/// Rows, the sum of ids, characters of text, texts and byte strings in `streamed`.
async fn streamed_summary(admin: &mut mysql_async::Conn) -> (u64, i64, Option<i64>, i64, i64) {
    let row: Option<(u64, i64, Option<i64>, i64, i64)> = admin
        .query_first(
            "SELECT count(*), CAST(sum(id) AS SIGNED), CAST(sum(char_length(`text`)) AS SIGNED), \
             count(`text`), count(`bytes`) FROM streamed",
        )
        .await
        .unwrap();
    row.unwrap()
}

async fn count(conn: &mut mysql_async::Conn, table: &str) -> u64 {
    conn.query_first(format!("SELECT COUNT(*) FROM `{table}`"))
        .await
        .unwrap()
        .unwrap()
}

async fn staging_tables(conn: &mut mysql_async::Conn) -> Vec<String> {
    conn.query(
        "SELECT TABLE_NAME FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE '%\\_\\_lockstep\\_%'",
    )
    .await
    .unwrap()
}

/// (name, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY) of each column.
pub(super) async fn columns(
    conn: &mut mysql_async::Conn,
    table: &str,
) -> Vec<(String, String, String, String)> {
    conn.exec(
        "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
        (table,),
    )
    .await
    .unwrap()
}

fn kind<T>(result: Result<T, ConnectorError>) -> (Option<FailureKind>, String) {
    match result {
        Ok(_) => panic!("the call must fail"),
        Err(err) => (err.kind(), err.to_string()),
    }
}

const ITEMS: &str = r"CREATE TABLE items (
    id BIGINT NOT NULL,
    name VARCHAR(40) NOT NULL,
    note TEXT,
    price DECIMAL(20,6),
    ratio DOUBLE,
    big BIGINT,
    flag TINYINT(1),
    created DATETIME(6),
    seen TIMESTAMP(6) NULL,
    day DATE,
    at TIME(6),
    doc JSON,
    data BLOB,
    kind ENUM('a','b'),
    PRIMARY KEY (id)
) DEFAULT CHARSET = utf8mb4";

const ITEM_ROWS: &str = r#"INSERT INTO items VALUES
    (1, 'Grüße 😀', 'line
two', 12345678901234.123456, 0.25, 9223372036854775807, 1, '2024-03-01 12:34:56.789',
     '2024-03-01 12:34:56.789001', '2024-02-29', '23:59:59.999999', '{"a": [1, 2], "b": null}',
     x'00ff10', 'b'),
    (2, '', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (3, 'z', '', -0.000001, -1.5e300, -9223372036854775808, 0, '1000-01-01 00:00:00',
     '1970-01-01 00:00:01', '9999-12-31', '00:00:00', '[]', x'', 'a'),
    (4, 'ℝ', 'x', 99999999999999.999999, 0, 0, 1, '9999-12-31 23:59:59.999999',
     '2038-01-19 03:14:07.999999', '1000-01-01', '12:00:00.5', '"s"', x'41', NULL)"#;

const ITEM_COLUMNS: &[&str] = &[
    "id", "name", "note", "price", "ratio", "big", "flag", "created", "seen", "day", "at", "doc",
    "data", "kind",
];

/// The rows of `a` all have an equal row in `b` (NULL-safe), and both have as many.
async fn same_rows(conn: &mut mysql_async::Conn, a: &str, b: &str, columns: &[&str]) {
    let on = columns
        .iter()
        .map(|c| format!("a.`{c}` <=> b.`{c}`"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let matched: u64 = conn
        .query_first(format!("SELECT COUNT(*) FROM `{a}` a JOIN `{b}` b ON {on}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(matched, count(conn, a).await, "{a} vs {b}");
    assert_eq!(count(conn, a).await, count(conn, b).await, "{a} vs {b}");
}

#[tokio::test]
async fn round_trip_keeps_values_types_and_keys() {
    with_database(|database| async move {
        let server = server();
        let mut admin = server.admin(Some(&database)).await;
        admin.query_drop(ITEMS).await.unwrap();
        admin.query_drop(ITEM_ROWS).await.unwrap();
        let c = server.connector(&database);

        let (schema, batches) = read_all(&c, spec("items", 3)).await;
        assert_eq!(
            batches
                .iter()
                .map(RecordBatch::num_rows)
                .collect::<Vec<_>>(),
            [3, 1]
        );
        let types: Vec<_> = schema
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        assert_eq!(
            types,
            [
                DataType::Int64,
                DataType::Utf8,
                DataType::Utf8,
                DataType::Decimal128(20, 6),
                DataType::Float64,
                DataType::Int64,
                DataType::Boolean,
                DataType::Timestamp(TimeUnit::Microsecond, None),
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                DataType::Date32,
                DataType::Time64(TimeUnit::Microsecond),
                DataType::Utf8,
                DataType::Binary,
                DataType::Utf8,
            ]
        );
        let id = schema.field_with_name("id").unwrap();
        assert!(!id.is_nullable());
        assert_eq!(id.metadata()[keys::PRIMARY_KEY], "true");
        assert_eq!(id.metadata()[keys::SOURCE], "mysql");
        assert_eq!(
            schema.field_with_name("price").unwrap().metadata()[keys::NATIVE],
            "decimal(20,6)"
        );

        // Exact values in Arrow.
        let first = &batches[0];
        let col = |name: &str| first.column(schema.index_of(name).unwrap()).clone();
        assert_eq!(col("name").as_string::<i32>().value(0), "Grüße 😀");
        assert_eq!(col("note").as_string::<i32>().value(0), "line\ntwo");
        let price = col("price");
        let price = price.as_primitive::<Decimal128Type>();
        assert_eq!(price.value(0), 12_345_678_901_234_123_456);
        assert!(price.is_null(1));
        assert_eq!(price.value(2), -1);
        assert_eq!(col("big").as_primitive::<Int64Type>().value(0), i64::MAX);
        assert_eq!(col("big").as_primitive::<Int64Type>().value(2), i64::MIN);
        assert_eq!(
            col("ratio").as_primitive::<Float64Type>().value(2),
            -1.5e300
        );
        assert!(col("flag").as_boolean().value(0));
        assert_eq!(
            col("created")
                .as_primitive::<TimestampMicrosecondType>()
                .value(0),
            1_709_296_496_789_000
        );
        assert_eq!(
            col("seen")
                .as_primitive::<TimestampMicrosecondType>()
                .value(0),
            1_709_296_496_789_001
        );
        assert_eq!(
            col("created")
                .as_primitive::<TimestampMicrosecondType>()
                .value(2),
            -30_610_224_000_000_000
        );
        assert_eq!(col("day").as_primitive::<Date32Type>().value(0), 19_782);
        assert_eq!(
            col("at").as_primitive::<Time64MicrosecondType>().value(0),
            86_399_999_999
        );
        let doc: serde_json::Value =
            serde_json::from_str(col("doc").as_string::<i32>().value(0)).unwrap();
        assert_eq!(doc, json!({"a": [1, 2], "b": null}));
        assert_eq!(col("data").as_binary::<i32>().value(0), [0, 255, 16]);
        assert!(col("data").as_binary::<i32>().value(2).is_empty());
        assert!(col("data").is_null(1));
        assert_eq!(col("kind").as_string::<i32>().value(0), "b");

        // Written into a new table: the same column types, nullability, key and values.
        let written = write_all(&c, "copy", schema.clone(), WriteMode::Replace, &batches).await;
        assert_eq!(written, 4);
        let mut original = columns(&mut admin, "items").await;
        let mut copied = columns(&mut admin, "copy").await;
        // Both have the JSON column (MariaDB: longtext with a json_valid check).
        original.sort();
        copied.sort();
        assert_eq!(original, copied);
        same_rows(&mut admin, "items", "copy", ITEM_COLUMNS).await;
        // The emoji survived as four bytes, the decimal as written.
        let (name, price): (Vec<u8>, String) = admin
            .query_first("SELECT CAST(name AS BINARY), CAST(price AS CHAR) FROM copy WHERE id = 1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(name, "Grüße 😀".as_bytes());
        assert_eq!(price, "12345678901234.123456");
        assert!(staging_tables(&mut admin).await.is_empty());

        // Rows loaded as text (LOAD DATA, the default where the server allows it) and rows
        // bound in INSERTs (where it does not) are the same rows.
        let inserted = write_all(
            &server.connector(&database).inserting_only(),
            "copy_inserted",
            schema.clone(),
            WriteMode::Replace,
            &batches,
        )
        .await;
        assert_eq!(inserted, 4);
        same_rows(&mut admin, "copy", "copy_inserted", ITEM_COLUMNS).await;

        // A second Replace works, and replaces the rows.
        let written = write_all(
            &c,
            "copy",
            schema.clone(),
            WriteMode::Replace,
            &[batches[1].clone()],
        )
        .await;
        assert_eq!(written, 1);
        assert_eq!(count(&mut admin, "copy").await, 1);
        assert!(staging_tables(&mut admin).await.is_empty());
        admin.disconnect().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn replace_is_atomic_and_leaves_no_staging_table() {
    with_database(|database| async move {
        let server = server();
        let mut admin = server.admin(Some(&database)).await;
        admin.query_drop(ITEMS).await.unwrap();
        admin.query_drop(ITEM_ROWS).await.unwrap();
        admin
            .query_drop("CREATE TABLE target (id BIGINT PRIMARY KEY, v VARCHAR(10))")
            .await
            .unwrap();
        admin
            .query_drop("INSERT INTO target VALUES (1, 'old'), (2, 'old'), (3, 'old')")
            .await
            .unwrap();
        // A staging table left by a crashed writer.
        admin
            .query_drop("CREATE TABLE target__lockstep_0123456789abcdef (id BIGINT)")
            .await
            .unwrap();
        let c = server.connector(&database);
        let (schema, batches) = read_all(
            &c,
            ReadSpec {
                fields: Some(vec!["id".into(), "kind".into()]),
                ..spec("items", 100)
            },
        )
        .await;
        let schema = Arc::new(Schema::new(vec![
            schema.field(0).clone(),
            Field::new("v", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(schema.clone(), batches[0].columns().to_vec()).unwrap();
        let open = |mode| {
            c.writer(WriteSpec {
                object: "target".into(),
                schema: schema.clone(),
                mode,
            })
        };

        // Aborted: the table is intact, the stale and the new staging tables are gone.
        let mut writer = open(WriteMode::Replace).await.unwrap();
        writer.write(&batch).await.unwrap();
        assert_eq!(staging_tables(&mut admin).await.len(), 1, "only its own");
        assert_eq!(count(&mut admin, "target").await, 3, "readers see the old");
        writer.abort().await;
        assert_eq!(count(&mut admin, "target").await, 3);
        let old: Vec<String> = admin.query("SELECT v FROM target").await.unwrap();
        assert_eq!(old, ["old", "old", "old"]);
        assert!(staging_tables(&mut admin).await.is_empty());

        // Dropped without commit: cleaned up in the background.
        let mut writer = open(WriteMode::Replace).await.unwrap();
        writer.write(&batch).await.unwrap();
        drop(writer);
        let mut left = staging_tables(&mut admin).await;
        for _ in 0..50 {
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            left = staging_tables(&mut admin).await;
        }
        assert!(left.is_empty(), "{left:?}");
        assert_eq!(count(&mut admin, "target").await, 3);

        // Two writers at once: the second does not take the first's staging table for stale.
        let mut first = open(WriteMode::Replace).await.unwrap();
        first.write(&batch).await.unwrap();
        let second = open(WriteMode::Replace).await.unwrap();
        assert_eq!(staging_tables(&mut admin).await.len(), 2);
        second.abort().await;
        assert_eq!(first.commit().await.unwrap(), 4);
        let replaced: Vec<(i64, Option<String>)> = admin
            .query("SELECT id, v FROM target ORDER BY id")
            .await
            .unwrap();
        assert_eq!(
            replaced,
            [
                (1, Some("b".into())),
                (2, None),
                (3, Some("a".into())),
                (4, None)
            ]
        );
        assert!(staging_tables(&mut admin).await.is_empty());
        // The same columns: the table was made LIKE the old one.
        assert_eq!(
            columns(&mut admin, "target").await[1].1,
            "varchar(10)",
            "kept the table's own types"
        );
        admin.disconnect().await.unwrap();
    })
    .await;
}

fn people_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Decimal128(8, 2), true),
    ]))
}

fn people(ids: &[i64], name: &str, score: i128) -> RecordBatch {
    RecordBatch::try_new(
        people_schema(),
        vec![
            Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef,
            Arc::new(StringArray::from(vec![name; ids.len()])),
            Arc::new(
                Decimal128Array::from(vec![score; ids.len()])
                    .with_precision_and_scale(8, 2)
                    .unwrap(),
            ),
        ],
    )
    .unwrap()
}

#[tokio::test]
async fn append_adds_and_upsert_updates_without_duplicates() {
    with_database(|database| async move {
        let server = server();
        let mut admin = server.admin(Some(&database)).await;
        let c = server.connector(&database);

        // Append into a missing table makes it (no key in the schema), then adds.
        let batch = people(&[1, 2, 3], "a", 150);
        let appended = write_all(
            &c,
            "log",
            people_schema(),
            WriteMode::Append,
            std::slice::from_ref(&batch),
        )
        .await;
        assert_eq!(appended, 3);
        write_all(
            &c,
            "log",
            people_schema(),
            WriteMode::Append,
            std::slice::from_ref(&batch),
        )
        .await;
        assert_eq!(count(&mut admin, "log").await, 6);

        // An aborted append adds nothing.
        let mut writer = c
            .writer(WriteSpec {
                object: "log".into(),
                schema: people_schema(),
                mode: WriteMode::Append,
            })
            .await
            .unwrap();
        writer.write(&batch).await.unwrap();
        writer.abort().await;
        assert_eq!(count(&mut admin, "log").await, 6);

        // Upsert needs a unique key on exactly the key fields.
        let upsert = WriteMode::Upsert {
            key: vec!["id".into()],
        };
        let (k, message) = kind(
            c.writer(WriteSpec {
                object: "log".into(),
                schema: people_schema(),
                mode: upsert.clone(),
            })
            .await,
        );
        assert_eq!(k, None, "{message}");
        assert!(message.starts_with("mode.key"), "{message}");

        // Into a missing table: made with the key as primary key.
        write_all(
            &c,
            "people",
            people_schema(),
            upsert.clone(),
            &[people(&[1, 2], "a", 100)],
        )
        .await;
        let cols = columns(&mut admin, "people").await;
        let bigint = if cols[0].1 == "bigint" {
            "bigint"
        } else {
            "bigint(20)"
        };
        let cols: Vec<(&str, &str, &str, &str)> = cols
            .iter()
            .map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), d.as_str()))
            .collect();
        assert_eq!(
            cols,
            [
                ("id", bigint, "NO", "PRI"),
                ("name", "longtext", "YES", ""),
                ("score", "decimal(8,2)", "YES", ""),
            ]
        );
        // Twice, with changes and a duplicate inside the batch: no duplicates, updated values.
        write_all(
            &c,
            "people",
            people_schema(),
            upsert.clone(),
            &[people(&[2, 3], "b", -25), people(&[3], "c", 1)],
        )
        .await;
        let rows: Vec<(i64, String, String)> = admin
            .query("SELECT id, name, CAST(score AS CHAR) FROM people ORDER BY id")
            .await
            .unwrap();
        assert_eq!(
            rows,
            [
                (1, "a".into(), "1.00".into()),
                (2, "b".into(), "-0.25".into()),
                (3, "c".into(), "0.01".into()),
            ]
        );
        // Into an existing table with a unique index (not the primary key) on the key.
        admin
            .query_drop(
                "CREATE TABLE keyed (rid INT AUTO_INCREMENT PRIMARY KEY, id BIGINT NOT NULL, \
                 name TEXT, score DECIMAL(10,2), UNIQUE KEY by_id (id))",
            )
            .await
            .unwrap();
        for _ in 0..2 {
            write_all(
                &c,
                "keyed",
                people_schema(),
                upsert.clone(),
                &[people(&[7, 8], "k", 5)],
            )
            .await;
        }
        assert_eq!(count(&mut admin, "keyed").await, 2);
        admin.disconnect().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn incremental_reads_are_filtered_and_ordered() {
    with_database(|database| async move {
        let server = server();
        let mut admin = server.admin(Some(&database)).await;
        admin
            .query_drop(
                "CREATE TABLE events (id INT PRIMARY KEY, seq BIGINT, at DATETIME(6), \
                 amount DECIMAL(10,2))",
            )
            .await
            .unwrap();
        admin
            .query_drop(
                "INSERT INTO events VALUES (1, 30, '2024-01-03 00:00:00', 3), \
                 (2, 10, '2024-01-01 00:00:00', 1), (3, 50, '2024-01-05 00:00:00.5', 5), \
                 (4, 20, '2024-01-02 00:00:00', 2), (5, 40, '2024-01-04 00:00:00', 4)",
            )
            .await
            .unwrap();
        let c = server.connector(&database);
        let ids = |batches: &[RecordBatch]| -> Vec<i64> {
            batches
                .iter()
                .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
                .collect()
        };
        let read = |field: &str, after: Option<serde_json::Value>| ReadSpec {
            fields: Some(vec!["id".into(), "seq".into()]),
            cursor: Some(CursorSpec {
                field: field.into(),
                after,
            }),
            ..spec("events", 2)
        };
        let (_, all) = read_all(&c, read("seq", None)).await;
        assert_eq!(ids(&all), [2, 4, 1, 5, 3]);
        let (_, later) = read_all(&c, read("seq", Some(json!(20)))).await;
        assert_eq!(ids(&later), [1, 5, 3]);
        let (_, later) = read_all(&c, read("at", Some(json!("2024-01-03T00:00:00Z")))).await;
        assert_eq!(ids(&later), [5, 3]);
        let (_, later) = read_all(&c, read("at", Some(json!("2024-01-05T00:00:00")))).await;
        assert_eq!(ids(&later), [3]);
        let (_, later) = read_all(&c, read("amount", Some(json!("3.50")))).await;
        assert_eq!(ids(&later), [5, 3]);
        let (_, none) = read_all(&c, read("seq", Some(json!(50)))).await;
        assert!(none.is_empty());

        let (k, message) = kind(c.read(read("nope", None)).await);
        assert_eq!(k, None);
        assert!(message.contains("nope"), "{message}");
        let (k, message) = kind(
            c.read(ReadSpec {
                fields: Some(vec!["id".into(), "missing_field".into()]),
                ..spec("events", 2)
            })
            .await,
        );
        assert_eq!(k, None);
        assert!(message.contains("missing_field"), "{message}");
        let (k, _) = kind(c.read(read("at", Some(json!("not a time")))).await);
        assert_eq!(k, None);
        let (k, _) = kind(c.read(spec("missing_table", 10)).await);
        assert_eq!(k, Some(FailureKind::NotFound));
        let (k, _) = kind(c.read(spec("events`; DROP TABLE events; --", 10)).await);
        assert_eq!(k, Some(FailureKind::NotFound));
        assert_eq!(count(&mut admin, "events").await, 5);
        admin.disconnect().await.unwrap();
    })
    .await;
}

/// A row as read back: id, the text's bytes, the bytes.
type StoredRow = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// Rows loaded as text keep every byte of what they hold, and what LOAD DATA LOCAL would let
/// through with a warning (a repeated key skipped, a value cut) fails the write as an INSERT
/// would, naming no value and leaving the table as it was.
#[tokio::test]
async fn loaded_rows_keep_every_byte_and_refuse_what_an_insert_refuses() {
    with_database(|database| async move {
        let server = server();
        let mut admin = server.admin(Some(&database)).await;
        let loading = server.connector(&database);
        let inserting = server.connector(&database).inserting_only();
        let schema = Arc::new(Schema::new(vec![
            key_id(),
            Field::new("text", DataType::Utf8, true),
            Field::new("bytes", DataType::Binary, true),
        ]));
        let texts = [
            Some("tab\there"),
            Some("new\nline\r\n"),
            Some("back\\slash \\N \\t"),
            Some("\\N"),
            Some("NULL"),
            Some(""),
            None,
            Some("nul \0 byte, ümlaut, 😀"),
        ];
        let ids: Vec<i64> = (1..=texts.len() as i64).collect();
        let bytes: Vec<Option<&[u8]>> = vec![
            Some(&[0, 9, 10, 13, 92, 255]),
            Some(b"\\N"),
            None,
            Some(&[]),
            Some(b"plain"),
            Some(&[0x5c, 0x30]),
            Some(&[7]),
            Some(&[0xf0, 0x9f]),
        ];
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids.clone())) as ArrayRef,
                Arc::new(StringArray::from(texts.to_vec())),
                Arc::new(BinaryArray::from(bytes.clone())),
            ],
        )
        .unwrap();
        for (c, table) in [(&loading, "loaded"), (&inserting, "inserted")] {
            let written = write_all(
                c,
                table,
                schema.clone(),
                WriteMode::Replace,
                std::slice::from_ref(&batch),
            )
            .await;
            assert_eq!(written, texts.len() as u64);
            let rows: Vec<StoredRow> = admin
                .query(format!(
                    "SELECT id, CAST(`text` AS BINARY), `bytes` FROM `{table}` ORDER BY id"
                ))
                .await
                .unwrap();
            let expected: Vec<StoredRow> = ids
                .iter()
                .zip(&texts)
                .zip(&bytes)
                .map(|((id, t), b)| (*id, t.map(|t| t.as_bytes().to_vec()), b.map(<[u8]>::to_vec)))
                .collect();
            assert_eq!(rows, expected, "{table}");
        }

        // Appending a key the table holds: refused, not skipped.
        let again = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![100, 1])) as ArrayRef,
                Arc::new(StringArray::from(vec![Some("new"), Some("CANARY-dup")])),
                Arc::new(BinaryArray::from(vec![None::<&[u8]>, None])),
            ],
        )
        .unwrap();
        let mut writer = loading
            .writer(WriteSpec {
                object: "loaded".into(),
                schema: schema.clone(),
                mode: WriteMode::Append,
            })
            .await
            .unwrap();
        // The rows stream to the server as they come: the refusal arrives with the write or
        // at commit.
        let err = match writer.write(&again).await {
            Err(err) => {
                writer.abort().await;
                err
            }
            Ok(()) => writer.commit().await.unwrap_err(),
        };
        let message = err.to_string();
        assert!(message.contains("twice"), "{message}");
        assert!(!message.contains("CANARY"), "{message}");
        assert_eq!(count(&mut admin, "loaded").await, texts.len() as u64);

        // A value too long for its column: refused, not cut.
        admin
            .query_drop(
                "CREATE TABLE narrow (id BIGINT PRIMARY KEY, `text` VARCHAR(3), `bytes` BLOB)",
            )
            .await
            .unwrap();
        let long = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1])) as ArrayRef,
                Arc::new(StringArray::from(vec![Some("CANARY-long")])),
                Arc::new(BinaryArray::from(vec![None::<&[u8]>])),
            ],
        )
        .unwrap();
        let mut writer = loading
            .writer(WriteSpec {
                object: "narrow".into(),
                schema: schema.clone(),
                mode: WriteMode::Append,
            })
            .await
            .unwrap();
        let failed = match writer.write(&long).await {
            Err(err) => {
                writer.abort().await;
                err
            }
            Ok(()) => writer.commit().await.unwrap_err(),
        };
        let message = failed.to_string();
        assert!(message.contains("MySQL refused the write"), "{message}");
        assert!(!message.contains("CANARY"), "{message}");
        assert_eq!(count(&mut admin, "narrow").await, 0);
        admin.disconnect().await.unwrap();
    })
    .await;
}

/// One `LOAD DATA` streams every batch of a write (several chunks of a megabyte) while the
/// server loads: all rows arrive, in one piece; a key repeated after megabytes were already
/// loaded fails the whole write and leaves the table as it was, for an append and a replace.
#[tokio::test]
async fn a_load_streams_every_batch_and_a_late_refusal_undoes_it_all() {
    with_database(|database| async move {
        let server = server();
        let mut admin = server.admin(Some(&database)).await;
        let c = server.connector(&database);
        let schema = Arc::new(Schema::new(vec![
            key_id(),
            Field::new("text", DataType::Utf8, true),
            Field::new("bytes", DataType::Binary, true),
        ]));
        let batch = |ids: std::ops::Range<i64>| {
            let texts: Vec<Option<String>> = ids
                .clone()
                .map(|i| {
                    (i % 7 != 0).then(|| format!("row {i}\tÜ\\{}", "x".repeat((i % 50) as usize)))
                })
                .collect();
            let bytes: Vec<Option<Vec<u8>>> = ids
                .clone()
                .map(|i| (i % 5 != 0).then(|| i.to_le_bytes().to_vec()))
                .collect();
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(ids.collect::<Vec<_>>())) as ArrayRef,
                    Arc::new(StringArray::from(texts)),
                    Arc::new(BinaryArray::from(
                        bytes.iter().map(|b| b.as_deref()).collect::<Vec<_>>(),
                    )),
                ],
            )
            .unwrap()
        };
        // 100,000 rows of about 60 bytes in 10 batches: several chunks of a megabyte.
        let batches: Vec<RecordBatch> = (0..10)
            .map(|b| batch(b * 10_000 + 1..(b + 1) * 10_000 + 1))
            .collect();
        let written = write_all(&c, "streamed", schema.clone(), WriteMode::Replace, &batches).await;
        assert_eq!(written, 100_000);
        let stored = streamed_summary(&mut admin).await;
        let texts: i64 = (1..=100_000_i64)
            .filter(|i| i % 7 != 0)
            .map(|i| format!("row {i}\tÜ\\").chars().count() as i64 + i % 50)
            .sum();
        assert_eq!(
            stored,
            (
                100_000,
                100_000 * 100_001 / 2,
                Some(texts),
                100_000 - 100_000 / 7,
                100_000 - 100_000 / 5
            )
        );
        let sample: Option<(Vec<u8>, Vec<u8>)> = admin
            .query_first("SELECT CAST(`text` AS BINARY), `bytes` FROM streamed WHERE id = 99999")
            .await
            .unwrap();
        assert_eq!(
            sample,
            Some((
                format!("row 99999\tÜ\\{}", "x".repeat(49)).into_bytes(),
                99999_i64.to_le_bytes().to_vec()
            ))
        );

        // A key repeated in the last batch, megabytes after the load began.
        for mode in [WriteMode::Append, WriteMode::Replace] {
            let mut writer = c
                .writer(WriteSpec {
                    object: "streamed".into(),
                    schema: schema.clone(),
                    mode: mode.clone(),
                })
                .await
                .unwrap();
            let mut failed = None;
            for b in (0..5)
                .map(|b| batch(200_000 + b * 10_000..200_000 + (b + 1) * 10_000))
                .chain([batch(200_000..200_001)])
            {
                if let Err(err) = writer.write(&b).await {
                    failed = Some(err);
                    break;
                }
            }
            let err = match failed {
                Some(err) => {
                    writer.abort().await;
                    err
                }
                None => writer.commit().await.unwrap_err(),
            };
            assert!(err.to_string().contains("twice"), "{mode:?}: {err}");
            assert_eq!(
                streamed_summary(&mut admin).await,
                stored,
                "{mode:?}: the table is as it was"
            );
        }
        admin.disconnect().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn values_arrow_cannot_hold_are_errors_naming_the_field() {
    with_database(|database| async move {
        let server = server();
        let mut admin = server.admin(Some(&database)).await;
        admin
            .query_drop("CREATE TABLE odd (id INT, ubig BIGINT UNSIGNED, span TIME)")
            .await
            .unwrap();
        admin
            .query_drop("INSERT INTO odd VALUES (1, 18446744073709551615, '01:00:00')")
            .await
            .unwrap();
        admin
            .query_drop("INSERT INTO odd VALUES (2, 1, '-837:59:58')")
            .await
            .unwrap();
        let c = server.connector(&database);
        for (field, canary) in [("ubig", "18446744073709551615"), ("span", "837")] {
            let (_, stream) = c
                .read(ReadSpec {
                    fields: Some(vec![field.into()]),
                    ..spec("odd", 10)
                })
                .await
                .unwrap();
            let err = stream.try_collect::<Vec<_>>().await.unwrap_err();
            let message = err.to_string();
            assert!(message.contains(field), "{message}");
            assert!(!message.contains(canary), "{message}");
        }
        admin.disconnect().await.unwrap();
    })
    .await;
}

#[tokio::test]
#[allow(clippy::print_stderr)]
async fn a_hundred_thousand_rows_go_in_chunks() {
    with_database(|database| async move {
        let server = server();
        let mut admin = server.admin(Some(&database)).await;
        let c = server.connector(&database);
        let schema = Arc::new(Schema::new(vec![
            key_id(),
            Field::new("name", DataType::Utf8, false),
            Field::new("amount", DataType::Decimal128(12, 2), true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
        ]));
        let rows = 100_000_i64;
        let batches: Vec<RecordBatch> = (0..rows)
            .step_by(8192)
            .map(|start| {
                let ids: Vec<i64> = (start..(start + 8192).min(rows)).collect();
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from(ids.clone())) as ArrayRef,
                        Arc::new(StringArray::from(
                            ids.iter()
                                .map(|i| format!("name {i} ü"))
                                .collect::<Vec<_>>(),
                        )),
                        Arc::new(
                            Decimal128Array::from(
                                ids.iter()
                                    .map(|i| i128::from(*i) * 7 - 3)
                                    .collect::<Vec<_>>(),
                            )
                            .with_precision_and_scale(12, 2)
                            .unwrap(),
                        ),
                        Arc::new(
                            TimestampMicrosecondArray::from(
                                ids.iter().map(|i| i * 1_000_001).collect::<Vec<_>>(),
                            )
                            .with_timezone("UTC"),
                        ),
                    ],
                )
                .unwrap()
            })
            .collect();
        let started = Instant::now();
        let written = write_all(&c, "bulk", schema.clone(), WriteMode::Replace, &batches).await;
        let elapsed = started.elapsed();
        assert_eq!(written, 100_000);
        eprintln!(
            "mysql_batch: 100000 rows written in {:.2} s ({:.0} rows/s)",
            elapsed.as_secs_f64(),
            100_000.0 / elapsed.as_secs_f64()
        );
        assert_eq!(count(&mut admin, "bulk").await, 100_000);
        let (sum, last, at): (String, String, String) = admin
            .query_first(
                "SELECT CAST(SUM(amount) AS CHAR), \
                 (SELECT CAST(amount AS CHAR) FROM bulk WHERE id = 99999), \
                 (SELECT CAST(at AS CHAR) FROM bulk WHERE id = 99999) FROM bulk",
            )
            .await
            .unwrap()
            .unwrap();
        // Σ (7i − 3) / 100 for i < 100000.
        assert_eq!(sum, "349993500.00");
        assert_eq!(last, "6999.90");
        assert_eq!(at, "1970-01-02 03:46:39.099999");

        // And back: read in batches, as many rows.
        let started = Instant::now();
        let (_, read) = read_all(&c, spec("bulk", 10_000)).await;
        let elapsed = started.elapsed();
        assert_eq!(read.len(), 10);
        assert_eq!(
            read.iter().map(RecordBatch::num_rows).sum::<usize>(),
            100_000
        );
        eprintln!(
            "mysql_batch: 100000 rows read in {:.2} s ({:.0} rows/s)",
            elapsed.as_secs_f64(),
            100_000.0 / elapsed.as_secs_f64()
        );

        // A reader that stops early: the rest is not read, and the server is fine.
        let (_, mut stream) = c.read(spec("bulk", 100)).await.unwrap();
        assert_eq!(stream.try_next().await.unwrap().unwrap().num_rows(), 100);
        drop(stream);
        assert_eq!(count(&mut admin, "bulk").await, 100_000);
        admin.disconnect().await.unwrap();
    })
    .await;
}

/// `id`, Int64 NOT NULL, marked as the primary key.
fn key_id() -> Field {
    Field::new("id", DataType::Int64, false).with_metadata(HashMap::from([(
        keys::PRIMARY_KEY.to_owned(),
        "true".to_owned(),
    )]))
}

fn postgres_field(
    name: &str,
    data_type: DataType,
    native: &str,
    ty: &str,
    nullable: bool,
) -> Field {
    let mut metadata = HashMap::from([
        (keys::NATIVE.to_owned(), native.to_owned()),
        (keys::TYPE.to_owned(), ty.to_owned()),
        (keys::SOURCE.to_owned(), "postgres".to_owned()),
    ]);
    if name == "id" {
        metadata.insert(keys::PRIMARY_KEY.to_owned(), "true".to_owned());
    }
    Field::new(name, data_type, nullable).with_metadata(metadata)
}

#[tokio::test]
async fn postgres_binary_form_is_refused() {
    // PostgreSQL's binary form of a value is no value MySQL could take: the writer refuses the
    // field before it connects, and the connector does not offer to take it.
    let c = server().connector("test");
    assert!(!c.takes_pg_binary());
    let mut field = postgres_field("free", DataType::Binary, "numeric", "decimal", true);
    let mut metadata = field.metadata().clone();
    metadata.insert(keys::PG_BINARY.to_owned(), "numeric".to_owned());
    field.set_metadata(metadata);
    let err = c
        .writer(WriteSpec {
            object: "from_pg".into(),
            schema: Arc::new(Schema::new(vec![field])),
            mode: WriteMode::Replace,
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("binary form"), "{err}");
}

#[tokio::test]
async fn a_postgres_shaped_batch_makes_sensible_columns() {
    with_database(|database| async move {
        let server = server();
        let mut admin = server.admin(Some(&database)).await;
        let c = server.connector(&database);
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let schema = Arc::new(Schema::new(vec![
            postgres_field("id", DataType::Int64, "bigint", "integer", false),
            postgres_field(
                "price",
                DataType::Decimal128(12, 2),
                "numeric(12,2)",
                "decimal",
                false,
            ),
            postgres_field("exact", DataType::Utf8, "numeric", "decimal", true),
            postgres_field(
                "at",
                utc.clone(),
                "timestamp with time zone",
                "timestamp_tz",
                true,
            ),
            postgres_field("uid", DataType::FixedSizeBinary(16), "uuid", "uuid", true),
            postgres_field("title", DataType::Utf8, "text", "string", true),
            postgres_field("doc", DataType::Utf8, "jsonb", "json", true),
            postgres_field("ok", DataType::Boolean, "boolean", "boolean", true),
            postgres_field("day", DataType::Date32, "date", "date", true),
            postgres_field(
                "t",
                DataType::Time64(TimeUnit::Microsecond),
                "time without time zone",
                "time",
                true,
            ),
            postgres_field("raw", DataType::Binary, "bytea", "binary", true),
            postgres_field("f", DataType::Float64, "double precision", "float", true),
        ]));
        let uid = uuid::Uuid::parse_str("0191c2d4-5e6f-7a8b-9c0d-1e2f3a4b5c6d").unwrap();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef,
                Arc::new(
                    Decimal128Array::from(vec![-999_999_999_999, 5])
                        .with_precision_and_scale(12, 2)
                        .unwrap(),
                ),
                Arc::new(StringArray::from(vec![
                    Some("12345678901234567890123456789012345.1234567890123456789012345678901"),
                    None,
                ])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(1_709_296_496_789_001), None])
                        .with_timezone("UTC"),
                ),
                Arc::new(
                    FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                        vec![Some(uid.as_bytes().to_vec()), None].into_iter(),
                        16,
                    )
                    .unwrap(),
                ),
                Arc::new(StringArray::from(vec![Some("naïve 🎉"), None])),
                Arc::new(StringArray::from(vec![Some(r#"{"k": [1, "two"]}"#), None])),
                Arc::new(BooleanArray::from(vec![Some(true), None])),
                Arc::new(Date32Array::from(vec![Some(-1), None])),
                Arc::new(Time64MicrosecondArray::from(vec![
                    Some(45_296_000_001),
                    None,
                ])),
                Arc::new(BinaryArray::from(vec![Some(&b"\x00\x01"[..]), None])),
                Arc::new(Float64Array::from(vec![Some(0.1), None])),
            ],
        )
        .unwrap();
        // The unconstrained numeric has more fraction digits than DECIMAL(65,30): refused, and
        // the message does not show the value.
        let mut writer = c
            .writer(WriteSpec {
                object: "from_pg".into(),
                schema: schema.clone(),
                mode: WriteMode::Replace,
            })
            .await
            .unwrap();
        let err = writer.write(&batch).await.unwrap_err();
        writer.abort().await;
        let message = err.to_string();
        assert!(message.contains("exact"), "{message}");
        assert!(!message.contains("12345678901234567890"), "{message}");

        let fitting = RecordBatch::try_new(schema.clone(), {
            let mut columns = batch.columns().to_vec();
            columns[2] = Arc::new(StringArray::from(vec![
                Some("12345678901234567890123456789012345.123456789012345678901234567890"),
                Some("-0.5"),
            ]));
            columns
        })
        .unwrap();
        write_all(
            &c,
            "from_pg",
            schema.clone(),
            WriteMode::Replace,
            &[fitting],
        )
        .await;
        let types: Vec<(String, String, String, String)> = columns(&mut admin, "from_pg").await;
        let types: Vec<(&str, &str, &str, &str)> = types
            .iter()
            .map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), d.as_str()))
            .collect();
        let bigint = if types[0].1 == "bigint" {
            "bigint"
        } else {
            "bigint(20)"
        };
        let json_type = if types[6].1 == "json" {
            "json"
        } else {
            "longtext"
        };
        assert_eq!(
            types,
            [
                ("id", bigint, "NO", "PRI"),
                ("price", "decimal(12,2)", "NO", ""),
                ("exact", "decimal(65,30)", "YES", ""),
                ("at", "datetime(6)", "YES", ""),
                ("uid", "char(36)", "YES", ""),
                ("title", "longtext", "YES", ""),
                ("doc", json_type, "YES", ""),
                ("ok", "tinyint(1)", "YES", ""),
                ("day", "date", "YES", ""),
                ("t", "time(6)", "YES", ""),
                ("raw", "longblob", "YES", ""),
                ("f", "double", "YES", ""),
            ]
        );
        let row: mysql_async::Row = admin
            .query_first(
                "SELECT CAST(price AS CHAR), CAST(exact AS CHAR), CAST(at AS CHAR), uid, \
                 CAST(title AS BINARY), JSON_EXTRACT(doc, '$.k[1]'), ok, CAST(day AS CHAR), \
                 CAST(t AS CHAR), HEX(raw), f FROM from_pg WHERE id = 1",
            )
            .await
            .unwrap()
            .unwrap();
        let text = |i: usize| -> String {
            match row.as_ref(i).unwrap() {
                mysql_async::Value::Bytes(b) => String::from_utf8(b.clone()).unwrap(),
                other => format!("{other:?}"),
            }
        };
        assert_eq!(text(0), "-9999999999.99");
        assert_eq!(
            text(1),
            "12345678901234567890123456789012345.123456789012345678901234567890"
        );
        assert_eq!(text(2), "2024-03-01 12:34:56.789001");
        assert_eq!(text(3), uid.hyphenated().to_string());
        assert_eq!(text(4), "naïve 🎉");
        assert_eq!(text(5), "\"two\"");
        assert_eq!(row.get::<i64, _>(6), Some(1));
        assert_eq!(text(7), "1969-12-31");
        assert_eq!(text(8), "12:34:56.000001");
        assert_eq!(text(9), "0001");
        assert_eq!(row.get::<f64, _>(10), Some(0.1));
        let minus_half: String = admin
            .query_first("SELECT CAST(exact AS CHAR) FROM from_pg WHERE id = 2")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(minus_half, "-0.500000000000000000000000000000");
        admin.disconnect().await.unwrap();
    })
    .await;
}

/// Reads `from` and writes what it answered to `to`, as a pipeline run does.
async fn pipe<S: BatchSource, D: BatchDestination>(
    source: &S,
    from: &str,
    destination: &D,
    to: &str,
    mode: WriteMode,
) -> u64 {
    let (schema, stream) = source.read(spec(from, 1000)).await.unwrap();
    let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap();
    let mut writer = destination
        .writer(WriteSpec {
            object: to.to_owned(),
            schema,
            mode,
        })
        .await
        .unwrap();
    for batch in &batches {
        writer.write(batch).await.unwrap();
    }
    writer.commit().await.unwrap()
}

/// The tables of `database`.
async fn tables(conn: &mut mysql_async::Conn, database: &str) -> Vec<String> {
    conn.exec(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? \
         ORDER BY TABLE_NAME",
        (database,),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_database_qualified_destination_lands_in_that_database() {
    with_database(|home| async move {
        with_database(|other| async move {
            let server = server();
            let mut admin = server.admin(Some(&home)).await;
            admin
                .query_drop(
                    "CREATE TABLE kunden (id BIGINT PRIMARY KEY, name VARCHAR(40) NOT NULL) \
                     DEFAULT CHARSET = utf8mb4; \
                     INSERT INTO kunden VALUES (1, 'Anna'), (2, 'Jörg'), (3, 'Zoë')",
                )
                .await
                .unwrap();
            // The connection's database is `home`; the destination names `other`.
            let c = server.connector(&home);
            let target = format!("{other}.kunden_aktiv");
            for mode in [WriteMode::Replace, WriteMode::Replace] {
                assert_eq!(pipe(&c, "kunden", &c, &target, mode).await, 3);
            }
            let key = WriteMode::Upsert {
                key: vec!["id".to_owned()],
            };
            assert_eq!(pipe(&c, "kunden", &c, &target, key).await, 3);
            admin
                .query_drop("INSERT INTO kunden VALUES (4, 'Ida')")
                .await
                .unwrap();
            let _ = c
                .writer(WriteSpec {
                    object: target.clone(),
                    schema: c.read(spec("kunden", 10)).await.unwrap().0,
                    mode: WriteMode::Append,
                })
                .await
                .unwrap()
                .commit()
                .await
                .unwrap();

            // The table is in `other`, by its own name, with the key; nothing is left in `home`
            // (no table named with the dot, no staging table) or beside it in `other`.
            assert_eq!(tables(&mut admin, &other).await, ["kunden_aktiv"]);
            assert_eq!(tables(&mut admin, &home).await, ["kunden"]);
            let key_column: Vec<String> = admin
                .exec(
                    "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
                     WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'kunden_aktiv' AND COLUMN_KEY = 'PRI'",
                    (&other,),
                )
                .await
                .unwrap();
            assert_eq!(key_column, ["id"]);
            let names: Vec<String> = admin
                .query(format!(
                    "SELECT name FROM `{other}`.kunden_aktiv ORDER BY id"
                ))
                .await
                .unwrap();
            assert_eq!(names, ["Anna", "Jörg", "Zoë"]);

            // Read back by the same name: reads, samples and writes agree on it.
            let (_, batches) = read_all(&c, spec(&target, 10)).await;
            assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
            assert_eq!(c.sample(&target, 10).await.unwrap().len(), 3);

            // A name holding a dot is quoted; discovery names it so.
            let dotted = format!("`{other}`.`kunden.alt`");
            assert_eq!(
                pipe(&c, "kunden", &c, &dotted, WriteMode::Replace).await,
                4
            );
            assert_eq!(
                tables(&mut admin, &other).await,
                ["kunden.alt", "kunden_aktiv"]
            );
            let there = server.connector(&other);
            let discovered: Vec<String> = there
                .discover()
                .await
                .unwrap()
                .into_iter()
                .map(|o| o.name)
                .collect();
            assert_eq!(discovered, ["`kunden.alt`", "kunden_aktiv"]);
            assert_eq!(there.sample("`kunden.alt`", 10).await.unwrap().len(), 4);

            // A name that is not database.table, and MySQL's own databases, are refused.
            for bad in ["a.b.c", "`unclosed", ".t", "mysql.lockstep_probe"] {
                let err = c
                    .writer(WriteSpec {
                        object: bad.to_owned(),
                        schema: c.read(spec("kunden", 10)).await.unwrap().0,
                        mode: WriteMode::Append,
                    })
                    .await
                    .unwrap_err();
                assert!(
                    matches!(&err, ConnectorError::Config { field, .. } if field == "object"),
                    "{bad}: {err}"
                );
            }
            let system: Vec<String> = admin
                .query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_NAME = 'lockstep_probe'")
                .await
                .unwrap();
            assert!(system.is_empty());
            admin.disconnect().await.unwrap();
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_float_cursor_does_not_read_its_last_record_again() {
    with_database(|database| async move {
        let server = server();
        let mut admin = server.admin(Some(&database)).await;
        admin
            .query_drop(
                "CREATE TABLE readings (id INT PRIMARY KEY, r FLOAT NOT NULL); \
                 INSERT INTO readings VALUES (1, 0.1), (2, 0.2)",
            )
            .await
            .unwrap();
        let c = server.connector(&database);
        // The cursor a run keeps is the value as shown (0.1, from a Float32), whose FLOAT is
        // 0.100000001490116… as a double: still not above it.
        let after = ReadSpec {
            cursor: Some(CursorSpec {
                field: "r".to_owned(),
                after: Some(json!(0.1)),
            }),
            ..spec("readings", 10)
        };
        let (_, batches) = read_all(&c, after).await;
        let ids: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                b.column_by_name("id")
                    .unwrap()
                    .as_primitive::<Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(ids, [2]);
        admin.disconnect().await.unwrap();
    })
    .await;
}
