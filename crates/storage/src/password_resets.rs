//! Password reset tokens: hashed, single-use, time-limited.

use crate::{StoreError, from_millis, to_millis};
use lockstep_domain::{OrganizationId, UserId};
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReset {
    pub organization_id: OrganizationId,
    pub user_id: UserId,
    pub expires_at: OffsetDateTime,
    pub used: bool,
}

pub async fn insert(
    conn: &mut AnyConnection,
    token_hash: &[u8; 32],
    org: OrganizationId,
    user: UserId,
    expires_at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO password_resets (token_hash, organization_id, user_id, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash.to_vec())
    .bind(org.to_string())
    .bind(user.to_string())
    .bind(to_millis(expires_at))
    .execute(conn)
    .await
    .map_err(StoreError::unique("password reset"))?;
    Ok(())
}

pub async fn find(
    conn: &mut AnyConnection,
    token_hash: &[u8; 32],
) -> Result<Option<StoredReset>, StoreError> {
    let row = sqlx::query(
        "SELECT organization_id, user_id, expires_at, used_at FROM password_resets \
         WHERE token_hash = $1",
    )
    .bind(token_hash.to_vec())
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let org: String = row.try_get("organization_id")?;
    let user: String = row.try_get("user_id")?;
    let used: Option<i64> = row.try_get("used_at")?;
    Ok(Some(StoredReset {
        organization_id: org
            .parse()
            .map_err(|_| StoreError::Corrupt("organization id"))?,
        user_id: user.parse().map_err(|_| StoreError::Corrupt("user id"))?,
        expires_at: from_millis(row.try_get("expires_at")?)?,
        used: used.is_some(),
    }))
}

/// Marks the token used; `false` when it was already used (a concurrent use lost the race).
pub async fn mark_used(
    conn: &mut AnyConnection,
    token_hash: &[u8; 32],
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE password_resets SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL",
    )
    .bind(token_hash.to_vec())
    .bind(to_millis(at))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
