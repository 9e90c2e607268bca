//! Bulk writes: Arrow batches into a MySQL/MariaDB table, all or nothing.
//!
//! A writer holds one connection (strict `sql_mode`, session time zone UTC) and one transaction.
//! Rows go in as multi-row `INSERT INTO t (…) VALUES (?,…),(?,…)` statements with every value
//! bound, never interpolated: at most 1000 rows and 65,535 placeholders a statement, and at most
//! half of `max_allowed_packet` (4 MiB at most) of values. Where the server allows `LOCAL
//! INFILE` and no upsert is asked, they go instead by one `LOAD DATA LOCAL INFILE` statement for
//! the whole write, which runs on a task of its own while the writer escapes the next rows: the
//! text streams to it through a queue of [`LOAD_QUEUE`] chunks, so the server loads while the hub
//! reads and encodes (see [`MysqlWriter::load`]).
//!
//! The object is `table` (in the connection's database) or `database.table`
//! ([`crate::object_name`]); staging tables live in the table's database, and every statement
//! names both parts, quoted.
//!
//! Modes:
//! * `Append`: inserts into the table inside the transaction; `COMMIT` makes them visible.
//! * `Upsert { key }`: `INSERT … ON DUPLICATE KEY UPDATE c = VALUES(c)` (the form MySQL 8 and
//!   MariaDB both know) inside the transaction. The table must have a primary key or a unique
//!   index on exactly the `key` fields (else a configuration error naming `mode.key`).
//! * `Replace`: DDL commits implicitly in MySQL, so a transaction cannot cover a swap. The rows
//!   go to a staging table `<table>__lockstep_<token>` (`CREATE TABLE … LIKE` the table when it has
//!   the same columns, else made from the schema); at commit one `RENAME TABLE t TO old,
//!   staging TO t` swaps both names atomically (readers see the old table or the new one), then
//!   the old one is dropped. Abort, failure or a dropped writer drop the staging table.
//!
//! When the table does not exist, every mode writes into a staging table made from the schema and
//! renames it at commit, so an aborted writer leaves no table behind.
//!
//! A crash can leave a staging table (or the old table between the swap and its drop). Each writer
//! holds the named lock `lockstep_<token>` (`GET_LOCK`) for its whole life; the server releases it
//! when the session ends. Every writer first drops the `<table>__lockstep_<token>[_old]` tables of
//! its table whose lock nobody holds — those of crashed writers — and never those of a writer still
//! at work. (The table name is cut to 33 characters in these names so that they stay within 64.)
//!
//! Tables are made with `ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`, NOT NULL from the fields'
//! nullability and the primary key from `lockstep.primary_key` (the upsert key in `Upsert`).
//! Column types: a field from MySQL (`lockstep.source` = `mysql`) keeps its native COLUMN_TYPE when
//! it passes a conservative pattern; other fields map by type:
//!
//! | field type | column |
//! | --- | --- |
//! | boolean | TINYINT(1) |
//! | integer | BIGINT (BIGINT UNSIGNED for UInt64; SMALLINT/INT when the native type says so) |
//! | float | FLOAT for Float32 or a single-precision native type (PostgreSQL `real`); else DOUBLE |
//! | decimal | DECIMAL(p,s) from Decimal128(p,s) or a native `numeric(p,s)`; else DECIMAL(65,30) |
//! | string | as declared: CHAR(n), VARCHAR(n) (a TEXT type when the row would pass 65,535 bytes); other text LONGTEXT; VARCHAR(≤ 255) utf8mb4_bin in a key (TEXT cannot be a key) |
//! | other | LONGTEXT; VARCHAR(255) utf8mb4_bin in a key |
//! | binary | LONGBLOB; VARBINARY(255) in a key |
//! | date / time | DATE / TIME(6) |
//! | timestamp | DATETIME(6) |
//! | timestamp_tz | DATETIME(6) holding UTC (TIMESTAMP ends in 2038) |
//! | uuid | CHAR(36), canonical text |
//! | json | JSON (MariaDB: LONGTEXT with a json_valid check) |
//!
//! Decimals are never rounded: a value with more digits than its DECIMAL column holds (MySQL would
//! round the fraction silently, even in strict mode) is an error naming the field. Sub-microsecond
//! timestamps and times, NaN and infinities are errors too. Errors name fields and MySQL error
//! codes, never values.

use super::batch::{format_decimal, is_decimal_text};
use super::{MysqlConnector, map_error, quote, sqlstate};
use crate::batch::{
    BatchDestination, BatchWriter, TextType, WriteMode, WriteSpec, field_meta, keys,
    single_precision, text_type,
};
use crate::object_name::ObjectName;
use crate::{ConnectorError, FailureKind, FieldMeta, FieldType, ObjectKind};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, BinaryArray, BooleanArray, FixedSizeBinaryArray, LargeBinaryArray, LargeStringArray,
    PrimitiveArray, RecordBatch, StringArray,
};
use arrow_schema::{DataType, TimeUnit};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Value};
use std::time::Duration;

/// What marks Lockstep's staging tables.
const STAGING_MARKER: &str = "__lockstep_";
/// How much of the table name staging names keep (33 + 11 + 16 + 4 = 64).
const STAGING_PREFIX_CHARS: usize = 33;
const MAX_ROWS_PER_STATEMENT: usize = 1000;
const MAX_PLACEHOLDERS: usize = 65_535;
const MAX_STATEMENT_BYTES: usize = 4 * 1024 * 1024;
const MICROS_PER_DAY: i64 = 86_400_000_000;
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// Strict: a value that does not fit its column is an error, not a warning and a changed value.
const SQL_MODE: &str = "SET SESSION sql_mode = \
    'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'";

/// Where requests go and how long they may take.
#[derive(Debug, Clone)]
struct Link {
    endpoint: String,
    timeout: Duration,
}

impl Link {
    async fn timed<T>(
        &self,
        request: impl Future<Output = Result<T, mysql_async::Error>>,
    ) -> Result<T, ConnectorError> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(result) => result.map_err(|err| write_error(&err, &self.endpoint)),
            Err(_) => Err(ConnectorError::failed(
                FailureKind::Timeout,
                format!(
                    "MySQL at {} did not answer the statement within {} s",
                    self.endpoint,
                    self.timeout.as_secs_f32()
                ),
            )),
        }
    }

    /// A statement without parameters (text protocol: DDL, transactions).
    async fn query(&self, conn: &mut Conn, sql: &str) -> Result<(), ConnectorError> {
        self.timed(conn.query_drop(sql)).await
    }

    /// A prepared statement with bound parameters.
    async fn exec(&self, conn: &mut Conn, sql: &str, params: Params) -> Result<(), ConnectorError> {
        self.timed(conn.exec_drop(sql, params)).await
    }
}

/// A driver error during a write, with what went wrong in our words (codes, never values: MySQL's
/// messages for these errors quote the value).
fn write_error(err: &mysql_async::Error, endpoint: &str) -> ConnectorError {
    let mysql_async::Error::Server(server) = err else {
        return map_error(err, endpoint);
    };
    let (kind, what) = match server.code {
        1062 | 1586 => (FailureKind::Other, "a key value appears twice"),
        1048 => (FailureKind::Other, "a NULL for a NOT NULL column"),
        1264 | 1690 => (FailureKind::Other, "a value is out of range for its column"),
        1265 => (
            FailureKind::Other,
            "a value would be truncated by its column",
        ),
        1292 | 1366 | 1367 => (FailureKind::Other, "a value is not valid for its column"),
        1406 => (FailureKind::Other, "a value is too long for its column"),
        3140 | 3819 | 4025 => (
            FailureKind::Other,
            "a value breaks a column's check (such as invalid JSON)",
        ),
        1050 => (FailureKind::Other, "the table already exists"),
        1054 => (FailureKind::Other, "the table has no such column"),
        1071 => (
            FailureKind::Other,
            "the key is too long for MySQL (3072 bytes at most)",
        ),
        1118 => (FailureKind::Other, "a row is too large for MySQL"),
        1153 | 1301 => (
            FailureKind::Other,
            "a statement is larger than MySQL's max_allowed_packet",
        ),
        1205 => (FailureKind::Timeout, "a lock wait timed out"),
        1213 => (FailureKind::Other, "a deadlock ended the transaction"),
        _ => return map_error(err, endpoint),
    };
    ConnectorError::failed(
        kind,
        format!(
            "MySQL refused the write: {what} ({endpoint}, error {}, SQLSTATE {})",
            server.code,
            sqlstate(&server.state)
        ),
    )
}

/// One field of the batches and its column.
#[derive(Debug, Clone)]
struct Column {
    meta: FieldMeta,
    data_type: DataType,
    /// The field came from MySQL: its native COLUMN_TYPE may be reused.
    from_mysql: bool,
    /// A single-precision float (Float32, or a `real` of the source): FLOAT, not DOUBLE.
    single: bool,
    /// DECIMAL(p, s) of the destination column, to refuse values it would round.
    decimal: Option<(u32, u32)>,
}

