//! Moving records in bulk: batches in Apache Arrow's columnar format.
//!
//! A source answers an Arrow schema and a stream of [`RecordBatch`]es ([`BatchSource::read`]); a
//! destination takes batches through a [`BatchWriter`] that commits all of them at once or none
//! ([`BatchDestination::writer`]). Every Arrow field carries its connection metadata in the
//! field's metadata map (keys in [`keys`]), so a destination can create exactly the type, the
//! nullability and the key the source had.
//!
//! How each Lockstep [`FieldType`] is held in Arrow ([`arrow_type`]):
//!
//! | FieldType | Arrow |
//! | --- | --- |
//! | boolean | Boolean |
//! | integer | Int64 |
//! | float | Float64; Float32 for single precision (PostgreSQL `real`, MySQL `float`), see [`source_arrow_type`] |
//! | decimal | Decimal128(p, s) when the precision is known and ≤ 38, else Utf8 (exact text) |
//! | string, json, other | Utf8 |
//! | binary | Binary |
//! | date | Date32 |
//! | time | Time64(µs) |
//! | timestamp | Timestamp(µs, none) |
//! | timestamp_tz | Timestamp(µs, "UTC") |
//! | uuid | FixedSizeBinary(16) |

use crate::{ConnectorError, FieldMeta, FieldType};
pub use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, TimeUnit};
pub use arrow_schema::{Schema, SchemaRef};
use futures_util::Stream;
use std::collections::HashMap;
use std::pin::Pin;

/// Field metadata keys.
pub mod keys {
    /// The system's own type name (`numeric(12,2)`, `varchar(40)`).
    pub const NATIVE: &str = "lockstep.native";
    /// The [`crate::FieldType`] in snake_case (`timestamp_tz`).
    pub const TYPE: &str = "lockstep.type";
    /// `"true"` when the field is (part of) the primary key.
    pub const PRIMARY_KEY: &str = "lockstep.primary_key";
    /// The connection kind the native type belongs to (`postgres`, `mysql`, …).
    pub const SOURCE: &str = "lockstep.source";
    /// On an Arrow `Binary` field: its values are PostgreSQL's binary form of this built-in type
    /// (`pg_type.typname`: `numeric`, `int4`), passed on unchanged
    /// ([`super::BatchSource::read_pg_binary`]).
    pub const PG_BINARY: &str = "lockstep.pg_binary";
}

/// The most rows in one batch a source should answer by default.
pub const DEFAULT_BATCH_ROWS: usize = 8192;

/// A stream of batches, all with the schema [`BatchSource::read`] answered.
pub type BatchStream = Pin<Box<dyn Stream<Item = Result<RecordBatch, ConnectorError>> + Send>>;

/// What to read.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadSpec {
    /// The object as discovery names it.
    pub object: String,
    /// Only these fields, in this order (`None`: every field, in the object's order).
    pub fields: Option<Vec<String>>,
    /// Incremental reads: only records whose `field` is greater than `after`, in ascending
    /// order of `field`.
    pub cursor: Option<CursorSpec>,
    /// Rows per batch (a hint; the last batch may be smaller).
    pub batch_rows: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CursorSpec {
    pub field: String,
    /// The last value already synced (`None`: from the start). As JSON: numbers, strings
    /// (timestamps as RFC 3339, decimals as text).
    pub after: Option<serde_json::Value>,
}

/// How a writer changes the destination object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteMode {
    /// The object is replaced atomically at commit: readers see the old or the new, never half.
    Replace,
    /// Records are added.
    Append,
    /// Records are inserted, or update the record with the same key.
    Upsert { key: Vec<String> },
}

/// What to write.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteSpec {
    /// The destination object as its kind names objects ([`crate::object_name`]: `schema.table`,
    /// `database.table` or `table` in the connection's default); created from `schema` if
    /// missing.
    pub object: String,
    /// The batches' schema, with the metadata of [`keys`] on each field.
    pub schema: SchemaRef,
    pub mode: WriteMode,
}

/// Reads records in batches.
pub trait BatchSource: Send + Sync {
    fn read(
        &self,
        spec: ReadSpec,
    ) -> impl Future<Output = Result<(SchemaRef, BatchStream), ConnectorError>> + Send;

