//! Pipelines between kinds — PostgreSQL to MariaDB/MySQL and back, and each kind to itself — with
//! the servers of `postgres_batch` and `mysql_batch`. The destination tables are created from the
//! source's schema; what they became is read from the destination's catalog.

use super::mysql_batch as my;
use super::postgres_batch as pg;
use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_schema::{DataType, SchemaRef};
use futures_util::TryStreamExt;
use lockstep_connectors::Connector;
use lockstep_connectors::batch::{
    BatchDestination, BatchSource, BatchWriter, ReadSpec, WriteMode, WriteSpec,
};
use mysql_async::prelude::Queryable;
use serde_json::json;

const PG_SOURCE: &str = "
CREATE TABLE src (id integer PRIMARY KEY, r real, d double precision, code char(2),
                  name varchar(40), note text);
INSERT INTO src VALUES (1, 24.3, 24.3, 'DE', 'Grüße', 'a note'), (2, NULL, NULL, NULL, NULL, NULL);
";

const MY_SOURCE: &str = "
CREATE TABLE src (id INT PRIMARY KEY, r FLOAT, d DOUBLE, code CHAR(2), name VARCHAR(40),
                  note TEXT) DEFAULT CHARSET = utf8mb4;
INSERT INTO src VALUES (1, 24.3, 24.3, 'DE', 'Grüße', 'a note'), (2, NULL, NULL, NULL, NULL, NULL);
";

fn spec(object: &str) -> ReadSpec {
    ReadSpec {
        object: object.to_owned(),
        fields: None,
        cursor: None,
        batch_rows: 100,
    }
}

async fn read<S: BatchSource>(source: &S, object: &str) -> (SchemaRef, Vec<RecordBatch>) {
    let (schema, stream) = source.read(spec(object)).await.unwrap();
    (schema, stream.try_collect().await.unwrap())
}

/// Reads `from` and writes it to `to` (replacing it), as a pipeline run does.
async fn pipe<S: BatchSource, D: BatchDestination>(
    source: &S,
    from: &str,
    destination: &D,
    to: &str,
) -> u64 {
    let (schema, batches) = read(source, from).await;
    let mut writer = destination
        .writer(WriteSpec {
            object: to.to_owned(),
            schema,
            mode: WriteMode::Replace,
        })
        .await
        .unwrap();
    for batch in &batches {
        writer.write(batch).await.unwrap();
    }
    writer.commit().await.unwrap()
}

/// The `real`/`float` field `r` of the first row, as the batch holds it.
fn first_r(schema: &SchemaRef, batches: &[RecordBatch]) -> f32 {
    let field = schema.field_with_name("r").unwrap();
    assert_eq!(
        field.data_type(),
        &DataType::Float32,
        "a real stays Float32"
    );
    batches[0]
        .column_by_name("r")
        .unwrap()
        .as_primitive::<Float32Type>()
        .value(0)
}

/// (column, type) of the columns after `id`, from MariaDB's information_schema.
async fn my_types(conn: &mut mysql_async::Conn, table: &str) -> Vec<(String, String)> {
    my::columns(conn, table)
        .await
        .into_iter()
        .skip(1)
        .map(|(name, column_type, ..)| (name, column_type))
        .collect()
}

/// (column, type) of the columns after `id`, from PostgreSQL's catalog.
async fn pg_types(client: &tokio_postgres::Client, table: &str) -> Vec<(String, String)> {
    pg::columns(client, table)
        .await
        .into_iter()
        .skip(1)
        .map(|(name, sql_type, _)| (name, sql_type))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn floats_keep_their_width_and_text_its_length() {
    pg::with_database(|pg_database| async move {
        my::with_database(|my_database| async move {
            let pg_server = pg::server();
            let pg_admin = pg_server.admin(&pg_database).await;
            pg_admin.batch_execute(PG_SOURCE).await.unwrap();
            let pgc = pg_server.connector(&pg_database);
            let my_server = my::server();
            let mut my_admin = my_server.admin(Some(&my_database)).await;
            my_admin.query_drop(MY_SOURCE).await.unwrap();
            let myc = my_server.connector(&my_database);

            // Both sources answer a single-precision float as Float32 holding 24.3.
            let (schema, batches) = read(&pgc, "public.src").await;
            assert_eq!(first_r(&schema, &batches), 24.3_f32);
            let (schema, batches) = read(&myc, "src").await;
            assert_eq!(first_r(&schema, &batches), 24.3_f32);

            // PostgreSQL → MariaDB: real is FLOAT, text keeps its declared length.
            assert_eq!(pipe(&pgc, "public.src", &myc, "from_pg").await, 2);
            assert_eq!(
                my_types(&mut my_admin, "from_pg").await,
                pairs(&[
                    ("r", "float"),
                    ("d", "double"),
                    ("code", "char(2)"),
                    ("name", "varchar(40)"),
                    ("note", "longtext"),
                ])
            );
            let stored: (String, String) = my_admin
                .query_first("SELECT CAST(r AS CHAR), CAST(d AS CHAR) FROM from_pg WHERE id = 1")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(stored, ("24.3".to_owned(), "24.3".to_owned()));
            let sample = myc.sample("from_pg", 10).await.unwrap();
            assert_eq!(sample[0]["r"], json!(24.3));
            assert_eq!(sample[0]["code"], json!("DE"));

            // MariaDB → PostgreSQL: float is real, CHAR and VARCHAR keep their length.
            assert_eq!(pipe(&myc, "src", &pgc, "public.from_my").await, 2);
            assert_eq!(
                pg_types(&pg_admin, "from_my").await,
                pairs(&[
                    ("r", "real"),
                    ("d", "double precision"),
                    ("code", "character(2)"),
                    ("name", "character varying(40)"),
                    ("note", "text"),
                ])
            );
            let row = pg_admin
                .query_one("SELECT r::text, d::text FROM from_my WHERE id = 1", &[])
                .await
                .unwrap();
            assert_eq!(
                (row.get::<_, String>(0), row.get::<_, String>(1)),
                ("24.3".to_owned(), "24.3".to_owned())
            );
            let sample = pgc.sample("public.from_my", 10).await.unwrap();
            assert_eq!(sample[0]["r"], json!(24.3));

            // The same kind keeps the native types.
            assert_eq!(pipe(&myc, "src", &myc, "my_copy").await, 2);
            assert_eq!(
                my_types(&mut my_admin, "my_copy").await,
                pairs(&[
                    ("r", "float"),
                    ("d", "double"),
                    ("code", "char(2)"),
                    ("name", "varchar(40)"),
                    ("note", "text"),
                ])
            );
            assert_eq!(pipe(&pgc, "public.src", &pgc, "public.pg_copy").await, 2);
            assert_eq!(
                pg_types(&pg_admin, "pg_copy").await,
                pairs(&[
                    ("r", "real"),
                    ("d", "double precision"),
                    ("code", "character(2)"),
                    ("name", "character varying(40)"),
                    ("note", "text"),
                ])
            );
            let copied: String = pg_admin
                .query_one("SELECT r::text FROM pg_copy WHERE id = 1", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(copied, "24.3");
            my_admin.disconnect().await.unwrap();
        })
        .await;
    })
    .await;
}
