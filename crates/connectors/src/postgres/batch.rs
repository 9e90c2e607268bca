//! Bulk writes: one connection and one transaction per writer, rows sent with
//! `COPY … FROM STDIN (FORMAT binary)`.
//!
//! * `Replace`: the rows go into a new table `<table>__lockstep_<random>` in the target's schema
//!   (`LIKE` the target, without its indexes, when the target has exactly the batch's columns;
//!   else from the batch schema). At commit, in the same transaction: the target is dropped, the
//!   new table takes its name, and the target's keys, indexes, foreign keys and sequences are
//!   re-created on it under their old names. Readers see the old table until COMMIT and the new
//!   one after; a failure (or a killed hub) before COMMIT leaves the old one untouched.
//! * `Append`: straight into the target (created from the batch schema when missing).
//! * `Upsert { key }`: into a temporary table that numbers the rows as they arrive; at commit one
//!   `INSERT … SELECT DISTINCT ON (key) … ORDER BY key, row number DESC ON CONFLICT (key) DO
//!   UPDATE` keeps the last record of each key. The target needs a unique constraint on exactly
//!   the key (created as its primary key when the target is missing). A first load needs no
//!   upsert: into a missing table the rows are copied straight in (`COPY FREEZE`) and the key is
//!   built after; an existing empty table that this role owns and nothing else depends on
//!   (see [`TAKE_OVER_SQL`]) is locked, its indexes dropped and the table truncated, the rows
//!   copied in the same way, and its indexes and unique constraints built again under their own
//!   names at commit. Either way, should the source repeat a key, the last record copied of each
//!   key is kept before the key is built, as the upsert would. Readers of a taken-over table
//!   wait until COMMIT (it was empty) instead of waiting for nothing.
//!
//! Each batch column is written in the binary form of its column's type (see `copy_in`); a
//! column with no direct encoding goes through a temporary table of the Arrow type's natural
//! type and a server-side cast at commit. Nothing is visible before [`BatchWriter::commit`];
//! [`BatchWriter::abort`] rolls back, and so does dropping a writer (its connection closes, which
//! ends the transaction on the server). Errors carry SQLSTATE codes, column and constraint names,
//! never a value (PostgreSQL's DETAIL text quotes them, so it is not used).
//!
//! Like COPY, the INSERTs that move rows at commit take identity columns from the records
//! (`OVERRIDING SYSTEM VALUE`).

use super::copy_in::{self, Encoding, Unwritable};
use super::copy_out::{self, COPY_HEADER};
use super::{PostgresConnector, map_error, quote};
use crate::batch::{
    BatchDestination, BatchWriter, RecordBatch, SchemaRef, TextType, WriteMode, WriteSpec,
    field_meta, keys, pg_binary_logical, single_precision, text_type,
};
use crate::{ConnectorError, FailureKind, FieldType};
use arrow_schema::{DataType, Field, Schema};
use futures_sink::Sink;
use std::io::Cursor;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::{Client, CopyInSink};

/// What the COPY sink takes: encoded rows, about [`CHUNK_BYTES`] at a time.
type Chunk = Cursor<Vec<u8>>;

const CHUNK_BYTES: usize = 1 << 20;

/// The longest `character(n)` / `character varying(n)` PostgreSQL declares.
const MAX_CHAR_LENGTH: u32 = 10_485_760;

/// An open bulk write (see the module documentation). `Debug` shows the object and the count.
pub struct PostgresWriter {
    client: Client,
    sink: Option<Pin<Box<CopyInSink<Chunk>>>>,
    schema: SchemaRef,
    encodings: Vec<Encoding>,
    /// Fields in PostgreSQL's binary form bound for a column of another type: decoded first,
    /// into this schema's types (`None`: no such field).
    decode: Option<Decode>,
    finish: Finish,
    header_sent: bool,
    /// A write failed (part of its batch may have gone out): commit refuses.
    failed: bool,
    rows: u64,
    /// Encoded bytes per row of the last batch (to size the next buffer).
    row_bytes: usize,
    object: String,
    endpoint: String,
    timeout: Duration,
}

impl std::fmt::Debug for PostgresWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresWriter")
            .field("object", &self.object)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// How a writer decodes the fields in PostgreSQL's binary form that go into a column of another
/// type than they came from.
#[derive(Debug)]
struct Decode {
    /// The batches' schema with each such field's decoded type (the others as they come).
    schema: SchemaRef,
    /// Per field: its type name and decoded type, where it is decoded.
    fields: Vec<Option<(String, DataType)>>,
}

/// What commit does after the COPY.
#[derive(Debug)]
enum Finish {
    /// The rows went into their table; nothing more.
    Nothing,
    /// Statements that move the rows into place (casts, upserts).
    Statements(Vec<String>),
    Replace(Replace),
    /// An upsert into a table that was empty: `insert` (the rows as they are), and should a key
    /// repeat, `upsert` instead.
    InsertElseUpsert {
        insert: String,
        upsert: String,
    },
    /// An upsert into a table made (or taken over empty) by this writer, which the rows were
    /// copied into: `key_statements` build its unique index on `key`; should a key repeat, the
    /// last record copied of each key is kept, as an upsert would, and they run again. Then
    /// `after` (the table's other indexes and unique constraints).
    KeyAfterLoad {
        table: String,
        key: Vec<String>,
        key_statements: Vec<String>,
        after: Vec<String>,
    },
}

#[derive(Debug)]
struct Replace {
    schema: String,
    table: String,
    staging: String,
    /// Statements that fill the staging table from a cast table, if one was needed.
    fill: Vec<String>,
    /// The staging table was made `LIKE` the target: its keys and indexes carry over.
    like: bool,
    /// Else, the primary key to create.
    primary_key: Vec<String>,
}

/// A table as the catalog describes it.
#[derive(Debug)]
struct Table {
    relkind: String,
    columns: Vec<TableColumn>,
}

#[derive(Debug)]
struct TableColumn {
    name: String,
    /// `format_type` with the modifier: valid SQL for the column's type.
    sql_type: String,
    /// The type's name, or the base type's for a domain.
    typname: String,
    builtin: bool,
}

/// The table `$1.$2` (any kind) and its columns in order.
const TABLE_SQL: &str = r"
SELECT c.relkind::text,
       a.attname::text,
       pg_catalog.format_type(a.atttypid, a.atttypmod),
       bt.typname::text,
       bt.typnamespace = 'pg_catalog'::regnamespace
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type bt
       ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE n.nspname = $1::text AND c.relname = $2::text
ORDER BY a.attnum
";

/// Whether `$1` has a unique index usable as an ON CONFLICT arbiter on exactly the columns `$2`
/// (sorted bytewise): immediate, not partial, no expressions.
const ARBITER_SQL: &str = r#"
SELECT EXISTS (
  SELECT 1
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = $1::text AND c.relname = $2::text
    AND i.indisunique AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL
    AND i.indnkeyatts = pg_catalog.cardinality($3::text[])
    AND (SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attname::text COLLATE "C")
         FROM pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE k.ord <= i.indnkeyatts) = $3::text[]
)
"#;

/// For Replace from a `LIKE` copy: the statements that re-create the target's index-backed
/// constraints and foreign keys (after the unique ones they may need) on the table that takes its
/// name. `$1` schema, `$2` table.
const CARRY_CONSTRAINTS_SQL: &str = r"
SELECT pg_catalog.format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', $1::text, $2::text,
                         con.conname, pg_catalog.pg_get_constraintdef(con.oid))
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1::text AND c.relname = $2::text AND con.contype IN ('p', 'u', 'x', 'f')
ORDER BY con.contype = 'f', con.oid
";

