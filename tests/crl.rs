//! Issue 3: the certificate lifecycle (SPEC §3.1) and full and delta CRLs
//! (SPEC §4), checked on the DER the program publishes, with OpenSSL and
//! pkilint as outside oracles.
//!
//! Time-dependent rules (expiry, revocationDate, thisUpdate) run on an
//! injected clock and two-hour certificates; nothing here measures time.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use common::{TestCa, assert_pkilint_clean, openssl, openssl_ok};
use der::{Decode, Encode};
use eidca::authority::{
    Actor, Authority, AuthorityError, CertificateRecord, Clock, IssueRequest, SystemClock,
};
use eidca::domain::{Channel, RevocationReason, Serial, Transition, TransitionError};
use eidca::revocation::CrlKind;
use eidca::store::crls;
use proptest::prelude::*;
use rusqlite::types::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BaseCrlNumber, CrlNumber, FreshestCrl};

// ---------------------------------------------------------------------------
// Fixtures: a CA with two-hour certificates, a settable clock, one CSR.
// ---------------------------------------------------------------------------

/// reasonCode values (RFC 5280 §5.3.1) as they appear on the wire.
const KEY_COMPROMISE: u8 = 1;
const CERTIFICATE_HOLD: u8 = 6;
const REMOVE_FROM_CRL: u8 = 8;

/// The freshestCRL URL of the development config.
const DELTA_URL: &str = "http://127.0.0.1:8080/crl/delta.crl";

const OFFICER: Actor<'static> = Actor {
    name: "test-officer",
    channel: Channel::Ra,
};

/// A clock the test moves by hand.
struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    /// Starts at the current time, in whole seconds (as certificates and CRLs carry it).
    fn starting_at(offset: Duration) -> Arc<Self> {
        Arc::new(Self(Mutex::new(SystemClock.now() + offset)))
    }

    fn advance(&self, by: Duration) {
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
fn short_lived_ca() -> TestCa {
    TestCa::with_config(|config| config.replace("validity = \"1095d\"", "validity = \"2h\""))
}

/// One P-256 CSR for every test certificate: issuance needs a valid proof of
/// possession, not a distinct key per certificate, and rcgen is far quicker
/// than an openssl process.
fn csr() -> &'static [u8] {
    static CSR: OnceLock<Vec<u8>> = OnceLock::new();
    CSR.get_or_init(|| {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.serialize_request(&key).unwrap().der().to_vec()
    })
}

fn issue(authority: &Authority, card: &str) -> CertificateRecord {
    let request = IssueRequest {
        subscriber_code: "A800000014",
        subscriber_name: "Test Subscriber",
        card_number: card,
        profile: "person-sign",
        csr: csr(),
    };
    authority.issue(&request, OFFICER).expect("issue")
}

fn serial(record: &CertificateRecord) -> Serial {
    record.serial.parse().unwrap()
}

fn change(authority: &Authority, record: &CertificateRecord, transition: Transition) {
    authority
        .change_status(&serial(record), transition, None, OFFICER)
        .unwrap_or_else(|e| panic!("{} {}: {e}", transition.name(), record.serial));
}

fn revoke(reason: RevocationReason) -> Transition {
    Transition::Revoke(reason)
}

fn rfc3339(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap()
}

// ---------------------------------------------------------------------------
// Reading a CRL the way a relying party does: from its DER, signature first.
// ---------------------------------------------------------------------------

/// One revokedCertificates entry: its reasonCode and revocationDate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Listed {
    reason: u8,
    date: OffsetDateTime,
}

/// Entries by serial (lowercase hex).
type Entries = BTreeMap<String, Listed>;

/// What a relying party learns from a CRL.
#[derive(Debug)]
struct Crl {
    number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    /// The deltaCRLIndicator: the base CRL number and whether it is critical.
    delta_of: Option<(u64, bool)>,
    freshest_crl: Option<String>,
    entries: Entries,
}

/// The issuing CA certificate of a test CA: the CRL issuer.
fn issuing_ca(ca: &TestCa) -> Certificate {
    let pem = std::fs::read(ca.issuing_cert()).unwrap();
    Certificate::from_der(&der::pem::decode_vec(&pem).unwrap().1).unwrap()
}

fn uint(bytes: &[u8]) -> u64 {
    assert!(bytes.len() <= 8, "number longer than 64 bits");
    bytes.iter().fold(0, |n, b| (n << 8) | u64::from(*b))
}

fn time_of(t: x509_cert::time::Time) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64).unwrap()
}

/// Decodes a CRL, checking what every CRL of ours must satisfy: v2, signed
/// by the issuing CA with the algorithm it names, issuer and AKI of the
/// issuing CA, only known extensions, one non-critical reasonCode per entry.
fn decode(der: &[u8], issuer: &Certificate) -> Crl {
    let crl =
        CertificateList::<x509_cert::certificate::Rfc5280>::from_der(der).expect("CRL decodes");
    let tbs = &crl.tbs_cert_list;
    assert_eq!(tbs.version, x509_cert::Version::V2);
    assert_eq!(tbs.signature, crl.signature_algorithm);
    assert_eq!(
        crl.signature_algorithm.oid,
        const_oid::db::rfc5912::ECDSA_WITH_SHA_256
    );
    assert_eq!(tbs.issuer, *issuer.tbs_certificate().subject());
    let key = issuer.tbs_certificate().subject_public_key_info();
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        key.subject_public_key.raw_bytes(),
    )
    .verify(&tbs.to_der().unwrap(), crl.signature.raw_bytes())
    .expect("CRL signature verifies with the issuing CA key");

    let mut decoded = Crl {
        number: 0,
        this_update: time_of(tbs.this_update),
        next_update: time_of(tbs.next_update.expect("nextUpdate present")),
        delta_of: None,
        freshest_crl: None,
        entries: Entries::new(),
    };
    read_crl_extensions(
        tbs.crl_extensions.as_deref().unwrap_or(&[]),
        issuer,
        &mut decoded,
    );
    for entry in tbs.revoked_certificates.iter().flatten() {
        let serial = Serial::from_der_integer(entry.serial_number.as_bytes()).unwrap();
        let listed = Listed {
            reason: reason_code(entry.crl_entry_extensions.as_deref().unwrap_or(&[])),
            date: time_of(entry.revocation_date),
        };
        let previous = decoded.entries.insert(serial.to_hex(), listed);
        assert!(previous.is_none(), "serial {serial} listed twice");
    }
    decoded
}

