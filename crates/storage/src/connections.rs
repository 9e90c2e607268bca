//! Connections and what belongs to them: secrets, discovered metadata, uploaded files and pending
//! OAuth authorizations. Every payload is ciphertext made by the caller under the organization's
//! key; this module only stores it. Every lookup is scoped to an organization.

use crate::{StoreError, from_millis, to_millis};
use lockstep_domain::{ConnectionId, OrganizationId, UploadId, UserId};
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredConnection {
    pub id: ConnectionId,
    pub organization_id: OrganizationId,
    /// The keyed index of the name (unique in the organization), or, in a row written before
    /// names were sealed (`name_ciphertext` is `None`), the name in clear.
    pub name: String,
    /// The name sealed under the organization's key.
    pub name_ciphertext: Option<Vec<u8>>,
    pub kind: String,
    pub config_ciphertext: Vec<u8>,
    /// An OAuth authorization-code connection holds tokens.
    pub oauth_connected: bool,
    pub oauth_expires_at: Option<OffsetDateTime>,
    pub created_by: Option<UserId>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, organization_id, name, name_ciphertext, kind, config_ciphertext, \
     oauth_connected, oauth_expires_at, created_by, created_at, updated_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<StoredConnection, StoreError> {
    let id: String = row.try_get("id")?;
    let org: String = row.try_get("organization_id")?;
    let created_by: Option<String> = row.try_get("created_by")?;
    let expires: Option<i64> = row.try_get("oauth_expires_at")?;
    let connected: i64 = row.try_get("oauth_connected")?;
    Ok(StoredConnection {
        id: id
            .parse()
            .map_err(|_| StoreError::Corrupt("connection id"))?,
        organization_id: org
            .parse()
            .map_err(|_| StoreError::Corrupt("organization id"))?,
        name: row.try_get("name")?,
        name_ciphertext: row.try_get("name_ciphertext")?,
        kind: row.try_get("kind")?,
        config_ciphertext: row.try_get("config_ciphertext")?,
        oauth_connected: connected != 0,
        oauth_expires_at: expires.map(from_millis).transpose()?,
        created_by: created_by
            .map(|u| u.parse().map_err(|_| StoreError::Corrupt("user id")))
            .transpose()?,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
    })
}

pub async fn insert(conn: &mut AnyConnection, c: &StoredConnection) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO connections (id, organization_id, name, kind, config_ciphertext, \
         oauth_connected, oauth_expires_at, created_by, created_at, updated_at, name_ciphertext) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(c.id.to_string())
    .bind(c.organization_id.to_string())
    .bind(c.name.clone())
    .bind(c.kind.clone())
    .bind(c.config_ciphertext.clone())
    .bind(i64::from(c.oauth_connected))
    .bind(c.oauth_expires_at.map(to_millis))
    .bind(c.created_by.map(|u| u.to_string()))
    .bind(to_millis(c.created_at))
    .bind(to_millis(c.updated_at))
    .bind(c.name_ciphertext.clone())
    .execute(conn)
    .await
    .map_err(StoreError::unique("connection with this name"))?;
    Ok(())
}

/// A connection of `org`; `None` for an unknown id and for another organization's connection.
pub async fn get(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: ConnectionId,
) -> Result<Option<StoredConnection>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM connections WHERE organization_id = $1 AND id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The organization's connections (in no useful order: names are sealed, the caller sorts).
pub async fn list(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<Vec<StoredConnection>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM connections WHERE organization_id = $1 ORDER BY id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.to_string())
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Stores a new name and configuration.
pub async fn update(conn: &mut AnyConnection, c: &StoredConnection) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE connections SET name = $1, config_ciphertext = $2, updated_at = $3, \
         name_ciphertext = $6 WHERE organization_id = $4 AND id = $5",
    )
    .bind(c.name.clone())
    .bind(c.config_ciphertext.clone())
    .bind(to_millis(c.updated_at))
    .bind(c.organization_id.to_string())
    .bind(c.id.to_string())
    .bind(c.name_ciphertext.clone())
    .execute(conn)
    .await
    .map_err(StoreError::unique("connection with this name"))?;
    Ok(())
}