/// … and its other indexes, as `CREATE INDEX` statements naming the table (valid again once the
/// new table has the name).
const CARRY_INDEXES_SQL: &str = r"
SELECT pg_catalog.pg_get_indexdef(i.indexrelid)
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1::text AND c.relname = $2::text
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint con
                  WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid)
ORDER BY i.indexrelid
";

/// … and the sequences its columns own (`serial`: `$4` is the new table's name; identity:
/// `deptype` i, whose new sequence gets the old name and position). `$1` schema, `$2` table.
const CARRY_SEQUENCES_SQL: &str = r"
SELECT d.deptype::text,
       a.attname::text,
       pg_catalog.format('ALTER SEQUENCE %s OWNED BY %I.%I.%I', s.oid::regclass, $1::text,
                         $3::text, a.attname),
       s.relname::text,
       pg_catalog.pg_sequence_last_value(s.oid)
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_catalog.pg_class c ON c.oid = d.refobjid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_catalog.pg_class'::regclass
  AND d.refclassid = 'pg_catalog.pg_class'::regclass
  AND d.deptype IN ('a', 'i')
  AND n.nspname = $1::text AND c.relname = $2::text
ORDER BY s.oid
";

/// The identity sequence of column `$3` of `$1.$2`, renamed to `$4` and set to `$5`.
const IDENTITY_RENAME_SQL: &str = r"
SELECT pg_catalog.format('ALTER SEQUENCE %s RENAME TO %I',
                         pg_catalog.pg_get_serial_sequence(pg_catalog.format('%I.%I', $1::text, $2::text), $3::text),
                         $4::text)
";
const IDENTITY_SETVAL_SQL: &str = r"
SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence(pg_catalog.format('%I.%I', $1::text, $2::text), $3::text), $4::int8)
";

/// Which of the `$1` type names exist in the destination database.
const TYPES_EXIST_SQL: &str = r"
SELECT pg_catalog.to_regtype(u.name) IS NOT NULL
FROM pg_catalog.unnest($1::text[]) WITH ORDINALITY AS u(name, ord)
ORDER BY u.ord
";

/// Whether the table `$1.$2`, which this transaction has locked and found empty, may be taken
/// over for a first load (its indexes dropped, the table truncated, the indexes built again at
/// commit) with nothing outside it noticing: a plain table, not a partition, nobody's parent,
/// referenced by no foreign key, in no publication (TRUNCATE would travel), with no exclusion
/// constraint, rule or trigger of its own, no index that is invalid, in another tablespace,
/// marked for CLUSTER or REPLICA IDENTITY, no comment on an index or unique constraint; owned by
/// this role, which may TRUNCATE it. Anything else takes the upsert path.
const TAKE_OVER_SQL: &str = r"
SELECT c.relkind = 'r' AND NOT c.relispartition AND NOT c.relhasrules
   AND c.relreplident <> 'i'
   AND pg_catalog.pg_has_role(c.relowner, 'USAGE')
   AND pg_catalog.has_table_privilege(c.oid, 'TRUNCATE')
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint f WHERE f.confrelid = c.oid)
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint x
                   WHERE x.conrelid = c.oid AND x.contype = 'x')
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                   WHERE t.tgrelid = c.oid AND NOT t.tgisinternal)
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits h WHERE h.inhparent = c.oid)
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_tables p
                   WHERE p.schemaname = $1::text AND p.tablename = $2::text)
   AND NOT EXISTS (
     SELECT 1 FROM pg_catalog.pg_index i
     JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
     WHERE i.indrelid = c.oid
       AND (ic.reltablespace <> 0 OR i.indisclustered OR i.indisreplident OR NOT i.indisvalid
            OR EXISTS (SELECT 1 FROM pg_catalog.pg_description d
                       WHERE d.classoid = 'pg_catalog.pg_class'::regclass
                         AND d.objoid = i.indexrelid)))
   AND NOT EXISTS (
     SELECT 1 FROM pg_catalog.pg_constraint k
     JOIN pg_catalog.pg_description d
       ON d.classoid = 'pg_catalog.pg_constraint'::regclass AND d.objoid = k.oid
     WHERE k.conrelid = c.oid AND k.contype IN ('p', 'u'))
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1::text AND c.relname = $2::text
";

/// The indexes of `$1.$2`, each with: whether it is an ON CONFLICT arbiter on exactly the
/// columns `$3` (sorted bytewise; as `ARBITER_SQL`), the statement that drops it and the one that
/// builds it again under its name (as the constraint it backs, if any).
const TAKE_OVER_INDEXES_SQL: &str = r#"
SELECT (i.indisunique AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL
        AND i.indnkeyatts = pg_catalog.cardinality($3::text[])
        AND (SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attname::text COLLATE "C")
             FROM pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE k.ord <= i.indnkeyatts) = $3::text[]) IS TRUE,
       CASE WHEN con.oid IS NULL
            THEN pg_catalog.format('DROP INDEX %s', i.indexrelid::regclass)
            ELSE pg_catalog.format('ALTER TABLE %I.%I DROP CONSTRAINT %I', $1::text, $2::text,
                                   con.conname) END,
       CASE WHEN con.oid IS NULL
            THEN pg_catalog.pg_get_indexdef(i.indexrelid)
            ELSE pg_catalog.format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', $1::text, $2::text,
                                   con.conname, pg_catalog.pg_get_constraintdef(con.oid)) END
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_constraint con
       ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u')
WHERE n.nspname = $1::text AND c.relname = $2::text
ORDER BY i.indexrelid
"#;

/// How long a writer waits for the lock that takes over an empty table before it takes the
/// upsert path instead.
const TAKE_OVER_LOCK_MS: u32 = 1000;

/// Runs one request within `timeout`, mapping errors for writes.
async fn timed<T>(
    timeout: Duration,
    endpoint: &str,
    request: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, ConnectorError> {
    match tokio::time::timeout(timeout, request).await {
        Ok(result) => result.map_err(|err| write_error(&err, endpoint)),
        Err(_) => Err(ConnectorError::failed(
            FailureKind::Timeout,
            format!(
                "PostgreSQL at {endpoint} did not answer within {} s",
                timeout.as_secs_f32()
            ),
        )),
    }
}

/// One connection's requests during a writer's set-up and commit.
struct Session<'a> {
    client: &'a Client,
    endpoint: &'a str,
    timeout: Duration,
}

