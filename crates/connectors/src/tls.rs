//! TLS modes for database connections, named as libpq names them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, else plain (libpq's default).
    #[default]
    Prefer,
    /// TLS required; the certificate is not checked (encryption against passive listeners only).
    Require,
    /// TLS required; the chain must lead to a trusted root (or `ca_certificate`) and the name must
    /// match the host.
    VerifyFull,
}