/// Records whether OAuth tokens are held and when the access token expires.
pub async fn set_oauth(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: ConnectionId,
    connected: bool,
    expires_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE connections SET oauth_connected = $1, oauth_expires_at = $2, updated_at = $3 \
         WHERE organization_id = $4 AND id = $5",
    )
    .bind(i64::from(connected))
    .bind(expires_at.map(to_millis))
    .bind(to_millis(now))
    .bind(org.to_string())
    .bind(id.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes the connection and, by cascade, its secrets, metadata, uploads and authorizations.
pub async fn delete(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: ConnectionId,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM connections WHERE organization_id = $1 AND id = $2")
        .bind(org.to_string())
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Sets one secret (insert or replace).
pub async fn put_secret(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: ConnectionId,
    field: &str,
    ciphertext: &[u8],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO connection_secrets (connection_id, organization_id, field, ciphertext, \
         updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (connection_id, field) DO UPDATE SET ciphertext = excluded.ciphertext, \
         updated_at = excluded.updated_at",
    )
    .bind(id.to_string())
    .bind(org.to_string())
    .bind(field.to_owned())
    .bind(ciphertext.to_vec())
    .bind(to_millis(now))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_secret(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: ConnectionId,
    field: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM connection_secrets WHERE organization_id = $1 AND connection_id = $2 \
         AND field = $3",
    )
    .bind(org.to_string())
    .bind(id.to_string())
    .bind(field.to_owned())
    .execute(conn)
    .await?;
    Ok(())
}

/// `(field, ciphertext)` of every secret of the connection.
pub async fn secrets(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: ConnectionId,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let rows = sqlx::query(
        "SELECT field, ciphertext FROM connection_secrets WHERE organization_id = $1 \
         AND connection_id = $2 ORDER BY field",
    )
    .bind(org.to_string())
    .bind(id.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("field")?, row.try_get("ciphertext")?)))
        .collect()
}

/// Stores the discovered metadata (replacing earlier discoveries).
pub async fn put_metadata(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: ConnectionId,
    ciphertext: &[u8],
    discovered_at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO connection_metadata (connection_id, organization_id, ciphertext, \
         discovered_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (connection_id) DO UPDATE SET ciphertext = excluded.ciphertext, \
         discovered_at = excluded.discovered_at",
    )
    .bind(id.to_string())
    .bind(org.to_string())
    .bind(ciphertext.to_vec())
    .bind(to_millis(discovered_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// The discovered metadata and when it was discovered.
pub async fn metadata(
    conn: &mut AnyConnection,
    org: OrganizationId,
    id: ConnectionId,
) -> Result<Option<(Vec<u8>, OffsetDateTime)>, StoreError> {
    let row = sqlx::query(
        "SELECT ciphertext, discovered_at FROM connection_metadata WHERE organization_id = $1 \
         AND connection_id = $2",
    )
    .bind(org.to_string())
    .bind(id.to_string())
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        Ok((
            row.try_get("ciphertext")?,
            from_millis(row.try_get("discovered_at")?)?,
        ))
    })
    .transpose()
}

/// A file uploaded to a connection (its contents are ciphertext).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredUpload {
    pub id: UploadId,
    pub name: String,
    pub size: u64,
    pub created_at: OffsetDateTime,
}

