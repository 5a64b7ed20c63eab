//! The HTTP service of SPEC §7 over real HTTP: `eidca serve` on an
//! ephemeral port, one test per promise.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{KeyKind, Server, TestCa, http_client, make_csr, openssl_ok};
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const OFFICER: &str = "dev-officer-token";
const AUDITOR: &str = "dev-auditor-token";

/// A running service on a throw-away CA, and a client for it.
struct Ra {
    ca: TestCa,
    server: Server,
    http: Client,
}

impl Ra {
    fn start() -> Self {
        Self::start_with(&[])
    }

    fn start_with(env: &[(&str, &str)]) -> Self {
        let ca = TestCa::new();
        let server = ca.serve(env);
        Ra {
            ca,
            server,
            http: client(),
        }
    }

    /// Stops (SIGKILL) and starts the service again on the same data.
    fn restart_after_kill(self) -> Self {
        let Ra { ca, server, http } = self;
        server.kill();
        let server = ca.serve(&[]);
        Ra { ca, server, http }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    fn get(&self, path: &str, token: Option<&str>) -> Response {
        send(with_token(self.http.get(self.url(path)), token))
    }

    fn post(&self, path: &str, token: Option<&str>, key: Option<&str>, body: &Value) -> Response {
        let mut request = with_token(self.http.post(self.url(path)), token).json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        send(request)
    }

    /// A fresh P-256 CSR in PEM.
    fn csr(&self) -> String {
        std::fs::read_to_string(make_csr(self.ca.path(), KeyKind::P256)).expect("read CSR")
    }

    fn issue_body(&self, code: &str, card: &str, profile: &str) -> Value {
        json!({
            "subscriber": {"code": code, "name": "CHEN Ta-wen"},
            "card_number": card,
            "profile": profile,
            "csr": self.csr(),
        })
    }

    /// Issues through the API and returns the record.
    fn issue(&self, code: &str, card: &str, profile: &str) -> Value {
        let body = self.issue_body(code, card, profile);
        expect_json(
            self.post("/api/v1/certificates", Some(OFFICER), None, &body),
            201,
        )
    }

    /// Issues a person-sign certificate for A800000014 on TP03000001, the
    /// usual subject of a status change; returns its serial.
    fn issue_on_the_card(&self) -> String {
        serial_of(&self.issue("A800000014", "TP03000001", "person-sign"))
    }

    fn change(&self, target: &str, action: &str, body: &Value) -> Response {
        self.post(
            &format!("/api/v1/{target}/{action}"),
            Some(OFFICER),
            None,
            body,
        )
    }

    fn record(&self, serial: &str) -> Value {
        expect_json(
            self.get(&format!("/api/v1/certificates/{serial}"), Some(AUDITOR)),
            200,
        )
    }

    fn certificates_of(&self, code: &str) -> Vec<Value> {
        let list = expect_json(
            self.get(
                &format!("/api/v1/subscribers/{code}/certificates"),
                Some(AUDITOR),
            ),
            200,
        );
        list["certificates"]
            .as_array()
            .expect("certificates")
            .clone()
    }

    fn publish(&self, kind: &str) -> Value {
        expect_json(
            self.post("/api/v1/crls", Some(OFFICER), None, &json!({"kind": kind})),
            201,
        )
    }

    fn openapi(&self) -> Value {
        expect_json(self.get("/api/v1/openapi.json", None), 200)
    }
}

fn client() -> Client {
    http_client(Duration::from_secs(60))
}

fn with_token(request: RequestBuilder, token: Option<&str>) -> RequestBuilder {
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

fn send(request: RequestBuilder) -> Response {
    request.send().expect("HTTP request")
}

fn content_type(response: &Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Asserts the status and JSON content type; returns the body.
fn expect_json(response: Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let media = content_type(&response);
    let text = response.text().expect("body");
    assert_eq!(got, status, "unexpected status; body: {text}");
    assert_eq!(media, "application/json", "body: {text}");
    serde_json::from_str(&text).expect("JSON body")
}

/// Asserts an RFC 9457 problem with this status; returns it.
fn expect_problem(response: Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let media = content_type(&response);
    let text = response.text().expect("body");
    assert_eq!(got, status, "unexpected status; body: {text}");
    assert_eq!(media, "application/problem+json", "body: {text}");
    let problem: Value = serde_json::from_str(&text).expect("problem JSON");
    for field in ["type", "title", "detail"] {
        assert!(
            problem[field].is_string(),
            "problem without {field}: {text}"
        );
    }
    assert_eq!(problem["status"], status, "{text}");
    problem
}

fn serial_of(record: &Value) -> String {
    record["serial"].as_str().expect("serial").to_owned()
}

fn is_rfc3339_utc(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.ends_with('Z') && OffsetDateTime::parse(s, &Rfc3339).is_ok())
}

fn openapi_operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            out.push((method.to_uppercase(), path.clone(), operation.clone()));
        }
    }
    out
}

/// A concrete path for an OpenAPI path template (`{x}` becomes `x`).
fn concrete(template: &str) -> String {
    template.replace(['{', '}'], "")
}

