//! The sync window of SPEC §6: when relying services (tax portals, banks,
//! government sites) see a change committed at `t`, from the configured
//! intervals.

use time::{Duration, OffsetDateTime};

/// The configured figures behind the promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncWindow {
    /// HTTP caches may keep an old OCSP answer this long.
    pub ocsp_max_age: Duration,
    /// A delta CRL listing the change is out by `t` + this.
    pub delta_crl_interval: Duration,
    /// A full CRL reflecting it is out by `t` + this.
    pub full_crl_interval: Duration,
}

impl SyncWindow {
    /// For a relying party that uses OCSP or delta CRLs: the larger of the
    /// OCSP max-age and the delta interval (`worst_case_s` of the API).
    pub fn worst_case(&self) -> Duration {
        self.ocsp_max_age.max(self.delta_crl_interval)
    }

    /// When every OCSP- or delta-CRL-aware relying party sees a change made at `at`.
    pub fn visible_by(&self, at: OffsetDateTime) -> OffsetDateTime {
        at + self.worst_case()
    }

    /// When even a relying party that reads only full CRLs sees it.
    pub fn full_crl_by(&self, at: OffsetDateTime) -> OffsetDateTime {
        at + self.full_crl_interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_case_is_the_larger_of_ocsp_and_delta() {
        let w = SyncWindow {
            ocsp_max_age: Duration::minutes(10),
            delta_crl_interval: Duration::minutes(15),
            full_crl_interval: Duration::hours(24),
        };
        assert_eq!(w.worst_case(), Duration::minutes(15));
    }
}