    /// [`BatchSource::read`] for a destination that [takes PostgreSQL's binary
    /// form](BatchDestination::takes_pg_binary) and a run that passes values on unchanged: a
    /// PostgreSQL source answers the columns whose binary form it would decode exactly as Arrow
    /// `Binary` fields marked [`keys::PG_BINARY`] holding that form, so no value is decoded and
    /// encoded again on its way (the cursor field is always decoded). Other kinds read as
    /// [`BatchSource::read`] does.
    fn read_pg_binary(
        &self,
        spec: ReadSpec,
    ) -> impl Future<Output = Result<(SchemaRef, BatchStream), ConnectorError>> + Send {
        self.read(spec)
    }
}

/// Writes batches, all-or-nothing.
pub trait BatchWriter: Send {
    /// Sends one batch (it is not visible to readers before [`BatchWriter::commit`]).
    fn write(
        &mut self,
        batch: &RecordBatch,
    ) -> impl Future<Output = Result<(), ConnectorError>> + Send;

    /// Makes everything written visible at once; answers the number of records written.
    fn commit(self) -> impl Future<Output = Result<u64, ConnectorError>> + Send;

    /// Discards everything written; the destination is as it was.
    fn abort(self) -> impl Future<Output = ()> + Send;
}

/// Opens writers.
pub trait BatchDestination: Send + Sync {
    type Writer: BatchWriter;

    fn writer(
        &self,
        spec: WriteSpec,
    ) -> impl Future<Output = Result<Self::Writer, ConnectorError>> + Send;

    /// Whether its writers take fields marked [`keys::PG_BINARY`] (PostgreSQL's): a value goes
    /// into a column of the same built-in type as it came, and is decoded first into any other.
    /// Writers of other kinds refuse such fields.
    fn takes_pg_binary(&self) -> bool {
        false
    }
}

/// The field of PostgreSQL's binary form `field` stands for: its Arrow type as a PostgreSQL
/// source decodes it, without the [`keys::PG_BINARY`] mark, with that type name. `None` for an
/// unmarked field.
pub fn pg_binary_logical(field: &Field) -> Option<(Field, String)> {
    let typname = field.metadata().get(keys::PG_BINARY)?.clone();
    let meta = field_meta(field);
    let mut metadata = field.metadata().clone();
    metadata.remove(keys::PG_BINARY);
    let logical = Field::new(
        field.name().clone(),
        source_arrow_type(&meta, crate::ConnectionKind::Postgres),
        field.is_nullable(),
    )
    .with_metadata(metadata);
    Some((logical, typname))
}

/// A writer whose earlier write failed (part of its rows may have gone out) only aborts: the
/// answer to any later write or commit.
pub(crate) fn poisoned_writer() -> crate::ConnectorError {
    crate::ConnectorError::failed(
        crate::FailureKind::Other,
        "an earlier write failed, so this writer can only be aborted (nothing was committed)",
    )
}

/// The Arrow type that holds a field of this type. `native` is consulted for decimals
/// (`numeric(12,2)`, `decimal(10,3)`: Decimal128 with that precision and scale).
pub fn arrow_type(field_type: FieldType, native: &str) -> DataType {
    match field_type {
        FieldType::Boolean => DataType::Boolean,
        FieldType::Integer => DataType::Int64,
        FieldType::Float => DataType::Float64,
        FieldType::Decimal => match decimal_precision(native) {
            Some((p, s)) => DataType::Decimal128(p, s),
            None => DataType::Utf8,
        },
        FieldType::String | FieldType::Json | FieldType::Other => DataType::Utf8,
        FieldType::Binary => DataType::Binary,
        FieldType::Date => DataType::Date32,
        FieldType::Time => DataType::Time64(TimeUnit::Microsecond),
        FieldType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        FieldType::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        FieldType::Uuid => DataType::FixedSizeBinary(16),
    }
}

/// The Arrow type a source of kind `source` answers for a field: [`arrow_type`], except that a
/// single-precision float stays Float32 (a `real` 24.3 is not widened to 24.299999237060547).
pub fn source_arrow_type(meta: &FieldMeta, source: crate::ConnectionKind) -> DataType {
    if meta.field_type == FieldType::Float && single_precision(&meta.native, source.as_str()) {
        DataType::Float32
    } else {
        arrow_type(meta.field_type, &meta.native)
    }
}

/// Whether a float's native type (of the connection kind `source`, as in [`keys::SOURCE`]) is
/// single precision: PostgreSQL `real` (`float4`), MySQL `float` (`float(7,4)`, `float unsigned`;
/// MySQL shows a `float(p)` beyond 24 bits as `double`).
pub fn single_precision(native: &str, source: &str) -> bool {
    let native = native.trim().to_ascii_lowercase();
    match source {
        "postgres" => matches!(native.as_str(), "real" | "float4"),
        "mysql" => {
            native == "float" || native.starts_with("float(") || native.starts_with("float ")
        }
        _ => false,
    }
}

