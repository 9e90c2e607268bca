//! The `mysql` connector: MySQL and MariaDB through mysql_async, TLS through rustls.
//!
//! Every call opens its own connection (no pool, no Unix socket) and closes it at the end. The
//! host is resolved through the egress policy and the driver connects to the checked addresses
//! only (`resolved_ips`), while the configured name stays the name the TLS certificate must
//! match; DNS cannot answer differently between the check and the connection. Connecting and
//! each query are bounded by the context's timeout.
//!
//! TLS modes, as mysql_async allows them:
//! * `disable`: plain TCP.
//! * `prefer`: TLS without certificate checks when the server offers TLS, else plain (what the
//!   MySQL client's `--ssl-mode=PREFERRED` does). mysql_async cannot fall back by itself, so a
//!   server that does not announce TLS is connected to again without it — before any credential
//!   was sent. A failed TLS handshake is not retried in plain.
//! * `require`: TLS; the certificate is not checked.
//! * `verify-full`: TLS; the chain must lead to `ca_certificate` (or the Mozilla roots when none is
//!   set) and the certificate must name the configured host.
//!
//! mysql_async builds its rustls configuration with the process's default crypto provider; when
//! none is installed yet, the connector installs rustls's `ring` provider before a TLS connection.
//!
//! Tables and views are named by their table name in `config.database`, and `database.table` in
//! another database (see [`crate::object_name`]). Samples read only objects the catalog lists,
//! with identifiers quoted and the limit bound as a parameter. The session
//! time zone is UTC, so `timestamp` values are instants (RFC 3339 with `Z`).

mod batch;
mod config;
mod writer;

pub use config::{MysqlConfig, SECRET_FIELDS};
pub use writer::MysqlWriter;

use crate::object_name::ObjectName;
use crate::postgres::{describe_tls_error, find_rustls_error, tcp_error};
use crate::{
    ConnectionKind, Connector, ConnectorError, Context, FailureKind, FieldMeta, FieldType,
    ObjectKind, ObjectMeta, Record, Secret, Secrets, TlsMode,
};
use base64::Engine as _;
use mysql_async::consts::ColumnType;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, DriverError, IoError, Opts, OptsBuilder, Row, SslOpts, Value};
use serde_json::Value as Json;
use std::collections::HashSet;
use std::net::SocketAddr;

/// A MySQL or MariaDB connection: its settings, its secret (`password`) and the operator's
/// rules. `Debug` shows no secret.
#[derive(Debug)]
pub struct MysqlConnector {
    config: MysqlConfig,
    secrets: Secrets,
    ctx: Context,
    /// Writers load rows with `LOAD DATA LOCAL INFILE` when the server allows it.
    load_data: bool,
}

impl MysqlConnector {
    /// Makes the connector; nothing connects yet.
    pub fn new(config: MysqlConfig, secrets: Secrets, ctx: Context) -> Self {
        MysqlConnector {
            config,
            secrets,
            ctx,
            load_data: true,
        }
    }

    /// The connector whose writers always INSERT (as they do where the server refuses
    /// `LOAD DATA LOCAL`): for tests of that path.
    #[cfg(feature = "testing")]
    pub fn inserting_only(mut self) -> Self {
        self.load_data = false;
        self
    }

    /// `host:port` for messages.
    fn endpoint(&self) -> String {
        if self.config.host.contains(':') {
            format!("[{}]:{}", self.config.host, self.config.port)
        } else {
            format!("{}:{}", self.config.host, self.config.port)
        }
    }

    /// The driver's options for one connection to the checked `addrs`.
    fn opts(&self, addrs: &[SocketAddr], ssl: Option<SslOpts>) -> Opts {
        OptsBuilder::default()
            .ip_or_hostname(self.config.host.clone())
            .tcp_port(self.config.port)
            .resolved_ips(Some(addrs.iter().map(SocketAddr::ip).collect::<Vec<_>>()))
            .prefer_socket(false)
            .user(Some(self.config.user.clone()))
            // In the driver's options for this call only.
            .pass(
                self.secrets
                    .get("password")
                    .map(Secret::expose)
                    .map(str::to_owned),
            )
            .db_name(Some(self.config.database.clone()))
            .ssl_opts(ssl)
            .init(vec!["SET time_zone = '+00:00'"])
            .into()
    }

