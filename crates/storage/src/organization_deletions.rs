//! Deletions of whole organizations their Administrators asked for, pending until they are due
//! (migration 0022). At most one per organization; the row goes with the organization.

use crate::{StoreError, from_millis, to_millis};
use lockstep_domain::{OrganizationId, UserId};
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingDeletion {
    pub organization_id: OrganizationId,
    pub requested_by: UserId,
    pub requested_at: OffsetDateTime,
    pub due_at: OffsetDateTime,
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<PendingDeletion, StoreError> {
    let org: String = row.try_get("organization_id")?;
    let user: String = row.try_get("requested_by")?;
    Ok(PendingDeletion {
        organization_id: org
            .parse()
            .map_err(|_| StoreError::Corrupt("organization id"))?,
        requested_by: user.parse().map_err(|_| StoreError::Corrupt("user id"))?,
        requested_at: from_millis(row.try_get("requested_at")?)?,
        due_at: from_millis(row.try_get("due_at")?)?,
    })
}

/// Records a request; a second one for the same organization is a conflict.
pub async fn insert(conn: &mut AnyConnection, d: &PendingDeletion) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO organization_deletions (organization_id, requested_by, requested_at, due_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(d.organization_id.to_string())
    .bind(d.requested_by.to_string())
    .bind(to_millis(d.requested_at))
    .bind(to_millis(d.due_at))
    .execute(conn)
    .await
    .map_err(StoreError::unique("organization deletion"))?;
    Ok(())
}

/// The organization's pending deletion, if one was asked for.
pub async fn get(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<Option<PendingDeletion>, StoreError> {
    let row = sqlx::query(
        "SELECT organization_id, requested_by, requested_at, due_at \
         FROM organization_deletions WHERE organization_id = $1",
    )
    .bind(org.to_string())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Cancels the pending deletion; `false` when there was none.
pub async fn delete(conn: &mut AnyConnection, org: OrganizationId) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM organization_deletions WHERE organization_id = $1")
        .bind(org.to_string())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The deletions due at `now`, the earliest first.
pub async fn due(
    conn: &mut AnyConnection,
    now: OffsetDateTime,
) -> Result<Vec<PendingDeletion>, StoreError> {
    let rows = sqlx::query(
        "SELECT organization_id, requested_by, requested_at, due_at \
         FROM organization_deletions WHERE due_at <= $1 ORDER BY due_at, organization_id",
    )
    .bind(to_millis(now))
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}