impl Column {
    /// Whether its values are bytes, not text (they travel in hexadecimal in `LOAD DATA`).
    fn is_binary(&self) -> bool {
        match self.data_type {
            DataType::Binary | DataType::LargeBinary => true,
            DataType::FixedSizeBinary(_) => self.meta.field_type != FieldType::Uuid,
            _ => false,
        }
    }

    /// Whether its text values are checked as decimals ([`text_value`]).
    fn checks_decimals(&self) -> bool {
        self.meta.field_type == FieldType::Decimal || self.decimal.is_some()
    }
}

/// The staging table, and the old table's name while it is swapped out (Replace of a table),
/// both in the table's database.
#[derive(Debug, Clone)]
struct Staging {
    name: ObjectName,
    old: Option<ObjectName>,
}

/// Writes batches into one table; see the module documentation.
#[derive(Debug)]
pub struct MysqlWriter {
    /// `None` once committed or aborted.
    conn: Option<Conn>,
    link: Link,
    table: ObjectName,
    staging: Option<Staging>,
    lock: String,
    columns: Vec<Column>,
    insert_prefix: String,
    upsert_suffix: String,
    rows_per_statement: usize,
    max_bytes: usize,
    /// The statement for `rows_per_statement` rows.
    full_statement: String,
    /// Rows go in by `LOAD DATA LOCAL INFILE` (see [`LoadData`]) rather than by INSERTs.
    load: Option<LoadData>,
    /// The `LOAD DATA` statement under way, which holds the connection meanwhile.
    loading: Option<Loading>,
    /// Escaped rows not yet sent to it, and the rows it was given in all.
    pending: Vec<u8>,
    load_rows: u64,
    /// A write failed (part of its rows may be on their way): commit refuses.
    failed: bool,
    written: u64,
}

/// A `LOAD DATA LOCAL INFILE` statement at work on a task of its own: the rows' text goes to
/// it through `chunks`; the task answers the connection and the server's counts (rows
/// affected, warnings).
#[derive(Debug)]
struct Loading {
    chunks: tokio::sync::mpsc::Sender<bytes::Bytes>,
    task: tokio::task::JoinHandle<(Conn, LoadOutcome)>,
}

/// The server's answer to a `LOAD DATA`: rows affected and warnings, or its error.
type LoadOutcome = Result<(u64, u16), mysql_async::Error>;

/// `LOAD DATA LOCAL INFILE` of the rows, as text the writer escapes itself: the statement, and
/// which columns travel in hexadecimal (binary values, unhexed by the server).
#[derive(Debug)]
struct LoadData {
    statement: String,
    hex: Vec<bool>,
}

/// Bytes of escaped rows sent to `LOAD DATA` at a time, and how many such chunks may wait for
/// the server (the writer waits when they all do).
const LOAD_CHUNK_BYTES: usize = 1 << 20;
const LOAD_QUEUE: usize = 4;

impl BatchDestination for MysqlConnector {
    type Writer = MysqlWriter;

    async fn writer(&self, spec: WriteSpec) -> Result<MysqlWriter, ConnectorError> {
        let table = self.object_name(&spec.object)?;
        if self.foreign_system_database(&table.namespace) {
            return Err(ConnectorError::config(
                "object",
                "Lockstep does not write to MySQL's own databases",
            ));
        }
        if table.name.contains(STAGING_MARKER) {
            return Err(ConnectorError::config(
                "object",
                "names containing __lockstep_ belong to Lockstep's staging tables",
            ));
        }
        let columns = plan_columns(&spec)?;
        let key = key_fields(&spec, &columns)?;
        let conn = self.connect().await?;
        let token = uuid::Uuid::now_v7().simple().to_string();
        let token = token.get(16..).unwrap_or(&token).to_owned();
        let mut writer = MysqlWriter {
            conn: Some(conn),
            link: Link {
                endpoint: self.endpoint(),
                timeout: self.ctx.timeout,
            },
            table,
            staging: None,
            lock: format!("lockstep_{token}"),
            columns,
            insert_prefix: String::new(),
            upsert_suffix: String::new(),
            rows_per_statement: 1,
            max_bytes: MAX_STATEMENT_BYTES,
            full_statement: String::new(),
            load: None,
            loading: None,
            pending: Vec::new(),
            load_rows: 0,
            failed: false,
            written: 0,
        };
        match writer.open(self, &spec, &key, &token, self.load_data).await {
            Ok(()) => Ok(writer),
            Err(err) => {
                writer.finish_abort().await;
                Err(err)
            }
        }
    }
}

impl MysqlWriter {
    fn conn(&mut self) -> Result<&mut Conn, ConnectorError> {
        self.conn.as_mut().ok_or_else(finished)
    }

    async fn open(
        &mut self,
        connector: &MysqlConnector,
        spec: &WriteSpec,
        key: &[String],
        token: &str,
        load_data: bool,
    ) -> Result<(), ConnectorError> {
        let link = self.link.clone();
        let lock = self.lock.clone();
        let table = self.table.clone();
        let conn = self.conn.as_mut().ok_or_else(finished)?;
        link.query(conn, SQL_MODE).await?;
        let locked: Option<Option<i64>> = link
            .timed(conn.exec_first("SELECT GET_LOCK(?, 0)", (lock.as_str(),)))
            .await?;
        if locked != Some(Some(1)) {
            return Err(ConnectorError::failed(
                FailureKind::Other,
                "MySQL did not grant the writer's lock",
            ));
        }
        drop_stale_staging(&link, conn, &table).await?;
        let max_packet: Option<u64> = link
            .timed(conn.query_first("SELECT @@max_allowed_packet"))
            .await?;
        let max_packet = usize::try_from(max_packet.unwrap_or(4 << 20)).unwrap_or(usize::MAX);

        let target = connector
            .catalog(conn, Some(&table))
            .await?
            .into_iter()
            .next();
        if target.as_ref().is_some_and(|t| t.kind == ObjectKind::View) {
            return Err(ConnectorError::config(
                "object",
                format!("{} is a view; Lockstep writes to tables", spec.object),
            ));
        }
        let prefix: String = table.name.chars().take(STAGING_PREFIX_CHARS).collect();
        let staging_name = table.sibling(format!("{prefix}{STAGING_MARKER}{token}"));
        let insert_into = match (&spec.mode, &target) {
            (WriteMode::Replace, Some(target)) => {
                let same_columns = same_names(
                    target.fields.iter().map(|f| f.name.as_str()),
                    self.columns.iter().map(|c| c.meta.name.as_str()),
                );
                if same_columns {
                    link.query(
                        conn,
                        &format!(
                            "CREATE TABLE {} LIKE {}",
                            staging_name.mysql_sql(),
                            table.mysql_sql()
                        ),
                    )
                    .await?;
                    destination_decimals(&mut self.columns, &target.fields);
                } else {
                    let create = create_table_sql(&staging_name, &mut self.columns, key)?;
                    link.query(conn, &create).await?;
                }
                self.staging = Some(Staging {
                    name: staging_name.clone(),
                    old: Some(table.sibling(format!("{prefix}{STAGING_MARKER}{token}_old"))),
                });
                staging_name
            }
            (WriteMode::Append | WriteMode::Upsert { .. }, Some(target)) => {
                for column in &self.columns {
                    if !target
                        .fields
                        .iter()
                        .any(|f| f.name.eq_ignore_ascii_case(&column.meta.name))
                    {
                        return Err(ConnectorError::config(
                            "schema",
                            format!(
                                "the table {} has no column {}",
                                spec.object, column.meta.name
                            ),
                        ));
                    }
                }
                if let WriteMode::Upsert { key } = &spec.mode {
                    check_unique_key(&link, conn, &table, &spec.object, key).await?;
                }
                destination_decimals(&mut self.columns, &target.fields);
                table.clone()
            }
            (_, None) => {
                let create = create_table_sql(&staging_name, &mut self.columns, key)?;
                link.query(conn, &create).await?;
                self.staging = Some(Staging {
                    name: staging_name.clone(),
                    old: None,
                });
                staging_name
            }
        };

        let names: Vec<String> = self.columns.iter().map(|c| quote(&c.meta.name)).collect();
        self.insert_prefix = format!(
            "INSERT INTO {} ({}) VALUES ",
            insert_into.mysql_sql(),
            names.join(", ")
        );
        if let WriteMode::Upsert { key } = &spec.mode {
            let mut updates: Vec<String> = self
                .columns
                .iter()
                .filter(|c| !key.contains(&c.meta.name))
                .map(|c| format!("{0} = VALUES({0})", quote(&c.meta.name)))
                .collect();
            if updates.is_empty() {
                // Every column is the key: a duplicate changes nothing.
                updates = key
                    .iter()
                    .take(1)
                    .map(|k| format!("{0} = VALUES({0})", quote(k)))
                    .collect();
            }
            self.upsert_suffix = format!(" ON DUPLICATE KEY UPDATE {}", updates.join(", "));
        }
        let width = self.columns.len().max(1);
        self.rows_per_statement = (MAX_PLACEHOLDERS / width).clamp(1, MAX_ROWS_PER_STATEMENT);
        self.max_bytes = (max_packet / 2).clamp(1, MAX_STATEMENT_BYTES);
        self.full_statement = self.statement(self.rows_per_statement);

        // Rows that only go in (no upsert) are loaded as text when the server allows it.
        let conn = self.conn()?;
        if load_data && !matches!(spec.mode, WriteMode::Upsert { .. }) {
            let allowed: Option<i64> = link
                .timed(conn.query_first("SELECT @@GLOBAL.local_infile"))
                .await?;
            if allowed == Some(1) {
                self.load = Some(load_data_statement(&insert_into, &self.columns));
            }
        }
        let conn = self.conn()?;
        link.query(conn, "START TRANSACTION").await
    }

