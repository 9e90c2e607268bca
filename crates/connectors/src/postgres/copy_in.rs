//! Arrow columns in PostgreSQL's binary COPY format.
//!
//! Each destination column gets an [`Encoding`]: the Arrow type written directly in the binary
//! form of the column's (base) type. A pair with no direct encoding goes through a staging column
//! of the Arrow type's natural PostgreSQL type ([`natural_type`]) and a server-side cast.

use super::copy_out::{PG_EPOCH_DAYS, PG_EPOCH_MICROS};
use super::numeric;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrowPrimitiveType, PrimitiveArray, RecordBatch};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, TimeUnit};

/// How one Arrow column is written in one PostgreSQL type's binary form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    Bool,
    /// int2, int4, int8 (the width in bytes), range-checked.
    Int(u8),
    Float4,
    Float8,
    NumericFromDecimal,
    NumericFromInt,
    NumericFromText,
    /// text, varchar, bpchar, name, json.
    Text,
    /// jsonb: the version byte (1), then the text.
    Jsonb,
    Bytea,
    Date,
    Time,
    /// timestamp and timestamptz (microseconds since 2000-01-01 either way).
    Timestamp,
    Uuid,
    /// A value already in the column type's binary form (a field marked
    /// [`crate::batch::keys::PG_BINARY`] with the column's type), written as it is.
    PgBinary,
}

fn is_int(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    )
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The direct encoding of `data_type` into the built-in type `typname`, if there is one.
pub(super) fn direct(data_type: &DataType, typname: &str) -> Option<Encoding> {
    use Encoding as E;
    Some(match typname {
        "bool" if *data_type == DataType::Boolean => E::Bool,
        "int2" if is_int(data_type) => E::Int(2),
        "int4" if is_int(data_type) => E::Int(4),
        "int8" if is_int(data_type) => E::Int(8),
        "float4" if matches!(data_type, DataType::Float32 | DataType::Float64) => E::Float4,
        "float8" if matches!(data_type, DataType::Float32 | DataType::Float64) => E::Float8,
        "numeric" if matches!(data_type, DataType::Decimal128(..)) => E::NumericFromDecimal,
        "numeric" if is_int(data_type) => E::NumericFromInt,
        "numeric" if is_string(data_type) => E::NumericFromText,
        "text" | "varchar" | "bpchar" | "name" | "json" if is_string(data_type) => E::Text,
        "jsonb" if is_string(data_type) => E::Jsonb,
        "bytea"
            if matches!(
                data_type,
                DataType::Binary | DataType::LargeBinary | DataType::BinaryView
            ) =>
        {
            E::Bytea
        }
        "date" if matches!(data_type, DataType::Date32 | DataType::Date64) => E::Date,
        "time"
            if matches!(
                data_type,
                DataType::Time32(TimeUnit::Second | TimeUnit::Millisecond)
                    | DataType::Time64(TimeUnit::Microsecond | TimeUnit::Nanosecond)
            ) =>
        {
            E::Time
        }
        "timestamp" | "timestamptz" if matches!(data_type, DataType::Timestamp(..)) => E::Timestamp,
        "uuid" if *data_type == DataType::FixedSizeBinary(16) => E::Uuid,
        _ => return None,
    })
}

/// The PostgreSQL type that holds an Arrow type as it is (`None`: Lockstep does not write that
/// Arrow type). Every natural type has a direct encoding.
pub(super) fn natural_type(data_type: &DataType) -> Option<&'static str> {
    Some(match data_type {
        DataType::Boolean => "boolean",
        t if is_int(t) => "bigint",
        DataType::Float32 | DataType::Float64 => "double precision",
        DataType::Decimal128(..) => "numeric",
        t if is_string(t) => "text",
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "bytea",
        DataType::Date32 | DataType::Date64 => "date",
        DataType::Time32(TimeUnit::Second | TimeUnit::Millisecond)
        | DataType::Time64(TimeUnit::Microsecond | TimeUnit::Nanosecond) => "time",
        DataType::Timestamp(_, None) => "timestamp",
        DataType::Timestamp(_, Some(_)) => "timestamptz",
        DataType::FixedSizeBinary(16) => "uuid",
        _ => return None,
    })
}

