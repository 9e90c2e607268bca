//! A connection's configuration: the kind, and that kind's settings, validated before anything is
//! stored. Errors name the field (`config.port`, `secrets.password`) and the reason.

use crate::files::FilesConfig;
use crate::mysql::MysqlConfig;
use crate::postgres::PostgresConfig;
use crate::rest::RestConfig;
use crate::sqlite::SqliteConfig;
use crate::tryton::TrytonConfig;
use crate::{ConnectorError, Secrets};
use serde::{Deserialize, Serialize};
use std::path::{Component, Path};

/// The kinds of connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionKind {
    Postgres,
    Mysql,
    Sqlite,
    Files,
    Rest,
    Tryton,
}

impl ConnectionKind {
    pub const ALL: [ConnectionKind; 6] = [
        ConnectionKind::Postgres,
        ConnectionKind::Mysql,
        ConnectionKind::Sqlite,
        ConnectionKind::Files,
        ConnectionKind::Rest,
        ConnectionKind::Tryton,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionKind::Postgres => "postgres",
            ConnectionKind::Mysql => "mysql",
            ConnectionKind::Sqlite => "sqlite",
            ConnectionKind::Files => "files",
            ConnectionKind::Rest => "rest",
            ConnectionKind::Tryton => "tryton",
        }
    }

    pub fn parse(kind: &str) -> Option<ConnectionKind> {
        ConnectionKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// The secret fields a request may set for this kind.
    pub fn secret_fields(self) -> &'static [&'static str] {
        match self {
            ConnectionKind::Postgres => crate::postgres::SECRET_FIELDS,
            ConnectionKind::Mysql => crate::mysql::SECRET_FIELDS,
            ConnectionKind::Sqlite => crate::sqlite::SECRET_FIELDS,
            ConnectionKind::Files => crate::files::SECRET_FIELDS,
            ConnectionKind::Rest => crate::rest::SECRET_FIELDS,
            ConnectionKind::Tryton => crate::tryton::SECRET_FIELDS,
        }
    }
}

impl std::fmt::Display for ConnectionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind's settings. Holds no secret: those are [`Secrets`], stored apart and never shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionConfig {
    Postgres(PostgresConfig),
    Mysql(MysqlConfig),
    Sqlite(SqliteConfig),
    Files(FilesConfig),
    Rest(RestConfig),
    Tryton(TrytonConfig),
}

impl ConnectionConfig {
    /// Reads the settings of `kind` from JSON; unknown fields are refused.
    pub fn parse(kind: ConnectionKind, config: serde_json::Value) -> Result<Self, ConnectorError> {
        fn read<T: serde::de::DeserializeOwned>(
            value: serde_json::Value,
        ) -> Result<T, ConnectorError> {
            serde_path_to_error::deserialize(value).map_err(|err| {
                let path = err.path().to_string();
                let field = if path == "." || path.is_empty() {
                    "config".to_owned()
                } else {
                    format!("config.{path}")
                };
                ConnectorError::config(field, err.into_inner().to_string())
            })
        }
        Ok(match kind {
            ConnectionKind::Postgres => ConnectionConfig::Postgres(read(config)?),
            ConnectionKind::Mysql => ConnectionConfig::Mysql(read(config)?),
            ConnectionKind::Sqlite => ConnectionConfig::Sqlite(read(config)?),
            ConnectionKind::Files => ConnectionConfig::Files(read(config)?),
            ConnectionKind::Rest => ConnectionConfig::Rest(read(config)?),
            ConnectionKind::Tryton => ConnectionConfig::Tryton(read(config)?),
        })
    }

    pub fn kind(&self) -> ConnectionKind {
        match self {
            ConnectionConfig::Postgres(_) => ConnectionKind::Postgres,
            ConnectionConfig::Mysql(_) => ConnectionKind::Mysql,
            ConnectionConfig::Sqlite(_) => ConnectionKind::Sqlite,
            ConnectionConfig::Files(_) => ConnectionKind::Files,
            ConnectionConfig::Rest(_) => ConnectionKind::Rest,
            ConnectionConfig::Tryton(_) => ConnectionKind::Tryton,
        }
    }