/// An f32 as the f64 of its shortest decimal text (24.3, not 24.299999237060547): how a
/// single-precision value is widened for display, for rules and for a double-precision column.
pub fn widen_f32(v: f32) -> f64 {
    v.to_string().parse::<f64>().unwrap_or(f64::from(v))
}

/// A text field's declared type, portable across kinds (from its native type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextType {
    /// Fixed length, in characters (`char(2)`, `character(2)`).
    Char(u32),
    /// Up to a length, in characters (`varchar(40)`, `character varying(40)`).
    Varchar(u32),
    /// Unbounded or long text (`text`, `longtext`, `varchar` without a length, anything else).
    Text,
}

/// The [`TextType`] of a native type name of PostgreSQL or MySQL.
pub fn text_type(native: &str) -> TextType {
    let native = native.trim().to_ascii_lowercase();
    let (base, length) = match native.split_once('(') {
        Some((base, rest)) => {
            let Some((inner, after)) = rest.split_once(')') else {
                return TextType::Text;
            };
            // An array of text is no text; a character set after the length changes nothing.
            if !(after.is_empty() || after.starts_with(' ')) {
                return TextType::Text;
            }
            (base.trim(), inner.trim().parse::<u32>().ok())
        }
        None => (native.as_str(), None),
    };
    match (base, length) {
        ("char" | "character" | "bpchar", Some(n)) if n > 0 => TextType::Char(n),
        ("char" | "character" | "bpchar", None) => TextType::Char(1),
        ("varchar" | "character varying", Some(n)) if n > 0 => TextType::Varchar(n),
        _ => TextType::Text,
    }
}

/// `numeric(12,2)` / `decimal(10, 3)` → `(12, 2)` when the precision fits Decimal128 (≤ 38).
pub fn decimal_precision(native: &str) -> Option<(u8, i8)> {
    let open = native.find('(')?;
    let close = native.rfind(')')?;
    let inner = native.get(open + 1..close)?;
    let mut parts = inner.split(',').map(str::trim);
    let p: u8 = parts.next()?.parse().ok()?;
    let s: i8 = match parts.next() {
        Some(s) => s.parse().ok()?,
        None => 0,
    };
    (1..=38).contains(&p).then_some((p, s))
}

/// The Arrow field for discovered field metadata of a `source` connection kind.
pub fn arrow_field(meta: &FieldMeta, source: crate::ConnectionKind) -> Field {
    let mut metadata = HashMap::new();
    metadata.insert(keys::NATIVE.to_owned(), meta.native.clone());
    metadata.insert(
        keys::TYPE.to_owned(),
        field_type_name(meta.field_type).to_owned(),
    );
    metadata.insert(keys::SOURCE.to_owned(), source.as_str().to_owned());
    if meta.primary_key {
        metadata.insert(keys::PRIMARY_KEY.to_owned(), "true".to_owned());
    }
    Field::new(
        meta.name.clone(),
        source_arrow_type(meta, source),
        meta.nullable,
    )
    .with_metadata(metadata)
}

/// The field metadata an Arrow field carries (defaults from its Arrow type when it has none).
pub fn field_meta(field: &Field) -> FieldMeta {
    let md = field.metadata();
    let field_type = md
        .get(keys::TYPE)
        .and_then(|t| parse_field_type(t))
        .unwrap_or_else(|| default_field_type(field.data_type()));
    FieldMeta {
        name: field.name().clone(),
        field_type,
        native: md.get(keys::NATIVE).cloned().unwrap_or_default(),
        nullable: field.is_nullable(),
        primary_key: md.get(keys::PRIMARY_KEY).is_some_and(|v| v == "true"),
    }
}

pub fn field_type_name(t: FieldType) -> &'static str {
    match t {
        FieldType::Boolean => "boolean",
        FieldType::Integer => "integer",
        FieldType::Float => "float",
        FieldType::Decimal => "decimal",
        FieldType::String => "string",
        FieldType::Binary => "binary",
        FieldType::Date => "date",
        FieldType::Time => "time",
        FieldType::Timestamp => "timestamp",
        FieldType::TimestampTz => "timestamp_tz",
        FieldType::Uuid => "uuid",
        FieldType::Json => "json",
        FieldType::Other => "other",
    }
}

