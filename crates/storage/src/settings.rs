//! Organization settings an Administrator changes.

use crate::{StoreError, to_millis};
use lockstep_domain::OrganizationId;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OrganizationSettings {
    pub require_totp: bool,
}

/// The organization's settings (defaults when never set).
pub async fn get(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<OrganizationSettings, StoreError> {
    let row =
        sqlx::query("SELECT require_totp FROM organization_settings WHERE organization_id = $1")
            .bind(org.to_string())
            .fetch_optional(conn)
            .await?;
    match row {
        None => Ok(OrganizationSettings::default()),
        Some(row) => Ok(OrganizationSettings {
            require_totp: row.try_get::<i64, _>("require_totp")? != 0,
        }),
    }
}

pub async fn put(
    conn: &mut AnyConnection,
    org: OrganizationId,
    settings: OrganizationSettings,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO organization_settings (organization_id, require_totp, updated_at) \
         VALUES ($1, $2, $3) ON CONFLICT (organization_id) DO UPDATE \
         SET require_totp = excluded.require_totp, updated_at = excluded.updated_at",
    )
    .bind(org.to_string())
    .bind(i64::from(settings.require_totp))
    .bind(to_millis(at))
    .execute(conn)
    .await?;
    Ok(())
}
