//! Invitations to join an organization. The token is stored as a hash and the e-mail address as
//! ciphertext under the organization's key: the store alone reveals neither.

use crate::{StoreError, to_millis};
use lockstep_domain::{InvitationId, OrganizationId};
use sqlx::AnyConnection;
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewInvitation {
    pub id: InvitationId,
    pub organization_id: OrganizationId,
    pub token_hash: [u8; 32],
    pub email_ciphertext: Vec<u8>,
    pub role: String,
    pub expires_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
}

pub async fn insert(conn: &mut AnyConnection, inv: &NewInvitation) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO invitations (id, organization_id, token_hash, email_ciphertext, role, \
         expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(inv.id.to_string())
    .bind(inv.organization_id.to_string())
    .bind(inv.token_hash.to_vec())
    .bind(inv.email_ciphertext.clone())
    .bind(inv.role.clone())
    .bind(to_millis(inv.expires_at))
    .bind(to_millis(inv.created_at))
    .execute(conn)
    .await
    .map_err(StoreError::unique("invitation"))?;
    Ok(())
}

/// A pending invitation found by its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredInvitation {
    pub id: InvitationId,
    pub organization_id: OrganizationId,
    pub email_ciphertext: Vec<u8>,
    pub role: String,
    pub expires_at: OffsetDateTime,
    pub accepted: bool,
}

pub async fn find_by_token_hash(
    conn: &mut AnyConnection,
    token_hash: &[u8; 32],
) -> Result<Option<StoredInvitation>, StoreError> {
    use sqlx::Row;
    let row = sqlx::query(
        "SELECT id, organization_id, email_ciphertext, role, expires_at, accepted_at \
         FROM invitations WHERE token_hash = $1",
    )
    .bind(token_hash.to_vec())
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let id: String = row.try_get("id")?;
    let org: String = row.try_get("organization_id")?;
    let accepted: Option<i64> = row.try_get("accepted_at")?;
    Ok(Some(StoredInvitation {
        id: id
            .parse()
            .map_err(|_| StoreError::Corrupt("invitation id"))?,
        organization_id: org
            .parse()
            .map_err(|_| StoreError::Corrupt("organization id"))?,
        email_ciphertext: row.try_get("email_ciphertext")?,
        role: row.try_get("role")?,
        expires_at: crate::from_millis(row.try_get("expires_at")?)?,
        accepted: accepted.is_some(),
    }))
}

/// Marks an invitation accepted; `false` when it already was (it is single-use).
pub async fn mark_accepted(
    conn: &mut AnyConnection,
    id: InvitationId,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE invitations SET accepted_at = $2 WHERE id = $1 AND accepted_at IS NULL",
    )
    .bind(id.to_string())
    .bind(to_millis(at))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