fn read_crl_extensions(exts: &[x509_cert::ext::Extension], issuer: &Certificate, crl: &mut Crl) {
    use const_oid::db::rfc5280::{
        ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_CE_DELTA_CRL_INDICATOR,
        ID_CE_FRESHEST_CRL, ID_CE_SUBJECT_KEY_IDENTIFIER,
    };
    let ski = issuer
        .tbs_certificate()
        .extensions()
        .unwrap()
        .iter()
        .find(|e| e.extn_id == ID_CE_SUBJECT_KEY_IDENTIFIER)
        .map(|e| {
            x509_cert::ext::pkix::SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).unwrap()
        })
        .expect("issuing CA has an SKI");
    let mut seen_number = false;
    for ext in exts {
        let value = ext.extn_value.as_bytes();
        match ext.extn_id {
            ID_CE_AUTHORITY_KEY_IDENTIFIER => {
                assert!(!ext.critical);
                let aki = AuthorityKeyIdentifier::from_der(value).unwrap();
                assert_eq!(aki.key_identifier.as_ref(), Some(&ski.0), "AKI = CA's SKI");
            }
            ID_CE_CRL_NUMBER => {
                assert!(!ext.critical);
                crl.number = uint(CrlNumber::from_der(value).unwrap().0.as_bytes());
                seen_number = true;
            }
            ID_CE_DELTA_CRL_INDICATOR => {
                let base = uint(BaseCrlNumber::from_der(value).unwrap().0.as_bytes());
                crl.delta_of = Some((base, ext.critical));
            }
            ID_CE_FRESHEST_CRL => {
                assert!(!ext.critical);
                let points = FreshestCrl::from_der(value).unwrap().0;
                let Some(DistributionPointName::FullName(names)) = &points[0].distribution_point
                else {
                    panic!("freshestCRL without a full name");
                };
                let GeneralName::UniformResourceIdentifier(uri) = &names[0] else {
                    panic!("freshestCRL name is not a URI");
                };
                crl.freshest_crl = Some(uri.to_string());
            }
            other => panic!("unexpected CRL extension {other}"),
        }
    }
    assert!(seen_number, "every CRL carries a cRLNumber");
}

fn reason_code(exts: &[x509_cert::ext::Extension]) -> u8 {
    assert_eq!(exts.len(), 1, "one entry extension: reasonCode");
    assert_eq!(exts[0].extn_id, const_oid::db::rfc5280::ID_CE_CRL_REASONS);
    assert!(!exts[0].critical);
    x509_cert::ext::pkix::CrlReason::from_der(exts[0].extn_value.as_bytes()).unwrap() as u8
}

/// The DER of a published CRL, as stored to be served again.
fn stored_der(authority: &Authority, number: u64) -> Vec<u8> {
    let (summary, der) = authority
        .store()
        .read(|tx| crls::by_number(tx, number))
        .unwrap()
        .unwrap_or_else(|| panic!("CRL {number} is stored"));
    assert_eq!(summary.number, number);
    der
}

fn latest(authority: &Authority, kind: CrlKind) -> (crls::CrlSummary, Vec<u8>) {
    authority
        .store()
        .read(|tx| crls::latest_der(tx, kind))
        .unwrap()
        .expect("a CRL of this kind was published")
}

/// The view a delta-aware relying party builds: the base's entries, then
/// the delta's (removeFromCRL removes, anything else adds or replaces).
fn patched(base: &Crl, delta: &Crl) -> Entries {
    let mut entries = base.entries.clone();
    for (serial, listed) in &delta.entries {
        if listed.reason == REMOVE_FROM_CRL {
            entries.remove(serial);
        } else {
            entries.insert(serial.clone(), *listed);
        }
    }
    entries
}

// ---------------------------------------------------------------------------
// The observable state a status change writes, for "nothing changed".
// ---------------------------------------------------------------------------

/// Every row of the current statuses, the status history and the audit log.
#[derive(Debug, PartialEq)]
struct LifecycleState {
    certificates: Vec<Vec<Value>>,
    status_changes: Vec<Vec<Value>>,
    audit_log: Vec<Vec<Value>>,
}

fn lifecycle_state(ca: &TestCa) -> LifecycleState {
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

// ---------------------------------------------------------------------------
// The model: SPEC §3.1 and §4 restated over plain data, written from the
// spec rather than from eidca's code.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Good,
    Suspended,
    Revoked(u8),
}

impl Status {
    fn crl_reason(self) -> Option<u8> {
        match self {
            Status::Good => None,
            Status::Suspended => Some(CERTIFICATE_HOLD),
            Status::Revoked(reason) => Some(reason),
        }
    }
}

#[derive(Debug)]
struct ModelCert {
    serial: String,
    not_after: OffsetDateTime,
    status: Status,
    /// When the current status began.
    since: OffsetDateTime,
    /// Listed on a full CRL whose thisUpdate is after notAfter: it may leave.
    shown_after_expiry: bool,
}

impl ModelCert {
    fn expired(&self, now: OffsetDateTime) -> bool {
        now > self.not_after
    }

    fn entry(&self) -> Option<Listed> {
        let reason = self.status.crl_reason()?;
        Some(Listed {
            reason,
            date: self.since,
        })
    }
}

/// Each certificate's status and when it began, by serial.
type StatusesAt = HashMap<String, (Status, OffsetDateTime)>;

#[derive(Debug, Default)]
struct Model {
    certs: Vec<ModelCert>,
    /// The latest full CRL: its number and every certificate's status then.
    base: Option<(u64, StatusesAt)>,
    last_number: u64,
}

impl Model {
    /// SPEC §3.1: the status a transition leads to, or None when refused.
    fn transition(&self, i: usize, step: &Step, now: OffsetDateTime) -> Option<Status> {
        let cert = &self.certs[i];
        if cert.expired(now) {
            return None;
        }
        match (cert.status, step) {
            (Status::Good, Step::Suspend(_)) => Some(Status::Suspended),
            (Status::Suspended, Step::Resume(_)) => Some(Status::Good),
            (Status::Good | Status::Suspended, Step::Revoke(_, reason)) => {
                Some(Status::Revoked(reason.crl_reason().code()))
            }
            _ => None,
        }
    }