/// The built-in type name (`pg_type.typname`) of a natural type.
pub(super) fn natural_typname(sql: &str) -> &'static str {
    match sql {
        "boolean" => "bool",
        "bigint" => "int8",
        "double precision" => "float8",
        "numeric" => "numeric",
        "bytea" => "bytea",
        "date" => "date",
        "time" => "time",
        "timestamp" => "timestamp",
        "timestamptz" => "timestamptz",
        "uuid" => "uuid",
        _ => "text",
    }
}

/// Why a value could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unwritable {
    /// Outside the column type's range.
    OutOfRange,
    /// Text that is not a decimal number (numeric columns).
    NotANumber,
    /// An Arrow type this encoding does not take (the schema changed under the writer).
    WrongType,
}

/// A primitive column's values and validity.
struct Prim<'a, T> {
    values: &'a [T],
    nulls: Option<&'a NullBuffer>,
}

impl<T: Copy> Prim<'_, T> {
    fn get(&self, row: usize) -> Option<T> {
        if self.nulls.is_some_and(|n| n.is_null(row)) {
            None
        } else {
            self.values.get(row).copied()
        }
    }
}

fn prim<T: ArrowPrimitiveType>(array: &PrimitiveArray<T>) -> Prim<'_, T::Native> {
    Prim {
        values: array.values(),
        nulls: array.nulls(),
    }
}

