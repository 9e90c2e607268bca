//! Connection metadata: the objects a connection exposes and their fields, as discovery finds them.

use serde::{Deserialize, Serialize};

/// A record as samples show it: field name → JSON value. Numbers that JSON cannot hold exactly
/// (numeric/decimal, 64-bit integers beyond 2^53) are strings; binary is base64; timestamps are
/// RFC 3339.
pub type Record = serde_json::Map<String, serde_json::Value>;

/// What kind of object it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Table,
    View,
    File,
    Endpoint,
}

/// A field's type, portable across connectors. `native` in [`FieldMeta`] keeps the system's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Boolean,
    Integer,
    /// Floating point.
    Float,
    /// Exact decimal (numeric/decimal).
    Decimal,
    String,
    Binary,
    Date,
    Time,
    /// A timestamp without a zone.
    Timestamp,
    /// A timestamp with a zone (an instant).
    TimestampTz,
    Uuid,
    Json,
    /// Anything else; `native` says what.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldMeta {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// The system's own type name (`numeric(12,2)`, `varchar(40)`, `csv`), for people and casts.
    pub native: String,
    pub nullable: bool,
    pub primary_key: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// How pipelines and samples name it: `schema.table` for PostgreSQL, the table name for
    /// MySQL (`database.table` names one of another database) and SQLite, a part holding a dot
    /// quoted the kind's way (see [`crate::object_name`]); the relative path for files, the
    /// configured name for REST objects.
    pub name: String,
    pub kind: ObjectKind,
    pub fields: Vec<FieldMeta>,
    /// Files: how the file was read (its encoding and, for CSV, its delimiter), as set or
    /// detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<FileLayout>,
    /// Files: why this file could not be discovered (it has no fields then), naming the line and
    /// the problem, never a value. The other files are discovered all the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How a file's text was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLayout {
    /// The encoding's name (`UTF-8`, `UTF-16LE`, `windows-1252`, …).
    pub encoding: String,
    /// The CSV delimiter (`,` `;` a tab or `|`, or the one set); `None` for JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
}
