//! Values between Arrow, CEL and JSON.
//!
//! One Arrow cell is read as a [`Cell`]; a cell becomes a CEL value (for expressions), JSON (for
//! rejected records, as the connectors' `Record` shows values), or is appended to a column of a
//! given type ([`ColumnBuilder`], for rule results and casts).
//!
//! How fields look in CEL:
//!
//! | field type | CEL |
//! | --- | --- |
//! | boolean | `bool` |
//! | integer | `int` |
//! | float | `double` |
//! | decimal | `double` (for arithmetic and comparison; a decimal is written back only when a rule or cast targets it) |
//! | string, other | `string` |
//! | json | the parsed value: `map`, `list`, `string`, `int`, `double`, `bool` or `null` |
//! | binary | `bytes` |
//! | date | `string`, `YYYY-MM-DD` |
//! | time | `string`, `HH:MM:SS` with the fraction of a second when there is one |
//! | timestamp, timestamp_tz | `google.protobuf.Timestamp` (a timestamp without a zone as UTC) |
//! | uuid | `string`, hyphenated lower case |
//!
//! A null is CEL's `null`.

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, FixedSizeBinaryBuilder,
    Float64Builder, Int64Builder, StringBuilder, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date64Type, Float32Type, Int8Type, Int16Type, Int32Type, Time32MillisecondType,
    Time32SecondType, Time64NanosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, FixedSizeBinaryArray,
    Float64Array, Int64Array, LargeBinaryArray, LargeStringArray, StringArray,
    Time64MicrosecondArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, TimeUnit};
use base64::Engine as _;
use cel::Value;
use cel::common::types::{
    CelBool, CelBytes, CelDouble, CelInt, CelNull, CelString, CelTimestamp, CelUInt,
};
use cel::common::value::{CowVal, Val};
use cel::objects::Key;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use lockstep_connectors::FieldType;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

const MICROS_PER_DAY: i64 = 86_400_000_000;
const MICROS_PER_SECOND: i64 = 1_000_000;
/// Days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// One value, whatever it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    /// A decimal: the unscaled value and the scale.
    Decimal(i128, i8),
    Str(Cow<'a, str>),
    Bytes(Cow<'a, [u8]>),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since 1970-01-01T00:00:00 (UTC when `zoned`).
    Timestamp {
        micros: i64,
        zoned: bool,
    },
    Uuid([u8; 16]),
    Json(serde_json::Value),
}

/// What a text column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextKind {
    Plain,
    /// JSON text (`json` fields).
    Json,
    /// Exact decimal text (decimals of unknown precision).
    Decimal,
}

impl TextKind {
    pub(crate) fn of(field_type: FieldType) -> TextKind {
        match field_type {
            FieldType::Json => TextKind::Json,
            FieldType::Decimal => TextKind::Decimal,
            _ => TextKind::Plain,
        }
    }
}

