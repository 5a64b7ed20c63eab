//! The ceiling for `bench/ocsp-load.sh`: a trivial axum handler that answers
//! every GET or POST with the same 300-byte body, served by the same
//! connection loop (`http::connections::serve`) and runtime as `eidca serve`,
//! so the difference to the OCSP figures is the responder's own cost.
//!
//! ```sh
//! cargo run --release --example fixed_body -- 127.0.0.1:18081
//! ```

use axum::Router;
use axum::routing::get;

const BODY: &[u8; 300] = &[b'x'; 300];

fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        eprintln!("fixed_body listening on http://{}", listener.local_addr()?);
        let fixed = || async { &BODY[..] };
        let router = Router::new()
            .route("/", get(fixed).post(fixed))
            .route("/{*path}", get(fixed).post(fixed));
        eidca::http::connections::serve(listener, router, std::future::pending()).await;
        Ok(())
    })
}
