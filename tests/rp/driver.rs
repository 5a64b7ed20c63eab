//! The driving side of the simulator: an RA officer who issues certificates
//! and then suspends, resumes and revokes them at random through the RA API
//! (SPEC §7), asking OCSP right after each 2xx.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::ledger::{Channel, Ledger, Status};
use super::ocsp_client::OcspClient;
use super::relying_party::{check_half_validity, lock};

/// Revocation reasons the driver uses, by name and reasonCode (RFC 5280 §5.3.1).
const REASONS: [(&str, u8); 4] = [
    ("keyCompromise", 1),
    ("affiliationChanged", 3),
    ("superseded", 4),
    ("cessationOfOperation", 5),
];

/// xorshift64*: reproducible from the seed the tool prints.
#[derive(Debug, Clone)]
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}

/// A status change the RA API offers from a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transition {
    Suspend,
    Resume,
    Revoke(&'static str, u8),
}

impl Transition {
    fn action(self) -> &'static str {
        match self {
            Self::Suspend => "suspend",
            Self::Resume => "resume",
            Self::Revoke(..) => "revoke",
        }
    }

    fn body(self) -> Value {
        match self {
            Self::Suspend => json!({"channel": "ra"}),
            Self::Resume => json!({}),
            Self::Revoke(reason, _) => json!({"reason": reason}),
        }
    }

    fn outcome(self) -> Status {
        match self {
            Self::Suspend => Status::Suspended,
            Self::Resume => Status::Good,
            Self::Revoke(_, code) => Status::Revoked(code),
        }
    }
}

/// The RA officer of the simulation.
pub struct Driver {
    http: Client,
    base_url: String,
    token: String,
    ocsp: OcspClient,
    dice: Dice,
    /// Watched serials and their current status.
    certificates: Vec<(String, Status)>,
}

impl Driver {
    pub fn new(http: Client, base_url: &str, token: &str, ocsp: OcspClient, dice: Dice) -> Self {
        Self {
            http,
            base_url: base_url.to_owned(),
            token: token.to_owned(),
            ocsp,
            dice,
            certificates: Vec::new(),
        }
    }

    pub fn serials(&self) -> Vec<String> {
        self.certificates.iter().map(|(s, _)| s.clone()).collect()
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .map_err(|e| format!("POST {path}: {e}"))?;
        let status = response.status();
        let text = response.text().map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("POST {path}: {status} {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("POST {path}: {e}"))
    }

    /// Issues `count` certificates to one new subscriber, a card each.
    pub fn issue(&mut self, count: usize) -> Result<(), String> {
        let run = OffsetDateTime::now_utc().unix_timestamp();
        for i in 0..count {
            let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
            let csr = rcgen::CertificateParams::default()
                .serialize_request(&key)
                .and_then(|csr| csr.pem())
                .map_err(|e| e.to_string())?;
            let body = json!({
                "subscriber": {"code": format!("RPS{run}"), "name": "Relying Party Simulation"},
                "card_number": format!("RPC{run}{i:02}"),
                "profile": "person-sign",
                "csr": csr,
            });
            let record = self.post("/api/v1/certificates", &body)?;
            let serial = record["serial"].as_str().ok_or("record without serial")?;
            self.certificates.push((serial.to_owned(), Status::Good));
        }
        Ok(())
    }

    /// The transitions open from `status`; revocation is the rarer one, as
    /// it ends a certificate's part in the run.
    fn pick_transition(&mut self, status: Status) -> Option<Transition> {
        let (name, code) = REASONS[self.dice.below(REASONS.len())];
        let revoke = Transition::Revoke(name, code);
        let rare_revoke = self.dice.below(6) == 0;
        match status {
            Status::Good if rare_revoke => Some(revoke),
            Status::Good => Some(Transition::Suspend),
            Status::Suspended if rare_revoke => Some(revoke),
            Status::Suspended => Some(Transition::Resume),
            Status::Revoked(_) => None,
        }
    }

    /// Changes one settled certificate, if any, and asks OCSP at once.
    /// Returns whether a change was made.
    pub fn change_one(&mut self, ledger: &Mutex<Ledger>) -> Result<bool, String> {
        let now = Instant::now();
        let candidates: Vec<usize> = {
            let ledger = lock(ledger);
            (0..self.certificates.len())
                .filter(|&i| !matches!(self.certificates[i].1, Status::Revoked(_)))
                .filter(|&i| ledger.settled(&self.certificates[i].0, now))
                .collect()
        };
        if candidates.is_empty() {
            return Ok(false);
        }
        let index = candidates[self.dice.below(candidates.len())];
        let (serial, status) = self.certificates[index].clone();
        let Some(transition) = self.pick_transition(status) else {
            return Ok(false);
        };
        self.post(
            &format!("/api/v1/certificates/{serial}/{}", transition.action()),
            &transition.body(),
        )?;
        let committed = Instant::now();
        let outcome = transition.outcome();
        self.certificates[index].1 = outcome;
        lock(ledger).record(&serial, outcome, committed);
        self.ask_origin(&serial, ledger)?;
        Ok(true)
    }

    /// SPEC §6: OCSP at the origin answers with the new status to every
    /// request arriving after the commit; this is the first one.
    fn ask_origin(&self, serial: &str, ledger: &Mutex<Ledger>) -> Result<(), String> {
        let asked = OffsetDateTime::now_utc();
        let der = self
            .http
            .post(format!("{}/ocsp", self.base_url))
            .header("content-type", "application/ocsp-request")
            .body(self.ocsp.request(serial))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.bytes())
            .map_err(|e| format!("POST /ocsp: {e}"))?;
        let arrived = Instant::now();
        let answer = self
            .ocsp
            .answer(serial, &der)
            .map_err(|e| format!("OCSP POST for {serial}: {e}"))?;
        check_half_validity("POST", serial, &answer, asked, ledger);
        lock(ledger).observe(Channel::OcspAtOrigin, arrived, |s| {
            (s == serial).then_some(answer.status)
        });
        Ok(())
    }

    /// Pauses between changes: `range` at random, in milliseconds.
    pub fn pause(&mut self, range: (u64, u64)) -> Duration {
        let (low, high) = range;
        let spread = high.saturating_sub(low) as usize + 1;
        Duration::from_millis(low + self.dice.below(spread) as u64)
    }
}
