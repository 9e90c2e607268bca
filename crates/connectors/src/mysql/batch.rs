//! Bulk reads: a MySQL/MariaDB table or view as a stream of Arrow batches.
//!
//! Only objects the catalog lists are read, with the catalog's identifiers quoted; the cursor
//! value is bound. Rows are streamed (`exec_iter`, one row at a time from the socket) into Arrow
//! builders by a task that owns the connection, and handed over in batches of
//! `ReadSpec::batch_rows` through a channel of two batches (the reader's pace holds the query
//! back). Each fetch is bounded by the context's timeout.
//!
//! Values, by discovered type (the table in [`crate::batch`]):
//! * `tinyint(1)` / `bit(1)` → Boolean; other values than 0 and 1 are an error.
//! * integers → Int64; an unsigned `bigint` beyond 2^63 − 1 is an error naming the field.
//! * `float` → Float32 (24.3 stays 24.3); `double` → Float64.
//! * `decimal(p,s)` → Decimal128(p, s) parsed exactly from the text MySQL sends (Utf8 when p > 38).
//! * `date` → Date32, `datetime` → Timestamp(µs), `timestamp` → Timestamp(µs, UTC) (the session
//!   time zone is UTC). Zero dates (`0000-00-00`) are an error naming the field.
//! * `time` → Time64(µs) for 00:00:00 to 23:59:59.999999; a negative duration or one of 24 hours
//!   or more (MySQL's TIME spans ±838 h) is an error naming the field, not a silent change.
//! * text, `enum`, `set`, `json` → Utf8; binary strings and blobs → Binary; MariaDB `uuid` →
//!   FixedSizeBinary(16); anything else (`other`) → its text (base64 when it is not UTF-8).
//!
//! Errors name the object and the field, never a value.

use super::{MysqlConnector, map_error, quote};
use crate::batch::{BatchSource, BatchStream, CursorSpec, ReadSpec, arrow_field};
use crate::{ConnectionKind, ConnectorError, FailureKind, FieldMeta, FieldType};
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, FixedSizeBinaryBuilder,
    Float32Builder, Float64Builder, Int64Builder, StringBuilder, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema, SchemaRef};
use base64::Engine as _;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use serde_json::Value as Json;
use std::sync::Arc;
use std::time::Duration;

/// Days from 4713 BC (the Julian day number) to 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;
const MICROS_PER_DAY: i64 = 86_400_000_000;

impl BatchSource for MysqlConnector {
    async fn read(&self, spec: ReadSpec) -> Result<(SchemaRef, BatchStream), ConnectorError> {
        let mut conn = self.connect().await?;
        let plan = match self.read_plan(&mut conn, &spec).await {
            Ok(plan) => plan,
            Err(err) => {
                self.close(conn).await;
                return Err(err);
            }
        };
        let schema = Arc::clone(&plan.schema);
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let timeout = self.ctx.timeout;
        let endpoint = self.endpoint();
        tokio::spawn(async move {
            let outcome = stream_rows(&mut conn, plan, &tx, started_tx, timeout, &endpoint).await;
            match outcome {
                // Every row was read: a polite goodbye.
                Ok(true) => {
                    let _ = tokio::time::timeout(timeout, conn.disconnect()).await;
                }
                // The reader went away: close without reading the rest.
                Ok(false) => {
                    let _ = tokio::time::timeout(timeout, conn.disconnect()).await;
                }
                Err(err) => {
                    let _ = tx.send(Err(err)).await;
                    let _ = tokio::time::timeout(timeout, conn.disconnect()).await;
                }
            }
        });
        // The query's own failure (a denied SELECT, a lost connection) is the call's failure.
        match started_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(err),
            Err(_) => {
                return Err(ConnectorError::failed(
                    FailureKind::Other,
                    "reading from MySQL was interrupted",
                ));
            }
        }
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok((schema, Box::pin(stream)))
    }
}

/// What one read runs.
struct ReadPlan {
    object: String,
    sql: String,
    params: Vec<Value>,
    fields: Vec<FieldMeta>,
    schema: SchemaRef,
    batch_rows: usize,
}

