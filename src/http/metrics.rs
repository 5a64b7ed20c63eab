//! `GET /metrics` in the Prometheus text format (version 0.0.4): HTTP
//! requests by route, method and status, a latency histogram per route,
//! certificates by status, the newest CRL numbers and ages, and whatever
//! other components add through [`PrometheusText`] (e.g. OCSP counters).
//!
//! Routes are labelled by their pattern (`/api/v1/certificates/{serial}`),
//! never by the path asked for, so the label set stays bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

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

#[derive(Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    buckets: [u64; BUCKETS.len() + 1],
    sum_seconds: f64,
    count: u64,
}

/// Request counters and latency histograms, by (route, method).
#[derive(Default)]
pub struct HttpMetrics {
    routes: Mutex<BTreeMap<(String, String), RouteStats>>,
}

impl std::fmt::Debug for HttpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpMetrics").finish_non_exhaustive()
    }
}

impl HttpMetrics {
    /// Counts one answered request.
    pub fn observe(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(BUCKETS.len());
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let stats = routes
            .entry((route.to_owned(), method.to_owned()))
            .or_default();
        *stats.by_status.entry(status).or_default() += 1;
        stats.buckets[slot] += 1;
        stats.sum_seconds += seconds;
        stats.count += 1;
    }
}

impl PrometheusText for HttpMetrics {
    fn render_prometheus(&self) -> String {
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        family(
            &mut out,
            "eidca_http_requests_total",
            "counter",
            "HTTP requests answered, by route pattern, method and status.",
        );
        for ((route, method), stats) in routes.iter() {
            for (status, n) in &stats.by_status {
                let _ = writeln!(
                    out,
                    "eidca_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        family(
            &mut out,
            "eidca_http_request_duration_seconds",
            "histogram",
            "Time from request to response head, by route pattern and method.",
        );
        for ((route, method), stats) in routes.iter() {
            let labels = format!("route=\"{}\",method=\"{method}\"", escape(route));
            let mut cumulative = 0;
            for (le, n) in BUCKETS.iter().zip(stats.buckets.iter()) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "eidca_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "eidca_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                stats.count
            );
            let _ = writeln!(
                out,
                "eidca_http_request_duration_seconds_sum{{{labels}}} {}",
                stats.sum_seconds
            );
            let _ = writeln!(
                out,
                "eidca_http_request_duration_seconds_count{{{labels}}} {}",
                stats.count
            );
        }
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What the store says: certificates by status, newest CRLs.
fn store_metrics(app: &App) -> Result<String, crate::authority::AuthorityError> {
    let authority = &app.authority;
    let now = authority.now();
    let figures = authority.store_figures()?;
    let counts = figures.certificates_by_status;
    let latest = [figures.last_full, figures.last_delta];
    let mut out = String::new();
    family(
        &mut out,
        "eidca_certificates",
        "gauge",
        "Certificates by stored status (expired ones included).",
    );
    for status in ["good", "suspended", "revoked"] {
        let n = counts
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "eidca_certificates{{status=\"{status}\"}} {n}");
    }
    let published: Vec<_> = latest.into_iter().flatten().collect();
    family(
        &mut out,
        "eidca_crl_number",
        "gauge",
        "Number of the newest published CRL, by kind.",
    );
    for crl in &published {
        let _ = writeln!(
            out,
            "eidca_crl_number{{kind=\"{}\"}} {}",
            crl.kind.name(),
            crl.number
        );
    }
    family(
        &mut out,
        "eidca_crl_age_seconds",
        "gauge",
        "Seconds since the thisUpdate of the newest CRL, by kind.",
    );
    for crl in &published {
        let _ = writeln!(
            out,
            "eidca_crl_age_seconds{{kind=\"{}\"}} {}",
            crl.kind.name(),
            (now - crl.this_update).whole_seconds()
        );
    }
    family(
        &mut out,
        "eidca_crl_next_update_seconds",
        "gauge",
        "Seconds until the nextUpdate of the newest CRL (negative: overdue), by kind.",
    );
    for crl in &published {
        let _ = writeln!(
            out,
            "eidca_crl_next_update_seconds{{kind=\"{}\"}} {}",
            crl.kind.name(),
            (crl.next_update - now).whole_seconds()
        );
    }
    Ok(out)
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
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
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
