//! The OCSP status decision ([RFC 6960 §2.2](https://www.rfc-editor.org/rfc/rfc6960#section-2.2))
//! and the freshness rule of the response cache: pure functions of stored
//! data and a time passed in.

use time::{Duration, OffsetDateTime};

use crate::domain::{CertStatus, CrlReason};

/// The status a SingleResponse states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SingleStatus {
    Good,
    /// `revoked` with the time the current status began; `reason` is absent
    /// for unspecified, as RFC 5280 §5.3.1 asks of reason codes.
    Revoked {
        time: OffsetDateTime,
        reason: Option<CrlReason>,
    },
    /// A serial this CA never issued.
    Unknown,
}

impl SingleStatus {
    /// The word used in metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Revoked { .. } => "revoked",
            Self::Unknown => "unknown",
        }
    }
}

/// What OCSP says about a certificate with this stored status (`None`: never
/// issued by us). A suspended certificate is `revoked` with reason
/// certificateHold (SPEC §3.1); an expired certificate keeps its last status.
pub fn decide(stored: Option<(CertStatus, OffsetDateTime)>) -> SingleStatus {
    match stored {
        None => SingleStatus::Unknown,
        Some((CertStatus::Good, _)) => SingleStatus::Good,
        Some((status, since)) => SingleStatus::Revoked {
            time: since,
            reason: status.crl_reason().filter(|r| *r != CrlReason::Unspecified),
        },
    }
}

/// Whether a response signed at `this_update` may still be served at `now`
/// without re-signing: more than half of its validity `max_age` remains.
/// Re-signing at half-life means a relying party never receives an answer
/// that expires before it can use it, and HTTP caches get at least half of
/// max_age (RFC 5019 §6.2).
pub fn still_fresh(this_update: OffsetDateTime, max_age: Duration, now: OffsetDateTime) -> bool {
    now >= this_update && now < this_update + max_age / 2
}

/// Whether the refresher should re-sign a response signed at
/// `this_update`: a quarter of its validity has passed. With a refresher
/// that looks every [`refresh_period`] (at most an eighth of `max_age`),
/// a response in demand is re-signed before half its validity, so requests
/// never wait for a signature because a response aged.
pub fn refresh_due(this_update: OffsetDateTime, max_age: Duration, now: OffsetDateTime) -> bool {
    now < this_update || now >= this_update + max_age / 4
}

/// How often the refresher looks for responses due: an eighth of their
/// validity, between 100 ms and one minute.
pub fn refresh_period(max_age: Duration) -> std::time::Duration {
    let eighth: Duration = max_age / 8;
    let period = eighth.clamp(Duration::milliseconds(100), Duration::minutes(1));
    std::time::Duration::try_from(period).unwrap_or(std::time::Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RevocationReason;
    use time::macros::datetime;

    const SINCE: OffsetDateTime = datetime!(2026-03-01 08:00 UTC);

    #[test]
    fn every_stored_status_has_its_answer() {
        assert_eq!(decide(None), SingleStatus::Unknown);
        assert_eq!(decide(Some((CertStatus::Good, SINCE))), SingleStatus::Good);
        assert_eq!(
            decide(Some((CertStatus::Suspended, SINCE))),
            SingleStatus::Revoked {
                time: SINCE,
                reason: Some(CrlReason::CertificateHold)
            }
        );
        for reason in RevocationReason::ALL {
            let expected = match reason {
                RevocationReason::Unspecified => None,
                other => Some(other.crl_reason()),
            };
            assert_eq!(
                decide(Some((CertStatus::Revoked(reason), SINCE))),
                SingleStatus::Revoked {
                    time: SINCE,
                    reason: expected
                }
            );
        }
    }

    #[test]
    fn a_response_is_fresh_for_the_first_half_of_its_validity() {
        let max_age = Duration::minutes(10);
        assert!(still_fresh(SINCE, max_age, SINCE));
        assert!(still_fresh(SINCE, max_age, SINCE + Duration::seconds(299)));
        assert!(!still_fresh(SINCE, max_age, SINCE + Duration::seconds(300)));
        // A clock that went backwards re-signs rather than serving from the future.
        assert!(!still_fresh(SINCE, max_age, SINCE - Duration::seconds(1)));
    }

    #[test]
    fn the_refresher_re_signs_from_a_quarter_of_the_validity_and_looks_eight_times_per_validity() {
        let max_age = Duration::minutes(10);
        assert!(!refresh_due(SINCE, max_age, SINCE));
        assert!(!refresh_due(SINCE, max_age, SINCE + Duration::seconds(149)));
        assert!(refresh_due(SINCE, max_age, SINCE + Duration::seconds(150)));
        assert!(refresh_due(SINCE, max_age, SINCE - Duration::seconds(1)));
        // Due at a quarter, looked at every eighth: re-signed by 3/8, before half.
        assert_eq!(
            refresh_period(Duration::minutes(4)),
            std::time::Duration::from_secs(30)
        );
        assert_eq!(
            refresh_period(Duration::seconds(1)),
            std::time::Duration::from_millis(125)
        );
        assert_eq!(
            refresh_period(Duration::milliseconds(200)),
            std::time::Duration::from_millis(100)
        );
        assert_eq!(
            refresh_period(Duration::days(7)),
            std::time::Duration::from_secs(60)
        );
    }
}
