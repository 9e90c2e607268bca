//! Signed-in sessions: token and CSRF token stored as hashes, with creation and last-seen times.

use crate::{StoreError, from_millis, to_millis};
use lockstep_domain::{OrganizationId, SessionId, UserId};
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSession {
    pub id: SessionId,
    pub organization_id: OrganizationId,
    pub user_id: UserId,
    pub token_hash: [u8; 32],
    pub csrf_hash: [u8; 32],
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
}

const COLUMNS: &str =
    "id, organization_id, user_id, token_hash, csrf_hash, created_at, last_seen_at";

fn hash32(bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("token hash"))
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<StoredSession, StoreError> {
    let id: String = row.try_get("id")?;
    let org: String = row.try_get("organization_id")?;
    let user: String = row.try_get("user_id")?;
    Ok(StoredSession {
        id: id.parse().map_err(|_| StoreError::Corrupt("session id"))?,
        organization_id: org
            .parse()
            .map_err(|_| StoreError::Corrupt("organization id"))?,
        user_id: user.parse().map_err(|_| StoreError::Corrupt("user id"))?,
        token_hash: hash32(row.try_get("token_hash")?)?,
        csrf_hash: hash32(row.try_get("csrf_hash")?)?,
        created_at: from_millis(row.try_get("created_at")?)?,
        last_seen_at: from_millis(row.try_get("last_seen_at")?)?,
    })
}

pub async fn insert(conn: &mut AnyConnection, s: &StoredSession) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sessions (id, organization_id, user_id, token_hash, csrf_hash, created_at, \
         last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(s.id.to_string())
    .bind(s.organization_id.to_string())
    .bind(s.user_id.to_string())
    .bind(s.token_hash.to_vec())
    .bind(s.csrf_hash.to_vec())
    .bind(to_millis(s.created_at))
    .bind(to_millis(s.last_seen_at))
    .execute(conn)
    .await
    .map_err(StoreError::unique("session"))?;
    Ok(())
}

pub async fn find_by_token_hash(
    conn: &mut AnyConnection,
    token_hash: &[u8; 32],
) -> Result<Option<StoredSession>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM sessions WHERE token_hash = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(token_hash.to_vec())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list_for_user(
    conn: &mut AnyConnection,
    org: OrganizationId,
    user: UserId,
) -> Result<Vec<StoredSession>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM sessions WHERE organization_id = $1 AND user_id = $2 \
         ORDER BY created_at, id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(user.to_string())
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn touch(
    conn: &mut AnyConnection,
    id: SessionId,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(to_millis(at))
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes one session of this user; `false` when there is no such session of theirs.
pub async fn delete(
    conn: &mut AnyConnection,
    org: OrganizationId,
    user: UserId,
    id: SessionId,
) -> Result<bool, StoreError> {
    let done =
        sqlx::query("DELETE FROM sessions WHERE organization_id = $1 AND user_id = $2 AND id = $3")
            .bind(org.to_string())
            .bind(user.to_string())
            .bind(id.to_string())
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes every session of a user, except `keep` when given. Returns how many ended.
pub async fn delete_for_user(
    conn: &mut AnyConnection,
    org: OrganizationId,
    user: UserId,
    keep: Option<SessionId>,
) -> Result<u64, StoreError> {
    let keep = keep.map(|k| k.to_string()).unwrap_or_default();
    let done = sqlx::query(
        "DELETE FROM sessions WHERE organization_id = $1 AND user_id = $2 AND id <> $3",
    )
    .bind(org.to_string())
    .bind(user.to_string())
    .bind(keep)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
