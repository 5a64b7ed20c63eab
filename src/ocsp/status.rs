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
}
