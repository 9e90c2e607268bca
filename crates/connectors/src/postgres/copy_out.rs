//! Bulk reads: `COPY (SELECT …) TO STDOUT (FORMAT binary)`, decoded straight into Arrow builders.
//!
//! The object is resolved against the catalog first (as samples are), so only names the catalog
//! lists reach SQL, quoted. Columns the decoder reads in PostgreSQL's binary form are selected as
//! they are; every other type is cast to `text` in the select list, so its Arrow `Utf8` holds
//! PostgreSQL's own spelling of the value (arrays, intervals, enums, …).
//!
//! The stream is backed by the connection: it decodes as the server sends, one batch at a time
//! (at most `batch_rows` rows and about [`BATCH_BYTES`] of values), and the driver's bounded
//! channel holds the server back while the consumer is busy, so memory stays bounded whatever the
//! size of the table.

use super::{Column, PostgresConnector, map_error, numeric, quote};
use crate::batch::{BatchSource, BatchStream, ReadSpec, SchemaRef, arrow_field, keys, widen_f32};
use crate::{ConnectionKind, ConnectorError, FailureKind};
use arrow_array::Array;
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, FixedSizeBinaryBuilder,
    Float32Builder, Float64Builder, Int64Builder, StringBuilder, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{DataType, Field, Schema};
use futures_util::Stream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tokio_postgres::{Client, CopyOutStream};

/// A batch ends early once its values take about this many bytes (wide rows).
pub(super) const BATCH_BYTES: usize = 16 << 20;

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
pub(super) const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
pub(super) const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The binary COPY signature and header (no flags, no extension).
pub(super) const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The custom setting that carries an incremental read's last value to the server.
const CURSOR_SETTING: &str = "lockstep.cursor_after";

/// The cursor column's type without its modifier (`numeric`, not `numeric(12,2)`: a cast to the
/// modifier would round the bound) — a name `format_type` prints, so valid SQL — and, in the same
/// round trip, the last value stored in the session's custom setting.
const CURSOR_SQL: &str = r"
SELECT pg_catalog.format_type(a.atttypid, NULL),
       pg_catalog.set_config('lockstep.cursor_after', $4::text, false)
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1::text AND c.relname = $2::text AND a.attname = $3::text
  AND a.attnum > 0 AND NOT a.attisdropped
";

impl BatchSource for PostgresConnector {
    async fn read(&self, spec: ReadSpec) -> Result<(SchemaRef, BatchStream), ConnectorError> {
        self.read_batches(spec, false).await
    }

    async fn read_pg_binary(
        &self,
        spec: ReadSpec,
    ) -> Result<(SchemaRef, BatchStream), ConnectorError> {
        self.read_batches(spec, true).await
    }
}

