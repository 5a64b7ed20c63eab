//! The publication schedule survives a restart. The service is stopped
//! between publications (SIGTERM, and SIGKILL), stays down across the full
//! and delta deadlines, and is started again: the missed publication
//! happens at once on start, once, and CRL numbers continue. The history is
//! read from the store, where the schedule comes from; the tests wait for
//! publications there rather than sleeping for a guessed time.

mod common;

use std::time::{Duration, Instant};

use common::{Server, TestCa};
use eidca::revocation::CrlKind;
use eidca::revocation::CrlSummary;
use eidca::store::Store;
use time::OffsetDateTime;

/// Delta 2 s and full 6 s: a restart test misses both within seconds.
const SHORT_INTERVALS: [(&str, &str); 3] = [
    ("EIDCA_PUBLISH_DELTA_CRL_INTERVAL", "2s"),
    ("EIDCA_PUBLISH_FULL_CRL_INTERVAL", "6s"),
    ("EIDCA_OCSP_MAX_AGE", "2s"),
];

/// How the service is stopped.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Terminate,
    Kill,
}

impl Stop {
    fn apply(self, server: Server) {
        match self {
            Stop::Terminate => assert!(server.terminate().success(), "graceful exit"),
            Stop::Kill => server.kill(),
        }
    }
}

fn history(ca: &TestCa) -> Vec<CrlSummary> {
    Store::open(&ca.store_path())
        .expect("store opens")
        .read(|snapshot| snapshot.crl_history())
        .expect("CRL history")
}

/// The kinds of the CRLs published so far, oldest first, read on a
/// read-only connection: polling must take no lock the running service
/// could wait on. A store not there yet, or busy, reads as nothing new.
fn published(ca: &TestCa) -> Vec<CrlKind> {
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        ca.store_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return Vec::new();
    };
    let Ok(mut query) = conn.prepare("SELECT kind FROM crls ORDER BY number") else {
        return Vec::new();
    };
    query
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .unwrap_or_default()
        .iter()
        .map(|kind| match kind.as_str() {
            "full" => CrlKind::Full,
            "delta" => CrlKind::Delta,
            other => panic!("stored CRL of unknown kind {other:?}"),
        })
        .collect()
}