impl MysqlConnector {
    async fn read_plan(
        &self,
        conn: &mut Conn,
        spec: &ReadSpec,
    ) -> Result<ReadPlan, ConnectorError> {
        // Only a name the catalog lists is read; the identifiers quoted are the catalog's.
        let name = self.object_name(&spec.object)?;
        let Some(meta) = self.catalog(conn, Some(&name)).await?.into_iter().next() else {
            return Err(ConnectorError::failed(
                FailureKind::NotFound,
                "there is no such table or view among the discovered objects",
            ));
        };
        let fields = select_fields(&meta.name, &meta.fields, spec.fields.as_deref())?;
        let select_list = fields
            .iter()
            .map(|f| quote(&f.name))
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = format!("SELECT {select_list} FROM {}", name.mysql_sql());
        let mut params = Vec::new();
        if let Some(cursor) = &spec.cursor {
            let field = meta
                .fields
                .iter()
                .find(|f| f.name == cursor.field)
                .ok_or_else(|| {
                    ConnectorError::config(
                        "cursor.field",
                        format!("{} has no field named {}", meta.name, cursor.field),
                    )
                })?;
            if let Some(after) = cursor_value(field, cursor)? {
                sql.push_str(&format!(" WHERE {} > ?", quote(&field.name)));
                params.push(after);
            }
            sql.push_str(&format!(" ORDER BY {}", quote(&field.name)));
        }
        let schema = Arc::new(Schema::new(
            fields
                .iter()
                .map(|f| arrow_field(f, ConnectionKind::Mysql))
                .collect::<Vec<_>>(),
        ));
        Ok(ReadPlan {
            object: meta.name,
            sql,
            params,
            fields,
            schema,
            batch_rows: spec.batch_rows.max(1),
        })
    }
}

/// The fields asked for (all of them when `wanted` is `None`), in the order asked.
pub(super) fn select_fields(
    object: &str,
    fields: &[FieldMeta],
    wanted: Option<&[String]>,
) -> Result<Vec<FieldMeta>, ConnectorError> {
    let Some(wanted) = wanted else {
        return Ok(fields.to_vec());
    };
    if wanted.is_empty() {
        return Err(ConnectorError::config("fields", "name at least one field"));
    }
    let mut selected: Vec<FieldMeta> = Vec::with_capacity(wanted.len());
    for name in wanted {
        if selected.iter().any(|f| &f.name == name) {
            return Err(ConnectorError::config(
                "fields",
                format!("{name} is named twice"),
            ));
        }
        let field = fields.iter().find(|f| &f.name == name).ok_or_else(|| {
            ConnectorError::config("fields", format!("{object} has no field named {name}"))
        })?;
        selected.push(field.clone());
    }
    Ok(selected)
}

