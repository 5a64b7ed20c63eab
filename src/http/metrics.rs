//! `GET /metrics` in the Prometheus text format (version 0.0.4), encoded by
//! `prometheus-client`: HTTP requests by route, method and status, a latency
//! histogram per route, certificates by status, the newest CRL numbers and
//! ages, and whatever other components add through [`PrometheusText`] (e.g.
//! OCSP counters).
//!
//! Routes are labelled by their pattern (`/api/v1/certificates/{serial}`),
//! never by the path asked for, so the label set stays bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{EncodeLabelSet, prometheus_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
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
    method: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AnswerLabels {
    route: String,
    method: String,
    status: u16,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Request counters and latency histograms, by (route, method).
#[derive(Debug)]
pub struct HttpMetrics {
    requests: Family<AnswerLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    registry: Registry,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        // The registry appends `_total` to counter names and a full stop to help texts.
        let requests = Family::default();
        let latency = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let mut registry = Registry::default();
        registry.register(
            "eidca_http_requests",
            "HTTP requests answered, by route pattern, method and status",
            requests.clone(),
        );
        registry.register(
            "eidca_http_request_duration_seconds",
            "Time from request to response head, by route pattern and method",
            latency.clone(),
        );
        Self {
            requests,
            latency,
            registry,
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
        let route = RouteLabels {
            route: route.to_owned(),
            method: method.to_owned(),
        };
        self.latency
            .get_or_create(&route)
            .observe(elapsed.as_secs_f64());
        let answer = AnswerLabels {
            route: route.route,
            method: route.method,
            status,
        };
        self.requests.get_or_create(&answer).inc();
    }
}

impl PrometheusText for HttpMetrics {
    fn render_prometheus(&self) -> String {
        encode(&self.registry)
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
    fn histogram_is_cumulative_and_counts_match() {
        let m = HttpMetrics::default();
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
