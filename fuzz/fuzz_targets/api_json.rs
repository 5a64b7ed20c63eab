//! The RA API's JSON bodies through the real router: any bytes on any POST
//! route get a 2xx or a 4xx problem, never a 5xx and never a panic.
//!
//! Input: first byte picks the route, second the Content-Type, the rest is
//! the body. The App runs on a throw-away CA and store made once, with one
//! certificate issued for card TP03000001, whose serial the certificate
//! routes name.
#![no_main]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

const ROUTES: [&str; 8] = [
    "/api/v1/certificates",
    "/api/v1/certificates/{serial}/suspend",
    "/api/v1/certificates/{serial}/resume",
    "/api/v1/certificates/{serial}/revoke",
    "/api/v1/cards/TP03000001/suspend",
    "/api/v1/cards/TP03000001/resume",
    "/api/v1/cards/TP03000001/revoke",
    "/api/v1/crls",
];

fuzz_target!(init: common::init(), |data: &[u8]| {
    let [route, content_type, body @ ..] = data else { return };
    let route = ROUTES[*route as usize % ROUTES.len()].replace("{serial}", common::serial());
    let request = Request::post(route)
        .header("authorization", common::OFFICER_TOKEN)
        .header("content-type", if content_type % 4 == 0 { "text/plain" } else { "application/json" })
        .body(Body::from(body.to_vec()))
        .expect("request");
    let response = common::send(request);
    assert!(
        response.status() < StatusCode::INTERNAL_SERVER_ERROR,
        "{} for body {:?}",
        response.status(),
        String::from_utf8_lossy(body)
    );
});
