//! Responder metrics: responses by OCSPResponseStatus ([RFC 6960 §4.2.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.2.1)),
//! SingleResponses by certStatus, cache hits and misses, store lookups, the
//! refresher's work, the time spent signing, and how much the responder
//! holds (cached responses, signatures waiting for the signing pool), kept in a
//! `prometheus-client` registry that [`Metrics::render_prometheus`] encodes
//! for `/metrics`.
//!
//! Every labelled counter is resolved once, when the metrics are built, so
//! counting costs the hot path one relaxed atomic increment and never the
//! lock of a label family.

use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::response::ResponseStatus;
use super::status::SingleStatus;

/// Upper bounds of the signing-time histogram buckets, in seconds: a P-256
/// signature takes tens of µs, RSA-4096 milliseconds.
const SIGNING_BUCKETS: [f64; 10] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.01, 0.05,
];

/// The label set of a counter by status.
type StatusLabel = [(&'static str, &'static str); 1];

/// certStatus names, in the order of [`cert_status_index`].
const CERT_STATUS_NAMES: [&str; 3] = ["good", "revoked", "unknown"];

/// What the responder counts.
#[derive(Debug)]
pub struct Metrics {
    responses: [Counter; ResponseStatus::ALL.len()],
    /// good, revoked, unknown.
    cert_statuses: [Counter; 3],
    cache_hits: Counter,
    cache_misses: Counter,
    store_lookups: Counter,
    refreshed: Counter,
    refresh_dropped: Counter,
    /// Observed on a signature only, never on a cache hit.
    signing: Histogram,
    /// Requests answered tryLater because the signing queue was full.
    signing_refused: Counter,
    /// Set when the metrics are rendered, not on the hot path.
    cached_responses: Gauge,
    signing_queued: Gauge,
    registry: Registry,
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

/// A family of counters by `status`, registered, with one counter per name.
fn by_status<const N: usize>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    statuses: [&'static str; N],
) -> [Counter; N] {
    let family = Family::<StatusLabel, Counter>::default();
    registry.register(name, help, family.clone());
    statuses.map(|status| family.get_or_create_owned(&[("status", status)]))
}

/// A counter without labels, registered.
fn counter(registry: &mut Registry, name: &str, help: &str) -> Counter {
    let counter = Counter::default();
    registry.register(name, help, counter.clone());
    counter
}

/// A gauge without labels, registered.
fn gauge(registry: &mut Registry, name: &str, help: &str) -> Gauge {
    let gauge = Gauge::default();
    registry.register(name, help, gauge.clone());
    gauge
}

impl Default for Metrics {
    fn default() -> Self {
        // The registry appends `_total` to counter names and a full stop to help texts.
        let mut registry = Registry::default();
        let responses = by_status(
            &mut registry,
            "eidca_ocsp_responses",
            "OCSP responses sent, by OCSPResponseStatus",
            ResponseStatus::ALL.map(ResponseStatus::name),
        );
        let cert_statuses = by_status(
            &mut registry,
            "eidca_ocsp_cert_status",
            "SingleResponses sent, by certStatus",
            CERT_STATUS_NAMES,
        );
        let cache_hits = counter(
            &mut registry,
            "eidca_ocsp_cache_hits",
            "Requests answered from the signed-response cache",
        );
        let cache_misses = counter(
            &mut registry,
            "eidca_ocsp_cache_misses",
            "Cacheable requests that needed a new signature",
        );
        let store_lookups = counter(
            &mut registry,
            "eidca_ocsp_store_lookups",
            "Status lookups in the store (none while nothing is committed)",
        );
        let refreshed = counter(
            &mut registry,
            "eidca_ocsp_refreshed",
            "Cached responses re-signed ahead of time by the refresher",
        );
        let refresh_dropped = counter(
            &mut registry,
            "eidca_ocsp_refresh_dropped",
            "Cached responses nobody asked for, dropped by the refresher",
        );
        let signing = Histogram::new(SIGNING_BUCKETS);
        registry.register(
            "eidca_ocsp_signing_seconds",
            "Time to encode and sign one OCSP response",
            signing.clone(),
        );
        let signing_refused = counter(
            &mut registry,
            "eidca_ocsp_signing_refused",
            "Requests answered tryLater because the signing queue was full",
        );
        let signing_queued = gauge(
            &mut registry,
            "eidca_ocsp_signing_queued",
            "Signatures waiting for a signing thread",
        );
        let cached_responses = gauge(
            &mut registry,
            "eidca_ocsp_cached_responses",
            "Signed responses held in the response cache",
        );
        Self {
            responses,
            cert_statuses,
            cache_hits,
            cache_misses,
            store_lookups,
            refreshed,
            refresh_dropped,
            signing,
            signing_refused,
            cached_responses,
            signing_queued,
            registry,
        }
    }
}

impl Metrics {
    pub fn response(&self, status: ResponseStatus) {
        self.responses[status_index(status)].inc();
    }

    pub fn cert_status(&self, status: SingleStatus) {
        self.cert_statuses[cert_status_index(status)].inc();
    }

    pub fn cache_hit(&self) {
        self.cache_hits.inc();
    }

    pub fn cache_miss(&self) {
        self.cache_misses.inc();
    }

    pub fn store_lookup(&self) {
        self.store_lookups.inc();
    }

    /// A refresher pass re-signed `resigned` responses and dropped `dropped`.
    pub fn refresh(&self, resigned: usize, dropped: usize) {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        self.refreshed.inc_by(count(resigned));
        self.refresh_dropped.inc_by(count(dropped));
    }

    /// Status lookups in the store so far.
    pub fn store_lookups(&self) -> u64 {
        self.store_lookups.get()
    }

    pub fn signed(&self, took: Duration) {
        self.signing.observe(took.as_secs_f64());
    }

    /// Responses counted with this status so far.
    pub fn responses(&self, status: ResponseStatus) -> u64 {
        self.responses[status_index(status)].get()
    }

    /// (hits, misses) of the response cache so far.
    pub fn cache(&self) -> (u64, u64) {
        (self.cache_hits.get(), self.cache_misses.get())
    }

    /// A request found the signing queue full.
    pub fn signing_refused(&self) {
        self.signing_refused.inc();
    }

    /// Notes how many signatures wait for a signing thread now.
    pub fn signing_queued(&self, waiting: usize) {
        self.signing_queued
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }

    /// Notes how many responses the cache holds now.
    pub fn cached_responses(&self, held: usize) {
        self.cached_responses
            .set(i64::try_from(held).unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render_prometheus(&self) -> String {
        let mut out = String::with_capacity(2048);
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
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
        metrics.cached_responses(42);
        metrics.signing_queued(3);
        metrics.signing_refused();
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
            "# TYPE eidca_ocsp_cached_responses gauge",
            "eidca_ocsp_cached_responses 42",
            "eidca_ocsp_signing_queued 3",
            "eidca_ocsp_signing_refused_total 1",
            "# HELP eidca_ocsp_refresh_dropped_total Cached responses nobody asked for, dropped by the refresher.",
            "# TYPE eidca_ocsp_refresh_dropped_total counter",
            "# TYPE eidca_ocsp_signing_seconds histogram",
            "eidca_ocsp_signing_seconds_bucket{le=\"1e-05\"} 0",
            "eidca_ocsp_signing_seconds_bucket{le=\"2.5e-05\"} 1",
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
