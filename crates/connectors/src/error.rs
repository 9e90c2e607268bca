//! What can go wrong talking to a system. Each kind says *what* failed in words a user can act on;
//! no message ever carries a secret, a record value or a URL with credentials in it.

use thiserror::Error;

/// Why a connector call failed, as the API shows it (`failure` in problem+json, or the result of
/// "test connection").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The peer refused the connection (nothing listens, or a firewall said no).
    Refused,
    /// No answer in time.
    Timeout,
    /// The peer did not accept the credentials.
    Authentication,
    /// TLS could not be set up (no TLS offered, untrusted or mismatched certificate).
    Tls,
    /// The host name does not resolve.
    Dns,
    /// The operator's egress policy or the files directory refuses this address or path.
    Policy,
    /// The object (table, file, endpoint) does not exist.
    NotFound,
    /// The peer answered something the connector cannot use.
    Protocol,
    /// Anything else (an I/O error, a query error).
    Other,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Refused => "refused",
            FailureKind::Timeout => "timeout",
            FailureKind::Authentication => "authentication",
            FailureKind::Tls => "tls",
            FailureKind::Dns => "dns",
            FailureKind::Policy => "policy",
            FailureKind::NotFound => "not_found",
            FailureKind::Protocol => "protocol",
            FailureKind::Other => "other",
        }
    }
}

#[derive(Debug, Error)]
pub enum ConnectorError {
    /// A configuration field is invalid: `field` is its path (`config.port`, `secrets.password`).
    #[error("{field}: {reason}")]
    Config { field: String, reason: String },
    /// A call to the system failed. `message` is written by the connector from the error's kind
    /// and codes, never copied from input that could hold a secret.
    #[error("{message}")]
    Failed { kind: FailureKind, message: String },
}

impl ConnectorError {
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> ConnectorError {
        ConnectorError::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn failed(kind: FailureKind, message: impl Into<String>) -> ConnectorError {
        ConnectorError::Failed {
            kind,
            message: message.into(),
        }
    }

    /// Names `object` in a "not found" failure that does not name it yet: which table, file or
    /// endpoint is missing is what a user needs to act (an object's name is no secret).
    pub fn about_object(self, object: &str) -> ConnectorError {
        match self {
            ConnectorError::Failed {
                kind: FailureKind::NotFound,
                message,
            } if !message.contains(object) => ConnectorError::Failed {
                kind: FailureKind::NotFound,
                message: format!("{object}: {message}"),
            },
            other => other,
        }
    }

    /// The failure kind (`None` for a configuration error).
    pub fn kind(&self) -> Option<FailureKind> {
        match self {
            ConnectorError::Config { .. } => None,
            ConnectorError::Failed { kind, .. } => Some(*kind),
        }
    }
}
