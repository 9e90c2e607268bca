//! Lockstep's metadata store: one API over an embedded SQLite file or a PostgreSQL database.
//!
//! Both backends run the same migrations (one folder each, the same tables and constraints) and
//! the same queries through sqlx's `Any` driver: queries use `$1` placeholders, which both accept,
//! and only the types both share (text, 64-bit integers, bytes). Times are Unix milliseconds.
//!
//! Each aggregate has a module of plain async functions taking a `&mut AnyConnection`, so the
//! caller decides the transaction: a use case opens one with [`Store::write`], calls several
//! functions, and commits. Lookups return `Result<Option<T>, StoreError>`: an outage is an error,
//! never "not found".

mod error;
mod store;

pub mod api_tokens;
pub mod audit;
pub mod connections;
pub mod datasets;
pub mod footprint;
pub mod invitations;
pub mod ledger;
pub mod names;
pub mod operator;
pub mod organization_deletions;
pub mod organizations;
pub mod passkeys;
pub mod password_resets;
pub mod pipelines;
pub mod run_history;
pub mod sessions;
pub mod settings;
pub mod sso;
pub mod support;
pub mod teams;
pub mod users;
pub mod vault;

#[cfg(feature = "testing")]
pub mod testing;

pub use error::StoreError;
pub use sqlx::AnyConnection as Connection;
pub use store::{Backend, Store, Transaction};

/// Converts a time to the stored form (Unix milliseconds).
fn to_millis(at: time::OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Converts the stored form back to a time.
fn from_millis(ms: i64) -> Result<time::OffsetDateTime, StoreError> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|_| StoreError::Corrupt("timestamp out of range"))
}
