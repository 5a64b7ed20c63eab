//! The OCSP responder against real clients. OpenSSL's `ocsp`
//! client sees every status change the moment the CLI commits it, verifies
//! every answer against the dev root, over POST and GET, with and without a
//! nonce; bad input never gets a 5xx; pkilint finds nothing wrong; RFC 5019
//! caching headers and 304s behave; stalled clients cost nothing.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Server, TestCa, assert_pkilint_clean, http_client, openssl, openssl_ok};

/// The bare OCSPResponse for malformedRequest (RFC 6960 §4.2.1).
const MALFORMED: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x01];

/// A CA with one issued certificate and `eidca serve` running on it.
struct Fixture {
    ca: TestCa,
    server: Server,
    serial: String,
    /// Paths of the issuing CA and root certificates, as openssl arguments.
    issuer: String,
    root: String,
}

impl Fixture {
    fn new() -> Self {
        Self::on(TestCa::new())
    }

    fn on(ca: TestCa) -> Self {
        Self::serving(ca, &[])
    }

    /// `eidca serve` with `env` on `ca`, which gets a certificate first.
    fn serving(ca: TestCa, env: &[(&str, &str)]) -> Self {
        let serial = issue(&ca, "TP03000001");
        let server = ca.serve(env);
        let issuer = path(&ca.issuing_cert()).to_owned();
        let root = path(&ca.root_cert()).to_owned();
        Fixture {
            ca,
            server,
            serial,
            issuer,
            root,
        }
    }

    fn url(&self) -> String {
        self.server.url("/ocsp")
    }

    /// The GET URL of a request without nonce for our serial.
    fn get_url(&self) -> String {
        let request = STANDARD.encode(self.request_der(false));
        self.server.url(&format!("/ocsp/{request}"))
    }

    /// The text of `/metrics`.
    fn metrics(&self, client: &reqwest::blocking::Client) -> String {
        let response = client.get(self.server.url("/metrics")).send().unwrap();
        response.text().unwrap()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.ca.path().join(name)
    }

    /// `openssl ocsp` against the server: `before` goes first (digest
    /// options must precede `-serial`), then the issuer, the serials and
    /// the URL, with the dev root as the only trust anchor.
    fn query(&self, before: &[&str], serials: &[&str]) -> Output {
        self.query_issuer(&self.ca.issuing_cert(), before, serials)
    }

    fn query_issuer(&self, issuer: &Path, before: &[&str], serials: &[&str]) -> Output {
        let serial_args: Vec<String> = serials.iter().map(|s| format!("0x{s}")).collect();
        let mut args: Vec<&str> = vec!["ocsp"];
        args.extend_from_slice(before);
        args.extend_from_slice(&["-issuer", path(issuer)]);
        for serial in &serial_args {
            args.extend_from_slice(&["-serial", serial]);
        }
        let url = self.url();
        args.extend_from_slice(&["-url", &url, "-CAfile", &self.root]);
        openssl(&args)
    }

    /// A DER request made by `openssl ocsp -reqout` for our serial.
    fn request_der(&self, nonce: bool) -> Vec<u8> {
        let out = self.file(&format!("req-{nonce}.der"));
        let mut args = vec!["ocsp", "-issuer", &self.issuer];
        let serial = format!("0x{}", self.serial);
        args.extend_from_slice(&["-serial", &serial, "-reqout", path(&out)]);
        if !nonce {
            args.push("-no_nonce");
        }
        openssl_ok(&args);
        std::fs::read(out).unwrap()
    }

    /// Checks a response file with `openssl ocsp -respin` for our serial:
    /// signature and chain to the dev root, and the status line.
    fn assert_respin(&self, response: &[u8], status: &str) {
        let file = self.file("respin.der");
        std::fs::write(&file, response).unwrap();
        let serial = format!("0x{}", self.serial);
        let out = openssl(&[
            "ocsp",
            "-respin",
            path(&file),
            "-issuer",
            &self.issuer,
            "-serial",
            &serial,
            "-no_nonce",
            "-CAfile",
            &self.root,
        ]);
        let (stdout, stderr) = texts(&out);
        assert!(stderr.contains("Response verify OK"), "{stderr}\n{stdout}");
        assert!(stdout.contains(&format!("{serial}: {status}")), "{stdout}");
    }
}