/// A typed view of one Arrow column, to read cells from.
#[derive(Debug)]
pub(crate) enum ColumnView<'a> {
    Null,
    Bool(&'a BooleanArray),
    Int64(&'a Int64Array),
    Float64(&'a Float64Array),
    Decimal(&'a Decimal128Array, i8),
    Utf8(&'a StringArray, TextKind),
    LargeUtf8(&'a LargeStringArray, TextKind),
    Binary(&'a BinaryArray),
    LargeBinary(&'a LargeBinaryArray),
    Date32(&'a Date32Array),
    Time64(&'a Time64MicrosecondArray),
    Timestamp(&'a TimestampMicrosecondArray, bool),
    Uuid(&'a FixedSizeBinaryArray),
    /// Types outside the batch contract's table, read one cell at a time.
    Other(&'a dyn Array),
}

impl<'a> ColumnView<'a> {
    /// The view of `array`; `field_type` tells JSON and decimal text apart from plain text.
    pub(crate) fn new(array: &'a ArrayRef, field_type: FieldType) -> ColumnView<'a> {
        let text = TextKind::of(field_type);
        match array.data_type() {
            DataType::Null => ColumnView::Null,
            DataType::Boolean => ColumnView::Bool(array.as_boolean()),
            DataType::Int64 => ColumnView::Int64(array.as_primitive()),
            DataType::Float64 => ColumnView::Float64(array.as_primitive()),
            DataType::Decimal128(_, scale) => ColumnView::Decimal(array.as_primitive(), *scale),
            DataType::Utf8 => ColumnView::Utf8(array.as_string(), text),
            DataType::LargeUtf8 => ColumnView::LargeUtf8(array.as_string(), text),
            DataType::Binary => ColumnView::Binary(array.as_binary()),
            DataType::LargeBinary => ColumnView::LargeBinary(array.as_binary()),
            DataType::Date32 => ColumnView::Date32(array.as_primitive()),
            DataType::Time64(TimeUnit::Microsecond) => ColumnView::Time64(array.as_primitive()),
            DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                ColumnView::Timestamp(array.as_primitive(), tz.is_some())
            }
            DataType::FixedSizeBinary(16) => ColumnView::Uuid(array.as_fixed_size_binary()),
            _ => ColumnView::Other(array.as_ref()),
        }
    }

    /// The cell at `row`.
    pub(crate) fn cell(&self, row: usize) -> Cell<'a> {
        match self {
            ColumnView::Null => Cell::Null,
            ColumnView::Bool(a) => or_null(*a, row, |a| Cell::Bool(a.value(row))),
            ColumnView::Int64(a) => or_null(*a, row, |a| Cell::Int(a.value(row))),
            ColumnView::Float64(a) => or_null(*a, row, |a| Cell::Float(a.value(row))),
            ColumnView::Decimal(a, scale) => {
                or_null(*a, row, |a| Cell::Decimal(a.value(row), *scale))
            }
            ColumnView::Utf8(a, kind) => or_null(*a, row, |a| text_cell(a.value(row), *kind)),
            ColumnView::LargeUtf8(a, kind) => or_null(*a, row, |a| text_cell(a.value(row), *kind)),
            ColumnView::Binary(a) => or_null(*a, row, |a| Cell::Bytes(Cow::Borrowed(a.value(row)))),
            ColumnView::LargeBinary(a) => {
                or_null(*a, row, |a| Cell::Bytes(Cow::Borrowed(a.value(row))))
            }
            ColumnView::Date32(a) => or_null(*a, row, |a| Cell::Date(a.value(row))),
            ColumnView::Time64(a) => or_null(*a, row, |a| Cell::Time(a.value(row))),
            ColumnView::Timestamp(a, zoned) => or_null(*a, row, |a| Cell::Timestamp {
                micros: a.value(row),
                zoned: *zoned,
            }),
            ColumnView::Uuid(a) => or_null(*a, row, |a| match <[u8; 16]>::try_from(a.value(row)) {
                Ok(bytes) => Cell::Uuid(bytes),
                Err(_) => Cell::Bytes(Cow::Borrowed(a.value(row))),
            }),
            ColumnView::Other(a) => other_cell(*a, row),
        }
    }
}

impl<'a> ColumnView<'a> {
    /// The CEL value of the cell at `row`: decimals of unknown precision, held as exact text,
    /// are numbers for rules (a `double`, like every decimal), not text.
    pub(crate) fn cel(&self, row: usize) -> CowVal<'a, 'a> {
        let decimal_text = match self {
            ColumnView::Utf8(a, TextKind::Decimal) if a.is_valid(row) => Some(a.value(row)),
            ColumnView::LargeUtf8(a, TextKind::Decimal) if a.is_valid(row) => Some(a.value(row)),
            _ => None,
        };
        match decimal_text.map(|s| s.trim().parse::<f64>()) {
            Some(Ok(f)) => CowVal::owned(CelDouble::from(f)),
            _ => cell_to_cel(self.cell(row)),
        }
    }
}

fn or_null<'a, A: Array>(
    array: &'a A,
    row: usize,
    value: impl FnOnce(&'a A) -> Cell<'a>,
) -> Cell<'a> {
    if array.is_null(row) {
        Cell::Null
    } else {
        value(array)
    }
}

fn text_cell(s: &str, kind: TextKind) -> Cell<'_> {
    match kind {
        TextKind::Json => match serde_json::from_str(s) {
            Ok(v) => Cell::Json(v),
            Err(_) => Cell::Str(Cow::Borrowed(s)),
        },
        TextKind::Plain | TextKind::Decimal => Cell::Str(Cow::Borrowed(s)),
    }
}

/// Cells of the Arrow types outside the batch contract's table.
fn other_cell(array: &dyn Array, row: usize) -> Cell<'_> {
    if array.is_null(row) {
        return Cell::Null;
    }
    match array.data_type() {
        DataType::Int8 => Cell::Int(i64::from(array.as_primitive::<Int8Type>().value(row))),
        DataType::Int16 => Cell::Int(i64::from(array.as_primitive::<Int16Type>().value(row))),
        DataType::Int32 => Cell::Int(i64::from(array.as_primitive::<Int32Type>().value(row))),
        DataType::UInt8 => Cell::Int(i64::from(array.as_primitive::<UInt8Type>().value(row))),
        DataType::UInt16 => Cell::Int(i64::from(array.as_primitive::<UInt16Type>().value(row))),
        DataType::UInt32 => Cell::Int(i64::from(array.as_primitive::<UInt32Type>().value(row))),
        DataType::UInt64 => {
            let v = array.as_primitive::<UInt64Type>().value(row);
            i64::try_from(v).map_or(Cell::UInt(v), Cell::Int)
        }
        // Through the shortest text: a `real` 24.3 is 24.3 in rules and JSON, not 24.299999237060547.
        DataType::Float32 => Cell::Float(lockstep_connectors::batch::widen_f32(
            array.as_primitive::<Float32Type>().value(row),
        )),
        DataType::Date64 => Cell::Timestamp {
            micros: array
                .as_primitive::<Date64Type>()
                .value(row)
                .saturating_mul(1000),
            zoned: false,
        },
        DataType::Time32(TimeUnit::Second) => Cell::Time(
            i64::from(array.as_primitive::<Time32SecondType>().value(row)) * MICROS_PER_SECOND,
        ),
        DataType::Time32(TimeUnit::Millisecond) => {
            Cell::Time(i64::from(array.as_primitive::<Time32MillisecondType>().value(row)) * 1000)
        }
        DataType::Time64(TimeUnit::Nanosecond) => {
            Cell::Time(array.as_primitive::<Time64NanosecondType>().value(row) / 1000)
        }
        DataType::Timestamp(unit, tz) => {
            let micros = match unit {
                TimeUnit::Second => array
                    .as_primitive::<TimestampSecondType>()
                    .value(row)
                    .saturating_mul(MICROS_PER_SECOND),
                TimeUnit::Millisecond => array
                    .as_primitive::<TimestampMillisecondType>()
                    .value(row)
                    .saturating_mul(1000),
                TimeUnit::Microsecond => array
                    .as_primitive::<arrow_array::types::TimestampMicrosecondType>()
                    .value(row),
                TimeUnit::Nanosecond => {
                    array.as_primitive::<TimestampNanosecondType>().value(row) / 1000
                }
            };
            Cell::Timestamp {
                micros,
                zoned: tz.is_some(),
            }
        }
        DataType::FixedSizeBinary(_) => {
            Cell::Bytes(Cow::Borrowed(array.as_fixed_size_binary().value(row)))
        }
        _ => Cell::Null,
    }
}

// ---------------------------------------------------------------------------------------------
// Cells as CEL values

/// The CEL value of a cell. Strings and bytes borrow the Arrow buffers.
pub(crate) fn cell_to_cel<'b>(cell: Cell<'b>) -> CowVal<'b, 'b> {
    match cell {
        Cell::Null => CowVal::owned(CelNull),
        Cell::Bool(b) => CowVal::owned(CelBool::from(b)),
        Cell::Int(i) => CowVal::owned(CelInt::from(i)),
        Cell::UInt(u) => CowVal::owned(CelUInt::from(u)),
        Cell::Float(f) => CowVal::owned(CelDouble::from(f)),
        Cell::Decimal(v, scale) => CowVal::owned(CelDouble::from(decimal_to_f64(v, scale))),
        Cell::Str(Cow::Borrowed(s)) => CowVal::owned(CelString::from(s)),
        Cell::Str(Cow::Owned(s)) => CowVal::owned(CelString::from(s)),
        Cell::Bytes(Cow::Borrowed(b)) => CowVal::owned(CelBytes::from(b)),
        Cell::Bytes(Cow::Owned(b)) => CowVal::owned(CelBytes::from(b)),
        Cell::Date(days) => CowVal::owned(CelString::from(format_date(days))),
        Cell::Time(micros) => CowVal::owned(CelString::from(format_time(micros))),
        Cell::Timestamp { micros, .. } => match DateTime::from_timestamp_micros(micros) {
            Some(t) => CowVal::owned(CelTimestamp::from(t.fixed_offset())),
            None => CowVal::owned(CelNull),
        },
        Cell::Uuid(bytes) => CowVal::owned(CelString::from(format_uuid(&bytes))),
        Cell::Json(v) => {
            let boxed: Result<Box<dyn Val>, _> = Box::<dyn Val>::try_from(json_to_cel(v));
            match boxed {
                Ok(b) => CowVal::Owned(b),
                Err(_) => CowVal::owned(CelNull),
            }
        }
    }
}

/// JSON as a CEL value: integers that fit are `int`, other numbers `double`.
pub(crate) fn json_to_cel(value: serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::String(Arc::new(s)),
        serde_json::Value::Array(items) => {
            Value::List(Arc::new(items.into_iter().map(json_to_cel).collect()))
        }
        serde_json::Value::Object(map) => {
            let map: HashMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, json_to_cel(v))).collect();
            Value::from(map)
        }
    }
}

/// The cell a CEL result stands for; `None` for results no field can hold (functions, types,
/// opaque values).
pub(crate) fn cel_to_cell(value: Value) -> Option<Cell<'static>> {
    Some(match value {
        Value::Null => Cell::Null,
        Value::Bool(b) => Cell::Bool(b),
        Value::Int(i) => Cell::Int(i),
        Value::UInt(u) => Cell::UInt(u),
        Value::Float(f) => Cell::Float(f),
        Value::String(s) => Cell::Str(Cow::Owned(Arc::unwrap_or_clone(s))),
        Value::Bytes(b) => Cell::Bytes(Cow::Owned(Arc::unwrap_or_clone(b))),
        Value::Timestamp(t) => Cell::Timestamp {
            micros: t.timestamp_micros(),
            zoned: true,
        },
        Value::Duration(d) => Cell::Str(Cow::Owned(d.to_string())),
        Value::List(_) | Value::Map(_) => Cell::Json(cel_to_json(&value)?),
        _ => return None,
    })
}

/// A CEL list or map as JSON (map keys as strings).
fn cel_to_json(value: &Value) -> Option<serde_json::Value> {
    Some(match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::UInt(u) => serde_json::Value::from(*u),
        Value::Float(f) => float_json(*f),
        Value::String(s) => serde_json::Value::String(s.as_ref().clone()),
        Value::Bytes(b) => serde_json::Value::String(
            base64::engine::general_purpose::STANDARD.encode(b.as_slice()),
        ),
        Value::Timestamp(t) => {
            serde_json::Value::String(format_timestamp(t.timestamp_micros(), true))
        }
        Value::Duration(d) => serde_json::Value::String(d.to_string()),
        Value::List(items) => {
            serde_json::Value::Array(items.iter().map(cel_to_json).collect::<Option<Vec<_>>>()?)
        }
        Value::Map(map) => {
            let mut object = serde_json::Map::new();
            for (k, v) in map.map.iter() {
                let key = match k {
                    Key::String(s) => s.as_ref().clone(),
                    Key::Int(i) => i.to_string(),
                    Key::Uint(u) => u.to_string(),
                    Key::Bool(b) => b.to_string(),
                };
                object.insert(key, cel_to_json(v)?);
            }
            serde_json::Value::Object(object)
        }
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Cells as JSON (the connectors' Record conventions)

/// The cell as a `Record` shows it: integers beyond 2^53 and decimals as strings, binary as
/// base64, dates, times and timestamps in ISO 8601 (RFC 3339 with `Z` for timestamps with a
/// zone), uuids hyphenated, JSON fields parsed.
pub(crate) fn cell_to_json(cell: &Cell<'_>) -> serde_json::Value {
    match cell {
        Cell::Null => serde_json::Value::Null,
        Cell::Bool(b) => serde_json::Value::Bool(*b),
        Cell::Int(i) => {
            if i.unsigned_abs() <= 1 << 53 {
                serde_json::Value::from(*i)
            } else {
                serde_json::Value::String(i.to_string())
            }
        }
        Cell::UInt(u) => {
            if *u <= 1 << 53 {
                serde_json::Value::from(*u)
            } else {
                serde_json::Value::String(u.to_string())
            }
        }
        Cell::Float(f) => float_json(*f),
        Cell::Decimal(v, scale) => serde_json::Value::String(format_decimal(*v, *scale)),
        Cell::Str(s) => serde_json::Value::String(s.as_ref().to_owned()),
        Cell::Bytes(b) => {
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Cell::Date(days) => serde_json::Value::String(format_date(*days)),
        Cell::Time(micros) => serde_json::Value::String(format_time(*micros)),
        Cell::Timestamp { micros, zoned } => {
            serde_json::Value::String(format_timestamp(*micros, *zoned))
        }
        Cell::Uuid(bytes) => serde_json::Value::String(format_uuid(bytes)),
        Cell::Json(v) => v.clone(),
    }
}

/// Finite floats are numbers; NaN and the infinities are strings.
fn float_json(f: f64) -> serde_json::Value {
    serde_json::Number::from_f64(f).map_or_else(
        || {
            serde_json::Value::String(
                if f.is_nan() {
                    "NaN"
                } else if f > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                }
                .to_owned(),
            )
        },
        serde_json::Value::Number,
    )
}

// ---------------------------------------------------------------------------------------------
// Building columns

/// Appends cells to a column of one Arrow type, converting them (text is parsed).
#[derive(Debug)]
pub(crate) enum ColumnBuilder {
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Text(StringBuilder, TextKind),
    Binary(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Uuid(FixedSizeBinaryBuilder),
}

/// Why a cell could not be appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unconvertible;

impl ColumnBuilder {
    /// A builder whose column has exactly `data_type`; `None` for types outside the batch
    /// contract's table.
    pub(crate) fn new(
        data_type: &DataType,
        field_type: FieldType,
        capacity: usize,
    ) -> Option<ColumnBuilder> {
        Some(match data_type {
            DataType::Boolean => ColumnBuilder::Bool(BooleanBuilder::with_capacity(capacity)),
            DataType::Int64 => ColumnBuilder::Int(Int64Builder::with_capacity(capacity)),
            DataType::Float64 => ColumnBuilder::Float(Float64Builder::with_capacity(capacity)),
            DataType::Decimal128(p, s) => ColumnBuilder::Decimal(
                Decimal128Builder::with_capacity(capacity)
                    .with_precision_and_scale(*p, *s)
                    .ok()?,
                *p,
                *s,
            ),
            DataType::Utf8 => ColumnBuilder::Text(
                StringBuilder::with_capacity(capacity, capacity.saturating_mul(8)),
                TextKind::of(field_type),
            ),
            DataType::Binary => ColumnBuilder::Binary(BinaryBuilder::with_capacity(
                capacity,
                capacity.saturating_mul(8),
            )),
            DataType::Date32 => ColumnBuilder::Date(Date32Builder::with_capacity(capacity)),
            DataType::Time64(TimeUnit::Microsecond) => {
                ColumnBuilder::Time(Time64MicrosecondBuilder::with_capacity(capacity))
            }
            DataType::Timestamp(TimeUnit::Microsecond, tz) => ColumnBuilder::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone_opt(tz.clone()),
            ),
            DataType::FixedSizeBinary(16) => {
                ColumnBuilder::Uuid(FixedSizeBinaryBuilder::with_capacity(capacity, 16))
            }
            _ => return None,
        })
    }

    pub(crate) fn append_null(&mut self) {
        match self {
            ColumnBuilder::Bool(b) => b.append_null(),
            ColumnBuilder::Int(b) => b.append_null(),
            ColumnBuilder::Float(b) => b.append_null(),
            ColumnBuilder::Decimal(b, ..) => b.append_null(),
            ColumnBuilder::Text(b, _) => b.append_null(),
            ColumnBuilder::Binary(b) => b.append_null(),
            ColumnBuilder::Date(b) => b.append_null(),
            ColumnBuilder::Time(b) => b.append_null(),
            ColumnBuilder::Timestamp(b) => b.append_null(),
            ColumnBuilder::Uuid(b) => b.append_null(),
        }
    }

    /// Appends `cell` converted to the column's type; on error nothing is appended.
    pub(crate) fn append(&mut self, cell: Cell<'_>) -> Result<(), Unconvertible> {
        if cell == Cell::Null {
            self.append_null();
            return Ok(());
        }
        match self {
            ColumnBuilder::Bool(b) => b.append_value(to_bool(cell)?),
            ColumnBuilder::Int(b) => b.append_value(to_int(cell)?),
            ColumnBuilder::Float(b) => b.append_value(to_float(cell)?),
            ColumnBuilder::Decimal(b, p, s) => b.append_value(to_decimal(cell, *p, *s)?),
            ColumnBuilder::Text(b, kind) => b.append_value(to_text(cell, *kind)?),
            ColumnBuilder::Binary(b) => match cell {
                Cell::Bytes(bytes) => b.append_value(bytes),
                Cell::Str(s) => b.append_value(s.as_bytes()),
                Cell::Uuid(u) => b.append_value(u),
                _ => return Err(Unconvertible),
            },
            ColumnBuilder::Date(b) => b.append_value(to_date(cell)?),
            ColumnBuilder::Time(b) => b.append_value(to_time(cell)?),
            ColumnBuilder::Timestamp(b) => b.append_value(to_timestamp(cell)?),
            ColumnBuilder::Uuid(b) => {
                let bytes = to_uuid(cell)?;
                b.append_value(bytes).map_err(|_| Unconvertible)?;
            }
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> ArrayRef {
        match self {
            ColumnBuilder::Bool(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Int(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Float(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Decimal(mut b, ..) => Arc::new(b.finish()),
            ColumnBuilder::Text(mut b, _) => Arc::new(b.finish()),
            ColumnBuilder::Binary(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Date(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Time(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Uuid(mut b) => Arc::new(b.finish()),
        }
    }
}

fn to_bool(cell: Cell<'_>) -> Result<bool, Unconvertible> {
    match cell {
        Cell::Bool(b) => Ok(b),
        Cell::Int(0) | Cell::UInt(0) => Ok(false),
        Cell::Int(1) | Cell::UInt(1) => Ok(true),
        Cell::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "1" => Ok(true),
            "false" | "f" | "no" | "0" => Ok(false),
            _ => Err(Unconvertible),
        },
        Cell::Json(serde_json::Value::Bool(b)) => Ok(b),
        _ => Err(Unconvertible),
    }
}

fn to_int(cell: Cell<'_>) -> Result<i64, Unconvertible> {
    match cell {
        Cell::Int(i) => Ok(i),
        Cell::UInt(u) => i64::try_from(u).map_err(|_| Unconvertible),
        Cell::Float(f) => float_to_int(f),
        Cell::Decimal(v, scale) => {
            let v = rescale(v, scale, 0, false).ok_or(Unconvertible)?;
            i64::try_from(v).map_err(|_| Unconvertible)
        }
        Cell::Str(s) => {
            let s = s.trim();
            match s.parse::<i64>() {
                Ok(i) => Ok(i),
                // "12.0" is an integer; "12.5" is not
                Err(_) => {
                    let v = parse_decimal_exact(s).ok_or(Unconvertible)?;
                    let v = rescale(v.0, v.1, 0, false).ok_or(Unconvertible)?;
                    i64::try_from(v).map_err(|_| Unconvertible)
                }
            }
        }
        Cell::Json(serde_json::Value::Number(n)) => n.as_i64().ok_or(Unconvertible),
        _ => Err(Unconvertible),
    }
}

fn float_to_int(f: f64) -> Result<i64, Unconvertible> {
    // 2^63 does not fit; -2^63 does
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.is_finite() && f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) {
        #[allow(clippy::cast_possible_truncation)]
        Ok(f as i64)
    } else {
        Err(Unconvertible)
    }
}

fn to_float(cell: Cell<'_>) -> Result<f64, Unconvertible> {
    #[allow(clippy::cast_precision_loss)]
    match cell {
        Cell::Float(f) => Ok(f),
        Cell::Int(i) => Ok(i as f64),
        Cell::UInt(u) => Ok(u as f64),
        Cell::Decimal(v, scale) => Ok(decimal_to_f64(v, scale)),
        Cell::Str(s) => s.trim().parse::<f64>().map_err(|_| Unconvertible),
        Cell::Json(serde_json::Value::Number(n)) => n.as_f64().ok_or(Unconvertible),
        _ => Err(Unconvertible),
    }
}

fn to_decimal(cell: Cell<'_>, precision: u8, scale: i8) -> Result<i128, Unconvertible> {
    let v = match cell {
        Cell::Int(i) => rescale(i128::from(i), 0, scale, true),
        Cell::UInt(u) => rescale(i128::from(u), 0, scale, true),
        Cell::Decimal(v, s) => rescale(v, s, scale, true),
        Cell::Float(f) => float_to_decimal(f, scale),
        Cell::Str(s) => parse_decimal(s.trim(), scale),
        Cell::Json(serde_json::Value::Number(n)) => parse_decimal(&n.to_string(), scale),
        _ => None,
    }
    .ok_or(Unconvertible)?;
    if fits_precision(v, precision) {
        Ok(v)
    } else {
        Err(Unconvertible)
    }
}

fn to_text(cell: Cell<'_>, kind: TextKind) -> Result<String, Unconvertible> {
    match kind {
        TextKind::Json => Ok(match cell {
            Cell::Json(v) => v.to_string(),
            Cell::Str(s) => {
                if serde_json::from_str::<serde_json::Value>(&s).is_ok() {
                    s.into_owned()
                } else {
                    serde_json::Value::String(s.into_owned()).to_string()
                }
            }
            other => cell_to_json(&other).to_string(),
        }),
        TextKind::Decimal => match cell {
            Cell::Int(i) => Ok(i.to_string()),
            Cell::UInt(u) => Ok(u.to_string()),
            Cell::Decimal(v, s) => Ok(format_decimal(v, s)),
            Cell::Float(f) if f.is_finite() => Ok(f.to_string()),
            Cell::Str(s) => {
                let t = s.trim();
                if parse_decimal_exact(t).is_some() {
                    Ok(t.to_owned())
                } else {
                    Err(Unconvertible)
                }
            }
            _ => Err(Unconvertible),
        },
        TextKind::Plain => Ok(match cell {
            Cell::Null => String::new(),
            Cell::Bool(b) => b.to_string(),
            Cell::Int(i) => i.to_string(),
            Cell::UInt(u) => u.to_string(),
            Cell::Float(f) => f.to_string(),
            Cell::Decimal(v, s) => format_decimal(v, s),
            Cell::Str(s) => s.into_owned(),
            Cell::Bytes(b) => String::from_utf8(b.into_owned()).map_err(|_| Unconvertible)?,
            Cell::Date(d) => format_date(d),
            Cell::Time(t) => format_time(t),
            Cell::Timestamp { micros, zoned } => format_timestamp(micros, zoned),
            Cell::Uuid(u) => format_uuid(&u),
            Cell::Json(serde_json::Value::String(s)) => s,
            Cell::Json(v) => v.to_string(),
        }),
    }
}

fn to_date(cell: Cell<'_>) -> Result<i32, Unconvertible> {
    match cell {
        Cell::Date(d) => Ok(d),
        Cell::Timestamp { micros, .. } => {
            i32::try_from(micros.div_euclid(MICROS_PER_DAY)).map_err(|_| Unconvertible)
        }
        Cell::Str(s) => {
            let s = s.trim();
            if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                return Ok(days_of(d));
            }
            let micros = parse_timestamp(s).ok_or(Unconvertible)?;
            i32::try_from(micros.div_euclid(MICROS_PER_DAY)).map_err(|_| Unconvertible)
        }
        _ => Err(Unconvertible),
    }
}

fn to_time(cell: Cell<'_>) -> Result<i64, Unconvertible> {
    match cell {
        Cell::Time(t) => Ok(t),
        Cell::Timestamp { micros, .. } => Ok(micros.rem_euclid(MICROS_PER_DAY)),
        Cell::Str(s) => {
            let s = s.trim();
            let t = NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
                .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
                .map_err(|_| Unconvertible)?;
            Ok(i64::from(t.num_seconds_from_midnight()) * MICROS_PER_SECOND
                + i64::from(t.nanosecond() / 1000))
        }
        _ => Err(Unconvertible),
    }
}

fn to_timestamp(cell: Cell<'_>) -> Result<i64, Unconvertible> {
    match cell {
        Cell::Timestamp { micros, .. } => Ok(micros),
        Cell::Date(d) => Ok(i64::from(d) * MICROS_PER_DAY),
        Cell::Str(s) => parse_timestamp(s.trim()).ok_or(Unconvertible),
        Cell::Json(serde_json::Value::String(s)) => parse_timestamp(s.trim()).ok_or(Unconvertible),
        _ => Err(Unconvertible),
    }
}

fn to_uuid(cell: Cell<'_>) -> Result<[u8; 16], Unconvertible> {
    match cell {
        Cell::Uuid(u) => Ok(u),
        Cell::Bytes(b) => <[u8; 16]>::try_from(b.as_ref()).map_err(|_| Unconvertible),
        Cell::Str(s) => parse_uuid(s.trim()).ok_or(Unconvertible),
        _ => Err(Unconvertible),
    }
}

// ---------------------------------------------------------------------------------------------
// Text forms

fn days_of(date: NaiveDate) -> i32 {
    date.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE
}

/// `YYYY-MM-DD` for days since 1970-01-01.
pub(crate) fn format_date(days: i32) -> String {
    match days
        .checked_add(UNIX_EPOCH_DAYS_FROM_CE)
        .and_then(NaiveDate::from_num_days_from_ce_opt)
    {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => days.to_string(),
    }
}

/// `HH:MM:SS` with the fraction of a second when there is one (trailing zeros dropped).
pub(crate) fn format_time(micros: i64) -> String {
    let seconds = micros.div_euclid(MICROS_PER_SECOND);
    let fraction = micros.rem_euclid(MICROS_PER_SECOND);
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if fraction == 0 {
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        let digits = format!("{fraction:06}");
        format!("{h:02}:{m:02}:{s:02}.{}", digits.trim_end_matches('0'))
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]`, with `Z` when the timestamp has a zone.
pub(crate) fn format_timestamp(micros: i64, zoned: bool) -> String {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let time = micros.rem_euclid(MICROS_PER_DAY);
    let date = i32::try_from(days).map_or_else(|_| days.to_string(), format_date);
    let zone = if zoned { "Z" } else { "" };
    format!("{date}T{}{zone}", format_time(time))
}

/// Microseconds since the epoch of RFC 3339 text, or of a timestamp without a zone (taken as
/// UTC), or of a date (midnight).
fn parse_timestamp(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(|d| i64::from(days_of(d)) * MICROS_PER_DAY)
}

fn format_uuid(bytes: &[u8; 16]) -> String {
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = s.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (slot, pair) in out.iter_mut().zip(hex.chunks(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *slot = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Decimals

fn pow10(exp: u32) -> Option<i128> {
    10_i128.checked_pow(exp)
}

#[allow(clippy::cast_precision_loss)]
pub(crate) fn decimal_to_f64(v: i128, scale: i8) -> f64 {
    if scale >= 0 {
        // exact when both fit f64's mantissa; the division rounds once otherwise
        v as f64 / 10_f64.powi(i32::from(scale))
    } else {
        v as f64 * 10_f64.powi(-i32::from(scale))
    }
}

/// Exact text of a decimal.
pub(crate) fn format_decimal(v: i128, scale: i8) -> String {
    if scale <= 0 {
        let zeros = "0".repeat(usize::from(scale.unsigned_abs()));
        return if v == 0 {
            "0".to_owned()
        } else {
            format!("{v}{zeros}")
        };
    }
    let digits = v.unsigned_abs().to_string();
    let scale = usize::from(scale.unsigned_abs());
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    let sign = if v < 0 { "-" } else { "" };
    format!("{sign}{int}.{frac}")
}

/// `v` at scale `from` expressed at scale `to`; digits dropped are rounded half away from zero
/// when `round`, else they must be zeros.
fn rescale(v: i128, from: i8, to: i8, round: bool) -> Option<i128> {
    let diff = i32::from(to) - i32::from(from);
    if diff >= 0 {
        v.checked_mul(pow10(diff.unsigned_abs())?)
    } else {
        let factor = pow10(diff.unsigned_abs())?;
        let (q, r) = (v / factor, v % factor);
        if r == 0 {
            Some(q)
        } else if !round {
            None
        } else if r.unsigned_abs() * 2 >= factor.unsigned_abs() {
            Some(if v < 0 { q - 1 } else { q + 1 })
        } else {
            Some(q)
        }
    }
}

fn fits_precision(v: i128, precision: u8) -> bool {
    pow10(u32::from(precision)).is_none_or(|limit| v.unsigned_abs() < limit.unsigned_abs())
}

#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
fn float_to_decimal(f: f64, scale: i8) -> Option<i128> {
    if !f.is_finite() {
        return None;
    }
    // through the shortest text of the float, so 0.1 is 0.1 and not 0.1000000000000000055…
    parse_decimal(&format!("{f:e}"), scale).or_else(|| {
        let scaled = (f * 10_f64.powi(i32::from(scale))).round();
        (scaled.abs() < 1.0e38).then_some(scaled as i128)
    })
}

/// Decimal text (`-12.340`, `1e3`) at `scale`, rounded half away from zero.
fn parse_decimal(s: &str, scale: i8) -> Option<i128> {
    let (v, s_from) = parse_decimal_exact(s)?;
    rescale(v, s_from, scale, true)
}

/// Decimal text as (unscaled value, scale), exactly.
fn parse_decimal_exact(s: &str) -> Option<(i128, i8)> {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (s.get(..i)?, s.get(i + 1..)?.parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (negative, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        v = v.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    if negative {
        v = -v;
    }
    let scale = i32::try_from(frac.len()).ok()? - exponent;
    let scale = i8::try_from(scale).ok()?;
    Some((v, scale))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        assert_eq!(format_decimal(12345, 2), "123.45");
        assert_eq!(format_decimal(-5, 2), "-0.05");
        assert_eq!(format_decimal(7, -2), "700");
        assert_eq!(parse_decimal("123.456", 2), Some(12346));
        assert_eq!(parse_decimal("-0.005", 2), Some(-1));
        assert_eq!(parse_decimal("1e3", 0), Some(1000));
        assert_eq!(parse_decimal("abc", 2), None);
        assert_eq!(float_to_decimal(0.1, 2), Some(10));
        assert_eq!(to_decimal(Cell::Int(1000), 4, 2), Err(Unconvertible));
        assert_eq!(to_decimal(Cell::Int(10), 4, 2), Ok(1000));
        assert_eq!(to_int(Cell::Str("12.0".into())), Ok(12));
        assert_eq!(to_int(Cell::Str("12.5".into())), Err(Unconvertible));
    }

    #[test]
    fn single_precision_floats_show_as_written() {
        let array: ArrayRef = Arc::new(arrow_array::Float32Array::from(vec![Some(24.3), None]));
        let view = ColumnView::new(&array, FieldType::Float);
        assert_eq!(cell_to_json(&view.cell(0)), serde_json::json!(24.3));
        assert_eq!(view.cell(1), Cell::Null);
        assert_eq!(
            to_text(view.cell(0), TextKind::Plain).as_deref(),
            Ok("24.3")
        );
    }

    #[test]
    fn temporal_text() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(19_783), "2024-03-01");
        assert_eq!(format_time(45_296_789_000), "12:34:56.789");
        assert_eq!(
            format_timestamp(1_709_296_496_789_000, true),
            "2024-03-01T12:34:56.789Z"
        );
        assert_eq!(
            parse_timestamp("2024-03-01T14:34:56.789+02:00"),
            Some(1_709_296_496_789_000)
        );
        assert_eq!(
            parse_timestamp("2024-03-01 12:34:56.789"),
            Some(1_709_296_496_789_000)
        );
        assert_eq!(to_date(Cell::Str("2024-03-01".into())), Ok(19_783));
    }

    #[test]
    fn uuids() {
        let text = "0190f4c2-7d3e-7a4b-9c1d-2e3f4a5b6c7d";
        let bytes = parse_uuid(text).unwrap();
        assert_eq!(format_uuid(&bytes), text);
    }
}
