//! The `rest` connector.

mod config;

pub use config::{ApiKeyLocation, Pagination, RestAuth, RestConfig, RestObject, SECRET_FIELDS};

use crate::{Connector, ConnectorError, Context, FailureKind, ObjectMeta, Record, Secrets};

#[derive(Debug)]
pub struct RestConnector {
    config: RestConfig,
    secrets: Secrets,
    ctx: Context,
}

impl RestConnector {
    pub fn new(config: RestConfig, secrets: Secrets, ctx: Context) -> Self {
        RestConnector { config, secrets, ctx }
    }
}

impl Connector for RestConnector {
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
