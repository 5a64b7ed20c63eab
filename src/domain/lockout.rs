//! The lock-out rule as a pure function of the recorded failures and "now":
//! `max_failures` failed attempts within `failure_window` lock the card
//! number (or the client address) for `lockout` after the last of them.
//!
//! Attempts made while locked are not evaluated and so not recorded: the
//! lock ends on time whatever is tried meanwhile.

use time::{Duration, OffsetDateTime};

/// The throttling parameters (`[selfservice]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub max_failures: u32,
    pub failure_window: Duration,
    pub lockout: Duration,
}

impl LockoutPolicy {
    /// Failures older than this can no longer lock anything at `now`.
    pub fn horizon(&self, now: OffsetDateTime) -> OffsetDateTime {
        now - self.failure_window - self.lockout
    }

    /// Until when the key is locked at `now`, given its failures since
    /// [`LockoutPolicy::horizon`] in ascending order; `None` when it is free.
    pub fn locked_until(
        &self,
        failures: &[OffsetDateTime],
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let n = usize::try_from(self.max_failures).ok()?.max(1);
        failures
            .windows(n)
            .filter(|run| match (run.first(), run.last()) {
                (Some(first), Some(last)) => *last - *first < self.failure_window,
                _ => false,
            })
            .filter_map(|run| run.last().map(|last| *last + self.lockout))
            .max()
            .filter(|until| *until > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn policy() -> LockoutPolicy {
        LockoutPolicy {
            max_failures: 5,
            failure_window: Duration::minutes(15),
            lockout: Duration::minutes(15),
        }
    }

    fn ago(minutes: &[i64]) -> Vec<OffsetDateTime> {
        minutes
            .iter()
            .map(|m| NOW - Duration::minutes(*m))
            .collect()
    }

    #[test]
    fn four_failures_do_not_lock() {
        assert_eq!(policy().locked_until(&ago(&[4, 3, 2, 1]), NOW), None);
    }

    #[test]
    fn five_failures_within_the_window_lock_for_the_lockout_after_the_last() {
        let until = policy().locked_until(&ago(&[5, 4, 3, 2, 1]), NOW);
        assert_eq!(
            until,
            Some(NOW - Duration::minutes(1) + Duration::minutes(15))
        );
    }

    #[test]
    fn five_failures_spread_over_more_than_the_window_do_not_lock() {
        assert_eq!(policy().locked_until(&ago(&[20, 12, 8, 4, 1]), NOW), None);
    }

    #[test]
    fn the_lock_ends_on_time() {
        assert_eq!(
            policy().locked_until(&ago(&[29, 28, 27, 26, 25]), NOW),
            None
        );
        assert!(
            policy()
                .locked_until(&ago(&[28, 27, 26, 25, 14]), NOW)
                .is_some()
        );
    }

    #[test]
    fn a_single_failure_locks_when_so_configured() {
        let strict = LockoutPolicy {
            max_failures: 1,
            ..policy()
        };
        assert_eq!(
            strict.locked_until(&ago(&[1]), NOW),
            Some(NOW + Duration::minutes(14))
        );
    }
}
