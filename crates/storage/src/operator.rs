//! The operator's bearer tokens, stored only as SHA-256 hashes.

use crate::{StoreError, to_millis};
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

/// Stores the hash of a new operator token.
pub async fn insert_token(
    conn: &mut AnyConnection,
    id: &str,
    token_hash: &[u8; 32],
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO operator_tokens (id, token_hash, created_at) VALUES ($1, $2, $3)")
        .bind(id.to_owned())
        .bind(token_hash.to_vec())
        .bind(to_millis(at))
        .execute(conn)
        .await
        .map_err(StoreError::unique("operator token"))?;
    Ok(())
}

/// Finds the id of the operator token with this hash.
pub async fn find_token(
    conn: &mut AnyConnection,
    token_hash: &[u8; 32],
) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT id FROM operator_tokens WHERE token_hash = $1")
        .bind(token_hash.to_vec())
        .fetch_optional(conn)
        .await?;
    row.map(|row| row.try_get::<String, _>("id"))
        .transpose()
        .map_err(StoreError::from)
}
