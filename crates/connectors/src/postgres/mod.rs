//! The `postgres` connector: PostgreSQL through tokio-postgres, TLS through rustls.
//!
//! Every call opens its own connection and closes it at the end. The host is resolved through the
//! egress policy and the connection goes to a checked address (the name is kept for the TLS
//! certificate check only), so DNS cannot answer differently between the check and the
//! connection. Connecting and each query are bounded by the context's timeout.
//!
//! TLS modes, as libpq defines them:
//! * `disable`: plain TCP.
//! * `prefer`: TLS without certificate checks when the server offers it; plain when it does not,
//!   or when the TLS handshake fails (then on a new connection).
//! * `require`: TLS; the certificate is not checked (protection from passive listeners only).
//! * `verify-full`: TLS; the chain must lead to `ca_certificate` (or the Mozilla roots when none
//!   is set) and the certificate must name the configured host.
//!
//! A client certificate (`client_certificate`, with the secret `client_key`) is offered whenever
//! TLS is used. Queries are not cancelled on the server when they time out here: the connection
//! is dropped, which the server notices at its next write.
//!
//! Tables and views are named `schema.table` (see [`crate::object_name`]; `table` alone is in
//! `config.schema`, else `public`). Samples read only objects the catalog lists, with every
//! identifier quoted and the limit bound as a parameter.

mod batch;
mod config;
mod copy_in;
mod copy_out;
mod numeric;
mod tls;
mod value;

pub use batch::PostgresWriter;
pub use config::{PostgresConfig, SECRET_FIELDS};
pub(crate) use tls::{describe_tls_error, find_io_error, find_rustls_error};
pub(crate) use value::{float_value, float4_value, int_value};

use crate::object_name::ObjectName;
use crate::{
    ConnectionKind, Connector, ConnectorError, Context, FailureKind, FieldMeta, ObjectKind,
    ObjectMeta, Record, Secret, Secrets, TlsMode,
};
use std::net::SocketAddr;
use tokio::net::TcpStream;
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{MakeTlsConnect, NoTls, TlsConnect};
use tokio_postgres::{Client, Row};

/// A PostgreSQL connection: its settings, its secrets (`password`, `client_key`) and the
/// operator's rules. `Debug` shows no secret.
#[derive(Debug)]
pub struct PostgresConnector {
    config: PostgresConfig,
    secrets: Secrets,
    ctx: Context,
}

impl PostgresConnector {
    /// Makes the connector; nothing connects yet.
    pub fn new(config: PostgresConfig, secrets: Secrets, ctx: Context) -> Self {
        PostgresConnector {
            config,
            secrets,
            ctx,
        }
    }

    /// `host:port` for messages.
    fn endpoint(&self) -> String {
        if self.config.host.contains(':') {
            format!("[{}]:{}", self.config.host, self.config.port)
        } else {
            format!("{}:{}", self.config.host, self.config.port)
        }
    }

    /// Connects to a checked address and logs in.
    async fn connect(&self) -> Result<Client, ConnectorError> {
        let addrs = self
            .ctx
            .egress
            .resolve(&self.config.host, self.config.port)
            .await?;
        let tls = tls::connector(&self.config, &self.secrets)?;
        let endpoint = self.endpoint();

        let mut pg = tokio_postgres::Config::new();
        pg.user(&self.config.user)
            .dbname(&self.config.database)
            .application_name("lockstep")
            .ssl_mode(match self.config.tls {
                TlsMode::Disable => SslMode::Disable,
                TlsMode::Prefer => SslMode::Prefer,
                TlsMode::Require | TlsMode::VerifyFull => SslMode::Require,
            });
        // The password lives in the driver's configuration for this call only.
        if let Some(password) = self.secrets.get("password").map(Secret::expose) {
            pg.password(password);
        }

        let attempt = async {
            let stream = connect_tcp(&addrs, &endpoint).await?;
            let client = match tls {
                None => handshake(&pg, stream, NoTls).await,
                Some(mut make) => {
                    // The configured name, not the address: the certificate must name it.
                    let connect = match MakeTlsConnect::<TcpStream>::make_tls_connect(
                        &mut make,
                        &self.config.host,
                    ) {
                        Ok(connect) => connect,
                        Err(never) => match never {},
                    };
                    handshake(&pg, stream, connect).await
                }
            };
            match client.map_err(|err| map_error(&err, &endpoint)) {
                // libpq's `prefer`: when the TLS handshake fails, try again without TLS.
                Err(err)
                    if self.config.tls == TlsMode::Prefer
                        && err.kind() == Some(FailureKind::Tls) =>
                {
                    let stream = connect_tcp(&addrs, &endpoint).await?;
                    let mut plain = pg.clone();
                    plain.ssl_mode(SslMode::Disable);
                    handshake(&plain, stream, NoTls)
                        .await
                        .map_err(|err| map_error(&err, &endpoint))
                }
                other => other,
            }
        };
        match tokio::time::timeout(self.ctx.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(ConnectorError::failed(
                FailureKind::Timeout,
                format!(
                    "PostgreSQL at {endpoint} did not answer within {} s",
                    self.ctx.timeout.as_secs_f32()
                ),
            )),
        }
    }

