//! The `sqlite` connector: a SQLite database file inside the operator's files directory.
//!
//! The file is reached through [`crate::FilesRoot`] (no absolute paths, no `..`, no symbolic
//! links) and opened read-only, never created. The database's schema is not trusted
//! (`trusted_schema = OFF`): views and triggers cannot call functions with side effects. Opening
//! and each query are bounded by the context's timeout.
//!
//! Tables and views are named by their name. Samples read only objects `sqlite_master` lists,
//! with the name quoted and the limit bound; values are converted by their storage class.

mod config;

pub use config::{SECRET_FIELDS, SqliteConfig};

use crate::{
    Connector, ConnectorError, Context, FailureKind, FieldMeta, FieldType, ObjectKind, ObjectMeta,
    Record,
};
use base64::Engine as _;
use serde_json::Value as Json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteRow};
use sqlx::{Column as _, Connection as _, Decode, Row as _, Sqlite, TypeInfo as _, ValueRef as _};

/// A SQLite database file. `ctx.files_root` must be set.
#[derive(Debug)]
pub struct SqliteConnector {
    config: SqliteConfig,
    ctx: Context,
}

impl SqliteConnector {
    /// Makes the connector; nothing is opened yet.
    pub fn new(config: SqliteConfig, ctx: Context) -> Self {
        SqliteConnector { config, ctx }
    }

    /// Opens the file read-only, inside the files directory.
    async fn open(&self) -> Result<SqliteConnection, ConnectorError> {
        let Some(root) = &self.ctx.files_root else {
            return Err(ConnectorError::config(
                "config.path",
                "the operator has not set a files directory (--files-root)",
            ));
        };
        let path = root.resolve("config.path", &self.config.path)?;
        if !path.is_file() {
            return Err(ConnectorError::failed(
                FailureKind::NotFound,
                "config.path: is not a file",
            ));
        }
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .read_only(true)
            .create_if_missing(false)
            .pragma("trusted_schema", "OFF")
            .busy_timeout(self.ctx.timeout);
        self.timed(SqliteConnection::connect_with(&options)).await
    }

