use crate::config::check_relative_path;
use crate::{ConnectorError, Secrets};
use serde::{Deserialize, Serialize};

/// `kind: "sqlite"`: a database file inside the operator's files directory. No secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqliteConfig {
    /// Relative to the files directory (`--files-root`).
    pub path: String,
}

pub const SECRET_FIELDS: &[&str] = &[];

impl SqliteConfig {
    pub fn validate(&self, _secrets: &Secrets) -> Result<(), ConnectorError> {
        check_relative_path("config.path", &self.path)
    }
}
