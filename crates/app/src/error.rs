//! The use cases' errors: stable kinds the server maps to HTTP statuses. Messages name the
//! problem, never a secret, an e-mail address or a name.

use lockstep_storage::StoreError;
use lockstep_vault::VaultError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum AppError {
    /// The vault is sealed: no customer data can be read or written.
    #[error("the hub is sealed")]
    Sealed,
    /// No valid credentials were presented.
    #[error("authentication required")]
    Unauthenticated,
    /// The object does not exist (or is not visible to the caller).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The object already exists.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A field of the request is invalid.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// An unseal key share was refused; it did not count.
    #[error("{0}")]
    UnsealRefused(#[source] VaultError),
    /// The store failed; nothing was changed.
    #[error("storage failure")]
    Store(#[source] StoreError),
    /// A cryptographic operation failed where it should not (corrupt data or a bug).
    #[error("internal vault failure")]
    Vault(#[source] VaultError),
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => AppError::Conflict(what),
            other => AppError::Store(other),
        }
    }
}

impl From<VaultError> for AppError {
    fn from(err: VaultError) -> Self {
        match err {
            VaultError::Sealed => AppError::Sealed,
            other => AppError::Vault(other),
        }
    }
}
