//! Full and delta CRLs ([RFC 5280 §5](https://www.rfc-editor.org/rfc/rfc5280#section-5)).
//!
//! [`diff`] decides the entries (pure), [`encode`] turns them into signed DER.

pub mod diff;
pub mod encode;

use time::OffsetDateTime;

use crate::domain::{CertStatus, CrlReason, Serial};

pub use diff::{delta_entries, net_changes};
pub use encode::{CrlError, CrlParams, CrlScope, RevokedList, SignedCrl, sign_crl};

/// Full CRLs list everything; delta CRLs list what changed since a base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrlKind {
    Full,
    Delta,
}

impl CrlKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Delta => "delta",
        }
    }

    /// The kind named `name` ([`Self::name`]), if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Full, Self::Delta]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// A published CRL's header, as the store keeps it beside the DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlSummary {
    pub number: u64,
    pub kind: CrlKind,
    pub base_number: Option<u64>,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    /// The newest status change this CRL reflects.
    pub covers_seq: i64,
    pub entries: u64,
}

/// The newest full and the newest delta CRL: where publication stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatestCrls {
    pub full: Option<CrlSummary>,
    pub delta: Option<CrlSummary>,
}

impl LatestCrls {
    fn both(&self) -> impl Iterator<Item = &CrlSummary> {
        self.full.iter().chain(&self.delta)
    }

    /// The newest thisUpdate published (the next may not be earlier).
    pub fn newest_this_update(&self) -> Option<OffsetDateTime> {
        self.both().map(|c| c.this_update).max()
    }

    /// The newest status change a published CRL reflects (0 when none).
    pub fn covers_seq(&self) -> i64 {
        self.both().map(|c| c.covers_seq).max().unwrap_or(0)
    }
}

/// A suspended or revoked certificate as the store lists it for a full CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedCertificate {
    pub serial: Serial,
    pub status: CertStatus,
    /// When the current status began: the entry's revocationDate.
    pub since: OffsetDateTime,
}

/// One row of the status history, as the delta CRL reads it: the status a
/// certificate took at `at`, and the one it replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub serial: Serial,
    /// The status replaced and when it began; None for the issuance.
    pub before: Option<(CertStatus, OffsetDateTime)>,
    pub after: CertStatus,
    pub at: OffsetDateTime,
}

/// A certificate whose status changed after a base full CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub serial: Serial,
    /// Its status when the base was made (good if not yet issued).
    pub base: CertStatus,
    /// When that status began (None if not yet issued then).
    pub base_since: Option<OffsetDateTime>,
    pub current: CertStatus,
    /// When the current status began.
    pub since: OffsetDateTime,
}

/// One revokedCertificates entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlEntry {
    pub serial: Serial,
    pub revocation_date: OffsetDateTime,
    pub reason: CrlReason,
}

impl ListedCertificate {
    /// The full-CRL entry: reasonCode certificateHold for a suspension.
    pub fn entry(&self) -> Option<CrlEntry> {
        self.status.crl_reason().map(|reason| CrlEntry {
            serial: self.serial.clone(),
            revocation_date: self.since,
            reason,
        })
    }
}
