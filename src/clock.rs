//! The one source of "now" for the whole crate: certificates, CRLs, OCSP
//! answers and schedules all read it, so tests and the simulator can inject
//! their own.

use time::OffsetDateTime;

/// The source of "now"; tests and the simulator inject their own.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;

    /// "now" without truncation, for waiting until a moment: the publisher
    /// must wake before a nextUpdate, not up to a second after.
    fn precise_now(&self) -> OffsetDateTime {
        self.now()
    }
}

/// The system clock, truncated to whole seconds (what certificates, CRLs
/// and OCSP carry).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        now.replace_nanosecond(0).unwrap_or(now)
    }

    fn precise_now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}
