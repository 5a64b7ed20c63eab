//! Ahead-of-time re-signing: responses that relying parties keep asking
//! for are signed again before they pass half their validity, so that a
//! request finds a fresh one instead of waiting for a signature.

use std::sync::Arc;

use time::OffsetDateTime;

use super::Responder;
use super::cache::CacheEntry;
use super::responder::decide;
use super::response::ResponseStatus;
use super::status::{self, refresh_due, still_fresh};
use crate::clock::Clock;

/// What one [`Responder::refresh`] pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Refreshed {
    /// Responses signed again before they passed half their validity.
    pub resigned: usize,
    /// Responses nobody received, dropped once past half their validity.
    pub dropped: usize,
    /// Responses left as they were after a store or signing failure
    /// (already logged); a request re-signs them if they pass half.
    pub failed: usize,
}

/// Runs [`Responder::refresh`] every [`status::refresh_period`] of the
/// responses' validity, on the blocking pool so that signatures never hold
/// up a runtime thread, until the task is aborted. Each pass signs at
/// `clock`'s now.
pub async fn refresh_forever(responder: Arc<Responder>, clock: Arc<dyn Clock>) {
    let mut ticks = tokio::time::interval(status::refresh_period(responder.max_age));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let (responder, clock) = (Arc::clone(&responder), Arc::clone(&clock));
        match tokio::task::spawn_blocking(move || responder.refresh(clock.now())).await {
            Ok(done) if done != Refreshed::default() => {
                tracing::debug!(?done, "OCSP responses refreshed");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "OCSP refresh pass failed"),
        }
    }
}

impl Responder {
    /// Re-signs, ahead of time, the cached responses that are a quarter
    /// through their validity and that a client received since they were
    /// signed; drops those nobody received that can no longer be served.
    /// Requests then find a fresh response instead of signing one:
    /// this runs beside them, one signature at a time, holding no lock while
    /// it signs. It never makes an answer staler: a re-signed response
    /// states the status read now (or confirmed in the current committed
    /// state), and replaces its entry only if no request replaced it since.
    /// An entry the refresher misses (store trouble, a pass that overran)
    /// is still re-signed by the first request that finds it past half.
    pub fn refresh(&self, now: OffsetDateTime) -> Refreshed {
        let max_age = self.max_age;
        let mut done = Refreshed::default();
        for (key, entry) in self
            .cache
            .due(|e| refresh_due(e.response.this_update, max_age, now))
        {
            let expected = Arc::clone(&entry.response);
            let replacement = if entry.response.was_served() {
                match self.resigned(entry, now) {
                    Ok(resigned) => resigned,
                    Err(_) => {
                        done.failed += 1;
                        continue;
                    }
                }
            } else if still_fresh(entry.response.this_update, max_age, now) {
                // Nobody asked yet; look again at the next pass.
                continue;
            } else {
                None
            };
            let resigned = replacement.is_some();
            if self.cache.replace(key, &expected, replacement) {
                match resigned {
                    true => done.resigned += 1,
                    false => done.dropped += 1,
                }
            }
        }
        self.metrics.refresh(done.resigned, done.dropped);
        done
    }

    /// `entry` signed again with the status current now; `None` if its
    /// certificate is no longer in the store (the cache keeps answers about
    /// stored certificates only).
    fn resigned(
        &self,
        entry: CacheEntry,
        now: OffsetDateTime,
    ) -> Result<Option<CacheEntry>, ResponseStatus> {
        let marker = self.statuses.commit_marker();
        let (version, status) = if marker.is_some() && entry.confirmed_at == marker {
            (entry.version, entry.status)
        } else {
            let stored = self.lookup(&entry.request.cert_id)?;
            (stored.as_ref().map(|s| s.version), decide(stored))
        };
        if version.is_none() {
            return Ok(None);
        }
        self.signed_entry(entry.request, version, status, marker, now)
            .map(Some)
    }
}