/// The cursor's `after` as a value bound to `field > ?` (`None`: from the start).
fn cursor_value(field: &FieldMeta, cursor: &CursorSpec) -> Result<Option<Value>, ConnectorError> {
    let Some(after) = &cursor.after else {
        return Ok(None);
    };
    let bad = |what: &str| {
        ConnectorError::config(
            "cursor.after",
            format!("must be {what} for the field {}", field.name),
        )
    };
    let value = match field.field_type {
        FieldType::Integer => match after {
            Json::Number(n) if n.is_i64() => n.as_i64().map(Value::Int),
            Json::Number(n) => n.as_u64().map(Value::UInt),
            Json::String(s) => s
                .parse::<i64>()
                .map(Value::Int)
                .ok()
                .or_else(|| s.parse::<u64>().ok().map(Value::UInt)),
            _ => None,
        }
        .ok_or_else(|| bad("an integer"))?,
        FieldType::Float => match after {
            Json::Number(n) => n.as_f64(),
            Json::String(s) => s.parse::<f64>().ok(),
            _ => None,
        }
        .filter(|f| f.is_finite())
        .map(|f| {
            if crate::batch::single_precision(&field.native, "mysql") {
                // Compared as the FLOAT column's own value: 0.1 is not above the stored 0.1.
                #[allow(clippy::cast_possible_truncation)]
                Value::Float(f as f32)
            } else {
                Value::Double(f)
            }
        })
        .ok_or_else(|| bad("a number"))?,
        FieldType::Decimal => {
            let text = match after {
                Json::Number(n) => n.to_string(),
                Json::String(s) => s.clone(),
                _ => return Err(bad("a decimal number")),
            };
            if !is_decimal_text(&text) {
                return Err(bad("a decimal number"));
            }
            Value::Bytes(text.into_bytes())
        }
        FieldType::Boolean => match after {
            Json::Bool(b) => Value::Int(i64::from(*b)),
            _ => return Err(bad("true or false")),
        },
        FieldType::String | FieldType::Uuid => match after {
            Json::String(s) => Value::Bytes(s.as_bytes().to_vec()),
            Json::Number(n) => Value::Bytes(n.to_string().into_bytes()),
            _ => return Err(bad("a string")),
        },
        FieldType::Date => match after {
            Json::String(s) => parse_date_value(s).ok_or_else(|| bad("a date (YYYY-MM-DD)"))?,
            _ => return Err(bad("a date (YYYY-MM-DD)")),
        },
        FieldType::Timestamp | FieldType::TimestampTz => match after {
            Json::String(s) => {
                parse_timestamp_value(s).ok_or_else(|| bad("a timestamp (RFC 3339)"))?
            }
            _ => return Err(bad("a timestamp (RFC 3339)")),
        },
        FieldType::Time => match after {
            Json::String(s) => parse_time_value(s).ok_or_else(|| bad("a time (HH:MM:SS)"))?,
            _ => return Err(bad("a time (HH:MM:SS)")),
        },
        FieldType::Binary | FieldType::Json | FieldType::Other => {
            return Err(ConnectorError::config(
                "cursor.field",
                format!(
                    "{} cannot be a cursor (binary, JSON and other fields do not sort usefully)",
                    field.name
                ),
            ));
        }
    };
    Ok(Some(value))
}

fn mysql_date(date: time::Date, clock: time::Time) -> Option<Value> {
    let year = u16::try_from(date.year()).ok().filter(|y| *y <= 9999)?;
    Some(Value::Date(
        year,
        u8::from(date.month()),
        date.day(),
        clock.hour(),
        clock.minute(),
        clock.second(),
        clock.microsecond(),
    ))
}

fn parse_date_value(text: &str) -> Option<Value> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, &format).ok()?;
    mysql_date(date, time::Time::MIDNIGHT)
}

/// RFC 3339 (converted to UTC), or a date and time without a zone (`T` or a space between).
fn parse_timestamp_value(text: &str) -> Option<Value> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(instant) = time::OffsetDateTime::parse(text, &Rfc3339) {
        let utc = instant.to_offset(time::UtcOffset::UTC);
        return mysql_date(utc.date(), utc.time());
    }
    let t = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    let space = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    let naive = time::PrimitiveDateTime::parse(text, &t)
        .or_else(|_| time::PrimitiveDateTime::parse(text, &space))
        .ok()?;
    mysql_date(naive.date(), naive.time())
}

fn parse_time_value(text: &str) -> Option<Value> {
    let format =
        time::macros::format_description!("[hour]:[minute]:[second][optional [.[subsecond]]]");
    let clock = time::Time::parse(text, &format).ok()?;
    Some(Value::Time(
        false,
        0,
        clock.hour(),
        clock.minute(),
        clock.second(),
        clock.microsecond(),
    ))
}

