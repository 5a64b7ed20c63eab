//! OCSP over HTTP ([RFC 6960 Appendix A.1](https://www.rfc-editor.org/rfc/rfc6960#appendix-A.1),
//! [RFC 5019 §5](https://www.rfc-editor.org/rfc/rfc5019#section-5) and
//! [§6](https://www.rfc-editor.org/rfc/rfc5019#section-6)): `POST /ocsp` with a DER
//! body, `GET /ocsp/{base64 DER}`, answers `application/ocsp-response`.
//!
//! Every outcome is an OCSPResponse: OCSP error statuses travel with HTTP
//! 200 as RFC 6960 intends, except a body over the size limit (413). Caching
//! headers go on successful answers without a nonce; everything else is
//! `no-cache`.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONNECTION, CONTENT_TYPE, ETAG, EXPIRES, HeaderMap, HeaderValue, LAST_MODIFIED,
};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::post;
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use time::OffsetDateTime;

use super::App;
use super::caching;
use super::connections::{self, Cut, Shortcut};
use super::metrics::PrometheusText;
use crate::ocsp::cache::{Rendered, SignedResponse};
use crate::ocsp::response::ResponseStatus;
use crate::ocsp::{Reply, Responder};

/// The largest request accepted. A request with the configured maximum of
/// CertIDs (about 100 octets each) and a signature with a certificate chain
/// fits easily; anything bigger is not an OCSP request.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The longest GET path answered (`/ocsp/` and the encoded request); a
/// longer one is `malformedRequest`. It is below hyper's own limit on a
/// request target (65,534 octets, refused with an empty 414 before any
/// service runs), and [`OVER_LONG_GET`] cuts the request line of any longer
/// OCSP GET to just over it: so every over-long OCSP GET gets this
/// handler's `malformedRequest`, while other over-long paths keep hyper's
/// 414. (RFC 5019 §5 GETs are under 255 octets; 60 KiB is generous.)
pub const MAX_GET_PATH: usize = 60 * 1024;

/// Request lines of OCSP GETs, cut by `connections` once they are longer
/// than the method, a space and [`MAX_GET_PATH`] octets.
pub const OVER_LONG_GET: Cut = Cut {
    starts_with: b"GET /ocsp/",
    keep: "GET ".len() + MAX_GET_PATH + 1,
};

/// How long a client may take to send a request body once its headers are
/// in; a stalled upload then gets `malformedRequest` and frees the task.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

const OCSP_RESPONSE: HeaderValue = HeaderValue::from_static("application/ocsp-response");
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");

/// Standard base64, padding optional: RFC 5019 §5 clients pad, some
/// others strip the `=` along with URL-encoding trouble.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// OCSP GETs and POSTs, taken ahead of the router (`connections::serve`):
/// at tens of thousands of answers a second, route matching, path-parameter
/// decoding and the request extensions the router fills cost a tenth of a
/// cached answer. The same handlers stay in the router ([`routes`]), which
/// answers every other method on these paths (HEAD, 405 with `Allow`), so
/// a request gets the same answer either way.
#[expect(
    clippy::result_large_err,
    reason = "a declined request moves back whole; boxing it would allocate per request"
)]
pub fn shortcut(
    app: Arc<App>,
) -> impl Fn(connections::Request) -> Result<Shortcut, connections::Request>
+ Clone
+ Send
+ Sync
+ 'static {
    move |request| {
        let path = request.uri().path();
        let root = path == "/ocsp" || path == "/ocsp/";
        let method = request.method();
        if method == Method::POST && root {
            let body = Body::new(request.into_body());
            Ok(Box::pin(post_request(State(Arc::clone(&app)), body)))
        } else if method == Method::GET && (root || path.starts_with("/ocsp/")) {
            let request = request.map(Body::new);
            Ok(Box::pin(get_request(State(Arc::clone(&app)), request)))
        } else {
            Err(request)
        }
    }
}

/// The OCSP routes, merged into the service's router.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/ocsp", post(post_request).get(get_request))
        .route("/ocsp/", post(post_request).get(get_request))
        .route("/ocsp/{*request}", axum::routing::get(get_request))
}

impl PrometheusText for Responder {
    fn render_prometheus(&self) -> String {
        Responder::render_prometheus(self)
    }
}

/// `POST /ocsp`: the body is the DER request.
async fn post_request(State(app): State<Arc<App>>, body: Body) -> Response {
    let now = app.authority.now();
    let limited = Limited::new(body, MAX_REQUEST_BYTES);
    match tokio::time::timeout(BODY_READ_TIMEOUT, limited.collect()).await {
        Ok(Ok(collected)) => {
            let reply = app.ocsp.respond_bounded(&collected.to_bytes(), now).await;
            http_response(reply, StatusCode::OK, None, now)
        }
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            refuse_unread_body(&app, StatusCode::PAYLOAD_TOO_LARGE, now)
        }
        // The client went away or stalled mid-body.
        Ok(Err(_)) | Err(_) => refuse_unread_body(&app, StatusCode::OK, now),
    }
}