/// Waits until the CRLs published so far satisfy `done`, which says what
/// is awaited; fails the test when that takes longer than a schedule allows.
fn wait_for(ca: &TestCa, what: &str, done: impl Fn(&[CrlKind]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let crls = published(ca);
        if done(&crls) {
            return;
        }
        assert!(Instant::now() < deadline, "no {what}: {crls:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sleeps until the wall clock passes `t`: the service must stay down past
/// a deadline, which no event announces.
fn sleep_past(t: OffsetDateTime) {
    let left = t - OffsetDateTime::now_utc();
    if left.is_positive() {
        std::thread::sleep(Duration::from_secs_f64(left.as_seconds_f64()));
    }
}

/// Runs, stops with `stop` after a few deltas, stays down past the full
/// CRL's nextUpdate, runs again; returns the history, the time the service
/// went down and the time it was started again.
fn run_across_a_restart(stop: Stop) -> (Vec<CrlSummary>, OffsetDateTime, OffsetDateTime) {
    let ca = TestCa::new();
    let server = ca.serve(&SHORT_INTERVALS);
    // Stopped just after a publication, so as far as can be from the next.
    wait_for(&ca, "full CRL and three deltas", |crls| crls.len() >= 4);
    let stopped = OffsetDateTime::now_utc();
    stop.apply(server);
    let before = history(&ca);
    let last_full = before
        .iter()
        .rfind(|c| c.kind == CrlKind::Full)
        .expect("a full CRL before the stop");
    sleep_past(last_full.next_update + time::Duration::milliseconds(300));

    let restarted = OffsetDateTime::now_utc();
    let server = ca.serve(&SHORT_INTERVALS);
    // The publications at once on start, then a delta on schedule: the
    // service is past its start-up and would have doubled the full by now.
    wait_for(&ca, "publications after the restart", |crls| {
        crls.len() >= before.len() + 3
    });
    assert!(server.terminate().success(), "graceful exit");
    (history(&ca), stopped, restarted)
}

/// What every history must show, across any restart: numbers 1, 2, 3…
/// in order of thisUpdate, and every delta against the newest full.
fn assert_one_sequence(history: &[CrlSummary]) {
    let mut newest_full = None;
    for (i, crl) in history.iter().enumerate() {
        assert_eq!(crl.number, i as u64 + 1, "numbers continue: {history:#?}");
        if i > 0 {
            assert!(
                crl.this_update >= history[i - 1].this_update,
                "{history:#?}"
            );
        }
        match crl.kind {
            CrlKind::Full => newest_full = Some(crl.number),
            CrlKind::Delta => assert_eq!(crl.base_number, newest_full, "{history:#?}"),
        }
    }
}

/// While the service runs, a CRL of each kind is replaced before its
/// nextUpdate (nothing lost) and not within the second of its thisUpdate
/// (nothing doubled); a delta right after its full is not a replacement.
fn assert_on_schedule(crls: &[CrlSummary]) {
    for kind in [CrlKind::Full, CrlKind::Delta] {
        let of_kind: Vec<&CrlSummary> = crls.iter().filter(|c| c.kind == kind).collect();
        for pair in of_kind.windows(2) {
            let (previous, next) = (pair[0], pair[1]);
            assert!(
                next.this_update <= previous.next_update,
                "{} lapsed: {previous:?} then {next:?}",
                kind.name()
            );
            if kind == CrlKind::Delta && next.base_number != previous.base_number {
                continue;
            }
            assert!(
                next.this_update > previous.this_update,
                "{} doubled: {previous:?} then {next:?}",
                kind.name()
            );
        }
    }
}

fn assert_restart_keeps_the_schedule(stop: Stop) {
    let (history, stopped, restarted) = run_across_a_restart(stop);
    assert_one_sequence(&history);
    let (before, after): (Vec<CrlSummary>, Vec<CrlSummary>) =
        history.into_iter().partition(|c| c.this_update <= stopped);
    assert!(before.len() >= 3, "a full and deltas before the stop");
    assert_on_schedule(&before);
    assert_on_schedule(&after);

    // The full deadline passed while down: the first publication on start
    // is a full CRL, at once, and its delta right after it.
    let [first, second, ..] = &after[..] else {
        panic!("publications after the restart: {after:#?}")
    };
    assert_eq!(first.kind, CrlKind::Full, "{after:#?}");
    assert!(
        first.this_update <= restarted + time::Duration::seconds(1),
        "missed full published at once on start: {first:?}, started {restarted}"
    );
    assert_eq!(second.kind, CrlKind::Delta);
    assert_eq!(second.base_number, Some(first.number));
    assert!(
        second.this_update - first.this_update <= time::Duration::seconds(1),
        "its delta at once: {first:?} then {second:?}"
    );
    // Not doubled: the next full is due a full interval later.
    let fulls_after = after.iter().filter(|c| c.kind == CrlKind::Full).count();
    assert_eq!(fulls_after, 1, "one full CRL after the restart: {after:#?}");
}

#[test]
fn a_terminated_service_publishes_the_missed_full_crl_once_on_start() {
    assert_restart_keeps_the_schedule(Stop::Terminate);
}

#[test]
fn a_killed_service_publishes_the_missed_full_crl_once_on_start() {
    assert_restart_keeps_the_schedule(Stop::Kill);
}

#[test]
fn a_restart_before_any_deadline_publishes_no_extra_full_crl() {
    let ca = TestCa::new();
    for _ in 0..2 {
        let before = published(&ca).len();
        let server = ca.serve(&SHORT_INTERVALS);
        // A delta after the start: any full published at once on start
        // would come before it.
        wait_for(&ca, "delta CRL after the start", |crls| {
            crls.iter().skip(before).any(|kind| *kind == CrlKind::Delta)
        });
        assert!(server.terminate().success(), "graceful exit");
    }
    let history = history(&ca);
    assert_one_sequence(&history);
    assert_on_schedule(&history);
    let fulls = history.iter().filter(|c| c.kind == CrlKind::Full).count();
    assert_eq!(fulls, 1, "the full CRL was not due again: {history:#?}");
}