impl Session<'_> {
    async fn execute(&self, sql: &str) -> Result<(), ConnectorError> {
        timed(self.timeout, self.endpoint, self.client.batch_execute(sql)).await
    }

    /// Runs `sql`; `Ok(false)` when PostgreSQL refused it because a key repeated (SQLSTATE
    /// 23505), which leaves the transaction to be rolled back to a savepoint.
    async fn execute_unless_repeated(&self, sql: &str) -> Result<bool, ConnectorError> {
        timed(self.timeout, self.endpoint, async {
            match self.client.batch_execute(sql).await {
                Ok(()) => Ok(true),
                Err(err)
                    if err.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
                {
                    Ok(false)
                }
                Err(err) => Err(err),
            }
        })
        .await
    }

    /// Whether the table holds no row (as this transaction sees it).
    async fn is_empty(&self, qualified: &str) -> Result<bool, ConnectorError> {
        let rows = self
            .query(
                &format!("SELECT NOT EXISTS (SELECT 1 FROM {qualified})"),
                &[],
            )
            .await?;
        Ok(rows
            .first()
            .and_then(|r| r.try_get::<_, bool>(0).ok())
            .unwrap_or(false))
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, ConnectorError> {
        timed(self.timeout, self.endpoint, self.client.query(sql, params)).await
    }

    async fn table(&self, schema: &str, table: &str) -> Result<Option<Table>, ConnectorError> {
        let rows = self.query(TABLE_SQL, &[&schema, &table]).await?;
        let mut found: Option<Table> = None;
        for row in &rows {
            let read = || -> Result<(String, Option<TableColumn>), tokio_postgres::Error> {
                let relkind: String = row.try_get(0)?;
                let name: Option<String> = row.try_get(1)?;
                Ok((
                    relkind,
                    match name {
                        None => None,
                        Some(name) => Some(TableColumn {
                            name,
                            sql_type: row.try_get(2)?,
                            typname: row.try_get(3)?,
                            builtin: row.try_get(4)?,
                        }),
                    },
                ))
            };
            let (relkind, column) = read().map_err(|_| catalog_error())?;
            let table = found.get_or_insert_with(|| Table {
                relkind,
                columns: Vec::new(),
            });
            table.columns.extend(column);
        }
        Ok(found)
    }

    /// The SQL column type for each field of a table created from the batch schema: the source's
    /// own type when it is PostgreSQL's, looks like a type name (nothing else: no defaults, no
    /// constraints) and exists here; else the portable type's usual PostgreSQL type.
    async fn column_types(&self, fields: &[&Field]) -> Result<Vec<String>, ConnectorError> {
        let metas: Vec<_> = fields.iter().map(|f| field_meta(f)).collect();
        let candidates: Vec<String> = fields
            .iter()
            .zip(&metas)
            .filter(|(f, m)| {
                f.metadata().get(keys::SOURCE).map(String::as_str) == Some("postgres")
                    && native_type_ok(&m.native)
            })
            .map(|(_, m)| m.native.clone())
            .collect();
        let mut exists: Vec<bool> = Vec::new();
        if !candidates.is_empty() {
            // In a savepoint: a name the server cannot parse must not end the transaction.
            self.execute("SAVEPOINT lockstep_types").await?;
            match self.query(TYPES_EXIST_SQL, &[&candidates]).await {
                Ok(rows) => {
                    exists = rows.iter().map(|r| r.try_get(0).unwrap_or(false)).collect();
                    self.execute("RELEASE SAVEPOINT lockstep_types").await?;
                }
                Err(_) => {
                    self.execute("ROLLBACK TO SAVEPOINT lockstep_types").await?;
                }
            }
        }
        let mut exists = exists.into_iter();
        Ok(fields
            .iter()
            .zip(&metas)
            .map(|(field, meta)| {
                let native = field.metadata().get(keys::SOURCE).map(String::as_str)
                    == Some("postgres")
                    && native_type_ok(&meta.native);
                if native && exists.next().unwrap_or(false) {
                    meta.native.clone()
                } else {
                    mapped_type(field, meta.field_type, &meta.native)
                }
            })
            .collect())
    }

    /// Creates `name` from the batch schema.
    async fn create(
        &self,
        name: &str,
        fields: &[&Field],
        primary_key: &[String],
    ) -> Result<(), ConnectorError> {
        let types = self.column_types(fields).await?;
        let mut defs: Vec<String> = fields
            .iter()
            .zip(&types)
            .map(|(field, sql_type)| {
                let not_null = if field.is_nullable() { "" } else { " NOT NULL" };
                format!("{} {sql_type}{not_null}", quote(field.name()))
            })
            .collect();
        if !primary_key.is_empty() {
            defs.push(format!("PRIMARY KEY ({})", quoted_list(primary_key)));
        }
        self.execute(&format!("CREATE TABLE {name} ({})", defs.join(", ")))
            .await
    }

    /// Refuses a cast the server cannot make, naming the field.
    async fn check_casts(&self, plan: &Plan) -> Result<(), ConnectorError> {
        for cast in &plan.casts {
            self.execute("SAVEPOINT lockstep_cast").await?;
            let probe = format!(
                "SELECT CAST(NULL::{} AS {})",
                cast.natural, cast.column_type
            );
            if self.execute(&probe).await.is_err() {
                return Err(ConnectorError::config(
                    "schema",
                    format!(
                        "the field \"{}\" ({}) cannot be written to a column of type {}",
                        cast.field, cast.data_type, cast.column_type
                    ),
                ));
            }
            self.execute("RELEASE SAVEPOINT lockstep_cast").await?;
        }
        Ok(())
    }
}

fn catalog_error() -> ConnectorError {
    ConnectorError::failed(
        FailureKind::Protocol,
        "PostgreSQL's catalog answered in an unexpected shape",
    )
}

/// How the batch's columns reach the table's columns.
#[derive(Debug)]
struct Plan {
    encodings: Vec<Encoding>,
    /// Per field in PostgreSQL's binary form whose column has another type: the type name and
    /// the type it is decoded into before it is encoded for the column.
    decode: Vec<Option<(String, DataType)>>,
    /// Each column's type in a table the COPY fills before commit moves the rows on.
    load_types: Vec<String>,
    /// Each column as the commit selects it from such a table (a cast where needed).
    exprs: Vec<String>,
    casts: Vec<Cast>,
}

#[derive(Debug)]
struct Cast {
    field: String,
    data_type: DataType,
    natural: &'static str,
    column_type: String,
}

/// `binary[i]`: the type name of the PostgreSQL binary form `fields[i]` comes in, if it does
/// (`fields` are the decoded fields): into a column of exactly that built-in type it goes as it
/// is, into any other decoded first.
fn plan(
    fields: &[&Field],
    binary: &[Option<String>],
    columns: &[TableColumn],
    object: &str,
) -> Result<Plan, ConnectorError> {
    let mut plan = Plan {
        encodings: Vec::with_capacity(fields.len()),
        decode: Vec::with_capacity(fields.len()),
        load_types: Vec::with_capacity(fields.len()),
        exprs: Vec::with_capacity(fields.len()),
        casts: Vec::new(),
    };
    for (index, field) in fields.iter().enumerate() {
        let column = columns
            .iter()
            .find(|c| c.name == *field.name())
            .ok_or_else(|| {
                ConnectorError::config(
                    "schema",
                    format!("{object} has no column \"{}\"", field.name()),
                )
            })?;
        let name = quote(field.name());
        if let Some(typname) = binary.get(index).and_then(Option::as_ref) {
            if column.builtin && column.typname == *typname {
                plan.encodings.push(Encoding::PgBinary);
                plan.load_types.push(column.sql_type.clone());
                plan.exprs.push(name);
                plan.decode.push(None);
                continue;
            }
            plan.decode
                .push(Some((typname.clone(), field.data_type().clone())));
        } else {
            plan.decode.push(None);
        }
        let direct = if column.builtin {
            copy_in::direct(field.data_type(), &column.typname)
        } else {
            None
        };
        match direct {
            Some(encoding) => {
                plan.encodings.push(encoding);
                plan.load_types.push(column.sql_type.clone());
                plan.exprs.push(name);
            }
            None => {
                let natural =
                    copy_in::natural_type(field.data_type()).ok_or_else(|| unsupported(field))?;
                let encoding =
                    copy_in::direct(field.data_type(), copy_in::natural_typname(natural))
                        .ok_or_else(|| unsupported(field))?;
                plan.encodings.push(encoding);
                plan.load_types.push(natural.to_owned());
                plan.exprs
                    .push(format!("CAST({name} AS {})", column.sql_type));
                plan.casts.push(Cast {
                    field: field.name().clone(),
                    data_type: field.data_type().clone(),
                    natural,
                    column_type: column.sql_type.clone(),
                });
            }
        }
    }
    Ok(plan)
}

