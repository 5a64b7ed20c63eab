//! The certificate lifecycle of SPEC §3.1 as a pure state machine.
//!
//! good → suspended (certificateHold) → good (resume); good or suspended →
//! revoked(reason), which is terminal. Nothing changes on an expired
//! certificate. The caller supplies "now"; nothing here reads a clock.

use time::OffsetDateTime;

use super::reason::RevocationReason;
use super::status::{CertStatus, Channel};

/// A requested status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Suspend,
    Resume,
    Revoke(RevocationReason),
}

impl Transition {
    pub fn name(self) -> &'static str {
        match self {
            Self::Suspend => "suspend",
            Self::Resume => "resume",
            Self::Revoke(_) => "revoke",
        }
    }
}

/// Why a transition was refused. Each variant is a 409 in the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error(
        "the certificate expired at {not_after}; an expired certificate's status cannot change"
    )]
    Expired { not_after: OffsetDateTime },
    #[error("the certificate is already suspended")]
    AlreadySuspended,
    #[error("only a suspended certificate can be resumed; this one is good")]
    NotSuspended,
    #[error("the certificate is revoked, which is permanent; a new card must be issued")]
    Revoked,
}

/// Whether a suspension made through `suspended_by` may be lifted through
/// `lifted_by` (SPEC §16, "Who may lift a suspension"): the subscriber's
/// page lifts only the subscriber's own suspensions, because a thief who
/// holds the card knows what the page asks for; officers lift any.
pub fn may_lift(suspended_by: Channel, lifted_by: Channel) -> bool {
    lifted_by != Channel::SelfService || suspended_by == Channel::SelfService
}

/// True once `now` is past notAfter (the validity period includes notAfter,
/// RFC 5280 §4.1.2.5).
pub fn is_expired(not_after: OffsetDateTime, now: OffsetDateTime) -> bool {
    now > not_after
}

/// The status that `transition` leads to from `current`, or why it may not
/// happen. Pure: the caller records the change and its time.
pub fn apply(
    current: CertStatus,
    not_after: OffsetDateTime,
    transition: Transition,
    now: OffsetDateTime,
) -> Result<CertStatus, TransitionError> {
    if is_expired(not_after, now) {
        return Err(TransitionError::Expired { not_after });
    }
    match (current, transition) {
        (CertStatus::Revoked(_), _) => Err(TransitionError::Revoked),
        (CertStatus::Good, Transition::Suspend) => Ok(CertStatus::Suspended),
        (CertStatus::Suspended, Transition::Suspend) => Err(TransitionError::AlreadySuspended),
        (CertStatus::Suspended, Transition::Resume) => Ok(CertStatus::Good),
        (CertStatus::Good, Transition::Resume) => Err(TransitionError::NotSuspended),
        (_, Transition::Revoke(reason)) => Ok(CertStatus::Revoked(reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_service_lifts_only_its_own_suspensions_and_officers_lift_any() {
        use Channel::*;
        for by in [Ra, Emergency, Cli] {
            assert!(!may_lift(by, SelfService), "{by}");
            for officer in [Ra, Emergency, Cli] {
                assert!(may_lift(by, officer));
                assert!(may_lift(SelfService, officer));
            }
        }
        assert!(may_lift(SelfService, SelfService));
    }
    use time::Duration;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn future() -> OffsetDateTime {
        NOW + Duration::days(365)
    }

    #[test]
    fn suspend_resume_round_trip() {
        let held = apply(CertStatus::Good, future(), Transition::Suspend, NOW).unwrap();
        assert_eq!(held, CertStatus::Suspended);
        assert_eq!(
            apply(held, future(), Transition::Resume, NOW),
            Ok(CertStatus::Good)
        );
    }

    #[test]
    fn revoke_from_good_and_suspended_is_terminal() {
        let revoke = Transition::Revoke(RevocationReason::KeyCompromise);
        for from in [CertStatus::Good, CertStatus::Suspended] {
            let revoked = apply(from, future(), revoke, NOW).unwrap();
            assert_eq!(
                revoked,
                CertStatus::Revoked(RevocationReason::KeyCompromise)
            );
            for next in [Transition::Suspend, Transition::Resume, revoke] {
                assert_eq!(
                    apply(revoked, future(), next, NOW),
                    Err(TransitionError::Revoked)
                );
            }
        }
    }

    #[test]
    fn refuses_double_suspend_and_resume_of_good() {
        assert_eq!(
            apply(CertStatus::Suspended, future(), Transition::Suspend, NOW),
            Err(TransitionError::AlreadySuspended)
        );
        assert_eq!(
            apply(CertStatus::Good, future(), Transition::Resume, NOW),
            Err(TransitionError::NotSuspended)
        );
    }

    #[test]
    fn nothing_changes_after_expiry_but_not_after_itself_is_valid() {
        let not_after = NOW;
        assert!(apply(CertStatus::Good, not_after, Transition::Suspend, NOW).is_ok());
        let later = NOW + Duration::seconds(1);
        for t in [
            Transition::Suspend,
            Transition::Resume,
            Transition::Revoke(RevocationReason::Superseded),
        ] {
            assert_eq!(
                apply(CertStatus::Suspended, not_after, t, later),
                Err(TransitionError::Expired { not_after })
            );
        }
    }
}
