//! Responder metrics: responses by OCSPResponseStatus ([RFC 6960 §4.2.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.2.1)),
//! SingleResponses by certStatus, cache hits and misses, store lookups, the
//! refresher's work, and the time spent signing. Plain atomics, so counting costs the hot path a few relaxed
//! increments; [`Metrics::render_prometheus`] writes the text exposition
//! format for `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::response::ResponseStatus;
use super::status::SingleStatus;

/// Upper bounds of the signing-time histogram buckets, in microseconds: a
/// P-256 signature takes tens of µs, RSA-4096 milliseconds.
const SIGNING_BUCKETS_US: [u64; 10] = [10, 25, 50, 100, 250, 500, 1_000, 2_500, 10_000, 50_000];

/// What the responder counts.
#[derive(Debug, Default)]
pub struct Metrics {
    responses: [AtomicU64; ResponseStatus::ALL.len()],
    /// good, revoked, unknown.
    cert_statuses: [AtomicU64; 3],
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    store_lookups: AtomicU64,
    refreshed: AtomicU64,
    refresh_dropped: AtomicU64,
    signing_buckets: [AtomicU64; SIGNING_BUCKETS_US.len()],
    signing_count: AtomicU64,
    signing_sum_ns: AtomicU64,
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn status_index(status: ResponseStatus) -> usize {
    ResponseStatus::ALL
        .iter()
        .position(|s| *s == status)
        .unwrap_or_default()
}

fn cert_status_index(status: SingleStatus) -> usize {
    match status {
        SingleStatus::Good => 0,
        SingleStatus::Revoked { .. } => 1,
        SingleStatus::Unknown => 2,
    }
}

const CERT_STATUS_NAMES: [&str; 3] = ["good", "revoked", "unknown"];

impl Metrics {
    pub fn response(&self, status: ResponseStatus) {
        add(&self.responses[status_index(status)]);
    }

    pub fn cert_status(&self, status: SingleStatus) {
        add(&self.cert_statuses[cert_status_index(status)]);
    }

    pub fn cache_hit(&self) {
        add(&self.cache_hits);
    }

    pub fn cache_miss(&self) {
        add(&self.cache_misses);
    }

    pub fn store_lookup(&self) {
        add(&self.store_lookups);
    }

    /// A refresher pass re-signed `resigned` responses and dropped `dropped`.
    pub fn refresh(&self, resigned: usize, dropped: usize) {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        self.refreshed.fetch_add(count(resigned), Ordering::Relaxed);
        self.refresh_dropped
            .fetch_add(count(dropped), Ordering::Relaxed);
    }

    /// Status lookups in the store so far.
    pub fn store_lookups(&self) -> u64 {
        read(&self.store_lookups)
    }

