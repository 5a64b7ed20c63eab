//! CRL reason codes ([RFC 5280 §5.3.1](https://www.rfc-editor.org/rfc/rfc5280#section-5.3.1)).

use std::fmt;
use std::str::FromStr;

/// Every reason code RFC 5280 defines, with its wire value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CrlReason {
    Unspecified = 0,
    KeyCompromise = 1,
    CaCompromise = 2,
    AffiliationChanged = 3,
    Superseded = 4,
    CessationOfOperation = 5,
    CertificateHold = 6,
    RemoveFromCrl = 8,
    PrivilegeWithdrawn = 9,
    AaCompromise = 10,
}

/// A wire value that RFC 5280 does not define (7 is unused, >10 unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown CRL reason code {0}")]
pub struct UnknownReasonCode(pub u8);

impl TryFrom<u8> for CrlReason {
    type Error = UnknownReasonCode;

    fn try_from(code: u8) -> Result<Self, Self::Error> {
        Ok(match code {
            0 => Self::Unspecified,
            1 => Self::KeyCompromise,
            2 => Self::CaCompromise,
            3 => Self::AffiliationChanged,
            4 => Self::Superseded,
            5 => Self::CessationOfOperation,
            6 => Self::CertificateHold,
            8 => Self::RemoveFromCrl,
            9 => Self::PrivilegeWithdrawn,
            10 => Self::AaCompromise,
            other => return Err(UnknownReasonCode(other)),
        })
    }
}

impl CrlReason {
    /// The RFC 5280 ASN.1 name in camelCase, as the API shows it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
            Self::RemoveFromCrl => "removeFromCRL",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aACompromise",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for CrlReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The reasons an officer may give for a permanent revocation (SPEC §3.1).
/// certificateHold and removeFromCRL are what suspend and resume mean, and the
/// CA-compromise reasons are not something a subscriber's card can cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    PrivilegeWithdrawn,
}

/// A revoke reason the CA does not accept, with the reason why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevocationReasonError {
    #[error(
        "`{0}` is not a revocation reason: use suspend for certificateHold and resume for removeFromCRL"
    )]
    HoldIsNotRevocation(String),
    #[error(
        "unknown revocation reason `{0}`; accepted: unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn"
    )]
    Unknown(String),
}

impl RevocationReason {
    pub const ALL: [RevocationReason; 6] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::PrivilegeWithdrawn,
    ];

    pub fn crl_reason(self) -> CrlReason {
        match self {
            Self::Unspecified => CrlReason::Unspecified,
            Self::KeyCompromise => CrlReason::KeyCompromise,
            Self::AffiliationChanged => CrlReason::AffiliationChanged,
            Self::Superseded => CrlReason::Superseded,
            Self::CessationOfOperation => CrlReason::CessationOfOperation,
            Self::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        }
    }

    /// The reverse of [`Self::crl_reason`], for values read back from the store.
    pub fn from_crl_reason(reason: CrlReason) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.crl_reason() == reason)
    }

    pub fn name(self) -> &'static str {
        self.crl_reason().name()
    }
}

impl FromStr for RevocationReason {
    type Err = RevocationReasonError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(reason) = Self::ALL.into_iter().find(|r| r.name() == s) {
            return Ok(reason);
        }
        if s.eq_ignore_ascii_case("certificateHold") || s.eq_ignore_ascii_case("removeFromCRL") {
            return Err(RevocationReasonError::HoldIsNotRevocation(s.to_owned()));
        }
        Err(RevocationReasonError::Unknown(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_round_trip_and_seven_is_unknown() {
        for code in 0..=10u8 {
            match CrlReason::try_from(code) {
                Ok(reason) => assert_eq!(reason.code(), code),
                Err(e) => assert_eq!(e, UnknownReasonCode(7)),
            }
        }
        assert!(CrlReason::try_from(11).is_err());
    }

    #[test]
    fn hold_and_remove_are_refused_as_revocation_reasons() {
        assert!(matches!(
            "certificateHold".parse::<RevocationReason>(),
            Err(RevocationReasonError::HoldIsNotRevocation(_))
        ));
        assert!(matches!(
            "removeFromCRL".parse::<RevocationReason>(),
            Err(RevocationReasonError::HoldIsNotRevocation(_))
        ));
        assert!(matches!(
            "cACompromise".parse::<RevocationReason>(),
            Err(RevocationReasonError::Unknown(_))
        ));
        for reason in RevocationReason::ALL {
            assert_eq!(reason.name().parse::<RevocationReason>(), Ok(reason));
        }
    }
}