impl PostgresConnector {
    /// A bulk read; `pg_binary`: the columns [`Decoder::passes_exactly`] are answered in
    /// PostgreSQL's binary form (see [`BatchSource::read_pg_binary`]), except the cursor.
    async fn read_batches(
        &self,
        spec: ReadSpec,
        pg_binary: bool,
    ) -> Result<(SchemaRef, BatchStream), ConnectorError> {
        let client = self.connect().await?;
        // Only a name the catalog lists is read; the identifiers quoted are the catalog's.
        let columns = self.catalog(&client, Some(&spec.object)).await?;
        let (schema_name, table_name) = one_object(&columns)?;
        let selected: Vec<&Column> = match &spec.fields {
            None => columns.iter().collect(),
            Some(names) => {
                if names.is_empty() {
                    return Err(ConnectorError::config("fields", "lists no field"));
                }
                let mut selected = Vec::with_capacity(names.len());
                for name in names {
                    let column = columns.iter().find(|c| &c.name == name).ok_or_else(|| {
                        ConnectorError::config(
                            "fields",
                            format!("there is no field \"{name}\" in {}", spec.object),
                        )
                    })?;
                    if selected.iter().any(|c: &&Column| c.name == *name) {
                        return Err(ConnectorError::config(
                            "fields",
                            format!("the field \"{name}\" is listed twice"),
                        ));
                    }
                    selected.push(column);
                }
                selected
            }
        };

        let mut fields: Vec<_> = selected
            .iter()
            .map(|c| arrow_field(&c.field(), ConnectionKind::Postgres))
            .collect();
        let mut decoders = Vec::with_capacity(selected.len());
        let mut select_list = Vec::with_capacity(selected.len());
        for (column, field) in selected.iter().zip(fields.iter_mut()) {
            let (mut decoder, as_text) = Decoder::for_column(column, field.data_type())?;
            let cursor = spec.cursor.as_ref().is_some_and(|c| c.field == column.name);
            if pg_binary && !as_text && !cursor && decoder.passes_exactly() {
                // Passed on as PostgreSQL sends it: the same bytes the decoder would have read.
                let mut metadata = field.metadata().clone();
                metadata.insert(keys::PG_BINARY.to_owned(), column.typname.clone());
                *field = Field::new(field.name().clone(), DataType::Binary, field.is_nullable())
                    .with_metadata(metadata);
                decoder = Decoder::Bytea(BinaryBuilder::new());
            }
            let name = quote(&column.name);
            select_list.push(if as_text {
                format!("{name}::pg_catalog.text")
            } else {
                name
            });
            decoders.push(ColumnDecoder {
                name: column.name.clone(),
                decoder,
                data_hint: 0,
            });
        }
        let schema: SchemaRef = Arc::new(Schema::new(fields));

        let mut sql = format!(
            "COPY (SELECT {} FROM {}.{}",
            select_list.join(", "),
            quote(schema_name),
            quote(table_name)
        );
        if let Some(cursor) = &spec.cursor {
            let column = columns
                .iter()
                .find(|c| c.name == cursor.field)
                .ok_or_else(|| {
                    ConnectorError::config(
                        "cursor.field",
                        format!("there is no field \"{}\" in {}", cursor.field, spec.object),
                    )
                })?;
            let name = quote(&column.name);
            if let Some(after) = cursor_text(cursor.after.as_ref())? {
                // COPY takes no bound parameters. Rather than rendering the value into the SQL
                // (even through quote_literal), it goes to the server as a bound parameter of
                // set_config and the COPY reads it back with current_setting: the value never
                // becomes SQL text, so nothing in it can be injected. The scalar subquery
                // evaluates the bound once (an index on the cursor still serves the range).
                let row = self
                    .timed(client.query_opt(
                        CURSOR_SQL,
                        &[&column.schema, &column.table, &column.name, &after],
                    ))
                    .await?
                    .ok_or_else(|| {
                        ConnectorError::failed(
                            FailureKind::NotFound,
                            "the cursor field disappeared from the table",
                        )
                    })?;
                let type_name: String = row.try_get(0).map_err(|_| {
                    ConnectorError::failed(
                        FailureKind::Protocol,
                        "PostgreSQL's catalog answered in an unexpected shape",
                    )
                })?;
                sql.push_str(&format!(
                    " WHERE {name} > (SELECT pg_catalog.current_setting('{CURSOR_SETTING}')::{type_name})"
                ));
            }
            sql.push_str(&format!(" ORDER BY {name}"));
        }
        sql.push_str(") TO STDOUT (FORMAT binary)");

        let copy = self.timed(client.copy_out(sql.as_str())).await?;
        let batch_rows = spec.batch_rows.max(1);
        let stream = CopyBatches {
            client,
            copy: Box::pin(copy),
            schema: schema.clone(),
            decoders,
            batch_rows,
            rows: 0,
            bytes: 0,
            pending: Vec::new(),
            header_done: false,
            trailer_seen: false,
            done: false,
            deadline: Box::pin(tokio::time::sleep(self.ctx.timeout)),
            waiting: false,
            first_wait: true,
            timeout: self.ctx.timeout,
            endpoint: self.endpoint(),
        };
        Ok((schema, Box::pin(stream)))
    }
}

/// The one table or view the catalog's columns belong to.
pub(super) fn one_object(columns: &[Column]) -> Result<(&str, &str), ConnectorError> {
    let Some(first) = columns.first() else {
        return Err(ConnectorError::failed(
            FailureKind::NotFound,
            "there is no such table or view among the discovered objects",
        ));
    };
    if columns
        .iter()
        .any(|c| c.schema != first.schema || c.table != first.table)
    {
        return Err(ConnectorError::failed(
            FailureKind::Other,
            "the name matches more than one table or view (schema and table names with dots)",
        ));
    }
    Ok((&first.schema, &first.table))
}