    /// TLS without certificate checks (`prefer`, `require`).
    fn unverified_tls() -> SslOpts {
        SslOpts::default()
            .with_danger_accept_invalid_certs(true)
            .with_danger_skip_domain_validation(true)
    }

    /// TLS checking the chain and the host name (`verify-full`).
    fn verified_tls(&self) -> SslOpts {
        match &self.config.ca_certificate {
            Some(pem) => SslOpts::default()
                .with_root_certs(vec![pem.as_bytes().to_vec().into()])
                .with_disable_built_in_roots(true),
            None => SslOpts::default(),
        }
    }

    /// Connects to a checked address and logs in.
    async fn connect(&self) -> Result<Conn, ConnectorError> {
        let addrs = self
            .ctx
            .egress
            .resolve(&self.config.host, self.config.port)
            .await?;
        let endpoint = self.endpoint();
        if self.config.tls != TlsMode::Disable {
            // mysql_async asks rustls for the process's default provider, and rustls cannot pick
            // one when several are compiled in: make sure there is one (no change when set).
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let attempt = async {
            let result = match self.config.tls {
                TlsMode::Disable => Conn::new(self.opts(&addrs, None)).await,
                TlsMode::Prefer => {
                    match Conn::new(self.opts(&addrs, Some(Self::unverified_tls()))).await {
                        // The server does not announce TLS: nothing was sent yet; again in plain.
                        Err(mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer)) => {
                            Conn::new(self.opts(&addrs, None)).await
                        }
                        other => other,
                    }
                }
                TlsMode::Require => {
                    Conn::new(self.opts(&addrs, Some(Self::unverified_tls()))).await
                }
                TlsMode::VerifyFull => {
                    Conn::new(self.opts(&addrs, Some(self.verified_tls()))).await
                }
            };
            result.map_err(|err| map_error(&err, &endpoint))
        };
        match tokio::time::timeout(self.ctx.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(ConnectorError::failed(
                FailureKind::Timeout,
                format!(
                    "MySQL at {endpoint} did not answer within {} s",
                    self.ctx.timeout.as_secs_f32()
                ),
            )),
        }
    }

    /// Runs one request within the timeout.
    async fn timed<T>(
        &self,
        request: impl Future<Output = Result<T, mysql_async::Error>>,
    ) -> Result<T, ConnectorError> {
        match tokio::time::timeout(self.ctx.timeout, request).await {
            Ok(result) => result.map_err(|err| map_error(&err, &self.endpoint())),
            Err(_) => Err(ConnectorError::failed(
                FailureKind::Timeout,
                format!(
                    "MySQL at {} did not answer the query within {} s",
                    self.endpoint(),
                    self.ctx.timeout.as_secs_f32()
                ),
            )),
        }
    }

    /// Closes the connection politely (within the timeout; a failure changes nothing).
    async fn close(&self, conn: Conn) {
        let _ = tokio::time::timeout(self.ctx.timeout, conn.disconnect()).await;
    }

    /// The object `text` names: a table of the connection's database, or `database.table`.
    pub(crate) fn object_name(&self, text: &str) -> Result<ObjectName, ConnectorError> {
        ObjectName::parse(ConnectionKind::Mysql, text, &self.config.database)
    }

    /// One of MySQL's own databases, other than the one the connection is configured for.
    pub(crate) fn foreign_system_database(&self, database: &str) -> bool {
        database != self.config.database
            && ["mysql", "information_schema", "performance_schema", "sys"]
                .iter()
                .any(|system| database.eq_ignore_ascii_case(system))
    }

