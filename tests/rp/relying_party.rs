//! The polling side of the simulator: a relying party that keeps the full
//! CRL, the delta CRL and an OCSP answer per watched serial, and re-fetches
//! each only when a real one would — its nextUpdate has passed or its HTTP
//! max-age has expired — revalidating with `If-None-Match`
//! ([RFC 9111 §4.3](https://www.rfc-editor.org/rfc/rfc9111#section-4.3)).
//!
//! Each fetch is checked against SPEC §4–§6 and shown to the ledger.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use reqwest::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use time::OffsetDateTime;
use x509_cert::Certificate;

use super::ledger::{Channel, Ledger, Status};
use super::ocsp_client::{OcspAnswer, OcspClient};
use crate::crl::{Crl, REMOVE_FROM_CRL, decode, patched};

/// A fetched object and what HTTP said about keeping it.
#[derive(Debug)]
struct Held<T> {
    object: T,
    etag: Option<String>,
    /// When `Cache-Control: max-age` runs out.
    stale_at: Instant,
    /// The object's own nextUpdate.
    next_update: OffsetDateTime,
}

impl<T> Held<T> {
    /// A real relying party fetches again once either lifetime is over.
    fn due(&self) -> bool {
        Instant::now() >= self.stale_at || OffsetDateTime::now_utc() >= self.next_update
    }
}

fn due<T>(held: &Option<Held<T>>) -> bool {
    held.as_ref().is_none_or(Held::due)
}

/// The answer to one conditional GET.
enum Fetched {
    Changed(Vec<u8>, Option<String>, Instant),
    Unchanged(Instant),
}

fn max_age(response: &Response) -> Duration {
    let seconds = response
        .headers()
        .get(CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|d| d.trim().strip_prefix("max-age="))
                .and_then(|s| s.parse().ok())
        })
        .unwrap_or(0);
    Duration::from_secs(seconds)
}

/// A relying party of one CA.
pub struct RelyingParty {
    http: Client,
    base_url: String,
    issuer: Certificate,
    ocsp: OcspClient,
    full: Option<Held<Crl>>,
    delta: Option<Held<Crl>>,
    /// Full CRLs by number: what a delta's BaseCRLNumber is resolved against.
    bases: BTreeMap<u64, Crl>,
    answers: HashMap<String, Held<OcspAnswer>>,
    /// The highest CRL number seen at each URL: a URL never goes back.
    highest_number: HashMap<String, u64>,
    pub crls_fetched: usize,
    pub ocsp_fetched: usize,
}

impl RelyingParty {
    pub fn new(http: Client, base_url: &str, issuer: Certificate) -> Self {
        Self {
            http,
            base_url: base_url.to_owned(),
            ocsp: OcspClient::new(&issuer),
            issuer,
            full: None,
            delta: None,
            bases: BTreeMap::new(),
            answers: HashMap::new(),
            highest_number: HashMap::new(),
            crls_fetched: 0,
            ocsp_fetched: 0,
        }
    }

    /// Re-fetches what is due and shows the ledger what the channels say.
    /// `watched` are the serials whose OCSP answers it keeps.
    pub fn poll(&mut self, watched: &[String], ledger: &Mutex<Ledger>) -> Result<(), String> {
        if due(&self.full) {
            let held = self.full.take();
            self.full = Some(self.refresh_crl("full", held, ledger)?);
            let full = &self.full.as_ref().expect("just fetched").object;
            self.bases
                .entry(full.number)
                .or_insert_with(|| full.clone());
            let fetched = Instant::now();
            lock(ledger).observe(Channel::FullCrl, fetched, |serial| {
                Some(Status::from_entry(full.entries.get(serial)))
            });
        }
        if due(&self.delta) {
            let held = self.delta.take();
            self.delta = Some(self.refresh_crl("delta", held, ledger)?);
            self.observe_delta(ledger)?;
        }
        for serial in watched {
            if self.answers.get(serial).is_none_or(Held::due) {
                self.refresh_ocsp(serial, ledger)?;
            }
        }
        Ok(())
    }