fn issue(ca: &TestCa, card: &str) -> String {
    common::issue(&ca.authority(), card).serial
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `openssl ocsp` failed with this OCSP error status.
fn assert_responder_error(out: &Output, status: &str) {
    let (stdout, stderr) = texts(out);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(
        (stdout.clone() + &stderr).contains(&format!("Responder Error: {status}")),
        "{stdout}\n{stderr}"
    );
}

/// Asserts that OpenSSL verified the response and states `status` (and
/// `reason`, for revoked) for every serial; returns stdout.
fn assert_verified(out: &Output, serials: &[(&str, &str, Option<&str>)]) -> String {
    let (stdout, stderr) = texts(out);
    assert!(out.status.success(), "openssl failed:\n{stdout}\n{stderr}");
    assert!(stderr.contains("Response verify OK"), "{stderr}\n{stdout}");
    assert!(
        !stderr.to_lowercase().contains("nonce"),
        "nonce trouble: {stderr}"
    );
    for (serial, status, reason) in serials {
        let block = stdout
            .split(&format!("0x{serial}: "))
            .nth(1)
            .unwrap_or_else(|| panic!("no status for {serial} in\n{stdout}"));
        assert!(
            block.starts_with(status),
            "{serial}: expected {status} in\n{stdout}"
        );
        if let Some(reason) = reason {
            let this_block = block.split("0x").next().unwrap_or(block);
            assert!(
                this_block.contains(&format!("Reason: {reason}")),
                "{serial}: expected reason {reason} in\n{stdout}"
            );
        }
    }
    stdout
}

fn http() -> reqwest::blocking::Client {
    http_client(Duration::from_secs(30))
}

fn header(response: &reqwest::blocking::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn openssl_sees_every_status_change_the_moment_the_cli_commits_it() {
    let f = Fixture::new();
    let serial = f.serial.as_str();
    let both = [&["-no_nonce"][..], &[]];
    // Twice without a nonce: the second answer comes from the cache, which
    // the CLI's change must invalidate.
    for before in [&["-no_nonce"][..], &["-no_nonce"], &[]] {
        assert_verified(&f.query(before, &[serial]), &[(serial, "good", None)]);
    }
    f.ca.run_ok(&["suspend", serial]);
    for before in both {
        let hold = Some("certificateHold");
        assert_verified(&f.query(before, &[serial]), &[(serial, "revoked", hold)]);
    }
    f.ca.run_ok(&["resume", serial]);
    for before in both {
        assert_verified(&f.query(before, &[serial]), &[(serial, "good", None)]);
    }
    f.ca.run_ok(&["revoke", serial, "--reason", "keyCompromise"]);
    for before in both {
        let reason = Some("keyCompromise");
        let stdout = assert_verified(&f.query(before, &[serial]), &[(serial, "revoked", reason)]);
        assert!(stdout.contains("Revocation Time:"), "{stdout}");
    }
}

#[test]
fn a_nonce_is_echoed_and_checked_by_openssl() {
    let f = Fixture::new();
    // Without -no_nonce OpenSSL sends a nonce and fails on a missing or
    // different one ("Nonce Verify error"), which assert_verified rejects.
    let out = f.query(&["-resp_text"], &[&f.serial]);
    let stdout = assert_verified(&out, &[(&f.serial, "good", None)]);
    assert!(stdout.contains("OCSP Nonce"), "{stdout}");
}

#[test]
fn get_and_post_answers_verify_with_openssl() {
    let f = Fixture::new();
    let der = f.request_der(false);
    let b64 = STANDARD.encode(&der);
    let encoded: String = url_encode(&b64);
    assert!(b64.contains('/') || b64.contains('+') || b64.contains('='));
    let client = http();
    for get_path in [
        format!("/ocsp/{b64}"),
        format!("/ocsp/{encoded}"),
        format!("/ocsp/{b64}/"),
        format!("/ocsp/{encoded}/"),
    ] {
        let response = client.get(f.server.url(&get_path)).send().unwrap();
        assert_eq!(response.status(), 200, "{get_path}");
        assert_eq!(
            header(&response, "content-type"),
            "application/ocsp-response"
        );
        f.assert_respin(&response.bytes().unwrap(), "good");
    }
    let response = client
        .post(f.url())
        .header("content-type", "application/ocsp-request")
        .body(der)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type"),
        "application/ocsp-response"
    );
    f.assert_respin(&response.bytes().unwrap(), "good");
}

#[test]
fn a_get_request_with_a_nonce_gets_it_back() {
    let f = Fixture::new();
    let der = f.request_der(true);
    let response = http()
        .get(
            f.server
                .url(&format!("/ocsp/{}", url_encode(&STANDARD.encode(&der)))),
        )
        .send()
        .unwrap();
    assert_eq!(header(&response, "cache-control"), "no-cache");
    let (request_file, response_file) = (f.file("nonce-req.der"), f.file("nonce-resp.der"));
    std::fs::write(&request_file, &der).unwrap();
    std::fs::write(&response_file, response.bytes().unwrap()).unwrap();
    assert_openssl_verifies_with_its_nonce(&f, &request_file, &response_file);
}

/// OpenSSL verifies the response and, given the request with -reqin,
/// that the response echoes its nonce.
fn assert_openssl_verifies_with_its_nonce(f: &Fixture, request_file: &Path, response_file: &Path) {
    let out = openssl(&[
        "ocsp",
        "-reqin",
        path(request_file),
        "-respin",
        path(response_file),
        "-verify_other",
        &f.issuer,
        "-CAfile",
        &f.root,
    ]);
    let (stdout, stderr) = texts(&out);
    assert!(stderr.contains("Response verify OK"), "{stderr}\n{stdout}");
    assert!(!stderr.contains("Nonce"), "{stderr}");
}

#[test]
fn unknown_serial_is_unknown() {
    let f = Fixture::new();
    let never = "4a5b6c7d8e9f00112233445566778899";
    for before in [&["-no_nonce"][..], &[]] {
        assert_verified(&f.query(before, &[never]), &[(never, "unknown", None)]);
    }
}

#[test]
fn another_cas_certificate_is_unauthorized() {
    let f = Fixture::new();
    let other = TestCa::new();
    let serial = issue(&other, "TP09000009");
    let out = f.query_issuer(&other.issuing_cert(), &[], &[&serial]);
    assert_responder_error(&out, "unauthorized (6)");
}

#[test]
fn several_cert_ids_get_one_single_response_each() {
    let f = Fixture::new();
    let held = issue(&f.ca, "TP03000002");
    f.ca.run_ok(&["suspend", &held]);
    let never = "7fffffffffffffffffffffffffffff01";
    for before in [&["-no_nonce"][..], &[]] {
        let out = f.query(before, &[&f.serial, &held, never]);
        assert_verified(
            &out,
            &[
                (&f.serial, "good", None),
                (&held, "revoked", Some("certificateHold")),
                (never, "unknown", None),
            ],
        );
    }
}

#[test]
fn more_cert_ids_than_configured_is_malformed() {
    let f = Fixture::on(TestCa::with_config(|c| {
        c.replace("max_cert_ids = 20", "max_cert_ids = 2")
    }));
    let s = f.serial.as_str();
    assert_verified(&f.query(&["-no_nonce"], &[s, s]), &[(s, "good", None)]);
    let out = f.query(&["-no_nonce"], &[s, s, s]);
    assert_responder_error(&out, "malformedrequest (1)");
}

#[test]
fn sha256_cert_ids_are_answered() {
    let f = Fixture::new();
    let never = "1122";
    for before in [&["-sha256", "-no_nonce"][..], &["-sha256"]] {
        let out = f.query(before, &[&f.serial, never]);
        assert_verified(&out, &[(&f.serial, "good", None), (never, "unknown", None)]);
    }
    f.ca.run_ok(&["suspend", &f.serial]);
    let out = f.query(&["-sha256", "-no_nonce"], &[&f.serial]);
    assert_verified(&out, &[(&f.serial, "revoked", Some("certificateHold"))]);
}

#[test]
fn garbage_truncated_empty_and_huge_requests_get_malformed_or_413_never_5xx() {
    let f = Fixture::new();
    let client = http();
    let valid = f.request_der(false);
    let mut random = vec![0u8; 4096];
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    for byte in &mut random {
        // xorshift: reproducible noise, no dev-dependency.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *byte = x as u8;
    }
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("random", random.clone()),
        (
            "random DER-looking",
            [&[0x30, 0x82, 0x0f, 0xfc][..], &random[..4092]].concat(),
        ),
        ("truncated", valid[..valid.len() / 2].to_vec()),
        ("truncated by one", valid[..valid.len() - 1].to_vec()),
        ("trailing garbage", [&valid[..], &[0]].concat()),
        ("empty", Vec::new()),
        ("1 MB", vec![0x30; 1 << 20]),
    ];
    for (name, body) in bodies {
        let response = client.post(f.url()).body(body).send().unwrap();
        let status = response.status();
        assert!(status == 200 || status == 413, "{name}: HTTP {status}");
        if status == 413 {
            assert_eq!(header(&response, "connection"), "close", "{name}");
        }
        assert_eq!(header(&response, "cache-control"), "no-cache", "{name}");
        assert_eq!(&response.bytes().unwrap()[..], MALFORMED, "{name}");
    }
    for get_path in [
        "/ocsp/",
        "/ocsp",
        "/ocsp/!!!!",
        "/ocsp/%FF%FE%00",
        "/ocsp/AAAA",
        "/ocsp/a/b/c",
    ] {
        let response = client.get(f.server.url(get_path)).send().unwrap();
        assert_eq!(response.status(), 200, "{get_path}");
        assert_eq!(&response.bytes().unwrap()[..], MALFORMED, "{get_path}");
    }
    // Still alive and well.
    assert_verified(&f.query(&[], &[&f.serial]), &[(&f.serial, "good", None)]);
}