    /// The tables and views of the connection's database with their columns, or only the one
    /// named exactly `object` (in its database), sorted by name. Names are as
    /// [`ObjectName::display`] writes them.
    async fn catalog(
        &self,
        conn: &mut Conn,
        object: Option<&ObjectName>,
    ) -> Result<Vec<ObjectMeta>, ConnectorError> {
        let database = object.map_or(self.config.database.as_str(), |o| o.namespace.as_str());
        if self.foreign_system_database(database) {
            // MySQL's own tables are not a connection's objects (as PostgreSQL's catalogs).
            return Ok(Vec::new());
        }
        let object = object.map(|o| o.name.as_str());
        let rows: Vec<Row> = self
            .timed(conn.exec(CATALOG_SQL, (database, object, object)))
            .await?;
        let json_columns = self.mariadb_json_columns(conn, database).await;
        let mut columns = Vec::with_capacity(rows.len());
        for row in rows {
            let (table, table_type, name, data_type, column_type, nullable, key, position): (
                String,
                String,
                String,
                String,
                String,
                String,
                String,
                u64,
            ) = mysql_async::from_row_opt(row).map_err(|_| {
                ConnectorError::failed(
                    FailureKind::Protocol,
                    "MySQL's information_schema answered in an unexpected shape",
                )
            })?;
            // information_schema compares names case-insensitively; the object must match exactly.
            if object.is_some_and(|o| o != table) {
                continue;
            }
            let is_json = json_columns.contains(&(table.clone(), name.clone()));
            let field = FieldMeta {
                field_type: if is_json {
                    FieldType::Json
                } else {
                    field_type(&data_type, &column_type)
                },
                name,
                native: column_type,
                nullable: nullable.eq_ignore_ascii_case("YES"),
                primary_key: key.eq_ignore_ascii_case("PRI"),
            };
            let kind = if table_type.eq_ignore_ascii_case("VIEW") {
                ObjectKind::View
            } else {
                ObjectKind::Table
            };
            columns.push((table, kind, position, field));
        }
        columns.sort_by(|a, b| (&a.0, a.2).cmp(&(&b.0, b.2)));
        let namespace = (database != self.config.database).then_some(database);
        let mut objects: Vec<(String, ObjectMeta)> = Vec::new();
        for (table, kind, _, field) in columns {
            match objects.last_mut() {
                Some((last, meta)) if *last == table => meta.fields.push(field),
                _ => {
                    let name = ObjectName::display(ConnectionKind::Mysql, namespace, &table);
                    objects.push((
                        table,
                        ObjectMeta {
                            name,
                            kind,
                            fields: vec![field],
                            layout: None,
                            error: None,
                        },
                    ));
                }
            }
        }
        Ok(objects.into_iter().map(|(_, meta)| meta).collect())
    }

    /// MariaDB's `json` is `longtext` with a `json_valid` check named after the column: those
    /// columns, as (table, column). MySQL has a real `json` type (and no `TABLE_NAME` in
    /// `CHECK_CONSTRAINTS`, so the query fails there and nothing is found).
    async fn mariadb_json_columns(
        &self,
        conn: &mut Conn,
        database: &str,
    ) -> HashSet<(String, String)> {
        let rows: Vec<Row> = match self.timed(conn.exec(JSON_CHECKS_SQL, (database,))).await {
            Ok(rows) => rows,
            Err(_) => return HashSet::new(),
        };
        rows.into_iter()
            .filter_map(|row| mysql_async::from_row_opt::<(String, String, String)>(row).ok())
            .filter(|(_, column, clause)| *clause == format!("json_valid({})", quote(column)))
            .map(|(table, column, _)| (table, column))
            .collect()
    }

