//! `GET /metrics` in the Prometheus text format (version 0.0.4), encoded by
//! `prometheus-client`: HTTP requests by route, method and status, a latency
//! histogram per route, certificates by status, the newest CRL numbers and
//! ages, and whatever other components add through [`PrometheusText`] (e.g.
//! OCSP counters).
//!
//! Routes are labelled by their pattern (`/api/v1/certificates/{serial}`),
//! never by the path asked for, so the label set stays bounded.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry};

use super::App;
use super::blocking::blocking;
use super::problem::ApiError;

/// A component that contributes lines to `/metrics`.
pub trait PrometheusText: Send + Sync {
    /// Complete metric families (`# HELP`, `# TYPE`, samples), newline-terminated.
    fn render_prometheus(&self) -> String;
}

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AnswerLabels {
    route: String,
    method: &'static str,
    status: u16,
}

/// The statuses a cell counts: every code hyper can send.
const STATUSES: std::ops::RangeInclusive<u16> = 100..=999;

/// One (route, method) pair's figures, atomics only.
#[derive(Debug)]
struct Cell {
    route: String,
    method: &'static str,
    /// Answers by status, indexed from the start of [`STATUSES`].
    answers: Box<[AtomicU64]>,
    /// Observations per bucket of [`BUCKETS`], and above the last.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Cell {
    fn new(route: &str, method: &'static str) -> Self {
        Self {
            route: route.to_owned(),
            method,
            answers: STATUSES.map(|_| AtomicU64::new(0)).collect(),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn observe(&self, status: u16, elapsed: Duration) {
        let index =
            usize::from(status.clamp(*STATUSES.start(), *STATUSES.end()) - STATUSES.start());
        if let Some(answers) = self.answers.get(index) {
            answers.fetch_add(1, Ordering::Relaxed);
        }
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|upper| seconds <= *upper)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// The most (route, method) pairs counted apart: routes and methods come
/// from fixed sets, far smaller than this; anything beyond would be counted
/// in the last pair.
const MAX_CELLS: usize = 512;

/// Request counters and latency histograms, by (route, method), without a
/// lock on the request path: each pair's figures are atomics in an
/// append-only table read without locking. The one lock is taken when a
/// pair is answered for the first time, so at most once per pair of the
/// fixed label sets; rendering never takes it.
#[derive(Debug)]
pub struct HttpMetrics {
    cells: Box<[OnceLock<Cell>]>,
    /// How many leading `cells` are set.
    filled: AtomicUsize,
    adding: Mutex<()>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            cells: (0..MAX_CELLS).map(|_| OnceLock::new()).collect(),
            filled: AtomicUsize::new(0),
            adding: Mutex::new(()),
        }
    }
}

/// The label of a request method: one of the methods of RFC 9110 §9, or
/// `OTHER`. Labels come from this fixed set, so a client inventing method
/// names cannot grow the metrics (SPEC §16, "Bounded by construction").
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::CONNECT, "CONNECT"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::TRACE, "TRACE"),
        (Method::PATCH, "PATCH"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("OTHER", |(_, label)| label)
}

impl HttpMetrics {
    /// Counts one answered request; `route` is a route pattern (or
    /// `unmatched`) and `method` a [`method_label`], both from fixed sets.
    pub fn observe(&self, route: &str, method: &'static str, status: u16, elapsed: Duration) {
        if let Some(cell) = self.cell(route, method) {
            cell.observe(status, elapsed);
        }
    }

    /// The cells filled so far.
    fn filled(&self) -> impl Iterator<Item = &Cell> {
        let filled = self.filled.load(Ordering::Acquire);
        self.cells[..filled].iter().filter_map(OnceLock::get)
    }

    fn cell(&self, route: &str, method: &'static str) -> Option<&Cell> {
        let is = |cell: &&Cell| cell.method == method && cell.route == route;
        if let Some(cell) = self.filled().find(is) {
            return Some(cell);
        }
        let _adding = self.adding.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cell) = self.filled().find(is) {
            return Some(cell);
        }
        let filled = self.filled.load(Ordering::Acquire);
        let Some(slot) = self.cells.get(filled) else {
            return self.cells.last().and_then(OnceLock::get);
        };
        let cell = slot.get_or_init(|| Cell::new(route, method));
        self.filled.store(filled + 1, Ordering::Release);
        Some(cell)
    }
}

impl Collector for HttpMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut requests = encoder.encode_descriptor(
            "eidca_http_requests",
            "HTTP requests answered, by route pattern, method and status.",
            None,
            MetricType::Counter,
        )?;
        for cell in self.filled() {
            for (status, answers) in STATUSES.zip(cell.answers.iter()) {
                let answers = answers.load(Ordering::Relaxed);
                if answers > 0 {
                    let labels = AnswerLabels {
                        route: cell.route.clone(),
                        method: cell.method,
                        status,
                    };
                    requests
                        .encode_family(&labels)?
                        .encode_counter::<NoLabelSet, _, f64>(&answers, None)?;
                }
            }
        }
        let mut latency = encoder.encode_descriptor(
            "eidca_http_request_duration_seconds",
            "Time from request to response head, by route pattern and method.",
            None,
            MetricType::Histogram,
        )?;
        for cell in self.filled() {
            let buckets: Vec<(f64, u64)> = BUCKETS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(cell.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
                .collect();
            let count = buckets.iter().map(|(_, n)| n).sum();
            let sum = Duration::from_nanos(cell.sum_nanos.load(Ordering::Relaxed)).as_secs_f64();
            let labels = RouteLabels {
                route: cell.route.clone(),
                method: cell.method,
            };
            latency
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        Ok(())
    }
}