    /// Runs one request within the timeout.
    async fn timed<T>(
        &self,
        request: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, ConnectorError> {
        match tokio::time::timeout(self.ctx.timeout, request).await {
            Ok(result) => result.map_err(|err| map_error(&err)),
            Err(_) => Err(ConnectorError::failed(
                FailureKind::Timeout,
                format!(
                    "the SQLite database did not answer within {} s",
                    self.ctx.timeout.as_secs_f32()
                ),
            )),
        }
    }

    /// Closes the connection (a failure changes nothing).
    async fn close(&self, conn: SqliteConnection) {
        let _ = tokio::time::timeout(self.ctx.timeout, conn.close()).await;
    }

    /// The tables and views (not SQLite's own), or only the one named exactly `object`.
    async fn objects(
        &self,
        conn: &mut SqliteConnection,
        object: Option<&str>,
    ) -> Result<Vec<(String, ObjectKind)>, ConnectorError> {
        let rows = self
            .timed(sqlx::query(OBJECTS_SQL).bind(object).fetch_all(&mut *conn))
            .await?;
        rows.iter()
            .map(|row| {
                let name: String = text(row, 0)?;
                let kind = if text(row, 1)? == "view" {
                    ObjectKind::View
                } else {
                    ObjectKind::Table
                };
                Ok((name, kind))
            })
            .collect()
    }

    async fn discover_with(
        &self,
        conn: &mut SqliteConnection,
    ) -> Result<Vec<ObjectMeta>, ConnectorError> {
        let mut objects = Vec::new();
        for (name, kind) in self.objects(conn, None).await? {
            let rows = self
                .timed(sqlx::query(COLUMNS_SQL).bind(&name).fetch_all(&mut *conn))
                .await?;
            let fields = rows
                .iter()
                .map(|row| {
                    let declared = text(row, 1)?;
                    Ok(FieldMeta {
                        name: text(row, 0)?,
                        field_type: field_type(&declared),
                        native: declared,
                        nullable: integer(row, 2)? == 0,
                        primary_key: integer(row, 3)? > 0,
                    })
                })
                .collect::<Result<Vec<_>, ConnectorError>>()?;
            objects.push(ObjectMeta {
                name,
                kind,
                fields,
                layout: None,
                error: None,
            });
        }
        Ok(objects)
    }

    async fn sample_with(
        &self,
        conn: &mut SqliteConnection,
        object: &str,
        limit: usize,
    ) -> Result<Vec<Record>, ConnectorError> {
        // Only a name sqlite_master lists is read; the name quoted is the catalog's.
        let Some((name, _)) = self.objects(conn, Some(object)).await?.into_iter().next() else {
            return Err(ConnectorError::failed(
                FailureKind::NotFound,
                "there is no such table or view among the discovered objects",
            ));
        };
        let sql = format!("SELECT * FROM {} LIMIT ?", quote(&name));
        let limit = i64::try_from(limit.clamp(1, crate::MAX_SAMPLE)).unwrap_or(1);
        let rows = self
            // Audited: the only dynamic part is the catalog's name, quoted.
            .timed(
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(limit)
                    .fetch_all(&mut *conn),
            )
            .await?;
        rows.iter().map(record).collect()
    }
}

/// Tables and views, without SQLite's internal ones; `?1` limits to one exact name.
const OBJECTS_SQL: &str = r"
SELECT name, type FROM sqlite_master
WHERE type IN ('table', 'view')
  AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
  AND (?1 IS NULL OR name = ?1)
ORDER BY name
";

/// One object's columns in their order.
const COLUMNS_SQL: &str =
    r#"SELECT name, type, "notnull", pk FROM pragma_table_info(?1) ORDER BY cid"#;

/// A quoted SQLite identifier: `"` around it, inner `"` doubled.
fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// The portable type for a declared type, by SQLite's affinity rules (section 3.1 of "Datatypes
/// In SQLite"); names that usually mean a boolean, a date, a timestamp or JSON refine the
/// NUMERIC affinity they otherwise get.
fn field_type(declared: &str) -> FieldType {
    let upper = declared.to_ascii_uppercase();
    if upper.contains("INT") {
        FieldType::Integer
    } else if upper.contains("CHAR") || upper.contains("CLOB") || upper.contains("TEXT") {
        FieldType::String
    } else if upper.contains("BLOB") {
        FieldType::Binary
    } else if upper.trim().is_empty() {
        // No declared type: BLOB affinity, which stores anything as it comes.
        FieldType::Other
    } else if upper.contains("REAL") || upper.contains("FLOA") || upper.contains("DOUB") {
        FieldType::Float
    } else if upper.starts_with("BOOL") {
        FieldType::Boolean
    } else if upper.starts_with("DATETIME") || upper.starts_with("TIMESTAMP") {
        FieldType::Timestamp
    } else if upper.starts_with("DATE") {
        FieldType::Date
    } else if upper.starts_with("TIME") {
        FieldType::Time
    } else if upper.starts_with("JSON") {
        FieldType::Json
    } else {
        FieldType::Decimal
    }
}

fn text(row: &SqliteRow, index: usize) -> Result<String, ConnectorError> {
    row.try_get_unchecked::<Option<String>, _>(index)
        .map(Option::unwrap_or_default)
        .map_err(|_| catalog_shape())
}

fn integer(row: &SqliteRow, index: usize) -> Result<i64, ConnectorError> {
    row.try_get_unchecked::<Option<i64>, _>(index)
        .map(Option::unwrap_or_default)
        .map_err(|_| catalog_shape())
}

fn catalog_shape() -> ConnectorError {
    ConnectorError::failed(
        FailureKind::Protocol,
        "the SQLite catalog answered in an unexpected shape",
    )
}

/// A row as a record, each value by its storage class: integers (strings beyond 2^53), reals
/// (NaN and infinities as strings), text, blobs as base64, NULL as null.
fn record(row: &SqliteRow) -> Result<Record, ConnectorError> {
    let mut record = Record::new();
    for (index, column) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(index).map_err(|_| catalog_shape())?;
        let value = if raw.is_null() {
            Json::Null
        } else {
            let class = raw.type_info().name().to_owned();
            let unreadable = |_| {
                ConnectorError::failed(
                    FailureKind::Protocol,
                    format!("cannot read a value of column {}", column.name()),
                )
            };
            match class.as_str() {
                "INTEGER" => crate::postgres::int_value(
                    <i64 as Decode<Sqlite>>::decode(raw).map_err(unreadable)?,
                ),
                "REAL" => crate::postgres::float_value(
                    <f64 as Decode<Sqlite>>::decode(raw).map_err(unreadable)?,
                ),
                "BLOB" => Json::String(
                    base64::engine::general_purpose::STANDARD
                        .encode(<Vec<u8> as Decode<Sqlite>>::decode(raw).map_err(unreadable)?),
                ),
                _ => Json::String(<String as Decode<Sqlite>>::decode(raw).map_err(unreadable)?),
            }
        };
        record.insert(column.name().to_owned(), value);
    }
    Ok(record)
}

