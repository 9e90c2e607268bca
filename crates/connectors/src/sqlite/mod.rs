//! The `sqlite` connector.

mod config;

pub use config::{SECRET_FIELDS, SqliteConfig};

use crate::{Connector, ConnectorError, Context, FailureKind, ObjectMeta, Record};

#[derive(Debug)]
pub struct SqliteConnector {
    config: SqliteConfig,
    ctx: Context,
}

impl SqliteConnector {
    pub fn new(config: SqliteConfig, ctx: Context) -> Self {
        SqliteConnector { config, ctx }
    }
}

impl Connector for SqliteConnector {
    async fn test(&self) -> Result<(), ConnectorError> {
        let _ = (&self.config, &self.ctx);
        Err(ConnectorError::failed(FailureKind::Other, "not built yet"))
    }

    async fn discover(&self) -> Result<Vec<ObjectMeta>, ConnectorError> {
        Err(ConnectorError::failed(FailureKind::Other, "not built yet"))
    }

    async fn sample(&self, _object: &str, _limit: usize) -> Result<Vec<Record>, ConnectorError> {
        Err(ConnectorError::failed(FailureKind::Other, "not built yet"))
    }
}