/// Runs the query and sends its rows in batches. `Ok(false)`: the reader went away.
async fn stream_rows(
    conn: &mut Conn,
    plan: ReadPlan,
    tx: &tokio::sync::mpsc::Sender<Result<RecordBatch, ConnectorError>>,
    started: tokio::sync::oneshot::Sender<Result<(), ConnectorError>>,
    timeout: Duration,
    endpoint: &str,
) -> Result<bool, ConnectorError> {
    let timed_out = || {
        ConnectorError::failed(
            FailureKind::Timeout,
            format!(
                "MySQL at {endpoint} did not answer the query within {} s",
                timeout.as_secs_f32()
            ),
        )
    };
    let params = if plan.params.is_empty() {
        mysql_async::Params::Empty
    } else {
        mysql_async::Params::Positional(plan.params.clone())
    };
    let opened = tokio::time::timeout(timeout, conn.exec_iter(plan.sql.as_str(), params)).await;
    let mut result = match opened {
        Ok(Ok(result)) => {
            let _ = started.send(Ok(()));
            result
        }
        Ok(Err(err)) => {
            let _ = started.send(Err(map_error(&err, endpoint)));
            return Ok(false);
        }
        Err(_) => {
            let _ = started.send(Err(timed_out()));
            return Ok(false);
        }
    };
    let mut batch = Builders::new(&plan)?;
    loop {
        let row = match tokio::time::timeout(timeout, result.next()).await {
            Ok(Ok(row)) => row,
            Ok(Err(err)) => return Err(map_error(&err, endpoint)),
            Err(_) => return Err(timed_out()),
        };
        let Some(row) = row else { break };
        batch.push(row.unwrap_raw(), &plan)?;
        if batch.rows >= plan.batch_rows {
            let full = std::mem::replace(&mut batch, Builders::new(&plan)?);
            if tx.send(Ok(full.finish(&plan)?)).await.is_err() {
                return Ok(false);
            }
        }
    }
    drop(result);
    if batch.rows > 0 && tx.send(Ok(batch.finish(&plan)?)).await.is_err() {
        return Ok(false);
    }
    Ok(true)
}

/// The builders of one batch.
struct Builders {
    columns: Vec<ColumnBuilder>,
    rows: usize,
}

impl Builders {
    fn new(plan: &ReadPlan) -> Result<Builders, ConnectorError> {
        let capacity = plan.batch_rows.min(crate::batch::DEFAULT_BATCH_ROWS);
        let columns = plan
            .schema
            .fields()
            .iter()
            .map(|f| ColumnBuilder::new(f.data_type(), capacity))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ConnectorError::failed(
                    FailureKind::Other,
                    format!("{}: an Arrow column cannot be built", plan.object),
                )
            })?;
        Ok(Builders { columns, rows: 0 })
    }

    fn push(&mut self, values: Vec<Option<Value>>, plan: &ReadPlan) -> Result<(), ConnectorError> {
        if values.len() != self.columns.len() {
            return Err(ConnectorError::failed(
                FailureKind::Protocol,
                format!(
                    "MySQL answered rows of {} with an unexpected number of columns",
                    plan.object
                ),
            ));
        }
        for ((builder, value), field) in self.columns.iter_mut().zip(values).zip(&plan.fields) {
            let value = value.unwrap_or(Value::NULL);
            if value == Value::NULL && !field.nullable {
                return Err(value_error(
                    &plan.object,
                    field,
                    "a NULL in a field discovered as NOT NULL",
                ));
            }
            builder
                .append(value, field)
                .map_err(|why| value_error(&plan.object, field, why))?;
        }
        self.rows += 1;
        Ok(())
    }

    fn finish(mut self, plan: &ReadPlan) -> Result<RecordBatch, ConnectorError> {
        let columns: Vec<ArrayRef> = self.columns.iter_mut().map(ColumnBuilder::finish).collect();
        RecordBatch::try_new(Arc::clone(&plan.schema), columns).map_err(|_| {
            ConnectorError::failed(
                FailureKind::Other,
                format!("{}: the rows do not fit the Arrow schema", plan.object),
            )
        })
    }
}

fn value_error(object: &str, field: &FieldMeta, why: &str) -> ConnectorError {
    ConnectorError::failed(
        FailureKind::Protocol,
        format!("{object}, field {}: {why}", field.name),
    )
}

