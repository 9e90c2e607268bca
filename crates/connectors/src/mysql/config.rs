use crate::TlsMode;
use crate::config::{check_host, check_non_empty, check_pem};
use crate::{ConnectorError, Secrets};
use serde::{Deserialize, Serialize};

/// `kind: "mysql"` (MySQL and MariaDB). Secret: `password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MysqlConfig {
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,253}$")]
    pub host: String,
    #[serde(default = "default_port")]
    #[schema(minimum = 1, maximum = 65535)]
    pub port: u16,
    #[schema(
        max_length = 1024,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub database: String,
    #[schema(
        max_length = 1024,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub user: String,
    #[serde(default)]
    pub tls: TlsMode,
    /// PEM certificate(s) to trust instead of the built-in roots (`verify-full`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"-----BEGIN CERTIFICATE-----")]
    pub ca_certificate: Option<String>,
}

fn default_port() -> u16 {
    3306
}

pub const SECRET_FIELDS: &[&str] = &["password"];

impl MysqlConfig {
    pub fn validate(&self, _secrets: &Secrets) -> Result<(), ConnectorError> {
        check_host("config.host", &self.host)?;
        if self.port == 0 {
            return Err(ConnectorError::config("config.port", "must be 1 to 65535"));
        }
        check_non_empty("config.database", &self.database)?;
        check_non_empty("config.user", &self.user)?;
        if let Some(ca) = &self.ca_certificate {
            check_pem("config.ca_certificate", ca, "CERTIFICATE")?;
        }
        Ok(())
    }
}
