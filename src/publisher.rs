//! Scheduled publication (SPEC §6): a delta CRL every
//! `publish.delta_crl_interval`, a full CRL (followed by its delta) every
//! `publish.full_crl_interval`. A read-side scheduler: it reads where
//! publication stands and asks the authority to publish.
//!
//! The schedule is derived from the last CRLs in the store, never from
//! process memory, so a restart neither skips nor doubles a publication and
//! a deadline missed while the server was down is met at once on start.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use crate::authority::{Authority, AuthorityError};
use crate::revocation::{CrlKind, CrlSummary};

/// What the publisher should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Publish this kind now.
    Now(CrlKind),
    /// Nothing is due before this time.
    At(OffsetDateTime),
}

/// How long before nextUpdate a CRL is replaced: publishing takes time, and
/// the served CRL must never be past its nextUpdate (a tenth of the
/// interval, at most 30 s).
pub fn lead_time(interval: Duration) -> Duration {
    (interval / 10i32).min(Duration::seconds(30))
}

/// When `crl`, published every `interval`, is to be replaced: `lead_time`
/// before its nextUpdate, but not before the next whole second after its
/// thisUpdate. CRL times are whole seconds (thisUpdate is the truncated
/// clock), so a replacement within the same second would carry the same
/// nextUpdate and be due again at once; with a 1 s interval this means the
/// replacement comes at nextUpdate itself, not before.
fn replacement_due(crl: &CrlSummary, interval: Duration) -> OffsetDateTime {
    (crl.next_update - lead_time(interval)).max(crl.this_update + Duration::seconds(1))
}

/// The next publication, from the newest full and delta CRLs (pure). `now`
/// is the precise time, not truncated to the second: a deadline a fraction
/// of a second before a nextUpdate must be met then, not at the next second.
pub fn next_due(
    last_full: Option<&CrlSummary>,
    last_delta: Option<&CrlSummary>,
    full_interval: Duration,
    delta_interval: Duration,
    now: OffsetDateTime,
) -> Due {
    let Some(full) = last_full else {
        return Due::Now(CrlKind::Full);
    };
    let full_due = replacement_due(full, full_interval);
    if now >= full_due {
        return Due::Now(CrlKind::Full);
    }
    // A delta older than the newest full is not its delta: publish one now.
    let delta_due = match last_delta {
        Some(delta) if delta.base_number == Some(full.number) => {
            replacement_due(delta, delta_interval)
        }
        _ => return Due::Now(CrlKind::Delta),
    };
    if now >= delta_due {
        Due::Now(CrlKind::Delta)
    } else {
        Due::At(delta_due.min(full_due))
    }
}

