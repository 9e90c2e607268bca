//! An organization's time zone: schedules fire in it and pages show times in it. A thin
//! wrapper over chrono-tz (the zone database the scheduler already reads), so callers convert
//! `time` values without knowing the zone library.

use crate::{AppError, Hub};
use chrono::{Offset as _, TimeZone as _};
use lockstep_domain::OrganizationId;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// An IANA time zone (`Europe/Berlin`, `UTC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(chrono_tz::Tz);

impl TimeZone {
    pub const UTC: TimeZone = TimeZone(chrono_tz::Tz::UTC);

    /// Reads an IANA time zone name.
    pub fn parse(name: &str) -> Result<TimeZone, AppError> {
        name.parse().map(TimeZone).map_err(|_| AppError::Invalid {
            field: "time_zone",
            reason: "must be an IANA time zone name such as Europe/Berlin or UTC".to_owned(),
        })
    }

    /// The zone's IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    pub(crate) fn tz(&self) -> chrono_tz::Tz {
        self.0
    }

    /// The zone's offset from UTC at the instant `t`.
    fn offset_at(&self, t: OffsetDateTime) -> UtcOffset {
        chrono::DateTime::from_timestamp(t.unix_timestamp(), 0)
            .map(|utc| self.0.offset_from_utc_datetime(&utc.naive_utc()).fix())
            .and_then(|fixed| UtcOffset::from_whole_seconds(fixed.local_minus_utc()).ok())
            .unwrap_or(UtcOffset::UTC)
    }

    /// The instant `t` with this zone's offset (its wall-clock time here).
    pub fn local(&self, t: OffsetDateTime) -> OffsetDateTime {
        t.to_offset(self.offset_at(t))
    }

    /// The instant that a wall-clock time of this zone names: the earlier one when the clocks
    /// go back, `None` for a time skipped when they go forward.
    pub fn from_local(&self, local: PrimitiveDateTime) -> Option<OffsetDateTime> {
        let naive = chrono::NaiveDate::from_ymd_opt(
            local.year(),
            u32::from(u8::from(local.month())),
            u32::from(local.day()),
        )?
        .and_hms_opt(
            u32::from(local.hour()),
            u32::from(local.minute()),
            u32::from(local.second()),
        )?;
        let at = self.0.from_local_datetime(&naive).earliest()?;
        OffsetDateTime::from_unix_timestamp(at.timestamp()).ok()
    }
}

impl Hub {
    /// The organization's time zone name.
    pub(crate) async fn time_zone(&self, org: OrganizationId) -> Result<String, AppError> {
        let mut conn = self.store.read().await?;
        Ok(lockstep_storage::settings::get(&mut conn, org)
            .await?
            .time_zone)
    }

    /// The organization's time zone; a stored name that no longer reads (the zone database
    /// dropped it) is UTC, so pages still show.
    pub(crate) async fn organization_time_zone(
        &self,
        org: OrganizationId,
    ) -> Result<TimeZone, AppError> {
        let name = self.time_zone(org).await?;
        Ok(TimeZone::parse(&name).unwrap_or_else(|_| {
            tracing::warn!(organization = %org, "the stored time zone is unknown; using UTC");
            TimeZone::UTC
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times_convert_to_and_from_a_zones_wall_clock() {
        let berlin = TimeZone::parse("Europe/Berlin").unwrap();
        assert_eq!(berlin.name(), "Europe/Berlin");
        let winter = berlin.local(datetime!(2026-12-06 21:04 UTC));
        assert_eq!((winter.hour(), winter.offset().whole_hours()), (22, 1));
        let summer = berlin.local(datetime!(2026-07-01 12:00 UTC));
        assert_eq!((summer.hour(), summer.offset().whole_hours()), (14, 2));
        assert_eq!(
            berlin.from_local(datetime!(2026-12-06 22:04)),
            Some(datetime!(2026-12-06 21:04 UTC))
        );
        // 02:30 on the last Sunday of March does not exist in Berlin.
        assert_eq!(berlin.from_local(datetime!(2026-03-29 02:30)), None);
        assert_eq!(
            TimeZone::UTC.local(datetime!(2026-12-06 21:04 UTC)).hour(),
            21
        );
        assert!(TimeZone::parse("Mars/Olympus_Mons").is_err());
    }
}
