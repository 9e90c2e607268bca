//! The `mysql` connector.

mod config;

pub use config::{MysqlConfig, SECRET_FIELDS};

use crate::{Connector, ConnectorError, Context, FailureKind, ObjectMeta, Record, Secrets};

#[derive(Debug)]
pub struct MysqlConnector {
    config: MysqlConfig,
    secrets: Secrets,
    ctx: Context,
}

impl MysqlConnector {
    pub fn new(config: MysqlConfig, secrets: Secrets, ctx: Context) -> Self {
        MysqlConnector { config, secrets, ctx }
    }
}

impl Connector for MysqlConnector {
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