    pub fn signed(&self, took: Duration) {
        let micros = took.as_micros();
        // Buckets are cumulative in the exposition format; store them per
        // bucket here and sum when rendering.
        if let Some(i) = SIGNING_BUCKETS_US
            .iter()
            .position(|bound| micros <= u128::from(*bound))
        {
            add(&self.signing_buckets[i]);
        }
        add(&self.signing_count);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.signing_sum_ns.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Responses counted with this status so far.
    pub fn responses(&self, status: ResponseStatus) -> u64 {
        read(&self.responses[status_index(status)])
    }

    /// (hits, misses) of the response cache so far.
    pub fn cache(&self) -> (u64, u64) {
        (read(&self.cache_hits), read(&self.cache_misses))
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render_prometheus(&self) -> String {
        let mut out = String::with_capacity(2048);
        // Writing to a String cannot fail.
        let _ = self.write_prometheus(&mut out);
        out
    }

    fn write_prometheus(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "# HELP eidca_ocsp_responses_total OCSP responses sent, by OCSPResponseStatus."
        )?;
        writeln!(out, "# TYPE eidca_ocsp_responses_total counter")?;
        for status in ResponseStatus::ALL {
            let n = self.responses(status);
            writeln!(
                out,
                "eidca_ocsp_responses_total{{status=\"{}\"}} {n}",
                status.name()
            )?;
        }
        writeln!(
            out,
            "# HELP eidca_ocsp_cert_status_total SingleResponses sent, by certStatus."
        )?;
        writeln!(out, "# TYPE eidca_ocsp_cert_status_total counter")?;
        for (name, counter) in CERT_STATUS_NAMES.iter().zip(&self.cert_statuses) {
            writeln!(
                out,
                "eidca_ocsp_cert_status_total{{status=\"{name}\"}} {}",
                read(counter)
            )?;
        }
        let (hits, misses) = self.cache();
        for (name, help, value) in [
            (
                "eidca_ocsp_cache_hits_total",
                "Requests answered from the signed-response cache.",
                hits,
            ),
            (
                "eidca_ocsp_cache_misses_total",
                "Cacheable requests that needed a new signature.",
                misses,
            ),
            (
                "eidca_ocsp_store_lookups_total",
                "Status lookups in the store (none while nothing is committed).",
                self.store_lookups(),
            ),
            (
                "eidca_ocsp_refreshed_total",
                "Cached responses re-signed ahead of time by the refresher.",
                read(&self.refreshed),
            ),
            (
                "eidca_ocsp_refresh_dropped_total",
                "Cached responses nobody asked for, dropped by the refresher.",
                read(&self.refresh_dropped),
            ),
        ] {
            writeln!(out, "# HELP {name} {help}")?;
            writeln!(out, "# TYPE {name} counter")?;
            writeln!(out, "{name} {value}")?;
        }
        writeln!(
            out,
            "# HELP eidca_ocsp_signing_seconds Time to encode and sign one OCSP response."
        )?;
        writeln!(out, "# TYPE eidca_ocsp_signing_seconds histogram")?;
        let mut cumulative = 0;
        for (bound, counter) in SIGNING_BUCKETS_US.iter().zip(&self.signing_buckets) {
            cumulative += read(counter);
            let le = *bound as f64 / 1e6;
            writeln!(
                out,
                "eidca_ocsp_signing_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            )?;
        }
        let count = read(&self.signing_count);
        writeln!(
            out,
            "eidca_ocsp_signing_seconds_bucket{{le=\"+Inf\"}} {count}"
        )?;
        let sum = read(&self.signing_sum_ns) as f64 / 1e9;
        writeln!(out, "eidca_ocsp_signing_seconds_sum {sum}")?;
        writeln!(out, "eidca_ocsp_signing_seconds_count {count}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let metrics = Metrics::default();
        metrics.response(ResponseStatus::Successful);
        metrics.response(ResponseStatus::Successful);
        metrics.response(ResponseStatus::MalformedRequest);
        metrics.cert_status(SingleStatus::Unknown);
        metrics.cache_hit();
        metrics.cache_miss();
        metrics.signed(Duration::from_micros(20));
        metrics.signed(Duration::from_millis(2));
        metrics.signed(Duration::from_secs(1));
        metrics.refresh(5, 2);
        let text = metrics.render_prometheus();
        for line in [
            "eidca_ocsp_responses_total{status=\"successful\"} 2",
            "eidca_ocsp_responses_total{status=\"malformedRequest\"} 1",
            "eidca_ocsp_responses_total{status=\"unauthorized\"} 0",
            "eidca_ocsp_cert_status_total{status=\"unknown\"} 1",
            "eidca_ocsp_cache_hits_total 1",
            "eidca_ocsp_cache_misses_total 1",
            "eidca_ocsp_refreshed_total 5",
            "eidca_ocsp_refresh_dropped_total 2",
            "# TYPE eidca_ocsp_refresh_dropped_total counter",
            "eidca_ocsp_signing_seconds_bucket{le=\"0.00001\"} 0",
            "eidca_ocsp_signing_seconds_bucket{le=\"0.000025\"} 1",
            "eidca_ocsp_signing_seconds_bucket{le=\"0.0025\"} 2",
            "eidca_ocsp_signing_seconds_bucket{le=\"+Inf\"} 3",
            "eidca_ocsp_signing_seconds_count 3",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
    }
}