    /// SPEC §4: a full CRL lists every suspended or revoked certificate
    /// until it has been on a full CRL whose thisUpdate is after its notAfter.
    fn publish_full(&mut self, this_update: OffsetDateTime) -> (u64, Entries) {
        let mut entries = Entries::new();
        for cert in self.certs.iter_mut().filter(|c| !c.shown_after_expiry) {
            if let Some(listed) = cert.entry() {
                entries.insert(cert.serial.clone(), listed);
                cert.shown_after_expiry = this_update > cert.not_after;
            }
        }
        self.last_number += 1;
        let statuses = self
            .certs
            .iter()
            .map(|c| (c.serial.clone(), (c.status, c.since)))
            .collect();
        self.base = Some((self.last_number, statuses));
        (self.last_number, entries)
    }

    /// SPEC §4: a delta lists every certificate whose entry differs from the
    /// base's: with its current reason, or removeFromCRL when good again.
    fn publish_delta(&mut self) -> (u64, u64, Entries) {
        let (base_number, at_base) = self.base.as_ref().expect("a base exists");
        let mut entries = Entries::new();
        for cert in &self.certs {
            let then = at_base.get(&cert.serial);
            let listed = match (cert.entry(), then) {
                (Some(now), then) if then != Some(&(cert.status, cert.since)) => now,
                (None, Some((was, _))) if was.crl_reason().is_some() => Listed {
                    reason: REMOVE_FROM_CRL,
                    date: cert.since,
                },
                (None, Some((was, _))) if was.crl_reason().is_some() => Listed {
                    reason: REMOVE_FROM_CRL,
                    date: cert.since,
                },
                _ => continue,
            };
            entries.insert(cert.serial.clone(), listed);
        }
        self.last_number += 1;
        (self.last_number, *base_number, entries)
    }

    /// The index of the certificate a step targets, if there is one.
    fn resolve(&self, target: Target, now: OffsetDateTime) -> Option<usize> {
        let live: Vec<usize> = (0..self.certs.len())
            .filter(|&i| {
                let cert = &self.certs[i];
                !cert.expired(now) && !matches!(cert.status, Status::Revoked(_))
            })
            .collect();
        let newest = |candidates: &[usize], i: usize| {
            (!candidates.is_empty())
                .then(|| candidates[candidates.len() - 1 - i % candidates.len()])
        };
        match target {
            Target::Live(i) => newest(&live, i),
            Target::Any(i) => newest(&(0..self.certs.len()).collect::<Vec<_>>(), i),
        }
    }

    /// Every listed certificate's entry, expired or not.
    fn current_entries(&self) -> Entries {
        self.certs
            .iter()
            .filter_map(|c| Some((c.serial.clone(), c.entry()?)))
            .collect()
    }
}

#[derive(Debug, Clone)]
enum Step {
    Issue,
    Suspend(Target),
    Resume(Target),
    Revoke(Target, RevocationReason),
    /// Moves the clock on by this many minutes (certificates live 120).
    Advance(i64),
    PublishFull,
    PublishDelta,
}

/// Which certificate a transition targets.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The i-th newest certificate that is neither expired nor revoked:
    /// so that suspend, resume, revoke and publications interleave on the
    /// same few certificates.
    Live(usize),
    /// Any certificate, expired and revoked ones included (refusals).
    Any(usize),
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        3 => (0..3usize).prop_map(Target::Live),
        1 => any::<usize>().prop_map(Target::Any),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => Just(Step::Issue),
        3 => target().prop_map(Step::Suspend),
        3 => target().prop_map(Step::Resume),
        1 => (target(), proptest::sample::select(RevocationReason::ALL.to_vec()))
            .prop_map(|(i, reason)| Step::Revoke(i, reason)),
        2 => (1i64..=40).prop_map(Step::Advance),
        1 => Just(Step::PublishFull),
        2 => Just(Step::PublishDelta),
    ]
}

/// A CA with two-hour certificates, its authority on a test clock, and the
/// issuing CA certificate that CRLs are checked against.
struct Fixture {
    ca: TestCa,
    clock: Arc<ManualClock>,
    authority: Authority,
    issuer: Certificate,
}

impl Fixture {
    fn new() -> Self {
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

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    fn issue(&self, card: &str) -> CertificateRecord {
        issue(&self.authority, card)
    }

    fn change(&self, record: &CertificateRecord, transition: Transition) {
        change(&self.authority, record, transition);
    }

    /// The stored CRL with this number, decoded and checked.
    fn crl(&self, number: u64) -> Crl {
        decode(&stored_der(&self.authority, number), &self.issuer)
    }

    /// Publishes a CRL of this kind and returns it decoded.
    fn publish(&self, kind: CrlKind) -> Crl {
        let summary = self.authority.publish(kind, "test").unwrap();
        self.crl(summary.number)
    }

    /// The newest full CRL and the newest delta, decoded.
    fn latest_pair(&self) -> (Crl, Crl) {
        let full = latest(&self.authority, CrlKind::Full).1;
        let delta = latest(&self.authority, CrlKind::Delta).1;
        (decode(&full, &self.issuer), decode(&delta, &self.issuer))
    }
}

/// Runs the steps on a fresh CA and on the model, comparing after each.
struct Run {
    fx: Fixture,
    model: Model,
}

impl Run {
    fn new() -> Self {
        Run {
            fx: Fixture::new(),
            model: Model::default(),
        }
    }

    fn apply(&mut self, step: &Step) {
        let now = self.fx.now();
        match step {
            Step::Issue => self.issue(now),
            Step::Suspend(target) | Step::Resume(target) | Step::Revoke(target, _) => {
                if let Some(i) = self.model.resolve(*target, now) {
                    self.change(i, step, now);
                }
            }
            Step::Advance(minutes) => self.fx.clock.advance(Duration::minutes(*minutes)),
            Step::PublishFull => self.publish_full(now),
            Step::PublishDelta => self.publish_delta(now),
        }
    }

    fn issue(&mut self, now: OffsetDateTime) {
        let card = format!("TP{:08}", self.model.certs.len());
        let record = self.fx.issue(&card);
        assert_eq!(rfc3339(&record.not_after), now + Duration::hours(2));
        self.model.certs.push(ModelCert {
            serial: record.serial,
            not_after: now + Duration::hours(2),
            status: Status::Good,
            since: now,
            shown_after_expiry: false,
        });
    }

