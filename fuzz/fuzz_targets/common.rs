//! The throw-away CA the HTTP fuzz targets send requests to: a fresh
//! development hierarchy, the development config and an empty store, made
//! once per fuzzing process.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, Response};
use tower::ServiceExt;

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
        let authority = Arc::new(
            eidca::authority::Authority::open(config, Arc::new(eidca::clock::SystemClock)).expect("open"),
        );
        let ocsp = eidca::ocsp::Responder::open(authority.config(), &authority.issuing_ca().cert, &authority.reader())
            .expect("responder");
        let app = Arc::new(eidca::http::App::new(authority, Arc::new(ocsp)));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        Fixture { _dir: dir, app, runtime }
    })
}

/// Sends one request through the real router.
pub fn send(request: Request<Body>) -> Response<Body> {
    let fixture = fixture();
    let router = eidca::http::router(fixture.app.clone()).expect("router");
    fixture.runtime.block_on(router.oneshot(request)).expect("the router is infallible")
}