pub fn parse_field_type(name: &str) -> Option<FieldType> {
    use FieldType::*;
    [
        Boolean,
        Integer,
        Float,
        Decimal,
        String,
        Binary,
        Date,
        Time,
        Timestamp,
        TimestampTz,
        Uuid,
        Json,
        Other,
    ]
    .into_iter()
    .find(|t| field_type_name(*t) == name)
}

/// The field type an Arrow type holds when no metadata says more.
pub fn default_field_type(data_type: &DataType) -> FieldType {
    match data_type {
        DataType::Boolean => FieldType::Boolean,
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => FieldType::Integer,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => FieldType::Float,
        DataType::Decimal128(..) | DataType::Decimal256(..) => FieldType::Decimal,
        DataType::Binary | DataType::LargeBinary => FieldType::Binary,
        DataType::FixedSizeBinary(16) => FieldType::Uuid,
        DataType::Date32 | DataType::Date64 => FieldType::Date,
        DataType::Time32(_) | DataType::Time64(_) => FieldType::Time,
        DataType::Timestamp(_, None) => FieldType::Timestamp,
        DataType::Timestamp(_, Some(_)) => FieldType::TimestampTz,
        _ => FieldType::String,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_precision_and_scale() {
        assert_eq!(decimal_precision("numeric(12,2)"), Some((12, 2)));
        assert_eq!(decimal_precision("decimal(10, 3)"), Some((10, 3)));
        assert_eq!(decimal_precision("numeric(5)"), Some((5, 0)));
        assert_eq!(decimal_precision("numeric"), None);
        assert_eq!(decimal_precision("numeric(60,2)"), None);
        assert_eq!(arrow_type(FieldType::Decimal, "numeric"), DataType::Utf8);
    }

    #[test]
    fn single_precision_floats_stay_float32() {
        let float = |native: &str| FieldMeta {
            name: "x".into(),
            field_type: FieldType::Float,
            native: native.into(),
            nullable: true,
            primary_key: false,
        };
        let pg = crate::ConnectionKind::Postgres;
        let my = crate::ConnectionKind::Mysql;
        assert_eq!(source_arrow_type(&float("real"), pg), DataType::Float32);
        assert_eq!(
            source_arrow_type(&float("double precision"), pg),
            DataType::Float64
        );
        assert_eq!(source_arrow_type(&float("float"), my), DataType::Float32);
        assert_eq!(
            source_arrow_type(&float("float(7,4) unsigned"), my),
            DataType::Float32
        );
        assert_eq!(source_arrow_type(&float("double"), my), DataType::Float64);
        assert_eq!(
            source_arrow_type(&float("float"), crate::ConnectionKind::Files),
            DataType::Float64
        );
        assert_eq!(widen_f32(24.3), 24.3_f64);
        assert_eq!(widen_f32(0.1), 0.1_f64);
        assert!(widen_f32(f32::NAN).is_nan());
        assert_eq!(widen_f32(f32::INFINITY), f64::INFINITY);
    }

    #[test]
    fn text_types_keep_their_length() {
        assert_eq!(text_type("character(2)"), TextType::Char(2));
        assert_eq!(text_type("char(2)"), TextType::Char(2));
        assert_eq!(text_type("character"), TextType::Char(1));
        assert_eq!(text_type("character varying(40)"), TextType::Varchar(40));
        assert_eq!(text_type("VARCHAR(40)"), TextType::Varchar(40));
        assert_eq!(text_type("character varying"), TextType::Text);
        assert_eq!(text_type("text"), TextType::Text);
        assert_eq!(text_type("longtext"), TextType::Text);
        assert_eq!(text_type("varchar(x)"), TextType::Text);
        assert_eq!(text_type("\"char\""), TextType::Text);
        assert_eq!(text_type("character varying(40)[]"), TextType::Text);
    }

    #[test]
    fn fields_carry_their_metadata_through_arrow() {
        let meta = FieldMeta {
            name: "price".into(),
            field_type: FieldType::Decimal,
            native: "numeric(12,2)".into(),
            nullable: false,
            primary_key: true,
        };
        let field = arrow_field(&meta, crate::ConnectionKind::Postgres);
        assert_eq!(field.data_type(), &DataType::Decimal128(12, 2));
        assert_eq!(field_meta(&field), meta);
        assert_eq!(
            field.metadata().get(keys::SOURCE).map(String::as_str),
            Some("postgres")
        );
    }
}