#[test]
fn pkilint_finds_no_error_in_good_revoked_and_unknown_responses() {
    let f = Fixture::new();
    let held = issue(&f.ca, "TP03000002");
    let compromised = issue(&f.ca, "TP03000003");
    f.ca.run_ok(&["suspend", &held]);
    f.ca.run_ok(&["revoke", &compromised, "--reason", "keyCompromise"]);
    let cases = [
        ("good", f.serial.as_str()),
        ("hold", &held),
        ("compromised", &compromised),
        ("unknown", "0123456789abcdef"),
    ];
    for (name, serial) in cases {
        for nonce in [true, false] {
            let file = f.file(&format!("{name}-{nonce}.der"));
            let mut before = vec!["-respout", path(&file)];
            if !nonce {
                before.push("-no_nonce");
            }
            let out = f.query(&before, &[serial]);
            assert!(texts(&out).1.contains("Response verify OK"), "{name}");
            assert_pkilint_clean("lint_ocsp_response", &[], &file);
        }
    }
}

#[test]
fn get_answers_carry_rfc5019_caching_headers_304_and_never_a_stale_etag() {
    let f = Fixture::new();
    let client = http();
    let url = f.get_url();
    let first = client.get(&url).send().unwrap();
    let cache_control = header(&first, "cache-control");
    let max_age: i64 = cache_control
        .strip_prefix("max-age=")
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{cache_control}"));
    assert!((1..=600).contains(&max_age), "{cache_control}");
    assert!(
        cache_control.ends_with(", public, no-transform, must-revalidate"),
        "{cache_control}"
    );
    let last_modified = http_date(&header(&first, "last-modified"));
    let expires = http_date(&header(&first, "expires"));
    assert_eq!(expires - last_modified, time::Duration::minutes(10));
    let etag = header(&first, "etag");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let body = first.bytes().unwrap();

    let again = client.get(&url).send().unwrap();
    assert_eq!(header(&again, "etag"), etag, "served from the cache");
    assert_eq!(again.bytes().unwrap(), body);

    let not_modified = client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .unwrap();
    assert_eq!(not_modified.status(), 304);
    assert_eq!(header(&not_modified, "etag"), etag);
    assert!(not_modified.bytes().unwrap().is_empty());

    // A suspension committed by the CLI: the old ETag no longer matches.
    f.ca.run_ok(&["suspend", &f.serial]);
    let changed = client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_ne!(header(&changed, "etag"), etag);
    f.assert_respin(&changed.bytes().unwrap(), "revoked");

    // Nonce answers and error statuses are never cached.
    let nonce = client
        .post(f.url())
        .body(f.request_der(true))
        .send()
        .unwrap();
    assert_eq!(header(&nonce, "cache-control"), "no-cache");
    assert!(nonce.headers().get("etag").is_none());
    let error = client.get(f.server.url("/ocsp/AAAA")).send().unwrap();
    assert_eq!(header(&error, "cache-control"), "no-cache");
}

