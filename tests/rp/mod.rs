//! The relying-party simulator: while a driver suspends, resumes
//! and revokes certificates through the RA API, a relying party polls the
//! full CRL, the delta CRL and OCSP the way a real one does, and the ledger
//! records when each channel first showed each change. The report compares
//! the observed delays with the sync window of SPEC §6.
//!
//! Shared by `tests/rp_check.rs` and `examples/rp_check.rs`; each provides
//! the CRL decoder of `tests/common/crl.rs` as `crate::crl`.
#![allow(dead_code)]

pub mod driver;
pub mod ledger;
pub mod ocsp_client;
pub mod relying_party;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::Value;

use driver::{Dice, Driver};
use ledger::{Bounds, Ledger, Report};
use ocsp_client::OcspClient;
use relying_party::{RelyingParty, lock};

/// How often the relying party checks whether something is due.
const TICK: Duration = Duration::from_millis(25);

/// What to simulate against which server.
#[derive(Debug, Clone)]
pub struct Settings {
    pub base_url: String,
    /// An officer token (RA API and sync window).
    pub token: String,
    /// Certificates issued for the run.
    pub certificates: usize,
    /// How long the driver makes changes; the relying party then keeps
    /// polling until every change was seen or its bound has passed.
    pub driving: Duration,
    /// Pause between two changes, in milliseconds (low, high).
    pub pause_ms: (u64, u64),
    /// Added to each promised bound for polling and HTTP.
    pub allowance: Duration,
    pub seed: u64,
}

/// The report and what the relying party fetched.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    pub crls_fetched: usize,
    pub ocsp_fetched: usize,
}

fn http() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client")
}

/// The configured intervals, from `GET /api/v1/sync-window`.
fn bounds(http: &Client, settings: &Settings) -> Result<Bounds, String> {
    let window: Value = http
        .get(format!("{}/api/v1/sync-window", settings.base_url))
        .bearer_auth(&settings.token)
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .map_err(|e| format!("GET /api/v1/sync-window: {e}"))?;
    let seconds = |key: &str| {
        window[key]
            .as_u64()
            .map(Duration::from_secs)
            .ok_or(format!("sync window without {key}"))
    };
    Ok(Bounds {
        ocsp_max_age: seconds("ocsp_max_age_s")?,
        delta_crl_interval: seconds("delta_crl_interval_s")?,
        full_crl_interval: seconds("full_crl_interval_s")?,
        allowance: settings.allowance,
    })
}

fn issuing_ca(http: &Client, base_url: &str) -> Result<x509_cert::Certificate, String> {
    use der::Decode;
    let der = http
        .get(format!("{base_url}/ca/issuing-ca.crt"))
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.bytes())
        .map_err(|e| format!("GET /ca/issuing-ca.crt: {e}"))?;
    x509_cert::Certificate::from_der(&der).map_err(|e| format!("issuing CA certificate: {e}"))
}

/// Runs one simulation.
pub fn run(settings: &Settings) -> Result<Outcome, String> {
    let http = http();
    let ledger = Mutex::new(Ledger::new(bounds(&http, settings)?));
    let issuer = issuing_ca(&http, &settings.base_url)?;
    let ocsp = OcspClient::new(&issuer);
    let mut driver = Driver::new(
        http.clone(),
        &settings.base_url,
        &settings.token,
        ocsp,
        Dice::new(settings.seed),
    );
    driver.issue(settings.certificates)?;
    let watched = driver.serials();
    let mut relying_party = RelyingParty::new(http, &settings.base_url, issuer);
    let driving_done = AtomicBool::new(false);

    std::thread::scope(|scope| {
        let polling = scope.spawn(|| -> Result<(), String> {
            let mut drained_since = None;
            loop {
                relying_party.poll(&watched, &ledger)?;
                if driving_done.load(Ordering::Acquire) {
                    let since = *drained_since.get_or_insert_with(Instant::now);
                    let patience = lock(&ledger).bounds.patience();
                    if lock(&ledger).all_seen() || since.elapsed() > patience {
                        return Ok(());
                    }
                }
                std::thread::sleep(TICK);
            }
        });
        let driving = drive(&mut driver, settings, &ledger);
        driving_done.store(true, Ordering::Release);
        let polled = polling.join().map_err(|_| "relying party panicked")?;
        driving.and(polled)
    })?;

    Ok(Outcome {
        report: lock(&ledger).report(Instant::now()),
        crls_fetched: relying_party.crls_fetched,
        ocsp_fetched: relying_party.ocsp_fetched,
    })
}

fn drive(driver: &mut Driver, settings: &Settings, ledger: &Mutex<Ledger>) -> Result<(), String> {
    let end = Instant::now() + settings.driving;
    while Instant::now() < end {
        if !driver.change_one(ledger)? {
            std::thread::sleep(TICK);
            continue;
        }
        std::thread::sleep(driver.pause(settings.pause_ms));
    }
    Ok(())
}
