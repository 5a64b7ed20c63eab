//! The RA API's JSON bodies through the real router: any bytes on any POST
//! route get a 2xx or a 4xx problem, never a 5xx and never a panic.
//!
//! Input: first byte picks the route, second the Content-Type, the rest is
//! the body. The App runs on a throw-away CA and store made once.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const ROUTES: [&str; 8] = [
    "/api/v1/certificates",
    "/api/v1/certificates/4000000000000001/suspend",
    "/api/v1/certificates/4000000000000001/resume",
    "/api/v1/certificates/4000000000000001/revoke",
    "/api/v1/cards/TP03000001/suspend",
    "/api/v1/cards/TP03000001/resume",
    "/api/v1/cards/TP03000001/revoke",
    "/api/v1/crls",
];

struct Fixture {
    _dir: tempfile::TempDir,
    app: Arc<eidca::http::App>,
    runtime: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        eidca::devkeys::generate(&dir.path().join("keys"), time::OffsetDateTime::now_utc()).expect("keys");
        let config = include_str!("../../ca-config/eidca.toml").replace("../keys-dev/", "keys/");
        let path = dir.path().join("eidca.toml");
        std::fs::write(&path, config).expect("config");
        let source = eidca::config::ConfigSource { path, listen: None, data_dir: dir.path().join("data") };
        let config = eidca::config::Config::load_with_env(&source, std::iter::empty()).expect("load");
        let authority = eidca::authority::Authority::open(config, Arc::new(eidca::authority::SystemClock)).expect("open");
        let app = Arc::new(eidca::http::App::new(Arc::new(authority)));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        Fixture { _dir: dir, app, runtime }
    })
}

fuzz_target!(|data: &[u8]| {
    let [route, content_type, body @ ..] = data else { return };
    let fixture = fixture();
    let request = Request::post(ROUTES[*route as usize % ROUTES.len()])
        .header("authorization", "Bearer dev-officer-token")
        .header("content-type", if content_type % 4 == 0 { "text/plain" } else { "application/json" })
        .body(Body::from(body.to_vec()))
        .expect("request");
    let router = eidca::http::router(fixture.app.clone());
    let response = fixture.runtime.block_on(router.oneshot(request)).expect("infallible");
    assert!(
        response.status() < StatusCode::INTERNAL_SERVER_ERROR,
        "{} for body {:?}",
        response.status(),
        String::from_utf8_lossy(body)
    );
});
