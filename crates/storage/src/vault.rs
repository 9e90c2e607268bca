//! The vault's stored configuration: share count, threshold, share verifiers, encrypted keyring.
//! Nothing here is secret on its own; the keyring is ciphertext under the root key.

use crate::{StoreError, from_millis, to_millis};
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

/// The stored vault configuration, as the vault crate's `SealConfig` needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredVault {
    pub vault_id: Vec<u8>,
    pub key_shares: u8,
    pub key_threshold: u8,
    pub share_verifiers: Vec<u8>,
    pub encrypted_keyring: Vec<u8>,
    pub created_at: OffsetDateTime,
}

/// Loads the vault configuration; `None` when the store was never initialized.
pub async fn load(conn: &mut AnyConnection) -> Result<Option<StoredVault>, StoreError> {
    let row = sqlx::query(
        "SELECT vault_id, key_shares, key_threshold, share_verifiers, encrypted_keyring, created_at \
         FROM vault_config WHERE singleton = 1",
    )
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let shares: i64 = row.try_get("key_shares")?;
    let threshold: i64 = row.try_get("key_threshold")?;
    Ok(Some(StoredVault {
        vault_id: row.try_get("vault_id")?,
        key_shares: u8::try_from(shares).map_err(|_| StoreError::Corrupt("key_shares"))?,
        key_threshold: u8::try_from(threshold).map_err(|_| StoreError::Corrupt("key_threshold"))?,
        share_verifiers: row.try_get("share_verifiers")?,
        encrypted_keyring: row.try_get("encrypted_keyring")?,
        created_at: from_millis(row.try_get("created_at")?)?,
    }))
}

/// Stores the configuration of a newly initialized vault. A second initialization is a conflict.
pub async fn insert(conn: &mut AnyConnection, vault: &StoredVault) -> Result<(), StoreError> {
    let at = to_millis(vault.created_at);
    sqlx::query(
        "INSERT INTO vault_config (singleton, vault_id, key_shares, key_threshold, share_verifiers, \
         encrypted_keyring, created_at, updated_at) VALUES (1, $1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(vault.vault_id.clone())
    .bind(i64::from(vault.key_shares))
    .bind(i64::from(vault.key_threshold))
    .bind(vault.share_verifiers.clone())
    .bind(vault.encrypted_keyring.clone())
    .bind(at)
    .execute(conn)
    .await
    .map_err(StoreError::unique("vault"))?;
    Ok(())
}

/// Replaces the encrypted keyring (after a keyring rotation).
pub async fn update_keyring(
    conn: &mut AnyConnection,
    encrypted_keyring: &[u8],
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE vault_config SET encrypted_keyring = $1, updated_at = $2 WHERE singleton = 1",
    )
    .bind(encrypted_keyring.to_vec())
    .bind(to_millis(at))
    .execute(conn)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Corrupt("vault configuration missing"));
    }
    Ok(())
}
