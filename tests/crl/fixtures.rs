//! Fixtures for the CRL tests: a CA with two-hour certificates, a clock the
//! test moves, the stored CRLs, and the rows a status change writes (to
//! show that a refusal wrote none).

use std::sync::{Arc, Mutex};

use eidca::authority::{Authority, CertificateRecord, CrlFile};
use eidca::clock::{Clock, SystemClock};
use eidca::domain::{RevocationReason, Serial, Transition};
use eidca::revocation::{CrlKind, CrlSummary};
use rusqlite::types::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use x509_cert::Certificate;

use crate::common::crl::{Crl, certificate_from_pem, decode};
use crate::common::{OFFICER, TestCa, issue};

/// The freshestCRL URL of the development config.
pub const DELTA_URL: &str = "http://127.0.0.1:8080/crl/delta.crl";

/// The issuing CA certificate of a test CA: the CRL issuer.
pub fn issuing_ca(ca: &TestCa) -> Certificate {
    certificate_from_pem(&std::fs::read(ca.issuing_cert()).unwrap())
}

/// A clock the test moves by hand.
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    /// Starts at the current time, in whole seconds (as certificates and CRLs carry it).
    pub fn starting_at(offset: Duration) -> Arc<Self> {
        Arc::new(Self(Mutex::new(SystemClock.now() + offset)))
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// A CA whose profiles issue two-hour certificates (the shortest validity
/// the configuration accepts is one hour), so that a test clock can make
/// them expire.
pub fn short_lived_ca() -> TestCa {
    TestCa::with_config(|config| config.replace("validity = \"1095d\"", "validity = \"2h\""))
}

pub fn serial(record: &CertificateRecord) -> Serial {
    record.serial.parse().unwrap()
}

pub fn change(authority: &Authority, record: &CertificateRecord, transition: Transition) {
    authority
        .change_status(&serial(record), transition, None, OFFICER)
        .unwrap_or_else(|e| panic!("{} {}: {e}", transition.name(), record.serial));
}

pub fn revoke(reason: RevocationReason) -> Transition {
    Transition::Revoke(reason)
}

pub fn rfc3339(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap()
}

/// Every row of the current statuses, the status history and the audit log.
#[derive(Debug, PartialEq)]
pub struct LifecycleState {
    pub certificates: Vec<Vec<Value>>,
    pub status_changes: Vec<Vec<Value>>,
    pub audit_log: Vec<Vec<Value>>,
}

pub fn lifecycle_state(ca: &TestCa) -> LifecycleState {
    let conn = rusqlite::Connection::open(ca.store_path()).unwrap();
    let rows = |sql: &str| -> Vec<Vec<Value>> {
        let mut stmt = conn.prepare(sql).unwrap();
        let width = stmt.column_count();
        stmt.query_map([], |r| (0..width).map(|i| r.get::<_, Value>(i)).collect())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    LifecycleState {
        certificates: rows("SELECT * FROM certificates ORDER BY serial"),
        status_changes: rows("SELECT * FROM status_changes ORDER BY seq"),
        audit_log: rows("SELECT * FROM audit_log ORDER BY id"),
    }
}

/// A CA with two-hour certificates, its authority on a test clock, and the
/// issuing CA certificate that CRLs are checked against.
pub struct Fixture {
    pub ca: TestCa,
    pub clock: Arc<ManualClock>,
    pub authority: Authority,
    pub issuer: Certificate,
}

impl Fixture {
    pub fn new() -> Self {
        let ca = short_lived_ca();
        let clock = ManualClock::starting_at(Duration::ZERO);
        let authority = ca.authority_with_clock(clock.clone());
        let issuer = issuing_ca(&ca);
        Fixture {
            ca,
            clock,
            authority,
            issuer,
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub fn issue(&self, card: &str) -> CertificateRecord {
        issue(&self.authority, card)
    }

    pub fn change(&self, record: &CertificateRecord, transition: Transition) {
        change(&self.authority, record, transition);
    }

    /// The stored CRL with this number, decoded and checked.
    pub fn crl(&self, number: u64) -> Crl {
        decode(&stored_der(&self.authority, number), &self.issuer)
    }

    /// Publishes a CRL of this kind and returns it decoded.
    pub fn publish(&self, kind: CrlKind) -> Crl {
        let summary = self.authority.publish(kind, "test").unwrap();
        self.crl(summary.number)
    }

    /// The newest full CRL and the newest delta, decoded.
    pub fn latest_pair(&self) -> (Crl, Crl) {
        let full = latest(&self.authority, CrlKind::Full).1;
        let delta = latest(&self.authority, CrlKind::Delta).1;
        (decode(&full, &self.issuer), decode(&delta, &self.issuer))
    }
}

/// The DER of a published CRL, as stored to be served again.
pub fn stored_der(authority: &Authority, number: u64) -> Vec<u8> {
    let (summary, der) = authority
        .crl_file(CrlFile::Number(number))
        .unwrap()
        .unwrap_or_else(|| panic!("CRL {number} is stored"));
    assert_eq!(summary.number, number);
    der
}

pub fn latest(authority: &Authority, kind: CrlKind) -> (CrlSummary, Vec<u8>) {
    authority
        .crl_file(CrlFile::Latest(kind))
        .unwrap()
        .expect("a CRL of this kind was published")
}