    /// Sends escaped rows to the `LOAD DATA` statement, which starts with the first chunk: it
    /// takes the connection to a task of its own, whose `LOCAL INFILE` request is answered with
    /// what arrives through the queue until [`MysqlWriter::end_load`] closes it. When the
    /// statement ended before (the server refused it), its error is the answer.
    async fn load(&mut self, chunk: Vec<u8>) -> Result<(), ConnectorError> {
        if self.loading.is_none() {
            let statement = match &self.load {
                Some(load) => load.statement.clone(),
                None => return Err(finished()),
            };
            let mut conn = self.conn.take().ok_or_else(finished)?;
            let (chunks, mut queue) = tokio::sync::mpsc::channel::<bytes::Bytes>(LOAD_QUEUE);
            conn.set_infile_handler(async move {
                let rows = futures_util::stream::poll_fn(move |cx| {
                    queue.poll_recv(cx).map(|chunk| chunk.map(Ok))
                });
                Ok(futures_util::StreamExt::boxed(rows))
            });
            let task = tokio::spawn(async move {
                let result = conn.query_drop(statement).await;
                let result = result.map(|()| (conn.affected_rows(), conn.get_warnings()));
                (conn, result)
            });
            self.loading = Some(Loading { chunks, task });
        }
        let Some(loading) = &self.loading else {
            return Err(finished());
        };
        let sent = tokio::time::timeout(
            self.link.timeout,
            loading.chunks.send(bytes::Bytes::from(chunk)),
        )
        .await;
        match sent {
            Ok(Ok(())) => Ok(()),
            // The statement is over, so the queue closed: why is in its answer.
            Ok(Err(_)) => Err(self.await_load().await.err().unwrap_or_else(|| {
                ConnectorError::failed(
                    FailureKind::Other,
                    "MySQL ended the LOAD DATA before every record was sent",
                )
            })),
            Err(_) => Err(ConnectorError::failed(
                FailureKind::Timeout,
                format!(
                    "MySQL at {} took no more records within {} s",
                    self.link.endpoint,
                    self.link.timeout.as_secs_f32()
                ),
            )),
        }
    }

    /// Sends the rows still pending and ends the `LOAD DATA` under way, if any (see
    /// [`MysqlWriter::await_load`]).
    async fn end_load(&mut self) -> Result<(), ConnectorError> {
        if !self.pending.is_empty() {
            let chunk = std::mem::take(&mut self.pending);
            self.load(chunk).await?;
        }
        self.await_load().await
    }

    /// Closes the queue of the `LOAD DATA` under way and waits for the server's answer (the
    /// timeout plus 20 µs a row), which gives the connection back. LOCAL makes the server skip a
    /// repeated key and store a value it has to change, with a warning, where an INSERT would
    /// fail: so any warning, or fewer rows than sent, fails the write here (with the codes, never
    /// the messages, which quote values).
    async fn await_load(&mut self) -> Result<(), ConnectorError> {
        let Some(Loading { chunks, mut task }) = self.loading.take() else {
            return Ok(());
        };
        drop(chunks);
        let rows = std::mem::take(&mut self.load_rows);
        let wait = self.link.timeout + Duration::from_micros(rows.saturating_mul(20));
        let (conn, result) = match tokio::time::timeout(wait, &mut task).await {
            Ok(Ok(done)) => done,
            Ok(Err(_)) => {
                return Err(ConnectorError::failed(
                    FailureKind::Other,
                    "the LOAD DATA stopped unexpectedly",
                ));
            }
            Err(_) => {
                // Dropping the connection ends the session, which rolls back.
                task.abort();
                return Err(ConnectorError::failed(
                    FailureKind::Timeout,
                    format!(
                        "MySQL at {} did not finish loading within {} s",
                        self.link.endpoint,
                        wait.as_secs_f32()
                    ),
                ));
            }
        };
        self.conn = Some(conn);
        let (affected, warnings) = result.map_err(|err| write_error(&err, &self.link.endpoint))?;
        if affected == rows && warnings == 0 {
            return Ok(());
        }
        let link = self.link.clone();
        let conn = self.conn()?;
        let listed: Vec<(String, u32)> = link
            .timed(conn.query_map(
                "SHOW WARNINGS LIMIT 20",
                |(level, code, _message): (String, u32, String)| (level, code),
            ))
            .await?;
        let codes: Vec<u32> = listed
            .iter()
            .filter(|(level, _)| !level.eq_ignore_ascii_case("note"))
            .map(|(_, code)| *code)
            .collect();
        if affected == rows && codes.is_empty() {
            return Ok(());
        }
        let what = match codes.first() {
            Some(1062 | 1586) => "a key value appears twice",
            Some(1048) => "a NULL for a NOT NULL column",
            Some(1264 | 1690) => "a value is out of range for its column",
            Some(1265) => "a value would be truncated by its column",
            Some(1292 | 1366 | 1367) => "a value is not valid for its column",
            Some(1406) => "a value is too long for its column",
            Some(_) => "a value was changed or left out",
            None => "fewer records arrived than were sent",
        };
        let mut codes: Vec<String> = codes.iter().map(u32::to_string).collect();
        codes.dedup();
        Err(ConnectorError::failed(
            FailureKind::Other,
            format!(
                "MySQL refused the write: {what} ({}, {affected} of {rows} records stored{}{})",
                self.link.endpoint,
                if codes.is_empty() { "" } else { ", warnings " },
                codes.join(", ")
            ),
        ))
    }

    /// The INSERT for `rows` rows.
    fn statement(&self, rows: usize) -> String {
        let one = format!("({})", vec!["?"; self.columns.len()].join(","));
        let mut sql = String::with_capacity(
            self.insert_prefix.len() + rows * (one.len() + 1) + self.upsert_suffix.len(),
        );
        sql.push_str(&self.insert_prefix);
        for i in 0..rows {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&one);
        }
        sql.push_str(&self.upsert_suffix);
        sql
    }

    async fn insert(&mut self, rows: usize, params: Vec<Value>) -> Result<(), ConnectorError> {
        let link = self.link.clone();
        let sql = if rows == self.rows_per_statement {
            std::mem::take(&mut self.full_statement)
        } else {
            self.statement(rows)
        };
        let conn = self.conn()?;
        let result = link.exec(conn, &sql, Params::Positional(params)).await;
        if rows == self.rows_per_statement {
            self.full_statement = sql;
        }
        result
    }

    /// COMMIT and, with a staging table, the rename.
    async fn finish_commit(&mut self) -> Result<(), ConnectorError> {
        let link = self.link.clone();
        let staging = self.staging.clone();
        let table = self.table.clone();
        let conn = self.conn()?;
        link.query(conn, "COMMIT").await?;
        let Some(staging) = staging else {
            return Ok(());
        };
        match &staging.old {
            Some(old) => {
                link.query(
                    conn,
                    &format!(
                        "RENAME TABLE {} TO {}, {} TO {}",
                        table.mysql_sql(),
                        old.mysql_sql(),
                        staging.name.mysql_sql(),
                        table.mysql_sql()
                    ),
                )
                .await?;
                // The swap is done; an old table left behind is dropped by the next writer.
                if link
                    .query(conn, &format!("DROP TABLE {}", old.mysql_sql()))
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        "MySQL: the replaced table could not be dropped; the next writer drops it"
                    );
                }
            }
            None => {
                link.query(
                    conn,
                    &format!(
                        "RENAME TABLE {} TO {}",
                        staging.name.mysql_sql(),
                        table.mysql_sql()
                    ),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Rolls back, drops the staging table, releases the lock and disconnects.
    async fn finish_abort(&mut self) {
        if let Some(Loading { chunks, mut task }) = self.loading.take() {
            // The statement ends with the rows sent so far, which the rollback undoes.
            drop(chunks);
            match tokio::time::timeout(self.link.timeout, &mut task).await {
                Ok(Ok((conn, _))) => self.conn = Some(conn),
                // Without its connection back, closing it (the task's end) rolls back.
                _ => task.abort(),
            }
        }
        if let Some(mut conn) = self.conn.take() {
            cleanup(&self.link, &mut conn, self.staging.as_ref()).await;
            close(&self.link, conn, &self.lock).await;
        }
    }
}

impl BatchWriter for MysqlWriter {
    async fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        if self.failed {
            return Err(crate::batch::poisoned_writer());
        }
        // A failed write may have sent part of its rows: the writer then only aborts.
        self.failed = true;
        self.write_batch(batch).await?;
        self.failed = false;
        Ok(())
    }

    async fn commit(mut self) -> Result<u64, ConnectorError> {
        if self.failed {
            self.finish_abort().await;
            return Err(crate::batch::poisoned_writer());
        }
        let result = match self.end_load().await {
            Ok(()) => self.finish_commit().await,
            Err(err) => Err(err),
        };
        match result {
            Ok(()) => {
                if let Some(conn) = self.conn.take() {
                    close(&self.link, conn, &self.lock).await;
                }
                Ok(self.written)
            }
            Err(err) => {
                self.finish_abort().await;
                Err(err)
            }
        }
    }

    async fn abort(mut self) {
        self.finish_abort().await;
    }
}