enum Ints<'a> {
    I8(Prim<'a, i8>),
    I16(Prim<'a, i16>),
    I32(Prim<'a, i32>),
    I64(Prim<'a, i64>),
    U8(Prim<'a, u8>),
    U16(Prim<'a, u16>),
    U32(Prim<'a, u32>),
    U64(Prim<'a, u64>),
}

impl Ints<'_> {
    fn get(&self, row: usize) -> Option<i128> {
        match self {
            Ints::I8(p) => p.get(row).map(i128::from),
            Ints::I16(p) => p.get(row).map(i128::from),
            Ints::I32(p) => p.get(row).map(i128::from),
            Ints::I64(p) => p.get(row).map(i128::from),
            Ints::U8(p) => p.get(row).map(i128::from),
            Ints::U16(p) => p.get(row).map(i128::from),
            Ints::U32(p) => p.get(row).map(i128::from),
            Ints::U64(p) => p.get(row).map(i128::from),
        }
    }
}

fn ints(array: &dyn Array) -> Option<Ints<'_>> {
    Some(match array.data_type() {
        DataType::Int8 => Ints::I8(prim(array.as_primitive_opt::<Int8Type>()?)),
        DataType::Int16 => Ints::I16(prim(array.as_primitive_opt::<Int16Type>()?)),
        DataType::Int32 => Ints::I32(prim(array.as_primitive_opt::<Int32Type>()?)),
        DataType::Int64 => Ints::I64(prim(array.as_primitive_opt::<Int64Type>()?)),
        DataType::UInt8 => Ints::U8(prim(array.as_primitive_opt::<UInt8Type>()?)),
        DataType::UInt16 => Ints::U16(prim(array.as_primitive_opt::<UInt16Type>()?)),
        DataType::UInt32 => Ints::U32(prim(array.as_primitive_opt::<UInt32Type>()?)),
        DataType::UInt64 => Ints::U64(prim(array.as_primitive_opt::<UInt64Type>()?)),
        _ => return None,
    })
}

/// Byte-string columns: text and binary, in their three Arrow layouts.
enum Strings<'a> {
    Utf8(&'a arrow_array::StringArray),
    LargeUtf8(&'a arrow_array::LargeStringArray),
    Utf8View(&'a arrow_array::StringViewArray),
    Binary(&'a arrow_array::BinaryArray),
    LargeBinary(&'a arrow_array::LargeBinaryArray),
    BinaryView(&'a arrow_array::BinaryViewArray),
}

impl Strings<'_> {
    fn get(&self, row: usize) -> Option<&[u8]> {
        macro_rules! value {
            ($a:expr, $to:ident) => {
                if $a.is_null(row) || row >= $a.len() {
                    None
                } else {
                    Some($a.value(row).$to())
                }
            };
        }
        match self {
            Strings::Utf8(a) => value!(a, as_bytes),
            Strings::LargeUtf8(a) => value!(a, as_bytes),
            Strings::Utf8View(a) => value!(a, as_bytes),
            Strings::Binary(a) => value!(a, as_ref),
            Strings::LargeBinary(a) => value!(a, as_ref),
            Strings::BinaryView(a) => value!(a, as_ref),
        }
    }

    fn get_str(&self, row: usize) -> Option<&str> {
        match self {
            Strings::Utf8(a) if !a.is_null(row) && row < a.len() => Some(a.value(row)),
            Strings::LargeUtf8(a) if !a.is_null(row) && row < a.len() => Some(a.value(row)),
            Strings::Utf8View(a) if !a.is_null(row) && row < a.len() => Some(a.value(row)),
            _ => None,
        }
    }
}

fn strings(array: &dyn Array) -> Option<Strings<'_>> {
    Some(match array.data_type() {
        DataType::Utf8 => Strings::Utf8(array.as_string_opt::<i32>()?),
        DataType::LargeUtf8 => Strings::LargeUtf8(array.as_string_opt::<i64>()?),
        DataType::Utf8View => Strings::Utf8View(array.as_string_view_opt()?),
        DataType::Binary => Strings::Binary(array.as_binary_opt::<i32>()?),
        DataType::LargeBinary => Strings::LargeBinary(array.as_binary_opt::<i64>()?),
        DataType::BinaryView => Strings::BinaryView(array.as_binary_view_opt()?),
        _ => return None,
    })
}

/// A column bound for one batch: the encoding and the Arrow values it reads.
enum Bound<'a> {
    Bool(&'a arrow_array::BooleanArray),
    Int(Ints<'a>, u8),
    Float32(Prim<'a, f32>, bool),
    Float64(Prim<'a, f64>, bool),
    Decimal(Prim<'a, i128>, i32),
    IntNumeric(Ints<'a>),
    TextNumeric(Strings<'a>),
    Text(Strings<'a>),
    Jsonb(Strings<'a>),
    Bytea(Strings<'a>),
    Date32(Prim<'a, i32>),
    /// Milliseconds since 1970.
    Date64(Prim<'a, i64>),
    /// Values and the factor to microseconds (negative: a divisor).
    Time32(Prim<'a, i32>, i64),
    Time64(Prim<'a, i64>, i64),
    Timestamp(Prim<'a, i64>, i64),
    Uuid(&'a arrow_array::FixedSizeBinaryArray),
}

fn bind(array: &dyn Array, encoding: Encoding) -> Option<Bound<'_>> {
    use Encoding as E;
    Some(match encoding {
        E::Bool => Bound::Bool(array.as_boolean_opt()?),
        E::Int(width) => Bound::Int(ints(array)?, width),
        E::Float4 | E::Float8 => {
            let four = encoding == E::Float4;
            match array.data_type() {
                DataType::Float32 => {
                    Bound::Float32(prim(array.as_primitive_opt::<Float32Type>()?), four)
                }
                DataType::Float64 => {
                    Bound::Float64(prim(array.as_primitive_opt::<Float64Type>()?), four)
                }
                _ => return None,
            }
        }
        E::NumericFromDecimal => match array.data_type() {
            DataType::Decimal128(_, scale) => Bound::Decimal(
                prim(array.as_primitive_opt::<Decimal128Type>()?),
                i32::from(*scale),
            ),
            _ => return None,
        },
        E::NumericFromInt => Bound::IntNumeric(ints(array)?),
        E::NumericFromText => Bound::TextNumeric(strings(array)?),
        E::Text => Bound::Text(strings(array)?),
        E::Jsonb => Bound::Jsonb(strings(array)?),
        E::Bytea | E::PgBinary => Bound::Bytea(strings(array)?),
        E::Date => match array.data_type() {
            DataType::Date32 => Bound::Date32(prim(array.as_primitive_opt::<Date32Type>()?)),
            DataType::Date64 => Bound::Date64(prim(array.as_primitive_opt::<Date64Type>()?)),
            _ => return None,
        },
        E::Time => match array.data_type() {
            DataType::Time32(TimeUnit::Second) => Bound::Time32(
                prim(array.as_primitive_opt::<Time32SecondType>()?),
                1_000_000,
            ),
            DataType::Time32(TimeUnit::Millisecond) => Bound::Time32(
                prim(array.as_primitive_opt::<Time32MillisecondType>()?),
                1_000,
            ),
            DataType::Time64(TimeUnit::Microsecond) => {
                Bound::Time64(prim(array.as_primitive_opt::<Time64MicrosecondType>()?), 1)
            }
            DataType::Time64(TimeUnit::Nanosecond) => Bound::Time64(
                prim(array.as_primitive_opt::<Time64NanosecondType>()?),
                -1_000,
            ),
            _ => return None,
        },
        E::Timestamp => match array.data_type() {
            DataType::Timestamp(TimeUnit::Second, _) => Bound::Timestamp(
                prim(array.as_primitive_opt::<TimestampSecondType>()?),
                1_000_000,
            ),
            DataType::Timestamp(TimeUnit::Millisecond, _) => Bound::Timestamp(
                prim(array.as_primitive_opt::<TimestampMillisecondType>()?),
                1_000,
            ),
            DataType::Timestamp(TimeUnit::Microsecond, _) => Bound::Timestamp(
                prim(array.as_primitive_opt::<TimestampMicrosecondType>()?),
                1,
            ),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => Bound::Timestamp(
                prim(array.as_primitive_opt::<TimestampNanosecondType>()?),
                -1_000,
            ),
            _ => return None,
        },
        E::Uuid => Bound::Uuid(array.as_fixed_size_binary_opt()?),
    })
}

/// `value` in `unit`s (factor > 0: units per… the factor to microseconds; < 0: its divisor).
fn to_micros(value: i64, factor: i64) -> Option<i64> {
    if factor >= 0 {
        value.checked_mul(factor)
    } else {
        Some(value.div_euclid(-factor))
    }
}

const NULL: [u8; 4] = (-1_i32).to_be_bytes();

fn field(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), Unwritable> {
    let len = i32::try_from(bytes.len()).map_err(|_| Unwritable::OutOfRange)?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

fn fixed<const N: usize>(out: &mut Vec<u8>, bytes: [u8; N]) {
    // N is 1, 2, 4, 8 or 16.
    out.extend_from_slice(&(N as i32).to_be_bytes());
    out.extend_from_slice(&bytes);
}

impl Bound<'_> {
    fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), Unwritable> {
        macro_rules! or_null {
            ($value:expr) => {
                match $value {
                    Some(v) => v,
                    None => {
                        out.extend_from_slice(&NULL);
                        return Ok(());
                    }
                }
            };
        }
        match self {
            Bound::Bool(a) => {
                if a.is_null(row) || row >= a.len() {
                    out.extend_from_slice(&NULL);
                } else {
                    fixed(out, [u8::from(a.value(row))]);
                }
            }
            Bound::Int(values, width) => {
                let v = or_null!(values.get(row));
                match width {
                    2 => fixed(
                        out,
                        i16::try_from(v)
                            .map_err(|_| Unwritable::OutOfRange)?
                            .to_be_bytes(),
                    ),
                    4 => fixed(
                        out,
                        i32::try_from(v)
                            .map_err(|_| Unwritable::OutOfRange)?
                            .to_be_bytes(),
                    ),
                    _ => fixed(
                        out,
                        i64::try_from(v)
                            .map_err(|_| Unwritable::OutOfRange)?
                            .to_be_bytes(),
                    ),
                }
            }
            Bound::Float32(values, four) => {
                let v = or_null!(values.get(row));
                if *four {
                    fixed(out, v.to_be_bytes());
                } else {
                    // 24.3 as a double is 24.3, not 24.299999237060547.
                    fixed(out, crate::batch::widen_f32(v).to_be_bytes());
                }
            }
            Bound::Float64(values, four) => {
                let v = or_null!(values.get(row));
                if *four {
                    #[allow(clippy::cast_possible_truncation)]
                    fixed(out, (v as f32).to_be_bytes());
                } else {
                    fixed(out, v.to_be_bytes());
                }
            }
            Bound::Decimal(values, scale) => {
                let v = or_null!(values.get(row));
                numeric::encode_i128(out, v, *scale).map_err(|_| Unwritable::OutOfRange)?;
            }
            Bound::IntNumeric(values) => {
                let v = or_null!(values.get(row));
                numeric::encode_i128(out, v, 0).map_err(|_| Unwritable::OutOfRange)?;
            }
            Bound::TextNumeric(values) => {
                let v = or_null!(values.get_str(row));
                numeric::encode_text(out, v).map_err(|err| match err {
                    numeric::NumericError::Malformed => Unwritable::NotANumber,
                    _ => Unwritable::OutOfRange,
                })?;
            }
            Bound::Text(values) | Bound::Bytea(values) => {
                field(out, or_null!(values.get(row)))?;
            }
            Bound::Jsonb(values) => {
                let v = or_null!(values.get(row));
                let len = i32::try_from(v.len() + 1).map_err(|_| Unwritable::OutOfRange)?;
                out.extend_from_slice(&len.to_be_bytes());
                out.push(1);
                out.extend_from_slice(v);
            }
            Bound::Date32(values) => {
                let days = match or_null!(values.get(row)) {
                    // The extremes stand for PostgreSQL's ±infinity (as reads answer them).
                    i32::MAX => i32::MAX,
                    i32::MIN => i32::MIN,
                    d => d.checked_sub(PG_EPOCH_DAYS).ok_or(Unwritable::OutOfRange)?,
                };
                fixed(out, days.to_be_bytes());
            }
            Bound::Date64(values) => {
                let ms = or_null!(values.get(row));
                let days = i32::try_from(ms.div_euclid(86_400_000))
                    .ok()
                    .and_then(|d| d.checked_sub(PG_EPOCH_DAYS))
                    .ok_or(Unwritable::OutOfRange)?;
                fixed(out, days.to_be_bytes());
            }
            Bound::Time32(values, factor) => {
                let v = or_null!(values.get(row));
                let micros = to_micros(i64::from(v), *factor).ok_or(Unwritable::OutOfRange)?;
                fixed(out, micros.to_be_bytes());
            }
            Bound::Time64(values, factor) => {
                let v = or_null!(values.get(row));
                let micros = to_micros(v, *factor).ok_or(Unwritable::OutOfRange)?;
                fixed(out, micros.to_be_bytes());
            }
            Bound::Timestamp(values, factor) => {
                let micros = match or_null!(values.get(row)) {
                    i64::MAX => i64::MAX,
                    i64::MIN => i64::MIN,
                    v => to_micros(v, *factor)
                        .and_then(|m| m.checked_sub(PG_EPOCH_MICROS))
                        .ok_or(Unwritable::OutOfRange)?,
                };
                fixed(out, micros.to_be_bytes());
            }
            Bound::Uuid(a) => {
                if a.is_null(row) || row >= a.len() {
                    out.extend_from_slice(&NULL);
                } else {
                    let bytes: [u8; 16] =
                        a.value(row).try_into().map_err(|_| Unwritable::WrongType)?;
                    fixed(out, bytes);
                }
            }
        }
        Ok(())
    }
}

/// A batch's columns bound to their encodings, ready to write rows.
pub(super) struct Rows<'a> {
    bound: Vec<Bound<'a>>,
    count: [u8; 2],
    len: usize,
}

impl<'a> Rows<'a> {
    /// Binds the batch's columns. On failure: the index of the column and why.
    pub(super) fn bind(
        batch: &'a RecordBatch,
        encodings: &[Encoding],
    ) -> Result<Rows<'a>, (usize, Unwritable)> {
        let mut bound = Vec::with_capacity(encodings.len());
        for (index, (array, encoding)) in batch.columns().iter().zip(encodings).enumerate() {
            bound.push(bind(array.as_ref(), *encoding).ok_or((index, Unwritable::WrongType))?);
        }
        if bound.len() != encodings.len() {
            return Err((bound.len(), Unwritable::WrongType));
        }
        let count = i16::try_from(bound.len())
            .map_err(|_| (0, Unwritable::OutOfRange))?
            .to_be_bytes();
        Ok(Rows {
            bound,
            count,
            len: batch.num_rows(),
        })
    }

    /// Appends rows from `from` on until `out` holds at least `limit` bytes (or the rows end);
    /// answers the next row. On failure: the index of the column and why.
    pub(super) fn write(
        &self,
        from: usize,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<usize, (usize, Unwritable)> {
        let mut row = from;
        while row < self.len && out.len() < limit {
            out.extend_from_slice(&self.count);
            for (index, column) in self.bound.iter().enumerate() {
                column.write(row, out).map_err(|why| (index, why))?;
            }
            row += 1;
        }
        Ok(row)
    }
}

/// Appends all the batch's rows in binary COPY form. On failure: the index of the column and why.
#[cfg(test)]
fn encode_batch(
    batch: &RecordBatch,
    encodings: &[Encoding],
    out: &mut Vec<u8>,
) -> Result<(), (usize, Unwritable)> {
    Rows::bind(batch, encodings)?.write(0, out, usize::MAX)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Int64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn rows_in_binary_form() {
        let batch = RecordBatch::try_from_iter([
            (
                "a",
                Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef,
            ),
            (
                "b",
                Arc::new(StringArray::from(vec![Some("x"), Some("{}")])) as ArrayRef,
            ),
        ])
        .unwrap();
        let mut out = Vec::new();
        encode_batch(&batch, &[Encoding::Int(4), Encoding::Jsonb], &mut out).unwrap();
        assert_eq!(
            out,
            [
                0, 2, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 2, 1, b'x', //
                0, 2, 255, 255, 255, 255, 0, 0, 0, 3, 1, b'{', b'}'
            ]
        );
        let too_big = RecordBatch::try_from_iter([(
            "a",
            Arc::new(Int64Array::from(vec![70_000])) as ArrayRef,
        )])
        .unwrap();
        assert_eq!(
            encode_batch(&too_big, &[Encoding::Int(2)], &mut Vec::new()),
            Err((0, Unwritable::OutOfRange))
        );
    }

    #[test]
    fn every_natural_type_has_a_direct_encoding() {
        for t in [
            DataType::Boolean,
            DataType::Int64,
            DataType::UInt8,
            DataType::Float64,
            DataType::Decimal128(12, 2),
            DataType::Utf8,
            DataType::Binary,
            DataType::Date32,
            DataType::Time64(TimeUnit::Microsecond),
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            DataType::FixedSizeBinary(16),
        ] {
            let natural = natural_type(&t).unwrap();
            assert!(direct(&t, natural_typname(natural)).is_some(), "{t}");
        }
    }
}