/// Maps a driver error to a failure kind and a message written here, from SQLite's result code.
fn map_error(err: &sqlx::Error) -> ConnectorError {
    match err {
        sqlx::Error::Database(db) => {
            let code = db
                .code()
                .and_then(|code| code.parse::<i64>().ok())
                .unwrap_or(-1);
            let (kind, message) = match code & 0xff {
                26 => (
                    FailureKind::Protocol,
                    "config.path is not a SQLite database",
                ),
                11 => (FailureKind::Protocol, "the SQLite database is damaged"),
                14 => (FailureKind::Other, "the SQLite database cannot be opened"),
                5 | 6 => (
                    FailureKind::Other,
                    "the SQLite database is locked by another program",
                ),
                23 => (FailureKind::Other, "SQLite refused the access"),
                8 => (
                    FailureKind::Other,
                    "the SQLite database needs a write to be read (a journal to recover?)",
                ),
                _ => (FailureKind::Other, "SQLite could not run the query"),
            };
            ConnectorError::failed(kind, format!("{message} (SQLite code {code})"))
        }
        sqlx::Error::Io(_) => {
            ConnectorError::failed(FailureKind::Other, "the SQLite database cannot be read")
        }
        _ => ConnectorError::failed(FailureKind::Other, "SQLite failed"),
    }
}

impl Connector for SqliteConnector {
    async fn test(&self) -> Result<(), ConnectorError> {
        let mut conn = self.open().await?;
        // Reading the schema makes SQLite read the file's header: a file that is not a database
        // fails here (`SELECT 1` alone would not touch the file).
        let result = self
            .timed(sqlx::query("SELECT count(*) FROM sqlite_master").fetch_one(&mut conn))
            .await
            .map(|_| ());
        self.close(conn).await;
        result
    }

    async fn discover(&self) -> Result<Vec<ObjectMeta>, ConnectorError> {
        let mut conn = self.open().await?;
        let result = self.discover_with(&mut conn).await;
        self.close(conn).await;
        result
    }

    async fn sample(&self, object: &str, limit: usize) -> Result<Vec<Record>, ConnectorError> {
        let mut conn = self.open().await?;
        let result = self.sample_with(&mut conn, object, limit).await;
        self.close(conn).await;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity() {
        for (declared, expected) in [
            ("INTEGER", FieldType::Integer),
            ("BIGINT", FieldType::Integer),
            ("VARCHAR(40)", FieldType::String),
            ("text", FieldType::String),
            ("CLOB", FieldType::String),
            ("BLOB", FieldType::Binary),
            ("", FieldType::Other),
            ("REAL", FieldType::Float),
            ("DOUBLE PRECISION", FieldType::Float),
            ("NUMERIC(10,2)", FieldType::Decimal),
            ("DECIMAL", FieldType::Decimal),
            ("BOOLEAN", FieldType::Boolean),
            ("DATE", FieldType::Date),
            ("DATETIME", FieldType::Timestamp),
            ("TIMESTAMP", FieldType::Timestamp),
            ("JSON", FieldType::Json),
            // "POINT" has INT in it: INTEGER affinity, as SQLite decides.
            ("POINT", FieldType::Integer),
        ] {
            assert_eq!(field_type(declared), expected, "{declared}");
        }
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