    fn change(&mut self, i: usize, step: &Step, now: OffsetDateTime) {
        let transition = match step {
            Step::Suspend(_) => Transition::Suspend,
            Step::Resume(_) => Transition::Resume,
            Step::Revoke(_, reason) => Transition::Revoke(*reason),
            _ => unreachable!("not a transition"),
        };
        let serial: Serial = self.model.certs[i].serial.parse().unwrap();
        let expected = self.model.transition(i, step, now);
        let before = expected.is_none().then(|| lifecycle_state(&self.fx.ca));
        let outcome = self
            .fx
            .authority
            .change_status(&serial, transition, None, OFFICER);
        match (expected, outcome) {
            (Some(status), Ok(record)) => {
                assert_eq!(record.revocation_reason.is_some(), status != Status::Good);
                let cert = &mut self.model.certs[i];
                cert.status = status;
                cert.since = now;
            }
            (None, Err(AuthorityError::Transition(_))) => {
                assert_eq!(
                    Some(lifecycle_state(&self.fx.ca)),
                    before,
                    "a refusal changed something"
                );
            }
            (expected, outcome) => {
                panic!("{step:?} on {serial}: model {expected:?}, eidca {outcome:?}")
            }
        }
    }

    fn publish_full(&mut self, now: OffsetDateTime) {
        let full = self.fx.publish(CrlKind::Full);
        let (number, expected) = self.model.publish_full(now);
        check_full(&full, number, now, &expected);
        // SPEC §4: a delta against the new base follows at once, empty.
        let (delta_number, base_number, expected) = self.model.publish_delta();
        assert!(expected.is_empty());
        let (_, delta) = self.fx.latest_pair();
        check_delta(&delta, delta_number, base_number, now, &expected);
    }

    fn publish_delta(&mut self, now: OffsetDateTime) {
        let first_full = self
            .model
            .base
            .is_none()
            .then(|| self.model.publish_full(now));
        let delta = self.fx.publish(CrlKind::Delta);
        let (number, base_number, expected) = self.model.publish_delta();
        check_delta(&delta, number, base_number, now, &expected);
        let base = self.fx.crl(base_number);
        if let Some((_, expected_full)) = first_full {
            check_full(&base, base_number, now, &expected_full);
        }
        self.check_relying_party_view(&base, &delta, now);
    }