/// The template with every parameter a segment that is not even UTF-8.
fn garbled(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "%ff%fe"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn issue_answers_201_with_exactly_the_spec_record() {
    let ra = Ra::start();
    let record = ra.issue("A800000014", "TP03000001", "person-sign");
    let keys: BTreeSet<&str> = record
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let spec: BTreeSet<&str> = [
        "serial",
        "status",
        "expired",
        "revocation_reason",
        "status_since",
        "subscriber_code",
        "card_number",
        "profile",
        "not_before",
        "not_after",
        "certificate",
    ]
    .into();
    assert_eq!(keys, spec);
    let serial = serial_of(&record);
    assert!(
        serial
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert!(!serial.starts_with("00"));
    assert_eq!(record["status"], "good");
    assert_eq!(record["expired"], false);
    assert_eq!(record["revocation_reason"], Value::Null);
    assert_eq!(record["subscriber_code"], "A800000014");
    assert_eq!(record["card_number"], "TP03000001");
    assert_eq!(record["profile"], "person-sign");
    for time in ["status_since", "not_before", "not_after"] {
        assert!(is_rfc3339_utc(&record[time]), "{time}: {}", record[time]);
    }
    let pem_path = ra.ca.path().join("issued.pem");
    std::fs::write(&pem_path, record["certificate"].as_str().expect("PEM")).expect("write");
    let shown = openssl_ok(&[
        "x509",
        "-in",
        pem_path.to_str().expect("path"),
        "-noout",
        "-serial",
    ]);
    let shown = shown.trim().trim_start_matches("serial=").to_lowercase();
    assert_eq!(shown.trim_start_matches("00"), serial);
}

#[test]
fn issue_refuses_bad_input_with_400() {
    let ra = Ra::start();
    let mut body = ra.issue_body("A800000014", "TP03000001", "person-sign");
    body["profile"] = json!("no-such-profile");
    let problem = expect_problem(
        ra.post("/api/v1/certificates", Some(OFFICER), None, &body),
        400,
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("profile")
    );
    let mut body = ra.issue_body("A800000014", "TP03000001", "person-sign");
    body["csr"] =
        json!("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n");
    expect_problem(
        ra.post("/api/v1/certificates", Some(OFFICER), None, &body),
        400,
    );
}

#[test]
fn names_with_invisible_characters_are_refused_and_names_are_stored_in_nfc() {
    let ra = Ra::start();
    for hidden in [
        "CHEN\u{202E}Ta-wen",
        "CHEN\u{200B}Ta-wen",
        "CHEN\u{0378}Ta-wen",
    ] {
        let mut body = ra.issue_body("A800000014", "TP03000001", "person-sign");
        body["subscriber"]["name"] = json!(hidden);
        let problem = expect_problem(
            ra.post("/api/v1/certificates", Some(OFFICER), None, &body),
            400,
        );
        assert!(
            problem["detail"].as_str().unwrap().contains("U+"),
            "{problem}"
        );
    }
    let mut body = ra.issue_body("A800000014", "TP03000001", "person-sign");
    body["subscriber"]["name"] = json!("Jose\u{301} CHEN");
    expect_json(
        ra.post("/api/v1/certificates", Some(OFFICER), None, &body),
        201,
    );
    let stored: String = rusqlite::Connection::open(ra.ca.store_path())
        .unwrap()
        .query_row(
            "SELECT name FROM subscribers WHERE code = 'A800000014'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, "Jos\u{e9} CHEN");
}

#[test]
fn issuing_onto_another_subscribers_card_is_409() {
    let ra = Ra::start();
    ra.issue("A800000014", "TP03000001", "person-sign");
    let body = ra.issue_body("A800000022", "TP03000001", "person-sign");
    expect_problem(
        ra.post("/api/v1/certificates", Some(OFFICER), None, &body),
        409,
    );
}

#[test]
fn certificate_lookup_accepts_upper_case_and_0x_and_refuses_garbage() {
    let ra = Ra::start();
    let record = ra.issue("A800000014", "TP03000001", "person-sign");
    let serial = serial_of(&record);
    for form in [
        serial.clone(),
        serial.to_uppercase(),
        format!("0x{serial}"),
        format!("0X00{}", serial.to_uppercase()),
    ] {
        assert_eq!(ra.record(&form), record, "lookup by {form}");
    }
    expect_problem(ra.get("/api/v1/certificates/not-hex", Some(AUDITOR)), 400);
    expect_problem(
        ra.get("/api/v1/certificates/0x1234abcd", Some(AUDITOR)),
        404,
    );
}

#[test]
fn suspend_resume_revoke_follow_the_lifecycle_and_refuse_the_rest_with_409() {
    let ra = Ra::start();
    let serial = ra.issue_on_the_card();
    let target = format!("certificates/{serial}");

    let held = expect_json(
        ra.change(
            &target,
            "suspend",
            &json!({"channel": "emergency", "note": "fax 12"}),
        ),
        200,
    );
    assert_eq!(held["status"], "suspended");
    assert_eq!(held["revocation_reason"], "certificateHold");
    expect_problem(
        ra.change(&target, "suspend", &json!({"channel": "ra"})),
        409,
    );

    let resumed = expect_json(
        ra.change(&target, "resume", &json!({"note": "card found"})),
        200,
    );
    assert_eq!(resumed["status"], "good");
    assert_eq!(resumed["revocation_reason"], Value::Null);
    expect_problem(ra.change(&target, "resume", &json!({})), 409);

    expect_problem(
        ra.change(&target, "revoke", &json!({"reason": "certificateHold"})),
        400,
    );
    expect_problem(
        ra.change(&target, "suspend", &json!({"channel": "fax"})),
        400,
    );
    let revoked = expect_json(
        ra.change(&target, "revoke", &json!({"reason": "keyCompromise"})),
        200,
    );
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["revocation_reason"], "keyCompromise");
    for action in ["suspend", "resume"] {
        expect_problem(ra.change(&target, action, &json!({})), 409);
    }
    expect_problem(
        ra.change(&target, "revoke", &json!({"reason": "superseded"})),
        409,
    );
    assert_eq!(ra.record(&serial), revoked);

    expect_problem(
        ra.change("certificates/0x1234abcd", "suspend", &json!({})),
        404,
    );
    expect_problem(ra.change("certificates/zz", "suspend", &json!({})), 400);
}

#[test]
fn card_operations_change_every_eligible_certificate_at_once() {
    let ra = Ra::start();
    let sign = ra.issue("A800000014", "TP03000001", "person-sign");
    let encrypt = ra.issue("A800000014", "TP03000001", "person-encrypt");
    // One certificate suspended alone first: the card suspend takes the other.
    expect_json(
        ra.change(
            &format!("certificates/{}", serial_of(&sign)),
            "suspend",
            &json!({}),
        ),
        200,
    );

    let answer = expect_json(
        ra.change("cards/TP03000001", "suspend", &json!({"channel": "ra"})),
        200,
    );
    assert_eq!(answer["card_number"], "TP03000001");
    let records = answer["certificates"].as_array().expect("certificates");
    let serials: BTreeSet<String> = records.iter().map(serial_of).collect();
    assert_eq!(serials, [serial_of(&sign), serial_of(&encrypt)].into());
    assert!(records.iter().all(|r| r["status"] == "suspended"));
    expect_problem(ra.change("cards/TP03000001", "suspend", &json!({})), 409);

    let answer = expect_json(ra.change("cards/TP03000001", "resume", &json!({})), 200);
    assert!(
        answer["certificates"]
            .as_array()
            .expect("list")
            .iter()
            .all(|r| r["status"] == "good")
    );
    let answer = expect_json(
        ra.change(
            "cards/TP03000001",
            "revoke",
            &json!({"reason": "cessationOfOperation"}),
        ),
        200,
    );
    assert!(
        answer["certificates"]
            .as_array()
            .expect("list")
            .iter()
            .all(|r| r["revocation_reason"] == "cessationOfOperation")
    );
    expect_problem(
        ra.change(
            "cards/TP03000001",
            "revoke",
            &json!({"reason": "unspecified"}),
        ),
        409,
    );
    expect_problem(ra.change("cards/TP09999999", "suspend", &json!({})), 404);
}

#[test]
fn subscriber_certificates_are_listed_and_unknown_subscribers_are_404() {
    let ra = Ra::start();
    let first = ra.issue("A800000014", "TP03000001", "person-sign");
    let second = ra.issue("A800000014", "TP03000001", "person-encrypt");
    ra.issue("A800000022", "TP03000002", "person-sign");
    let listed: BTreeSet<String> = ra
        .certificates_of("A800000014")
        .iter()
        .map(serial_of)
        .collect();
    assert_eq!(listed, [serial_of(&first), serial_of(&second)].into());
    expect_problem(
        ra.get("/api/v1/subscribers/A899999999/certificates", Some(AUDITOR)),
        404,
    );
}

#[test]
fn publish_answers_the_crl_summary_and_the_crl_endpoints_serve_der() {
    let ra = Ra::start();
    expect_problem(ra.get("/crl/999999.crl", None), 404);
    let serial = ra.issue_on_the_card();
    expect_json(
        ra.change(&format!("certificates/{serial}"), "suspend", &json!({})),
        200,
    );

    let full = ra.publish("full");
    let keys: BTreeSet<&str> = full
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "number",
            "kind",
            "base_number",
            "this_update",
            "next_update",
            "entries"
        ]
        .into()
    );
    assert_eq!(full["kind"], "full");
    assert_eq!(full["base_number"], Value::Null);
    assert_eq!(full["entries"], 1);
    assert!(is_rfc3339_utc(&full["this_update"]) && is_rfc3339_utc(&full["next_update"]));

    let delta = ra.publish("delta");
    assert_eq!(delta["kind"], "delta");
    assert_eq!(delta["base_number"], full["number"]);
    assert!(delta["number"].as_u64() > full["number"].as_u64());

    let numbered = format!("/crl/{}.crl", full["number"]);
    for (path, kind) in [
        ("/crl/full.crl", "full"),
        ("/crl/delta.crl", "delta"),
        (numbered.as_str(), "full"),
    ] {
        let response = ra.get(path, None);
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert_eq!(content_type(&response), "application/pkix-crl");
        let file = ra.ca.path().join(format!("{kind}.crl"));
        std::fs::write(&file, response.bytes().expect("body")).expect("write CRL");
        let text = openssl_ok(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            file.to_str().expect("path"),
            "-noout",
            "-text",
        ]);
        assert!(
            text.contains(&serial.to_uppercase()) || kind == "delta",
            "{path}: {text}"
        );
        assert_eq!(
            text.contains("Delta CRL Indicator"),
            kind == "delta",
            "{path}"
        );
    }
    expect_problem(ra.get("/crl/999.crl", None), 404);
    expect_problem(ra.get("/crl/latest.pem", None), 404);
    expect_problem(
        ra.post(
            "/api/v1/crls",
            Some(OFFICER),
            None,
            &json!({"kind": "weekly"}),
        ),
        400,
    );
}

