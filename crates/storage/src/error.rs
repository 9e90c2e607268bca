//! The store's errors: few, stable kinds; the database's own error stays in `source()`.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The database could not be reached or answered with an error.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// A migration failed; the store refuses to start.
    #[error("database migration failed")]
    Migration(#[source] sqlx::migrate::MigrateError),
    /// A unique constraint was violated (the name says which object already exists).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A stored value does not have the shape the code expects.
    #[error("stored data is corrupt: {0}")]
    Corrupt(&'static str),
    /// The embedded store's file could not be created or restricted to its owner.
    #[error("cannot create the store file or restrict it to its owner")]
    File(#[source] std::io::Error),
    /// The database URL names no supported backend.
    #[error("unsupported database URL: use postgres://… or sqlite://…")]
    UnsupportedUrl,
}

impl StoreError {
    /// Maps a unique-constraint violation to `Conflict(what)`, anything else to `Database`.
    pub(crate) fn unique(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |err| match err.as_database_error() {
            Some(db) if db.is_unique_violation() => StoreError::Conflict(what),
            _ => StoreError::Database(err),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::Database(err)
    }
}
