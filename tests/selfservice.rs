//! The subscriber's self-service page. A real browser suspends and
//! resumes a card; wrong pairs get one uniform answer; failures lock a
//! client address, and a card number's resume, across restarts, but nobody
//! can stop an owner from suspending; forged posts change nothing; the page carries the security headers and no script.

mod common;
#[path = "selfservice/webdriver.rs"]
mod webdriver;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::{Server, TestCa, http_client_builder};
use fantoccini::Locator;
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, ORIGIN, RETRY_AFTER, SET_COOKIE};

/// The seed's subscriber and card, and a second pair for mismatches.
const CODE: &str = "A800000014";
const CARD: &str = "TP03000001";
const OTHER_CODE: &str = "B800000020";
const OTHER_CARD: &str = "TP03000002";

/// A CA with two certificates on `CARD` and one on `OTHER_CARD`.
struct Fixture {
    ca: TestCa,
    serials: Vec<String>,
    other_serials: Vec<String>,
}

impl Fixture {
    fn new() -> Self {
        let ca = TestCa::new();
        let serials = ["person-sign", "person-encrypt"]
            .map(|profile| issue(&ca, CODE, CARD, profile))
            .to_vec();
        let other_serials = vec![issue(&ca, OTHER_CODE, OTHER_CARD, "person-sign")];
        Fixture {
            ca,
            serials,
            other_serials,
        }
    }

    fn assert_statuses(&self, serials: &[String], expected: &str) {
        for serial in serials {
            assert_eq!(
                status_of(&self.ca, serial),
                expected,
                "certificate {serial}"
            );
        }
    }

    /// Every certificate's status, the length of the status history and
    /// the failures counted: what a refused request must leave as it was.
    /// (Not the audit log: the publisher may append a CRL record meanwhile.)
    fn observable_state(&self) -> (Vec<(String, String)>, i64, i64) {
        let conn = rusqlite::Connection::open(self.ca.store_path()).expect("open store");
        let statuses = conn
            .prepare("SELECT serial, status FROM certificates ORDER BY serial")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect("statuses");
        let count = |table: &str| -> i64 {
            conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .expect("row count")
        };
        (
            statuses,
            count("status_changes"),
            count("selfservice_failures"),
        )
    }
}

/// The status the CLI reports (`eidca status` prints the record).
fn status_of(ca: &TestCa, serial: &str) -> String {
    let record: serde_json::Value =
        serde_json::from_str(&ca.run_ok(&["status", serial])).expect("record JSON");
    record["status"].as_str().expect("status").to_owned()
}

fn issue(ca: &TestCa, code: &str, card: &str, profile: &str) -> String {
    common::issue_for(&ca.authority(), code, card, profile).serial
}

/// An HTTP client connecting from a chosen loopback address (the whole of
/// 127.0.0.0/8 reaches the server), so tests can play several clients.
fn client_from(local: &str) -> Client {
    let local: IpAddr = local.parse().expect("address");
    http_client_builder(Duration::from_secs(30))
        .local_address(local)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

/// A browser-like visitor without a browser: loads the page, keeps the
/// CSRF cookie and token, and posts the forms with its own `Origin`.
struct Visitor<'a> {
    server: &'a Server,
    http: Client,
    cookie: String,
    token: String,
}

impl<'a> Visitor<'a> {
    fn open(server: &'a Server, local: &str) -> Self {
        let http = client_from(local);
        let page = http
            .get(server.url("/self-service"))
            .send()
            .expect("GET page");
        assert_eq!(page.status(), StatusCode::OK);
        let cookie = page
            .headers()
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("CSRF cookie")
            .to_owned();
        let body = page.text().expect("page body");
        let token = hidden_token(&body);
        Visitor {
            server,
            http,
            cookie,
            token,
        }
    }

    fn post(&self, action: &str, code: &str, card: &str) -> Response {
        self.post_with(action, code, card, Some(&self.token), &self.server.base_url)
    }

    fn post_with(
        &self,
        action: &str,
        code: &str,
        card: &str,
        token: Option<&str>,
        origin: &str,
    ) -> Response {
        let mut form = vec![("subscriber_code", code), ("card_number", card)];
        if let Some(token) = token {
            form.push(("csrf_token", token));
        }
        self.http
            .post(self.server.url(&format!("/self-service/{action}")))
            .header(COOKIE, &self.cookie)
            .header(ORIGIN, origin)
            .form(&form)
            .send()
            .expect("POST form")
    }
}

