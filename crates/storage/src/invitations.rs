//! Invitations to join an organization. The token is stored as a hash and the e-mail address as
//! ciphertext under the organization's key: the store alone reveals neither.

use crate::{StoreError, to_millis};
use lockstep_domain::{InvitationId, OrganizationId, UserId};
use sqlx::AnyConnection;
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewInvitation {
    pub id: InvitationId,
    pub organization_id: OrganizationId,
    pub token_hash: [u8; 32],
    pub email_ciphertext: Vec<u8>,
    pub role: String,
    /// The Administrator who sent it; `None` for the operator's first invitation.
    pub invited_by: Option<UserId>,
    pub expires_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
}

pub async fn insert(conn: &mut AnyConnection, inv: &NewInvitation) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO invitations (id, organization_id, token_hash, email_ciphertext, role, \
         invited_by, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(inv.id.to_string())
    .bind(inv.organization_id.to_string())
    .bind(inv.token_hash.to_vec())
    .bind(inv.email_ciphertext.clone())
    .bind(inv.role.clone())
    .bind(inv.invited_by.map(|u| u.to_string()))
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

/// An invitation not yet accepted, as Administrators see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingInvitation {
    pub id: InvitationId,
    pub organization_id: OrganizationId,
    pub email_ciphertext: Vec<u8>,
    pub role: String,
    pub invited_by: Option<UserId>,
    pub expires_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
    /// Whether its last mail went out; `None` when the hub has no mail server.
    pub mail: Option<MailStatus>,
}

/// What became of an invitation's mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailStatus {
    /// The mail server accepted it.
    Sent,
    /// The mail server refused it or could not be reached.
    Failed,
}

impl MailStatus {
    fn as_str(self) -> &'static str {
        match self {
            MailStatus::Sent => "sent",
            MailStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<MailStatus, StoreError> {
        match text {
            "sent" => Ok(MailStatus::Sent),
            "failed" => Ok(MailStatus::Failed),
            _ => Err(StoreError::Corrupt("invitation mail status")),
        }
    }
}

const PENDING_COLUMNS: &str =
    "id, organization_id, email_ciphertext, role, invited_by, expires_at, created_at, mail_status";

fn pending_from_row(row: &sqlx::any::AnyRow) -> Result<PendingInvitation, StoreError> {
    use sqlx::Row;
    let id: String = row.try_get("id")?;
    let org: String = row.try_get("organization_id")?;
    let invited_by: Option<String> = row.try_get("invited_by")?;
    let mail: Option<String> = row.try_get("mail_status")?;
    Ok(PendingInvitation {
        id: id
            .parse()
            .map_err(|_| StoreError::Corrupt("invitation id"))?,
        organization_id: org
            .parse()
            .map_err(|_| StoreError::Corrupt("organization id"))?,
        email_ciphertext: row.try_get("email_ciphertext")?,
        role: row.try_get("role")?,
        invited_by: invited_by
            .map(|u| u.parse().map_err(|_| StoreError::Corrupt("user id")))
            .transpose()?,
        expires_at: crate::from_millis(row.try_get("expires_at")?)?,
        created_at: crate::from_millis(row.try_get("created_at")?)?,
        mail: mail.as_deref().map(MailStatus::parse).transpose()?,
    })
}

/// The organization's invitations not yet accepted (expired ones included), oldest first.
pub async fn list_pending(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<Vec<PendingInvitation>, StoreError> {
    let sql = format!(
        "SELECT {PENDING_COLUMNS} FROM invitations WHERE organization_id = $1 \
         AND accepted_at IS NULL ORDER BY created_at, id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .fetch_all(conn)
        .await?;
    rows.iter().map(pending_from_row).collect()
}

/// One invitation of the organization not yet accepted.
pub async fn get_pending(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: InvitationId,
) -> Result<Option<PendingInvitation>, StoreError> {
    let sql = format!(
        "SELECT {PENDING_COLUMNS} FROM invitations WHERE organization_id = $1 AND id = $2 \
         AND accepted_at IS NULL"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(pending_from_row).transpose()
}

/// Gives a pending invitation a new token (the old one stops working) and a new expiry; `false`
/// when it is gone or was accepted meanwhile.
pub async fn renew(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: InvitationId,
    token_hash: &[u8; 32],
    expires_at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE invitations SET token_hash = $3, expires_at = $4 \
         WHERE organization_id = $1 AND id = $2 AND accepted_at IS NULL",
    )
    .bind(org.to_string())
    .bind(id.to_string())
    .bind(token_hash.to_vec())
    .bind(to_millis(expires_at))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a pending invitation (revoked or replaced): its token then matches nothing. `false`
/// when it is gone or was accepted meanwhile.
pub async fn delete_pending(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: InvitationId,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "DELETE FROM invitations WHERE organization_id = $1 AND id = $2 AND accepted_at IS NULL",
    )
    .bind(org.to_string())
    .bind(id.to_string())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records what became of a pending invitation's latest mail (`None`: the hub has no mail
/// server). `false` when it is gone or was accepted meanwhile.
pub async fn set_mail_status(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: InvitationId,
    mail: Option<MailStatus>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE invitations SET mail_status = $3 \
         WHERE organization_id = $1 AND id = $2 AND accepted_at IS NULL",
    )
    .bind(org.to_string())
    .bind(id.to_string())
    .bind(mail.map(MailStatus::as_str))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