    /// Checks the settings together with the secrets that will be stored with them.
    pub fn validate(&self, secrets: &Secrets) -> Result<(), ConnectorError> {
        let allowed = self.kind().secret_fields();
        for field in secrets.fields() {
            if !allowed.contains(&field) && !field.starts_with("oauth_") {
                return Err(ConnectorError::config(
                    format!("secrets.{field}"),
                    format!("a {} connection has no such secret", self.kind()),
                ));
            }
        }
        match self {
            ConnectionConfig::Postgres(c) => c.validate(secrets),
            ConnectionConfig::Mysql(c) => c.validate(secrets),
            ConnectionConfig::Sqlite(c) => c.validate(secrets),
            ConnectionConfig::Files(c) => c.validate(secrets),
            ConnectionConfig::Rest(c) => c.validate(secrets),
            ConnectionConfig::Tryton(c) => c.validate(secrets),
        }
    }

    /// The settings as JSON (what Administrators see).
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            ConnectionConfig::Postgres(c) => serde_json::to_value(c),
            ConnectionConfig::Mysql(c) => serde_json::to_value(c),
            ConnectionConfig::Sqlite(c) => serde_json::to_value(c),
            ConnectionConfig::Files(c) => serde_json::to_value(c),
            ConnectionConfig::Rest(c) => serde_json::to_value(c),
            ConnectionConfig::Tryton(c) => serde_json::to_value(c),
        };
        value.unwrap_or(serde_json::Value::Null)
    }
}

pub(crate) fn check_non_empty(field: &str, value: &str) -> Result<(), ConnectorError> {
    if value.trim().is_empty() {
        return Err(ConnectorError::config(field, "must not be empty"));
    }
    if value.chars().count() > 1024 || value.chars().any(char::is_control) {
        return Err(ConnectorError::config(
            field,
            "must be at most 1024 characters, without control characters",
        ));
    }
    Ok(())
}

/// A host name or an IP address (no scheme, port, path or user).
pub(crate) fn check_host(field: &str, host: &str) -> Result<(), ConnectorError> {
    let bad = host.is_empty()
        || host.len() > 253
        || host
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':')));
    if bad {
        return Err(ConnectorError::config(
            field,
            "must be a host name or an IP address (letters, digits, '.', '-', ':')",
        ));
    }
    Ok(())
}

pub(crate) fn check_pem(field: &str, pem: &str, label: &str) -> Result<(), ConnectorError> {
    if !pem.contains(&format!("-----BEGIN {label}-----")) {
        return Err(ConnectorError::config(
            field,
            format!("must be PEM (-----BEGIN {label}-----)"),
        ));
    }
    Ok(())
}

/// A path relative to the files directory: not absolute, no `..`, no empty or odd components.
/// Symbolic links are refused when the path is opened ([`crate::FilesRoot`]).
pub(crate) fn check_relative_path(field: &str, path: &str) -> Result<(), ConnectorError> {
    if path.is_empty() || path.len() > 4096 || path.contains('\0') || path.contains('\\') {
        return Err(ConnectorError::config(
            field,
            "must be a path relative to the files directory",
        ));
    }
    for component in Path::new(path).components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(ConnectorError::config(field, "must not contain '..'"));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(ConnectorError::config(
                    field,
                    "must be relative to the files directory, not absolute",
                ));
            }
        }
    }
    Ok(())
}

/// An absolute `http` or `https` URL without credentials in it.
pub(crate) fn check_http_url(field: &str, value: &str) -> Result<url::Url, ConnectorError> {
    let url = url::Url::parse(value)
        .map_err(|_| ConnectorError::config(field, "must be an absolute http(s) URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConnectorError::config(
            field,
            "must be an absolute http(s) URL",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConnectorError::config(
            field,
            "must not carry credentials; put them in secrets",
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::check_non_empty;

    #[test]
    fn text_settings_are_limited_in_characters_as_the_message_says() {
        let accented = "é".repeat(1024);
        assert!(check_non_empty("config.user", &accented).is_ok());
        assert!(check_non_empty("config.user", &"é".repeat(1025)).is_err());
        assert!(check_non_empty("config.user", " ").is_err());
        assert!(check_non_empty("config.user", "a\u{7}b").is_err());
    }
}
