//! The throw-away CA the HTTP fuzz targets send requests to: a fresh
//! development hierarchy, the development config, a store with one issued
//! certificate, and the router, all made once per fuzzing process in the
//! target's `init` (so that none of it counts as an input's coverage).
//!
//! Each input then costs one `oneshot` through a clone of that router: no
//! server, no socket, no router build. The directory is on `/dev/shm` when
//! the machine has one: the store commits with `synchronous=FULL`, and an
//! fsync there is free, where on a disk it would cap state-changing inputs
//! at a few hundred a second. It is removed when the fuzzer exits normally
//! (not after a crash, which leaves it for inspection).
#![allow(dead_code)] // each target uses its own part of this module

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use tower::ServiceExt;

/// The subscriber and card of the certificate the fixture issues (the same
/// pair as `seeds/api_json/seed-0` and the `selfservice` seeds).
pub const SUBSCRIBER_CODE: &str = "A800000014";
pub const CARD_NUMBER: &str = "TP03000001";

/// The development config's officer token.
pub const OFFICER_TOKEN: &str = "Bearer dev-officer-token";

/// A form token must be younger than two hours (`csrf::TOKEN_LIFETIME`);
/// a long run fetches a new one well before.
const FORM_REFRESH: Duration = Duration::from_secs(3600);

struct Fixture {
    /// Built once: building it (the OpenAPI document above all) costs far
    /// more than answering a request. A clone shares the routes and the
    /// concurrency limit, as the server's connections do.
    router: axum::Router,
    runtime: tokio::runtime::Runtime,
    /// The serial (hex) of the certificate issued for [`CARD_NUMBER`].
    serial: String,
    form: Mutex<(Instant, FormCredentials)>,
}

/// What `GET /self-service` hands a browser: the nonce cookie's value and
/// the form token bound to it.
#[derive(Debug, Clone)]
pub struct FormCredentials {
    pub nonce: String,
    pub token: String,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();
static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();

/// Makes the fixture; call from the target's `init`.
pub fn init() {
    fixture();
}

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let dir = scratch_dir();
        eidca::devkeys::generate(&dir.join("keys"), time::OffsetDateTime::now_utc()).expect("keys");
        let config = include_str!("../../ca-config/eidca.toml").replace("../keys-dev/", "keys/");
        let path = dir.join("eidca.toml");
        std::fs::write(&path, config).expect("config");
        let source = eidca::config::ConfigSource {
            path,
            listen: None,
            data_dir: dir.join("data"),
        };
        let config = eidca::config::Config::load_with_env(&source, overrides()).expect("load");
        let authority = Arc::new(
            eidca::authority::Authority::open(config, Arc::new(eidca::clock::SystemClock))
                .expect("open"),
        );
        let ocsp = eidca::ocsp::Responder::open(
            authority.config(),
            &authority.issuing_ca().cert,
            &authority.reader(),
        )
        .expect("responder");
        let app = Arc::new(eidca::http::App::new(authority, Arc::new(ocsp)));
        let router = eidca::http::router(app).expect("router");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let serial = issue(&router, &runtime);
        let form = fetch_form(&router, &runtime);
        Fixture {
            router,
            runtime,
            serial,
            form: Mutex::new((Instant::now(), form)),
        }
    })
}

/// Self-service lock-outs as loose as the config allows (1000 wrong pairs
/// within one second, locked for one second): with the development's 5 in
/// 15 minutes, the first few wrong pairs would lock the fixture's card and
/// every input after them would explore nothing but the 429.
fn overrides() -> Vec<(String, String)> {
    [
        ("EIDCA_SELFSERVICE_MAX_FAILURES", "1000"),
        ("EIDCA_SELFSERVICE_FAILURE_WINDOW", "1s"),
        ("EIDCA_SELFSERVICE_LOCKOUT", "1s"),
        ("EIDCA_SELFSERVICE_SUSPEND_CARD_CEILING", "1000000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A private directory, on `/dev/shm` when there is one, removed at exit.
fn scratch_dir() -> std::path::PathBuf {
    let shm = Path::new("/dev/shm");
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix("eidca-fuzz-");
        b
    };
    let dir = if shm.is_dir() {
        builder.tempdir_in(shm)
    } else {
        builder.tempdir()
    }
    .expect("tempdir");
    let path = dir.keep();
    DIR.set(path.clone()).expect("one fixture per process");
    extern "C" fn remove_dir() {
        if let Some(dir) = DIR.get() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    // SAFETY: registers a plain function with the C runtime; it runs once,
    // at `exit` (libFuzzer exits that way when a run ends normally).
    unsafe { libc::atexit(remove_dir) };
    path
}

/// Issues the fixture's certificate through the RA API; returns its serial.
fn issue(router: &axum::Router, runtime: &tokio::runtime::Runtime) -> String {
    let body = serde_json::json!({
        "subscriber": { "code": SUBSCRIBER_CODE, "name": "Fuzz Fixture" },
        "card_number": CARD_NUMBER,
        "profile": "person-sign",
        "csr": include_str!("../seeds/csr/p256.csr"),
    });
    let request = Request::post("/api/v1/certificates")
        .header(header::AUTHORIZATION, OFFICER_TOKEN)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let response = runtime
        .block_on(router.clone().oneshot(request))
        .expect("infallible");
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "the fixture's certificate"
    );
    let record: serde_json::Value =
        serde_json::from_slice(&body_bytes(runtime, response)).expect("record");
    record["serial"].as_str().expect("serial").to_owned()
}

/// `GET /self-service`, as a browser loads it: the cookie and the token.
fn fetch_form(router: &axum::Router, runtime: &tokio::runtime::Runtime) -> FormCredentials {
    let request = Request::get("/self-service")
        .body(Body::empty())
        .expect("request");
    let response = runtime
        .block_on(router.clone().oneshot(request))
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK, "the self-service page");
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .expect("cookie")
        .to_owned();
    let nonce = cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, value)| value.to_owned())
        .expect("the nonce cookie");
    let page = String::from_utf8(body_bytes(runtime, response)).expect("the page is text");
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker).expect("the form's token") + marker.len();
    let token = page[start..].split('"').next().expect("token").to_owned();
    FormCredentials { nonce, token }
}

fn body_bytes(runtime: &tokio::runtime::Runtime, response: Response<Body>) -> Vec<u8> {
    runtime
        .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
        .expect("body")
        .to_vec()
}

/// Sends one request through the real router.
pub fn send(request: Request<Body>) -> Response<Body> {
    let fixture = fixture();
    fixture
        .runtime
        .block_on(fixture.router.clone().oneshot(request))
        .expect("the router is infallible")
}

/// The serial of the fixture's certificate (lowercase hex).
pub fn serial() -> &'static str {
    &fixture().serial
}

/// A valid self-service cookie value and form token, fetched again when
/// the last ones are an hour old.
pub fn form_credentials() -> FormCredentials {
    let fixture = fixture();
    let mut form = fixture.form.lock().expect("not poisoned");
    if form.0.elapsed() > FORM_REFRESH {
        *form = (
            Instant::now(),
            fetch_form(&fixture.router, &fixture.runtime),
        );
    }
    form.1.clone()
}