impl PrometheusText for Arc<HttpMetrics> {
    fn render_prometheus(&self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Arc::clone(self)));
        encode(&registry)
    }
}

fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_text::encode(&mut out, registry);
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// A gauge family by CRL kind, registered.
fn by_kind<N, A>(registry: &mut Registry, name: &str, help: &str) -> Family<KindLabel, Gauge<N, A>>
where
    Gauge<N, A>: Metric + Default,
{
    let family = Family::default();
    registry.register(name, help, family.clone());
    family
}

/// What the store says: certificates by status, newest CRLs.
fn store_metrics(app: &App) -> Result<String, crate::authority::AuthorityError> {
    let authority = &app.authority;
    let now = authority.now();
    let figures = authority.store_figures()?;
    let counts = figures.certificates_by_status;
    let latest = [figures.latest.full, figures.latest.delta];
    let mut registry = Registry::default();
    let certificates = Family::<StatusLabel, Gauge>::default();
    registry.register(
        "eidca_certificates",
        "Certificates by stored status (expired ones included)",
        certificates.clone(),
    );
    for status in ["good", "suspended", "revoked"] {
        let n = counts
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        certificates.get_or_create(&StatusLabel { status }).set(n);
    }
    let number = by_kind::<u64, AtomicU64>(
        &mut registry,
        "eidca_crl_number",
        "Number of the newest published CRL, by kind",
    );
    let age = by_kind::<i64, AtomicI64>(
        &mut registry,
        "eidca_crl_age_seconds",
        "Seconds since the thisUpdate of the newest CRL, by kind",
    );
    let next_update = by_kind::<i64, AtomicI64>(
        &mut registry,
        "eidca_crl_next_update_seconds",
        "Seconds until the nextUpdate of the newest CRL (negative: overdue), by kind",
    );
    for crl in latest.iter().flatten() {
        let kind = KindLabel {
            kind: crl.kind.name(),
        };
        number.get_or_create(&kind).set(crl.number);
        age.get_or_create(&kind)
            .set((now - crl.this_update).whole_seconds());
        next_update
            .get_or_create(&kind)
            .set((crl.next_update - now).whole_seconds());
    }
    Ok(encode(&registry))
}

/// `GET /metrics`.
pub async fn render(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let shared = Arc::clone(&app);
    let mut body = blocking(&app, move |_| store_metrics(&shared)).await?;
    body.push_str(&app.http_metrics.render_prometheus());
    for source in &app.metric_sources {
        body.push_str(&source.render_prometheus());
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
        )],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_counting_while_another_renders_lose_nothing() {
        let m = Arc::new(HttpMetrics::default());
        let routes = ["/a", "/b", "/c", "/d"];
        std::thread::scope(|scope| {
            for route in routes {
                let m = &m;
                scope.spawn(move || {
                    for i in 0..1000u64 {
                        let method = if i % 2 == 0 { "GET" } else { "POST" };
                        m.observe(route, method, 200, Duration::from_micros(i));
                    }
                });
            }
            scope.spawn(|| {
                for _ in 0..20 {
                    m.render_prometheus();
                }
            });
        });
        let text = m.render_prometheus();
        for route in routes {
            for method in ["GET", "POST"] {
                let line = format!(
                    r#"eidca_http_requests_total{{route="{route}",method="{method}",status="200"}} 500"#
                );
                assert!(text.contains(&line), "missing {line} in {text}");
            }
        }
        assert_eq!(m.filled().count(), 8);
    }

    #[test]
    fn histogram_is_cumulative_and_counts_match() {
        let m = Arc::new(HttpMetrics::default());
        m.observe("/x/{id}", "GET", 200, Duration::from_micros(500));
        m.observe("/x/{id}", "GET", 404, Duration::from_millis(30));
        m.observe("/x/{id}", "GET", 200, Duration::from_secs(20));
        let text = m.render_prometheus();
        assert!(
            text.contains(
                r#"eidca_http_requests_total{route="/x/{id}",method="GET",status="200"} 2"#
            )
        );
        assert!(
            text.contains(
                r#"eidca_http_requests_total{route="/x/{id}",method="GET",status="404"} 1"#
            )
        );
        assert!(text.contains(r#"eidca_http_request_duration_seconds_bucket{route="/x/{id}",method="GET",le="0.001"} 1"#));
        assert!(text.contains(r#"eidca_http_request_duration_seconds_bucket{route="/x/{id}",method="GET",le="0.05"} 2"#));
        assert!(text.contains(
            r#"eidca_http_request_duration_seconds_bucket{route="/x/{id}",method="GET",le="10"} 2"#
        ));
        assert!(text.contains(r#"eidca_http_request_duration_seconds_bucket{route="/x/{id}",method="GET",le="+Inf"} 3"#));
        assert!(text.contains(
            r#"eidca_http_request_duration_seconds_count{route="/x/{id}",method="GET"} 3"#
        ));
    }
}
