//! What every request goes through: a request id (the client's
//! `X-Request-Id` if it is sane, else a fresh one; echoed in the answer), a
//! tracing span carrying it, one access log line, the HTTP metrics, and a
//! panic turned into a 500 problem instead of a dropped connection.
//!
//! Logged are the method, the route pattern, the status and the latency:
//! never headers (tokens), bodies (CSRs, notes) or query strings.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

use super::App;
use super::problem::ApiError;

pub const REQUEST_ID: &str = "x-request-id";

/// Wraps every route of `routes` (added before this call) in the layers above.
pub fn layer(routes: Router<Arc<App>>, app: &Arc<App>) -> Router<Arc<App>> {
    routes
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal(&"a handler panicked").into_response()
        }))
        .layer(middleware::from_fn_with_state(Arc::clone(app), observe))
}

async fn observe(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = super::metrics::method_label(request.method());
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane_id(v))
        .map_or_else(fresh_id, str::to_owned);
    let span = tracing::info_span!("request", id = %id, method = %method, route = %route);
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    app.http_metrics.observe(&route, method, status, elapsed);
    span.in_scope(|| {
        tracing::info!(
            status,
            micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            "answered"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Up to 64 characters of `[A-Za-z0-9._-]`: safe to log and to echo.
fn is_sane_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A process-unique id: a random prefix drawn at start-up and a counter.
fn fresh_id() -> String {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| {
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; 4];
        let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
        hex::encode(bytes)
    });
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_checked_and_fresh_ones_differ() {
        assert!(is_sane_id("abc-123_x.y"));
        assert!(!is_sane_id(""));
        assert!(!is_sane_id("has space"));
        assert!(!is_sane_id(&"a".repeat(65)));
        assert_ne!(fresh_id(), fresh_id());
        assert!(is_sane_id(&fresh_id()));
    }
}
