//! The HTTP service: router, RA API, public endpoints.

pub mod selfservice;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::authority::{Authority, StartError, SystemClock};
use crate::config::Config;

/// Why the service stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Shared state of every handler.
#[derive(Debug)]
pub struct App {
    pub authority: Arc<Authority>,
}

/// The router with every route.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(selfservice::routes())
        .with_state(app)
}

/// Runs the service until SIGINT/SIGTERM.
pub fn serve(config: Config) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listen = config.listen.clone();
        let authority = Arc::new(Authority::open(config, Arc::new(SystemClock))?);
        if let Err(e) = crate::publisher::sync_publish_dir(&authority) {
            tracing::error!(error = %e, "cannot write the publish directory");
        }
        let publisher = tokio::spawn(crate::publisher::run(authority.clone()));
        let app = Arc::new(App { authority });
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|source| ServeError::Listen {
                addr: listen.clone(),
                source,
            })?;
        // Tests start the server on port 0 and read the bound address from this line.
        let bound = listener.local_addr()?;
        eprintln!("eidca listening on http://{bound}");
        axum::serve(
            listener,
            router(app).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await?;
        publisher.abort();
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