fn hidden_token(page: &str) -> String {
    let marker = r#"name="csrf_token" value=""#;
    let start = page.find(marker).expect("token field") + marker.len();
    let len = page[start..].find('"').expect("token end");
    page[start..start + len].to_owned()
}

/// The JSON variant, as a mobile client sends it (no cookie, no Origin).
fn post_json(http: &Client, server: &Server, action: &str, code: &str, card: &str) -> Response {
    http.post(server.url(&format!("/self-service/{action}")))
        .json(&serde_json::json!({ "subscriber_code": code, "card_number": card }))
        .send()
        .expect("POST JSON")
}

fn problem_type(response: Response) -> (StatusCode, String) {
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: serde_json::Value = response.json().expect("problem JSON");
    assert_eq!(body["status"].as_u64(), Some(u64::from(status.as_u16())));
    (status, body["type"].as_str().expect("type").to_owned())
}

fn screenshots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests-output/selfservice");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

/// Opens the page, types the pair into the `action` form and submits it;
/// returns the answer page's `h1` text.
async fn submit_in_browser(
    browser: &fantoccini::Client,
    server: &Server,
    action: &str,
    code: &str,
    card: &str,
) -> String {
    browser
        .goto(&server.url("/self-service"))
        .await
        .expect("open page");
    for (field, value) in [("subscriber-code", code), ("card-number", card)] {
        browser
            .find(Locator::Id(&format!("{action}-{field}")))
            .await
            .expect("form field")
            .send_keys(value)
            .await
            .expect("type");
    }
    browser
        .find(Locator::Id(&format!("{action}-submit")))
        .await
        .expect("submit button")
        .click()
        .await
        .expect("submit");
    browser
        .wait()
        .for_element(Locator::Css("main p.back"))
        .await
        .expect("answer page");
    text_of(browser, Locator::Css("h1")).await
}

async fn text_of(browser: &fantoccini::Client, locator: Locator<'_>) -> String {
    browser
        .find(locator)
        .await
        .expect("element")
        .text()
        .await
        .expect("text")
}

