use crate::TlsMode;
use crate::config::{check_host, check_non_empty, check_pem};
use crate::{ConnectorError, Secrets};
use serde::{Deserialize, Serialize};

/// `kind: "postgres"`. Secrets: `password` and/or `client_key` (PEM, with `client_certificate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
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
    /// PEM certificate(s) to trust instead of the system's roots (`verify-full`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"-----BEGIN CERTIFICATE-----")]
    pub ca_certificate: Option<String>,
    /// PEM client certificate; its key is the secret `client_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"-----BEGIN CERTIFICATE-----")]
    pub client_certificate: Option<String>,
    /// Discover only this schema (default: every schema but the system's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        max_length = 1024,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub schema: Option<String>,
}

fn default_port() -> u16 {
    5432
}

pub const SECRET_FIELDS: &[&str] = &["password", "client_key"];

impl PostgresConfig {
    pub fn validate(&self, secrets: &Secrets) -> Result<(), ConnectorError> {
        check_host("config.host", &self.host)?;
        if self.port == 0 {
            return Err(ConnectorError::config("config.port", "must be 1 to 65535"));
        }
        check_non_empty("config.database", &self.database)?;
        check_non_empty("config.user", &self.user)?;
        if let Some(ca) = &self.ca_certificate {
            check_pem("config.ca_certificate", ca, "CERTIFICATE")?;
        }
        match (&self.client_certificate, secrets.get("client_key")) {
            (Some(cert), Some(_)) => check_pem("config.client_certificate", cert, "CERTIFICATE")?,
            (Some(_), None) => {
                return Err(ConnectorError::config(
                    "secrets.client_key",
                    "a client certificate needs its private key",
                ));
            }
            (None, Some(_)) => {
                return Err(ConnectorError::config(
                    "config.client_certificate",
                    "a client key needs its certificate",
                ));
            }
            (None, None) => {}
        }
        if self.client_certificate.is_some() && self.tls == TlsMode::Disable {
            return Err(ConnectorError::config(
                "config.tls",
                "a client certificate needs TLS",
            ));
        }
        if let Some(schema) = &self.schema {
            check_non_empty("config.schema", schema)?;
        }
        Ok(())
    }
}