fn http_date(text: &str) -> time::OffsetDateTime {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(text, &format)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .assume_utc()
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// CPU time (user + system) of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn stalled_clients_are_cut_off_and_hold_up_nobody() {
    let f = Fixture::new();
    let addr = f.server.base_url.trim_start_matches("http://").to_owned();
    let connect = |bytes: &[u8]| {
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream.write_all(bytes).unwrap();
        stream
    };
    let started = Instant::now();
    let cpu_before = cpu_ticks(f.server.child.id());
    let mut stalled = [
        ("silent", connect(b"")),
        (
            "half a head",
            connect(b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Ty"),
        ),
        (
            "half a body",
            connect(b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123"),
        ),
    ];
    // Everyone else is served at once.
    for _ in 0..5 {
        let asked = Instant::now();
        assert_verified(&f.query(&[], &[&f.serial]), &[(&f.serial, "good", None)]);
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{:?}",
            asked.elapsed()
        );
    }
    // The stalled connections are closed by the server's timeouts (10 s),
    // the half-sent body with a malformedRequest answer.
    for (name, stream) in &mut stalled {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut received = Vec::new();
        let closed = stream.read_to_end(&mut received);
        assert!(
            closed.is_ok() || received.is_empty(),
            "{name}: the server did not close the connection: {closed:?}"
        );
        let text = String::from_utf8_lossy(&received);
        if *name == "half a body" {
            assert!(text.starts_with("HTTP/1.1 200"), "{name}: {text}");
            assert!(received.ends_with(MALFORMED), "{name}: {text}");
        } else {
            assert!(
                received.is_empty() || text.starts_with("HTTP/1.1 4"),
                "{name}: {text}"
            );
        }
    }
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(20), "cut off after {waited:?}");
    // Waiting on them cost (almost) no CPU: no busy loop.
    let ticks_per_second = 100;
    let cpu = cpu_ticks(f.server.child.id()) - cpu_before;
    assert!(
        cpu * 4 < waited.as_secs() * ticks_per_second,
        "the server used {cpu} ticks of CPU in {waited:?}"
    );
}