impl MysqlWriter {
    async fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        let schema = batch.schema();
        let matches = schema.fields().len() == self.columns.len()
            && schema
                .fields()
                .iter()
                .zip(&self.columns)
                .all(|(f, c)| f.name() == &c.meta.name && f.data_type() == &c.data_type);
        if !matches {
            return Err(ConnectorError::config(
                "batch",
                "the batch's fields differ from the writer's schema",
            ));
        }
        let cells = batch
            .columns()
            .iter()
            .zip(&self.columns)
            .map(|(array, column)| {
                Cells::new(array.as_ref()).ok_or_else(|| unsupported(&column.meta.name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(load) = &self.load {
            let hex = load.hex.clone();
            for row in 0..batch.num_rows() {
                for (i, (cell, column)) in cells.iter().zip(&self.columns).enumerate() {
                    if i > 0 {
                        self.pending.push(b'\t');
                    }
                    let hexed = hex.get(i).copied().unwrap_or(false);
                    cell.write_text(row, column, hexed, &mut self.pending)
                        .map_err(|why| {
                            ConnectorError::failed(
                                FailureKind::Other,
                                format!("field {}: {why}", column.meta.name),
                            )
                        })?;
                }
                self.pending.push(b'\n');
                self.load_rows += 1;
                if self.pending.len() >= LOAD_CHUNK_BYTES {
                    let full = std::mem::replace(
                        &mut self.pending,
                        Vec::with_capacity(LOAD_CHUNK_BYTES + (LOAD_CHUNK_BYTES >> 3)),
                    );
                    self.load(full).await?;
                }
            }
            self.written += batch.num_rows() as u64;
            return Ok(());
        }
        let mut params: Vec<Value> = Vec::new();
        let mut rows = 0;
        let mut bytes = 0;
        for row in 0..batch.num_rows() {
            for (cell, column) in cells.iter().zip(&self.columns) {
                let value = cell.value(row, column).map_err(|why| {
                    ConnectorError::failed(
                        FailureKind::Other,
                        format!("field {}: {why}", column.meta.name),
                    )
                })?;
                bytes += match &value {
                    Value::Bytes(b) => b.len() + 9,
                    _ => 12,
                };
                params.push(value);
            }
            rows += 1;
            if rows >= self.rows_per_statement || bytes >= self.max_bytes {
                let chunk = std::mem::take(&mut params);
                self.insert(rows, chunk).await?;
                rows = 0;
                bytes = 0;
            }
        }
        if rows > 0 {
            self.insert(rows, params).await?;
        }
        self.written += batch.num_rows() as u64;
        Ok(())
    }
}

impl Drop for MysqlWriter {
    /// A writer dropped without commit or abort: the same cleanup, in the background.
    fn drop(&mut self) {
        let (conn, loading) = (self.conn.take(), self.loading.take());
        if conn.is_none() && loading.is_none() {
            return;
        }
        let link = self.link.clone();
        let staging = self.staging.clone();
        let lock = self.lock.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let conn = match loading {
                    Some(Loading { chunks, mut task }) => {
                        drop(chunks);
                        match tokio::time::timeout(link.timeout, &mut task).await {
                            Ok(Ok((conn, _))) => Some(conn),
                            _ => {
                                task.abort();
                                None
                            }
                        }
                    }
                    None => conn,
                };
                if let Some(mut conn) = conn {
                    cleanup(&link, &mut conn, staging.as_ref()).await;
                    close(&link, conn, &lock).await;
                }
            });
        }
    }
}

fn finished() -> ConnectorError {
    ConnectorError::failed(FailureKind::Other, "the writer is already finished")
}

/// Rolls back and drops the staging table (and a swapped-out old table); failures change nothing
/// (a table left behind is dropped by the next writer of the table).
async fn cleanup(link: &Link, conn: &mut Conn, staging: Option<&Staging>) {
    let _ = link.query(conn, "ROLLBACK").await;
    if let Some(staging) = staging {
        for name in std::iter::once(&staging.name).chain(staging.old.as_ref()) {
            let _ = link
                .query(conn, &format!("DROP TABLE IF EXISTS {}", name.mysql_sql()))
                .await;
        }
    }
}

async fn close(link: &Link, mut conn: Conn, lock: &str) {
    let _ = link
        .timed(conn.exec_drop("DO RELEASE_LOCK(?)", (lock,)))
        .await;
    let _ = tokio::time::timeout(link.timeout, conn.disconnect()).await;
}

/// Drops the staging tables of `table` left by writers that are gone (their lock is free).
async fn drop_stale_staging(
    link: &Link,
    conn: &mut Conn,
    table: &ObjectName,
) -> Result<(), ConnectorError> {
    let prefix: String = table.name.chars().take(STAGING_PREFIX_CHARS).collect();
    let pattern = format!("{}{}%", like_escape(&prefix), like_escape(STAGING_MARKER));
    let names: Vec<String> = link
        .timed(conn.exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE ?",
            (table.namespace.as_str(), pattern),
        ))
        .await?;
    for name in names {
        let Some(token) = staging_token(&name, &prefix) else {
            continue;
        };
        let holder: Option<Option<u64>> = link
            .timed(conn.exec_first("SELECT IS_USED_LOCK(?)", (format!("lockstep_{token}"),)))
            .await?;
        if matches!(holder, Some(None)) {
            tracing::info!("MySQL: dropping a staging table left by an interrupted writer");
            let stale = table.sibling(name);
            link.query(conn, &format!("DROP TABLE IF EXISTS {}", stale.mysql_sql()))
                .await?;
        }
    }
    Ok(())
}

/// The token of a staging name `<prefix>__lockstep_<16 hex>[_old]`.
fn staging_token<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = name.strip_prefix(prefix)?.strip_prefix(STAGING_MARKER)?;
    let token = rest.get(..16)?;
    let tail = rest.get(16..)?;
    let hex = token
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (hex && (tail.is_empty() || tail == "_old")).then_some(token)
}

/// A LIKE pattern matching `text` literally.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A column name MySQL accepts: 1 to 64 characters, no control characters, no trailing space.
fn check_name(field: &str, name: &str) -> Result<(), ConnectorError> {
    let chars = name.chars().count();
    if chars == 0 || chars > 64 || name.ends_with(' ') || name.chars().any(char::is_control) {
        return Err(ConnectorError::config(
            field,
            "a MySQL name has 1 to 64 characters, no control characters and no trailing space",
        ));
    }
    Ok(())
}

/// The columns of the schema, checked.
fn plan_columns(spec: &WriteSpec) -> Result<Vec<Column>, ConnectorError> {
    let mut columns: Vec<Column> = Vec::with_capacity(spec.schema.fields().len());
    if spec.schema.fields().is_empty() {
        return Err(ConnectorError::config("schema", "has no fields"));
    }
    for (i, field) in spec.schema.fields().iter().enumerate() {
        check_name(&format!("schema.fields[{i}]"), field.name())?;
        if columns
            .iter()
            .any(|c| c.meta.name.eq_ignore_ascii_case(field.name()))
        {
            return Err(ConnectorError::config(
                "schema",
                format!(
                    "{} is named twice (MySQL column names ignore case)",
                    field.name()
                ),
            ));
        }
        if !writable(field.data_type()) {
            return Err(unsupported(field.name()));
        }
        if field.metadata().contains_key(keys::PG_BINARY) {
            // PostgreSQL's binary form is for PostgreSQL (`takes_pg_binary` says no here).
            return Err(ConnectorError::config(
                "schema",
                format!(
                    "the field \"{}\" holds PostgreSQL's binary form, which a MySQL writer does not take",
                    field.name()
                ),
            ));
        }
        let meta = field_meta(field);
        let source = field
            .metadata()
            .get(keys::SOURCE)
            .map_or("", String::as_str);
        columns.push(Column {
            single: *field.data_type() == DataType::Float32
                || single_precision(&meta.native, source),
            meta,
            data_type: field.data_type().clone(),
            from_mysql: source == "mysql",
            decimal: None,
        });
    }
    Ok(columns)
}