    async fn sample_with(
        &self,
        conn: &mut Conn,
        object: &str,
        limit: usize,
    ) -> Result<Vec<Record>, ConnectorError> {
        // Only a name the catalog lists is read; the identifiers quoted are the catalog's.
        let name = self.object_name(object)?;
        let Some(meta) = self.catalog(conn, Some(&name)).await?.into_iter().next() else {
            return Err(ConnectorError::failed(
                FailureKind::NotFound,
                "there is no such table or view among the discovered objects",
            ));
        };
        let select_list = meta
            .fields
            .iter()
            .map(|f| quote(&f.name))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT {select_list} FROM {} LIMIT ?", name.mysql_sql());
        let limit = u64::try_from(limit.clamp(1, crate::MAX_SAMPLE)).unwrap_or(1);
        let rows: Vec<Row> = self.timed(conn.exec(sql, (limit,))).await?;
        Ok(rows
            .iter()
            .map(|row| {
                let columns = row.columns_ref();
                meta.fields
                    .iter()
                    .enumerate()
                    .map(|(index, field)| {
                        let value = match (row.as_ref(index), columns.get(index)) {
                            (Some(value), Some(column)) => to_json(value, column, field),
                            _ => Json::Null,
                        };
                        (field.name.clone(), value)
                    })
                    .collect::<Record>()
            })
            .collect())
    }
}

/// Every column of the tables and views of database `?` (then `?`: one table, or NULL for all).
const CATALOG_SQL: &str = r"
SELECT c.TABLE_NAME, t.TABLE_TYPE, c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.IS_NULLABLE,
       c.COLUMN_KEY, c.ORDINAL_POSITION
FROM information_schema.COLUMNS c
JOIN information_schema.TABLES t
  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
WHERE c.TABLE_SCHEMA = ? AND (? IS NULL OR c.TABLE_NAME = ?)
ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION
";

/// MariaDB's check constraints in database `?` (for its `json` alias).
const JSON_CHECKS_SQL: &str = r"
SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE
FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = ?
";

/// A quoted MySQL identifier: backticks around it, inner backticks doubled.
fn quote(identifier: &str) -> String {
    crate::object_name::mysql_quote(identifier)
}

/// The portable type for `DATA_TYPE` (and `COLUMN_TYPE` for `tinyint(1)` and `bit(1)`, the usual
/// booleans).
fn field_type(data_type: &str, column_type: &str) -> FieldType {
    let column_type = column_type.to_ascii_lowercase();
    match data_type.to_ascii_lowercase().as_str() {
        "tinyint" if column_type.starts_with("tinyint(1)") => FieldType::Boolean,
        "bit" if column_type == "bit(1)" => FieldType::Boolean,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" | "bit" => {
            FieldType::Integer
        }
        "float" | "double" | "real" | "double precision" => FieldType::Float,
        "decimal" | "numeric" | "fixed" | "dec" => FieldType::Decimal,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" => {
            FieldType::String
        }
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            FieldType::Binary
        }
        "date" => FieldType::Date,
        "time" => FieldType::Time,
        "datetime" => FieldType::Timestamp,
        "timestamp" => FieldType::TimestampTz,
        "json" => FieldType::Json,
        "uuid" => FieldType::Uuid,
        _ => FieldType::Other,
    }
}

/// The binary character set: bytes, not text.
const BINARY_CHARSET: u16 = 63;

/// One sampled value as JSON, by the value's kind, the result column's type and the discovered
/// field.
fn to_json(value: &Value, column: &mysql_async::Column, field: &FieldMeta) -> Json {
    let boolean = field.field_type == FieldType::Boolean;
    match value {
        Value::NULL => Json::Null,
        Value::Int(v) if boolean && (*v == 0 || *v == 1) => Json::Bool(*v == 1),
        Value::Int(v) => crate::postgres::int_value(*v),
        Value::UInt(v) if boolean && *v <= 1 => Json::Bool(*v == 1),
        Value::UInt(v) => {
            if *v <= 1 << 53 {
                Json::from(*v)
            } else {
                Json::String(v.to_string())
            }
        }
        Value::Float(v) => crate::postgres::float4_value(*v),
        Value::Double(v) => crate::postgres::float_value(*v),
        Value::Date(year, month, day, hour, minute, second, micros) => {
            let date = format!("{year:04}-{month:02}-{day:02}");
            match column.column_type() {
                ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => Json::String(date),
                column_type => {
                    let zone = if matches!(
                        column_type,
                        ColumnType::MYSQL_TYPE_TIMESTAMP | ColumnType::MYSQL_TYPE_TIMESTAMP2
                    ) {
                        "Z"
                    } else {
                        ""
                    };
                    let time = clock(u32::from(*hour), *minute, *second, *micros);
                    Json::String(format!("{date}T{time}{zone}"))
                }
            }
        }
        Value::Time(negative, days, hours, minutes, seconds, micros) => {
            let hours = days.saturating_mul(24).saturating_add(u32::from(*hours));
            let sign = if *negative { "-" } else { "" };
            Json::String(format!(
                "{sign}{}",
                clock(hours, *minutes, *seconds, *micros)
            ))
        }
        Value::Bytes(bytes) => bytes_to_json(bytes, column, field),
    }
}

