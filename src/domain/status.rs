//! Certificate status (SPEC §3) and the channel through which a change came.

use std::fmt;
use std::str::FromStr;

use super::reason::{CrlReason, RevocationReason};

/// The stored status of a certificate. `expired` is derived from notAfter
/// and is never a status of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertStatus {
    Good,
    /// On hold: listed with reasonCode certificateHold.
    Suspended,
    /// Terminal.
    Revoked(RevocationReason),
}

impl CertStatus {
    /// The word used in the API and the store: `good`, `suspended`, `revoked`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Suspended => "suspended",
            Self::Revoked(_) => "revoked",
        }
    }

    /// The reason a CRL entry or an OCSP `revoked` answer carries, or `None`
    /// when the certificate is not listed.
    pub fn crl_reason(self) -> Option<CrlReason> {
        match self {
            Self::Good => None,
            Self::Suspended => Some(CrlReason::CertificateHold),
            Self::Revoked(reason) => Some(reason.crl_reason()),
        }
    }

    /// Rebuilds a status from its stored form (name plus reason code).
    pub fn from_stored(name: &str, reason: Option<u8>) -> Option<Self> {
        match (name, reason) {
            ("good", None) => Some(Self::Good),
            ("suspended", _) => Some(Self::Suspended),
            ("revoked", Some(code)) => CrlReason::try_from(code)
                .ok()
                .and_then(RevocationReason::from_crl_reason)
                .map(Self::Revoked),
            _ => None,
        }
    }
}

/// Where a status change came from (SPEC §3.1); recorded in the history and
/// the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// An RA officer through the API.
    Ra,
    /// An emergency request (fax + identity document) entered by an officer.
    Emergency,
    /// The subscriber on the self-service page.
    SelfService,
    /// An operator on the command line.
    Cli,
}

impl Channel {
    pub const ALL: [Self; 4] = [Self::Ra, Self::Emergency, Self::SelfService, Self::Cli];

    pub fn name(self) -> &'static str {
        match self {
            Self::Ra => "ra",
            Self::Emergency => "emergency",
            Self::SelfService => "self-service",
            Self::Cli => "cli",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A channel name nobody defined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel `{0}`; accepted: ra, emergency, self-service, cli")]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| UnknownChannel(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_round_trips() {
        let all = std::iter::once(CertStatus::Good)
            .chain(std::iter::once(CertStatus::Suspended))
            .chain(RevocationReason::ALL.into_iter().map(CertStatus::Revoked));
        for status in all {
            let code = match status {
                CertStatus::Revoked(r) => Some(r.crl_reason().code()),
                _ => None,
            };
            assert_eq!(CertStatus::from_stored(status.name(), code), Some(status));
        }
        assert_eq!(CertStatus::from_stored("revoked", Some(6)), None);
        assert_eq!(CertStatus::from_stored("expired", None), None);
    }
}