fn unsupported(field: &str) -> ConnectorError {
    ConnectorError::config(
        "schema",
        format!("the Arrow type of {field} cannot be written to MySQL"),
    )
}

fn writable(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::FixedSizeBinary(_)
            | DataType::Date32
            | DataType::Date64
            | DataType::Time32(TimeUnit::Second | TimeUnit::Millisecond)
            | DataType::Time64(TimeUnit::Microsecond | TimeUnit::Nanosecond)
            | DataType::Timestamp(..)
    )
}

/// The key of created tables: the upsert key, else the fields marked as primary key.
fn key_fields(spec: &WriteSpec, columns: &[Column]) -> Result<Vec<String>, ConnectorError> {
    match &spec.mode {
        WriteMode::Upsert { key } => {
            if key.is_empty() {
                return Err(ConnectorError::config(
                    "mode.key",
                    "name at least one key field",
                ));
            }
            for name in key {
                if !columns.iter().any(|c| &c.meta.name == name) {
                    return Err(ConnectorError::config(
                        "mode.key",
                        format!("{name} is not a field of the schema"),
                    ));
                }
            }
            Ok(key.clone())
        }
        _ => Ok(columns
            .iter()
            .filter(|c| c.meta.primary_key)
            .map(|c| c.meta.name.clone())
            .collect()),
    }
}

fn same_names<'a>(a: impl Iterator<Item = &'a str>, b: impl Iterator<Item = &'a str>) -> bool {
    let mut a: Vec<String> = a.map(str::to_lowercase).collect();
    let mut b: Vec<String> = b.map(str::to_lowercase).collect();
    a.sort();
    b.sort();
    a == b
}

/// Notes the DECIMAL(p, s) of existing destination columns.
fn destination_decimals(columns: &mut [Column], destination: &[FieldMeta]) {
    for column in columns {
        column.decimal = destination
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(&column.meta.name))
            .and_then(|f| decimal_spec(&f.native));
    }
}

/// The table has a primary key or a unique index on exactly `key` (in any order).
async fn check_unique_key(
    link: &Link,
    conn: &mut Conn,
    table: &ObjectName,
    shown: &str,
    key: &[String],
) -> Result<(), ConnectorError> {
    let rows: Vec<(String, i64, Option<String>)> = link
        .timed(conn.exec(
            "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
             ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            (table.namespace.as_str(), table.name.as_str()),
        ))
        .await?;
    let mut indexes: Vec<(String, Vec<String>)> = Vec::new();
    for (index, non_unique, column) in rows {
        if non_unique != 0 {
            continue;
        }
        let column = column.unwrap_or_default();
        match indexes.last_mut() {
            Some((name, columns)) if *name == index => columns.push(column),
            _ => indexes.push((index, vec![column])),
        }
    }
    let found = indexes.iter().any(|(_, columns)| {
        same_names(
            columns.iter().map(String::as_str),
            key.iter().map(String::as_str),
        )
    });
    if found {
        Ok(())
    } else {
        Err(ConnectorError::config(
            "mode.key",
            format!(
                "the table {shown} has no primary key or unique index on exactly {}",
                key.join(", ")
            ),
        ))
    }
}

/// `CREATE TABLE` for the schema; notes each column's DECIMAL(p, s).
fn create_table_sql(
    name: &ObjectName,
    columns: &mut [Column],
    key: &[String],
) -> Result<String, ConnectorError> {
    let mut types = Vec::with_capacity(columns.len());
    for column in columns.iter() {
        types.push(column_type(column, key.contains(&column.meta.name))?);
    }
    fit_row_size(&mut types);
    let mut definitions = Vec::with_capacity(columns.len() + 1);
    for (column, sql_type) in columns.iter_mut().zip(types) {
        let in_key = key.contains(&column.meta.name);
        column.decimal = decimal_spec(&sql_type);
        let null = if column.meta.nullable && !in_key {
            "NULL"
        } else {
            "NOT NULL"
        };
        definitions.push(format!("{} {sql_type} {null}", quote(&column.meta.name)));
    }
    if !key.is_empty() {
        let key: Vec<String> = key.iter().map(|k| quote(k)).collect();
        definitions.push(format!("PRIMARY KEY ({})", key.join(", ")));
    }
    Ok(format!(
        "CREATE TABLE {} ({}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        name.mysql_sql(),
        definitions.join(", ")
    ))
}

/// The column type for a field (see the table in the module documentation).
fn column_type(column: &Column, in_key: bool) -> Result<String, ConnectorError> {
    let meta = &column.meta;
    if meta.field_type == FieldType::Json {
        if in_key {
            return Err(ConnectorError::config(
                "schema",
                format!("{} is JSON, which cannot be part of a key", meta.name),
            ));
        }
        return Ok("JSON".to_owned());
    }
    if column.from_mysql
        && let Some((native, base)) = safe_native(&meta.native)
    {
        let long = matches!(
            base.as_str(),
            "tinytext"
                | "text"
                | "mediumtext"
                | "longtext"
                | "tinyblob"
                | "blob"
                | "mediumblob"
                | "longblob"
        );
        if !(in_key && long) {
            return Ok(native);
        }
    }
    Ok(match meta.field_type {
        FieldType::Boolean => "TINYINT(1)".to_owned(),
        FieldType::Integer if column.data_type == DataType::UInt64 => "BIGINT UNSIGNED".to_owned(),
        // Keep a narrower source integer's width (PostgreSQL `integer`, `smallint`).
        FieldType::Integer => match meta.native.trim().to_ascii_lowercase().as_str() {
            "smallint" | "int2" => "SMALLINT".to_owned(),
            "integer" | "int" | "int4" => "INT".to_owned(),
            _ => "BIGINT".to_owned(),
        },
        FieldType::Float if column.single => "FLOAT".to_owned(),
        FieldType::Float => "DOUBLE".to_owned(),
        FieldType::Decimal => decimal_type(column),
        FieldType::String => text_column(text_type(&meta.native), in_key),
        FieldType::Other | FieldType::Json => if in_key {
            "VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        } else {
            "LONGTEXT"
        }
        .to_owned(),
        FieldType::Binary => if in_key { "VARBINARY(255)" } else { "LONGBLOB" }.to_owned(),
        FieldType::Date => "DATE".to_owned(),
        FieldType::Time => "TIME(6)".to_owned(),
        FieldType::Timestamp | FieldType::TimestampTz => "DATETIME(6)".to_owned(),
        FieldType::Uuid => "CHAR(36)".to_owned(),
    })
}

/// A text column of the declared type: CHAR(n) and VARCHAR(n) as declared (CHAR up to 255),
/// other text LONGTEXT; in a key a binary-collated VARCHAR of at most 255 characters (TEXT cannot
/// be a key, and a key holds at most 3072 bytes).
fn text_column(declared: TextType, in_key: bool) -> String {
    const KEY_COLLATION: &str = "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin";
    match (declared, in_key) {
        (TextType::Char(n), false) if n <= 255 => format!("CHAR({n})"),
        (TextType::Char(n), true) if n <= 255 => format!("CHAR({n}) {KEY_COLLATION}"),
        (TextType::Char(n) | TextType::Varchar(n), false) => {
            if n <= MAX_VARCHAR_CHARS {
                format!("VARCHAR({n})")
            } else {
                long_text(n)
            }
        }
        (TextType::Char(n) | TextType::Varchar(n), true) => {
            format!("VARCHAR({}) {KEY_COLLATION}", n.min(255))
        }
        (TextType::Text, false) => "LONGTEXT".to_owned(),
        (TextType::Text, true) => format!("VARCHAR(255) {KEY_COLLATION}"),
    }
}

/// The most characters of a utf8mb4 VARCHAR (65,535 bytes a row, 4 bytes a character).
const MAX_VARCHAR_CHARS: u32 = 16_383;

/// The smallest TEXT type that holds `n` characters of utf8mb4.
fn long_text(n: u32) -> String {
    let bytes = u64::from(n) * 4;
    if bytes <= 65_535 {
        "TEXT"
    } else if bytes <= 16_777_215 {
        "MEDIUMTEXT"
    } else {
        "LONGTEXT"
    }
    .to_owned()
}