fn unsupported(field: &Field) -> ConnectorError {
    ConnectorError::config(
        "schema",
        format!(
            "the field \"{}\" has the Arrow type {}, which Lockstep does not write to PostgreSQL",
            field.name(),
            field.data_type()
        ),
    )
}

fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| quote(n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A fresh suffix for the tables a writer makes.
fn random_suffix() -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    // The last 12 hex digits of a v7 UUID are random.
    id.get(20..).unwrap_or(&id).to_owned()
}

/// `<table>__lockstep_<random>`, the table name shortened (on a character boundary) so the
/// whole stays within PostgreSQL's 63-byte identifiers.
fn staging_name(table: &str) -> String {
    let mut end = table.len().min(63 - "__lockstep_".len() - 12);
    while !table.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}__lockstep_{}",
        table.get(..end).unwrap_or(""),
        random_suffix()
    )
}

/// The usual PostgreSQL type for a portable type: floats keep their width (`real` for Float32
/// or a single-precision source type), text its declared length (`char(2)` → `character(2)`,
/// `varchar(40)` → `character varying(40)`, else `text`).
fn mapped_type(field: &Field, field_type: FieldType, native: &str) -> String {
    let source = field
        .metadata()
        .get(keys::SOURCE)
        .map_or("", String::as_str);
    match field_type {
        FieldType::Boolean => "boolean".to_owned(),
        FieldType::Integer => "bigint".to_owned(),
        FieldType::Float
            if *field.data_type() == DataType::Float32 || single_precision(native, source) =>
        {
            "real".to_owned()
        }
        FieldType::Float => "double precision".to_owned(),
        FieldType::Decimal => match field.data_type() {
            DataType::Decimal128(p, s) => format!("numeric({p},{s})"),
            _ => match wide_decimal(native) {
                Some((p, s)) => format!("numeric({p},{s})"),
                None => "numeric".to_owned(),
            },
        },
        FieldType::String => match text_type(native) {
            TextType::Char(n) if n <= MAX_CHAR_LENGTH => format!("character({n})"),
            TextType::Varchar(n) if n <= MAX_CHAR_LENGTH => format!("character varying({n})"),
            _ => "text".to_owned(),
        },
        FieldType::Other => "text".to_owned(),
        FieldType::Binary => "bytea".to_owned(),
        FieldType::Date => "date".to_owned(),
        FieldType::Time => "time".to_owned(),
        FieldType::Timestamp => "timestamp".to_owned(),
        FieldType::TimestampTz => "timestamptz".to_owned(),
        FieldType::Uuid => "uuid".to_owned(),
        FieldType::Json => "jsonb".to_owned(),
    }
}

/// `decimal(65,30)`: precision and scale beyond Decimal128 (PostgreSQL takes up to 1000).
fn wide_decimal(native: &str) -> Option<(u16, i16)> {
    let inner = native.get(native.find('(')? + 1..native.rfind(')')?)?;
    let (p, s) = inner.split_once(',').unwrap_or((inner, "0"));
    let p: u16 = p.trim().parse().ok()?;
    let s: i16 = s.trim().parse().ok()?;
    ((1..=1000).contains(&p) && (-1000..=1000).contains(&s)).then_some((p, s))
}

/// Whether a source's native type reads as a plain PostgreSQL type name as `format_type` prints
/// them: a name (lowercase, or double-quoted; optionally schema-qualified), the words of
/// multi-word types, one modifier list of integers, array brackets. Nothing else (no DEFAULT,
/// CHECK, COLLATE, …) can pass.
fn native_type_ok(native: &str) -> bool {
    const WORDS: &[&str] = &[
        "varying",
        "precision",
        "with",
        "without",
        "time",
        "zone",
        "year",
        "month",
        "day",
        "hour",
        "minute",
        "second",
        "to",
    ];
    if native.is_empty()
        || native.len() > 128
        || !native
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || " _(),[]\".-".contains(c))
    {
        return false;
    }
    let Some(mut rest) = take_name(native) else {
        return false;
    };
    if let Some(after_dot) = rest.strip_prefix('.') {
        match take_name(after_dot) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    let mut modifier_seen = false;
    loop {
        if let Some(r) = rest.strip_prefix(' ') {
            let end = r.find(|c: char| !c.is_ascii_lowercase()).unwrap_or(r.len());
            let (word, after) = r.split_at(end);
            if !WORDS.contains(&word) {
                return false;
            }
            rest = after;
        } else if let Some(r) = rest.strip_prefix('(') {
            if modifier_seen {
                return false;
            }
            modifier_seen = true;
            let Some((inner, after)) = r.split_once(')') else {
                return false;
            };
            let numbers_ok = inner.split(',').all(|n| {
                let digits = n.strip_prefix('-').unwrap_or(n);
                !digits.is_empty()
                    && digits.len() <= 5
                    && digits.bytes().all(|b| b.is_ascii_digit())
            });
            if !numbers_ok {
                return false;
            }
            rest = after;
        } else {
            break;
        }
    }
    while let Some(r) = rest.strip_prefix('[') {
        let Some((inner, after)) = r.split_once(']') else {
            return false;
        };
        if !inner.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        rest = after;
    }
    rest.is_empty()
}

/// Skips one identifier (bare: `[a-z_][a-z0-9_]*`; or double-quoted with `""` inside).
fn take_name(s: &str) -> Option<&str> {
    if let Some(quoted) = s.strip_prefix('"') {
        let mut chars = quoted.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if chars.peek().map(|(_, c)| *c) == Some('"') {
                    chars.next();
                } else {
                    return (i > 0).then(|| quoted.get(i + 1..)).flatten();
                }
            }
        }
        return None;
    }
    let first = s.chars().next()?;
    if !(first.is_ascii_lowercase() || first == '_') {
        return None;
    }
    let end = s
        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        .unwrap_or(s.len());
    s.get(end..)
}

impl BatchDestination for PostgresConnector {
    type Writer = PostgresWriter;

    fn takes_pg_binary(&self) -> bool {
        true
    }

