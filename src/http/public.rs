//! The public endpoints of SPEC §7, no authentication: the CRLs (DER,
//! `application/pkix-crl`, RFC 5280 §5 and the HTTP retrieval of RFC 2585),
//! the issuing CA certificate (the caIssuers URL), liveness and metrics.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::App;
use super::blocking::blocking;
use super::caching::Freshness;
use super::metrics;
use super::problem::ApiError;
use super::request::PathParam;
use crate::authority::CrlFile;
use crate::revocation::{CrlKind, CrlSummary};

/// How long caches may keep the issuing CA certificate.
const CA_CERT_MAX_AGE_S: u32 = 24 * 3600;

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/crl/{file}", get(crl))
        .route("/ca/issuing-ca.crt", get(issuing_ca))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::render))
}

/// The CRL a `/crl/{file}` names: `full.crl`, `delta.crl` or `<decimal number>.crl`.
fn parse_crl_file(file: &str) -> Option<CrlFile> {
    match file.strip_suffix(".crl")? {
        "full" => Some(CrlFile::Latest(CrlKind::Full)),
        "delta" => Some(CrlFile::Latest(CrlKind::Delta)),
        digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            digits.parse().ok().map(CrlFile::Number)
        }
        _ => None,
    }
}

/// `GET /crl/full.crl`, `/crl/delta.crl`, `/crl/{number}.crl`.
async fn crl(
    State(app): State<Arc<App>>,
    PathParam(file): PathParam,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    let which = parse_crl_file(&file)
        .ok_or_else(|| ApiError::not_found("CRLs are full.crl, delta.crl or <number>.crl"))?;
    let found = blocking(&app, move |authority| authority.crl_file(which)).await?;
    let (summary, der) =
        found.ok_or_else(|| ApiError::not_found("no such CRL has been published"))?;
    let now = app.authority.now();
    Ok(crl_freshness(&summary).respond(&request, now, "application/pkix-crl", der))
}

/// A CRL number is never reused, and thisUpdate pins the signing.
fn crl_freshness(summary: &CrlSummary) -> Freshness {
    Freshness {
        etag: format!(
            "\"crl-{}-{}\"",
            summary.number,
            summary.this_update.unix_timestamp()
        ),
        last_modified: summary.this_update,
        expires: summary.next_update,
    }
}

/// `GET /ca/issuing-ca.crt`: DER, as RFC 5280 §4.2.2.1 asks of caIssuers.
async fn issuing_ca(State(app): State<Arc<App>>) -> Response {
    let cache = format!("public, max-age={CA_CERT_MAX_AGE_S}");
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pkix-cert"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_str(&cache).unwrap_or(HeaderValue::from_static("no-cache")),
            ),
        ],
        app.authority.issuing_ca().cert.der.clone(),
    )
        .into_response()
}

/// `GET /healthz`: 200 `ok` while every CA key can sign; 503 naming each
/// key that cannot (SPEC §11), in plain text for monitors and operators.
async fn healthz(State(app): State<Arc<App>>) -> Response {
    let probe = Arc::clone(&app);
    let failures = tokio::task::spawn_blocking(move || {
        [&probe.authority.issuing_ca().signer, probe.ocsp.key()]
            .into_iter()
            .filter_map(|signer| {
                signer
                    .health()
                    .err()
                    .map(|why| format!("{}: {why}\n", signer.setting()))
            })
            .collect::<String>()
    })
    .await;
    let (status, body) = match failures {
        Ok(failures) if failures.is_empty() => (StatusCode::OK, "ok\n".to_owned()),
        Ok(failures) => (StatusCode::SERVICE_UNAVAILABLE, failures),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("health probe failed: {e}\n"),
        ),
    };
    let plain = HeaderValue::from_static("text/plain; charset=utf-8");
    (status, [(header::CONTENT_TYPE, plain)], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crl_file_names() {
        assert_eq!(
            parse_crl_file("full.crl"),
            Some(CrlFile::Latest(CrlKind::Full))
        );
        assert_eq!(
            parse_crl_file("delta.crl"),
            Some(CrlFile::Latest(CrlKind::Delta))
        );
        assert_eq!(parse_crl_file("42.crl"), Some(CrlFile::Number(42)));
        for bad in [
            "42",
            ".crl",
            "-1.crl",
            "+1.crl",
            "x.crl",
            "99999999999999999999999.crl",
        ] {
            assert_eq!(parse_crl_file(bad), None, "{bad}");
        }
    }
}