    /// Runs one request within the timeout.
    async fn timed<T>(
        &self,
        request: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, ConnectorError> {
        match tokio::time::timeout(self.ctx.timeout, request).await {
            Ok(result) => result.map_err(|err| map_error(&err, &self.endpoint())),
            Err(_) => Err(ConnectorError::failed(
                FailureKind::Timeout,
                format!(
                    "PostgreSQL at {} did not answer the query within {} s",
                    self.endpoint(),
                    self.ctx.timeout.as_secs_f32()
                ),
            )),
        }
    }

    /// The object `text` names: `schema.table`, or `table` in the connection's schema
    /// (`config.schema`, else `public`).
    pub(crate) fn object_name(&self, text: &str) -> Result<ObjectName, ConnectorError> {
        let default = self.config.schema.as_deref().unwrap_or("public");
        ObjectName::parse(ConnectionKind::Postgres, text, default)
    }

    /// The catalog's columns of every table and view (or of the one named `object`), in
    /// schema, table and column order.
    async fn catalog(
        &self,
        client: &Client,
        object: Option<&str>,
    ) -> Result<Vec<Column>, ConnectorError> {
        let name = object.map(|o| self.object_name(o)).transpose()?;
        let schema = name.as_ref().map(|n| n.namespace.as_str());
        let table = name.as_ref().map(|n| n.name.as_str());
        let rows = self
            .timed(client.query(CATALOG_SQL, &[&self.config.schema, &schema, &table]))
            .await?;
        rows.iter().map(Column::from_row).collect()
    }
}

/// One column as the catalog describes it.
#[derive(Debug)]
struct Column {
    schema: String,
    table: String,
    kind: ObjectKind,
    name: String,
    native: String,
    /// The type's name, or the base type's for a domain.
    typname: String,
    /// Whether that type is in `pg_catalog`.
    builtin: bool,
    not_null: bool,
    primary_key: bool,
}

impl Column {
    fn from_row(row: &Row) -> Result<Column, ConnectorError> {
        let read = || -> Result<Column, tokio_postgres::Error> {
            let relkind: String = row.try_get(2)?;
            Ok(Column {
                schema: row.try_get(0)?,
                table: row.try_get(1)?,
                kind: if matches!(relkind.as_str(), "v" | "m") {
                    ObjectKind::View
                } else {
                    ObjectKind::Table
                },
                name: row.try_get(3)?,
                native: row.try_get(4)?,
                typname: row.try_get(5)?,
                builtin: row.try_get(6)?,
                not_null: row.try_get(7)?,
                primary_key: row.try_get(8)?,
            })
        };
        read().map_err(|_| {
            ConnectorError::failed(
                FailureKind::Protocol,
                "PostgreSQL's catalog answered in an unexpected shape",
            )
        })
    }

