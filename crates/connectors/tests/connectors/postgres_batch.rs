//! Bulk reads and writes of the `postgres` connector, against the PostgreSQL in
//! `LOCKSTEP_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`). Each test
//! works in its own database, dropped at the end.

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use futures_util::{FutureExt, StreamExt};
use lockstep_connectors::batch::{
    BatchDestination, BatchSource, BatchWriter, CursorSpec, ReadSpec, WriteMode, WriteSpec, keys,
};
use lockstep_connectors::postgres::{PostgresConfig, PostgresConnector};
use lockstep_connectors::{
    Connector, ConnectorError, Context, EgressPolicy, FailureKind, Secret, Secrets, TlsMode,
};
use serde_json::json;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

pub(super) struct Server {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
}

pub(super) fn server() -> Server {
    let url = std::env::var("LOCKSTEP_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
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
        port: url.port().unwrap_or(5432),
        user: if url.username().is_empty() {
            "postgres".to_owned()
        } else {
            decode(url.username())
        },
        password: url.password().map(decode),
    }
}

impl Server {
    pub(super) async fn admin(&self, database: &str) -> tokio_postgres::Client {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(database);
        if let Some(password) = &self.password {
            config.password(password);
        }
        let (client, connection) = config.connect(NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    pub(super) fn connector(&self, database: &str) -> PostgresConnector {
        self.connector_with_timeout(database, Duration::from_secs(30))
    }

    fn connector_with_timeout(&self, database: &str, timeout: Duration) -> PostgresConnector {
        self.connector_with(database, None, timeout)
    }

    fn connector_with(
        &self,
        database: &str,
        schema: Option<&str>,
        timeout: Duration,
    ) -> PostgresConnector {
        let config = PostgresConfig {
            host: self.host.clone(),
            port: self.port,
            database: database.to_owned(),
            user: self.user.clone(),
            tls: TlsMode::Disable,
            ca_certificate: None,
            client_certificate: None,
            schema: schema.map(str::to_owned),
        };
        let mut secrets = Secrets::new();
        if let Some(password) = &self.password {
            secrets.insert("password", Secret::new(password.clone()));
        }
        let ctx = Context {
            egress: Arc::new(EgressPolicy::parse("loopback").unwrap()),
            files_root: None,
            timeout,
        };
        PostgresConnector::new(config, secrets, ctx)
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// Runs `body` with fresh databases (their names), dropped afterwards even when `body` panics.
async fn with_databases<F, Fut>(count: usize, body: F)
where
    F: FnOnce(Vec<String>) -> Fut,
    Fut: Future<Output = ()>,
{
    let server = server();
    let admin = server.admin("postgres").await;
    let names: Vec<String> = (0..count).map(|_| unique("lockstep_batch")).collect();
    for name in &names {
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap();
    }
    let outcome = AssertUnwindSafe(body(names.clone())).catch_unwind().await;
    for name in &names {
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
            .unwrap();
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

pub(super) async fn with_database<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    with_databases(1, |mut names| body(names.remove(0))).await;
}

fn read_spec(object: &str, batch_rows: usize) -> ReadSpec {
    ReadSpec {
        object: object.to_owned(),
        fields: None,
        cursor: None,
        batch_rows,
    }
}

async fn read_all(c: &PostgresConnector, spec: ReadSpec) -> (Arc<Schema>, Vec<RecordBatch>) {
    let (schema, mut stream) = c.read(spec).await.unwrap();
    let mut batches = Vec::new();
    while let Some(batch) = stream.next().await {
        batches.push(batch.unwrap());
    }
    (schema, batches)
}

/// Reads `from` and writes it to `to` with `mode`, batch by batch; answers the count committed.
async fn copy(
    source: &PostgresConnector,
    from: &str,
    destination: &PostgresConnector,
    to: &str,
    mode: WriteMode,
    batch_rows: usize,
) -> Result<u64, ConnectorError> {
    copy_as(source, from, destination, to, mode, batch_rows, false).await
}

/// [`copy`], reading in PostgreSQL's binary form when `binary`.
async fn copy_as(
    source: &PostgresConnector,
    from: &str,
    destination: &PostgresConnector,
    to: &str,
    mode: WriteMode,
    batch_rows: usize,
    binary: bool,
) -> Result<u64, ConnectorError> {
    let spec = read_spec(from, batch_rows);
    let (schema, mut stream) = if binary {
        source.read_pg_binary(spec).await?
    } else {
        source.read(spec).await?
    };
    let mut writer = destination
        .writer(WriteSpec {
            object: to.to_owned(),
            schema,
            mode,
        })
        .await?;
    while let Some(batch) = stream.next().await {
        writer.write(&batch?).await?;
    }
    writer.commit().await
}

/// `id` (Int64, NOT NULL) and `name` (Utf8), the schema of the upsert tests.
fn id_and_name() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

/// An upsert on the key `id`.
fn upsert_by_id() -> WriteMode {
    WriteMode::Upsert {
        key: vec!["id".to_owned()],
    }
}

async fn count(client: &tokio_postgres::Client, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// Column name, type, NOT NULL of a table, in order.
pub(super) async fn columns(
    client: &tokio_postgres::Client,
    table: &str,
) -> Vec<(String, String, bool)> {
    client
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod), attnotnull
             FROM pg_attribute WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped
             ORDER BY attnum",
            &[&table],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// The primary key's name and columns.
async fn primary_key(
    client: &tokio_postgres::Client,
    table: &str,
) -> Option<(String, Vec<String>)> {
    client
        .query_opt(
            "SELECT con.conname::text,
                    (SELECT array_agg(a.attname::text ORDER BY k.ord)
                     FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum)
             FROM pg_constraint con WHERE con.conrelid = $1::text::regclass AND con.contype = 'p'",
            &[&table],
        )
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1)))
}

/// Tables a writer left behind (there must be none after commit or abort).
async fn leftovers(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname LIKE '%\\_\\_lockstep\\_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Every edge of every type the bulk path reads and writes.
const ALL_TYPES: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TABLE a (
    id integer NOT NULL,
    region text NOT NULL,
    name varchar(40),
    code char(5),
    tiny "char",
    label name,
    price numeric(20,6),
    hundreds numeric(5,-2),
    tenth numeric(4,1),
    free numeric,
    f8 double precision,
    f4 real,
    i2 smallint,
    i4 integer,
    i8 bigint,
    flag boolean NOT NULL,
    created timestamp,
    seen timestamptz,
    day date,
    at time,
    uid uuid,
    doc jsonb,
    raw json,
    data bytea,
    tags text[],
    span interval,
    feeling mood,
    pos positive,
    "odd ""name""" text,
    PRIMARY KEY (id, region)
);
INSERT INTO a VALUES
    (1, 'eu', 'Grüße 😀', 'abc', 'x', 'nm', 12345678901234.123456, 12300, 999.9,
     12345678901234567890.1234567890, 1.7976931348623157e308, 3.4028235e38,
     32767, 2147483647, 9223372036854775807, true,
     '2024-03-01 12:34:56.789', '2024-03-01 14:34:56.789+02', '1999-12-31', '23:59:59.999999',
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2], "b": null, "ü": "😀"}',
     '{"x":1,  "x": 2}', '\x00ff10', '{a,"b c",NULL}', '1 year 2 mons 3 days 04:05:06.7',
     'happy', 5, 'q"uote'),
    (2, 'us', '', '', ' ', '', -12345678901234.123456, -99900, -0.1,
     1e-30, -2.2250738585072014e-308, -1.5,
     -32768, -2147483648, -9223372036854775808, false,
     '1900-01-01 00:00:00', '1969-07-20 20:17:40Z', '0001-01-01', '00:00:00',
     '00000000-0000-0000-0000-000000000000', '[]', '""', '\x', '{}', '-1 day',
     'sad', 1, ''),
    (3, 'eu', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false,
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (4, 'eu', 'x', 'abcde', 'z', 'n', 0, 0, 0, 'NaN', 'NaN', 'Infinity',
     0, 0, 0, true,
     'infinity', '-infinity', '5874897-12-31', '24:00:00',
     'ffffffff-ffff-ffff-ffff-ffffffffffff', '{"n": 1.50, "big": 123456789012345678901234567890}',
     '{"n": 1.50}', '\x00', '{"{}"}', '0', 'ok', 2147483647, 'x'),
    (5, 'eu', 'y', 'a', 'a', 'a', 0.000001, 100, 0.1, '-0.000001000', '-Infinity', '-0',
     1, 1, 1, true,
     '-infinity', 'infinity', '4713-01-01 BC', '12:00:00',
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', 'null', 'null', '\xdeadbeef', NULL, '1 mon',
     NULL, NULL, NULL),
    (6, 'eu', 'z', 'b', 'b', 'b', 99999999999999.999999, -100, 100.0, '-Infinity', 1e-300, 1e-30,
     -1, -1, -1, false,
     '200000-01-01 00:00:00', '2000-01-01 00:00:00+00', '200000-01-01', '00:00:00.000001',
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13', '{}', '[1,2]', '\x00', NULL, NULL, NULL, NULL, NULL),
    (7, 'eu', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 12345678901234567890123456789012345678901234567890.12345678901234567890,
     NULL, NULL, NULL, NULL, NULL, true, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL);
"#;

/// Every column of `a` in a comparable form (json has no equality).
const COMPARABLE: &str = r#"id, region, name, code, tiny, label, price, hundreds, tenth, free,
    f8, f4, i2, i4, i8, flag, created, seen, day, at, uid, doc, raw::text, data, tags, span,
    feeling, pos, "odd ""name""""#;

#[tokio::test]
async fn round_trip_keeps_every_type_and_value() {
    with_database(|database| async move {
        let server = server();
        let admin = server.admin(&database).await;
        admin.batch_execute(ALL_TYPES).await.unwrap();
        let c = server.connector(&database);

        // The Arrow side: types from discovery, values decoded exactly.
        let (schema, batches) = read_all(&c, read_spec("public.a", 3)).await;
        assert_eq!(batches.len(), 3, "7 rows in batches of 3");
        assert!(batches.iter().all(|b| b.num_rows() <= 3));
        let field = |name: &str| schema.field_with_name(name).unwrap().clone();
        assert_eq!(field("price").data_type(), &DataType::Decimal128(20, 6));
        assert_eq!(
            field("price")
                .metadata()
                .get(keys::NATIVE)
                .map(String::as_str),
            Some("numeric(20,6)")
        );
        assert_eq!(
            field("id")
                .metadata()
                .get(keys::PRIMARY_KEY)
                .map(String::as_str),
            Some("true")
        );
        assert!(!field("flag").is_nullable());
        assert_eq!(field("hundreds").data_type(), &DataType::Decimal128(5, -2));
        assert_eq!(field("free").data_type(), &DataType::Utf8);
        assert_eq!(field("i2").data_type(), &DataType::Int64);
        assert_eq!(field("uid").data_type(), &DataType::FixedSizeBinary(16));
        assert_eq!(
            field("seen").data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(field("tags").data_type(), &DataType::Utf8);
        let first = &batches[0];
        let col = |name: &str| first.column(schema.index_of(name).unwrap()).clone();
        let price = col("price");
        let price = price.as_primitive::<Decimal128Type>();
        assert_eq!(price.value(0), 12_345_678_901_234_123_456);
        assert_eq!(price.value(1), -12_345_678_901_234_123_456);
        assert!(price.is_null(2));
        let hundreds = col("hundreds");
        assert_eq!(hundreds.as_primitive::<Decimal128Type>().value(0), 123);
        let free = col("free");
        let free = free.as_string::<i32>();
        assert_eq!(free.value(0), "12345678901234567890.1234567890");
        assert_eq!(free.value(1), "0.000000000000000000000000000001");
        let i8s = col("i8");
        assert_eq!(i8s.as_primitive::<Int64Type>().value(1), i64::MIN);
        let seen = col("seen");
        assert_eq!(
            seen.as_primitive::<TimestampMicrosecondType>().value(0),
            1_709_296_496_789_000
        );
        let day = col("day");
        assert_eq!(day.as_primitive::<Date32Type>().value(0), 10_956);
        assert_eq!(day.as_primitive::<Date32Type>().value(1), -719_162);
        let uid = col("uid");
        assert_eq!(
            uid.as_fixed_size_binary().value(0),
            uuid::Uuid::parse_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
                .unwrap()
                .as_bytes()
        );
        let doc = col("doc");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(doc.as_string::<i32>().value(0)).unwrap(),
            json!({"a": [1, 2], "b": null, "ü": "😀"})
        );
        let raw = col("raw");
        assert_eq!(raw.as_string::<i32>().value(0), "{\"x\":1,  \"x\": 2}");
        let data = col("data");
        assert_eq!(data.as_binary::<i32>().value(0), [0, 255, 16]);
        assert_eq!(data.as_binary::<i32>().value(1), [0_u8; 0]);
        let tags = col("tags");
        assert_eq!(tags.as_string::<i32>().value(0), "{a,\"b c\",NULL}");
        let code = col("code");
        assert_eq!(code.as_string::<i32>().value(0), "abc  ");

        // Written to a new table with Replace: same types, NOT NULLs, key and values.
        let written = copy(&c, "public.a", &c, "b", WriteMode::Replace, 3)
            .await
            .unwrap();
        assert_eq!(written, 7);
        assert_eq!(columns(&admin, "a").await, columns(&admin, "b").await);
        assert_eq!(
            primary_key(&admin, "b").await,
            Some((
                "b_pkey".to_owned(),
                vec!["id".to_owned(), "region".to_owned()]
            ))
        );
        assert_eq!(differences(&admin, COMPARABLE, "a", "b").await, 0);
        assert_eq!(count(&admin, "b").await, 7);
        assert_eq!(leftovers(&admin).await, 0);

        // information_schema agrees too.
        let types: Vec<(String, String)> = admin
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_name = 'b' ORDER BY ordinal_position",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let expected: Vec<(String, String)> = admin
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_name = 'a' ORDER BY ordinal_position",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(types, expected);

        // A NaN in a numeric with a precision has no Decimal128: the read fails naming the column.
        admin
            .batch_execute(
                "CREATE TABLE nan (n numeric(5,2)); INSERT INTO nan VALUES (1), ('NaN');",
            )
            .await
            .unwrap();
        let (_, mut stream) = c.read(read_spec("public.nan", 10)).await.unwrap();
        let err = stream.next().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("\"n\""), "{err}");
        assert!(err.to_string().contains("NaN"), "{err}");
    })
    .await;
}

/// How many rows of `x`'s and `y`'s `columns` one has and the other has not (both ways).
async fn differences(client: &tokio_postgres::Client, columns: &str, x: &str, y: &str) -> i64 {
    let mut total = 0;
    for (a, b) in [(x, y), (y, x)] {
        let diff: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM (SELECT {columns} FROM {a} EXCEPT ALL SELECT {columns} FROM {b}) d"
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        total += diff;
    }
    total
}

#[tokio::test]
async fn the_binary_form_passes_values_on_exactly() {
    with_database(|database| async move {
        let server = server();
        let admin = server.admin(&database).await;
        admin.batch_execute(ALL_TYPES).await.unwrap();
        let c = server.connector(&database);

        // Built-in types the decoder reads exactly come as PostgreSQL sent them, marked with
        // their type; the rest (cast to text, a domain) as a plain read answers them.
        let (schema, mut stream) = c.read_pg_binary(read_spec("public.a", 3)).await.unwrap();
        let (plain, _) = read_all(&c, read_spec("public.a", 3)).await;
        let mark = |name: &str| {
            let field = schema.field_with_name(name).unwrap();
            (
                field.data_type().clone(),
                field.metadata().get(keys::PG_BINARY).cloned(),
            )
        };
        for (name, typname) in [
            ("free", "numeric"),
            ("price", "numeric"),
            ("i2", "int2"),
            ("f8", "float8"),
            ("f4", "float4"),
            ("code", "bpchar"),
            ("doc", "jsonb"),
            ("raw", "json"),
            ("seen", "timestamptz"),
            ("day", "date"),
            ("uid", "uuid"),
            ("data", "bytea"),
            // A domain: in its base type's form (PostgreSQL checks the domain as it takes it).
            ("pos", "int4"),
        ] {
            assert_eq!(
                mark(name),
                (DataType::Binary, Some(typname.to_owned())),
                "{name}"
            );
        }
        for name in ["tags", "span", "feeling", "tiny"] {
            assert_eq!(
                mark(name),
                (
                    plain.field_with_name(name).unwrap().data_type().clone(),
                    None
                ),
                "{name}"
            );
        }
        // Everything else about a field stays: its type, nullability and key.
        let id = schema.field_with_name("id").unwrap();
        assert_eq!(
            id.metadata().get(keys::NATIVE).map(String::as_str),
            Some("integer")
        );
        assert_eq!(
            id.metadata().get(keys::PRIMARY_KEY).map(String::as_str),
            Some("true")
        );
        assert!(!schema.field_with_name("flag").unwrap().is_nullable());
        // The bytes are the binary form: numeric 1e-30 is one base-10000 digit, weight -8.
        let first = stream.next().await.unwrap().unwrap();
        let free = first.column(schema.index_of("free").unwrap());
        assert_eq!(
            free.as_binary::<i32>().value(1),
            [0, 1, 0xff, 0xf8, 0, 0, 0, 30, 0, 100]
        );
        assert!(free.is_null(2));
        drop(stream);

        // The cursor of an incremental read is always decoded.
        let mut cursor = read_spec("public.a", 3);
        cursor.cursor = Some(CursorSpec {
            field: "i8".to_owned(),
            after: None,
        });
        let (schema, _) = c.read_pg_binary(cursor).await.unwrap();
        let i8 = schema.field_with_name("i8").unwrap();
        assert_eq!(i8.data_type(), &DataType::Int64);
        assert_eq!(i8.metadata().get(keys::PG_BINARY), None);

        // Into a new table: the same types, NOT NULLs, key and values as the source.
        let written = copy_as(&c, "public.a", &c, "b", WriteMode::Replace, 3, true)
            .await
            .unwrap();
        assert_eq!(written, 7);
        assert_eq!(columns(&admin, "a").await, columns(&admin, "b").await);
        assert_eq!(
            primary_key(&admin, "b").await.map(|(_, key)| key),
            Some(vec!["id".to_owned(), "region".to_owned()])
        );
        assert_eq!(differences(&admin, COMPARABLE, "a", "b").await, 0);
        // Also a NaN in a numeric with a precision, which the decoded form cannot hold.
        admin
            .batch_execute(
                "CREATE TABLE nan (n numeric(5,2)); INSERT INTO nan VALUES (1), ('NaN'), (NULL);",
            )
            .await
            .unwrap();
        copy_as(&c, "public.nan", &c, "nan2", WriteMode::Replace, 3, true)
            .await
            .unwrap();
        assert_eq!(differences(&admin, "n", "nan", "nan2").await, 0);

        // Into existing columns of other types: decoded first, so they hold exactly what a
        // plain read writes (the same columns in `by_plain`).
        let other_types = "(id bigint, region varchar(10), name text, code text, tiny text,
            label text, price numeric(30,6), hundreds numeric, tenth double precision, free text,
            f8 numeric, f4 double precision, i2 bigint, i4 numeric, i8 text, flag text,
            created timestamptz, seen timestamp, day timestamp, at time, uid text, doc text,
            raw jsonb, data bytea, tags text, span text, feeling text, pos bigint,
            \"odd \"\"name\"\"\" text)";
        admin
            .batch_execute(&format!(
                "SET TIME ZONE 'UTC'; CREATE TABLE by_binary {other_types}; \
                 CREATE TABLE by_plain {other_types};"
            ))
            .await
            .unwrap();
        // Row 4's time of 24:00:00 and date beyond a timestamp's range do not fit: leave it out.
        admin
            .batch_execute("CREATE TABLE a2 AS SELECT * FROM a WHERE id <> 4")
            .await
            .unwrap();
        copy_as(&c, "public.a2", &c, "by_binary", WriteMode::Append, 3, true)
            .await
            .unwrap();
        copy_as(&c, "public.a2", &c, "by_plain", WriteMode::Append, 3, false)
            .await
            .unwrap();
        assert_eq!(count(&admin, "by_binary").await, 6);
        let all = "id, region, name, code, tiny, label, price, hundreds, tenth, free, f8, f4, \
                   i2, i4, i8, flag, created, seen, day, at, uid, doc, raw, data, tags, span, \
                   feeling, pos, \"odd \"\"name\"\"\"";
        assert_eq!(differences(&admin, all, "by_binary", "by_plain").await, 0);
        // … and the values arrived: the numeric 1e-30 as its text, the real widened.
        let row = admin
            .query_one("SELECT free, f4 FROM by_binary WHERE id = 2", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "0.000000000000000000000000000001");
        assert_eq!(row.get::<_, f64>(1), -1.5);
        assert_eq!(leftovers(&admin).await, 0);
    })
    .await;
}

#[tokio::test]
async fn round_trip_to_another_database() {
    with_databases(2, |names| async move {
        let server = server();
        let source = server.admin(&names[0]).await;
        source.batch_execute(ALL_TYPES).await.unwrap();
        let target = server.admin(&names[1]).await;
        let from = server.connector(&names[0]);
        let to = server.connector(&names[1]);
        assert_eq!(
            copy(&from, "public.a", &to, "public.a", WriteMode::Replace, 1000)
                .await
                .unwrap(),
            7
        );
        let mut expected = columns(&source, "a").await;
        for column in &mut expected {
            // Types the destination does not have: text (enum), integer (the domain's base).
            match column.0.as_str() {
                "feeling" => column.1 = "text".to_owned(),
                "pos" => column.1 = "bigint".to_owned(),
                _ => {}
            }
        }
        assert_eq!(columns(&target, "a").await, expected);
        // Values, compared as text across the two databases.
        assert_eq!(dump(&source).await, dump(&target).await);
    })
    .await;
}

/// The rows of `a`, as text, in order.
async fn dump(client: &tokio_postgres::Client) -> Vec<String> {
    client
        .query(
            &format!("SELECT ({COMPARABLE})::text FROM a ORDER BY id"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

const REPLACED: &str = r"
CREATE TABLE src (id bigint PRIMARY KEY, name text NOT NULL, n serial, k integer GENERATED BY DEFAULT AS IDENTITY,
                  CONSTRAINT name_short CHECK (length(name) < 100));
INSERT INTO src (id, name) SELECT g, 'new ' || g FROM generate_series(1, 500) g;
CREATE TABLE b (id bigint PRIMARY KEY, name text NOT NULL, n serial, k integer GENERATED BY DEFAULT AS IDENTITY,
                CONSTRAINT name_short CHECK (length(name) < 100));
CREATE INDEX b_name_idx ON b (name);
CREATE UNIQUE INDEX b_n_key ON b (n);
INSERT INTO b (id, name) SELECT g, 'old ' || g FROM generate_series(1, 3) g;
SELECT setval(pg_get_serial_sequence('b', 'n'), 1000);
SELECT setval(pg_get_serial_sequence('b', 'k'), 2000);
";

/// Index names and definitions of `table`.
async fn indexes(client: &tokio_postgres::Client, table: &str) -> Vec<(String, String)> {
    client
        .query(
            "SELECT c.relname::text, pg_get_indexdef(i.indexrelid)
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = $1::text::regclass ORDER BY 1",
            &[&table],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn replace_is_atomic_and_repeatable() {
    with_database(|database| async move {
        let server = server();
        let admin = server.admin(&database).await;
        admin.batch_execute(REPLACED).await.unwrap();
        let c = server.connector(&database);
        let before_indexes = indexes(&admin, "b").await;
        let before_columns = columns(&admin, "b").await;
        let (schema, batches) = read_all(&c, read_spec("public.src", 100)).await;
        let spec = WriteSpec {
            object: "public.b".to_owned(),
            schema: schema.clone(),
            mode: WriteMode::Replace,
        };

        // Written, then aborted: the old table.
        let mut writer = c.writer(spec.clone()).await.unwrap();
        for batch in &batches {
            writer.write(batch).await.unwrap();
        }
        // Meanwhile, readers see the old rows (and are not blocked).
        assert_eq!(count(&admin, "b").await, 3);
        writer.abort().await;
        assert_eq!(count(&admin, "b").await, 3);
        assert_eq!(leftovers(&admin).await, 0);

        // Written, then dropped without commit (a crash): the old table.
        let mut writer = c.writer(spec.clone()).await.unwrap();
        writer.write(&batches[0]).await.unwrap();
        drop(writer);
        let started = Instant::now();
        while leftovers(&admin).await != 0 {
            assert!(started.elapsed() < Duration::from_secs(10), "rolled back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(count(&admin, "b").await, 3);

        // Committed twice: the new rows, the same names for keys, indexes and sequences.
        for run in 0..2 {
            let mut writer = c.writer(spec.clone()).await.unwrap();
            for batch in &batches {
                writer.write(batch).await.unwrap();
            }
            let old = if run == 0 { 3 } else { 500 };
            assert_eq!(count(&admin, "b").await, old, "run {run}: old until commit");
            assert_eq!(writer.commit().await.unwrap(), 500);
            assert_eq!(count(&admin, "b").await, 500, "run {run}");
            assert_eq!(indexes(&admin, "b").await, before_indexes, "run {run}");
            assert_eq!(columns(&admin, "b").await, before_columns, "run {run}");
            assert_eq!(leftovers(&admin).await, 0, "run {run}");
            let check: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_constraint
                     WHERE conrelid = 'b'::regclass AND conname = 'name_short'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(check, 1, "run {run}");
            let sequences: Vec<String> = admin
                .query(
                    "SELECT pg_get_serial_sequence('b', 'n') UNION ALL
                     SELECT pg_get_serial_sequence('b', 'k')",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            assert_eq!(sequences, ["public.b_n_seq", "public.b_k_seq"], "run {run}");
        }
        assert_eq!(
            admin
                .query_one("SELECT name FROM b WHERE id = 7", &[])
                .await
                .unwrap()
                .get::<_, String>(0),
            "new 7"
        );
        // The sequences carried on where they were.
        let row = admin
            .query_one(
                "INSERT INTO b (id, name) VALUES (10000, 'later') RETURNING n, k",
                &[],
            )
            .await
            .unwrap();
        assert_eq!((row.get::<_, i32>(0), row.get::<_, i32>(1)), (1001, 2001));

        // A reader that keeps the table busy past the timeout: the swap gives up (on the
        // server too: it does not stay queued in front of other readers); the old rows stay.
        let busy = server.admin(&database).await;
        busy.batch_execute("BEGIN; SELECT count(*) FROM b;")
            .await
            .unwrap();
        let impatient = server.connector_with_timeout(&database, Duration::from_secs(1));
        let err = copy(
            &impatient,
            "public.src",
            &impatient,
            "b",
            WriteMode::Replace,
            100,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("55P03"), "{err}");
        let queued: i64 = admin
            .query_one("SELECT count(*) FROM pg_locks WHERE NOT granted", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(queued, 0);
        busy.batch_execute("COMMIT").await.unwrap();
        assert_eq!(count(&admin, "b").await, 501);

        // A view on the table: it cannot be dropped, so nothing changes.
        admin
            .batch_execute("CREATE VIEW b_view AS SELECT id FROM b")
            .await
            .unwrap();
        let err = copy(&c, "public.src", &c, "b", WriteMode::Replace, 100)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), Some(FailureKind::Other), "{err}");
        assert!(err.to_string().contains("2BP01"), "{err}");
        assert_eq!(count(&admin, "b").await, 501);
        assert_eq!(leftovers(&admin).await, 0);
    })
    .await;
}

#[tokio::test]
async fn a_reader_sees_the_old_rows_until_commit() {
    with_database(|database| async move {
        let server = server();
        let admin = server.admin(&database).await;
        admin
            .batch_execute(
                "CREATE TABLE src AS SELECT g AS id FROM generate_series(1, 50000) g;
                 CREATE TABLE t (id integer); INSERT INTO t VALUES (1), (2);",
            )
            .await
            .unwrap();
        let c = server.connector(&database);
        let (schema, mut stream) = c.read(read_spec("public.src", 1000)).await.unwrap();
        let mut writer = c
            .writer(WriteSpec {
                object: "t".to_owned(),
                schema,
                mode: WriteMode::Replace,
            })
            .await
            .unwrap();
        let reader = server.admin(&database).await;
        let mut batches = 0;
        while let Some(batch) = stream.next().await {
            writer.write(&batch.unwrap()).await.unwrap();
            batches += 1;
            if batches % 10 == 0 {
                let (n, sum): (i64, Option<i64>) = {
                    let row = reader
                        .query_one("SELECT count(*), sum(id) FROM t", &[])
                        .await
                        .unwrap();
                    (row.get(0), row.get(1))
                };
                assert_eq!((n, sum), (2, Some(3)));
            }
        }
        assert_eq!(batches, 50);
        writer.commit().await.unwrap();
        let row = reader
            .query_one("SELECT count(*), sum(id)::int8 FROM t", &[])
            .await
            .unwrap();
        assert_eq!(
            (row.get::<_, i64>(0), row.get::<_, i64>(1)),
            (50_000, 1_250_025_000)
        );
    })
    .await;
}

#[tokio::test]
async fn append_adds_and_keys_refuse_without_values() {
    with_database(|database| async move {
        let server = server();
        let admin = server.admin(&database).await;
        admin
            .batch_execute(
                "CREATE TABLE src (id integer, secret text);
                 INSERT INTO src SELECT g, 'secret-value-' || g FROM generate_series(1, 1000) g;
                 CREATE TABLE keyed (id integer PRIMARY KEY, secret text);",
            )
            .await
            .unwrap();
        let c = server.connector(&database);
        for round in 1..=2 {
            assert_eq!(
                copy(&c, "public.src", &c, "public.dst", WriteMode::Append, 300)
                    .await
                    .unwrap(),
                1000
            );
            assert_eq!(count(&admin, "dst").await, 1000 * round);
        }
        assert_eq!(
            columns(&admin, "dst").await,
            [
                ("id".to_owned(), "integer".to_owned(), false),
                ("secret".to_owned(), "text".to_owned(), false),
            ]
        );

        // A key violation: the constraint is named, the value is not; nothing is written.
        copy(&c, "public.src", &c, "keyed", WriteMode::Append, 300)
            .await
            .unwrap();
        let err = copy(&c, "public.src", &c, "keyed", WriteMode::Append, 300)
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("SQLSTATE 23505"), "{message}");
        assert!(message.contains("keyed_pkey"), "{message}");
        assert!(!message.contains("secret-value"), "{message}");
        assert!(!message.contains("(id)="), "{message}");
        assert_eq!(count(&admin, "keyed").await, 1000);

        // A NULL into NOT NULL: the column is named.
        admin
            .batch_execute("CREATE TABLE strict (id integer, secret text NOT NULL)")
            .await
            .unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("secret", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef,
                Arc::new(StringArray::from(vec![Some("secret-value-x"), None])),
            ],
        )
        .unwrap();
        let mut writer = c
            .writer(WriteSpec {
                object: "strict".to_owned(),
                schema: schema.clone(),
                mode: WriteMode::Append,
            })
            .await
            .unwrap();
        writer.write(&batch).await.unwrap();
        let err = writer.commit().await.unwrap_err();
        let message = err.to_string();
        assert!(message.contains("SQLSTATE 23502"), "{message}");
        assert!(message.contains("column \"secret\""), "{message}");
        assert!(message.contains("record 2"), "{message}");
        assert!(!message.contains("secret-value"), "{message}");
        assert_eq!(count(&admin, "strict").await, 0);

        // A value beyond the column's type is refused before it is sent.
        admin
            .batch_execute("CREATE TABLE small (id smallint, secret text)")
            .await
            .unwrap();
        let big = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![70_000])) as ArrayRef,
                Arc::new(StringArray::from(vec!["x"])),
            ],
        )
        .unwrap();
        let mut writer = c
            .writer(WriteSpec {
                object: "small".to_owned(),
                schema: schema.clone(),
                mode: WriteMode::Append,
            })
            .await
            .unwrap();
        let ok = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![7])) as ArrayRef,
                Arc::new(StringArray::from(vec!["x"])),
            ],
        )
        .unwrap();
        writer.write(&ok).await.unwrap();
        let err = writer.write(&big).await.unwrap_err();
        assert!(err.to_string().contains("\"id\""), "{err}");
        // After a failed write, the writer only aborts.
        assert!(writer.write(&ok).await.is_err());
        let err = writer.commit().await.unwrap_err();
        assert!(err.to_string().contains("earlier write failed"), "{err}");
        assert_eq!(count(&admin, "small").await, 0);

        // Incompatible types are a configuration error naming the field.
        admin
            .batch_execute("CREATE TABLE typed (id integer, secret bytea)")
            .await
            .unwrap();
        let binary = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("secret", DataType::Date32, true),
        ]));
        let err = c
            .writer(WriteSpec {
                object: "typed".to_owned(),
                schema: binary,
                mode: WriteMode::Append,
            })
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectorError::Config { .. }), "{err}");
        assert!(err.to_string().contains("\"secret\""), "{err}");

        // A field the table does not have.
        let extra = Arc::new(Schema::new(vec![Field::new("nope", DataType::Int64, true)]));
        let err = c
            .writer(WriteSpec {
                object: "typed".to_owned(),
                schema: extra,
                mode: WriteMode::Append,
            })
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectorError::Config { .. }), "{err}");
        assert!(err.to_string().contains("\"nope\""), "{err}");

        // Text into other types goes through a server-side cast.
        admin
            .batch_execute(
                "CREATE TABLE casts (id integer, secret interval, n numeric, j jsonb, d date)",
            )
            .await
            .unwrap();
        let texts = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("secret", DataType::Utf8, true),
            Field::new("n", DataType::Utf8, true),
            Field::new("j", DataType::Utf8, true),
            Field::new("d", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            texts.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("42"), None])) as ArrayRef,
                Arc::new(StringArray::from(vec![Some("1 day"), None])),
                Arc::new(StringArray::from(vec![Some("-1.50e-3"), Some("NaN")])),
                Arc::new(StringArray::from(vec![Some("{\"a\": 1}"), None])),
                Arc::new(StringArray::from(vec![Some("2024-02-29"), None])),
            ],
        )
        .unwrap();
        let mut writer = c
            .writer(WriteSpec {
                object: "casts".to_owned(),
                schema: texts,
                mode: WriteMode::Append,
            })
            .await
            .unwrap();
        writer.write(&batch).await.unwrap();
        assert_eq!(writer.commit().await.unwrap(), 2);
        let rows: Vec<String> = admin
            .query("SELECT casts::text FROM casts ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            rows,
            [
                "(42,\"1 day\",-0.00150,\"{\"\"a\"\": 1}\",2024-02-29)",
                "(,,NaN,,)"
            ]
        );
    })
    .await;
}

fn keyed_batch(schema: &Arc<Schema>, ids: &[i64], names: &[&str]) -> RecordBatch {
    RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef,
            Arc::new(StringArray::from(names.to_vec())),
        ],
    )
    .unwrap()
}

#[tokio::test]
async fn upsert_updates_and_keeps_the_last_record_of_a_key() {
    with_database(|database| async move {
        let server = server();
        let admin = server.admin(&database).await;
        admin
            .batch_execute(
                "CREATE TABLE src (id integer PRIMARY KEY, name text);
                 INSERT INTO src SELECT g, 'v1-' || g FROM generate_series(1, 1000) g;",
            )
            .await
            .unwrap();
        let c = server.connector(&database);
        let upsert = upsert_by_id;
        assert_eq!(
            copy(&c, "public.src", &c, "dst", upsert(), 300)
                .await
                .unwrap(),
            1000
        );
        assert_eq!(
            primary_key(&admin, "dst").await,
            Some(("dst_pkey".to_owned(), vec!["id".to_owned()]))
        );
        admin
            .batch_execute(
                "UPDATE src SET name = 'v2-' || id WHERE id % 2 = 0;
                 INSERT INTO src SELECT g, 'v2-' || g FROM generate_series(1001, 1100) g;",
            )
            .await
            .unwrap();
        assert_eq!(
            copy(&c, "public.src", &c, "dst", upsert(), 300)
                .await
                .unwrap(),
            1100
        );
        let diff: i64 = admin
            .query_one(
                "SELECT count(*) FROM (SELECT * FROM src EXCEPT SELECT * FROM dst) d",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(diff, 0);
        assert_eq!(count(&admin, "dst").await, 1100);

        // Repeated keys, within a batch and across batches: the last one wins.
        let schema = id_and_name();
        let mut writer = c
            .writer(WriteSpec {
                object: "public.dst".to_owned(),
                schema: schema.clone(),
                mode: upsert(),
            })
            .await
            .unwrap();
        writer
            .write(&keyed_batch(
                &schema,
                &[1, 2, 1, 5000],
                &["a", "b", "c", "d"],
            ))
            .await
            .unwrap();
        writer
            .write(&keyed_batch(&schema, &[2, 5000, 1], &["e", "f", "g"]))
            .await
            .unwrap();
        // Not visible before commit.
        assert_eq!(count(&admin, "dst").await, 1100);
        assert_eq!(writer.commit().await.unwrap(), 7);
        let rows: Vec<(i32, String)> = admin
            .query(
                "SELECT id, name FROM dst WHERE id IN (1, 2, 3, 5000) ORDER BY id",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(
            rows,
            [
                (1, "g".to_owned()),
                (2, "e".to_owned()),
                (3, "v1-3".to_owned()),
                (5000, "f".to_owned())
            ]
        );

        // Every column is the key: new keys are added, the rest left alone.
        let id_only = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let mut writer = c
            .writer(WriteSpec {
                object: "dst".to_owned(),
                schema: id_only.clone(),
                mode: upsert(),
            })
            .await
            .unwrap();
        writer
            .write(
                &RecordBatch::try_new(
                    id_only.clone(),
                    vec![Arc::new(Int64Array::from(vec![1, 6000, 6000])) as ArrayRef],
                )
                .unwrap(),
            )
            .await
            .unwrap();
        writer.commit().await.unwrap();
        assert_eq!(count(&admin, "dst").await, 1102);

        // A composite key, in any order, whatever the names' case.
        admin
            .batch_execute(
                r#"CREATE TABLE multi ("Zed" bigint, alpha text, v text, UNIQUE (alpha, "Zed"));
                   INSERT INTO multi VALUES (1, 'a', 'old');"#,
            )
            .await
            .unwrap();
        let multi = Arc::new(Schema::new(vec![
            Field::new("Zed", DataType::Int64, false),
            Field::new("alpha", DataType::Utf8, false),
            Field::new("v", DataType::Utf8, true),
        ]));
        let mut writer = c
            .writer(WriteSpec {
                object: "multi".to_owned(),
                schema: multi.clone(),
                mode: WriteMode::Upsert {
                    key: vec!["Zed".to_owned(), "alpha".to_owned()],
                },
            })
            .await
            .unwrap();
        writer
            .write(
                &RecordBatch::try_new(
                    multi.clone(),
                    vec![
                        Arc::new(Int64Array::from(vec![1, 1])) as ArrayRef,
                        Arc::new(StringArray::from(vec!["a", "b"])),
                        Arc::new(StringArray::from(vec!["new", "added"])),
                    ],
                )
                .unwrap(),
            )
            .await
            .unwrap();
        writer.commit().await.unwrap();
        let rows: Vec<String> = admin
            .query("SELECT multi::text FROM multi ORDER BY alpha", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(rows, ["(1,a,new)", "(1,b,added)"]);

        // A target without a unique constraint on the key.
        admin
            .batch_execute("CREATE TABLE loose (id integer, name text)")
            .await
            .unwrap();
        let err = c
            .writer(WriteSpec {
                object: "loose".to_owned(),
                schema: schema.clone(),
                mode: upsert(),
            })
            .await
            .unwrap_err();
        match &err {
            ConnectorError::Config { field, .. } => assert_eq!(field, "key"),
            other => panic!("{other}"),
        }
        // A key that is not a field.
        let err = c
            .writer(WriteSpec {
                object: "dst".to_owned(),
                schema: schema.clone(),
                mode: WriteMode::Upsert {
                    key: vec!["nope".to_owned()],
                },
            })
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectorError::Config { .. }), "{err}");
        assert!(err.to_string().contains("nope"), "{err}");
        assert_eq!(leftovers(&admin).await, 0);
    })
    .await;
}

/// The first upsert into a new or empty table writes the rows as they are (no upsert needed),
/// yet keeps an upsert's meaning: the last record of a repeated key wins, and the key is there.
#[tokio::test]
async fn a_first_upsert_into_a_new_or_empty_table_keeps_the_last_record_of_a_key() {
    with_database(|database| async move {
        let server = server();
        let admin = server.admin(&database).await;
        let c = server.connector(&database);
        let schema = id_and_name();
        let upsert = upsert_by_id;
        let names = |table: &'static str| {
            let admin = &admin;
            async move {
                admin
                    .query(&format!("SELECT id, name FROM {table} ORDER BY id"), &[])
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
                    .collect::<Vec<_>>()
            }
        };
        // New tables: without a repeat, and with repeats within and across batches.
        for (table, batches) in [
            (
                "fresh_plain",
                vec![(vec![1, 2], vec!["a", "b"]), (vec![3], vec!["c"])],
            ),
            (
                "fresh_repeats",
                vec![
                    (vec![1, 2, 1], vec!["a", "b", "c"]),
                    (vec![2, 3, 1], vec!["d", "e", "f"]),
                ],
            ),
        ] {
            let mut writer = c
                .writer(WriteSpec {
                    object: table.to_owned(),
                    schema: schema.clone(),
                    mode: upsert(),
                })
                .await
                .unwrap();
            for (ids, values) in &batches {
                writer
                    .write(&keyed_batch(&schema, ids, values))
                    .await
                    .unwrap();
            }
            writer.commit().await.unwrap();
            assert_eq!(
                primary_key(&admin, table).await.map(|(_, k)| k),
                Some(vec!["id".to_owned()]),
                "{table} has its key"
            );
        }
        assert_eq!(
            names("fresh_plain").await,
            [
                (1, "a".to_owned()),
                (2, "b".to_owned()),
                (3, "c".to_owned())
            ]
        );
        assert_eq!(
            names("fresh_repeats").await,
            [
                (1, "f".to_owned()),
                (2, "d".to_owned()),
                (3, "e".to_owned())
            ]
        );

        // An existing empty table, with and without a repeated key.
        admin
            .batch_execute(
                "CREATE TABLE empty_plain (id bigint PRIMARY KEY, name text);
                 CREATE TABLE empty_repeats (id bigint PRIMARY KEY, name text);",
            )
            .await
            .unwrap();
        for (table, ids, values) in [
            ("empty_plain", vec![5, 6], vec!["x", "y"]),
            ("empty_repeats", vec![5, 6, 5], vec!["x", "y", "z"]),
        ] {
            let mut writer = c
                .writer(WriteSpec {
                    object: table.to_owned(),
                    schema: schema.clone(),
                    mode: upsert(),
                })
                .await
                .unwrap();
            writer
                .write(&keyed_batch(&schema, &ids, &values))
                .await
                .unwrap();
            writer.commit().await.unwrap();
        }
        assert_eq!(
            names("empty_plain").await,
            [(5, "x".to_owned()), (6, "y".to_owned())]
        );
        assert_eq!(
            names("empty_repeats").await,
            [(5, "z".to_owned()), (6, "y".to_owned())]
        );

        // A new table whose writer is aborted is not there.
        let mut writer = c
            .writer(WriteSpec {
                object: "never".to_owned(),
                schema: schema.clone(),
                mode: upsert(),
            })
            .await
            .unwrap();
        writer
            .write(&keyed_batch(&schema, &[1], &["a"]))
            .await
            .unwrap();
        writer.abort().await;
        let exists: bool = admin
            .query_one("SELECT to_regclass('public.never') IS NOT NULL", &[])
            .await
            .unwrap()
            .get(0);
        assert!(!exists);
        assert_eq!(leftovers(&admin).await, 0);
    })
    .await;
}

/// A first upsert into an existing empty table loads it as a new one (its indexes dropped, the
/// table truncated, the indexes built again at commit: same names, same definitions, same table)
/// and keeps an upsert's meaning; a table something else depends on, or that a reader holds,
/// takes the upsert path; a repeated value of another unique constraint fails and changes nothing.
#[tokio::test]
async fn an_empty_table_is_loaded_as_new_and_keeps_its_indexes() {
    with_database(|database| async move {
        let server = server();
        let admin = server.admin(&database).await;
        let c = server.connector(&database);
        let schema = id_and_name();
        let upsert = upsert_by_id;
        admin
            .batch_execute(
                "CREATE TABLE plain (id bigint, name text, CONSTRAINT plain_pk PRIMARY KEY (id),
                                     CONSTRAINT plain_name_unique UNIQUE (name));
                 CREATE INDEX plain_lower ON plain (lower(name)) WHERE name IS NOT NULL;
                 CREATE TABLE repeats (id bigint PRIMARY KEY, name text);
                 CREATE INDEX repeats_name ON repeats (name);
                 CREATE TABLE referenced (id bigint PRIMARY KEY, name text);
                 CREATE TABLE referrer (x bigint REFERENCES referenced);
                 CREATE TABLE held (id bigint PRIMARY KEY, name text);
                 CREATE TABLE clash (id bigint PRIMARY KEY, name text UNIQUE);",
            )
            .await
            .unwrap();
        // What identifies each table and its indexes, before and after.
        let shape = |table: &'static str| {
            let admin = &admin;
            async move {
                let row = admin
                    .query_one(
                        "SELECT c.oid::int8, c.relfilenode::int8,
                                (SELECT array_agg(pg_get_indexdef(i.indexrelid) ORDER BY 1)
                                 FROM pg_index i WHERE i.indrelid = c.oid),
                                (SELECT array_agg(conname::text || ' ' || pg_get_constraintdef(oid)
                                                  ORDER BY 1)
                                 FROM pg_constraint WHERE conrelid = c.oid)
                         FROM pg_class c WHERE c.oid = $1::text::regclass",
                        &[&table],
                    )
                    .await
                    .unwrap();
                (
                    row.get::<_, i64>(0),
                    row.get::<_, i64>(1),
                    row.get::<_, Vec<String>>(2),
                    row.get::<_, Vec<String>>(3),
                )
            }
        };
        let names = |table: &'static str| {
            let admin = &admin;
            async move {
                admin
                    .query(&format!("SELECT id, name FROM {table} ORDER BY id"), &[])
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| (r.get::<_, i64>(0), r.get::<_, Option<String>>(1)))
                    .collect::<Vec<_>>()
            }
        };
        let write = |table: &'static str, ids: Vec<i64>, values: Vec<&'static str>| {
            let (c, schema) = (&c, schema.clone());
            async move {
                let mut writer = c
                    .writer(WriteSpec {
                        object: table.to_owned(),
                        schema: schema.clone(),
                        mode: upsert(),
                    })
                    .await?;
                writer.write(&keyed_batch(&schema, &ids, &values)).await?;
                writer.commit().await
            }
        };

        // Taken over: new storage (TRUNCATE), the same table, indexes and constraints.
        for (table, ids, values, want) in [
            (
                "plain",
                vec![2, 1, 3],
                vec!["b", "a", "c"],
                vec![(1, "a"), (2, "b"), (3, "c")],
            ),
            (
                "repeats",
                vec![5, 6, 5, 6, 7],
                vec!["x", "y", "z", "w", "v"],
                vec![(5, "z"), (6, "w"), (7, "v")],
            ),
        ] {
            let before = shape(table).await;
            let sent = ids.len() as u64;
            assert_eq!(
                write(table, ids, values).await.unwrap(),
                sent,
                "{table}: rows copied"
            );
            let after = shape(table).await;
            assert_eq!(after.0, before.0, "{table} is the same table");
            assert_ne!(after.1, before.1, "{table} was loaded into new storage");
            assert_eq!(
                (&after.2, &after.3),
                (&before.2, &before.3),
                "{table} keeps its indexes"
            );
            let want: Vec<(i64, Option<String>)> = want
                .into_iter()
                .map(|(i, n)| (i, Some(n.to_owned())))
                .collect();
            assert_eq!(names(table).await, want, "{table}");
        }
        // The indexes work: the key refuses a repeat, the partial expression index is used.
        let err = admin
            .batch_execute("INSERT INTO plain VALUES (1, 'again')")
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
        );

        // Referenced by a foreign key: the upsert path, same storage, same result.
        let before = shape("referenced").await;
        write("referenced", vec![1, 1], vec!["a", "b"])
            .await
            .unwrap();
        assert_eq!(shape("referenced").await, before);
        assert_eq!(names("referenced").await, [(1, Some("b".to_owned()))]);

        // Held by a reader in an open transaction: the writer waits a moment, then upserts.
        let reader = server.admin(&database).await;
        reader
            .batch_execute("BEGIN; SELECT count(*) FROM held")
            .await
            .unwrap();
        let before = shape("held").await;
        let started = Instant::now();
        write("held", vec![1, 2], vec!["a", "b"]).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(shape("held").await, before);
        assert_eq!(names("held").await.len(), 2);
        reader.batch_execute("COMMIT").await.unwrap();

        // Another unique constraint repeated: the commit fails and the table is as it was.
        let before = shape("clash").await;
        let err = write("clash", vec![1, 2], vec!["same", "same"])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("23505"), "{err}");
        assert_eq!(shape("clash").await, before);
        assert!(names("clash").await.is_empty());
        assert_eq!(leftovers(&admin).await, 0);
    })
    .await;
}

async fn ids(c: &PostgresConnector, spec: ReadSpec) -> Vec<i64> {
    let (schema, batches) = read_all(c, spec).await;
    let index = schema.index_of("id").unwrap();
    batches
        .iter()
        .flat_map(|b| {
            b.column(index)
                .as_primitive::<Int64Type>()
                .iter()
                .map(Option::unwrap)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn incremental_reads_follow_the_cursor() {
    with_database(|database| async move {
        let server = server();
        let admin = server.admin(&database).await;
        admin
            .batch_execute(
                "CREATE TABLE e (id integer PRIMARY KEY, at timestamptz, amount numeric(12,2), name text);
                 INSERT INTO e SELECT g, timestamptz '2024-01-01 00:00:00Z' + g * interval '1 second',
                                      g / 100.0, 'n' || g
                 FROM (SELECT g FROM generate_series(1, 10) g ORDER BY md5(g::text)) s;",
            )
            .await
            .unwrap();
        let c = server.connector(&database);
        let cursor = |field: &str, after: Option<serde_json::Value>| ReadSpec {
            object: "public.e".to_owned(),
            fields: Some(vec!["name".to_owned(), "id".to_owned()]),
            cursor: Some(CursorSpec {
                field: field.to_owned(),
                after,
            }),
            batch_rows: 4,
        };
        assert_eq!(ids(&c, cursor("id", None)).await, (1..=10).collect::<Vec<_>>());
        assert_eq!(ids(&c, cursor("id", Some(json!(6)))).await, [7, 8, 9, 10]);
        assert_eq!(
            ids(&c, cursor("at", Some(json!("2024-01-01T00:00:05Z")))).await,
            [6, 7, 8, 9, 10]
        );
        assert_eq!(
            ids(&c, cursor("at", Some(json!("2024-01-01T01:00:05+01:00")))).await,
            [6, 7, 8, 9, 10]
        );
        // The bound is not rounded to the column's scale (1.005 would round to 0.01 · 101).
        assert_eq!(
            ids(&c, cursor("amount", Some(json!("0.085")))).await,
            [9, 10]
        );
        assert_eq!(ids(&c, cursor("name", Some(json!("n5")))).await, [6, 7, 8, 9]);
        // The selected fields, in their order.
        let (schema, _) = read_all(&c, cursor("id", None)).await;
        let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["name", "id"]);

        // A value is a value, never SQL.
        for evil in [
            json!("1; DROP TABLE e; --"),
            json!("1') TO STDOUT; DROP TABLE e; --"),
        ] {
            let result = c.read(cursor("id", Some(evil))).await;
            let err = match result {
                Err(err) => err,
                Ok((_, mut stream)) => stream.next().await.unwrap().unwrap_err(),
            };
            assert!(err.to_string().contains("22P02"), "{err}");
        }
        assert_eq!(
            ids(&c, cursor("name", Some(json!("x'; DROP TABLE e; --")))).await,
            Vec::<i64>::new()
        );
        assert_eq!(count(&admin, "e").await, 10);

        let err = c.read(cursor("nope", None)).await.err().unwrap();
        assert!(matches!(&err, ConnectorError::Config { field, .. } if field == "cursor.field"), "{err}");
        let err = c
            .read(cursor("id", Some(json!({"a": 1}))))
            .await
            .err()
            .unwrap();
        assert!(matches!(err, ConnectorError::Config { .. }), "{err}");
    })
    .await;
}

#[tokio::test]
async fn unknown_objects_and_fields_are_refused() {
    with_database(|database| async move {
        let server = server();
        let admin = server.admin(&database).await;
        admin
            .batch_execute("CREATE TABLE a (id integer, name text); INSERT INTO a VALUES (1, 'x');")
            .await
            .unwrap();
        let c = server.connector(&database);
        for bad in [
            "public.missing",
            "missing",
            "x\"; DROP TABLE a; --",
            "public.a\"; DROP TABLE a; --",
            "pg_catalog.pg_authid",
            "information_schema.tables",
        ] {
            let err = c.read(read_spec(bad, 10)).await.err().unwrap();
            assert_eq!(err.kind(), Some(FailureKind::NotFound), "{bad}: {err}");
        }
        // A name without a schema is in public, for reads as for writes.
        let (_, batches) = read_all(&c, read_spec("a", 10)).await;
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
        let err = c
            .read(ReadSpec {
                fields: Some(vec!["id".to_owned(), "nope".to_owned()]),
                ..read_spec("public.a", 10)
            })
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&err, ConnectorError::Config { field, .. } if field == "fields"),
            "{err}"
        );
        assert!(err.to_string().contains("\"nope\""), "{err}");

        // Written names are quoted, whatever they hold.
        let weird = "we\"ird; DROP TABLE a; --";
        assert_eq!(
            copy(
                &c,
                "public.a",
                &c,
                &format!("public.{weird}"),
                WriteMode::Replace,
                10
            )
            .await
            .unwrap(),
            1
        );
        assert_eq!(count(&admin, "a").await, 1);
        let (_, batches) = read_all(&c, read_spec(&format!("public.{weird}"), 10)).await;
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
        // A schema that does not exist.
        let err = c
            .writer(WriteSpec {
                object: "nowhere.t".to_owned(),
                schema: Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)])),
                mode: WriteMode::Append,
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), Some(FailureKind::NotFound), "{err}");
    })
    .await;
}

#[tokio::test]
async fn reads_stream_in_bounded_batches() {
    with_database(|database| async move {
        let server = server();
        let admin = server.admin(&database).await;
        admin
            .batch_execute(
                "CREATE TABLE big AS SELECT g::int8 AS id, md5(g::text) AS s, (g * 1.5)::numeric(12,1) AS n
                 FROM generate_series(1, 200000) g",
            )
            .await
            .unwrap();
        let c = server.connector(&database);
        let (_, mut stream) = c.read(read_spec("public.big", 7000)).await.unwrap();
        let (mut rows, mut sum, mut batches) = (0, 0_i64, 0);
        let mut sizes = HashMap::new();
        while let Some(batch) = stream.next().await {
            let batch = batch.unwrap();
            assert!(batch.num_rows() <= 7000, "{}", batch.num_rows());
            assert!(batch.num_rows() > 0);
            rows += batch.num_rows();
            sum += batch
                .column(0)
                .as_primitive::<Int64Type>()
                .iter()
                .map(Option::unwrap)
                .sum::<i64>();
            *sizes.entry(batch.num_rows()).or_insert(0) += 1;
            batches += 1;
        }
        assert_eq!(rows, 200_000);
        assert_eq!(sum, 200_000 * 200_001 / 2);
        assert_eq!(batches, 29);
        assert_eq!(sizes.get(&7000), Some(&28));

        // Wide rows: a batch also ends at about 16 MiB of values; they are written back whole.
        admin
            .batch_execute(
                "CREATE TABLE wide AS SELECT g AS id, repeat(md5(g::text), 160000) AS s
                 FROM generate_series(1, 12) g",
            )
            .await
            .unwrap();
        let (_, batches) = read_all(&c, read_spec("public.wide", 8192)).await;
        let sizes: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, [4, 4, 4], "5 MB rows");
        assert_eq!(
            copy(&c, "public.wide", &c, "wide_copy", WriteMode::Replace, 8192)
                .await
                .unwrap(),
            12
        );
        let same: bool = admin
            .query_one(
                "SELECT (SELECT array_agg(md5(s) ORDER BY id) FROM wide)
                      = (SELECT array_agg(md5(s) ORDER BY id) FROM wide_copy)",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(same);
    })
    .await;
}

#[tokio::test]
async fn object_names_are_qualified_by_schema() {
    with_database(|database| async move {
        let server = server();
        let admin = server.admin(&database).await;
        admin
            .batch_execute(
                r#"CREATE SCHEMA shop; CREATE SCHEMA "odd.schema";
                   CREATE TABLE public.src (id bigint PRIMARY KEY, name text NOT NULL);
                   INSERT INTO public.src VALUES (1, 'a'), (2, 'b');"#,
            )
            .await
            .unwrap();
        let c = server.connector(&database);
        let key = || WriteMode::Upsert {
            key: vec!["id".to_owned()],
        };

        // schema.table, and a name without a schema in public, for reads as for writes.
        assert_eq!(
            copy(&c, "src", &c, "shop.items", WriteMode::Replace, 10)
                .await
                .unwrap(),
            2
        );
        assert_eq!(count(&admin, "shop.items").await, 2);

        // Quoted parts: a schema and a table whose names hold dots, through every mode (the
        // staging table of a replace and the temporary table of an upsert included).
        let dotted = r#""odd.schema"."x.y""#;
        for mode in [WriteMode::Replace, WriteMode::Replace, key()] {
            assert_eq!(copy(&c, "src", &c, dotted, mode, 10).await.unwrap(), 2);
        }
        assert_eq!(count(&admin, dotted).await, 2);
        assert_eq!(
            primary_key(&admin, dotted)
                .await
                .map(|(_, columns)| columns),
            Some(vec!["id".to_owned()])
        );
        let names: Vec<String> = c
            .discover()
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.name)
            .collect();
        assert_eq!(names, [dotted, "public.src", "shop.items"]);
        let (_, batches) = read_all(&c, read_spec(dotted, 10)).await;
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 2);

        // Without a schema, a connection limited to one writes into that one.
        let in_shop = server.connector_with(&database, Some("shop"), Duration::from_secs(30));
        assert_eq!(
            copy(&c, "public.src", &in_shop, "fresh", WriteMode::Append, 10)
                .await
                .unwrap(),
            2
        );
        assert_eq!(count(&admin, "shop.fresh").await, 2);
        let in_public: Option<String> = admin
            .query_one("SELECT to_regclass('public.fresh')::text", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(in_public, None);
        assert_eq!(leftovers(&admin).await, 0);

        // Names that are not schema.table are refused, naming the field.
        for bad in ["a.b.c", "\"unclosed", "x.", "\"\".t"] {
            let err = copy(&c, "src", &c, bad, WriteMode::Append, 10)
                .await
                .unwrap_err();
            assert!(
                matches!(&err, ConnectorError::Config { field, .. } if field == "object"),
                "{bad}: {err}"
            );
        }
    })
    .await;
}
