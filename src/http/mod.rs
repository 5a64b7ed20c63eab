//! The HTTP service (SPEC §7): the RA API, the public CRL and CA endpoints,
//! liveness and metrics, behind one router with request ids, access logs
//! and metrics; graceful shutdown on SIGTERM/SIGINT.
//!
//! Where things are: `api` (RA routes and OpenAPI), `public` (CRLs, CA
//! certificate, health, metrics), `auth` (tokens and roles), `request`
//! (strict bodies, idempotency keys), `idempotency` (answer at most once),
//! `blocking` (use cases off the executor), `problem` (problem+json, for
//! the API and self-service), `caching` (ETag, Last-Modified, 304),
//! `metrics` (Prometheus text), `observe` (request ids, logs), `ocsp` (the
//! OCSP responder's GET and POST), `connections` (accepting connections,
//! with a header-read timeout).

pub mod api;
pub mod auth;
pub mod blocking;
pub mod caching;
pub mod idempotency;
pub mod limits;
pub mod metrics;
pub mod observe;
pub mod problem;
pub mod public;
pub mod request;

pub mod selfservice;

pub mod connections;
pub mod ocsp;

use std::sync::Arc;

use axum::Router;

use crate::authority::{Authority, StartError};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::ocsp::Responder;
use auth::Tokens;
use metrics::{HttpMetrics, PrometheusText};

/// Why the service stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Ocsp(#[from] crate::ocsp::ResponderError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot write the OpenAPI document: {0}")]
    OpenApi(serde_json::Error),
}

/// Shared state of every handler.
pub struct App {
    pub authority: Arc<Authority>,
    pub tokens: Tokens,
    pub http_metrics: Arc<HttpMetrics>,
    /// Other components' metric families, appended to `/metrics`.
    pub metric_sources: Vec<Arc<dyn PrometheusText>>,
    /// The OCSP responder (its metrics are one of the `metric_sources`).
    pub ocsp: Arc<Responder>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("authority", &self.authority)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl App {
    pub fn new(authority: Arc<Authority>, ocsp: Arc<Responder>) -> Self {
        let tokens = Tokens::new(&authority.config().tokens);
        Self {
            authority,
            tokens,
            http_metrics: Arc::default(),
            metric_sources: vec![Arc::clone(&ocsp) as Arc<dyn PrometheusText>],
            ocsp,
        }
    }
}

/// The router with every route.
pub fn router(app: Arc<App>) -> Result<Router, ServeError> {
    let routes = Router::new()
        .merge(api::router(&app).map_err(ServeError::OpenApi)?)
        .merge(public::router())
        .merge(selfservice::routes())
        .fallback(problem::no_such_route)
        .method_not_allowed_fallback(problem::method_not_allowed);
    // Abuse limits on the RA API, CRLs and self-service (`limits`): bodies
    // read first within their deadline, at most MAX_IN_FLIGHT requests
    // handled at once, and none waits and runs longer than REQUEST_TIMEOUT.
    // A change that times out is answered 503, never 2xx; a retry with the
    // same Idempotency-Key is safe. Observed outside them, so that their
    // 408s and 503s are logged and counted too.
    let limited = observe::layer(limits::layer(routes, MAX_IN_FLIGHT, REQUEST_TIMEOUT), &app);
    // OCSP is merged outside the observe layer and the limits: at tens of
    // thousands of answers a second, an access-log line, a shared metrics
    // lock, a timer and a shared semaphore per request would cost more than
    // the answer (BENCHMARKS.md). It counts in its own metrics, its handler
    // never waits on a writer, and the header-read timeout and its 64 KiB
    // body limit bound what a client can hold. Its GETs and POSTs do not even
    // reach the router (`ocsp::shortcut`); the routes answer the rest.
    Ok(limited.merge(ocsp::routes()).with_state(app))
}

/// Requests handled at once, all limited routes together.
pub const MAX_IN_FLIGHT: usize = 512;

/// The longest a request may take, from its headers to its answer.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs the service until SIGINT/SIGTERM: then stops accepting, lets the
/// requests in flight finish (their commits included) and closes the store.
pub fn serve(config: Config) -> Result<(), ServeError> {
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listen = config.listen.clone();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let authority = Arc::new(Authority::open(config, Arc::clone(&clock))?);
        let ocsp = Arc::new(Responder::open(
            authority.config(),
            &authority.issuing_ca().cert,
            &authority.reader(),
        )?);
        if let Err(e) = authority.republish_files() {
            tracing::error!(error = %e, "cannot write the publish directory");
        }
        let publisher = tokio::spawn(crate::publisher::run(authority.clone()));
        let refresher = tokio::spawn(crate::ocsp::refresh_forever(Arc::clone(&ocsp), clock));
        // Held here to the end, so that the store closes after everything
        // else: see below.
        let store_owner = Arc::clone(&authority);
        let app = Arc::new(App::new(authority, ocsp));
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|source| ServeError::Listen {
                addr: listen.clone(),
                source,
            })?;
        // Registered before the service says it listens, so that a signal
        // sent as soon as it does is a graceful stop, not the default death.
        let shutdown = shutdown_signal()?;
        // Tests start the server on port 0 and read the bound address from this line.
        let bound = listener.local_addr()?;
        eprintln!("eidca listening on http://{bound}");
        // Not axum::serve: it has no header-read timeout (see `connections`).
        let shortcut = ocsp::shortcut(Arc::clone(&app));
        connections::serve(listener, router(app)?, shortcut, shutdown).await;
        publisher.abort();
        refresher.abort();
        // Both hold the store or the responder; wait until they let go.
        let _ = tokio::join!(publisher, refresher);
        tracing::info!("requests finished; closing the store");
        // The last connection to close checkpoints the WAL and deletes it,
        // but only a read-write one can: so the responder's read-only
        // connections (gone with the router and the refresher) close
        // before the store's own, which close with the last handle on it.
        drop(store_owner);
        Ok::<_, ServeError>(())
    })?;
    // Dropping the runtime waits for blocking tasks (store writes) still running.
    drop(runtime);
    tracing::info!("stopped");
    Ok(())
}

/// Logs to stderr; `RUST_LOG` filters (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// SIGINT or SIGTERM, registered now: the future resolves on the first
/// one, however soon after this call it arrives.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! { _ = interrupt.recv() => {}, _ = terminate.recv() => {} }
        tracing::info!("shutdown signal received; no new connections");
    })
}
