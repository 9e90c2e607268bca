//! Organizations (tenants) and their wrapped data keys.
//!
//! Deleting an organization deletes every row that names it (foreign keys cascade), including its
//! wrapped data keys: without them, its ciphertexts can no longer be decrypted (crypto-shredding).

use crate::{StoreError, from_millis, to_millis};
use lockstep_domain::{OrganizationId, OrganizationName};
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

/// An organization as the operator sees it: id, name, creation time. Nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    pub id: OrganizationId,
    pub name: OrganizationName,
    pub created_at: OffsetDateTime,
}

/// One stored version of an organization's data key, wrapped by a keyring key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredOrgKey {
    pub version: u32,
    pub keyring_version: u32,
    pub wrapped_key: Vec<u8>,
}

/// Inserts an organization; a name already taken (ignoring case) is a conflict.
pub async fn insert(conn: &mut AnyConnection, org: &Organization) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO organizations (id, name, name_canonical, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(org.id.to_string())
    .bind(org.name.as_str().to_owned())
    .bind(org.name.canonical())
    .bind(to_millis(org.created_at))
    .execute(conn)
    .await
    .map_err(StoreError::unique("organization"))?;
    Ok(())
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Organization, StoreError> {
    let id: String = row.try_get("id")?;
    let name: String = row.try_get("name")?;
    Ok(Organization {
        id: id
            .parse()
            .map_err(|_| StoreError::Corrupt("organization id"))?,
        name: OrganizationName::parse(&name)
            .map_err(|_| StoreError::Corrupt("organization name"))?,
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

/// All organizations, oldest first.
pub async fn list(conn: &mut AnyConnection) -> Result<Vec<Organization>, StoreError> {
    let rows =
        sqlx::query("SELECT id, name, created_at FROM organizations ORDER BY created_at, id")
            .fetch_all(conn)
            .await?;
    rows.iter().map(from_row).collect()
}

pub async fn get(
    conn: &mut AnyConnection,
    id: OrganizationId,
) -> Result<Option<Organization>, StoreError> {
    let row = sqlx::query("SELECT id, name, created_at FROM organizations WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Deletes an organization and, by cascade, everything it owns. `false` when it did not exist.
pub async fn delete(conn: &mut AnyConnection, id: OrganizationId) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM organizations WHERE id = $1")
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Stores a new version of an organization's wrapped data key.
pub async fn insert_key(
    conn: &mut AnyConnection,
    org: OrganizationId,
    key: &StoredOrgKey,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO organization_keys (organization_id, version, keyring_version, wrapped_key, \
         created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(org.to_string())
    .bind(i64::from(key.version))
    .bind(i64::from(key.keyring_version))
    .bind(key.wrapped_key.clone())
    .bind(to_millis(at))
    .execute(conn)
    .await
    .map_err(StoreError::unique("organization key version"))?;
    Ok(())
}

/// Every stored version of an organization's wrapped data key, oldest first.
pub async fn keys(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<Vec<StoredOrgKey>, StoreError> {
    let rows = sqlx::query(
        "SELECT version, keyring_version, wrapped_key FROM organization_keys \
         WHERE organization_id = $1 ORDER BY version",
    )
    .bind(org.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let version: i64 = row.try_get("version")?;
            let keyring_version: i64 = row.try_get("keyring_version")?;
            Ok(StoredOrgKey {
                version: u32::try_from(version).map_err(|_| StoreError::Corrupt("key version"))?,
                keyring_version: u32::try_from(keyring_version)
                    .map_err(|_| StoreError::Corrupt("keyring version"))?,
                wrapped_key: row.try_get("wrapped_key")?,
            })
        })
        .collect()
}
