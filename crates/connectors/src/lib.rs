//! Lockstep's connectors: the systems a hub reads from and writes to.
//!
//! Each kind lives in its own folder (`postgres`, `mysql`, `sqlite`, `files`, `rest`, `tryton`)
//! behind one
//! interface, [`Connector`]: test the connection, discover its objects and fields, read a sample
//! of records. (The sync engine adds batch reads and writes to the same interface.)
//!
//! Connectors obey two operator rules: the [`EgressPolicy`] (which networks and hosts they may
//! reach) and the [`FilesRoot`] (the one directory file-based kinds may read). Secrets reach a
//! connector as [`Secret`]s — zeroized on drop, never printed — for the time of one call, and no
//! error message carries one.
//!
//! SQL identifiers that come from users or from discovery are always quoted, values always bound.

mod any_batch;
pub mod batch;
pub use any_batch::AnyWriter;
pub mod config;
pub mod egress;
mod error;
pub mod files;
mod meta;
pub mod mysql;
pub mod oauth;
pub mod object_name;
mod paths;
pub mod postgres;
pub mod rest;
mod secret;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;
pub mod tryton;

pub use config::{ConnectionConfig, ConnectionKind};
pub use egress::EgressPolicy;
pub use error::{ConnectorError, FailureKind};
pub use meta::{FieldMeta, FieldType, FileLayout, ObjectKind, ObjectMeta, Record};
pub use paths::FilesRoot;
pub use secret::{Secret, Secrets, UploadedFile};
pub use tls::TlsMode;

use std::sync::Arc;
use std::time::Duration;

/// The most records a sample may ask for.
pub const MAX_SAMPLE: usize = 100;

/// What every connector call may use: the operator's rules and time limits.
#[derive(Debug, Clone)]
pub struct Context {
    pub egress: Arc<EgressPolicy>,
    /// `None` when the operator set no files directory: `sqlite` and `files` connections can then
    /// use uploaded files only.
    pub files_root: Option<Arc<FilesRoot>>,
    /// For connecting and for each request.
    pub timeout: Duration,
}

impl Context {
    pub fn new(egress: EgressPolicy, files_root: Option<FilesRoot>) -> Context {
        Context {
            egress: Arc::new(egress),
            files_root: files_root.map(Arc::new),
            timeout: Duration::from_secs(15),
        }
    }
}

/// One interface for every kind.
pub trait Connector: Send + Sync {
    /// Connects and checks the credentials (and, for databases, that the database exists).
    fn test(&self) -> impl Future<Output = Result<(), ConnectorError>> + Send;

    /// The objects (tables, views, files, endpoints) and their fields.
    fn discover(&self) -> impl Future<Output = Result<Vec<ObjectMeta>, ConnectorError>> + Send;

    /// Up to `limit` (at most [`MAX_SAMPLE`]) records of `object`, as discovery names it.
    fn sample(
        &self,
        object: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Record>, ConnectorError>> + Send;
}

/// A connector of any kind.
#[derive(Debug)]
pub enum AnyConnector {
    Postgres(postgres::PostgresConnector),
    Mysql(mysql::MysqlConnector),
    Sqlite(sqlite::SqliteConnector),
    Files(files::FilesConnector),
    Rest(rest::RestConnector),
    Tryton(tryton::TrytonConnector),
}

/// Makes the connector for a validated configuration. Nothing connects yet.
/// `uploads` are the files uploaded to a `files` connection (ignored by other kinds).
pub fn open(
    config: &ConnectionConfig,
    secrets: Secrets,
    uploads: Vec<UploadedFile>,
    ctx: &Context,
) -> AnyConnector {
    match config {
        ConnectionConfig::Postgres(c) => AnyConnector::Postgres(postgres::PostgresConnector::new(
            c.clone(),
            secrets,
            ctx.clone(),
        )),
        ConnectionConfig::Mysql(c) => {
            AnyConnector::Mysql(mysql::MysqlConnector::new(c.clone(), secrets, ctx.clone()))
        }
        ConnectionConfig::Sqlite(c) => {
            AnyConnector::Sqlite(sqlite::SqliteConnector::new(c.clone(), ctx.clone()))
        }
        ConnectionConfig::Files(c) => {
            AnyConnector::Files(files::FilesConnector::new(c.clone(), uploads, ctx.clone()))
        }
        ConnectionConfig::Rest(c) => {
            AnyConnector::Rest(rest::RestConnector::new(c.clone(), secrets, ctx.clone()))
        }
        ConnectionConfig::Tryton(c) => AnyConnector::Tryton(tryton::TrytonConnector::new(
            c.clone(),
            secrets,
            ctx.clone(),
        )),
    }
}

impl Connector for AnyConnector {
    async fn test(&self) -> Result<(), ConnectorError> {
        match self {
            AnyConnector::Postgres(c) => c.test().await,
            AnyConnector::Mysql(c) => c.test().await,
            AnyConnector::Sqlite(c) => c.test().await,
            AnyConnector::Files(c) => c.test().await,
            AnyConnector::Rest(c) => c.test().await,
            AnyConnector::Tryton(c) => c.test().await,
        }
    }

    async fn discover(&self) -> Result<Vec<ObjectMeta>, ConnectorError> {
        match self {
            AnyConnector::Postgres(c) => c.discover().await,
            AnyConnector::Mysql(c) => c.discover().await,
            AnyConnector::Sqlite(c) => c.discover().await,
            AnyConnector::Files(c) => c.discover().await,
            AnyConnector::Rest(c) => c.discover().await,
            AnyConnector::Tryton(c) => c.discover().await,
        }
    }

    async fn sample(&self, object: &str, limit: usize) -> Result<Vec<Record>, ConnectorError> {
        let limit = limit.clamp(1, MAX_SAMPLE);
        match self {
            AnyConnector::Postgres(c) => c.sample(object, limit).await,
            AnyConnector::Mysql(c) => c.sample(object, limit).await,
            AnyConnector::Sqlite(c) => c.sample(object, limit).await,
            AnyConnector::Files(c) => c.sample(object, limit).await,
            AnyConnector::Rest(c) => c.sample(object, limit).await,
            AnyConnector::Tryton(c) => c.sample(object, limit).await,
        }
        .map_err(|err| err.about_object(object))
    }
}