    fn field(&self) -> FieldMeta {
        FieldMeta {
            name: self.name.clone(),
            field_type: value::field_type(&self.typname, self.builtin),
            native: self.native.clone(),
            nullable: !self.not_null,
            primary_key: self.primary_key,
        }
    }
}

/// Tables (ordinary, partitioned, foreign) and views (plain, materialized) outside the system
/// schemas; `$1` limits to one schema, `$2` and `$3` to one object by its schema and name.
const CATALOG_SQL: &str = r"
SELECT n.nspname::text,
       c.relname::text,
       c.relkind::text,
       a.attname::text,
       pg_catalog.format_type(a.atttypid, a.atttypmod),
       bt.typname::text,
       bt.typnamespace = 'pg_catalog'::regnamespace,
       a.attnotnull,
       EXISTS (SELECT 1 FROM pg_catalog.pg_index i
               WHERE i.indrelid = c.oid AND i.indisprimary AND a.attnum = ANY (i.indkey))
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm')
  AND n.nspname <> 'information_schema'
  AND n.nspname NOT LIKE 'pg\_%'
  AND ($1::text IS NULL OR n.nspname = $1::text)
  AND ($2::text IS NULL OR (n.nspname = $2::text AND c.relname = $3::text))
ORDER BY n.nspname, c.relname, a.attnum
";

/// A quoted PostgreSQL identifier: `"` around it, inner `"` doubled.
fn quote(identifier: &str) -> String {
    crate::object_name::postgres_quote(identifier)
}

/// The first address of `addrs` that accepts a TCP connection.
async fn connect_tcp(addrs: &[SocketAddr], endpoint: &str) -> Result<TcpStream, ConnectorError> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                // Small queries go out at once; failing to set it changes nothing else.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(err) => last = Some(err),
        }
    }
    Err(tcp_error(last.as_ref(), "PostgreSQL", endpoint))
}

/// Maps a failed TCP connection to a failure kind.
pub(crate) fn tcp_error(
    err: Option<&std::io::Error>,
    system: &str,
    endpoint: &str,
) -> ConnectorError {
    use std::io::ErrorKind as K;
    match err.map(std::io::Error::kind) {
        Some(K::ConnectionRefused) => ConnectorError::failed(
            FailureKind::Refused,
            format!("nothing accepts {system} connections at {endpoint} (connection refused)"),
        ),
        Some(K::TimedOut) => ConnectorError::failed(
            FailureKind::Timeout,
            format!("connecting to {system} at {endpoint} timed out"),
        ),
        Some(K::HostUnreachable | K::NetworkUnreachable | K::ConnectionReset) => {
            ConnectorError::failed(
                FailureKind::Refused,
                format!("{system} at {endpoint} cannot be reached"),
            )
        }
        _ => ConnectorError::failed(
            FailureKind::Other,
            format!("cannot connect to {system} at {endpoint}"),
        ),
    }
}

/// The protocol handshake on an open stream; the connection then runs in its own task until the
/// client is dropped.
async fn handshake<T>(
    pg: &tokio_postgres::Config,
    stream: TcpStream,
    tls: T,
) -> Result<Client, tokio_postgres::Error>
where
    T: TlsConnect<TcpStream>,
    T::Stream: Send + 'static,
{
    let (client, connection) = pg.connect_raw(stream, tls).await?;
    tokio::spawn(async move {
        if connection.await.is_err() {
            tracing::debug!("a PostgreSQL connection ended with an error");
        }
    });
    Ok(client)
}

