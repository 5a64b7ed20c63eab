//! The certificate lifecycle (SPEC §3.1) and full and delta CRLs
//! (SPEC §4), checked on the DER the program publishes, with OpenSSL and
//! pkilint as outside oracles.
//!
//! Time-dependent rules (expiry, revocationDate, thisUpdate) run on an
//! injected clock and two-hour certificates; nothing here measures time.

mod common;
#[path = "crl/fixtures.rs"]
mod fixtures;
#[path = "crl/model.rs"]
mod model;
#[path = "crl/oracles.rs"]
mod oracles;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::crl::{
    CERTIFICATE_HOLD, Entries, KEY_COMPROMISE, Listed, REMOVE_FROM_CRL, decode, patched,
};
use common::{OFFICER, TestCa, assert_pkilint_clean, issue};
use eidca::authority::{Authority, AuthorityError, CertificateRecord, CrlFile};
use eidca::clock::{Clock, SystemClock};
use eidca::domain::{RevocationReason, Transition, TransitionError};
use eidca::revocation::CrlKind;
use fixtures::{
    DELTA_URL, Fixture, ManualClock, change, issuing_ca, lifecycle_state, revoke, rfc3339, serial,
    short_lived_ca, stored_der,
};
use model::{Run, step};
use oracles::{Scenario, Verdict, openssl_reasons, openssl_text, value_after};
use proptest::prelude::*;
use time::{Duration, OffsetDateTime};

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

/// Checks every CRL ever stored, in the order they were committed (the
/// audit chain's order), against its DER: numbers strictly increase, the
/// stored summary is what the DER says, thisUpdate never goes back, and
/// each delta's base is the newest full CRL committed before it.
fn assert_stored_crls_are_one_consistent_sequence(ca: &TestCa) -> Vec<u64> {
    let authority = ca.authority();
    let issuer = issuing_ca(ca);
    let conn = rusqlite::Connection::open(ca.store_path()).unwrap();
    let numbers: Vec<u64> = conn
        .prepare("SELECT subject FROM audit_log WHERE action = 'publish-crl' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|subject| subject.unwrap().parse().unwrap())
        .collect();
    let stored: u64 = conn
        .query_row("SELECT COUNT(*) FROM crls", [], |r| r.get(0))
        .unwrap();
    assert_eq!(numbers.len() as u64, stored, "one audit record per CRL");
    let mut newest_full = None;
    let mut last_update = OffsetDateTime::UNIX_EPOCH;
    for &number in &numbers {
        let (summary, der) = authority
            .crl_file(CrlFile::Number(number))
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
    assert!(strictly_increasing(&numbers), "{numbers:?}");
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
            Err(e @ AuthorityError::NoEligibleCertificate { .. }) => {
                assert!(e.to_string().contains(CARD), "{e}")
            }
            other => panic!("{transition:?}: {other:?}"),
        }
        assert_eq!(lifecycle_state(&card.ca), before);
    }
    assert!(matches!(
        card.authority
            .change_card("TP09999999", Transition::Suspend, None, OFFICER),
        Err(AuthorityError::CardNotFound(_))
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
