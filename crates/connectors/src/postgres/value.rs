//! PostgreSQL values as JSON: the type mapping for discovery, the select list for samples, and the
//! decoding of each sampled value.

use crate::FieldType;
use base64::Engine as _;
use serde_json::Value;
use std::error::Error as StdError;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Type};

/// The portable type for a column whose (base) type is `typname`; `builtin` says whether that
/// type lives in `pg_catalog` (a user type may reuse a built-in name in another schema).
pub(super) fn field_type(typname: &str, builtin: bool) -> FieldType {
    if !builtin {
        return if typname == "citext" {
            FieldType::String
        } else {
            FieldType::Other
        };
    }
    match typname {
        "bool" => FieldType::Boolean,
        "int2" | "int4" | "int8" => FieldType::Integer,
        "float4" | "float8" => FieldType::Float,
        "numeric" => FieldType::Decimal,
        "text" | "varchar" | "bpchar" | "char" | "name" => FieldType::String,
        "bytea" => FieldType::Binary,
        "date" => FieldType::Date,
        "time" | "timetz" => FieldType::Time,
        "timestamp" => FieldType::Timestamp,
        "timestamptz" => FieldType::TimestampTz,
        "uuid" => FieldType::Uuid,
        "json" | "jsonb" => FieldType::Json,
        _ => FieldType::Other,
    }
}

/// The type a sampled column is cast to in the select list: a built-in type the connector
/// decodes from PostgreSQL's binary format, or `text` for everything else (numeric keeps its
/// exact digits that way; arrays, ranges, enums and other types read as PostgreSQL prints them).
/// Domains are cast to their base type. The result only ever comes from this fixed list.
pub(super) fn cast_target(typname: &str, builtin: bool) -> &'static str {
    if !builtin {
        return "pg_catalog.text";
    }
    match typname {
        "bool" => "pg_catalog.bool",
        "int2" => "pg_catalog.int2",
        "int4" => "pg_catalog.int4",
        "int8" => "pg_catalog.int8",
        "float4" => "pg_catalog.float4",
        "float8" => "pg_catalog.float8",
        "bytea" => "pg_catalog.bytea",
        "date" => "pg_catalog.date",
        "time" => "pg_catalog.time",
        "timestamp" => "pg_catalog.timestamp",
        "timestamptz" => "pg_catalog.timestamptz",
        "uuid" => "pg_catalog.uuid",
        "json" => "pg_catalog.json",
        "jsonb" => "pg_catalog.jsonb",
        _ => "pg_catalog.text",
    }
}

// Type OIDs of the types the select list produces (fixed in PostgreSQL's catalog).
const BOOL: u32 = 16;
const BYTEA: u32 = 17;
const INT8: u32 = 20;
const INT2: u32 = 21;
const INT4: u32 = 23;
const JSON: u32 = 114;
const FLOAT4: u32 = 700;
const FLOAT8: u32 = 701;
const DATE: u32 = 1082;
const TIME: u32 = 1083;
const TIMESTAMP: u32 = 1114;
const TIMESTAMPTZ: u32 = 1184;
const UUID: u32 = 2950;
const JSONB: u32 = 3802;

/// Column `index` of `row` as JSON. `Err` when the value cannot be decoded.
pub(super) fn decode(row: &Row, index: usize) -> Result<Value, tokio_postgres::Error> {
    let Some(column) = row.columns().get(index) else {
        return Ok(Value::Null);
    };
    let oid = column.type_().oid();
    Ok(match oid {
        BOOL => or_null(row.try_get::<_, Option<bool>>(index)?, Value::Bool),
        INT2 => or_null(row.try_get::<_, Option<i16>>(index)?, |v| {
            Value::from(i64::from(v))
        }),
        INT4 => or_null(row.try_get::<_, Option<i32>>(index)?, |v| {
            Value::from(i64::from(v))
        }),
        INT8 => or_null(row.try_get::<_, Option<i64>>(index)?, int_value),
        FLOAT4 => or_null(row.try_get::<_, Option<f32>>(index)?, float4_value),
        FLOAT8 => or_null(row.try_get::<_, Option<f64>>(index)?, float_value),
        BYTEA => or_null(row.try_get::<_, Option<Vec<u8>>>(index)?, |v| {
            Value::String(base64::engine::general_purpose::STANDARD.encode(v))
        }),
        UUID => or_null(row.try_get::<_, Option<uuid::Uuid>>(index)?, |v| {
            Value::String(v.hyphenated().to_string())
        }),
        JSON | JSONB => row
            .try_get::<_, Option<Value>>(index)?
            .unwrap_or(Value::Null),
        DATE | TIME | TIMESTAMP | TIMESTAMPTZ => match row.try_get::<_, Option<Raw<'_>>>(index)? {
            None => Value::Null,
            Some(Raw(raw)) => temporal(oid, raw).map_or(Value::Null, Value::String),
        },
        _ => or_null(row.try_get::<_, Option<String>>(index)?, Value::String),
    })
}

fn or_null<T>(value: Option<T>, to_json: impl FnOnce(T) -> Value) -> Value {
    value.map_or(Value::Null, to_json)
}

