//! The `postgres` connector.

mod config;

pub use config::{PostgresConfig, SECRET_FIELDS};

use crate::{Connector, ConnectorError, Context, FailureKind, ObjectMeta, Record, Secrets};

#[derive(Debug)]
pub struct PostgresConnector {
    config: PostgresConfig,
    secrets: Secrets,
    ctx: Context,
}

impl PostgresConnector {
    pub fn new(config: PostgresConfig, secrets: Secrets, ctx: Context) -> Self {
        PostgresConnector { config, secrets, ctx }
    }
}

impl Connector for PostgresConnector {
    async fn test(&self) -> Result<(), ConnectorError> {
        let _ = (&self.config, &self.secrets, &self.ctx);
        Err(ConnectorError::failed(FailureKind::Other, "not built yet"))
    }

    async fn discover(&self) -> Result<Vec<ObjectMeta>, ConnectorError> {
        Err(ConnectorError::failed(FailureKind::Other, "not built yet"))
    }

    async fn sample(&self, _object: &str, _limit: usize) -> Result<Vec<Record>, ConnectorError> {
        Err(ConnectorError::failed(FailureKind::Other, "not built yet"))
    }
}
