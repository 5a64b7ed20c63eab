//! The HTTP service: router, RA API, public endpoints.

pub mod connections;
pub mod ocsp;

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
    #[error(transparent)]
    Ocsp(#[from] crate::ocsp::ResponderError),
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
    pub authority: Authority,
    pub ocsp: crate::ocsp::Responder,
}

/// The router with every route.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(ocsp::routes())
        .with_state(app)
}

/// Runs the service until SIGINT/SIGTERM.
pub fn serve(config: Config) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listen = config.listen.clone();
        let authority = Authority::open(config, Arc::new(SystemClock))?;
        let ocsp = crate::ocsp::Responder::open(
            authority.config(),
            &authority.issuing_ca().cert,
            authority.store(),
        )?;
        let app = Arc::new(App { authority, ocsp });
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|source| ServeError::Listen {
                addr: listen.clone(),
                source,
            })?;
        // Tests start the server on port 0 and read the bound address from this line.
        let bound = listener.local_addr()?;
        eprintln!("eidca listening on http://{bound}");
        connections::serve(listener, router(app), shutdown_signal()).await;
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
