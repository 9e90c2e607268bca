//! Organization settings an Administrator changes.

use crate::{StoreError, to_millis};
use lockstep_domain::OrganizationId;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrganizationSettings {
    pub require_totp: bool,
    /// How many audit events each object keeps (1..=1000).
    pub audit_depth: u32,
    /// Whether events also go to the long-term ledger.
    pub long_term_audit: bool,
    /// IANA time zone name (`Europe/Berlin`); schedules are evaluated in it.
    pub time_zone: String,
    /// Data sets untouched this many days (1..=90) are deleted, and so are those of members who
    /// have not signed in for as long.
    pub dataset_retention_days: u32,
    /// Days (0..=30) between an Administrator's request to delete the organization and the
    /// deletion; 0 deletes at once.
    pub deletion_grace_days: u32,
}

impl Default for OrganizationSettings {
    fn default() -> Self {
        OrganizationSettings {
            require_totp: false,
            audit_depth: 10,
            long_term_audit: true,
            time_zone: "UTC".to_owned(),
            dataset_retention_days: 5,
            deletion_grace_days: 7,
        }
    }
}

/// The organization's settings (defaults when never set).
pub async fn get(
    conn: &mut AnyConnection,
    org: OrganizationId,
) -> Result<OrganizationSettings, StoreError> {
    let row = sqlx::query(
        "SELECT require_totp, audit_depth, long_term_audit, time_zone, dataset_retention_days, \
         deletion_grace_days FROM organization_settings \
         WHERE organization_id = $1",
    )
    .bind(org.to_string())
    .fetch_optional(conn)
    .await?;
    match row {
        None => Ok(OrganizationSettings::default()),
        Some(row) => Ok(OrganizationSettings {
            require_totp: row.try_get::<i64, _>("require_totp")? != 0,
            audit_depth: u32::try_from(row.try_get::<i64, _>("audit_depth")?)
                .map_err(|_| StoreError::Corrupt("audit depth"))?,
            long_term_audit: row.try_get::<i64, _>("long_term_audit")? != 0,
            time_zone: row.try_get("time_zone")?,
            dataset_retention_days: u32::try_from(row.try_get::<i64, _>("dataset_retention_days")?)
                .map_err(|_| StoreError::Corrupt("retention days"))?,
            deletion_grace_days: u32::try_from(row.try_get::<i64, _>("deletion_grace_days")?)
                .map_err(|_| StoreError::Corrupt("deletion grace days"))?,
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
        "INSERT INTO organization_settings (organization_id, require_totp, audit_depth, \
         long_term_audit, time_zone, updated_at, dataset_retention_days, deletion_grace_days) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (organization_id) DO UPDATE SET require_totp = excluded.require_totp, \
         audit_depth = excluded.audit_depth, long_term_audit = excluded.long_term_audit, \
         time_zone = excluded.time_zone, updated_at = excluded.updated_at, \
         dataset_retention_days = excluded.dataset_retention_days, \
         deletion_grace_days = excluded.deletion_grace_days",
    )
    .bind(org.to_string())
    .bind(i64::from(settings.require_totp))
    .bind(i64::from(settings.audit_depth))
    .bind(i64::from(settings.long_term_audit))
    .bind(settings.time_zone.clone())
    .bind(to_millis(at))
    .bind(i64::from(settings.dataset_retention_days))
    .bind(i64::from(settings.deletion_grace_days))
    .execute(conn)
    .await?;
    Ok(())
}