/// One Arrow column being built.
enum ColumnBuilder {
    Boolean(BooleanBuilder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    Date32(Date32Builder),
    Time64(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Uuid(FixedSizeBinaryBuilder),
}

impl ColumnBuilder {
    /// For the Arrow types [`crate::batch::source_arrow_type`] answers.
    fn new(data_type: &DataType, capacity: usize) -> Option<ColumnBuilder> {
        use arrow_schema::TimeUnit;
        Some(match data_type {
            DataType::Boolean => ColumnBuilder::Boolean(BooleanBuilder::with_capacity(capacity)),
            DataType::Int64 => ColumnBuilder::Int64(Int64Builder::with_capacity(capacity)),
            DataType::Float32 => ColumnBuilder::Float32(Float32Builder::with_capacity(capacity)),
            DataType::Float64 => ColumnBuilder::Float64(Float64Builder::with_capacity(capacity)),
            DataType::Decimal128(p, s) => ColumnBuilder::Decimal(
                Decimal128Builder::with_capacity(capacity)
                    .with_precision_and_scale(*p, *s)
                    .ok()?,
                *p,
                *s,
            ),
            DataType::Utf8 => ColumnBuilder::Utf8(StringBuilder::with_capacity(capacity, 1024)),
            DataType::Binary => ColumnBuilder::Binary(BinaryBuilder::with_capacity(capacity, 1024)),
            DataType::Date32 => ColumnBuilder::Date32(Date32Builder::with_capacity(capacity)),
            DataType::Time64(TimeUnit::Microsecond) => {
                ColumnBuilder::Time64(Time64MicrosecondBuilder::with_capacity(capacity))
            }
            DataType::Timestamp(TimeUnit::Microsecond, zone) => ColumnBuilder::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(capacity)
                    .with_timezone_opt(zone.clone()),
            ),
            DataType::FixedSizeBinary(16) => {
                ColumnBuilder::Uuid(FixedSizeBinaryBuilder::with_capacity(capacity, 16))
            }
            _ => return None,
        })
    }

    fn finish(&mut self) -> ArrayRef {
        use arrow_array::builder::ArrayBuilder;
        match self {
            ColumnBuilder::Boolean(b) => ArrayBuilder::finish(b),
            ColumnBuilder::Int64(b) => ArrayBuilder::finish(b),
            ColumnBuilder::Float32(b) => ArrayBuilder::finish(b),
            ColumnBuilder::Float64(b) => ArrayBuilder::finish(b),
            ColumnBuilder::Decimal(b, _, _) => ArrayBuilder::finish(b),
            ColumnBuilder::Utf8(b) => ArrayBuilder::finish(b),
            ColumnBuilder::Binary(b) => ArrayBuilder::finish(b),
            ColumnBuilder::Date32(b) => ArrayBuilder::finish(b),
            ColumnBuilder::Time64(b) => ArrayBuilder::finish(b),
            ColumnBuilder::Timestamp(b) => ArrayBuilder::finish(b),
            ColumnBuilder::Uuid(b) => ArrayBuilder::finish(b),
        }
    }

    /// Appends one value; the error says why it does not fit (never the value).
    fn append(&mut self, value: Value, field: &FieldMeta) -> Result<(), &'static str> {
        if value == Value::NULL {
            match self {
                ColumnBuilder::Boolean(b) => b.append_null(),
                ColumnBuilder::Int64(b) => b.append_null(),
                ColumnBuilder::Float32(b) => b.append_null(),
                ColumnBuilder::Float64(b) => b.append_null(),
                ColumnBuilder::Decimal(b, _, _) => b.append_null(),
                ColumnBuilder::Utf8(b) => b.append_null(),
                ColumnBuilder::Binary(b) => b.append_null(),
                ColumnBuilder::Date32(b) => b.append_null(),
                ColumnBuilder::Time64(b) => b.append_null(),
                ColumnBuilder::Timestamp(b) => b.append_null(),
                ColumnBuilder::Uuid(b) => b.append_null(),
            }
            return Ok(());
        }
        match self {
            ColumnBuilder::Boolean(b) => b.append_value(to_bool(&value)?),
            ColumnBuilder::Int64(b) => b.append_value(to_i64(&value, field)?),
            ColumnBuilder::Float32(b) => b.append_value(to_f32(&value)?),
            ColumnBuilder::Float64(b) => b.append_value(to_f64(&value)?),
            ColumnBuilder::Decimal(b, p, s) => {
                let v = match &value {
                    Value::Bytes(bytes) => std::str::from_utf8(bytes)
                        .ok()
                        .and_then(|text| parse_decimal(text, *p, *s)),
                    Value::Int(v) => parse_decimal(&v.to_string(), *p, *s),
                    Value::UInt(v) => parse_decimal(&v.to_string(), *p, *s),
                    _ => None,
                }
                .ok_or("a decimal that does not fit its declared precision and scale")?;
                b.append_value(v);
            }
            ColumnBuilder::Utf8(b) => b.append_value(to_text(value, field)?),
            ColumnBuilder::Binary(b) => match value {
                Value::Bytes(bytes) => b.append_value(bytes),
                _ => return Err("a binary field answered a value that is not bytes"),
            },
            ColumnBuilder::Date32(b) => b.append_value(to_date32(&value)?),
            ColumnBuilder::Time64(b) => b.append_value(to_time64(&value)?),
            ColumnBuilder::Timestamp(b) => b.append_value(to_timestamp(&value)?),
            ColumnBuilder::Uuid(b) => {
                let uuid = match &value {
                    Value::Bytes(bytes) if bytes.len() == 16 => uuid::Uuid::from_slice(bytes).ok(),
                    Value::Bytes(bytes) => std::str::from_utf8(bytes)
                        .ok()
                        .and_then(|text| uuid::Uuid::parse_str(text).ok()),
                    _ => None,
                }
                .ok_or("a value that is not a UUID")?;
                b.append_value(uuid.as_bytes())
                    .map_err(|_| "a value that is not a UUID")?;
            }
        }
        Ok(())
    }
}