/// `malformedRequest` for a request whose body was not read to its end.
/// The connection cannot carry another request after it, so the answer
/// says so (RFC 9112 §9.6) rather than let a client reuse it and fail.
fn refuse_unread_body(app: &App, status: StatusCode, now: OffsetDateTime) -> Response {
    let reply = app.ocsp.refuse(ResponseStatus::MalformedRequest);
    let mut response = http_response(reply, status, None, now);
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// `GET /ocsp/{request}`: the request is base64 in the path, URL-encoded or
/// not (RFC 6960 Appendix A.1), with or without a trailing `/`.
async fn get_request(State(app): State<Arc<App>>, request: Request) -> Response {
    let now = app.authority.now();
    let path = request.uri().path();
    let encoded = path.strip_prefix("/ocsp").unwrap_or_default();
    let encoded = encoded.strip_prefix('/').unwrap_or(encoded);
    let decoded = match path.len() {
        n if n > MAX_GET_PATH => None,
        _ => decode_get_path(encoded),
    };
    let reply = match decoded {
        Some(der) => app.ocsp.respond_bounded(&der, now).await,
        None => app.ocsp.refuse(ResponseStatus::MalformedRequest),
    };
    // A conditional request is answered by GET and HEAD only (RFC 9110 §13.1.2).
    let method = request.method();
    let conditional =
        (method == Method::GET || method == Method::HEAD).then_some(request.headers());
    http_response(reply, StatusCode::OK, conditional, now)
}

/// The DER request in a GET path, or `None` if it is not base64 of a
/// plausible size.
fn decode_get_path(encoded: &str) -> Option<Vec<u8>> {
    if encoded.is_empty() || encoded.len() > MAX_GET_PATH {
        return None;
    }
    // Borrowed unless there is something to decode (the usual case, as
    // clients rarely URL-encode).
    let mut text: Cow<'_, [u8]> = if encoded.contains('%') {
        percent_encoding::percent_decode_str(encoded).into()
    } else {
        Cow::Borrowed(encoded.as_bytes())
    };
    // A `+` that went through form encoding arrives as a space.
    if text.contains(&b' ') {
        for byte in text.to_mut().iter_mut().filter(|b| **b == b' ') {
            *byte = b'+';
        }
    }
    // `/` is a base64 digit, so a trailing slash is stripped only if the
    // text does not decode with it.
    BASE64.decode(&text).ok().or_else(|| {
        let trimmed = text.strip_suffix(b"/")?;
        BASE64.decode(trimmed).ok()
    })
}

/// The HTTP response for a reply. `conditional` holds the request headers
/// when `If-None-Match` may turn the answer into a 304.
fn http_response(
    reply: Reply,
    status: StatusCode,
    conditional: Option<&HeaderMap>,
    now: OffsetDateTime,
) -> Response {
    let mut headers = HeaderMap::with_capacity(6);
    headers.insert(CONTENT_TYPE, OCSP_RESPONSE);
    let Reply::Cacheable(signed) = &reply else {
        headers.insert(CACHE_CONTROL, NO_CACHE);
        return response(status, headers, Body::from(reply.der().clone()));
    };
    let max_age = caching::max_age(signed.next_update, now);
    let cache_control = format!("max-age={max_age}, public, no-transform, must-revalidate");
    let rendered = rendered(signed);
    for (name, value) in [
        (CACHE_CONTROL, Bytes::from(cache_control)),
        (LAST_MODIFIED, rendered.this_update.clone()),
        (EXPIRES, rendered.next_update.clone()),
        (ETAG, rendered.identity.clone()),
    ] {
        // Built from digits and ASCII only; the check is for form's sake.
        if let Ok(value) = HeaderValue::from_maybe_shared(value) {
            headers.insert(name, value);
        }
    }
    let current =
        conditional.and_then(|request| caching::if_none_match(request, &rendered.identity));
    if current == Some(true) {
        // A 304 has no content, so no Content-Type (RFC 9110 §15.4.5).
        headers.remove(CONTENT_TYPE);
        return response(StatusCode::NOT_MODIFIED, headers, Body::empty());
    }
    response(status, headers, Body::from(signed.der.clone()))
}

/// The RFC 5019 §6.2 validators of a signed response, rendered on its
/// first answer and shared by every later one.
fn rendered(signed: &SignedResponse) -> &Rendered {
    signed.rendered.get_or_init(|| Rendered {
        identity: caching::strong_etag(&signed.der).into(),
        this_update: caching::http_date(signed.this_update).into(),
        next_update: caching::http_date(signed.next_update).into(),
    })
}

/// A response from its parts, built in place: the tuple form's
/// `IntoResponse` would copy every header into a second map.
fn response(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_paths_decode_with_or_without_url_encoding_padding_and_slash() {
        let der = vec![0x30, 0x03, 0xfb, 0xff, 0x3e];
        let plain = base64::engine::general_purpose::STANDARD.encode(&der);
        assert_eq!(plain, "MAP7/z4=");
        for path in [
            "MAP7/z4=",
            "MAP7/z4=/",
            "MAP7%2Fz4%3D",
            "MAP7%2fz4%3d/",
            "MAP7/z4",
        ] {
            assert_eq!(decode_get_path(path), Some(der.clone()), "{path}");
        }
        assert_eq!(decode_get_path("MAP7 z4="), decode_get_path("MAP7+z4="));
        for bad in ["", "!!!!", "%zz", "M"] {
            assert_eq!(decode_get_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn over_long_paths_are_refused_and_cut_lines_stay_over_the_limit_and_under_hypers() {
        let at_limit = "A".repeat(MAX_GET_PATH);
        assert!(decode_get_path(&at_limit).is_some());
        assert_eq!(decode_get_path(&format!("{at_limit}AAAA")), None);
        // What the cut leaves of the path is over the limit; what hyper
        // then sees (with up to 16 octets of line end) is within its own.
        let hyper_max_target = 65_534;
        assert!(OVER_LONG_GET.keep - "GET ".len() > MAX_GET_PATH);
        assert!(OVER_LONG_GET.keep + 16 < hyper_max_target);
    }

    #[test]
    fn a_trailing_slash_that_is_a_base64_digit_is_kept() {
        // 0xff 0xff 0xff encodes as "////".
        assert_eq!(decode_get_path("////"), Some(vec![0xff; 3]));
        assert_eq!(decode_get_path("/////"), Some(vec![0xff; 3]));
    }
}
