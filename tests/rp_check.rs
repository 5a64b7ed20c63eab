//! The sync window of SPEC §6, observed end to end by a relying
//! party while a driver changes statuses at random (see `tests/rp/`).
//!
//! With delta 2 s, full 10 s and OCSP max-age 2 s, every change must show
//! in OCSP on the first request after its commit, behind an HTTP cache
//! within max-age, in a delta CRL within the delta interval and in a full
//! CRL within the full interval, each plus 1 s for polling and HTTP; the
//! CRLs must be consistent as they are fetched (no removeFromCRL for a
//! serial the base does not list, BaseCRLNumber names a published full CRL,
//! nothing served past its nextUpdate, OCSP never past half its validity).

mod common;
#[path = "rp/mod.rs"]
mod rp;

use std::time::Duration;

use common::{TestCa, crl};
use rp::ledger::Channel;

/// The short intervals of the test service.
const SHORT_INTERVALS: [(&str, &str); 3] = [
    ("EIDCA_PUBLISH_DELTA_CRL_INTERVAL", "2s"),
    ("EIDCA_PUBLISH_FULL_CRL_INTERVAL", "10s"),
    ("EIDCA_OCSP_MAX_AGE", "2s"),
];

#[test]
fn every_change_reaches_every_channel_within_the_sync_window() {
    let ca = TestCa::new();
    let server = ca.serve(&SHORT_INTERVALS);
    let settings = rp::Settings {
        base_url: server.base_url.clone(),
        token: "dev-officer-token".into(),
        certificates: 24,
        driving: Duration::from_secs(16),
        pause_ms: (500, 1000),
        allowance: Duration::from_secs(1),
        seed: 0x5eed_ca06,
    };
    let outcome = rp::run(&settings).expect("the simulation runs");
    eprintln!("{}", outcome.report);

    let report = &outcome.report;
    assert!(
        report.violations.is_empty(),
        "sync window broken:\n{report}"
    );
    for channel in Channel::ALL {
        let figures = report.figures(channel);
        assert!(figures.changes >= 12, "too few changes to judge:\n{report}");
        assert_eq!(
            figures.seen + figures.pending,
            figures.changes,
            "{channel:?}:\n{report}"
        );
    }
    assert_eq!(
        report.figures(Channel::FullCrl).pending,
        0,
        "the run drains until every change is in a full CRL:\n{report}"
    );
    assert!(
        outcome.crls_fetched > 16,
        "{} CRL fetches",
        outcome.crls_fetched
    );
}
