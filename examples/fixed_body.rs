//! The ceiling for `bench/ocsp-load.sh`: a trivial axum handler that answers
//! every GET or POST with the same 300-byte body, served by the same
//! connection loop (`http::connections::serve`) and runtime as `eidca serve`,
//! so the difference to the OCSP figures is the responder's own cost.
//!
//! `GET /ocsp-shaped` answers like a cached OCSP response instead: an
//! 890-byte body (a P-256 response with the responder certificate) and the
//! five headers of one, to tell the cost of that shape from the cost of
//! producing it.
//!
//! ```sh
//! cargo run --release --example fixed_body -- 127.0.0.1:18081
//! ```

use axum::Router;
use axum::routing::get;

const BODY: &[u8; 300] = &[b'x'; 300];
const OCSP_SIZED_BODY: &[u8; 890] = &[b'x'; 890];

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
        let ocsp_shaped = || async {
            let headers = [
                ("content-type", "application/ocsp-response"),
                (
                    "cache-control",
                    "max-age=599, public, no-transform, must-revalidate",
                ),
                ("last-modified", "Fri, 27 Nov 2026 02:20:32 GMT"),
                ("expires", "Fri, 27 Nov 2026 02:30:32 GMT"),
                ("etag", "\"dfbd07781236913cff2bc683134553f7\""),
            ];
            (headers, &OCSP_SIZED_BODY[..])
        };
        let router = Router::new()
            .route("/ocsp-shaped", get(ocsp_shaped))
            .route("/", get(fixed).post(fixed))
            .route("/{*path}", get(fixed).post(fixed));
        eidca::http::connections::serve(listener, router, no_shortcut, std::future::pending())
            .await;
        Ok(())
    })
}

/// Every request goes through the router: the ceiling has no OCSP shortcut.
#[expect(
    clippy::result_large_err,
    reason = "a declined request moves back whole, as eidca's own shortcut does"
)]
fn no_shortcut(
    request: eidca::http::connections::Request,
) -> Result<eidca::http::connections::Shortcut, eidca::http::connections::Request> {
    Err(request)
}