    async fn writer(&self, spec: WriteSpec) -> Result<PostgresWriter, ConnectorError> {
        let name = self.object_name(&spec.object)?;
        let (schema_name, table_name) = (name.namespace, name.name);
        // A field in PostgreSQL's binary form is planned (and tables made) as the field it
        // stands for; `binary` names its type for the plan.
        let (logical, binary): (Vec<Field>, Vec<Option<String>>) = spec
            .schema
            .fields()
            .iter()
            .map(|f| match pg_binary_logical(f) {
                Some((field, typname)) => (field, Some(typname)),
                None => (f.as_ref().clone(), None),
            })
            .unzip();
        let fields: Vec<&Field> = logical.iter().collect();
        if fields.is_empty() {
            return Err(ConnectorError::config("schema", "has no field"));
        }
        for (i, field) in fields.iter().enumerate() {
            if fields.iter().take(i).any(|f| f.name() == field.name()) {
                return Err(ConnectorError::config(
                    "schema",
                    format!("the field \"{}\" is there twice", field.name()),
                ));
            }
            if copy_in::natural_type(field.data_type()).is_none() {
                return Err(unsupported(field));
            }
        }
        let key = match &spec.mode {
            WriteMode::Upsert { key } => {
                if key.is_empty() {
                    return Err(ConnectorError::config("key", "names no field"));
                }
                for (i, k) in key.iter().enumerate() {
                    if key.iter().take(i).any(|other| other == k) {
                        return Err(ConnectorError::config(
                            "key",
                            format!("names the field \"{k}\" twice"),
                        ));
                    }
                    if !fields.iter().any(|f| f.name() == k) {
                        return Err(ConnectorError::config(
                            "key",
                            format!("the key field \"{k}\" is not among the fields"),
                        ));
                    }
                }
                key.clone()
            }
            _ => Vec::new(),
        };
        let primary_key: Vec<String> = match &spec.mode {
            WriteMode::Upsert { .. } => key.clone(),
            _ => fields
                .iter()
                .filter(|f| field_meta(f).primary_key)
                .map(|f| f.name().clone())
                .collect(),
        };

        let client = self.connect().await?;
        let endpoint = self.endpoint();
        let session = Session {
            client: &client,
            endpoint: &endpoint,
            timeout: self.ctx.timeout,
        };
        session.execute("BEGIN").await?;
        let target = session.table(&schema_name, &table_name).await?;
        let qualified = format!("{}.{}", quote(&schema_name), quote(&table_name));
        if let Some(table) = &target {
            let writable = match spec.mode {
                WriteMode::Replace => table.relkind == "r",
                _ => matches!(table.relkind.as_str(), "r" | "p" | "f"),
            };
            if !writable {
                return Err(ConnectorError::config(
                    "object",
                    format!(
                        "{} is not a table Lockstep can {}",
                        spec.object,
                        if spec.mode == WriteMode::Replace {
                            "replace"
                        } else {
                            "write to"
                        }
                    ),
                ));
            }
        }
        let names: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
        let columns_sql = quoted_list(&names);

        // The table the COPY fills (`load`) and whether it was created in this transaction.
        let (load, fresh, plan, finish) = match &spec.mode {
            WriteMode::Replace => {
                let staging = staging_name(&table_name);
                let staging_sql = format!("{}.{}", quote(&schema_name), quote(&staging));
                let like = target.as_ref().is_some_and(|t| {
                    t.columns.len() == names.len()
                        && t.columns.iter().all(|c| names.contains(&c.name))
                });
                if like {
                    session
                        .execute(&format!(
                            "CREATE TABLE {staging_sql} (LIKE {qualified} INCLUDING ALL EXCLUDING INDEXES)"
                        ))
                        .await?;
                } else {
                    session.create(&staging_sql, &fields, &[]).await?;
                }
                let columns = session
                    .table(&schema_name, &staging)
                    .await?
                    .ok_or_else(catalog_error)?
                    .columns;
                let plan = plan(&fields, &binary, &columns, &spec.object)?;
                let mut fill = Vec::new();
                let load = if plan.casts.is_empty() {
                    staging_sql.clone()
                } else {
                    let (load, insert) =
                        cast_table(&session, &plan, &fields, &staging_sql, &columns_sql).await?;
                    fill.push(insert);
                    load
                };
                let finish = Finish::Replace(Replace {
                    schema: schema_name.clone(),
                    table: table_name.clone(),
                    staging,
                    fill,
                    like,
                    primary_key: primary_key.clone(),
                });
                (load, true, plan, finish)
            }
            WriteMode::Append => {
                let (columns, created) = match target {
                    Some(table) => (table.columns, false),
                    None => {
                        session.create(&qualified, &fields, &primary_key).await?;
                        let table = session
                            .table(&schema_name, &table_name)
                            .await?
                            .ok_or_else(catalog_error)?;
                        (table.columns, true)
                    }
                };
                let plan = plan(&fields, &binary, &columns, &spec.object)?;
                if plan.casts.is_empty() {
                    (qualified.clone(), created, plan, Finish::Nothing)
                } else {
                    let (load, insert) =
                        cast_table(&session, &plan, &fields, &qualified, &columns_sql).await?;
                    (load, true, plan, Finish::Statements(vec![insert]))
                }
            }
            WriteMode::Upsert { .. } => {
                let (columns, created) = match target {
                    Some(table) => {
                        let mut sorted = key.clone();
                        sorted.sort();
                        let arbiter = session
                            .query(ARBITER_SQL, &[&schema_name, &table_name, &sorted])
                            .await?;
                        let has_arbiter = arbiter
                            .first()
                            .and_then(|row| row.try_get::<_, bool>(0).ok())
                            .unwrap_or(false);
                        if !has_arbiter {
                            return Err(ConnectorError::config(
                                "key",
                                format!(
                                    "{} has no primary key or unique constraint on exactly the key ({})",
                                    spec.object,
                                    key.join(", ")
                                ),
                            ));
                        }
                        (table.columns, false)
                    }
                    None => {
                        // Made without its key, which is added once the rows are in.
                        session.create(&qualified, &fields, &[]).await?;
                        let table = session
                            .table(&schema_name, &table_name)
                            .await?
                            .ok_or_else(catalog_error)?;
                        (table.columns, true)
                    }
                };
                let plan = plan(&fields, &binary, &columns, &spec.object)?;
                session.check_casts(&plan).await?;
                // An empty table needs no upsert: the rows go in as they are, unless the source
                // repeats a key or someone else wrote the same key meanwhile (then the upsert).
                let empty = !created && session.is_empty(&qualified).await?;
                let taken_over = if empty && plan.casts.is_empty() {
                    take_over_empty(&session, &schema_name, &table_name, &qualified, &key).await?
                } else {
                    None
                };
                if created && plan.casts.is_empty() {
                    // A table made in this transaction, which nobody else sees: the rows go
                    // straight in (COPY FREEZE, as a full refresh), its key is built after.
                    let finish = Finish::KeyAfterLoad {
                        table: qualified.clone(),
                        key: key.clone(),
                        key_statements: vec![format!(
                            "ALTER TABLE {qualified} ADD PRIMARY KEY ({})",
                            quoted_list(&key)
                        )],
                        after: Vec::new(),
                    };
                    (qualified.clone(), true, plan, finish)
                } else if let Some(Rebuild {
                    key_statements,
                    after,
                }) = taken_over
                {
                    // An empty table, truncated in this transaction and without its indexes:
                    // loaded as a new one, its indexes built again at commit.
                    let finish = Finish::KeyAfterLoad {
                        table: qualified.clone(),
                        key: key.clone(),
                        key_statements,
                        after,
                    };
                    (qualified.clone(), true, plan, finish)
                } else {
                    let load = format!(
                        "pg_temp.{}",
                        quote(&format!("lockstep_upsert_{}", random_suffix()))
                    );
                    let seq = quote(&format!("lockstep_row_{}", random_suffix()));
                    let defs: Vec<String> = names
                        .iter()
                        .zip(&plan.load_types)
                        .map(|(n, t)| format!("{} {t}", quote(n)))
                        .collect();
                    session
                    .execute(&format!(
                        "CREATE TEMP TABLE {load} ({}, {seq} bigint GENERATED ALWAYS AS IDENTITY) ON COMMIT DROP",
                        defs.join(", ")
                    ))
                    .await?;
                    let key_exprs: Vec<&str> = key
                        .iter()
                        .filter_map(|k| {
                            names
                                .iter()
                                .position(|n| n == k)
                                .and_then(|i| plan.exprs.get(i))
                                .map(String::as_str)
                        })
                        .collect();
                    let key_exprs = key_exprs.join(", ");
                    let updates: Vec<String> = names
                        .iter()
                        .filter(|n| !key.contains(n))
                        .map(|n| format!("{0} = EXCLUDED.{0}", quote(n)))
                        .collect();
                    let action = if updates.is_empty() {
                        "DO NOTHING".to_owned()
                    } else {
                        format!("DO UPDATE SET {}", updates.join(", "))
                    };
                    let upsert = format!(
                        "INSERT INTO {qualified} ({columns_sql}) OVERRIDING SYSTEM VALUE \
                     SELECT DISTINCT ON ({key_exprs}) {} FROM {load} \
                     ORDER BY {key_exprs}, {seq} DESC \
                     ON CONFLICT ({}) {action}",
                        plan.exprs.join(", "),
                        quoted_list(&key),
                    );
                    let finish = if created {
                        // (Only with casts.) The last record of each key, then the key.
                        let distinct = format!(
                            "INSERT INTO {qualified} ({columns_sql}) OVERRIDING SYSTEM VALUE \
                         SELECT DISTINCT ON ({key_exprs}) {} FROM {load} \
                         ORDER BY {key_exprs}, {seq} DESC",
                            plan.exprs.join(", "),
                        );
                        let add_key = format!(
                            "ALTER TABLE {qualified} ADD PRIMARY KEY ({})",
                            quoted_list(&key)
                        );
                        Finish::Statements(vec![distinct, add_key])
                    } else if empty {
                        let insert = format!(
                            "INSERT INTO {qualified} ({columns_sql}) OVERRIDING SYSTEM VALUE \
                         SELECT {} FROM {load}",
                            plan.exprs.join(", "),
                        );
                        Finish::InsertElseUpsert { insert, upsert }
                    } else {
                        Finish::Statements(vec![upsert])
                    };
                    (load, true, plan, finish)
                }
            }
        };

        // COPY FREEZE writes the rows as already visible to all (no later pass over the table to
        // mark them so); it is allowed in a table created in this transaction, which no one else
        // can see before COMMIT.
        let freeze = if fresh { ", FREEZE" } else { "" };
        let copy = format!("COPY {load} ({columns_sql}) FROM STDIN (FORMAT binary{freeze})");
        let sink = timed(
            self.ctx.timeout,
            &endpoint,
            client.copy_in::<_, Chunk>(copy.as_str()),
        )
        .await?;
        let decode = plan.decode.iter().any(Option::is_some).then(|| Decode {
            // Decoded fields as they stand for, the others as they come.
            schema: Arc::new(Schema::new(
                spec.schema
                    .fields()
                    .iter()
                    .zip(&logical)
                    .zip(&plan.decode)
                    .map(|((given, decoded), decode)| match decode {
                        Some(_) => decoded.clone(),
                        None => given.as_ref().clone(),
                    })
                    .collect::<Vec<_>>(),
            )),
            fields: plan.decode,
        });
        Ok(PostgresWriter {
            client,
            sink: Some(Box::pin(sink)),
            schema: spec.schema.clone(),
            encodings: plan.encodings,
            decode,
            finish,
            header_sent: false,
            failed: false,
            rows: 0,
            row_bytes: 64,
            object: spec.object,
            endpoint,
            timeout: self.ctx.timeout,
        })
    }
}