/// `HH:MM:SS` with the fraction of a second when there is one (trailing zeros dropped).
fn clock(hours: u32, minutes: u8, seconds: u8, micros: u32) -> String {
    if micros == 0 {
        format!("{hours:02}:{minutes:02}:{seconds:02}")
    } else {
        let digits = format!("{micros:06}");
        format!(
            "{hours:02}:{minutes:02}:{seconds:02}.{}",
            digits.trim_end_matches('0')
        )
    }
}

fn bytes_to_json(bytes: &[u8], column: &mysql_async::Column, field: &FieldMeta) -> Json {
    let base64 = || Json::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    match column.column_type() {
        // Exact decimals as MySQL prints them.
        ColumnType::MYSQL_TYPE_NEWDECIMAL | ColumnType::MYSQL_TYPE_DECIMAL => {
            String::from_utf8(bytes.to_vec()).map_or_else(|_| base64(), Json::String)
        }
        ColumnType::MYSQL_TYPE_JSON => serde_json::from_slice(bytes).unwrap_or_else(|_| {
            String::from_utf8(bytes.to_vec()).map_or_else(|_| base64(), Json::String)
        }),
        ColumnType::MYSQL_TYPE_BIT if bytes.len() <= 8 => {
            let number = bytes
                .iter()
                .fold(0_u64, |acc, byte| (acc << 8) | u64::from(*byte));
            if field.field_type == FieldType::Boolean && number <= 1 {
                Json::Bool(number == 1)
            } else if number <= 1 << 53 {
                Json::from(number)
            } else {
                Json::String(number.to_string())
            }
        }
        _ if column.character_set() == BINARY_CHARSET => base64(),
        _ => match std::str::from_utf8(bytes) {
            Ok(text) if field.field_type == FieldType::Json => {
                serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.to_owned()))
            }
            Ok(text) => Json::String(text.to_owned()),
            Err(_) => base64(),
        },
    }
}