    /// Issue 3: base patched by delta = the suspended and revoked
    /// certificates that have not expired, with their reasons and dates.
    /// Expired certificates may linger (SPEC §4), but only as they were.
    fn check_relying_party_view(&self, base: &Crl, delta: &Crl, now: OffsetDateTime) {
        let view = patched(base, delta);
        let current = self.model.current_entries();
        for (serial, listed) in &view {
            assert_eq!(
                current.get(serial),
                Some(listed),
                "stale entry for {serial}"
            );
        }
        for cert in self.model.certs.iter().filter(|c| !c.expired(now)) {
            assert_eq!(view.get(&cert.serial), cert.entry().as_ref(), "{cert:?}");
        }
    }
}

fn check_full(crl: &Crl, number: u64, now: OffsetDateTime, expected: &Entries) {
    assert_eq!(crl.number, number);
    assert_eq!(crl.delta_of, None, "a full CRL has no deltaCRLIndicator");
    assert_eq!(crl.freshest_crl.as_deref(), Some(DELTA_URL));
    assert_eq!(
        (crl.this_update, crl.next_update),
        (now, now + Duration::hours(24))
    );
    assert!(
        crl.entries.values().all(|e| e.reason != REMOVE_FROM_CRL),
        "removeFromCRL appears only in delta CRLs (RFC 5280 §5.3.1)"
    );
    assert_eq!(crl.entries, *expected, "full CRL {number}");
}

fn check_delta(crl: &Crl, number: u64, base: u64, now: OffsetDateTime, expected: &Entries) {
    assert_eq!(crl.number, number);
    assert_eq!(
        crl.delta_of,
        Some((base, true)),
        "critical deltaCRLIndicator names the base"
    );
    assert_eq!(
        crl.freshest_crl, None,
        "freshestCRL never in a delta (RFC 5280 §5.2.6)"
    );
    assert_eq!(
        (crl.this_update, crl.next_update),
        (now, now + Duration::minutes(15))
    );
    assert_eq!(crl.entries, *expected, "delta CRL {number} against {base}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, max_shrink_iters: 256, ..ProptestConfig::default() })]

    /// After every publication, the DER the program produced agrees with
    /// the model: exact full and delta entries, and the relying party's
    /// base + delta view equals the current statuses.
    #[test]
    fn published_crls_agree_with_a_model_of_the_lifecycle(steps in proptest::collection::vec(step(), 10..120)) {
        let mut run = Run::new();
        for step in &steps {
            run.apply(step);
        }
        let chain = run.fx.authority.verify_audit().unwrap();
        prop_assert!(chain.is_ok(), "{chain:?}");
    }
}

// ---------------------------------------------------------------------------
// Worked examples of SPEC §4, on the injected clock.
// ---------------------------------------------------------------------------

fn entry(reason: u8, date: OffsetDateTime) -> Listed {
    Listed { reason, date }
}

#[test]
fn resumed_certificate_is_removed_by_the_delta_and_leaves_the_next_full_crl() {
    let fx = Fixture::new();
    let card = fx.issue("TP03000001");
    fx.change(&card, Transition::Suspend);
    let held_since = fx.now();
    let base = fx.publish(CrlKind::Full);
    assert_eq!(
        base.entries[&card.serial],
        entry(CERTIFICATE_HOLD, held_since)
    );

    fx.clock.advance(Duration::minutes(5));
    fx.change(&card, Transition::Resume);
    let delta = fx.publish(CrlKind::Delta);
    assert_eq!(delta.delta_of, Some((base.number, true)));
    assert_eq!(
        delta.entries,
        Entries::from([(card.serial.clone(), entry(REMOVE_FROM_CRL, fx.now()))])
    );
    assert!(patched(&base, &delta).is_empty());

    let next_full = fx.publish(CrlKind::Full);
    assert!(next_full.entries.is_empty());
}

#[test]
fn suspension_and_resumption_both_after_the_base_cancel_out() {
    let fx = Fixture::new();
    let card = fx.issue("TP03000001");
    fx.publish(CrlKind::Full);
    fx.change(&card, Transition::Suspend);
    fx.clock.advance(Duration::minutes(5));
    fx.change(&card, Transition::Resume);
    assert!(fx.publish(CrlKind::Delta).entries.is_empty());
}

#[test]
fn revocation_date_is_when_the_current_status_began() {
    let fx = Fixture::new();
    let [revoked, renewed] = ["TP03000001", "TP03000002"].map(|card| fx.issue(card));
    fx.change(&revoked, Transition::Suspend);
    fx.change(&renewed, Transition::Suspend);
    let base = fx.publish(CrlKind::Full);

    fx.clock.advance(Duration::minutes(10));
    fx.change(&revoked, revoke(RevocationReason::KeyCompromise));
    let revoked_at = fx.now();
    fx.change(&renewed, Transition::Resume);
    fx.clock.advance(Duration::minutes(10));
    // On hold again: the same status as in the base, but a new hold.
    fx.change(&renewed, Transition::Suspend);
    let renewed_at = fx.now();

    let expected = Entries::from([
        (revoked.serial.clone(), entry(KEY_COMPROMISE, revoked_at)),
        (renewed.serial.clone(), entry(CERTIFICATE_HOLD, renewed_at)),
    ]);
    let delta = fx.publish(CrlKind::Delta);
    assert_eq!(delta.entries, expected);
    assert_eq!(patched(&base, &delta), expected);
    assert_eq!(fx.publish(CrlKind::Full).entries, expected);
}

#[test]
fn expired_entry_stays_until_a_full_crl_after_its_expiry_then_leaves() {
    let fx = Fixture::new();
    let card = fx.issue("TP03000001");
    let not_after = rfc3339(&card.not_after);
    fx.change(&card, revoke(RevocationReason::KeyCompromise));
    let listed = Entries::from([(card.serial.clone(), entry(KEY_COMPROMISE, fx.now()))]);

    fx.clock.advance(Duration::hours(2));
    assert_eq!(fx.now(), not_after, "still valid at notAfter itself");
    assert_eq!(fx.publish(CrlKind::Full).entries, listed);
    fx.clock.advance(Duration::seconds(1));
    // The first full CRL whose thisUpdate is after notAfter lists it ...
    assert_eq!(fx.publish(CrlKind::Full).entries, listed);
    // ... and the ones after it need not.
    fx.clock.advance(Duration::minutes(1));
    assert!(fx.publish(CrlKind::Full).entries.is_empty());
    let (_, delta) = fx.latest_pair();
    assert!(
        delta.entries.is_empty(),
        "leaving by expiry is not a removeFromCRL"
    );
}

#[test]
fn delta_asked_for_before_any_full_crl_publishes_the_full_crl_first() {
    let fx = Fixture::new();
    let card = fx.issue("TP03000001");
    fx.change(&card, Transition::Suspend);
    let delta = fx.publish(CrlKind::Delta);
    let (base_number, _) = delta.delta_of.expect("a delta");
    let base = fx.crl(base_number);
    assert_eq!((base.number, delta.number), (1, 2));
    assert!(base.delta_of.is_none());
    assert_eq!(base.entries.len(), 1);
    assert!(delta.entries.is_empty());
}

// ---------------------------------------------------------------------------
// Outside oracles: OpenSSL and pkilint on CRLs published through the CLI.
// ---------------------------------------------------------------------------

/// A certificate written to a PEM file for openssl.
struct CertFile {
    serial: String,
    pem: PathBuf,
}

/// A published CRL written as DER and PEM files.
struct CrlFile {
    number: u64,
    der: PathBuf,
    pem: PathBuf,
}

/// Through the CLI, on the system clock: `held` is suspended before the
/// base and resumed after it, `lost` revoked (keyCompromise) after the base,
/// `late` suspended after the base; then a delta, then the next full CRL.
struct Scenario {
    ca: TestCa,
    held: CertFile,
    lost: CertFile,
    late: CertFile,
    base: CrlFile,
    delta: CrlFile,
    next_full: CrlFile,
}

impl Scenario {
    fn new() -> Self {
        let ca = TestCa::new();
        let authority = ca.authority();
        let [held, lost, late] = ["TP03000001", "TP03000002", "TP03000003"].map(|card| {
            let record = issue(&authority, card);
            let pem = ca.path().join(format!("{card}.pem"));
            std::fs::write(&pem, &record.certificate).unwrap();
            CertFile {
                serial: record.serial,
                pem,
            }
        });
        ca.run_ok(&["suspend", &held.serial, "--note", "card mislaid"]);
        let base = publish_with_cli(&ca, "--full");
        ca.run_ok(&["resume", &held.serial, "--note", "card found"]);
        ca.run_ok(&["revoke", &lost.serial, "--reason", "keyCompromise"]);
        ca.run_ok(&["suspend", &late.serial]);
        let delta = publish_with_cli(&ca, "--delta");
        let next_full = publish_with_cli(&ca, "--full");
        Scenario {
            ca,
            held,
            lost,
            late,
            base,
            delta,
            next_full,
        }
    }

    fn verdict(&self, cert: &CertFile, crls: &[&CrlFile]) -> Verdict {
        openssl_verdict(&self.ca, &cert.pem, crls)
    }
}

/// `eidca crl --full|--delta`, then the stored DER written out, and as PEM by openssl.
fn publish_with_cli(ca: &TestCa, kind: &str) -> CrlFile {
    let number: u64 = ca.run_ok(&["crl", kind]).trim().parse().unwrap();
    let der = ca.path().join(format!("crl-{number}.der"));
    let pem = ca.path().join(format!("crl-{number}.pem"));
    std::fs::write(&der, stored_der(&ca.authority(), number)).unwrap();
    openssl_ok(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        path(&der),
        "-outform",
        "PEM",
        "-out",
        path(&pem),
    ]);
    CrlFile { number, der, pem }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Valid,
    Revoked,
}

/// `openssl verify -crl_check -use_deltas` with these CRLs.
fn openssl_verdict(ca: &TestCa, cert: &Path, crls: &[&CrlFile]) -> Verdict {
    let (root, issuing) = (ca.root_cert(), ca.issuing_cert());
    let mut args = vec![
        "verify",
        "-CAfile",
        path(&root),
        "-untrusted",
        path(&issuing),
    ];
    args.extend(["-crl_check", "-use_deltas"]);
    for crl in crls {
        args.extend(["-CRLfile", path(&crl.pem)]);
    }
    args.push(path(cert));
    let out = openssl(&args);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    match (out.status.success(), text.contains("certificate revoked")) {
        (true, false) if text.contains(": OK") => Verdict::Valid,
        (false, true) => Verdict::Revoked,
        _ => panic!("unexpected openssl verify outcome: {text}"),
    }
}

/// `openssl crl -text` of a DER CRL.
fn openssl_text(crl: &CrlFile) -> String {
    openssl_ok(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        path(&crl.der),
        "-noout",
        "-text",
    ])
}

