//! Accepting HTTP/1.1 connections ([RFC 9112](https://www.rfc-editor.org/rfc/rfc9112),
//! persistent per §9.3, as RFC 5019 §5 clients use them), with limits that
//! keep a stalled client from costing the others anything.
//!
//! `axum::serve` sets no header-read timeout, so a client that connects and
//! sends nothing, or half a request, would hold its connection for ever
//! (the OpenSSL 3.0 responder even spins at 100 % CPU after one). Here
//! hyper closes any connection whose request head is not complete within
//! [`HEADER_READ_TIMEOUT`], including idle keep-alive connections; bodies
//! have their own deadline (`super::limits`, and the OCSP handlers').
//!
//! An OCSP GET whose request line is too long for hyper (which would answer
//! an empty 414 before any service runs) is cut short on its way in
//! (`request_lines`), so that the OCSP handler answers it `malformedRequest`
//! by its own limit ([`super::ocsp::MAX_GET_PATH`]); over-long targets
//! elsewhere keep hyper's 414, which is what HTTP says of them.

mod request_lines;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::ocsp::OVER_LONG_GET;
pub use request_lines::Cut;
use request_lines::CutRequestLines;

/// The answer to a request taken ahead of the router.
pub type Shortcut = Pin<Box<dyn Future<Output = Response> + Send>>;

/// Requests are `hyper::Request`s with their body as it arrives.
pub type Request = hyper::Request<Incoming>;

/// How long a client has to send a complete request head, counted from the
/// moment the server starts waiting for one.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long in-flight requests may finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Pause after a failed accept (e.g. out of file descriptors) so the loop
/// does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `shutdown` completes, then lets open
/// connections finish for a short grace period. Handlers can extract the
/// peer's address as `ConnectInfo<SocketAddr>`. `shortcut` sees every
/// request first and may answer it itself (returning the answer), without
/// the router's matching, extensions and layers; else it hands it back.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shortcut: impl Fn(Request) -> Result<Shortcut, Request> + Clone + Send + Sync + 'static,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Responses are written whole; waiting for more (Nagle) only adds latency.
        let _ = stream.set_nodelay(true);
        let (router, shortcut) = (router.clone(), shortcut.clone());
        let service = hyper::service::service_fn(move |request: Request| {
            let taken = shortcut(request);
            let router = router.clone();
            async move {
                match taken {
                    Ok(answer) => Ok::<_, Infallible>(answer.await),
                    Err(mut request) => {
                        // What `into_make_service_with_connect_info` would give handlers.
                        request.extensions_mut().insert(ConnectInfo(peer));
                        router.oneshot(request).await
                    }
                }
            }
        });
        let stream = CutRequestLines::new(stream, OVER_LONG_GET);
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period");
    }
}