#[test]
fn metrics_count_ocsp_answers_cache_use_and_signatures() {
    let f = Fixture::new();
    let client = http();
    let url = f.get_url();
    for _ in 0..3 {
        assert_eq!(client.get(&url).send().unwrap().status(), 200);
    }
    client.get(f.server.url("/ocsp/AAAA")).send().unwrap();
    let metrics = f.metrics(&client);
    for line in [
        "eidca_ocsp_responses_total{status=\"successful\"} 3",
        "eidca_ocsp_responses_total{status=\"malformedRequest\"} 1",
        "eidca_ocsp_cert_status_total{status=\"good\"} 3",
        "eidca_ocsp_cache_hits_total 2",
        "eidca_ocsp_cache_misses_total 1",
        "eidca_ocsp_signing_seconds_count 1",
        "eidca_ocsp_cached_responses 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in\n{metrics}"
        );
    }
}

/// The value of a counter on `/metrics`.
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no counter {name} in\n{metrics}"))
}

#[test]
fn responses_in_demand_are_re_signed_in_the_background_before_half_their_validity() {
    // Answers valid 4 s: due for refresh at 1 s, looked at every 0.5 s,
    // past half at 2 s.
    let f = Fixture::serving(TestCa::new(), &[("EIDCA_OCSP_MAX_AGE", "4s")]);
    let client = http();
    let url = f.get_url();
    let started = std::time::Instant::now();
    let mut last_modified = Vec::new();
    while started.elapsed() < std::time::Duration::from_secs(5) {
        let response = client.get(&url).send().unwrap();
        assert_eq!(response.status(), 200);
        let this_update = http_date(&header(&response, "last-modified"));
        let age = time::OffsetDateTime::now_utc() - this_update;
        assert!(
            age < time::Duration::seconds(3),
            "an answer {age} into its 4 s validity"
        );
        f.assert_respin(&response.bytes().unwrap(), "good");
        if last_modified.last() != Some(&this_update) {
            last_modified.push(this_update);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let metrics = f.metrics(&client);
    assert!(
        last_modified.len() >= 3,
        "re-signed along the way: {last_modified:?}"
    );
    assert!(counter(&metrics, "eidca_ocsp_refreshed_total") >= 2);
    assert_eq!(
        counter(&metrics, "eidca_ocsp_cache_misses_total"),
        1,
        "only the first request waited for a signature"
    );
}

#[test]
fn head_and_other_methods_on_ocsp_paths_get_the_routers_answers() {
    let f = Fixture::new();
    let client = http();
    let url = f.get_url();
    let get = client.get(&url).send().unwrap();
    let head = client.head(&url).send().unwrap();
    assert_eq!(head.status(), 200);
    for name in ["content-type", "cache-control", "etag", "content-length"] {
        assert_eq!(header(&head, name), header(&get, name), "{name}");
    }
    assert!(head.bytes().unwrap().is_empty());
    for (method, path) in [
        (reqwest::Method::PUT, "/ocsp"),
        (reqwest::Method::DELETE, "/ocsp/"),
        (reqwest::Method::POST, "/ocsp/MAA="),
    ] {
        let answer = client
            .request(method.clone(), f.server.url(path))
            .send()
            .unwrap();
        assert_eq!(answer.status(), 405, "{method} {path}");
        assert!(answer.headers().get("allow").is_some(), "{method} {path}");
    }
    let elsewhere = client.get(f.server.url("/ocspx")).send().unwrap();
    assert_eq!(elsewhere.status(), 404);
}

/// Reproducible noise (xorshift), no dev-dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A serial shaped like ours (16 octets, 0x40..=0x7f first, so that its
    /// DER INTEGER has the same length) that was never issued.
    fn serial(&mut self) -> [u8; 16] {
        let mut serial = [0u8; 16];
        for chunk in serial.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_be_bytes()[..chunk.len()]);
        }
        serial[0] = (serial[0] & 0x3f) | 0x40;
        serial
    }
}

