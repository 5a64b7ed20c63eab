//! The certificate record of SPEC §7, as every caller (API, CLI,
//! self-service) sees a certificate, and who asked for a change.

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::AuthorityError;
use crate::domain::Channel;
use crate::domain::lifecycle;
use crate::store::certificates::CertificateRow;

/// The certificate record of SPEC §7.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CertificateRecord {
    /// Lowercase hex, no leading zero bytes.
    pub serial: String,
    /// `good`, `suspended` or `revoked`.
    pub status: &'static str,
    /// Past notAfter (derived, never stored).
    pub expired: bool,
    /// Null when good, `certificateHold` when suspended, the RFC 5280 reason when revoked.
    pub revocation_reason: Option<&'static str>,
    /// RFC 3339 UTC: when the current status began.
    pub status_since: String,
    pub subscriber_code: String,
    pub card_number: String,
    pub profile: String,
    /// RFC 3339 UTC.
    pub not_before: String,
    /// RFC 3339 UTC.
    pub not_after: String,
    /// The certificate in PEM.
    pub certificate: String,
}

/// RFC 3339 in UTC with a `Z`, whole seconds; an error for a time RFC 3339
/// cannot express (outside years 0–9999).
pub fn rfc3339(t: OffsetDateTime) -> Result<String, AuthorityError> {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|e| AuthorityError::Render {
            what: "a time as RFC 3339",
            why: e.to_string(),
        })
}

impl CertificateRecord {
    pub fn new(row: &CertificateRow, now: OffsetDateTime) -> Result<Self, AuthorityError> {
        let certificate =
            der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &row.der).map_err(
                |e| AuthorityError::Render {
                    what: "a certificate as PEM",
                    why: e.to_string(),
                },
            )?;
        Ok(Self {
            serial: row.serial.to_hex(),
            status: row.status.name(),
            expired: lifecycle::is_expired(row.not_after, now),
            revocation_reason: row.status.crl_reason().map(|r| r.name()),
            status_since: rfc3339(row.status_since)?,
            subscriber_code: row.subscriber_code.clone(),
            card_number: row.card_number.clone(),
            profile: row.profile.clone(),
            not_before: rfc3339(row.not_before)?,
            not_after: rfc3339(row.not_after)?,
            certificate,
        })
    }

    /// Records of `rows`, in their order.
    pub fn all(rows: &[CertificateRow], now: OffsetDateTime) -> Result<Vec<Self>, AuthorityError> {
        rows.iter().map(|row| Self::new(row, now)).collect()
    }
}

/// Who asked for a change, for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub name: &'a str,
    pub channel: Channel,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_rfc_3339_cannot_write_is_an_error_not_an_empty_string() {
        let year_zero_minus = OffsetDateTime::from_unix_timestamp(-100_000_000_000).unwrap();
        assert!(matches!(
            rfc3339(year_zero_minus),
            Err(AuthorityError::Render { .. })
        ));
        let t = OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap();
        assert_eq!(rfc3339(t).unwrap(), "2026-05-28T20:26:40Z");
    }
}