/// The publisher loop of `eidca serve`: runs until the task is dropped.
pub async fn run(authority: Arc<Authority>) {
    loop {
        let due = {
            let authority = authority.clone();
            tokio::task::spawn_blocking(move || -> Result<Due, AuthorityError> {
                let latest = authority.latest_crls()?;
                let config = authority.config();
                Ok(next_due(
                    latest.full.as_ref(),
                    latest.delta.as_ref(),
                    config.full_crl_interval,
                    config.delta_crl_interval,
                    authority.precise_now(),
                ))
            })
            .await
        };
        let wait = match due {
            Ok(Ok(Due::Now(kind))) => {
                let authority = authority.clone();
                let started = std::time::Instant::now();
                let published =
                    tokio::task::spawn_blocking(move || authority.publish(kind, "publisher")).await;
                match published {
                    Ok(Ok(summary)) => {
                        tracing::info!(
                            number = summary.number,
                            kind = kind.name(),
                            entries = summary.entries,
                            took_ms = started.elapsed().as_millis() as u64,
                            "published CRL"
                        );
                        continue;
                    }
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, kind = kind.name(), "CRL publication failed; retrying")
                    }
                    Err(e) => tracing::error!(error = %e, "CRL publication task failed; retrying"),
                }
                std::time::Duration::from_secs(1)
            }
            Ok(Ok(Due::At(at))) => {
                // From the precise clock: the truncated one would wake up to
                // a second late, past a short interval's nextUpdate.
                let seconds = (at - authority.precise_now())
                    .as_seconds_f64()
                    .clamp(0.001, 3600.0);
                std::time::Duration::from_secs_f64(seconds)
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read the publication schedule; retrying");
                std::time::Duration::from_secs(1)
            }
            Err(e) => {
                tracing::error!(error = %e, "schedule task failed; retrying");
                std::time::Duration::from_secs(1)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
    const FULL: Duration = Duration::hours(24);
    const DELTA: Duration = Duration::minutes(15);

    fn crl(
        number: u64,
        kind: CrlKind,
        base: Option<u64>,
        this_update: OffsetDateTime,
    ) -> CrlSummary {
        let interval = if kind == CrlKind::Full { FULL } else { DELTA };
        CrlSummary {
            number,
            kind,
            base_number: base,
            this_update,
            next_update: this_update + interval,
            covers_seq: 0,
            entries: 0,
        }
    }

    #[test]
    fn empty_store_publishes_a_full_crl_at_once() {
        assert_eq!(
            next_due(None, None, FULL, DELTA, T0),
            Due::Now(CrlKind::Full)
        );
    }

    #[test]
    fn a_full_without_its_delta_gets_one_at_once() {
        let full = crl(5, CrlKind::Full, None, T0);
        let old_delta = crl(4, CrlKind::Delta, Some(3), T0);
        assert_eq!(
            next_due(Some(&full), Some(&old_delta), FULL, DELTA, T0),
            Due::Now(CrlKind::Delta)
        );
        assert_eq!(
            next_due(Some(&full), None, FULL, DELTA, T0),
            Due::Now(CrlKind::Delta)
        );
    }

    #[test]
    fn the_delta_is_replaced_just_before_its_next_update() {
        let full = crl(1, CrlKind::Full, None, T0);
        let delta = crl(2, CrlKind::Delta, Some(1), T0);
        let due = T0 + DELTA - Duration::seconds(30);
        assert_eq!(
            next_due(Some(&full), Some(&delta), FULL, DELTA, T0),
            Due::At(due)
        );
        assert_eq!(
            next_due(Some(&full), Some(&delta), FULL, DELTA, due),
            Due::Now(CrlKind::Delta)
        );
    }

    #[test]
    fn a_deadline_missed_while_down_publishes_at_once_and_full_wins() {
        let full = crl(1, CrlKind::Full, None, T0);
        let delta = crl(2, CrlKind::Delta, Some(1), T0);
        let later = T0 + Duration::days(3);
        assert_eq!(
            next_due(Some(&full), Some(&delta), FULL, DELTA, later),
            Due::Now(CrlKind::Full)
        );
    }

    #[test]
    fn a_deadline_between_two_seconds_is_met_at_that_fraction() {
        let delta_interval = Duration::seconds(2);
        let full = crl(1, CrlKind::Full, None, T0);
        let mut delta = crl(2, CrlKind::Delta, Some(1), T0);
        delta.next_update = T0 + delta_interval;
        let due = T0 + Duration::milliseconds(1800);
        assert_eq!(
            next_due(Some(&full), Some(&delta), FULL, delta_interval, T0),
            Due::At(due)
        );
        assert_eq!(
            next_due(Some(&full), Some(&delta), FULL, delta_interval, due),
            Due::Now(CrlKind::Delta)
        );
    }

    #[test]
    fn a_one_second_interval_is_not_republished_within_its_second() {
        let one = Duration::seconds(1);
        let full = crl(1, CrlKind::Full, None, T0);
        let mut delta = crl(2, CrlKind::Delta, Some(1), T0);
        delta.next_update = T0 + one;
        let before = T0 + Duration::milliseconds(950);
        assert_eq!(
            next_due(Some(&full), Some(&delta), FULL, one, before),
            Due::At(T0 + one)
        );
    }

    #[test]
    fn short_intervals_keep_a_proportional_lead() {
        assert_eq!(lead_time(Duration::seconds(2)), Duration::milliseconds(200));
        assert_eq!(lead_time(Duration::hours(24)), Duration::seconds(30));
    }
}