fn to_bool(value: &Value) -> Result<bool, &'static str> {
    const NOT_BOOLEAN: &str =
        "a value other than 0 and 1 in a boolean (tinyint(1) or bit(1)) field";
    match value {
        Value::Int(0) | Value::UInt(0) => Ok(false),
        Value::Int(1) | Value::UInt(1) => Ok(true),
        Value::Bytes(bytes) => match bytes.as_slice() {
            [0] | b"0" => Ok(false),
            [1] | b"1" => Ok(true),
            _ => Err(NOT_BOOLEAN),
        },
        _ => Err(NOT_BOOLEAN),
    }
}

fn to_i64(value: &Value, field: &FieldMeta) -> Result<i64, &'static str> {
    const BEYOND: &str = "an unsigned value beyond 9223372036854775807, the largest Int64";
    match value {
        Value::Int(v) => Ok(*v),
        Value::UInt(v) => i64::try_from(*v).map_err(|_| BEYOND),
        // `bit(n)`: big-endian bytes.
        Value::Bytes(bytes) if field.native.to_ascii_lowercase().starts_with("bit") => {
            if bytes.len() > 8 {
                return Err(BEYOND);
            }
            let n = bytes
                .iter()
                .fold(0_u64, |acc, byte| (acc << 8) | u64::from(*byte));
            i64::try_from(n).map_err(|_| BEYOND)
        }
        Value::Bytes(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<i64>().ok())
            .ok_or("a value that is not a 64-bit integer"),
        _ => Err("a value that is not an integer"),
    }
}

fn to_f64(value: &Value) -> Result<f64, &'static str> {
    match value {
        Value::Double(v) => Ok(*v),
        // The shortest text that reads back as the same f32: 0.1, not 0.10000000149011612.
        Value::Float(v) => Ok(crate::batch::widen_f32(*v)),
        #[allow(clippy::cast_precision_loss)]
        Value::Int(v) => Ok(*v as f64),
        #[allow(clippy::cast_precision_loss)]
        Value::UInt(v) => Ok(*v as f64),
        Value::Bytes(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<f64>().ok())
            .ok_or("a value that is not a number"),
        _ => Err("a value that is not a number"),
    }
}

