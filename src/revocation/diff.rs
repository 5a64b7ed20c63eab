//! The delta CRL diff ([RFC 5280 §5.2.4](https://www.rfc-editor.org/rfc/rfc5280#section-5.2.4)):
//! what a relying party must apply to its base CRL to know the current state.

use super::{CrlEntry, StatusChange};
use crate::domain::CrlReason;

/// The entries of a delta CRL: every certificate whose status now differs
/// from the base. Newly listed (or listed with a new reason) certificates
/// carry their current reason; certificates the base listed and that are
/// good again carry removeFromCRL (§5.3.1). A suspension and a resumption
/// both after the base cancel out: the base never listed the certificate.
pub fn delta_entries(changes: &[StatusChange]) -> Vec<CrlEntry> {
    changes
        .iter()
        .filter(|c| c.current != c.base)
        .filter_map(|c| {
            let reason = match (c.current.crl_reason(), c.base.crl_reason()) {
                (Some(now), _) => now,
                (None, Some(_)) => CrlReason::RemoveFromCrl,
                (None, None) => return None,
            };
            Some(CrlEntry {
                serial: c.serial.clone(),
                revocation_date: c.since,
                reason,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CertStatus, RevocationReason, Serial};
    use time::macros::datetime;

    fn change(base: CertStatus, current: CertStatus) -> StatusChange {
        StatusChange {
            serial: Serial::from_magnitude(&[1]).unwrap(),
            base,
            current,
            since: datetime!(2026-01-01 0:00 UTC),
        }
    }

    fn reasons(base: CertStatus, current: CertStatus) -> Vec<CrlReason> {
        delta_entries(&[change(base, current)])
            .into_iter()
            .map(|e| e.reason)
            .collect()
    }

    #[test]
    fn newly_suspended_is_on_hold() {
        assert_eq!(
            reasons(CertStatus::Good, CertStatus::Suspended),
            [CrlReason::CertificateHold]
        );
    }

    #[test]
    fn resumed_since_base_is_removed() {
        assert_eq!(
            reasons(CertStatus::Suspended, CertStatus::Good),
            [CrlReason::RemoveFromCrl]
        );
    }

    #[test]
    fn hold_to_revoked_carries_the_new_reason() {
        let revoked = CertStatus::Revoked(RevocationReason::KeyCompromise);
        assert_eq!(
            reasons(CertStatus::Suspended, revoked),
            [CrlReason::KeyCompromise]
        );
    }

    #[test]
    fn unchanged_and_cancelled_changes_are_not_listed() {
        assert!(reasons(CertStatus::Good, CertStatus::Good).is_empty());
        assert!(reasons(CertStatus::Suspended, CertStatus::Suspended).is_empty());
    }
}