/// The reason OpenSSL shows for each serial (lowercase hex) of a `-text` dump.
fn openssl_reasons(text: &str) -> BTreeMap<String, String> {
    let mut reasons = BTreeMap::new();
    let mut serial = None;
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if let Some(hex) = line.strip_prefix("Serial Number: ") {
            serial = Some(hex.to_lowercase());
        } else if line.starts_with("X509v3 CRL Reason Code") {
            let reason = lines.next().unwrap_or_default().to_owned();
            reasons.insert(serial.take().expect("a reason follows a serial"), reason);
        }
    }
    reasons
}

/// The line after `heading` in a `-text` dump (an extension's value).
fn value_after<'t>(text: &'t str, heading: &str) -> Option<&'t str> {
    let mut lines = text.lines().map(str::trim);
    lines.find(|l| l.starts_with(heading))?;
    lines.next()
}

#[test]
fn openssl_parses_both_kinds_and_shows_their_extensions_and_reasons() {
    let s = Scenario::new();
    let (held, lost, late) = (&s.held.serial, &s.lost.serial, &s.late.serial);

    let base = openssl_text(&s.base);
    assert!(base.contains("Version 2 (0x1)"), "{base}");
    assert!(
        value_after(&base, "X509v3 Authority Key Identifier").is_some(),
        "{base}"
    );
    assert_eq!(
        value_after(&base, "X509v3 CRL Number"),
        Some(&*s.base.number.to_string())
    );
    assert!(base.contains(&format!("URI:{DELTA_URL}")), "{base}");
    assert!(!base.contains("Delta CRL Indicator"), "{base}");
    let on_hold = |serial: &str| (serial.to_owned(), "Certificate Hold".to_owned());
    assert_eq!(openssl_reasons(&base), BTreeMap::from([on_hold(held)]));

    let delta = openssl_text(&s.delta);
    assert!(
        value_after(&delta, "X509v3 Authority Key Identifier").is_some(),
        "{delta}"
    );
    assert_eq!(
        value_after(&delta, "X509v3 CRL Number"),
        Some(&*s.delta.number.to_string())
    );
    assert_eq!(
        value_after(&delta, "X509v3 Delta CRL Indicator: critical"),
        Some(&*s.base.number.to_string()),
        "{delta}"
    );
    assert!(!delta.contains("Freshest CRL"), "{delta}");
    assert_eq!(
        openssl_reasons(&delta),
        BTreeMap::from([
            (held.clone(), "Remove From CRL".to_owned()),
            (lost.clone(), "Key Compromise".to_owned()),
            on_hold(late),
        ])
    );

    let next_full = openssl_text(&s.next_full);
    assert_eq!(
        openssl_reasons(&next_full),
        BTreeMap::from([(lost.clone(), "Key Compromise".to_owned()), on_hold(late)])
    );
}

#[test]
fn openssl_verify_applies_the_delta_to_holds_resumptions_and_revocations() {
    let s = Scenario::new();
    let (base, delta, next_full) = (&s.base, &s.delta, &s.next_full);
    // Each verdict is also asked of the base alone: OpenSSL silently ignores
    // a delta it cannot match to the base, and would pass these checks.
    let cases = [
        // (certificate, base + delta, base alone)
        (&s.held, Verdict::Valid, Verdict::Revoked),
        (&s.lost, Verdict::Revoked, Verdict::Valid),
        (&s.late, Verdict::Revoked, Verdict::Valid),
    ];
    for (cert, with_delta, base_alone) in cases {
        assert_eq!(
            s.verdict(cert, &[base, delta]),
            with_delta,
            "{} with the delta",
            cert.serial
        );
        assert_eq!(
            s.verdict(cert, &[base]),
            base_alone,
            "{} with the base alone",
            cert.serial
        );
    }
    assert_eq!(s.verdict(&s.held, &[next_full]), Verdict::Valid);
    assert_eq!(s.verdict(&s.lost, &[next_full]), Verdict::Revoked);
    assert_eq!(s.verdict(&s.late, &[next_full]), Verdict::Revoked);
}

#[test]
fn pkilint_finds_no_error_in_full_and_delta_crls() {
    let s = Scenario::new();
    // The delta holds certificateHold, keyCompromise and removeFromCRL; the
    // next full CRL certificateHold and keyCompromise.
    for crl in [&s.base, &s.delta, &s.next_full] {
        assert_pkilint_clean("lint_crl", &["-t", "CRL", "-p", "PKIX"], &crl.der);
    }
}

// ---------------------------------------------------------------------------
// One CRL number sequence (SPEC §4), across kinds, processes and publishers.
// ---------------------------------------------------------------------------