/// A `float` column's value (MySQL sends FLOAT as 4 bytes in the binary protocol).
fn to_f32(value: &Value) -> Result<f32, &'static str> {
    match value {
        Value::Float(v) => Ok(*v),
        // Through the shortest text: the f32 that prints the same.
        Value::Double(v) => v
            .to_string()
            .parse::<f32>()
            .map_err(|_| "a value that is not a number"),
        Value::Bytes(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<f32>().ok())
            .ok_or("a value that is not a number"),
        _ => Err("a value that is not a number"),
    }
}

fn to_text(value: Value, field: &FieldMeta) -> Result<String, &'static str> {
    match value {
        Value::Bytes(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Ok(text),
            // Spatial and other binary values of `other` fields: base64, as samples show them.
            Err(err) if field.field_type == FieldType::Other => {
                Ok(base64::engine::general_purpose::STANDARD.encode(err.as_bytes()))
            }
            Err(_) => Err("text that is not valid UTF-8"),
        },
        Value::Int(v) => Ok(v.to_string()),
        Value::UInt(v) => Ok(v.to_string()),
        Value::Float(v) => Ok(v.to_string()),
        Value::Double(v) => Ok(v.to_string()),
        Value::Date(..) | Value::Time(..) => Err("a date or time in a text field"),
        Value::NULL => Err("a NULL where a value was expected"),
    }
}

fn days_since_epoch(year: u16, month: u8, day: u8) -> Result<i64, &'static str> {
    if year == 0 && month == 0 && day == 0 {
        return Err("a zero date (0000-00-00), which is no date");
    }
    let month = time::Month::try_from(month).map_err(|_| "an invalid date (zero month)")?;
    let date = time::Date::from_calendar_date(i32::from(year), month, day)
        .map_err(|_| "an invalid date (zero day or beyond the month)")?;
    Ok(i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY)
}

fn to_date32(value: &Value) -> Result<i32, &'static str> {
    match value {
        Value::Date(year, month, day, ..) => {
            let days = days_since_epoch(*year, *month, *day)?;
            i32::try_from(days).map_err(|_| "a date out of range")
        }
        _ => Err("a value that is not a date"),
    }
}

fn to_time64(value: &Value) -> Result<i64, &'static str> {
    match value {
        Value::Time(negative, days, hours, minutes, seconds, micros) => {
            let zero = *days == 0 && *hours == 0 && *minutes == 0 && *seconds == 0 && *micros == 0;
            if (*negative && !zero) || *days > 0 || *hours > 23 {
                return Err(
                    "a time outside 00:00:00 to 23:59:59.999999 (MySQL TIME is a duration \
                     of up to ±838 hours; Arrow's Time64 is a time of day)",
                );
            }
            Ok(
                ((i64::from(*hours) * 60 + i64::from(*minutes)) * 60 + i64::from(*seconds))
                    * 1_000_000
                    + i64::from(*micros),
            )
        }
        _ => Err("a value that is not a time"),
    }
}

fn to_timestamp(value: &Value) -> Result<i64, &'static str> {
    match value {
        Value::Date(year, month, day, hour, minute, second, micros) => {
            let days = days_since_epoch(*year, *month, *day)?;
            let clock = ((i64::from(*hour) * 60 + i64::from(*minute)) * 60 + i64::from(*second))
                * 1_000_000
                + i64::from(*micros);
            Ok(days * MICROS_PER_DAY + clock)
        }
        _ => Err("a value that is not a date and time"),
    }
}

