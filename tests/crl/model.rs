//! The model-based test: SPEC §3.1 and §4 restated over plain data (written
//! from the spec, not from eidca's code), random steps, and a driver that
//! runs each step on a fresh CA and on the model and compares the CRLs the
//! program publishes with the model's after every publication.

use std::collections::HashMap;

use eidca::authority::AuthorityError;
use eidca::domain::{RevocationReason, Serial, Transition};
use eidca::revocation::CrlKind;
use proptest::prelude::*;
use time::{Duration, OffsetDateTime};

use crate::common::OFFICER;
use crate::common::crl::{CERTIFICATE_HOLD, Crl, Entries, Listed, REMOVE_FROM_CRL, patched};
use crate::fixtures::{DELTA_URL, Fixture, lifecycle_state, rfc3339};

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
pub enum Step {
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
pub enum Target {
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

pub fn step() -> impl Strategy<Value = Step> {
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

/// Runs the steps on a fresh CA and on the model, comparing after each.
pub struct Run {
    pub fx: Fixture,
    model: Model,
}

impl Run {
    pub fn new() -> Self {
        Run {
            fx: Fixture::new(),
            model: Model::default(),
        }
    }

    pub fn apply(&mut self, step: &Step) {
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
        let delta = self.fx.crl(delta_number);
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

    /// The relying party's view, base patched by delta, is the suspended and
    /// revoked certificates that have not expired, with their reasons and dates.
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