    /// A conditional GET of `path`, checking that what the server serves is
    /// not past its nextUpdate at the moment it was asked for.
    fn get(&mut self, path: &str, etag: Option<&str>) -> Result<(Response, Instant), String> {
        let mut request = self.http.get(format!("{}{path}", self.base_url));
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let response = request.send().map_err(|e| format!("GET {path}: {e}"))?;
        Ok((response, Instant::now()))
    }

    fn fetch(&mut self, path: &str, etag: Option<&str>) -> Result<(Fetched, Duration), String> {
        let (response, arrived) = self.get(path, etag)?;
        let max_age = max_age(&response);
        let fetched = match response.status() {
            StatusCode::NOT_MODIFIED if etag.is_some() => Fetched::Unchanged(arrived),
            StatusCode::OK => {
                let etag = response
                    .headers()
                    .get(ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = response.bytes().map_err(|e| format!("GET {path}: {e}"))?;
                Fetched::Changed(body.to_vec(), etag, arrived)
            }
            other => return Err(format!("GET {path}: {other}")),
        };
        Ok((fetched, max_age))
    }

    /// Fetches `/crl/{kind}.crl` again, revalidating `held`.
    fn refresh_crl(
        &mut self,
        kind: &str,
        held: Option<Held<Crl>>,
        ledger: &Mutex<Ledger>,
    ) -> Result<Held<Crl>, String> {
        let asked = OffsetDateTime::now_utc();
        let etag = held.as_ref().and_then(|h| h.etag.clone());
        let (fetched, max_age) = self.fetch(&format!("/crl/{kind}.crl"), etag.as_deref())?;
        self.crls_fetched += 1;
        let held = match (fetched, held) {
            (Fetched::Unchanged(arrived), Some(held)) => Held {
                stale_at: arrived + max_age,
                ..held
            },
            (Fetched::Changed(der, etag, arrived), _) => {
                let crl = decode(&der, &self.issuer);
                self.check_new_crl(kind, &crl, ledger);
                Held {
                    next_update: crl.next_update,
                    object: crl,
                    etag,
                    stale_at: arrived + max_age,
                }
            }
            (Fetched::Unchanged(_), None) => unreachable!("304 only to a conditional request"),
        };
        if asked > held.next_update {
            lock(ledger).violation(format!(
                "{kind}.crl number {} served at {asked} past its nextUpdate {}",
                held.object.number, held.next_update
            ));
        }
        Ok(held)
    }

    /// A new CRL at a URL has a higher number than the one it replaces, and
    /// is of the kind the URL names.
    fn check_new_crl(&mut self, kind: &str, crl: &Crl, ledger: &Mutex<Ledger>) {
        let mut ledger = lock(ledger);
        let highest = self.highest_number.entry(kind.to_owned()).or_default();
        if crl.number <= *highest {
            ledger.violation(format!(
                "{kind}.crl number {} after number {highest}",
                crl.number
            ));
        }
        *highest = crl.number;
        if (kind == "delta") != crl.delta_of.is_some() {
            ledger.violation(format!(
                "{kind}.crl number {} has deltaCRLIndicator {:?}",
                crl.number, crl.delta_of
            ));
        }
    }

    /// The full CRL a delta names, fetched by number if not yet held; it
    /// must be a published full CRL with that number.
    fn base(&mut self, number: u64, ledger: &Mutex<Ledger>) -> Result<Option<&Crl>, String> {
        if !self.bases.contains_key(&number) {
            let (response, _) = self.get(&format!("/crl/{number}.crl"), None)?;
            self.crls_fetched += 1;
            if response.status() != StatusCode::OK {
                lock(ledger).violation(format!(
                    "delta names base {number}, but /crl/{number}.crl answers {}",
                    response.status()
                ));
                return Ok(None);
            }
            let der = response.bytes().map_err(|e| e.to_string())?;
            let base = decode(&der, &self.issuer);
            if base.number != number || base.delta_of.is_some() {
                lock(ledger).violation(format!(
                    "delta names base {number}, but /crl/{number}.crl is number {} (delta of {:?})",
                    base.number, base.delta_of
                ));
                return Ok(None);
            }
            self.bases.insert(number, base);
        }
        Ok(self.bases.get(&number))
    }

    /// The delta-aware view: the base the delta names, patched by it.
    /// removeFromCRL may only name a serial the base lists.
    fn observe_delta(&mut self, ledger: &Mutex<Ledger>) -> Result<(), String> {
        let delta = &self.delta.as_ref().expect("just fetched").object;
        let Some((base_number, critical)) = delta.delta_of else {
            return Ok(());
        };
        let delta_number = delta.number;
        let removed: Vec<String> = delta
            .entries
            .iter()
            .filter(|(_, listed)| listed.reason == REMOVE_FROM_CRL)
            .map(|(serial, _)| serial.clone())
            .collect();
        if !critical {
            lock(ledger).violation(format!(
                "delta {delta_number}: deltaCRLIndicator not critical"
            ));
        }
        let Some(base) = self.base(base_number, ledger)?.cloned() else {
            return Ok(());
        };
        let mut ledger = lock(ledger);
        for serial in removed.iter().filter(|s| !base.entries.contains_key(*s)) {
            ledger.violation(format!(
                "delta {delta_number}: removeFromCRL for {serial}, which base {base_number} does not list"
            ));
        }
        let delta = &self.delta.as_ref().expect("just fetched").object;
        let view = patched(&base, delta);
        ledger.observe(Channel::DeltaCrl, Instant::now(), |serial| {
            Some(Status::from_entry(view.get(serial)))
        });
        Ok(())
    }

    /// Asks OCSP about `serial` by GET, as an HTTP cache in front of the
    /// relying party would, revalidating the answer it holds.
    fn refresh_ocsp(&mut self, serial: &str, ledger: &Mutex<Ledger>) -> Result<(), String> {
        let request = base64::engine::general_purpose::STANDARD.encode(self.ocsp.request(serial));
        let path = format!("/ocsp/{}", request.replace('+', "%2B").replace('/', "%2F"));
        let asked = OffsetDateTime::now_utc();
        let held = self.answers.remove(serial);
        let etag = held.as_ref().and_then(|h| h.etag.clone());
        let (fetched, max_age) = self.fetch(&path, etag.as_deref())?;
        self.ocsp_fetched += 1;
        let held = match (fetched, held) {
            (Fetched::Unchanged(arrived), Some(held)) => Held {
                stale_at: arrived + max_age,
                ..held
            },
            (Fetched::Changed(der, etag, arrived), _) => {
                let answer = self
                    .ocsp
                    .answer(serial, &der)
                    .map_err(|e| format!("OCSP GET for {serial}: {e}"))?;
                check_half_validity("GET", serial, &answer, asked, ledger);
                Held {
                    next_update: answer.next_update,
                    object: answer,
                    etag,
                    stale_at: arrived + max_age,
                }
            }
            (Fetched::Unchanged(_), None) => unreachable!("304 only to a conditional request"),
        };
        let status = held.object.status;
        lock(ledger).observe(Channel::OcspBehindCache, Instant::now(), |s| {
            (s == serial).then_some(status)
        });
        self.answers.insert(serial.to_owned(), held);
        Ok(())
    }
}

/// SPEC §5: a cached answer is re-signed before it
/// passes half its validity, so none is ever served older than that.
pub fn check_half_validity(
    how: &str,
    serial: &str,
    answer: &OcspAnswer,
    asked: OffsetDateTime,
    ledger: &Mutex<Ledger>,
) {
    if !answer.within_half_validity(asked) {
        lock(ledger).violation(format!(
            "OCSP {how} for {serial} asked at {asked}: answer of {} past half its validity (nextUpdate {})",
            answer.this_update, answer.next_update
        ));
    }
}

/// The ledger, even if another thread panicked while holding it.
pub fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|p| p.into_inner())
}
