//! Account lockout after repeated failed logins: a pure policy over a counter the caller stores.
//!
//! The store keeps a [`LoginFailures`] per account; the login use case asks [`LockoutPolicy::is_locked`]
//! before checking the password, and stores [`LockoutPolicy::after_failure`] or
//! [`LockoutPolicy::after_success`] afterwards. Time is passed in.

use time::{Duration, OffsetDateTime};

/// How many failures lock an account, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failed attempts in a row that lock the account (a value of 0 behaves like 1).
    pub max_failures: u32,
    /// How long the account stays locked.
    pub lock_for: Duration,
}

impl Default for LockoutPolicy {
    /// 5 failures lock the account for 15 minutes.
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            lock_for: Duration::minutes(15),
        }
    }
}

/// An account's failed-login state, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginFailures {
    /// Failures since the last success or lock.
    pub count: u32,
    /// The account is locked until this instant (exclusive).
    pub locked_until: Option<OffsetDateTime>,
}

impl LockoutPolicy {
    /// Whether the account is locked at `now`.
    pub fn is_locked(&self, f: &LoginFailures, now: OffsetDateTime) -> bool {
        f.locked_until.is_some_and(|until| now < until)
    }

    /// The state after a failed attempt at `now`: one more failure; on reaching `max_failures` the
    /// account is locked until `now + lock_for` and the count restarts at 0. A failure while locked
    /// changes nothing (the lock is not extended).
    pub fn after_failure(&self, f: LoginFailures, now: OffsetDateTime) -> LoginFailures {
        if self.is_locked(&f, now) {
            return f;
        }
        let count = f.count.saturating_add(1);
        if count >= self.max_failures {
            LoginFailures {
                count: 0,
                locked_until: Some(now.saturating_add(self.lock_for)),
            }
        } else {
            LoginFailures {
                count,
                locked_until: None,
            }
        }
    }

    /// The state after a successful login: no failures, no lock.
    pub fn after_success(&self) -> LoginFailures {
        LoginFailures::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn five_failures_lock_for_fifteen_minutes() {
        let policy = LockoutPolicy::default();
        let t0 = datetime!(2026-11-22 10:00 UTC);
        let mut f = LoginFailures::default();
        for i in 1..=4 {
            f = policy.after_failure(f, t0);
            assert_eq!(
                f,
                LoginFailures {
                    count: i,
                    locked_until: None
                }
            );
            assert!(!policy.is_locked(&f, t0));
        }
        f = policy.after_failure(f, t0);
        let until = datetime!(2026-11-22 10:15 UTC);
        assert_eq!(
            f,
            LoginFailures {
                count: 0,
                locked_until: Some(until)
            }
        );
        assert!(policy.is_locked(&f, t0));
        assert!(policy.is_locked(&f, datetime!(2026-11-22 10:14:59.999 UTC)));
        assert!(!policy.is_locked(&f, until));
    }

    #[test]
    fn failures_while_locked_change_nothing() {
        let policy = LockoutPolicy::default();
        let locked = LoginFailures {
            count: 0,
            locked_until: Some(datetime!(2026-11-22 10:15 UTC)),
        };
        let during = datetime!(2026-11-22 10:10 UTC);
        assert_eq!(policy.after_failure(locked, during), locked);
    }

    #[test]
    fn after_the_lock_expires_counting_starts_again() {
        let policy = LockoutPolicy::default();
        let locked = LoginFailures {
            count: 0,
            locked_until: Some(datetime!(2026-11-22 10:15 UTC)),
        };
        let later = datetime!(2026-11-22 10:20 UTC);
        let f = policy.after_failure(locked, later);
        assert_eq!(
            f,
            LoginFailures {
                count: 1,
                locked_until: None
            }
        );
        assert!(!policy.is_locked(&f, later));
    }

    #[test]
    fn success_resets_and_custom_policies_apply() {
        let policy = LockoutPolicy {
            max_failures: 2,
            lock_for: Duration::hours(1),
        };
        let t0 = datetime!(2026-11-22 10:00 UTC);
        let f = policy.after_failure(LoginFailures::default(), t0);
        assert_eq!(policy.after_success(), LoginFailures::default());
        let f = policy.after_failure(f, t0);
        assert_eq!(f.locked_until, Some(datetime!(2026-11-22 11:00 UTC)));
        // 0 behaves like 1: the first failure locks.
        let strict = LockoutPolicy {
            max_failures: 0,
            ..policy
        };
        assert!(strict.is_locked(&strict.after_failure(LoginFailures::default(), t0), t0));
    }
}
