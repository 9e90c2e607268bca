//! API tokens for automation: stored as hashes, named, with a scope, an expiry and the role they
//! were made under (a token stops working when its user's role changes).

use crate::{StoreError, from_millis, to_millis};
use lockstep_domain::{ApiTokenId, OrganizationId, Role, TokenScope, UserId};
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredApiToken {
    pub id: ApiTokenId,
    pub organization_id: OrganizationId,
    pub user_id: UserId,
    /// Empty once names are sealed; in a row written before, the name in clear.
    pub name: String,
    /// The name sealed under the organization's key.
    pub name_ciphertext: Option<Vec<u8>>,
    pub token_hash: [u8; 32],
    pub role: Role,
    pub scope: TokenScope,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

const COLUMNS: &str = "id, organization_id, user_id, name, name_ciphertext, token_hash, role, \
     scope, created_at, expires_at, last_used_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<StoredApiToken, StoreError> {
    let id: String = row.try_get("id")?;
    let org: String = row.try_get("organization_id")?;
    let user: String = row.try_get("user_id")?;
    let role: String = row.try_get("role")?;
    let scope: String = row.try_get("scope")?;
    let hash: Vec<u8> = row.try_get("token_hash")?;
    let used: Option<i64> = row.try_get("last_used_at")?;
    Ok(StoredApiToken {
        id: id.parse().map_err(|_| StoreError::Corrupt("token id"))?,
        organization_id: org
            .parse()
            .map_err(|_| StoreError::Corrupt("organization id"))?,
        user_id: user.parse().map_err(|_| StoreError::Corrupt("user id"))?,
        name: row.try_get("name")?,
        name_ciphertext: row.try_get("name_ciphertext")?,
        token_hash: hash
            .try_into()
            .map_err(|_| StoreError::Corrupt("token hash"))?,
        role: role
            .parse()
            .map_err(|_| StoreError::Corrupt("token role"))?,
        scope: scope
            .parse()
            .map_err(|_| StoreError::Corrupt("token scope"))?,
        created_at: from_millis(row.try_get("created_at")?)?,
        expires_at: from_millis(row.try_get("expires_at")?)?,
        last_used_at: used.map(from_millis).transpose()?,
    })
}

pub async fn insert(conn: &mut AnyConnection, t: &StoredApiToken) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_tokens (id, organization_id, user_id, name, token_hash, role, scope, \
         created_at, expires_at, name_ciphertext) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(t.id.to_string())
    .bind(t.organization_id.to_string())
    .bind(t.user_id.to_string())
    .bind(t.name.clone())
    .bind(t.token_hash.to_vec())
    .bind(t.role.as_str())
    .bind(t.scope.as_str())
    .bind(to_millis(t.created_at))
    .bind(to_millis(t.expires_at))
    .bind(t.name_ciphertext.clone())
    .execute(conn)
    .await
    .map_err(StoreError::unique("API token"))?;
    Ok(())
}

pub async fn find_by_token_hash(
    conn: &mut AnyConnection,
    token_hash: &[u8; 32],
) -> Result<Option<StoredApiToken>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE token_hash = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(token_hash.to_vec())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every API token of the organization, oldest first.
pub async fn list_for_organization(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<Vec<StoredApiToken>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE organization_id = $1 ORDER BY created_at, id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn list_for_user(
    conn: &mut AnyConnection,
    org: OrganizationId,
    user: UserId,
) -> Result<Vec<StoredApiToken>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE organization_id = $1 AND user_id = $2 \
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
    id: ApiTokenId,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(to_millis(at))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete(
    conn: &mut AnyConnection,
    org: OrganizationId,
    user: UserId,
    id: ApiTokenId,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "DELETE FROM api_tokens WHERE organization_id = $1 AND user_id = $2 AND id = $3",
    )
    .bind(org.to_string())
    .bind(user.to_string())
    .bind(id.to_string())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete_for_user(
    conn: &mut AnyConnection,
    org: OrganizationId,
    user: UserId,
) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM api_tokens WHERE organization_id = $1 AND user_id = $2")
        .bind(org.to_string())
        .bind(user.to_string())
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
