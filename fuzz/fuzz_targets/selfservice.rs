//! The self-service POSTs through the real router: any headers and any
//! form or JSON body get an answer below 500, never a panic.
//!
//! Input: the first byte picks `/self-service/suspend` (even) or
//! `/self-service/resume` (odd). Then come header lines `name: value` up to
//! the first empty line, then the body (without an empty line, everything
//! is body). Lines that are no valid header are skipped; `x-fuzz-peer: <ip>`
//! is not sent but becomes the TCP peer address the lock-outs count
//! against. In header values and the body, `$NONCE` and `$TOKEN` stand for
//! the cookie value and form token of a `GET /self-service` made by the
//! fixture, so that inputs get past the CSRF check; the fixture's card
//! TP03000001 belongs to subscriber A800000014 (`common.rs`).
#![no_main]

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::header::{HeaderName, HeaderValue};
use axum::http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

/// The pseudo-header that sets the client address.
const PEER: &str = "x-fuzz-peer";

fuzz_target!(init: common::init(), |data: &[u8]| {
    let [route, rest @ ..] = data else { return };
    let path = if route % 2 == 0 { "/self-service/suspend" } else { "/self-service/resume" };
    let (head, body) = match find(rest, b"\n\n") {
        Some(at) => (&rest[..at], &rest[at + 2..]),
        None => (&[][..], rest),
    };
    let form = common::form_credentials();
    let expand = |bytes: &[u8]| replace(&replace(bytes, b"$NONCE", form.nonce.as_bytes()), b"$TOKEN", form.token.as_bytes());
    let mut request = Request::post(path).body(Body::from(expand(body))).expect("request");
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        let value = expand(line[colon + 1..].trim_ascii());
        let Ok(name) = HeaderName::from_bytes(line[..colon].trim_ascii()) else { continue };
        if name == PEER {
            if let Some(ip) = std::str::from_utf8(&value).ok().and_then(|v| v.parse::<IpAddr>().ok()) {
                request.extensions_mut().insert(ConnectInfo(SocketAddr::new(ip, 40000)));
            }
        } else if let Ok(value) = HeaderValue::from_bytes(&value) {
            request.headers_mut().append(name, value);
        }
    }
    let response = common::send(request);
    assert!(
        response.status() < StatusCode::INTERNAL_SERVER_ERROR,
        "{} for {path} with {:?}",
        response.status(),
        String::from_utf8_lossy(rest)
    );
});

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = find(rest, from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}
