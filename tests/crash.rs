//! Crash safety (SPEC §10): a `kill -9` at any instant loses no change that was
//! answered 2xx, never reissues a serial, never repeats a CRL number, and
//! leaves an audit chain that verifies.
//!
//! Eight clients issue, suspend, resume, revoke and publish against
//! `eidca serve`; the server is SIGKILLed at a random moment and restarted
//! on the same data, five times. Each client owns its certificates, so the
//! expected status of every serial is known: the last acknowledged
//! transition, or the one that was in flight when the server died.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{KeyKind, TestCa, http_client, make_csr};
use serde_json::{Value, json};

const OFFICER: &str = "Bearer dev-officer-token";
const CLIENTS: usize = 8;
const ROUNDS: usize = 5;

/// What the clients learned from 2xx answers.
#[derive(Default)]
struct Ledger {
    /// serial → (acknowledged status, status of an unacknowledged request in flight)
    serials: HashMap<String, (String, Option<String>)>,
    /// serial → the client that owns it (only its owner changes it).
    owners: HashMap<String, usize>,
    /// Every CRL number answered 2xx.
    crl_numbers: Vec<u64>,
    /// CRL publications that were in flight when the server was killed.
    publications_cut_by_kills: usize,
}

fn client() -> reqwest::blocking::Client {
    http_client(Duration::from_secs(10))
}

/// Tiny deterministic PRNG per client (xorshift), seeded from the clock.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1
}

/// One client's loop until `stop` or until the server stops answering.
fn run_client(
    id: usize,
    base: String,
    csr: String,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    rng_seed: u64,
) {
    let http = client();
    let mut rng = Rng(rng_seed ^ ((id as u64 + 1) * 0x9e37_79b9));
    let mut mine: Vec<String> = ledger
        .lock()
        .unwrap()
        .owners
        .iter()
        .filter(|(_, owner)| **owner == id)
        .map(|(s, _)| s.clone())
        .collect();
    let card = format!("TP{id:02}{:06}", rng.next() % 1_000_000);
    while !stop.load(Ordering::Relaxed) {
        // Client 0 only publishes, so most kills land during a publication.
        let roll = if id == 0 { 9 } else { rng.next() % 10 };
        if roll < 3 || mine.is_empty() {
            let body = json!({
                "subscriber": {"code": format!("A8{id:08}"), "name": "Crash Tester"},
                "card_number": card, "profile": "person-sign", "csr": csr,
            });
            match http
                .post(format!("{base}/api/v1/certificates"))
                .header("Authorization", OFFICER)
                .json(&body)
                .send()
            {
                Ok(r) if r.status().is_success() => {
                    let v: Value = r.json().unwrap();
                    let serial = v["serial"].as_str().unwrap().to_owned();
                    let mut l = ledger.lock().unwrap();
                    assert!(
                        l.serials
                            .insert(serial.clone(), ("good".into(), None))
                            .is_none(),
                        "serial {serial} reissued"
                    );
                    l.owners.insert(serial.clone(), id);
                    mine.push(serial);
                }
                Ok(r) => panic!(
                    "issue answered {}: {}",
                    r.status(),
                    r.text().unwrap_or_default()
                ),
                Err(_) => return, // the server died; an unacknowledged issue may or may not exist
            }
        } else if roll < 9 {
            let serial = mine[(rng.next() % mine.len() as u64) as usize].clone();
            let current = ledger.lock().unwrap().serials[&serial].0.clone();
            let (action, target, body) = match (current.as_str(), rng.next() % 3) {
                ("revoked", _) => continue,
                ("good", 0) => ("revoke", "revoked", json!({"reason": "keyCompromise"})),
                ("good", _) => ("suspend", "suspended", json!({"channel": "ra"})),
                ("suspended", 0) => ("revoke", "revoked", json!({"reason": "superseded"})),
                _ => ("resume", "good", json!({})),
            };
            ledger.lock().unwrap().serials.get_mut(&serial).unwrap().1 = Some(target.to_owned());
            let url = format!("{base}/api/v1/certificates/{serial}/{action}");
            match http
                .post(url)
                .header("Authorization", OFFICER)
                .json(&body)
                .send()
            {
                Ok(r) if r.status().is_success() => {
                    let v: Value = r.json().unwrap();
                    assert_eq!(v["status"], target);
                    ledger
                        .lock()
                        .unwrap()
                        .serials
                        .insert(serial, (target.to_owned(), None));
                }
                Ok(r) => panic!(
                    "{action} answered {}: {}",
                    r.status(),
                    r.text().unwrap_or_default()
                ),
                Err(_) => return, // in flight when the server died: leave the in-flight mark
            }
        } else {
            let kind = if rng.next().is_multiple_of(4) {
                "full"
            } else {
                "delta"
            };
            match http
                .post(format!("{base}/api/v1/crls"))
                .header("Authorization", OFFICER)
                .json(&json!({"kind": kind}))
                .send()
            {
                Ok(r) if r.status().is_success() => {
                    let v: Value = r.json().unwrap();
                    ledger
                        .lock()
                        .unwrap()
                        .crl_numbers
                        .push(v["number"].as_u64().unwrap());
                }
                Ok(r) => panic!(
                    "publish answered {}: {}",
                    r.status(),
                    r.text().unwrap_or_default()
                ),
                Err(_) => {
                    ledger.lock().unwrap().publications_cut_by_kills += 1;
                    return;
                }
            }
        }
    }
}

