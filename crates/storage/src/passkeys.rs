//! Members' passkeys (WebAuthn credentials): the name and the credential sealed under the
//! organization's key, found by the hash of the credential id at sign-in.

use crate::{StoreError, from_millis, to_millis};
use lockstep_domain::{OrganizationId, PasskeyId, UserId};
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

/// One stored passkey. The ciphertexts are opaque here; the app seals and opens them.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    pub id: PasskeyId,
    pub organization_id: OrganizationId,
    pub user_id: UserId,
    /// SHA-256 of the credential id.
    pub credential_hash: [u8; 32],
    pub name_ciphertext: Vec<u8>,
    pub credential_ciphertext: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for StoredPasskey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPasskey")
            .field("id", &self.id)
            .field("organization_id", &self.organization_id)
            .field("user_id", &self.user_id)
            .field("created_at", &self.created_at)
            .field("last_used_at", &self.last_used_at)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, organization_id, user_id, credential_hash, name_ciphertext, \
     credential_ciphertext, created_at, last_used_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<StoredPasskey, StoreError> {
    let id: String = row.try_get("id")?;
    let org: String = row.try_get("organization_id")?;
    let user: String = row.try_get("user_id")?;
    let hash: Vec<u8> = row.try_get("credential_hash")?;
    let used: Option<i64> = row.try_get("last_used_at")?;
    Ok(StoredPasskey {
        id: id.parse().map_err(|_| StoreError::Corrupt("passkey id"))?,
        organization_id: org
            .parse()
            .map_err(|_| StoreError::Corrupt("organization id"))?,
        user_id: user.parse().map_err(|_| StoreError::Corrupt("user id"))?,
        credential_hash: hash
            .try_into()
            .map_err(|_| StoreError::Corrupt("passkey credential hash"))?,
        name_ciphertext: row.try_get("name_ciphertext")?,
        credential_ciphertext: row.try_get("credential_ciphertext")?,
        created_at: from_millis(row.try_get("created_at")?)?,
        last_used_at: used.map(from_millis).transpose()?,
    })
}

/// Stores a new passkey; a credential id stored before (by anyone) is a conflict.
pub async fn insert(conn: &mut AnyConnection, p: &StoredPasskey) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO passkeys (id, organization_id, user_id, credential_hash, name_ciphertext, \
         credential_ciphertext, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(p.id.to_string())
    .bind(p.organization_id.to_string())
    .bind(p.user_id.to_string())
    .bind(p.credential_hash.to_vec())
    .bind(p.name_ciphertext.clone())
    .bind(p.credential_ciphertext.clone())
    .bind(to_millis(p.created_at))
    .bind(p.last_used_at.map(to_millis))
    .execute(conn)
    .await
    .map_err(StoreError::unique("passkey"))?;
    Ok(())
}

/// A member's passkeys, oldest first.
pub async fn list_for_user(
    conn: &mut AnyConnection,
    org: OrganizationId,
    user: UserId,
) -> Result<Vec<StoredPasskey>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM passkeys WHERE organization_id = $1 AND user_id = $2 \
         ORDER BY created_at, id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(user.to_string())
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// How many passkeys a member has (asked on every request while the organization requires a
/// second factor).
pub async fn count_for_user(
    conn: &mut AnyConnection,
    org: OrganizationId,
    user: UserId,
) -> Result<u64, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM passkeys WHERE organization_id = $1 AND user_id = $2",
    )
    .bind(org.to_string())
    .bind(user.to_string())
    .fetch_one(conn)
    .await?;
    let n: i64 = row.try_get("n")?;
    u64::try_from(n).map_err(|_| StoreError::Corrupt("passkey count"))
}

/// The passkey whose credential id hashes to `credential_hash`, in any organization (a sign-in
/// without a password knows nothing else yet).
pub async fn find_by_credential_hash(
    conn: &mut AnyConnection,
    credential_hash: &[u8; 32],
) -> Result<Option<StoredPasskey>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE credential_hash = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(credential_hash.to_vec())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Stores the credential as it is after a sign-in (its counter and backup flags) and when it was
/// used. `false` when the passkey is gone (removed meanwhile).
pub async fn record_use(
    conn: &mut AnyConnection,
    org: OrganizationId,
    user: UserId,
    id: PasskeyId,
    credential_ciphertext: Option<&[u8]>,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = match credential_ciphertext {
        Some(ciphertext) => {
            sqlx::query(
                "UPDATE passkeys SET credential_ciphertext = $4, last_used_at = $5 \
                 WHERE organization_id = $1 AND user_id = $2 AND id = $3",
            )
            .bind(org.to_string())
            .bind(user.to_string())
            .bind(id.to_string())
            .bind(ciphertext.to_vec())
            .bind(to_millis(at))
            .execute(conn)
            .await?
        }
        None => {
            sqlx::query(
                "UPDATE passkeys SET last_used_at = $4 \
                 WHERE organization_id = $1 AND user_id = $2 AND id = $3",
            )
            .bind(org.to_string())
            .bind(user.to_string())
            .bind(id.to_string())
            .bind(to_millis(at))
            .execute(conn)
            .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

/// Renames a passkey. `false` when it is not the member's.
pub async fn rename(
    conn: &mut AnyConnection,
    org: OrganizationId,
    user: UserId,
    id: PasskeyId,
    name_ciphertext: &[u8],
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE passkeys SET name_ciphertext = $4 \
         WHERE organization_id = $1 AND user_id = $2 AND id = $3",
    )
    .bind(org.to_string())
    .bind(user.to_string())
    .bind(id.to_string())
    .bind(name_ciphertext.to_vec())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes one of a member's passkeys. `false` when it is not theirs.
pub async fn delete(
    conn: &mut AnyConnection,
    org: OrganizationId,
    user: UserId,
    id: PasskeyId,
) -> Result<bool, StoreError> {
    let done =
        sqlx::query("DELETE FROM passkeys WHERE organization_id = $1 AND user_id = $2 AND id = $3")
            .bind(org.to_string())
            .bind(user.to_string())
            .bind(id.to_string())
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}