/// Takes over the existing table `qualified`, found empty, for a first load (see
/// [`TAKE_OVER_SQL`]): locks it (waiting at most [`TAKE_OVER_LOCK_MS`]), checks again that it is
/// empty and may be taken over, drops its indexes and truncates it, which lets the COPY write it
/// as a new table. Answers the statements that build its indexes again (those on exactly `key`
/// first, then the others), or `None` — nothing changed — when the table cannot be taken over.
async fn take_over_empty(
    session: &Session<'_>,
    schema: &str,
    table: &str,
    qualified: &str,
    key: &[String],
) -> Result<Option<Rebuild>, ConnectorError> {
    session.execute("SAVEPOINT lockstep_take").await?;
    match take_over_locked(session, schema, table, qualified, key).await {
        Ok(Some(statements)) => {
            session.execute("RELEASE SAVEPOINT lockstep_take").await?;
            Ok(Some(statements))
        }
        outcome => {
            if let Err(err) = outcome {
                tracing::debug!(error = %err, "an empty table could not be taken over");
            }
            // Undoes whatever was done, the lock included.
            session
                .execute("ROLLBACK TO SAVEPOINT lockstep_take; RELEASE SAVEPOINT lockstep_take")
                .await?;
            Ok(None)
        }
    }
}

async fn take_over_locked(
    session: &Session<'_>,
    schema: &str,
    table: &str,
    qualified: &str,
    key: &[String],
) -> Result<Option<Rebuild>, ConnectorError> {
    session
        .execute(&format!(
            "SET LOCAL lock_timeout = {TAKE_OVER_LOCK_MS}; \
             LOCK TABLE {qualified} IN ACCESS EXCLUSIVE MODE; \
             SET LOCAL lock_timeout TO DEFAULT"
        ))
        .await?;
    let allowed = session
        .query(TAKE_OVER_SQL, &[&schema, &table])
        .await?
        .first()
        .and_then(|row| row.try_get::<_, bool>(0).ok())
        .unwrap_or(false);
    if !allowed || !session.is_empty(qualified).await? {
        return Ok(None);
    }
    let mut sorted = key.to_vec();
    sorted.sort();
    let mut drops = Vec::new();
    let (mut key_statements, mut after) = (Vec::new(), Vec::new());
    for row in session
        .query(TAKE_OVER_INDEXES_SQL, &[&schema, &table, &sorted])
        .await?
    {
        let read = || -> Result<(bool, String, String), tokio_postgres::Error> {
            Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
        };
        let (arbiter, drop, create) = read().map_err(|_| catalog_error())?;
        drops.push(drop);
        if arbiter {
            key_statements.push(create);
        } else {
            after.push(create);
        }
    }
    if key_statements.is_empty() {
        return Ok(None);
    }
    for drop in &drops {
        session.execute(drop).await?;
    }
    session.execute(&format!("TRUNCATE {qualified}")).await?;
    Ok(Some(Rebuild {
        key_statements,
        after,
    }))
}

/// The statements that build a taken-over table's indexes again: those on exactly the key,
/// then the others.
#[derive(Debug)]
struct Rebuild {
    key_statements: Vec<String>,
    after: Vec<String>,
}

/// A temporary table with each column in the type the COPY writes (natural types for the
/// columns that need a cast), and the statement that moves its rows into `into`.
async fn cast_table(
    session: &Session<'_>,
    plan: &Plan,
    fields: &[&Field],
    into: &str,
    columns_sql: &str,
) -> Result<(String, String), ConnectorError> {
    session.check_casts(plan).await?;
    let load = format!(
        "pg_temp.{}",
        quote(&format!("lockstep_load_{}", random_suffix()))
    );
    let defs: Vec<String> = fields
        .iter()
        .zip(&plan.load_types)
        .map(|(f, t)| format!("{} {t}", quote(f.name())))
        .collect();
    session
        .execute(&format!(
            "CREATE TEMP TABLE {load} ({}) ON COMMIT DROP",
            defs.join(", ")
        ))
        .await?;
    let insert = format!(
        "INSERT INTO {into} ({columns_sql}) OVERRIDING SYSTEM VALUE SELECT {} FROM {load}",
        plan.exprs.join(", ")
    );
    Ok((load, insert))
}