/// MySQL refuses a table whose row can exceed 65,535 bytes, counting each VARCHAR(n) at 4n + 2
/// (utf8mb4): while the row is too large, the longest VARCHAR becomes the TEXT type that holds it
/// (stored off the row). Other columns are counted at 32 bytes, more than any of them takes.
fn fit_row_size(types: &mut [String]) {
    const ROW_BYTES: u64 = 65_535;
    let varchar = |t: &str| -> Option<u32> {
        let rest = t.strip_prefix("VARCHAR(")?;
        rest.get(..rest.find(')')?)?.parse().ok()
    };
    let row_bytes = |types: &[String]| -> u64 {
        types
            .iter()
            .map(|t| match varchar(t) {
                Some(n) => u64::from(n) * 4 + 2,
                None => match t.strip_prefix("CHAR(").and_then(|r| r.split(')').next()) {
                    Some(n) => n.parse::<u64>().map_or(32, |n| n * 4),
                    None => 32,
                },
            })
            .sum()
    };
    while row_bytes(types) > ROW_BYTES {
        // Key columns (binary-collated) stay: they are at most 255 characters.
        let longest = types
            .iter_mut()
            .filter(|t| !t.contains("utf8mb4_bin"))
            .filter_map(|t| varchar(t).map(|n| (n, t)))
            .max_by_key(|(n, _)| *n);
        match longest {
            Some((n, t)) => *t = long_text(n),
            None => break,
        }
    }
}

/// DECIMAL(p, s) for a decimal field: Decimal128's, else a native `numeric(p,s)`'s when MySQL can
/// hold it (p ≤ 65, s ≤ 30), else DECIMAL(65,30) (values that do not fit are refused).
fn decimal_type(column: &Column) -> String {
    let (p, s) = match column.data_type {
        DataType::Decimal128(p, s) if s < 0 => (u32::from(p) + u32::from(s.unsigned_abs()), 0),
        DataType::Decimal128(p, s) => (u32::from(p), u32::from(s.unsigned_abs())),
        // Only an explicit precision: a bare `numeric` is unconstrained in PostgreSQL.
        _ if column.meta.native.contains('(') => {
            decimal_spec(&column.meta.native).unwrap_or((65, 30))
        }
        _ => (65, 30),
    };
    if p <= 65 && s <= 30 {
        format!("DECIMAL({},{s})", p.max(s).max(1))
    } else {
        "DECIMAL(65,30)".to_owned()
    }
}

/// `decimal(12,2)`, `numeric(5)`, `DECIMAL(65,30) unsigned`, `decimal` → (precision, scale).
fn decimal_spec(native: &str) -> Option<(u32, u32)> {
    let lower = native.trim().to_ascii_lowercase();
    let base_len = lower
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(lower.len());
    let (base, rest) = lower.split_at(base_len);
    if !matches!(base, "decimal" | "numeric" | "dec" | "fixed") {
        return None;
    }
    let rest = rest.trim_start();
    let Some(args) = rest.strip_prefix('(') else {
        return Some((10, 0));
    };
    let inner = args.get(..args.find(')')?)?;
    let mut parts = inner.split(',').map(str::trim);
    let p: u32 = parts.next()?.parse().ok()?;
    let s: u32 = match parts.next() {
        Some(s) => s.parse().ok()?,
        None => 0,
    };
    Some((p, s))
}

/// Decimal text fits DECIMAL(p, s) without rounding.
fn decimal_fits(text: &str, (p, s): (u32, u32)) -> bool {
    if !is_decimal_text(text) {
        return false;
    }
    let digits = text.trim_start_matches(['-', '+']);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    int.len() as u64 <= u64::from(p.saturating_sub(s)) && frac.len() as u64 <= u64::from(s)
}

/// A MySQL COLUMN_TYPE that is safe to put into DDL as it is, lowercased, with its base type:
/// a known base type, optional numeric arguments (or plain quoted `enum`/`set` members), and
/// `unsigned`/`zerofill`.
fn safe_native(native: &str) -> Option<(String, String)> {
    const BASES: &[&str] = &[
        "tinyint",
        "smallint",
        "mediumint",
        "int",
        "integer",
        "bigint",
        "decimal",
        "numeric",
        "float",
        "double",
        "real",
        "bit",
        "char",
        "varchar",
        "binary",
        "varbinary",
        "tinytext",
        "text",
        "mediumtext",
        "longtext",
        "tinyblob",
        "blob",
        "mediumblob",
        "longblob",
        "date",
        "time",
        "datetime",
        "timestamp",
        "year",
        "enum",
        "set",
    ];
    let lower = native.trim().to_ascii_lowercase();
    let base_len = lower
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(lower.len());
    let (base, mut rest) = lower.split_at(base_len);
    if !BASES.contains(&base) {
        return None;
    }
    if let Some(args) = rest.strip_prefix('(') {
        let close = args.find(')')?;
        let inner = args.get(..close)?;
        let ok = if matches!(base, "enum" | "set") {
            inner.split(',').all(|member| {
                member.len() >= 2
                    && member.starts_with('\'')
                    && member.ends_with('\'')
                    && member.get(1..member.len() - 1).is_some_and(|m| {
                        m.bytes().all(|b| {
                            b.is_ascii_alphanumeric() || matches!(b, b' ' | b'_' | b'-' | b'.')
                        })
                    })
            })
        } else {
            let mut parts = inner.split(',');
            let count = inner.split(',').count();
            count <= 2
                && parts
                    .all(|p| !p.trim().is_empty() && p.trim().bytes().all(|b| b.is_ascii_digit()))
        };
        if !ok {
            return None;
        }
        rest = args.get(close + 1..)?;
    } else if matches!(base, "enum" | "set") {
        return None;
    }
    for word in rest.split(' ').filter(|w| !w.is_empty()) {
        if !matches!(word, "unsigned" | "zerofill") {
            return None;
        }
    }
    Some((lower.clone(), base.to_owned()))
}