#[test]
fn crl_answers_carry_caching_headers_and_honour_conditional_requests() {
    let ra = Ra::start();
    let full = ra.publish("full");
    let response = ra.get("/crl/full.crl", None);
    assert_eq!(response.status().as_u16(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_owned()
    };
    let etag = header("etag");
    let last_modified = header("last-modified");
    assert!(header("expires").ends_with(" GMT"));
    let cache_control = header("cache-control");
    let max_age: i64 = cache_control
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no max-age in {cache_control}"));
    let next_update = OffsetDateTime::parse(full["next_update"].as_str().expect("time"), &Rfc3339)
        .expect("RFC 3339");
    let until_next_update = (next_update - OffsetDateTime::now_utc()).whole_seconds();
    assert!(
        max_age > 0 && max_age <= until_next_update + 1,
        "max-age {max_age} vs nextUpdate in {until_next_update}s"
    );

    let again = send(
        ra.http
            .get(ra.url("/crl/full.crl"))
            .header("If-None-Match", &etag),
    );
    assert_eq!(again.status().as_u16(), 304);
    assert_eq!(again.headers()["etag"].to_str().expect("etag"), etag);
    assert!(again.bytes().expect("body").is_empty());
    let since = send(
        ra.http
            .get(ra.url("/crl/full.crl"))
            .header("If-Modified-Since", &last_modified),
    );
    assert_eq!(since.status().as_u16(), 304);
    let stale = send(
        ra.http
            .get(ra.url("/crl/full.crl"))
            .header("If-None-Match", "\"crl-0-0\""),
    );
    assert_eq!(stale.status().as_u16(), 200);

    ra.publish("full");
    let newer = send(
        ra.http
            .get(ra.url("/crl/full.crl"))
            .header("If-None-Match", &etag),
    );
    assert_eq!(
        newer.status().as_u16(),
        200,
        "a new CRL must not match the old ETag"
    );
}

#[test]
fn a_crl_number_beyond_any_crl_is_404_not_500() {
    let ra = Ra::start();
    for number in [
        "9223372036854775808",
        "18446744073709551615",
        "99999999999999999999",
    ] {
        expect_problem(ra.get(&format!("/crl/{number}.crl"), None), 404);
    }
    let errors = ra.server.log_lines_with("ERROR");
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn issuing_ca_certificate_is_served_as_der() {
    let ra = Ra::start();
    let response = ra.get("/ca/issuing-ca.crt", None);
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(content_type(&response), "application/pkix-cert");
    let served = response.bytes().expect("body");
    let der_path = ra.ca.path().join("issuing.der");
    let cert = ra.ca.issuing_cert();
    openssl_ok(&[
        "x509",
        "-in",
        cert.to_str().expect("path"),
        "-outform",
        "DER",
        "-out",
        der_path.to_str().expect("path"),
    ]);
    assert_eq!(
        served.as_ref(),
        std::fs::read(&der_path).expect("DER").as_slice()
    );
}

#[test]
fn healthz_and_metrics_report_requests_certificates_and_crls() {
    let ra = Ra::start();
    let health = ra.get("/healthz", None);
    assert_eq!(health.status().as_u16(), 200);
    ra.issue("A800000014", "TP03000001", "person-sign");
    let full = ra.publish("full");
    expect_problem(ra.get("/api/v1/certificates/abcd", None), 401);
    let response = ra.get("/metrics", None);
    assert_eq!(response.status().as_u16(), 200);
    assert!(content_type(&response).starts_with("text/plain; version=0.0.4"));
    let text = response.text().expect("metrics");
    for needle in [
        r#"eidca_http_requests_total{route="/api/v1/certificates",method="POST",status="201"} 1"#,
        r#"eidca_http_requests_total{route="/api/v1/certificates/{serial}",method="GET",status="401"} 1"#,
        r#"eidca_http_requests_total{route="/healthz",method="GET",status="200"} 1"#,
        r#"eidca_http_request_duration_seconds_bucket{route="/api/v1/certificates",method="POST",le="+Inf"} 1"#,
        r#"eidca_http_request_duration_seconds_count{route="/api/v1/crls",method="POST"} 1"#,
        r#"eidca_certificates{status="good"} 1"#,
        r#"eidca_certificates{status="suspended"} 0"#,
        r#"eidca_crl_age_seconds{kind="full"} "#,
        "# TYPE eidca_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
    // The scheduler publishes too, so the newest numbers are at least the RA's.
    let number = |kind: &str| -> u64 {
        let prefix = format!("eidca_crl_number{{kind=\"{kind}\"}} ");
        let line = text
            .lines()
            .find(|l| l.starts_with(&prefix))
            .expect("CRL number metric");
        line[prefix.len()..].parse().expect("a number")
    };
    assert!(number("full") >= full["number"].as_u64().expect("number"));
    assert!(number("delta") > number("full"));
}

#[test]
fn an_unknown_method_is_counted_as_other_and_never_becomes_a_label() {
    let ra = Ra::start();
    let long = "X".repeat(4096);
    for name in [long.as_str(), "BREW", "PROPFIND"] {
        let method = reqwest::Method::from_bytes(name.as_bytes()).expect("token");
        send(ra.http.request(method, ra.url("/healthz")));
    }
    let text = ra.get("/metrics", None).text().expect("metrics");
    assert!(
        !text.contains("BREW") && !text.contains("XXXX"),
        "{}",
        text.len()
    );
    assert!(
        text.contains(r#"route="/healthz",method="OTHER",status="405"} 3"#),
        "{text}"
    );
}

#[test]
fn sync_window_reports_the_intervals_and_what_is_unpublished() {
    let ra = Ra::start_with(&[
        ("EIDCA_OCSP_MAX_AGE", "5m"),
        ("EIDCA_PUBLISH_DELTA_CRL_INTERVAL", "7m"),
        ("EIDCA_PUBLISH_FULL_CRL_INTERVAL", "1h"),
    ]);
    let window = expect_json(ra.get("/api/v1/sync-window", Some(AUDITOR)), 200);
    assert_eq!(window["ocsp_max_age_s"], 300);
    assert_eq!(window["delta_crl_interval_s"], 420);
    assert_eq!(window["full_crl_interval_s"], 3600);
    assert_eq!(window["worst_case_s"], 420);
    assert_eq!(window["oldest_unpublished_change"], Value::Null);
    // The scheduler publishes a full CRL and its delta as soon as it starts.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let window = loop {
        let window = expect_json(ra.get("/api/v1/sync-window", Some(AUDITOR)), 200);
        if !window["last_delta"].is_null() || std::time::Instant::now() > deadline {
            break window;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(window["last_full"]["kind"], "full");
    assert_eq!(
        window["last_delta"]["base_number"],
        window["last_full"]["number"]
    );

    let serial = ra.issue_on_the_card();
    let window = expect_json(ra.get("/api/v1/sync-window", Some(OFFICER)), 200);
    assert_eq!(
        window["oldest_unpublished_change"],
        Value::Null,
        "issuance is not a CRL change"
    );
    let held = expect_json(
        ra.change(&format!("certificates/{serial}"), "suspend", &json!({})),
        200,
    );
    let window = expect_json(ra.get("/api/v1/sync-window", Some(AUDITOR)), 200);
    assert_eq!(window["oldest_unpublished_change"], held["status_since"]);

    let delta = ra.publish("delta");
    let window = expect_json(ra.get("/api/v1/sync-window", Some(AUDITOR)), 200);
    assert_eq!(window["oldest_unpublished_change"], Value::Null);
    assert_eq!(window["last_delta"], delta);
    assert_eq!(window["last_full"]["kind"], "full");
}

#[test]
fn every_ra_route_refuses_anonymous_and_unknown_tokens_with_401() {
    let ra = Ra::start();
    let doc = ra.openapi();
    let operations = openapi_operations(&doc);
    assert!(
        operations.len() >= 11,
        "the OpenAPI document lists {} operations",
        operations.len()
    );
    for (method, path, operation) in &operations {
        assert!(
            operation["security"].to_string().contains("bearer"),
            "{method} {path} is not declared bearer-protected"
        );
        // Authenticated first: a garbled path is 401 too, not 400.
        for (token, url) in [None, Some("not-a-token")]
            .into_iter()
            .flat_map(|token| [(token, concrete(path)), (token, garbled(path))])
        {
            let url = ra.url(&url);
            let request = match method.as_str() {
                "GET" => ra.http.get(url),
                "POST" => ra
                    .http
                    .post(url)
                    .header("content-type", "application/json")
                    .body("{\"junk\": 1"),
                other => panic!("unexpected method {other} for {path}"),
            };
            let response = send(with_token(request, token));
            let challenge = response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            expect_problem(response, 401);
            assert!(
                challenge.starts_with("Bearer"),
                "{method} {path}: WWW-Authenticate `{challenge}`"
            );
            assert_eq!(
                challenge.contains("invalid_token"),
                token.is_some(),
                "{method} {path}: `{challenge}`"
            );
        }
    }
}

#[test]
fn two_authorization_headers_are_401_whichever_comes_first() {
    let ra = Ra::start();
    for (first, second) in [(OFFICER, "forged"), ("forged", OFFICER)] {
        let request = ra
            .http
            .get(ra.url("/api/v1/sync-window"))
            .header("Authorization", format!("Bearer {first}"))
            .header("Authorization", format!("Bearer {second}"));
        expect_problem(send(request), 401);
    }
}

#[test]
fn the_auditor_role_reads_but_every_change_is_403() {
    let ra = Ra::start();
    let serial = ra.issue_on_the_card();
    ra.record(&serial);
    let posts: Vec<_> = openapi_operations(&ra.openapi())
        .into_iter()
        .filter(|(method, ..)| method == "POST")
        .collect();
    assert!(posts.len() >= 8);
    for (_, path, _) in posts {
        let path = concrete(&path).replace("/serial/", &format!("/{serial}/"));
        expect_problem(ra.post(&path, Some(AUDITOR), None, &json!({})), 403);
    }
    assert_eq!(ra.record(&serial)["status"], "good");
}

#[test]
fn openapi_lists_every_ra_route_of_the_spec() {
    let ra = Ra::start();
    let listed: BTreeSet<(String, String)> = openapi_operations(&ra.openapi())
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    // SPEC §7, the RA table.
    let spec = [
        ("POST", "/api/v1/certificates"),
        ("GET", "/api/v1/certificates/{serial}"),
        ("POST", "/api/v1/certificates/{serial}/suspend"),
        ("POST", "/api/v1/certificates/{serial}/resume"),
        ("POST", "/api/v1/certificates/{serial}/revoke"),
        ("POST", "/api/v1/cards/{card_number}/suspend"),
        ("POST", "/api/v1/cards/{card_number}/resume"),
        ("POST", "/api/v1/cards/{card_number}/revoke"),
        ("GET", "/api/v1/subscribers/{code}/certificates"),
        ("POST", "/api/v1/crls"),
        ("GET", "/api/v1/sync-window"),
    ];
    for (method, path) in spec {
        assert!(
            listed.contains(&(method.to_owned(), path.to_owned())),
            "{method} {path} missing from OpenAPI"
        );
    }
    assert_eq!(
        listed.len(),
        spec.len(),
        "routes beyond the SPEC: {listed:?}"
    );
    let doc = ra.openapi();
    let issue = &doc["paths"]["/api/v1/certificates"]["post"];
    assert!(
        issue["responses"]["401"]["content"]["application/problem+json"].is_object(),
        "{issue}"
    );
    assert!(
        issue["requestBody"]["content"]["application/json"].is_object(),
        "{issue}"
    );
}

#[test]
fn wrong_types_unknown_fields_and_broken_json_are_400_problems() {
    let ra = Ra::start();
    let good = ra.issue_body("A800000014", "TP03000001", "person-sign");
    let mut wrong_type = good.clone();
    wrong_type["card_number"] = json!(3000001);
    let mut typo = good.clone();
    typo["profle"] = json!("person-sign");
    let mut nested_typo = good.clone();
    nested_typo["subscriber"]["nmae"] = json!("x");
    let mut missing = good.clone();
    missing.as_object_mut().expect("object").remove("csr");
    for (what, body) in [
        ("wrong type", wrong_type),
        ("unknown field", typo),
        ("nested unknown field", nested_typo),
        ("missing field", missing),
    ] {
        let problem = expect_problem(
            ra.post("/api/v1/certificates", Some(OFFICER), None, &body),
            400,
        );
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}"
        );
    }
    let broken = send(
        ra.http
            .post(ra.url("/api/v1/certificates"))
            .bearer_auth(OFFICER)
            .header("content-type", "application/json")
            .body("{\"subscriber\": "),
    );
    expect_problem(broken, 400);
    let not_json = send(
        ra.http
            .post(ra.url("/api/v1/crls"))
            .bearer_auth(OFFICER)
            .header("content-type", "text/plain")
            .body("kind=full"),
    );
    expect_problem(not_json, 415);
    assert!(ra.certificates_of_missing("A800000014"));
}

impl Ra {
    /// True when the subscriber was never recorded (nothing was issued).
    fn certificates_of_missing(&self, code: &str) -> bool {
        self.get(
            &format!("/api/v1/subscribers/{code}/certificates"),
            Some(AUDITOR),
        )
        .status()
        .as_u16()
            == 404
    }
}

#[test]
fn a_body_over_64_kib_is_413_and_changes_nothing() {
    let ra = Ra::start();
    let mut body = ra.issue_body("A800000014", "TP03000001", "person-sign");
    body["subscriber"]["name"] = json!("x".repeat(70 * 1024));
    expect_problem(
        ra.post("/api/v1/certificates", Some(OFFICER), Some("big-1"), &body),
        413,
    );
    assert!(ra.certificates_of_missing("A800000014"));
}

#[test]
fn a_retry_with_the_same_key_replays_the_answer_and_changes_nothing() {
    let ra = Ra::start();
    let body = ra.issue_body("A800000014", "TP03000001", "person-sign");
    let first = ra.post(
        "/api/v1/certificates",
        Some(OFFICER),
        Some("issue-1"),
        &body,
    );
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = expect_json(first, 201);
    // Same JSON laid out differently is the same request.
    let relaid = serde_json::to_string_pretty(&body).expect("JSON");
    let retry = send(
        ra.http
            .post(ra.url("/api/v1/certificates"))
            .bearer_auth(OFFICER)
            .header("Idempotency-Key", "issue-1")
            .header("content-type", "application/json")
            .body(relaid),
    );
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(expect_json(retry, 201), first);
    assert_eq!(ra.certificates_of("A800000014").len(), 1);

    let target = format!("/api/v1/certificates/{}/suspend", serial_of(&first));
    let suspended = expect_json(
        ra.post(
            &target,
            Some(OFFICER),
            Some("hold-1"),
            &json!({"note": "lost"}),
        ),
        200,
    );
    // Without the key this would be a 409 (already suspended).
    let again = expect_json(
        ra.post(
            &target,
            Some(OFFICER),
            Some("hold-1"),
            &json!({"note": "lost"}),
        ),
        200,
    );
    assert_eq!(again, suspended);

    let publish = expect_json(
        ra.post(
            "/api/v1/crls",
            Some(OFFICER),
            Some("crl-1"),
            &json!({"kind": "full"}),
        ),
        201,
    );
    let replay = expect_json(
        ra.post(
            "/api/v1/crls",
            Some(OFFICER),
            Some("crl-1"),
            &json!({"kind": "full"}),
        ),
        201,
    );
    assert_eq!(publish, replay);
    let window = expect_json(ra.get("/api/v1/sync-window", Some(AUDITOR)), 200);
    assert_eq!(
        window["last_full"], publish,
        "the replay published no new CRL"
    );
}

#[test]
fn a_key_reused_with_another_request_is_422() {
    let ra = Ra::start();
    let body = ra.issue_body("A800000014", "TP03000001", "person-sign");
    expect_json(
        ra.post("/api/v1/certificates", Some(OFFICER), Some("k-1"), &body),
        201,
    );
    let mut other = body.clone();
    other["profile"] = json!("person-encrypt");
    expect_problem(
        ra.post("/api/v1/certificates", Some(OFFICER), Some("k-1"), &other),
        422,
    );
    expect_problem(
        ra.post(
            "/api/v1/crls",
            Some(OFFICER),
            Some("k-1"),
            &json!({"kind": "full"}),
        ),
        422,
    );
    assert_eq!(ra.certificates_of("A800000014").len(), 1);
    expect_problem(
        send(
            ra.http
                .post(ra.url("/api/v1/crls"))
                .bearer_auth(OFFICER)
                .header("Idempotency-Key", "has space")
                .json(&json!({"kind": "full"})),
        ),
        400,
    );
}

#[test]
fn a_refusal_is_remembered_so_a_retry_cannot_become_a_change() {
    let ra = Ra::start();
    let serial = ra.issue_on_the_card();
    let resume = format!("/api/v1/certificates/{serial}/resume");
    let refused = expect_problem(
        ra.post(&resume, Some(OFFICER), Some("resume-1"), &json!({})),
        409,
    );
    expect_json(
        ra.change(&format!("certificates/{serial}"), "suspend", &json!({})),
        200,
    );
    assert_eq!(
        expect_problem(
            ra.post(&resume, Some(OFFICER), Some("resume-1"), &json!({})),
            409
        ),
        refused
    );
    assert_eq!(ra.record(&serial)["status"], "suspended");
}

#[test]
fn a_record_that_cannot_be_rendered_is_a_500_and_no_answer_is_remembered() {
    let ra = Ra::start();
    let serial = ra.issue_on_the_card();
    // A notBefore that RFC 3339 cannot write (before year 0), as a damaged
    // store might hold: the record must fail, not show an empty time.
    let store = rusqlite::Connection::open(ra.ca.store_path()).expect("store");
    let damage = |not_before: &str| {
        store
            .execute(
                &format!("UPDATE certificates SET not_before = {not_before} WHERE serial = ?1"),
                [&serial],
            )
            .expect("update");
    };
    damage("-100000000000");
    expect_problem(
        ra.get(&format!("/api/v1/certificates/{serial}"), Some(OFFICER)),
        500,
    );
    let suspend = format!("/api/v1/certificates/{serial}/suspend");
    expect_problem(
        ra.post(&suspend, Some(OFFICER), Some("suspend-1"), &json!({})),
        500,
    );
    // Nothing was committed or remembered: once the store is repaired, the
    // same key makes the change.
    damage("not_after - 86400");
    assert_eq!(ra.record(&serial)["status"], "good");
    let done = expect_json(
        ra.post(&suspend, Some(OFFICER), Some("suspend-1"), &json!({})),
        200,
    );
    assert_eq!(done["status"], "suspended");
}

#[test]
fn racing_retries_with_one_key_issue_exactly_one_certificate() {
    let ra = Arc::new(Ra::start());
    let body = Arc::new(ra.issue_body("A800000014", "TP03000001", "person-sign"));
    let racers = 8;
    let start = Arc::new(Barrier::new(racers));
    let threads: Vec<_> = (0..racers)
        .map(|_| {
            let (ra, body, start) = (Arc::clone(&ra), Arc::clone(&body), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                expect_json(
                    ra.post("/api/v1/certificates", Some(OFFICER), Some("race-1"), &body),
                    201,
                )
            })
        })
        .collect();
    let answers: Vec<Value> = threads
        .into_iter()
        .map(|t| t.join().expect("racer"))
        .collect();
    assert!(answers.iter().all(|a| *a == answers[0]), "answers differ");
    let issued = ra.certificates_of("A800000014");
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(serial_of(&issued[0]), serial_of(&answers[0]));
}

#[test]
fn idempotency_keys_expire_after_the_configured_time() {
    let ra = Ra::start_with(&[("EIDCA_API_IDEMPOTENCY_TTL", "2s")]);
    let body = ra.issue_body("A800000014", "TP03000001", "person-sign");
    let first = expect_json(
        ra.post(
            "/api/v1/certificates",
            Some(OFFICER),
            Some("short-1"),
            &body,
        ),
        201,
    );
    std::thread::sleep(Duration::from_millis(3200));
    let later = expect_json(
        ra.post(
            "/api/v1/certificates",
            Some(OFFICER),
            Some("short-1"),
            &body,
        ),
        201,
    );
    assert_ne!(
        serial_of(&first),
        serial_of(&later),
        "an expired key is a new request"
    );
    assert_eq!(ra.certificates_of("A800000014").len(), 2);
}

#[test]
fn an_answered_change_survives_a_kill() {
    let ra = Ra::start();
    let issued = ra.issue("A800000014", "TP03000001", "person-sign");
    let serial = serial_of(&issued);
    let held = expect_json(
        ra.change(&format!("certificates/{serial}"), "suspend", &json!({})),
        200,
    );
    let ra = ra.restart_after_kill();
    assert_eq!(ra.record(&serial), held);
    let replay = expect_json(
        ra.post(
            "/api/v1/certificates",
            Some(OFFICER),
            None,
            &ra.issue_body("A800000014", "TP03000001", "person-encrypt"),
        ),
        201,
    );
    assert_ne!(serial_of(&replay), serial);
}

#[test]
fn sigterm_stops_the_service_cleanly() {
    let ca = TestCa::new();
    let server = ca.serve(&[]);
    let http = client();
    let health = send(http.get(server.url("/healthz")));
    assert_eq!(health.status().as_u16(), 200);
    let log = Arc::clone(&server.log);
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    let log = log.lock().expect("log").join("\n");
    assert!(log.contains("stopped"), "{log}");
    // The last connection closed checkpoints the WAL away: the store was closed.
    assert!(
        !ca.data_dir().join("eidca.sqlite3-wal").exists(),
        "WAL left behind"
    );
}

#[test]
fn eight_clients_issuing_suspending_and_resuming_for_ten_seconds_see_no_5xx() {
    let ra = Arc::new(Ra::start_with(&[("RUST_LOG", "warn")]));
    let csr = Arc::new(ra.csr());
    let until = Instant::now() + Duration::from_secs(10);
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let (ra, csr) = (Arc::clone(&ra), Arc::clone(&csr));
            std::thread::spawn(move || {
                let http = client();
                let mut statuses = Vec::new();
                let post = |path: String, body: Value| {
                    send(http.post(ra.url(&path)).bearer_auth(OFFICER).json(&body))
                };
                while Instant::now() < until {
                    let body = json!({
                        "subscriber": {"code": format!("A80000010{i}"), "name": "Load Test"},
                        "card_number": format!("TPL000000{i}"),
                        "profile": "person-sign",
                        "csr": *csr,
                    });
                    let issued = post("/api/v1/certificates".into(), body);
                    statuses.push(issued.status().as_u16());
                    let Ok(record) = issued.json::<Value>() else {
                        continue;
                    };
                    let Some(serial) = record["serial"].as_str() else {
                        continue;
                    };
                    for action in ["suspend", "resume"] {
                        let answer =
                            post(format!("/api/v1/certificates/{serial}/{action}"), json!({}));
                        statuses.push(answer.status().as_u16());
                    }
                }
                statuses
            })
        })
        .collect();
    let statuses: Vec<u16> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client"))
        .collect();
    let failures: Vec<&u16> = statuses
        .iter()
        .filter(|s| !(200..300).contains(*s))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {failures:?}",
        failures.len(),
        statuses.len()
    );
    assert!(
        statuses.len() >= 24,
        "only {} requests in 10 s",
        statuses.len()
    );
    assert!(ra.server.log_lines_with("database is locked").is_empty());
    assert!(ra.server.log_lines_with("internal error").is_empty());
    let metrics = ra.get("/metrics", None).text().expect("metrics");
    assert!(!metrics.contains("status=\"5"), "{metrics}");
    eprintln!("load test: {} requests in 10 s", statuses.len());
}