impl Decode {
    /// The batch with the fields to decode decoded.
    fn batch(&self, batch: &RecordBatch) -> Result<RecordBatch, ConnectorError> {
        let columns = batch
            .columns()
            .iter()
            .zip(&self.fields)
            .zip(self.schema.fields())
            .map(|((array, decode), field)| match decode {
                Some((typname, data_type)) => {
                    copy_out::decode_pg_binary(array.as_ref(), typname, data_type, field.name())
                }
                None => Ok(Arc::clone(array)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new(self.schema.clone(), columns).map_err(|_| {
            ConnectorError::config("schema", "a batch does not match the writer's schema")
        })
    }
}

impl PostgresWriter {
    async fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        let matches = batch.num_columns() == self.schema.fields().len()
            && batch
                .columns()
                .iter()
                .zip(self.schema.fields())
                .all(|(a, f)| a.data_type() == f.data_type());
        if !matches {
            return Err(ConnectorError::config(
                "schema",
                "a batch does not match the writer's schema",
            ));
        }
        let schema = self.schema.clone();
        let unwritable = |(index, why): (usize, Unwritable)| {
            let name = schema
                .fields()
                .get(index)
                .map(|f| f.name().as_str())
                .unwrap_or("?");
            match why {
                Unwritable::OutOfRange => ConnectorError::failed(
                    FailureKind::Other,
                    format!(
                        "the field \"{name}\" holds a value outside the range of its column's type"
                    ),
                ),
                Unwritable::NotANumber => ConnectorError::failed(
                    FailureKind::Other,
                    format!("the field \"{name}\" holds text that is not a number"),
                ),
                Unwritable::WrongType => {
                    ConnectorError::config("schema", "a batch does not match the writer's schema")
                }
            }
        };
        let decoded;
        let batch = match &self.decode {
            None => batch,
            Some(decode) => {
                decoded = decode.batch(batch)?;
                &decoded
            }
        };
        let rows = copy_in::Rows::bind(batch, &self.encodings).map_err(unwritable)?;
        let total = batch.num_rows();
        // Sent in chunks of about CHUNK_BYTES, so a batch of wide rows is never copied whole
        // into the driver's buffers.
        let mut row = 0;
        while row < total {
            let estimate = (total - row).saturating_mul(self.row_bytes);
            let mut out = Vec::with_capacity(estimate.min(CHUNK_BYTES) + 1024);
            if !self.header_sent {
                out.extend_from_slice(COPY_HEADER);
            }
            let next = rows.write(row, &mut out, CHUNK_BYTES).map_err(unwritable)?;
            self.row_bytes = out.len() / (next - row).max(1) + 1;
            self.send(out).await?;
            self.header_sent = true;
            self.rows += (next - row) as u64;
            row = next;
        }
        Ok(())
    }

    fn session(&self, timeout: Duration) -> Session<'_> {
        Session {
            client: &self.client,
            endpoint: &self.endpoint,
            timeout,
        }
    }

    /// For statements whose work grows with the rows (index builds, upserts): the timeout plus
    /// 20 µs a row.
    fn bulk_timeout(&self) -> Duration {
        self.timeout + Duration::from_micros(self.rows.saturating_mul(20))
    }

    async fn send(&mut self, data: Vec<u8>) -> Result<(), ConnectorError> {
        let Some(sink) = self.sink.as_mut() else {
            return Err(finished());
        };
        let send = async {
            std::future::poll_fn(|cx| sink.as_mut().poll_ready(cx)).await?;
            sink.as_mut().start_send(Cursor::new(data))
        };
        timed(self.timeout, &self.endpoint, send).await
    }

    async fn finish_copy(&mut self) -> Result<u64, ConnectorError> {
        if !self.header_sent {
            self.send(COPY_HEADER.to_vec()).await?;
            self.header_sent = true;
        }
        self.send((-1_i16).to_be_bytes().to_vec()).await?;
        let Some(mut sink) = self.sink.take() else {
            return Err(finished());
        };
        timed(self.bulk_timeout(), &self.endpoint, sink.as_mut().finish()).await
    }

    async fn replace(&self, replace: &Replace) -> Result<(), ConnectorError> {
        let session = self.session(self.bulk_timeout());
        for statement in &replace.fill {
            session.execute(statement).await?;
        }
        let target = format!("{}.{}", quote(&replace.schema), quote(&replace.table));
        let staging = format!("{}.{}", quote(&replace.schema), quote(&replace.staging));
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
            [&replace.schema, &replace.table];
        let mut after = Vec::new();
        let mut identities = Vec::new();
        if replace.like {
            // What the target has that LIKE … EXCLUDING INDEXES did not copy, read before it goes.
            for sql in [CARRY_CONSTRAINTS_SQL, CARRY_INDEXES_SQL] {
                for row in session.query(sql, &params).await? {
                    after.push(row.try_get::<_, String>(0).map_err(|_| catalog_error())?);
                }
            }
            let sequences = session
                .query(
                    CARRY_SEQUENCES_SQL,
                    &[&replace.schema, &replace.table, &replace.staging],
                )
                .await?;
            for row in sequences {
                let read = || -> Result<_, tokio_postgres::Error> {
                    Ok((
                        row.try_get::<_, String>(0)?,
                        row.try_get::<_, String>(1)?,
                        row.try_get::<_, String>(2)?,
                        row.try_get::<_, String>(3)?,
                        row.try_get::<_, Option<i64>>(4)?,
                    ))
                };
                let (deptype, column, owned_by, name, last) =
                    read().map_err(|_| catalog_error())?;
                if deptype == "a" {
                    // A serial's sequence moves to the new table (dropping the old would drop it).
                    session.execute(&owned_by).await?;
                } else {
                    identities.push((column, name, last));
                }
            }
        }
        // The drop waits for the target's readers to finish. The server gives up by itself when
        // that takes too long (a client-side timeout alone would leave the waiting DROP queued on
        // the server, and every new reader queued behind it); the old table then stays.
        // (Here the client waits longer than the server, so the server's answer arrives.)
        let lock_ms = self.timeout.as_millis().max(1);
        self.session(self.bulk_timeout() + self.timeout)
            .execute(&format!(
                "SET LOCAL lock_timeout = {lock_ms}; \
                 DROP TABLE IF EXISTS {target}; \
                 ALTER TABLE {staging} RENAME TO {}",
                quote(&replace.table)
            ))
            .await?;
        for (column, name, last) in identities {
            let rename = session
                .query(
                    IDENTITY_RENAME_SQL,
                    &[&replace.schema, &replace.table, &column, &name],
                )
                .await?;
            if let Some(Ok(sql)) = rename.first().map(|r| r.try_get::<_, String>(0)) {
                session.execute(&sql).await?;
            }
            if let Some(last) = last {
                session
                    .query(
                        IDENTITY_SETVAL_SQL,
                        &[&replace.schema, &replace.table, &column, &last],
                    )
                    .await?;
            }
        }
        if replace.like {
            for statement in &after {
                session.execute(statement).await?;
            }
        } else if !replace.primary_key.is_empty() {
            session
                .execute(&format!(
                    "ALTER TABLE {target} ADD PRIMARY KEY ({})",
                    quoted_list(&replace.primary_key)
                ))
                .await?;
        }
        Ok(())
    }
}

fn finished() -> ConnectorError {
    ConnectorError::failed(FailureKind::Other, "the writer has already finished")
}

impl BatchWriter for PostgresWriter {
    async fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        if self.failed {
            return Err(crate::batch::poisoned_writer());
        }
        // A failed write may have sent part of its batch: the writer then only aborts.
        self.failed = true;
        self.write_batch(batch).await?;
        self.failed = false;
        Ok(())
    }