/// Checks every CRL ever stored, in number order, against its DER: the
/// stored summary is what the DER says, thisUpdate never goes back, and
/// each delta's base is the newest full CRL numbered below it.
fn assert_stored_crls_are_one_consistent_sequence(ca: &TestCa) -> Vec<u64> {
    let authority = ca.authority();
    let issuer = issuing_ca(ca);
    let conn = rusqlite::Connection::open(ca.store_path()).unwrap();
    let numbers: Vec<u64> = conn
        .prepare("SELECT number FROM crls ORDER BY rowid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut newest_full = None;
    let mut last_update = OffsetDateTime::UNIX_EPOCH;
    for &number in &numbers {
        let (summary, der) = authority
            .store()
            .read(|tx| crls::by_number(tx, number))
            .unwrap()
            .unwrap();
        let crl = decode(&der, &issuer);
        assert_eq!(crl.number, number);
        assert_eq!(
            (summary.this_update, summary.next_update),
            (crl.this_update, crl.next_update)
        );
        assert_eq!(summary.entries, crl.entries.len() as u64);
        assert!(
            crl.this_update >= last_update,
            "thisUpdate went back at CRL {number}"
        );
        last_update = crl.this_update;
        match summary.kind {
            CrlKind::Full => {
                assert_eq!((summary.base_number, crl.delta_of), (None, None));
                newest_full = Some(number);
            }
            CrlKind::Delta => {
                assert_eq!(summary.base_number, newest_full, "delta {number}");
                assert_eq!(
                    crl.delta_of,
                    newest_full.map(|n| (n, true)),
                    "delta {number}"
                );
            }
        }
    }
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    numbers
}

fn strictly_increasing(numbers: &[u64]) -> bool {
    numbers.windows(2).all(|w| w[0] < w[1])
}

#[test]
fn crl_numbers_strictly_increase_across_kinds_processes_and_reopened_stores() {
    let ca = TestCa::new();
    // Each CLI call is a new process opening the store afresh.
    let mut printed: Vec<u64> = ["--delta", "--full", "--delta", "--delta", "--full"]
        .iter()
        .map(|kind| ca.run_ok(&["crl", kind]).trim().parse().unwrap())
        .collect();
    for _ in 0..2 {
        let reopened = ca.authority();
        printed.push(reopened.publish(CrlKind::Delta, "test").unwrap().number);
        printed.push(reopened.publish(CrlKind::Full, "test").unwrap().number);
    }
    assert!(strictly_increasing(&printed), "{printed:?}");
    let stored = assert_stored_crls_are_one_consistent_sequence(&ca);
    assert!(printed.iter().all(|n| stored.contains(n)));
}

#[test]
fn racing_publishers_on_one_store_all_publish_and_never_share_or_reorder_a_crl_number() {
    let ca = TestCa::new();
    let publishers = [(); 4].map(|_| ca.authority());
    let returned: Vec<Vec<u64>> = std::thread::scope(|scope| {
        let racers: Vec<_> = publishers
            .iter()
            .enumerate()
            .map(|(i, publisher)| {
                scope.spawn(move || {
                    (0..12)
                        .map(|k| {
                            let kind = if (i + k) % 3 == 0 {
                                CrlKind::Full
                            } else {
                                CrlKind::Delta
                            };
                            publisher.publish(kind, "racer").expect("publish").number
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for own in &returned {
        assert!(strictly_increasing(own), "{own:?}");
    }
    let mut all: Vec<u64> = returned.concat();
    all.sort_unstable();
    all.dedup();
    assert_eq!(
        all.len(),
        4 * 12,
        "two publishers were given the same number"
    );
    assert_stored_crls_are_one_consistent_sequence(&ca);
}

/// A clock through which a rival publisher strikes: each time the victim
/// reads the time while the store is free, the rival takes the next CRL
/// number (a bare row, as another process would commit it). The worst case
/// of racing publishers, made deterministic.
struct RivalClock {
    rival: Mutex<rusqlite::Connection>,
}

impl Clock for RivalClock {
    fn now(&self) -> OffsetDateTime {
        // Fails at once (busy) while the victim holds the write lock.
        let _ = self.rival.lock().unwrap().execute(
            "INSERT INTO crls (number, kind, base_number, this_update, next_update, covers_seq, entries, der)
             SELECT MAX(number) + 1, 'delta', NULL, 0, 0, 0, 0, x'' FROM crls",
            [],
        );
        SystemClock.now()
    }
}

#[test]
fn publisher_that_keeps_losing_the_race_for_its_number_still_publishes() {
    let ca = TestCa::new();
    drop(ca.authority()); // creates the store
    let rival = rusqlite::Connection::open(ca.store_path()).unwrap();
    rival.busy_timeout(std::time::Duration::ZERO).unwrap();
    let victim = ca.authority_with_clock(Arc::new(RivalClock {
        rival: Mutex::new(rival),
    }));
    let issuer = issuing_ca(&ca);
    let mut numbers = Vec::new();
    for kind in [CrlKind::Full, CrlKind::Delta, CrlKind::Delta] {
        let summary = victim
            .publish(kind, "victim")
            .expect("published despite the rival");
        assert_eq!(
            decode(&stored_der(&victim, summary.number), &issuer).number,
            summary.number
        );
        numbers.push(summary.number);
    }
    assert!(strictly_increasing(&numbers), "{numbers:?}");
    let conn = rusqlite::Connection::open(ca.store_path()).unwrap();
    let taken_by_rival: u64 = conn
        .query_row("SELECT COUNT(*) FROM crls WHERE der = x''", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        taken_by_rival > 0,
        "the rival never struck: the test proves nothing"
    );
}

// ---------------------------------------------------------------------------
// Refusals change nothing (SPEC §3.1).
// ---------------------------------------------------------------------------

/// One certificate in each state a refusal can meet, on a CA with two-hour
/// certificates: `expired` was issued three hours ago.
struct Cards {
    ca: TestCa,
    authority: Authority,
    good: CertificateRecord,
    suspended: CertificateRecord,
    revoked: CertificateRecord,
    expired: CertificateRecord,
}

impl Cards {
    fn new() -> Self {
        let ca = short_lived_ca();
        let expired = issue(
            &ca.authority_with_clock(ManualClock::starting_at(-Duration::hours(3))),
            "TP03000004",
        );
        let authority = ca.authority();
        let [good, suspended, revoked] =
            ["TP03000001", "TP03000002", "TP03000003"].map(|card| issue(&authority, card));
        change(&authority, &suspended, Transition::Suspend);
        change(&authority, &revoked, revoke(RevocationReason::Superseded));
        Cards {
            ca,
            authority,
            good,
            suspended,
            revoked,
            expired,
        }
    }
}

#[test]
fn refused_transitions_leave_status_history_and_audit_unchanged() {
    let c = Cards::new();
    let before = lifecycle_state(&c.ca);
    let (good, suspended, revoked, expired) = (
        &c.good.serial,
        &c.suspended.serial,
        &c.revoked.serial,
        &c.expired.serial,
    );
    let refusals: [(&[&str], &str); 11] = [
        (&["resume", revoked], "revoked, which is permanent"),
        (&["suspend", revoked], "revoked, which is permanent"),
        (
            &["revoke", revoked, "--reason", "keyCompromise"],
            "revoked, which is permanent",
        ),
        (&["suspend", suspended], "already suspended"),
        (
            &["resume", good],
            "only a suspended certificate can be resumed",
        ),
        (&["suspend", expired], "expired"),
        (&["resume", expired], "expired"),
        (&["revoke", expired, "--reason", "keyCompromise"], "expired"),
        (
            &["revoke", good, "--reason", "certificateHold"],
            "use suspend for certificateHold",
        ),
        (
            &["revoke", suspended, "--reason", "removeFromCRL"],
            "resume for removeFromCRL",
        ),
        (
            &["revoke", good, "--reason", "cACompromise"],
            "unknown revocation reason",
        ),
    ];
    for (args, message) in refusals {
        let out = c.ca.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "eidca {args:?} was accepted");
        assert!(stderr.contains(message), "eidca {args:?}: {stderr}");
        assert_eq!(
            lifecycle_state(&c.ca),
            before,
            "eidca {args:?} changed something"
        );
    }

    let library_refusals = [
        (&c.revoked, Transition::Resume, TransitionError::Revoked),
        (
            &c.suspended,
            Transition::Suspend,
            TransitionError::AlreadySuspended,
        ),
        (&c.good, Transition::Resume, TransitionError::NotSuspended),
        (
            &c.expired,
            revoke(RevocationReason::KeyCompromise),
            TransitionError::Expired {
                not_after: rfc3339(&c.expired.not_after),
            },
        ),
    ];
    for (record, transition, expected) in library_refusals {
        match c
            .authority
            .change_status(&serial(record), transition, Some("note"), OFFICER)
        {
            Err(AuthorityError::Transition(e)) => assert_eq!(e, expected),
            other => panic!("{transition:?} on {}: {other:?}", record.serial),
        }
        assert_eq!(lifecycle_state(&c.ca), before);
    }
}

// ---------------------------------------------------------------------------
// Card operations (SPEC §3.1): every eligible certificate or none.
// ---------------------------------------------------------------------------

/// A card carrying an expired certificate and three current ones.
struct Card {
    ca: TestCa,
    authority: Authority,
    expired: CertificateRecord,
    current: [CertificateRecord; 3],
}

const CARD: &str = "TP03000001";

impl Card {
    fn new() -> Self {
        let ca = short_lived_ca();
        let expired = issue(
            &ca.authority_with_clock(ManualClock::starting_at(-Duration::hours(3))),
            CARD,
        );
        let authority = ca.authority();
        let current = [(); 3].map(|_| issue(&authority, CARD));
        Card {
            ca,
            authority,
            expired,
            current,
        }
    }

    fn apply(&self, transition: Transition) -> Result<Vec<CertificateRecord>, AuthorityError> {
        self.authority
            .change_card(CARD, transition, Some("reported at the window"), OFFICER)
    }

    /// Status (with reason) of each certificate on the card, by serial.
    fn statuses(&self) -> BTreeMap<String, (String, Option<String>)> {
        self.authority
            .certificates_of_subscriber("A800000014")
            .unwrap()
            .into_iter()
            .map(|r| {
                (
                    r.serial,
                    (r.status.to_owned(), r.revocation_reason.map(str::to_owned)),
                )
            })
            .collect()
    }
}

fn status(name: &str, reason: Option<&str>) -> (String, Option<String>) {
    (name.to_owned(), reason.map(str::to_owned))
}

#[test]
fn card_operations_change_every_eligible_certificate_and_only_those() {
    let card = Card::new();
    let [a, b, c] = &card.current;
    change(&card.authority, c, revoke(RevocationReason::KeyCompromise));
    let good = status("good", None);
    let held = status("suspended", Some("certificateHold"));
    let key_compromise = status("revoked", Some("keyCompromise"));
    let superseded = status("revoked", Some("superseded"));
    let expect = |statuses: [&(String, Option<String>); 3]| {
        let mut all = BTreeMap::from([(card.expired.serial.clone(), good.clone())]);
        for (record, s) in [a, b, c].into_iter().zip(statuses) {
            all.insert(record.serial.clone(), s.clone());
        }
        all
    };
    let history_len = || lifecycle_state(&card.ca).status_changes.len();

    let before = history_len();
    let records = card.apply(Transition::Suspend).unwrap();
    assert_eq!(records.len(), 4, "the answer lists the whole card");
    assert_eq!(card.statuses(), expect([&held, &held, &key_compromise]));
    assert_eq!(
        history_len(),
        before + 2,
        "one history row per changed certificate"
    );

    card.apply(Transition::Resume).unwrap();
    assert_eq!(card.statuses(), expect([&good, &good, &key_compromise]));

    change(&card.authority, a, Transition::Suspend);
    card.apply(revoke(RevocationReason::Superseded)).unwrap();
    assert_eq!(
        card.statuses(),
        expect([&superseded, &superseded, &key_compromise])
    );

    let conn = rusqlite::Connection::open(card.ca.store_path()).unwrap();
    let (channel, note): (String, String) = conn
        .query_row(
            "SELECT channel, note FROM status_changes WHERE action = 'revoke' ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (channel.as_str(), note.as_str()),
        ("ra", "reported at the window")
    );
}

#[test]
fn card_operation_with_no_eligible_certificate_is_refused_and_changes_nothing() {
    let card = Card::new();
    for record in &card.current {
        change(
            &card.authority,
            record,
            revoke(RevocationReason::CessationOfOperation),
        );
    }
    let before = lifecycle_state(&card.ca);
    for transition in [
        Transition::Suspend,
        Transition::Resume,
        revoke(RevocationReason::Unspecified),
    ] {
        match card.apply(transition) {
            Err(AuthorityError::Conflict(message)) => assert!(message.contains(CARD), "{message}"),
            other => panic!("{transition:?}: {other:?}"),
        }
        assert_eq!(lifecycle_state(&card.ca), before);
    }
    assert!(matches!(
        card.authority
            .change_card("TP09999999", Transition::Suspend, None, OFFICER),
        Err(AuthorityError::NotFound(_))
    ));
}

#[test]
fn card_operation_that_fails_midway_changes_no_certificate() {
    let card = Card::new();
    // The card's certificates change in serial order (same notBefore): make
    // the store refuse the last one, after the others were written.
    let last = card.current.iter().map(|r| r.serial.clone()).max().unwrap();
    let conn = rusqlite::Connection::open(card.ca.store_path()).unwrap();
    conn.execute_batch(&format!(
        "CREATE TRIGGER injected_failure BEFORE UPDATE OF status ON certificates
         WHEN NEW.serial = '{last}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
    ))
    .unwrap();
    let before = lifecycle_state(&card.ca);
    let outcome = card.apply(Transition::Suspend);
    assert!(
        matches!(outcome, Err(AuthorityError::Store(_))),
        "{outcome:?}"
    );
    assert_eq!(lifecycle_state(&card.ca), before);

    conn.execute_batch("DROP TRIGGER injected_failure").unwrap();
    let suspended = card.apply(Transition::Suspend).unwrap();
    assert_eq!(
        suspended.iter().filter(|r| r.status == "suspended").count(),
        3
    );
}
