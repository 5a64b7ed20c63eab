//! What one client may hold (SPEC §16 "Slow clients hold nothing"), for
//! the RA API, the CRL routes, self-service, health and metrics:
//!
//! 1. A request's body is read whole before the request counts as in
//!    flight, within [`BODY_READ_TIMEOUT`] of its head (as hyper gives the
//!    head [`HEADER_READ_TIMEOUT`](super::connections::HEADER_READ_TIMEOUT))
//!    and up to one byte more than the largest body any route accepts, so
//!    that each route still answers an over-long body in its own format. A
//!    client that trickles its body holds its own connection, nothing else,
//!    and is answered 408 at the deadline.
//! 2. At most `max_in_flight` requests are then handled at once; the rest
//!    wait for a slot.
//! 3. No request waits and runs longer than `timeout` together: the clock
//!    starts before the wait for a slot, so a queued request gives up with
//!    503 instead of waiting behind the slow ones for ever.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use super::problem::{ApiError, Problem};
use super::request::BODY_LIMIT;

/// How long a client has to send a request's body, counted from its head.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The most read ahead of any route: one byte over the largest body a route
/// accepts tells that route the body is too long.
const READ_AHEAD: usize = BODY_LIMIT + 1;

/// `routes` with the three limits above, outermost first.
pub fn layer<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    max_in_flight: usize,
    timeout: Duration,
) -> Router<S> {
    routes
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            max_in_flight,
        ))
        .layer(middleware::from_fn(move |request, next| {
            within(timeout, request, next)
        }))
        .layer(middleware::from_fn(read_body_first))
}

/// Reads the body (up to [`READ_AHEAD`] bytes) within [`BODY_READ_TIMEOUT`],
/// then hands the request on with the bytes read.
async fn read_body_first(request: Request, next: Next) -> Response {
    if http_body::Body::is_end_stream(request.body()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(BODY_READ_TIMEOUT, read_ahead(body)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(_)) => closing(ApiError::bad_request("the request body could not be read")),
        Err(_) => closing(ApiError::new(
            Problem::RequestTimeout,
            format!(
                "the request body did not arrive within {} s",
                BODY_READ_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// The body's first [`READ_AHEAD`] bytes, or all of it if shorter.
async fn read_ahead(mut body: Body) -> Result<Bytes, axum::Error> {
    let mut bytes = Vec::new();
    while bytes.len() < READ_AHEAD {
        let Some(frame) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame?.into_data() {
            bytes.extend_from_slice(&data);
        }
    }
    bytes.truncate(READ_AHEAD);
    Ok(bytes.into())
}

/// The request's answer, or 503 once `timeout` has passed since it arrived
/// (its wait for a slot included). A change already handed to the store
/// still commits; a retry with the same `Idempotency-Key` then replays it.
async fn within(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let mut response = ApiError::new(
                Problem::Unavailable,
                "the service is too busy to answer in time; try again shortly",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}

/// An answer after which the connection closes: the rest of the body was
/// never read, so the connection cannot carry another request.
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use tower::ServiceExt;

    fn slow_routes() -> Router {
        Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    "late"
                }),
            )
            .route("/quick", get(|| async { "quick" }))
            .route(
                "/echo",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
    }

    async fn status_and_body(router: &Router, request: Request) -> (StatusCode, String) {
        let response = router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn get_request(path: &str) -> Request {
        Request::get(path).body(Body::empty()).expect("request")
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_waiting_for_a_slot_gives_up_with_503_within_the_timeout() {
        let router = layer(slow_routes(), 1, Duration::from_secs(30));
        let holder = tokio::spawn({
            let router = router.clone();
            async move { status_and_body(&router, get_request("/slow")).await }
        });
        tokio::task::yield_now().await;
        let started = tokio::time::Instant::now();
        let (status, body) = status_and_body(&router, get_request("/quick")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("urn:eidca:problem:unavailable"), "{body}");
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        // The slow one is cut at the same timeout; then the slot is free.
        assert_eq!(
            holder.await.expect("join").0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status_and_body(&router, get_request("/quick")).await,
            (StatusCode::OK, "quick".to_owned())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_does_not_arrive_in_time_is_408_and_holds_no_slot() {
        let router = layer(slow_routes(), 1, Duration::from_secs(30));
        let body = Body::new(OneByteThenSilence { sent: false });
        let trickle = tokio::spawn({
            let router = router.clone();
            let request = Request::post("/echo").body(body).expect("request");
            async move { status_and_body(&router, request).await }
        });
        tokio::task::yield_now().await;
        // The only slot is free while the body trickles in.
        assert_eq!(
            status_and_body(&router, get_request("/quick")).await,
            (StatusCode::OK, "quick".to_owned())
        );
        let (status, body) = trickle.await.expect("join");
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert!(body.contains("urn:eidca:problem:request-timeout"), "{body}");
    }

    /// A client that sends one byte of its body, then nothing.
    struct OneByteThenSilence {
        sent: bool,
    }

    impl http_body::Body for OneByteThenSilence {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            if self.sent {
                return std::task::Poll::Pending;
            }
            self.sent = true;
            std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(b"c")))))
        }
    }

    #[tokio::test]
    async fn bodies_reach_the_route_whole_or_one_byte_over_the_largest_limit() {
        let router = layer(slow_routes(), 1, Duration::from_secs(30));
        for (sent, seen) in [
            (0, 0),
            (10, 10),
            (BODY_LIMIT, BODY_LIMIT),
            (BODY_LIMIT * 3, READ_AHEAD),
        ] {
            let request = Request::post("/echo")
                .body(Body::from(vec![b'x'; sent]))
                .expect("request");
            assert_eq!(
                status_and_body(&router, request).await,
                (StatusCode::OK, seen.to_string()),
                "{sent}"
            );
        }
    }
}