/// Decimal text (`-12.5`, `3`, `.5`): an optional sign, digits, an optional fraction.
pub(super) fn is_decimal_text(text: &str) -> bool {
    let digits = text
        .strip_prefix('-')
        .or_else(|| text.strip_prefix('+'))
        .unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    !(int.is_empty() && frac.is_empty())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// Decimal text as a Decimal128 of `precision` and `scale`, exactly: `None` when it has more
/// significant fraction digits than `scale` or more digits than `precision`.
pub(super) fn parse_decimal(text: &str, precision: u8, scale: i8) -> Option<i128> {
    if !is_decimal_text(text) {
        return None;
    }
    let negative = text.starts_with('-');
    let digits = text.trim_start_matches(['-', '+']);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = usize::try_from(scale).ok()?;
    let (kept, dropped) = frac.split_at(frac.len().min(scale));
    if dropped.bytes().any(|b| b != b'0') {
        return None;
    }
    let padding = std::iter::repeat_n(b'0', scale - kept.len());
    let mut value: i128 = 0;
    for b in int.bytes().chain(kept.bytes()).chain(padding) {
        value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    let limit = 10_i128.checked_pow(u32::from(precision))?;
    if value >= limit {
        return None;
    }
    Some(if negative { -value } else { value })
}

/// A Decimal128 value of `scale` as exact decimal text (`-12.50` for -1250 at scale 2).
pub(super) fn format_decimal(value: i128, scale: i8) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let digits = value.unsigned_abs().to_string();
    if scale <= 0 {
        if value == 0 {
            return "0".to_owned();
        }
        let zeros = usize::from(scale.unsigned_abs());
        return format!("{sign}{digits}{}", "0".repeat(zeros));
    }
    let scale = usize::from(scale.unsigned_abs());
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
    } else {
        digits
    };
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal("12.5", 5, 2), Some(1250));
        assert_eq!(parse_decimal("-0.010", 5, 2), Some(-1));
        assert_eq!(parse_decimal("12.501", 5, 2), None);
        assert_eq!(parse_decimal("1234", 5, 2), None);
        assert_eq!(parse_decimal("999.99", 5, 2), Some(99999));
        assert_eq!(parse_decimal("1e5", 5, 2), None);
        assert_eq!(parse_decimal("", 5, 2), None);
        assert_eq!(
            parse_decimal("12345678901234.123456", 20, 6),
            Some(12_345_678_901_234_123_456)
        );
        assert_eq!(format_decimal(1250, 2), "12.50");
        assert_eq!(format_decimal(-1, 2), "-0.01");
        assert_eq!(format_decimal(0, 3), "0.000");
        assert_eq!(format_decimal(12, -2), "1200");
        assert_eq!(format_decimal(7, 0), "7");
        let max = 10_i128.pow(38) - 1;
        assert_eq!(parse_decimal(&format_decimal(-max, 10), 38, 10), Some(-max));
    }

    #[test]
    fn times_of_day_only() {
        assert_eq!(
            to_time64(&Value::Time(false, 0, 23, 59, 59, 999_999)),
            Ok(86_399_999_999)
        );
        assert!(to_time64(&Value::Time(true, 0, 1, 0, 0, 0)).is_err());
        assert!(to_time64(&Value::Time(false, 1, 0, 0, 0, 0)).is_err());
        assert_eq!(to_date32(&Value::Date(1970, 1, 2, 0, 0, 0, 0)), Ok(1));
        assert!(to_date32(&Value::Date(0, 0, 0, 0, 0, 0, 0)).is_err());
        assert_eq!(
            to_timestamp(&Value::Date(1969, 12, 31, 23, 59, 59, 999_999)),
            Ok(-1)
        );
    }

    #[test]
    fn cursor_values_are_typed() {
        assert_eq!(
            parse_timestamp_value("2024-03-01T14:34:56.5+02:00"),
            Some(Value::Date(2024, 3, 1, 12, 34, 56, 500_000))
        );
        assert_eq!(
            parse_timestamp_value("2024-03-01 12:34:56"),
            Some(Value::Date(2024, 3, 1, 12, 34, 56, 0))
        );
        assert_eq!(parse_timestamp_value("yesterday"), None);
        assert_eq!(
            parse_time_value("10:00:01.25"),
            Some(Value::Time(false, 0, 10, 0, 1, 250_000))
        );
    }
}
