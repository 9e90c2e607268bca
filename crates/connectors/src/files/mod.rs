//! The `files` connector.

mod config;

pub use config::{CsvOptions, FilesConfig, SECRET_FIELDS};

use crate::{Connector, ConnectorError, Context, FailureKind, ObjectMeta, Record, UploadedFile};

#[derive(Debug)]
pub struct FilesConnector {
    config: FilesConfig,
    uploads: Vec<UploadedFile>,
    ctx: Context,
}

impl FilesConnector {
    pub fn new(config: FilesConfig, uploads: Vec<UploadedFile>, ctx: Context) -> Self {
        FilesConnector { config, uploads, ctx }
    }
}

impl Connector for FilesConnector {
    async fn test(&self) -> Result<(), ConnectorError> {
        let _ = (&self.config, &self.uploads, &self.ctx);
        Err(ConnectorError::failed(FailureKind::Other, "not built yet"))
    }

    async fn discover(&self) -> Result<Vec<ObjectMeta>, ConnectorError> {
        Err(ConnectorError::failed(FailureKind::Other, "not built yet"))
    }

    async fn sample(&self, _object: &str, _limit: usize) -> Result<Vec<Record>, ConnectorError> {
        Err(ConnectorError::failed(FailureKind::Other, "not built yet"))
    }
}