#[test]
fn kill_nine_loses_no_acknowledged_change_and_repeats_no_number() {
    let ca = TestCa::with_config(|c| {
        c.replace(
            "delta_crl_interval = \"15m\"",
            "delta_crl_interval = \"1s\"",
        )
        .replace("full_crl_interval = \"24h\"", "full_crl_interval = \"3s\"")
        .replace("max_age = \"10m\"", "max_age = \"2s\"")
    });
    let csr = std::fs::read_to_string(make_csr(ca.path(), KeyKind::P256)).unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = Rng(seed());
    for round in 0..ROUNDS {
        let server = ca.serve(&[]);
        let base = server.base_url.clone();
        check_recovered(&base, &ledger, round);
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|id| {
                let (base, csr, ledger, stop) =
                    (base.clone(), csr.clone(), ledger.clone(), stop.clone());
                let s = rng.next();
                std::thread::spawn(move || run_client(id, base, csr, ledger, stop, s))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(500 + rng.next() % 2500));
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join()
                .expect("a client saw a non-2xx answer or a reissued serial");
        }
    }
    let server = ca.serve(&[]);
    check_recovered(&server.base_url, &ledger, ROUNDS);
    drop(server);
    let out = ca.run_ok(&["audit", "verify"]);
    assert!(out.contains("audit chain intact"), "{out}");
    let conn = rusqlite::Connection::open(ca.store_path()).unwrap();
    let (all, distinct): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT serial) FROM certificates",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(all, distinct);
    let l = ledger.lock().unwrap();
    assert!(
        l.serials.len() >= 20,
        "the clients did too little work to prove anything: {}",
        l.serials.len()
    );
    assert!(
        l.publications_cut_by_kills > 0,
        "no kill landed during a CRL publication"
    );
    eprintln!(
        "crash test: {} certificates, {} CRLs acknowledged over {ROUNDS} kills, {} publications cut by a kill",
        l.serials.len(),
        l.crl_numbers.len(),
        l.publications_cut_by_kills
    );
}

/// After a restart: every acknowledged status is there (or the in-flight
/// one), and the next CRL number is above every number seen before.
fn check_recovered(base: &str, ledger: &Arc<Mutex<Ledger>>, round: usize) {
    let http = client();
    let mut l = ledger.lock().unwrap();
    for (serial, (acked, in_flight)) in l.serials.iter_mut() {
        let r = http
            .get(format!("{base}/api/v1/certificates/{serial}"))
            .header("Authorization", OFFICER)
            .send()
            .unwrap();
        assert!(
            r.status().is_success(),
            "round {round}: acknowledged certificate {serial} is gone"
        );
        let v: Value = r.json().unwrap();
        let status = v["status"].as_str().unwrap().to_owned();
        let ok = status == *acked || in_flight.as_deref() == Some(status.as_str());
        assert!(
            ok,
            "round {round}: {serial} is {status}, acknowledged {acked}, in flight {in_flight:?}"
        );
        *acked = status;
        *in_flight = None;
    }
    let seen_max = l.crl_numbers.iter().copied().max().unwrap_or(0);
    let r = http
        .post(format!("{base}/api/v1/crls"))
        .header("Authorization", OFFICER)
        .json(&json!({"kind": "delta"}))
        .send()
        .unwrap();
    assert!(r.status().is_success());
    let number = r.json::<Value>().unwrap()["number"].as_u64().unwrap();
    assert!(
        number > seen_max,
        "round {round}: CRL number {number} not above {seen_max}"
    );
    l.crl_numbers.push(number);
}