/// JSON numbers are exact up to 2^53; larger integers are strings.
pub(crate) fn int_value(v: i64) -> Value {
    if v.unsigned_abs() <= 1 << 53 {
        Value::from(v)
    } else {
        Value::String(v.to_string())
    }
}

/// Finite floats are numbers; NaN and the infinities are strings, as PostgreSQL spells them.
pub(crate) fn float_value(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or_else(
        || {
            Value::String(
                if v.is_nan() {
                    "NaN"
                } else if v > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                }
                .to_owned(),
            )
        },
        Value::Number,
    )
}

/// A `real` keeps its shortest decimal form (0.1, not 0.10000000149011612).
pub(crate) fn float4_value(v: f32) -> Value {
    float_value(v.to_string().parse::<f64>().unwrap_or(f64::from(v)))
}

/// A value in PostgreSQL's binary format, for the types decoded here.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Raw(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Dates and times in ISO 8601 (timestamps with a zone in UTC, RFC 3339); PostgreSQL's
/// `infinity` and `-infinity` as those words.
fn temporal(oid: u32, raw: &[u8]) -> Option<String> {
    match oid {
        DATE => {
            let days = i32::from_be_bytes(raw.try_into().ok()?);
            Some(match days {
                i32::MAX => "infinity".to_owned(),
                i32::MIN => "-infinity".to_owned(),
                days => format_date(i64::from(days) + PG_EPOCH_DAYS),
            })
        }
        TIME => Some(format_time(i64::from_be_bytes(raw.try_into().ok()?))),
        TIMESTAMP | TIMESTAMPTZ => {
            let micros = i64::from_be_bytes(raw.try_into().ok()?);
            Some(match micros {
                i64::MAX => "infinity".to_owned(),
                i64::MIN => "-infinity".to_owned(),
                micros => {
                    let days = micros.div_euclid(MICROS_PER_DAY) + PG_EPOCH_DAYS;
                    let zone = if oid == TIMESTAMPTZ { "Z" } else { "" };
                    format!(
                        "{}T{}{zone}",
                        format_date(days),
                        format_time(micros.rem_euclid(MICROS_PER_DAY))
                    )
                }
            })
        }
        _ => None,
    }
}

/// `YYYY-MM-DD` for days since 1970-01-01 (proleptic Gregorian; years outside 0–9999 get a sign,
/// as ISO 8601's expanded form).
pub(crate) fn format_date(days_since_1970: i64) -> String {
    let (year, month, day) = civil_from_days(days_since_1970);
    if (0..=9999).contains(&year) {
        format!("{year:04}-{month:02}-{day:02}")
    } else {
        format!("{year:+05}-{month:02}-{day:02}")
    }
}

/// `HH:MM:SS` with the fraction of a second when there is one (trailing zeros dropped).
pub(crate) fn format_time(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if fraction == 0 {
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        let digits = format!("{fraction:06}");
        format!("{h:02}:{m:02}:{s:02}.{}", digits.trim_end_matches('0'))
    }
}

/// Year, month and day of a day number (days since 1970-01-01), after Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(PG_EPOCH_DAYS), "2000-01-01");
        assert_eq!(format_date(PG_EPOCH_DAYS + 59), "2000-02-29");
        assert_eq!(format_date(-719_528), "0000-01-01");
        assert_eq!(format_date(-719_529), "-0001-12-31");
        assert_eq!(format_date(2_932_897), "+10000-01-01");
        assert_eq!(format_time(0), "00:00:00");
        assert_eq!(format_time(45_296_789_000), "12:34:56.789");
        assert_eq!(format_time(1), "00:00:00.000001");
        assert_eq!(format_time(MICROS_PER_DAY), "24:00:00");
        let ts = (1_709_296_496_789_000_i64) - PG_EPOCH_DAYS * MICROS_PER_DAY;
        assert_eq!(
            temporal(TIMESTAMPTZ, &ts.to_be_bytes()).as_deref(),
            Some("2024-03-01T12:34:56.789Z")
        );
        let before = -1_i64;
        assert_eq!(
            temporal(TIMESTAMP, &before.to_be_bytes()).as_deref(),
            Some("1999-12-31T23:59:59.999999")
        );
        assert_eq!(
            temporal(TIMESTAMP, &i64::MAX.to_be_bytes()).as_deref(),
            Some("infinity")
        );
        assert_eq!(
            temporal(DATE, &i32::MIN.to_be_bytes()).as_deref(),
            Some("-infinity")
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(
            int_value(9_007_199_254_740_992),
            Value::from(9_007_199_254_740_992_i64)
        );
        assert_eq!(
            int_value(9_007_199_254_740_993),
            Value::String("9007199254740993".into())
        );
        assert_eq!(int_value(i64::MIN), Value::String(i64::MIN.to_string()));
        assert_eq!(float_value(f64::NAN), Value::String("NaN".into()));
        assert_eq!(
            float_value(f64::NEG_INFINITY),
            Value::String("-Infinity".into())
        );
        assert_eq!(float4_value(0.1), Value::from(0.1_f64));
    }
}