/// Stores an uploaded file; a file of the same name is replaced.
pub async fn put_upload(
    conn: &mut AnyConnection,
    org: OrganizationId,
    connection: ConnectionId,
    upload: &StoredUpload,
    ciphertext: &[u8],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM connection_uploads WHERE connection_id = $1 AND name = $2")
        .bind(connection.to_string())
        .bind(upload.name.clone())
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO connection_uploads (id, connection_id, organization_id, name, size, \
         ciphertext, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(upload.id.to_string())
    .bind(connection.to_string())
    .bind(org.to_string())
    .bind(upload.name.clone())
    .bind(i64::try_from(upload.size).unwrap_or(i64::MAX))
    .bind(ciphertext.to_vec())
    .bind(to_millis(upload.created_at))
    .execute(conn)
    .await?;
    Ok(())
}

fn upload_from_row(row: &sqlx::any::AnyRow) -> Result<StoredUpload, StoreError> {
    let id: String = row.try_get("id")?;
    let size: i64 = row.try_get("size")?;
    Ok(StoredUpload {
        id: id.parse().map_err(|_| StoreError::Corrupt("upload id"))?,
        name: row.try_get("name")?,
        size: u64::try_from(size).unwrap_or(0),
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

/// The connection's uploaded files (without contents), by name.
pub async fn uploads(
    conn: &mut AnyConnection,
    org: OrganizationId,
    connection: ConnectionId,
) -> Result<Vec<StoredUpload>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, name, size, created_at FROM connection_uploads WHERE organization_id = $1 \
         AND connection_id = $2 ORDER BY name",
    )
    .bind(org.to_string())
    .bind(connection.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter().map(upload_from_row).collect()
}

/// The connection's uploaded files with their ciphertext.
pub async fn upload_contents(
    conn: &mut AnyConnection,
    org: OrganizationId,
    connection: ConnectionId,
) -> Result<Vec<(StoredUpload, Vec<u8>)>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, name, size, created_at, ciphertext FROM connection_uploads \
         WHERE organization_id = $1 AND connection_id = $2 ORDER BY name",
    )
    .bind(org.to_string())
    .bind(connection.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| Ok((upload_from_row(row)?, row.try_get("ciphertext")?)))
        .collect()
}

pub async fn delete_upload(
    conn: &mut AnyConnection,
    org: OrganizationId,
    connection: ConnectionId,
    name: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "DELETE FROM connection_uploads WHERE organization_id = $1 AND connection_id = $2 \
         AND name = $3",
    )
    .bind(org.to_string())
    .bind(connection.to_string())
    .bind(name.to_owned())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// An OAuth authorization started by an Administrator, waiting for the provider's callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingAuthorization {
    pub state_hash: [u8; 32],
    pub organization_id: OrganizationId,
    pub connection_id: ConnectionId,
    pub user_id: UserId,
    pub verifier_ciphertext: Vec<u8>,
    /// SHA-256 of the value the starting browser was given in a cookie: the callback must
    /// bring it back.
    pub binding_hash: [u8; 32],
    pub expires_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
}

pub async fn insert_authorization(
    conn: &mut AnyConnection,
    a: &PendingAuthorization,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO oauth_authorizations (state_hash, organization_id, connection_id, user_id, \
         verifier_ciphertext, binding_hash, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(a.state_hash.to_vec())
    .bind(a.organization_id.to_string())
    .bind(a.connection_id.to_string())
    .bind(a.user_id.to_string())
    .bind(a.verifier_ciphertext.clone())
    .bind(a.binding_hash.to_vec())
    .bind(to_millis(a.expires_at))
    .bind(to_millis(a.created_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes and answers the authorization with this state: each state is used at most once.
pub async fn take_authorization(
    conn: &mut AnyConnection,
    state_hash: &[u8; 32],
) -> Result<Option<PendingAuthorization>, StoreError> {
    let row = sqlx::query(
        "SELECT state_hash, organization_id, connection_id, user_id, verifier_ciphertext, \
         binding_hash, expires_at, created_at FROM oauth_authorizations WHERE state_hash = $1",
    )
    .bind(state_hash.to_vec())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    sqlx::query("DELETE FROM oauth_authorizations WHERE state_hash = $1")
        .bind(state_hash.to_vec())
        .execute(&mut *conn)
        .await?;
    let org: String = row.try_get("organization_id")?;
    let connection: String = row.try_get("connection_id")?;
    let user: String = row.try_get("user_id")?;
    let binding: Vec<u8> = row.try_get("binding_hash")?;
    Ok(Some(PendingAuthorization {
        state_hash: *state_hash,
        organization_id: org
            .parse()
            .map_err(|_| StoreError::Corrupt("organization id"))?,
        connection_id: connection
            .parse()
            .map_err(|_| StoreError::Corrupt("connection id"))?,
        user_id: user.parse().map_err(|_| StoreError::Corrupt("user id"))?,
        verifier_ciphertext: row.try_get("verifier_ciphertext")?,
        binding_hash: binding
            .try_into()
            .map_err(|_| StoreError::Corrupt("authorization binding hash"))?,
        expires_at: from_millis(row.try_get("expires_at")?)?,
        created_at: from_millis(row.try_get("created_at")?)?,
    }))
}

/// Forgets authorizations that were never completed in time.
pub async fn delete_expired_authorizations(
    conn: &mut AnyConnection,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM oauth_authorizations WHERE expires_at < $1")
        .bind(to_millis(now))
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
