//! The self-service throttling rules (SPEC §7, §16) as pure functions of
//! the recorded failures and "now".
//!
//! * The lock-out: `max_failures` failed attempts within `failure_window`
//!   lock a counter for `lockout` after the last of them.
//! * The ceiling: `max_failures` failed attempts within any 24 hours lock a
//!   counter until the oldest of them is a day old.
//! * Which applies to what ([`Throttle::limits`]): suspend and resume
//!   failures are counted apart. A resume is checked in full, per client
//!   address and per card number, with the lock-out; a suspend per client
//!   address with the lock-out, and per card number only with the ceiling,
//!   so that someone who knows a card number cannot keep its owner from
//!   suspending it, and a crowd of addresses still meets a limit.
//!
//! Attempts made while locked are not evaluated and so not recorded: the
//! lock ends on time whatever is tried meanwhile.

use time::{Duration, OffsetDateTime};

/// The subscriber's two actions, whose failures are counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardAction {
    Suspend,
    Resume,
}

impl CardAction {
    pub fn transition(self) -> super::Transition {
        match self {
            Self::Suspend => super::Transition::Suspend,
            Self::Resume => super::Transition::Resume,
        }
    }

    pub fn name(self) -> &'static str {
        self.transition().name()
    }
}

/// What a failed attempt is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureScope {
    /// The card number that was typed, whether or not such a card exists.
    Card,
    /// The client address the attempt came from.
    Client,
}

/// The window of the per-card suspend ceiling.
pub const CEILING_WINDOW: Duration = Duration::days(1);

/// Every rule of the page: the lock-out and the per-card suspend ceiling
/// (`[selfservice]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub lockout: LockoutPolicy,
    /// Wrong suspend pairs a card number takes in any [`CEILING_WINDOW`].
    pub suspend_card_ceiling: u32,
}

impl Throttle {
    /// The limits an attempt at `action` meets, each with what its failures
    /// are counted against (see the module's rules).
    pub fn limits(&self, action: CardAction) -> [(FailureScope, Limit); 2] {
        let lockout = Limit::Lockout(self.lockout);
        let card = match action {
            CardAction::Resume => lockout,
            CardAction::Suspend => Limit::Ceiling {
                max_failures: self.suspend_card_ceiling,
                window: CEILING_WINDOW,
            },
        };
        [(FailureScope::Card, card), (FailureScope::Client, lockout)]
    }

    /// Failures older than this can no longer lock anything at `now`, under
    /// any limit.
    pub fn horizon(&self, now: OffsetDateTime) -> OffsetDateTime {
        [CardAction::Suspend, CardAction::Resume]
            .into_iter()
            .flat_map(|action| self.limits(action))
            .map(|(_, limit)| limit.horizon(now))
            .min()
            .unwrap_or(now)
    }
}

/// One rule over one counter's failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Lockout(LockoutPolicy),
    Ceiling { max_failures: u32, window: Duration },
}

impl Limit {
    /// Failures older than this can no longer lock anything at `now`.
    pub fn horizon(&self, now: OffsetDateTime) -> OffsetDateTime {
        match self {
            Self::Lockout(policy) => policy.horizon(now),
            Self::Ceiling { window, .. } => now - *window,
        }
    }

    /// Until when the counter is locked at `now`, given its failures since
    /// [`Limit::horizon`] in ascending order; `None` when it is free.
    pub fn locked_until(
        &self,
        failures: &[OffsetDateTime],
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        match self {
            Self::Lockout(policy) => policy.locked_until(failures, now),
            Self::Ceiling {
                max_failures,
                window,
            } => {
                let n = usize::try_from(*max_failures).ok()?.max(1);
                let recent: Vec<&OffsetDateTime> =
                    failures.iter().filter(|at| **at > now - *window).collect();
                let oldest_that_counts = recent.len().checked_sub(n).map(|i| recent[i])?;
                Some(*oldest_that_counts + *window).filter(|until| *until > now)
            }
        }
    }
}

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

    fn throttle() -> Throttle {
        Throttle {
            lockout: policy(),
            suspend_card_ceiling: 100,
        }
    }

    fn limit(action: CardAction, scope: FailureScope) -> Limit {
        let limits = throttle().limits(action);
        limits
            .iter()
            .find(|(s, _)| *s == scope)
            .map(|(_, l)| *l)
            .expect("a limit for every scope")
    }

    #[test]
    fn resume_is_locked_per_card_and_per_client_suspend_per_client_and_by_the_ceiling() {
        let five = ago(&[5, 4, 3, 2, 1]);
        for scope in [FailureScope::Card, FailureScope::Client] {
            assert!(
                limit(CardAction::Resume, scope)
                    .locked_until(&five, NOW)
                    .is_some()
            );
        }
        assert!(
            limit(CardAction::Suspend, FailureScope::Client)
                .locked_until(&five, NOW)
                .is_some()
        );
        let card = limit(CardAction::Suspend, FailureScope::Card);
        assert_eq!(card.locked_until(&five, NOW), None);
        // A hundred within the day reach the ceiling until the oldest of them is a day old.
        let hundred: Vec<OffsetDateTime> = (1..=100)
            .rev()
            .map(|m| NOW - Duration::minutes(m))
            .collect();
        assert_eq!(
            card.locked_until(&hundred, NOW),
            Some(NOW - Duration::minutes(100) + Duration::days(1))
        );
        assert_eq!(card.locked_until(&hundred[1..], NOW), None);
        let a_day_later = NOW + Duration::days(1) - Duration::minutes(100);
        assert_eq!(card.locked_until(&hundred, a_day_later), None);
    }

    #[test]
    fn the_horizon_keeps_what_the_longest_rule_still_counts() {
        assert_eq!(throttle().horizon(NOW), NOW - Duration::days(1));
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