/// One column of a batch, typed.
enum Cells<'a> {
    Boolean(&'a BooleanArray),
    Int8(&'a PrimitiveArray<Int8Type>),
    Int16(&'a PrimitiveArray<Int16Type>),
    Int32(&'a PrimitiveArray<Int32Type>),
    Int64(&'a PrimitiveArray<Int64Type>),
    UInt8(&'a PrimitiveArray<UInt8Type>),
    UInt16(&'a PrimitiveArray<UInt16Type>),
    UInt32(&'a PrimitiveArray<UInt32Type>),
    UInt64(&'a PrimitiveArray<UInt64Type>),
    Float32(&'a PrimitiveArray<Float32Type>),
    Float64(&'a PrimitiveArray<Float64Type>),
    Decimal(&'a PrimitiveArray<Decimal128Type>, i8),
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Binary(&'a BinaryArray),
    LargeBinary(&'a LargeBinaryArray),
    Fixed(&'a FixedSizeBinaryArray),
    Date32(&'a PrimitiveArray<Date32Type>),
    Date64(&'a PrimitiveArray<Date64Type>),
    Time32S(&'a PrimitiveArray<Time32SecondType>),
    Time32Ms(&'a PrimitiveArray<Time32MillisecondType>),
    Time64Us(&'a PrimitiveArray<Time64MicrosecondType>),
    Time64Ns(&'a PrimitiveArray<Time64NanosecondType>),
    TsS(&'a PrimitiveArray<TimestampSecondType>),
    TsMs(&'a PrimitiveArray<TimestampMillisecondType>),
    TsUs(&'a PrimitiveArray<TimestampMicrosecondType>),
    TsNs(&'a PrimitiveArray<TimestampNanosecondType>),
}

impl<'a> Cells<'a> {
    fn new(array: &'a dyn Array) -> Option<Cells<'a>> {
        Some(match array.data_type() {
            DataType::Boolean => Cells::Boolean(array.as_boolean_opt()?),
            DataType::Int8 => Cells::Int8(array.as_primitive_opt()?),
            DataType::Int16 => Cells::Int16(array.as_primitive_opt()?),
            DataType::Int32 => Cells::Int32(array.as_primitive_opt()?),
            DataType::Int64 => Cells::Int64(array.as_primitive_opt()?),
            DataType::UInt8 => Cells::UInt8(array.as_primitive_opt()?),
            DataType::UInt16 => Cells::UInt16(array.as_primitive_opt()?),
            DataType::UInt32 => Cells::UInt32(array.as_primitive_opt()?),
            DataType::UInt64 => Cells::UInt64(array.as_primitive_opt()?),
            DataType::Float32 => Cells::Float32(array.as_primitive_opt()?),
            DataType::Float64 => Cells::Float64(array.as_primitive_opt()?),
            DataType::Decimal128(_, s) => Cells::Decimal(array.as_primitive_opt()?, *s),
            DataType::Utf8 => Cells::Utf8(array.as_string_opt()?),
            DataType::LargeUtf8 => Cells::LargeUtf8(array.as_string_opt()?),
            DataType::Binary => Cells::Binary(array.as_binary_opt()?),
            DataType::LargeBinary => Cells::LargeBinary(array.as_binary_opt()?),
            DataType::FixedSizeBinary(_) => Cells::Fixed(array.as_fixed_size_binary_opt()?),
            DataType::Date32 => Cells::Date32(array.as_primitive_opt()?),
            DataType::Date64 => Cells::Date64(array.as_primitive_opt()?),
            DataType::Time32(TimeUnit::Second) => Cells::Time32S(array.as_primitive_opt()?),
            DataType::Time32(TimeUnit::Millisecond) => Cells::Time32Ms(array.as_primitive_opt()?),
            DataType::Time64(TimeUnit::Microsecond) => Cells::Time64Us(array.as_primitive_opt()?),
            DataType::Time64(TimeUnit::Nanosecond) => Cells::Time64Ns(array.as_primitive_opt()?),
            DataType::Timestamp(TimeUnit::Second, _) => Cells::TsS(array.as_primitive_opt()?),
            DataType::Timestamp(TimeUnit::Millisecond, _) => Cells::TsMs(array.as_primitive_opt()?),
            DataType::Timestamp(TimeUnit::Microsecond, _) => Cells::TsUs(array.as_primitive_opt()?),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => Cells::TsNs(array.as_primitive_opt()?),
            _ => return None,
        })
    }

    fn is_null(&self, row: usize) -> bool {
        match self {
            Cells::Boolean(a) => a.is_null(row),
            Cells::Int8(a) => a.is_null(row),
            Cells::Int16(a) => a.is_null(row),
            Cells::Int32(a) => a.is_null(row),
            Cells::Int64(a) => a.is_null(row),
            Cells::UInt8(a) => a.is_null(row),
            Cells::UInt16(a) => a.is_null(row),
            Cells::UInt32(a) => a.is_null(row),
            Cells::UInt64(a) => a.is_null(row),
            Cells::Float32(a) => a.is_null(row),
            Cells::Float64(a) => a.is_null(row),
            Cells::Decimal(a, _) => a.is_null(row),
            Cells::Utf8(a) => a.is_null(row),
            Cells::LargeUtf8(a) => a.is_null(row),
            Cells::Binary(a) => a.is_null(row),
            Cells::LargeBinary(a) => a.is_null(row),
            Cells::Fixed(a) => a.is_null(row),
            Cells::Date32(a) => a.is_null(row),
            Cells::Date64(a) => a.is_null(row),
            Cells::Time32S(a) => a.is_null(row),
            Cells::Time32Ms(a) => a.is_null(row),
            Cells::Time64Us(a) => a.is_null(row),
            Cells::Time64Ns(a) => a.is_null(row),
            Cells::TsS(a) => a.is_null(row),
            Cells::TsMs(a) => a.is_null(row),
            Cells::TsUs(a) => a.is_null(row),
            Cells::TsNs(a) => a.is_null(row),
        }
    }

    /// The value of `row` as a MySQL parameter; the error says why it cannot be (never the value).
    /// Appends the value at `row` as `LOAD DATA` text (see [`push_value`]): the same checks and
    /// the same value as [`Cells::value`], text written in place.
    fn write_text(
        &self,
        row: usize,
        column: &Column,
        hex: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        if self.is_null(row) {
            out.extend_from_slice(b"\\N");
            return Ok(());
        }
        match self {
            Cells::Utf8(a) if !hex && !column.checks_decimals() => {
                push_escaped(out, a.value(row).as_bytes());
            }
            Cells::Int64(a) => {
                out.extend_from_slice(itoa::Buffer::new().format(a.value(row)).as_bytes());
            }
            Cells::Int32(a) => {
                out.extend_from_slice(itoa::Buffer::new().format(a.value(row)).as_bytes());
            }
            Cells::Boolean(a) => out.push(if a.value(row) { b'1' } else { b'0' }),
            _ => push_value(out, &self.value(row, column)?, hex),
        }
        Ok(())
    }

    fn value(&self, row: usize, column: &Column) -> Result<Value, &'static str> {
        if self.is_null(row) {
            return Ok(Value::NULL);
        }
        Ok(match self {
            Cells::Boolean(a) => Value::Int(i64::from(a.value(row))),
            Cells::Int8(a) => Value::Int(i64::from(a.value(row))),
            Cells::Int16(a) => Value::Int(i64::from(a.value(row))),
            Cells::Int32(a) => Value::Int(i64::from(a.value(row))),
            Cells::Int64(a) => Value::Int(a.value(row)),
            Cells::UInt8(a) => Value::UInt(u64::from(a.value(row))),
            Cells::UInt16(a) => Value::UInt(u64::from(a.value(row))),
            Cells::UInt32(a) => Value::UInt(u64::from(a.value(row))),
            Cells::UInt64(a) => Value::UInt(a.value(row)),
            // The shortest text that reads back as the same f32: 0.1, not 0.10000000149011612.
            Cells::Float32(a) => {
                let v = a.value(row);
                finite(v.to_string().parse::<f64>().unwrap_or(f64::from(v)))?
            }
            Cells::Float64(a) => finite(a.value(row))?,
            Cells::Decimal(a, scale) => {
                decimal_value(format_decimal(a.value(row), *scale), column)?
            }
            Cells::Utf8(a) => text_value(a.value(row), column)?,
            Cells::LargeUtf8(a) => text_value(a.value(row), column)?,
            Cells::Binary(a) => Value::Bytes(a.value(row).to_vec()),
            Cells::LargeBinary(a) => Value::Bytes(a.value(row).to_vec()),
            Cells::Fixed(a) => {
                let bytes = a.value(row);
                match uuid::Uuid::from_slice(bytes) {
                    Ok(uuid) if column.meta.field_type == FieldType::Uuid => {
                        Value::Bytes(uuid.hyphenated().to_string().into_bytes())
                    }
                    _ => Value::Bytes(bytes.to_vec()),
                }
            }
            Cells::Date32(a) => date_value(i64::from(a.value(row)))?,
            Cells::Date64(a) => date_value(a.value(row).div_euclid(86_400_000))?,
            Cells::Time32S(a) => time_value(i64::from(a.value(row)) * 1_000_000),
            Cells::Time32Ms(a) => time_value(i64::from(a.value(row)) * 1_000),
            Cells::Time64Us(a) => time_value(a.value(row)),
            Cells::Time64Ns(a) => time_value(whole_micros(a.value(row))?),
            Cells::TsS(a) => {
                timestamp_value(a.value(row).checked_mul(1_000_000).ok_or(OUT_OF_RANGE)?)?
            }
            Cells::TsMs(a) => {
                timestamp_value(a.value(row).checked_mul(1_000).ok_or(OUT_OF_RANGE)?)?
            }
            Cells::TsUs(a) => timestamp_value(a.value(row))?,
            Cells::TsNs(a) => timestamp_value(whole_micros(a.value(row))?)?,
        })
    }
}

const OUT_OF_RANGE: &str = "a date or time outside the years 0 to 9999";

fn finite(v: f64) -> Result<Value, &'static str> {
    if v.is_finite() {
        Ok(Value::Double(v))
    } else {
        Err("NaN or an infinity, which MySQL cannot store")
    }
}

fn whole_micros(nanos: i64) -> Result<i64, &'static str> {
    if nanos % 1000 == 0 {
        Ok(nanos / 1000)
    } else {
        Err("a time with nanoseconds, which MySQL (microseconds) would cut")
    }
}

fn decimal_value(text: String, column: &Column) -> Result<Value, &'static str> {
    if let Some(spec) = column.decimal
        && !decimal_fits(&text, spec)
    {
        return Err("a decimal with more digits than its DECIMAL column holds");
    }
    Ok(Value::Bytes(text.into_bytes()))
}

fn text_value(text: &str, column: &Column) -> Result<Value, &'static str> {
    if column.meta.field_type == FieldType::Decimal || column.decimal.is_some() {
        if !is_decimal_text(text) {
            return Err("text that is not a decimal number in a decimal field");
        }
        return decimal_value(text.to_owned(), column);
    }
    Ok(Value::Bytes(text.as_bytes().to_vec()))
}

fn mysql_date(date: time::Date, clock: time::Time) -> Result<Value, &'static str> {
    let year = u16::try_from(date.year())
        .ok()
        .filter(|y| *y <= 9999)
        .ok_or(OUT_OF_RANGE)?;
    Ok(Value::Date(
        year,
        u8::from(date.month()),
        date.day(),
        clock.hour(),
        clock.minute(),
        clock.second(),
        clock.microsecond(),
    ))
}

fn date_value(days: i64) -> Result<Value, &'static str> {
    let julian = days
        .checked_add(UNIX_EPOCH_JULIAN_DAY)
        .and_then(|d| i32::try_from(d).ok())
        .ok_or(OUT_OF_RANGE)?;
    let date = time::Date::from_julian_day(julian).map_err(|_| OUT_OF_RANGE)?;
    mysql_date(date, time::Time::MIDNIGHT)
}

fn timestamp_value(micros: i64) -> Result<Value, &'static str> {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let of_day = micros.rem_euclid(MICROS_PER_DAY);
    let julian = days
        .checked_add(UNIX_EPOCH_JULIAN_DAY)
        .and_then(|d| i32::try_from(d).ok())
        .ok_or(OUT_OF_RANGE)?;
    let date = time::Date::from_julian_day(julian).map_err(|_| OUT_OF_RANGE)?;
    let (h, m, s, us) = split_clock(of_day);
    let clock = time::Time::from_hms_micro(h, m, s, us).map_err(|_| OUT_OF_RANGE)?;
    mysql_date(date, clock)
}

/// Microseconds of a day (0 ≤ micros < 24 h) as hours, minutes, seconds, microseconds.
fn split_clock(micros: i64) -> (u8, u8, u8, u32) {
    let secs = micros / 1_000_000;
    let us = u32::try_from(micros % 1_000_000).unwrap_or(0);
    let h = u8::try_from(secs / 3600).unwrap_or(0);
    let m = u8::try_from(secs / 60 % 60).unwrap_or(0);
    let s = u8::try_from(secs % 60).unwrap_or(0);
    (h, m, s, us)
}

/// A time (of day, or a duration) as MySQL's TIME.
fn time_value(micros: i64) -> Value {
    let negative = micros < 0;
    let magnitude = micros.unsigned_abs();
    let days = u32::try_from(magnitude / MICROS_PER_DAY.unsigned_abs()).unwrap_or(u32::MAX);
    let of_day = i64::try_from(magnitude % MICROS_PER_DAY.unsigned_abs()).unwrap_or(0);
    let (h, m, s, us) = split_clock(of_day);
    Value::Time(negative, days, h, m, s, us)
}

/// The `LOAD DATA` statement into `table` for `columns`: tab-separated fields, rows ended by a
/// newline, `\` escaping (`\N` a NULL), UTF-8; binary columns in hexadecimal through a variable.
fn load_data_statement(table: &ObjectName, columns: &[Column]) -> LoadData {
    let hex: Vec<bool> = columns.iter().map(Column::is_binary).collect();
    let mut targets = Vec::with_capacity(columns.len());
    let mut sets = Vec::new();
    for (i, (column, hexed)) in columns.iter().zip(&hex).enumerate() {
        if *hexed {
            targets.push(format!("@lockstep_{i}"));
            sets.push(format!(
                "{} = UNHEX(@lockstep_{i})",
                quote(&column.meta.name)
            ));
        } else {
            targets.push(quote(&column.meta.name));
        }
    }
    let mut statement = format!(
        "LOAD DATA LOCAL INFILE 'lockstep' INTO TABLE {} CHARACTER SET utf8mb4 \
         FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({})",
        table.mysql_sql(),
        targets.join(", ")
    );
    if !sets.is_empty() {
        statement.push_str(" SET ");
        statement.push_str(&sets.join(", "));
    }
    LoadData { statement, hex }
}

/// Appends `bytes` escaped for `LOAD DATA … ESCAPED BY '\\'`.
fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            0 => b"\\0",
            _ => continue,
        };
        out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
}

/// Appends the `LOAD DATA` text of a value as the INSERT path would bind it.
fn push_value(out: &mut Vec<u8>, value: &Value, hex: bool) {
    use std::io::Write;
    match value {
        Value::NULL => out.extend_from_slice(b"\\N"),
        Value::Bytes(b) if hex => {
            for byte in b {
                let _ = write!(out, "{byte:02X}");
            }
        }
        Value::Bytes(b) => push_escaped(out, b),
        Value::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        Value::UInt(u) => out.extend_from_slice(itoa::Buffer::new().format(*u).as_bytes()),
        Value::Float(f) => {
            let _ = write!(out, "{f}");
        }
        Value::Double(f) => {
            let _ = write!(out, "{f}");
        }
        Value::Date(y, mo, d, h, mi, s, us) => {
            let _ = write!(out, "{y:04}-{mo:02}-{d:02}");
            if (*h, *mi, *s, *us) != (0, 0, 0, 0) {
                let _ = write!(out, " {h:02}:{mi:02}:{s:02}.{us:06}");
            }
        }
        Value::Time(negative, days, h, mi, s, us) => {
            let hours = u64::from(*days) * 24 + u64::from(*h);
            let sign = if *negative { "-" } else { "" };
            let _ = write!(out, "{sign}{hours:02}:{mi:02}:{s:02}.{us:06}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn load_data_text_is_escaped_exactly() {
        let mut out = Vec::new();
        push_escaped(&mut out, b"a\tb\nc\\d\re\0f\\N");
        assert_eq!(out, b"a\\tb\\nc\\\\d\\re\\0f\\\\N".to_vec());
        let mut out = Vec::new();
        push_value(&mut out, &Value::NULL, false);
        out.push(b'|');
        push_value(&mut out, &Value::Bytes(b"\\N".to_vec()), false);
        out.push(b'|');
        push_value(&mut out, &Value::Bytes(vec![0, 0x09, 0xff]), true);
        out.push(b'|');
        push_value(&mut out, &Value::Date(2024, 2, 29, 0, 0, 0, 0), false);
        out.push(b'|');
        push_value(&mut out, &Value::Date(2024, 2, 29, 23, 5, 9, 7), false);
        out.push(b'|');
        push_value(&mut out, &Value::Time(true, 1, 2, 3, 4, 5), false);
        out.push(b'|');
        push_value(&mut out, &Value::Double(0.1), false);
        out.push(b'|');
        push_value(&mut out, &Value::Int(i64::MIN), false);
        out.push(b'|');
        push_value(&mut out, &Value::UInt(u64::MAX), false);
        out.push(b'|');
        push_value(&mut out, &Value::Int(0), false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\\N|\\\\N|0009FF|2024-02-29|2024-02-29 23:05:09.000007|-26:03:04.000005|0.1|\
             -9223372036854775808|18446744073709551615|0"
        );
    }

    #[test]
    fn native_types_are_checked() {
        assert_eq!(
            safe_native("decimal(20,6)").map(|n| n.0),
            Some("decimal(20,6)".to_owned())
        );
        assert_eq!(
            safe_native("bigint(20) unsigned").map(|n| n.1),
            Some("bigint".to_owned())
        );
        assert!(safe_native("enum('a','b c')").is_some());
        assert!(safe_native("enum('a'') ; DROP TABLE x; --')").is_none());
        assert!(safe_native("int; DROP TABLE x").is_none());
        assert!(safe_native("varchar(10) character set latin1").is_none());
        assert!(safe_native("geometry").is_none());
        assert!(safe_native("uuid").is_none());
        assert!(safe_native("decimal(1,2,3)").is_none());
    }

    #[test]
    fn decimals_fit_or_not() {
        assert_eq!(decimal_spec("decimal(12,2)"), Some((12, 2)));
        assert_eq!(decimal_spec("DECIMAL(65,30)"), Some((65, 30)));
        assert_eq!(decimal_spec("numeric"), Some((10, 0)));
        assert_eq!(decimal_spec("decimal(5) unsigned"), Some((5, 0)));
        assert_eq!(decimal_spec("double"), None);
        assert!(decimal_fits("1234567890.12", (12, 2)));
        assert!(decimal_fits("-0.10", (12, 1)));
        assert!(!decimal_fits("0.125", (12, 2)));
        assert!(!decimal_fits("12345678901", (12, 2)));
        assert!(!decimal_fits("1e3", (12, 2)));
    }

    #[test]
    fn staging_names_are_recognized() {
        assert_eq!(
            staging_token("items__lockstep_0123456789abcdef", "items"),
            Some("0123456789abcdef")
        );
        assert_eq!(
            staging_token("items__lockstep_0123456789abcdef_old", "items"),
            Some("0123456789abcdef")
        );
        assert_eq!(
            staging_token("items__lockstep_0123456789abcdeg", "items"),
            None
        );
        assert_eq!(staging_token("items__lockstep_0123", "items"), None);
        assert_eq!(
            staging_token("other__lockstep_0123456789abcdef", "items"),
            None
        );
        assert_eq!(like_escape("a_b%c\\"), "a\\_b\\%c\\\\");
    }

    #[test]
    fn temporal_values() {
        assert_eq!(
            timestamp_value(-1).unwrap(),
            Value::Date(1969, 12, 31, 23, 59, 59, 999_999)
        );
        assert_eq!(date_value(0).unwrap(), Value::Date(1970, 1, 1, 0, 0, 0, 0));
        assert!(date_value(-800_000).is_err());
        assert_eq!(
            time_value(-(25 * 3600 * 1_000_000 + 1)),
            Value::Time(true, 1, 1, 0, 0, 1)
        );
        assert!(whole_micros(1_500).is_err());
    }
}