    async fn commit(mut self) -> Result<u64, ConnectorError> {
        if self.failed {
            return Err(crate::batch::poisoned_writer());
        }
        let copied = self.finish_copy().await?;
        self.rows = copied;
        match &self.finish {
            Finish::Nothing => {}
            Finish::Statements(statements) => {
                let session = self.session(self.bulk_timeout());
                for statement in statements {
                    session.execute(statement).await?;
                }
            }
            Finish::Replace(replace) => self.replace(replace).await?,
            Finish::InsertElseUpsert { insert, upsert } => {
                let session = self.session(self.bulk_timeout());
                session.execute("SAVEPOINT lockstep_insert").await?;
                if !session.execute_unless_repeated(insert).await? {
                    session
                        .execute("ROLLBACK TO SAVEPOINT lockstep_insert")
                        .await?;
                    session.execute(upsert).await?;
                }
            }
            Finish::KeyAfterLoad {
                table,
                key,
                key_statements,
                after,
            } => {
                let session = self.session(self.bulk_timeout());
                session.execute("SAVEPOINT lockstep_key").await?;
                let mut repeated = false;
                for statement in key_statements {
                    if !session.execute_unless_repeated(statement).await? {
                        repeated = true;
                        break;
                    }
                }
                if repeated {
                    // The table was filled by one COPY into a table of this transaction: its
                    // rows lie in the order they came, so the last of each key has the greatest
                    // ctid.
                    let keys = quoted_list(key);
                    session
                        .execute("ROLLBACK TO SAVEPOINT lockstep_key")
                        .await?;
                    session
                        .execute(&format!(
                            "DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM \
                             (SELECT ctid, pg_catalog.row_number() OVER \
                             (PARTITION BY {keys} ORDER BY ctid DESC) AS lockstep_n FROM {table}) d \
                             WHERE d.lockstep_n > 1)"
                        ))
                        .await?;
                    for statement in key_statements {
                        session.execute(statement).await?;
                    }
                }
                for statement in after {
                    session.execute(statement).await?;
                }
            }
        }
        self.session(self.bulk_timeout()).execute("COMMIT").await?;
        Ok(copied)
    }

    async fn abort(mut self) {
        // Dropping the sink fails the COPY; then the transaction is rolled back. Should that not
        // get through, closing the connection (the client is dropped here) rolls it back too.
        self.sink = None;
        let _ = self.session(self.timeout).execute("ROLLBACK").await;
    }
}

/// Maps a driver error during a write to a failure kind and a message written here: the SQLSTATE,
/// what kind of refusal it is, the column and constraint names and the record's number in the
/// COPY when PostgreSQL says — never the DETAIL text, which quotes values.
pub(super) fn write_error(err: &tokio_postgres::Error, endpoint: &str) -> ConnectorError {
    let Some(db) = err.as_db_error() else {
        return map_error(err, endpoint);
    };
    let code = db.code().code();
    let refusal = match code {
        "23502" => Some("not null violation"),
        "23505" => Some("unique violation"),
        "23503" => Some("foreign key violation"),
        "23514" => Some("check violation"),
        "23P01" => Some("exclusion violation"),
        "22001" => Some("value too long for the column's type"),
        "22003" => Some("value out of the range of the column's type"),
        "22P02" => Some("invalid input for the column's type"),
        "22P03" => Some("invalid binary value"),
        "22007" | "22008" => Some("invalid date or time"),
        "22021" => Some("invalid byte sequence"),
        "22P05" => Some("a character the database's encoding cannot hold"),
        "21000" => Some("a key repeated within one statement"),
        c if c.starts_with("22") || c.starts_with("23") => Some("invalid value"),
        _ => None,
    };
    if let Some(what) = refusal {
        let (record, copy_column) = copy_context(db.where_());
        let mut message = format!("PostgreSQL refused a record (SQLSTATE {code}, {what}");
        if let Some(column) = db.column().or(copy_column) {
            message.push_str(&format!(" on column \"{column}\""));
        }
        if let Some(constraint) = db.constraint() {
            message.push_str(&format!(", constraint \"{constraint}\""));
        }
        if let Some(record) = record {
            message.push_str(&format!(", record {record}"));
        }
        message.push(')');
        return ConnectorError::failed(FailureKind::Other, message);
    }
    let what = match code {
        "2BP01" => {
            "other objects (views, foreign keys) depend on the table, so it cannot be dropped"
        }
        "42P07" => "a table of that name already exists",
        "42704" => "a type the table needs does not exist in the destination database",
        "42703" => "a column does not exist",
        "42804" | "42846" => "a field's type does not match its column's",
        "42P10" => "the key does not match a unique constraint",
        "428C9" => "a generated column cannot be written",
        "40P01" => "PostgreSQL detected a deadlock",
        "40001" => "PostgreSQL could not serialize the write",
        "55P03" => "a lock could not be obtained",
        "0A000" => "PostgreSQL does not support this write",
        _ => return map_error(err, endpoint),
    };
    ConnectorError::failed(
        FailureKind::Other,
        format!("{what} ({endpoint}, SQLSTATE {code})"),
    )
}

/// The record number and column of a binary COPY's error context
/// (`COPY t, line 5, column x`; binary COPY names no value there).
fn copy_context(context: Option<&str>) -> (Option<u64>, Option<&str>) {
    let Some(first) = context.and_then(|c| c.lines().next()) else {
        return (None, None);
    };
    if !first.starts_with("COPY ") {
        return (None, None);
    }
    let Some(at) = first.rfind(", line ") else {
        return (None, None);
    };
    let rest = first.get(at + ", line ".len()..).unwrap_or("");
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let record = rest.get(..digits).and_then(|d| d.parse().ok());
    let column = rest
        .get(digits..)
        .and_then(|r| r.strip_prefix(", column "))
        .map(|c| c.split(": \"").next().unwrap_or(c))
        .filter(|c| !c.is_empty());
    (record, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_types_must_look_like_type_names() {
        for ok in [
            "integer",
            "numeric(12,2)",
            "numeric(5,-2)",
            "character varying(40)",
            "character varying(40)[]",
            "timestamp(3) with time zone",
            "time without time zone",
            "double precision",
            "interval year to month",
            "text[]",
            "\"char\"",
            "shop.mood",
            "\"my type\"",
            "bit varying(5)",
        ] {
            assert!(native_type_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "integer default 1",
            "integer not null",
            "text check (true)",
            "int generated always as (1) stored",
            "text collate \"c\"",
            "integer; drop table t",
            "Integer",
            "numeric(12,2)(3)",
            "text[",
            "\"unterminated",
            "\"\" integer",
            "integer references t",
            "a.b.c",
        ] {
            assert!(!native_type_ok(bad), "{bad}");
        }
    }

    #[test]
    fn objects_and_staging_names() {
        let long = "ä".repeat(40);
        let name = staging_name(&long);
        assert!(name.len() <= 63, "{name}");
        assert!(name.contains("__lockstep_"));
        assert_ne!(staging_name("t"), staging_name("t"));
    }

    #[test]
    fn copy_context_names_record_and_column() {
        assert_eq!(
            copy_context(Some("COPY t__lockstep_1, line 5, column qty")),
            (Some(5), Some("qty"))
        );
        assert_eq!(copy_context(Some("COPY t, line 7")), (Some(7), None));
        assert_eq!(copy_context(Some("SQL statement")), (None, None));
        assert_eq!(copy_context(None), (None, None));
    }
}
