//! Session lifetime: a pure policy combining an idle timeout with an absolute maximum lifetime.

use time::{Duration, OffsetDateTime};

/// How long a session lives without activity, and at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused this long expires.
    pub idle_timeout: Duration,
    /// A session expires this long after it was created, however active.
    pub max_lifetime: Duration,
}

impl Default for SessionPolicy {
    /// 30 minutes idle, 12 hours at most.
    fn default() -> Self {
        SessionPolicy {
            idle_timeout: Duration::minutes(30),
            max_lifetime: Duration::hours(12),
        }
    }
}

impl SessionPolicy {
    /// A session's last activity is written at most this often (a write per request would
    /// serialize every request on the store), so it may lag by up to this much.
    pub const ACTIVITY_INTERVAL: Duration = Duration::seconds(30);
    /// The shortest idle timeout: twice [`Self::ACTIVITY_INTERVAL`], so a member active more
    /// often than every half idle timeout is never signed out for the lag. (At 30 s or less a
    /// session in use expires between two recorded activities.)
    pub const MIN_IDLE_TIMEOUT: Duration = Duration::seconds(60);

    /// Whether the activity seen at `now` should be written (the last written is `last_seen_at`).
    pub fn activity_due(&self, last_seen_at: OffsetDateTime, now: OffsetDateTime) -> bool {
        now - last_seen_at > Self::ACTIVITY_INTERVAL
    }

    /// When the session expires: `min(last_seen_at + idle_timeout, created_at + max_lifetime)`.
    pub fn expires_at(
        &self,
        created_at: OffsetDateTime,
        last_seen_at: OffsetDateTime,
    ) -> OffsetDateTime {
        let idle = last_seen_at.saturating_add(self.idle_timeout);
        let absolute = created_at.saturating_add(self.max_lifetime);
        idle.min(absolute)
    }

    /// Whether the session is still valid at `now` (strictly before it expires).
    pub fn is_valid(
        &self,
        created_at: OffsetDateTime,
        last_seen_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> bool {
        now < self.expires_at(created_at, last_seen_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn at_the_shortest_idle_timeout_a_session_used_every_half_timeout_lives() {
        let policy = SessionPolicy {
            idle_timeout: SessionPolicy::MIN_IDLE_TIMEOUT,
            max_lifetime: Duration::hours(1),
        };
        let created = datetime!(2026-11-22 09:00 UTC);
        let mut last_seen = created;
        let mut now = created;
        for _ in 0..100 {
            now += policy.idle_timeout / 2 - Duration::milliseconds(1);
            assert!(policy.is_valid(created, last_seen, now), "expired at {now}");
            if policy.activity_due(last_seen, now) {
                last_seen = now;
            }
        }
    }

    #[test]
    fn idle_timeout_applies_early_in_a_session() {
        let policy = SessionPolicy::default();
        let created = datetime!(2026-11-22 08:00 UTC);
        let seen = datetime!(2026-11-22 09:00 UTC);
        assert_eq!(
            policy.expires_at(created, seen),
            datetime!(2026-11-22 09:30 UTC)
        );
        assert!(policy.is_valid(created, seen, datetime!(2026-11-22 09:29:59 UTC)));
        assert!(!policy.is_valid(created, seen, datetime!(2026-11-22 09:30 UTC)));
    }

    #[test]
    fn max_lifetime_caps_an_active_session() {
        let policy = SessionPolicy::default();
        let created = datetime!(2026-11-22 08:00 UTC);
        let seen = datetime!(2026-11-22 19:50 UTC);
        assert_eq!(
            policy.expires_at(created, seen),
            datetime!(2026-11-22 20:00 UTC)
        );
        assert!(policy.is_valid(created, seen, datetime!(2026-11-22 19:59 UTC)));
        assert!(!policy.is_valid(created, seen, datetime!(2026-11-22 20:00 UTC)));
        assert!(!policy.is_valid(created, seen, datetime!(2026-11-22 20:10 UTC)));
    }

    #[test]
    fn custom_policy() {
        let policy = SessionPolicy {
            idle_timeout: Duration::minutes(5),
            max_lifetime: Duration::minutes(60),
        };
        let created = datetime!(2026-11-22 08:00 UTC);
        assert_eq!(
            policy.expires_at(created, created),
            datetime!(2026-11-22 08:05 UTC)
        );
        let seen = datetime!(2026-11-22 08:58 UTC);
        assert_eq!(
            policy.expires_at(created, seen),
            datetime!(2026-11-22 09:00 UTC)
        );
    }
}