/// Maps a driver error to a failure kind and a message written here: MySQL error codes and
/// SQLSTATEs only, never the server's text (which can echo input).
fn map_error(err: &mysql_async::Error, endpoint: &str) -> ConnectorError {
    use mysql_async::Error as E;
    match err {
        E::Server(server) => {
            let (kind, what) = match server.code {
                1044 | 1045 | 1698 => {
                    (FailureKind::Authentication, "MySQL refused the credentials")
                }
                1049 => (FailureKind::NotFound, "the database does not exist"),
                1146 => (FailureKind::NotFound, "the table does not exist"),
                1142 | 1143 => (FailureKind::Other, "MySQL denied the user access"),
                1040 => (FailureKind::Refused, "MySQL has too many connections"),
                1129 => (FailureKind::Refused, "MySQL blocks this host"),
                1969 | 3024 => (FailureKind::Timeout, "MySQL stopped the query (time limit)"),
                _ => (FailureKind::Other, "MySQL answered with an error"),
            };
            ConnectorError::failed(
                kind,
                format!(
                    "{what} ({endpoint}, error {}, SQLSTATE {})",
                    server.code,
                    sqlstate(&server.state)
                ),
            )
        }
        E::Driver(DriverError::NoClientSslFlagFromServer) => ConnectorError::failed(
            FailureKind::Tls,
            format!("MySQL at {endpoint} does not offer TLS"),
        ),
        E::Driver(
            DriverError::CleartextPluginDisabled
            | DriverError::UnknownAuthPlugin { .. }
            | DriverError::MysqlOldPasswordDisabled,
        ) => ConnectorError::failed(
            FailureKind::Authentication,
            format!(
                "MySQL at {endpoint} asked for an authentication method Lockstep does not allow"
            ),
        ),
        E::Driver(DriverError::ConnectionClosed) => ConnectorError::failed(
            FailureKind::Protocol,
            format!("MySQL at {endpoint} closed the connection"),
        ),
        E::Io(IoError::Tls(tls)) => {
            let why = match tls {
                mysql_async::TlsError::Tls(inner) => describe_tls_error(inner),
                mysql_async::TlsError::InvalidDnsName(_) => "the host name is not valid for TLS",
                mysql_async::TlsError::Pem(_) => "config.ca_certificate is not valid PEM",
                mysql_async::TlsError::VerifierBuilderError(_) => {
                    "the trusted certificates cannot be used"
                }
            };
            ConnectorError::failed(
                FailureKind::Tls,
                format!("TLS with MySQL at {endpoint} failed: {why}"),
            )
        }
        E::Io(IoError::Io(io)) => {
            if let Some(tls) = find_rustls_error(io) {
                return ConnectorError::failed(
                    FailureKind::Tls,
                    format!(
                        "TLS with MySQL at {endpoint} failed: {}",
                        describe_tls_error(tls)
                    ),
                );
            }
            if io.kind() == std::io::ErrorKind::UnexpectedEof {
                return ConnectorError::failed(
                    FailureKind::Protocol,
                    format!("MySQL at {endpoint} closed the connection"),
                );
            }
            tcp_error(Some(io), "MySQL", endpoint)
        }
        E::Driver(_) | E::Other(_) | E::Url(_) => ConnectorError::failed(
            FailureKind::Protocol,
            format!("MySQL at {endpoint} answered something Lockstep cannot use"),
        ),
    }
}

/// A SQLSTATE only when it looks like one (five letters or digits).
fn sqlstate(state: &str) -> &str {
    if state.len() == 5 && state.chars().all(|c| c.is_ascii_alphanumeric()) {
        state
    } else {
        "-"
    }
}

impl Connector for MysqlConnector {
    async fn test(&self) -> Result<(), ConnectorError> {
        let mut conn = self.connect().await?;
        let result = self.timed(conn.query_drop("SELECT 1")).await;
        self.close(conn).await;
        result
    }

    async fn discover(&self) -> Result<Vec<ObjectMeta>, ConnectorError> {
        let mut conn = self.connect().await?;
        let result = self.catalog(&mut conn, None).await;
        self.close(conn).await;
        result
    }

    async fn sample(&self, object: &str, limit: usize) -> Result<Vec<Record>, ConnectorError> {
        let mut conn = self.connect().await?;
        let result = self.sample_with(&mut conn, object, limit).await;
        self.close(conn).await;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote("t"), "`t`");
        assert_eq!(quote("x`; DROP TABLE t; --"), "`x``; DROP TABLE t; --`");
    }

    #[test]
    fn maps_types() {
        assert_eq!(field_type("tinyint", "tinyint(1)"), FieldType::Boolean);
        assert_eq!(field_type("tinyint", "tinyint(4)"), FieldType::Integer);
        assert_eq!(
            field_type("bigint", "bigint(20) unsigned"),
            FieldType::Integer
        );
        assert_eq!(field_type("decimal", "decimal(20,6)"), FieldType::Decimal);
        assert_eq!(field_type("varbinary", "varbinary(16)"), FieldType::Binary);
        assert_eq!(
            field_type("timestamp", "timestamp(6)"),
            FieldType::TimestampTz
        );
        assert_eq!(field_type("datetime", "datetime"), FieldType::Timestamp);
        assert_eq!(field_type("geometry", "geometry"), FieldType::Other);
        assert_eq!(clock(1, 2, 3, 0), "01:02:03");
        assert_eq!(clock(838, 59, 59, 500_000), "838:59:59.5");
    }
}