/// `request` (made by OpenSSL for `serial`) with another serial of the same
/// length in its CertID.
fn with_serial(request: &[u8], serial: &str, other: &[u8]) -> Vec<u8> {
    let old = hex::decode(serial).unwrap();
    assert_eq!(old.len(), other.len());
    let at = request
        .windows(old.len())
        .position(|w| w == old)
        .expect("the serial's octets in the request");
    [&request[..at], other, &request[at + old.len()..]].concat()
}

/// The certStatus of every SingleResponse in a DER OCSPResponse.
fn cert_statuses(der: &[u8]) -> Vec<rasn_ocsp::CertStatus> {
    let response: rasn_ocsp::OcspResponse = rasn::der::decode(der).unwrap();
    let bytes = response.bytes.expect("a successful response");
    let basic: rasn_ocsp::BasicOcspResponse = rasn::der::decode(&bytes.response).unwrap();
    let responses = basic.tbs_response_data.responses;
    responses.into_iter().map(|r| r.cert_status).collect()
}

/// Polls `/metrics` until `counter` reaches `at_least` (the refresher runs
/// on its own schedule); panics if it never does.
fn await_counter(
    f: &Fixture,
    client: &reqwest::blocking::Client,
    counter_name: &str,
    at_least: u64,
) -> String {
    for _ in 0..600 {
        let metrics = f.metrics(client);
        if counter(&metrics, counter_name) >= at_least {
            return metrics;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{counter_name} never reached {at_least}");
}

#[test]
fn answers_for_serials_never_issued_are_not_cached_nor_re_signed() {
    // Answers valid 4 s: the refresher looks every 0.5 s and re-signs what
    // was served once a second old.
    let f = Fixture::serving(TestCa::new(), &[("EIDCA_OCSP_MAX_AGE", "4s")]);
    let client = http();
    let request = f.request_der(false);
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2_000 {
        let never = with_serial(&request, &f.serial, &noise.serial());
        let response = client.post(f.url()).body(never).send().unwrap();
        assert_eq!(response.status(), 200);
        let statuses = cert_statuses(&response.bytes().unwrap());
        assert_eq!(statuses, vec![rasn_ocsp::CertStatus::Unknown(())]);
    }
    let metrics = f.metrics(&client);
    assert_eq!(counter(&metrics, "eidca_ocsp_cached_responses"), 0);
    assert_eq!(
        counter(&metrics, "eidca_ocsp_cert_status_total{status=\"unknown\"}"),
        2_000
    );
    // One issued certificate asked for, after all of them: once the
    // refresher re-signs it, everything older was due as well.
    let response = client.post(f.url()).body(request).send().unwrap();
    f.assert_respin(&response.bytes().unwrap(), "good");
    assert_eq!(
        counter(&f.metrics(&client), "eidca_ocsp_cached_responses"),
        1
    );
    let metrics = await_counter(&f, &client, "eidca_ocsp_refreshed_total", 1);
    assert_eq!(
        counter(&metrics, "eidca_ocsp_refreshed_total"),
        1,
        "the refresher re-signed only the issued certificate's answer"
    );
}

/// The bare OCSPResponse for tryLater (RFC 6960 §4.2.1).
const TRY_LATER: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x03];

#[test]
fn a_burst_of_nonce_requests_gets_signed_answers_or_try_later_and_cached_answers_stay_good() {
    // One signing thread and room for one waiting signature per queue: a
    // burst from 8 clients overflows it whenever they outrun the thread.
    let env = [
        ("EIDCA_OCSP_SIGNING_THREADS", "1"),
        ("EIDCA_OCSP_SIGNING_QUEUE", "1"),
    ];
    let f = Fixture::serving(TestCa::new(), &env);
    let client = http();
    let cached = client.get(f.get_url()).send().unwrap();
    let etag = header(&cached, "etag");
    let nonce_request = f.request_der(true);
    let answers: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let client = http();
                    (0..25)
                        .map(|_| {
                            let response = client
                                .post(f.url())
                                .body(nonce_request.clone())
                                .send()
                                .unwrap();
                            assert_eq!(response.status(), 200);
                            response.bytes().unwrap().to_vec()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // Cached answers meanwhile: the same response, no signature.
        for _ in 0..25 {
            let again = client.get(f.get_url()).send().unwrap();
            assert_eq!(header(&again, "etag"), etag);
        }
        clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect()
    });
    let refused = answers.iter().filter(|a| a.as_slice() == TRY_LATER).count();
    let request_file = f.file("burst-req.der");
    std::fs::write(&request_file, &nonce_request).unwrap();
    for (n, answer) in answers
        .iter()
        .filter(|a| a.as_slice() != TRY_LATER)
        .enumerate()
    {
        assert_eq!(cert_statuses(answer), vec![rasn_ocsp::CertStatus::Good]);
        // A few checked by OpenSSL, nonce included (-reqin compares them).
        if n % 50 == 0 {
            let response_file = f.file("burst-resp.der");
            std::fs::write(&response_file, answer).unwrap();
            assert_openssl_verifies_with_its_nonce(&f, &request_file, &response_file);
        }
    }
    let metrics = f.metrics(&client);
    let try_later = "eidca_ocsp_responses_total{status=\"tryLater\"}";
    assert_eq!(counter(&metrics, try_later), refused as u64);
    assert_eq!(
        counter(&metrics, "eidca_ocsp_signing_refused_total"),
        refused as u64
    );
    assert_eq!(counter(&metrics, "eidca_ocsp_signing_queued"), 0);
    eprintln!(
        "{refused} of {} nonce requests answered tryLater",
        answers.len()
    );
}

/// Maps a primitive TLV's tag and content octets to new content octets,
/// or `None` to keep them.
type Rewrite<'a> = dyn Fn(u8, &[u8]) -> Option<Vec<u8>> + 'a;

/// `der` re-encoded with every primitive TLV that `rewrite` maps replaced,
/// and every length around it recomputed.
fn rewrite_der(der: &[u8], rewrite: &Rewrite<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = der;
    while let [tag, first, after @ ..] = rest {
        let (len, after) = match *first {
            n if n < 0x80 => (usize::from(n), after),
            n => {
                let count = usize::from(n & 0x7f);
                let len = after[..count]
                    .iter()
                    .fold(0, |l, b| l << 8 | usize::from(*b));
                (len, &after[count..])
            }
        };
        let (content, next) = after.split_at(len);
        let content = if tag & 0x20 != 0 {
            rewrite_der(content, rewrite)
        } else {
            rewrite(*tag, content).unwrap_or_else(|| content.to_vec())
        };
        out.push(*tag);
        match content.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend_from_slice(&[0x81, n as u8]),
            n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(&content);
        rest = next;
    }
    out
}

#[test]
fn a_serial_with_a_redundant_leading_zero_is_malformed_not_good() {
    let f = Fixture::new();
    let client = http();
    let request = f.request_der(false);
    let serial = hex::decode(&f.serial).unwrap();
    assert_eq!(
        rewrite_der(&request, &|_, _| None),
        request,
        "the rewriter is faithful"
    );
    // Our serials start with 0x40..0x7f: 0x00 before them is redundant.
    let padded = rewrite_der(&request, &|tag, content| {
        (tag == 0x02 && content == serial).then(|| [&[0][..], &serial].concat())
    });
    assert_ne!(padded, request);
    let response = client.post(f.url()).body(request).send().unwrap();
    f.assert_respin(&response.bytes().unwrap(), "good");
    for answer in [
        client.post(f.url()).body(padded.clone()).send().unwrap(),
        client
            .get(
                f.server
                    .url(&format!("/ocsp/{}", url_encode(&STANDARD.encode(&padded)))),
            )
            .send()
            .unwrap(),
    ] {
        assert_eq!(answer.status(), 200);
        assert_eq!(header(&answer, "content-type"), "application/ocsp-response");
        assert_eq!(&answer.bytes().unwrap()[..], MALFORMED);
    }
}

/// Reads one HTTP/1.1 response with a Content-Length from `stream`: its
/// head (status line and headers, lower-cased) and its body.
fn read_response(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut received = Vec::new();
    let mut byte = [0u8; 1];
    while !received.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).unwrap() {
            0 => panic!("closed after {:?}", String::from_utf8_lossy(&received)),
            _ => received.push(byte[0]),
        }
    }
    let head = String::from_utf8(received).unwrap().to_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    (head, body)
}