/// Maps a driver error to a failure kind and a message written here: SQLSTATE codes and error
/// kinds only, never the server's text (which can echo input).
fn map_error(err: &tokio_postgres::Error, endpoint: &str) -> ConnectorError {
    if let Some(db) = err.as_db_error() {
        let code = db.code().code();
        let (kind, what) = match code {
            "28P01" | "28000" => (
                FailureKind::Authentication,
                "PostgreSQL refused the credentials",
            ),
            "3D000" => (FailureKind::NotFound, "the database does not exist"),
            "42P01" | "3F000" => (FailureKind::NotFound, "the table or schema does not exist"),
            "42501" => (FailureKind::Other, "PostgreSQL denied the user access"),
            "57014" => (FailureKind::Timeout, "PostgreSQL cancelled the query"),
            "53300" => (FailureKind::Refused, "PostgreSQL has too many connections"),
            "57P03" => (
                FailureKind::Refused,
                "PostgreSQL is not accepting connections now",
            ),
            c if c.starts_with("08") => (
                FailureKind::Protocol,
                "PostgreSQL reported a connection problem",
            ),
            _ => (FailureKind::Other, "PostgreSQL answered with an error"),
        };
        return ConnectorError::failed(kind, format!("{what} ({endpoint}, SQLSTATE {code})"));
    }
    if let Some(tls_err) = find_rustls_error(err) {
        return ConnectorError::failed(
            FailureKind::Tls,
            format!(
                "TLS with PostgreSQL at {endpoint} failed: {}",
                describe_tls_error(tls_err)
            ),
        );
    }
    // The driver's own words for its error kinds (never the server's).
    match err.to_string().as_str() {
        "error performing TLS handshake" => {
            let not_offered = std::error::Error::source(err)
                .is_some_and(|cause| cause.to_string() == "server does not support TLS");
            return ConnectorError::failed(
                FailureKind::Tls,
                if not_offered {
                    format!("PostgreSQL at {endpoint} does not offer TLS")
                } else {
                    format!("TLS with PostgreSQL at {endpoint} failed")
                },
            );
        }
        "authentication error" => {
            return ConnectorError::failed(
                FailureKind::Authentication,
                format!(
                    "PostgreSQL at {endpoint} asked for an authentication method Lockstep does not support"
                ),
            );
        }
        "invalid configuration" => {
            return ConnectorError::failed(
                FailureKind::Authentication,
                format!("PostgreSQL at {endpoint} asks for a password and none is set"),
            );
        }
        _ => {}
    }
    if let Some(io) = find_io_error(err) {
        if io.kind() == std::io::ErrorKind::UnexpectedEof {
            return ConnectorError::failed(
                FailureKind::Protocol,
                format!("PostgreSQL at {endpoint} closed the connection"),
            );
        }
        return tcp_error(Some(io), "PostgreSQL", endpoint);
    }
    if err.is_closed() {
        return ConnectorError::failed(
            FailureKind::Protocol,
            format!("PostgreSQL at {endpoint} closed the connection"),
        );
    }
    ConnectorError::failed(
        FailureKind::Protocol,
        format!("PostgreSQL at {endpoint} answered something Lockstep cannot use"),
    )
}

impl Connector for PostgresConnector {
    async fn test(&self) -> Result<(), ConnectorError> {
        let client = self.connect().await?;
        self.timed(client.simple_query("SELECT 1")).await?;
        Ok(())
    }

    async fn discover(&self) -> Result<Vec<ObjectMeta>, ConnectorError> {
        let client = self.connect().await?;
        let columns = self.catalog(&client, None).await?;
        let mut objects: Vec<ObjectMeta> = Vec::new();
        let mut current: Option<(String, String)> = None;
        for column in &columns {
            let key = (column.schema.clone(), column.table.clone());
            if current.as_ref() != Some(&key) {
                objects.push(ObjectMeta {
                    name: ObjectName::display(
                        ConnectionKind::Postgres,
                        Some(&column.schema),
                        &column.table,
                    ),
                    kind: column.kind,
                    fields: Vec::new(),
                    layout: None,
                    error: None,
                });
                current = Some(key);
            }
            if let Some(object) = objects.last_mut() {
                object.fields.push(column.field());
            }
        }
        Ok(objects)
    }

    async fn sample(&self, object: &str, limit: usize) -> Result<Vec<Record>, ConnectorError> {
        let client = self.connect().await?;
        // Only a name the catalog lists is read; the identifiers quoted are the catalog's.
        let columns = self.catalog(&client, Some(object)).await?;
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
        let select_list = columns
            .iter()
            .map(|c| {
                let name = quote(&c.name);
                format!(
                    "{name}::{} AS {name}",
                    value::cast_target(&c.typname, c.builtin)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {select_list} FROM {}.{} LIMIT $1",
            quote(&first.schema),
            quote(&first.table)
        );
        let limit = i64::try_from(limit.clamp(1, crate::MAX_SAMPLE)).unwrap_or(1);
        let rows = self.timed(client.query(&sql, &[&limit])).await?;
        rows.iter()
            .map(|row| {
                let mut record = Record::new();
                for (index, column) in columns.iter().enumerate() {
                    let value = value::decode(row, index).map_err(|_| {
                        ConnectorError::failed(
                            FailureKind::Protocol,
                            format!("cannot read the values of column {}", column.name),
                        )
                    })?;
                    record.insert(column.name.clone(), value);
                }
                Ok(record)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote("t"), "\"t\"");
        assert_eq!(
            quote("x\"; DROP TABLE t; --"),
            "\"x\"\"; DROP TABLE t; --\""
        );
    }
}
