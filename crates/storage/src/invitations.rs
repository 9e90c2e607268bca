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