#[test]
fn slow_bodies_hold_nothing_and_are_cut_off_at_their_deadline() {
    use std::io::{Read, Write};
    let ra = Ra::start();
    let serial = serial_of(&ra.issue("A800000015", "TP03000002", "person-sign"));
    ra.publish("full");
    // More slow requests than the service handles at once, each stuck after
    // the first byte of a 1000-byte body.
    let address = ra.server.base_url.trim_start_matches("http://").to_owned();
    let head = "POST /self-service/suspend HTTP/1.1\r\nHost: eidca\r\n\
                Content-Type: application/x-www-form-urlencoded\r\n\
                Content-Length: 1000\r\n\r\nc";
    let slow: Vec<std::net::TcpStream> = (0..600)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&address).expect("connect");
            stream.write_all(head.as_bytes()).expect("write");
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let quick = http_client(Duration::from_secs(1));
    let record = format!("/api/v1/certificates/{serial}");
    for (path, token) in [
        ("/healthz", None),
        (record.as_str(), Some(OFFICER)),
        ("/crl/full.crl", None),
        ("/self-service", None),
    ] {
        let response = with_token(quick.get(ra.url(path)), token)
            .send()
            .unwrap_or_else(|e| panic!("{path} did not answer within 1 s: {e}"));
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }
    // Each slow request is answered 408 once its body deadline passes, and
    // its connection closed.
    for mut stream in slow {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .expect("answer, then close");
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    }
}