#[test]
fn an_over_long_ocsp_get_path_is_malformed_request_not_an_empty_414() {
    let f = Fixture::new();
    let addr = f.server.base_url.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let valid = url_encode(&STANDARD.encode(f.request_der(false)));
    // Over hyper's own limit (65,534 octets), just over ours (60 KiB), a
    // valid request padded with what base64 would take for more.
    let over_hyper = "A".repeat(70 * 1024);
    let over_ours = "A".repeat(60 * 1024 + 1);
    let padded = format!("{valid}{}", "A".repeat(64 * 1024));
    for (name, encoded) in [
        ("70 KiB", over_hyper.as_str()),
        ("60 KiB + 1", &over_ours),
        ("a valid request, padded", &padded),
    ] {
        let request = format!("GET /ocsp/{encoded} HTTP/1.1\r\nHost: x\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let (head, body) = read_response(&mut stream);
        assert!(head.starts_with("http/1.1 200"), "{name}: {head}");
        assert!(
            head.contains("content-type: application/ocsp-response"),
            "{name}: {head}"
        );
        assert!(head.contains("cache-control: no-cache"), "{name}: {head}");
        assert_eq!(body, MALFORMED, "{name}");
        // The connection carries on.
        let again = format!("GET /ocsp/{valid} HTTP/1.1\r\nHost: x\r\n\r\n");
        stream.write_all(again.as_bytes()).unwrap();
        let (head, body) = read_response(&mut stream);
        assert!(head.starts_with("http/1.1 200"), "{name}, then: {head}");
        f.assert_respin(&body, "good");
    }
    // Elsewhere, hyper's answer stands.
    let mut elsewhere = TcpStream::connect(&addr).unwrap();
    let request = format!("GET /crl/{over_hyper} HTTP/1.1\r\nHost: x\r\n\r\n");
    elsewhere.write_all(request.as_bytes()).unwrap();
    let (head, _) = read_response(&mut elsewhere);
    assert!(head.starts_with("http/1.1 414"), "{head}");
    let metrics = f.metrics(&http());
    assert_eq!(
        counter(
            &metrics,
            "eidca_ocsp_responses_total{status=\"malformedRequest\"}"
        ),
        3
    );
}