async fn screenshot(browser: &fantoccini::Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    std::fs::write(screenshots_dir().join(name), png).expect("save screenshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_suspends_and_resumes_a_card_in_a_real_browser() {
    let fixture = Fixture::new();
    let server = fixture.ca.serve(&[]);
    let driver = webdriver::ChromeDriver::start();
    let profile = tempfile::tempdir().expect("profile dir");
    let browser = driver.browser(profile.path()).await;

    browser
        .goto(&server.url("/self-service"))
        .await
        .expect("open page");
    let lang = browser
        .find(Locator::Css("html"))
        .await
        .expect("html element")
        .attr("lang")
        .await
        .expect("lang attribute");
    assert_eq!(lang.as_deref(), Some("zh-Hant-TW"));
    screenshot(&browser, "1-form.png").await;

    let title = submit_in_browser(&browser, &server, "suspend", OTHER_CODE, CARD).await;
    assert!(title.contains("無法受理"), "{title}");
    screenshot(&browser, "2-wrong-pair.png").await;
    fixture.assert_statuses(&fixture.serials, "good");

    let steps = [
        ("suspend", "suspended", "憑證已暫禁", "3-suspend-result.png"),
        ("resume", "good", "憑證已解除暫禁", "4-resume-result.png"),
    ];
    for (action, status, zh_title, shot) in steps {
        // Lower case on purpose: the page upper-cases what the subscriber types.
        let title = submit_in_browser(&browser, &server, action, &CODE.to_lowercase(), CARD).await;
        assert!(title.contains(zh_title), "{title}");
        let rows = text_of(&browser, Locator::Css("main table")).await;
        for serial in &fixture.serials {
            let masked = format!("{}…{}", &serial[..4], &serial[serial.len() - 4..]);
            assert!(rows.contains(&masked), "{masked} missing from {rows}");
            assert!(!rows.contains(serial.as_str()), "full serial shown");
        }
        let visible_by = text_of(&browser, Locator::Id("visible-by")).await;
        assert!(visible_by.ends_with("UTC"), "{visible_by}");
        screenshot(&browser, shot).await;
        fixture.assert_statuses(&fixture.serials, status);
        // What a relying party sees at once: OCSP from the same server.
        let ocsp_word = if status == "good" { "good" } else { "revoked" };
        for serial in &fixture.serials {
            let answer = ocsp_answer(&fixture.ca, &server, serial);
            assert!(
                answer.contains(&format!(": {ocsp_word}")),
                "{serial}: {answer}"
            );
            assert_eq!(
                answer.contains("Reason: certificateHold"),
                status == "suspended",
                "{answer}"
            );
        }
        fixture.assert_statuses(&fixture.other_serials, "good");
    }
    browser.close().await.expect("close browser");
}

/// `openssl ocsp` against the server for one serial, verified with the dev root.
fn ocsp_answer(ca: &TestCa, server: &Server, serial: &str) -> String {
    let issuer = ca.issuing_cert();
    let root = ca.root_cert();
    let url = server.url("/ocsp");
    let serial = format!("0x{serial}");
    let out = common::openssl(&[
        "ocsp",
        "-issuer",
        issuer.to_str().expect("path"),
        "-CAfile",
        root.to_str().expect("path"),
        "-serial",
        &serial,
        "-url",
        &url,
        "-no_nonce",
    ]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("Response verify OK"), "{text}");
    text
}

#[test]
fn wrong_code_wrong_card_and_mismatched_pair_get_one_identical_answer() {
    let fixture = Fixture::new();
    let server = fixture.ca.serve(&[]);
    let wrong_pairs = [
        (OTHER_CODE.replace('B', "C"), CARD.to_owned()),
        (CODE.to_owned(), "TP09999999".to_owned()),
        (OTHER_CODE.to_owned(), CARD.to_owned()),
    ];
    // Separate client addresses keep the three below any client lock-out.
    let visitor = Visitor::open(&server, "127.0.0.2");
    let pages: Vec<(StatusCode, String)> = wrong_pairs
        .iter()
        .map(|(code, card)| {
            let r = visitor.post("suspend", code, card);
            (r.status(), r.text().expect("body"))
        })
        .collect();
    assert_eq!(pages[0].0, StatusCode::FORBIDDEN);
    assert!(
        pages[0].1.contains("用戶代碼與 IC 卡號不相符"),
        "{}",
        pages[0].1
    );
    assert!(pages.iter().all(|p| *p == pages[0]), "{pages:#?}");

    let mobile = client_from("127.0.0.3");
    let answers: Vec<(StatusCode, String)> = wrong_pairs
        .iter()
        .map(|(code, card)| {
            let r = post_json(&mobile, &server, "resume", code, card);
            (r.status(), r.text().expect("body"))
        })
        .collect();
    assert_eq!(answers[0].0, StatusCode::FORBIDDEN);
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:#?}");
    let problem: serde_json::Value = serde_json::from_str(&answers[0].1).expect("problem");
    assert_eq!(
        problem["type"],
        "urn:eidca:problem:self-service:pair-not-recognised"
    );
    fixture.assert_statuses(&fixture.serials, "good");
}

/// `count` wrong pairs for `card`, one from each of the addresses
/// 127.0.0.`first`…, each answered 403.
fn wrong_pairs_from_many(server: &Server, action: &str, card: &str, first: u8, count: u8) {
    for i in first..first + count {
        let r = post_json(
            &client_from(&format!("127.0.0.{i}")),
            server,
            action,
            "Z0000000",
            card,
        );
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{action} from .{i}");
    }
}

#[test]
fn five_failures_lock_a_cards_resume_even_for_the_right_pair_and_across_a_restart() {
    let fixture = Fixture::new();
    let server = fixture.ca.serve(&[]);
    let suspended = post_json(&client_from("127.0.0.10"), &server, "suspend", CODE, CARD);
    assert_eq!(suspended.status(), StatusCode::OK);
    // Five different clients, one wrong code each: only the card's counter reaches five.
    wrong_pairs_from_many(&server, "resume", CARD, 11, 5);
    let owner = Visitor::open(&server, "127.0.0.16");
    let locked = owner.post("resume", CODE, CARD);
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: i64 = locked
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds");
    assert!((1..=15 * 60).contains(&retry), "Retry-After {retry}");
    let page = locked.text().expect("body");
    assert!(
        page.contains("可再次嘗試的時間") && page.contains("<time datetime="),
        "{page}"
    );
    let (status, kind) = problem_type(post_json(
        &client_from("127.0.0.16"),
        &server,
        "resume",
        CODE,
        CARD,
    ));
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(kind, "urn:eidca:problem:self-service:locked");
    // Another card is not locked, and the same client may use it.
    assert_eq!(
        owner.post("suspend", OTHER_CODE, OTHER_CARD).status(),
        StatusCode::OK
    );
    assert_eq!(
        owner.post("resume", OTHER_CODE, OTHER_CARD).status(),
        StatusCode::OK
    );
    fixture.assert_statuses(&fixture.other_serials, "good");

    server.kill();
    let server = fixture.ca.serve(&[]);
    let after_restart = post_json(&client_from("127.0.0.17"), &server, "resume", CODE, CARD);
    assert_eq!(after_restart.status(), StatusCode::TOO_MANY_REQUESTS);
    fixture.assert_statuses(&fixture.serials, "suspended");
}

#[test]
fn nobody_who_knows_a_card_number_can_stop_its_owner_from_suspending() {
    let fixture = Fixture::new();
    let server = fixture.ca.serve(&[]);
    // Five wrong pairs for the card from one address, and one from each of
    // five more: the guessers lock themselves, not the card.
    let guesser = client_from("127.0.0.18");
    for _ in 0..5 {
        let r = post_json(&guesser, &server, "suspend", OTHER_CODE, CARD);
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    wrong_pairs_from_many(&server, "suspend", CARD, 11, 5);
    let (status, kind) = problem_type(post_json(&guesser, &server, "suspend", CODE, CARD));
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(kind, "urn:eidca:problem:self-service:locked");
    fixture.assert_statuses(&fixture.serials, "good");
    let owner = Visitor::open(&server, "127.0.0.16");
    assert_eq!(owner.post("suspend", CODE, CARD).status(), StatusCode::OK);
    fixture.assert_statuses(&fixture.serials, "suspended");
}

#[test]
fn suspend_and_resume_failures_are_counted_apart() {
    let fixture = Fixture::new();
    let server = fixture.ca.serve(&[]);
    let http = client_from("127.0.0.19");
    // Five wrong resumes lock this address for resume, not for suspend.
    for _ in 0..5 {
        let r = post_json(&http, &server, "resume", CODE, OTHER_CARD);
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(
        post_json(&http, &server, "suspend", CODE, CARD).status(),
        StatusCode::OK
    );
    assert_eq!(
        post_json(&http, &server, "resume", CODE, CARD).status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    fixture.assert_statuses(&fixture.serials, "suspended");
    // Five wrong suspends lock another address for suspend, not for resume.
    let other = client_from("127.0.0.20");
    for _ in 0..5 {
        let r = post_json(&other, &server, "suspend", CODE, OTHER_CARD);
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(
        post_json(&other, &server, "suspend", OTHER_CODE, OTHER_CARD).status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        post_json(&other, &server, "resume", CODE, CARD).status(),
        StatusCode::OK
    );
    fixture.assert_statuses(&fixture.serials, "good");
}

#[test]
fn a_crowd_of_guessers_meets_the_cards_daily_suspend_ceiling() {
    let fixture = Fixture::new();
    let server = fixture.ca.serve(&[]);
    // 100 wrong suspends for the card, from 100 addresses: the ceiling.
    wrong_pairs_from_many(&server, "suspend", CARD, 100, 100);
    let (status, kind) = problem_type(post_json(
        &client_from("127.0.1.1"),
        &server,
        "suspend",
        CODE,
        CARD,
    ));
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(kind, "urn:eidca:problem:self-service:locked");
    fixture.assert_statuses(&fixture.serials, "good");
    // Another card is not concerned.
    assert_eq!(
        post_json(
            &client_from("127.0.1.1"),
            &server,
            "suspend",
            OTHER_CODE,
            OTHER_CARD
        )
        .status(),
        StatusCode::OK
    );
}

#[test]
fn five_failures_lock_a_client_address_for_every_card() {
    let fixture = Fixture::new();
    let server = fixture.ca.serve(&[]);
    let guesser = client_from("127.0.0.21");
    // Five different unknown cards: only the client's counter reaches five.
    for n in 1..=5 {
        let r = post_json(&guesser, &server, "suspend", CODE, &format!("TP0900000{n}"));
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    let r = post_json(&guesser, &server, "suspend", CODE, CARD);
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    fixture.assert_statuses(&fixture.serials, "good");
    let elsewhere = post_json(&client_from("127.0.0.22"), &server, "suspend", CODE, CARD);
    assert_eq!(elsewhere.status(), StatusCode::OK);
    fixture.assert_statuses(&fixture.serials, "suspended");
}

#[test]
fn a_success_does_not_reset_another_cards_failures() {
    let fixture = Fixture::new();
    let server = fixture.ca.serve(&[]);
    let suspended = post_json(&client_from("127.0.0.30"), &server, "suspend", CODE, CARD);
    assert_eq!(suspended.status(), StatusCode::OK);
    let wrong = |i: u8| {
        let http = client_from(&format!("127.0.0.{i}"));
        post_json(&http, &server, "resume", OTHER_CODE, CARD).status()
    };
    for i in 31..35 {
        assert_eq!(wrong(i), StatusCode::FORBIDDEN);
    }
    let other = post_json(
        &client_from("127.0.0.35"),
        &server,
        "suspend",
        OTHER_CODE,
        OTHER_CARD,
    );
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(wrong(36), StatusCode::FORBIDDEN);
    let right = post_json(&client_from("127.0.0.37"), &server, "resume", CODE, CARD);
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[test]
fn lockout_is_configurable() {
    let ca = TestCa::with_config(|c| c.replace("max_failures = 5", "max_failures = 2"));
    let serial = issue(&ca, CODE, CARD, "person-sign");
    let server = ca.serve(&[("EIDCA_SELFSERVICE_LOCKOUT", "2m")]);
    let http = client_from("127.0.0.41");
    for _ in 0..2 {
        let r = post_json(&http, &server, "suspend", OTHER_CODE, CARD);
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    let locked = post_json(&http, &server, "suspend", CODE, CARD);
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: i64 = locked.headers()[RETRY_AFTER]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry <= 120, "Retry-After {retry} beyond the 2m lockout");
    assert_eq!(status_of(&ca, &serial), "good");
}

#[test]
fn posts_without_the_csrf_token_or_from_a_foreign_origin_change_nothing() {
    let fixture = Fixture::new();
    let server = fixture.ca.serve(&[]);
    let visitor = Visitor::open(&server, "127.0.0.51");
    let before = fixture.observable_state();
    let own_origin = server.base_url.clone();

    let no_token = visitor.post_with("suspend", CODE, CARD, None, &own_origin);
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    assert!(no_token.text().expect("body").contains("表單已失效"));

    let foreign = visitor.post_with(
        "suspend",
        CODE,
        CARD,
        Some(&visitor.token),
        "https://evil.example",
    );
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);

    let forged_token = visitor.post_with(
        "suspend",
        CODE,
        CARD,
        Some("AAAAAGsI6Y8A06hNVxJjZfPmsc3OFauIva0r_dOHbxQV5b-7-qhHdw"),
        &own_origin,
    );
    assert_eq!(forged_token.status(), StatusCode::FORBIDDEN);

    // Another visitor's token does not fit this visitor's cookie.
    let stranger = Visitor::open(&server, "127.0.0.52");
    let swapped = visitor.post_with("suspend", CODE, CARD, Some(&stranger.token), &own_origin);
    assert_eq!(swapped.status(), StatusCode::FORBIDDEN);

    let json_foreign = client_from("127.0.0.53")
        .post(server.url("/self-service/suspend"))
        .header(ORIGIN, "https://evil.example")
        .json(&serde_json::json!({ "subscriber_code": CODE, "card_number": CARD }))
        .send()
        .expect("POST");
    let (status, kind) = problem_type(json_foreign);
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(kind, "urn:eidca:problem:self-service:forbidden");

    assert_eq!(fixture.observable_state(), before);
    // The same visitor with its token and its own origin succeeds: the
    // refusals above were the protection at work, not a broken form.
    assert_eq!(visitor.post("suspend", CODE, CARD).status(), StatusCode::OK);
    fixture.assert_statuses(&fixture.serials, "suspended");
}

#[test]
fn page_and_answers_carry_the_security_headers_and_no_inline_script() {
    let fixture = Fixture::new();
    let server = fixture.ca.serve(&[]);
    let http = client_from("127.0.0.61");
    let page = http
        .get(server.url("/self-service"))
        .send()
        .expect("GET page");
    assert_eq!(page.status(), StatusCode::OK);
    let check_headers = |r: &Response| {
        let h = r.headers();
        let csp = h[CONTENT_SECURITY_POLICY].to_str().expect("ascii");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("script-src"),
            "{csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(h.contains_key("referrer-policy"));
    };
    check_headers(&page);
    let cookie = page.headers()[SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let html = page.text().expect("body");
    for forbidden in [
        "<script",
        "<style",
        "style=",
        "javascript:",
        " onload=",
        " onclick=",
    ] {
        assert!(!html.contains(forbidden), "page contains {forbidden}");
    }
    for needed in [
        r#"<html lang="zh-Hant-TW""#,
        r#"lang="en""#,
        r#"<label for="suspend-subscriber-code""#,
        r#"<label for="resume-card-number""#,
        r#"name="subscriber_code""#,
        r#"name="card_number""#,
        r#"pattern="[A-Za-z0-9]{4,16}""#,
        r#"maxlength="16""#,
        "required",
        // The live sync window of the development config, in minutes.
        "within 10 minutes if they cache answers",
        "within 15 minutes",
        "最遲 15 分鐘",
    ] {
        assert!(html.contains(needed), "page lacks {needed}");
    }
    let css = http
        .get(server.url("/self-service/style.css"))
        .send()
        .expect("GET stylesheet");
    assert_eq!(css.status(), StatusCode::OK);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/css")
    );

    let answer = post_json(&http, &server, "suspend", OTHER_CODE, CARD);
    check_headers(&answer);
}

#[test]
fn a_revoked_card_is_sent_to_a_registration_window() {
    let fixture = Fixture::new();
    for serial in &fixture.serials {
        fixture
            .ca
            .run_ok(&["revoke", serial, "--reason", "keyCompromise"]);
    }
    let server = fixture.ca.serve(&[]);
    let visitor = Visitor::open(&server, "127.0.0.71");
    for action in ["suspend", "resume"] {
        let r = visitor.post(action, CODE, CARD);
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let page = r.text().expect("body");
        assert!(
            page.contains("註冊窗口") && page.contains("registration window"),
            "{page}"
        );
    }
    let (status, kind) = problem_type(post_json(
        &client_from("127.0.0.72"),
        &server,
        "resume",
        CODE,
        CARD,
    ));
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(kind, "urn:eidca:problem:self-service:card-revoked");
    fixture.assert_statuses(&fixture.serials, "revoked");
}

/// Suspends every certificate of `CARD` through the RA API on `channel`.
fn ra_suspends_the_card(server: &Server, channel: &str) {
    let r = client_from("127.0.0.1")
        .post(server.url(&format!("/api/v1/cards/{CARD}/suspend")))
        .bearer_auth("dev-officer-token")
        .json(&serde_json::json!({ "channel": channel, "note": "stolen" }))
        .send()
        .expect("RA suspend");
    assert_eq!(r.status(), StatusCode::OK);
}

#[test]
fn a_suspension_made_by_the_ra_or_the_emergency_channel_is_lifted_only_by_the_ra() {
    for channel in ["emergency", "ra"] {
        let fixture = Fixture::new();
        let server = fixture.ca.serve(&[]);
        ra_suspends_the_card(&server, channel);
        let before = fixture.observable_state();
        let (status, kind) = problem_type(post_json(
            &client_from("127.0.0.91"),
            &server,
            "resume",
            CODE,
            CARD,
        ));
        assert_eq!(status, StatusCode::CONFLICT, "{channel}");
        assert_eq!(
            kind,
            "urn:eidca:problem:self-service:resume-at-registration-window"
        );
        let page = Visitor::open(&server, "127.0.0.92").post("resume", CODE, CARD);
        assert_eq!(page.status(), StatusCode::CONFLICT);
        let page = page.text().expect("body");
        assert!(
            page.contains("註冊窗口") && page.contains("registration window"),
            "{page}"
        );
        assert_eq!(fixture.observable_state(), before, "nothing changed");
        fixture.assert_statuses(&fixture.serials, "suspended");
    }
}

#[test]
fn a_card_resumes_through_self_service_only_if_every_suspension_was_its_own() {
    let fixture = Fixture::new();
    let server = fixture.ca.serve(&[]);
    // One certificate suspended by the officer, the other by the subscriber.
    fixture.ca.run_ok(&["suspend", &fixture.serials[0]]);
    let http = client_from("127.0.0.93");
    assert_eq!(
        post_json(&http, &server, "suspend", CODE, CARD).status(),
        StatusCode::OK
    );
    let (status, kind) = problem_type(post_json(&http, &server, "resume", CODE, CARD));
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        kind,
        "urn:eidca:problem:self-service:resume-at-registration-window"
    );
    fixture.assert_statuses(&fixture.serials, "suspended");
    // The officer lifts its own suspension; then the subscriber may lift theirs.
    fixture.ca.run_ok(&["resume", &fixture.serials[0]]);
    assert_eq!(
        post_json(&http, &server, "resume", CODE, CARD).status(),
        StatusCode::OK
    );
    fixture.assert_statuses(&fixture.serials, "good");
}

#[test]
fn json_variant_suspends_resumes_and_refuses_what_cannot_change() {
    let fixture = Fixture::new();
    let server = fixture.ca.serve(&[]);
    let http = client_from("127.0.0.81");
    let (status, kind) = problem_type(post_json(&http, &server, "resume", CODE, CARD));
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(kind, "urn:eidca:problem:self-service:not-suspended");

    let r = post_json(&http, &server, "suspend", CODE, CARD);
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().expect("JSON");
    assert_eq!(body["action"], "suspend");
    let certificates = body["certificates"].as_array().expect("certificates");
    assert_eq!(certificates.len(), 2);
    assert!(certificates.iter().all(|c| c["status"] == "suspended"));
    assert!(
        body["visible_by"].as_str().expect("visible_by")
            > body["changed_at"].as_str().expect("changed_at")
    );
    fixture.assert_statuses(&fixture.serials, "suspended");

    let (status, kind) = problem_type(post_json(&http, &server, "suspend", CODE, CARD));
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(kind, "urn:eidca:problem:self-service:already-suspended");

    let bad = post_json(&http, &server, "resume", "A8-0", CARD);
    assert_eq!(problem_type(bad).0, StatusCode::BAD_REQUEST);

    let r = post_json(&http, &server, "resume", CODE, CARD);
    assert_eq!(r.status(), StatusCode::OK);
    fixture.assert_statuses(&fixture.serials, "good");
    fixture.assert_statuses(&fixture.other_serials, "good");
}

#[test]
fn a_body_over_the_limit_gets_the_pages_or_the_jsons_own_413() {
    let fixture = Fixture::new();
    let server = fixture.ca.serve(&[]);
    let http = client_from("127.0.0.95");
    let long = "A".repeat(5 * 1024);
    let (status, kind) = problem_type(
        http.post(server.url("/self-service/suspend"))
            .json(&serde_json::json!({ "subscriber_code": long, "card_number": CARD }))
            .send()
            .expect("POST JSON"),
    );
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(kind, "urn:eidca:problem:self-service:too-large");
    let page = http
        .post(server.url("/self-service/suspend"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("subscriber_code={long}&card_number={CARD}"))
        .send()
        .expect("POST form");
    assert_eq!(page.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let content_type = page.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = page.text().expect("page");
    assert!(page.contains("太長") && page.contains("too long"), "{page}");
    fixture.assert_statuses(&fixture.serials, "good");
}

#[test]
fn an_origin_of_the_same_host_with_another_scheme_is_foreign() {
    let fixture = Fixture::new();
    let server = fixture.ca.serve(&[]);
    let http = client_from("127.0.0.96");
    let host = server
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let post = |origin: String| {
        http.post(server.url("/self-service/suspend"))
            .header("Origin", origin)
            .json(&serde_json::json!({ "subscriber_code": CODE, "card_number": CARD }))
            .send()
            .expect("POST JSON")
    };
    let (status, kind) = problem_type(post(format!("https://{host}")));
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(kind, "urn:eidca:problem:self-service:forbidden");
    fixture.assert_statuses(&fixture.serials, "good");
    assert_eq!(post(format!("http://{host}")).status(), StatusCode::OK);
    fixture.assert_statuses(&fixture.serials, "suspended");
}

#[test]
fn a_bad_selfservice_setting_stops_start_up_naming_the_key() {
    let ca = TestCa::new();
    for (name, value, key) in [
        (
            "EIDCA_SELFSERVICE_MAX_FAILURES",
            "0",
            "selfservice.max_failures",
        ),
        ("EIDCA_SELFSERVICE_LOCKOUT", "0s", "selfservice.lockout"),
        (
            "EIDCA_SELFSERVICE_SUSPEND_CARD_CEILING",
            "99",
            "selfservice.suspend_card_ceiling",
        ),
    ] {
        let out = ca
            .command()
            .env(name, value)
            .args(["crl", "--full"])
            .output()
            .expect("run eidca");
        assert!(!out.status.success(), "{name}={value} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{stderr}");
    }
}
