//! What the RA API answers (SPEC §7), as JSON and as OpenAPI schemas: views
//! built from the authority's records, so the domain knows nothing of HTTP.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use time::OffsetDateTime;

use crate::authority::{CertificateRecord, SyncStatus};
use crate::revocation::{CrlKind, CrlSummary};

/// The certificate record of SPEC §7.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CertificateRecord)]
pub struct CertificateView<'a> {
    /// Lowercase hex, no leading zero bytes.
    #[schema(example = "4f3a09c2d1e8b7a6954321fedcba9876")]
    serial: &'a str,
    /// `good`, `suspended` or `revoked`.
    #[schema(value_type = String, example = "good")]
    status: &'static str,
    /// Past notAfter (derived, never stored).
    expired: bool,
    /// Null when good, `certificateHold` when suspended, the RFC 5280 reason when revoked.
    #[schema(value_type = Option<String>, example = "certificateHold")]
    revocation_reason: Option<&'static str>,
    /// RFC 3339 UTC: when the current status began.
    status_since: &'a str,
    subscriber_code: &'a str,
    card_number: &'a str,
    profile: &'a str,
    /// RFC 3339 UTC.
    not_before: &'a str,
    /// RFC 3339 UTC.
    not_after: &'a str,
    /// The certificate in PEM.
    certificate: &'a str,
}

impl<'a> From<&'a CertificateRecord> for CertificateView<'a> {
    fn from(r: &'a CertificateRecord) -> Self {
        Self {
            serial: &r.serial,
            status: r.status,
            expired: r.expired,
            revocation_reason: r.revocation_reason,
            status_since: &r.status_since,
            subscriber_code: &r.subscriber_code,
            card_number: &r.card_number,
            profile: &r.profile,
            not_before: &r.not_before,
            not_after: &r.not_after,
            certificate: &r.certificate,
        }
    }
}

/// Views of several records, in their order.
fn views(records: &[CertificateRecord]) -> Vec<CertificateView<'_>> {
    records.iter().map(CertificateView::from).collect()
}

/// A card operation's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardRecords<'a> {
    card_number: &'a str,
    /// Every certificate of the card, changed or not.
    certificates: Vec<CertificateView<'a>>,
}

impl<'a> CardRecords<'a> {
    pub fn new(card_number: &'a str, records: &'a [CertificateRecord]) -> Self {
        Self {
            card_number,
            certificates: views(records),
        }
    }
}

/// A subscriber's certificates.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateList<'a> {
    certificates: Vec<CertificateView<'a>>,
}

impl<'a> From<&'a [CertificateRecord]> for CertificateList<'a> {
    fn from(records: &'a [CertificateRecord]) -> Self {
        Self {
            certificates: views(records),
        }
    }
}

/// A CRL's kind, as the API spells it.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CrlKindName {
    Full,
    Delta,
}

impl From<CrlKindName> for CrlKind {
    fn from(k: CrlKindName) -> Self {
        match k {
            CrlKindName::Full => CrlKind::Full,
            CrlKindName::Delta => CrlKind::Delta,
        }
    }
}

impl From<CrlKind> for CrlKindName {
    fn from(k: CrlKind) -> Self {
        match k {
            CrlKind::Full => CrlKindName::Full,
            CrlKind::Delta => CrlKindName::Delta,
        }
    }
}

/// A published CRL (SPEC §7 CRL summary).
#[derive(Debug, Serialize, ToSchema)]
pub struct CrlSummaryView {
    number: u64,
    kind: CrlKindName,
    /// The base full CRL of a delta; null for a full CRL.
    base_number: Option<u64>,
    /// RFC 3339 UTC.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    this_update: OffsetDateTime,
    /// RFC 3339 UTC.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    next_update: OffsetDateTime,
    /// Number of entries.
    entries: u64,
}

impl From<&CrlSummary> for CrlSummaryView {
    fn from(s: &CrlSummary) -> Self {
        Self {
            number: s.number,
            kind: s.kind.into(),
            base_number: s.base_number,
            this_update: s.this_update,
            next_update: s.next_update,
            entries: s.entries,
        }
    }
}

/// The sync window (SPEC §6).
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncWindowView {
    ocsp_max_age_s: i64,
    delta_crl_interval_s: i64,
    full_crl_interval_s: i64,
    /// The larger of the OCSP max-age and the delta CRL interval.
    worst_case_s: i64,
    last_full: Option<CrlSummaryView>,
    last_delta: Option<CrlSummaryView>,
    /// RFC 3339 UTC: the oldest status change no published CRL shows yet.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    oldest_unpublished_change: Option<OffsetDateTime>,
}

impl From<&SyncStatus> for SyncWindowView {
    fn from(w: &SyncStatus) -> Self {
        Self {
            ocsp_max_age_s: w.window.ocsp_max_age.whole_seconds(),
            delta_crl_interval_s: w.window.delta_crl_interval.whole_seconds(),
            full_crl_interval_s: w.window.full_crl_interval.whole_seconds(),
            worst_case_s: w.window.worst_case().whole_seconds(),
            last_full: w.last_full.as_ref().map(Into::into),
            last_delta: w.last_delta.as_ref().map(Into::into),
            oldest_unpublished_change: w.oldest_unpublished_change,
        }
    }
}
