//! `/ocsp` through the real router: any GET path or POST body gets an OCSP
//! answer or a 4xx, never a 5xx and never a panic. The first input byte
//! picks GET (path = the rest, as text) or POST (body = the rest).
#![no_main]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(init: common::init(), |data: &[u8]| {
    let [method, rest @ ..] = data else { return };
    let request = if method % 2 == 0 {
        let Ok(path) = std::str::from_utf8(rest) else { return };
        let Ok(request) = Request::get(format!("/ocsp/{path}")).body(Body::empty()) else { return };
        request
    } else {
        Request::post("/ocsp")
            .header("content-type", "application/ocsp-request")
            .body(Body::from(rest.to_vec()))
            .expect("request")
    };
    let response = common::send(request);
    assert!(response.status() < StatusCode::INTERNAL_SERVER_ERROR, "{}", response.status());
});