/// The cursor's last value as the text PostgreSQL casts to the column's type.
fn cursor_text(after: Option<&serde_json::Value>) -> Result<Option<String>, ConnectorError> {
    use serde_json::Value;
    Ok(match after {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(Value::Array(_) | Value::Object(_)) => {
            return Err(ConnectorError::config(
                "cursor.after",
                "must be a number, a string or a boolean",
            ));
        }
    })
}

/// A column's builder and how its binary values are read.
enum Decoder {
    Bool(BooleanBuilder),
    Int2(Int64Builder),
    Int4(Int64Builder),
    Int8(Int64Builder),
    Float4(Float32Builder),
    /// A `real` held as Float64 (a domain over `real`): widened through its shortest text.
    Float4Wide(Float64Builder),
    Float8(Float64Builder),
    Decimal {
        builder: Decimal128Builder,
        precision: u8,
        scale: i8,
    },
    /// A numeric without a precision that fits Decimal128: its exact text.
    NumericText(StringBuilder, String),
    /// text, varchar, bpchar, name, json and anything cast to text.
    Text(StringBuilder),
    /// jsonb's binary form: a version byte (1), then the text.
    Jsonb(StringBuilder),
    Bytea(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    /// timetz: the local time (the zone offset that follows is dropped).
    TimeTz(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    TimestampTz(TimestampMicrosecondBuilder),
    Uuid(FixedSizeBinaryBuilder),
}

/// Why a value could not be decoded.
enum Bad {
    /// Not the binary form the type has.
    Malformed,
    /// A valid value the Arrow type cannot hold.
    Unrepresentable(&'static str),
}

fn array<const N: usize>(value: &[u8]) -> Result<[u8; N], Bad> {
    value.try_into().map_err(|_| Bad::Malformed)
}

fn text(value: &[u8]) -> Result<&str, Bad> {
    std::str::from_utf8(value).map_err(|_| Bad::Malformed)
}

impl Decoder {
    /// The decoder for a catalog column held as `data_type`, and whether the select list casts
    /// the column to text.
    fn for_column(
        column: &Column,
        data_type: &DataType,
    ) -> Result<(Decoder, bool), ConnectorError> {
        let typname = if column.builtin {
            column.typname.as_str()
        } else {
            ""
        };
        Decoder::for_type(typname, data_type).ok_or_else(|| {
            ConnectorError::failed(
                FailureKind::Protocol,
                format!(
                    "the column \"{}\" has a type Lockstep cannot read in bulk",
                    column.name
                ),
            )
        })
    }

    /// Whether the Arrow value holds everything the binary form does, so passing the binary form
    /// on unchanged writes what decoding and encoding would (a `real` widened to a double and
    /// `timetz`, whose zone the decoder drops, do not).
    fn passes_exactly(&self) -> bool {
        !matches!(self, Decoder::Float4Wide(_) | Decoder::TimeTz(_))
    }

    /// The decoder of the built-in type `typname` (`""`: another type) held as `data_type`, and
    /// whether the select list casts the column to text; `None` when there is none.
    fn for_type(typname: &str, data_type: &DataType) -> Option<(Decoder, bool)> {
        let decoder = match (typname, data_type) {
            ("bool", DataType::Boolean) => Decoder::Bool(BooleanBuilder::new()),
            ("int2", DataType::Int64) => Decoder::Int2(Int64Builder::new()),
            ("int4", DataType::Int64) => Decoder::Int4(Int64Builder::new()),
            ("int8", DataType::Int64) => Decoder::Int8(Int64Builder::new()),
            ("float4", DataType::Float32) => Decoder::Float4(Float32Builder::new()),
            ("float4", DataType::Float64) => Decoder::Float4Wide(Float64Builder::new()),
            ("float8", DataType::Float64) => Decoder::Float8(Float64Builder::new()),
            ("numeric", DataType::Decimal128(precision, scale)) => Decoder::Decimal {
                builder: decimal_builder(*precision, *scale).ok()?,
                precision: *precision,
                scale: *scale,
            },
            ("numeric", DataType::Utf8) => {
                Decoder::NumericText(StringBuilder::new(), String::new())
            }
            ("text" | "varchar" | "bpchar" | "name" | "json", DataType::Utf8) => {
                Decoder::Text(StringBuilder::new())
            }
            ("jsonb", DataType::Utf8) => Decoder::Jsonb(StringBuilder::new()),
            ("bytea", DataType::Binary) => Decoder::Bytea(BinaryBuilder::new()),
            ("date", DataType::Date32) => Decoder::Date(Date32Builder::new()),
            ("time", DataType::Time64(_)) => Decoder::Time(Time64MicrosecondBuilder::new()),
            ("timetz", DataType::Time64(_)) => Decoder::TimeTz(Time64MicrosecondBuilder::new()),
            ("timestamp", DataType::Timestamp(_, None)) => {
                Decoder::Timestamp(TimestampMicrosecondBuilder::new())
            }
            ("timestamptz", DataType::Timestamp(_, Some(_))) => {
                Decoder::TimestampTz(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
            }
            ("uuid", DataType::FixedSizeBinary(16)) => {
                Decoder::Uuid(FixedSizeBinaryBuilder::new(16))
            }
            (_, DataType::Utf8) => return Some((Decoder::Text(StringBuilder::new()), true)),
            _ => return None,
        };
        Some((decoder, false))
    }

    /// Appends one value (`None`: NULL); answers the bytes it adds to the batch.
    fn append(&mut self, value: Option<&[u8]>) -> Result<usize, Bad> {
        let Some(v) = value else {
            self.append_null();
            return Ok(0);
        };
        match self {
            Decoder::Bool(b) => b.append_value(array::<1>(v)? != [0]),
            Decoder::Int2(b) => b.append_value(i64::from(i16::from_be_bytes(array(v)?))),
            Decoder::Int4(b) => b.append_value(i64::from(i32::from_be_bytes(array(v)?))),
            Decoder::Int8(b) => b.append_value(i64::from_be_bytes(array(v)?)),
            Decoder::Float4(b) => b.append_value(f32::from_be_bytes(array(v)?)),
            Decoder::Float4Wide(b) => b.append_value(widen_f32(f32::from_be_bytes(array(v)?))),
            Decoder::Float8(b) => b.append_value(f64::from_be_bytes(array(v)?)),
            Decoder::Decimal { builder, scale, .. } => {
                let value = numeric::to_i128(v, *scale).map_err(|err| match err {
                    numeric::NumericError::NotFinite => {
                        Bad::Unrepresentable("NaN or infinity, which a decimal cannot hold")
                    }
                    numeric::NumericError::Overflow | numeric::NumericError::Inexact => {
                        Bad::Unrepresentable("a value beyond its precision")
                    }
                    numeric::NumericError::Malformed => Bad::Malformed,
                })?;
                builder.append_value(value);
            }
            Decoder::NumericText(b, scratch) => {
                scratch.clear();
                numeric::write_text(v, scratch).map_err(|_| Bad::Malformed)?;
                b.append_value(scratch.as_str());
            }
            Decoder::Text(b) => b.append_value(text(v)?),
            Decoder::Jsonb(b) => match v.split_first() {
                Some((1, json)) => b.append_value(text(json)?),
                _ => return Err(Bad::Malformed),
            },
            Decoder::Bytea(b) => b.append_value(v),
            Decoder::Date(b) => b.append_value(match i32::from_be_bytes(array(v)?) {
                // PostgreSQL's ±infinity keep their sentinels (the extremes of the range).
                i32::MAX => i32::MAX,
                i32::MIN => i32::MIN,
                days => days
                    .checked_add(PG_EPOCH_DAYS)
                    .ok_or(Bad::Unrepresentable("a date beyond the range Arrow holds"))?,
            }),
            Decoder::Time(b) => b.append_value(i64::from_be_bytes(array(v)?)),
            Decoder::TimeTz(b) => {
                let local = v.get(..8).ok_or(Bad::Malformed)?;
                if v.len() != 12 {
                    return Err(Bad::Malformed);
                }
                b.append_value(i64::from_be_bytes(array(local)?));
            }
            Decoder::Timestamp(b) | Decoder::TimestampTz(b) => {
                b.append_value(match i64::from_be_bytes(array(v)?) {
                    i64::MAX => i64::MAX,
                    i64::MIN => i64::MIN,
                    micros => micros
                        .checked_add(PG_EPOCH_MICROS)
                        .ok_or(Bad::Unrepresentable(
                            "a timestamp beyond the range Arrow holds",
                        ))?,
                })
            }
            Decoder::Uuid(b) => b
                .append_value(array::<16>(v)?)
                .map_err(|_| Bad::Malformed)?,
        }
        Ok(v.len())
    }

    fn append_null(&mut self) {
        match self {
            Decoder::Bool(b) => b.append_null(),
            Decoder::Int2(b) | Decoder::Int4(b) | Decoder::Int8(b) => b.append_null(),
            Decoder::Float4(b) => b.append_null(),
            Decoder::Float4Wide(b) | Decoder::Float8(b) => b.append_null(),
            Decoder::Decimal { builder, .. } => builder.append_null(),
            Decoder::NumericText(b, _) | Decoder::Text(b) | Decoder::Jsonb(b) => b.append_null(),
            Decoder::Bytea(b) => b.append_null(),
            Decoder::Date(b) => b.append_null(),
            Decoder::Time(b) | Decoder::TimeTz(b) => b.append_null(),
            Decoder::Timestamp(b) | Decoder::TimestampTz(b) => b.append_null(),
            Decoder::Uuid(b) => b.append_null(),
        }
    }

    /// The batch so far as an array; the builder starts over with room for `rows` rows and
    /// `data` bytes of values.
    fn finish(&mut self, rows: usize, data: usize) -> Result<ArrayRef, ConnectorError> {
        fn take<B>(builder: &mut B, fresh: B) -> B {
            std::mem::replace(builder, fresh)
        }
        Ok(match self {
            Decoder::Bool(b) => Arc::new(take(b, BooleanBuilder::with_capacity(rows)).finish()),
            Decoder::Int2(b) | Decoder::Int4(b) | Decoder::Int8(b) => {
                Arc::new(take(b, Int64Builder::with_capacity(rows)).finish())
            }
            Decoder::Float4(b) => Arc::new(take(b, Float32Builder::with_capacity(rows)).finish()),
            Decoder::Float4Wide(b) | Decoder::Float8(b) => {
                Arc::new(take(b, Float64Builder::with_capacity(rows)).finish())
            }
            Decoder::Decimal {
                builder,
                precision,
                scale,
            } => {
                let fresh = Decimal128Builder::with_capacity(rows)
                    .with_precision_and_scale(*precision, *scale)
                    .map_err(|_| decimal_error())?;
                Arc::new(take(builder, fresh).finish())
            }
            Decoder::NumericText(b, _) | Decoder::Text(b) | Decoder::Jsonb(b) => {
                Arc::new(take(b, StringBuilder::with_capacity(rows, data)).finish())
            }
            Decoder::Bytea(b) => {
                Arc::new(take(b, BinaryBuilder::with_capacity(rows, data)).finish())
            }
            Decoder::Date(b) => Arc::new(take(b, Date32Builder::with_capacity(rows)).finish()),
            Decoder::Time(b) | Decoder::TimeTz(b) => {
                Arc::new(take(b, Time64MicrosecondBuilder::with_capacity(rows)).finish())
            }
            Decoder::Timestamp(b) => {
                Arc::new(take(b, TimestampMicrosecondBuilder::with_capacity(rows)).finish())
            }
            Decoder::TimestampTz(b) => Arc::new(
                take(
                    b,
                    TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
                )
                .finish(),
            ),
            Decoder::Uuid(b) => {
                Arc::new(take(b, FixedSizeBinaryBuilder::with_capacity(rows, 16)).finish())
            }
        })
    }
}

/// Values in PostgreSQL's binary form of the built-in type `typname` (a field marked
/// [`keys::PG_BINARY`]) decoded into `data_type`, as a read of the column would have answered
/// them: for a column of another type, which takes the decoded value.
pub(super) fn decode_pg_binary(
    array: &dyn Array,
    typname: &str,
    data_type: &DataType,
    name: &str,
) -> Result<ArrayRef, ConnectorError> {
    let values = array.as_binary_opt::<i32>().ok_or_else(|| {
        ConnectorError::config("schema", "a batch does not match the writer's schema")
    })?;
    let (mut decoder, _) = Decoder::for_type(typname, data_type)
        .filter(|(decoder, as_text)| !as_text && decoder.passes_exactly())
        .ok_or_else(|| {
            ConnectorError::config(
                "schema",
                format!("the field \"{name}\" holds values Lockstep cannot decode"),
            )
        })?;
    for value in values {
        decoder.append(value).map_err(|bad| match bad {
            Bad::Malformed => ConnectorError::failed(
                FailureKind::Protocol,
                format!("the field \"{name}\" holds a value Lockstep cannot read"),
            ),
            Bad::Unrepresentable(what) => ConnectorError::failed(
                FailureKind::Other,
                format!("the field \"{name}\" holds {what}"),
            ),
        })?;
    }
    decoder.finish(0, 0)
}

fn decimal_builder(precision: u8, scale: i8) -> Result<Decimal128Builder, ConnectorError> {
    Decimal128Builder::new()
        .with_precision_and_scale(precision, scale)
        .map_err(|_| decimal_error())
}

fn decimal_error() -> ConnectorError {
    ConnectorError::failed(
        FailureKind::Protocol,
        "a numeric column's precision does not fit Arrow's Decimal128",
    )
}

struct ColumnDecoder {
    name: String,
    decoder: Decoder,
    /// The bytes of values the last batch held (to size the next one's buffers).
    data_hint: usize,
}

/// The stream of batches over a running COPY. It owns the client: the connection lives as long
/// as the stream.
struct CopyBatches {
    client: Client,
    copy: Pin<Box<CopyOutStream>>,
    schema: SchemaRef,
    decoders: Vec<ColumnDecoder>,
    batch_rows: usize,
    /// Rows and value bytes in the batch being built.
    rows: usize,
    bytes: usize,
    /// Received bytes not decoded yet (a row split between messages, or rows past a full batch).
    pending: Vec<u8>,
    header_done: bool,
    trailer_seen: bool,
    done: bool,
    /// No data for `timeout` (the first wait: four times that, for the server's sort) is a
    /// timeout.
    deadline: Pin<Box<Sleep>>,
    waiting: bool,
    first_wait: bool,
    timeout: Duration,
    endpoint: String,
}

impl std::fmt::Debug for CopyBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyBatches")
            .field("client", &self.client)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl CopyBatches {
    fn protocol(&self, what: &str) -> ConnectorError {
        ConnectorError::failed(
            FailureKind::Protocol,
            format!("PostgreSQL at {} {what}", self.endpoint),
        )
    }

    fn full(&self) -> bool {
        self.rows >= self.batch_rows || self.bytes >= BATCH_BYTES
    }

    /// Decodes whole rows from `data` until the batch is full; answers the bytes used.
    fn parse(&mut self, data: &[u8]) -> Result<usize, ConnectorError> {
        let mut pos = 0;
        if !self.header_done {
            // Signature (11), flags (4), extension length (4), extension.
            let Some(ext) = data.get(15..19) else {
                return Ok(0);
            };
            if data.get(..11) != COPY_HEADER.get(..11) {
                return Err(self.protocol("sent a COPY stream Lockstep cannot read"));
            }
            let ext = usize::try_from(u32::from_be_bytes(ext.try_into().unwrap_or([0; 4])))
                .unwrap_or(usize::MAX)
                .saturating_add(19);
            if data.len() < ext {
                return Ok(0);
            }
            pos = ext;
            self.header_done = true;
        }
        let ncols = self.decoders.len();
        while !self.full() && !self.trailer_seen {
            let rest = data.get(pos..).unwrap_or(&[]);
            let Some(count) = rest.get(..2).and_then(|b| <[u8; 2]>::try_from(b).ok()) else {
                break;
            };
            let count = i16::from_be_bytes(count);
            if count == -1 {
                self.trailer_seen = true;
                pos += 2;
                break;
            }
            if usize::try_from(count).ok() != Some(ncols) {
                return Err(self.protocol("sent rows of an unexpected shape"));
            }
            // First the row's extent (it may not have arrived whole), then its values.
            let mut end = 2;
            let mut whole = true;
            for _ in 0..ncols {
                let Some(len) = field_len(rest, end) else {
                    whole = false;
                    break;
                };
                end += 4 + len.unwrap_or(0);
                if end > rest.len() {
                    whole = false;
                    break;
                }
            }
            if !whole {
                break;
            }
            let mut at = 2;
            for index in 0..ncols {
                let len = field_len(rest, at).flatten();
                at += 4;
                let value = match len {
                    None => None,
                    Some(len) => {
                        let value = rest.get(at..at + len);
                        at += len;
                        value
                    }
                };
                let Some(column) = self.decoders.get_mut(index) else {
                    break;
                };
                match column.decoder.append(value) {
                    Ok(bytes) => self.bytes += bytes,
                    Err(bad) => {
                        let name = column.name.clone();
                        return Err(match bad {
                            Bad::Malformed => self.protocol(&format!(
                                "sent a value of column \"{name}\" Lockstep cannot read"
                            )),
                            Bad::Unrepresentable(what) => ConnectorError::failed(
                                FailureKind::Other,
                                format!("the column \"{name}\" holds {what}"),
                            ),
                        });
                    }
                }
            }
            pos += end;
            self.rows += 1;
        }
        Ok(pos)
    }

    /// Takes the batch built so far.
    fn batch(&mut self) -> Result<RecordBatch, ConnectorError> {
        let rows = self.rows;
        let capacity = self.batch_rows.min(rows.max(1024));
        let mut arrays = Vec::with_capacity(self.decoders.len());
        for column in &mut self.decoders {
            let array = column.decoder.finish(capacity, column.data_hint)?;
            column.data_hint = array
                .to_data()
                .buffers()
                .get(1)
                .map_or(0, |b| b.len().min(BATCH_BYTES * 2));
            arrays.push(array);
        }
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map_err(|_| self.protocol("sent values that do not fit the table's schema"))
    }

    /// Decodes what is pending (up to a full batch).
    fn drain_pending(&mut self) -> Result<(), ConnectorError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let used = self.parse(&pending)?;
        self.pending = pending;
        self.pending.drain(..used);
        Ok(())
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<(), ConnectorError> {
        if self.trailer_seen {
            return Err(self.protocol("sent data after the end of the COPY"));
        }
        if self.pending.is_empty() {
            let used = self.parse(chunk)?;
            self.pending
                .extend_from_slice(chunk.get(used..).unwrap_or(&[]));
        } else {
            self.pending.extend_from_slice(chunk);
            self.drain_pending()?;
        }
        Ok(())
    }

    fn poll_batch(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<RecordBatch, ConnectorError>>> {
        if let Err(err) = self.drain_pending() {
            return Poll::Ready(Some(Err(err)));
        }
        loop {
            if self.full() {
                return Poll::Ready(Some(self.batch()));
            }
            match self.copy.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    self.waiting = false;
                    if let Err(err) = self.feed(&chunk) {
                        return Poll::Ready(Some(Err(err)));
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    return Poll::Ready(Some(Err(map_error(&err, &self.endpoint))));
                }
                Poll::Ready(None) => {
                    self.done = true;
                    if !self.trailer_seen || !self.pending.is_empty() {
                        return Poll::Ready(Some(Err(
                            self.protocol("ended the COPY in the middle of a row")
                        )));
                    }
                    return Poll::Ready(if self.rows > 0 {
                        Some(self.batch())
                    } else {
                        None
                    });
                }
                Poll::Pending => {
                    if !self.waiting {
                        self.waiting = true;
                        let wait = if self.first_wait {
                            self.timeout * 4
                        } else {
                            self.timeout
                        };
                        self.first_wait = false;
                        self.deadline.as_mut().reset(Instant::now() + wait);
                    }
                    if self.deadline.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Some(Err(ConnectorError::failed(
                            FailureKind::Timeout,
                            format!(
                                "PostgreSQL at {} sent no data within {} s",
                                self.endpoint,
                                self.timeout.as_secs_f32()
                            ),
                        ))));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

/// The length of the value field at `at`: `Some(None)` for NULL, `None` when not all there.
fn field_len(row: &[u8], at: usize) -> Option<Option<usize>> {
    let bytes: [u8; 4] = row.get(at..at + 4)?.try_into().ok()?;
    let len = i32::from_be_bytes(bytes);
    Some(usize::try_from(len).ok())
}

impl Stream for CopyBatches {
    type Item = Result<RecordBatch, ConnectorError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let result = this.poll_batch(cx);
        if let Poll::Ready(Some(Err(_))) = result {
            this.done = true;
        }
        result
    }
}
